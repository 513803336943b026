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
/// and Linux sends the TIME_WAIT ACK of an IPv6 connection from its control socket,
/// unbound, so by the lowest-metric default route (eth0) whatever the connection's
/// device — a packet no socket option reaches (seen on the testbed, 1 in ~10 runs).
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
