//! The engine's entry points: the C ABI edge where the preloaded stub's calls arrive.
//!
//! Arrows point one way: entry points (here) decode the program's arguments and call
//! the core (`crate::ops` for sockets and fds, `crate::dns` for names, `crate::state`
//! at start-up), which reaches the kernel and the C library only through the
//! primitives in `crate::sys` (which never call up). Like `crate::sys`, this module
//! handles raw pointers from the program, so it holds `unsafe` (each block with a
//! `SAFETY:` comment); the core holds none of its own beyond the few lock-free cells
//! named in the README's code map.
//!
//! * [`ENGINE`]: the one exported symbol, the typed and versioned interface
//!   (`mifshim_abi::Engine`), generated from the one list of hooked calls;
//! * [`socket`]: the socket and fd entry points (`connect`, the sends, `bind`, …);
//! * [`names`]: the name-lookup entry points (`getaddrinfo`, `gethostbyname*`,
//!   `res_*`, `getaddrinfo_a`, …).

// The calls both OSes have, then each OS's own (the list's `#[cfg]`'d entries).
#[cfg(target_os = "linux")]
mod exec;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "macos")]
mod macos;
mod names;
#[cfg(target_os = "linux")]
mod names_linux;
mod socket;

use crate::sys::{self, no_cancel, real};
use libc::{c_char, c_int, c_void};

/// Every hooked call's entry point, by the list's name.
mod by_name {
    #[cfg(target_os = "linux")]
    pub(super) use super::exec::*;
    #[cfg(target_os = "linux")]
    pub(super) use super::linux::*;
    #[cfg(target_os = "macos")]
    pub(super) use super::macos::*;
    pub(super) use super::names::*;
    #[cfg(target_os = "linux")]
    pub(super) use super::names_linux::*;
    pub(super) use super::socket::*;
}

macro_rules! engine_interface {
    ($( $(#[$m:meta])* $name:ident ( $($a:ident : $t:ty),* ) -> $r:ty { $($rest:tt)* }; )*) => {
        /// ## Entry point
        /// The engine's one exported symbol (`mifshim_abi::ENGINE_SYMBOL`): the typed,
        /// versioned interface the preloaded stub checks and binds right after its
        /// `dlopen`. One field per hooked call, generated from the list: an entry point
        /// missing here, or one whose signature differs from the list's, does not
        /// compile.
        #[cfg_attr(not(test), unsafe(export_name = "mifshim_engine"))]
        pub static ENGINE: mifshim_abi::Engine = mifshim_abi::Engine {
            version: mifshim_abi::ABI_VERSION,
            size: mifshim_abi::Engine::SIZE,
            fast: &raw const crate::fdtable::SHARED_TABLE,
            init: engine_init,
            after_fork_child: engine_after_fork_child,
            jumping: engine_jumping,
            readable: engine_readable,
            hooks: mifshim_abi::Hooks {
                $( $(#[$m])* $name: by_name::$name, )*
            },
        };
    };
}

mifshim_abi::hooked_calls!(engine_interface);

/// [`mifshim_abi::Engine::init`]: called once by the preloaded stub (`preload/`), right
/// after it `dlopen`s this library and before it forwards any hook: installs the real C
/// functions and loads the environment and the policy. `argv0` is the program's
/// `argv[0]` as the stub's constructor saw it (may be NULL). Returns 0.
///
/// # Safety
/// `reals` points to the stub's table of the C library's functions, `own` to its
/// functions for the engine's own descriptors or is NULL; `argv0` is NULL or a
/// NUL-terminated string; all stay valid for the call.
unsafe extern "C" fn engine_init(
    reals: *const mifshim_abi::Reals,
    own: *const mifshim_abi::OwnCalls,
    argv0: *const c_char,
) -> c_int {
    if !reals.is_null() {
        // SAFETY: the caller's contract: a valid table, alive for the call.
        real::install(unsafe { &*reals });
    }
    if !own.is_null() {
        // SAFETY: as above.
        real::install_own(unsafe { &*own });
    }
    let argv0 = (!argv0.is_null()).then(|| {
        // SAFETY: argv0 is a NUL-terminated string (caller's contract).
        unsafe { std::ffi::CStr::from_ptr(argv0) }
            .to_string_lossy()
            .into_owned()
    });
    sys::guard::init_windows();
    // A panic (a bug) fails its call closed; its message goes through the shim's log,
    // whose writes are raw system calls: std's default hook writes to standard error
    // with the C library's `write`, a cancellation point, inside `catch_unwind`.
    std::panic::set_hook(Box::new(|info| {
        crate::log::line(
            config_schema::LogLevel::Error,
            format_args!("internal error: {info}; the call fails closed"),
        );
    }));
    // Reading the policy and opening the log meet cancellation points (`open`, `read`).
    no_cancel(|| crate::state::init(argv0));
    0
}

/// [`mifshim_abi::Engine::after_fork_child`]: called by the stub's `pthread_atfork`
/// child handler: clears state a thread of the parent may have held at `fork` (the
/// snapshot refresher's flag, reader counts).
extern "C" fn engine_after_fork_child() {
    crate::state::after_fork_in_child();
}

/// [`mifshim_abi::Engine::jumping`]: called by the stub's `longjmp`/`siglongjmp` hooks
/// just before the jump: a hook window this thread has open is being left without its
/// end running (a signal handler jumping out of `getaddrinfo`), so the thread gets its
/// cancellation state back now rather than at its next hook, if any
/// (`sys::guard::Window`).
extern "C" fn engine_jumping(env: *const c_void) {
    sys::guard::abandon_window(env);
}

/// [`mifshim_abi::Engine::readable`]: called by the stub before it reads a program's
/// message header for its fast path: are those bytes readable (`uaccess::readable`: no
/// fault, a cache hit costs no system call)?
extern "C" fn engine_readable(p: *const c_void, len: usize) -> bool {
    sys::uaccess::readable(p as usize, len)
}
