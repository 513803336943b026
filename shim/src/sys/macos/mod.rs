//! macOS's kernel and system primitives for the engine, beside `sys/linux`.
//!
//! The pure parts — routing-socket messages ([`route`]), the per-interface resolver
//! configuration ([`dnsconf`]), DNS-SD address replies ([`dnssd`]) and what an
//! interface address counts for ([`ifaddr`]) — compile on every OS, so that Linux
//! runs their tests; what calls macOS (`IP_BOUND_IF` and the other socket options,
//! `getifaddrs`, the `PF_ROUTE` listener, `dns_configuration_copy`,
//! `DNSServiceGetAddrInfo`) is in [`ffi`], built for macOS only.
//!
//! Not here yet: the `__DATA,__interpose` table and the hook entry points. They are
//! generated from the one list of hooked calls of issue 10, so they come with it; until
//! then nothing calls this module on macOS either (hence the `dead_code` allowance).

#![allow(dead_code)]

pub(crate) mod dnsconf;
pub(crate) mod dnssd;
pub(crate) mod ifaddr;
pub(crate) mod route;

#[cfg(target_os = "macos")]
pub(crate) mod ffi;
