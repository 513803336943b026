//! End-to-end tests of the events file (`mifrun --events`, `MIFSHIM_EVENTS`),
//! `mifrun --summary` and `mifrun --fail-on` (issue 14, "Proving it afterwards"): real
//! programs (curl, python3, sh) in the namespace testbed, the events checked field by
//! field against what the sniffers saw on the uplinks.

use integration_tests::*;
use serde_json::Value;
use std::os::unix::process::ExitStatusExt;

fn strs(a: &[&str]) -> Vec<String> {
    a.iter().map(|x| x.to_string()).collect()
}

/// `mifrun OPTS… -- PROG…`.
fn mifrun_with(opts: &[&str], prog: &[String]) -> Vec<String> {
    let mut v = vec![s(mifrun())];
    v.extend(strs(opts));
    v.push("--".into());
    v.extend(prog.iter().cloned());
    v
}

fn py(code: &str) -> Vec<String> {
    vec!["python3".into(), "-c".into(), code.into()]
}

/// Every line of the events file, each parsed (panics on a line that is not JSON,
/// naming it).
fn events(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "the events file does not end with a newline:\n{text}"
    );
    text.lines()
        .map(|l| {
            assert!(
                l.len() < 4096,
                "a line of {} bytes (PIPE_BUF is 4096)",
                l.len()
            );
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))
        })
        .collect()
}

/// The common fields every line carries, checked.
#[track_caller]
fn check_common(e: &Value, program: &str) {
    assert_eq!(e["v"], 1, "{e}");
    assert_eq!(e["program"], program, "{e}");
    assert!(e["pid"].as_u64().is_some_and(|p| p > 1), "{e}");
    let t = e["time"].as_str().unwrap_or_else(|| panic!("no time: {e}"));
    // 2026-12-01T23:49:23.493750Z
    assert_eq!(t.len(), 27, "{e}");
    assert!(t.starts_with("20") && t.ends_with('Z'), "{e}");
    assert_eq!(&t[10..11], "T", "{e}");
    assert_eq!(&t[19..20], ".", "{e}");
}

fn decisions<'a>(ev: &'a [Value], call: &str) -> Vec<&'a Value> {
    ev.iter()
        .filter(|e| e["event"] == "decision" && e["call"] == call)
        .collect()
}

fn dest(fam: Fam, addr: &str, port: u16) -> String {
    format!("{}:{port}", fam.url_host(addr))
}

both!(
    /// A connect steered onto wlan0: one line, every field as the sniffers saw it.
    steered_connect_is_one_bind_line,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("ev-bind");
        let file = s(dir.path().join("events.jsonl"));
        let curl = strs(&["curl", "-sS", "--max-time", "5", &fam.url(80)]);
        expect_via(
            &tb,
            tb.cmd(&mifrun_with(&["--via", "wlan0", "--events", &file], &curl)),
            "wlan0",
        );
        let ev = events(&file);
        let c = decisions(&ev, "connect");
        assert_eq!(c.len(), 1, "{ev:#?}");
        let e = c[0];
        check_common(e, "curl");
        assert_eq!(e["protocol"], "tcp", "{e}");
        assert_eq!(e["destination"], dest(fam, fam.svc(), 80), "{e}");
        assert_eq!(e["address"], fam.svc(), "{e}");
        assert_eq!(e["port"], 80, "{e}");
        assert_eq!(e["decision"], "bind", "{e}");
        assert_eq!(e["interface"], "wlan0", "{e}");
        assert!(e["ifindex"].as_u64().is_some_and(|i| i > 1), "{e}");
        assert_eq!(e["reason"], "default", "{e}");
        assert!(e["rule"].is_null(), "{e}");
        assert!(e.get("errno").is_none(), "{e}");
        assert!(e["fd"].as_u64().is_some(), "{e}");
    }
);

both!(
    /// Datagrams: a loopback send is `direct` (`loopback`, no interface), a send to
    /// the service from the same socket is `bind` to wlan0; five datagrams to each give
    /// one line each (one per socket, destination and outcome).
    loopback_send_is_direct_and_repeats_are_one_line,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("ev-udp");
        let file = s(dir.path().join("events.jsonl"));
        let code = format!(
            r#"
import socket
fam = socket.AF_INET6 if {v6} else socket.AF_INET
lo = socket.socket(fam, socket.SOCK_DGRAM)
lo.bind(("{lo}", 0))
s = socket.socket(fam, socket.SOCK_DGRAM)
s.settimeout(3)
for i in range(5):
    s.sendto(b"x", lo.getsockname()[:2])
    s.sendto(b"ping", ("{svc}", 9000))
    print(s.recvfrom(200)[0].decode().strip())
print(lo.recv(10))
"#,
            v6 = if fam.v6() { "True" } else { "False" },
            lo = fam.lo(),
            svc = fam.svc(),
        );
        let out = expect_via(
            &tb,
            tb.cmd(&mifrun_with(
                &["--via", "wlan0", "--events", &file],
                &py(&code),
            )),
            "wlan0",
        );
        assert_eq!(upstreams(&out.stdout).len(), 5, "{}", out.dump());
        let ev = events(&file);
        let sends = decisions(&ev, "sendto");
        assert_eq!(sends.len(), 2, "{ev:#?}");
        let direct = sends
            .iter()
            .find(|e| e["decision"] == "direct")
            .unwrap_or_else(|| panic!("no direct line: {ev:#?}"));
        check_common(direct, "python3");
        assert_eq!(direct["protocol"], "udp", "{direct}");
        assert_eq!(direct["address"], fam.lo(), "{direct}");
        assert_eq!(direct["reason"], "loopback", "{direct}");
        assert!(direct["interface"].is_null(), "{direct}");
        assert!(direct["rule"].is_null(), "{direct}");
        let bind = sends
            .iter()
            .find(|e| e["decision"] == "bind")
            .unwrap_or_else(|| panic!("no bind line: {ev:#?}"));
        assert_eq!(bind["destination"], dest(fam, fam.svc(), 9000), "{bind}");
        assert_eq!(bind["interface"], "wlan0", "{bind}");
        assert_eq!(bind["protocol"], "udp", "{bind}");
        assert_eq!(bind["fd"], direct["fd"], "one socket: {ev:#?}");
    }
);

/// The policy of the blocked / direct-by-rule tests: block TCP 9000 to the service,
/// send TCP 8080 down the routing table, steer the rest onto wlan0.
fn block_policy(fam: Fam) -> String {
    format!(
        "via = [\"wlan0\"]\n\n[[rules]]\nto = [\"{c}\"]\nports = [9000]\nprotocol = \"tcp\"\naction = \"block\"\n\n[[rules]]\nto = [\"{c}\"]\nports = [8080]\naction = \"direct\"\n",
        c = fam.svc_cidr()
    )
}

/// A python program: connects to `svc:port`, prints `refused EACCES` or the answer.
fn py_connect(fam: Fam, port: u16) -> Vec<String> {
    py(&format!(
        r#"
import socket, errno
c = socket.socket(socket.AF_INET6 if {v6} else socket.AF_INET)
c.settimeout(5)
try:
    c.connect(("{svc}", {port}))
    c.sendall(b"GET / HTTP/1.0\r\n\r\n")
    print(c.recv(4096).decode(errors="replace"))
except OSError as e:
    print("refused", errno.errorcode.get(e.errno))
"#,
        v6 = if fam.v6() { "True" } else { "False" },
        svc = fam.svc(),
    ))
}

both!(
    /// A connect a `block` rule refuses: EACCES for the program, nothing on any uplink,
    /// and a `block` line naming the rule, its line and the errno.
    blocked_connect_names_the_rule,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("ev-block");
        let file = s(dir.path().join("events.jsonl"));
        let pol = dir.write("policy.toml", &block_policy(fam));
        let sn = tb.sniff_all();
        let out = tb
            .cmd(&mifrun_with(
                &["--policy", &pol, "--events", &file],
                &py_connect(fam, 9000),
            ))
            .run();
        let counts = sn.stop();
        out.assert_ok();
        assert!(out.stdout.contains("refused EACCES"), "{}", out.dump());
        assert_silent(&counts);
        let ev = events(&file);
        let c = decisions(&ev, "connect");
        assert_eq!(c.len(), 1, "{ev:#?}");
        let e = c[0];
        check_common(e, "python3");
        assert_eq!(e["destination"], dest(fam, fam.svc(), 9000), "{e}");
        assert_eq!(e["protocol"], "tcp", "{e}");
        assert_eq!(e["decision"], "block", "{e}");
        assert!(e["interface"].is_null(), "{e}");
        assert_eq!(e["reason"], "rule", "{e}");
        assert_eq!(e["rule"], "rule 1", "{e}");
        assert_eq!(e["rule_line"], 3, "{e}");
        assert_eq!(e["errno"], "EACCES", "{e}");
    }
);

both!(
    /// A name resolved over wlan0: one `name` line with the servers asked, the link
    /// and the answers that link's DNS server gave (192.0.2.2 / 2001:db8:ee::2 are the
    /// wlan0 upstream's answers for who.mif.test).
    name_line_has_servers_link_and_answers,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("ev-name");
        let file = s(dir.path().join("events.jsonl"));
        let code = format!(
            "import socket\nprint(sorted({{a[4][0] for a in socket.getaddrinfo('who.mif.test', 80, socket.{f})}}))",
            f = if fam.v6() { "AF_INET6" } else { "AF_INET" }
        );
        let want = if fam.v6() { "2001:db8:ee::2" } else { "192.0.2.2" };
        let out = tb
            .cmd(&mifrun_with(
                &["--via", "wlan0", "--dns", DNS4, "--events", &file],
                &py(&code),
            ))
            .run();
        out.assert_ok();
        assert!(out.stdout.contains(want), "{}", out.dump());
        let ev = events(&file);
        let names: Vec<&Value> = ev.iter().filter(|e| e["event"] == "name").collect();
        assert_eq!(names.len(), 1, "{ev:#?}");
        let e = names[0];
        check_common(e, "python3");
        assert_eq!(e["name"], "who.mif.test", "{e}");
        assert_eq!(e["decision"], "bind", "{e}");
        assert_eq!(e["interface"], "wlan0", "{e}");
        assert_eq!(e["reason"], "default", "{e}");
        assert_eq!(e["source"], "MIFSHIM_DNS", "{e}");
        assert_eq!(e["servers"], serde_json::json!([format!("{DNS4}:53")]), "{e}");
        assert_eq!(e["result"], "ok", "{e}");
        assert_eq!(e["answers"], serde_json::json!([want]), "{e}");
        assert!(
            tb.wait_dns_log("wlan0", "who.mif.test", std::time::Duration::from_secs(2)),
            "the wlan0 upstream was not asked"
        );
        assert!(!tb.dns_log("eth0").contains("who.mif.test"), "eth0 was asked");
    }
);

/// Twenty processes appending at once — ten forked (sharing one open file), ten
/// started by exec (each opening it) — each writing 100 lines: every line is whole
/// JSON, each process's 100 are all there.
#[test]
fn twenty_processes_appending_at_once_tear_no_line() {
    let tb = Testbed::up();
    let dir = TempDir::new("ev-many");
    let file = s(dir.path().join("events.jsonl"));
    let child = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(100):
    s.sendto(b"x", ("127.0.0.1", 20000 + i))
"#;
    let code = format!(
        r#"
import os, subprocess, sys
child = {child:?}
procs = [subprocess.Popen([sys.executable, "-c", child]) for _ in range(10)]
pids = []
for _ in range(10):
    pid = os.fork()
    if pid == 0:
        exec(child)
        os._exit(0)
    pids.append(pid)
for p in procs:
    assert p.wait() == 0
for pid in pids:
    assert os.waitpid(pid, 0)[1] == 0
print("done")
"#
    );
    let out = tb
        .cmd(&mifrun_with(
            &["--via", "wlan0", "--events", &file],
            &py(&code),
        ))
        .timeout(std::time::Duration::from_secs(60))
        .run();
    out.assert_ok();
    let ev = events(&file);
    let mut per_pid = std::collections::BTreeMap::<u64, usize>::new();
    for e in &ev {
        check_common(e, "python3");
        if e["event"] == "decision" && e["call"] == "sendto" {
            assert_eq!(e["decision"], "direct", "{e}");
            *per_pid.entry(e["pid"].as_u64().unwrap()).or_default() += 1;
        }
    }
    assert_eq!(per_pid.len(), 20, "{per_pid:?}");
    assert!(per_pid.values().all(|n| *n == 100), "{per_pid:?}");
}

/// `--summary` after a program that steers TCP and UDP onto wlan0, sends to
/// loopback, goes direct by rule 2 and is blocked by rule 1: the counts per
/// interface and per reason, the program's own status kept.
#[test]
fn summary_counts_per_interface_and_reason() {
    let tb = Testbed::up();
    let dir = TempDir::new("ev-sum");
    let pol = dir.write("policy.toml", &block_policy(Fam::V4));
    let code = format!(
        r#"
import socket, sys
def tcp(port):
    c = socket.socket()
    c.settimeout(5)
    try:
        c.connect(("{svc}", port))
        c.sendall(b"GET / HTTP/1.0\r\n\r\n")
        print(c.recv(4096).decode(errors="replace").strip().splitlines()[-1])
    except OSError as e:
        print("refused", e.errno)
tcp(80)
tcp(8080)
tcp(9000)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(3)
u.sendto(b"ping", ("{svc}", 9000))
print(u.recvfrom(200)[0].decode().strip())
u.sendto(b"x", ("127.0.0.1", 9))
sys.exit(7)
"#,
        svc = SVC4
    );
    // The temporary events file goes to $TMPDIR: this test's directory.
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let out = tb
        .cmd(&mifrun_with(&["--policy", &pol, "--summary"], &py(&code)))
        .env("TMPDIR", s(tmp.clone()))
        .run();
    out.assert_code(7);
    let ups = upstreams(&out.stdout);
    // 80 and UDP via wlan0, 8080 direct: the routing table's eth0.
    assert_eq!(ups, ["wlan0", "eth0", "wlan0"], "{}", out.dump());
    let err = &out.stderr;
    for want in [
        "mifrun: summary: 5 decision(s) and 0 name(s) in 1 process(es); the program exited with status 7",
        "  wlan0      steered 2 (tcp 1, udp 1), names 0\n",
        "  direct     2: loopback 1, rule `rule 2` 1\n",
        "  blocked    1: rule `rule 1` 1\n",
    ] {
        assert!(err.contains(want), "missing {want:?}:{}", out.dump());
    }
    // The temporary events file is gone.
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(left.is_empty(), "temporary events files left: {left:?}");
}

/// `--fail-on`: exit 3 when a call was blocked or left direct by a rule, whatever the
/// program's status; the program's own status when nothing of the kind happened, and
/// loopback never counts.
#[test]
fn fail_on_exit_status() {
    let tb = Testbed::up();
    let dir = TempDir::new("ev-fail");
    let pol = dir.write("policy.toml", &block_policy(Fam::V4));
    let run = |opts: &[&str], port: u16| {
        let mut o = vec!["--policy", pol.as_str()];
        o.extend_from_slice(opts);
        tb.cmd(&mifrun_with(&o, &py_connect(Fam::V4, port))).run()
    };
    // Blocked (the program itself exits 0).
    let out = run(&["--fail-on", "blocked"], 9000);
    out.assert_code(3);
    assert!(out.stdout.contains("refused EACCES"), "{}", out.dump());
    assert!(
        out.stderr.contains("--fail-on blocked: 1 call(s) blocked: connect tcp 203.0.113.10:9000 (python3) by rule `rule 1`"),
        "{}",
        out.dump()
    );
    // Direct by rule 2: only `direct` fails it.
    run(&["--fail-on", "blocked"], 8080).assert_code(0);
    let out = run(&["--fail-on", "blocked,direct"], 8080);
    out.assert_code(3);
    assert!(out.stderr.contains("by rule `rule 2`"), "{}", out.dump());
    // Steered, and a loopback send: nothing to fail on; the program's status (5) kept.
    let code = format!(
        "import socket,sys\nu=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nu.sendto(b'x',('127.0.0.1',9))\nc=socket.create_connection(('{SVC4}',80),5)\nsys.exit(5)"
    );
    let out = tb
        .cmd(&mifrun_with(
            &["--policy", &pol, "--fail-on", "blocked,direct"],
            &py(&code),
        ))
        .run();
    out.assert_code(5);
    assert!(!out.stderr.contains("--fail-on"), "{}", out.dump());
}

/// The program's end becomes mifrun's: killed by a signal, mifrun dies by the same
/// signal after its summary; SIGTERM sent to mifrun reaches the program (which exits
/// 42 from its handler, and mifrun with it).
#[test]
fn program_killed_by_a_signal_is_reported_as_the_shell_would() {
    let tb = Testbed::up();
    let dir = TempDir::new("ev-sig");
    for (sig, name) in [(15, "TERM"), (9, "KILL"), (1, "HUP"), (10, "USR1")] {
        let out = tb
            .cmd(&mifrun_with(
                &["--via", "wlan0", "--summary"],
                // `; exit 0`: dash would exec a lone command.
                &strs(&["sh", "-c", &format!("kill -{name} $$; exit 0")]),
            ))
            .run();
        let st = out.status.expect("finished");
        assert_eq!(st.signal(), Some(sig), "{}", out.dump());
        assert!(!st.core_dumped(), "mifrun dumped core:{}", out.dump());
        assert!(
            out.stderr
                .contains(&format!("the program killed by signal {sig}")),
            "{}",
            out.dump()
        );
        // What a shell makes of it.
        let sh = tb
            .cmd(&strs(&[
                "sh",
                "-c",
                &format!(
                    "{} --via wlan0 --summary -- sh -c 'kill -{name} $$; exit 0' 2>/dev/null; echo status=$?",
                    s(mifrun())
                ),
            ]))
            .run();
        assert!(
            sh.stdout.contains(&format!("status={}", 128 + sig)),
            "{}",
            sh.dump()
        );
    }
    // Forwarding: the program marks itself ready, the shell sends SIGTERM to mifrun.
    let ready = s(dir.path().join("ready"));
    let prog = format!(
        "import signal,sys,time,os\nsignal.signal(signal.SIGTERM, lambda *a: (print('got TERM', flush=True), os._exit(42)))\nopen({ready:?},'w').close()\nwhile True: time.sleep(1)"
    );
    let script = format!(
        "{m} --via wlan0 --summary -- python3 -c \"$PROG\" & pid=$!\nwhile [ ! -e {ready} ]; do sleep 0.05; done\nkill -TERM $pid\nwait $pid\necho status=$?",
        m = s(mifrun()),
    );
    let out = tb
        .cmd(&strs(&["sh", "-c", &script]))
        .env("PROG", &prog)
        .run();
    out.assert_ok();
    assert!(out.stdout.contains("got TERM"), "{}", out.dump());
    assert!(out.stdout.contains("status=42"), "{}", out.dump());
    assert!(
        out.stderr.contains("the program exited with status 42"),
        "{}",
        out.dump()
    );
}

/// `MIFSHIM_EVENTS` without mifrun: plain `LD_PRELOAD` writes the same lines.
#[test]
fn plain_preload_writes_events_too() {
    let tb = Testbed::up();
    let dir = TempDir::new("ev-env");
    let file = s(dir.path().join("plain.jsonl"));
    let out = tb
        .cmd(&strs(&["curl", "-sS", "--max-time", "5", &Fam::V4.url(80)]))
        .env("LD_PRELOAD", s(shim_lib()))
        .env("MIFSHIM_VIA", "wwan0")
        .env("MIFSHIM_EVENTS", &file)
        .run();
    out.assert_answered_by("wwan0");
    let ev = events(&file);
    let c = decisions(&ev, "connect");
    assert_eq!(c.len(), 1, "{ev:#?}");
    check_common(c[0], "curl");
    assert_eq!(c[0]["interface"], "wwan0", "{}", c[0]);
}

/// Regression: with --summary the program started with SIGINT, SIGTERM, SIGHUP,
/// SIGQUIT and SIGCHLD blocked (mifrun's waiting mask leaked through `spawn`), so a
/// `kill -TERM $$` did nothing. It gets the mask mifrun was started with.
#[test]
fn child_starts_with_the_signal_mask_mifrun_had() {
    let tb = Testbed::up();
    let code =
        "print([l for l in open('/proc/self/status') if l.startswith('SigBlk')][0].split()[1])";
    let out = tb
        .cmd(&mifrun_with(&["--via", "wlan0", "--summary"], &py(code)))
        .run();
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "0000000000000000", "{}", out.dump());
}

/// A program that closes every fd (as daemons do) and opens a file that gets the
/// events file's old number: no line goes into its file; the events file is opened
/// again by name and the next decision is there.
#[test]
fn closed_events_fd_is_never_written_to_after_reuse() {
    let tb = Testbed::up();
    let dir = TempDir::new("ev-reuse");
    let file = s(dir.path().join("events.jsonl"));
    let victim = s(dir.path().join("victim"));
    let code = format!(
        r#"
import os, socket
a = socket.socket(); a.settimeout(5); a.connect(("{SVC4}", 80)); a.close()
os.closerange(3, 1024)
f = open({victim:?}, "w")
fill = [os.dup(f.fileno()) for _ in range(8)]  # every low number now is the victim's
b = socket.socket(); b.settimeout(5); b.connect(("{SVC4}", 8080)); b.close()
f.write("mine\n"); f.close()
"#
    );
    let out = tb
        .cmd(&mifrun_with(
            &["--via", "wlan0", "--events", &file],
            &py(&code),
        ))
        .run();
    out.assert_ok();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "mine\n");
    let ev = events(&file);
    let ports: Vec<u64> = decisions(&ev, "connect")
        .iter()
        .map(|e| e["port"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, [80, 8080], "{ev:#?}");
}
