//! `DNSServiceGetAddrInfo` replies → the addresses `getaddrinfo` returns, or its
//! error. mDNSResponder resolves a name over one interface when asked with that
//! interface's index, from that interface's scoped resolver, and binds its own
//! queries to it; the engine hands it the name instead of asking a server itself
//! (`ffi::dnssd` drives the call; this is what it makes of the callbacks).
//!
//! The reply callback (`<dns_sd.h>`, `DNSServiceGetAddrInfoReply`) gets flags, the
//! interface index, an error code, the host name, a `sockaddr` and a TTL, once per
//! address: `kDNSServiceFlagsAdd` set for an address that is there, clear for one
//! that went away; `kDNSServiceFlagsMoreComing` while more replies are queued. A
//! family with no address is answered with `kDNSServiceErr_NoSuchRecord` and a
//! zeroed `sockaddr` of that family; a name that does not exist with
//! `kDNSServiceErr_NoSuchName` (or `NoSuchRecord`, by the server's answer).

use std::net::{IpAddr, SocketAddr, SocketAddrV6};

pub const K_DNS_SERVICE_FLAGS_MORE_COMING: u32 = 0x1;
pub const K_DNS_SERVICE_FLAGS_ADD: u32 = 0x2;
/// Ask for a time-out reply (`kDNSServiceErr_Timeout`) instead of waiting forever.
pub const K_DNS_SERVICE_FLAGS_TIMEOUT: u32 = 0x10000;
/// Answers from a cache only when they are for this interface.
pub const K_DNS_SERVICE_FLAGS_SUPPRESS_UNUSABLE: u32 = 0x8000;

pub const K_DNS_SERVICE_PROTOCOL_IPV4: u32 = 0x1;
pub const K_DNS_SERVICE_PROTOCOL_IPV6: u32 = 0x2;

pub const K_DNS_SERVICE_ERR_NO_ERROR: i32 = 0;
pub const K_DNS_SERVICE_ERR_UNKNOWN: i32 = -65537;
pub const K_DNS_SERVICE_ERR_NO_SUCH_NAME: i32 = -65538;
pub const K_DNS_SERVICE_ERR_NO_MEMORY: i32 = -65539;
pub const K_DNS_SERVICE_ERR_BAD_PARAM: i32 = -65540;
pub const K_DNS_SERVICE_ERR_BAD_INTERFACE_INDEX: i32 = -65552;
pub const K_DNS_SERVICE_ERR_REFUSED: i32 = -65553;
pub const K_DNS_SERVICE_ERR_NO_SUCH_RECORD: i32 = -65554;
pub const K_DNS_SERVICE_ERR_SERVICE_NOT_RUNNING: i32 = -65563;
pub const K_DNS_SERVICE_ERR_TIMEOUT: i32 = -65568;
pub const K_DNS_SERVICE_ERR_DEFUNCT_CONNECTION: i32 = -65569;
pub const K_DNS_SERVICE_ERR_POLICY_DENIED: i32 = -65570;

/// What the lookup asks for (from `getaddrinfo`'s `ai_family`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Families {
    pub v4: bool,
    pub v6: bool,
}

impl Families {
    /// The `DNSServiceProtocol` bits.
    pub fn protocol(self) -> u32 {
        (if self.v4 {
            K_DNS_SERVICE_PROTOCOL_IPV4
        } else {
            0
        }) | (if self.v6 {
            K_DNS_SERVICE_PROTOCOL_IPV6
        } else {
            0
        })
    }
}

/// `getaddrinfo`'s answer when there is no address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GaiError {
    /// `EAI_NONAME`: the name does not exist.
    NoName,
    /// `EAI_NODATA`: it exists but has no address of the families asked.
    NoData,
    /// `EAI_AGAIN`: no answer in time, or mDNSResponder unreachable.
    Again,
    /// `EAI_FAIL`: refused (a policy, a bad interface index).
    Fail,
}

/// One callback's arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub flags: u32,
    pub if_index: u32,
    pub error: i32,
    /// The `sockaddr`'s address (`None` for a family this module does not know).
    pub addr: Option<IpAddr>,
}

/// The error a terminal reply code means; `None` for codes that only say "this
/// family has no address" (`NoSuchRecord`) or are not errors.
pub fn terminal_error(code: i32) -> Option<GaiError> {
    match code {
        K_DNS_SERVICE_ERR_NO_ERROR | K_DNS_SERVICE_ERR_NO_SUCH_RECORD => None,
        K_DNS_SERVICE_ERR_NO_SUCH_NAME => Some(GaiError::NoName),
        K_DNS_SERVICE_ERR_TIMEOUT
        | K_DNS_SERVICE_ERR_SERVICE_NOT_RUNNING
        | K_DNS_SERVICE_ERR_DEFUNCT_CONNECTION
        | K_DNS_SERVICE_ERR_NO_MEMORY => Some(GaiError::Again),
        _ => Some(GaiError::Fail),
    }
}

/// Collects the replies of one lookup over interface `index`.
#[derive(Debug, Clone)]
pub struct Collector {
    index: u32,
    want: Families,
    answered_v4: bool,
    answered_v6: bool,
    addrs: Vec<IpAddr>,
    error: Option<GaiError>,
    more_coming: bool,
    /// Replies for another interface, ignored (mDNSResponder should send none).
    pub foreign: usize,
}

impl Collector {
    pub fn new(index: u32, want: Families) -> Self {
        Collector {
            index,
            want,
            answered_v4: !want.v4,
            answered_v6: !want.v6,
            addrs: Vec::new(),
            error: None,
            more_coming: false,
            foreign: 0,
        }
    }

    /// Takes one reply.
    pub fn feed(&mut self, r: &Reply) {
        self.more_coming = r.flags & K_DNS_SERVICE_FLAGS_MORE_COMING != 0;
        if let Some(e) = terminal_error(r.error) {
            self.error = Some(e);
            return;
        }
        if r.if_index != 0 && r.if_index != self.index {
            self.foreign += 1;
            return;
        }
        let Some(ip) = r.addr else {
            return;
        };
        match ip {
            IpAddr::V4(_) => self.answered_v4 = true,
            IpAddr::V6(_) => self.answered_v6 = true,
        }
        let wanted = match ip {
            IpAddr::V4(_) => self.want.v4,
            IpAddr::V6(_) => self.want.v6,
        };
        if r.error == K_DNS_SERVICE_ERR_NO_SUCH_RECORD || !wanted {
            return;
        }
        if r.flags & K_DNS_SERVICE_FLAGS_ADD != 0 {
            if !self.addrs.contains(&ip) {
                self.addrs.push(ip);
            }
        } else {
            self.addrs.retain(|a| *a != ip);
        }
    }

    /// Whether the lookup has its answer: an error, or every family asked answered
    /// (positively or not) with nothing more queued.
    pub fn complete(&self) -> bool {
        self.error.is_some() || (self.answered_v4 && self.answered_v6 && !self.more_coming)
    }

    /// The answer; `timed_out` when the caller gave up waiting (what was collected
    /// by then is used when it is not empty, as getaddrinfo does with a partial
    /// answer for one family).
    pub fn finish(self, timed_out: bool) -> Result<Vec<IpAddr>, GaiError> {
        if let Some(e) = self.error {
            return if self.addrs.is_empty() || e == GaiError::NoName {
                Err(e)
            } else {
                Ok(self.addrs)
            };
        }
        if !self.addrs.is_empty() {
            return Ok(self.addrs);
        }
        if timed_out && !(self.answered_v4 && self.answered_v6) {
            return Err(GaiError::Again);
        }
        Err(GaiError::NoData)
    }
}

/// `kDNSServiceType_PTR` and `kDNSServiceClass_IN` (`<dns_sd.h>`: the RR numbers).
pub const K_DNS_SERVICE_TYPE_PTR: u16 = 12;
pub const K_DNS_SERVICE_CLASS_IN: u16 = 1;

/// The name a PTR record's rdata holds, as text without the final dot: the rdata of
/// a `DNSServiceQueryRecord` reply is the record's own bytes, the name in DNS wire
/// form (length-prefixed labels, a zero length at the end), uncompressed (the client
/// library has no message to point into). `None` for anything else: a compression
/// pointer or a reserved label type, a label past the data, a name over 255 bytes,
/// the root alone, or a label that is not printable ASCII or holds a dot or a
/// backslash (text `getnameinfo` could not hand back unescaped).
pub fn ptr_name(rdata: &[u8]) -> Option<String> {
    let mut name = String::new();
    let mut pos = 0usize;
    loop {
        let len = *rdata.get(pos)? as usize;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        let label = rdata.get(pos + 1..pos + 1 + len)?;
        if !label
            .iter()
            .all(|b| b.is_ascii_graphic() && *b != b'.' && *b != b'\\')
        {
            return None;
        }
        if !name.is_empty() {
            name.push('.');
        }
        name.extend(label.iter().map(|&b| char::from(b)));
        pos += 1 + len;
        if pos + 1 > 255 {
            return None;
        }
    }
    (!name.is_empty()).then_some(name)
}

/// One `DNSServiceQueryRecord` callback's arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordReply<'a> {
    pub flags: u32,
    pub if_index: u32,
    pub error: i32,
    pub rrtype: u16,
    pub rdata: &'a [u8],
}

/// Collects the replies of one PTR query over interface `index`: the first name an
/// added record gives, or the error.
#[derive(Debug, Clone)]
pub struct PtrCollector {
    index: u32,
    name: Option<String>,
    error: Option<GaiError>,
    /// Replies for another interface, ignored (mDNSResponder should send none).
    pub foreign: usize,
}

impl PtrCollector {
    pub fn new(index: u32) -> Self {
        PtrCollector {
            index,
            name: None,
            error: None,
            foreign: 0,
        }
    }

    /// Takes one reply: `NoSuchRecord` and `NoSuchName` mean the address has no
    /// name; a record that is not a readable PTR is skipped.
    pub fn feed(&mut self, r: &RecordReply<'_>) {
        if r.error == K_DNS_SERVICE_ERR_NO_SUCH_RECORD {
            self.error = Some(GaiError::NoName);
            return;
        }
        if let Some(e) = terminal_error(r.error) {
            self.error = Some(e);
            return;
        }
        if r.if_index != 0 && r.if_index != self.index {
            self.foreign += 1;
            return;
        }
        if r.flags & K_DNS_SERVICE_FLAGS_ADD == 0 || r.rrtype != K_DNS_SERVICE_TYPE_PTR {
            return;
        }
        if self.name.is_none() {
            self.name = ptr_name(r.rdata);
        }
    }

    /// Whether the query has its answer: a name, or an error.
    pub fn complete(&self) -> bool {
        self.name.is_some() || self.error.is_some()
    }

    /// The name; `timed_out` when the caller gave up waiting (`Again` without one).
    pub fn finish(self, timed_out: bool) -> Result<String, GaiError> {
        match (self.name, self.error) {
            (Some(n), _) => Ok(n),
            (None, Some(e)) => Err(e),
            (None, None) if timed_out => Err(GaiError::Again),
            (None, None) => Err(GaiError::NoName),
        }
    }
}

/// The socket addresses to build the `addrinfo` list from: the answers at `port`,
/// link-local IPv6 ones scoped to the interface they were resolved over (an address
/// of a link means that link).
pub fn socket_addrs(addrs: &[IpAddr], port: u16, index: u32) -> Vec<SocketAddr> {
    addrs
        .iter()
        .map(|&ip| match ip {
            IpAddr::V6(v6) if v6.is_unicast_link_local() => {
                SocketAddr::V6(SocketAddrV6::new(v6, port, 0, index))
            }
            ip => SocketAddr::new(ip, port),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: Families = Families { v4: true, v6: true };

    fn add(ip: &str) -> Reply {
        Reply {
            flags: K_DNS_SERVICE_FLAGS_ADD,
            if_index: 14,
            error: 0,
            addr: Some(ip.parse().unwrap()),
        }
    }
    fn none(v6: bool) -> Reply {
        Reply {
            flags: 0,
            if_index: 14,
            error: K_DNS_SERVICE_ERR_NO_SUCH_RECORD,
            addr: Some(if v6 {
                "::".parse().unwrap()
            } else {
                "0.0.0.0".parse().unwrap()
            }),
        }
    }
    fn ips(v: &[&str]) -> Vec<IpAddr> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn both_families_answered() {
        let mut c = Collector::new(14, BOTH);
        assert_eq!(BOTH.protocol(), 3);
        let mut first = add("203.0.113.10");
        first.flags |= K_DNS_SERVICE_FLAGS_MORE_COMING;
        c.feed(&first);
        assert!(!c.complete());
        c.feed(&add("2001:db8::10"));
        assert!(c.complete());
        assert_eq!(c.finish(false), Ok(ips(&["203.0.113.10", "2001:db8::10"])));
    }

    #[test]
    fn more_coming_holds_completion() {
        let mut c = Collector::new(14, BOTH);
        let mut r = add("203.0.113.10");
        c.feed(&r);
        r = add("2001:db8::10");
        r.flags |= K_DNS_SERVICE_FLAGS_MORE_COMING;
        c.feed(&r);
        assert!(!c.complete(), "more replies are queued");
        c.feed(&add("2001:db8::11"));
        assert!(c.complete());
        assert_eq!(c.finish(false).unwrap().len(), 3);
    }

    #[test]
    fn one_family_without_records() {
        let mut c = Collector::new(14, BOTH);
        c.feed(&add("203.0.113.10"));
        c.feed(&none(true));
        assert!(c.complete());
        assert_eq!(c.finish(false), Ok(ips(&["203.0.113.10"])));
        // Neither family: the name exists without addresses.
        let mut c = Collector::new(14, BOTH);
        c.feed(&none(false));
        c.feed(&none(true));
        assert!(c.complete());
        assert_eq!(c.finish(false), Err(GaiError::NoData));
    }

    #[test]
    fn only_the_family_asked_counts() {
        let mut c = Collector::new(
            14,
            Families {
                v4: false,
                v6: true,
            },
        );
        assert_eq!(
            Families {
                v4: false,
                v6: true
            }
            .protocol(),
            2
        );
        c.feed(&add("203.0.113.10"));
        assert!(!c.complete());
        c.feed(&add("2001:db8::10"));
        assert!(c.complete());
        assert_eq!(c.finish(false), Ok(ips(&["2001:db8::10"])));
    }

    #[test]
    fn removed_records_and_duplicates() {
        let mut c = Collector::new(
            14,
            Families {
                v4: true,
                v6: false,
            },
        );
        c.feed(&add("203.0.113.10"));
        c.feed(&add("203.0.113.10"));
        c.feed(&add("203.0.113.11"));
        let mut gone = add("203.0.113.10");
        gone.flags = 0;
        c.feed(&gone);
        assert_eq!(c.finish(false), Ok(ips(&["203.0.113.11"])));
    }

    #[test]
    fn errors_map_to_getaddrinfos() {
        for (code, want) in [
            (K_DNS_SERVICE_ERR_NO_SUCH_NAME, GaiError::NoName),
            (K_DNS_SERVICE_ERR_TIMEOUT, GaiError::Again),
            (K_DNS_SERVICE_ERR_SERVICE_NOT_RUNNING, GaiError::Again),
            (K_DNS_SERVICE_ERR_DEFUNCT_CONNECTION, GaiError::Again),
            (K_DNS_SERVICE_ERR_POLICY_DENIED, GaiError::Fail),
            (K_DNS_SERVICE_ERR_BAD_INTERFACE_INDEX, GaiError::Fail),
            (K_DNS_SERVICE_ERR_REFUSED, GaiError::Fail),
            (K_DNS_SERVICE_ERR_UNKNOWN, GaiError::Fail),
        ] {
            let mut c = Collector::new(14, BOTH);
            c.feed(&Reply {
                flags: 0,
                if_index: 14,
                error: code,
                addr: None,
            });
            assert!(c.complete());
            assert_eq!(c.finish(false), Err(want), "{code}");
        }
        assert_eq!(terminal_error(K_DNS_SERVICE_ERR_NO_SUCH_RECORD), None);
        // A time-out after one family answered keeps what came.
        let mut c = Collector::new(14, BOTH);
        c.feed(&add("203.0.113.10"));
        c.feed(&Reply {
            flags: 0,
            if_index: 0,
            error: K_DNS_SERVICE_ERR_TIMEOUT,
            addr: None,
        });
        assert_eq!(c.finish(false), Ok(ips(&["203.0.113.10"])));
        // The caller's own time-out with nothing: EAI_AGAIN.
        let c = Collector::new(14, BOTH);
        assert_eq!(c.finish(true), Err(GaiError::Again));
    }

    #[test]
    fn replies_for_another_interface_are_ignored() {
        let mut c = Collector::new(
            14,
            Families {
                v4: true,
                v6: false,
            },
        );
        let mut r = add("198.51.100.7");
        r.if_index = 6;
        c.feed(&r);
        assert_eq!(c.foreign, 1);
        assert!(!c.complete());
        c.feed(&add("203.0.113.10"));
        assert_eq!(c.finish(false), Ok(ips(&["203.0.113.10"])));
    }

    #[test]
    fn link_local_answers_are_scoped_to_the_interface() {
        let got = socket_addrs(&ips(&["fe80::5", "2001:db8::5", "203.0.113.5"]), 443, 14);
        assert_eq!(
            got[0],
            SocketAddr::V6(SocketAddrV6::new("fe80::5".parse().unwrap(), 443, 0, 14))
        );
        assert_eq!(got[1], "[2001:db8::5]:443".parse().unwrap());
        assert_eq!(got[2], "203.0.113.5:443".parse().unwrap());
    }

    /// A name in DNS wire form, as a PTR record's rdata holds it.
    fn wire(name: &str) -> Vec<u8> {
        let mut v = Vec::new();
        for l in name.split('.') {
            v.push(l.len() as u8);
            v.extend_from_slice(l.as_bytes());
        }
        v.push(0);
        v
    }

    #[test]
    fn a_ptr_rdata_is_an_uncompressed_wire_name() {
        assert_eq!(
            ptr_name(&wire("web.example")).as_deref(),
            Some("web.example")
        );
        assert_eq!(
            ptr_name(&wire("printer-2.corp.example")).as_deref(),
            Some("printer-2.corp.example")
        );
        // The root alone, no terminator, a label past the data, a pointer, a label
        // over 63 bytes, a dot or a control byte in a label: no name.
        assert_eq!(ptr_name(&[0]), None);
        assert_eq!(ptr_name(b"\x03web"), None);
        assert_eq!(ptr_name(b"\x05web\x00"), None);
        assert_eq!(ptr_name(&[0xc0, 0x0c]), None);
        let mut long = vec![64u8];
        long.extend_from_slice(&[b'a'; 64]);
        long.push(0);
        assert_eq!(ptr_name(&long), None);
        assert_eq!(ptr_name(b"\x03a.b\x00"), None);
        assert_eq!(ptr_name(b"\x03a\nb\x00"), None);
        assert_eq!(ptr_name(&[]), None);
        // 255 bytes at most, the terminator included.
        let label = "a".repeat(63);
        let ok = [label.as_str(); 3].join(".") + ".b";
        assert_eq!(wire(&ok).len(), 195);
        assert!(ptr_name(&wire(&ok)).is_some());
        let too_long = [label.as_str(); 4].join(".");
        assert_eq!(wire(&too_long).len(), 257);
        assert_eq!(ptr_name(&wire(&too_long)), None);
    }

    #[test]
    fn a_ptr_query_takes_the_first_added_name_or_the_error() {
        let rd = wire("web.example");
        let r = |flags, error, rrtype, rdata: &'static [u8]| RecordReply {
            flags,
            if_index: 14,
            error,
            rrtype,
            rdata,
        };
        let rd: &'static [u8] = rd.leak();
        let mut c = PtrCollector::new(14);
        assert!(!c.complete());
        // A removal, another type, another interface's: skipped.
        c.feed(&r(0, 0, K_DNS_SERVICE_TYPE_PTR, rd));
        c.feed(&r(K_DNS_SERVICE_FLAGS_ADD, 0, 1, rd));
        c.feed(&RecordReply {
            if_index: 6,
            ..r(K_DNS_SERVICE_FLAGS_ADD, 0, K_DNS_SERVICE_TYPE_PTR, rd)
        });
        assert_eq!(c.foreign, 1);
        assert!(!c.complete());
        c.feed(&r(K_DNS_SERVICE_FLAGS_ADD, 0, K_DNS_SERVICE_TYPE_PTR, rd));
        assert!(c.complete());
        assert_eq!(c.finish(false).as_deref(), Ok("web.example"));
        for (code, want) in [
            (K_DNS_SERVICE_ERR_NO_SUCH_RECORD, GaiError::NoName),
            (K_DNS_SERVICE_ERR_NO_SUCH_NAME, GaiError::NoName),
            (K_DNS_SERVICE_ERR_TIMEOUT, GaiError::Again),
            (K_DNS_SERVICE_ERR_POLICY_DENIED, GaiError::Fail),
        ] {
            let mut c = PtrCollector::new(14);
            c.feed(&r(0, code, K_DNS_SERVICE_TYPE_PTR, &[]));
            assert!(c.complete());
            assert_eq!(c.finish(false), Err(want), "{code}");
        }
        assert_eq!(PtrCollector::new(14).finish(true), Err(GaiError::Again));
        assert_eq!(PtrCollector::new(14).finish(false), Err(GaiError::NoName));
    }
}
