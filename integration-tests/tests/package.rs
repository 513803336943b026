//! The Debian package (`scripts/deb.sh`, issue 14): built from the artifacts under
//! test, its control fields and contents checked, lintian run on it, installed with
//! `dpkg --root` into a scratch root with a dpkg database of its own, a steered
//! request run from the installed /usr/bin/mifrun (egress proven on the testbed), then
//! removed: dpkg's database says not installed and no file of the package is left.

use integration_tests::*;
use std::path::Path;
use std::time::Duration;

/// A tool the test needs: a missing one is a failure (scripts/test.sh installs it).
fn need(tool: &str) {
    let ok = ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
        .iter()
        .any(|d| Path::new(d).join(tool).is_file());
    assert!(
        ok,
        "`{tool}` is not installed (scripts/test.sh installs it as root)"
    );
}

fn run(argv: &[&str]) -> Out {
    let out = Cmd::new(None, argv).timeout(Duration::from_secs(300)).run();
    out.assert_ok();
    out
}

/// Files (not directories) under `root`, relative, outside `var/`.
fn files_outside_var(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if rel == "var" {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn debian_package_installs_into_a_scratch_root_steers_and_removes_cleanly() {
    for t in ["dpkg-deb", "dpkg-shlibdeps", "dpkg", "lintian", "man"] {
        need(t);
    }
    let tb = Testbed::up();
    let work = TempDir::new("deb");
    let from = mifrun().parent().unwrap().to_string_lossy().into_owned();
    let out_dir = work.path().join("out").to_string_lossy().into_owned();
    let script = repo_root().join("scripts/deb.sh");
    let built = run(&[
        &script.to_string_lossy(),
        "--from",
        &from,
        "--out",
        &out_dir,
    ]);
    let deb = built.stdout.trim().lines().last().unwrap().to_owned();
    let arch = run(&["dpkg", "--print-architecture"])
        .stdout
        .trim()
        .to_owned();
    assert!(
        deb.ends_with(&format!(
            "/mifshim_{}_{arch}.deb",
            env!("CARGO_PKG_VERSION")
        )),
        "{deb}"
    );

    // Control fields: Depends from dpkg-shlibdeps (libc6 with a version).
    let field = |f: &str| run(&["dpkg-deb", "-f", &deb, f]).stdout.trim().to_owned();
    assert_eq!(field("Package"), "mifshim");
    assert_eq!(field("Version"), env!("CARGO_PKG_VERSION"));
    assert_eq!(field("Architecture"), arch);
    let depends = field("Depends");
    assert!(depends.contains("libc6 (>= "), "Depends: {depends}");

    // Contents: everything in its place, owned by root, nothing in /etc.
    let listing = run(&["dpkg-deb", "-c", &deb]).stdout;
    let mut paths = Vec::new();
    for line in listing.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[1], "root/root", "{line}");
        let path = cols[5].trim_start_matches('.');
        if cols[0].starts_with('-') {
            let mode = cols[0];
            let exec = path == "/usr/bin/mifrun";
            assert_eq!(
                mode,
                if exec { "-rwxr-xr-x" } else { "-rw-r--r--" },
                "{line}"
            );
        }
        paths.push(path.to_owned());
    }
    for want in [
        "/usr/bin/mifrun",
        "/usr/lib/mifshim/libmifshim.so",
        "/usr/lib/mifshim/libmifshim_engine.so",
        "/usr/share/man/man1/mifrun.1.gz",
        "/usr/share/man/man1/mifrun-status.1.gz",
        "/usr/share/man/man1/mifrun-explain.1.gz",
        "/usr/share/man/man1/mifrun-doctor.1.gz",
        "/usr/share/man/man1/mifrun-schema.1.gz",
        "/usr/share/man/man1/mifrun-source-rules.1.gz",
        "/usr/share/man/man1/mifrun-completions.1.gz",
        "/usr/share/man/man5/mifshim-policy.5.gz",
        "/usr/share/bash-completion/completions/mifrun",
        "/usr/share/zsh/vendor-completions/_mifrun",
        "/usr/share/fish/vendor_completions.d/mifrun.fish",
        "/usr/share/mifshim/policy.schema.json",
        "/usr/share/doc/mifshim/copyright",
        "/usr/share/doc/mifshim/changelog.gz",
        "/usr/share/doc/mifshim/README.md",
        "/usr/share/doc/mifshim/examples/policy.toml",
        "/usr/share/doc/mifshim/examples/mifshim-app.service",
        "/usr/share/doc/mifshim/examples/mifrun.conf",
    ] {
        assert!(
            paths.iter().any(|p| p == want),
            "{want} not in the package:\n{listing}"
        );
    }
    assert!(!paths.iter().any(|p| p.starts_with("/etc")), "{listing}");

    // lintian: no error and no warning (what it still says at info level, and why,
    // is in the README's "Debian package").
    let lint = Cmd::new(
        None,
        &[
            "lintian",
            "--fail-on",
            "error,warning",
            "--tag-display-limit",
            "0",
            &deb,
        ],
    )
    .timeout(Duration::from_secs(300))
    .run();
    assert!(lint.ok(), "lintian:{}", lint.dump());
    assert!(
        !lint
            .stdout
            .lines()
            .any(|l| l.starts_with("E: ") || l.starts_with("W: ")),
        "lintian:{}",
        lint.dump()
    );

    // Installed into a scratch root with a database of its own.
    let root = work.path().join("root");
    let admin = root.join("var/lib/dpkg");
    for d in ["info", "updates", "triggers"] {
        std::fs::create_dir_all(admin.join(d)).unwrap();
    }
    std::fs::write(admin.join("status"), "").unwrap();
    let r = root.to_string_lossy().into_owned();
    let dpkg = |args: &[&str]| {
        let log = format!("--log={r}/dpkg.log");
        let mut argv = vec![
            "dpkg",
            "--root",
            r.as_str(),
            log.as_str(),
            "--force-depends",
            "--force-script-chrootless",
        ];
        argv.extend_from_slice(args);
        run(&argv)
    };
    dpkg(&["-i", &deb]);
    let status = run(&[
        "dpkg-query",
        "--root",
        &r,
        "-W",
        "-f",
        "${Status} ${Version}",
        "mifshim",
    ])
    .stdout;
    assert_eq!(
        status,
        format!("install ok installed {}", env!("CARGO_PKG_VERSION"))
    );
    let owned = run(&["dpkg-query", "--root", &r, "-L", "mifshim"]).stdout;
    assert!(
        owned
            .lines()
            .any(|l| l == "/usr/lib/mifshim/libmifshim_engine.so"),
        "{owned}"
    );

    // A steered request from the installed paths: mifrun finds its libraries in
    // ../lib/mifshim; curl answers from wlan0's upstream, nothing on eth0 or wwan0.
    let mifrun = root.join("usr/bin/mifrun").to_string_lossy().into_owned();
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
    let check = tb
        .cmd(&[mifrun.as_str(), "--via", "wlan0", "--check", "--", "curl"])
        .run();
    check.assert_ok();
    assert!(
        check
            .stdout
            .contains(&format!("{r}/usr/lib/mifshim/libmifshim.so")),
        "{}",
        check.dump()
    );
    // The example policy checks; the packaged man page renders.
    let example = root.join("usr/share/doc/mifshim/examples/policy.toml");
    let out = tb
        .cmd(&[
            mifrun.as_str(),
            "--policy",
            &example.to_string_lossy(),
            "--allow-missing",
            "--check",
        ])
        .run();
    out.assert_ok();
    let page = root.join("usr/share/man/man1/mifrun.1.gz");
    let man = Cmd::new(None, &["man", "--warnings", "-l", &page.to_string_lossy()])
        .env("MANWIDTH", "80")
        .run();
    man.assert_ok();
    let flat = man.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains(
            "mifrun - Run PROGRAM with its sockets forced onto the chosen network interface(s)"
        ),
        "{}",
        man.dump()
    );
    assert!(man.stderr.is_empty(), "{}", man.dump());

    // Removed: not installed any more, and not one of its files left behind.
    dpkg(&["--purge", "mifshim"]);
    let status = Cmd::new(
        None,
        &[
            "dpkg-query",
            "--root",
            &r,
            "-W",
            "-f",
            "${Status}",
            "mifshim",
        ],
    )
    .run();
    assert!(
        !status.ok() || status.stdout.contains("not-installed"),
        "{}",
        status.dump()
    );
    let left: Vec<String> = files_outside_var(&root)
        .into_iter()
        .filter(|f| f != "dpkg.log")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(!root.join("usr/lib/mifshim").exists());
}
