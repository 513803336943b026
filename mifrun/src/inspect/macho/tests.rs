use super::build::{Image, Sig, der_entitlements, fat, xml_entitlements};
use super::*;

fn parse(bytes: &[u8]) -> Result<MachO, MachOError> {
    parse_macho(bytes)
}

#[test]
fn thin_arm64_executable_with_its_load_commands() {
    let mut img = Image::exe(Arch::ARM64);
    img.dylibs.push("/usr/lib/libc++.1.dylib");
    img.dylibs.push("@rpath/libfoo.dylib");
    let m = parse(&img.bytes()).unwrap();
    assert!(!m.universal);
    let s = &m.slices[0];
    assert_eq!(s.arch, Arch::ARM64);
    assert_eq!(s.filetype, MH_EXECUTE);
    assert_eq!(s.dylinker.as_deref(), Some("/usr/lib/dyld"));
    assert_eq!(
        s.dylibs,
        [
            "/usr/lib/libSystem.B.dylib",
            "/usr/lib/libc++.1.dylib",
            "@rpath/libfoo.dylib"
        ]
    );
    assert!(!s.restrict_segment && !s.interposes);
    assert_eq!(
        (s.signature.as_ref(), s.signature_error.as_ref()),
        (None, None)
    );
    assert_eq!(m.describe(), "Mach-O arm64 executable");
}

#[test]
fn thin_32_bit_big_endian() {
    let img = Image {
        arch: Arch {
            cputype: CPU_TYPE_POWERPC,
            cpusubtype: 0,
        },
        wide: false,
        big_endian: true,
        ..Image::exe(Arch::X86_64)
    };
    let m = parse(&img.bytes()).unwrap();
    assert_eq!(m.slices[0].arch.name(), "ppc");
    assert_eq!(m.slices[0].dylinker.as_deref(), Some("/usr/lib/dyld"));
    assert_eq!(m.slices[0].dylibs.len(), 1);
}

#[test]
fn universal_fat32_and_fat64() {
    let x = Image::exe(Arch::X86_64);
    let mut a = Image::exe(Arch::ARM64E);
    a.sections.push(("__RESTRICT", "__restrict"));
    for wide in [false, true] {
        let m = parse(&fat(&[x.clone(), a.clone()], wide)).unwrap();
        assert!(m.universal);
        assert_eq!(m.archs(), [Arch::X86_64, Arch::ARM64E]);
        assert!(m.slices[1].offset >= 0x1000 && m.slices[1].offset % 0x1000 == 0);
        assert!(!m.slices[0].restrict_segment);
        assert!(m.slices[1].restrict_segment, "per slice");
        assert_eq!(m.describe(), "Mach-O universal (x86_64, arm64e) executable");
    }
}

#[test]
fn restrict_needs_both_names_and_interpose_any_data_segment() {
    for (seg, sect, restrict, interpose) in [
        ("__RESTRICT", "__restrict", true, false),
        ("__RESTRICT", "__other", false, false),
        ("__TEXT", "__restrict", false, false),
        ("__DATA", "__interpose", false, true),
        ("__DATA_CONST", "__interpose", false, true),
        ("__TEXT", "__interpose", false, false),
    ] {
        let mut img = Image::exe(Arch::ARM64);
        img.sections.push((seg, sect));
        let s = &parse(&img.bytes()).unwrap().slices[0];
        assert_eq!(
            (s.restrict_segment, s.interposes),
            (restrict, interpose),
            "{seg},{sect}"
        );
    }
    // 32-bit segment commands too.
    let mut img = Image {
        wide: false,
        ..Image::exe(Arch {
            cputype: CPU_TYPE_X86,
            cpusubtype: 3,
        })
    };
    img.sections.push(("__RESTRICT", "__restrict"));
    assert!(parse(&img.bytes()).unwrap().slices[0].restrict_segment);
}

#[test]
fn dylib_install_name_and_interpose_section() {
    let s = &parse(&Image::dylib(Arch::ARM64).bytes()).unwrap().slices[0];
    assert_eq!(s.filetype, MH_DYLIB);
    assert_eq!(s.install_name.as_deref(), Some("@rpath/libmifshim.dylib"));
    assert!(s.interposes);
    assert_eq!(s.dylinker, None);
}

#[test]
fn code_directory_flags_team_identifier_platform() {
    let img = Image::exe(Arch::ARM64).signed(Sig {
        flags: cs::CS_RUNTIME | cs::CS_REQUIRE_LV,
        identifier: "com.example.app",
        team: Some("ABCDE12345"),
        ..Sig::default()
    });
    let sig = parse(&img.bytes()).unwrap().slices[0]
        .signature
        .clone()
        .unwrap();
    assert!(sig.hardened_runtime());
    assert_eq!(sig.flags & cs::CS_REQUIRE_LV, cs::CS_REQUIRE_LV);
    assert!(!sig.adhoc());
    assert_eq!(sig.identifier.as_deref(), Some("com.example.app"));
    assert_eq!(sig.team_id.as_deref(), Some("ABCDE12345"));
    assert!(!sig.entitlements.present);

    let adhoc = Image::exe(Arch::ARM64).signed(Sig {
        flags: cs::CS_ADHOC | cs::CS_LINKER_SIGNED,
        identifier: "a.out",
        platform: 0,
        alternate_only: true,
        ..Sig::default()
    });
    let sig = parse(&adhoc.bytes()).unwrap().slices[0]
        .signature
        .clone()
        .unwrap();
    assert!(sig.adhoc() && !sig.hardened_runtime());
    assert_eq!(sig.team_id, None);

    let platform = Image::exe(Arch::ARM64E).signed(Sig {
        identifier: "com.apple.curl",
        platform: 2,
        ..Sig::default()
    });
    let sig = parse(&platform.bytes()).unwrap().slices[0]
        .signature
        .clone()
        .unwrap();
    assert_eq!(sig.platform, 2);
}

#[test]
fn entitlements_xml_and_der() {
    let cases: [&[(&str, bool)]; 4] = [
        &[(ENT_ALLOW_DYLD_ENV, true)],
        &[(ENT_DISABLE_LV, true)],
        &[(ENT_ALLOW_DYLD_ENV, true), (ENT_DISABLE_LV, true)],
        &[(ENT_ALLOW_DYLD_ENV, false), (ENT_DISABLE_LV, false)],
    ];
    for ents in cases {
        let want = |k: &str| ents.iter().any(|(n, v)| *n == k && *v);
        for der in [false, true] {
            let sig = Sig {
                flags: cs::CS_RUNTIME,
                identifier: "x",
                xml_entitlements: (!der).then(|| xml_entitlements(ents)),
                der_entitlements: der.then(|| der_entitlements(ents)),
                ..Sig::default()
            };
            let img = Image::exe(Arch::ARM64).signed(sig);
            let e = parse(&img.bytes()).unwrap().slices[0]
                .signature
                .clone()
                .unwrap()
                .entitlements;
            assert!(e.present);
            assert_eq!(
                e.allow_dyld_env,
                want(ENT_ALLOW_DYLD_ENV),
                "{ents:?} der={der}"
            );
            assert_eq!(
                e.disable_library_validation,
                want(ENT_DISABLE_LV),
                "{ents:?} der={der} (the nested dictionary's key must not count)"
            );
        }
    }
}

#[test]
fn xml_entitlements_tolerate_spacing_and_other_values() {
    let e = super::xml_entitlements(
        b"<plist><dict><key> com.apple.security.cs.allow-dyld-environment-variables </key><true /><key>com.apple.security.cs.disable-library-validation</key><string>yes</string><key>z</key><true/></dict></plist>",
    );
    assert!(e.allow_dyld_env);
    assert!(!e.disable_library_validation, "a string is not true");
}

#[test]
fn a_bad_signature_is_reported_but_the_rest_is_read() {
    let img = Image::exe(Arch::ARM64).signed(Sig {
        identifier: "x",
        ..Sig::default()
    });
    let mut bytes = img.bytes();
    // Corrupt the SuperBlob's magic.
    let sig_at = bytes
        .windows(4)
        .position(|w| w == CSMAGIC_EMBEDDED_SIGNATURE.to_be_bytes())
        .unwrap();
    bytes[sig_at] = 0;
    let s = &parse(&bytes).unwrap().slices[0];
    assert!(s.signature.is_none());
    assert!(s.signature_error.as_deref().unwrap().contains("SuperBlob"));
    assert_eq!(s.dylinker.as_deref(), Some("/usr/lib/dyld"));
    // A SuperBlob whose count runs past its length.
    let mut bytes = img.bytes();
    bytes[sig_at + 8..sig_at + 12].copy_from_slice(&1000u32.to_be_bytes());
    assert!(parse(&bytes).unwrap().slices[0].signature_error.is_some());
}

#[test]
fn malformed_files_are_errors_not_panics() {
    assert_eq!(parse(b"\x7fELF\x02\x01\x01"), Err(MachOError::NotMachO));
    assert_eq!(parse(b""), Err(MachOError::NotMachO));
    // A Java class file: 0xcafebabe then minor/major version (major 52).
    assert_eq!(
        parse(b"\xca\xfe\xba\xbe\x00\x00\x00\x34rest"),
        Err(MachOError::NotMachO)
    );
    assert!(!is_macho(b"\xca\xfe\xba\xbe\x00\x00\x00\x34"));
    assert!(is_macho(&Image::exe(Arch::ARM64).bytes()));
    assert!(is_macho(&fat(&[Image::exe(Arch::ARM64)], false)));

    let good = Image::exe(Arch::ARM64).bytes();
    // Every truncation of a good file.
    for n in 0..good.len() {
        let _ = parse(&good[..n]);
    }
    // sizeofcmds beyond the file; a zero cmdsize; too many sections.
    let mut b = good.clone();
    b[20..24].copy_from_slice(&0xffff_u32.to_le_bytes());
    assert!(matches!(parse(&b), Err(MachOError::Invalid(_))));
    let mut b = good.clone();
    b[36..40].copy_from_slice(&0u32.to_le_bytes());
    assert!(matches!(parse(&b), Err(MachOError::Invalid(_))));
    let seg = good.windows(6).position(|w| w == b"__TEXT").unwrap();
    let mut b = good.clone();
    // nsects sits 48 bytes after segname in segment_command_64.
    b[seg + 56..seg + 60].copy_from_slice(&1000u32.to_le_bytes());
    assert!(matches!(parse(&b), Err(MachOError::Invalid(_))));

    // A fat entry that points past the end, and one whose header disagrees.
    let mut f = fat(&[Image::exe(Arch::ARM64)], false);
    f[16..20].copy_from_slice(&0x10_0000u32.to_be_bytes());
    assert!(matches!(parse(&f), Err(MachOError::Invalid(_))));
    let mut f = fat(&[Image::exe(Arch::ARM64)], false);
    f[8..12].copy_from_slice(&(CPU_TYPE_X86_64 as u32).to_be_bytes());
    assert!(matches!(parse(&f), Err(MachOError::Invalid(_))));
}

#[test]
fn arch_names() {
    assert_eq!(Arch::ARM64E.name(), "arm64e");
    assert!(Arch::ARM64E.is_arm64e());
    // The capability bits (pointer-auth ABI version) are not the subtype.
    let versioned = Arch {
        cputype: CPU_TYPE_ARM64,
        cpusubtype: CPU_SUBTYPE_ARM64E | 0x8000_0000_u32 as i32,
    };
    assert!(versioned.is_arm64e());
    assert_eq!(
        Arch {
            cputype: CPU_TYPE_X86_64,
            cpusubtype: CPU_SUBTYPE_X86_64_H
        }
        .name(),
        "x86_64h"
    );
    assert_eq!(Arch::X86_64.to_string(), "x86_64");
}

#[test]
fn signature_descriptions() {
    let d = |sig: Sig| {
        parse(&Image::exe(Arch::ARM64).signed(sig).bytes())
            .unwrap()
            .slices[0]
            .signature
            .clone()
            .unwrap()
            .describe()
    };
    assert_eq!(
        d(Sig {
            flags: cs::CS_ADHOC | cs::CS_LINKER_SIGNED,
            identifier: "a",
            ..Sig::default()
        }),
        "signed ad hoc, by the linker (CS_LINKER_SIGNED)"
    );
    assert_eq!(
        d(Sig {
            identifier: "com.apple.curl",
            platform: 2,
            ..Sig::default()
        }),
        "signed by Apple (platform binary)"
    );
    assert_eq!(
        d(Sig {
            flags: cs::CS_RUNTIME | cs::CS_RESTRICT | cs::CS_REQUIRE_LV,
            identifier: "x",
            team: Some("T1"),
            xml_entitlements: Some(xml_entitlements(&[
                (ENT_ALLOW_DYLD_ENV, true),
                (ENT_DISABLE_LV, true)
            ])),
            ..Sig::default()
        }),
        "signed, Team ID T1, hardened runtime (CS_RUNTIME), library validation (CS_REQUIRE_LV), restricted (CS_RESTRICT), allows DYLD_* variables, library validation disabled"
    );
}
