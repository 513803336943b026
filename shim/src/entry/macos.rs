//! The entry points of the calls only macOS's list has, or that macOS's C library
//! lacks the reentrant forms of: `connectx(2)`, and `gethostbyname`, `gethostbyname2`,
//! `gethostbyaddr` (on Linux built over glibc's `_r` forms, `names_linux`). They
//! share the helpers of [`super::socket`] and [`super::names`] and keep the
//! invariants stated in [`super::socket`]'s module comment. Type-checked for both
//! Apple targets; never run on a Mac.

use std::net::IpAddr;
use std::ptr::null_mut;

use libc::{c_char, c_int, c_uint, c_void, hostent, sockaddr, socklen_t};

use super::names::{STATIC, fill_hostent, h_errno_of, node_str};
use crate::dns::{self, Hints, NamePlan, Plan};
use crate::ops;
use crate::sys::guard::{Errno, Pre, decide, note, pre, pre_lookup};
use crate::sys::macos::ffi::names::set_h_errno;
use crate::sys::macos::uapi::{self, Endpoints, SA_ENDPOINTS_LEN};
use crate::sys::uaccess::{self, POISON, poison};
use crate::sys::{self, UserAddr, real, to_sockaddr};

/// `h_errno`'s `HOST_NOT_FOUND` and `NO_DATA` (`<netdb.h>`).
const HOST_NOT_FOUND: c_int = 1;
const NO_DATA: c_int = 4;

/// A `sa_endpoints_t` the kernel is handed, aligned as the C structure is.
#[repr(C, align(8))]
struct EndpointsBuf([u8; SA_ENDPOINTS_LEN]);

/// One endpoint address of a `connectx`, copied: `Ok(None)` when the program gave
/// none (a NULL pointer), `Err` when it cannot be read or its length is refused.
fn load_endpoint(copy: &mut UserAddr, at: usize, len: socklen_t) -> Result<bool, c_int> {
    copy.load(at as *const sockaddr, len).map(|a| a.is_some())
}

/// ## Hook
/// Replaces `connectx(2)` (macOS): the destination in the program's `sa_endpoints_t`
/// is decided as `connect`'s is, and the socket bound to the chosen interface
/// (`IP_BOUND_IF`/`IPV6_BOUND_IF`) before the real call; a source address is decided
/// as `bind`'s is. The kernel gets copies of the endpoints and of both addresses.
/// Fails closed (`ENETUNREACH`, nothing connected) while a policy is active for an
/// endpoint the engine cannot steer: a destination or source that is not an INET
/// address, a socket that is not `AF_INET`/`AF_INET6` (MPTCP's `AF_MULTIPATH`, whose
/// subflows choose their own interfaces), or a source interface (`sae_srcif`) other
/// than the one the socket is bound to. Unreadable endpoints are the kernel's to
/// refuse (handed an unreadable pointer, it answers `EFAULT` without connecting).
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn connectx(
    fd: c_int,
    endpoints: *const c_void,
    associd: u32,
    flags: c_uint,
    iov: *const c_void,
    iovcnt: c_uint,
    len: *mut usize,
    connid: *mut u32,
) -> c_int {
    // SAFETY: the program's arguments, forwarded with the endpoints `ep` points at
    // (the program's, NULL, POISON or our copy, alive for the call).
    let call = |ep: *const c_void| unsafe {
        real::connectx(fd, ep, associd, flags, iov, iovcnt, len, connid)
    };
    if endpoints.is_null() {
        // Nothing to connect to: the kernel answers (EINVAL).
        return call(endpoints);
    }
    let mut raw = EndpointsBuf([0; SA_ENDPOINTS_LEN]);
    if uaccess::copy_in(&mut raw.0, endpoints.cast()).is_err() {
        return call(poison());
    }
    let mut ep = Endpoints::read(&raw.0);
    let mut dst = UserAddr::empty();
    let mut src = UserAddr::empty();
    let has_dst = match load_endpoint(&mut dst, ep.dstaddr, ep.dstaddrlen) {
        Ok(d) => d,
        Err(_) => {
            ep.dstaddr = POISON;
            return call(EndpointsBuf(ep.write()).0.as_ptr().cast());
        }
    };
    let has_src = match load_endpoint(&mut src, ep.srcaddr, ep.srcaddrlen) {
        Ok(s) => s,
        Err(_) => {
            ep.srcaddr = POISON;
            return call(EndpointsBuf(ep.write()).0.as_ptr().cast());
        }
    };
    let dest = if has_dst { dst.dest() } else { None };
    let src_dest = if has_src { src.dest() } else { None };
    let active = matches!(pre(ops::active), Pre::Run(true));
    if active {
        let inet_socket = matches!(
            pre(|| sys::probe_socket(fd).family.is_some()),
            Pre::Run(true)
        );
        let unsupported = (has_dst && dest.is_none()) || (has_src && src_dest.is_none());
        if !inet_socket || unsupported {
            return Errno(libc::ENETUNREACH).fail();
        }
    }
    if has_src {
        match decide(|| ops::bind(fd, src_dest)) {
            Ok(Some(ip)) => {
                src.set_ip(ip);
            }
            Ok(None) => {}
            Err(e) => return e.fail(),
        }
    }
    match pre(|| ops::connect(fd, dest)) {
        Pre::Run(Ok(None)) => {}
        Pre::Run(Ok(Some(to))) => {
            let v6 = dest.is_some_and(|d| d.addr.is_ipv6());
            let (ss, sl) = to_sockaddr(&to, v6);
            // SAFETY: ss is a live sockaddr_storage of which sl bytes are the address.
            let bytes =
                unsafe { std::slice::from_raw_parts((&raw const ss).cast::<u8>(), sl as usize) };
            dst = UserAddr::from_bytes(bytes);
        }
        Pre::Run(Err(e)) => return Errno(e).fail(),
        Pre::Panicked => return Errno::PANICKED.fail(),
    }
    if ep.srcif != 0 && active {
        let bound = match pre(|| sys::bound_ifindex(fd)) {
            Pre::Run(b) => b.max(0) as u32,
            Pre::Panicked => return Errno::PANICKED.fail(),
        };
        if !uapi::srcif_agrees(ep.srcif, bound) {
            return Errno(libc::ENETUNREACH).fail();
        }
    }
    if has_dst {
        let (p, l) = dst.raw();
        (ep.dstaddr, ep.dstaddrlen) = (p as usize, l);
    }
    if has_src {
        let (p, l) = src.raw();
        (ep.srcaddr, ep.srcaddrlen) = (p as usize, l);
    }
    let copy = EndpointsBuf(ep.write());
    let r = call(copy.0.as_ptr().cast());
    if r == 0 && has_src {
        note(|| ops::bound(fd, src.dest()));
    }
    r
}

/// A forward lookup of `name` for `af` answered into the static `hostent`, or the
/// program's call made by `real` when the C library answers it.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `real` makes the program's call.
unsafe fn by_name(
    name: *const c_char,
    af: c_int,
    real: impl FnOnce() -> *mut hostent,
) -> *mut hostent {
    let Some(n) = node_str(name) else {
        // Not UTF-8: no DNS name the engine could ask for, and while a policy is active
        // never the C library's default path.
        if !name.is_null() && matches!(pre(ops::active), Pre::Run(true)) {
            set_h_errno(HOST_NOT_FOUND);
            return null_mut();
        }
        return real();
    };
    if af != libc::AF_INET && af != libc::AF_INET6 {
        // The C library refuses the family itself, asking nobody.
        return real();
    }
    let h = Hints {
        family: af,
        flags: 0,
    };
    let plan = pre_lookup(|| dns::getaddrinfo(n, &h)).or_panicked(Plan::Fail(libc::EAI_FAIL));
    match plan {
        Plan::Real => real(),
        Plan::Fail(code) => {
            set_h_errno(h_errno_of(code).0);
            null_mut()
        }
        Plan::Answer { addrs, canon } => {
            if !addrs.iter().any(|a| af == libc::AF_INET6 || a.is_ipv4()) {
                set_h_errno(NO_DATA);
                return null_mut();
            }
            let mut result: *mut hostent = null_mut();
            // SAFETY: our static storage, sized as declared.
            let r = unsafe {
                fill_hostent(
                    &canon,
                    af,
                    &addrs,
                    STATIC.ent.get(),
                    STATIC.buf.get().cast(),
                    4096,
                    &mut result,
                )
            };
            if r != 0 || result.is_null() {
                set_h_errno(h_errno_of(libc::EAI_FAIL).0);
                return null_mut();
            }
            result
        }
    }
}

/// ## Hook
/// Replaces `gethostbyname2(3)` (macOS): a name the policy steers is resolved over
/// its interface (`crate::dns`), the answer put in static storage as the C library's
/// is.
pub unsafe extern "C" fn gethostbyname2(name: *const c_char, af: c_int) -> *mut hostent {
    // SAFETY: the program's arguments; its call, forwarded.
    unsafe { by_name(name, af, || real::gethostbyname2(name, af)) }
}

/// ## Hook
/// Replaces `gethostbyname(3)` (macOS): as `gethostbyname2(name, AF_INET)`.
pub unsafe extern "C" fn gethostbyname(name: *const c_char) -> *mut hostent {
    // SAFETY: the program's argument; its call, forwarded.
    unsafe { by_name(name, libc::AF_INET, || real::gethostbyname(name)) }
}

/// ## Hook
/// Replaces `gethostbyaddr(3)` (macOS): the name comes from where `getnameinfo`'s
/// would (`crate::dns`), never from the C library's default path for an address the
/// policy steers.
pub unsafe extern "C" fn gethostbyaddr(
    addr: *const c_void,
    len: socklen_t,
    af: c_int,
) -> *mut hostent {
    let ip = match (af, len) {
        (libc::AF_INET, 4) => {
            let mut b = [0u8; 4];
            uaccess::copy_in(&mut b, addr.cast())
                .ok()
                .map(|()| IpAddr::from(b))
        }
        (libc::AF_INET6, 16) => {
            let mut b = [0u8; 16];
            uaccess::copy_in(&mut b, addr.cast())
                .ok()
                .map(|()| IpAddr::from(b))
        }
        _ => None,
    };
    let plan = match ip {
        Some(ip) => pre_lookup(|| dns::getnameinfo(ip, libc::NI_NAMEREQD))
            .or_panicked(NamePlan::Fail(libc::EAI_FAIL)),
        None => NamePlan::Real,
    };
    match (plan, ip) {
        (NamePlan::Name(name), Some(ip)) => {
            let mut result: *mut hostent = null_mut();
            // SAFETY: our static storage, sized as declared.
            let r = unsafe {
                fill_hostent(
                    &name,
                    af,
                    &[ip],
                    STATIC.ent.get(),
                    STATIC.buf.get().cast(),
                    4096,
                    &mut result,
                )
            };
            if r != 0 || result.is_null() {
                set_h_errno(h_errno_of(libc::EAI_FAIL).0);
                return null_mut();
            }
            result
        }
        // SAFETY: the program's arguments, forwarded.
        (NamePlan::Real, _) | (_, None) => unsafe { real::gethostbyaddr(addr, len, af) },
        (NamePlan::Fail(code), _) => {
            set_h_errno(h_errno_of(code).0);
            null_mut()
        }
        (NamePlan::Numeric, _) => {
            set_h_errno(HOST_NOT_FOUND);
            null_mut()
        }
    }
}
