//! Default routes per interface, from `/proc/net/route` and `/proc/net/ipv6_route`.
//!
//! `SO_BINDTODEVICE` only restricts which routes a socket may use; it does not create
//! one. A socket bound to an interface without a route to the destination fails with
//! `ENETUNREACH`, so mifrun warns when an interface has no default route.

use std::collections::BTreeSet;

/// `RTF_UP` from `<linux/route.h>`.
const RTF_UP: u32 = 0x0001;
/// `RTF_REJECT` from `<linux/route.h>` (unreachable/prohibit/blackhole entries).
const RTF_REJECT: u32 = 0x0200;

/// Interfaces that have a usable default route, per family.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DefaultRoutes {
    pub v4: BTreeSet<String>,
    pub v6: BTreeSet<String>,
}

impl DefaultRoutes {
    /// True when `iface` has an IPv4 or an IPv6 default route.
    pub fn has_any(&self, iface: &str) -> bool {
        self.v4.contains(iface) || self.v6.contains(iface)
    }
}

/// Parses `/proc/net/route` (the main IPv4 table): rows whose destination and mask are
/// both zero and that are up and not reject routes.
///
/// ```text
/// Iface  Destination  Gateway   Flags  RefCnt  Use  Metric  Mask      MTU  Window  IRTT
/// eth0   00000000     0102A8C0  0003   0       0    100     00000000  0    0       0
/// ```
pub fn parse_ipv4(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let (Ok(dest), Ok(flags), Ok(mask)) = (
            u32::from_str_radix(f[1], 16),
            u32::from_str_radix(f[3], 16),
            u32::from_str_radix(f[7], 16),
        ) else {
            continue;
        };
        if dest == 0 && mask == 0 && usable(flags) {
            out.insert(f[0].to_owned());
        }
    }
    out
}

/// Parses `/proc/net/ipv6_route`: rows `dest plen src splen nexthop metric refcnt use
/// flags dev` (no header) with an all-zero destination and prefix length 0.
pub fn parse_ipv6(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 {
            continue;
        }
        let zero_dest = f[0].len() == 32 && f[0].bytes().all(|b| b == b'0');
        let (Ok(plen), Ok(flags)) = (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[8], 16))
        else {
            continue;
        };
        if zero_dest && plen == 0 && usable(flags) {
            out.insert(f[9].to_owned());
        }
    }
    out
}

fn usable(flags: u32) -> bool {
    flags & RTF_UP != 0 && flags & RTF_REJECT == 0
}

/// Reads both files. A file that cannot be read contributes nothing; `None` when
/// neither can be read (no procfs), in which case no warning should be given.
pub fn read_default_routes() -> Option<DefaultRoutes> {
    let v4 = std::fs::read_to_string("/proc/net/route").ok();
    let v6 = std::fs::read_to_string("/proc/net/ipv6_route").ok();
    if v4.is_none() && v6.is_none() {
        return None;
    }
    Some(DefaultRoutes {
        v4: v4.as_deref().map(parse_ipv4).unwrap_or_default(),
        v6: v6.as_deref().map(parse_ipv6).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0100A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t0000A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
wlan0\t0000000A\t00000000\t0001\t0\t0\t600\t000000FF\t0\t0\t0
wwan0\t00000000\t00000000\t0001\t0\t0\t700\t00000000\t0\t0\t0
down0\t00000000\t0100A8C0\t0002\t0\t0\t100\t00000000\t0\t0\t0
rej0\t00000000\t00000000\t0201\t0\t0\t100\t00000000\t0\t0\t0
";

    const ROUTE6: &str = "\
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003    wlan0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
20010db8000000000000000000000000 20 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001    wwan0
00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo
";

    #[test]
    fn ipv4_default_routes() {
        let got = parse_ipv4(ROUTE);
        assert_eq!(got, BTreeSet::from(["eth0".into(), "wwan0".into()]));
    }

    #[test]
    fn ipv6_default_routes_skip_reject_and_prefixes() {
        let got = parse_ipv6(ROUTE6);
        assert_eq!(got, BTreeSet::from(["wlan0".into()]));
    }

    #[test]
    fn garbage_and_empty_input_are_ignored() {
        assert!(parse_ipv4("").is_empty());
        assert!(parse_ipv4("Iface\nxx yy\neth0 zz 0 0003 0 0 0 00000000").is_empty());
        assert!(parse_ipv6("short line\n").is_empty());
    }

    #[test]
    fn has_any_combines_families() {
        let r = DefaultRoutes {
            v4: parse_ipv4(ROUTE),
            v6: parse_ipv6(ROUTE6),
        };
        assert!(r.has_any("eth0") && r.has_any("wlan0") && r.has_any("wwan0"));
        assert!(!r.has_any("down0") && !r.has_any("rej0") && !r.has_any("lo"));
    }

    #[test]
    fn reads_real_procfs_without_panicking() {
        // Content depends on the host; only check that parsing the live files works.
        let _ = read_default_routes();
    }
}
