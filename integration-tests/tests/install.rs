//! `scripts/install.sh` (issue 14, installing like a real tool): installed into a scratch
//! staging root (`DESTDIR`, `PREFIX=/usr`), the installed mifrun finds its libraries
//! and steers a real request by wlan0; the example policy it installs is valid.

use integration_tests::*;

#[test]
fn installed_tree_steers_a_request_and_its_example_policy_checks() {
    let tb = Testbed::up();
    let dest = TempDir::new("install");
    let from = mifrun().parent().unwrap().to_string_lossy().into_owned();
    let script = repo_root().join("scripts/install.sh");
    Cmd::new(None, &[script.to_string_lossy().as_ref(), "--from", &from])
        .env("DESTDIR", dest.path().to_string_lossy())
        .env("PREFIX", "/usr")
        .run()
        .assert_ok();
    let root = dest.path().join("usr");
    for f in [
        "bin/mifrun",
        "lib/mifshim/libmifshim.so",
        "lib/mifshim/libmifshim_engine.so",
        "share/doc/mifshim/README.md",
        "share/doc/mifshim/policy.example.toml",
    ] {
        assert!(root.join(f).is_file(), "{f} was not installed");
    }
    let mifrun = root.join("bin/mifrun").to_string_lossy().into_owned();
    let out = expect_via(
        &tb,
        tb.cmd(&[
            mifrun.as_str(),
            "--via",
            "wlan0",
            "--",
            "curl",
            "-s",
            "-m",
            "5",
            "http://203.0.113.10/",
        ]),
        "wlan0",
    );
    out.assert_ok();
    // The example policy names interfaces the testbed lacks: --allow-missing.
    let policy = root.join("share/doc/mifshim/policy.example.toml");
    let out = tb
        .cmd(&[
            mifrun.as_str(),
            "--policy",
            &policy.to_string_lossy(),
            "--allow-missing",
            "--check",
        ])
        .run();
    out.assert_ok();
}
