use super::*;

/// `testbed.sh down` is idempotent and removes exactly the testbed's namespaces.
#[test]
fn down_is_idempotent() {
    let tb = Testbed::up();
    let script = s(repo_root().join("scripts/testbed.sh"));
    let ns = tb.host_ns();
    assert!(std::path::Path::new(&format!("/run/netns/{ns}")).exists());
    for _ in 0..2 {
        Cmd::new(None, &[script.as_str(), "down", tb.prefix()])
            .run()
            .assert_ok();
    }
    for n in [
        tb.host_ns(),
        tb.upstream_ns("eth0"),
        tb.upstream_ns("wlan0"),
        tb.upstream_ns("wwan0"),
    ] {
        assert!(
            !std::path::Path::new(&format!("/run/netns/{n}")).exists(),
            "{n} left behind"
        );
    }
}

/// Upstreams must not answer ARP for addresses on other interfaces (pitfalls §7), or a
/// device-bound socket without a route would get a false positive.
#[test]
fn upstreams_set_arp_ignore() {
    let tb = Testbed::up();
    for u in UPLINKS {
        let out = tb
            .cmd_upstream(
                u,
                &[
                    "sysctl",
                    "-n",
                    "net.ipv4.conf.all.arp_ignore",
                    "net.ipv4.conf.up.arp_ignore",
                ],
            )
            .run();
        out.assert_ok();
        assert_eq!(
            out.stdout.split_whitespace().collect::<Vec<_>>(),
            ["1", "1"],
            "{}",
            out.dump()
        );
    }
}
