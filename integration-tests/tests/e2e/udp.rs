use super::*;

const PY_UDP: &str = r#"
import socket, sys
a, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
if mode == "sendto":
    s.sendto(b"py", (a, port))
elif mode == "sendmsg":
    s.sendmsg([b"py"], [], 0, (a, port))
else:
    s.connect((a, port))
    s.send(b"py")
print(s.recv(2048).decode(), end="")
"#;

fn py_udp(tb: &Testbed, fam: Fam, mode: &str) {
    let a = strs(&["python3", "-c", PY_UDP, fam.svc(), "9000", mode]);
    expect_via(tb, tb.cmd(&mifrun_args("wlan0", &a)), "wlan0");
}

both!(python_sendto_via_wlan0, |fam| {
    let tb = Testbed::up();
    py_udp(&tb, fam, "sendto");
});

both!(python_sendmsg_via_wlan0, |fam| {
    let tb = Testbed::up();
    py_udp(&tb, fam, "sendmsg");
});

both!(python_connected_via_wlan0, |fam| {
    let tb = Testbed::up();
    py_udp(&tb, fam, "connect");
});

both!(nc_udp_via_wlan0, |fam| {
    let tb = Testbed::up();
    let a = strs(&["nc", "-u", "-w", "2", fam.svc(), "9001"]);
    let out = expect_via(
        &tb,
        tb.cmd(&mifrun_args("wlan0", &a)).stdin("hello\n"),
        "wlan0",
    );
    assert_eq!(upstreams(&out.stdout).len(), 1, "{}", out.dump());
});

both!(probe_sendmmsg_via_wlan0, |fam| {
    let tb = Testbed::up();
    let a = probe_args(&["udp-sendmmsg", fam.svc(), "9000", "4"]);
    let out = expect_via(&tb, tb.cmd(&mifrun_args("wlan0", &a)), "wlan0");
    assert_eq!(upstreams(&out.stdout).len(), 4, "{}", out.dump());
});

both!(
    /// Batches of 32 datagrams to one destination: the first call is steered with a
    /// PKTINFO per message (and may be cut, as sendmmsg(2) allows); from the second
    /// decision on, the socket's unicast interface is set and whole batches go out in
    /// one call without reaching the engine. All 96 leave by wlan0.
    uniform_sendmmsg_batches_go_whole_after_the_second_decision, |fam| {
        let tb = Testbed::up();
        let a = probe_args(&["udp-sendmmsg", fam.svc(), "9000", "32", "3"]);
        let out = expect_via(&tb, tb.cmd(&mifrun_args("wlan0", &a)).env("MIFSHIM_LOG", "debug"), "wlan0");
        assert_eq!(upstreams(&out.stdout).len(), 96, "{}", out.dump());
        let calls: usize = out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("sendmmsg_calls="))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no call count:\n{}", out.dump()));
        // 8 with PKTINFO + the other 24, then one call per batch (it was 12 calls of
        // at most 8 before batches were decided once).
        assert!(calls <= 5, "{calls} sendmmsg calls for 3 batches:\n{}", out.dump());
        let decided = out.stderr.lines().filter(|l| l.contains(" sendmmsg ")).count();
        assert!(
            (1..10).contains(&decided),
            "{decided} engine decisions for 96 datagrams:\n{}",
            out.dump()
        );
    }
);

/// An IPv4 destination (a `sockaddr_in`) sent from a dual-stack AF_INET6 socket
/// takes the kernel's IPv4 path, which reads only the IPv4 options: the shim used
/// the IPv6 ones, so the first datagram failed (EINVAL) and later ones left
/// unsteered by the default route.
#[test]
fn ipv4_datagrams_on_an_ipv6_socket_used_the_ipv6_options_and_leaked() {
    let tb = Testbed::up();
    let a = probe_args(&["udp-v4-on-v6", Fam::V4.svc(), "9001", "5"]);
    let out = expect_via(&tb, tb.cmd(&mifrun_args("wlan0", &a)), "wlan0");
    assert_eq!(upstreams(&out.stdout).len(), 5, "{}", out.dump());
}

/// Linux takes an `AF_UNSPEC` destination on an IPv4 socket as `AF_INET` (old
/// programs leave `sin_family` zero); the shim did not decode it, so those
/// datagrams went out unsteered by the default route.
#[test]
fn unspec_family_destination_on_ipv4_socket_left_unsteered() {
    let tb = Testbed::up();
    let a = probe_args(&["udp-unspec", Fam::V4.svc(), "9001", "3"]);
    let plain = tb.cmd(&a).run();
    assert_eq!(
        upstreams(&plain.stdout).len(),
        3,
        "the kernel takes AF_UNSPEC: {}",
        plain.dump()
    );
    let out = expect_via(&tb, tb.cmd(&mifrun_args("wlan0", &a)), "wlan0");
    assert_eq!(upstreams(&out.stdout).len(), 3, "{}", out.dump());
}

both!(
    /// The program setting IP(V6)_UNICAST_IF to 0 removed the unicast interface the
    /// shim had set, but the shim still counted on it: later datagrams passed
    /// unchanged and left by the default route.
    program_clearing_unicast_if_left_datagrams_unsteered, |fam| {
        let tb = Testbed::up();
        let a = probe_args(&["udp-clear-ucif", fam.svc(), "9001"]);
        let out = expect_via(&tb, tb.cmd(&mifrun_args("wlan0", &a)), "wlan0");
        assert_eq!(upstreams(&out.stdout).len(), 6, "{}", out.dump());
    }
);

both!(
    /// A program that closes standard error and gets fd 2 back for a socket: the
    /// shim's log lines (info level: one per decision) must not go into that socket.
    /// Closed before the engine was loaded, the close never reached the engine, and
    /// its start-up and decision lines went to the socket as datagrams.
    closed_stderr_reused_as_socket_received_log_lines, |fam| {
        let tb = Testbed::up();
        for when in ["early", "late"] {
            let a = probe_args(&["close-stderr", when, fam.svc(), "9001"]);
            let out = expect_via(&tb, tb.cmd(&mifrun_args("wlan0", &a)).env("MIFSHIM_LOG", "info"), "wlan0");
            assert!(out.stdout.contains("socket_fd=2"), "{when}: {}", out.dump());
            assert_eq!(upstreams(&out.stdout).len(), 1, "{when}: {}", out.dump());
            assert!(out.stdout.contains("extra_replies=0"), "{when}: log lines went into the socket: {}", out.dump());
        }
    }
);

both!(probe_sendto_via_wlan0, |fam| {
    let tb = Testbed::up();
    let a = probe_args(&["udp-sendto", fam.svc(), "9001"]);
    expect_via(&tb, tb.cmd(&mifrun_args("wlan0", &a)), "wlan0");
});

both!(
    /// A socket that keeps sending to one destination gets its unicast interface set
    /// once (the datagrams then need no control message); every datagram still leaves
    /// by wlan0 and nothing reaches the other uplinks.
    repeated_sendto_sets_unicast_if_once, |fam| {
        let tb = Testbed::up();
        let a = probe_args(&["udp-repeat", fam.svc(), "9001", "50"]);
        let out = expect_via(&tb, tb.cmd(&mifrun_args("wlan0", &a)), "wlan0");
        assert_eq!(upstreams(&out.stdout).len(), 50, "{}", out.dump());
        let index = tb.run(&["cat", "/sys/class/net/wlan0/ifindex"]);
        let want = format!("unicast_if={}", index.stdout.trim());
        assert!(out.stdout.contains(&want), "expected {want}:\n{}", out.dump());
        // Without the shim the option is unset: the test measures the shim.
        let plain = tb.cmd(&a).run();
        assert!(plain.stdout.contains("unicast_if=0"), "{}", plain.dump());
    }
);

both!(
    /// After the socket's unicast interface is set, datagrams to the same destination
    /// take the preloaded stub's fast path: they never reach the engine (which logs
    /// every datagram it decides at debug level), and still all leave by wlan0.
    repeated_sendto_skips_the_engine_after_the_second_datagram, |fam| {
        let tb = Testbed::up();
        let a = probe_args(&["udp-repeat", fam.svc(), "9001", "50"]);
        let out = expect_via(&tb, tb.cmd(&mifrun_args("wlan0", &a)).env("MIFSHIM_LOG", "debug"), "wlan0");
        assert_eq!(upstreams(&out.stdout).len(), 50, "{}", out.dump());
        let decided = out
            .stderr
            .lines()
            .filter(|l| l.contains(" sendto ") && l.contains("-> wlan0"))
            .count();
        // Two decisions (the first datagram, then the one that sets the unicast
        // interface), plus one per snapshot refresh (at most one a second) should
        // the run be slow.
        assert!(
            (2..10).contains(&decided),
            "{decided} of 50 datagrams went through the engine:\n{}",
            out.dump()
        );
    }
);

both!(
    /// One unconnected socket alternating between loopback and the service: the loopback
    /// datagrams must not be steered (they would leave via wlan0 and be lost).
    probe_mixed_loopback_and_remote, |fam| {
        let tb = Testbed::up();
        let a = probe_args(&["udp-mixed", fam.svc(), "9000", "5555"]);
        let out = expect_via(&tb, tb.cmd(&mifrun_args("wlan0", &a)), "wlan0");
        assert_eq!(out.stdout.matches("loopback-echo").count(), 3, "{}", out.dump());
        assert_eq!(upstreams(&out.stdout).len(), 3, "{}", out.dump());
    }
);

/// On an AF_INET6 socket whose IPV6_UNICAST_IF the shim had set (two datagrams to a
/// native IPv6 destination), later IPv4-mapped datagrams took the hot path although
/// IPV4 traffic ignores that option: they left by eth0. And the other way round.
#[test]
fn v4_mapped_after_native_v6_leaked_to_default_route() {
    let tb = Testbed::up();
    let code = "import socket\n\
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)\n\
for d in ['2001:db8:ff::10'] * 2 + ['::ffff:203.0.113.10'] * 3 + ['2001:db8:ff::10'] * 2:\n    \
s.sendto(b'x', (d, 9000)); print(s.recvfrom(200)[0].decode().strip())";
    let sn = tb.sniff_all();
    let out = tb
        .cmd(&mifrun_args("wlan0", &strs(&["python3", "-c", code])))
        .run();
    let counts = sn.stop();
    out.assert_ok();
    let ups = upstreams(&out.stdout);
    assert_eq!(ups.len(), 7, "{}", out.dump());
    assert!(ups.iter().all(|u| u == "wlan0"), "{}", out.dump());
    assert_only(&counts, "wlan0");
}

both!(
    /// A sendmmsg batch holding a steered and an exempt destination: the exempt one
    /// cleared the socket's unicast interface, and the steered message sent with
    /// the socket-wide option (no PKTINFO) went out by eth0.
    sendmmsg_batch_with_exempt_message_leaked_steered_one, |fam| {
        let tb = Testbed::up();
        let a = probe_args(&["udp-mmsg-mixed", fam.svc(), "9000", "5556"]);
        let out = expect_via(&tb, tb.cmd(&mifrun_args("wlan0", &a)), "wlan0");
        assert_eq!(upstreams(&out.stdout).len(), 2, "{}", out.dump());
        assert!(out.stdout.contains("loopback-got probe mmsg-mixed loopback"), "{}", out.dump());
    }
);

/// A sendto with the 24-byte RFC 2133 sockaddr_in6 (no scope id), which the kernel
/// accepts, was not decoded and went out unsteered by eth0.
#[test]
fn rfc2133_sockaddr_in6_bypassed_the_shim() {
    let tb = Testbed::up();
    let a = probe_args(&["udp-rfc2133", Fam::V6.svc(), "9000"]);
    expect_via(&tb, tb.cmd(&mifrun_args("wlan0", &a)), "wlan0");
}

both!(
    /// A UDP socket steered by IP_UNICAST_IF (two datagrams to the service) and
    /// then connected to a loopback server kept the option: its datagram left by
    /// wlan0 towards 127.0.0.1 and never arrived.
    exempt_connect_after_datagrams_kept_unicast_if, |fam| {
        let tb = Testbed::up();
        let lo = if fam.v6() { "::1" } else { "127.0.0.1" };
        let af = if fam.v6() { "AF_INET6" } else { "AF_INET" };
        let code = format!(
            "import socket\n\
r = socket.socket(socket.{af}, socket.SOCK_DGRAM); r.bind(('{lo}', 0)); r.settimeout(3)\n\
s = socket.socket(socket.{af}, socket.SOCK_DGRAM); s.settimeout(3)\n\
for _ in range(2):\n    s.sendto(b'x', ('{svc}', 9000)); print(s.recvfrom(200)[0].decode().strip())\n\
s.connect(r.getsockname()[:2]); s.send(b'to-loopback')\n\
print('loopback-got', r.recvfrom(100)[0].decode())",
            svc = fam.svc()
        );
        let sn = tb.sniff_all();
        let out = tb.cmd(&mifrun_args("wlan0", &strs(&["python3", "-c", &code]))).run();
        let counts = sn.stop();
        out.assert_ok();
        assert!(out.stdout.contains("loopback-got to-loopback"), "{}", out.dump());
        assert_eq!(upstreams(&out.stdout), ["wlan0", "wlan0"], "{}", out.dump());
        assert_only(&counts, "wlan0");
    }
);
