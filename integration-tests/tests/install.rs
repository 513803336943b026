//! `scripts/install.sh` (issue 14, installing like a real tool): installed into a scratch
//! staging root (`DESTDIR`, `PREFIX=/usr`), the installed mifrun finds its libraries
//! and steers a real request by wlan0; the example policy it installs is valid and
//! points its `#:schema` line at the installed schema; the manual pages and
//! completions are where man and the shells look, and are what the installed mifrun
//! generates.

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
        "share/doc/mifshim/examples/policy.toml",
        "share/doc/mifshim/examples/mifshim-app.service",
        "share/doc/mifshim/examples/mifrun.conf",
        "share/mifshim/policy.schema.json",
        "share/man/man1/mifrun.1",
        "share/man/man1/mifrun-status.1",
        "share/man/man1/mifrun-explain.1",
        "share/man/man1/mifrun-doctor.1",
        "share/man/man1/mifrun-schema.1",
        "share/man/man1/mifrun-source-rules.1",
        "share/man/man1/mifrun-completions.1",
        "share/man/man5/mifshim-policy.5",
        "share/bash-completion/completions/mifrun",
        "share/zsh/vendor-completions/_mifrun",
        "share/fish/vendor_completions.d/mifrun.fish",
    ] {
        assert!(root.join(f).is_file(), "{f} was not installed");
    }
    let read = |f: &str| std::fs::read_to_string(root.join(f)).unwrap();
    let installed = root.join("bin/mifrun").to_string_lossy().into_owned();
    let generate = |args: &[&str]| {
        let mut argv = vec![installed.as_str()];
        argv.extend_from_slice(args);
        let out = Cmd::new(None, &argv).run();
        out.assert_ok();
        out.stdout
    };
    assert_eq!(
        read("share/bash-completion/completions/mifrun"),
        generate(&["completions", "bash"])
    );
    assert_eq!(
        read("share/zsh/vendor-completions/_mifrun"),
        generate(&["completions", "zsh"])
    );
    assert_eq!(
        read("share/fish/vendor_completions.d/mifrun.fish"),
        generate(&["completions", "fish"])
    );
    assert_eq!(
        read("share/mifshim/policy.schema.json"),
        generate(&["schema"])
    );
    let pages = TempDir::new("pages");
    generate(&["manpages", &pages.path().to_string_lossy()]);
    for f in [
        "man1/mifrun.1",
        "man1/mifrun-explain.1",
        "man5/mifshim-policy.5",
    ] {
        assert_eq!(
            read(&format!("share/man/{f}")),
            std::fs::read_to_string(pages.path().join(f)).unwrap(),
            "{f}"
        );
    }
    let example = read("share/doc/mifshim/examples/policy.toml");
    assert_eq!(
        example.lines().next(),
        Some("#:schema file:///usr/share/mifshim/policy.schema.json")
    );
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
    let policy = root.join("share/doc/mifshim/examples/policy.toml");
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
