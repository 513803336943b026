//! This namespace's interfaces as the shim sees them: a netlink snapshot turned into
//! config-schema's [`IfaceState`] by the same rules the shim's own snapshot uses
//! (`config_schema::sysdns::{address_kind, link_up}`), so `status`, `explain` and
//! `doctor` reach the verdict the shim would.

use std::net::IpAddr;

use config_schema::sysdns::{AddrKind, address_kind, link_up};
use config_schema::{IfName, IfaceState, NetView};

use crate::sys::netlink::{self, Addr, Link, RTN_UNICAST, Route};

/// The main routing table's id.
pub const MAIN_TABLE: u32 = 254;

pub struct Net {
    pub links: Vec<Link>,
    pub addrs: Vec<Addr>,
    pub routes: Vec<Route>,
}

impl Net {
    pub fn read() -> std::io::Result<Net> {
        Ok(Net {
            links: netlink::links()?,
            addrs: netlink::addrs()?,
            routes: netlink::routes()?,
        })
    }

    pub fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }

    pub fn name_of(&self, index: u32) -> String {
        self.links
            .iter()
            .find(|l| l.index == index)
            .map_or_else(|| format!("#{index}"), |l| l.name.clone())
    }

    pub fn addrs_of(&self, index: u32) -> impl Iterator<Item = &Addr> {
        self.addrs.iter().filter(move |a| a.index == index)
    }

    /// What the shim's snapshot would say about `link`.
    pub fn state(&self, link: &Link) -> IfaceState {
        let mut st = IfaceState {
            index: link.index,
            up: link_up(link.flags),
            ..IfaceState::default()
        };
        for a in self.addrs_of(link.index) {
            match address_kind(a.ip, a.scope, a.flags) {
                Some(AddrKind::V4) => st.has_v4 = true,
                Some(AddrKind::V6) => st.has_v6 = true,
                Some(AddrKind::V6LinkLocal) => st.has_v6_link_local = true,
                None => {}
            }
        }
        st
    }

    /// The default route through `index` of one family: the main table's with the
    /// lowest metric, else one of another table (reached by an `ip rule`).
    pub fn default_route(&self, index: u32, v6: bool) -> Option<&Route> {
        let mut c: Vec<&Route> = self
            .routes
            .iter()
            .filter(|r| {
                r.v6 == v6 && r.dst_len == 0 && r.oif == Some(index) && r.rtype == RTN_UNICAST
            })
            .collect();
        c.sort_by_key(|r| (r.table != MAIN_TABLE, r.metric));
        c.first().copied()
    }

    /// The most specific unicast route through `index` that covers `dest`, of any table.
    pub fn route_covering(&self, index: u32, dest: IpAddr) -> Option<&Route> {
        self.routes
            .iter()
            .filter(|r| {
                r.oif == Some(index)
                    && r.rtype == RTN_UNICAST
                    && r.v6 == dest.is_ipv6()
                    && r.dst.is_none_or(|d| prefix_contains(d, r.dst_len, dest))
            })
            .max_by_key(|r| (r.dst_len, r.table == MAIN_TABLE, u32::MAX - r.metric))
    }

    /// The interface whose own subnet (an address's prefix) holds `ip`, with that
    /// prefix, e.g. a DNS server on eth0's LAN.
    pub fn subnet_owner(&self, ip: IpAddr) -> Option<(u32, IpAddr, u8)> {
        self.addrs
            .iter()
            .filter(|a| a.ip.is_ipv6() == ip.is_ipv6() && a.scope != libc::RT_SCOPE_HOST)
            .filter(|a| prefix_contains(a.ip, a.prefix, ip))
            .max_by_key(|a| a.prefix)
            .map(|a| (a.index, network(a.ip, a.prefix), a.prefix))
    }
}

impl NetView for Net {
    fn iface(&self, name: &IfName) -> Option<IfaceState> {
        self.link(name.as_str()).map(|l| self.state(l))
    }

    fn is_local(&self, ip: IpAddr) -> bool {
        self.addrs.iter().any(|a| a.ip == ip)
    }

    /// As the shim's snapshot: only addresses that can be a source (not tentative,
    /// not failed duplicate-address detection).
    fn owns(&self, index: u32, ip: IpAddr) -> bool {
        self.addrs_of(index)
            .any(|a| a.ip == ip && address_kind(a.ip, a.scope, a.flags).is_some())
    }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

fn width(ip: IpAddr) -> u32 {
    if ip.is_ipv6() { 128 } else { 32 }
}

fn mask(ip: IpAddr, len: u8) -> u128 {
    let w = width(ip);
    let len = (len as u32).min(w);
    let all = if w == 128 {
        u128::MAX
    } else {
        (1u128 << w) - 1
    };
    match len {
        0 => 0,
        l if l == w => all,
        l => all & !(all >> l),
    }
}

/// Does `net/len` hold `ip` (same family)?
pub fn prefix_contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    if net.is_ipv6() != ip.is_ipv6() {
        return false;
    }
    let m = mask(net, len);
    bits(net) & m == bits(ip) & m
}

/// The network address of `ip/len`.
pub fn network(ip: IpAddr, len: u8) -> IpAddr {
    let v = bits(ip) & mask(ip, len);
    match ip {
        IpAddr::V4(_) => IpAddr::from((v as u32).to_be_bytes()),
        IpAddr::V6(_) => IpAddr::from(v.to_be_bytes()),
    }
}

/// `net.ipv4.conf.{all,NAME}.rp_filter` (the kernel uses the larger of the two).
pub fn rp_filter(name: &str) -> (Option<u8>, Option<u8>) {
    let read = |n: &str| {
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{n}/rp_filter"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    };
    (read("all"), read(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(prefix_contains(ip("198.51.100.0"), 26, ip("198.51.100.1")));
        assert!(!prefix_contains(
            ip("198.51.100.0"),
            26,
            ip("198.51.100.66")
        ));
        assert!(prefix_contains(ip("0.0.0.0"), 0, ip("203.0.113.10")));
        assert!(prefix_contains(ip("203.0.113.10"), 32, ip("203.0.113.10")));
        assert!(prefix_contains(
            ip("2001:db8:10::"),
            64,
            ip("2001:db8:10::1")
        ));
        assert!(!prefix_contains(
            ip("2001:db8:10::"),
            64,
            ip("2001:db8:20::1")
        ));
        assert!(!prefix_contains(ip("::"), 0, ip("1.2.3.4")));
        assert_eq!(network(ip("198.51.100.66"), 26), ip("198.51.100.64"));
        assert_eq!(network(ip("2001:db8:20::2"), 64), ip("2001:db8:20::"));
        assert_eq!(network(ip("2001:db8:20::2"), 128), ip("2001:db8:20::2"));
    }
}
