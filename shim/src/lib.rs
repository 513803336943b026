//! `libmifshim.so`: keeps an unmodified program's sockets on a chosen network
//! interface. Loaded with `LD_PRELOAD` (usually by `mifrun`), configured by the
//! `MIFSHIM_*` environment variables or a TOML policy.
//!
//! # How it works
//! * The constructor (`.init_array`) resolves the real libc functions, reads the
//!   environment and the policy once, and publishes an immutable profile. Hooks only
//!   read it.
//! * Nothing happens at `socket()`: the destination is not known yet. At `connect`
//!   (and a TCP Fast Open send) the pure decision in `config-schema` says: bind to an
//!   interface (`SO_BINDTOIFINDEX`), leave direct (loopback, this host's addresses,
//!   rules), or refuse with an errno.
//! * Unconnected datagrams are steered one by one with an `IP_PKTINFO` /
//!   `IPV6_PKTINFO` control message, so one socket can talk to exempt and steered
//!   destinations alike. Multicast goes through the same control message, or
//!   `IP(V6)_MULTICAST_IF` for connected sockets; "any interface" joins are pointed at
//!   the chosen interface.
//! * Interface state comes from a netlink snapshot refreshed at most once a second;
//!   per-fd facts live in a lock-free table, so a steady stream of datagrams costs no
//!   extra system call, lock or allocation.
//!
//! Module map: `sys` (all FFI and `unsafe`: hooks, real functions, socket options,
//! netlink), `ops` (what each hook does, safe), `state` (constructor-built profile),
//! `netstate` (interface snapshot), `fdtable` (per-fd facts), `log` (no-alloc logger).

// In unit-test builds the hooks are not exported (they would interpose on the test
// binary itself), so everything only they reach looks dead.
#![cfg_attr(test, allow(dead_code))]

mod dns;
mod fdtable;
mod log;
mod netstate;
mod ops;
mod redirect;
mod state;
mod sys;
