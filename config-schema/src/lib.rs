//! The mifshim policy: what a user writes, what the shim enforces, and the one pure
//! function that decides what happens to a socket.
//!
//! This crate does no socket or system I/O (the only I/O is reading a policy file in
//! [`load_policy_file`]). It is shared by the preload library (`libmifshim.so`), the
//! `mifrun` wrapper and any future supervisor process, so that every enforcement layer
//! takes exactly the same decision for the same inputs.
//!
//! * [`parse_policy`] / [`load_policy_file`] turn TOML into a validated [`Policy`],
//!   reporting **every** problem at once as `file:line:col: message`.
//! * [`Policy::profile_for`] picks the settings that apply to one program.
//! * [`decide`] maps (profile, socket facts, interface state) to a [`Decision`]:
//!   bind to an interface, leave direct with a named reason, or block with an errno.
//! * [`sysdns`] says where an interface's DNS servers come from and which addresses
//!   and link flags count, for the shim and for `mifrun status`/`explain`/`doctor`.

mod decide;
mod diag;
pub mod document;
pub mod events;
mod ifname;
mod parse;
mod policy;
mod shadow;
pub mod sysdns;

pub use decide::{
    AddrFamily, Applied, Bind, BindAddr, Block, BlockReason, Decision, DirectReason, ErrnoKind,
    Flow, IfaceState, KeepReason, NetView, Op, Proto, Unusable, Why, applied, decide, decide_bind,
    decide_name, unusable_reason,
};
pub use diag::Diagnostic;
pub use ifname::IfName;
/// The keys the parser knows, per place: the top level, `[programs.NAME]`,
/// `[[rules]]`, `[interfaces.NAME]` and `[dns]` (the schema's tests check that they are
/// exactly the document types' fields).
pub mod policy_keys {
    pub use crate::parse::{
        DNS_KEYS as DNS, INTERFACE_KEYS as INTERFACE, PROGRAM_KEYS as PROGRAM, RULE_KEYS as RULE,
        TOP_KEYS as TOP,
    };
}
pub use parse::{MAX_POLICY_BYTES, load_policy_file, parse_policy, parse_server, parse_via_list};
pub use policy::{
    DSCP_NAMES, DnsSettings, EVERY_NAME, ForeignBind, InterfaceSettings, Listen, Loaded, LogLevel,
    OnMarkDenied, OnUnavailable, Policy, PortRange, Profile, ProgramSection, Protocol, Rule,
    SocketOptions, Target, dscp_name, name_pattern_matches,
};

/// Names of the environment variables that configure the shim. Every process in the
/// tree reads them once, in the library constructor, as bytes: a value that is not
/// UTF-8 is never taken for unset (paths are used by their bytes; `VIA` and `DNS` then
/// fail closed).
pub mod env {
    /// Comma-separated, ordered list of interfaces (`wlan0,wwan0`). With
    /// [`POLICY`] it replaces the policy's top-level `via`.
    pub const VIA: &str = mifshim_abi::env::VIA;
    /// Path of a TOML policy file.
    pub const POLICY: &str = mifshim_abi::env::POLICY;
    /// `off|error|warn|info|debug`; defaults to `warn`.
    pub const LOG: &str = "MIFSHIM_LOG";
    /// File the shim appends its log lines to; defaults to standard error.
    pub const LOG_FILE: &str = "MIFSHIM_LOG_FILE";
    /// `1` turns the shim into a no-op (kill switch).
    pub const DISABLE: &str = mifshim_abi::env::DISABLE;
    /// Comma-separated DNS servers for the chosen interface (`mifrun --dns`); they
    /// take precedence over every other source of servers.
    pub const DNS: &str = mifshim_abi::env::DNS;
    /// The absolute path of the `mifrun` that set the environment (mifrun exports it):
    /// the preload runs a program it cannot steer, exec'ed anywhere below, under this
    /// mifrun's supervisor (`mifrun --supervise`).
    pub const MIFRUN: &str = mifshim_abi::env::MIFRUN;
    /// Set (to `1`) by mifrun's supervisor for the program it supervises, removed
    /// otherwise: the preload then execs what it cannot steer as is, under the
    /// supervisor's inherited filter.
    pub const SUPERVISED: &str = mifshim_abi::env::SUPERVISED;
    /// File the shim appends one JSON line per decision and per name to (`mifrun
    /// --events`); the schema is in the README ("Events file").
    pub const EVENTS: &str = "MIFSHIM_EVENTS";
}

/// Where the shim looks for a policy when neither [`env::VIA`] nor [`env::POLICY`] is
/// set, in order: `$XDG_CONFIG_HOME/mifshim/policy.toml` (or `$HOME/.config/…` when
/// `XDG_CONFIG_HOME` is unset or empty), then `/etc/mifshim/policy.toml`: the paths
/// the preloaded stub looks at too (`mifshim_abi`).
pub fn default_policy_paths(
    xdg_config_home: Option<&std::ffi::OsStr>,
    home: Option<&std::ffi::OsStr>,
) -> Vec<std::path::PathBuf> {
    let mut paths = Vec::with_capacity(2);
    let under = |dir: &std::ffi::OsStr, suffix: &str| {
        std::path::Path::new(dir).join(suffix.trim_start_matches('/'))
    };
    if let Some(xdg) = xdg_config_home.filter(|v| !v.is_empty()) {
        paths.push(under(xdg, mifshim_abi::POLICY_UNDER_XDG));
    } else if let Some(home) = home.filter(|v| !v.is_empty()) {
        paths.push(under(home, mifshim_abi::POLICY_UNDER_HOME));
    }
    paths.push(std::path::PathBuf::from(mifshim_abi::SYSTEM_POLICY));
    paths
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn default_paths_prefer_xdg_then_home_then_etc() {
        let p = default_policy_paths(Some(OsStr::new("/x")), Some(OsStr::new("/h")));
        assert_eq!(p[0], std::path::Path::new("/x/mifshim/policy.toml"));
        assert_eq!(p[1], std::path::Path::new("/etc/mifshim/policy.toml"));
        let p = default_policy_paths(Some(OsStr::new("")), Some(OsStr::new("/h")));
        assert_eq!(p[0], std::path::Path::new("/h/.config/mifshim/policy.toml"));
        let p = default_policy_paths(None, None);
        assert_eq!(
            p,
            vec![std::path::PathBuf::from("/etc/mifshim/policy.toml")]
        );
    }
}
