use super::*;

/// Local servers (no shim) on loopback and eth0's own address; the client under
/// `--via wlan0` must reach them quickly, with no TCP on any uplink.
fn local_targets(fam: Fam) -> Vec<String> {
    vec![
        fam.lo().to_string(),
        host_addr("eth0", fam.v6()).to_string(),
    ]
}

both!(curl_reaches_local_servers, |fam| {
    let tb = Testbed::up();
    let dir = TempDir::new("exempt");
    for (i, addr) in local_targets(fam).iter().enumerate() {
        let port = 7100 + i as u16;
        let _srv = py_server(&tb, &dir, &[], addr, port);
        let url = format!("http://{}:{port}/", fam.url_host(addr));
        let sn = tb.sniff_all();
        let out = tb
            .cmd(&mifrun_args(
                "wlan0",
                &strs(&["curl", "-sS", "--max-time", "3", &url]),
            ))
            .run();
        let counts = sn.stop();
        out.assert_ok();
        assert!(out.stdout.contains("local-ok"), "{}", out.dump());
        assert_silent(&counts);
    }
});

both!(python_reaches_local_servers, |fam| {
    let tb = Testbed::up();
    let dir = TempDir::new("exempt-py");
    let code = "import socket, sys; \
                c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3); \
                c.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n'); print(c.recv(4096).decode())";
    for (i, addr) in local_targets(fam).iter().enumerate() {
        let port = 7200 + i as u16;
        let _srv = py_server(&tb, &dir, &[], addr, port);
        let out = tb
            .cmd(&mifrun_args(
                "wlan0",
                &strs(&["python3", "-c", code, addr, &port.to_string()]),
            ))
            .run();
        out.assert_ok();
        assert!(out.stdout.contains("local-ok"), "{}", out.dump());
    }
});

/// `::ffff:127.0.0.1` from an AF_INET6 socket is loopback too.
#[test]
fn v4_mapped_loopback_from_inet6_socket() {
    let tb = Testbed::up();
    let dir = TempDir::new("mapped");
    let _srv = py_server(&tb, &dir, &[], "127.0.0.1", 7300);
    let code = "import socket; s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM); \
                s.settimeout(3); s.connect(('::ffff:127.0.0.1', 7300)); \
                s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n'); print(s.recv(4096).decode())";
    let sn = tb.sniff_all();
    let out = tb
        .cmd(&mifrun_args("wlan0", &strs(&["python3", "-c", code])))
        .run();
    let counts = sn.stop();
    out.assert_ok();
    assert!(out.stdout.contains("local-ok"), "{}", out.dump());
    assert_silent(&counts);
}

/// The link-local address of `up` in the upstream namespace of `uplink`.
fn upstream_link_local(tb: &Testbed, uplink: &str) -> String {
    let out = tb
        .cmd_upstream(
            uplink,
            &[
                "ip", "-6", "-o", "addr", "show", "dev", "up", "scope", "link",
            ],
        )
        .run();
    out.assert_ok();
    out.stdout
        .split_whitespace()
        .find(|w| w.starts_with("fe80:"))
        .and_then(|w| w.split('/').next())
        .unwrap_or_else(|| panic!("no link-local address on up:{}", out.dump()))
        .to_string()
}

/// §4.3: connecting to `fe80::…%eth0` on a wlan0-bound socket gives EINVAL; a scoped
/// link-local destination names its interface itself and must be left alone.
#[test]
fn link_local_scoped_to_other_interface_breaks_if_steered() {
    let tb = Testbed::up();
    let ll = upstream_link_local(&tb, "eth0");
    let code = "import socket, sys; \
                c = socket.create_connection((sys.argv[1], 9000), timeout=3); \
                print(c.recv(4096).decode(), end='')";
    let a = strs(&["python3", "-c", code, &format!("{ll}%eth0")]);
    expect_via(&tb, tb.cmd(&mifrun_args("wlan0", &a)), "eth0");
}

/// A remote IPv4 destination written as `::ffff:a.b.c.d` on an AF_INET6 socket is still
/// remote and must be steered.
#[test]
fn v4_mapped_remote_escapes_if_not_steered() {
    let tb = Testbed::up();
    let code = "import socket; s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM); \
                s.settimeout(3); s.connect(('::ffff:203.0.113.10', 9000)); \
                print(s.recv(4096).decode(), end='')";
    expect_via(
        &tb,
        tb.cmd(&mifrun_args("wlan0", &strs(&["python3", "-c", code]))),
        "wlan0",
    );
}
