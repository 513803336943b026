//! ELF parsing: just the parts that decide whether a preload can steer a program.
//!
//! Header, program headers (`PT_INTERP`, `PT_DYNAMIC`, `PT_NOTE`), section headers
//! (names, for `.go.buildinfo`/`.note.go.buildid`) and notes (the Go build ID), for
//! 32- and 64-bit, little- and big-endian files, with extended numbering. Every read is
//! bounded and every offset checked: a malformed file yields an error, never a panic.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_NOTE: u32 = 4;
pub(crate) const ET_EXEC: u16 = 2;
pub(crate) const ET_DYN: u16 = 3;
/// `e_phnum` value meaning "the real count is in section header 0's `sh_info`".
const PN_XNUM: u16 = 0xffff;
/// `e_shstrndx` value meaning "the real index is in section header 0's `sh_link`".
const SHN_XINDEX: u16 = 0xffff;
/// Type of the Go build-ID note (`cmd/link`: `ELF_NOTE_GOBUILDID_TAG`), name `"Go"`.
const NT_GO_BUILDID: u32 = 4;
/// Upper bound on any single range read from a file (header tables, notes, strings).
const READ_LIMIT: u64 = 8 << 20;

/// Random access to the bytes of a file (or of a test fixture).
pub trait ReadAt {
    fn read_exact_at_(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

impl ReadAt for [u8] {
    fn read_exact_at_(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let src = start
            .checked_add(buf.len())
            .and_then(|end| self.get(start..end))
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

impl ReadAt for File {
    fn read_exact_at_(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, offset)
    }
}

/// Why a file could not be parsed as ELF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElfError {
    NotElf,
    Invalid(String),
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotElf => f.write_str("not an ELF file"),
            Self::Invalid(why) => write!(f, "malformed ELF file: {why}"),
        }
    }
}

fn read_range<R: ReadAt + ?Sized>(
    r: &R,
    offset: u64,
    len: u64,
    what: &str,
) -> Result<Vec<u8>, ElfError> {
    if len > READ_LIMIT {
        return Err(ElfError::Invalid(format!(
            "{what} is implausibly large ({len} bytes)"
        )));
    }
    let mut buf = vec![0u8; len as usize];
    r.read_exact_at_(&mut buf, offset)
        .map_err(|e| ElfError::Invalid(format!("cannot read {what} at offset {offset}: {e}")))?;
    Ok(buf)
}

/// Class, byte order and machine: what must match between a program and the library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abi {
    pub is64: bool,
    pub little_endian: bool,
    pub machine: u16,
}

impl fmt::Display for Abi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = if self.is64 { 64 } else { 32 };
        let order = if self.little_endian { "LSB" } else { "MSB" };
        let machine = match self.machine {
            3 => "Intel 80386".to_owned(),
            8 => "MIPS".to_owned(),
            20 => "PowerPC".to_owned(),
            21 => "PowerPC64".to_owned(),
            22 => "IBM S/390".to_owned(),
            40 => "ARM".to_owned(),
            62 => "x86-64".to_owned(),
            183 => "AArch64".to_owned(),
            243 => "RISC-V".to_owned(),
            258 => "LoongArch".to_owned(),
            m => format!("machine {m}"),
        };
        write!(f, "ELF {bits}-bit {order} {machine}")
    }
}

/// Evidence that a binary was produced by the Go toolchain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoEvidence {
    BuildInfoSection,
    BuildIdNote,
}

impl fmt::Display for GoEvidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BuildInfoSection => "a .go.buildinfo section",
            Self::BuildIdNote => "a Go build-ID note",
        })
    }
}

/// What mifrun needs to know about an ELF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    pub abi: Abi,
    pub e_type: u16,
    /// `PT_INTERP` is present (the dynamic loader runs).
    pub has_interp: bool,
    /// The requested loader, when it could be read.
    pub interp: Option<String>,
    pub has_dynamic: bool,
    pub go: Option<GoEvidence>,
}

impl ElfInfo {
    /// One-line description, like file(1).
    pub fn describe(&self) -> String {
        let mut s = self.abi.to_string();
        match (&self.interp, self.has_interp) {
            (Some(i), _) => s.push_str(&format!(", dynamically linked (interpreter {i})")),
            (None, true) => s.push_str(", dynamically linked"),
            (None, false) if self.e_type == ET_DYN && self.has_dynamic => {
                s.push_str(", static-pie or shared object (no PT_INTERP)")
            }
            (None, false) => s.push_str(", statically linked (no PT_INTERP)"),
        }
        if let Some(go) = self.go {
            s.push_str(&format!(", Go program ({go})"));
        }
        s
    }
}

#[derive(Clone, Copy)]
struct Fmt {
    is64: bool,
    le: bool,
}

/// `fn u16(self, b, off) -> u16` etc.: the integer at `off` in this file's byte order
/// (zero when out of range).
macro_rules! endian_readers {
    ($($t:ident),*) => {$(
        fn $t(self, b: &[u8], off: usize) -> $t {
            let a = Self::bytes(b, off);
            if self.le { $t::from_le_bytes(a) } else { $t::from_be_bytes(a) }
        }
    )*};
}

impl Fmt {
    fn bytes<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(src) = b.get(off..off + N) {
            out.copy_from_slice(src);
        }
        out
    }
    endian_readers!(u16, u32, u64);
    /// An address/offset/size-sized field (`ElfN_Addr`, `ElfN_Off`, 64-bit `xword`).
    fn word(self, b: &[u8], off64: usize, off32: usize) -> u64 {
        if self.is64 {
            self.u64(b, off64)
        } else {
            self.u32(b, off32) as u64
        }
    }
}

struct SectionHeader {
    name: u32,
    offset: u64,
    size: u64,
    link: u32,
    info: u32,
}

fn section_header(fmt: Fmt, b: &[u8]) -> SectionHeader {
    SectionHeader {
        name: fmt.u32(b, 0),
        offset: fmt.word(b, 24, 16),
        size: fmt.word(b, 32, 20),
        link: fmt.u32(b, if fmt.is64 { 40 } else { 24 }),
        info: fmt.u32(b, if fmt.is64 { 44 } else { 28 }),
    }
}

/// Parses the parts of an ELF file that decide whether a preload can steer it: its
/// class and byte order, its header, its program headers (interpreter, dynamic
/// section, a Go build-id note) and, when present, its sections (Go's).
pub fn parse_elf<R: ReadAt + ?Sized>(r: &R) -> Result<ElfInfo, ElfError> {
    let fmt = elf_format(r)?;
    let eh = elf_header(r, fmt)?;
    // Section header 0 carries the extended counts when the header fields overflow.
    let sh0 = if eh.shoff != 0 && eh.shentsize >= fmt.min_shentsize() {
        read_range(r, eh.shoff, eh.shentsize as u64, "section header 0")
            .ok()
            .map(|b| section_header(fmt, &b))
    } else {
        None
    };
    let phnum = match (eh.phnum, &sh0) {
        (PN_XNUM, Some(sh0)) => sh0.info as u64,
        (n, _) => n as u64,
    };
    let mut info = ElfInfo {
        abi: Abi {
            is64: fmt.is64,
            little_endian: fmt.le,
            machine: eh.machine,
        },
        e_type: eh.e_type,
        has_interp: false,
        interp: None,
        has_dynamic: false,
        go: None,
    };
    if phnum > 0 {
        read_program_headers(r, fmt, &eh, phnum, &mut info)?;
    }
    // Section headers are optional at run time: problems there are not errors.
    if let Some(sh0) = sh0 {
        let shnum = if eh.shnum == 0 {
            sh0.size
        } else {
            eh.shnum as u64
        };
        let shstrndx = if eh.shstrndx == SHN_XINDEX {
            sh0.link as u64
        } else {
            eh.shstrndx as u64
        };
        if let Some(go) = go_sections(r, fmt, eh.shoff, eh.shentsize as u64, shnum, shstrndx) {
            info.go = Some(go);
        }
    }
    Ok(info)
}

/// The file's class and byte order (`e_ident`); `NotElf` without the magic.
fn elf_format<R: ReadAt + ?Sized>(r: &R) -> Result<Fmt, ElfError> {
    let mut ident = [0u8; 16];
    r.read_exact_at_(&mut ident, 0)
        .map_err(|_| ElfError::NotElf)?;
    if &ident[..4] != b"\x7fELF" {
        return Err(ElfError::NotElf);
    }
    let is64 = match ident[4] {
        1 => false,
        2 => true,
        c => return Err(ElfError::Invalid(format!("unknown ELF class {c}"))),
    };
    let le = match ident[5] {
        1 => true,
        2 => false,
        d => return Err(ElfError::Invalid(format!("unknown ELF data encoding {d}"))),
    };
    Ok(Fmt { is64, le })
}

/// The fields of the ELF header this module reads.
struct ElfHeader {
    e_type: u16,
    machine: u16,
    phoff: u64,
    shoff: u64,
    phentsize: u16,
    phnum: u16,
    shentsize: u16,
    shnum: u16,
    shstrndx: u16,
}

fn elf_header<R: ReadAt + ?Sized>(r: &R, fmt: Fmt) -> Result<ElfHeader, ElfError> {
    let eh = read_range(r, 0, if fmt.is64 { 64 } else { 52 }, "the ELF header")?;
    // e_phentsize and the four fields after it, at the class's offset.
    let at = if fmt.is64 { 54 } else { 42 };
    Ok(ElfHeader {
        e_type: fmt.u16(&eh, 16),
        machine: fmt.u16(&eh, 18),
        phoff: fmt.word(&eh, 32, 28),
        shoff: fmt.word(&eh, 40, 32),
        phentsize: fmt.u16(&eh, at),
        phnum: fmt.u16(&eh, at + 2),
        shentsize: fmt.u16(&eh, at + 4),
        shnum: fmt.u16(&eh, at + 6),
        shstrndx: fmt.u16(&eh, at + 8),
    })
}

impl Fmt {
    /// The smallest program header of this class.
    fn min_phentsize(self) -> u16 {
        if self.is64 { 56 } else { 32 }
    }

    /// The smallest section header of this class.
    fn min_shentsize(self) -> u16 {
        if self.is64 { 64 } else { 40 }
    }
}

/// The `phnum` program headers: `PT_INTERP` (and the interpreter's path),
/// `PT_DYNAMIC`, a `PT_NOTE` with Go's build id.
fn read_program_headers<R: ReadAt + ?Sized>(
    r: &R,
    fmt: Fmt,
    eh: &ElfHeader,
    phnum: u64,
    info: &mut ElfInfo,
) -> Result<(), ElfError> {
    let phentsize = eh.phentsize;
    if phentsize < fmt.min_phentsize() {
        return Err(ElfError::Invalid(format!(
            "program header size {phentsize} is too small"
        )));
    }
    let table = read_range(r, eh.phoff, phnum * phentsize as u64, "the program headers")?;
    for ph in table.chunks_exact(phentsize as usize) {
        let p_type = fmt.u32(ph, 0);
        let offset = fmt.word(ph, 8, 4);
        let filesz = fmt.word(ph, 32, 16);
        let align = fmt.word(ph, 48, 28);
        match p_type {
            PT_INTERP => {
                info.has_interp = true;
                if let Ok(bytes) = read_range(r, offset, filesz.min(4096), "PT_INTERP") {
                    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                    info.interp = Some(String::from_utf8_lossy(&bytes[..end]).into_owned());
                }
            }
            PT_DYNAMIC => info.has_dynamic = true,
            PT_NOTE if info.go.is_none() => {
                if let Ok(notes) = read_range(r, offset, filesz, "PT_NOTE")
                    && has_go_buildid_note(fmt, &notes, if align == 8 { 8 } else { 4 })
                {
                    info.go = Some(GoEvidence::BuildIdNote);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn go_sections<R: ReadAt + ?Sized>(
    r: &R,
    fmt: Fmt,
    shoff: u64,
    shentsize: u64,
    shnum: u64,
    shstrndx: u64,
) -> Option<GoEvidence> {
    if shstrndx >= shnum {
        return None;
    }
    let table = read_range(r, shoff, shnum.checked_mul(shentsize)?, "section headers").ok()?;
    let headers: Vec<SectionHeader> = table
        .chunks_exact(shentsize as usize)
        .map(|b| section_header(fmt, b))
        .collect();
    let strtab = headers.get(shstrndx as usize)?;
    let names = read_range(r, strtab.offset, strtab.size, "section names").ok()?;
    let name_of = |h: &SectionHeader| -> &[u8] {
        let rest = names.get(h.name as usize..).unwrap_or_default();
        &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())]
    };
    let mut found = None;
    for h in &headers {
        match name_of(h) {
            b".go.buildinfo" => return Some(GoEvidence::BuildInfoSection),
            b".note.go.buildid" => found = Some(GoEvidence::BuildIdNote),
            _ => {}
        }
    }
    found
}

/// Scans an ELF note area for the Go build-ID note (name `"Go"`, type 4).
fn has_go_buildid_note(fmt: Fmt, notes: &[u8], align: usize) -> bool {
    let up = |n: usize| n.checked_add(align - 1).map(|n| n & !(align - 1));
    let mut off = 0usize;
    while off + 12 <= notes.len() {
        let namesz = fmt.u32(notes, off) as usize;
        let descsz = fmt.u32(notes, off + 4) as usize;
        let ntype = fmt.u32(notes, off + 8);
        let name_start = off + 12;
        let Some(name) = name_start
            .checked_add(namesz)
            .and_then(|end| notes.get(name_start..end))
        else {
            return false;
        };
        let trimmed = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        if ntype == NT_GO_BUILDID && trimmed == b"Go" {
            return true;
        }
        let next = up(name_start + namesz)
            .and_then(|d| d.checked_add(descsz))
            .and_then(up);
        match next {
            Some(n) if n > off => off = n,
            _ => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    // ---- ELF fixtures -------------------------------------------------------------

    struct Seg {
        p_type: u32,
        align: u64,
        data: Vec<u8>,
    }

    /// Builds a minimal ELF file: header, program headers with their data, named
    /// sections with a `.shstrtab`, then the section header table.
    fn build_elf(
        is64: bool,
        le: bool,
        e_type: u16,
        segs: &[Seg],
        sections: &[(&str, &[u8])],
    ) -> Vec<u8> {
        let fmt_u16 = |v: u16| if le { v.to_le_bytes() } else { v.to_be_bytes() };
        let fmt_u32 = |v: u32| if le { v.to_le_bytes() } else { v.to_be_bytes() };
        let fmt_u64 = |v: u64| if le { v.to_le_bytes() } else { v.to_be_bytes() };
        let word = |v: u64| -> Vec<u8> {
            if is64 {
                fmt_u64(v).to_vec()
            } else {
                fmt_u32(v as u32).to_vec()
            }
        };
        let (ehsize, phentsize, shentsize) = if is64 {
            (64u64, 56u64, 64u64)
        } else {
            (52, 32, 40)
        };
        let phoff = ehsize;
        let mut data_off = phoff + phentsize * segs.len() as u64;
        let mut body = Vec::new();
        let mut seg_offsets = Vec::new();
        for s in segs {
            seg_offsets.push(data_off + body.len() as u64);
            body.extend_from_slice(&s.data);
            while body.len() % 8 != 0 {
                body.push(0);
            }
        }
        let mut shstrtab = vec![0u8];
        let mut sec_entries = Vec::new(); // (name_off, offset, size)
        for (name, data) in sections {
            let name_off = shstrtab.len() as u32;
            shstrtab.extend_from_slice(name.as_bytes());
            shstrtab.push(0);
            sec_entries.push((name_off, data_off + body.len() as u64, data.len() as u64));
            body.extend_from_slice(data);
        }
        let strtab_name = shstrtab.len() as u32;
        shstrtab.extend_from_slice(b".shstrtab\0");
        let strtab_off = data_off + body.len() as u64;
        body.extend_from_slice(&shstrtab);
        sec_entries.push((strtab_name, strtab_off, shstrtab.len() as u64));
        while body.len() % 8 != 0 {
            body.push(0);
        }
        data_off += body.len() as u64;
        let shoff = data_off;
        let shnum = sec_entries.len() as u16 + 1;

        let mut out = Vec::new();
        out.extend_from_slice(b"\x7fELF");
        out.push(if is64 { 2 } else { 1 });
        out.push(if le { 1 } else { 2 });
        out.push(1);
        out.extend_from_slice(&[0; 9]);
        out.extend_from_slice(&fmt_u16(e_type));
        out.extend_from_slice(&fmt_u16(if is64 { 62 } else { 3 }));
        out.extend_from_slice(&fmt_u32(1));
        out.extend(word(0x1000)); // entry
        out.extend(word(phoff));
        out.extend(word(shoff));
        out.extend_from_slice(&fmt_u32(0)); // flags
        out.extend_from_slice(&fmt_u16(ehsize as u16));
        out.extend_from_slice(&fmt_u16(phentsize as u16));
        out.extend_from_slice(&fmt_u16(segs.len() as u16));
        out.extend_from_slice(&fmt_u16(shentsize as u16));
        out.extend_from_slice(&fmt_u16(shnum));
        out.extend_from_slice(&fmt_u16(shnum - 1));
        assert_eq!(out.len() as u64, ehsize);
        for (s, off) in segs.iter().zip(&seg_offsets) {
            let len = s.data.len() as u64;
            if is64 {
                out.extend_from_slice(&fmt_u32(s.p_type));
                out.extend_from_slice(&fmt_u32(4)); // flags
                for v in [*off, 0, 0, len, len, s.align] {
                    out.extend_from_slice(&fmt_u64(v));
                }
            } else {
                out.extend_from_slice(&fmt_u32(s.p_type));
                for v in [*off as u32, 0, 0, len as u32, len as u32, 4, s.align as u32] {
                    out.extend_from_slice(&fmt_u32(v));
                }
            }
        }
        out.extend_from_slice(&body);
        out.resize(shoff as usize + shentsize as usize, 0); // null section header
        for (name, off, size) in sec_entries {
            out.extend_from_slice(&fmt_u32(name));
            out.extend_from_slice(&fmt_u32(1)); // SHT_PROGBITS
            if is64 {
                for v in [0u64, 0, off, size] {
                    out.extend_from_slice(&fmt_u64(v));
                }
                out.extend_from_slice(&[0; 24]);
            } else {
                for v in [0u32, 0, off as u32, size as u32] {
                    out.extend_from_slice(&fmt_u32(v));
                }
                out.extend_from_slice(&[0; 16]);
            }
        }
        out
    }

    fn note(le: bool, name: &[u8], ntype: u32, desc: &[u8]) -> Vec<u8> {
        let u = |v: u32| if le { v.to_le_bytes() } else { v.to_be_bytes() };
        let mut n = Vec::new();
        n.extend_from_slice(&u(name.len() as u32));
        n.extend_from_slice(&u(desc.len() as u32));
        n.extend_from_slice(&u(ntype));
        n.extend_from_slice(name);
        while n.len() % 4 != 0 {
            n.push(0);
        }
        n.extend_from_slice(desc);
        while n.len() % 4 != 0 {
            n.push(0);
        }
        n
    }

    const ALL_FORMATS: [(bool, bool); 4] =
        [(true, true), (true, false), (false, true), (false, false)];

    #[test]
    fn dynamic_executable_in_every_format() {
        for (is64, le) in ALL_FORMATS {
            let elf = build_elf(
                is64,
                le,
                ET_DYN,
                &[
                    Seg {
                        p_type: PT_INTERP,
                        align: 1,
                        data: b"/lib/ld-test.so.1\0".to_vec(),
                    },
                    Seg {
                        p_type: PT_DYNAMIC,
                        align: 8,
                        data: vec![0; 16],
                    },
                ],
                &[(".text", b"code"), (".interp", b"/lib/ld-test.so.1\0")],
            );
            let info = parse_elf(elf.as_slice()).unwrap();
            assert_eq!(info.abi.is64, is64, "{is64} {le}");
            assert_eq!(info.abi.little_endian, le);
            assert_eq!(info.abi.machine, if is64 { 62 } else { 3 });
            assert!(info.has_interp && info.has_dynamic);
            assert_eq!(info.interp.as_deref(), Some("/lib/ld-test.so.1"));
            assert_eq!(info.go, None);
            assert!(info.describe().contains("dynamically linked"));
        }
    }

    #[test]
    fn static_executable_in_every_format() {
        for (is64, le) in ALL_FORMATS {
            let elf = build_elf(
                is64,
                le,
                ET_EXEC,
                &[Seg {
                    p_type: 1,
                    align: 8,
                    data: vec![1; 8],
                }],
                &[],
            );
            let info = parse_elf(elf.as_slice()).unwrap();
            assert!(!info.has_interp);
            assert_eq!(info.e_type, ET_EXEC);
            assert!(
                info.describe().contains("statically linked"),
                "{}",
                info.describe()
            );
        }
    }

    #[test]
    fn go_detected_by_section_or_note() {
        for (is64, le) in ALL_FORMATS {
            let by_section = build_elf(
                is64,
                le,
                ET_EXEC,
                &[],
                &[(".go.buildinfo", b"\xff Go buildinf:")],
            );
            assert_eq!(
                parse_elf(by_section.as_slice()).unwrap().go,
                Some(GoEvidence::BuildInfoSection)
            );

            let notes = [
                note(le, b"GNU\0", 3, &[1; 20]),
                note(le, b"Go\0\0", NT_GO_BUILDID, b"abc/def"),
            ]
            .concat();
            let mut by_note = build_elf(
                is64,
                le,
                ET_DYN,
                &[
                    Seg {
                        p_type: PT_INTERP,
                        align: 1,
                        data: b"/lib/ld.so\0".to_vec(),
                    },
                    Seg {
                        p_type: PT_NOTE,
                        align: 4,
                        data: notes,
                    },
                ],
                &[],
            );
            // Strip the section headers entirely: the note alone must be enough.
            let shoff_at = if is64 { 40 } else { 32 };
            by_note[shoff_at..shoff_at + if is64 { 8 } else { 4 }].fill(0);
            let info = parse_elf(by_note.as_slice()).unwrap();
            assert_eq!(info.go, Some(GoEvidence::BuildIdNote));
            assert!(info.has_interp);
        }
    }

    #[test]
    fn other_notes_are_not_go() {
        let notes = [
            note(true, b"GNU\0", 3, &[1; 20]),
            note(true, b"Go\0\0", 1, b"x"),
        ]
        .concat();
        let elf = build_elf(
            true,
            true,
            ET_DYN,
            &[Seg {
                p_type: PT_NOTE,
                align: 4,
                data: notes,
            }],
            &[],
        );
        assert_eq!(parse_elf(elf.as_slice()).unwrap().go, None);
    }

    #[test]
    fn malformed_inputs_do_not_panic() {
        assert_eq!(parse_elf(b"".as_slice()), Err(ElfError::NotElf));
        assert_eq!(
            parse_elf(b"#!/bin/sh\necho hi\n".as_slice()),
            Err(ElfError::NotElf)
        );
        assert!(matches!(
            parse_elf(b"\x7fELF\x03\x01\x01\0\0\0\0\0\0\0\0\0".as_slice()),
            Err(ElfError::Invalid(_))
        ));
        let good = build_elf(
            true,
            true,
            ET_DYN,
            &[Seg {
                p_type: PT_INTERP,
                align: 1,
                data: b"/x\0".to_vec(),
            }],
            &[(".a", b"b")],
        );
        // Every truncation and every single-byte corruption must return, not panic.
        for len in 0..good.len() {
            let _ = parse_elf(&good[..len]);
        }
        for i in 0..good.len() {
            for v in [0x00, 0xff, 0x7f] {
                let mut bad = good.clone();
                bad[i] = v;
                let _ = parse_elf(bad.as_slice());
            }
        }
        let notes = [0xff_u8; 12];
        assert!(!has_go_buildid_note(
            Fmt {
                is64: true,
                le: true
            },
            &notes,
            4
        ));
    }

    #[test]
    fn real_binaries() {
        for p in ["/bin/true", "/usr/bin/true", "/bin/sh"] {
            let Ok(f) = File::open(p) else { continue };
            let info = parse_elf(&f).unwrap();
            assert!(info.has_interp, "{p}: {}", info.describe());
            assert_eq!(info.go, None, "{p}");
        }
        let me = File::open("/proc/self/exe").unwrap();
        let info = parse_elf(&me).unwrap();
        assert_eq!(info.abi.is64, cfg!(target_pointer_width = "64"));
        assert_eq!(info.abi.little_endian, cfg!(target_endian = "little"));
        assert_eq!(info.go, None);
    }

    #[test]
    fn real_go_binaries_if_present() {
        // Go binaries found on developer machines and CI images; none is required.
        let candidates = [
            "/usr/local/bin/docker",
            "/usr/local/bin/terraform",
            "/usr/local/go/bin/go",
        ];
        let mut checked = 0;
        for p in candidates {
            let Ok(f) = File::open(p) else { continue };
            let info = parse_elf(&f).unwrap();
            assert!(info.go.is_some(), "{p}: {}", info.describe());
            checked += 1;
        }
        if checked == 0 {
            eprintln!("skipped: no Go binary at any of {candidates:?}");
        }
    }

    #[test]
    fn extended_program_header_count() {
        for (is64, le) in [(true, true), (false, false)] {
            let mut elf = build_elf(
                is64,
                le,
                ET_DYN,
                &[Seg {
                    p_type: PT_INTERP,
                    align: 1,
                    data: b"/lib/ld.so\0".to_vec(),
                }],
                &[],
            );
            let fmt = Fmt { is64, le };
            let (phnum_at, shoff, info_at) = if is64 {
                (56, fmt.u64(&elf, 40) as usize, 44)
            } else {
                (44, fmt.u32(&elf, 32) as usize, 28)
            };
            let put16 = |v: u16| if le { v.to_le_bytes() } else { v.to_be_bytes() };
            let put32 = |v: u32| if le { v.to_le_bytes() } else { v.to_be_bytes() };
            elf[phnum_at..phnum_at + 2].copy_from_slice(&put16(PN_XNUM));
            elf[shoff + info_at..shoff + info_at + 4].copy_from_slice(&put32(1));
            let info = parse_elf(elf.as_slice()).unwrap();
            assert!(info.has_interp, "is64={is64}");
            assert_eq!(info.interp.as_deref(), Some("/lib/ld.so"));
        }
    }
}
