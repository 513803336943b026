//! One `RTM_GET` query on a routing socket of its own (`route_oif`); the persistent
//! listener that tells when the interface snapshot is stale is `ffi::netwatch`.

use crate::sys::real;
use libc::c_int;

use super::errno;
use crate::sys::macos::route::{self, NoRoute};

/// The interface the routing table sends to `dest` by (the macOS counterpart of the
/// Linux engine's `RTM_GETROUTE` query, `sys::route_oif`): an `RTM_GET` written to a
/// routing socket of its own (opened and closed here: no descriptor is kept that the
/// program could close or reuse), its reply read back (`rtm_seq` and this process's
/// `rtm_pid`; other messages the socket hears are skipped, at most 64 of them) within
/// a second. `Err`: the kernel's errno (`ESRCH`: no route), or `EIO` for an answer
/// that names no interface.
pub(crate) fn route_oif(dest: std::net::IpAddr) -> Result<u32, c_int> {
    static SEQ: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(1);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let req = route::get_request(dest, seq);
    // SAFETY: plain system calls on a descriptor this function owns and closes.
    let fd = unsafe { real::socket(libc::PF_ROUTE, libc::SOCK_RAW, libc::AF_UNSPEC) };
    if fd < 0 {
        return Err(errno());
    }
    struct Close(c_int);
    impl Drop for Close {
        fn drop(&mut self) {
            // SAFETY: the descriptor is ours and closed once.
            unsafe { real::own_close(self.0) };
        }
    }
    let _close = Close(fd);
    let timeout = libc::timeval {
        tv_sec: 1,
        tv_usec: 0,
    };
    // SAFETY: fd is ours; the option value is a live timeval of the stated size.
    unsafe {
        real::own_fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC as usize);
        real::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        );
    }
    // SAFETY: req is a live buffer of its length.
    if unsafe { super::nocancel::write(fd, req.as_ptr().cast(), req.len()) } < 0 {
        return Err(errno());
    }
    // SAFETY: getpid cannot fail.
    let pid = unsafe { libc::getpid() };
    let mut buf = [0u8; 2048];
    for _ in 0..64 {
        // SAFETY: buf is writable for its length.
        let n = unsafe { super::nocancel::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            match errno() {
                libc::EINTR => continue,
                e => return Err(e),
            }
        }
        let got = &buf[..n as usize];
        if route::pid_seq(got) != Some((pid, seq)) {
            continue;
        }
        return match route::parse(got).map(|(m, _)| route::route_ifindex(&m)) {
            Ok(Ok(index)) => Ok(index),
            Ok(Err(NoRoute::Errno(e))) => Err(e),
            _ => Err(libc::EIO),
        };
    }
    Err(libc::EIO)
}
