//! The Linux half of the boundary: the C types of the list and the no-std helpers
//! (errno, the coarse clock, anonymous memory, a destination's fast-path key).
//! Re-exported at the crate root.

pub use mifshim_fastpath as fastpath;

use core::ffi::{c_int, c_void};
use mifshim_fastpath::Key;

/// The C types the list's signatures name. A module that expands [`hooked_calls!`]
/// imports these (`use mifshim_abi::types::*;`).
pub mod types {
    pub use core::ffi::{c_char, c_int, c_uint, c_void};
    pub use libc::{
        FILE, addrinfo, hostent, mmsghdr, msghdr, sigevent, sockaddr, socklen_t, timespec,
    };
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
