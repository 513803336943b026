//! The functions behind the hooks: the C library's, as the preloaded stub found them
//! with `dlsym(RTLD_NEXT)` and handed them over in [`install`] (from inside this
//! `dlopen`ed library, `RTLD_NEXT` would find the stub's own hooks first).
//!
//! Every pointer is installed before the engine runs any hook and kept in an
//! `AtomicPtr`, so a hook never takes a lock or calls `dlsym`. A function the stub could
//! not provide makes the call fail with `ENOSYS` instead of panicking.

use libc::{c_int, c_uint, c_void, sockaddr, socklen_t};
use std::sync::atomic::{AtomicPtr, Ordering};

macro_rules! real_fns {
    ($( $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty = $fail:expr; )*) => {
        // One slot per function, named after it.
        #[allow(non_upper_case_globals)]
        mod slot {
            use super::*;
            $( pub(super) static $name: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut()); )*
        }

        /// Stores the pointer the stub found for `name` (a C function name).
        pub(crate) fn install(name: &[u8], p: *mut c_void) {
            $( if name == stringify!($name).as_bytes() { slot::$name.store(p, Ordering::Release); return; } )*
        }

        $(
            /// Calls the real function (the next definition after this library).
            ///
            /// # Safety
            /// The same contract as the C function of that name.
            #[allow(clippy::too_many_arguments)] // the C signature (gethostbyaddr_r)
            pub(crate) unsafe fn $name($($arg: $ty),*) -> $ret {
                let p = slot::$name.load(Ordering::Acquire);
                if p.is_null() {
                    super::set_errno(libc::ENOSYS);
                    return $fail;
                }
                // SAFETY: p was returned by dlsym for this symbol name, whose C type is
                // the signature declared here (checked against glibc's prototypes).
                let f: unsafe extern "C" fn($($ty),*) -> $ret = unsafe { std::mem::transmute(p) };
                // SAFETY: forwarded from this function's own contract.
                unsafe { f($($arg),*) }
            }
        )*
    };
}

/// The unit return of `void` functions, spelled so the macro can name it.
type NoValue = ();
#[allow(non_upper_case_globals)]
const NoValue: NoValue = ();

real_fns! {
    socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int = -1;
    connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int = -1;
    bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int = -1;
    listen(fd: c_int, backlog: c_int) -> c_int = -1;
    accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int = -1;
    accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int = -1;
    sendto(fd: c_int, buf: *const c_void, n: usize, flags: c_int, addr: *const sockaddr, len: socklen_t) -> isize = -1;
    sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> isize = -1;
    sendmmsg(fd: c_int, msgs: *mut libc::mmsghdr, vlen: c_uint, flags: c_int) -> c_int = -1;
    setsockopt(fd: c_int, level: c_int, name: c_int, val: *const c_void, len: socklen_t) -> c_int = -1;
    close(fd: c_int) -> c_int = -1;
    recvfrom(fd: c_int, buf: *mut c_void, n: usize, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> isize = -1;
    recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> isize = -1;
    recvmmsg(fd: c_int, msgs: *mut libc::mmsghdr, vlen: c_uint, flags: c_int, timeout: *mut libc::timespec) -> c_int = -1;
    getpeername(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int = -1;
    dup(fd: c_int) -> c_int = -1;
    dup2(old: c_int, new: c_int) -> c_int = -1;
    dup3(old: c_int, new: c_int, flags: c_int) -> c_int = -1;
    getaddrinfo(node: *const libc::c_char, service: *const libc::c_char, hints: *const libc::addrinfo, res: *mut *mut libc::addrinfo) -> c_int = libc::EAI_SYSTEM;
    getnameinfo(sa: *const sockaddr, salen: socklen_t, host: *mut libc::c_char, hostlen: socklen_t, serv: *mut libc::c_char, servlen: socklen_t, flags: c_int) -> c_int = libc::EAI_SYSTEM;
    freeaddrinfo(ai: *mut libc::addrinfo) -> NoValue = NoValue;
    fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int = -1;
    fcntl64(fd: c_int, cmd: c_int, arg: usize) -> c_int = -1;
    close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int = -1;
    closefrom(lowfd: c_int) -> NoValue = NoValue;
    fclose(stream: *mut libc::FILE) -> c_int = libc::EOF;
    getaddrinfo_a(mode: c_int, list: *mut *mut c_void, ent: c_int, sig: *mut libc::sigevent) -> c_int = libc::EAI_SYSTEM;
    gai_suspend(list: *const *const c_void, ent: c_int, timeout: *const libc::timespec) -> c_int = libc::EAI_SYSTEM;
    gai_cancel(req: *mut c_void) -> c_int = libc::EAI_SYSTEM;
    res_query(dname: *const libc::c_char, class: c_int, ty: c_int, answer: *mut u8, anslen: c_int) -> c_int = -1;
    res_search(dname: *const libc::c_char, class: c_int, ty: c_int, answer: *mut u8, anslen: c_int) -> c_int = -1;
    res_querydomain(name: *const libc::c_char, domain: *const libc::c_char, class: c_int, ty: c_int, answer: *mut u8, anslen: c_int) -> c_int = -1;
    res_send(msg: *const u8, msglen: c_int, answer: *mut u8, anslen: c_int) -> c_int = -1;
    res_nquery(statp: *mut c_void, dname: *const libc::c_char, class: c_int, ty: c_int, answer: *mut u8, anslen: c_int) -> c_int = -1;
    res_nsearch(statp: *mut c_void, dname: *const libc::c_char, class: c_int, ty: c_int, answer: *mut u8, anslen: c_int) -> c_int = -1;
    res_nquerydomain(statp: *mut c_void, name: *const libc::c_char, domain: *const libc::c_char, class: c_int, ty: c_int, answer: *mut u8, anslen: c_int) -> c_int = -1;
    res_nsend(statp: *mut c_void, msg: *const u8, msglen: c_int, answer: *mut u8, anslen: c_int) -> c_int = -1;
    gethostbyaddr_r(addr: *const c_void, len: socklen_t, af: c_int, ret: *mut libc::hostent, buf: *mut libc::c_char, buflen: usize, result: *mut *mut libc::hostent, h_errnop: *mut c_int) -> c_int = libc::ENOSYS;
    gethostbyname2_r(name: *const libc::c_char, af: c_int, ret: *mut libc::hostent, buf: *mut libc::c_char, len: usize, result: *mut *mut libc::hostent, h_errnop: *mut c_int) -> c_int = libc::ENOSYS;
}
