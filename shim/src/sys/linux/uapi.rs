//! The kernel's rules for the socket-call arguments the engine reads, as pure
//! functions over bytes already copied out of the program (no pointers, no `unsafe`):
//! what a socket address or a control-message buffer says, and the errno the kernel
//! answers when a length is wrong. Sources: `net/socket.c` (`move_addr_to_kernel`,
//! `__copy_msghdr`, `____sys_sendmsg`), `include/linux/socket.h` (`__cmsg_nxthdr`,
//! `CMSG_OK`), `net/ipv4/ip_sockglue.c` (`ip_cmsg_send`), `net/ipv6/datagram.c`
//! (`ip6_datagram_send_ctl`); every errno in the tests was observed on this machine
//! (Linux 6.18.44, x86-64) with a C program issuing the call on a UDP socket.
//!
//! Free of `crate::` paths on purpose: the fuzz targets (`fuzz/`) compile this file
//! as a module of their own.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// `sizeof(struct sockaddr_storage)`: the most address bytes the kernel copies.
pub const SOCKADDR_MAX: usize = 128;
/// The most `iovec`s in one message, and messages in one `sendmmsg` (`UIO_MAXIOV`).
pub const UIO_MAXIOV: usize = 1024;
/// `sizeof(struct cmsghdr)` on a 64-bit kernel (`size_t cmsg_len; int level; int
/// type`) and `CMSG_ALIGN`, shared with the stub (which walks control data for
/// `SCM_RIGHTS`).
pub use mifshim_fastpath::{cmsg_align, cmsg_space};
// The fuzz targets (`fuzz/`, which compile this file) and the tests use these.
#[allow(unused_imports)]
pub use mifshim_fastpath::{CMSGHDR, cmsg_len};
/// Room for the program's control messages plus ours (QUIC stacks use a few dozen
/// bytes: UDP_SEGMENT, ECN, timestamps). Larger control data is not copied.
pub const CMSG_ROOM: usize = 256;

const AF_UNSPEC: u16 = 0;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
const EINVAL: i32 = 22;
const ENOBUFS: i32 = 105;

/// `sizeof(struct sockaddr_in)`.
const SIN_LEN: usize = 16;
/// `sizeof(struct sockaddr_in6)`.
const SIN6_LEN: usize = 28;
/// Length of a `sockaddr_in6` without `sin6_scope_id` (RFC 2133), which the kernel
/// also takes.
const SIN6_LEN_RFC2133: usize = 24;
/// `sizeof(struct in6_pktinfo)`.
use mifshim_fastpath::IN6_PKTINFO;

/// A decoded INET socket address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dest {
    pub addr: SocketAddr,
    pub scope_id: u32,
}

// ---------------------------------------------------------------------------------
// Lengths
// ---------------------------------------------------------------------------------

/// The address length of `connect`, `bind` and `sendto` (`move_addr_to_kernel`):
/// the bytes to copy, or `EINVAL` for a negative length or one beyond
/// `sockaddr_storage`. The kernel checks this before it reads the address (so a bad
/// pointer with a length of 200 is `EINVAL`, not `EFAULT`), and after the fd (`EBADF`
/// first; for `sendto` and `bind` also `ENOTSOCK`; for `connect` a non-socket fd gets
/// this answer first).
pub fn addr_len(len: u32) -> Result<usize, i32> {
    if (len as i32) < 0 || len as usize > SOCKADDR_MAX {
        Err(EINVAL)
    } else {
        Ok(len as usize)
    }
}

/// The name length of a `sendmsg` message (`__copy_msghdr`): 0 when there is no name,
/// `EINVAL` when negative, clamped to `sockaddr_storage` (a length of 200 is sent).
pub fn msg_name_len(has_name: bool, len: u32) -> Result<usize, i32> {
    if !has_name {
        return Ok(0);
    }
    if (len as i32) < 0 {
        return Err(EINVAL);
    }
    Ok((len as usize).min(SOCKADDR_MAX))
}

/// What the engine does with a message's control data, by its length alone
/// (`____sys_sendmsg`; the kernel checks this after the name and the iovecs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlLen {
    /// Copy this many bytes (at most [`CMSG_ROOM`]).
    Copy(usize),
    /// Too long to copy and extend; the kernel may still take it (up to
    /// `net.core.optmem_max`).
    TooBig,
    /// The kernel refuses it: `ENOBUFS` (`msg_controllen > INT_MAX`).
    Refused(i32),
}

pub fn control_len(len: usize) -> ControlLen {
    if len > i32::MAX as usize {
        ControlLen::Refused(ENOBUFS)
    } else if cmsg_align(len) + cmsg_space(IN6_PKTINFO) > CMSG_ROOM {
        ControlLen::TooBig
    } else {
        ControlLen::Copy(len)
    }
}

/// A `setsockopt` option length: `EINVAL` when negative (`__sys_setsockopt`); else
/// how many bytes the engine reads (it looks at no option longer than `cap`).
pub fn sockopt_len(len: u32, cap: usize) -> Result<usize, i32> {
    if (len as i32) < 0 {
        Err(EINVAL)
    } else {
        Ok((len as usize).min(cap))
    }
}

// ---------------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------------

fn family(b: &[u8]) -> Option<u16> {
    Some(u16::from_ne_bytes([*b.first()?, *b.get(1)?]))
}

/// Decodes an `AF_INET`/`AF_INET6` address from the bytes the program passed (its
/// length is the slice's); anything else (`AF_UNSPEC`, `AF_UNIX`, too short) is
/// `None`.
pub fn decode_sockaddr(b: &[u8]) -> Option<Dest> {
    match family(b)? {
        AF_INET if b.len() >= SIN_LEN => {
            let ip = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
            Some(Dest {
                addr: SocketAddr::new(IpAddr::V4(ip), u16::from_be_bytes([b[2], b[3]])),
                scope_id: 0,
            })
        }
        AF_INET6 if b.len() >= SIN6_LEN_RFC2133 => {
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&b[8..24]);
            let scope_id = match b.get(24..SIN6_LEN) {
                Some(s) => u32::from_ne_bytes([s[0], s[1], s[2], s[3]]),
                None => 0,
            };
            Some(Dest {
                addr: SocketAddr::new(
                    IpAddr::V6(Ipv6Addr::from(ip)),
                    u16::from_be_bytes([b[2], b[3]]),
                ),
                scope_id,
            })
        }
        _ => None,
    }
}

/// An `AF_UNSPEC` address the size of a `sockaddr_in`, read as `AF_INET`: what the
/// kernel does with the destination of a send on an IPv4 socket (`udp_sendmsg`,
/// `raw_sendmsg`: old programs leave `sin_family` zero). Only for sends, and only on
/// `AF_INET` sockets (on `connect` `AF_UNSPEC` means "disconnect").
pub fn decode_unspec_as_inet(b: &[u8]) -> Option<Dest> {
    if b.len() < SIN_LEN || family(b)? != AF_UNSPEC {
        return None;
    }
    let mut sin = [0u8; SIN_LEN];
    sin.copy_from_slice(&b[..SIN_LEN]);
    sin[..2].copy_from_slice(&AF_INET.to_ne_bytes());
    decode_sockaddr(&sin)
}

// ---------------------------------------------------------------------------------
// Control messages
// ---------------------------------------------------------------------------------

// The walk and the PKTINFO rules live in `mifshim-fastpath` (shared with the
// seccomp supervisor, which must read a program's control messages as the preload
// does): re-exported here, their kernel-observed tests below.
pub use mifshim_fastpath::{Built, Pktinfo, build_control};
#[allow(unused_imports)]
pub use mifshim_fastpath::{Scan, scan_control};

#[cfg(test)]
mod tests {
    //! Each expectation names what the kernel answered on this machine (Linux
    //! 6.18.44, x86-64) for the same bytes in a `connect`/`sendto`/`sendmsg` on a
    //! UDP socket to 127.0.0.1:9 or [::1]:9 (a C program, `sendmsg` unless said).
    use super::*;
    const IPPROTO_IP: i32 = 0;
    const IPPROTO_IPV6: i32 = 41;
    const IP_PKTINFO: i32 = 8;
    const IPV6_PKTINFO: i32 = 50;

    fn hdr(len: usize, level: i32, ty: i32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(len as u64).to_ne_bytes());
        v.extend_from_slice(&level.to_ne_bytes());
        v.extend_from_slice(&ty.to_ne_bytes());
        v
    }

    fn pktinfo4(ifindex: u32) -> Vec<u8> {
        let mut v = hdr(cmsg_len(12), IPPROTO_IP, IP_PKTINFO);
        v.extend_from_slice(&ifindex.to_ne_bytes());
        v.extend_from_slice(&[0; 8]);
        v.resize(cmsg_space(12), 0);
        v
    }

    fn pktinfo6(ifindex: u32) -> Vec<u8> {
        let mut v = hdr(cmsg_len(20), IPPROTO_IPV6, IPV6_PKTINFO);
        v.extend_from_slice(&[0; 16]);
        v.extend_from_slice(&ifindex.to_ne_bytes());
        v.resize(cmsg_space(20), 0);
        v
    }

    const P4: Pktinfo = Pktinfo {
        ifindex: 7,
        v6: false,
    };
    const P6: Pktinfo = Pktinfo {
        ifindex: 7,
        v6: true,
    };

    #[test]
    fn address_lengths_as_the_kernel_checks_them() {
        // connect/sendto/bind: len 129, 200, 0x80000000 -> EINVAL (also with an
        // unmapped pointer: the length is checked first); 128 and 16 -> sent; 0 -> read
        // nothing (connect NULL,0 -> EINVAL from the protocol, not from here).
        for (len, want) in [
            (0u32, Ok(0)),
            (16, Ok(16)),
            (128, Ok(128)),
            (129, Err(EINVAL)),
            (200, Err(EINVAL)),
            (0x8000_0000, Err(EINVAL)),
            (u32::MAX, Err(EINVAL)),
        ] {
            assert_eq!(addr_len(len), want, "addrlen {len}");
        }
    }

    #[test]
    fn sendmsg_name_lengths_are_clamped_not_refused() {
        // sendmsg namelen 200 with 300 readable bytes -> 1 (sent: clamped to 128);
        // namelen 200 with only 16 readable -> EFAULT (128 are copied);
        // namelen 0x80000000 -> EINVAL; name NULL, namelen 200 -> EDESTADDRREQ (no name).
        for (has, len, want) in [
            (true, 16u32, Ok(16)),
            (true, 200, Ok(128)),
            (true, 0x7fff_ffff, Ok(128)),
            (true, 0x8000_0000, Err(EINVAL)),
            (true, u32::MAX, Err(EINVAL)),
            (false, 200, Ok(0)),
            (false, 0x8000_0000, Ok(0)),
        ] {
            assert_eq!(msg_name_len(has, len), want, "name {has} namelen {len}");
        }
    }

    #[test]
    fn control_lengths_as_the_kernel_checks_them() {
        // msg_controllen 0x80000000, 0x7fffffff (> optmem_max 131072), SIZE_MAX -> ENOBUFS
        // (also with msg_control NULL); 20480 zero bytes -> EINVAL (cmsg_len 0).
        assert_eq!(control_len(usize::MAX), ControlLen::Refused(ENOBUFS));
        assert_eq!(control_len(0x8000_0000), ControlLen::Refused(ENOBUFS));
        assert_eq!(control_len(0x7fff_ffff), ControlLen::TooBig);
        assert_eq!(control_len(20480), ControlLen::TooBig);
        assert_eq!(control_len(0), ControlLen::Copy(0));
        assert_eq!(control_len(200), ControlLen::Copy(200));
        assert_eq!(
            control_len(CMSG_ROOM - cmsg_space(20)),
            ControlLen::Copy(CMSG_ROOM - cmsg_space(20))
        );
        // Ours goes at the aligned end: 1 byte more needs 8 more.
        assert_eq!(
            control_len(CMSG_ROOM - cmsg_space(20) + 1),
            ControlLen::TooBig
        );
        // setsockopt optlen -1 -> EINVAL.
        assert_eq!(sockopt_len(u32::MAX, 272), Err(EINVAL));
        assert_eq!(sockopt_len(5000, 272), Ok(272));
        assert_eq!(sockopt_len(12, 272), Ok(12));
    }

    #[test]
    fn sockaddr_decoding() {
        let mut sin = [0u8; 16];
        sin[..2].copy_from_slice(&AF_INET.to_ne_bytes());
        sin[2..4].copy_from_slice(&9u16.to_be_bytes());
        sin[4..8].copy_from_slice(&[127, 0, 0, 1]);
        let d = decode_sockaddr(&sin).unwrap();
        assert_eq!(d.addr, "127.0.0.1:9".parse().unwrap());
        // connect len 8 / sendto addrlen 15 on AF_INET -> EINVAL (the protocol's check):
        // not an address the engine decides on.
        assert_eq!(decode_sockaddr(&sin[..15]), None);
        assert_eq!(decode_sockaddr(&sin[..1]), None);
        assert_eq!(decode_sockaddr(&[]), None);
        let mut sin6 = [0u8; 28];
        sin6[..2].copy_from_slice(&AF_INET6.to_ne_bytes());
        sin6[2..4].copy_from_slice(&53u16.to_be_bytes());
        sin6[23] = 1;
        sin6[24..28].copy_from_slice(&3u32.to_ne_bytes());
        let d = decode_sockaddr(&sin6).unwrap();
        assert_eq!(d.addr, "[::1]:53".parse().unwrap());
        assert_eq!(d.scope_id, 3);
        // v6 namelen 24 -> sent (RFC 2133 layout, no scope); 23 -> EINVAL.
        assert_eq!(decode_sockaddr(&sin6[..24]).unwrap().scope_id, 0);
        assert_eq!(decode_sockaddr(&sin6[..23]), None);
        // Longer buffers (namelen 128 / 200 clamped) decode the same.
        let mut long = [0u8; 128];
        long[..16].copy_from_slice(&sin);
        assert_eq!(
            decode_sockaddr(&long).unwrap().addr,
            "127.0.0.1:9".parse().unwrap()
        );
        // AF_UNSPEC of sockaddr_in size: an IPv4 destination for sends.
        let mut un = sin;
        un[..2].copy_from_slice(&0u16.to_ne_bytes());
        assert_eq!(decode_sockaddr(&un), None);
        assert_eq!(
            decode_unspec_as_inet(&un).unwrap().addr,
            "127.0.0.1:9".parse().unwrap()
        );
        assert_eq!(decode_unspec_as_inet(&un[..15]), None);
        assert_eq!(decode_unspec_as_inet(&sin), None);
    }

    #[test]
    fn control_walks_that_the_kernel_refuses_are_einval() {
        let einval: &[(&str, Vec<u8>)] = &[
            // cmsg_len SIZE_MAX / SIZE_MAX-7 with msg_controllen CMSG_SPACE(12) -> EINVAL
            // (the builder used to loop forever on these).
            ("cmsg_len SIZE_MAX", {
                let mut v = hdr(usize::MAX, IPPROTO_IP, IP_PKTINFO);
                v.resize(cmsg_space(12), 0);
                v
            }),
            ("cmsg_len SIZE_MAX-7", {
                let mut v = hdr(usize::MAX - 7, IPPROTO_IP, IP_PKTINFO);
                v.resize(cmsg_space(12), 0);
                v
            }),
            // cmsg_len 15 -> EINVAL.
            ("cmsg_len 15", {
                let mut v = hdr(15, IPPROTO_IP, IP_PKTINFO);
                v.resize(cmsg_space(12), 0);
                v
            }),
            // msg_controllen 16 of zeros (cmsg_len 0) -> EINVAL.
            ("16 zero bytes", vec![0; 16]),
            // cmsg_len 17 with msg_controllen 16 -> EINVAL.
            ("cmsg_len beyond the buffer", hdr(17, 999, 1)),
            // an unknown-level message of 16 then 16 zero bytes (a 2nd header of len 0) -> EINVAL.
            ("second header of len 0", {
                let mut v = hdr(16, 999, 1);
                v.resize(32, 0);
                v
            }),
            // IP_PKTINFO then a 2nd header of 0xff bytes -> EINVAL.
            ("second header of 0xff", {
                let mut v = pktinfo4(0);
                v.extend_from_slice(&[0xff; 16]);
                v
            }),
        ];
        for (what, v) in einval {
            assert_eq!(scan_control(v, false), Err(EINVAL), "{what}");
            assert_eq!(scan_control(v, true), Err(EINVAL), "{what} (v6)");
            let mut out = [0u8; CMSG_ROOM];
            assert_eq!(build_control(v, P4, &mut out), Err(EINVAL), "{what}");
        }
    }

    #[test]
    fn control_walks_that_the_kernel_accepts() {
        // msg_controllen 8 or 15 (shorter than a header) -> sent, nothing parsed.
        for n in [0usize, 8, 15] {
            let v = vec![0xffu8; n];
            assert_eq!(
                scan_control(&v, false),
                Ok(Scan {
                    end: 0,
                    chosen: false,
                    patch: None,
                    index: 0,
                    source: None,
                })
            );
        }
        // An unknown-level message of 16, with 15 trailing bytes -> sent: the kernel
        // stops where no header fits; ours goes at 16, the 15 bytes are dropped.
        let mut v = hdr(16, 999, 1);
        v.resize(31, 0xee);
        assert_eq!(scan_control(&v, false).unwrap().end, 16);
        let mut out = [0u8; CMSG_ROOM];
        assert_eq!(
            build_control(&v, P4, &mut out),
            Ok(Built::Control(16 + cmsg_space(12)))
        );
        assert!(
            scan_control(&out[..16 + cmsg_space(12)], false)
                .unwrap()
                .chosen
        );
        // IP_PKTINFO with msg_controllen CMSG_LEN(12) (no trailing pad) -> sent.
        let pk = pktinfo4(3);
        assert!(scan_control(&pk[..cmsg_len(12)], false).unwrap().chosen);
        // ... and with interface 0, ours would follow at the aligned end (32, not 28),
        // where the kernel's walk looks next: it is patched in place instead.
        let pk0 = pktinfo4(0);
        assert_eq!(scan_control(&pk0[..cmsg_len(12)], false).unwrap().end, 32);
        let mut u = hdr(cmsg_len(4), 999, 1);
        u.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(u.len(), 20);
        assert_eq!(scan_control(&u, false).unwrap().end, 24);
        assert_eq!(
            build_control(&u, P4, &mut out),
            Ok(Built::Control(24 + cmsg_space(12)))
        );
        assert_eq!(&out[20..24], &[0; 4]);
        assert_eq!(&out[24..24 + cmsg_space(12)], &pktinfo4(7)[..]);
        // IP_PKTINFO of CMSG_LEN(16) or CMSG_LEN(8) -> EINVAL from ip_cmsg_send: not
        // the program's choice (the kernel refuses the datagram itself).
        let mut odd = hdr(cmsg_len(16), IPPROTO_IP, IP_PKTINFO);
        odd.extend_from_slice(&[1, 0, 0, 0]);
        odd.resize(cmsg_space(16), 0);
        assert!(!scan_control(&odd, false).unwrap().chosen);
        // IPV6_PKTINFO of CMSG_LEN(24) -> sent (at least CMSG_LEN(20) is taken).
        let mut long6 = hdr(cmsg_len(24), IPPROTO_IPV6, IPV6_PKTINFO);
        long6.extend_from_slice(&[0; 16]);
        long6.extend_from_slice(&5u32.to_ne_bytes());
        long6.resize(cmsg_space(24), 0);
        assert!(scan_control(&long6, true).unwrap().chosen);
    }

    /// An `IP_PKTINFO` naming wlan0 on a native IPv6 datagram is ignored by the
    /// kernel's IPv6 path: it was taken for the program's choice, and the datagram
    /// left by the default route (seen on the testbed: eth0).
    #[test]
    fn an_ip_pktinfo_on_an_ipv6_datagram_is_no_choice_of_interface() {
        let s = scan_control(&pktinfo4(3), true).unwrap();
        assert!(!s.chosen && s.patch.is_none(), "{s:?}");
        let mut out = [0u8; CMSG_ROOM];
        // Ours follows it, and is what the kernel reads.
        assert_eq!(
            build_control(&pktinfo4(3), P6, &mut out),
            Ok(Built::Control(cmsg_space(12) + cmsg_space(20)))
        );
        assert_eq!(
            &out[cmsg_space(12)..cmsg_space(12) + cmsg_space(20)],
            &pktinfo6(7)[..]
        );
        // Likewise an IPV6_PKTINFO on the IPv4 path (the walk does not know the
        // socket's family): ours goes last, and wins.
        let s = scan_control(&pktinfo6(3), false).unwrap();
        assert!(!s.chosen && s.patch.is_none(), "{s:?}");
    }

    /// A PKTINFO of interface 0 after one that names an interface leaves the
    /// kernel's choice as it was (both paths): the program's choice stands, nothing
    /// is patched.
    #[test]
    fn a_pktinfo_of_interface_0_after_a_choice_leaves_the_choice() {
        for (v6, pk) in [(false, pktinfo4 as fn(u32) -> Vec<u8>), (true, pktinfo6)] {
            let mut app = pk(3);
            app.extend_from_slice(&pk(0));
            let s = scan_control(&app, v6).unwrap();
            assert_eq!((s.chosen, s.patch), (true, None), "v6 {v6}");
            let mut then = pk(0);
            then.extend_from_slice(&pk(3));
            let s = scan_control(&then, v6).unwrap();
            assert_eq!((s.chosen, s.patch), (true, None), "v6 {v6}");
        }
    }

    #[test]
    fn our_pktinfo_is_added_patched_or_left_to_the_program() {
        let mut out = [0u8; CMSG_ROOM];
        // Nothing of the program's: ours alone.
        assert_eq!(
            build_control(&[], P4, &mut out),
            Ok(Built::Control(cmsg_space(12)))
        );
        assert_eq!(&out[..cmsg_space(12)], &pktinfo4(7)[..]);
        assert_eq!(
            build_control(&[], P6, &mut out),
            Ok(Built::Control(cmsg_space(20)))
        );
        assert_eq!(&out[..cmsg_space(20)], &pktinfo6(7)[..]);
        // The program's PKTINFO with interface 0 gets ours; its other messages stay.
        let mut app = hdr(cmsg_len(4), 17, 103); // UDP_SEGMENT
        app.extend_from_slice(&1200u32.to_ne_bytes());
        app.resize(cmsg_space(4), 0);
        let at = app.len();
        app.extend_from_slice(&pktinfo4(0));
        assert_eq!(
            build_control(&app, P4, &mut out),
            Ok(Built::Control(app.len()))
        );
        assert_eq!(&out[at..at + cmsg_space(12)], &pktinfo4(7)[..]);
        assert_eq!(&out[..at], &app[..at]);
        // An interface the program chose wins.
        assert_eq!(
            build_control(&pktinfo4(3), P4, &mut out),
            Ok(Built::Chosen(cmsg_space(12)))
        );
    }

    #[test]
    fn our_pktinfo_goes_after_the_programs_messages_its_trailing_bytes_dropped() {
        let mut out = [0xaau8; CMSG_ROOM];
        // A UDP_SEGMENT message, then 5 bytes the kernel's walk ignores (fewer than a
        // header): ours goes where the walk looks next, the 5 bytes are not sent.
        let mut app = hdr(cmsg_len(4), 17, 103);
        app.extend_from_slice(&1200u32.to_ne_bytes());
        app.resize(cmsg_space(4), 0);
        let end = app.len();
        app.extend_from_slice(&[1, 2, 3, 4, 5]);
        assert_eq!(
            build_control(&app, P6, &mut out),
            Ok(Built::Control(end + cmsg_space(20)))
        );
        assert_eq!(&out[..end], &app[..end]);
        assert_eq!(&out[end..end + cmsg_space(20)], &pktinfo6(7)[..]);
        assert_eq!(
            scan_control(&out[..end + cmsg_space(20)], true).map(|s| s.chosen),
            Ok(true)
        );
    }

    #[test]
    fn a_pktinfo_of_the_other_family_is_left_and_ours_added() {
        let mut out = [0u8; CMSG_ROOM];
        // The program's IP_PKTINFO with interface 0 on an IPv6 datagram: not the one
        // the kernel reads for it, so it stays and an IPV6_PKTINFO is added.
        let app = pktinfo4(0);
        assert_eq!(
            build_control(&app, P6, &mut out),
            Ok(Built::Control(app.len() + cmsg_space(20)))
        );
        assert_eq!(&out[..app.len()], &app[..]);
        assert_eq!(
            &out[app.len()..app.len() + cmsg_space(20)],
            &pktinfo6(7)[..]
        );
        // An IPV6_PKTINFO with interface 0 is patched at its index (after the address).
        let app = pktinfo6(0);
        assert_eq!(
            build_control(&app, P6, &mut out),
            Ok(Built::Control(app.len()))
        );
        assert_eq!(&out[..app.len()], &pktinfo6(7)[..]);
    }

    #[test]
    fn no_room_for_ours_is_enobufs() {
        let mut small = [0u8; 16];
        assert_eq!(build_control(&[], P4, &mut small), Err(ENOBUFS));
        // Room for the program's, not for ours.
        let app = hdr(cmsg_len(0), 1, 1);
        let mut exact = [0u8; CMSGHDR];
        assert_eq!(build_control(&app, P4, &mut exact), Err(ENOBUFS));
    }
}
