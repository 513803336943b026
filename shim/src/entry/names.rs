//! The name-lookup hooks both OSes have: `getaddrinfo`, `freeaddrinfo`,
//! `getnameinfo`, and what the `gethostby*` entry points share (the `hostent` layout
//! in the program's buffer, the static storage of the non-reentrant ones, the
//! `h_errno` of an `EAI_*` code). Each decodes its arguments, asks `crate::dns` (the
//! resolver on Linux; on macOS the policy's decision over mDNSResponder,
//! `crate::dns` there) and carries out the answer. The reentrant `gethostby*_r`, the
//! `res_*` family and `getaddrinfo_a`/`gai_suspend`/`gai_cancel` are glibc's
//! (`names_linux`); macOS's `gethostbyname`, `gethostbyname2` and `gethostbyaddr` are
//! in `entry::macos`.
//!
//! The shim only decides *which addresses* a name has (`crate::dns`); the
//! `addrinfo` list itself is built by the real `getaddrinfo`, called once per address
//! with `AI_NUMERICHOST`, and the lists are chained. So service names, socket types,
//! `AI_PASSIVE`/`AI_V4MAPPED` handling and the memory layout are the C library's own,
//! and any `freeaddrinfo` the program calls (ours forwards to the C library's) frees
//! the result. On macOS too: libinfo's `freeaddrinfo` frees node by node (each node
//! one allocation holding its address, and its `ai_canonname` with `free`), so a chain
//! of its numeric answers is freed like one of its own answers, and the canonical
//! name put on the first node is `strdup`'d with the C library's `malloc`.

use crate::dns::{self, Hints, Plan};
use crate::sys;
use crate::sys::guard::{pre_lookup, pre_lookup_offer};
use crate::sys::real;
use libc::{addrinfo, c_char, c_int, hostent};
use std::ffi::{CStr, CString};
use std::mem::size_of;
use std::net::IpAddr;
use std::ptr::null_mut;

pub(super) fn node_str<'a>(node: *const c_char) -> Option<&'a str> {
    if node.is_null() {
        return None;
    }
    // SAFETY: the program passes a NUL-terminated string (getaddrinfo(3)).
    unsafe { CStr::from_ptr(node) }.to_str().ok()
}

/// ## Hook
/// Replaces `getaddrinfo(3)`.
pub unsafe extern "C" fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
) -> c_int {
    // SAFETY: the program's arguments, forwarded.
    unsafe { getaddrinfo_in(node, service, hints, res, true) }
}

/// [`getaddrinfo`]'s work; `offer`: see [`pre_lookup_offer`].
///
/// # Safety
/// getaddrinfo(3)'s contract.
#[inline(always)]
pub(super) unsafe fn getaddrinfo_in(
    node: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
    offer: bool,
) -> c_int {
    let h = if hints.is_null() {
        // glibc's behaviour for NULL hints.
        Hints {
            family: libc::AF_UNSPEC,
            flags: libc::AI_V4MAPPED | libc::AI_ADDRCONFIG,
        }
    } else {
        // SAFETY: hints points to a valid addrinfo (getaddrinfo(3)).
        let h = unsafe { &*hints };
        Hints {
            family: h.ai_family,
            flags: h.ai_flags,
        }
    };
    let plan = match node_str(node) {
        // A name that is not UTF-8 is no DNS name we could ask for; glibc would ask the
        // default link's servers.
        None if !node.is_null() && crate::ops::active() => Plan::Fail(libc::EAI_NONAME),
        None => Plan::Real,
        Some(name) => pre_lookup_offer(offer, || dns::getaddrinfo(name, &h))
            .or_panicked(Plan::Fail(libc::EAI_FAIL)),
    };
    match plan {
        // SAFETY: the program's arguments, forwarded.
        Plan::Real => unsafe { real::getaddrinfo(node, service, hints, res) },
        Plan::Fail(code) => code,
        // SAFETY: the program's arguments; addrs came from our resolver.
        Plan::Answer { addrs, canon } => unsafe {
            build_list(&addrs, &canon, service, hints, h, res)
        },
    }
}

/// Chains the real `getaddrinfo`'s answer for each numeric address.
///
/// # Safety
/// `service`, `hints` and `res` are the program's `getaddrinfo` arguments.
unsafe fn build_list(
    addrs: &[IpAddr],
    canon: &str,
    service: *const c_char,
    hints: *const addrinfo,
    h: Hints,
    res: *mut *mut addrinfo,
) -> c_int {
    let mut numeric: addrinfo = if hints.is_null() {
        // SAFETY: zero is a valid addrinfo (null pointers).
        unsafe { std::mem::zeroed() }
    } else {
        // SAFETY: hints is the program's valid addrinfo (getaddrinfo(3)).
        unsafe { std::ptr::read(hints) }
    };
    numeric.ai_flags =
        (h.flags | libc::AI_NUMERICHOST) & !(libc::AI_CANONNAME | libc::AI_ADDRCONFIG);
    numeric.ai_addr = null_mut();
    numeric.ai_canonname = null_mut();
    numeric.ai_next = null_mut();
    let mut head: *mut addrinfo = null_mut();
    let mut tail: *mut addrinfo = null_mut();
    let mut last_err = libc::EAI_NONAME;
    for a in addrs {
        let text = match (a, h.family) {
            // The program asked for AF_INET6 with AI_V4MAPPED.
            (IpAddr::V4(v4), libc::AF_INET6) => v4.to_ipv6_mapped().to_string(),
            _ => a.to_string(),
        };
        let Ok(c) = CString::new(text) else { continue };
        let mut part: *mut addrinfo = null_mut();
        // SAFETY: c is NUL-terminated; numeric is a valid hints struct; part receives a
        // list owned by glibc's allocator.
        let r = unsafe { real::getaddrinfo(c.as_ptr(), service, &numeric, &mut part) };
        if r != 0 {
            last_err = r;
            if r == libc::EAI_SERVICE || r == libc::EAI_SOCKTYPE || r == libc::EAI_BADFLAGS {
                break;
            }
            continue;
        }
        if head.is_null() {
            head = part;
        } else {
            // SAFETY: tail is the last node of our chain (non-null here).
            unsafe { (*tail).ai_next = part };
        }
        tail = part;
        // SAFETY: walking glibc's freshly returned, well-formed list.
        while let Some(next) = unsafe { (*tail).ai_next.as_mut() } {
            tail = next;
        }
    }
    if head.is_null() {
        return last_err;
    }
    if h.flags & libc::AI_CANONNAME != 0 {
        if let Ok(c) = CString::new(canon) {
            // SAFETY: head is a valid node; its canonname is malloc'ed by glibc (or
            // NULL) and glibc's freeaddrinfo frees it with free(), so ours is
            // allocated with malloc too.
            unsafe {
                libc::free((*head).ai_canonname.cast());
                (*head).ai_canonname = libc::strdup(c.as_ptr());
            }
        }
    }
    // SAFETY: res is the program's out-pointer.
    unsafe { *res = head };
    0
}

/// ## Hook
/// Replaces `freeaddrinfo(3)`. Every list the shim returns is made of glibc's own
/// nodes, so glibc's function frees both kinds; this hook exists so that a program
/// resolving its `freeaddrinfo` through the preload gets exactly glibc's.
pub unsafe extern "C" fn freeaddrinfo(ai: *mut addrinfo) {
    // SAFETY: forwarded.
    unsafe { real::freeaddrinfo(ai) }
}

/// ## Hook
/// Replaces `getnameinfo(3)`: reverse lookups go over the interface the address is
/// reached by, like forward ones; the service part is always glibc's.
pub unsafe extern "C" fn getnameinfo(
    sa: *const libc::sockaddr,
    salen: libc::socklen_t,
    host: *mut c_char,
    hostlen: libc::socklen_t,
    serv: *mut c_char,
    servlen: libc::socklen_t,
    flags: c_int,
) -> c_int {
    // Read without faulting (unreadable: not decoded; glibc then answers as it does).
    let dest = sys::decode_sockaddr(sa, salen);
    let plan = match dest {
        Some(d) if !host.is_null() && hostlen > 0 => {
            pre_lookup(|| dns::getnameinfo(d.addr.ip(), flags))
                .or_panicked(dns::NamePlan::Fail(libc::EAI_FAIL))
        }
        _ => dns::NamePlan::Real,
    };
    match plan {
        // SAFETY: the program's arguments, forwarded.
        dns::NamePlan::Real => unsafe {
            real::getnameinfo(sa, salen, host, hostlen, serv, servlen, flags)
        },
        dns::NamePlan::Fail(code) => code,
        dns::NamePlan::Numeric => {
            // SAFETY: the program's arguments with the numeric flag added.
            unsafe {
                real::getnameinfo(
                    sa,
                    salen,
                    host,
                    hostlen,
                    serv,
                    servlen,
                    flags | libc::NI_NUMERICHOST,
                )
            }
        }
        dns::NamePlan::Name(name) => {
            // glibc refuses NI_NUMERICHOST together with NI_NAMEREQD; the name is ours.
            let numeric = (flags | libc::NI_NUMERICHOST) & !libc::NI_NAMEREQD;
            // SAFETY: as above; fills the service part (and a numeric host we replace).
            let r = unsafe { real::getnameinfo(sa, salen, host, hostlen, serv, servlen, numeric) };
            if r != 0 {
                return r;
            }
            if name.len() + 1 > hostlen as usize || name.contains('\0') {
                return libc::EAI_OVERFLOW;
            }
            // SAFETY: host has hostlen >= name.len() + 1 writable bytes (checked).
            unsafe {
                std::ptr::copy_nonoverlapping(name.as_ptr(), host.cast::<u8>(), name.len());
                *host.add(name.len()) = 0;
            }
            0
        }
    }
}

/// Fills `ret` and `buf` with a hostent for `addrs` (all of family `af`).
///
/// # Safety
/// `ret`, `buf` (of `len` bytes) and `result` are the program's
/// `gethostbyname*_r` arguments.
pub(super) unsafe fn fill_hostent(
    name: &str,
    af: c_int,
    addrs: &[IpAddr],
    ret: *mut hostent,
    buf: *mut c_char,
    len: usize,
    result: *mut *mut hostent,
) -> c_int {
    let alen = if af == libc::AF_INET { 4 } else { 16 };
    // Only addresses the family can hold (an IPv6 answer never goes into an AF_INET
    // hostent).
    let kept: Vec<IpAddr> = addrs
        .iter()
        .copied()
        .filter(|a| af == libc::AF_INET6 || a.is_ipv4())
        .collect();
    let addrs = kept.as_slice();
    let ptr = size_of::<*mut c_char>();
    let base = buf as usize;
    let start = (base + ptr - 1) & !(ptr - 1);
    let n = addrs.len();
    // Layout: addr pointers (n+1), alias pointers (1), addresses, name.
    let need = (start - base) + (n + 2) * ptr + n * alen + name.len() + 1;
    if need > len {
        // SAFETY: result is the program's out-pointer.
        unsafe { *result = null_mut() };
        return libc::ERANGE;
    }
    let list = start as *mut *mut c_char;
    let aliases = (start + (n + 1) * ptr) as *mut *mut c_char;
    let data = (start + (n + 2) * ptr) as *mut u8;
    // SAFETY: every write below stays within [start, base + need) ⊆ the program's
    // buffer of len bytes, and pointer slots are pointer-aligned (start is).
    unsafe {
        for (i, a) in addrs.iter().enumerate() {
            let dst = data.add(i * alen);
            match a {
                IpAddr::V4(v4) if alen == 4 => {
                    std::ptr::copy_nonoverlapping(v4.octets().as_ptr(), dst, 4)
                }
                IpAddr::V4(v4) => {
                    std::ptr::copy_nonoverlapping(v4.to_ipv6_mapped().octets().as_ptr(), dst, 16)
                }
                IpAddr::V6(v6) => std::ptr::copy_nonoverlapping(v6.octets().as_ptr(), dst, 16),
            }
            *list.add(i) = dst.cast();
        }
        *list.add(n) = null_mut();
        *aliases = null_mut();
        let nm = data.add(n * alen);
        std::ptr::copy_nonoverlapping(name.as_ptr(), nm, name.len());
        *nm.add(name.len()) = 0;
        (*ret).h_name = nm.cast();
        (*ret).h_aliases = aliases;
        (*ret).h_addrtype = af;
        (*ret).h_length = alen as c_int;
        (*ret).h_addr_list = list;
        *result = ret;
    }
    0
}

/// The `h_errno` and return value of a `gethostby*_r` call that fails with `code`.
pub(super) fn h_errno_of(code: c_int) -> (c_int, c_int) {
    match code {
        libc::EAI_AGAIN => (2, libc::EAGAIN),             // TRY_AGAIN
        libc::EAI_NODATA | dns::EAI_ADDRFAMILY => (4, 0), // NO_DATA
        libc::EAI_FAIL => (3, 0),                         // NO_RECOVERY
        _ => (1, 0),                                      // HOST_NOT_FOUND
    }
}

/// Storage for the non-reentrant functions, shared by the process as glibc's own is
/// (POSIX: "may return pointers to static data, which may be overwritten by
/// subsequent calls").
pub(super) struct Static {
    pub(super) ent: std::cell::UnsafeCell<hostent>,
    pub(super) buf: std::cell::UnsafeCell<[u8; 4096]>,
}
// SAFETY: the non-reentrant interface is documented as not thread-safe; concurrent
// callers race exactly as they do on glibc's static buffer.
unsafe impl Sync for Static {}

pub(super) static STATIC: Static = Static {
    ent: std::cell::UnsafeCell::new(hostent {
        h_name: null_mut(),
        h_aliases: null_mut(),
        h_addrtype: 0,
        h_length: 0,
        h_addr_list: null_mut(),
    }),
    buf: std::cell::UnsafeCell::new([0; 4096]),
};
