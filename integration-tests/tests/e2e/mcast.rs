use super::*;

both!(send_without_interface_goes_via_wlan0, |fam| {
    let tb = Testbed::up();
    let group = if fam.v6() { "ff05::1:3" } else { "239.1.2.3" };
    let sn = tb.sniff_all();
    let out = tb
        .cmd(&mifrun_args(
            "wlan0",
            &probe_args(&["mcast-send", group, "9999"]),
        ))
        .run();
    let counts = sn.stop();
    out.assert_ok();
    assert_only(&counts, "wlan0");
    assert!(counts["wlan0"].udp > 0, "{counts:#?}");
});

/// Groups joined with "any interface" per device, from /proc/net/igmp{,6} of the host ns.
fn joined_devices(tb: &Testbed, fam: Fam) -> Vec<String> {
    let mut devs = Vec::new();
    if fam.v6() {
        let out = tb.run(&strs(&["cat", "/proc/net/igmp6"]));
        out.assert_ok();
        for l in out.stdout.lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() >= 3 && f[2] == "ff050000000000000000000000010003" {
                devs.push(f[1].to_string());
            }
        }
    } else {
        let out = tb.run(&strs(&["cat", "/proc/net/igmp"]));
        out.assert_ok();
        let mut dev = String::new();
        for l in out.stdout.lines() {
            if !l.starts_with('\t') && !l.starts_with(' ') {
                // "Idx\tDevice    : Count Querier" or "2\teth0      :     1      V3"
                if let Some(d) = l.split_whitespace().nth(1) {
                    dev = d.trim_end_matches(':').to_string();
                }
            } else if l.split_whitespace().next() == Some("030201EF") {
                devs.push(dev.clone());
            }
        }
    }
    devs
}

both!(join_any_interface_lands_on_wlan0, |fam| {
    let tb = Testbed::up();
    let group = if fam.v6() { "ff05::1:3" } else { "239.1.2.3" };
    let bg = tb
        .cmd(&mifrun_args(
            "wlan0",
            &probe_args(&["mcast-join", group, "3"]),
        ))
        .spawn();
    std::thread::sleep(Duration::from_millis(1200));
    let devs = joined_devices(&tb, fam);
    let out = bg.wait(Duration::from_secs(10));
    out.assert_ok();
    assert_eq!(
        devs,
        vec!["wlan0".to_string()],
        "group {group} joined on {devs:?}:{}",
        out.dump()
    );
});
