//! Resolving a name over one interface with mDNSResponder:
//! `DNSServiceGetAddrInfo(…, interfaceIndex, …)` (`<dns_sd.h>`, libSystem), driven
//! synchronously with a bounded wait; the replies are collected by
//! `sys::macos::dnssd::Collector`.

use std::ffi::CString;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use libc::{c_char, c_int, c_void};

use super::sockopt::from_sockaddr;
use crate::sys::macos::dnssd::{Collector, Families, GaiError, K_DNS_SERVICE_FLAGS_TIMEOUT, Reply};

type DnsServiceRef = *mut c_void;
type GetAddrInfoReply = unsafe extern "C" fn(
    sd: DnsServiceRef,
    flags: u32,
    interface_index: u32,
    error_code: i32,
    hostname: *const c_char,
    address: *const libc::sockaddr,
    ttl: u32,
    context: *mut c_void,
);

unsafe extern "C" {
    fn DNSServiceGetAddrInfo(
        sd_ref: *mut DnsServiceRef,
        flags: u32,
        interface_index: u32,
        protocol: u32,
        hostname: *const c_char,
        callback: GetAddrInfoReply,
        context: *mut c_void,
    ) -> i32;
    fn DNSServiceRefSockFD(sd_ref: DnsServiceRef) -> c_int;
    fn DNSServiceProcessResult(sd_ref: DnsServiceRef) -> i32;
    fn DNSServiceRefDeallocate(sd_ref: DnsServiceRef);
}

/// The reply callback: hands the arguments to the collector in `context`.
unsafe extern "C" fn on_reply(
    _sd: DnsServiceRef,
    flags: u32,
    interface_index: u32,
    error_code: i32,
    _hostname: *const c_char,
    address: *const libc::sockaddr,
    _ttl: u32,
    context: *mut c_void,
) {
    // SAFETY: `context` is the `&mut Collector` `resolve` passed, alive for the
    // whole call of DNSServiceProcessResult that runs this callback; `address` is
    // null or a sockaddr mDNSResponder built.
    let (collector, addr) = unsafe {
        (
            &mut *context.cast::<Collector>(),
            from_sockaddr(address).map(|a| a.ip()),
        )
    };
    collector.feed(&Reply {
        flags,
        if_index: interface_index,
        error: error_code,
        addr,
    });
}

/// Resolves `name` over interface `index` for `families`, waiting at most `timeout`.
pub(crate) fn resolve(
    name: &str,
    index: u32,
    families: Families,
    timeout: Duration,
) -> Result<Vec<IpAddr>, GaiError> {
    let Ok(cname) = CString::new(name) else {
        return Err(GaiError::NoName);
    };
    let mut collector = Collector::new(index, families);
    let mut sd: DnsServiceRef = std::ptr::null_mut();
    // SAFETY: `sd` is a valid out-pointer; `cname` outlives the call; `collector`
    // outlives every DNSServiceProcessResult below, and `sd` is deallocated before
    // it goes (the callback never runs after DNSServiceRefDeallocate).
    let rc = unsafe {
        DNSServiceGetAddrInfo(
            &mut sd,
            K_DNS_SERVICE_FLAGS_TIMEOUT,
            index,
            families.protocol(),
            cname.as_ptr(),
            on_reply,
            (&mut collector as *mut Collector).cast(),
        )
    };
    if rc != 0 {
        return Err(crate::sys::macos::dnssd::terminal_error(rc).unwrap_or(GaiError::Fail));
    }
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    // SAFETY: `sd` is a live reference from DNSServiceGetAddrInfo.
    let fd = unsafe { DNSServiceRefSockFD(sd) };
    while !collector.complete() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || fd < 0 {
            timed_out = true;
            break;
        }
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pfd` is one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(i32::MAX as u128) as c_int) };
        if n < 0 {
            if super::errno() == libc::EINTR {
                continue;
            }
            timed_out = true;
            break;
        }
        if n == 0 {
            continue;
        }
        // SAFETY: `sd` is live; the callback gets the collector as above.
        if unsafe { DNSServiceProcessResult(sd) } != 0 {
            timed_out = true;
            break;
        }
    }
    // SAFETY: `sd` is live and deallocated once.
    unsafe { DNSServiceRefDeallocate(sd) };
    collector.finish(timed_out)
}
