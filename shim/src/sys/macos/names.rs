//! A steered name lookup on macOS, from `getaddrinfo`'s arguments to its answer: the
//! plan ([`plan`]: resolve over the interface with `DNSServiceGetAddrInfo`, or fail
//! because the interface has no DNS of its own) and the error codes of the answer
//! ([`eai`], macOS's `<netdb.h>` numbers). Pure, so Linux runs the tests;
//! `ffi::names::lookup` runs it over `dnsinfo` and `ffi::dnssd`.
//!
//! The rules (README, "macOS"): the interface's resolvers are the system
//! configuration's (`dnsconf::DnsConfig::for_interface`: its per-domain resolver for a
//! name in the domain, else its scoped one, else its default one). An interface with
//! none fails the name (`EAI_FAIL`) instead of using another link's servers; a
//! configuration configd does not publish fails it as `EAI_AGAIN` (transient). A
//! `.local` name is multicast DNS on the link itself and needs no server. Either way
//! the query is mDNSResponder's, scoped by the interface index, never a hand-made
//! query to a server the engine picked.

use super::dnsconf::DnsConfig;
use super::dnssd::{Families, GaiError};

/// `AF_UNSPEC`, `AF_INET`, `AF_INET6` on macOS.
pub(crate) const AF_UNSPEC: i32 = 0;
pub(crate) const AF_INET: i32 = super::wire::AF_INET as i32;
pub(crate) const AF_INET6: i32 = super::wire::AF_INET6 as i32;

/// macOS's `<netdb.h>` error codes (Libinfo's; not Linux's negative ones).
pub(crate) const EAI_ADDRFAMILY: i32 = 1;
pub(crate) const EAI_AGAIN: i32 = 2;
pub(crate) const EAI_BADFLAGS: i32 = 3;
pub(crate) const EAI_FAIL: i32 = 4;
pub(crate) const EAI_FAMILY: i32 = 5;
pub(crate) const EAI_MEMORY: i32 = 6;
pub(crate) const EAI_NODATA: i32 = 7;
pub(crate) const EAI_NONAME: i32 = 8;
pub(crate) const EAI_SERVICE: i32 = 9;
pub(crate) const EAI_SOCKTYPE: i32 = 10;
pub(crate) const EAI_SYSTEM: i32 = 11;
pub(crate) const EAI_BADHINTS: i32 = 12;
pub(crate) const EAI_PROTOCOL: i32 = 13;
pub(crate) const EAI_OVERFLOW: i32 = 14;

/// The name of macOS's `EAI_*` code `code`, for the events file (`sys::eai_name` on
/// macOS); `EAI_UNKNOWN` for another.
pub(crate) fn eai_name(code: i32) -> &'static str {
    match code {
        EAI_ADDRFAMILY => "EAI_ADDRFAMILY",
        EAI_AGAIN => "EAI_AGAIN",
        EAI_BADFLAGS => "EAI_BADFLAGS",
        EAI_FAIL => "EAI_FAIL",
        EAI_FAMILY => "EAI_FAMILY",
        EAI_MEMORY => "EAI_MEMORY",
        EAI_NODATA => "EAI_NODATA",
        EAI_NONAME => "EAI_NONAME",
        EAI_SERVICE => "EAI_SERVICE",
        EAI_SOCKTYPE => "EAI_SOCKTYPE",
        EAI_SYSTEM => "EAI_SYSTEM",
        EAI_BADHINTS => "EAI_BADHINTS",
        EAI_PROTOCOL => "EAI_PROTOCOL",
        EAI_OVERFLOW => "EAI_OVERFLOW",
        _ => "EAI_UNKNOWN",
    }
}

/// What a steered lookup does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// `DNSServiceGetAddrInfo(name, index, families)`; `source` for the log.
    DnsSd {
        index: u32,
        families: Families,
        source: &'static str,
    },
    /// `getaddrinfo` answers this code, nothing is asked.
    Fail(i32),
}

/// Where a `.local` name's answer comes from.
pub(crate) const FROM_MDNS: &str = "multicast DNS on the interface";

fn is_local(name: &str) -> bool {
    let n = name.trim_end_matches('.');
    // Bytes, not a str slice: a name may hold a multi-byte character there.
    let b = n.as_bytes();
    b.len() >= 6 && b[b.len() - 6..].eq_ignore_ascii_case(b".local")
}

/// The families `ai_family` asks for (`None`: `EAI_FAMILY`).
pub(crate) fn families(ai_family: i32) -> Option<Families> {
    match ai_family {
        AF_UNSPEC => Some(Families { v4: true, v6: true }),
        AF_INET => Some(Families {
            v4: true,
            v6: false,
        }),
        AF_INET6 => Some(Families {
            v4: false,
            v6: true,
        }),
        _ => None,
    }
}

/// The plan for `name` (`ai_family`) resolved over interface `index`, with the
/// system configuration `config` (`None`: configd published none).
pub(crate) fn plan(config: Option<&DnsConfig>, index: u32, name: &str, ai_family: i32) -> Plan {
    let Some(families) = families(ai_family) else {
        return Plan::Fail(EAI_FAMILY);
    };
    let dns = |source| Plan::DnsSd {
        index,
        families,
        source,
    };
    if is_local(name) {
        return dns(FROM_MDNS);
    }
    let Some(config) = config else {
        return Plan::Fail(EAI_AGAIN);
    };
    match config.for_interface(index, Some(name)) {
        Some(link) => dns(link.source),
        None => Plan::Fail(EAI_FAIL),
    }
}

/// `getaddrinfo`'s code for a DNS-SD answer with no address.
pub(crate) fn eai(e: GaiError) -> i32 {
    match e {
        GaiError::NoName => EAI_NONAME,
        GaiError::NoData => EAI_NODATA,
        GaiError::Again => EAI_AGAIN,
        GaiError::Fail => EAI_FAIL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::macos::dnsconf::{self, Resolver};

    /// Wi-Fi (en0, 6) with a scoped resolver, a VPN's per-domain resolver on utun3
    /// (14), and an iPhone hotspot (en7, 9) without DNS of its own.
    fn config() -> DnsConfig {
        let r = |index, domain: Option<&str>, server: &str, scoped| Resolver {
            domain: domain.map(str::to_owned),
            nameservers: vec![server.parse().unwrap()],
            if_index: Some(index),
            scoped,
            ..Resolver::default()
        };
        DnsConfig {
            resolvers: vec![r(14, Some("corp.example"), "198.51.100.53:53", false)],
            scoped: vec![r(6, None, "203.0.113.53:53", true)],
        }
    }

    #[test]
    fn a_name_over_an_interface_with_dns_goes_to_dnssd_with_its_index() {
        let c = config();
        assert_eq!(
            plan(Some(&c), 6, "example.org", AF_UNSPEC),
            Plan::DnsSd {
                index: 6,
                families: Families { v4: true, v6: true },
                source: dnsconf::FROM_SCOPED
            }
        );
        assert_eq!(
            plan(Some(&c), 14, "git.corp.example", AF_INET6),
            Plan::DnsSd {
                index: 14,
                families: Families {
                    v4: false,
                    v6: true
                },
                source: dnsconf::FROM_SUPPLEMENTAL
            }
        );
    }

    #[test]
    fn an_interface_without_dns_of_its_own_fails_the_name() {
        let c = config();
        assert_eq!(
            plan(Some(&c), 9, "example.org", AF_UNSPEC),
            Plan::Fail(EAI_FAIL)
        );
        // The VPN's resolver is for its domain only.
        assert_eq!(
            plan(Some(&c), 14, "example.org", AF_INET),
            Plan::Fail(EAI_FAIL)
        );
    }

    #[test]
    fn a_missing_configuration_is_transient_and_local_names_need_none() {
        assert_eq!(
            plan(None, 6, "example.org", AF_UNSPEC),
            Plan::Fail(EAI_AGAIN)
        );
        for name in ["printer.local", "Printer.LOCAL.", "x.local"] {
            assert_eq!(
                plan(None, 9, name, AF_INET),
                Plan::DnsSd {
                    index: 9,
                    families: Families {
                        v4: true,
                        v6: false
                    },
                    source: FROM_MDNS
                },
                "{name}"
            );
        }
        assert_eq!(plan(None, 9, "local", AF_INET), Plan::Fail(EAI_AGAIN));
        assert_eq!(plan(None, 9, "notlocal", AF_INET), Plan::Fail(EAI_AGAIN));
        assert_eq!(
            plan(None, 9, "caf\u{e9}local", AF_INET),
            Plan::Fail(EAI_AGAIN)
        );
    }

    #[test]
    fn an_unknown_family_is_eai_family() {
        assert_eq!(
            plan(Some(&config()), 6, "example.org", 1),
            Plan::Fail(EAI_FAMILY)
        );
    }

    #[test]
    fn dnssd_errors_become_macos_eai_codes() {
        assert_eq!(eai(GaiError::NoName), 8);
        assert_eq!(eai(GaiError::NoData), 7);
        assert_eq!(eai(GaiError::Again), 2);
        assert_eq!(eai(GaiError::Fail), 4);
    }

    /// The events file names macOS's codes by `<netdb.h>`'s numbers (1 to 14), not
    /// glibc's negative ones.
    #[test]
    fn macos_eai_codes_have_their_netdb_names() {
        let names: Vec<_> = (0..=15).map(eai_name).collect();
        assert_eq!(
            names,
            [
                "EAI_UNKNOWN",
                "EAI_ADDRFAMILY",
                "EAI_AGAIN",
                "EAI_BADFLAGS",
                "EAI_FAIL",
                "EAI_FAMILY",
                "EAI_MEMORY",
                "EAI_NODATA",
                "EAI_NONAME",
                "EAI_SERVICE",
                "EAI_SOCKTYPE",
                "EAI_SYSTEM",
                "EAI_BADHINTS",
                "EAI_PROTOCOL",
                "EAI_OVERFLOW",
                "EAI_UNKNOWN",
            ]
        );
        assert_eq!(
            eai_name(-2),
            "EAI_UNKNOWN",
            "glibc's EAI_NONAME is not macOS's"
        );
    }
}
