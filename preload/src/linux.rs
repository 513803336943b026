//! `libmifshim.so`, the object `LD_PRELOAD` puts into every process: a small,
//! `std`-free stub in front of the C library's socket and name-lookup functions.
//!
//! Every process below `mifrun` loads it — shells, `ls`, `sed` — and most of them never
//! open an INET socket. So the stub does as little as possible: it imports three C
//! library functions (each import is a symbol lookup for the loader in every process;
//! see "The C library, as the stub reaches it" below), and its constructor reads the
//! `MIFSHIM_*` variables in one pass over the environment block (and, without them,
//! checks whether a policy file exists). A hook finds its C library function on its
//! first call (`dlsym`, one symbol), unless the engine's load found them all first. The engine (`libmifshim_engine.so`, next to
//! this file: the policy, the decision, the resolver) is `dlopen`ed, always in normal
//! context, at the first of: a call that needs a decision (`connect`, a send, `bind`,
//! `listen`, `setsockopt`, a name lookup), an `AF_INET`/`AF_INET6` `socket()`, the
//! installation of a signal handler (`sigaction`, `signal` and its aliases, `sigset`:
//! a handler may make socket calls at any moment, also in the middle of a `malloc`,
//! where `dlopen` must not run), or a `fork`, `_Fork`, fork-like `clone` or `vfork` (so
//! that a child never has to load it, nor inherits a load half done). The loading thread
//! blocks signals while it loads; other threads sleep on the state word until it is
//! done. From then on every hook is forwarded to the engine.
//!
//! Bookkeeping-only calls (`socket` of other families, `close`, `dup*`, `accept*`, `recvfrom`,
//! `recvmsg`, `recvmmsg`, `getpeername`, `freeaddrinfo`) made before the engine is loaded go
//! straight to the C library: the engine asks the kernel about sockets it has not
//! seen created. Such a call's first `dlsym` can only happen in normal context: a
//! signal handler installed through the hooks, or a child made by `fork`, `_Fork`,
//! `clone` or `vfork`, finds the engine (and so every function) already there.
//!
//! If the engine cannot be loaded, calls that need a decision fail closed (`ENETUNREACH`,
//! `EAI_FAIL`) after one line on standard error; nothing falls back to the default
//! route.
//!
//! The stub cannot panic in practice (no indexing, no allocation); if it ever did,
//! `panic = "abort"` ends the process rather than unwinding into C.

use core::ffi::{c_char, c_int, c_uint, c_void};
use core::ptr::null_mut;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU32, Ordering::*};
use libc::{hostent, mmsghdr, msghdr, sockaddr, socklen_t};
use mifshim_abi::types::*;
use mifshim_abi::{Engine, FnPtr, Slot, errno, set_errno, sig};
use mifshim_fastpath::Shared;

// The exec hooks. `#[path]`: the same file whether this module is declared here or in a
// per-OS file beside it.
#[cfg(target_os = "linux")]
#[path = "exec.rs"]
mod exec;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    abort()
}

// The precompiled `core` refers to the unwinder's personality routine even when this
// crate is built with `panic = "abort"` (nothing here unwinds). Defining it keeps the
// stub free of `libgcc_s`; it is never called. It is hidden: exported, it came before
// the real one of every object that takes `rust_eh_personality` from the dynamic
// symbol table (rustc's `librustc_driver`, any `-C prefer-dynamic` Rust program),
// whose panics then failed to start and aborted the process (test
// `preloaded_stubs_personality_routine_aborted_rustc_on_a_compile_error`).
core::arch::global_asm!(
    ".globl rust_eh_personality",
    ".hidden rust_eh_personality",
    ".type rust_eh_personality, @function",
    "rust_eh_personality:",
    "ret",
    ".size rust_eh_personality, . - rust_eh_personality",
);

// ---------------------------------------------------------------------------------
// The C library, as the stub reaches it
// ---------------------------------------------------------------------------------
//
// Every function this object imports is one more symbol the loader looks up, in every
// process the preload reaches, before `main` (the stub is linked `-z now`, see
// build.rs): about 700 instructions each, a third of what loading an empty library
// costs. So the stub imports only the three it cannot do without: `dlsym` (to find
// everything else), `__errno_location` (errno must be read before anything that could
// change it) and `__register_atfork` (the fork handlers, registered at start-up). Every
// other C library function it calls for itself is a `Lazy` (below): found by `dlsym` on
// its first use, which is in normal context for the same reason a hook's is (see the
// module doc), and every one that may run after the engine's load is found before the
// load is claimed (`resolve_lazy_all`), so that a handler, a child, or a child made by
// a raw `clone` while the load was running, finds it there. The stub also avoids the calls the
// compiler would insert (`memcpy`, `memset`, `strlen`): its copies are volatile byte
// loops (see `PathBuf`), on cold paths only.

#[cfg(target_env = "gnu")]
unsafe extern "C" {
    /// glibc's `pthread_atfork` (which is `__register_atfork(…, __dso_handle)` in
    /// `libc_nonshared.a`; the stub is linked without the C start files that define
    /// `__dso_handle`).
    fn __register_atfork(
        prepare: Option<unsafe extern "C" fn()>,
        parent: Option<unsafe extern "C" fn()>,
        child: Option<unsafe extern "C" fn()>,
        dso_handle: *mut c_void,
    ) -> c_int;
}

/// This object's identity for `__register_atfork` (what `__dso_handle` is in an object
/// linked with the C start files: any address inside it). The stub is never unloaded
/// (`-z nodelete`), so its handlers are never unregistered.
#[cfg(target_env = "gnu")]
static DSO_HANDLE: u8 = 0;

static C_GETENV: Lazy = Lazy::new(c"getenv");
static C_ACCESS: Lazy = Lazy::new(c"access");
static C_WRITEV: Lazy = Lazy::new(c"writev");
static C_ABORT: Lazy = Lazy::new(c"abort");
static C_SYSCALL: Lazy = Lazy::new(c"syscall");
static C_CLOCK_GETTIME: Lazy = Lazy::new(c"clock_gettime");
static C_PTHREAD_SIGMASK: Lazy = Lazy::new(c"pthread_sigmask");
static C_MMAP: Lazy = Lazy::new(c"mmap");
static C_MUNMAP: Lazy = Lazy::new(c"munmap");
static C_H_ERRNO_LOCATION: Lazy = Lazy::new(c"__h_errno_location");
static C_DLADDR: Lazy = Lazy::new(c"dladdr");
static C_DLOPEN: Lazy = Lazy::new(c"dlopen");
static C_DLERROR: Lazy = Lazy::new(c"dlerror");

/// Calls `lazy`'s C library function as `fn(args) -> r`; `None` if the C library has
/// no such function.
macro_rules! c_call {
    ($lazy:expr, fn($($t:ty),*) -> $r:ty, ($($a:expr),*)) => {{
        let p = $lazy.get();
        if p.is_null() {
            None
        } else {
            type F = unsafe extern "C" fn($($t),*) -> $r;
            // SAFETY: p is the C library's function of this name, which has this C
            // signature.
            let f: F = unsafe { core::mem::transmute::<*mut c_void, F>(p) };
            // SAFETY: the arguments the caller checked against the function's contract.
            Some(unsafe { f($($a),*) })
        }
    }};
}

/// `abort(3)`; a trap if the C library has none (it always has).
fn abort() -> ! {
    let p = C_ABORT.get();
    if !p.is_null() {
        type F = unsafe extern "C" fn() -> !;
        // SAFETY: the C library's abort, which has this signature.
        let f: F = unsafe { core::mem::transmute::<*mut c_void, F>(p) };
        // SAFETY: abort has no preconditions.
        unsafe { f() }
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: an undefined instruction: the kernel ends the process with SIGILL.
    unsafe {
        core::arch::asm!("ud2", options(noreturn))
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: as above.
    unsafe {
        core::arch::asm!("udf #0", options(noreturn))
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    loop {
        core::hint::spin_loop();
    }
}

/// `syscall(2)` with up to four arguments (the C library's wrapper: -1 and errno on
/// failure); -1 with `ENOSYS` if it is missing.
fn syscall4(n: libc::c_long, a: usize, b: usize, c: usize, d: usize) -> libc::c_long {
    let p = C_SYSCALL.get();
    if p.is_null() {
        set_errno(libc::ENOSYS);
        return -1;
    }
    type F = unsafe extern "C" fn(libc::c_long, ...) -> libc::c_long;
    // SAFETY: the C library's syscall, which has this variadic signature.
    let f: F = unsafe { core::mem::transmute::<*mut c_void, F>(p) };
    // SAFETY: every caller passes a system call number and arguments valid for it
    // (unused trailing arguments are ignored by the kernel).
    unsafe { f(n, a, b, c, d) }
}

/// The length of the NUL-terminated string at `p` (a volatile loop, so that the
/// compiler does not make it a call to `strlen`: one more import).
///
/// # Safety
/// `p` is a valid NUL-terminated string.
unsafe fn cstr_len(p: *const c_char) -> usize {
    let mut n = 0;
    // SAFETY: the caller's contract: every byte up to the NUL is readable.
    while unsafe { core::ptr::read_volatile(p.add(n)) } != 0 {
        n += 1;
    }
    n
}

/// A path built into a caller's buffer, always NUL-terminated, with volatile byte
/// writes (so that the compiler makes no `memcpy` call of them: one more import for
/// every process). `ok` turns false when something did not fit.
struct PathBuf {
    buf: *mut u8,
    cap: usize,
    len: usize,
    ok: bool,
}

impl PathBuf {
    /// # Safety
    /// `buf` is valid for writes of `cap` (at least 1) bytes while this is used.
    unsafe fn new(buf: *mut u8, cap: usize) -> Self {
        // SAFETY: the caller's contract; cap >= 1.
        unsafe { core::ptr::write_volatile(buf, 0) };
        Self {
            buf,
            cap,
            len: 0,
            ok: true,
        }
    }

    fn byte(&mut self, b: u8) {
        if self.len + 1 >= self.cap {
            self.ok = false;
            return;
        }
        // SAFETY: len + 1 < cap (see `new`).
        unsafe {
            core::ptr::write_volatile(self.buf.add(self.len), b);
            core::ptr::write_volatile(self.buf.add(self.len + 1), 0);
        }
        self.len += 1;
    }

    fn bytes(&mut self, s: &[u8]) {
        for &b in s {
            self.byte(b);
        }
    }

    /// # Safety
    /// `p` is a valid NUL-terminated string.
    unsafe fn cstr(&mut self, p: *const u8) {
        let mut i = 0;
        loop {
            // SAFETY: the caller's contract.
            let b = unsafe { core::ptr::read_volatile(p.add(i)) };
            if b == 0 || !self.ok {
                return;
            }
            self.byte(b);
            i += 1;
        }
    }

    /// Drops everything after the last `/` (keeps the directory, with its slash).
    fn dir(&mut self) {
        let mut keep = 0;
        for i in 0..self.len {
            // SAFETY: i < len: written by `byte`.
            if unsafe { core::ptr::read_volatile(self.buf.add(i)) } == b'/' {
                keep = i + 1;
            }
        }
        self.len = keep;
        // SAFETY: keep <= len < cap.
        unsafe { core::ptr::write_volatile(self.buf.add(keep), 0) };
    }
}

// ---------------------------------------------------------------------------------
// Process state
// ---------------------------------------------------------------------------------

const UNKNOWN: u8 = 0;
const INERT: u8 = 1;
const ACTIVE: u8 = 2;
/// Whether this process is steered at all (decided by the constructor).
static MODE: AtomicU8 = AtomicU8::new(UNKNOWN);

/// The engine's state, a futex word: `NONE`, `READY`, `FAILED`, or a *loading* word
/// (`loading(pid)`: the low bits `LOADING_TAG`, the rest the loader's process id), so
/// that a child created by a path no hook sees (a raw `clone`/`fork` system call) while
/// its parent was loading can tell at once that nobody in its own process will finish
/// the load. Threads waiting for a load sleep on this word (`FUTEX_WAIT`); the loader
/// wakes them when it publishes `READY` or `FAILED`. It never goes back to `NONE`.
static ENGINE: AtomicU32 = AtomicU32::new(NONE);
const NONE: u32 = 0;
const READY: u32 = 1;
const FAILED: u32 = 2;
const LOADING_TAG: u32 = 3;

/// The loading word of process `pid` (Linux pids are below 2^22, `PID_MAX_LIMIT`).
fn loading(pid: u32) -> u32 {
    (pid << 2) | LOADING_TAG
}

/// The loader's pid of a loading word.
fn loader_pid(word: u32) -> u32 {
    word >> 2
}

/// The thread id of the thread loading the engine (set by it right after it claimed
/// the load): a hook it re-enters during the load (nothing it calls should) must not
/// wait for itself.
static LOADER_TID: AtomicU32 = AtomicU32::new(0);

static ARGV0: AtomicPtr<c_char> = AtomicPtr::new(null_mut());

/// A fixed buffer written by the thread that loads the engine and read by it.
struct Buf(core::cell::UnsafeCell<[u8; 4096]>);
// SAFETY: only `load_engine` touches it, and only one thread ever runs that (the one
// that moved ENGINE from NONE to its loading word; the others wait for READY or FAILED).
unsafe impl Sync for Buf {}
static ENGINE_PATH: Buf = Buf(core::cell::UnsafeCell::new([0; 4096]));

/// The variables the steering decision reads (as `NAME=` and as `NAME`), in the order
/// of [`Vars`].
const VARS: [(&[u8], &core::ffi::CStr); 8] = [
    (b"MIFSHIM_DISABLE=", c"MIFSHIM_DISABLE"),
    (b"MIFSHIM_VIA=", c"MIFSHIM_VIA"),
    (b"MIFSHIM_POLICY=", c"MIFSHIM_POLICY"),
    (b"XDG_CONFIG_HOME=", c"XDG_CONFIG_HOME"),
    (b"HOME=", c"HOME"),
    (b"MIFSHIM_DNS=", c"MIFSHIM_DNS"),
    (b"MIFSHIM_MIFRUN=", c"MIFSHIM_MIFRUN"),
    (b"MIFSHIM_SUPERVISED=", c"MIFSHIM_SUPERVISED"),
];
const DISABLE: usize = 0;
const VIA: usize = 1;
const POLICY: usize = 2;
const XDG_CONFIG_HOME: usize = 3;
const HOME: usize = 4;
/// The exec hooks' (`exec`): what the supervisor's command line is built from.
const DNS: usize = 5;
const MIFRUN: usize = 6;
const SUPERVISED: usize = 7;

/// Whether `prefix` is `name` followed by `=`, and `c` is `name` (for the checks below).
const fn names(prefix: &[u8], c: &core::ffi::CStr, name: &str) -> bool {
    let (n, c) = (name.as_bytes(), c.to_bytes());
    if prefix.len() != n.len() + 1 || c.len() != n.len() || prefix[n.len()] != b'=' {
        return false;
    }
    let mut i = 0;
    while i < n.len() {
        if prefix[i] != n[i] || c[i] != n[i] {
            return false;
        }
        i += 1;
    }
    true
}

// The names the steering rule reads are the engine's (`mifshim_abi::env`): a difference
// does not compile.
const _: () = {
    assert!(names(
        VARS[DISABLE].0,
        VARS[DISABLE].1,
        mifshim_abi::env::DISABLE
    ));
    assert!(names(VARS[VIA].0, VARS[VIA].1, mifshim_abi::env::VIA));
    assert!(names(
        VARS[POLICY].0,
        VARS[POLICY].1,
        mifshim_abi::env::POLICY
    ));
    assert!(names(
        VARS[XDG_CONFIG_HOME].0,
        VARS[XDG_CONFIG_HOME].1,
        mifshim_abi::env::XDG_CONFIG_HOME
    ));
    assert!(names(VARS[HOME].0, VARS[HOME].1, mifshim_abi::env::HOME));
    assert!(names(VARS[DNS].0, VARS[DNS].1, mifshim_abi::env::DNS));
    assert!(names(
        VARS[MIFRUN].0,
        VARS[MIFRUN].1,
        mifshim_abi::env::MIFRUN
    ));
    assert!(names(
        VARS[SUPERVISED].0,
        VARS[SUPERVISED].1,
        mifshim_abi::env::SUPERVISED
    ));
};

/// The values of [`VARS`]: each a NUL-terminated string of at least one byte, or NULL
/// when the variable is unset or empty (a value that is empty is unset; one that is
/// not UTF-8 is not).
type Vars = [*const u8; 8];

/// If the NUL-terminated `s` starts with `prefix`, what follows it.
///
/// # Safety
/// `s` is a valid NUL-terminated string; `prefix` holds no NUL.
unsafe fn after_prefix(s: *const u8, prefix: &[u8]) -> Option<*const u8> {
    for (i, &b) in prefix.iter().enumerate() {
        // SAFETY: s is NUL-terminated and prefix holds no NUL, so a mismatch comes at
        // the NUL at the latest: every byte read is s's.
        if unsafe { *s.add(i) } != b {
            return None;
        }
    }
    // SAFETY: the whole prefix matched: s has at least that many bytes before its NUL.
    Some(unsafe { s.add(prefix.len()) })
}

/// [`Vars`] from the environment block `envp`, in one pass (the first definition of a
/// name counts, as for `getenv`; most variables are passed over at their first byte).
///
/// # Safety
/// `envp` is a NULL-terminated array of valid NUL-terminated strings.
unsafe fn vars_from_envp(mut envp: *const *const c_char) -> Vars {
    let mut v: Vars = [core::ptr::null(); 8];
    loop {
        // SAFETY: the caller's contract: envp points into the NULL-terminated array.
        let s = unsafe { *envp }.cast::<u8>();
        if s.is_null() {
            break;
        }
        // SAFETY: s is a valid string (at least its NUL).
        if matches!(unsafe { *s }, b'M' | b'X' | b'H') {
            for (i, (name, _)) in VARS.iter().enumerate() {
                if v[i].is_null() {
                    // SAFETY: s is a valid string; the names hold no NUL.
                    if let Some(value) = unsafe { after_prefix(s, name) } {
                        v[i] = value;
                        break;
                    }
                }
            }
        }
        // SAFETY: s was not the terminating NULL, so the array goes on.
        envp = unsafe { envp.add(1) };
    }
    for x in &mut v {
        // SAFETY: a non-NULL x points into a NUL-terminated value.
        if !x.is_null() && unsafe { **x } == 0 {
            *x = core::ptr::null();
        }
    }
    v
}

/// [`Vars`] through the C library's `getenv` (for a hook that runs before the
/// constructor, which has the environment block; normal context: another library's
/// constructor).
fn vars_from_getenv() -> Vars {
    let mut v: Vars = [core::ptr::null(); 8];
    for (i, (_, name)) in VARS.iter().enumerate() {
        let p = c_call!(C_GETENV, fn(*const c_char) -> *mut c_char, (name.as_ptr()))
            .unwrap_or(null_mut());
        // SAFETY: getenv returns NULL or a NUL-terminated string.
        if !p.is_null() && unsafe { *p } != 0 {
            v[i] = p.cast();
        }
    }
    v
}

/// Whether the path `build` writes exists (`access(F_OK)`; errno kept). A path that
/// does not fit in `PATH_MAX` does not.
fn file_exists(build: impl FnOnce(&mut PathBuf)) -> bool {
    let mut buf = core::mem::MaybeUninit::<[u8; 4096]>::uninit();
    // SAFETY: buf is valid for writes of its 4096 bytes for the whole function.
    let mut path = unsafe { PathBuf::new(buf.as_mut_ptr().cast(), 4096) };
    build(&mut path);
    if !path.ok {
        return false;
    }
    let saved = errno();
    // SAFETY: path.buf holds a NUL-terminated path.
    let r = c_call!(
        C_ACCESS,
        fn(*const c_char, c_int) -> c_int,
        (path.buf.cast(), libc::F_OK)
    );
    set_errno(saved);
    r == Some(0)
}

/// Is this process steered? The same rule as the engine's: `MIFSHIM_DISABLE=1` no;
/// `MIFSHIM_VIA` or `MIFSHIM_POLICY` yes; otherwise a policy file at
/// `$XDG_CONFIG_HOME/mifshim/policy.toml` (`$HOME/.config/…`) or
/// `/etc/mifshim/policy.toml`.
fn decide_mode(v: &Vars) -> u8 {
    let d = v[DISABLE];
    // SAFETY: a non-NULL value is a NUL-terminated string (see `Vars`).
    let disable =
        (!d.is_null()).then(|| unsafe { core::slice::from_raw_parts(d, cstr_len(d.cast())) });
    match mifshim_abi::steering(disable, !v[VIA].is_null(), !v[POLICY].is_null()) {
        mifshim_abi::Steering::Off => return INERT,
        mifshim_abi::Steering::On => return ACTIVE,
        mifshim_abi::Steering::IfPolicyFile => {}
    }
    let user = match (v[XDG_CONFIG_HOME], v[HOME]) {
        (x, _) if !x.is_null() => file_exists(|p| {
            // SAFETY: x is a NUL-terminated value (see `Vars`).
            unsafe { p.cstr(x) };
            p.bytes(mifshim_abi::POLICY_UNDER_XDG.as_bytes());
        }),
        (_, h) if !h.is_null() => file_exists(|p| {
            // SAFETY: h is a NUL-terminated value (see `Vars`).
            unsafe { p.cstr(h) };
            p.bytes(mifshim_abi::POLICY_UNDER_HOME.as_bytes());
        }),
        _ => false,
    };
    if user || file_exists(|p| p.bytes(mifshim_abi::SYSTEM_POLICY.as_bytes())) {
        ACTIVE
    } else {
        INERT
    }
}

fn active() -> bool {
    match MODE.load(Acquire) {
        ACTIVE => true,
        INERT => false,
        _ => {
            // A hook ran before our constructor (another library's constructor made a
            // socket call): decide now; whoever decides first sets up what the
            // constructor would have.
            let vars = vars_from_getenv();
            let m = decide_mode(&vars);
            if MODE.compare_exchange(UNKNOWN, m, AcqRel, Acquire).is_ok() && m == ACTIVE {
                keep_exec_vars(&vars);
                #[cfg(target_os = "linux")]
                exec::keep_start_environ();
                register_fork_handlers();
            }
            MODE.load(Acquire) == ACTIVE
        }
    }
}

/// What the exec hooks build the supervisor's command line from (pointers into the
/// environment block, which lives as long as the process).
fn keep_exec_vars(v: &Vars) {
    #[cfg(target_os = "linux")]
    for (slot, i) in [
        (&exec::MIFRUN, MIFRUN),
        (&exec::VIA, VIA),
        (&exec::POLICY, POLICY),
        (&exec::DNS, DNS),
        (&exec::SUPERVISED, SUPERVISED),
    ] {
        slot.store(v[i].cast_mut(), Release);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (v, MIFRUN, DNS, SUPERVISED);
}

fn register_fork_handlers() {
    // SAFETY: registering handlers has no preconditions (DSO_HANDLE is an address
    // inside this object). Done at start-up (never from within a prepare handler:
    // glibc before 2.36 holds the lock pthread_atfork takes while it runs them, and
    // ours loads the engine).
    #[cfg(target_env = "gnu")]
    unsafe {
        __register_atfork(
            Some(before_fork),
            None,
            Some(after_fork_child),
            (&raw const DSO_HANDLE).cast_mut().cast(),
        )
    };
    // SAFETY: as above (a C library whose pthread_atfork is a function of its own).
    #[cfg(not(target_env = "gnu"))]
    unsafe {
        libc::pthread_atfork(Some(before_fork), None, Some(after_fork_child))
    };
}

/// The engine lives next to this library: `<dir of libmifshim.so>/libmifshim_engine.so`
/// (written to `ENGINE_PATH`); the path's length, or `None` if this library's own path
/// is unknown or the engine's does not fit.
fn locate_engine() -> Option<usize> {
    // SAFETY: a zeroed Dl_info is valid; dladdr fills it for an address inside a loaded
    // object (our own constructor).
    let mut info: libc::Dl_info = unsafe { core::mem::zeroed() };
    let me = constructor as *const c_void;
    let ok = c_call!(
        C_DLADDR,
        fn(*const c_void, *mut libc::Dl_info) -> c_int,
        (me, &mut info)
    );
    if ok.is_none_or(|r| r == 0) || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: single-threaded use (see `Buf`).
    let buf = unsafe { &mut *ENGINE_PATH.0.get() };
    // SAFETY: buf is valid for writes of its length (a static).
    let mut path = unsafe { PathBuf::new(buf.as_mut_ptr(), buf.len()) };
    // SAFETY: dli_fname is a NUL-terminated path owned by the loader.
    unsafe { path.cstr(info.dli_fname.cast()) };
    path.dir();
    if path.len == 0 {
        path.bytes(b"./");
    }
    path.bytes(b"libmifshim_engine.so");
    path.ok.then_some(path.len)
}

extern "C" fn constructor(_argc: c_int, argv: *const *const c_char, envp: *const *const c_char) {
    if !argv.is_null() {
        // SAFETY: glibc passes the process's argv to `.init_array` functions.
        ARGV0.store(unsafe { *argv } as *mut c_char, Release);
    }
    // A hook may have decided already (see `active`); then it also registered the
    // fork handlers (and may have loaded the engine).
    if MODE.load(Acquire) != UNKNOWN {
        return;
    }
    let vars = if envp.is_null() {
        vars_from_getenv()
    } else {
        // SAFETY: glibc passes the process's environment block to `.init_array`
        // functions.
        unsafe { vars_from_envp(envp) }
    };
    let m = decide_mode(&vars);
    if MODE.compare_exchange(UNKNOWN, m, AcqRel, Acquire).is_ok() && m == ACTIVE {
        keep_exec_vars(&vars);
        #[cfg(target_os = "linux")]
        if envp.is_null() {
            exec::keep_start_environ();
        } else {
            // SAFETY: the process's environment block (see above).
            unsafe { exec::keep_start_env(envp) };
        }
        register_fork_handlers();
    }
    // Nothing is resolved here: each `dlsym` costs ~800 instructions, and most
    // processes of a steered tree (shells, `sed`) call few of the hooked functions.
    // A hook resolves its own on first use; the engine's load resolves them all.
}

#[used]
#[unsafe(link_section = ".init_array")]
static CONSTRUCTOR: extern "C" fn(c_int, *const *const c_char, *const *const c_char) = constructor;

/// Loads the engine in the parent before a `fork`, where loading is safe, so that the
/// child (which may be one thread of a multi-threaded parent) never calls `dlopen`.
unsafe extern "C" fn before_fork() {
    if active() {
        ensure_engine();
        share_with_child();
    }
}

/// In the child: lets the engine (if loaded) clear what a thread of the parent held.
unsafe extern "C" fn after_fork_child() {
    if let Some(f) = AFTER_FORK_CHILD.get() {
        // SAFETY: the engine's entry point; no preconditions.
        unsafe { f() };
    }
}

/// The engine's `after_fork_child` (`mifshim_abi::Engine`), once loaded.
static AFTER_FORK_CHILD: Slot<mifshim_abi::AfterForkChild> = Slot::new();

/// The engine's `jumping`, once loaded.
static JUMPING: Slot<mifshim_abi::Jumping> = Slot::new();

/// The engine's `readable`, once loaded.
static READABLE: Slot<mifshim_abi::Readable> = Slot::new();

/// Whether the program's `len` bytes at `p` may be read here without faulting: the
/// engine's check (a cache of pages it found readable; a system call on a miss).
/// Before the engine is loaded nothing is known: `true`, the stub reads as before (the
/// first `AF_INET`/`AF_INET6` socket loads the engine).
fn readable(p: *const c_void, len: usize) -> bool {
    match READABLE.get() {
        // SAFETY: the engine's check, which only asks about the bytes.
        Some(f) => unsafe { f(p, len) },
        None => true,
    }
}

/// The engine's per-fd table (`mifshim_abi::Engine::fast`), once loaded: the datagram fast
/// path reads it (see `mifshim_fastpath`).
static FAST: AtomicPtr<Shared> = AtomicPtr::new(null_mut());

/// `CLOCK_MONOTONIC_COARSE` in milliseconds, from the vDSO where there is one (no
/// system call, no hook, async-signal-safe). If the clock cannot be read, `u64::MAX`
/// (every snapshot then counts as stale: the engine decides) and errno is kept.
fn coarse_now_ms() -> u64 {
    let saved = errno();
    // SAFETY: the C library's clock_gettime has this signature.
    let ms = unsafe { C_CLOCK_GETTIME.typed::<mifshim_abi::ClockGettime>() }
        .and_then(mifshim_abi::coarse_now_ms);
    ms.unwrap_or_else(|| {
        set_errno(saved);
        u64::MAX
    })
}

/// The engine's table, if it is loaded.
fn shared() -> Option<&'static Shared> {
    let p = FAST.load(Acquire);
    // SAFETY: FAST is null or points to the engine's static table, which lives as long
    // as the engine, which is never unloaded.
    (!p.is_null()).then(|| unsafe { &*p })
}

/// Whether a datagram to `addr` on `fd` may skip the engine: the engine already set
/// the socket's unicast interface for the last datagram, which went to the same
/// destination, under a snapshot that is still fresh (`mifshim_fastpath::is_fast`).
/// Makes no call but the vDSO clock; touches no thread-local; keeps errno.
fn fast_datagram(fd: c_int, addr: *const sockaddr, len: socklen_t) -> bool {
    let Some(shared) = shared() else {
        return false;
    };
    // The program's address is read only for a socket the engine promoted (whose
    // address the engine itself read and checked before).
    let Some(slot) = mifshim_fastpath::promoted_slot(shared, fd) else {
        return false;
    };
    // SAFETY: sendto(2)/sendmsg(2)'s contract: addr points to len readable bytes.
    let Some(key) = (unsafe { mifshim_abi::key_at(addr, len) }) else {
        return false;
    };
    mifshim_fastpath::is_fast_at(shared, slot, fd, &key, coarse_now_ms())
}

/// Calls `f` for every fd an `SCM_RIGHTS` control message in `msg`'s control data
/// carries (`msg_controllen` as the kernel left it after a receive, as the program
/// gave it for a send), walked as the kernel walks it (`mifshim_fastpath::passed_fds`).
///
/// # Safety
/// `msg` is NULL or a valid msghdr whose control data the kernel has just read or
/// written for its length (so it is readable).
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
    let ctl = unsafe { core::slice::from_raw_parts(control, len) };
    mifshim_fastpath::passed_fds(ctl, f);
}

/// After a send with control data: a socket passed to another process by `SCM_RIGHTS`
/// is held there too (`mifshim_fastpath::SHARED`).
fn mark_passed(msg: *const msghdr) {
    let Some(shared) = shared() else {
        return;
    };
    // SAFETY: sendmsg(2)'s contract: msg is a valid msghdr.
    unsafe { for_each_passed_fd(msg, |fd| mifshim_fastpath::mark_shared(shared, fd)) };
}

/// After a successful `sendmsg` (straight to the C library or through the engine): the
/// kernel read the control data, so it is readable; fds it passed by `SCM_RIGHTS` are
/// held elsewhere now.
fn sendmsg_done(r: isize, (_fd, msg, _flags): (c_int, *const msghdr, c_int)) {
    // SAFETY: sendmsg(2)'s contract: msg is a valid msghdr.
    if r >= 0 && !msg.is_null() && unsafe { (*msg).msg_controllen } != 0 {
        mark_passed(msg);
    }
}

/// After a successful `sendmmsg` (either way): as [`sendmsg_done`] for every message
/// sent.
fn sendmmsg_done(r: c_int, (_fd, msgs, _vlen, _flags): (c_int, *mut mmsghdr, c_uint, c_int)) {
    if r <= 0 || msgs.is_null() {
        return;
    }
    for i in 0..r as usize {
        // SAFETY: the kernel sent the first r messages of the program's array.
        let h = unsafe { &raw const (*msgs.add(i)).msg_hdr };
        // SAFETY: as above.
        if unsafe { (*h).msg_controllen } != 0 {
            mark_passed(h);
        }
    }
}

/// After `recvmsg`: fds received by `SCM_RIGHTS` are new to this process; whatever
/// their numbers described before is gone.
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

/// After `recvmmsg`: as [`recvmsg_done`] for every message received.
fn recvmmsg_done(
    r: c_int,
    (_fd, msgs, _vlen, _flags, _t): (c_int, *mut mmsghdr, c_uint, c_int, *mut libc::timespec),
) {
    if r <= 0 || msgs.is_null() {
        return;
    }
    let Some(shared) = shared() else {
        return;
    };
    for i in 0..r as usize {
        // SAFETY: recvmmsg(2) filled the first r entries of the program's array.
        unsafe {
            for_each_passed_fd(&raw const (*msgs.add(i)).msg_hdr, |fd| {
                mifshim_fastpath::forget(shared, fd)
            })
        };
    }
}

/// `sendto` needs nothing from the engine when it names no destination (a connected
/// socket: its interface was chosen at `connect`) or takes the fast path.
fn sendto_direct(fd: c_int, addr: *const sockaddr, len: socklen_t) -> bool {
    addr.is_null() || fast_datagram(fd, addr, len)
}

/// `sendmsg` likewise, by its `msg_name`.
fn sendmsg_direct(fd: c_int, msg: *const msghdr) -> bool {
    if msg.is_null() || !readable(msg.cast(), core::mem::size_of::<msghdr>()) {
        return false;
    }
    // SAFETY: sendmsg(2)'s contract: msg points to a valid msghdr.
    let (name, len) = unsafe { ((*msg).msg_name, (*msg).msg_namelen) };
    // SAFETY: as above.
    let h = unsafe { &*msg };
    if name.is_null() {
        // A connected socket's datagram may still give itself a source, which the
        // engine checks against the interface the shim bound the socket to — on its
        // own copy of the control data, which is what the kernel then gets (checked
        // here, another thread could rewrite it before the kernel reads it).
        return h.msg_controllen == 0 || !shim_bound(fd);
    }
    fast_datagram(fd, name.cast(), len) && control_is_plain(h)
}

/// Whether the engine must see a connected socket's datagram with control data: its
/// entry says the shim bound it to a device (`mifshim_fastpath::SHIM_BOUND`), or it
/// holds a binding found on a socket received or inherited (`FOUND_BOUND`), or the
/// engine does not know the socket yet (no valid entry, e.g. just received by
/// `SCM_RIGHTS`). No engine: no binding of this process's shim, and nothing to check.
fn shim_bound(fd: c_int) -> bool {
    use mifshim_fastpath::{FOUND_BOUND, SHIM_BOUND, VALID};
    shared().is_some_and(|s| {
        mifshim_fastpath::slot(&s.fds, fd).is_none_or(|slot| {
            let e = slot.entry.load(Acquire);
            e & VALID == 0 || e & (SHIM_BOUND | FOUND_BOUND) != 0
        })
    })
}

/// Whether a message's control data surely gives the datagram no source address of
/// its own (`mifshim_fastpath::may_carry_source`): with one, the kernel takes the
/// socket's unicast interface only as a preference on the IPv6 path, so the engine
/// must decide it (it binds the socket to the device, or refuses). Data that cannot
/// be read, or is long, goes to the engine too.
fn control_is_plain(h: &msghdr) -> bool {
    /// Longer control data than this goes to the engine (which cannot copy it either).
    const LONGEST: usize = 4096;
    let (control, n) = (h.msg_control as *const u8, h.msg_controllen);
    if n == 0 {
        return true;
    }
    if control.is_null() || n > LONGEST || !readable(control.cast(), n) {
        return false;
    }
    // SAFETY: n readable bytes at control (checked just above).
    let ctl = unsafe { core::slice::from_raw_parts(control, n) };
    !mifshim_fastpath::may_carry_source(ctl)
}

/// After `socket` with the engine loaded: the entry the engine's own `socket` hook
/// would write (`mifshim_fastpath::entry_for_socket`), written here without the trip
/// through the engine. Keeps errno (the chunk's `mmap` may fail; the engine then asks
/// the kernel about the socket when it needs to).
fn socket_done(fd: c_int, (domain, ty, protocol): (c_int, c_int, c_int)) {
    let Some(shared) = shared() else {
        return;
    };
    if fd < 0 {
        return;
    }
    let saved = errno();
    let map = |bytes: usize| {
        // SAFETY: the C library's mmap has this signature.
        let mmap = unsafe { C_MMAP.typed::<mifshim_abi::Mmap>() }?;
        mifshim_abi::map_zeroed(mmap, bytes).map(|p| p.cast())
    };
    let unmap = |p: *mut mifshim_fastpath::FdSlot, bytes: usize| {
        // `p` came from the mmap above and was never published.
        c_call!(C_MUNMAP, fn(*mut c_void, usize) -> c_int, (p.cast(), bytes));
    };
    // SAFETY: map returns zeroed anonymous memory (all-zero is a valid FdSlot) that is
    // unmapped only when it was never published.
    let slot = unsafe { mifshim_fastpath::slot_create(&shared.fds, fd, map, unmap) };
    if let Some(slot) = slot {
        mifshim_fastpath::set_entry(
            slot,
            mifshim_fastpath::entry_for_socket(domain, ty, protocol),
        );
    }
    set_errno(saved);
}

/// Standard error was closed before the engine was loaded (see `close_direct`).
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);

/// If standard error was closed before the engine's table was published, and the
/// engine logs to fd 2, make it silent. Called by both sides of that race (the
/// closing thread after setting the flag, the loading thread after publishing the
/// table; sequentially consistent, so one of them sees the other's write).
fn apply_stderr_closed() {
    if !STDERR_CLOSED.load(SeqCst) {
        return;
    }
    let p = FAST.load(SeqCst);
    if !p.is_null() {
        // SAFETY: FAST points to the engine's static table (see `shared`).
        let shared = unsafe { &*p };
        let _ = shared
            .log_fd
            .compare_exchange(2, mifshim_fastpath::LOG_SILENT, SeqCst, SeqCst);
    }
}

/// `close` with the engine loaded: the engine only forgets the fd (unless it is the
/// engine's log file, whose closing it must see), so forget it here. Before the
/// engine is loaded, a close of standard error is noted for it: its first lines must
/// not go to whatever the program opens as fd 2 next.
fn close_direct(fd: c_int) -> bool {
    match shared() {
        Some(shared) if fd != shared.log_fd.load(Acquire) => {
            mifshim_fastpath::forget(shared, fd);
            true
        }
        Some(_) => false,
        None => {
            if fd == 2 && MODE.load(Acquire) == ACTIVE {
                STDERR_CLOSED.store(true, SeqCst);
                // The engine may have been published meanwhile.
                apply_stderr_closed();
            }
            false
        }
    }
}

/// Receives (and `getpeername`) need the engine only on a socket whose DNS traffic it
/// redirected, to show the answers as coming from the server the program asked.
fn not_redirected(fd: c_int) -> bool {
    shared().is_some_and(|s| {
        mifshim_fastpath::slot(&s.fds, fd)
            .is_none_or(|slot| slot.entry.load(Acquire) & mifshim_fastpath::REDIRECTED == 0)
    })
}

/// `sendmmsg` likewise, when every message qualifies (one clock read for the batch).
fn sendmmsg_direct(fd: c_int, msgs: *const mmsghdr, vlen: c_uint) -> bool {
    // The kernel takes at most UIO_MAXIOV (1024) messages; the array must be readable
    // that far (else the engine answers as the kernel would).
    let n = (vlen as usize).min(mifshim_abi::UIO_MAXIOV);
    if msgs.is_null() || vlen == 0 || !readable(msgs.cast(), n * core::mem::size_of::<mmsghdr>()) {
        return false;
    }
    let shared = shared();
    // The slot and the clock, looked up at the first message that names a destination
    // (once for the batch); a socket the engine did not promote never reads a name.
    let mut fast = None;
    // Whether a nameless message's control data takes the batch to the engine.
    let mut bound = None;
    // The kernel sends at most UIO_MAXIOV (1024) messages of a batch; no need to look
    // further (and the program's array may be no longer than that).
    for i in 0..n {
        // SAFETY: sendmmsg(2)'s contract: msgs points to vlen valid entries; i < vlen.
        let h = unsafe { &(*msgs.add(i)).msg_hdr };
        let (name, len) = (h.msg_name, h.msg_namelen);
        if name.is_null() {
            // As in `sendmsg_direct` (asked once for the batch).
            if h.msg_controllen != 0 && *bound.get_or_insert_with(|| shim_bound(fd)) {
                return false;
            }
            continue;
        }
        if !control_is_plain(h) {
            return false;
        }
        let (shared, slot, now) = match fast {
            Some(f) => f,
            None => {
                let Some(shared) = shared else {
                    return false;
                };
                let Some(slot) = mifshim_fastpath::promoted_slot(shared, fd) else {
                    return false;
                };
                *fast.insert((shared, slot, coarse_now_ms()))
            }
        };
        // SAFETY: sendmmsg(2)'s contract: each message's name has its length.
        let Some(key) = (unsafe { mifshim_abi::key_at(name.cast(), len) }) else {
            return false;
        };
        if !mifshim_fastpath::is_fast_at(shared, slot, fd, &key, now) {
            return false;
        }
    }
    true
}

fn write_err(parts: &[&[u8]]) {
    if STDERR_CLOSED.load(Acquire) {
        // Fd 2 may be anything of the program's by now.
        return;
    }
    // One writev (no copy: a memcpy call would be one more import), so that the line
    // goes out whole. Errno is restored by the caller.
    let mut iov = [libc::iovec {
        iov_base: null_mut(),
        iov_len: 0,
    }; 8];
    let mut n = 0;
    for (v, p) in iov.iter_mut().zip(parts) {
        *v = libc::iovec {
            iov_base: p.as_ptr().cast_mut().cast(),
            iov_len: p.len(),
        };
        n += 1;
    }
    // The iovecs describe the caller's slices, valid for reads.
    c_call!(
        C_WRITEV,
        fn(c_int, *const libc::iovec, c_int) -> isize,
        (2, iov.as_ptr(), n)
    );
}

/// Loads the engine once; `true` when it is ready. Keeps errno.
///
/// One thread claims the load (`NONE` → its loading word) and does it with every
/// signal blocked, so that no handler runs on it halfway through `dlopen` (a handler
/// that makes a socket call would otherwise wait for its own thread); the others sleep
/// on the state word until it is published (`wait_for_load`).
fn ensure_engine() -> bool {
    match ENGINE.load(Acquire) {
        READY => return true,
        FAILED => return false,
        _ => {}
    }
    let saved = errno();
    if ENGINE.load(Acquire) == NONE {
        // Every C library function a hook or the stub itself may call from now on, in
        // normal context and before the load is claimed: a child made by a raw `clone`
        // while the load runs (which inherits this memory) finds them too.
        resolve_all();
        resolve_lazy_all();
    }
    let me = getpid();
    let ready = match ENGINE.compare_exchange(NONE, loading(me), AcqRel, Acquire) {
        Ok(_) => {
            LOADER_TID.store(gettid(), Release);
            let mask = block_all_signals();
            let fast = load_engine();
            test_load_delay();
            ENGINE.store(if fast.is_some() { READY } else { FAILED }, Release);
            if let Some(fast) = fast {
                // After READY: a hook that sees the table may rely on the engine being there.
                FAST.store(fast, SeqCst);
                apply_stderr_closed();
            }
            futex_wake_all(&ENGINE);
            // Signals that came during the load are delivered now, with the engine there.
            restore_signals(&mask);
            fast.is_some()
        }
        Err(word) => wait_for_load(word, me),
    };
    set_errno(saved);
    ready
}

/// How long a thread waits for another thread's load before it fails its call: far
/// beyond any real load (a few ms; a policy file of thousands of rules takes longer),
/// there only so that a deadlock the program's own locks could build around `dlopen`
/// ends in a failed call and one line instead of a hang.
const LOAD_WAIT_LIMIT_MS: u64 = 30_000;

/// Waits for the load another thread is doing (`word`: the state as last seen);
/// `true` when the engine is ready.
fn wait_for_load(mut word: u32, me: u32) -> bool {
    let mut started = None;
    loop {
        match word {
            READY => return true,
            FAILED => return false,
            NONE => return ensure_engine(),
            _ => {}
        }
        if loader_pid(word) != me {
            // Created by a path no hook sees (a raw clone/fork system call; `fork`,
            // `_Fork` and `clone` wait for the load first) while the parent was loading:
            // the loading thread is not in this process, and its half-done `dlopen` may
            // have left the loader's lock held here, so loading afresh is not safe.
            warn_once(
                &WARNED_INHERITED,
                b"mifshim: this process was created by a raw clone/fork system call while its parent was loading the engine; steered calls fail closed\n",
            );
            return false;
        }
        if LOADER_TID.load(Acquire) == gettid() {
            // This thread is the loader (a hook reached from the load itself): it cannot
            // wait for itself.
            warn_once(
                &WARNED_RECURSIVE,
                b"mifshim: a socket call made while this thread loads the engine fails closed\n",
            );
            return false;
        }
        let now = coarse_now_ms();
        let t0 = *started.get_or_insert(now);
        if now.saturating_sub(t0) > LOAD_WAIT_LIMIT_MS {
            warn_once(
                &WARNED_SLOW,
                b"mifshim: waited 30 s for another thread to load the engine; failing closed\n",
            );
            return false;
        }
        futex_wait(&ENGINE, word, 100);
        word = ENGINE.load(Acquire);
    }
}

static WARNED_INHERITED: AtomicBool = AtomicBool::new(false);
static WARNED_RECURSIVE: AtomicBool = AtomicBool::new(false);
static WARNED_SLOW: AtomicBool = AtomicBool::new(false);

fn warn_once(flag: &AtomicBool, line: &[u8]) {
    if !flag.swap(true, AcqRel) {
        write_err(&[line]);
    }
}

fn getpid() -> u32 {
    // getpid has no preconditions.
    syscall4(libc::SYS_getpid, 0, 0, 0, 0) as u32
}

fn gettid() -> u32 {
    // gettid has no preconditions.
    syscall4(libc::SYS_gettid, 0, 0, 0, 0) as u32
}

/// Sleeps while `*word == val`, at most `ms` milliseconds (or until woken, or a signal).
fn futex_wait(word: &AtomicU32, val: u32, ms: u64) {
    let ts = libc::timespec {
        tv_sec: (ms / 1000) as libc::time_t,
        tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
    };
    // word is a valid, aligned 32-bit atomic for the call; ts is a valid relative
    // timeout. FUTEX_WAIT only reads the word.
    syscall4(
        libc::SYS_futex,
        word.as_ptr() as usize,
        (libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG) as usize,
        val as usize,
        &ts as *const libc::timespec as usize,
    );
}

fn futex_wake_all(word: &AtomicU32) {
    // word is a valid, aligned 32-bit atomic; FUTEX_WAKE only wakes waiters.
    syscall4(
        libc::SYS_futex,
        word.as_ptr() as usize,
        (libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG) as usize,
        i32::MAX as usize,
        0,
    );
}

/// Blocks every signal on this thread (glibc keeps its own two, for cancellation and
/// `setuid` across threads, deliverable); the previous mask.
fn block_all_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; all-zero is a valid (empty) set.
    let mut old: libc::sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: as above; every bit set is the full set (what sigfillset writes, without
    // one more import for every process).
    let mut all: libc::sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: all is a valid sigset_t, written over its own size.
    unsafe { core::ptr::write_bytes(&mut all, 0xff, 1) };
    // Both sets are valid for the call.
    c_call!(
        C_PTHREAD_SIGMASK,
        fn(c_int, *const libc::sigset_t, *mut libc::sigset_t) -> c_int,
        (libc::SIG_SETMASK, &all, &mut old)
    );
    old
}

fn restore_signals(mask: &libc::sigset_t) {
    // mask is the set pthread_sigmask returned.
    c_call!(
        C_PTHREAD_SIGMASK,
        fn(c_int, *const libc::sigset_t, *mut libc::sigset_t) -> c_int,
        (libc::SIG_SETMASK, mask, null_mut())
    );
}

/// **Test only**: `MIFSHIM_TEST_LOAD_DELAY_MS=N` (at most 10 000) makes the engine's
/// load take N ms longer, so that the end-to-end tests can make calls, forks and signals
/// land while a load is in progress. Read only by the thread that loads the engine (a
/// process that never loads it never looks); not a configuration knob.
fn test_load_delay() {
    let v = c_call!(
        C_GETENV,
        fn(*const c_char) -> *mut c_char,
        (c"MIFSHIM_TEST_LOAD_DELAY_MS".as_ptr())
    )
    .unwrap_or(null_mut());
    if v.is_null() {
        return;
    }
    // SAFETY: getenv returned a NUL-terminated string.
    let v = unsafe { core::slice::from_raw_parts(v.cast::<u8>(), cstr_len(v)) };
    if v.is_empty() {
        return;
    }
    let mut ms: u64 = 0;
    for b in v {
        if !b.is_ascii_digit() {
            return;
        }
        ms = (ms * 10 + u64::from(b - b'0')).min(10_000);
    }
    let mut ts = libc::timespec {
        tv_sec: (ms / 1000) as libc::time_t,
        tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
    };
    // Raw nanosleep: no new import for every process; a signal's EINTR resumes with
    // what is left.
    loop {
        let mut rem = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // ts and rem are valid timespecs for the call.
        let r = syscall4(
            libc::SYS_nanosleep,
            &ts as *const libc::timespec as usize,
            &mut rem as *mut libc::timespec as usize,
            0,
            0,
        );
        if r == 0 || errno() != libc::EINTR {
            return;
        }
        ts = rem;
    }
}

/// Loads and initialises the engine; its shared table on success.
fn load_engine() -> Option<*mut Shared> {
    let Some(end) = locate_engine() else {
        write_err(&[
            b"mifshim: cannot find libmifshim.so's own path (for its engine's); failing closed\n",
        ]);
        return None;
    };
    // SAFETY: written just above, by the only thread that loads (see `Buf`).
    let path = unsafe { &*ENGINE_PATH.0.get() };
    // path is NUL-terminated (PathBuf); RTLD_LOCAL keeps the engine's symbols out of
    // the global scope, so it interposes on nothing.
    let h = c_call!(
        C_DLOPEN,
        fn(*const c_char, c_int) -> *mut c_void,
        (path.as_ptr().cast(), libc::RTLD_NOW | libc::RTLD_LOCAL)
    )
    .unwrap_or(null_mut());
    let path = &path[..end];
    if h.is_null() {
        let e = c_call!(C_DLERROR, fn() -> *mut c_char, ()).unwrap_or(null_mut());
        let msg = if e.is_null() {
            b"unknown error".as_slice()
        } else {
            // SAFETY: dlerror returns NULL or a NUL-terminated message.
            unsafe { core::slice::from_raw_parts(e.cast::<u8>(), cstr_len(e)) }
        };
        write_err(&[
            b"mifshim: cannot load ",
            path,
            b": ",
            msg,
            b"; failing closed\n",
        ]);
        return None;
    }
    // SAFETY: the symbol name is NUL-terminated; h is a valid handle.
    let sym = unsafe { libc::dlsym(h, mifshim_abi::ENGINE_SYMBOL.as_ptr()) };
    // SAFETY: when present, the symbol is some engine build's `Engine`, whose version
    // and size lead in every version (`Engine::check` reads the rest only when they are
    // this build's).
    let Some(engine) = (unsafe { Engine::check(sym.cast()) }) else {
        write_err(&[
            b"mifshim: ",
            path,
            b" is not a mifshim engine of this version; failing closed\n",
        ]);
        return None;
    };
    if STDERR_CLOSED.load(SeqCst) {
        // Standard error was closed before the engine was loaded: it must not log to
        // fd 2 (now maybe the program's socket), not even while it starts.
        engine
            .shared()
            .log_fd
            .store(mifshim_fastpath::LOG_SILENT, Release);
    }
    bind_engine(engine);
    AFTER_FORK_CHILD.set(Some(engine.after_fork_child));
    JUMPING.set(Some(engine.jumping));
    READABLE.set(Some(engine.readable));
    let reals = reals();
    // SAFETY: reals lives for the call; ARGV0 is NULL or argv[0].
    // No `OwnCalls`: glibc has no non-cancellable entry points to hand over.
    let ok = unsafe { (engine.init)(&reals, core::ptr::null(), ARGV0.load(Acquire)) == 0 };
    ok.then_some(engine.fast.cast_mut())
}

fn engine_ready() -> bool {
    ENGINE.load(Acquire) == READY
}

// ---------------------------------------------------------------------------------
// Hooks outside the table: signal handlers and the fork-like calls without atfork
// handlers. The engine has no part in them; they only load it (or wait for its load)
// first, in normal context, then forward.
// ---------------------------------------------------------------------------------

/// A C library function one of these hooks forwards to: `dlsym(RTLD_NEXT)` on first
/// use (most processes call few of them, and a process that never calls one pays
/// nothing), and all of them when the engine is loaded, so that a hook running later
/// in a signal handler or a forked child finds its pointer already there.
struct Lazy {
    ptr: AtomicPtr<c_void>,
    /// The name, NUL-terminated, held in place rather than pointed to: a pointer in a
    /// static is one more relocation for the loader in every process.
    name: [u8; LAZY_NAME_MAX],
}

/// The longest name a `Lazy` holds, with its NUL (a longer one does not compile).
const LAZY_NAME_MAX: usize = 24;

impl Lazy {
    const fn new(name: &'static core::ffi::CStr) -> Self {
        let b = name.to_bytes_with_nul();
        let mut held = [0u8; LAZY_NAME_MAX];
        let mut i = 0;
        while i < b.len() {
            held[i] = b[i];
            i += 1;
        }
        Self {
            ptr: AtomicPtr::new(null_mut()),
            name: held,
        }
    }

    /// The function's address, or NULL (then the hook fails with ENOSYS).
    fn get(&self) -> *mut c_void {
        let p = self.ptr.load(Acquire);
        if !p.is_null() {
            return p;
        }
        // dlsym keeps errno in practice; this keeps it for sure (the callers read
        // errno before or after).
        let saved = errno();
        // SAFETY: the name is NUL-terminated (`new` copied the CStr's NUL); RTLD_NEXT
        // looks past this object.
        let p = unsafe { libc::dlsym(libc::RTLD_NEXT, self.name.as_ptr().cast()) };
        set_errno(saved);
        self.ptr.store(p, Release);
        p
    }

    /// The function as type `F`, or `None`.
    ///
    /// # Safety
    /// `F` is the C signature of the C library's function of this name.
    unsafe fn typed<F: FnPtr>(&self) -> Option<F> {
        let p = self.get();
        // SAFETY: the caller's contract; F is a pointer-sized function pointer.
        (!p.is_null()).then(|| unsafe { core::mem::transmute_copy::<*mut c_void, F>(&p) })
    }
}

static REAL_SIGACTION: Lazy = Lazy::new(c"sigaction");
static REAL_SIGNAL: Lazy = Lazy::new(c"signal");
static REAL_BSD_SIGNAL: Lazy = Lazy::new(c"bsd_signal");
static REAL_SSIGNAL: Lazy = Lazy::new(c"ssignal");
static REAL_SYSV_SIGNAL: Lazy = Lazy::new(c"sysv_signal");
static REAL___SYSV_SIGNAL: Lazy = Lazy::new(c"__sysv_signal");
static REAL_SIGSET: Lazy = Lazy::new(c"sigset");
static REAL__FORK: Lazy = Lazy::new(c"_Fork");
static REAL_CLONE: Lazy = Lazy::new(c"clone");
static REAL___CLONE: Lazy = Lazy::new(c"__clone");
static REAL_POSIX_SPAWN: Lazy = Lazy::new(c"posix_spawn");
static REAL_POSIX_SPAWNP: Lazy = Lazy::new(c"posix_spawnp");
static REAL_SYSTEM: Lazy = Lazy::new(c"system");
static REAL_POPEN: Lazy = Lazy::new(c"popen");
static REAL_VFORK: Lazy = Lazy::new(c"vfork");
static REAL_LONGJMP: Lazy = Lazy::new(c"longjmp");
static REAL___RECVFROM_CHK: Lazy = Lazy::new(c"__recvfrom_chk");
static REAL__LONGJMP: Lazy = Lazy::new(c"_longjmp");
static REAL_SIGLONGJMP: Lazy = Lazy::new(c"siglongjmp");
static REAL___LONGJMP_CHK: Lazy = Lazy::new(c"__longjmp_chk");

fn resolve_lazy_all() {
    for l in [
        &REAL_SIGACTION,
        &REAL_SIGNAL,
        &REAL_BSD_SIGNAL,
        &REAL_SSIGNAL,
        &REAL_SYSV_SIGNAL,
        &REAL___SYSV_SIGNAL,
        &REAL_SIGSET,
        &REAL__FORK,
        &REAL_CLONE,
        &REAL___CLONE,
        &REAL_POSIX_SPAWN,
        &REAL_POSIX_SPAWNP,
        &REAL_SYSTEM,
        &REAL_POPEN,
        &REAL_VFORK,
        &REAL_LONGJMP,
        &REAL___RECVFROM_CHK,
        &REAL__LONGJMP,
        &REAL_SIGLONGJMP,
        &REAL___LONGJMP_CHK,
        // The stub's own C library functions that may run once the engine is loaded
        // (or failed to load): the datagram fast path's clock, the table's mmap, the
        // futex and getpid/gettid system calls, the warnings, the fail-closed h_errno.
        // The others (getenv, access, dladdr, dlopen, dlerror, pthread_sigmask) run
        // only before the load, from the constructor or in the thread that claimed the
        // load: never in a handler or a child.
        &C_WRITEV,
        &C_ABORT,
        &C_SYSCALL,
        &C_CLOCK_GETTIME,
        &C_MMAP,
        &C_MUNMAP,
        &C_H_ERRNO_LOCATION,
    ] {
        l.get();
    }
    #[cfg(target_os = "linux")]
    exec::resolve();
}

/// A program installing a signal handler (not `SIG_DFL`, `SIG_IGN`, `SIG_HOLD` or
/// `SIG_ERR`) may make socket calls from it, at any moment, also in the middle of a
/// `malloc`: load the engine now, in normal context, so that no handler ever has to
/// (`dlopen` and the engine's start-up allocate).
fn before_handler_installed(handler: libc::sighandler_t) {
    if handler > 2 && handler != libc::SIG_ERR && active() {
        let _ = ensure_engine();
    }
}

/// `socket()` of an INET family loads the engine before the socket exists (the first
/// call that needs a decision then finds it there), also for a program that installed
/// its handlers by a path no hook sees; then the stub records the socket itself. An
/// MPTCP socket goes to the engine, which refuses it in a steered process
/// (`ops::socket_refused`).
fn socket_direct(domain: c_int, protocol: c_int) -> bool {
    if shared().is_none() && (domain == libc::AF_INET || domain == libc::AF_INET6) && active() {
        let _ = ensure_engine();
    }
    shared().is_some() && protocol != libc::IPPROTO_MPTCP
}

/// Calls `lazy`'s function as type `F`, or fails with ENOSYS and `fail`.
macro_rules! forward {
    ($lazy:expr, $fail:expr, fn($($t:ty),*) -> $r:ty, ($($a:expr),*)) => {{
        let p = $lazy.get();
        if p.is_null() {
            set_errno(libc::ENOSYS);
            $fail
        } else {
            type F = unsafe extern "C" fn($($t),*) -> $r;
            // SAFETY: p is the C library's function of this name, which has this C
            // signature.
            let f: F = unsafe { core::mem::transmute::<*mut c_void, F>(p) };
            // SAFETY: the program's arguments, forwarded.
            unsafe { f($($a),*) }
        }
    }};
}

/// ## Hook
/// `sigaction(2)`: loads the engine first when it installs a handler.
///
/// # Safety
/// The contract of `sigaction`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    if !act.is_null() {
        // SAFETY: sigaction's contract: act is NULL or points to a valid struct (the
        // C library reads it the same way).
        before_handler_installed(unsafe { (*act).sa_sigaction });
    }
    forward!(
        REAL_SIGACTION,
        -1,
        fn(c_int, *const libc::sigaction, *mut libc::sigaction) -> c_int,
        (sig, act, old)
    )
}

/// The `signal`-like functions: `(signal, handler) -> previous handler`, `SIG_ERR` on
/// failure; each loads the engine first when it installs a handler.
macro_rules! signal_hooks {
    ($($name:ident => $lazy:ident;)*) => {$(
        /// ## Hook
        /// Loads the engine first when this installs a handler (see
        /// `before_handler_installed`).
        ///
        /// # Safety
        /// The contract of the C function of the same name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t {
            before_handler_installed(handler);
            forward!($lazy, libc::SIG_ERR, fn(c_int, libc::sighandler_t) -> libc::sighandler_t, (sig, handler))
        }
    )*};
}

signal_hooks! {
    signal => REAL_SIGNAL;
    bsd_signal => REAL_BSD_SIGNAL;
    ssignal => REAL_SSIGNAL;
    sysv_signal => REAL_SYSV_SIGNAL;
    __sysv_signal => REAL___SYSV_SIGNAL;
    sigset => REAL_SIGSET;
}

/// Before a child is made by a call that runs no atfork handler: load the engine as the
/// prepare handler does for `fork` (or wait for the load another thread is doing), so
/// that the child never inherits a half-done load (whose thread it does not have) and
/// never has to `dlopen` itself.
fn before_child() {
    if active() {
        let _ = ensure_engine();
        share_with_child();
    }
}

/// A child process is about to be made: it will hold the parent's sockets, so neither
/// side may rely on what the engine set on them any more (`mifshim_fastpath::SHARED`).
/// Every socket counts, also one with close-on-exec: the child may be handed it anyway
/// (a `posix_spawn` file action `adddup2(fd, fd)`, a `vfork` child clearing the flag,
/// CPython's `pass_fds`), and the parent's flag at this moment does not say.
fn share_with_child() {
    if let Some(shared) = shared() {
        mifshim_fastpath::mark_all_shared(shared);
    }
}
/// ## Hook
/// `_Fork` (glibc ≥ 2.34: `fork` without atfork handlers; glibc's own `fork` calls it
/// internally, not through this symbol).
///
/// # Safety
/// The contract of `_Fork`.
#[unsafe(no_mangle)]
#[allow(non_snake_case)]
pub unsafe extern "C" fn _Fork() -> libc::pid_t {
    before_child();
    let pid = forward!(REAL__FORK, -1, fn() -> libc::pid_t, ());
    if pid == 0 {
        in_child_without_atfork();
    }
    pid
}

/// In a child made by `_Fork` or a fork-like `clone`: what the atfork child handler does
/// after `fork` (the engine clears what a thread of the parent held), keeping errno.
fn in_child_without_atfork() {
    let saved = errno();
    // SAFETY: the atfork child handler, which may run in any fresh child.
    unsafe { after_fork_child() };
    set_errno(saved);
}

/// `posix_spawn` and `posix_spawnp`: the child `exec`s at once, keeping the sockets
/// (glibc makes it with an internal `clone` no hook sees).
macro_rules! spawn_hooks {
    ($($name:ident => $lazy:ident, $search:expr;)*) => {$(
        /// ## Hook
        /// See `spawn_hooks`.
        ///
        /// # Safety
        /// The contract of the C function of the same name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(
            pid: *mut libc::pid_t,
            path: *const c_char,
            actions: *const c_void,
            attr: *const c_void,
            argv: *const *mut c_char,
            envp: *const *mut c_char,
        ) -> c_int {
            share_with_child();
            // A program the preload cannot steer: mifrun's supervisor spawned in its
            // place (by the real posix_spawn, the path resolved), or the call fails.
            #[cfg(target_os = "linux")]
            {
                let spawn = |prog: *const c_char, new: *const *const c_char, env: *const *const c_char| {
                    forward!(
                        REAL_POSIX_SPAWN,
                        libc::ENOSYS,
                        fn(*mut libc::pid_t, *const c_char, *const c_void, *const c_void, *const *const c_char, *const *const c_char) -> c_int,
                        (pid, prog, actions, attr, new, env)
                    )
                };
                // SAFETY: the program's arguments to posix_spawn(p).
                match unsafe { exec::spawn_check(path, actions, argv.cast(), envp.cast(), $search, spawn) } {
                    Ok(None) => {}
                    Ok(Some(r)) => return r,
                    Err(e) => return e,
                }
            }
            forward!(
                $lazy,
                libc::ENOSYS,
                fn(*mut libc::pid_t, *const c_char, *const c_void, *const c_void, *const *mut c_char, *const *mut c_char) -> c_int,
                (pid, path, actions, attr, argv, envp)
            )
        }
    )*};
}

spawn_hooks! {
    posix_spawn => REAL_POSIX_SPAWN, false;
    posix_spawnp => REAL_POSIX_SPAWNP, true;
}

/// ## Hook
/// `system(3)`: its shell child holds the sockets too.
///
/// # Safety
/// The contract of `system`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn system(command: *const c_char) -> c_int {
    share_with_child();
    #[cfg(target_os = "linux")]
    if let Err(e) = exec::shell_check() {
        set_errno(e);
        return -1;
    }
    forward!(REAL_SYSTEM, -1, fn(*const c_char) -> c_int, (command))
}

/// ## Hook
/// `popen(3)`: as `system`.
///
/// # Safety
/// The contract of `popen`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn popen(command: *const c_char, mode: *const c_char) -> *mut libc::FILE {
    share_with_child();
    #[cfg(target_os = "linux")]
    if let Err(e) = exec::shell_check() {
        set_errno(e);
        return null_mut();
    }
    forward!(
        REAL_POPEN,
        null_mut(),
        fn(*const c_char, *const c_char) -> *mut libc::FILE,
        (command, mode)
    )
}

/// `longjmp`, `_longjmp`, `siglongjmp` and `__longjmp_chk` (what fortified programs'
/// `siglongjmp` calls): a signal handler jumping out of a hook leaves that hook's
/// window open; the engine closes it first (`mifshim_abi::Engine::jumping`: the thread
/// gets its cancellation state back). The real function never returns, so this frame is
/// discarded with the rest.
macro_rules! jump_hooks {
    ($($name:ident => $lazy:ident;)*) => {$(
        /// ## Hook
        /// See `jump_hooks`.
        ///
        /// # Safety
        /// The contract of the C function of the same name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(env: *mut c_void, val: c_int) -> ! {
            if let Some(f) = JUMPING.get() {
                // SAFETY: the engine's entry point; it only reads env's words.
                unsafe { f(env) };
            }
            let p = $lazy.get();
            if p.is_null() {
                // Nowhere to jump to: the C library lacks the function.
                abort()
            }
            type F = unsafe extern "C" fn(*mut c_void, c_int) -> !;
            // SAFETY: p is the C library's function of this name and signature.
            let real: F = unsafe { core::mem::transmute::<*mut c_void, F>(p) };
            // SAFETY: the program's arguments, forwarded.
            unsafe { real(env, val) }
        }
    )*};
}

jump_hooks! {
    longjmp => REAL_LONGJMP;
    _longjmp => REAL__LONGJMP;
    siglongjmp => REAL_SIGLONGJMP;
    __longjmp_chk => REAL___LONGJMP_CHK;
}

/// ## Hook
/// `__recvfrom_chk`, what `recvfrom` becomes in programs built with
/// `_FORTIFY_SOURCE` when the buffer's size is known: its length check (the C library's
/// own, which ends the process on overflow), then the `recvfrom` hook, so that a
/// redirected DNS answer shows the server the program asked here too.
///
/// # Safety
/// The contract of `__recvfrom_chk`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __recvfrom_chk(
    fd: c_int,
    buf: *mut c_void,
    n: usize,
    buflen: usize,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> isize {
    if n > buflen {
        return forward!(
            REAL___RECVFROM_CHK,
            -1,
            fn(c_int, *mut c_void, usize, usize, c_int, *mut sockaddr, *mut socklen_t) -> isize,
            (fd, buf, n, buflen, flags, addr, len)
        );
    }
    // SAFETY: the program's arguments; n fits its buffer.
    unsafe { recvfrom(fd, buf, n, flags, addr, len) }
}

/// What `vfork` does before the real one: the child shares this memory until it
/// `exec`s, and holds the sockets (see `share_with_child`). Returns the real
/// `vfork` to jump to (or one that fails with `ENOSYS`).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
extern "C" fn vfork_prepare() -> *mut c_void {
    // The child runs in this memory until it execs: it must find the engine there
    // (and every function resolved), never load it itself.
    if active() {
        let _ = ensure_engine();
    }
    share_with_child();
    let p = REAL_VFORK.get();
    if p.is_null() {
        vfork_unavailable as *mut c_void
    } else {
        p
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
extern "C" fn vfork_unavailable() -> libc::pid_t {
    set_errno(libc::ENOSYS);
    -1
}

/// `vfork` and `__vfork` (glibc exports both): a hook cannot call the real `vfork` and
/// return (the child would return through, and overwrite, the frame the suspended
/// parent returns through later), so these are naked: they run [`vfork_prepare`] and
/// then *jump* to the real `vfork`, which returns straight to the program, as if
/// called by it.
macro_rules! vfork_hooks {
    ($($name:ident),*) => {$(
        /// ## Hook
        /// See `vfork_hooks`.
        ///
        /// # Safety
        /// The contract of `vfork`.
        #[cfg(target_arch = "x86_64")]
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name() -> libc::pid_t {
            // At entry the stack is 8 bytes off 16-byte alignment (the return address):
            // one more slot aligns it for the call; vfork_prepare keeps the
            // callee-saved registers.
            core::arch::naked_asm!(
                "sub rsp, 8",
                "call {prepare}",
                "add rsp, 8",
                "jmp rax",
                prepare = sym vfork_prepare,
            )
        }

        /// ## Hook
        /// See `vfork_hooks`.
        ///
        /// # Safety
        /// The contract of `vfork`.
        #[cfg(target_arch = "aarch64")]
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name() -> libc::pid_t {
            core::arch::naked_asm!(
                "stp x29, x30, [sp, #-16]!",
                "bl {prepare}",
                "ldp x29, x30, [sp], #16",
                "br x0",
                prepare = sym vfork_prepare,
            )
        }
    )*};
}

vfork_hooks!(vfork, __vfork);

/// What a fork-like `clone` child runs first: `in_child_without_atfork`, then the
/// program's function. Lives on the parent's stack during the call; the child has its
/// own copy of that memory (no `CLONE_VM`), so reading it there is valid.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[repr(C)]
struct CloneStart {
    f: unsafe extern "C" fn(*mut c_void) -> c_int,
    arg: *mut c_void,
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
unsafe extern "C" fn clone_start(p: *mut c_void) -> c_int {
    // SAFETY: p is the child's copy of the parent's CloneStart (see its comment).
    let start = unsafe { core::ptr::read(p.cast::<CloneStart>()) };
    in_child_without_atfork();
    // SAFETY: the program's function and argument, as it passed them to clone.
    unsafe { (start.f)(start.arg) }
}

/// `clone`/`__clone` (glibc's wrapper: `int clone(int (*fn)(void *), void *stack, int
/// flags, void *arg, ... /* pid_t *ptid, void *tls, pid_t *ctid */)`). The hook is
/// defined with the three variadic arguments as ordinary ones (stable Rust cannot
/// define a variadic function): on x86-64 and AArch64 Linux variadic integer and
/// pointer arguments are passed exactly as named ones, so it receives what the caller
/// passed, and forwards all seven through a variadic pointer (glibc's wrapper, like
/// this hook, reads all three whatever the flags; the kernel uses only those the flags
/// name). A child sharing the parent's memory (`CLONE_VM`: a thread or a
/// `vfork`-like child) sees the parent's state as it changes, so for it the hook
/// only waits for a load in progress, without starting one.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
macro_rules! clone_hooks {
    ($($name:ident => $lazy:ident;)*) => {$(
        /// ## Hook
        /// See `clone_hooks`.
        ///
        /// # Safety
        /// The contract of glibc's `clone`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(
            f: *mut c_void,
            stack: *mut c_void,
            flags: c_int,
            arg: *mut c_void,
            ptid: *mut c_void,
            tls: *mut c_void,
            ctid: *mut c_void,
        ) -> c_int {
            let fork_like = flags & libc::CLONE_VM == 0;
            if fork_like {
                before_child();
            } else if active() && !matches!(ENGINE.load(Acquire), NONE | READY | FAILED) {
                let _ = ensure_engine();
            }
            // A child with a copy of the fd table (no CLONE_FILES: a process, also a
            // CLONE_VM|CLONE_VFORK one that then execs) holds every socket too.
            if flags & libc::CLONE_FILES == 0 {
                share_with_child();
            }
            let p = $lazy.get();
            if p.is_null() {
                set_errno(libc::ENOSYS);
                return -1;
            }
            type F = unsafe extern "C" fn(*mut c_void, *mut c_void, c_int, *mut c_void, ...) -> c_int;
            // SAFETY: p is glibc's clone, which has this (variadic) C signature.
            let real: F = unsafe { core::mem::transmute::<*mut c_void, F>(p) };
            // A fork-like child first runs what the atfork child handler would (not
            // with a thread pointer of the program's own, CLONE_SETTLS: the engine's
            // code expects glibc's; nor without a function, which glibc refuses).
            if fork_like && flags & libc::CLONE_SETTLS == 0 && !f.is_null() && engine_ready() {
                let mut start = CloneStart {
                    // SAFETY: f is the program's non-NULL `int (*)(void *)`.
                    f: unsafe { core::mem::transmute::<*mut c_void, unsafe extern "C" fn(*mut c_void) -> c_int>(f) },
                    arg,
                };
                let start_fn = clone_start as unsafe extern "C" fn(*mut c_void) -> c_int;
                // SAFETY: the program's arguments, with its function and argument
                // wrapped (start outlives the call, and the child has its own copy).
                return unsafe {
                    real(start_fn as *mut c_void, stack, flags, (&raw mut start).cast::<c_void>(), ptid, tls, ctid)
                };
            }
            // SAFETY: the program's arguments, all forwarded.
            unsafe { real(f, stack, flags, arg, ptid, tls, ctid) }
        }
    )*};
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
clone_hooks! {
    clone => REAL_CLONE;
    __clone => REAL___CLONE;
}

// ---------------------------------------------------------------------------------
// The hooks
// ---------------------------------------------------------------------------------

/// The stub's generator over the one list of hooked calls (`mifshim_abi::hooked_calls!`:
/// each call's C signature, whether calling it needs the engine (a decision), what it
/// returns when the call fails closed, and the stub's shortcuts): the exported hooks,
/// the C library's functions (`real`) and the engine's entry points (`engine`), each a
/// slot typed by the call's signature (`mifshim_abi::sig`).
macro_rules! hooks {
    ($( $(#[$m:meta])* $name:ident ( $($a:ident : $t:ty),* ) -> $r:ty {
        absent: $absent:expr,
        stub: { load: $load:expr, fail: $fail:expr, errno: $eno:expr $(, direct: $direct:expr)? $(, then: $then:path)? $(, after: $after:path)? $(, check: $check:path)? $(, aliases: [$($alias:ident),*])? }
    }; )*) => {
        /// The C library's functions (`dlsym(RTLD_NEXT)` from here: the next object
        /// after this preloaded one).
        #[allow(non_upper_case_globals)]
        mod real {
            use super::*;
            $( $(#[$m])* pub(super) static $name: Slot<sig::$name> = Slot::new(); )*
        }

        /// The engine's entry points, set once it is loaded.
        #[allow(non_upper_case_globals)]
        mod engine {
            use super::*;
            $( $(#[$m])* pub(super) static $name: Slot<sig::$name> = Slot::new(); )*
        }

        fn resolve_all() {
            $(
                $(#[$m])*
                if !real::$name.is_set() {
                    // SAFETY: the name is NUL-terminated; RTLD_NEXT looks past this
                    // object, so the result is NULL or the C library's function of this
                    // name, whose signature the list gives.
                    unsafe {
                        real::$name.set_raw(libc::dlsym(libc::RTLD_NEXT, concat!(stringify!($name), "\0").as_ptr().cast()))
                    };
                }
            )*
        }

        /// The C library's functions as the engine takes them.
        fn reals() -> mifshim_abi::Reals {
            mifshim_abi::Reals {
                $( $(#[$m])* $name: real::$name.get(), )*
            }
        }

        /// Binds the engine's entry points (its interface was checked).
        fn bind_engine(e: &Engine) {
            $( $(#[$m])* engine::$name.set(Some(e.hooks.$name)); )*
        }

        $(
            $(#[$m])*
            /// ## Hook
            /// Forwards to the engine when the process is steered (loading it if this
            /// call needs a decision), else to the C library. A `direct` condition
            /// sends the call straight to the C library (and `then` does the engine's
            /// bookkeeping after it); `after` runs after the call either way; a
            /// `check` answers first, when it returns an answer.
            ///
            /// # Safety
            /// The contract of the C function of the same name.
            #[unsafe(no_mangle)]
            #[allow(clippy::unused_unit)]
            pub unsafe extern "C" fn $name($($a: $t),*) -> $r {
                let _before = ($($a,)*);
                $( if let Some(r) = $check(_before) { return r; } )?
                let direct = false $(|| $direct)?;
                if !direct && active() {
                    let ready = engine_ready() || ($load && ensure_engine());
                    if ready {
                        if let Some(f) = engine::$name.get() {
                            // SAFETY: the program's arguments, forwarded to the engine's
                            // entry point of this name (typed by the list).
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
                let f = match real::$name.get() {
                    Some(f) => f,
                    None => {
                        // The first call, before the engine's load found them all: this
                        // function only (see the module doc for why it is normal
                        // context). Errno kept: the call may succeed without setting it.
                        let saved = errno();
                        // SAFETY: as in resolve_all.
                        unsafe {
                            real::$name.set_raw(libc::dlsym(libc::RTLD_NEXT, concat!(stringify!($name), "\0").as_ptr().cast()))
                        };
                        set_errno(saved);
                        match real::$name.get() {
                            Some(f) => f,
                            None => {
                                set_errno(libc::ENOSYS);
                                return $fail;
                            }
                        }
                    }
                };
                // SAFETY: the program's arguments, forwarded to the C library's function.
                let r = unsafe { f($($a),*) };
                let _args = ($($a,)*);
                $( if direct { $then(r, _args); } )?
                $( $after(r, _args); )?
                r
            }

            aliases! { [$($($alias),*)?] $name ($($a: $t),*) -> $r }
        )*
    };
}

/// Other names glibc exports for a hooked function, as the same hook (the list's
/// `aliases`): the names programs built against glibc < 2.34 link for the `res_*`
/// family (`resolv.h` defined `res_query` as `__res_query`, in libresolv; glibc 2.34+
/// keeps them at the same addresses as the new names), and the public `__connect`,
/// `__close`, `__dup2` and `__fcntl` (a program calling `__connect` went around the
/// `connect` hook).
macro_rules! aliases {
    ([$($alias:ident),*] $name:ident $args:tt -> $r:ty) => {
        $( alias! { $alias = $name $args -> $r } )*
    };
}

macro_rules! alias {
    ($alias:ident = $name:ident ( $($a:ident : $t:ty),* ) -> $r:ty) => {
        /// ## Hook
        /// Another name of the hook it calls.
        ///
        /// # Safety
        /// The contract of the C function of the same name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $alias($($a: $t),*) -> $r {
            // SAFETY: the same function under its other name.
            unsafe { $name($($a),*) }
        }
    };
}

const EAI_FAIL: c_int = -4;
const EAI_SYSTEM: c_int = -11;
/// `h_errno` for "no recovery".
const NO_RECOVERY: c_int = 3;

/// Sets this thread's `h_errno`.
fn set_h_errno(v: c_int) {
    let p = c_call!(C_H_ERRNO_LOCATION, fn() -> *mut c_int, ()).unwrap_or(null_mut());
    if !p.is_null() {
        // SAFETY: this thread's h_errno slot.
        unsafe { *p = v };
    }
}

/// `gethostbyname`/`gethostbyname2` failing closed: NULL with `h_errno` set.
fn no_host() -> *mut hostent {
    set_h_errno(NO_RECOVERY);
    null_mut()
}

/// `gethostbyname*_r` failing closed: no result, `*h_errnop` set, `EAGAIN`.
fn no_host_r(result: *mut *mut hostent, h_errnop: *mut c_int) -> c_int {
    if !result.is_null() {
        // SAFETY: the program's out-pointer (gethostbyname_r(3)).
        unsafe { *result = null_mut() };
    }
    if !h_errnop.is_null() {
        // SAFETY: as above.
        unsafe { *h_errnop = NO_RECOVERY };
    }
    libc::EAGAIN
}
/// `fcntl` commands that make a new fd for the same open file (as `dup`).
fn is_dup_cmd(cmd: c_int) -> bool {
    cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC
}

/// A `res_*` call failing closed: `-1` with `h_errno` "no recovery".
fn no_res() -> c_int {
    set_h_errno(NO_RECOVERY);
    -1
}

alias! {
    __sigaction = sigaction(sig: c_int, act: *const libc::sigaction, old: *mut libc::sigaction) -> c_int
}

mifshim_abi::hooked_calls!(hooks);
