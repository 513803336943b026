//! A hostile review of `mifrun --supervise` (the seccomp user-notification supervisor,
//! crate `supervisor/`): each test is a defect found by running a small static C program
//! (`supervise_review.c`, built with `gcc -static`, so mifrun supervises it
//! automatically) and asserts the promised behaviour: every flow leaves by the chosen
//! link (wlan0) or fails, nothing by eth0 (the default route) or wwan0; exit status and
//! signals stay the program's own; the supervisor does not spin.
//!
//! Every program also sends one plain unconnected datagram at the end (`control …`),
//! which the supervisor steers today, so a test never passes on a testbed that steers
//! nothing. The racing programs stop at their first leak and are bounded (iterations).

use super::*;
use std::collections::BTreeMap;

const SRC: &str = include_str!("supervise_review.c");

/// Builds the reproducer with `gcc -static -pthread` (a missing compiler is a failure).
fn build(dir: &TempDir) -> String {
    compile_c(
        dir,
        "supervise_review.c",
        SRC,
        "review",
        &["gcc", "-static", "-O1", "-pthread"],
        &[],
    )
}

/// The reproducer built twice: static (so mifrun supervises it) and dynamic (so the
/// preload steers it).
fn static_and_dynamic(dir: &TempDir) -> [String; 2] {
    let dynamic = compile_c(
        dir,
        "supervise_review.c",
        SRC,
        "review-dyn",
        &["gcc", "-O1", "-pthread"],
        &[],
    );
    [build(dir), dynamic]
}

fn fam_arg(fam: Fam) -> &'static str {
    if fam.v6() { "6" } else { "4" }
}

/// Runs `review ARGS…` under `mifrun --via wlan0` with every sniffer on.
fn run_review(tb: &Testbed, bin: &str, args: &[&str]) -> (Out, BTreeMap<String, Counts>) {
    let mut prog = vec![bin];
    prog.extend_from_slice(args);
    let sn = tb.sniff_all();
    let out = tb
        .cmd(&mifrun_args("wlan0", &prog))
        .timeout(Duration::from_secs(60))
        .run();
    let counts = sn.stop();
    (out, counts)
}

/// The flow under test was steered or refused, never sent by another link: no TCP/UDP
/// on eth0 or wwan0, every answer from wlan0, and the control datagram answered by it.
#[track_caller]
fn steered_or_refused(out: &Out, counts: &BTreeMap<String, Counts>) {
    answered_by_wlan0(out);
    assert_none_on(counts, &["eth0", "wwan0"]);
}

/// [`steered_or_refused`] for a race that closes its TCP sockets while segments of
/// their connections may still come in by wlan0: the kernel answers those with resets
/// that belong to no socket and leave by the main table's route, eth0 (README, Limits;
/// seen in the v6 Fast Open race, four runs in parallel: 1–6 RSTs from wlan0's address
/// on eth0 in 16 of 24 runs; the same in the TCP form of the send race). Only such
/// resets are tolerated — a bare RST (no SYN, no payload) from
/// wlan0's own address of a connection wlan0 opened (`assert_no_flows_on`) — counted
/// and printed; any other TCP/UDP packet on eth0 or wwan0 fails.
#[track_caller]
fn steered_or_refused_but_socketless_resets(out: &Out, counts: &BTreeMap<String, Counts>) {
    answered_by_wlan0(out);
    let resets = assert_no_flows_on(counts, &["eth0", "wwan0"], "wlan0");
    eprintln!("socketless resets tolerated on eth0/wwan0: {resets}");
}

/// What the program saw of [`steered_or_refused`]: no leak, the control datagram and
/// every answer from wlan0.
#[track_caller]
fn answered_by_wlan0(out: &Out) {
    assert!(
        !out.stdout.contains("LEAK"),
        "a flow left unsteered:{}",
        out.dump()
    );
    assert!(
        out.stdout.contains("control upstream=wlan0"),
        "the control datagram was not answered by wlan0:{}",
        out.dump()
    );
    out.assert_answered_by("wlan0");
}

/// `udp_sendmsg` takes a destination whose family is `AF_UNSPEC` as `AF_INET` (BSD
/// compatibility), but the supervisor reads it as "not an IP address" and lets the call
/// continue: the datagram leaves by eth0.
fn af_unspec_destination(call: &str) {
    let tb = Testbed::up();
    let dir = TempDir::new("suprev");
    let bin = build(&dir);
    let (out, counts) = run_review(&tb, &bin, &["unspec", "4", call]);
    steered_or_refused(&out, &counts);
}

#[test]
fn sendto_to_an_af_unspec_sockaddr_is_not_sent_unsteered() {
    af_unspec_destination("sendto");
}

#[test]
fn sendmsg_to_an_af_unspec_sockaddr_is_not_sent_unsteered() {
    af_unspec_destination("sendmsg");
}

#[test]
fn sendmmsg_to_an_af_unspec_sockaddr_is_not_sent_unsteered() {
    af_unspec_destination("sendmmsg");
}

both!(
    /// A `sendmsg` with an `IP_PKTINFO` / `IPV6_PKTINFO` that names no interface
    /// (ifindex 0, no source: what a program copying a received PKTINFO back, or a
    /// QUIC stack, sends) is taken as "the program chose the interface itself" and
    /// continues unsteered; the kernel then routes it by the default route, eth0.
    a_pktinfo_naming_no_interface_does_not_unsteer_the_datagram,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("suprev");
        let bin = build(&dir);
        let (out, counts) = run_review(&tb, &bin, &["pktinfo", fam_arg(fam), "zero"]);
        assert!(
            out.stdout.contains("pktinfo upstream=wlan0"),
            "{}",
            out.dump()
        );
        steered_or_refused(&out, &counts);
    }
);

/// An `IP_PKTINFO` (level `SOL_IP`) on a native IPv6 datagram: the kernel's IPv6 path
/// ignores `SOL_IP` control messages, the supervisor takes it as the program's own
/// choice of interface (even though it names wlan0) and continues: eth0.
#[test]
fn an_ip_pktinfo_on_an_ipv6_datagram_does_not_unsteer_it() {
    let tb = Testbed::up();
    let dir = TempDir::new("suprev");
    let bin = build(&dir);
    let (out, counts) = run_review(&tb, &bin, &["pktinfo", "6", "wrong-level"]);
    assert!(
        out.stdout.contains("pktinfo upstream=wlan0"),
        "{}",
        out.dump()
    );
    steered_or_refused(&out, &counts);
}

both!(
    /// Time of check to time of use on the descriptor: one thread connects fd 100
    /// while another `dup2`s a fresh socket onto 100. The supervisor binds the socket
    /// it fetched with `pidfd_getfd`, answers CONTINUE, and the kernel connects whatever
    /// fd 100 names by then: a connected, unbound socket whose `send` (not trapped)
    /// leaves by eth0. Bounded: 5000 connects, stopping at the first leak.
    a_thread_swapping_the_fd_during_connect_cannot_connect_an_unsteered_socket,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("suprev");
        let bin = build(&dir);
        let (out, counts) = run_review(&tb, &bin, &["fdswap", fam_arg(fam), "5000"]);
        assert!(out.stdout.contains("fdswap iterations="), "{}", out.dump());
        steered_or_refused(&out, &counts);
    }
);

both!(
    /// Time of check to time of use on the address: a connect to loopback (exempt, so
    /// the socket is not bound) while another thread rewrites the sockaddr to the
    /// service address; the kernel reads the rewritten address after CONTINUE and the
    /// socket is connected, unbound, to a remote address: its `send` leaves by eth0.
    /// Bounded: 5000 connects, stopping at the first leak.
    a_thread_rewriting_an_exempt_loopback_address_cannot_connect_an_unsteered_socket,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("suprev");
        let bin = build(&dir);
        let (out, counts) = run_review(&tb, &bin, &["memrace", fam_arg(fam), "5000"]);
        assert!(out.stdout.contains("memrace iterations="), "{}", out.dump());
        steered_or_refused(&out, &counts);
    }
);

both!(
    /// A blocking UDP socket whose send buffer is full: the supervisor sends every
    /// datagram itself with `MSG_DONTWAIT`, and on `EAGAIN` hands the send to a worker
    /// thread that waits for room (the notification loop must not) and answers then.
    /// Provoked with wlan0 shaped to 100 kbit/s (`tc qdisc … tbf`) and the socket's
    /// `SO_SNDBUF` at its minimum: 30 datagrams of 1200 bytes must all be sent, none
    /// refused (`EAGAIN` would be a blocking socket's wrong answer), and the calls must
    /// have waited (about 3 s at that rate), by wlan0 only; the same without mifrun.
    a_full_send_buffer_on_a_blocking_socket_waits_in_a_worker_and_sends_everything,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("suprev");
        let bin = build(&dir);
        tb.run(&["tc", "qdisc", "add", "dev", "wlan0", "root", "tbf", "rate", "100kbit", "burst", "1600", "latency", "5s"])
            .assert_ok();
        let sn = tb.sniff_all();
        let out = tb
            .cmd(&mifrun_args("wlan0", &[bin.as_str(), "fullbuf", fam_arg(fam), "30"]))
            .env("MIFRUN_SUPERVISOR_STATS", "1")
            .timeout(Duration::from_secs(60))
            .run();
        let counts = sn.stop();
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with("fullbuf sent="))
            .unwrap_or_else(|| panic!("no result:{}", out.dump()));
        assert!(line.starts_with("fullbuf sent=30 errors=0 "), "{line}:{}", out.dump());
        let ms: u64 = line.rsplit("ms=").next().unwrap().trim().parse().unwrap();
        assert!(ms >= 1500, "the sends did not wait for the shaped link: {line}");
        steered_or_refused(&out, &counts);
        // The worker path was taken: the supervisor's count of calls made by workers.
        let workers: u32 = out
            .stderr
            .rsplit("workers=")
            .next()
            .and_then(|w| w.split_whitespace().next())
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("no supervisor stats:{}", out.dump()));
        assert!(workers >= 1, "no send waited in a worker:{}", out.dump());
        eprintln!("{line}, workers={workers}");
        // Without mifrun (by eth0, unshaped: no wait), the same answers.
        let plain = tb.cmd(&[bin.as_str(), "fullbuf", fam_arg(fam), "30"]).run();
        assert!(plain.stdout.contains("fullbuf sent=30 errors=0 "), "{}", plain.dump());
    }
);

both!(
    /// Time of check to time of use on the descriptor of a send (found in this review):
    /// one thread sends to the service on fd 100, a steered UDP socket, while another
    /// `dup2`s a fresh, unsteered UDP socket onto 100. The supervisor steered the socket
    /// it fetched with `pidfd_getfd` and answered CONTINUE, and the kernel sent on
    /// whatever fd 100 named by then: the fresh socket's datagram left by eth0 (and
    /// eth0's upstream answered), for `sendto`, a named `sendmsg` and `sendmmsg`, and
    /// for a `sendto` with the service's address on a connected TCP socket (which
    /// ignores it). Each was seen leaking within a few iterations, v4 and v6. Now the
    /// supervisor sends what it read on its duplicate. Under the preload (the same
    /// program, dynamic) the TCP form leaked too (iteration 73: the engine passed the
    /// call on with its address); it now drops the address a stream ignores, so a
    /// swapped-in datagram socket gets `EDESTADDRREQ`. Bounded: 2000 sends (500 on
    /// TCP), stopping at the first leak.
    a_thread_swapping_the_fd_during_a_send_cannot_send_on_an_unsteered_socket,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("suprev");
        for bin in static_and_dynamic(&dir) {
            for (what, iters) in [("sendto", 2000), ("sendmsg", 2000), ("sendmmsg", 2000), ("tcp", 500)] {
                let n = iters.to_string();
                let (out, counts) =
                    run_review(&tb, &bin, &["sendswap", fam_arg(fam), what, &n]);
                // A send the swapped-in socket took without a name fails
                // (EDESTADDRREQ: the preload's stream send drops the name the kernel
                // ignores); most go.
                let line = format!("sendswap {what} iterations={iters} leaks=0 sent=");
                let sent: u32 = out
                    .stdout
                    .lines()
                    .find_map(|l| l.strip_prefix(&line))
                    .and_then(|n| n.trim().parse().ok())
                    .unwrap_or_else(|| panic!("{bin} {what}:{}", out.dump()));
                assert!(sent * 10 >= iters * 9, "{bin} {what}: sent={sent}:{}", out.dump());
                if what == "tcp" {
                    // Each connection is closed right after its race: segments still
                    // coming by wlan0 draw the kernel's socketless resets (seen: one
                    // RST from wlan0's address on eth0 in 2 of 4 v6 runs in parallel).
                    steered_or_refused_but_socketless_resets(&out, &counts);
                } else {
                    steered_or_refused(&out, &counts);
                }
            }
        }
    }
);

both!(
    /// Time of check to time of use on the address of a TCP Fast Open send
    /// (`sendto(…, MSG_FASTOPEN, addr)` connects as it sends): a send to loopback
    /// (exempt, not bound) while another thread rewrites the sockaddr to the service's
    /// TCP port. Had the supervisor answered CONTINUE, the kernel would have read the
    /// rewritten address and connected an unbound socket by eth0; it makes the Fast
    /// Open send itself on its duplicate, with the bytes it decided on. Under the
    /// supervisor (static build) and under the preload (the same program, dynamic),
    /// whose engine sends its own copy of the address. Bounded: 2000 sends, stopping
    /// at the first leak.
    a_thread_rewriting_a_fast_open_address_cannot_connect_an_unsteered_socket,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("suprev");
        for bin in static_and_dynamic(&dir) {
            let (out, counts) = run_review(&tb, &bin, &["tforace", fam_arg(fam), "2000"]);
            assert!(
                out.stdout.contains("tforace iterations=2000 leaks=0"),
                "{bin}:{}",
                out.dump()
            );
            steered_or_refused_but_socketless_resets(&out, &counts);
        }
    }
);

both!(
    /// Time of check to time of use on a `sendmsg` without a name (found with the
    /// fixes of wt-supfix): the `msghdr` is the program's memory, and the supervisor
    /// answered CONTINUE for a name-less message; a thread naming the service in it
    /// after the check had the kernel send a fresh, unbound socket's datagram by eth0.
    /// Bounded: 3000 sends.
    a_thread_naming_a_nameless_sendmsg_cannot_send_it_unsteered,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("suprev");
        let bin = build(&dir);
        let (out, counts) = run_review(&tb, &bin, &["namerace", fam_arg(fam), "3000"]);
        assert!(out.stdout.contains("namerace iterations=3000"), "{}", out.dump());
        steered_or_refused(&out, &counts);
    }
);

both!(
    /// A connected UDP socket the supervisor bound to wlan0; the program (root, so
    /// CAP_NET_RAW) then clears the device binding (`SO_BINDTOIFINDEX` 0, or
    /// `SO_BINDTODEVICE` ""): the supervisor lets it ("the program's choice wins"),
    /// though clearing is no choice of an interface, and the next `send` leaves by eth0.
    the_program_cannot_clear_the_supervisors_device_binding,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("suprev");
        let bin = build(&dir);
        for how in ["index", "name"] {
            let (out, counts) = run_review(&tb, &bin, &["unbind", fam_arg(fam), how]);
            assert!(
                out.stdout.contains("before upstream=wlan0"),
                "{how}:{}",
                out.dump()
            );
            assert!(
                out.stdout.lines().all(|l| !l.starts_with("after upstream=")
                    || l.starts_with("after upstream=wlan0")),
                "{how}:{}",
                out.dump()
            );
            out.assert_answered_by("wlan0");
            assert_none_on(&counts, &["eth0", "wwan0"]);
        }
    }
);

/// The program exits while its own child ptraces it: it stays a zombie until the
/// tracer reaps it (here 2 s). The program's pidfd is readable all that time but
/// `waitpid` has nothing for mifrun yet, so the supervisor's poll loop spins (about
/// 90 % of a CPU measured). At most a quarter of a CPU over the hold is allowed.
#[test]
fn a_zombie_held_by_its_tracer_does_not_make_the_supervisor_spin() {
    let tb = Testbed::up();
    let dir = TempDir::new("suprev");
    let bin = build(&dir);
    let hold = 2;
    let out = tb
        .cmd(&mifrun_args("wlan0", &[bin.as_str(), "ptzombie", "4", "2"]))
        .timeout(Duration::from_secs(30))
        .run();
    out.assert_code(5);
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("supervisor cpu ticks="))
        .unwrap_or_else(|| panic!("no measurement:{}", out.dump()));
    let ticks: i64 = line["supervisor cpu ticks=".len()..]
        .split(' ')
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("bad measurement {line:?}"));
    let per_s: i64 = line
        .rsplit(' ')
        .next()
        .and_then(|t| t.trim_end_matches(')').parse().ok())
        .unwrap_or(100);
    assert!(
        ticks * 4 < hold * per_s,
        "the supervisor used {ticks} clock ticks in {hold} s ({per_s}/s):{}",
        out.dump()
    );
}

/// `kill -TERM -- -PGID` (a shell's `kill %1`, a service manager stopping a process
/// group): the program, in mifrun's process group, gets the signal from the kernel,
/// and mifrun's forwarder (the sender's `si_code` is `SI_USER`, not the terminal's
/// `SI_KERNEL`) sends it a second time. The review asked for one; kept and documented
/// (README, `--supervise`, "A signal to mifrun's whole process group"): mifrun cannot
/// tell a group signal from one sent to its pid (the same `siginfo`), and the program
/// must stay in mifrun's group for job control; coreutils `timeout` and sudo without
/// a pty deliver twice the same way. So this asserts the documented count: the test
/// holds mifrun stopped while the program takes the group's signal, then continues
/// it, and the forwarder's copy is the second.
#[test]
fn a_process_group_sigterm_reaches_the_program_from_the_group_and_again_from_mifrun() {
    let tb = Testbed::up();
    let dir = TempDir::new("suprev");
    let bin = build(&dir);
    let mut bg = tb
        .cmd(&mifrun_args("wlan0", &[bin.as_str(), "sigcount", "4"]))
        .timeout(Duration::from_secs(20))
        .spawn();
    bg.wait_for_stdout("ready", Duration::from_secs(10));
    // The harness runs the command in a process group of its own, led by mifrun.
    let mifrun_pid = bg.pid().expect("pid") as libc::pid_t;
    let signal = |pid: libc::pid_t, sig: libc::c_int| {
        // SAFETY: signalling mifrun, or the process group the harness made for it.
        let r = unsafe { libc::kill(pid, sig) };
        assert_eq!(
            r,
            0,
            "kill({pid}, {sig}): {}",
            std::io::Error::last_os_error()
        );
    };
    signal(mifrun_pid, libc::SIGSTOP);
    let stopped = (0..250).any(|_| {
        let st = std::fs::read_to_string(format!("/proc/{mifrun_pid}/stat")).unwrap_or_default();
        let state = st
            .rsplit_once(')')
            .map(|(_, r)| r.trim_start().starts_with('T'));
        if state == Some(true) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
        false
    });
    assert!(stopped, "mifrun did not stop");
    signal(-mifrun_pid, libc::SIGTERM);
    bg.wait_for_stdout("term 1", Duration::from_secs(3));
    signal(mifrun_pid, libc::SIGCONT);
    let out = bg.wait(Duration::from_secs(20));
    assert!(out.stdout.contains("got 2 SIGTERM"), "{}", out.dump());
}

/// Without root (uid 65534; no Yama on this kernel, so a same-uid process may
/// `pidfd_getfd` another): the program takes mifrun's seccomp listener out of its
/// parent with `pidfd_open(getppid())` + `pidfd_getfd`, stops mifrun (SIGSTOP: same
/// uid) and answers its own notifications with CONTINUE: its 20 connected UDP sockets
/// are left unbound and their datagrams leave by eth0 (racing a running supervisor
/// instead, 13-14 of 20 did). mifrun, holding the listener, should not be open to its
/// own program (e.g. `PR_SET_DUMPABLE` 0).
#[test]
fn an_unprivileged_program_cannot_take_the_supervisors_listener() {
    use std::os::unix::fs::PermissionsExt;
    let tb = Testbed::up();
    let dir = TempDir::new("suprev");
    let bin = build(&dir);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut argv = strs(&[
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ]);
    argv.extend(mifrun_args("wlan0", &[bin.as_str(), "steal", "4"]));
    let sn = tb.sniff_all();
    let out = tb.cmd(&argv).timeout(Duration::from_secs(60)).run();
    let counts = sn.stop();
    assert!(out.stdout.contains("stolen listener="), "{}", out.dump());
    steered_or_refused(&out, &counts);
}

both!(
    /// mifrun chooses the supervisor for the program it starts only: a dynamic shell
    /// (preloaded, not supervised) that runs a static program (or a Go one: `kubectl`,
    /// `terraform`, `docker` from a script or a Makefile) gives it nothing that steers
    /// it, and its datagram leaves by eth0 while the shell's own `curl` goes by wlan0.
    /// The exec'ed program must be steered (supervised) or refused, not run unsteered.
    a_static_program_execd_by_a_preloaded_shell_does_not_leave_unsteered,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("suprev");
        let bin = build(&dir);
        let script = format!(
            "{bin} plain {}; curl -sS --max-time 5 {}",
            fam_arg(fam),
            fam.url(80)
        );
        let sn = tb.sniff_all();
        let out = tb
            .cmd(&mifrun_args("wlan0", &["sh", "-c", script.as_str()]))
            .timeout(Duration::from_secs(60))
            .run();
        let counts = sn.stop();
        assert!(
            out.stdout.contains("control "),
            "the static program did not run:{}",
            out.dump()
        );
        out.assert_answered_by("wlan0");
        assert_none_on(&counts, &["eth0", "wwan0"]);
    }
);

/// A dynamically linked musl program (`PT_INTERP` `/lib/ld-musl-x86_64.so.1`, as built
/// on Alpine or with `musl-gcc` without `-static`): mifrun's inspection picks the
/// preload, whose glibc-built library musl's loader cannot relocate
/// (`__register_atfork: symbol not found`), so the program never runs (status 127).
/// A preload that cannot load into the program is a program to supervise.
#[test]
fn a_dynamic_musl_program_is_supervised_not_given_a_glibc_preload() {
    let tb = Testbed::up();
    let dir = TempDir::new("suprev");
    let file = dir.write("supervise_review.c", SRC);
    let bin = dir
        .path()
        .join("review-musl")
        .to_string_lossy()
        .into_owned();
    // musl's headers have no <linux/…>: the kernel's, after musl's own.
    let argv = strs(&[
        "musl-gcc",
        "-O1",
        "-idirafter",
        "/usr/include",
        "-idirafter",
        "/usr/include/x86_64-linux-gnu",
        "-o",
        &bin,
        &file,
        "-lpthread",
    ]);
    Cmd::new(None, &argv)
        .timeout(Duration::from_secs(120))
        .run()
        .assert_ok();
    let out = expect_via(
        &tb,
        tb.cmd(&mifrun_args("wlan0", &[bin.as_str(), "plain", "4"])),
        "wlan0",
    );
    assert!(
        out.stdout.contains("control upstream=wlan0"),
        "{}",
        out.dump()
    );
}

/// The PKTINFO case from Go, the way QUIC stacks send: `WriteMsgUDP` with an
/// `IP_PKTINFO` control message naming no interface (ifindex 0, no source), built with
/// `CGO_ENABLED=0` (supervised automatically). Answered by eth0 today.
const GO_PKTINFO: &str = r#"
package main

import (
	"fmt"
	"net"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	pc, err := net.ListenUDP("udp4", nil)
	if err != nil {
		fmt.Println("listen", err)
		return
	}
	oob := make([]byte, syscall.CmsgSpace(12))
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level = syscall.IPPROTO_IP
	h.Type = syscall.IP_PKTINFO
	h.SetLen(syscall.CmsgLen(12))
	dst := &net.UDPAddr{IP: net.ParseIP("203.0.113.10"), Port: 9000}
	_, _, err = pc.WriteMsgUDP([]byte("q"), oob, dst)
	fmt.Println("pktinfo sent, err:", err)
	pc.SetReadDeadline(time.Now().Add(3 * time.Second))
	b := make([]byte, 256)
	n, _, err := pc.ReadFrom(b)
	fmt.Printf("pktinfo %s (%v)\n", b[:n], err)
}
"#;

#[test]
fn a_go_writemsgudp_with_an_empty_pktinfo_is_not_sent_unsteered() {
    let tb = Testbed::up();
    let dir = TempDir::new("suprev");
    let src = dir.write("main.go", GO_PKTINFO);
    let bin = dir.path().join("gopktinfo").to_string_lossy().into_owned();
    Cmd::new(None, &["go", "build", "-o", &bin, &src])
        .env("CGO_ENABLED", "0")
        .env("GOCACHE", dir.path().join("gocache").to_string_lossy())
        .env("GOPATH", dir.path().join("gopath").to_string_lossy())
        .env("GO111MODULE", "off")
        .timeout(Duration::from_secs(300))
        .run()
        .assert_ok();
    let out = expect_via(&tb, tb.cmd(&mifrun_args("wlan0", &[bin.as_str()])), "wlan0");
    assert!(
        out.stdout.contains("pktinfo upstream=wlan0"),
        "{}",
        out.dump()
    );
}
