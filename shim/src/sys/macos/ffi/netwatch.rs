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
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering::SeqCst};

use libc::c_int;

use super::errno;
use crate::sys::macos::route::parse_all;
use crate::sys::macos::watch::{CHECK_EVERY_MS, Drained, Next, Seen, TAG_SEC, TAG_USEC, Watch};
use crate::sys::real;

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
/// When the watcher was last looked at, mirrored for the same reason (a decision
/// within [`CHECK_EVERY_MS`] of the last look neither blocks signals nor locks).
static LAST_MS: AtomicU64 = AtomicU64::new(0);

// The numbers `watch` reads `poll`'s answer by are macOS's.
const _: () = {
    assert!(libc::POLLIN == 0x1 && libc::POLLERR == 0x8);
    assert!(libc::POLLHUP == 0x10 && libc::POLLNVAL == 0x20);
    assert!(crate::sys::macos::route::RTF_LLINFO == libc::RTF_LLINFO);
    assert!(crate::sys::macos::route::RTF_WASCLONED == libc::RTF_WASCLONED);
};

/// Runs `f` on the state with every signal blocked (a handler that left by
/// `siglongjmp` while the lock was held would leave every later close of the
/// watcher's number spinning). `wait`: spin until the lock is free; otherwise `None`
/// when another thread holds it.
fn locked<R>(wait: bool, f: impl FnOnce(&mut Watch) -> R) -> Option<R> {
    crate::sys::with_signals_blocked(|| {
        while LOCK
            .compare_exchange_weak(false, true, SeqCst, SeqCst)
            .is_err()
        {
            if !wait {
                return None;
            }
            std::hint::spin_loop();
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
/// changed links, addresses or routes, the socket overflowed or was lost, or the
/// watcher is new. `false` within a millisecond of the last look, and while another
/// thread is looking (its answer refreshes the snapshot).
pub(crate) fn changed() -> bool {
    let now = crate::sys::now_ms();
    if now.saturating_sub(LAST_MS.load(SeqCst)) < CHECK_EVERY_MS {
        return false;
    }
    locked(false, |w| {
        let next = w.next(now);
        LAST_MS.store(now, SeqCst);
        match next {
            Next::Skip => false,
            Next::Open => w.opened(open(), now),
            Next::Poll(fd) => match w.polled(poll(fd), now) {
                Ok(stale) => stale,
                Err(fd) => w.drained(drain(fd), now),
            },
        }
    })
    .unwrap_or(false)
}

/// The program is closing `fd`, or `dup2` is about to replace it: if it is the
/// watcher's, the number is the program's from now on (waits for a look in progress,
/// so that the look reads the watcher's socket, not whatever the number names next).
pub(crate) fn closing(fd: c_int) {
    if fd >= 0 && FD.load(SeqCst) == fd {
        locked(true, |w| w.closing(fd));
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
/// (a read here would take the parent's messages), so the child closes its copy and
/// opens its own at its next look; a lock held by a thread of the parent is freed.
pub(crate) fn after_fork_in_child() {
    LOCK.store(false, SeqCst);
    // SAFETY: the only thread of the child; nobody holds the lock.
    let fd = unsafe { (*STATE.0.get()).after_fork() };
    FD.store(-1, SeqCst);
    LAST_MS.store(0, SeqCst);
    if let Some(fd) = fd {
        // SAFETY: the child's copy of the watcher's descriptor, closed once.
        unsafe { real::close(fd) };
    }
}

/// `socket(PF_ROUTE, SOCK_RAW, AF_UNSPEC)`: every family's messages; close-on-exec,
/// non-blocking, tagged, and never on 0, 1 or 2 (a daemon that closed them opens
/// `/dev/null` expecting to get them back).
fn open() -> Result<c_int, c_int> {
    // SAFETY: plain system calls on a descriptor this function owns until it returns
    // it; the option value is a live timeval of the stated size.
    unsafe {
        let mut fd = real::socket(libc::PF_ROUTE, libc::SOCK_RAW, libc::AF_UNSPEC);
        if fd < 0 {
            return Err(errno());
        }
        if fd <= 2 {
            let high = real::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3);
            let e = errno();
            real::close(fd);
            if high < 0 {
                return Err(e);
            }
            fd = high;
        }
        let tag = libc::timeval {
            tv_sec: TAG_SEC,
            tv_usec: TAG_USEC,
        };
        let fl = real::fcntl(fd, libc::F_GETFL, 0);
        if fl < 0
            || real::fcntl(fd, libc::F_SETFL, (fl | libc::O_NONBLOCK) as usize) < 0
            || real::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC as usize) < 0
            || real::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tag as *const libc::timeval).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            ) < 0
        {
            let e = errno();
            real::close(fd);
            return Err(e);
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
    let n = unsafe { libc::poll(&mut p, 1, 0) };
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

/// Reads what is queued (at most 64 reads: a storm of messages counts as a change and
/// the rest waits for the next look).
fn drain(fd: c_int) -> Drained {
    if !tagged(fd) {
        return Drained::NotOurs;
    }
    let mut buf = [0u8; 2048];
    let mut stale = false;
    for _ in 0..64 {
        // SAFETY: buf is writable for its length; no address is asked for.
        let n = unsafe {
            real::recvfrom(
                fd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            match errno() {
                libc::EAGAIN => return Drained::Read { stale },
                libc::EINTR => continue,
                // The socket overflowed: messages were lost.
                libc::ENOBUFS => stale = true,
                _ => return Drained::Failed,
            }
            continue;
        }
        if n == 0 {
            return Drained::Read { stale };
        }
        stale |= parse_all(&buf[..n as usize])
            .iter()
            .any(|m| m.invalidates_snapshot());
    }
    Drained::Read { stale: true }
}
