//! `crate::dns` on macOS: what the shared name-lookup entry points (`entry::names`,
//! `entry::macos`) and the socket core (`ops`) ask of the engine's resolver, which on
//! macOS is not the Linux one (`dns/`: the servers of `/etc/resolv.conf`, its own
//! sockets) but mDNSResponder, asked with the chosen interface's index
//! (`sys::macos::ffi::names::lookup`, over configd's per-interface resolvers).
//!
//! * [`getaddrinfo`]: the policy decides the name over the interface snapshot with
//!   the code Linux's resolver runs (`lookup::name_route` over
//!   `config_schema::decide_name`). Inert, `[dns] steer = false`, a
//!   numeric host (`AI_NUMERICHOST`, or text that is an IP address) and the loopback
//!   names are the C library's; a name the policy sends direct too. A blocked name
//!   fails (`EAI_FAIL`, or `EAI_AGAIN` with no usable interface); a bound one is
//!   resolved by mDNSResponder over that interface only, and its answer, or its
//!   `EAI_*` code, is the call's; the addresses of a name a rule chose the interface
//!   for are remembered for that rule (`learned`), as on Linux. Not on macOS: the `/etc/hosts` check (names there go
//!   through mDNSResponder over the interface too), this host's own name, search
//!   domains of the policy's own, `AI_V4MAPPED` (an `AF_INET6` lookup asks for IPv6
//!   only), the events file's name lines.
//! * [`getnameinfo`]: decided as on Linux (`lookup::reverse_route`, without the
//!   `/etc/hosts` check): loopback and the unspecified address have no name, a
//!   reverse lookup the policy sends direct is the C library's, a blocked one has no
//!   name; any other is a PTR query mDNSResponder makes over the chosen interface
//!   (`DNSServiceQueryRecord` with its index, from that interface's resolver for the
//!   reverse zone; `sys::macos::ffi::names::reverse_lookup`): its name, or without
//!   one the numeric form (`EAI_NONAME` with `NI_NAMEREQD`); an interface without DNS
//!   of its own fails it (`EAI_FAIL`), no answer in time is `EAI_AGAIN`. Not on
//!   macOS: `NI_NOFQDN`'s shortening (Linux's uses `/etc/resolv.conf`'s first search
//!   domain).
//! * [`redirect_target`]: `[dns] redirect` is not written for macOS
//!   (`sys::macos::dns`); `mifrun` refuses a policy that sets it, and an engine
//!   loaded without `mifrun` says so (a rate-limited warning) when a query it would
//!   have redirected is sent.

use std::net::IpAddr;

use crate::log_at;
use crate::lookup::{self, Reverse, Unbound};
use crate::netstate;
use crate::state::{self, Mode};

/// `[dns] redirect` on macOS: never a target (`sys::macos::dns::redirect_target`); a
/// policy that asks for it is told, once in a while, when a port-53 datagram or
/// connection would have been redirected.
pub(crate) fn redirect_target(
    profile: &config_schema::Profile,
    dest: std::net::SocketAddr,
    v6_socket: bool,
) -> Option<std::net::SocketAddr> {
    if profile.dns.redirect && dest.port() == 53 {
        crate::log::warn_limited(format_args!(
            "[dns] redirect is not written on macOS: the query to {dest} is steered as it is, not redirected"
        ));
    }
    crate::sys::macos::dns::redirect_target(profile, dest, v6_socket)
}

/// What the program asked for (the parts of `struct addrinfo` hints that matter).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hints {
    pub family: i32,
    pub flags: i32,
}

/// How a lookup is answered.
#[derive(Debug)]
pub(crate) enum Plan {
    /// Leave it to the C library.
    Real,
    /// Fail with this `EAI_*` code.
    Fail(i32),
    /// These addresses, in this order, with this canonical name.
    Answer { addrs: Vec<IpAddr>, canon: String },
}

/// How a reverse lookup is answered (the Linux `dns::NamePlan`).
#[derive(Debug)]
pub(crate) enum NamePlan {
    /// Leave the whole call to the C library.
    Real,
    /// Fail with this `EAI_*` code.
    Fail(i32),
    /// The numeric form.
    Numeric,
    /// This name.
    Name(String),
}

/// macOS's `EAI_ADDRFAMILY` (`<netdb.h>`; not exported by the libc crate).
pub(crate) use crate::sys::macos::names::EAI_ADDRFAMILY;

/// `localhost` and names under `.localhost` (RFC 6761): the C library's (its
/// `/etc/hosts` and mDNSResponder answer them on this host; no query leaves).
fn is_loopback_name(name: &str) -> bool {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    n == "localhost" || n.ends_with(".localhost")
}

fn is_numeric(node: &str) -> bool {
    let bare = node.split('%').next().unwrap_or(node);
    node.parse::<IpAddr>().is_ok() || bare.parse::<std::net::Ipv6Addr>().is_ok()
}

/// Decides how `getaddrinfo(node, …, hints)` is answered, resolving a steered name
/// over its interface.
pub(crate) fn getaddrinfo(node: &str, hints: &Hints) -> Plan {
    let profile = match state::mode() {
        Mode::Inert => return Plan::Real,
        Mode::Active(p) => p,
    };
    if !profile.dns.steer
        || hints.flags & libc::AI_NUMERICHOST != 0
        || node.is_empty()
        || is_numeric(node)
        || is_loopback_name(node)
    {
        return Plan::Real;
    }
    // The shared decision (`lookup`, as on Linux); only it is taken on the snapshot.
    let d = netstate::with(|snap| {
        lookup::name_route(node, config_schema::decide_name(profile, snap, node))
    });
    let b = match d {
        Ok(b) => b,
        Err(Unbound::Real) => return Plan::Real,
        Err(Unbound::Fail(code)) => return Plan::Fail(code),
    };
    let (ifname, index) = (b.ifname.as_str(), b.index);
    match crate::sys::macos::ffi::names::lookup(node, index, hints.family, 0) {
        Ok((addrs, source)) => {
            log_at!(
                Info,
                "resolve {node} over {ifname} (index {index}) with {source}: {} address(es)",
                addrs.len()
            );
            let addrs: Vec<IpAddr> = addrs.iter().map(|a| a.ip()).collect();
            // A connection to these then follows the rule that chose the interface.
            crate::learned::remember_answer(profile, &b.why, &addrs);
            Plan::Answer {
                addrs,
                canon: node.to_owned(),
            }
        }
        Err(code) => {
            log_at!(Info, "resolve {node} over {ifname}: EAI code {code}");
            Plan::Fail(code)
        }
    }
}

/// Decides how a reverse lookup of `ip` is answered.
pub(crate) fn getnameinfo(ip: IpAddr, flags: i32) -> NamePlan {
    let profile = match state::mode() {
        Mode::Inert => return NamePlan::Real,
        Mode::Active(p) => p,
    };
    let ip = ip.to_canonical();
    if !profile.dns.steer || flags & libc::NI_NUMERICHOST != 0 {
        return NamePlan::Real;
    }
    // The shared decision (`lookup`, as on Linux; no /etc/hosts check here).
    match lookup::reverse_route(profile, ip, None) {
        Reverse::Real => NamePlan::Real,
        Reverse::Hosts(n) => NamePlan::Name(n),
        Reverse::NoName => no_name(flags, libc::EAI_NONAME),
        Reverse::Query(b) => {
            let ptr = lookup::reverse_name(ip);
            match crate::sys::macos::ffi::names::reverse_lookup(&ptr, b.index) {
                Ok((name, source)) => {
                    log_at!(
                        Info,
                        "reverse lookup of {ip} over {} (index {}) with {source}: {name}",
                        b.ifname,
                        b.index
                    );
                    NamePlan::Name(name)
                }
                Err(libc::EAI_NONAME) => {
                    log_at!(Info, "reverse lookup of {ip} over {}: no name", b.ifname);
                    no_name(flags, libc::EAI_NONAME)
                }
                Err(code) => {
                    log_at!(
                        Info,
                        "reverse lookup of {ip} over {}: EAI code {code}",
                        b.ifname
                    );
                    NamePlan::Fail(code)
                }
            }
        }
    }
}

/// What a reverse lookup that finds no name answers: the address in numeric form, or
/// `code` with `NI_NAMEREQD`.
fn no_name(flags: i32, code: i32) -> NamePlan {
    if flags & libc::NI_NAMEREQD != 0 {
        NamePlan::Fail(code)
    } else {
        NamePlan::Numeric
    }
}
