//! The events file's primitives (`crate::events`), with the names and contracts of
//! the Linux `sys::rawio`, over libSystem: the C library's `open`, `fstat`,
//! `write$NOCANCEL` (`ffi::nocancel`: no cancellation point, as Linux's raw system
//! calls are none), `clock_gettime`, `getpid`.

use libc::c_int;

use super::base::{errno, set_errno};

/// `open(path, O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC|O_NONBLOCK|O_NOCTTY, 0644)`, as the
/// log file is opened. `Err`: the errno. Keeps errno.
pub(crate) fn open_append(path: &std::ffi::CStr) -> Result<c_int, c_int> {
    let saved = errno();
    let r = super::base::open_log(path);
    set_errno(saved);
    r
}

/// The identity of the open file behind `fd` (device, inode): `None` when `fd` is
/// not open.
pub(crate) fn file_id(fd: c_int) -> Option<(u64, u64)> {
    let saved = errno();
    // SAFETY: zero is a valid `struct stat`.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is valid for writes of one `struct stat`, which fstat fills.
    let r = unsafe { libc::fstat(fd, &mut st) };
    set_errno(saved);
    (r == 0).then_some((st.st_dev as u64, st.st_ino))
}

/// One `write(2)` of all of `buf`, retried only on `EINTR`; a short or failed write is
/// given up, never resumed, so that a line is never split. Keeps errno.
pub(crate) fn write_once(fd: c_int, buf: &[u8]) -> bool {
    let saved = errno();
    let mut ok = false;
    for _ in 0..4 {
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the call.
        let n = unsafe { super::nocancel::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n >= 0 {
            ok = n as usize == buf.len();
            break;
        }
        if errno() != libc::EINTR {
            break;
        }
    }
    set_errno(saved);
    ok
}

/// The wall clock (`CLOCK_REALTIME`): seconds and microseconds since the epoch.
pub(crate) fn realtime_us() -> (i64, u32) {
    // SAFETY: zero is a valid timespec.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `ts` is valid for writes.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    (ts.tv_sec, (ts.tv_nsec / 1000) as u32)
}

/// This process's id.
pub(crate) fn raw_getpid() -> i32 {
    super::base::getpid()
}
