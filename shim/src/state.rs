//! Process-wide state, built once by the engine's `init` (`crate::entry`) and immutable afterwards: the
//! hooks only read it (one atomic load), so they need no lock and are safe after
//! fork and in signal handlers.

use crate::sys::sync::Published;
use crate::{log, log_at, netstate, sys};
use config_schema::{
    LogLevel, Policy, Profile, default_policy_paths, env, load_policy_file, parse_via_list,
};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

/// What the shim does in this process.
pub(crate) enum Mode {
    /// No policy: every call goes straight through.
    Inert,
    /// Enforcing this profile.
    Active(&'static Profile),
}

const UNINIT: u8 = 0;
const BUSY: u8 = 1;
const INERT: u8 = 2;
const ACTIVE: u8 = 3;

static STATE: AtomicU8 = AtomicU8::new(UNINIT);
static PROFILE: Published<Profile> = Published::new();
/// Servers from `MIFSHIM_DNS`, set once at initialisation.
static DNS_OVERRIDE: std::sync::OnceLock<Vec<std::net::SocketAddr>> = std::sync::OnceLock::new();

/// The servers `MIFSHIM_DNS` names (`mifrun --dns`), which take precedence over every
/// other source of servers; empty when unset.
pub(crate) fn dns_override() -> &'static [std::net::SocketAddr] {
    DNS_OVERRIDE.get().map_or(&[][..], Vec::as_slice)
}

/// The current mode; initialises on the spot if a hook runs before the engine's `init`.
pub(crate) fn mode() -> Mode {
    match STATE.load(Ordering::Acquire) {
        INERT => Mode::Inert,
        ACTIVE => active(),
        _ => {
            init(None);
            match STATE.load(Ordering::Acquire) {
                ACTIVE => active(),
                // Still BUSY: another thread is initialising and this call came before
                // initialisation finished. Do not guess: go through.
                _ => Mode::Inert,
            }
        }
    }
}

fn active() -> Mode {
    // PROFILE is published before STATE becomes ACTIVE (Release), and never changed
    // afterwards. (Were it missing, the panic fails the call closed.)
    Mode::Active(
        PROFILE
            .get()
            .expect("the profile is published before ACTIVE"),
    )
}

/// Reads the environment and the policy. Idempotent; the first caller wins.
pub(crate) fn init(argv0: Option<String>) {
    if STATE
        .compare_exchange(UNINIT, BUSY, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return;
    }
    let profile = std::panic::catch_unwind(move || load(argv0)).unwrap_or_else(|_| {
        log::line(
            LogLevel::Error,
            format_args!("internal error while loading the policy; failing closed"),
        );
        Some(Profile::fail_closed("invalid policy"))
    });
    match profile {
        None => STATE.store(INERT, Ordering::Release),
        Some(p) => {
            PROFILE.publish(p);
            STATE.store(ACTIVE, Ordering::Release);
        }
    }
}

/// In a child after `fork`: called by the stub's `pthread_atfork` child handler (the
/// engine registers none itself: it may be loaded from within the stub's prepare
/// handler, where glibc before 2.36 holds the lock `pthread_atfork` takes).
pub(crate) fn after_fork_in_child() {
    netstate::after_fork_in_child();
}

/// Where the configuration is read from: the process environment and the file system,
/// or stand-ins in tests.
struct Sources<'a> {
    /// A variable's value as bytes (`OsString`): a value that is not UTF-8 is seen, and
    /// refused or used by its bytes, never taken for unset.
    var: &'a dyn Fn(&str) -> Option<OsString>,
    /// Does a file exist at this path (whatever its type)? The stub's test for the
    /// default policy paths (`access(F_OK)`), so both agree on whether to steer.
    exists: &'a dyn Fn(&Path) -> bool,
}

impl Sources<'_> {
    /// The non-empty value of `name` (empty counts as unset, as in the stub).
    fn get(&self, name: &str) -> Option<OsString> {
        (self.var)(name).filter(|v| !v.is_empty())
    }
}

/// `None`: inert. `Some(profile)`: enforce it (possibly the fail-closed profile).
fn load(argv0: Option<String>) -> Option<Profile> {
    let sources = Sources {
        var: &|name| std::env::var_os(name),
        exists: &|p| p.exists(),
    };
    load_from(argv0, &sources)
}

/// One error line and the fail-closed profile.
fn fail_closed(args: std::fmt::Arguments<'_>) -> Option<Profile> {
    log::line(
        LogLevel::Error,
        format_args!("{args}; blocking all non-local network traffic"),
    );
    Some(Profile::fail_closed("invalid policy"))
}

/// Which process is steered is decided by the stub (`decide_mode` in
/// `preload/src/lib.rs`) from the same variables and files, read the same way (bytes;
/// empty is unset; the default paths by existence): the engine is only ever loaded into
/// a process the stub steers. So every value here either configures the shim or fails
/// closed with one line; none turns it off except `MIFSHIM_DISABLE=1`, which the stub
/// honours too.
fn load_from(argv0: Option<String>, src: &Sources<'_>) -> Option<Profile> {
    let argv0 = argv0.unwrap_or_default();
    let prog_name = argv0.rsplit('/').next().unwrap_or("").to_owned();
    let level = src
        .get(env::LOG)
        .map(|v| v.to_str().map(str::parse::<LogLevel>));
    log::configure(
        match level {
            Some(Some(Ok(l))) => l,
            _ => LogLevel::Warn,
        },
        src.get(env::LOG_FILE).as_deref(),
        &prog_name,
    );
    crate::events::configure(src.get(env::EVENTS).as_deref(), &prog_name);
    match level {
        Some(None) => log_at!(Warn, "{} is not valid UTF-8; using warn", env::LOG),
        Some(Some(Err(_))) => log_at!(
            Warn,
            "{} is not one of off, error, warn, info, debug; using warn",
            env::LOG
        ),
        _ => {}
    }
    let via = src.get(env::VIA);
    let steering = mifshim_abi::steering(
        src.get(env::DISABLE).as_deref().map(OsStrExt::as_bytes),
        via.is_some(),
        src.get(env::POLICY).is_some(),
    );
    if steering == mifshim_abi::Steering::Off {
        log_at!(Debug, "disabled by {}=1", env::DISABLE);
        return None;
    }
    let path = src.get(env::POLICY).map(PathBuf::from).or_else(|| {
        if via.is_some() {
            return None;
        }
        let xdg = (src.var)("XDG_CONFIG_HOME");
        let home = (src.var)("HOME");
        default_policy_paths(xdg.as_deref(), home.as_deref())
            .into_iter()
            .find(|p| (src.exists)(p))
    });
    if via.is_none() && path.is_none() {
        // The stub found one of them when the process started: the program changed
        // its environment (or the policy file went away) since. Do not run unsteered.
        return fail_closed(format_args!(
            "{}, {} and the policy files were there when the program started but are gone now",
            env::VIA,
            env::POLICY
        ));
    }
    let mut policy = match &path {
        Some(p) => match load_policy_file(p) {
            Ok(loaded) => loaded.policy,
            Err(diags) => {
                let first = diags.iter().find(|d| !d.warning).unwrap_or(&diags[0]);
                let more = diags
                    .iter()
                    .filter(|d| !d.warning)
                    .count()
                    .saturating_sub(1);
                return fail_closed(format_args!(
                    "invalid policy: {first}{} (check it with `mifrun --check --policy {}`)",
                    if more > 0 {
                        format!(" (and {more} more problems)")
                    } else {
                        String::new()
                    },
                    p.display()
                ));
            }
        },
        None => Policy::default(),
    };
    if let Some(v) = &via {
        let Some(v) = v.to_str() else {
            return fail_closed(format_args!(
                "invalid {}: not valid UTF-8 ({v:?}), so it names no interface",
                env::VIA
            ));
        };
        match parse_via_list(v, env::VIA) {
            Ok(list) => policy.override_via(list),
            Err(diags) => {
                return fail_closed(format_args!("invalid {}: {}", env::VIA, diags[0]));
            }
        }
    }
    if let Some(list) = src.get(env::DNS) {
        let Some(list) = list.to_str() else {
            return fail_closed(format_args!(
                "invalid {}: not valid UTF-8 ({list:?})",
                env::DNS
            ));
        };
        let parsed: Result<Vec<_>, String> =
            list.split(',').map(config_schema::parse_server).collect();
        match parsed {
            Ok(v) => {
                let _ = DNS_OVERRIDE.set(v);
            }
            Err(e) => return fail_closed(format_args!("invalid {}: {e}", env::DNS)),
        }
    }
    let exe = if policy.programs.is_empty() {
        String::new()
    } else {
        sys::exe_path()
    };
    let profile = policy.profile_for(&exe, &argv0);
    log_at!(
        Debug,
        "policy loaded from {}: via [{}]{}",
        path.as_ref()
            .map_or_else(|| env::VIA.to_owned(), |p| p.display().to_string()),
        profile
            .via
            .iter()
            .map(|n| n.as_str())
            .collect::<Vec<_>>()
            .join(","),
        profile
            .section
            .as_ref()
            .map_or(String::new(), |s| format!(" ({s})"))
    );
    Some(profile)
}

#[cfg(test)]
mod tests {
    use super::*;
    use config_schema::IfName;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStringExt;

    /// `load_from` over a fixed environment; files exist only where `files` says.
    fn load_env(vars: &[(&str, &[u8])], files: &[&Path]) -> Option<Profile> {
        let vars: Vec<(String, OsString)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from_vec(v.to_vec())))
            .collect();
        let var = move |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let exists = |p: &Path| files.contains(&p);
        load_from(
            Some("/usr/bin/curl".into()),
            &Sources {
                var: &var,
                exists: &exists,
            },
        )
    }

    fn fail_closed_profile() -> Option<Profile> {
        Some(Profile::fail_closed("invalid policy"))
    }

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mifshim-state-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Item 9: a `MIFSHIM_VIA` that is not UTF-8 was taken for unset (`std::env::var`
    /// fails on it) and the process ran unsteered.
    #[test]
    fn non_utf8_via_fails_closed_instead_of_unset() {
        assert_eq!(
            load_env(&[("MIFSHIM_VIA", b"wlan0\xff")], &[]),
            fail_closed_profile()
        );
    }

    /// Item 9: a `MIFSHIM_POLICY` path that is not UTF-8 is opened by its bytes.
    #[test]
    fn non_utf8_policy_path_is_opened_instead_of_unset() {
        let d = scratch("raw");
        let p = d.join(OsStr::from_bytes(b"p\xff.toml"));
        std::fs::write(&p, "via = [\"wwan0\"]\n").unwrap();
        let got = load_env(&[("MIFSHIM_POLICY", p.as_os_str().as_bytes())], &[]).unwrap();
        assert_eq!(got.via, vec![IfName::new("wwan0").unwrap()]);
        let _ = std::fs::remove_dir_all(&d);
    }

    /// Item 9: a `MIFSHIM_DNS` that is not UTF-8 was ignored (other servers asked).
    #[test]
    fn non_utf8_dns_fails_closed_instead_of_ignored() {
        assert_eq!(
            load_env(
                &[
                    ("MIFSHIM_VIA", b"wlan0"),
                    ("MIFSHIM_DNS", b"203.0.113.53\xff")
                ],
                &[]
            ),
            fail_closed_profile()
        );
    }

    /// A log level or log file that is not UTF-8 does not change whether the process
    /// is steered.
    #[test]
    fn non_utf8_log_settings_keep_the_process_steered() {
        let got = load_env(
            &[
                ("MIFSHIM_VIA", b"wlan0"),
                ("MIFSHIM_LOG", b"info\xff"),
                ("MIFSHIM_LOG_FILE", b"/nonexistent/dir/log\xff"),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(got.via, vec![IfName::new("wlan0").unwrap()]);
    }

    /// Only exactly `1` disables, as in the stub.
    #[test]
    fn disable_is_exactly_one() {
        assert_eq!(
            load_env(&[("MIFSHIM_DISABLE", b"1"), ("MIFSHIM_VIA", b"wlan0")], &[]),
            None
        );
        for v in [&b"1\xff"[..], b"yes", b"0"] {
            assert!(
                load_env(&[("MIFSHIM_DISABLE", v), ("MIFSHIM_VIA", b"wlan0")], &[])
                    .is_some_and(|p| !p.via.is_empty()),
                "{v:?}"
            );
        }
    }

    /// Item 15 and the stub/engine agreement: a default policy path that exists but is
    /// not a regular file made the stub steer and the engine go inert (it asked
    /// `is_file`): unsteered. The engine now takes what exists and refuses it.
    #[test]
    fn default_policy_path_that_is_a_directory_fails_closed_instead_of_inert() {
        let d = scratch("xdg");
        let p = d.join("mifshim/policy.toml");
        std::fs::create_dir_all(&p).unwrap();
        assert_eq!(
            load_env(&[("XDG_CONFIG_HOME", d.as_os_str().as_bytes())], &[&p]),
            fail_closed_profile()
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    /// The engine runs only where the stub found a configuration at start; finding
    /// none now (the program cleared its environment) must not mean unsteered.
    #[test]
    fn configuration_gone_since_start_fails_closed() {
        assert_eq!(
            load_env(&[("MIFSHIM_VIA", b"")], &[]),
            fail_closed_profile()
        );
    }
}
