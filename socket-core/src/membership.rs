//! Multicast membership requests (`setsockopt` values), without I/O: which group a
//! join or leave that names no interface is for ([`Abi::group_of`]), and the same
//! request pointed at the chosen interface ([`Abi::rewrite`]). The preload engine runs
//! these on the program's value before its `setsockopt` goes to the kernel; the
//! supervisor on the value it read from the program's memory, and makes the call
//! itself on its copy of the socket.
//!
//! The option numbers and the layouts are the kernel's, so the reader is given one
//! kernel's table, an [`Abi`]: [`LINUX`] here (the supervisor's and the Linux
//! engine's), XNU's in the shim's `sys/macos/membership.rs`. Linux's:
//!
//! | level, option | value | "no interface" means |
//! |---|---|---|
//! | `IPPROTO_IP`, `IP_ADD_MEMBERSHIP` / `IP_DROP_MEMBERSHIP` | `ip_mreq` (8 bytes) or `ip_mreqn` (12) | address 0.0.0.0 (and index 0) |
//! | `IPPROTO_IP`, `IP_ADD_SOURCE_MEMBERSHIP` / `IP_DROP_SOURCE_MEMBERSHIP` | `ip_mreq_source` (12: group, interface, source) | interface address 0.0.0.0 |
//! | `IPPROTO_IPV6`, `IPV6_ADD_MEMBERSHIP` / `IPV6_DROP_MEMBERSHIP` | `ipv6_mreq` (20) | index 0 |
//! | either, `MCAST_JOIN_GROUP` / `MCAST_LEAVE_GROUP` / `MCAST_JOIN_SOURCE_GROUP` / `MCAST_LEAVE_SOURCE_GROUP` | `group_req` (136) / `group_source_req` (264) | `gr_interface` 0 |
//!
//! A leave is rewritten as its join is: the membership lives on the chosen interface,
//! and a leave naming none would look for it on the route's interface.

use crate::{APP_BOUND, Sock, Verdict};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `IPPROTO_IP` (Linux and XNU).
pub const IPPROTO_IP: i32 = 0;
/// `IPPROTO_IPV6` (Linux and XNU).
pub const IPPROTO_IPV6: i32 = 41;
/// `IP_MULTICAST_IF` (Linux).
pub const IP_MULTICAST_IF: i32 = 32;
/// `IP_ADD_MEMBERSHIP` (Linux).
pub const IP_ADD_MEMBERSHIP: i32 = 35;
/// `IP_DROP_MEMBERSHIP` (Linux).
pub const IP_DROP_MEMBERSHIP: i32 = 36;
/// `IP_ADD_SOURCE_MEMBERSHIP` (Linux).
pub const IP_ADD_SOURCE_MEMBERSHIP: i32 = 39;
/// `IP_DROP_SOURCE_MEMBERSHIP` (Linux).
pub const IP_DROP_SOURCE_MEMBERSHIP: i32 = 40;
/// `MCAST_JOIN_GROUP` (Linux, both levels).
pub const MCAST_JOIN_GROUP: i32 = 42;
/// `MCAST_LEAVE_GROUP` (Linux).
pub const MCAST_LEAVE_GROUP: i32 = 45;
/// `MCAST_JOIN_SOURCE_GROUP` (Linux).
pub const MCAST_JOIN_SOURCE_GROUP: i32 = 46;
/// `MCAST_LEAVE_SOURCE_GROUP` (Linux).
pub const MCAST_LEAVE_SOURCE_GROUP: i32 = 47;
/// `IPV6_MULTICAST_IF` (Linux).
pub const IPV6_MULTICAST_IF: i32 = 17;
/// `IPV6_ADD_MEMBERSHIP` (`IPV6_JOIN_GROUP`, Linux).
pub const IPV6_ADD_MEMBERSHIP: i32 = 20;
/// `IPV6_DROP_MEMBERSHIP` (`IPV6_LEAVE_GROUP`, Linux).
pub const IPV6_DROP_MEMBERSHIP: i32 = 21;

/// The most bytes of a value these functions read (the longest request, Linux's
/// `group_source_req`, has 264).
pub const MAX_VALUE: usize = 272;

/// The membership options of level `IPPROTO_IP` (Linux).
pub const IP_OPTIONS: [i32; 8] = [
    IP_ADD_MEMBERSHIP,
    IP_DROP_MEMBERSHIP,
    IP_ADD_SOURCE_MEMBERSHIP,
    IP_DROP_SOURCE_MEMBERSHIP,
    MCAST_JOIN_GROUP,
    MCAST_LEAVE_GROUP,
    MCAST_JOIN_SOURCE_GROUP,
    MCAST_LEAVE_SOURCE_GROUP,
];

/// The membership options of level `IPPROTO_IPV6` (Linux).
pub const IPV6_OPTIONS: [i32; 6] = [
    IPV6_ADD_MEMBERSHIP,
    IPV6_DROP_MEMBERSHIP,
    MCAST_JOIN_GROUP,
    MCAST_LEAVE_GROUP,
    MCAST_JOIN_SOURCE_GROUP,
    MCAST_LEAVE_SOURCE_GROUP,
];

/// How a kernel reads the interface of an `IP_ADD_MEMBERSHIP` value, and so how a
/// rewrite names the chosen one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mreq {
    /// Linux: an `ip_mreq` {group, interface address} or, taken by its length (12
    /// bytes or more), an `ip_mreqn` {group, address, index}; the rewrite is an
    /// `ip_mreqn` with the index.
    OrMreqn,
    /// XNU: an `ip_mreq` only (a longer value's tail is not read), whose interface
    /// address, when in 0.0.0.0/8, is an interface index (RFC 1724 §3.3); the rewrite
    /// writes the index there.
    IndexInAddress,
}

/// How a rewrite names the chosen interface in an `ip_mreq_source`, which has an
/// interface address only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameBy {
    /// By the interface's IPv4 address (none: no rewrite).
    Address,
    /// By its index in 0.0.0.0/8 (XNU's `ip_multicast_if`, RFC 1724 §3.3).
    IndexInAddress,
}

/// How a kernel reads an `IP_MULTICAST_IF` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MulticastIf {
    /// Linux, by length: an `ip_mreqn` (12 bytes or more: its address or its index),
    /// an `ip_mreq` (8: its interface address) or an `in_addr` (4).
    ByLength,
    /// XNU (`inp_set_multicast_if`): exactly 12 bytes is an `ip_mreqn`, of which only
    /// the index is read; anything else is an `in_addr`, its first 4 bytes.
    MreqnIndexOrAddress,
}

/// One kernel's membership options: their numbers, the layouts of their values where
/// kernels differ, and whether a `group_req` can name no interface.
#[derive(Clone, Copy, Debug)]
pub struct Abi {
    /// `IP_ADD_MEMBERSHIP`, `IP_DROP_MEMBERSHIP` (level `IPPROTO_IP`).
    pub ip_membership: [i32; 2],
    /// `IP_ADD_SOURCE_MEMBERSHIP`, `IP_DROP_SOURCE_MEMBERSHIP` (`IPPROTO_IP`).
    pub ip_source_membership: [i32; 2],
    /// `IPV6_JOIN_GROUP`, `IPV6_LEAVE_GROUP` (`IPPROTO_IPV6`).
    pub ipv6_membership: [i32; 2],
    /// `MCAST_JOIN_GROUP`, `MCAST_LEAVE_GROUP`, `MCAST_JOIN_SOURCE_GROUP`,
    /// `MCAST_LEAVE_SOURCE_GROUP` (either level).
    pub mcast: [i32; 4],
    /// How `IP_ADD_MEMBERSHIP`'s value names its interface.
    pub mreq: Mreq,
    /// Where `ip_mreq_source`'s interface address is: 4 on Linux {group, interface,
    /// source}, 8 on XNU {group, source, interface}.
    pub source_interface_at: usize,
    /// How a rewrite names the interface in an `ip_mreq_source`.
    pub source_name_by: NameBy,
    /// Whether a `group_req` with `gr_interface` 0 is joined on the route's
    /// interface (Linux: there is a request to point) or refused by the kernel
    /// (XNU: `EADDRNOTAVAIL`, nothing joined, nothing to point). Linux's layout:
    /// `gr_interface`, 4 bytes of padding, a `sockaddr_storage` (`u16` family).
    pub group_req_any: bool,
    /// How `IP_MULTICAST_IF`'s value is read ([`Abi::multicast_if_chooses`]).
    pub multicast_if: MulticastIf,
}

/// Linux's table (`<linux/in.h>`, `<linux/in6.h>`; `net/ipv4/ip_sockglue.c`).
pub const LINUX: Abi = Abi {
    ip_membership: [IP_ADD_MEMBERSHIP, IP_DROP_MEMBERSHIP],
    ip_source_membership: [IP_ADD_SOURCE_MEMBERSHIP, IP_DROP_SOURCE_MEMBERSHIP],
    ipv6_membership: [IPV6_ADD_MEMBERSHIP, IPV6_DROP_MEMBERSHIP],
    mcast: [
        MCAST_JOIN_GROUP,
        MCAST_LEAVE_GROUP,
        MCAST_JOIN_SOURCE_GROUP,
        MCAST_LEAVE_SOURCE_GROUP,
    ],
    mreq: Mreq::OrMreqn,
    source_interface_at: 4,
    source_name_by: NameBy::Address,
    group_req_any: true,
    multicast_if: MulticastIf::ByLength,
};

/// Linux's `AF_INET` and `AF_INET6` in a `group_req`'s `sockaddr_storage`.
const LINUX_AF_INET: u16 = 2;
const LINUX_AF_INET6: u16 = 10;

/// A replacement option value (its first `len` bytes).
pub struct Value {
    pub buf: [u8; MAX_VALUE],
    pub len: usize,
}

impl Value {
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The 4 bytes of an `in_addr` in 0.0.0.0/8 that name interface `index` (RFC 1724
/// §3.3: the index in the low 24 bits, network order); `None` for an index that does
/// not fit, or 0 (which is "any").
fn index_in_address(index: u32) -> Option<[u8; 4]> {
    (index != 0 && index < 1 << 24).then(|| index.to_be_bytes())
}

fn v4(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

fn v6(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    Ipv6Addr::from(a)
}

impl Abi {
    /// The membership options of level `IPPROTO_IP`, in this kernel's numbers.
    pub fn ip_options(&self) -> impl Iterator<Item = i32> {
        self.ip_membership
            .into_iter()
            .chain(self.ip_source_membership)
            .chain(self.mcast)
    }

    /// The membership options of level `IPPROTO_IPV6`.
    pub fn ipv6_options(&self) -> impl Iterator<Item = i32> {
        self.ipv6_membership.into_iter().chain(self.mcast)
    }

    /// Whether (`level`, `name`) is one of the membership options
    /// [`group_of`](Abi::group_of) reads.
    pub fn is_membership(&self, level: i32, name: i32) -> bool {
        match level {
            IPPROTO_IP => self.ip_options().any(|o| o == name),
            IPPROTO_IPV6 => self.ipv6_options().any(|o| o == name),
            _ => false,
        }
    }

    /// The group of a membership request `v` (the value's first bytes, at most
    /// [`MAX_VALUE`]) whose interface is unspecified; `None` for one that names an
    /// interface, another option, or a value too short for the kernel to take (it
    /// answers that itself).
    pub fn group_of(&self, level: i32, name: i32, v: &[u8]) -> Option<IpAddr> {
        let zero = |r: core::ops::Range<usize>| v[r].iter().all(|b| *b == 0);
        if level == IPPROTO_IP && self.ip_membership.contains(&name) && v.len() >= 8 {
            let any = match self.mreq {
                Mreq::OrMreqn => zero(4..8) && (v.len() < 12 || zero(8..12)),
                Mreq::IndexInAddress => zero(4..8),
            };
            return any.then(|| IpAddr::V4(v4(&v[0..4])));
        }
        if level == IPPROTO_IP && self.ip_source_membership.contains(&name) && v.len() >= 12 {
            let at = self.source_interface_at;
            return zero(at..at + 4).then(|| IpAddr::V4(v4(&v[0..4])));
        }
        if level == IPPROTO_IPV6 && self.ipv6_membership.contains(&name) && v.len() >= 20 {
            // ipv6_mreq {in6_addr, ifindex}: the same on both.
            return zero(16..20).then(|| IpAddr::V6(v6(&v[0..16])));
        }
        let mcast_level = level == IPPROTO_IP || level == IPPROTO_IPV6;
        if mcast_level && self.mcast.contains(&name) && self.group_req_any && v.len() >= 8 + 28 {
            // group_req / group_source_req: u32 interface, padding, sockaddr_storage.
            if !zero(0..4) {
                return None;
            }
            return match u16::from_ne_bytes([v[8], v[9]]) {
                LINUX_AF_INET => Some(IpAddr::V4(v4(&v[12..16]))),
                LINUX_AF_INET6 => Some(IpAddr::V6(v6(&v[16..32]))),
                _ => None,
            };
        }
        None
    }

    /// The request `v` ([`group_of`](Abi::group_of) said it names no interface)
    /// pointed at interface `index`. `v4_of` gives the interface's IPv4 address, for
    /// a request that names an interface by address only (Linux's `ip_mreq_source`);
    /// `None` when it cannot be named (no such address, or an index 0.0.0.0/8 cannot
    /// hold).
    pub fn rewrite(
        &self,
        level: i32,
        name: i32,
        v: &[u8],
        index: u32,
        v4_of: impl FnOnce(u32) -> Option<Ipv4Addr>,
    ) -> Option<Value> {
        let mut out = Value {
            buf: [0; MAX_VALUE],
            len: 0,
        };
        let n = v.len().min(MAX_VALUE);
        out.buf[..n].copy_from_slice(&v[..n]);
        out.len = n;
        let idx = index.to_ne_bytes();
        if level == IPPROTO_IP && self.ip_membership.contains(&name) {
            match self.mreq {
                Mreq::OrMreqn => {
                    // Always an ip_mreqn: the kernel takes it by length.
                    out.buf[4..12].fill(0);
                    out.buf[8..12].copy_from_slice(&idx);
                    out.len = 12;
                }
                Mreq::IndexInAddress => {
                    out.buf[4..8].copy_from_slice(&index_in_address(index)?);
                }
            }
        } else if level == IPPROTO_IP && self.ip_source_membership.contains(&name) {
            let at = self.source_interface_at;
            let a = match self.source_name_by {
                NameBy::Address => v4_of(index)?.octets(),
                NameBy::IndexInAddress => index_in_address(index)?,
            };
            out.buf[at..at + 4].copy_from_slice(&a);
        } else if level == IPPROTO_IPV6 && self.ipv6_membership.contains(&name) {
            out.buf[16..20].copy_from_slice(&idx);
            out.len = 20;
        } else {
            // group_req / group_source_req.
            out.buf[0..4].copy_from_slice(&idx);
        }
        Some(out)
    }

    /// Whether a `setsockopt` value `v` (the bytes the kernel reads) of the option
    /// choosing the multicast interface at `level` (`IP_MULTICAST_IF`, XNU's
    /// `IP_MULTICAST_IFINDEX`, `IPV6_MULTICAST_IF`) chooses an interface, as the
    /// kernel takes it ([`MulticastIf`]); for IPv6 an interface index. All zero (or
    /// too short: the kernel refuses or resets it) is "any", which withdraws a
    /// choice.
    pub fn multicast_if_chooses(&self, level: i32, v: &[u8]) -> bool {
        let nonzero = |b: &[u8]| b.iter().any(|x| *x != 0);
        match (level, self.multicast_if) {
            (IPPROTO_IP, MulticastIf::ByLength) if v.len() >= 12 => nonzero(&v[4..12]),
            (IPPROTO_IP, MulticastIf::ByLength) if v.len() >= 8 => nonzero(&v[4..8]),
            (IPPROTO_IP, MulticastIf::MreqnIndexOrAddress) if v.len() == 12 => nonzero(&v[8..12]),
            (IPPROTO_IP | IPPROTO_IPV6, _) if v.len() >= 4 => nonzero(&v[0..4]),
            _ => false,
        }
    }
}

/// What to do with a join or leave that names no interface ([`group_of`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinStep {
    /// The program's request, unchanged (the routing table's interface).
    AsIs,
    /// The request pointed at interface `index` ([`rewrite`]).
    Rewrite { index: u32 },
    /// Refused with this errno; no membership is made.
    Fail(i32),
}

/// Decides a join or leave of a group that names no interface, from the group's
/// verdict (`Op::Join`).
///
/// | socket | verdict | step |
/// |---|---|---|
/// | bound to a device by the program | any | as is (its own choice of link) |
/// | any | steer (multicast) | rewrite to the interface |
/// | any | refuse | fail |
/// | any | direct | as is |
pub fn join(s: Sock, v: Verdict) -> JoinStep {
    if s.has(APP_BOUND) {
        return JoinStep::AsIs;
    }
    match v {
        Verdict::SteerMulticast { index } | Verdict::Steer { index } => JoinStep::Rewrite { index },
        Verdict::Refuse(e) => JoinStep::Fail(e),
        Verdict::Local { .. } | Verdict::Scoped | Verdict::Routed => JoinStep::AsIs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WLAN: u32 = 3;

    fn mreq(group: [u8; 4], iface: [u8; 4]) -> [u8; 8] {
        let mut v = [0u8; 8];
        v[..4].copy_from_slice(&group);
        v[4..].copy_from_slice(&iface);
        v
    }

    /// A `group_source_req` (its first 136 bytes are a `group_req`).
    fn group_req(interface: u32, group: IpAddr) -> [u8; 264] {
        let mut v = [0u8; 264];
        v[0..4].copy_from_slice(&interface.to_ne_bytes());
        match group {
            IpAddr::V4(a) => {
                v[8..10].copy_from_slice(&2u16.to_ne_bytes());
                v[12..16].copy_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                v[8..10].copy_from_slice(&10u16.to_ne_bytes());
                v[16..32].copy_from_slice(&a.octets());
            }
        }
        v
    }

    #[test]
    fn ip_mreq_and_ip_mreqn_naming_no_interface_get_the_chosen_index() {
        let g: IpAddr = "239.1.2.3".parse().unwrap();
        let v = mreq([239, 1, 2, 3], [0; 4]);
        assert_eq!(LINUX.group_of(IPPROTO_IP, IP_ADD_MEMBERSHIP, &v), Some(g));
        let r = LINUX
            .rewrite(IPPROTO_IP, IP_ADD_MEMBERSHIP, &v, WLAN, |_| None)
            .unwrap();
        assert_eq!(r.len, 12, "an ip_mreqn");
        assert_eq!(&r.bytes()[..4], &[239, 1, 2, 3]);
        assert_eq!(&r.bytes()[4..8], &[0; 4]);
        assert_eq!(r.bytes()[8..12], WLAN.to_ne_bytes());
        // An ip_mreqn with index 0 and address any: the same.
        let mut n = [0u8; 12];
        n[..8].copy_from_slice(&v);
        assert_eq!(LINUX.group_of(IPPROTO_IP, IP_ADD_MEMBERSHIP, &n), Some(g));
        assert_eq!(LINUX.group_of(IPPROTO_IP, IP_DROP_MEMBERSHIP, &n), Some(g));
        // The program named an interface (by address, or by index): its choice.
        assert_eq!(
            LINUX.group_of(
                IPPROTO_IP,
                IP_ADD_MEMBERSHIP,
                &mreq([239, 1, 2, 3], [10, 0, 0, 1])
            ),
            None
        );
        n[8..12].copy_from_slice(&2u32.to_ne_bytes());
        assert_eq!(LINUX.group_of(IPPROTO_IP, IP_ADD_MEMBERSHIP, &n), None);
        // Too short for the kernel: it answers EINVAL itself.
        assert_eq!(LINUX.group_of(IPPROTO_IP, IP_ADD_MEMBERSHIP, &v[..7]), None);
    }

    #[test]
    fn source_membership_names_the_interface_by_its_address() {
        let mut v = [0u8; 12];
        v[..4].copy_from_slice(&[232, 1, 1, 1]);
        v[8..12].copy_from_slice(&[203, 0, 113, 9]);
        assert_eq!(
            LINUX.group_of(IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP, &v),
            Some("232.1.1.1".parse().unwrap())
        );
        let a = Ipv4Addr::new(198, 51, 100, 66);
        let r = LINUX
            .rewrite(IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP, &v, WLAN, |i| {
                (i == WLAN).then_some(a)
            })
            .unwrap();
        assert_eq!(r.bytes(), &[232, 1, 1, 1, 198, 51, 100, 66, 203, 0, 113, 9]);
        // No IPv4 address on the interface: no rewrite (the caller refuses).
        assert!(
            LINUX
                .rewrite(IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP, &v, WLAN, |_| None)
                .is_none()
        );
    }

    #[test]
    fn ipv6_mreq_and_group_req_with_interface_zero_get_the_chosen_index() {
        let g6: IpAddr = "ff05::1:3".parse().unwrap();
        let mut v = [0u8; 20];
        if let IpAddr::V6(a) = g6 {
            v[..16].copy_from_slice(&a.octets());
        }
        assert_eq!(
            LINUX.group_of(IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, &v),
            Some(g6)
        );
        let r = LINUX
            .rewrite(IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, &v, WLAN, |_| None)
            .unwrap();
        assert_eq!(r.len, 20);
        assert_eq!(r.bytes()[16..20], WLAN.to_ne_bytes());
        v[16..20].copy_from_slice(&2u32.to_ne_bytes());
        assert_eq!(LINUX.group_of(IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, &v), None);
        for (level, g) in [(IPPROTO_IP, "239.1.2.3"), (IPPROTO_IPV6, "ff05::1:3")] {
            let g: IpAddr = g.parse().unwrap();
            for (name, len) in [(MCAST_JOIN_GROUP, 136), (MCAST_JOIN_SOURCE_GROUP, 264)] {
                let v = group_req(0, g);
                assert_eq!(LINUX.group_of(level, name, &v[..len]), Some(g));
                let r = LINUX
                    .rewrite(level, name, &v[..len], WLAN, |_| None)
                    .unwrap();
                assert_eq!(r.len, len);
                assert_eq!(r.bytes()[0..4], WLAN.to_ne_bytes());
                assert_eq!(r.bytes()[4..len], v[4..len]);
                let named = group_req(2, g);
                assert_eq!(LINUX.group_of(level, name, &named[..len]), None);
            }
        }
    }

    #[test]
    fn a_join_is_steered_refused_or_left_to_the_programs_device() {
        use crate::{ENETUNREACH, INET, UDP, VALID};
        let udp = Sock::new(VALID | INET | UDP, 0);
        let steer = Verdict::SteerMulticast { index: WLAN };
        assert_eq!(join(udp, steer), JoinStep::Rewrite { index: WLAN });
        assert_eq!(
            join(udp, Verdict::Refuse(ENETUNREACH)),
            JoinStep::Fail(ENETUNREACH)
        );
        assert_eq!(join(udp, Verdict::Routed), JoinStep::AsIs);
        let bound = Sock::new(udp.flags | APP_BOUND, 0);
        assert_eq!(join(bound, steer), JoinStep::AsIs);
    }

    /// An `ip_mreqn` naming a group but no interface (`imr_multiaddr` is ignored by
    /// `IP_MULTICAST_IF`) read as the program's choice: its multicast datagrams would
    /// have followed the routing table. Only the fields the kernel uses count.
    #[test]
    fn a_multicast_interface_value_chooses_by_the_fields_the_kernel_reads() {
        let mut n = [0u8; 12];
        n[..4].copy_from_slice(&[239, 1, 2, 3]);
        assert!(!LINUX.multicast_if_chooses(IPPROTO_IP, &n));
        n[8..12].copy_from_slice(&WLAN.to_ne_bytes());
        assert!(LINUX.multicast_if_chooses(IPPROTO_IP, &n));
        assert!(
            LINUX.multicast_if_chooses(IPPROTO_IP, &[0, 0, 0, 0, 198, 51, 100, 66, 0, 0, 0, 0])
        );
        assert!(LINUX.multicast_if_chooses(IPPROTO_IP, &[239, 1, 2, 3, 198, 51, 100, 66]));
        assert!(!LINUX.multicast_if_chooses(IPPROTO_IP, &[239, 1, 2, 3, 0, 0, 0, 0]));
        assert!(LINUX.multicast_if_chooses(IPPROTO_IP, &[198, 51, 100, 66]));
        assert!(!LINUX.multicast_if_chooses(IPPROTO_IP, &[1, 2]));
        assert!(LINUX.multicast_if_chooses(IPPROTO_IPV6, &WLAN.to_ne_bytes()));
        assert!(!LINUX.multicast_if_chooses(IPPROTO_IPV6, &[0; 4]));
    }

    #[test]
    fn only_the_membership_options_are_read() {
        for name in IP_OPTIONS {
            assert!(LINUX.is_membership(IPPROTO_IP, name));
        }
        for name in IPV6_OPTIONS {
            assert!(LINUX.is_membership(IPPROTO_IPV6, name));
        }
        assert!(!LINUX.is_membership(IPPROTO_IP, IP_MULTICAST_IF));
        assert!(!LINUX.is_membership(IPPROTO_IPV6, IPV6_MULTICAST_IF));
        assert!(!LINUX.is_membership(1, MCAST_JOIN_GROUP));
        assert!(!LINUX.is_membership(IPPROTO_IPV6, IP_ADD_MEMBERSHIP));
        assert_eq!(LINUX.group_of(IPPROTO_IP, 1, &[0; 64]), None);
        // The supervisor's filter lists the same options the table reads.
        assert!(LINUX.ip_options().eq(IP_OPTIONS));
        assert!(LINUX.ipv6_options().eq(IPV6_OPTIONS));
    }

    /// XNU names an interface by index in an `in_addr` (0.0.0.0/8, RFC 1724 §3.3);
    /// 0 would be "any", and an index of 24 bits or more does not fit.
    #[test]
    fn an_index_in_an_address_is_rfc_1724s() {
        assert_eq!(index_in_address(3), Some([0, 0, 0, 3]));
        assert_eq!(index_in_address(0x01_02_03), Some([0, 1, 2, 3]));
        assert_eq!(index_in_address((1 << 24) - 1), Some([0, 0xff, 0xff, 0xff]));
        assert_eq!(index_in_address(0), None);
        assert_eq!(index_in_address(1 << 24), None);
    }

    /// The option numbers and the layouts the decoder reads, against the C library's
    /// (Linux's: the numbers are the Linux kernel's, macOS's libc has others).
    #[test]
    #[cfg(target_os = "linux")]
    fn option_numbers_and_layouts_are_the_c_librarys() {
        for (ours, theirs) in [
            (IP_MULTICAST_IF, libc::IP_MULTICAST_IF),
            (IP_ADD_MEMBERSHIP, libc::IP_ADD_MEMBERSHIP),
            (IP_DROP_MEMBERSHIP, libc::IP_DROP_MEMBERSHIP),
            (IP_ADD_SOURCE_MEMBERSHIP, libc::IP_ADD_SOURCE_MEMBERSHIP),
            (IP_DROP_SOURCE_MEMBERSHIP, libc::IP_DROP_SOURCE_MEMBERSHIP),
            (MCAST_JOIN_GROUP, libc::MCAST_JOIN_GROUP),
            (MCAST_LEAVE_GROUP, libc::MCAST_LEAVE_GROUP),
            (MCAST_JOIN_SOURCE_GROUP, libc::MCAST_JOIN_SOURCE_GROUP),
            (MCAST_LEAVE_SOURCE_GROUP, libc::MCAST_LEAVE_SOURCE_GROUP),
            (IPV6_MULTICAST_IF, libc::IPV6_MULTICAST_IF),
            (IPV6_ADD_MEMBERSHIP, libc::IPV6_ADD_MEMBERSHIP),
            (IPV6_DROP_MEMBERSHIP, libc::IPV6_DROP_MEMBERSHIP),
        ] {
            assert_eq!(ours, theirs);
        }
        assert_eq!(size_of::<libc::ip_mreqn>(), 12);
        assert_eq!(size_of::<libc::ipv6_mreq>(), 20);
        assert_eq!(core::mem::offset_of!(libc::group_req, gr_group), 8);
        assert_eq!(core::mem::offset_of!(libc::group_source_req, gsr_group), 8);
        assert!(size_of::<libc::group_source_req>() <= MAX_VALUE);
    }
}
