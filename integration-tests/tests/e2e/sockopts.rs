use super::*;

both!(
    /// The app's own `--interface eth0` (SO_BINDTODEVICE before connect) is respected.
    app_device_binding_wins, |fam| {
        let tb = Testbed::up();
        let mut a = curl(&fam.url(80));
        a.splice(1..1, strs(&["--interface", "eth0"]));
        let out = expect_via(&tb, tb.cmd(&mifrun_args("wlan0", &a)), "eth0");
        // The user asked for wlan0: the override is reported at the default level.
        assert!(
            out.stderr.contains("warning: fd") && out.stderr.contains("binds this socket to eth0 itself"),
            "{}",
            out.dump()
        );
    }
);

both!(tcp_fastopen_via_wlan0, |fam| {
    let tb = Testbed::up();
    let a = probe_args(&["tcp-fastopen", fam.svc(), "9000"]);
    expect_via(&tb, tb.cmd(&mifrun_args("wlan0", &a)), "wlan0");
});

both!(tcp_nonblocking_connect_via_wlan0, |fam| {
    let tb = Testbed::up();
    let a = probe_args(&["tcp-nonblock", fam.svc(), "9000"]);
    expect_via(&tb, tb.cmd(&mifrun_args("wlan0", &a)), "wlan0");
});

both!(so_bindtodevice_reads_wlan0, |fam| {
    let tb = Testbed::up();
    let out = tb.run(&mifrun_args(
        "wlan0",
        &probe_args(&["getsockopt-dev", fam.svc(), "9000"]),
    ));
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "wlan0", "{}", out.dump());
});

/// A program's own IP_PKTINFO (interface 0) on an AF_INET6 socket sending to a
/// native IPv6 destination got the index patched in, but IPv6 ignores SOL_IP
/// control messages: the datagram went out unsteered by eth0.
#[test]
fn app_ip_pktinfo_on_v6_socket_left_v6_datagram_unsteered() {
    let tb = Testbed::up();
    let code = "import socket, struct\n\
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)\n\
pi = struct.pack('@i4s4s', 0, bytes(4), bytes(4))\n\
s.sendmsg([b'x'], [(socket.IPPROTO_IP, 8, pi)], 0, ('2001:db8:ff::10', 9000))\n\
print(s.recvfrom(200)[0].decode().strip())";
    let sn = tb.sniff_all();
    let out = tb
        .cmd(&mifrun_args("wlan0", &strs(&["python3", "-c", code])))
        .run();
    let counts = sn.stop();
    out.assert_answered_by("wlan0");
    assert_only(&counts, "wlan0");
}
