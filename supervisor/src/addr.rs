//! Socket addresses read out of the supervised program's memory, parsed by safe code.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// `sizeof(struct sockaddr_storage)`: the most the supervisor reads for one address.
pub const MAX_ADDR: usize = 128;
/// `sizeof(struct msghdr)` on x86_64.
pub const MSGHDR_LEN: usize = 56;
/// `sizeof(struct mmsghdr)` on x86_64.
pub const MMSGHDR_LEN: usize = 64;

pub const AF_UNSPEC: u16 = 0;
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

/// What an address argument names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    /// `AF_INET` / `AF_INET6` (IPv4-mapped IPv6 kept as given; `decide` canonicalises).
    Ip { addr: SocketAddr, scope_id: u32 },
    /// `AF_UNSPEC`: `connect` dissolves the association (a disconnect).
    Unspec,
    /// Another family (`AF_UNIX`, `AF_NETLINK`, …): not the supervisor's business.
    Other(u16),
    /// Too short for its family: the kernel will answer `EINVAL` itself.
    Short,
}

/// Parses the first `len` bytes of a `struct sockaddr` (`bytes` holds at least
/// `min(len, MAX_ADDR)` of them).
pub fn parse(bytes: &[u8]) -> Dest {
    if bytes.len() < 2 {
        return Dest::Short;
    }
    let family = u16::from_ne_bytes([bytes[0], bytes[1]]);
    match family {
        AF_UNSPEC => Dest::Unspec,
        AF_INET if bytes.len() >= 16 => {
            let port = u16::from_be_bytes([bytes[2], bytes[3]]);
            let ip = Ipv4Addr::new(bytes[4], bytes[5], bytes[6], bytes[7]);
            Dest::Ip {
                addr: SocketAddr::new(IpAddr::V4(ip), port),
                scope_id: 0,
            }
        }
        AF_INET6 if bytes.len() >= 24 => {
            let port = u16::from_be_bytes([bytes[2], bytes[3]]);
            let mut o = [0u8; 16];
            o.copy_from_slice(&bytes[8..24]);
            let ip = Ipv6Addr::from(o);
            // sin6_scope_id is optional in a 24-byte (RFC 2133) sockaddr_in6.
            let scope_id = if bytes.len() >= 28 {
                u32::from_ne_bytes([bytes[24], bytes[25], bytes[26], bytes[27]])
            } else {
                0
            };
            Dest::Ip {
                addr: SocketAddr::new(IpAddr::V6(ip), port),
                scope_id,
            }
        }
        AF_INET | AF_INET6 => Dest::Short,
        f => Dest::Other(f),
    }
}

/// `sizeof(struct sockaddr_in)`.
pub const SIN_LEN: usize = 16;

/// The destination of a send as the kernel reads it on a socket of `family`
/// (`AF_INET`, `AF_INET6`, …): as [`parse`], except that an `AF_UNSPEC` address of at
/// least a `sockaddr_in`'s size on an `AF_INET` socket is an IPv4 destination
/// (`udp_sendmsg`, `raw_sendmsg`: BSD compatibility, old programs leave `sin_family`
/// zero), as the preload's engine decodes it (`uapi::decode_unspec_as_inet`). On an
/// `AF_INET6` socket `AF_UNSPEC` is no address (`udpv6_sendmsg`: the connected
/// peer), and on `connect` it is a disconnect: not this function's.
pub fn parse_send(bytes: &[u8], family: i32) -> Dest {
    match parse(bytes) {
        Dest::Unspec if family == AF_INET as i32 && bytes.len() >= SIN_LEN => {
            let mut sin = [0u8; SIN_LEN];
            sin.copy_from_slice(&bytes[..SIN_LEN]);
            sin[..2].copy_from_slice(&AF_INET.to_ne_bytes());
            parse(&sin)
        }
        d => d,
    }
}

/// The fields of a `struct msghdr` the supervisor needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsgHdr {
    pub name: u64,
    pub namelen: u32,
    pub iov: u64,
    pub iovlen: u64,
    pub control: u64,
    pub controllen: u64,
    pub flags: i32,
}

/// Parses a `struct msghdr` (x86_64 layout).
pub fn parse_msghdr(b: &[u8; MSGHDR_LEN]) -> MsgHdr {
    let u64_at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().unwrap());
    let u32_at = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().unwrap());
    MsgHdr {
        name: u64_at(0),
        namelen: u32_at(8),
        iov: u64_at(16),
        iovlen: u64_at(24),
        control: u64_at(32),
        controllen: u64_at(40),
        flags: u32_at(48) as i32,
    }
}

/// One `struct iovec`: (base, len).
pub fn parse_iovec(b: &[u8]) -> (u64, u64) {
    (
        u64::from_ne_bytes(b[0..8].try_into().unwrap()),
        u64::from_ne_bytes(b[8..16].try_into().unwrap()),
    )
}

/// A `sockaddr_in` / `sockaddr_in6` as the kernel takes it.
pub fn encode(addr: SocketAddr, scope_id: u32) -> Vec<u8> {
    match addr {
        SocketAddr::V4(a) => {
            let mut b = vec![0u8; 16];
            b[0..2].copy_from_slice(&AF_INET.to_ne_bytes());
            b[2..4].copy_from_slice(&a.port().to_be_bytes());
            b[4..8].copy_from_slice(&a.ip().octets());
            b
        }
        SocketAddr::V6(a) => {
            let mut b = vec![0u8; 28];
            b[0..2].copy_from_slice(&AF_INET6.to_ne_bytes());
            b[2..4].copy_from_slice(&a.port().to_be_bytes());
            b[4..8].copy_from_slice(&a.flowinfo().to_ne_bytes());
            b[8..24].copy_from_slice(&a.ip().octets());
            b[24..28].copy_from_slice(&scope_id.to_ne_bytes());
            b
        }
    }
}

/// The program's `sockaddr` (`raw`, as read) with its address replaced by `ip` and
/// every other field kept (port, flow label, scope id): a `bind` rewritten to the
/// chosen interface's address. `None` when `ip` does not fit the family (the rewrite
/// keeps the family, so only a malformed address gets here).
pub fn with_ip(raw: &[u8], ip: IpAddr) -> Option<Vec<u8>> {
    let mut b = raw.to_vec();
    match (parse(raw), ip) {
        (Dest::Ip { addr, .. }, IpAddr::V4(v4)) if addr.is_ipv4() => {
            b[4..8].copy_from_slice(&v4.octets());
        }
        (Dest::Ip { addr, .. }, IpAddr::V6(v6)) if addr.is_ipv6() => {
            b[8..24].copy_from_slice(&v6.octets());
        }
        _ => return None,
    }
    Some(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewritten_bind_keeps_the_port_flow_label_and_scope() {
        let a: SocketAddr = "198.51.100.2:4000".parse().unwrap();
        let got = with_ip(&encode(a, 0), "198.51.100.66".parse().unwrap()).unwrap();
        assert_eq!(got, encode("198.51.100.66:4000".parse().unwrap(), 0));
        let a6 = SocketAddr::V6(std::net::SocketAddrV6::new(
            "2001:db8:10::2".parse().unwrap(),
            53,
            0x1234,
            7,
        ));
        let got = with_ip(&encode(a6, 7), "2001:db8:20::2".parse().unwrap()).unwrap();
        assert_eq!(
            parse(&got),
            Dest::Ip {
                addr: "[2001:db8:20::2]:53".parse().unwrap(),
                scope_id: 7
            }
        );
        assert_eq!(got[4..8], 0x1234u32.to_ne_bytes());
        // Another family than the program's sockaddr, or not an IP one: no rewrite.
        assert_eq!(with_ip(&encode(a, 0), "::1".parse().unwrap()), None);
        assert_eq!(with_ip(&[1, 0, 0, 0], "::1".parse().unwrap()), None);
    }

    #[test]
    fn v4_v6_mapped_scoped_unspec_and_short_addresses() {
        let a: SocketAddr = "203.0.113.10:9000".parse().unwrap();
        assert_eq!(
            parse(&encode(a, 0)),
            Dest::Ip {
                addr: a,
                scope_id: 0
            }
        );
        let m: SocketAddr = "[::ffff:203.0.113.10]:80".parse().unwrap();
        assert_eq!(
            parse(&encode(m, 0)),
            Dest::Ip {
                addr: m,
                scope_id: 0
            }
        );
        let ll: SocketAddr = "[fe80::1]:53".parse().unwrap();
        assert_eq!(
            parse(&encode(ll, 4)),
            Dest::Ip {
                addr: ll,
                scope_id: 4
            }
        );
        // RFC 2133 sockaddr_in6 without a scope id.
        assert!(matches!(
            parse(&encode(ll, 4)[..24]),
            Dest::Ip { scope_id: 0, .. }
        ));
        assert_eq!(parse(&[0, 0]), Dest::Unspec);
        assert_eq!(parse(&encode(a, 0)[..8]), Dest::Short);
        assert_eq!(parse(&[1]), Dest::Short);
        assert_eq!(parse(&[1, 0, b'/', b't']), Dest::Other(1));
    }

    /// An `AF_UNSPEC` destination on an `AF_INET` UDP socket is sent by the kernel as
    /// `AF_INET` (`udp_sendmsg`); the supervisor read it as "no IP address" and let the
    /// datagram leave by the default route (eth0).
    #[test]
    fn an_af_unspec_destination_of_a_send_on_an_af_inet_socket_is_ipv4() {
        let a: SocketAddr = "203.0.113.10:9000".parse().unwrap();
        let mut b = encode(a, 0);
        b[..2].copy_from_slice(&AF_UNSPEC.to_ne_bytes());
        let ip = Dest::Ip {
            addr: a,
            scope_id: 0,
        };
        assert_eq!(parse_send(&b, AF_INET as i32), ip);
        // A longer buffer (a sockaddr_storage) too.
        let mut st = b.clone();
        st.resize(MAX_ADDR, 0);
        assert_eq!(parse_send(&st, AF_INET as i32), ip);
        // Shorter than a sockaddr_in: the kernel's EINVAL; on AF_INET6: no address.
        assert_eq!(parse_send(&b[..15], AF_INET as i32), Dest::Unspec);
        assert_eq!(parse_send(&b, AF_INET6 as i32), Dest::Unspec);
        // Other families are what `parse` says.
        assert_eq!(parse_send(&encode(a, 0), AF_INET6 as i32), ip);
    }

    #[test]
    fn msghdr_fields() {
        let mut b = [0u8; MSGHDR_LEN];
        b[0..8].copy_from_slice(&0x1000u64.to_ne_bytes());
        b[8..12].copy_from_slice(&16u32.to_ne_bytes());
        b[16..24].copy_from_slice(&0x2000u64.to_ne_bytes());
        b[24..32].copy_from_slice(&2u64.to_ne_bytes());
        b[32..40].copy_from_slice(&0x3000u64.to_ne_bytes());
        b[40..48].copy_from_slice(&32u64.to_ne_bytes());
        let m = parse_msghdr(&b);
        assert_eq!(
            (m.name, m.namelen, m.iov, m.iovlen, m.control, m.controllen),
            (0x1000, 16, 0x2000, 2, 0x3000, 32)
        );
    }
}
