//! Raw system calls for the events file (`crate::events`): `libc::syscall` rather than
//! the C library's wrappers, so that a write from inside a hook is never a
//! cancellation point (glibc's `write` and `open` are), takes no lock and keeps errno.

use libc::c_int;

use super::{errno, set_errno};

/// `open(path, O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC|O_NONBLOCK|O_NOCTTY, 0644)` by a
/// raw `openat`, as the log file is opened (see `open_log`). `Err`: the errno.
pub(crate) fn open_append(path: &std::ffi::CStr) -> Result<c_int, c_int> {
    let saved = errno();
    let flags = libc::O_WRONLY
        | libc::O_APPEND
        | libc::O_CREAT
        | libc::O_CLOEXEC
        | libc::O_NONBLOCK
        | libc::O_NOCTTY;
    // SAFETY: `path` is NUL-terminated and outlives the call; openat reads nothing else.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags,
            0o644 as libc::c_uint,
        )
    };
    let r = if fd >= 0 {
        Ok(fd as c_int)
    } else {
        Err(errno())
    };
    set_errno(saved);
    r
}

/// The identity of the open file behind `fd` (device, inode), by a raw `fstat`:
/// `None` when `fd` is not open.
pub(crate) fn file_id(fd: c_int) -> Option<(u64, u64)> {
    let saved = errno();
    // SAFETY: zero is a valid `struct stat`.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is valid for writes of one `struct stat`, which fstat fills.
    let r = unsafe { libc::syscall(libc::SYS_fstat, fd, &mut st as *mut libc::stat) };
    set_errno(saved);
    (r == 0).then_some((st.st_dev, st.st_ino))
}

/// One `write(2)` of all of `buf` by a raw system call, retried only on `EINTR`
/// (nothing was written then); a short or failed write (a full pipe: `EAGAIN`) is
/// given up, never resumed, so that a line is never split. Keeps errno.
pub(crate) fn write_once(fd: c_int, buf: &[u8]) -> bool {
    let saved = errno();
    let mut ok = false;
    for _ in 0..4 {
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the call.
        let n = unsafe { libc::syscall(libc::SYS_write, fd, buf.as_ptr(), buf.len()) };
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

/// The wall clock (`CLOCK_REALTIME`, vDSO): seconds and microseconds since the epoch.
pub(crate) fn realtime_us() -> (i64, u32) {
    // SAFETY: zero is a valid timespec.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `ts` is valid for writes; clock_gettime is not a cancellation point.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    (ts.tv_sec, (ts.tv_nsec / 1000) as u32)
}

/// This process's id by a raw system call (the C library caches nothing across a raw
/// `clone`; the kernel's answer is always right).
pub(crate) fn raw_getpid() -> i32 {
    // SAFETY: getpid takes no argument and cannot fail.
    unsafe { libc::syscall(libc::SYS_getpid) as i32 }
}
