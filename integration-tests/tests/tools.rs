//! `mifrun status`, `explain` and `doctor` against the namespace testbed, and the
//! command line's refusal of mistyped options.
//!
//! Every value the commands print is checked against the testbed's known topology
//! (`scripts/testbed.sh`): interface indexes (read from `/sys`), addresses, default
//! routes and metrics, DNS servers and where they came from, the rule matched, the
//! interface chosen and the failover step, source and next hop, reply path. Where the
//! commands predict what a program would get, the test also runs the program and
//! checks that it did (the link that answered, the DNS server that was asked).

use integration_tests::*;
use serde_json::Value;

fn mifrun_cmd(args: &[&str]) -> Vec<String> {
    let mut v = vec![s(mifrun())];
    v.extend(args.iter().map(|a| a.to_string()));
    v
}

fn json_of(out: &Out) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):{}", out.dump()))
}

/// The interface `name` of `status --json`.
fn iface<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["interfaces"]
        .as_array()
        .expect("interfaces")
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {status:#}"))
}

fn ifindex(tb: &Testbed, name: &str) -> u64 {
    let out = tb.run(&["cat", &format!("/sys/class/net/{name}/ifindex")]);
    out.assert_ok();
    out.stdout.trim().parse().expect("ifindex")
}

/// The upstream (gateway) address of an uplink.
fn gateway(uplink: &str, v6: bool) -> &'static str {
    upstream_addr(uplink, v6)
}

/// The source the kernel chooses for `dest` through `dev` (`ip route get`).
fn kernel_source(tb: &Testbed, dest: &str, dev: &str) -> String {
    let out = tb.run(&["ip", "route", "get", dest, "oif", dev]);
    out.assert_ok();
    let mut w = out.stdout.split_whitespace();
    w.find(|t| *t == "src")
        .and_then(|_| w.next())
        .unwrap_or_else(|| panic!("no src:{}", out.dump()))
        .to_string()
}

fn curl(url: &str) -> Vec<String> {
    ["curl", "-sS", "--max-time", "5", url]
        .map(String::from)
        .to_vec()
}

#[test]
fn every_command_has_help() {
    for (cmd, needles) in [
        (
            "status",
            &[
                "Usage: mifrun status",
                "--json",
                "--to <ADDR>",
                "DNS sources",
            ][..],
        ),
        (
            "explain",
            &[
                "Usage: mifrun explain [OPTIONS] <DEST> [PORT]",
                "--program <NAME>",
                "--udp",
                "--policy <FILE>",
                "--via <IF[,IF...]>",
            ][..],
        ),
        (
            "doctor",
            &[
                "Usage: mifrun doctor",
                "--via <IF[,IF...]>",
                "--name <NAME>",
                "Exit status",
            ][..],
        ),
    ] {
        let out = Cmd::new(None, &mifrun_cmd(&[cmd, "--help"])).run();
        out.assert_ok();
        for n in needles {
            assert!(
                out.stdout.contains(n),
                "`{cmd} --help` lacks {n:?}:{}",
                out.dump()
            );
        }
    }
    let out = Cmd::new(None, &mifrun_cmd(&["--help"])).run();
    out.assert_ok();
    for n in [
        "mifrun status",
        "mifrun explain",
        "mifrun doctor",
        "a mistyped one is an error",
    ] {
        assert!(out.stdout.contains(n), "--help lacks {n:?}:{}", out.dump());
    }
}

/// `mifrun --via wlan0 --supervize -- prog` ran a program called `--supervize` ("No
/// such file or directory"); options before the program are now checked.
#[test]
fn mistyped_option_before_the_program_was_run_as_the_program() {
    let out = Cmd::new(
        None,
        &mifrun_cmd(&["--via", "lo", "--supervize", "--", "true"]),
    )
    .run();
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("unexpected argument '--supervize' found"),
        "{}",
        out.dump()
    );
    assert!(!out.stderr.contains("No such file"), "{}", out.dump());
    let out = Cmd::new(None, &mifrun_cmd(&["--via", "lo", "--chek", "true"])).run();
    out.assert_code(2);
    assert!(
        out.stderr.contains("a similar argument exists: '--check'"),
        "clap's suggestion:{}",
        out.dump()
    );
    // The program's own options are its own, with or without `--`.
    let out = Cmd::new(
        None,
        &mifrun_cmd(&["--via", "lo", "--", "printf", "%s|%s", "--any-flag", "-x"]),
    )
    .run();
    out.assert_ok();
    assert_eq!(out.stdout, "--any-flag|-x", "{}", out.dump());
    let out = Cmd::new(
        None,
        &mifrun_cmd(&["--via", "lo", "printf", "%s", "--flag"]),
    )
    .run();
    out.assert_ok();
    assert_eq!(out.stdout, "--flag", "{}", out.dump());
    // A program named like a command runs after `--`.
    // (It is looked up in PATH like any program: not found here, 127.)
    let out = Cmd::new(None, &mifrun_cmd(&["--via", "lo", "--", "status"])).run();
    out.assert_code(127);
    assert!(
        out.stderr
            .contains("mifrun: status: No such file or directory"),
        "{}",
        out.dump()
    );
}

both!(
    /// Every uplink's index, state, addresses, default route, DNS server and verdict,
    /// and the route through it to the service.
    status_shows_every_uplink,
    |fam| {
        let tb = Testbed::up();
        let v6 = fam.v6();
        let key = if v6 { "ipv6" } else { "ipv4" };
        let out = tb.run(&mifrun_cmd(&["status", "--json", "--to", fam.svc()]));
        out.assert_ok();
        let st = json_of(&out);
        assert_eq!(st["systemd_resolved"], false, "{st:#}");
        for (uplink, metric) in [("eth0", 100), ("wlan0", 600), ("wwan0", 700)] {
            let i = iface(&st, uplink);
            assert_eq!(i["index"], ifindex(&tb, uplink), "{i:#}");
            assert_eq!((&i["state"], &i["carrier"]), (&Value::from("up"), &Value::from(true)), "{i:#}");
            let plen = if v6 { 64 } else { 26 };
            let want = format!("{}/{plen}", host_addr(uplink, v6));
            assert!(
                i[key]["addresses"].as_array().unwrap().iter().any(|a| a == want.as_str()),
                "{want} in {i:#}"
            );
            let r = &i[key]["default_route"];
            assert_eq!((&r["gateway"], &r["metric"], &r["table"]), (&Value::from(gateway(uplink, v6)), &Value::from(metric), &Value::from(254)), "{i:#}");
            assert_eq!((&i[key]["usable"], &i[key]["verdict"]), (&Value::from(true), &Value::from("usable")), "{i:#}");
            let to = &i[key]["route_to"];
            assert_eq!(to["destination"], fam.svc(), "{i:#}");
            assert_eq!(to["route"], true, "{i:#}");
            assert_eq!(to["gateway"], gateway(uplink, v6), "{i:#}");
            assert_eq!(to["source"], host_addr(uplink, v6), "{i:#}");
            let dns = &i["dns"];
            assert_eq!(dns["source"], "/etc/resolv.conf", "{i:#}");
            assert_eq!(dns["servers"][0]["address"], DNS4, "{i:#}");
            assert_eq!(dns["servers"][0]["source"], "/etc/resolv.conf", "{i:#}");
        }
        let lo = iface(&st, "lo");
        assert_eq!((&lo["index"], &lo["loopback"], &lo[key]["usable"]), (&Value::from(1), &Value::from(true), &Value::from(false)));
        // The table, like `ip addr`.
        let out = tb.run(&mifrun_cmd(&["status", "--to", fam.svc()]));
        out.assert_ok();
        let idx = ifindex(&tb, "wlan0");
        for n in [
            format!("{idx}: wlan0  up (carrier yes"),
            format!("{}/", host_addr("wlan0", v6)),
            format!("route: default via {} metric 600", gateway("wlan0", v6)),
            format!("shim: usable for {}", if v6 { "IPv6" } else { "IPv4" }),
            format!("to {}: via {}, src {}", fam.svc(), gateway("wlan0", v6), host_addr("wlan0", v6)),
            format!("DNS   {DNS4} (/etc/resolv.conf)"),
        ] {
            assert!(out.stdout.contains(&n), "{n:?}:{}", out.dump());
        }
        // A link that goes down: not usable, and why (the shim's own words).
        tb.link_down("wwan0");
        let st = json_of(&tb.run(&mifrun_cmd(&["status", "--json"])));
        let w = iface(&st, "wwan0");
        assert_eq!((&w["state"], &w[key]["usable"]), (&Value::from("down"), &Value::from(false)), "{w:#}");
        assert_eq!(w[key]["verdict"], "wwan0 is down or has no carrier", "{w:#}");
        assert_eq!(w[key]["default_route"], Value::Null, "{w:#}");
    }
);

const POLICY: &str = r#"
via = ["wlan0", "wwan0"]

[[rules]]
to = ["203.0.113.10/32", "2001:db8:ff::10/128"]
ports = [8080]
via = ["wwan0"]

[[rules]]
to = ["192.0.2.0/24", "2001:db8:ee::/48"]
action = "direct"

[[rules]]
ports = [9]
action = "block"

[[rules]]
protocol = "udp"
ports = [5353]
via = ["eth0"]

[programs.wget]
via = ["eth0"]
"#;

both!(
    /// The rule matched, the interface chosen, source and next hop, the reply path, the
    /// program section, and the failover when the first interface goes down — and curl
    /// then really leaves by the interface explain named.
    explain_follows_rules_and_failover,
    |fam| {
        let tb = Testbed::up();
        let tmp = TempDir::new("explain");
        let policy = tmp.write("p.toml", POLICY);
        let v6 = fam.v6();
        let explain = |extra: &[&str]| {
            let mut a = vec!["explain", "--json", "--policy", policy.as_str()];
            a.extend_from_slice(extra);
            let out = tb.run(&mifrun_cmd(&a));
            (out.code(), json_of(&out), out)
        };
        let wlan0 = ifindex(&tb, "wlan0");
        // The default: wlan0, through its gateway, with its source address.
        let (code, x, out) = explain(&[fam.svc(), "80"]);
        assert_eq!(code, 0, "{}", out.dump());
        let d = &x["decision"];
        assert_eq!((&d["action"], &d["reason"], &d["interface"], &d["index"]), (&Value::from("bind"), &Value::from("default"), &Value::from("wlan0"), &Value::from(wlan0)), "{x:#}");
        assert_eq!(d["family"], if v6 { "IPv6" } else { "IPv4" });
        assert_eq!(d["skipped"], serde_json::json!([]), "{x:#}");
        let r = &x["route"];
        assert_eq!((&r["gateway"], &r["source"], &r["covered"]), (&Value::from(gateway("wlan0", v6)), &Value::from(host_addr("wlan0", v6)), &Value::from(true)), "{x:#}");
        assert_eq!(x["reply"]["ok"], true, "{x:#}");
        assert_eq!(x["profile"], "top level");
        // Port 8080: rule 1, wwan0.
        let (_, x, _) = explain(&[fam.svc(), "8080"]);
        assert_eq!((&x["decision"]["reason"], &x["decision"]["rule"]["label"], &x["decision"]["rule"]["line"]), (&Value::from("rule"), &Value::from("rule 1"), &Value::from(4)), "{x:#}");
        assert_eq!(x["decision"]["interface"], "wwan0", "{x:#}");
        assert_eq!(x["route"]["source"], host_addr("wwan0", v6), "{x:#}");
        // Direct by rule 2: the routing table's choice, eth0 (the lowest metric).
        let direct = if v6 { "2001:db8:ee::1" } else { "192.0.2.1" };
        let (code, x, _) = explain(&[direct, "80"]);
        assert_eq!(code, 0);
        assert_eq!((&x["decision"]["action"], &x["decision"]["rule"]["label"]), (&Value::from("direct"), &Value::from("rule 2")), "{x:#}");
        assert_eq!((&x["route"]["interface"], &x["route"]["source"]), (&Value::from("eth0"), &Value::from(host_addr("eth0", v6))), "{x:#}");
        // Blocked by rule 3: EACCES, exit 1.
        let (code, x, _) = explain(&[fam.svc(), "9"]);
        assert_eq!(code, 1);
        assert_eq!((&x["decision"]["action"], &x["decision"]["errno"], &x["decision"]["rule"]["label"]), (&Value::from("block"), &Value::from("EACCES"), &Value::from("rule 3")), "{x:#}");
        // UDP to 5353: rule 4 (TCP to 5353 is not).
        let (_, x, _) = explain(&["--udp", fam.svc(), "5353"]);
        assert_eq!((&x["protocol"], &x["decision"]["rule"]["label"], &x["decision"]["interface"]), (&Value::from("udp"), &Value::from("rule 4"), &Value::from("eth0")), "{x:#}");
        let (_, x, _) = explain(&[fam.svc(), "5353"]);
        assert_eq!(x["decision"]["interface"], "wlan0", "{x:#}");
        // Exemptions.
        let (_, x, _) = explain(&[fam.lo(), "80"]);
        assert_eq!(x["decision"]["reason"], "loopback", "{x:#}");
        let (_, x, _) = explain(&[host_addr("eth0", v6), "80"]);
        assert_eq!(x["decision"]["reason"], "own_address", "{x:#}");
        // [programs.wget]: eth0.
        let (_, x, _) = explain(&["--program", "wget", fam.svc(), "80"]);
        assert_eq!((&x["profile"], &x["decision"]["interface"]), (&Value::from("programs.wget"), &Value::from("eth0")), "{x:#}");
        // The text names the same.
        let out = tb.run(&mifrun_cmd(&["explain", "--policy", &policy, fam.svc(), "8080"]));
        for n in ["Decision: rule 1 (line 4) matched [wwan0]", &format!("-> bound to wwan0 (index {})", ifindex(&tb, "wwan0")), &format!("via {} src {}", gateway("wwan0", v6), host_addr("wwan0", v6))] {
            assert!(out.stdout.contains(n), "{n:?}:{}", out.dump());
        }
        // wlan0 down: failover to wwan0, and why.
        tb.link_down("wlan0");
        let (code, x, _) = explain(&[fam.svc(), "80"]);
        assert_eq!(code, 0, "{x:#}");
        assert_eq!(x["decision"]["interface"], "wwan0", "{x:#}");
        assert_eq!(x["decision"]["skipped"], serde_json::json!([{"interface": "wlan0", "reason": "is down or has no carrier"}]), "{x:#}");
        assert_eq!(x["route"]["source"], host_addr("wwan0", v6), "{x:#}");
        let out = tb.run(&mifrun_cmd(&["explain", "--policy", &policy, fam.svc(), "80"]));
        assert!(out.stdout.contains("wlan0 skipped: is down or has no carrier (failover)"), "{}", out.dump());
        // What explain said is what a program gets.
        let mut args = vec![s(mifrun()), "--policy".into(), policy.clone(), "--".into()];
        args.extend(curl(&fam.url(80)));
        expect_via(&tb, tb.cmd(&args), "wwan0");
        // Both down: blocked (on_unavailable = "block"), each reason named.
        tb.link_down("wwan0");
        let (code, x, _) = explain(&[fam.svc(), "80"]);
        assert_eq!(code, 1);
        assert_eq!((&x["decision"]["action"], &x["decision"]["reason"], &x["decision"]["errno"]), (&Value::from("block"), &Value::from("unavailable"), &Value::from("ENETUNREACH")), "{x:#}");
        assert_eq!(x["decision"]["skipped"].as_array().unwrap().len(), 2, "{x:#}");
    }
);

both!(
    /// The socket options a destination gets (`source`, `dscp`, `mark`), from the
    /// top level, a program section or the rule that chose the interface, in the text
    /// and the JSON; the route's source is the configured one when the interface has
    /// it, else the kernel's (and explain says so, as the shim does); nothing is added
    /// when no option is configured or the destination is not steered.
    explain_shows_the_socket_options_of_the_destination,
    |fam| {
        let tb = Testbed::up();
        let v6 = fam.v6();
        // Second addresses: the top level's source on wlan0, the rules' on wwan0.
        let (top_src, rule_src) = if v6 { ("2001:db8:20::7", "2001:db8:30::7") } else { ("198.51.100.67", "198.51.100.131") };
        for (a, dev) in [(top_src, "wlan0"), (rule_src, "wwan0")] {
            let pfx = format!("{a}/{}", if v6 { 64 } else { 26 });
            let mut c = vec!["ip", "addr", "add", pfx.as_str(), "dev", dev];
            if v6 {
                c.push("nodad");
            }
            tb.run(&c).assert_ok();
        }
        let tmp = TempDir::new("explain-opts");
        let policy = tmp.write(
            "p.toml",
            &format!(
                r#"via = ["wlan0"]
source = "{top_src}"
dscp = "ef"
mark = 0x10

[[rules]]
ports = [8080]
via = ["wwan0"]
source = "{rule_src}"
dscp = "af41"

[[rules]]
ports = [9002]
via = ["wwan0"]

[[rules]]
ports = [9003]
via = ["wwan0"]
source = "{rule_src}"
dscp = 0
mark = 0

[[rules]]
ports = [9004]
action = "direct"

[programs.wget]
dscp = "cs1"
"#
            ),
        );
        let explain = |extra: &[&str]| {
            let mut a = vec!["explain", "--json", "--policy", policy.as_str()];
            a.extend_from_slice(extra);
            let out = tb.run(&mifrun_cmd(&a));
            assert_eq!(out.code(), 0, "{}", out.dump());
            json_of(&out)
        };
        let text = |extra: &[&str]| {
            let mut a = vec!["explain", "--policy", policy.as_str()];
            a.extend_from_slice(extra);
            let out = tb.run(&mifrun_cmd(&a));
            assert_eq!(out.code(), 0, "{}", out.dump());
            out
        };
        let top = |src: Value| serde_json::json!({
            "source": src,
            "dscp": {"value": 46, "name": "ef", "tos": 184, "from": "the top level"},
            "mark": {"value": 16, "hex": "0x10", "from": "the top level", "on_denied": "block"},
        });
        // The top level's: its source (wlan0 has it) is the route's.
        let x = explain(&[fam.svc(), "80"]);
        assert_eq!(x["options"], top(serde_json::json!({"address": top_src, "on_interface": true, "from": "the top level"})), "{x:#}");
        assert_eq!((&x["route"]["interface"], &x["route"]["source"]), (&Value::from("wlan0"), &Value::from(top_src)), "{x:#}");
        let out = text(&[fam.svc(), "80"]);
        for n in [format!("Options:  source {top_src}; dscp ef (46); mark 0x10  (from the top level)"), format!("via {} src {top_src}  (default route", gateway("wlan0", v6))] {
            assert!(out.stdout.contains(&n), "{n:?}:{}", out.dump());
        }
        // UDP datagrams get them too.
        let x = explain(&["--udp", fam.svc(), "80"]);
        assert_eq!(x["options"]["source"]["address"], top_src, "{x:#}");
        // Rule 1's source and dscp over the top level's; the top level's mark.
        let x = explain(&[fam.svc(), "8080"]);
        assert_eq!(x["options"], serde_json::json!({
            "source": {"address": rule_src, "on_interface": true, "from": "rule 1"},
            "dscp": {"value": 34, "name": "af41", "tos": 136, "from": "rule 1"},
            "mark": {"value": 16, "hex": "0x10", "from": "the top level", "on_denied": "block"},
        }), "{x:#}");
        assert_eq!((&x["route"]["interface"], &x["route"]["source"]), (&Value::from("wwan0"), &Value::from(rule_src)), "{x:#}");
        let out = text(&[fam.svc(), "8080"]);
        for n in [format!("Options:  source {rule_src} (from rule 1); dscp af41 (34) (from rule 1); mark 0x10 (from the top level)"), format!("via {} src {rule_src}  (default route", gateway("wwan0", v6))] {
            assert!(out.stdout.contains(&n), "{n:?}:{}", out.dump());
        }
        // Rule 2 sets none: the top level's, whose source wwan0 lacks; the kernel
        // chooses one of wwan0's own (as `ip route get` says).
        let kernels = kernel_source(&tb, fam.svc(), "wwan0");
        assert!([host_addr("wwan0", v6), rule_src].contains(&kernels.as_str()), "{kernels}");
        let x = explain(&[fam.svc(), "9002"]);
        assert_eq!(x["options"], top(serde_json::json!({"address": top_src, "on_interface": false, "from": "the top level"})), "{x:#}");
        assert_eq!((&x["route"]["interface"], &x["route"]["source"]), (&Value::from("wwan0"), &Value::from(kernels.as_str())), "{x:#}");
        let out = text(&[fam.svc(), "9002"]);
        for n in [format!("Options:  source {top_src} unused: not an address of wwan0, the kernel chooses the source, as the shim does with a warning; dscp ef (46); mark 0x10  (from the top level)"), format!("src {kernels}  (default route")] {
            assert!(out.stdout.contains(&n), "{n:?}:{}", out.dump());
        }
        // Rule 3's zeros override the top level's dscp and mark: only its source.
        let x = explain(&[fam.svc(), "9003"]);
        assert_eq!(x["options"], serde_json::json!({
            "source": {"address": rule_src, "on_interface": true, "from": "rule 3"},
            "dscp": null, "mark": null,
        }), "{x:#}");
        let out = text(&[fam.svc(), "9003"]);
        let n = format!("Options:  source {rule_src}  (from rule 3)\n");
        assert!(out.stdout.contains(&n), "{n:?}:{}", out.dump());
        // [programs.wget]'s dscp; the rest the top level's.
        let x = explain(&["--program", "wget", fam.svc(), "80"]);
        assert_eq!(x["options"]["dscp"], serde_json::json!({"value": 8, "name": "cs1", "tos": 32, "from": "[programs.wget]"}), "{x:#}");
        assert_eq!((&x["options"]["source"]["from"], &x["options"]["mark"]["from"]), (&Value::from("the top level"), &Value::from("the top level")), "{x:#}");
        // Not steered (direct, loopback): no options.
        for dest in [[fam.svc(), "9004"], [fam.lo(), "80"]] {
            let x = explain(&dest);
            assert_eq!(x["options"], Value::Null, "{x:#}");
            let out = text(&dest);
            assert!(!out.stdout.contains("Options:"), "{}", out.dump());
        }
        // No option configured: nothing added, the kernel's source.
        let out = tb.run(&mifrun_cmd(&["explain", "--json", "--via", "wwan0", fam.svc(), "80"]));
        let x = json_of(&out);
        assert_eq!((&x["options"], &x["route"]["source"]), (&Value::Null, &Value::from(kernels.as_str())), "{x:#}");
        let out = tb.run(&mifrun_cmd(&["explain", "--via", "wwan0", fam.svc(), "80"]));
        out.assert_ok();
        assert!(!out.stdout.contains("Options:"), "{}", out.dump());
        // What explain said is what a program gets: curl to port 8080 leaves by wwan0
        // from rule 1's source with its class.
        let mut args = vec![s(mifrun()), "--policy".into(), policy.clone(), "--".into()];
        args.extend(curl(&fam.url(8080)));
        let sn = tb.sniff_all();
        let out = tb.cmd(&args).run();
        let counts = sn.stop();
        // (The upstream saw rule 1's source, not wwan0's first address.)
        out.assert_ok();
        assert!(out.stdout.starts_with("upstream=wwan0 peer="), "{}", out.dump());
        assert!(out.stdout.contains(&format!("peer={}:", fam.url_host(rule_src))), "{}", out.dump());
        assert_only(&counts, "wwan0");
        let sent = counts["wwan0"].to(fam.svc());
        assert!(!sent.is_empty(), "{}", out.dump());
        for p in sent {
            assert_eq!((p.src.to_string(), p.dscp), (rule_src.to_string(), 34), "{p:?}");
        }
    }
);

/// `mifrun --via wlan0 -- prog` when every DNS server known for wlan0 is on eth0's
/// subnet: names would fail later with a bare "temporary failure"; mifrun says so
/// before running, with the fix (and stays quiet when the server is reachable).
#[test]
fn run_warns_when_the_only_dns_server_is_on_another_links_subnet() {
    let tb = Testbed::up();
    tb.set_host_etc("resolv.conf", "nameserver 198.51.100.1\n");
    let out = tb.run(&mifrun_args("wlan0", &["true"]));
    out.assert_ok();
    for n in [
        "mifrun: warning: the DNS server(s) known for wlan0 (from /etc/resolv.conf) are on other links: 198.51.100.1 is on eth0's subnet (198.51.100.0/26); names resolved over wlan0 will not be answered",
        "hint: give wlan0 a server it can reach: --dns ADDR or `[interfaces.wlan0] dns = [\"ADDR\"]`",
    ] {
        assert!(out.stderr.contains(n), "{n:?}:{}", out.dump());
    }
    // eth0 can ask it; --dns gives wlan0 its own: no warning.
    let out = tb.run(&mifrun_args("eth0", &["true"]));
    assert!(!out.stderr.contains("DNS server"), "{}", out.dump());
    let mut args = vec![
        s(mifrun()),
        "--via".into(),
        "wlan0".into(),
        "--dns".into(),
        DNS4.into(),
        "--".into(),
        "true".into(),
    ];
    let out = tb.run(&args);
    assert!(!out.stderr.contains("DNS server"), "{}", out.dump());
    // Only loopback servers (a local stub) and no systemd-resolved: none known.
    tb.set_host_etc("resolv.conf", "nameserver 127.0.0.53\n");
    args.drain(3..5);
    let out = tb.run(&args);
    // (With systemd-resolved running on this machine the shim would ask it instead.)
    let resolved = std::path::Path::new("/run/systemd/resolve/io.systemd.Resolve").exists();
    assert_eq!(
        out.stderr.contains(
            "no DNS server known for wlan0 (/etc/resolv.conf lists only loopback servers)"
        ),
        !resolved,
        "{}",
        out.dump()
    );
}

/// The tests that need the testbed's DNS servers (dnsmasq): `dns::` like the e2e
/// suite's DNS module, so `scripts/test.sh` can name them as not run where dnsmasq
/// cannot start (an unprivileged user namespace).
mod dns {
    use super::*;

    /// Where each interface's DNS servers come from: --dns, the policy, systemd-networkd's
    /// link state, a dhclient lease, /etc/resolv.conf — and the shim uses the same.
    #[test]
    fn status_names_the_source_of_each_dns_server() {
        let tb = Testbed::up();
        let tmp = TempDir::new("dns-sources");
        let policy = tmp.write(
        "p.toml",
        "via = [\"wlan0\"]\n[interfaces.wlan0]\ndns = [\"198.51.100.77\", \"[2001:db8::77]:5353\"]\n",
    );
        let st = json_of(&tb.run(&mifrun_cmd(&["status", "--json", "--policy", &policy])));
        let w = &iface(&st, "wlan0")["dns"];
        assert_eq!(w["source"], "the policy", "{w:#}");
        assert_eq!(
            (&w["servers"][0]["address"], &w["servers"][0]["port"]),
            (&Value::from("198.51.100.77"), &Value::from(53))
        );
        assert_eq!(
            (&w["servers"][1]["address"], &w["servers"][1]["port"]),
            (&Value::from("2001:db8::77"), &Value::from(5353))
        );
        assert_eq!(
            iface(&st, "eth0")["dns"]["source"],
            "/etc/resolv.conf",
            "{st:#}"
        );
        let st = json_of(&tb.run(&mifrun_cmd(&[
            "status", "--json", "--policy", &policy, "--dns", DNS6,
        ])));
        for u in UPLINKS {
            let d = &iface(&st, u)["dns"];
            assert_eq!(
                (&d["source"], &d["servers"][0]["address"]),
                (&Value::from("MIFSHIM_DNS"), &Value::from(DNS6)),
                "{u}: {d:#}"
            );
        }
        // networkd's link state for wwan0 and a dhclient lease for eth0, in a private
        // mount namespace (tmpfs over /run and /var/lib): the host's files stay untouched.
        let wwan0 = ifindex(&tb, "wwan0");
        let script = format!(
            "set -e; mount -t tmpfs mifrun-test /run; mkdir -p /run/systemd/netif/links; \
         printf 'ADMIN_STATE=configured\\nDNS={DNS6}\\n' > /run/systemd/netif/links/{wwan0}; \
         mount -t tmpfs mifrun-test /var/lib; mkdir /var/lib/dhcp; \
         printf 'lease {{\\n  interface \"eth0\";\\n  option domain-name-servers 198.51.100.1;\\n}}\\n' > /var/lib/dhcp/dhclient.eth0.leases; \
         \"$@\""
        );
        let in_ns = |args: &[&str]| {
            let mut v = vec![
                "unshare".to_string(),
                "-m".into(),
                "sh".into(),
                "-c".into(),
                script.clone(),
                "sh".into(),
            ];
            v.extend(mifrun_cmd(args));
            tb.run(&v)
        };
        let out = in_ns(&["status", "--json"]);
        out.assert_ok();
        let st = json_of(&out);
        let m = &iface(&st, "wwan0")["dns"];
        assert_eq!(
            (&m["source"], &m["servers"][0]["address"]),
            (&Value::from("systemd-networkd"), &Value::from(DNS6)),
            "{m:#}"
        );
        assert_eq!(
            m["file"],
            format!("/run/systemd/netif/links/{wwan0}"),
            "{m:#}"
        );
        let e = &iface(&st, "eth0")["dns"];
        assert_eq!(
            (&e["source"], &e["servers"][0]["address"]),
            (&Value::from("dhclient lease"), &Value::from("198.51.100.1")),
            "{e:#}"
        );
        assert_eq!(e["file"], "/var/lib/dhcp/dhclient.eth0.leases", "{e:#}");
        assert_eq!(
            iface(&st, "wlan0")["dns"]["source"],
            "/etc/resolv.conf",
            "{st:#}"
        );
        let out = in_ns(&["status"]);
        assert!(
            out.stdout
                .contains(&format!("DNS   {DNS6} (systemd-networkd)")),
            "{}",
            out.dump()
        );
        // The shim asks the server status named, over wwan0: wwan0's dnsmasq answers
        // who.mif.test with 192.0.2.3, over IPv6.
        let out = in_ns(&["explain", "--via", "wwan0", "--json", "who.mif.test", "80"]);
        out.assert_ok();
        let x = json_of(&out);
        assert_eq!(x["dns"]["source"], "systemd-networkd", "{x:#}");
        assert_eq!(x["servers"][0]["address"], DNS6, "{x:#}");
        assert_eq!(x["servers"][0]["answered"], true, "{x:#}");
        let addrs = x["lookup"]["addresses"].as_array().unwrap();
        assert!(addrs.iter().any(|a| a == "192.0.2.3"), "{x:#}");
        assert!(addrs.iter().any(|a| a == "2001:db8:ee::3"), "{x:#}");
        assert!(
            x["lookup"]["shim_log"].as_array().unwrap().iter().any(|l| l
                .as_str()
                .unwrap()
                .contains(&format!("with {DNS6} from systemd-networkd"))),
            "{x:#}"
        );
        assert!(
            tb.dns_log("wwan0").contains("who.mif.test"),
            "wwan0's dnsmasq was asked"
        );
        assert!(
            !tb.dns_log("eth0").contains("who.mif.test"),
            "eth0's dnsmasq was not"
        );
    }

    /// A name: the servers asked over the chosen link, each one's answer, the lookup the
    /// program gets (under the shim), and the chain for each address — all over wlan0.
    #[test]
    fn explain_resolves_a_name_over_the_chosen_link() {
        let tb = Testbed::up();
        let out = tb.run(&mifrun_cmd(&[
            "explain",
            "--via",
            "wlan0",
            "--json",
            "who.mif.test",
            "80",
        ]));
        out.assert_ok();
        let x = json_of(&out);
        assert_eq!(
            (&x["decision"]["action"], &x["decision"]["interface"]),
            (&Value::from("bind"), &Value::from("wlan0")),
            "{x:#}"
        );
        assert_eq!(x["dns"]["source"], "/etc/resolv.conf", "{x:#}");
        let s0 = &x["servers"][0];
        assert_eq!(
            (&s0["address"], &s0["answered"]),
            (&Value::from(DNS4), &Value::from(true)),
            "{x:#}"
        );
        let addrs: Vec<&str> = x["lookup"]["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        // who.mif.test names the server that answered: wlan0's is number 2.
        assert!(
            addrs.contains(&"192.0.2.2") && addrs.contains(&"2001:db8:ee::2"),
            "{x:#}"
        );
        for a in x["addresses"].as_array().unwrap() {
            assert_eq!(a["decision"]["interface"], "wlan0", "{a:#}");
        }
        assert!(tb.dns_log("wlan0").contains("who.mif.test"));
        for other in ["eth0", "wwan0"] {
            assert!(
                !tb.dns_log(other).contains("who.mif.test"),
                "{other}'s server was asked"
            );
        }
        let out = tb.run(&mifrun_cmd(&["explain", "--via", "wlan0", "who.mif.test"]));
        for n in [
            format!("DNS:      {DNS4} (/etc/resolv.conf)"),
            format!("{DNS4} over wlan0: answered"),
            "shim: resolve who.mif.test over wlan0".into(),
        ] {
            assert!(out.stdout.contains(&n), "{n:?}:{}", out.dump());
        }
    }

    /// The only server known is on eth0's subnet: a name over wlan0 fails, and explain and
    /// doctor say so and point at `--dns` / `[interfaces.wlan0] dns`; with `--dns` it works.
    #[test]
    fn name_failing_because_the_only_server_is_on_eth0s_subnet_names_the_fix() {
        let tb = Testbed::up();
        tb.set_host_etc("resolv.conf", "nameserver 198.51.100.1\nsearch mif.test\n");
        let out = tb.run(&mifrun_cmd(&["explain", "--via", "wlan0", "who.mif.test"]));
        out.assert_code(1);
        for n in [
            "198.51.100.1 over wlan0: NO ANSWER",
            "198.51.100.1 is on eth0's subnet (198.51.100.0/26): asked through wlan0 it is not reachable",
            "`mifrun --dns ADDR` or `[interfaces.wlan0] dns = [\"ADDR\"]`",
            "-> failed: ",
        ] {
            assert!(out.stdout.contains(n), "{n:?}:{}", out.dump());
        }
        let x = json_of(&tb.run(&mifrun_cmd(&[
            "explain",
            "--json",
            "--via",
            "wlan0",
            "who.mif.test",
        ])));
        assert_eq!(
            (&x["servers"][0]["answered"], &x["lookup"]["eai"]),
            (&Value::from(false), &Value::from("EAI_AGAIN")),
            "{x:#}"
        );
        let out = tb.run(&mifrun_cmd(&[
            "doctor",
            "--via",
            "wlan0",
            "--name",
            "who.mif.test",
        ]));
        out.assert_code(1);
        assert!(
            out.stdout
                .contains("[FAIL] dns wlan0: 198.51.100.1 (from /etc/resolv.conf) gave no answer"),
            "{}",
            out.dump()
        );
        assert!(
            out.stdout.contains("fix: 198.51.100.1 is on eth0's subnet"),
            "{}",
            out.dump()
        );
        // The fix works.
        let x = json_of(&tb.run(&mifrun_cmd(&[
            "explain",
            "--json",
            "--via",
            "wlan0",
            "--dns",
            DNS4,
            "who.mif.test",
        ])));
        assert_eq!(
            (&x["dns"]["source"], &x["servers"][0]["answered"]),
            (&Value::from("MIFSHIM_DNS"), &Value::from(true)),
            "{x:#}"
        );
        assert!(
            x["lookup"]["addresses"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "192.0.2.2"),
            "{x:#}"
        );
    }

    /// Strict reverse-path filtering on wlan0 drops the replies to sockets bound to it
    /// (curl times out); explain and doctor say so with the sysctl that fixes it, and
    /// after it curl works. IPv6 has no such filter.
    #[test]
    fn strict_rp_filter_on_the_link_drops_replies_and_is_reported() {
        let tb = Testbed::up();
        tb.run(&["sysctl", "-qw", "net.ipv4.conf.wlan0.rp_filter=1"])
            .assert_ok();
        let mut args = vec![s(mifrun()), "--via".into(), "wlan0".into(), "--".into()];
        args.extend(["curl", "-sS", "--max-time", "2", "http://203.0.113.10/"].map(String::from));
        let out = tb.run(&args);
        assert!(!out.ok(), "replies were dropped:{}", out.dump());
        let out = tb.run(&mifrun_cmd(&["explain", "--via", "wlan0", SVC4, "80"]));
        out.assert_code(1);
        for n in [
            "Reply:    DROPPED: strict reverse-path filtering on wlan0 (net.ipv4.conf.all.rp_filter = 0, net.ipv4.conf.wlan0.rp_filter = 1",
            "the route back to 203.0.113.10 goes through eth0",
            "`sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.wlan0.rp_filter=2`",
        ] {
            assert!(out.stdout.contains(n), "{n:?}:{}", out.dump());
        }
        let x = json_of(&tb.run(&mifrun_cmd(&[
            "explain", "--json", "--via", "wlan0", SVC4, "80",
        ])));
        assert_eq!(
            (
                &x["reply"]["ok"],
                &x["reply"]["error"],
                &x["reply"]["rp_filter"]["effective"]
            ),
            (
                &Value::from(false),
                &Value::from("rp_filter"),
                &Value::from(1)
            ),
            "{x:#}"
        );
        let x = json_of(&tb.run(&mifrun_cmd(&[
            "explain", "--json", "--via", "wlan0", SVC6, "80",
        ])));
        assert_eq!(x["reply"]["ok"], true, "IPv6: {x:#}");
        let d = json_of(&tb.run(&mifrun_cmd(&[
            "doctor",
            "--json",
            "--via",
            "wlan0",
            "--name",
            "web.mif.test",
        ])));
        let rp = d["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "rp_filter")
            .expect("rp_filter check");
        assert_eq!(
            (&rp["verdict"], &rp["interface"]),
            (&Value::from("fail"), &Value::from("wlan0")),
            "{d:#}"
        );
        assert!(
            rp["fix"]
                .as_str()
                .unwrap()
                .contains("net.ipv4.conf.wlan0.rp_filter=2"),
            "{d:#}"
        );
        // The DNS server's replies are dropped too, and the hint says why.
        let dns = d["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "dns")
            .expect("dns check");
        assert_eq!(dns["verdict"], "fail", "{d:#}");
        assert!(
            dns["fix"]
                .as_str()
                .unwrap()
                .contains("strict reverse-path filtering on wlan0"),
            "{d:#}"
        );
        assert_eq!(d["ok"], false);
        // The fix: loose mode. explain, doctor and curl agree.
        tb.run(&["sysctl", "-qw", "net.ipv4.conf.wlan0.rp_filter=2"])
            .assert_ok();
        let x = json_of(&tb.run(&mifrun_cmd(&[
            "explain", "--json", "--via", "wlan0", SVC4, "80",
        ])));
        assert_eq!(x["reply"]["ok"], true, "{x:#}");
        expect_via(
            &tb,
            tb.cmd(&mifrun_args("wlan0", &curl("http://203.0.113.10/"))),
            "wlan0",
        );
    }

    /// The kernel's own answers to a datagram and to a SYN for a closed port (ICMP port
    /// unreachable, TCP RST, from wlan0's address) belong to no socket: they leave by
    /// the main table's route, eth0, until `mifrun source-rules --apply` sends them
    /// back by wlan0. doctor warns of it and names that command, and says ok once the
    /// rules are there; `--remove` takes them away. The wire agrees each time, v4 and v6.
    #[test]
    fn the_kernels_own_answers_leave_by_eth0_until_source_rules_and_doctor_says_so() {
        let tb = Testbed::up();
        let replies = |tb: &Testbed| -> Vec<Value> {
            let d = json_of(&tb.run(&mifrun_cmd(&["doctor", "--json", "--via", "wlan0"])));
            d["checks"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["check"] == "kernel replies")
                .cloned()
                .collect()
        };
        // From the service address, through wlan0, to ports nobody has: a late
        // datagram and a SYN, three of each, 0.6 s apart (the kernel rate-limits ICMP
        // errors per destination, about one a second, and an IPv6 one may wait for
        // neighbour discovery).
        let late_replies = |tb: &Testbed| {
            let sn = tb.sniff_all();
            let script = format!(
                r#"import socket, time
for i in range(3):
    for fam, src, dst in ((socket.AF_INET, {SVC4:?}, {h4:?}), (socket.AF_INET6, {SVC6:?}, {h6:?})):
        s = socket.socket(fam, socket.SOCK_DGRAM); s.bind((src, 0)); s.sendto(b'late', (dst, 55555))
        t = socket.socket(fam, socket.SOCK_STREAM); t.bind((src, 0)); t.settimeout(0.2)
        try:
            t.connect((dst, 55556))
        except OSError:
            pass
        t.close()
    time.sleep(0.6)
"#,
                h4 = host_addr("wlan0", false),
                h6 = host_addr("wlan0", true),
            );
            tb.cmd_upstream("wlan0", &["python3", "-c", &script])
                .run()
                .assert_ok();
            sn.stop()
        };
        let from_host = |p: &Pkt, v6: bool| {
            p.src.to_string() == host_addr("wlan0", v6)
                && p.dst.to_string() == if v6 { SVC6 } else { SVC4 }
        };
        let unreachable = |c: &Counts, v6: bool| c.icmp.iter().filter(|p| from_host(p, v6)).count();
        let resets = |c: &Counts, v6: bool| {
            c.pkts
                .iter()
                .filter(|p| p.proto == 6 && p.tcp_flags & 0x04 != 0 && from_host(p, v6))
                .count()
        };
        let leave_by = |counts: &std::collections::BTreeMap<String, Counts>, link: &str| {
            for v6 in [false, true] {
                assert!(unreachable(&counts[link], v6) >= 1, "v6 {v6}: {counts:#?}");
                assert!(resets(&counts[link], v6) >= 1, "v6 {v6}: {counts:#?}");
                for other in ["eth0", "wlan0", "wwan0"]
                    .into_iter()
                    .filter(|o| *o != link)
                {
                    assert_eq!(unreachable(&counts[other], v6), 0, "v6 {v6}: {counts:#?}");
                    assert_eq!(resets(&counts[other], v6), 0, "v6 {v6}: {counts:#?}");
                }
            }
        };
        let r = replies(&tb);
        assert_eq!(r.len(), 2, "IPv4 and IPv6: {r:#?}");
        for (c, v6) in r.iter().zip([false, true]) {
            assert_eq!(c["verdict"], "warn", "{r:#?}");
            let detail = c["detail"].as_str().unwrap();
            assert!(
                detail.contains(host_addr("wlan0", v6)) && detail.contains("leave by eth0"),
                "{r:#?}"
            );
            assert!(
                c["fix"]
                    .as_str()
                    .unwrap()
                    .contains("`mifrun source-rules --via wlan0 --apply`"),
                "{r:#?}"
            );
        }
        leave_by(&late_replies(&tb), "eth0");
        // Printed, not made: nothing changes.
        let dry = tb.run(&mifrun_cmd(&["source-rules", "--via", "wlan0"]));
        dry.assert_ok();
        assert!(
            dry.stdout.contains(&format!(
                "rule add from {}/32 priority 31000",
                host_addr("wlan0", false)
            )) && dry.stdout.contains("not done"),
            "{}",
            dry.dump()
        );
        assert!(replies(&tb).iter().all(|c| c["verdict"] == "warn"));
        // Made; a second run has nothing to do.
        tb.run(&mifrun_cmd(&["source-rules", "--via", "wlan0", "--apply"]))
            .assert_ok();
        let again = tb.run(&mifrun_cmd(&["source-rules", "--via", "wlan0", "--apply"]));
        assert!(
            again.stdout.starts_with("nothing to do"),
            "{}",
            again.dump()
        );
        let r = replies(&tb);
        assert!(
            r.len() == 2
                && r.iter().all(|c| c["verdict"] == "ok"
                    && c["detail"]
                        .as_str()
                        .unwrap()
                        .contains("leave by wlan0 (table 1000")),
            "{r:#?}"
        );
        leave_by(&late_replies(&tb), "wlan0");
        // A steered program still reaches its upstream by wlan0 with the rules in place.
        for url in ["http://203.0.113.10/", "http://[2001:db8:ff::10]/"] {
            expect_via(&tb, tb.cmd(&mifrun_args("wlan0", &curl(url))), "wlan0");
        }
        // Taken away: back to the main table's route.
        tb.run(&mifrun_cmd(&["source-rules", "--via", "wlan0", "--remove"]))
            .assert_ok();
        assert!(replies(&tb).iter().all(|c| c["verdict"] == "warn"));
        let rules = tb.run(&["ip", "rule"]);
        assert!(!rules.stdout.contains("lookup 1000"), "{}", rules.dump());
    }

    /// doctor: each check with its verdict (and a fix where one is needed).
    #[test]
    fn doctor_checks_routes_dns_and_the_system() {
        let tb = Testbed::up();
        let out = tb.run(&mifrun_cmd(&[
            "doctor",
            "--json",
            "--via",
            "wlan0",
            "--name",
            "web.mif.test",
        ]));
        out.assert_ok();
        let d = json_of(&out);
        assert_eq!(d["ok"], true, "{d:#}");
        let checks = d["checks"].as_array().unwrap();
        let find =
            |name: &str| -> Vec<&Value> { checks.iter().filter(|c| c["check"] == name).collect() };
        let i = find("interface");
        assert_eq!(i[0]["verdict"], "ok");
        assert!(
            i[0]["detail"]
                .as_str()
                .unwrap()
                .starts_with(&format!("index {};", ifindex(&tb, "wlan0"))),
            "{d:#}"
        );
        let routes = find("route");
        assert_eq!(routes.len(), 2, "IPv4 and IPv6: {d:#}");
        assert!(routes.iter().all(|r| r["verdict"] == "ok"));
        assert!(
            routes[0]["detail"]
                .as_str()
                .unwrap()
                .contains("via 198.51.100.65 metric 600"),
            "{d:#}"
        );
        assert!(
            routes[1]["detail"]
                .as_str()
                .unwrap()
                .contains("via 2001:db8:20::1 metric 600"),
            "{d:#}"
        );
        assert_eq!(find("rp_filter")[0]["verdict"], "ok");
        let dns = find("dns");
        assert_eq!(dns[0]["verdict"], "ok", "{d:#}");
        assert_eq!(
            dns[0]["detail"],
            format!("{DNS4} (from /etc/resolv.conf) answered `web.mif.test` over wlan0")
        );
        assert!(tb.wait_dns_log("wlan0", "web.mif.test", std::time::Duration::from_secs(2)));
        assert_eq!(find("systemd-resolved")[0]["verdict"], "info");
        let glibc = tb.run(&["getconf", "GNU_LIBC_VERSION"]);
        let version = glibc.stdout.trim().trim_start_matches("glibc ").to_string();
        assert!(
            find("glibc")[0]["detail"]
                .as_str()
                .unwrap()
                .starts_with(&version),
            "{version}: {d:#}"
        );
        for c in ["seccomp", "ptrace", "user namespaces", "library"] {
            let v = &find(c)[0]["verdict"];
            assert!(v == "ok" || v == "info" || v == "warn", "{c}: {d:#}");
        }
        // No IPv4 default route through wlan0: a warning with the command that adds one.
        tb.run(&["ip", "route", "del", "default", "dev", "wlan0"])
            .assert_ok();
        let d = json_of(&tb.run(&mifrun_cmd(&[
            "doctor",
            "--json",
            "--via",
            "wlan0",
            "--name",
            "web.mif.test",
        ])));
        let r = d["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "route" && c["verdict"] == "warn")
            .expect("a route warning");
        assert!(
            r["detail"]
                .as_str()
                .unwrap()
                .starts_with("no IPv4 default route through wlan0"),
            "{d:#}"
        );
        assert!(
            r["fix"]
                .as_str()
                .unwrap()
                .contains("ip route add default via GATEWAY dev wlan0 metric 600"),
            "{d:#}"
        );
        // A missing interface fails, exit 1.
        let out = tb.run(&mifrun_cmd(&["doctor", "--via", "nosuch0"]));
        out.assert_code(1);
        assert!(
            out.stdout
                .contains("[FAIL] interface nosuch0: does not exist"),
            "{}",
            out.dump()
        );
    }
}
