//! `mifrun --guard` (issue 13): the program's process tree runs in a cgroup of its own
//! whose packets nftables lets out only by loopback and the policy's interfaces. With
//! the shim disabled inside the program, its traffic to the default route is dropped,
//! counted and reported, and nothing reaches any uplink; with the shim on, nothing is
//! dropped. The table and the cgroups are gone after the run, after the program is
//! killed, and after a daemon it left behind exits; a stale guard is removed by the
//! next run.
//!
//! `ip netns exec` mounts a fresh sysfs without the cgroup file systems, so each run
//! mounts the cgroup v2 hierarchy on `/sys/fs/cgroup` in its own mount namespace first
//! (as a host has it).

use integration_tests::*;
use std::time::{Duration, Instant};

/// `sh -c 'mount cgroup2 && exec mifrun --guard ARGS…'` in the testbed's host namespace.
fn guarded<S: AsRef<str>>(tb: &Testbed, mifrun_args: &[S]) -> Cmd {
    let mut argv: Vec<String> = vec![
        "sh".into(),
        "-c".into(),
        "mount -t cgroup2 none /sys/fs/cgroup && exec \"$@\"".into(),
        "sh".into(),
        s(mifrun()),
        "--guard".into(),
    ];
    argv.extend(mifrun_args.iter().map(|a| a.as_ref().to_string()));
    tb.cmd(&argv).timeout(Duration::from_secs(30))
}

/// The guard tables in the testbed's host namespace.
fn guard_tables(tb: &Testbed) -> Vec<String> {
    let out = tb.run(&["nft", "list", "tables"]);
    out.stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("table inet "))
        .filter(|t| t.starts_with("mifshim_guard_"))
        .map(str::to_owned)
        .collect()
}

/// The cgroup v2 root as this test process sees it (the host's mounts).
fn cgroup_root() -> std::path::PathBuf {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    text.lines()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let f: Vec<&str> = left.split_whitespace().collect();
            (right.starts_with("cgroup2 ") && f.get(3) == Some(&"/"))
                .then(|| std::path::PathBuf::from(f[4]))
        })
        .expect("a cgroup v2 hierarchy is mounted")
}

/// Waits (bounded) until `done` holds; panics with `what` otherwise.
#[track_caller]
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < until, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The table and both cgroups of the run whose id is or starts with `id` (a run id is
/// mifrun's pid, `_` and 64 random bits) are gone.
#[track_caller]
fn assert_removed(tb: &Testbed, id: &str) {
    let id = if id.contains('_') {
        id.to_owned()
    } else {
        format!("{id}_")
    };
    let root = cgroup_root().join("mifshim");
    let ours = |n: &str| {
        ["mifshim_guard_", "guard-", "reaper-"]
            .iter()
            .any(|p| n.strip_prefix(p).is_some_and(|rest| rest.starts_with(&id)))
    };
    eventually(
        &format!("the guard {id}… and its cgroups were removed"),
        || {
            !guard_tables(tb).iter().any(|t| ours(t))
                && std::fs::read_dir(&root)
                    .is_ok_and(|d| !d.flatten().any(|e| ours(&e.file_name().to_string_lossy())))
        },
    );
}

/// The run ids (mifrun's pid, `_`, 64 random bits) in guard table names.
fn ids_in(tables: &[String]) -> Vec<String> {
    tables
        .iter()
        .filter_map(|t| t.strip_prefix("mifshim_guard_"))
        .map(str::to_owned)
        .collect()
}

/// The first `guard_drop` line of the events file at `path`, parsed (panics with the
/// file and the run's output when there is none).
#[track_caller]
fn guard_drop_line(path: &str, out: &Out) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let line = text
        .lines()
        .find(|l| l.contains("\"event\":\"guard_drop\""))
        .unwrap_or_else(|| panic!("no guard_drop line in:\n{text}\n{}", out.dump()));
    serde_json::from_str(line).unwrap()
}

/// A python3 program: one UDP datagram to the service (its answer printed, or the
/// errno), one TCP exchange (the line, or the errno), and a datagram over loopback.
const PROBE: &str = r#"
import socket, sys
svc = sys.argv[1]
fam = socket.AF_INET6 if ":" in svc else socket.AF_INET
u = socket.socket(fam, socket.SOCK_DGRAM)
u.settimeout(2)
for attempt in range(3):
    try:
        u.sendto(b"udp", (svc, 9000))
        print(u.recv(200).decode().strip())
        break
    except socket.timeout:
        continue
    except OSError as e:
        print("udp failed", e.errno)
        break
else:
    print("udp failed: no answer")
t = socket.socket(fam, socket.SOCK_STREAM)
t.settimeout(3)
try:
    t.connect((svc, 9000))
    print(t.recv(200).decode().strip())
except OSError as e:
    print("tcp failed", e.errno)
lo = "::1" if fam == socket.AF_INET6 else "127.0.0.1"
a = socket.socket(fam, socket.SOCK_DGRAM)
a.bind((lo, 0))
u.sendto(b"ping", a.getsockname()[:2])
print("loopback", a.recv(10).decode())
"#;

both!(
    /// The shim disabled inside the program (`env MIFSHIM_DISABLE=1`): its UDP and TCP
    /// to the service follow the default route (eth0) and are refused by the guard;
    /// loopback still works; no uplink sees a packet; the report names the destination
    /// and the interface; the table and the cgroups are gone afterwards.
    guard_drops_and_counts_what_a_disabled_shim_sends_by_the_default_route,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("guard");
        let probe = dir.write("probe.py", PROBE);
        let sn = tb.sniff_all();
        let bg = guarded(
            &tb,
            &[
                "--via",
                "wlan0",
                "--",
                "env",
                "MIFSHIM_DISABLE=1",
                "python3",
                &probe,
                fam.svc(),
            ],
        )
        .spawn();
        let id = bg.pid().expect("running").to_string();
        let out = bg.wait(Duration::from_secs(30));
        let counts = sn.stop();
        out.assert_ok();
        assert_silent(&counts);
        assert!(out.stdout.contains("udp failed"), "{}", out.dump());
        assert!(out.stdout.contains("tcp failed"), "{}", out.dump());
        assert!(out.stdout.contains("loopback ping"), "{}", out.dump());
        let line = out
            .stderr
            .lines()
            .find(|l| l.contains("--guard dropped"))
            .unwrap_or_else(|| panic!("no drop report:{}", out.dump()));
        assert!(
            line.contains(&format!("{} by eth0: ", fam.svc())),
            "{}",
            out.dump()
        );
        assert_removed(&tb, &id);
    }
);

both!(
    /// With the shim on, every flow leaves by wlan0 and the guard drops nothing.
    guard_with_the_shim_on_drops_nothing,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("guard");
        let probe = dir.write("probe.py", PROBE);
        let out = expect_via(
            &tb,
            guarded(&tb, &["--via", "wlan0", "--", "python3", &probe, fam.svc()]),
            "wlan0",
        );
        out.assert_ok();
        assert_eq!(upstreams(&out.stdout), ["wlan0", "wlan0"], "{}", out.dump());
        assert!(out.stdout.contains("loopback ping"), "{}", out.dump());
        assert!(
            out.stderr
                .contains("--guard: no packet of this run was dropped"),
            "{}",
            out.dump()
        );
    }
);

/// `kill -9` of the guarded program (mifrun has become it): the tree is gone, so the
/// reaper reports and removes the table and the cgroups.
#[test]
fn guard_is_removed_after_the_program_is_killed() {
    let tb = Testbed::up();
    let bg = guarded(&tb, &["--via", "wlan0", "--", "sleep", "30"]).spawn();
    eventually("the guard table exists while the program runs", || {
        !guard_tables(&tb).is_empty()
    });
    let ids = ids_in(&guard_tables(&tb));
    assert_eq!(ids.len(), 1, "{ids:?}");
    let pid = bg.pid().expect("running") as libc::pid_t;
    assert!(
        ids[0].starts_with(&format!("{pid}_")),
        "the table is named after the run: {ids:?}"
    );
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_removed(&tb, &ids[0]);
    let out = bg.wait(Duration::from_secs(10));
    assert!(
        out.stderr
            .contains("--guard: no packet of this run was dropped"),
        "{}",
        out.dump()
    );
}

/// A daemon the program leaves behind stays guarded (its datagram by the default
/// route is refused and counted) until it exits; then the guard is removed.
#[test]
fn guard_keeps_a_daemon_left_behind_guarded_until_it_exits() {
    let tb = Testbed::up();
    let dir = TempDir::new("guard");
    let result = dir.path().join("daemon.out").to_string_lossy().into_owned();
    let daemon = dir.write(
        "daemon.py",
        &format!(
            r#"
import os, socket, time
time.sleep(1.5)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.sendto(b"late", ("{SVC4}", 9000))
    r = "sent"
except OSError as e:
    r = "failed %d" % e.errno
open("{result}", "w").write(r)
"#
        ),
    );
    let script = format!(
        "MIFSHIM_DISABLE=1 setsid python3 {daemon} </dev/null >/dev/null 2>&1 & echo started"
    );
    let mut bg = guarded(&tb, &["--via", "wlan0", "--", "sh", "-c", &script]).spawn();
    bg.wait_for_stdout("started", Duration::from_secs(10));
    eventually("the guard table exists", || !guard_tables(&tb).is_empty());
    let ids = ids_in(&guard_tables(&tb));
    assert_eq!(ids.len(), 1, "{ids:?}");
    // The program (sh) has exited; the daemon is still in the cgroup, still guarded.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        ids_in(&guard_tables(&tb)),
        ids,
        "the guard outlives the program"
    );
    let sn = tb.sniff_all();
    eventually("the daemon wrote its result", || {
        std::path::Path::new(&result).exists()
    });
    let counts = sn.stop();
    assert_silent(&counts);
    let r = std::fs::read_to_string(&result).unwrap();
    assert!(
        r.starts_with("failed"),
        "the daemon's datagram was refused: {r}"
    );
    assert_removed(&tb, &ids[0]);
    let out = bg.wait(Duration::from_secs(10));
    assert!(
        out.stderr.contains(&format!(
            "--guard dropped 1 packet that would have left by another link ({SVC4} by eth0: 1)"
        )),
        "{}",
        out.dump()
    );
}

/// A guard whose reaper was killed (its table and an empty cgroup left behind) is
/// removed by the next `--guard` run in that namespace.
#[test]
fn guard_removes_a_stale_guard_left_by_a_killed_reaper() {
    let tb = Testbed::up();
    let id = "4000001";
    let root = cgroup_root().join("mifshim");
    let _ = std::fs::create_dir(&root);
    let stale = root.join(format!("guard-{id}"));
    let _ = std::fs::create_dir(&stale);
    tb.cmd(&["nft", "-f", "-"])
        .stdin(format!(
            "table inet mifshim_guard_{id} {{ chain out {{ type filter hook output priority filter; policy accept; }}; }}\n"
        ))
        .run()
        .assert_ok();
    assert_eq!(guard_tables(&tb), [format!("mifshim_guard_{id}")]);
    let out = guarded(&tb, &["--via", "wlan0", "--", "true"]).run();
    out.assert_ok();
    assert!(
        out.stderr
            .contains(&format!("removed the stale guard mifshim_guard_{id}")),
        "{}",
        out.dump()
    );
    assert!(!stale.exists(), "the stale cgroup was removed");
    eventually(
        "only the run's own table was left, and it is gone too",
        || guard_tables(&tb).is_empty(),
    );
}

/// `--guard` refuses, with the reason and exit status 2, where it cannot guard: no
/// cgroup v2 mounted (plain `ip netns exec`), and a policy that lets traffic follow the
/// routing table by any link.
#[test]
fn guard_refuses_what_it_cannot_enforce() {
    let tb = Testbed::up();
    let out = tb
        .cmd(&[
            s(mifrun()),
            "--guard".into(),
            "--via".into(),
            "wlan0".into(),
            "--".into(),
            "true".into(),
        ])
        .run();
    out.assert_code(2);
    assert!(out.stderr.contains("cgroup v2"), "{}", out.dump());
    let dir = TempDir::new("guard");
    let policy = dir.write("p.toml", "via = [\"wlan0\"]\non_unavailable = \"direct\"\n");
    let out = guarded(&tb, &["--policy", &policy, "--", "true"]).run();
    out.assert_code(2);
    assert!(out.stderr.contains("on_unavailable"), "{}", out.dump());
    assert!(guard_tables(&tb).is_empty());
}

/// A static program (no preload can steer it) under `--guard --allow-unsteered`: its
/// TCP and UDP by the default route are refused and counted; nothing reaches any uplink.
#[test]
fn guard_refuses_what_a_static_program_sends_by_another_link() {
    let tb = Testbed::up();
    let dir = TempDir::new("guard");
    let bin = static_probe(&dir);
    let sn = tb.sniff_all();
    let out = guarded(
        &tb,
        &["--allow-unsteered", "--via", "wlan0", "--", &bin, SVC4],
    )
    .run();
    let counts = sn.stop();
    out.assert_ok();
    assert_silent(&counts);
    assert!(!out.stdout.contains("tcp connected"), "{}", out.dump());
    assert!(!out.stdout.contains("udp sent"), "{}", out.dump());
    assert!(
        out.stderr.contains(&format!("{SVC4} by eth0: ")),
        "{}",
        out.dump()
    );
}

/// `--guard` with `--summary`, `--events` and `--fail-on dropped`: what the guard
/// dropped while the program ran is in the summary, in the events file (one
/// `guard_drop` line per destination and interface) and fails the run with status 3.
#[test]
fn guard_drops_show_in_the_summary_and_events_and_fail_the_run() {
    let tb = Testbed::up();
    let dir = TempDir::new("guard");
    let probe = dir.write("probe.py", PROBE);
    let events = dir.path().join("ev.jsonl").to_string_lossy().into_owned();
    let out = guarded(
        &tb,
        &[
            "--via",
            "wlan0",
            "--summary",
            "--events",
            &events,
            "--fail-on",
            "dropped",
            "--",
            "env",
            "MIFSHIM_DISABLE=1",
            "python3",
            &probe,
            SVC4,
        ],
    )
    .run();
    out.assert_code(3);
    assert!(
        out.stderr.contains("  dropped    ") && out.stderr.contains(&format!("{SVC4} by eth0 ")),
        "{}",
        out.dump()
    );
    assert!(
        out.stderr.contains("--fail-on dropped: --guard dropped"),
        "{}",
        out.dump()
    );
    let v = guard_drop_line(&events, &out);
    assert_eq!(v["v"], 1);
    assert_eq!(v["address"], SVC4);
    assert_eq!(v["interface"], "eth0");
    assert!(v["packets"].as_u64().unwrap() >= 2, "{v}");
    // Without --guard, --fail-on dropped is refused.
    let out = tb
        .cmd(
            &mifrun_args("wlan0", &["true"])
                .into_iter()
                .take(1)
                .chain(["--via", "wlan0", "--fail-on", "dropped", "--", "true"].map(String::from))
                .collect::<Vec<_>>(),
        )
        .run();
    out.assert_code(2);
    assert!(out.stderr.contains("needs --guard"), "{}", out.dump());
}

/// Twenty `mifrun --guard` runs started at once in one namespace, each with the shim
/// disabled and a datagram to the service after a moment: a run's stale-guard clean-up
/// took another run's cgroup for empty (between its creation and its join) and deleted
/// that run's live table, whose datagram then left by eth0 while its report said
/// nothing was dropped. Now set-up and clean-up hold one lock and a run joins its cgroup
/// before its table exists.
#[test]
fn concurrent_guarded_runs_deleted_each_others_live_tables() {
    let tb = Testbed::up();
    let dir = TempDir::new("guard");
    let udp = dir.write(
        "udp.py",
        &format!(
            r#"
import socket, time
time.sleep(0.5)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
try:
    s.sendto(b"x", ("{SVC4}", 9000))
    print("reply", s.recv(200).decode().strip())
except OSError as e:
    print("refused", e.errno)
"#
        ),
    );
    let sn = tb.sniff_all();
    let runs: Vec<Bg> = (0..20)
        .map(|_| {
            guarded(
                &tb,
                &[
                    "--via",
                    "wlan0",
                    "--",
                    "env",
                    "MIFSHIM_DISABLE=1",
                    "python3",
                    &udp,
                ],
            )
            .spawn()
        })
        .collect();
    let outs: Vec<Out> = runs
        .into_iter()
        .map(|b| b.wait(Duration::from_secs(30)))
        .collect();
    let counts = sn.stop();
    assert_silent(&counts);
    for out in &outs {
        out.assert_ok();
        assert!(out.stdout.contains("refused"), "{}", out.dump());
        assert!(
            !out.stderr.contains("removed the stale guard"),
            "a live guard was taken for stale:{}",
            out.dump()
        );
        assert!(
            out.stderr.contains("--guard dropped 1 packet"),
            "{}",
            out.dump()
        );
    }
    eventually("every guard was removed", || guard_tables(&tb).is_empty());
}

/// The program (root) deletes its own guard's table: the report said "no packet of
/// this run was dropped" for a run that was unguarded since. Now the drops are
/// unknown, said so, and `--fail-on dropped` fails.
#[test]
fn a_removed_guard_table_was_reported_as_nothing_dropped() {
    let tb = Testbed::up();
    let script = "nft list tables | sed -n 's/^table inet \\(mifshim_guard_.*\\)/\\1/p' | while read t; do nft delete table inet $t; done";
    let out = guarded(
        &tb,
        &[
            "--via",
            "wlan0",
            "--summary",
            "--fail-on",
            "dropped",
            "--",
            "sh",
            "-c",
            script,
        ],
    )
    .run();
    out.assert_code(3);
    assert!(
        out.stderr.contains("cannot read its table"),
        "{}",
        out.dump()
    );
    assert!(
        !out.stderr.contains("no packet of this run was dropped"),
        "{}",
        out.dump()
    );
}

/// `--events FILE --guard` without `--summary` (mifrun execs the program): the
/// reaper appends the run's `guard_drop` lines when the tree has exited (they were
/// written only in the summary path).
#[test]
fn guard_drop_lines_were_missing_without_summary() {
    let tb = Testbed::up();
    let dir = TempDir::new("guard");
    let probe = dir.write("probe.py", PROBE);
    let events = dir.path().join("ev.jsonl").to_string_lossy().into_owned();
    let out = guarded(
        &tb,
        &[
            "--via",
            "wlan0",
            "--events",
            &events,
            "--",
            "env",
            "MIFSHIM_DISABLE=1",
            "python3",
            &probe,
            SVC6,
        ],
    )
    .run();
    out.assert_ok();
    let v = guard_drop_line(&events, &out);
    assert_eq!(v["address"], SVC6);
    assert_eq!(v["interface"], "eth0");
}

/// A static C program (no preload reaches it): a TCP connect to ADDR:9000, one line
/// read and printed, and one UDP datagram there with its answer printed (or the errors).
fn static_probe(dir: &TempDir) -> String {
    let src = dir.write(
        "static.c",
        r#"#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(9000)};
    inet_pton(AF_INET, argv[1], &a.sin_addr);
    int t = socket(AF_INET, SOCK_STREAM, 0);
    int r = connect(t, (void *)&a, sizeof a);
    printf("tcp %s\n", r == 0 ? "connected" : strerror(errno));
    if (r == 0) {
        char b[256];
        ssize_t n = read(t, b, sizeof b - 1);
        if (n > 0) { b[n] = 0; printf("%s", b); }
    }
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    r = sendto(u, "x", 1, 0, (void *)&a, sizeof a);
    printf("udp %s\n", r == 1 ? "sent" : strerror(errno));
    if (r == 1) {
        struct timeval tv = {2, 0};
        setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char b[256];
        ssize_t n = recv(u, b, sizeof b - 1, 0);
        if (n > 0) { b[n] = 0; printf("%s", b); }
    }
    return 0;
}
"#,
    );
    let bin = dir.path().join("static").to_string_lossy().into_owned();
    Cmd::new(None, &["gcc", "-static", "-O1", "-o", &bin, &src])
        .run()
        .assert_ok();
    bin
}

/// A static program supervised (automatically: no preload reaches it) under `--guard`:
/// both backstops together; every answer comes from wlan0 and the guard drops nothing.
#[test]
fn guard_and_the_supervisor_together_steer_a_static_program_and_drop_nothing() {
    let tb = Testbed::up();
    let dir = TempDir::new("guard");
    let bin = static_probe(&dir);
    let out = expect_via(
        &tb,
        guarded(&tb, &["--via", "wlan0", "--", &bin, SVC4]),
        "wlan0",
    );
    out.assert_ok();
    assert_eq!(upstreams(&out.stdout), ["wlan0", "wlan0"], "{}", out.dump());
    assert!(
        out.stderr
            .contains("--guard: no packet of this run was dropped"),
        "{}",
        out.dump()
    );
}

/// The reproducers of the supervisor's hostile reviews (`e2e/supervise_review.c`).
const REVIEW_SRC: &str = include_str!("e2e/supervise_review.c");

both!(
    /// The race the supervisor cannot close (README, "Supervisor"): thread A connects an
    /// `AF_UNIX` socket, which the supervisor lets continue, while thread B `dup2`s an
    /// INET socket onto the fd and rewrites the address into the service's: the kernel
    /// connects the swapped-in socket without a device binding. Without `--guard` its
    /// datagram leaves by eth0 (seen at the first or second connect of 5000, v4 and v6:
    /// `upstream=eth0`). Under `--guard` the race still happens (the program reports the
    /// unbound, connected socket) but its datagram is dropped and counted, nothing
    /// reaches eth0 or wwan0, and the control datagram is answered by wlan0.
    guard_drops_what_an_inet_socket_swapped_onto_an_af_unix_connect_sends_supervise,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("guard");
        let src = dir.write("supervise_review.c", REVIEW_SRC);
        let bin = dir.path().join("review").to_string_lossy().into_owned();
        Cmd::new(None, &["gcc", "-static", "-O1", "-pthread", "-o", &bin, &src])
            .timeout(Duration::from_secs(120))
            .run()
            .assert_ok();
        let fam_arg = if fam.v6() { "6" } else { "4" };
        let sn = tb.sniff_all();
        let out = guarded(&tb, &["--via", "wlan0", "--", &bin, "unixswap", fam_arg, "5000"]).run();
        let counts = sn.stop();
        let summary = out
            .stdout
            .lines()
            .find(|l| l.starts_with("unixswap iterations="))
            .unwrap_or_else(|| panic!("no summary line:{}", out.dump()));
        assert!(
            summary.contains(" leaks=1 "),
            "the race never connected the swapped-in socket unbound, so this run proves nothing about the guard:{}",
            out.dump()
        );
        assert!(
            !out.stdout.contains("upstream=eth0") && !out.stdout.contains("upstream=wwan0"),
            "the leaked socket was answered by another link:{}",
            out.dump()
        );
        assert!(
            out.stdout.contains("control upstream=wlan0"),
            "the control datagram was not answered by wlan0:{}",
            out.dump()
        );
        assert_none_on(&counts, &["eth0", "wwan0"]);
        let line = out
            .stderr
            .lines()
            .find(|l| l.contains("--guard dropped"))
            .unwrap_or_else(|| panic!("no drop report:{}", out.dump()));
        assert!(
            line.contains(&format!("{} by eth0: ", fam.svc())),
            "{}",
            out.dump()
        );
    }
);
