use super::*;

fn run_policy(tb: &Testbed, dir: &TempDir, toml: &str, prog: &[String]) -> Cmd {
    let p = dir.write("policy.toml", toml);
    tb.cmd(&mifrun_policy_args(&p, prog))
}

/// `curl url` under the policy `toml`, answered by `uplink` only.
fn curl_policy(tb: &Testbed, dir: &TempDir, toml: &str, url: String, uplink: &str) -> Out {
    expect_via(tb, run_policy(tb, dir, toml, &curl(&url)), uplink)
}

both!(rule_by_destination, |fam| {
    let tb = Testbed::up();
    let dir = TempDir::new("pol-to");
    let toml = format!(
        "via = [\"wlan0\"]\n\n[[rules]]\nto = [\"{}\"]\nvia = [\"wwan0\"]\n",
        fam.svc_cidr()
    );
    curl_policy(&tb, &dir, &toml, fam.url(80), "wwan0");
});

both!(rule_by_port, |fam| {
    let tb = Testbed::up();
    let dir = TempDir::new("pol-port");
    let toml = "via = [\"wlan0\"]\n\n[[rules]]\nports = [\"8080\"]\nvia = [\"wwan0\"]\n";
    curl_policy(&tb, &dir, toml, fam.url(8080), "wwan0");
    curl_policy(&tb, &dir, toml, fam.url(80), "wlan0");
});

both!(rule_by_protocol, |fam| {
    let tb = Testbed::up();
    let dir = TempDir::new("pol-proto");
    let toml = "via = [\"wlan0\"]\n\n[[rules]]\nprotocol = \"udp\"\nvia = [\"wwan0\"]\n";
    let udp = probe_args(&["udp-sendto", fam.svc(), "9000"]);
    expect_via(&tb, run_policy(&tb, &dir, toml, &udp), "wwan0");
    curl_policy(&tb, &dir, toml, fam.url(80), "wlan0");
});

both!(rule_direct_uses_default_route, |fam| {
    let tb = Testbed::up();
    let dir = TempDir::new("pol-direct");
    let toml = format!(
        "via = [\"wlan0\"]\n\n[[rules]]\nto = [\"{}\"]\naction = \"direct\"\n",
        fam.svc_cidr()
    );
    curl_policy(&tb, &dir, &toml, fam.url(80), "eth0");
});

both!(rule_block_sends_nothing, |fam| {
    let tb = Testbed::up();
    let dir = TempDir::new("pol-block");
    let toml = format!(
        "via = [\"wlan0\"]\n\n[[rules]]\nto = [\"{}\"]\naction = \"block\"\n",
        fam.svc_cidr()
    );
    let sn = tb.sniff_all();
    let out = run_policy(&tb, &dir, &toml, &curl(&fam.url(80))).run();
    let counts = sn.stop();
    out.assert_code(7);
    assert_silent(&counts);
});

both!(per_program_section, |fam| {
    let tb = Testbed::up();
    let dir = TempDir::new("pol-prog");
    let toml = "via = [\"wlan0\"]\n\n[programs.curl]\nvia = [\"wwan0\"]\n";
    curl_policy(&tb, &dir, toml, fam.url(80), "wwan0");
    let code = "import sys, urllib.request; \
                print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode(), end='')";
    let py = strs(&["python3", "-c", code, &fam.url(80)]);
    expect_via(&tb, run_policy(&tb, &dir, toml, &py), "wlan0");
});

both!(
    /// A UDP-only block rule must stop datagrams before they leave, without touching TCP.
    udp_block_rule_leaks_datagrams, |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("udp-block");
        let toml = format!(
            "via = [\"wlan0\"]\n\n[[rules]]\nto = [\"{}\"]\nprotocol = \"udp\"\naction = \"block\"\n",
            fam.svc_cidr()
        );
        let p = dir.write("policy.toml", &toml);
        let sn = tb.sniff_all();
        let out = tb.cmd(&mifrun_policy_args(&p, &probe_args(&["udp-sendto", fam.svc(), "9000"]))).run();
        let counts = sn.stop();
        out.assert_code(1);
        assert!(out.stdout.contains("errno="), "{}", out.dump());
        assert_silent(&counts);
        expect_via(&tb, tb.cmd(&mifrun_policy_args(&p, &curl(&fam.url(80)))), "wlan0");
    }
);
