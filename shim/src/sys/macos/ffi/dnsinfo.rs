//! The resolver configuration from libSystem's `dns_configuration_copy()` (configd's
//! `dnsinfo.h`: what `scutil --dns` prints), read into the same [`Resolver`] records
//! as `sys::macos::dnsconf::parse_scutil_dns`, without running a program.
//!
//! Layout (`dnsinfo/dnsinfo.h`, `#pragma pack(4)`; `DNS_PTR` is a union of the
//! pointer with a `uint64_t`, so every pointer takes 8 bytes): only the leading
//! fields, which every version since macOS 10.4 has in this order, are read.

use std::ffi::CStr;
use std::net::SocketAddr;

use libc::c_char;

use super::sockopt::from_sockaddr;
use crate::sys::macos::dnsconf::{DnsConfig, Resolver};

#[repr(C, packed(4))]
struct DnsResolver {
    domain: *const c_char,
    n_nameserver: i32,
    nameserver: *const *const libc::sockaddr,
    port: u16,
    n_search: i32,
    search: *const *const c_char,
    n_sortaddr: i32,
    sortaddr: *const libc::c_void,
    options: *const c_char,
    timeout: u32,
    search_order: u32,
    if_index: u32,
    flags: u32,
    reach_flags: u32,
}

#[repr(C, packed(4))]
struct DnsConfigRaw {
    n_resolver: i32,
    resolver: *const *const DnsResolver,
    n_scoped_resolver: i32,
    scoped_resolver: *const *const DnsResolver,
}

unsafe extern "C" {
    fn dns_configuration_copy() -> *mut DnsConfigRaw;
    fn dns_configuration_free(config: *mut DnsConfigRaw);
}

/// # Safety
/// `p` is null or a NUL-terminated string.
unsafe fn string(p: *const c_char) -> Option<String> {
    // SAFETY: per the contract.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// # Safety
/// `r` points to a resolver of a live configuration.
unsafe fn resolver(r: *const DnsResolver, scoped: bool) -> Resolver {
    // SAFETY: `r` is valid per the contract; packed fields are copied, never
    // referenced; the arrays have the lengths the structure states.
    unsafe {
        let r = r.read_unaligned();
        let port = if r.port == 0 { 53 } else { r.port };
        let mut nameservers = Vec::new();
        for i in 0..r.n_nameserver.max(0) as usize {
            if let Some(a) = from_sockaddr(r.nameserver.add(i).read_unaligned()) {
                nameservers.push(match a {
                    SocketAddr::V6(mut v6) => {
                        v6.set_port(port);
                        if v6.ip().is_unicast_link_local() && v6.scope_id() == 0 {
                            v6.set_scope_id(r.if_index);
                        }
                        SocketAddr::V6(v6)
                    }
                    SocketAddr::V4(mut v4) => {
                        v4.set_port(port);
                        SocketAddr::V4(v4)
                    }
                });
            }
        }
        let search = (0..r.n_search.max(0) as usize)
            .filter_map(|i| string(r.search.add(i).read_unaligned()))
            .collect();
        Resolver {
            domain: string(r.domain),
            search,
            nameservers,
            if_index: (r.if_index != 0).then_some(r.if_index),
            if_name: None,
            scoped,
            options: string(r.options),
            timeout: (r.timeout != 0).then_some(r.timeout),
            order: (r.search_order != 0).then_some(r.search_order),
        }
    }
}

/// The current configuration (`None` when configd has published none).
pub(crate) fn read() -> Option<DnsConfig> {
    // SAFETY: returns null or a configuration freed below with its own free call.
    let cfg = unsafe { dns_configuration_copy() };
    if cfg.is_null() {
        return None;
    }
    // SAFETY: `cfg` is live until dns_configuration_free; its arrays have the
    // stated lengths and hold valid resolver pointers.
    let out = unsafe {
        let c = cfg.read_unaligned();
        let list = |p: *const *const DnsResolver, n: i32, scoped: bool| -> Vec<Resolver> {
            (0..n.max(0) as usize)
                .map(|i| resolver(p.add(i).read_unaligned(), scoped))
                .collect()
        };
        DnsConfig {
            resolvers: list(c.resolver, c.n_resolver, false),
            scoped: list(c.scoped_resolver, c.n_scoped_resolver, true),
        }
    };
    // SAFETY: `cfg` came from dns_configuration_copy and is freed once.
    unsafe { dns_configuration_free(cfg) };
    Some(out)
}
