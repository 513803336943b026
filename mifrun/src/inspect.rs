//! What will actually run, and whether a preload library can steer it.
//!
//! A preload library only takes effect in a process whose dynamic loader runs and
//! honours `LD_PRELOAD`, and only for calls that go through libc. This module finds the
//! program like execvp(3), follows one level of `#!` (including `#!/usr/bin/env NAME`)
//! and reports every [`Blocker`]: static binaries (no `PT_INTERP`), Go programs (raw
//! syscalls), programs whose exec changes credentials (secure-execution mode drops
//! `LD_PRELOAD`), and an ABI the library cannot be loaded into.
//!
//! The ELF parsing is in [`elf`], from the bytes (32/64-bit, little/big-endian) through
//! its `ReadAt` trait, so that tests run on in-memory fixtures and the real code reads
//! only the few ranges it needs.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::sys;

pub mod dyld;
mod elf;
pub mod macho;

pub use elf::{Abi, GoEvidence};
use elf::{ET_DYN, ET_EXEC, parse_elf};

// ---------------------------------------------------------------------------------
// `#!` lines
// ---------------------------------------------------------------------------------

/// How many bytes of a file the kernel looks at for `#!` (`BINPRM_BUF_SIZE`).
pub const SHEBANG_BUF: usize = 256;

/// A parsed `#!` line, split like the kernel does: the interpreter, and everything
/// after it as at most one argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shebang {
    pub interpreter: OsString,
    pub arg: Option<OsString>,
}

impl Shebang {
    /// The line as shown in the exec chain: `INTERPRETER[ ARG]` (after the `#!`).
    fn line(&self) -> String {
        let arg = self
            .arg
            .as_ref()
            .map(|a| format!(" {}", a.to_string_lossy()));
        format!(
            "{}{}",
            Path::new(&self.interpreter).display(),
            arg.unwrap_or_default()
        )
    }
}

/// Parses the first bytes of a file the way `fs/binfmt_script.c` does. `None` when the
/// file does not start with a usable `#!` line.
pub fn parse_shebang(head: &[u8]) -> Option<Shebang> {
    let rest = head.strip_prefix(b"#!")?;
    let rest = &rest[..rest.len().min(SHEBANG_BUF - 3)];
    let line = &rest[..rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len())];
    // A NUL terminates the C strings the kernel passes on.
    let line = &line[..line.iter().position(|&b| b == 0).unwrap_or(line.len())];
    let is_blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = line.iter().position(|b| !is_blank(b))?;
    let end = line.iter().rposition(|b| !is_blank(b))? + 1;
    let line = &line[start..end];
    let split = line.iter().position(is_blank).unwrap_or(line.len());
    let interpreter = OsStr::from_bytes(&line[..split]).to_owned();
    let arg = line[split..]
        .iter()
        .position(|b| !is_blank(b))
        .map(|p| OsStr::from_bytes(&line[split + p..]).to_owned());
    Some(Shebang { interpreter, arg })
}

/// What `env` will run, from the single argument of a `#!/usr/bin/env …` line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnvTarget {
    /// The program `env` executes (looked up in PATH), if any.
    pub program: Option<OsString>,
    /// `-i`/`--ignore-environment`/`-`: the environment (and `LD_PRELOAD`) is dropped.
    pub clears_env: bool,
}

/// Interprets the argument of a `#!/usr/bin/env` line. Without `-S` the kernel passes
/// the rest of the line as one word, so `env` sees it as one program name.
pub fn parse_env_arg(arg: Option<&OsStr>) -> EnvTarget {
    let Some(arg) = arg else {
        return EnvTarget::default();
    };
    let bytes = arg.as_bytes();
    let words: Vec<&[u8]> = if let Some(rest) = bytes.strip_prefix(b"-S") {
        rest.split(|b| *b == b' ' || *b == b'\t')
            .filter(|w| !w.is_empty())
            .collect()
    } else {
        vec![bytes]
    };
    let mut target = EnvTarget::default();
    let mut words = words.into_iter();
    while let Some(w) = words.next() {
        match w {
            b"-i" | b"--ignore-environment" | b"-" => target.clears_env = true,
            b"-u" | b"--unset" | b"-C" | b"--chdir" => {
                words.next();
            }
            w if w.starts_with(b"-") => {}
            w if w.contains(&b'=') => {}
            w => {
                target.program = Some(OsStr::from_bytes(w).to_owned());
                break;
            }
        }
    }
    target
}

// ---------------------------------------------------------------------------------
// PATH lookup
// ---------------------------------------------------------------------------------

/// What exists at a candidate path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Missing,
    /// Exists but exec would fail with `EACCES` (no x bit, directory, not a regular file).
    NotExecutable,
    Executable,
}

/// Why a program cannot be run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    NotFound,
    NotExecutable(PathBuf),
}

/// The search path used by glibc's execvp when `PATH` is unset (`_CS_PATH`).
pub const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// Finds `program` like execvp(3): a name with a `/` is used as is; otherwise each
/// `PATH` entry is tried in order (an empty entry means the current directory), the
/// first executable wins, and an `EACCES` is remembered if nothing else is found.
pub fn resolve_program(
    program: &OsStr,
    path_var: Option<&OsStr>,
    probe: impl Fn(&Path) -> Probe,
) -> Result<PathBuf, ResolveError> {
    let bytes = program.as_bytes();
    if bytes.is_empty() {
        return Err(ResolveError::NotFound);
    }
    if bytes.contains(&b'/') {
        let p = PathBuf::from(program);
        return match probe(&p) {
            Probe::Executable => Ok(p),
            Probe::NotExecutable => Err(ResolveError::NotExecutable(p)),
            Probe::Missing => Err(ResolveError::NotFound),
        };
    }
    let path_var = path_var.unwrap_or(OsStr::new(DEFAULT_PATH));
    let mut denied = None;
    for dir in path_var.as_bytes().split(|b| *b == b':') {
        let dir = if dir.is_empty() {
            Path::new(".")
        } else {
            Path::new(OsStr::from_bytes(dir))
        };
        let candidate = dir.join(program);
        match probe(&candidate) {
            Probe::Executable => return Ok(candidate),
            Probe::NotExecutable if denied.is_none() => denied = Some(candidate),
            _ => {}
        }
    }
    Err(denied.map_or(ResolveError::NotFound, ResolveError::NotExecutable))
}

/// [`Probe`] for a real path.
pub fn probe_path(path: &Path) -> Probe {
    match std::fs::metadata(path) {
        Err(_) => Probe::Missing,
        Ok(m) if m.is_file() && sys::is_executable(path) => Probe::Executable,
        Ok(_) => Probe::NotExecutable,
    }
}

// ---------------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------------

const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_IXGRP: u32 = 0o0010;

/// The file facts that decide whether exec changes credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileCred {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub has_caps: bool,
    pub nosuid_mount: bool,
}

/// Credential changes (secure-execution mode: ld.so ignores and strips `LD_PRELOAD`)
/// that exec of a file with `file` facts would cause for a process with `me`. Mirrors
/// the kernel: setuid/setgid and file capabilities are ignored on `nosuid` mounts;
/// setgid without group-execute is not setgid-exec; file capabilities trigger secure
/// execution only for a non-root real uid.
pub fn credential_blockers(path: &Path, file: FileCred, me: sys::Creds) -> Vec<Blocker> {
    let mut out = Vec::new();
    if file.nosuid_mount {
        return out;
    }
    if file.mode & S_ISUID != 0 && (file.uid != me.euid || file.uid != me.uid) {
        out.push(Blocker::SetUid {
            path: path.to_owned(),
            owner: file.uid,
        });
    }
    if file.mode & S_ISGID != 0
        && file.mode & S_IXGRP != 0
        && (file.gid != me.egid || file.gid != me.gid)
    {
        out.push(Blocker::SetGid {
            path: path.to_owned(),
            group: file.gid,
        });
    }
    if file.has_caps && me.uid != 0 {
        out.push(Blocker::FileCaps {
            path: path.to_owned(),
        });
    }
    out
}

// ---------------------------------------------------------------------------------
// Verdict
// ---------------------------------------------------------------------------------

/// Something that keeps the shim from steering the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocker {
    Static {
        path: PathBuf,
    },
    Go {
        path: PathBuf,
        evidence: GoEvidence,
    },
    /// `PT_INTERP` names a loader that is not glibc's (musl, uclibc, bionic…): it
    /// cannot load the glibc-built preload (musl's fails the program with
    /// `__register_atfork: symbol not found`, status 127).
    ForeignLoader {
        path: PathBuf,
        interp: String,
    },
    SetUid {
        path: PathBuf,
        owner: u32,
    },
    SetGid {
        path: PathBuf,
        group: u32,
    },
    FileCaps {
        path: PathBuf,
    },
    AbiMismatch {
        path: PathBuf,
        program: Abi,
        library: Abi,
    },
    EnvClearsEnvironment {
        script: PathBuf,
    },
    // ---- macOS (dyld, AMFI, SIP: see `dyld`) ----
    /// A Mach-O executable started without dyld (no `LC_LOAD_DYLINKER`).
    MachStatic {
        path: PathBuf,
    },
    /// In a SIP-protected location (`script`: the script that runs it as its
    /// interpreter).
    SipProtected {
        path: PathBuf,
        script: Option<PathBuf>,
    },
    /// Signed with the hardened runtime, without the entitlement that allows `DYLD_*`.
    HardenedRuntime {
        path: PathBuf,
    },
    /// Library validation would refuse libmifshim.dylib (`hardened`: implied by the
    /// hardened runtime rather than `CS_REQUIRE_LV`).
    LibraryValidation {
        path: PathBuf,
        hardened: bool,
        team: Option<String>,
    },
    /// dyld treats the process as restricted (`__RESTRICT` segment, `CS_RESTRICT`).
    Restricted {
        path: PathBuf,
        why: dyld::Restriction,
    },
    /// No slice of libmifshim.dylib fits the slice that runs (or no slice runs here).
    MachArch {
        path: PathBuf,
        program: Vec<macho::Arch>,
        library: Vec<macho::Arch>,
    },
}

use crate::preload::PRELOAD_VAR;

impl Blocker {
    /// The file the finding is about (`None` for a `#!` line problem).
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Static { path }
            | Self::Go { path, .. }
            | Self::ForeignLoader { path, .. }
            | Self::SetUid { path, .. }
            | Self::SetGid { path, .. }
            | Self::FileCaps { path }
            | Self::AbiMismatch { path, .. }
            | Self::MachStatic { path }
            | Self::SipProtected { path, .. }
            | Self::HardenedRuntime { path }
            | Self::LibraryValidation { path, .. }
            | Self::Restricted { path, .. }
            | Self::MachArch { path, .. } => Some(path),
            Self::EnvClearsEnvironment { script } => Some(script),
        }
    }
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Static { path } => write!(
                f,
                "{} is statically linked (ELF without PT_INTERP): the dynamic loader never runs, so LD_PRELOAD is not applied",
                path.display()
            ),
            Self::Go { path, evidence } => write!(
                f,
                "{} is a Go program ({evidence}): Go makes socket system calls directly, bypassing libc and the shim",
                path.display()
            ),
            Self::ForeignLoader { path, interp } => write!(
                f,
                "{} is linked for the loader {interp}, which is not glibc's: it cannot load libmifshim.so (built for glibc), so {PRELOAD_VAR} must not reach it",
                path.display()
            ),
            Self::SetUid { path, owner } => write!(
                f,
                "{} is setuid (owner uid {owner}): exec changes credentials and the loader ignores and strips {PRELOAD_VAR} ({})",
                path.display(),
                SECURE_MODE
            ),
            Self::SetGid { path, group } => write!(
                f,
                "{} is setgid (group gid {group}): exec changes credentials and the loader ignores and strips {PRELOAD_VAR} ({})",
                path.display(),
                SECURE_MODE
            ),
            Self::FileCaps { path } => write!(
                f,
                "{} has file capabilities (security.capability): exec runs it in secure-execution mode, which ignores and strips LD_PRELOAD",
                path.display()
            ),
            Self::AbiMismatch {
                path,
                program,
                library,
            } => write!(
                f,
                "{} is {program} but libmifshim.so is {library}: the loader skips a preload of the wrong class or machine",
                path.display()
            ),
            Self::EnvClearsEnvironment { script } => write!(
                f,
                "{} starts with `#!…env -i`, which clears the environment and with it {PRELOAD_VAR}",
                script.display()
            ),
            Self::MachStatic { path } => write!(
                f,
                "{} is a static Mach-O executable (no LC_LOAD_DYLINKER): dyld never runs, so DYLD_INSERT_LIBRARIES is not applied",
                path.display()
            ),
            Self::SipProtected { path, script: None } => write!(
                f,
                "{} is protected by System Integrity Protection: the kernel marks it restricted and dyld purges DYLD_INSERT_LIBRARIES (and every DYLD_* variable, for its children too)",
                path.display()
            ),
            Self::SipProtected {
                path,
                script: Some(script),
            } => write!(
                f,
                "{} runs its interpreter {}, which is protected by System Integrity Protection: dyld purges DYLD_INSERT_LIBRARIES when it starts (for what it runs, too)",
                script.display(),
                path.display()
            ),
            Self::HardenedRuntime { path } => write!(
                f,
                "{} is signed with the hardened runtime (CS_RUNTIME) without the {} entitlement: dyld purges DYLD_INSERT_LIBRARIES",
                path.display(),
                macho::ENT_ALLOW_DYLD_ENV
            ),
            Self::LibraryValidation {
                path,
                hardened,
                team,
            } => write!(
                f,
                "{} requires library validation ({}{}): dyld refuses libmifshim.dylib, which is not signed by Apple or the same team, and the program would not start",
                path.display(),
                if *hardened {
                    "the hardened runtime without com.apple.security.cs.disable-library-validation"
                } else {
                    "CS_REQUIRE_LV"
                },
                team.as_deref()
                    .map(|t| format!("; Team ID {t}"))
                    .unwrap_or_default()
            ),
            Self::Restricted {
                path,
                why: dyld::Restriction::RestrictSegment,
            } => write!(
                f,
                "{} has a __RESTRICT,__restrict section: dyld treats it as restricted and purges DYLD_INSERT_LIBRARIES",
                path.display()
            ),
            Self::Restricted {
                path,
                why: dyld::Restriction::CsRestrict,
            } => write!(
                f,
                "{} is signed with CS_RESTRICT: dyld treats it as restricted and purges DYLD_INSERT_LIBRARIES",
                path.display()
            ),
            Self::MachArch {
                path,
                program,
                library,
            } => {
                let names =
                    |a: &[macho::Arch]| a.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ");
                if library.is_empty() {
                    write!(
                        f,
                        "{} has no slice this Mac can run ({})",
                        path.display(),
                        names(program)
                    )
                } else {
                    write!(
                        f,
                        "{} runs as {} but libmifshim.dylib is {}: dyld loads no slice of the wrong architecture",
                        path.display(),
                        names(program),
                        names(library)
                    )
                }
            }
        }
    }
}

/// What the loader calls the mode in which it ignores the preload variable.
const SECURE_MODE: &str = if cfg!(target_os = "macos") {
    "a restricted process"
} else {
    "secure-execution mode"
};

/// The result of inspecting a program.
#[derive(Debug, Clone, Default)]
pub struct Inspection {
    /// What will be executed (resolved through PATH).
    pub resolved: PathBuf,
    /// Human description, one line per step (script, interpreter, binary).
    pub chain: Vec<String>,
    pub blockers: Vec<Blocker>,
    /// Things that could not be checked (printed as warnings).
    pub notes: Vec<String>,
}

/// A failure that stops mifrun before exec, with env(1)'s exit codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError {
    /// 127: not found; 126: found but cannot be executed.
    pub code: u8,
    pub message: String,
    pub hint: Option<String>,
}

/// What a program is checked against: Linux's loader and the library's ELF ABI, or
/// macOS's kernel, AMFI and dyld ([`dyld`]).
#[derive(Debug, Clone)]
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
pub enum Target {
    Linux { library: Option<Abi> },
    MacOs(dyld::MacContext),
}

/// Inspects `program` (as given on the command line): resolves it through `path_var`,
/// follows one level of `#!`, and checks the binary that will actually run against
/// the library's ABI `library`.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub fn inspect(
    program: &OsStr,
    path_var: Option<&OsStr>,
    library: Option<Abi>,
    me: sys::Creds,
) -> Result<Inspection, RunError> {
    inspect_for(program, path_var, &Target::Linux { library }, me)
}

/// [`inspect`] for a [`Target`]: the program resolved, then a binary checked, or a
/// script's interpreter (and, for `#!/usr/bin/env`, the program it names) followed.
pub fn inspect_for(
    program: &OsStr,
    path_var: Option<&OsStr>,
    target: &Target,
    me: sys::Creds,
) -> Result<Inspection, RunError> {
    let resolved = resolve_named(program, path_var)?;
    let mut ins = Inspection {
        resolved: resolved.clone(),
        ..Inspection::default()
    };
    let head = match read_head(&resolved) {
        Ok(h) => h,
        Err(e) => {
            ins.notes.push(format!(
                "cannot read {} to inspect it ({e}); not checked",
                resolved.display()
            ));
            return Ok(ins);
        }
    };
    // A binary of the target's format is checked; anything else (on Linux a Mach-O
    // file too) is run the way execvp runs it, as below.
    let binary = match target {
        Target::Linux { .. } => head.starts_with(b"\x7fELF"),
        Target::MacOs(_) => macho::is_macho(&head) || head.starts_with(b"\x7fELF"),
    };
    if binary {
        check_binary(&resolved, target, me, &mut ins);
        return Ok(ins);
    }
    let (interp, arg) = script_interpreter(&resolved, &head, &mut ins);
    check_interpreter(&resolved, &interp)?;
    if let Target::MacOs(cx) = target
        && let Some(b) = dyld::sip_interpreter(&resolved, &real_path(&interp), cx)
    {
        ins.blockers.push(b);
    }
    let follow = Follow {
        path_var,
        target,
        me,
        level: 0,
    };
    if interp.file_name() == Some(OsStr::new("env")) {
        follow_env(&interp, arg.as_deref(), follow, &mut ins)?;
    } else {
        follow_final(&interp, follow, &mut ins)?;
    }
    Ok(ins)
}

/// `program` as given on the command line, resolved through `path_var` as execvp
/// does; the error with env(1)'s exit code and message.
fn resolve_named(program: &OsStr, path_var: Option<&OsStr>) -> Result<PathBuf, RunError> {
    let shown = Path::new(program).display().to_string();
    resolve_program(program, path_var, probe_path).map_err(|e| match e {
        ResolveError::NotFound => RunError {
            code: 127,
            message: format!("{shown}: No such file or directory"),
            hint: (!program.as_bytes().contains(&b'/'))
                .then(|| "it is not in any directory of PATH".to_owned()),
        },
        ResolveError::NotExecutable(p) => RunError {
            code: 126,
            message: format!("{}: Permission denied", p.display()),
            hint: None,
        },
    })
}

/// A script's interpreter and its argument: the kernel runs the `#!` interpreter;
/// glibc's execvp runs a file without `#!` (ENOEXEC) with /bin/sh. Noted in the chain.
fn script_interpreter(
    resolved: &Path,
    head: &[u8],
    ins: &mut Inspection,
) -> (PathBuf, Option<OsString>) {
    match parse_shebang(head) {
        Some(sb) => {
            ins.chain
                .push(format!("{}: script, `#!{}`", resolved.display(), sb.line()));
            (PathBuf::from(&sb.interpreter), sb.arg)
        }
        None => {
            ins.chain.push(format!(
                "{}: no `#!` line and not ELF; execvp runs it with /bin/sh",
                resolved.display()
            ));
            (PathBuf::from("/bin/sh"), None)
        }
    }
}

/// A script's interpreter that cannot be executed: the kernel's "bad interpreter".
fn check_interpreter(resolved: &Path, interp: &Path) -> Result<(), RunError> {
    if probe_path(interp) == Probe::Executable {
        return Ok(());
    }
    let crlf = interp.as_os_str().as_bytes().ends_with(b"\r");
    let missing = probe_path(interp) == Probe::Missing;
    Err(RunError {
        code: if missing { 127 } else { 126 },
        message: format!(
            "{}: bad interpreter {:?}: {}",
            resolved.display(),
            interp,
            if missing {
                "No such file or directory"
            } else {
                "Permission denied"
            }
        ),
        hint: crlf
            .then(|| "the `#!` line ends with a carriage return (DOS line endings)".to_owned()),
    })
}

/// A `#!/usr/bin/env` script: `env` runs first (its credentials matter), then the
/// program the `#!` line names, which is followed (`env -i` clears the environment,
/// preload included: a blocker).
fn follow_env(
    interp: &Path,
    arg: Option<&OsStr>,
    follow: Follow<'_>,
    ins: &mut Inspection,
) -> Result<(), RunError> {
    let Follow { path_var, me, .. } = follow;
    credential_checks(interp, me, ins);
    ins.chain.push(format!(
        "{}: runs the program named on the `#!` line",
        interp.display()
    ));
    let named = parse_env_arg(arg);
    if named.clears_env {
        ins.blockers.push(Blocker::EnvClearsEnvironment {
            script: ins.resolved.clone(),
        });
    }
    let Some(name) = named.program else {
        return Ok(());
    };
    match resolve_program(&name, path_var, probe_path) {
        Ok(p) => follow_final(&p, follow.deeper(), ins),
        Err(_) => Err(RunError {
            code: 127,
            message: format!(
                "{}: `#!` names {:?} for env, which is not found in PATH",
                ins.resolved.display(),
                name
            ),
            hint: None,
        }),
    }
}

/// Where a `#!` chain is being followed: the new program's `PATH`, the target, the
/// credentials, and how many scripts deep.
#[derive(Clone, Copy)]
struct Follow<'a> {
    path_var: Option<&'a OsStr>,
    target: &'a Target,
    me: sys::Creds,
    level: usize,
}

impl Follow<'_> {
    fn deeper(self) -> Self {
        Follow {
            level: self.level + 1,
            ..self
        }
    }
}

/// The next file of the `#!` chain: an ELF binary is checked; a script is followed to
/// its own interpreter, as the kernel's `binfmt_script` follows it (the stub's exec
/// hooks likewise: `mifshim_execcheck::decide`), up to
/// `mifshim_execcheck::MAX_SCRIPT_LEVELS` scripts as interpreters (then the kernel's ELOOP).
fn follow_final(path: &Path, follow: Follow<'_>, ins: &mut Inspection) -> Result<(), RunError> {
    let Follow { target, me, .. } = follow;
    let h = match read_head(path) {
        Ok(h) => h,
        Err(e) => {
            ins.notes.push(format!(
                "cannot read {} to inspect it ({e}); not checked",
                path.display()
            ));
            return Ok(());
        }
    };
    if !h.starts_with(b"#!") {
        check_binary(path, target, me, ins);
        return Ok(());
    }
    credential_checks(path, me, ins);
    if follow.level >= mifshim_execcheck::MAX_SCRIPT_LEVELS {
        let n = mifshim_execcheck::MAX_SCRIPT_LEVELS + 1;
        ins.chain.push(format!(
            "{}: itself a script, one more than the kernel runs in a chain (at most {n} scripts): the exec fails with ELOOP",
            path.display()
        ));
        ins.notes.push(format!(
            "the `#!` chain is longer than {n} scripts: the kernel will refuse it (ELOOP, \"Too many levels of symbolic links\")"
        ));
        return Ok(());
    }
    let Some(sb) = parse_shebang(&h) else {
        ins.chain.push(format!(
            "{}: itself a script without an interpreter: the kernel refuses it",
            path.display()
        ));
        return Ok(());
    };
    ins.chain.push(format!(
        "{}: itself a script, `#!{}`, which the kernel runs in turn",
        path.display(),
        sb.line()
    ));
    let interp = PathBuf::from(&sb.interpreter);
    if probe_path(&interp) != Probe::Executable {
        ins.notes.push(format!(
            "{}: bad interpreter {:?}; the kernel refuses it",
            path.display(),
            interp
        ));
        return Ok(());
    }
    if interp.file_name() == Some(OsStr::new("env")) {
        follow_env(&interp, sb.arg.as_deref(), follow.deeper(), ins)
    } else {
        follow_final(&interp, follow.deeper(), ins)
    }
}

fn read_head(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut head = Vec::with_capacity(SHEBANG_BUF);
    File::open(path)?
        .take(SHEBANG_BUF as u64)
        .read_to_end(&mut head)?;
    Ok(head)
}

/// True for the dynamic loader itself (`ld-linux-x86-64.so.2`, `ld-musl-…`, `ld.so`):
/// it has no PT_INTERP but honours LD_PRELOAD for the program it loads.
fn is_dynamic_loader(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(OsStr::to_str) else {
        return false;
    };
    name == "ld.so" || (name.starts_with("ld-") && name.contains(".so"))
}

/// `path` with its symbolic links resolved (itself when that fails).
fn real_path(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_owned())
}

/// Checks the binary that will run, for the target: its format, then credentials.
fn check_binary(path: &Path, target: &Target, me: sys::Creds, ins: &mut Inspection) {
    match target {
        Target::Linux { library } => check_elf(path, *library, me, ins),
        Target::MacOs(cx) => {
            check_macho(path, cx, ins);
            credential_checks(path, me, ins);
        }
    }
}

/// Checks a Mach-O binary for what dyld and AMFI will do with it ([`dyld`]).
fn check_macho(path: &Path, cx: &dyld::MacContext, ins: &mut Inspection) {
    let parsed = File::open(path)
        .map_err(|e| e.to_string())
        .and_then(|f| macho::parse_macho(&f).map_err(|e| e.to_string()));
    match parsed {
        Err(e) => ins.notes.push(format!(
            "cannot inspect {}: {e}; not checked",
            path.display()
        )),
        Ok(m) => {
            let signature = dyld::running_slice(&m, cx.host).map(|s| match &s.signature {
                Some(sig) => format!("; {}: {}", s.arch, sig.describe()),
                None => format!("; {}: unsigned", s.arch),
            });
            ins.chain.push(format!(
                "{}: {}{}",
                path.display(),
                m.describe(),
                signature.unwrap_or_default()
            ));
            let (blockers, notes) = dyld::macho_blockers(path, &real_path(path), &m, cx);
            ins.blockers.extend(blockers);
            ins.notes.extend(notes);
        }
    }
}

/// Checks an ELF binary that will run: linkage, Go, ABI, credentials.
fn check_elf(path: &Path, library: Option<Abi>, me: sys::Creds, ins: &mut Inspection) {
    let parsed = File::open(path)
        .map_err(|e| e.to_string())
        .and_then(|f| parse_elf(&f).map_err(|e| e.to_string()));
    match parsed {
        Err(e) => ins.notes.push(format!(
            "cannot inspect {}: {e}; not checked",
            path.display()
        )),
        Ok(elf) => {
            ins.chain
                .push(format!("{}: {}", path.display(), elf.describe()));
            if let Some(evidence) = elf.go {
                ins.blockers.push(Blocker::Go {
                    path: path.to_owned(),
                    evidence,
                });
            }
            if !elf.has_interp && matches!(elf.e_type, ET_EXEC | ET_DYN) {
                if is_dynamic_loader(path) {
                    ins.notes.push(format!(
                        "{} looks like the dynamic loader; the program it loads is not inspected",
                        path.display()
                    ));
                } else {
                    ins.blockers.push(Blocker::Static {
                        path: path.to_owned(),
                    });
                }
            }
            if let Some(interp) = &elf.interp
                && elf.go.is_none()
                && !mifshim_execcheck::is_glibc_loader(interp.as_bytes())
            {
                ins.blockers.push(Blocker::ForeignLoader {
                    path: path.to_owned(),
                    interp: interp.clone(),
                });
            }
            if let Some(lib) = library
                && lib != elf.abi
            {
                ins.blockers.push(Blocker::AbiMismatch {
                    path: path.to_owned(),
                    program: elf.abi,
                    library: lib,
                });
            }
        }
    }
    credential_checks(path, me, ins);
}

fn credential_checks(path: &Path, me: sys::Creds, ins: &mut Inspection) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let caps = sys::file_caps(path);
    if let sys::FileCaps::Unknown(e) = &caps {
        ins.notes.push(format!(
            "cannot read the file capabilities of {} ({e})",
            path.display()
        ));
    }
    let file = FileCred {
        mode: meta.mode(),
        uid: meta.uid(),
        gid: meta.gid(),
        has_caps: matches!(caps, sys::FileCaps::Present(_)),
        nosuid_mount: sys::is_nosuid(path).unwrap_or(false),
    };
    if file.has_caps && me.uid == 0 && !file.nosuid_mount {
        ins.notes.push(format!(
            "{} has file capabilities; as root this does not trigger secure-execution mode, but it would for other users",
            path.display()
        ));
    }
    ins.blockers.extend(credential_blockers(path, file, me));
}

/// The ABI of the library at `path`, if it is a readable ELF file.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub fn library_abi(path: &Path) -> Option<Abi> {
    let f = File::open(path).ok()?;
    parse_elf(&f).ok().map(|e| e.abi)
}

#[cfg(test)]
mod tests {
    use super::*;

    // ---- shebang ------------------------------------------------------------------

    fn sb(i: &str, a: Option<&str>) -> Option<Shebang> {
        Some(Shebang {
            interpreter: i.into(),
            arg: a.map(Into::into),
        })
    }

    #[test]
    fn shebang_like_the_kernel() {
        assert_eq!(parse_shebang(b"#!/bin/sh\necho\n"), sb("/bin/sh", None));
        assert_eq!(
            parse_shebang(b"#! /bin/sh -e \n"),
            sb("/bin/sh", Some("-e"))
        );
        assert_eq!(
            parse_shebang(b"#!/usr/bin/env python3"),
            sb("/usr/bin/env", Some("python3"))
        );
        assert_eq!(
            parse_shebang(b"#!/usr/bin/env -S python3 -u\n"),
            sb("/usr/bin/env", Some("-S python3 -u"))
        );
        assert_eq!(
            parse_shebang(b"#!\t/bin/bash\t-x  -e\t\nrest"),
            sb("/bin/bash", Some("-x  -e"))
        );
        assert_eq!(parse_shebang(b"#!/bin/sh\r\n"), sb("/bin/sh\r", None));
        assert_eq!(parse_shebang(b"#!/bin/sh\0 ignored\n"), sb("/bin/sh", None));
        assert_eq!(parse_shebang(b"#!   \n"), None);
        assert_eq!(parse_shebang(b"#!"), None);
        assert_eq!(parse_shebang(b"\x7fELF"), None);
        assert_eq!(parse_shebang(b"echo hi\n"), None);
        // Only the first SHEBANG_BUF bytes count.
        let mut long = b"#!/bin/sh ".to_vec();
        long.extend(std::iter::repeat_n(b'a', 400));
        let got = parse_shebang(&long).unwrap();
        assert_eq!(got.arg.unwrap().len(), SHEBANG_BUF - 3 - "/bin/sh ".len());
    }

    #[test]
    fn env_arguments() {
        let t = |s: Option<&str>| parse_env_arg(s.map(OsStr::new));
        assert_eq!(
            t(Some("python3")).program.as_deref(),
            Some(OsStr::new("python3"))
        );
        assert_eq!(
            t(Some("-S python3 -u")).program.as_deref(),
            Some(OsStr::new("python3"))
        );
        assert_eq!(
            t(Some("-S -u HOME A=b node --x")).program.as_deref(),
            Some(OsStr::new("node"))
        );
        assert_eq!(
            t(Some("-S -i prog")),
            EnvTarget {
                program: Some("prog".into()),
                clears_env: true
            }
        );
        // Without -S the whole rest is one (odd) program name, as env sees it.
        assert_eq!(
            t(Some("python3 -u")).program.as_deref(),
            Some(OsStr::new("python3 -u"))
        );
        assert_eq!(t(None), EnvTarget::default());
    }

    // ---- PATH ---------------------------------------------------------------------

    #[test]
    fn path_lookup_like_execvp() {
        let fs = |p: &Path| match p.to_str().unwrap() {
            "/a/tool" => Probe::NotExecutable,
            "/b/tool" | "/c/tool" | "./local" | "rel/x" => Probe::Executable,
            "/a/noexec" => Probe::NotExecutable,
            _ => Probe::Missing,
        };
        let path = Some(OsStr::new("/a:/b:/c"));
        assert_eq!(
            resolve_program(OsStr::new("tool"), path, fs),
            Ok(PathBuf::from("/b/tool"))
        );
        assert_eq!(
            resolve_program(OsStr::new("noexec"), path, fs),
            Err(ResolveError::NotExecutable(PathBuf::from("/a/noexec")))
        );
        assert_eq!(
            resolve_program(OsStr::new("nope"), path, fs),
            Err(ResolveError::NotFound)
        );
        assert_eq!(
            resolve_program(OsStr::new(""), path, fs),
            Err(ResolveError::NotFound)
        );
        assert_eq!(
            resolve_program(OsStr::new("local"), Some(OsStr::new("/x::/b")), fs),
            Ok(PathBuf::from("./local"))
        );
        assert_eq!(
            resolve_program(OsStr::new("rel/x"), path, fs),
            Ok(PathBuf::from("rel/x"))
        );
        assert_eq!(
            resolve_program(OsStr::new("/a/tool"), path, fs),
            Err(ResolveError::NotExecutable("/a/tool".into()))
        );
        let default = |p: &Path| {
            if p == Path::new("/usr/bin/true") {
                Probe::Executable
            } else {
                Probe::Missing
            }
        };
        assert_eq!(
            resolve_program(OsStr::new("true"), None, default),
            Ok(PathBuf::from("/usr/bin/true"))
        );
    }

    // ---- credentials --------------------------------------------------------------

    const USER: sys::Creds = sys::Creds {
        uid: 1000,
        euid: 1000,
        gid: 1000,
        egid: 1000,
    };
    const ROOT: sys::Creds = sys::Creds {
        uid: 0,
        euid: 0,
        gid: 0,
        egid: 0,
    };

    fn cred(mode: u32, uid: u32, gid: u32) -> FileCred {
        FileCred {
            mode: 0o100_000 | mode,
            uid,
            gid,
            has_caps: false,
            nosuid_mount: false,
        }
    }

    #[test]
    fn setuid_and_setgid_only_when_credentials_change() {
        let p = Path::new("/x");
        assert!(credential_blockers(p, cred(0o755, 0, 0), USER).is_empty());
        assert_eq!(
            credential_blockers(p, cred(0o4755, 0, 0), USER),
            [Blocker::SetUid {
                path: p.into(),
                owner: 0
            }]
        );
        // Root running a setuid-root program: no change.
        assert!(credential_blockers(p, cred(0o4755, 0, 0), ROOT).is_empty());
        // Root running a program setuid to nobody: a change.
        assert_eq!(
            credential_blockers(p, cred(0o4755, 65534, 0), ROOT).len(),
            1
        );
        assert_eq!(
            credential_blockers(p, cred(0o2755, 1000, 42), USER),
            [Blocker::SetGid {
                path: p.into(),
                group: 42
            }]
        );
        // setgid without group-execute is mandatory locking, not setgid-exec.
        assert!(credential_blockers(p, cred(0o2745, 1000, 42), USER).is_empty());
        let mut nosuid = cred(0o6755, 0, 0);
        nosuid.nosuid_mount = true;
        assert!(credential_blockers(p, nosuid, USER).is_empty());
    }

    #[test]
    fn file_capabilities_matter_for_non_root() {
        let p = Path::new("/x");
        let mut c = cred(0o755, 0, 0);
        c.has_caps = true;
        assert_eq!(
            credential_blockers(p, c, USER),
            [Blocker::FileCaps { path: p.into() }]
        );
        assert!(credential_blockers(p, c, ROOT).is_empty());
    }

    #[test]
    fn loader_names() {
        assert!(is_dynamic_loader(Path::new("/lib64/ld-linux-x86-64.so.2")));
        assert!(is_dynamic_loader(Path::new("/lib/ld-musl-x86_64.so.1")));
        assert!(!is_dynamic_loader(Path::new("/usr/bin/ld")));
        assert!(!is_dynamic_loader(Path::new("/usr/bin/true")));
    }

    #[test]
    fn inspect_real_programs() {
        let me = sys::creds();
        let ins = inspect(
            OsStr::new("sh"),
            Some(OsStr::new("/usr/bin:/bin")),
            None,
            me,
        )
        .unwrap();
        assert!(ins.blockers.is_empty(), "{:?}", ins.blockers);
        let err = inspect(
            OsStr::new("mifrun-no-such-program"),
            Some(OsStr::new("/usr/bin")),
            None,
            me,
        )
        .unwrap_err();
        assert_eq!(err.code, 127);
        let plain = std::env::temp_dir().join(format!("mifrun-test-plain-{}", std::process::id()));
        std::fs::write(&plain, "not executable\n").unwrap();
        let err = inspect(plain.as_os_str(), None, None, me).unwrap_err();
        std::fs::remove_file(&plain).unwrap();
        assert_eq!(err.code, 126);
        // An ABI that cannot match anything real is reported.
        let odd = Abi {
            is64: true,
            little_endian: true,
            machine: 0x7777,
        };
        let ins = inspect(OsStr::new("/bin/sh"), None, Some(odd), me).unwrap();
        assert!(matches!(
            ins.blockers.as_slice(),
            [Blocker::AbiMismatch { .. }]
        ));
    }

    /// `#!OUTER` -> `#!INNER` -> a binary: the kernel runs the binary, so it is the one
    /// checked (an odd ABI stands in for what a preload cannot steer); it used to stop
    /// at INNER, "not followed further", and a static program behind it ran unsteered.
    #[test]
    fn a_script_whose_interpreter_is_a_script_is_followed_to_the_binary() {
        use std::os::unix::fs::PermissionsExt;
        let me = sys::creds();
        let dir = std::env::temp_dir().join(format!("mifrun-test-chain-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let inner = dir.join("inner");
        let outer = dir.join("outer");
        std::fs::write(&inner, "#!/bin/sh -e\n").unwrap();
        std::fs::write(&outer, format!("#!{}\n", inner.display())).unwrap();
        for p in [&inner, &outer] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let odd = Abi {
            is64: true,
            little_endian: true,
            machine: 0x7777,
        };
        let ins = inspect(outer.as_os_str(), None, Some(odd), me).unwrap();
        let plain = inspect(outer.as_os_str(), None, None, me).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            matches!(ins.blockers.as_slice(), [Blocker::AbiMismatch { .. }]),
            "{ins:?}"
        );
        assert!(plain.blockers.is_empty(), "{plain:?}");
        assert!(
            plain
                .chain
                .iter()
                .any(|c| c.contains("inner: itself a script, `#!/bin/sh -e`")),
            "{:?}",
            plain.chain
        );
    }
}
