//! The decision on in-memory fixtures: every kind of ELF file, `#!` lines, `env`,
//! `PATH`, and truncated or corrupted files (no panic, no verdict the kernel would not
//! give).

use super::*;
use std::collections::BTreeMap;

const GLIBC: &[u8] = b"/lib64/ld-linux-x86-64.so.2\0";
const MUSL: &[u8] = b"/lib/ld-musl-x86_64.so.1\0";

/// A segment of a fixture: its type and contents.
struct Seg<'a>(u32, &'a [u8]);

/// A 64-bit little-endian (or 32-bit) ELF file: header, program headers with their
/// data, then named sections, a `.shstrtab` and the section header table.
fn elf(is64: bool, machine: u16, e_type: u16, segs: &[Seg<'_>], sections: &[&str]) -> Vec<u8> {
    let (ehsize, phent, shent) = if is64 { (64, 56, 64) } else { (52, 32, 40) };
    let mut out = vec![0u8; ehsize + phent * segs.len()];
    out[..4].copy_from_slice(b"\x7fELF");
    out[4] = if is64 { 2 } else { 1 };
    out[5] = 1;
    out[6] = 1;
    let put16 =
        |o: &mut Vec<u8>, at: usize, v: u16| o[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put32 =
        |o: &mut Vec<u8>, at: usize, v: u32| o[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let putw = |o: &mut Vec<u8>, at64: usize, at32: usize, v: u64| {
        if is64 {
            o[at64..at64 + 8].copy_from_slice(&v.to_le_bytes())
        } else {
            o[at32..at32 + 4].copy_from_slice(&(v as u32).to_le_bytes())
        }
    };
    put16(&mut out, 16, e_type);
    put16(&mut out, 18, machine);
    putw(&mut out, 32, 28, ehsize as u64);
    put16(&mut out, if is64 { 54 } else { 42 }, phent as u16);
    put16(&mut out, if is64 { 56 } else { 44 }, segs.len() as u16);
    for (i, Seg(t, data)) in segs.iter().enumerate() {
        let off = out.len() as u64;
        out.extend_from_slice(data);
        while out.len() % 8 != 0 {
            out.push(0);
        }
        let ph = ehsize + i * phent;
        put32(&mut out, ph, *t);
        putw(&mut out, ph + 8, ph + 4, off);
        putw(&mut out, ph + 32, ph + 16, data.len() as u64);
        putw(
            &mut out,
            ph + 48,
            ph + 28,
            if *t == PT_NOTE { 4 } else { 1 },
        );
    }
    if !sections.is_empty() {
        let mut names = vec![0u8];
        let mut at = vec![];
        for s in sections.iter().chain([&".shstrtab"]) {
            at.push(names.len() as u32);
            names.extend_from_slice(s.as_bytes());
            names.push(0);
        }
        let stroff = out.len() as u64;
        out.extend_from_slice(&names);
        while out.len() % 8 != 0 {
            out.push(0);
        }
        let shoff = out.len();
        let count = sections.len() + 2;
        out.resize(shoff + count * shent, 0);
        for (i, name) in at.iter().enumerate() {
            let h = shoff + (i + 1) * shent;
            put32(&mut out, h, *name);
        }
        let strh = shoff + (count - 1) * shent;
        putw(&mut out, strh + 24, strh + 16, stroff);
        putw(&mut out, strh + 32, strh + 20, names.len() as u64);
        putw(&mut out, 40, 32, shoff as u64);
        put16(&mut out, if is64 { 58 } else { 46 }, shent as u16);
        put16(&mut out, if is64 { 60 } else { 48 }, count as u16);
        put16(&mut out, if is64 { 62 } else { 50 }, (count - 1) as u16);
    }
    out
}

fn x86(segs: &[Seg<'_>], sections: &[&str]) -> Vec<u8> {
    elf(true, 62, ET_DYN, segs, sections)
}

fn go_note() -> Vec<u8> {
    let mut n = vec![];
    n.extend_from_slice(&3u32.to_le_bytes());
    n.extend_from_slice(&4u32.to_le_bytes());
    n.extend_from_slice(&NT_GO_BUILDID.to_le_bytes());
    n.extend_from_slice(b"Go\0\0abcd");
    n
}

fn gnu_note() -> Vec<u8> {
    let mut n = vec![];
    n.extend_from_slice(&4u32.to_le_bytes());
    n.extend_from_slice(&4u32.to_le_bytes());
    n.extend_from_slice(&3u32.to_le_bytes());
    n.extend_from_slice(b"GNU\0wxyz");
    n
}

fn kind(file: &[u8]) -> Elf {
    let mut f = file;
    let head = &file[..file.len().min(HEAD)];
    classify(&mut f, head, HOST)
}

/// A file whose bytes beyond `head` must be read (to test reads outside the head).
fn kind_small_head(file: &[u8], head: usize) -> Elf {
    let mut f = file;
    classify(&mut f, &file[..file.len().min(head)], HOST)
}

#[test]
fn glibc_musl_static_and_go_programs() {
    assert_eq!(kind(&x86(&[Seg(PT_INTERP, GLIBC)], &[])), Elf::Glibc);
    assert_eq!(kind(&x86(&[Seg(PT_INTERP, MUSL)], &[])), Elf::ForeignLoader);
    assert_eq!(
        kind(&x86(&[Seg(PT_INTERP, b"/system/bin/linker64\0")], &[])),
        Elf::ForeignLoader
    );
    assert_eq!(
        kind(&x86(&[Seg(PT_INTERP, b"/lib/ld-uClibc.so.0\0")], &[])),
        Elf::ForeignLoader
    );
    assert_eq!(kind(&x86(&[Seg(1, b"code")], &[".text"])), Elf::Static);
    assert_eq!(
        kind(&elf(true, 62, ET_EXEC, &[Seg(1, b"x")], &[])),
        Elf::Static
    );
    // Go: by its note (also dynamically linked, with cgo), or by a section name.
    assert_eq!(
        kind(&x86(
            &[
                Seg(PT_INTERP, GLIBC),
                Seg(PT_NOTE, &gnu_note()),
                Seg(PT_NOTE, &go_note())
            ],
            &[]
        )),
        Elf::Go
    );
    assert_eq!(kind(&x86(&[Seg(PT_NOTE, &gnu_note())], &[])), Elf::Static);
    assert_eq!(
        kind(&x86(&[Seg(PT_INTERP, GLIBC)], &[".text", ".go.buildinfo"])),
        Elf::Go
    );
    assert_eq!(
        kind(&x86(&[Seg(PT_INTERP, GLIBC)], &[".note.go.buildid"])),
        Elf::Go
    );
    // A name that only ends like Go's is not Go's.
    assert_eq!(
        kind(&x86(
            &[Seg(PT_INTERP, GLIBC)],
            &[".xgo.buildinfo", ".go.buildinfox"]
        )),
        Elf::Glibc
    );
}

#[test]
fn glibc_loader_names() {
    for l in [
        "/lib64/ld-linux-x86-64.so.2",
        "/lib/ld-linux-aarch64.so.1",
        "/lib/ld-linux.so.2",
        "/lib/ld-linux-armhf.so.3",
        "/lib/ld64.so.2",
        "/lib/ld64.so.1",
        "/lib/ld.so.1",
        "/nix/store/abc-glibc-2.38/lib/ld-linux-x86-64.so.2",
        "ld-linux-x86-64.so.2",
    ] {
        assert!(is_glibc_loader(l.as_bytes()), "{l}");
    }
    for l in [
        "/lib/ld-musl-x86_64.so.1",
        "/lib/ld-uClibc.so.0",
        "/system/bin/linker64",
        "/lib/ld-linux/evil",
        "",
    ] {
        assert!(!is_glibc_loader(l.as_bytes()), "{l}");
    }
}

#[test]
fn another_abi_is_foreign() {
    assert_eq!(
        kind(&elf(
            false,
            3,
            ET_EXEC,
            &[Seg(PT_INTERP, b"/lib/ld-linux.so.2\0")],
            &[]
        )),
        Elf::ForeignAbi
    );
    assert_eq!(
        kind(&elf(
            true,
            183,
            ET_DYN,
            &[Seg(PT_INTERP, b"/lib/ld-linux-aarch64.so.1\0")],
            &[]
        )),
        Elf::ForeignAbi
    );
    // Static stays static whatever the machine (the supervisor's business either way).
    assert_eq!(
        kind(&elf(false, 3, ET_EXEC, &[Seg(1, b"x")], &[])),
        Elf::Static
    );
    // 32-bit Go by its section.
    assert_eq!(
        kind(&elf(
            false,
            3,
            ET_EXEC,
            &[Seg(PT_INTERP, b"/lib/ld-linux.so.2\0")],
            &[".go.buildinfo"]
        )),
        Elf::Go
    );
}

#[test]
fn what_the_kernel_refuses_is_left_to_it() {
    assert_eq!(kind(b""), Elf::Invalid);
    assert_eq!(kind(b"\x7fELF"), Elf::Invalid);
    assert_eq!(kind(&elf(true, 62, 1, &[Seg(1, b"x")], &[])), Elf::Invalid); // ET_REL
    assert_eq!(kind(&elf(true, 62, ET_EXEC, &[], &[])), Elf::Invalid); // no program headers
    let mut bad = x86(&[Seg(PT_INTERP, GLIBC)], &[]);
    bad[54] = 55; // e_phentsize
    assert_eq!(kind(&bad), Elf::Invalid);
    let mut bad = x86(&[Seg(PT_INTERP, GLIBC)], &[]);
    bad[4] = 3; // class
    assert_eq!(kind(&bad), Elf::Invalid);
}

#[test]
fn a_long_or_unreadable_interpreter_name_is_not_glibcs() {
    let long = format!("/{}/ld-linux-x86-64.so.2\0", "d".repeat(300));
    assert_eq!(
        kind(&x86(&[Seg(PT_INTERP, long.as_bytes())], &[])),
        Elf::Glibc
    );
    let nameless = format!("/{}\0", "ld-linux".repeat(40));
    assert_eq!(
        kind(&x86(&[Seg(PT_INTERP, nameless.as_bytes())], &[])),
        Elf::ForeignLoader
    );
    // PT_INTERP pointing past the end of the file.
    let mut f = x86(&[Seg(PT_INTERP, GLIBC)], &[]);
    let ph = 64;
    f[ph + 8..ph + 16].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert_eq!(kind(&f), Elf::ForeignLoader);
    f[ph + 8..ph + 16].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(kind(&f), Elf::ForeignLoader);
}

#[test]
fn reads_beyond_the_head_reach_the_file() {
    let f = x86(
        &[Seg(PT_INTERP, GLIBC), Seg(PT_NOTE, &go_note())],
        &[".text"],
    );
    for head in [16, 64, 100, 200] {
        assert_eq!(kind_small_head(&f, head), Elf::Go, "head {head}");
    }
    let f = x86(&[Seg(PT_INTERP, GLIBC)], &[".go.buildinfo"]);
    assert_eq!(kind_small_head(&f, 16), Elf::Go);
}

#[test]
fn many_sections_and_a_big_name_table() {
    let names: Vec<String> = (0..300)
        .map(|i| format!(".section.with.a.long.name.{i}"))
        .collect();
    let mut refs: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(kind(&x86(&[Seg(PT_INTERP, GLIBC)], &refs)), Elf::Glibc);
    refs.push(".go.buildinfo"); // past the 512 bytes of names held, and the first 8 headers
    assert_eq!(kind(&x86(&[Seg(PT_INTERP, GLIBC)], &refs)), Elf::Go);
}

/// Every prefix of every fixture, and deterministic corruptions of them: no panic,
/// and a truncated file is never taken for a glibc program unless what decides it was
/// all there.
#[test]
fn truncated_and_corrupted_files_never_panic() {
    let fixtures = [
        x86(
            &[Seg(PT_INTERP, GLIBC), Seg(PT_NOTE, &gnu_note())],
            &[".text", ".data"],
        ),
        x86(&[Seg(PT_INTERP, MUSL)], &[]),
        x86(
            &[Seg(1, b"x"), Seg(PT_NOTE, &go_note())],
            &[".go.buildinfo"],
        ),
        elf(
            false,
            3,
            ET_EXEC,
            &[Seg(PT_INTERP, b"/lib/ld-linux.so.2\0")],
            &[".a"],
        ),
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for f in &fixtures {
        for n in 0..f.len() {
            let k = kind(&f[..n]);
            let k2 = kind_small_head(&f[..n], n.min(40));
            assert_eq!(k, k2, "prefix {n}");
        }
        for _ in 0..3000 {
            let mut g = f.clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() as usize) % g.len();
                g[i] = next() as u8;
            }
            let _ = kind(&g);
            let _ = kind_small_head(&g, 24);
        }
    }
    // The program headers cut: not glibc's.
    let f = &fixtures[0];
    assert_eq!(kind(&f[..64 + 20]), Elf::Invalid);
}

#[test]
fn shebang_lines_like_the_kernel() {
    assert_eq!(shebang(b"#!/bin/sh\n"), Some((&b"/bin/sh"[..], None)));
    assert_eq!(
        shebang(b"#! /usr/bin/env  python3 -u \nx"),
        Some((&b"/usr/bin/env"[..], Some(&b"python3 -u"[..])))
    );
    assert_eq!(
        shebang(b"#!\t/bin/bash\t-e"),
        Some((&b"/bin/bash"[..], Some(&b"-e"[..])))
    );
    assert_eq!(shebang(b"#!   \n"), None);
    assert_eq!(shebang(b"#!"), None);
    assert_eq!(shebang(b"echo hi"), None);
    assert_eq!(shebang(b"#!/bin/sh\0junk"), Some((&b"/bin/sh"[..], None)));
    let long = [b"#!/".as_slice(), &[b'a'; 400]].concat();
    assert_eq!(shebang(&long).unwrap().0.len(), SHEBANG_BUF - 3);
}

#[test]
fn env_arguments() {
    assert_eq!(env_program(None), (None, false));
    assert_eq!(
        env_program(Some(b"python3")),
        (Some(&b"python3"[..]), false)
    );
    // Without -S the rest of the line is one word.
    assert_eq!(
        env_program(Some(b"python3 -u")),
        (Some(&b"python3 -u"[..]), false)
    );
    assert_eq!(
        env_program(Some(b"-S python3 -u")),
        (Some(&b"python3"[..]), false)
    );
    assert_eq!(
        env_program(Some(b"-S -i A=1 tool")),
        (Some(&b"tool"[..]), true)
    );
    assert_eq!(
        env_program(Some(b"-S -u HOME -C /tmp tool")),
        (Some(&b"tool"[..]), false)
    );
    assert_eq!(env_program(Some(b"-i")), (None, true));
    assert_eq!(env_program(Some(b"-S")), (None, false));
}

/// A file system of in-memory files; a path in `unreadable` exists but cannot be
/// opened; modes: executable unless listed in `noexec`.
#[derive(Default)]
struct MemFs {
    files: BTreeMap<Vec<u8>, Vec<u8>>,
    unreadable: Vec<Vec<u8>>,
    noexec: Vec<Vec<u8>>,
}

impl MemFs {
    fn with(mut self, path: &str, bytes: Vec<u8>) -> Self {
        self.files.insert(path.as_bytes().to_vec(), bytes);
        self
    }
}

fn strip(p: &[u8]) -> Vec<u8> {
    assert_eq!(p.last(), Some(&0), "paths reach the Fs NUL-terminated");
    p[..p.len() - 1].to_vec()
}

impl Fs for MemFs {
    type F = Vec<u8>;
    fn open(&mut self, path: &[u8]) -> Option<Vec<u8>> {
        let p = strip(path);
        if self.unreadable.contains(&p) {
            return None;
        }
        self.files.get(&p).cloned()
    }
    fn probe(&mut self, path: &[u8]) -> Probe {
        let p = strip(path);
        if !self.files.contains_key(&p) && !self.unreadable.contains(&p) {
            Probe::Missing
        } else if self.noexec.contains(&p) {
            Probe::NotExecutable
        } else {
            Probe::Executable
        }
    }
}

impl File for Vec<u8> {
    fn read_at(&mut self, buf: &mut [u8], off: u64) -> Option<usize> {
        // Short reads on purpose: at most 1000 bytes at a time.
        let n = buf.len().min(1000);
        self.as_slice().read_at(&mut buf[..n], off)
    }
}

fn fs() -> MemFs {
    MemFs::default()
        .with("/bin/sh", x86(&[Seg(PT_INTERP, GLIBC)], &[]))
        .with("/usr/bin/env", x86(&[Seg(PT_INTERP, GLIBC)], &[]))
        .with("/bin/static", x86(&[Seg(1, b"x")], &[]))
        .with(
            "/usr/local/bin/gotool",
            x86(&[Seg(1, b"x")], &[".go.buildinfo"]),
        )
        .with("/usr/bin/python3", x86(&[Seg(PT_INTERP, GLIBC)], &[]))
        .with("/lib64/ld-linux-x86-64.so.2", x86(&[Seg(1, b"x")], &[]))
        .with("/lib/ld-musl-x86_64.so.1", x86(&[Seg(1, b"x")], &[]))
        .with("/opt/musl-prog", x86(&[Seg(PT_INTERP, MUSL)], &[]))
}

fn decide_str(fs: &mut MemFs, path: &str, path_var: Option<&str>) -> Verdict {
    let mut p = path.as_bytes().to_vec();
    p.push(0);
    decide(fs, &p, path_var.map(str::as_bytes))
}

const P: Option<&str> = Some("/usr/local/bin:/usr/bin:/bin");

#[test]
fn decisions_on_programs() {
    let mut fs = fs();
    assert_eq!(decide_str(&mut fs, "/bin/sh", P), Verdict::AsIs);
    assert_eq!(
        decide_str(&mut fs, "/bin/static", P),
        Verdict::Supervise(Why::Elf(Elf::Static, Via::Itself))
    );
    assert_eq!(
        decide_str(&mut fs, "/usr/local/bin/gotool", P),
        Verdict::Supervise(Why::Elf(Elf::Go, Via::Itself))
    );
    assert_eq!(
        decide_str(&mut fs, "/opt/musl-prog", P),
        Verdict::Supervise(Why::Elf(Elf::ForeignLoader, Via::Itself))
    );
    // glibc's loader run as a program honours the preload; musl's does not.
    assert_eq!(
        decide_str(&mut fs, "/lib64/ld-linux-x86-64.so.2", P),
        Verdict::AsIs
    );
    assert_eq!(
        decide_str(&mut fs, "/lib/ld-musl-x86_64.so.1", P),
        Verdict::Supervise(Why::Elf(Elf::Static, Via::Itself))
    );
    // Missing, unreadable, not ELF and not `#!`: the kernel answers.
    assert_eq!(decide_str(&mut fs, "/nowhere", P), Verdict::AsIs);
    fs.unreadable.push(b"/bin/static".to_vec());
    assert_eq!(decide_str(&mut fs, "/bin/static", P), Verdict::AsIs);
    let mut fs = fs.with("/tmp/text", b"echo hi\n".to_vec());
    assert_eq!(decide_str(&mut fs, "/tmp/text", P), Verdict::AsIs);
}

#[test]
fn decisions_on_scripts() {
    let mut fs = fs()
        .with("/tmp/a", b"#!/bin/sh\necho\n".to_vec())
        .with("/tmp/b", b"#!/bin/static -x\n".to_vec())
        .with("/tmp/c", b"#!/usr/bin/env gotool\n".to_vec())
        .with("/tmp/d", b"#!/usr/bin/env python3\n".to_vec())
        .with("/tmp/e", b"#!/usr/bin/env -S -i python3\n".to_vec())
        .with("/tmp/f", b"#!/tmp/a\n".to_vec())
        .with("/tmp/g", b"#!/missing\n".to_vec())
        .with("/tmp/h", b"#!/usr/bin/env nosuch\n".to_vec())
        .with("/tmp/i", b"#!/opt/musl-prog\n".to_vec());
    assert_eq!(decide_str(&mut fs, "/tmp/a", P), Verdict::AsIs);
    assert_eq!(
        decide_str(&mut fs, "/tmp/b", P),
        Verdict::Supervise(Why::Elf(Elf::Static, Via::Interpreter))
    );
    assert_eq!(
        decide_str(&mut fs, "/tmp/c", P),
        Verdict::Supervise(Why::Elf(Elf::Go, Via::EnvProgram))
    );
    // `env` finds it through the new program's PATH only.
    assert_eq!(
        decide_str(&mut fs, "/tmp/c", Some("/usr/bin:/bin")),
        Verdict::AsIs
    );
    assert_eq!(decide_str(&mut fs, "/tmp/d", P), Verdict::AsIs);
    assert_eq!(
        decide_str(&mut fs, "/tmp/e", P),
        Verdict::Supervise(Why::EnvClears)
    );
    // A script as interpreter is followed as the kernel follows it; a missing one is
    // the kernel's ENOENT.
    assert_eq!(decide_str(&mut fs, "/tmp/f", P), Verdict::AsIs);
    assert_eq!(decide_str(&mut fs, "/tmp/g", P), Verdict::AsIs);
    assert_eq!(decide_str(&mut fs, "/tmp/h", P), Verdict::AsIs);
    assert_eq!(
        decide_str(&mut fs, "/tmp/i", P),
        Verdict::Supervise(Why::Elf(Elf::ForeignLoader, Via::Interpreter))
    );
}

/// `#!OUTER` -> `#!INNER` -> static program: the kernel runs the static program
/// (`binfmt_script` follows a script interpreter); it was taken as is, its traffic
/// unsteered (`exec_review::a_script_whose_interpreter_is_a_script_…`).
#[test]
fn a_script_whose_interpreter_is_a_script_of_a_static_program_is_supervised() {
    let mut fs = fs()
        .with("/tmp/b", b"#!/bin/static -x\n".to_vec())
        .with("/tmp/c", b"#!/usr/bin/env gotool\n".to_vec())
        .with("/tmp/outer", b"#!/tmp/b\n".to_vec())
        .with("/tmp/via-env", b"#!/tmp/c arg\n".to_vec())
        .with("/tmp/no-shebang", b"echo\n".to_vec())
        .with("/tmp/to-text", b"#!/tmp/no-shebang\n".to_vec());
    assert_eq!(
        decide_str(&mut fs, "/tmp/outer", P),
        Verdict::Supervise(Why::Elf(Elf::Static, Via::Interpreter))
    );
    // The env line of the last script counts.
    assert_eq!(
        decide_str(&mut fs, "/tmp/via-env", P),
        Verdict::Supervise(Why::Elf(Elf::Go, Via::EnvProgram))
    );
    // A script interpreter without `#!` is the kernel's ENOEXEC.
    assert_eq!(decide_str(&mut fs, "/tmp/to-text", P), Verdict::AsIs);
    // A chain of five scripts (four as interpreters: the bound) is followed; one of
    // six is the kernel's ELOOP.
    let mut prev = "/tmp/b".to_string();
    for i in 0..MAX_SCRIPT_LEVELS {
        let name = format!("/tmp/chain{i}");
        fs = fs.with(&name, format!("#!{prev}\n").into_bytes());
        prev = name;
    }
    assert_eq!(
        decide_str(&mut fs, &prev, P),
        Verdict::Supervise(Why::Elf(Elf::Static, Via::Interpreter))
    );
    let fs2 = &mut fs.with("/tmp/chain-long", format!("#!{prev}\n").into_bytes());
    assert_eq!(decide_str(fs2, "/tmp/chain-long", P), Verdict::AsIs);
    // An interpreter (script or ELF) the caller may not execute: the kernel's EACCES.
    let mut nx = self::fs()
        .with("/tmp/b", b"#!/bin/static -x\n".to_vec())
        .with("/tmp/outer", b"#!/tmp/b\n".to_vec())
        .with("/tmp/direct", b"#!/bin/static\n".to_vec());
    nx.noexec.push(b"/tmp/b".to_vec());
    assert_eq!(decide_str(&mut nx, "/tmp/outer", P), Verdict::AsIs);
    nx.noexec.push(b"/bin/static".to_vec());
    assert_eq!(decide_str(&mut nx, "/tmp/direct", P), Verdict::AsIs);
    // A loop ends.
    let mut fs = self::fs()
        .with("/tmp/l1", b"#!/tmp/l2\n".to_vec())
        .with("/tmp/l2", b"#!/tmp/l1\n".to_vec());
    assert_eq!(decide_str(&mut fs, "/tmp/l1", P), Verdict::AsIs);
}

#[test]
fn path_search_like_execvp() {
    let mut fs = fs()
        .with("/a/tool", vec![])
        .with("/b/tool", vec![])
        .with("tool", vec![]);
    fs.noexec.push(b"/a/tool".to_vec());
    let mut out = [0u8; 64];
    let mut find = |fs: &mut MemFs, name: &str, pv: Option<&str>| {
        search(fs, name.as_bytes(), pv.map(str::as_bytes), &mut out)
            .ok()
            .map(|n| String::from_utf8(out[..n].to_vec()).unwrap())
    };
    assert_eq!(
        find(&mut fs, "tool", Some("/x:/a:/b")).as_deref(),
        Some("/b/tool")
    );
    assert_eq!(
        find(&mut fs, "tool", Some("/x::/b")).as_deref(),
        Some("tool")
    );
    assert_eq!(find(&mut fs, "tool", Some("/x")), None);
    assert_eq!(find(&mut fs, "sh", None).as_deref(), Some("/bin/sh"));
    assert_eq!(find(&mut fs, "./x/y", Some("/x")).as_deref(), Some("./x/y"));
    assert_eq!(find(&mut fs, "", Some("/b")), None);
    let mut tiny = [0u8; 8];
    assert_eq!(search(&mut fs, b"tool", Some(b"/b"), &mut tiny), Ok(7));
    assert_eq!(
        search(&mut fs, b"tool", Some(b"/bbbb"), &mut tiny),
        Err(NotFound::Longer)
    );
    // What execvp's errno would be: EACCES when a candidate exists but is not
    // executable, ENOENT otherwise, ENAMETOOLONG for a name longer than NAME_MAX.
    let mut out = [0u8; 64];
    assert_eq!(
        search(&mut fs, b"tool", Some(b"/a:/x"), &mut out),
        Err(NotFound::None { denied: true })
    );
    assert_eq!(
        search(&mut fs, b"tool", Some(b"/x"), &mut out),
        Err(NotFound::None { denied: false })
    );
    let long = vec![b'n'; 256];
    assert_eq!(
        search(&mut fs, &long, Some(b"/b"), &mut [0u8; 4096]),
        Err(NotFound::NameTooLong)
    );
}

impl File for std::fs::File {
    fn read_at(&mut self, buf: &mut [u8], off: u64) -> Option<usize> {
        std::os::unix::fs::FileExt::read_at(self, buf, off).ok()
    }
}

/// The real programs of this machine (Debian: glibc's /bin/sh, a static busybox).
#[test]
fn real_programs() {
    struct Real;
    impl Fs for Real {
        type F = std::fs::File;
        fn open(&mut self, path: &[u8]) -> Option<std::fs::File> {
            use std::os::unix::ffi::OsStrExt;
            std::fs::File::open(std::ffi::OsStr::from_bytes(&strip(path))).ok()
        }
        fn probe(&mut self, _: &[u8]) -> Probe {
            Probe::Executable
        }
    }
    assert_eq!(decide(&mut Real, b"/bin/sh\0", None), Verdict::AsIs);
    assert_eq!(decide(&mut Real, b"/usr/bin/env\0", None), Verdict::AsIs);
    if std::path::Path::new("/bin/busybox").exists() {
        assert_eq!(
            decide(&mut Real, b"/bin/busybox\0", None),
            Verdict::Supervise(Why::Elf(Elf::Static, Via::Itself))
        );
    }
}

/// `posix_spawn("./prog")` after `addchdir_np(DIR)` runs `DIR/prog`: the hooks decided
/// `./prog` in the parent's directory, and a static program in DIR ran unsupervised
/// (`exec_review::posix_spawn_with_a_chdir_file_action_supervises_a_static_program`).
/// The steps the caller follows to the child's directory, in order.
#[test]
fn a_spawn_that_changes_directory_execs_the_new_directorys_file() {
    use SpawnAction::*;
    let run = |acts: &[SpawnAction<'_>]| -> Option<Vec<String>> {
        let mut steps = vec![];
        let ok = spawn_dir(
            acts.len(),
            |i| acts[i],
            |st| {
                steps.push(match st {
                    DirStep::Chdir(d) => String::from_utf8(strip(d)).unwrap(),
                    DirStep::Fchdir(fd) => format!("fd {fd}"),
                });
                true
            },
        );
        ok.then_some(steps)
    };
    assert_eq!(run(&[]), Some(vec![]));
    assert_eq!(run(&[Replaces(1), Other]), Some(vec![]));
    assert_eq!(
        run(&[Chdir(b"/a\0"), Replaces(0), Chdir(b"b\0"), Chdir(b"../c\0")]).unwrap(),
        ["/a", "b", "../c"]
    );
    // An fchdir: the parent's descriptor, unless an action before it replaced it.
    assert_eq!(
        run(&[Chdir(b"/a\0"), Fchdir(12), Chdir(b"b\0")]).unwrap(),
        ["/a", "fd 12", "b"]
    );
    assert_eq!(run(&[Replaces(7), Fchdir(7)]), None);
    assert_eq!(run(&[ClosesFrom(3), Fchdir(7)]), None);
    assert_eq!(run(&[ClosesFrom(8), Fchdir(7)]).unwrap(), ["fd 7"]);
    assert_eq!(run(&[Fchdir(-1)]), None);
    // What cannot be read: fail closed; a path without its NUL is not followed.
    assert_eq!(run(&[Unknown]), None);
    assert_eq!(run(&[Chdir(b"/a")]), None);
    // A step the caller cannot follow (a directory it cannot open) ends the walk.
    let mut seen = 0;
    let acts = [Chdir(b"/a\0"), Chdir(b"/b\0")];
    assert!(!spawn_dir(
        2,
        |i| acts[i],
        |_| {
            seen += 1;
            false
        }
    ));
    assert_eq!(seen, 1);
}

/// The search buffer is sized by what a path needs (the hooks' stack in a `clone`
/// child of a few KiB: `exec_review::an_exec_in_a_clone_child_with_an_8k_stack_…`):
/// `with_search` finds what a `PATH_MAX` buffer finds, long `PATH` entries before or
/// after the one found included, and takes the long buffer only when a candidate
/// before the one found needs it (`exec_review2::…_with_a_long_path_entry_…`: a long
/// entry anywhere took 4 KiB of stack).
#[test]
fn with_search_finds_what_a_path_max_buffer_finds() {
    let long = format!("/{}", "d".repeat(700));
    let mut fs = fs()
        .with("/b/tool", vec![])
        .with(&format!("{long}/tool"), vec![]);
    for pv in [
        Some("/x:/b".to_string()),
        Some(format!("/x:{long}:/b")),
        Some(format!("/x:/y:{long}")),
        Some(format!("/b:{long}")),
        Some(format!("{}:/b", "/e".repeat(3000))),
        None,
    ] {
        let pv = pv.as_deref().map(str::as_bytes);
        for name in [&b"tool"[..], b"sh", b"./rel/tool", b"missing"] {
            let mut big = [0u8; PATH_MAX];
            let want = search(&mut fs, name, pv, &mut big).map(|n| big[..=n].to_vec());
            let got = with_search(&mut fs, name, pv, |_, r| r.map(<[u8]>::to_vec));
            assert_eq!(got, want, "{:?} in {:?}", name, pv.map(|p| p.len()));
        }
    }
    // The short buffer is enough when the long entry comes after the one found.
    let mut small = [0u8; SMALL_PATH];
    assert!(
        search(
            &mut fs,
            b"tool",
            Some(format!("/b:{long}").as_bytes()),
            &mut small
        )
        .is_ok()
    );
    assert_eq!(
        search(
            &mut fs,
            b"tool",
            Some(format!("{long}:/b").as_bytes()),
            &mut small
        ),
        Err(NotFound::Longer)
    );
}

/// `#!/usr/bin/env NAME` with a `PATH` whose entries do not fit the small buffer:
/// `NAME` is found in the long entry and decided (a static program there is
/// supervised, not missed).
#[test]
fn an_env_script_finds_its_program_in_a_long_path_entry() {
    let long = format!("/{}", "p".repeat(1500));
    let static_prog = x86(&[Seg(1, b"x")], &[]);
    let mut fs = fs()
        .with("/s", b"#!/usr/bin/env tool\n".to_vec())
        .with(&format!("{long}/tool"), static_prog);
    let pv = format!("/x:{long}");
    assert_eq!(
        decide_str(&mut fs, "/s", Some(&pv)),
        Verdict::Supervise(Why::Elf(Elf::Static, Via::EnvProgram))
    );
}

/// Only the file the exec names is opened with `open_target` (an `execveat`'s
/// directory descriptor and `AT_SYMLINK_NOFOLLOW`); its `#!` interpreter and `env`'s
/// program are `open`ed, as the kernel opens them: relative to the current directory,
/// links followed (`exec_review2::execveat_…`: a static interpreter ran unsteered).
#[test]
fn only_the_named_file_is_opened_as_the_target() {
    /// `open_target` looks under `/dir`; `open` and `probe` at the path itself.
    struct Split(MemFs, Vec<Vec<u8>>);
    impl Fs for Split {
        type F = Vec<u8>;
        fn open(&mut self, path: &[u8]) -> Option<Vec<u8>> {
            self.1.push(strip(path));
            self.0.open(path)
        }
        fn open_target(&mut self, path: &[u8]) -> Option<Vec<u8>> {
            let mut p = b"/dir/".to_vec();
            p.extend_from_slice(path);
            self.0.open(&p)
        }
        fn probe(&mut self, path: &[u8]) -> Probe {
            self.0.probe(path)
        }
    }
    let static_prog = x86(&[Seg(1, b"x")], &[]);
    let glibc = x86(&[Seg(PT_INTERP, GLIBC)], &[]);
    let mut split = Split(
        fs().with("/dir/scr", b"#!sub/interp\n".to_vec())
            .with("sub/interp", static_prog.clone())
            .with("/dir/sub/interp", glibc.clone()),
        vec![],
    );
    assert_eq!(
        decide(&mut split, b"scr\0", None),
        Verdict::Supervise(Why::Elf(Elf::Static, Via::Interpreter))
    );
    assert_eq!(split.1, [b"sub/interp".to_vec()]);
    // The named file itself: through open_target only.
    let mut split = Split(fs().with("/dir/p", static_prog).with("p", glibc), vec![]);
    assert_eq!(
        decide(&mut split, b"p\0", None),
        Verdict::Supervise(Why::Elf(Elf::Static, Via::Itself))
    );
    assert!(split.1.is_empty());
}
