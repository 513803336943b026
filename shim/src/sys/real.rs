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
use mifshim_abi::{Reals, Slot, sig};

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
