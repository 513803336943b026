//! When the interface snapshot must be taken again before a decision, as the routing
//! socket tells it (`ffi::netwatch` runs this with the real descriptor; pure, so that
//! Linux runs its tests).
//!
//! `netstate` takes a new snapshot when its own is older than a second. On macOS it
//! also asks the watcher, at most once a millisecond: the watcher holds a non-blocking
//! `PF_ROUTE` socket and says "stale" when a queued message changes what the snapshot
//! holds (a link's flags, an address; a route that is not a cloned host or
//! link-layer entry, see `route::Msg::invalidates_snapshot`), when the socket
//! overflowed (messages were lost), and once when it is new (what happened before it
//! was opened is unknown).
//!
//! The descriptor is in the program's table, so the program can close it or give its
//! number to one of its own: the close and `dup2` hooks tell the watcher
//! ([`Watch::closing`]), which then forgets the number without closing it; a number
//! taken from under the hooks (a raw `close`) is caught before every read by the
//! socket's tag (an `SO_RCVTIMEO` no program sets: [`TAG_SEC`], [`TAG_USEC`]) and
//! forgotten in the same way, never read or closed. A watcher that cannot be opened
//! leaves the snapshot to its age and is tried again a second later — but never again
//! after `EMFILE`/`ENFILE`: a program at its descriptor limit that frees one (the
//! reserve-descriptor trick of servers that run out) must get it back, not the
//! watcher. XNU drops a message quietly when a routing socket's buffer is full
//! (`raw_input`: no `ENOBUFS` reaches the reader), so a read that comes near the
//! buffer's size counts as stale too ([`drain_is_stale`]).

/// How often, at most, the watcher's socket is looked at (`poll` with no wait).
pub const CHECK_EVERY_MS: u64 = 1;
/// How long after a failed open (or a lost descriptor) the watcher is opened again.
pub const REOPEN_AFTER_MS: u64 = 1000;
/// `EMFILE` and `ENFILE` (the same numbers on macOS and Linux).
pub const EMFILE: i32 = 24;
pub const ENFILE: i32 = 23;
/// The receive buffer the watcher asks for (XNU's routing sockets start with 8 KiB).
pub const RCVBUF: i32 = 64 * 1024;

/// Whether a drain says the snapshot is stale: a message that changes it, or a read
/// of at least half the receive buffer (`rcvbuf`, as the socket reports it), after
/// which XNU may have dropped messages without a word.
pub fn drain_is_stale(invalidating: bool, bytes: usize, rcvbuf: usize) -> bool {
    invalidating || bytes >= rcvbuf.max(2) / 2
}

/// The tag: the receive time-out set on the watcher's socket, read back before each
/// read (a day less a second, and a fraction no program picks).
pub const TAG_SEC: i64 = 86_399;
pub const TAG_USEC: i32 = 271_828;

/// What `poll` said of the descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Nothing queued.
    Quiet,
    /// Something to read (or an error to collect: the read says which).
    Readable,
    /// `POLLNVAL`: the number is not open any more.
    Gone,
}

impl Seen {
    /// Reads `poll`'s `revents` for the one descriptor asked (`-1`: `poll` failed).
    pub fn of(revents: i32) -> Seen {
        const POLLIN: i32 = 0x1;
        const POLLERR: i32 = 0x8;
        const POLLHUP: i32 = 0x10;
        const POLLNVAL: i32 = 0x20;
        if revents < 0 {
            // `poll` itself failed (EINTR with signals blocked cannot be; ENOMEM):
            // read, and let the read's answer decide.
            Seen::Readable
        } else if revents & POLLNVAL != 0 {
            Seen::Gone
        } else if revents & (POLLIN | POLLERR | POLLHUP) != 0 {
            Seen::Readable
        } else {
            Seen::Quiet
        }
    }
}

/// What the watcher asks its executor to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Nothing now: the snapshot stands.
    Skip,
    /// Open a routing socket ([`Watch::opened`]).
    Open,
    /// `poll` this descriptor without waiting ([`Watch::polled`]).
    Poll(i32),
}

/// What the executor found when it read the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Read until `EAGAIN`; whether the snapshot is stale ([`drain_is_stale`]).
    Read { stale: bool },
    /// The number does not carry the tag, or a read returned something that is not a
    /// routing message: not ours any more (not read further, not closed).
    NotOurs,
    /// The read failed otherwise (`EBADF` from a number closed between the tag and
    /// the read cannot be: the hooks' closes wait for the watcher).
    Failed,
}

/// The watcher's state (the executor keeps one, behind a lock the close hooks take).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    fd: i32,
    /// The process that opened it: a `vfork` child shares this state with its parent
    /// and runs no fork handlers, so its closes must not hand the parent's watcher over.
    owner: i32,
    last_check_ms: u64,
    reopen_at_ms: u64,
}

impl Watch {
    pub const fn new() -> Watch {
        Watch {
            fd: -1,
            owner: 0,
            last_check_ms: 0,
            reopen_at_ms: 0,
        }
    }

    /// The descriptor held, if any.
    pub fn fd(&self) -> Option<i32> {
        (self.fd >= 0).then_some(self.fd)
    }

    /// Asked by every decision whose snapshot is young enough: at most one look per
    /// [`CHECK_EVERY_MS`].
    pub fn next(&mut self, now_ms: u64) -> Next {
        if self.last_check_ms != 0 && now_ms.saturating_sub(self.last_check_ms) < CHECK_EVERY_MS {
            return Next::Skip;
        }
        self.last_check_ms = now_ms.max(1);
        if self.fd >= 0 {
            Next::Poll(self.fd)
        } else if now_ms >= self.reopen_at_ms {
            Next::Open
        } else {
            Next::Skip
        }
    }

    /// The open's outcome in process `pid`; whether the snapshot is stale. A new
    /// watcher did not hear what happened before it: stale once. A failed one: the
    /// snapshot keeps its age rule, and the open is tried again after
    /// [`REOPEN_AFTER_MS`] — never after `EMFILE`/`ENFILE`.
    pub fn opened(&mut self, fd: Result<i32, i32>, now_ms: u64, pid: i32) -> bool {
        match fd {
            Ok(fd) if fd >= 0 => {
                self.fd = fd;
                self.owner = pid;
                true
            }
            Err(EMFILE | ENFILE) => {
                self.reopen_at_ms = u64::MAX;
                false
            }
            _ => {
                self.reopen_at_ms = now_ms.saturating_add(REOPEN_AFTER_MS);
                false
            }
        }
    }

    /// What `poll` said; `Ok(stale)`, or `Err(fd)`: read `fd` ([`Watch::drained`]).
    pub fn polled(&mut self, seen: Seen, now_ms: u64) -> Result<bool, i32> {
        match seen {
            Seen::Quiet => Ok(false),
            Seen::Readable => Err(self.fd),
            Seen::Gone => {
                self.lose(now_ms);
                Ok(true)
            }
        }
    }

    /// What the read found; whether the snapshot is stale. A number that is not ours
    /// any more, or a socket that cannot be read, is forgotten (never closed: it may be
    /// the program's) and the snapshot counts as stale, since messages were missed.
    pub fn drained(&mut self, d: Drained, now_ms: u64) -> bool {
        match d {
            Drained::Read { stale } => stale,
            Drained::NotOurs | Drained::Failed => {
                self.lose(now_ms);
                true
            }
        }
    }

    /// Process `pid` is closing `fd` (or making it a copy of another, `dup2`): when it
    /// is the watcher's, the number is the program's from now on. True when it was. A
    /// `vfork` child's close (another pid, the parent's memory) is its own table's and
    /// leaves the parent's watcher alone.
    pub fn closing(&mut self, fd: i32, pid: i32) -> bool {
        if fd < 0 || fd != self.fd || pid != self.owner {
            return false;
        }
        // Opened again at the next look: the program closed it, it did not refuse it.
        self.fd = -1;
        self.reopen_at_ms = 0;
        true
    }

    /// In a child after `fork`: the descriptor is the parent's socket too (a read here
    /// would take the parent's messages). Returns it for the child to close; the child
    /// opens its own at its next look.
    pub fn after_fork(&mut self) -> Option<i32> {
        let fd = self.fd();
        *self = Watch::new();
        fd
    }

    fn lose(&mut self, now_ms: u64) {
        self.fd = -1;
        self.reopen_at_ms = now_ms.saturating_add(REOPEN_AFTER_MS);
    }
}

impl Default for Watch {
    fn default() -> Self {
        Watch::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PID: i32 = 4242;

    /// A watcher opened at `t` on descriptor 7 by process [`PID`].
    fn open_at(t: u64) -> Watch {
        let mut w = Watch::new();
        assert_eq!(w.next(t), Next::Open);
        assert!(
            w.opened(Ok(7), t, PID),
            "a new watcher makes the snapshot stale once"
        );
        w
    }

    #[test]
    fn a_new_watcher_is_opened_at_the_first_look_and_says_stale_once() {
        let mut w = open_at(5);
        assert_eq!(w.next(5), Next::Skip, "within the same millisecond");
        assert_eq!(w.next(6), Next::Poll(7));
        assert_eq!(w.polled(Seen::Quiet, 6), Ok(false));
    }

    #[test]
    fn looks_are_at_most_one_a_millisecond() {
        let mut w = open_at(100);
        let polls = (100..110u64)
            .flat_map(|ms| [ms, ms, ms])
            .filter(|&ms| matches!(w.next(ms), Next::Poll(_)))
            .count();
        assert_eq!(polls, 9, "101..=109, one each");
    }

    #[test]
    fn a_readable_socket_is_read_and_its_messages_decide() {
        let mut w = open_at(1);
        assert_eq!(w.next(2), Next::Poll(7));
        assert_eq!(w.polled(Seen::Readable, 2), Err(7));
        assert!(w.drained(Drained::Read { stale: true }, 2));
        assert_eq!(w.next(3), Next::Poll(7));
        assert_eq!(w.polled(Seen::Readable, 3), Err(7));
        assert!(
            !w.drained(Drained::Read { stale: false }, 3),
            "only cloned routes came"
        );
        assert_eq!(w.fd(), Some(7));
    }

    #[test]
    fn a_number_the_program_took_is_forgotten_never_closed_and_reopened_later() {
        // Raw close and reuse (no hook saw it): the tag is not there.
        let mut w = open_at(1);
        assert_eq!(w.next(2), Next::Poll(7));
        assert_eq!(w.polled(Seen::Readable, 2), Err(7));
        assert!(
            w.drained(Drained::NotOurs, 2),
            "messages were missed: stale"
        );
        assert_eq!(w.fd(), None);
        assert!(
            !w.closing(7, PID),
            "7 is the program's now: its close is not ours"
        );
        assert_eq!(w.next(3), Next::Skip);
        assert_eq!(w.next(1001), Next::Skip);
        assert_eq!(w.next(1002), Next::Open, "a second after it was lost");
    }

    #[test]
    fn a_closed_number_is_gone_and_stale() {
        let mut w = open_at(1);
        assert_eq!(w.next(2), Next::Poll(7));
        assert_eq!(w.polled(Seen::Gone, 2), Ok(true));
        assert_eq!(w.fd(), None);
    }

    #[test]
    fn a_close_through_the_hooks_hands_the_number_over_and_reopens_at_the_next_look() {
        let mut w = open_at(1);
        assert!(!w.closing(6, PID));
        assert!(!w.closing(-1, PID));
        assert!(w.closing(7, PID));
        assert_eq!(w.fd(), None);
        assert!(
            !w.closing(7, PID),
            "the second close of 7 is the program's own"
        );
        assert_eq!(w.next(2), Next::Open);
    }

    #[test]
    fn a_watcher_that_cannot_be_opened_leaves_the_snapshot_to_its_age() {
        let mut w = Watch::new();
        assert_eq!(w.next(10), Next::Open);
        assert!(
            !w.opened(Err(55), 10, PID),
            "ENOBUFS: nothing is known to be stale"
        );
        assert_eq!(w.next(500), Next::Skip);
        assert_eq!(w.next(1010), Next::Open);
        assert!(w.opened(Ok(3), 1010, PID));
        assert_eq!(w.fd(), Some(3));
    }

    #[test]
    fn a_forked_child_closes_the_parents_watcher_and_opens_its_own() {
        let mut w = open_at(1);
        assert_eq!(w.after_fork(), Some(7));
        assert_eq!(w, Watch::new());
        assert_eq!(w.next(2), Next::Open);
        let mut none = Watch::new();
        assert_eq!(none.after_fork(), None);
    }

    #[test]
    fn poll_results_are_read_as_macos_sets_them() {
        assert_eq!(Seen::of(0), Seen::Quiet);
        assert_eq!(Seen::of(0x1), Seen::Readable);
        assert_eq!(Seen::of(0x8), Seen::Readable);
        assert_eq!(Seen::of(0x10), Seen::Readable);
        assert_eq!(Seen::of(0x20), Seen::Gone);
        assert_eq!(Seen::of(0x21), Seen::Gone);
        assert_eq!(Seen::of(-1), Seen::Readable);
    }
    #[test]
    fn a_program_at_its_descriptor_limit_keeps_what_it_frees() {
        for e in [EMFILE, ENFILE] {
            let mut w = Watch::new();
            assert_eq!(w.next(10), Next::Open);
            assert!(!w.opened(Err(e), 10, PID));
            for t in [11, 1010, 60_000, 86_400_000] {
                assert_eq!(w.next(t), Next::Skip, "never opened again after errno {e}");
            }
        }
    }

    #[test]
    fn a_vfork_childs_close_leaves_the_parents_watcher_alone() {
        let mut w = open_at(1);
        assert!(!w.closing(7, PID + 1), "the child's own table");
        assert_eq!(w.fd(), Some(7));
        assert!(w.closing(7, PID));
    }

    #[test]
    fn a_read_near_the_buffers_size_may_have_lost_messages() {
        assert!(!drain_is_stale(false, 0, 65536));
        assert!(!drain_is_stale(false, 32767, 65536));
        assert!(
            drain_is_stale(false, 32768, 65536),
            "XNU drops quietly when full"
        );
        assert!(drain_is_stale(true, 92, 65536));
        assert!(
            drain_is_stale(false, 4096, 8192),
            "the default 8 KiB when ours was refused"
        );
        assert!(drain_is_stale(false, 1, 0), "no size known: any read");
    }
}
