//! The macOS half of the boundary: the C types of the list (the calls macOS's C
//! library lacks are `#[cfg]`'d out of it) and errno. Re-exported at the crate root.
//!
//! Not here: the Linux helpers of the stub's datagram fast path (`key_at`, the coarse
//! clock, anonymous memory): they read Linux's `sockaddr` layout (a 16-bit family,
//! where macOS has `sa_len` and an 8-bit family) and the fast path is not built on
//! macOS.

pub use mifshim_fastpath as fastpath;

use core::ffi::c_int;

/// The C types the list's signatures name. A module that expands
/// [`hooked_calls!`](crate::hooked_calls) imports these (`use mifshim_abi::types::*;`).
pub mod types {
    pub use core::ffi::{c_char, c_int, c_uint, c_void};
    pub use libc::{FILE, addrinfo, hostent, msghdr, sockaddr, socklen_t};
}

/// This thread's errno.
#[inline(always)]
pub fn errno() -> c_int {
    // SAFETY: __error returns this thread's errno slot, valid for the thread's
    // lifetime.
    unsafe { *libc::__error() }
}

/// Sets this thread's errno.
#[inline(always)]
pub fn set_errno(e: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__error() = e }
}
