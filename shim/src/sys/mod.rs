//! The kernel and C library primitives: the real functions behind the hooks, copies of
//! the program's memory made without faulting, socket options, control messages, socket
//! filters, netlink, raw system calls, and the hooks' guard (`guard`: panics, errno,
//! cancellation, signals). One module per OS. Nothing here calls up into the core
//! (`ops`, `dns`, `state`, …) or the entry points (`crate::entry`); with `crate::entry`
//! it is where the shim's `unsafe` lives.

// Lock-free cells over the Linux primitives (anonymous memory).
#[cfg(target_os = "linux")]
pub(crate) mod sync;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;

// macOS: compiled everywhere for its pure parts' tests; its calls into macOS only
// there (see its module comment).
pub(crate) mod macos;
