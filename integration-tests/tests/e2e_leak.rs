//! Issue 9's leaks, crashes and hangs, each as a real program makes it (`c/leak.c`,
//! built here with gcc; and unmodified python3 and node where a real program shows it).
//! Each test proves the egress link: which upstream answered, and zero TCP/UDP
//! packets on the other uplinks.

use integration_tests::*;
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
enum Fam {
    V4,
    V6,
}

impl Fam {
    fn svc(self) -> &'static str {
        match self {
            Fam::V4 => SVC4,
            Fam::V6 => SVC6,
        }
    }
}

macro_rules! both {
    ($(#[$m:meta])* $name:ident, |$fam:ident| $body:block) => {
        $(#[$m])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn body($fam: Fam) $body
            #[test]
            fn v4() {
                body(Fam::V4)
            }
            #[test]
            fn v6() {
                body(Fam::V6)
            }
        }
    };
}

/// `c/leak.c`, built once per test into its own directory.
fn leak_bin(dir: &TempDir) -> String {
    let src = repo_root().join("integration-tests/c/leak.c");
    let bin = dir.path().join("leak").to_string_lossy().into_owned();
    Cmd::new(
        None,
        &["gcc", "-O1", "-pthread", "-o", &bin, &src.to_string_lossy()],
    )
    .run()
    .assert_ok();
    bin
}

fn via_wlan0(args: &[&str]) -> Vec<String> {
    let mut v = vec![s(mifrun()), "--via".into(), "wlan0".into(), "--".into()];
    v.extend(args.iter().map(|a| a.to_string()));
    v
}

/// Runs `cmd`, then checks every answer came from `uplink` and nothing left by the
/// other uplinks.
fn expect_via(tb: &Testbed, cmd: Cmd, uplink: &str) -> Out {
    let sn = tb.sniff_all();
    let out = cmd.run();
    let counts = sn.stop();
    out.assert_answered_by(uplink);
    assert_only(&counts, uplink);
    out
}

/// A policy steering to wlan0 whose DNS server there never answers, with the given
/// per-query time-out: a name lookup that waits inside the hook.
fn silent_dns_policy(dir: &TempDir, timeout_ms: u32) -> String {
    dir.write(
        "policy.toml",
        &format!(
            "via = [\"wlan0\"]\n\n[interfaces.wlan0]\ndns = [\"{DNS_SILENT}\"]\n\n[dns]\ntimeout_ms = {timeout_ms}\nattempts = 2\n"
        ),
    )
}

fn with_policy(policy: &str, args: &[&str]) -> Vec<String> {
    let mut v = vec![s(mifrun()), "--policy".into(), policy.into(), "--".into()];
    v.extend(args.iter().map(|a| a.to_string()));
    v
}

both!(
    /// A promoted UDP socket (`IP(V6)_UNICAST_IF` set by the shim) shared by `dup`; the
    /// other fd sends to loopback: the shim cleared the option on the shared socket and
    /// the first fd's datagrams left by eth0 from then on.
    dup_shared_socket_sending_to_loopback_cleared_the_unicast_interface,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("leak");
        let bin = leak_bin(&dir);
        let out = expect_via(
            &tb,
            tb.cmd(&via_wlan0(&[&bin, "dup-exempt", fam.svc(), "9000"])),
            "wlan0",
        );
        assert_eq!(upstreams(&out.stdout).len(), 5, "{}", out.dump());
    }
);

both!(
    /// The same with `fork`: the child (a statsd client) sends to loopback on the
    /// inherited socket.
    forked_child_sending_to_loopback_cleared_the_parents_unicast_interface,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("leak");
        let bin = leak_bin(&dir);
        let out = expect_via(
            &tb,
            tb.cmd(&via_wlan0(&[&bin, "fork-exempt", fam.svc(), "9000"])),
            "wlan0",
        );
        assert_eq!(upstreams(&out.stdout).len(), 5, "{}", out.dump());
    }
);

/// The unmodified-program form of the above: python3 whose forked child sends a
/// statsd datagram to localhost.
const PY_STATSD: &str = r#"
import os, socket, sys
addr = (sys.argv[1], 9000)
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
lo = "::1" if fam == socket.AF_INET6 else "127.0.0.1"
s = socket.socket(fam, socket.SOCK_DGRAM)
s.settimeout(3)
def ask(tag):
    s.sendto(tag, addr)
    print(s.recv(512).decode().strip(), flush=True)
ask(b"one"); ask(b"two")
pid = os.fork()
if pid == 0:
    s.sendto(b"requests:1|c", (lo, 8125))
    os._exit(0)
os.waitpid(pid, 0)
for _ in range(3):
    ask(b"after")
"#;

both!(python_forked_statsd_child_made_the_parent_leak, |fam| {
    let tb = Testbed::up();
    let dir = TempDir::new("leak");
    let py = dir.write("statsd.py", PY_STATSD);
    let out = expect_via(
        &tb,
        tb.cmd(&via_wlan0(&["python3", &py, fam.svc()])),
        "wlan0",
    );
    assert_eq!(upstreams(&out.stdout).len(), 5, "{}", out.dump());
});

both!(
    /// `connect(AF_UNSPEC)` on a UDP socket: the kernel drops the device binding, the
    /// shim still believed it bound, and the following `sendto`s left by eth0.
    udp_disconnect_dropped_the_binding_the_shim_still_believed,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("leak");
        let bin = leak_bin(&dir);
        let out = expect_via(
            &tb,
            tb.cmd(&via_wlan0(&[&bin, "disconnect", fam.svc(), "9000"])),
            "wlan0",
        );
        assert_eq!(upstreams(&out.stdout).len(), 4, "{}", out.dump());
    }
);

/// node's `dgram` socket: `connect`, `disconnect()`, then unconnected sends.
const NODE_DISCONNECT: &str = r#"
const dgram = require('dgram');
const addr = process.argv[2];
const s = dgram.createSocket(addr.includes(':') ? 'udp6' : 'udp4');
let n = 0;
s.on('message', (m) => {
  console.log(m.toString().trim());
  n++;
  if (n === 1) {
    s.disconnect();
    s.send('after', 9000, addr);
  } else if (n < 4) {
    s.send('after', 9000, addr);
  } else {
    s.close();
  }
});
s.connect(9000, addr, () => s.send('connected'));
setTimeout(() => { console.log('timeout'); process.exit(1); }, 8000).unref();
"#;

both!(node_dgram_disconnect_left_by_the_default_route, |fam| {
    let tb = Testbed::up();
    let dir = TempDir::new("leak");
    let js = dir.write("disconnect.js", NODE_DISCONNECT);
    let out = expect_via(&tb, tb.cmd(&via_wlan0(&["node", &js, fam.svc()])), "wlan0");
    assert_eq!(upstreams(&out.stdout).len(), 4, "{}", out.dump());
});

both!(
    /// A socket closed by `fclose(fdopen())`, where no hook saw the close, and its
    /// number reused by `fcntl(F_DUPFD)` for a new socket: the new socket's connect
    /// skipped the decision (the stale entry said "already bound").
    fd_closed_by_fclose_and_reused_by_f_dupfd_skipped_the_decision,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("leak");
        let bin = leak_bin(&dir);
        let out = expect_via(
            &tb,
            tb.cmd(&via_wlan0(&[&bin, "reuse", fam.svc(), "9000", "fdopen"])),
            "wlan0",
        );
        assert_eq!(upstreams(&out.stdout).len(), 2, "{}", out.dump());
    }
);

both!(
    /// The same with `close_range`.
    fd_closed_by_close_range_and_reused_by_f_dupfd_skipped_the_decision,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("leak");
        let bin = leak_bin(&dir);
        let out = expect_via(
            &tb,
            tb.cmd(&via_wlan0(&[&bin, "reuse", fam.svc(), "9000", "close_range"])),
            "wlan0",
        );
        assert_eq!(upstreams(&out.stdout).len(), 2, "{}", out.dump());
    }
);

/// The program sets `IPV6_UNICAST_IF` (to eth0) on a dual-stack socket: that covers
/// native IPv6 only, and IPv4-mapped datagrams were never steered.
#[test]
fn program_ipv6_unicast_if_left_ipv4_mapped_datagrams_unsteered() {
    let tb = Testbed::up();
    let dir = TempDir::new("leak");
    let bin = leak_bin(&dir);
    let out = expect_via(
        &tb,
        tb.cmd(&via_wlan0(&[&bin, "app-uc6", SVC4, "9000", "eth0"])),
        "wlan0",
    );
    assert_eq!(upstreams(&out.stdout).len(), 3, "{}", out.dump());
}

both!(
    /// A signal handler sends while its thread is inside a hook (a `getaddrinfo`
    /// waiting for an unanswering server): the re-entrancy guard skipped the engine and
    /// the datagram left by eth0.
    signal_handler_send_inside_a_hook_was_skipped_by_the_guard,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("leak");
        let bin = leak_bin(&dir);
        let pol = silent_dns_policy(&dir, 400);
        let out = expect_via(
            &tb,
            tb.cmd(&with_policy(
                &pol,
                &[&bin, "signal-send", fam.svc(), "9000", "slow.mif.test"],
            ))
            .timeout(Duration::from_secs(20)),
            "wlan0",
        );
        assert!(out.stdout.contains("sent=1"), "{}", out.dump());
    }
);

both!(
    /// `alarm()` + `siglongjmp()` out of `getaddrinfo` left the guard set: every later
    /// call on that thread went unsteered (the next TCP connect was answered by eth0's
    /// upstream). It must also not leave the thread with cancellation disabled.
    siglongjmp_out_of_getaddrinfo_left_the_thread_unsteered,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("leak");
        let bin = leak_bin(&dir);
        let pol = silent_dns_policy(&dir, 1500);
        let out = expect_via(
            &tb,
            tb.cmd(&with_policy(
                &pol,
                &[&bin, "longjmp-gai", fam.svc(), "9000", "slow.mif.test"],
            ))
            .timeout(Duration::from_secs(20)),
            "wlan0",
        );
        assert!(out.stdout.contains("jumped out"), "{}", out.dump());
        assert!(
            out.stdout.contains("cancel_state_after_connect=enabled"),
            "the thread's cancellation state was not given back:{}",
            out.dump()
        );
    }
);

/// `pthread_cancel` of a thread inside `getaddrinfo` aborted the process ("exception
/// not rethrown": `catch_unwind` caught glibc's forced unwind).
#[test]
fn pthread_cancel_inside_getaddrinfo_aborted_the_process() {
    let tb = Testbed::up();
    let dir = TempDir::new("leak");
    let bin = leak_bin(&dir);
    let pol = silent_dns_policy(&dir, 1500);
    let out = expect_via(
        &tb,
        tb.cmd(&with_policy(
            &pol,
            &[&bin, "cancel-gai", SVC4, "9000", "slow.mif.test"],
        ))
        .timeout(Duration::from_secs(20)),
        "wlan0",
    );
    assert!(out.stdout.contains("joined=canceled"), "{}", out.dump());
}

both!(
    /// Two threads on one unconnected socket, one sending to the service (through the
    /// stub's fast path once promoted), one to loopback: the exempt send cleared the
    /// unicast interface under the other thread's datagram, which could leave by the
    /// default route. 200 fresh sockets; nothing may reach eth0 or wwan0.
    exempt_send_racing_the_fast_path_cleared_the_unicast_interface,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("leak");
        let bin = leak_bin(&dir);
        let sn = tb.sniff_all();
        let out = tb
            .cmd(&via_wlan0(&[&bin, "race", fam.svc(), "9000", "200"]))
            .timeout(Duration::from_secs(60))
            .run();
        let counts = sn.stop();
        out.assert_ok();
        assert!(out.stdout.contains("rounds=200"), "{}", out.dump());
        assert_none_on(&counts, &["eth0", "wwan0"]);
    }
);
