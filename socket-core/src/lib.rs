//! The per-socket core of mifshim, without I/O: what the shim knows about a socket
//! ([`Sock`]) + what the policy decided for a destination ([`Verdict`]) + the call →
//! what to do ([`DatagramPlan`], [`ConnectStep`]). An executor carries the plan out:
//! the preload engine (`shim/src/ops.rs`) with the C library's functions, and the
//! coming seccomp supervisor with its own. Nothing here makes a system call, reads a
//! clock or touches memory it was not given, so every transition is unit-tested below.
//!
//! ## The invariants these transitions keep
//! * **Nothing the shim set is ever taken away while the socket lives.** A unicast
//!   interface (`IP(V6)_UNICAST_IF`) the shim set stays set: another thread's datagram
//!   may be on its way through the stub's fast path, another process may hold the
//!   socket. A datagram that must not follow it (loopback, the host's own addresses, a
//!   destination the routing table is to choose) carries a PKTINFO naming the
//!   interface it must take instead, which the kernel prefers over the socket's
//!   unicast interface.
//! * **A socket anyone else may hold is not trusted** ([`SHARED`]): its unicast
//!   interface may have been changed behind the shim's back, so a steered datagram
//!   carries its own PKTINFO, and a device binding is checked with the kernel before a
//!   call relies on it ([`needs_binding_check`]).
//! * **The program's own choices win**: a device it bound itself, a unicast interface
//!   it set for the path the kernel takes.
//! * **When the shim cannot steer, the call fails**; nothing is sent unsteered.

#![no_std]

pub mod membership;
pub mod mmsg;
pub mod sockopts;

use config_schema::{AddrFamily, Proto};
use core::net::IpAddr;
pub use mifshim_fastpath::{
    APP_BOUND, APP_MCAST_IF, APP_UC4, APP_UC6, INET, LOGGED_SEND, MCAST_CHECKED, MIXED, REDIRECTED,
    SHARED, SHIM_BOUND, SHIM_DIRECT, SHIM_MCAST_IF, SHIM_OPTS, SRC_ADDR, TCP, UC4, UC6, UDP, V6,
    VALID,
};
/// How the kernel's send paths read a program's PKTINFO (which one chooses the
/// interface), and the control data of a steered datagram: one rule for the preload
/// and the supervisor.
pub mod control {
    pub use mifshim_fastpath::{
        Built, IN_PKTINFO, IN6_PKTINFO, Pktinfo, Scan, build_control, cmsg_len, cmsg_space,
        may_carry_source, scan_control,
    };
}

/// What the shim knows about one socket: the flags of its fd's entry and the unicast
/// interface index the shim set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sock {
    pub flags: u32,
    pub uc_index: u32,
}

impl Sock {
    pub const fn new(flags: u32, uc_index: u32) -> Sock {
        Sock { flags, uc_index }
    }
    /// A socket of this family (`None`: not `AF_INET`/`AF_INET6`) and transport,
    /// nothing else known.
    pub fn of(family: Option<AddrFamily>, proto: Proto) -> Sock {
        let mut v = VALID;
        if let Some(f) = family {
            v |= INET;
            if f == AddrFamily::V6 {
                v |= V6;
            }
        }
        v |= match proto {
            Proto::Tcp => TCP,
            Proto::Udp => UDP,
            Proto::Other => 0,
        };
        Sock::new(v, 0)
    }
    /// The entry describes a socket (an fd without one reads as all zero).
    pub fn valid(self) -> bool {
        self.has(VALID)
    }
    /// The socket's family when it is `AF_INET`/`AF_INET6`.
    pub fn family(self) -> Option<AddrFamily> {
        match (self.has(INET), self.has(V6)) {
            (false, _) => None,
            (true, false) => Some(AddrFamily::V4),
            (true, true) => Some(AddrFamily::V6),
        }
    }
    /// The transport rules talk about.
    pub fn proto(self) -> Proto {
        if self.has(TCP) {
            Proto::Tcp
        } else if self.has(UDP) {
            Proto::Udp
        } else {
            Proto::Other
        }
    }
    pub fn has(self, f: u32) -> bool {
        self.flags & f != 0
    }
    pub fn is_udp(self) -> bool {
        self.has(UDP)
    }
    /// Whether the kernel's socket may carry a unicast interface (the shim's, the
    /// program's, or one set by another holder): a datagram that must not follow it
    /// needs a PKTINFO of its own.
    pub fn uc_maybe_set(self) -> bool {
        self.has(UC4 | UC6 | APP_UC4 | APP_UC6 | SHARED)
    }
    /// Bound to a device, by the shim or by the program.
    pub fn bound(self) -> bool {
        self.has(SHIM_BOUND | APP_BOUND)
    }
}

/// The options and control messages a datagram's destination goes by: the IPv4 ones
/// (`IP_UNICAST_IF`, `IP_PKTINFO`: IPv4 destinations, and IPv4-mapped ones on an
/// `AF_INET6` socket) or the IPv6 ones (native IPv6 destinations).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    V4,
    V6,
}

impl Path {
    /// The entry flag saying the shim set this path's unicast interface.
    pub fn uc_flag(self) -> u32 {
        match self {
            Path::V4 => UC4,
            Path::V6 => UC6,
        }
    }
    /// The entry flag saying the program set this path's unicast interface.
    pub fn app_uc_flag(self) -> u32 {
        match self {
            Path::V4 => APP_UC4,
            Path::V6 => APP_UC6,
        }
    }
    fn other(self) -> Path {
        match self {
            Path::V4 => Path::V6,
            Path::V6 => Path::V4,
        }
    }
}

/// What the policy decided for one destination, as the socket core needs it (the
/// executor maps `config_schema::Decision` onto this, see [`verdict`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Steer a unicast destination through interface `index`.
    Steer { index: u32 },
    /// A multicast destination: leave by interface `index`.
    SteerMulticast { index: u32 },
    /// A destination on this host (loopback, one of its own addresses, the
    /// unspecified address): it never leaves by a link. `via` is the interface a
    /// PKTINFO must name so that a unicast interface the socket may carry does not
    /// apply: the address's own interface, or loopback (the kernel delivers either
    /// locally; measured on Linux 6.18 for IPv4 and IPv6 — IPv6 needs the owning
    /// interface for the host's own addresses, loopback for `::1` and `::`).
    Local { via: u32 },
    /// The program named the link itself (an IPv6 link-local address with a scope):
    /// the scope overrides any unicast interface.
    Scoped,
    /// The routing table chooses (a `direct` rule, no `via`, `on_unavailable =
    /// "direct"`).
    Routed,
    /// Refused with this errno.
    Refuse(i32),
}

/// Maps the policy's decision onto a [`Verdict`]. `local_via` gives the interface a
/// local destination's PKTINFO must name (see [`Verdict::Local`]).
pub fn verdict(d: &config_schema::Decision<'_>, local_via: impl FnOnce() -> u32) -> Verdict {
    use config_schema::{Decision, DirectReason, ErrnoKind};
    match d {
        Decision::Bind(b) if b.multicast => Verdict::SteerMulticast { index: b.index },
        Decision::Bind(b) => Verdict::Steer { index: b.index },
        Decision::Direct(
            DirectReason::Loopback | DirectReason::OwnAddress | DirectReason::Unspecified,
        ) => Verdict::Local { via: local_via() },
        Decision::Direct(DirectReason::ScopedLinkLocal) => Verdict::Scoped,
        Decision::Direct(
            DirectReason::NoVia
            | DirectReason::Rule(_)
            | DirectReason::Unavailable
            | DirectReason::ListenAny,
        ) => Verdict::Routed,
        Decision::Block(b) => Verdict::Refuse(match b.errno {
            ErrnoKind::NetUnreach => ENETUNREACH,
            ErrnoKind::Access => EACCES,
        }),
    }
}

/// `ENETUNREACH` (Linux's value).
pub const ENETUNREACH: i32 = 101;
/// `EACCES` (Linux's value).
pub const EACCES: i32 = 13;
/// `EINVAL` (Linux's value).
pub const EINVAL: i32 = 22;
/// `EPERM` (Linux's value).
pub const EPERM: i32 = 1;
/// `EADDRNOTAVAIL` (Linux's value).
pub const EADDRNOTAVAIL: i32 = 99;

/// What to do with a `bind` to an explicit address ([`bind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindStep {
    /// Bind as the program asked.
    AsIs,
    /// Bind to this address instead: the program's `sockaddr` with only its address
    /// replaced (port, flow label, scope kept), in the form the socket's family takes
    /// (IPv4-mapped on an `AF_INET6` socket that asked for an IPv4-mapped address).
    Rewrite(IpAddr),
    /// Refuse with this errno; nothing is bound.
    Fail(i32),
}

/// Decides a `bind(requested)` from the policy's [`config_schema::BindAddr`]. A
/// socket the program bound to a device itself keeps what it asks (its own choice of
/// link, as everywhere).
///
/// | socket | decision | step |
/// |---|---|---|
/// | bound to a device by the program | any | as is |
/// | any | keep | as is |
/// | any | rewrite to `to` | rewrite (IPv4-mapped when `requested` was) |
/// | any | refuse | fail (`ENETUNREACH`) |
pub fn bind(s: Sock, requested: IpAddr, d: &config_schema::BindAddr<'_>) -> BindStep {
    use config_schema::BindAddr;
    if s.has(APP_BOUND) {
        return BindStep::AsIs;
    }
    match d {
        BindAddr::Keep(_) => BindStep::AsIs,
        BindAddr::Rewrite { to, .. } => BindStep::Rewrite(same_form(requested, *to)),
        BindAddr::Refuse(_) => BindStep::Fail(ENETUNREACH),
    }
}

/// `to` written the way `like` is: IPv4-mapped when `like` is an IPv4-mapped IPv6
/// address and `to` an IPv4 one (an `AF_INET6` socket's view of IPv4).
pub fn same_form(like: IpAddr, to: IpAddr) -> IpAddr {
    match (like, to) {
        (IpAddr::V6(l), IpAddr::V4(t)) if l.to_ipv4_mapped().is_some() => {
            IpAddr::V6(t.to_ipv6_mapped())
        }
        _ => to,
    }
}

/// The policy's socket options to set on a socket the shim steers, before its
/// `connect` or first steered datagram ([`options`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct OptionsPlan {
    /// `SO_MARK`.
    pub mark: Option<u32>,
    /// The TOS byte / traffic class (`dscp << 2`), and for which path.
    pub tos: Option<(Path, i32)>,
    /// The other path's class too, on an `AF_INET6` socket that may carry both
    /// (IPv4-mapped traffic takes `IP_TOS`, native IPv6 `IPV6_TCLASS`).
    pub tos_other: Option<(Path, i32)>,
    /// Bind the socket to this source address (port 0; for TCP with
    /// `IP_BIND_ADDRESS_NO_PORT`, so the port is still chosen at `connect`).
    pub source: Option<IpAddr>,
}

impl OptionsPlan {
    pub fn is_empty(&self) -> bool {
        *self == OptionsPlan::default()
    }
}

/// What the kernel says about a socket, for [`options`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Current {
    /// The path's TOS / traffic class as it stands (`IP_TOS` / `IPV6_TCLASS`).
    pub tos: i32,
    /// The other path's TOS / traffic class, on an `AF_INET6` socket that is not
    /// IPv6-only (`None` on any other socket).
    pub tos_other: Option<i32>,
    /// The socket has a local address or port already (the program bound it, or a
    /// datagram did): a source cannot be chosen by binding any more.
    pub locally_bound: bool,
    /// `SO_MARK` as it stands: not 0 when the program (or whoever handed the socket
    /// over) marked it.
    pub mark: u32,
    /// An IPv4-mapped datagram on an `AF_INET6` socket that is not IPv6-only: the
    /// program uses the socket for both families, and an IPv4-mapped source would
    /// refuse every IPv6 destination after it. (A native IPv6 datagram does bind the
    /// IPv6 source: most such sockets serve IPv6 only, and the kernel makes a socket
    /// bound to a native address IPv6-only — a later IPv4-mapped send fails, never
    /// leaves unsteered.)
    pub mapped_on_dual_stack: bool,
}

/// Decides which of the policy's options ([`config_schema::Applied`]) a steered
/// socket gets, on `path` (the destination's), given what it carries now. Done once
/// per socket ([`SHIM_OPTS`]).
///
/// * **mark**: unless the socket carries one already — the program's own `SO_MARK`
///   wins (a VPN client marks its tunnel's packets to keep them off the tunnel
///   route), as its own device binding does (the executor applies [`mark_refused`]
///   when the kernel says `EPERM`);
/// * **dscp**: unless the socket carries a DSCP already — the program's own
///   `IP_TOS`/`IPV6_TCLASS` wins (the ECN bits are not a choice of class, and they
///   stay); `dscp = 0` sets nothing; on a dual-stack `AF_INET6` socket both paths'
///   options, each unless the program set it;
/// * **source**: unless the socket is bound to a local address or port already (the
///   program's `bind`, which the bind hook saw, or an earlier datagram), or the
///   datagram is IPv4-mapped on a dual-stack socket ([`Current::mapped_on_dual_stack`]).
pub fn options(s: Sock, path: Path, a: &config_schema::Applied, now: Current) -> OptionsPlan {
    if s.has(SHIM_OPTS) || a.is_empty() {
        return OptionsPlan::default();
    }
    // The class in the upper six bits; the ECN bits the program set stay.
    let class = |current: i32| match a.dscp {
        Some(d) if d != 0 && current & 0xfc == 0 => Some(i32::from(d) << 2 | current & 3),
        _ => None,
    };
    OptionsPlan {
        mark: a.mark.filter(|_| now.mark == 0),
        tos: class(now.tos).map(|t| (path, t)),
        tos_other: now.tos_other.and_then(class).map(|t| (path.other(), t)),
        source: a
            .source
            .filter(|_| !now.locally_bound && !now.mapped_on_dual_stack),
    }
}

/// `SO_MARK` was refused (`EPERM`: no `CAP_NET_ADMIN`): fail the call with `EPERM`
/// (`on_mark_denied = "block"`, nothing leaves unmarked) or go on without it.
pub fn mark_refused(policy: config_schema::OnMarkDenied) -> Option<i32> {
    match policy {
        config_schema::OnMarkDenied::Block => Some(EPERM),
        config_schema::OnMarkDenied::Continue => None,
    }
}

/// A socket the shim bound for a direct destination ([`SHIM_DIRECT`]) asked to reach
/// a steered one: the binding would carry it by the wrong interface (or into
/// loopback, silently), so the call fails — `EINVAL`, what the kernel answers a
/// socket whose source is a loopback address sending off the host.
fn direct_binding_refuses(s: Sock, v: Verdict) -> Option<i32> {
    (s.has(SHIM_DIRECT) && matches!(v, Verdict::Steer { .. } | Verdict::SteerMulticast { .. }))
        .then_some(EINVAL)
}

/// A UDP socket the shim bound to a steered destination's interface (at `connect`, or
/// at a datagram of a socket with a fixed source), asked to reach another destination
/// (a second `connect`, a `sendto` with its own address): the binding settles the
/// interface, but not a refusal — a `block` rule's destination fails with its errno —
/// nor a destination on this host, which the binding would send onto the link's wire
/// (`EINVAL`, what the kernel answers a loopback source sent off the host).
fn shim_binding_refuses(s: Sock, v: Verdict) -> Option<i32> {
    if !s.is_udp() || !s.has(SHIM_BOUND) || s.has(APP_BOUND | SHIM_DIRECT) {
        return None;
    }
    match v {
        Verdict::Refuse(e) => Some(e),
        Verdict::Local { .. } => Some(EINVAL),
        _ => None,
    }
}

/// A UDP socket the shim bound to a device (`bound_ifindex`, as the kernel says now)
/// asked to reach a destination the policy steers through interface `index`: the
/// binding carries the datagram by its own device, and it cannot be moved without
/// privilege (`SO_BINDTOIFINDEX` on a bound socket needs `CAP_NET_RAW`), so a
/// destination a rule or a failover sends elsewhere fails (`ENETUNREACH`) rather than
/// leave by the wrong link. Only asked for such sockets ([`shim_bound_udp`]).
pub fn bound_elsewhere(bound_ifindex: i32, index: u32) -> Option<i32> {
    (bound_ifindex != index as i32).then_some(ENETUNREACH)
}

/// Whether [`bound_elsewhere`] applies: a UDP socket whose device binding is the
/// shim's, for a steered destination.
pub fn shim_bound_udp(s: Sock) -> bool {
    s.is_udp() && s.has(SHIM_BOUND) && !s.has(APP_BOUND | SHIM_DIRECT)
}

/// A socket with a fixed source address ([`SRC_ADDR`]: the program's bind, the
/// policy's `source`, a bind another holder made), `local` as the kernel says now,
/// about to be steered through an interface, `owned`: whether that interface has the
/// address. The source is part of the socket (a UDP socket keeps a bound address
/// through `connect(AF_UNSPEC)`; nothing unbinds it), so:
/// * a loopback source never leaves the host: `EINVAL`, what the kernel answers an
///   IPv4 socket bound to loopback sending off the host (IPv6 would send it, with
///   `::1` as its source, onto the link);
/// * another interface's address would leave by this one with a source whose answers
///   come back elsewhere, if at all: `EADDRNOTAVAIL` — unless the policy keeps such
///   binds (`foreign_bind = "keep"`);
/// * the unspecified address (a port only) fixes no source, nor does a multicast
///   group's or the broadcast address (a receiver bound to its group: the kernel
///   gives such a socket no source, the route chooses it; [`fixes_source`]).
pub fn fixed_source_refuses(local: IpAddr, owned: bool, keep_foreign: bool) -> Option<i32> {
    let local = local.to_canonical();
    if !fixes_source(local) || owned {
        None
    } else if local.is_loopback() {
        Some(EINVAL)
    } else if keep_foreign {
        None
    } else {
        Some(EADDRNOTAVAIL)
    }
}

/// Why a socket's own binding refuses a destination the policy steers
/// ([`steer_refusal`]); each executor words it in its log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A UDP socket the shim bound to device `bound` (as the kernel says now), the
    /// destination steered through `index` ([`bound_elsewhere`]).
    BoundElsewhere { bound: i32, index: u32 },
    /// The socket's fixed source `local` is not an address of interface `index`
    /// ([`fixed_source_refuses`]).
    Source {
        local: IpAddr,
        index: u32,
        errno: i32,
    },
}

impl Refusal {
    /// The errno the call fails with.
    pub fn errno(self) -> i32 {
        match self {
            Refusal::BoundElsewhere { .. } => ENETUNREACH,
            Refusal::Source { errno, .. } => errno,
        }
    }
}

/// The socket's own binding against a destination of verdict `v`, as the kernel holds
/// it now: `Some` when the call must fail rather than leave by the wrong link or with
/// a source the link cannot answer. Only a [`Verdict::Steer`] is checked; the kernel
/// is asked (`bound_ifindex`, `local`: the socket's local address) only for the
/// sockets it concerns, and `owned` says whether interface `index` has an address.
///
/// | socket | asked | refused when |
/// |---|---|---|
/// | bound by the shim for a direct destination | — | never here ([`connect`], [`datagram`] refuse) |
/// | UDP, bound by the shim ([`shim_bound_udp`]) | device binding | bound to another device ([`bound_elsewhere`]) |
/// | bound by the program, or by the shim otherwise ([`binding_settles`]) | — | never |
/// | with a fixed source ([`SRC_ADDR`]) | local address | loopback, or another interface's ([`fixed_source_refuses`]) |
pub fn steer_refusal(
    s: Sock,
    v: Verdict,
    bound_ifindex: impl FnOnce() -> i32,
    local: impl FnOnce() -> Option<IpAddr>,
    owned: impl FnOnce(u32, IpAddr) -> bool,
    keep_foreign: bool,
) -> Option<Refusal> {
    let Verdict::Steer { index } = v else {
        return None;
    };
    if s.has(SHIM_DIRECT) {
        return None;
    }
    if shim_bound_udp(s) {
        let bound = bound_ifindex();
        return bound_elsewhere(bound, index).map(|_| Refusal::BoundElsewhere { bound, index });
    }
    if binding_settles(s) || !s.has(SRC_ADDR) {
        return None;
    }
    let ip = local()?.to_canonical();
    fixed_source_refuses(ip, owned(index, ip), keep_foreign).map(|errno| Refusal::Source {
        local: ip,
        index,
        errno,
    })
}

/// Whether a socket bound to `local` has a fixed source address: not for the
/// unspecified address, a multicast group or the IPv4 limited broadcast address,
/// for which the kernel keeps no source (`inet_saddr` 0) and the route chooses one.
pub fn fixes_source(local: IpAddr) -> bool {
    match local.to_canonical() {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast()),
    }
}

/// A datagram that gives itself a source address in its control data (fastpath's
/// `Scan::source`; `chosen`: the interface its PKTINFO names, if any), to a
/// destination of verdict `v`, on socket `s` taking `path`: the socket as the datagram
/// must be planned with, or the errno it fails with.
///
/// | datagram | verdict | result |
/// |---|---|---|
/// | no source, or a group's | any | `s` |
/// | its PKTINFO names another interface than the steered one (the program's choice) | steer | `s` |
/// | socket bound to a device by the program | any | `s` |
/// | loopback source / another interface's ([`fixed_source_refuses`]) | steer | `EINVAL` / `EADDRNOTAVAIL` (unless `keep_foreign`) |
/// | the steered interface's source, IPv6 path | steer | `s` with [`SRC_ADDR`] |
/// | the steered interface's source, IPv4 path | steer | `s` |
/// | any | not steer | `s` |
///
/// With a source, the kernel's IPv6 route lookup takes an interface index — a
/// PKTINFO's, ours or the program's, or the socket's `IPV6_UNICAST_IF` — only as a
/// preference (`ip6_route_output` makes it strict only for a socket bound to a
/// device): such a datagram left by the lower-metric default route (seen on 6.18). So
/// it is planned as a socket with a fixed source is ([`datagram`]: bound to the
/// device). On the IPv4 path an index is strict, and the source only needs to be one
/// the link can answer.
pub fn datagram_source(
    s: Sock,
    path: Path,
    v: Verdict,
    source: Option<IpAddr>,
    chosen: Option<u32>,
    owned: impl FnOnce(u32, IpAddr) -> bool,
    keep_foreign: bool,
) -> Result<Sock, i32> {
    let (Verdict::Steer { index }, Some(ip)) = (v, source) else {
        return Ok(s);
    };
    let ip = ip.to_canonical();
    if !fixes_source(ip) || s.has(APP_BOUND) || chosen.is_some_and(|c| c != index) {
        return Ok(s);
    }
    if let Some(errno) = fixed_source_refuses(ip, owned(index, ip), keep_foreign) {
        return Err(errno);
    }
    Ok(match path {
        Path::V6 => Sock {
            flags: s.flags | SRC_ADDR,
            ..s
        },
        Path::V4 => s,
    })
}

/// Whether the socket's device binding settles every call on it whatever the decision
/// (so an executor may skip deciding): bound by the program, or by the shim to the
/// interface a steered destination chose — not one bound for a direct destination
/// ([`SHIM_DIRECT`]), which refuses steered ones.
pub fn binding_settles(s: Sock) -> bool {
    s.bound() && !s.has(SHIM_DIRECT)
}

/// Whether a device binding the entry records must be checked with the kernel before
/// a call relies on it: on a socket someone else may hold (who may have dropped it
/// with `connect(AF_UNSPEC)`), and always before a `connect`, which is rare enough to
/// afford the one `getsockopt`.
pub fn needs_binding_check(s: Sock, connecting: bool) -> bool {
    s.bound() && (connecting || s.has(SHARED))
}

/// What the kernel said about the device binding of a socket whose entry claims one
/// ([`needs_binding_check`]): the entry as it must be now.
pub fn binding_checked(s: Sock, bound_ifindex: i32) -> Sock {
    if bound_ifindex != 0 {
        s
    } else {
        Sock {
            flags: s.flags & !(SHIM_BOUND | APP_BOUND | SHIM_DIRECT),
            ..s
        }
    }
}

/// What to do with one datagram (an unconnected send that names a destination).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatagramStep {
    /// The program's call, unchanged.
    AsIs,
    /// Fail with this errno; nothing is sent.
    Fail(i32),
    /// Send with a PKTINFO naming this interface (added to the program's control
    /// messages in a copy).
    Pktinfo { ifindex: u32 },
    /// Look up the interface the routing table sends this destination through, then
    /// send with a PKTINFO naming it; fail if there is none.
    PktinfoRoute,
    /// Set the socket's unicast interface for the path to `index`, then send
    /// unchanged (and later datagrams to the same destination take the stub's fast
    /// path). If the option cannot be set: a PKTINFO naming `index`.
    Promote { index: u32 },
    /// Bind the socket to device `index`, then send unchanged: a socket bound to a
    /// specific source address ([`SRC_ADDR`]), which a PKTINFO would rob of its source
    /// (IPv4) or not steer (IPv6). If it cannot be bound: fail.
    BindDevice { index: u32 },
}

/// A [`DatagramStep`] and the bookkeeping that goes with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatagramPlan {
    pub step: DatagramStep,
    /// Entry flags to add.
    pub add: u32,
    /// Record this destination as the socket's datagram memo.
    pub remember: bool,
}

impl DatagramPlan {
    const fn step(step: DatagramStep) -> DatagramPlan {
        DatagramPlan {
            step,
            add: 0,
            remember: false,
        }
    }
}

/// Decides how one datagram goes out on a UDP socket. `memo_hit`: the socket's memo
/// already holds this destination under the current snapshot (the second datagram to
/// it). `batch`: part of a multi-destination `sendmmsg`, where every steered message
/// carries its own PKTINFO.
///
/// | socket | verdict | step |
/// |---|---|---|
/// | bound by the shim for a direct destination | steer | fail (`EINVAL`) |
/// | bound by the shim for a steered destination | refuse, local | fail (errno, `EINVAL`) |
/// | bound to a device, or the program set this path's unicast interface | any | as is |
/// | any | refuse | fail |
/// | may carry a unicast interface | local | PKTINFO naming `via` |
/// | may carry a unicast interface | routed | PKTINFO naming the route's interface |
/// | carries none | local, routed | as is |
/// | any | scoped | as is |
/// | any | multicast | PKTINFO naming the interface |
/// | shared, mixed, batch | steer | PKTINFO |
/// | unicast interface of this path set to `index` | steer to `index` | as is, memo |
/// | unicast interface set to another index | steer | PKTINFO, mixed |
/// | none set, first datagram to it | steer | PKTINFO, memo |
/// | none set, second datagram to it | steer | promote |
/// | bound to a specific source address | steer | bind to the device |
pub fn datagram(s: Sock, path: Path, v: Verdict, memo_hit: bool, batch: bool) -> DatagramPlan {
    use DatagramStep::*;
    if let Some(e) = direct_binding_refuses(s, v).or_else(|| shim_binding_refuses(s, v)) {
        return DatagramPlan::step(Fail(e));
    }
    if s.bound() || s.has(path.app_uc_flag()) {
        return DatagramPlan::step(AsIs);
    }
    if let (true, Verdict::Steer { index }) = (s.has(SRC_ADDR), v) {
        return DatagramPlan::step(BindDevice { index });
    }
    match v {
        Verdict::Refuse(e) => DatagramPlan::step(Fail(e)),
        Verdict::Scoped => DatagramPlan::step(AsIs),
        Verdict::Local { via } if s.uc_maybe_set() => DatagramPlan::step(Pktinfo { ifindex: via }),
        Verdict::Routed if s.uc_maybe_set() => DatagramPlan::step(PktinfoRoute),
        Verdict::Local { .. } | Verdict::Routed => DatagramPlan::step(AsIs),
        Verdict::SteerMulticast { index } => DatagramPlan::step(Pktinfo { ifindex: index }),
        Verdict::Steer { index } => steer(s, path, index, memo_hit, batch),
    }
}

fn steer(s: Sock, path: Path, index: u32, memo_hit: bool, batch: bool) -> DatagramPlan {
    use DatagramStep::*;
    let pktinfo = DatagramPlan::step(Pktinfo { ifindex: index });
    if batch || s.has(SHARED | MIXED) {
        return pktinfo;
    }
    let mixed = DatagramPlan {
        add: MIXED,
        ..pktinfo
    };
    if s.has(path.uc_flag()) {
        return if s.uc_index == index {
            DatagramPlan {
                step: AsIs,
                add: 0,
                remember: true,
            }
        } else {
            // Another interface for this path (a rule, a failover): its own PKTINFO,
            // which the kernel prefers to the socket's unicast interface.
            mixed
        };
    }
    if s.has(path.other().uc_flag()) && s.uc_index != index {
        return mixed;
    }
    DatagramPlan {
        step: if memo_hit {
            Promote { index }
        } else {
            pktinfo.step
        },
        add: 0,
        remember: true,
    }
}

/// What to do before a `connect` (or a TCP Fast Open send) goes to the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectStep {
    /// Connect as the program asked.
    AsIs,
    /// Refuse with this errno.
    Fail(i32),
    /// Bind the socket to this interface (`SO_BINDTOIFINDEX`), then connect.
    BindDevice { index: u32 },
    /// Bind the socket to the interface the routing table sends the destination
    /// through, then connect (a UDP socket whose unicast interface the shim set must
    /// not keep following it).
    BindRoute,
    /// A multicast destination: set the socket's multicast interface, unless the
    /// program chose one.
    MulticastIf { index: u32 },
}

/// Decides what a `connect` needs. The entry's device binding must have been checked
/// with the kernel first ([`needs_binding_check`] is always true for a bound socket
/// here).
#[inline]
pub fn connect(s: Sock, v: Verdict) -> ConnectStep {
    use ConnectStep::*;
    if let Some(e) = direct_binding_refuses(s, v).or_else(|| shim_binding_refuses(s, v)) {
        return Fail(e);
    }
    if s.bound() {
        return AsIs;
    }
    // A connected UDP socket routes by its unicast interface as well: a destination
    // that must not follow it gets a device binding of its own.
    let overridden = s.is_udp() && s.uc_maybe_set();
    match v {
        Verdict::Refuse(e) => Fail(e),
        Verdict::Steer { index } => BindDevice { index },
        Verdict::SteerMulticast { index } => MulticastIf { index },
        Verdict::Local { via } if overridden => BindDevice { index: via },
        Verdict::Routed if overridden => BindRoute,
        Verdict::Local { .. } | Verdict::Routed | Verdict::Scoped => AsIs,
    }
}

/// The entry of a socket the shim did not see created (inherited across `exec`,
/// received with `SCM_RIGHTS`, created by a path no hook sees): what the kernel says,
/// and [`SHARED`], since others may hold it. A device binding is the program's own
/// choice — unless the socket also carries a unicast interface other than the device
/// (`unicast_ifindex`, either path's): that is what a shim leaves on a UDP socket it
/// bound for a direct destination ([`SHIM_DIRECT`]), which must keep refusing steered
/// destinations in whoever holds it now.
pub fn probed(
    family: Option<AddrFamily>,
    proto: Proto,
    bound_ifindex: i32,
    unicast_ifindex: u32,
) -> Sock {
    let mut s = Sock::of(family, proto);
    if family.is_some() {
        s.flags |= SHARED;
    }
    if bound_ifindex != 0 {
        s.flags |= if unicast_ifindex != 0 && unicast_ifindex != bound_ifindex as u32 {
            SHIM_BOUND | SHIM_DIRECT
        } else {
            APP_BOUND
        };
    }
    s
}

/// The entry of a socket returned by `accept` on `listener`: a new socket of the
/// listener's family and transport that nobody else holds yet.
pub fn accepted(listener: Sock) -> Option<Sock> {
    listener
        .has(VALID)
        .then(|| Sock::new(listener.flags & (VALID | INET | V6 | TCP | UDP), 0))
}

/// The `TCP_LINGER2` (seconds) of [`holds_fin_wait2`]: Linux's largest
/// (`TCP_FIN_TIMEOUT_MAX`). An orphaned socket in `FIN_WAIT2` stays a full socket for
/// what exceeds `TCP_TIMEWAIT_LEN` (60 s) of it, then a time-wait socket for the rest.
pub const FIN_WAIT2_HOLD_SECS: i32 = 120;

/// Whether a socket the shim binds to a device for `peer` (a connect's destination,
/// or a listener's wildcard address: its peers) must keep an orphaned `FIN_WAIT2`
/// whole ([`fin_wait2_hold`]): a TCP socket that can carry native IPv6.
///
/// Why: when the program closes first and the peer's FIN comes after the ACK of its
/// own, Linux turns the closed socket into a time-wait socket at once, and for IPv6
/// that socket answers the late FIN from the per-namespace control socket, whose route
/// lookup takes the device only as a preference (no `RT6_LOOKUP_F_IFACE` with a
/// source address): the ACK leaves by the main table's route (seen on the testbed: by
/// eth0, with wlan0's address, and the peer, never answered, retransmits its FIN).
/// A full socket answers by its own route, which the binding makes strict. IPv4's
/// time-wait answers are strict on the device already (`ip_send_unicast_reply`), and
/// an IPv4-mapped peer takes that path.
pub fn holds_fin_wait2(proto: Proto, peer: IpAddr) -> bool {
    proto == Proto::Tcp && matches!(peer, IpAddr::V6(a) if a.to_ipv4_mapped().is_none())
}

/// The `TCP_LINGER2` to set on a socket of [`holds_fin_wait2`], given the one the
/// kernel reports (`getsockopt`: seconds, the namespace's `tcp_fin_timeout` when never
/// set): [`FIN_WAIT2_HOLD_SECS`], or `None` to leave it — a negative value is the
/// program's request that a `FIN_WAIT2` be reset rather than kept (no time-wait
/// socket follows), and one at the hold already needs nothing.
pub fn fin_wait2_hold(current: i32) -> Option<i32> {
    (0..FIN_WAIT2_HOLD_SECS)
        .contains(&current)
        .then_some(FIN_WAIT2_HOLD_SECS)
}

/// `SOL_SOCKET`, as Linux numbers it.
pub const SOL_SOCKET: i32 = 1;
/// `SO_BINDTODEVICE` (a device name).
pub const SO_BINDTODEVICE: i32 = 25;
/// `SO_BINDTOIFINDEX` (an interface index).
pub const SO_BINDTOIFINDEX: i32 = 62;

/// Whether a `setsockopt` value drops a socket's device binding rather than choosing a
/// device: `SO_BINDTOIFINDEX` of 0, `SO_BINDTODEVICE` of an empty name (no bytes, or
/// a name that starts with its NUL). A program that does this to a socket the shim
/// bound is not choosing another link: its socket would leave by the default route.
pub fn unbinds_device(level: i32, name: i32, val: &[u8]) -> bool {
    match (level, name) {
        (SOL_SOCKET, SO_BINDTOIFINDEX) => val
            .first_chunk::<4>()
            .is_some_and(|i| i32::from_ne_bytes(*i) == 0),
        (SOL_SOCKET, SO_BINDTODEVICE) => val.first().is_none_or(|b| *b == 0),
        _ => false,
    }
}

/// Before `setsockopt`: `Some(EPERM)` when the program would drop a device binding the
/// shim (or the supervisor) made ([`SHIM_BOUND`]) — what the kernel answers a program
/// without `CAP_NET_RAW`, so only privileged programs see a difference — and `None`
/// for every other call (a device of the program's own choosing is its choice).
pub fn unbind_refused(s: Sock, level: i32, name: i32, val: &[u8]) -> Option<i32> {
    if unbinds_device(level, name, val) {
        unbinding_refused(s)
    } else {
        None
    }
}

/// [`unbind_refused`] for a call already known to drop the socket's device binding,
/// by whatever option the OS has for it (the engine's `sys::unbinds_device`: Linux's
/// [`unbinds_device`], macOS's `IP_BOUND_IF`/`IPV6_BOUND_IF` of 0): `Some(EPERM)` on
/// a socket the shim bound ([`SHIM_BOUND`]).
pub fn unbinding_refused(s: Sock) -> Option<i32> {
    s.has(SHIM_BOUND).then_some(EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    use DatagramStep::*;

    const UDP4: Sock = Sock::new(VALID | INET | UDP, 0);
    const WLAN: u32 = 3;
    const WWAN: u32 = 4;
    const LO: u32 = 1;

    fn promoted(extra: u32) -> Sock {
        Sock::new(UDP4.flags | UC4 | extra, WLAN)
    }

    #[test]
    fn first_datagram_carries_pktinfo_second_promotes_then_as_is() {
        let v = Verdict::Steer { index: WLAN };
        let p = datagram(UDP4, Path::V4, v, false, false);
        assert_eq!(p.step, Pktinfo { ifindex: WLAN });
        assert!(p.remember);
        let p = datagram(UDP4, Path::V4, v, true, false);
        assert_eq!(p.step, Promote { index: WLAN });
        let p = datagram(promoted(0), Path::V4, v, true, false);
        assert_eq!(p.step, AsIs);
        assert!(p.remember);
    }

    /// The old engine cleared the unicast interface when a datagram went to an
    /// exempt destination; a datagram another thread was sending through the fast
    /// path at that moment, or another holder of the socket, then left by the default
    /// route. Now the option stays and the exempt datagram names its own interface.
    #[test]
    fn exempt_send_on_a_promoted_socket_cleared_its_unicast_interface() {
        let p = datagram(
            promoted(0),
            Path::V4,
            Verdict::Local { via: LO },
            false,
            false,
        );
        assert_eq!(p.step, Pktinfo { ifindex: LO });
        assert_eq!(p.add, 0, "no MIXED: the steered destination stays fast");
        // The routing table's choice on such a socket: the route's interface.
        let p = datagram(promoted(0), Path::V4, Verdict::Routed, false, false);
        assert_eq!(p.step, PktinfoRoute);
        // A socket that never had one sends exempt datagrams as they are.
        assert_eq!(
            datagram(UDP4, Path::V4, Verdict::Local { via: LO }, false, false).step,
            AsIs
        );
        assert_eq!(
            datagram(UDP4, Path::V4, Verdict::Routed, false, false).step,
            AsIs
        );
    }

    /// A socket promoted in the parent and shared with a child by `fork` (or with
    /// another fd by `dup`): the other holder may change the option, so neither side
    /// trusts it — steered datagrams carry a PKTINFO, exempt ones too.
    #[test]
    fn promoted_socket_shared_by_fork_or_dup_trusted_its_unicast_interface() {
        let s = promoted(SHARED);
        let v = Verdict::Steer { index: WLAN };
        assert_eq!(
            datagram(s, Path::V4, v, true, false).step,
            Pktinfo { ifindex: WLAN }
        );
        assert_eq!(
            datagram(s, Path::V4, Verdict::Local { via: LO }, false, false).step,
            Pktinfo { ifindex: LO }
        );
        // Shared and never promoted: never promoted now either.
        let s = Sock::new(UDP4.flags | SHARED, 0);
        assert_eq!(
            datagram(s, Path::V4, v, true, false).step,
            Pktinfo { ifindex: WLAN }
        );
        // An exempt datagram on a shared socket names its interface even though
        // this holder never saw a unicast interface set (another holder may have).
        assert_eq!(
            datagram(s, Path::V4, Verdict::Local { via: LO }, false, false).step,
            Pktinfo { ifindex: LO }
        );
    }

    /// The program set `IPV6_UNICAST_IF` on a dual-stack socket: that covers native
    /// IPv6 destinations only; IPv4-mapped ones go by `IP_UNICAST_IF` and were left
    /// unsteered.
    #[test]
    fn program_ipv6_unicast_if_left_ipv4_mapped_datagrams_unsteered() {
        let s = Sock::new(VALID | INET | V6 | UDP | APP_UC6, 0);
        let v = Verdict::Steer { index: WLAN };
        assert_eq!(datagram(s, Path::V6, v, false, false).step, AsIs);
        assert_eq!(
            datagram(s, Path::V4, v, false, false).step,
            Pktinfo { ifindex: WLAN }
        );
        let s = Sock::new(VALID | INET | V6 | UDP | APP_UC4, 0);
        assert_eq!(datagram(s, Path::V4, v, false, false).step, AsIs);
        assert_eq!(
            datagram(s, Path::V6, v, false, false).step,
            Pktinfo { ifindex: WLAN }
        );
    }

    #[test]
    fn another_interface_on_a_promoted_socket_gets_its_own_pktinfo() {
        let p = datagram(
            promoted(0),
            Path::V4,
            Verdict::Steer { index: WWAN },
            true,
            false,
        );
        assert_eq!(p.step, Pktinfo { ifindex: WWAN });
        assert_eq!(p.add, MIXED);
        // Mixed sockets are not promoted further; their UC4 destination stays as is.
        let s = promoted(MIXED);
        assert_eq!(
            datagram(s, Path::V4, Verdict::Steer { index: WLAN }, true, false).step,
            Pktinfo { ifindex: WLAN }
        );
        // Promoted for IPv6 to another interface: IPv4 to a third one is mixed.
        let s = Sock::new(VALID | INET | V6 | UDP | UC6, WLAN);
        let p = datagram(s, Path::V4, Verdict::Steer { index: WWAN }, true, false);
        assert_eq!((p.step, p.add), (Pktinfo { ifindex: WWAN }, MIXED));
        // … and to the same one, promoted too.
        let p = datagram(s, Path::V4, Verdict::Steer { index: WLAN }, true, false);
        assert_eq!(p.step, Promote { index: WLAN });
    }

    #[test]
    fn batches_multicast_refusals_and_program_choices() {
        let v = Verdict::Steer { index: WLAN };
        assert_eq!(
            datagram(promoted(0), Path::V4, v, true, true).step,
            Pktinfo { ifindex: WLAN }
        );
        assert_eq!(
            datagram(
                UDP4,
                Path::V4,
                Verdict::SteerMulticast { index: WLAN },
                true,
                false
            )
            .step,
            Pktinfo { ifindex: WLAN }
        );
        assert_eq!(
            datagram(UDP4, Path::V4, Verdict::Refuse(ENETUNREACH), false, false).step,
            Fail(ENETUNREACH)
        );
        // The program's own binding or unicast interface: its choice. (One the shim
        // bound still refuses: `shim_bound_udp_socket_sent_refused_…`.)
        for b in [APP_BOUND, APP_UC4] {
            let s = Sock::new(UDP4.flags | b, 0);
            assert_eq!(
                datagram(s, Path::V4, Verdict::Refuse(EACCES), false, false).step,
                AsIs
            );
        }
        assert_eq!(
            datagram(promoted(0), Path::V4, Verdict::Scoped, false, false).step,
            AsIs
        );
    }

    /// `connect(AF_UNSPEC)` (node's `dgram.disconnect()`) drops the device binding in
    /// the kernel; the entry still said bound and the next `connect` skipped the
    /// decision. The binding is checked before every connect that would rely on it.
    #[test]
    fn disconnect_dropped_the_binding_the_entry_still_claimed() {
        let s = Sock::new(UDP4.flags | SHIM_BOUND, 0);
        assert!(needs_binding_check(s, true));
        assert!(!needs_binding_check(s, false), "exclusive sends trust it");
        assert!(needs_binding_check(Sock::new(s.flags | SHARED, 0), false));
        assert!(!needs_binding_check(UDP4, true));
        let now = binding_checked(s, 0);
        assert!(!now.bound());
        assert_eq!(
            connect(now, Verdict::Steer { index: WLAN }),
            ConnectStep::BindDevice { index: WLAN }
        );
        assert_eq!(binding_checked(s, WLAN as i32), s);
        assert_eq!(
            connect(s, Verdict::Steer { index: WLAN }),
            ConnectStep::AsIs
        );
    }

    #[test]
    fn connect_steps() {
        use ConnectStep::*;
        let tcp = Sock::new(VALID | INET | TCP, 0);
        assert_eq!(
            connect(tcp, Verdict::Steer { index: WLAN }),
            BindDevice { index: WLAN }
        );
        assert_eq!(connect(tcp, Verdict::Local { via: LO }), AsIs);
        assert_eq!(connect(tcp, Verdict::Routed), AsIs);
        assert_eq!(connect(tcp, Verdict::Refuse(EACCES)), Fail(EACCES));
        assert_eq!(
            connect(UDP4, Verdict::SteerMulticast { index: WLAN }),
            MulticastIf { index: WLAN }
        );
        // A promoted UDP socket connected to an exempt destination: bound to the
        // interface that keeps it local (the option it carries is never cleared).
        assert_eq!(
            connect(promoted(0), Verdict::Local { via: LO }),
            BindDevice { index: LO }
        );
        assert_eq!(connect(promoted(0), Verdict::Routed), BindRoute);
        assert_eq!(connect(promoted(0), Verdict::Scoped), AsIs);
    }

    /// A promoted UDP socket connected to loopback is bound to `lo` (its unicast
    /// interface cannot be cleared); a later `sendto` to a steered destination was sent
    /// into loopback and silently lost, where the kernel alone answers `EINVAL`.
    #[test]
    fn socket_bound_to_loopback_for_a_direct_connect_dropped_later_steered_sends() {
        let s = Sock::new(UDP4.flags | UC4 | SHIM_BOUND | SHIM_DIRECT, WLAN);
        let steer = Verdict::Steer { index: WLAN };
        assert_eq!(datagram(s, Path::V4, steer, true, false).step, Fail(EINVAL));
        assert_eq!(connect(s, steer), ConnectStep::Fail(EINVAL));
        assert_eq!(
            datagram(s, Path::V4, Verdict::Local { via: LO }, false, false).step,
            AsIs
        );
        assert_eq!(connect(s, Verdict::Routed), ConnectStep::AsIs);
        assert!(!binding_settles(s), "the executor must decide");
        // A socket the shim bound to a steered interface is not affected.
        let bound = Sock::new(UDP4.flags | SHIM_BOUND, 0);
        assert_eq!(datagram(bound, Path::V4, steer, true, false).step, AsIs);
        assert!(binding_settles(bound));
    }

    /// A socket a shim bound for a direct destination, found again after `exec` (or
    /// received): its binding read as the program's own, and steered datagrams went out
    /// through it (by the default link). The unicast interface it also carries tells
    /// them apart; after a disconnect the kernel holds no binding, and neither does
    /// the entry.
    #[test]
    fn socket_bound_for_a_direct_connect_was_taken_for_the_programs_binding_after_exec() {
        let s = probed(Some(AddrFamily::V4), Proto::Udp, 2, WLAN);
        assert!(s.has(SHIM_DIRECT) && !s.has(APP_BOUND));
        assert_eq!(
            datagram(s, Path::V4, Verdict::Steer { index: WLAN }, false, false).step,
            Fail(EINVAL)
        );
        let now = binding_checked(s, 0);
        assert!(!now.has(SHIM_DIRECT) && !now.bound());
        assert_eq!(
            connect(now, Verdict::Steer { index: WLAN }),
            ConnectStep::BindDevice { index: WLAN }
        );
    }

    #[test]
    fn probed_sockets_are_shared_and_accepted_ones_are_not() {
        let p = probed(Some(AddrFamily::V4), Proto::Udp, 0, 0);
        assert!(p.has(SHARED) && !p.bound());
        assert_eq!(p.family(), Some(AddrFamily::V4));
        assert_eq!(p.proto(), Proto::Udp);
        assert!(probed(Some(AddrFamily::V6), Proto::Tcp, 7, 0).has(APP_BOUND));
        assert!(probed(Some(AddrFamily::V6), Proto::Udp, 7, 7).has(APP_BOUND));
        assert!(
            !probed(None, Proto::Tcp, 0, 0).has(SHARED),
            "not INET: no business"
        );
        let listener = Sock::new(VALID | INET | V6 | TCP | SHIM_BOUND | SHARED, 3);
        let a = accepted(listener).unwrap();
        assert_eq!(a.flags, VALID | INET | V6 | TCP);
        assert_eq!(accepted(Sock::new(0, 0)), None);
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn udp_socket_with_a_fixed_source_ignored_a_rule_choosing_another_interface() {
        // Bound by the shim to device 3: a destination steered through 4 fails, one
        // through 3 goes.
        assert_eq!(bound_elsewhere(3, 4), Some(ENETUNREACH));
        assert_eq!(bound_elsewhere(3, 3), None);
        // The kernel says unbound (dropped where no hook saw): fail closed.
        assert_eq!(bound_elsewhere(0, 3), Some(ENETUNREACH));
        let udp = Sock::new(VALID | INET | UDP | SHIM_BOUND, 0);
        assert!(shim_bound_udp(udp));
        assert!(!shim_bound_udp(Sock::new(
            VALID | INET | TCP | SHIM_BOUND,
            0
        )));
        assert!(!shim_bound_udp(Sock::new(udp.flags | APP_BOUND, 0)));
        assert!(!shim_bound_udp(Sock::new(udp.flags | SHIM_DIRECT, 0)));
        // A fixed source of another interface.
        let wlan = ip("198.51.100.66");
        assert_eq!(
            fixed_source_refuses(wlan, false, false),
            Some(EADDRNOTAVAIL)
        );
        assert_eq!(fixed_source_refuses(wlan, false, true), None);
        assert_eq!(fixed_source_refuses(wlan, true, false), None);
        assert_eq!(
            fixed_source_refuses(ip("::ffff:198.51.100.66"), false, false),
            Some(EADDRNOTAVAIL)
        );
        assert_eq!(fixed_source_refuses(ip("0.0.0.0"), false, false), None);
        assert_eq!(fixed_source_refuses(ip("::"), false, false), None);
        // A receiver bound to its group (or the broadcast address) has no source.
        for group in [
            "239.255.255.250",
            "255.255.255.255",
            "ff05::1:3",
            "::ffff:224.0.0.251",
        ] {
            assert_eq!(
                fixed_source_refuses(ip(group), false, false),
                None,
                "{group}"
            );
            assert!(!fixes_source(ip(group)), "{group}");
        }
    }

    /// Review: an `IPV6_PKTINFO` naming a source left by eth0 although it (or the
    /// socket's unicast interface) named wlan0; one naming another link's source, or
    /// `::1`, was sent. The datagram is planned as a socket bound to its source: bound
    /// to the device, or refused.
    #[test]
    fn an_ipv6_pktinfo_naming_a_source_is_planned_as_a_fixed_source() {
        let steer = Verdict::Steer { index: WLAN };
        let udp6 = Sock::new(VALID | INET | V6 | UDP, 0);
        let mine = ip("2001:db8:1::2");
        let owned = |i: u32, a: IpAddr| i == WLAN && a == ip("2001:db8:1::2");
        let s = datagram_source(udp6, Path::V6, steer, Some(mine), None, owned, false).unwrap();
        assert!(s.has(SRC_ADDR));
        assert_eq!(
            datagram(s, Path::V6, steer, false, false).step,
            BindDevice { index: WLAN }
        );
        // Also after the shim set the socket's unicast interface (which a source makes
        // a preference too), and with the program's own PKTINFO naming wlan0.
        let uc = Sock::new(udp6.flags | UC6, WLAN);
        let s = datagram_source(uc, Path::V6, steer, Some(mine), Some(WLAN), owned, false).unwrap();
        assert_eq!(
            datagram(s, Path::V6, steer, true, false).step,
            BindDevice { index: WLAN }
        );
        // Another link's source, loopback: refused (kept by foreign_bind = "keep").
        let other = ip("2001:db8:2::2");
        assert_eq!(
            datagram_source(udp6, Path::V6, steer, Some(other), None, owned, false),
            Err(EADDRNOTAVAIL)
        );
        assert!(
            datagram_source(udp6, Path::V6, steer, Some(other), None, owned, true)
                .unwrap()
                .has(SRC_ADDR)
        );
        assert_eq!(
            datagram_source(udp6, Path::V6, steer, Some(ip("::1")), None, owned, true),
            Err(EINVAL)
        );
        // The IPv4 path: strict by its index; only the source is checked.
        let v4 = Some(ip("198.51.100.9"));
        let o4 = |i: u32, a: IpAddr| i == WLAN && a == ip("198.51.100.9");
        assert_eq!(
            datagram_source(UDP4, Path::V4, steer, v4, None, o4, false),
            Ok(UDP4)
        );
        assert_eq!(
            datagram_source(
                UDP4,
                Path::V4,
                steer,
                Some(ip("127.0.0.1")),
                None,
                o4,
                false
            ),
            Err(EINVAL)
        );
    }

    /// What a datagram's source leaves alone: no source, a group's, the program's
    /// own choice of another interface, a socket the program bound to a device, a
    /// destination that is not steered.
    #[test]
    fn a_datagrams_source_leaves_the_programs_own_choices_alone() {
        let steer = Verdict::Steer { index: WLAN };
        let udp6 = Sock::new(VALID | INET | V6 | UDP, 0);
        let no = |_: u32, _: IpAddr| false;
        let other = Some(ip("2001:db8:2::2"));
        assert_eq!(
            datagram_source(udp6, Path::V6, steer, None, None, no, false),
            Ok(udp6)
        );
        assert_eq!(
            datagram_source(udp6, Path::V6, steer, Some(ip("ff02::1")), None, no, false),
            Ok(udp6)
        );
        assert_eq!(
            datagram_source(udp6, Path::V6, steer, other, Some(WLAN + 1), no, false),
            Ok(udp6)
        );
        let app = Sock::new(udp6.flags | APP_BOUND, 0);
        assert_eq!(
            datagram_source(app, Path::V6, steer, other, None, no, false),
            Ok(app)
        );
        for v in [Verdict::Local { via: LO }, Verdict::Routed, Verdict::Scoped] {
            assert_eq!(
                datagram_source(udp6, Path::V6, v, other, None, no, false),
                Ok(udp6)
            );
        }
    }

    /// The supervisor ran neither check: a socket bound to loopback (or to an address
    /// of another interface than the one a rule chose) was bound to the steered
    /// device and sent (IPv6: a `::1`-sourced packet onto the link), and a UDP socket
    /// it had bound to wlan0 connected by wlan0 to a destination a rule sends by
    /// wwan0. One function now, for every executor.
    #[test]
    fn steered_destination_refused_by_the_sockets_own_source_or_device() {
        let steer = Verdict::Steer { index: WLAN };
        let src = Sock::new(UDP4.flags | SRC_ADDR, 0);
        let never = || -> i32 { panic!("not asked") };
        let lo = || Some(ip("127.0.0.1"));
        assert_eq!(
            steer_refusal(src, steer, never, lo, |_, _| false, false),
            Some(Refusal::Source {
                local: ip("127.0.0.1"),
                index: WLAN,
                errno: EINVAL
            })
        );
        let wlan_addr = || Some(ip("::ffff:198.51.100.66"));
        assert_eq!(
            steer_refusal(
                src,
                steer,
                never,
                wlan_addr,
                |i, a| i == WLAN && a == ip("198.51.100.66"),
                false
            ),
            None
        );
        let r = steer_refusal(
            src,
            Verdict::Steer { index: WWAN },
            never,
            wlan_addr,
            |i, _| i == WLAN,
            false,
        );
        assert_eq!(r.map(Refusal::errno), Some(EADDRNOTAVAIL));
        assert_eq!(
            steer_refusal(
                src,
                Verdict::Steer { index: WWAN },
                never,
                wlan_addr,
                |i, _| i == WLAN,
                true
            ),
            None,
            "foreign_bind = keep"
        );
        // Not steered, or no fixed source: nothing asked.
        for v in [
            Verdict::Routed,
            Verdict::Local { via: LO },
            Verdict::SteerMulticast { index: WLAN },
        ] {
            assert_eq!(
                steer_refusal(src, v, never, || panic!("not asked"), |_, _| false, false),
                None
            );
        }
        assert_eq!(
            steer_refusal(
                UDP4,
                steer,
                never,
                || panic!("not asked"),
                |_, _| false,
                false
            ),
            None
        );
        // Bound by the shim: the device it is bound to now.
        let bound = Sock::new(UDP4.flags | SHIM_BOUND | SRC_ADDR, 0);
        assert_eq!(
            steer_refusal(
                bound,
                Verdict::Steer { index: WWAN },
                || WLAN as i32,
                lo,
                |_, _| false,
                false
            ),
            Some(Refusal::BoundElsewhere {
                bound: WLAN as i32,
                index: WWAN
            })
        );
        assert_eq!(
            steer_refusal(bound, steer, || WLAN as i32, lo, |_, _| false, false),
            None
        );
        // The program's own device: its choice.
        let app = Sock::new(UDP4.flags | APP_BOUND | SRC_ADDR, 0);
        assert_eq!(
            steer_refusal(app, steer, never, lo, |_, _| false, false),
            None
        );
        // TCP with a loopback source.
        let tcp = Sock::new(VALID | INET | TCP | SRC_ADDR, 0);
        assert_eq!(
            steer_refusal(tcp, steer, never, || Some(ip("::1")), |_, _| false, false)
                .map(Refusal::errno),
            Some(EINVAL)
        );
    }

    #[test]
    fn udp_socket_bound_to_loopback_could_not_reach_loopback_after_one_remote_send() {
        // A loopback source is never sent off the host, whatever foreign_bind says.
        for lo in ["127.0.0.1", "127.0.0.5", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(
                fixed_source_refuses(ip(lo), false, false),
                Some(EINVAL),
                "{lo}"
            );
            assert_eq!(
                fixed_source_refuses(ip(lo), false, true),
                Some(EINVAL),
                "{lo}"
            );
        }
    }

    #[test]
    fn bind_steps_follow_the_decision_unless_the_program_bound_a_device() {
        use config_schema::{AddrFamily, Bind, BindAddr, KeepReason, Why};
        let name = config_schema::IfName::new("wlan0").unwrap();
        let b = Bind {
            ifname: name,
            index: WLAN,
            family: AddrFamily::V4,
            multicast: false,
            skipped: 0,
            why: Why::Default,
            options: false,
        };
        let tcp = Sock::new(VALID | INET | TCP, 0);
        let rw = BindAddr::Rewrite {
            to: ip("198.51.100.66"),
            bind: b,
        };
        assert_eq!(
            bind(tcp, ip("198.51.100.2"), &rw),
            BindStep::Rewrite(ip("198.51.100.66"))
        );
        // An AF_INET6 socket asked for eth0's address IPv4-mapped: mapped again.
        let tcp6 = Sock::new(VALID | INET | V6 | TCP, 0);
        assert_eq!(
            bind(tcp6, ip("::ffff:198.51.100.2"), &rw),
            BindStep::Rewrite(ip("::ffff:198.51.100.66"))
        );
        assert_eq!(
            bind(tcp, ip("127.0.0.1"), &BindAddr::Keep(KeepReason::Loopback)),
            BindStep::AsIs
        );
        let app = Sock::new(tcp.flags | APP_BOUND, 0);
        assert_eq!(bind(app, ip("198.51.100.2"), &rw), BindStep::AsIs);
    }

    #[test]
    fn options_once_per_socket_and_the_programs_tos_wins() {
        use config_schema::{Applied, OnMarkDenied};
        let a = Applied {
            source: Some(ip("198.51.100.67")),
            source_missing: None,
            mark: Some(0x10),
            dscp: Some(46),
        };
        let tcp = Sock::new(VALID | INET | TCP, 0);
        let free = Current::default();
        assert_eq!(
            options(tcp, Path::V4, &a, free),
            OptionsPlan {
                mark: Some(0x10),
                tos: Some((Path::V4, 46 << 2)),
                tos_other: None,
                source: Some(ip("198.51.100.67")),
            }
        );
        // The program set a TOS of its own (ECN bits alone are not a class).
        let p = options(tcp, Path::V6, &a, Current { tos: 0x20, ..free });
        assert_eq!((p.tos, p.mark), (None, Some(0x10)));
        let p = options(tcp, Path::V6, &a, Current { tos: 0x02, ..free });
        assert_eq!(p.tos, Some((Path::V6, 186)));
        // The program bound a local address (or a datagram did): no source binding.
        let p = options(
            tcp,
            Path::V4,
            &a,
            Current {
                locally_bound: true,
                ..free
            },
        );
        assert_eq!(p.source, None);
        // Done once per socket; `dscp = 0` sets nothing.
        assert!(options(Sock::new(tcp.flags | SHIM_OPTS, 0), Path::V4, &a, free).is_empty());
        let zero = Applied {
            dscp: Some(0),
            ..Applied::default()
        };
        assert!(options(tcp, Path::V4, &zero, free).is_empty());
        assert_eq!(mark_refused(OnMarkDenied::Block), Some(EPERM));
        assert_eq!(mark_refused(OnMarkDenied::Continue), None);
    }

    /// A UDP socket the shim bound to wlan0 (its first `connect`, or the first
    /// datagram of a socket with a fixed source), then asked to reach a destination a
    /// `block` rule refuses, or loopback (a second `connect`, a `sendto`): the binding
    /// "settled" every call, so the refused datagram left by wlan0 and the loopback one
    /// went onto wlan0's wire. Refused (errno) and `EINVAL` now; steered and routed
    /// destinations still follow the binding, and a device the program bound is its
    /// own choice.
    #[test]
    fn shim_bound_udp_socket_sent_refused_and_loopback_destinations_by_its_device() {
        let s = Sock::new(UDP4.flags | SHIM_BOUND, 0);
        let lo = Verdict::Local { via: LO };
        let no = Verdict::Refuse(EACCES);
        assert_eq!(datagram(s, Path::V4, no, false, false).step, Fail(EACCES));
        assert_eq!(datagram(s, Path::V4, lo, false, false).step, Fail(EINVAL));
        assert_eq!(connect(s, no), ConnectStep::Fail(EACCES));
        assert_eq!(connect(s, lo), ConnectStep::Fail(EINVAL));
        for v in [Verdict::Steer { index: WWAN }, Verdict::Routed] {
            assert_eq!(datagram(s, Path::V4, v, false, false).step, AsIs);
            assert_eq!(connect(s, v), ConnectStep::AsIs);
        }
        let app = Sock::new(UDP4.flags | APP_BOUND, 0);
        assert_eq!(datagram(app, Path::V4, lo, false, false).step, AsIs);
        assert_eq!(connect(app, no), ConnectStep::AsIs);
        let tcp = Sock::new(VALID | INET | TCP | SHIM_BOUND, 0);
        assert_eq!(connect(tcp, no), ConnectStep::AsIs);
    }

    /// A program that marks its own socket (`SO_MARK` 0x20, a VPN client keeping its
    /// tunnel's packets off the tunnel route) under `mark = 0x10`: the policy's mark
    /// replaced it. The program's mark wins, as its class and its device do.
    #[test]
    fn programs_own_mark_was_replaced_by_the_policys() {
        let a = config_schema::Applied {
            mark: Some(0x10),
            ..config_schema::Applied::default()
        };
        let udp = Sock::new(VALID | INET | UDP, 0);
        let marked = Current {
            mark: 0x20,
            ..Current::default()
        };
        assert_eq!(options(udp, Path::V4, &a, marked).mark, None);
        assert_eq!(
            options(udp, Path::V4, &a, Current::default()).mark,
            Some(0x10)
        );
    }

    /// A dual-stack `AF_INET6` UDP socket under `dscp = "ef"` and `source`: the class
    /// was set for the first datagram's path only (IPv6 datagrams after an IPv4-mapped
    /// one left with class 0), and the source bind tied it to one family (IPv6 sends
    /// after a mapped one failed with `EAFNOSUPPORT`). Both paths get the class, each
    /// unless the program set it; its IPv4-mapped datagrams bind no source.
    #[test]
    fn dual_stack_socket_got_the_dscp_for_its_first_family_only() {
        let a = config_schema::Applied {
            dscp: Some(46),
            source: Some(ip("198.51.100.66")),
            ..config_schema::Applied::default()
        };
        let udp6 = Sock::new(VALID | INET | V6 | UDP, 0);
        let now = Current {
            tos_other: Some(0),
            mapped_on_dual_stack: true,
            ..Current::default()
        };
        let p = options(udp6, Path::V4, &a, now);
        assert_eq!(p.tos, Some((Path::V4, 46 << 2)));
        assert_eq!(p.tos_other, Some((Path::V6, 46 << 2)));
        assert_eq!(p.source, None);
        // The program's own traffic class on the IPv6 path stays.
        let own = Current {
            tos_other: Some(0x28),
            ..now
        };
        assert_eq!(options(udp6, Path::V4, &a, own).tos_other, None);
        // IPv6-only, or connected: one path, and the source.
        let single = Current::default();
        let p = options(udp6, Path::V6, &a, single);
        assert_eq!((p.tos_other, p.source), (None, a.source));
    }

    /// A UDP socket on which the program set only ECN bits (`IP_TOS` 0x02, ECT(0), as
    /// QUIC stacks do) under `dscp = "ef"`: the shim set the TOS byte to `46 << 2`,
    /// clearing the program's ECN codepoint (seen on the wire: ECN 2 without the
    /// shim, 0 with it). The class goes in the upper six bits; the ECN bits stay.
    #[test]
    fn dscp_cleared_the_ecn_bits_the_program_set_on_a_udp_socket() {
        let a = config_schema::Applied {
            dscp: Some(46),
            ..config_schema::Applied::default()
        };
        let udp = Sock::new(VALID | INET | V6 | UDP, 0);
        for (path, ecn) in [(Path::V4, 0x02), (Path::V6, 0x01), (Path::V4, 0x03)] {
            let now = Current {
                tos: ecn,
                ..Current::default()
            };
            assert_eq!(
                options(udp, path, &a, now).tos,
                Some((path, (46 << 2) | ecn))
            );
        }
    }

    /// A UDP socket bound to a specific IPv6 address (wlan0's, or eth0's rewritten to
    /// wlan0's) sent its steered datagrams with a PKTINFO naming wlan0, which the
    /// kernel takes as a mere preference when the source is fixed: they left by eth0
    /// (the lower-metric default route). One bound to wlan0's second IPv4 address sent
    /// them from its first (a PKTINFO's `ipi_spec_dst` of 0 replaces the bound
    /// source), and the answers were lost. Such a socket is bound to the device.
    #[test]
    fn socket_bound_to_a_source_left_by_the_default_route_or_lost_its_source_to_pktinfo() {
        let v = Verdict::Steer { index: WLAN };
        for s in [
            Sock::new(VALID | INET | V6 | UDP | SRC_ADDR, 0),
            Sock::new(VALID | INET | UDP | SRC_ADDR, 0),
        ] {
            for path in [Path::V4, Path::V6] {
                assert_eq!(
                    datagram(s, path, v, false, false).step,
                    BindDevice { index: WLAN }
                );
                assert_eq!(
                    datagram(s, path, v, true, false).step,
                    BindDevice { index: WLAN },
                    "never promoted"
                );
            }
            // Exempt destinations, and once bound, as before.
            assert_eq!(
                datagram(s, Path::V6, Verdict::Local { via: LO }, false, false).step,
                AsIs
            );
            let bound = Sock::new(s.flags | SHIM_BOUND, 0);
            assert_eq!(datagram(bound, Path::V6, v, false, false).step, AsIs);
        }
    }

    /// A root program's `SO_BINDTOIFINDEX` 0 (or `SO_BINDTODEVICE ""`) on a socket the
    /// shim bound was accepted, and its datagrams left by the default route.
    #[test]
    fn dropping_the_shims_device_binding_is_refused_choosing_a_device_is_not() {
        let shim = Sock::new(
            Sock::of(Some(AddrFamily::V4), Proto::Udp).flags | SHIM_BOUND,
            0,
        );
        let app = Sock::new(
            Sock::of(Some(AddrFamily::V4), Proto::Udp).flags | APP_BOUND,
            0,
        );
        let zero = 0i32.to_ne_bytes();
        let three = 3i32.to_ne_bytes();
        for (name, val) in [
            (SO_BINDTOIFINDEX, &zero[..]),
            (SO_BINDTODEVICE, &b""[..]),
            (SO_BINDTODEVICE, &b"\0eth0"[..]),
        ] {
            assert_eq!(
                unbind_refused(shim, SOL_SOCKET, name, val),
                Some(EPERM),
                "{val:?}"
            );
            assert_eq!(unbind_refused(app, SOL_SOCKET, name, val), None);
        }
        for (name, val) in [
            (SO_BINDTOIFINDEX, &three[..]),
            (SO_BINDTODEVICE, &b"eth0"[..]),
        ] {
            assert_eq!(unbind_refused(shim, SOL_SOCKET, name, val), None);
        }
        // A short SO_BINDTOIFINDEX value is the kernel's EINVAL, not ours.
        assert_eq!(
            unbind_refused(shim, SOL_SOCKET, SO_BINDTOIFINDEX, &[0, 0]),
            None
        );
        assert_eq!(unbind_refused(shim, 0, SO_BINDTOIFINDEX, &zero), None);
    }

    #[test]
    fn an_ipv6_time_wait_ack_left_by_the_main_table_so_tcp_v6_sockets_hold_fin_wait2() {
        use core::net::{Ipv4Addr, Ipv6Addr};
        let v6: IpAddr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 0x10).into();
        let wildcard6: IpAddr = Ipv6Addr::UNSPECIFIED.into();
        let mapped: IpAddr = Ipv4Addr::new(203, 0, 113, 10).to_ipv6_mapped().into();
        let v4: IpAddr = Ipv4Addr::new(203, 0, 113, 10).into();
        assert!(holds_fin_wait2(Proto::Tcp, v6));
        assert!(
            holds_fin_wait2(Proto::Tcp, wildcard6),
            "a dual-stack listener's IPv6 peers"
        );
        assert!(
            !holds_fin_wait2(Proto::Tcp, mapped),
            "IPv4's answers are strict"
        );
        assert!(!holds_fin_wait2(Proto::Tcp, v4));
        assert!(!holds_fin_wait2(Proto::Udp, v6));
        assert!(!holds_fin_wait2(Proto::Other, v6));
        // The kernel's default (tcp_fin_timeout), a short one, and 0 are raised.
        assert_eq!(fin_wait2_hold(60), Some(FIN_WAIT2_HOLD_SECS));
        assert_eq!(fin_wait2_hold(0), Some(FIN_WAIT2_HOLD_SECS));
        assert_eq!(fin_wait2_hold(119), Some(FIN_WAIT2_HOLD_SECS));
        // The program's "reset, do not keep", and a hold already there, are left.
        assert_eq!(fin_wait2_hold(-1), None);
        assert_eq!(fin_wait2_hold(FIN_WAIT2_HOLD_SECS), None);
    }
}
