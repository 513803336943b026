//! `libmifshim_engine.so`: the engine behind `libmifshim.so` (the std-free stub in
//! `preload/` that `LD_PRELOAD` puts into every process). The stub `dlopen`s this
//! library on a process's first socket decision, checks and binds the one symbol it
//! exports (`mifshim_engine`: the typed, versioned `mifshim_abi::Engine`), hands it the
//! real C functions and forwards every hook to the entry points it names.
//!
//! # How it works
//! * `Engine::init` installs the real functions, reads the environment and the
//!   policy once and publishes an immutable profile. Hooks only read it.
//! * Nothing happens at `socket()`: the destination is not known yet. At `connect`
//!   (and a TCP Fast Open send) the pure decision in `config-schema` says: bind to an
//!   interface (`SO_BINDTOIFINDEX`), leave direct (loopback, this host's addresses,
//!   rules), or refuse with an errno.
//! * Unconnected datagrams are steered one by one: a PKTINFO control message, or the
//!   socket's `IP(V6)_UNICAST_IF` once a socket keeps talking to one destination, so one
//!   socket can talk to exempt and steered destinations alike. Multicast goes through
//!   the same control message, or `IP(V6)_MULTICAST_IF` for connected sockets; "any
//!   interface" joins are pointed at the chosen interface.
//! * Names are resolved over the chosen interface (`dns`).
//! * Interface state comes from a netlink snapshot refreshed at most once a second;
//!   per-fd facts live in a lock-free table, so a steady stream of datagrams costs no
//!   extra system call, lock or allocation.
//!
//! Module map, arrows pointing one way (entry points → core → primitives, no cycles):
//! * `entry` — the C ABI edge: the one exported symbol (`mifshim_abi::Engine`,
//!   generated from the one list of hooked calls in `abi/`), the socket and fd entry
//!   points (`entry::socket`) and the name-lookup ones (`entry::names`);
//! * the core, safe Rust (no `unsafe` outside `ops`'s one lock-free cell, checked by
//!   `deny(unsafe_code)` below): `ops` (what each socket hook does, over
//!   `socket-core`), `dns` (the resolver), `state` (the profile), `netstate`
//!   (interface snapshot), `fdtable` (per-fd facts), `learned` (addresses learned
//!   from name rules), `redirect` (redirected DNS sockets), `events`, `log`;
//! * `sys` — kernel and C library primitives (real functions, copies of the program's
//!   memory, socket options, control messages, filters, netlink, raw system calls, the
//!   hooks' guard, lock-free cells); it never calls up.

// In unit-test builds the hooks are not exported (they would interpose on the test
// binary itself), so everything only they reach looks dead. On macOS the shared
// modules keep parts only Linux's entry points call (`close_range`/`closefrom`,
// `sendmmsg`, `MIFSHIM_DNS`, this host's own name, the events file's name lines).
#![cfg_attr(any(test, target_os = "macos"), allow(dead_code))]

// The engine builds on Linux and on macOS from the same entry points (`entry`: the
// shared socket and name hooks, `entry/linux.rs` and `entry/macos.rs` for each OS's
// own calls), the same core (`ops`, `redirect`, `state`, `netstate`, `fdtable`,
// `learned`, `events`, `log`) and each OS's primitives (`sys/linux`, `sys/macos`). The
// resolver differs: Linux's own (`dns/`), mDNSResponder's on macOS (`dns_macos.rs`).
// macOS is type-checked and unit-tested on Linux, never run (README, "macOS").
#[cfg(target_os = "linux")]
#[deny(unsafe_code)]
mod dns;
// On macOS the engine's resolver is not built: `crate::dns` there is the policy's
// decision over mDNSResponder (`dns_macos.rs`, over `sys::macos::ffi::names`).
#[cfg(target_os = "macos")]
#[deny(unsafe_code)]
#[path = "dns_macos.rs"]
mod dns;
#[cfg(any(target_os = "linux", target_os = "macos"))]
mod entry;
#[cfg(any(target_os = "linux", target_os = "macos"))]
#[deny(unsafe_code)]
mod events;
#[cfg(any(target_os = "linux", target_os = "macos"))]
#[deny(unsafe_code)]
mod fdtable;
#[cfg(any(target_os = "linux", target_os = "macos"))]
#[deny(unsafe_code)]
mod learned;
#[cfg(any(target_os = "linux", target_os = "macos"))]
#[deny(unsafe_code)]
mod log;
// The policy's decisions for name lookups, which both resolvers take.
#[cfg(any(target_os = "linux", target_os = "macos"))]
#[deny(unsafe_code)]
mod lookup;
#[cfg(any(target_os = "linux", target_os = "macos"))]
#[deny(unsafe_code)]
mod netstate;
#[cfg(any(target_os = "linux", target_os = "macos"))]
mod ops;
#[cfg(any(target_os = "linux", target_os = "macos"))]
#[deny(unsafe_code)]
mod redirect;
#[cfg(any(target_os = "linux", target_os = "macos"))]
#[deny(unsafe_code)]
mod state;
mod sys;
