//! Table-driven tests of the decision.

use super::*;
use crate::{Policy, parse_policy};
use std::net::{Ipv4Addr, Ipv6Addr};

/// A fake host: eth0 (default route), wlan0 (v4 + v6), wwan0 (v4 only), tun0 down.
struct Host {
    ifaces: Vec<(&'static str, IfaceState)>,
    local: Vec<IpAddr>,
}

fn host() -> Host {
    let st = |index, up, has_v4, has_v6| IfaceState {
        index,
        up,
        has_v4,
        has_v6,
        has_v6_link_local: up,
    };
    Host {
        ifaces: vec![
            ("eth0", st(2, true, true, true)),
            ("wlan0", st(3, true, true, true)),
            ("wwan0", st(4, true, true, false)),
            ("tun0", st(5, false, true, true)),
        ],
        local: vec![
            "198.51.100.2".parse().unwrap(),
            "198.51.100.66".parse().unwrap(),
            "2001:db8:10::2".parse().unwrap(),
        ],
    }
}

impl NetView for Host {
    fn iface(&self, name: &IfName) -> Option<IfaceState> {
        self.ifaces
            .iter()
            .find(|(n, _)| *n == name.as_str())
            .map(|(_, s)| *s)
    }
    fn is_local(&self, ip: IpAddr) -> bool {
        self.local.contains(&ip)
    }
}

fn policy(src: &str) -> Policy {
    parse_policy(src, "t.toml")
        .unwrap_or_else(|e| panic!("{e:?}"))
        .policy
}

fn flow(proto: Proto, op: Op, dest: &str, port: u16) -> Flow {
    Flow {
        proto,
        op,
        dest: dest.parse().unwrap(),
        port,
        scope_id: 0,
    }
}

/// A compact rendering of a decision, so tables stay readable.
fn show(d: &Decision<'_>) -> String {
    match d {
        Decision::Bind(b) => {
            let why = match b.why {
                Why::Default => "default".to_string(),
                Why::Rule(r) => r.label.clone(),
            };
            let fam = if b.family == AddrFamily::V4 {
                "v4"
            } else {
                "v6"
            };
            let mc = if b.multicast { " multicast" } else { "" };
            format!(
                "bind {}#{} {fam}{mc} ({why}, skipped {})",
                b.ifname, b.index, b.skipped
            )
        }
        Decision::Direct(r) => match r {
            DirectReason::Rule(rule) => format!("direct ({})", rule.label),
            other => format!("direct {other:?}"),
        },
        Decision::Block(b) => {
            let why = match b.reason {
                BlockReason::Rule(r) => r.label.clone(),
                BlockReason::Unavailable(list) => {
                    format!(
                        "unavailable {}",
                        list.iter()
                            .map(|n| n.to_string())
                            .collect::<Vec<_>>()
                            .join(",")
                    )
                }
            };
            format!("block {:?} ({why})", b.errno)
        }
    }
}

use Op::*;
use Proto::*;

#[test]
fn via_only_policy_table() {
    let p = policy("via = [\"wlan0\"]");
    let prof = p.profile_for("/usr/bin/curl", "curl");
    let h = host();
    let cases: &[(Proto, Op, &str, u16, &str)] = &[
        (
            Tcp,
            Connect,
            "203.0.113.10",
            80,
            "bind wlan0#3 v4 (default, skipped 0)",
        ),
        (
            Tcp,
            Connect,
            "2001:db8:ff::10",
            80,
            "bind wlan0#3 v6 (default, skipped 0)",
        ),
        (
            Udp,
            Send,
            "203.0.113.10",
            53,
            "bind wlan0#3 v4 (default, skipped 0)",
        ),
        // IPv4-mapped destinations need IPv4 on the interface and are matched as IPv4.
        (
            Tcp,
            Connect,
            "::ffff:203.0.113.10",
            80,
            "bind wlan0#3 v4 (default, skipped 0)",
        ),
        (Tcp, Connect, "127.0.0.1", 80, "direct Loopback"),
        (Tcp, Connect, "127.255.0.9", 80, "direct Loopback"),
        (Tcp, Connect, "::1", 80, "direct Loopback"),
        (Tcp, Connect, "::ffff:127.0.0.1", 80, "direct Loopback"),
        (Tcp, Connect, "0.0.0.0", 80, "direct Unspecified"),
        (Tcp, Connect, "::", 80, "direct Unspecified"),
        (Tcp, Connect, "198.51.100.2", 80, "direct OwnAddress"),
        (Tcp, Connect, "::ffff:198.51.100.2", 80, "direct OwnAddress"),
        (Tcp, Connect, "2001:db8:10::2", 80, "direct OwnAddress"),
        (
            Udp,
            Send,
            "239.1.2.3",
            9999,
            "bind wlan0#3 v4 multicast (default, skipped 0)",
        ),
        (
            Udp,
            Send,
            "ff05::1:3",
            9999,
            "bind wlan0#3 v6 multicast (default, skipped 0)",
        ),
        (
            Udp,
            Join,
            "239.1.2.3",
            0,
            "bind wlan0#3 v4 multicast (default, skipped 0)",
        ),
        (
            Other,
            Send,
            "203.0.113.10",
            0,
            "bind wlan0#3 v4 (default, skipped 0)",
        ),
        (
            Tcp,
            Listen,
            "0.0.0.0",
            8080,
            "bind wlan0#3 v4 (default, skipped 0)",
        ),
        (
            Tcp,
            Listen,
            "::",
            8080,
            "bind wlan0#3 v6 (default, skipped 0)",
        ),
    ];
    for (proto, op, dest, port, want) in cases {
        let got = show(&decide(&prof, &h, &flow(*proto, *op, dest, *port)));
        assert_eq!(&got, want, "{proto:?} {op:?} {dest}:{port}");
    }
}

#[test]
fn scoped_link_local_is_left_to_the_program() {
    let p = policy("via = [\"wlan0\"]");
    let mut f = flow(Tcp, Connect, "fe80::1", 22);
    assert_eq!(
        show(&decide(&p.base, &host(), &f)),
        "bind wlan0#3 v6 (default, skipped 0)"
    );
    f.scope_id = 2;
    assert_eq!(
        show(&decide(&p.base, &host(), &f)),
        "direct ScopedLinkLocal"
    );
}

#[test]
fn ordered_failover_and_fail_closed() {
    let h = host();
    let cases: &[(&str, &str, &str)] = &[
        (
            "via = [\"wlan0\", \"wwan0\"]",
            "203.0.113.10",
            "bind wlan0#3 v4 (default, skipped 0)",
        ),
        (
            "via = [\"tun0\", \"wwan0\"]",
            "203.0.113.10",
            "bind wwan0#4 v4 (default, skipped 1)",
        ),
        (
            "via = [\"nosuch0\", \"tun0\", \"wlan0\"]",
            "203.0.113.10",
            "bind wlan0#3 v4 (default, skipped 2)",
        ),
        // wwan0 has no IPv6: an IPv6 destination skips it.
        (
            "via = [\"wwan0\", \"wlan0\"]",
            "2001:db8:ff::10",
            "bind wlan0#3 v6 (default, skipped 1)",
        ),
        (
            "via = [\"wwan0\"]",
            "2001:db8:ff::10",
            "block NetUnreach (unavailable wwan0)",
        ),
        (
            "via = [\"tun0\"]",
            "203.0.113.10",
            "block NetUnreach (unavailable tun0)",
        ),
        (
            "via = [\"nosuch0\", \"tun0\"]",
            "203.0.113.10",
            "block NetUnreach (unavailable nosuch0,tun0)",
        ),
        (
            "via = [\"tun0\"]\non_unavailable = \"direct\"",
            "203.0.113.10",
            "direct Unavailable",
        ),
        // Fail closed never touches exempt destinations.
        ("via = [\"tun0\"]", "127.0.0.1", "direct Loopback"),
    ];
    for (src, dest, want) in cases {
        let p = policy(src);
        let got = show(&decide(&p.base, &h, &flow(Tcp, Connect, dest, 80)));
        assert_eq!(&got, want, "{src} / {dest}");
    }
}

#[test]
fn unusable_reasons_name_the_problem() {
    let h = host();
    let r = |n: &str, f| unusable_reason(&h, &IfName::new(n).unwrap(), f);
    assert_eq!(r("nosuch0", AddrFamily::V4), Some(Unusable::Missing));
    assert_eq!(r("tun0", AddrFamily::V4), Some(Unusable::Down));
    assert_eq!(
        r("wwan0", AddrFamily::V6),
        Some(Unusable::NoAddress(AddrFamily::V6))
    );
    assert_eq!(r("wlan0", AddrFamily::V6), None);
    assert_eq!(
        Unusable::NoAddress(AddrFamily::V6).to_string(),
        "has no IPv6 address"
    );
}

#[test]
fn rules_by_cidr_port_protocol_and_action() {
    let p = policy(
        r#"via = ["wlan0"]
[[rules]]
to = ["203.0.113.10/32"]
ports = ["8080"]
via = ["wwan0"]
[[rules]]
to = ["192.0.2.0/24", "2001:db8:ff::/48"]
action = "direct"
[[rules]]
protocol = "udp"
ports = ["5000-5010", "53"]
via = ["eth0"]
[[rules]]
to = ["198.51.100.128/25"]
protocol = "tcp"
action = "block"
"#,
    );
    let h = host();
    let cases: &[(Proto, Op, &str, u16, &str)] = &[
        (
            Tcp,
            Connect,
            "203.0.113.10",
            8080,
            "bind wwan0#4 v4 (rule 1, skipped 0)",
        ),
        (
            Tcp,
            Connect,
            "203.0.113.10",
            80,
            "bind wlan0#3 v4 (default, skipped 0)",
        ),
        (
            Tcp,
            Connect,
            "::ffff:203.0.113.10",
            8080,
            "bind wwan0#4 v4 (rule 1, skipped 0)",
        ),
        (Tcp, Connect, "192.0.2.77", 443, "direct (rule 2)"),
        (Udp, Send, "2001:db8:ff::10", 53, "direct (rule 2)"),
        (
            Udp,
            Send,
            "203.0.113.99",
            53,
            "bind eth0#2 v4 (rule 3, skipped 0)",
        ),
        (
            Udp,
            Send,
            "203.0.113.99",
            5005,
            "bind eth0#2 v4 (rule 3, skipped 0)",
        ),
        (
            Tcp,
            Connect,
            "203.0.113.99",
            53,
            "bind wlan0#3 v4 (default, skipped 0)",
        ),
        (
            Udp,
            Send,
            "203.0.113.99",
            5011,
            "bind wlan0#3 v4 (default, skipped 0)",
        ),
        (Tcp, Connect, "198.51.100.200", 22, "block Access (rule 4)"),
        (
            Udp,
            Send,
            "198.51.100.200",
            22,
            "bind wlan0#3 v4 (default, skipped 0)",
        ),
        // Exemptions come before rules: the host's own address is never blocked.
        (Tcp, Connect, "198.51.100.66", 22, "direct OwnAddress"),
        // ICMP sockets match only protocol-less rules.
        (
            Other,
            Send,
            "203.0.113.99",
            53,
            "bind wlan0#3 v4 (default, skipped 0)",
        ),
    ];
    for (proto, op, dest, port, want) in cases {
        let got = show(&decide(&p.base, &h, &flow(*proto, *op, dest, *port)));
        assert_eq!(&got, want, "{proto:?} {op:?} {dest}:{port}");
    }
}

#[test]
fn rule_via_list_fails_closed_with_the_rules_list() {
    let p = policy("via = [\"wlan0\"]\n[[rules]]\nports = [\"443\"]\nvia = [\"tun0\"]\n");
    let got = show(&decide(
        &p.base,
        &host(),
        &flow(Tcp, Connect, "203.0.113.1", 443),
    ));
    assert_eq!(got, "block NetUnreach (unavailable tun0)");
}

#[test]
fn listeners_follow_listen_setting() {
    let h = host();
    let any = policy("via = [\"wlan0\"]\nlisten = \"any\"");
    assert_eq!(
        show(&decide(&any.base, &h, &flow(Tcp, Listen, "0.0.0.0", 80))),
        "direct ListenAny"
    );
    let none = policy("[programs.x]\nvia = [\"wlan0\"]");
    assert_eq!(
        show(&decide(&none.base, &h, &flow(Tcp, Listen, "0.0.0.0", 80))),
        "direct NoVia"
    );
    let down = policy("via = [\"tun0\"]");
    assert_eq!(
        show(&decide(&down.base, &h, &flow(Tcp, Listen, "0.0.0.0", 80))),
        "block NetUnreach (unavailable tun0)"
    );
}

#[test]
fn no_via_means_direct_unless_a_rule_says_otherwise() {
    let p = policy("[[rules]]\nto = [\"203.0.113.0/24\"]\nvia = [\"wlan0\"]\n");
    let h = host();
    assert_eq!(
        show(&decide(
            &p.base,
            &h,
            &flow(Tcp, Connect, "198.51.100.200", 80)
        )),
        "direct NoVia"
    );
    assert_eq!(
        show(&decide(&p.base, &h, &flow(Tcp, Connect, "203.0.113.5", 80))),
        "bind wlan0#3 v4 (rule 1, skipped 0)"
    );
}

#[test]
fn per_program_profile_decides_differently() {
    let p = policy("via = [\"wlan0\"]\n[programs.curl]\nvia = [\"wwan0\"]\n");
    let h = host();
    let f = flow(Tcp, Connect, "203.0.113.10", 80);
    let curl = p.profile_for("/usr/bin/curl", "curl");
    let py = p.profile_for("/usr/bin/python3.11", "python3");
    assert_eq!(
        show(&decide(&curl, &h, &f)),
        "bind wwan0#4 v4 (default, skipped 0)"
    );
    assert_eq!(
        show(&decide(&py, &h, &f)),
        "bind wlan0#3 v4 (default, skipped 0)"
    );
}

#[test]
fn canonical_forms_are_exempt_in_every_spelling() {
    let p = policy("via = [\"wlan0\"]");
    let h = host();
    for ip in [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped()),
        IpAddr::V6(Ipv4Addr::new(127, 1, 2, 3).to_ipv6_mapped()),
    ] {
        let f = Flow {
            proto: Udp,
            op: Send,
            dest: ip,
            port: 1,
            scope_id: 0,
        };
        assert_eq!(show(&decide(&p.base, &h, &f)), "direct Loopback", "{ip}");
    }
}

/// A host whose learned table says 203.0.113.77 came from rule index `i`.
struct Learned<'a>(&'a Host, usize);

impl NetView for Learned<'_> {
    fn iface(&self, name: &IfName) -> Option<IfaceState> {
        self.0.iface(name)
    }
    fn is_local(&self, ip: IpAddr) -> bool {
        self.0.is_local(ip)
    }
    fn learned(&self, ip: IpAddr) -> Option<usize> {
        (ip == "203.0.113.77".parse::<IpAddr>().unwrap()).then_some(self.1)
    }
}

#[test]
fn names_choose_the_resolving_interface_and_their_addresses_follow() {
    let p = policy(
        r#"via = ["wlan0"]
[[rules]]
to = ["203.0.113.77/32"]
ports = ["22"]
action = "direct"
[[rules]]
names = ["*.corp.example"]
via = ["wwan0"]
[[rules]]
names = ["blocked.example"]
action = "block"
[[rules]]
names = ["local.example"]
action = "direct"
[[rules]]
names = ["down.example"]
via = ["tun0"]
"#,
    );
    let h = host();
    let name = |n: &str| show(&decide_name(&p.base, &h, n));
    assert_eq!(
        name("git.corp.example"),
        "bind wwan0#4 v4 (rule 2, skipped 0)"
    );
    assert_eq!(name("example.org"), "bind wlan0#3 v4 (default, skipped 0)");
    assert_eq!(name("blocked.example"), "block Access (rule 3)");
    assert_eq!(name("local.example"), "direct (rule 4)");
    assert_eq!(name("down.example"), "block NetUnreach (unavailable tun0)");
    // An address learned under rule 2 (index 1) follows it; an address rule wins.
    let l = Learned(&h, 1);
    assert_eq!(
        show(&decide(
            &p.base,
            &l,
            &flow(Tcp, Connect, "203.0.113.77", 443)
        )),
        "bind wwan0#4 v4 (rule 2, skipped 0)"
    );
    assert_eq!(
        show(&decide(
            &p.base,
            &l,
            &flow(Tcp, Connect, "203.0.113.77", 22)
        )),
        "direct (rule 1)"
    );
    assert_eq!(
        show(&decide(
            &p.base,
            &l,
            &flow(Tcp, Connect, "203.0.113.78", 443)
        )),
        "bind wlan0#3 v4 (default, skipped 0)"
    );
    // Name rules never match addresses by themselves.
    assert_eq!(
        show(&decide(
            &p.base,
            &h,
            &flow(Tcp, Connect, "203.0.113.77", 443)
        )),
        "bind wlan0#3 v4 (default, skipped 0)"
    );
}

/// Issue 9 item 10: the fail-closed profile (an invalid policy under plain
/// LD_PRELOAD) refused connections only; names were still resolved by the C library
/// over the default link (`decide_name` said "direct: no via"). Now every name that
/// reaches the decision is blocked like a name rule with `action = "block"`
/// (localhost and /etc/hosts names never reach it), and so is every non-exempt
/// address, while the exemptions still hold.
#[test]
fn fail_closed_profile_blocks_names_as_well_as_addresses() {
    let p = Profile::fail_closed("invalid policy");
    let h = host();
    for n in [
        "who.mif.test",
        "example.org",
        "db1",
        "a.b.c.d.example.",
        ".",
    ] {
        assert_eq!(
            show(&decide_name(&p, &h, n)),
            "block Access (invalid policy)",
            "{n}"
        );
    }
    for (proto, dest, want) in [
        (Tcp, "203.0.113.10", "block Access (invalid policy)"),
        (Udp, "2001:db8:ff::10", "block Access (invalid policy)"),
        (Tcp, "127.0.0.1", "direct Loopback"),
        (Udp, "::1", "direct Loopback"),
        (Tcp, "198.51.100.2", "direct OwnAddress"),
    ] {
        assert_eq!(
            show(&decide(&p, &h, &flow(proto, Connect, dest, 80))),
            want,
            "{dest}"
        );
    }
}

/// The fake host with its addresses per interface: eth0 198.51.100.2 and
/// 2001:db8:10::2, wlan0 198.51.100.66, .67 and 2001:db8:20::2, wwan0 198.51.100.130.
struct Addressed(Host, Vec<(u32, IpAddr)>);

fn addressed() -> Addressed {
    let a = |i, s: &str| (i, s.parse::<IpAddr>().unwrap());
    let list = vec![
        a(2, "198.51.100.2"),
        a(2, "2001:db8:10::2"),
        a(2, "fe80::2"),
        a(3, "198.51.100.66"),
        a(3, "198.51.100.67"),
        a(3, "fe80::3"),
        a(3, "2001:db8:20::2"),
        a(4, "198.51.100.130"),
    ];
    let mut h = host();
    h.local = list.iter().map(|(_, ip)| *ip).collect();
    Addressed(h, list)
}

impl NetView for Addressed {
    fn iface(&self, name: &IfName) -> Option<IfaceState> {
        self.0.iface(name)
    }
    fn is_local(&self, ip: IpAddr) -> bool {
        self.0.is_local(ip)
    }
    fn owns(&self, index: u32, ip: IpAddr) -> bool {
        self.1.contains(&(index, ip))
    }
    fn address_of(&self, index: u32, family: AddrFamily) -> Option<IpAddr> {
        self.1
            .iter()
            .filter(|(i, _)| *i == index)
            .map(|(_, ip)| *ip)
            .find(|ip| match (ip, family) {
                (IpAddr::V4(_), AddrFamily::V4) => true,
                (IpAddr::V6(v6), AddrFamily::V6) => !v6.is_unicast_link_local(),
                _ => false,
            })
    }
}

/// The options `decide` gives `f`'s socket, resolved as the executor does.
fn opts(p: &Profile, net: &impl NetView, f: &Flow) -> Applied {
    match decide(p, net, f) {
        Decision::Bind(b) => applied(p, net, &b),
        other => panic!("expected a bind, got {}", show(&other)),
    }
}

#[test]
fn source_mark_and_dscp_ride_on_the_bind_decision() {
    let p = policy(
        r#"
via = ["wlan0", "wwan0"]
source = ["198.51.100.67", "2001:db8:20::2"]
mark = 0x10
dscp = "ef"

[[rules]]
to = ["192.0.2.128/25"]
action = "direct"

[[rules]]
to = ["192.0.2.0/24"]
via = ["wwan0"]
dscp = "af41"

[programs.nomark]
mark = 0
"#,
    );
    let prof = p.profile_for("/usr/bin/curl", "curl");
    let h = addressed();
    let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
    let d = opts(&prof, &h, &flow(Tcp, Connect, "203.0.113.10", 80));
    assert_eq!(
        d,
        Applied {
            source: ip("198.51.100.67"),
            source_missing: None,
            mark: Some(0x10),
            dscp: Some(46),
        }
    );
    let d = opts(&prof, &h, &flow(Udp, Send, "2001:db8:ff::10", 53));
    assert_eq!(d.source, ip("2001:db8:20::2"));
    // IPv4-mapped destinations take the IPv4 source.
    let d = opts(&prof, &h, &flow(Tcp, Connect, "::ffff:203.0.113.10", 80));
    assert_eq!(d.source, ip("198.51.100.67"));
    // A rule's interface lacks the source: the kernel chooses, the decision says so;
    // the rule's dscp replaces the profile's, the mark is inherited.
    let d = opts(&prof, &h, &flow(Tcp, Connect, "192.0.2.7", 80));
    assert_eq!(
        d,
        Applied {
            source: None,
            source_missing: ip("198.51.100.67"),
            mark: Some(0x10),
            dscp: Some(34),
        }
    );
    // wlan0 down: the failover interface does not have the source either.
    let mut down = addressed();
    down.0.ifaces[1].1.up = false;
    let d = opts(&prof, &down, &flow(Tcp, Connect, "203.0.113.10", 80));
    assert_eq!(d.source_missing, ip("198.51.100.67"));
    // Direct, blocked, local, listeners and multicast carry no options.
    assert!(matches!(
        decide(&prof, &h, &flow(Tcp, Connect, "192.0.2.200", 80)),
        Decision::Direct(_)
    ));
    for f in [
        flow(Tcp, Listen, "0.0.0.0", 80),
        flow(Udp, Send, "239.1.2.3", 5000),
        flow(Udp, Join, "239.1.2.3", 0),
    ] {
        assert_eq!(opts(&prof, &h, &f), Applied::default(), "{f:?}");
    }
    // `mark = 0` in a program section: no mark.
    let nomark = p.profile_for("/x/nomark", "nomark");
    let d = opts(&nomark, &h, &flow(Tcp, Connect, "203.0.113.10", 80));
    assert_eq!((d.mark, d.dscp), (None, Some(46)));
    // Name resolution carries none (the resolver's sockets are the shim's own).
    let Decision::Bind(b) = decide_name(&prof, &h, "x.example") else {
        panic!()
    };
    assert!(!b.options);
    assert!(applied(&prof, &h, &b).is_empty());
}

fn show_bind(d: BindAddr<'_>) -> String {
    match d {
        BindAddr::Keep(r) => format!("keep {r:?}"),
        BindAddr::Rewrite { to, bind } => format!("rewrite {to} ({})", bind.ifname),
        BindAddr::Refuse(b) => format!("refuse {:?}", b.errno),
    }
}

#[test]
fn bind_to_another_interfaces_address_is_rewritten_table() {
    let h = addressed();
    let p = policy("via = [\"wlan0\"]");
    let prof = p.profile_for("", "");
    let cases: &[(&str, u32, &str)] = &[
        ("198.51.100.2", 0, "rewrite 198.51.100.66 (wlan0)"),
        ("::ffff:198.51.100.2", 0, "rewrite 198.51.100.66 (wlan0)"),
        ("2001:db8:10::2", 0, "rewrite 2001:db8:20::2 (wlan0)"),
        ("198.51.100.66", 0, "keep ChosenInterface"),
        ("198.51.100.67", 0, "keep ChosenInterface"),
        ("2001:db8:20::2", 0, "keep ChosenInterface"),
        ("0.0.0.0", 0, "keep Unspecified"),
        ("::", 0, "keep Unspecified"),
        ("127.0.0.1", 0, "keep Loopback"),
        ("::1", 0, "keep Loopback"),
        ("::ffff:127.0.0.1", 0, "keep Loopback"),
        ("239.1.2.3", 0, "keep Multicast"),
        ("192.0.2.1", 0, "keep NotLocal"),
        ("fe80::2", 2, "keep ScopedLinkLocal"),
        ("198.51.100.130", 0, "rewrite 198.51.100.66 (wlan0)"),
    ];
    for (addr, scope, want) in cases {
        let got = show_bind(decide_bind(&prof, &h, addr.parse().unwrap(), *scope));
        assert_eq!(&got, want, "bind {addr}");
    }
    // The configured source is preferred when wlan0 has it.
    let p = policy("via = [\"wlan0\"]\nsource = \"198.51.100.67\"");
    let prof = p.profile_for("", "");
    assert_eq!(
        show_bind(decide_bind(&prof, &h, "198.51.100.2".parse().unwrap(), 0)),
        "rewrite 198.51.100.67 (wlan0)"
    );
    // The program keeps its own address when the policy says so, or has no via.
    for src in [
        "via = [\"wlan0\"]\nforeign_bind = \"keep\"",
        "[[rules]]\nvia = [\"wlan0\"]",
    ] {
        let p = policy(src);
        let prof = p.profile_for("", "");
        let got = show_bind(decide_bind(&prof, &h, "198.51.100.2".parse().unwrap(), 0));
        assert!(got.starts_with("keep"), "{src}: {got}");
    }
    // wwan0 has no IPv6 address: an IPv6 bind fails closed; its IPv4 one is rewritten.
    let p = policy("via = [\"wwan0\"]");
    let prof = p.profile_for("", "");
    assert_eq!(
        show_bind(decide_bind(&prof, &h, "2001:db8:10::2".parse().unwrap(), 0)),
        "refuse NetUnreach"
    );
    assert_eq!(
        show_bind(decide_bind(&prof, &h, "198.51.100.2".parse().unwrap(), 0)),
        "rewrite 198.51.100.130 (wwan0)"
    );
    let p = policy("via = [\"wwan0\"]\non_unavailable = \"direct\"");
    let prof = p.profile_for("", "");
    assert_eq!(
        show_bind(decide_bind(&prof, &h, "2001:db8:10::2".parse().unwrap(), 0)),
        "keep Unavailable"
    );
}
