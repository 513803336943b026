//! The supervisor's process work: fork, install the filter in the child, take its
//! listener, answer notifications until every supervised task has gone, and end with
//! the program's own exit status.

use std::collections::{HashMap, HashSet};
use std::ffi::{CString, OsString};
use std::io;
use std::mem::size_of;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

use config_schema::{
    AddrFamily, Applied, BindAddr, Flow, IfName, LogLevel, Op, Policy, Profile, Proto,
};
use mifshim_listen_filter as listen_filter;
use mifshim_socket_core::{
    self as socket_core, BindStep, Path as UcPath, Verdict, membership, sockopts,
};

use crate::addr::{self, Dest, MAX_ADDR, MMSGHDR_LEN, MSGHDR_LEN};
use crate::events::{self, Events};
use crate::filter::{self, nr};
use crate::interrupt;
use crate::logic::{self, Facts, Snapshot, Step, StubDns};
use crate::sys::{self, Notif, Reply};

/// What the supervisor needs from its host (mifrun): the interface snapshot, route
/// lookups and the DNS servers of an interface, by the same code `mifrun status` and
/// the preload use.
pub trait Host {
    fn snapshot(&mut self) -> io::Result<Snapshot>;
    /// The interface the main routing table sends `dest` through.
    fn route_oif(&mut self, dest: IpAddr) -> Option<u32>;
    /// The DNS servers of interface `name` (index `index`) under `profile`.
    fn dns_servers(&mut self, profile: &Profile, name: &str, index: u32) -> Vec<SocketAddr>;
}

/// How the program ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    fn of(status: i32) -> Exit {
        if libc::WIFSIGNALED(status) {
            Exit::Signal(libc::WTERMSIG(status))
        } else {
            Exit::Code(libc::WEXITSTATUS(status))
        }
    }
    /// Ends mifrun the way the program ended (a signal is raised again, without a core
    /// file; 128+N if it does not end the process).
    pub fn exit(self) -> ! {
        match self {
            Exit::Code(c) => std::process::exit(c),
            Exit::Signal(s) => sys::reraise(s),
        }
    }
}

/// What to run under the supervisor.
pub struct Run<'a> {
    pub program: &'a Path,
    pub argv: &'a [OsString],
    pub env: &'a [(OsString, OsString)],
    pub policy: &'a Policy,
    pub log: LogLevel,
    /// At the end, print one `mifrun[supervisor]: stats …` line to standard error:
    /// notifications answered by kind (for benchmarks).
    pub stats: bool,
    /// The events file (`--events`, or `--summary`'s temporary one): the supervisor's
    /// decisions are appended to it as the preload's are.
    pub events: Option<&'a Path>,
}

fn cstring(b: &[u8]) -> Result<CString, String> {
    CString::new(b).map_err(|_| "an argument or environment entry contains a NUL byte".into())
}

/// Runs the program under the supervisor and returns how it ended. `Err`: nothing ran
/// (or the filter could not be installed), with the reason.
pub fn run(r: &Run<'_>, host: &mut dyn Host) -> Result<Exit, String> {
    sys::check_notif_sizes().map_err(|e| format!("seccomp user notification: {e}"))?;
    let prog = filter::program(std::process::id());
    let path = cstring(r.program.as_os_str().as_bytes())?;
    let argv: Vec<CString> = r
        .argv
        .iter()
        .map(|a| cstring(a.as_bytes()))
        .collect::<Result<_, _>>()?;
    let envp: Vec<CString> = r
        .env
        .iter()
        .map(|(k, v)| {
            let mut b = k.as_bytes().to_vec();
            b.push(b'=');
            b.extend_from_slice(v.as_bytes());
            cstring(&b)
        })
        .collect::<Result<_, _>>()?;
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|c| c.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|c| c.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    let mut snap = host
        .snapshot()
        .map_err(|e| format!("cannot read the interfaces (rtnetlink): {e}"))?;
    if snap.loopback == 0 {
        snap.loopback = 1;
    }
    let (fd_r, fd_w) = sys::pipe().map_err(|e| format!("pipe: {e}"))?;
    let (go_r, go_w) = sys::pipe().map_err(|e| format!("pipe: {e}"))?;

    let pid = match sys::fork().map_err(|e| format!("fork: {e}"))? {
        sys::Forked::Child => child(&prog, &fd_w, &go_r, &path, &argv_p, &envp_p),
        sys::Forked::Parent(pid) => pid,
    };
    drop(fd_w);
    drop(go_r);
    // mifrun holds the listener from now on: a same-uid program must not reach into
    // it (pidfd_getfd, /proc/PID/fd, ptrace). Non-dumpable after the fork, so the
    // child (dumpable until its exec, which makes the program dumpable again) is still
    // open to mifrun; the filter refuses the rest for a program with CAP_SYS_PTRACE.
    if let Err(e) = sys::set_dumpable(false) {
        sys::kill(pid, libc::SIGKILL);
        let _ = sys::wait_blocking(pid);
        return Err(format!(
            "cannot make mifrun non-dumpable (PR_SET_DUMPABLE): {e}"
        ));
    }
    let n = match sys::read_i32(&fd_r) {
        Ok(Some(n)) => n,
        _ => {
            let st = sys::wait_blocking(pid).unwrap_or(0);
            return Err(format!(
                "the supervised child ended before handing over its listener ({:?})",
                Exit::of(st)
            ));
        }
    };
    if n < 0 {
        let _ = sys::wait_blocking(pid);
        let e = io::Error::from_raw_os_error(-n);
        let hint = if -n == libc::EBUSY {
            ": mifrun already runs under a seccomp supervisor (a container runtime or sandbox \
             with its own listener); nested supervisors are not possible"
        } else {
            ""
        };
        return Err(format!("cannot install the seccomp filter: {e}{hint}"));
    }
    let listener =
        sys::pidfd_open(pid, 0).and_then(|pidfd| sys::pidfd_getfd(&pidfd, n).map(|l| (pidfd, l)));
    let (pidfd, listener) = match listener {
        Ok(x) => x,
        Err(e) => {
            sys::kill(pid, libc::SIGKILL);
            let _ = sys::wait_blocking(pid);
            return Err(format!("cannot take the child's seccomp listener: {e}"));
        }
    };
    sys::forward_signals_to(pid);
    let events = match r.events {
        Some(p) => match Events::open(p) {
            Ok(e) => Some(e),
            Err(e) => {
                eprintln!(
                    "mifrun[supervisor]: warning: cannot open the events file {} ({e}); no events are written",
                    p.display()
                );
                None
            }
        },
        None => None,
    };
    let mut sup = Supervisor {
        socks: HashMap::new(),
        events,
        pending: Vec::new(),
        seen: HashSet::new(),
        listener: listener.as_raw_fd(),
        policy: r.policy,
        profiles: HashMap::new(),
        base: Rc::new(r.policy.base.clone()),
        snap,
        stale: false,
        host,
        log: r.log,
        warned: 0,
        stats: Stats::default(),
        pidfds: HashMap::new(),
        workers: Default::default(),
        waits: Default::default(),
        parked: Default::default(),
    };
    if sys::write_byte(&go_w).is_err() {
        sys::kill(pid, libc::SIGKILL);
    }
    drop(go_w);
    let exit = sup.serve(pid, pidfd, &listener);
    if r.stats {
        let st = &sup.stats;
        eprintln!(
            "mifrun[supervisor]: stats notifications={} continue={} errno={} value={} dropped={} workers={} interrupted={}",
            st.notifications,
            st.cont,
            st.errno,
            st.value,
            st.dropped,
            st.workers,
            sup.waits
                .interrupted
                .load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    Ok(exit)
}

/// Calls that wait (blocking connects, sends on a full buffer) made by worker
/// threads at once; past that they fail closed with `EAGAIN` (a blocking socket's
/// wrong answer, but never a CONTINUE). 64 were too few for a program with 70 threads
/// each blocked in a send (review_1203c).
const MAX_WORKERS: usize = 256;

/// A call that waits, as a worker thread makes it ([`worker`]): the kernel's answer,
/// or `None` when it was handed over ([`interrupt::Intr::handed_over`]): it stopped
/// and keeps what it did in its own state, to be called again in mifrun's copy.
type Job = Box<dyn FnMut(&interrupt::Intr) -> Option<Reply> + Send>;

/// A handed-over call: the notification it answers, the program's thread, the call.
struct Parked {
    id: u64,
    tid: u32,
    job: Job,
}

/// The handed-over calls, kept by their workers as they end.
type ParkedList = std::sync::Arc<std::sync::Mutex<Vec<Parked>>>;

/// A call that waits (a blocking connect, a send on a full buffer), made on the
/// supervisor's duplicate by a thread of its own (`job` owns what it needs), which
/// answers notification `id` of the program's thread `tid` with the kernel's result.
/// It waits as the program's call would (a connect's `SO_SNDTIMEO` is the socket's).
/// The program's thread waits for the answer in the filter's killable wait
/// (`SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`), where only a fatal signal acts; so the
/// watcher of [`interrupt`] interrupts the worker's call when that thread has a
/// signal to take, and `job` answers as an interrupted call ([`interrupted_errno`];
/// review_1203c: an `alarm()` did not end a blocked send). A job handed over is kept
/// in `parked` instead of answered.
fn worker(
    listener: RawFd,
    (id, tid): (u64, u32),
    workers: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    waits: &std::sync::Arc<interrupt::Waits>,
    parked: &ParkedList,
    mut job: Job,
) -> io::Result<()> {
    use std::sync::atomic::Ordering;
    waits.ensure_watcher(listener)?;
    workers.fetch_add(1, Ordering::AcqRel);
    let w = workers.clone();
    let waits = waits.clone();
    let parked = parked.clone();
    let spawned = std::thread::Builder::new()
        .name("mifrun-worker".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let intr = waits.begin(id, tid);
            let reply = job(&intr);
            waits.end(id);
            match reply {
                Some(reply) => {
                    let _ = sys::send(listener, id, reply);
                    // Its duplicate closed before the count says it ended: a fork
                    // for mifrun's copy must not copy it (the peer would not see
                    // the program's close).
                    drop(job);
                }
                None => parked
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Parked { id, tid, job }),
            }
            w.fetch_sub(1, Ordering::AcqRel);
        });
    if let Err(e) = spawned {
        workers.fetch_sub(1, Ordering::AcqRel);
        return Err(e);
    }
    Ok(())
}

/// The answer of a worker's call that the watcher interrupted before it did anything:
/// the kernel's for a socket call a signal interrupts (`sock_intr_errno`): `EINTR`
/// with a send time-out, else `ERESTARTSYS` (restarted after a handler with
/// `SA_RESTART` or a stop, `EINTR` after another handler).
fn interrupted_errno(s: &OwnedFd) -> i32 {
    if sys::has_send_timeout(s) {
        libc::EINTR
    } else {
        interrupt::ERESTARTSYS
    }
}

/// What a worker's blocking send came to.
#[derive(Debug, PartialEq)]
enum Waited {
    /// The kernel's answer, or [`interrupted_errno`] when the watcher interrupted it
    /// before anything went.
    Done(Result<usize, i32>),
    /// Handed over ([`interrupt::Intr::handed_over`]) after this many bytes went (a
    /// stream's part; 0 for a datagram, which goes whole or not at all).
    Paused(usize),
}

/// Why a batch of sends stopped before its end.
enum Stop {
    Errno(i32),
    /// Handed over, this many bytes of the next message sent.
    Paused(usize),
}

/// A worker's call's time-out, kept across a hand-over: the socket's `SO_SNDTIMEO`,
/// counted from the call's first run, so that a call made again in mifrun's copy
/// waits only for what is left of it (review_horev: a send and a connect each waited
/// a whole time-out again).
#[derive(Default)]
struct Clock {
    deadline: Option<std::time::Instant>,
    runs: u32,
}

impl Clock {
    /// Called as the job runs (again).
    fn start(&mut self, s: &OwnedFd) {
        match self.runs {
            0 => self.restart(s),
            _ => self.runs += 1,
        }
    }

    /// A new wait of the same call begins (a Fast Open send's data after its
    /// handshake: the kernel's time-out starts again there).
    fn restart(&mut self, s: &OwnedFd) {
        self.deadline = sys::send_timeout(s).map(|t| std::time::Instant::now() + t);
        self.runs = 1;
    }

    /// For a call made again, on a socket with a time-out: the time left.
    fn left(&self) -> Option<std::time::Duration> {
        let d = self.deadline?;
        (self.runs > 1).then(|| d.saturating_duration_since(std::time::Instant::now()))
    }
}

/// Where a worker's Fast Open send is.
#[derive(Clone, Copy)]
enum Tfo {
    Syn,
    Handshake,
    Data,
}

/// `poll` for `POLLOUT` up to `left` (rounded up to a millisecond): `Err(EINTR)` when a
/// signal ended it.
fn wait_writable(s: &OwnedFd, left: std::time::Duration) -> Result<(), i32> {
    let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
    match sys::poll(&[(s.as_raw_fd(), libc::POLLOUT)], ms) {
        Ok(_) => Ok(()),
        Err(e) => Err(e.raw_os_error().unwrap_or(libc::EINTR)),
    }
}

/// A worker's blocking `sendmsg`: made again after an `EINTR` the watcher did not
/// cause; its error is [`interrupted_errno`] when the watcher did; stopped, keeping
/// what went, when handed over. Made again after a hand-over on a socket with a
/// time-out: [`send_until`] what is left of it.
fn send_waiting(
    s: &OwnedFd,
    name: &[u8],
    data: &[u8],
    cmsg: &[u8],
    flags: i32,
    intr: &interrupt::Intr,
    clock: &Clock,
) -> Waited {
    if let Some(left) = clock.left() {
        return send_until(s, name, data, cmsg, flags, intr, left);
    }
    loop {
        if intr.handed_over() {
            return Waited::Paused(0);
        }
        let r = sys::sendmsg(s, name, data, cmsg, flags);
        return match r {
            Err(libc::EINTR) if intr.raised() => Waited::Done(Err(interrupted_errno(s))),
            Err(libc::EINTR) => continue,
            // A blocking stream send returns a part only when a signal (or its
            // time-out) ended it: ours, to hand it over.
            Ok(k) if k < data.len() && intr.handed_over() => Waited::Paused(k),
            r => Waited::Done(r),
        };
    }
}

/// A blocking send with `left` of its time-out: non-blocking sends as room comes
/// (`POLLOUT`), a stream's in parts, until all went, a signal, an error or the end
/// of the time-out, answered as the kernel answers a blocking send with that much
/// `SO_SNDTIMEO` left: what went, else `EAGAIN` at its end, else the error.
#[allow(clippy::too_many_arguments)]
fn send_until(
    s: &OwnedFd,
    name: &[u8],
    data: &[u8],
    cmsg: &[u8],
    flags: i32,
    intr: &interrupt::Intr,
    left: std::time::Duration,
) -> Waited {
    let end = std::time::Instant::now() + left;
    let mut went = 0;
    let done = |went: usize, e: i32| Waited::Done(if went > 0 { Ok(went) } else { Err(e) });
    loop {
        if intr.handed_over() {
            return Waited::Paused(went);
        }
        match sys::sendmsg(s, name, &data[went..], cmsg, flags | libc::MSG_DONTWAIT) {
            Ok(k) => {
                went += k;
                if went >= data.len() {
                    return Waited::Done(Ok(went));
                }
            }
            Err(libc::EAGAIN | libc::EINTR) => {}
            Err(e) => return done(went, e),
        }
        let left = end.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return done(went, libc::EAGAIN);
        }
        match wait_writable(s, left) {
            Err(libc::EINTR) if intr.raised() => return done(went, interrupted_errno(s)),
            Ok(()) | Err(libc::EINTR) => {}
            Err(e) => return done(went, e),
        }
    }
}

/// A worker's blocking connect: the kernel's answer; `None` when handed over. A
/// connect interrupted and made again waits for the same handshake (the kernel's
/// `SS_CONNECTING` case: its error, or 0, once it ended), so mifrun's copy makes a
/// handed-over one again, with what is left of the socket's time-out
/// ([`Clock::left`]: `POLLOUT` first, then the connect answers at once). `begun`: a
/// connect of this call was made and interrupted; a time-out on the same handshake
/// is then the first call's `EINPROGRESS`, not the kernel's `EALREADY` of a connect
/// made again (review_horev).
fn connect_waiting(
    s: &OwnedFd,
    raw: &[u8],
    intr: &interrupt::Intr,
    clock: &Clock,
    begun: &mut bool,
) -> Option<Reply> {
    loop {
        if intr.handed_over() {
            return None;
        }
        if *begun && let Some(left) = clock.left() {
            if !left.is_zero() {
                match wait_writable(s, left) {
                    Err(libc::EINTR) if intr.raised() => {
                        return Some(Reply::Errno(interrupted_errno(s)));
                    }
                    Err(libc::EINTR) => continue,
                    Err(e) => return Some(Reply::Errno(e)),
                    Ok(()) => {}
                }
            }
            // At the time-out's end, still connecting: the first call's answer; a
            // handshake that failed: its error (a connect made again returns it).
            if clock.left().is_some_and(|l| l.is_zero()) && !sys::is_connected(s) {
                return Some(Reply::Errno(
                    match sys::getsockopt_int(s, libc::SOL_SOCKET, libc::SO_ERROR) {
                        Ok(0) => libc::EINPROGRESS,
                        Ok(e) => e,
                        Err(e) => errno_of(e),
                    },
                ));
            }
        }
        return match sys::connect(s, raw) {
            Ok(()) => Some(Reply::Value(0)),
            Err(libc::EINTR) if intr.raised() => Some(Reply::Errno(interrupted_errno(s))),
            Err(libc::EINTR) => {
                *begun = true;
                continue;
            }
            Err(libc::EALREADY) if *begun => Some(Reply::Errno(libc::EINPROGRESS)),
            Err(e) => Some(Reply::Errno(e)),
        };
    }
}

/// The next wait before asking `waitpid` again about a zombie its tracer holds:
/// 10 ms, doubling up to 500 ms.
fn next_backoff(held: Option<i32>) -> i32 {
    held.map_or(10, |ms| (ms * 2).min(500))
}

/// Notifications answered, by answer.
#[derive(Default)]
struct Stats {
    notifications: u64,
    cont: u64,
    errno: u64,
    value: u64,
    dropped: u64,
    /// Answered by a worker thread (a blocking connect).
    workers: u64,
}

/// The child between fork and exec: no allocation.
fn child(
    prog: &[libc::sock_filter],
    fd_w: &OwnedFd,
    go_r: &OwnedFd,
    path: &CString,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> ! {
    let listener = match sys::child_install_filter(prog) {
        Ok(l) => l,
        Err(e) => {
            let _ = sys::child_write(fd_w.as_raw_fd(), &(-e).to_ne_bytes());
            sys::child_exit(126);
        }
    };
    // A write(2) is not trapped: the hand-over cannot wait on the supervisor.
    if !sys::child_write(fd_w.as_raw_fd(), &listener.to_ne_bytes()) {
        sys::child_exit(126);
    }
    if !sys::child_read_byte(go_r.as_raw_fd()) {
        // The supervisor is gone: never run unsupervised.
        sys::child_exit(126);
    }
    // The program must not hold its own listener (it could answer its own calls).
    sys::child_close(listener);
    sys::child_default_sigpipe();
    let e = sys::child_exec(path, argv, envp);
    sys::child_say(b"mifrun: cannot execute the program (");
    sys::child_say(if e == libc::ENOENT {
        b"not found"
    } else if e == libc::EACCES {
        b"permission denied"
    } else {
        b"exec failed"
    });
    sys::child_say(b")\n");
    sys::child_exit(if e == libc::ENOENT { 127 } else { 126 });
}

/// Where a decision's events line comes from.
#[derive(Clone, Copy)]
struct Note {
    tid: u32,
    call: &'static str,
    fd: i32,
    /// The socket's device binding when decided (a connect): the program's own one
    /// makes the line `program-bound`, as the preload writes it.
    bound: i32,
    /// A datagram: its socket's cookie (lines once per flow).
    flow: Option<u64>,
}

/// What the supervisor keeps about one socket, by its `SO_COOKIE` (the kernel's
/// identity of the socket: every fd and process holding it — dup, fork, SCM_RIGHTS —
/// finds the same entry, and a closed socket's cookie is never reused).
#[derive(Clone, Copy, Debug)]
struct Known {
    family: Option<AddrFamily>,
    proto: Proto,
    stream: bool,
    app_uc4: bool,
    app_uc6: bool,
    /// The policy's options were set ([`Facts::opts`]).
    opts: bool,
    /// The device binding is the supervisor's, for a steered destination
    /// ([`Facts::shim_bound`]).
    shim_bound: bool,
    /// The program set the multicast interface ([`Facts::app_mcast_if`]).
    app_mcast_if: bool,
    /// The supervisor set it (a connect to a group).
    shim_mcast_if: bool,
}

impl Known {
    /// What cannot be asked of the kernel again (who set or bound what).
    fn keeps_state(&self) -> bool {
        self.app_uc4 || self.app_uc6 || self.shim_bound || self.app_mcast_if || self.shim_mcast_if
    }
}

/// The options of a decision to bind: what they come to on the chosen interface,
/// and its name.
type Opts = (Applied, IfName);

impl Known {
    /// Family, transport and type, asked of the kernel.
    fn ask(s: &OwnedFd) -> Known {
        let family = match sys::getsockopt_int(s, libc::SOL_SOCKET, libc::SO_DOMAIN) {
            Ok(libc::AF_INET) => Some(AddrFamily::V4),
            Ok(libc::AF_INET6) => Some(AddrFamily::V6),
            _ => None,
        };
        let none = Known {
            family,
            proto: Proto::Other,
            stream: false,
            app_uc4: false,
            app_uc6: false,
            opts: false,
            shim_bound: false,
            app_mcast_if: false,
            shim_mcast_if: false,
        };
        if family.is_none() {
            return none;
        }
        let proto = match sys::getsockopt_int(s, libc::SOL_SOCKET, libc::SO_PROTOCOL) {
            Ok(libc::IPPROTO_TCP) => Proto::Tcp,
            Ok(libc::IPPROTO_UDP) => Proto::Udp,
            _ => Proto::Other,
        };
        // TCP is a stream and UDP is not; only other protocols need asking.
        let stream = match proto {
            Proto::Tcp => true,
            Proto::Udp => false,
            Proto::Other => {
                sys::getsockopt_int(s, libc::SOL_SOCKET, libc::SO_TYPE).ok()
                    == Some(libc::SOCK_STREAM)
            }
        };
        Known {
            proto,
            stream,
            // A multicast interface set before the supervisor saw the socket (an
            // inherited one) is the program's: asked once per socket, as the preload
            // does; later choices come through the trapped setsockopt.
            app_mcast_if: !stream && sys::multicast_if_chosen(s, family),
            ..none
        }
    }
}

/// Sockets remembered (entries of closed sockets are dropped when full).
const MAX_SOCKS: usize = 4096;

/// Datagram flows remembered for the events file.
const MAX_SEEN: usize = 8192;

/// A datagram flow: the socket (its cookie) and the line's body (the fd, the
/// destination, the outcome).
fn flow_key(cookie: u64, body: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    cookie.hash(&mut h);
    body.hash(&mut h);
    h.finish()
}

/// A decision waiting for its call's answer before it is written to the events file.
struct Pending {
    tid: u32,
    /// The line after its header ([`events::body`]).
    body: String,
    /// A block: written every time, its errno already in `body`.
    block: bool,
    /// The supervisor changed something (bound, set, sent, failed): the preload, if
    /// the process has it, did not handle this call, so the line is the only one.
    acted: bool,
    /// A datagram: written once per socket (`SO_COOKIE`), destination and outcome.
    flow: Option<u64>,
}

struct Supervisor<'a> {
    /// Per socket, by cookie ([`Known`]).
    socks: HashMap<u64, Known>,
    events: Option<Events>,
    pending: Vec<Pending>,
    /// Datagram flows written (hashes), cleared when large (a line too many, never
    /// one too few).
    seen: HashSet<u64>,
    listener: RawFd,
    policy: &'a Policy,
    profiles: HashMap<String, Rc<Profile>>,
    base: Rc<Profile>,
    snap: Snapshot,
    stale: bool,
    host: &'a mut dyn Host,
    log: LogLevel,
    warned: u32,
    stats: Stats,
    pidfds: HashMap<u32, OwnedFd>,
    /// Calls in progress in worker threads ([`worker`]).
    workers: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Their waits, which a watcher thread interrupts for a signal.
    waits: std::sync::Arc<interrupt::Waits>,
    /// Their calls handed over to mifrun's copy ([`Supervisor::hand_over`]).
    parked: ParkedList,
}

/// `None`: drop the notification (the task left the call).
type Handled = Option<Reply>;

const MAX_WARNINGS: u32 = 100;
/// Thread pidfds kept open (cleared when full).
const MAX_PIDFDS: usize = 256;
/// The most data the supervisor copies for a datagram it sends itself.
const MAX_DATAGRAM: usize = 65_536;
const MAX_CONTROL: usize = 4096;

impl Supervisor<'_> {
    fn say(&mut self, level: LogLevel, msg: std::fmt::Arguments<'_>) {
        if level > self.log {
            return;
        }
        if level <= LogLevel::Warn {
            self.warned += 1;
            if self.warned > MAX_WARNINGS {
                return;
            }
        }
        let tag = match level {
            LogLevel::Error => "error: ",
            LogLevel::Warn => "warning: ",
            _ => "",
        };
        // A closed or broken standard error must not end the supervisor.
        use std::io::Write;
        let mut e = io::stderr().lock();
        let _ = writeln!(e, "mifrun[supervisor]: {tag}{msg}");
        if self.warned == MAX_WARNINGS && level <= LogLevel::Warn {
            let _ = writeln!(e, "mifrun[supervisor]: (further warnings suppressed)");
        }
    }

    /// Serves until the listener hangs up; returns the program's exit.
    fn serve(&mut self, pid: libc::pid_t, pidfd: OwnedFd, listener: &OwnedFd) -> Exit {
        let monitor = sys::netlink_monitor().ok();
        let mut pidfd = Some(pidfd);
        let mut main: Option<Exit> = None;
        let mut continuation = false;
        // The program's pidfd is readable once it has exited, but a tracer of its own
        // (its child PTRACE_SEIZEd it) holds its zombie until it reaps it: `waitpid`
        // has nothing for mifrun meanwhile and polling the pidfd would return at once,
        // forever (100 % of a CPU). Then the pidfd is left out and `waitpid` asked on
        // a bounded back-off (`held`, ms), until the tracer lets the zombie go.
        let mut held: Option<i32> = None;
        loop {
            let mut fds = vec![(listener.as_raw_fd(), libc::POLLIN)];
            if let Some(p) = &pidfd
                && held.is_none()
            {
                fds.push((p.as_raw_fd(), libc::POLLIN));
            }
            let mon_at = fds.len();
            if let Some(m) = &monitor {
                fds.push((m.as_raw_fd(), libc::POLLIN));
            }
            let rev = match sys::poll(&fds, held.unwrap_or(-1)) {
                Ok(r) => r,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => {
                    self.say(LogLevel::Error, format_args!("poll: {e}"));
                    break;
                }
            };
            if let Some(m) = &monitor
                && rev[mon_at] != 0
            {
                sys::drain(m);
                self.stale = true;
            }
            let ask = pidfd.is_some() && (held.is_some() || rev[1] != 0);
            if ask {
                let st = sys::try_wait(pid);
                if !matches!(st, Ok(Some(_))) {
                    held = Some(next_backoff(held));
                }
                if let Ok(Some(st)) = st {
                    main = Some(Exit::of(st));
                    pidfd = None;
                    held = None;
                    // Tasks the program left behind (daemons) are still supervised:
                    // by a copy of this process, so that mifrun ends with the program.
                    let hup = sys::poll(&[(listener.as_raw_fd(), 0)], 0)
                        .map(|r| r[0] & (libc::POLLHUP | libc::POLLERR) != 0)
                        .unwrap_or(true);
                    if hup {
                        return main.unwrap();
                    }
                    // A fork copies this thread only: the calls workers make are
                    // handed over to the copy (review_1206: waiting for them held
                    // mifrun, and every other call of the daemons, as long as a send
                    // to a peer that does not read).
                    let parked = self.hand_over();
                    {
                        // mifrun returns only once the copy is in a session of its own:
                        // a kill of mifrun's process group right after it ends (a job
                        // control `kill %1`, a test harness) must not reach it.
                        let detached = sys::pipe().ok();
                        match sys::fork() {
                            Ok(sys::Forked::Child) => {
                                continuation = true;
                                // Only this thread was copied: the watcher (and the
                                // lock it may have held) are the parent's.
                                self.waits = Default::default();
                                // Said before standard error may go (`detach`).
                                let tty = sys::is_terminal(2);
                                self.say(
                                    LogLevel::Info,
                                    format_args!(
                                        "the program exited; still supervising what it left running{}",
                                        if tty {
                                            ""
                                        } else {
                                            " (standard error is not a terminal: its later log lines are not written; \
                                             the events file still is)"
                                        }
                                    ),
                                );
                                sys::detach();
                                if let Some((r, w)) = detached {
                                    drop(r);
                                    let _ = sys::write_byte(&w);
                                }
                                sys::forward_signals_to(0);
                                self.resume(parked);
                            }
                            Ok(sys::Forked::Parent(_)) => {
                                if let Some((r, w)) = detached {
                                    drop(w);
                                    // A byte, or EOF if the copy died first.
                                    sys::child_read_byte(r.as_raw_fd());
                                }
                                return main.unwrap();
                            }
                            Err(_) => return main.unwrap(),
                        }
                    }
                }
            }
            let l = rev[0];
            if l & libc::POLLIN != 0 {
                match sys::recv(listener.as_raw_fd()) {
                    Ok(Some(n)) => {
                        let workers = self.stats.workers;
                        let reply = self.handle(&n);
                        self.flush_events(&reply);
                        self.stats.notifications += 1;
                        match reply {
                            Some(Reply::Continue) => self.stats.cont += 1,
                            Some(Reply::Errno(_)) => self.stats.errno += 1,
                            Some(Reply::Value(_)) => self.stats.value += 1,
                            None if self.stats.workers != workers => {}
                            None => self.stats.dropped += 1,
                        }
                        if let Some(reply) = reply
                            && let Err(e) = sys::send(self.listener, n.id, reply)
                        {
                            self.say(LogLevel::Error, format_args!("seccomp reply: {e}"));
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        self.say(LogLevel::Error, format_args!("seccomp receive: {e}"));
                        break;
                    }
                }
                continue;
            }
            if l & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
                break;
            }
        }
        if continuation {
            std::process::exit(0);
        }
        match main {
            Some(m) => m,
            None => Exit::of(sys::wait_blocking(pid).unwrap_or(0)),
        }
    }

    /// Stops the calls the workers make, keeping what each did (a stream's part
    /// sent, a connect begun), and returns them once no worker is left, to be made
    /// again by mifrun's copy ([`Supervisor::resume`]). A worker's call ends at its
    /// signal; one that had not entered its call yet sees the flag, or the signal
    /// sent again every 2 ms. A call that ended meanwhile was answered as usual.
    fn hand_over(&mut self) -> Vec<Parked> {
        use std::sync::atomic::Ordering;
        while self.workers.load(Ordering::Acquire) > 0 {
            self.waits.hand_over();
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        std::mem::take(&mut *self.parked.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// In mifrun's copy: makes the handed-over calls again, each in a worker of its
    /// own (the notifications are still the program's to be answered: any holder of
    /// the listener may), unless its thread left the call (the program's threads,
    /// gone with it). One that gets no thread fails with `EAGAIN`, as a call past
    /// [`MAX_WORKERS`] does.
    fn resume(&mut self, parked: Vec<Parked>) {
        for p in parked {
            // Its thread left the call (the program's, which exited): nobody waits.
            if !sys::id_valid(self.listener, p.id) {
                continue;
            }
            let workers = self.workers.clone();
            let ids = (p.id, p.tid);
            if worker(
                self.listener,
                ids,
                workers,
                &self.waits,
                &self.parked,
                p.job,
            )
            .is_err()
            {
                let _ = sys::send(self.listener, p.id, Reply::Errno(libc::EAGAIN));
                self.say(
                    LogLevel::Warn,
                    format_args!(
                        "pid {}: no thread to go on with a blocking call; it fails (EAGAIN)",
                        p.tid
                    ),
                );
            }
        }
    }

    fn net(&mut self) -> &Snapshot {
        if self.stale {
            self.stale = false;
            match self.host.snapshot() {
                Ok(mut s) => {
                    if s.loopback == 0 {
                        s.loopback = 1;
                    }
                    self.snap = s;
                }
                Err(e) => {
                    self.say(
                        LogLevel::Warn,
                        format_args!("cannot re-read the interfaces: {e}"),
                    );
                    self.stale = true;
                }
            }
        }
        &self.snap
    }

    /// The profile of the program the thread runs (per-program sections apply to
    /// every program `exec`ed under the supervisor, by its executable).
    fn profile(&mut self, tid: u32) -> Rc<Profile> {
        if self.policy.programs.is_empty() {
            return self.base.clone();
        }
        let Some(exe) = sys::exe_of(tid) else {
            return self.base.clone();
        };
        if let Some(p) = self.profiles.get(&exe) {
            return p.clone();
        }
        let base = exe.rsplit('/').next().unwrap_or(&exe).to_owned();
        let p = Rc::new(self.policy.profile_for(&exe, &base));
        self.profiles.insert(exe, p.clone());
        p
    }

    fn handle(&mut self, n: &Notif) -> Handled {
        if n.arch != filter::AUDIT_ARCH_X86_64 {
            return Some(Reply::Errno(libc::ENOSYS));
        }
        let a = n.args;
        let fd = a[0] as i32;
        match n.nr as u32 {
            nr::CONNECT => self.connect(n, fd, a[1], a[2] as u32),
            nr::SENDTO => self.sendto(n, fd, a[1], a[2], a[3] as i32, a[4], a[5] as u32),
            nr::SENDMSG => self.sendmsg(n, fd, a[1], a[2] as i32),
            nr::SENDMMSG => self.sendmmsg(n, fd, a[1], a[2] as u32, a[3] as i32),
            nr::SETSOCKOPT
                if membership::LINUX.is_membership(a[1] as i32, a[2] as i32)
                    || matches!(
                        (a[1] as i32, a[2] as i32),
                        (libc::IPPROTO_IP, libc::IP_MULTICAST_IF)
                            | (libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF)
                    ) =>
            {
                self.multicast_option(n, fd, a[1] as i32, a[2] as i32, a[3], a[4] as u32)
            }
            nr::SETSOCKOPT if a[1] as i32 == libc::IPPROTO_IP => {
                self.program_unicast(n, fd, a[3], a[4] as u32, false)
            }
            nr::SETSOCKOPT if a[1] as i32 == libc::IPPROTO_IPV6 => {
                self.program_unicast(n, fd, a[3], a[4] as u32, true)
            }
            nr::SETSOCKOPT
                if matches!(
                    a[2] as i32,
                    libc::SO_ATTACH_FILTER | libc::SO_DETACH_FILTER | libc::SO_ATTACH_BPF
                ) =>
            {
                self.program_filter(n, fd, a[2] as i32, a[3], a[4] as u32)
            }
            nr::SETSOCKOPT => {
                self.program_binding(n, fd, a[1] as i32, a[2] as i32, a[3], a[4] as u32)
            }
            nr::SECCOMP => {
                self.say(
                    LogLevel::Warn,
                    format_args!(
                        "pid {}: the program installs a seccomp supervisor of its own (a container runtime or sandbox?): \
                         nested supervisors are not possible, so it gets EBUSY; run it with --preload-only \
                         if a preload can steer it",
                        n.pid
                    ),
                );
                Some(Reply::Errno(libc::EBUSY))
            }
            nr::LISTEN => self.listen(n, fd, None),
            nr::BIND => self.bind(n, fd, a[1], a[2] as u32),
            _ => Some(Reply::Continue),
        }
    }

    /// The program's socket, duplicated. `Err(None)`: the task is gone (drop);
    /// `Err(Some(r))`: answer `r`.
    fn dup(&mut self, n: &Notif, fd: i32) -> Result<OwnedFd, Handled> {
        let got = self.getfd(n.pid, fd);
        match got {
            Ok(d) => Ok(d),
            // The task left the call (died, or a signal interrupted it): nobody waits.
            Err(_) if !sys::id_valid(self.listener, n.id) => Err(None),
            Err(e) => match e.raw_os_error() {
                // The kernel's answer; not a CONTINUE, after which the kernel would
                // look the number up again (another thread may have opened a socket
                // there by then).
                Some(libc::EBADF) => Err(Some(Reply::Errno(libc::EBADF))),
                _ => {
                    // Ptrace access denied (PR_SET_DUMPABLE 0, Yama): fail closed.
                    self.say(
                        LogLevel::Warn,
                        format_args!(
                            "pid {}: cannot reach fd {fd} of the program ({e}; PR_SET_DUMPABLE 0 or Yama ptrace_scope?); the call fails (EPERM)",
                            n.pid
                        ),
                    );
                    Err(Some(Reply::Errno(libc::EPERM)))
                }
            },
        }
    }

    /// The errno for a failed read of the program's memory: EFAULT for a bad
    /// pointer; EPERM, with a warning, when the kernel denies the supervisor access
    /// (`PR_SET_DUMPABLE` 0, Yama): the call fails closed.
    fn mem_errno(&mut self, n: &Notif, e: io::Error) -> i32 {
        match e.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => {
                self.say(
                    LogLevel::Warn,
                    format_args!(
                        "pid {}: cannot read the program's memory ({e}; PR_SET_DUMPABLE 0 or Yama ptrace_scope?); the call fails (EPERM)",
                        n.pid
                    ),
                );
                libc::EPERM
            }
            _ => libc::EFAULT,
        }
    }

    /// `pidfd_getfd` of the thread's `fd`, through a cache of thread pidfds (a pidfd
    /// names one task, never a reused number: a stale one fails with ESRCH and is
    /// opened again).
    fn getfd(&mut self, tid: u32, fd: i32) -> io::Result<OwnedFd> {
        if let Some(p) = self.pidfds.get(&tid) {
            match sys::pidfd_getfd(p, fd) {
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                    self.pidfds.remove(&tid);
                }
                r => return r,
            }
        }
        let p = sys::pidfd_thread(tid)?;
        let r = sys::pidfd_getfd(&p, fd);
        if self.pidfds.len() >= MAX_PIDFDS {
            self.pidfds.clear();
        }
        self.pidfds.insert(tid, p);
        r
    }

    /// Reads an address argument's bytes (at most [`MAX_ADDR`]; none for a NULL one).
    fn read_raw(&mut self, n: &Notif, ptr: u64, len: u32) -> Result<Vec<u8>, Handled> {
        if ptr == 0 || len == 0 {
            return Ok(Vec::new());
        }
        let len = (len as usize).min(MAX_ADDR);
        let mut b = vec![0u8; len];
        if let Err(e) = sys::read_mem(n.pid, ptr, &mut b) {
            return Err(if sys::id_valid(self.listener, n.id) {
                Some(Reply::Errno(self.mem_errno(n, e)))
            } else {
                None
            });
        }
        if !sys::id_valid(self.listener, n.id) {
            return Err(None);
        }
        Ok(b)
    }

    /// The destination of a send (`sendto`, `sendmsg`) and the program's socket,
    /// duplicated: an IP address, or an `AF_UNSPEC` one on an `AF_INET` socket
    /// ([`addr::parse_send`]: the kernel sends it as IPv4); `AF_UNSPEC` on an
    /// `AF_INET6` socket is no name ([`SendName::None`]); another name on an IP socket
    /// is sent as read ([`SendName::Raw`]: the kernel's `EAFNOSUPPORT`/`EINVAL`, or
    /// ignored by a connected stream); any name on a socket of another family is not
    /// the supervisor's ([`SendName::Other`]).
    fn send_dest(&mut self, n: &Notif, fd: i32, ptr: u64, len: u32) -> Result<SendName, Handled> {
        let raw = self.read_raw(n, ptr, len)?;
        let unspec = match addr::parse(&raw) {
            Dest::Ip { addr, scope_id } => {
                return Ok(SendName::To(self.dup(n, fd)?, addr, scope_id));
            }
            Dest::Unspec => true,
            Dest::Other(_) | Dest::Short => false,
        };
        // One more getsockopt, for these rare forms only (and a named send on a
        // socket of another family, an AF_UNIX datagram's).
        let s = self.dup(n, fd)?;
        let family = sys::getsockopt_int(&s, libc::SOL_SOCKET, libc::SO_DOMAIN).unwrap_or(0);
        if family != libc::AF_INET && family != libc::AF_INET6 {
            return Ok(SendName::Other);
        }
        if unspec && family == libc::AF_INET6 {
            // No name to the kernel (`udpv6_sendmsg`): the connected peer's datagram.
            return Ok(SendName::None(s));
        }
        Ok(match addr::parse_send(&raw, family) {
            Dest::Ip { addr, scope_id } => SendName::To(s, addr, scope_id),
            _ => SendName::Raw(s, raw),
        })
    }

    /// What the kernel says about the program's socket, with what the supervisor
    /// keeps about it by its cookie: the family and transport (which never change),
    /// asked once per socket, and who set a unicast interface. The device binding and
    /// the unicast interfaces are asked every time (fail closed: another holder may
    /// have changed them).
    fn facts(&mut self, s: &OwnedFd) -> Facts {
        let cookie = sys::cookie(s);
        let known = cookie.and_then(|c| self.socks.get(&c).copied());
        let k = match known {
            Some(k) => k,
            None => {
                let k = Known::ask(s);
                if let Some(c) = cookie {
                    if self.socks.len() >= MAX_SOCKS {
                        // Keep what cannot be asked again (the program's own options,
                        // the supervisor's own device bindings).
                        self.socks.retain(|_, k| k.keeps_state());
                        if self.socks.len() >= MAX_SOCKS {
                            self.socks.clear();
                        }
                    }
                    self.socks.insert(c, k);
                }
                k
            }
        };
        let mut f = Facts::of(k.family, k.proto);
        f.stream = k.stream;
        f.app_uc4 = k.app_uc4;
        f.app_uc6 = k.app_uc6;
        f.opts = k.opts;
        if k.family.is_none() {
            // AF_UNIX and the like: not steered, nothing more to ask.
            return f;
        }
        f.bound = sys::getsockopt_int(s, libc::SOL_SOCKET, libc::SO_BINDTOIFINDEX).unwrap_or(0);
        f.shim_bound = k.shim_bound && f.bound != 0;
        // A socket's fixed source is part of it (socket-core's SRC_ADDR): a PKTINFO
        // would rob a datagram of it (IPv4) or not steer it (IPv6), and a steered
        // destination must be reachable from it (socket-core's `steer_refusal`).
        f.local = local_addr(s)
            .map(|a| a.ip().to_canonical())
            .filter(|ip| socket_core::fixes_source(*ip));
        f.src_addr = f.local.is_some();
        // The snapshot as it is now (an address added a moment ago is the
        // interface's, not a foreign one).
        f.local_owner = f.local.and_then(|ip| {
            self.net()
                .sources
                .iter()
                .find(|(_, a)| *a == ip)
                .map(|(i, _)| *i)
        });
        let uc = |level, name| {
            sys::getsockopt_int(s, level, name)
                .map(|v| u32::from_be(v as u32))
                .unwrap_or(0)
        };
        f.uc4 = uc(libc::IPPROTO_IP, libc::IP_UNICAST_IF);
        if k.family == Some(AddrFamily::V6) {
            f.uc6 = uc(libc::IPPROTO_IPV6, libc::IPV6_UNICAST_IF);
        }
        // Only the DNS stub redirect asks (`nonblock`), on TCP.
        f.nonblock = f.stream && sys::is_nonblocking(s);
        f.app_mcast_if = k.app_mcast_if;
        f
    }

    /// Updates what the supervisor keeps about the socket (its entry made by
    /// [`Self::facts`] first).
    fn remember(&mut self, s: &OwnedFd, set: impl FnOnce(&mut Known)) {
        if let Some(k) = sys::cookie(s).and_then(|c| self.socks.get_mut(&c)) {
            set(k);
        }
    }

    /// The program's socket (a `pidfd_getfd` duplicate) and the option value it passes
    /// ([`Self::read_option`]): what every trapped `setsockopt` handler starts from.
    fn socket_and_option(
        &mut self,
        n: &Notif,
        fd: i32,
        level: i32,
        name: i32,
        val: u64,
        len: u32,
    ) -> Result<(OwnedFd, Vec<u8>), Handled> {
        let s = self.dup(n, fd)?;
        let v = self.read_option(n, &s, level, name, val, len)?;
        Ok((s, v))
    }

    /// Reads a `setsockopt` value of at most [`membership::MAX_VALUE`] bytes (`len`
    /// the program's), for a call the supervisor then makes itself on the duplicate
    /// `s` with what it read: the kernel never reads the program's memory again
    /// (another thread could change the request between the supervisor's read and the
    /// kernel's). `Err`: the answer — an unreadable value gets the kernel's own
    /// (`EINVAL` for a length the option refuses, else `EFAULT`), a negative length
    /// the kernel's `EINVAL`, a task that left the call none.
    fn read_option(
        &mut self,
        n: &Notif,
        s: &OwnedFd,
        level: i32,
        name: i32,
        val: u64,
        len: u32,
    ) -> Result<Vec<u8>, Handled> {
        if (len as i32) < 0 {
            return Err(Some(Reply::Continue));
        }
        let mut v = vec![0u8; (len as usize).min(membership::MAX_VALUE)];
        let read = if v.is_empty() {
            Ok(())
        } else {
            sys::read_mem(n.pid, val, &mut v)
        };
        if !sys::id_valid(self.listener, n.id) {
            return Err(None);
        }
        match read {
            Ok(()) => Ok(v),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) => {
                Err(Some(Reply::Errno(self.mem_errno(n, e))))
            }
            Err(_) => Err(Some(
                match sys::setsockopt_bytes(s, level, name, None, len) {
                    Ok(()) => Reply::Value(0),
                    Err(e) => Reply::Errno(e),
                },
            )),
        }
    }

    /// A multicast option (a membership, or the multicast interface): the value read
    /// (bounded by its length), then the call made by the supervisor.
    fn multicast_option(
        &mut self,
        n: &Notif,
        fd: i32,
        level: i32,
        name: i32,
        val: u64,
        len: u32,
    ) -> Handled {
        let (s, v) = match self.socket_and_option(n, fd, level, name, val, len) {
            Ok(sv) => sv,
            Err(h) => return h,
        };
        if membership::LINUX.is_membership(level, name) {
            self.membership(n, fd, &s, level, name, &v)
        } else {
            self.program_multicast_if(n, fd, &s, level, name, &v)
        }
    }

    /// A multicast join or leave (socket-core's `membership`): one that names no
    /// interface is decided (`Op::Join`, the preload's decision) and pointed at the
    /// chosen interface, or refused; the supervisor makes the call on its duplicate
    /// with the value it read (`v`), rewritten or not, and answers with the result.
    fn membership(
        &mut self,
        n: &Notif,
        fd: i32,
        s: &OwnedFd,
        level: i32,
        name: i32,
        v: &[u8],
    ) -> Handled {
        let f = self.facts(s);
        let group = f
            .family
            .and_then(|_| membership::LINUX.group_of(level, name, v));
        let mut out = None;
        if let Some(group) = group {
            let profile = self.profile(n.pid);
            let fl = Flow {
                proto: f.proto,
                op: Op::Join,
                dest: group,
                port: 0,
                scope_id: 0,
            };
            let note = Note {
                tid: n.pid,
                call: "join",
                fd,
                bound: 0,
                flow: None,
            };
            let (verdict, why, _) = self.decide(&profile, &fl, Some(note));
            match logic::on_join(&f, verdict) {
                logic::JoinStep::AsIs => {
                    self.say(
                        LogLevel::Debug,
                        format_args!("pid {}: join fd {fd} {group}: {why}; as is", n.pid),
                    );
                }
                logic::JoinStep::Fail(e) => {
                    self.acted(true);
                    self.say(
                        LogLevel::Warn,
                        format_args!(
                            "pid {}: join fd {fd} {group} blocked ({})",
                            n.pid,
                            io::Error::from_raw_os_error(e)
                        ),
                    );
                    return Some(Reply::Errno(e));
                }
                logic::JoinStep::Rewrite { index } => {
                    self.acted(true);
                    let net = self.net();
                    let v4 = |i| match config_schema::NetView::address_of(net, i, AddrFamily::V4) {
                        Some(IpAddr::V4(a)) => Some(a),
                        _ => None,
                    };
                    let name_of = net.name_of(index);
                    let Some(r) = membership::LINUX.rewrite(level, name, v, index, v4) else {
                        // Only a source membership, which names the interface by its
                        // IPv4 address: none on the chosen interface.
                        self.say(
                            LogLevel::Warn,
                            format_args!(
                                "pid {}: join fd {fd} {group}: {name_of} has no IPv4 address to name it by; refusing",
                                n.pid
                            ),
                        );
                        return Some(Reply::Errno(logic::ENETUNREACH));
                    };
                    self.say(
                        LogLevel::Info,
                        format_args!("pid {}: join fd {fd} {group} -> {name_of}", n.pid),
                    );
                    out = Some(r);
                }
            }
        }
        let bytes = out.as_ref().map_or(v, |r| r.bytes());
        Some(
            match sys::setsockopt_bytes(s, level, name, Some(bytes), 0) {
                Ok(()) => Reply::Value(0),
                Err(e) => Reply::Errno(e),
            },
        )
    }

    /// The program sets `IP_MULTICAST_IF` / `IPV6_MULTICAST_IF` itself: its choice
    /// wins for the socket's multicast datagrams (remembered by cookie; "any",
    /// socket-core's `multicast_if_chooses`, withdraws it), as under the preload. The supervisor makes
    /// the call with the value it read, so what it remembers is what the kernel got.
    fn program_multicast_if(
        &mut self,
        n: &Notif,
        fd: i32,
        s: &OwnedFd,
        level: i32,
        name: i32,
        v: &[u8],
    ) -> Handled {
        let r = sys::setsockopt_bytes(s, level, name, Some(v), 0);
        if r.is_ok() {
            let _ = self.facts(s);
            let chosen = membership::LINUX.multicast_if_chooses(level, v);
            self.remember(s, |k| {
                k.app_mcast_if = chosen;
                k.shim_mcast_if = false;
            });
            self.say(
                LogLevel::Debug,
                format_args!(
                    "pid {}: fd {fd}: the program sets its own multicast interface; that choice wins",
                    n.pid
                ),
            );
        }
        Some(match r {
            Ok(()) => Reply::Value(0),
            Err(e) => Reply::Errno(e),
        })
    }

    /// The program sets `IP_UNICAST_IF` / `IPV6_UNICAST_IF` itself: remembered for
    /// the socket (its choice then wins for that path), and the call continues.
    fn program_unicast(&mut self, n: &Notif, fd: i32, val: u64, len: u32, v6: bool) -> Handled {
        let mut b = [0u8; 4];
        if len < 4 || sys::read_mem(n.pid, val, &mut b).is_err() {
            return Some(Reply::Continue); // the kernel answers EINVAL / EFAULT
        }
        let set = i32::from_ne_bytes(b) != 0;
        let Ok(s) = self.getfd(n.pid, fd) else {
            return Some(Reply::Continue);
        };
        let _ = self.facts(&s);
        if let Some(k) = sys::cookie(&s).and_then(|c| self.socks.get_mut(&c)) {
            if v6 {
                k.app_uc6 = set;
            } else {
                k.app_uc4 = set;
            }
        }
        self.say(
            LogLevel::Debug,
            format_args!(
                "pid {}: fd {fd}: the program sets its own unicast interface; that choice wins",
                n.pid
            ),
        );
        Some(Reply::Continue)
    }

    /// Binds the duplicate to `index` unless it is bound already (a second set is
    /// EPERM; the first binding wins).
    fn bind_device(&mut self, s: &OwnedFd, index: u32) -> Result<(), i32> {
        match sys::setsockopt_int(s, libc::SOL_SOCKET, libc::SO_BINDTOIFINDEX, index as i32) {
            Ok(()) => Ok(()),
            Err(e) => {
                let now = sys::getsockopt_int(s, libc::SOL_SOCKET, libc::SO_BINDTOIFINDEX);
                if now.ok() == Some(index as i32) {
                    Ok(())
                } else {
                    Err(e.raw_os_error().unwrap_or(libc::EPERM))
                }
            }
        }
    }

    /// A `connect`: decided and steered on the supervisor's duplicate, then made by
    /// the supervisor on that duplicate with its own copy of the address, and the
    /// kernel's answer returned. A CONTINUE would let the kernel read the fd and the
    /// address again: another thread could `dup2` an unsteered socket onto the fd, or
    /// rewrite an exempt (loopback) address into a steered one, between the check and
    /// the call. A blocking stream connect is made by a worker thread
    /// ([`connect_worker`]), so the notification loop never waits on the network.
    fn connect(&mut self, n: &Notif, fd: i32, ptr: u64, len: u32) -> Handled {
        if ptr == 0 || len == 0 || len as usize > MAX_ADDR {
            // Registers, not memory: the kernel's EFAULT / EINVAL, nothing to race.
            return Some(Reply::Continue);
        }
        let raw = match self.read_raw(n, ptr, len) {
            Ok(b) => b,
            Err(h) => return h,
        };
        let s = match self.dup(n, fd) {
            Ok(s) => s,
            Err(h) => return h,
        };
        let f = self.facts(&s);
        if f.family.is_none() {
            // Not an INET socket (AF_UNIX…): nothing to steer; an AF_UNIX path is the
            // program's to resolve (its cwd, its mount namespace).
            return Some(Reply::Continue);
        }
        // AF_UNSPEC (a disconnect) and other families get the kernel's own answer on
        // the duplicate too: the address the kernel reads is the one checked.
        if let Dest::Ip { addr, scope_id } = addr::parse(&raw) {
            match self.connect_like(n, fd, &s, &f, addr, scope_id, "connect") {
                Some(Reply::Continue) => {}
                other => return other,
            }
        }
        self.connect_self(n, s, &f, raw)
    }

    /// Runs a call that waits (a blocking connect, a send on a full buffer) in a
    /// worker thread that answers the notification with its result
    /// ([`worker`]); false when [`MAX_WORKERS`] are busy or no thread could be made.
    fn spawn_worker(
        &mut self,
        n: &Notif,
        job: impl FnMut(&interrupt::Intr) -> Option<Reply> + Send + 'static,
    ) -> bool {
        use std::sync::atomic::Ordering;
        if self.workers.load(Ordering::Acquire) >= MAX_WORKERS {
            return false;
        }
        let (listener, ids) = (self.listener, (n.id, n.pid));
        let workers = self.workers.clone();
        if worker(
            listener,
            ids,
            workers,
            &self.waits,
            &self.parked,
            Box::new(job),
        )
        .is_err()
        {
            return false;
        }
        self.stats.workers += 1;
        true
    }

    /// Makes the program's connect on the duplicate `s` with the address bytes `raw`
    /// (as read, the program's length): datagram sockets and non-blocking streams at
    /// once (the kernel's answer, `EINPROGRESS` included), a blocking stream in a
    /// worker thread that answers the notification when the kernel does.
    fn connect_self(&mut self, n: &Notif, s: OwnedFd, f: &Facts, raw: Vec<u8>) -> Handled {
        if !sys::id_valid(self.listener, n.id) {
            return None;
        }
        // The decision's events line is the one CONTINUE gave (the kernel's errors
        // are not decisions).
        self.flush_events(&Some(Reply::Continue));
        if f.stream && !sys::is_nonblocking(&s) {
            let (mut clock, mut begun) = (Clock::default(), false);
            let job = move |intr: &interrupt::Intr| {
                clock.start(&s);
                connect_waiting(&s, &raw, intr, &clock, &mut begun)
            };
            if self.spawn_worker(n, job) {
                return None;
            }
            // Fail closed: a CONTINUE would let the kernel read the fd and the address
            // again (another thread's `dup2` of an unsteered socket, an exempt address
            // rewritten into a steered one would go unsteered). The program's connect
            // gets EAGAIN and nothing is sent.
            self.say(
                LogLevel::Warn,
                format_args!(
                    "pid {}: {MAX_WORKERS} blocking calls in progress; this connect fails (EAGAIN)",
                    n.pid
                ),
            );
            return Some(Reply::Errno(libc::EAGAIN));
        }
        Some(match sys::connect(&s, &raw) {
            Ok(()) => Reply::Value(0),
            Err(e) => Reply::Errno(e),
        })
    }

    /// A connect, or a TCP Fast Open send (an implicit connect): decide, bind, continue.
    #[allow(clippy::too_many_arguments)]
    fn connect_like(
        &mut self,
        n: &Notif,
        fd: i32,
        s: &OwnedFd,
        f: &Facts,
        dest: SocketAddr,
        scope: u32,
        what: &str,
    ) -> Handled {
        let profile = self.profile(n.pid);
        if logic::is_stub_dns(dest, &profile) {
            return Some(self.stub_dns(n, fd, s, f, dest, &profile, true));
        }
        let f = &Facts {
            keep_foreign: profile.foreign_bind == config_schema::ForeignBind::Keep,
            ..*f
        };
        let fl = logic::flow(f, Op::Connect, dest, scope);
        let note = Note {
            tid: n.pid,
            call: "connect",
            fd,
            bound: f.bound,
            flow: None,
        };
        let (v, why, opts) = self.decide(&profile, &fl, Some(note));
        let step = logic::on_connect(f, v);
        self.acted(step != Step::Continue);
        if let Step::Fail(_) = step {
            self.say_refusal(n, fd, what, dest, f, UcPath::V4, v);
        }
        self.say(
            LogLevel::Debug,
            format_args!("pid {}: {what} fd {fd} to {dest}: {why} -> {step:?}", n.pid),
        );
        if let (true, false, Some(o)) = (logic::takes_options(step), f.opts, &opts) {
            // Connected: the device binding steers whatever the source.
            if let Err(e) = self.set_options(n, fd, s, f, dest, o, &profile, false, what) {
                return Some(Reply::Errno(e));
            }
        }
        let reply = self.apply(n, fd, s, dest, step, what);
        if let (Verdict::Steer { .. }, Step::Bind { .. }, Reply::Continue, false) =
            (v, step, reply, f.stream)
        {
            self.remember(s, |k| k.shim_bound = true);
        }
        // Bound by the supervisor, or by the program itself (its choice of link is
        // kept: the hold changes only the link the kernel answers a late FIN by).
        if reply == Reply::Continue && (matches!(step, Step::Bind { .. }) || f.bound != 0) {
            self.hold_fin_wait2(n, fd, s, f.proto, dest, what);
        }
        Some(reply)
    }

    /// Says why the socket's own binding refused a steered destination, when it did
    /// (socket-core's `steer_refusal`, in the preload's words).
    #[allow(clippy::too_many_arguments)]
    fn say_refusal(
        &mut self,
        n: &Notif,
        fd: i32,
        what: &str,
        dest: SocketAddr,
        f: &Facts,
        path: UcPath,
        v: Verdict,
    ) {
        let Some(r) = logic::refusal(f, logic::sock(f, path), v) else {
            return;
        };
        let pid = n.pid;
        let errno = io::Error::from_raw_os_error(r.errno());
        match r {
            socket_core::Refusal::BoundElsewhere { bound, index } => self.say(
                LogLevel::Warn,
                format_args!(
                    "pid {pid}: {what} fd {fd} to {dest}: the socket is bound to interface #{bound} already, the policy sends this destination by #{index}; refusing ({errno})"
                ),
            ),
            socket_core::Refusal::Source { local, index, .. } => self.say(
                LogLevel::Warn,
                format_args!(
                    "pid {pid}: {what} fd {fd} to {dest}: the socket's source {local} is not an address of the interface the policy sends this destination by (#{index}); refusing ({errno})"
                ),
            ),
        }
    }

    /// Sets the policy's `source`, `mark` and `dscp` (`o`, a decision's
    /// [`logic::applied`]) on the program's socket through the duplicate, before its
    /// `connect` or first steered datagram, as the preload does: socket-core's
    /// [`options`](socket_core::options) decides which, given what the socket carries.
    /// `Ok(true)`: the socket was bound to the source address. `Err`: the call fails
    /// (a mark refused under `on_mark_denied = "block"`, a source that cannot be
    /// bound); nothing has been sent.
    #[allow(clippy::too_many_arguments)]
    fn set_options(
        &mut self,
        n: &Notif,
        fd: i32,
        s: &OwnedFd,
        f: &Facts,
        dest: SocketAddr,
        o: &Opts,
        profile: &Profile,
        datagram: bool,
        what: &str,
    ) -> Result<bool, i32> {
        let (a, ifname) = o;
        let pid = n.pid;
        // Once per socket: marked before, taken back if the options were not applied.
        self.remember(s, |k| k.opts = true);
        let req = sockopts::Request {
            sock: logic::sock(f, logic::path_of(dest.ip())),
            dest: dest.ip(),
            applied: a,
            ifname: *ifname,
            on_mark_denied: profile.on_mark_denied,
            datagram,
        };
        let rep = sockopts::apply(&mut OptionDup(s), &req);
        if rep.refresh {
            self.stale = true;
        }
        for note in rep.notes.iter() {
            let level = if note.warn() {
                LogLevel::Warn
            } else {
                LogLevel::Info
            };
            self.say(
                level,
                format_args!(
                    "pid {pid}: {what} fd {fd} to {dest}: {}",
                    note.text(io::Error::from_raw_os_error)
                ),
            );
        }
        match rep.outcome {
            sockopts::Outcome::Done => Ok(false),
            sockopts::Outcome::SourceBound => Ok(true),
            sockopts::Outcome::Refused { errno, retry } => {
                if retry {
                    // Not applied: the next call tries again (and fails again).
                    self.remember(s, |k| k.opts = false);
                }
                Err(errno)
            }
        }
    }

    fn apply(
        &mut self,
        n: &Notif,
        fd: i32,
        s: &OwnedFd,
        dest: SocketAddr,
        step: Step,
        what: &str,
    ) -> Reply {
        match step {
            Step::Continue => Reply::Continue,
            Step::Fail(e) => {
                self.say(
                    LogLevel::Warn,
                    format_args!(
                        "pid {}: {what} fd {fd} to {dest} blocked ({})",
                        n.pid,
                        io::Error::from_raw_os_error(e)
                    ),
                );
                Reply::Errno(e)
            }
            Step::Bind { index } => match self.bind_device(s, index) {
                Ok(()) => {
                    let name = self.snap.name_of(index);
                    self.say(
                        LogLevel::Info,
                        format_args!("pid {}: {what} fd {fd} to {dest} via {name}", n.pid),
                    );
                    Reply::Continue
                }
                Err(e) => Reply::Errno(e),
            },
            Step::Filter { index } => match self.confine_by_filter(n, fd, s, dest, index) {
                Ok(()) => Reply::Continue,
                Err(e) => Reply::Errno(e),
            },
            Step::BindRoute => match self.host.route_oif(dest.ip().to_canonical()) {
                Some(index) => match self.bind_device(s, index) {
                    Ok(()) => Reply::Continue,
                    Err(e) => Reply::Errno(e),
                },
                None => Reply::Errno(logic::ENETUNREACH),
            },
            Step::MulticastIf { index } => {
                // The socket's family decides the option (an IPv4-mapped group on an
                // AF_INET6 socket takes IP_MULTICAST_IF too).
                let r = if logic::path_of(dest.ip()) == UcPath::V6 {
                    sys::setsockopt_int(
                        s,
                        libc::IPPROTO_IPV6,
                        libc::IPV6_MULTICAST_IF,
                        index as i32,
                    )
                    .map_err(|e| e.raw_os_error().unwrap_or(libc::EINVAL))
                } else {
                    // An ip_mreqn naming the interface by index.
                    let mut m = [0u8; 12];
                    m[8..12].copy_from_slice(&(index as i32).to_ne_bytes());
                    sys::setsockopt_bytes(s, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, Some(&m), 0)
                };
                match r {
                    Ok(()) => {
                        self.remember(s, |k| k.shim_mcast_if = true);
                        let name = self.snap.name_of(index);
                        self.say(
                            LogLevel::Info,
                            format_args!(
                                "pid {}: {what} fd {fd} to {dest} via {name} multicast",
                                n.pid
                            ),
                        );
                        Reply::Continue
                    }
                    Err(e) => {
                        self.say(
                            LogLevel::Warn,
                            format_args!(
                                "pid {}: {what} fd {fd} to {dest}: cannot set the multicast interface ({}); refusing",
                                n.pid,
                                io::Error::from_raw_os_error(e)
                            ),
                        );
                        Reply::Errno(logic::ENETUNREACH)
                    }
                }
            }
            Step::Unicast { path, index } => {
                let (level, name) = match path {
                    UcPath::V4 => (libc::IPPROTO_IP, libc::IP_UNICAST_IF),
                    UcPath::V6 => (libc::IPPROTO_IPV6, libc::IPV6_UNICAST_IF),
                };
                match sys::setsockopt_int(s, level, name, index.to_be() as i32)
                    .map_err(|e| e.raw_os_error().unwrap_or(libc::EINVAL))
                    .and_then(|()| self.multicast_too(s, path, index))
                {
                    Ok(()) => {
                        let iface = self.snap.name_of(index);
                        self.say(
                            LogLevel::Info,
                            format_args!("pid {}: {what} fd {fd} to {dest} via {iface}", n.pid),
                        );
                        Reply::Continue
                    }
                    Err(e) => Reply::Errno(e),
                }
            }
            // Sends are done by the caller, which has the data.
            Step::SendPktinfo { .. } | Step::SendPktinfoRoute => Reply::Errno(libc::EINVAL),
        }
    }

    /// `listen = "interface"`: attaches the confinement filter for `index` (and
    /// loopback) to the program's listener through the duplicate (the same kernel
    /// socket), composed with a classic filter the program attached before, as the
    /// preload does; falls back to the device binding (loopback closed) when that
    /// cannot be done: an eBPF program, a locked filter, a composition too long.
    fn confine_by_filter(
        &mut self,
        n: &Notif,
        fd: i32,
        s: &OwnedFd,
        local: SocketAddr,
        index: u32,
    ) -> Result<(), i32> {
        let proto = match sys::getsockopt_int(s, libc::SOL_SOCKET, libc::SO_TYPE) {
            Ok(libc::SOCK_DGRAM) => Proto::Udp,
            _ => Proto::Tcp,
        };
        let lo = self.snap.loopback;
        let onlink = self.snap.onlink_of(index);
        let name = self.snap.name_of(index);
        let attached = match sys::get_filter(s) {
            Ok(cur) => {
                let program = match listen_filter::ours(&cur) {
                    Some(o) => listen_filter::program_part(&cur, o),
                    None => &cur[..],
                };
                let mut out = vec![listen_filter::ZERO; listen_filter::MAX_INSNS];
                match listen_filter::build(
                    &mut out,
                    lo,
                    index,
                    logic::filter_sources(proto, &onlink),
                    program,
                ) {
                    Some(m) => sys::attach_filter(s, &out[..m]).map_err(|e| match e {
                        libc::EPERM => "the program locked the socket's filter".to_owned(),
                        e => io::Error::from_raw_os_error(e).to_string(),
                    }),
                    None => Err("the program's filter is too long to compose".to_owned()),
                }
            }
            Err(libc::EACCES) => Err("the program attached an eBPF filter".to_owned()),
            Err(e) => Err(io::Error::from_raw_os_error(e).to_string()),
        };
        match attached {
            Ok(()) => {
                self.say(
                    LogLevel::Info,
                    format_args!(
                        "pid {}: listen fd {fd} on {local} -> {name} and loopback",
                        n.pid
                    ),
                );
                Ok(())
            }
            Err(why) => {
                self.say(
                    LogLevel::Info,
                    format_args!(
                        "pid {}: listen fd {fd} on {local}: {why}; binding the socket to {name} instead (loopback closed)",
                        n.pid
                    ),
                );
                self.bind_device(s, index)
            }
        }
    }

    /// The program's own `SO_ATTACH_FILTER`, `SO_ATTACH_BPF` or `SO_DETACH_FILTER`
    /// on a socket carrying the confinement filter (else the call continues as is),
    /// as the preload handles it:
    /// * a classic filter is composed behind the confinement (its admission first,
    ///   then the program's verdict), validated by the kernel on a scratch socket
    ///   first (its errors are the program's); `EPERM` if locked, as the kernel says;
    /// * an eBPF program cannot be composed: the socket is bound to the device first
    ///   (still closed to the other links; loopback then closed), then it replaces
    ///   the filter;
    /// * a detach removes the program's part only: the confinement stays.
    fn program_filter(&mut self, n: &Notif, fd: i32, name: i32, val: u64, len: u32) -> Handled {
        let s = match self.dup(n, fd) {
            Ok(s) => s,
            Err(h) => return h,
        };
        let Ok(cur) = sys::get_filter(&s) else {
            return Some(Reply::Continue);
        };
        let Some(o) = listen_filter::ours(&cur) else {
            return Some(Reply::Continue);
        };
        let ifname = self.snap.name_of(o.ifindex);
        if name == libc::SO_ATTACH_BPF {
            self.say(
                LogLevel::Warn,
                format_args!(
                    "pid {}: fd {fd}: the program attaches an eBPF filter to a confined listener; binding it to {ifname} instead (loopback closed)",
                    n.pid
                ),
            );
            return match self.bind_device(&s, o.ifindex) {
                Ok(()) => Some(Reply::Continue),
                Err(e) => Some(Reply::Errno(e)),
            };
        }
        if name == libc::SO_DETACH_FILTER
            && sys::getsockopt_int(&s, libc::SOL_SOCKET, libc::SO_LOCK_FILTER).unwrap_or(0) != 0
        {
            return Some(Reply::Errno(libc::EPERM));
        }
        let program = if name == libc::SO_ATTACH_FILTER {
            match self.read_program_filter(n, val, len) {
                Ok(p) => p,
                Err(h) => return h,
            }
        } else if o.tail == 0 {
            return Some(Reply::Value(0)); // nothing of the program's to remove
        } else {
            Vec::new()
        };
        let proto = match sys::getsockopt_int(&s, libc::SOL_SOCKET, libc::SO_TYPE) {
            Ok(libc::SOCK_DGRAM) => Proto::Udp,
            _ => Proto::Tcp,
        };
        let onlink = self.snap.onlink_of(o.ifindex);
        let mut out = vec![listen_filter::ZERO; listen_filter::MAX_INSNS];
        let Some(m) = listen_filter::build(
            &mut out,
            o.lo,
            o.ifindex,
            logic::filter_sources(proto, &onlink),
            &program,
        ) else {
            // Too long to compose: the program's filter alone, and the device binding.
            return match self.bind_device(&s, o.ifindex) {
                Ok(()) => Some(Reply::Continue),
                Err(e) => Some(Reply::Errno(e)),
            };
        };
        self.say(
            LogLevel::Debug,
            format_args!(
                "pid {}: fd {fd}: the program's socket filter ({} instructions) composed behind the confinement to {ifname}",
                n.pid,
                program.len()
            ),
        );
        match sys::attach_filter(&s, &out[..m]) {
            Ok(()) => Some(Reply::Value(0)),
            Err(e) => Some(Reply::Errno(e)),
        }
    }

    /// The program's `struct sock_fprog` at `val`, validated as the kernel validates
    /// it: attached to a scratch socket (the kernel's errors are the program's), then
    /// read back.
    fn read_program_filter(
        &mut self,
        n: &Notif,
        val: u64,
        len: u32,
    ) -> Result<Vec<libc::sock_filter>, Handled> {
        if (len as usize) < size_of::<libc::sock_fprog>() {
            return Err(Some(Reply::Errno(libc::EINVAL)));
        }
        let mut b = [0u8; 16];
        if let Err(e) = sys::read_mem(n.pid, val, &mut b) {
            return Err(Some(Reply::Errno(self.mem_errno(n, e))));
        }
        let count = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let ptr = u64::from_ne_bytes(b[8..16].try_into().unwrap());
        if count == 0 || count > listen_filter::MAX_INSNS {
            return Err(Some(Reply::Errno(libc::EINVAL)));
        }
        let mut raw = vec![0u8; count * 8];
        if let Err(e) = sys::read_mem(n.pid, ptr, &mut raw) {
            return Err(Some(Reply::Errno(self.mem_errno(n, e))));
        }
        if !sys::id_valid(self.listener, n.id) {
            return Err(None);
        }
        let prog: Vec<libc::sock_filter> = raw
            .chunks(8)
            .map(|c| libc::sock_filter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        let scratch = sys::scratch_socket().map_err(|e| Some(Reply::Errno(e)))?;
        sys::attach_filter(&scratch, &prog).map_err(|e| Some(Reply::Errno(e)))?;
        sys::get_filter(&scratch).map_err(|e| Some(Reply::Errno(e)))
    }

    /// The program's `SO_BINDTOIFINDEX` / `SO_BINDTODEVICE` (the filter traps these
    /// two of `SOL_SOCKET`). Dropping a binding the supervisor made (index 0, an empty
    /// name: socket-core's `unbind_refused`, the preload's rule) is refused with
    /// `EPERM`, what the kernel answers a program without `CAP_NET_RAW`: a privileged
    /// program's socket would otherwise leave by the default route. A device of the
    /// program's own choosing wins over the policy: the confinement filter (which
    /// would drop that device's packets) goes, a filter of the program's own stays.
    /// The supervisor makes the call on its duplicate with the value it read, so the
    /// kernel never reads the program's memory again (another thread could turn an
    /// index into 0 after the check); rebinding a bound socket takes the program's
    /// `CAP_NET_RAW`, as the kernel checks the caller's.
    fn program_binding(
        &mut self,
        n: &Notif,
        fd: i32,
        level: i32,
        name: i32,
        val: u64,
        len: u32,
    ) -> Handled {
        let (s, v) = match self.socket_and_option(n, fd, level, name, val, len) {
            Ok(sv) => sv,
            Err(h) => return h,
        };
        let f = self.facts(&s);
        if f.family.is_some() {
            let sock = logic::sock(&f, UcPath::V4);
            if let Some(e) = socket_core::unbind_refused(sock, level, name, &v) {
                self.say(
                    LogLevel::Warn,
                    format_args!(
                        "pid {}: fd {fd}: the program drops the device binding the supervisor gave the socket ({}); refused ({})",
                        n.pid,
                        self.snap.name_of(f.bound as u32),
                        io::Error::from_raw_os_error(e)
                    ),
                );
                return Some(Reply::Errno(e));
            }
        }
        if f.bound != 0 && !sys::has_capability(n.pid, sys::CAP_NET_RAW) {
            return Some(Reply::Errno(libc::EPERM));
        }
        if let Err(e) = sys::setsockopt_bytes(&s, level, name, Some(&v), 0) {
            return Some(Reply::Errno(e));
        }
        self.remember(&s, |k| k.shim_bound = false);
        if !socket_core::unbinds_device(level, name, &v) {
            self.unconfine_filter(&s);
            // Debug, not info: under --supervise the preload's own bindings of a
            // dynamic program come this way too.
            self.say(
                LogLevel::Debug,
                format_args!(
                    "pid {}: fd {fd}: the program binds this socket to a device itself; that choice wins over the policy",
                    n.pid
                ),
            );
        }
        Some(Reply::Value(0))
    }

    /// The program binds a socket to a device itself: its choice wins, so the
    /// confinement filter (which would drop that device's packets) goes; a filter of
    /// the program's own stays.
    fn unconfine_filter(&mut self, s: &OwnedFd) {
        let Ok(cur) = sys::get_filter(s) else {
            return;
        };
        let Some(o) = listen_filter::ours(&cur) else {
            return;
        };
        let program = listen_filter::program_part(&cur, o);
        let _ = if program.is_empty() {
            sys::detach_filter(s)
        } else {
            sys::attach_filter(s, program)
        };
    }

    #[allow(clippy::too_many_arguments)]
    fn stub_dns(
        &mut self,
        n: &Notif,
        fd: i32,
        s: &OwnedFd,
        f: &Facts,
        dest: SocketAddr,
        profile: &Profile,
        connect: bool,
    ) -> Reply {
        let mut choice = None;
        let mut position = 0;
        for name in profile.via.clone() {
            let net = self.net().clone();
            let Some(st) = config_schema::NetView::iface(&net, &name) else {
                continue;
            };
            if !st.up {
                continue;
            }
            let servers = self.host.dns_servers(profile, name.as_str(), st.index);
            if let StubDns::Redirect { index, server } =
                logic::stub_dns(f, connect, Some(st.index), &servers)
            {
                choice = Some((index, server));
                break;
            }
            position += 1;
        }
        let call = if connect { "connect" } else { "sendto" };
        let Some((index, server)) = choice else {
            self.say(
                LogLevel::Warn,
                format_args!(
                    "pid {}: fd {fd}: DNS to the local stub {dest} refused: it would answer by any link, \
                     and {}",
                    n.pid,
                    if !connect {
                        "an unconnected query cannot be redirected (the program checks the reply's source)"
                    } else if f.stream && !f.nonblock {
                        "a blocking TCP query cannot be redirected"
                    } else {
                        "no DNS server is known for the chosen interface (--dns ADDR or [interfaces.NAME] dns)"
                    }
                ),
            );
            let refused = config_schema::events::Fields {
                decision: "block",
                interface: None,
                reason: "dns-stub",
                rule: None,
                skipped: 0,
                multicast: false,
                errno: Some("ECONNREFUSED"),
            };
            self.note_fields(n.pid, call, fd, f.proto, dest, &refused);
            return Reply::Errno(logic::ECONNREFUSED);
        };
        let ifname = self.snap.name_of(index);
        let redirected = config_schema::events::Fields {
            decision: "bind",
            interface: Some((&ifname, index)),
            reason: "default",
            rule: None,
            skipped: position,
            multicast: false,
            errno: None,
        };
        if let Some(p) = self.note_fields(n.pid, call, fd, f.proto, server, &redirected) {
            // The program asked the stub; the query went to the interface's server.
            events::str_field(&mut p.body, "redirected_from", &dest.to_string());
        }
        if let Err(e) = self.bind_device(s, index) {
            return Reply::Errno(e);
        }
        let server = match (server, f.family) {
            (SocketAddr::V4(v4), Some(AddrFamily::V6)) => {
                SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
            }
            (a, _) => a,
        };
        self.say(
            LogLevel::Info,
            format_args!(
                "pid {}: fd {fd}: DNS to {dest} redirected to {server} via {}",
                n.pid,
                self.snap.name_of(index)
            ),
        );
        match sys::connect(s, &addr::encode(server, 0)) {
            Ok(()) => Reply::Value(0),
            Err(e) => Reply::Errno(e),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn sendto(
        &mut self,
        n: &Notif,
        fd: i32,
        buf: u64,
        len: u64,
        flags: i32,
        ptr: u64,
        alen: u32,
    ) -> Handled {
        if alen as usize > MAX_ADDR {
            // The kernel's answer to a name longer than a sockaddr_storage
            // (`move_addr_to_kernel`; sendmsg cuts it instead), after the descriptor's:
            // `EBADF`, `ENOTSOCK` first (review_1203c).
            return Some(match self.dup(n, fd) {
                Err(h) => return h,
                Ok(s) => match sys::getsockopt_int(&s, libc::SOL_SOCKET, libc::SO_TYPE) {
                    Err(e) if e.raw_os_error() == Some(libc::ENOTSOCK) => {
                        Reply::Errno(libc::ENOTSOCK)
                    }
                    _ => Reply::Errno(libc::EINVAL),
                },
            });
        }
        let iov = [(buf, len)];
        let (s, dest, scope) = match self.send_dest(n, fd, ptr, alen) {
            Ok(SendName::To(s, dest, scope)) => (s, dest, scope),
            Ok(SendName::None(s)) => return self.send_unnamed(n, s, Payload::Buf(&iov), flags),
            Ok(SendName::Raw(s, raw)) => return self.send_raw(n, &s, raw, &iov, &[], flags),
            Ok(SendName::Other) => return Some(Reply::Continue),
            Err(h) => return h,
        };
        self.datagram(n, fd, &s, dest, scope, &iov, &[], flags, "sendto", None)
    }

    #[allow(clippy::too_many_arguments)]
    fn datagram(
        &mut self,
        n: &Notif,
        fd: i32,
        s: &OwnedFd,
        dest: SocketAddr,
        scope: u32,
        iov: &[(u64, u64)],
        control: &[u8],
        flags: i32,
        what: &'static str,
        src: Option<IpAddr>,
    ) -> Handled {
        let mut f = self.facts(s);
        if f.family.is_none() {
            return Some(Reply::Continue);
        }
        if let Some(ip) = src {
            self.with_source(&mut f, ip);
        }
        if f.stream {
            // A connected stream ignores the address (sent by the supervisor all the
            // same: see `stream_self`); on an unconnected one this is TCP Fast Open:
            // an implicit connect.
            if sys::is_connected(s) {
                return self.stream_self(n, s, Vec::new(), iov, control, flags);
            }
            return match self.connect_like(n, fd, s, &f, dest, scope, what) {
                Some(Reply::Continue) => self.fastopen_self(n, s, dest, scope, iov, control, flags),
                other => other,
            };
        }
        let profile = self.profile(n.pid);
        if logic::is_stub_dns(dest, &profile) {
            return Some(self.stub_dns(n, fd, s, &f, dest, &profile, false));
        }
        let note = self.datagram_note(n, s, fd, what);
        let planned = self.datagram_step(&profile, &f, dest, scope, note);
        if let Step::Fail(_) = planned.0 {
            self.say_refusal(n, fd, what, dest, &f, logic::path_of(dest.ip()), planned.1);
        }
        let step = match self.datagram_options(n, fd, s, &mut f, dest, planned, &profile, what) {
            Ok(step) => step,
            Err(e) => return Some(Reply::Errno(e)),
        };
        self.say(
            LogLevel::Debug,
            format_args!("pid {}: {what} fd {fd} to {dest}: {step:?}", n.pid),
        );
        match step {
            Step::SendPktinfo { ifindex } => self.send_self(
                n,
                s,
                Some((dest, scope)),
                iov,
                control,
                flags,
                Some(ifindex),
            ),
            Step::SendPktinfoRoute => match self.host.route_oif(dest.ip().to_canonical()) {
                Some(i) => self.send_self(n, s, Some((dest, scope)), iov, control, flags, Some(i)),
                None => Some(Reply::Errno(logic::ENETUNREACH)),
            },
            step => {
                let reply = self.apply(n, fd, s, dest, step, what);
                if reply != Reply::Continue {
                    return Some(reply);
                }
                if let Step::Bind { .. } = step {
                    // For a steered destination (the only Bind of a datagram).
                    self.remember(s, |k| k.shim_bound = true);
                }
                // Never CONTINUE: the kernel would read the program's memory and fd
                // again. Another thread could have put a steered destination in place
                // of an exempt one (out by the default route from a socket nothing
                // steers), a PKTINFO with a source in the control data (an IPv6 source
                // makes a unicast interface a mere preference), or `dup2`ed a fresh,
                // unsteered socket onto the fd (the datagram out by the main route;
                // supervise_review, `sendswap`). The supervisor sends what it read, on the socket it
                // steered.
                self.send_self(n, s, Some((dest, scope)), iov, control, flags, None)
            }
        }
    }

    /// With a unicast interface set for `path`, the multicast interface of that path
    /// too (unless the program chose one): the kernel reads the destination again
    /// after a CONTINUE, and a group put there by another thread would otherwise
    /// leave by the routing table's link (the unicast interface is not read for a
    /// multicast destination). Groups the policy steers elsewhere are sent with a
    /// PKTINFO, which wins over it.
    fn multicast_too(&mut self, s: &OwnedFd, path: UcPath, index: u32) -> Result<(), i32> {
        let Some(c) = sys::cookie(s) else {
            return Err(libc::EINVAL);
        };
        if self
            .socks
            .get(&c)
            .is_some_and(|k| k.app_mcast_if || k.stream)
        {
            return Ok(());
        }
        let r = match path {
            UcPath::V6 => {
                sys::setsockopt_int(s, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF, index as i32)
                    .map_err(|e| e.raw_os_error().unwrap_or(libc::EINVAL))
            }
            UcPath::V4 => {
                let mut m = [0u8; 12];
                m[8..12].copy_from_slice(&(index as i32).to_ne_bytes());
                sys::setsockopt_bytes(s, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, Some(&m), 0)
            }
        };
        if r.is_ok() {
            self.remember(s, |k| k.shim_mcast_if = true);
        }
        r
    }

    /// The facts of a socket whose datagram carries its own source `ip` (an IPv6
    /// PKTINFO's address): as if the socket were bound to it (socket-core's
    /// `SRC_ADDR`: device-bound for a steered destination, refused when the source
    /// is loopback's or another interface's). Its unicast interfaces are left out:
    /// with a source the kernel does not hold the datagram to them.
    fn with_source(&mut self, f: &mut Facts, ip: IpAddr) {
        let ip = ip.to_canonical();
        if f.stream || f.bound != 0 {
            return;
        }
        f.local = Some(ip);
        f.src_addr = true;
        f.local_owner = self
            .net()
            .sources
            .iter()
            .find(|(_, a)| *a == ip)
            .map(|(i, _)| *i);
        f.uc6 = 0;
        f.app_uc6 = false;
    }

    /// The step for one datagram, its verdict, and the options it sets first when
    /// the socket has none yet ([`logic::takes_options`]); `note`: write its decision
    /// to the events file.
    fn datagram_step(
        &mut self,
        profile: &Profile,
        f: &Facts,
        dest: SocketAddr,
        scope: u32,
        note: Option<Note>,
    ) -> (Step, Verdict, Option<Opts>) {
        let f = &Facts {
            keep_foreign: profile.foreign_bind == config_schema::ForeignBind::Keep,
            ..*f
        };
        let fl = logic::flow(f, Op::Send, dest, scope);
        let noted = note.is_some();
        let (v, _, opts) = self.decide(profile, &fl, note);
        let step = logic::on_datagram(f, dest.ip(), v);
        if noted {
            self.acted(step != Step::Continue);
        }
        let opts = opts.filter(|_| !f.opts && logic::takes_options(step));
        (step, v, opts)
    }

    /// Sets a datagram's options (`o`) before it is sent, and plans it again if that
    /// bound the socket to a source address (socket-core's `SRC_ADDR`: a device
    /// binding, not a PKTINFO, steers it then).
    #[allow(clippy::too_many_arguments)]
    fn datagram_options(
        &mut self,
        n: &Notif,
        fd: i32,
        s: &OwnedFd,
        f: &mut Facts,
        dest: SocketAddr,
        (step, v, o): (Step, Verdict, Option<Opts>),
        profile: &Profile,
        what: &str,
    ) -> Result<Step, i32> {
        let Some(o) = o else { return Ok(step) };
        let bound = self.set_options(n, fd, s, f, dest, &o, profile, true, what)?;
        f.opts = true;
        if !bound {
            return Ok(step);
        }
        f.src_addr = true;
        Ok(logic::on_datagram(f, dest.ip(), v))
    }

    /// A datagram's [`Note`] when events are written (its socket's cookie read).
    fn datagram_note(&self, n: &Notif, s: &OwnedFd, fd: i32, call: &'static str) -> Option<Note> {
        self.events.as_ref()?;
        Some(Note {
            tid: n.pid,
            call,
            fd,
            bound: 0,
            flow: Some(sys::cookie(s).unwrap_or(0)),
        })
    }

    /// Decides flow `fl` with config-schema's `decide` (the preload's decision) and
    /// maps it to socket-core's verdict; with events on and a `note`, keeps the
    /// decision's line until the call is answered ([`Self::flush_events`]).
    /// The third part: the decision's options ([`logic::applied`]), if it has any.
    fn decide(
        &mut self,
        profile: &Profile,
        fl: &Flow,
        note: Option<Note>,
    ) -> (Verdict, String, Option<Opts>) {
        let on = self.events.is_some();
        let net = self.net();
        let d = config_schema::decide(profile, net, fl);
        let (v, why) = logic::verdict_of(&d, net, fl);
        let opts = logic::applied(profile, net, &d);
        if let (true, Some(nt)) = (on, note) {
            let dest = SocketAddr::new(fl.dest, fl.port);
            let fields = if logic::program_bound(nt.bound, &d) {
                logic::program_bound_fields()
            } else {
                config_schema::events::fields(&d)
            };
            let body = events::body(nt.call, nt.fd, fl.proto, dest, &fields);
            self.pending.push(Pending {
                tid: nt.tid,
                block: matches!(d, config_schema::Decision::Block(_)),
                flow: nt.flow.map(|cookie| flow_key(cookie, &body)),
                body,
                acted: false,
            });
        }
        (v, why, opts)
    }

    /// Keeps a line with these fields (a decision the supervisor did not take with
    /// `decide`: the program's own binding, the DNS stub).
    #[allow(clippy::too_many_arguments)]
    fn note_fields(
        &mut self,
        tid: u32,
        call: &str,
        fd: i32,
        proto: Proto,
        dest: SocketAddr,
        fields: &config_schema::events::Fields<'_>,
    ) -> Option<&mut Pending> {
        self.events.as_ref()?;
        self.pending.push(Pending {
            tid,
            body: events::body(call, fd, proto, dest, fields),
            block: fields.decision == "block",
            acted: true,
            flow: None,
        });
        self.pending.last_mut()
    }

    /// Marks the decisions kept for this call as acted upon (or not).
    fn acted(&mut self, yes: bool) {
        for p in &mut self.pending {
            p.acted |= yes;
        }
    }

    /// Writes the lines kept for the call just answered: not for a call whose task
    /// left it (dropped), once per datagram flow, and — in a process the preload
    /// runs in — only when the supervisor acted (otherwise the preload decided that
    /// call and wrote its line). A failed call that was not a block gets its errno.
    fn flush_events(&mut self, reply: &Handled) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let Some(reply) = reply else { return };
        for p in pending {
            if let Some(key) = p.flow
                && !p.block
            {
                if self.seen.len() >= MAX_SEEN {
                    self.seen.clear();
                }
                if !self.seen.insert(key) {
                    continue;
                }
            }
            let pid = sys::tgid_of(p.tid).unwrap_or(p.tid);
            if !p.acted && sys::preloaded(pid) {
                continue;
            }
            let errno = match reply {
                Reply::Errno(e) if !p.block && p.flow.is_none() => Some(events::errno_name(*e)),
                _ => None,
            };
            let (secs, us) = sys::realtime_us();
            let line = events::line(secs, us, pid, &sys::program_of(pid), &p.body, errno);
            if let Some(ev) = self.events.as_mut() {
                ev.write(&line);
            }
        }
    }

    /// A TCP Fast Open send (an implicit connect), steered, made by the supervisor on
    /// the duplicate with the address it read: a CONTINUE would let the kernel read
    /// the fd and the address again (a rewrite of an exempt address into a steered
    /// one, a `dup2` after the check). A blocking one waits in a worker thread (none
    /// free: `EAGAIN`, nothing sent), as a blocking connect does.
    #[allow(clippy::too_many_arguments)]
    fn fastopen_self(
        &mut self,
        n: &Notif,
        s: &OwnedFd,
        dest: SocketAddr,
        scope: u32,
        iov: &[(u64, u64)],
        control: &[u8],
        flags: i32,
    ) -> Handled {
        // A stream: a long write is taken in part (a short count), not refused.
        let data = match self.read_checked(n, iov, true) {
            Ok(d) => d,
            Err(h) => return h,
        };
        let name = addr::encode(dest, scope);
        let cmsg = control.to_vec();
        let tid = n.pid;
        // MSG_NOSIGNAL: an EPIPE's signal is the program's (`pipe_signal`), not ours.
        // The program's `flags` stay for `pipe_signal` (review_1203c: a shadowed
        // `flags` with MSG_NOSIGNAL lost the SIGPIPE).
        let ours = flags | libc::MSG_NOSIGNAL;
        let answer = move |r: Result<usize, i32>| {
            let r = match r {
                Ok(sent) => Reply::Value(sent as i64),
                Err(e) => Reply::Errno(e),
            };
            pipe_signal(tid, flags, r)
        };
        self.flush_events(&Some(Reply::Continue));
        if flags & libc::MSG_DONTWAIT != 0 || sys::is_nonblocking(s) {
            return Some(answer(sys::sendmsg(s, &name, &data, &cmsg, ours)));
        }
        let Ok(own) = s.try_clone() else {
            return Some(Reply::Errno(libc::EAGAIN));
        };
        // In three steps, each kept across a hand-over: the SYN, without waiting (the
        // count of the data it took: handed over after it, the same call again
        // would send that data twice, review_horev), the handshake (a connect made
        // again waits for it), then the rest as a plain send (`MSG_FASTOPEN` on a
        // connected socket is `EISCONN`).
        let (mut step, mut went) = (Tfo::Syn, 0);
        let (mut clock, mut begun) = (Clock::default(), true);
        let job = move |intr: &interrupt::Intr| {
            clock.start(&own);
            loop {
                if intr.handed_over() {
                    return None;
                }
                step = match step {
                    Tfo::Syn => {
                        match sys::sendmsg(&own, &name, &data, &cmsg, ours | libc::MSG_DONTWAIT) {
                            Ok(k) => {
                                went = k;
                                Tfo::Handshake
                            }
                            Err(libc::EINPROGRESS | libc::EAGAIN) => Tfo::Handshake,
                            Err(e) => return Some(answer(Err(e))),
                        }
                    }
                    Tfo::Handshake if sys::is_connected(&own) => {
                        clock.restart(&own);
                        Tfo::Data
                    }
                    Tfo::Handshake => match connect_waiting(&own, &name, intr, &clock, &mut begun)?
                    {
                        Reply::Value(_) | Reply::Errno(libc::EISCONN) => {
                            clock.restart(&own);
                            Tfo::Data
                        }
                        // Its time-out: the SYN's data, if it took some.
                        Reply::Errno(libc::EINPROGRESS) if went > 0 => {
                            return Some(answer(Ok(went)));
                        }
                        Reply::Errno(e) => return Some(answer(Err(e))),
                        Reply::Continue => return Some(answer(Err(libc::EIO))),
                    },
                    Tfo::Data if went >= data.len() => return Some(answer(Ok(went))),
                    Tfo::Data => {
                        let f = ours & !libc::MSG_FASTOPEN;
                        return match send_waiting(&own, &[], &data[went..], &cmsg, f, intr, &clock)
                        {
                            Waited::Paused(k) => {
                                went += k;
                                None
                            }
                            Waited::Done(Ok(k)) => Some(answer(Ok(went + k))),
                            Waited::Done(Err(_)) if went > 0 => Some(answer(Ok(went))),
                            Waited::Done(Err(e)) => Some(answer(Err(e))),
                        };
                    }
                };
            }
        };
        if self.spawn_worker(n, job) {
            return None;
        }
        self.say(
            LogLevel::Warn,
            format_args!(
                "pid {}: {MAX_WORKERS} blocking calls in progress; this Fast Open send fails (EAGAIN)",
                n.pid
            ),
        );
        Some(Reply::Errno(libc::EAGAIN))
    }

    /// Sends the datagram from the supervisor with a PKTINFO naming `ifindex` (the
    /// program's PKTINFO of interface 0 patched, or ours added after its control
    /// messages: fastpath's `build_control`, as the preload builds it), or with the
    /// program's control messages as they are (`None`), and returns the byte count.
    /// `to`: the destination and its scope id, `None` for a message without one (the
    /// connected peer's; `ifindex` is then `None` too).
    #[allow(clippy::too_many_arguments)]
    fn send_self(
        &mut self,
        n: &Notif,
        s: &OwnedFd,
        to: Option<(SocketAddr, u32)>,
        iov: &[(u64, u64)],
        control: &[u8],
        flags: i32,
        ifindex: Option<u32>,
    ) -> Handled {
        let data = match self.read_checked(n, iov, false) {
            Ok(d) => d,
            Err(h) => return h,
        };
        let v6_path = to.is_some_and(|(d, _)| logic::path_of(d.ip()) == UcPath::V6);
        let cmsg = match ifindex {
            Some(i) => match with_pktinfo(control, v6_path, i) {
                Ok(c) => c,
                Err(e) => return Some(Reply::Errno(e)),
            },
            None => control.to_vec(),
        };
        let name = to.map_or_else(Vec::new, |(d, sc)| addr::encode(d, sc));
        self.send_read(n, s, name, data, cmsg, flags)
    }

    /// Sends `data` with `name` (encoded, or as the program gave it) and `cmsg` from
    /// the supervisor's duplicate `s`, and answers with the kernel's result: at once,
    /// or, for a blocking socket whose send buffer is full, from a worker thread.
    fn send_read(
        &mut self,
        n: &Notif,
        s: &OwnedFd,
        name: Vec<u8>,
        data: Vec<u8>,
        cmsg: Vec<u8>,
        flags: i32,
    ) -> Handled {
        let sent = |flags| match sys::sendmsg(s, &name, &data, &cmsg, flags | libc::MSG_NOSIGNAL) {
            Ok(sent) => Reply::Value(sent as i64),
            Err(e) => Reply::Errno(e),
        };
        let reply = sent(flags | libc::MSG_DONTWAIT);
        // What went at once: everything (a datagram goes whole or not at all), or a
        // stream's first part.
        let already = match reply {
            Reply::Value(k) if (k as usize) < data.len() => k as usize,
            Reply::Errno(libc::EAGAIN) => 0,
            _ => return Some(pipe_signal(n.pid, flags, reply)),
        };
        if flags & libc::MSG_DONTWAIT != 0 || sys::is_nonblocking(s) {
            return Some(reply);
        }
        // A blocking socket whose send buffer is full: the program's call would wait
        // (a stream's until all of it is sent), and so does a worker's (the
        // notification loop must not).
        let Ok(own) = s.try_clone() else {
            return Some(reply);
        };
        let tid = n.pid;
        // Handed over: what went so far is kept, the copy sends the rest.
        let mut already = already;
        let mut clock = Clock::default();
        let job = move |intr: &interrupt::Intr| {
            clock.start(&own);
            let rest = &data[already..];
            let f = flags | libc::MSG_NOSIGNAL;
            let r = match send_waiting(&own, &name, rest, &cmsg, f, intr, &clock) {
                Waited::Paused(k) => {
                    already += k;
                    return None;
                }
                Waited::Done(Ok(sent)) => Reply::Value((already + sent) as i64),
                Waited::Done(Err(_)) if already > 0 => Reply::Value(already as i64),
                Waited::Done(Err(e)) => Reply::Errno(e),
            };
            Some(pipe_signal(tid, flags, r))
        };
        // The decision's events line, as a sent datagram's.
        self.flush_events(&Some(Reply::Value(0)));
        match self.spawn_worker(n, job) {
            true => None,
            false => Some(reply),
        }
    }

    /// The data of a send the supervisor makes, read from the program (`stream`: at
    /// most [`MAX_DATAGRAM`] bytes of a longer write, a short count; else a datagram,
    /// `EMSGSIZE` beyond), with the notification still valid: `Err` is the answer.
    fn read_checked(
        &self,
        n: &Notif,
        iov: &[(u64, u64)],
        stream: bool,
    ) -> Result<Vec<u8>, Handled> {
        let data = if stream {
            read_data_upto(n, iov, MAX_DATAGRAM)
        } else {
            read_data(n, iov)
        };
        let data = data.map_err(|e| Some(Reply::Errno(e)))?;
        if !sys::id_valid(self.listener, n.id) {
            return Err(None);
        }
        Ok(data)
    }

    /// A send whose name is no IP destination, on an IP socket: made on the duplicate
    /// with the name as read, so that the program gets the kernel's answer
    /// (`EAFNOSUPPORT`, `EINVAL`, …), or, on a connected stream, which ignores the
    /// name, its data sent ([`Self::stream_self`]). Not continued, for the reasons of
    /// [`Self::datagram`]: the kernel would read the name and the fd again.
    fn send_raw(
        &mut self,
        n: &Notif,
        s: &OwnedFd,
        raw: Vec<u8>,
        iov: &[(u64, u64)],
        control: &[u8],
        flags: i32,
    ) -> Handled {
        if self.facts(s).stream {
            return self.stream_self(n, s, raw, iov, control, flags);
        }
        if raw.is_empty() {
            // A `sendto` name of length 0 (a `sendmsg` one is no name and does not come
            // here): the kernel's datagram protocols refuse a name shorter than theirs,
            // where an empty name in the supervisor's `sendmsg` would mean none.
            return Some(Reply::Errno(libc::EINVAL));
        }
        let data = match self.read_checked(n, iov, false) {
            Ok(d) => d,
            Err(h) => return h,
        };
        self.send_read(n, s, raw, data, control.to_vec(), flags)
    }

    /// A send on a stream socket the supervisor must not CONTINUE (the kernel would
    /// send on whatever the program's fd names by then: another thread's `dup2` of an
    /// unsteered datagram socket onto it, with the address of this call): made on the
    /// duplicate with what was read, `name` as the program gave it (a connected stream
    /// ignores it). At most [`MAX_DATAGRAM`] bytes are taken, a short count being a
    /// stream's answer to a long write; a blocking socket's send waits in a worker.
    fn stream_self(
        &mut self,
        n: &Notif,
        s: &OwnedFd,
        name: Vec<u8>,
        iov: &[(u64, u64)],
        control: &[u8],
        flags: i32,
    ) -> Handled {
        let data = match self.read_checked(n, iov, true) {
            Ok(d) => d,
            Err(h) => return h,
        };
        self.send_read(n, s, name, data, control.to_vec(), flags)
    }

    fn read_msghdr(&mut self, n: &Notif, ptr: u64) -> Result<addr::MsgHdr, Handled> {
        let mut b = [0u8; MSGHDR_LEN];
        if let Err(e) = sys::read_mem(n.pid, ptr, &mut b) {
            return Err(Some(Reply::Errno(self.mem_errno(n, e))));
        }
        Ok(addr::parse_msghdr(&b))
    }

    fn sendmsg(&mut self, n: &Notif, fd: i32, ptr: u64, flags: i32) -> Handled {
        let m = match self.read_msghdr(n, ptr) {
            Ok(m) => m,
            Err(h) => return h,
        };
        if m.name == 0 || m.namelen == 0 {
            return match self.dup(n, fd) {
                Ok(s) => self.send_unnamed(n, s, Payload::Msg(&m), flags),
                Err(h) => h,
            };
        }
        let (s, dest, scope) = match self.send_dest(n, fd, m.name, m.namelen) {
            Ok(SendName::To(s, dest, scope)) => (s, dest, scope),
            Ok(SendName::None(s)) => return self.send_unnamed(n, s, Payload::Msg(&m), flags),
            Ok(SendName::Raw(s, raw)) => {
                return match read_iov_control(n, &m) {
                    Ok((iov, control)) => self.send_raw(n, &s, raw, &iov, &control, flags),
                    Err(e) => Some(Reply::Errno(e)),
                };
            }
            Ok(SendName::Other) => return Some(Reply::Continue),
            Err(h) => return h,
        };
        let (iov, control) = match read_iov_control(n, &m) {
            Ok(x) => x,
            Err(e) => return Some(Reply::Errno(e)),
        };
        // The kernel's rule for the datagram's path (fastpath's `scan_control`, the
        // preload's): a PKTINFO of interface 0, or of the level the path does not
        // read, chooses nothing and the datagram is steered.
        let v6_path = logic::path_of(dest.ip()) == UcPath::V6;
        let src = match pktinfo_source(&control, v6_path) {
            Ok(src) => src,
            Err(e) => return Some(Reply::Errno(e)),
        };
        match socket_core::control::scan_control(&control, v6_path) {
            Err(e) => Some(Reply::Errno(e)),
            Ok(_) if src.is_some() => {
                // A datagram carrying its own IPv6 source: the kernel takes any
                // interface index (the PKTINFO's, IPV6_UNICAST_IF) as a preference
                // only and sends it by the main route's link. Treated like a socket
                // bound to that source: device-bound to the chosen link, or refused.
                self.datagram(
                    n, fd, &s, dest, scope, &iov, &control, flags, "sendmsg", src,
                )
            }
            Ok(sc) if sc.chosen => {
                // The program chose the interface of this datagram itself. The
                // supervisor sends what it read (the kernel reading the program's
                // memory again could find the choice withdrawn by another thread).
                self.send_self(n, &s, Some((dest, scope)), &iov, &control, flags, None)
            }
            Ok(_) => self.datagram(
                n, fd, &s, dest, scope, &iov, &control, flags, "sendmsg", None,
            ),
        }
    }

    /// A `sendmsg` without a destination (a connected socket's, or the kernel's
    /// `EDESTADDRREQ`). The `msghdr` is the program's memory: another thread could
    /// give it a name or control data after the check, and a CONTINUE would send
    /// that. Continued only for what is not a datagram socket and on a device binding
    /// that is not the supervisor's (the program's own choice); otherwise the
    /// supervisor sends what it read, a source in its control data checked against
    /// the socket's interface. Cost on a steered connected socket: `pidfd_getfd`, the
    /// socket's facts, one `process_vm_readv` of the data, the `sendmsg`.
    fn send_unnamed(&mut self, n: &Notif, s: OwnedFd, p: Payload<'_>, flags: i32) -> Handled {
        let f = self.facts(&s);
        if f.family.is_none() {
            return Some(Reply::Continue);
        }
        if f.stream {
            // A stream ignores a name once connected, and takes none before without
            // MSG_FASTOPEN (a register, not memory); a device binding holds it to its
            // link. A Fast Open send is made on the duplicate: the kernel's answer,
            // with what was read.
            if f.bound != 0 || flags & libc::MSG_FASTOPEN == 0 || sys::is_connected(&s) {
                return Some(Reply::Continue);
            }
        } else if f.bound != 0 && !f.shim_bound {
            // The program's own device binding: its choice, whatever it sends.
            return Some(Reply::Continue);
        }
        // Not continued on the supervisor's device binding or on unicast interfaces:
        // another thread could give the message control data with a source after the
        // check (another link's; on a unicast interface, one that makes it a
        // preference only). Read once, checked, sent as read; too long: ENOBUFS.
        let (iov, control) = match p {
            Payload::Msg(m) => match read_iov_control(n, m) {
                Ok(x) => x,
                Err(e) => return Some(Reply::Errno(e)),
            },
            Payload::Buf(iov) => (iov.to_vec(), Vec::new()),
        };
        if f.bound != 0 {
            if let Err(e) = self.bound_source(n, &s, &f, &control) {
                return Some(Reply::Errno(e));
            }
        } else if !f.stream && f.family == Some(AddrFamily::V6) && f.uc6 != 0 {
            // A datagram with its own IPv6 source on a socket steered by its unicast
            // interface: bound to that device if the source is the interface's,
            // refused otherwise (it would leave by the main route's link).
            match self.connected_source(n, &s, &f, &control, f.uc6) {
                Err(e) => return Some(Reply::Errno(e)),
                Ok(false) => {}
                Ok(true) => {
                    if let Err(e) = self.bind_device(&s, f.uc6) {
                        return Some(Reply::Errno(e));
                    }
                    if !f.app_uc6 {
                        self.remember(&s, |k| k.shim_bound = true);
                    }
                }
            }
        }
        self.send_self(n, &s, None, &iov, &control, flags, None)
    }

    /// The source a connected datagram's control data gives it, on a socket the
    /// supervisor bound to the interface its peer was steered by (see
    /// [`Self::connected_source`]). Not the supervisor's binding: the kernel's to
    /// answer.
    fn bound_source(
        &mut self,
        n: &Notif,
        s: &OwnedFd,
        f: &Facts,
        control: &[u8],
    ) -> Result<(), i32> {
        if !f.shim_bound || control.is_empty() {
            return Ok(());
        }
        self.connected_source(n, s, f, control, f.bound as u32)
            .map(|_| ())
    }

    /// A datagram without a name whose control data may give it a source, on a socket
    /// steered to `index` (bound to it, or its unicast interface): socket-core's
    /// `datagram_source`, the preload's rule — another link's source `EADDRNOTAVAIL`, a
    /// loopback one `EINVAL`, a PKTINFO naming another interface the program's choice.
    /// `Ok(true)`: the socket must be bound to the device first (the IPv6 path: with a
    /// source, the kernel takes the unicast interface only as a preference). Without a
    /// peer the path is IPv6 for an AF_INET6 socket (the kernel answers EDESTADDRREQ).
    fn connected_source(
        &mut self,
        n: &Notif,
        s: &OwnedFd,
        f: &Facts,
        control: &[u8],
        index: u32,
    ) -> Result<bool, i32> {
        let path = match sys::getpeername(s).map(|b| addr::parse(&b)) {
            Ok(Dest::Ip { addr: peer, .. }) => logic::path_of(peer.ip()),
            _ if f.family == Some(AddrFamily::V6) => UcPath::V6,
            _ => UcPath::V4,
        };
        let sc = socket_core::control::scan_control(control, path == UcPath::V6)?;
        let keep = self.profile(n.pid).foreign_bind == config_schema::ForeignBind::Keep;
        let net = self.net();
        let owned = |i, ip| net.sources.iter().any(|&(j, a)| j == i && a == ip);
        let chosen = sc.chosen.then_some(sc.index);
        // Whether this datagram's own source asks for the device: planned on the
        // socket without a source of its own.
        let mut sock = logic::sock(f, path);
        sock.flags &= !socket_core::SRC_ADDR;
        let v = Verdict::Steer { index };
        let planned = socket_core::datagram_source(sock, path, v, sc.source, chosen, owned, keep)?;
        Ok(f.bound == 0 && planned.has(socket_core::SRC_ADDR))
    }

    /// Sends a `sendmmsg` batch from the supervisor, each message steered on its own;
    /// the count sent (`msg_len` of each written back), or the first error.
    #[allow(clippy::too_many_arguments)]
    fn sendmmsg_self(
        &mut self,
        n: &Notif,
        fd: i32,
        s: &OwnedFd,
        ptr: u64,
        raw: &[u8],
        flags: i32,
        profile: &Profile,
        mut f: Facts,
    ) -> Handled {
        // Every message read, decided and steered first (the socket's options for the
        // first steered one set then), up to the first that fails; then sent in order.
        let mut msgs = Vec::new();
        let mut failed = None;
        for (i, chunk) in raw.chunks(MMSGHDR_LEN).enumerate() {
            let m = addr::parse_msghdr(chunk[..MSGHDR_LEN].try_into().unwrap());
            match self.send_one(n, fd, s, &m, profile, &mut f) {
                Ok(one) => msgs.push((ptr + (i * MMSGHDR_LEN + MSGHDR_LEN) as u64, one)),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let blocking = flags & libc::MSG_DONTWAIT == 0 && !sys::is_nonblocking(s);
        let pid = n.pid;
        // Sends `msgs` in order (waiting for room in a worker, `wait`, until the
        // watcher interrupts it): how many went, and the error that stopped them, if
        // one did.
        // From byte `off` of the first message (a stream's message handed over in
        // part, [`Waited::Paused`]).
        let send_from = move |s: &OwnedFd,
                              msgs: &[(u64, OneMsg)],
                              off: usize,
                              wait: Option<(&interrupt::Intr, &Clock)>| {
            let mut sent = 0;
            for (i, (at, one)) in msgs.iter().enumerate() {
                let off = if i == 0 { off } else { 0 };
                let (data, control) = (&one.data[off..], &one.control);
                let r = match wait {
                    Some((intr, clock)) => {
                        let f = flags | libc::MSG_NOSIGNAL;
                        match send_waiting(s, &one.name, data, control, f, intr, clock) {
                            Waited::Paused(k) => return (sent, Some(Stop::Paused(off + k))),
                            Waited::Done(r) => r,
                        }
                    }
                    None => {
                        let f = flags | libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
                        sys::sendmsg(s, &one.name, data, control, f)
                    }
                }
                .and_then(|len| {
                    let len = (off + len) as u32;
                    sys::write_mem(pid, *at, &len.to_ne_bytes()).map_err(|_| libc::EFAULT)
                });
                if let Err(e) = r {
                    return (sent, Some(Stop::Errno(e)));
                }
                sent += 1;
            }
            (sent, None)
        };
        // The kernel's answer: the count, or the first error when nothing went.
        let answer = |sent: usize, e: Option<i32>| match (sent, e) {
            (0, Some(e)) => Reply::Errno(e),
            (k, _) => Reply::Value(k as i64),
        };
        let (sent, stop) = send_from(s, &msgs, 0, None);
        let stop = match stop {
            None => return Some(answer(sent, failed)),
            Some(Stop::Errno(libc::EAGAIN)) if blocking => libc::EAGAIN,
            Some(Stop::Errno(e)) => return Some(answer(sent, Some(e))),
            Some(Stop::Paused(_)) => unreachable!("only a worker's send is handed over"),
        };
        // A blocking socket whose buffer filled: the program's call would wait for room
        // for each message left, so a worker does and answers with the count
        // (review_1203c: EAGAIN, then short counts, were returned). Handed over: the
        // messages that went, and the part of the next, are kept.
        let rest: Vec<(u64, OneMsg)> = msgs.into_iter().skip(sent).collect();
        let Ok(own) = s.try_clone() else {
            return Some(answer(sent, Some(stop)));
        };
        let (mut done, mut off, mut clock) = (0, 0, Clock::default());
        let job = move |intr: &interrupt::Intr| {
            clock.start(&own);
            let (k, stop) = send_from(&own, &rest[done..], off, Some((intr, &clock)));
            let e = match stop {
                Some(Stop::Paused(part)) => {
                    (done, off) = (done + k, part);
                    return None;
                }
                Some(Stop::Errno(e)) => Some(e),
                None => None,
            };
            Some(answer(sent + done + k, e.or(failed)))
        };
        // The decision's events lines, as for sent datagrams.
        self.flush_events(&Some(Reply::Value(0)));
        if self.spawn_worker(n, job) {
            return None;
        }
        Some(answer(sent, Some(stop)))
    }

    /// One message of a batch: read, decided, its options set if it is the socket's
    /// first steered one, steered (unicast interface, PKTINFO, device); the caller
    /// sends it.
    #[allow(clippy::too_many_arguments)]
    fn send_one(
        &mut self,
        n: &Notif,
        fd: i32,
        s: &OwnedFd,
        m: &addr::MsgHdr,
        profile: &Profile,
        f: &mut Facts,
    ) -> Result<OneMsg, i32> {
        let mut name = Vec::new();
        if m.name != 0 && m.namelen != 0 {
            name = vec![0u8; (m.namelen as usize).min(MAX_ADDR)];
            sys::read_mem(n.pid, m.name, &mut name).map_err(|_| libc::EFAULT)?;
        }
        let iovlen = (m.iovlen as usize).min(1024);
        let mut raw = vec![0u8; iovlen * 16];
        sys::read_mem(n.pid, m.iov, &mut raw).map_err(|_| libc::EFAULT)?;
        let iov: Vec<(u64, u64)> = raw.chunks(16).map(addr::parse_iovec).collect();
        let data = read_data(n, &iov)?;
        let clen = m.controllen as usize;
        if clen > MAX_CONTROL {
            return Err(libc::ENOBUFS);
        }
        let mut control = vec![0u8; clen];
        if m.control != 0 {
            sys::read_mem(n.pid, m.control, &mut control).map_err(|_| libc::EFAULT)?;
        }
        let family = match f.family {
            Some(AddrFamily::V4) => libc::AF_INET,
            _ => libc::AF_INET6,
        };
        let dest = match addr::parse_send(&name, family) {
            Dest::Ip { addr, scope_id } => Some((addr, scope_id)),
            _ => None,
        };
        let v6 = dest.is_some_and(|(a, _)| logic::path_of(a.ip()) == UcPath::V6);
        // A message carrying its own IPv6 source: as in `sendmsg`, treated like a
        // socket bound to it (device-bound or refused), its own index no choice.
        let src = match dest {
            Some(_) => pktinfo_source(&control, v6)?,
            None => {
                // A connected socket's: its source checked against its binding.
                self.bound_source(n, s, f, &control)?;
                None
            }
        };
        let mut g = *f;
        if let Some(ip) = src {
            self.with_source(&mut g, ip);
        }
        if let Some((addr, scope_id)) = dest
            && (src.is_some() || !socket_core::control::scan_control(&control, v6)?.chosen)
        {
            let v6_path = v6;
            let planned = self.datagram_step(profile, &g, addr, scope_id, None);
            let step =
                self.datagram_options(n, fd, s, &mut g, addr, planned, profile, "sendmmsg")?;
            match step {
                Step::Continue => {}
                Step::Bind { index } => {
                    // A socket with a source address: bound to the device (later
                    // messages for another interface are refused).
                    self.bind_device(s, index)?;
                    g.bound = index as i32;
                    g.shim_bound = true;
                    self.remember(s, |k| k.shim_bound = true);
                }
                Step::Fail(e) => return Err(e),
                Step::Unicast { path, index } => {
                    let (level, opt) = match path {
                        UcPath::V4 => (libc::IPPROTO_IP, libc::IP_UNICAST_IF),
                        UcPath::V6 => (libc::IPPROTO_IPV6, libc::IPV6_UNICAST_IF),
                    };
                    sys::setsockopt_int(s, level, opt, index.to_be() as i32)
                        .map_err(|e| e.raw_os_error().unwrap_or(libc::EINVAL))?;
                    self.multicast_too(s, path, index)?;
                    match path {
                        UcPath::V4 => g.uc4 = index,
                        UcPath::V6 => g.uc6 = index,
                    }
                }
                Step::SendPktinfo { ifindex } => {
                    control = with_pktinfo(&control, v6_path, ifindex)?
                }
                Step::SendPktinfoRoute => match self.host.route_oif(addr.ip().to_canonical()) {
                    Some(i) => control = with_pktinfo(&control, v6_path, i)?,
                    None => return Err(logic::ENETUNREACH),
                },
                _ => return Err(libc::EINVAL),
            }
            if src.is_none() {
                *f = g;
            } else {
                // What the socket now carries; not the source, this message's only.
                f.bound = g.bound;
                f.shim_bound = g.shim_bound;
                f.opts = g.opts;
            }
        }
        Ok(OneMsg {
            name,
            data,
            control,
        })
    }

    fn sendmmsg(&mut self, n: &Notif, fd: i32, ptr: u64, vlen: u32, flags: i32) -> Handled {
        let vlen = (vlen as usize).min(1024);
        if vlen == 0 {
            return Some(Reply::Continue);
        }
        let mut raw = vec![0u8; vlen * MMSGHDR_LEN];
        if let Err(e) = sys::read_mem(n.pid, ptr, &mut raw) {
            return Some(Reply::Errno(self.mem_errno(n, e)));
        }
        let mut dests = Vec::new();
        // The message each destination is in.
        let mut at = Vec::new();
        let mut unspec = Vec::new();
        for (k, chunk) in raw.chunks(MMSGHDR_LEN).enumerate() {
            let m = addr::parse_msghdr(chunk[..MSGHDR_LEN].try_into().unwrap());
            if m.name == 0 || m.namelen == 0 {
                continue;
            }
            let name = match self.read_raw(n, m.name, m.namelen) {
                Ok(b) => b,
                Err(h) => return h,
            };
            match addr::parse(&name) {
                Dest::Ip { addr, scope_id } => {
                    dests.push((addr, scope_id));
                    at.push(k);
                }
                Dest::Unspec if name.len() >= addr::SIN_LEN => unspec.push((k, name)),
                _ => {}
            }
        }
        // Control data the kernel would read again after a CONTINUE: a PKTINFO with
        // an IPv6 source (put there by another thread after the check, too) makes any
        // interface index but a device binding a preference only.
        let with_control = raw
            .chunks(MMSGHDR_LEN)
            .any(|c| addr::parse_msghdr(c[..MSGHDR_LEN].try_into().unwrap()).controllen != 0);
        let mut early = None;
        if !unspec.is_empty() {
            // AF_UNSPEC destinations: IPv4 ones on an AF_INET socket (addr::parse_send).
            let s = match self.dup(n, fd) {
                Ok(s) => s,
                Err(h) => return h,
            };
            let family = sys::getsockopt_int(&s, libc::SOL_SOCKET, libc::SO_DOMAIN).unwrap_or(0);
            let mut all: Vec<(usize, SocketAddr, u32)> = at
                .iter()
                .zip(&dests)
                .map(|(k, (d, sc))| (*k, *d, *sc))
                .collect();
            for (k, name) in &unspec {
                if let Dest::Ip { addr, scope_id } = addr::parse_send(name, family) {
                    all.push((*k, addr, scope_id));
                }
            }
            all.sort_by_key(|e| e.0);
            at = all.iter().map(|e| e.0).collect();
            dests = all.iter().map(|e| (e.1, e.2)).collect();
            early = Some(s);
        }
        if dests.is_empty() {
            // No destination the supervisor steers: the batch continues only where
            // `send_unnamed` continues (not a datagram socket, the program's own
            // device binding), else it is sent by the supervisor as read.
            let s = match early {
                Some(s) => s,
                None => match self.dup(n, fd) {
                    Ok(s) => s,
                    Err(h) => return h,
                },
            };
            let f = self.facts(&s);
            if f.bound != 0 {
                // A device binding holds every message to its link; one whose control
                // data gives it a source on the supervisor's binding is checked
                // (`bound_source`), the batch then sent as read.
                if f.stream || !f.shim_bound {
                    return Some(Reply::Continue);
                }
                let profile = self.profile(n.pid);
                return self.sendmmsg_self(n, fd, &s, ptr, &raw, flags, &profile, f);
            }
            // Not continued on unicast interfaces alone: control data given after the
            // check could make them a preference (`send_unnamed`).
            if f.family.is_none() || f.stream {
                return Some(Reply::Continue);
            }
            let profile = self.profile(n.pid);
            return self.sendmmsg_self(n, fd, &s, ptr, &raw, flags, &profile, f);
        }
        let s = match early {
            Some(s) => s,
            None => match self.dup(n, fd) {
                Ok(s) => s,
                Err(h) => return h,
            },
        };
        let f = self.facts(&s);
        if f.family.is_none() {
            return Some(Reply::Continue);
        }
        if f.stream {
            let (d, sc) = dests[0];
            return self.connect_like(n, fd, &s, &f, d, sc, "sendmmsg");
        }
        let profile = self.profile(n.pid);
        if dests.iter().any(|(d, _)| logic::is_stub_dns(*d, &profile)) {
            return Some(self.stub_dns(n, fd, &s, &f, dests[0].0, &profile, false));
        }
        if with_control && f.bound == 0 {
            // A batch with control data on a socket no device binding holds: sent by
            // the supervisor message by message, each PKTINFO source read (`send_one`).
            return self.sendmmsg_self(n, fd, &s, ptr, &raw, flags, &profile, f);
        }
        // The batch's decisions: one refused fails it; the socket's first steered
        // message goes alone (below).
        let planned: Vec<(Step, Verdict, Option<Opts>)> = dests
            .iter()
            .map(|(d, sc)| {
                let note = self.datagram_note(n, &s, fd, "sendmmsg");
                self.datagram_step(&profile, &f, *d, *sc, note)
            })
            .collect();
        let steps: Vec<Step> = planned.iter().map(|p| p.0).collect();
        if let Some(Step::Fail(e)) = steps.iter().find(|s| matches!(s, Step::Fail(_))) {
            return Some(self.apply(n, fd, &s, dests[0].0, Step::Fail(*e), "sendmmsg"));
        }
        if let Some(i) = planned.iter().position(|p| p.2.is_some()) {
            // The socket's first steered message sets the policy's options (which may
            // bind it to a source): as the preload does, the batch is cut before a
            // later message that would, and such a first message goes alone. The
            // supervisor sends what goes (the program sends the rest again).
            let upto = i.max(1);
            let f = self.facts(&s);
            let end = at.get(upto).map_or(raw.len(), |k| k * MMSGHDR_LEN);
            return self.sendmmsg_self(n, fd, &s, ptr, &raw[..end], flags, &profile, f);
        }
        // Sent by the supervisor, message by message, each steered on its own (a
        // CONTINUE would have the kernel read the batch and the fd again: a rewritten
        // destination or a socket `dup2`ed onto the fd by another thread, as in
        // `datagram`). Options the first steered message sets (a unicast interface)
        // are set by `send_one` on the socket.
        self.sendmmsg_self(n, fd, &s, ptr, &raw, flags, &profile, f)
    }

    /// Listener confinement: a wildcard TCP listener (`listen`) or a UDP socket bound
    /// to a fixed port on the wildcard address (`bind`) is bound to the first usable
    /// interface of `via` unless `listen = "any"`.
    fn listen(&mut self, n: &Notif, fd: i32, bound_to: Option<SocketAddr>) -> Handled {
        let s = match self.dup(n, fd) {
            Ok(s) => s,
            Err(h) => return h,
        };
        let f = self.facts(&s);
        if f.family.is_none() {
            return Some(Reply::Continue);
        }
        let local = match bound_to {
            Some(a) => a,
            None => match sys::getsockname(&s).map(|b| addr::parse(&b)) {
                Ok(Dest::Ip { addr, .. }) => addr,
                _ => return Some(Reply::Continue),
            },
        };
        if !local.ip().is_unspecified() {
            return Some(Reply::Continue);
        }
        if f.bound != 0 {
            // The program's own device binding: its choice.
            let call = if bound_to.is_some() { "bind" } else { "listen" };
            self.note_fields(
                n.pid,
                call,
                fd,
                f.proto,
                local,
                &logic::program_bound_fields(),
            );
            return Some(Reply::Continue);
        }
        let profile = self.profile(n.pid);
        let fl = logic::flow(&f, Op::Listen, local, 0);
        let note = Note {
            tid: n.pid,
            call: if bound_to.is_some() { "bind" } else { "listen" },
            fd,
            bound: 0,
            flow: None,
        };
        let (v, why, _) = self.decide(&profile, &fl, Some(note));
        let step = logic::on_listen(profile.listen, v);
        self.acted(step != Step::Continue);
        self.say(
            LogLevel::Debug,
            format_args!("pid {}: listen fd {fd} on {local}: {why}", n.pid),
        );
        let reply = self.apply(n, fd, &s, local, step, "listen");
        // Bound to the device (`listen = "device"`, or a filter that could not be
        // attached): the accepted sockets inherit the hold.
        let bound = match step {
            Step::Bind { .. } => true,
            Step::Filter { .. } => {
                sys::getsockopt_int(&s, libc::SOL_SOCKET, libc::SO_BINDTOIFINDEX).unwrap_or(0) > 0
            }
            _ => false,
        };
        if bound && reply == Reply::Continue {
            self.hold_fin_wait2(n, fd, &s, f.proto, local, "listen");
        }
        Some(reply)
    }

    /// After a device binding for `peer` (a destination, a listener's wildcard
    /// address): the preload's `TCP_LINGER2` hold on an IPv6 TCP socket
    /// (`socket_core::holds_fin_wait2`: a time-wait socket's ACK of a late FIN would
    /// leave by the main table). Not made, the call goes on with a line saying so.
    fn hold_fin_wait2(
        &mut self,
        n: &Notif,
        fd: i32,
        s: &OwnedFd,
        proto: Proto,
        peer: SocketAddr,
        what: &str,
    ) {
        if !socket_core::holds_fin_wait2(proto, peer.ip()) {
            return;
        }
        let held = sys::getsockopt_int(s, libc::IPPROTO_TCP, libc::TCP_LINGER2).and_then(|now| {
            match socket_core::fin_wait2_hold(now) {
                Some(secs) => sys::setsockopt_int(s, libc::IPPROTO_TCP, libc::TCP_LINGER2, secs),
                None => Ok(()),
            }
        });
        if let Err(e) = held {
            self.say(
                LogLevel::Warn,
                format_args!(
                    "pid {}: {what} fd {fd} to {peer}: TCP_LINGER2 could not be set ({e}); if the peer closes after the program, the kernel's ACK of its FIN may leave by the main routing table",
                    n.pid
                ),
            );
        }
    }

    fn bind(&mut self, n: &Notif, fd: i32, ptr: u64, len: u32) -> Handled {
        let raw = match self.read_raw(n, ptr, len) {
            Ok(b) => b,
            Err(h) => return h,
        };
        let (local, scope) = match addr::parse(&raw) {
            Dest::Ip { addr, scope_id } => (addr, scope_id),
            _ => return Some(Reply::Continue),
        };
        if !local.ip().is_unspecified() {
            if len as usize > MAX_ADDR {
                return Some(Reply::Continue); // the kernel answers EINVAL
            }
            return self.bind_explicit(n, fd, &raw, local, scope);
        }
        if local.port() == 0 {
            return Some(Reply::Continue);
        }
        let s = match self.dup(n, fd) {
            Ok(s) => s,
            Err(h) => return h,
        };
        if sys::getsockopt_int(&s, libc::SOL_SOCKET, libc::SO_TYPE).ok() != Some(libc::SOCK_DGRAM) {
            return Some(Reply::Continue); // TCP is confined at listen
        }
        drop(s);
        self.listen(n, fd, Some(local))
    }

    /// A `bind` to an explicit address (`raw`, the program's `sockaddr`): another
    /// interface's address than the chosen one is rewritten to the chosen
    /// interface's (config-schema's `decide_bind`, socket-core's `bind`, as the
    /// preload decides it). The supervisor binds the duplicate (the same kernel
    /// socket) to the program's `sockaddr` with only the address replaced and answers
    /// with the result: the program's memory is never written.
    fn bind_explicit(
        &mut self,
        n: &Notif,
        fd: i32,
        raw: &[u8],
        local: SocketAddr,
        scope: u32,
    ) -> Handled {
        let s = match self.dup(n, fd) {
            Ok(s) => s,
            Err(h) => return h,
        };
        let f = self.facts(&s);
        if f.family.is_none() {
            return Some(Reply::Continue);
        }
        let profile = self.profile(n.pid);
        let ip = local.ip();
        let d = config_schema::decide_bind(&profile, self.net(), ip, scope);
        match (logic::on_bind(&f, ip, &d), d) {
            (BindStep::Rewrite(to), BindAddr::Rewrite { bind: b, .. }) => {
                let Some(bytes) = addr::with_ip(raw, to) else {
                    return Some(Reply::Continue);
                };
                let owner = self
                    .snap
                    .addrs
                    .iter()
                    .find(|(a, _)| *a == ip.to_canonical())
                    .map_or_else(
                        || "another interface".to_owned(),
                        |(_, i)| self.snap.name_of(*i),
                    );
                if !sys::id_valid(self.listener, n.id) {
                    return None;
                }
                let r = sys::bind(&s, &bytes);
                self.say(
                    LogLevel::Info,
                    format_args!(
                        "pid {}: bind fd {fd} {local}: an address of {owner}, rewritten to {to} of {}{}",
                        n.pid,
                        b.ifname,
                        match r {
                            Ok(()) => String::new(),
                            Err(e) => format!(" -> {}", io::Error::from_raw_os_error(e)),
                        }
                    ),
                );
                Some(match r {
                    Ok(()) => Reply::Value(0),
                    Err(e) => Reply::Errno(e),
                })
            }
            (BindStep::Fail(errno), BindAddr::Refuse(_)) => {
                self.say(
                    LogLevel::Warn,
                    format_args!(
                        "pid {}: bind fd {fd} {local} refused: another interface's address, and no usable interface has one of its family to bind instead ({})",
                        n.pid,
                        io::Error::from_raw_os_error(errno)
                    ),
                );
                Some(Reply::Errno(errno))
            }
            (BindStep::Fail(errno), _) => Some(Reply::Errno(errno)),
            _ => Some(Reply::Continue),
        }
    }
}

/// The socket's local address, as `getsockname` says.
fn local_addr(s: &OwnedFd) -> Option<SocketAddr> {
    match sys::getsockname(s).map(|b| addr::parse(&b)) {
        Ok(Dest::Ip { addr, .. }) => Some(addr),
        _ => None,
    }
}

/// The `IP_TOS` (IPv4 path) or `IPV6_TCLASS` (IPv6 path) option.
fn tos_option(path: UcPath) -> (i32, i32) {
    match path {
        UcPath::V4 => (libc::IPPROTO_IP, libc::IP_TOS),
        UcPath::V6 => (libc::IPPROTO_IPV6, libc::IPV6_TCLASS),
    }
}

/// The supervisor's duplicate of the program's socket, for socket-core's options
/// executor.
struct OptionDup<'a>(&'a OwnedFd);

fn errno_of(e: io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EINVAL)
}

impl sockopts::OptionSocket for OptionDup<'_> {
    fn v6only(&mut self) -> bool {
        sys::getsockopt_int(self.0, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY).unwrap_or(1) != 0
    }
    fn tos(&mut self, path: UcPath) -> i32 {
        let (level, name) = tos_option(path);
        sys::getsockopt_int(self.0, level, name).unwrap_or(0)
    }
    fn set_tos(&mut self, path: UcPath, tos: i32) -> Result<(), i32> {
        let (level, name) = tos_option(path);
        sys::setsockopt_int(self.0, level, name, tos).map_err(errno_of)
    }
    fn mark(&mut self) -> u32 {
        sys::getsockopt_int(self.0, libc::SOL_SOCKET, libc::SO_MARK).unwrap_or(0) as u32
    }
    fn set_mark(&mut self, mark: u32) -> Result<(), i32> {
        sys::setsockopt_int(self.0, libc::SOL_SOCKET, libc::SO_MARK, mark as i32).map_err(errno_of)
    }
    fn local_addr(&mut self) -> Option<SocketAddr> {
        local_addr(self.0)
    }
    fn bind_source(&mut self, src: IpAddr, v6_socket: bool, defer_port: bool) -> Result<(), i32> {
        if defer_port {
            // The port is still chosen at connect (not one of its own now).
            let _ = sys::setsockopt_int(self.0, libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT, 1);
        }
        let ip = match (src, v6_socket) {
            (IpAddr::V4(v4), true) => IpAddr::V6(v4.to_ipv6_mapped()),
            (ip, _) => ip,
        };
        sys::bind(self.0, &addr::encode(SocketAddr::new(ip, 0), 0))
    }
}

/// A message's (base, len) iovecs and its control data.
type IovControl = (Vec<(u64, u64)>, Vec<u8>);

/// A `sendmsg`'s iovec array (at most 1024) and control data (at most
/// [`MAX_CONTROL`] bytes: `ENOBUFS` beyond), read from the program; `Err`: the errno.
fn read_iov_control(n: &Notif, m: &addr::MsgHdr) -> Result<IovControl, i32> {
    // The kernel's answers first: more than UIO_MAXIOV vectors, control data at NULL.
    if m.iovlen > 1024 {
        return Err(libc::EMSGSIZE);
    }
    if m.control == 0 && m.controllen != 0 {
        return Err(libc::EFAULT);
    }
    let iovlen = m.iovlen as usize;
    let mut raw = vec![0u8; iovlen * 16];
    sys::read_mem(n.pid, m.iov, &mut raw).map_err(|_| libc::EFAULT)?;
    let iov = raw.chunks(16).map(addr::parse_iovec).collect();
    let clen = m.controllen as usize;
    if clen > MAX_CONTROL {
        return Err(libc::ENOBUFS);
    }
    let mut control = vec![0u8; clen];
    if m.control != 0 {
        sys::read_mem(n.pid, m.control, &mut control).map_err(|_| libc::EFAULT)?;
    }
    Ok((iov, control))
}

/// The program's data at `iov` (at most [`MAX_DATAGRAM`] bytes: more is `EMSGSIZE`).
fn read_data(n: &Notif, iov: &[(u64, u64)]) -> Result<Vec<u8>, i32> {
    let total = iov.iter().fold(0u64, |t, (_, l)| t.saturating_add(*l));
    if total > MAX_DATAGRAM as u64 {
        return Err(libc::EMSGSIZE);
    }
    read_data_upto(n, iov, MAX_DATAGRAM)
}

/// The first `cap` bytes of the program's data at `iov` (a stream's write is taken
/// in part).
fn read_data_upto(n: &Notif, iov: &[(u64, u64)], cap: usize) -> Result<Vec<u8>, i32> {
    let mut data = Vec::new();
    for &(base, len) in iov {
        let start = data.len();
        let take = (len.min((cap - start) as u64)) as usize;
        if take == 0 {
            if start == cap {
                break;
            }
            continue;
        }
        data.resize(start + take, 0);
        sys::read_mem(n.pid, base, &mut data[start..]).map_err(|_| libc::EFAULT)?;
    }
    Ok(data)
}

/// The program's `SIGPIPE`: the supervisor sends with `MSG_NOSIGNAL` (the signal
/// would be its own), so a send that fails with `EPIPE` without the program's
/// `MSG_NOSIGNAL` has the kernel's signal sent to the calling thread before the answer
/// (pending when its call returns, as the kernel's is; review_1203c). Returns `r`.
fn pipe_signal(tid: u32, flags: i32, r: Reply) -> Reply {
    if r == Reply::Errno(libc::EPIPE) && flags & libc::MSG_NOSIGNAL == 0 {
        sys::tkill(tid, libc::SIGPIPE);
    }
    r
}

/// One message of a batch as the supervisor sends it: its name, data and control
/// data as read (and steered).
struct OneMsg {
    name: Vec<u8>,
    data: Vec<u8>,
    control: Vec<u8>,
}

/// Where a send's data (and control data) are in the program's memory.
#[derive(Clone, Copy)]
enum Payload<'a> {
    /// A `msghdr`'s vectors and control data (`sendmsg`).
    Msg(&'a addr::MsgHdr),
    /// One buffer, no control data (`sendto`).
    Buf(&'a [(u64, u64)]),
}

/// What a send's name is to the kernel.
enum SendName {
    /// An IP destination (the program's socket duplicated).
    To(OwnedFd, SocketAddr, u32),
    /// None: `AF_UNSPEC` on an AF_INET6 socket (`udpv6_sendmsg`), the connected peer's
    /// datagram (the socket duplicated).
    None(OwnedFd),
    /// Another family, or too short, on an IP socket (duplicated): not an IP
    /// destination; the kernel's to answer, on the supervisor's duplicate with the
    /// bytes read.
    Raw(OwnedFd, Vec<u8>),
    /// Any name on a socket of another family (`AF_UNIX`, …): continued.
    Other,
}

/// The source address an IPv6 datagram's control data gives it (the last
/// `IPV6_PKTINFO` or `IPV6_2292PKTINFO` with a non-zero address, as
/// `ip6_datagram_send_ctl` reads them); `None` on the IPv4 path (`IP_PKTINFO`'s
/// `ipi_spec_dst` keeps the interface strict there) or without one. The supervisor's
/// reading is the preload's (fastpath's `scan_control`, its `source`).
/// `Err(EINVAL)`: a header the kernel refuses.
fn pktinfo_source(control: &[u8], v6_path: bool) -> Result<Option<IpAddr>, i32> {
    // The preload's reading (fastpath's `scan_control`); only the IPv6 path's source
    // changes where the datagram goes.
    let sc = socket_core::control::scan_control(control, v6_path)?;
    Ok(sc.source.filter(|_| v6_path))
}

/// The program's control messages with a PKTINFO naming `ifindex` for the datagram's
/// path (fastpath's `build_control`: its PKTINFO of interface 0 patched, else ours
/// added where the kernel's walk looks next). `Err`: the kernel's answer to malformed
/// control data (`EINVAL`).
fn with_pktinfo(control: &[u8], v6_path: bool, ifindex: u32) -> Result<Vec<u8>, i32> {
    let mut out =
        vec![
            0u8;
            control.len() + 8 + socket_core::control::cmsg_space(socket_core::control::IN6_PKTINFO)
        ];
    let p = socket_core::control::Pktinfo {
        ifindex,
        v6: v6_path,
    };
    match socket_core::control::build_control(control, p, &mut out)? {
        socket_core::control::Built::Control(len) | socket_core::control::Built::Chosen(len) => {
            out.truncate(len);
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker's blocking stream send, handed over while it waits (a peer that does
    /// not read yet), stops with the part that went; made again with the rest, once
    /// the peer reads, every byte arrives once and in order.
    #[test]
    fn a_send_handed_over_stops_and_keeps_the_part_that_went() {
        use std::io::Read;
        use std::sync::Arc;
        sys::install_interrupt_handler();
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        let s: OwnedFd = a.into();
        let data: Arc<Vec<u8>> = Arc::new((0..1usize << 20).map(|i| (i % 251) as u8).collect());
        let waits = Arc::new(interrupt::Waits::default());
        let (w, d) = (waits.clone(), data.clone());
        let t = std::thread::spawn(move || {
            let intr = w.begin(1, 1);
            let r = send_waiting(
                &s,
                &[],
                &d,
                &[],
                libc::MSG_NOSIGNAL,
                &intr,
                &Clock::default(),
            );
            w.end(1);
            (r, s)
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        while !t.is_finished() {
            waits.hand_over();
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let (r, s) = t.join().unwrap();
        let Waited::Paused(k) = r else {
            panic!("not handed over: {r:?}")
        };
        assert!(k > 0 && k < data.len(), "{k}");
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            b.read_to_end(&mut got).unwrap();
            got
        });
        let fresh = interrupt::Waits::default();
        let intr = fresh.begin(2, 1);
        let rest = send_waiting(
            &s,
            &[],
            &data[k..],
            &[],
            libc::MSG_NOSIGNAL,
            &intr,
            &Clock::default(),
        );
        assert_eq!(rest, Waited::Done(Ok(data.len() - k)));
        drop(s);
        assert!(reader.join().unwrap() == *data);
        // Handed over before its call: nothing is sent.
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let s: OwnedFd = a.into();
        let intr = waits.begin(3, 1);
        assert_eq!(
            send_waiting(
                &s,
                &[],
                b"x",
                &[],
                libc::MSG_NOSIGNAL,
                &intr,
                &Clock::default()
            ),
            Waited::Paused(0)
        );
    }

    /// A worker's blocking connect, handed over while its SYN waits (a listener whose
    /// accept queue is full drops it), made again once there is room: the same
    /// handshake ends and the connect answers 0 (the SYN's retransmission, ~1 s).
    #[test]
    fn a_connect_handed_over_is_made_again_and_ends_with_its_handshake() {
        use std::sync::Arc;
        sys::install_interrupt_handler();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let at = l.local_addr().unwrap();
        // SAFETY: listen(2) on a socket we own: an accept queue of one.
        assert_eq!(unsafe { libc::listen(l.as_raw_fd(), 0) }, 0);
        let _first = std::net::TcpStream::connect(at).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let s = tcp_socket();
        let raw = addr::encode(at, 0);
        let waits = Arc::new(interrupt::Waits::default());
        let w = waits.clone();
        let t = std::thread::spawn(move || {
            let intr = w.begin(1, 1);
            let r = connect_waiting(&s, &raw, &intr, &Clock::default(), &mut false);
            w.end(1);
            (r, s, raw)
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        while !t.is_finished() {
            waits.hand_over();
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let (r, s, raw) = t.join().unwrap();
        assert!(r.is_none(), "not handed over: {r:?}");
        let _accepted = l.accept().unwrap();
        let fresh = interrupt::Waits::default();
        let intr = fresh.begin(2, 1);
        assert!(matches!(
            connect_waiting(&s, &raw, &intr, &Clock::default(), &mut true),
            Some(Reply::Value(0))
        ));
        assert!(sys::is_connected(&s));
    }

    /// A call made again after a hand-over, on a socket with a send time-out, waits
    /// for what is left of it, not a whole one (review_horev): a send to a full
    /// buffer ends `EAGAIN`, a connect whose SYN is dropped `EINPROGRESS` (not the
    /// `EALREADY` of a connect made again), each at the time-out's end.
    #[test]
    fn a_call_made_again_waits_for_what_is_left_of_its_time_out() {
        use std::time::{Duration, Instant};
        let left = |ms| Clock {
            deadline: Some(Instant::now() + Duration::from_millis(ms)),
            runs: 2,
        };
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let s: OwnedFd = a.into();
        while sys::sendmsg(&s, &[], &[0u8; 65536], &[], libc::MSG_DONTWAIT).is_ok() {}
        let waits = interrupt::Waits::default();
        let intr = waits.begin(1, 1);
        let t0 = Instant::now();
        let r = send_waiting(&s, &[], b"more", &[], libc::MSG_NOSIGNAL, &intr, &left(300));
        let took = t0.elapsed();
        assert_eq!(r, Waited::Done(Err(libc::EAGAIN)));
        assert!(
            took >= Duration::from_millis(290) && took < Duration::from_secs(3),
            "{took:?}"
        );

        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let at = l.local_addr().unwrap();
        // SAFETY: listen(2) on a socket we own: an accept queue of one.
        assert_eq!(unsafe { libc::listen(l.as_raw_fd(), 0) }, 0);
        let _first = std::net::TcpStream::connect(at).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let c = tcp_socket();
        let raw = addr::encode(at, 0);
        // The first connect, begun without waiting: its SYN is dropped.
        // SAFETY: fcntl(2) on a socket we own.
        unsafe { libc::fcntl(c.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
        assert_eq!(sys::connect(&c, &raw), Err(libc::EINPROGRESS));
        // SAFETY: as above.
        unsafe { libc::fcntl(c.as_raw_fd(), libc::F_SETFL, 0) };
        let t0 = Instant::now();
        let r = connect_waiting(&c, &raw, &intr, &left(300), &mut true);
        let took = t0.elapsed();
        assert!(matches!(r, Some(Reply::Errno(libc::EINPROGRESS))), "{r:?}");
        assert!(
            took >= Duration::from_millis(290) && took < Duration::from_secs(3),
            "{took:?}"
        );
    }

    fn tcp_socket() -> OwnedFd {
        // SAFETY: socket(2); the fd is owned from here.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0);
            std::os::fd::FromRawFd::from_raw_fd(fd)
        }
    }

    fn pktinfo(v6: bool, ifindex: u32) -> Vec<u8> {
        let (level, ty, len) = if v6 {
            (
                libc::IPPROTO_IPV6,
                libc::IPV6_PKTINFO,
                socket_core::control::IN6_PKTINFO,
            )
        } else {
            (
                libc::IPPROTO_IP,
                libc::IP_PKTINFO,
                socket_core::control::IN_PKTINFO,
            )
        };
        let mut c = vec![0u8; socket_core::control::cmsg_space(len)];
        c[..8].copy_from_slice(&(socket_core::control::cmsg_len(len) as u64).to_ne_bytes());
        c[8..12].copy_from_slice(&level.to_ne_bytes());
        c[12..16].copy_from_slice(&ty.to_ne_bytes());
        let at = if v6 { 32 } else { 16 };
        c[at..at + 4].copy_from_slice(&ifindex.to_ne_bytes());
        c
    }

    /// An IPv6 PKTINFO's source left by eth0 whatever index went with it: the
    /// supervisor reads it (`IPV6_PKTINFO` and `IPV6_2292PKTINFO`, the last one with
    /// an address wins, none on the IPv4 path, a bad header is `EINVAL`).
    #[test]
    fn an_ipv6_pktinfo_source_is_read_for_both_pktinfo_numbers() {
        let src: std::net::Ipv6Addr = "2001:db8:20::2".parse().unwrap();
        let mut one = pktinfo(true, 4);
        one[16..32].copy_from_slice(&src.octets());
        assert_eq!(pktinfo_source(&one, true), Ok(Some(IpAddr::V6(src))));
        assert_eq!(pktinfo_source(&one, false), Ok(None));
        let mut old = one.clone();
        old[12..16].copy_from_slice(&2i32.to_ne_bytes()); // IPV6_2292PKTINFO
        assert_eq!(pktinfo_source(&old, true), Ok(Some(IpAddr::V6(src))));
        assert_eq!(pktinfo_source(&pktinfo(true, 4), true), Ok(None));
        let both = [one.clone(), pktinfo(true, 0)].concat();
        assert_eq!(pktinfo_source(&both, true), Ok(Some(IpAddr::V6(src))));
        let mut bad = one;
        bad[..8].copy_from_slice(&4096u64.to_ne_bytes());
        assert_eq!(pktinfo_source(&bad, true), Err(libc::EINVAL));
    }

    /// A PKTINFO of interface 0 (Go's `WriteMsgUDP` with an empty `IP_PKTINFO`, QUIC
    /// stacks) was taken for the program's choice of interface and the datagram left
    /// by eth0; so was an `IP_PKTINFO` on a native IPv6 datagram (the kernel's IPv6
    /// path reads `SOL_IPV6` only). Neither chooses; the one the path reads gets the
    /// chosen interface.
    #[test]
    fn a_pktinfo_of_interface_0_or_of_the_other_level_is_steered_not_taken_for_a_choice() {
        for v6 in [false, true] {
            let zero = pktinfo(v6, 0);
            assert!(
                !socket_core::control::scan_control(&zero, v6)
                    .unwrap()
                    .chosen
            );
            // Patched in place: one PKTINFO, naming the chosen interface.
            let out = with_pktinfo(&zero, v6, 3).unwrap();
            assert_eq!(out, pktinfo(v6, 3), "v6 {v6}");
            assert!(socket_core::control::scan_control(&out, v6).unwrap().chosen);
            // Nothing of the program's: ours alone.
            assert_eq!(with_pktinfo(&[], v6, 4).unwrap(), pktinfo(v6, 4));
        }
        let wrong = pktinfo(false, 3);
        assert!(
            !socket_core::control::scan_control(&wrong, true)
                .unwrap()
                .chosen
        );
        let out = with_pktinfo(&wrong, true, 4).unwrap();
        assert_eq!(&out[..wrong.len()], &wrong[..]);
        assert_eq!(&out[wrong.len()..], &pktinfo(true, 4)[..]);
        // A real choice is one.
        assert!(
            socket_core::control::scan_control(&pktinfo(false, 3), false)
                .unwrap()
                .chosen
        );
        // Malformed control data: the kernel's EINVAL.
        let mut bad = pktinfo(false, 0);
        bad[..8].copy_from_slice(&100u64.to_ne_bytes());
        assert_eq!(with_pktinfo(&bad, false, 3), Err(libc::EINVAL));
    }

    /// A zombie held by its tracer kept the program's pidfd readable while
    /// `waitpid` had nothing: the supervisor polled it at 100 % CPU. It now asks on a
    /// back-off, bounded so the exit is still seen within half a second.
    #[test]
    fn a_held_zombie_is_asked_about_on_a_bounded_back_off() {
        let mut h = None;
        let mut seen = Vec::new();
        for _ in 0..10 {
            let ms = next_backoff(h);
            seen.push(ms);
            h = Some(ms);
        }
        assert_eq!(seen[..4], [10, 20, 40, 80]);
        assert!(seen.iter().all(|&ms| (10..=500).contains(&ms)));
        assert_eq!(*seen.last().unwrap(), 500);
    }

    #[test]
    fn exit_status_of_a_signal_and_a_code() {
        assert_eq!(Exit::of(0x0900), Exit::Code(9));
        assert_eq!(Exit::of(libc::SIGTERM), Exit::Signal(libc::SIGTERM));
    }
}
