//! `mifrun source-rules`: the source routing rules that send the kernel's own answers
//! from an interface's addresses back by that interface.
//!
//! A packet the kernel sends for no socket — an ICMP port unreachable for a reply that
//! came after its socket closed, a TCP RST, IPv6's TIME_WAIT ACK — has no device
//! binding, so the main table routes it, whatever link the packet it answers came in
//! on (`doctor`'s "kernel replies" check, README Limits). A rule `from ADDR lookup T`
//! ahead of the main table, with T holding a copy of the interface's own routes and an
//! `unreachable` default behind them, sends every packet from ADDR by that interface
//! or nowhere: the strong host model for that address.
//!
//! [`plan`] is pure: from a netlink snapshot it says which rules and routes to add and
//! which stale ones (an address gone, a route changed) to delete; `run` prints the
//! plan as `ip` commands, carries it out with `--apply`, or takes everything of
//! mifshim's tables away with `--remove`.

use std::net::IpAddr;

use config_schema::IfName;

use super::Config;
use crate::cli::SourceRulesArgs;
use crate::net::{MAIN_TABLE, Net};
use crate::sys::netlink::{self, RTN_UNICAST, Route, Rule};
use crate::{Fail, fail};

/// mifshim's tables: this plus the interface index (`ip rule` shows `lookup 1000004`).
pub const TABLE_BASE: u32 = 1_000_000;

/// `RTN_UNREACHABLE`.
const RTN_UNREACHABLE: u8 = 7;

/// The table of interface `index`.
pub fn table_of(index: u32) -> u32 {
    TABLE_BASE + index
}

/// A change to the kernel's rules or routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    AddRule(Rule),
    DelRule(Rule),
    AddRoute(Route),
    DelRoute(Route),
}

/// What makes one interface's addresses leave by it: for each family with an address
/// of global scope, `from ADDR` rules to its table, and the table: the main table's
/// unicast routes through the interface, then an `unreachable` default (a destination
/// none of them reaches fails, as it fails on a socket bound to the device).
fn wanted(net: &Net, index: u32, priority: u32) -> (Vec<Rule>, Vec<Route>) {
    let table = table_of(index);
    let mut rules = Vec::new();
    let mut routes = Vec::new();
    for v6 in [false, true] {
        let addrs: Vec<IpAddr> = net
            .addrs_of(index)
            .filter(|a| a.ip.is_ipv6() == v6 && a.scope == libc::RT_SCOPE_UNIVERSE)
            .map(|a| a.ip)
            .collect();
        if addrs.is_empty() {
            continue;
        }
        for ip in addrs {
            rules.push(Rule {
                v6,
                priority,
                src: Some(ip),
                src_len: if v6 { 128 } else { 32 },
                table,
                action: 1,
            });
        }
        for r in net.routes.iter().filter(|r| {
            r.v6 == v6 && r.table == MAIN_TABLE && r.oif == Some(index) && r.rtype == RTN_UNICAST
        }) {
            routes.push(Route { table, ..*r });
        }
        routes.push(Route {
            table,
            dst: None,
            dst_len: 0,
            oif: None,
            gateway: None,
            metric: u32::MAX,
            rtype: RTN_UNREACHABLE,
            v6,
            scope: libc::RT_SCOPE_UNIVERSE,
            prefsrc: None,
        });
    }
    (rules, routes)
}

/// Two routes are the same entry when the kernel would take them as one (the fields
/// [`netlink::add_route`] sets; a reject route has no device of its own, though IPv6
/// dumps it with `lo`).
fn same_route(a: &Route, b: &Route) -> bool {
    let oif = |r: &Route| (r.rtype == RTN_UNICAST).then_some(r.oif);
    (
        a.v6,
        a.table,
        a.dst,
        a.dst_len,
        oif(a),
        a.gateway,
        a.metric,
        a.rtype,
    ) == (
        b.v6,
        b.table,
        b.dst,
        b.dst_len,
        oif(b),
        b.gateway,
        b.metric,
        b.rtype,
    )
}

/// The steps that make the kernel hold `wanted` for the interfaces `indexes`: stale
/// rules and routes of their tables deleted first, then what is missing added. With
/// `remove`, every rule and route of their tables deleted.
pub fn plan(net: &Net, rules: &[Rule], indexes: &[u32], priority: u32, remove: bool) -> Vec<Step> {
    let mut steps = Vec::new();
    for &index in indexes {
        let table = table_of(index);
        let (want_rules, want_routes) = if remove {
            (Vec::new(), Vec::new())
        } else {
            wanted(net, index, priority)
        };
        let have_rules: Vec<&Rule> = rules.iter().filter(|r| r.table == table).collect();
        let have_routes: Vec<&Route> = net.routes.iter().filter(|r| r.table == table).collect();
        for r in &have_rules {
            if !want_rules.contains(r) {
                steps.push(Step::DelRule(**r));
            }
        }
        for r in &have_routes {
            if !want_routes.iter().any(|w| same_route(w, r)) {
                steps.push(Step::DelRoute(**r));
            }
        }
        // Routes before rules: a rule never points at a table still being filled.
        for w in &want_routes {
            if !have_routes.iter().any(|r| same_route(w, r)) {
                steps.push(Step::AddRoute(*w));
            }
        }
        for w in &want_rules {
            if !have_rules.contains(&w) {
                steps.push(Step::AddRule(*w));
            }
        }
    }
    steps
}

/// `ip -4|-6`.
fn ip(v6: bool) -> &'static str {
    if v6 { "ip -6" } else { "ip -4" }
}

/// A step as the `ip` command that does the same.
pub fn command(step: &Step, net: &Net) -> String {
    match step {
        Step::AddRule(r) | Step::DelRule(r) => {
            let verb = if matches!(step, Step::AddRule(_)) {
                "add"
            } else {
                "del"
            };
            let from = r
                .src
                .map_or("all".to_owned(), |s| format!("{s}/{}", r.src_len));
            format!(
                "{} rule {verb} from {from} priority {} table {}",
                ip(r.v6),
                r.priority,
                r.table
            )
        }
        Step::AddRoute(r) | Step::DelRoute(r) => {
            let verb = if matches!(step, Step::AddRoute(_)) {
                "add"
            } else {
                "del"
            };
            let kind = if r.rtype == RTN_UNREACHABLE {
                "unreachable "
            } else {
                ""
            };
            let dst = r
                .dst
                .map_or("default".to_owned(), |d| format!("{d}/{}", r.dst_len));
            let mut s = format!("{} route {verb} {kind}{dst}", ip(r.v6));
            if let Some(g) = r.gateway {
                s += &format!(" via {g}");
            }
            if let Some(o) = r.oif {
                s += &format!(" dev {}", net.name_of(o));
            }
            if r.scope == libc::RT_SCOPE_LINK && r.gateway.is_none() && !r.v6 {
                s += " scope link";
            }
            if let Some(p) = r.prefsrc {
                s += &format!(" src {p}");
            }
            s + &format!(" metric {} table {}", r.metric, r.table)
        }
    }
}

fn carry_out(step: &Step) -> std::io::Result<()> {
    let r = match step {
        Step::AddRule(r) => netlink::add_rule(r),
        Step::DelRule(r) => netlink::del_rule(r),
        Step::AddRoute(r) => netlink::add_route(r),
        Step::DelRoute(r) => netlink::del_route(r),
    };
    match r {
        // Already there, or already gone (another run raced this one): the same end.
        Err(e)
            if matches!(step, Step::AddRule(_) | Step::AddRoute(_))
                && e.raw_os_error() == Some(libc::EEXIST) =>
        {
            Ok(())
        }
        Err(e)
            if matches!(step, Step::DelRule(_) | Step::DelRoute(_))
                && matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ESRCH)) =>
        {
            Ok(())
        }
        r => r,
    }
}

pub fn run(a: &SourceRulesArgs) -> Result<u8, Fail> {
    let cfg = Config::load(&a.policy)?.require()?;
    let net = Net::read()
        .map_err(|e| fail(format!("cannot read the interfaces (netlink): {e}"), None))?;
    let rules = netlink::rules().map_err(|e| {
        fail(
            format!("cannot read the routing rules (netlink): {e}"),
            None,
        )
    })?;
    let names: Vec<IfName> = cfg.policy.interface_names();
    let mut indexes = Vec::new();
    for n in &names {
        match net.link(n.as_str()) {
            Some(l) => indexes.push(l.index),
            None => eprintln!("mifrun: {n} does not exist; nothing to do for it"),
        }
    }
    let steps = plan(&net, &rules, &indexes, a.priority, a.remove);
    if steps.is_empty() {
        println!(
            "nothing to do: {}",
            if a.remove {
                "no rule or route of mifshim's tables is there"
            } else {
                "the rules and tables are in place"
            }
        );
        return Ok(0);
    }
    if !a.apply && !a.remove {
        for s in &steps {
            println!("{}", command(s, &net));
        }
        println!("# (not done: run with --apply, as root, to make these changes)");
        return Ok(0);
    }
    for s in &steps {
        let c = command(s, &net);
        carry_out(s).map_err(|e| {
            fail(
                format!("`{c}` failed: {e}"),
                (e.raw_os_error() == Some(libc::EPERM))
                    .then_some("changing the routing rules needs root (CAP_NET_ADMIN)"),
            )
        })?;
        println!("{c}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::SOURCE_RULE_PRIORITY as DEFAULT_PRIORITY;
    use crate::sys::netlink::{Addr, Link};

    const WLAN: u32 = 4;
    const ETH: u32 = 2;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn route(table: u32, dst: Option<&str>, len: u8, oif: u32, gw: Option<&str>) -> Route {
        let v6 = dst.or(gw).is_some_and(|d| d.contains(':'));
        Route {
            table,
            dst: dst.map(v4),
            dst_len: len,
            oif: Some(oif),
            gateway: gw.map(v4),
            metric: 600,
            rtype: RTN_UNICAST,
            v6,
            scope: if gw.is_some() {
                libc::RT_SCOPE_UNIVERSE
            } else {
                libc::RT_SCOPE_LINK
            },
            prefsrc: None,
        }
    }

    fn addr(index: u32, ip: &str, prefix: u8, scope: u8) -> Addr {
        Addr {
            index,
            ip: v4(ip),
            prefix,
            scope,
            flags: 0,
            onlink: v4(ip),
        }
    }

    fn net() -> Net {
        let link = |index, name: &str| Link {
            index,
            name: name.into(),
            flags: 0x1043,
            operstate: 6,
            carrier: Some(true),
            mtu: 1500,
        };
        Net {
            links: vec![link(ETH, "eth0"), link(WLAN, "wlan0")],
            addrs: vec![
                addr(ETH, "203.0.113.2", 24, 0),
                addr(WLAN, "198.51.100.66", 26, 0),
                addr(WLAN, "2001:db8:20::2", 64, 0),
                addr(WLAN, "fe80::1", 64, libc::RT_SCOPE_LINK),
            ],
            routes: vec![
                route(MAIN_TABLE, None, 0, ETH, Some("203.0.113.1")),
                route(MAIN_TABLE, Some("203.0.113.0"), 24, ETH, None),
                route(MAIN_TABLE, None, 0, WLAN, Some("198.51.100.65")),
                route(MAIN_TABLE, Some("198.51.100.64"), 26, WLAN, None),
                route(MAIN_TABLE, Some("2001:db8:20::"), 64, WLAN, None),
                route(MAIN_TABLE, Some("fe80::"), 64, WLAN, None),
            ],
        }
    }

    fn commands(steps: &[Step], net: &Net) -> Vec<String> {
        steps.iter().map(|s| command(s, net)).collect()
    }

    #[test]
    fn a_fresh_interface_gets_its_routes_copied_an_unreachable_default_and_a_rule_per_address() {
        let n = net();
        let c = commands(&plan(&n, &[], &[WLAN], DEFAULT_PRIORITY, false), &n);
        assert_eq!(
            c,
            [
                "ip -4 route add default via 198.51.100.65 dev wlan0 metric 600 table 1000004",
                "ip -4 route add 198.51.100.64/26 dev wlan0 scope link metric 600 table 1000004",
                "ip -4 route add unreachable default metric 4294967295 table 1000004",
                // No IPv6 default through wlan0 here: only its subnets, then unreachable.
                "ip -6 route add 2001:db8:20::/64 dev wlan0 metric 600 table 1000004",
                "ip -6 route add fe80::/64 dev wlan0 metric 600 table 1000004",
                "ip -6 route add unreachable default metric 4294967295 table 1000004",
                "ip -4 rule add from 198.51.100.66/32 priority 31000 table 1000004",
                // The link-local address has no rule: it is not a source beyond the link.
                "ip -6 rule add from 2001:db8:20::2/128 priority 31000 table 1000004",
            ]
        );
        // Nothing of eth0's is copied, and no other table is touched.
        assert!(
            c.iter()
                .all(|l| !l.contains("eth0") && !l.contains("203.0.113"))
        );
    }

    /// What the kernel then holds (the routes and rules added, as a dump shows them).
    fn applied(n: &Net, rules: &[Rule], steps: &[Step]) -> (Net, Vec<Rule>) {
        let mut routes = n.routes.clone();
        let mut rules = rules.to_vec();
        for s in steps {
            match s {
                Step::AddRoute(r) => routes.push(*r),
                Step::AddRule(r) => rules.push(*r),
                Step::DelRoute(r) => routes.retain(|x| !same_route(x, r)),
                Step::DelRule(r) => rules.retain(|x| x != r),
            }
        }
        (
            Net {
                links: n.links.clone(),
                addrs: n.addrs.clone(),
                routes,
            },
            rules,
        )
    }

    #[test]
    fn a_second_run_has_nothing_to_do() {
        let n = net();
        let (mut after, rules) = applied(&n, &[], &plan(&n, &[], &[WLAN], DEFAULT_PRIORITY, false));
        // IPv6 dumps its unreachable route with the loopback device.
        for r in after.routes.iter_mut() {
            if r.v6 && r.rtype == RTN_UNREACHABLE {
                r.oif = Some(1);
            }
        }
        assert_eq!(plan(&after, &rules, &[WLAN], DEFAULT_PRIORITY, false), []);
    }

    #[test]
    fn an_address_gone_and_a_new_gateway_replace_the_stale_rule_and_route() {
        let n = net();
        let (mut after, rules) = applied(&n, &[], &plan(&n, &[], &[WLAN], DEFAULT_PRIORITY, false));
        // DHCP: a new address and a new gateway.
        after.addrs[1] = addr(WLAN, "198.51.100.70", 26, 0);
        for r in after.routes.iter_mut() {
            if r.table == MAIN_TABLE && r.gateway == Some(v4("198.51.100.65")) {
                r.gateway = Some(v4("198.51.100.126"));
            }
        }
        let c = commands(
            &plan(&after, &rules, &[WLAN], DEFAULT_PRIORITY, false),
            &after,
        );
        assert_eq!(
            c,
            [
                "ip -4 rule del from 198.51.100.66/32 priority 31000 table 1000004",
                "ip -4 route del default via 198.51.100.65 dev wlan0 metric 600 table 1000004",
                "ip -4 route add default via 198.51.100.126 dev wlan0 metric 600 table 1000004",
                "ip -4 rule add from 198.51.100.70/32 priority 31000 table 1000004",
            ]
        );
    }

    #[test]
    fn remove_takes_every_rule_and_route_of_the_table_and_nothing_else() {
        let n = net();
        let (after, mut rules) = applied(&n, &[], &plan(&n, &[], &[WLAN], DEFAULT_PRIORITY, false));
        // Someone else's rule to another table stays.
        let theirs = Rule {
            v6: false,
            priority: 100,
            src: Some(v4("198.51.100.66")),
            src_len: 32,
            table: 100,
            action: 1,
        };
        rules.push(theirs);
        let steps = plan(&after, &rules, &[WLAN], DEFAULT_PRIORITY, true);
        let (gone, left) = applied(&after, &rules, &steps);
        assert_eq!(left, [theirs]);
        assert_eq!(gone.routes, n.routes);
        assert!(
            steps
                .iter()
                .all(|s| matches!(s, Step::DelRule(_) | Step::DelRoute(_)))
        );
    }

    #[test]
    fn an_interface_without_a_global_address_gets_nothing() {
        let mut n = net();
        n.addrs.retain(|a| a.index != WLAN || a.scope != 0);
        assert_eq!(plan(&n, &[], &[WLAN], DEFAULT_PRIORITY, false), []);
    }
}
