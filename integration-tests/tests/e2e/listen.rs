use super::*;

fn client(tb: &Testbed, uplink: &str, fam: Fam, port: u16) -> Out {
    let url = format!(
        "http://{}:{port}/",
        fam.url_host(host_addr(uplink, fam.v6()))
    );
    tb.cmd_upstream(uplink, &strs(&["curl", "-sS", "--max-time", "3", &url]))
        .timeout(Duration::from_secs(10))
        .run()
}

fn wildcard(fam: Fam) -> &'static str {
    if fam.v6() { "::" } else { "0.0.0.0" }
}

fn via_wlan0() -> Vec<String> {
    strs(&[&s(mifrun()), "--via", "wlan0", "--"])
}

/// The service address the upstreams own on their `lo`: a source beyond the host's
/// subnets (an "Internet" peer reaching the host through that uplink).
fn off_link(fam: Fam) -> &'static str {
    fam.svc()
}

/// curl from the host namespace (not under the shim) to `addr:port`.
fn local_client(tb: &Testbed, fam: Fam, addr: &str, port: u16) -> Out {
    let url = format!("http://{}:{port}/", fam.url_host(addr));
    tb.run(&strs(&["curl", "-sS", "--max-time", "3", &url]))
}

/// Every packet `uplink` saw went *to* the host's address on it (the client's SYNs):
/// nothing answered there.
#[track_caller]
fn only_requests_on(
    counts: &std::collections::BTreeMap<String, Counts>,
    uplink: &str,
    fam: Fam,
    proto: &str,
    port: u16,
) {
    let c = &counts[uplink];
    assert!(
        c.total() > 0,
        "the {uplink} client's packets were not seen: {counts:#?}"
    );
    let to_host = format!(
        "{proto} {}:{port}",
        fam.url_host(host_addr(uplink, fam.v6()))
    );
    for p in &c.first {
        assert_eq!(p, &to_host, "something answered on {uplink}: {counts:#?}");
    }
}

both!(wildcard_listener_confined_to_wlan0, |fam| {
    let tb = Testbed::up();
    let dir = TempDir::new("listen");
    let _srv = py_server(&tb, &dir, &via_wlan0(), wildcard(fam), 7400);
    let sn = tb.sniff_all();
    let ok = client(&tb, "wlan0", fam, 7400);
    let counts = sn.stop();
    ok.assert_ok();
    assert!(ok.stdout.contains("local-ok"), "{}", ok.dump());
    assert_only(&counts, "wlan0");
    let sn = tb.sniff_all();
    let refused = client(&tb, "eth0", fam, 7400);
    let counts = sn.stop();
    assert!(
        !refused.ok(),
        "eth0 client must not reach a wlan0-confined listener:{}",
        refused.dump()
    );
    // The SYNs were seen on eth0, no SYN-ACK (nor RST) answered them.
    only_requests_on(&counts, "eth0", fam, "tcp", 7400);
    assert_none_on(&counts, &["wlan0", "wwan0"]);
});

both!(
    /// CPython's `socket.create_server(("", port))` and a client on 127.0.0.1 / ::1
    /// (its own test suites, asyncio, test servers): the device-bound listener refused
    /// every connection over loopback, also to the host's own eth0 address.
    wildcard_listener_accepts_loopback_and_the_hosts_own_addresses, |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("listen-lo");
        let _srv = py_server(&tb, &dir, &via_wlan0(), wildcard(fam), 7403);
        let sn = tb.sniff_all();
        for addr in [fam.lo(), host_addr("eth0", fam.v6()), host_addr("wlan0", fam.v6())] {
            let o = local_client(&tb, fam, addr, 7403);
            o.assert_ok();
            assert!(o.stdout.contains("local-ok"), "{addr}: {}", o.dump());
        }
        // Local traffic never touches an uplink.
        assert_silent(&sn.stop());
    }
);

both!(
    /// A peer beyond wlan0's subnet reaching the listener through wlan0: an unbound
    /// listener's SYN-ACK follows the routing table, so a filter admitting every
    /// source from wlan0 answered it by eth0, the default route. It is not admitted.
    off_link_peer_through_wlan0_is_not_answered_by_the_default_route, |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("listen-offlink");
        let _srv = py_server(&tb, &dir, &via_wlan0(), wildcard(fam), 7404);
        let url = format!("http://{}:7404/", fam.url_host(host_addr("wlan0", fam.v6())));
        let sn = tb.sniff_all();
        let o = tb
            .cmd_upstream("wlan0", &strs(&["curl", "-sS", "--max-time", "3", "--interface", off_link(fam), &url]))
            .timeout(Duration::from_secs(10))
            .run();
        let counts = sn.stop();
        assert!(!o.ok(), "{}", o.dump());
        assert_none_on(&counts, &["eth0", "wwan0"]);
    }
);

both!(
    /// `listen = "device"`: the device binding — an off-link peer through wlan0 is
    /// answered through wlan0, loopback is refused.
    listen_device_policy_binds_the_device, |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("listen-device");
        let p = dir.write("policy.toml", "via = [\"wlan0\"]\nlisten = \"device\"\n");
        let pre = strs(&[&s(mifrun()), "--policy", &p, "--"]);
        let _srv = py_server(&tb, &dir, &pre, wildcard(fam), 7405);
        let url = format!("http://{}:7405/", fam.url_host(host_addr("wlan0", fam.v6())));
        let sn = tb.sniff_all();
        let o = tb
            .cmd_upstream("wlan0", &strs(&["curl", "-sS", "--max-time", "3", "--interface", off_link(fam), &url]))
            .timeout(Duration::from_secs(10))
            .run();
        let counts = sn.stop();
        o.assert_ok();
        assert!(o.stdout.contains("local-ok"), "{}", o.dump());
        assert_only(&counts, "wlan0");
        assert!(!local_client(&tb, fam, fam.lo(), 7405).ok());
    }
);

both!(listen_any_policy_allows_all, |fam| {
    let tb = Testbed::up();
    let dir = TempDir::new("listen-any");
    let p = dir.write("policy.toml", "via = [\"wlan0\"]\nlisten = \"any\"\n");
    let pre = strs(&[&s(mifrun()), "--policy", &p, "--"]);
    let _srv = py_server(&tb, &dir, &pre, wildcard(fam), 7401);
    for up in ["wlan0", "eth0"] {
        let o = client(&tb, up, fam, 7401);
        o.assert_ok();
        assert!(o.stdout.contains("local-ok"), "{}", o.dump());
    }
    let o = local_client(&tb, fam, fam.lo(), 7401);
    o.assert_ok();
});

both!(
    /// With `foreign_bind = "keep"` a listener on another interface's address is the
    /// program's choice (issue 15 rewrites it by default).
    explicit_address_listener_left_alone_with_foreign_bind_keep,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("listen-explicit");
        let policy = dir.write("keep.toml", "via = [\"wlan0\"]\nforeign_bind = \"keep\"\n");
        let prefix = strs(&[&s(mifrun()), "--policy", &policy, "--"]);
        let _srv = py_server(&tb, &dir, &prefix, host_addr("eth0", fam.v6()), 7402);
        let o = client(&tb, "eth0", fam, 7402);
        o.assert_ok();
        assert!(o.stdout.contains("local-ok"), "{}", o.dump());
    }
);

both!(
    /// By default a listener bound to eth0's address listens on wlan0's instead:
    /// reached from wlan0 at wlan0's address, not from eth0 at eth0's.
    explicit_address_listener_of_another_interface_moves_to_the_chosen_one,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("listen-explicit");
        let _srv = py_server(&tb, &dir, &via_wlan0(), host_addr("eth0", fam.v6()), 7402);
        let o = client(&tb, "wlan0", fam, 7402);
        o.assert_ok();
        assert!(o.stdout.contains("local-ok"), "{}", o.dump());
        assert!(!client(&tb, "eth0", fam, 7402).ok());
    }
);

/// A UDP echo server on the wildcard address (dual-stack for IPv6), optionally with
/// the program's own socket-filter calls around `bind`; prints `ready`.
const PY_UDP: &str = r#"
import socket, sys, time
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
if fam == socket.AF_INET6:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
s.settimeout(0.5)
end = time.time() + 30
while time.time() < end:
    try:
        d, peer = s.recvfrom(100)
    except socket.timeout:
        continue
    s.sendto(b"echo-" + d, peer)
"#;

/// Sends one datagram to `addr:port` (from `src` if given), prints the answer.
const PY_UDP_CLIENT: &str = r#"
import socket, sys
addr, port = sys.argv[1], int(sys.argv[2])
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
if len(sys.argv) > 3:
    s.bind((sys.argv[3], 0))
s.settimeout(2)
s.sendto(b"hi", (addr, port))
print(s.recvfrom(100)[0].decode())
"#;

both!(
    /// A UDP server on the wildcard address: datagrams from wlan0 (also from beyond
    /// its subnet: the reply is steered back through wlan0) and over loopback are
    /// answered; eth0's are dropped unanswered. The device-bound socket sent its
    /// replies to 127.0.0.1 out of wlan0.
    udp_server_answers_wlan0_and_loopback_only, |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("listen-udp");
        let srv = dir.write("udp.py", PY_UDP);
        let cli = dir.write("cli.py", PY_UDP_CLIENT);
        let mut argv = via_wlan0();
        argv.extend(strs(&["python3", &srv, wildcard(fam), "7406"]));
        let mut bg = tb.cmd(&argv).timeout(Duration::from_secs(40)).spawn();
        bg.wait_for_stdout("ready", Duration::from_secs(10));
        let wl = host_addr("wlan0", fam.v6());
        for src in [None, Some(off_link(fam))] {
            let mut a = strs(&["python3", &cli, wl, "7406"]);
            a.extend(src.map(str::to_string));
            let sn = tb.sniff_all();
            let o = tb.cmd_upstream("wlan0", &a).run();
            let counts = sn.stop();
            o.assert_ok();
            assert!(o.stdout.contains("echo-hi"), "{src:?}: {}", o.dump());
            assert_only(&counts, "wlan0");
        }
        let sn = tb.sniff_all();
        let o = tb.cmd_upstream("eth0", &strs(&["python3", &cli, host_addr("eth0", fam.v6()), "7406"])).run();
        let counts = sn.stop();
        assert!(!o.ok(), "{}", o.dump());
        only_requests_on(&counts, "eth0", fam, "udp", 7406);
        let sn = tb.sniff_all();
        for addr in [fam.lo(), host_addr("eth0", fam.v6())] {
            let o = tb.run(&strs(&["python3", &cli, addr, "7406"]));
            o.assert_ok();
            assert!(o.stdout.contains("echo-hi"), "{addr}: {}", o.dump());
        }
        assert_silent(&sn.stop());
    }
);

/// A TCP server like [`PY_SERVER`] that makes the program's own socket-filter calls:
/// argv[3] before `listen`, argv[4] after (`none`, `attach` an accept-all classic
/// filter, `detach`, `lock`).
const PY_FILTER_SERVER: &str = r#"
import ctypes, socket, struct, sys, time
def op(s, what):
    if what == "attach":
        ins = struct.pack("HBBI", 0x06, 0, 0, 0xffffffff)
        buf = ctypes.create_string_buffer(ins)
        op.keep = buf
        s.setsockopt(socket.SOL_SOCKET, 26, struct.pack("HxxxxxxP", 1, ctypes.addressof(buf)))
    elif what == "detach":
        s.setsockopt(socket.SOL_SOCKET, 27, 0)
    elif what == "lock":
        s.setsockopt(socket.SOL_SOCKET, 44, 1)
    elif what == "ebpf":
        # BPF_PROG_LOAD of a socket filter "r0 = -1; exit", then SO_ATTACH_BPF.
        libc = ctypes.CDLL(None, use_errno=True)
        insns = struct.pack("<BBhi", 0xb7, 0, 0, -1) + struct.pack("<BBhi", 0x95, 0, 0, 0)
        ib = ctypes.create_string_buffer(insns)
        lic = ctypes.create_string_buffer(b"GPL")
        attr = ctypes.create_string_buffer(struct.pack("=IIQQ", 1, 2, ctypes.addressof(ib), ctypes.addressof(lic)) + bytes(100))
        fd = libc.syscall(321, 5, attr, len(attr.raw))
        assert fd >= 0, ctypes.get_errno()
        s.setsockopt(socket.SOL_SOCKET, 50, fd)
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if fam == socket.AF_INET6:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind((sys.argv[1], int(sys.argv[2])))
for w in sys.argv[3].split(","):
    op(s, w)
s.listen(16)
for w in sys.argv[4].split(","):
    op(s, w)
s.settimeout(0.5)
print("ready", flush=True)
end = time.time() + 30
while time.time() < end:
    try:
        c, peer = s.accept()
    except socket.timeout:
        continue
    c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nlocal-ok\n")
    c.close()
"#;

/// Runs [`PY_FILTER_SERVER`] with `before`/`after` and checks: wlan0 answered,
/// eth0 not answered (nothing on eth0 but its SYNs), loopback as `loopback_ok`.
fn program_filter_case(fam: Fam, port: u16, before: &str, after: &str, loopback_ok: bool) {
    let tb = Testbed::up();
    let dir = TempDir::new("listen-filter");
    let srv = dir.write("srv.py", PY_FILTER_SERVER);
    let mut argv = via_wlan0();
    argv.extend(strs(&[
        "python3",
        &srv,
        wildcard(fam),
        &port.to_string(),
        before,
        after,
    ]));
    let mut bg = tb.cmd(&argv).timeout(Duration::from_secs(40)).spawn();
    bg.wait_for_stdout("ready", Duration::from_secs(10));
    let ok = client(&tb, "wlan0", fam, port);
    assert!(
        ok.stdout.contains("local-ok"),
        "{before}/{after}: {}",
        ok.dump()
    );
    let sn = tb.sniff_all();
    let refused = client(&tb, "eth0", fam, port);
    let counts = sn.stop();
    assert!(!refused.ok(), "{before}/{after}: {}", refused.dump());
    if loopback_ok {
        // Filtered: dropped unanswered. (Device-bound, the kernel answers a RST: no
        // listener there.)
        only_requests_on(&counts, "eth0", fam, "tcp", port);
    }
    let lo = local_client(&tb, fam, fam.lo(), port);
    assert_eq!(
        lo.ok(),
        loopback_ok,
        "{before}/{after} loopback: {}",
        lo.dump()
    );
}

both!(
    /// The program's own classic filter (attached before or after `listen`) is run
    /// behind the shim's admission instead of replacing it and opening the listener
    /// to eth0; detaching it keeps the shim's.
    programs_own_filter_does_not_open_the_listener, |fam| {
        program_filter_case(fam, 7407, "attach", "none", true);
        program_filter_case(fam, 7408, "none", "attach", true);
        program_filter_case(fam, 7409, "none", "detach", true);
        program_filter_case(fam, 7410, "attach", "detach,attach", true);
    }
);

both!(
    /// An eBPF program (`SO_ATTACH_BPF`) cannot be composed with the shim's filter:
    /// attached before `listen` or after, it makes the shim bind the listener to
    /// the device instead — never open to eth0.
    programs_ebpf_filter_falls_back_to_the_device_binding, |fam| {
        program_filter_case(fam, 7412, "ebpf", "none", false);
        program_filter_case(fam, 7413, "none", "ebpf", false);
    }
);

both!(
    /// A program that locked the socket's filter before `listen` (the shim cannot
    /// attach its own): the device binding confines it instead (loopback closed).
    locked_filter_falls_back_to_the_device_binding, |fam| {
        program_filter_case(fam, 7411, "attach,lock", "none", false);
    }
);
