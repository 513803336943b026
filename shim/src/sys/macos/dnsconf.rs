//! The per-interface resolver configuration of macOS, as configd publishes it
//! (`dnsinfo`, what `scutil --dns` prints): `/etc/resolv.conf` is only a summary of
//! the primary service there, so a name resolved over one interface must use that
//! interface's own servers.
//!
//! Two sources give the same [`Resolver`] records: the text of `scutil --dns`
//! ([`parse_scutil_dns`]; fixtures in the tests, and what `mifrun` can show), and
//! libSystem's `dns_configuration_copy()` (`ffi::dnsinfo`, for the engine, which must
//! not run a program inside the one it steers). [`DnsConfig::for_interface`] is the
//! mapping both feed.
//!
//! The mapping: mDNSResponder answers a query scoped to an interface from the
//! "scoped" resolvers (the section "DNS configuration (for scoped queries)"), one per
//! interface with DNS servers, flagged `Scoped`; so the servers of interface N are
//! those of the scoped resolver with `if_index : N`. Failing that, a default resolver
//! (no `domain`) with that `if_index`. Supplemental resolvers (a `domain`, such as a
//! VPN's `corp.example`) apply to names in their domain when they carry the same
//! `if_index`. `mdns` resolvers (`.local`, `254.169.in-addr.arpa`) are multicast and
//! have no unicast servers. No match: the interface has no DNS servers of its own,
//! and names resolved over it fail rather than use another interface's.

use std::net::{IpAddr, SocketAddr, SocketAddrV6};

/// One resolver of the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolver {
    /// `domain`: a supplemental resolver for this domain (absent: a default one).
    pub domain: Option<String>,
    pub search: Vec<String>,
    pub nameservers: Vec<SocketAddr>,
    pub if_index: Option<u32>,
    pub if_name: Option<String>,
    /// `flags` contains `Scoped`.
    pub scoped: bool,
    /// `options` (`mdns`, `ndots:2`…).
    pub options: Option<String>,
    pub timeout: Option<u32>,
    /// `order` (the search order among supplemental resolvers; lower first).
    pub order: Option<u32>,
}

impl Resolver {
    pub fn is_mdns(&self) -> bool {
        self.options
            .as_deref()
            .is_some_and(|o| o.split_whitespace().any(|w| w == "mdns"))
    }
}

/// The whole configuration: the default resolvers and the scoped ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsConfig {
    pub resolvers: Vec<Resolver>,
    pub scoped: Vec<Resolver>,
}

/// The servers and search domains for names resolved over one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkDns {
    pub servers: Vec<SocketAddr>,
    pub search: Vec<String>,
    /// Where they came from, for the log and `mifrun`.
    pub source: &'static str,
}

/// Source names for [`LinkDns::source`].
pub const FROM_SCOPED: &str = "the system configuration (scoped resolver)";
pub const FROM_DEFAULT: &str = "the system configuration";
pub const FROM_SUPPLEMENTAL: &str = "the system configuration (per-domain resolver)";

fn name_in(name: &str, domain: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    name == domain || name.ends_with(&format!(".{domain}"))
}

impl DnsConfig {
    /// The servers for `name` (when given) resolved over interface `index`: a
    /// supplemental resolver of that interface whose domain holds the name (the
    /// longest domain, then the lowest `order`), else the interface's scoped
    /// resolver, else its default one. `None`: the interface has none.
    pub fn for_interface(&self, index: u32, name: Option<&str>) -> Option<LinkDns> {
        let on =
            |r: &&Resolver| r.if_index == Some(index) && !r.is_mdns() && !r.nameservers.is_empty();
        if let Some(name) = name {
            let best = self
                .scoped
                .iter()
                .chain(&self.resolvers)
                .filter(on)
                .filter(|r| r.domain.as_deref().is_some_and(|d| name_in(name, d)))
                .max_by_key(|r| {
                    (
                        r.domain.as_deref().map_or(0, str::len),
                        std::cmp::Reverse(r.order.unwrap_or(u32::MAX)),
                    )
                });
            if let Some(r) = best {
                return Some(LinkDns {
                    servers: r.nameservers.clone(),
                    search: r.search.clone(),
                    source: FROM_SUPPLEMENTAL,
                });
            }
        }
        if let Some(r) = self.scoped.iter().filter(on).find(|r| r.domain.is_none()) {
            return Some(LinkDns {
                servers: r.nameservers.clone(),
                search: r.search.clone(),
                source: FROM_SCOPED,
            });
        }
        self.resolvers
            .iter()
            .filter(on)
            .find(|r| r.domain.is_none())
            .map(|r| LinkDns {
                servers: r.nameservers.clone(),
                search: r.search.clone(),
                source: FROM_DEFAULT,
            })
    }
}

/// A nameserver as `scutil --dns` prints it (`192.0.2.1`, `2001:db8::1`,
/// `fe80::1%en0`, whose zone is the resolver's interface), at `port`.
fn nameserver(text: &str, port: u16, if_index: Option<u32>) -> Option<SocketAddr> {
    let (addr, zone) = match text.split_once('%') {
        Some((a, z)) => (a, Some(z)),
        None => (text, None),
    };
    match addr.parse::<IpAddr>().ok()? {
        IpAddr::V6(v6) if v6.is_unicast_link_local() => {
            // The zone names the interface; only the resolver's own index is known here
            // (a numeric zone is taken as it is).
            let scope = zone
                .and_then(|z| z.parse::<u32>().ok())
                .or(if_index)
                .unwrap_or(0);
            Some(SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope)))
        }
        ip => Some(SocketAddr::new(ip, port)),
    }
}

/// Parses the output of `scutil --dns`.
pub fn parse_scutil_dns(text: &str) -> DnsConfig {
    let mut cfg = DnsConfig::default();
    let mut in_scoped = false;
    let mut current: Option<Resolver> = None;
    // Nameservers are resolved once the resolver's port and index are known.
    let mut pending: Vec<String> = Vec::new();
    let mut port = 53u16;
    let finish = |r: Option<Resolver>,
                  pending: &mut Vec<String>,
                  port: &mut u16,
                  scoped: bool,
                  cfg: &mut DnsConfig| {
        if let Some(mut r) = r {
            r.nameservers = pending
                .drain(..)
                .filter_map(|n| nameserver(&n, *port, r.if_index))
                .collect();
            if scoped {
                cfg.scoped.push(r);
            } else {
                cfg.resolvers.push(r);
            }
        }
        pending.clear();
        *port = 53;
    };
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("DNS configuration") {
            finish(current.take(), &mut pending, &mut port, in_scoped, &mut cfg);
            in_scoped = t.contains("scoped");
            continue;
        }
        if t.starts_with("resolver #") {
            finish(current.take(), &mut pending, &mut port, in_scoped, &mut cfg);
            current = Some(Resolver::default());
            continue;
        }
        let Some(r) = current.as_mut() else {
            continue;
        };
        let Some((key, value)) = t.split_once(':') else {
            continue;
        };
        let key = key.trim();
        let value = value.trim();
        // `key[n]` forms: nameserver[0], search domain[1].
        let base = key.split('[').next().unwrap_or(key).trim();
        match base {
            "nameserver" => pending.push(value.to_owned()),
            "search domain" => r.search.push(value.trim_end_matches('.').to_owned()),
            "domain" => r.domain = Some(value.trim_end_matches('.').to_owned()),
            "port" => port = value.parse().unwrap_or(53),
            "if_index" => {
                // `15 (en0)`
                let mut w = value.split_whitespace();
                r.if_index = w.next().and_then(|n| n.parse().ok());
                r.if_name = w
                    .next()
                    .map(|n| n.trim_matches(|c| c == '(' || c == ')').to_owned());
            }
            "flags" => r.scoped = value.split(',').any(|f| f.trim() == "Scoped"),
            "options" => r.options = Some(value.to_owned()),
            "timeout" => r.timeout = value.parse().ok(),
            "order" => r.order = value.parse().ok(),
            _ => {}
        }
    }
    finish(current.take(), &mut pending, &mut port, in_scoped, &mut cfg);
    cfg
}

#[cfg(test)]
mod tests;
