//! Multicast membership requests (`setsockopt` values), without I/O: which group a
//! join or leave that names no interface is for ([`group_of`]), and the same request
//! pointed at the chosen interface ([`rewrite`]). The preload engine runs these on the
//! program's value before its `setsockopt` goes to the kernel; the supervisor on the
//! value it read from the program's memory, and makes the call itself on its copy of
//! the socket.
//!
//! | level, option | value | "no interface" means |
//! |---|---|---|
//! | `IPPROTO_IP`, `IP_ADD_MEMBERSHIP` / `IP_DROP_MEMBERSHIP` | `ip_mreq` (8 bytes) or `ip_mreqn` (12) | address 0.0.0.0 (and index 0) |
//! | `IPPROTO_IP`, `IP_ADD_SOURCE_MEMBERSHIP` / `IP_DROP_SOURCE_MEMBERSHIP` | `ip_mreq_source` (12) | interface address 0.0.0.0 |
//! | `IPPROTO_IPV6`, `IPV6_ADD_MEMBERSHIP` / `IPV6_DROP_MEMBERSHIP` | `ipv6_mreq` (20) | index 0 |
//! | either, `MCAST_JOIN_GROUP` / `MCAST_LEAVE_GROUP` / `MCAST_JOIN_SOURCE_GROUP` / `MCAST_LEAVE_SOURCE_GROUP` | `group_req` (136) / `group_source_req` (264) | `gr_interface` 0 |
//!
//! A leave is rewritten as its join is: the membership lives on the chosen interface,
//! and a leave naming none would look for it on the route's interface.

use crate::{APP_BOUND, Sock, Verdict};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `IPPROTO_IP` (Linux).
pub const IPPROTO_IP: i32 = 0;
/// `IPPROTO_IPV6` (Linux).
pub const IPPROTO_IPV6: i32 = 41;
/// `IP_MULTICAST_IF`.
pub const IP_MULTICAST_IF: i32 = 32;
/// `IP_ADD_MEMBERSHIP`.
pub const IP_ADD_MEMBERSHIP: i32 = 35;
/// `IP_DROP_MEMBERSHIP`.
pub const IP_DROP_MEMBERSHIP: i32 = 36;
/// `IP_ADD_SOURCE_MEMBERSHIP`.
pub const IP_ADD_SOURCE_MEMBERSHIP: i32 = 39;
/// `IP_DROP_SOURCE_MEMBERSHIP`.
pub const IP_DROP_SOURCE_MEMBERSHIP: i32 = 40;
/// `MCAST_JOIN_GROUP` (both levels).
pub const MCAST_JOIN_GROUP: i32 = 42;
/// `MCAST_LEAVE_GROUP`.
pub const MCAST_LEAVE_GROUP: i32 = 45;
/// `MCAST_JOIN_SOURCE_GROUP`.
pub const MCAST_JOIN_SOURCE_GROUP: i32 = 46;
/// `MCAST_LEAVE_SOURCE_GROUP`.
pub const MCAST_LEAVE_SOURCE_GROUP: i32 = 47;
/// `IPV6_MULTICAST_IF`.
pub const IPV6_MULTICAST_IF: i32 = 17;
/// `IPV6_ADD_MEMBERSHIP` (`IPV6_JOIN_GROUP`).
pub const IPV6_ADD_MEMBERSHIP: i32 = 20;
/// `IPV6_DROP_MEMBERSHIP` (`IPV6_LEAVE_GROUP`).
pub const IPV6_DROP_MEMBERSHIP: i32 = 21;

/// The most bytes of a value these functions read (the longest request,
/// `group_source_req`, has 264).
pub const MAX_VALUE: usize = 272;

/// The membership options of level `IPPROTO_IP`.
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

/// The membership options of level `IPPROTO_IPV6`.
pub const IPV6_OPTIONS: [i32; 6] = [
    IPV6_ADD_MEMBERSHIP,
    IPV6_DROP_MEMBERSHIP,
    MCAST_JOIN_GROUP,
    MCAST_LEAVE_GROUP,
    MCAST_JOIN_SOURCE_GROUP,
    MCAST_LEAVE_SOURCE_GROUP,
];

/// Whether (`level`, `name`) is one of the membership options [`group_of`] reads.
pub fn is_membership(level: i32, name: i32) -> bool {
    match level {
        IPPROTO_IP => IP_OPTIONS.contains(&name),
        IPPROTO_IPV6 => IPV6_OPTIONS.contains(&name),
        _ => false,
    }
}

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

/// The group of a membership request `v` (the value's first bytes, at most
/// [`MAX_VALUE`]) whose interface is unspecified; `None` for one that names an
/// interface, another option, or a value too short for the kernel to take (it
/// answers that itself).
pub fn group_of(level: i32, name: i32, v: &[u8]) -> Option<IpAddr> {
    let v4 = |b: &[u8]| Ipv4Addr::new(b[0], b[1], b[2], b[3]);
    match (level, name) {
        (IPPROTO_IP, IP_ADD_MEMBERSHIP | IP_DROP_MEMBERSHIP) if v.len() >= 8 => {
            // ip_mreq {multiaddr, interface} or ip_mreqn {multiaddr, address, ifindex}.
            let any_addr = v[4..8] == [0; 4];
            let any_index = v.len() < 12 || v[8..12] == [0; 4];
            (any_addr && any_index).then(|| IpAddr::V4(v4(&v[0..4])))
        }
        (IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP | IP_DROP_SOURCE_MEMBERSHIP) if v.len() >= 12 => {
            // ip_mreq_source {multiaddr, interface, sourceaddr}.
            (v[4..8] == [0; 4]).then(|| IpAddr::V4(v4(&v[0..4])))
        }
        (IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP | IPV6_DROP_MEMBERSHIP) if v.len() >= 20 => {
            // ipv6_mreq {in6_addr, ifindex}.
            let mut a = [0u8; 16];
            a.copy_from_slice(&v[0..16]);
            (v[16..20] == [0; 4]).then(|| IpAddr::V6(Ipv6Addr::from(a)))
        }
        (
            IPPROTO_IP | IPPROTO_IPV6,
            MCAST_JOIN_GROUP
            | MCAST_LEAVE_GROUP
            | MCAST_JOIN_SOURCE_GROUP
            | MCAST_LEAVE_SOURCE_GROUP,
        ) if v.len() >= 8 + 28 => {
            // group_req / group_source_req: u32 interface, padding, sockaddr_storage.
            if v[0..4] != [0; 4] {
                return None;
            }
            match u16::from_ne_bytes([v[8], v[9]]) {
                2 => Some(IpAddr::V4(v4(&v[12..16]))), // AF_INET
                10 => {
                    // AF_INET6
                    let mut a = [0u8; 16];
                    a.copy_from_slice(&v[16..32]);
                    Some(IpAddr::V6(Ipv6Addr::from(a)))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// The request `v` ([`group_of`] said it names no interface) pointed at interface
/// `index`. `v4_of` gives the interface's IPv4 address, for the one request that
/// names an interface by address only (`ip_mreq_source`); `None` when it has none.
pub fn rewrite(
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
    let idx = index.to_ne_bytes();
    match (level, name) {
        (IPPROTO_IP, IP_ADD_MEMBERSHIP | IP_DROP_MEMBERSHIP) => {
            // Always an ip_mreqn: the kernel takes it by length.
            out.buf[0..4].copy_from_slice(&v[0..4]);
            out.buf[8..12].copy_from_slice(&idx);
            out.len = 12;
        }
        (IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP | IP_DROP_SOURCE_MEMBERSHIP) => {
            // This one names the interface by address only.
            let a = v4_of(index)?;
            out.buf[..n].copy_from_slice(&v[..n]);
            out.buf[4..8].copy_from_slice(&a.octets());
            out.len = n;
        }
        (IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP | IPV6_DROP_MEMBERSHIP) => {
            out.buf[..20].copy_from_slice(&v[..20]);
            out.buf[16..20].copy_from_slice(&idx);
            out.len = 20;
        }
        _ => {
            out.buf[..n].copy_from_slice(&v[..n]);
            out.buf[0..4].copy_from_slice(&idx);
            out.len = n;
        }
    }
    Some(out)
}

/// Whether a `setsockopt(IP_MULTICAST_IF / IPV6_MULTICAST_IF)` value `v` (the bytes
/// the kernel reads) chooses an interface, as the kernel takes it: for IPv4 an
/// `ip_mreqn` (12 bytes or more: its address or index), an `ip_mreq` (8: its
/// interface address) or an `in_addr` (4); for IPv6 an interface index. All zero
/// (or too short: the kernel resets it) is "any", which withdraws a choice.
pub fn multicast_if_chooses(level: i32, v: &[u8]) -> bool {
    let nonzero = |b: &[u8]| b.iter().any(|x| *x != 0);
    match level {
        IPPROTO_IP if v.len() >= 12 => nonzero(&v[4..12]),
        IPPROTO_IP if v.len() >= 8 => nonzero(&v[4..8]),
        IPPROTO_IP if v.len() >= 4 => nonzero(&v[0..4]),
        IPPROTO_IPV6 if v.len() >= 4 => nonzero(&v[0..4]),
        _ => false,
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
        assert_eq!(group_of(IPPROTO_IP, IP_ADD_MEMBERSHIP, &v), Some(g));
        let r = rewrite(IPPROTO_IP, IP_ADD_MEMBERSHIP, &v, WLAN, |_| None).unwrap();
        assert_eq!(r.len, 12, "an ip_mreqn");
        assert_eq!(&r.bytes()[..4], &[239, 1, 2, 3]);
        assert_eq!(&r.bytes()[4..8], &[0; 4]);
        assert_eq!(r.bytes()[8..12], WLAN.to_ne_bytes());
        // An ip_mreqn with index 0 and address any: the same.
        let mut n = [0u8; 12];
        n[..8].copy_from_slice(&v);
        assert_eq!(group_of(IPPROTO_IP, IP_ADD_MEMBERSHIP, &n), Some(g));
        assert_eq!(group_of(IPPROTO_IP, IP_DROP_MEMBERSHIP, &n), Some(g));
        // The program named an interface (by address, or by index): its choice.
        assert_eq!(
            group_of(
                IPPROTO_IP,
                IP_ADD_MEMBERSHIP,
                &mreq([239, 1, 2, 3], [10, 0, 0, 1])
            ),
            None
        );
        n[8..12].copy_from_slice(&2u32.to_ne_bytes());
        assert_eq!(group_of(IPPROTO_IP, IP_ADD_MEMBERSHIP, &n), None);
        // Too short for the kernel: it answers EINVAL itself.
        assert_eq!(group_of(IPPROTO_IP, IP_ADD_MEMBERSHIP, &v[..7]), None);
    }

    #[test]
    fn source_membership_names_the_interface_by_its_address() {
        let mut v = [0u8; 12];
        v[..4].copy_from_slice(&[232, 1, 1, 1]);
        v[8..12].copy_from_slice(&[203, 0, 113, 9]);
        assert_eq!(
            group_of(IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP, &v),
            Some("232.1.1.1".parse().unwrap())
        );
        let a = Ipv4Addr::new(198, 51, 100, 66);
        let r = rewrite(IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP, &v, WLAN, |i| {
            (i == WLAN).then_some(a)
        })
        .unwrap();
        assert_eq!(r.bytes(), &[232, 1, 1, 1, 198, 51, 100, 66, 203, 0, 113, 9]);
        // No IPv4 address on the interface: no rewrite (the caller refuses).
        assert!(rewrite(IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP, &v, WLAN, |_| None).is_none());
    }

    #[test]
    fn ipv6_mreq_and_group_req_with_interface_zero_get_the_chosen_index() {
        let g6: IpAddr = "ff05::1:3".parse().unwrap();
        let mut v = [0u8; 20];
        if let IpAddr::V6(a) = g6 {
            v[..16].copy_from_slice(&a.octets());
        }
        assert_eq!(group_of(IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, &v), Some(g6));
        let r = rewrite(IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, &v, WLAN, |_| None).unwrap();
        assert_eq!(r.len, 20);
        assert_eq!(r.bytes()[16..20], WLAN.to_ne_bytes());
        v[16..20].copy_from_slice(&2u32.to_ne_bytes());
        assert_eq!(group_of(IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, &v), None);
        for (level, g) in [(IPPROTO_IP, "239.1.2.3"), (IPPROTO_IPV6, "ff05::1:3")] {
            let g: IpAddr = g.parse().unwrap();
            for (name, len) in [(MCAST_JOIN_GROUP, 136), (MCAST_JOIN_SOURCE_GROUP, 264)] {
                let v = group_req(0, g);
                assert_eq!(group_of(level, name, &v[..len]), Some(g));
                let r = rewrite(level, name, &v[..len], WLAN, |_| None).unwrap();
                assert_eq!(r.len, len);
                assert_eq!(r.bytes()[0..4], WLAN.to_ne_bytes());
                assert_eq!(r.bytes()[4..len], v[4..len]);
                let named = group_req(2, g);
                assert_eq!(group_of(level, name, &named[..len]), None);
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
        assert!(!multicast_if_chooses(IPPROTO_IP, &n));
        n[8..12].copy_from_slice(&WLAN.to_ne_bytes());
        assert!(multicast_if_chooses(IPPROTO_IP, &n));
        assert!(multicast_if_chooses(
            IPPROTO_IP,
            &[0, 0, 0, 0, 198, 51, 100, 66, 0, 0, 0, 0]
        ));
        assert!(multicast_if_chooses(
            IPPROTO_IP,
            &[239, 1, 2, 3, 198, 51, 100, 66]
        ));
        assert!(!multicast_if_chooses(
            IPPROTO_IP,
            &[239, 1, 2, 3, 0, 0, 0, 0]
        ));
        assert!(multicast_if_chooses(IPPROTO_IP, &[198, 51, 100, 66]));
        assert!(!multicast_if_chooses(IPPROTO_IP, &[1, 2]));
        assert!(multicast_if_chooses(IPPROTO_IPV6, &WLAN.to_ne_bytes()));
        assert!(!multicast_if_chooses(IPPROTO_IPV6, &[0; 4]));
    }

    #[test]
    fn only_the_membership_options_are_read() {
        for name in IP_OPTIONS {
            assert!(is_membership(IPPROTO_IP, name));
        }
        for name in IPV6_OPTIONS {
            assert!(is_membership(IPPROTO_IPV6, name));
        }
        assert!(!is_membership(IPPROTO_IP, IP_MULTICAST_IF));
        assert!(!is_membership(IPPROTO_IPV6, IPV6_MULTICAST_IF));
        assert!(!is_membership(1, MCAST_JOIN_GROUP));
        assert!(!is_membership(IPPROTO_IPV6, IP_ADD_MEMBERSHIP));
        assert_eq!(group_of(IPPROTO_IP, 1, &[0; 64]), None);
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
