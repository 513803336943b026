//! The few process primitives the engine's shared modules (`log`, `fdtable`,
//! `netstate`, `state`, `sys::sync`) take from `sys`, with the names and contracts of the Linux
//! ones (`sys/linux/mod.rs`), over libSystem.
//!
//! `write_all` and `open_log` call the C library's `write$NOCANCEL` and
//! `open$NOCANCEL` (`ffi::nocancel`), so that no hook meets a cancellation point
//! through them (Linux's are raw system calls, for the same reason).

use std::mem::zeroed;

use libc::c_int;

/// This thread's errno, read and set as the stub does (`mifshim_abi`).
pub(crate) use mifshim_abi::{errno, set_errno};

/// Darwin's `PTHREAD_CANCEL_ENABLE` and `PTHREAD_CANCEL_DISABLE` (`<pthread.h>`:
/// 0x01 and 0x00, glibc's the other way round), for `sys::guard`.
pub(crate) const PTHREAD_CANCEL_ENABLE: c_int = 0x01;
pub(crate) const PTHREAD_CANCEL_DISABLE: c_int = 0x00;
/// Every pthread key's slot is in the thread's own TSD array on Darwin (at most
/// `PTHREAD_KEYS_MAX`, 512): reading and writing it is a plain load and store, no
/// allocation (`sys::guard`).
pub(crate) const KEYS_IN_DESCRIPTOR: u32 = 512;

pub(crate) const ENETUNREACH: c_int = libc::ENETUNREACH;
pub(crate) const EACCES: c_int = libc::EACCES;
pub(crate) const ENXIO: c_int = libc::ENXIO;

/// Symbolic name of an errno value, for logs (the Linux list; the numbers are
/// macOS's).
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
        _ => "errno",
    }
}

/// Runs `f` with every signal blocked on this thread (the mask and errno restored
/// after, also when `f` panics).
pub(crate) fn with_signals_blocked<T>(f: impl FnOnce() -> T) -> T {
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

/// Whether the calling thread runs on its alternate signal stack.
pub(crate) fn on_alt_stack() -> bool {
    alt_stack_range().is_some()
}

/// The address range of the alternate signal stack the calling thread runs on, if it
/// runs on one (`sigaltstack` with no new stack: a query).
pub(crate) fn alt_stack_range() -> Option<std::ops::Range<usize>> {
    // SAFETY: a zeroed stack_t is valid; sigaltstack only writes the old one.
    let mut ss: libc::stack_t = unsafe { zeroed() };
    // SAFETY: NULL new stack: a query only.
    let r = unsafe { libc::sigaltstack(std::ptr::null(), &mut ss) };
    (r == 0 && ss.ss_flags & libc::SS_ONSTACK != 0)
        .then(|| ss.ss_sp as usize..ss.ss_sp as usize + ss.ss_size)
}

/// The stack pointer a `longjmp` to `env` will restore: not known on macOS (its
/// `jmp_buf` layout is not read here), so `sys::guard` takes every jump the stub
/// reports to leave the thread's window.
pub(crate) fn jmp_target_sp(_env: *const std::ffi::c_void) -> Option<usize> {
    None
}

pub(crate) fn getpid() -> i32 {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() }
}

/// Monotonic clock in milliseconds (`CLOCK_MONOTONIC`, read from the commpage: no
/// system call); 0 if it cannot be read. Errno kept.
#[inline]
pub(crate) fn now_ms() -> u64 {
    let saved = errno();
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is valid for writes.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } == 0;
    set_errno(saved);
    if ok {
        ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
    } else {
        0
    }
}

/// Writes all of `buf` to `fd` (retrying EINTR and short writes), keeping errno.
pub(crate) fn write_all(fd: c_int, mut buf: &[u8]) -> bool {
    let saved = errno();
    let mut ok = true;
    let mut tries = 0;
    while !buf.is_empty() && tries < 8 {
        tries += 1;
        // SAFETY: buf is a valid slice.
        let n = unsafe { super::nocancel::write(fd, buf.as_ptr().cast(), buf.len()) };
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

/// Opens the log file for appending, never blocking (the flags and reasons of the
/// Linux `open_log`). `Err`: the errno.
pub(crate) fn open_log(path: &std::ffi::CStr) -> Result<c_int, c_int> {
    let flags = libc::O_WRONLY
        | libc::O_APPEND
        | libc::O_CREAT
        | libc::O_CLOEXEC
        | libc::O_NONBLOCK
        | libc::O_NOCTTY;
    // SAFETY: path is NUL-terminated; the mode is passed as the variadic argument.
    let fd = unsafe { super::nocancel::open(path.as_ptr(), flags, 0o644 as libc::c_uint) };
    if fd >= 0 { Ok(fd) } else { Err(errno()) }
}

/// An anonymous zeroed mapping of `len` bytes (the fd table's chunks).
pub(crate) fn map_zeroed(len: usize) -> Option<*mut u8> {
    // SAFETY: a new anonymous private mapping; no existing memory is touched.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANON,
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

/// The program's executable (`_NSGetExecutablePath` through std); empty if unknown.
pub(crate) fn exe_path() -> String {
    std::env::current_exe()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}
