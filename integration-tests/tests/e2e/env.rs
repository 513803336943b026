use super::*;

both!(plain_ld_preload_with_via, |fam| {
    let tb = Testbed::up();
    let c = tb
        .cmd(&curl(&fam.url(80)))
        .env("LD_PRELOAD", s(shim_lib()))
        .env("MIFSHIM_VIA", "wlan0");
    expect_via(&tb, c, "wlan0");
});

both!(plain_ld_preload_with_policy, |fam| {
    let tb = Testbed::up();
    let dir = TempDir::new("env-pol");
    let p = dir.write("policy.toml", "via = [\"wwan0\"]\n");
    let c = tb
        .cmd(&curl(&fam.url(80)))
        .env("LD_PRELOAD", s(shim_lib()))
        .env("MIFSHIM_POLICY", &p);
    expect_via(&tb, c, "wwan0");
});

/// A tiny preload library whose constructor prints `marker-loaded`.
fn build_marker(dir: &TempDir) -> String {
    let src = dir.write(
        "marker.c",
        "#include <unistd.h>\n\
         __attribute__((constructor)) static void marker(void) {\n\
         static const char m[] = \"marker-loaded\\n\";\n\
         (void)!write(2, m, sizeof m - 1);\n}\n",
    );
    let so = dir.path().join("marker.so").to_string_lossy().into_owned();
    Cmd::new(None, &strs(&["gcc", "-shared", "-fPIC", "-o", &so, &src]))
        .run()
        .assert_ok();
    so
}

both!(existing_ld_preload_is_kept, |fam| {
    let tb = Testbed::up();
    let dir = TempDir::new("marker");
    let so = build_marker(&dir);
    let c = tb
        .cmd(&mifrun_args("wlan0", &curl(&fam.url(80))))
        .env("LD_PRELOAD", &so);
    let out = expect_via(&tb, c, "wlan0");
    assert!(out.stderr.contains("marker-loaded"), "{}", out.dump());
});

both!(log_info_names_the_interface, |fam| {
    let tb = Testbed::up();
    let out = tb
        .cmd(&mifrun_args("wlan0", &curl(&fam.url(80))))
        .env("MIFSHIM_LOG", "info")
        .run();
    out.assert_answered_by("wlan0");
    assert!(
        out.stderr
            .lines()
            .any(|l| l.contains("mifshim[") && l.contains("-> wlan0")),
        "expected a `-> wlan0` log line:{}",
        out.dump()
    );
});

both!(default_log_level_is_silent, |fam| {
    let tb = Testbed::up();
    let out = tb.cmd(&mifrun_args("wlan0", &curl(&fam.url(80)))).run();
    out.assert_answered_by("wlan0");
    assert!(
        !out.stderr.contains("mifshim"),
        "shim printed at default level:{}",
        out.dump()
    );
});

both!(
    /// The documented kill switch: MIFSHIM_DISABLE=1 leaves the program unsteered.
    disable_switch_ignored, |fam| {
        let tb = Testbed::up();
        let c = tb
            .cmd(&curl(&fam.url(80)))
            .env("LD_PRELOAD", s(shim_lib()))
            .env("MIFSHIM_VIA", "wlan0")
            .env("MIFSHIM_DISABLE", "1");
        expect_via(&tb, c, "eth0");
    }
);

both!(
    /// `--log info --log-file F`: the log goes to F, not to the program's stderr.
    log_file_output_lands_on_stderr, |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("logfile");
        let log = dir.path().join("shim.log").to_string_lossy().into_owned();
        let mut a = vec![s(mifrun()), "--via".into(), "wlan0".into(), "--log".into(), "info".into()];
        a.extend(strs(&["--log-file", &log, "--"]));
        a.extend(curl(&fam.url(80)));
        let out = expect_via(&tb, tb.cmd(&a), "wlan0");
        assert!(!out.stderr.contains("mifshim"), "log leaked to stderr:{}", out.dump());
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(text.lines().any(|l| l.contains("-> wlan0")), "log file {log}:\n{text}{}", out.dump());
    }
);
