//! Signals for the program's threads that wait on a worker.
//!
//! A call that waits (a blocking connect, a send on a full buffer) is made by a
//! worker thread on the supervisor's duplicate ([`crate::run`]), and the program's
//! thread waits for the answer in the filter's killable wait
//! (`SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`, kept so that a signal after the
//! supervisor took a call cannot turn a call it already made into a restart). In that
//! wait only a fatal signal acts: a handled one (`alarm()` bounding a blocking write,
//! a timer, Ctrl-Z's stop) stays pending until the worker's call ends, where without
//! the supervisor it interrupts the call at once.
//!
//! So a watcher thread looks at every waiting thread each [`SLICE`]: when it has a
//! signal to take (its `/proc/TID/status`: one pending for the thread and not
//! blocked, or one pending for the process and not blocked that no other thread took
//! within a slice, or its thread group stopping), the worker's own call is
//! interrupted (a signal of the supervisor's, [`crate::sys::interrupt_thread`]), and
//! the worker answers as the kernel answers an interrupted call: what a stream send
//! had sent, else `ERESTARTSYS` (the kernel restarts the call after a handler with
//! `SA_RESTART` or a stop, and returns `EINTR` otherwise), or `EINTR` when the socket
//! has a send time-out (`sock_intr_errno`). A restarted call is a new notification,
//! decided again. A worker whose program thread left the call (killed) is
//! interrupted too, so no worker outlives the call it was made for.
//!
//! A process signal the leader could take, while the leader does not wait on a
//! worker, is the leader's ([`leader_takes`]): the kernel offers it first, and a
//! leader in a killable wait (`vfork`) takes it when that wait ends.
//!
//! Limit: a signal sent to the process (not to a thread) is taken by one thread the
//! kernel picks. When two threads of one process wait on workers with it unblocked,
//! the one interrupted is the first of them in the group's thread list, where the
//! kernel's `complete_signal` looks first ([`pick`]); the kernel starts from the
//! thread it last gave a process signal to, so after such a signal went to a later
//! thread the pick can differ, and the interrupted one then gets `ERESTARTSYS` with
//! no signal to take and returns errno 512 to the program.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::sys;

/// How often the watcher looks at the waiting threads.
pub const SLICE: Duration = Duration::from_millis(20);

/// The kernel's "restart the call" answer (`ERESTARTSYS`, not a user errno): the
/// thread takes its signal, then the kernel restarts the call or makes it `EINTR`.
pub const ERESTARTSYS: i32 = 512;

/// A thread's signal masks, from `/proc/TID/status` (bit `n - 1` is signal `n`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigState {
    /// `SigPnd`: pending for this thread.
    pub thread: u64,
    /// `ShdPnd`: pending for the process.
    pub shared: u64,
    /// `SigBlk`.
    pub blocked: u64,
    /// `SigIgn`.
    pub ignored: u64,
}

/// Reads the four masks of a `/proc/TID/status` text; `None` when one is missing.
pub fn parse_status(text: &str) -> Option<SigState> {
    let mut st = SigState::default();
    let mut found = 0u8;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let slot = match key {
            "SigPnd" => (&mut st.thread, 1),
            "ShdPnd" => (&mut st.shared, 2),
            "SigBlk" => (&mut st.blocked, 4),
            "SigIgn" => (&mut st.ignored, 8),
            _ => continue,
        };
        *slot.0 = u64::from_str_radix(value.trim(), 16).ok()?;
        found |= slot.1;
    }
    (found == 15).then_some(st)
}

/// What a waiting thread's signals say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Look {
    /// A signal for this thread to take: interrupt its call.
    Thread,
    /// A signal of the process it could take stayed pending a slice: no other
    /// thread took it (interrupt one of the threads it stayed for, [`pick`]).
    Stayed,
    /// Signals of the process it could take (these bits), seen now: if they are
    /// still there a slice later, no other thread took them.
    Shared(u64),
    /// Nothing for it.
    Nothing,
}

/// Looks at thread state `st`, given the process's signals `before` that it could
/// take a slice ago.
pub fn look(st: &SigState, before: u64) -> Look {
    let open = !st.blocked & !st.ignored;
    if st.thread & !st.blocked != 0 {
        return Look::Thread;
    }
    let shared = st.shared & open;
    if shared & before != 0 {
        return Look::Stayed;
    }
    if shared != 0 {
        Look::Shared(shared)
    } else {
        Look::Nothing
    }
}

/// The time between two looks with `waiting` threads: [`SLICE`], longer for many
/// (each look reads a few `/proc` files per thread).
pub fn slice_for(waiting: usize) -> Duration {
    SLICE * (waiting / 16).clamp(1, 10) as u32
}

/// The state letter of a `/proc/PID/task/TID/stat` line (after the command's `)`).
pub fn stat_state(line: &str) -> Option<char> {
    line.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Of the waiting threads that could take one process's signal (`candidates`), the
/// one to interrupt: the first in the thread group's list (`order`, as
/// `/proc/TGID/task` lists it: the leader, then by creation), which is where the
/// kernel's `complete_signal` looks first (review_1203d: the thread that waited first
/// was interrupted where the kernel had given the signal to one created before it,
/// and it returned errno 512); the first candidate when the list could not be read.
pub fn pick(order: &[u32], candidates: &[u32]) -> Option<u32> {
    order
        .iter()
        .find(|t| candidates.contains(t))
        .or_else(|| candidates.first())
        .copied()
}

/// Whether a process signal (`bits`, each one that stayed pending a slice) went to
/// the group's leader, which does not wait on a worker: the kernel's
/// `complete_signal` offers a process signal first to the thread it was sent to —
/// the leader, for `kill`, `alarm`, a timer — and gives it to it unless it blocks
/// the signal, is stopped or traced (`T`, `t`) or exiting (`Z`, `X`). A leader in a
/// killable or uninterruptible wait (`vfork`, a slow exec, a hung file system) keeps
/// it pending until that wait ends; no waiting thread has it to take, and
/// interrupting one returned errno 512 to the program (review_1206: the only thread
/// waiting in a worker). `leader`: its masks and state letter, when read.
pub fn leader_takes(bits: u64, leader_waits: bool, leader: Option<(SigState, char)>) -> bool {
    let Some((st, state)) = leader else {
        return false;
    };
    !leader_waits
        && bits != 0
        && !matches!(state, 'T' | 't' | 'Z' | 'X')
        && bits & (st.blocked | st.ignored) == 0
}

/// The thread of a group whose state tells whether a group stop began (`T`): the
/// leader unless it waits on a worker itself or is gone (`Z`, `X`), else the first
/// other thread of `order` that does not wait (`waiting`); `None`: every thread waits.
/// One thread is read per look, not every thread (review_1203d: reading all 200
/// threads' states of a program every 20 ms cost ~10 % of a CPU).
pub fn stop_probe(
    tgid: u32,
    leader_state: Option<char>,
    waiting: &[u32],
    order: impl FnOnce() -> Vec<u32>,
) -> Option<u32> {
    if !waiting.contains(&tgid) && matches!(leader_state, Some(c) if c != 'Z' && c != 'X') {
        return Some(tgid);
    }
    order()
        .into_iter()
        .find(|t| *t != tgid && !waiting.contains(t))
}

/// Raised by the watcher; read by the worker when its call returns `EINTR`.
#[derive(Clone, Default)]
pub struct Intr {
    raised: Arc<AtomicBool>,
    /// Shared by every wait of a [`Waits`]: [`Waits::hand_over`].
    handover: Arc<AtomicBool>,
}

impl Intr {
    /// Whether the watcher asked this worker's call to end (the program's thread has
    /// a signal to take).
    pub fn raised(&self) -> bool {
        self.raised.load(Ordering::Acquire)
    }

    /// Whether the worker is to stop its call and keep what it did, to be made again
    /// by mifrun's copy that serves the program's daemons (`run.rs serve`); a
    /// [`Intr::raised`] call answers instead (the program's signal comes first).
    pub fn handed_over(&self) -> bool {
        self.handover.load(Ordering::Acquire) && !self.raised()
    }
}

/// One worker's wait.
struct Wait {
    /// The notification it answers.
    id: u64,
    /// The program's thread that waits.
    tid: u32,
    /// Its thread group (0: not read yet).
    tgid: u32,
    /// The worker thread.
    worker: i32,
    intr: Intr,
    /// The process's signals it could take, seen a slice ago.
    before: u64,
}

/// The waits of the workers, and the watcher that looks at them.
#[derive(Default)]
pub struct Waits {
    list: Mutex<Vec<Wait>>,
    cv: Condvar,
    /// The process the watcher thread runs in (a fork copies only the forking thread).
    watcher: AtomicI32,
    /// Calls interrupted so far.
    pub interrupted: AtomicU64,
    /// Set once by [`Waits::hand_over`].
    handover: Arc<AtomicBool>,
}

impl Waits {
    /// Starts the watcher thread in this process if it has none; `listener` tells
    /// which calls are still waited for.
    pub fn ensure_watcher(self: &Arc<Self>, listener: i32) -> std::io::Result<()> {
        let me = std::process::id() as i32;
        if self.watcher.load(Ordering::Acquire) == me {
            return Ok(());
        }
        sys::install_interrupt_handler();
        let waits = self.clone();
        std::thread::Builder::new()
            .name("mifrun-signals".into())
            .stack_size(64 * 1024)
            .spawn(move || waits.watch(listener))?;
        self.watcher.store(me, Ordering::Release);
        Ok(())
    }

    /// Called by the worker thread before its call: the program's thread `tid` waits
    /// for its answer to notification `id`.
    pub fn begin(&self, id: u64, tid: u32) -> Intr {
        let intr = Intr {
            raised: Arc::default(),
            handover: self.handover.clone(),
        };
        let w = Wait {
            id,
            tid,
            tgid: 0,
            worker: sys::gettid(),
            intr: intr.clone(),
            before: 0,
        };
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        list.push(w);
        self.cv.notify_one();
        intr
    }

    /// Called by the worker thread once its call returned, before it answers: no
    /// signal is sent to it after this.
    pub fn end(&self, id: u64) {
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|w| w.id != id);
    }

    /// Asks every worker to stop its call and keep what it did ([`Intr::handed_over`]),
    /// and interrupts the calls of those that wait now; called again until no worker
    /// is left, as a worker may enter its call just after (the signal would come
    /// before it). Returns how many wait.
    pub fn hand_over(&self) -> usize {
        self.handover.store(true, Ordering::Release);
        let list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        for w in list.iter() {
            sys::interrupt_thread(w.worker);
        }
        list.len()
    }

    fn watch(&self, listener: i32) {
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            while list.is_empty() {
                list = self.cv.wait(list).unwrap_or_else(|e| e.into_inner());
            }
            self.scan(&mut list, listener);
            let slice = slice_for(list.len());
            drop(list);
            std::thread::sleep(slice);
            list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        }
    }

    /// One look at every wait (the lock held: an entry's worker is alive, so its
    /// thread id names it).
    fn scan(&self, list: &mut [Wait], listener: i32) {
        // Per thread group, the threads that could take a process's signal that
        // stayed pending for a slice.
        let mut shared: Vec<(u32, u32, u64)> = Vec::new();
        let waiting: Vec<u32> = list.iter().map(|w| w.tid).collect();
        // Per thread group, whether a group stop began (one thread read once a look).
        let mut stopping: Vec<(u32, bool)> = Vec::new();
        let mut group_stopping = |tgid: u32| match stopping.iter().find(|g| g.0 == tgid) {
            Some(g) => g.1,
            None => {
                let leader = sys::thread_state(tgid, tgid);
                let probe = stop_probe(tgid, leader, &waiting, || sys::threads_of(tgid));
                let t = match probe {
                    Some(p) if p == tgid => leader == Some('T'),
                    Some(p) => sys::thread_state(tgid, p) == Some('T'),
                    None => false,
                };
                stopping.push((tgid, t));
                t
            }
        };
        for w in list.iter_mut() {
            if w.intr.raised() {
                // Until its call returns: the first signal may have come before it
                // entered the call.
                sys::interrupt_thread(w.worker);
                continue;
            }
            let take = if !sys::id_valid(listener, w.id) {
                true
            } else {
                match sys::signal_state(w.tid) {
                    None => true,
                    Some(st) => {
                        if w.tgid == 0 {
                            w.tgid = sys::tgid_of(w.tid).unwrap_or(w.tid);
                        }
                        match look(&st, w.before) {
                            Look::Thread => true,
                            Look::Stayed => {
                                let open = !st.blocked & !st.ignored;
                                shared.push((w.tgid, w.tid, st.shared & open & w.before));
                                false
                            }
                            Look::Shared(bits) => {
                                w.before = bits;
                                group_stopping(w.tgid)
                            }
                            Look::Nothing => {
                                w.before = 0;
                                group_stopping(w.tgid)
                            }
                        }
                    }
                }
            };
            if take {
                self.raise(w);
            }
        }
        let mut groups: Vec<u32> = shared.iter().map(|s| s.0).collect();
        groups.sort_unstable();
        groups.dedup();
        for g in groups {
            let bits = shared.iter().filter(|s| s.0 == g).fold(0, |a, s| a | s.2);
            let leader_waits = waiting.contains(&g);
            if !leader_waits {
                let leader = sys::signal_state(g).zip(sys::thread_state(g, g));
                if leader_takes(bits, false, leader) {
                    continue;
                }
            }
            let cands: Vec<u32> = shared.iter().filter(|s| s.0 == g).map(|s| s.1).collect();
            let order = if cands.len() > 1 {
                sys::threads_of(g)
            } else {
                Vec::new()
            };
            if let Some(tid) = pick(&order, &cands)
                && let Some(w) = list.iter_mut().find(|w| w.tid == tid && !w.intr.raised())
            {
                self.raise(w);
            }
        }
    }

    fn raise(&self, w: &mut Wait) {
        w.intr.raised.store(true, Ordering::Release);
        self.interrupted.fetch_add(1, Ordering::Relaxed);
        sys::interrupt_thread(w.worker);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tpython3\nState:\tS (sleeping)\nTgid:\t42\n\
        SigQ:\t1/95144\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000002000\n\
        SigBlk:\t0000000000000000\nSigIgn:\t0000000001001000\nSigCgt:\t0000000180004002\n";

    #[test]
    fn status_masks_are_read_in_hex() {
        let st = parse_status(STATUS).unwrap();
        assert_eq!(st.thread, 0);
        assert_eq!(st.shared, 1 << (libc::SIGALRM - 1));
        assert_eq!(st.blocked, 0);
        assert_eq!(st.ignored, 0x0100_1000);
    }

    #[test]
    fn a_status_without_a_mask_is_not_read() {
        assert_eq!(parse_status("SigPnd:\t0\nShdPnd:\t0\nSigBlk:\t0\n"), None);
        assert_eq!(
            parse_status("SigPnd:\tzz\nShdPnd:\t0\nSigBlk:\t0\nSigIgn:\t0\n"),
            None
        );
    }

    fn st(thread: u64, shared: u64, blocked: u64) -> SigState {
        SigState {
            thread,
            shared,
            blocked,
            ignored: 0,
        }
    }

    #[test]
    fn a_signal_for_the_thread_is_taken_at_once_unless_blocked() {
        assert_eq!(look(&st(1 << 13, 0, 0), 0), Look::Thread);
        assert_eq!(look(&st(1 << 13, 0, 1 << 13), 0), Look::Nothing);
    }

    #[test]
    fn a_signal_for_the_process_is_taken_once_it_stayed_a_slice() {
        let alrm = 1 << 13;
        assert_eq!(look(&st(0, alrm, 0), 0), Look::Shared(alrm));
        assert_eq!(look(&st(0, alrm, 0), alrm), Look::Stayed);
        // Another signal of the process, seen before, does not count.
        assert_eq!(look(&st(0, alrm, 0), 1), Look::Shared(alrm));
        // Blocked by this thread: another thread's to take.
        assert_eq!(look(&st(0, alrm, alrm), alrm), Look::Nothing);
        let ign = SigState {
            ignored: alrm,
            ..st(0, alrm, 0)
        };
        assert_eq!(look(&ign, alrm), Look::Nothing);
    }

    #[test]
    fn the_stat_state_follows_the_command_name() {
        assert_eq!(stat_state("42 (a) b) T 1 42 42 0"), Some('T'));
        assert_eq!(stat_state("42 (python3) S 1"), Some('S'));
        assert_eq!(stat_state("garbage"), None);
    }

    #[test]
    fn many_waits_are_looked_at_less_often() {
        assert_eq!(slice_for(1), SLICE);
        assert_eq!(slice_for(40), SLICE * 2);
        assert_eq!(slice_for(256), SLICE * 10);
    }

    #[test]
    fn a_process_signal_goes_to_the_first_waiting_thread_of_the_group_list() {
        // Thread 8 was created before 7 and waited after it: 8 is the kernel's.
        assert_eq!(pick(&[5, 8, 7], &[7, 8]), Some(8));
        assert_eq!(pick(&[5, 8, 7], &[5, 7]), Some(5));
        // The list unread: the first that waited.
        assert_eq!(pick(&[], &[7, 8]), Some(7));
        assert_eq!(pick(&[5], &[]), None);
    }

    #[test]
    fn a_process_signal_stays_with_a_leader_in_a_killable_wait() {
        let usr1 = 1 << 9;
        let leader = |blocked, state| Some((st(0, usr1, blocked), state));
        // The leader in vfork (`D`), SIGUSR1 open: its signal, not the waiter's.
        assert!(leader_takes(usr1, false, leader(0, 'D')));
        assert!(leader_takes(usr1, false, leader(0, 'S')));
        // The leader blocks it, is stopped, exiting, waits itself, or was not read:
        // another thread's (the waiter may be the kernel's pick).
        assert!(!leader_takes(usr1, false, leader(usr1, 'D')));
        assert!(!leader_takes(usr1, false, leader(0, 'T')));
        assert!(!leader_takes(usr1, false, leader(0, 'Z')));
        assert!(!leader_takes(usr1, true, leader(0, 'D')));
        assert!(!leader_takes(usr1, false, None));
        // Two signals stayed, the leader blocks one: that one is another thread's.
        assert!(!leader_takes(usr1 | 1, false, leader(1, 'D')));
    }

    #[test]
    fn one_thread_tells_a_group_stop() {
        let never = || -> Vec<u32> { panic!("the list is not needed") };
        // The leader, when it does not wait.
        assert_eq!(stop_probe(5, Some('S'), &[7], never), Some(5));
        // The leader waits, or is a zombie: the first other thread that does not.
        assert_eq!(
            stop_probe(5, Some('D'), &[5, 7], || vec![5, 7, 8, 9]),
            Some(8)
        );
        assert_eq!(stop_probe(5, Some('Z'), &[7], || vec![5, 7, 8]), Some(8));
        assert_eq!(stop_probe(5, None, &[7], || vec![7, 8]), Some(8));
        // Every thread waits.
        assert_eq!(stop_probe(5, Some('D'), &[5, 7], || vec![5, 7]), None);
    }
}
