//! Finding `libmifshim.so` and composing the child's `LD_PRELOAD` (on macOS:
//! `libmifshim.dylib` and `DYLD_INSERT_LIBRARIES`).
//!
//! The functions here are pure (inputs in, values out) except [`find_library`], which
//! only adds `canonicalize` on top of [`candidate_paths`].

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// File name of the preload library.
pub const LIBRARY_NAME: &str = if cfg!(target_os = "macos") {
    "libmifshim.dylib"
} else {
    "libmifshim.so"
};
/// The engine the stub loads, from the stub's own directory.
pub const ENGINE_NAME: &str = if cfg!(target_os = "macos") {
    "libmifshim_engine.dylib"
} else {
    "libmifshim_engine.so"
};
/// The variable the loader takes the library from.
pub const PRELOAD_VAR: &str = if cfg!(target_os = "macos") {
    "DYLD_INSERT_LIBRARIES"
} else {
    "LD_PRELOAD"
};

/// Where the stub at `library` will look for its engine.
pub fn engine_path(library: &Path) -> PathBuf {
    library.with_file_name(ENGINE_NAME)
}

/// Characters that separate entries of `LD_PRELOAD` (ld.so(8): "space-separated or
/// colon-separated").
const LD_SEPARATORS: &[u8] = b" :";
/// What separates entries of `DYLD_INSERT_LIBRARIES`: dyld(1), "a colon separated
/// list of dynamic libraries"; dyld4 splits it on `:` alone
/// (`ProcessConfig::PathOverrides`), so a space is part of a path there.
const DYLD_SEPARATORS: &[u8] = b":";
/// The separators of this platform's [`PRELOAD_VAR`], and how to name them.
const SEPARATORS: &[u8] = if cfg!(target_os = "macos") {
    DYLD_SEPARATORS
} else {
    LD_SEPARATORS
};
const SEPARATOR_WORDS: &str = if cfg!(target_os = "macos") {
    "a colon"
} else {
    "a space or a colon"
};

/// Where the library may live, in order, for a mifrun executable at `exe` (absolute and
/// canonical): next to it, then `../lib/mifshim/` relative to its directory. Never the
/// current directory.
pub fn candidate_paths(exe: &Path) -> Vec<PathBuf> {
    let Some(dir) = exe.parent() else {
        return Vec::new();
    };
    vec![
        dir.join(LIBRARY_NAME),
        dir.join("..")
            .join("lib")
            .join("mifshim")
            .join(LIBRARY_NAME),
    ]
}

/// Why the library cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub enum LookupError {
    /// None of the candidates is a regular file.
    NotFound(Vec<PathBuf>),
    /// The canonical path contains a character that `LD_PRELOAD` treats as a separator.
    Unrepresentable(PathBuf),
}

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFound(tried) => {
                write!(f, "cannot find {LIBRARY_NAME}; looked for ")?;
                for (i, p) in tried.iter().enumerate() {
                    let sep = if i == 0 { "" } else { " and " };
                    write!(f, "{sep}{}", p.display())?;
                }
                Ok(())
            }
            Self::Unrepresentable(p) => write!(
                f,
                "the path of {LIBRARY_NAME} ({}) contains {SEPARATOR_WORDS}, which {PRELOAD_VAR} cannot express",
                p.display()
            ),
        }
    }
}

/// Finds the library for the mifrun executable at `exe` (absolute and canonical). The
/// result is absolute and canonical.
pub fn find_library(exe: &Path) -> Result<PathBuf, LookupError> {
    let candidates = candidate_paths(exe);
    for c in &candidates {
        let Ok(canonical) = c.canonicalize() else {
            continue;
        };
        if !canonical.is_file() {
            continue;
        }
        return checked_entry(canonical);
    }
    Err(LookupError::NotFound(candidates))
}

/// Rejects paths that cannot be written as one `LD_PRELOAD` entry.
pub fn checked_entry(path: PathBuf) -> Result<PathBuf, LookupError> {
    let bytes = path.as_os_str().as_bytes();
    if !path.is_absolute() || bytes.iter().any(|b| SEPARATORS.contains(b)) {
        return Err(LookupError::Unrepresentable(path));
    }
    Ok(path)
}

/// Splits a list of libraries into its non-empty entries.
fn split_list<'a>(value: &'a OsStr, separators: &[u8]) -> Vec<&'a OsStr> {
    value
        .as_bytes()
        .split(|b| separators.contains(b))
        .filter(|e| !e.is_empty())
        .map(OsStr::from_bytes)
        .collect()
}

/// `ours` first, then the inherited entries in their order, without those for which
/// `is_ours` is true (our own library under any name) and without repeats of `ours`;
/// joined with `:`.
fn compose_list(
    inherited: Option<&OsStr>,
    ours: &Path,
    is_ours: impl Fn(&OsStr) -> bool,
    separators: &[u8],
) -> OsString {
    let mut out: Vec<u8> = ours.as_os_str().as_bytes().to_vec();
    for entry in inherited
        .map(|v| split_list(v, separators))
        .unwrap_or_default()
    {
        if entry == ours.as_os_str() || is_ours(entry) {
            continue;
        }
        out.push(b':');
        out.extend_from_slice(entry.as_bytes());
    }
    OsString::from_vec(out)
}

/// Returns the new `LD_PRELOAD`: `ours` first, then the inherited entries in their
/// order, without those for which `is_ours` is true (our own library under any name)
/// and without repeats of `ours`. Entries are joined with `:`.
pub fn compose_ld_preload(
    inherited: Option<&OsStr>,
    ours: &Path,
    is_ours: impl Fn(&OsStr) -> bool,
) -> OsString {
    compose_list(inherited, ours, is_ours, LD_SEPARATORS)
}

/// Returns the new `DYLD_INSERT_LIBRARIES`, composed like [`compose_ld_preload`] but
/// split on `:` only. dyld inserts the libraries in this order, before the program's
/// own, and interposing (`__DATA,__interpose`) applies to every image but the one
/// that interposes; so with another interposing library inherited, ours comes first
/// and sees the program's calls first.
pub fn compose_dyld_insert_libraries(
    inherited: Option<&OsStr>,
    ours: &Path,
    is_ours: impl Fn(&OsStr) -> bool,
) -> OsString {
    compose_list(inherited, ours, is_ours, DYLD_SEPARATORS)
}

/// The environment change for a program that must not get our library (one linked
/// for another loader than glibc's, see `inspect::Blocker::ForeignLoader`): the
/// inherited entries without ours, or `LD_PRELOAD` unset when nothing is left.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub fn without_ours(
    inherited: Option<&OsStr>,
    ours: &Path,
    is_ours: impl Fn(&OsStr) -> bool,
) -> EnvChange {
    let kept: Vec<&OsStr> = inherited
        .map(|v| split_list(v, LD_SEPARATORS))
        .unwrap_or_default()
        .into_iter()
        .filter(|e| *e != ours.as_os_str() && !is_ours(e))
        .collect();
    if kept.is_empty() {
        EnvChange::Unset(PRELOAD_VAR)
    } else {
        EnvChange::Set(PRELOAD_VAR, kept.join(OsStr::new(":")))
    }
}

/// [`PRELOAD_VAR`]'s new value on this platform.
pub fn compose_preload(
    inherited: Option<&OsStr>,
    ours: &Path,
    is_ours: impl Fn(&OsStr) -> bool,
) -> OsString {
    if cfg!(target_os = "macos") {
        compose_dyld_insert_libraries(inherited, ours, is_ours)
    } else {
        compose_ld_preload(inherited, ours, is_ours)
    }
}

/// What happens to `DYLD_*` variables on their way to the program's children, for
/// `--check` and the README: dyld removes every `DYLD_*` variable from the
/// environment of a restricted process (`ProcessConfig::Security::pruneEnvVars`,
/// dyld/DyldProcessConfig.cpp), so a child started through a SIP-protected program
/// (`/bin/sh` for `system(3)` and `popen(3)`, `/usr/bin/env`, any `/usr/bin` tool)
/// and everything after it runs without the shim; an unrestricted process keeps them
/// for its children.
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
pub const DYLD_SURVIVAL: &str = "DYLD_INSERT_LIBRARIES reaches the program and the children it starts directly; a child started through a SIP-protected program (/bin/sh for system(3) and popen(3), /usr/bin/env, any /usr/bin tool) or a hardened one loses every DYLD_* variable, and so does everything it starts";

/// One change to the child's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvChange {
    Set(&'static str, OsString),
    Unset(&'static str),
}

/// What mifrun does to the environment before `exec`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EnvPlan {
    pub changes: Vec<EnvChange>,
    /// One line each, printed as `mifrun: warning: …`.
    pub warnings: Vec<String>,
}

/// Inputs of [`env_plan`]: the values mifrun decided on.
#[derive(Debug, Default)]
pub struct Settings {
    pub ld_preload: OsString,
    pub via: Option<String>,
    pub policy: Option<PathBuf>,
    pub log: Option<String>,
    pub log_file: Option<PathBuf>,
    /// `--dns`, already validated.
    pub dns: Option<String>,
}

/// Computes the environment changes. `inherited` looks a variable up in mifrun's own
/// environment. Steering variables that mifrun does not set itself (`MIFSHIM_VIA`,
/// `MIFSHIM_POLICY`) are removed so that an inherited value cannot change the policy
/// that was validated; an inherited `MIFSHIM_DISABLE` is removed with a warning.
pub fn env_plan(settings: &Settings, inherited: impl Fn(&str) -> Option<OsString>) -> EnvPlan {
    use config_schema::env;
    let mut plan = EnvPlan::default();
    plan.changes
        .push(EnvChange::Set(PRELOAD_VAR, settings.ld_preload.clone()));
    let steer = |name: &'static str, value: Option<OsString>, plan: &mut EnvPlan| match value {
        Some(v) => plan.changes.push(EnvChange::Set(name, v)),
        None => {
            if let Some(old) = inherited(name) {
                plan.warnings.push(format!(
                    "ignoring inherited {name}={} (not given on the command line)",
                    old.to_string_lossy()
                ));
                plan.changes.push(EnvChange::Unset(name));
            }
        }
    };
    steer(
        env::VIA,
        settings.via.clone().map(OsString::from),
        &mut plan,
    );
    steer(
        env::POLICY,
        settings.policy.clone().map(PathBuf::into_os_string),
        &mut plan,
    );
    steer(
        env::DNS,
        settings.dns.clone().map(OsString::from),
        &mut plan,
    );
    if let Some(log) = &settings.log {
        plan.changes.push(EnvChange::Set(env::LOG, log.into()));
    }
    if let Some(file) = &settings.log_file {
        plan.changes
            .push(EnvChange::Set(env::LOG_FILE, file.clone().into_os_string()));
    }
    if let Some(old) = inherited(env::DISABLE) {
        plan.warnings.push(format!(
            "removing inherited {}={} so that the shim is active",
            env::DISABLE,
            old.to_string_lossy()
        ));
        plan.changes.push(EnvChange::Unset(env::DISABLE));
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> OsString {
        s.into()
    }

    const OURS: &str = "/opt/mif/bin/libmifshim.so";

    #[test]
    fn a_foreign_loaders_program_keeps_the_other_preloads_only() {
        let ours = Path::new(OURS);
        let is_ours = |e: &OsStr| e == "/old/libmifshim.so";
        assert_eq!(
            without_ours(
                Some(&os(
                    "/a.so /opt/mif/bin/libmifshim.so:/old/libmifshim.so:/b.so"
                )),
                ours,
                is_ours
            ),
            EnvChange::Set(PRELOAD_VAR, os("/a.so:/b.so"))
        );
        assert_eq!(
            without_ours(Some(&os(OURS)), ours, is_ours),
            EnvChange::Unset(PRELOAD_VAR)
        );
        assert_eq!(
            without_ours(None, ours, is_ours),
            EnvChange::Unset(PRELOAD_VAR)
        );
    }

    // The file names and separators of the Linux build.
    #[cfg(not(target_os = "macos"))]
    #[test]
    fn candidates_are_next_to_exe_then_lib_dir() {
        let c = candidate_paths(Path::new("/opt/mif/bin/mifrun"));
        assert_eq!(
            c,
            [
                PathBuf::from("/opt/mif/bin/libmifshim.so"),
                PathBuf::from("/opt/mif/bin/../lib/mifshim/libmifshim.so"),
            ]
        );
        assert!(candidate_paths(Path::new("/")).is_empty());
    }

    // The file names and separators of the Linux build.
    #[cfg(not(target_os = "macos"))]
    #[test]
    fn entry_must_be_absolute_without_separators() {
        assert!(checked_entry(PathBuf::from(OURS)).is_ok());
        for bad in [
            "rel/libmifshim.so",
            "/a b/libmifshim.so",
            "/a:b/libmifshim.so",
        ] {
            assert_eq!(
                checked_entry(PathBuf::from(bad)),
                Err(LookupError::Unrepresentable(PathBuf::from(bad)))
            );
        }
    }

    #[test]
    fn dyld_insert_libraries_splits_on_colons_only() {
        const DYLIB: &str = "/Applications/My Tools/lib/libmifshim.dylib";
        assert_eq!(
            split_list(OsStr::new("/a b/x.dylib::/c.dylib:"), DYLD_SEPARATORS),
            [OsStr::new("/a b/x.dylib"), OsStr::new("/c.dylib")]
        );
        let got = compose_dyld_insert_libraries(
            Some(OsStr::new(&format!(
                "/usr/local/lib/other inserter.dylib:{DYLIB}:/opt/x.dylib:/alias.dylib"
            ))),
            Path::new(DYLIB),
            |e| e == "/alias.dylib",
        );
        assert_eq!(
            got,
            os(&format!(
                "{DYLIB}:/usr/local/lib/other inserter.dylib:/opt/x.dylib"
            ))
        );
        assert_eq!(
            compose_dyld_insert_libraries(Some(&got), Path::new(DYLIB), |_| false),
            got,
            "idempotent"
        );
        assert_eq!(
            compose_dyld_insert_libraries(None, Path::new(DYLIB), |_| false),
            os(DYLIB)
        );
    }

    #[test]
    fn dyld_survival_names_what_loses_the_variables() {
        for w in [
            "/bin/sh",
            "system(3)",
            "popen(3)",
            "/usr/bin/env",
            "every DYLD_* variable",
        ] {
            assert!(DYLD_SURVIVAL.contains(w), "{w}");
        }
    }

    #[test]
    fn compose_without_inherited() {
        assert_eq!(
            compose_ld_preload(None, Path::new(OURS), |_| false),
            os(OURS)
        );
        assert_eq!(
            compose_ld_preload(Some(OsStr::new("")), Path::new(OURS), |_| false),
            os(OURS)
        );
        assert_eq!(
            compose_ld_preload(Some(OsStr::new(" : ")), Path::new(OURS), |_| false),
            os(OURS)
        );
    }

    #[test]
    fn compose_keeps_others_in_order_with_both_separators() {
        let got = compose_ld_preload(
            Some(OsStr::new("/lib/a.so /lib/b.so:/lib/c.so")),
            Path::new(OURS),
            |_| false,
        );
        assert_eq!(got, os(&format!("{OURS}:/lib/a.so:/lib/b.so:/lib/c.so")));
    }

    #[test]
    fn compose_deduplicates_our_entry() {
        let inherited = format!("/lib/a.so:{OURS} {OURS}::/lib/b.so");
        let got = compose_ld_preload(Some(OsStr::new(&inherited)), Path::new(OURS), |_| false);
        assert_eq!(got, os(&format!("{OURS}:/lib/a.so:/lib/b.so")));
        // Idempotent: composing again changes nothing.
        let again = compose_ld_preload(Some(&got), Path::new(OURS), |_| false);
        assert_eq!(again, got);
    }

    #[test]
    fn compose_drops_aliases_of_our_entry() {
        let got = compose_ld_preload(
            Some(OsStr::new("/link/to/libmifshim.so /lib/a.so")),
            Path::new(OURS),
            |e| e == "/link/to/libmifshim.so",
        );
        assert_eq!(got, os(&format!("{OURS}:/lib/a.so")));
    }

    #[test]
    fn split_handles_tokens_verbatim() {
        assert_eq!(
            split_list(OsStr::new("/usr/$LIB/x.so  y.so"), LD_SEPARATORS),
            [OsStr::new("/usr/$LIB/x.so"), OsStr::new("y.so")]
        );
    }

    #[test]
    fn env_plan_sets_given_and_clears_stray_steering() {
        let settings = Settings {
            ld_preload: os(OURS),
            via: Some("wlan0,wwan0".into()),
            policy: None,
            log: Some("debug".into()),
            log_file: Some(PathBuf::from("/tmp/m.log")),
            dns: Some("198.51.100.65,[2001:db8::53]:5353".into()),
        };
        let inherited = |name: &str| match name {
            "MIFSHIM_POLICY" => Some(os("/old.toml")),
            "MIFSHIM_DISABLE" => Some(os("1")),
            "MIFSHIM_VIA" => Some(os("eth9")),
            _ => None,
        };
        let plan = env_plan(&settings, inherited);
        assert_eq!(
            plan.changes,
            [
                EnvChange::Set("LD_PRELOAD", os(OURS)),
                EnvChange::Set("MIFSHIM_VIA", os("wlan0,wwan0")),
                EnvChange::Unset("MIFSHIM_POLICY"),
                EnvChange::Set("MIFSHIM_DNS", os("198.51.100.65,[2001:db8::53]:5353")),
                EnvChange::Set("MIFSHIM_LOG", os("debug")),
                EnvChange::Set("MIFSHIM_LOG_FILE", os("/tmp/m.log")),
                EnvChange::Unset("MIFSHIM_DISABLE"),
            ]
        );
        assert_eq!(plan.warnings.len(), 2);
        assert!(plan.warnings[0].contains("MIFSHIM_POLICY=/old.toml"));
        assert!(plan.warnings[1].contains("MIFSHIM_DISABLE=1"));
    }

    #[test]
    fn env_plan_with_policy_only_and_clean_env() {
        let settings = Settings {
            ld_preload: os(OURS),
            policy: Some(PathBuf::from("/etc/p.toml")),
            ..Settings::default()
        };
        let plan = env_plan(&settings, |_| None);
        assert_eq!(
            plan.changes,
            [
                EnvChange::Set("LD_PRELOAD", os(OURS)),
                EnvChange::Set("MIFSHIM_POLICY", os("/etc/p.toml")),
            ]
        );
        assert!(plan.warnings.is_empty());
    }
}
