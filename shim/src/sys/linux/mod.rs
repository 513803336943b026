//! Linux: `LD_PRELOAD` interposition. Every `unsafe` block of the shim lives below this
//! module and carries a `SAFETY:` comment.

pub(crate) mod filter;
mod hooks;
pub(crate) mod net;
mod netdb;
pub(crate) mod netlink;
pub(crate) mod real;

use config_schema::AddrFamily;
use libc::{c_char, c_int, c_void, sockaddr, socklen_t};
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// One real C function, as the preloaded stub found it.
#[repr(C)]
pub struct RealFn {
    /// NUL-terminated C name; NULL ends the table.
    pub name: *const c_char,
    pub ptr: *mut c_void,
}

/// ## Entry point
/// Called once by the preloaded stub (`preload/`), right after it `dlopen`s this
/// library and before it forwards any hook: installs the real C functions (a table of
/// [`RealFn`] ended by a NULL name) and loads the environment and the policy.
/// `argv0` is the program's `argv[0]` as the stub's constructor saw it (may be NULL).
/// Returns 0.
///
/// # Safety
/// `table` points to a NULL-terminated array of valid entries; `argv0` is NULL or a
/// NUL-terminated string; both stay valid for the call.
#[cfg_attr(not(test), unsafe(export_name = "mifshim_engine_init"))]
pub unsafe extern "C" fn engine_init(table: *const RealFn, argv0: *const c_char) -> c_int {
    let mut entry = table;
    for _ in 0..256 {
        if entry.is_null() {
            break;
        }
        // SAFETY: the caller guarantees a NULL-terminated array of valid entries.
        let e = unsafe { &*entry };
        if e.name.is_null() {
            break;
        }
        // SAFETY: e.name is a NUL-terminated C string (caller's contract).
        let name = unsafe { std::ffi::CStr::from_ptr(e.name) }.to_bytes();
        real::install(name, e.ptr);
        // SAFETY: still within the caller's array (not yet at its NULL end).
        entry = unsafe { entry.add(1) };
    }
    let argv0 = (!argv0.is_null()).then(|| {
        // SAFETY: argv0 is a NUL-terminated string (caller's contract).
        unsafe { std::ffi::CStr::from_ptr(argv0) }
            .to_string_lossy()
            .into_owned()
    });
    hooks::init_windows();
    crate::state::init(argv0);
    0
}

// ---------------------------------------------------------------------------------
// errno
// ---------------------------------------------------------------------------------

pub(crate) fn errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno slot, valid for the
    // thread's lifetime.
    unsafe { *libc::__errno_location() }
}

pub(crate) fn set_errno(e: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = e }
}

pub(crate) const ENETUNREACH: c_int = libc::ENETUNREACH;
pub(crate) const EACCES: c_int = libc::EACCES;
pub(crate) const ENXIO: c_int = libc::ENXIO;

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
        _ => "errno",
    }
}

// ---------------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------------

/// Length of a `sockaddr_in6` without `sin6_scope_id` (RFC 2133).
const SIN6_LEN_RFC2133: usize = 24;

/// A decoded INET socket address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dest {
    pub addr: SocketAddr,
    pub scope_id: u32,
}

/// An `AF_UNSPEC` address the size of a `sockaddr_in`, read as `AF_INET`: what the
/// kernel does with the destination of a send on an IPv4 socket (`udp_sendmsg`,
/// `raw_sendmsg`: old programs leave `sin_family` zero). Only for sends, and only on
/// `AF_INET` sockets (on `connect` `AF_UNSPEC` means "disconnect").
///
/// # Safety
/// `addr` is NULL or points to `len` readable bytes.
pub(crate) unsafe fn decode_unspec_as_inet(addr: *const sockaddr, len: socklen_t) -> Option<Dest> {
    if addr.is_null() || (len as usize) < size_of::<libc::sockaddr_in>() {
        return None;
    }
    // SAFETY: the caller guarantees len >= sizeof(sockaddr_in) readable bytes.
    let mut sin = unsafe { std::ptr::read_unaligned(addr as *const libc::sockaddr_in) };
    if sin.sin_family != libc::AF_UNSPEC as libc::sa_family_t {
        return None;
    }
    sin.sin_family = libc::AF_INET as libc::sa_family_t;
    // SAFETY: our own sockaddr_in, alive for the call.
    unsafe {
        decode_sockaddr(
            (&raw const sin).cast(),
            size_of::<libc::sockaddr_in>() as socklen_t,
        )
    }
}

/// Decodes an `AF_INET`/`AF_INET6` address; anything else (NULL, `AF_UNSPEC`,
/// `AF_UNIX`, short lengths) is `None`.
///
/// # Safety
/// `addr` is NULL or points to at least `len` readable bytes.
pub(crate) unsafe fn decode_sockaddr(addr: *const sockaddr, len: socklen_t) -> Option<Dest> {
    if addr.is_null() || (len as usize) < size_of::<libc::sa_family_t>() {
        return None;
    }
    // SAFETY: the caller guarantees `len` readable bytes, checked to cover the
    // family field; read_unaligned because C callers may pass any alignment.
    let family = unsafe { std::ptr::read_unaligned(addr as *const libc::sa_family_t) } as c_int;
    match family {
        libc::AF_INET if len as usize >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: length checked above.
            let sin = unsafe { std::ptr::read_unaligned(addr as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(Dest {
                addr: SocketAddr::new(IpAddr::V4(ip), u16::from_be(sin.sin_port)),
                scope_id: 0,
            })
        }
        // The kernel also takes the 24-byte RFC 2133 layout without sin6_scope_id
        // (SIN6_LEN_RFC2133), so must we.
        libc::AF_INET6 if len as usize >= SIN6_LEN_RFC2133 => {
            let b = addr as *const u8;
            let mut port = [0u8; 2];
            let mut ip = [0u8; 16];
            let mut scope = [0u8; 4];
            // SAFETY: len >= 24 bytes are readable: sin6_port at 2..4, sin6_addr at 8..24;
            // sin6_scope_id at 24..28 only when len covers it.
            unsafe {
                std::ptr::copy_nonoverlapping(b.add(2), port.as_mut_ptr(), 2);
                std::ptr::copy_nonoverlapping(b.add(8), ip.as_mut_ptr(), 16);
                if len as usize >= size_of::<libc::sockaddr_in6>() {
                    std::ptr::copy_nonoverlapping(b.add(24), scope.as_mut_ptr(), 4);
                }
            }
            Some(Dest {
                addr: SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), u16::from_be_bytes(port)),
                scope_id: u32::from_ne_bytes(scope),
            })
        }
        _ => None,
    }
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

fn getsockopt_int(fd: c_int, level: c_int, name: c_int) -> Result<c_int, c_int> {
    let mut v: c_int = 0;
    let mut len = size_of::<c_int>() as socklen_t;
    // SAFETY: v and len are valid for writes of the sizes given.
    let r = unsafe { libc::getsockopt(fd, level, name, (&raw mut v).cast(), &mut len) };
    if r == 0 { Ok(v) } else { Err(errno()) }
}

fn setsockopt_raw(fd: c_int, level: c_int, name: c_int, val: &[u8]) -> Result<(), c_int> {
    // SAFETY: `val` is a valid slice of `val.len()` bytes; the real setsockopt only
    // reads it.
    let r =
        unsafe { real::setsockopt(fd, level, name, val.as_ptr().cast(), val.len() as socklen_t) };
    if r == 0 { Ok(()) } else { Err(errno()) }
}

fn setsockopt_int(fd: c_int, level: c_int, name: c_int, v: c_int) -> Result<(), c_int> {
    setsockopt_raw(fd, level, name, &v.to_ne_bytes())
}

/// What the kernel says about a socket the shim has not seen created.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Probed {
    /// `AF_INET` or `AF_INET6`; `None` for anything else (or not a socket).
    pub family: Option<AddrFamily>,
    pub sotype: c_int,
    pub protocol: c_int,
    pub bound_ifindex: c_int,
}

pub(crate) fn probe_socket(fd: c_int) -> Probed {
    let none = Probed {
        family: None,
        sotype: 0,
        protocol: 0,
        bound_ifindex: 0,
    };
    let family = match getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_DOMAIN) {
        Ok(libc::AF_INET) => AddrFamily::V4,
        Ok(libc::AF_INET6) => AddrFamily::V6,
        _ => return none,
    };
    Probed {
        family: Some(family),
        sotype: getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TYPE).unwrap_or(0),
        protocol: getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_PROTOCOL).unwrap_or(0),
        bound_ifindex: bound_ifindex(fd),
    }
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
            setsockopt_raw(fd, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, as_bytes(&m))
        }
        AddrFamily::V6 => setsockopt_int(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_MULTICAST_IF,
            index as c_int,
        ),
    }
}

/// Sets a socket's unicast egress interface for datagrams that name no interface
/// themselves (`IP_UNICAST_IF` for IPv4 and IPv4-mapped destinations,
/// `IPV6_UNICAST_IF` for IPv6); index 0 clears it. Both take the index in network
/// byte order.
pub(crate) fn set_unicast_if(fd: c_int, v6: bool, index: u32) -> Result<(), c_int> {
    let v = (index as c_int).to_be();
    if v6 {
        setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_IF, v)
    } else {
        setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_UNICAST_IF, v)
    }
}

/// Has the program chosen a multicast interface on this socket itself?
pub(crate) fn multicast_if_chosen(fd: c_int, sock_family: AddrFamily) -> bool {
    match sock_family {
        AddrFamily::V4 => {
            let mut v = [0u8; 12];
            let mut len = v.len() as socklen_t;
            // SAFETY: v and len are valid for writes of the sizes given.
            let r = unsafe {
                libc::getsockopt(
                    fd,
                    libc::IPPROTO_IP,
                    libc::IP_MULTICAST_IF,
                    v.as_mut_ptr().cast(),
                    &mut len,
                )
            };
            // The kernel returns the chosen address (in_addr); 0.0.0.0 = not chosen.
            r == 0 && v[..4] != [0, 0, 0, 0]
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
    // SAFETY: the kernel wrote `len` bytes into ss.
    unsafe { decode_sockaddr((&raw const ss).cast(), len) }.map(|d| d.addr)
}

fn as_bytes<T>(v: &T) -> &[u8] {
    // SAFETY: only used on plain C structs without padding-dependent meaning; the
    // bytes are handed to the kernel, which reads them as that struct.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }
}

// ---------------------------------------------------------------------------------
// Per-datagram interface choice: IP_PKTINFO / IPV6_PKTINFO control messages
// ---------------------------------------------------------------------------------

/// How a datagram must be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pktinfo {
    pub ifindex: u32,
    /// Use `IPV6_PKTINFO` (native IPv6 destination on an `AF_INET6` socket) rather
    /// than `IP_PKTINFO` (IPv4, also accepted for IPv4-mapped destinations on an
    /// `AF_INET6` socket).
    pub v6: bool,
}

/// Room for the program's control messages plus ours (QUIC stacks use a few dozen
/// bytes: UDP_SEGMENT, ECN, timestamps).
const CMSG_ROOM: usize = 256;

fn cmsg_len(payload: usize) -> usize {
    // SAFETY: CMSG_LEN is a pure size computation.
    unsafe { libc::CMSG_LEN(payload as u32) as usize }
}

/// A stack buffer for the program's control messages plus ours, 8-byte aligned as
/// `cmsghdr` requires. Left uninitialised: only the bytes handed to the kernel
/// (`msg_controllen`) are ever written and read, so a datagram does not pay for
/// clearing the whole buffer.
#[repr(C, align(8))]
struct ControlBuf(std::mem::MaybeUninit<[u8; CMSG_ROOM]>);

impl ControlBuf {
    fn new() -> Self {
        ControlBuf(std::mem::MaybeUninit::uninit())
    }

    fn ptr(&mut self) -> *mut u8 {
        self.0.as_mut_ptr().cast()
    }
}

/// Copies the program's control messages into `buf` and makes the datagram leave by
/// `p.ifindex`: an existing `IP(V6)_PKTINFO` with interface 0 gets the index, one
/// with a non-zero index is the program's own choice (returns `Ok(None)`: send as
/// is), otherwise a new one is appended. `Err` when the program's control data does
/// not fit.
fn build_control(
    buf: &mut ControlBuf,
    app_control: *const c_void,
    app_len: usize,
    p: Pktinfo,
) -> Result<Option<usize>, ()> {
    let add = if p.v6 {
        size_of::<libc::in6_pktinfo>()
    } else {
        size_of::<libc::in_pktinfo>()
    };
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(add as u32) } as usize;
    if app_len + space > CMSG_ROOM {
        return Err(());
    }
    if app_len > 0 {
        // SAFETY: the program passed `app_len` readable bytes of control data (its
        // msghdr contract); buf has room for them (checked above).
        unsafe { std::ptr::copy_nonoverlapping(app_control.cast::<u8>(), buf.ptr(), app_len) };
    }
    // Walk the copied control messages looking for a PKTINFO of ours to patch.
    // SAFETY: a zeroed msghdr is valid; we point it at our own buffer so the CMSG_*
    // macros walk memory we own, bounded by app_len.
    let mut mh: libc::msghdr = unsafe { zeroed() };
    mh.msg_control = buf.ptr().cast();
    mh.msg_controllen = app_len;
    // SAFETY: mh describes our buffer; CMSG_FIRSTHDR/NXTHDR stay within msg_controllen.
    let mut c = unsafe { libc::CMSG_FIRSTHDR(&mh) };
    // A PKTINFO of the family this datagram needs, with interface 0: patched in place.
    let mut patch: Option<*mut u8> = None;
    while !c.is_null() {
        // SAFETY: c points inside our buffer at a header the macros validated.
        let (level, ty, len) = unsafe { ((*c).cmsg_level, (*c).cmsg_type, (*c).cmsg_len) };
        // A message claiming more bytes than the program gave is not read at all.
        let within = (c as usize - buf.ptr() as usize).saturating_add(len) <= app_len;
        // SAFETY: c is a valid header inside our buffer (see above).
        let data = unsafe { libc::CMSG_DATA(c) };
        if within
            && level == libc::IPPROTO_IP
            && ty == libc::IP_PKTINFO
            && len >= cmsg_len(size_of::<libc::in_pktinfo>())
        {
            // SAFETY: the checks above cover an in_pktinfo at data, inside app_len.
            let pi = unsafe { std::ptr::read_unaligned(data as *const libc::in_pktinfo) };
            if pi.ipi_ifindex != 0 {
                return Ok(None); // the program chose the interface itself
            }
            if !p.v6 {
                patch = Some(data);
            }
        }
        if within
            && level == libc::IPPROTO_IPV6
            && ty == libc::IPV6_PKTINFO
            && len >= cmsg_len(size_of::<libc::in6_pktinfo>())
        {
            // SAFETY: the checks above cover an in6_pktinfo at data, inside app_len.
            let pi = unsafe { std::ptr::read_unaligned(data as *const libc::in6_pktinfo) };
            if pi.ipi6_ifindex != 0 {
                return Ok(None); // the program chose the interface itself
            }
            if p.v6 {
                patch = Some(data);
            }
        }
        // SAFETY: as for CMSG_FIRSTHDR.
        c = unsafe { libc::CMSG_NXTHDR(&mh, c) };
    }
    if let Some(data) = patch {
        // SAFETY: data points at a PKTINFO of the needed family inside app_len (checked
        // when it was found); only its interface field changes.
        unsafe {
            if p.v6 {
                let mut pi = std::ptr::read_unaligned(data as *const libc::in6_pktinfo);
                pi.ipi6_ifindex = p.ifindex;
                std::ptr::write_unaligned(data as *mut libc::in6_pktinfo, pi);
            } else {
                let mut pi = std::ptr::read_unaligned(data as *const libc::in_pktinfo);
                pi.ipi_ifindex = p.ifindex as c_int;
                std::ptr::write_unaligned(data as *mut libc::in_pktinfo, pi);
            }
        }
        return Ok(Some(app_len));
    }
    // Append ours at the aligned end of the program's messages.
    // SAFETY: pure size computation on the program's length, aligned as CMSG_SPACE.
    let start = (app_len + 7) & !7;
    if start + space > CMSG_ROOM {
        return Err(());
    }
    // SAFETY: start + space <= CMSG_ROOM, and start is 8-aligned inside an 8-aligned
    // buffer, so a cmsghdr fits there.
    unsafe {
        let c = buf.ptr().add(start).cast::<libc::cmsghdr>();
        std::ptr::write_bytes(c.cast::<u8>(), 0, space);
        (*c).cmsg_len = libc::CMSG_LEN(add as u32) as usize;
        let data = libc::CMSG_DATA(c);
        if p.v6 {
            (*c).cmsg_level = libc::IPPROTO_IPV6;
            (*c).cmsg_type = libc::IPV6_PKTINFO;
            let pi = libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr { s6_addr: [0; 16] },
                ipi6_ifindex: p.ifindex,
            };
            std::ptr::write_unaligned(data as *mut libc::in6_pktinfo, pi);
        } else {
            (*c).cmsg_level = libc::IPPROTO_IP;
            (*c).cmsg_type = libc::IP_PKTINFO;
            let pi = libc::in_pktinfo {
                ipi_ifindex: p.ifindex as c_int,
                ipi_spec_dst: libc::in_addr { s_addr: 0 },
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            std::ptr::write_unaligned(data as *mut libc::in_pktinfo, pi);
        }
    }
    Ok(Some(start + space))
}

/// `sendto` rewritten as `sendmsg` with a PKTINFO control message.
///
/// # Safety
/// The arguments are those the program passed to `sendto(2)`.
pub(crate) unsafe fn sendto_via(
    fd: c_int,
    buf: *const c_void,
    len: usize,
    flags: c_int,
    addr: *const sockaddr,
    addrlen: socklen_t,
    p: Pktinfo,
) -> isize {
    let mut control = ControlBuf::new();
    let Ok(Some(clen)) = build_control(&mut control, std::ptr::null(), 0, p) else {
        // SAFETY: the program's own arguments, unchanged.
        return unsafe { real::sendto(fd, buf, len, flags, addr, addrlen) };
    };
    let mut iov = libc::iovec {
        iov_base: buf as *mut c_void,
        iov_len: len,
    };
    // SAFETY: a zeroed msghdr is valid.
    let mut mh: libc::msghdr = unsafe { zeroed() };
    mh.msg_name = addr as *mut c_void;
    mh.msg_namelen = addrlen;
    mh.msg_iov = &mut iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control.ptr().cast();
    mh.msg_controllen = clen;
    // SAFETY: every pointer in mh refers to the program's buffers (valid for the
    // call, per sendto's contract) or to our locals, which outlive the call.
    unsafe { real::sendmsg(fd, &mh, flags) }
}

/// Result of preparing a `sendmsg` with our control message.
pub(crate) enum Prepared {
    /// Send the program's message unchanged.
    AsIs,
    /// Send this copy instead.
    Rewritten,
    /// The program's control data is too large to extend.
    TooBig,
}

/// A copy of a program's `msghdr` with room for our control message.
pub(crate) struct MsgCopy {
    mh: libc::msghdr,
    control: ControlBuf,
    name: libc::sockaddr_storage,
}

impl MsgCopy {
    pub(crate) fn new() -> Self {
        MsgCopy {
            // SAFETY: a zeroed msghdr is valid (null pointers, zero lengths).
            mh: unsafe { zeroed() },
            control: ControlBuf::new(),
            // SAFETY: a zeroed sockaddr_storage is valid.
            name: unsafe { zeroed() },
        }
    }

    /// Copies the program's message with its destination replaced by `to` (and our
    /// PKTINFO added when `p` is given). `false`: the control data does not fit.
    /// The copy refers to itself: use it in place, right away.
    ///
    /// # Safety
    /// `msg` is the program's valid `msghdr`.
    pub(crate) unsafe fn redirect(
        &mut self,
        msg: *const libc::msghdr,
        to: &SocketAddr,
        v6: bool,
        p: Option<Pktinfo>,
    ) -> bool {
        if let Some(p) = p {
            // SAFETY: forwarded contract.
            if let Prepared::TooBig = unsafe { self.prepare(msg, p) } {
                return false;
            }
        } else {
            // SAFETY: the caller guarantees msg is valid for reads.
            self.mh = unsafe { std::ptr::read(msg) };
        }
        let (ss, len) = to_sockaddr(to, v6);
        self.name = ss;
        self.mh.msg_name = (&raw mut self.name).cast();
        self.mh.msg_namelen = len;
        true
    }

    /// # Safety
    /// `msg` is the program's valid `msghdr`.
    pub(crate) unsafe fn prepare(&mut self, msg: *const libc::msghdr, p: Pktinfo) -> Prepared {
        // SAFETY: the caller guarantees msg is valid for reads.
        self.mh = unsafe { std::ptr::read(msg) };
        match build_control(
            &mut self.control,
            self.mh.msg_control,
            self.mh.msg_controllen,
            p,
        ) {
            Ok(Some(clen)) => {
                self.mh.msg_control = self.control.ptr().cast();
                self.mh.msg_controllen = clen;
                Prepared::Rewritten
            }
            Ok(None) => Prepared::AsIs,
            Err(()) => Prepared::TooBig,
        }
    }

    pub(crate) fn hdr(&self) -> *const libc::msghdr {
        &self.mh
    }
}

// ---------------------------------------------------------------------------------
// Process facts, time, memory
// ---------------------------------------------------------------------------------

/// The interface the routing table sends `dest` through (`netlink::route_oif`).
pub(crate) fn route_oif(dest: IpAddr) -> Result<u32, c_int> {
    netlink::route_oif(dest)
}

/// Whether the calling thread runs on its alternate signal stack (a signal handler
/// installed with `SA_ONSTACK`).
pub(crate) fn on_alt_stack() -> bool {
    // SAFETY: a zeroed stack_t is valid; sigaltstack only writes the old one.
    let mut ss: libc::stack_t = unsafe { zeroed() };
    // SAFETY: NULL new stack: a query only.
    let r = unsafe { libc::sigaltstack(std::ptr::null(), &mut ss) };
    r == 0 && ss.ss_flags & libc::SS_ONSTACK != 0
}

pub(crate) fn getpid() -> i32 {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() }
}

/// Coarse monotonic clock in milliseconds (vDSO: no system call).
pub(crate) fn now_ms() -> u64 {
    // SAFETY: zero is a valid timespec.
    let mut ts: libc::timespec = unsafe { zeroed() };
    // SAFETY: ts is valid for writes.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// Writes all of `buf` to `fd` with `write(2)` (retrying EINTR and short writes),
/// keeping errno.
pub(crate) fn write_all(fd: c_int, mut buf: &[u8]) -> bool {
    let saved = errno();
    let mut ok = true;
    let mut tries = 0;
    while !buf.is_empty() && tries < 8 {
        tries += 1;
        // SAFETY: buf is a valid slice.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
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
/// `O_NOCTTY`: a terminal named there does not become the controlling one. `Err`:
/// the errno.
pub(crate) fn open_log(path: &std::ffi::CStr) -> Result<c_int, c_int> {
    // SAFETY: path is NUL-terminated.
    let fd = unsafe {
        libc::open(
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
    if fd >= 0 { Ok(fd) } else { Err(errno()) }
}

/// An anonymous zeroed mapping of `len` bytes (used for the fd table: no malloc on
/// paths that may run in signal handlers or after fork).
pub(crate) fn map_zeroed(len: usize) -> Option<*mut u8> {
    // SAFETY: anonymous private mapping; no existing memory is affected.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    (p != libc::MAP_FAILED).then_some(p.cast())
}

/// # Safety
/// `p`/`len` came from `map_zeroed` and nothing refers to the mapping any more.
pub(crate) unsafe fn unmap(p: *mut u8, len: usize) {
    // SAFETY: per the function contract.
    unsafe { libc::munmap(p.cast(), len) };
}

/// ## Entry point
/// Called by the stub's `pthread_atfork` child handler: clears state a thread of the
/// parent may have held at `fork` (the snapshot refresher's flag, reader counts).
#[cfg_attr(not(test), unsafe(export_name = "mifshim_engine_after_fork_child"))]
pub extern "C" fn engine_after_fork_child() {
    crate::state::after_fork_in_child();
}

/// The executable's path (`/proc/self/exe`).
pub(crate) fn exe_path() -> String {
    std::fs::read_link("/proc/self/exe")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}
