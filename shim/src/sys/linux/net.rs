//! Sockets the shim itself uses to resolve names over the chosen interface. Every
//! call goes to the real functions (never our hooks), every socket is
//! close-on-exec, non-blocking and closed before the lookup returns: no fd or thread
//! is left behind in the host process.

use super::{errno, real, to_sockaddr};
use libc::{c_int, sockaddr, socklen_t};
use std::mem::size_of;
use std::net::SocketAddr;

/// An owned socket, closed on drop.
pub(crate) struct Sock(c_int);

impl Drop for Sock {
    fn drop(&mut self) {
        // SAFETY: we own this fd; the real close bypasses our bookkeeping (the fd was
        // never in the fd table).
        unsafe { real::close(self.0) };
    }
}

impl Sock {
    /// A non-blocking socket for `server`'s family, bound to interface `ifindex`
    /// (0: unbound).
    pub(crate) fn new(
        server: &SocketAddr,
        tcp: bool,
        ifindex: u32,
        name: &config_schema::IfName,
    ) -> Result<Sock, c_int> {
        let family = if server.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        let ty = if tcp {
            libc::SOCK_STREAM
        } else {
            libc::SOCK_DGRAM
        } | libc::SOCK_NONBLOCK
            | libc::SOCK_CLOEXEC;
        // SAFETY: plain socket creation through the real function.
        let fd = unsafe { real::socket(family, ty, 0) };
        if fd < 0 {
            return Err(errno());
        }
        let s = Sock(fd);
        if ifindex != 0 {
            super::bind_to_interface(fd, ifindex, name)?;
        }
        Ok(s)
    }

    /// Sets `SO_MARK` (the policy's `mark`).
    pub(crate) fn set_mark(&self, mark: u32) -> Result<(), c_int> {
        super::set_mark(self.0, mark)
    }

    /// Connects (UDP: fixes the peer so only its answers arrive; TCP: starts the
    /// handshake, completed by [`Sock::wait`] for writability).
    pub(crate) fn connect(&self, to: &SocketAddr) -> Result<(), c_int> {
        let (ss, len) = to_sockaddr(to, to.is_ipv6());
        // SAFETY: ss holds a valid address of len bytes.
        let r = unsafe { real::connect(self.0, (&raw const ss).cast::<sockaddr>(), len) };
        if r == 0 || errno() == libc::EINPROGRESS {
            Ok(())
        } else {
            Err(errno())
        }
    }

    pub(crate) fn send(&self, buf: &[u8]) -> Result<usize, c_int> {
        // SAFETY: buf is a valid slice; the socket is connected.
        let n = unsafe {
            real::sendto(
                self.0,
                buf.as_ptr().cast(),
                buf.len(),
                libc::MSG_NOSIGNAL,
                std::ptr::null(),
                0,
            )
        };
        if n < 0 { Err(errno()) } else { Ok(n as usize) }
    }

    pub(crate) fn recv(&self, buf: &mut [u8]) -> Result<usize, c_int> {
        // SAFETY: buf is a valid, writable slice.
        let n = unsafe { libc::recv(self.0, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 { Err(errno()) } else { Ok(n as usize) }
    }

    /// The pending socket error (after a non-blocking connect).
    pub(crate) fn take_error(&self) -> c_int {
        let mut v: c_int = 0;
        let mut len = size_of::<c_int>() as socklen_t;
        // SAFETY: v and len are valid for writes.
        unsafe {
            libc::getsockopt(
                self.0,
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&raw mut v).cast(),
                &mut len,
            )
        };
        v
    }

    /// Waits until readable (`write = false`) or writable, at most `ms`
    /// milliseconds. `Ok(false)` on time-out.
    pub(crate) fn wait(&self, write: bool, ms: u64) -> Result<bool, c_int> {
        wait_any(&[self], write, ms).map(|r| r.is_some())
    }
}

/// Waits until one of `socks` is ready; returns its position.
pub(crate) fn wait_any(socks: &[&Sock], write: bool, ms: u64) -> Result<Option<usize>, c_int> {
    let mut fds = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; 8];
    let n = socks.len().min(fds.len());
    for (p, s) in fds.iter_mut().zip(socks) {
        p.fd = s.0;
        p.events = if write { libc::POLLOUT } else { libc::POLLIN };
    }
    // SAFETY: fds holds n valid pollfd entries.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), n as libc::nfds_t, ms.min(60_000) as c_int) };
    if r < 0 {
        let e = errno();
        return if e == libc::EINTR { Ok(None) } else { Err(e) };
    }
    Ok(fds[..n].iter().position(|p| p.revents != 0))
}

/// Mixed into query ids when getrandom(2) cannot give any (no thread-local: engine
/// code reachable from a signal handler keeps none).
static ID_FALLBACK: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0x9e37_79b9);

/// 16 unpredictable bits for a query id (one getrandom(2) each: a lookup sends a few).
pub(crate) fn random_u16() -> u16 {
    let mut b = [0u8; 2];
    // SAFETY: b is valid for its length; GRND_NONBLOCK never blocks.
    let r = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), libc::GRND_NONBLOCK) };
    if r == b.len() as isize {
        return u16::from_ne_bytes(b);
    }
    let seed = (super::now_ms() as u32) ^ ((super::getpid() as u32) << 16);
    let n = ID_FALLBACK.fetch_add(0x6d2b_79f5, std::sync::atomic::Ordering::Relaxed);
    let x = (seed ^ n).wrapping_mul(0x85eb_ca6b);
    (x >> 16) as u16 ^ x as u16
}

unsafe extern "C" {
    fn __h_errno_location() -> *mut c_int;
    fn inet_aton(cp: *const libc::c_char, inp: *mut libc::in_addr) -> c_int;
}

/// Sets the calling thread's `h_errno` (for `gethostbyname*`).
pub(crate) fn set_h_errno(v: c_int) {
    // SAFETY: glibc's per-thread h_errno slot, valid for the thread's lifetime.
    unsafe { *__h_errno_location() = v };
}

/// Does inet_aton(3) accept `s` (the IPv4 forms glibc's AI_NUMERICHOST takes)?
pub(crate) fn inet_aton_ok(s: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(s) else {
        return false;
    };
    let mut a = libc::in_addr { s_addr: 0 };
    // SAFETY: c is NUL-terminated; a is valid for writes.
    unsafe { inet_aton(c.as_ptr(), &mut a) != 0 }
}

/// This host's name (`gethostname`).
pub(crate) fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is valid for its length.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return String::new();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
