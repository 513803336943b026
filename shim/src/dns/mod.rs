//! Names follow the interface: every way a program resolves a name (`getaddrinfo`,
//! `gethostbyname*`, `getnameinfo`, `gethostbyaddr*`, `getaddrinfo_a`, the `res_*`
//! family) is answered over the chosen interface, from that interface's servers, or
//! fails with the proper code; none goes to the C library's default path.
//!
//! glibc ≥ 2.34 makes its resolver sockets through internal calls no preload sees, so
//! the only place to steer DNS is the lookup function itself. Numeric hosts and names
//! `/etc/hosts` answers go to the C library unchanged; loopback names and this host's
//! own name are answered locally; names glibc refuses by syntax fail at once
//! (`name.rs`); everything else is resolved here.
//!
//! Servers, in order: `MIFSHIM_DNS` (`mifrun --dns`), the policy's
//! `[interfaces.NAME] dns`, per-link state left by systemd-networkd or dhclient, and
//! finally the non-loopback servers of `/etc/resolv.conf`, asked through the chosen
//! interface.

pub(crate) mod conf;
pub(crate) mod gai;
pub(crate) mod name;
mod raw;
pub(crate) mod res;
mod resolve;
mod resolved;
mod sort;
mod wire;

use crate::netstate;
use crate::state::{self, Mode};
use crate::{log, log_at};
use config_schema::{Bind, Decision, IfName, IfaceState, NetView, Profile, Why, decide_name};
use std::net::{IpAddr, SocketAddr};
use wire::QType;

pub(crate) use crate::lookup::names;
use crate::lookup::{Reverse, Unbound};

/// What the program asked for (the parts of `struct addrinfo` hints that matter).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hints {
    pub family: i32,
    pub flags: i32,
}

/// How a lookup is answered.
#[derive(Debug)]
pub(crate) enum Plan {
    /// Leave it to the C library (numeric, local names, direct by policy, inert).
    Real,
    /// Fail with this `EAI_*` code.
    Fail(i32),
    /// These addresses, in this order, with this canonical name.
    Answer { addrs: Vec<IpAddr>, canon: String },
}

/// Marks a DNS message as truncated (an answer cut to the program's buffer).
pub(crate) fn raw_set_truncated(msg: &mut [u8]) {
    raw::set_truncated(msg);
}

/// glibc's `EAI_ADDRFAMILY` (not exported by the libc crate).
pub(crate) const EAI_ADDRFAMILY: i32 = -9;

fn is_numeric(node: &str) -> bool {
    // What glibc's AI_NUMERICHOST accepts: an IPv6 address (with a %scope), or what
    // inet_aton(3) accepts ("127.1", "0x7f.1", "2130706433"). Anything else, even
    // "1ab.cafe", is a name and must be resolved over the chosen link.
    let bare = node.split('%').next().unwrap_or(node);
    node.parse::<IpAddr>().is_ok()
        || bare.parse::<std::net::Ipv6Addr>().is_ok()
        || crate::sys::net::inet_aton_ok(node)
}

/// Whether the C library answers `name` from /etc/hosts for what `hints` ask, without
/// going on to DNS (glibc's files module finds a line for the name with an address of
/// the family asked; for a family the file does not list, glibc would ask DNS next).
fn hosts_answer(name: &str, hints: &Hints) -> bool {
    let (has4, has6) = conf::hosts_families(&conf::hosts_text(), name);
    match hints.family {
        libc::AF_INET => has4,
        libc::AF_INET6 => has6,
        _ => has4 || has6,
    }
}

/// `localhost` and names under `.localhost` (RFC 6761) when /etc/hosts does not answer
/// them: the loopback addresses, never a query.
fn loopback_answer(name: &str, hints: &Hints) -> Option<Plan> {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    if n != "localhost" && !n.ends_with(".localhost") {
        return None;
    }
    let v4 = IpAddr::from([127, 0, 0, 1]);
    let v6 = IpAddr::from(std::net::Ipv6Addr::LOCALHOST);
    let addrs = match hints.family {
        libc::AF_INET => vec![v4],
        libc::AF_INET6 => vec![v6],
        _ => vec![v6, v4],
    };
    Some(Plan::Answer {
        addrs,
        canon: "localhost".into(),
    })
}

/// The search domains for names resolved over `ifname`: the policy's
/// `[interfaces.X] search` when it gives one (in place of the system's, as a link's
/// own domains are), else `/etc/resolv.conf`'s `search` (resolv.conf(5), applied with
/// its `ndots`: see `resolve::candidates`).
pub(crate) fn search_list<'a>(
    profile: &'a Profile,
    ifname: &IfName,
    rc: &'a conf::ResolvConf,
) -> &'a [String] {
    profile.search_domains(ifname).unwrap_or(&rc.search)
}

/// Decides how `getaddrinfo(node, …, hints)` is answered (and writes its line to the
/// events file when there is one).
pub(crate) fn getaddrinfo(node: &str, hints: &Hints) -> Plan {
    let mut ev = crate::events::Name::new();
    let plan = getaddrinfo_decided(node, hints, &mut ev);
    if ev.on && (ev.decision.is_some() || ev.local.is_some()) {
        match &plan {
            Plan::Real => crate::events::name(&ev, node, None, None),
            Plan::Fail(code) => crate::events::name(&ev, node, None, Some(*code)),
            Plan::Answer { addrs, .. } => crate::events::name(&ev, node, Some(addrs), None),
        }
    }
    plan
}

fn getaddrinfo_decided(node: &str, hints: &Hints, ev: &mut crate::events::Name) -> Plan {
    let profile = match state::mode() {
        Mode::Inert => return Plan::Real,
        Mode::Active(p) => p,
    };
    let host = match name_to_resolve(profile, node, hints, ev) {
        Ok(host) => host,
        Err(plan) => return plan,
    };
    let node = host.text.as_str();
    let (b, iface, sources) = match route_name(profile, node, ev) {
        Ok(r) => r,
        Err(plan) => return plan,
    };
    let want = match query_types(node, &iface, hints, &b) {
        Ok(want) => want,
        Err(plan) => return plan,
    };
    let l = Lookup {
        profile,
        node,
        host: &host,
        b,
        sources,
        want,
        rc: conf::resolv_conf(),
    };
    let own_name = host.text.eq_ignore_ascii_case(&conf::hostname());
    let (servers, source) = servers_for(profile, b.ifname, b.index, &l.rc);
    let by = if own_name {
        Asker::OwnName
    } else if config_schema::sysdns::asks_resolved(source, true) && conf::resolved_available() {
        ev.servers(&[], "systemd-resolved");
        Asker::Resolved
    } else {
        ev.servers(&servers, source);
        Asker::Servers
    };
    let outcome = match by {
        Asker::OwnName => {
            ev.servers(&[], "this host");
            own_name_answer(&l)
        }
        Asker::Resolved => ask_resolved(&l),
        Asker::Servers => match ask_servers(&l, &servers, source) {
            Ok(outcome) => outcome,
            Err(plan) => return plan,
        },
    };
    answer(&l, hints, outcome, || match by {
        Asker::Resolved => "systemd-resolved".into(),
        _ => Servers(&servers).to_string(),
    })
}

/// The name `node` stands for, when it is the shim's to resolve: `Err` with the plan
/// when it is not (inert, not steered, numeric, in /etc/hosts, a loopback name) or
/// when glibc would refuse it by syntax (`res_hnok`: it fails at once, asking nobody).
fn name_to_resolve(
    profile: &Profile,
    node: &str,
    hints: &Hints,
    ev: &mut crate::events::Name,
) -> Result<name::HostName, Plan> {
    if !profile.dns.steer
        || hints.flags & libc::AI_NUMERICHOST != 0
        || is_numeric(node)
        || node.is_empty()
    {
        return Err(Plan::Real);
    }
    if hosts_answer(node, hints) {
        log_at!(
            Debug,
            "resolve {node}: in /etc/hosts, left to the C library"
        );
        ev.local("hosts");
        return Err(Plan::Real);
    }
    if let Some(p) = loopback_answer(node, hints) {
        log_at!(Debug, "resolve {node}: a loopback name, answered locally");
        ev.local("loopback");
        return Err(p);
    }
    name::host_name(node.as_bytes()).ok_or_else(|| {
        log_at!(Info, "resolve {node}: not a valid host name -> EAI_NONAME");
        ev.local("syntax");
        Plan::Fail(libc::EAI_NONAME)
    })
}

/// The interface the policy resolves `node` over, its state and its addresses; `Err`:
/// the plan of a name that goes direct or is blocked. Only the decision is taken on the
/// snapshot: a lookup that a signal handler leaves by siglongjmp must not leave a
/// snapshot reader count behind.
fn route_name(
    profile: &'static Profile,
    node: &str,
    ev: &mut crate::events::Name,
) -> Result<(Bind<'static>, IfaceState, Vec<IpAddr>), Plan> {
    netstate::with(|snap| {
        let d = decide_name(profile, snap, node);
        ev.decided(d);
        let b = crate::lookup::name_route(node, d).map_err(Plan::from)?;
        let iface = snap.iface(&b.ifname).unwrap_or_default();
        let sources = snap.addrs_of(b.index);
        Ok((b, iface, sources))
    })
}

impl From<Unbound> for Plan {
    fn from(u: Unbound) -> Plan {
        match u {
            Unbound::Real => Plan::Real,
            Unbound::Fail(code) => Plan::Fail(code),
        }
    }
}

/// The record types to ask for: what `hints` want of what the interface has (a
/// link-local IPv6 address alone reaches no global destination: no AAAA). `Err`: none
/// (`EAI_ADDRFAMILY`).
fn query_types(
    node: &str,
    iface: &IfaceState,
    hints: &Hints,
    b: &Bind<'_>,
) -> Result<Vec<QType>, Plan> {
    let mut want = Vec::with_capacity(2);
    if iface.has_v6 && hints.family != libc::AF_INET {
        want.push(QType::Aaaa);
    }
    if iface.has_v4 && (hints.family != libc::AF_INET6 || hints.v4_mapped()) {
        want.push(QType::A);
    }
    if want.is_empty() {
        log_at!(
            Info,
            "resolve {node}: {} has no address of the family asked for -> EAI_ADDRFAMILY",
            b.ifname
        );
        return Err(Plan::Fail(EAI_ADDRFAMILY));
    }
    Ok(want)
}

impl Hints {
    /// `AF_INET6` with `AI_V4MAPPED`: IPv4 answers are wanted too, as mapped addresses.
    fn v4_mapped(&self) -> bool {
        self.family == libc::AF_INET6 && self.flags & libc::AI_V4MAPPED != 0
    }
}

/// Who answers a name the shim resolves.
#[derive(Clone, Copy)]
enum Asker {
    /// Nobody: this host's own name.
    OwnName,
    /// systemd-resolved, over the interface.
    Resolved,
    /// The interface's servers, through the shim's stub resolver.
    Servers,
}

/// One name being resolved over an interface.
struct Lookup<'a> {
    profile: &'static Profile,
    node: &'a str,
    host: &'a name::HostName,
    b: Bind<'static>,
    /// The interface's addresses.
    sources: Vec<IpAddr>,
    want: Vec<QType>,
    rc: conf::ResolvConf,
}

/// This host's own name, missing from /etc/hosts: the chosen interface's addresses
/// (what nss-myhostname would answer), never a query.
fn own_name_answer(l: &Lookup<'_>) -> resolve::Outcome {
    log_at!(
        Info,
        "resolve {}: this host's name, answered with {}'s addresses",
        l.node,
        l.b.ifname
    );
    let addrs: Vec<IpAddr> = l
        .sources
        .iter()
        .copied()
        .filter(|a| !matches!(a, IpAddr::V6(v6) if v6.is_unicast_link_local()))
        .collect();
    if addrs.is_empty() {
        resolve::Outcome::NoData
    } else {
        resolve::Outcome::Found {
            addrs,
            canon: l.node.to_owned(),
        }
    }
}

/// Asks systemd-resolved over the interface (with the policy's search list for it,
/// expanded here: resolved would apply the link's own domains).
fn ask_resolved(l: &Lookup<'_>) -> resolve::Outcome {
    let (profile, node, b) = (l.profile, l.node, &l.b);
    let family = match (l.want.contains(&QType::A), l.want.contains(&QType::Aaaa)) {
        (true, false) => libc::AF_INET,
        (false, true) => libc::AF_INET6,
        _ => libc::AF_UNSPEC,
    };
    log_at!(
        Info,
        "resolve {node} over {} ({}) through systemd-resolved (link {})",
        b.ifname,
        why_text(&b.why),
        b.index
    );
    let budget = profile.dns.timeout_ms as u64 * (1 << profile.dns.attempts.min(4)) as u64;
    let ask = |name: &str| {
        resolved::resolve(
            name,
            family,
            b.index,
            std::time::Duration::from_millis(budget.min(30_000)),
        )
    };
    match profile.search_domains(&b.ifname) {
        Some(search) if !l.host.absolute => {
            let mut last = resolve::Outcome::NoName;
            for cand in resolve::candidates(node, search, l.rc.ndots) {
                last = ask(&cand);
                if !matches!(last, resolve::Outcome::NoName) {
                    break;
                }
            }
            last
        }
        _ => ask(node),
    }
}

/// Asks the interface's `servers` (from `source`) through the stub resolver; `Err`:
/// there are none (`EAI_AGAIN`).
fn ask_servers(
    l: &Lookup<'_>,
    servers: &[SocketAddr],
    source: &str,
) -> Result<resolve::Outcome, Plan> {
    let (node, b) = (l.node, &l.b);
    if servers.is_empty() {
        log::warn_limited(format_args!(
            "resolve {node}: no DNS server known for {} (the system's are loopback); set [interfaces.{}] dns or mifrun --dns -> EAI_AGAIN",
            b.ifname, b.ifname
        ));
        return Err(Plan::Fail(libc::EAI_AGAIN));
    }
    log_at!(
        Info,
        "resolve {node} over {} ({}) with {} from {source}",
        b.ifname,
        why_text(&b.why),
        Servers(servers)
    );
    let plan = stub_plan(l.profile, b, servers);
    let names = if l.host.absolute {
        vec![node.to_owned()]
    } else {
        resolve::candidates(node, search_list(l.profile, &b.ifname, &l.rc), l.rc.ndots)
    };
    Ok(resolve::lookup(&plan, &names, &l.want))
}

/// The lookup's plan from its outcome; `asked`: who was asked, for the warning when
/// nobody answered.
fn answer(
    l: &Lookup<'_>,
    hints: &Hints,
    outcome: resolve::Outcome,
    asked: impl FnOnce() -> String,
) -> Plan {
    let node = l.node;
    match outcome {
        resolve::Outcome::Found { addrs, canon } => found(l, hints, &addrs, canon),
        resolve::Outcome::NoName => {
            log_at!(Info, "resolve {node}: no such name -> EAI_NONAME");
            Plan::Fail(libc::EAI_NONAME)
        }
        resolve::Outcome::NoData => {
            log_at!(Info, "resolve {node}: no address record -> EAI_NODATA");
            Plan::Fail(libc::EAI_NODATA)
        }
        resolve::Outcome::Again => {
            log::warn_limited(format_args!(
                "resolve {node}: no answer from {} over {} -> EAI_AGAIN",
                asked(),
                l.b.ifname
            ));
            Plan::Fail(libc::EAI_AGAIN)
        }
    }
}

/// The answer's addresses sorted for the interface and filtered for `hints`
/// (`AI_V4MAPPED`: IPv4 ones only when there is no IPv6 one, or `AI_ALL`), learned
/// for the name rule that chose the interface.
fn found(l: &Lookup<'_>, hints: &Hints, addrs: &[IpAddr], canon: String) -> Plan {
    let (node, b) = (l.node, &l.b);
    let mut sorted = sort::sort_for_interface(addrs, &l.sources);
    if hints.family == libc::AF_INET {
        sorted.retain(IpAddr::is_ipv4);
    }
    if hints.family == libc::AF_INET6 {
        let any6 = sorted.iter().any(IpAddr::is_ipv6);
        let all = hints.flags & libc::AI_ALL != 0;
        let mapped = hints.v4_mapped();
        sorted.retain(|a| a.is_ipv6() || (mapped && (all || !any6)));
    }
    if sorted.is_empty() {
        log_at!(
            Info,
            "resolve {node}: no answer usable on {} -> EAI_NODATA",
            b.ifname
        );
        return Plan::Fail(libc::EAI_NODATA);
    }
    crate::learned::remember_answer(l.profile, &b.why, &sorted);
    log_at!(
        Info,
        "resolve {node} -> {} over {}",
        Addrs(&sorted),
        b.ifname
    );
    let canon = if canon.is_empty() {
        node.to_owned()
    } else {
        canon
    };
    Plan::Answer {
        addrs: sorted,
        canon,
    }
}

/// How `getnameinfo` fills in the host name.
#[derive(Debug)]
pub(crate) enum NamePlan {
    /// Leave the whole call to the C library.
    Real,
    /// Fail with this `EAI_*` code.
    Fail(i32),
    /// The numeric form (no name found, `NI_NAMEREQD` not set).
    Numeric,
    /// This name.
    Name(String),
}

/// Decides how `getnameinfo` (and `gethostbyaddr`) answers for `ip`: from /etc/hosts,
/// in numeric form for loopback, or by a reverse (PTR) lookup over the interface the
/// address would be reached by (names' interface for this host's own addresses),
/// from that interface's servers.
pub(crate) fn getnameinfo(ip: IpAddr, flags: i32) -> NamePlan {
    let profile = match state::mode() {
        Mode::Inert => return NamePlan::Real,
        Mode::Active(p) => p,
    };
    let ip = ip.to_canonical();
    if !profile.dns.steer || flags & libc::NI_NUMERICHOST != 0 {
        return NamePlan::Real;
    }
    let rc = conf::resolv_conf();
    let b = match reverse_route(profile, ip, flags, &rc) {
        Ok(b) => b,
        Err(plan) => return plan,
    };
    let (servers, source) = servers_for(profile, b.ifname, b.index, &rc);
    if servers.is_empty() {
        log::warn_limited(format_args!(
            "reverse lookup of {ip}: no DNS server known for {} -> EAI_AGAIN",
            b.ifname
        ));
        return NamePlan::Fail(libc::EAI_AGAIN);
    }
    log_at!(
        Info,
        "reverse lookup of {ip} over {} with {} from {source}",
        b.ifname,
        Servers(&servers)
    );
    match resolve::reverse(&stub_plan(profile, &b, &servers), ip) {
        resolve::Outcome::Found { canon, .. } => NamePlan::Name(shorten(canon, flags, &rc)),
        resolve::Outcome::Again => NamePlan::Fail(libc::EAI_AGAIN),
        _ => no_name(flags, libc::EAI_NONAME),
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

/// `name` without the first search domain, with `NI_NOFQDN`.
fn shorten(mut name: String, flags: i32, rc: &conf::ResolvConf) -> String {
    if flags & libc::NI_NOFQDN != 0 {
        if let Some(d) = rc.search.first() {
            if let Some(short) = name.strip_suffix(&format!(".{d}")) {
                name = short.to_owned();
            }
        }
    }
    name
}

/// The interface a reverse lookup of `ip` goes over (the shared decision,
/// `lookup::reverse_route`, after /etc/hosts); `Err`: the answer without one
/// (/etc/hosts, loopback, the policy's direct or block).
fn reverse_route(
    profile: &'static Profile,
    ip: IpAddr,
    flags: i32,
    rc: &conf::ResolvConf,
) -> Result<Bind<'static>, NamePlan> {
    let hosts_name = conf::hosts_name_of(&conf::hosts_text(), ip);
    match crate::lookup::reverse_route(profile, ip, hosts_name) {
        Reverse::Hosts(n) => Err(NamePlan::Name(shorten(n, flags, rc))),
        Reverse::NoName => Err(no_name(flags, libc::EAI_NONAME)),
        Reverse::Real => Err(NamePlan::Real),
        Reverse::Query(b) => Ok(b),
    }
}

/// With `[dns] redirect = true`: where a DNS query a program sends itself to one of
/// the system's servers (port 53, an address from /etc/resolv.conf, loopback stubs
/// included) goes instead: the first server of the chosen interface with the
/// socket's family (`v6_socket`: any family, IPv4 as mapped).
#[inline]
pub(crate) fn redirect_target(
    profile: &Profile,
    dest: SocketAddr,
    v6_socket: bool,
) -> Option<SocketAddr> {
    if !profile.dns.redirect || dest.port() != 53 {
        return None;
    }
    // On a socket hook's path: the configuration files are read (and their contents
    // allocated) with cancellation off and signals blocked, so that neither a forced
    // unwind nor a handler's siglongjmp can leave from inside them (a jump out of
    // malloc corrupts the heap).
    crate::sys::with_signals_blocked(|| {
        crate::sys::no_cancel(|| redirect_to(profile, dest, v6_socket))
    })
}

fn redirect_to(profile: &Profile, dest: SocketAddr, v6_socket: bool) -> Option<SocketAddr> {
    let ip = dest.ip().to_canonical();
    let rc = conf::resolv_conf();
    if !rc.nameservers.iter().any(|s| s.ip() == ip) {
        return None;
    }
    netstate::with(|snap| match decide_name(profile, snap, ".") {
        Decision::Bind(b) => {
            let (servers, _) = servers_for(profile, b.ifname, b.index, &rc);
            servers
                .into_iter()
                .find(|s| v6_socket || s.is_ipv4())
                .filter(|s| s.ip() != ip)
        }
        _ => None,
    })
}

/// How the stub resolver asks `servers` over the interface `b` chose.
fn stub_plan<'a>(profile: &Profile, b: &Bind<'_>, servers: &'a [SocketAddr]) -> resolve::Plan<'a> {
    // A name rule's own mark, else the profile's.
    let options = match b.why {
        Why::Rule(r) => r.options.or(profile.options),
        Why::Default => profile.options,
    };
    resolve::Plan {
        ifindex: b.index,
        ifname: b.ifname,
        servers,
        timeout_ms: profile.dns.timeout_ms as u64,
        attempts: profile.dns.attempts,
        mark: options.mark.filter(|m| *m != 0),
        mark_required: profile.on_mark_denied == config_schema::OnMarkDenied::Block,
    }
}

/// The DNS servers for interface `name` and where they came from (the order is
/// config-schema's `sysdns::servers_for`, which `mifrun status` shows too).
fn servers_for(
    profile: &Profile,
    name: IfName,
    index: u32,
    rc: &conf::ResolvConf,
) -> (Vec<SocketAddr>, &'static str) {
    let overrides = state::dns_override();
    config_schema::sysdns::servers_for(
        overrides,
        profile,
        &name,
        || conf::link_servers(index, name.as_str()),
        rc,
    )
}

fn why_text(w: &Why<'_>) -> String {
    match w {
        Why::Default => "default".into(),
        Why::Rule(r) => r.label.clone(),
    }
}

struct Servers<'a>(&'a [SocketAddr]);

impl std::fmt::Display for Servers<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if s.port() == 53 {
                write!(f, "{}", s.ip())?
            } else {
                write!(f, "{s}")?
            }
        }
        Ok(())
    }
}

struct Addrs<'a>(&'a [IpAddr]);

impl std::fmt::Display for Addrs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_are_answered_locally() {
        let h = |family| Hints { family, flags: 0 };
        let addrs = |p: Option<Plan>| match p {
            Some(Plan::Answer { addrs, .. }) => addrs.iter().map(|a| a.to_string()).collect(),
            other => panic!("{other:?}"),
        };
        let v: Vec<String> = addrs(loopback_answer("localhost", &h(libc::AF_UNSPEC)));
        assert_eq!(v, ["::1", "127.0.0.1"]);
        let v: Vec<String> = addrs(loopback_answer("a.LOCALHOST.", &h(libc::AF_INET)));
        assert_eq!(v, ["127.0.0.1"]);
        assert!(loopback_answer("localhost.example", &h(libc::AF_INET)).is_none());
        assert!(loopback_answer("printer.local", &h(libc::AF_INET)).is_none());
    }

    #[test]
    fn numeric_hosts_are_recognised() {
        for n in [
            "203.0.113.10",
            "2001:db8::1",
            "fe80::1%eth0",
            "127.1",
            "0x7f.1",
            "3232235777",
        ] {
            assert!(is_numeric(n), "{n}");
        }
        for n in [
            "example.org",
            "db1",
            "a1.example",
            "cafe",
            "x.0",
            "1ab.cafe",
            "1.ca",
            "2fa.be",
            "eth0%1",
        ] {
            assert!(!is_numeric(n), "{n}");
        }
    }
}
