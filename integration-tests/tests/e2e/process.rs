use super::*;

both!(exec_through_sh, |fam| {
    let tb = Testbed::up();
    let a = strs(&[
        "sh",
        "-c",
        &format!("curl -sS --max-time 5 {}", fam.url(80)),
    ]);
    expect_via(&tb, tb.cmd(&mifrun_args("wlan0", &a)), "wlan0");
});

both!(probe_fork_child, |fam| {
    let tb = Testbed::up();
    let a = probe_args(&["fork", fam.svc(), "9000"]);
    let out = expect_via(&tb, tb.cmd(&mifrun_args("wlan0", &a)), "wlan0");
    assert!(out.stdout.contains("child:"), "{}", out.dump());
});

both!(python_subprocess_child, |fam| {
    let tb = Testbed::up();
    let code = "import subprocess, sys; \
                subprocess.run(['curl', '-sS', '--max-time', '5', sys.argv[1]], check=True)";
    let a = strs(&["python3", "-c", code, &fam.url(80)]);
    expect_via(&tb, tb.cmd(&mifrun_args("wlan0", &a)), "wlan0");
});

both!(threads_16x50_all_via_wlan0, |fam| {
    let tb = Testbed::up();
    let a = probe_args(&["threads", "16", "50", fam.svc(), "9000"]);
    let out = expect_via(
        &tb,
        tb.cmd(&mifrun_args("wlan0", &a))
            .timeout(Duration::from_secs(90)),
        "wlan0",
    );
    assert!(
        out.stdout.contains("upstream=wlan0 count=800"),
        "{}",
        out.dump()
    );
});

/// `mifrun --via wlan0 -- rustc bad.rs`, a file with a type error: rustc reports its
/// errors by unwinding (its `FatalError`), and its `librustc_driver` takes
/// `rust_eh_personality` from the dynamic symbol table, where the preloaded stub's
/// exported, empty one came first — rustc died with "fatal runtime error: failed to
/// initiate panic, error 3" (SIGABRT) instead of printing the error and exiting 1. So
/// does any Rust program linked with `-C prefer-dynamic` that unwinds. The stub must
/// export no personality routine; rustc must report the error (exit 1).
#[test]
fn preloaded_stubs_personality_routine_aborted_rustc_on_a_compile_error() {
    let tb = Testbed::up();
    let dir = TempDir::new("rustc");
    let src = dir.write("bad.rs", "fn main() { let _x: u32 = \"a\"; }\n");
    let out_bin = dir.path().join("bad").to_string_lossy().into_owned();
    // The toolchain's own rustc (not rustup's proxy), by absolute path.
    let sysroot = std::process::Command::new(std::env::var("RUSTC").unwrap_or("rustc".into()))
        .args(["--print", "sysroot"])
        .output()
        .expect("rustc --print sysroot");
    let rustc = format!(
        "{}/bin/rustc",
        String::from_utf8_lossy(&sysroot.stdout).trim()
    );
    for mifrun in [
        s(mifrun()),
        s(profile_dir().parent().unwrap().join("release/mifrun")),
    ] {
        let argv = [
            mifrun.as_str(),
            "--via",
            "wlan0",
            "--",
            &rustc,
            &src,
            "-o",
            &out_bin,
        ];
        let out = tb.cmd(&argv).timeout(Duration::from_secs(120)).run();
        assert!(
            out.stderr.contains("error[E0308]"),
            "{mifrun}:{}",
            out.dump()
        );
        assert!(
            !out.stderr.contains("failed to initiate panic"),
            "{mifrun}:{}",
            out.dump()
        );
        out.assert_code(1);
    }
}
