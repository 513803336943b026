//! The program's addresses and messages as the shared entry points (`entry::socket`)
//! take them from `sys`, on macOS: the Linux types' names and contracts
//! (`sys/linux/mod.rs`: [`UserAddr`], [`MsgCopy`], [`BadMsg`], [`Prepared`],
//! [`sendto_via`], [`decode_sockaddr`], [`to_sockaddr`], [`is_unspec`]), over XNU's
//! rules (`macos::uapi`) and layouts (`macos::wire`), copied without faulting
//! (`ffi::uaccess`) and sent through the real functions (`sys::real`: dyld
//! interposes the engine's own calls too).
//!
//! The program's control data is copied (at most `control::ROOM` bytes), planned with
//! as XNU reads it (`macos::control::scan_control`, through `sys::scan_control`) and
//! sent as the copy, with the steering's PKTINFO patched into it or added after the
//! program's messages (`control::build_control`). Longer data is the socket core's
//! too-big case, as on Linux: the socket is bound to the interface (`IP_BOUND_IF`)
//! and the message sent unchanged.

use std::net::{IpAddr, SocketAddr};

use libc::{c_int, c_void, sockaddr, socklen_t};

use super::uaccess;
use crate::sys::macos::wire::{self, Dest};
use crate::sys::macos::{control, uapi};
use crate::sys::{errno, real, set_errno};
use mifshim_fastpath::Pktinfo;

/// A socket address copied out of the program (`connect`, `bind`, `sendto`,
/// `sendmsg`'s name, `connectx`'s endpoints), as many bytes as the kernel copies. The
/// hooks hand the kernel this copy, so the address decided on is the address used.
#[derive(Clone, Copy)]
pub(crate) struct UserAddr {
    buf: [u8; uapi::SOCK_MAXADDRLEN],
    len: usize,
}

impl UserAddr {
    /// An empty copy, to be [`load`](Self::load)ed in place.
    pub(crate) fn empty() -> Self {
        UserAddr {
            buf: [0; uapi::SOCK_MAXADDRLEN],
            len: 0,
        }
    }

    /// Copies `len` bytes at `addr` with XNU's checks (`getsockaddr`: `ENAMETOOLONG`
    /// beyond 255 bytes, `EINVAL` below 2, `EFAULT` for unreadable bytes). `addr` NULL
    /// is `Ok(None)`.
    pub(crate) fn load(
        &mut self,
        addr: *const sockaddr,
        len: socklen_t,
    ) -> Result<Option<&Self>, c_int> {
        if addr.is_null() {
            return Ok(None);
        }
        let n = uapi::addr_len(len)?;
        uaccess::copy_in(&mut self.buf[..n], addr.cast())?;
        self.len = n;
        Ok(Some(self))
    }

    /// Copies exactly `n` (at most 255) bytes at `addr`, or `EFAULT`.
    pub(crate) fn copy_n(addr: *const sockaddr, n: usize) -> Result<Self, c_int> {
        let mut a = UserAddr::empty();
        a.len = n.min(uapi::SOCK_MAXADDRLEN);
        uaccess::copy_in(&mut a.buf[..a.len], addr.cast())?;
        Ok(a)
    }

    /// `bytes` (at most 255), as a copy.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Self {
        let mut a = UserAddr::empty();
        a.len = bytes.len().min(uapi::SOCK_MAXADDRLEN);
        a.buf[..a.len].copy_from_slice(&bytes[..a.len]);
        a
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The INET destination it names (`uapi::decode`: `sa_len` is the length given).
    pub(crate) fn dest(&self) -> Option<Dest> {
        uapi::decode(self.bytes())
    }

    /// Replaces the address of the `sockaddr_in`/`sockaddr_in6` this holds (port,
    /// flow info and scope stay the program's); `false` when `ip` is not of its family.
    pub(crate) fn set_ip(&mut self, ip: IpAddr) -> bool {
        let Some(&family) = self.bytes().get(1) else {
            return false;
        };
        match ip {
            IpAddr::V4(v4) if family == wire::AF_INET && self.len >= 8 => {
                self.buf[4..8].copy_from_slice(&v4.octets());
                true
            }
            IpAddr::V6(v6) if family == wire::AF_INET6 && self.len >= 24 => {
                self.buf[8..24].copy_from_slice(&v6.octets());
                true
            }
            _ => false,
        }
    }

    /// The copy as the pointer and length to hand the kernel.
    pub(crate) fn raw(&self) -> (*const sockaddr, socklen_t) {
        (self.buf.as_ptr().cast(), self.len as socklen_t)
    }
}

/// Whether the address at `addr` (`len` bytes) is an `AF_UNSPEC` one (macOS's
/// family is the second byte).
///
/// # Safety
/// `addr` is NULL or points to `len` readable bytes.
pub(crate) unsafe fn is_unspec(addr: *const sockaddr, len: socklen_t) -> bool {
    if addr.is_null() || (len as usize) < uapi::SA_HEADER {
        return false;
    }
    // SAFETY: the caller's contract: at least the two header bytes are readable.
    let b = unsafe { std::slice::from_raw_parts(addr.cast::<u8>(), uapi::SA_HEADER) };
    uapi::is_unspec(b)
}

/// Decodes an INET address at `addr` of `len` bytes (`None` also when unreadable).
pub(crate) fn decode_sockaddr(addr: *const sockaddr, len: socklen_t) -> Option<Dest> {
    UserAddr::copy_n(addr, len as usize).ok()?.dest()
}

/// Encodes `a` for a socket of family v6 (`true`: IPv4 addresses become
/// IPv4-mapped) or v4, with macOS's `sin_len`/`sin6_len`.
pub(crate) fn to_sockaddr(a: &SocketAddr, v6_socket: bool) -> (libc::sockaddr_storage, socklen_t) {
    let a = match a {
        SocketAddr::V4(v4) if v6_socket => {
            SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
        }
        a => *a,
    };
    super::sockopt::sockaddr(&a)
}

/// `sendto` rewritten as `sendmsg` with the engine's PKTINFO (`wire::pktinfo`).
///
/// # Safety
/// `buf`/`len` are those the program passed to `sendto(2)` (only the kernel reads
/// them); `to` is NULL or readable for its length.
pub(crate) unsafe fn sendto_via(
    fd: c_int,
    buf: *const c_void,
    len: usize,
    flags: c_int,
    to: (*const sockaddr, socklen_t),
    p: Pktinfo,
) -> isize {
    let (mut ctl, clen) = wire::pktinfo(p.v6, p.ifindex);
    let mut iov = libc::iovec {
        iov_base: buf.cast_mut(),
        iov_len: len,
    };
    // SAFETY: msghdr is plain data; all-zero is valid.
    let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
    mh.msg_name = to.0.cast_mut().cast();
    mh.msg_namelen = to.1;
    mh.msg_iov = &mut iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl.as_mut_ptr().cast();
    mh.msg_controllen = clen as socklen_t;
    // SAFETY: mh points at the program's data buffer (valid per sendto's contract;
    // only the kernel reads it) and at our locals, which outlive the call.
    unsafe { real::sendmsg(fd, &mh, flags) }
}

/// Result of preparing a `sendmsg` with the engine's control message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Prepared {
    /// Send the copy ([`MsgCopy::hdr`]) with the engine's PKTINFO.
    Ready,
    /// Never on macOS (the Linux type's variant).
    TooBig,
    /// Refuse with this errno; the kernel answers first ([`MsgCopy::answer`]).
    Refused(c_int),
    /// Never on macOS (the Linux type's variant).
    Unreadable,
}

/// A message the engine could not read: the kernel is asked instead, with the
/// unreadable pointer replaced by one it cannot read, and answers without sending.
pub(crate) enum BadMsg {
    /// The `msghdr` itself.
    Header,
    /// Its name (a copy of the header with the name poisoned).
    Name(libc::msghdr),
}

impl BadMsg {
    /// The kernel's answer for the program's call: -1 with its errno.
    pub(crate) fn answer(&self, fd: c_int, flags: c_int) -> isize {
        match self {
            // SAFETY: POISON is never readable: the kernel fails the call.
            BadMsg::Header => unsafe { real::sendmsg(fd, uaccess::poison(), flags) },
            BadMsg::Name(h) => {
                let mut h = *h;
                h.msg_name = uaccess::poison::<c_void>().cast_mut();
                // SAFETY: h is our copy; its name is unreadable, so the kernel fails
                // the call (the name is copied before anything is sent).
                unsafe { real::sendmsg(fd, &h, flags) }
            }
        }
    }
}

/// A program's message read without faulting: its header, and its name copied.
pub(crate) struct MsgCopy {
    mh: libc::msghdr,
    name: Option<UserAddr>,
    /// The program's control pointer and length, as it passed them.
    app_control: (*mut c_void, socklen_t),
    /// The program's control data as copied ([`MsgCopy::load_control`]: `copied`
    /// bytes), then the data to send ([`MsgCopy::prepare`]: `control_len` bytes).
    control: [u8; control::BUF],
    copied: Option<usize>,
    control_len: Option<usize>,
    /// Replace the program's control pointer by [`uaccess::POISON`].
    poison_control: bool,
}

impl MsgCopy {
    /// Reads the program's header at `msg` and copies its name, with XNU's checks.
    pub(crate) fn read(msg: *const libc::msghdr) -> Result<Self, BadMsg> {
        let mh = uaccess::read(msg).map_err(|_| BadMsg::Header)?;
        Self::from_header(mh)
    }

    /// As [`MsgCopy::read`] for a header already copied.
    pub(crate) fn from_header(mh: libc::msghdr) -> Result<Self, BadMsg> {
        let has_name = !mh.msg_name.is_null();
        let name = match uapi::msg_name_len(has_name, mh.msg_namelen) {
            Err(_) => return Err(BadMsg::Name(mh)),
            Ok(0) => None,
            Ok(n) => Some(UserAddr::copy_n(mh.msg_name.cast(), n).map_err(|_| BadMsg::Name(mh))?),
        };
        Ok(MsgCopy {
            mh,
            name,
            app_control: (mh.msg_control, mh.msg_controllen),
            control: [0; control::BUF],
            copied: None,
            control_len: None,
            poison_control: false,
        })
    }

    /// The name, as copied.
    pub(crate) fn name(&self) -> Option<&UserAddr> {
        self.name.as_ref()
    }

    /// Replaces the destination by `to`, encoded for a socket of family v6 or v4.
    pub(crate) fn set_dest(&mut self, to: &SocketAddr, v6: bool) {
        let (ss, len) = to_sockaddr(to, v6);
        // SAFETY: ss is a live sockaddr_storage; len <= its size.
        let bytes =
            unsafe { std::slice::from_raw_parts((&raw const ss).cast::<u8>(), len as usize) };
        self.name = Some(UserAddr::from_bytes(bytes));
    }

    fn has_control(&self) -> bool {
        self.app_control.1 != 0
    }

    /// Copies the first `buf.len()` bytes of the program's control data into `buf`.
    fn copy_control(&self, buf: &mut [u8]) -> Result<(), c_int> {
        uaccess::copy_in(buf, self.app_control.0.cast_const().cast())
    }

    /// The program's control data as the core plans with it: the bytes copied (none
    /// when there are none, or when they cannot be read: [`MsgCopy::prepare`] then
    /// has the kernel answer), or `Unknown` beyond `control::ROOM`.
    pub(crate) fn load_control(&mut self) -> crate::ops::Ctl<'_> {
        use crate::ops::Ctl;
        if let Some(n) = self.copied {
            return Ctl::Read(&self.control[..n]);
        }
        let n = self.app_control.1 as usize;
        if n == 0 {
            return Ctl::Read(&[]);
        }
        if n > control::ROOM {
            return Ctl::Unknown;
        }
        let mut buf = [0u8; control::ROOM];
        if self.copy_control(&mut buf[..n]).is_err() {
            self.poison_control = true;
            return Ctl::Read(&[]);
        }
        self.control[..n].copy_from_slice(&buf[..n]);
        self.copied = Some(n);
        Ctl::Read(&self.control[..n])
    }

    /// The control data to send with the steering's PKTINFO: the program's messages
    /// (copied, if [`MsgCopy::load_control`] has not) with it patched in or added
    /// (`control::build_control`); `TooBig` beyond `control::ROOM`, `Unreadable` for
    /// data that cannot be copied, `Refused(EINVAL)` for data XNU would refuse.
    pub(crate) fn prepare(&mut self, p: Pktinfo) -> Prepared {
        let n = self.app_control.1 as usize;
        if n > control::ROOM {
            return Prepared::TooBig;
        }
        let mut app = [0u8; control::ROOM];
        let n = match self.copied {
            Some(c) => {
                app[..c].copy_from_slice(&self.control[..c]);
                c
            }
            None if n == 0 => 0,
            None => {
                if self.poison_control || self.copy_control(&mut app[..n]).is_err() {
                    self.poison_control = true;
                    return Prepared::Unreadable;
                }
                n
            }
        };
        match control::build_control(&app[..n], p, &mut self.control) {
            Ok(control::Built::Control(len) | control::Built::Chosen(len)) => {
                self.control_len = Some(len);
                Prepared::Ready
            }
            Err(e) => Prepared::Refused(e),
        }
    }

    /// Sends the message without the program's name (a stream's, which the kernel
    /// ignores), as on Linux.
    pub(crate) fn forget_name(&mut self) {
        self.name = None;
    }

    /// The header to hand the kernel: the program's, pointing at our copies. Valid
    /// while `self` is not moved.
    pub(crate) fn hdr(&mut self) -> *const libc::msghdr {
        match &self.name {
            Some(a) => {
                let (p, l) = a.raw();
                self.mh.msg_name = p.cast_mut().cast();
                self.mh.msg_namelen = l;
            }
            None => {
                self.mh.msg_name = std::ptr::null_mut();
                self.mh.msg_namelen = 0;
            }
        }
        // The copy the decision was made on is what the kernel gets.
        if let Some(len) = self.control_len.or(self.copied) {
            self.mh.msg_control = self.control.as_mut_ptr().cast();
            self.mh.msg_controllen = len as socklen_t;
        } else if self.poison_control {
            self.mh.msg_control = uaccess::poison::<c_void>().cast_mut();
            self.mh.msg_controllen = self.app_control.1;
        } else {
            (self.mh.msg_control, self.mh.msg_controllen) = self.app_control;
        }
        &self.mh
    }

    /// The kernel's answer to this message when the engine refuses it: the copy goes
    /// to the kernel with its control data poisoned, so that it runs the checks it
    /// makes first (fd, name, iovecs) and fails on the control data if they pass;
    /// `refused` is the answer then. Nothing is sent. Returns -1 with errno set.
    pub(crate) fn answer(&mut self, fd: c_int, flags: c_int, refused: Option<c_int>) -> isize {
        // Neither the built nor the copied control data: the kernel gets the poisoned
        // pointer.
        self.control_len = None;
        self.copied = None;
        self.poison_control = true;
        if !self.has_control() {
            set_errno(refused.unwrap_or(libc::EFAULT));
            return -1;
        }
        // SAFETY: hdr() is our copy; its control pointer is unreadable and its length
        // non-zero, so the kernel fails the call before sending.
        let r = unsafe { real::sendmsg(fd, self.hdr(), flags) };
        if r >= 0 {
            // Never report a send the engine refused as done.
            set_errno(libc::EFAULT);
            return -1;
        }
        let e = errno();
        set_errno(match refused {
            Some(mine) if e == libc::EFAULT => mine,
            _ => e,
        });
        -1
    }
}

// The numbers `uapi` writes by hand are the SDK's.
const _: () = {
    assert!(uapi::EINVAL == libc::EINVAL);
    assert!(uapi::ENAMETOOLONG == libc::ENAMETOOLONG);
    assert!(uapi::ENOBUFS == libc::ENOBUFS);
    assert!(uapi::SOCK_MAXADDRLEN == libc::SOCK_MAXADDRLEN as usize);
    assert!(uapi::AF_UNSPEC as c_int == libc::AF_UNSPEC);
    assert!(uapi::SA_ENDPOINTS_LEN == size_of::<libc::sa_endpoints_t>());
    assert!(std::mem::offset_of!(libc::sa_endpoints_t, sae_srcaddr) == 8);
    assert!(std::mem::offset_of!(libc::sa_endpoints_t, sae_srcaddrlen) == 16);
    assert!(std::mem::offset_of!(libc::sa_endpoints_t, sae_dstaddr) == 24);
    assert!(std::mem::offset_of!(libc::sa_endpoints_t, sae_dstaddrlen) == 32);
};
