//! The `PF_ROUTE` listener: a non-blocking routing socket the engine drains before it
//! relies on its interface snapshot, so that a link, address or route change is seen
//! by the next decision (the messages are parsed by `sys::macos::route`).

use crate::sys::real;
use libc::c_int;

use super::errno;
use crate::sys::macos::route::{self, NoRoute, parse_all};

/// An open routing socket.
pub(crate) struct RouteSocket(c_int);

impl RouteSocket {
    /// `socket(PF_ROUTE, SOCK_RAW, AF_UNSPEC)`, non-blocking and close-on-exec: every
    /// address family's messages.
    pub(crate) fn open() -> Result<RouteSocket, c_int> {
        // SAFETY: plain system calls on a descriptor this function owns.
        unsafe {
            let fd = real::socket(libc::PF_ROUTE, libc::SOCK_RAW, libc::AF_UNSPEC);
            if fd < 0 {
                return Err(errno());
            }
            let fl = libc::fcntl(fd, libc::F_GETFL);
            if fl < 0
                || libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) < 0
                || libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) < 0
            {
                let e = errno();
                real::close(fd);
                return Err(e);
            }
            Ok(RouteSocket(fd))
        }
    }

    /// Reads every queued message; true when one of them makes the interface
    /// snapshot stale. A socket that overflowed (`ENOBUFS`) lost messages: stale too.
    pub(crate) fn drain(&self) -> Result<bool, c_int> {
        let mut buf = [0u8; 2048];
        let mut stale = false;
        loop {
            // SAFETY: `buf` is writable for its length.
            let n = unsafe { libc::read(self.0, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                return match errno() {
                    libc::EAGAIN => Ok(stale),
                    libc::EINTR => continue,
                    libc::ENOBUFS => {
                        stale = true;
                        continue;
                    }
                    e => Err(e),
                };
            }
            if n == 0 {
                return Ok(stale);
            }
            stale |= parse_all(&buf[..n as usize])
                .iter()
                .any(|m| m.invalidates_snapshot());
        }
    }

    /// The descriptor, for a `poll` that waits for a change.
    pub(crate) fn fd(&self) -> c_int {
        self.0
    }
}

impl Drop for RouteSocket {
    fn drop(&mut self) {
        // SAFETY: the descriptor is ours and closed once.
        unsafe { real::close(self.0) };
    }
}

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
            unsafe { real::close(self.0) };
        }
    }
    let _close = Close(fd);
    let timeout = libc::timeval {
        tv_sec: 1,
        tv_usec: 0,
    };
    // SAFETY: fd is ours; the option value is a live timeval of the stated size.
    unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        real::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        );
    }
    // SAFETY: req is a live buffer of its length.
    if unsafe { libc::write(fd, req.as_ptr().cast(), req.len()) } < 0 {
        return Err(errno());
    }
    // SAFETY: getpid cannot fail.
    let pid = unsafe { libc::getpid() };
    let mut buf = [0u8; 2048];
    for _ in 0..64 {
        // SAFETY: buf is writable for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
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
