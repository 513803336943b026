//! `mifrun doctor`: checks, each with a verdict and a fix.

use std::net::IpAddr;

use config_schema::{AddrFamily, IfName, unusable_reason};
use serde_json::{Value, json};

use super::{Config, Dns, print_json, probe, resolv_conf, server_text};
use crate::cli::DoctorArgs;
use crate::net::{Net, rp_filter};
use crate::sys::netlink;
use crate::{Fail, fail};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Ok,
    Info,
    Warn,
    Fail,
}

impl Verdict {
    fn word(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Info => "info",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        }
    }
}

struct Check {
    name: &'static str,
    iface: Option<String>,
    verdict: Verdict,
    detail: String,
    fix: Option<String>,
}

#[derive(Default)]
struct Checks(Vec<Check>);

impl Checks {
    fn add(
        &mut self,
        name: &'static str,
        iface: Option<&str>,
        verdict: Verdict,
        detail: impl Into<String>,
        fix: Option<String>,
    ) {
        self.0.push(Check {
            name,
            iface: iface.map(str::to_owned),
            verdict,
            detail: detail.into(),
            fix,
        });
    }
}

/// A remote address no interface is on (TEST-NET-1): a reply from it must pass the
/// reverse-path filter by the routing table, as a reply from the Internet would.
const REMOTE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

pub fn run(a: &DoctorArgs) -> Result<u8, Fail> {
    let cfg = Config::load(&a.policy)?;
    let net = Net::read()
        .map_err(|e| fail(format!("cannot read the interfaces (netlink): {e}"), None))?;
    let profile = cfg.profile(None);
    let names: Vec<IfName> = if cfg.found {
        cfg.policy.interface_names()
    } else {
        net.links
            .iter()
            .filter(|l| {
                l.flags & libc::IFF_LOOPBACK as u32 == 0 && l.flags & libc::IFF_UP as u32 != 0
            })
            .filter_map(|l| IfName::new(&l.name).ok())
            .collect()
    };
    let rc = resolv_conf();
    let query = a
        .name
        .clone()
        .or_else(|| rc.search.first().cloned())
        .unwrap_or_else(|| "example.org".into());
    let mut c = Checks::default();
    match crate::find_library() {
        Ok(l) => c.add(
            "library",
            None,
            Verdict::Ok,
            format!("{} (and its engine beside it)", l.display()),
            None,
        ),
        Err(f) => c.add("library", None, Verdict::Fail, f.message, f.hint),
    }
    for name in &names {
        interface(&mut c, &cfg, &profile, &net, name, &query)?;
    }
    system(&mut c, &rc);
    let failed = c.0.iter().any(|x| x.verdict == Verdict::Fail);
    if a.json {
        print_json(&json!({
            "policy": cfg.origin,
            "query_name": query,
            "ok": !failed,
            "checks": c.0.iter().map(|x| json!({
                "check": x.name, "interface": x.iface, "verdict": x.verdict.word().to_ascii_lowercase(),
                "detail": x.detail, "fix": x.fix,
            })).collect::<Vec<Value>>(),
        }));
    } else {
        println!("Policy: {}", cfg.origin);
        for x in &c.0 {
            let what = match &x.iface {
                Some(i) => format!("{} {i}", x.name),
                None => x.name.to_owned(),
            };
            println!("[{:>4}] {what}: {}", x.verdict.word(), x.detail);
            if let Some(f) = &x.fix {
                println!("       fix: {f}");
            }
        }
        let n = |v| c.0.iter().filter(|x| x.verdict == v).count();
        println!(
            "{} checks: {} ok, {} warnings, {} failed",
            c.0.len(),
            n(Verdict::Ok),
            n(Verdict::Warn),
            n(Verdict::Fail)
        );
    }
    Ok(u8::from(failed))
}

fn interface(
    c: &mut Checks,
    cfg: &Config,
    profile: &config_schema::Profile,
    net: &Net,
    name: &IfName,
    query: &str,
) -> Result<(), Fail> {
    let n = name.as_str();
    let Some(link) = net.link(n) else {
        c.add(
            "interface",
            Some(n),
            Verdict::Fail,
            "does not exist",
            Some("check `ip link`; a hot-plugged link: run with --allow-missing".into()),
        );
        return Ok(());
    };
    let v4 = unusable_reason(net, name, AddrFamily::V4);
    let v6 = unusable_reason(net, name, AddrFamily::V6);
    let say = |r: Option<config_schema::Unusable>| {
        r.map_or("usable".to_owned(), |u| format!("not usable ({n} {u})"))
    };
    let verdict = match (v4, v6) {
        (None, None) => Verdict::Ok,
        (Some(_), Some(_)) => Verdict::Fail,
        _ => Verdict::Info,
    };
    c.add(
        "interface",
        Some(n),
        verdict,
        format!("index {}; IPv4 {}; IPv6 {}", link.index, say(v4), say(v6)),
        (verdict == Verdict::Fail).then(|| {
            format!(
                "`ip link set {n} up` and give it an address (DHCP, `ip addr add ADDR/LEN dev {n}`)"
            )
        }),
    );
    for (v6f, r) in [(false, v4), (true, v6)] {
        if r.is_some() {
            continue;
        }
        let fam = if v6f { "IPv6" } else { "IPv4" };
        match net.default_route(link.index, v6f) {
            Some(rt) => {
                c.add(
                    "route",
                    Some(n),
                    Verdict::Ok,
                    format!(
                        "{fam} default route{} metric {}{}",
                        rt.gateway.map_or(String::new(), |g| format!(" via {g}")),
                        rt.metric,
                        if rt.table != crate::net::MAIN_TABLE { format!(" (table {})", rt.table) } else { String::new() }
                    ),
                    None,
                );
                socketless_replies(c, net, link.index, n, v6f, rt.gateway);
            }
            None => c.add(
                "route",
                Some(n),
                Verdict::Warn,
                format!("no {fam} default route through {n}: sockets bound to it reach only its own networks"),
                Some(format!("`ip {}route add default via GATEWAY dev {n} metric 600` (a higher metric than the main link's), or an `ip rule`", if v6f { "-6 " } else { "" })),
            ),
        }
    }
    if v4.is_none() {
        let (all, own) = rp_filter(n);
        let eff = all.max(own).unwrap_or(0);
        let src = net
            .addrs_of(link.index)
            .find(|a| a.ip.is_ipv4() && a.scope != libc::RT_SCOPE_HOST)
            .map(|a| a.ip);
        // The kernel's own verdict on a reply from REMOTE arriving on the interface: a
        // reverse-path refusal is a martian source (EINVAL; EXDEV from some paths).
        let dropped = eff == 1
            && src.is_some_and(|s| {
                matches!(
                    netlink::route_get(s, Some(REMOTE), None, Some(link.index))
                        .err()
                        .and_then(|e| e.raw_os_error()),
                    Some(libc::EINVAL | libc::EXDEV)
                )
            });
        let detail = format!(
            "net.ipv4.conf.all.rp_filter = {}, net.ipv4.conf.{n}.rp_filter = {} (effective {eff})",
            all.map_or("?".into(), |v| v.to_string()),
            own.map_or("?".into(), |v| v.to_string())
        );
        if dropped {
            c.add(
                "rp_filter",
                Some(n),
                Verdict::Fail,
                format!("{detail}: strict, and the route back to the Internet is not through {n}: the kernel drops the replies to sockets bound to it (checked: a reply from {REMOTE} arriving on {n} is refused)"),
                Some(format!("`sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.{n}.rp_filter=2` (loose), persistently in /etc/sysctl.d/")),
            );
        } else {
            c.add(
                "rp_filter",
                Some(n),
                Verdict::Ok,
                format!("{detail}: replies arriving on {n} are accepted"),
                None,
            );
        }
    }
    let dns = Dns::find(cfg, profile, name, link.index);
    if dns.via_resolved {
        c.add(
            "dns",
            Some(n),
            Verdict::Info,
            format!(
                "names go to systemd-resolved with link {} ({n}), which asks that link's servers",
                link.index
            ),
            None,
        );
    }
    if dns.servers.is_empty() {
        c.add(
            "dns",
            Some(n),
            if dns.via_resolved {
                Verdict::Warn
            } else {
                Verdict::Fail
            },
            format!(
                "no DNS server known for {n} ({} lists only loopback servers)",
                dns.source
            ),
            Some(format!(
                "`mifrun --dns ADDR` or `[interfaces.{n}] dns = [\"ADDR\"]` in the policy"
            )),
        );
    }
    if v4.is_some() && v6.is_some() {
        return Ok(());
    }
    for s in &dns.servers {
        let l = probe::ask_one(n, *s, query)?;
        if l.answered() {
            c.add(
                "dns",
                Some(n),
                Verdict::Ok,
                format!(
                    "{} (from {}) answered `{query}` over {n}",
                    server_text(*s),
                    dns.source
                ),
                None,
            );
        } else {
            let msg = match &l.answer {
                Err((code, m)) => format!("{m} ({})", probe::eai_name(*code)),
                Ok(_) => String::new(),
            };
            c.add(
                "dns",
                Some(n),
                Verdict::Fail,
                format!(
                    "{} (from {}) gave no answer to `{query}` over {n}: {msg}",
                    server_text(*s),
                    dns.source
                ),
                Some(super::explain::server_hint(net, *s, link.index, n)),
            );
        }
    }
    Ok(())
}

/// A remote IPv6 address no interface is on (the documentation prefix's far end).
const REMOTE6: IpAddr = IpAddr::V6(std::net::Ipv6Addr::new(
    0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1,
));

/// Where the kernel's own answers from the interface's address go: an ICMP port
/// unreachable for a late reply, a TCP RST, IPv6's TIME_WAIT ACK belong to no socket,
/// so no device binding steers them; the route for a packet *from* the address (no
/// device) does — the main table's unless a source rule says otherwise.
fn socketless_replies(
    c: &mut Checks,
    net: &Net,
    index: u32,
    n: &str,
    v6: bool,
    gateway: Option<IpAddr>,
) {
    let Some(src) = net
        .addrs_of(index)
        .find(|a| a.ip.is_ipv6() == v6 && a.scope == libc::RT_SCOPE_UNIVERSE)
        .map(|a| a.ip)
    else {
        return;
    };
    let remote = if v6 { REMOTE6 } else { REMOTE };
    let Ok(l) = netlink::route_get(remote, Some(src), None, None) else {
        return;
    };
    if l.oif == Some(index) {
        c.add(
            "kernel replies",
            Some(n),
            Verdict::Ok,
            format!(
                "the kernel's own answers from {src} (ICMP errors, RSTs) leave by {n} (table {})",
                l.table
            ),
            None,
        );
        return;
    }
    let out = l
        .oif
        .and_then(|o| net.links.iter().find(|k| k.index == o))
        .map_or_else(|| "no interface".to_owned(), |k| k.name.clone());
    let ip = if v6 { "ip -6" } else { "ip" };
    c.add(
        "kernel replies",
        Some(n),
        Verdict::Warn,
        format!(
            "the kernel's own answers from {src} — ICMP port unreachable for a late reply, TCP RSTs{} — belong to no socket and leave by {out} (the main table's route), not {n}",
            if v6 { ", the TIME_WAIT ACK" } else { "" }
        ),
        Some(format!(
            "`mifrun source-rules --via {n} --apply` (root): it adds `{ip} rule add from {src} table {t}` and copies {n}'s routes{} into table {t}, behind them an unreachable default; run it again when the address or gateway changes, or put the same rule in the network configuration",
            gateway.map_or(String::new(), |g| format!(" (default via {g})")),
            t = super::source_rules::table_of(index),
        )),
    );
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

fn system(c: &mut Checks, rc: &config_schema::sysdns::ResolvConf) {
    if super::resolved_present() {
        c.add(
            "systemd-resolved",
            None,
            Verdict::Ok,
            "present: names the policy gives no servers for go to it with the link's index",
            None,
        );
    } else {
        let stub_only =
            !rc.nameservers.is_empty() && rc.nameservers.iter().all(|s| s.ip().is_loopback());
        c.add(
            "systemd-resolved",
            None,
            if stub_only { Verdict::Warn } else { Verdict::Info },
            if stub_only {
                "not running, and /etc/resolv.conf names only loopback servers: the shim has no server to ask through an interface".to_owned()
            } else {
                "not running: names go to the per-link servers (networkd, dhclient) or /etc/resolv.conf's, asked through the interface".to_owned()
            },
            stub_only.then(|| "give each interface its servers: `[interfaces.NAME] dns` or `mifrun --dns`".into()),
        );
    }
    let v = crate::sys::glibc_version();
    let mut it = v.split('.').map(|x| x.parse::<u32>().unwrap_or(0));
    let (maj, min) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    c.add(
        "glibc",
        None,
        if (maj, min) >= (2, 17) { Verdict::Ok } else { Verdict::Warn },
        if (maj, min) >= (2, 34) {
            format!("{v}: its resolver makes sockets no preload sees; the shim answers names at getaddrinfo and the res_* calls instead")
        } else {
            v.to_string()
        },
        None,
    );
    // What a supervisor (seccomp user notification + ptrace/pidfd_getfd) needs.
    let actions = read("/proc/sys/kernel/seccomp/actions_avail").unwrap_or_default();
    let status = read("/proc/self/status").unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().to_owned())
    };
    let mode = field("Seccomp:").unwrap_or_else(|| "?".into());
    let nnp = field("NoNewPrivs:").unwrap_or_else(|| "?".into());
    if actions.split_whitespace().any(|a| a == "user_notif") {
        c.add(
            "seccomp",
            None,
            if mode == "2" { Verdict::Info } else { Verdict::Ok },
            format!("user notification available (actions: {actions}); this process: Seccomp {mode}{}, NoNewPrivs {nnp}", if mode == "2" { " (already filtered, e.g. a container: a supervisor's filter stacks on it)" } else { "" }),
            None,
        );
    } else {
        c.add(
            "seccomp",
            None,
            Verdict::Warn,
            format!(
                "no seccomp user notification here (actions: {})",
                if actions.is_empty() {
                    "unknown"
                } else {
                    &actions
                }
            ),
            Some("a supervisor needs Linux >= 5.0 with CONFIG_SECCOMP_FILTER".into()),
        );
    }
    match read("/proc/sys/kernel/yama/ptrace_scope").as_deref() {
        None => c.add(
            "ptrace",
            None,
            Verdict::Ok,
            "Yama is not active: ptrace is limited by the usual permissions only",
            None,
        ),
        Some(s @ ("0" | "1")) => c.add(
            "ptrace",
            None,
            Verdict::Ok,
            format!("Yama ptrace_scope {s}: a supervisor that starts the program may trace it"),
            None,
        ),
        Some("2") => c.add(
            "ptrace",
            None,
            Verdict::Warn,
            "Yama ptrace_scope 2: only CAP_SYS_PTRACE may trace",
            Some(
                "run the supervisor with CAP_SYS_PTRACE, or `sysctl -w kernel.yama.ptrace_scope=1`"
                    .into(),
            ),
        ),
        Some(s) => c.add(
            "ptrace",
            None,
            Verdict::Warn,
            format!("Yama ptrace_scope {s}: no process may trace another"),
            Some("kernel.yama.ptrace_scope=3 cannot be lowered without a reboot".into()),
        ),
    }
    let max = read("/proc/sys/user/max_user_namespaces").and_then(|s| s.parse::<u64>().ok());
    let clone = read("/proc/sys/kernel/unprivileged_userns_clone");
    let apparmor = read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
    let refused =
        max == Some(0) || clone.as_deref() == Some("0") || apparmor.as_deref() == Some("1");
    c.add(
        "user namespaces",
        None,
        if refused { Verdict::Warn } else { Verdict::Ok },
        format!(
            "max_user_namespaces {}{}{}",
            max.map_or("?".into(), |m| m.to_string()),
            clone.map_or(String::new(), |v| format!(", unprivileged_userns_clone {v}")),
            apparmor.map_or(String::new(), |v| format!(", apparmor_restrict_unprivileged_userns {v}"))
        ),
        refused.then(|| "unprivileged user namespaces are refused: a supervisor (and scripts/test.sh as a normal user) needs them, or root".into()),
    );
}
