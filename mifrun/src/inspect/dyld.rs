//! What macOS will do with `DYLD_INSERT_LIBRARIES` for a program: the verdicts, from
//! the facts [`super::macho`] reads. Pure (facts in, blockers out), so Linux tests
//! every verdict on Mach-O files the tests build.
//!
//! The rules, with their sources:
//!
//! * **dyld prunes every `DYLD_*` variable in a restricted process, and from its
//!   environment, so that its children do not see them either**
//!   (`ProcessConfig::Security::Security` and `pruneEnvVars`, dyld
//!   `dyld/DyldProcessConfig.cpp`, apple-oss-distributions/dyld). Whether a process is
//!   restricted is AMFI's answer (`amfi_check_dyld_policy_self`, closed source), asked
//!   with `AMFI_DYLD_INPUT_PROC_HAS_RESTRICT_SEG` when the main executable has a
//!   section `__restrict` in a segment `__RESTRICT` (`MachOFile::isRestricted`,
//!   `common/MachOFile.cpp`; `SyscallDelegate::amfiFlags`, `dyld/DyldDelegates.cpp`).
//!   AMFI restricts: set-user/group-ID executions (`issetugid`), a `__RESTRICT`
//!   segment, the code-signing flag `CS_RESTRICT` ("tell dyld to treat restricted",
//!   XNU `osfmk/kern/cs_blobs.h`), the hardened runtime (`CS_RUNTIME`) unless the
//!   signature's entitlements grant
//!   `com.apple.security.cs.allow-dyld-environment-variables` (Apple, "Hardened
//!   Runtime" and "Allow DYLD Environment Variables Entitlement"), and — with System
//!   Integrity Protection on — every executable protected on disk (Apple, "System
//!   Integrity Protection Guide", Runtime Protections: "Any dynamic linker (dyld)
//!   environment variables, such as DYLD_LIBRARY_PATH, are purged when launching
//!   protected processes").
//! * **Library validation** (`CS_REQUIRE_LV`, and implied by the hardened runtime)
//!   lets a process map only libraries signed by Apple or with its own Team ID,
//!   unless `com.apple.security.cs.disable-library-validation` is granted. dyld then
//!   refuses the inserted library, and since a restricted-free process is not allowed
//!   insertion failures (`AMFI_DYLD_OUTPUT_ALLOW_FAILED_LIBRARY_INSERTION`), the
//!   program does not start at all.
//! * **Architecture**: dyld loads only a slice of the inserted library that matches
//!   the process (`MachOFile::compatibleSlice` with the process's `GradedArchs`): an
//!   arm64e process (Apple's own binaries on Apple Silicon) needs an arm64e slice, an
//!   arm64 one an arm64 slice, an x86_64 one (native or under Rosetta) an x86_64 one.
//! * A Mach-O executable without `LC_LOAD_DYLINKER` is started by the kernel without
//!   dyld (a static executable): nothing is inserted.
//!
//! SIP-protected locations are those of `/System/Library/Sandbox/rootless.conf`:
//! `/System`, `/bin`, `/sbin`, `/usr` except `/usr/local`, `/Library/Apple`. Apple's
//! own applications in `/Applications` are protected too but not recognised by path
//! here (the list changes with each release); their signatures carry the hardened
//! runtime, which is refused on its own.

// Compiled everywhere so that Linux tests it; only the macOS build calls it all.
#![cfg_attr(not(target_os = "macos"), allow(dead_code))]

use std::path::{Component, Path, PathBuf};

use super::Blocker;
use super::macho::{Arch, CPU_TYPE_ARM64, CPU_TYPE_X86_64, MH_EXECUTE, MachO, Slice, cs};

/// Directories System Integrity Protection protects (`rootless.conf`), and the
/// exceptions inside them.
pub const SIP_PROTECTED: &[&str] = &["/System", "/bin", "/sbin", "/usr", "/Library/Apple"];
pub const SIP_EXCEPTIONS: &[&str] = &["/usr/local"];

/// Whether `path` (absolute, symbolic links resolved) lies in a SIP-protected
/// location. Purely lexical; `..` components are refused as unknown (protected).
pub fn sip_protected(path: &Path) -> bool {
    if path
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return true;
    }
    // The data volume's firmlinked view of /usr/local etc. is the same file.
    let path = path
        .strip_prefix("/System/Volumes/Data")
        .map(|p| Path::new("/").join(p))
        .unwrap_or_else(|_| path.to_owned());
    let under = |dirs: &[&str]| dirs.iter().any(|d| path.starts_with(d));
    under(SIP_PROTECTED) && !under(SIP_EXCEPTIONS)
}

/// The machine mifrun runs on, for which slice of a universal file runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// Apple Silicon (x86_64 slices run under Rosetta 2).
    Arm64,
    X86_64,
}

impl Host {
    pub fn current() -> Host {
        if cfg!(target_arch = "aarch64") {
            Host::Arm64
        } else {
            Host::X86_64
        }
    }
}

/// What the checks need to know besides the program.
#[derive(Debug, Clone)]
pub struct MacContext {
    pub host: Host,
    /// System Integrity Protection's file-system protection is on (unknown counts
    /// as on).
    pub sip: bool,
    /// `libmifshim.dylib`, parsed (`None` when unreadable: not checked).
    pub library: Option<MachO>,
}

/// The slice the kernel runs on `host` (XNU's `grade_binary`): on Apple Silicon
/// arm64e for Apple's platform binaries, then arm64, then x86_64 under Rosetta; on
/// Intel x86_64h, then x86_64.
pub fn running_slice(m: &MachO, host: Host) -> Option<&Slice> {
    let find = |pred: &dyn Fn(&Slice) -> bool| m.slices.iter().find(|s| pred(s));
    let platform = |s: &Slice| s.signature.as_ref().is_some_and(|g| g.platform != 0);
    match host {
        Host::Arm64 => find(&|s| s.arch.is_arm64e() && platform(s))
            .or_else(|| find(&|s| s.arch.cputype == CPU_TYPE_ARM64 && !s.arch.is_arm64e()))
            .or_else(|| find(&|s| s.arch.is_arm64e()))
            .or_else(|| find(&|s| s.arch.cputype == CPU_TYPE_X86_64)),
        Host::X86_64 => find(&|s| s.arch.cputype == CPU_TYPE_X86_64 && s.arch.name() == "x86_64h")
            .or_else(|| find(&|s| s.arch.cputype == CPU_TYPE_X86_64)),
    }
}

/// Whether a library slice of `lib` can be mapped into a process of `process`.
pub fn library_fits(process: Arch, lib: Arch) -> bool {
    match process.cputype {
        CPU_TYPE_ARM64 => lib.cputype == CPU_TYPE_ARM64 && lib.is_arm64e() == process.is_arm64e(),
        t => lib.cputype == t,
    }
}

/// Why dyld would prune `DYLD_*` for a process of this slice, if it would
/// (setuid/setgid and SIP are checked by the caller, from the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restriction {
    /// A section `__RESTRICT,__restrict`.
    RestrictSegment,
    /// The code-signing flag `CS_RESTRICT`.
    CsRestrict,
}

/// The blockers of one Mach-O program file at `path` (`real`: with its symbolic links
/// resolved, for the SIP check): everything but credentials, which the caller checks
/// from the file's mode as on Linux. Also returns notes (what could not be checked).
pub fn macho_blockers(
    path: &Path,
    real: &Path,
    m: &MachO,
    cx: &MacContext,
) -> (Vec<Blocker>, Vec<String>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    let p = || path.to_owned();
    let Some(slice) = running_slice(m, cx.host) else {
        out.push(Blocker::MachArch {
            path: p(),
            program: m.archs(),
            library: Vec::new(),
        });
        return (out, notes);
    };
    if slice.filetype == MH_EXECUTE && slice.dylinker.is_none() {
        out.push(Blocker::MachStatic { path: p() });
        return (out, notes);
    }
    if cx.sip && sip_protected(real) {
        out.push(Blocker::SipProtected {
            path: p(),
            script: None,
        });
    }
    if slice.restrict_segment {
        out.push(Blocker::Restricted {
            path: p(),
            why: Restriction::RestrictSegment,
        });
    }
    if let Some(e) = &slice.signature_error {
        notes.push(format!(
            "cannot read the code signature of {}: {e}; hardened runtime and library validation not checked",
            path.display()
        ));
    }
    if let Some(sig) = &slice.signature {
        if sig.flags & cs::CS_RESTRICT != 0 {
            out.push(Blocker::Restricted {
                path: p(),
                why: Restriction::CsRestrict,
            });
        }
        let runtime = sig.hardened_runtime();
        if runtime && !sig.entitlements.allow_dyld_env {
            out.push(Blocker::HardenedRuntime { path: p() });
        }
        let lv = (runtime || sig.flags & cs::CS_REQUIRE_LV != 0)
            && !sig.entitlements.disable_library_validation;
        let library_team = cx
            .library
            .as_ref()
            .and_then(|l| l.slices.iter().find(|s| library_fits(slice.arch, s.arch)))
            .and_then(|s| s.signature.as_ref())
            .and_then(|s| s.team_id.clone());
        let same_team = sig.team_id.is_some() && sig.team_id == library_team;
        if lv && !same_team {
            out.push(Blocker::LibraryValidation {
                path: p(),
                hardened: runtime,
                team: sig.team_id.clone(),
            });
        }
    }
    if let Some(lib) = &cx.library
        && !lib.slices.iter().any(|s| library_fits(slice.arch, s.arch))
    {
        out.push(Blocker::MachArch {
            path: p(),
            program: vec![slice.arch],
            library: lib.archs(),
        });
    }
    (out, notes)
}

/// What is wrong with `libmifshim.dylib` itself, as warnings: a slice without an
/// `__interpose` section interposes nothing (dyld applies only that table), and on
/// Apple Silicon a slice without a code signature is refused by the kernel when
/// mapped (every arm64 page must be signed; the linker signs ad hoc by default).
pub fn library_notes(path: &Path, lib: &MachO) -> Vec<String> {
    let mut out = Vec::new();
    for s in &lib.slices {
        if !s.interposes {
            out.push(format!(
                "{} ({}) has no __DATA,__interpose section: it would interpose nothing",
                path.display(),
                s.arch
            ));
        }
        if s.arch.cputype == CPU_TYPE_ARM64 && s.signature.is_none() {
            out.push(format!(
                "{} ({}) is not code-signed; Apple Silicon refuses unsigned code (`codesign --sign - {}`)",
                path.display(),
                s.arch,
                path.display()
            ));
        }
    }
    out
}

/// The blocker for a script whose interpreter (or `env`) is SIP-protected.
pub fn sip_interpreter(script: &Path, interpreter: &Path, cx: &MacContext) -> Option<Blocker> {
    (cx.sip && sip_protected(interpreter)).then(|| Blocker::SipProtected {
        path: interpreter.to_owned(),
        script: Some(script.to_owned()),
    })
}

/// What would work instead, for the hint under a refusal.
pub fn remedy(b: &Blocker) -> Option<String> {
    let copy = |path: &PathBuf| {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "program".into());
        format!(
            "cp {} ~/bin/{name} && codesign --force --sign - ~/bin/{name}",
            path.display()
        )
    };
    Some(match b {
        Blocker::SipProtected { script: Some(_), path } => format!(
            "run the script with an interpreter outside the SIP-protected directories (e.g. Homebrew's: `mifrun … -- /opt/homebrew/bin/{} SCRIPT`), whose children keep DYLD_INSERT_LIBRARIES too",
            path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
        ),
        Blocker::SipProtected { path, script: None } => format!(
            "use a build outside the SIP-protected directories (Homebrew, MacPorts, /usr/local), or a copy re-signed ad hoc: `{}` (on Apple Silicon an Apple binary's copy is arm64e and needs an arm64e libmifshim.dylib)",
            copy(path)
        ),
        Blocker::HardenedRuntime { path } | Blocker::LibraryValidation { path, .. } => format!(
            "a copy re-signed ad hoc without the hardened runtime runs with the shim: `{}` (the copy loses the signature's entitlements and its Team ID)",
            copy(path)
        ),
        Blocker::Restricted {
            path,
            why: Restriction::CsRestrict,
        } => format!(
            "a copy re-signed ad hoc without CS_RESTRICT: `{}`",
            copy(path)
        ),
        Blocker::Restricted {
            why: Restriction::RestrictSegment,
            ..
        } => "the __RESTRICT segment is part of the binary; only a rebuild without it can be steered".into(),
        Blocker::MachArch { .. } => {
            "build libmifshim.dylib for that architecture (a universal library: `lipo -create`)".into()
        }
        Blocker::SetUid { .. } | Blocker::SetGid { .. } => {
            "a copy without the set-ID bit (`cp` drops it) runs with the shim, without the privileges".into()
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
