//! XNU's multicast membership options, as socket-core's membership reader is given
//! them (`mifshim_socket_core::membership::Abi`): the option numbers of
//! `<netinet/in.h>` and `<netinet6/in6.h>` and what `bsd/netinet/in_mcast.c` and
//! `bsd/netinet6/in6_mcast.c` read of each value. Pure, so that Linux runs its
//! tests; `ffi::sock` hands it to the shared core as `sys::MEMBERSHIP` and checks the
//! numbers and layouts against libc's Darwin definitions when it is compiled.
//!
//! Read in XNU's source, not tried on a Mac:
//!
//! | level, option | value | "no interface" | the rewrite names interface N by |
//! |---|---|---|---|
//! | `IPPROTO_IP`, `IP_ADD_MEMBERSHIP` 12 / `IP_DROP_MEMBERSHIP` 13 | `ip_mreq` {group, interface address}: `sooptcopyin` of 8 bytes, so an `ip_mreqn`'s index is not read | interface address 0.0.0.0: the route's interface (`inp_lookup_mcast_ifp`, scoped to the socket's `IP_BOUND_IF`) | N in 0.0.0.0/8 (`ip_mreq`'s address; `ip_multicast_if`, "following RFC1724 section 3.3, 0.0.0.0/8 is interpreted as interface index") |
//! | `IPPROTO_IP`, `IP_ADD_SOURCE_MEMBERSHIP` 70 / `IP_DROP_SOURCE_MEMBERSHIP` 71 | `ip_mreq_source` {group, **source**, interface} (12; `#pragma pack(4)`, no padding), the BSD order, not Linux's | interface address 0.0.0.0 | N in 0.0.0.0/8, the same lookup |
//! | `IPPROTO_IPV6`, `IPV6_JOIN_GROUP` 12 / `IPV6_LEAVE_GROUP` 13 | `ipv6_mreq` {group, index} (20) | index 0: the route's interface (`in6p_lookup_mcast_ifp`); an IPv4-mapped group becomes an `IP_ADD_MEMBERSHIP` | index N |
//! | either, `MCAST_JOIN_GROUP` 80 / `MCAST_LEAVE_GROUP` 81 / `MCAST_JOIN_SOURCE_GROUP` 82 / `MCAST_LEAVE_SOURCE_GROUP` 83 | `group_req` {u32 interface, `sockaddr_storage`} under `#pragma pack(4)`: the group at offset 4 (132 bytes; `group_source_req` 260), not Linux's 8 | none: `gr_interface` 0 is refused, `EADDRNOTAVAIL` (`inp_join_group`, `inp_leave_group`, `in6p_join_group`), so nothing is joined and nothing is pointed | — |
//!
//! The multicast interface (`IP_MULTICAST_IF` 9) is read by `inp_set_multicast_if`:
//! exactly 12 bytes is an `ip_mreqn` of which only `imr_ifindex` counts, anything
//! else an `in_addr` (its first 4 bytes, so an 8-byte `ip_mreq` is read as its
//! group, not as Linux reads it); `IP_MULTICAST_IFINDEX` 66 and `IPV6_MULTICAST_IF` 9
//! take an index.

use mifshim_socket_core::membership::{Abi, Mreq, MulticastIf, NameBy};

/// `IP_ADD_MEMBERSHIP` (`<netinet/in.h>`).
pub(crate) const IP_ADD_MEMBERSHIP: i32 = 12;
/// `IP_DROP_MEMBERSHIP`.
pub(crate) const IP_DROP_MEMBERSHIP: i32 = 13;
/// `IP_ADD_SOURCE_MEMBERSHIP`.
pub(crate) const IP_ADD_SOURCE_MEMBERSHIP: i32 = 70;
/// `IP_DROP_SOURCE_MEMBERSHIP`.
pub(crate) const IP_DROP_SOURCE_MEMBERSHIP: i32 = 71;
/// `MCAST_JOIN_GROUP` (`<netinet/in.h>`, both levels).
pub(crate) const MCAST_JOIN_GROUP: i32 = 80;
/// `MCAST_LEAVE_GROUP`.
pub(crate) const MCAST_LEAVE_GROUP: i32 = 81;
/// `MCAST_JOIN_SOURCE_GROUP`.
pub(crate) const MCAST_JOIN_SOURCE_GROUP: i32 = 82;
/// `MCAST_LEAVE_SOURCE_GROUP`.
pub(crate) const MCAST_LEAVE_SOURCE_GROUP: i32 = 83;
/// `IPV6_JOIN_GROUP` (`<netinet6/in6.h>`).
pub(crate) const IPV6_JOIN_GROUP: i32 = 12;
/// `IPV6_LEAVE_GROUP`.
pub(crate) const IPV6_LEAVE_GROUP: i32 = 13;

/// Where `ip_mreq_source`'s `imr_interface` is ({multiaddr, sourceaddr, interface}).
pub(crate) const MREQ_SOURCE_INTERFACE_AT: usize = 8;
/// Where a `group_req`'s `gr_group` is (`#pragma pack(4)`): not read, since XNU
/// refuses a `group_req` naming no interface; kept for the layout check in `ffi`.
pub(crate) const GROUP_REQ_GROUP_AT: usize = 4;

/// XNU's table.
pub(crate) const XNU: Abi = Abi {
    ip_membership: [IP_ADD_MEMBERSHIP, IP_DROP_MEMBERSHIP],
    ip_source_membership: [IP_ADD_SOURCE_MEMBERSHIP, IP_DROP_SOURCE_MEMBERSHIP],
    ipv6_membership: [IPV6_JOIN_GROUP, IPV6_LEAVE_GROUP],
    mcast: [
        MCAST_JOIN_GROUP,
        MCAST_LEAVE_GROUP,
        MCAST_JOIN_SOURCE_GROUP,
        MCAST_LEAVE_SOURCE_GROUP,
    ],
    mreq: Mreq::IndexInAddress,
    source_interface_at: MREQ_SOURCE_INTERFACE_AT,
    source_name_by: NameBy::IndexInAddress,
    group_req_any: false,
    multicast_if: MulticastIf::MreqnIndexOrAddress,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::macos::wire::{AF_INET, AF_INET6, IPPROTO_IP, IPPROTO_IPV6};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    const EN0: u32 = 4;
    const GROUP: Ipv4Addr = Ipv4Addr::new(239, 1, 2, 3);
    const SOURCE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);

    /// XNU's `ip_mreq`: {imr_multiaddr, imr_interface}.
    fn ip_mreq(group: Ipv4Addr, interface: [u8; 4]) -> Vec<u8> {
        [group.octets(), interface].concat()
    }

    /// XNU's `ip_mreq_source`: {imr_multiaddr, imr_sourceaddr, imr_interface}.
    fn ip_mreq_source(group: Ipv4Addr, source: Ipv4Addr, interface: [u8; 4]) -> Vec<u8> {
        [group.octets(), source.octets(), interface].concat()
    }

    /// XNU's `ipv6_mreq`: {ipv6mr_multiaddr, ipv6mr_interface}.
    fn ipv6_mreq(group: Ipv6Addr, index: u32) -> Vec<u8> {
        [&group.octets()[..], &index.to_ne_bytes()].concat()
    }

    /// XNU's `group_source_req` under `#pragma pack(4)`: {u32 gsr_interface,
    /// sockaddr_storage gsr_group (at 4), sockaddr_storage gsr_source (at 132)}, the
    /// group a BSD `sockaddr` {len, family, port, address}; the first 132 bytes are a
    /// `group_req`.
    fn group_source_req(interface: u32, group: IpAddr) -> Vec<u8> {
        let mut v = vec![0u8; 4 + 128 + 128];
        v[0..4].copy_from_slice(&interface.to_ne_bytes());
        let g = &mut v[GROUP_REQ_GROUP_AT..];
        match group {
            IpAddr::V4(a) => {
                g[0] = 16;
                g[1] = AF_INET;
                g[4..8].copy_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                g[0] = 28;
                g[1] = AF_INET6;
                g[8..24].copy_from_slice(&a.octets());
            }
        }
        v
    }

    #[test]
    fn an_ip_mreq_naming_no_interface_names_the_index_in_its_address() {
        let v = ip_mreq(GROUP, [0; 4]);
        for name in [IP_ADD_MEMBERSHIP, IP_DROP_MEMBERSHIP] {
            assert_eq!(XNU.group_of(IPPROTO_IP, name, &v), Some(IpAddr::V4(GROUP)));
            let r = XNU.rewrite(IPPROTO_IP, name, &v, EN0, |_| None).unwrap();
            // Still an ip_mreq (XNU reads 8 bytes), its interface 0.0.0.4: index 4.
            assert_eq!(r.bytes(), &[239, 1, 2, 3, 0, 0, 0, 4]);
        }
        // An index of 24 bits or more cannot be named so: no rewrite.
        let big = 1 << 24;
        assert!(
            XNU.rewrite(IPPROTO_IP, IP_ADD_MEMBERSHIP, &v, big, |_| None)
                .is_none()
        );
        // The program named an interface, by address or by an index in the address.
        let named = ip_mreq(GROUP, [192, 0, 2, 7]);
        assert_eq!(XNU.group_of(IPPROTO_IP, IP_ADD_MEMBERSHIP, &named), None);
        let by_index = ip_mreq(GROUP, [0, 0, 0, 2]);
        assert_eq!(XNU.group_of(IPPROTO_IP, IP_ADD_MEMBERSHIP, &by_index), None);
        // Too short for the kernel (EINVAL is its answer).
        assert_eq!(XNU.group_of(IPPROTO_IP, IP_ADD_MEMBERSHIP, &v[..7]), None);
    }

    /// XNU reads 8 bytes of an `IP_ADD_MEMBERSHIP` value: an `ip_mreqn`'s index is
    /// not read, so a 12-byte value with address 0.0.0.0 names no interface whatever
    /// its index, and its tail goes to the kernel as the program wrote it.
    #[test]
    fn an_ip_mreqn_is_read_as_the_ip_mreq_xnu_takes() {
        let mut v = ip_mreq(GROUP, [0; 4]);
        v.extend_from_slice(&2u32.to_ne_bytes());
        assert_eq!(
            XNU.group_of(IPPROTO_IP, IP_ADD_MEMBERSHIP, &v),
            Some(IpAddr::V4(GROUP))
        );
        let r = XNU
            .rewrite(IPPROTO_IP, IP_ADD_MEMBERSHIP, &v, EN0, |_| None)
            .unwrap();
        assert_eq!(&r.bytes()[..8], &[239, 1, 2, 3, 0, 0, 0, 4]);
        assert_eq!(r.bytes()[8..], 2u32.to_ne_bytes());
        // Linux's numbers mean other options here (42-47 are IP_FW_* and others).
        for linux in [35, 36, 39, 40, 42, 45, 46, 47] {
            assert!(!XNU.is_membership(IPPROTO_IP, linux), "{linux}");
        }
    }

    #[test]
    fn a_source_membership_has_its_interface_last() {
        let v = ip_mreq_source(GROUP, SOURCE, [0; 4]);
        for name in [IP_ADD_SOURCE_MEMBERSHIP, IP_DROP_SOURCE_MEMBERSHIP] {
            assert_eq!(XNU.group_of(IPPROTO_IP, name, &v), Some(IpAddr::V4(GROUP)));
            // No IPv4 address is needed: the index goes in the address.
            let r = XNU.rewrite(IPPROTO_IP, name, &v, EN0, |_| None).unwrap();
            assert_eq!(r.bytes(), &[239, 1, 2, 3, 203, 0, 113, 9, 0, 0, 0, 4]);
        }
        // A source address in Linux's interface slot is not an interface here.
        let named = ip_mreq_source(GROUP, SOURCE, [192, 0, 2, 7]);
        assert_eq!(
            XNU.group_of(IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP, &named),
            None
        );
        assert_eq!(
            XNU.group_of(IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP, &v[..11]),
            None
        );
    }

    #[test]
    fn an_ipv6_mreq_with_index_zero_gets_the_chosen_index() {
        let g: Ipv6Addr = "ff05::1:3".parse().unwrap();
        let v = ipv6_mreq(g, 0);
        for name in [IPV6_JOIN_GROUP, IPV6_LEAVE_GROUP] {
            assert_eq!(XNU.group_of(IPPROTO_IPV6, name, &v), Some(IpAddr::V6(g)));
            let r = XNU.rewrite(IPPROTO_IPV6, name, &v, EN0, |_| None).unwrap();
            assert_eq!(r.bytes(), &ipv6_mreq(g, EN0)[..]);
        }
        assert_eq!(
            XNU.group_of(IPPROTO_IPV6, IPV6_JOIN_GROUP, &ipv6_mreq(g, 2)),
            None
        );
        // At IPPROTO_IP, 12 is IP_ADD_MEMBERSHIP: read as an ip_mreq, not this.
        assert!(XNU.is_membership(IPPROTO_IP, IPV6_JOIN_GROUP));
        assert!(!XNU.is_membership(IPPROTO_IPV6, IP_ADD_SOURCE_MEMBERSHIP));
    }

    /// XNU refuses a `group_req` whose `gr_interface` is 0 (`EADDRNOTAVAIL`): nothing
    /// is joined, so the request is left to the kernel, with or without an interface.
    #[test]
    fn a_group_req_naming_no_interface_is_left_to_the_kernels_refusal() {
        for (level, g) in [
            (IPPROTO_IP, IpAddr::V4(GROUP)),
            (IPPROTO_IPV6, "ff05::1:3".parse().unwrap()),
        ] {
            for (name, len) in [
                (MCAST_JOIN_GROUP, 132),
                (MCAST_LEAVE_GROUP, 132),
                (MCAST_JOIN_SOURCE_GROUP, 260),
                (MCAST_LEAVE_SOURCE_GROUP, 260),
            ] {
                assert!(XNU.is_membership(level, name));
                let v = group_source_req(0, g);
                assert_eq!(XNU.group_of(level, name, &v[..len]), None);
                let v = group_source_req(EN0, g);
                assert_eq!(XNU.group_of(level, name, &v[..len]), None);
            }
        }
    }

    /// `IP_MULTICAST_IF` as `inp_set_multicast_if` reads it: exactly 12 bytes is an
    /// `ip_mreqn` whose index alone counts, anything else the `in_addr` of its first
    /// 4 bytes (an 8-byte `ip_mreq` is read as its group).
    #[test]
    fn a_multicast_interface_value_chooses_as_xnu_reads_it() {
        let mut mreqn = [0u8; 12];
        mreqn[..4].copy_from_slice(&GROUP.octets());
        mreqn[4..8].copy_from_slice(&[192, 0, 2, 7]);
        assert!(
            !XNU.multicast_if_chooses(IPPROTO_IP, &mreqn),
            "the address is not read"
        );
        mreqn[8..12].copy_from_slice(&EN0.to_ne_bytes());
        assert!(XNU.multicast_if_chooses(IPPROTO_IP, &mreqn));
        assert!(XNU.multicast_if_chooses(IPPROTO_IP, &[192, 0, 2, 7]));
        assert!(!XNU.multicast_if_chooses(IPPROTO_IP, &[0; 4]));
        // An ip_mreq naming no interface is read as the in_addr of its group.
        assert!(XNU.multicast_if_chooses(IPPROTO_IP, &ip_mreq(GROUP, [0; 4])));
        assert!(!XNU.multicast_if_chooses(IPPROTO_IP, &ip_mreq(Ipv4Addr::UNSPECIFIED, [1; 4])));
        // IP_MULTICAST_IFINDEX and IPV6_MULTICAST_IF: an index.
        assert!(XNU.multicast_if_chooses(IPPROTO_IP, &EN0.to_ne_bytes()));
        assert!(XNU.multicast_if_chooses(IPPROTO_IPV6, &EN0.to_ne_bytes()));
        assert!(!XNU.multicast_if_chooses(IPPROTO_IPV6, &[0; 4]));
        assert!(!XNU.multicast_if_chooses(IPPROTO_IP, &[1, 2]));
    }
}
