//! MPTCP (`IPPROTO_MPTCP`) in a steered process: refused at `socket()`, as
//! `mifrun --supervise` refuses it, so that a program falls back to TCP.

use super::*;

/// What Go's dialer does (and any program that tries MPTCP first): an MPTCP socket,
/// and plain TCP if the system refuses it. Holds the connection a second, time for
/// the kernel's path manager to add its subflows.
const TRIES_MPTCP: &str = r#"
import errno, socket, sys, time
addr = sys.argv[1]
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
try:
    c = socket.socket(fam, socket.SOCK_STREAM, 262)
    print("mptcp=used", flush=True)
except OSError as e:
    print("mptcp=refused", errno.errorcode.get(e.errno), flush=True)
    c = socket.socket(fam, socket.SOCK_STREAM)
c.settimeout(3)
c.connect((addr, 9200))
print(c.recv(4096).decode(), end="", flush=True)
time.sleep(1.0)
c.close()
"#;

both!(
    /// With an MPTCP endpoint on eth0 (`ip mptcp endpoint add ADDR dev eth0
    /// subflow`, what an MPTCP user configures), a steered MPTCP connection to wlan0's
    /// upstream got a second subflow from the kernel's path manager: its SYN left by
    /// eth0 (helper-56 found the socket had no `TCP_LINGER2` hold either). A steered
    /// process now gets `EPROTONOSUPPORT` for an MPTCP socket and falls back to TCP,
    /// answered by wlan0 with nothing on the other links.
    mptcp_subflow_left_by_an_endpoint_on_eth0,
    |fam| {
        let tb = Testbed::up();
        tb.warm_neighbours();
        let eth0 = host_addr("eth0", fam.v6());
        for args in [
            strs(&["ip", "mptcp", "limits", "set", "subflow", "2", "add_addr_accepted", "2"]),
            strs(&["ip", "mptcp", "endpoint", "add", eth0, "dev", "eth0", "subflow"]),
        ] {
            tb.run(&args).assert_ok();
        }
        let dir = TempDir::new("mptcp");
        // An MPTCP server (it takes a TCP fallback too), no delay to its FIN.
        let server = dir.write("server.py", close::LATE_FIN_PEER);
        let mut srv = tb
            .cmd_upstream(
                "wlan0",
                &strs(&["python3", &server, fam.svc(), "9200", "0", "wlan0", "262"]),
            )
            .timeout(Duration::from_secs(20))
            .spawn();
        srv.wait_for_stdout("ready", Duration::from_secs(10));
        let client = dir.write("client.py", TRIES_MPTCP);
        let out = expect_via(
            &tb,
            tb.cmd(&mifrun_args("wlan0", &["python3", &client, fam.svc()])),
            "wlan0",
        );
        assert!(
            out.stdout.contains("mptcp=refused EPROTONOSUPPORT"),
            "{}",
            out.dump()
        );
    }
);
