//! End-to-end tests of `libmifshim.so` and `mifrun` with real, unmodified programs.
//!
//! Each test brings up its own testbed (`scripts/testbed.sh`): a host namespace with uplinks
//! eth0 / wlan0 / wwan0 whose upstream namespaces all own 203.0.113.10 and 2001:db8:ff::10.
//! A test proves the egress link twice: by *which upstream answered* and by sniffer counts
//! showing zero TCP/UDP on the other uplinks. `mif-probe` is used only for calls the stock
//! tools cannot make.
//!
//! One test binary, one file per feature (`tests/e2e/<feature>.rs`); the harness
//! (testbed, runner, sniffer, assertions) is the `integration_tests` library:
//! - `baseline`: the testbed distinguishes links (no shim);
//! - `clients`: curl, wget, python, node, nc under `mifrun --via wlan0`;
//! - `udp`: sendto / sendmsg / sendmmsg / connected / mixed loopback+remote;
//! - `exempt`: loopback, own-address and scoped link-local destinations are not
//!   steered (an IPv4-mapped remote one is);
//! - `policy`: rules by destination, port, protocol, direct, block; per-program sections;
//! - `failover`: ordered interface lists, link down / deleted, no route, fail closed;
//! - `listen`: listener confinement;
//! - `close`: how a steered TCP connection ends (the kernel's time-wait answers to a
//!   late FIN, for a connect and for an accepted socket);
//! - `mcast`: multicast egress and joins;
//! - `mptcp`: MPTCP sockets refused, so that programs fall back to TCP;
//! - `process`: fork / exec / subprocess / threads;
//! - `env`: plain LD_PRELOAD use, existing LD_PRELOAD kept, `MIFSHIM_DISABLE`, logging;
//! - `exec`: programs the preload cannot steer exec'ed by one it steers (a shell,
//!   `env`, a `#!` interpreter, Python, every exec call by name): supervised, or failed
//!   closed without a mifrun; the kernel's exec errors;
//! - `exec_review`: defects of the exec hooks found by a hostile review, fixed (an exec
//!   of a FIFO blocked, E2BIG reported as EACCES);
//! - `exec_review2`: the exec hooks' stack on small stacks (a `clone` child, a thread)
//!   with a long `PATH` entry or an environment the hook rebuilds: open, failing;
//! - `refuse`: bad policies, static and setuid programs;
//! - `sockopts`: the app's own binding wins, TFO, non-blocking connect, SO_BINDTODEVICE;
//! - `supervise_review`: defects of `mifrun --supervise` found by a hostile review
//!   (AF_UNSPEC destinations, PKTINFO, descriptor and address races, a cleared device
//!   binding, a spinning poll loop, a process-group signal delivered twice, the
//!   listener taken by the program, a static program exec'ed by a preloaded shell, a
//!   dynamic musl program given the glibc preload);
//! - `config` (`config/mod.rs`): environment values that are not UTF-8, policy
//!   and log paths that are FIFOs or devices, names under an invalid policy;
//! - `dns` (`dns/mod.rs`): names resolved over the chosen interface against the
//!   testbed's dnsmasq servers, split DNS, failures, TCP fallback, redirect;
//! - `loader` (`loader/mod.rs`): the engine's load meeting threads, forks, `_Fork`/
//!   `clone` children and signal handlers; the fork/thread deadlock test.

use integration_tests::*;
use std::time::Duration;

fn curl(url: &str) -> Vec<String> {
    ["curl", "-sS", "--max-time", "5", url]
        .map(String::from)
        .to_vec()
}

fn probe_args(args: &[&str]) -> Vec<String> {
    let mut v = vec![s(probe())];
    v.extend(args.iter().map(|a| a.to_string()));
    v
}

fn strs(a: &[&str]) -> Vec<String> {
    a.iter().map(|x| x.to_string()).collect()
}

/// `curl` of the service under `mifrun --via <via>`, answered by `uplink` only.
fn curl_via(tb: &Testbed, fam: Fam, via: &str, uplink: &str) -> Out {
    expect_via(tb, tb.cmd(&mifrun_args(via, &curl(&fam.url(80)))), uplink)
}

/// A small HTTP-ish TCP server in Python: prints `ready` once listening, answers every
/// connection with `local-ok`, exits by itself after `lifetime` seconds.
const PY_SERVER: &str = r#"
import socket, sys, time
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if fam == socket.AF_INET6:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
s.settimeout(0.5)
print("ready", flush=True)
end = time.time() + float(sys.argv[3])
while time.time() < end:
    try:
        c, peer = s.accept()
    except socket.timeout:
        continue
    c.settimeout(2)
    try:
        c.recv(4096)
    except Exception:
        pass
    body = b"local-ok\n"
    c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
    c.close()
"#;

/// Starts [`PY_SERVER`] on `addr:port` in the host namespace (optionally under a wrapper
/// prefix such as mifrun) and waits until it listens.
fn py_server(tb: &Testbed, dir: &TempDir, prefix: &[String], addr: &str, port: u16) -> Bg {
    let script = dir.write("server.py", PY_SERVER);
    let mut argv: Vec<String> = prefix.to_vec();
    argv.extend(strs(&["python3", &script, addr, &port.to_string(), "30"]));
    let mut bg = tb.cmd(&argv).timeout(Duration::from_secs(40)).spawn();
    bg.wait_for_stdout("ready", Duration::from_secs(10));
    bg
}

mod baseline;
mod clients;
mod close;
mod config;
mod dns;
mod env;
mod exec;
mod exec_review;
mod exec_review2;
mod exempt;
mod failover;
mod listen;
mod loader;
mod mcast;
mod mptcp;
mod pktinfo_review;
mod policy;
mod process;
mod refuse;
mod review_1203;
mod review_1203b;
mod review_1203c;
mod review_1203d;
mod review_1206;
mod review_horev;
mod sockopts;
mod supervise_review;
mod testbed;
mod udp;

/// Compiles the C source `src` (written to `dir` as `src_name`) into `dir/out` with
/// `compiler` and its flags (`gcc -static -O1 -pthread`, `gcc -O1`, `musl-gcc …`);
/// the flags go before `-o`, `after` after the source. Returns the binary's path.
pub(crate) fn compile_c(
    dir: &TempDir,
    src_name: &str,
    src: &str,
    out: &str,
    compiler: &[&str],
    after: &[&str],
) -> String {
    let file = dir.write(src_name, src);
    let bin = dir.path().join(out).to_string_lossy().into_owned();
    let mut argv = strs(compiler);
    argv.extend(strs(&["-o", &bin, &file]));
    argv.extend(strs(after));
    Cmd::new(None, &argv)
        .timeout(Duration::from_secs(120))
        .run()
        .assert_ok();
    bin
}
