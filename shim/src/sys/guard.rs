//! The one hook shape's guard, for every entry point of the engine (`crate::entry`):
//! [`pre`] runs the shim's part of a socket hook with panics caught and errno kept;
//! [`pre_lookup`] / [`pre_lookup_offer`] run a name lookup's in a section with the
//! thread's cancellation disabled and offer a cancellation point after it; [`no_cancel`]
//! runs whatever must reach the C library's cancellation points (the engine's start-up,
//! the DNS configuration read); [`Window`] makes such a section survive a non-local
//! exit. The invariants these keep are the entry points' (`crate::entry::socket`).
//!
//! Shared by Linux and macOS: what it needs of the OS comes from `sys` (errno, the
//! signal mask, the alternate signal stack, a `longjmp` buffer's target, the
//! cancellation numbers and which pthread keys live in the thread itself). On macOS a
//! `pthread_cancel` is acted upon at a cancellation point by `pthread_exit`, which runs
//! the cleanup handlers and does not unwind through Rust frames the way glibc's forced
//! unwind does; the sections are kept the same there (cancellation disabled around a
//! lookup, one point offered after it), and `jmp_target_sp` is unknown on macOS, so
//! a `longjmp` the stub reports is always taken to leave the window.
//!
//! Neither [`pre_lookup_offer`], [`pre_lookup`] nor [`cancel_point`] may be forced
//! inline (`#[inline(always)]`) into a hook: glibc's forced unwind could not leave the
//! release build's hook frame (test `release_build_aborted_when_a_lookup_was_cancelled`).

use libc::{c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};

/// What a guarded part of a hook gave: its value, or a caught panic (the call then
/// fails closed or lets the real call stand).
pub(crate) enum Pre<T> {
    Run(T),
    Panicked,
}

unsafe extern "C" {
    fn pthread_setcancelstate(state: c_int, old: *mut c_int) -> c_int;
    fn pthread_testcancel();
}
// The C library's numbers (glibc's 0 and 1; Darwin's are the other way round).
use super::{PTHREAD_CANCEL_DISABLE, PTHREAD_CANCEL_ENABLE};

/// The pthread key whose per-thread slot records the thread's outermost window (a
/// section with cancellation disabled: [`no_cancel`], a name lookup; `usize::MAX`: none). Only a key below 32 is used: glibc keeps those in the thread
/// descriptor itself, so reading and writing the slot is a plain load and store, with
/// no allocation — safe in a signal handler. (A process that created 32 keys before
/// the engine loaded gets no record: cancellation is still disabled and restored
/// around each window, only a window left by `siglongjmp` is not repaired.)
static WINDOW_KEY: AtomicUsize = AtomicUsize::new(usize::MAX);
/// The keys whose slots live in the thread itself (glibc: the first 32; Darwin: every
/// key, in the thread's TSD array): `sys::KEYS_IN_DESCRIPTOR`.
use super::KEYS_IN_DESCRIPTOR;

/// Creates [`WINDOW_KEY`] (engine initialisation).
pub(crate) fn init_windows() {
    let mut k: libc::pthread_key_t = 0;
    // SAFETY: k is valid for writes; no destructor.
    if unsafe { libc::pthread_key_create(&mut k, None) } == 0
        && k < KEYS_IN_DESCRIPTOR as libc::pthread_key_t
    {
        WINDOW_KEY.store(k as usize, Ordering::Release);
    }
}

const ACTIVE: usize = 1;
const WAS_ENABLED: usize = 2;

/// The token a live window keeps in its own stack frame at address `at`: a stale
/// record's frame has since been overwritten by whatever ran there.
fn token(at: usize) -> u64 {
    (at as u64) ^ 0x6d69_6673_6869_6d21
}

/// The outermost window of a thread (a section with cancellation disabled): the state
/// to restore and where it lives. Nested windows (a lookup in a signal handler that
/// interrupted another) leave both alone.
struct Window {
    /// `Some(enabled)`: this is the outermost window; cancellation was enabled before.
    outer: Option<bool>,
}

impl Window {
    /// Enters a window whose frame holds `canary` (which the caller set to
    /// `token(&canary)`). Signals are blocked while the cancellation state and its
    /// record change, so that a handler's `siglongjmp` never lands between the two (the
    /// state changed, no record to repair it by).
    fn enter(canary: &u64) -> Window {
        super::with_signals_blocked(|| Self::enter_now(canary))
    }

    fn enter_now(canary: &u64) -> Window {
        let here = canary as *const u64 as usize;
        let key = WINDOW_KEY.load(Ordering::Acquire);
        if key != usize::MAX {
            // SAFETY: key was created by init_windows; getspecific only reads the slot.
            let v = unsafe { libc::pthread_getspecific(key as libc::pthread_key_t) } as usize;
            if v & ACTIVE != 0 {
                let at = v & !7;
                let live = if here < at {
                    // Our frame is below the recorded one: it is an outer frame of ours
                    // if its token is still there. The address is inside this thread's
                    // stack above our frame, so it is mapped.
                    // SAFETY: see above; a volatile read of 8 aligned bytes.
                    unsafe { std::ptr::read_volatile(at as *const u64) == token(at) }
                } else {
                    // Above (or at) the recorded frame: that frame is gone — unless this
                    // is a signal handler running on an alternate stack.
                    super::on_alt_stack()
                };
                if live {
                    return Window { outer: None };
                }
                // Left by a non-local exit: give the thread its cancellation state back.
                restore_abandoned(v);
            }
        }
        let mut old = PTHREAD_CANCEL_ENABLE;
        // SAFETY: old is valid for writes.
        unsafe { pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &mut old) };
        let enabled = old == PTHREAD_CANCEL_ENABLE;
        if key != usize::MAX {
            let v = here | ACTIVE | if enabled { WAS_ENABLED } else { 0 };
            // SAFETY: key < 32: the slot lives in the thread descriptor (no allocation).
            unsafe { libc::pthread_setspecific(key as libc::pthread_key_t, v as *const c_void) };
        }
        Window {
            outer: Some(enabled),
        }
    }

    /// Leaves the window; `true` when it was the outermost one and cancellation was
    /// enabled before it (a name lookup then offers a cancellation point).
    fn leave(self) -> bool {
        let Some(enabled) = self.outer else {
            return false;
        };
        // As in enter: the record and the state change together.
        super::with_signals_blocked(|| Self::leave_now(enabled))
    }

    fn leave_now(enabled: bool) -> bool {
        let key = WINDOW_KEY.load(Ordering::Acquire);
        if key != usize::MAX {
            // SAFETY: as in enter.
            unsafe { libc::pthread_setspecific(key as libc::pthread_key_t, std::ptr::null()) };
        }
        let mut old = 0;
        let state = if enabled {
            PTHREAD_CANCEL_ENABLE
        } else {
            PTHREAD_CANCEL_DISABLE
        };
        // SAFETY: old is valid for writes.
        unsafe { pthread_setcancelstate(state, &mut old) };
        enabled
    }
}

/// Gives the thread the cancellation state an abandoned window record `v` saved.
fn restore_abandoned(v: usize) {
    if v & WAS_ENABLED != 0 {
        let mut old = 0;
        // SAFETY: old is valid for writes.
        unsafe { pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &mut old) };
    }
}

/// The thread is about to `longjmp` to `env` (the stub's hook says so). If the jump
/// leaves the window the thread has open (a signal handler jumping out of
/// `getaddrinfo`), the window is repaired now, so that a thread which makes no hook
/// call afterwards (or makes one from deeper in its stack, where the window's token may
/// still stand) is not left with cancellation disabled. A jump that stays inside the
/// window (a handler on top of it jumping within itself) must leave it alone: its work
/// goes on, and with cancellation enabled a `pthread_cancel` would meet `catch_unwind`.
pub(crate) fn abandon_window(env: *const c_void) {
    let key = WINDOW_KEY.load(Ordering::Acquire);
    if key == usize::MAX {
        return;
    }
    // SAFETY: as in Window::enter.
    let v = unsafe { libc::pthread_getspecific(key as libc::pthread_key_t) } as usize;
    if v & ACTIVE == 0 || !jump_leaves(env, v & !7) {
        return;
    }
    restore_abandoned(v);
    // SAFETY: as in Window::enter.
    unsafe { libc::pthread_setspecific(key as libc::pthread_key_t, std::ptr::null()) };
}

/// Whether a jump to `env` lands outside the window whose frame is at `window`: its
/// target stack pointer is above that frame (the stack grows down), and on the same
/// stack (a handler on an alternate stack jumping within that stack stays inside).
/// Where the target cannot be read, it is taken to leave.
fn jump_leaves(env: *const c_void, window: usize) -> bool {
    let Some(target) = super::jmp_target_sp(env) else {
        return true;
    };
    match super::alt_stack_range() {
        Some(alt) => match (alt.contains(&window), alt.contains(&target)) {
            (true, true) | (false, false) => target > window,
            (true, false) => true,
            (false, true) => false,
        },
        None => target > window,
    }
}

/// An errno a hook fails with (the kernel's, or the shim's refusal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Errno(pub(crate) c_int);

impl Errno {
    /// What a call fails with when the shim's part of it panicked (a bug): the call
    /// fails closed, as when no interface can be reached.
    pub(crate) const PANICKED: Errno = Errno(libc::ENETUNREACH);

    /// Sets errno and gives the C failure value (-1) in the hook's return type.
    pub(crate) fn fail<R: From<i8>>(self) -> R {
        super::set_errno(self.0);
        R::from(-1)
    }
}

impl<T> Pre<T> {
    /// The value, or `panicked` when the guarded part panicked.
    #[inline]
    pub(crate) fn or_panicked(self, panicked: T) -> T {
        match self {
            Pre::Run(v) => v,
            Pre::Panicked => panicked,
        }
    }
}

/// The shape of a hook that asks the core before its real call: [`pre`], with the core's
/// refusal and a panic (fail closed: [`Errno::PANICKED`]) both an [`Errno`] to
/// [`fail`](Errno::fail) with.
#[inline]
pub(crate) fn decide<T>(f: impl FnOnce() -> Result<T, c_int>) -> Result<T, Errno> {
    match pre(f) {
        Pre::Run(Ok(v)) => Ok(v),
        Pre::Run(Err(e)) => Err(Errno(e)),
        Pre::Panicked => Err(Errno::PANICKED),
    }
}

/// The shape of the shim's bookkeeping after a real call (a new fd, a closed one):
/// [`pre`], whose outcome does not change the call's (a panic lets the real call
/// stand).
#[inline]
pub(crate) fn note(f: impl FnOnce()) {
    let _ = pre(f);
}

/// Runs `f` with errno kept as it was (the real call's, for the program).
#[inline]
pub(crate) fn keep_errno<T>(f: impl FnOnce() -> T) -> T {
    let saved = super::errno();
    let r = f();
    super::set_errno(saved);
    r
}

/// Runs the shim's part of a socket hook: panics caught, errno kept as it was. It
/// reaches no cancellation point (the module doc); what must, runs in [`no_cancel`].
#[inline]
pub(crate) fn pre<T>(f: impl FnOnce() -> T) -> Pre<T> {
    let saved = super::errno();
    let r = catch_unwind(AssertUnwindSafe(f));
    super::set_errno(saved);
    match r {
        Ok(v) => Pre::Run(v),
        Err(_) => Pre::Panicked,
    }
}

/// Runs `f` in a section with the thread's cancellation disabled, whose outermost
/// instance also says whether cancellation was enabled before it (`true`: the caller
/// may offer a cancellation point afterwards). A panic in `f` ends the section and goes
/// on unwinding. Never inlined: its `catch_unwind` is a landing pad, and in the frame
/// of an entry point (`getnameinfo`) it gave that frame a call-site table in which the
/// [`cancel_point`] after it had no entry — glibc's forced unwind then aborted.
#[inline(never)]
fn section<T>(f: impl FnOnce() -> T) -> (std::thread::Result<T>, bool) {
    let mut canary = 0u64;
    let at = &raw mut canary;
    // SAFETY: writing our own local, volatile so that the token is in memory (where a
    // nested section reads it) before the section is entered.
    unsafe { std::ptr::write_volatile(at, token(at as usize)) };
    let w = Window::enter(std::hint::black_box(&canary));
    let r = catch_unwind(AssertUnwindSafe(f));
    let cancellable = w.leave();
    // Keep the canary alive (in memory) for the whole section.
    std::hint::black_box(&canary);
    (r, cancellable)
}

/// Runs `f`, which may reach a cancellation point of the C library (`open`, `read`,
/// `poll`, ...), with the thread's cancellation disabled: the engine's start-up and the
/// DNS configuration reads on a socket hook's path. Nests; a panic goes on unwinding
/// after the section ends.
pub(crate) fn no_cancel<T>(f: impl FnOnce() -> T) -> T {
    match section(f).0 {
        Ok(v) => v,
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// [`pre`] for a name lookup: the whole of it is a [`no_cancel`] section (the resolver
/// waits in `poll`, reads files), and since the shim's work is the call's real work
/// (which may wait for seconds), once it is done and cancellation is enabled again, a
/// cancellation requested meanwhile is acted upon here, as glibc's own `getaddrinfo`
/// would have at its `poll`. The forced unwind leaves from this frame, outside
/// `catch_unwind`.
///
/// `offer`: only an entry point the program called offers that cancellation point; a
/// lookup one entry point makes through another (`gethostbyname` → `gethostbyname2_r`,
/// a `getaddrinfo_a` request) passes `false`: glibc's forced unwind cannot cross the
/// outer entry point's frame and the process would abort. Neither this function nor
/// [`cancel_point`] may be forced inline into the hook: with `#[inline(always)]` the
/// forced unwind could not leave the release build's hook frame either (every lookup
/// cancelled in a release build aborted; measured with a thread cancelled inside
/// `getaddrinfo`, `gethostbyname(_r)`, `gethostbyname2`, `gethostbyaddr(_r)`).
pub(crate) fn pre_lookup_offer<T>(offer: bool, f: impl FnOnce() -> T) -> Pre<T> {
    let saved = super::errno();
    let (r, cancellable) = section(f);
    super::set_errno(saved);
    if offer && cancellable {
        cancel_point();
    }
    match r {
        Ok(v) => Pre::Run(v),
        Err(_) => Pre::Panicked,
    }
}

/// [`pre_lookup_offer`] for an entry point the program called.
pub(crate) fn pre_lookup<T>(f: impl FnOnce() -> T) -> Pre<T> {
    pre_lookup_offer(true, f)
}

/// A cancellation point (`pthread_testcancel`). Never inlined: the forced unwind
/// must start in a frame of its own, with no call-site table; inlined into an entry
/// point that has one (`getnameinfo`), the unwinder found this call site in none of
/// its entries and glibc aborted the process (test
/// `release_build_aborted_when_a_reverse_lookup_was_cancelled`).
#[inline(never)]
pub(crate) fn cancel_point() {
    // SAFETY: no preconditions. If a cancellation is pending, glibc unwinds from here
    // through this frame and the stub's (neither holds anything to release).
    unsafe { pthread_testcancel() };
}
