use super::*;

const BAD_POLICY: &str = "via = [\"wlan0\"]\ncolour = \"blue\"\n\n[[rules]]\nto = [\"203.0.113.300/32\"]\nvia = [\"wwan0\"]\n";

#[test]
fn mifrun_reports_all_policy_errors_with_positions() {
    let tb = Testbed::up();
    let dir = TempDir::new("badpol");
    let p = dir.write("bad.toml", BAD_POLICY);
    let out = tb
        .cmd(&mifrun_policy_args(&p, &curl(&Fam::V4.url(80))))
        .run();
    out.assert_code(2);
    // Unknown key on line 2, bad CIDR on line 5, both in one run.
    for line in [2, 5] {
        let needle = format!("{p}:{line}:");
        let hit = out.stderr.lines().any(|l| {
            l.find(&needle)
                .map(|i| {
                    let rest = &l[i + needle.len()..];
                    let col: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    !col.is_empty() && rest[col.len()..].starts_with(':')
                })
                .unwrap_or(false)
        });
        assert!(hit, "expected `{needle}COL:` in stderr:{}", out.dump());
    }
    assert!(upstreams(&out.stdout).is_empty(), "{}", out.dump());
}

#[test]
fn shim_with_bad_policy_fails_closed_but_keeps_loopback() {
    let tb = Testbed::up();
    let dir = TempDir::new("badpol-shim");
    let p = dir.write("bad.toml", BAD_POLICY);
    let _srv = py_server(&tb, &dir, &[], "127.0.0.1", 7500);
    let sn = tb.sniff_all();
    let out = tb
        .cmd(&curl(&Fam::V4.url(80)))
        .env("LD_PRELOAD", s(shim_lib()))
        .env("MIFSHIM_POLICY", &p)
        .run();
    let counts = sn.stop();
    assert!(
        !out.ok(),
        "curl must fail under an invalid policy:{}",
        out.dump()
    );
    assert_silent(&counts);
    let mentions = out.stderr.lines().filter(|l| l.contains(&p)).count();
    assert_eq!(
        mentions,
        1,
        "expected exactly one stderr line naming {p}:{}",
        out.dump()
    );
    let lo = tb
        .cmd(&strs(&[
            "curl",
            "-sS",
            "--max-time",
            "3",
            "http://127.0.0.1:7500/",
        ]))
        .env("LD_PRELOAD", s(shim_lib()))
        .env("MIFSHIM_POLICY", &p)
        .run();
    lo.assert_ok();
    assert!(lo.stdout.contains("local-ok"), "{}", lo.dump());
}

/// With `--preload-only` (without it, mifrun supervises a static binary: see
/// tests/supervise.rs).
#[test]
fn static_binary_refused_under_preload_only_unless_allowed() {
    let tb = Testbed::up();
    let dir = TempDir::new("static");
    let src = dir.write(
        "hello.c",
        "#include <stdio.h>\nint main(void){puts(\"hello-static\");return 0;}\n",
    );
    let bin = dir.path().join("hello").to_string_lossy().into_owned();
    Cmd::new(None, &strs(&["gcc", "-static", "-o", &bin, &src]))
        .timeout(Duration::from_secs(60))
        .run()
        .assert_ok();
    let out = tb.run(&[
        s(mifrun()),
        "--via".into(),
        "wlan0".into(),
        "--preload-only".into(),
        "--".into(),
        bin.clone(),
    ]);
    out.assert_code(2);
    let e = out.stderr.to_lowercase();
    assert!(e.contains("static"), "{}", out.dump());
    assert!(out.stderr.contains("--allow-unsteered"), "{}", out.dump());
    assert!(!out.stdout.contains("hello-static"), "{}", out.dump());
    let allowed = tb.run(&[
        s(mifrun()),
        "--via".into(),
        "wlan0".into(),
        "--allow-unsteered".into(),
        "--".into(),
        bin,
    ]);
    allowed.assert_ok();
    assert!(
        allowed.stdout.contains("hello-static"),
        "{}",
        allowed.dump()
    );
}

/// A program setuid to another user is refused. As root, a copy of `true` made
/// setuid to nobody; in the unprivileged user namespace `scripts/test.sh` uses for
/// non-root runs (one uid mapped: chown to another owner is impossible there), a
/// system setuid program, whose owner shows as someone else. Failing to find either
/// fails the test: it is never skipped.
#[test]
fn setuid_binary_refused_also_in_a_single_uid_user_namespace() {
    use std::os::unix::fs::MetadataExt;
    let tb = Testbed::up();
    let dir = TempDir::new("setuid");
    let copy = dir.path().join("true-suid").to_string_lossy().into_owned();
    std::fs::copy("/usr/bin/true", &copy).expect("copy /usr/bin/true");
    let chowned = Cmd::new(None, &strs(&["chown", "nobody", &copy])).run();
    let bin = if chowned.status.is_some_and(|s| s.success()) {
        Cmd::new(None, &strs(&["chmod", "4755", &copy]))
            .run()
            .assert_ok();
        copy
    } else {
        // SAFETY: geteuid cannot fail.
        let me = unsafe { libc::geteuid() };
        [
            "/usr/bin/passwd",
            "/usr/bin/chsh",
            "/usr/bin/su",
            "/bin/su",
            "/usr/bin/mount",
            "/bin/mount",
        ]
        .iter()
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.mode() & 0o4000 != 0 && m.uid() != me))
        .unwrap_or_else(|| {
            panic!(
                "chown failed ({}) and no system setuid program owned by another user was found",
                chowned.stderr.trim()
            )
        })
        .to_string()
    };
    let out = tb.run(&mifrun_args("wlan0", &[bin]));
    out.assert_code(2);
    assert!(
        out.stderr.to_lowercase().contains("setuid"),
        "{}",
        out.dump()
    );
}
