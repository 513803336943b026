//! The boundary between `libmifshim.so` (the preloaded std-free stub, `preload/`) and
//! `libmifshim_engine.so` (the engine, `shim/`), written once:
//!
//! * [`hooked_calls!`]: **the one list of hooked C calls** — each call's name and C
//!   signature, what it returns when the C library lacks it, and how the stub routes it.
//!   Every table that names hooked calls is generated from it: the stub's exported hooks
//!   and its real-function slots (`preload/src/lib.rs`), the engine's real functions
//!   (`shim/src/sys/linux/real.rs`) and its entry points (`shim/src/sys/linux/mod.rs`),
//!   and, here, [`sig`], [`Reals`] and [`Hooks`]. A new hooked call is one line of the
//!   list plus its engine function; an engine function whose signature differs from the
//!   list's does not compile.
//! * [`Engine`]: the versioned `#[repr(C)]` interface the engine exports as one symbol
//!   ([`ENGINE_SYMBOL`]): a version and size the stub checks before it reads anything
//!   else, the engine's own entry points and one typed function pointer per hooked call.
//!   The stub hands the engine the C library's functions the same way ([`Reals`]).
//! * The few no-std helpers both sides need: errno, the coarse clock, anonymous memory,
//!   a destination's fast-path key, and the rule that says whether a process is steered.
//!
//! Nothing here allocates, locks or unwinds; the stub builds it with `panic = "abort"`.

#![cfg_attr(not(test), no_std)]

pub use mifshim_fastpath as fastpath;

use core::ffi::{c_char, c_int, c_void};
use core::marker::PhantomData;
use core::sync::atomic::{AtomicPtr, Ordering};
use mifshim_fastpath::{Key, Shared};

/// The C types the list's signatures name. A module that expands [`hooked_calls!`]
/// imports these (`use mifshim_abi::types::*;`).
pub mod types {
    pub use core::ffi::{c_char, c_int, c_uint, c_void};
    pub use libc::{
        FILE, addrinfo, hostent, mmsghdr, msghdr, sigevent, sockaddr, socklen_t, timespec,
    };
}

// ---------------------------------------------------------------------------------
// The list
// ---------------------------------------------------------------------------------

/// **The hooked calls.** Expands to `$callback! { <the list> }`; `$callback` is a
/// `macro_rules!` macro in scope at the call site that generates one table from it (see
/// the generators named in the crate doc). Each entry:
///
/// ```text
/// name(arg: type, ...) -> ret {
///     absent: <value>,   // returned, errno ENOSYS, when the C library has no `name`
///     stub: {            // how the stub (preload/) routes the call
///         load: <bool>,  // the call needs a decision: load the engine for it
///         fail: <value>, errno: <errno>,  // what it answers when that load failed
///         direct: <cond>,   // optional: go straight to the C library when true
///         then: <fn>,       // optional: the stub's bookkeeping after a direct call
///         after: <fn>,      // optional: after the call, whichever way it went
///         aliases: [<name>, ...],  // optional: other public names of the same function
///     }
/// };
/// ```
///
/// Names in `stub` and `absent` resolve where the list is expanded (the stub defines
/// `socket_direct`, `no_host`, …); a generator that has no use for a part ignores it.
/// Attributes written before an entry (`#[cfg(...)]`) go on everything generated for
/// it, so that a per-OS generator (the macOS `__DATA,__interpose` table) can leave out
/// what its C library lacks.
#[macro_export]
macro_rules! hooked_calls {
    ($callback:ident) => {
        $callback! {
            socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS, direct: socket_direct(domain), then: socket_done }
            };
            connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
                absent: -1,
                stub: { load: true, fail: -1, errno: libc::ENETUNREACH, aliases: [__connect] }
            };
            bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
                absent: -1,
                stub: { load: true, fail: -1, errno: libc::ENETUNREACH }
            };
            listen(fd: c_int, backlog: c_int) -> c_int {
                absent: -1,
                stub: { load: true, fail: -1, errno: libc::ENETUNREACH }
            };
            accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS }
            };
            accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS }
            };
            sendto(fd: c_int, buf: *const c_void, n: usize, flags: c_int, addr: *const sockaddr, len: socklen_t) -> isize {
                absent: -1,
                stub: { load: true, fail: -1, errno: libc::ENETUNREACH, direct: sendto_direct(fd, addr, len) }
            };
            sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> isize {
                absent: -1,
                stub: { load: true, fail: -1, errno: libc::ENETUNREACH, direct: sendmsg_direct(fd, msg), after: sendmsg_done }
            };
            sendmmsg(fd: c_int, msgs: *mut mmsghdr, vlen: c_uint, flags: c_int) -> c_int {
                absent: -1,
                stub: { load: true, fail: -1, errno: libc::ENETUNREACH, direct: sendmmsg_direct(fd, msgs, vlen), after: sendmmsg_done }
            };
            setsockopt(fd: c_int, level: c_int, name: c_int, val: *const c_void, len: socklen_t) -> c_int {
                absent: -1,
                stub: { load: true, fail: -1, errno: libc::ENETUNREACH }
            };
            close(fd: c_int) -> c_int {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS, direct: close_direct(fd), aliases: [__close] }
            };
            dup(fd: c_int) -> c_int {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS }
            };
            dup2(old: c_int, new: c_int) -> c_int {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS, aliases: [__dup2] }
            };
            dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS }
            };
            recvfrom(fd: c_int, buf: *mut c_void, n: usize, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> isize {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS, direct: not_redirected(fd) }
            };
            recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> isize {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS, direct: not_redirected(fd), then: recvmsg_done }
            };
            recvmmsg(fd: c_int, msgs: *mut mmsghdr, vlen: c_uint, flags: c_int, timeout: *mut timespec) -> c_int {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS, direct: not_redirected(fd), then: recvmmsg_done }
            };
            getpeername(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS, direct: not_redirected(fd) }
            };
            // The third argument passed on as the register it came in (every command
            // takes at most one, an integer or a pointer; on the Linux ABIs built for,
            // a variadic argument is passed like a fixed one).
            fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS, direct: !is_dup_cmd(cmd), aliases: [__fcntl] }
            };
            fcntl64(fd: c_int, cmd: c_int, arg: usize) -> c_int {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS, direct: !is_dup_cmd(cmd) }
            };
            close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS }
            };
            closefrom(lowfd: c_int) -> () {
                absent: (),
                stub: { load: false, fail: (), errno: libc::ENOSYS }
            };
            fclose(stream: *mut FILE) -> c_int {
                absent: libc::EOF,
                stub: { load: false, fail: libc::EOF, errno: libc::ENOSYS }
            };
            getaddrinfo(node: *const c_char, service: *const c_char, hints: *const addrinfo, res: *mut *mut addrinfo) -> c_int {
                absent: libc::EAI_SYSTEM,
                stub: { load: true, fail: EAI_FAIL, errno: 0 }
            };
            freeaddrinfo(ai: *mut addrinfo) -> () {
                absent: (),
                stub: { load: false, fail: (), errno: 0 }
            };
            getnameinfo(sa: *const sockaddr, salen: socklen_t, host: *mut c_char, hostlen: socklen_t, serv: *mut c_char, servlen: socklen_t, flags: c_int) -> c_int {
                absent: libc::EAI_SYSTEM,
                stub: { load: true, fail: EAI_FAIL, errno: 0 }
            };
            gethostbyname(name: *const c_char) -> *mut hostent {
                absent: core::ptr::null_mut(),
                stub: { load: true, fail: no_host(), errno: 0 }
            };
            gethostbyname2(name: *const c_char, af: c_int) -> *mut hostent {
                absent: core::ptr::null_mut(),
                stub: { load: true, fail: no_host(), errno: 0 }
            };
            gethostbyname_r(name: *const c_char, ret: *mut hostent, buf: *mut c_char, len: usize, result: *mut *mut hostent, h_errnop: *mut c_int) -> c_int {
                absent: libc::ENOSYS,
                stub: { load: true, fail: no_host_r(result, h_errnop), errno: 0 }
            };
            gethostbyname2_r(name: *const c_char, af: c_int, ret: *mut hostent, buf: *mut c_char, len: usize, result: *mut *mut hostent, h_errnop: *mut c_int) -> c_int {
                absent: libc::ENOSYS,
                stub: { load: true, fail: no_host_r(result, h_errnop), errno: 0 }
            };
            gethostbyaddr(addr: *const c_void, len: socklen_t, af: c_int) -> *mut hostent {
                absent: core::ptr::null_mut(),
                stub: { load: true, fail: no_host(), errno: 0 }
            };
            gethostbyaddr_r(addr: *const c_void, len: socklen_t, af: c_int, ret: *mut hostent, buf: *mut c_char, buflen: usize, result: *mut *mut hostent, h_errnop: *mut c_int) -> c_int {
                absent: libc::ENOSYS,
                stub: { load: true, fail: no_host_r(result, h_errnop), errno: 0 }
            };
            // The `gaicb` requests as untyped pointers: the engine reads them as its own
            // `Gaicb` (glibc's layout).
            getaddrinfo_a(mode: c_int, list: *mut *mut c_void, ent: c_int, sig: *mut sigevent) -> c_int {
                absent: libc::EAI_SYSTEM,
                stub: { load: true, fail: EAI_SYSTEM, errno: libc::ENETUNREACH }
            };
            gai_suspend(list: *const *const c_void, ent: c_int, timeout: *const timespec) -> c_int {
                absent: libc::EAI_SYSTEM,
                stub: { load: false, fail: EAI_SYSTEM, errno: libc::ENOSYS }
            };
            gai_cancel(req: *mut c_void) -> c_int {
                absent: libc::EAI_SYSTEM,
                stub: { load: false, fail: EAI_SYSTEM, errno: libc::ENOSYS }
            };
            res_query(dname: *const c_char, class: c_int, ty: c_int, answer: *mut u8, anslen: c_int) -> c_int {
                absent: -1,
                stub: { load: true, fail: no_res(), errno: libc::ENETUNREACH, aliases: [__res_query] }
            };
            res_search(dname: *const c_char, class: c_int, ty: c_int, answer: *mut u8, anslen: c_int) -> c_int {
                absent: -1,
                stub: { load: true, fail: no_res(), errno: libc::ENETUNREACH, aliases: [__res_search] }
            };
            res_querydomain(name: *const c_char, domain: *const c_char, class: c_int, ty: c_int, answer: *mut u8, anslen: c_int) -> c_int {
                absent: -1,
                stub: { load: true, fail: no_res(), errno: libc::ENETUNREACH, aliases: [__res_querydomain] }
            };
            res_send(msg: *const u8, msglen: c_int, answer: *mut u8, anslen: c_int) -> c_int {
                absent: -1,
                stub: { load: true, fail: no_res(), errno: libc::ENETUNREACH, aliases: [__res_send] }
            };
            res_nquery(statp: *mut c_void, dname: *const c_char, class: c_int, ty: c_int, answer: *mut u8, anslen: c_int) -> c_int {
                absent: -1,
                stub: { load: true, fail: no_res(), errno: libc::ENETUNREACH, aliases: [__res_nquery] }
            };
            res_nsearch(statp: *mut c_void, dname: *const c_char, class: c_int, ty: c_int, answer: *mut u8, anslen: c_int) -> c_int {
                absent: -1,
                stub: { load: true, fail: no_res(), errno: libc::ENETUNREACH, aliases: [__res_nsearch] }
            };
            res_nquerydomain(statp: *mut c_void, name: *const c_char, domain: *const c_char, class: c_int, ty: c_int, answer: *mut u8, anslen: c_int) -> c_int {
                absent: -1,
                stub: { load: true, fail: no_res(), errno: libc::ENETUNREACH, aliases: [__res_nquerydomain] }
            };
            res_nsend(statp: *mut c_void, msg: *const u8, msglen: c_int, answer: *mut u8, anslen: c_int) -> c_int {
                absent: -1,
                stub: { load: true, fail: no_res(), errno: libc::ENETUNREACH, aliases: [__res_nsend] }
            };
        }
    };
}

// ---------------------------------------------------------------------------------
// What the list makes here: one type per signature, the two tables of the interface
// ---------------------------------------------------------------------------------

macro_rules! tables {
    ($( $(#[$m:meta])* $name:ident ( $($a:ident : $t:ty),* ) -> $r:ty { $($rest:tt)* }; )*) => {
        /// One function-pointer type per hooked call, named after it: its C signature.
        #[allow(non_camel_case_types)]
        pub mod sig {
            use super::types::*;
            $( $(#[$m])* pub type $name = unsafe extern "C" fn($($t),*) -> $r; )*
        }

        /// The C library's functions, as the stub found them (`dlsym(RTLD_NEXT)`), handed
        /// to the engine at [`Engine::init`]; `None` where the C library has none.
        #[repr(C)]
        #[derive(Clone, Copy)]
        pub struct Reals {
            $( $(#[$m])* pub $name: Option<sig::$name>, )*
        }

        /// The engine's entry point for every hooked call (the stub forwards to them).
        #[repr(C)]
        #[derive(Clone, Copy)]
        pub struct Hooks {
            $( $(#[$m])* pub $name: sig::$name, )*
        }

        /// The hooked calls' names, in the list's order (for tests and diagnostics).
        pub const NAMES: &[&str] = &[$( $(#[$m])* stringify!($name), )*];
    };
}

hooked_calls!(tables);

// ---------------------------------------------------------------------------------
// The interface
// ---------------------------------------------------------------------------------

/// Bumped whenever [`Engine`] (or [`Reals`], [`Hooks`]: the list) changes in a way its
/// size may not show. The stub refuses an engine of another version.
pub const ABI_VERSION: u32 = 1;

/// The symbol under which the engine exports its [`Engine`] (NUL-terminated).
pub const ENGINE_SYMBOL: &core::ffi::CStr = c"mifshim_engine";

/// [`Engine::init`]: `(reals, argv0) -> 0 on success`.
pub type Init = unsafe extern "C" fn(reals: *const Reals, argv0: *const c_char) -> c_int;
/// [`Engine::after_fork_child`].
pub type AfterForkChild = unsafe extern "C" fn();
/// [`Engine::jumping`]: `(env)`.
pub type Jumping = unsafe extern "C" fn(env: *const c_void);
/// [`Engine::readable`]: `(p, len) -> readable`.
pub type Readable = unsafe extern "C" fn(p: *const c_void, len: usize) -> bool;

/// What the engine exports (one `static`, [`ENGINE_SYMBOL`]) and the stub binds. Its
/// first two fields keep their place in every version, so a stub reads them from an
/// engine of any build before it trusts the rest.
#[repr(C)]
pub struct Engine {
    /// [`ABI_VERSION`].
    pub version: u32,
    /// `size_of::<Engine>()` as the engine was built.
    pub size: u32,
    /// The per-fd table the stub's fast paths read (`mifshim_fastpath`); its own
    /// `layout` field is checked too.
    pub fast: *const Shared,
    /// Called once, right after the `dlopen` and before any hook is forwarded: installs
    /// the C library's functions and reads the environment and the policy. `argv0` is
    /// the program's `argv[0]` as the stub's constructor saw it (may be NULL). 0 on
    /// success.
    pub init: Init,
    /// The stub's `pthread_atfork` child handler (and its `_Fork`/`clone` children):
    /// clears what a thread of the parent held.
    pub after_fork_child: AfterForkChild,
    /// Before a `longjmp` family jump to `env`: closes a hook window the jump leaves.
    pub jumping: Jumping,
    /// Whether `len` bytes at `p` may be read without faulting.
    pub readable: Readable,
    /// The hooked calls.
    pub hooks: Hooks,
}

// SAFETY: `Engine` is immutable after it is built (a `static`); `fast` points to the
// engine's static table of atomics, which is `Sync`.
unsafe impl Sync for Engine {}

impl Engine {
    /// This build's `size`.
    pub const SIZE: u32 = size_of::<Engine>() as u32;

    /// Whether the engine at `p` (what `dlsym` found for [`ENGINE_SYMBOL`]) speaks this
    /// build's interface: its version and size, and its table's layout.
    ///
    /// # Safety
    /// `p` is NULL or points to a `mifshim_engine` symbol of some engine build: at least
    /// its first two `u32`s are readable (they are in every version), and when those
    /// match, the whole `Engine` of this build and the table it points to are.
    pub unsafe fn check(p: *const Engine) -> Option<&'static Engine> {
        if p.is_null() {
            return None;
        }
        // SAFETY: the caller's contract: the first two fields are readable in every
        // version; only when they match is the rest read as this build's layout.
        let (version, size) = unsafe { ((*p).version, (*p).size) };
        if version != ABI_VERSION || size != Self::SIZE {
            return None;
        }
        // SAFETY: as above: the version and size are this build's.
        let e = unsafe { &*p };
        // SAFETY: `fast` is NULL or the engine's static table; `layout` is its first
        // field in every version.
        if e.fast.is_null() || unsafe { (*e.fast).layout } != mifshim_fastpath::LAYOUT {
            return None;
        }
        Some(e)
    }

    /// The per-fd table.
    pub fn shared(&self) -> &'static Shared {
        // SAFETY: `check` found it non-NULL; it is the engine's static table, and the
        // engine is never unloaded.
        unsafe { &*self.fast }
    }
}

// ---------------------------------------------------------------------------------
// Typed function slots
// ---------------------------------------------------------------------------------

/// Function-pointer types (`unsafe extern "C" fn(..) -> R`): what a [`Slot`] may hold.
///
/// # Safety
/// Implemented only for function-pointer types (pointer-sized, never NULL).
pub unsafe trait FnPtr: Copy {}

macro_rules! fn_ptr_impls {
    ($( ($($a:ident),*) )*) => {$(
        // SAFETY: a function pointer.
        unsafe impl<R, $($a),*> FnPtr for unsafe extern "C" fn($($a),*) -> R {}
    )*};
}

fn_ptr_impls! {
    () (A) (A, B) (A, B, C) (A, B, C, D) (A, B, C, D, E) (A, B, C, D, E, F)
    (A, B, C, D, E, F, G) (A, B, C, D, E, F, G, H)
}

/// One function pointer of type `F`, set once and read by any thread (an `AtomicPtr`:
/// no lock, async-signal-safe). The type is the call's [`sig`], so what is stored and
/// what is called have the one signature the list gives.
pub struct Slot<F: FnPtr> {
    p: AtomicPtr<c_void>,
    _f: PhantomData<F>,
}

impl<F: FnPtr> Slot<F> {
    const SIZE_OK: () = assert!(size_of::<F>() == size_of::<*mut c_void>());

    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::SIZE_OK;
        Slot {
            p: AtomicPtr::new(core::ptr::null_mut()),
            _f: PhantomData,
        }
    }

    /// The function, if set.
    #[inline(always)]
    pub fn get(&self) -> Option<F> {
        let p = self.p.load(Ordering::Acquire);
        if p.is_null() {
            None
        } else {
            // SAFETY: p was stored by `set` (an `F`) or `set_raw` (whose caller vouches
            // that it is an `F`); F is a pointer-sized function pointer (`FnPtr`).
            Some(unsafe { core::mem::transmute_copy::<*mut c_void, F>(&p) })
        }
    }

    /// Whether it is set.
    #[inline(always)]
    pub fn is_set(&self) -> bool {
        !self.p.load(Ordering::Acquire).is_null()
    }

    #[inline(always)]
    pub fn set(&self, f: Option<F>) {
        let p = match f {
            // SAFETY: F is a pointer-sized function pointer (`FnPtr`).
            Some(f) => unsafe { core::mem::transmute_copy::<F, *mut c_void>(&f) },
            None => core::ptr::null_mut(),
        };
        self.p.store(p, Ordering::Release);
    }

    /// Stores an address found by name (`dlsym`).
    ///
    /// # Safety
    /// `p` is NULL or the address of a function whose C signature is `F`.
    #[inline(always)]
    pub unsafe fn set_raw(&self, p: *mut c_void) {
        self.p.store(p, Ordering::Release);
    }
}

// ---------------------------------------------------------------------------------
// Helpers both sides use
// ---------------------------------------------------------------------------------

/// This thread's errno.
#[inline(always)]
pub fn errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno slot, valid for the
    // thread's lifetime.
    unsafe { *libc::__errno_location() }
}

/// Sets this thread's errno.
#[inline(always)]
pub fn set_errno(e: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = e }
}

/// How the caller reaches `clock_gettime(2)` (the stub: found by `dlsym`; the engine:
/// the C library's, linked).
pub type ClockGettime = unsafe extern "C" fn(libc::clockid_t, *mut libc::timespec) -> c_int;

/// `CLOCK_MONOTONIC_COARSE` in milliseconds through `clock_gettime` (the vDSO where
/// there is one: no system call, async-signal-safe); `None` if it cannot be read (which
/// may have set errno: a caller that must keep errno saves it around the call).
#[inline(always)]
pub fn coarse_now_ms(clock_gettime: ClockGettime) -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is valid for writes; the clock id is a constant the kernel knows.
    if unsafe { clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) } != 0 {
        return None;
    }
    Some(ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000)
}

/// How the caller reaches `mmap(2)`.
pub type Mmap =
    unsafe extern "C" fn(*mut c_void, usize, c_int, c_int, c_int, libc::off_t) -> *mut c_void;

/// A new anonymous, private, zeroed mapping of `len` bytes (the per-fd table's chunks:
/// no `malloc` on paths that may run in a signal handler or after `fork`).
#[inline]
pub fn map_zeroed(mmap: Mmap, len: usize) -> Option<*mut u8> {
    // SAFETY: a new anonymous private mapping; no existing memory is touched.
    let p = unsafe {
        mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    (p != libc::MAP_FAILED).then_some(p.cast())
}

/// The most messages the kernel takes in one `sendmmsg`/`recvmmsg`, and `iovec`s in
/// one message (`UIO_MAXIOV`).
pub const UIO_MAXIOV: usize = 1024;

/// The fast path's key of the destination a program wrote (`None`: not a plain
/// INET/INET6 address, so never fast). Fixed-size unaligned reads (no `memcpy` call:
/// C callers may pass any alignment).
///
/// # Safety
/// `addr` is NULL or points to `len` readable bytes (sendto(2)/sendmsg(2)'s contract).
#[inline(always)]
pub unsafe fn key_at(addr: *const libc::sockaddr, len: libc::socklen_t) -> Option<Key> {
    if addr.is_null() || len < 2 {
        return None;
    }
    // SAFETY: the caller's contract; len >= 2.
    let family = unsafe { core::ptr::read_unaligned(addr.cast::<u16>()) };
    match (family as c_int, len) {
        (libc::AF_INET, 16..) => {
            // SAFETY: as above; len >= 16.
            let b = unsafe { core::ptr::read_unaligned(addr.cast::<[u8; 16]>()) };
            mifshim_fastpath::key_of(&b)
        }
        (libc::AF_INET6, 28..) => {
            // SAFETY: as above; len >= 28.
            let b = unsafe { core::ptr::read_unaligned(addr.cast::<[u8; 28]>()) };
            mifshim_fastpath::key_of(&b)
        }
        (libc::AF_INET6, 24..) => {
            // SAFETY: as above; len >= 24 (the RFC 2133 layout).
            let b = unsafe { core::ptr::read_unaligned(addr.cast::<[u8; 24]>()) };
            mifshim_fastpath::key_of(&b)
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------
// Is this process steered?
// ---------------------------------------------------------------------------------

/// The variables that decide whether a process is steered.
pub mod env {
    pub const DISABLE: &str = "MIFSHIM_DISABLE";
    pub const VIA: &str = "MIFSHIM_VIA";
    pub const POLICY: &str = "MIFSHIM_POLICY";
    pub const XDG_CONFIG_HOME: &str = "XDG_CONFIG_HOME";
    pub const HOME: &str = "HOME";
}

/// The user's policy file, under `$XDG_CONFIG_HOME` …
pub const POLICY_UNDER_XDG: &str = "/mifshim/policy.toml";
/// … or, without it, under `$HOME`.
pub const POLICY_UNDER_HOME: &str = "/.config/mifshim/policy.toml";
/// The system's policy file.
pub const SYSTEM_POLICY: &str = "/etc/mifshim/policy.toml";

/// What the variables say (each given as its value, `None` when unset or empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Steering {
    /// `MIFSHIM_DISABLE=1`.
    Off,
    /// `MIFSHIM_VIA` or `MIFSHIM_POLICY` is set.
    On,
    /// Steered if a policy file exists (the user's, see [`POLICY_UNDER_XDG`], then
    /// [`SYSTEM_POLICY`]).
    IfPolicyFile,
}

/// The rule the stub applies at start-up and the engine applies again when it loads:
/// `MIFSHIM_DISABLE=1` no; `MIFSHIM_VIA` or `MIFSHIM_POLICY` yes; otherwise a policy
/// file decides.
#[inline]
pub fn steering(disable: Option<&[u8]>, via_set: bool, policy_set: bool) -> Steering {
    if disable == Some(b"1") {
        Steering::Off
    } else if via_set || policy_set {
        Steering::On
    } else {
        Steering::IfPolicyFile
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steering_follows_the_variables() {
        assert_eq!(steering(Some(b"1"), true, true), Steering::Off);
        assert_eq!(steering(Some(b"0"), true, false), Steering::On);
        assert_eq!(steering(Some(b"1 "), false, true), Steering::On);
        assert_eq!(steering(None, false, false), Steering::IfPolicyFile);
    }

    #[test]
    fn every_hooked_call_has_a_slot_in_both_tables() {
        assert_eq!(NAMES.len(), 43);
        let ptr = size_of::<usize>();
        assert_eq!(size_of::<Reals>(), NAMES.len() * ptr);
        assert_eq!(size_of::<Hooks>(), NAMES.len() * ptr);
        let mut sorted: [&str; 43] = [""; 43];
        sorted.copy_from_slice(NAMES);
        sorted.sort_unstable();
        assert!(
            sorted.windows(2).all(|w| w[0] != w[1]),
            "a call listed twice"
        );
    }

    #[test]
    fn a_slot_gives_back_what_it_was_given() {
        unsafe extern "C" fn seven(_: c_int) -> c_int {
            7
        }
        let s: Slot<sig::close> = Slot::new();
        assert!(s.get().is_none());
        s.set(Some(seven));
        // SAFETY: seven has no preconditions.
        assert_eq!(unsafe { s.get().unwrap()(3) }, 7);
        s.set(None);
        assert!(!s.is_set());
    }

    #[test]
    fn key_at_reads_inet_and_inet6_addresses_only() {
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 53u16.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from_be_bytes([198, 51, 100, 1]).to_be(),
            },
            sin_zero: [0; 8],
        };
        let p = (&raw const sin).cast::<libc::sockaddr>();
        // SAFETY: sin is 16 readable bytes.
        assert!(unsafe { key_at(p, 16) }.is_some());
        // SAFETY: as above; shorter lengths read less.
        assert!(unsafe { key_at(p, 15) }.is_none());
        // SAFETY: NULL is allowed.
        assert!(unsafe { key_at(core::ptr::null(), 16) }.is_none());
    }
}
