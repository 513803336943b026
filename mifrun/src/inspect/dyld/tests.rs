use std::os::unix::fs::PermissionsExt;

use super::super::macho::build::{Image, Sig, der_entitlements, fat, xml_entitlements};
use super::super::macho::{ENT_ALLOW_DYLD_ENV, ENT_DISABLE_LV, parse_macho};
use super::*;
use crate::inspect::{Target, inspect_for};
use crate::sys;

fn lib(arch: Arch) -> MachO {
    parse_macho(&Image::dylib(arch).bytes()[..]).unwrap()
}

fn cx(host: Host, library: Option<MachO>) -> MacContext {
    MacContext {
        host,
        sip: true,
        library,
    }
}

/// The blockers of `img` installed at `path`, on an Apple Silicon Mac with an arm64
/// libmifshim.dylib.
fn verdict(path: &str, bytes: &[u8]) -> Vec<Blocker> {
    verdict_with(path, bytes, &cx(Host::Arm64, Some(lib(Arch::ARM64))))
}

fn verdict_with(path: &str, bytes: &[u8], cx: &MacContext) -> Vec<Blocker> {
    let m = parse_macho(bytes).unwrap();
    let (b, notes) = macho_blockers(Path::new(path), Path::new(path), &m, cx);
    assert!(notes.is_empty(), "{notes:?}");
    b
}

fn runtime(ents: Option<&[(&str, bool)]>, der: bool) -> Sig {
    Sig {
        flags: cs::CS_RUNTIME,
        identifier: "com.example.app",
        team: Some("ABCDE12345"),
        xml_entitlements: ents.filter(|_| !der).map(xml_entitlements),
        der_entitlements: ents.filter(|_| der).map(der_entitlements),
        ..Sig::default()
    }
}

#[test]
fn sip_paths() {
    for p in [
        "/usr/bin/curl",
        "/bin/sh",
        "/sbin/ping",
        "/usr/sbin/sshd",
        "/usr/lib/dyld",
        "/usr/libexec/x",
        "/System/Library/CoreServices/x",
        "/System/Volumes/Data/usr/bin/x",
        "/Library/Apple/usr/bin/x",
        "/usr/local/../bin/sh",
    ] {
        assert!(sip_protected(Path::new(p)), "{p}");
    }
    for p in [
        "/usr/local/bin/curl",
        "/System/Volumes/Data/usr/local/bin/x",
        "/opt/homebrew/bin/bash",
        "/Users/me/bin/x",
        "/Applications/Firefox.app/Contents/MacOS/firefox",
        "/usr2/x",
        "/Library/Application Support/x",
        "/binaries/x",
    ] {
        assert!(!sip_protected(Path::new(p)), "{p}");
    }
}

#[test]
fn an_ordinary_program_is_steerable() {
    let plain = Image::exe(Arch::ARM64).bytes();
    assert_eq!(verdict("/opt/homebrew/bin/curl", &plain), []);
    // Ad hoc and linker signed (every arm64 binary cargo or clang links).
    let adhoc = Image::exe(Arch::ARM64).signed(Sig {
        flags: cs::CS_ADHOC | cs::CS_LINKER_SIGNED,
        identifier: "tool",
        ..Sig::default()
    });
    assert_eq!(verdict("/Users/me/bin/tool", &adhoc.bytes()), []);
    // Developer ID signed, without the hardened runtime.
    let signed = Image::exe(Arch::ARM64).signed(Sig {
        identifier: "com.example.tool",
        team: Some("ABCDE12345"),
        ..Sig::default()
    });
    assert_eq!(verdict("/usr/local/bin/tool", &signed.bytes()), []);
}

#[test]
fn sip_protected_binary_refused_unless_sip_is_off() {
    let apple = Image::exe(Arch::ARM64).bytes();
    let b = verdict("/usr/bin/curl", &apple);
    assert_eq!(
        b,
        [Blocker::SipProtected {
            path: "/usr/bin/curl".into(),
            script: None
        }]
    );
    assert!(b[0].to_string().contains("System Integrity Protection"));
    assert!(
        remedy(&b[0])
            .unwrap()
            .contains("codesign --force --sign - ~/bin/curl")
    );
    let mut off = cx(Host::Arm64, Some(lib(Arch::ARM64)));
    off.sip = false;
    assert_eq!(verdict_with("/usr/bin/curl", &apple, &off), []);
}

#[test]
fn hardened_runtime_without_the_dyld_entitlement() {
    for der in [false, true] {
        let img = Image::exe(Arch::ARM64).signed(runtime(None, der));
        let b = verdict("/Applications/App.app/Contents/MacOS/App", &img.bytes());
        assert!(
            matches!(
                b.as_slice(),
                [
                    Blocker::HardenedRuntime { .. },
                    Blocker::LibraryValidation { hardened: true, .. }
                ]
            ),
            "{b:?}"
        );
        assert!(b[0].to_string().contains(ENT_ALLOW_DYLD_ENV));
        assert!(
            remedy(&b[0])
                .unwrap()
                .contains("re-signed ad hoc without the hardened runtime")
        );
    }
}

#[test]
fn hardened_runtime_with_dyld_entitlement_still_validates_libraries() {
    for der in [false, true] {
        let ents: &[(&str, bool)] = &[(ENT_ALLOW_DYLD_ENV, true)];
        let img = Image::exe(Arch::ARM64).signed(runtime(Some(ents), der));
        let b = verdict("/Applications/App.app/Contents/MacOS/App", &img.bytes());
        assert_eq!(
            b,
            [Blocker::LibraryValidation {
                path: "/Applications/App.app/Contents/MacOS/App".into(),
                hardened: true,
                team: Some("ABCDE12345".into())
            }],
            "der={der}"
        );
        assert!(b[0].to_string().contains("Team ID ABCDE12345"));
    }
}

#[test]
fn hardened_runtime_with_both_entitlements_is_steerable() {
    for der in [false, true] {
        let ents: &[(&str, bool)] = &[(ENT_ALLOW_DYLD_ENV, true), (ENT_DISABLE_LV, true)];
        let img = Image::exe(Arch::ARM64).signed(runtime(Some(ents), der));
        assert_eq!(
            verdict("/Applications/App.app/Contents/MacOS/App", &img.bytes()),
            []
        );
    }
    // An entitlement set to false grants nothing.
    let ents: &[(&str, bool)] = &[(ENT_ALLOW_DYLD_ENV, false), (ENT_DISABLE_LV, true)];
    let img = Image::exe(Arch::ARM64).signed(runtime(Some(ents), false));
    assert!(matches!(
        verdict("/x/App", &img.bytes()).as_slice(),
        [Blocker::HardenedRuntime { .. }]
    ));
}

#[test]
fn library_validation_flag_without_runtime() {
    let img = Image::exe(Arch::ARM64).signed(Sig {
        flags: cs::CS_REQUIRE_LV,
        identifier: "com.example.lv",
        team: Some("ABCDE12345"),
        ..Sig::default()
    });
    let b = verdict("/x/lv", &img.bytes());
    assert!(matches!(
        b.as_slice(),
        [Blocker::LibraryValidation {
            hardened: false,
            ..
        }]
    ));
    assert!(b[0].to_string().contains("CS_REQUIRE_LV"));
    // A libmifshim.dylib signed by the same team passes library validation.
    let same_team = parse_macho(
        &Image::dylib(Arch::ARM64)
            .signed(Sig {
                identifier: "libmifshim",
                team: Some("ABCDE12345"),
                ..Sig::default()
            })
            .bytes()[..],
    )
    .unwrap();
    assert_eq!(
        verdict_with("/x/lv", &img.bytes(), &cx(Host::Arm64, Some(same_team))),
        []
    );
}

#[test]
fn restrict_segment_and_cs_restrict() {
    let mut seg = Image::exe(Arch::ARM64);
    seg.sections.push(("__RESTRICT", "__restrict"));
    let b = verdict("/x/seg", &seg.bytes());
    assert_eq!(
        b,
        [Blocker::Restricted {
            path: "/x/seg".into(),
            why: Restriction::RestrictSegment
        }]
    );
    assert!(remedy(&b[0]).unwrap().contains("rebuild"));
    let flag = Image::exe(Arch::ARM64).signed(Sig {
        flags: cs::CS_RESTRICT,
        identifier: "r",
        ..Sig::default()
    });
    let b = verdict("/x/flag", &flag.bytes());
    assert_eq!(
        b,
        [Blocker::Restricted {
            path: "/x/flag".into(),
            why: Restriction::CsRestrict
        }]
    );
    assert!(b[0].to_string().contains("CS_RESTRICT"));
}

#[test]
fn static_macho_executable() {
    let mut img = Image::exe(Arch::ARM64);
    img.dylinker = None;
    img.dylibs.clear();
    assert_eq!(
        verdict("/x/static", &img.bytes()),
        [Blocker::MachStatic {
            path: "/x/static".into()
        }]
    );
    // A dylib has no LC_LOAD_DYLINKER and is not a static executable.
    assert_eq!(
        verdict("/x/lib.dylib", &Image::dylib(Arch::ARM64).bytes()),
        []
    );
}

#[test]
fn universal_binary_runs_its_hosts_slice() {
    let u = fat(&[Image::exe(Arch::X86_64), Image::exe(Arch::ARM64)], false);
    let m = parse_macho(&u[..]).unwrap();
    assert_eq!(running_slice(&m, Host::Arm64).unwrap().arch, Arch::ARM64);
    assert_eq!(running_slice(&m, Host::X86_64).unwrap().arch, Arch::X86_64);
    // An arm64 library fits the arm64 slice on Apple Silicon, not the Intel slice.
    assert_eq!(verdict("/x/u", &u), []);
    let b = verdict_with("/x/u", &u, &cx(Host::X86_64, Some(lib(Arch::ARM64))));
    assert!(matches!(b.as_slice(), [Blocker::MachArch { .. }]));
    assert!(
        b[0].to_string()
            .contains("runs as x86_64 but libmifshim.dylib is arm64")
    );
    // A universal library fits both.
    let both = parse_macho(
        &fat(
            &[Image::dylib(Arch::X86_64), Image::dylib(Arch::ARM64)],
            true,
        )[..],
    )
    .unwrap();
    assert_eq!(verdict_with("/x/u", &u, &cx(Host::X86_64, Some(both))), []);
    // Only an x86_64 slice: Rosetta runs it on Apple Silicon, with an x86_64 library.
    let intel = Image::exe(Arch::X86_64).bytes();
    assert!(matches!(
        verdict("/x/i", &intel).as_slice(),
        [Blocker::MachArch { .. }]
    ));
    // Only an arm64 slice on an Intel Mac: nothing runs.
    let b = verdict_with(
        "/x/a",
        &Image::exe(Arch::ARM64).bytes(),
        &cx(Host::X86_64, None),
    );
    assert!(b[0].to_string().contains("no slice this Mac can run"));
}

#[test]
fn apple_arm64e_binaries_need_an_arm64e_library() {
    let apple = Image::exe(Arch::ARM64E).signed(Sig {
        identifier: "com.apple.curl",
        platform: 2,
        ..Sig::default()
    });
    let u = fat(&[Image::exe(Arch::X86_64), apple], false);
    let m = parse_macho(&u[..]).unwrap();
    assert!(running_slice(&m, Host::Arm64).unwrap().arch.is_arm64e());
    // A copy outside SIP: not protected, but an arm64 library cannot go into it.
    let b = verdict("/Users/me/bin/curl", &u);
    assert!(matches!(b.as_slice(), [Blocker::MachArch { .. }]), "{b:?}");
    let e = parse_macho(&Image::dylib(Arch::ARM64E).bytes()[..]).unwrap();
    assert_eq!(
        verdict_with("/Users/me/bin/curl", &u, &cx(Host::Arm64, Some(e))),
        []
    );
    // A third-party universal binary with arm64 and arm64e runs its arm64 slice.
    let third = fat(&[Image::exe(Arch::ARM64E), Image::exe(Arch::ARM64)], false);
    let m = parse_macho(&third[..]).unwrap();
    assert_eq!(running_slice(&m, Host::Arm64).unwrap().arch, Arch::ARM64);
}

#[test]
fn library_without_interpose_table_or_signature_is_warned_about() {
    let good = parse_macho(
        &Image::dylib(Arch::ARM64)
            .signed(Sig {
                flags: cs::CS_ADHOC | cs::CS_LINKER_SIGNED,
                identifier: "libmifshim",
                ..Sig::default()
            })
            .bytes()[..],
    )
    .unwrap();
    assert_eq!(
        library_notes(Path::new("/l/libmifshim.dylib"), &good),
        Vec::<String>::new()
    );
    let mut bare = Image::dylib(Arch::ARM64);
    bare.sections.retain(|(_, s)| *s != "__interpose");
    let notes = library_notes(
        Path::new("/l/libmifshim.dylib"),
        &parse_macho(&bare.bytes()[..]).unwrap(),
    );
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].contains("no __DATA,__interpose section"));
    assert!(notes[1].contains("not code-signed"));
    // An unsigned x86_64 slice is allowed on Intel.
    let intel = parse_macho(&Image::dylib(Arch::X86_64).bytes()[..]).unwrap();
    assert_eq!(
        library_notes(Path::new("/l/x"), &intel),
        Vec::<String>::new()
    );
}

#[test]
fn unreadable_signature_is_a_note() {
    let img = Image::exe(Arch::ARM64).signed(Sig {
        identifier: "x",
        ..Sig::default()
    });
    let mut bytes = img.bytes();
    let at = bytes.len() - 20;
    bytes.truncate(at);
    let m = parse_macho(&bytes[..]).unwrap();
    let (b, notes) = macho_blockers(
        Path::new("/x/t"),
        Path::new("/x/t"),
        &m,
        &cx(Host::Arm64, None),
    );
    assert_eq!(b, []);
    assert!(notes[0].contains("not checked"), "{notes:?}");
}

// ---- the whole inspection, on files, with the macOS target --------------------------

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("mifrun-dyld-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn file(&self, name: &str, bytes: &[u8], mode: u32) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mac() -> Target {
    Target::MacOs(cx(Host::Arm64, Some(lib(Arch::ARM64))))
}

#[test]
fn inspect_macho_files_for_macos() {
    let d = Dir::new("files");
    let me = sys::creds();
    let ok = d.file("tool", &Image::exe(Arch::ARM64).bytes(), 0o755);
    let ins = inspect_for(ok.as_os_str(), None, &mac(), me).unwrap();
    assert_eq!(ins.blockers, []);
    assert!(
        ins.chain[0].ends_with("Mach-O arm64 executable; arm64: unsigned"),
        "{:?}",
        ins.chain
    );

    let hr = d.file(
        "hardened",
        &Image::exe(Arch::ARM64).signed(runtime(None, false)).bytes(),
        0o755,
    );
    let ins = inspect_for(hr.as_os_str(), None, &mac(), me).unwrap();
    assert!(matches!(ins.blockers[0], Blocker::HardenedRuntime { .. }));
    assert!(
        ins.chain[0].ends_with("arm64: signed, Team ID ABCDE12345, hardened runtime (CS_RUNTIME)"),
        "{:?}",
        ins.chain
    );

    // A script run by a protected interpreter: refused, with the interpreter named.
    let script = d.file("s.sh", b"#!/bin/sh\necho\n", 0o755);
    let ins = inspect_for(script.as_os_str(), None, &mac(), me).unwrap();
    let sip: Vec<_> = ins
        .blockers
        .iter()
        .filter(|b| {
            matches!(
                b,
                Blocker::SipProtected {
                    script: Some(_),
                    ..
                }
            )
        })
        .collect();
    assert_eq!(sip.len(), 1, "{:?}", ins.blockers);
    assert!(sip[0].to_string().contains("runs its interpreter"));
    // (On Linux /bin/sh resolves to dash: the hint names what really runs.)
    assert!(remedy(sip[0]).unwrap().contains("/opt/homebrew/bin/"));

    // `#!/usr/bin/env prog`: env itself is protected, so prog never sees the variable.
    let prog = d.file("prog", &Image::exe(Arch::ARM64).bytes(), 0o755);
    let env_script = d.file("e.sh", b"#!/usr/bin/env prog\n", 0o755);
    let path = d.0.as_os_str().to_owned();
    let ins = inspect_for(env_script.as_os_str(), Some(&path), &mac(), me).unwrap();
    assert!(
        ins.blockers
            .iter()
            .any(|b| matches!(b, Blocker::SipProtected { path, .. } if path.ends_with("env"))),
        "{:?}",
        ins.blockers
    );
    assert!(
        ins.chain
            .iter()
            .any(|c| c.starts_with(&prog.display().to_string())),
        "{:?}",
        ins.chain
    );

    // A script whose interpreter is outside SIP: the interpreter's Mach-O is checked.
    let interp = d.file("interp", &Image::exe(Arch::ARM64).bytes(), 0o755);
    let s2 = d.file("s2", format!("#!{}\n", interp.display()).as_bytes(), 0o755);
    let ins = inspect_for(s2.as_os_str(), None, &mac(), me).unwrap();
    assert_eq!(ins.blockers, []);

    // setuid: the same credential rule as on Linux.
    let suid = d.file("suid", &Image::exe(Arch::ARM64).bytes(), 0o4755);
    let nobody = sys::Creds {
        uid: 65534,
        euid: 65534,
        gid: 65534,
        egid: 65534,
    };
    let ins = inspect_for(suid.as_os_str(), None, &mac(), nobody).unwrap();
    assert!(
        ins.blockers
            .iter()
            .any(|b| matches!(b, Blocker::SetUid { .. })),
        "{:?}",
        ins.blockers
    );

    // A file that is neither: a note, nothing claimed.
    let junk = d.file("junk", b"\xcf\xfa\xed\xfe\x0c\x00", 0o755);
    let ins = inspect_for(junk.as_os_str(), None, &mac(), me).unwrap();
    assert!(ins.notes[0].contains("cannot inspect"), "{:?}", ins.notes);
}

/// The Linux build treats a Mach-O file as it always did: not ELF, no `#!`, so
/// execvp's /bin/sh fallback (the macOS checks stay out of the Linux run).
#[test]
fn linux_inspection_of_a_macho_file_is_unchanged() {
    let d = Dir::new("linux");
    let f = d.file("tool", &Image::exe(Arch::ARM64).bytes(), 0o755);
    let ins = inspect_for(
        f.as_os_str(),
        None,
        &Target::Linux { library: None },
        sys::creds(),
    )
    .unwrap();
    assert!(
        ins.chain[0].contains("no `#!` line and not ELF"),
        "{:?}",
        ins.chain
    );
    assert!(
        !ins.blockers
            .iter()
            .any(|b| matches!(b, Blocker::SipProtected { .. })),
        "{:?}",
        ins.blockers
    );
}
