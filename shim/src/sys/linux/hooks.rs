//! The exported functions that the preloaded stub forwards to. Each one decodes its
//! arguments, runs the shim's part in [`pre`] and makes exactly one real call (or
//! none, failing closed). Nothing is done after the real call except fd bookkeeping
//! through [`pre`], which keeps errno.
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
//! * **Cancellation never meets `catch_unwind`.** While the shim's own part runs,
//!   the thread's cancellation is disabled (`pthread_setcancelstate`): a cancellation
//!   point inside it (a netlink receive, a log write, the resolver's `poll`) cannot
//!   start glibc's forced unwind there. The real call made after it is the program's
//!   own cancellation point, as without the shim; name lookups, whose real work *is*
//!   the shim's, offer one afterwards ([`cancel_point`]).
//! * **A non-local exit leaves nothing behind.** A signal handler that `siglongjmp`s
//!   out of a hook (the `alarm()` time-out around `getaddrinfo`) skips the end of its
//!   window: the next hook on that thread sees the window is gone ([`Window`]) and
//!   gives the thread its cancellation state back.

use super::real;
use super::{
    Dest, MsgCopy, Prepared, decode_sockaddr, decode_unspec_as_inet, errno, sendto_via, set_errno,
    to_sockaddr,
};
use crate::ops::{self, Plan};
use libc::{c_int, c_uint, c_void, sockaddr, socklen_t};
use std::mem::size_of;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU32, Ordering};

pub(super) enum Pre<T> {
    Run(T),
    Panicked,
}

unsafe extern "C" {
    fn pthread_setcancelstate(state: c_int, old: *mut c_int) -> c_int;
    fn pthread_testcancel();
}
const PTHREAD_CANCEL_ENABLE: c_int = 0;
const PTHREAD_CANCEL_DISABLE: c_int = 1;

/// The pthread key whose per-thread slot records the thread's outermost hook window
/// (`u32::MAX`: none). Only a key below 32 is used: glibc keeps those in the thread
/// descriptor itself, so reading and writing the slot is a plain load and store, with
/// no allocation — safe in a signal handler. (A process that created 32 keys before
/// the engine loaded gets no record: cancellation is still disabled and restored
/// around each window, only a window left by `siglongjmp` is not repaired.)
static WINDOW_KEY: AtomicU32 = AtomicU32::new(u32::MAX);
const KEYS_IN_DESCRIPTOR: u32 = 32;

/// Creates [`WINDOW_KEY`] (engine initialisation).
pub(super) fn init_windows() {
    let mut k: libc::pthread_key_t = 0;
    // SAFETY: k is valid for writes; no destructor.
    if unsafe { libc::pthread_key_create(&mut k, None) } == 0 && k < KEYS_IN_DESCRIPTOR {
        WINDOW_KEY.store(k, Ordering::Release);
    }
}

const ACTIVE: usize = 1;
const WAS_ENABLED: usize = 2;

/// The token a live window keeps in its own stack frame at address `at`: a stale
/// record's frame has since been overwritten by whatever ran there.
fn token(at: usize) -> u64 {
    (at as u64) ^ 0x6d69_6673_6869_6d21
}

/// The outermost hook window of a thread: cancellation disabled, the state to restore,
/// and where it lives. Nested windows (a signal handler's hook inside another hook)
/// leave both alone.
struct Window {
    /// `Some(enabled)`: this is the outermost window; cancellation was enabled before.
    outer: Option<bool>,
}

impl Window {
    /// Enters a window whose frame holds `canary` (which the caller set to
    /// `token(&canary)`).
    fn enter(canary: &u64) -> Window {
        let here = canary as *const u64 as usize;
        let key = WINDOW_KEY.load(Ordering::Acquire);
        if key != u32::MAX {
            // SAFETY: key was created by init_windows; getspecific only reads the slot.
            let v = unsafe { libc::pthread_getspecific(key) } as usize;
            if v & ACTIVE != 0 {
                let at = v & !7;
                let live = if here < at {
                    // Our frame is below the recorded one: it is an outer frame of ours
                    // if its token is still there. The address is inside this thread's
                    // stack above our frame, so it is mapped.
                    // SAFETY: see above; a volatile read of 8 aligned bytes.
                    unsafe { std::ptr::read_volatile(at as *const u64) == token(at) }
                } else {
                    // Above (or at) the recorded frame: that frame is gone — unless this
                    // is a signal handler running on an alternate stack.
                    super::on_alt_stack()
                };
                if live {
                    return Window { outer: None };
                }
                // Left by a non-local exit: give the thread its cancellation state back.
                if v & WAS_ENABLED != 0 {
                    let mut old = 0;
                    // SAFETY: old is valid for writes.
                    unsafe { pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &mut old) };
                }
            }
        }
        let mut old = PTHREAD_CANCEL_ENABLE;
        // SAFETY: old is valid for writes.
        unsafe { pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &mut old) };
        let enabled = old == PTHREAD_CANCEL_ENABLE;
        if key != u32::MAX {
            let v = here | ACTIVE | if enabled { WAS_ENABLED } else { 0 };
            // SAFETY: key < 32: the slot lives in the thread descriptor (no allocation).
            unsafe { libc::pthread_setspecific(key, v as *const c_void) };
        }
        Window {
            outer: Some(enabled),
        }
    }

    /// Leaves the window; `true` when it was the outermost one and cancellation was
    /// enabled before it (a name lookup then offers a cancellation point).
    fn leave(self) -> bool {
        let Some(enabled) = self.outer else {
            return false;
        };
        let key = WINDOW_KEY.load(Ordering::Acquire);
        if key != u32::MAX {
            // SAFETY: as in enter.
            unsafe { libc::pthread_setspecific(key, std::ptr::null()) };
        }
        let mut old = 0;
        let state = if enabled {
            PTHREAD_CANCEL_ENABLE
        } else {
            PTHREAD_CANCEL_DISABLE
        };
        // SAFETY: old is valid for writes.
        unsafe { pthread_setcancelstate(state, &mut old) };
        enabled
    }
}

/// Runs the shim's part of a hook: cancellation disabled (see the module doc), panics
/// caught, errno kept as it was.
pub(super) fn pre<T>(f: impl FnOnce() -> T) -> Pre<T> {
    pre_window(f).0
}

/// [`pre`], also saying whether the call should offer a cancellation point afterwards
/// ([`cancel_point`]).
fn pre_window<T>(f: impl FnOnce() -> T) -> (Pre<T>, bool) {
    let mut canary = 0u64;
    let at = &raw mut canary;
    // SAFETY: writing our own local, volatile so that the token is in memory (where a
    // nested window reads it) before the window is entered.
    unsafe { std::ptr::write_volatile(at, token(at as usize)) };
    let w = Window::enter(std::hint::black_box(&canary));
    let saved = errno();
    let r = catch_unwind(AssertUnwindSafe(f));
    set_errno(saved);
    let cancellable = w.leave();
    // Keep the canary alive (in memory) for the whole window.
    std::hint::black_box(&canary);
    let r = match r {
        Ok(v) => Pre::Run(v),
        Err(_) => Pre::Panicked,
    };
    (r, cancellable)
}

/// [`pre`] for a name lookup: the shim's work is the call's real work (which may wait
/// for seconds), so once it is done and cancellation is enabled again, a cancellation
/// requested meanwhile is acted upon here, as glibc's own `getaddrinfo` would have at
/// its `poll`. The forced unwind leaves from this frame, outside `catch_unwind`.
pub(super) fn pre_lookup<T>(f: impl FnOnce() -> T) -> Pre<T> {
    let (r, cancellable) = pre_window(f);
    if cancellable {
        cancel_point();
    }
    r
}

/// A cancellation point (`pthread_testcancel`).
pub(super) fn cancel_point() {
    // SAFETY: no preconditions. If a cancellation is pending, glibc unwinds from here
    // through this frame and the stub's (neither holds anything to release).
    unsafe { pthread_testcancel() };
}

fn fail(e: c_int) -> c_int {
    set_errno(e);
    -1
}

/// Whether `addr` is an `AF_UNSPEC` address (`connect`'s "dissolve the association").
///
/// # Safety
/// `addr` is NULL or points to `len` readable bytes.
unsafe fn is_unspec(addr: *const sockaddr, len: socklen_t) -> bool {
    if addr.is_null() || (len as usize) < size_of::<libc::sa_family_t>() {
        return false;
    }
    // SAFETY: the caller's contract; len covers the family field.
    let family = unsafe { std::ptr::read_unaligned(addr.cast::<libc::sa_family_t>()) };
    family as c_int == libc::AF_UNSPEC
}

const PANIC_ERRNO: c_int = libc::ENETUNREACH;

/// ## Hook
/// Replaces `socket(2)`: records the new socket's family and type.
#[cfg_attr(not(test), unsafe(export_name = "mifshim_engine_socket"))]
pub unsafe extern "C" fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    // SAFETY: the program's arguments, forwarded.
    let fd = unsafe { real::socket(domain, ty, protocol) };
    if fd >= 0 {
        let _ = pre(|| ops::socket_created(fd, domain, ty, protocol));
    }
    fd
}

/// ## Hook
/// Replaces `connect(2)`: binds the socket to the chosen interface first.
#[cfg_attr(not(test), unsafe(export_name = "mifshim_engine_connect"))]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    // SAFETY: connect(2)'s contract: addr points to len readable bytes.
    let dest = unsafe { decode_sockaddr(addr, len) };
    // SAFETY: as above.
    if dest.is_none() && unsafe { is_unspec(addr, len) } {
        // A disconnect: the kernel drops a UDP socket's device binding with its peer.
        // SAFETY: the program's arguments, forwarded.
        let r = unsafe { real::connect(fd, addr, len) };
        let _ = pre(|| ops::disconnected(fd));
        return r;
    }
    match pre(|| ops::connect(fd, dest)) {
        Pre::Run(Ok(None)) => {
            // SAFETY: the program's arguments, forwarded.
            unsafe { real::connect(fd, addr, len) }
        }
        Pre::Run(Ok(Some(to))) => {
            let v6 = dest.is_some_and(|d| d.addr.is_ipv6());
            let (ss, sl) = to_sockaddr(&to, v6);
            // SAFETY: our encoding of the redirected server, alive for the call.
            unsafe { real::connect(fd, (&raw const ss).cast(), sl) }
        }
        Pre::Run(Err(e)) => fail(e),
        Pre::Panicked => fail(PANIC_ERRNO),
    }
}

/// ## Hook
/// Replaces `sendto(2)`: a datagram to a steered destination is sent with a PKTINFO
/// control message naming the interface; a Fast Open send binds like `connect`.
/// (Datagrams without a destination, and those the stub's fast path recognises as
/// already steered — `mifshim_fastpath::is_fast` — never get here.)
#[cfg_attr(not(test), unsafe(export_name = "mifshim_engine_sendto"))]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: usize,
    flags: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> isize {
    // SAFETY: sendto(2)'s contract: addr is NULL or points to len readable bytes.
    let dest = unsafe { send_dest(fd, addr, len) };
    let plan = match dest {
        None => Plan::AsIs,
        Some(_) => match pre(|| ops::send(fd, dest, flags, "sendto", false)) {
            Pre::Run(p) => p,
            Pre::Panicked => Plan::Fail(PANIC_ERRNO),
        },
    };
    match plan {
        // SAFETY: the program's arguments, forwarded.
        Plan::AsIs => unsafe { real::sendto(fd, buf, n, flags, addr, len) },
        Plan::Fail(e) => fail(e) as isize,
        // SAFETY: the program's arguments, re-expressed as a sendmsg.
        Plan::Via(p) => unsafe { sendto_via(fd, buf, n, flags, addr, len, p) },
        Plan::Redirect(to, p) => {
            let v6 = dest.is_some_and(|d| d.addr.is_ipv6());
            let (ss, sl) = to_sockaddr(&to, v6);
            let a = (&raw const ss).cast::<sockaddr>();
            match p {
                // SAFETY: the program's buffer with our encoded server address.
                Some(p) => unsafe { sendto_via(fd, buf, n, flags, a, sl, p) },
                // SAFETY: as above.
                None => unsafe { real::sendto(fd, buf, n, flags, a, sl) },
            }
        }
    }
}

/// ## Hook
/// Replaces `sendmsg(2)`: as `sendto`, adding our PKTINFO to the program's control
/// messages in a copy.
#[cfg_attr(not(test), unsafe(export_name = "mifshim_engine_sendmsg"))]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> isize {
    // SAFETY: sendmsg(2)'s contract: msg is a valid msghdr.
    let dest = unsafe { msg_send_dest(fd, msg) };
    let plan = match dest {
        None => Plan::AsIs,
        Some(_) => match pre(|| ops::send(fd, dest, flags, "sendmsg", false)) {
            Pre::Run(p) => p,
            Pre::Panicked => Plan::Fail(PANIC_ERRNO),
        },
    };
    match plan {
        Plan::Redirect(to, p) => {
            let v6 = dest.is_some_and(|d| d.addr.is_ipv6());
            let mut copy = MsgCopy::new();
            // SAFETY: msg is the program's valid msghdr.
            if unsafe { copy.redirect(msg, &to, v6, p) } {
                // SAFETY: the copy points at the program's buffers and our own, alive
                // for the call.
                unsafe { real::sendmsg(fd, copy.hdr(), flags) }
            } else {
                fail(libc::EMSGSIZE) as isize
            }
        }
        // SAFETY: the program's arguments, forwarded.
        Plan::AsIs => unsafe { real::sendmsg(fd, msg, flags) },
        Plan::Fail(e) => fail(e) as isize,
        Plan::Via(p) => {
            let mut copy = MsgCopy::new();
            // SAFETY: msg is the program's valid msghdr.
            match unsafe { copy.prepare(msg, p) } {
                // SAFETY: the copy points at the program's buffers and our control
                // buffer, both valid for the call.
                Prepared::Rewritten => unsafe { real::sendmsg(fd, copy.hdr(), flags) },
                // SAFETY: the program's arguments, forwarded.
                Prepared::AsIs => unsafe { real::sendmsg(fd, msg, flags) },
                Prepared::TooBig => match pre(|| ops::send_fallback_bind(fd, dest, p)) {
                    Pre::Run(Err(e)) => fail(e) as isize,
                    Pre::Panicked => fail(PANIC_ERRNO) as isize,
                    // SAFETY: the program's arguments, forwarded.
                    _ => unsafe { real::sendmsg(fd, msg, flags) },
                },
            }
        }
    }
}

/// How many messages of one `sendmmsg` the shim rewrites at a time. A larger batch is
/// sent in part; sendmmsg(2) allows that and callers resend the rest.
const MMSG_BATCH: usize = 8;

/// The destination every message of a `sendmmsg` batch names, if they all name the
/// same one (the common case: a QUIC or RTP sender batching to its peer).
///
/// # Safety
/// `msgs` has `vlen` valid entries (sendmmsg(2)'s contract).
unsafe fn uniform_dest(fd: c_int, msgs: *const libc::mmsghdr, vlen: c_uint) -> Option<Dest> {
    // SAFETY: the caller's contract; vlen >= 1 is checked by the caller.
    let first = unsafe { msg_send_dest(fd, &(*msgs).msg_hdr) }?;
    // The kernel sends at most UIO_MAXIOV messages of a batch; so do we look.
    for i in 1..(vlen as usize).min(UIO_MAXIOV) {
        // SAFETY: i < vlen.
        if unsafe { msg_send_dest(fd, &(*msgs.add(i)).msg_hdr) } != Some(first) {
            return None;
        }
    }
    Some(first)
}

/// ## Hook
/// Replaces `sendmmsg(2)`. A batch whose messages all go to one destination is
/// decided once, like a `sendto`: once the socket's unicast interface is set the
/// whole batch goes out unchanged (and the stub's fast path then skips the engine).
/// Otherwise every message is decided on its own, with its own PKTINFO, at most
/// [`MMSG_BATCH`] at a time; the batch is cut before the first refused message
/// (which then fails the next call, or this one if it is first).
#[cfg_attr(not(test), unsafe(export_name = "mifshim_engine_sendmmsg"))]
pub unsafe extern "C" fn sendmmsg(
    fd: c_int,
    msgs: *mut libc::mmsghdr,
    vlen: c_uint,
    flags: c_int,
) -> c_int {
    if msgs.is_null() || vlen == 0 {
        // SAFETY: forwarded; the kernel reports EFAULT/0 itself.
        return unsafe { real::sendmmsg(fd, msgs, vlen, flags) };
    }
    let n = (vlen as usize).min(MMSG_BATCH);
    let mut plans = [Plan::AsIs; MMSG_BATCH];
    // SAFETY: sendmmsg(2)'s contract: msgs has vlen >= 1 valid entries.
    if let Some(dest) = unsafe { uniform_dest(fd, msgs, vlen) } {
        match pre(|| ops::send(fd, Some(dest), flags, "sendmmsg", false)) {
            Pre::Run(Plan::AsIs) => {
                // SAFETY: the program's arguments, forwarded.
                return unsafe { real::sendmmsg(fd, msgs, vlen, flags) };
            }
            Pre::Run(Plan::Fail(e)) => return fail(e),
            Pre::Panicked => return fail(PANIC_ERRNO),
            Pre::Run(Plan::Via(p)) => {
                plans = [Plan::Via(p); MMSG_BATCH];
                // SAFETY: as below: n <= vlen entries, each prepared with this plan.
                return unsafe { send_planned(fd, msgs, n, flags, &plans) };
            }
            Pre::Run(Plan::Redirect(to, p)) => {
                // A redirected DNS query goes alone, as the per-message path sends it.
                // SAFETY: the program's first message, valid per sendmmsg(2).
                let hdr = unsafe { &(*msgs).msg_hdr };
                let mut copy = MsgCopy::new();
                // SAFETY: hdr is the program's valid msghdr.
                if !unsafe { copy.redirect(hdr, &to, dest.addr.is_ipv6(), p) } {
                    return fail(libc::EMSGSIZE);
                }
                // SAFETY: the copy points at the program's buffers and our own.
                let r = unsafe { real::sendmsg(fd, copy.hdr(), flags) };
                if r < 0 {
                    return -1;
                }
                // SAFETY: the program's first entry; msg_len is its field to fill.
                unsafe { (*msgs).msg_len = r as c_uint };
                return 1;
            }
        }
    }
    let mut any = false;
    let mut cut = n;
    for (i, plan) in plans.iter_mut().enumerate().take(n) {
        // SAFETY: sendmmsg(2)'s contract: msgs has vlen valid entries; i < vlen.
        let dest: Option<Dest> = unsafe { msg_send_dest(fd, &(*msgs.add(i)).msg_hdr) };
        if dest.is_none() {
            continue;
        }
        *plan = match pre(|| ops::send(fd, dest, flags, "sendmmsg", true)) {
            Pre::Run(p) => p,
            Pre::Panicked => Plan::Fail(PANIC_ERRNO),
        };
        match *plan {
            Plan::AsIs => {}
            Plan::Redirect(..) if i == 0 => {
                // A redirected DNS query goes alone, through the sendmsg path.
                // SAFETY: the program's first message, valid per sendmmsg(2).
                let r = unsafe { sendmsg(fd, &(*msgs).msg_hdr, flags) };
                if r < 0 {
                    return -1;
                }
                // SAFETY: as above; msg_len is the program's field to fill.
                unsafe { (*msgs).msg_len = r as c_uint };
                return 1;
            }
            Plan::Redirect(..) => {
                cut = i;
                break;
            }
            Plan::Via(_) => any = true,
            Plan::Fail(e) => {
                if i == 0 {
                    return fail(e);
                }
                cut = i;
                break;
            }
        }
    }
    if !any {
        // Only the first `cut` messages were decided: send those (a prefix of the
        // program's batch) and let the program come back for the rest.
        // SAFETY: forwarded, possibly with fewer messages.
        return unsafe { real::sendmmsg(fd, msgs, cut as c_uint, flags) };
    }
    // SAFETY: cut <= n <= vlen valid entries, decided in `plans`.
    unsafe { send_planned(fd, msgs, cut, flags, &plans) }
}

/// Sends the first `cut` messages of the program's batch, each `Plan::Via` one with
/// its PKTINFO added in a copy, and reports back what the kernel wrote.
///
/// # Safety
/// `msgs` has at least `cut` (<= [`MMSG_BATCH`]) valid entries.
unsafe fn send_planned(
    fd: c_int,
    msgs: *mut libc::mmsghdr,
    mut cut: usize,
    flags: c_int,
    plans: &[Plan; MMSG_BATCH],
) -> c_int {
    let mut copies: [MsgCopy; MMSG_BATCH] = std::array::from_fn(|_| MsgCopy::new());
    // SAFETY: a zeroed mmsghdr is valid (null pointers, zero lengths).
    let mut out: [libc::mmsghdr; MMSG_BATCH] = unsafe { std::mem::zeroed() };
    for i in 0..cut {
        // SAFETY: i < cut <= vlen; the program's entries are valid.
        let hdr = unsafe { &(*msgs.add(i)).msg_hdr };
        out[i].msg_hdr = *hdr;
        if let Plan::Via(p) = plans[i] {
            // SAFETY: hdr is the program's valid msghdr.
            match unsafe { copies[i].prepare(hdr, p) } {
                // SAFETY: hdr() points into copies[i], alive until after the call.
                Prepared::Rewritten => out[i].msg_hdr = unsafe { *copies[i].hdr() },
                Prepared::AsIs => {}
                Prepared::TooBig => {
                    let d = hdr_dest(fd, hdr);
                    match pre(|| ops::send_fallback_bind(fd, d, p)) {
                        Pre::Run(Ok(())) => {}
                        // Not steerable: send the messages before it, never this one
                        // unchanged.
                        Pre::Run(Err(e)) if i == 0 => return fail(e),
                        _ if i == 0 => return fail(PANIC_ERRNO),
                        _ => {
                            cut = i;
                            break;
                        }
                    }
                }
            }
        }
    }
    // SAFETY: out holds `cut` valid headers pointing at the program's buffers and at
    // our control buffers, all alive for the call.
    let sent = unsafe { real::sendmmsg(fd, out.as_mut_ptr(), cut as c_uint, flags) };
    if sent > 0 {
        for (i, o) in out.iter().enumerate().take(sent as usize) {
            // SAFETY: i < sent <= cut <= vlen: the program's entry, written as the
            // kernel would have.
            unsafe { (*msgs.add(i)).msg_len = o.msg_len };
        }
    }
    sent
}

fn hdr_dest(fd: c_int, hdr: &libc::msghdr) -> Option<Dest> {
    // SAFETY: hdr is a valid msghdr (the program's).
    unsafe { msg_send_dest(fd, hdr) }
}

/// The most messages the kernel takes from one `sendmmsg` (`UIO_MAXIOV`).
const UIO_MAXIOV: usize = 1024;

/// The destination a send names, as the kernel reads it: an INET/INET6 address, or an
/// `AF_UNSPEC` one on an IPv4 socket, which the kernel takes as `AF_INET`
/// (`decode_unspec_as_inet`).
///
/// # Safety
/// `addr` is NULL or points to `len` readable bytes.
unsafe fn send_dest(fd: c_int, addr: *const sockaddr, len: socklen_t) -> Option<Dest> {
    // SAFETY: the caller's contract.
    if let Some(d) = unsafe { decode_sockaddr(addr, len) } {
        return Some(d);
    }
    // SAFETY: the caller's contract.
    let d = unsafe { decode_unspec_as_inet(addr, len) }?;
    match pre(|| ops::is_ipv4_socket(fd)) {
        Pre::Run(true) => Some(d),
        _ => None,
    }
}

/// [`send_dest`] of a `msghdr`'s `msg_name`.
///
/// # Safety
/// `msg` is NULL or a valid msghdr.
unsafe fn msg_send_dest(fd: c_int, msg: *const libc::msghdr) -> Option<Dest> {
    if msg.is_null() {
        return None;
    }
    // SAFETY: msg is valid; msg_name/msg_namelen describe the program's address.
    unsafe { send_dest(fd, (*msg).msg_name as *const sockaddr, (*msg).msg_namelen) }
}

/// ## Hook
/// Replaces `bind(2)`: a UDP socket bound to the wildcard address on a fixed port is
/// a server and is confined to the chosen interface (`listen = "interface"`).
#[cfg_attr(not(test), unsafe(export_name = "mifshim_engine_bind"))]
pub unsafe extern "C" fn bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    // SAFETY: bind(2)'s contract: addr points to len readable bytes.
    let a = unsafe { decode_sockaddr(addr, len) };
    match pre(|| ops::bind(fd, a)) {
        // SAFETY: the program's arguments, forwarded.
        Pre::Run(Ok(())) => unsafe { real::bind(fd, addr, len) },
        Pre::Run(Err(e)) => fail(e),
        Pre::Panicked => fail(PANIC_ERRNO),
    }
}

/// ## Hook
/// Replaces `listen(2)`: a wildcard TCP listener is confined to the chosen interface.
#[cfg_attr(not(test), unsafe(export_name = "mifshim_engine_listen"))]
pub unsafe extern "C" fn listen(fd: c_int, backlog: c_int) -> c_int {
    match pre(|| ops::listen(fd)) {
        // SAFETY: the program's arguments, forwarded.
        Pre::Run(Ok(())) => unsafe { real::listen(fd, backlog) },
        Pre::Run(Err(e)) => fail(e),
        Pre::Panicked => fail(PANIC_ERRNO),
    }
}

/// ## Hook
/// Replaces `setsockopt(2)`: the program's options are always applied; a multicast
/// join on "any interface" is pointed at the chosen interface, and the program's own
/// interface choices are remembered so the shim leaves them alone.
#[cfg_attr(not(test), unsafe(export_name = "mifshim_engine_setsockopt"))]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    let bytes: &[u8] = if val.is_null() || len == 0 || len > 4096 {
        &[]
    } else {
        // SAFETY: setsockopt(2)'s contract: val points to len readable bytes.
        unsafe { std::slice::from_raw_parts(val.cast::<u8>(), len as usize) }
    };
    if level == libc::SOL_SOCKET
        && matches!(
            name,
            libc::SO_ATTACH_FILTER | libc::SO_ATTACH_BPF | libc::SO_DETACH_FILTER
        )
    {
        // A listener the shim confined by a filter keeps its admission.
        let opt = super::filter::ProgramOpt::new(val, len);
        match pre(|| ops::setsockopt_filter(fd, name, opt)) {
            Pre::Run(Some(Ok(()))) => return 0,
            Pre::Run(Some(Err(e))) => return fail(e),
            Pre::Panicked => return fail(PANIC_ERRNO),
            _ => {}
        }
    }
    let r = match pre(|| ops::setsockopt_rewrite(fd, level, name, bytes)) {
        Pre::Run(Ok(Some(o))) => {
            // SAFETY: our rewritten copy, o.len bytes, alive for the call.
            unsafe { real::setsockopt(fd, level, name, o.buf.as_ptr().cast(), o.len as socklen_t) }
        }
        Pre::Run(Err(e)) => return fail(e),
        // SAFETY: the program's arguments, forwarded.
        _ => unsafe { real::setsockopt(fd, level, name, val, len) },
    };
    if r == 0 {
        let _ = pre(|| ops::setsockopt_done(fd, level, name, bytes));
    }
    r
}

/// ## Hook
/// Replaces `close(2)`: forgets what the shim knew about the fd. Never logs.
#[cfg_attr(not(test), unsafe(export_name = "mifshim_engine_close"))]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    let _ = pre(|| ops::fd_closing(fd));
    // SAFETY: the program's argument, forwarded.
    unsafe { real::close(fd) }
}

/// ## Hook
/// Replaces `dup(2)`.
#[cfg_attr(not(test), unsafe(export_name = "mifshim_engine_dup"))]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    // SAFETY: the program's argument, forwarded.
    let r = unsafe { real::dup(fd) };
    if r >= 0 {
        let _ = pre(|| ops::fd_duplicated(fd, r));
    }
    r
}

/// ## Hook
/// Replaces `dup2(2)`.
#[cfg_attr(not(test), unsafe(export_name = "mifshim_engine_dup2"))]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    if old != new {
        let _ = pre(|| ops::fd_replacing(new));
    }
    // SAFETY: the program's arguments, forwarded.
    let r = unsafe { real::dup2(old, new) };
    if r >= 0 && old != new {
        let _ = pre(|| ops::fd_duplicated(old, new));
    }
    r
}

/// ## Hook
/// Replaces `dup3(2)`.
#[cfg_attr(not(test), unsafe(export_name = "mifshim_engine_dup3"))]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    if old != new {
        let _ = pre(|| ops::fd_replacing(new));
    }
    // SAFETY: the program's arguments, forwarded.
    let r = unsafe { real::dup3(old, new, flags) };
    if r >= 0 {
        let _ = pre(|| ops::fd_duplicated(old, new));
    }
    r
}

/// ## Hook
/// Replaces `accept(2)`: the new fd number's old entry is forgotten.
#[cfg_attr(not(test), unsafe(export_name = "mifshim_engine_accept"))]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    // SAFETY: the program's arguments, forwarded.
    let r = unsafe { real::accept(fd, addr, len) };
    if r >= 0 {
        let _ = pre(|| ops::fd_accepted(fd, r));
    }
    r
}

/// ## Hook
/// Replaces `accept4(2)`.
#[cfg_attr(not(test), unsafe(export_name = "mifshim_engine_accept4"))]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    // SAFETY: the program's arguments, forwarded.
    let r = unsafe { real::accept4(fd, addr, len, flags) };
    if r >= 0 {
        let _ = pre(|| ops::fd_accepted(fd, r));
    }
    r
}

/// Shows the program a redirected DNS server's address as the one it asked (see
/// `crate::redirect`). `cap` is the room the program gave for the address.
///
/// # Safety
/// `addr` points to `cap` writable bytes and `len` to the kernel-written length.
unsafe fn disguise(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, cap: socklen_t) {
    if !crate::redirect::flagged(fd) {
        return;
    }
    // SAFETY: the kernel wrote *len bytes of address into addr (<= cap).
    let Some(from) = (unsafe { decode_sockaddr(addr, (*len).min(cap)) }) else {
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
#[cfg_attr(not(test), unsafe(export_name = "mifshim_engine_recvfrom"))]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: usize,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> isize {
    // SAFETY: recvfrom(2)'s contract: len is NULL or points to the room in addr.
    let cap = if addr.is_null() || len.is_null() {
        0
    } else {
        // SAFETY: len is non-null and points to the caller's socklen_t.
        unsafe { *len }
    };
    // SAFETY: the program's arguments, forwarded.
    let r = unsafe { real::recvfrom(fd, buf, n, flags, addr, len) };
    if r >= 0 && cap > 0 {
        let saved = errno();
        // SAFETY: addr has cap bytes of room; the kernel set *len.
        unsafe { disguise(fd, addr, len, cap) };
        set_errno(saved);
    }
    r
}

/// ## Hook
/// Replaces `recvmsg(2)`: only to disguise redirected DNS answers.
#[cfg_attr(not(test), unsafe(export_name = "mifshim_engine_recvmsg"))]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> isize {
    // SAFETY: recvmsg(2)'s contract: msg is a valid msghdr.
    let cap = if msg.is_null() || unsafe { (*msg).msg_name.is_null() } {
        0
    } else {
        // SAFETY: msg is non-null and valid (recvmsg(2)'s contract).
        unsafe { (*msg).msg_namelen }
    };
    // SAFETY: the program's arguments, forwarded.
    let r = unsafe { real::recvmsg(fd, msg, flags) };
    if r >= 0 && cap > 0 {
        let saved = errno();
        // SAFETY: msg_name has cap bytes of room; the kernel set msg_namelen.
        unsafe { disguise(fd, (*msg).msg_name.cast(), &raw mut (*msg).msg_namelen, cap) };
        set_errno(saved);
    }
    r
}

/// ## Hook
/// Replaces `recvmmsg(2)`: only to disguise redirected DNS answers, message by
/// message, as `recvmsg`.
#[cfg_attr(not(test), unsafe(export_name = "mifshim_engine_recvmmsg"))]
pub unsafe extern "C" fn recvmmsg(
    fd: c_int,
    msgs: *mut libc::mmsghdr,
    vlen: c_uint,
    flags: c_int,
    timeout: *mut libc::timespec,
) -> c_int {
    // The room each message offers for its source address, before the kernel
    // overwrites msg_namelen (the kernel takes at most UIO_MAXIOV messages).
    let mut caps = [0 as socklen_t; UIO_MAXIOV];
    let n = if msgs.is_null() {
        0
    } else {
        (vlen as usize).min(UIO_MAXIOV)
    };
    for (i, cap) in caps.iter_mut().enumerate().take(n) {
        // SAFETY: recvmmsg(2)'s contract: msgs has vlen valid entries; i < vlen.
        let h = unsafe { &(*msgs.add(i)).msg_hdr };
        *cap = if h.msg_name.is_null() {
            0
        } else {
            h.msg_namelen
        };
    }
    // SAFETY: the program's arguments, forwarded.
    let r = unsafe { real::recvmmsg(fd, msgs, vlen, flags, timeout) };
    if r > 0 && crate::redirect::flagged(fd) {
        let saved = errno();
        for (i, cap) in caps.iter().enumerate().take((r as usize).min(n)) {
            if *cap > 0 {
                // SAFETY: message i was received (i < r): its msg_name has cap bytes
                // of room and the kernel set its msg_namelen.
                unsafe {
                    let h = &raw mut (*msgs.add(i)).msg_hdr;
                    disguise(fd, (*h).msg_name.cast(), &raw mut (*h).msg_namelen, *cap);
                }
            }
        }
        set_errno(saved);
    }
    r
}

/// ## Hook
/// Replaces `getpeername(2)`: a socket connected to a redirected DNS server reports
/// the server the program asked for.
#[cfg_attr(not(test), unsafe(export_name = "mifshim_engine_getpeername"))]
pub unsafe extern "C" fn getpeername(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    // SAFETY: getpeername(2)'s contract: len points to the room in addr.
    let cap = if addr.is_null() || len.is_null() {
        0
    } else {
        // SAFETY: len is non-null and points to the caller's socklen_t.
        unsafe { *len }
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
#[cfg_attr(not(test), unsafe(export_name = "mifshim_engine_fcntl"))]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    // SAFETY: the program's arguments, forwarded.
    let r = unsafe { real::fcntl(fd, cmd, arg) };
    if r >= 0 && (cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC) {
        let _ = pre(|| ops::fd_duplicated(fd, r));
    }
    r
}

/// ## Hook
/// Replaces `fcntl64`, glibc's name for `fcntl` in programs built with 64-bit
/// `off_t`/`time_t` interfaces: as [`fcntl`].
#[cfg_attr(not(test), unsafe(export_name = "mifshim_engine_fcntl64"))]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    // SAFETY: the program's arguments, forwarded.
    let r = unsafe { real::fcntl64(fd, cmd, arg) };
    if r >= 0 && (cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC) {
        let _ = pre(|| ops::fd_duplicated(fd, r));
    }
    r
}

/// `close_range` flag: mark close-on-exec instead of closing.
const CLOSE_RANGE_CLOEXEC: c_uint = 1 << 2;

/// ## Hook
/// Replaces `close_range(2)`: forgets what the shim knew about every fd it closes.
#[cfg_attr(not(test), unsafe(export_name = "mifshim_engine_close_range"))]
pub unsafe extern "C" fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    if flags as c_uint & CLOSE_RANGE_CLOEXEC == 0 && first <= last {
        let _ = pre(|| ops::fds_closing(first, last));
    }
    // SAFETY: the program's arguments, forwarded.
    unsafe { real::close_range(first, last, flags) }
}

/// ## Hook
/// Replaces `closefrom(3)`: as `close_range(lowfd, ~0, 0)`.
#[cfg_attr(not(test), unsafe(export_name = "mifshim_engine_closefrom"))]
pub unsafe extern "C" fn closefrom(lowfd: c_int) {
    let first = lowfd.max(0) as c_uint;
    let _ = pre(|| ops::fds_closing(first, c_uint::MAX));
    // SAFETY: the program's argument, forwarded.
    unsafe { real::closefrom(lowfd) }
}

/// ## Hook
/// Replaces `fclose(3)`: the stream's fd (a socket wrapped by `fdopen`, say) is closed
/// by glibc internally, where no hook sees it; forget it first.
#[cfg_attr(not(test), unsafe(export_name = "mifshim_engine_fclose"))]
pub unsafe extern "C" fn fclose(stream: *mut libc::FILE) -> c_int {
    if !stream.is_null() {
        // SAFETY: the program's stream (fclose(3)'s contract: a valid FILE).
        let fd = unsafe { libc::fileno(stream) };
        if fd >= 0 {
            let _ = pre(|| ops::fd_closing(fd));
        }
    }
    // SAFETY: the program's argument, forwarded.
    unsafe { real::fclose(stream) }
}
