//! The socket primitives the shared core asks `sys` for, under the Linux primitives'
//! names and signatures (`sys/linux/mod.rs`), executed the macOS way by the one table
//! in `steer` (`IP_BOUND_IF`/`IPV6_BOUND_IF` for the connect-time binding,
//! `IP_MULTICAST_IFINDEX`/`IPV6_MULTICAST_IF`, `IP_TOS`/`IPV6_TCLASS`; `ENOPROTOOPT`
//! for what macOS lacks: `IP_UNICAST_IF`, `SO_MARK`; no `MSG_FASTOPEN`), and what the
//! program's own calls mean there (`steer::binds_device`, …). Re-exported by `sys` on
//! macOS, so that `ops`'s calls (`sys::bind_to_interface`, `sys::set_unicast_if_on`,
//! …) resolve to these; the listener filter is `macos::filter` (none).
//!
//! Not run on a Mac. The engine is a `dlopen`ed image behind the stub, and dyld
//! interposes its references too, so every call of the hooked list made here
//! (`setsockopt`, `bind`, `getpeername`; `socket`, `close`, `sendmsg` in `routesock`,
//! `ifaddrs` and `sockopt`) goes through the C library's functions the stub handed
//! over (`sys::real`, installed from `mifshim_abi::Reals`), never by name: by name it
//! would re-enter the engine's own hooks. The calls outside the list (`getsockopt`,
//! `getsockname`) are called by name.

use crate::sys::real;
use std::net::{IpAddr, SocketAddr};

use config_schema::AddrFamily;
use libc::{c_int, c_void, socklen_t};
use mifshim_socket_core::Path;

use super::errno;
use super::sockopt::{from_sockaddr, sockaddr};
use crate::sys::macos::steer::{self, Counterpart, Primitive};

// What the program's own calls mean (`ops` books them over these), from `steer`'s
// table: no `MSG_FASTOPEN`, `IP_BOUND_IF`/`IPV6_BOUND_IF` for a device binding, no
// unicast-interface option, the multicast interface by address or index.
pub(crate) use crate::sys::macos::steer::{
    binds_device, is_fast_open, multicast_if_option, unbinds_device, unicast_if_option,
};
/// The decoded destination and the per-datagram interface `ops` plans with.
pub(crate) use crate::sys::macos::wire::Dest;
pub(crate) use mifshim_fastpath::Pktinfo;

/// The multicast membership options `ops` reads and points at the chosen interface:
/// socket-core's reader given XNU's numbers and layouts (`macos::membership`).
pub(crate) const MEMBERSHIP: &mifshim_socket_core::membership::Abi =
    &crate::sys::macos::membership::XNU;

/// What [`steer::counterpart`] refuses comes back as this errno.
pub(crate) const REFUSED: c_int = libc::ENOPROTOOPT;

fn set_int(fd: c_int, level: c_int, name: c_int, value: c_int) -> Result<(), c_int> {
    // SAFETY: `value` is a live c_int and the length passed is its size.
    let rc = unsafe {
        real::setsockopt(
            fd,
            level,
            name,
            (&value as *const c_int).cast::<c_void>(),
            size_of::<c_int>() as socklen_t,
        )
    };
    if rc == 0 { Ok(()) } else { Err(errno()) }
}

fn get_int(fd: c_int, level: c_int, name: c_int) -> Result<c_int, c_int> {
    let mut value: c_int = 0;
    let mut len = size_of::<c_int>() as socklen_t;
    // SAFETY: `value` and `len` are live and writable; `len` holds `value`'s size.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut value as *mut c_int).cast::<c_void>(),
            &mut len,
        )
    };
    if rc == 0 { Ok(value) } else { Err(errno()) }
}

/// Sets the counterpart of `p` on `fd`, or refuses with [`REFUSED`].
fn set(fd: c_int, p: Primitive, v6_socket: bool, value: c_int) -> Result<(), c_int> {
    match steer::counterpart(p, v6_socket) {
        Counterpart::Opt { level, name } => set_int(fd, level, name, value),
        Counterpart::Cmsg { .. } | Counterpart::Refused(_) => Err(REFUSED),
    }
}

/// Reads the counterpart of `p` on `fd`.
fn get(fd: c_int, p: Primitive, v6_socket: bool) -> Result<c_int, c_int> {
    match steer::counterpart(p, v6_socket) {
        Counterpart::Opt { level, name } => get_int(fd, level, name),
        Counterpart::Cmsg { .. } | Counterpart::Refused(_) => Err(REFUSED),
    }
}

/// The socket's family from its own address (macOS has no `SO_DOMAIN`).
fn family(fd: c_int) -> Option<AddrFamily> {
    // SAFETY: sockaddr_storage is plain data; all-zero is valid.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as socklen_t;
    // SAFETY: `ss` and `len` are live and writable for the sizes given.
    let rc = unsafe { libc::getsockname(fd, (&raw mut ss).cast(), &mut len) };
    if rc != 0 {
        return None;
    }
    match c_int::from(ss.ss_family) {
        libc::AF_INET => Some(AddrFamily::V4),
        libc::AF_INET6 => Some(AddrFamily::V6),
        _ => None,
    }
}

fn is_v6(fd: c_int) -> bool {
    family(fd) == Some(AddrFamily::V6)
}

/// What the kernel says about a socket the shim has not seen created (the Linux
/// `Probed`'s fields).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Probed {
    pub family: Option<AddrFamily>,
    pub sotype: c_int,
    pub protocol: c_int,
    pub bound_ifindex: c_int,
    /// Always 0: macOS has no separate unicast interface (`steer`).
    pub unicast_ifindex: u32,
}

pub(crate) fn probe_socket(fd: c_int) -> Probed {
    let Some(fam) = family(fd) else {
        return Probed {
            family: None,
            sotype: 0,
            protocol: 0,
            bound_ifindex: 0,
            unicast_ifindex: 0,
        };
    };
    let sotype = get_int(fd, libc::SOL_SOCKET, libc::SO_TYPE).unwrap_or(0);
    Probed {
        family: Some(fam),
        sotype,
        protocol: steer::protocol_of(sotype),
        bound_ifindex: get(fd, Primitive::BindInterface, fam == AddrFamily::V6).unwrap_or(0),
        unicast_ifindex: 0,
    }
}

/// The interface the socket is bound to (`IP_BOUND_IF`/`IPV6_BOUND_IF`; 0: none).
pub(crate) fn bound_ifindex(fd: c_int) -> c_int {
    get(fd, Primitive::BindInterface, is_v6(fd)).unwrap_or(0)
}

/// Binds the socket to interface `index` (the connect-time binding; not a listener's
/// confinement on macOS, `macos::filter`): `IP_BOUND_IF` or `IPV6_BOUND_IF` by the
/// socket's family. The name is unused: macOS binds by index only.
pub(crate) fn bind_to_interface(
    fd: c_int,
    index: u32,
    _name: &config_schema::IfName,
) -> Result<(), c_int> {
    set(fd, Primitive::BindInterface, is_v6(fd), index as c_int)
}

/// Sets the multicast egress interface by index.
pub(crate) fn set_multicast_if(
    fd: c_int,
    sock_family: AddrFamily,
    index: u32,
) -> Result<(), c_int> {
    set(
        fd,
        Primitive::MulticastIf,
        sock_family == AddrFamily::V6,
        index as c_int,
    )
}

/// Has the program chosen a multicast interface on this socket itself? (A program
/// that set it by address, `IP_MULTICAST_IF`, is read back by index too: XNU keeps
/// one `imo_multicast_ifp`.)
pub(crate) fn multicast_if_chosen(fd: c_int, sock_family: AddrFamily) -> bool {
    get(fd, Primitive::MulticastIf, sock_family == AddrFamily::V6).unwrap_or(0) != 0
}

/// Refused (`ENOPROTOOPT`): the core falls back to a PKTINFO per datagram
/// (`steer::Refusal::UnicastNeedsPktinfo`).
pub(crate) fn set_unicast_if_on(fd: c_int, path: Path, index: u32) -> Result<(), c_int> {
    set(fd, Primitive::UnicastIf(path), is_v6(fd), index as c_int)
}

/// 0: macOS has no `SO_MARK`.
pub(crate) fn mark(_fd: c_int) -> u32 {
    0
}

/// Refused: macOS has no `SO_MARK` (`mifrun` warns at launch).
pub(crate) fn set_mark(_fd: c_int, _mark: u32) -> Result<(), c_int> {
    Err(REFUSED)
}

/// Never: macOS's MPTCP is `AF_MULTIPATH` and `connectx`, not a protocol number of
/// an INET socket.
pub(crate) fn is_mptcp(_ty: c_int, _protocol: c_int) -> bool {
    false
}

/// Nothing to hold: XNU keeps a closed connection's `TIME_WAIT` in its own pcb, which
/// keeps the socket's bound interface (`inp_boundifp`, read by `tcp_respond`), rather
/// than answering from a control socket as Linux's IPv6 does (read in XNU's source,
/// not run).
pub(crate) fn hold_fin_wait2(_fd: c_int) -> Result<(), c_int> {
    Ok(())
}

/// Whether an `AF_INET6` socket is IPv6-only; unreadable counts as IPv6-only.
pub(crate) fn v6only(fd: c_int) -> bool {
    get(fd, Primitive::V6Only, true) != Ok(0)
}

fn path_of(v6: bool) -> Path {
    if v6 { Path::V6 } else { Path::V4 }
}

/// The TOS byte or traffic class on `path` (0 when unreadable).
pub(crate) fn tos_on(fd: c_int, path: Path) -> c_int {
    get(fd, Primitive::Tos(path), path == Path::V6)
        .unwrap_or(0)
        .max(0)
}

pub(crate) fn set_tos_on(fd: c_int, path: Path, tos: c_int) -> Result<(), c_int> {
    set(fd, Primitive::Tos(path), path == Path::V6, tos)
}

pub(crate) fn tos(fd: c_int, v6: bool) -> c_int {
    tos_on(fd, path_of(v6))
}

pub(crate) fn set_tos(fd: c_int, v6: bool, tos: c_int) -> Result<(), c_int> {
    set_tos_on(fd, path_of(v6), tos)
}

/// Binds the socket to the source address `ip`, port 0 (IPv4-mapped on an
/// `AF_INET6` socket). `defer_port` has no macOS counterpart
/// (`steer::Refusal::NoDeferredPort`): the port is chosen here.
pub(crate) fn bind_source(
    fd: c_int,
    ip: IpAddr,
    v6_socket: bool,
    _defer_port: bool,
) -> Result<(), c_int> {
    let ip = match ip {
        IpAddr::V4(v4) if v6_socket => IpAddr::V6(v4.to_ipv6_mapped()),
        ip => ip,
    };
    let (ss, len) = sockaddr(&SocketAddr::new(ip, 0));
    // SAFETY: our encoding of the address (`wire`), alive for the call.
    let r = unsafe { real::bind(fd, (&raw const ss).cast(), len) };
    if r == 0 { Ok(()) } else { Err(errno()) }
}

/// The local address a socket is bound to, if any.
pub(crate) fn local_addr(fd: c_int) -> Option<SocketAddr> {
    // SAFETY: sockaddr_storage is plain data; all-zero is valid.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as socklen_t;
    // SAFETY: `ss` and `len` are live and writable for the sizes given.
    let r = unsafe { libc::getsockname(fd, (&raw mut ss).cast(), &mut len) };
    if r != 0 {
        return None;
    }
    // SAFETY: the kernel wrote a sockaddr of `ss_len` bytes (≤ its storage) into `ss`.
    unsafe { from_sockaddr((&raw const ss).cast()) }
}

/// Whether the socket has a peer (`getpeername` succeeds: connected).
pub(crate) fn has_peer(fd: c_int) -> bool {
    // SAFETY: sockaddr_storage is plain data; all-zero is valid.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as socklen_t;
    // SAFETY: `ss` and `len` are live and writable for the sizes given.
    unsafe { real::getpeername(fd, (&raw mut ss).cast(), &mut len) == 0 }
}

/// The socket's peer, if connected.
pub(crate) fn peer_addr(fd: c_int) -> Option<SocketAddr> {
    // SAFETY: sockaddr_storage is plain data; all-zero is valid.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as socklen_t;
    // SAFETY: `ss` and `len` are live and writable for the sizes given.
    if unsafe { real::getpeername(fd, (&raw mut ss).cast(), &mut len) } != 0 {
        return None;
    }
    // SAFETY: the kernel wrote a sockaddr of `ss_len` bytes (≤ its storage) into `ss`.
    unsafe { from_sockaddr((&raw const ss).cast()) }
}

/// The route's interface for `dest` (`RTM_GET` on a routing socket opened for the
/// query: `routesock::route_oif`).
pub(crate) fn route_oif(dest: IpAddr) -> Result<u32, c_int> {
    super::routesock::route_oif(dest)
}

// The numbers `steer` writes by hand are the SDK's (checked whenever this is
// compiled, i.e. for the Apple targets).
const _: () = {
    assert!(steer::IP_TOS == libc::IP_TOS);
    assert!(steer::IP_BOUND_IF == libc::IP_BOUND_IF);
    assert!(steer::IP_MULTICAST_IFINDEX == super::sockopt::IP_MULTICAST_IFINDEX);
    assert!(steer::IPV6_MULTICAST_IF == libc::IPV6_MULTICAST_IF);
    assert!(steer::IPV6_V6ONLY == libc::IPV6_V6ONLY);
    assert!(steer::IPV6_TCLASS == libc::IPV6_TCLASS);
    assert!(steer::IPV6_BOUND_IF == libc::IPV6_BOUND_IF);
    assert!(steer::IP_MULTICAST_IF == libc::IP_MULTICAST_IF);
    assert!(steer::SOCK_STREAM == libc::SOCK_STREAM);
    assert!(steer::SOCK_DGRAM == libc::SOCK_DGRAM);
};

// The membership table's numbers and the layouts it reads, against the SDK's.
const _: () = {
    use crate::sys::macos::membership as m;
    use std::mem::offset_of;
    assert!(m::IP_ADD_MEMBERSHIP == libc::IP_ADD_MEMBERSHIP);
    assert!(m::IP_DROP_MEMBERSHIP == libc::IP_DROP_MEMBERSHIP);
    assert!(m::IP_ADD_SOURCE_MEMBERSHIP == libc::IP_ADD_SOURCE_MEMBERSHIP);
    assert!(m::IP_DROP_SOURCE_MEMBERSHIP == libc::IP_DROP_SOURCE_MEMBERSHIP);
    assert!(m::MCAST_JOIN_GROUP == libc::MCAST_JOIN_GROUP);
    assert!(m::MCAST_LEAVE_GROUP == libc::MCAST_LEAVE_GROUP);
    assert!(m::MCAST_JOIN_SOURCE_GROUP == libc::MCAST_JOIN_SOURCE_GROUP);
    assert!(m::MCAST_LEAVE_SOURCE_GROUP == libc::MCAST_LEAVE_SOURCE_GROUP);
    assert!(m::IPV6_JOIN_GROUP == libc::IPV6_JOIN_GROUP);
    assert!(m::IPV6_LEAVE_GROUP == libc::IPV6_LEAVE_GROUP);
    assert!(size_of::<libc::ip_mreq>() == 8);
    assert!(offset_of!(libc::ip_mreq, imr_interface) == 4);
    assert!(size_of::<libc::ip_mreqn>() == 12);
    assert!(offset_of!(libc::ip_mreqn, imr_ifindex) == 8);
    assert!(size_of::<libc::ip_mreq_source>() == 12);
    assert!(offset_of!(libc::ip_mreq_source, imr_interface) == m::MREQ_SOURCE_INTERFACE_AT);
    assert!(size_of::<libc::ipv6_mreq>() == 20);
    assert!(offset_of!(libc::ipv6_mreq, ipv6mr_interface) == 16);
    assert!(offset_of!(libc::group_req, gr_group) == m::GROUP_REQ_GROUP_AT);
    assert!(size_of::<libc::group_req>() == 132);
    assert!(size_of::<libc::group_source_req>() == 260);
    assert!(size_of::<libc::group_source_req>() <= mifshim_socket_core::membership::MAX_VALUE);
};
