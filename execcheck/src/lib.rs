//! What an `exec` will run, and whether the preload can steer it: the decision behind
//! the preloaded stub's exec hooks (`preload/`), and the loader rule mifrun's own
//! inspection shares ([`is_glibc_loader`]).
//!
//! The preload works only in a process whose dynamic loader is glibc's (`PT_INTERP`
//! naming `ld-linux…`), of the preload's own class and machine, and that does not make
//! its socket calls itself (Go). Anything else — a static binary, a Go program, a
//! program for musl's, uclibc's or bionic's loader, another ABI — is a program to
//! supervise (`mifrun --supervise`) or not to run.
//!
//! [`decide`] looks at a file the way the kernel will run it: an ELF file is
//! [`classify`]d; a `#!` script's interpreter (one level, as `fs/binfmt_script.c`
//! splits the line) is classified in its place, and for `#!/usr/bin/env NAME` the
//! program `env` runs, found through `PATH` as `env` finds it ([`search`]). Files it
//! cannot open or that the kernel would refuse (not ELF and not `#!`, a malformed ELF
//! header) are left to the kernel's own answer: [`Verdict::AsIs`].
//!
//! Pure and bounded: the caller supplies the file system ([`Fs`]: open, read at an
//! offset, probe); nothing here allocates, locks, panics on any input (every offset is
//! checked, every read bounded), or uses more than a few KiB of stack — the stub calls
//! it in a `vfork` child and after `fork` in multithreaded programs.

#![cfg_attr(not(test), no_std)]

// ---------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------

/// Random access to one open file's bytes.
pub trait File {
    /// Reads up to `buf.len()` bytes at `off`: the count (0 at the end of the file), or
    /// `None` when the file cannot be read.
    fn read_at(&mut self, buf: &mut [u8], off: u64) -> Option<usize>;
}

impl File for &[u8] {
    fn read_at(&mut self, buf: &mut [u8], off: u64) -> Option<usize> {
        let Ok(start) = usize::try_from(off) else {
            return Some(0);
        };
        let src = self.get(start..).unwrap_or_default();
        let n = src.len().min(buf.len());
        buf[..n].copy_from_slice(&src[..n]);
        Some(n)
    }
}

/// What exists at a path, for a `PATH` search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Missing,
    /// Exists, but `execve` would fail with `EACCES` (not a regular file, no x bit).
    NotExecutable,
    Executable,
}

/// The file system, as the caller reaches it. Paths are NUL-terminated byte strings.
pub trait Fs {
    type F: File;
    /// Opens `path` for reading; `None` when it cannot be (missing, no permission): the
    /// kernel will give its own answer.
    fn open(&mut self, path: &[u8]) -> Option<Self::F>;
    /// Opens the file the exec names (the first file [`decide`] opens), which the call
    /// may resolve otherwise than the kernel resolves a `#!` interpreter (relative to a
    /// directory descriptor, without following a last link: `execveat`); the
    /// interpreters and `env`'s program are [`Fs::open`]ed, relative to the current
    /// directory, as the kernel and `env` open them.
    fn open_target(&mut self, path: &[u8]) -> Option<Self::F> {
        self.open(path)
    }
    /// What exists at `path`.
    fn probe(&mut self, path: &[u8]) -> Probe;
}

/// Reads `buf.len()` bytes at `off`, however many reads that takes; `false` when the
/// file ends first or cannot be read.
fn read_exact<F: File>(f: &mut F, buf: &mut [u8], off: u64) -> bool {
    let mut done = 0;
    while done < buf.len() {
        match f.read_at(&mut buf[done..], off + done as u64) {
            Some(0) | None => return false,
            Some(n) => done += n.min(buf.len() - done),
        }
    }
    true
}

/// The bytes at `off` into `buf`: from `head` (the file's first bytes) when they are
/// there, else read from the file.
fn at<F: File>(f: &mut F, head: &[u8], buf: &mut [u8], off: u64) -> bool {
    at_head(head, buf, off) || read_exact(f, buf, off)
}

/// The bytes at `off` into `buf` when `head` holds them all.
fn at_head(head: &[u8], buf: &mut [u8], off: u64) -> bool {
    if let Ok(start) = usize::try_from(off)
        && let Some(src) = start
            .checked_add(buf.len())
            .and_then(|end| head.get(start..end))
    {
        buf.copy_from_slice(src);
        return true;
    }
    false
}

/// How many bytes of a file [`decide`] reads first (one read: the ELF header, the
/// program headers, the interpreter's name and the notes are in them for ordinary
/// programs — `/bin/true`'s end at byte 900 — a `#!` line is in the first 256; the
/// rest is read where it is). Small, for the stack of the hooks' callers (a `clone`
/// child's few KiB).
pub const HEAD: usize = 1024;

/// The longest path the kernel execs (`PATH_MAX`, with its NUL).
pub const PATH_MAX: usize = 4096;

/// The path buffer [`with_search`] gives on the stack first.
pub const SMALL_PATH: usize = 512;

// ---------------------------------------------------------------------------------
// ELF
// ---------------------------------------------------------------------------------

/// Class, byte order and machine of an ELF file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abi {
    pub is64: bool,
    pub little_endian: bool,
    pub machine: u16,
}

/// The ABI this crate is built for (the preload's own), if it is one of the
/// architectures the preload is built for.
pub const HOST: Option<Abi> = if cfg!(target_arch = "x86_64") {
    Some(Abi {
        is64: true,
        little_endian: true,
        machine: 62,
    })
} else if cfg!(target_arch = "aarch64") && cfg!(target_endian = "little") {
    Some(Abi {
        is64: true,
        little_endian: true,
        machine: 183,
    })
} else if cfg!(target_arch = "x86") {
    Some(Abi {
        is64: false,
        little_endian: true,
        machine: 3,
    })
} else {
    None
};

/// What an ELF file is, for the preload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elf {
    /// `PT_INTERP` names glibc's loader, the ABI is the preload's, not Go: the preload
    /// is loaded into it and steers it.
    Glibc,
    /// No `PT_INTERP` (static, static-pie): the loader never runs.
    Static,
    /// Built by the Go toolchain (a Go build-ID note, a `.go.buildinfo` or
    /// `.note.go.buildid` section): Go makes its socket calls itself.
    Go,
    /// `PT_INTERP` names another loader (musl's, uclibc's, bionic's…), which cannot
    /// load a glibc-built preload.
    ForeignLoader,
    /// Another class, byte order or machine than the preload's.
    ForeignAbi,
    /// Not an ELF file the kernel would run (bad type, program header table the kernel
    /// refuses or that cannot be read): the kernel's own answer.
    Invalid,
}

impl Elf {
    /// Why the preload cannot steer it (for a log line), `None` for [`Elf::Glibc`] and
    /// [`Elf::Invalid`].
    pub fn why(self) -> Option<&'static str> {
        match self {
            Self::Glibc | Self::Invalid => None,
            Self::Static => Some("is statically linked (no PT_INTERP)"),
            Self::Go => Some("is a Go program (raw system calls)"),
            Self::ForeignLoader => Some("has a loader that is not glibc's (musl, uclibc, bionic…)"),
            Self::ForeignAbi => Some("is of another ELF class or machine than libmifshim.so"),
        }
    }
}

const PT_INTERP: u32 = 3;
const PT_NOTE: u32 = 4;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
/// Type of the Go build-ID note (`cmd/link`: `ELF_NOTE_GOBUILDID_TAG`), name `"Go"`.
const NT_GO_BUILDID: u32 = 4;
/// The kernel's bound on the program header table (`load_elf_phdrs`: 64 KiB).
const PHDRS_MAX: u64 = 65536;
/// At most this many section headers are looked at (a bound on the work, far above
/// any real program's count).
const SECTIONS_MAX: u64 = 4096;
/// The longest loader name compared (its last bytes, where the file name is).
const INTERP_TAIL: usize = 128;
/// How much of a note segment is scanned.
const NOTES_MAX: usize = 2048;

#[derive(Clone, Copy)]
struct Fmt {
    is64: bool,
    le: bool,
}

impl Fmt {
    fn u16(self, b: &[u8], off: usize) -> u16 {
        let a = [byte(b, off), byte(b, off + 1)];
        if self.le {
            u16::from_le_bytes(a)
        } else {
            u16::from_be_bytes(a)
        }
    }
    fn u32(self, b: &[u8], off: usize) -> u32 {
        let a = [
            byte(b, off),
            byte(b, off + 1),
            byte(b, off + 2),
            byte(b, off + 3),
        ];
        if self.le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    }
    fn u64(self, b: &[u8], off: usize) -> u64 {
        let (lo, hi) = (self.u32(b, off) as u64, self.u32(b, off + 4) as u64);
        if self.le {
            lo | hi << 32
        } else {
            hi | lo << 32
        }
    }
    /// An address/offset/size-sized field at `off64` (64-bit) or `off32`.
    fn word(self, b: &[u8], off64: usize, off32: usize) -> u64 {
        if self.is64 {
            self.u64(b, off64)
        } else {
            self.u32(b, off32) as u64
        }
    }
    fn phentsize(self) -> usize {
        if self.is64 { 56 } else { 32 }
    }
    fn shentsize(self) -> usize {
        if self.is64 { 64 } else { 40 }
    }
}

fn byte(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

/// The file name in a path (after its last `/`).
pub fn basename(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// Whether a `PT_INTERP` path names glibc's dynamic loader, by its file name:
/// `ld-linux…` (x86-64 `ld-linux-x86-64.so.2`, AArch64 `ld-linux-aarch64.so.1`, i386
/// `ld-linux.so.2`, ARM, RISC-V, LoongArch…), `ld64.so.1`/`ld64.so.2` (s390x,
/// ppc64) or `ld.so.1` (32-bit PowerPC and MIPS). musl's `ld-musl-*.so.1`, uclibc's
/// `ld-uClibc.so.*` and bionic's `linker64` are not.
pub fn is_glibc_loader(interp: &[u8]) -> bool {
    let name = basename(interp);
    name.starts_with(b"ld-linux") || matches!(name, b"ld64.so.1" | b"ld64.so.2" | b"ld.so.1")
}

/// Whether `path` is a dynamic loader run as a program (`ld.so`, `ld-….so…`): it has no
/// `PT_INTERP` of its own (mifrun's rule).
fn is_loader_name(path: &[u8]) -> bool {
    let name = basename(path);
    name == b"ld.so" || (name.starts_with(b"ld-") && name.windows(3).any(|w| w == b".so"))
}

/// Classifies the ELF file `f` whose first bytes are `head` (at least its first 16, or
/// it is [`Elf::Invalid`]) for a preload of ABI `host`.
pub fn classify<F: File>(f: &mut F, head: &[u8], host: Option<Abi>) -> Elf {
    let mut eh = [0u8; 64];
    if head.len() < 16 || &head[..4] != b"\x7fELF" {
        return Elf::Invalid;
    }
    let (is64, le) = match (head[4], head[5]) {
        (1 | 2, 1 | 2) => (head[4] == 2, head[5] == 1),
        _ => return Elf::Invalid,
    };
    let fmt = Fmt { is64, le };
    let eh = &mut eh[..if is64 { 64 } else { 52 }];
    if !at(f, head, eh, 0) {
        return Elf::Invalid;
    }
    let e_type = fmt.u16(eh, 16);
    let machine = fmt.u16(eh, 18);
    if !matches!(e_type, ET_EXEC | ET_DYN) {
        return Elf::Invalid;
    }
    let (phoff, shoff) = (fmt.word(eh, 32, 28), fmt.word(eh, 40, 32));
    let f16 = |o64: usize, o32: usize| fmt.u16(eh, if is64 { o64 } else { o32 }) as u64;
    let (phentsize, phnum) = (f16(54, 42), f16(56, 44));
    let (shentsize, shnum, shstrndx) = (f16(58, 46), f16(60, 48), f16(62, 50));
    // The kernel's own checks (`load_elf_phdrs`): a table of whole entries, 64 KiB at
    // most.
    if phentsize != fmt.phentsize() as u64 || phnum == 0 || phnum * phentsize > PHDRS_MAX {
        return Elf::Invalid;
    }
    let mut interp = None;
    let mut go = false;
    let mut ph = [0u8; 56];
    let ph = &mut ph[..fmt.phentsize()];
    for i in 0..phnum {
        let Some(off) = phoff.checked_add(i * phentsize) else {
            return Elf::Invalid;
        };
        if !at(f, head, ph, off) {
            return Elf::Invalid;
        }
        let (offset, filesz) = (fmt.word(ph, 8, 4), fmt.word(ph, 32, 16));
        match fmt.u32(ph, 0) {
            PT_INTERP if interp.is_none() => interp = Some(loader_kind(f, head, offset, filesz)),
            PT_NOTE if !go => {
                let align = fmt.word(ph, 48, 28);
                go = go_note(f, head, fmt, offset, filesz, if align == 8 { 8 } else { 4 });
            }
            _ => {}
        }
    }
    if !go && shoff != 0 && shentsize == fmt.shentsize() as u64 {
        go = go_sections(f, head, fmt, shoff, shnum, shstrndx);
    }
    let abi = Abi {
        is64,
        little_endian: le,
        machine,
    };
    match interp {
        _ if go => Elf::Go,
        None => Elf::Static,
        _ if host.is_some_and(|h| h != abi) => Elf::ForeignAbi,
        Some(kind) => kind,
    }
}

/// Whether the `PT_INTERP` string at `offset` (`filesz` bytes with its NUL) names
/// glibc's loader: [`Elf::Glibc`] or [`Elf::ForeignLoader`]. Only its last bytes are
/// read (the file name); one that cannot be read is not glibc's.
fn loader_kind<F: File>(f: &mut F, head: &[u8], offset: u64, filesz: u64) -> Elf {
    let mut tail = [0u8; INTERP_TAIL];
    let n = filesz.min(INTERP_TAIL as u64) as usize;
    let Some(start) = offset.checked_add(filesz - n as u64) else {
        return Elf::ForeignLoader;
    };
    if n == 0 || !at(f, head, &mut tail[..n], start) {
        return Elf::ForeignLoader;
    }
    let s = &tail[..n];
    let s = &s[..s.iter().position(|&b| b == 0).unwrap_or(s.len())];
    // A name longer than what was read: its start (and its last '/') is unknown.
    if filesz > INTERP_TAIL as u64 && !s.contains(&b'/') {
        return Elf::ForeignLoader;
    }
    if is_glibc_loader(s) {
        Elf::Glibc
    } else {
        Elf::ForeignLoader
    }
}

/// Whether a note segment holds the Go build-ID note (name `"Go"`, type 4); its first
/// [`NOTES_MAX`] bytes are scanned, one note header at a time (from `head` when it
/// holds them, as it does for ordinary programs: no buffer of the segment's size).
fn go_note<F: File>(
    f: &mut F,
    head: &[u8],
    fmt: Fmt,
    offset: u64,
    filesz: u64,
    align: usize,
) -> bool {
    let n = filesz.min(NOTES_MAX as u64) as usize;
    let up = |n: usize| n.checked_add(align - 1).map(|n| n & !(align - 1));
    let mut off = 0usize;
    while off + 12 <= n {
        let mut nh = [0u8; 12];
        if !at(f, head, &mut nh, offset.saturating_add(off as u64)) {
            return false;
        }
        let namesz = fmt.u32(&nh, 0) as usize;
        let descsz = fmt.u32(&nh, 4) as usize;
        let name_start = off + 12;
        if name_start.checked_add(namesz).is_none_or(|end| end > n) {
            return false;
        }
        // The name up to its NUL is "Go": its first three bytes tell (namesz 2 or 3).
        let mut name = [0u8; 3];
        let k = namesz.min(3);
        if fmt.u32(&nh, 8) == NT_GO_BUILDID
            && k >= 2
            && at(
                f,
                head,
                &mut name[..k],
                offset.saturating_add(name_start as u64),
            )
            && &name[..2] == b"Go"
            && (k == 2 || name[2] == 0)
        {
            return true;
        }
        match up(name_start + namesz)
            .and_then(|d| d.checked_add(descsz))
            .and_then(up)
        {
            Some(next) if next > off => off = next,
            _ => return false,
        }
    }
    false
}

/// Whether a section is named `.go.buildinfo` or `.note.go.buildid` (mifrun's other
/// Go evidence). Problems in the section headers are not errors: `false`.
fn go_sections<F: File>(
    f: &mut F,
    head: &[u8],
    fmt: Fmt,
    shoff: u64,
    shnum: u64,
    shstrndx: u64,
) -> bool {
    let shentsize = fmt.shentsize() as u64;
    // The section headers, 8 per read (12 for 32-bit files); the first read also gives
    // section header 0 (extended numbering: the counts).
    let mut chunk = [0u8; 512];
    let per = chunk.len() as u64 / shentsize;
    let first = if shnum == 0 { per } else { per.min(shnum) };
    let got =
        read_upto(f, head, &mut chunk[..(first * shentsize) as usize], shoff) as u64 / shentsize;
    if got == 0 {
        return false;
    }
    let sh0 = &chunk[..shentsize as usize];
    let shnum = if shnum == 0 {
        fmt.word(sh0, 32, 20)
    } else {
        shnum
    };
    let shstrndx = if shstrndx == 0xffff {
        fmt.u32(sh0, if fmt.is64 { 40 } else { 24 }) as u64
    } else {
        shstrndx
    };
    let shnum = shnum.min(SECTIONS_MAX);
    if shstrndx >= shnum {
        return false;
    }
    let mut sh = [0u8; 64];
    let sh = &mut sh[..shentsize as usize];
    if shstrndx < got {
        let at_ = (shstrndx * shentsize) as usize;
        sh.copy_from_slice(&chunk[at_..at_ + shentsize as usize]);
    } else if !at(f, head, sh, shoff.saturating_add(shstrndx * shentsize)) {
        return false;
    }
    let (stroff, strsize) = (fmt.word(sh, 24, 16), fmt.word(sh, 32, 20));
    // The names, read once when they fit (they do for most programs: a C program's
    // `.shstrtab` is about 250 bytes); the others are read where they are.
    let mut names = [0u8; 512];
    let held = strsize.min(names.len() as u64) as usize;
    let held = if at(f, head, &mut names[..held], stroff) {
        held
    } else {
        0
    };
    let strtab = Names {
        names: &names[..held],
        stroff,
        strsize,
    };
    let mut i = 0;
    let mut loaded = got.min(shnum);
    loop {
        let bytes = &chunk[..(loaded * shentsize) as usize];
        for h in bytes.chunks_exact(shentsize as usize) {
            if strtab.is_go(f, head, fmt.u32(h, 0) as u64) {
                return true;
            }
        }
        i += loaded;
        if i >= shnum {
            return false;
        }
        loaded = per.min(shnum - i);
        let Some(off) = shoff.checked_add(i * shentsize) else {
            return false;
        };
        if !at(f, head, &mut chunk[..(loaded * shentsize) as usize], off) {
            return false;
        }
    }
}

/// The section names: the first bytes held, the rest read on demand.
struct Names<'a> {
    names: &'a [u8],
    stroff: u64,
    strsize: u64,
}

impl Names<'_> {
    /// Whether the name at `name` is one of Go's sections.
    fn is_go<F: File>(&self, f: &mut F, head: &[u8], name: u64) -> bool {
        const GO: [&[u8]; 2] = [b".go.buildinfo\0", b".note.go.buildid\0"];
        GO.iter().any(|want| {
            let end = name.saturating_add(want.len() as u64);
            if end <= self.names.len() as u64 {
                &self.names[name as usize..end as usize] == *want
            } else if end <= self.strsize {
                let mut got = [0u8; 17];
                let got = &mut got[..want.len()];
                at(f, head, got, self.stroff.saturating_add(name)) && got == *want
            } else {
                false
            }
        })
    }
}

/// Up to `buf.len()` bytes at `off` (from `head` when they are all there): how many
/// the file had.
fn read_upto<F: File>(f: &mut F, head: &[u8], buf: &mut [u8], off: u64) -> usize {
    if at_head(head, buf, off) {
        return buf.len();
    }
    let mut done = 0;
    while done < buf.len() {
        match f.read_at(&mut buf[done..], off.saturating_add(done as u64)) {
            Some(0) | None => break,
            Some(n) => done += n.min(buf.len() - done),
        }
    }
    done
}

// ---------------------------------------------------------------------------------
// `#!` lines and `env`
// ---------------------------------------------------------------------------------

/// How many bytes of a file the kernel looks at for `#!` (`BINPRM_BUF_SIZE`).
pub const SHEBANG_BUF: usize = 256;

/// The interpreter and its one optional argument of a file starting with `#!`, split
/// as `fs/binfmt_script.c` splits it (mifrun's `parse_shebang`, without allocation).
pub fn shebang(head: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let rest = head.strip_prefix(b"#!")?;
    let rest = &rest[..rest.len().min(SHEBANG_BUF - 3)];
    let line = &rest[..rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len())];
    let line = &line[..line.iter().position(|&b| b == 0).unwrap_or(line.len())];
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = line.iter().position(|b| !blank(b))?;
    let end = line.iter().rposition(|b| !blank(b))? + 1;
    let line = &line[start..end];
    let split = line.iter().position(blank).unwrap_or(line.len());
    let arg = line[split..]
        .iter()
        .position(|b| !blank(b))
        .map(|p| &line[split + p..]);
    Some((&line[..split], arg))
}

/// What `env` runs, from the argument of a `#!/usr/bin/env …` line: the program it
/// names (found through `PATH`) and whether it clears the environment (`-i`,
/// `--ignore-environment`, `-`: the preload variables go too). Without `-S` the
/// kernel passes the rest of the line as one word, which `env` takes as one name.
pub fn env_program(arg: Option<&[u8]>) -> (Option<&[u8]>, bool) {
    let Some(arg) = arg else {
        return (None, false);
    };
    let (split, words) = match arg.strip_prefix(b"-S") {
        Some(rest) => (true, rest),
        None => (false, arg),
    };
    let mut clears = false;
    let mut skip = false;
    let it = words.split(|b| split && (*b == b' ' || *b == b'\t'));
    for w in it {
        if w.is_empty() {
            continue;
        }
        if skip {
            skip = false;
            continue;
        }
        match w {
            b"-i" | b"--ignore-environment" | b"-" => clears = true,
            b"-u" | b"--unset" | b"-C" | b"--chdir" => skip = true,
            w if w.starts_with(b"-") || w.contains(&b'=') => {}
            w => return (Some(w), clears),
        }
    }
    (None, clears)
}

// ---------------------------------------------------------------------------------
// PATH
// ---------------------------------------------------------------------------------

/// The search path glibc's `execvp` uses when `PATH` is unset (`_CS_PATH`).
pub const DEFAULT_PATH: &[u8] = b"/bin:/usr/bin";

/// Why [`search`] found nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotFound {
    /// No candidate is executable: the C library's `execvp` fails with `EACCES` when
    /// one existed (`denied`), else `ENOENT`.
    None { denied: bool },
    /// The name is longer than a file name can be (`NAME_MAX`): `ENAMETOOLONG`.
    NameTooLong,
    /// A candidate before any found did not fit `out`, shorter than [`PATH_MAX`]:
    /// search again with a longer one ([`with_search`]).
    Longer,
}

/// The longest file name (`NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// Finds `name` as glibc's `execvp` runs it: a name with a `/` as is; otherwise the
/// first executable `DIR/name` of `path_var` (an empty entry is the current
/// directory). Writes the NUL-terminated path to `out` and returns its length (without
/// the NUL). A candidate longer than [`PATH_MAX`] is skipped (the kernel cannot exec
/// it); one that does not fit a shorter `out` is [`NotFound::Longer`].
pub fn search<S: Fs>(
    fs: &mut S,
    name: &[u8],
    path_var: Option<&[u8]>,
    out: &mut [u8],
) -> Result<usize, NotFound> {
    if name.is_empty() || name.contains(&0) {
        return Err(NotFound::None { denied: false });
    }
    let short = out.len() < PATH_MAX;
    let fits = |len: Option<usize>, need: usize| match len {
        Some(n) => Ok(Some(n)),
        None if need <= PATH_MAX && short => Err(NotFound::Longer),
        None => Ok(None),
    };
    if name.contains(&b'/') {
        return fits(copy_path(out, &[name]), name.len() + 1)?
            .ok_or(NotFound::None { denied: false });
    }
    if name.len() > NAME_MAX {
        return Err(NotFound::NameTooLong);
    }
    let mut denied = false;
    for dir in path_var.unwrap_or(DEFAULT_PATH).split(|&b| b == b':') {
        let (len, need) = if dir.is_empty() {
            (copy_path(out, &[name]), name.len() + 1)
        } else {
            (
                copy_path(out, &[dir, b"/", name]),
                dir.len() + name.len() + 2,
            )
        };
        let Some(len) = fits(len, need)? else {
            continue;
        };
        match fs.probe(&out[..=len]) {
            Probe::Executable => return Ok(len),
            Probe::NotExecutable => denied = true,
            Probe::Missing => {}
        }
    }
    Err(NotFound::None { denied })
}

/// [`search`] with a buffer on the stack sized by need: [`SMALL_PATH`] bytes, and
/// only when a candidate before the one found does not fit them, 1 KiB, then
/// [`PATH_MAX`] bytes, each in a frame of its own that replaces the one before (as
/// the C library's own variable-length arrays take what a path needs). Calls `f`
/// with the file system and the NUL-terminated path found.
pub fn with_search<S: Fs, R>(
    fs: &mut S,
    name: &[u8],
    path_var: Option<&[u8]>,
    f: impl FnOnce(&mut S, Result<&[u8], NotFound>) -> R,
) -> R {
    let f = match search_in::<SMALL_PATH, _, _, _>(fs, name, path_var, f) {
        Tried::Done(r) => return r,
        Tried::Longer(f) => f,
    };
    let f = match search_in::<1024, _, _, _>(fs, name, path_var, f) {
        Tried::Done(r) => return r,
        Tried::Longer(f) => f,
    };
    match search_in::<PATH_MAX, _, _, _>(fs, name, path_var, f) {
        Tried::Done(r) => r,
        // A PATH_MAX buffer is never too short.
        Tried::Longer(f) => f(fs, Err(NotFound::NameTooLong)),
    }
}

/// What a search with one buffer size gave: `f`'s answer, or `f` back for a longer one.
enum Tried<F, R> {
    Done(R),
    Longer(F),
}

#[inline(never)]
fn search_in<const N: usize, S: Fs, R, F: FnOnce(&mut S, Result<&[u8], NotFound>) -> R>(
    fs: &mut S,
    name: &[u8],
    path_var: Option<&[u8]>,
    f: F,
) -> Tried<F, R> {
    let mut buf = [0u8; N];
    match search(fs, name, path_var, &mut buf) {
        Err(NotFound::Longer) => Tried::Longer(f),
        r => Tried::Done(f(fs, r.map(|n| &buf[..=n]))),
    }
}

/// `parts` joined into `out`, NUL-terminated; the length without the NUL.
fn copy_path(out: &mut [u8], parts: &[&[u8]]) -> Option<usize> {
    let mut n = 0;
    for p in parts {
        let dst = out.get_mut(n..n + p.len())?;
        dst.copy_from_slice(p);
        n += p.len();
    }
    *out.get_mut(n)? = 0;
    Some(n)
}

// ---------------------------------------------------------------------------------
// The decision
// ---------------------------------------------------------------------------------

/// Which file of the chain the verdict is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The file exec'ed.
    Itself,
    /// The interpreter of its `#!` line.
    Interpreter,
    /// The program its `#!/usr/bin/env` line names.
    EnvProgram,
}

/// Why the preload cannot steer what an exec runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    Elf(Elf, Via),
    /// `#!/usr/bin/env -i …`: `env` clears the environment, the preload with it.
    EnvClears,
    /// A `posix_spawn` whose file actions move the child to a directory that cannot be
    /// told ([`spawn_path`]): what it execs is unknown.
    SpawnDirectory,
}

impl Why {
    /// The reason, for a log line about the exec'ed file.
    pub fn text(self) -> &'static str {
        match self {
            Self::Elf(e, Via::Itself) => e.why().unwrap_or("cannot be steered"),
            Self::Elf(_, Via::Interpreter) => {
                "is a script whose interpreter a preload cannot steer (static, Go, not glibc's loader or another ABI)"
            }
            Self::Elf(_, Via::EnvProgram) => {
                "is a script whose #!/usr/bin/env program a preload cannot steer (static, Go, not glibc's loader or another ABI)"
            }
            Self::EnvClears => {
                "is a script whose #!…env -i clears the environment (and the preload)"
            }
            Self::SpawnDirectory => {
                "is spawned in a directory its file actions choose, which cannot be told (so what runs cannot be checked)"
            }
        }
    }
}

/// What to do with an exec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Exec it as is: the preload steers it, or the kernel will refuse it (or the file
    /// cannot be read: the kernel's own answer).
    AsIs,
    /// A preload cannot steer it: supervise it, or refuse.
    Supervise(Why),
}

/// The verdict on one ELF file at `path` (open as `f`, first bytes `head`).
fn elf_verdict<F: File>(f: &mut F, head: &[u8], path: &[u8], via: Via) -> Verdict {
    match classify(f, head, HOST) {
        Elf::Glibc | Elf::Invalid => Verdict::AsIs,
        // The loader run as a program loads the program it is given, with the preload.
        Elf::Static if is_loader_name(path) && is_glibc_loader(path) => Verdict::AsIs,
        e => Verdict::Supervise(Why::Elf(e, via)),
    }
}

/// Opens `path` and reads its first [`HEAD`] bytes into `head`: the file and the count.
fn open_head<S: Fs>(fs: &mut S, path: &[u8], head: &mut [u8; HEAD]) -> Option<(S::F, usize)> {
    let mut f = fs.open(path)?;
    let n = read_head(&mut f, head)?;
    Some((f, n))
}

/// Reads the first [`HEAD`] bytes of `f` into `head`: the count.
fn read_head<F: File>(f: &mut F, head: &mut [u8; HEAD]) -> Option<usize> {
    let mut n = 0;
    while n < HEAD {
        match f.read_at(&mut head[n..], n as u64)? {
            0 => break,
            k => n += k.min(HEAD - n),
        }
    }
    Some(n)
}

/// How many scripts run as another script's interpreter the kernel follows: a chain
/// of five scripts runs, one of six fails with ELOOP (`exec_binprm`'s bound, measured
/// on Linux 6.18: `review_1203::a_chain_of_six_scripts_fails_with_eloop_…`). Beyond it
/// the exec is left to the kernel's ELOOP.
pub const MAX_SCRIPT_LEVELS: usize = 4;

/// Decides an exec of `path` (NUL-terminated): what the kernel will run (the file, or
/// its `#!` interpreter and, for `#!/usr/bin/env NAME`, `NAME` found through
/// `path_var`, the new program's `PATH`), and whether the preload steers it.
pub fn decide<S: Fs>(fs: &mut S, path: &[u8], path_var: Option<&[u8]>) -> Verdict {
    let mut head = [0u8; HEAD];
    let Some(mut f) = fs.open_target(path) else {
        return Verdict::AsIs;
    };
    let Some(n) = read_head(&mut f, &mut head) else {
        return Verdict::AsIs;
    };
    let shown = &path[..path.iter().position(|&b| b == 0).unwrap_or(path.len())];
    if head[..n].starts_with(b"\x7fELF") {
        return elf_verdict(&mut f, &head[..n], shown, Via::Itself);
    }
    drop(f);
    script_verdict(fs, &mut head, n, path_var)
}

/// [`decide`] for a file whose first `n` bytes (in `head`) are not ELF: a `#!` script's
/// interpreter (followed through scripts), and `env`'s program. A frame of its own:
/// an ELF program's exec does not hold the interpreter's buffers on the stack.
#[inline(never)]
fn script_verdict<S: Fs>(
    fs: &mut S,
    head: &mut [u8; HEAD],
    n: usize,
    path_var: Option<&[u8]>,
) -> Verdict {
    let Some((interp, arg)) = shebang(&head[..n]) else {
        return Verdict::AsIs;
    };
    // Both fit: the line is at most SHEBANG_BUF bytes.
    let mut ibuf = [0u8; SHEBANG_BUF + 1];
    let mut abuf = [0u8; SHEBANG_BUF + 1];
    let Some(ilen) = copy_path(&mut ibuf, &[interp]) else {
        return Verdict::AsIs;
    };
    let alen = arg.and_then(|a| copy_path(&mut abuf, &[a]));
    let (mut ilen, mut alen) = (ilen, alen);
    // The kernel follows an interpreter that is itself a script (`binfmt_script`, up
    // to `exec_binprm`'s bound, then ELOOP): so do we. The argument is the last
    // script's. An interpreter the caller may not execute is the kernel's EACCES.
    let mut levels = 0;
    let (mut f, n) = loop {
        if fs.probe(&ibuf[..=ilen]) != Probe::Executable {
            return Verdict::AsIs;
        }
        let Some((f, n)) = open_head(fs, &ibuf[..=ilen], head) else {
            return Verdict::AsIs;
        };
        if head[..n].starts_with(b"\x7fELF") {
            break (f, n);
        }
        drop(f);
        levels += 1;
        if levels > MAX_SCRIPT_LEVELS {
            return Verdict::AsIs;
        }
        let Some((next, next_arg)) = shebang(&head[..n]) else {
            // A script interpreter without `#!`: the kernel's ENOEXEC.
            return Verdict::AsIs;
        };
        let Some(l) = copy_path(&mut ibuf, &[next]) else {
            return Verdict::AsIs;
        };
        ilen = l;
        alen = next_arg.and_then(|a| copy_path(&mut abuf, &[a]));
    };
    let (interp, arg) = (&ibuf[..ilen], alen.map(|l| &abuf[..l]));
    let v = elf_verdict(&mut f, &head[..n], interp, Via::Interpreter);
    drop(f);
    if v != Verdict::AsIs || basename(interp) != b"env" {
        return v;
    }
    let (program, clears) = env_program(arg);
    if clears {
        return Verdict::Supervise(Why::EnvClears);
    }
    let Some(program) = program else {
        return Verdict::AsIs;
    };
    // What `env` runs: found through `PATH` as `execvp` finds it (when nothing is, env
    // fails: its own answer).
    with_search(fs, program, path_var, |fs, found| {
        let Ok(path) = found else {
            return Verdict::AsIs;
        };
        let Some((mut f, n)) = open_head(fs, path, head) else {
            return Verdict::AsIs;
        };
        if !head[..n].starts_with(b"\x7fELF") {
            return Verdict::AsIs;
        }
        elf_verdict(&mut f, &head[..n], &path[..path.len() - 1], Via::EnvProgram)
    })
}

// ---------------------------------------------------------------------------------
// posix_spawn's file actions: where the child execs a relative path
// ---------------------------------------------------------------------------------

/// One `posix_spawn` file action, as far as it matters for the directory the child
/// execs in (glibc's `struct __spawn_action`, read by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpawnAction<'a> {
    /// `addclose(fd)`, `addopen(fd, …)`, `adddup2(_, fd)`: `fd` is another file after it.
    Replaces(i32),
    /// `addclosefrom_np(from)`: every descriptor from `from` on is closed.
    ClosesFrom(i32),
    /// `addchdir_np(path)` (with its NUL).
    Chdir(&'a [u8]),
    /// `addfchdir_np(fd)`.
    Fchdir(i32),
    /// Anything that does not move the child (`addtcsetpgrp_np`).
    Other,
    /// An action this reader does not know: the directory cannot be told.
    Unknown,
}

/// A change of the spawned child's directory, for the caller to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirStep<'a> {
    /// To this path (NUL-terminated), relative to where the step before left the child.
    Chdir(&'a [u8]),
    /// To the directory open as this descriptor of the parent.
    Fchdir(i32),
}

/// Follows the directory changes of a `posix_spawn` with these `n` file actions
/// (`action(i)`), in order: `step` takes each (and answers whether it could follow
/// it). The child execs its file — a relative path, a relative `PATH` entry, a
/// relative `#!` interpreter — in the directory the last step leaves it in. `false`
/// when that cannot be told: an unknown action, an `fchdir` to a descriptor an earlier
/// action replaced, a step `step` could not follow (the caller fails closed).
pub fn spawn_dir<'a>(
    n: usize,
    action: impl Fn(usize) -> SpawnAction<'a>,
    mut step: impl FnMut(DirStep<'a>) -> bool,
) -> bool {
    for i in 0..n {
        let ok = match action(i) {
            SpawnAction::Replaces(_) | SpawnAction::ClosesFrom(_) | SpawnAction::Other => true,
            SpawnAction::Unknown => false,
            SpawnAction::Chdir(d) => d.last() == Some(&0) && step(DirStep::Chdir(d)),
            SpawnAction::Fchdir(fd) => {
                let replaced = (0..i).any(|j| match action(j) {
                    SpawnAction::Replaces(r) => r == fd,
                    SpawnAction::ClosesFrom(from) => fd >= from,
                    _ => false,
                });
                !replaced && fd >= 0 && step(DirStep::Fchdir(fd))
            }
        };
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests;
