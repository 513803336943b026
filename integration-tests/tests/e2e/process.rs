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
