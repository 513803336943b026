//! Linux primitives (see `crate::sys`). Every `unsafe` block carries a `SAFETY:`
//! comment.

pub(crate) mod filter;
pub(crate) mod net;
pub(crate) mod netlink;
pub(crate) mod rawio;
pub(crate) mod uaccess;
pub(crate) mod uapi;

// The real functions and the hooks' guard are shared (`sys::real`, `sys::guard`).
use super::real;

// `uapi` is compiled standalone by the fuzz targets too, so it keeps its own copy of the
// kernel's limit; it is the one the stub uses (`mifshim_abi`).
const _: () = assert!(uapi::UIO_MAXIOV == mifshim_abi::UIO_MAXIOV);
/// What the program's control data says about a datagram (`ops`), by the kernel's
/// rules for each path: fastpath's, shared with the stub and the supervisor.
pub(crate) use mifshim_fastpath::{may_carry_source, scan_control};
pub(crate) use uapi::{Dest, Pktinfo};

use config_schema::AddrFamily;
use libc::{c_int, c_void, sockaddr, socklen_t};
use std::mem::{MaybeUninit, size_of, zeroed};
use std::net::SocketAddr;

// ---------------------------------------------------------------------------------
// errno
// ---------------------------------------------------------------------------------

/// This thread's errno, read and set as the stub does (`mifshim_abi`).
pub(crate) use mifshim_abi::{errno, set_errno};

/// glibc's `PTHREAD_CANCEL_ENABLE` and `PTHREAD_CANCEL_DISABLE` (`sys::guard`).
pub(crate) const PTHREAD_CANCEL_ENABLE: c_int = 0;
pub(crate) const PTHREAD_CANCEL_DISABLE: c_int = 1;
/// Only a pthread key below 32 has its slot in glibc's thread descriptor itself (a
/// plain load and store, no allocation: `sys::guard`).
pub(crate) const KEYS_IN_DESCRIPTOR: u32 = 32;

/// The multicast membership options `ops` reads and points at the chosen interface
/// (socket-core's reader, given Linux's numbers and layouts).
pub(crate) const MEMBERSHIP: &mifshim_socket_core::membership::Abi =
    &mifshim_socket_core::membership::LINUX;

pub(crate) const ENETUNREACH: c_int = libc::ENETUNREACH;
pub(crate) const EACCES: c_int = libc::EACCES;
pub(crate) const ENXIO: c_int = libc::ENXIO;

/// The name of glibc's `EAI_*` code `code` (`<netdb.h>`: negative numbers), for the
/// events file; `EAI_UNKNOWN` for another.
pub(crate) fn eai_name(code: c_int) -> &'static str {
    match code {
        -2 => "EAI_NONAME",
        -3 => "EAI_AGAIN",
        -4 => "EAI_FAIL",
        -5 => "EAI_NODATA",
        -6 => "EAI_FAMILY",
        -7 => "EAI_SOCKTYPE",
        -8 => "EAI_SERVICE",
        -9 => "EAI_ADDRFAMILY",
        -10 => "EAI_MEMORY",
        -11 => "EAI_SYSTEM",
        -12 => "EAI_OVERFLOW",
        _ => "EAI_UNKNOWN",
    }
}

/// Symbolic name of an errno value, for logs.
pub(crate) fn errno_name(e: c_int) -> &'static str {
    match e {
        libc::ENETUNREACH => "ENETUNREACH",
        libc::EACCES => "EACCES",
        libc::EPERM => "EPERM",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::ENOPROTOOPT => "ENOPROTOOPT",
        libc::EBADF => "EBADF",
        libc::ENOTSOCK => "ENOTSOCK",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        _ => "errno",
    }
}

// ---------------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------------

/// Whether `addr` is an `AF_UNSPEC` address (`connect`'s "dissolve the association").
///
/// # Safety
/// `addr` is NULL or points to `len` readable bytes.
pub(crate) unsafe fn is_unspec(addr: *const sockaddr, len: socklen_t) -> bool {
    if addr.is_null() || (len as usize) < size_of::<libc::sa_family_t>() {
        return false;
    }
    // SAFETY: the caller's contract; len covers the family field.
    let family = unsafe { std::ptr::read_unaligned(addr.cast::<libc::sa_family_t>()) };
    family as c_int == libc::AF_UNSPEC
}

/// A socket address copied out of the program (`connect`, `bind`, `sendto`,
/// `sendmsg`'s name), as many bytes as the kernel would copy. The hooks hand the
/// kernel this copy, not the program's pointer, so the address decided on is the
/// address used even if another thread rewrites the program's buffer meanwhile.
#[derive(Clone, Copy)]
pub(crate) struct UserAddr {
    /// The first `len` bytes are the copy; the rest is never read (left uninitialised:
    /// zeroing 128 bytes on every connect and send costs more than the copy).
    buf: [MaybeUninit<u8>; uapi::SOCKADDR_MAX],
    len: usize,
}

impl UserAddr {
    /// An empty copy, to be [`load`](Self::load)ed in place (a hook's copy is made in
    /// its own frame, not moved there).
    pub(crate) fn empty() -> Self {
        UserAddr {
            buf: [MaybeUninit::uninit(); uapi::SOCKADDR_MAX],
            len: 0,
        }
    }

    /// Copies `len` bytes at `addr` into `self` with the kernel's checks for
    /// `connect`, `bind` and `sendto` (`move_addr_to_kernel`): `EINVAL` for a negative
    /// length or one beyond `sockaddr_storage`, `EFAULT` for unreadable bytes. `addr`
    /// NULL is `Ok(None)` (no address; for `sendto` the length is then ignored).
    #[inline]
    pub(crate) fn load(
        &mut self,
        addr: *const sockaddr,
        len: socklen_t,
    ) -> Result<Option<&Self>, c_int> {
        if addr.is_null() {
            return Ok(None);
        }
        let n = uapi::addr_len(len)?;
        // SAFETY: buf has room for n (<= SOCKADDR_MAX) bytes.
        unsafe { uaccess::copy_in_raw(self.buf.as_mut_ptr().cast(), addr.cast(), n) }?;
        self.len = n;
        Ok(Some(self))
    }

    /// Copies exactly `n` (<= 128) bytes at `addr`, or `EFAULT`.
    pub(crate) fn copy_n(addr: *const sockaddr, n: usize) -> Result<Self, c_int> {
        let mut a = UserAddr {
            buf: [MaybeUninit::uninit(); uapi::SOCKADDR_MAX],
            len: n.min(uapi::SOCKADDR_MAX),
        };
        // SAFETY: buf has room for len (<= SOCKADDR_MAX) bytes.
        unsafe { uaccess::copy_in_raw(a.buf.as_mut_ptr().cast(), addr.cast(), a.len) }?;
        Ok(a)
    }

    /// `bytes` (at most 128), as a copy.
    fn from_bytes(bytes: &[u8]) -> Self {
        let mut a = UserAddr {
            buf: [MaybeUninit::uninit(); uapi::SOCKADDR_MAX],
            len: bytes.len().min(uapi::SOCKADDR_MAX),
        };
        for (d, s) in a.buf.iter_mut().zip(bytes) {
            d.write(*s);
        }
        a
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: the first len bytes were written (copy_n, from_bytes).
        unsafe { std::slice::from_raw_parts(self.buf.as_ptr().cast(), self.len) }
    }

    /// The INET destination it names (see [`uapi::decode_sockaddr`]).
    pub(crate) fn dest(&self) -> Option<Dest> {
        uapi::decode_sockaddr(self.bytes())
    }

    /// Replaces the address of the `sockaddr_in`/`sockaddr_in6` this holds (port, flow
    /// label and scope stay the program's); `false` when `ip` is not of its family.
    pub(crate) fn set_ip(&mut self, ip: std::net::IpAddr) -> bool {
        let family = match self.bytes().get(..2) {
            Some(f) => libc::sa_family_t::from_ne_bytes([f[0], f[1]]) as c_int,
            None => return false,
        };
        match ip {
            std::net::IpAddr::V4(v4) if family == libc::AF_INET && self.len >= 8 => {
                // Within the first len bytes, which are initialised.
                for (d, b) in self.buf[4..8].iter_mut().zip(v4.octets()) {
                    d.write(b);
                }
                true
            }
            std::net::IpAddr::V6(v6) if family == libc::AF_INET6 && self.len >= 24 => {
                for (d, b) in self.buf[8..24].iter_mut().zip(v6.octets()) {
                    d.write(b);
                }
                true
            }
            _ => false,
        }
    }

    /// Pointer and length to hand the kernel (valid while `self` is).
    pub(crate) fn raw(&self) -> (*const sockaddr, socklen_t) {
        (self.buf.as_ptr().cast(), self.len as socklen_t)
    }
}

/// Decodes an INET address at `addr` of `len` bytes (`None` also when unreadable):
/// for addresses the kernel wrote into the program's buffer, and for library calls
/// (`getnameinfo`) whose pointer the engine must read without faulting.
pub(crate) fn decode_sockaddr(addr: *const sockaddr, len: socklen_t) -> Option<Dest> {
    UserAddr::copy_n(addr, (len as usize).min(uapi::SOCKADDR_MAX))
        .ok()?
        .dest()
}

/// Encodes `a` for a socket of family v6 (`true`: IPv4 addresses become
/// IPv4-mapped) or v4.
pub(crate) fn to_sockaddr(a: &SocketAddr, v6_socket: bool) -> (libc::sockaddr_storage, socklen_t) {
    // SAFETY: zero is a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
    let (ip6, port, scope) = match (a, v6_socket) {
        (SocketAddr::V4(v4), false) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*v4.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned.
            unsafe { std::ptr::write((&raw mut ss).cast(), sin) };
            return (ss, size_of::<libc::sockaddr_in>() as socklen_t);
        }
        (SocketAddr::V4(v4), true) => (v4.ip().to_ipv6_mapped(), v4.port(), 0),
        (SocketAddr::V6(v6), _) => (*v6.ip(), v6.port(), v6.scope_id()),
    };
    let sin6 = libc::sockaddr_in6 {
        sin6_family: libc::AF_INET6 as libc::sa_family_t,
        sin6_port: port.to_be(),
        sin6_flowinfo: 0,
        sin6_addr: libc::in6_addr {
            s6_addr: ip6.octets(),
        },
        sin6_scope_id: scope,
    };
    // SAFETY: sockaddr_storage is larger than sockaddr_in6 and suitably aligned.
    unsafe { std::ptr::write((&raw mut ss).cast(), sin6) };
    (ss, size_of::<libc::sockaddr_in6>() as socklen_t)
}

// ---------------------------------------------------------------------------------
// Socket options (all through the real functions: the shim's own calls must never
// re-enter its hooks)
// ---------------------------------------------------------------------------------

/// A socket option's value: plain data that the kernel reads or writes as bytes.
///
/// # Safety
/// Every bit pattern of `size_of::<Self>()` bytes is a valid value (all-zero too).
unsafe trait OptVal: Copy {}
// SAFETY: integers and byte arrays: every bit pattern is a value.
unsafe impl OptVal for c_int {}
// SAFETY: as above.
unsafe impl<const N: usize> OptVal for [u8; N] {}
// SAFETY: a C struct of two `in_addr` (u32) and an int: every bit pattern is a value.
unsafe impl OptVal for libc::ip_mreqn {}

/// `getsockopt(fd, level, name)` into a `T` (the kernel writes at most its size).
fn getsockopt<T: OptVal>(fd: c_int, level: c_int, name: c_int) -> Result<T, c_int> {
    // SAFETY: T is plain data (OptVal): all-zero is a valid value.
    let mut v: T = unsafe { zeroed() };
    let mut len = size_of::<T>() as socklen_t;
    // SAFETY: v and len are valid for writes of the sizes given.
    let r = unsafe { libc::getsockopt(fd, level, name, (&raw mut v).cast(), &mut len) };
    if r == 0 { Ok(v) } else { Err(errno()) }
}

/// `setsockopt(fd, level, name, v)`, through the real function.
fn setsockopt<T: OptVal>(fd: c_int, level: c_int, name: c_int, v: &T) -> Result<(), c_int> {
    setsockopt_raw(fd, level, name, as_bytes(v))
}

fn getsockopt_int(fd: c_int, level: c_int, name: c_int) -> Result<c_int, c_int> {
    getsockopt::<c_int>(fd, level, name)
}

fn setsockopt_raw(fd: c_int, level: c_int, name: c_int, val: &[u8]) -> Result<(), c_int> {
    // SAFETY: `val` is a valid slice of `val.len()` bytes; the real setsockopt only
    // reads it.
    let r =
        unsafe { real::setsockopt(fd, level, name, val.as_ptr().cast(), val.len() as socklen_t) };
    if r == 0 { Ok(()) } else { Err(errno()) }
}

fn setsockopt_int(fd: c_int, level: c_int, name: c_int, v: c_int) -> Result<(), c_int> {
    setsockopt(fd, level, name, &v)
}

/// Which of a socket's two sets of IP options a call is about: IPv4's (`IPPROTO_IP`,
/// which also govern IPv4-mapped traffic on an `AF_INET6` socket) or IPv6's
/// (`IPPROTO_IPV6`): the socket core's [`Path`] of a datagram.
pub(crate) use mifshim_socket_core::Path;

/// The [`Path`] a `v6: bool` of the older calls names.
fn path_of(v6: bool) -> Path {
    if v6 { Path::V6 } else { Path::V4 }
}

/// The option of `path`: `v4` (at `IPPROTO_IP`) or `v6` (at `IPPROTO_IPV6`).
fn option_on(path: Path, v4: c_int, v6: c_int) -> (c_int, c_int) {
    match path {
        Path::V4 => (libc::IPPROTO_IP, v4),
        Path::V6 => (libc::IPPROTO_IPV6, v6),
    }
}

/// What the kernel says about a socket the shim has not seen created.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Probed {
    /// `AF_INET` or `AF_INET6`; `None` for anything else (or not a socket).
    pub family: Option<AddrFamily>,
    pub sotype: c_int,
    pub protocol: c_int,
    pub bound_ifindex: c_int,
    /// The unicast interface the socket carries (`IP_UNICAST_IF`, or on an `AF_INET6`
    /// socket `IPV6_UNICAST_IF`, whichever is set), asked only of a bound socket.
    pub unicast_ifindex: u32,
}

/// A unicast interface option's value (the kernel keeps it in network byte order).
fn unicast_if(fd: c_int, level: c_int, name: c_int) -> u32 {
    getsockopt_int(fd, level, name).map_or(0, |v| u32::from_be(v as u32))
}

pub(crate) fn probe_socket(fd: c_int) -> Probed {
    let none = Probed {
        family: None,
        sotype: 0,
        protocol: 0,
        bound_ifindex: 0,
        unicast_ifindex: 0,
    };
    let family = match getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_DOMAIN) {
        Ok(libc::AF_INET) => AddrFamily::V4,
        Ok(libc::AF_INET6) => AddrFamily::V6,
        _ => return none,
    };
    let bound = bound_ifindex(fd);
    let unicast_ifindex = if bound == 0 {
        0
    } else {
        match unicast_if(fd, libc::IPPROTO_IP, libc::IP_UNICAST_IF) {
            0 if family == AddrFamily::V6 => {
                unicast_if(fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_IF)
            }
            v => v,
        }
    };
    Probed {
        family: Some(family),
        sotype: getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TYPE).unwrap_or(0),
        protocol: getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_PROTOCOL).unwrap_or(0),
        bound_ifindex: bound,
        unicast_ifindex,
    }
}

/// Whether `socket(…, ty, protocol)` makes an MPTCP socket (`IPPROTO_MPTCP`).
pub(crate) fn is_mptcp(ty: c_int, protocol: c_int) -> bool {
    ty & 0xf == libc::SOCK_STREAM && protocol == libc::IPPROTO_MPTCP
}

/// The interface a socket is bound to (0: none).
pub(crate) fn bound_ifindex(fd: c_int) -> c_int {
    getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_BINDTOIFINDEX).unwrap_or(0)
}

/// Binds a socket to an interface: `SO_BINDTOIFINDEX` (Linux ≥ 5.0, immune to
/// renames), falling back to `SO_BINDTODEVICE` by name on older kernels.
pub(crate) fn bind_to_interface(
    fd: c_int,
    index: u32,
    name: &config_schema::IfName,
) -> Result<(), c_int> {
    match setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_BINDTOIFINDEX, index as c_int) {
        Err(libc::ENOPROTOOPT) => {
            let n = name.as_c_bytes();
            let len = name.as_str().len() + 1;
            setsockopt_raw(fd, libc::SOL_SOCKET, libc::SO_BINDTODEVICE, &n[..len])
        }
        r => r,
    }
}

/// Sets the multicast egress interface of a socket (IPv4: `ip_mreqn` by index).
pub(crate) fn set_multicast_if(
    fd: c_int,
    sock_family: AddrFamily,
    index: u32,
) -> Result<(), c_int> {
    match sock_family {
        AddrFamily::V4 => {
            let m = libc::ip_mreqn {
                imr_multiaddr: libc::in_addr { s_addr: 0 },
                imr_address: libc::in_addr { s_addr: 0 },
                imr_ifindex: index as c_int,
            };
            setsockopt(fd, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &m)
        }
        AddrFamily::V6 => setsockopt_int(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_MULTICAST_IF,
            index as c_int,
        ),
    }
}

/// Sets a socket's unicast egress interface on `path` for datagrams that name no
/// interface themselves (`IP_UNICAST_IF` for IPv4 and IPv4-mapped destinations,
/// `IPV6_UNICAST_IF` for IPv6); index 0 clears it. Both take the index in network
/// byte order.
pub(crate) fn set_unicast_if_on(fd: c_int, path: Path, index: u32) -> Result<(), c_int> {
    let (level, name) = option_on(path, libc::IP_UNICAST_IF, libc::IPV6_UNICAST_IF);
    setsockopt_int(fd, level, name, (index as c_int).to_be())
}

/// [`set_unicast_if_on`] with the path as a `bool` (`v6`: [`Path::V6`]). The engine
/// calls the typed form; this one stays for the other OS's primitives, which mirror it.
#[allow(dead_code)]
pub(crate) fn set_unicast_if(fd: c_int, v6: bool, index: u32) -> Result<(), c_int> {
    set_unicast_if_on(fd, path_of(v6), index)
}

/// Sets `SO_MARK` (the kernel refuses it with `EPERM` without `CAP_NET_ADMIN`).
/// The socket's `SO_MARK` (0 when unmarked or unreadable).
pub(crate) fn mark(fd: c_int) -> u32 {
    getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_MARK).unwrap_or(0) as u32
}

/// Keeps an orphaned `FIN_WAIT2` of a device-bound IPv6 TCP socket a full socket
/// (`TCP_LINGER2`, `mifshim_socket_core::fin_wait2_hold`), so that the ACK of a FIN
/// coming after the program closed leaves by the socket's device rather than by a
/// time-wait socket's route (or leaves the program's value where that rule says so).
pub(crate) fn hold_fin_wait2(fd: c_int) -> Result<(), c_int> {
    let now = getsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_LINGER2)?;
    match mifshim_socket_core::fin_wait2_hold(now) {
        Some(secs) => setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_LINGER2, secs),
        None => Ok(()),
    }
}

/// Whether an `AF_INET6` socket is IPv6-only (`IPV6_V6ONLY`); unreadable counts as
/// IPv6-only (no IPv4-mapped path to serve).
pub(crate) fn v6only(fd: c_int) -> bool {
    getsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY) != Ok(0)
}

pub(crate) fn set_mark(fd: c_int, mark: u32) -> Result<(), c_int> {
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_MARK, mark as c_int)
}

/// The TOS byte (`IP_TOS`: IPv4 and IPv4-mapped traffic) or the traffic class
/// (`IPV6_TCLASS`) a socket carries on `path` (0 when it cannot be read).
pub(crate) fn tos_on(fd: c_int, path: Path) -> c_int {
    let (level, name) = option_on(path, libc::IP_TOS, libc::IPV6_TCLASS);
    getsockopt_int(fd, level, name).unwrap_or(0).max(0)
}

/// Sets the TOS byte or the traffic class on `path` (see [`tos_on`]).
pub(crate) fn set_tos_on(fd: c_int, path: Path, tos: c_int) -> Result<(), c_int> {
    let (level, name) = option_on(path, libc::IP_TOS, libc::IPV6_TCLASS);
    setsockopt_int(fd, level, name, tos)
}

/// [`tos_on`] with the path as a `bool` (`v6`: [`Path::V6`]), as `ops::set_options`
/// calls it.
pub(crate) fn tos(fd: c_int, v6: bool) -> c_int {
    tos_on(fd, path_of(v6))
}

/// [`set_tos_on`] with the path as a `bool`, as `ops::set_options` calls it.
pub(crate) fn set_tos(fd: c_int, v6: bool, tos: c_int) -> Result<(), c_int> {
    set_tos_on(fd, path_of(v6), tos)
}

/// Binds a socket to the source address `ip`, port 0 (IPv4-mapped on an `AF_INET6`
/// socket). `defer_port`: `IP_BIND_ADDRESS_NO_PORT` first, so that a TCP socket's
/// port is still chosen at `connect`.
pub(crate) fn bind_source(
    fd: c_int,
    ip: std::net::IpAddr,
    v6_socket: bool,
    defer_port: bool,
) -> Result<(), c_int> {
    if defer_port {
        let _ = setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT, 1);
    }
    let (ss, len) = to_sockaddr(&SocketAddr::new(ip, 0), v6_socket);
    // SAFETY: our encoding of the address, alive for the call; the real bind.
    let r = unsafe { real::bind(fd, (&raw const ss).cast(), len) };
    if r == 0 { Ok(()) } else { Err(errno()) }
}

/// Has the program chosen a multicast interface on this socket itself?
pub(crate) fn multicast_if_chosen(fd: c_int, sock_family: AddrFamily) -> bool {
    match sock_family {
        AddrFamily::V4 => {
            // The kernel returns the chosen address (an in_addr, or an ip_mreqn's
            // first field); 0.0.0.0 = not chosen.
            getsockopt::<[u8; 12]>(fd, libc::IPPROTO_IP, libc::IP_MULTICAST_IF)
                .is_ok_and(|v| v[..4] != [0, 0, 0, 0])
        }
        AddrFamily::V6 => {
            getsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF).unwrap_or(0) != 0
        }
    }
}

/// The local address a socket is bound to, if any.
pub(crate) fn local_addr(fd: c_int) -> Option<SocketAddr> {
    // SAFETY: sockaddr_storage is plain data; zero is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as socklen_t;
    // SAFETY: ss and len are valid for writes of the sizes given.
    let r = unsafe { libc::getsockname(fd, (&raw mut ss).cast(), &mut len) };
    if r != 0 {
        return None;
    }
    let n = (len as usize).min(size_of::<libc::sockaddr_storage>());
    uapi::decode_sockaddr(&as_bytes(&ss)[..n]).map(|d| d.addr)
}

/// `getpeername(2)`: the peer's address and its length (`None`: no peer).
fn peer(fd: c_int) -> Option<(libc::sockaddr_storage, usize)> {
    // SAFETY: sockaddr_storage is plain data; zero is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as socklen_t;
    // SAFETY: ss and len are valid for writes of the sizes given.
    let r = unsafe { libc::getpeername(fd, (&raw mut ss).cast(), &mut len) };
    (r == 0).then(|| (ss, (len as usize).min(size_of::<libc::sockaddr_storage>())))
}

/// Whether the socket has a peer (`getpeername` succeeds: connected).
pub(crate) fn has_peer(fd: c_int) -> bool {
    peer(fd).is_some()
}

/// The INET/INET6 address the socket is connected to (`None`: no peer, or another
/// family's).
pub(crate) fn peer_addr(fd: c_int) -> Option<SocketAddr> {
    let (ss, n) = peer(fd)?;
    uapi::decode_sockaddr(&as_bytes(&ss)[..n]).map(|d| d.addr)
}

fn as_bytes<T>(v: &T) -> &[u8] {
    // SAFETY: only used on plain C structs without padding-dependent meaning; the
    // bytes are handed to the kernel, which reads them as that struct.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }
}

// ---------------------------------------------------------------------------------
// What the program's own calls mean (the core books them: `ops::setsockopt_done`,
// `ops::setsockopt_rewrite`, `ops::send`); macOS has its own (`sys/macos/steer.rs`)
// ---------------------------------------------------------------------------------

/// Whether a send's `flags` ask for TCP Fast Open (`MSG_FASTOPEN`: an implicit connect).
#[inline]
pub(crate) fn is_fast_open(flags: c_int) -> bool {
    flags & libc::MSG_FASTOPEN != 0
}

/// Whether `setsockopt(level, name)` is the program binding the socket to a device
/// (or dropping that binding): `SO_BINDTODEVICE` (a name) or `SO_BINDTOIFINDEX` (an
/// index).
pub(crate) fn binds_device(level: c_int, name: c_int) -> bool {
    level == libc::SOL_SOCKET && (name == libc::SO_BINDTODEVICE || name == libc::SO_BINDTOIFINDEX)
}

/// Whether a `setsockopt` value drops the socket's device binding (socket-core's
/// rule, over Linux's option numbers).
pub(crate) fn unbinds_device(level: c_int, name: c_int, val: &[u8]) -> bool {
    mifshim_socket_core::unbinds_device(level, name, val)
}

/// The path whose unicast interface `setsockopt(level, name)` sets (`IP_UNICAST_IF`:
/// IPv4 and IPv4-mapped destinations; `IPV6_UNICAST_IF`: native IPv6 ones), if it is
/// one of those options.
pub(crate) fn unicast_if_option(level: c_int, name: c_int) -> Option<Path> {
    match (level, name) {
        (libc::IPPROTO_IP, libc::IP_UNICAST_IF) => Some(Path::V4),
        (libc::IPPROTO_IPV6, libc::IPV6_UNICAST_IF) => Some(Path::V6),
        _ => None,
    }
}

/// Whether `setsockopt(level, name)` chooses the socket's multicast interface
/// (`IP_MULTICAST_IF`, `IPV6_MULTICAST_IF`; the value's meaning is
/// [`MEMBERSHIP`]'s `multicast_if_chooses`).
pub(crate) fn multicast_if_option(level: c_int, name: c_int) -> bool {
    matches!(
        (level, name),
        (libc::IPPROTO_IP, libc::IP_MULTICAST_IF) | (libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF)
    )
}

// ---------------------------------------------------------------------------------
// Per-datagram interface choice: IP_PKTINFO / IPV6_PKTINFO control messages
// ---------------------------------------------------------------------------------

/// A stack buffer for the program's control messages plus ours, 8-byte aligned as
/// `cmsghdr` requires.
#[repr(C, align(8))]
struct ControlBuf([u8; uapi::CMSG_ROOM]);

impl ControlBuf {
    fn new() -> Self {
        ControlBuf([0; uapi::CMSG_ROOM])
    }
}

/// `sendto` rewritten as `sendmsg` with a PKTINFO control message. `to` is the
/// destination as copied from the program (or the shim's own encoding).
///
/// # Safety
/// `buf`/`len` are those the program passed to `sendto(2)` (only the kernel reads
/// them).
pub(crate) unsafe fn sendto_via(
    fd: c_int,
    buf: *const c_void,
    len: usize,
    flags: c_int,
    to: (*const sockaddr, socklen_t),
    p: Pktinfo,
) -> isize {
    let mut control = ControlBuf::new();
    let Ok(uapi::Built::Control(clen)) = uapi::build_control(&[], p, &mut control.0) else {
        // Cannot happen (ours alone always fits); fail rather than send unsteered.
        set_errno(libc::EMSGSIZE);
        return -1;
    };
    let mut iov = libc::iovec {
        iov_base: buf as *mut c_void,
        iov_len: len,
    };
    // SAFETY: a zeroed msghdr is valid.
    let mut mh: libc::msghdr = unsafe { zeroed() };
    mh.msg_name = to.0 as *mut c_void;
    mh.msg_namelen = to.1;
    mh.msg_iov = &mut iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control.0.as_mut_ptr().cast();
    mh.msg_controllen = clen;
    // SAFETY: mh points at the program's data buffer (valid per sendto's contract;
    // only the kernel reads it) and at our locals, which outlive the call.
    unsafe { real::sendmsg(fd, &mh, flags) }
}

/// Result of preparing a `sendmsg` with our control message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Prepared {
    /// Send the copy ([`MsgCopy::hdr`]): ours added, or the program's own choice of
    /// interface kept (its control data copied unchanged).
    Ready,
    /// The program's control data is too large to copy and extend.
    TooBig,
    /// Refuse the call with this errno, as the kernel would: the control data is
    /// malformed (`EINVAL`) or refused by length (`ENOBUFS`).
    Refused(c_int),
    /// The control data cannot be read: let the kernel answer ([`MsgCopy::answer`]).
    Unreadable,
}

/// A program's message read without faulting: its header, and its name copied.
/// The hooks hand the kernel [`MsgCopy::hdr`], which points at the copies (and at the
/// program's data, which only the kernel reads).
pub(crate) struct MsgCopy {
    mh: libc::msghdr,
    name: Option<UserAddr>,
    /// Our control data, when `control_len` is set.
    control: ControlBuf,
    control_len: Option<usize>,
    /// The program's control data as copied into `control` ([`MsgCopy::load_control`]),
    /// handed to the kernel unless ours is built (`control_len`).
    copied: Option<usize>,
    /// Replace the program's control pointer by [`uaccess::POISON`].
    poison_control: bool,
    /// The datagram takes the IPv4 send path (`udp_sendmsg`: an IPv4 or IPv4-mapped
    /// destination), which refuses `MSG_OOB` before it parses control messages.
    ipv4_path: bool,
}

/// A message the engine could not read: the kernel is asked instead, with the
/// unreadable pointer replaced by one it cannot read (see [`uaccess::POISON`]), and
/// answers in its own order (`EBADF`, `ENOTSOCK`, `EINVAL`, `EFAULT`) without sending.
pub(crate) enum BadMsg {
    /// The `msghdr` itself.
    Header,
    /// Its name (a copy of the header with the name poisoned).
    Name(libc::msghdr),
}

impl BadMsg {
    /// The kernel's answer for the program's call: -1 with its errno.
    pub(crate) fn answer(&self, fd: c_int, flags: c_int) -> isize {
        match self {
            // SAFETY: POISON is never readable: the kernel fails the call.
            BadMsg::Header => unsafe { real::sendmsg(fd, uaccess::poison(), flags) },
            BadMsg::Name(h) => {
                let mut h = *h;
                h.msg_name = uaccess::poison::<c_void>() as *mut c_void;
                // SAFETY: h is our copy; its name is unreadable, so the kernel fails
                // the call (the name is copied before anything is sent).
                unsafe { real::sendmsg(fd, &h, flags) }
            }
        }
    }
}

impl MsgCopy {
    /// Reads the program's header at `msg` and copies its name, with the kernel's
    /// checks (`__copy_msghdr`: a NULL name has length 0, a negative length is
    /// `EINVAL`, a longer one is clamped to `sockaddr_storage`).
    pub(crate) fn read(msg: *const libc::msghdr) -> Result<Self, BadMsg> {
        let mh = uaccess::read(msg).map_err(|_| BadMsg::Header)?;
        Self::from_header(mh)
    }

    /// As [`MsgCopy::read`] for a header already copied.
    pub(crate) fn from_header(mh: libc::msghdr) -> Result<Self, BadMsg> {
        let has_name = !mh.msg_name.is_null();
        let name = match uapi::msg_name_len(has_name, mh.msg_namelen) {
            Err(_) => return Err(BadMsg::Name(mh)),
            Ok(0) => None,
            Ok(n) => Some(UserAddr::copy_n(mh.msg_name.cast(), n).map_err(|_| BadMsg::Name(mh))?),
        };
        Ok(MsgCopy {
            mh,
            name,
            control: ControlBuf::new(),
            control_len: None,
            copied: None,
            poison_control: false,
            ipv4_path: false,
        })
    }

    /// The name, as copied (`None`: none, or of length 0).
    pub(crate) fn name(&self) -> Option<&UserAddr> {
        self.name.as_ref()
    }

    /// Replaces the destination by `to` (a redirected DNS server), encoded for a
    /// socket of family v6 or v4.
    pub(crate) fn set_dest(&mut self, to: &SocketAddr, v6: bool) {
        let (ss, len) = to_sockaddr(to, v6);
        self.name = Some(UserAddr::from_bytes(&as_bytes(&ss)[..len as usize]));
    }

    /// Copies the program's control data, once, so that what the engine decides on
    /// is what the kernel gets ([`MsgCopy::hdr`] points at the copy from then on):
    /// the bytes, or `Unknown` when they are too long to copy. Unreadable data (the
    /// kernel answers `EFAULT`) or a length the kernel refuses reads as none.
    pub(crate) fn load_control(&mut self) -> crate::ops::Ctl<'_> {
        use crate::ops::Ctl;
        if let Some(n) = self.copied {
            return Ctl::Read(&self.control.0[..n]);
        }
        let n = match uapi::control_len(self.mh.msg_controllen) {
            uapi::ControlLen::Copy(n) => n,
            uapi::ControlLen::TooBig => return Ctl::Unknown,
            uapi::ControlLen::Refused(_) => return Ctl::Read(&[]),
        };
        if n == 0 {
            return Ctl::Read(&[]);
        }
        if uaccess::copy_in(&mut self.control.0[..n], self.mh.msg_control.cast()).is_err() {
            self.poison_control = true;
            return Ctl::Read(&[]);
        }
        self.copied = Some(n);
        Ctl::Read(&self.control.0[..n])
    }

    /// Adds our PKTINFO to a copy of the program's control data (see
    /// [`uapi::build_control`]).
    pub(crate) fn prepare(&mut self, p: Pktinfo) -> Prepared {
        self.ipv4_path = !p.v6;
        let n = match uapi::control_len(self.mh.msg_controllen) {
            uapi::ControlLen::Copy(n) => n,
            uapi::ControlLen::TooBig => return Prepared::TooBig,
            uapi::ControlLen::Refused(e) => return Prepared::Refused(e),
        };
        let mut app = ControlBuf::new();
        if let Some(c) = self.copied {
            app.0[..c].copy_from_slice(&self.control.0[..c]);
        } else if self.poison_control
            || uaccess::copy_in(&mut app.0[..n], self.mh.msg_control.cast()).is_err()
        {
            self.poison_control = true;
            return Prepared::Unreadable;
        }
        let n = self.copied.unwrap_or(n);
        match uapi::build_control(&app.0[..n], p, &mut self.control.0) {
            Ok(uapi::Built::Control(len) | uapi::Built::Chosen(len)) => {
                self.control_len = Some(len);
                Prepared::Ready
            }
            Err(e) => Prepared::Refused(e),
        }
    }

    /// The header to hand the kernel: the program's, pointing at our copies. Valid
    /// while `self` is not moved.
    /// Sends the message without the program's name (a stream's, which the kernel
    /// ignores).
    pub(crate) fn forget_name(&mut self) {
        self.name = None;
    }

    pub(crate) fn hdr(&mut self) -> *const libc::msghdr {
        match &self.name {
            Some(a) => {
                let (p, l) = a.raw();
                self.mh.msg_name = p as *mut c_void;
                self.mh.msg_namelen = l;
            }
            None => {
                self.mh.msg_name = std::ptr::null_mut();
                self.mh.msg_namelen = 0;
            }
        }
        if let Some(len) = self.control_len.or(self.copied) {
            self.mh.msg_control = self.control.0.as_mut_ptr().cast();
            self.mh.msg_controllen = len;
        } else if self.poison_control {
            self.mh.msg_control = uaccess::poison::<c_void>() as *mut c_void;
        }
        &self.mh
    }

    /// The header as copied, pointing at the program's buffers (for `sendmmsg`,
    /// which hands the kernel an array of them).
    pub(crate) fn header(&mut self) -> libc::msghdr {
        // SAFETY: hdr() returns a pointer to self.mh.
        unsafe { *self.hdr() }
    }

    /// The kernel's answer to this message when the engine refuses it
    /// ([`Prepared::Refused`] or [`Prepared::Unreadable`]): the copy is handed to the
    /// kernel with its control data poisoned, so the kernel runs every check it
    /// makes before it reads the control data (fd, name, iovecs, lengths) and fails
    /// on the poisoned pointer if they pass; `refused` (the engine's errno for
    /// malformed control data, which the kernel would find after those checks) is
    /// the answer then. Nothing is sent. Returns -1 with errno set.
    pub(crate) fn answer(&mut self, fd: c_int, flags: c_int, refused: Option<c_int>) -> isize {
        self.control_len = None;
        self.copied = None;
        self.poison_control = true;
        if self.mh.msg_controllen == 0 {
            // Only when the caller asks for a refusal with no control data: the kernel
            // would not read any; answer ourselves.
            set_errno(refused.unwrap_or(libc::EFAULT));
            return -1;
        }
        // SAFETY: hdr() is our copy; its control pointer is unreadable and its length
        // non-zero, so the kernel fails the call before sending.
        let r = unsafe { real::sendmsg(fd, self.hdr(), flags) };
        if r >= 0 {
            // Cannot happen (the kernel must copy the control data); never report a
            // send that the engine refused as done.
            set_errno(libc::EFAULT);
            return -1;
        }
        let e = errno();
        match refused {
            // The poisoned control data was reached: the program's is malformed.
            Some(mine) if e == libc::EFAULT => {
                // udp_sendmsg (IPv4) refuses MSG_OOB before it parses control
                // messages (observed: EOPNOTSUPP); udpv6_sendmsg parses them first
                // (observed: EINVAL).
                set_errno(if self.ipv4_path && flags & libc::MSG_OOB != 0 {
                    libc::EOPNOTSUPP
                } else {
                    mine
                });
            }
            _ => set_errno(e),
        }
        -1
    }
}

// ---------------------------------------------------------------------------------
// Process facts, time, memory
// ---------------------------------------------------------------------------------

/// The interface the routing table sends `dest` through (`netlink::route_oif`).
pub(crate) fn route_oif(dest: std::net::IpAddr) -> Result<u32, c_int> {
    netlink::route_oif(dest)
}

/// Runs `f` with every signal blocked on this thread (the mask restored after, also
/// when `f` panics), so that no handler can run, and leave by a non-local exit, in the
/// middle of it.
pub(crate) fn with_signals_blocked<T>(f: impl FnOnce() -> T) -> T {
    /// Restores the mask and errno as they were before (also on a panic).
    struct Restore(Option<libc::sigset_t>, c_int);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(old) = &self.0 {
                // SAFETY: restoring the mask saved in with_signals_blocked.
                unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old, std::ptr::null_mut()) };
            }
            set_errno(self.1);
        }
    }
    // SAFETY: sigset_t is plain data; sigfillset initialises it.
    let mut all: libc::sigset_t = unsafe { zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { zeroed() };
    let saved = errno();
    // SAFETY: valid sigset_t pointers; pthread_sigmask changes this thread's mask only.
    let blocked = unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old) == 0
    };
    let _restore = Restore(blocked.then_some(old), saved);
    f()
}

/// Whether the calling thread runs on its alternate signal stack (a signal handler
/// installed with `SA_ONSTACK`).
pub(crate) fn on_alt_stack() -> bool {
    alt_stack_range().is_some()
}

pub(crate) fn getpid() -> i32 {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() }
}

/// Coarse monotonic clock in milliseconds (vDSO: no system call); 0 if it cannot be
/// read.
#[inline]
pub(crate) fn now_ms() -> u64 {
    mifshim_abi::coarse_now_ms(libc::clock_gettime).unwrap_or(0)
}

/// Writes all of `buf` to `fd` with `write(2)` (retrying EINTR and short writes),
/// keeping errno. A raw system call: the C library's `write` is a cancellation point,
/// and the log is written from inside hooks, where none may be met (`crate::entry::socket`).
pub(crate) fn write_all(fd: c_int, mut buf: &[u8]) -> bool {
    let saved = errno();
    let mut ok = true;
    let mut tries = 0;
    while !buf.is_empty() && tries < 8 {
        tries += 1;
        // SAFETY: buf is a valid slice.
        let n = unsafe { libc::syscall(libc::SYS_write, fd, buf.as_ptr(), buf.len()) };
        if n > 0 {
            buf = &buf[n as usize..];
        } else if n < 0 && errno() == libc::EINTR {
            continue;
        } else {
            ok = false;
            break;
        }
    }
    set_errno(saved);
    ok
}

/// Opens the log file for appending (close-on-exec: a child reopens it by name), never
/// blocking: `O_NONBLOCK` makes opening a FIFO without a reader fail with `ENXIO` at
/// once instead of waiting for one, and stays set, so that a line a full pipe cannot
/// take is dropped rather than stalling the program (regular files are unaffected);
/// `O_NOCTTY`: a terminal named there does not become the controlling one. A raw
/// system call, as in [`write_all`] (`open` is a cancellation point). `Err`: the errno.
pub(crate) fn open_log(path: &std::ffi::CStr) -> Result<c_int, c_int> {
    // SAFETY: path is NUL-terminated.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::O_WRONLY
                | libc::O_APPEND
                | libc::O_CREAT
                | libc::O_CLOEXEC
                | libc::O_NONBLOCK
                | libc::O_NOCTTY,
            0o644,
        )
    };
    if fd >= 0 {
        Ok(fd as c_int)
    } else {
        Err(errno())
    }
}

/// An anonymous zeroed mapping of `len` bytes (used for the fd table: no malloc on
/// paths that may run in signal handlers or after fork).
pub(crate) fn map_zeroed(len: usize) -> Option<*mut u8> {
    mifshim_abi::map_zeroed(libc::mmap, len)
}

/// # Safety
/// `p`/`len` came from `map_zeroed` and nothing refers to the mapping any more.
pub(crate) unsafe fn unmap(p: *mut u8, len: usize) {
    // SAFETY: per the function contract.
    unsafe { libc::munmap(p.cast(), len) };
}

/// The stack pointer a `longjmp` to `env` (glibc's `__jmp_buf_tag`) will restore.
/// glibc keeps it mangled (`PTR_MANGLE`): on x86-64 xored with the thread's pointer
/// guard (`%fs:0x30`) and rotated left by 17 bits, at word 6 of the buffer — the layout
/// its `setjmp` has used since 2005 (sanitizers read it the same way). Other
/// architectures: unknown (`None`).
pub(crate) fn jmp_target_sp(env: *const c_void) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        if env.is_null() || !uaccess::readable(env as usize, 8 * 8) {
            return None;
        }
        let guard: usize;
        // SAFETY: reads the pointer guard from this thread's TCB (glibc's tcbhead_t,
        // `pointer_guard` at offset 0x30 on x86-64); no memory is written.
        unsafe {
            core::arch::asm!("mov {}, qword ptr fs:[0x30]", out(reg) guard, options(nostack, readonly, preserves_flags));
        }
        // SAFETY: env's first 8 words are readable (checked above).
        let raw = unsafe { std::ptr::read_unaligned((env as *const usize).add(6)) };
        Some(raw.rotate_right(0x11) ^ guard)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = env;
        None
    }
}

/// The address range of the alternate signal stack the calling thread runs on, if it
/// runs on one.
pub(crate) fn alt_stack_range() -> Option<std::ops::Range<usize>> {
    // SAFETY: a zeroed stack_t is valid; sigaltstack only writes the old one.
    let mut ss: libc::stack_t = unsafe { zeroed() };
    // SAFETY: NULL new stack: a query only.
    let r = unsafe { libc::sigaltstack(std::ptr::null(), &mut ss) };
    (r == 0 && ss.ss_flags & libc::SS_ONSTACK != 0)
        .then(|| ss.ss_sp as usize..ss.ss_sp as usize + ss.ss_size)
}

/// The executable's path (`/proc/self/exe`).
pub(crate) fn exe_path() -> String {
    std::fs::read_link("/proc/self/exe")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The events file names glibc's codes, checked against the C library's numbers.
    #[test]
    fn glibc_eai_codes_have_their_netdb_names() {
        for (code, name) in [
            (libc::EAI_NONAME, "EAI_NONAME"),
            (libc::EAI_AGAIN, "EAI_AGAIN"),
            (libc::EAI_FAIL, "EAI_FAIL"),
            (libc::EAI_NODATA, "EAI_NODATA"),
            (libc::EAI_FAMILY, "EAI_FAMILY"),
            (libc::EAI_SOCKTYPE, "EAI_SOCKTYPE"),
            (libc::EAI_SERVICE, "EAI_SERVICE"),
            (crate::dns::EAI_ADDRFAMILY, "EAI_ADDRFAMILY"),
            (libc::EAI_MEMORY, "EAI_MEMORY"),
            (libc::EAI_SYSTEM, "EAI_SYSTEM"),
            (libc::EAI_OVERFLOW, "EAI_OVERFLOW"),
        ] {
            assert_eq!(eai_name(code), name, "{code}");
        }
        // macOS's positive numbers mean nothing here.
        assert_eq!(eai_name(8), "EAI_UNKNOWN");
    }
}
