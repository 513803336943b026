//! Mach-O reading: just the parts that decide whether dyld will load
//! `libmifshim.dylib` into a program through `DYLD_INSERT_LIBRARIES`.
//!
//! Thin files (32/64-bit, either byte order) and universal ones (`fat_header` with
//! `fat_arch` or `fat_arch_64` entries, always big-endian); per slice the load commands
//! (`LC_LOAD_DYLINKER`, the `LC_*_DYLIB` family, segments and their sections, for
//! `__RESTRICT,__restrict` and `__DATA,__interpose`) and the embedded code signature
//! (`LC_CODE_SIGNATURE` → SuperBlob → CodeDirectory flags, team identifier, platform;
//! the entitlements blob, XML or DER). Pure and bounded like [`super::elf`]: every
//! read is checked and capped, a malformed file yields an error, never a panic, and
//! only the ranges needed are read.
//!
//! Layouts: `<mach-o/loader.h>` and `<mach-o/fat.h>` (cctools / the macOS SDK);
//! the signature's: XNU `osfmk/kern/cs_blobs.h` (apple-oss-distributions/xnu).

// Compiled everywhere so that Linux tests it; only the macOS build calls it all.
#![cfg_attr(not(target_os = "macos"), allow(dead_code))]

use std::fmt;
use std::io;

use super::elf::ReadAt;

// ---- <mach-o/loader.h>, <mach-o/fat.h> ------------------------------------------

pub const MH_MAGIC: u32 = 0xfeed_face;
pub const MH_MAGIC_64: u32 = 0xfeed_facf;
pub const MH_CIGAM: u32 = 0xcefa_edfe;
pub const MH_CIGAM_64: u32 = 0xcffa_edfe;
pub const FAT_MAGIC: u32 = 0xcafe_babe;
pub const FAT_MAGIC_64: u32 = 0xcafe_babf;

pub const MH_EXECUTE: u32 = 0x2;
pub const MH_DYLINKER: u32 = 0x7;
pub const MH_DYLIB: u32 = 0x6;
pub const MH_BUNDLE: u32 = 0x8;

const LC_REQ_DYLD: u32 = 0x8000_0000;
pub const LC_SEGMENT: u32 = 0x1;
pub const LC_LOAD_DYLIB: u32 = 0xc;
pub const LC_ID_DYLIB: u32 = 0xd;
pub const LC_LOAD_DYLINKER: u32 = 0xe;
pub const LC_LOAD_WEAK_DYLIB: u32 = 0x18 | LC_REQ_DYLD;
pub const LC_SEGMENT_64: u32 = 0x19;
pub const LC_CODE_SIGNATURE: u32 = 0x1d;
pub const LC_REEXPORT_DYLIB: u32 = 0x1f | LC_REQ_DYLD;
pub const LC_LAZY_LOAD_DYLIB: u32 = 0x20;
pub const LC_LOAD_UPWARD_DYLIB: u32 = 0x23 | LC_REQ_DYLD;

/// `CPU_ARCH_ABI64` and `CPU_ARCH_ABI64_32` (`<mach/machine.h>`).
const CPU_ARCH_ABI64: i32 = 0x0100_0000;
const CPU_ARCH_ABI64_32: i32 = 0x0200_0000;
pub const CPU_TYPE_X86: i32 = 7;
pub const CPU_TYPE_X86_64: i32 = CPU_TYPE_X86 | CPU_ARCH_ABI64;
pub const CPU_TYPE_ARM: i32 = 12;
pub const CPU_TYPE_ARM64: i32 = CPU_TYPE_ARM | CPU_ARCH_ABI64;
pub const CPU_TYPE_ARM64_32: i32 = CPU_TYPE_ARM | CPU_ARCH_ABI64_32;
pub const CPU_TYPE_POWERPC: i32 = 18;
/// The capability bits of `cpusubtype` (`CPU_SUBTYPE_MASK`): `CPU_SUBTYPE_LIB64`,
/// pointer-authentication ABI versions; not part of the subtype proper.
const CPU_SUBTYPE_MASK: i32 = 0xff00_0000_u32 as i32;
pub const CPU_SUBTYPE_ARM64E: i32 = 2;
pub const CPU_SUBTYPE_X86_64_H: i32 = 8;

// ---- osfmk/kern/cs_blobs.h -------------------------------------------------------

/// Code-signing flags of a CodeDirectory (and of a process, `csops(CS_OPS_STATUS)`).
pub mod cs {
    pub const CS_ADHOC: u32 = 0x0000_0002;
    /// "Library Validation required by Hardened System Policy" (set by the kernel).
    pub const CS_FORCED_LV: u32 = 0x0000_0010;
    pub const CS_HARD: u32 = 0x0000_0100;
    pub const CS_KILL: u32 = 0x0000_0200;
    /// "tell dyld to treat restricted".
    pub const CS_RESTRICT: u32 = 0x0000_0800;
    pub const CS_ENFORCEMENT: u32 = 0x0000_1000;
    /// "require library validation".
    pub const CS_REQUIRE_LV: u32 = 0x0000_2000;
    /// "Apply hardened runtime policies".
    pub const CS_RUNTIME: u32 = 0x0001_0000;
    /// "Automatically signed by the linker".
    pub const CS_LINKER_SIGNED: u32 = 0x0002_0000;
}

const CSMAGIC_CODEDIRECTORY: u32 = 0xfade_0c02;
const CSMAGIC_EMBEDDED_SIGNATURE: u32 = 0xfade_0cc0;
const CSMAGIC_EMBEDDED_ENTITLEMENTS: u32 = 0xfade_7171;
const CSMAGIC_EMBEDDED_DER_ENTITLEMENTS: u32 = 0xfade_7172;
const CSSLOT_CODEDIRECTORY: u32 = 0;
const CSSLOT_ENTITLEMENTS: u32 = 5;
const CSSLOT_DER_ENTITLEMENTS: u32 = 7;
const CSSLOT_ALTERNATE_CODEDIRECTORIES: u32 = 0x1000;
const CSSLOT_ALTERNATE_CODEDIRECTORY_MAX: u32 = 5;
/// `CS_SUPPORTSTEAMID`: CodeDirectory versions from which `teamOffset` exists.
const CS_SUPPORTSTEAMID: u32 = 0x20200;

/// The hardened-runtime entitlement that lets dyld honour `DYLD_*` variables.
pub const ENT_ALLOW_DYLD_ENV: &str = "com.apple.security.cs.allow-dyld-environment-variables";
/// The hardened-runtime entitlement that turns library validation off.
pub const ENT_DISABLE_LV: &str = "com.apple.security.cs.disable-library-validation";

/// Upper bound on any single range read: the load commands, a blob, a string.
const READ_LIMIT: u64 = 16 << 20;
/// Upper bound on the slices of a universal file. `0xcafebabe` is also a Java class
/// file's magic, where the next word is the class version (45 and up); cctools' and
/// `file(1)`'s rule is the same kind of bound.
const MAX_FAT_ARCHS: u32 = 30;

// ---- types --------------------------------------------------------------------------

/// A CPU type and subtype, as in a `mach_header` or `fat_arch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arch {
    pub cputype: i32,
    pub cpusubtype: i32,
}

impl Arch {
    #[cfg(test)]
    pub const X86_64: Arch = Arch {
        cputype: CPU_TYPE_X86_64,
        cpusubtype: 3,
    };
    #[cfg(test)]
    pub const ARM64: Arch = Arch {
        cputype: CPU_TYPE_ARM64,
        cpusubtype: 0,
    };
    #[cfg(test)]
    pub const ARM64E: Arch = Arch {
        cputype: CPU_TYPE_ARM64,
        cpusubtype: CPU_SUBTYPE_ARM64E,
    };

    fn subtype(self) -> i32 {
        self.cpusubtype & !CPU_SUBTYPE_MASK
    }

    pub fn is_arm64e(self) -> bool {
        self.cputype == CPU_TYPE_ARM64 && self.subtype() == CPU_SUBTYPE_ARM64E
    }

    /// The name `lipo` and `file` use.
    pub fn name(self) -> String {
        match (self.cputype, self.subtype()) {
            (CPU_TYPE_X86_64, CPU_SUBTYPE_X86_64_H) => "x86_64h".into(),
            (CPU_TYPE_X86_64, _) => "x86_64".into(),
            (CPU_TYPE_X86, _) => "i386".into(),
            (CPU_TYPE_ARM64, CPU_SUBTYPE_ARM64E) => "arm64e".into(),
            (CPU_TYPE_ARM64, _) => "arm64".into(),
            (CPU_TYPE_ARM64_32, _) => "arm64_32".into(),
            (CPU_TYPE_ARM, _) => "arm".into(),
            (CPU_TYPE_POWERPC, _) => "ppc".into(),
            (t, s) => format!("cputype {t:#x} subtype {s:#x}"),
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// What the entitlements say about what dyld may do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Entitlements {
    /// An entitlements blob (XML or DER) is present.
    pub present: bool,
    /// [`ENT_ALLOW_DYLD_ENV`] is true.
    pub allow_dyld_env: bool,
    /// [`ENT_DISABLE_LV`] is true.
    pub disable_library_validation: bool,
}

/// The embedded code signature of one slice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signature {
    /// The CodeDirectory's flags ([`cs`]).
    pub flags: u32,
    /// The signing identifier (`com.example.app`).
    pub identifier: Option<String>,
    /// The Team ID (absent for ad hoc and Apple platform signatures).
    pub team_id: Option<String>,
    /// The CodeDirectory's `platform` byte: non-zero for Apple platform binaries.
    pub platform: u8,
    pub entitlements: Entitlements,
}

impl Signature {
    pub fn hardened_runtime(&self) -> bool {
        self.flags & cs::CS_RUNTIME != 0
    }
    pub fn adhoc(&self) -> bool {
        self.flags & cs::CS_ADHOC != 0
    }

    /// "signed ad hoc, hardened runtime (CS_RUNTIME), Team ID X, entitlements: …".
    pub fn describe(&self) -> String {
        let mut parts = vec![match (&self.team_id, self.adhoc(), self.platform) {
            (_, _, p) if p != 0 => "signed by Apple (platform binary)".to_owned(),
            (Some(t), _, _) => format!("signed, Team ID {t}"),
            (None, true, _) => "signed ad hoc".to_owned(),
            (None, false, _) => "signed".to_owned(),
        }];
        for (flag, name) in [
            (cs::CS_LINKER_SIGNED, "by the linker (CS_LINKER_SIGNED)"),
            (cs::CS_RUNTIME, "hardened runtime (CS_RUNTIME)"),
            (cs::CS_REQUIRE_LV, "library validation (CS_REQUIRE_LV)"),
            (cs::CS_RESTRICT, "restricted (CS_RESTRICT)"),
            (cs::CS_FORCED_LV, "CS_FORCED_LV"),
            (cs::CS_HARD, "CS_HARD"),
            (cs::CS_KILL, "CS_KILL"),
            (cs::CS_ENFORCEMENT, "CS_ENFORCEMENT"),
        ] {
            if self.flags & flag != 0 {
                parts.push(name.to_owned());
            }
        }
        let e = self.entitlements;
        if e.allow_dyld_env {
            parts.push("allows DYLD_* variables".into());
        }
        if e.disable_library_validation {
            parts.push("library validation disabled".into());
        }
        parts.join(", ")
    }
}

/// One architecture's image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    pub arch: Arch,
    /// Where the image starts in the file (0 for a thin file).
    pub offset: u64,
    pub filetype: u32,
    /// `LC_LOAD_DYLINKER`'s path (`/usr/lib/dyld`): absent, the kernel runs the image
    /// without dyld (a static executable).
    pub dylinker: Option<String>,
    /// Every `LC_LOAD_DYLIB`, `LC_LOAD_WEAK_DYLIB`, `LC_REEXPORT_DYLIB`,
    /// `LC_LAZY_LOAD_DYLIB`, `LC_LOAD_UPWARD_DYLIB` path, in order.
    pub dylibs: Vec<String>,
    /// `LC_ID_DYLIB`'s install name (dylibs).
    pub install_name: Option<String>,
    /// A section `__restrict` in a segment `__RESTRICT` (dyld's
    /// `MachOFile::isRestricted`).
    pub restrict_segment: bool,
    /// A section `__interpose` in a `__DATA*` segment: the image interposes.
    pub interposes: bool,
    /// `LC_CODE_SIGNATURE`'s signature; `None` when unsigned.
    pub signature: Option<Signature>,
    /// Why the signature could not be read, if it could not (the rest still counts).
    pub signature_error: Option<String>,
}

/// A parsed Mach-O file: one slice for a thin file, one per architecture for a
/// universal one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachO {
    pub universal: bool,
    pub slices: Vec<Slice>,
}

impl MachO {
    pub fn archs(&self) -> Vec<Arch> {
        self.slices.iter().map(|s| s.arch).collect()
    }

    /// One line: "Mach-O universal (x86_64, arm64e) executable" and so on, with the
    /// signature of the slice `running` if given.
    pub fn describe(&self) -> String {
        let archs: Vec<String> = self.slices.iter().map(|s| s.arch.name()).collect();
        let kind = match self.slices.first().map(|s| s.filetype) {
            Some(MH_EXECUTE) => "executable",
            Some(MH_DYLIB) => "dynamic library",
            Some(MH_BUNDLE) => "bundle",
            Some(MH_DYLINKER) => "dynamic linker",
            _ => "file",
        };
        if self.universal {
            format!("Mach-O universal ({}) {kind}", archs.join(", "))
        } else {
            format!("Mach-O {} {kind}", archs.join(""))
        }
    }
}

/// Why a file could not be parsed as Mach-O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MachOError {
    NotMachO,
    Invalid(String),
}

impl fmt::Display for MachOError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotMachO => f.write_str("not a Mach-O file"),
            Self::Invalid(why) => write!(f, "malformed Mach-O file: {why}"),
        }
    }
}

impl From<io::Error> for MachOError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            Self::Invalid("truncated".into())
        } else {
            Self::Invalid(e.to_string())
        }
    }
}

fn bad(why: impl Into<String>) -> MachOError {
    MachOError::Invalid(why.into())
}

/// Whether the first bytes of a file are a Mach-O (thin or universal) magic.
pub fn is_macho(head: &[u8]) -> bool {
    let Some(m) = head.get(..4) else {
        return false;
    };
    let be = u32::from_be_bytes([m[0], m[1], m[2], m[3]]);
    matches!(
        be,
        MH_MAGIC | MH_MAGIC_64 | MH_CIGAM | MH_CIGAM_64 | FAT_MAGIC | FAT_MAGIC_64
    ) && (!matches!(be, FAT_MAGIC | FAT_MAGIC_64)
        || head.get(4..8).is_some_and(|n| {
            (1..=MAX_FAT_ARCHS).contains(&u32::from_be_bytes([n[0], n[1], n[2], n[3]]))
        }))
}

// ---- reading ------------------------------------------------------------------------

fn read_vec<R: ReadAt + ?Sized>(r: &R, offset: u64, len: u64) -> Result<Vec<u8>, MachOError> {
    if len > READ_LIMIT {
        return Err(bad(format!("a range of {len} bytes is too large")));
    }
    let mut buf = vec![0; len as usize];
    r.read_exact_at_(&mut buf, offset)?;
    Ok(buf)
}

#[derive(Clone, Copy)]
struct Endian {
    big: bool,
}

impl Endian {
    fn u32(self, b: &[u8], at: usize) -> Option<u32> {
        let w: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.big {
            u32::from_be_bytes(w)
        } else {
            u32::from_le_bytes(w)
        })
    }
    fn u64(self, b: &[u8], at: usize) -> Option<u64> {
        let w: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
        Some(if self.big {
            u64::from_be_bytes(w)
        } else {
            u64::from_le_bytes(w)
        })
    }
}

const BE: Endian = Endian { big: true };

/// A fixed-size name field (`segname[16]`, `sectname[16]`): up to the first NUL.
fn name16(b: &[u8]) -> &[u8] {
    &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())]
}

/// An `lc_str` (an offset from the start of the load command) inside `cmd`.
fn lc_str(cmd: &[u8], e: Endian, at: usize) -> Option<String> {
    let off = e.u32(cmd, at)? as usize;
    let s = cmd.get(off..)?;
    let s = &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())];
    Some(String::from_utf8_lossy(s).into_owned())
}

/// Parses a thin or universal Mach-O file.
pub fn parse_macho<R: ReadAt + ?Sized>(r: &R) -> Result<MachO, MachOError> {
    let mut magic = [0u8; 8];
    r.read_exact_at_(&mut magic, 0)
        .map_err(|_| MachOError::NotMachO)?;
    let be = u32::from_be_bytes([magic[0], magic[1], magic[2], magic[3]]);
    if be != FAT_MAGIC && be != FAT_MAGIC_64 {
        let slice = parse_slice(r, 0, None)?;
        return Ok(MachO {
            universal: false,
            slices: vec![slice],
        });
    }
    if !is_macho(&magic) {
        return Err(MachOError::NotMachO);
    }
    let wide = be == FAT_MAGIC_64;
    let n = u32::from_be_bytes([magic[4], magic[5], magic[6], magic[7]]);
    // fat_arch: cputype, cpusubtype, offset, size, align (5 × u32); fat_arch_64:
    // cputype, cpusubtype, offset (u64), size (u64), align, reserved.
    let entry = if wide { 32 } else { 20 };
    let table = read_vec(r, 8, u64::from(n) * entry)?;
    let mut slices = Vec::with_capacity(n as usize);
    for i in 0..n as usize {
        let at = i * entry as usize;
        let field = |o: usize| BE.u32(&table, at + o).ok_or_else(|| bad("fat_arch"));
        let cputype = field(0)? as i32;
        let cpusubtype = field(4)? as i32;
        let (offset, size) = if wide {
            (
                BE.u64(&table, at + 8).ok_or_else(|| bad("fat_arch_64"))?,
                BE.u64(&table, at + 16).ok_or_else(|| bad("fat_arch_64"))?,
            )
        } else {
            (u64::from(field(8)?), u64::from(field(12)?))
        };
        if size == 0 {
            return Err(bad(format!("slice {i} is empty")));
        }
        let fat_arch = Arch {
            cputype,
            cpusubtype,
        };
        let slice = parse_slice(r, offset, Some(size))?;
        if slice.arch.cputype != fat_arch.cputype {
            return Err(bad(format!(
                "slice {i} is listed as {fat_arch} but its header says {}",
                slice.arch
            )));
        }
        slices.push(slice);
    }
    if slices.is_empty() {
        return Err(bad("a universal file without slices"));
    }
    Ok(MachO {
        universal: true,
        slices,
    })
}

/// Parses the image at `base` (its `size` when known, from the fat table).
fn parse_slice<R: ReadAt + ?Sized>(
    r: &R,
    base: u64,
    size: Option<u64>,
) -> Result<Slice, MachOError> {
    let mut hdr = [0u8; 32];
    r.read_exact_at_(&mut hdr[..28], base).map_err(|_| {
        if base == 0 {
            MachOError::NotMachO
        } else {
            bad(format!(
                "the slice at offset {base} lies beyond the end of the file"
            ))
        }
    })?;
    let (e, wide) = match u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) {
        MH_MAGIC => (Endian { big: false }, false),
        MH_MAGIC_64 => (Endian { big: false }, true),
        MH_CIGAM => (BE, false),
        MH_CIGAM_64 => (BE, true),
        _ => {
            return Err(if base == 0 {
                MachOError::NotMachO
            } else {
                bad(format!("no Mach-O header at offset {base}"))
            });
        }
    };
    let u = |at| e.u32(&hdr, at).expect("within the header");
    let arch = Arch {
        cputype: u(4) as i32,
        cpusubtype: u(8) as i32,
    };
    let filetype = u(12);
    let ncmds = u(16);
    let sizeofcmds = u(20);
    let header_len: u64 = if wide { 32 } else { 28 };
    if let Some(size) = size
        && header_len + u64::from(sizeofcmds) > size
    {
        return Err(bad("the load commands extend beyond the slice"));
    }
    let cmds = read_vec(r, base + header_len, u64::from(sizeofcmds))?;
    let mut slice = Slice {
        arch,
        offset: base,
        filetype,
        dylinker: None,
        dylibs: Vec::new(),
        install_name: None,
        restrict_segment: false,
        interposes: false,
        signature: None,
        signature_error: None,
    };
    let mut code_signature = None;
    let mut at = 0usize;
    for i in 0..ncmds {
        let (Some(cmd), Some(cmdsize)) = (e.u32(&cmds, at), e.u32(&cmds, at + 4)) else {
            return Err(bad(format!("load command {i} extends beyond sizeofcmds")));
        };
        let cmdsize = cmdsize as usize;
        if cmdsize < 8 || at + cmdsize > cmds.len() {
            return Err(bad(format!("load command {i} has a bad size ({cmdsize})")));
        }
        let c = &cmds[at..at + cmdsize];
        match cmd {
            LC_LOAD_DYLINKER => slice.dylinker = lc_str(c, e, 8),
            LC_LOAD_DYLIB | LC_LOAD_WEAK_DYLIB | LC_REEXPORT_DYLIB | LC_LAZY_LOAD_DYLIB
            | LC_LOAD_UPWARD_DYLIB => {
                if let Some(name) = lc_str(c, e, 8) {
                    slice.dylibs.push(name);
                }
            }
            LC_ID_DYLIB => slice.install_name = lc_str(c, e, 8),
            LC_SEGMENT | LC_SEGMENT_64 => segment(c, e, cmd == LC_SEGMENT_64, &mut slice)?,
            LC_CODE_SIGNATURE => {
                // linkedit_data_command: cmd, cmdsize, dataoff, datasize.
                let (Some(off), Some(len)) = (e.u32(c, 8), e.u32(c, 12)) else {
                    return Err(bad("LC_CODE_SIGNATURE is truncated"));
                };
                code_signature = Some((u64::from(off), u64::from(len)));
            }
            _ => {}
        }
        at += cmdsize;
    }
    if let Some((off, len)) = code_signature {
        match size {
            Some(size) if off + len > size => {
                slice.signature_error = Some("the code signature extends beyond the slice".into())
            }
            _ => match read_signature(r, base + off, len) {
                Ok(sig) => slice.signature = Some(sig),
                Err(e) => slice.signature_error = Some(e.to_string()),
            },
        }
    }
    Ok(slice)
}

/// A segment command and its sections: `__RESTRICT,__restrict` and `__interpose`.
fn segment(c: &[u8], e: Endian, wide: bool, slice: &mut Slice) -> Result<(), MachOError> {
    // segment_command(_64): cmd, cmdsize, segname[16], then vmaddr, vmsize, fileoff,
    // filesize (u32 or u64 each), maxprot, initprot, nsects, flags.
    let (nsects_at, first, sect_len) = if wide { (64, 72, 80) } else { (48, 56, 68) };
    let nsects = e.u32(c, nsects_at).ok_or_else(|| bad("segment command"))? as usize;
    if first + nsects.saturating_mul(sect_len) > c.len() {
        return Err(bad("a segment's sections extend beyond its load command"));
    }
    for s in 0..nsects {
        // section(_64): sectname[16], segname[16], …
        let sect = &c[first + s * sect_len..first + (s + 1) * sect_len];
        let sectname = name16(&sect[..16]);
        let segname = name16(&sect[16..32]);
        if segname == b"__RESTRICT" && sectname == b"__restrict" {
            slice.restrict_segment = true;
        }
        if segname.starts_with(b"__DATA") && sectname == b"__interpose" {
            slice.interposes = true;
        }
    }
    Ok(())
}

/// Reads the embedded signature SuperBlob at `offset` (big-endian throughout).
fn read_signature<R: ReadAt + ?Sized>(
    r: &R,
    offset: u64,
    len: u64,
) -> Result<Signature, MachOError> {
    let head = read_vec(r, offset, 12.min(len))?;
    if BE.u32(&head, 0) != Some(CSMAGIC_EMBEDDED_SIGNATURE) {
        return Err(bad(
            "the code signature is not an embedded-signature SuperBlob",
        ));
    }
    let length = u64::from(BE.u32(&head, 4).ok_or_else(|| bad("SuperBlob"))?);
    let count = u64::from(BE.u32(&head, 8).ok_or_else(|| bad("SuperBlob"))?);
    if length > len || 12 + count * 8 > length {
        return Err(bad("the SuperBlob's length or count is out of range"));
    }
    let index = read_vec(r, offset + 12, count * 8)?;
    let mut primary = None;
    let mut alternate = None;
    let mut xml = None;
    let mut der = None;
    for i in 0..count as usize {
        let ty = BE.u32(&index, i * 8).expect("within the index");
        let off = u64::from(BE.u32(&index, i * 8 + 4).expect("within the index"));
        if off + 8 > length {
            return Err(bad(format!("blob {i} lies outside the SuperBlob")));
        }
        match ty {
            CSSLOT_CODEDIRECTORY => primary = Some(off),
            t if (CSSLOT_ALTERNATE_CODEDIRECTORIES
                ..CSSLOT_ALTERNATE_CODEDIRECTORIES + CSSLOT_ALTERNATE_CODEDIRECTORY_MAX)
                .contains(&t) =>
            {
                alternate = alternate.or(Some(off))
            }
            CSSLOT_ENTITLEMENTS => xml = Some(off),
            CSSLOT_DER_ENTITLEMENTS => der = Some(off),
            _ => {}
        }
    }
    // Every CodeDirectory of a signature carries the same flags; the primary one is
    // SHA-1 or SHA-256, the alternates other hash types.
    let cd_off = primary
        .or(alternate)
        .ok_or_else(|| bad("the signature has no CodeDirectory"))?;
    let blob = |off: u64, magic: u32| -> Result<Vec<u8>, MachOError> {
        let h = read_vec(r, offset + off, 8)?;
        if BE.u32(&h, 0) != Some(magic) {
            return Err(bad(format!(
                "blob at {off} has magic {:#x}",
                BE.u32(&h, 0).unwrap_or(0)
            )));
        }
        let blen = u64::from(BE.u32(&h, 4).expect("8 bytes"));
        if blen < 8 || off + blen > length {
            return Err(bad(format!("blob at {off} has a bad length")));
        }
        read_vec(r, offset + off, blen)
    };
    let cd = blob(cd_off, CSMAGIC_CODEDIRECTORY)?;
    let mut sig = code_directory(&cd)?;
    if let Some(off) = xml {
        let b = blob(off, CSMAGIC_EMBEDDED_ENTITLEMENTS)?;
        sig.entitlements = xml_entitlements(&b[8..]);
    } else if let Some(off) = der {
        let b = blob(off, CSMAGIC_EMBEDDED_DER_ENTITLEMENTS)?;
        sig.entitlements = der_entitlements(&b[8..]);
    }
    Ok(sig)
}

/// The fields of a CodeDirectory blob that matter here.
fn code_directory(cd: &[u8]) -> Result<Signature, MachOError> {
    let f = |at: usize| {
        BE.u32(cd, at)
            .ok_or_else(|| bad("CodeDirectory is truncated"))
    };
    let version = f(8)?;
    let flags = f(12)?;
    let ident_off = f(20)? as usize;
    // hashSize, hashType, platform, pageSize at 36..40.
    let platform = *cd
        .get(38)
        .ok_or_else(|| bad("CodeDirectory is truncated"))?;
    let cstr = |off: usize| -> Option<String> {
        let s = cd.get(off..)?;
        let end = s.iter().position(|&c| c == 0)?;
        Some(String::from_utf8_lossy(&s[..end]).into_owned())
    };
    let team_id = if version >= CS_SUPPORTSTEAMID {
        match f(48)? {
            0 => None,
            off => cstr(off as usize),
        }
    } else {
        None
    };
    Ok(Signature {
        flags,
        identifier: (ident_off != 0).then(|| cstr(ident_off)).flatten(),
        team_id,
        platform,
        entitlements: Entitlements::default(),
    })
}

/// Reads the top-level booleans of an XML property list of entitlements: a
/// `<key>NAME</key>` followed by `<true/>`. Other values (and nested dictionaries,
/// whose keys are not entitlements) count as not granted.
pub fn xml_entitlements(plist: &[u8]) -> Entitlements {
    let text = String::from_utf8_lossy(plist);
    let mut ent = Entitlements {
        present: true,
        ..Entitlements::default()
    };
    // Depth of <dict> nesting; the entitlements are the keys of the outermost one.
    let mut depth = 0usize;
    let mut rest = text.as_ref();
    let mut pending_key: Option<String> = None;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let tag = rest[open + 1..open + close].trim();
        let after = &rest[open + close + 1..];
        if tag.starts_with('?') || tag.starts_with('!') {
            rest = after;
            continue;
        }
        match tag {
            "dict" => {
                depth += 1;
                pending_key = None;
            }
            "/dict" => depth = depth.saturating_sub(1),
            "key" => {
                let end = after.find("</key>").unwrap_or(after.len());
                if depth == 1 {
                    pending_key = Some(after[..end].trim().to_owned());
                }
                rest = &after[end..];
                continue;
            }
            "/key" => {}
            "true/" | "true /" if depth == 1 => match pending_key.take().as_deref() {
                Some(ENT_ALLOW_DYLD_ENV) => ent.allow_dyld_env = true,
                Some(ENT_DISABLE_LV) => ent.disable_library_validation = true,
                _ => {}
            },
            t if !t.starts_with('/') && depth == 1 => pending_key = None,
            _ => {}
        }
        rest = after;
    }
    ent
}

/// Reads the DER form of the entitlements (`CSMAGIC_EMBEDDED_DER_ENTITLEMENTS`): an
/// `[APPLICATION 16]` holding a version `INTEGER` and a `[CONTEXT 16]` dictionary, a
/// `SET` of `SEQUENCE { UTF8String key, value }` with `BOOLEAN` for booleans.
pub fn der_entitlements(der: &[u8]) -> Entitlements {
    let mut ent = Entitlements {
        present: true,
        ..Entitlements::default()
    };
    // The outer dictionary's entries: walk down to it, then read each pair.
    let Some((_, app)) = der_tlv(der).filter(|(t, _)| t.0 == 0x70) else {
        return ent;
    };
    let Some(after_version) = der_tlv(app)
        .and_then(|(t, _)| (t.0 == 0x02).then(|| der_skip(app)))
        .flatten()
    else {
        return ent;
    };
    let Some((t, dict)) = der_tlv(after_version) else {
        return ent;
    };
    if t.0 != 0xb0 {
        return ent;
    }
    let Some((_, mut entries)) = der_tlv(dict).filter(|(t, _)| t.0 == 0x31) else {
        return ent;
    };
    while let Some((t, pair)) = der_tlv(entries) {
        if t.0 == 0x30
            && let Some((kt, key)) = der_tlv(pair)
            && kt.0 == 0x0c
            && let Some(value_bytes) = der_skip(pair)
            && let Some((vt, value)) = der_tlv(value_bytes)
            && vt.0 == 0x01
            && value.first().is_some_and(|&b| b != 0)
        {
            match key {
                k if k == ENT_ALLOW_DYLD_ENV.as_bytes() => ent.allow_dyld_env = true,
                k if k == ENT_DISABLE_LV.as_bytes() => ent.disable_library_validation = true,
                _ => {}
            }
        }
        let Some(next) = der_skip(entries) else {
            break;
        };
        entries = next;
    }
    ent
}

/// A DER tag (single-byte tags only: all the entitlements encoding uses).
#[derive(Clone, Copy)]
struct Tag(u8);

/// The tag and contents of the TLV at the start of `b`.
fn der_tlv(b: &[u8]) -> Option<(Tag, &[u8])> {
    let (start, len) = der_len(b)?;
    Some((Tag(*b.first()?), b.get(start..start.checked_add(len)?)?))
}

/// What follows the TLV at the start of `b`.
fn der_skip(b: &[u8]) -> Option<&[u8]> {
    let (start, len) = der_len(b)?;
    b.get(start.checked_add(len)?..)
}

/// (offset of the contents, their length) of the TLV at the start of `b`.
fn der_len(b: &[u8]) -> Option<(usize, usize)> {
    let first = *b.get(1)?;
    if first & 0x80 == 0 {
        return Some((2, first as usize));
    }
    let n = (first & 0x7f) as usize;
    if n == 0 || n > 4 {
        return None;
    }
    let mut len = 0usize;
    for i in 0..n {
        len = (len << 8) | *b.get(2 + i)? as usize;
    }
    Some((2 + n, len))
}

#[cfg(test)]
pub(crate) mod build;

#[cfg(test)]
mod tests;
