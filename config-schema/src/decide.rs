//! The decision: what to do with one socket operation. Pure, allocation-free and
//! shared by every enforcement layer.
//!
//! | destination / operation                      | result                               |
//! |----------------------------------------------|--------------------------------------|
//! | unspecified (`0.0.0.0`, `::`)                 | direct: this host                    |
//! | loopback (`127/8`, `::1`, `::ffff:127/104`)    | direct: loopback                     |
//! | an address of this host (not multicast)       | direct: own address                  |
//! | IPv6 link-local with a scope id               | direct: the program chose the link   |
//! | first matching rule: `action = "direct"`      | direct: rule                         |
//! | first matching rule: `action = "block"`       | block: `EACCES`                      |
//! | first matching rule: `via = [...]`            | bind: first usable of the rule's list|
//! | no rule, profile `via` empty                  | direct: nothing to enforce           |
//! | no rule                                       | bind: first usable of `via`          |
//! | nothing usable, `on_unavailable = "block"`    | block: `ENETUNREACH`                 |
//! | nothing usable, `on_unavailable = "direct"`   | direct: unavailable                  |
//!
//! A wildcard listener ([`Op::Listen`]) skips the address checks and rules: it is
//! confined to the first usable interface of `via` unless `listen = "any"`.
//!
//! An interface is usable when it exists, is up with carrier, and has an address of
//! the family the destination needs (IPv4 for IPv4 and IPv4-mapped destinations; a
//! global IPv6 address for IPv6, a link-local one being enough for link-local and
//! multicast destinations).

use crate::policy::{
    ForeignBind, Listen, OnUnavailable, Protocol, Rule, SocketOptions, Target, nets_contain,
};
use crate::{IfName, Profile};
use std::net::{IpAddr, Ipv6Addr};

/// Address family the chosen interface must have an address of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddrFamily {
    V4,
    V6,
}

/// The transport, from the socket's type and protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
    /// ICMP datagram sockets, SCTP, raw sockets…: matched only by `protocol = "any"`.
    Other,
}

/// Which operation asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `connect`, or a TCP Fast Open send (an implicit connect).
    Connect,
    /// One datagram sent to `dest` on an unconnected socket.
    Send,
    /// A wildcard-bound socket starts to listen (TCP) or binds a fixed port (UDP).
    Listen,
    /// A multicast membership with "any interface"; `dest` is the group.
    Join,
}

/// The facts about one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    pub proto: Proto,
    pub op: Op,
    /// Destination as the program gave it (IPv4-mapped IPv6 allowed).
    pub dest: IpAddr,
    pub port: u16,
    /// `sin6_scope_id` (0 for IPv4 or none).
    pub scope_id: u32,
}

/// The state of one interface, as the caller's snapshot of the kernel sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct IfaceState {
    pub index: u32,
    /// Administratively up and with carrier (`IFF_UP` and `IFF_RUNNING`).
    pub up: bool,
    pub has_v4: bool,
    /// A global (or unique-local) IPv6 address.
    pub has_v6: bool,
    pub has_v6_link_local: bool,
}

/// A snapshot of the host's interfaces. Implemented over the kernel by the shim and
/// over a table in tests.
pub trait NetView {
    fn iface(&self, name: &IfName) -> Option<IfaceState>;
    /// Is `ip` (already canonical: no IPv4-mapped form) assigned to this host?
    fn is_local(&self, ip: IpAddr) -> bool;
    /// The index (in the profile's rules) of the name rule under which `ip` was
    /// learned from a name resolution, if any.
    fn learned(&self, _ip: IpAddr) -> Option<usize> {
        None
    }
    /// Is `ip` (canonical) one of interface `index`'s addresses?
    fn owns(&self, _index: u32, _ip: IpAddr) -> bool {
        false
    }
    /// The address of `family` a socket on interface `index` would get from the kernel
    /// by default: its first IPv4 address, its first global IPv6 address.
    fn address_of(&self, _index: u32, _family: AddrFamily) -> Option<IpAddr> {
        None
    }
}

/// Why an interface of a `via` list was passed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unusable {
    Missing,
    Down,
    NoAddress(AddrFamily),
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unusable::Missing => f.write_str("does not exist"),
            Unusable::Down => f.write_str("is down or has no carrier"),
            Unusable::NoAddress(AddrFamily::V4) => f.write_str("has no IPv4 address"),
            Unusable::NoAddress(AddrFamily::V6) => f.write_str("has no IPv6 address"),
        }
    }
}

/// Why an operation's interface came from where it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why<'p> {
    /// The profile's `via`.
    Default,
    Rule(&'p Rule),
}

/// What the policy sets on a steered socket besides its interface (`source`, `mark`,
/// `dscp`), resolved for the chosen interface and the flow's family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Applied {
    /// The configured source address of the flow's family, the chosen interface
    /// having it.
    pub source: Option<IpAddr>,
    /// A configured source address the chosen interface does not have: the kernel
    /// chooses the source (the executor says so).
    pub source_missing: Option<IpAddr>,
    /// `SO_MARK` to set (never 0).
    pub mark: Option<u32>,
    /// DSCP to set (`IP_TOS` / `IPV6_TCLASS` = `dscp << 2`); `Some(0)` sets nothing.
    pub dscp: Option<u8>,
}

impl Applied {
    /// Nothing to set.
    pub fn is_empty(&self) -> bool {
        self.source.is_none() && self.mark.is_none() && self.dscp.is_none_or(|d| d == 0)
    }
}

/// Bind the socket (or this datagram) to an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bind<'p> {
    pub ifname: IfName,
    pub index: u32,
    /// The address family the source address must have.
    pub family: AddrFamily,
    /// Multicast destination: choose the multicast interface, not the device.
    pub multicast: bool,
    /// The policy's `source`, `mark` and `dscp` apply (connect and unicast datagrams
    /// with options configured; never listeners, multicast or name resolution): what
    /// they come to on this interface is [`applied`]'s to say. A flag, not the values,
    /// so that a decision stays small (it is copied into the decision cache on every
    /// connect).
    pub options: bool,
    /// How many earlier entries of the list were unusable (0: the first one won).
    pub skipped: u32,
    pub why: Why<'p>,
}

/// Why an operation is left alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirectReason<'p> {
    Loopback,
    OwnAddress,
    Unspecified,
    /// IPv6 link-local with a scope id: the program named the link itself.
    ScopedLinkLocal,
    /// The profile has no `via` and no rule matched.
    NoVia,
    Rule(&'p Rule),
    /// Nothing usable and `on_unavailable = "direct"`.
    Unavailable,
    /// `listen = "any"`.
    ListenAny,
}

/// The errno a block maps to (the shim turns it into the platform's value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrnoKind {
    /// `ENETUNREACH`: no usable interface.
    NetUnreach,
    /// `EACCES`: a rule forbids it (connect(2) documents EACCES for "a local firewall
    /// rule").
    Access,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockReason<'p> {
    Rule(&'p Rule),
    /// None of these interfaces is usable; [`unusable_reason`] says why for each.
    Unavailable(&'p [IfName]),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block<'p> {
    pub errno: ErrnoKind,
    pub reason: BlockReason<'p>,
    /// Family the interfaces lacked, for the log.
    pub family: AddrFamily,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision<'p> {
    Bind(Bind<'p>),
    Direct(DirectReason<'p>),
    Block(Block<'p>),
}

// A decision is copied into the engine's decision cache and through the executor on
// every connect: kept small (the resolved socket options were 44 of its 88 bytes).
const _: () = assert!(size_of::<Decision<'static>>() <= 40);

/// Decides what to do with `flow` for a process under `profile`.
pub fn decide<'p>(profile: &'p Profile, net: &impl NetView, flow: &Flow) -> Decision<'p> {
    let dest = flow.dest.to_canonical();
    let multicast = dest.is_multicast();
    let family = match dest {
        IpAddr::V4(_) => AddrFamily::V4,
        IpAddr::V6(_) => AddrFamily::V6,
    };
    let link_local_ok = multicast || is_v6_link_local(dest);
    if flow.op == Op::Listen {
        if profile.listen == Listen::Any {
            return Decision::Direct(DirectReason::ListenAny);
        }
        if profile.via.is_empty() {
            return Decision::Direct(DirectReason::NoVia);
        }
        let need = Need::Family {
            family,
            link_local_ok: true,
        };
        return choose(profile, net, &profile.via, need, false, Why::Default, false);
    }
    let need = Need::Family {
        family,
        link_local_ok,
    };
    if dest.is_unspecified() {
        return Decision::Direct(DirectReason::Unspecified);
    }
    if dest.is_loopback() {
        return Decision::Direct(DirectReason::Loopback);
    }
    if !multicast && net.is_local(dest) {
        return Decision::Direct(DirectReason::OwnAddress);
    }
    if flow.scope_id != 0 && is_v6_link_local(dest) {
        return Decision::Direct(DirectReason::ScopedLinkLocal);
    }
    let rule = profile
        .rules
        .iter()
        .find(|r| rule_matches(r, flow.proto, dest, flow.port));
    // Addresses a name rule resolved follow that rule unless an address rule matched.
    let rule = rule.or_else(|| net.learned(dest).and_then(|i| profile.rules.get(i)));
    if let Some(rule) = rule {
        return match &rule.target {
            Target::Direct => Decision::Direct(DirectReason::Rule(rule)),
            Target::Block => Decision::Block(Block {
                errno: ErrnoKind::Access,
                reason: BlockReason::Rule(rule),
                family,
            }),
            Target::Via(list) => {
                let opts = steered(flow, multicast, rule.options.or(profile.options));
                choose(profile, net, list, need, multicast, Why::Rule(rule), opts)
            }
        };
    }
    if profile.via.is_empty() {
        return Decision::Direct(DirectReason::NoVia);
    }
    let opts = steered(flow, multicast, profile.options);
    choose(
        profile,
        net,
        &profile.via,
        need,
        multicast,
        Why::Default,
        opts,
    )
}

/// Whether a steered flow gets the options `o`: connections and unicast datagrams only.
fn steered(flow: &Flow, multicast: bool, o: SocketOptions) -> bool {
    matches!(flow.op, Op::Connect | Op::Send) && !multicast && !o.is_empty()
}

/// The options a socket steered by `b` gets (`b.options` said they apply): the
/// profile's, under those of the rule that chose the interface, with the configured
/// source kept only if the interface has it (checked on `net`, the snapshot the
/// decision was made on). Pure, like [`decide`]; the executor calls it only when
/// `b.options` is set, so that a decision without options pays nothing for them.
pub fn applied(profile: &Profile, net: &impl NetView, b: &Bind<'_>) -> Applied {
    if !b.options {
        return Applied::default();
    }
    let o = match b.why {
        Why::Rule(rule) => rule.options.or(profile.options),
        Why::Default => profile.options,
    };
    let (source, source_missing) = match o.source(b.family == AddrFamily::V6) {
        Some(ip) if net.owns(b.index, ip) => (Some(ip), None),
        Some(ip) => (None, Some(ip)),
        None => (None, None),
    };
    Applied {
        source,
        source_missing,
        mark: o.mark.filter(|m| *m != 0),
        dscp: o.dscp,
    }
}

/// What an interface must have to carry the traffic being decided.
#[derive(Clone, Copy)]
enum Need {
    /// An address of this family (a link-local IPv6 one is enough when allowed).
    Family {
        family: AddrFamily,
        link_local_ok: bool,
    },
    /// An address of either family (name resolution).
    Any,
}

impl Need {
    /// The family `st` would carry this traffic with, if it is usable for it.
    fn served_by(self, st: &IfaceState) -> Option<AddrFamily> {
        if !st.up {
            return None;
        }
        match self {
            Need::Family {
                family,
                link_local_ok,
            } => usable(st, family, link_local_ok).then_some(family),
            Need::Any if st.has_v4 => Some(AddrFamily::V4),
            Need::Any if st.has_v6 => Some(AddrFamily::V6),
            Need::Any => None,
        }
    }

    fn family(self) -> AddrFamily {
        match self {
            Need::Family { family, .. } => family,
            Need::Any => AddrFamily::V4,
        }
    }
}

/// The first interface of `list` that can carry the traffic, else what
/// `on_unavailable` says. `options`: the policy's socket options apply.
fn choose<'p>(
    profile: &Profile,
    net: &impl NetView,
    list: &'p [IfName],
    need: Need,
    multicast: bool,
    why: Why<'p>,
    options: bool,
) -> Decision<'p> {
    for (skipped, name) in (0u32..).zip(list) {
        let Some(st) = net.iface(name) else { continue };
        if let Some(family) = need.served_by(&st) {
            return Decision::Bind(Bind {
                ifname: *name,
                index: st.index,
                family,
                multicast,
                options,
                skipped,
                why,
            });
        }
    }
    match profile.on_unavailable {
        OnUnavailable::Direct => Decision::Direct(DirectReason::Unavailable),
        OnUnavailable::Block => Decision::Block(Block {
            errno: ErrnoKind::NetUnreach,
            reason: BlockReason::Unavailable(list),
            family: need.family(),
        }),
    }
}

/// Why a `bind` to an explicit address is left as the program asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepReason {
    /// `0.0.0.0` / `::` (listeners are confined at `listen`).
    Unspecified,
    Loopback,
    /// Not an address of this host (`IP_FREEBIND`, a transparent proxy): the kernel
    /// answers.
    NotLocal,
    /// IPv6 link-local with a scope id: the program named the link itself.
    ScopedLinkLocal,
    /// An address of the chosen interface.
    ChosenInterface,
    /// Multicast (a receiver's group).
    Multicast,
    /// `foreign_bind = "keep"`.
    Policy,
    /// The profile has no `via`.
    NoVia,
    /// Nothing usable and `on_unavailable = "direct"`.
    Unavailable,
}

/// What a `bind` to an explicit address becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindAddr<'p> {
    Keep(KeepReason),
    /// Bind to `to` instead (same family; the port and every other field kept): the
    /// requested address belongs to another interface than the chosen one (`bind`).
    Rewrite {
        to: IpAddr,
        bind: Bind<'p>,
    },
    /// Refuse the bind: the chosen interfaces have no address of its family.
    Refuse(Block<'p>),
}

/// Decides what a `bind(addr)` becomes (see [`BindAddr`]). A bind knows no
/// destination, so the interface is the profile's `via` (rules choose by
/// destination): the first usable one with an address of `addr`'s family.
///
/// | address | result |
/// |---|---|
/// | unspecified, loopback, multicast | keep |
/// | not this host's | keep (the kernel answers) |
/// | IPv6 link-local with a scope id | keep |
/// | `foreign_bind = "keep"`, or no `via` | keep |
/// | the chosen interface's | keep |
/// | another interface's | rewrite to the chosen interface's `source`, else its first address of the family |
/// | nothing usable (`on_unavailable = "block"`) | refuse (`ENETUNREACH`) |
/// | nothing usable (`on_unavailable = "direct"`) | keep |
pub fn decide_bind<'p>(
    profile: &'p Profile,
    net: &impl NetView,
    addr: IpAddr,
    scope_id: u32,
) -> BindAddr<'p> {
    let ip = addr.to_canonical();
    if ip.is_unspecified() {
        return BindAddr::Keep(KeepReason::Unspecified);
    }
    if ip.is_loopback() {
        return BindAddr::Keep(KeepReason::Loopback);
    }
    if ip.is_multicast() {
        return BindAddr::Keep(KeepReason::Multicast);
    }
    if !net.is_local(ip) {
        return BindAddr::Keep(KeepReason::NotLocal);
    }
    if is_v6_link_local(ip) && scope_id != 0 {
        return BindAddr::Keep(KeepReason::ScopedLinkLocal);
    }
    if profile.foreign_bind == ForeignBind::Keep {
        return BindAddr::Keep(KeepReason::Policy);
    }
    if profile.via.is_empty() {
        return BindAddr::Keep(KeepReason::NoVia);
    }
    let family = match ip {
        IpAddr::V4(_) => AddrFamily::V4,
        IpAddr::V6(_) => AddrFamily::V6,
    };
    let need = Need::Family {
        family,
        link_local_ok: false,
    };
    let b = match choose(profile, net, &profile.via, need, false, Why::Default, false) {
        Decision::Bind(b) => b,
        Decision::Block(b) => return BindAddr::Refuse(b),
        Decision::Direct(_) => return BindAddr::Keep(KeepReason::Unavailable),
    };
    if net.owns(b.index, ip) {
        return BindAddr::Keep(KeepReason::ChosenInterface);
    }
    let configured = profile
        .options
        .source(family == AddrFamily::V6)
        .filter(|s| net.owns(b.index, *s));
    match configured.or_else(|| net.address_of(b.index, family)) {
        Some(to) => BindAddr::Rewrite { to, bind: b },
        None => BindAddr::Refuse(Block {
            errno: ErrnoKind::NetUnreach,
            reason: BlockReason::Unavailable(&profile.via),
            family,
        }),
    }
}

fn usable(st: &IfaceState, family: AddrFamily, link_local_ok: bool) -> bool {
    st.up
        && match family {
            AddrFamily::V4 => st.has_v4,
            AddrFamily::V6 => st.has_v6 || (link_local_ok && st.has_v6_link_local),
        }
}

/// Decides which interface the host name `name` is resolved over: the first name
/// rule that matches it, else the profile's `via`. The interface is usable when it
/// is up with an address of either family. A `Bind` here carries the index of the
/// rule (for [`NetView::learned`]) in `why`.
pub fn decide_name<'p>(profile: &'p Profile, net: &impl NetView, name: &str) -> Decision<'p> {
    let rule = profile
        .rules
        .iter()
        .find(|r| !r.names.is_empty() && r.matches_name(name));
    let (list, why) = match rule {
        Some(r) => match &r.target {
            Target::Direct => return Decision::Direct(DirectReason::Rule(r)),
            Target::Block => {
                return Decision::Block(Block {
                    errno: ErrnoKind::Access,
                    reason: BlockReason::Rule(r),
                    family: AddrFamily::V4,
                });
            }
            Target::Via(list) => (list.as_slice(), Why::Rule(r)),
        },
        None if profile.via.is_empty() => return Decision::Direct(DirectReason::NoVia),
        None => (profile.via.as_slice(), Why::Default),
    };
    choose(profile, net, list, Need::Any, false, why, false)
}

/// Why `name` cannot carry traffic of `family` (`None`: it can), for logs.
pub fn unusable_reason(net: &impl NetView, name: &IfName, family: AddrFamily) -> Option<Unusable> {
    let Some(st) = net.iface(name) else {
        return Some(Unusable::Missing);
    };
    if !st.up {
        return Some(Unusable::Down);
    }
    if usable(&st, family, false) {
        None
    } else {
        Some(Unusable::NoAddress(family))
    }
}

fn rule_matches(rule: &Rule, proto: Proto, dest: IpAddr, port: u16) -> bool {
    if !rule.names.is_empty() {
        return false;
    }
    let proto_ok = match rule.protocol {
        Protocol::Any => true,
        Protocol::Tcp => proto == Proto::Tcp,
        Protocol::Udp => proto == Proto::Udp,
    };
    proto_ok
        && (rule.to.is_empty() || nets_contain(&rule.to, dest))
        && (rule.ports.is_empty() || rule.ports.iter().any(|p| p.contains(port)))
}

fn is_v6_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V6(v6) => is_unicast_link_local(&v6),
        IpAddr::V4(_) => false,
    }
}

fn is_unicast_link_local(v6: &Ipv6Addr) -> bool {
    (v6.segments()[0] & 0xffc0) == 0xfe80
}

#[cfg(test)]
mod tests;
