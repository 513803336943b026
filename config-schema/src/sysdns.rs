//! Where the DNS servers of an interface come from, as the shim looks for them, and
//! what an address or link flag means for the decision. Pure: files are read through
//! a closure the caller passes, so the shim (inside a program) and `mifrun` (its
//! `status`, `explain` and `doctor` commands) find the same servers in the same order
//! from the same sources, and count the same addresses.
//!
//! Servers for interface `NAME` (index `N`), the first source that names any:
//!
//! 1. `MIFSHIM_DNS` (`mifrun --dns`);
//! 2. the policy's `[interfaces.NAME] dns`;
//! 3. systemd-networkd's link state `/run/systemd/netif/links/N` (`DNS=`);
//! 4. dhclient's last lease for `NAME` (`/var/lib/dhcp/dhclient.NAME.leases`, then
//!    `/var/lib/dhcp/dhclient.leases`);
//! 5. the non-loopback servers of `/etc/resolv.conf`.
//!
//! When the first two name nothing and systemd-resolved's varlink socket
//! ([`RESOLVED_SOCKET`]) exists, the name is handed to resolved with the interface
//! index instead ([`asks_resolved`]), which uses that link's own servers.

use crate::{IfName, Profile};
use std::net::{IpAddr, SocketAddr};

/// Source name of servers from `MIFSHIM_DNS` / `mifrun --dns`.
pub const FROM_OVERRIDE: &str = "MIFSHIM_DNS";
/// Source name of servers from `[interfaces.NAME] dns`.
pub const FROM_POLICY: &str = "the policy";
/// Source name of servers from systemd-networkd's link state.
pub const FROM_NETWORKD: &str = "systemd-networkd";
/// Source name of servers from a dhclient lease.
pub const FROM_DHCLIENT: &str = "dhclient lease";
/// Source name of servers from `/etc/resolv.conf`.
pub const FROM_RESOLV_CONF: &str = "/etc/resolv.conf";
/// systemd-resolved's varlink socket.
pub const RESOLVED_SOCKET: &str = "/run/systemd/resolve/io.systemd.Resolve";

/// What `/etc/resolv.conf` says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<SocketAddr>,
    pub search: Vec<String>,
    pub ndots: usize,
    pub timeout_s: Option<u32>,
    pub attempts: Option<u32>,
}

pub fn parse_resolv_conf(text: &str) -> ResolvConf {
    let mut rc = ResolvConf {
        ndots: 1,
        ..ResolvConf::default()
    };
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                // `nameserver fe80::1%eth0` carries a zone; keep the address only.
                if let Some(ip) = words
                    .next()
                    .and_then(|w| w.split('%').next()?.parse::<IpAddr>().ok())
                {
                    rc.nameservers.push(SocketAddr::new(ip, 53));
                }
            }
            Some("search") => {
                rc.search = words.map(|w| w.trim_end_matches('.').to_owned()).collect()
            }
            Some("domain") => {
                if let Some(d) = words.next() {
                    rc.search = vec![d.trim_end_matches('.').to_owned()];
                }
            }
            Some("options") => {
                for o in words {
                    if let Some(v) = o.strip_prefix("ndots:") {
                        rc.ndots = v.parse::<usize>().unwrap_or(1).min(15);
                    } else if let Some(v) = o.strip_prefix("timeout:") {
                        rc.timeout_s = v.parse().ok();
                    } else if let Some(v) = o.strip_prefix("attempts:") {
                        rc.attempts = v.parse().ok();
                    }
                }
            }
            _ => {}
        }
    }
    rc
}

/// `DNS=` servers in a systemd-networkd link state file.
pub fn parse_networkd_link(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| l.strip_prefix("DNS="))
        .flat_map(|v| v.split_whitespace())
        .filter_map(|w| w.split('%').next()?.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// `option domain-name-servers a, b;` of the last lease for `iface` in a dhclient
/// leases file.
pub fn parse_dhclient_leases(text: &str, iface: &str) -> Vec<SocketAddr> {
    let mut last = Vec::new();
    for lease in text.split("lease {").skip(1) {
        let body = lease.split('}').next().unwrap_or("");
        let on_iface = body
            .lines()
            .any(|l| l.trim() == format!("interface \"{iface}\";"));
        if !on_iface {
            continue;
        }
        if let Some(l) = body
            .lines()
            .find_map(|l| l.trim().strip_prefix("option domain-name-servers "))
        {
            last = l
                .trim_end_matches(';')
                .split(',')
                .filter_map(|w| w.trim().parse::<IpAddr>().ok())
                .map(|ip| SocketAddr::new(ip, 53))
                .collect();
        }
    }
    last
}

/// The files a network manager leaves per-link servers in, in the order they are
/// consulted, each with the source it stands for.
pub fn link_server_files(index: u32, name: &str) -> [(String, &'static str); 3] {
    [
        (format!("/run/systemd/netif/links/{index}"), FROM_NETWORKD),
        (
            format!("/var/lib/dhcp/dhclient.{name}.leases"),
            FROM_DHCLIENT,
        ),
        ("/var/lib/dhcp/dhclient.leases".to_owned(), FROM_DHCLIENT),
    ]
}

/// Per-link servers left by a network manager for interface `index`/`name` (the
/// first of [`link_server_files`] that names any), with the file they came from;
/// `read` returns a file's text (`None`: unreadable or absent).
pub fn read_link_servers(
    index: u32,
    name: &str,
    mut read: impl FnMut(&str) -> Option<String>,
) -> (Vec<SocketAddr>, &'static str, String) {
    for (path, source) in link_server_files(index, name) {
        let Some(text) = read(&path) else { continue };
        let v = if source == FROM_NETWORKD {
            parse_networkd_link(&text)
        } else {
            parse_dhclient_leases(&text, name)
        };
        if !v.is_empty() {
            return (v, source, path);
        }
    }
    (Vec::new(), "", String::new())
}

/// The DNS servers for interface `name` and where they came from (the module's
/// order). `link` gives the per-link servers (see [`read_link_servers`]); it is only
/// called when neither `overrides` nor the policy name servers.
pub fn servers_for(
    overrides: &[SocketAddr],
    profile: &Profile,
    name: &IfName,
    link: impl FnOnce() -> (Vec<SocketAddr>, &'static str),
    rc: &ResolvConf,
) -> (Vec<SocketAddr>, &'static str) {
    if !overrides.is_empty() {
        return (overrides.to_vec(), FROM_OVERRIDE);
    }
    let v = profile.dns_servers(name);
    if !v.is_empty() {
        return (v.to_vec(), FROM_POLICY);
    }
    let (v, source) = link();
    if !v.is_empty() {
        return (v, source);
    }
    (resolv_conf_servers(rc), FROM_RESOLV_CONF)
}

/// The servers of `/etc/resolv.conf` the shim may ask through an interface: not
/// loopback (a local stub such as 127.0.0.53 would ask over the default link) and not
/// unspecified.
pub fn resolv_conf_servers(rc: &ResolvConf) -> Vec<SocketAddr> {
    rc.nameservers
        .iter()
        .filter(|s| !s.ip().is_loopback() && !s.ip().is_unspecified())
        .copied()
        .collect()
}

/// Whether a name whose servers came from `source` is handed to systemd-resolved
/// (when its socket exists) rather than asked of the servers directly: everything but
/// servers named explicitly (`MIFSHIM_DNS`, the policy).
pub fn asks_resolved(source: &str, resolved_present: bool) -> bool {
    resolved_present && source != FROM_OVERRIDE && source != FROM_POLICY
}

/// What one address of an interface gives it for the decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddrKind {
    /// An IPv4 address (not host-scoped).
    V4,
    /// A global (or site/unique-local) IPv6 address usable as a source.
    V6,
    /// A link-local IPv6 address usable as a source.
    V6LinkLocal,
}

/// rtnetlink's address scopes and flags (`include/uapi/linux/rtnetlink.h`,
/// `include/uapi/linux/if_addr.h`), written out rather than taken from `libc`: they are
/// the values of a wire format, and this crate builds on macOS too, where `libc` has no
/// netlink.
pub mod rtnl {
    pub const RT_SCOPE_UNIVERSE: u8 = 0;
    pub const RT_SCOPE_SITE: u8 = 200;
    pub const RT_SCOPE_LINK: u8 = 253;
    pub const RT_SCOPE_HOST: u8 = 254;
    pub const IFA_F_DADFAILED: u32 = 0x08;
    pub const IFA_F_TENTATIVE: u32 = 0x40;
}

/// What an address dumped by the kernel (`ifa_scope`, `IFA_FLAGS`) counts as, if
/// anything: tentative or failed-DAD IPv6 addresses cannot be a source and count for
/// nothing; neither do host-scoped ones.
pub fn address_kind(ip: IpAddr, scope: u8, flags: u32) -> Option<AddrKind> {
    let unusable = flags & (rtnl::IFA_F_TENTATIVE | rtnl::IFA_F_DADFAILED) != 0;
    match ip {
        IpAddr::V4(_) if scope != rtnl::RT_SCOPE_HOST => Some(AddrKind::V4),
        IpAddr::V4(_) => None,
        IpAddr::V6(_) if unusable => None,
        IpAddr::V6(_) if scope == rtnl::RT_SCOPE_LINK => Some(AddrKind::V6LinkLocal),
        IpAddr::V6(_) if scope == rtnl::RT_SCOPE_UNIVERSE || scope == rtnl::RT_SCOPE_SITE => {
            Some(AddrKind::V6)
        }
        IpAddr::V6(_) => None,
    }
}

/// Whether a link with these `ifi_flags` can carry traffic: administratively up and
/// with carrier (`IFF_UP` and `IFF_RUNNING`).
pub fn link_up(flags: u32) -> bool {
    flags & libc::IFF_UP as u32 != 0 && flags & libc::IFF_RUNNING as u32 != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Policy;

    #[test]
    fn resolv_conf_options() {
        let rc = parse_resolv_conf(
            "# x\nnameserver 198.51.100.1\nnameserver fe80::1%eth0 ; zone\nnameserver bogus\nsearch a.example b.example.\noptions ndots:2 timeout:3 attempts:4 rotate\n",
        );
        assert_eq!(rc.nameservers.len(), 2);
        assert_eq!(rc.nameservers[0].to_string(), "198.51.100.1:53");
        assert_eq!(rc.nameservers[1].ip().to_string(), "fe80::1");
        assert_eq!(rc.search, vec!["a.example", "b.example"]);
        assert_eq!((rc.ndots, rc.timeout_s, rc.attempts), (2, Some(3), Some(4)));
        assert_eq!(parse_resolv_conf("").ndots, 1);
        assert_eq!(
            parse_resolv_conf("domain corp.example\n").search,
            vec!["corp.example"]
        );
    }

    #[test]
    fn networkd_and_dhclient_servers() {
        let n =
            parse_networkd_link("ADMIN_STATE=configured\nDNS=198.51.100.53 2001:db8::53\nNTP=\n");
        assert_eq!(n.len(), 2);
        let leases = "lease {\n  interface \"wlan0\";\n  option domain-name-servers 198.51.100.1, 198.51.100.2;\n}\nlease {\n  interface \"eth0\";\n  option domain-name-servers 192.0.2.1;\n}\nlease {\n  interface \"wlan0\";\n  option domain-name-servers 198.51.100.9;\n}\n";
        let w = parse_dhclient_leases(leases, "wlan0");
        assert_eq!(w, vec!["198.51.100.9:53".parse().unwrap()]);
        assert_eq!(parse_dhclient_leases(leases, "eth0").len(), 1);
        assert!(parse_dhclient_leases(leases, "wwan0").is_empty());
    }

    #[test]
    fn servers_come_from_the_first_source_that_names_any() {
        let wlan0 = IfName::new("wlan0").unwrap();
        let rc = parse_resolv_conf("nameserver 127.0.0.53\nnameserver 198.51.100.1\n");
        let none = Policy::from_via(vec![wlan0]).base;
        let no_link = || (Vec::new(), "");
        let (v, s) = servers_for(&[], &none, &wlan0, no_link, &rc);
        assert_eq!(
            (v, s),
            (vec!["198.51.100.1:53".parse().unwrap()], FROM_RESOLV_CONF)
        );
        let link = || (vec!["198.51.100.9:53".parse().unwrap()], FROM_NETWORKD);
        assert_eq!(servers_for(&[], &none, &wlan0, link, &rc).1, FROM_NETWORKD);
        let loaded = crate::parse_policy(
            "via = [\"wlan0\"]\n[interfaces.wlan0]\ndns = [\"198.51.100.53\"]\n",
            "p.toml",
        )
        .unwrap();
        let with = loaded.policy.base;
        let (v, s) = servers_for(&[], &with, &wlan0, || panic!("not asked"), &rc);
        assert_eq!(
            (v[0].to_string().as_str(), s),
            ("198.51.100.53:53", FROM_POLICY)
        );
        let o = ["203.0.113.53:53".parse().unwrap()];
        assert_eq!(
            servers_for(&o, &with, &wlan0, no_link, &rc).1,
            FROM_OVERRIDE
        );
        assert!(!asks_resolved(FROM_POLICY, true) && !asks_resolved(FROM_OVERRIDE, true));
        assert!(asks_resolved(FROM_RESOLV_CONF, true) && !asks_resolved(FROM_RESOLV_CONF, false));
    }

    #[test]
    fn link_files_in_order() {
        let files = |p: &str| match p {
            "/var/lib/dhcp/dhclient.leases" => Some(
                "lease {\n interface \"wlan0\";\n option domain-name-servers 192.0.2.7;\n}\n"
                    .into(),
            ),
            "/run/systemd/netif/links/3" => Some("DNS=\n".into()),
            _ => None,
        };
        let (v, s, path) = read_link_servers(3, "wlan0", files);
        assert_eq!(v, vec!["192.0.2.7:53".parse().unwrap()]);
        assert_eq!(
            (s, path.as_str()),
            (FROM_DHCLIENT, "/var/lib/dhcp/dhclient.leases")
        );
        assert!(read_link_servers(3, "eth0", files).0.is_empty());
    }

    #[test]
    fn addresses_that_count() {
        let v4: IpAddr = "198.51.100.2".parse().unwrap();
        let v6: IpAddr = "2001:db8::2".parse().unwrap();
        let ll: IpAddr = "fe80::2".parse().unwrap();
        assert_eq!(
            address_kind(v4, rtnl::RT_SCOPE_UNIVERSE, 0),
            Some(AddrKind::V4)
        );
        assert_eq!(address_kind(v4, rtnl::RT_SCOPE_HOST, 0), None);
        assert_eq!(
            address_kind(v6, rtnl::RT_SCOPE_UNIVERSE, 0),
            Some(AddrKind::V6)
        );
        assert_eq!(address_kind(v6, 0, rtnl::IFA_F_TENTATIVE), None);
        assert_eq!(
            address_kind(ll, rtnl::RT_SCOPE_LINK, 0),
            Some(AddrKind::V6LinkLocal)
        );
        assert_eq!(
            address_kind(ll, rtnl::RT_SCOPE_LINK, rtnl::IFA_F_DADFAILED),
            None
        );
        assert!(link_up((libc::IFF_UP | libc::IFF_RUNNING) as u32));
        assert!(!link_up(libc::IFF_UP as u32));
    }

    /// The written-out netlink values are the kernel's (as libc has them on Linux).
    #[cfg(target_os = "linux")]
    #[test]
    fn rtnl_values_are_the_kernels() {
        assert_eq!(rtnl::RT_SCOPE_UNIVERSE, libc::RT_SCOPE_UNIVERSE);
        assert_eq!(rtnl::RT_SCOPE_SITE, libc::RT_SCOPE_SITE);
        assert_eq!(rtnl::RT_SCOPE_LINK, libc::RT_SCOPE_LINK);
        assert_eq!(rtnl::RT_SCOPE_HOST, libc::RT_SCOPE_HOST);
        assert_eq!(rtnl::IFA_F_DADFAILED, libc::IFA_F_DADFAILED);
        assert_eq!(rtnl::IFA_F_TENTATIVE, libc::IFA_F_TENTATIVE);
    }
}
