//! Loading the engine: threads, forks, `_Fork`/`clone` children and signal handlers
//! that meet a load in progress, where the load happens (never inside a signal
//! handler), and a fork/thread deadlock test in the style of socket_wrapper's
//! `test_fork_thread_deadlock.c`.
//!
//! The programs are C (`integration-tests/c/loadprobe.c`, `forkstorm.c`), compiled by
//! each test with `gcc`, so that every call is the plain C library call a program makes.
//! `MIFSHIM_TEST_LOAD_DELAY_MS` (a test-only knob of the stub) makes the engine's load
//! take that much longer, so that calls, forks and signals land inside it.

use super::*;

/// Compiles `integration-tests/c/NAME.c` into `dir`; the executable's path.
fn build_c(dir: &TempDir, name: &str) -> String {
    let src = repo_root()
        .join("integration-tests/c")
        .join(format!("{name}.c"));
    let bin = dir.path().join(name).to_string_lossy().into_owned();
    Cmd::new(
        None,
        &strs(&[
            "gcc",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pthread",
            "-o",
            &bin,
            &s(src),
        ]),
    )
    .run()
    .assert_ok();
    bin
}

/// `mifrun --via wlan0 -- PROG ARGS…` in the testbed's host namespace.
fn via_wlan0(tb: &Testbed, prog: &str, args: &[&str]) -> Cmd {
    let mut a = vec![prog.to_string()];
    a.extend(args.iter().map(|x| x.to_string()));
    tb.cmd(&mifrun_args("wlan0", &a))
}

/// The `ms=T` of a `child:` line.
fn child_ms(out: &Out) -> u64 {
    out.stdout
        .lines()
        .find(|l| l.starts_with("child:"))
        .and_then(|l| l.rsplit("ms=").next())
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or_else(|| panic!("no child line:{}", out.dump()))
}

both!(
    /// A load slower than the waiters' patience (6 s here; a big policy file or a slow
    /// disk in real life): threads waiting for another thread's load gave up after
    /// ~0.4 s of `sched_yield` and failed their connect with ENETUNREACH. Now they sleep
    /// on the state word until the load is published: all 8 connect, by wlan0.
    eight_threads_waiting_for_a_slow_load_failed_with_enetunreach, |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("ld-threads");
        let bin = build_c(&dir, "loadprobe");
        let c = via_wlan0(&tb, &bin, &["threads", "8", fam.svc(), "9000"])
            .env("MIFSHIM_TEST_LOAD_DELAY_MS", "6000");
        let out = expect_via(&tb, c, "wlan0");
        assert_eq!(upstreams(&out.stdout).len(), 8, "{}", out.dump());
        assert!(out.stdout.contains("threads=8 failures=0"), "{}", out.dump());
    }
);

/// A child made by `_Fork` or `clone` (no atfork handler runs) while another thread of
/// the parent was loading the engine inherited the half-done load and spun, then
/// failed, in every steered call of its life. Now the hooks wait for the load before
/// making the child, which then connects by wlan0 like its parent.
fn child_during_load_is_steered(fam: Fam, kind: &str) {
    let tb = Testbed::up();
    let dir = TempDir::new("ld-child");
    let bin = build_c(&dir, "loadprobe");
    let c = via_wlan0(&tb, &bin, &["child", kind, fam.svc(), "9000"])
        .env("MIFSHIM_TEST_LOAD_DELAY_MS", "1000");
    let out = expect_via(&tb, c, "wlan0");
    assert!(out.stdout.contains("child status=0"), "{}", out.dump());
    assert_eq!(upstreams(&out.stdout).len(), 2, "{}", out.dump());
}

both!(
    underscore_fork_child_made_during_the_load_spun_and_failed,
    |fam| {
        child_during_load_is_steered(fam, "_Fork");
    }
);

both!(clone_child_made_during_the_load_spun_and_failed, |fam| {
    child_during_load_is_steered(fam, "clone");
});

/// A child made by a raw `clone` system call (no hook sees it) during the parent's load
/// cannot wait for it (the loading thread is not in the child) nor load afresh (the
/// half-done `dlopen` may hold the loader's lock there): its steered calls fail closed
/// at once, with one line saying why, instead of spinning in every call.
#[test]
fn raw_clone_child_made_during_the_load_spun_in_every_call() {
    let tb = Testbed::up();
    let dir = TempDir::new("ld-raw");
    let bin = build_c(&dir, "loadprobe");
    let c = via_wlan0(&tb, &bin, &["child", "rawfork", SVC4, "9000"])
        .env("MIFSHIM_TEST_LOAD_DELAY_MS", "1000");
    let sn = tb.sniff_all();
    let out = c.run();
    let counts = sn.stop();
    assert_only(&counts, "wlan0");
    assert!(
        out.stdout.contains("child: fail errno=101"),
        "{}",
        out.dump()
    );
    assert!(out.stdout.contains("child status=3"), "{}", out.dump());
    assert!(
        out.stderr
            .contains("created by a raw clone/fork system call while its parent was loading"),
        "{}",
        out.dump()
    );
    assert!(child_ms(&out) < 100, "the child waited:{}", out.dump());
    // The parent's own connect is steered.
    assert_eq!(upstreams(&out.stdout), ["wlan0"], "{}", out.dump());
}

both!(
    /// A signal handler that sends while its own thread is loading the engine (the
    /// handler installed past the preload, so that the load happens in the main
    /// thread's connect, with a 200 µs timer running): the handler waited for its own
    /// thread's load and gave up after ~0.4 s; with the timer due again at once the
    /// process never got back to the load (livelock, killed after 20 s). Now signals
    /// are blocked during the load and the handler's sends (to loopback) all succeed
    /// after it.
    timer_handler_sending_during_its_threads_load_livelocked, |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("ld-timer");
        let bin = build_c(&dir, "loadprobe");
        let c = via_wlan0(&tb, &bin, &["timer", fam.svc(), "9000"])
            .env("MIFSHIM_TEST_LOAD_DELAY_MS", "300");
        let out = expect_via(&tb, c, "wlan0");
        assert!(out.stdout.contains(" fail=0"), "{}", out.dump());
    }
);

both!(
    /// The first socket call made inside a signal handler loaded the engine there:
    /// `dlopen` and the engine's start-up allocate, and with the handler interrupting
    /// the program's `malloc` (a 1 kHz timer, the main thread allocating) the process
    /// died of heap corruption ("malloc(): unsorted double linked list corrupted") in
    /// about a third of the runs. Now the engine is loaded when the handler is
    /// installed. 16 runs, each must finish with every handler send done, by wlan0.
    first_socket_call_in_a_signal_handler_corrupted_the_heap, |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("ld-sigheap");
        let bin = build_c(&dir, "loadprobe");
        let sn = tb.sniff_all();
        let mut failed = Vec::new();
        let mut answered = Vec::new();
        for run in 0..16 {
            let out = via_wlan0(&tb, &bin, &["sigheap", fam.svc(), "9000", "100"]).run();
            if !out.ok() || !out.stdout.contains(" fail=0") {
                failed.push(format!("run {run}:{}", out.dump()));
            }
            answered.extend(upstreams(&out.stdout));
        }
        let counts = sn.stop();
        assert!(failed.is_empty(), "{} of 16 runs failed:\n{}", failed.len(), failed.join("\n"));
        assert!(answered.len() == 16 && answered.iter().all(|u| u == "wlan0"), "{answered:?}");
        assert_only(&counts, "wlan0");
    }
);

/// Where the engine is loaded: when a steered process installs a signal handler (by
/// every exported way glibc offers) or makes an INET socket, and not for a process
/// that does neither (most processes below `mifrun`: shells' children, `sed`), nor
/// for `SIG_IGN`, `SIG_DFL`, `SIG_HOLD` or a Unix socket.
#[test]
fn engine_loads_at_handler_install_or_inet_socket_only() {
    let dir = TempDir::new("ld-where");
    let bin = build_c(&dir, "loadprobe");
    let cases = [
        ("none", "absent"),
        ("sigaction-ign", "absent"),
        ("sigaction-dfl", "absent"),
        ("sigset-hold", "absent"),
        ("socket-unix", "absent"),
        ("sigaction-handler", "loaded"),
        ("signal-handler", "loaded"),
        ("bsd_signal-handler", "loaded"),
        ("sysv_signal-handler", "loaded"),
        ("sigset-handler", "loaded"),
        ("socket-inet", "loaded"),
        ("socket-inet6", "loaded"),
    ];
    let mut wrong = Vec::new();
    for (action, want) in cases {
        let out = Cmd::new(None, &strs(&[&bin, "engine-after", action]))
            .env("LD_PRELOAD", s(shim_lib()))
            .env("MIFSHIM_VIA", "wlan0")
            .run();
        out.assert_ok();
        if !out.stdout.contains(&format!("engine={want}")) {
            wrong.push(format!("{action}: expected {want}:{}", out.dump()));
        }
        // Not steered: nothing is ever loaded.
        let inert = Cmd::new(None, &strs(&[&bin, "engine-after", action]))
            .env("LD_PRELOAD", s(shim_lib()))
            .run();
        if !inert.stdout.contains("engine=absent") {
            wrong.push(format!("{action} (inert):{}", inert.dump()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The deadlock test: six threads hammer connect, sendto and getaddrinfo while the
/// main thread forks 300 times (8 children at a time), each child making one steered
/// connect or sendto with a 10 s alarm (a child that deadlocks dies of it) and exiting
/// with whether wlan0's upstream answered. `when`: "before" (the forks start at once,
/// racing the threads to load the engine, made slow: 300 ms) or "after" (the main
/// thread connects first). Bounded by the harness timeout; every child must exit 0,
/// every thread call succeed with wlan0's answer (getaddrinfo: wlan0's dnsmasq's
/// `who.mif.test`), and nothing leave by eth0 or wwan0.
fn fork_storm(fam: Fam, when: &str) {
    let tb = Testbed::up();
    let dir = TempDir::new("ld-storm");
    let bin = build_c(&dir, "forkstorm");
    let who = if fam.v6() {
        "2001:db8:ee::2"
    } else {
        "192.0.2.2"
    };
    let mut c = via_wlan0(
        &tb,
        &bin,
        &[when, "300", fam.svc(), "9000", "who.mif.test", "wlan0", who],
    )
    .timeout(Duration::from_secs(120));
    if when == "before" {
        c = c.env("MIFSHIM_TEST_LOAD_DELAY_MS", "300");
    }
    let out = expect_via(&tb, c, "wlan0");
    assert!(
        out.stdout
            .contains("children forks=300 ok=300 bad=0 signaled=0 fork_failed=0"),
        "{}",
        out.dump()
    );
    assert!(out.stdout.contains("forkstorm ok"), "{}", out.dump());
}

both!(fork_storm_with_threads_before_the_engine_loads, |fam| {
    fork_storm(fam, "before");
});

both!(fork_storm_with_threads_after_the_engine_loaded, |fam| {
    fork_storm(fam, "after");
});

/// `python3`, preloaded with the stub at `stub`, steered (`MIFSHIM_VIA`), connects a TCP
/// socket to 127.0.0.1:9 (loopback only: the engine exempts it; a stub without a usable
/// engine fails it closed before any packet) and prints the errno.
fn loopback_connect_errno(stub: &str) -> (i32, Out) {
    let out = Cmd::new(
        None,
        &strs(&[
            "python3",
            "-c",
            "import socket; s = socket.socket(); print(s.connect_ex(('127.0.0.1', 9)))",
        ]),
    )
    .env("LD_PRELOAD", stub)
    .env("MIFSHIM_VIA", "lo")
    .run();
    out.assert_ok();
    let errno = out
        .stdout
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no errno:{}", out.dump()));
    (errno, out)
}

/// The stub and the engine were bound by name (one `dlsym` per hooked call) and called
/// through `transmute`d pointers: an engine of another build whose entry points had other
/// signatures would have been called with the wrong arguments. Now the engine exports
/// one versioned `#[repr(C)]` interface generated from the one list of hooked calls
/// (`mifshim_abi::Engine`), and a stub refuses an engine whose version or size is not its
/// own: steered calls fail closed (`ENETUNREACH`) after one line, as with no engine.
#[test]
fn engine_of_another_interface_version_fails_closed() {
    let dir = TempDir::new("abi");
    let stub = dir.path().join("libmifshim.so");
    std::fs::copy(shim_lib(), &stub).expect("copy the stub");
    let engine = dir.path().join("libmifshim_engine.so");
    // The control: this build's engine beside the copy, loopback exempt.
    std::fs::copy(shim_lib().with_file_name("libmifshim_engine.so"), &engine)
        .expect("copy the engine");
    let (e, out) = loopback_connect_errno(&s(stub.clone()));
    assert_eq!(e, libc::ECONNREFUSED, "this build's engine:{}", out.dump());
    // Engines of other builds: another version; this version with another size.
    for (version, size) in [(999u32, 0u32), (1, 16)] {
        let src = dir.write(
            "fake.c",
            &format!(
                "#include <stdint.h>\n\
                 struct {{ uint32_t version, size; void *rest[64]; }} mifshim_engine = {{ {version}, {size} }};\n"
            ),
        );
        let _ = std::fs::remove_file(&engine);
        Cmd::new(
            None,
            &strs(&["gcc", "-shared", "-fPIC", "-o", &s(engine.clone()), &src]),
        )
        .run()
        .assert_ok();
        let (e, out) = loopback_connect_errno(&s(stub.clone()));
        assert_eq!(
            e,
            libc::ENETUNREACH,
            "engine version {version} size {size}:{}",
            out.dump()
        );
        assert!(
            out.stderr
                .contains("is not a mifshim engine of this version; failing closed"),
            "engine version {version} size {size}:{}",
            out.dump()
        );
    }
}
