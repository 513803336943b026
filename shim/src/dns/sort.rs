//! Destination address ordering (RFC 6724 §6) against the *chosen interface's*
//! source addresses, not the default route's: glibc's own sort probes the default
//! routing table, which would happily put IPv6 first on a link that has no IPv6.

use std::net::{IpAddr, Ipv6Addr};

/// RFC 6724 §2.1 default policy table: (prefix, length, precedence, label).
const POLICY: &[(Ipv6Addr, u8, u8, u8)] = &[
    (Ipv6Addr::LOCALHOST, 128, 50, 0),
    (Ipv6Addr::UNSPECIFIED, 0, 40, 1),
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96, 35, 4),
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16, 30, 2),
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32, 5, 5),
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, 3, 13),
    (Ipv6Addr::UNSPECIFIED, 96, 1, 3),
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, 1, 11),
    (Ipv6Addr::new(0x3ffe, 0, 0, 0, 0, 0, 0, 0), 16, 1, 12),
];

fn as_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

fn common_prefix(a: Ipv6Addr, b: Ipv6Addr) -> u32 {
    (u128::from(a) ^ u128::from(b)).leading_zeros()
}

/// (precedence, label) of the longest matching policy entry.
fn policy(ip: IpAddr) -> (u8, u8) {
    let v6 = as_v6(ip);
    POLICY
        .iter()
        .filter(|(p, len, _, _)| common_prefix(*p, v6) >= *len as u32)
        .max_by_key(|(_, len, _, _)| *len)
        .map_or((40, 1), |(_, _, prec, label)| (*prec, *label))
}

/// RFC 6724 §3.1 scope: 1 interface-local, 2 link-local, 5 site-local, 14 global.
fn scope(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() || v4.is_link_local() => 2,
        IpAddr::V4(_) => 14,
        IpAddr::V6(v6) if v6.is_multicast() => v6.segments()[0] as u8 & 0x0f,
        IpAddr::V6(v6) if v6.is_loopback() || (v6.segments()[0] & 0xffc0) == 0xfe80 => 2,
        IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfec0 => 5,
        IpAddr::V6(_) => 14,
    }
}

/// The source address the interface would use for `dest` (RFC 6724 §5, the rules
/// that matter with a single interface: same family, appropriate scope, longest
/// matching prefix).
fn source_for(dest: IpAddr, sources: &[IpAddr]) -> Option<IpAddr> {
    let ds = scope(dest);
    sources
        .iter()
        .filter(|s| s.is_ipv4() == dest.is_ipv4())
        .max_by_key(|s| {
            let ss = scope(**s);
            // Rule 2: prefer a scope >= the destination's, the smallest such.
            let scope_fit = if ss >= ds {
                100 - ss as i32
            } else {
                ss as i32 - 100
            };
            (scope_fit, common_prefix(as_v6(**s), as_v6(dest)))
        })
        .copied()
}

/// Drops destinations the interface has no source address for (RFC 6724 rule 1:
/// they are unusable there) and orders the rest (rules 2, 5, 6, 8, 9, 10).
pub(crate) fn sort_for_interface(dests: &[IpAddr], sources: &[IpAddr]) -> Vec<IpAddr> {
    let mut keyed: Vec<(usize, IpAddr, Option<IpAddr>)> = dests
        .iter()
        .enumerate()
        .filter_map(|(i, d)| source_for(*d, sources).map(|s| (i, *d, Some(s))))
        .collect();
    keyed.sort_by(|a, b| {
        use std::cmp::Ordering;
        let (da, sa) = (a.1, a.2.unwrap_or(a.1));
        let (db, sb) = (b.1, b.2.unwrap_or(b.1));
        // Rule 2: prefer matching scope.
        let m = |d, s| scope(d) == scope(s);
        let r2 = m(db, sb).cmp(&m(da, sa));
        // Rule 5: prefer matching label.
        let l = |d, s| policy(d).1 == policy(s).1;
        let r5 = l(db, sb).cmp(&l(da, sa));
        // Rule 6: prefer higher precedence.
        let r6 = policy(db).0.cmp(&policy(da).0);
        // Rule 8: prefer smaller scope.
        let r8 = scope(da).cmp(&scope(db));
        // Rule 9: longest matching prefix, within one family.
        let r9 = if da.is_ipv4() == db.is_ipv4() {
            common_prefix(as_v6(db), as_v6(sb)).cmp(&common_prefix(as_v6(da), as_v6(sa)))
        } else {
            Ordering::Equal
        };
        // Rule 10: otherwise keep the order the server gave.
        r2.then(r5).then(r6).then(r8).then(r9).then(a.0.cmp(&b.0))
    });
    keyed.into_iter().map(|(_, d, _)| d).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(v: &[&str]) -> Vec<IpAddr> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn ipv6_answers_are_dropped_on_an_ipv4_only_link() {
        let out = sort_for_interface(
            &ips(&["2001:db8:ff::10", "203.0.113.10"]),
            &ips(&["198.51.100.66"]),
        );
        assert_eq!(out, ips(&["203.0.113.10"]));
    }

    #[test]
    fn ipv4_answers_are_dropped_on_an_ipv6_only_link() {
        let out = sort_for_interface(
            &ips(&["203.0.113.10", "2001:db8:ff::10"]),
            &ips(&["2001:db8:20::2", "fe80::1"]),
        );
        assert_eq!(out, ips(&["2001:db8:ff::10"]));
    }

    #[test]
    fn global_ipv6_precedes_ipv4_when_the_link_has_both() {
        let out = sort_for_interface(
            &ips(&["203.0.113.10", "2001:db8:ff::10"]),
            &ips(&["198.51.100.66", "2001:db8:20::2", "fe80::2"]),
        );
        assert_eq!(out, ips(&["2001:db8:ff::10", "203.0.113.10"]));
    }

    #[test]
    fn link_local_only_ipv6_source_makes_global_ipv6_lose_to_ipv4() {
        // Rule 2: a global IPv6 destination with only a link-local source has a
        // scope mismatch; IPv4 wins.
        let out = sort_for_interface(
            &ips(&["2001:db8:ff::10", "203.0.113.10"]),
            &ips(&["198.51.100.66", "fe80::2"]),
        );
        assert_eq!(out, ips(&["203.0.113.10", "2001:db8:ff::10"]));
    }

    #[test]
    fn longest_prefix_then_server_order() {
        let out = sort_for_interface(
            &ips(&["2001:db8:99::1", "2001:db8:20::99", "2001:db8:98::1"]),
            &ips(&["2001:db8:20::2"]),
        );
        assert_eq!(
            out,
            ips(&["2001:db8:20::99", "2001:db8:99::1", "2001:db8:98::1"])
        );
    }

    #[test]
    fn policy_table_lookups() {
        assert_eq!(policy("::1".parse().unwrap()), (50, 0));
        assert_eq!(policy("203.0.113.1".parse().unwrap()), (35, 4));
        assert_eq!(policy("2001:db8::1".parse().unwrap()), (40, 1));
        assert_eq!(policy("2001::1".parse().unwrap()), (5, 5));
        assert_eq!(policy("fd00::1".parse().unwrap()), (3, 13));
    }
}
