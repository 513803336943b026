//! The name-lookup entry points only glibc has: `gethostbyname_r`,
//! `gethostbyname2_r`, `gethostbyaddr_r` (and `gethostbyname`, `gethostbyname2`,
//! `gethostbyaddr` over them), the `res_*` family and `getaddrinfo_a`/`gai_suspend`/
//! `gai_cancel`, over the helpers of [`super::names`].

use super::names::{STATIC, fill_hostent, getaddrinfo_in, h_errno_of, node_str};
use crate::dns::{self, Hints, Plan};
use crate::sys::guard::{Pre, pre, pre_lookup, pre_lookup_offer};
use crate::sys::net::set_h_errno;
use crate::sys::{self, real};
use libc::{addrinfo, c_char, c_int, hostent};
use std::ffi::CStr;
use std::net::IpAddr;
use std::ptr::null_mut;

/// ## Hook
/// Replaces `gethostbyname2_r(3)`: the reentrant lookup the others are built on.
pub unsafe extern "C" fn gethostbyname2_r(
    name: *const c_char,
    af: c_int,
    ret: *mut hostent,
    buf: *mut c_char,
    len: usize,
    result: *mut *mut hostent,
    h_errnop: *mut c_int,
) -> c_int {
    // SAFETY: the program's arguments, forwarded.
    unsafe { gethostbyname2_r_in(name, af, ret, buf, len, result, h_errnop, true) }
}

/// [`gethostbyname2_r`]'s work; `offer`: see [`pre_lookup_offer`].
///
/// # Safety
/// gethostbyname2_r(3)'s contract.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn gethostbyname2_r_in(
    name: *const c_char,
    af: c_int,
    ret: *mut hostent,
    buf: *mut c_char,
    len: usize,
    result: *mut *mut hostent,
    h_errnop: *mut c_int,
    offer: bool,
) -> c_int {
    let plan = match node_str(name) {
        Some(n) if af == libc::AF_INET || af == libc::AF_INET6 => {
            let hints = Hints {
                family: af,
                flags: 0,
            };
            pre_lookup_offer(offer, || dns::getaddrinfo(n, &hints))
                .or_panicked(Plan::Fail(libc::EAI_FAIL))
        }
        _ => Plan::Real,
    };
    // Like glibc, both the out-pointer and the thread's h_errno (Python reads the latter).
    let set_h = |v: c_int| {
        if !h_errnop.is_null() {
            // SAFETY: the program's out-pointer.
            unsafe { *h_errnop = v };
        }
        if v != 0 {
            set_h_errno(v);
        }
    };
    match plan {
        // SAFETY: the program's arguments, forwarded.
        Plan::Real => unsafe { real::gethostbyname2_r(name, af, ret, buf, len, result, h_errnop) },
        Plan::Fail(code) => {
            // SAFETY: the program's out-pointer.
            unsafe { *result = null_mut() };
            let (h, e) = h_errno_of(code);
            set_h(h);
            e
        }
        Plan::Answer { addrs, canon } => {
            set_h(0);
            let shown = if canon.is_empty() {
                node_str(name).unwrap_or("")
            } else {
                &canon
            };
            // SAFETY: the program's arguments.
            let r = unsafe { fill_hostent(shown, af, &addrs, ret, buf, len, result) };
            if r == libc::ERANGE {
                set_h(-1); // NETDB_INTERNAL, errno ERANGE
            }
            r
        }
    }
}

/// ## Hook
/// Replaces `gethostbyaddr_r(3)`: the name comes from where `getnameinfo`'s would
/// (/etc/hosts, none for loopback, or a PTR query over the chosen interface), never
/// from the C library's default path.
pub unsafe extern "C" fn gethostbyaddr_r(
    addr: *const libc::c_void,
    len: libc::socklen_t,
    af: c_int,
    ret: *mut hostent,
    buf: *mut c_char,
    buflen: usize,
    result: *mut *mut hostent,
    h_errnop: *mut c_int,
) -> c_int {
    // SAFETY: the program's arguments, forwarded.
    unsafe { gethostbyaddr_r_in(addr, len, af, ret, buf, buflen, result, h_errnop, true) }
}

/// [`gethostbyaddr_r`]'s work; `offer`: see [`pre_lookup_offer`].
///
/// # Safety
/// gethostbyaddr_r(3)'s contract.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn gethostbyaddr_r_in(
    addr: *const libc::c_void,
    len: libc::socklen_t,
    af: c_int,
    ret: *mut hostent,
    buf: *mut c_char,
    buflen: usize,
    result: *mut *mut hostent,
    h_errnop: *mut c_int,
    offer: bool,
) -> c_int {
    let ip = match (af, len) {
        _ if addr.is_null() => None,
        // SAFETY: gethostbyaddr(3): addr points to len bytes of an address of type af.
        (libc::AF_INET, 4) => Some(IpAddr::from(unsafe { *addr.cast::<[u8; 4]>() })),
        // SAFETY: as above.
        (libc::AF_INET6, 16) => Some(IpAddr::from(unsafe { *addr.cast::<[u8; 16]>() })),
        _ => None,
    };
    let plan = match ip {
        Some(ip) => pre_lookup_offer(offer, || dns::getnameinfo(ip, libc::NI_NAMEREQD))
            .or_panicked(dns::NamePlan::Fail(libc::EAI_FAIL)),
        None => dns::NamePlan::Real,
    };
    // Like glibc, both the out-pointer and the thread's h_errno (Python reads the latter).
    let set_h = |v: c_int| {
        if !h_errnop.is_null() {
            // SAFETY: the program's out-pointer.
            unsafe { *h_errnop = v };
        }
        if v != 0 {
            set_h_errno(v);
        }
    };
    match (plan, ip) {
        (dns::NamePlan::Name(name), Some(ip)) => {
            set_h(0);
            // SAFETY: the program's arguments.
            let r = unsafe { fill_hostent(&name, af, &[ip], ret, buf, buflen, result) };
            if r == libc::ERANGE {
                set_h(-1); // NETDB_INTERNAL, errno ERANGE
            }
            r
        }
        (dns::NamePlan::Real, _) | (_, None) => {
            // SAFETY: the program's arguments, forwarded.
            unsafe { real::gethostbyaddr_r(addr, len, af, ret, buf, buflen, result, h_errnop) }
        }
        (dns::NamePlan::Fail(code), _) => {
            // SAFETY: the program's out-pointer.
            unsafe { *result = null_mut() };
            let (h, e) = h_errno_of(code);
            set_h(h);
            e
        }
        (dns::NamePlan::Numeric, _) => {
            // SAFETY: the program's out-pointer.
            unsafe { *result = null_mut() };
            set_h(1);
            0
        }
    }
}

/// ## Hook
/// Replaces `gethostbyaddr(3)`.
pub unsafe extern "C" fn gethostbyaddr(
    addr: *const libc::c_void,
    len: libc::socklen_t,
    af: c_int,
) -> *mut hostent {
    let mut result: *mut hostent = null_mut();
    let mut h: c_int = 0;
    // SAFETY: our static storage, sized as declared; the program's address.
    let r = unsafe {
        gethostbyaddr_r_in(
            addr,
            len,
            af,
            STATIC.ent.get(),
            STATIC.buf.get().cast(),
            4096,
            &mut result,
            &mut h,
            true,
        )
    };
    if r != 0 || result.is_null() {
        set_h_errno(if h == 0 { 1 } else { h });
        return null_mut();
    }
    result
}

/// ## Hook
/// Replaces `gethostbyname_r(3)`.
pub unsafe extern "C" fn gethostbyname_r(
    name: *const c_char,
    ret: *mut hostent,
    buf: *mut c_char,
    len: usize,
    result: *mut *mut hostent,
    h_errnop: *mut c_int,
) -> c_int {
    // SAFETY: forwarded with the family gethostbyname_r implies.
    unsafe { gethostbyname2_r_in(name, libc::AF_INET, ret, buf, len, result, h_errnop, true) }
}

/// ## Hook
/// Replaces `gethostbyname2(3)`.
pub unsafe extern "C" fn gethostbyname2(name: *const c_char, af: c_int) -> *mut hostent {
    // SAFETY: forwarded.
    unsafe { gethostbyname2_in(name, af) }
}

/// [`gethostbyname2`]'s work, inlined into each entry point that uses it (see
/// [`pre_lookup_offer`]).
///
/// # Safety
/// gethostbyname2(3)'s contract.
#[inline(always)]
unsafe fn gethostbyname2_in(name: *const c_char, af: c_int) -> *mut hostent {
    let mut result: *mut hostent = null_mut();
    let mut h: c_int = 0;
    // SAFETY: our static storage, sized as declared.
    let r = unsafe {
        gethostbyname2_r_in(
            name,
            af,
            STATIC.ent.get(),
            STATIC.buf.get().cast(),
            4096,
            &mut result,
            &mut h,
            true,
        )
    };
    if r != 0 || result.is_null() {
        set_h_errno(if h == 0 { 1 } else { h });
        return null_mut();
    }
    result
}

/// ## Hook
/// Replaces `gethostbyname(3)`.
pub unsafe extern "C" fn gethostbyname(name: *const c_char) -> *mut hostent {
    // SAFETY: forwarded.
    unsafe { gethostbyname2_in(name, libc::AF_INET) }
}

// ---------------------------------------------------------------------------------
// The res_* family
// ---------------------------------------------------------------------------------

/// Where glibc 2.36 keeps `res_h_errno` in `struct __res_state` on x86_64
/// (`offsetof`, checked with the C compiler on the reference system).
const RES_H_ERRNO_OFFSET: usize = 496;

fn c_bytes<'a>(p: *const c_char) -> Option<&'a [u8]> {
    if p.is_null() {
        return None;
    }
    // SAFETY: the program passes a NUL-terminated string (resolver(3)).
    Some(unsafe { CStr::from_ptr(p) }.to_bytes())
}

/// A class or type as `res_mkquery` takes it (0–65535).
fn u16_arg(v: c_int) -> Option<u16> {
    u16::try_from(v).ok()
}

/// Carries out a `res_*` plan: the real call, a failure (`-1`, `h_errno`, and
/// `statp->res_h_errno` for the `res_n*` forms), or the answer copied to the
/// program's buffer (cut to `anslen` and marked truncated if it does not fit; the
/// full length is returned, as glibc does, so the caller can retry with more room).
///
/// # Safety
/// `statp` is NULL or the program's `res_state`; `answer` has `anslen` writable bytes.
unsafe fn res_finish(
    plan: Pre<dns::res::ResPlan>,
    statp: *mut libc::c_void,
    answer: *mut u8,
    anslen: c_int,
    real: impl FnOnce() -> c_int,
) -> c_int {
    use dns::res::ResPlan;
    let set_h = |h: c_int| {
        set_h_errno(h);
        if !statp.is_null() {
            // SAFETY: statp is the program's struct __res_state (see RES_H_ERRNO_OFFSET).
            unsafe {
                statp
                    .cast::<u8>()
                    .add(RES_H_ERRNO_OFFSET)
                    .cast::<c_int>()
                    .write_unaligned(h)
            };
        }
    };
    let plan = match plan {
        Pre::Run(p) => p,
        Pre::Panicked => ResPlan::Fail {
            h_errno: 3,
            errno: libc::ENETUNREACH,
        },
    };
    match plan {
        ResPlan::Real => real(),
        ResPlan::Fail { h_errno, errno } => {
            set_h(h_errno);
            if errno != 0 {
                sys::set_errno(errno);
            }
            -1
        }
        ResPlan::Answer { bytes, h_errno } => {
            let room = usize::try_from(anslen).unwrap_or(0);
            let n = bytes.len().min(room);
            if !answer.is_null() && n > 0 {
                // SAFETY: answer has anslen >= n writable bytes (resolver(3)).
                let dst = unsafe { std::slice::from_raw_parts_mut(answer, n) };
                dst.copy_from_slice(&bytes[..n]);
                if n < bytes.len() {
                    dns::raw_set_truncated(dst);
                }
            }
            if h_errno != 0 {
                set_h(h_errno);
                return -1;
            }
            c_int::try_from(bytes.len()).unwrap_or(c_int::MAX)
        }
    }
}

/// The plan for a query by name (`res_query`, `res_search`, `res_querydomain`).
fn res_by_name(
    name: *const c_char,
    domain: Option<*const c_char>,
    class: c_int,
    ty: c_int,
    search: bool,
) -> Pre<dns::res::ResPlan> {
    use dns::res::ResPlan;
    let (Some(n), Some(class), Some(ty)) = (c_bytes(name), u16_arg(class), u16_arg(ty)) else {
        return Pre::Run(ResPlan::Fail {
            h_errno: 3,
            errno: 0,
        });
    };
    let domain = domain.and_then(c_bytes);
    pre_lookup(|| match (search, domain) {
        (true, _) => dns::res::search(n, class, ty),
        (false, Some(d)) => dns::res::querydomain(n, Some(d), class, ty),
        (false, None) => dns::res::query(n, class, ty),
    })
}

/// ## Hook
/// Replaces `res_query(3)` (and `__res_query`): asked over the chosen interface.
pub unsafe extern "C" fn res_query(
    dname: *const c_char,
    class: c_int,
    ty: c_int,
    answer: *mut u8,
    anslen: c_int,
) -> c_int {
    let plan = res_by_name(dname, None, class, ty, false);
    // SAFETY: the program's arguments (resolver(3)).
    unsafe {
        res_finish(plan, null_mut(), answer, anslen, || {
            real::res_query(dname, class, ty, answer, anslen)
        })
    }
}

/// ## Hook
/// Replaces `res_search(3)`: the search list applied, each name asked over the chosen
/// interface.
pub unsafe extern "C" fn res_search(
    dname: *const c_char,
    class: c_int,
    ty: c_int,
    answer: *mut u8,
    anslen: c_int,
) -> c_int {
    let plan = res_by_name(dname, None, class, ty, true);
    // SAFETY: the program's arguments (resolver(3)).
    unsafe {
        res_finish(plan, null_mut(), answer, anslen, || {
            real::res_search(dname, class, ty, answer, anslen)
        })
    }
}

/// ## Hook
/// Replaces `res_querydomain(3)`.
pub unsafe extern "C" fn res_querydomain(
    name: *const c_char,
    domain: *const c_char,
    class: c_int,
    ty: c_int,
    answer: *mut u8,
    anslen: c_int,
) -> c_int {
    let plan = res_by_name(name, Some(domain), class, ty, false);
    // SAFETY: the program's arguments (resolver(3)).
    unsafe {
        res_finish(plan, null_mut(), answer, anslen, || {
            real::res_querydomain(name, domain, class, ty, answer, anslen)
        })
    }
}

/// The plan for `res_send`: the program's message, as it is.
///
/// # Safety
/// `msg` has `msglen` readable bytes.
unsafe fn res_send_plan(msg: *const u8, msglen: c_int) -> Pre<dns::res::ResPlan> {
    let len = usize::try_from(msglen).unwrap_or(0);
    if msg.is_null() || len == 0 {
        return Pre::Run(dns::res::send(&[]));
    }
    // SAFETY: the caller's contract.
    let m = unsafe { std::slice::from_raw_parts(msg, len) };
    pre_lookup(|| dns::res::send(m))
}

/// ## Hook
/// Replaces `res_send(3)`: the program's query goes to the chosen interface's servers.
pub unsafe extern "C" fn res_send(
    msg: *const u8,
    msglen: c_int,
    answer: *mut u8,
    anslen: c_int,
) -> c_int {
    // SAFETY: resolver(3): msg has msglen bytes, answer anslen.
    unsafe {
        let plan = res_send_plan(msg, msglen);
        res_finish(plan, null_mut(), answer, anslen, || {
            real::res_send(msg, msglen, answer, anslen)
        })
    }
}

/// ## Hook
/// Replaces `res_nquery(3)`.
pub unsafe extern "C" fn res_nquery(
    statp: *mut libc::c_void,
    dname: *const c_char,
    class: c_int,
    ty: c_int,
    answer: *mut u8,
    anslen: c_int,
) -> c_int {
    let plan = res_by_name(dname, None, class, ty, false);
    // SAFETY: the program's arguments (resolver(3)).
    unsafe {
        res_finish(plan, statp, answer, anslen, || {
            real::res_nquery(statp, dname, class, ty, answer, anslen)
        })
    }
}

/// ## Hook
/// Replaces `res_nsearch(3)`.
pub unsafe extern "C" fn res_nsearch(
    statp: *mut libc::c_void,
    dname: *const c_char,
    class: c_int,
    ty: c_int,
    answer: *mut u8,
    anslen: c_int,
) -> c_int {
    let plan = res_by_name(dname, None, class, ty, true);
    // SAFETY: the program's arguments (resolver(3)).
    unsafe {
        res_finish(plan, statp, answer, anslen, || {
            real::res_nsearch(statp, dname, class, ty, answer, anslen)
        })
    }
}

/// ## Hook
/// Replaces `res_nquerydomain(3)`.
pub unsafe extern "C" fn res_nquerydomain(
    statp: *mut libc::c_void,
    name: *const c_char,
    domain: *const c_char,
    class: c_int,
    ty: c_int,
    answer: *mut u8,
    anslen: c_int,
) -> c_int {
    let plan = res_by_name(name, Some(domain), class, ty, false);
    // SAFETY: the program's arguments (resolver(3)).
    unsafe {
        res_finish(plan, statp, answer, anslen, || {
            real::res_nquerydomain(statp, name, domain, class, ty, answer, anslen)
        })
    }
}

/// ## Hook
/// Replaces `res_nsend(3)`.
pub unsafe extern "C" fn res_nsend(
    statp: *mut libc::c_void,
    msg: *const u8,
    msglen: c_int,
    answer: *mut u8,
    anslen: c_int,
) -> c_int {
    // SAFETY: resolver(3): msg has msglen bytes, answer anslen; statp the program's.
    unsafe {
        let plan = res_send_plan(msg, msglen);
        res_finish(plan, statp, answer, anslen, || {
            real::res_nsend(statp, msg, msglen, answer, anslen)
        })
    }
}

// ---------------------------------------------------------------------------------
// getaddrinfo_a, gai_suspend, gai_cancel
// ---------------------------------------------------------------------------------

use crate::dns::gai::{self, EAI_INPROGRESS};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicUsize, Ordering};

/// glibc's `struct gaicb`.
#[repr(C)]
pub struct Gaicb {
    ar_name: *const c_char,
    ar_service: *const c_char,
    ar_request: *const addrinfo,
    ar_result: *mut addrinfo,
    ret: c_int,
    reserved: [c_int; 5],
}

const GAI_WAIT: c_int = 0;
const GAI_NOWAIT: c_int = 1;
/// `si_code` of glibc's completion signal.
const SI_ASYNCNL: c_int = -60;

/// Bumped (and waited on with a futex by `gai_suspend`) whenever a request completes.
static GAI_DONE: AtomicU32 = AtomicU32::new(0);

/// A request's `__return`, read or written atomically (the helper threads write it,
/// the program reads it through `gai_error`).
///
/// # Safety
/// `g` points to a live `gaicb` (the program keeps it until the request completes).
unsafe fn state<'a>(g: *mut Gaicb) -> &'a AtomicI32 {
    // SAFETY: the caller's contract; `ret` is a 4-byte aligned int.
    unsafe { AtomicI32::from_ptr(&raw mut (*g).ret) }
}

/// Runs one request through the engine's own `getaddrinfo` and publishes its result.
///
/// # Safety
/// `g` points to a live `gaicb`.
unsafe fn run_request(g: *mut Gaicb) {
    let mut res: *mut addrinfo = null_mut();
    // SAFETY: the program's request fields (getaddrinfo_a(3)).
    let r = unsafe {
        getaddrinfo_in(
            (*g).ar_name,
            (*g).ar_service,
            (*g).ar_request,
            &mut res,
            false,
        )
    };
    // SAFETY: as above; the result before the state that makes it visible.
    unsafe {
        (*g).ar_result = if r == 0 { res } else { null_mut() };
        state(g).store(r, Ordering::Release);
    }
    GAI_DONE.fetch_add(1, Ordering::AcqRel);
    // SAFETY: a futex wake on our own static word.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            GAI_DONE.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        )
    };
}

/// The program's `sigevent`, copied (glibc copies it too).
#[derive(Clone, Copy)]
struct Notify {
    how: c_int,
    signo: c_int,
    value: *mut libc::c_void,
    function: usize,
    attributes: *mut libc::pthread_attr_t,
    pid: libc::pid_t,
}

impl Notify {
    /// # Safety
    /// `sig` is NULL or the program's valid `struct sigevent`.
    unsafe fn read(sig: *const libc::sigevent) -> Notify {
        let mut n = Notify {
            how: libc::SIGEV_NONE,
            signo: 0,
            value: null_mut(),
            function: 0,
            attributes: null_mut(),
            pid: sys::getpid(),
        };
        if !sig.is_null() {
            // SAFETY: sigevent(7) on x86_64: the value at 0, signo at 8, notify at 12,
            // then the thread function at 16 and its attributes at 24.
            unsafe {
                let b = sig.cast::<u8>();
                n.value = b.cast::<*mut libc::c_void>().read_unaligned();
                n.signo = b.add(8).cast::<c_int>().read_unaligned();
                n.how = b.add(12).cast::<c_int>().read_unaligned();
                n.function = b.add(16).cast::<usize>().read_unaligned();
                n.attributes = b
                    .add(24)
                    .cast::<*mut libc::pthread_attr_t>()
                    .read_unaligned();
            }
        }
        n
    }

    /// Tells the program its requests are done, as glibc's `__gai_notify_only` does.
    fn send(&self) {
        match self.how {
            libc::SIGEV_SIGNAL => {
                // SAFETY: a zeroed siginfo_t is valid; the fields written are those of
                // a queued signal (x86_64: si_pid at 16, si_uid at 20, si_value at 24).
                unsafe {
                    let mut info: libc::siginfo_t = std::mem::zeroed();
                    let b = (&raw mut info).cast::<u8>();
                    b.cast::<c_int>().write(self.signo);
                    b.add(8).cast::<c_int>().write(SI_ASYNCNL);
                    b.add(16).cast::<libc::pid_t>().write(self.pid);
                    b.add(20).cast::<libc::uid_t>().write(libc::getuid());
                    b.add(24).cast::<*mut libc::c_void>().write(self.value);
                    libc::syscall(
                        libc::SYS_rt_sigqueueinfo,
                        self.pid,
                        self.signo,
                        &raw const info,
                    );
                }
            }
            libc::SIGEV_THREAD if self.function != 0 => {
                type Start = extern "C" fn(*mut libc::c_void) -> *mut libc::c_void;
                // SAFETY: sigev_notify_function takes a union sigval (pointer-sized, in
                // a register) as glibc calls it: as a thread's start routine.
                let start: Start = unsafe { std::mem::transmute::<usize, Start>(self.function) };
                // SAFETY: attr and tid are valid for the calls; the program's own
                // attributes are used when it gave some, else a detached thread.
                unsafe {
                    let mut tid: libc::pthread_t = 0;
                    let mut attr: libc::pthread_attr_t = std::mem::zeroed();
                    let mut pattr = self.attributes;
                    if pattr.is_null() {
                        libc::pthread_attr_init(&mut attr);
                        libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
                        pattr = &mut attr;
                    }
                    libc::pthread_create(&mut tid, pattr, start, self.value);
                    if self.attributes.is_null() {
                        libc::pthread_attr_destroy(&mut attr);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Requests of one `GAI_NOWAIT` call, worked on by helper threads.
struct Batch {
    reqs: Vec<usize>,
    next: AtomicUsize,
    left: AtomicUsize,
    notify: Notify,
}

// SAFETY: the raw pointers in `notify` are the program's, used only to call it back.
unsafe impl Send for Batch {}
// SAFETY: as above; the counters are atomics.
unsafe impl Sync for Batch {}

impl Batch {
    fn work(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::AcqRel);
            let Some(g) = self.reqs.get(i) else { return };
            // SAFETY: the program keeps its requests alive until they complete.
            unsafe { run_request(*g as *mut Gaicb) };
            if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
                self.notify.send();
            }
        }
    }
}

/// Starts up to 8 helper threads for `batch`, with every signal blocked (as glibc's
/// are), so none of the program's handlers runs in them. `false` if none started.
fn spawn_helpers(batch: std::sync::Arc<Batch>) -> bool {
    let n = batch.reqs.len().min(8);
    // SAFETY: sigset_t values are valid zeroed; masks are the calling thread's.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid sigset pointers.
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    let mut started = 0;
    for _ in 0..n {
        let b = batch.clone();
        if std::thread::Builder::new()
            .name("mifshim-gai".into())
            .spawn(move || b.work())
            .is_ok()
        {
            started += 1;
        }
    }
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, null_mut()) };
    started > 0
}

/// ## Hook
/// Replaces `getaddrinfo_a(3)`: glibc's helper threads call its internal
/// `getaddrinfo`, which no preload sees; here every request is the engine's own
/// `getaddrinfo` (steered), run in the caller's thread (`GAI_WAIT`) or in helper
/// threads (`GAI_NOWAIT`, the program notified as glibc notifies it).
pub unsafe extern "C" fn getaddrinfo_a(
    mode: c_int,
    list: *mut *mut libc::c_void,
    ent: c_int,
    sig: *mut libc::sigevent,
) -> c_int {
    let list = list.cast::<*mut Gaicb>();
    if !matches!(pre(gai::steered), Pre::Run(true)) {
        // SAFETY: the program's arguments, forwarded.
        return unsafe { real::getaddrinfo_a(mode, list.cast(), ent, sig) };
    }
    if mode != GAI_WAIT && mode != GAI_NOWAIT {
        sys::set_errno(libc::EINVAL);
        return libc::EAI_SYSTEM;
    }
    let n = usize::try_from(ent).unwrap_or(0);
    let reqs: Vec<usize> = (0..n)
        // SAFETY: list has ent entries (getaddrinfo_a(3)).
        .map(|i| unsafe { *list.add(i) } as usize)
        .filter(|p| *p != 0)
        .collect();
    for g in &reqs {
        // SAFETY: a live request of the program's.
        unsafe {
            (*(*g as *mut Gaicb)).ar_result = null_mut();
            state(*g as *mut Gaicb).store(EAI_INPROGRESS, Ordering::Release);
        }
    }
    // SAFETY: sig is NULL or the program's sigevent.
    let notify = unsafe { Notify::read(sig) };
    if mode == GAI_WAIT {
        for g in &reqs {
            // SAFETY: a live request of the program's.
            unsafe { run_request(*g as *mut Gaicb) };
        }
        return 0;
    }
    if reqs.is_empty() {
        notify.send();
        return 0;
    }
    let left = AtomicUsize::new(reqs.len());
    let batch = std::sync::Arc::new(Batch {
        reqs,
        next: AtomicUsize::new(0),
        left,
        notify,
    });
    if spawn_helpers(batch.clone()) {
        return 0;
    }
    for g in &batch.reqs {
        // SAFETY: a live request of the program's.
        unsafe { state(*g as *mut Gaicb).store(libc::EAI_AGAIN, Ordering::Release) };
    }
    libc::EAI_AGAIN
}

/// ## Hook
/// Replaces `gai_suspend(3)` for the engine's requests: waits until one of `list`
/// has completed, a signal arrives (`EAI_INTR`) or `timeout` passes (`EAI_AGAIN`).
pub unsafe extern "C" fn gai_suspend(
    list: *const *const libc::c_void,
    ent: c_int,
    timeout: *const libc::timespec,
) -> c_int {
    let list = list.cast::<*const Gaicb>();
    if !matches!(pre(gai::steered), Pre::Run(true)) {
        // SAFETY: the program's arguments, forwarded.
        return unsafe { real::gai_suspend(list.cast(), ent, timeout) };
    }
    let n = usize::try_from(ent).unwrap_or(0);
    let limit_ms = if timeout.is_null() {
        None
    } else {
        // SAFETY: the program's timespec (gai_suspend(3)).
        let t = unsafe { *timeout };
        Some(t.tv_sec.max(0) as u64 * 1000 + t.tv_nsec.max(0) as u64 / 1_000_000)
    };
    let start = sys::now_ms();
    loop {
        let seen = GAI_DONE.load(Ordering::Acquire);
        let states: Vec<Option<i32>> = (0..n)
            .map(|i| {
                // SAFETY: list has ent entries, each NULL or a live request.
                let g = unsafe { *list.add(i) };
                // SAFETY: as above.
                (!g.is_null()).then(|| unsafe { state(g.cast_mut()).load(Ordering::Acquire) })
            })
            .collect();
        if let Some(r) = gai::suspend_now(&states) {
            return r;
        }
        let left = match limit_ms {
            Some(l) => match l.checked_sub(sys::now_ms() - start) {
                Some(left) if left > 0 => Some(left),
                _ => return libc::EAI_AGAIN,
            },
            None => None,
        };
        let ts = left.map(|ms| libc::timespec {
            tv_sec: (ms / 1000) as libc::time_t,
            tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
        });
        let tsp = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: a futex wait on our own static word, with a valid (or no) timeout.
        let r = unsafe {
            libc::syscall(
                libc::SYS_futex,
                GAI_DONE.as_ptr(),
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                seen,
                tsp,
            )
        };
        if r != 0 && sys::errno() == libc::EINTR {
            return gai::EAI_INTR;
        }
    }
}

/// ## Hook
/// Replaces `gai_cancel(3)` for the engine's requests: a running lookup is not
/// cancelled (`EAI_NOTCANCELED`), a finished one is `EAI_ALLDONE`.
pub unsafe extern "C" fn gai_cancel(req: *mut libc::c_void) -> c_int {
    let req = req.cast::<Gaicb>();
    if !matches!(pre(gai::steered), Pre::Run(true)) {
        // SAFETY: the program's argument, forwarded.
        return unsafe { real::gai_cancel(req.cast()) };
    }
    // SAFETY: req is NULL or a request of the program's.
    let s = (!req.is_null()).then(|| unsafe { state(req).load(Ordering::Acquire) });
    gai::cancel(s)
}

#[cfg(test)]
mod tests {
    use crate::dns::name::{CASES, hnok, labels, pton};
    use std::ffi::CString;

    unsafe extern "C" {
        fn ns_name_pton(src: *const libc::c_char, dst: *mut u8, dstsiz: usize) -> libc::c_int;
        fn res_hnok(dn: *const libc::c_char) -> libc::c_int;
    }

    /// The pure name checks agree with this machine's C library on every case of the
    /// table (and on a few generated ones around the limits).
    #[test]
    fn name_checks_agree_with_the_c_library() {
        let mut texts: Vec<String> = CASES.iter().map(|c| c.0.to_string()).collect();
        for n in [61, 62, 63, 64] {
            texts.push(format!("{}.test", "z".repeat(n)));
            texts.push(format!(
                "{0}.{0}.{0}.{1}",
                "z".repeat(63),
                "z".repeat(n - 2)
            ));
            texts.push(format!(
                "{0}.{0}.{0}.{1}.",
                "z".repeat(63),
                "z".repeat(n - 2)
            ));
        }
        for t in &texts {
            let c = CString::new(t.as_bytes()).unwrap();
            let mut buf = [0u8; 255];
            // SAFETY: c is NUL-terminated; buf has the size passed.
            let r = unsafe { ns_name_pton(c.as_ptr(), buf.as_mut_ptr(), buf.len()) };
            let theirs = (r >= 0).then(|| {
                let len = labels(&buf).map(|l| l.len() + 1).sum::<usize>() + 1;
                (buf[..len].to_vec(), r == 1)
            });
            assert_eq!(pton(t.as_bytes()), theirs, "ns_name_pton({t:?})");
            // SAFETY: c is NUL-terminated.
            let ok = unsafe { res_hnok(c.as_ptr()) } != 0;
            assert_eq!(hnok(t.as_bytes()), ok, "res_hnok({t:?})");
        }
    }
}
