//! The kernel and C library primitives: the real functions behind the hooks, copies of
//! the program's memory made without faulting, socket options, control messages, socket
//! filters, netlink, raw system calls, and the hooks' guard (`guard`: panics, errno,
//! cancellation, signals). One module per OS. Nothing here calls up into the core
//! (`ops`, `dns`, `state`, …) or the entry points (`crate::entry`); with `crate::entry`
//! it is where the shim's `unsafe` lives.

// Lock-free cells over the OS's anonymous memory (`map_zeroed`, `unmap`).
#[cfg(any(target_os = "linux", target_os = "macos"))]
pub(crate) mod sync;
// The hooks' guard (panics, errno, cancellation sections) over each OS's primitives,
// and the table of the C library's functions the stub hands over (`mifshim_abi::Reals`),
// generated from the one list: the same on both.
#[cfg(any(target_os = "linux", target_os = "macos"))]
pub(crate) mod guard;
#[cfg(any(target_os = "linux", target_os = "macos"))]
pub(crate) use guard::no_cancel;
#[cfg(any(target_os = "linux", target_os = "macos"))]
pub(crate) mod real;

#[cfg(target_os = "linux")]
mod linux;
/// The interface snapshot's source (`netstate`): the rtnetlink dump.
#[cfg(target_os = "linux")]
pub(crate) use linux::netlink as ifdump;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;
/// On Linux the snapshot is taken again by its age only (a second; `netstate`): no
/// descriptor of the engine's is kept in the program's table to hear rtnetlink's
/// multicast groups, so nothing here says "stale" sooner.
#[cfg(target_os = "linux")]
pub(crate) mod netwatch {
    #[inline(always)]
    pub(crate) fn changed() -> bool {
        false
    }
    #[inline(always)]
    pub(crate) fn closing(_fd: i32) {}
    #[inline(always)]
    pub(crate) fn range_closing(_first: u32, _last: u32) {}
    #[inline(always)]
    pub(crate) fn after_fork_in_child() {}
}

// macOS: compiled everywhere for its pure parts' tests; its calls into macOS only
// there (see its module comment). The process primitives the shared modules take
// from `sys` (`ffi::base`, the Linux ones' names) and the snapshot's source
// (`getifaddrs`) are re-exported here as Linux's are.
pub(crate) mod macos;
#[cfg(target_os = "macos")]
pub(crate) use macos::ffi::base::*;
// The socket primitives `ops` calls, under the Linux names (`ffi::sock`, over
// `macos::steer`'s table), and its listener confinement (`macos::filter`: none).
#[cfg(target_os = "macos")]
pub(crate) use macos::ffi::sock::*;
#[cfg(target_os = "macos")]
pub(crate) use macos::ffi::{ifdump, rawio};

// What tells `netstate` its snapshot is stale before its age does: on macOS the
// routing-socket watcher (`ffi::netwatch`, over `macos::watch`).
#[cfg(target_os = "macos")]
pub(crate) use macos::ffi::netwatch;

// The program's addresses and messages (`ffi::msg`), copied without faulting
// (`ffi::uaccess`) under XNU's rules (`macos::uapi`): the Linux names.
#[cfg(target_os = "macos")]
pub(crate) use macos::ffi::msg::*;
#[cfg(target_os = "macos")]
pub(crate) use macos::ffi::uaccess;
#[cfg(target_os = "macos")]
pub(crate) use macos::filter;
// The events file's names of the `EAI_*` codes (macOS's numbers; Linux's are in
// `sys/linux`).
#[cfg(target_os = "macos")]
pub(crate) use macos::names::eai_name;
// What the program's control data says about a datagram, read in XNU's layout and by
// its rules (Linux's are fastpath's, re-exported by `sys/linux`).
#[cfg(target_os = "macos")]
pub(crate) use macos::control::{may_carry_source, scan_control};
#[cfg(target_os = "macos")]
pub(crate) use macos::uapi;
