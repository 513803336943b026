//! The socket and fd entry points the preloaded stub forwards to (through
//! `mifshim_abi::Engine::hooks`, see `crate::entry`). Each one decodes its arguments,
//! runs the shim's part (`crate::ops`) in [`pre`] and makes exactly one real call (or
//! none, failing closed). Nothing is done after the real call except fd bookkeeping
//! through [`pre`], which keeps errno. The guard itself (`pre`, the cancellation
//! sections) is `crate::sys::guard`.
//!
//! ## Invariants
//! * A panic in the shim's part never crosses into C and never repeats the real call:
//!   it fails the call with `ENETUNREACH` (fail closed) or, for bookkeeping-only
//!   hooks (`close`, `dup*`, `socket`, `accept`), lets the real call stand.
//! * errno is the real call's, or the shim's chosen errno on refusal.
//! * **Re-entry is steered, not skipped.** A hook entered while the same thread is
//!   inside another (a signal handler that sends, an NSS module's socket inside a
//!   name lookup) runs the engine again: the engine's socket paths hold no lock and
//!   allocate nothing, so they are safe to nest.
//! * **Cancellation never meets `catch_unwind`.** The shim's own part of a socket hook
//!   reaches no cancellation point: its system calls are raw (`syscall(2)`: netlink,
//!   the log, `uaccess`, a listener filter's scratch socket), the rest is computation
//!   and socket options. The few parts that must use the C library's file calls (the
//!   engine's start-up reading the policy, the DNS configuration read for `[dns]
//!   redirect`) run in a `no_cancel` section, with the thread's cancellation disabled
//!   (`pthread_setcancelstate`), as does the whole of a name lookup, whose resolver
//!   waits in `poll`. So glibc's forced unwind never starts inside the shim; the real
//!   call made afterwards is the program's own cancellation point, as without the
//!   shim, and name lookups, whose real work *is* the shim's, offer one afterwards
//!   (`cancel_point`). The test `pending_cancellation_met_a_cancellation_point_inside_the_shim`
//!   runs every hook with a cancellation pending.
//! * **A non-local exit leaves nothing behind.** A socket hook without a section
//!   changes no thread state. A signal handler that `siglongjmp`s out of a section (the
//!   `alarm()` time-out around `getaddrinfo`) skips its end: the jump itself (the
//!   stub's `longjmp` hooks) or the next section on that thread sees the section is
//!   gone (`sys::guard::Window`) and gives the thread its cancellation state back.

use crate::ops::{self, Ctl, Plan};
use crate::sys::guard::{Errno, Pre, decide, keep_errno, note, pre};
use crate::sys::real;
use crate::sys::uaccess::{self, poison};
use crate::sys::{
    self, Dest, MsgCopy, Pktinfo, Prepared, UserAddr, decode_sockaddr, filter, sendto_via,
    to_sockaddr, uapi,
};
use libc::{c_int, c_void, sockaddr, socklen_t};
use mifshim_socket_core::mmsg::{self, ControlStep};

/// ## Hook
/// Replaces `socket(2)`: records the new socket's family and type.
pub unsafe extern "C" fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    if let Pre::Run(Some(errno)) = pre(|| ops::socket_refused(domain, ty, protocol)) {
        sys::set_errno(errno);
        return -1;
    }
    // SAFETY: the program's arguments, forwarded.
    let fd = unsafe { real::socket(domain, ty, protocol) };
    if fd >= 0 {
        note(|| ops::socket_created(fd, domain, ty, protocol));
    }
    fd
}

/// ## Hook
/// Replaces `connect(2)`: binds the socket to the chosen interface first.
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    let mut copy = UserAddr::empty();
    let a = match copy.load(addr, len) {
        Ok(a) => a,
        // SAFETY: a length the kernel refuses or an unreadable address: the kernel is
        // handed an unreadable one and answers (EBADF, EINVAL, EFAULT) unconnected.
        Err(_) => return unsafe { real::connect(fd, poison(), len) },
    };
    let dest = a.and_then(UserAddr::dest);
    // The kernel gets the bytes decided on (NULL stays NULL: the kernel answers).
    let (ap, al) = a.map_or((addr, len), UserAddr::raw);
    // SAFETY: ap is NULL or our copy of the program's address (al bytes).
    if dest.is_none() && unsafe { sys::is_unspec(ap, al) } {
        // A disconnect: the kernel drops a UDP socket's device binding with its peer.
        // SAFETY: the program's address as copied, alive for the call.
        let r = unsafe { real::connect(fd, ap, al) };
        note(|| ops::disconnected(fd));
        return r;
    }
    match pre(|| ops::connect(fd, dest)) {
        Pre::Run(Ok(None)) => {
            // SAFETY: the program's address as copied (or NULL), alive for the call.
            unsafe { real::connect(fd, ap, al) }
        }
        Pre::Run(Ok(Some(to))) => {
            let v6 = dest.is_some_and(|d| d.addr.is_ipv6());
            let (ss, sl) = to_sockaddr(&to, v6);
            // SAFETY: our encoding of the redirected server, alive for the call.
            unsafe { real::connect(fd, (&raw const ss).cast(), sl) }
        }
        // The hot path: matched in place (`decide` would move the redirect address).
        Pre::Run(Err(e)) => Errno(e).fail(),
        Pre::Panicked => Errno::PANICKED.fail(),
    }
}

/// ## Hook
/// Replaces `sendto(2)`: a datagram to a steered destination is sent with a PKTINFO
/// control message naming the interface; a Fast Open send binds like `connect`.
/// (Datagrams without a destination, and those the stub's fast path recognises as
/// already steered — `mifshim_fastpath::is_fast` — never get here.)
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: usize,
    flags: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> isize {
    let mut copy = UserAddr::empty();
    let a = match copy.load(addr, len) {
        Ok(a) => a,
        // SAFETY: a length the kernel refuses (addrlen 200: EINVAL, where the rewrite to
        // sendmsg would have been clamped and sent) or an unreadable address: the
        // kernel gets an unreadable one and answers without sending.
        Err(_) => return unsafe { real::sendto(fd, buf, n, flags, poison(), len) },
    };
    let dest = send_dest(fd, a);
    let to = a.map_or((addr, len), UserAddr::raw);
    let plan = match dest {
        None => Plan::AsIs,
        Some(_) => pre(|| ops::send(fd, dest, flags, "sendto", false, Ctl::Read(&[])))
            .or_panicked(Plan::Fail(Errno::PANICKED.0)),
    };
    match plan {
        // SAFETY: the program's arguments, with its address as copied.
        Plan::AsIs => unsafe { real::sendto(fd, buf, n, flags, to.0, to.1) },
        // SAFETY: the program's data, without its address.
        Plan::Nameless => unsafe { real::sendto(fd, buf, n, flags, std::ptr::null(), 0) },
        Plan::Fail(e) => Errno(e).fail(),
        // SAFETY: the program's arguments, re-expressed as a sendmsg.
        Plan::Via(p) => unsafe { sendto_via(fd, buf, n, flags, to, p) },
        Plan::Redirect(to, p) => {
            let v6 = dest.is_some_and(|d| d.addr.is_ipv6());
            let (ss, sl) = to_sockaddr(&to, v6);
            let a = (&raw const ss).cast::<sockaddr>();
            match p {
                // SAFETY: the program's buffer with our encoded server address.
                Some(p) => unsafe { sendto_via(fd, buf, n, flags, (a, sl), p) },
                // SAFETY: as above.
                None => unsafe { real::sendto(fd, buf, n, flags, a, sl) },
            }
        }
    }
}

/// ## Hook
/// Replaces `sendmsg(2)`: as `sendto`, adding our PKTINFO to the program's control
/// messages in a copy.
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> isize {
    let mut m = match MsgCopy::read(msg) {
        Ok(m) => m,
        Err(bad) => return bad.answer(fd, flags),
    };
    let dest = send_dest(fd, m.name());
    let plan = match dest {
        // No name, or one the kernel takes as none (`AF_UNSPEC` on an AF_INET6
        // socket) or refuses: the connected peer's datagram.
        None => unnamed(fd, &mut m, "sendmsg"),
        Some(_) => {
            // Decided on a copy of its control data, which is what the kernel gets.
            let ctl = m.load_control();
            pre(|| ops::send(fd, dest, flags, "sendmsg", false, ctl))
                .or_panicked(Plan::Fail(Errno::PANICKED.0))
        }
    };
    match plan {
        Plan::Redirect(to, p) => {
            m.set_dest(&to, dest.is_some_and(|d| d.addr.is_ipv6()));
            send_copy(fd, &mut m, flags, p, dest, true)
        }
        // SAFETY: the program's message, with its name as copied.
        Plan::AsIs => unsafe { real::sendmsg(fd, m.hdr(), flags) },
        Plan::Nameless => {
            m.forget_name();
            // SAFETY: the program's message as copied, without its name.
            unsafe { real::sendmsg(fd, m.hdr(), flags) }
        }
        Plan::Fail(e) => Errno(e).fail(),
        Plan::Via(p) => send_copy(fd, &mut m, flags, Some(p), dest, false),
    }
}

/// A message that names no destination: its control data, if it may give the
/// datagram a source, checked against the interface the socket is bound to
/// ([`ops::unnamed_source`], which also records a socket the engine did not know);
/// decided on the copy the kernel then gets.
pub(super) fn unnamed(fd: c_int, m: &mut MsgCopy, what: &str) -> Plan {
    let ctl = m.load_control();
    pre(|| ops::unnamed_source(fd, what, ctl)).or_panicked(Plan::Fail(Errno::PANICKED.0))
}

/// What the socket core calls a prepared control buffer.
pub(super) fn control_of(p: Prepared) -> mmsg::Control {
    match p {
        Prepared::Ready => mmsg::Control::Ready,
        Prepared::TooBig => mmsg::Control::TooBig,
        Prepared::Refused(e) => mmsg::Control::Refused(e),
        Prepared::Unreadable => mmsg::Control::Unreadable,
    }
}

/// Sends one message copy, with `p`'s PKTINFO added when there is one, as the socket
/// core says for its control data (`mmsg::control`: the too-big fallback binds the
/// socket to `p`'s interface, or fails a `redirected` DNS query).
pub(super) fn send_copy(
    fd: c_int,
    m: &mut MsgCopy,
    flags: c_int,
    p: Option<Pktinfo>,
    dest: Option<Dest>,
    redirected: bool,
) -> isize {
    let Some(p) = p else {
        // SAFETY: the copy points at the program's buffers and our own, alive for the
        // call.
        return unsafe { real::sendmsg(fd, m.hdr(), flags) };
    };
    match mmsg::control(control_of(m.prepare(p)), redirected) {
        // SAFETY: the copy points at the program's buffers and our control buffer,
        // both valid for the call.
        ControlStep::Send => unsafe { real::sendmsg(fd, m.hdr(), flags) },
        ControlStep::Fail(e) => Errno(e).fail(),
        ControlStep::KernelAnswers(refused) => m.answer(fd, flags, refused),
        ControlStep::BindDevice => match decide(|| ops::send_fallback_bind(fd, dest, p)) {
            Err(e) => e.fail(),
            // SAFETY: the program's message (its own control data, which the kernel
            // copies itself), with its name as copied.
            Ok(()) => unsafe { real::sendmsg(fd, m.hdr(), flags) },
        },
    }
}

/// The destination a send names, as the kernel reads it: an INET/INET6 address, or an
/// `AF_UNSPEC` one on an IPv4 socket, which the kernel takes as `AF_INET`
/// (`uapi::decode_unspec_as_inet`).
pub(super) fn send_dest(fd: c_int, a: Option<&UserAddr>) -> Option<Dest> {
    let a = a?;
    if let Some(d) = a.dest() {
        return Some(d);
    }
    let d = uapi::decode_unspec_as_inet(a.bytes())?;
    match pre(|| ops::is_ipv4_socket(fd)) {
        Pre::Run(true) => Some(d),
        _ => None,
    }
}

/// ## Hook
/// Replaces `bind(2)`: a UDP socket bound to the wildcard address on a fixed port is
/// a server and is confined to the chosen interface (`listen = "interface"`); an
/// address of another interface than the chosen one is rewritten to the chosen one's.
pub unsafe extern "C" fn bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    let mut copy = UserAddr::empty();
    let present = match copy.load(addr, len) {
        Ok(a) => a.is_some(),
        // SAFETY: the kernel is handed an unreadable address and answers unbound.
        Err(_) => return unsafe { real::bind(fd, poison(), len) },
    };
    // Owned: the decision may rewrite its address (bind is no hot path).
    let mut a = present.then_some(copy);
    let step = decide(|| ops::bind(fd, a.as_ref().and_then(UserAddr::dest)));
    // An address of another interface than the chosen one: the chosen one's instead.
    if let (Ok(Some(ip)), Some(a)) = (&step, a.as_mut()) {
        a.set_ip(*ip);
    }
    let (ap, al) = a.as_ref().map_or((addr, len), UserAddr::raw);
    match step {
        Ok(_) => {
            // SAFETY: the program's address as copied (or NULL, or rewritten), alive
            // for the call.
            let r = unsafe { real::bind(fd, ap, al) };
            if r == 0 {
                note(|| ops::bound(fd, a.as_ref().and_then(UserAddr::dest)));
            }
            r
        }
        Err(e) => e.fail(),
    }
}

/// ## Hook
/// Replaces `listen(2)`: a wildcard TCP listener is confined to the chosen interface.
pub unsafe extern "C" fn listen(fd: c_int, backlog: c_int) -> c_int {
    match decide(|| ops::listen(fd)) {
        // SAFETY: the program's arguments, forwarded.
        Ok(()) => unsafe { real::listen(fd, backlog) },
        Err(e) => e.fail(),
    }
}

/// The most bytes of an option value the engine reads.
const OPT_MAX: usize = 272;

/// ## Hook
/// Replaces `setsockopt(2)`: the program's options are always applied; a multicast
/// join on "any interface" is pointed at the chosen interface, and the program's own
/// interface choices are remembered so the shim leaves them alone.
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    // The engine looks at the first bytes of a value only (the longest option it
    // reads, group_source_req, has 264).
    let mut copy = [0u8; OPT_MAX];
    let n = match uapi::sockopt_len(len, OPT_MAX) {
        Ok(n) => n,
        // SAFETY: a negative length: the kernel refuses it (EINVAL) before reading.
        Err(_) => return unsafe { real::setsockopt(fd, level, name, poison(), len) },
    };
    if uaccess::copy_in(&mut copy[..n], val.cast()).is_err() {
        // SAFETY: unreadable: the kernel gets an unreadable value and answers as it
        // would for the program's (EFAULT, or the option's own errno first).
        return unsafe { real::setsockopt(fd, level, name, poison(), len) };
    }
    let bytes = &copy[..n];
    // The kernel reads the bytes decided on when they are all of the value.
    let val = if n == len as usize && n > 0 {
        copy.as_ptr().cast()
    } else {
        val
    };
    if level == libc::SOL_SOCKET
        && (filter::is_attach_classic(name)
            || filter::is_attach_ebpf(name)
            || filter::is_detach(name))
    {
        // A listener the shim confined by a filter keeps its admission.
        let opt = filter::ProgramOpt::new(val, len);
        match pre(|| ops::setsockopt_filter(fd, name, opt))
            .or_panicked(Some(Err(Errno::PANICKED.0)))
        {
            Some(Ok(())) => return 0,
            Some(Err(e)) => return Errno(e).fail(),
            None => {}
        }
    }
    let r = match pre(|| ops::setsockopt_rewrite(fd, level, name, bytes)) {
        Pre::Run(Ok(Some(o))) => {
            // SAFETY: our rewritten copy, o.len bytes, alive for the call.
            unsafe { real::setsockopt(fd, level, name, o.buf.as_ptr().cast(), o.len as socklen_t) }
        }
        Pre::Run(Err(e)) => return Errno(e).fail(),
        // The program's option stands also when the shim's part panicked.
        // SAFETY: the program's arguments, forwarded (its value as copied when whole).
        _ => unsafe { real::setsockopt(fd, level, name, val, len) },
    };
    if r == 0 {
        note(|| ops::setsockopt_done(fd, level, name, bytes));
    }
    r
}

/// ## Hook
/// Replaces `close(2)`: forgets what the shim knew about the fd. Never logs.
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    note(|| ops::fd_closing(fd));
    // SAFETY: the program's argument, forwarded.
    unsafe { real::close(fd) }
}

/// ## Hook
/// Replaces `dup(2)`.
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    // SAFETY: the program's argument, forwarded.
    let r = unsafe { real::dup(fd) };
    if r >= 0 {
        note(|| ops::fd_duplicated(fd, r));
    }
    r
}

/// ## Hook
/// Replaces `dup2(2)`.
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    if old != new {
        note(|| ops::fd_replacing(new));
    }
    // SAFETY: the program's arguments, forwarded.
    let r = unsafe { real::dup2(old, new) };
    if r >= 0 && old != new {
        note(|| ops::fd_duplicated(old, new));
    }
    r
}

/// ## Hook
/// Replaces `accept(2)`: the new fd number's old entry is forgotten.
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    // SAFETY: the program's arguments, forwarded.
    let r = unsafe { real::accept(fd, addr, len) };
    if r >= 0 {
        note(|| ops::fd_accepted(fd, r));
    }
    r
}

/// Shows the program a redirected DNS server's address as the one it asked (see
/// `crate::redirect`). `cap` is the room the program gave for the address.
///
/// # Safety
/// `addr` points to `cap` writable bytes and `len` to the kernel-written length.
pub(super) unsafe fn disguise(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, cap: socklen_t) {
    if !crate::redirect::flagged(fd) {
        return;
    }
    // SAFETY: the kernel wrote *len (readable, it just wrote it).
    let got = unsafe { *len };
    let Some(from) = decode_sockaddr(addr, got.min(cap)) else {
        return;
    };
    let Pre::Run(Some(orig)) = pre(|| crate::redirect::disguise(fd, from.addr)) else {
        return;
    };
    let (ss, sl) = to_sockaddr(&orig, from.addr.is_ipv6());
    // SAFETY: at most cap bytes into the program's buffer; *len reports the full size
    // as the kernel does on truncation.
    unsafe {
        std::ptr::copy_nonoverlapping(
            (&raw const ss).cast::<u8>(),
            addr.cast::<u8>(),
            sl.min(cap) as usize,
        );
        *len = sl;
    }
}

/// ## Hook
/// Replaces `recvfrom(2)`: only to disguise redirected DNS answers.
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: usize,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> isize {
    // The room the program gives for the source address (0: none, or unreadable, and
    // then the kernel answers for it).
    let cap = if addr.is_null() {
        0
    } else {
        uaccess::read(len).unwrap_or(0)
    };
    // SAFETY: the program's arguments, forwarded.
    let r = unsafe { real::recvfrom(fd, buf, n, flags, addr, len) };
    if r >= 0 && cap > 0 {
        // SAFETY: addr has cap bytes of room; the kernel set *len.
        keep_errno(|| unsafe { disguise(fd, addr, len, cap) });
    }
    r
}

/// ## Hook
/// Replaces `recvmsg(2)`: only to disguise redirected DNS answers.
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> isize {
    // The room for the source address, before the kernel overwrites msg_namelen (0:
    // none, or the header is unreadable, and then the kernel answers for it).
    let cap = match uaccess::read(msg) {
        Ok(h) if !h.msg_name.is_null() => h.msg_namelen,
        _ => 0,
    };
    // SAFETY: the program's arguments, forwarded.
    let r = unsafe { real::recvmsg(fd, msg, flags) };
    if r >= 0 && cap > 0 {
        // SAFETY: msg_name has cap bytes of room; the kernel set msg_namelen.
        keep_errno(|| unsafe {
            disguise(fd, (*msg).msg_name.cast(), &raw mut (*msg).msg_namelen, cap)
        });
    }
    r
}

/// ## Hook
/// Replaces `getpeername(2)`: a socket connected to a redirected DNS server reports
/// the server the program asked for.
pub unsafe extern "C" fn getpeername(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    // The room for the address (0: none, or unreadable: the kernel answers for it).
    let cap = if addr.is_null() {
        0
    } else {
        uaccess::read(len).unwrap_or(0)
    };
    // SAFETY: the program's arguments, forwarded.
    let r = unsafe { real::getpeername(fd, addr, len) };
    if r == 0 && cap > 0 {
        // SAFETY: addr has cap bytes of room; the kernel set *len.
        unsafe { disguise(fd, addr, len, cap) };
    }
    r
}

/// ## Hook
/// Replaces `fcntl(2)`: `F_DUPFD`/`F_DUPFD_CLOEXEC` make a new fd for the same socket,
/// as `dup` does. The third argument is passed through as the register it came in
/// (every `fcntl` command takes at most one argument, an integer or a pointer; on the
/// Linux ABIs this project builds for, a variadic argument is passed like a fixed
/// one).
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    // SAFETY: the program's arguments, forwarded.
    let r = unsafe { real::fcntl(fd, cmd, arg) };
    if r >= 0 && (cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC) {
        note(|| ops::fd_duplicated(fd, r));
    }
    r
}

/// ## Hook
/// Replaces `fclose(3)`: the stream's fd (a socket wrapped by `fdopen`, say) is closed
/// by glibc internally, where no hook sees it; forget it first.
pub unsafe extern "C" fn fclose(stream: *mut libc::FILE) -> c_int {
    if !stream.is_null() {
        // SAFETY: the program's stream (fclose(3)'s contract: a valid FILE).
        let fd = unsafe { libc::fileno(stream) };
        if fd >= 0 {
            note(|| ops::fd_closing(fd));
        }
    }
    // SAFETY: the program's argument, forwarded.
    unsafe { real::fclose(stream) }
}
