//! Defects found by the hostile review of the watcher (`supervisor/src/interrupt.rs`)
//! on 2026-12-06 (branch wt-sigrev2, reviewed at c176ad1): each test asserts the
//! native behaviour and fails on the branch reviewed. Parked, not compiled: see
//! `integration-tests/open/README.md`. The helpers (`left_behind`, `LEFT_BEHIND`)
//! are in `tests/e2e/review_1206.rs`; copy a test there to work on it.
//!
//! - `EINTR` from datagram sends that never wait (a handler without `SA_RESTART`),
//!   for a signal that comes while the notification waits to be received.

use super::review_1206::eintr_outputs;
use super::*;

/// `EINTR_C` (tests/e2e/review_1206.rs) with a handler without `SA_RESTART` (a
/// `sigaction` with `sa_flags` 0, common in C): 20 000 raw named UDP `sendto`s to a
/// loopback socket that reads them, SIGUSR1 at the sending thread every 50 us.
/// Without mifrun (every run): `sent 20000 EINTR 0 other errors 0 signalled often`
/// (a datagram send with room in the buffer never sleeps, so it is never
/// interrupted). Fails on c176ad1 (4 of 4 runs): under `--supervise` `sent 18546
/// EINTR 1454`, `18762 / 1238`, `18945 / 1055`, `18416 / 1584` (5-8 % of the sends),
/// and the stats count only the sends that went (`notifications=18547 …
/// value=18546`): the signal came while the program's thread waited, interruptibly,
/// for the supervisor to receive the notification (the filter's
/// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` makes the wait killable only after the
/// receive), and the kernel returned `ERESTARTSYS`, which a handler without
/// `SA_RESTART` turns into `EINTR`. Nothing was sent, so it is a correct `EINTR` for
/// a call that waited, but these calls do not wait natively; a program that treats
/// `EINTR` from a UDP send as an error (no retry) loses datagrams under
/// `--supervise` only. With `SA_RESTART` the kernel restarts them (held, in
/// review_1206.rs). Not the watcher's doing (`interrupted=0`): the seccomp
/// notification's pre-receive wait; a fix would need the preload (for libc calls)
/// to retry such an `EINTR`, or a kernel that waits killably from the start.
#[test]
fn signals_without_sa_restart_do_not_make_datagram_sends_eintr_supervise() {
    let (n, g) = eintr_outputs("plain");
    assert_eq!(n, "sent 20000 EINTR 0 other errors 0 signalled often\n");
    assert_eq!(g, n);
}
