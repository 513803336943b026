//! `libmifshim.dylib`, the object `DYLD_INSERT_LIBRARIES` puts into every process on
//! macOS: the same small `std`-free stub as Linux's, interposing the macOS way.
//!
//! * **Interposition**: a `__DATA,__interpose` section of `{replacement, replacee}`
//!   tuples (`mifshim_abi::Interpose`), generated from the one list of hooked calls
//!   (`mifshim_abi::hooked_calls!`, the calls macOS's C library lacks `#[cfg]`'d out)
//!   by `mifshim_abi::interpose_table!`, `#[used]` so that `-dead_strip` keeps it. dyld
//!   binds every other image's references to a replacee (the program's, every library's,
//!   the shared cache's, and those of images `dlopen`ed later) to its replacement; the
//!   image holding the tuples is left alone (dyld's `ImageLoader::InterposeTuple`,
//!   `neverImage`). So the replacements are private functions, exported under no name,
//!   and **the original is this object's own reference to the C library's function**
//!   (`real::<name>`, an ordinary import from libSystem): no `dlsym`, no
//!   `RTLD_NEXT`, nothing to find on a first call.
//! * **The engine** (`libmifshim_engine.dylib`, beside this file) is `dlopen`ed on the
//!   first call that needs a decision (`connect`, `connectx`, a send, `bind`,
//!   `listen`, `setsockopt`, a name lookup), an `AF_INET`/`AF_INET6` `socket()`, the installation
//!   of a signal handler (`sigaction`, `signal`: so that no handler has to load it) or
//!   before a `fork` (`pthread_atfork`), checked (`mifshim_abi::Engine::check`) and
//!   handed the originals (`mifshim_abi::Reals`, built from the references above);
//!   from then on every hook is forwarded to it. The engine is an image of its own, so
//!   dyld interposes *its* references too: it must reach the C library's hooked calls
//!   through the `Reals` it is given (as on Linux), never by name.
//! * Bookkeeping calls made before the load (`socket` of other families, `close`,
//!   `dup*`, `accept`, receives, `freeaddrinfo`) go to the C library; a steered call
//!   whose engine cannot be loaded fails closed (`ENETUNREACH`, `EAI_FAIL`, NULL) after
//!   one line on standard error.
//!
//! **Why the stub/engine split is kept on macOS**: it pays for the same reason as on
//! Linux, and it costs nothing in correctness. Every process of a steered tree that
//! dyld does not restrict inherits `DYLD_INSERT_LIBRARIES` — shells, `sed`, compilers —
//! and most never open an INET socket; this object binds a few dozen libSystem symbols
//! and runs one initialiser, where the engine (std, the policy parser, the resolver)
//! binds hundreds and carries far more data to fix up and page in. And the engine needs
//! the stub's originals anyway: a single image would escape interposition of its own
//! references, but the engine's calls of hooked functions already go through `Reals`
//! (`sys::real` on Linux), so nothing would be simpler with one image. The cost was not
//! measured on a Mac (none here); the argument is the Linux measurement's
//! (BENCHMARKS.md, "Issue 16") and dyld's per-symbol binding.
//!
//! Sockets passed by `SCM_RIGHTS` are marked shared after a `sendmsg` and forgotten
//! after a `recvmsg`, the control data walked in macOS's layout
//! (`mifshim_abi::darwin`). What the Linux stub does and this one does not (yet): the
//! datagram fast path and the stub-side `socket`/`close` records (the engine is
//! entered for them; the fast path's key reads Linux's `sockaddr` layout).
//! `posix_spawn(p)` and `vfork` (the sockets marked shared, as `fork`'s atfork
//! handler marks them), the `longjmp` family and the `$NOCANCEL` twins of the
//! cancellable calls it hooks are interposed too (below).
//!
//! **Not linked or run**: this file is type-checked and linted for
//! `x86_64-apple-darwin` and `aarch64-apple-darwin` (`scripts/apple-check.sh`), nothing
//! more.

use core::ffi::{c_char, c_int, c_void};
use core::ptr::null_mut;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicUsize, Ordering::*};
use mifshim_abi::darwin::{TWIN_ACTIVE, twin_frame, twin_token};
use mifshim_abi::types::*;
use mifshim_abi::{Engine, Slot, errno, set_errno, sig};
use mifshim_fastpath::Shared;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: abort has no preconditions.
    unsafe { libc::abort() }
}

// The precompiled `core` refers to the unwinder's personality routine even when this
// crate is built with `panic = "abort"` (as on Linux, see `linux.rs`); defined here,
// private to this image (`.private_extern`: not exported, so it cannot come before
// another image's), never called.
core::arch::global_asm!(
    ".globl _rust_eh_personality",
    ".private_extern _rust_eh_personality",
    ".p2align 2",
    "_rust_eh_personality:",
    "ret",
);

// ---------------------------------------------------------------------------------
// Process state
// ---------------------------------------------------------------------------------

const UNKNOWN: u8 = 0;
const INERT: u8 = 1;
const ACTIVE: u8 = 2;
/// Whether this process is steered at all (decided by the initialiser, or by the first
/// hook that runs before it).
static MODE: AtomicU8 = AtomicU8::new(UNKNOWN);

const NONE: u8 = 0;
const LOADING: u8 = 1;
const READY: u8 = 2;
const FAILED: u8 = 3;
/// The engine's state: `NONE`, then `LOADING` (one thread claimed the load), then
/// `READY` or `FAILED` for good.
static ENGINE: AtomicU8 = AtomicU8::new(NONE);

/// The loading thread (`pthread_self`), so that a hook it re-enters during the load
/// does not wait for itself.
static LOADER: AtomicUsize = AtomicUsize::new(0);

/// `argv[0]` as the initialiser saw it.
static ARGV0: AtomicPtr<c_char> = AtomicPtr::new(null_mut());

/// The engine's per-fd table, once loaded (`mifshim_abi::Engine::fast`).
static FAST: AtomicPtr<Shared> = AtomicPtr::new(null_mut());

/// The engine's `after_fork_child`, once loaded.
static AFTER_FORK_CHILD: Slot<mifshim_abi::AfterForkChild> = Slot::new();

/// The longest path the stub builds (`PATH_MAX` on macOS).
const PATH_MAX: usize = 1024;

/// A NUL-terminated path built in a fixed buffer; `None` from [`Path::push`] when it
/// does not fit.
struct Path {
    buf: [u8; PATH_MAX],
    len: usize,
}

impl Path {
    const fn new() -> Self {
        Path {
            buf: [0; PATH_MAX],
            len: 0,
        }
    }

    fn push(&mut self, s: &[u8]) -> Option<()> {
        // One byte kept for the NUL.
        let end = self.len.checked_add(s.len()).filter(|&e| e < PATH_MAX)?;
        self.buf.get_mut(self.len..end)?.copy_from_slice(s);
        self.len = end;
        *self.buf.get_mut(end)? = 0;
        Some(())
    }

    /// Drops everything after the last `/` (keeps the directory, with its slash).
    fn dir(&mut self) {
        let keep = self.buf[..self.len]
            .iter()
            .rposition(|&b| b == b'/')
            .map_or(0, |i| i + 1);
        self.len = keep;
        self.buf[keep] = 0;
    }

    fn as_ptr(&self) -> *const c_char {
        self.buf.as_ptr().cast()
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The bytes of a NUL-terminated C string.
///
/// # Safety
/// `p` is a valid NUL-terminated string that outlives the result.
unsafe fn cstr<'a>(p: *const c_char) -> &'a [u8] {
    // SAFETY: the caller's contract.
    unsafe { core::ffi::CStr::from_ptr(p) }.to_bytes()
}

/// A variable's value, `None` when unset or empty (an empty value is unset, as for the
/// Linux stub and the engine).
fn var(name: &core::ffi::CStr) -> Option<&'static [u8]> {
    // SAFETY: the name is NUL-terminated; getenv returns NULL or a NUL-terminated
    // string of the environment, which lives as long as the process does not change
    // that variable (the stub reads it at once).
    let p = unsafe { libc::getenv(name.as_ptr()) };
    // SAFETY: as above.
    (!p.is_null())
        .then(|| unsafe { cstr(p) })
        .filter(|v| !v.is_empty())
}

/// Whether the file `parts` name exists (`access(F_OK)`; errno kept).
fn file_exists(parts: &[&[u8]]) -> bool {
    let mut path = Path::new();
    if parts.iter().any(|p| path.push(p).is_none()) {
        return false;
    }
    let saved = errno();
    // SAFETY: path is NUL-terminated.
    let r = unsafe { libc::access(path.as_ptr(), libc::F_OK) };
    set_errno(saved);
    r == 0
}

/// Is this process steered? The rule of `mifshim_abi::steering`, then the policy
/// files, as the Linux stub and the engine decide.
fn decide_mode() -> u8 {
    use mifshim_abi::Steering;
    let disable = var(c"MIFSHIM_DISABLE");
    let via = var(c"MIFSHIM_VIA").is_some();
    let policy = var(c"MIFSHIM_POLICY").is_some();
    match mifshim_abi::steering(disable, via, policy) {
        Steering::Off => return INERT,
        Steering::On => return ACTIVE,
        Steering::IfPolicyFile => {}
    }
    let user = match (var(c"XDG_CONFIG_HOME"), var(c"HOME")) {
        (Some(x), _) => file_exists(&[x, mifshim_abi::POLICY_UNDER_XDG.as_bytes()]),
        (None, Some(h)) => file_exists(&[h, mifshim_abi::POLICY_UNDER_HOME.as_bytes()]),
        (None, None) => false,
    };
    if user || file_exists(&[mifshim_abi::SYSTEM_POLICY.as_bytes()]) {
        ACTIVE
    } else {
        INERT
    }
}

/// Decides (once) and, for a steered process, registers the fork handlers.
fn decide() -> u8 {
    let m = decide_mode();
    if MODE.compare_exchange(UNKNOWN, m, AcqRel, Acquire).is_ok() && m == ACTIVE {
        create_twin_key();
        // SAFETY: registering handlers has no preconditions; this image is never
        // unloaded (an inserted library never is).
        unsafe {
            libc::pthread_atfork(
                Some(before_fork),
                Some(after_fork_parent),
                Some(after_fork_child),
            )
        };
    }
    MODE.load(Acquire)
}

fn active() -> bool {
    match MODE.load(Acquire) {
        ACTIVE => true,
        INERT => false,
        // A hook ran before the initialiser (another image's initialiser made a socket
        // call): decide now.
        _ => decide() == ACTIVE,
    }
}

/// The initialiser (`__mod_init_func`: dyld calls it with `argc, argv, envp, apple`).
extern "C" fn constructor(_argc: c_int, argv: *const *const c_char, _envp: *const *const c_char) {
    if !argv.is_null() {
        // SAFETY: dyld passes the process's argv to initialisers.
        ARGV0.store(unsafe { *argv }.cast_mut(), Release);
    }
    if MODE.load(Acquire) == UNKNOWN {
        decide();
    }
}

#[used]
#[unsafe(link_section = "__DATA,__mod_init_func")]
static CONSTRUCTOR: extern "C" fn(c_int, *const *const c_char, *const *const c_char) = constructor;

/// Loads the engine in the parent before a `fork`, so that the child never calls
/// `dlopen`, and marks every socket shared ([`share_with_child`]).
unsafe extern "C" fn before_fork() {
    if active() {
        ensure_engine();
        share_with_child();
    }
}

/// A child process is about to be made: it will hold the parent's sockets, so neither
/// side may rely on what the engine set on them any more (`mifshim_fastpath::SHARED`:
/// a unicast interface is checked again, a device binding asked of the kernel). Every
/// socket counts, also one with close-on-exec: the child may be handed it anyway (a
/// `posix_spawn` file action `adddup2(fd, fd)`, `POSIX_SPAWN_CLOEXEC_DEFAULT` with an
/// inherit action), and the parent's flag at this moment does not say. As the Linux
/// stub does.
fn share_with_child() {
    if let Some(shared) = shared() {
        mifshim_fastpath::mark_all_shared(shared);
    }
}

/// In the parent after a `fork`: marks the sockets shared again, for one another
/// thread made between the mark and the kernel's copy of the descriptor table.
unsafe extern "C" fn after_fork_parent() {
    share_with_child();
}

/// In the child: lets the engine (if loaded) clear what a thread of the parent held.
unsafe extern "C" fn after_fork_child() {
    if let Some(f) = AFTER_FORK_CHILD.get() {
        // SAFETY: the engine's entry point; no preconditions.
        unsafe { f() };
    }
}

// ---------------------------------------------------------------------------------
// The engine
// ---------------------------------------------------------------------------------

/// The stub's own waits and writes: the `$NOCANCEL` entry points (not hooked, so
/// called by name), so that no hook — a twin's above all — reaches a cancellation
/// point through them.
mod own_io {
    use core::ffi::{c_int, c_void};
    unsafe extern "C" {
        #[link_name = "write$NOCANCEL"]
        pub(super) fn write(fd: c_int, buf: *const c_void, n: usize) -> isize;
        #[link_name = "poll$NOCANCEL"]
        pub(super) fn poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout_ms: c_int) -> c_int;
    }
}

/// Writes `parts` to standard error as one line (`write(2)` is not hooked).
fn write_err(parts: &[&[u8]]) {
    let saved = errno();
    for p in parts {
        // SAFETY: p is a live byte slice.
        unsafe { own_io::write(2, p.as_ptr().cast(), p.len()) };
    }
    set_errno(saved);
}

static WARNED_RECURSIVE: AtomicBool = AtomicBool::new(false);
static WARNED_SLOW: AtomicBool = AtomicBool::new(false);

fn warn_once(flag: &AtomicBool, line: &[u8]) {
    if !flag.swap(true, AcqRel) {
        write_err(&[line]);
    }
}

fn engine_ready() -> bool {
    ENGINE.load(Acquire) == READY
}

/// How long a thread waits for another thread's load before it fails its call (there
/// only so that a deadlock the program's own locks build around `dlopen` ends).
const LOAD_WAIT_LIMIT_MS: u32 = 30_000;

/// Loads the engine once; `true` when it is ready. Keeps errno. One thread claims the
/// load and does it with every signal blocked; the others sleep a millisecond at a
/// time until it is published.
fn ensure_engine() -> bool {
    match ENGINE.load(Acquire) {
        READY => return true,
        FAILED => return false,
        _ => {}
    }
    let saved = errno();
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() } as usize;
    let ready = match ENGINE.compare_exchange(NONE, LOADING, AcqRel, Acquire) {
        Ok(_) => {
            LOADER.store(me, Release);
            // SAFETY: a zeroed sigset_t is valid storage for the old mask; `all` is
            // filled by sigfillset before use.
            let (mut all, mut old) = unsafe { (core::mem::zeroed(), core::mem::zeroed()) };
            // SAFETY: both masks are valid sigset_t storage.
            unsafe {
                libc::sigfillset(&mut all);
                libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
            }
            let ok = load_engine();
            ENGINE.store(if ok { READY } else { FAILED }, Release);
            // SAFETY: old is the mask saved above.
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, null_mut()) };
            ok
        }
        Err(_) if LOADER.load(Acquire) == me => {
            warn_once(
                &WARNED_RECURSIVE,
                b"mifshim: a socket call made while this thread loads the engine fails closed\n",
            );
            false
        }
        Err(_) => wait_for_load(),
    };
    set_errno(saved);
    ready
}

/// Waits for the load another thread is doing.
fn wait_for_load() -> bool {
    for _ in 0..LOAD_WAIT_LIMIT_MS {
        match ENGINE.load(Acquire) {
            READY => return true,
            FAILED => return false,
            _ => {}
        }
        // A millisecond's sleep that is no cancellation point: a `poll` of nothing.
        // SAFETY: no descriptors to read.
        unsafe { own_io::poll(null_mut(), 0, 1) };
    }
    warn_once(
        &WARNED_SLOW,
        b"mifshim: waited 30 s for another thread to load the engine; failing closed\n",
    );
    false
}

/// `<dir of libmifshim.dylib>/libmifshim_engine.dylib`, or `None` if this image's own
/// path is unknown or the engine's does not fit.
fn engine_path() -> Option<Path> {
    // SAFETY: a zeroed Dl_info is valid; dladdr fills it for an address inside a loaded
    // image (our own initialiser).
    let mut info: libc::Dl_info = unsafe { core::mem::zeroed() };
    // SAFETY: as above.
    let ok = unsafe { libc::dladdr(constructor as *const c_void, &mut info) };
    if ok == 0 || info.dli_fname.is_null() {
        return None;
    }
    let mut path = Path::new();
    // SAFETY: dli_fname is a NUL-terminated path owned by dyld.
    path.push(unsafe { cstr(info.dli_fname) })?;
    path.dir();
    if path.len == 0 {
        path.push(b"./")?;
    }
    path.push(b"libmifshim_engine.dylib")?;
    Some(path)
}

/// Loads, checks and initialises the engine.
fn load_engine() -> bool {
    let Some(path) = engine_path() else {
        write_err(&[
            b"mifshim: cannot find libmifshim.dylib's own path (for its engine's); failing closed\n",
        ]);
        return false;
    };
    // SAFETY: path is NUL-terminated; RTLD_LOCAL keeps the engine's symbols out of the
    // global scope.
    let h = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if h.is_null() {
        // SAFETY: dlerror returns NULL or a NUL-terminated message.
        let e = unsafe { libc::dlerror() };
        let msg: &[u8] = if e.is_null() {
            b"unknown error"
        } else {
            // SAFETY: as above.
            unsafe { cstr(e) }
        };
        write_err(&[
            b"mifshim: cannot load ",
            path.bytes(),
            b": ",
            msg,
            b"; failing closed\n",
        ]);
        return false;
    }
    // SAFETY: the symbol name is NUL-terminated (dlsym adds the leading underscore);
    // h is a valid handle.
    let sym = unsafe { libc::dlsym(h, mifshim_abi::ENGINE_SYMBOL.as_ptr()) };
    // SAFETY: when present, the symbol is some engine build's `Engine`, whose version
    // and size lead in every version.
    let Some(engine) = (unsafe { Engine::check(sym.cast()) }) else {
        write_err(&[
            b"mifshim: ",
            path.bytes(),
            b" is not a mifshim engine of this version; failing closed\n",
        ]);
        return false;
    };
    bind_engine(engine);
    AFTER_FORK_CHILD.set(Some(engine.after_fork_child));
    JUMPING.set(Some(engine.jumping));
    // SAFETY: REALS and OWN_CALLS are statics; ARGV0 is NULL or argv[0].
    let ok = unsafe { (engine.init)(&REALS, &OWN_CALLS, ARGV0.load(Acquire)) == 0 };
    if ok {
        FAST.store(engine.fast.cast_mut(), Release);
    }
    ok
}

/// The engine's table, if it is loaded.
fn shared() -> Option<&'static Shared> {
    let p = FAST.load(Acquire);
    // SAFETY: FAST is null or points to the engine's static table, which lives as long
    // as the engine, which is never unloaded.
    (!p.is_null()).then(|| unsafe { &*p })
}

// ---------------------------------------------------------------------------------
// The list's routing, as this stub does it (the names the list's `stub` parts use)
// ---------------------------------------------------------------------------------

/// Whether this thread is the one loading the engine (a hook reached from the load
/// itself: the engine's start-up makes C library calls, which dyld interposes too).
fn loading_here() -> bool {
    // SAFETY: pthread_self has no preconditions.
    ENGINE.load(Acquire) == LOADING
        && LOADER.load(Acquire) == unsafe { libc::pthread_self() } as usize
}

/// `socket()` of an INET family loads the engine before the socket exists; the engine
/// then records it (no stub-side record on macOS). A socket the engine's own start-up
/// makes goes to the C library (it needs no decision, so it does not fail).
fn socket_direct(domain: c_int, _protocol: c_int) -> bool {
    if (domain == libc::AF_INET || domain == libc::AF_INET6) && active() && !loading_here() {
        let _ = ensure_engine();
    }
    false
}

/// A `sendto` without a destination (a connected socket: its interface was chosen at
/// `connect`) needs nothing from the engine. No datagram fast path on macOS.
fn sendto_direct(_fd: c_int, addr: *const sockaddr, _len: socklen_t) -> bool {
    addr.is_null()
}

/// Every `sendmsg` goes through the engine (which reads the program's `msghdr` with
/// its fault checks; the stub reads nothing of it).
fn sendmsg_direct(_fd: c_int, _msg: *const msghdr) -> bool {
    false
}

/// `close` goes through the engine, which forgets the fd (and sees its log file's).
fn close_direct(_fd: c_int) -> bool {
    false
}

/// Receives (and `getpeername`) need the engine only on a socket whose DNS traffic it
/// redirected.
fn not_redirected(fd: c_int) -> bool {
    shared().is_some_and(|s| {
        mifshim_fastpath::slot(&s.fds, fd)
            .is_none_or(|slot| slot.entry.load(Acquire) & mifshim_fastpath::REDIRECTED == 0)
    })
}

/// After `socket` straight to the C library: nothing (no stub-side records on macOS:
/// `socket_direct` never sends an INET socket there once the engine is loaded, and the
/// engine asks the kernel about sockets it has not seen).
fn socket_done(_fd: c_int, _args: (c_int, c_int, c_int)) {}

/// Calls `f` for every fd an `SCM_RIGHTS` control message in `msg` carries, walked in
/// macOS's layout (`mifshim_abi::darwin::passed_fds`).
///
/// # Safety
/// `msg` is NULL or a valid msghdr whose control data the kernel has just read or
/// written for its length.
unsafe fn for_each_passed_fd(msg: *const msghdr, f: impl FnMut(c_int)) {
    if msg.is_null() {
        return;
    }
    // SAFETY: the caller's contract.
    let (control, len) = unsafe { ((*msg).msg_control as *const u8, (*msg).msg_controllen) };
    if control.is_null() || len == 0 {
        return;
    }
    // SAFETY: the caller's contract: len readable bytes at control.
    let ctl = unsafe { core::slice::from_raw_parts(control, len as usize) };
    mifshim_abi::darwin::passed_fds(ctl, f);
}

/// After a successful `sendmsg` (either way): a socket passed to another process by
/// `SCM_RIGHTS` is held there too, so nothing the engine set on it is relied on.
fn sendmsg_done(r: isize, (_fd, msg, _flags): (c_int, *const msghdr, c_int)) {
    let Some(shared) = shared() else {
        return;
    };
    // SAFETY: the send succeeded: msg is a valid msghdr whose control data the kernel
    // read.
    if r >= 0 && !msg.is_null() && unsafe { (*msg).msg_controllen } != 0 {
        // SAFETY: as above.
        unsafe { for_each_passed_fd(msg, |fd| mifshim_fastpath::mark_shared(shared, fd)) };
    }
}

/// After `recvmsg` straight to the C library: fds received by `SCM_RIGHTS` are new to
/// this process; whatever their numbers described before is gone.
fn recvmsg_done(r: isize, (_fd, msg, _flags): (c_int, *mut msghdr, c_int)) {
    if r < 0 {
        return;
    }
    let Some(shared) = shared() else {
        return;
    };
    // SAFETY: recvmsg(2) succeeded: msg is valid and the kernel set msg_controllen to
    // what it wrote.
    unsafe { for_each_passed_fd(msg, |fd| mifshim_fastpath::forget(shared, fd)) };
}

/// `fcntl` commands that make a new fd for the same open file (as `dup`).
fn is_dup_cmd(cmd: c_int) -> bool {
    cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC
}

unsafe extern "C" {
    /// libinfo's `h_errno` (`<netdb.h>`: `extern int h_errno`; one per process on
    /// macOS, as its own lookups set it).
    static mut h_errno: c_int;
}

/// `<netdb.h>`'s "non-recoverable error".
const NO_RECOVERY: c_int = 3;

/// `gethostbyname*`/`gethostbyaddr` failing closed: NULL with `h_errno` set, as the C
/// library's own failures leave it (a program that reads `h_errno` after a NULL must
/// not see a stale "success" or an earlier lookup's error).
fn no_host() -> *mut hostent {
    // SAFETY: a plain int of libinfo's; writing it is what its own lookups do (the
    // non-reentrant interface is not thread-safe there either).
    unsafe { h_errno = NO_RECOVERY };
    null_mut()
}

const EAI_FAIL: c_int = libc::EAI_FAIL;

// ---------------------------------------------------------------------------------
// fcntl: variadic in C
// ---------------------------------------------------------------------------------

// The C library's `fcntl` under the list's fixed signature (what `Reals` hands the
// engine) is `pick::fcntl` (below, with the `$NOCANCEL` twins): it is variadic, and on
// arm64 macOS a variadic argument is passed on the stack, not in the register a fixed
// one would be, so it is called as variadic there.

// On arm64 the program's `fcntl(fd, cmd, arg)` leaves `arg` in the first stack slot
// (Apple's arm64 ABI: every variadic argument on the stack, 8-byte slots); the
// interposed replacement loads it into the register the fixed-signature hook reads it
// from, then jumps to that hook. A call without an argument loads whatever the slot
// holds, which the command does not read (the stack pointer always points into the
// mapped stack). On x86_64 a variadic argument is passed like a fixed one.
#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(
    ".globl _mifshim_fcntl_variadic",
    ".private_extern _mifshim_fcntl_variadic",
    ".p2align 2",
    "_mifshim_fcntl_variadic:",
    "ldr x2, [sp]",
    "b {hook}",
    hook = sym fixed::fcntl,
);

// ---------------------------------------------------------------------------------
// The generator
// ---------------------------------------------------------------------------------

/// The C library's function a hook names (an import of this image: dyld does not
/// interpose it). `fcntl` is declared variadic, as it is.
macro_rules! original {
    (fcntl ($fd:ident : $tf:ty, $cmd:ident : $tc:ty, $arg:ident : $ta:ty) -> $r:ty) => {
        unsafe extern "C" {
            pub(super) fn fcntl($fd: $tf, $cmd: $tc, ...) -> $r;
        }
    };
    ($name:ident ($($a:ident : $t:ty),*) -> $r:ty) => {
        unsafe extern "C" {
            pub(super) fn $name($($a: $t),*) -> $r;
        }
    };
}

/// A hook's original as `Reals` holds it (typed by the list): for a call with a
/// `$NOCANCEL` twin, the selector that calls the twin inside a twin's hook (`pick`,
/// generated by `twins!` below from its list; `INTERPOSE_NOCANCEL`'s length is checked
/// against these eight).
macro_rules! real_of {
    (accept) => {
        pick::accept
    };
    (close) => {
        pick::close
    };
    (connect) => {
        pick::connect
    };
    (fcntl) => {
        pick::fcntl
    };
    (recvfrom) => {
        pick::recvfrom
    };
    (recvmsg) => {
        pick::recvmsg
    };
    (sendmsg) => {
        pick::sendmsg
    };
    (sendto) => {
        pick::sendto
    };
    ($name:ident) => {
        real::$name
    };
}

/// The stub's generator over the one list of hooked calls: the originals (`real`),
/// the hooks (`fixed`, re-exported by `hook`, where arm64's `fcntl` is the variadic
/// trampoline), the originals as the engine takes them (`REALS`), the engine's entry
/// points (`engine`), and the `__DATA,__interpose` table pairing each hook with its
/// original.
macro_rules! hooks {
    ($( $(#[$m:meta])* $name:ident ( $($a:ident : $t:ty),* ) -> $r:ty {
        absent: $absent:expr,
        stub: { load: $load:expr, fail: $fail:expr, errno: $eno:expr $(, direct: $direct:expr)? $(, then: $then:path)? $(, after: $after:path)? $(, check: $_check:path)? $(, aliases: [$($alias:ident),*])? }
    }; )*) => {
        /// The C library's functions.
        mod real {
            use super::*;
            $( $(#[$m])* original! { $name ($($a: $t),*) -> $r } )*
        }

        /// The engine's entry points, set once it is loaded.
        #[allow(non_upper_case_globals)]
        mod engine {
            use super::*;
            $( $(#[$m])* pub(super) static $name: Slot<sig::$name> = Slot::new(); )*
        }

        /// The C library's functions as the engine takes them.
        static REALS: mifshim_abi::Reals = mifshim_abi::Reals {
            $( $(#[$m])* $name: Some(real_of!($name)), )*
        };

        /// Binds the engine's entry points (its interface was checked).
        fn bind_engine(e: &Engine) {
            $( $(#[$m])* engine::$name.set(Some(e.hooks.$name)); )*
        }

        /// The hooks, each with the list's signature.
        mod fixed {
            use super::*;
            $(
                $(#[$m])*
                /// ## Hook
                /// Forwards to the engine when the process is steered (loading it if
                /// this call needs a decision), else to the C library. A `direct`
                /// condition sends the call straight to the C library (and `then` does
                /// the engine's bookkeeping after it); `after` runs after the call
                /// either way.
                ///
                /// # Safety
                /// The contract of the C function of the same name.
                #[allow(clippy::unused_unit)]
                pub(super) unsafe extern "C" fn $name($($a: $t),*) -> $r {
                    let direct = false $(|| $direct)?;
                    if !direct && active() {
                        let ready = engine_ready() || ($load && ensure_engine());
                        if ready {
                            if let Some(f) = engine::$name.get() {
                                // SAFETY: the program's arguments, forwarded to the
                                // engine's entry point of this name (typed by the list).
                                let r = unsafe { f($($a),*) };
                                let _args = ($($a,)*);
                                $( $after(r, _args); )?
                                return r;
                            }
                        } else if $load {
                            // Steered, but the engine is missing: fail closed.
                            set_errno($eno);
                            return $fail;
                        }
                    }
                    let Some(f) = REALS.$name else {
                        set_errno(libc::ENOSYS);
                        return $fail;
                    };
                    // SAFETY: the program's arguments, forwarded to the C library's
                    // function.
                    let r = unsafe { f($($a),*) };
                    let _args = ($($a,)*);
                    $( if direct { $then(r, _args); } )?
                    $( $after(r, _args); )?
                    r
                }
            )*
        }

        /// The replacements the table names: the hooks, but for arm64's `fcntl`.
        mod hook {
            #[allow(unused_imports)]
            pub(super) use super::fixed::*;
            #[cfg(target_arch = "aarch64")]
            unsafe extern "C" {
                /// The variadic `fcntl` entry (the trampoline above).
                #[link_name = "mifshim_fcntl_variadic"]
                pub(super) fn fcntl();
            }
        }

        mifshim_abi::interpose_table! {
            static INTERPOSE in "__DATA,__interpose";
            $( $(#[$m])* hook::$name => real::$name, )*
        }
    };
}

mifshim_abi::hooked_calls!(hooks);

// ---------------------------------------------------------------------------------
// Outside the list: signal handlers load the engine first
// ---------------------------------------------------------------------------------

/// A program installing a signal handler (not `SIG_DFL`, `SIG_IGN` or `SIG_ERR`) may
/// make socket calls from it at any moment: load the engine now, in normal context, so
/// that no handler ever has to.
fn before_handler_installed(handler: libc::sighandler_t) {
    if handler > libc::SIG_IGN && handler != libc::SIG_ERR && active() {
        let _ = ensure_engine();
    }
}

/// ## Hook
/// `sigaction(2)`: loads the engine before a handler is installed.
///
/// # Safety
/// The contract of `sigaction(2)`.
unsafe extern "C" fn sigaction_hook(
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    if !act.is_null() {
        // SAFETY: sigaction(2)'s contract: a non-NULL act is a valid struct.
        before_handler_installed(unsafe { (*act).sa_sigaction });
    }
    // SAFETY: the program's arguments, to the C library's function (this image's own
    // reference: not interposed).
    unsafe { libc::sigaction(sig, act, old) }
}

/// ## Hook
/// `signal(3)`: as `sigaction`.
///
/// # Safety
/// The contract of `signal(3)`.
unsafe extern "C" fn signal_hook(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t {
    before_handler_installed(handler);
    // SAFETY: as in `sigaction_hook`.
    unsafe { libc::signal(sig, handler) }
}

mifshim_abi::interpose_table! {
    static INTERPOSE_SIGNALS in "__DATA,__interpose";
    sigaction_hook => libc::sigaction,
    signal_hook => libc::signal,
}

// ---------------------------------------------------------------------------------
// Outside the list: posix_spawn shares the sockets
// ---------------------------------------------------------------------------------

/// `posix_spawn` (libsystem_kernel's) and `posix_spawnp` (libsystem_c's; `system`,
/// `popen` and `NSTask` reach them from other images, which dyld interposes): the child holds the
/// parent's sockets from the moment it exists, so they are marked shared first
/// ([`share_with_child`]). `fork` is covered by the atfork handler.
mod spawn {
    use super::*;

    unsafe extern "C" {
        #[link_name = "posix_spawn"]
        pub(super) fn real_posix_spawn(
            pid: *mut libc::pid_t,
            path: *const c_char,
            actions: *const c_void,
            attr: *const c_void,
            argv: *const *mut c_char,
            envp: *const *mut c_char,
        ) -> c_int;
        #[link_name = "posix_spawnp"]
        pub(super) fn real_posix_spawnp(
            pid: *mut libc::pid_t,
            file: *const c_char,
            actions: *const c_void,
            attr: *const c_void,
            argv: *const *mut c_char,
            envp: *const *mut c_char,
        ) -> c_int;
    }

    /// One hook per spawn call: the sockets marked shared, then the C library's.
    macro_rules! spawn_hooks {
        ($($name:ident => $real:ident;)*) => {$(
            /// ## Hook
            /// See the module.
            ///
            /// # Safety
            /// The contract of the C function of the same name.
            pub(super) unsafe extern "C" fn $name(
                pid: *mut libc::pid_t,
                path: *const c_char,
                actions: *const c_void,
                attr: *const c_void,
                argv: *const *mut c_char,
                envp: *const *mut c_char,
            ) -> c_int {
                if active() {
                    share_with_child();
                }
                // SAFETY: the program's arguments, to the C library's function.
                let r = unsafe { $real(pid, path, actions, attr, argv, envp) };
                if active() {
                    // Again, for one another thread made while the child was made.
                    let e = errno();
                    share_with_child();
                    set_errno(e);
                }
                r
            }
        )*};
    }

    spawn_hooks! {
        posix_spawn => real_posix_spawn;
        posix_spawnp => real_posix_spawnp;
    }
}

mifshim_abi::interpose_table! {
    static INTERPOSE_SPAWN in "__DATA,__interpose";
    spawn::posix_spawn => spawn::real_posix_spawn,
    spawn::posix_spawnp => spawn::real_posix_spawnp,
}

// ---------------------------------------------------------------------------------
// Outside the list: vfork
// ---------------------------------------------------------------------------------

mod vfork {
    use super::*;

    unsafe extern "C" {
        /// libsystem_kernel's `vfork` (this image's import: not interposed).
        #[link_name = "vfork"]
        pub(super) fn real_vfork() -> libc::pid_t;
    }

    /// What `vfork` does before the real one: the child runs in this memory until it
    /// `exec`s or `_exit`s, so it must find the engine there (and every function
    /// bound), never load it itself; and it holds the sockets ([`share_with_child`]).
    /// Returns the real `vfork` to jump to.
    pub(super) extern "C" fn prepare() -> *const c_void {
        if active() {
            let _ = ensure_engine();
            share_with_child();
        }
        real_vfork as *const c_void
    }

    /// ## Hook
    /// `vfork(2)`: a hook cannot call the real `vfork` and return (the child would
    /// return through, and overwrite, the frame the suspended parent returns through
    /// later), so this is naked: it runs [`prepare`] and then *jumps* to the real
    /// `vfork`, which returns straight to the program, as if called by it. As the
    /// Linux stub's.
    ///
    /// # Safety
    /// The contract of `vfork`.
    #[cfg(target_arch = "x86_64")]
    #[unsafe(naked)]
    pub(super) unsafe extern "C" fn hook() -> libc::pid_t {
        // At entry the stack is 8 bytes off 16-byte alignment (the return address):
        // one more slot aligns it for the call; `prepare` keeps the callee-saved
        // registers.
        core::arch::naked_asm!(
            "sub rsp, 8",
            "call {prepare}",
            "add rsp, 8",
            "jmp rax",
            prepare = sym prepare,
        )
    }

    /// ## Hook
    /// `vfork(2)`: see the x86_64 one.
    ///
    /// # Safety
    /// The contract of `vfork`.
    #[cfg(target_arch = "aarch64")]
    #[unsafe(naked)]
    pub(super) unsafe extern "C" fn hook() -> libc::pid_t {
        core::arch::naked_asm!(
            "stp x29, x30, [sp, #-16]!",
            "bl {prepare}",
            "ldp x29, x30, [sp], #16",
            "br x0",
            prepare = sym prepare,
        )
    }
}

mifshim_abi::interpose_table! {
    static INTERPOSE_VFORK in "__DATA,__interpose";
    vfork::hook => vfork::real_vfork,
}

// ---------------------------------------------------------------------------------
// Outside the list: the longjmp family tells the engine first
// ---------------------------------------------------------------------------------

/// The engine's `jumping`, once loaded.
static JUMPING: Slot<mifshim_abi::Jumping> = Slot::new();

/// libsystem_platform's jumps (the `libc` crate declares none). `siglongjmp` calls
/// `longjmp` or `_longjmp` inside that image, which dyld does not interpose, so each
/// of the program's calls is seen once.
mod jump_orig {
    use core::ffi::{c_int, c_void};
    unsafe extern "C" {
        pub(super) fn longjmp(env: *mut c_void, val: c_int) -> !;
        pub(super) fn _longjmp(env: *mut c_void, val: c_int) -> !;
        pub(super) fn siglongjmp(env: *mut c_void, val: c_int) -> !;
    }
}

/// `longjmp`, `_longjmp` and `siglongjmp`: a signal handler jumping out of a hook
/// leaves that hook's cancellation window open (a name lookup's); the engine closes it
/// first (`mifshim_abi::Engine::jumping`, which on macOS takes every reported jump to
/// leave the window: the target's stack pointer is not readable in Darwin's
/// `jmp_buf`, mangled on arm64), so the thread gets its cancellation state back at
/// once rather than at its next lookup. The thread's twin record is left to the
/// token check (`in_twin`): a jump inside a handler on top of a twin's hook must not
/// drop a live record (a stale one costs at most a cancellation point). The original
/// never returns, so this frame is discarded with the rest.
macro_rules! jump_hooks {
    ($($hook:ident => $name:ident;)*) => {$(
        /// ## Hook
        /// See `jump_hooks`.
        ///
        /// # Safety
        /// The contract of the C function of the same name.
        unsafe extern "C" fn $hook(env: *mut c_void, val: c_int) -> ! {
            if let Some(f) = JUMPING.get() {
                // SAFETY: the engine's entry point; it only reads env's words.
                unsafe { f(env) };
            }
            // SAFETY: the program's arguments, to the C library's function.
            unsafe { jump_orig::$name(env, val) }
        }
    )*};
}

jump_hooks! {
    longjmp_hook => longjmp;
    underscore_longjmp_hook => _longjmp;
    siglongjmp_hook => siglongjmp;
}

mifshim_abi::interpose_table! {
    static INTERPOSE_JUMPS in "__DATA,__interpose";
    longjmp_hook => jump_orig::longjmp,
    underscore_longjmp_hook => jump_orig::_longjmp,
    siglongjmp_hook => jump_orig::siglongjmp,
}

// ---------------------------------------------------------------------------------
// The `$NOCANCEL` twins
// ---------------------------------------------------------------------------------

// libsystem_kernel exports a non-cancellable twin of each cancellable call
// (`connect$NOCANCEL` beside `connect`, on both architectures: dyld's list of
// libsystem_kernel's exports for the shared cache builder names them, marking none
// x86_64-only). Code built with `__DARWIN_NON_CANCELABLE` (`_NONSTD_SOURCE`) and
// parts of libSystem itself call the twins, and dyld interposes per symbol: without
// a tuple of its own, a `connect$NOCANCEL` would leave by the default route and a
// `close$NOCANCEL` would leave the engine's entry for the fd behind.
//
// Each twin gets the hook of its name, which must then be no cancellation point
// either. Turning cancellation off around the hook would do that, at Darwin's price
// (read in libpthread): a `pthread_cancel` arriving meanwhile is marked in user space
// only (`__pthread_markcancel` is skipped while disabled), so the thread's next
// blocking call is not interrupted; a `siglongjmp` out of the hook leaves cancellation
// off; a handler between `pthread_setcancelstate`'s system call and its user-space
// half leaves the two disagreeing. Instead the twin's hook reaches the twins: the
// replacement records its frame in a thread-specific slot (`TWIN_KEY`), and the
// originals the engine is handed for these eight calls (`pick`) call the twin while
// that record stands for a live frame above them (`mifshim_abi::darwin::twin_frame`,
// then the frame's token). Nothing about the thread's cancellation state changes. The
// rest of a hook's own work reaches no cancellation point either: the stub's and the
// engine's own writes, reads, polls and opens are the `$NOCANCEL` entry points (not
// hooked, so called by name: `own_io` here, `sys/macos/ffi/nocancel.rs`), the
// engine's `close`/`fcntl` on descriptors of its own are the twins handed over as
// `mifshim_abi::OwnCalls`, and a name lookup runs in the engine's window with
// cancellation disabled, as on Linux. A record cannot outlive its frame unseen: the
// replacement clears its token on the way out and restores only a live outer record,
// and a reader that finds a record above it on this stack without its token drops it
// (the `longjmp` hooks leave the record alone: a jump inside a handler on top of a
// twin's hook must not drop a live one; after a jump out of the hook, a deeper call
// whose stack never overwrote the old frame's token takes the twin: one cancellation
// point lost, nothing unsteered). A twin called on an alternate signal stack (a
// handler's `close$NOCANCEL`) cannot record a frame a reader may safely read, so that
// one runs with cancellation disabled, as all of them did before.

/// The thread-specific slot of the innermost twin replacement running on this thread
/// (its frame's address with [`TWIN_ACTIVE`]; 0: none); `usize::MAX` until created
/// (by [`decide`] for a steered process). Without it the twins' hooks run with
/// cancellation disabled ([`without_cancellation`]).
static TWIN_KEY: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Creates [`TWIN_KEY`] (once; a failure leaves it unset).
fn create_twin_key() {
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: a live out-pointer; no destructor.
    if unsafe { libc::pthread_key_create(&mut key, None) } == 0
        && TWIN_KEY
            .compare_exchange(usize::MAX, key as usize, AcqRel, Acquire)
            .is_err()
    {
        // SAFETY: the key was created just now and never used.
        unsafe { libc::pthread_key_delete(key) };
    }
}

/// This thread's own stack, `[lowest, top)` (Darwin's `pthread_get_stackaddr_np` is
/// its top; it grows down from there).
#[inline]
fn thread_stack() -> core::ops::Range<usize> {
    // SAFETY: reads of this thread's descriptor; no preconditions.
    let (top, size) = unsafe {
        let me = libc::pthread_self();
        (
            libc::pthread_get_stackaddr_np(me) as usize,
            libc::pthread_get_stacksize_np(me),
        )
    };
    top.saturating_sub(size)..top
}

/// Whether a record `v` names a live twin frame above `here`
/// (`mifshim_abi::darwin::twin_frame`, then its token).
#[inline]
fn live_record(v: usize, here: usize) -> bool {
    twin_frame(v, here, thread_stack()).is_some_and(|at| {
        // SAFETY: `at` is inside this thread's stack (twin_frame checked), so it is
        // mapped; a volatile read of 8 aligned bytes.
        let word = unsafe { core::ptr::read_volatile(at as *const u64) };
        word == twin_token(at)
    })
}

/// Whether this call runs inside a twin replacement's hook: the thread's record names
/// a live frame above this one ([`live_record`]). A record whose frame is below this
/// one, off this thread's stack or without its token is stale (a `siglongjmp` out of
/// the hook) and is dropped here.
#[inline]
fn in_twin() -> bool {
    let key = TWIN_KEY.load(Acquire);
    if key == usize::MAX {
        return false;
    }
    // SAFETY: a key this image created; getspecific only reads the thread's slot.
    let v = unsafe { libc::pthread_getspecific(key as libc::pthread_key_t) } as usize;
    if v == 0 {
        return false;
    }
    let here = core::hint::black_box(0u8);
    let here = &raw const here as usize;
    if live_record(v, here) {
        return true;
    }
    // Stale, unless it is a live frame this call is not below (a handler running on
    // an alternate stack above the thread's): only a record on this stack, above
    // this frame, with its token gone, is certainly dead.
    if twin_frame(v, here, thread_stack()).is_some() {
        // SAFETY: as above.
        unsafe { libc::pthread_setspecific(key as libc::pthread_key_t, core::ptr::null()) };
    }
    false
}

/// Calls `f` from a frame of its own, below the caller's: the twin's hook then always
/// runs below [`as_twin`]'s canary, whatever the compiler inlines.
#[inline(never)]
fn below<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Runs `f` (the hook of a twin's name) as the twin's hook: its originals are the
/// twins ([`in_twin`]) for as long as it runs. Restores the record it found if that
/// names a live twin frame above (a twin in a handler that interrupted another), else
/// none; clears its own token; keeps errno as `f` left it. A twin running off the
/// thread's stack (in a handler on an alternate stack) has its record on no stack a
/// reader may look at: it runs with cancellation disabled instead.
#[inline(never)]
fn as_twin<R>(f: impl FnOnce() -> R) -> R {
    let key = TWIN_KEY.load(Acquire);
    let mut canary = 0u64;
    let at = &raw mut canary as usize;
    if key == usize::MAX || !thread_stack().contains(&at) {
        return without_cancellation(f);
    }
    let key = key as libc::pthread_key_t;
    // SAFETY: a live local of this frame.
    unsafe { core::ptr::write_volatile(&raw mut canary, twin_token(at)) };
    // SAFETY: a key this image created; the slot holds a plain word.
    let found = unsafe { libc::pthread_getspecific(key) } as usize;
    // Any record of this stack that still holds its token is an outer twin's (above
    // this frame, or below it when this runs on an alternate stack carved out of the
    // thread's own): restored on the way out. A dead one is not.
    let prev = if live_record(found, 0) { found } else { 0 };
    // SAFETY: as above.
    unsafe { libc::pthread_setspecific(key, (at | TWIN_ACTIVE) as *const c_void) };
    let r = below(f);
    let e = errno();
    // SAFETY: as above.
    unsafe { libc::pthread_setspecific(key, prev as *const c_void) };
    // The token goes with the frame: a later frame at this address does not find it.
    // SAFETY: a live local of this frame.
    unsafe { core::ptr::write_volatile(&raw mut canary, 0) };
    set_errno(e);
    r
}

unsafe extern "C" {
    fn pthread_setcancelstate(state: c_int, old: *mut c_int) -> c_int;
}
/// Darwin's `<pthread.h>` values.
const PTHREAD_CANCEL_ENABLE: c_int = 0x01;
const PTHREAD_CANCEL_DISABLE: c_int = 0x00;

/// Runs `f` with this thread's cancellation disabled, then restores the state it had
/// (errno as `f` left it): the twins' fallback when [`TWIN_KEY`] could not be made.
fn without_cancellation<R>(f: impl FnOnce() -> R) -> R {
    let mut old = PTHREAD_CANCEL_ENABLE;
    // SAFETY: a valid state and a live out-pointer.
    let changed = unsafe { pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &mut old) } == 0
        && old == PTHREAD_CANCEL_ENABLE;
    let r = f();
    if changed {
        let e = errno();
        let mut ignored = 0;
        // SAFETY: as above.
        unsafe { pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &mut ignored) };
        set_errno(e);
    }
    r
}

/// The twin a replacement stands for, `<name>$NOCANCEL` (this image's import, which
/// dyld does not interpose); `fcntl`'s is variadic, as `original!` declares `fcntl`.
macro_rules! twin_original {
    (fcntl ($fd:ident : $tf:ty, $cmd:ident : $tc:ty, $arg:ident : $ta:ty) -> $r:ty) => {
        unsafe extern "C" {
            #[link_name = "fcntl$NOCANCEL"]
            pub(super) fn fcntl($fd: $tf, $cmd: $tc, ...) -> $r;
        }
    };
    ($name:ident ($($a:ident : $t:ty),*) -> $r:ty) => {
        unsafe extern "C" {
            #[link_name = concat!(stringify!($name), "$NOCANCEL")]
            pub(super) fn $name($($a: $t),*) -> $r;
        }
    };
}

/// From one list of the twins (each with the signature of its hook in the list of
/// hooked calls): the twins themselves (`nocancel_orig`), the originals `Reals` hands
/// the engine for their names (`pick`: the twin inside a twin's hook, else the
/// cancellable function), their replacements (`nocancel`) — in a process that is not
/// steered, the twin itself; otherwise the hook of its cancellable name, run as the
/// twin's ([`as_twin`]) — and the table pairing them.
macro_rules! twins {
    ($( $name:ident ( $($a:ident : $t:ty),* ) -> $r:ty; )*) => {
        /// The twins, as the table names them.
        mod nocancel_orig {
            use super::*;
            $( twin_original! { $name ($($a: $t),*) -> $r } )*
        }

        /// The originals of the twins' names as the engine takes them.
        mod pick {
            use super::*;
            $(
                /// The C library's function of this name, or its `$NOCANCEL` twin
                /// inside a twin's hook ([`in_twin`]).
                ///
                /// # Safety
                /// The contract of the C function of the same name.
                pub(super) unsafe extern "C" fn $name($($a: $t),*) -> $r {
                    if in_twin() {
                        // SAFETY: the caller's arguments, to the C library's twin.
                        unsafe { nocancel_orig::$name($($a),*) }
                    } else {
                        // SAFETY: the caller's arguments, to the C library's function.
                        unsafe { real::$name($($a),*) }
                    }
                }
            )*
        }

        /// The twins' replacements.
        mod nocancel {
            use super::*;
            $(
                /// ## Hook
                /// The `$NOCANCEL` twin: the hook of the same name, reaching the
                /// twins.
                ///
                /// # Safety
                /// The contract of the C function of the same name.
                pub(super) unsafe extern "C" fn $name($($a: $t),*) -> $r {
                    if !active() {
                        // SAFETY: the program's arguments, to the C library's twin.
                        return unsafe { nocancel_orig::$name($($a),*) };
                    }
                    // SAFETY: the program's arguments, to the hook of that name.
                    as_twin(|| unsafe { fixed::$name($($a),*) })
                }
            )*
        }

        mifshim_abi::interpose_table! {
            static INTERPOSE_NOCANCEL in "__DATA,__interpose";
            $( nocancel_hook::$name => nocancel_orig::$name, )*
        }
    };
}

twins! {
    accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int;
    close(fd: c_int) -> c_int;
    connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int;
    fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int;
    recvfrom(fd: c_int, buf: *mut c_void, n: usize, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> isize;
    recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> isize;
    sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> isize;
    sendto(fd: c_int, buf: *const c_void, n: usize, flags: c_int, addr: *const sockaddr, len: socklen_t) -> isize;
}

// `fcntl$NOCANCEL` is variadic too: arm64 needs the same trampoline as `fcntl`.
#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(
    ".globl _mifshim_fcntl_nocancel_variadic",
    ".private_extern _mifshim_fcntl_nocancel_variadic",
    ".p2align 2",
    "_mifshim_fcntl_nocancel_variadic:",
    "ldr x2, [sp]",
    "b {hook}",
    hook = sym nocancel::fcntl,
);

/// The replacements the twins' table names: arm64's `fcntl$NOCANCEL` is the trampoline.
mod nocancel_hook {
    #[allow(unused_imports)]
    pub(super) use super::nocancel::*;
    #[cfg(target_arch = "aarch64")]
    unsafe extern "C" {
        /// The variadic `fcntl$NOCANCEL` entry.
        #[link_name = "mifshim_fcntl_nocancel_variadic"]
        pub(super) fn fcntl();
    }
}

const _: () = assert!(INTERPOSE_NOCANCEL.len() == 8);

/// `fcntl$NOCANCEL` under the list's fixed signature (it is variadic, see `pick`).
unsafe extern "C" fn fcntl_nocancel_fixed(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    // SAFETY: the caller's contract (fcntl(2)): `arg` is the command's argument.
    unsafe { nocancel_orig::fcntl(fd, cmd, arg) }
}

/// What the engine calls on descriptors of its own: the twins, never a cancellation
/// point (`mifshim_abi::OwnCalls`).
static OWN_CALLS: mifshim_abi::OwnCalls = mifshim_abi::OwnCalls {
    close: Some(nocancel_orig::close),
    fcntl: Some(fcntl_nocancel_fixed),
};

// One tuple per hooked call the list keeps on macOS (checked when this is compiled).
const _: () = assert!(INTERPOSE.len() == mifshim_abi::NAMES.len());
const _: () = assert!(INTERPOSE.len() == 23);
