//! The preloaded stub: `libmifshim.so` on Linux (`LD_PRELOAD`, `linux`: hooks exported
//! by name), `libmifshim.dylib` on macOS (`DYLD_INSERT_LIBRARIES`, `macos`: a
//! `__DATA,__interpose` table). Both are generated from the one list of hooked calls
//! (`mifshim_abi::hooked_calls!`), both are `std`-free and `panic = "abort"`, and both
//! load the engine (`libmifshim_engine.so` / `.dylib`, beside this file) on the first
//! call that needs a decision and forward every hook to it.

#![no_std]

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "macos")]
mod macos;
