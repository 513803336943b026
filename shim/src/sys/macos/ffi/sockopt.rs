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

use crate::sys::real;
use std::net::SocketAddr;

use libc::{c_int, c_void, socklen_t};

use super::errno;
use crate::sys::macos::wire;

/// `IP_MULTICAST_IFINDEX` (`netinet/in.h`): the IPv4 multicast interface by index.
pub(crate) const IP_MULTICAST_IFINDEX: c_int = 66;

fn set_u32(fd: c_int, level: c_int, name: c_int, value: u32) -> Result<(), c_int> {
    // SAFETY: `value` is a live u32 and the length passed is its size.
    let rc = unsafe {
        real::setsockopt(
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

/// The control message that sends one datagram by interface `index`
/// (`wire::pktinfo`: `IP_PKTINFO` or `IPV6_PKTINFO`, the address left to the
/// interface).
pub(crate) struct Pktinfo {
    buf: [u8; wire::PKTINFO_SPACE],
    len: usize,
}

impl Pktinfo {
    pub(crate) fn new(v6: bool, index: u32) -> Pktinfo {
        let (buf, len) = wire::pktinfo(v6, index);
        Pktinfo { buf, len }
    }

    /// The bytes for `msg_control` / `msg_controllen`.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
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
    let n = unsafe { real::sendmsg(fd, &msg, flags) };
    if n >= 0 { Ok(n as usize) } else { Err(errno()) }
}

/// A `sockaddr_storage` for `a` (with macOS's `sin_len`/`sin6_len`: `wire`).
pub(crate) fn sockaddr(a: &SocketAddr) -> (libc::sockaddr_storage, socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all-zero is valid.
    let mut s: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let (bytes, len) = wire::encode_sockaddr(a);
    // SAFETY: sockaddr_storage (128 bytes) holds the at most 28 bytes written.
    unsafe {
        std::ptr::copy_nonoverlapping(
            bytes.as_ptr(),
            (&mut s as *mut libc::sockaddr_storage).cast::<u8>(),
            len,
        )
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
    // SAFETY: the caller guarantees a readable sockaddr of at least `sa_len` bytes
    // (and `sa_len` is its first byte).
    let bytes = unsafe {
        let len = (*sa).sa_len as usize;
        std::slice::from_raw_parts(sa.cast::<u8>(), len)
    };
    wire::decode_sockaddr(bytes)
}

// The layouts `wire` writes by hand are the SDK's (checked whenever this is compiled).
const _: () = {
    assert!(wire::AF_INET as c_int == libc::AF_INET);
    assert!(wire::AF_INET6 as c_int == libc::AF_INET6);
    assert!(wire::SOCKADDR_IN_LEN == size_of::<libc::sockaddr_in>());
    assert!(wire::SOCKADDR_IN6_LEN == size_of::<libc::sockaddr_in6>());
    assert!(std::mem::offset_of!(libc::sockaddr_in6, sin6_flowinfo) == 4);
    assert!(std::mem::offset_of!(libc::sockaddr_in6, sin6_addr) == 8);
    assert!(std::mem::offset_of!(libc::sockaddr_in6, sin6_scope_id) == 24);
    assert!(wire::IPPROTO_IP == libc::IPPROTO_IP);
    assert!(wire::IPPROTO_IPV6 == libc::IPPROTO_IPV6);
    assert!(wire::IP_PKTINFO == libc::IP_PKTINFO);
    assert!(wire::IPV6_PKTINFO == libc::IPV6_PKTINFO);
    assert!(wire::CMSGHDR_LEN == size_of::<libc::cmsghdr>());
    assert!(wire::IN_PKTINFO_LEN == size_of::<libc::in_pktinfo>());
    assert!(wire::IN6_PKTINFO_LEN == size_of::<libc::in6_pktinfo>());
    assert!(std::mem::offset_of!(libc::in6_pktinfo, ipi6_ifindex) == 16);
    // SAFETY: CMSG_SPACE/CMSG_LEN only compute sizes.
    assert!(wire::cmsg_space(wire::IN6_PKTINFO_LEN) == unsafe { libc::CMSG_SPACE(20) } as usize);
    // SAFETY: as above.
    assert!(wire::cmsg_len(wire::IN_PKTINFO_LEN) == unsafe { libc::CMSG_LEN(12) } as usize);
};
