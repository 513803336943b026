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
    python_answered_only_by(&tb, code, "wlan0");
}

/// The same with an IP_PKTINFO that names an interface (wlan0's own index, even):
/// it was taken for the program's choice of interface, but the kernel's IPv6 path
/// reads only SOL_IPV6 messages, so nothing chose one and the datagram left by eth0.
#[test]
fn app_ip_pktinfo_naming_an_interface_on_a_v6_datagram_left_by_eth0() {
    let tb = Testbed::up();
    let code = "import socket, struct\n\
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)\n\
pi = struct.pack('@i4s4s', socket.if_nametoindex('wlan0'), bytes(4), bytes(4))\n\
s.sendmsg([b'x'], [(socket.IPPROTO_IP, 8, pi)], 0, ('2001:db8:ff::10', 9000))\n\
print(s.recvfrom(200)[0].decode().strip())";
    python_answered_only_by(&tb, code, "wlan0");
}

/// An IP_PKTINFO naming wwan0 followed by one of interface 0: the kernel keeps the
/// first one's interface (a 0 changes nothing), so the program chose wwan0, and the
/// shim must neither patch the 0 (which would make it wlan0) nor add its own.
#[test]
fn app_ip_pktinfo_choice_followed_by_one_of_interface_0_stays_the_programs() {
    let tb = Testbed::up();
    let code = "import socket, struct\n\
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)\n\
a = struct.pack('@i4s4s', socket.if_nametoindex('wwan0'), bytes(4), bytes(4))\n\
z = struct.pack('@i4s4s', 0, bytes(4), bytes(4))\n\
s.sendmsg([b'x'], [(socket.IPPROTO_IP, 8, a), (socket.IPPROTO_IP, 8, z)], 0, ('203.0.113.10', 9000))\n\
print(s.recvfrom(200)[0].decode().strip())";
    python_answered_only_by(&tb, code, "wwan0");
}

both!(
    /// A root program dropping the device binding the shim gave its connected UDP
    /// socket (`SO_BINDTOIFINDEX` 0, `SO_BINDTODEVICE ""`) was allowed, and its next
    /// datagrams left by eth0: it is refused with EPERM (what a program without
    /// CAP_NET_RAW gets from the kernel), and the datagrams stay on wlan0.
    program_dropping_the_shims_device_binding_left_by_eth0, |fam| {
        let tb = Testbed::up();
        let af = if fam.v6() { "AF_INET6" } else { "AF_INET" };
        // A raw string: a `\` line continuation would strip Python's indentation.
        let code = format!(
            r#"import socket
for opt, val in ((62, (0).to_bytes(4, 'little')), (25, b'')):
    s = socket.socket(socket.{af}, socket.SOCK_DGRAM); s.settimeout(3)
    s.connect(({svc:?}, 9000))
    try:
        s.setsockopt(socket.SOL_SOCKET, opt, val); print('allowed')
    except PermissionError:
        print('refused')
    s.send(b'x'); print(s.recv(200).decode().strip())
"#,
            svc = fam.svc()
        );
        let sn = tb.sniff_all();
        let out = tb
            .cmd(&mifrun_args("wlan0", &strs(&["python3", "-c", &code])))
            .run();
        let counts = sn.stop();
        out.assert_ok();
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines.len(), 4, "{}", out.dump());
        assert_eq!((lines[0], lines[2]), ("refused", "refused"), "{}", out.dump());
        out.assert_answered_by("wlan0");
        assert_only(&counts, "wlan0");
        assert!(
            out.stderr.contains("drops the device binding the policy gave this socket"),
            "{}",
            out.dump()
        );
    }
);

/// Runs Python `code` under `mifrun --via wlan0`: every answer from `uplink`'s
/// upstream, and TCP/UDP packets on `uplink` only.
fn python_answered_only_by(tb: &Testbed, code: &str, uplink: &str) {
    let sn = tb.sniff_all();
    let out = tb
        .cmd(&mifrun_args("wlan0", &strs(&["python3", "-c", code])))
        .run();
    let counts = sn.stop();
    out.assert_answered_by(uplink);
    assert_only(&counts, uplink);
}

/// Review: an `IPV6_PKTINFO` carrying a source address (wlan0's own) left by eth0,
/// whether its index was 0 (patched by the shim), wlan0's (the program's), or the
/// socket's unicast interface was set by then (the third datagram to a destination,
/// on the stub's fast path): with a source, the kernel's IPv6 route lookup takes any
/// index only as a preference. Such a datagram now binds the socket to wlan0. Also
/// `IPV6_2292PKTINFO` (type 2), which the kernel reads alike.
#[test]
fn an_ipv6_pktinfo_naming_a_source_left_by_eth0() {
    let tb = Testbed::up();
    let code = r#"import socket, struct
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
src = socket.inet_pton(socket.AF_INET6, '2001:db8:20::2')
w = socket.if_nametoindex('wlan0')
for ty, idx in ((50, 0), (50, 0), (50, 0), (50, w), (2, 0), (2, w)):
    s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, ty, src + struct.pack('@I', idx))], 0, ('2001:db8:ff::10', 9000))
    print(s.recvfrom(200)[0].decode().strip())
"#;
    python_answered_only_by(&tb, code, "wlan0");
}

/// The same on a socket whose unicast interface the shim set before the program
/// began to name a source (two plain datagrams first, then the stub's fast path).
#[test]
fn an_ipv6_pktinfo_source_after_the_fast_path_began_left_by_eth0() {
    let tb = Testbed::up();
    let code = r#"import socket, struct
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
src = socket.inet_pton(socket.AF_INET6, '2001:db8:20::2')
d = ('2001:db8:ff::10', 9000)
for _ in range(3):
    s.sendto(b'x', d); print(s.recvfrom(200)[0].decode().strip())
for _ in range(2):
    s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, src + struct.pack('@I', 0))], 0, d)
    print(s.recvfrom(200)[0].decode().strip())
"#;
    python_answered_only_by(&tb, code, "wlan0");
}

/// Review: a PKTINFO naming another link's source (eth0's), or loopback, was sent by
/// wlan0 with a source whose answers come back elsewhere (IPv6 `::1` onto the wire).
/// It is refused as a socket bound to that address is: `EADDRNOTAVAIL`, `EINVAL`;
/// nothing leaves by any link. IPv4's `ipi_spec_dst` alike.
#[test]
fn an_ipv6_pktinfo_naming_another_links_source_is_refused() {
    let tb = Testbed::up();
    let code = r#"import socket, struct, errno
def try_send(fam, level, ty, data, dest):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        s.sendmsg([b'x'], [(level, ty, data)], 0, dest); print('sent')
    except OSError as e:
        print(errno.errorcode[e.errno])
six = lambda a: socket.inet_pton(socket.AF_INET6, a) + struct.pack('@I', 0)
four = lambda a: struct.pack('@i', 0) + socket.inet_aton(a) + bytes(4)
try_send(socket.AF_INET6, socket.IPPROTO_IPV6, 50, six('2001:db8:10::2'), ('2001:db8:ff::10', 9000))
try_send(socket.AF_INET6, socket.IPPROTO_IPV6, 2, six('2001:db8:10::2'), ('2001:db8:ff::10', 9000))
try_send(socket.AF_INET6, socket.IPPROTO_IPV6, 50, six('::1'), ('2001:db8:ff::10', 9000))
try_send(socket.AF_INET, socket.IPPROTO_IP, 8, four('198.51.100.2'), ('203.0.113.10', 9000))
try_send(socket.AF_INET, socket.IPPROTO_IP, 8, four('127.0.0.1'), ('203.0.113.10', 9000))
"#;
    let sn = tb.sniff_all();
    let out = tb
        .cmd(&mifrun_args("wlan0", &strs(&["python3", "-c", code])))
        .run();
    let counts = sn.stop();
    out.assert_ok();
    let got: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        got,
        [
            "EADDRNOTAVAIL",
            "EADDRNOTAVAIL",
            "EINVAL",
            "EADDRNOTAVAIL",
            "EINVAL"
        ],
        "{}",
        out.dump()
    );
    assert_silent(&counts);
}

/// Review: an `IPV6_2292PKTINFO` (type 2) naming wwan0 was not read as the program's
/// choice: the shim added its own PKTINFO naming wlan0, two different interfaces,
/// and the kernel failed the first datagram (`EINVAL`). The choice is the program's.
#[test]
fn an_ipv6_2292pktinfo_naming_an_interface_failed_the_first_datagram() {
    let tb = Testbed::up();
    let code = r#"import socket, struct
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
pi = bytes(16) + struct.pack('@I', socket.if_nametoindex('wwan0'))
s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 2, pi)], 0, ('2001:db8:ff::10', 9000))
print(s.recvfrom(200)[0].decode().strip())
"#;
    python_answered_only_by(&tb, code, "wwan0");
}

/// An `IP_PKTINFO` whose `ipi_spec_dst` is wlan0's address (interface 0, patched):
/// the IPv4 path's index is strict, so the datagram leaves by wlan0 with that source.
#[test]
fn an_ip_pktinfo_with_the_steered_links_source_leaves_by_it() {
    let tb = Testbed::up();
    let code = r#"import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
pi = struct.pack('@i', 0) + socket.inet_aton('198.51.100.66') + bytes(4)
for _ in range(3):
    s.sendmsg([b'x'], [(socket.IPPROTO_IP, 8, pi)], 0, ('203.0.113.10', 9000))
    print(s.recvfrom(200)[0].decode().strip())
"#;
    python_answered_only_by(&tb, code, "wlan0");
}
