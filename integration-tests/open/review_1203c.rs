//! Open defect of the supervisor's worker path, found by the review of fc79b11
//! (`tests/e2e/review_1203c.rs`, whose helpers — `PRE`, `same_as_native`, `Mode` —
//! this test uses: paste it back there to work on it).
//!
//! The program's thread waits for a worker's answer in the filter's killable wait
//! (`SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`, needed so that Go's preemption signals do
//! not interrupt every notification), so a handled signal stays pending until the
//! worker's blocking send or connect ends. A fix to try: the worker waits in slices
//! (`MSG_DONTWAIT` + `poll`, the socket's `SO_SNDTIMEO` kept), reads the thread's
//! pending and blocked signals (`/proc/TID/status`), and on a deliverable one answers
//! what was sent, or `-ERESTARTSYS` so that the kernel restarts the call or returns
//! `EINTR` by the handler's `SA_RESTART`, as it does for an interrupted send (check that
//! `SECCOMP_IOCTL_NOTIF_SEND` passes that error through; `EINTR` when the socket has an
//! `SO_SNDTIMEO`, as `sock_intr_errno` says). A blocking connect in a worker needs the
//! same (the worker's `connect` interrupted by a signal of its own).

const ALARM: &str = r#"
def wd():
    time.sleep(12); print('HUNG: the send was not interrupted in 12 s', flush=True); os._exit(0)
threading.Thread(target=wd, daemon=True).start()
class Alarm(Exception): pass
def h(*a): raise Alarm()
signal.signal(signal.SIGALRM, h)
l, c, a = tcp_pair(rcvbuf=4096, sndbuf=4096)
dest = l.getsockname()
t0 = time.time()
signal.setitimer(signal.ITIMER_REAL, 1.0)
try:
    while True:
        sto(c, b'x' * 100000, dest)
except Alarm:
    print('interrupted by the alarm', flush=True)
print('in time', time.time() - t0 < 5, flush=True)
"#;

/// The peer never reads; the program writes with `sendto` and an address on the
/// connected socket until it blocks, and bounds the wait with `setitimer` (SIGALRM
/// whose handler raises).
/// FAILS ON fc79b11: without mifrun `interrupted by the alarm` / `in time True` after
/// 1 s; under `--supervise` the blocked send waits in a worker
/// (`send_read`), the program's call is in the supervisor's killable wait
/// (`SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`), so the SIGALRM is never delivered while
/// the peer does not read: the watchdog thread prints `HUNG` after 12 s. Any program
/// using alarm()/a timer signal to bound a blocking write hangs forever.
#[test]
fn an_alarm_interrupts_a_blocking_named_tcp_send_supervise() {
    same_as_native(ALARM, Mode::Supervise);
}

