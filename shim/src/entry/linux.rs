//! The socket and fd entry points of the calls only Linux's C library has
//! (`sendmmsg`, `recvmmsg`, `accept4`, `dup3`, `fcntl64`, `close_range`,
//! `closefrom`: the list's `#[cfg(target_os = "linux")]` entries), over the same
//! helpers as the shared ones in [`super::socket`], whose module comment states the
//! invariants both keep.

use super::socket::{control_of, disguise, send_copy, send_dest, sendmsg, unnamed};
use crate::ops::{self, Ctl, Plan};
use crate::sys::guard::{Errno, decide, keep_errno, note, pre};
use crate::sys::real;
use crate::sys::uaccess;
use crate::sys::{BadMsg, Dest, MsgCopy, uapi};
use libc::{c_int, c_uint, sockaddr, socklen_t};
use mifshim_socket_core::mmsg::{self, Batch, ControlStep, Next, Uniform};

/// At most this many messages of one multi-destination `sendmmsg` are rewritten.
const MMSG_BATCH: usize = mmsg::MMSG_BATCH;
const _: () = assert!(mmsg::UIO_MAXIOV == uapi::UIO_MAXIOV);

/// Entry `i` of a program's `sendmmsg` array, read without faulting.
fn mmsg_entry(msgs: *const libc::mmsghdr, i: usize) -> Result<MsgCopy, BadMsg> {
    let e = uaccess::read(msgs.wrapping_add(i)).map_err(|_| BadMsg::Header)?;
    MsgCopy::from_header(e.msg_hdr)
}

/// ## Hook
/// Replaces `sendmmsg(2)`. The batching rules are the socket core's (`mmsg`): a batch
/// whose messages all go to one destination is decided once, like a `sendto` (once
/// the socket's unicast interface is set the whole batch goes out unchanged, and the
/// stub's fast path then skips the engine); otherwise every message is decided on its
/// own, with its own PKTINFO, at most [`MMSG_BATCH`] at a time, and the batch is cut
/// before the first message that cannot go (which then fails the next call, or this
/// one if it is first), as the kernel cuts it.
pub unsafe extern "C" fn sendmmsg(
    fd: c_int,
    msgs: *mut libc::mmsghdr,
    vlen: c_uint,
    flags: c_int,
) -> c_int {
    if mmsg::left_to_the_kernel(msgs.is_null(), vlen) {
        // SAFETY: forwarded; the kernel reports EFAULT/0 itself.
        return unsafe { real::sendmmsg(fd, msgs, vlen, flags) };
    }
    // A message whose control data may give it a source is decided on its own (as
    // if it named no destination: the batch is mixed).
    let dest_of = |i| {
        mmsg_entry(msgs, i).map(|mut m| {
            let plain =
                matches!(m.load_control(), Ctl::Read(b) if !mifshim_fastpath::may_carry_source(b));
            if plain { send_dest(fd, m.name()) } else { None }
        })
    };
    match mmsg::uniform(vlen, dest_of) {
        Uniform::FirstBad(b) => b.answer(fd, flags) as c_int,
        // SAFETY: the program's array, of which `readable` entries could be read.
        Uniform::Same(dest, readable) => unsafe {
            send_to_one(fd, msgs, vlen, flags, dest, readable)
        },
        // SAFETY: the program's array of `vlen` entries.
        Uniform::Mixed => unsafe { send_mixed(fd, msgs, vlen, flags) },
    }
}

/// A batch whose first `readable` messages all name `dest`, decided once.
///
/// # Safety
/// `msgs` is the program's array of `vlen` entries (read without faulting here).
unsafe fn send_to_one(
    fd: c_int,
    msgs: *mut libc::mmsghdr,
    vlen: c_uint,
    flags: c_int,
    dest: Dest,
    readable: usize,
) -> c_int {
    match pre(|| ops::send(fd, Some(dest), flags, "sendmmsg", false, Ctl::Read(&[])))
        .or_panicked(Plan::Fail(Errno::PANICKED.0))
    {
        // A stream's batch (no Fast Open): the kernel ignores the names.
        Plan::AsIs | Plan::Nameless => {
            let count = mmsg::uniform_count(vlen, readable);
            // SAFETY: the program's arguments, forwarded (count <= vlen).
            unsafe { real::sendmmsg(fd, msgs, count, flags) }
        }
        Plan::Fail(e) => Errno(e).fail(),
        Plan::Via(p) => {
            let plans = [Plan::Via(p); MMSG_BATCH];
            let n = mmsg::window(vlen).min(readable);
            // SAFETY: at most `readable` entries, each prepared with this plan.
            unsafe { send_planned(fd, msgs, n, flags, &plans) }
        }
        Plan::Redirect(to, p) => {
            // A redirected DNS query goes alone, as the per-message path sends it.
            let Ok(mut m) = mmsg_entry(msgs, 0) else {
                return Errno(libc::EFAULT).fail();
            };
            m.set_dest(&to, dest.addr.is_ipv6());
            let r = send_copy(fd, &mut m, flags, p, Some(dest), true);
            sent_alone(msgs, r)
        }
    }
}

/// The answer of a batch whose first message was sent alone (`r`: what that send
/// answered).
fn sent_alone(msgs: *mut libc::mmsghdr, r: isize) -> c_int {
    if r < 0 {
        return -1;
    }
    set_msg_len(msgs, 0, r as c_uint)
}

/// Why a message of a batch cannot go, and the call's answer if it is the first.
enum Stop {
    /// It cannot be read: the kernel answers for it.
    Unreadable(BadMsg),
    /// Refused with this errno (by the policy, a device that cannot be bound, or cut
    /// off because sending it would change the socket: `mmsg::cuts_batch`).
    Refused(Errno),
    /// Its control data is refused or unreadable: the kernel answers for the copy
    /// ([`MsgCopy::answer`]).
    Control(Option<c_int>),
}

impl Stop {
    /// The call's answer for its first message (`copy`: that message as copied).
    fn answer(self, fd: c_int, flags: c_int, copy: Option<&mut MsgCopy>) -> c_int {
        match (self, copy) {
            (Stop::Unreadable(b), _) => b.answer(fd, flags) as c_int,
            (Stop::Refused(e), _) => e.fail(),
            (Stop::Control(refused), Some(m)) => m.answer(fd, flags, refused) as c_int,
            (Stop::Control(_), None) => Errno(libc::EFAULT).fail(),
        }
    }
}

/// A multi-destination batch: each of its first [`MMSG_BATCH`] messages decided on its
/// own ([`ops::send_batched`]), then the decided prefix sent.
///
/// # Safety
/// `msgs` is the program's array of `vlen` entries (read without faulting here).
unsafe fn send_mixed(fd: c_int, msgs: *mut libc::mmsghdr, vlen: c_uint, flags: c_int) -> c_int {
    let n = mmsg::window(vlen);
    let mut plans = [Plan::AsIs; MMSG_BATCH];
    let mut any = false;
    let mut cut = n;
    for (i, plan) in plans.iter_mut().enumerate().take(n) {
        let got = decide_message(fd, msgs, i, flags, plan);
        let steered = matches!(got, Ok(mmsg::Msg::Steered));
        match mmsg::next(i, got) {
            Next::Go => any |= steered,
            Next::Fail(stop) => return stop.answer(fd, flags, None),
            Next::Cut(at) => {
                cut = at;
                break;
            }
            Next::Alone => {
                // SAFETY: the program's first entry's msghdr (at offset 0); the
                // sendmsg hook reads it without faulting.
                let r = unsafe { sendmsg(fd, msgs.cast::<libc::msghdr>(), flags) };
                return sent_alone(msgs, r);
            }
        }
    }
    if !any {
        // Only the first `cut` messages were decided: send those (a prefix of the
        // program's batch) and let the program come back for the rest.
        // SAFETY: forwarded, possibly with fewer messages.
        return unsafe { real::sendmmsg(fd, msgs, cut as c_uint, flags) };
    }
    // SAFETY: cut <= n <= vlen entries, decided in `plans`.
    unsafe { send_planned(fd, msgs, cut, flags, &plans) }
}

/// Decides message `i` of a multi-destination batch into `plan`.
fn decide_message(
    fd: c_int,
    msgs: *const libc::mmsghdr,
    i: usize,
    flags: c_int,
    plan: &mut Plan,
) -> Result<mmsg::Msg, Stop> {
    let mut m = mmsg_entry(msgs, i).map_err(Stop::Unreadable)?;
    let Some(dest) = send_dest(fd, m.name()) else {
        if let Plan::Fail(e) = unnamed(fd, &mut m, "sendmmsg") {
            return Err(Stop::Refused(Errno(e)));
        }
        return Ok(mmsg::Msg::Plain);
    };
    let ctl = m.load_control();
    *plan = pre(|| ops::send_batched(fd, Some(dest), flags, Batch::at(i), ctl))
        .or_panicked(Plan::Fail(Errno::PANICKED.0));
    match *plan {
        Plan::AsIs | Plan::Nameless => Ok(mmsg::Msg::Plain),
        Plan::Via(_) => Ok(mmsg::Msg::Steered),
        Plan::Redirect(..) => Ok(mmsg::Msg::Alone),
        Plan::Fail(e) => Err(Stop::Refused(Errno(e))),
    }
}

/// Writes the count the kernel reported for message `i` into the program's entry,
/// as the kernel does (`put_user`): if that memory is not writable the kernel stops
/// there, answering the count so far, or `EFAULT` for the first message. Returns
/// `i + 1` on success.
fn set_msg_len(msgs: *mut libc::mmsghdr, i: usize, len: c_uint) -> c_int {
    let at = msgs
        .wrapping_add(i)
        .cast::<u8>()
        .wrapping_add(size_of::<libc::msghdr>());
    match uaccess::write_u32(at.cast(), len) {
        Ok(()) => i as c_int + 1,
        Err(e) if i == 0 => Errno(e).fail(),
        Err(_) => i as c_int,
    }
}

/// Sends the first `cut` messages of the program's batch, each `Plan::Via` one with
/// its PKTINFO added in a copy, and reports back what the kernel wrote.
///
/// # Safety
/// `msgs` is the program's array of at least `cut` (<= [`MMSG_BATCH`]) entries (read
/// without faulting here).
unsafe fn send_planned(
    fd: c_int,
    msgs: *mut libc::mmsghdr,
    mut cut: usize,
    flags: c_int,
    plans: &[Plan; MMSG_BATCH],
) -> c_int {
    let mut copies: [Option<MsgCopy>; MMSG_BATCH] = std::array::from_fn(|_| None);
    // SAFETY: a zeroed mmsghdr is valid (null pointers, zero lengths).
    let mut out: [libc::mmsghdr; MMSG_BATCH] = unsafe { std::mem::zeroed() };
    for i in 0..cut {
        let got = prepare_message(fd, msgs, i, plans[i], &mut copies[i]);
        match mmsg::next(i, got) {
            Next::Go | Next::Alone => {}
            Next::Fail(stop) => return stop.answer(fd, flags, copies[i].as_mut()),
            Next::Cut(at) => {
                cut = at;
                break;
            }
        }
        if let Some(m) = copies[i].as_mut() {
            out[i].msg_hdr = m.header();
        }
    }
    // SAFETY: out holds `cut` valid headers pointing at the program's buffers and at
    // our copies (which stay in place until after the call).
    let sent = unsafe { real::sendmmsg(fd, out.as_mut_ptr(), cut as c_uint, flags) };
    if sent > 0 {
        for (i, o) in out.iter().enumerate().take(sent as usize) {
            let r = set_msg_len(msgs, i, o.msg_len);
            if r <= i as c_int {
                return r;
            }
        }
    }
    sent
}

/// Reads message `i` of a decided batch into `slot` and, for a `Plan::Via` one, adds
/// its PKTINFO to the copy (or, when the program's control data leaves no room, binds
/// the socket as the socket core says: `mmsg::control`).
fn prepare_message(
    fd: c_int,
    msgs: *const libc::mmsghdr,
    i: usize,
    plan: Plan,
    slot: &mut Option<MsgCopy>,
) -> Result<mmsg::Msg, Stop> {
    let m = slot.insert(mmsg_entry(msgs, i).map_err(Stop::Unreadable)?);
    let Plan::Via(p) = plan else {
        return Ok(mmsg::Msg::Plain);
    };
    match mmsg::control(control_of(m.prepare(p)), false) {
        ControlStep::Send => Ok(mmsg::Msg::Steered),
        ControlStep::Fail(e) => Err(Stop::Refused(Errno(e))),
        // The kernel would send the messages before it and stop there.
        ControlStep::KernelAnswers(refused) => Err(Stop::Control(refused)),
        ControlStep::BindDevice => {
            let d = send_dest(fd, m.name());
            // Not steerable: send the messages before it, never this one unchanged.
            decide(|| ops::send_fallback_bind(fd, d, p)).map_err(Stop::Refused)?;
            Ok(mmsg::Msg::Plain)
        }
    }
}

/// ## Hook
/// Replaces `dup3(2)`.
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    if old != new {
        note(|| ops::fd_replacing(new));
    }
    // SAFETY: the program's arguments, forwarded.
    let r = unsafe { real::dup3(old, new, flags) };
    if r >= 0 {
        note(|| ops::fd_duplicated(old, new));
    }
    r
}

/// ## Hook
/// Replaces `accept4(2)`.
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    // SAFETY: the program's arguments, forwarded.
    let r = unsafe { real::accept4(fd, addr, len, flags) };
    if r >= 0 {
        note(|| ops::fd_accepted(fd, r));
    }
    r
}

/// ## Hook
/// Replaces `recvmmsg(2)`: only to disguise redirected DNS answers, message by
/// message, as `recvmsg`.
pub unsafe extern "C" fn recvmmsg(
    fd: c_int,
    msgs: *mut libc::mmsghdr,
    vlen: c_uint,
    flags: c_int,
    timeout: *mut libc::timespec,
) -> c_int {
    // The room each message offers for its source address, before the kernel
    // overwrites msg_namelen (the kernel takes at most UIO_MAXIOV messages).
    let mut caps = [0 as socklen_t; uapi::UIO_MAXIOV];
    let n = if msgs.is_null() {
        0
    } else {
        (vlen as usize).min(uapi::UIO_MAXIOV)
    };
    for (i, cap) in caps.iter_mut().enumerate().take(n) {
        // An unreadable entry: no room recorded (the kernel stops there itself).
        *cap = match uaccess::read(msgs.wrapping_add(i)) {
            Ok(e) if !e.msg_hdr.msg_name.is_null() => e.msg_hdr.msg_namelen,
            _ => 0,
        };
    }
    // SAFETY: the program's arguments, forwarded.
    let r = unsafe { real::recvmmsg(fd, msgs, vlen, flags, timeout) };
    if r > 0 && crate::redirect::flagged(fd) {
        keep_errno(|| {
            for (i, cap) in caps.iter().enumerate().take((r as usize).min(n)) {
                if *cap > 0 {
                    // SAFETY: message i was received (i < r): its msg_name has cap
                    // bytes of room and the kernel set its msg_namelen.
                    unsafe {
                        let h = &raw mut (*msgs.add(i)).msg_hdr;
                        disguise(fd, (*h).msg_name.cast(), &raw mut (*h).msg_namelen, *cap);
                    }
                }
            }
        });
    }
    r
}

/// ## Hook
/// Replaces `fcntl64`, glibc's name for `fcntl` in programs built with 64-bit
/// `off_t`/`time_t` interfaces: as [`fcntl`].
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    // SAFETY: the program's arguments, forwarded.
    let r = unsafe { real::fcntl64(fd, cmd, arg) };
    if r >= 0 && (cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC) {
        note(|| ops::fd_duplicated(fd, r));
    }
    r
}

/// `close_range` flag: mark close-on-exec instead of closing.
const CLOSE_RANGE_CLOEXEC: c_uint = 1 << 2;

/// ## Hook
/// Replaces `close_range(2)`: forgets what the shim knew about every fd it closes.
pub unsafe extern "C" fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    if flags as c_uint & CLOSE_RANGE_CLOEXEC == 0 && first <= last {
        note(|| ops::fds_closing(first, last));
    }
    // SAFETY: the program's arguments, forwarded.
    unsafe { real::close_range(first, last, flags) }
}

/// ## Hook
/// Replaces `closefrom(3)`: as `close_range(lowfd, ~0, 0)`.
pub unsafe extern "C" fn closefrom(lowfd: c_int) {
    let first = lowfd.max(0) as c_uint;
    note(|| ops::fds_closing(first, c_uint::MAX));
    // SAFETY: the program's argument, forwarded.
    unsafe { real::closefrom(lowfd) }
}
