//! The engine's calls into macOS (libSystem): socket options, interface state, the
//! routing socket, the resolver configuration and DNS-SD. Every `unsafe` block of the
//! macOS engine is here, each with its `SAFETY` comment; what they return is parsed
//! or mapped by the pure modules beside this one.

pub(crate) mod base;
pub(crate) mod dnsinfo;
pub(crate) mod dnssd;
pub(crate) mod ifaddrs;
pub(crate) mod ifdump;
pub(crate) mod msg;
pub(crate) mod names;
pub(crate) mod netwatch;
pub(crate) mod nocancel;
pub(crate) mod rawio;
pub(crate) mod routesock;
pub(crate) mod sock;
pub(crate) mod sockopt;
pub(crate) mod uaccess;

use libc::c_int;

/// The calling thread's errno.
pub(crate) fn errno() -> c_int {
    mifshim_abi::errno()
}
