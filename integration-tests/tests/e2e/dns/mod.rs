//! Name resolution over the chosen interface, against the dnsmasq servers of the testbed.
//!
//! Every upstream runs a dnsmasq on 203.0.113.53 / 2001:db8:ff::53 whose answer for
//! `who.mif.test` names it (192.0.2.N, 2001:db8:ee::N; N = 1 eth0, 2 wlan0, 3 wwan0), and the
//! host namespace's resolv.conf says `nameserver 203.0.113.53`, `search mif.test`. Each test
//! proves which server answered (the address, and the dnsmasq query log) and, with the
//! sniffers, that no TCP/UDP packet (so no DNS) used the other uplinks.

use super::*;
use std::time::Instant;

/// `who.mif.test` as answered by the dnsmasq upstream of `uplink`.
fn who4(uplink: &str) -> &'static str {
    match uplink {
        "eth0" => "192.0.2.1",
        "wlan0" => "192.0.2.2",
        "wwan0" => "192.0.2.3",
        _ => panic!("unknown uplink {uplink}"),
    }
}

fn who6(uplink: &str) -> &'static str {
    match uplink {
        "eth0" => "2001:db8:ee::1",
        "wlan0" => "2001:db8:ee::2",
        "wwan0" => "2001:db8:ee::3",
        _ => panic!("unknown uplink {uplink}"),
    }
}

/// `mifrun --via VIA -- PROG…`.
fn via(v: &str, prog: &[&str]) -> Vec<String> {
    mifrun_args(v, &strs(prog))
}

/// The distinct addresses (first column) of `getent ahosts` output, in order.
fn getent_addrs(out: &Out) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for l in out.stdout.lines() {
        if let Some(a) = l.split_whitespace().next()
            && !v.iter().any(|x| x == a)
        {
            v.push(a.to_string());
        }
    }
    v
}

/// The query lines for `name` in the dnsmasq log of `uplink`, without the testbed's own
/// readiness probes (sent from the server's address inside the upstream namespace).
fn queries(tb: &Testbed, uplink: &str, name: &str) -> Vec<String> {
    let needle = format!(" {name} from ");
    tb.dns_log(uplink)
        .lines()
        .filter(|l| l.contains("query[") && l.contains(&needle))
        .filter(|l| !l.ends_with(&format!("from {DNS4}")) && !l.ends_with(&format!("from {DNS6}")))
        .map(str::to_string)
        .collect()
}

/// Asserts that the dnsmasq log of `uplink` shows a query for `name` and that no other
/// upstream's log does.
#[track_caller]
fn assert_asked_only(tb: &Testbed, uplink: &str, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while queries(tb, uplink, name).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !queries(tb, uplink, name).is_empty(),
        "{uplink}'s dnsmasq did not log a query for {name}:\n{}",
        tb.dns_log(uplink)
    );
    for u in UPLINKS {
        if u != uplink {
            let q = queries(tb, u, name);
            assert!(q.is_empty(), "{u}'s dnsmasq was asked for {name}: {q:#?}");
        }
    }
}

/// Asserts that no dnsmasq log shows a query for `name`.
#[track_caller]
fn assert_asked_nobody(tb: &Testbed, name: &str) {
    for u in UPLINKS {
        let q = queries(tb, u, name);
        assert!(q.is_empty(), "{u}'s dnsmasq was asked for {name}: {q:#?}");
    }
}

/// Runs `cmd` with the sniffers on; returns the output and the counts.
fn sniffed(tb: &Testbed, cmd: Cmd) -> (Out, std::collections::BTreeMap<String, Counts>) {
    let sn = tb.sniff_all();
    let out = cmd.run();
    (out, sn.stop())
}

/// python3 -c CODE ARGS… as an argv.
fn py(code: &str, args: &[&str]) -> Vec<String> {
    let mut v = strs(&["python3", "-c", code]);
    v.extend(strs(args));
    v
}

const PY_GAI: &str = "import socket, sys\n\
for r in socket.getaddrinfo(sys.argv[1], 80, type=socket.SOCK_STREAM):\n    print(r[0].name, r[4][0])";

const PY_GAI_ERR: &str = "import socket, sys\n\
try:\n    socket.getaddrinfo(sys.argv[1], 80)\n    print('resolved')\n\
except socket.gaierror as e:\n    print('errno', e.errno, 'NONAME', socket.EAI_NONAME, 'AGAIN', socket.EAI_AGAIN)";

/// Case 1: Without the shim, glibc asks 203.0.113.53 by the default route: eth0's server.
#[test]
fn baseline_getent_without_shim_asks_eth0_server() {
    let tb = Testbed::up();
    let (out, counts) = sniffed(&tb, tb.cmd(&["getent", "ahosts", "who.mif.test"]));
    out.assert_ok();
    let a = getent_addrs(&out);
    assert!(a.contains(&who4("eth0").to_string()), "{}", out.dump());
    assert_only(&counts, "eth0");
    assert_asked_only(&tb, "eth0", "who.mif.test");
}

both!(
    /// Case 2: `getent ahosts` under `--via wlan0` is answered by wlan0's server only. IPv4: the
    /// server from resolv.conf; IPv6: `--dns 2001:db8:ff::53`, so the query itself is IPv6.
    getent_via_wlan0_asks_wlan0_server, |fam| {
        let tb = Testbed::up();
        let mut argv = strs(&[&s(mifrun()), "--via", "wlan0"]);
        if fam.v6() {
            argv.extend(strs(&["--dns", DNS6]));
        }
        argv.extend(strs(&["--", "getent", "ahosts", "who.mif.test"]));
        let (out, counts) = sniffed(&tb, tb.cmd(&argv));
        out.assert_ok();
        let a = getent_addrs(&out);
        assert!(a.contains(&who4("wlan0").to_string()), "{}", out.dump());
        assert!(a.contains(&who6("wlan0").to_string()), "{}", out.dump());
        assert_eq!(a.len(), 2, "{}", out.dump());
        assert_only(&counts, "wlan0");
        assert_asked_only(&tb, "wlan0", "who.mif.test");
        let from = format!("who.mif.test from {}", host_addr("wlan0", fam.v6()));
        assert!(tb.dns_log("wlan0").contains(&from), "expected `{from}`:\n{}", tb.dns_log("wlan0"));
    }
);

mod clients_by_name {
    use super::*;

    both!(
        /// Case 3: curl by name: the name and the connection both go over wwan0.
        curl_by_name_via_wwan0, |fam| {
            let tb = Testbed::up();
            let flag = if fam.v6() { "-6" } else { "-4" };
            let a = strs(&["curl", flag, "-sS", "--max-time", "5", "http://web.mif.test/"]);
            expect_via(&tb, tb.cmd(&mifrun_args("wwan0", &a)), "wwan0");
            assert_asked_only(&tb, "wwan0", "web.mif.test");
        }
    );

    both!(
        /// Case 3: wget by name via wwan0.
        wget_by_name_via_wwan0, |fam| {
            let tb = Testbed::up();
            let flag = if fam.v6() { "-6" } else { "-4" };
            let a = strs(&["wget", flag, "-q", "-O", "-", "-T", "5", "-t", "1", "http://web.mif.test/"]);
            expect_via(&tb, tb.cmd(&mifrun_args("wwan0", &a)), "wwan0");
            assert_asked_only(&tb, "wwan0", "web.mif.test");
        }
    );

    /// Case 3: python `socket.getaddrinfo` via wlan0: both families, wlan0's answers.
    #[test]
    fn python_getaddrinfo_via_wlan0() {
        let tb = Testbed::up();
        let (out, counts) = sniffed(
            &tb,
            tb.cmd(&mifrun_args("wlan0", &py(PY_GAI, &["who.mif.test"]))),
        );
        out.assert_ok();
        assert!(
            out.stdout.contains(&format!("AF_INET {}", who4("wlan0"))),
            "{}",
            out.dump()
        );
        assert!(
            out.stdout.contains(&format!("AF_INET6 {}", who6("wlan0"))),
            "{}",
            out.dump()
        );
        assert_only(&counts, "wlan0");
        assert_asked_only(&tb, "wlan0", "who.mif.test");
    }

    /// Case 3: python `socket.gethostbyname` via wlan0.
    #[test]
    fn python_gethostbyname_via_wlan0() {
        let tb = Testbed::up();
        let code = "import socket, sys; print(socket.gethostbyname(sys.argv[1]))";
        let (out, counts) = sniffed(
            &tb,
            tb.cmd(&mifrun_args("wlan0", &py(code, &["who.mif.test"]))),
        );
        out.assert_ok();
        assert_eq!(out.stdout.trim(), who4("wlan0"), "{}", out.dump());
        assert_only(&counts, "wlan0");
        assert_asked_only(&tb, "wlan0", "who.mif.test");
    }

    /// Case 3: node `dns.lookup(name, {all: true})` (getaddrinfo in libuv's thread pool).
    #[test]
    fn node_dns_lookup_via_wlan0() {
        let tb = Testbed::up();
        let code = "require('dns').lookup(process.argv[1], {all: true}, (e, a) => { \
                    if (e) { console.error(e.code); process.exit(1); } \
                    for (const x of a) console.log(x.family, x.address); })";
        let a = strs(&["node", "-e", code, "who.mif.test"]);
        let (out, counts) = sniffed(&tb, tb.cmd(&mifrun_args("wlan0", &a)));
        out.assert_ok();
        assert!(
            out.stdout.contains(&format!("4 {}", who4("wlan0"))),
            "{}",
            out.dump()
        );
        assert!(
            out.stdout.contains(&format!("6 {}", who6("wlan0"))),
            "{}",
            out.dump()
        );
        assert_only(&counts, "wlan0");
        assert_asked_only(&tb, "wlan0", "who.mif.test");
    }
}

/// Case 4: Split DNS: `*.corp.mif.test` resolves over wwan0, the rest over wlan0; the addresses
/// learned for a corp name follow the name rule (curl to web.corp answered by wwan0).
#[test]
fn split_dns_name_rule_and_learned_address() {
    let tb = Testbed::up();
    let dir = TempDir::new("dns-split");
    let pol = dir.write(
        "policy.toml",
        "via = [\"wlan0\"]\n\n[[rules]]\nnames = [\"*.corp.mif.test\"]\nvia = [\"wwan0\"]\n",
    );
    let getent = |name: &str| {
        let a = strs(&["getent", "ahostsv4", name]);
        let out = tb.cmd(&mifrun_policy_args(&pol, &a)).run();
        out.assert_ok();
        getent_addrs(&out)
    };
    assert_eq!(getent("who.corp.mif.test"), ["192.0.2.13"]);
    assert_eq!(getent("who.mif.test"), [who4("wlan0")]);
    assert_asked_only(&tb, "wwan0", "who.corp.mif.test");
    assert_asked_only(&tb, "wlan0", "who.mif.test");

    let c = |url: &str| strs(&["curl", "-4", "-sS", "--max-time", "5", url]);
    expect_via(
        &tb,
        tb.cmd(&mifrun_policy_args(&pol, &c("http://web.corp.mif.test/"))),
        "wwan0",
    );
    expect_via(
        &tb,
        tb.cmd(&mifrun_policy_args(&pol, &c("http://web.mif.test/"))),
        "wlan0",
    );
}

/// Case 5: An unknown name: NXDOMAIN from wlan0's server -> getent exits 2, EAI_NONAME.
#[test]
fn unknown_name_is_eai_noname() {
    let tb = Testbed::up();
    let (out, counts) = sniffed(
        &tb,
        tb.cmd(&via("wlan0", &["getent", "ahosts", "nope.mif.test"])),
    );
    out.assert_code(2);
    assert_only(&counts, "wlan0");
    let (out, counts) = sniffed(
        &tb,
        tb.cmd(&mifrun_args("wlan0", &py(PY_GAI_ERR, &["nope.mif.test"]))),
    );
    out.assert_ok();
    let w: Vec<&str> = out.stdout.split_whitespace().collect();
    assert!(
        w.len() == 6 && w[1] == w[3],
        "expected EAI_NONAME:{}",
        out.dump()
    );
    assert_only(&counts, "wlan0");
    assert_asked_only(&tb, "wlan0", "nope.mif.test");
}

/// Case 6: A server that never answers: EAI_AGAIN within the policy's bound (300 ms x 2 rounds,
/// doubling: well under 5 s), nothing on eth0/wwan0, and a warning naming the server (15).
#[test]
fn silent_server_is_eai_again_within_bound() {
    let tb = Testbed::up();
    let dir = TempDir::new("dns-silent");
    let pol = dir.write(
        "policy.toml",
        &format!(
            "via = [\"wlan0\"]\n\n[interfaces.wlan0]\ndns = [\"{DNS_SILENT}\"]\n\n[dns]\ntimeout_ms = 300\nattempts = 2\n"
        ),
    );
    let sn = tb.sniff_all();
    let t0 = Instant::now();
    let out = tb
        .cmd(&mifrun_policy_args(
            &pol,
            &py(PY_GAI_ERR, &["who.mif.test"]),
        ))
        .run();
    let took = t0.elapsed();
    let counts = sn.stop();
    out.assert_ok();
    let w: Vec<&str> = out.stdout.split_whitespace().collect();
    assert!(
        w.len() == 6 && w[1] == w[5],
        "expected EAI_AGAIN:{}",
        out.dump()
    );
    assert!(
        took < Duration::from_secs(5),
        "took {took:?}:{}",
        out.dump()
    );
    assert_none_on(&counts, &["eth0", "wwan0"]);
    let wl = &counts["wlan0"];
    assert!(
        wl.udp > 0
            && wl
                .first
                .iter()
                .all(|f| f.contains(&format!("{DNS_SILENT}:53"))),
        "expected only queries to {DNS_SILENT}:53 on wlan0: {counts:#?}"
    );
    assert!(
        out.stderr.contains("no answer from") && out.stderr.contains(DNS_SILENT),
        "expected a warning naming {DNS_SILENT}:{}",
        out.dump()
    );
    assert_asked_nobody(&tb, "who.mif.test");
}

/// Case 7: A truncated UDP answer (60 A records, no EDNS) is retried over TCP: all 60 come back.
#[test]
fn truncated_answer_retried_over_tcp() {
    let tb = Testbed::up();
    let (out, counts) = sniffed(
        &tb,
        tb.cmd(&via("wlan0", &["getent", "ahostsv4", "big.mif.test"])),
    );
    out.assert_ok();
    let a = getent_addrs(&out);
    assert_eq!(a.len(), 60, "{}", out.dump());
    assert!(
        a.iter().all(|x| x.starts_with("198.18.0.")),
        "{}",
        out.dump()
    );
    assert_only(&counts, "wlan0");
    assert!(
        counts["wlan0"].tcp > 0,
        "no TCP to port 53 on wlan0: {counts:#?}"
    );
    assert!(
        counts["wlan0"]
            .first
            .iter()
            .any(|f| f.starts_with("tcp ") && f.ends_with(":53")),
        "no TCP to port 53 among the first packets: {counts:#?}"
    );
    assert_asked_only(&tb, "wlan0", "big.mif.test");
}

/// Case 8: An interface without global IPv6 keeps only IPv4 answers. The kernel keeps the fe80::
/// address after the flush; a link-local address alone cannot reach a global AAAA answer,
/// so it must not count as "the interface has IPv6".
#[test]
fn v4_only_link_filters_aaaa_despite_link_local_v6() {
    let tb = Testbed::up();
    tb.run(&[
        "ip", "-6", "addr", "flush", "dev", "wwan0", "scope", "global",
    ])
    .assert_ok();
    // Link state is re-read at most once a second.
    std::thread::sleep(Duration::from_millis(1200));
    let (out, counts) = sniffed(
        &tb,
        tb.cmd(&via("wwan0", &["getent", "ahosts", "web.mif.test"])),
    );
    out.assert_ok();
    assert_eq!(getent_addrs(&out), [SVC4], "{}", out.dump());
    assert_only(&counts, "wwan0");
    let (out, counts) = sniffed(
        &tb,
        tb.cmd(&mifrun_args("wwan0", &py(PY_GAI, &["web.mif.test"]))),
    );
    out.assert_ok();
    assert_eq!(
        out.stdout.trim(),
        format!("AF_INET {SVC4}"),
        "{}",
        out.dump()
    );
    assert_only(&counts, "wwan0");
}

/// Case 9: Names in /etc/hosts go to glibc: no DNS packet anywhere.
#[test]
fn etc_hosts_wins_without_dns() {
    let tb = Testbed::up();
    let (out, counts) = sniffed(
        &tb,
        tb.cmd(&via("wlan0", &["getent", "ahosts", "fromhosts.mif.test"])),
    );
    out.assert_ok();
    assert_eq!(getent_addrs(&out), ["198.51.100.200"], "{}", out.dump());
    assert_silent(&counts);
    std::thread::sleep(Duration::from_millis(200));
    assert_asked_nobody(&tb, "fromhosts.mif.test");
}

/// Case 10: A CNAME chain with AI_CANONNAME: the canonical name is the target.
#[test]
fn cname_with_ai_canonname() {
    let tb = Testbed::up();
    let code = "import socket, sys\n\
r = socket.getaddrinfo(sys.argv[1], 80, socket.AF_INET, socket.SOCK_STREAM, 0, socket.AI_CANONNAME)\n\
print(r[0][3], r[0][4][0])";
    let (out, counts) = sniffed(
        &tb,
        tb.cmd(&mifrun_args("wlan0", &py(code, &["cname.mif.test"]))),
    );
    out.assert_ok();
    assert_eq!(
        out.stdout.trim(),
        format!("web.mif.test {SVC4}"),
        "{}",
        out.dump()
    );
    assert_only(&counts, "wlan0");
    assert_asked_only(&tb, "wlan0", "cname.mif.test");
}

/// Case 11: A single-label name gets the `search` domain of resolv.conf.
#[test]
fn search_domain_applies() {
    let tb = Testbed::up();
    let (out, counts) = sniffed(&tb, tb.cmd(&via("wlan0", &["getent", "ahostsv4", "who"])));
    out.assert_ok();
    assert_eq!(getent_addrs(&out), [who4("wlan0")], "{}", out.dump());
    assert_only(&counts, "wlan0");
    assert_asked_only(&tb, "wlan0", "who.mif.test");
}

both!(
    /// Case 12: getnameinfo asks the PTR over the interface: wlan0's server names itself.
    reverse_lookup_via_wlan0, |fam| {
        let tb = Testbed::up();
        let code = "import socket, sys; print(socket.getnameinfo((sys.argv[1], 80), 0)[0])";
        let (out, counts) = sniffed(&tb, tb.cmd(&mifrun_args("wlan0", &py(code, &[fam.svc()]))));
        out.assert_ok();
        assert_eq!(out.stdout.trim(), "web-wlan0.mif.test", "{}", out.dump());
        assert_only(&counts, "wlan0");
        let rev = if fam.v6() {
            "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.f.f.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        } else {
            "10.113.0.203.in-addr.arpa"
        };
        assert_asked_only(&tb, "wlan0", rev);
    }
);

/// Case 13: `mifrun --dns` replaces an unreachable system server.
#[test]
fn mifrun_dns_overrides_resolv_conf() {
    let tb = Testbed::up();
    tb.set_host_etc("resolv.conf", "nameserver 192.0.2.53\nsearch mif.test\n");
    let argv = strs(&[
        &s(mifrun()),
        "--via",
        "wlan0",
        "--dns",
        DNS4,
        "--",
        "getent",
        "ahostsv4",
        "who.mif.test",
    ]);
    let (out, counts) = sniffed(&tb, tb.cmd(&argv));
    out.assert_ok();
    assert_eq!(getent_addrs(&out), [who4("wlan0")], "{}", out.dump());
    assert_only(&counts, "wlan0");
    assert_asked_only(&tb, "wlan0", "who.mif.test");
}

mod own_resolver {
    use super::*;

    fn dig(extra: &[&str]) -> Vec<String> {
        let mut v = strs(&["dig", "+short", "+time=2", "+tries=1"]);
        v.extend(strs(extra));
        v.push("who.mif.test".into());
        v
    }

    both!(
        /// Case 14: dig's own socket is bound to wlan0, so the system server (IPv4) or the
        /// server given with `@` (IPv6) is asked over wlan0.
        dig_socket_bound_to_wlan0, |fam| {
            let tb = Testbed::up();
            let at = format!("@{DNS6}");
            let extra: Vec<&str> = if fam.v6() { vec![&at] } else { vec![] };
            let (out, counts) = sniffed(&tb, tb.cmd(&mifrun_args("wlan0", &dig(&extra))));
            out.assert_ok();
            assert_eq!(out.stdout.trim(), who4("wlan0"), "{}", out.dump());
            assert_only(&counts, "wlan0");
            assert_asked_only(&tb, "wlan0", "who.mif.test");
            let from = format!("who.mif.test from {}", host_addr("wlan0", fam.v6()));
            assert!(tb.dns_log("wlan0").contains(&from), "expected `{from}`:\n{}", tb.dns_log("wlan0"));
        }
    );

    fn redirect_policy(tb: &Testbed, dir: &TempDir) -> String {
        tb.set_host_etc("resolv.conf", "nameserver 192.0.2.53\nsearch mif.test\n");
        dir.write(
            "policy.toml",
            &format!(
                "via = [\"wlan0\"]\n\n[interfaces.wlan0]\ndns = [\"{DNS4}\"]\n\n[dns]\nredirect = true\n"
            ),
        )
    }

    /// Case 14: `[dns] redirect`: dig over UDP and TCP, aimed at an unreachable system server,
    /// is answered by wlan0's server.
    #[test]
    fn redirect_dig_udp_and_tcp() {
        let tb = Testbed::up();
        let dir = TempDir::new("dns-redir-dig");
        let pol = redirect_policy(&tb, &dir);
        for extra in [&[][..], &["+tcp"][..]] {
            let (out, counts) = sniffed(&tb, tb.cmd(&mifrun_policy_args(&pol, &dig(extra))));
            out.assert_ok();
            assert_eq!(
                out.stdout.trim(),
                who4("wlan0"),
                "dig {extra:?}:{}",
                out.dump()
            );
            assert_only(&counts, "wlan0");
            if extra.contains(&"+tcp") {
                assert!(counts["wlan0"].tcp > 0, "dig +tcp sent no TCP: {counts:#?}");
            }
        }
        assert_asked_only(&tb, "wlan0", "who.mif.test");
    }

    /// `[dns] redirect` with the answer read by recvmmsg(2): it must look like it came
    /// from the server the program asked (192.0.2.53), as with recvfrom/recvmsg. The
    /// shim did not hook recvmmsg, so the program saw wlan0's server as the source.
    #[test]
    fn redirected_answer_read_by_recvmmsg_showed_the_real_server() {
        let tb = Testbed::up();
        let dir = TempDir::new("dns-redir-mmsg");
        let pol = redirect_policy(&tb, &dir);
        let a = strs(&[&s(probe()), "dns-recvmmsg", "192.0.2.53", "who.mif.test"]);
        let (out, counts) = sniffed(&tb, tb.cmd(&mifrun_policy_args(&pol, &a)));
        out.assert_ok();
        let want = format!("from=192.0.2.53 a={}", who4("wlan0"));
        assert_eq!(out.stdout.trim(), want, "{}", out.dump());
        assert_only(&counts, "wlan0");
        assert_asked_only(&tb, "wlan0", "who.mif.test");
    }

    /// The same with the answer read by a fortified `recvfrom` (`-D_FORTIFY_SOURCE=2`:
    /// the program calls `__recvfrom_chk`, which the shim did not hook), so it saw
    /// wlan0's server as the source, and a resolver checking it drops the answer.
    #[test]
    fn redirected_answer_read_by_fortified_recvfrom_showed_the_real_server() {
        let tb = Testbed::up();
        let dir = TempDir::new("dns-redir-chk");
        let pol = redirect_policy(&tb, &dir);
        let src = dir.write("fr.c", include_str!("c/fortified_recvfrom.c"));
        let bin = dir.path().join("fr").to_string_lossy().into_owned();
        Cmd::new(
            None,
            &strs(&["gcc", "-O2", "-D_FORTIFY_SOURCE=2", "-o", &bin, &src]),
        )
        .run()
        .assert_ok();
        let a = strs(&[&bin, "192.0.2.53", "who.mif.test"]);
        let (out, counts) = sniffed(&tb, tb.cmd(&mifrun_policy_args(&pol, &a)));
        out.assert_ok();
        assert_eq!(out.stdout.trim(), "from=192.0.2.53", "{}", out.dump());
        assert_only(&counts, "wlan0");
        assert_asked_only(&tb, "wlan0", "who.mif.test");
    }

    /// Case 14: `[dns] redirect`: node's `dns.resolve4` (c-ares) is answered by wlan0's server.
    /// c-ares drops a UDP answer whose source is not the server it asked (192.0.2.53 here),
    /// so a redirect must also make the reply look like it came from that server.
    #[test]
    fn redirect_node_resolve4_c_ares_checks_reply_source() {
        let tb = Testbed::up();
        let dir = TempDir::new("dns-redir-node");
        let pol = redirect_policy(&tb, &dir);
        let code = "const r = new (require('dns').Resolver)({timeout: 2000, tries: 1}); \
                    r.resolve4(process.argv[1], (e, a) => { \
                    if (e) { console.error(e.code); process.exit(1); } console.log(a.join(' ')); })";
        let a = strs(&["node", "-e", code, "who.mif.test"]);
        let (out, counts) = sniffed(&tb, tb.cmd(&mifrun_policy_args(&pol, &a)));
        out.assert_ok();
        assert_eq!(out.stdout.trim(), who4("wlan0"), "{}", out.dump());
        assert_only(&counts, "wlan0");
        assert_asked_only(&tb, "wlan0", "who.mif.test");
    }
}

/// Case 15: `MIFSHIM_LOG=info` names the name and the interface.
#[test]
fn info_log_names_interface() {
    let tb = Testbed::up();
    let out = tb
        .cmd(&via("wlan0", &["getent", "ahosts", "who.mif.test"]))
        .env("MIFSHIM_LOG", "info")
        .run();
    out.assert_ok();
    assert!(
        out.stderr.contains("resolve who.mif.test over wlan0"),
        "{}",
        out.dump()
    );
}

mod testbed_dns {
    use super::*;
    use std::path::Path;

    /// `down` stops the dnsmasq servers and removes `/etc/netns/<host ns>`.
    #[test]
    fn down_stops_dnsmasq_and_removes_etc_netns() {
        let tb = Testbed::up();
        let pids: Vec<i32> = UPLINKS
            .iter()
            .map(|u| {
                let p = tb.state_dir().join(format!("dnsmasq-{u}.pid"));
                std::fs::read_to_string(&p)
                    .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
                    .trim()
                    .parse()
                    .expect("pid")
            })
            .collect();
        let etc = Path::new("/etc/netns").join(tb.host_ns());
        assert!(etc.join("resolv.conf").exists() && etc.join("hosts").exists());
        let script = s(repo_root().join("scripts/testbed.sh"));
        Cmd::new(None, &[script.as_str(), "down", tb.prefix()])
            .run()
            .assert_ok();
        assert!(!etc.exists(), "{} left behind", etc.display());
        for pid in pids {
            assert!(
                !Path::new(&format!("/proc/{pid}")).exists()
                    || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                        .map(|s| s.contains(") Z "))
                        .unwrap_or(true),
                "dnsmasq {pid} still running"
            );
        }
    }

    /// Regression: `down-all` deleted every namespace named mift*, including other people's
    /// testbeds. It must remove only testbeds with a state directory (here a private state
    /// root, so concurrent testbeds are not touched).
    #[test]
    fn down_all_spares_foreign_namespaces() {
        require_root();
        let root = TempDir::new("state-root");
        let root_s = root.path().to_string_lossy().into_owned();
        let pid = std::process::id();
        let mut prefix = format!("mift{pid}da");
        prefix.truncate(13);
        let mut foreign = format!("mift{pid}fx");
        foreign.truncate(15);
        let script = s(repo_root().join("scripts/testbed.sh"));
        let tbcmd = |args: &[&str]| {
            let mut a = vec![script.as_str()];
            a.extend_from_slice(args);
            Cmd::new(None, &a)
                .env("MIFTB_STATE_ROOT", &root_s)
                .timeout(Duration::from_secs(60))
                .run()
        };
        Cmd::new(None, &["ip", "netns", "add", &foreign])
            .run()
            .assert_ok();
        let up = tbcmd(&["up", &prefix, "--server", &s(testserver())]);
        let down = tbcmd(&["down-all"]);
        let foreign_left = Path::new(&format!("/run/netns/{foreign}")).exists();
        let _ = Cmd::new(None, &["ip", "netns", "del", &foreign]).run();
        let ours_left: Vec<String> = ["h", "e", "w", "m"]
            .iter()
            .map(|x| format!("{prefix}{x}"))
            .filter(|n| Path::new(&format!("/run/netns/{n}")).exists())
            .collect();
        if !ours_left.is_empty() {
            let _ = tbcmd(&["down", &prefix]);
        }
        up.assert_ok();
        down.assert_ok();
        assert!(
            foreign_left,
            "down-all deleted the foreign namespace {foreign}"
        );
        assert!(ours_left.is_empty(), "down-all left {ours_left:?}");
    }
}

/// A stand-in for systemd-resolved's varlink socket: answers `ResolveHostname` with
/// 192.0.2.(100 + ifindex), NXDOMAIN for names starting with `nope`, logs each request.
const FAKE_RESOLVED: &str = r#"
import json, os, socket, sys
path = "/run/systemd/resolve/io.systemd.Resolve"
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path); s.listen(); s.settimeout(10)
log = open(sys.argv[1], "a")
for _ in range(int(sys.argv[2])):
    try:
        c, _ = s.accept()
    except socket.timeout:
        break
    data = b""
    while not data.endswith(b"\0"):
        d = c.recv(4096)
        if not d:
            break
        data += d
    req = json.loads(data[:-1])
    log.write(json.dumps(req) + "\n"); log.flush()
    p = req["parameters"]
    if p["name"].startswith("nope"):
        rep = {"error": "io.systemd.Resolve.DNSError", "parameters": {"rcode": 3}}
    else:
        addr = [192, 0, 2, 100 + p["ifindex"]]
        rep = {"parameters": {"addresses": [{"ifindex": p["ifindex"], "family": 2, "address": addr}], "name": p["name"], "flags": 0}}
    c.sendall(json.dumps(rep).encode() + b"\0")
    c.close()
"#;

/// systemd-resolved is asked with the chosen interface's index (so it uses that link's
/// servers) when resolv.conf only names its loopback stub. Tested against a stand-in
/// speaking resolved's varlink protocol; no DNS packet leaves by any uplink.
#[test]
fn systemd_resolved_asked_with_interface_index() {
    let tb = Testbed::up();
    tb.set_host_etc("resolv.conf", "nameserver 127.0.0.53\n");
    let dir = TempDir::new("resolved");
    let fake = dir.write("fake_resolved.py", FAKE_RESOLVED);
    let log = dir.path().join("requests.log");
    // The mount point must exist; the tmpfs on it lives only in the test's mount
    // namespace.
    std::fs::create_dir_all("/run/systemd/resolve").expect("mkdir /run/systemd/resolve");
    let index_out = tb.run(&["cat", "/sys/class/net/wlan0/ifindex"]);
    index_out.assert_ok();
    let index: u32 = index_out.stdout.trim().parse().expect("wlan0 ifindex");
    let script = format!(
        "set -e\n\
         mount -t tmpfs tmpfs /run/systemd/resolve\n\
         python3 {fake} {log} 2 &\n\
         for i in $(seq 100); do [ -S /run/systemd/resolve/io.systemd.Resolve ] && break; sleep 0.05; done\n\
         {mifrun} --via wlan0 --log info -- getent ahostsv4 anything.example\n\
         if {mifrun} --via wlan0 -- getent ahosts nope.example; then echo FOUND-NOPE; else echo nope-rc=$?; fi\n",
        log = log.display(),
        mifrun = s(mifrun()),
    );
    let (out, counts) = sniffed(&tb, tb.cmd(&["unshare", "-m", "sh", "-c", &script]));
    out.assert_ok();
    let want = format!("192.0.2.{}", 100 + index);
    assert_eq!(getent_addrs(&out).first(), Some(&want), "{}", out.dump());
    assert!(
        out.stdout.contains("nope-rc=2"),
        "NXDOMAIN from resolved is EAI_NONAME:\n{}",
        out.dump()
    );
    assert!(
        out.stderr.contains("through systemd-resolved"),
        "{}",
        out.dump()
    );
    let requests = std::fs::read_to_string(&log).expect("fake resolved log");
    let lines: Vec<&str> = requests.lines().collect();
    assert_eq!(lines.len(), 2, "{requests}");
    assert!(
        lines[0].contains(&format!("\"ifindex\": {index}")),
        "{requests}"
    );
    assert!(
        lines[0].contains("io.systemd.Resolve.ResolveHostname"),
        "{requests}"
    );
    assert_silent(&counts);
}

/// Review regressions in name resolution, each named after what broke.
mod review {
    use super::*;

    /// getnameinfo with NI_NAMEREQD always failed under the shim: glibc refuses
    /// NI_NUMERICHOST together with NI_NAMEREQD, and the shim asked for both.
    #[test]
    fn getnameinfo_namereqd_was_refused() {
        let tb = Testbed::up();
        let code =
            "import socket\nprint(socket.getnameinfo(('203.0.113.10', 80), socket.NI_NAMEREQD)[0])";
        let (out, counts) = sniffed(&tb, tb.cmd(&via("wlan0", &["python3", "-c", code])));
        out.assert_ok();
        assert_eq!(out.stdout.trim(), "web-wlan0.mif.test", "{}", out.dump());
        assert_none_on(&counts, &["eth0", "wwan0"]);
    }

    /// A name made of a digit, hex letters and dots ("1ab.cafe") was taken for a
    /// numeric address and left to glibc, which asked eth0's server.
    #[test]
    fn digit_leading_name_leaked_to_glibc() {
        let tb = Testbed::up();
        let (out, counts) = sniffed(
            &tb,
            tb.cmd(&via("wlan0", &["getent", "ahosts", "1ab.cafe"])),
        );
        assert_ne!(out.code(), 0, "no server knows 1ab.cafe:\n{}", out.dump());
        assert_asked_only(&tb, "wlan0", "1ab.cafe");
        assert_none_on(&counts, &["eth0", "wwan0"]);
    }
}

/// Issue 9: every way to resolve a name is steered over the chosen link or fails.
mod every_path;
