//! What an address of a macOS interface counts for in the decision, from what
//! `getifaddrs` and `SIOCGIFAFLAG_IN6` report: the macOS reading of
//! `config_schema::sysdns::address_kind` (which reads rtnetlink's scope and flags).

use std::net::IpAddr;

use config_schema::sysdns::AddrKind;

/// `IN6_IFF_*` (XNU `bsd/netinet6/in6_var.h`): an address that is not (yet, or no
/// longer) usable as a source.
pub const IN6_IFF_TENTATIVE: u32 = 0x0002;
pub const IN6_IFF_DUPLICATED: u32 = 0x0004;
pub const IN6_IFF_DETACHED: u32 = 0x0008;
/// Usable while duplicate address detection runs (RFC 4429), as Linux counts it.
pub const IN6_IFF_OPTIMISTIC: u32 = 0x0200;

/// What one interface address gives the interface: an IPv4 address (not loopback),
/// a global or unique-local IPv6 address, or a link-local one; none for a tentative,
/// duplicated or detached IPv6 address (`in6_flags`, `ifru_flags6`), loopback, the
/// unspecified address and multicast.
pub fn address_kind(ip: IpAddr, in6_flags: u32) -> Option<AddrKind> {
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() || v4.is_unspecified() => None,
        IpAddr::V4(_) => Some(AddrKind::V4),
        IpAddr::V6(v6) if v6.is_loopback() || v6.is_unspecified() || v6.is_multicast() => None,
        IpAddr::V6(_)
            if in6_flags & (IN6_IFF_TENTATIVE | IN6_IFF_DUPLICATED | IN6_IFF_DETACHED) != 0
                && in6_flags & IN6_IFF_OPTIMISTIC == 0 =>
        {
            None
        }
        IpAddr::V6(v6) if v6.is_unicast_link_local() => Some(AddrKind::V6LinkLocal),
        IpAddr::V6(_) => Some(AddrKind::V6),
    }
}

/// `kind` (what [`address_kind`] found) in the snapshot's vocabulary, rtnetlink's
/// scope and flags (`config_schema::sysdns::rtnl`), chosen so that
/// `config_schema::sysdns::address_kind(ip, scope, flags)` gives `kind` back: the
/// engine's interface snapshot (`netstate`) reads addresses that way on both OSes.
pub fn rtnl_terms(ip: IpAddr, kind: Option<AddrKind>) -> (u8, u32) {
    use config_schema::sysdns::rtnl::*;
    match (kind, ip) {
        (Some(AddrKind::V6LinkLocal), _) => (RT_SCOPE_LINK, 0),
        (Some(_), _) => (RT_SCOPE_UNIVERSE, 0),
        (None, IpAddr::V4(_)) => (RT_SCOPE_HOST, 0),
        (None, IpAddr::V6(_)) => (RT_SCOPE_UNIVERSE, IFA_F_TENTATIVE),
    }
}

/// KAME's embedded scope: the kernel hands some link-local addresses out with the
/// interface index in bytes 2–3 (`fe80:6::1`); the address proper has zeros there.
pub fn strip_embedded_scope(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) if v6.is_unicast_link_local() || v6.is_multicast() => {
            let mut s = v6.segments();
            s[1] = 0;
            IpAddr::V6(s.into())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_that_count_on_macos() {
        assert_eq!(address_kind(ip("192.168.1.20"), 0), Some(AddrKind::V4));
        assert_eq!(address_kind(ip("127.0.0.1"), 0), None);
        assert_eq!(address_kind(ip("2001:db8::2"), 0), Some(AddrKind::V6));
        assert_eq!(
            address_kind(ip("fd00::2"), 0x80),
            Some(AddrKind::V6),
            "temporary"
        );
        assert_eq!(address_kind(ip("fe80::1"), 0), Some(AddrKind::V6LinkLocal));
        assert_eq!(address_kind(ip("2001:db8::2"), IN6_IFF_TENTATIVE), None);
        assert_eq!(address_kind(ip("2001:db8::2"), IN6_IFF_DUPLICATED), None);
        assert_eq!(address_kind(ip("fe80::1"), IN6_IFF_DETACHED), None);
        assert_eq!(
            address_kind(ip("2001:db8::2"), IN6_IFF_TENTATIVE | IN6_IFF_OPTIMISTIC),
            Some(AddrKind::V6),
            "optimistic DAD"
        );
        assert_eq!(address_kind(ip("::1"), 0), None);
        assert_eq!(address_kind(ip("ff02::1"), 0), None);
    }

    /// The snapshot reads an address through `config_schema::sysdns::address_kind`
    /// (rtnetlink's terms); what it reads must be what macOS's flags said.
    #[test]
    fn the_snapshot_reads_each_macos_address_as_macos_counts_it() {
        let cases = [
            ("192.168.1.20", 0),
            ("127.0.0.1", 0),
            ("0.0.0.0", 0),
            ("2001:db8::2", 0),
            ("fd00::2", 0x80),
            ("fe80::1", 0),
            ("2001:db8::2", IN6_IFF_TENTATIVE),
            ("2001:db8::2", IN6_IFF_DUPLICATED),
            ("fe80::1", IN6_IFF_DETACHED),
            ("fe80::1", IN6_IFF_TENTATIVE),
            ("2001:db8::2", IN6_IFF_TENTATIVE | IN6_IFF_OPTIMISTIC),
            ("::1", 0),
            ("ff02::1", 0),
        ];
        for (a, flags6) in cases {
            let kind = address_kind(ip(a), flags6);
            let (scope, flags) = rtnl_terms(ip(a), kind);
            assert_eq!(
                config_schema::sysdns::address_kind(ip(a), scope, flags),
                kind,
                "{a} with IN6_IFF flags {flags6:#x}"
            );
        }
    }

    #[test]
    fn embedded_scope_is_stripped() {
        assert_eq!(strip_embedded_scope(ip("fe80:6::1")), ip("fe80::1"));
        assert_eq!(strip_embedded_scope(ip("ff02:6::fb")), ip("ff02::fb"));
        assert_eq!(strip_embedded_scope(ip("2001:db8::1")), ip("2001:db8::1"));
        assert_eq!(strip_embedded_scope(ip("10.0.0.1")), ip("10.0.0.1"));
    }
}
