//! The routing-socket watcher (`sys::macos::watch` decides, this module runs it): a
//! non-blocking `PF_ROUTE` socket of the engine's, looked at by `netstate` before a
//! decision relies on a snapshot younger than its age limit, so that a link, address
//! or route change is seen by the next decision rather than up to a second later.
//!
//! The socket sits in the program's descriptor table. The close and `dup2` hooks hand
//! its number over to the program ([`closing`], under the lock the watcher reads
//! with, so a close through the C library never lands between the watcher's check and
//! its read); a number lost to a raw `close` is caught by the socket's tag before each
//! read and forgotten, never read or closed.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering::SeqCst};

use libc::c_int;

use super::errno;
use crate::sys::macos::route::{RTM_VERSION, any_invalidates};
use crate::sys::macos::watch::{
    CHECK_EVERY_MS, Drained, Next, RCVBUF, Seen, TAG_SEC, TAG_USEC, Watch, drain_is_stale,
};
use crate::sys::real;

// Everything the watcher does under its lock is non-cancellable (`ffi::nocancel`, and
// the stub's `close`/`fcntl` twins through `real::own_*`): a cancellation acted on
// inside the lock would end the thread with the lock held (Darwin's `pthread_exit`
// runs no Rust drops), and every later close of the watcher's number would spin.
use super::nocancel::{poll as poll_nocancel, read as read_nocancel};

/// The watcher's state, behind [`LOCK`].
struct Cell(UnsafeCell<Watch>);
// SAFETY: the Watch is only touched by the thread holding LOCK (`locked`), or by the
// only thread of a child after fork (`after_fork_in_child`).
unsafe impl Sync for Cell {}

static STATE: Cell = Cell(UnsafeCell::new(Watch::new()));
static LOCK: AtomicBool = AtomicBool::new(false);
/// The watcher's descriptor (-1: none), mirrored out of the lock so that a close hook
/// of another number does not take it.
static FD: AtomicI32 = AtomicI32::new(-1);
/// A descriptor `open` holds but has not handed to the state yet, so that a child
/// forked meanwhile closes it too.
static OPENING: AtomicI32 = AtomicI32::new(-1);
/// When the watcher was last looked at: a decision claims the millisecond with a
/// compare-and-swap before anything else, so one look a millisecond blocks signals.
static LAST_MS: AtomicU64 = AtomicU64::new(0);
/// The receive buffer the socket reports (`SO_RCVBUF`), for [`drain_is_stale`].
static RCVBUF_GOT: AtomicUsize = AtomicUsize::new(8192);

// The numbers `watch` reads `poll`'s answer and `open`'s errors by are macOS's.
const _: () = {
    assert!(libc::POLLIN == 0x1 && libc::POLLERR == 0x8);
    assert!(libc::POLLHUP == 0x10 && libc::POLLNVAL == 0x20);
    assert!(crate::sys::macos::watch::EMFILE == libc::EMFILE);
    assert!(crate::sys::macos::watch::ENFILE == libc::ENFILE);
    assert!(crate::sys::macos::route::RTF_LLINFO == libc::RTF_LLINFO);
    assert!(crate::sys::macos::route::RTF_WASCLONED == libc::RTF_WASCLONED);
};

/// Runs `f` on the state with every signal blocked (a handler that left by
/// `siglongjmp` while the lock was held would leave every later close of the
/// watcher's number spinning). `wait`: until the lock is free (spinning a little, then
/// yielding the processor to the holder); otherwise `None` when another thread holds
/// it. Nothing run under the lock is a cancellation point.
fn locked<R>(wait: bool, f: impl FnOnce(&mut Watch) -> R) -> Option<R> {
    crate::sys::with_signals_blocked(|| {
        let mut spins = 0u32;
        while LOCK
            .compare_exchange_weak(false, true, SeqCst, SeqCst)
            .is_err()
        {
            if !wait {
                return None;
            }
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                // SAFETY: no preconditions.
                unsafe { libc::sched_yield() };
            }
        }
        // SAFETY: this thread holds LOCK, the only way to the state but for a child
        // after fork (single-threaded there).
        let r = f(unsafe { &mut *STATE.0.get() });
        // SAFETY: as above.
        FD.store(unsafe { (*STATE.0.get()).fd() }.unwrap_or(-1), SeqCst);
        LOCK.store(false, SeqCst);
        Some(r)
    })
}

/// Whether the snapshot must be taken again now: a message since the last look
/// changed links, addresses or routes, the socket may have dropped messages or was
/// lost, or the watcher is new. `false` within a millisecond of the last look (one
/// decision a millisecond looks) and while another thread is looking (its answer
/// refreshes the snapshot).
pub(crate) fn changed() -> bool {
    let now = crate::sys::now_ms();
    let last = LAST_MS.load(SeqCst);
    if now.saturating_sub(last) < CHECK_EVERY_MS
        || LOCK.load(SeqCst)
        || LAST_MS.compare_exchange(last, now, SeqCst, SeqCst).is_err()
    {
        return false;
    }
    locked(false, |w| match w.next(now) {
        Next::Skip => false,
        Next::Open => {
            let fd = open();
            let stale = w.opened(fd, now, crate::sys::getpid());
            OPENING.store(-1, SeqCst);
            stale
        }
        Next::Poll(fd) => match w.polled(poll(fd), now) {
            Ok(stale) => stale,
            Err(fd) => w.drained(drain(fd), now),
        },
    })
    .unwrap_or(false)
}

/// The program is closing `fd`, or `dup2` is about to replace it: if it is the
/// watcher's, the number is the program's from now on (waits for a look in progress,
/// so that the look reads the watcher's socket, not whatever the number names next).
pub(crate) fn closing(fd: c_int) {
    if fd >= 0 && FD.load(SeqCst) == fd {
        let pid = crate::sys::getpid();
        locked(true, |w| w.closing(fd, pid));
    }
}

/// `close_range`/`closefrom`'s counterpart of [`closing`] (macOS has neither in the
/// C library; kept for the shared hooks' shape).
pub(crate) fn range_closing(first: u32, last: u32) {
    let fd = FD.load(SeqCst);
    if fd >= 0 && (first..=last).contains(&(fd as u32)) {
        closing(fd);
    }
}

/// In a child after `fork`, single-threaded: the inherited socket is the parent's too
/// (a read here would take the parent's messages), so the child closes its copy — and
/// one a thread of the parent was opening — and opens its own at its next look; a lock
/// held by a thread of the parent is freed.
pub(crate) fn after_fork_in_child() {
    LOCK.store(false, SeqCst);
    // SAFETY: the only thread of the child; nobody holds the lock.
    let fd = unsafe { (*STATE.0.get()).after_fork() };
    let opening = OPENING.swap(-1, SeqCst);
    FD.store(-1, SeqCst);
    LAST_MS.store(0, SeqCst);
    for fd in [fd, (opening >= 0).then_some(opening)]
        .into_iter()
        .flatten()
    {
        // SAFETY: the child's copy of a descriptor the engine opened, closed once.
        unsafe { real::own_close(fd) };
    }
}

/// `socket(PF_ROUTE, SOCK_RAW, AF_UNSPEC)`: every family's messages; close-on-exec
/// first thing (macOS has no `SOCK_CLOEXEC`: a `fork` and `exec` by another thread in
/// between would still inherit it), never on 0, 1 or 2 (a daemon that closed them
/// opens `/dev/null` expecting to get them back), non-blocking, a 64 KiB receive
/// buffer, and tagged.
fn open() -> Result<c_int, c_int> {
    // SAFETY: plain system calls on a descriptor this function owns until it returns
    // it; the option values are live values of the stated sizes.
    unsafe {
        let mut fd = real::socket(libc::PF_ROUTE, libc::SOCK_RAW, libc::AF_UNSPEC);
        if fd < 0 {
            return Err(errno());
        }
        OPENING.store(fd, SeqCst);
        real::own_fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC as usize);
        if fd <= 2 {
            let high = real::own_fcntl(fd, libc::F_DUPFD_CLOEXEC, 3);
            let e = errno();
            real::own_close(fd);
            OPENING.store(high, SeqCst);
            if high < 0 {
                return Err(e);
            }
            fd = high;
        }
        let fail = |fd: c_int| {
            let e = errno();
            // Ours, closed once (within the unsafe block above).
            real::own_close(fd);
            OPENING.store(-1, SeqCst);
            Err(e)
        };
        let fl = real::own_fcntl(fd, libc::F_GETFL, 0);
        if fl < 0 || real::own_fcntl(fd, libc::F_SETFL, (fl | libc::O_NONBLOCK) as usize) < 0 {
            return fail(fd);
        }
        let want: c_int = RCVBUF;
        real::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&want as *const c_int).cast(),
            size_of::<c_int>() as libc::socklen_t,
        );
        let mut got: c_int = 0;
        let mut len = size_of::<c_int>() as libc::socklen_t;
        if libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&mut got as *mut c_int).cast(),
            &mut len,
        ) == 0
            && got > 0
        {
            RCVBUF_GOT.store(got as usize, SeqCst);
        }
        let tag = libc::timeval {
            tv_sec: TAG_SEC,
            tv_usec: TAG_USEC,
        };
        if real::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tag as *const libc::timeval).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        ) < 0
        {
            return fail(fd);
        }
        Ok(fd)
    }
}

/// `poll` of the one descriptor, without waiting.
fn poll(fd: c_int) -> Seen {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live pollfd.
    let n = unsafe { poll_nocancel(&mut p, 1, 0) };
    Seen::of(if n < 0 { -1 } else { i32::from(p.revents) })
}

/// Whether `fd` still carries the watcher's tag.
fn tagged(fd: c_int) -> bool {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: tv is writable for len bytes; getsockopt is not a hooked call.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&mut tv as *mut libc::timeval).cast(),
            &mut len,
        )
    };
    r == 0 && tv.tv_sec == TAG_SEC && tv.tv_usec == TAG_USEC
}

/// Reads what is queued, in place (no allocation), at most 64 reads (a storm of
/// messages counts as a change and the rest waits for the next look). The tag is
/// read again before each read, and each read must be one whole routing message (a
/// routing socket returns one per read, `rtm_msglen` long, of `RTM_VERSION`): anything
/// else means the number is the program's now, and the walk stops there.
fn drain(fd: c_int) -> Drained {
    let mut buf = [0u8; 2048];
    let mut invalidating = false;
    let mut bytes = 0usize;
    for _ in 0..64 {
        if !tagged(fd) {
            return Drained::NotOurs;
        }
        // SAFETY: buf is writable for its length; the socket is non-blocking.
        let n = unsafe { read_nocancel(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            match errno() {
                libc::EAGAIN => {
                    let stale = drain_is_stale(invalidating, bytes, RCVBUF_GOT.load(SeqCst));
                    return Drained::Read { stale };
                }
                libc::EINTR => continue,
                libc::ENOBUFS => invalidating = true,
                _ => return Drained::Failed,
            }
            continue;
        }
        let got = &buf[..n as usize];
        let whole = got.len() >= 4
            && usize::from(u16::from_ne_bytes([got[0], got[1]])) == got.len()
            && got[2] == RTM_VERSION;
        // A message longer than the buffer is cut to it: still a routing message.
        let cut = got.len() == buf.len() && got[2] == RTM_VERSION;
        if !whole && !cut {
            return Drained::NotOurs;
        }
        bytes += got.len();
        invalidating |= cut || any_invalidates(got);
    }
    Drained::Read { stale: true }
}
