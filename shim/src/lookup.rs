//! The policy's decisions for name lookups, shared by the two resolvers (Linux's own,
//! `dns/`, and macOS's over mDNSResponder, `dns_macos.rs`): over which interface a
//! name is resolved ([`name_route`]), where an address's name comes from and over
//! which interface its PTR query goes ([`reverse_route`]), and the PTR query's name
//! ([`reverse_name`]). Each resolver then asks its own way and answers with its own
//! `EAI_*` numbers (the C library's constants of the OS it is built for).

use std::net::IpAddr;

use config_schema::{Bind, BlockReason, Decision, DirectReason, IfName, NetView, Profile};

use crate::netstate::{self, Snap};
use crate::{log, log_at};

/// How a lookup the policy does not bind to an interface is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unbound {
    /// By the C library (a name the policy sends direct).
    Real,
    /// With this `EAI_*` code: `EAI_FAIL` for a rule's block, `EAI_AGAIN` when no
    /// interface of the list is usable.
    Fail(i32),
}

/// The interface the policy's decision `d` for resolving `node` binds it to, or how the
/// lookup is answered without one (logged).
pub(crate) fn name_route<'p>(node: &str, d: Decision<'p>) -> Result<Bind<'p>, Unbound> {
    match d {
        Decision::Direct(r) => {
            log_at!(Info, "resolve {node} direct ({})", direct_text(&r));
            Err(Unbound::Real)
        }
        Decision::Block(b) => Err(match b.reason {
            BlockReason::Rule(r) => {
                log_at!(Info, "resolve {node} blocked by {} -> EAI_FAIL", r.label);
                Unbound::Fail(libc::EAI_FAIL)
            }
            BlockReason::Unavailable(list) => {
                log::warn_limited(format_args!(
                    "resolve {node} refused: no usable interface among [{}] -> EAI_AGAIN",
                    names(list)
                ));
                Unbound::Fail(libc::EAI_AGAIN)
            }
        }),
        Decision::Bind(b) => Ok(b),
    }
}

/// Why a name goes direct, for the log.
pub(crate) fn direct_text(r: &DirectReason<'_>) -> String {
    match r {
        DirectReason::Rule(r) => r.label.clone(),
        DirectReason::NoVia => "no interface set".into(),
        DirectReason::Unavailable => "no usable interface; on_unavailable = direct".into(),
        other => format!("{other:?}"),
    }
}

/// `wlan0, eth0`.
pub(crate) fn names(list: &[IfName]) -> String {
    list.iter()
        .map(IfName::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The name a PTR query for `ip` asks for (`in-addr.arpa`, `ip6.arpa`; an
/// IPv4-mapped address is its IPv4 address's).
pub(crate) fn reverse_name(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(72);
            for b in v6.octets().iter().rev() {
                s.push(char::from_digit((b & 0xf) as u32, 16).unwrap_or('0'));
                s.push('.');
                s.push(char::from_digit((b >> 4) as u32, 16).unwrap_or('0'));
                s.push('.');
            }
            s.push_str("ip6.arpa");
            s
        }
    }
}

/// Where the name of an address comes from (before any policy).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReverseSource {
    /// /etc/hosts names it.
    Hosts(String),
    /// Loopback or unspecified, and not in /etc/hosts: no name (no query).
    NoName,
    /// One of this host's own addresses: a PTR query over the interface names go by.
    OverNameLink,
    /// Anything else: a PTR query over the interface the address is reached by.
    OverAddressLink,
}

/// Decides, without any input but its arguments, where `ip`'s name comes from: a
/// reverse lookup never goes to the C library's default path, which would ask the
/// default link's server for what /etc/hosts does not list.
pub(crate) fn reverse_source(ip: IpAddr, hosts_name: Option<String>, own: bool) -> ReverseSource {
    match hosts_name {
        Some(n) => ReverseSource::Hosts(n),
        None if ip.is_loopback() || ip.is_unspecified() => ReverseSource::NoName,
        None if own => ReverseSource::OverNameLink,
        None => ReverseSource::OverAddressLink,
    }
}

/// How the name of an address is found.
#[derive(Debug)]
pub(crate) enum Reverse<'p> {
    /// This name, from /etc/hosts.
    Hosts(String),
    /// No name: loopback or unspecified, or the policy blocks the query (logged).
    NoName,
    /// The C library's (the policy sends it direct).
    Real,
    /// A PTR query over this interface.
    Query(Bind<'p>),
}

/// How the name of `ip` (canonical) is found: /etc/hosts' `hosts_name` (`None` where
/// the resolver does not read the file), no name, or a PTR query over the interface
/// the address is reached by (for this host's own addresses, the one names go by),
/// as the policy decides. Only the decision is taken on the snapshot.
pub(crate) fn reverse_route(
    profile: &'static Profile,
    ip: IpAddr,
    hosts_name: Option<String>,
) -> Reverse<'static> {
    let d = netstate::with(
        |snap| match reverse_source(ip, hosts_name, snap.is_local(ip)) {
            ReverseSource::Hosts(n) => Err(Reverse::Hosts(n)),
            ReverseSource::NoName => {
                log_at!(Debug, "reverse lookup of {ip}: not in /etc/hosts, no query");
                Err(Reverse::NoName)
            }
            ReverseSource::OverNameLink => Ok(decide_reverse(profile, snap, ip, true)),
            ReverseSource::OverAddressLink => Ok(decide_reverse(profile, snap, ip, false)),
        },
    );
    match d {
        Err(r) => r,
        // A rule, no `via` or `on_unavailable = "direct"`: the policy's own choice.
        Ok(Decision::Direct(_)) => Reverse::Real,
        Ok(Decision::Block(_)) => {
            log_at!(Info, "reverse lookup of {ip} refused by the policy");
            Reverse::NoName
        }
        Ok(Decision::Bind(b)) => Reverse::Query(b),
    }
}

/// The decision for the PTR query of `ip`: as a name (`own`: this host's address, whose
/// name goes where names go), or as a datagram to the address's DNS port (the
/// interface the address is reached by).
fn decide_reverse(
    profile: &'static Profile,
    snap: &Snap,
    ip: IpAddr,
    own: bool,
) -> Decision<'static> {
    if own {
        return config_schema::decide_name(profile, snap, &reverse_name(ip));
    }
    let flow = config_schema::Flow {
        proto: config_schema::Proto::Udp,
        op: config_schema::Op::Connect,
        dest: ip,
        port: 53,
        scope_id: 0,
    };
    config_schema::decide(profile, snap, &flow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_lookups_never_go_to_the_default_path() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let named = Some("printer".to_string());
        for (addr, hosts, own, want) in [
            (
                "::1",
                named.clone(),
                false,
                ReverseSource::Hosts("printer".into()),
            ),
            ("127.0.0.5", None, false, ReverseSource::NoName),
            ("::1", None, false, ReverseSource::NoName),
            ("0.0.0.0", None, false, ReverseSource::NoName),
            ("198.51.100.66", None, true, ReverseSource::OverNameLink),
            (
                "198.51.100.66",
                named.clone(),
                true,
                ReverseSource::Hosts("printer".into()),
            ),
            ("203.0.113.10", None, false, ReverseSource::OverAddressLink),
        ] {
            assert_eq!(reverse_source(ip(addr), hosts, own), want, "{addr}");
        }
    }

    #[test]
    fn reverse_names_of_both_families() {
        assert_eq!(
            reverse_name("203.0.113.10".parse().unwrap()),
            "10.113.0.203.in-addr.arpa"
        );
        assert_eq!(
            reverse_name("::ffff:203.0.113.10".parse().unwrap()),
            "10.113.0.203.in-addr.arpa"
        );
        assert_eq!(
            reverse_name("2001:db8::567:89ab".parse().unwrap()),
            "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }
}
