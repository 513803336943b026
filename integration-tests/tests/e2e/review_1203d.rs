//! Hostile review (2026-12-03, fourth pass) of 012a4b0 and 9bff9e4: the watcher of
//! `supervisor/src/interrupt.rs` that interrupts a worker's blocking call when the
//! program's waiting thread has a signal to take. Each test runs one Python program
//! without mifrun and under `mifrun --supervise --via wlan0` and asserts the native
//! answers (helpers and `PRE`: review_1203c).
//!
//! Fail on 9bff9e4 (defects, each measured in its doc comment):
//! - `a_process_signal_with_two_threads_blocked_in_sends_supervise`: errno 512
//!   (`ERESTARTSYS`) returned to a thread that had no signal to take.
//! - `a_process_signal_with_sa_restart_and_two_threads_blocked_in_sends_supervise`:
//!   the same with an `SA_RESTART` handler.
//! - `the_watchers_cpu_with_one_blocked_send_among_200_threads_supervise`: ~10 % of
//!   one CPU for a program idle but for one blocked send.
//!
//! The rest pass (behaviour checked and held; the watcher's CPU measured).

use super::review_1203c::{Mode, run, same_as_native, same_as_native_on};
use super::*;

// ---------------------------------------------------------------------------------
// A process-directed signal with two threads waiting in workers.
// ---------------------------------------------------------------------------------

/// `MAIN_BLOCKS`: the main thread (and the watchdog it starts) blocks SIGUSR1; two
/// sender threads unblock it, thread 0 is created first, thread 1 blocks first.
const TWO_SENDERS: &str = r#"
MAIN_BLOCKS = os.environ.get('MAIN_BLOCKS') == '1'
if MAIN_BLOCKS: signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
def wd():
    time.sleep(15); print('HUNG', flush=True); os._exit(0)
threading.Thread(target=wd, daemon=True).start()
hits = []
signal.signal(signal.SIGUSR1, lambda *a: hits.append(1))
if os.environ.get('RESTART') == '1': signal.siginterrupt(signal.SIGUSR1, False)
pairs = [tcp_pair(rcvbuf=4096, sndbuf=4096) for _ in range(2)]
res = {0: [], 1: []}
def sender(i, delay):
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
    l, c, a = pairs[i]; dest = l.getsockname()
    time.sleep(delay)
    try:
        while True:
            sto(c, b'x' * 100000, dest); res[i].append('short')
    except OSError as e:
        res[i].append(en(e.errno))
ts = [threading.Thread(target=sender, args=(0, 0.6), daemon=True),
      threading.Thread(target=sender, args=(1, 0.1), daemon=True)]
for t in ts: t.start()
time.sleep(1.5)
for k in range(2):
    os.kill(os.getpid(), signal.SIGUSR1)
    time.sleep(1.0)
    print('after SIGUSR1', k + 1, res, 'handler ran', len(hits), flush=True)
os._exit(0)
"#;

/// Two threads each blocked in a raw `sendto` (named, connected TCP, peers that never
/// read), thread 0 created first, thread 1 blocked first; the main thread and the
/// watchdog block SIGUSR1; two process-directed SIGUSR1 (`os.kill(os.getpid())`) 1 s
/// apart, with a Python handler (no `SA_RESTART`). The kernel gives each to thread 0
/// (the first thread after the leader that can take it): its first blocked call
/// returns a short count, its second `EINTR` when nothing was sent yet, else a short
/// count too; thread 1 stays blocked. Without mifrun (4 of 4 runs, and 3 runs
/// outside the testbed):
/// `after SIGUSR1 1 {0: ['short'], 1: []} handler ran 1`,
/// `after SIGUSR1 2 {0: ['short', 'EINTR'], 1: []} handler ran 2`;
/// but 2 of 7 later runs without mifrun ended `{0: ['short', 'short'], ...}`: the
/// first call returned 10240 bytes, not 12288, and the last 2048 of the send buffer
/// came free during the second (the kernel's timing, not the supervisor's; a CI run
/// compared such a run's answer with a native one's and failed). So the second
/// answer of thread 0 may be either; what is asserted is who is interrupted.
/// Fails on 9bff9e4 (4 of 4 runs): under `--supervise` the watcher interrupts the
/// thread that waited first (thread 1), which had no signal to take: its first call
/// returns a short count, its second `ERESTARTSYS`, which reaches the program as
/// errno 512 (no user errno):
/// `after SIGUSR1 1 {0: ['short'], 1: ['short']} handler ran 1`,
/// `after SIGUSR1 2 {0: ['short', 'EINTR'], 1: ['short', '512']} handler ran 2`
/// (the limit interrupt.rs's doc names).
#[test]
fn a_process_signal_with_two_threads_blocked_in_sends_supervise() {
    let tb = Testbed::up();
    let body = format!("os.environ['MAIN_BLOCKS'] = '1'\n{TWO_SENDERS}");
    let first = "after SIGUSR1 1 {0: ['short'], 1: []} handler ran 1";
    let second =
        |last: &str| format!("after SIGUSR1 2 {{0: ['short', '{last}'], 1: []}} handler ran 2");
    let (eintr, short) = (second("EINTR"), second("short"));
    for mode in [Mode::Native, Mode::Supervise] {
        let out = run(&tb, &body, mode);
        out.assert_ok();
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert!(
            lines.len() == 2 && lines[0] == first && (lines[1] == eintr || lines[1] == short),
            "{}",
            out.dump()
        );
    }
}

/// The same with `SA_RESTART` for SIGUSR1. Without mifrun thread 0's second call is
/// restarted (its count varies: `{0: ['short'], ...}` in 2 of 4 runs, `{0: ['short',
/// 'short'], ...}` in 2), and thread 1, which is given no signal, never returns:
/// every line ends `1: []} handler ran N`. Asserted: that, and no errno 512.
/// Fails on 9bff9e4 (5 of 5 runs): under `--supervise` thread 1 returns: `after
/// SIGUSR1 2 {0: ['short'], 1: ['short', '512']} handler ran 2` (4 runs), `after
/// SIGUSR1 2 {0: ['short'], 1: ['short']} handler ran 2` (1 run): the `ERESTARTSYS`
/// of a thread that takes no signal is not restarted after an `SA_RESTART` handler
/// either.
#[test]
fn a_process_signal_with_sa_restart_and_two_threads_blocked_in_sends_supervise() {
    let tb = Testbed::up();
    let body =
        format!("os.environ['MAIN_BLOCKS'] = '1'\nos.environ['RESTART'] = '1'\n{TWO_SENDERS}");
    for mode in [Mode::Native, Mode::Supervise] {
        let out = run(&tb, &body, mode);
        out.assert_ok();
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines.len(), 2, "{}", out.dump());
        for (k, l) in lines.iter().enumerate() {
            assert!(
                l.starts_with(&format!("after SIGUSR1 {}", k + 1))
                    && l.ends_with(&format!("1: []}} handler ran {}", k + 1))
                    && !l.contains("512"),
                "{}",
                out.dump()
            );
        }
    }
}

/// The same with the main thread not blocking SIGUSR1 (it sleeps): the kernel gives
/// each signal to the leader, no send is interrupted. Without mifrun and under
/// `--supervise`: `after SIGUSR1 1 {0: [], 1: []} handler ran 1`, then `... 2 ...
/// handler ran 2` (held).
#[test]
fn a_process_signal_taken_by_the_sleeping_main_thread_interrupts_no_send_supervise() {
    same_as_native(TWO_SENDERS, Mode::Supervise);
}

// ---------------------------------------------------------------------------------
// The waiting thread blocks the signal.
// ---------------------------------------------------------------------------------

const BLOCKED_IN_SENDER: &str = r#"
def wd():
    time.sleep(20); print('HUNG', flush=True); os._exit(0)
threading.Thread(target=wd, daemon=True).start()
hits = []
signal.signal(signal.SIGUSR1, lambda *a: hits.append(1))
signal.signal(signal.SIGUSR2, lambda *a: hits.append(2))
TOTAL = 1000000
l, c, a = tcp_pair(rcvbuf=4096, sndbuf=4096)
dest = l.getsockname()
res = []
blocked = threading.Event()
def sender():
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1, signal.SIGUSR2})
    sent = 0; errs = []
    while sent < TOTAL:
        try:
            sent += sto(c, b'x' * min(100000, TOTAL - sent), dest)
        except OSError as e:
            errs.append(en(e.errno)); break
    res.append((sent, errs))
t = threading.Thread(target=sender); t.start()
time.sleep(1.0)
os.kill(os.getpid(), signal.SIGUSR1)
signal.pthread_kill(t.ident, signal.SIGUSR2)
time.sleep(1.0)
print('after the signals: sender done', res, 'handlers', sorted(hits), flush=True)
n = 0
while n < TOTAL:
    b = a.recv(1 << 16)
    if not b: break
    n += len(b)
t.join(10)
print('sent', res, 'received', n, flush=True)
"#;

/// A thread blocked in a named TCP send blocks SIGUSR1 and SIGUSR2; the process gets
/// SIGUSR1 (the sleeping main thread takes it) and the sender gets a thread-directed
/// SIGUSR2 (`pthread_kill`, stays pending). Neither may interrupt the send. Without
/// mifrun and under `--supervise`: `after the signals: sender done [] handlers [1]`,
/// then `sent [(1000000, [])] received 1000000` (held).
#[test]
fn a_signal_the_waiting_thread_blocks_does_not_interrupt_its_send_supervise() {
    same_as_native(BLOCKED_IN_SENDER, Mode::Supervise);
}

// ---------------------------------------------------------------------------------
// sendmmsg on a blocking UDP socket with a full buffer, interrupted.
// ---------------------------------------------------------------------------------

const MMSG_ALARM: &str = r#"
hits = []
signal.signal(signal.SIGALRM, lambda *a: hits.append(1))
def batch(fam, mk, dst, n, restart):
    signal.siginterrupt(signal.SIGALRM, not restart)
    u = socket.socket(fam, socket.SOCK_DGRAM)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 0)
    arr = mmsg([(mk(*dst), b'z' * 1200) for i in range(n)])
    t0 = time.time()
    signal.setitimer(signal.ITIMER_REAL, 0.7)
    x = L_.sendmmsg(u.fileno(), arr, n, 0)
    r = x if x >= 0 else en(ctypes.get_errno())
    dt = time.time() - t0
    signal.setitimer(signal.ITIMER_REAL, 0)
    ls = lens(arr, n)
    k = x if x > 0 else 0
    ok = ls[:k] == [1200] * k and ls[k:] == [0] * (n - k)
    u.close()
    # 0.7 s at 100 kbit/s: a few datagrams, not all 40.
    return ('short count' if isinstance(r, int) and 0 < r < n else r), 'lens match', ok, 'in time', 0.6 < dt < 3
for fam, mk, dst in ((socket.AF_INET, sa4, K4), (socket.AF_INET6, sa6, K6)):
    print(fam, 'no SA_RESTART', batch(fam, mk, dst, 40, False), flush=True)
    time.sleep(4)
    print(fam, 'SA_RESTART', batch(fam, mk, dst, 40, True), flush=True)
    time.sleep(4)
print('handler ran', len(hits), flush=True)
"#;

/// A blocking UDP socket, send buffer at the minimum, eth0 and wlan0 shaped to
/// 100 kbit/s: a `sendmmsg` (raw syscall 307) of 40 × 1200 bytes waits for room and
/// a 0.7 s alarm interrupts it. Without mifrun (`__sys_sendmmsg` returns the count of
/// what went once one went) a short count, each sent message's `msg_len` 1200 and the
/// rest 0, after ~0.7 s, with and without `SA_RESTART`, v4 and v6 (held).
#[test]
fn an_alarm_during_a_waiting_sendmmsg_returns_the_count_supervise() {
    let tb = Testbed::up();
    for dev in ["eth0", "wlan0"] {
        tb.run(&[
            "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", "100kbit", "burst", "1600",
            "latency", "5s",
        ])
        .assert_ok();
    }
    same_as_native_on(&tb, MMSG_ALARM, Mode::Supervise);
}

// ---------------------------------------------------------------------------------
// A 1 ms SA_RESTART timer during a 5 MB blocked named TCP write.
// ---------------------------------------------------------------------------------

const FAST_TIMER: &str = r#"
import hashlib
def wd():
    time.sleep(40); print('HUNG', flush=True); os._exit(0)
threading.Thread(target=wd, daemon=True).start()
hits = [0]
def h(*a): hits[0] += 1
signal.signal(signal.SIGALRM, h)
signal.siginterrupt(signal.SIGALRM, False)
TOTAL = 5000000
data = bytes(i * 7 % 251 for i in range(TOTAL))
l, c, a = tcp_pair(rcvbuf=65536, sndbuf=65536)
dest = l.getsockname()
got = []
def drain():
    time.sleep(0.5)
    hh = hashlib.sha256(); n = 0
    while n < TOTAL:
        b = a.recv(8192)
        if not b: break
        hh.update(b); n += len(b)
        time.sleep(0.001)
    got.append((n, hh.hexdigest() == hashlib.sha256(data).hexdigest()))
d = threading.Thread(target=drain); d.start()
t0 = time.time()
signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
sent = 0; errs = []; calls = 0
while sent < TOTAL:
    try:
        calls += 1
        sent += sto(c, data[sent:], dest)
    except OSError as e:
        errs.append(en(e.errno)); break
signal.setitimer(signal.ITIMER_REAL, 0)
d.join(30)
dt = time.time() - t0
print('sent', sent, 'received', got, 'errors', errs, 'handler ran', hits[0] > 0, flush=True)
print('TIME', round(dt, 2), 'calls', calls, file=sys.stderr, flush=True)
"#;

/// A timer signal every 1 ms (SA_RESTART) while the program writes 5 MB with one
/// named `sendto` after another (each of what is left) to a peer reading 8 KiB each
/// ms from 0.5 s on. Without mifrun and under `--supervise`: every byte once, in
/// order (sha256), no error, no livelock; the time is on stderr (`TIME`). Seen on
/// 9bff9e4 in 4 runs: native 0.64-1.93 s and 52 calls, supervised 0.71-2.78 s and
/// 79-80 calls (held; each supervised call takes at most 64 KiB).
#[test]
fn a_1ms_restarting_timer_during_a_5mb_named_tcp_write_supervise() {
    let tb = Testbed::up();
    let native = run(&tb, FAST_TIMER, Mode::Native);
    native.assert_ok();
    let got = run(&tb, FAST_TIMER, Mode::Supervise);
    assert_eq!(got.stdout.trim(), native.stdout.trim(), "{}", got.dump());
    assert!(
        got.stdout
            .contains("sent 5000000 received [(5000000, True)] errors []"),
        "{}",
        got.dump()
    );
    let t = |o: &Out| -> f64 {
        o.stderr
            .lines()
            .find_map(|l| l.strip_prefix("TIME "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|w| w.parse().ok())
            .unwrap_or(f64::NAN)
    };
    let (tn, ts) = (t(&native), t(&got));
    eprintln!("native {tn} s, supervised {ts} s");
    assert!(ts < tn * 3.0 + 2.0, "native {tn} s, supervised {ts} s");
}

// ---------------------------------------------------------------------------------
// Job control and fork while a worker waits.
// ---------------------------------------------------------------------------------

const TSTP_HANDLER: &str = r#"
def wd():
    time.sleep(20); print('HUNG', flush=True); os._exit(0)
threading.Thread(target=wd, daemon=True).start()
hits = []
signal.signal(signal.SIGTSTP, lambda *a: hits.append('TSTP'))
signal.signal(signal.SIGCONT, lambda *a: hits.append('CONT'))
l, c, a = tcp_pair(rcvbuf=4096, sndbuf=4096)
dest = l.getsockname()
def fill(c):
    # The send buffer full, settled: the blocked send below sends nothing.
    c.setblocking(False)
    for _ in range(3):
        try:
            while True: c.send(b'f' * 4096)
        except BlockingIOError: pass
        time.sleep(0.1)
    c.setblocking(True)
def blocked_send(sig):
    fill(c)
    pid = os.fork()
    if pid == 0:
        time.sleep(1.0); os.kill(os.getppid(), sig); os._exit(0)
    t0 = time.time(); r = []
    try:
        while True: r.append(sto(c, b'x' * 100000, dest) and 'short')
    except OSError as e:
        r.append(en(e.errno))
    os.waitpid(pid, 0)
    return r, 0.8 < time.time() - t0 < 5
print('SIGTSTP handled', blocked_send(signal.SIGTSTP), flush=True)
print('SIGCONT handled', blocked_send(signal.SIGCONT), flush=True)
print('handlers', hits, flush=True)
"#;

/// A program blocked in a raw named `sendto` (the peer does not read) gets, from a
/// forked child, a SIGTSTP its Python handler catches (no stop), then a SIGCONT it
/// catches, the send buffer full first (the send has sent nothing): each interrupts
/// the send (`EINTR`, no `SA_RESTART`) within 5 s. Without mifrun and under
/// `--supervise`: `(['EINTR'], True)` twice, `handlers ['TSTP', 'CONT']` (held).
#[test]
fn a_handled_sigtstp_and_sigcont_interrupt_a_blocked_send_supervise() {
    same_as_native(TSTP_HANDLER, Mode::Supervise);
}

const FORK_WAITING: &str = r#"
def wd():
    time.sleep(25); print('HUNG', flush=True); os._exit(0)
threading.Thread(target=wd, daemon=True).start()
chld = []
signal.signal(signal.SIGCHLD, lambda *a: chld.append(1))
TOTAL = 600000
l, c, a = tcp_pair(rcvbuf=4096, sndbuf=4096)
dest = l.getsockname()
res = []
def sender():
    sent = 0; errs = []
    while sent < TOTAL:
        try: sent += sto(c, b'x' * min(100000, TOTAL - sent), dest)
        except OSError as e: errs.append(en(e.errno)); break
    res.append((sent, errs))
t = threading.Thread(target=sender); t.start()
time.sleep(1.0)
pid = os.fork()
if pid == 0:
    # The child: its own blocked named send, bounded by an alarm.
    class Alarm(Exception): pass
    def h(*a): raise Alarm()
    signal.signal(signal.SIGALRM, h)
    l2, c2, a2 = tcp_pair(rcvbuf=4096, sndbuf=4096)
    d2 = l2.getsockname()
    t0 = time.time()
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    try:
        while True: sto(c2, b'y' * 100000, d2)
    except Alarm:
        print('child: interrupted by its alarm', 0.8 < time.time() - t0 < 5, flush=True)
    os._exit(7)
_, st = os.waitpid(pid, 0)
time.sleep(0.5)
print('parent: child exit', os.waitstatus_to_exitcode(st), 'sender still blocked', res == [], 'SIGCHLD', len(chld), flush=True)
n = 0
while n < TOTAL:
    b = a.recv(1 << 16)
    if not b: break
    n += len(b)
t.join(10)
print('parent: sent', res, 'received', n, flush=True)
"#;

/// A fork while a thread waits in a worker (its named send on a full buffer): the
/// child makes its own blocked named send and a 1 s alarm ends it; the child's exit
/// (a SIGCHLD the parent's main thread takes) does not interrupt the parent's
/// waiting send, which completes once the peer reads. Without mifrun and under
/// `--supervise`: `child: interrupted by its alarm True`, `parent: child exit 7 sender
/// still blocked True SIGCHLD 1`, `parent: sent [(600000, [])] received 600000` (held).
#[test]
fn a_fork_while_a_worker_waits_supervise() {
    same_as_native(FORK_WAITING, Mode::Supervise);
}

// ---------------------------------------------------------------------------------
// The watcher's cost.
// ---------------------------------------------------------------------------------

const HUNDRED_BLOCKED: &str = r#"
N = int(os.environ.get('SENDERS', '100'))
IDLE = int(os.environ.get('IDLE', '0'))
for i in range(IDLE): threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
pairs = [tcp_pair(rcvbuf=4096, sndbuf=4096) for _ in range(N)]
def sender(i):
    l, c, a = pairs[i]; dest = l.getsockname()
    try:
        while True: sto(c, b'x' * 100000, dest)
    except OSError as e:
        print('sender', i, en(e.errno), flush=True)
for i in range(N): threading.Thread(target=sender, args=(i,), daemon=True).start()
time.sleep(2.0)
sup = os.getppid()
def ticks(p):
    with open(f'/proc/{p}/stat') as f: x = f.read().rsplit(')', 1)[1].split()
    return int(x[11]) + int(x[12])
def by_name(p):
    out = {}
    for tid in os.listdir(f'/proc/{p}/task'):
        try:
            with open(f'/proc/{p}/task/{tid}/comm') as f: n = f.read().strip()
            out[n] = out.get(n, 0) + ticks(f'{p}/task/{tid}')
        except OSError: pass
    return out
with open(f'/proc/{sup}/comm') as f: comm = f.read().strip()
t0 = ticks(sup); n0 = by_name(sup); w0 = time.time()
time.sleep(10)
t1 = ticks(sup); n1 = by_name(sup); w1 = time.time()
print('CPU', comm, t1 - t0, 'ticks in', round(w1 - w0, 2), 's, clk', os.sysconf('SC_CLK_TCK'), flush=True)
print('threads', {k: n1[k] - n0.get(k, 0) for k in n1}, flush=True)
os._exit(0)
"#;

/// 100 threads each blocked in a named TCP send (100 workers, the watcher looking at
/// each every `slice_for(100)` = 120 ms) for 10 s: mifrun's utime+stime over those
/// 10 s, from `/proc/PPID/stat` (the program is mifrun's child), and per thread name.
/// Measured on 9bff9e4: 50, 40, 38, 37 and 36 ticks (CLK_TCK 100) in 10 s, 4-5 % of
/// one CPU, all in the `mifrun-signals` thread (`{'mifrun': 0, 'mifrun-signals': 39,
/// 'mifrun-worker': 0}`). Asserts under 10 % of one CPU.
#[test]
fn the_watchers_cpu_with_100_threads_blocked_in_sends_supervise() {
    watchers_cpu("", 100);
}

/// One thread blocked in a named TCP send, 200 others sleeping, for 10 s: the watcher
/// looks every 20 ms (`slice_for(1)`) and reads every thread's stat each look
/// (`group_stopping`) while the program uses none. Asserts under 5 % of one CPU (the
/// 100-sender case above stays under it).
/// Fails on 9bff9e4 (3 of 3 runs): `CPU mifrun 102 ticks in 10.0 s, clk 100`, 94 and
/// 77 ticks (8-10 % of one CPU), all in `mifrun-signals`
/// (`{'mifrun': 0, 'mifrun-signals': 101, 'mifrun-worker': 0}`).
#[test]
fn the_watchers_cpu_with_one_blocked_send_among_200_threads_supervise() {
    watchers_cpu(
        "os.environ['SENDERS'] = '1'\nos.environ['IDLE'] = '200'\n",
        50,
    );
}

fn watchers_cpu(env: &str, max_ticks: u64) {
    let tb = Testbed::up();
    let got = run(&tb, &format!("{env}{HUNDRED_BLOCKED}"), Mode::Supervise);
    got.assert_ok();
    let line = got
        .stdout
        .lines()
        .find(|l| l.starts_with("CPU "))
        .unwrap_or_else(|| panic!("no CPU line:{}", got.dump()))
        .to_string();
    eprintln!("{line}");
    let w: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(w[1], "mifrun", "{line}");
    let ticks: u64 = w[2].parse().unwrap();
    assert!(ticks < max_ticks, "{line}");
}

const STOP_TWO: &str = r#"
def wd():
    time.sleep(25); print('HUNG', flush=True); os._exit(0)
threading.Thread(target=wd, daemon=True).start()
TOTAL = 300000
pairs = [tcp_pair(rcvbuf=4096, sndbuf=4096) for _ in range(2)]
res = {}
def sender(i):
    l, c, a = pairs[i]; dest = l.getsockname()
    sent = 0; errs = []
    while sent < TOTAL:
        try: sent += sto(c, b'x' * min(100000, TOTAL - sent), dest)
        except OSError as e: errs.append(en(e.errno)); break
    res[i] = (sent, errs)
parent = os.getpid()
pid = os.fork()
if pid == 0:
    time.sleep(1.0)
    os.kill(parent, signal.SIGTSTP)
    ok = False
    for _ in range(100):
        st = []
        for tid in os.listdir(f'/proc/{parent}/task'):
            with open(f'/proc/{parent}/task/{tid}/stat') as f: st.append(f.read().rsplit(')', 1)[1].split()[0])
        if st and all(s == 'T' for s in st): ok = True; break
        time.sleep(0.05)
    print('every thread stopped', ok, flush=True)
    os.kill(parent, signal.SIGCONT)
    for i in range(2):
        n = 0
        while n < TOTAL:
            b = pairs[i][2].recv(1 << 16)
            if not b: break
            n += len(b)
        print('child received', i, n, flush=True)
    os._exit(0)
ts = [threading.Thread(target=sender, args=(i,)) for i in range(2)]
for t in ts: t.start()
for t in ts: t.join()
os.waitpid(pid, 0)
print('sent', sorted(res.items()), flush=True)
"#;

/// Ctrl-Z's SIGTSTP (default action: stop) to a program whose two threads are each
/// blocked in a named TCP send (a worker each) and whose main thread joins them:
/// every thread of it must stop within 5 s, and after SIGCONT both sends restart and
/// complete, every byte once. Without mifrun and under `--supervise`: `every thread
/// stopped True`, `child received 0 300000`, `child received 1 300000`, `sent [(0,
/// (300000, [])), (1, (300000, []))]` (held).
#[test]
fn a_sigtstp_stops_every_thread_of_a_program_with_two_blocked_sends_supervise() {
    same_as_native(STOP_TWO, Mode::Supervise);
}
