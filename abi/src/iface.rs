//! The interface between the stub and the engine, the same on every OS: the tables
//! generated from the list ([`sig`], [`Reals`], [`Hooks`], [`NAMES`]; their C types
//! come from the OS's `types`), the exported [`Engine`], typed function slots
//! ([`Slot`]), and macOS's interposition tuple ([`Interpose`], filled by
//! [`interpose_table!`](crate::interpose_table)). An entry of the list with a `#[cfg]`
//! is left out of every table of an OS it excludes.

use core::ffi::{c_char, c_int, c_void};
use core::marker::PhantomData;
use core::sync::atomic::{AtomicPtr, Ordering};
use mifshim_fastpath::Shared;

macro_rules! tables {
    ($( $(#[$m:meta])* $name:ident ( $($a:ident : $t:ty),* ) -> $r:ty { $($rest:tt)* }; )*) => {
        /// One function-pointer type per hooked call, named after it: its C signature.
        #[allow(non_camel_case_types)]
        pub mod sig {
            use crate::types::*;
            $( $(#[$m])* pub type $name = unsafe extern "C" fn($($t),*) -> $r; )*
        }

        /// The C library's functions, as the stub found them (Linux: `dlsym(RTLD_NEXT)`;
        /// macOS: its own references, which dyld does not interpose), handed to the
        /// engine at [`Engine::init`]; `None` where the C library has none.
        #[repr(C)]
        #[derive(Clone, Copy)]
        pub struct Reals {
            $( $(#[$m])* pub $name: Option<sig::$name>, )*
        }

        /// The engine's entry point for every hooked call (the stub forwards to them).
        #[repr(C)]
        #[derive(Clone, Copy)]
        pub struct Hooks {
            $( $(#[$m])* pub $name: sig::$name, )*
        }

        /// The hooked calls' names, in the list's order (for tests and diagnostics).
        pub const NAMES: &[&str] = &[$( $(#[$m])* stringify!($name), )*];
    };
}

hooked_calls!(tables);

// ---------------------------------------------------------------------------------
// The interface
// ---------------------------------------------------------------------------------

/// Bumped whenever [`Engine`] (or [`Reals`], [`Hooks`]: the list) changes in a way its
/// size may not show. The stub refuses an engine of another version.
pub const ABI_VERSION: u32 = 3;

/// The symbol under which the engine exports its [`Engine`] (NUL-terminated).
pub const ENGINE_SYMBOL: &core::ffi::CStr = c"mifshim_engine";

/// [`Engine::init`]: `(reals, own, argv0) -> 0 on success`.
pub type Init =
    unsafe extern "C" fn(reals: *const Reals, own: *const OwnCalls, argv0: *const c_char) -> c_int;

/// The functions the engine uses for hooked calls on descriptors of its own (its
/// routing and probe sockets), handed over at [`Engine::init`] beside [`Reals`]: on
/// macOS the C library's `$NOCANCEL` twins, so that none of the engine's own work is a
/// cancellation point (a thread ended there by `pthread_exit`, which runs no Rust
/// drops, would leave a lock held or a descriptor open). `NULL` (Linux), or a `None`
/// slot: the [`Reals`] function of that name.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct OwnCalls {
    pub close: Option<sig::close>,
    pub fcntl: Option<sig::fcntl>,
}
/// [`Engine::after_fork_child`].
pub type AfterForkChild = unsafe extern "C" fn();
/// [`Engine::jumping`]: `(env)`.
pub type Jumping = unsafe extern "C" fn(env: *const c_void);
/// [`Engine::readable`]: `(p, len) -> readable`.
pub type Readable = unsafe extern "C" fn(p: *const c_void, len: usize) -> bool;

/// What the engine exports (one `static`, [`ENGINE_SYMBOL`]) and the stub binds. Its
/// first two fields keep their place in every version, so a stub reads them from an
/// engine of any build before it trusts the rest.
#[repr(C)]
pub struct Engine {
    /// [`ABI_VERSION`].
    pub version: u32,
    /// `size_of::<Engine>()` as the engine was built.
    pub size: u32,
    /// The per-fd table the stub's fast paths read (`mifshim_fastpath`); its own
    /// `layout` field is checked too.
    pub fast: *const Shared,
    /// Called once, right after the `dlopen` and before any hook is forwarded: installs
    /// the C library's functions ([`Reals`], and [`OwnCalls`] or NULL) and reads the
    /// environment and the policy. `argv0` is
    /// the program's `argv[0]` as the stub's constructor saw it (may be NULL). 0 on
    /// success.
    pub init: Init,
    /// The stub's `pthread_atfork` child handler (and its `_Fork`/`clone` children):
    /// clears what a thread of the parent held.
    pub after_fork_child: AfterForkChild,
    /// Before a `longjmp` family jump to `env`: closes a hook window the jump leaves.
    pub jumping: Jumping,
    /// Whether `len` bytes at `p` may be read without faulting.
    pub readable: Readable,
    /// The hooked calls.
    pub hooks: Hooks,
}

// SAFETY: `Engine` is immutable after it is built (a `static`); `fast` points to the
// engine's static table of atomics, which is `Sync`.
unsafe impl Sync for Engine {}

impl Engine {
    /// This build's `size`.
    pub const SIZE: u32 = size_of::<Engine>() as u32;

    /// Whether the engine at `p` (what `dlsym` found for [`ENGINE_SYMBOL`]) speaks this
    /// build's interface: its version and size, and its table's layout.
    ///
    /// # Safety
    /// `p` is NULL or points to a `mifshim_engine` symbol of some engine build: at least
    /// its first two `u32`s are readable (they are in every version), and when those
    /// match, the whole `Engine` of this build and the table it points to are.
    pub unsafe fn check(p: *const Engine) -> Option<&'static Engine> {
        if p.is_null() {
            return None;
        }
        // SAFETY: the caller's contract: the first two fields are readable in every
        // version; only when they match is the rest read as this build's layout.
        let (version, size) = unsafe { ((*p).version, (*p).size) };
        if version != ABI_VERSION || size != Self::SIZE {
            return None;
        }
        // SAFETY: as above: the version and size are this build's.
        let e = unsafe { &*p };
        // SAFETY: `fast` is NULL or the engine's static table; `layout` is its first
        // field in every version.
        if e.fast.is_null() || unsafe { (*e.fast).layout } != mifshim_fastpath::LAYOUT {
            return None;
        }
        Some(e)
    }

    /// The per-fd table.
    pub fn shared(&self) -> &'static Shared {
        // SAFETY: `check` found it non-NULL; it is the engine's static table, and the
        // engine is never unloaded.
        unsafe { &*self.fast }
    }
}

// ---------------------------------------------------------------------------------
// Typed function slots
// ---------------------------------------------------------------------------------

/// Function-pointer types (`unsafe extern "C" fn(..) -> R`): what a [`Slot`] may hold.
///
/// # Safety
/// Implemented only for function-pointer types (pointer-sized, never NULL).
pub unsafe trait FnPtr: Copy {}

macro_rules! fn_ptr_impls {
    ($( ($($a:ident),*) )*) => {$(
        // SAFETY: a function pointer.
        unsafe impl<R, $($a),*> FnPtr for unsafe extern "C" fn($($a),*) -> R {}
    )*};
}

fn_ptr_impls! {
    () (A) (A, B) (A, B, C) (A, B, C, D) (A, B, C, D, E) (A, B, C, D, E, F)
    (A, B, C, D, E, F, G) (A, B, C, D, E, F, G, H)
}

/// One function pointer of type `F`, set once and read by any thread (an `AtomicPtr`:
/// no lock, async-signal-safe). The type is the call's [`sig`], so what is stored and
/// what is called have the one signature the list gives.
pub struct Slot<F: FnPtr> {
    p: AtomicPtr<c_void>,
    _f: PhantomData<F>,
}

impl<F: FnPtr> Slot<F> {
    const SIZE_OK: () = assert!(size_of::<F>() == size_of::<*mut c_void>());

    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::SIZE_OK;
        Slot {
            p: AtomicPtr::new(core::ptr::null_mut()),
            _f: PhantomData,
        }
    }

    /// The function, if set.
    #[inline(always)]
    pub fn get(&self) -> Option<F> {
        let p = self.p.load(Ordering::Acquire);
        if p.is_null() {
            None
        } else {
            // SAFETY: p was stored by `set` (an `F`) or `set_raw` (whose caller vouches
            // that it is an `F`); F is a pointer-sized function pointer (`FnPtr`).
            Some(unsafe { core::mem::transmute_copy::<*mut c_void, F>(&p) })
        }
    }

    /// Whether it is set.
    #[inline(always)]
    pub fn is_set(&self) -> bool {
        !self.p.load(Ordering::Acquire).is_null()
    }

    #[inline(always)]
    pub fn set(&self, f: Option<F>) {
        let p = match f {
            // SAFETY: F is a pointer-sized function pointer (`FnPtr`).
            Some(f) => unsafe { core::mem::transmute_copy::<F, *mut c_void>(&f) },
            None => core::ptr::null_mut(),
        };
        self.p.store(p, Ordering::Release);
    }

    /// Stores an address found by name (`dlsym`).
    ///
    /// # Safety
    /// `p` is NULL or the address of a function whose C signature is `F`.
    #[inline(always)]
    pub unsafe fn set_raw(&self, p: *mut c_void) {
        self.p.store(p, Ordering::Release);
    }
}

// ---------------------------------------------------------------------------------
// macOS's interposition tuples
// ---------------------------------------------------------------------------------

/// One entry of a Mach-O `__DATA,__interpose` section, as dyld reads it (the layout of
/// `DYLD_INTERPOSE` in `<mach-o/dyld-interposing.h>`): every reference to `replacee`
/// in every image but the one holding the tuple is bound to `replacement` instead.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interpose {
    pub replacement: *const c_void,
    pub replacee: *const c_void,
}

// SAFETY: two code addresses, never written after the link.
unsafe impl Sync for Interpose {}

/// **The macOS interposition table's generator**: one [`Interpose`] tuple per
/// `replacement => replacee` pair, in order, in one `#[used]` static of the given name
/// and section (`"__DATA,__interpose"` for dyld; the linker keeps a `#[used]` static
/// even under `-dead_strip`, which Apple targets link with). A pair's attributes
/// (`#[cfg(...)]`, as written before an entry of [`hooked_calls!`](crate::hooked_calls))
/// go on its tuple, and the array's length counts only the pairs left in.
///
/// ```ignore
/// mifshim_abi::interpose_table! {
///     static INTERPOSE in "__DATA,__interpose";
///     hook::connect => real::connect,
///     #[cfg(target_os = "linux")] hook::accept4 => real::accept4,
/// }
/// ```
#[macro_export]
macro_rules! interpose_table {
    (static $table:ident in $section:literal; $( $(#[$m:meta])* $replacement:path => $replacee:path ),* $(,)?) => {
        #[used]
        #[unsafe(link_section = $section)]
        static $table: [$crate::Interpose; [$( $(#[$m])* stringify!($replacee), )*].len()] = [
            $(
                $(#[$m])*
                $crate::Interpose {
                    replacement: $replacement as *const ::core::ffi::c_void,
                    replacee: $replacee as *const ::core::ffi::c_void,
                },
            )*
        ];
    };
}
