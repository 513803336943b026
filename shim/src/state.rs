//! Process-wide state, built once by the engine's `init` (`crate::entry`) and immutable afterwards: the
//! hooks only read it (one atomic load), so they need no lock and are safe after
//! fork and in signal handlers.

use crate::sys::sync::Published;
use crate::{log, log_at, netstate, sys};
use config_schema::{
    IfName, LogLevel, Policy, Profile, default_policy_paths, env, load_policy_file, parse_via_list,
};
use std::ffi::{OsStr, OsString};
use std::net::SocketAddr;
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
static DNS_OVERRIDE: std::sync::OnceLock<Vec<SocketAddr>> = std::sync::OnceLock::new();

/// The servers `MIFSHIM_DNS` names (`mifrun --dns`), which take precedence over every
/// other source of servers; empty when unset.
pub(crate) fn dns_override() -> &'static [SocketAddr] {
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

/// What the environment (and, for the default policy paths, the file system) says,
/// read by [`read_env`] without acting on it.
#[derive(Debug, PartialEq)]
struct EnvConfig {
    /// `MIFSHIM_LOG`: the level (warn when unset or invalid).
    level: LogLevel,
    /// The warning to log when `MIFSHIM_LOG` names no level.
    level_warning: Option<String>,
    log_file: Option<OsString>,
    events: Option<OsString>,
    /// `MIFSHIM_DISABLE=1`: nothing else is read.
    disabled: bool,
    /// The policy file: `MIFSHIM_POLICY`, else (without `MIFSHIM_VIA`) the first
    /// default path that exists.
    policy: Option<PathBuf>,
    /// `MIFSHIM_VIA`, parsed; `Err`: the line to fail closed with.
    via: Option<Result<Vec<IfName>, String>>,
    /// `MIFSHIM_DNS`, parsed; `Err`: the line to fail closed with.
    dns: Option<Result<Vec<SocketAddr>, String>>,
}

/// Reads the shim's variables from `src`: pure over its two functions, so every case
/// is a unit test. Values are bytes (a value that is not UTF-8 is refused or used by
/// its bytes, never taken for unset); empty is unset.
fn read_env(src: &Sources<'_>) -> EnvConfig {
    let level = src
        .get(env::LOG)
        .map(|v| v.to_str().map(str::parse::<LogLevel>));
    let level_warning = match level {
        Some(None) => Some(format!("{} is not valid UTF-8; using warn", env::LOG)),
        Some(Some(Err(_))) => Some(format!(
            "{} is not one of off, error, warn, info, debug; using warn",
            env::LOG
        )),
        _ => None,
    };
    let via = src.get(env::VIA);
    let steering = mifshim_abi::steering(
        src.get(env::DISABLE).as_deref().map(OsStrExt::as_bytes),
        via.is_some(),
        src.get(env::POLICY).is_some(),
    );
    let disabled = steering == mifshim_abi::Steering::Off;
    let policy = if disabled {
        None
    } else {
        policy_path(src, via.is_some())
    };
    EnvConfig {
        level: match level {
            Some(Some(Ok(l))) => l,
            _ => LogLevel::Warn,
        },
        level_warning,
        log_file: src.get(env::LOG_FILE),
        events: src.get(env::EVENTS),
        disabled,
        policy,
        via: via.filter(|_| !disabled).map(|v| parse_via(&v)),
        dns: src
            .get(env::DNS)
            .filter(|_| !disabled)
            .map(|v| parse_dns(&v)),
    }
}

/// `MIFSHIM_POLICY`, else — unless `MIFSHIM_VIA` is set — the first default policy
/// path that exists.
fn policy_path(src: &Sources<'_>, via_set: bool) -> Option<PathBuf> {
    src.get(env::POLICY).map(PathBuf::from).or_else(|| {
        if via_set {
            return None;
        }
        let xdg = (src.var)("XDG_CONFIG_HOME");
        let home = (src.var)("HOME");
        default_policy_paths(xdg.as_deref(), home.as_deref())
            .into_iter()
            .find(|p| (src.exists)(p))
    })
}

/// `MIFSHIM_VIA`'s list of interfaces.
fn parse_via(v: &OsStr) -> Result<Vec<IfName>, String> {
    let Some(v) = v.to_str() else {
        return Err(format!(
            "invalid {}: not valid UTF-8 ({v:?}), so it names no interface",
            env::VIA
        ));
    };
    parse_via_list(v, env::VIA).map_err(|diags| format!("invalid {}: {}", env::VIA, diags[0]))
}

/// `MIFSHIM_DNS`'s list of servers.
fn parse_dns(list: &OsStr) -> Result<Vec<SocketAddr>, String> {
    let Some(list) = list.to_str() else {
        return Err(format!("invalid {}: not valid UTF-8 ({list:?})", env::DNS));
    };
    list.split(',')
        .map(config_schema::parse_server)
        .collect::<Result<Vec<_>, String>>()
        .map_err(|e| format!("invalid {}: {e}", env::DNS))
}

/// Which process is steered is decided by the stub (`decide_mode` in
/// `preload/src/linux.rs`) from the same variables and files, read the same way (bytes;
/// empty is unset; the default paths by existence): the engine is only ever loaded into
/// a process the stub steers. So every value here either configures the shim or fails
/// closed with one line; none turns it off except `MIFSHIM_DISABLE=1`, which the stub
/// honours too.
fn load_from(argv0: Option<String>, src: &Sources<'_>) -> Option<Profile> {
    let argv0 = argv0.unwrap_or_default();
    let prog_name = argv0.rsplit('/').next().unwrap_or("").to_owned();
    let cfg = read_env(src);
    log::configure(cfg.level, cfg.log_file.as_deref(), &prog_name);
    crate::events::configure(cfg.events.as_deref(), &prog_name);
    if let Some(w) = &cfg.level_warning {
        log_at!(Warn, "{w}");
    }
    if cfg.disabled {
        log_at!(Debug, "disabled by {}=1", env::DISABLE);
        return None;
    }
    if cfg.via.is_none() && cfg.policy.is_none() {
        // The stub found one of them when the process started: the program changed
        // its environment (or the policy file went away) since. Do not run unsteered.
        return fail_closed(format_args!(
            "{}, {} and the policy files were there when the program started but are gone now",
            env::VIA,
            env::POLICY
        ));
    }
    let mut policy = match &cfg.policy {
        Some(p) => match load_policy(p) {
            Ok(policy) => policy,
            Err(line) => return fail_closed(format_args!("{line}")),
        },
        None => Policy::default(),
    };
    match cfg.via {
        Some(Ok(list)) => policy.override_via(list),
        Some(Err(line)) => return fail_closed(format_args!("{line}")),
        None => {}
    }
    match cfg.dns {
        Some(Ok(v)) => {
            let _ = DNS_OVERRIDE.set(v);
        }
        Some(Err(line)) => return fail_closed(format_args!("{line}")),
        None => {}
    }
    Some(profile_of(&policy, &argv0, cfg.policy.as_deref()))
}

/// The policy file at `p`; `Err`: the line to fail closed with (its first error).
fn load_policy(p: &Path) -> Result<Policy, String> {
    let diags = match load_policy_file(p) {
        Ok(loaded) => return Ok(loaded.policy),
        Err(diags) => diags,
    };
    let first = diags.iter().find(|d| !d.warning).unwrap_or(&diags[0]);
    let more = diags
        .iter()
        .filter(|d| !d.warning)
        .count()
        .saturating_sub(1);
    Err(format!(
        "invalid policy: {first}{} (check it with `mifrun --check --policy {}`)",
        if more > 0 {
            format!(" (and {more} more problems)")
        } else {
            String::new()
        },
        p.display()
    ))
}

/// The profile of this program (by its executable's path, when the policy has
/// `[programs]`, and `argv0`), logged with where it came from.
fn profile_of(policy: &Policy, argv0: &str, path: Option<&Path>) -> Profile {
    let exe = if policy.programs.is_empty() {
        String::new()
    } else {
        sys::exe_path()
    };
    let profile = policy.profile_for(&exe, argv0);
    log_at!(
        Debug,
        "policy loaded from {}: via [{}]{}",
        path.map_or_else(|| env::VIA.to_owned(), |p| p.display().to_string()),
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
    profile
}

#[cfg(test)]
mod tests {
    use super::*;
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

    /// `read_env` over a fixed environment; files exist only where `files` says.
    fn env_of(vars: &[(&str, &[u8])], files: &[&Path]) -> EnvConfig {
        let vars: Vec<(String, OsString)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from_vec(v.to_vec())))
            .collect();
        let var = move |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let exists = |p: &Path| files.contains(&p);
        read_env(&Sources {
            var: &var,
            exists: &exists,
        })
    }

    fn wlan0() -> Vec<IfName> {
        vec![IfName::new("wlan0").unwrap()]
    }

    #[test]
    fn the_environment_read_as_a_whole() {
        let e = env_of(
            &[
                ("MIFSHIM_VIA", b"wlan0"),
                ("MIFSHIM_LOG", b"debug"),
                ("MIFSHIM_LOG_FILE", b"/tmp/log"),
                ("MIFSHIM_EVENTS", b"/tmp/ev"),
                ("MIFSHIM_DNS", b"203.0.113.53,[2001:db8::53]:5353"),
            ],
            &[],
        );
        assert_eq!(
            e,
            EnvConfig {
                level: LogLevel::Debug,
                level_warning: None,
                log_file: Some("/tmp/log".into()),
                events: Some("/tmp/ev".into()),
                disabled: false,
                policy: None,
                via: Some(Ok(wlan0())),
                dns: Some(Ok(vec![
                    "203.0.113.53:53".parse().unwrap(),
                    "[2001:db8::53]:5353".parse().unwrap()
                ])),
            }
        );
    }

    #[test]
    fn a_log_level_that_names_none_is_warn_with_a_warning() {
        for (v, says) in [
            (&b"loud"[..], "is not one of"),
            (b"info\xff", "not valid UTF-8"),
        ] {
            let e = env_of(&[("MIFSHIM_VIA", b"wlan0"), ("MIFSHIM_LOG", v)], &[]);
            assert_eq!(e.level, LogLevel::Warn, "{v:?}");
            assert!(e.level_warning.unwrap().contains(says), "{v:?}");
        }
        // Empty is unset: no warning.
        let e = env_of(&[("MIFSHIM_VIA", b"wlan0"), ("MIFSHIM_LOG", b"")], &[]);
        assert_eq!((e.level, e.level_warning), (LogLevel::Warn, None));
    }

    #[test]
    fn disabled_reads_nothing_else() {
        let e = env_of(
            &[
                ("MIFSHIM_DISABLE", b"1"),
                ("MIFSHIM_VIA", b"wlan0\xff"),
                ("MIFSHIM_DNS", b"nonsense"),
            ],
            &[],
        );
        assert!(e.disabled);
        assert_eq!((e.policy, e.via, e.dns), (None, None, None));
    }

    #[test]
    fn policy_path_explicit_else_the_first_default_that_exists_unless_via() {
        let e = env_of(&[("MIFSHIM_POLICY", b"/etc/p.toml")], &[]);
        assert_eq!(e.policy, Some(PathBuf::from("/etc/p.toml")));
        let xdg = Path::new("/x/mifshim/policy.toml");
        let e = env_of(&[("XDG_CONFIG_HOME", b"/x")], &[xdg]);
        assert_eq!(e.policy.as_deref(), Some(xdg));
        // With MIFSHIM_VIA the default files are not looked at.
        let e = env_of(
            &[("XDG_CONFIG_HOME", b"/x"), ("MIFSHIM_VIA", b"wlan0")],
            &[xdg],
        );
        assert_eq!(e.policy, None);
        // MIFSHIM_POLICY wins over MIFSHIM_VIA's "no default".
        let e = env_of(
            &[
                ("MIFSHIM_POLICY", b"/etc/p.toml"),
                ("MIFSHIM_VIA", b"wlan0"),
            ],
            &[],
        );
        assert_eq!(e.policy, Some(PathBuf::from("/etc/p.toml")));
    }

    #[test]
    fn via_and_dns_that_cannot_be_read_are_the_lines_to_fail_closed_with() {
        let e = env_of(
            &[
                ("MIFSHIM_VIA", b"wlan0\xff"),
                ("MIFSHIM_DNS", b"203.0.113.53\xff"),
            ],
            &[],
        );
        let via = e.via.unwrap().unwrap_err();
        assert!(
            via.starts_with("invalid MIFSHIM_VIA: not valid UTF-8"),
            "{via}"
        );
        let dns = e.dns.unwrap().unwrap_err();
        assert!(
            dns.starts_with("invalid MIFSHIM_DNS: not valid UTF-8"),
            "{dns}"
        );
        let e = env_of(
            &[("MIFSHIM_VIA", b"wlan0"), ("MIFSHIM_DNS", b"not-a-server")],
            &[],
        );
        assert!(
            e.dns
                .unwrap()
                .unwrap_err()
                .starts_with("invalid MIFSHIM_DNS: ")
        );
        let e = env_of(&[("MIFSHIM_VIA", b",,")], &[]);
        assert!(
            e.via
                .unwrap()
                .unwrap_err()
                .starts_with("invalid MIFSHIM_VIA: ")
        );
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
