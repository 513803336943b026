//! The exec family's entry points. The preloaded stub decides an exec itself (what the
//! kernel will run, and whether the preload steers it: `preload/src/exec.rs`) and then
//! calls the C library directly, so it never forwards these here; the interface has a
//! slot for every hooked call, and these fill it by forwarding to the C library.

use crate::sys::real;
use libc::{c_char, c_int};

/// ## Hook
/// `execve(2)`, forwarded.
pub unsafe extern "C" fn execve(
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    // SAFETY: the program's arguments, forwarded.
    unsafe { real::execve(path, argv, envp) }
}

/// ## Hook
/// `execveat(2)`, forwarded.
pub unsafe extern "C" fn execveat(
    dirfd: c_int,
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    flags: c_int,
) -> c_int {
    // SAFETY: the program's arguments, forwarded.
    unsafe { real::execveat(dirfd, path, argv, envp, flags) }
}

/// ## Hook
/// `fexecve(3)`, forwarded.
pub unsafe extern "C" fn fexecve(
    fd: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    // SAFETY: the program's arguments, forwarded.
    unsafe { real::fexecve(fd, argv, envp) }
}

/// ## Hook
/// `execv(3)`, forwarded.
pub unsafe extern "C" fn execv(path: *const c_char, argv: *const *const c_char) -> c_int {
    // SAFETY: the program's arguments, forwarded.
    unsafe { real::execv(path, argv) }
}

/// ## Hook
/// `execvp(3)`, forwarded.
pub unsafe extern "C" fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int {
    // SAFETY: the program's arguments, forwarded.
    unsafe { real::execvp(file, argv) }
}

/// ## Hook
/// `execvpe(3)`, forwarded.
pub unsafe extern "C" fn execvpe(
    file: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    // SAFETY: the program's arguments, forwarded.
    unsafe { real::execvpe(file, argv, envp) }
}
