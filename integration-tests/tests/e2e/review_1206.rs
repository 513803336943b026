//! Hostile review (2026-12-06) of the watcher of `supervisor/src/interrupt.rs` (a
//! worker's blocking call interrupted when the program's waiting thread has a signal
//! to take) with the signal patterns of real programs: Go's SIGURG preemption, a
//! signal taken by `sigwait`/`sigwaitinfo`/`signalfd`, an ignored signal,
//! `pthread_cancel`, `exit_group` and SIGKILL while workers wait, job control. Each
//! test runs the program without mifrun and under `mifrun --supervise --via wlan0`
//! and asserts the native answers (helpers and `PRE`: review_1203c).
//!
//! Open defects found by this review are in `integration-tests/open/review_1206.rs`.

use super::review_1203c::{Mode, run, same_as_native_on};
use super::*;



/// The `interrupted=` count of the supervisor's stats line.
fn interrupted(out: &Out) -> u64 {
    out.stderr
        .rsplit("interrupted=")
        .next()
        .and_then(|w| w.split_whitespace().next())
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no supervisor stats:{}", out.dump()))
}

// ---------------------------------------------------------------------------------
// 1. Go-style preemption: SIGURG at a thread blocked in a send, every 2 ms.
// ---------------------------------------------------------------------------------

const SIGURG_PREEMPT: &str = r#"
def wd():
    time.sleep(40); print('HUNG', flush=True); os._exit(0)
threading.Thread(target=wd, daemon=True).start()
signal.signal(signal.SIGURG, lambda *a: None)
signal.siginterrupt(signal.SIGURG, False)
TOTAL = 1000000
l, c, a = tcp_pair(rcvbuf=4096, sndbuf=4096)
dest = l.getsockname()
res = []
def sender():
    sent = 0; errs = []
    while sent < TOTAL:
        try:
            sent += sto(c, b'x' * min(65536, TOTAL - sent), dest)
        except OSError as e:
            errs.append(en(e.errno))
            if len(errs) > 20: break
    res.append((sent, errs))
t = threading.Thread(target=sender); t.start()
stop = threading.Event(); kicks = [0]
def preempt():
    while not stop.is_set():
        try: signal.pthread_kill(t.ident, signal.SIGURG)
        except OSError: break
        kicks[0] += 1
        time.sleep(0.002)
p = threading.Thread(target=preempt); p.start()
time.sleep(1.0)
n = 0; k = 0
while n < TOTAL:
    b = a.recv(4096)
    if not b: break
    n += len(b); k += 1
    if k % 8 == 0: time.sleep(0.001)
t.join(20)
stop.set(); p.join()
print('sent', res, 'received', n, 'preempted often', kicks[0] > 200, flush=True)
"#;

/// A thread writes 1 MB with named `sendto`s (connected TCP, small buffers, a peer
/// that reads after 1 s, slowly) while another thread sends it SIGURG every 2 ms
/// (`pthread_kill`; a handler with `SA_RESTART`, as Go's runtime installs for its
/// preemption). The kernel restarts the interrupted sends or returns short counts:
/// every byte arrives, no error. Without mifrun and under `--supervise`:
/// `sent [(1000000, [])] received 1000000 preempted often True`; no errno 512 or
/// `EINTR` reaches the program; the supervisor interrupted its workers (measured:
/// `interrupted=49` and `52` in two runs) (held).
#[test]
fn go_style_sigurg_preemption_of_a_blocked_named_send_supervise() {
    let tb = Testbed::up();
    same_as_native_on(&tb, SIGURG_PREEMPT, Mode::Supervise);
    let got = run(&tb, SIGURG_PREEMPT, Mode::Supervise);
    assert!(
        got.stdout
            .contains("sent [(1000000, [])] received 1000000 preempted often True"),
        "{}",
        got.dump()
    );
    assert!(interrupted(&got) >= 1, "{}", got.dump());
}

// ---------------------------------------------------------------------------------
// 2. A blocked signal taken by sigwait / sigwaitinfo / signalfd in another thread.
// ---------------------------------------------------------------------------------

const SIGWAIT: &str = r#"
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
def wd():
    time.sleep(40); print('HUNG', flush=True); os._exit(0)
threading.Thread(target=wd, daemon=True).start()
libc.signalfd.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
TOTAL = 500000
for mode in ('sigwait', 'sigwaitinfo', 'signalfd'):
    got = []
    ready = threading.Event()
    def taker():
        if mode == 'signalfd':
            mask = ctypes.create_string_buffer(128)
            struct.pack_into('<Q', mask, 0, 1 << (signal.SIGUSR1 - 1))
            fd = libc.signalfd(-1, mask, 0)
            ready.set()
            for i in range(3):
                b = os.read(fd, 128); got.append(struct.unpack_from('<I', b, 0)[0])
            os.close(fd)
        else:
            ready.set()
            for i in range(3):
                if mode == 'sigwait': got.append(int(signal.sigwait({signal.SIGUSR1})))
                else: got.append(signal.sigwaitinfo({signal.SIGUSR1}).si_signo)
    w = threading.Thread(target=taker); w.start(); ready.wait()
    l, c, a = tcp_pair(rcvbuf=4096, sndbuf=4096)
    dest = l.getsockname()
    res = []
    def sender():
        sent = 0; errs = []
        while sent < TOTAL:
            try:
                sent += sto(c, b'x' * min(100000, TOTAL - sent), dest)
            except OSError as e:
                errs.append(en(e.errno)); break
        res.append((sent, errs))
    t = threading.Thread(target=sender); t.start()
    time.sleep(0.8)
    for i in range(3):
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(0.3)
    w.join(5)
    print(mode, 'taken', got, 'sender done', res, flush=True)
    n = 0
    while n < TOTAL:
        b = a.recv(1 << 16)
        if not b: break
        n += len(b)
    t.join(10)
    print(mode, 'sent', res, 'received', n, flush=True)
    for x in (l, c, a): x.close()
"#;

/// Every thread blocks SIGUSR1; one takes it with `sigwait`, `sigwaitinfo` or a
/// `signalfd` while another thread waits in a named send (the peer reads later);
/// three process-directed SIGUSR1 300 ms apart. The waiting send must not be
/// interrupted. Without mifrun and under `--supervise`, per way:
/// `sigwait taken [10, 10, 10] sender done []`, then `sigwait sent [(500000, [])]
/// received 500000` (the same for the other two), and under `--supervise`
/// `interrupted=0` (held).
#[test]
fn a_signal_taken_by_sigwait_in_another_thread_does_not_interrupt_a_send_supervise() {
    let tb = Testbed::up();
    same_as_native_on(&tb, SIGWAIT, Mode::Supervise);
    let got = run(&tb, SIGWAIT, Mode::Supervise);
    assert_eq!(interrupted(&got), 0, "{}", got.dump());
}

// ---------------------------------------------------------------------------------
// 3. Ignored signals at the waiting thread.
// ---------------------------------------------------------------------------------

const IGNORED: &str = r#"
def wd():
    time.sleep(40); print('HUNG', flush=True); os._exit(0)
threading.Thread(target=wd, daemon=True).start()
signal.signal(signal.SIGUSR1, signal.SIG_IGN)
signal.signal(signal.SIGUSR2, signal.SIG_IGN)
TOTAL = 500000
l, c, a = tcp_pair(rcvbuf=4096, sndbuf=4096)
dest = l.getsockname()
res = []
def sender():
    sent = 0; errs = []
    while sent < TOTAL:
        try:
            sent += sto(c, b'x' * min(100000, TOTAL - sent), dest)
        except OSError as e:
            errs.append(en(e.errno)); break
    res.append((sent, errs))
t = threading.Thread(target=sender); t.start()
time.sleep(0.8)
for i in range(5):
    signal.pthread_kill(t.ident, signal.SIGUSR1)   # SIG_IGN, at the thread
    os.kill(os.getpid(), signal.SIGUSR2)           # SIG_IGN, at the process
    signal.pthread_kill(t.ident, signal.SIGWINCH)  # ignored by default
    signal.pthread_kill(t.ident, signal.SIGCHLD)
    pid = os.fork()                                # a real SIGCHLD
    if pid == 0: os._exit(0)
    os.waitpid(pid, 0)
    time.sleep(0.1)
time.sleep(0.5)
print('sender done', res, flush=True)
n = 0
while n < TOTAL:
    b = a.recv(1 << 16)
    if not b: break
    n += len(b)
t.join(10)
print('sent', res, 'received', n, flush=True)
"#;

/// A thread waits in a named send; it and the process get signals set to `SIG_IGN`
/// (SIGUSR1 at the thread, SIGUSR2 at the process) and ones ignored by default
/// (SIGWINCH, SIGCHLD at the thread, a child's exit), five rounds. The kernel drops
/// them: the send goes on waiting. Without mifrun and under `--supervise`:
/// `sender done []`, `sent [(500000, [])] received 500000`, and `interrupted=0`
/// (held).
#[test]
fn ignored_signals_do_not_interrupt_a_waiting_send_supervise() {
    let tb = Testbed::up();
    same_as_native_on(&tb, IGNORED, Mode::Supervise);
    let got = run(&tb, IGNORED, Mode::Supervise);
    assert_eq!(interrupted(&got), 0, "{}", got.dump());
}
