//! Resolving a name over one interface with mDNSResponder:
//! `DNSServiceGetAddrInfo(…, interfaceIndex, …)` (`<dns_sd.h>`, libSystem), and an
//! address's name with `DNSServiceQueryRecord(…, interfaceIndex, PTR, …)`, each driven
//! synchronously with a bounded wait; the replies are collected by
//! `sys::macos::dnssd::Collector` and `PtrCollector`.

use std::ffi::CString;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use libc::{c_char, c_int, c_void};

use super::sockopt::from_sockaddr;
use crate::sys::macos::dnssd::{
    Collector, Families, GaiError, K_DNS_SERVICE_CLASS_IN, K_DNS_SERVICE_FLAGS_TIMEOUT,
    K_DNS_SERVICE_TYPE_PTR, PtrCollector, RecordReply, Reply,
};

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

type QueryRecordReply = unsafe extern "C" fn(
    sd: DnsServiceRef,
    flags: u32,
    interface_index: u32,
    error_code: i32,
    fullname: *const c_char,
    rrtype: u16,
    rrclass: u16,
    rdlen: u16,
    rdata: *const c_void,
    ttl: u32,
    context: *mut c_void,
);

unsafe extern "C" {
    fn DNSServiceQueryRecord(
        sd_ref: *mut DnsServiceRef,
        flags: u32,
        interface_index: u32,
        fullname: *const c_char,
        rrtype: u16,
        rrclass: u16,
        callback: QueryRecordReply,
        context: *mut c_void,
    ) -> i32;
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
    // The callback writes through this pointer while `drive` runs; nothing holds a
    // reference to the collector meanwhile (its completion is read through it too).
    let ctx: *mut Collector = &mut collector;
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
            ctx.cast(),
        )
    };
    if rc != 0 {
        return Err(crate::sys::macos::dnssd::terminal_error(rc).unwrap_or(GaiError::Fail));
    }
    // SAFETY: `ctx` points at `collector`, alive and not otherwise borrowed here;
    // the read is between callbacks, never during one.
    let timed_out = drive(sd, timeout, || unsafe { (*ctx).complete() });
    collector.finish(timed_out)
}

/// Runs the replies of `sd` (`DNSServiceProcessResult`, whose callbacks feed the
/// caller's collector) until `complete()` says the answer is in or `timeout` passes,
/// then deallocates `sd`; whether it gave up (time, or a failed read).
fn drive(sd: DnsServiceRef, timeout: Duration, complete: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    // SAFETY: `sd` is a live reference the caller got from mDNSResponder.
    let fd = unsafe { DNSServiceRefSockFD(sd) };
    while !complete() {
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
        // SAFETY: `sd` is live; its callback gets the caller's collector, which
        // outlives this function.
        if unsafe { DNSServiceProcessResult(sd) } != 0 {
            timed_out = true;
            break;
        }
    }
    // SAFETY: `sd` is live and deallocated once; no callback runs after this.
    unsafe { DNSServiceRefDeallocate(sd) };
    timed_out
}

/// The PTR reply callback: hands the arguments to the collector in `context`.
unsafe extern "C" fn on_record(
    _sd: DnsServiceRef,
    flags: u32,
    interface_index: u32,
    error_code: i32,
    _fullname: *const c_char,
    rrtype: u16,
    _rrclass: u16,
    rdlen: u16,
    rdata: *const c_void,
    _ttl: u32,
    context: *mut c_void,
) {
    let rdata = if rdata.is_null() || rdlen == 0 {
        &[][..]
    } else {
        // SAFETY: mDNSResponder hands `rdlen` bytes of rdata at `rdata`, valid for
        // this call; they are read before it returns.
        unsafe { std::slice::from_raw_parts(rdata.cast::<u8>(), usize::from(rdlen)) }
    };
    // SAFETY: `context` is the `&mut PtrCollector` `query_ptr` passed, alive for the
    // whole call of DNSServiceProcessResult that runs this callback.
    let collector = unsafe { &mut *context.cast::<PtrCollector>() };
    collector.feed(&RecordReply {
        flags,
        if_index: interface_index,
        error: error_code,
        rrtype,
        rdata,
    });
}

/// The name of the PTR record `name` (an `in-addr.arpa`/`ip6.arpa` name) asked over
/// interface `index`, waiting at most `timeout`.
pub(crate) fn query_ptr(name: &str, index: u32, timeout: Duration) -> Result<String, GaiError> {
    let Ok(cname) = CString::new(name) else {
        return Err(GaiError::NoName);
    };
    let mut collector = PtrCollector::new(index);
    // As in `resolve`: the callback's pointer, and the only way to the collector
    // while `drive` runs.
    let ctx: *mut PtrCollector = &mut collector;
    let mut sd: DnsServiceRef = std::ptr::null_mut();
    // SAFETY: `sd` is a valid out-pointer; `cname` outlives the call; `collector`
    // outlives every DNSServiceProcessResult `drive` makes, and `drive` deallocates
    // `sd` before returning (no callback runs after that).
    let rc = unsafe {
        DNSServiceQueryRecord(
            &mut sd,
            K_DNS_SERVICE_FLAGS_TIMEOUT,
            index,
            cname.as_ptr(),
            K_DNS_SERVICE_TYPE_PTR,
            K_DNS_SERVICE_CLASS_IN,
            on_record,
            ctx.cast(),
        )
    };
    if rc != 0 {
        return Err(crate::sys::macos::dnssd::terminal_error(rc).unwrap_or(GaiError::Fail));
    }
    // SAFETY: as in `resolve`.
    let timed_out = drive(sd, timeout, || unsafe { (*ctx).complete() });
    collector.finish(timed_out)
}
