//! Issue 15: the options people combine with the choice of interface — binds to
//! another interface's address rewritten, `source`, `mark`, `dscp` and per-link search
//! domains — each with real programs (python3, getent) on the testbed, each proving
//! on the wire what the packets carried: which uplink (upstream answer and sniffers),
//! which source address, which DSCP, IPv4 and IPv6, TCP and UDP.

use integration_tests::*;
use std::collections::BTreeMap;

/// `client.py DEST tcp|udp [BIND [TOS]]`: optionally binds to `BIND` (port 0), sets
/// its own TOS / traffic class, then asks the service's port 9000 once and prints the
/// answer line (or `error ERRNO NAME`, exit 3). Over TCP it reads until the server
/// closes and only then closes itself: a client that closes first ends in TIME_WAIT,
/// and Linux sends an IPv6 time-wait socket's answers from its control socket,
/// unbound, so by the lowest-metric default route (eth0) whatever the connection's
/// device. The shim's `TCP_LINGER2` hold covers the late FIN (`e2e` `close::*`), not a
/// FIN sent again in TIME_WAIT (README, Limits); this client makes neither.
const CLIENT: &str = r#"
import errno, socket, sys
dest, proto = sys.argv[1], sys.argv[2]
bind = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] != "-" else None
tos = int(sys.argv[4]) if len(sys.argv) > 4 else None
fam = socket.AF_INET6 if ":" in dest else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
s.settimeout(3)
try:
    if tos is not None:
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, tos)
        else:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
    if bind:
        s.bind((bind, 0))
        print("bound", s.getsockname()[0], flush=True)
    if proto == "tcp":
        s.connect((dest, 9000))
        got = b""
        while True:
            # Until the server's FIN: closing first would leave this side in
            # TIME_WAIT, whose last ACK an IPv6 host sends by the default route.
            d = s.recv(200)
            if not d:
                break
            got += d
        print(got.decode().strip())
    else:
        for i in range(3):
            s.sendto(b"x", (dest, 9000))
            print(s.recvfrom(200)[0].decode().strip())
except OSError as e:
    print("error", e.errno, errno.errorcode.get(e.errno, "?"), flush=True)
    sys.exit(3)
"#;

/// The client program and a policy, in a fresh directory.
struct Setup {
    dir: TempDir,
    client: String,
}

fn setup(policy: &str) -> (Setup, String) {
    let dir = TempDir::new("opts");
    let client = dir.write("client.py", CLIENT);
    let policy = dir.write("policy.toml", policy);
    (Setup { dir, client }, policy)
}

/// `mifrun --policy POLICY -- python3 client.py ARGS…` in the host namespace.
fn client(tb: &Testbed, st: &Setup, policy: &str, args: &[&str]) -> Cmd {
    let mut prog = vec!["python3", st.client.as_str()];
    prog.extend_from_slice(args);
    tb.cmd(&mifrun_policy_args(policy, &prog))
}

/// Runs `cmd` with every uplink sniffed.
fn sniffed(tb: &Testbed, cmd: Cmd) -> (Out, BTreeMap<String, Counts>) {
    let sn = tb.sniff_all();
    let out = cmd.run();
    (out, sn.stop())
}

/// Every packet the client sent to the service on `uplink`, with at least one.
#[track_caller]
fn sent(counts: &BTreeMap<String, Counts>, uplink: &str, fam: Fam) -> Vec<Pkt> {
    let p = counts[uplink].to(fam.svc());
    assert!(
        !p.is_empty(),
        "no packet to the service on {uplink}: {counts:#?}"
    );
    p
}

/// Answered by `uplink` only, every answer naming `peer` as the client's address, and
/// every packet to the service on `uplink` from `peer`.
#[track_caller]
fn assert_from(out: &Out, counts: &BTreeMap<String, Counts>, uplink: &str, fam: Fam, peer: &str) {
    out.assert_ok();
    let ups = upstreams(&out.stdout);
    assert!(
        !ups.is_empty() && ups.iter().all(|u| u == uplink),
        "expected answers from {uplink}:{}",
        out.dump()
    );
    let want: std::net::IpAddr = peer.parse().unwrap();
    assert!(
        peers(&out.stdout).iter().all(|p| *p == want),
        "expected peer {peer}:{}",
        out.dump()
    );
    assert_only(counts, uplink);
    for p in sent(counts, uplink, fam) {
        assert_eq!(p.src, want, "source on the wire: {p:?}");
    }
}

fn protos() -> [&'static str; 2] {
    ["tcp", "udp"]
}

// ---------------------------------------------------------------------------------
// Binds to another interface's address
// ---------------------------------------------------------------------------------

both!(
    /// A legacy program bound to eth0's address, then connecting (TCP) or sending
    /// (UDP): under `via = ["wlan0"]` it left by wlan0 with eth0's source, which an
    /// upstream validating sources drops (and whose answer has no way back). The
    /// bind is rewritten to wlan0's address: answered by wlan0, wlan0's source on the
    /// wire, nothing on the other uplinks.
    bind_to_another_interfaces_address_left_with_that_source,
    |fam| {
        let tb = Testbed::up();
        let (st, policy) = setup("via = [\"wlan0\"]\n");
        for proto in protos() {
            let cmd = client(&tb, &st, &policy, &[fam.svc(), proto, host_addr("eth0", fam.v6())]);
            let (out, counts) = sniffed(&tb, cmd.env("MIFSHIM_LOG", "info"));
            assert!(
                out.stdout.contains(&format!("bound {}", host_addr("wlan0", fam.v6()))),
                "{proto}: getsockname shows the rewritten address:{}",
                out.dump()
            );
            assert!(
                out.stderr.contains("an address of eth0, rewritten to"),
                "{proto}: logged:{}",
                out.dump()
            );
            assert_from(&out, &counts, "wlan0", fam, host_addr("wlan0", fam.v6()));
        }
    }
);

both!(
    /// `foreign_bind = "keep"`: the program's own address stays (and leaves by wlan0
    /// with it, as the user asked: the packets on wlan0 carry eth0's source).
    foreign_bind_keep_leaves_the_programs_address,
    |fam| {
        let tb = Testbed::up();
        let (st, policy) = setup("via = [\"wlan0\"]\nforeign_bind = \"keep\"\n");
        let eth0 = host_addr("eth0", fam.v6());
        let cmd = client(&tb, &st, &policy, &[fam.svc(), "tcp", eth0]);
        let (out, counts) = sniffed(&tb, cmd);
        assert!(out.stdout.contains(&format!("bound {eth0}")), "{}", out.dump());
        assert_none_on(&counts, &["eth0", "wwan0"]);
        let p = sent(&counts, "wlan0", fam);
        assert!(p.iter().all(|p| p.src.to_string() == eth0), "{p:?}");
    }
);

both!(
    /// Loopback, the wildcard and the chosen interface's own address are left as the
    /// program gave them.
    loopback_wildcard_and_chosen_addresses_are_not_rewritten,
    |fam| {
        let tb = Testbed::up();
        let (st, policy) = setup("via = [\"wlan0\"]\n");
        let prog = format!(
            "import socket\nfam = socket.AF_INET6 if {v6} else socket.AF_INET\nfor a in {addrs:?}:\n    s = socket.socket(fam, socket.SOCK_DGRAM)\n    s.bind((a, 0))\n    print('bound', s.getsockname()[0])\n",
            v6 = if fam.v6() { "True" } else { "False" },
            addrs = [fam.lo(), if fam.v6() { "::" } else { "0.0.0.0" }, host_addr("wlan0", fam.v6())],
        );
        let p = st.dir.write("binds.py", &prog);
        let out = tb.run(&mifrun_policy_args(&policy, &["python3", &p]));
        out.assert_ok();
        let want = format!(
            "bound {}\nbound {}\nbound {}\n",
            fam.lo(),
            if fam.v6() { "::" } else { "0.0.0.0" },
            host_addr("wlan0", fam.v6())
        );
        assert_eq!(out.stdout, want, "{}", out.dump());
    }
);

both!(
    /// A listener bound to eth0's address is rewritten too: it listens on wlan0's
    /// address, and a client behind wlan0 reaches it there.
    listener_bound_to_another_interfaces_address_is_rewritten,
    |fam| {
        let tb = Testbed::up();
        let (st, policy) = setup("via = [\"wlan0\"]\n");
        let prog = format!(
            "import socket\ns = socket.socket(socket.AF_INET6 if {v6} else socket.AF_INET)\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('{a}', 7777))\ns.listen()\nprint('listening', s.getsockname()[0], flush=True)\nc, peer = s.accept()\nc.sendall(b'hello')\nprint('accepted', peer[0], flush=True)\n",
            v6 = if fam.v6() { "True" } else { "False" },
            a = host_addr("eth0", fam.v6()),
        );
        let p = st.dir.write("listen.py", &prog);
        let mut server = tb.cmd(&mifrun_policy_args(&policy, &["python3", &p])).spawn();
        server.wait_for_stdout(
            &format!("listening {}", host_addr("wlan0", fam.v6())),
            std::time::Duration::from_secs(10),
        );
        let conn = format!(
            "import socket\nc = socket.create_connection(('{}', 7777), timeout=5)\nprint(c.recv(10).decode())\n",
            host_addr("wlan0", fam.v6())
        );
        let c = st.dir.write("conn.py", &conn);
        tb.cmd_upstream("wlan0", &["python3", &c]).run().assert_ok();
        let out = server.wait(std::time::Duration::from_secs(10));
        out.assert_ok();
        assert!(out.stdout.contains("accepted"), "{}", out.dump());
    }
);

/// wlan0 has no IPv6 address left: a bind to eth0's IPv6 address cannot be rewritten
/// and fails closed (nothing sent); the IPv4 one still is rewritten.
#[test]
fn bind_fails_closed_when_the_chosen_interface_has_no_address_of_its_family() {
    let tb = Testbed::up();
    tb.run(&[
        "ip", "-6", "addr", "flush", "dev", "wlan0", "scope", "global",
    ])
    .assert_ok();
    // The snapshot is at most a second old.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (st, policy) = setup("via = [\"wlan0\"]\n");
    let cmd = client(&tb, &st, &policy, &[SVC6, "udp", host_addr("eth0", true)]);
    let (out, counts) = sniffed(&tb, cmd);
    out.assert_code(3);
    assert!(
        out.stdout.contains("error 101 ENETUNREACH"),
        "{}",
        out.dump()
    );
    assert!(
        out.stderr.contains("bind [2001:db8:10::2]:0 refused"),
        "{}",
        out.dump()
    );
    assert_silent(&counts);
    let cmd = client(&tb, &st, &policy, &[SVC4, "udp", host_addr("eth0", false)]);
    let (out, counts) = sniffed(&tb, cmd);
    assert_from(&out, &counts, "wlan0", Fam::V4, host_addr("wlan0", false));
}

both!(
    /// A UDP socket the program bound to wlan0's own IPv6 address: its datagrams carried
    /// a PKTINFO naming wlan0, which the kernel takes as a preference only when the
    /// source is fixed, and they left by eth0 (the lower-metric default route). Now
    /// the socket is bound to the device at its first steered datagram.
    udp_socket_bound_to_the_chosen_address_left_by_the_default_route,
    |fam| {
        let tb = Testbed::up();
        let (st, policy) = setup("via = [\"wlan0\"]\n");
        let wlan0 = host_addr("wlan0", fam.v6());
        let (out, counts) = sniffed(&tb, client(&tb, &st, &policy, &[fam.svc(), "udp", wlan0]));
        assert_from(&out, &counts, "wlan0", fam, wlan0);
    }
);

// ---------------------------------------------------------------------------------
// source
// ---------------------------------------------------------------------------------

/// wlan0's second addresses.
fn second(fam: Fam) -> &'static str {
    if fam.v6() {
        "2001:db8:20::3"
    } else {
        "198.51.100.67"
    }
}

/// Adds wlan0's second addresses (IPv6 without duplicate detection, so usable at
/// once) and waits out the interface snapshot.
fn add_second_addresses(tb: &Testbed) {
    tb.run(&["ip", "addr", "add", "198.51.100.67/26", "dev", "wlan0"])
        .assert_ok();
    tb.run(&[
        "ip",
        "-6",
        "addr",
        "add",
        "2001:db8:20::3/64",
        "dev",
        "wlan0",
        "nodad",
    ])
    .assert_ok();
    std::thread::sleep(std::time::Duration::from_millis(1100));
}

both!(
    /// `source = "ADDR"`: wlan0 has two addresses of the family; without the key the
    /// kernel picks one, with it the other one is the source on the wire (TCP and
    /// UDP).
    source_chooses_among_the_interfaces_addresses,
    |fam| {
        let tb = Testbed::up();
        add_second_addresses(&tb);
        let (st, plain) = setup("via = [\"wlan0\"]\n");
        let (out, counts) = sniffed(&tb, client(&tb, &st, &plain, &[fam.svc(), "tcp"]));
        let kernels = peers(&out.stdout).first().map(ToString::to_string);
        let pair = [host_addr("wlan0", fam.v6()), second(fam)];
        let kernels = kernels.unwrap_or_else(|| panic!("no answer:{}", out.dump()));
        assert!(pair.contains(&kernels.as_str()), "{}", out.dump());
        assert_from(&out, &counts, "wlan0", fam, &kernels);
        let other = pair.into_iter().find(|a| *a != kernels).unwrap();
        let policy = st
            .dir
            .write("source.toml", &format!("via = [\"wlan0\"]\nsource = \"{other}\"\n"));
        for proto in protos() {
            let (out, counts) = sniffed(&tb, client(&tb, &st, &policy, &[fam.svc(), proto]));
            assert_from(&out, &counts, "wlan0", fam, other);
        }
    }
);

both!(
    /// A UDP socket the program bound to wlan0's second address: the PKTINFO naming
    /// wlan0 replaced its source with the first (IPv4: `ipi_spec_dst` 0), so the
    /// answers went to an address the socket was not bound to and were lost. Now it is
    /// bound to the device: its own source on the wire, answered.
    udp_socket_bound_to_the_second_address_lost_its_answers,
    |fam| {
        let tb = Testbed::up();
        add_second_addresses(&tb);
        let (st, policy) = setup("via = [\"wlan0\"]\n");
        let cmd = client(&tb, &st, &policy, &[fam.svc(), "udp", second(fam)]);
        let (out, counts) = sniffed(&tb, cmd);
        assert_from(&out, &counts, "wlan0", fam, second(fam));
    }
);

/// A `source` that is not the chosen interface's (here eth0's, under `via = wlan0`) is
/// not used: the kernel chooses wlan0's, with a warning; a `source` on a rule applies
/// to that rule's traffic (wwan0's second address).
#[test]
fn source_not_on_the_chosen_interface_is_left_to_the_kernel_and_rules_have_their_own() {
    let tb = Testbed::up();
    tb.run(&["ip", "addr", "add", "198.51.100.131/26", "dev", "wwan0"])
        .assert_ok();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (st, policy) = setup(
        "via = [\"wlan0\"]\nsource = \"198.51.100.2\"\n\n[[rules]]\nto = [\"203.0.113.10\"]\nprotocol = \"udp\"\nvia = [\"wwan0\"]\nsource = \"198.51.100.131\"\n",
    );
    let (out, counts) = sniffed(&tb, client(&tb, &st, &policy, &[SVC4, "tcp"]));
    assert_from(&out, &counts, "wlan0", Fam::V4, host_addr("wlan0", false));
    assert!(
        out.stderr.contains(
            "source 198.51.100.2 is not an address of wlan0 now; the kernel chooses the source"
        ),
        "{}",
        out.dump()
    );
    let (out, counts) = sniffed(&tb, client(&tb, &st, &policy, &[SVC4, "udp"]));
    assert_from(&out, &counts, "wwan0", Fam::V4, "198.51.100.131");
}

// ---------------------------------------------------------------------------------
// mark
// ---------------------------------------------------------------------------------

/// wlan0's default routes move from the main table to table 100, which only packets
/// marked 0x10 look up (`ip rule add fwmark 0x10 table 100`): a socket bound to wlan0
/// has a route only when it is marked.
fn route_wlan0_by_mark(tb: &Testbed) {
    for cmd in [
        "ip route del default dev wlan0",
        "ip -6 route del default dev wlan0",
        "ip route add default via 198.51.100.65 dev wlan0 table 100",
        "ip -6 route add default via 2001:db8:20::1 dev wlan0 table 100",
        "ip rule add fwmark 0x10 table 100",
        "ip -6 rule add fwmark 0x10 table 100",
    ] {
        let argv: Vec<&str> = cmd.split(' ').collect();
        tb.run(&argv).assert_ok();
    }
}

both!(
    /// `mark = 0x10`: the marked packets take the route the mark selects (table 100,
    /// the only one with a route via wlan0); unmarked ones have none and get no answer.
    marked_packets_take_the_route_the_mark_selects,
    |fam| {
        let tb = Testbed::up();
        route_wlan0_by_mark(&tb);
        let (st, marked) = setup("via = [\"wlan0\"]\nmark = 0x10\n");
        let plain = st.dir.write("plain.toml", "via = [\"wlan0\"]\n");
        for proto in protos() {
            let (out, counts) = sniffed(&tb, client(&tb, &st, &plain, &[fam.svc(), proto]));
            out.assert_code(3);
            assert_none_on(&counts, &["eth0", "wwan0"]);
            assert!(
                upstreams(&out.stdout).is_empty(),
                "{proto}: unmarked, no route:{}",
                out.dump()
            );
            let (out, counts) = sniffed(&tb, client(&tb, &st, &marked, &[fam.svc(), proto]));
            assert_from(&out, &counts, "wlan0", fam, host_addr("wlan0", fam.v6()));
        }
    }
);

/// The shim's own DNS queries over wlan0 carry the mark too: with wlan0 routed only by
/// the mark, names resolve over it with `mark = 0x10` (wlan0's server answers
/// `who.mif.test`), and without the mark nothing can reach that server.
#[test]
fn dns_queries_over_the_interface_carry_the_mark() {
    let tb = Testbed::up();
    route_wlan0_by_mark(&tb);
    let (st, marked) = setup("via = [\"wlan0\"]\nmark = 0x10\n");
    let plain = st.dir.write(
        "plain.toml",
        "via = [\"wlan0\"]\n\n[dns]\ntimeout_ms = 200\nattempts = 1\n",
    );
    let getent = |policy: &str| {
        tb.cmd(&mifrun_policy_args(
            policy,
            &["getent", "ahostsv4", "who.mif.test"],
        ))
        .run()
    };
    let sn = tb.sniff(&["eth0", "wwan0"]);
    let out = getent(&plain);
    assert_eq!(
        out.code(),
        2,
        "unmarked: no route to wlan0's server:{}",
        out.dump()
    );
    let out = getent(&marked);
    out.assert_ok();
    assert!(out.stdout.starts_with("192.0.2.2 "), "{}", out.dump());
    assert_silent(&sn.stop());
}

both!(
    /// A mark needs CAP_NET_ADMIN (or CAP_NET_RAW): without them (`setpriv` drops
    /// both from the bounding set), `on_mark_denied = "block"` fails the call with
    /// EPERM, nothing sent, and says why; `"continue"` goes on unmarked by wlan0.
    mark_without_the_capability_fails_closed_or_goes_on_as_the_policy_says,
    |fam| {
        let tb = Testbed::up();
        let (st, block) = setup("via = [\"wlan0\"]\nmark = 0x10\n");
        let go_on = st.dir.write(
            "continue.toml",
            "via = [\"wlan0\"]\nmark = 0x10\non_mark_denied = \"continue\"\n",
        );
        let nocap = |policy: &str, proto: &str| {
            let mut argv = vec![
                "setpriv".to_string(),
                "--bounding-set".into(),
                "-net_admin,-net_raw".into(),
                "--".into(),
            ];
            argv.extend(mifrun_policy_args(policy, &["python3", &st.client, fam.svc(), proto]));
            tb.cmd(&argv)
        };
        for proto in protos() {
            let (out, counts) = sniffed(&tb, nocap(&block, proto));
            out.assert_code(3);
            assert!(out.stdout.contains("error 1 EPERM"), "{}", out.dump());
            assert!(
                out.stderr.contains("mark 0x10 needs CAP_NET_ADMIN (or CAP_NET_RAW), which this process lacks (EPERM); refusing"),
                "{}",
                out.dump()
            );
            assert!(out.stderr.contains("mifrun: warning: the policy sets a mark"), "{}", out.dump());
            assert_silent(&counts);
            let (out, counts) = sniffed(&tb, nocap(&go_on, proto));
            assert!(out.stderr.contains("going on without the mark"), "{}", out.dump());
            assert_from(&out, &counts, "wlan0", fam, host_addr("wlan0", fam.v6()));
        }
    }
);

// ---------------------------------------------------------------------------------
// dscp
// ---------------------------------------------------------------------------------

#[track_caller]
fn assert_dscp(counts: &BTreeMap<String, Counts>, uplink: &str, fam: Fam, dscp: u8) {
    for p in sent(counts, uplink, fam) {
        assert_eq!(p.dscp, dscp, "DSCP on the wire on {uplink}: {p:?}");
    }
}

both!(
    /// `dscp = "ef"` at the top level, `"af41"` on a rule (to wwan0), `"cs1"` in the
    /// program's section: each on the wire as its class (46, 34, 8), TCP and UDP; the
    /// program's own TOS / traffic class (40 = cs5) wins over the policy's.
    dscp_is_on_the_wire_and_the_programs_own_wins,
    |fam| {
        let tb = Testbed::up();
        let (st, policy) = setup(
            "via = [\"wlan0\"]\ndscp = \"ef\"\n\n[[rules]]\nto = [\"203.0.113.10\", \"2001:db8:ff::10\"]\nports = [9000]\nprotocol = \"udp\"\nvia = [\"wwan0\"]\ndscp = \"af41\"\n",
        );
        let (out, counts) = sniffed(&tb, client(&tb, &st, &policy, &[fam.svc(), "tcp"]));
        assert_from(&out, &counts, "wlan0", fam, host_addr("wlan0", fam.v6()));
        assert_dscp(&counts, "wlan0", fam, 46);
        let (out, counts) = sniffed(&tb, client(&tb, &st, &policy, &[fam.svc(), "udp"]));
        assert_from(&out, &counts, "wwan0", fam, host_addr("wwan0", fam.v6()));
        assert_dscp(&counts, "wwan0", fam, 34);
        for proto in protos() {
            let cmd = client(&tb, &st, &policy, &[fam.svc(), proto, "-", "160"]);
            let (out, counts) = sniffed(&tb, cmd);
            let up = if proto == "tcp" { "wlan0" } else { "wwan0" };
            assert_from(&out, &counts, up, fam, host_addr(up, fam.v6()));
            assert_dscp(&counts, up, fam, 40);
        }
        // A program section by the interpreter's path: its own class.
        let exe = Cmd::new(
            None,
            &["python3", "-c", "import os, sys; print(os.path.realpath(sys.executable))"],
        )
        .run();
        let exe = exe.assert_ok().stdout.trim().to_string();
        let section = st.dir.write(
            "section.toml",
            &format!("via = [\"wlan0\"]\ndscp = \"ef\"\n\n[programs.\"{exe}\"]\ndscp = \"cs1\"\n"),
        );
        for proto in protos() {
            let (out, counts) = sniffed(&tb, client(&tb, &st, &section, &[fam.svc(), proto]));
            assert_from(&out, &counts, "wlan0", fam, host_addr("wlan0", fam.v6()));
            assert_dscp(&counts, "wlan0", fam, 8);
        }
    }
);

// ---------------------------------------------------------------------------------
// search domains
// ---------------------------------------------------------------------------------

/// `[interfaces.wlan0] search = ["corp.mif.test"]`: `who` resolved over wlan0 is
/// `who.corp.mif.test` (wlan0's server answers 192.0.2.12), not the system's
/// `who.mif.test`; with `ndots:2` in resolv.conf, `who.corp` is searched before it is
/// tried as is (`who.corp.mif.test` under `search = ["mif.test"]`); a name with a
/// trailing dot is never searched. No other uplink's server is asked.
#[test]
fn search_domains_apply_to_names_resolved_over_their_interface() {
    let tb = Testbed::up();
    let (st, policy) =
        setup("via = [\"wlan0\"]\n\n[interfaces.wlan0]\nsearch = [\"corp.mif.test\"]\n");
    let getent = |policy: &str, name: &str| {
        tb.cmd(&mifrun_policy_args(policy, &["getent", "ahostsv4", name]))
            .run()
    };
    let sn = tb.sniff(&["eth0", "wwan0"]);
    let out = getent(&policy, "who");
    out.assert_ok();
    assert!(out.stdout.starts_with("192.0.2.12 "), "{}", out.dump());
    assert!(out.stdout.contains("who.corp.mif.test"), "{}", out.dump());
    assert!(tb.dns_log("wlan0").contains("who.corp.mif.test"));
    // Without the key: the system's search list (mif.test).
    let plain = st.dir.write("plain.toml", "via = [\"wlan0\"]\n");
    let out = getent(&plain, "who");
    assert!(out.stdout.starts_with("192.0.2.2 "), "{}", out.dump());
    // ndots: a name with fewer dots is searched first.
    tb.set_host_etc(
        "resolv.conf",
        "nameserver 203.0.113.53\nsearch nowhere.test\noptions ndots:2\n",
    );
    let ndots = st.dir.write(
        "ndots.toml",
        "via = [\"wlan0\"]\n\n[interfaces.wlan0]\nsearch = [\"mif.test\"]\n",
    );
    let out = getent(&ndots, "who.corp");
    assert!(out.stdout.starts_with("192.0.2.12 "), "{}", out.dump());
    let log = tb.dns_log("wlan0");
    assert!(
        !log.contains("nowhere.test"),
        "the system's list replaced:\n{log}"
    );
    // An absolute name is asked as is only.
    let out = getent(&policy, "web.mif.test.");
    assert!(out.stdout.starts_with("203.0.113.10 "), "{}", out.dump());
    assert!(!tb.dns_log("wlan0").contains("web.mif.test.corp.mif.test"));
    let counts = sn.stop();
    assert_silent(&counts);
    for up in ["eth0", "wwan0"] {
        // The testbed's readiness check asks from the server's own addresses.
        let log = tb.dns_log(up);
        let asked = log
            .lines()
            .filter(|l| l.contains("query[") && !l.contains(&format!("from {DNS4}")))
            .any(|l| !l.contains(&format!("from {DNS6}")));
        assert!(!asked, "{up}'s server was asked:\n{log}");
    }
}

// ---------------------------------------------------------------------------------
// Hostile review 2: sockets with options, fixed sources and reuse
// ---------------------------------------------------------------------------------

/// `steps.py 4|6 STEP…`: one UDP socket of the family, then each step in turn, one
/// output line per step (errors print `error ERRNO NAME` and the steps go on):
/// `bind,ADDR` (port 0), `tos,N` (IP_TOS and, on an IPv6 socket, IPV6_TCLASS),
/// `mark,N` (SO_MARK), `connect,ADDR,PORT`, `unspec` (`connect(AF_UNSPEC)` through
/// the C library), `send,ADDR,PORT` (sendto, then the answer line),
/// `send,ADDR,PORT,noreply` (sendto only: `sent`), `csend` (send on the connected
/// socket, then the answer).
const STEPS: &str = r#"
import ctypes, errno, socket, sys
v6 = sys.argv[1] == "6"
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
libc = ctypes.CDLL(None, use_errno=True)
for step in sys.argv[2:]:
    op, *a = step.split(",")
    try:
        if op == "bind":
            s.bind((a[0], 0))
            print("bound", s.getsockname()[0], flush=True)
        elif op == "tos":
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, int(a[0]))
            if v6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, int(a[0]))
            print("tos", a[0], flush=True)
        elif op == "mark":
            s.setsockopt(socket.SOL_SOCKET, 36, int(a[0], 0))
            print("mark", a[0], flush=True)
        elif op == "connect":
            s.connect((a[0], int(a[1])))
            print("connected", flush=True)
        elif op == "unspec":
            sa = (ctypes.c_ubyte * 28)()
            r = libc.connect(s.fileno(), sa, 28 if v6 else 16)
            print("disconnected", r, ctypes.get_errno(), flush=True)
        elif op == "send":
            s.sendto(b"x", (a[0], int(a[1])))
            if a[2:] == ["noreply"]:
                print("sent", flush=True)
            else:
                print(s.recvfrom(200)[0].decode().strip(), flush=True)
        elif op == "csend":
            s.send(b"x")
            print(s.recv(200).decode().strip(), flush=True)
        elif op == "getmark":
            print("mark now %#x" % s.getsockopt(socket.SOL_SOCKET, 36), flush=True)
    except socket.timeout:
        print("error timeout", flush=True)
    except OSError as e:
        print("error", e.errno, errno.errorcode.get(e.errno, "?"), flush=True)
"#;

/// `python3 steps.py FAM STEPS…` under `policy`, every uplink sniffed.
fn steps(
    tb: &Testbed,
    st: &Setup,
    policy: &str,
    v6: bool,
    steps: &[String],
) -> (Out, BTreeMap<String, Counts>) {
    let prog = st.dir.write("steps.py", STEPS);
    let mut argv = vec![
        "python3".to_string(),
        prog,
        if v6 { "6" } else { "4" }.to_string(),
    ];
    argv.extend(steps.iter().cloned());
    let cmd = tb.cmd(&mifrun_policy_args(policy, &argv));
    sniffed(tb, cmd.env("MIFSHIM_LOG", "info"))
}

/// Line `i` of the program's output.
#[track_caller]
fn line(out: &Out, i: usize) -> &str {
    out.stdout
        .lines()
        .nth(i)
        .unwrap_or_else(|| panic!("no line {i}:{}", out.dump()))
}

/// No packet to `dst` (port `port`, any when 0) on any of `uplinks`.
#[track_caller]
fn nothing_to(counts: &BTreeMap<String, Counts>, uplinks: &[&str], dst: &str, port: u16) {
    for u in uplinks {
        let p: Vec<Pkt> = counts[*u]
            .to(dst)
            .into_iter()
            .filter(|p| port == 0 || p.dport == port)
            .collect();
        assert!(p.is_empty(), "packets to {dst}:{port} on {u}: {p:?}");
    }
}

/// The ways a UDP socket comes to have a fixed source address of wlan0: the policy's
/// `source`, the program's own bind to wlan0's address, and its bind to eth0's address
/// (rewritten to wlan0's). Each gives the policy text and the steps that come first.
fn fixed_sources(fam: Fam) -> [(String, Vec<String>); 3] {
    let wlan0 = host_addr("wlan0", fam.v6());
    let eth0 = host_addr("eth0", fam.v6());
    [
        (format!("source = \"{wlan0}\"\n"), vec![]),
        (String::new(), vec![format!("bind,{wlan0}")]),
        (String::new(), vec![format!("bind,{eth0}")]),
    ]
}

fn dns(fam: Fam) -> &'static str {
    if fam.v6() { DNS6 } else { DNS4 }
}

both!(
    /// A UDP socket with a fixed source (the policy's `source`, or the program's bind)
    /// is bound to wlan0's device at its first steered datagram; from then on every
    /// datagram was sent as is, without a decision: a datagram to a destination a
    /// `block` rule refuses left by wlan0 (and was answered). It must fail with EACCES
    /// and nothing may reach the blocked destination.
    udp_socket_with_a_fixed_source_sent_a_blocked_destination_by_its_device,
    |fam| {
        let tb = Testbed::up();
        for (extra, first) in fixed_sources(fam) {
            let (st, policy) = setup(&format!(
                "via = [\"wlan0\"]\n{extra}\n[[rules]]\nto = [\"{}\"]\nports = [53]\nprotocol = \"udp\"\naction = \"block\"\n",
                dns(fam)
            ));
            let mut s = first.clone();
            s.push(format!("send,{},9000", fam.svc()));
            s.push(format!("send,{},53,noreply", dns(fam)));
            let (out, counts) = steps(&tb, &st, &policy, fam.v6(), &s);
            let n = first.len();
            assert!(line(&out, n).contains("upstream=wlan0"), "{extra}{first:?}:{}", out.dump());
            assert_eq!(line(&out, n + 1), "error 13 EACCES", "{extra}{first:?}:{}", out.dump());
            nothing_to(&counts, &UPLINKS, dns(fam), 53);
        }
    }
);

both!(
    /// The same socket, then a datagram a rule sends via wwan0: it left by wlan0 (the
    /// device the first datagram bound), past the rule. It must not leave by wlan0
    /// (nor eth0): by wwan0, or not at all.
    udp_socket_with_a_fixed_source_ignored_a_rule_choosing_another_interface,
    |fam| {
        let tb = Testbed::up();
        for (extra, first) in fixed_sources(fam) {
            let (st, policy) = setup(&format!(
                "via = [\"wlan0\"]\n{extra}\n[[rules]]\nto = [\"{}\"]\nports = [9001]\nprotocol = \"udp\"\nvia = [\"wwan0\"]\n",
                fam.svc()
            ));
            let mut s = first.clone();
            s.push(format!("send,{},9000", fam.svc()));
            s.push(format!("send,{},9001", fam.svc()));
            let (out, counts) = steps(&tb, &st, &policy, fam.v6(), &s);
            let n = first.len();
            assert!(line(&out, n).contains("upstream=wlan0"), "{extra}{first:?}:{}", out.dump());
            assert!(
                !line(&out, n + 1).contains("upstream=wlan0"),
                "{extra}{first:?}: the rule's datagram answered by wlan0:{}",
                out.dump()
            );
            nothing_to(&counts, &["eth0", "wlan0"], fam.svc(), 9001);
        }
    }
);

both!(
    /// The same socket, then a datagram to loopback: the README says the kernel
    /// refuses it; in fact it left by wlan0 — a datagram for this host's loopback on
    /// the link's wire (`198.51.100.66 > 127.0.0.1`), never delivered. Loopback
    /// traffic must never reach a link.
    udp_socket_with_a_fixed_source_sent_loopback_datagrams_out_of_its_interface,
    |fam| {
        let tb = Testbed::up();
        for (extra, first) in fixed_sources(fam) {
            let (st, policy) = setup(&format!("via = [\"wlan0\"]\n{extra}"));
            let mut s = first.clone();
            s.push(format!("send,{},9000", fam.svc()));
            s.push(format!("send,{},9,noreply", fam.lo()));
            let (out, counts) = steps(&tb, &st, &policy, fam.v6(), &s);
            assert!(line(&out, first.len()).contains("upstream=wlan0"), "{}", out.dump());
            nothing_to(&counts, &UPLINKS, fam.lo(), 0);
        }
    }
);

both!(
    /// A connected UDP socket (bound to wlan0 at `connect`) that also uses `sendto`
    /// with other destinations, as Linux allows: `send` skipped the decision for
    /// every datagram of a device-bound socket, so a destination a `block` rule
    /// refuses left by wlan0, and a datagram to loopback went onto wlan0's wire.
    connected_udp_socket_sendto_passed_block_rules_and_put_loopback_on_the_wire,
    |fam| {
        let tb = Testbed::up();
        let (st, policy) = setup(&format!(
            "via = [\"wlan0\"]\n\n[[rules]]\nto = [\"{}\"]\nports = [53]\nprotocol = \"udp\"\naction = \"block\"\n",
            dns(fam)
        ));
        let s = [
            format!("connect,{},9000", fam.svc()),
            "csend".to_string(),
            format!("send,{},53,noreply", dns(fam)),
            format!("send,{},9,noreply", fam.lo()),
        ];
        let (out, counts) = steps(&tb, &st, &policy, fam.v6(), &s);
        assert!(line(&out, 1).contains("upstream=wlan0"), "{}", out.dump());
        assert_eq!(line(&out, 2), "error 13 EACCES", "{}", out.dump());
        nothing_to(&counts, &UPLINKS, dns(fam), 53);
        nothing_to(&counts, &UPLINKS, fam.lo(), 0);
    }
);

/// `mmsg ADDR1 PORT1 ADDR2 PORT2`: one `sendmmsg` of two datagrams on one UDP socket
/// (IPv6 when ADDR1 has a colon), then the first answer.
const MMSG: &str = r#"
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
int main(int argc, char **argv) {
    int v6 = strchr(argv[1], ':') != NULL;
    int s = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
    struct timeval tv = {1, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_storage a[2];
    struct mmsghdr m[2];
    struct iovec iov[2];
    char buf[2] = "xy";
    memset(a, 0, sizeof a);
    memset(m, 0, sizeof m);
    for (int i = 0; i < 2; i++) {
        const char *ip = argv[1 + 2 * i];
        int port = atoi(argv[2 + 2 * i]);
        socklen_t len;
        if (v6) {
            struct sockaddr_in6 *p = (struct sockaddr_in6 *)&a[i];
            p->sin6_family = AF_INET6; p->sin6_port = htons(port);
            inet_pton(AF_INET6, ip, &p->sin6_addr); len = sizeof *p;
        } else {
            struct sockaddr_in *p = (struct sockaddr_in *)&a[i];
            p->sin_family = AF_INET; p->sin_port = htons(port);
            inet_pton(AF_INET, ip, &p->sin_addr); len = sizeof *p;
        }
        iov[i].iov_base = &buf[i]; iov[i].iov_len = 1;
        m[i].msg_hdr.msg_name = &a[i]; m[i].msg_hdr.msg_namelen = len;
        m[i].msg_hdr.msg_iov = &iov[i]; m[i].msg_hdr.msg_iovlen = 1;
    }
    int r = sendmmsg(s, m, 2, 0);
    printf("sendmmsg %d %s\n", r, r < 0 ? strerror(errno) : "-");
    if (r == 1) {
        r = sendmmsg(s, m + 1, 1, 0);
        printf("rest %d %s\n", r, r < 0 ? strerror(errno) : "-");
    }
    char got[200];
    int n = recv(s, got, sizeof got - 1, 0);
    if (n > 0) { got[n] = 0; printf("%s", got); } else printf("no answer %s\n", strerror(errno));
    return 0;
}
"#;

both!(
    /// One `sendmmsg` of a datagram to loopback, then one to the service, under
    /// `source`: the loopback message was decided first (direct, sent as is), then the
    /// service's message bound the socket to the source and to wlan0's device — before
    /// the batch went out, so the loopback datagram left by wlan0 onto its wire.
    sendmmsg_sent_its_loopback_message_by_the_device_a_later_message_bound,
    |fam| {
        let tb = Testbed::up();
        let (st, policy) = setup(&format!(
            "via = [\"wlan0\"]\nsource = \"{}\"\n",
            host_addr("wlan0", fam.v6())
        ));
        let src = st.dir.write("mmsg.c", MMSG);
        let bin = st.dir.path().join("mmsg").to_string_lossy().into_owned();
        Cmd::new(None, &["gcc", "-O1", "-o", &bin, &src]).run().assert_ok();
        let cmd = tb.cmd(&mifrun_policy_args(&policy, &[&bin, fam.lo(), "9", fam.svc(), "9000"]));
        let (out, counts) = sniffed(&tb, cmd.env("MIFSHIM_LOG", "info"));
        out.assert_ok();
        assert!(out.stdout.contains("upstream=wlan0"), "{}", out.dump());
        nothing_to(&counts, &UPLINKS, fam.lo(), 0);
    }
);

/// A dual-stack `AF_INET6` UDP socket (as many DNS and QUIC clients open) under
/// `dscp = "ef"`, sending to an IPv4-mapped destination first and a native IPv6 one
/// next: the options are set once per socket, for the first datagram's path only
/// (`IP_TOS`), so every IPv6 datagram left without the class. Both must carry 46.
#[test]
fn dual_stack_socket_got_the_dscp_for_its_first_family_only() {
    let tb = Testbed::up();
    let (st, policy) = setup("via = [\"wlan0\"]\ndscp = \"ef\"\n");
    let s = [
        format!("send,::ffff:{SVC4},9000"),
        format!("send,{SVC6},9000"),
    ];
    let (out, counts) = steps(&tb, &st, &policy, true, &s);
    assert!(line(&out, 0).contains("upstream=wlan0"), "{}", out.dump());
    assert!(line(&out, 1).contains("upstream=wlan0"), "{}", out.dump());
    assert_dscp(&counts, "wlan0", Fam::V4, 46);
    assert_dscp(&counts, "wlan0", Fam::V6, 46);
}

/// The same socket under `source = [v4, v6]`: the first (IPv4-mapped) datagram bound
/// it to the IPv4 source (`::ffff:198.51.100.66`), after which every IPv6 datagram
/// failed with EAFNOSUPPORT — the program worked without the key. A dual-stack
/// socket must go on reaching both families.
#[test]
fn dual_stack_socket_with_a_source_could_not_send_ipv6_after_ipv4() {
    let tb = Testbed::up();
    let (st, policy) = setup(&format!(
        "via = [\"wlan0\"]\nsource = [\"{}\", \"{}\"]\n",
        host_addr("wlan0", false),
        host_addr("wlan0", true)
    ));
    let s = [
        format!("send,::ffff:{SVC4},9000"),
        format!("send,{SVC6},9000"),
    ];
    let (out, counts) = steps(&tb, &st, &policy, true, &s);
    assert!(line(&out, 0).contains("upstream=wlan0"), "{}", out.dump());
    assert!(line(&out, 1).contains("upstream=wlan0"), "{}", out.dump());
    assert_only(&counts, "wlan0");
}

/// A UDP socket connected to a destination a rule sends via wwan0 with that rule's
/// `source` (wwan0's second address) and `dscp`, then disconnected
/// (`connect(AF_UNSPEC)`, node's `dgram.disconnect()`) and connected to a destination
/// steered to wlan0: the shim's own source bind stayed (the kernel keeps a bound
/// address through a disconnect, and nothing unbinds it), so the datagram left by
/// wlan0 with wwan0's source and the rule's class, and its answer never came back —
/// the very packet the bind rewrite exists to prevent. The socket cannot be given
/// wlan0's address any more: the second `connect` fails (`EADDRNOTAVAIL`, with a
/// warning) and nothing leaves by wlan0 from wwan0's address.
#[test]
fn reconnected_udp_socket_kept_a_rules_source_on_another_interface() {
    let tb = Testbed::up();
    tb.run(&["ip", "addr", "add", "198.51.100.131/26", "dev", "wwan0"])
        .assert_ok();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (st, policy) = setup(&format!(
        "via = [\"wlan0\"]\ndscp = \"ef\"\n\n[[rules]]\nto = [\"{SVC4}\"]\nports = [9001]\nvia = [\"wwan0\"]\nsource = \"198.51.100.131\"\ndscp = \"af41\"\n"
    ));
    let s = [
        format!("connect,{SVC4},9001"),
        "csend".to_string(),
        "unspec".to_string(),
        format!("connect,{SVC4},9000"),
        "csend".to_string(),
    ];
    let (out, counts) = steps(&tb, &st, &policy, false, &s);
    assert!(line(&out, 1).contains("upstream=wwan0"), "{}", out.dump());
    assert_eq!(line(&out, 3), "error 99 EADDRNOTAVAIL", "{}", out.dump());
    assert!(
        out.stderr
            .contains("198.51.100.131 is not an address of the interface"),
        "{}",
        out.dump()
    );
    assert!(counts["wlan0"].to(SVC4).is_empty(), "{counts:#?}");
    assert_none_on(&counts, &["eth0"]);
}

/// `source` names wlan0's second address, which goes away (a DHCP change) just after
/// a first connection used it, within the interface snapshot's second: the next
/// `connect` failed with EADDRNOTAVAIL (logged as "(errno)") where the README says the
/// kernel chooses the source when the address is gone. It must connect, from wlan0's
/// other address.
#[test]
fn source_removed_within_the_snapshots_second_failed_the_connect() {
    let tb = Testbed::up();
    add_second_addresses(&tb);
    let (st, policy) = setup(&format!(
        "via = [\"wlan0\"]\nsource = \"{}\"\n",
        second(Fam::V4)
    ));
    let prog = st.dir.write(
        "gone.py",
        &format!(
            "import os, socket\ndef go():\n    s = socket.socket()\n    s.settimeout(3)\n    try:\n        s.connect(('{SVC4}', 9000))\n        print(s.recv(200).decode().strip(), flush=True)\n    except OSError as e:\n        print('error', e.errno, flush=True)\n    s.close()\ngo()\nos.system('ip addr del {}/26 dev wlan0')\ngo()\n",
            second(Fam::V4)
        ),
    );
    let cmd = tb.cmd(&mifrun_policy_args(&policy, &["python3", &prog]));
    let (out, counts) = sniffed(&tb, cmd.env("MIFSHIM_LOG", "info"));
    assert!(
        line(&out, 0).contains(&format!("peer={}:", second(Fam::V4))),
        "{}",
        out.dump()
    );
    assert!(
        line(&out, 1).contains(&format!(
            "upstream=wlan0 peer={}:",
            host_addr("wlan0", false)
        )),
        "{}",
        out.dump()
    );
    assert_none_on(&counts, &["eth0", "wwan0"]);
}

/// A program that marks its own socket (`SO_MARK` 0x20: a VPN client exempting its
/// tunnel's packets from the tunnel route) under `mark = 0x10`: the shim replaced the
/// program's mark with the policy's at `connect` and at the first datagram, unlike
/// `dscp` and device bindings, where the program's own choice wins.
#[test]
fn programs_own_mark_was_replaced_by_the_policys() {
    let tb = Testbed::up();
    let (st, policy) = setup("via = [\"wlan0\"]\nmark = 0x10\n");
    for s in [
        vec![
            "mark,0x20".to_string(),
            format!("connect,{SVC4},9000"),
            "getmark".to_string(),
        ],
        vec![
            "mark,0x20".to_string(),
            format!("send,{SVC4},9000"),
            "getmark".to_string(),
        ],
    ] {
        let (out, _) = steps(&tb, &st, &policy, false, &s);
        assert_eq!(line(&out, 2), "mark now 0x20", "{s:?}:{}", out.dump());
    }
}

/// wlan0 gains a new IPv6 address that is still in duplicate address detection
/// (tentative: it cannot be bound). A program's bind to eth0's IPv6 address was
/// rewritten to that tentative address (the first listed) and failed with
/// EADDRNOTAVAIL, although wlan0 has a usable one (2001:db8:20::2); the snapshot's
/// comment says tentative addresses cannot be a source, but `address_of` (and
/// `owns`, for `source`) took them.
#[test]
fn bind_was_rewritten_to_a_tentative_ipv6_address() {
    let tb = Testbed::up();
    for cmd in [
        "sysctl -q net.ipv6.conf.wlan0.accept_dad=1",
        "sysctl -q net.ipv6.neigh.wlan0.retrans_time_ms=30000",
        "ip -6 addr add 2001:db8:20::7/64 dev wlan0",
    ] {
        let argv: Vec<&str> = cmd.split(' ').collect();
        tb.run(&argv).assert_ok();
    }
    let shown = tb.run(&["ip", "-6", "addr", "show", "dev", "wlan0"]);
    assert!(shown.stdout.contains("tentative"), "{}", shown.dump());
    let (st, policy) = setup("via = [\"wlan0\"]\n");
    let s = [
        format!("bind,{}", host_addr("eth0", true)),
        format!("send,{SVC6},9000"),
    ];
    let (out, counts) = steps(&tb, &st, &policy, true, &s);
    assert_eq!(
        line(&out, 0),
        format!("bound {}", host_addr("wlan0", true)),
        "{}",
        out.dump()
    );
    assert!(line(&out, 1).contains("upstream=wlan0"), "{}", out.dump());
    assert_only(&counts, "wlan0");
}

both!(
    /// `source` names wlan0's second address; the program's UDP socket sends to
    /// loopback first (a local stub, a metrics agent), which makes the kernel give it
    /// a port (an automatic bind), then to the service: the configured source was
    /// lost, logged at info only ("the socket has a local address already"). A socket
    /// with a port cannot be bound to an address any more (the kernel answers
    /// `EINVAL`), so the source cannot be applied by a bind: the loss is now a warning
    /// that says why, the datagram still leaves by wlan0 only, from an address of
    /// wlan0. (Carrying the source in every datagram's PKTINFO would apply it; see
    /// the README's limits.)
    source_was_lost_silently_on_a_udp_socket_whose_first_datagram_was_exempt,
    |fam| {
        let tb = Testbed::up();
        add_second_addresses(&tb);
        let s = [
            format!("send,{},9,noreply", fam.lo()),
            format!("send,{},9000", fam.svc()),
        ];
        let pair = [host_addr("wlan0", fam.v6()), second(fam)];
        let (st, policy) = setup(&format!("via = [\"wlan0\"]\nsource = \"{}\"\n", second(fam)));
        let (out, counts) = steps(&tb, &st, &policy, fam.v6(), &s);
        assert!(line(&out, 1).contains("upstream=wlan0"), "{}", out.dump());
        assert!(
            out.stderr.contains("was given a port by an earlier datagram and can no longer be bound to an address"),
            "the loss must be a warning that says why:{}",
            out.dump()
        );
        assert_only(&counts, "wlan0");
        for p in sent(&counts, "wlan0", fam) {
            assert!(pair.contains(&p.src.to_string().as_str()), "source on the wire: {p:?}");
        }
    }
);

both!(
    /// A UDP socket bound to loopback (a local service's client) that once sends to a
    /// remote destination (the kernel refuses it: EINVAL, with or without the shim),
    /// then to loopback again: the loopback bind counted as a fixed source, so the
    /// remote send bound the socket to wlan0's device, and from then on its loopback
    /// datagrams failed with EINVAL (IPv4) or left by wlan0 onto its wire (IPv6) —
    /// without the shim they are delivered.
    udp_socket_bound_to_loopback_could_not_reach_loopback_after_one_remote_send,
    |fam| {
        let tb = Testbed::up();
        let (st, policy) = setup("via = [\"wlan0\"]\n");
        let s = [
            format!("bind,{}", fam.lo()),
            format!("send,{},9000", fam.svc()),
            format!("send,{},9,noreply", fam.lo()),
        ];
        let (out, counts) = steps(&tb, &st, &policy, fam.v6(), &s);
        if !fam.v6() {
            assert_eq!(line(&out, 1), "error 22 EINVAL", "{}", out.dump());
        }
        assert_eq!(line(&out, 2), "sent", "{}", out.dump());
        // IPv6 sends a `::1`-sourced datagram off the host (by eth0 without the shim);
        // with it, the remote one by wlan0 — and the loopback one went onto wlan0 too.
        assert_none_on(&counts, &["eth0", "wwan0"]);
        nothing_to(&counts, &UPLINKS, fam.lo(), 0);
    }
);

both!(
    /// A UDP socket connected to the service, then connected again (no
    /// `connect(AF_UNSPEC)` between: Linux allows it) to a destination a `block` rule
    /// refuses: `connect_to` returned early for a socket the shim had bound, without
    /// a decision, so the second `connect` succeeded and its datagram left by wlan0.
    /// The `connect` must fail with EACCES, and nothing reach that destination.
    reconnected_udp_socket_reached_a_blocked_destination,
    |fam| {
        let tb = Testbed::up();
        let (st, policy) = setup(&format!(
            "via = [\"wlan0\"]\n\n[[rules]]\nto = [\"{}\"]\nports = [9001]\naction = \"block\"\n",
            fam.svc()
        ));
        let s = [
            format!("connect,{},9000", fam.svc()),
            "csend".to_string(),
            format!("connect,{},9001", fam.svc()),
            "csend".to_string(),
        ];
        let (out, counts) = steps(&tb, &st, &policy, fam.v6(), &s);
        assert!(line(&out, 1).contains("upstream=wlan0"), "{}", out.dump());
        assert_eq!(line(&out, 2), "error 13 EACCES", "{}", out.dump());
        nothing_to(&counts, &UPLINKS, fam.svc(), 9001);
    }
);

/// `st BIND|- udp|tcp [SERVICE]`, a static C program (so `mifrun` runs it under its
/// supervisor, not the preload): optionally binds to BIND (port 0), sends one datagram
/// to (or connects to) port 9000 of SERVICE (IPv4 or IPv6; 203.0.113.10 without one),
/// prints the answer, then `mark M tos T` as `getsockopt` reads them (`IPV6_TCLASS`
/// on an IPv6 socket).
const STATIC_CLIENT: &str = r#"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int tcp = argc > 2 && !strcmp(argv[2], "tcp");
    const char *svc = argc > 3 ? argv[3] : "203.0.113.10";
    int v6 = strchr(svc, ':') != NULL;
    int fam = v6 ? AF_INET6 : AF_INET;
    int s = socket(fam, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
    struct timeval tv = {2, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv); /* bounds connect too */
    struct sockaddr_storage ss;
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    void *ip = v6 ? (void *)&a6->sin6_addr : (void *)&a->sin_addr;
    socklen_t len = v6 ? sizeof *a6 : sizeof *a;
    memset(&ss, 0, sizeof ss);
    ss.ss_family = fam;
    if (argc > 1 && strcmp(argv[1], "-")) {
        inet_pton(fam, argv[1], ip);
        int r = bind(s, (struct sockaddr *)&ss, len);
        socklen_t l = sizeof ss; getsockname(s, (struct sockaddr *)&ss, &l);
        char b[64]; inet_ntop(fam, ip, b, sizeof b);
        printf("bind %d %s\n", r, b);
    }
    memset(&ss, 0, sizeof ss);
    ss.ss_family = fam;
    if (v6) a6->sin6_port = htons(9000); else a->sin_port = htons(9000);
    inet_pton(fam, svc, ip);
    if (tcp) { if (connect(s, (struct sockaddr *)&ss, len)) { printf("connect %s\n", strerror(errno)); return 3; } }
    else if (sendto(s, "x", 1, 0, (struct sockaddr *)&ss, len) < 0) { printf("send %s\n", strerror(errno)); return 3; }
    char got[200]; int n = recv(s, got, sizeof got - 1, 0);
    if (n > 0) { got[n] = 0; printf("%s", got); } else printf("no answer %s\n", strerror(errno));
    int mark = 0; socklen_t ml = sizeof mark; getsockopt(s, SOL_SOCKET, SO_MARK, &mark, &ml);
    int tos = 0; socklen_t tl = sizeof tos;
    getsockopt(s, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_TCLASS : IP_TOS, &tos, &tl);
    printf("mark %#x tos %d\n", mark, tos);
    return 0;
}
"#;

/// Compiles [`STATIC_CLIENT`] statically into `dir`.
fn static_client(st: &Setup) -> String {
    let src = st.dir.write("st.c", STATIC_CLIENT);
    let bin = st.dir.path().join("st").to_string_lossy().into_owned();
    Cmd::new(None, &["gcc", "-static", "-O1", "-o", &bin, &src])
        .timeout(std::time::Duration::from_secs(120))
        .run()
        .assert_ok();
    bin
}

/// A static program under the supervisor (issue 15: "each option also works under
/// the supervisor"), policy `mark`, `dscp` and `source` (wlan0's second address): the
/// supervisor applies none of them and says nothing — on the wire DSCP 0 and wlan0's
/// first address, `getsockopt` reads mark 0 and TOS 0 (with the preload: 0x10, 184,
/// the second address). TCP and UDP.
#[test]
fn supervised_program_got_no_source_mark_or_dscp() {
    let tb = Testbed::up();
    add_second_addresses(&tb);
    let (st, policy) = setup(&format!(
        "via = [\"wlan0\"]\nmark = 0x10\ndscp = \"ef\"\nsource = \"{}\"\n",
        second(Fam::V4)
    ));
    let bin = static_client(&st);
    for proto in protos() {
        let cmd = tb.cmd(&mifrun_policy_args(&policy, &[&bin, "-", proto]));
        let (out, counts) = sniffed(&tb, cmd.env("MIFSHIM_LOG", "info"));
        assert!(
            out.stderr.contains("supervising"),
            "{proto}: supervised:{}",
            out.dump()
        );
        assert!(
            out.stdout.contains("mark 0x10 tos 184"),
            "{proto}:{}",
            out.dump()
        );
        assert_dscp(&counts, "wlan0", Fam::V4, 46);
        assert_from(&out, &counts, "wlan0", Fam::V4, second(Fam::V4));
    }
}

/// A static program under the supervisor binding eth0's address, then sending by
/// wlan0: not rewritten (the supervisor does not look at `bind`), so the datagram
/// left by wlan0 with eth0's source — the packet BCP 38 filtering drops, and whose
/// answer went by eth0 and never arrived (issue 15's first point).
#[test]
fn supervised_program_bound_to_another_interfaces_address_left_with_that_source() {
    let tb = Testbed::up();
    let (st, policy) = setup("via = [\"wlan0\"]\n");
    let bin = static_client(&st);
    for proto in protos() {
        let cmd = tb.cmd(&mifrun_policy_args(
            &policy,
            &[&bin, host_addr("eth0", false), proto],
        ));
        let (out, counts) = sniffed(&tb, cmd.env("MIFSHIM_LOG", "info"));
        assert!(
            out.stderr.contains("supervising"),
            "{proto}: supervised:{}",
            out.dump()
        );
        assert_from(&out, &counts, "wlan0", Fam::V4, host_addr("wlan0", false));
    }
}

/// The same under the supervisor for IPv6 (`IPV6_TCLASS`, wlan0's second IPv6
/// address), and a bind to eth0's IPv6 address rewritten to wlan0's (`getsockname`
/// shows the rewritten address — the policy's `source`, wlan0 having two — and
/// wlan0's source on the wire). TCP and UDP.
#[test]
fn supervised_ipv6_program_gets_the_source_class_and_mark_and_its_bind_rewritten() {
    let tb = Testbed::up();
    add_second_addresses(&tb);
    let (st, policy) = setup(&format!(
        "via = [\"wlan0\"]\nmark = 0x10\ndscp = \"ef\"\nsource = \"{}\"\n",
        second(Fam::V6)
    ));
    // wlan0 has two IPv6 addresses now: `source` names the one a rewrite takes.
    let plain = st.dir.write(
        "plain.toml",
        &format!(
            "via = [\"wlan0\"]\nsource = \"{}\"\n",
            host_addr("wlan0", true)
        ),
    );
    let bin = static_client(&st);
    for proto in protos() {
        let cmd = tb.cmd(&mifrun_policy_args(
            &policy,
            &[&bin, "-", proto, Fam::V6.svc()],
        ));
        let (out, counts) = sniffed(&tb, cmd.env("MIFSHIM_LOG", "info"));
        assert!(out.stderr.contains("supervising"), "{proto}:{}", out.dump());
        assert!(
            out.stdout.contains("mark 0x10 tos 184"),
            "{proto}:{}",
            out.dump()
        );
        assert_dscp(&counts, "wlan0", Fam::V6, 46);
        assert_from(&out, &counts, "wlan0", Fam::V6, second(Fam::V6));
        let eth = host_addr("eth0", true);
        let cmd = tb.cmd(&mifrun_policy_args(
            &plain,
            &[&bin, eth, proto, Fam::V6.svc()],
        ));
        let (out, counts) = sniffed(&tb, cmd.env("MIFSHIM_LOG", "info"));
        let wlan = host_addr("wlan0", true);
        assert!(
            out.stdout.contains(&format!("bind 0 {wlan}")),
            "{proto}: getsockname shows the rewritten address:{}",
            out.dump()
        );
        assert!(
            out.stderr.contains("an address of eth0, rewritten to"),
            "{proto}: logged:{}",
            out.dump()
        );
        assert_from(&out, &counts, "wlan0", Fam::V6, wlan);
    }
}

/// A mark under the supervisor without CAP_NET_ADMIN / CAP_NET_RAW (`setpriv` drops
/// both from the bounding set of mifrun and its supervisor): `on_mark_denied =
/// "block"` fails the call with EPERM, nothing sent, and says why; `"continue"` goes
/// on unmarked by wlan0, as under the preload.
#[test]
fn supervised_mark_without_the_capability_fails_closed_or_goes_on_as_the_policy_says() {
    let tb = Testbed::up();
    let (st, block) = setup("via = [\"wlan0\"]\nmark = 0x10\n");
    let go_on = st.dir.write(
        "continue.toml",
        "via = [\"wlan0\"]\nmark = 0x10\non_mark_denied = \"continue\"\n",
    );
    let bin = static_client(&st);
    let nocap = |policy: &str, proto: &str| {
        let mut argv = vec![
            "setpriv".to_string(),
            "--bounding-set".into(),
            "-net_admin,-net_raw".into(),
            "--".into(),
        ];
        argv.extend(mifrun_policy_args(policy, &[&bin, "-", proto]));
        tb.cmd(&argv).env("MIFSHIM_LOG", "info")
    };
    for proto in protos() {
        let (out, counts) = sniffed(&tb, nocap(&block, proto));
        out.assert_code(3);
        assert!(out.stderr.contains("supervising"), "{proto}:{}", out.dump());
        assert!(
            out.stdout.contains("Operation not permitted"),
            "{proto}: EPERM:{}",
            out.dump()
        );
        assert!(
            out.stderr
                .contains("mark 0x10 needs CAP_NET_ADMIN (or CAP_NET_RAW)")
                && out.stderr.contains("refusing (on_mark_denied = \"block\")"),
            "{proto}:{}",
            out.dump()
        );
        assert_silent(&counts);
        let (out, counts) = sniffed(&tb, nocap(&go_on, proto));
        assert!(
            out.stderr.contains("going on without the mark"),
            "{proto}:{}",
            out.dump()
        );
        assert!(
            out.stdout.contains("mark 0 tos 0"),
            "{proto}:{}",
            out.dump()
        );
        assert_from(&out, &counts, "wlan0", Fam::V4, host_addr("wlan0", false));
    }
}

/// `mifrun explain` for a destination whose rule sets `source` (wwan0's second
/// address) and `dscp` (issue 15 asks for `explain` output): it printed the kernel's
/// source (`src 198.51.100.130`) as the one used and said nothing of the class; the
/// program's connection leaves from 198.51.100.131 with DSCP 34.
#[test]
fn explain_showed_the_kernels_source_and_not_the_rules_options() {
    let tb = Testbed::up();
    tb.run(&["ip", "addr", "add", "198.51.100.131/26", "dev", "wwan0"])
        .assert_ok();
    let (_st, policy) = setup(&format!(
        "via = [\"wlan0\"]\n\n[[rules]]\nto = [\"{SVC4}\"]\nports = [9001]\nvia = [\"wwan0\"]\nsource = \"198.51.100.131\"\ndscp = \"af41\"\n"
    ));
    let out = tb.run(&[
        s(mifrun()),
        "explain".into(),
        "--policy".into(),
        policy,
        SVC4.into(),
        "9001".into(),
    ]);
    out.assert_ok();
    assert!(
        out.stdout.contains("198.51.100.131"),
        "the rule's source:{}",
        out.dump()
    );
    assert!(
        out.stdout.contains("af41") || out.stdout.contains("dscp 34"),
        "the rule's class:{}",
        out.dump()
    );
    // The route's source is the bound one, not the kernel's choice (198.51.100.130).
    assert!(
        out.stdout
            .contains("Route:    dev wwan0 via 198.51.100.129 src 198.51.100.131  ("),
        "the route from the rule's source:{}",
        out.dump()
    );
    assert!(
        out.stdout
            .contains("Options:  source 198.51.100.131; dscp af41 (34)  (from rule 1)"),
        "{}",
        out.dump()
    );
}

/// A UDP socket shared by `fork` under `source` and a rule sending port 9001 via
/// wwan0: the child's first datagram bound the socket to the source (wlan0's address)
/// and to wlan0's device; the parent, which never saw that, sent its datagram for
/// port 9001 with a PKTINFO naming wwan0, which (IPv4: `ipi_spec_dst` 0) replaced the
/// bound source with wwan0's — the answer came back to an address the socket is not
/// bound to and was lost (the host answered it with an ICMP port unreachable by
/// eth0). A datagram must leave from the socket's own address, or fail.
#[test]
fn fork_shared_socket_sent_from_an_address_it_is_not_bound_to() {
    let tb = Testbed::up();
    let (st, policy) = setup(&format!(
        "via = [\"wlan0\"]\nsource = \"{}\"\n\n[[rules]]\nto = [\"{SVC4}\"]\nports = [9001]\nvia = [\"wwan0\"]\n",
        host_addr("wlan0", false)
    ));
    let prog = st.dir.write(
        "forked.py",
        &format!(
            "import os, socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.settimeout(1)\nif os.fork() == 0:\n    s.sendto(b'x', ('{SVC4}', 9000))\n    print('child', s.recvfrom(200)[0].decode().strip(), flush=True)\n    os._exit(0)\nos.wait()\ntry:\n    s.sendto(b'x', ('{SVC4}', 9001))\n    print('parent', s.recvfrom(200)[0].decode().strip(), flush=True)\nexcept socket.timeout:\n    print('parent timeout', flush=True)\nexcept OSError as e:\n    print('parent error', e.errno, flush=True)\n"
        ),
    );
    let cmd = tb.cmd(&mifrun_policy_args(&policy, &["python3", &prog]));
    let (out, counts) = sniffed(&tb, cmd.env("MIFSHIM_LOG", "info"));
    assert!(line(&out, 0).contains("upstream=wlan0"), "{}", out.dump());
    assert_ne!(
        line(&out, 1),
        "parent timeout",
        "answer lost:{}",
        out.dump()
    );
    for u in UPLINKS {
        for p in counts[u].to(SVC4) {
            assert_eq!(
                p.src.to_string(),
                host_addr("wlan0", false),
                "on {u}: {p:?}"
            );
        }
    }
}

both!(
    /// A UDP socket connected to the service (bound to wlan0), then connected again to
    /// loopback: the README's limits say that connect fails; it succeeded, and the
    /// datagrams went onto wlan0's wire addressed to 127.0.0.1 / ::1 (never
    /// delivered). Loopback traffic must never reach a link.
    reconnected_udp_socket_sent_loopback_datagrams_onto_the_wire,
    |fam| {
        let tb = Testbed::up();
        let (st, policy) = setup("via = [\"wlan0\"]\n");
        let s = [
            format!("connect,{},9000", fam.svc()),
            "csend".to_string(),
            format!("connect,{},9", fam.lo()),
            "csend".to_string(),
        ];
        let (out, counts) = steps(&tb, &st, &policy, fam.v6(), &s);
        assert!(line(&out, 1).contains("upstream=wlan0"), "{}", out.dump());
        nothing_to(&counts, &UPLINKS, fam.lo(), 0);
    }
);

// ---------------------------------------------------------------------------------
// Hostile review 3
// ---------------------------------------------------------------------------------

/// A group (or broadcast) address of the family, which a UDP socket may be bound to
/// (a receiver bound to its group's address to get only that group's datagrams).
fn group_binds(fam: Fam) -> &'static [&'static str] {
    if fam.v6() {
        &["ff05::1:3"]
    } else {
        &["239.255.255.250", "255.255.255.255"]
    }
}

both!(
    /// A UDP socket bound to a multicast group's address (or, IPv4, the broadcast
    /// address) then sends a unicast datagram to the service, which the kernel sends
    /// with the route's source (such a bind fixes no source: `inet_saddr` is 0). The
    /// shim took the group for a fixed source of another interface and refused the
    /// datagram with EADDRNOTAVAIL; nothing left. It must leave by wlan0 (only).
    socket_bound_to_a_group_address_was_refused_as_a_foreign_source,
    |fam| {
        let tb = Testbed::up();
        let (st, policy) = setup("via = [\"wlan0\"]\n");
        for group in group_binds(fam) {
            let s = [
                format!("bind,{group}"),
                format!("send,{},9000,noreply", fam.svc()),
            ];
            let (out, counts) = steps(&tb, &st, &policy, fam.v6(), &s);
            assert_eq!(line(&out, 1), "sent", "{group}:{}", out.dump());
            assert_only(&counts, "wlan0");
            sent(&counts, "wlan0", fam);
        }
    }
);

both!(
    /// An address is added to wlan0 (a DHCP lease, a VPN client configuring its link)
    /// after the program's first steered datagram; at once the program binds a new UDP
    /// socket to it, which the kernel accepts, and sends to the service: the shim,
    /// asking its interface snapshot (refreshed at most once a second), did not find
    /// the address on wlan0 and refused the datagram with EADDRNOTAVAIL ("not an
    /// address of the interface"); after a 1.5 s sleep the same program is answered.
    /// It must leave by wlan0 from the new address and be answered.
    address_added_to_the_interface_just_now_was_refused_as_a_foreign_source,
    |fam| {
        let tb = Testbed::up();
        let (st, policy) = setup("via = [\"wlan0\"]\n");
        let (new, plen) = if fam.v6() {
            ("2001:db8:20::70", "64 nodad")
        } else {
            ("198.51.100.70", "26")
        };
        let svc = fam.svc();
        let prog = st.dir.write(
            "added.py",
            &format!(
                "import os, socket\nfam = socket.{}\ns = socket.socket(fam, socket.SOCK_DGRAM)\ns.settimeout(2)\ns.sendto(b'x', ('{svc}', 9000))\nprint(s.recvfrom(200)[0].decode().strip(), flush=True)\nos.system('ip addr add {new}/{plen} dev wlan0')\nt = socket.socket(fam, socket.SOCK_DGRAM)\nt.settimeout(2)\nt.bind(('{new}', 0))\ntry:\n    t.sendto(b'x', ('{svc}', 9000))\n    print(t.recvfrom(200)[0].decode().strip(), flush=True)\nexcept socket.timeout:\n    print('error timeout', flush=True)\nexcept OSError as e:\n    print('error', e.errno, flush=True)\n",
                if fam.v6() { "AF_INET6" } else { "AF_INET" }
            ),
        );
        let cmd = tb.cmd(&mifrun_policy_args(&policy, &["python3", &prog]));
        let (out, counts) = sniffed(&tb, cmd);
        assert!(line(&out, 0).contains("upstream=wlan0"), "{}", out.dump());
        let want: std::net::IpAddr = new.parse().unwrap();
        assert!(
            line(&out, 1).contains("upstream=wlan0") && peers(line(&out, 1)) == [want],
            "{}",
            out.dump()
        );
        assert_only(&counts, "wlan0");
    }
);

// ---------------------------------------------------------------------------------
// The socket's own binding under the supervisor (issue 11)
// ---------------------------------------------------------------------------------

/// `ssteps 4|6 udp|tcp STEP…`, a static C program (run by the supervisor): one socket,
/// then each step, one output line per step as `steps.py` prints them (`bind,ADDR`,
/// `send,ADDR,PORT` with the answer, `connect,ADDR,PORT` — over TCP the line the
/// service writes —, errors as `error ERRNO NAME`).
const STATIC_STEPS: &str = r#"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
static const char *name(int e) {
    switch (e) {
    case EINVAL: return "EINVAL"; case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ENETUNREACH: return "ENETUNREACH"; case EACCES: return "EACCES";
    case EAGAIN: return "timeout"; default: return "?";
    }
}
static socklen_t sa(int v6, const char *ip, int port, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof *ss);
    if (v6) {
        struct sockaddr_in6 *a = (void *)ss; a->sin6_family = AF_INET6;
        a->sin6_port = htons(port); inet_pton(AF_INET6, ip, &a->sin6_addr);
        return sizeof *a;
    }
    struct sockaddr_in *a = (void *)ss; a->sin_family = AF_INET;
    a->sin_port = htons(port); inet_pton(AF_INET, ip, &a->sin_addr);
    return sizeof *a;
}
int main(int argc, char **argv) {
    int v6 = argv[1][0] == '6', tcp = !strcmp(argv[2], "tcp");
    int s = socket(v6 ? AF_INET6 : AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
    struct timeval tv = {2, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    for (int i = 3; i < argc; i++) {
        char op[16] = "", ip[64] = ""; int port = 0;
        sscanf(argv[i], "%15[^,],%63[^,],%d", op, ip, &port);
        struct sockaddr_storage ss; socklen_t len = sa(v6, ip, port, &ss);
        char buf[256]; int n, r;
        if (!strcmp(op, "bind")) r = bind(s, (void *)&ss, len);
        else if (!strcmp(op, "connect")) r = connect(s, (void *)&ss, len);
        else r = sendto(s, "x", 1, 0, (void *)&ss, len) == 1 ? 0 : -1;
        if (r != 0) { printf("error %d %s\n", errno, name(errno)); fflush(stdout); continue; }
        if (!strcmp(op, "bind")) { printf("bound %s\n", ip); fflush(stdout); continue; }
        if (!strcmp(op, "connect") && !tcp) { printf("connected\n"); fflush(stdout); continue; }
        n = recv(s, buf, sizeof buf - 1, 0);
        if (n <= 0) printf("error %d %s\n", errno, name(errno));
        else { buf[n] = 0; printf("%s%s", buf, buf[n - 1] == '\n' ? "" : "\n"); }
        fflush(stdout);
    }
    return 0;
}
"#;

/// [`STATIC_STEPS`] under `policy` with every uplink sniffed (statically linked:
/// `mifrun` supervises it).
fn static_steps(
    tb: &Testbed,
    st: &Setup,
    policy: &str,
    fam: Fam,
    proto: &str,
    steps: &[String],
) -> (Out, BTreeMap<String, Counts>) {
    let bin = st.dir.path().join("ssteps").to_string_lossy().into_owned();
    if !std::path::Path::new(&bin).exists() {
        let src = st.dir.write("ssteps.c", STATIC_STEPS);
        Cmd::new(None, &["gcc", "-static", "-O1", "-o", &bin, &src])
            .timeout(std::time::Duration::from_secs(120))
            .run()
            .assert_ok();
    }
    let mut argv = vec![
        bin,
        if fam.v6() { "6" } else { "4" }.to_string(),
        proto.to_string(),
    ];
    argv.extend(steps.iter().cloned());
    let (out, counts) = sniffed(
        tb,
        tb.cmd(&mifrun_policy_args(policy, &argv))
            .env("MIFSHIM_LOG", "info"),
    );
    assert!(
        out.stderr.contains("supervising"),
        "supervised:{}",
        out.dump()
    );
    (out, counts)
}

/// The call that reaches the service: a datagram over UDP, a connect over TCP.
fn reach(proto: &str, dest: &str, port: u16) -> String {
    let op = if proto == "tcp" { "connect" } else { "send" };
    format!("{op},{dest},{port}")
}

both!(
    /// A static program's socket bound to loopback, then asked to reach the service:
    /// the supervisor bound it to wlan0 and let it go (IPv6 sends a `::1`-sourced
    /// packet onto the link; IPv4's kernel refuses). Refused with EINVAL, as under
    /// the preload (socket-core's `steer_refusal`), and nothing on any uplink. TCP
    /// and UDP.
    supervised_socket_bound_to_loopback_was_sent_by_the_steered_device,
    |fam| {
        let tb = Testbed::up();
        let (st, policy) = setup("via = [\"wlan0\"]\n");
        for proto in protos() {
            let s = [format!("bind,{}", fam.lo()), reach(proto, fam.svc(), 9000)];
            let (out, counts) = static_steps(&tb, &st, &policy, fam, proto, &s);
            assert_eq!(line(&out, 0), format!("bound {}", fam.lo()), "{proto}:{}", out.dump());
            assert_eq!(line(&out, 1), "error 22 EINVAL", "{proto}:{}", out.dump());
            assert!(out.stderr.contains("the socket's source"), "{proto}: said why:{}", out.dump());
            assert_silent(&counts);
        }
    }
);

both!(
    /// A static program's socket bound to wlan0's address (the chosen interface's:
    /// kept), then asked to reach a destination a rule sends by wwan0: the supervisor
    /// bound it to wwan0 and it left with wlan0's source, whose answers come back by
    /// wlan0 if at all. Refused with EADDRNOTAVAIL (the preload's `fixed_source_refuses`),
    /// nothing to that destination on any uplink; `foreign_bind = "keep"` lets it go
    /// by wwan0 (and by no other link). TCP and UDP.
    supervised_socket_with_a_source_of_another_interface_than_the_rules,
    |fam| {
        let tb = Testbed::up();
        let rule = format!("\n[[rules]]\nto = [\"{}\"]\nports = [9000]\nvia = [\"wwan0\"]\n", fam.svc());
        let (st, policy) = setup(&format!("via = [\"wlan0\"]\n{rule}"));
        let keep = st.dir.write("keep.toml", &format!("via = [\"wlan0\"]\nforeign_bind = \"keep\"\n{rule}"));
        let wlan = host_addr("wlan0", fam.v6());
        for proto in protos() {
            let s = [format!("bind,{wlan}"), reach(proto, fam.svc(), 9000)];
            let (out, counts) = static_steps(&tb, &st, &policy, fam, proto, &s);
            assert_eq!(line(&out, 1), "error 99 EADDRNOTAVAIL", "{proto}:{}", out.dump());
            nothing_to(&counts, &UPLINKS, fam.svc(), 9000);
            let (out, counts) = static_steps(&tb, &st, &keep, fam, proto, &s);
            // Sent by wwan0 with wlan0's source (its answer may not come back: the
            // policy's choice).
            assert!(!line(&out, 1).contains("EADDRNOTAVAIL"), "{proto}: kept:{}", out.dump());
            assert!(!counts["wwan0"].to(fam.svc()).is_empty(), "{proto}: by wwan0: {counts:#?}");
            nothing_to(&counts, &["eth0", "wlan0"], fam.svc(), 9000);
        }
    }
);

both!(
    /// A static program's UDP socket bound to wlan0's address sends to the service
    /// (the supervisor binds it to wlan0's device), then connects to a destination a
    /// rule sends by wwan0: the connect went through, bound to wlan0, and its
    /// datagrams left by wlan0 past the rule. Refused with ENETUNREACH, as under the
    /// preload (`bound_elsewhere`), nothing to that destination on any uplink.
    supervised_udp_socket_the_supervisor_bound_connected_past_a_rule,
    |fam| {
        let tb = Testbed::up();
        let (st, policy) = setup(&format!(
            "via = [\"wlan0\"]\n\n[[rules]]\nto = [\"{}\"]\nports = [9001]\nprotocol = \"udp\"\nvia = [\"wwan0\"]\n",
            fam.svc()
        ));
        let s = [
            format!("bind,{}", host_addr("wlan0", fam.v6())),
            format!("send,{},9000", fam.svc()),
            format!("connect,{},9001", fam.svc()),
            format!("send,{},9001", fam.svc()),
        ];
        let (out, counts) = static_steps(&tb, &st, &policy, fam, "udp", &s);
        assert!(line(&out, 1).contains("upstream=wlan0"), "{}", out.dump());
        assert_eq!(line(&out, 2), "error 101 ENETUNREACH", "{}", out.dump());
        assert_eq!(line(&out, 3), "error 101 ENETUNREACH", "{}", out.dump());
        assert!(out.stderr.contains("the socket is bound to interface"), "said why:{}", out.dump());
        nothing_to(&counts, &UPLINKS, fam.svc(), 9001);
    }
);

/// A supervised program that dropped CAP_NET_ADMIN and CAP_NET_RAW itself (`setpriv`
/// inside `mifrun --supervise`, mifrun root) under `mark = 0x10`: the supervisor
/// sets `SO_MARK` on its duplicate with its own capabilities (mifrun's), so the
/// program's socket carries the policy's mark where the preload, running with the
/// program's capabilities, is refused (EPERM, `on_mark_denied = "block"`). Kept on
/// purpose (README, supervisor limits): the mark is the policy's and its value is
/// never the program's, which gains nothing it could use. TCP and UDP.
#[test]
fn supervised_program_that_dropped_its_capabilities_gets_the_mark_with_mifruns() {
    let tb = Testbed::up();
    let (st, policy) = setup("via = [\"wlan0\"]\nmark = 0x10\n");
    let bin = static_client(&st);
    let dropped = |prog: &[&str]| {
        let mut argv = vec![
            s(mifrun()),
            "--supervise".into(),
            "--policy".into(),
            policy.clone(),
            "--".into(),
            "setpriv".into(),
            "--bounding-set".into(),
            "-net_admin,-net_raw".into(),
            "--".into(),
        ];
        argv.extend(prog.iter().map(|a| a.to_string()));
        tb.cmd(&argv).env("MIFSHIM_LOG", "info")
    };
    for proto in protos() {
        let (out, counts) = sniffed(&tb, dropped(&[&bin, "-", proto]));
        assert!(
            out.stdout.contains("mark 0x10"),
            "{proto}: marked:{}",
            out.dump()
        );
        assert_from(&out, &counts, "wlan0", Fam::V4, host_addr("wlan0", false));
        // The same program's capabilities through the preload: refused.
        let (out, counts) = sniffed(&tb, dropped(&["python3", st.client.as_str(), SVC4, proto]));
        assert!(
            out.stdout.contains("error 1 EPERM"),
            "{proto}: preload refused:{}",
            out.dump()
        );
        assert_silent(&counts);
    }
}
