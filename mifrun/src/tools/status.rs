//! `mifrun status`: every interface, as `ip addr` and `resolvectl` would show it, and
//! the shim's verdict on it.

use std::fmt::Write as _;
use std::net::IpAddr;

use config_schema::{AddrFamily, IfName, unusable_reason};
use serde_json::{Value, json};

use super::{Config, Dns, print_json};
use crate::cli::StatusArgs;
use crate::net::{MAIN_TABLE, Net};
use crate::sys::netlink::{self, Link, Route};
use crate::{Fail, fail};

pub fn run(a: &StatusArgs) -> Result<u8, Fail> {
    let cfg = Config::load(&a.policy)?;
    let net = Net::read()
        .map_err(|e| fail(format!("cannot read the interfaces (netlink): {e}"), None))?;
    let profile = cfg.profile(None);
    let mut rows = Vec::new();
    for link in &net.links {
        rows.push(row(&cfg, &profile, &net, link, a.to));
    }
    let resolved = super::resolved_present();
    if a.json {
        print_json(&json!({
            "policy": cfg.origin,
            "via": profile.via.iter().map(IfName::as_str).collect::<Vec<_>>(),
            "systemd_resolved": resolved,
            "interfaces": rows.iter().map(|r| r.json.clone()).collect::<Vec<_>>(),
        }));
        return Ok(0);
    }
    println!("Policy: {}", cfg.origin);
    if !profile.via.is_empty() {
        println!(
            "  via: {}",
            profile
                .via
                .iter()
                .map(IfName::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!(
        "systemd-resolved: {}",
        if resolved {
            "present (names go to it with the link's index unless --dns or the policy names servers)"
        } else {
            "not running here (names go to the servers below, asked through the interface)"
        }
    );
    for r in rows {
        println!();
        print!("{}", r.text);
    }
    Ok(0)
}

struct Row {
    json: Value,
    text: String,
}

fn state_word(link: &Link) -> &'static str {
    if link.flags & libc::IFF_UP as u32 == 0 {
        "down"
    } else if link.flags & libc::IFF_RUNNING as u32 == 0 {
        "up, no carrier"
    } else {
        "up"
    }
}

fn operstate(o: u8) -> &'static str {
    match o {
        1 => "notpresent",
        2 => "down",
        3 => "lowerlayerdown",
        4 => "testing",
        5 => "dormant",
        6 => "up",
        _ => "unknown",
    }
}

fn route_json(r: Option<&Route>) -> Value {
    match r {
        None => Value::Null,
        Some(r) => json!({
            "gateway": r.gateway.map(|g| g.to_string()),
            "metric": r.metric,
            "table": r.table,
        }),
    }
}

fn route_text(r: Option<&Route>) -> String {
    match r {
        None => "no default route".into(),
        Some(r) => {
            let mut s = match r.gateway {
                Some(g) => format!("default via {g}"),
                None => "default (on-link)".into(),
            };
            let _ = write!(s, " metric {}", r.metric);
            if r.table != MAIN_TABLE {
                let _ = write!(s, " table {}", r.table);
            }
            s
        }
    }
}

fn row(
    cfg: &Config,
    profile: &config_schema::Profile,
    net: &Net,
    link: &Link,
    to: Option<IpAddr>,
) -> Row {
    let loopback = link.flags & libc::IFF_LOOPBACK as u32 != 0;
    let name = IfName::new(&link.name).ok();
    let mut fam_json = serde_json::Map::new();
    let mut text = format!(
        "{}: {}  {} (carrier {}, operstate {}, mtu {})\n",
        link.index,
        link.name,
        state_word(link),
        match link.carrier {
            Some(true) => "yes",
            Some(false) => "no",
            None => "unknown",
        },
        operstate(link.operstate),
        link.mtu
    );
    for (key, v6, fam) in [
        ("ipv4", false, AddrFamily::V4),
        ("ipv6", true, AddrFamily::V6),
    ] {
        let addrs: Vec<String> = net
            .addrs_of(link.index)
            .filter(|a| a.ip.is_ipv6() == v6)
            .map(|a| {
                let mut s = format!("{}/{}", a.ip, a.prefix);
                if a.flags & libc::IFA_F_TENTATIVE != 0 {
                    s.push_str(" tentative");
                }
                if a.flags & libc::IFA_F_DADFAILED != 0 {
                    s.push_str(" dadfailed");
                }
                s
            })
            .collect();
        let default = net.default_route(link.index, v6);
        let reason = name.as_ref().and_then(|n| unusable_reason(net, n, fam));
        let (usable, why) = match (loopback, reason) {
            (true, _) => (false, "loopback: always direct, never chosen".to_owned()),
            (false, Some(r)) => (false, format!("{} {r}", link.name)),
            (false, None) if default.is_none() => (
                true,
                format!(
                    "usable, but without a default route it reaches only its own networks: `ip {}route add default via GATEWAY dev {} metric 600`",
                    if v6 { "-6 " } else { "" },
                    link.name
                ),
            ),
            (false, None) => (true, "usable".to_owned()),
        };
        let mut fj = json!({
            "addresses": addrs,
            "default_route": route_json(default),
            "usable": usable,
            "verdict": why,
        });
        let _ = writeln!(
            text,
            "    {}  {}",
            if v6 { "IPv6" } else { "IPv4" },
            if addrs.is_empty() {
                "-".to_owned()
            } else {
                addrs.join(" ")
            }
        );
        let _ = writeln!(text, "          route: {}", route_text(default));
        let _ = writeln!(
            text,
            "          shim: {}",
            if usable && why == "usable" {
                format!("usable for {}", if v6 { "IPv6" } else { "IPv4" })
            } else {
                why.clone()
            }
        );
        if let Some(dest) = to.filter(|d| d.is_ipv6() == v6)
            && !loopback
        {
            let covering = net.route_covering(link.index, dest);
            let lookup = netlink::route_get(dest, None, Some(link.index), None);
            let (j, t) = match (&lookup, covering) {
                (Ok(l), Some(_)) => (
                    json!({"destination": dest.to_string(), "route": true,
                           "gateway": l.gateway.map(|g| g.to_string()),
                           "source": l.prefsrc.map(|s| s.to_string()), "error": null}),
                    format!(
                        "to {dest}: {}src {}",
                        l.gateway
                            .map_or("on-link, ".into(), |g| format!("via {g}, ")),
                        l.prefsrc.map_or("-".into(), |s| s.to_string())
                    ),
                ),
                (Ok(l), None) => (
                    json!({"destination": dest.to_string(), "route": false,
                           "gateway": null, "source": l.prefsrc.map(|s| s.to_string()),
                           "error": "no route through this interface covers it"}),
                    format!(
                        "to {dest}: no route through {} covers it (the kernel would assume it on-link)",
                        link.name
                    ),
                ),
                (Err(e), _) => (
                    json!({"destination": dest.to_string(), "route": false,
                           "gateway": null, "source": null, "error": e.to_string()}),
                    format!("to {dest}: {e}"),
                ),
            };
            fj["route_to"] = j;
            let _ = writeln!(text, "          {t}");
        }
        fam_json.insert(key.into(), fj);
    }
    let dns = name
        .as_ref()
        .filter(|_| !loopback)
        .map(|n| Dns::find(cfg, profile, n, link.index));
    if let Some(d) = &dns {
        let _ = writeln!(text, "    DNS   {}", d.text(link.index));
    }
    let mut j = json!({
        "index": link.index,
        "name": link.name,
        "state": state_word(link),
        "admin_up": link.flags & libc::IFF_UP as u32 != 0,
        "carrier": link.carrier,
        "running": link.flags & libc::IFF_RUNNING as u32 != 0,
        "operstate": operstate(link.operstate),
        "loopback": loopback,
        "mtu": link.mtu,
        "dns": dns.as_ref().map(Dns::json),
    });
    for (k, v) in fam_json {
        j[k] = v;
    }
    Row { json: j, text }
}
