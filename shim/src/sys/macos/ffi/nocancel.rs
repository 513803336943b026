//! The non-cancellable entry points (`$NOCANCEL`, libsystem_kernel's exports on both
//! architectures) of the calls the engine makes for its own work — its log and events
//! writes, the log's open, its routing sockets' reads, writes and polls — none of
//! them hooked, so called by name (dyld interposes the engine's references, and only
//! hooked names have replacements). None of the engine's own work may be a
//! cancellation point: Darwin's `pthread_exit` runs no Rust drops, so a thread ended
//! there would leave a lock held or a descriptor open, and inside a `$NOCANCEL`
//! twin's hook the program asked for no cancellation point at all. The hooked calls
//! it makes on descriptors of its own (`close`, `fcntl`) are the stub's twins, handed
//! over at init (`sys::real::own_close`, `own_fcntl`).

use libc::{c_char, c_int, c_void};

unsafe extern "C" {
    #[link_name = "read$NOCANCEL"]
    pub(crate) fn read(fd: c_int, buf: *mut c_void, n: usize) -> isize;
    #[link_name = "write$NOCANCEL"]
    pub(crate) fn write(fd: c_int, buf: *const c_void, n: usize) -> isize;
    #[link_name = "poll$NOCANCEL"]
    pub(crate) fn poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int) -> c_int;
    /// Variadic, as `open` (arm64 reads the mode from the stack).
    #[link_name = "open$NOCANCEL"]
    pub(crate) fn open(path: *const c_char, flags: c_int, ...) -> c_int;
}
