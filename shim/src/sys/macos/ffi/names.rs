//! A steered `getaddrinfo` on macOS: the plan of `macos::names` over the system
//! configuration (`dnsinfo::read`, configd's `dns_configuration_copy`) and
//! mDNSResponder (`dnssd::resolve`, `DNSServiceGetAddrInfo` with the interface's
//! index), answered as socket addresses or a macOS `EAI_*` code; a steered reverse
//! lookup the same way (`dnssd::query_ptr`, `DNSServiceQueryRecord` for the PTR
//! record with the index): what the engine's
//! macOS `crate::dns` (`dns_macos.rs`) calls for a name the policy steers, under the
//! shared `getaddrinfo` entry point and macOS's `gethostbyname*`. And `h_errno`, which
//! those set. Not run on a Mac.

use std::net::SocketAddr;
use std::time::Duration;

use crate::sys::macos::dnssd::socket_addrs;
use crate::sys::macos::names::{self, Plan};

/// How long mDNSResponder is waited for (the Linux resolver's default total).
pub(crate) const TIMEOUT: Duration = Duration::from_secs(5);

/// `name` (`ai_family`) resolved over interface `index`, at `port`; `Err` is the
/// `EAI_*` code, and the source of the servers is logged by the caller from `Ok`'s
/// second field.
pub(crate) fn lookup(
    name: &str,
    index: u32,
    ai_family: i32,
    port: u16,
) -> Result<(Vec<SocketAddr>, &'static str), i32> {
    let config = super::dnsinfo::read();
    match names::plan(config.as_ref(), index, name, ai_family) {
        Plan::Fail(code) => Err(code),
        Plan::DnsSd {
            index,
            families,
            source,
        } => match super::dnssd::resolve(name, index, families, TIMEOUT) {
            Ok(ips) => Ok((socket_addrs(&ips, port, index), source)),
            Err(e) => Err(names::eai(e)),
        },
    }
}

/// The name of the PTR record `ptr` (the `in-addr.arpa`/`ip6.arpa` name of an
/// address) asked over interface `index`, planned as a name is (`names::plan`: the
/// interface's own resolver for that reverse zone, none without DNS of its own), and
/// the source of its servers; `Err` is the `EAI_*` code (`EAI_NONAME`: no name).
pub(crate) fn reverse_lookup(ptr: &str, index: u32) -> Result<(String, &'static str), i32> {
    let config = super::dnsinfo::read();
    match names::plan(config.as_ref(), index, ptr, names::AF_UNSPEC) {
        Plan::Fail(code) => Err(code),
        Plan::DnsSd { index, source, .. } => match super::dnssd::query_ptr(ptr, index, TIMEOUT) {
            Ok(name) => Ok((name, source)),
            Err(e) => Err(names::eai(e)),
        },
    }
}

// The numbers `names` writes by hand are the SDK's.
const _: () = {
    assert!(names::AF_UNSPEC == libc::AF_UNSPEC);
    assert!(names::AF_INET == libc::AF_INET);
    assert!(names::AF_INET6 == libc::AF_INET6);
    assert!(names::EAI_AGAIN == libc::EAI_AGAIN);
    assert!(names::EAI_FAIL == libc::EAI_FAIL);
    assert!(names::EAI_FAMILY == libc::EAI_FAMILY);
    assert!(names::EAI_NODATA == libc::EAI_NODATA);
    assert!(names::EAI_NONAME == libc::EAI_NONAME);
    // The rest of the events file's names (libc lacks EAI_ADDRFAMILY, EAI_BADHINTS
    // and EAI_PROTOCOL, which are Libinfo's <netdb.h> 1, 12 and 13).
    assert!(names::EAI_BADFLAGS == libc::EAI_BADFLAGS);
    assert!(names::EAI_MEMORY == libc::EAI_MEMORY);
    assert!(names::EAI_SERVICE == libc::EAI_SERVICE);
    assert!(names::EAI_SOCKTYPE == libc::EAI_SOCKTYPE);
    assert!(names::EAI_SYSTEM == libc::EAI_SYSTEM);
    assert!(names::EAI_OVERFLOW == libc::EAI_OVERFLOW);
};

unsafe extern "C" {
    /// libinfo's `h_errno` (`<netdb.h>`: `extern int h_errno`).
    static mut h_errno: libc::c_int;
}

/// Sets `h_errno`, as the C library's `gethostby*` do on failure.
pub(crate) fn set_h_errno(v: libc::c_int) {
    // SAFETY: a plain int of libinfo's; writing it is what its own lookups do (the
    // non-reentrant interface is not thread-safe there either).
    unsafe { h_errno = v };
}
