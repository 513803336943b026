//! `sendmmsg(2)` batches and a steered message's control data: how many messages an
//! executor looks at, where a batch is cut, and what becomes of a message whose
//! control data leaves no room for the PKTINFO. Pure: the executor reads the
//! program's messages, decides each with [`crate::datagram`], and asks here what to do.
//!
//! ## The rules
//! * The kernel takes at most [`UIO_MAXIOV`] messages of one call, sends them in order
//!   and stops at the first it cannot send, answering the count so far — or the error
//!   if it is the first. `sendmmsg(2)` allows a partial count; callers send the rest
//!   again. An executor does the same at every point where it cannot go on
//!   ([`next`]): **the first message's failure fails the call; a later one's cuts the
//!   batch before it**, and the program's next call starts with that message.
//! * A batch whose messages all name one destination ([`uniform`]) is decided once,
//!   like a `sendto`. Otherwise at most [`MMSG_BATCH`] messages are decided, each on
//!   its own with its own PKTINFO ([`Batch::First`], [`Batch::Later`]).
//! * A later message whose sending would change the socket itself — bind its device,
//!   set the policy's options — is cut off ([`cuts_batch`]): the messages before it
//!   were decided on the socket as it is and must leave as it is (a loopback datagram
//!   first, then one that binds the device, would leave by that device).
//! * A steered message whose control data is too big to copy and extend binds the
//!   socket to the device instead; a redirected DNS query so placed fails
//!   ([`control`]).

use crate::DatagramStep;

/// The most messages the kernel takes from one `sendmmsg` (`UIO_MAXIOV`).
pub const UIO_MAXIOV: usize = 1024;
/// How many messages of a multi-destination `sendmmsg` an executor decides and
/// rewrites at a time. A larger batch is sent in part.
pub const MMSG_BATCH: usize = 8;
/// `EMSGSIZE` (Linux's value).
pub const EMSGSIZE: i32 = 90;

/// Where a datagram stands in its call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Batch {
    /// A call of its own (`sendto`, `sendmsg`, a one-destination `sendmmsg`).
    No,
    /// The first message of a multi-destination `sendmmsg`.
    First,
    /// A later message of one.
    Later,
}

impl Batch {
    /// Message `i` of a multi-destination batch.
    pub fn at(i: usize) -> Batch {
        if i == 0 { Batch::First } else { Batch::Later }
    }

    /// Part of a multi-destination batch (the `batch` of [`crate::datagram`]): every
    /// steered message carries its own PKTINFO.
    pub fn multi(self) -> bool {
        self != Batch::No
    }
}

/// Whether a `sendmmsg` is left to the kernel as it is: a NULL array (`EFAULT`) or no
/// messages (0) — nothing is sent, so nothing is decided.
pub fn left_to_the_kernel(msgs_null: bool, vlen: u32) -> bool {
    msgs_null || vlen == 0
}

/// How many messages of a batch of `vlen` the kernel looks at.
pub fn scan_len(vlen: u32) -> usize {
    (vlen as usize).min(UIO_MAXIOV)
}

/// How many messages of a multi-destination batch of `vlen` are decided in this call.
pub fn window(vlen: u32) -> usize {
    (vlen as usize).min(MMSG_BATCH)
}

/// What the messages of a batch name ([`uniform`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Uniform<D, B> {
    /// The first `n` messages all name this destination; `n` stops before the first
    /// message that cannot be read (the kernel would send the ones before it and
    /// return their count).
    Same(D, usize),
    /// The first message names none, or they differ.
    Mixed,
    /// The first message cannot be read: the call's answer is the kernel's for it.
    FirstBad(B),
}

/// Whether every message of a batch of `vlen` names the same destination (the common
/// case: a QUIC or RTP sender batching to its peer). `dest_of(i)` reads message `i`:
/// `Err` when it cannot be read, `Ok(None)` when it names no destination.
pub fn uniform<D: PartialEq, B>(
    vlen: u32,
    mut dest_of: impl FnMut(usize) -> Result<Option<D>, B>,
) -> Uniform<D, B> {
    let first = match dest_of(0) {
        Ok(Some(d)) => d,
        Ok(None) => return Uniform::Mixed,
        Err(b) => return Uniform::FirstBad(b),
    };
    let n = scan_len(vlen);
    for i in 1..n {
        match dest_of(i) {
            Err(_) => return Uniform::Same(first, i),
            Ok(d) if d.as_ref() != Some(&first) => return Uniform::Mixed,
            Ok(_) => {}
        }
    }
    Uniform::Same(first, n)
}

/// The count to hand the kernel for a one-destination batch sent unchanged, of which
/// the first `readable` messages could be read: the program's own `vlen` when all
/// could (the kernel clamps it), else up to the first unreadable one.
pub fn uniform_count(vlen: u32, readable: usize) -> u32 {
    if readable == scan_len(vlen) {
        vlen
    } else {
        readable as u32
    }
}

/// Whether a later message of a multi-destination batch, planned `step`, is cut off
/// because sending it would change the socket: bind its device (a socket with a fixed
/// source), or set the policy's options first (`options_pending`: the decision has
/// options the socket does not carry yet). Its errno is never seen: it is decided again
/// as the first message of the program's next call.
pub fn cuts_batch(batch: Batch, step: DatagramStep, options_pending: bool) -> bool {
    batch == Batch::Later
        && match step {
            DatagramStep::BindDevice { .. } => true,
            DatagramStep::Pktinfo { .. } | DatagramStep::Promote { .. } => options_pending,
            _ => false,
        }
}

/// What one message of a multi-destination batch came to, as the executor found it
/// (a message that cannot go is the executor's `Err`, see [`next`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Msg {
    /// It goes out as the program wrote it (no destination, or the plan says so).
    Plain,
    /// It goes out with its own PKTINFO, in a copy.
    Steered,
    /// A redirected DNS query: sent alone.
    Alone,
}

/// What an executor does after message `i` ([`next`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next<E> {
    /// Go on to the next message.
    Go,
    /// The first message cannot go: the call fails with that message's own answer
    /// (the executor's reason, handed back).
    Fail(E),
    /// Send the first `n` messages (all decided); the program's next call starts with
    /// message `n`.
    Cut(usize),
    /// Send the first message alone, through the `sendmsg` path, and answer 1 (or its
    /// failure).
    Alone,
}

/// The one rule of cutting: what message `i` coming to `m` means for the batch.
/// `Err(why)`: it cannot go (unreadable, refused by the policy or by the kernel's
/// rules, or cut off by [`cuts_batch`]).
///
/// | message | came to | next |
/// |---|---|---|
/// | any | plain, steered | go on |
/// | first | alone | send it alone |
/// | first | cannot go | fail the call with its answer |
/// | later | alone, cannot go | cut before it |
pub fn next<E>(i: usize, m: Result<Msg, E>) -> Next<E> {
    match m {
        Ok(Msg::Plain | Msg::Steered) => Next::Go,
        Ok(Msg::Alone) if i == 0 => Next::Alone,
        Err(why) if i == 0 => Next::Fail(why),
        Ok(Msg::Alone) | Err(_) => Next::Cut(i),
    }
}

/// What became of adding our PKTINFO to a copy of a message's control data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Added (or the program's own choice of interface kept).
    Ready,
    /// The program's control data is too big to copy and extend.
    TooBig,
    /// Malformed or refused by length: the kernel's errno for it.
    Refused(i32),
    /// The control data cannot be read.
    Unreadable,
}

/// What to do with a steered message, by what became of its control data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlStep {
    /// Send the copy.
    Send,
    /// Bind the socket to the PKTINFO's interface (losing the per-datagram exemptions
    /// for this socket), then send the program's message unchanged; if it cannot be
    /// bound, the message fails.
    BindDevice,
    /// Fail with this errno; nothing is sent.
    Fail(i32),
    /// Let the kernel answer the message with its control data made unreadable, so
    /// that it runs every check it makes first; `Some(errno)` if they pass (malformed
    /// control data, which the kernel finds after them).
    KernelAnswers(Option<i32>),
}

/// The too-big control-buffer fallback, and the rest of what a prepared control
/// buffer means. `redirected`: a DNS query redirected to another server, which is not
/// sent on a device-bound socket (the binding would carry the socket's later traffic).
///
/// | control data | redirected | step |
/// |---|---|---|
/// | ready | any | send the copy |
/// | too big | no | bind the device, send unchanged |
/// | too big | yes | fail (`EMSGSIZE`) |
/// | refused (errno) | any | the kernel answers, else errno |
/// | unreadable | any | the kernel answers |
pub fn control(c: Control, redirected: bool) -> ControlStep {
    match c {
        Control::Ready => ControlStep::Send,
        Control::TooBig if redirected => ControlStep::Fail(EMSGSIZE),
        Control::TooBig => ControlStep::BindDevice,
        Control::Refused(e) => ControlStep::KernelAnswers(Some(e)),
        Control::Unreadable => ControlStep::KernelAnswers(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Message `i` of a test batch: `None` unreadable, `Some(None)` no destination.
    fn batch(dests: &[Option<Option<u8>>]) -> impl FnMut(usize) -> Result<Option<u8>, ()> + '_ {
        move |i| dests.get(i).copied().flatten().ok_or(())
    }

    #[test]
    fn vlen_zero_and_odd_lengths_are_windowed_and_clamped() {
        assert!(left_to_the_kernel(false, 0));
        assert!(left_to_the_kernel(true, 3));
        assert!(!left_to_the_kernel(false, 1));
        assert_eq!(window(0), 0);
        assert_eq!(window(1), 1);
        assert_eq!(window(7), 7);
        assert_eq!(window(9), MMSG_BATCH);
        assert_eq!(window(u32::MAX), MMSG_BATCH);
        assert_eq!(scan_len(0), 0);
        assert_eq!(scan_len(3), 3);
        assert_eq!(scan_len(1025), UIO_MAXIOV);
        assert_eq!(scan_len(u32::MAX), UIO_MAXIOV);
    }

    #[test]
    fn one_destination_batch_is_seen_as_one() {
        let d = [Some(Some(1)), Some(Some(1)), Some(Some(1))];
        assert_eq!(uniform(3, batch(&d)), Uniform::Same(1, 3));
        // A vlen shorter than the array: only vlen are looked at.
        let d = [Some(Some(1)), Some(Some(1)), Some(Some(2))];
        assert_eq!(uniform(2, batch(&d)), Uniform::Same(1, 2));
        assert_eq!(uniform(3, batch(&d)), Uniform::Mixed);
    }

    #[test]
    fn first_message_unreadable_or_without_destination() {
        assert_eq!(uniform(3, batch(&[None])), Uniform::FirstBad(()));
        let d = [Some(None), Some(Some(1))];
        assert_eq!(uniform(2, batch(&d)), Uniform::Mixed);
        // A later message without a destination differs from the first's.
        let d = [Some(Some(1)), Some(None)];
        assert_eq!(uniform(2, batch(&d)), Uniform::Mixed);
    }

    #[test]
    fn an_unreadable_later_message_ends_the_uniform_batch_before_it() {
        let d = [Some(Some(1)), Some(Some(1)), None, Some(Some(1))];
        assert_eq!(uniform(4, batch(&d)), Uniform::Same(1, 2));
        // What is handed to the kernel: up to it.
        assert_eq!(uniform_count(4, 2), 2);
    }

    #[test]
    fn vlen_beyond_uio_maxiov_is_left_to_the_kernel_to_clamp() {
        let mut seen = 0;
        let all = uniform(u32::MAX, |i| {
            seen = seen.max(i + 1);
            Ok::<_, ()>(Some(7u8))
        });
        assert_eq!(all, Uniform::Same(7, UIO_MAXIOV));
        assert_eq!(seen, UIO_MAXIOV, "no message beyond UIO_MAXIOV is read");
        // All readable: the program's own count.
        assert_eq!(uniform_count(u32::MAX, UIO_MAXIOV), u32::MAX);
        assert_eq!(uniform_count(5, 5), 5);
    }

    #[test]
    fn the_first_message_failing_fails_the_call() {
        assert_eq!(next(0, Err("refused")), Next::Fail("refused"));
        assert_eq!(next::<()>(0, Ok(Msg::Alone)), Next::Alone);
        assert_eq!(next::<()>(0, Ok(Msg::Plain)), Next::Go);
        assert_eq!(next::<()>(0, Ok(Msg::Steered)), Next::Go);
    }

    #[test]
    fn a_later_message_failing_cuts_the_batch_and_the_count_so_far_is_sent() {
        for i in [1, 2, MMSG_BATCH - 1] {
            assert_eq!(next(i, Err(())), Next::Cut(i));
            // A redirected DNS query is never sent behind other messages.
            assert_eq!(next::<()>(i, Ok(Msg::Alone)), Next::Cut(i));
            assert_eq!(next::<()>(i, Ok(Msg::Plain)), Next::Go);
            assert_eq!(next::<()>(i, Ok(Msg::Steered)), Next::Go);
        }
    }

    #[test]
    fn a_later_message_that_would_bind_or_set_options_is_cut_off() {
        let pkt = DatagramStep::Pktinfo { ifindex: 3 };
        let bind = DatagramStep::BindDevice { index: 3 };
        assert!(cuts_batch(Batch::Later, bind, false));
        assert!(cuts_batch(Batch::Later, pkt, true));
        assert!(cuts_batch(
            Batch::Later,
            DatagramStep::Promote { index: 3 },
            true
        ));
        assert!(!cuts_batch(Batch::Later, pkt, false));
        // Nothing to set for an unsteered message.
        assert!(!cuts_batch(Batch::Later, DatagramStep::AsIs, true));
        assert!(!cuts_batch(Batch::Later, DatagramStep::PktinfoRoute, true));
        assert!(!cuts_batch(Batch::Later, DatagramStep::Fail(101), true));
        // The first message (and a call of its own) may change the socket: nothing
        // was decided before it.
        for b in [Batch::First, Batch::No] {
            assert!(!cuts_batch(b, bind, true));
            assert!(!cuts_batch(b, pkt, true));
        }
    }

    #[test]
    fn batch_positions() {
        assert_eq!(Batch::at(0), Batch::First);
        assert_eq!(Batch::at(5), Batch::Later);
        assert!(!Batch::No.multi());
        assert!(Batch::First.multi() && Batch::Later.multi());
    }

    #[test]
    fn too_big_control_data_binds_the_device_unless_redirected() {
        assert_eq!(control(Control::Ready, false), ControlStep::Send);
        assert_eq!(control(Control::Ready, true), ControlStep::Send);
        assert_eq!(control(Control::TooBig, false), ControlStep::BindDevice);
        assert_eq!(control(Control::TooBig, true), ControlStep::Fail(EMSGSIZE));
        for r in [false, true] {
            assert_eq!(
                control(Control::Refused(22), r),
                ControlStep::KernelAnswers(Some(22))
            );
            assert_eq!(
                control(Control::Unreadable, r),
                ControlStep::KernelAnswers(None)
            );
        }
    }
}
