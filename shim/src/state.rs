//! Process-wide state, built once by `mifshim_engine_init` and immutable afterwards: the
//! hooks only read it (one atomic load), so they need no lock and are safe after
//! fork and in signal handlers.

use crate::{log, log_at, netstate, sys};
use config_schema::{
    LogLevel, Policy, Profile, Protocol, Rule, Target, default_policy_paths, env, load_policy_file,
    parse_via_list,
};
use std::sync::atomic::{AtomicPtr, AtomicU8, Ordering};

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
static PROFILE: AtomicPtr<Profile> = AtomicPtr::new(std::ptr::null_mut());

/// The current mode; initialises on the spot if a hook runs before `mifshim_engine_init`.
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
    let p = PROFILE.load(Ordering::Acquire);
    // SAFETY: PROFILE is set (to a leaked, never freed Box) before STATE becomes
    // ACTIVE with Release ordering, and never changed afterwards.
    Mode::Active(unsafe { &*p })
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
        Some(broken_profile())
    });
    match profile {
        None => STATE.store(INERT, Ordering::Release),
        Some(p) => {
            PROFILE.store(Box::into_raw(Box::new(p)), Ordering::Release);
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

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `None`: inert. `Some(profile)`: enforce it (possibly the fail-closed profile).
fn load(argv0: Option<String>) -> Option<Profile> {
    let argv0 = argv0.unwrap_or_default();
    let prog_name = argv0.rsplit('/').next().unwrap_or("").to_owned();
    let level = match var(env::LOG).map(|v| v.parse::<LogLevel>()) {
        Some(Ok(l)) => Some(l),
        Some(Err(_)) => None,
        None => Some(LogLevel::Warn),
    };
    log::configure(
        level.unwrap_or(LogLevel::Warn),
        var(env::LOG_FILE).as_deref(),
        &prog_name,
    );
    if level.is_none() {
        log_at!(
            Warn,
            "{} is not one of off, error, warn, info, debug; using warn",
            env::LOG
        );
    }
    if var(env::DISABLE).as_deref() == Some("1") {
        log_at!(Debug, "disabled by {}=1", env::DISABLE);
        return None;
    }
    let via = var(env::VIA);
    let path = var(env::POLICY).map(std::path::PathBuf::from).or_else(|| {
        if via.is_some() {
            return None;
        }
        let xdg = std::env::var_os("XDG_CONFIG_HOME");
        let home = std::env::var_os("HOME");
        default_policy_paths(xdg.as_deref(), home.as_deref())
            .into_iter()
            .find(|p| p.is_file())
    });
    if via.is_none() && path.is_none() {
        return None;
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
                log::line(
                    LogLevel::Error,
                    format_args!(
                        "invalid policy: {first}{}; blocking all non-local network traffic (check it with `mifrun --check --policy {}`)",
                        if more > 0 {
                            format!(" (and {more} more problems)")
                        } else {
                            String::new()
                        },
                        p.display()
                    ),
                );
                return Some(broken_profile());
            }
        },
        None => Policy::default(),
    };
    if let Some(v) = &via {
        match parse_via_list(v, env::VIA) {
            Ok(list) => policy.override_via(list),
            Err(diags) => {
                log::line(
                    LogLevel::Error,
                    format_args!(
                        "invalid {}: {}; blocking all non-local network traffic",
                        env::VIA,
                        diags[0]
                    ),
                );
                return Some(broken_profile());
            }
        }
    }
    if let Some(list) = var(env::DNS) {
        let parsed: Result<Vec<_>, String> =
            list.split(',').map(config_schema::parse_server).collect();
        match parsed {
            Ok(v) => crate::dns::set_override(v),
            Err(e) => {
                log::line(
                    LogLevel::Error,
                    format_args!(
                        "invalid {}: {e}; blocking all non-local network traffic",
                        env::DNS
                    ),
                );
                return Some(broken_profile());
            }
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

/// What an invalid policy turns into: exemptions still apply (loopback, own
/// addresses), every other INET destination is refused with `EACCES`.
fn broken_profile() -> Profile {
    Profile {
        rules: vec![Rule {
            label: "invalid policy".into(),
            line: 0,
            to: Vec::new(),
            ports: Vec::new(),
            protocol: Protocol::Any,
            names: Vec::new(),
            target: Target::Block,
        }],
        ..Profile::default()
    }
}
