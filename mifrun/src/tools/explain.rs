//! `mifrun explain DEST [PORT]`: the whole chain for one destination, each step from
//! the code that takes it (config-schema's `decide`/`decide_name`, the kernel's route
//! lookup, the shim's resolver).

use std::net::{IpAddr, SocketAddr};

use config_schema::{
    AddrFamily, Applied, Bind, BlockReason, Decision, DirectReason, ErrnoKind, Flow, IfName,
    OnMarkDenied, Op, Profile, Proto, Rule, SocketOptions, Target, Unusable, Why, applied, decide,
    decide_name, dscp_name, unusable_reason,
};
use serde_json::{Value, json};

use super::probe::{self, eai_name};
use super::{Config, Dns, print_json, server_text, servers_text};
use crate::cli::ExplainArgs;
use crate::net::{Net, network, rp_filter};
use crate::sys::netlink;
use crate::{Fail, fail};

/// Text lines and the JSON object of one explanation.
pub struct Out {
    pub lines: Vec<String>,
    pub json: Value,
    /// The destination would not be reached (blocked, no route, replies dropped…).
    pub broken: bool,
}

impl Out {
    fn line(&mut self, s: impl Into<String>) {
        self.lines.push(s.into());
    }
}

pub fn run(a: &ExplainArgs) -> Result<u8, Fail> {
    let cfg = Config::load(&a.policy)?.require()?;
    let net = Net::read()
        .map_err(|e| fail(format!("cannot read the interfaces (netlink): {e}"), None))?;
    let profile = cfg.profile(a.program.as_deref());
    let proto = if a.udp { Proto::Udp } else { Proto::Tcp };
    let mut out = match a.dest.parse::<IpAddr>() {
        Ok(ip) => address(&cfg, &net, &profile, ip, a.port, proto),
        Err(_) => name(
            &cfg,
            &net,
            &profile,
            &a.dest,
            a.port,
            proto,
            a.program.as_deref(),
        )?,
    };
    out.json["policy"] = json!(cfg.origin);
    out.json["program"] = json!(a.program);
    out.json["profile"] = json!(
        profile
            .section
            .clone()
            .unwrap_or_else(|| "top level".into())
    );
    if a.json {
        print_json(&out.json);
    } else {
        println!("Policy: {}", cfg.origin);
        if let Some(p) = &a.program {
            println!(
                "Program: {p} ({})",
                profile.section.as_deref().map_or(
                    "no [programs] section matches: top level".into(),
                    |s| format!("[{s}]")
                )
            );
        }
        for l in &out.lines {
            println!("{l}");
        }
    }
    Ok(u8::from(out.broken))
}

fn rule_json(r: &Rule) -> Value {
    json!({"label": r.label, "line": r.line})
}

fn rule_text(r: &Rule) -> String {
    if r.line > 0 {
        format!("{} (line {})", r.label, r.line)
    } else {
        r.label.clone()
    }
}

fn fam_name(f: AddrFamily) -> &'static str {
    match f {
        AddrFamily::V4 => "IPv4",
        AddrFamily::V6 => "IPv6",
    }
}

/// The list an interface was chosen from.
fn list_of<'p>(profile: &'p Profile, why: &Why<'p>) -> &'p [IfName] {
    match why {
        Why::Default => &profile.via,
        Why::Rule(r) => match &r.target {
            Target::Via(l) => l,
            _ => &[],
        },
    }
}

/// Why `name` was passed over (for a name: usable with an address of either family).
fn passed_over(net: &Net, name: &IfName, family: Option<AddrFamily>) -> String {
    let r = match family {
        Some(f) => unusable_reason(net, name, f),
        None => match unusable_reason(net, name, AddrFamily::V4) {
            Some(Unusable::NoAddress(_)) => unusable_reason(net, name, AddrFamily::V6)
                .map(|_| Unusable::NoAddress(AddrFamily::V4)),
            other => other,
        },
    };
    match (r, family) {
        (Some(Unusable::NoAddress(_)), None) => "has no address".into(),
        (Some(u), _) => u.to_string(),
        (None, _) => "usable".into(),
    }
}

fn skipped_json(net: &Net, list: &[IfName], n: usize, family: Option<AddrFamily>) -> Vec<Value> {
    list.iter()
        .take(n)
        .map(|i| json!({"interface": i.as_str(), "reason": passed_over(net, i, family)}))
        .collect()
}

/// The decision, route and reply path for one address.
pub fn address(
    cfg: &Config,
    net: &Net,
    profile: &Profile,
    ip: IpAddr,
    port: u16,
    proto: Proto,
) -> Out {
    let flow = Flow {
        proto,
        op: if proto == Proto::Udp {
            Op::Send
        } else {
            Op::Connect
        },
        dest: ip,
        port,
        scope_id: 0,
    };
    let proto_s = if proto == Proto::Udp { "udp" } else { "tcp" };
    let mut out = Out {
        lines: vec![format!("Destination: {ip} port {port}/{proto_s}")],
        json: json!({"destination": ip.to_string(), "port": port, "protocol": proto_s, "options": null}),
        broken: false,
    };
    let d = decide(profile, net, &flow);
    let dest = ip.to_canonical();
    match d {
        Decision::Direct(r) => {
            let (reason, text) = match r {
                DirectReason::Loopback => (
                    "loopback",
                    "exempt: a loopback address (always direct)".to_owned(),
                ),
                DirectReason::OwnAddress => (
                    "own_address",
                    "exempt: an address of this host (always direct)".to_owned(),
                ),
                DirectReason::Unspecified => (
                    "unspecified",
                    "exempt: the unspecified address (this host)".to_owned(),
                ),
                DirectReason::ScopedLinkLocal => (
                    "scoped_link_local",
                    "exempt: link-local with the program's scope".to_owned(),
                ),
                DirectReason::NoVia => (
                    "no_via",
                    "direct: no rule matched and the policy has no `via`".to_owned(),
                ),
                DirectReason::Rule(r) => (
                    "rule",
                    format!("direct: {} says `action = \"direct\"`", rule_text(r)),
                ),
                DirectReason::Unavailable => (
                    "unavailable",
                    "direct: no interface of the list is usable and `on_unavailable = \"direct\"`"
                        .to_owned(),
                ),
                DirectReason::ListenAny => ("listen_any", "direct: listen = \"any\"".to_owned()),
            };
            out.line(format!("Decision: {text}"));
            out.json["decision"] = json!({
                "action": "direct", "reason": reason,
                "rule": match r { DirectReason::Rule(r) => rule_json(r), _ => Value::Null },
            });
            // The routing table decides, unbound.
            match netlink::route_get(dest, None, None, None) {
                Ok(l) => {
                    let dev = l.oif.map(|i| net.name_of(i)).unwrap_or_default();
                    out.line(format!(
                        "Route:    the routing table's: dev {dev}{}{}",
                        l.gateway.map_or(String::new(), |g| format!(" via {g}")),
                        l.prefsrc.map_or(String::new(), |s| format!(" src {s}"))
                    ));
                    out.json["route"] = json!({
                        "interface": dev, "index": l.oif, "gateway": l.gateway.map(|g| g.to_string()),
                        "source": l.prefsrc.map(|s| s.to_string()), "table": l.table, "error": null,
                    });
                }
                Err(e) => {
                    out.line(format!("Route:    the routing table has none: {e}"));
                    out.json["route"] = json!({"error": e.to_string()});
                    out.broken = true;
                }
            }
        }
        Decision::Block(b) => {
            out.broken = true;
            let errno = match b.errno {
                ErrnoKind::Access => "EACCES",
                ErrnoKind::NetUnreach => "ENETUNREACH",
            };
            match b.reason {
                BlockReason::Rule(r) => {
                    out.line(format!("Decision: blocked by {} (`action = \"block\"`): the call fails with {errno}", rule_text(r)));
                    out.json["decision"] = json!({"action": "block", "reason": "rule", "rule": rule_json(r), "errno": errno});
                }
                BlockReason::Unavailable(list) => {
                    out.line(format!(
                        "Decision: blocked: no interface of [{}] can carry {} ({errno}; on_unavailable = \"block\")",
                        list.iter().map(IfName::as_str).collect::<Vec<_>>().join(", "),
                        fam_name(b.family)
                    ));
                    for i in list {
                        out.line(format!("  {i} {}", passed_over(net, i, Some(b.family))));
                    }
                    out.line(format!(
                        "  next step: bring one of them up with an {} address, add an interface to the list, or set on_unavailable = \"direct\"",
                        fam_name(b.family)
                    ));
                    out.json["decision"] = json!({
                        "action": "block", "reason": "unavailable", "rule": null, "errno": errno,
                        "skipped": skipped_json(net, list, list.len(), Some(b.family)),
                    });
                }
            }
        }
        Decision::Bind(b) => {
            let list = list_of(profile, &b.why);
            let why = match b.why {
                Why::Default => "no rule matched: the policy's `via`".to_owned(),
                Why::Rule(r) => format!("{} matched", rule_text(r)),
            };
            out.line(format!(
                "Decision: {why} [{}]",
                list.iter()
                    .map(IfName::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            for i in list.iter().take(b.skipped as usize) {
                out.line(format!(
                    "  {i} skipped: {} (failover)",
                    passed_over(net, i, Some(b.family))
                ));
            }
            out.line(format!(
                "  -> bound to {} (index {}){}",
                b.ifname,
                b.index,
                if b.multicast {
                    ", as the multicast interface"
                } else {
                    ""
                }
            ));
            out.json["decision"] = json!({
                "action": "bind",
                "reason": match b.why { Why::Default => "default", Why::Rule(_) => "rule" },
                "rule": match b.why { Why::Rule(r) => rule_json(r), Why::Default => Value::Null },
                "interface": b.ifname.as_str(), "index": b.index, "family": fam_name(b.family),
                "skipped": skipped_json(net, list, b.skipped as usize, Some(b.family)),
            });
            let opts = applied(profile, net, &b);
            if b.options {
                socket_options(&mut out, cfg, profile, &b, &opts);
            }
            route_through(net, &mut out, dest, b.index, b.ifname.as_str(), opts.source);
        }
    }
    out
}

/// Where each of the options a socket gets comes from: the rule that chose the
/// interface, else the program section, else the top level (each inherits the next).
struct Origin<'a> {
    rule: Option<&'a Rule>,
    /// The program section's name and its own options.
    section: Option<(&'a str, &'a SocketOptions)>,
}

impl Origin<'_> {
    fn of(&self, set_in: impl Fn(&SocketOptions) -> bool) -> String {
        match (self.rule, self.section) {
            (Some(r), _) if set_in(&r.options) => r.label.clone(),
            (_, Some((name, o))) if set_in(o) => format!("[{name}]"),
            _ => "the top level".into(),
        }
    }
}

/// `Options:` — what the shim sets on the socket besides its interface (`source`,
/// `dscp`, `mark`), as config-schema's [`applied`] resolves them on this snapshot (the
/// shim's executor calls the same function), with where each comes from.
fn socket_options(out: &mut Out, cfg: &Config, profile: &Profile, b: &Bind<'_>, o: &Applied) {
    let origin = Origin {
        rule: match b.why {
            Why::Rule(r) => Some(r),
            Why::Default => None,
        },
        section: profile.section.as_deref().and_then(|name| {
            cfg.policy
                .programs
                .iter()
                .find(|p| name.strip_prefix("programs.") == Some(p.key.as_str()))
                .map(|p| (name, &p.options))
        }),
    };
    let v6 = b.family == AddrFamily::V6;
    // (text, where it comes from)
    let mut items: Vec<(String, String)> = Vec::new();
    let source = match (o.source, o.source_missing) {
        (Some(ip), missing) => {
            debug_assert!(missing.is_none());
            let from = origin.of(|o| o.source(v6).is_some());
            items.push((format!("source {ip}"), from.clone()));
            json!({"address": ip.to_string(), "on_interface": true, "from": from})
        }
        (None, Some(ip)) => {
            let from = origin.of(|o| o.source(v6).is_some());
            items.push((
                format!(
                    "source {ip} unused: not an address of {}, the kernel chooses the source, as the shim does with a warning",
                    b.ifname
                ),
                from.clone(),
            ));
            json!({"address": ip.to_string(), "on_interface": false, "from": from})
        }
        (None, None) => Value::Null,
    };
    let dscp = match o.dscp.filter(|d| *d != 0) {
        Some(d) => {
            let from = origin.of(|o| o.dscp.is_some());
            let name = dscp_name(d);
            items.push((
                match name {
                    Some(n) => format!("dscp {n} ({d})"),
                    None => format!("dscp {d}"),
                },
                from.clone(),
            ));
            json!({"value": d, "name": name, "tos": u32::from(d) << 2, "from": from})
        }
        None => Value::Null,
    };
    let mark = match o.mark {
        Some(m) => {
            let from = origin.of(|o| o.mark.is_some());
            items.push((format!("mark {m:#x}"), from.clone()));
            json!({
                "value": m, "hex": format!("{m:#x}"), "from": from,
                "on_denied": match profile.on_mark_denied {
                    OnMarkDenied::Block => "block",
                    OnMarkDenied::Continue => "continue",
                },
            })
        }
        None => Value::Null,
    };
    let text = if items.is_empty() {
        // Configured, but zero (`dscp = 0`, `mark = 0`, over the profile's or alone).
        "nothing set (dscp 0 and mark 0 leave the socket's own)".to_owned()
    } else if items.iter().all(|(_, f)| *f == items[0].1) {
        format!(
            "{}  (from {})",
            items
                .iter()
                .map(|(t, _)| t.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            items[0].1
        )
    } else {
        items
            .iter()
            .map(|(t, f)| format!("{t} (from {f})"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    out.line(format!("Options:  {text}"));
    out.json["options"] = json!({"source": source, "dscp": dscp, "mark": mark});
}

/// The kernel's route through interface `index` and whether replies come back;
/// `source`: the address the socket is bound to (the policy's `source`).
fn route_through(
    net: &Net,
    out: &mut Out,
    dest: IpAddr,
    index: u32,
    ifname: &str,
    source: Option<IpAddr>,
) {
    let covering = net.route_covering(index, dest);
    // A lookup from `source` sees the rules that select by source (`ip rule from`).
    // IPv6 keeps to the given interface only without a source (a socket bound to the
    // device always does; netlink has no such socket): from another interface, ask
    // again without it.
    let l = match netlink::route_get(dest, source, Some(index), None) {
        Ok(l) if source.is_some() && l.oif != Some(index) => {
            netlink::route_get(dest, None, Some(index), None)
        }
        r => r,
    };
    let l = match l {
        Ok(l) => l,
        Err(e) => {
            out.broken = true;
            out.line(format!("Route:    none through {ifname}: {e}"));
            out.line(format!(
                "  next step: add a route through it, e.g. `ip {}route add default via GATEWAY dev {ifname} metric 600`",
                if dest.is_ipv6() { "-6 " } else { "" }
            ));
            out.json["route"] =
                json!({"interface": ifname, "covered": false, "error": e.to_string()});
            return;
        }
    };
    // The bound source is the packets' (the kernel names its own choice even then).
    let src = source.or(l.prefsrc);
    match (covering, l.gateway) {
        (Some(r), g) => out.line(format!(
            "Route:    dev {ifname}{} src {}  ({} {}/{}{})",
            g.map_or(" (on-link)".into(), |g| format!(" via {g}")),
            src.map_or("-".into(), |s| s.to_string()),
            if r.dst_len == 0 {
                "default route"
            } else {
                "route"
            },
            r.dst.map_or_else(
                || if dest.is_ipv6() {
                    "::".into()
                } else {
                    "0.0.0.0".into()
                },
                |d| d.to_string()
            ),
            r.dst_len,
            if r.table != crate::net::MAIN_TABLE {
                format!(", table {}", r.table)
            } else {
                String::new()
            }
        )),
        (None, _) => {
            out.broken = true;
            out.line(format!(
                "Route:    no route through {ifname} covers {dest}: the kernel would send to it as if it were on {ifname}'s link (src {}), which reaches it only if it is",
                src.map_or("-".into(), |s| s.to_string())
            ));
            out.line(format!(
                "  next step: `ip {}route add default via GATEWAY dev {ifname} metric 600` (or a route for {dest} via {ifname})",
                if dest.is_ipv6() { "-6 " } else { "" }
            ));
        }
    }
    out.json["route"] = json!({
        "interface": ifname, "index": index, "covered": covering.is_some(),
        "gateway": l.gateway.map(|g| g.to_string()), "source": src.map(|s| s.to_string()),
        "table": l.table, "error": null,
    });
    // A reply: a packet from `dest` to `src` arriving on the interface, as the kernel
    // would route it (its reverse-path filter refuses it with EXDEV).
    let Some(src) = src else { return };
    let (all, own) = rp_filter(ifname);
    let rp = all.max(own);
    let reply = netlink::route_get(src, Some(dest), None, Some(index));
    let rpj =
        json!({"all": all, "interface": own, "effective": if dest.is_ipv6() { None } else { rp }});
    match reply {
        Ok(_) => {
            out.line(format!(
                "Reply:    accepted on {ifname}{}",
                if dest.is_ipv6() {
                    " (IPv6 has no reverse-path filter in the kernel)".to_owned()
                } else {
                    format!(
                        " (rp_filter {}: {})",
                        rp.unwrap_or(0),
                        match rp.unwrap_or(0) {
                            0 => "off",
                            1 => "strict, and the route back to the sender goes through it",
                            _ => "loose",
                        }
                    )
                }
            ));
            out.json["reply"] = json!({"ok": true, "rp_filter": rpj, "error": null});
        }
        Err(e) => {
            out.broken = true;
            // The kernel calls a reply its reverse-path filter refuses a martian source
            // (EINVAL; EXDEV from some paths).
            let rp_drop = !dest.is_ipv6()
                && rp == Some(1)
                && matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EXDEV));
            if rp_drop {
                let back = netlink::route_get(dest, None, None, None)
                    .ok()
                    .and_then(|l| l.oif)
                    .map(|i| net.name_of(i))
                    .unwrap_or_else(|| "another interface".into());
                out.line(format!(
                    "Reply:    DROPPED: strict reverse-path filtering on {ifname} (net.ipv4.conf.all.rp_filter = {}, net.ipv4.conf.{ifname}.rp_filter = {}; the kernel uses the larger) and the route back to {dest} goes through {back}",
                    all.map_or("?".into(), |v| v.to_string()),
                    own.map_or("?".into(), |v| v.to_string())
                ));
                out.line(format!(
                    "  next step: `sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.{ifname}.rp_filter=2` (loose mode)"
                ));
            } else {
                out.line(format!(
                    "Reply:    the kernel would not accept it on {ifname}: {e}"
                ));
            }
            out.json["reply"] = json!({"ok": false, "rp_filter": rpj, "error": if rp_drop { "rp_filter".to_owned() } else { e.to_string() }});
        }
    }
}

/// Why a server did not answer through `index`, and what to do.
pub fn server_hint(net: &Net, server: SocketAddr, index: u32, ifname: &str) -> String {
    let ip = server.ip();
    let fix = format!(
        "give {ifname} a server it can reach: `mifrun --dns ADDR` or `[interfaces.{ifname}] dns = [\"ADDR\"]` in the policy"
    );
    if let Some((owner, net_addr, len)) = net.subnet_owner(ip)
        && owner != index
    {
        return format!(
            "{} is on {}'s subnet ({}/{len}): asked through {ifname} it is not reachable; {fix}",
            ip,
            net.name_of(owner),
            network(net_addr, len)
        );
    }
    if net.route_covering(index, ip).is_none() {
        return format!("no route through {ifname} reaches {ip}; add one, or {fix}");
    }
    if ip.is_ipv4() && rp_filter(ifname).0.max(rp_filter(ifname).1) == Some(1) {
        let src = netlink::route_get(ip, None, Some(index), None)
            .ok()
            .and_then(|l| l.prefsrc);
        let refused = src.is_some_and(|s| {
            matches!(
                netlink::route_get(s, Some(ip), None, Some(index))
                    .err()
                    .and_then(|e| e.raw_os_error()),
                Some(libc::EINVAL | libc::EXDEV)
            )
        });
        if refused {
            return format!(
                "its replies are dropped by strict reverse-path filtering on {ifname}: `sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.{ifname}.rp_filter=2`"
            );
        }
    }
    format!("no answer through {ifname} (time-out, or the server refused); {fix}")
}

#[allow(clippy::too_many_arguments)]
fn name(
    cfg: &Config,
    net: &Net,
    profile: &Profile,
    host: &str,
    port: u16,
    proto: Proto,
    program: Option<&str>,
) -> Result<Out, Fail> {
    let mut out = Out {
        lines: vec![format!("Name: {host}")],
        json: json!({"name": host, "port": port}),
        broken: false,
    };
    let d = decide_name(profile, net, host);
    let b = match d {
        Decision::Direct(r) => {
            out.line(match r {
                DirectReason::Rule(r) => format!("Decision: left to the C library: {} says `action = \"direct\"`", rule_text(r)),
                _ => "Decision: left to the C library: the policy has no `via` and no name rule matches".into(),
            });
            out.json["decision"] = json!({"action": "direct", "rule": match r { DirectReason::Rule(r) => rule_json(r), _ => Value::Null }});
            None
        }
        Decision::Block(b) => {
            out.broken = true;
            match b.reason {
                BlockReason::Rule(r) => {
                    out.line(format!(
                        "Decision: blocked by {}: the lookup fails with EAI_FAIL",
                        rule_text(r)
                    ));
                    out.json["decision"] = json!({"action": "block", "rule": rule_json(r)});
                }
                BlockReason::Unavailable(list) => {
                    out.line(format!(
                        "Decision: no interface of [{}] is usable: the lookup fails with EAI_AGAIN",
                        list.iter()
                            .map(IfName::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                    for i in list {
                        out.line(format!("  {i} {}", passed_over(net, i, None)));
                    }
                    out.json["decision"] = json!({"action": "block", "rule": null,
                        "skipped": skipped_json(net, list, list.len(), None)});
                }
            }
            None
        }
        Decision::Bind(b) => Some(b),
    };
    if let Some(b) = &b {
        let list = list_of(profile, &b.why);
        let why = match b.why {
            Why::Default => "no name rule matched: the policy's `via`".to_owned(),
            Why::Rule(r) => format!("name {} matched", rule_text(r)),
        };
        out.line(format!(
            "Decision: resolved over the chosen link; {why} [{}]",
            list.iter()
                .map(IfName::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ));
        for i in list.iter().take(b.skipped as usize) {
            out.line(format!(
                "  {i} skipped: {} (failover)",
                passed_over(net, i, None)
            ));
        }
        out.line(format!("  -> {} (index {})", b.ifname, b.index));
        out.json["decision"] = json!({
            "action": "bind",
            "reason": match b.why { Why::Default => "default", Why::Rule(_) => "rule" },
            "rule": match b.why { Why::Rule(r) => rule_json(r), Why::Default => Value::Null },
            "interface": b.ifname.as_str(), "index": b.index,
            "skipped": skipped_json(net, list, b.skipped as usize, None),
        });
        let dns = Dns::find(cfg, profile, &b.ifname, b.index);
        out.line(format!("DNS:      {}", dns.text(b.index)));
        out.json["dns"] = dns.json();
        let mut asked = Vec::new();
        for s in &dns.servers {
            let l = probe::ask_one(b.ifname.as_str(), *s, host)?;
            let ok = l.answered();
            let hint = (!ok).then(|| server_hint(net, *s, b.index, b.ifname.as_str()));
            out.line(format!(
                "  {} over {}: {}",
                server_text(*s),
                b.ifname,
                match &l.answer {
                    Ok(a) => format!(
                        "answered {}",
                        a.iter()
                            .map(IpAddr::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    Err((c, m)) if ok => format!("answered: {m} ({})", eai_name(*c)),
                    Err((c, m)) => format!("NO ANSWER: {m} ({})", eai_name(*c)),
                }
            ));
            if let Some(h) = &hint {
                out.line(format!("    {h}"));
            }
            asked.push(json!({
                "address": s.ip().to_string(), "port": s.port(), "source": dns.source,
                "answered": ok, "lookup": l.json(), "hint": hint,
            }));
        }
        out.json["servers"] = json!(asked);
        let _ = servers_text(&dns.servers);
    }
    // The lookup a program would make, under the shim, with this configuration.
    let l = probe::resolve(cfg, host, program)?;
    out.line("Lookup under the shim (what the program gets):".to_string());
    for m in &l.log {
        out.line(format!("  shim: {m}"));
    }
    out.json["lookup"] = l.json();
    match &l.answer {
        Ok(addrs) => {
            out.line(format!(
                "  -> {}",
                addrs
                    .iter()
                    .map(IpAddr::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            let mut each = Vec::new();
            for ip in addrs.iter().take(4) {
                let a = address(cfg, net, profile, *ip, port, proto);
                out.line(String::new());
                out.lines.extend(a.lines);
                out.broken |= a.broken;
                each.push(a.json);
            }
            out.json["addresses"] = json!(each);
        }
        Err((code, msg)) => {
            out.broken = true;
            out.line(format!("  -> failed: {msg} ({})", eai_name(*code)));
            if let Some(b) = &b
                && *code == libc::EAI_AGAIN
            {
                out.line(format!(
                    "  next step: no server answered over {}; set one it can reach with `mifrun --dns ADDR` or `[interfaces.{}] dns = [\"ADDR\"]`",
                    b.ifname, b.ifname
                ));
            }
        }
    }
    Ok(out)
}
