//! macOS's kernel and system primitives for the engine, beside `sys/linux`.
//!
//! The pure parts — routing-socket messages ([`route`]), the per-interface resolver
//! configuration ([`dnsconf`]), DNS-SD address replies ([`dnssd`]), what an
//! interface address counts for ([`ifaddr`]), and the `sa_len` socket addresses and
//! 4-byte-aligned control messages ([`wire`]) and the program's own in a steered
//! `sendmsg` ([`control`]), XNU's multicast membership options
//! ([`membership`]) — compile on every OS, so that Linux
//! runs their tests; what calls macOS (`IP_BOUND_IF` and the other socket options,
//! `getifaddrs`, the `PF_ROUTE` watcher (its rules in [`watch`]), `dns_configuration_copy`,
//! `DNSServiceGetAddrInfo`) is in [`ffi`], built for macOS only. [`steer`] is the
//! table of what each socket primitive the shared core asks `sys` for becomes on
//! macOS; `ffi::sock` executes it under the Linux primitives' names.
//!
//! [`filter`] is `sys::filter` on macOS (no listener can be confined there: `ops`
//! refuses one), [`dns`] the `[dns] redirect` answer (none). The socket core (`ops`,
//! `redirect`) and the engine's entry points (`entry`) build over these; the pure
//! parts, compiled on every OS, are reached only from macOS's code (hence the
//! `dead_code` allowance on Linux).

#![allow(dead_code)]

pub(crate) mod control;
pub(crate) mod dns;
pub(crate) mod dnsconf;
pub(crate) mod dnssd;
pub(crate) mod filter;
pub(crate) mod ifaddr;
pub(crate) mod membership;
pub(crate) mod names;
pub(crate) mod route;
pub(crate) mod steer;
pub(crate) mod uapi;
pub(crate) mod watch;
pub(crate) mod wire;

#[cfg(target_os = "macos")]
pub(crate) mod ffi;
