//! What to do with one trapped call, without I/O. The decision is config-schema's
//! [`decide`](config_schema::decide) (the preload's), mapped by socket-core's [`verdict`]; the per-socket
//! transitions are socket-core's [`connect`](socket_core::connect) and
//! [`datagram`](socket_core::datagram) over a [`Sock`] built from what the kernel says
//! about the program's socket right now (its device binding and unicast interfaces
//! are asked at every trapped call: a socket can be shared, inherited or disconnected
//! behind the supervisor's back), plus what only the supervisor knows, kept per
//! socket by its cookie: who set a unicast interface ([`Facts::app_uc4`]).

use std::net::{IpAddr, SocketAddr};

use config_schema::{
    AddrFamily, Applied, BindAddr, Decision, Flow, IfName, IfaceState, Listen, NetView, Op,
    Profile, Proto,
};
use mifshim_listen_filter::Sources;
use mifshim_socket_core as socket_core;
pub use socket_core::membership::JoinStep;
use socket_core::{
    APP_BOUND, APP_UC4, APP_UC6, BindStep, ConnectStep, Current, DatagramStep, OptionsPlan, Path,
    Refusal, SHARED, SHIM_BOUND, SHIM_OPTS, SRC_ADDR, Sock, UC4, UC6, Verdict, verdict,
};

/// `ECONNREFUSED` (Linux's value).
pub const ECONNREFUSED: i32 = 111;
/// `EINVAL`.
pub const EINVAL: i32 = 22;
/// `ENETUNREACH`.
pub const ENETUNREACH: i32 = 101;

/// The interfaces and addresses of this network namespace, as the preload's snapshot
/// sees them (mifrun fills it from rtnetlink with config-schema's rules).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub ifaces: Vec<(String, IfaceState)>,
    /// Every address of the host and the index of the interface that holds it.
    pub addrs: Vec<(IpAddr, u32)>,
    /// The on-link prefixes (interface index, address, length) a confined TCP
    /// listener admits from that interface (the shim's `onlink_of`).
    pub onlink: Vec<(u32, IpAddr, u8)>,
    /// The loopback interface's index.
    pub loopback: u32,
    /// The addresses that can be a source (interface index, address), in the
    /// kernel's order (an interface's primary IPv4 address first): not a tentative
    /// or failed-DAD IPv6 one, nor a host-scoped one (config-schema's
    /// `sysdns::address_kind`, the preload snapshot's `source_ok`).
    pub sources: Vec<(u32, IpAddr)>,
}

impl NetView for Snapshot {
    fn iface(&self, name: &IfName) -> Option<IfaceState> {
        self.ifaces
            .iter()
            .find(|(n, _)| n == name.as_str())
            .map(|(_, s)| *s)
    }
    fn is_local(&self, ip: IpAddr) -> bool {
        self.addrs.iter().any(|(a, _)| *a == ip)
    }
    fn owns(&self, index: u32, ip: IpAddr) -> bool {
        self.sources.contains(&(index, ip))
    }
    fn address_of(&self, index: u32, family: AddrFamily) -> Option<IpAddr> {
        self.sources
            .iter()
            .filter(|(i, _)| *i == index)
            .map(|(_, ip)| *ip)
            .find(|ip| match (ip, family) {
                (IpAddr::V4(_), AddrFamily::V4) => true,
                (IpAddr::V6(v6), AddrFamily::V6) => !v6.is_unicast_link_local(),
                _ => false,
            })
    }
}

impl Snapshot {
    /// The interface a PKTINFO (or binding) of a local destination must name: its own
    /// interface for the host's addresses, loopback otherwise.
    pub fn local_via(&self, dest: IpAddr) -> u32 {
        let dest = dest.to_canonical();
        self.addrs
            .iter()
            .find(|(a, _)| *a == dest)
            .map_or(self.loopback, |(_, i)| *i)
    }
    /// The on-link prefixes of interface `index`, each once (what a confined TCP
    /// listener admits from it).
    pub fn onlink_of(&self, index: u32) -> Vec<(IpAddr, u8)> {
        let mut out: Vec<(IpAddr, u8)> = Vec::new();
        for (i, ip, len) in &self.onlink {
            if *i == index && !out.contains(&(*ip, *len)) {
                out.push((*ip, *len));
            }
        }
        out
    }
    pub fn name_of(&self, index: u32) -> String {
        self.ifaces
            .iter()
            .find(|(_, s)| s.index == index)
            .map_or_else(|| format!("#{index}"), |(n, _)| n.clone())
    }
}

/// What the kernel says about the program's socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facts {
    /// `AF_INET` / `AF_INET6` (`None`: another family, not steered).
    pub family: Option<AddrFamily>,
    pub proto: Proto,
    /// `SOCK_STREAM` (a send with an address is a TCP Fast Open connect).
    pub stream: bool,
    /// `SO_BINDTOIFINDEX` (0: not bound to a device).
    pub bound: i32,
    /// `IP_UNICAST_IF` and `IPV6_UNICAST_IF` (host order).
    pub uc4: u32,
    pub uc6: u32,
    /// `O_NONBLOCK` on the open file.
    pub nonblock: bool,
    /// The program set `IP_UNICAST_IF` / `IPV6_UNICAST_IF` itself (the supervisor's
    /// per-socket state, keyed by the socket's cookie: the kernel cannot say who set
    /// an option): its choice wins for that path, as under the preload.
    pub app_uc4: bool,
    pub app_uc6: bool,
    /// A socket bound to a specific local address (the program's bind, the
    /// policy's source, as `getsockname` says now): socket-core's `SRC_ADDR`.
    pub src_addr: bool,
    /// That address ([`src_addr`](Facts::src_addr)), and the interface that has it
    /// (the snapshot's sources; `None`: none has it): what socket-core's
    /// [`steer_refusal`](socket_core::steer_refusal) checks against a steered
    /// destination's interface.
    pub local: Option<IpAddr>,
    pub local_owner: Option<u32>,
    /// The policy keeps binds to other interfaces' addresses (`foreign_bind =
    /// "keep"`).
    pub keep_foreign: bool,
    /// The supervisor set the policy's options on this socket (per-socket state by
    /// cookie): socket-core's `SHIM_OPTS`, done once per socket.
    pub opts: bool,
    /// The device binding is the supervisor's, made for a steered destination of
    /// this (unconnected UDP) socket (per-socket state by cookie): socket-core's
    /// `SHIM_BOUND`, which refuses destinations steered elsewhere, not the
    /// program's own binding.
    pub shim_bound: bool,
    /// The program chose the socket's multicast interface itself
    /// (`IP_MULTICAST_IF` / `IPV6_MULTICAST_IF`, remembered by cookie, or found set
    /// on a socket the supervisor did not set it on): its choice wins, as under the
    /// preload (`APP_MCAST_IF`).
    pub app_mcast_if: bool,
}

impl Facts {
    /// A socket of this family and transport with nothing set.
    pub fn of(family: Option<AddrFamily>, proto: Proto) -> Facts {
        Facts {
            family,
            proto,
            stream: proto == Proto::Tcp,
            bound: 0,
            uc4: 0,
            uc6: 0,
            nonblock: false,
            app_uc4: false,
            app_uc6: false,
            src_addr: false,
            opts: false,
            shim_bound: false,
            app_mcast_if: false,
            local: None,
            local_owner: None,
            keep_foreign: false,
        }
    }
}

/// The options a destination goes by: IPv4 (and IPv4-mapped) or native IPv6.
pub fn path_of(dest: IpAddr) -> Path {
    match dest.to_canonical() {
        IpAddr::V4(_) => Path::V4,
        IpAddr::V6(_) => Path::V6,
    }
}

/// The socket-core entry for what the kernel says, for a datagram on `path`. A device
/// binding next to a unicast interface of another index is one this supervisor (or
/// the preload) made for a direct destination (`SHIM_DIRECT`, socket-core's
/// `probed` rule); the supervisor is the socket's only steerer, so not [`SHARED`].
pub fn sock(f: &Facts, path: Path) -> Sock {
    let other_uc = if f.uc4 != 0 { f.uc4 } else { f.uc6 };
    let mut s = socket_core::probed(f.family, f.proto, f.bound, other_uc);
    s.flags &= !SHARED;
    if f.shim_bound && f.bound != 0 && s.has(APP_BOUND) {
        s.flags = s.flags & !APP_BOUND | SHIM_BOUND;
    }
    if f.src_addr {
        s.flags |= SRC_ADDR;
    }
    if f.opts {
        s.flags |= SHIM_OPTS;
    }
    if f.uc4 != 0 {
        s.flags |= if f.app_uc4 { APP_UC4 } else { UC4 };
    }
    if f.uc6 != 0 {
        s.flags |= if f.app_uc6 { APP_UC6 } else { UC6 };
    }
    s.uc_index = match path {
        Path::V4 => f.uc4,
        Path::V6 => f.uc6,
    };
    s
}

/// What the supervisor does for one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Let the call run as the program made it.
    Continue,
    /// Fail it; nothing is sent.
    Fail(i32),
    /// Bind the socket to this device (`SO_BINDTOIFINDEX`), then continue.
    Bind { index: u32 },
    /// Confine a listener to this interface and loopback with the socket filter of
    /// `mifshim-listen-filter` (`listen = "interface"`), then continue.
    Filter { index: u32 },
    /// Bind to the interface the routing table sends the destination through.
    BindRoute,
    /// Set the multicast interface, then continue.
    MulticastIf { index: u32 },
    /// Set `IP(V6)_UNICAST_IF` for the path, then continue (later datagrams to
    /// destinations steered the same way need no work).
    Unicast { path: Path, index: u32 },
    /// The supervisor sends the datagram itself with a PKTINFO naming `ifindex` (a
    /// destination that must not follow the socket's unicast interface) and returns
    /// the result.
    SendPktinfo { ifindex: u32 },
    /// The same with the interface of the route to the destination.
    SendPktinfoRoute,
}

/// The flow `decide` is asked about.
pub fn flow(f: &Facts, op: Op, dest: SocketAddr, scope_id: u32) -> Flow {
    Flow {
        proto: f.proto,
        op,
        dest: dest.ip(),
        port: dest.port(),
        scope_id,
    }
}

/// The socket-core verdict for a destination.
pub fn verdict_for(profile: &Profile, net: &Snapshot, fl: &Flow) -> (Verdict, String) {
    let d = config_schema::decide(profile, net, fl);
    verdict_of(&d, net, fl)
}

/// The socket-core verdict of decision `d` for flow `fl`, and the decision in words.
pub fn verdict_of(d: &Decision<'_>, net: &Snapshot, fl: &Flow) -> (Verdict, String) {
    (verdict(d, || net.local_via(fl.dest)), describe(d))
}

/// The events fields of a socket the program bound to a device itself (its choice
/// wins; the preload writes the same).
pub fn program_bound_fields() -> config_schema::events::Fields<'static> {
    config_schema::events::Fields {
        decision: "direct",
        interface: None,
        reason: "program-bound",
        rule: None,
        skipped: 0,
        multicast: false,
        errno: None,
    }
}

/// Whether a socket found bound to device `bound` (0: none) at a decision `d` was
/// bound by the program (not by a supervisor or preload decision for the same
/// interface).
pub fn program_bound(bound: i32, d: &Decision<'_>) -> bool {
    match d {
        _ if bound == 0 => false,
        Decision::Bind(b) => b.index != bound as u32,
        _ => true,
    }
}

fn describe(d: &Decision<'_>) -> String {
    match d {
        Decision::Bind(b) => format!("via {}", b.ifname),
        Decision::Direct(r) => format!("direct ({r:?})")
            .replace("Rule(", "rule(")
            .chars()
            .take(60)
            .collect(),
        Decision::Block(b) => format!("blocked ({:?})", b.errno),
    }
}

/// The socket's own binding against a steered destination: socket-core's
/// [`steer_refusal`](socket_core::steer_refusal) (the preload's check), over what the
/// kernel said.
pub fn refusal(f: &Facts, s: Sock, v: Verdict) -> Option<Refusal> {
    socket_core::steer_refusal(
        s,
        v,
        || f.bound,
        || f.local,
        |index, _| f.local_owner == Some(index),
        f.keep_foreign,
    )
}

/// A `connect` (or a TCP Fast Open send).
pub fn on_connect(f: &Facts, v: Verdict) -> Step {
    if f.app_mcast_if && matches!(v, Verdict::SteerMulticast { .. }) {
        // The program chose the multicast interface: left alone.
        return Step::Continue;
    }
    let s = sock(f, Path::V4);
    if let Some(r) = refusal(f, s, v) {
        return Step::Fail(r.errno());
    }
    match socket_core::connect(s, v) {
        ConnectStep::AsIs => Step::Continue,
        ConnectStep::Fail(e) => Step::Fail(e),
        ConnectStep::BindDevice { index } => Step::Bind { index },
        ConnectStep::BindRoute => Step::BindRoute,
        ConnectStep::MulticastIf { index } => Step::MulticastIf { index },
    }
}

/// A wildcard listener (`listen`, or a UDP server's `bind` to a fixed port): confined
/// by the socket filter under `listen = "interface"` (loopback stays open), by the
/// device binding under `listen = "device"`; `listen = "any"` decides `direct`.
pub fn on_listen(listen: Listen, v: Verdict) -> Step {
    match v {
        Verdict::Steer { index } if listen == Listen::Interface => Step::Filter { index },
        Verdict::Steer { index } => Step::Bind { index },
        Verdict::Refuse(e) => Step::Fail(e),
        _ => Step::Continue,
    }
}

/// The sources a confined listener admits from its interface: any for UDP (its
/// replies are steered per datagram), the interface's on-link prefixes for TCP (an
/// unbound listener's SYN-ACK follows the routing table; see `mifshim-listen-filter`).
pub fn filter_sources(proto: Proto, onlink: &[(IpAddr, u8)]) -> Sources<'_> {
    match proto {
        Proto::Udp => Sources::Any,
        _ => Sources::Prefixes(onlink),
    }
}

/// The options of a decision to bind (`config_schema::applied`: the policy's
/// `source`, `mark` and `dscp` on the chosen interface) when the decision carries
/// them: unicast, with options configured. `None`: nothing to set.
pub fn applied(profile: &Profile, net: &Snapshot, d: &Decision<'_>) -> Option<(Applied, IfName)> {
    match d {
        Decision::Bind(b) if b.options && !b.multicast => {
            let a = config_schema::applied(profile, net, b);
            (!a.is_empty() || a.source_missing.is_some()).then_some((a, b.ifname))
        }
        _ => None,
    }
}

/// Whether a step carries the socket to a steered destination's interface, so that
/// the decision's options are set first (the preload sets them before a connect's
/// device binding and before a datagram's PKTINFO, promotion or device binding).
pub fn takes_options(step: Step) -> bool {
    matches!(
        step,
        Step::Bind { .. } | Step::Unicast { .. } | Step::SendPktinfo { .. }
    )
}

/// The options socket-core's [`options`](socket_core::options) sets on the socket
/// for a destination `dest`, given what the kernel says it carries (`now`): the
/// program's own TOS / mark win, a bound socket gets no source, a dual-stack
/// `AF_INET6` socket's datagram binds none.
pub fn options_plan(f: &Facts, dest: IpAddr, a: &Applied, now: Current) -> OptionsPlan {
    let path = path_of(dest);
    socket_core::options(sock(f, path), path, a, now)
}

/// A `bind` to an explicit address `requested`, by config-schema's
/// [`decide_bind`](config_schema::decide_bind) `d`: socket-core's
/// [`bind`](socket_core::bind) (a device the program bound itself keeps what it asks).
pub fn on_bind(f: &Facts, requested: IpAddr, d: &BindAddr<'_>) -> BindStep {
    socket_core::bind(sock(f, Path::V4), requested, d)
}

/// One datagram to `dest` on an unconnected socket.
pub fn on_datagram(f: &Facts, dest: IpAddr, v: Verdict) -> Step {
    if f.app_mcast_if && matches!(v, Verdict::SteerMulticast { .. }) {
        // The program chose the multicast interface: its datagrams follow it.
        return Step::Continue;
    }
    let path = path_of(dest);
    let s = sock(f, path);
    // A UDP socket this supervisor bound to a device for a steered destination (the
    // binding carries every datagram by that device), or one whose source is
    // loopback or another interface's: a destination steered elsewhere fails rather
    // than leave by the wrong link or with a source the link cannot answer.
    if let Some(r) = refusal(f, s, v) {
        return Step::Fail(r.errno());
    }
    // The supervisor has no memo: the first datagram to a steered destination promotes
    // (sets the unicast interface), which is one option set instead of a send per
    // datagram by the supervisor.
    let plan = socket_core::datagram(s, path, v, true, false);
    match plan.step {
        DatagramStep::AsIs => Step::Continue,
        DatagramStep::Fail(e) => Step::Fail(e),
        DatagramStep::Pktinfo { ifindex } => Step::SendPktinfo { ifindex },
        DatagramStep::PktinfoRoute => Step::SendPktinfoRoute,
        DatagramStep::Promote { index } => Step::Unicast { path, index },
        // A socket bound to a specific source address (socket-core's SRC_ADDR): bound
        // to the device, as a connect would be.
        DatagramStep::BindDevice { index } => Step::Bind { index },
    }
}

/// A multicast join or leave that names no interface, for a group of verdict `v`:
/// socket-core's [`membership::join`](socket_core::membership::join).
pub fn on_join(f: &Facts, v: Verdict) -> JoinStep {
    socket_core::membership::join(sock(f, Path::V4), v)
}

/// A destination that is a local DNS stub (`127.0.0.53:53`, `[::1]:53`): a static
/// program read it from `/etc/resolv.conf`, and the stub would ask by any link.
pub fn is_stub_dns(dest: SocketAddr, profile: &Profile) -> bool {
    dest.port() == 53 && dest.ip().to_canonical().is_loopback() && profile.dns.steer
}

/// What happens to a query for the local stub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StubDns {
    /// A connect the supervisor can make without blocking: bind to `index` and connect
    /// to `server` in the supervisor (the program then talks to the chosen
    /// interface's server over it; a connected socket does not check the reply's
    /// source).
    Redirect { index: u32, server: SocketAddr },
    /// Refused: names must not be answered by another link.
    Refuse,
}

/// Decides a query aimed at the local stub. The supervisor redirects it whatever
/// `[dns] redirect` says: the programs it runs (Go, musl, busybox) all have their own
/// resolver, and refusing would leave every one of them without names on a host whose
/// resolv.conf names systemd-resolved's stub. `connect`: a `connect` (else an
/// unconnected send, whose answer the program checks against the stub's address,
/// which the supervisor cannot disguise: refused). A blocking TCP connect would stall
/// the supervisor: refused. `servers`: the chosen interface's servers
/// (config-schema's `sysdns` order); an IPv6 socket may use an IPv4 one (mapped).
pub fn stub_dns(f: &Facts, connect: bool, bind: Option<u32>, servers: &[SocketAddr]) -> StubDns {
    let blocking_tcp = f.stream && !f.nonblock;
    let (Some(index), Some(family), true, false) = (bind, f.family, connect, blocking_tcp) else {
        return StubDns::Refuse;
    };
    let usable = |s: &&SocketAddr| !s.ip().is_loopback() && !s.ip().is_unspecified();
    let v4 = servers.iter().filter(usable).find(|s| s.is_ipv4());
    let v6 = servers.iter().filter(usable).find(|s| s.is_ipv6());
    let server = match family {
        AddrFamily::V4 => v4,
        AddrFamily::V6 => v6.or(v4),
    };
    match server {
        Some(server) => StubDns::Redirect {
            index,
            server: *server,
        },
        None => StubDns::Refuse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use config_schema::Policy;

    const LO: u32 = 1;
    const ETH: u32 = 2;
    const WLAN: u32 = 3;

    fn net() -> Snapshot {
        let up = |index, v6| IfaceState {
            index,
            up: true,
            has_v4: true,
            has_v6: v6,
            has_v6_link_local: true,
        };
        Snapshot {
            ifaces: vec![
                ("lo".into(), up(LO, true)),
                ("eth0".into(), up(ETH, true)),
                ("wlan0".into(), up(WLAN, true)),
            ],
            addrs: vec![
                ("127.0.0.1".parse().unwrap(), LO),
                ("::1".parse().unwrap(), LO),
                ("198.51.100.2".parse().unwrap(), ETH),
                ("198.51.100.66".parse().unwrap(), WLAN),
                ("2001:db8:20::2".parse().unwrap(), WLAN),
            ],
            onlink: vec![(WLAN, "198.51.100.66".parse().unwrap(), 26)],
            loopback: LO,
            sources: vec![
                (ETH, "198.51.100.2".parse().unwrap()),
                (WLAN, "198.51.100.66".parse().unwrap()),
                (WLAN, "198.51.100.67".parse().unwrap()),
                (WLAN, "fe80::66".parse().unwrap()),
                (WLAN, "2001:db8:20::2".parse().unwrap()),
            ],
        }
    }

    fn policy_profile(src: &str) -> Profile {
        config_schema::parse_policy(src, "t.toml")
            .unwrap_or_else(|e| panic!("{e:?}"))
            .policy
            .base
    }

    fn bind_decision<'p>(p: &'p Profile, f: &Facts, dest: &str) -> Decision<'p> {
        let d: SocketAddr = dest.parse().unwrap();
        config_schema::decide(p, &net(), &flow(f, Op::Connect, d, 0))
    }

    fn profile(via: &str) -> Profile {
        Policy::from_via(config_schema::parse_via_list(via, "--via").unwrap()).base
    }

    fn tcp4() -> Facts {
        Facts::of(Some(AddrFamily::V4), Proto::Tcp)
    }

    fn udp(v6: bool) -> Facts {
        Facts::of(
            Some(if v6 { AddrFamily::V6 } else { AddrFamily::V4 }),
            Proto::Udp,
        )
    }

    fn v(p: &Profile, f: &Facts, op: Op, dest: &str) -> Verdict {
        let d: SocketAddr = dest.parse().unwrap();
        verdict_for(p, &net(), &flow(f, op, d, 0)).0
    }

    #[test]
    fn connect_binds_a_steered_destination_and_leaves_exempt_ones() {
        let p = profile("wlan0");
        let f = tcp4();
        let steer = v(&p, &f, Op::Connect, "203.0.113.10:80");
        assert_eq!(on_connect(&f, steer), Step::Bind { index: WLAN });
        for exempt in ["127.0.0.1:80", "198.51.100.2:80", "[::ffff:127.0.0.1]:80"] {
            assert_eq!(
                on_connect(&f, v(&p, &f, Op::Connect, exempt)),
                Step::Continue,
                "{exempt}"
            );
        }
        // Already bound (by the program or an earlier connect): as is, never rebound
        // (a second SO_BINDTOIFINDEX is EPERM).
        let bound = Facts {
            bound: ETH as i32,
            ..f
        };
        assert_eq!(on_connect(&bound, steer), Step::Continue);
    }

    #[test]
    fn a_wildcard_listener_is_confined_by_the_filter_by_the_device_or_left_open() {
        let steer = Verdict::Steer { index: WLAN };
        assert_eq!(
            on_listen(Listen::Interface, steer),
            Step::Filter { index: WLAN }
        );
        assert_eq!(on_listen(Listen::Device, steer), Step::Bind { index: WLAN });
        assert_eq!(on_listen(Listen::Any, Verdict::Routed), Step::Continue);
        assert_eq!(
            on_listen(Listen::Interface, Verdict::Refuse(ENETUNREACH)),
            Step::Fail(ENETUNREACH)
        );
        let on = net().onlink_of(WLAN);
        assert_eq!(on, vec![("198.51.100.66".parse().unwrap(), 26)]);
        assert!(matches!(filter_sources(Proto::Udp, &on), Sources::Any));
        assert!(matches!(
            filter_sources(Proto::Tcp, &on),
            Sources::Prefixes(p) if p.len() == 1
        ));
        assert!(net().onlink_of(ETH).is_empty());
    }

    #[test]
    fn connect_blocks_with_the_decisions_errno_when_nothing_is_usable() {
        let p = profile("wwan9");
        let f = tcp4();
        assert_eq!(
            on_connect(&f, v(&p, &f, Op::Connect, "203.0.113.10:80")),
            Step::Fail(ENETUNREACH)
        );
    }

    #[test]
    fn a_udp_socket_carrying_a_unicast_interface_connecting_to_loopback_is_bound_there() {
        let p = profile("wlan0");
        let f = Facts {
            uc4: WLAN,
            ..udp(false)
        };
        assert_eq!(
            on_connect(&f, v(&p, &f, Op::Connect, "127.0.0.1:53")),
            Step::Bind { index: LO }
        );
    }

    #[test]
    fn datagrams_promote_once_then_continue_and_exempt_ones_get_pktinfo() {
        let p = profile("wlan0");
        let f = udp(false);
        let steer = v(&p, &f, Op::Send, "203.0.113.10:9000");
        assert_eq!(
            on_datagram(&f, "203.0.113.10".parse().unwrap(), steer),
            Step::Unicast {
                path: Path::V4,
                index: WLAN
            }
        );
        let promoted = Facts { uc4: WLAN, ..f };
        assert_eq!(
            on_datagram(&promoted, "203.0.113.10".parse().unwrap(), steer),
            Step::Continue
        );
        // Loopback on a socket without a unicast interface: as is; with one: PKTINFO.
        let lo = v(&p, &f, Op::Send, "127.0.0.1:9000");
        assert_eq!(
            on_datagram(&f, "127.0.0.1".parse().unwrap(), lo),
            Step::Continue
        );
        assert_eq!(
            on_datagram(&promoted, "127.0.0.1".parse().unwrap(), lo),
            Step::SendPktinfo { ifindex: LO }
        );
        // The host's own IPv6 address goes by its own interface.
        let f6 = Facts {
            uc6: WLAN,
            ..udp(true)
        };
        let own = v(&p, &f6, Op::Send, "[2001:db8:20::2]:9000");
        assert_eq!(
            on_datagram(&f6, "2001:db8:20::2".parse().unwrap(), own),
            Step::SendPktinfo { ifindex: WLAN }
        );
    }

    #[test]
    fn a_unicast_interface_the_program_set_itself_wins() {
        let p = profile("wlan0");
        let f = Facts {
            uc4: ETH,
            app_uc4: true,
            ..udp(false)
        };
        let steer = v(&p, &f, Op::Send, "203.0.113.10:9000");
        assert_eq!(
            on_datagram(&f, "203.0.113.10".parse().unwrap(), steer),
            Step::Continue
        );
        // Set by the supervisor (or nobody knows who): another interface's datagram
        // gets its own PKTINFO.
        let ours = Facts {
            app_uc4: false,
            ..f
        };
        assert_eq!(
            on_datagram(&ours, "203.0.113.10".parse().unwrap(), steer),
            Step::SendPktinfo { ifindex: WLAN }
        );
    }

    #[test]
    fn ipv4_mapped_datagrams_go_by_the_ipv4_options() {
        let p = profile("wlan0");
        let f = udp(true);
        let d: IpAddr = "::ffff:203.0.113.10".parse().unwrap();
        let steer = v(&p, &f, Op::Send, "[::ffff:203.0.113.10]:9000");
        assert_eq!(
            on_datagram(&f, d, steer),
            Step::Unicast {
                path: Path::V4,
                index: WLAN
            }
        );
        assert_eq!(
            on_datagram(&Facts { uc4: WLAN, ..f }, d, steer),
            Step::Continue
        );
    }

    #[test]
    fn a_datagram_for_another_interface_than_the_sockets_own_is_sent_with_pktinfo() {
        let p = profile("eth0");
        let f = Facts {
            uc4: WLAN,
            ..udp(false)
        };
        let steer = v(&p, &f, Op::Send, "203.0.113.10:9000");
        assert_eq!(
            on_datagram(&f, "203.0.113.10".parse().unwrap(), steer),
            Step::SendPktinfo { ifindex: ETH }
        );
    }

    /// The supervisor sent every multicast datagram with a PKTINFO naming the chosen
    /// interface, also on a socket whose multicast interface the program chose
    /// itself (the preload leaves those alone); a join naming no interface left by
    /// the routing table's interface (its report on eth0).
    #[test]
    fn multicast_follows_the_programs_own_interface_and_joins_are_steered() {
        let p = profile("wlan0");
        let f = udp(false);
        let group: IpAddr = "239.1.2.3".parse().unwrap();
        let mc = v(&p, &f, Op::Send, "239.1.2.3:5000");
        assert_eq!(
            on_datagram(&f, group, mc),
            Step::SendPktinfo { ifindex: WLAN }
        );
        assert_eq!(on_connect(&f, mc), Step::MulticastIf { index: WLAN });
        let own = Facts {
            app_mcast_if: true,
            ..f
        };
        assert_eq!(on_datagram(&own, group, mc), Step::Continue);
        assert_eq!(on_connect(&own, mc), Step::Continue);
        // Unicast destinations are not the multicast interface's business.
        let steer = v(&p, &f, Op::Send, "203.0.113.10:9000");
        assert_eq!(
            on_datagram(&own, "203.0.113.10".parse().unwrap(), steer),
            Step::Unicast {
                path: Path::V4,
                index: WLAN
            }
        );
        let join = v(&p, &f, Op::Join, "239.1.2.3:0");
        assert_eq!(on_join(&f, join), JoinStep::Rewrite { index: WLAN });
        let bound = Facts {
            bound: ETH as i32,
            ..f
        };
        assert_eq!(on_join(&bound, join), JoinStep::AsIs, "its own device");
        let none = v(&profile("wwan9"), &f, Op::Join, "239.1.2.3:0");
        assert_eq!(on_join(&f, none), JoinStep::Fail(ENETUNREACH));
    }

    #[test]
    fn a_socket_bound_for_loopback_refuses_steered_datagrams() {
        let p = profile("wlan0");
        // Bound to lo by a connect while its unicast interface was wlan0.
        let f = Facts {
            bound: LO as i32,
            uc4: WLAN,
            ..udp(false)
        };
        let steer = v(&p, &f, Op::Send, "203.0.113.10:9000");
        assert_eq!(
            on_datagram(&f, "203.0.113.10".parse().unwrap(), steer),
            Step::Fail(EINVAL)
        );
    }

    #[test]
    fn the_loopback_dns_stub_is_redirected_when_the_supervisor_can_connect() {
        let p = profile("wlan0");
        let stub: SocketAddr = "127.0.0.53:53".parse().unwrap();
        assert!(is_stub_dns(stub, &p));
        assert!(is_stub_dns("[::1]:53".parse().unwrap(), &p));
        assert!(!is_stub_dns("127.0.0.1:80".parse().unwrap(), &p));
        assert!(!is_stub_dns("203.0.113.53:53".parse().unwrap(), &p));
        let mut off = p.clone();
        off.dns.steer = false;
        assert!(
            !is_stub_dns(stub, &off),
            "[dns] steer = false leaves it alone"
        );
        let v4: SocketAddr = "203.0.113.53:53".parse().unwrap();
        let v6: SocketAddr = "[2001:db8:ff::53]:53".parse().unwrap();
        let lo: SocketAddr = "127.0.0.53:53".parse().unwrap();
        let f = udp(false);
        let redirect = |server| StubDns::Redirect {
            index: WLAN,
            server,
        };
        assert_eq!(stub_dns(&f, true, Some(WLAN), &[lo, v6, v4]), redirect(v4));
        assert_eq!(
            stub_dns(&f, false, Some(WLAN), &[v4]),
            StubDns::Refuse,
            "an unconnected send cannot be redirected (the reply's source is checked)"
        );
        assert_eq!(
            stub_dns(&tcp4(), true, Some(WLAN), &[v4]),
            StubDns::Refuse,
            "a blocking TCP connect would stall the supervisor"
        );
        let nb = Facts {
            nonblock: true,
            ..tcp4()
        };
        assert_eq!(stub_dns(&nb, true, Some(WLAN), &[v4]), redirect(v4));
        assert_eq!(stub_dns(&f, true, Some(WLAN), &[v6]), StubDns::Refuse);
        let f6 = udp(true);
        assert_eq!(stub_dns(&f6, true, Some(WLAN), &[v4, v6]), redirect(v6));
        assert_eq!(stub_dns(&f6, true, Some(WLAN), &[v4]), redirect(v4));
        assert_eq!(stub_dns(&f, true, None, &[v4]), StubDns::Refuse);
        assert_eq!(stub_dns(&f, true, Some(WLAN), &[lo]), StubDns::Refuse);
    }

    #[test]
    fn the_snapshot_owns_its_source_addresses_and_names_the_kernels_default() {
        let n = net();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(n.owns(WLAN, ip("198.51.100.67")));
        assert!(!n.owns(ETH, ip("198.51.100.67")));
        assert_eq!(
            n.address_of(WLAN, AddrFamily::V4),
            Some(ip("198.51.100.66"))
        );
        // The first global IPv6 address, not the link-local one.
        assert_eq!(
            n.address_of(WLAN, AddrFamily::V6),
            Some(ip("2001:db8:20::2"))
        );
        assert_eq!(n.address_of(ETH, AddrFamily::V6), None);
    }

    #[test]
    fn a_steered_connect_gets_the_policys_source_mark_and_dscp_once() {
        let p = policy_profile(
            "via = [\"wlan0\"]\nmark = 0x10\ndscp = \"ef\"\nsource = \"198.51.100.67\"\n",
        );
        let f = tcp4();
        let d = bind_decision(&p, &f, "203.0.113.10:9000");
        let (a, ifname) = applied(&p, &net(), &d).expect("options");
        assert_eq!(ifname.as_str(), "wlan0");
        let dest: IpAddr = "203.0.113.10".parse().unwrap();
        let plan = options_plan(&f, dest, &a, Current::default());
        assert_eq!(plan.mark, Some(0x10));
        assert_eq!(plan.tos, Some((Path::V4, 46 << 2)));
        assert_eq!(plan.source, Some("198.51.100.67".parse().unwrap()));
        assert!(takes_options(on_connect(
            &f,
            v(&p, &f, Op::Connect, "203.0.113.10:9000")
        )));
        // The program's own mark and class win; a bound socket gets no source.
        let own = Current {
            tos: 40 << 2,
            mark: 7,
            locally_bound: true,
            ..Current::default()
        };
        assert!(options_plan(&f, dest, &a, own).is_empty());
        // Set once per socket.
        let done = Facts { opts: true, ..f };
        assert!(options_plan(&done, dest, &a, Current::default()).is_empty());
        // An IPv4-mapped datagram on a dual-stack AF_INET6 socket: both classes, no source.
        let f6 = udp(true);
        let mapped: IpAddr = "::ffff:203.0.113.10".parse().unwrap();
        let dual = Current {
            tos_other: Some(0),
            mapped_on_dual_stack: true,
            ..Current::default()
        };
        let plan = options_plan(&f6, mapped, &a, dual);
        assert_eq!(plan.tos, Some((Path::V4, 46 << 2)));
        assert_eq!(plan.tos_other, Some((Path::V6, 46 << 2)));
        assert_eq!(plan.source, None);
    }

    #[test]
    fn options_are_not_applied_to_direct_multicast_or_optionless_decisions() {
        let p = policy_profile(
            "via = [\"wlan0\"]\nsource = \"198.51.100.2\"\n\n[[rules]]\nto = [\"192.0.2.0/24\"]\naction = \"direct\"\n",
        );
        let f = udp(false);
        // eth0's address is not wlan0's: the decision says it is missing.
        let d = bind_decision(&p, &f, "203.0.113.10:9000");
        let (a, _) = applied(&p, &net(), &d).expect("a missing source is said");
        assert_eq!(a.source, None);
        assert_eq!(a.source_missing, Some("198.51.100.2".parse().unwrap()));
        assert!(applied(&p, &net(), &bind_decision(&p, &f, "192.0.2.7:9000")).is_none());
        assert!(applied(&p, &net(), &bind_decision(&p, &f, "239.1.2.3:5000")).is_none());
        let plain = profile("wlan0");
        assert!(applied(&plain, &net(), &bind_decision(&plain, &f, "203.0.113.10:1")).is_none());
        assert!(!takes_options(Step::Continue));
        assert!(!takes_options(Step::Fail(ENETUNREACH)));
    }

    #[test]
    fn a_bind_to_another_interfaces_address_is_rewritten_to_the_chosen_ones() {
        let p = profile("wlan0");
        let f = udp(false);
        let eth: IpAddr = "198.51.100.2".parse().unwrap();
        let d = config_schema::decide_bind(&p, &net(), eth, 0);
        assert_eq!(
            on_bind(&f, eth, &d),
            BindStep::Rewrite("198.51.100.66".parse().unwrap())
        );
        // IPv4-mapped on an AF_INET6 socket: rewritten in the same form.
        let mapped: IpAddr = "::ffff:198.51.100.2".parse().unwrap();
        let d = config_schema::decide_bind(&p, &net(), mapped, 0);
        assert_eq!(
            on_bind(&udp(true), mapped, &d),
            BindStep::Rewrite("::ffff:198.51.100.66".parse().unwrap())
        );
        // The chosen interface's own address, and a device the program bound: as is.
        let own: IpAddr = "198.51.100.67".parse().unwrap();
        let d = config_schema::decide_bind(&p, &net(), own, 0);
        assert_eq!(on_bind(&f, own, &d), BindStep::AsIs);
        let d = config_schema::decide_bind(&p, &net(), eth, 0);
        let bound = Facts {
            bound: ETH as i32,
            ..f
        };
        assert_eq!(on_bind(&bound, eth, &d), BindStep::AsIs);
        // `source` on the chosen interface is the rewrite's address.
        let src = policy_profile("via = [\"wlan0\"]\nsource = \"198.51.100.67\"\n");
        let d = config_schema::decide_bind(&src, &net(), eth, 0);
        assert_eq!(on_bind(&f, eth, &d), BindStep::Rewrite(own));
        // foreign_bind = "keep".
        let keep = policy_profile("via = [\"wlan0\"]\nforeign_bind = \"keep\"\n");
        let d = config_schema::decide_bind(&keep, &net(), eth, 0);
        assert_eq!(on_bind(&f, eth, &d), BindStep::AsIs);
    }

    /// The supervisor ran neither of the preload's checks of a socket's own binding:
    /// a socket bound to loopback was bound to wlan0 and sent (IPv6 puts a
    /// `::1`-sourced packet on the link), one bound to wlan0's address sent by the
    /// interface a rule chose, and a UDP socket it had bound to wlan0 connected (by
    /// wlan0) to a destination a rule sends by eth0.
    #[test]
    fn a_loopback_or_foreign_source_and_a_device_bound_elsewhere_refuse_steered_destinations() {
        let p = profile("wlan0");
        for f in [tcp4(), udp(false), udp(true)] {
            let lo: IpAddr = if f.family == Some(AddrFamily::V6) && f.proto == Proto::Udp {
                "::1".parse().unwrap()
            } else {
                "127.0.0.1".parse().unwrap()
            };
            let bound_lo = Facts {
                src_addr: true,
                local: Some(lo),
                local_owner: Some(LO),
                ..f
            };
            let steer = v(&p, &f, Op::Connect, "203.0.113.10:9000");
            assert_eq!(on_connect(&bound_lo, steer), Step::Fail(EINVAL), "{f:?}");
            if f.proto == Proto::Udp {
                let dest: IpAddr = "203.0.113.10".parse().unwrap();
                assert_eq!(on_datagram(&bound_lo, dest, steer), Step::Fail(EINVAL));
                // Loopback itself still goes.
                let l = v(&p, &f, Op::Send, "127.0.0.1:9");
                assert_eq!(on_datagram(&bound_lo, lo, l), Step::Continue);
            }
        }
        // wlan0's address, a destination steered by eth0: EADDRNOTAVAIL, unless the
        // policy keeps foreign binds.
        let own = Facts {
            src_addr: true,
            local: Some("198.51.100.66".parse().unwrap()),
            local_owner: Some(WLAN),
            ..udp(false)
        };
        let by_eth = v(&profile("eth0"), &own, Op::Send, "203.0.113.10:9000");
        let dest: IpAddr = "203.0.113.10".parse().unwrap();
        assert_eq!(on_datagram(&own, dest, by_eth), Step::Fail(99));
        assert_eq!(on_connect(&own, by_eth), Step::Fail(99));
        let keep = Facts {
            keep_foreign: true,
            ..own
        };
        assert_eq!(on_datagram(&keep, dest, by_eth), Step::Bind { index: ETH });
        let by_wlan = v(&p, &own, Op::Send, "203.0.113.10:9000");
        assert_eq!(on_datagram(&own, dest, by_wlan), Step::Bind { index: WLAN });
        // Bound by the supervisor to wlan0, then connected to eth0's destination.
        let ours = Facts {
            bound: WLAN as i32,
            shim_bound: true,
            ..own
        };
        assert_eq!(on_connect(&ours, by_eth), Step::Fail(ENETUNREACH));
        assert_eq!(on_connect(&ours, by_wlan), Step::Continue);
    }

    #[test]
    fn a_datagram_on_a_socket_with_a_source_binds_the_device_and_keeps_to_it() {
        let p = profile("wlan0");
        let f = Facts {
            src_addr: true,
            ..udp(false)
        };
        let steer = v(&p, &f, Op::Send, "203.0.113.10:9000");
        let dest: IpAddr = "203.0.113.10".parse().unwrap();
        assert_eq!(on_datagram(&f, dest, steer), Step::Bind { index: WLAN });
        // Bound by the supervisor to wlan0: wlan0's datagrams as is, another
        // interface's refused, not sent by the wrong link.
        let ours = Facts {
            bound: WLAN as i32,
            shim_bound: true,
            ..f
        };
        assert_eq!(on_datagram(&ours, dest, steer), Step::Continue);
        let eth = v(&profile("eth0"), &f, Op::Send, "203.0.113.10:9000");
        assert_eq!(on_datagram(&ours, dest, eth), Step::Fail(ENETUNREACH));
        // The program's own binding wins.
        let program = Facts {
            shim_bound: false,
            ..ours
        };
        assert_eq!(on_datagram(&program, dest, eth), Step::Continue);
    }
}
