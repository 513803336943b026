//! Binding a socket to an interface the macOS way, and the per-datagram control
//! message (README, "macOS": what XNU honours for sending).
//!
//! * `IP_BOUND_IF` / `IPV6_BOUND_IF` (an interface index; 0 clears it): every packet
//!   of the socket is routed with that interface's scope (`INP_BOUND_IF`, the
//!   `ipoa_boundif` of `udp_output` and `tcp_output`): the connect-time binding.
//! * `IP_PKTINFO` / `IPV6_PKTINFO` in `sendmsg` with an interface index: that
//!   datagram only, and it takes precedence over `IP_BOUND_IF` (XNU `udp_output`,
//!   `bsd/netinet/udp_usrreq.c`; `in6_selectroute`, `bsd/netinet6/in6_src.c`).
//! * `IP_MULTICAST_IFINDEX` / `IPV6_MULTICAST_IF`: the multicast interface; for IPv4
//!   it overrides the scope for multicast destinations (`ip_output`), for IPv6 a
//!   PKTINFO index overrides it.

use std::net::SocketAddr;

use libc::{c_int, c_void, socklen_t};

use super::errno;

/// `IP_MULTICAST_IFINDEX` (`netinet/in.h`): the IPv4 multicast interface by index.
pub(crate) const IP_MULTICAST_IFINDEX: c_int = 66;

fn set_u32(fd: c_int, level: c_int, name: c_int, value: u32) -> Result<(), c_int> {
    // SAFETY: `value` is a live u32 and the length passed is its size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const u32).cast::<c_void>(),
            size_of::<u32>() as socklen_t,
        )
    };
    if rc == 0 { Ok(()) } else { Err(errno()) }
}

fn get_u32(fd: c_int, level: c_int, name: c_int) -> Result<u32, c_int> {
    let mut value = 0u32;
    let mut len = size_of::<u32>() as socklen_t;
    // SAFETY: `value` and `len` are live and writable; `len` holds `value`'s size.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut value as *mut u32).cast::<c_void>(),
            &mut len,
        )
    };
    if rc == 0 { Ok(value) } else { Err(errno()) }
}

fn bound_if_opt(v6: bool) -> (c_int, c_int) {
    if v6 {
        (libc::IPPROTO_IPV6, libc::IPV6_BOUND_IF)
    } else {
        (libc::IPPROTO_IP, libc::IP_BOUND_IF)
    }
}

/// Binds the socket to interface `index` (`IP_BOUND_IF` / `IPV6_BOUND_IF`; 0 clears).
pub(crate) fn set_bound_if(fd: c_int, v6: bool, index: u32) -> Result<(), c_int> {
    let (level, name) = bound_if_opt(v6);
    set_u32(fd, level, name, index)
}

/// The socket's bound interface (0: none).
pub(crate) fn bound_if(fd: c_int, v6: bool) -> Result<u32, c_int> {
    let (level, name) = bound_if_opt(v6);
    get_u32(fd, level, name)
}

/// Sets the multicast interface by index.
pub(crate) fn set_multicast_if(fd: c_int, v6: bool, index: u32) -> Result<(), c_int> {
    if v6 {
        set_u32(fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF, index)
    } else {
        set_u32(fd, libc::IPPROTO_IP, IP_MULTICAST_IFINDEX, index)
    }
}

/// The multicast interface the program chose (0: none).
pub(crate) fn multicast_if(fd: c_int, v6: bool) -> Result<u32, c_int> {
    if v6 {
        get_u32(fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF)
    } else {
        get_u32(fd, libc::IPPROTO_IP, IP_MULTICAST_IFINDEX)
    }
}

/// The control message that sends one datagram by interface `index`: `IP_PKTINFO`
/// (`ipi_ifindex`, with `ipi_spec_dst` unspecified so that the kernel takes that
/// interface's source) or `IPV6_PKTINFO` (`ipi6_ifindex`, `ipi6_addr` unspecified).
/// Aligned like the kernel's `CMSG_*` macros (`__DARWIN_ALIGN32`).
pub(crate) struct Pktinfo {
    buf: [u32; 16],
    len: usize,
}

impl Pktinfo {
    pub(crate) fn new(v6: bool, index: u32) -> Pktinfo {
        let mut p = Pktinfo {
            buf: [0; 16],
            len: 0,
        };
        let (level, kind, data_len) = if v6 {
            (
                libc::IPPROTO_IPV6,
                libc::IPV6_PKTINFO,
                size_of::<libc::in6_pktinfo>(),
            )
        } else {
            (
                libc::IPPROTO_IP,
                libc::IP_PKTINFO,
                size_of::<libc::in_pktinfo>(),
            )
        };
        // SAFETY: CMSG_SPACE/CMSG_LEN only compute sizes.
        let (space, cmsg_len) = unsafe {
            (
                libc::CMSG_SPACE(data_len as u32) as usize,
                libc::CMSG_LEN(data_len as u32),
            )
        };
        assert!(space <= size_of_val(&p.buf), "the buffer holds one PKTINFO");
        let hdr = libc::cmsghdr {
            cmsg_len,
            cmsg_level: level,
            cmsg_type: kind,
        };
        let base = p.buf.as_mut_ptr().cast::<u8>();
        // SAFETY: `buf` is 4-aligned (u32) and `space` bytes long, which CMSG_SPACE
        // says holds the header and the data; CMSG_DATA points inside it.
        unsafe {
            base.cast::<libc::cmsghdr>().write(hdr);
            let data = libc::CMSG_DATA(base.cast::<libc::cmsghdr>());
            if v6 {
                let mut pi: libc::in6_pktinfo = std::mem::zeroed();
                pi.ipi6_ifindex = index;
                data.cast::<libc::in6_pktinfo>().write_unaligned(pi);
            } else {
                let mut pi: libc::in_pktinfo = std::mem::zeroed();
                pi.ipi_ifindex = index;
                data.cast::<libc::in_pktinfo>().write_unaligned(pi);
            }
        }
        p.len = space;
        p
    }

    /// The bytes for `msg_control` / `msg_controllen`.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        // SAFETY: `buf` is plain data, `len` ≤ its size in bytes.
        unsafe { std::slice::from_raw_parts(self.buf.as_ptr().cast::<u8>(), self.len) }
    }
}

/// `sendto` of one datagram to `dest` through interface `index`, without touching the
/// socket's own options.
pub(crate) fn send_via(
    fd: c_int,
    buf: &[u8],
    dest: &SocketAddr,
    index: u32,
    flags: c_int,
) -> Result<usize, c_int> {
    let (mut storage, len) = sockaddr(dest);
    let ctl = Pktinfo::new(dest.is_ipv6(), index);
    let mut iov = libc::iovec {
        iov_base: buf.as_ptr().cast_mut().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; all-zero is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut storage as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = len;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.as_bytes().as_ptr().cast_mut().cast();
    msg.msg_controllen = ctl.as_bytes().len() as socklen_t;
    // SAFETY: every pointer in `msg` refers to a live buffer of the stated length;
    // the kernel only reads them.
    let n = unsafe { libc::sendmsg(fd, &msg, flags) };
    if n >= 0 { Ok(n as usize) } else { Err(errno()) }
}

/// A `sockaddr_storage` for `a` (with macOS's `sin_len`/`sin6_len`).
pub(crate) fn sockaddr(a: &SocketAddr) -> (libc::sockaddr_storage, socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all-zero is valid.
    let mut s: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match a {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_len: size_of::<libc::sockaddr_in>() as u8,
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe {
                (&mut s as *mut libc::sockaddr_storage)
                    .cast::<libc::sockaddr_in>()
                    .write(sin)
            };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_len: size_of::<libc::sockaddr_in6>() as u8,
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe {
                (&mut s as *mut libc::sockaddr_storage)
                    .cast::<libc::sockaddr_in6>()
                    .write(sin6)
            };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (s, len as socklen_t)
}

/// The address in a `sockaddr` the kernel or a library handed back.
///
/// # Safety
/// `sa` is null or points to a readable `sockaddr` of at least its `sa_len` bytes.
pub(crate) unsafe fn from_sockaddr(sa: *const libc::sockaddr) -> Option<SocketAddr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: the caller guarantees a readable sockaddr; its family says which
    // structure it is, and sa_len that it is long enough.
    unsafe {
        let len = (*sa).sa_len as usize;
        match (*sa).sa_family as c_int {
            libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
                let sin = sa.cast::<libc::sockaddr_in>().read_unaligned();
                Some(SocketAddr::new(
                    std::net::Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()).into(),
                    u16::from_be(sin.sin_port),
                ))
            }
            libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
                let sin6 = sa.cast::<libc::sockaddr_in6>().read_unaligned();
                Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                    sin6.sin6_addr.s6_addr.into(),
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}
