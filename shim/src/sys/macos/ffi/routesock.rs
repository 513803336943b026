//! The `PF_ROUTE` listener: a non-blocking routing socket the engine drains before it
//! relies on its interface snapshot, so that a link, address or route change is seen
//! by the next decision (the messages are parsed by `sys::macos::route`).

use libc::c_int;

use super::errno;
use crate::sys::macos::route::parse_all;

/// An open routing socket.
pub(crate) struct RouteSocket(c_int);

impl RouteSocket {
    /// `socket(PF_ROUTE, SOCK_RAW, AF_UNSPEC)`, non-blocking and close-on-exec: every
    /// address family's messages.
    pub(crate) fn open() -> Result<RouteSocket, c_int> {
        // SAFETY: plain system calls on a descriptor this function owns.
        unsafe {
            let fd = libc::socket(libc::PF_ROUTE, libc::SOCK_RAW, libc::AF_UNSPEC);
            if fd < 0 {
                return Err(errno());
            }
            let fl = libc::fcntl(fd, libc::F_GETFL);
            if fl < 0
                || libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) < 0
                || libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) < 0
            {
                let e = errno();
                libc::close(fd);
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
        unsafe { libc::close(self.0) };
    }
}
