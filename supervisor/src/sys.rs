//! The kernel primitives of the supervisor: seccomp install and notification ioctls,
//! pidfds, the target's memory and sockets, process control and signals. Every
//! `unsafe` block of the crate is here, each with its `// SAFETY:` reasoning. The
//! functions used between `fork` and `execve` ([`child_*`]) do not allocate.

use std::ffi::CStr;
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

fn cvt(r: libc::c_long) -> io::Result<libc::c_long> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

// ---------------------------------------------------------------------------------
// Between fork and exec (child side): no allocation, raw system calls only
// ---------------------------------------------------------------------------------

/// Sets `no_new_privs` and installs `prog` with a listener; returns the listener fd or
/// the errno. Tries `WAIT_KILLABLE_RECV` first (a signal after the supervisor took
/// the notification cannot turn the call into EINTR), then without it.
///
/// With `SPEC_ALLOW`: on a kernel booted with `spec_store_bypass_disable=seccomp` (the
/// x86 default before Linux 5.16) a filter without it forces the Speculative Store
/// Bypass mitigation on every thread of the program and its descendants, a slowdown
/// meant for sandboxes of untrusted code. This filter steers sockets; it is no
/// sandbox, so the program keeps the speculation state it has without mifrun (and
/// may still ask for the mitigation itself: `PR_SET_SPECULATION_CTRL`).
pub fn child_install_filter(prog: &[libc::sock_filter]) -> Result<RawFd, i32> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(errno());
    }
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    let mut flags = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
        | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
        | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW;
    loop {
        // SAFETY: `fprog` points at `prog`, which outlives the call; the kernel copies it.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                flags,
                &fprog as *const libc::sock_fprog,
            )
        };
        if r >= 0 {
            return Ok(r as RawFd);
        }
        let e = errno();
        // WAIT_KILLABLE_RECV is Linux 5.19's; SPEC_ALLOW (4.17) is older than the
        // listener (5.0), dropped last only for a kernel that refuses it anyway.
        if e == libc::EINVAL && flags & libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV != 0 {
            flags &= !libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
            continue;
        }
        if e == libc::EINVAL && flags & libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW != 0 {
            flags &= !libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW;
            continue;
        }
        return Err(e);
    }
}

/// `write(2)` of a whole small buffer (a pipe message); errors ignored by the caller.
pub fn child_write(fd: RawFd, b: &[u8]) -> bool {
    // SAFETY: `b` is a valid buffer of `b.len()` bytes.
    unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) == b.len() as isize }
}

/// Reads one byte; `false` on end of file or error (the supervisor is gone).
pub fn child_read_byte(fd: RawFd) -> bool {
    let mut b = 0u8;
    loop {
        // SAFETY: one byte into a local.
        let r = unsafe { libc::read(fd, (&mut b as *mut u8).cast(), 1) };
        if r == 1 {
            return true;
        }
        if r < 0 && errno() == libc::EINTR {
            continue;
        }
        return false;
    }
}

/// Restores the default action of SIGPIPE, which the Rust runtime ignores in mifrun
/// (an ignored signal stays ignored across `execve`; `std::process::Command` resets
/// it the same way).
pub fn child_default_sigpipe() {
    // SAFETY: signal(2) is async-signal-safe.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

pub fn child_close(fd: RawFd) {
    // SAFETY: closing an fd this process owns.
    unsafe { libc::close(fd) };
}

/// `execve`; returns the errno on failure.
pub fn child_exec(path: &CStr, argv: &[*const libc::c_char], envp: &[*const libc::c_char]) -> i32 {
    // SAFETY: `argv` and `envp` are NULL-terminated arrays of pointers to C strings the
    // parent built before fork and that live until exec replaces the image.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    errno()
}

pub fn child_exit(code: i32) -> ! {
    // SAFETY: `_exit` ends the process without running the parent's atexit handlers.
    unsafe { libc::_exit(code) }
}

/// Writes `msg` to standard error (no allocation).
pub fn child_say(msg: &[u8]) {
    let _ = child_write(2, msg);
}

// ---------------------------------------------------------------------------------
// Process control (parent side)
// ---------------------------------------------------------------------------------

pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } as libc::c_long)?;
    // SAFETY: both were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub enum Forked {
    Child,
    Parent(libc::pid_t),
}

/// `fork(2)`. The caller keeps the child to async-signal-safe work until `execve`
/// (the supervisor is single-threaded when it forks).
pub fn fork() -> io::Result<Forked> {
    // SAFETY: the child only runs the `child_*` functions above (no allocation, no
    // locks) before exec or `_exit`.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

pub fn read_i32(fd: &OwnedFd) -> io::Result<Option<i32>> {
    let mut b = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        // SAFETY: reading into the rest of a local buffer.
        let r = unsafe { libc::read(fd.as_raw_fd(), b[got..].as_mut_ptr().cast(), 4 - got) };
        if r == 0 {
            return Ok(None);
        }
        if r < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return Err(io::Error::last_os_error());
        }
        got += r as usize;
    }
    Ok(Some(i32::from_ne_bytes(b)))
}

pub fn write_byte(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: one byte from a local.
    let r = unsafe { libc::write(fd.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
    cvt(r as libc::c_long).map(drop)
}

/// `pidfd_open(pid, flags)`.
pub fn pidfd_open(pid: libc::pid_t, flags: u32) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments; the result is a new fd.
    let r = cvt(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, flags) })?;
    // SAFETY: a new fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// A thread's pidfd (`PIDFD_THREAD`, Linux 6.9, so that a non-leader thread's fd
/// table is used); before 6.9, the pidfd of its thread group (the leader's table,
/// which threads share unless created without `CLONE_FILES`).
pub fn pidfd_thread(tid: u32) -> io::Result<OwnedFd> {
    match pidfd_open(tid as libc::pid_t, libc::PIDFD_THREAD) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let tgid = std::fs::read_to_string(format!("/proc/{tid}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("Tgid:"))
                        .and_then(|v| v.trim().parse::<libc::pid_t>().ok())
                })
                .ok_or(e)?;
            pidfd_open(tgid, 0)
        }
        r => r,
    }
}

/// `pidfd_getfd`: a duplicate of the target's `fd` (same open file description).
pub fn pidfd_getfd(pidfd: &OwnedFd, fd: i32) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments; the result is a new fd.
    let r = cvt(unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) })?;
    // SAFETY: a new fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// `waitpid(pid, WNOHANG)`: the raw status once it has ended.
pub fn try_wait(pid: libc::pid_t) -> io::Result<Option<i32>> {
    let mut st = 0;
    loop {
        // SAFETY: `st` is a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
        if r == pid {
            return Ok(Some(st));
        }
        if r == 0 {
            return Ok(None);
        }
        if errno() == libc::EINTR {
            continue;
        }
        return Err(io::Error::last_os_error());
    }
}

pub fn wait_blocking(pid: libc::pid_t) -> io::Result<i32> {
    let mut st = 0;
    loop {
        // SAFETY: `st` is a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut st, 0) };
        if r == pid {
            return Ok(st);
        }
        if errno() != libc::EINTR {
            return Err(io::Error::last_os_error());
        }
    }
}

pub fn kill(pid: libc::pid_t, sig: i32) {
    // SAFETY: sending a signal has no memory effects here.
    unsafe { libc::kill(pid, sig) };
}

/// Sends `sig` to one thread (`tkill`): the program's thread blocked in the call the
/// supervisor answers, so its id cannot have been reused.
pub fn tkill(tid: u32, sig: i32) {
    // SAFETY: sending a signal has no memory effects here.
    unsafe { libc::syscall(libc::SYS_tkill, tid as libc::c_long, sig as libc::c_long) };
}

/// Ends this process the way `sig` ended the program: default action, no core file.
pub fn reraise(sig: i32) -> ! {
    let lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on local values; `raise` with the default action ends
    // the process (or returns for a signal whose default is to ignore).
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &lim);
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(sig);
    }
    std::process::exit(128 + sig)
}

/// The program's pid, for the forwarding signal handler (0: none).
static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: i32, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let code = unsafe { (*info).si_code };
    // A terminal's SIGINT/SIGQUIT/SIGHUP (si_code SI_KERNEL) already reached the
    // program's process group; only signals sent to mifrun itself are passed on.
    let pid = CHILD.load(Ordering::Relaxed);
    if code <= 0 && pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Passes SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to mifrun on to `pid`.
pub fn forward_signals_to(pid: libc::pid_t) {
    CHILD.store(pid, Ordering::Relaxed);
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        // SAFETY: installing a handler that only calls kill(2); the struct is zeroed
        // then filled.
        unsafe {
            let mut sa: libc::sigaction = zeroed();
            sa.sa_sigaction = forward as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// Detaches the copy of the supervisor that stays with a program's daemons: a session
/// of its own (a kill of mifrun's process group or job leaves it to serve the daemons
/// that escaped it), standard input and output on `/dev/null` (mifrun's pipes must
/// not stay open), and standard error too unless it is a terminal: a pipe or file
/// kept open would hold whoever reads mifrun's output to its end (`$(mifrun … 2>&1)`,
/// `| tee`, a CI step) until the last daemon exits, where without mifrun it ends with
/// the program (review_1206). A terminal has no end to wait for, so the copy's log
/// lines still reach it.
pub fn detach() {
    let keep_stderr = is_terminal(2);
    // SAFETY: setsid/open/dup2/close on descriptors this process owns.
    unsafe {
        libc::setsid();
        let n = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if n >= 0 {
            libc::dup2(n, 0);
            libc::dup2(n, 1);
            if !keep_stderr {
                libc::dup2(n, 2);
            }
            libc::close(n);
        }
    }
}

/// Whether `fd` is a terminal.
pub fn is_terminal(fd: RawFd) -> bool {
    // SAFETY: isatty reads nothing of ours.
    unsafe { libc::isatty(fd) == 1 }
}

/// `poll(2)` over (fd, events); returns the revents.
pub fn poll(fds: &[(RawFd, i16)], timeout_ms: i32) -> io::Result<Vec<i16>> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|&(fd, events)| libc::pollfd {
            fd,
            events,
            revents: 0,
        })
        .collect();
    // SAFETY: `p` holds `p.len()` pollfd structs.
    let r = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(p.iter().map(|x| x.revents).collect())
}

// ---------------------------------------------------------------------------------
// Notifications
// ---------------------------------------------------------------------------------

/// One notification: what the kernel's `struct seccomp_notif` says.
#[derive(Clone, Copy, Debug)]
pub struct Notif {
    pub id: u64,
    /// The calling thread (in the supervisor's pid namespace).
    pub pid: u32,
    pub nr: i32,
    pub arch: u32,
    pub args: [u64; 6],
}

/// The kernel's notification sizes must not exceed the `libc` structs (older kernels
/// are smaller, which is fine; a larger one would write past the buffer).
pub fn check_notif_sizes() -> io::Result<()> {
    // SAFETY: `sizes` is a valid out struct for SECCOMP_GET_NOTIF_SIZES.
    let mut sizes: libc::seccomp_notif_sizes = unsafe { zeroed() };
    // SAFETY: as above.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_NOTIF_SIZES,
            0,
            &mut sizes as *mut libc::seccomp_notif_sizes,
        )
    })?;
    if sizes.seccomp_notif as usize > size_of::<libc::seccomp_notif>()
        || sizes.seccomp_notif_resp as usize > size_of::<libc::seccomp_notif_resp>()
    {
        return Err(io::Error::other(format!(
            "the kernel's seccomp notification structs ({} / {} bytes) are larger than this build's",
            sizes.seccomp_notif, sizes.seccomp_notif_resp
        )));
    }
    Ok(())
}

/// `SECCOMP_IOCTL_NOTIF_RECV`; `Ok(None)` for ENOENT (the task is gone) or EINTR.
pub fn recv(listener: RawFd) -> io::Result<Option<Notif>> {
    // SAFETY: the kernel requires a zeroed struct; sizes were checked at start.
    let mut n: libc::seccomp_notif = unsafe { zeroed() };
    // SAFETY: `n` is a valid seccomp_notif for the ioctl to fill.
    let r = unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut n) };
    if r < 0 {
        return match errno() {
            libc::ENOENT | libc::EINTR => Ok(None),
            _ => Err(io::Error::last_os_error()),
        };
    }
    Ok(Some(Notif {
        id: n.id,
        pid: n.pid,
        nr: n.data.nr,
        arch: n.data.arch,
        args: n.data.args,
    }))
}

/// The answer to one notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Let the call run as the program made it.
    Continue,
    /// Fail it with this errno.
    Errno(i32),
    /// The call's result (the supervisor did the work), e.g. bytes sent.
    Value(i64),
}

/// `SECCOMP_IOCTL_NOTIF_SEND`; ENOENT (the call was interrupted or the task died) is
/// not an error.
pub fn send(listener: RawFd, id: u64, reply: Reply) -> io::Result<()> {
    // SAFETY: a zeroed plain struct, filled below.
    let mut r: libc::seccomp_notif_resp = unsafe { zeroed() };
    r.id = id;
    match reply {
        Reply::Continue => r.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
        Reply::Errno(e) => r.error = -e,
        Reply::Value(v) => r.val = v,
    }
    // SAFETY: `r` is a valid seccomp_notif_resp.
    let ret = unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_SEND, &r) };
    if ret < 0 && errno() != libc::ENOENT {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `SECCOMP_IOCTL_NOTIF_ID_VALID`: the task is still waiting in this call.
pub fn id_valid(listener: RawFd, id: u64) -> bool {
    // SAFETY: the ioctl reads one u64.
    unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0 }
}

/// Reads `buf.len()` bytes at `addr` of process `pid` (`process_vm_readv`); a short
/// read is an error.
pub fn read_mem(pid: u32, addr: u64, buf: &mut [u8]) -> io::Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` describes `buf`; the remote side is only read by the kernel,
    // which checks it against the target's address space.
    let r = unsafe { libc::process_vm_readv(pid as libc::pid_t, &local, 1, &remote, 1, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    if r as usize != buf.len() {
        return Err(io::Error::from_raw_os_error(libc::EFAULT));
    }
    Ok(())
}

/// Writes `buf` at `addr` of process `pid` (`process_vm_writev`): the results of a
/// call the supervisor made for the program (`sendmmsg`'s `msg_len`).
pub fn write_mem(pid: u32, addr: u64, buf: &[u8]) -> io::Result<()> {
    let local = libc::iovec {
        iov_base: buf.as_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` describes `buf`, only read; the kernel checks the remote range
    // against the target's address space.
    let r = unsafe { libc::process_vm_writev(pid as libc::pid_t, &local, 1, &remote, 1, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    if r as usize != buf.len() {
        return Err(io::Error::from_raw_os_error(libc::EFAULT));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Sockets (on the supervisor's duplicate of the program's fd)
// ---------------------------------------------------------------------------------

pub fn getsockopt_int(fd: &OwnedFd, level: i32, name: i32) -> io::Result<i32> {
    let mut v: i32 = 0;
    let mut len = size_of::<i32>() as libc::socklen_t;
    // SAFETY: `v`/`len` are valid out pointers for an int option.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut v as *mut i32).cast(),
            &mut len,
        )
    };
    cvt(r as libc::c_long)?;
    Ok(v)
}

pub fn setsockopt_int(fd: &OwnedFd, level: i32, name: i32, v: i32) -> io::Result<()> {
    // SAFETY: `v` is a valid int option value.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&v as *const i32).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    cvt(r as libc::c_long).map(drop)
}

/// `setsockopt` with the value `v` (its length the call's), or with no readable
/// value at all and length `len` (`None`: a NULL pointer, which the kernel cannot
/// read, so it answers what it answers an unreadable value of that length —
/// `EINVAL` for a length the option refuses, else `EFAULT`).
pub fn setsockopt_bytes(
    fd: &OwnedFd,
    level: i32,
    name: i32,
    v: Option<&[u8]>,
    len: u32,
) -> Result<(), i32> {
    let (ptr, len) = match v {
        Some(b) => (b.as_ptr(), b.len() as libc::socklen_t),
        None => (std::ptr::null(), len as libc::socklen_t),
    };
    // SAFETY: `ptr` is `v`'s bytes for `len` (or NULL, which the kernel checks and
    // never dereferences in this process).
    let r = unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, ptr.cast(), len) };
    match cvt(r as libc::c_long) {
        Ok(_) => Ok(()),
        Err(e) => Err(e.raw_os_error().unwrap_or(libc::EINVAL)),
    }
}

/// Whether a multicast interface is set on the socket (`IP_MULTICAST_IF`, whose
/// value the kernel gives as the chosen address, or `IPV6_MULTICAST_IF`).
pub fn multicast_if_chosen(fd: &OwnedFd, family: Option<config_schema::AddrFamily>) -> bool {
    match family {
        Some(config_schema::AddrFamily::V4) => {
            getsockopt_int(fd, libc::IPPROTO_IP, libc::IP_MULTICAST_IF).is_ok_and(|a| a != 0)
        }
        Some(config_schema::AddrFamily::V6) => {
            getsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF).is_ok_and(|i| i != 0)
        }
        None => false,
    }
}

/// `getsockname`: the raw address bytes.
pub fn getsockname(fd: &OwnedFd) -> io::Result<Vec<u8>> {
    let mut b = [0u8; 128];
    let mut len = b.len() as libc::socklen_t;
    // SAFETY: `b` has `len` bytes of room.
    let r = unsafe { libc::getsockname(fd.as_raw_fd(), b.as_mut_ptr().cast(), &mut len) };
    cvt(r as libc::c_long)?;
    Ok(b[..(len as usize).min(b.len())].to_vec())
}

/// The socket has a peer (`getpeername` succeeds): connected.
pub fn is_connected(fd: &OwnedFd) -> bool {
    getpeername(fd).is_ok()
}

/// `getpeername(2)`: the peer's address, as the kernel wrote it.
pub fn getpeername(fd: &OwnedFd) -> io::Result<Vec<u8>> {
    let mut b = [0u8; 128];
    let mut len = b.len() as libc::socklen_t;
    // SAFETY: `b` has `len` bytes of room.
    let r = unsafe { libc::getpeername(fd.as_raw_fd(), b.as_mut_ptr().cast(), &mut len) };
    cvt(r as libc::c_long)?;
    Ok(b[..(len as usize).min(b.len())].to_vec())
}

/// `fcntl(F_GETFL)` has `O_NONBLOCK` (the open file description is shared with the
/// program's fd).
pub fn is_nonblocking(fd: &OwnedFd) -> bool {
    // SAFETY: F_GETFL takes no pointer.
    let fl = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    fl >= 0 && fl & libc::O_NONBLOCK != 0
}

/// `connect(2)` on the duplicate; the errno on failure (EINPROGRESS included).
pub fn connect(fd: &OwnedFd, addr: &[u8]) -> Result<(), i32> {
    // SAFETY: `addr` is a complete sockaddr of `addr.len()` bytes.
    let r = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            addr.as_ptr().cast(),
            addr.len() as libc::socklen_t,
        )
    };
    if r == 0 { Ok(()) } else { Err(errno()) }
}

/// `bind(2)` on the duplicate (the program's socket); the errno on failure.
pub fn bind(fd: &OwnedFd, addr: &[u8]) -> Result<(), i32> {
    // SAFETY: `addr` is a complete sockaddr of `addr.len()` bytes, alive for the call.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            addr.as_ptr().cast(),
            addr.len() as libc::socklen_t,
        )
    };
    if r == 0 { Ok(()) } else { Err(errno()) }
}

/// `sendmsg(2)` on the duplicate with the given name, data and control bytes.
pub fn sendmsg(
    fd: &OwnedFd,
    name: &[u8],
    data: &[u8],
    control: &[u8],
    flags: i32,
) -> Result<usize, i32> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: a zeroed msghdr, filled with pointers into live local buffers.
    let mut m: libc::msghdr = unsafe { zeroed() };
    m.msg_name = name.as_ptr() as *mut libc::c_void;
    m.msg_namelen = name.len() as libc::socklen_t;
    m.msg_iov = &mut iov;
    m.msg_iovlen = 1;
    if !control.is_empty() {
        m.msg_control = control.as_ptr() as *mut libc::c_void;
        m.msg_controllen = control.len();
    }
    // SAFETY: every pointer in `m` refers to a buffer that outlives the call.
    let r = unsafe { libc::sendmsg(fd.as_raw_fd(), &m, flags) };
    if r < 0 { Err(errno()) } else { Ok(r as usize) }
}

/// `prctl(PR_SET_DUMPABLE)` of this process.
pub fn set_dumpable(on: bool) -> io::Result<()> {
    // SAFETY: PR_SET_DUMPABLE takes an integer argument and touches no memory.
    let r = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, libc::c_ulong::from(on), 0, 0, 0) };
    cvt(r as libc::c_long).map(|_| ())
}

/// `CAP_NET_RAW` (linux/capability.h).
pub const CAP_NET_RAW: u32 = 13;

/// Whether thread `tid` has capability `cap` in its effective set (`CapEff` of
/// `/proc/TID/status`); false when it cannot be read.
pub fn has_capability(tid: u32, cap: u32) -> bool {
    let Ok(st) = std::fs::read_to_string(format!("/proc/{tid}/status")) else {
        return false;
    };
    st.lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .is_some_and(|set| cap < 64 && set & (1 << cap) != 0)
}

/// The readlink of `/proc/TID/exe`.
pub fn exe_of(tid: u32) -> Option<String> {
    std::fs::read_link(format!("/proc/{tid}/exe"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

// ---------------------------------------------------------------------------------
// Netlink: notice link and address changes
// ---------------------------------------------------------------------------------

/// A netlink socket subscribed to link and address changes: readable when the
/// interface snapshot must be read again.
pub fn netlink_monitor() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2).
    let fd = cvt(unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            libc::NETLINK_ROUTE,
        )
    } as libc::c_long)?;
    // SAFETY: a new fd owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    // SAFETY: a zeroed sockaddr_nl, filled below.
    let mut sa: libc::sockaddr_nl = unsafe { zeroed() };
    sa.nl_family = libc::AF_NETLINK as u16;
    sa.nl_groups = (libc::RTMGRP_LINK
        | libc::RTMGRP_IPV4_IFADDR
        | libc::RTMGRP_IPV6_IFADDR
        | libc::RTMGRP_IPV4_ROUTE
        | libc::RTMGRP_IPV6_ROUTE) as u32;
    // SAFETY: `sa` is a valid sockaddr_nl of its size.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_nl).cast(),
            size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    cvt(r as libc::c_long)?;
    Ok(fd)
}

/// Reads and discards whatever the monitor has queued.
pub fn drain(fd: &OwnedFd) {
    let mut b = [0u8; 8192];
    loop {
        // SAFETY: reading into a local buffer.
        let r = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                b.as_mut_ptr().cast(),
                b.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if r <= 0 {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------
// Socket filters (listener confinement, `listen = "interface"`)
// ---------------------------------------------------------------------------------

/// The socket's classic filter (`SO_GET_FILTER`): empty when there is none;
/// `Err(EACCES)` for an eBPF program (it has no classic form).
pub fn get_filter(fd: &OwnedFd) -> Result<Vec<libc::sock_filter>, i32> {
    let mut len: libc::socklen_t = 0;
    // SAFETY: with a zero length the kernel only reports the count in `len`.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_GET_FILTER,
            std::ptr::null_mut(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(errno());
    }
    if len == 0 {
        return Ok(Vec::new());
    }
    let zero = libc::sock_filter {
        code: 0,
        jt: 0,
        jf: 0,
        k: 0,
    };
    let mut buf = vec![zero; len as usize];
    // The length is counted in instructions, not bytes.
    let mut n = len;
    // SAFETY: `buf` has room for `n` instructions, the most the kernel writes.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_GET_FILTER,
            buf.as_mut_ptr().cast(),
            &mut n,
        )
    };
    if r != 0 {
        return Err(errno());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// Attaches `prog` (`SO_ATTACH_FILTER`, replacing any filter; `EPERM` when locked).
pub fn attach_filter(fd: &OwnedFd, prog: &[libc::sock_filter]) -> Result<(), i32> {
    let fp = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: `fp` points to `prog.len()` valid instructions alive for the call; the
    // kernel copies them.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&raw const fp).cast(),
            size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if r == 0 { Ok(()) } else { Err(errno()) }
}

/// A socket of the supervisor's own, to let the kernel validate a filter on.
pub fn scratch_socket() -> Result<OwnedFd, i32> {
    // SAFETY: plain socket creation; the fd is owned by the result.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: `fd` is a new descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Removes the socket's filter (`SO_DETACH_FILTER`; none is not an error).
pub fn detach_filter(fd: &OwnedFd) -> Result<(), i32> {
    match setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_DETACH_FILTER, 0) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) => Err(e.raw_os_error().unwrap_or(libc::EINVAL)),
    }
}

/// The socket's `SO_COOKIE`: the kernel's 64-bit identity of the socket, the same
/// through every fd and process that holds it, never reused while the system runs.
pub fn cookie(fd: &OwnedFd) -> Option<u64> {
    let mut v: u64 = 0;
    let mut len = size_of::<u64>() as libc::socklen_t;
    // SAFETY: `v`/`len` are valid out pointers for a u64 option.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_COOKIE,
            (&raw mut v).cast(),
            &mut len,
        )
    };
    (r == 0).then_some(v)
}

// ---------------------------------------------------------------------------------
// Processes, for the events file
// ---------------------------------------------------------------------------------

/// The process (thread group) of thread `tid`.
pub fn tgid_of(tid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The program's name as the preload writes it: `argv[0]`'s basename, at most 64
/// characters.
pub fn program_of(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let argv0 = raw.split(|b| *b == 0).next().unwrap_or_default();
    let argv0 = String::from_utf8_lossy(argv0);
    argv0
        .rsplit('/')
        .next()
        .unwrap_or("")
        .chars()
        .take(64)
        .collect()
}

/// Whether the preload (`libmifshim.so`) is mapped in process `pid`: its hooks then
/// decide (and write the events of) the calls the C library makes.
pub fn preloaded(pid: u32) -> bool {
    use std::io::BufRead;
    let Ok(f) = std::fs::File::open(format!("/proc/{pid}/maps")) else {
        return false;
    };
    io::BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.ends_with("/libmifshim.so"))
}

/// The wall clock: seconds since the epoch and microseconds.
pub fn realtime_us() -> (i64, u32) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_micros())
}

// ---------------------------------------------------------------------------------
// Interrupting a worker's call
// ---------------------------------------------------------------------------------

/// The signal that ends a worker's blocking call (`EINTR`): a real-time signal of
/// glibc's range, sent only to the supervisor's own worker threads.
fn interrupt_signal() -> i32 {
    libc::SIGRTMIN() + 2
}

extern "C" fn interrupted(_sig: i32) {}

/// Installs the do-nothing handler of [`interrupt_signal`] without `SA_RESTART`, so
/// that the blocking call of the thread it is sent to returns `EINTR` (or a stream
/// send's short count). Idempotent.
pub fn install_interrupt_handler() {
    // SAFETY: a handler that does nothing; the struct is zeroed then filled.
    unsafe {
        let mut sa: libc::sigaction = zeroed();
        sa.sa_sigaction = interrupted as *const () as usize;
        sa.sa_flags = 0;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(interrupt_signal(), &sa, std::ptr::null_mut());
    }
}

/// Interrupts the call of worker thread `tid` of this process (`tgkill`).
pub fn interrupt_thread(tid: i32) {
    // SAFETY: sending a signal has no memory effects here; the caller holds the lock
    // that keeps `tid` a live thread of this process.
    unsafe {
        libc::syscall(
            libc::SYS_tgkill,
            libc::getpid() as libc::c_long,
            tid as libc::c_long,
            interrupt_signal() as libc::c_long,
        )
    };
}

/// This thread's id.
pub fn gettid() -> i32 {
    // SAFETY: gettid has no arguments.
    unsafe { libc::gettid() }
}

/// The signal masks of thread `tid` (`/proc/TID/status`); `None` when it is gone.
pub fn signal_state(tid: u32) -> Option<crate::interrupt::SigState> {
    let s = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    crate::interrupt::parse_status(&s)
}

/// The state letter of thread `tid` of group `tgid` (`/proc/TGID/task/TID/stat`).
pub fn thread_state(tgid: u32, tid: u32) -> Option<char> {
    let l = std::fs::read_to_string(format!("/proc/{tgid}/task/{tid}/stat")).ok()?;
    crate::interrupt::stat_state(&l)
}

/// The threads of group `tgid` in the kernel's list order (`/proc/TGID/task`: the
/// leader first, then by creation); empty when it cannot be read.
pub fn threads_of(tgid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{tgid}/task")) else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// Whether the socket has a send time-out (`SO_SNDTIMEO`): an interrupted call then
/// returns `EINTR` instead of restarting.
pub fn send_timeout(fd: &OwnedFd) -> Option<std::time::Duration> {
    // SAFETY: a zeroed timeval the kernel fills; its length is passed.
    let mut tv: libc::timeval = unsafe { zeroed() };
    let mut len = size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: `tv` and `len` are valid out parameters of the sizes given.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&mut tv as *mut libc::timeval).cast(),
            &mut len,
        )
    };
    (r == 0 && (tv.tv_sec != 0 || tv.tv_usec != 0)).then(|| {
        std::time::Duration::new(
            tv.tv_sec.max(0) as u64,
            tv.tv_usec.clamp(0, 999_999) as u32 * 1000,
        )
    })
}

/// Whether the socket has a send time-out (`SO_SNDTIMEO`).
pub fn has_send_timeout(fd: &OwnedFd) -> bool {
    send_timeout(fd).is_some()
}
