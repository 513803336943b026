//! System resolver configuration: `/etc/resolv.conf`, `/etc/hosts`, and per-link DNS
//! servers left behind by network managers. Parsing is pure (unit-tested); reading is
//! cached by modification time, never under a lock that could be held across fork
//! (`try_lock`, or read afresh).

use parking_lot::Mutex;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::SystemTime;

// The parsers and the order of the sources are shared with `mifrun status`/`explain`
// (config-schema's `sysdns`), so both find the same servers.
pub(crate) use config_schema::sysdns::{ResolvConf, parse_resolv_conf};

/// The address and names of each entry line of a hosts file text.
fn hosts_entries(text: &str) -> impl Iterator<Item = (IpAddr, std::str::SplitWhitespace<'_>)> {
    text.lines().filter_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let ip = words.next()?;
        let ip = ip.split('%').next().unwrap_or(ip).parse::<IpAddr>().ok()?;
        Some((ip, words))
    })
}

/// Is `name` listed in the hosts file text?
#[cfg(test)]
pub(crate) fn hosts_has(text: &str, name: &str) -> bool {
    hosts_families(text, name) != (false, false)
}

/// Whether the hosts file text lists `name` with an IPv4 and with an IPv6 address.
pub(crate) fn hosts_families(text: &str, name: &str) -> (bool, bool) {
    let name = name.trim_end_matches('.');
    let mut has = (false, false);
    for (ip, mut names) in hosts_entries(text) {
        if names.any(|w| w.eq_ignore_ascii_case(name)) {
            match ip {
                IpAddr::V4(_) => has.0 = true,
                IpAddr::V6(_) => has.1 = true,
            }
        }
    }
    has
}

/// The name the hosts file text gives `ip` (the first name of the first line listing
/// it, as glibc's files module answers a reverse lookup).
pub(crate) fn hosts_name_of(text: &str, ip: IpAddr) -> Option<String> {
    hosts_entries(text)
        .filter(|(a, _)| *a == ip)
        .find_map(|(_, mut names)| names.next().map(str::to_owned))
}

struct Cached<T> {
    mtime: Option<SystemTime>,
    value: T,
}

/// Reads `path` through `parse`, reusing the last result while the file's mtime is
/// unchanged. A contended lock (or one held by a thread that vanished in a fork)
/// means: read afresh.
fn cached<T: Clone>(cell: &Mutex<Option<Cached<T>>>, path: &Path, parse: impl Fn(&str) -> T) -> T {
    let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    if let Some(guard) = cell.try_lock() {
        if let Some(c) = guard.as_ref() {
            if c.mtime == mtime && mtime.is_some() {
                return c.value.clone();
            }
        }
    }
    let value = parse(&std::fs::read_to_string(path).unwrap_or_default());
    if let Some(mut guard) = cell.try_lock() {
        *guard = Some(Cached {
            mtime,
            value: value.clone(),
        });
    }
    value
}

static RESOLV: Mutex<Option<Cached<ResolvConf>>> = Mutex::new(None);
static HOSTS: Mutex<Option<Cached<std::sync::Arc<str>>>> = Mutex::new(None);

pub(crate) fn resolv_conf() -> ResolvConf {
    cached(&RESOLV, Path::new("/etc/resolv.conf"), parse_resolv_conf)
}

pub(crate) fn hosts_text() -> std::sync::Arc<str> {
    cached(&HOSTS, Path::new("/etc/hosts"), |t| std::sync::Arc::from(t))
}

/// Facts that cost a system call each to learn and rarely change: kept for a second,
/// so a busy resolver does not stat or open the same absent files on every lookup.
///
/// Each cache is a `try_lock`ed slot held only to copy a value in or out (no system
/// call, no file read under it): a nested lookup on the same thread (a signal handler,
/// an NSS module) never waits for it, and one whose thread was taken out of a lookup
/// by `siglongjmp` leaves at worst a slot that stays locked, so later lookups compute
/// the facts afresh (slower, never wrong).
#[derive(Clone)]
struct Recent {
    at_ms: u64,
    hostname: String,
    resolved: bool,
}

static RECENT: Mutex<Option<Recent>> = Mutex::new(None);

/// Per-link servers: (interface index, when read, servers, where from).
type LinkEntry = (u32, u64, Vec<SocketAddr>, &'static str);
static LINKS: Mutex<Vec<LinkEntry>> = Mutex::new(Vec::new());

fn fresh_enough(at_ms: u64, now: u64) -> bool {
    now.saturating_sub(at_ms) <= 1000
}

/// Facts no older than a second (computed afresh when the slot is busy).
fn recent() -> Recent {
    let now = crate::sys::now_ms();
    if let Some(guard) = RECENT.try_lock() {
        if let Some(r) = guard.as_ref().filter(|r| fresh_enough(r.at_ms, now)) {
            return r.clone();
        }
    }
    let r = Recent {
        at_ms: now,
        hostname: crate::sys::net::hostname().to_ascii_lowercase(),
        resolved: super::resolved::available(),
    };
    if let Some(mut guard) = RECENT.try_lock() {
        *guard = Some(r.clone());
    }
    r
}

/// This host's name, lower case.
pub(crate) fn hostname() -> String {
    recent().hostname
}

/// Whether systemd-resolved's varlink socket exists.
pub(crate) fn resolved_available() -> bool {
    recent().resolved
}

/// Per-link servers left by a network manager (cached for a second).
pub(crate) fn link_servers(index: u32, name: &str) -> (Vec<SocketAddr>, &'static str) {
    let now = crate::sys::now_ms();
    if let Some(guard) = LINKS.try_lock() {
        if let Some((_, _, v, s)) = guard
            .iter()
            .find(|(i, at, _, _)| *i == index && fresh_enough(*at, now))
        {
            return (v.clone(), *s);
        }
    }
    let (v, s) = read_link_servers(index, name);
    if let Some(mut guard) = LINKS.try_lock() {
        guard.retain(|(i, at, _, _)| *i != index && fresh_enough(*at, now));
        guard.push((index, now, v.clone(), s));
    }
    (v, s)
}

/// Per-link servers left by a network manager, for interface `index`/`name`:
/// systemd-networkd's link state, then dhclient's leases.
fn read_link_servers(index: u32, name: &str) -> (Vec<SocketAddr>, &'static str) {
    let (v, source, _) =
        config_schema::sysdns::read_link_servers(index, name, |p| std::fs::read_to_string(p).ok());
    (v, source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lookup_is_by_name_not_address() {
        let t =
            "127.0.0.1 localhost\n198.51.100.7 Printer printer.lan # office\n# 10.0.0.1 ghost\n";
        assert!(hosts_has(t, "printer"));
        assert!(hosts_has(t, "PRINTER.lan."));
        assert!(hosts_has(t, "localhost"));
        assert!(!hosts_has(t, "ghost"));
        assert!(!hosts_has(t, "198.51.100.7"));
        assert_eq!(
            hosts_name_of(t, "198.51.100.7".parse().unwrap()).as_deref(),
            Some("Printer")
        );
        assert_eq!(hosts_name_of(t, "10.0.0.1".parse().unwrap()), None);
        assert_eq!(hosts_families(t, "printer"), (true, false));
        let both = "127.0.0.1 localhost\n::1 localhost ip6-localhost\n";
        assert_eq!(hosts_families(both, "localhost"), (true, true));
        assert_eq!(hosts_families(both, "ip6-localhost"), (false, true));
        assert_eq!(
            hosts_name_of(both, "::1".parse().unwrap()).as_deref(),
            Some("localhost")
        );
    }
}
