//! `libmifshim_engine.so`: the engine behind `libmifshim.so` (the std-free stub in
//! `preload/` that `LD_PRELOAD` puts into every process). The stub `dlopen`s this
//! library on a process's first socket decision, hands it the real C functions and
//! forwards every hook to the `mifshim_engine_*` entry points exported here.
//!
//! # How it works
//! * `mifshim_engine_init` installs the real functions, reads the environment and the
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
//! Module map: `sys` (all FFI and `unsafe`: hook entry points, real functions, socket
//! options, netlink, name-lookup entry points), `ops` (what each hook does, safe),
//! `dns` (the resolver), `state` (the profile), `netstate` (interface snapshot),
//! `fdtable` (per-fd facts), `redirect` (redirected DNS sockets), `log` (no-alloc
//! logger).

// In unit-test builds the hooks are not exported (they would interpose on the test
// binary itself), so everything only they reach looks dead.
#![cfg_attr(test, allow(dead_code))]

mod dns;
mod entry;
mod events;
mod fdtable;
mod learned;
mod log;
mod netstate;
mod ops;
mod redirect;
mod state;
mod sys;
