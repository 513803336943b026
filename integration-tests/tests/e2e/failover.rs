use super::*;

both!(ordered_list_prefers_first, |fam| {
    let tb = Testbed::up();
    curl_via(&tb, fam, "wlan0,wwan0", "wlan0");
});

both!(first_link_down_uses_second, |fam| {
    let tb = Testbed::up();
    tb.link_down("wlan0");
    curl_via(&tb, fam, "wlan0,wwan0", "wwan0");
});

both!(
    /// A socket streaming datagrams to one destination (so its unicast interface is
    /// set and later datagrams take the hot path) follows a failover within about a
    /// second of wlan0 going down: answers move from wlan0 to wwan0 and nothing ever
    /// leaves by eth0.
    hot_datagram_stream_fails_over_when_link_goes_down, |fam| {
        let tb = Testbed::up();
        let a = probe_args(&["udp-stream", fam.svc(), "9001", "40"]);
        let sn = tb.sniff(&["eth0"]);
        let mut bg = tb.cmd(&mifrun_args("wlan0,wwan0", &a)).spawn();
        bg.wait_for_stdout("n=8 ", Duration::from_secs(10));
        tb.link_down("wlan0");
        let out = bg.wait(Duration::from_secs(20));
        let counts = sn.stop();
        out.assert_ok();
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines.len(), 40, "{}", out.dump());
        assert!(lines[..8].iter().all(|l| l.contains("upstream=wlan0")), "{}", out.dump());
        // Within about a second (the snapshot's age) the stream moves to wwan0.
        assert!(lines[25..].iter().all(|l| l.contains("upstream=wwan0")), "{}", out.dump());
        assert!(!out.stdout.contains("upstream=eth0"), "{}", out.dump());
        assert_none_on(&counts, &["eth0"]);
    }
);

both!(first_link_deleted_uses_second, |fam| {
    let tb = Testbed::up();
    tb.link_del("wlan0");
    let sn = tb.sniff(&["eth0", "wwan0"]);
    let out = tb
        .cmd(&curl(&fam.url(80)))
        .env("LD_PRELOAD", s(shim_lib()))
        .env("MIFSHIM_VIA", "wlan0,wwan0")
        .run();
    let counts = sn.stop();
    out.assert_answered_by("wwan0");
    assert_only(&counts, "wwan0");
});

both!(
    /// `--via wlan0` with wlan0 down must fail, not fall back to the default route.
    fail_closed_when_link_down, |fam| {
        let tb = Testbed::up();
        tb.link_down("wlan0");
        let sn = tb.sniff_all();
        let out = tb.cmd(&mifrun_args("wlan0", &curl(&fam.url(80)))).run();
        // The errno comes from the shim itself (plain LD_PRELOAD, so a mifrun
        // pre-flight refusal cannot mask it).
        let pr = tb
            .cmd(&probe_args(&["getsockopt-dev", fam.svc(), "9000"]))
            .env("LD_PRELOAD", s(shim_lib()))
            .env("MIFSHIM_VIA", "wlan0")
            .run();
        let counts = sn.stop();
        assert!(!out.ok(), "curl must fail:{}", out.dump());
        assert!(upstreams(&out.stdout).is_empty(), "{}", out.dump());
        pr.assert_code(1);
        assert!(pr.stdout.contains("errno=ENETUNREACH"), "{}", pr.dump());
        assert_silent(&counts);
    }
);

both!(fail_closed_when_interface_missing, |fam| {
    let tb = Testbed::up();
    let sn = tb.sniff_all();
    let out = tb
        .cmd(&curl(&fam.url(80)))
        .env("LD_PRELOAD", s(shim_lib()))
        .env("MIFSHIM_VIA", "nosuch0")
        .run();
    let counts = sn.stop();
    assert!(!out.ok(), "curl must fail:{}", out.dump());
    assert_silent(&counts);
});

#[test]
fn mifrun_refuses_missing_interface_unless_allowed() {
    let tb = Testbed::up();
    let out = tb.run(&mifrun_args("nosuch0", &strs(&["true"])));
    out.assert_code(2);
    assert!(out.stderr.contains("nosuch0"), "{}", out.dump());
    let sn = tb.sniff_all();
    let allowed = tb.run(&[
        s(mifrun()),
        "--via".into(),
        "nosuch0".into(),
        "--allow-missing".into(),
        "--".into(),
        "curl".into(),
        "-sS".into(),
        "--max-time".into(),
        "5".into(),
        Fam::V4.url(80),
    ]);
    let counts = sn.stop();
    assert!(!allowed.ok(), "must fail closed:{}", allowed.dump());
    assert_ne!(
        allowed.code(),
        2,
        "--allow-missing must run the program:{}",
        allowed.dump()
    );
    assert_silent(&counts);
}

both!(on_unavailable_direct_uses_default_route, |fam| {
    let tb = Testbed::up();
    let dir = TempDir::new("unavail");
    tb.link_down("wlan0");
    let p = dir.write(
        "policy.toml",
        "via = [\"wlan0\"]\non_unavailable = \"direct\"\n",
    );
    expect_via(
        &tb,
        tb.cmd(&mifrun_policy_args(&p, &curl(&fam.url(80)))),
        "eth0",
    );
});

both!(
    /// §4.2 / §0.3: without a route via wlan0 a device-bound socket cannot work; the
    /// flow must fail (or mifrun must refuse with a route hint) and nothing may leak.
    no_route_via_wlan0_leaks_if_not_fail_closed, |fam| {
        let tb = Testbed::up();
        tb.run(&strs(&["ip", "route", "del", "default", "dev", "wlan0"])).assert_ok();
        tb.run(&strs(&["ip", "-6", "route", "del", "default", "dev", "wlan0"])).assert_ok();
        let sn = tb.sniff_all();
        let out = tb.cmd(&mifrun_args("wlan0", &curl(&fam.url(80)))).run();
        let counts = sn.stop();
        assert!(!out.ok(), "must fail without a route via wlan0:{}", out.dump());
        assert!(upstreams(&out.stdout).is_empty(), "{}", out.dump());
        if out.code() == 2 {
            assert!(out.stderr.contains("route"), "refusal should name the missing route:{}", out.dump());
        }
        assert_silent(&counts);
    }
);
