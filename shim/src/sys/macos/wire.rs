//! macOS's socket-address and control-message layouts, byte by byte, so that Linux
//! runs their tests (the `ffi` side builds its `sockaddr`s and `PKTINFO`s with these,
//! and checks the constants against libc's Darwin definitions when it is compiled).
//!
//! * A BSD `sockaddr` starts with its own length (`sa_len`, one byte) and an 8-bit
//!   family, where Linux has a 16-bit family: `sockaddr_in` is `{len 16, AF_INET 2,
//!   port (big-endian), address, 8 zero bytes}`, `sockaddr_in6` `{len 28, AF_INET6 30,
//!   port, flow info, address, scope id}` (`<netinet/in.h>`, `<netinet6/in6.h>`).
//! * A control message is a `cmsghdr` `{u32 cmsg_len, int level, int type}` followed
//!   by its data, each part aligned to 4 bytes (`__DARWIN_ALIGN32` in
//!   `<sys/socket.h>`, not Linux's `sizeof(long)`); `in_pktinfo` is `{ifindex,
//!   spec_dst, addr}` (12 bytes), `in6_pktinfo` `{addr, ifindex}` (20 bytes).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// `AF_INET`.
pub(crate) const AF_INET: u8 = 2;
/// `AF_INET6` (30 on macOS; 10 on Linux).
pub(crate) const AF_INET6: u8 = 30;
/// `sizeof(struct sockaddr_in)`.
pub(crate) const SOCKADDR_IN_LEN: usize = 16;
/// `sizeof(struct sockaddr_in6)`.
pub(crate) const SOCKADDR_IN6_LEN: usize = 28;

/// `IPPROTO_IP`.
pub(crate) const IPPROTO_IP: i32 = 0;
/// `IPPROTO_IPV6`.
pub(crate) const IPPROTO_IPV6: i32 = 41;
/// `IP_PKTINFO` (`<netinet/in.h>`).
pub(crate) const IP_PKTINFO: i32 = 26;
/// `IPV6_PKTINFO` (RFC 3542's value, `<netinet6/in6.h>`).
pub(crate) const IPV6_PKTINFO: i32 = 46;
/// `sizeof(struct cmsghdr)`.
pub(crate) const CMSGHDR_LEN: usize = 12;
/// `sizeof(struct in_pktinfo)`.
pub(crate) const IN_PKTINFO_LEN: usize = 12;
/// `sizeof(struct in6_pktinfo)`.
pub(crate) const IN6_PKTINFO_LEN: usize = 20;

/// `__DARWIN_ALIGN32`: rounded up to a multiple of 4.
pub(crate) const fn align32(n: usize) -> usize {
    (n + 3) & !3
}

/// `CMSG_LEN(n)`.
pub(crate) const fn cmsg_len(n: usize) -> usize {
    align32(CMSGHDR_LEN) + n
}

/// `CMSG_SPACE(n)`.
pub(crate) const fn cmsg_space(n: usize) -> usize {
    align32(CMSGHDR_LEN) + align32(n)
}

/// The longest `sockaddr` written here (`sockaddr_in6`).
pub(crate) const SOCKADDR_MAX: usize = SOCKADDR_IN6_LEN;

/// `a` as macOS's `sockaddr_in` / `sockaddr_in6` bytes, and their length. The flow
/// info and scope id are in host order, as the kernel reads them (and as std's
/// `SocketAddrV6` holds them).
pub(crate) fn encode_sockaddr(a: &SocketAddr) -> ([u8; SOCKADDR_MAX], usize) {
    let mut b = [0u8; SOCKADDR_MAX];
    match a {
        SocketAddr::V4(v4) => {
            b[0] = SOCKADDR_IN_LEN as u8;
            b[1] = AF_INET;
            b[2..4].copy_from_slice(&v4.port().to_be_bytes());
            b[4..8].copy_from_slice(&v4.ip().octets());
            (b, SOCKADDR_IN_LEN)
        }
        SocketAddr::V6(v6) => {
            b[0] = SOCKADDR_IN6_LEN as u8;
            b[1] = AF_INET6;
            b[2..4].copy_from_slice(&v6.port().to_be_bytes());
            b[4..8].copy_from_slice(&v6.flowinfo().to_ne_bytes());
            b[8..24].copy_from_slice(&v6.ip().octets());
            b[24..28].copy_from_slice(&v6.scope_id().to_ne_bytes());
            (b, SOCKADDR_IN6_LEN)
        }
    }
}

/// A decoded INET socket address as the shared core (`ops`) takes it: the Linux
/// `uapi::Dest`'s fields (the scope also inside an IPv6 `addr`, as the program wrote it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dest {
    pub addr: SocketAddr,
    pub scope_id: u32,
}

/// The address in `b`, a `sockaddr` as the kernel or a library handed it back: `None`
/// for another family, or when `b` or the structure's own `sa_len` is too short for
/// its family's structure.
pub(crate) fn decode_sockaddr(b: &[u8]) -> Option<SocketAddr> {
    let (&len, &family) = (b.first()?, b.get(1)?);
    let need = match family {
        AF_INET => SOCKADDR_IN_LEN,
        AF_INET6 => SOCKADDR_IN6_LEN,
        _ => return None,
    };
    if (len as usize) < need || b.len() < need {
        return None;
    }
    let port = u16::from_be_bytes([b[2], b[3]]);
    let u32_at = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    Some(if family == AF_INET {
        SocketAddr::V4(SocketAddrV4::new(
            Ipv4Addr::new(b[4], b[5], b[6], b[7]),
            port,
        ))
    } else {
        let mut ip = [0u8; 16];
        ip.copy_from_slice(&b[8..24]);
        SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(ip),
            port,
            u32_at(4),
            u32_at(24),
        ))
    })
}

/// Room for one `PKTINFO` control message of either family.
pub(crate) const PKTINFO_SPACE: usize = cmsg_space(IN6_PKTINFO_LEN);

/// The control message that sends one datagram by interface `index`: `IP_PKTINFO`
/// with `ipi_ifindex` (`ipi_spec_dst` unspecified: the interface's own source) or
/// `IPV6_PKTINFO` with `ipi6_ifindex` (`ipi6_addr` unspecified); its bytes and their
/// length (`CMSG_SPACE` of the structure, what `msg_controllen` is given).
pub(crate) fn pktinfo(v6: bool, index: u32) -> ([u8; PKTINFO_SPACE], usize) {
    let mut b = [0u8; PKTINFO_SPACE];
    let (level, kind, data_len) = if v6 {
        (IPPROTO_IPV6, IPV6_PKTINFO, IN6_PKTINFO_LEN)
    } else {
        (IPPROTO_IP, IP_PKTINFO, IN_PKTINFO_LEN)
    };
    b[0..4].copy_from_slice(&(cmsg_len(data_len) as u32).to_ne_bytes());
    b[4..8].copy_from_slice(&level.to_ne_bytes());
    b[8..12].copy_from_slice(&kind.to_ne_bytes());
    let data = align32(CMSGHDR_LEN);
    // in_pktinfo: the index first; in6_pktinfo: after the 16-byte address.
    let at = if v6 { data + 16 } else { data };
    b[at..at + 4].copy_from_slice(&index.to_ne_bytes());
    (b, cmsg_space(data_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv4_sockaddr_starts_with_its_length_and_an_8_bit_family() {
        let a: SocketAddr = "198.51.100.7:53".parse().unwrap();
        let (b, n) = encode_sockaddr(&a);
        assert_eq!(n, 16);
        assert_eq!(
            &b[..n],
            &[16, 2, 0, 53, 198, 51, 100, 7, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(decode_sockaddr(&b[..n]), Some(a));
    }

    #[test]
    fn an_ipv6_sockaddr_keeps_flow_info_and_scope_in_host_order() {
        let a = SocketAddr::V6(SocketAddrV6::new(
            "2001:db8::1".parse().unwrap(),
            443,
            0x0001_2345,
            4,
        ));
        let (b, n) = encode_sockaddr(&a);
        assert_eq!(n, 28);
        assert_eq!(&b[..4], &[28, 30, 0x01, 0xbb]);
        assert_eq!(&b[4..8], &0x0001_2345u32.to_ne_bytes());
        assert_eq!(&b[8..10], &[0x20, 0x01]);
        assert_eq!(b[23], 1);
        assert_eq!(&b[24..28], &4u32.to_ne_bytes());
        assert_eq!(decode_sockaddr(&b[..n]), Some(a));
    }

    #[test]
    fn a_sockaddr_shorter_than_its_family_needs_is_no_address() {
        let (b, _) = encode_sockaddr(&"[2001:db8::1]:53".parse().unwrap());
        // The buffer cut short, or a structure whose own length says it is shorter.
        assert_eq!(decode_sockaddr(&b[..27]), None);
        let mut short = b;
        short[0] = 27;
        assert_eq!(decode_sockaddr(&short), None);
        // Linux's AF_INET6 (10), an AF_UNIX (1) and AF_LINK (18) are not INET here.
        for family in [10, 1, 18] {
            let mut other = b;
            other[1] = family;
            assert_eq!(decode_sockaddr(&other), None);
        }
        assert_eq!(decode_sockaddr(&[]), None);
        assert_eq!(decode_sockaddr(&[16]), None);
    }

    #[test]
    fn control_messages_align_to_4_bytes_not_to_a_long() {
        assert_eq!(cmsg_len(IN_PKTINFO_LEN), 24);
        assert_eq!(cmsg_space(IN_PKTINFO_LEN), 24);
        assert_eq!(cmsg_len(IN6_PKTINFO_LEN), 32);
        assert_eq!(cmsg_space(IN6_PKTINFO_LEN), 32);
        // An fd of SCM_RIGHTS: 16 bytes, where Linux's 8-byte alignment makes 24.
        assert_eq!(cmsg_space(4), 16);
        assert_eq!(align32(0), 0);
        assert_eq!(align32(13), 16);
    }

    #[test]
    fn an_ipv4_pktinfo_names_the_interface_and_leaves_the_source_to_it() {
        let (b, n) = pktinfo(false, 7);
        assert_eq!(n, 24);
        assert_eq!(&b[0..4], &24u32.to_ne_bytes());
        assert_eq!(&b[4..8], &0i32.to_ne_bytes());
        assert_eq!(&b[8..12], &26i32.to_ne_bytes());
        assert_eq!(&b[12..16], &7u32.to_ne_bytes());
        // ipi_spec_dst and ipi_addr unspecified.
        assert!(b[16..n].iter().all(|&x| x == 0));
    }

    #[test]
    fn an_ipv6_pktinfo_has_the_index_after_the_unspecified_address() {
        let (b, n) = pktinfo(true, 9);
        assert_eq!(n, 32);
        assert_eq!(&b[0..4], &32u32.to_ne_bytes());
        assert_eq!(&b[4..8], &41i32.to_ne_bytes());
        assert_eq!(&b[8..12], &46i32.to_ne_bytes());
        assert!(b[12..28].iter().all(|&x| x == 0));
        assert_eq!(&b[28..32], &9u32.to_ne_bytes());
    }
}
