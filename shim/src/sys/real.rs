//! The functions behind the hooks: the C library's, as the preloaded stub found them
//! with `dlsym(RTLD_NEXT)` and handed them over in [`install`] (from inside this
//! `dlopen`ed library, `RTLD_NEXT` would find the stub's own hooks first).
//!
//! Generated from the one list of hooked calls (`mifshim_abi::hooked_calls!`): one
//! typed slot and one caller per call, with the list's signature. Every pointer is
//! installed before the engine runs any hook and kept in an `AtomicPtr`, so a hook never
//! takes a lock or calls `dlsym`. A function the stub could not provide makes the call
//! fail with `ENOSYS` and the list's `absent` value instead of panicking.

use mifshim_abi::types::*;
use mifshim_abi::{OwnCalls, Reals, Slot, sig};

macro_rules! real_fns {
    ($( $(#[$m:meta])* $name:ident ( $($a:ident : $t:ty),* ) -> $r:ty {
        absent: $absent:expr, stub: { $($stub:tt)* }
    }; )*) => {
        // One slot per function, named after it.
        #[allow(non_upper_case_globals)]
        mod slot {
            use super::*;
            $( $(#[$m])* pub(super) static $name: Slot<sig::$name> = Slot::new(); )*
        }

        /// Stores the C library's functions the stub found.
        pub(crate) fn install(reals: &Reals) {
            $( $(#[$m])* slot::$name.set(reals.$name); )*
        }

        $(
            $(#[$m])*
            /// Calls the real function (the next definition after this library).
            ///
            /// # Safety
            /// The same contract as the C function of that name.
            #[allow(clippy::too_many_arguments, clippy::unused_unit, dead_code)]
            pub(crate) unsafe fn $name($($a: $t),*) -> $r {
                match slot::$name.get() {
                    // SAFETY: forwarded from this function's own contract; the pointer
                    // has the list's signature for this name (`Slot<sig::name>`).
                    Some(f) => unsafe { f($($a),*) },
                    None => {
                        super::set_errno(libc::ENOSYS);
                        $absent
                    }
                }
            }
        )*
    };
}

mifshim_abi::hooked_calls!(real_fns);

/// The functions for hooked calls on the engine's own descriptors
/// (`mifshim_abi::OwnCalls`: macOS's non-cancellable twins).
#[allow(non_upper_case_globals)]
mod own_slot {
    use super::*;
    pub(super) static close: Slot<sig::close> = Slot::new();
    pub(super) static fcntl: Slot<sig::fcntl> = Slot::new();
}

/// Stores the functions for the engine's own descriptors the stub handed over.
pub(crate) fn install_own(own: &OwnCalls) {
    own_slot::close.set(own.close);
    own_slot::fcntl.set(own.fcntl);
}

/// `close` of a descriptor of the engine's own: the stub's non-cancellable one where it
/// handed one over (macOS), else the C library's.
///
/// # Safety
/// The contract of `close(2)`; `fd` is the engine's.
#[cfg(target_os = "macos")]
pub(crate) unsafe fn own_close(fd: c_int) -> c_int {
    match own_slot::close.get() {
        // SAFETY: the caller's contract; the pointer has `close`'s signature.
        Some(f) => unsafe { f(fd) },
        // SAFETY: as above.
        None => unsafe { close(fd) },
    }
}

/// `fcntl` on a descriptor of the engine's own: as [`own_close`].
///
/// # Safety
/// The contract of `fcntl(2)` for `cmd`; `fd` is the engine's.
#[cfg(target_os = "macos")]
pub(crate) unsafe fn own_fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    match own_slot::fcntl.get() {
        // SAFETY: the caller's contract; the pointer has the list's `fcntl` signature.
        Some(f) => unsafe { f(fd, cmd, arg) },
        // SAFETY: as above.
        None => unsafe { fcntl(fd, cmd, arg) },
    }
}
