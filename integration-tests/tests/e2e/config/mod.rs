//! Configuration sources (issue 9, items 9, 10 and 15): what the shim does with
//! environment values that are not UTF-8, policy paths that are not regular files, a
//! log file that is a FIFO, and names under an invalid policy. Every case either
//! steers (proved by the upstream that answered and silent sniffers on the other
//! uplinks) or fails closed with one clear line and no TCP/UDP packet on any uplink;
//! none may run unsteered or hang (each command is bounded by a time-out).

use super::*;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// A bound for commands that used to block forever: long enough for a loaded machine,
/// short enough that a regression fails the test quickly.
const NO_HANG: Duration = Duration::from_secs(15);

/// `/bin/sh -c SCRIPT sh PROG…` where SCRIPT runs `pre` and then execs PROG: for what
/// a `Cmd` cannot say itself (bytes that are not UTF-8, `ulimit`).
fn sh_then(pre: &str, prog: &[String]) -> Vec<String> {
    let mut v = strs(&["/bin/sh", "-c", &format!("{pre} exec \"$@\""), "sh"]);
    v.extend(prog.iter().cloned());
    v
}

/// Exports each `(VAR, FORMAT)` set to the bytes `printf FORMAT` makes (octal escapes
/// such as `\377` give a byte that is not UTF-8), then execs `prog`.
fn raw_env(vars: &[(&str, &str)], prog: &[String]) -> Vec<String> {
    let pre: String = vars
        .iter()
        .map(|(k, fmt)| format!("{k}=\"$(printf '{fmt}')\"; export {k};"))
        .collect();
    sh_then(&pre, prog)
}

/// `dir/p\xff.toml` holding `text`; returns the printf format naming it.
fn raw_named_policy(dir: &TempDir, text: &str) -> String {
    let p = dir.path().join(OsStr::from_bytes(b"p\xff.toml"));
    std::fs::write(&p, text).expect("write policy");
    format!("{}/p\\377.toml", dir.path().display())
}

fn mkfifo(path: &std::path::Path) {
    Cmd::new(None, &strs(&["mkfifo", &path.to_string_lossy()]))
        .run()
        .assert_ok();
}

/// Runs `cmd` with every sniffer on and asserts that it failed by itself (not killed
/// by the time-out), that no uplink carried TCP or UDP, and that exactly one line of
/// standard error contains every one of `needles`.
#[track_caller]
fn expect_fail_closed(tb: &Testbed, cmd: Cmd, needles: &[&str]) -> Out {
    let sn = tb.sniff_all();
    let out = cmd.timeout(NO_HANG).run();
    let counts = sn.stop();
    assert!(
        out.status.is_some(),
        "the command hung (killed after {NO_HANG:?}):{}",
        out.dump()
    );
    assert!(!out.ok(), "the command must fail closed:{}", out.dump());
    assert_silent(&counts);
    // One line per process that loaded the engine: the program's, and a shell's in
    // front of it (a shell installs signal handlers, which loads the engine).
    let hits: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .collect();
    assert!(
        !hits.is_empty()
            && hits.len() <= 2
            && hits
                .iter()
                .any(|l| l.contains("[curl:") || !l.contains("[sh:")),
        "expected the program's stderr line with {needles:?}:{}",
        out.dump()
    );
    out
}

fn preloaded(tb: &Testbed, argv: &[String]) -> Cmd {
    tb.cmd(argv).env("LD_PRELOAD", s(shim_lib()))
}

mod non_utf8 {
    use super::*;

    both!(
        /// Item 9: `MIFSHIM_VIA` with a byte that is not UTF-8 was taken for unset and
        /// the program ran unsteered, silently (answered by eth0). It cannot name an
        /// interface list: fail closed with one line.
        mifshim_via_fails_closed_instead_of_running_unsteered, |fam| {
            let tb = Testbed::up();
            let argv = raw_env(&[("MIFSHIM_VIA", "wlan0\\377")], &curl(&fam.url(80)));
            expect_fail_closed(&tb, preloaded(&tb, &argv), &["MIFSHIM_VIA", "not valid UTF-8"]);
        }
    );

    both!(
        /// Item 9: a `MIFSHIM_POLICY` path with a byte that is not UTF-8 is a legal path:
        /// it was taken for unset (unsteered, answered by eth0); it must be opened.
        mifshim_policy_path_is_opened_instead_of_ignored, |fam| {
            let tb = Testbed::up();
            let dir = TempDir::new("raw-pol");
            let fmt = raw_named_policy(&dir, "via = [\"wwan0\"]\n");
            let argv = raw_env(&[("MIFSHIM_POLICY", &fmt)], &curl(&fam.url(80)));
            expect_via(&tb, preloaded(&tb, &argv), "wwan0");
        }
    );

    both!(
        /// Item 9: `mifrun --policy` with such a path validated it and passed it on, and
        /// the engine then ignored it (answered by eth0).
        mifrun_policy_path_is_steered_instead_of_ignored, |fam| {
            let tb = Testbed::up();
            let dir = TempDir::new("raw-pol-mifrun");
            let fmt = raw_named_policy(&dir, "via = [\"wwan0\"]\n");
            let mut argv = strs(&[
                "/bin/sh",
                "-c",
                &format!("exec '{}' --policy \"$(printf '{fmt}')\" -- \"$@\"", s(mifrun())),
                "sh",
            ]);
            argv.extend(curl(&fam.url(80)));
            expect_via(&tb, tb.cmd(&argv), "wwan0");
        }
    );

    /// Item 9: `MIFSHIM_DNS` that is not UTF-8 was ignored (names went to other
    /// servers); like any other invalid `MIFSHIM_DNS` it fails closed.
    #[test]
    fn mifshim_dns_fails_closed_instead_of_being_ignored() {
        let tb = Testbed::up();
        let argv = raw_env(
            &[
                ("MIFSHIM_VIA", "wlan0"),
                ("MIFSHIM_DNS", "203.0.113.53\\377"),
            ],
            &curl(&Fam::V4.url(80)),
        );
        expect_fail_closed(
            &tb,
            preloaded(&tb, &argv),
            &["MIFSHIM_DNS", "not valid UTF-8"],
        );
    }

    /// Item 9: `MIFSHIM_LOG_FILE` naming a path that is not UTF-8 was ignored (the
    /// lines went to standard error); the file is opened by its bytes.
    #[test]
    fn log_file_path_is_opened_instead_of_ignored() {
        let tb = Testbed::up();
        let dir = TempDir::new("raw-log");
        let fmt = format!("{}/log\\377", dir.path().display());
        let argv = raw_env(
            &[
                ("MIFSHIM_VIA", "wlan0"),
                ("MIFSHIM_LOG", "info"),
                ("MIFSHIM_LOG_FILE", &fmt),
            ],
            &curl(&Fam::V4.url(80)),
        );
        let out = expect_via(&tb, preloaded(&tb, &argv), "wlan0");
        assert!(!out.stderr.contains("mifshim["), "{}", out.dump());
        let log = std::fs::read_to_string(dir.path().join(OsStr::from_bytes(b"log\xff")))
            .unwrap_or_else(|e| panic!("no log file: {e}{}", out.dump()));
        assert!(log.contains("-> wlan0"), "log file:\n{log}");
    }
}

mod names_fail_closed {
    use super::*;

    const PY_GAI_CODE: &str = "import socket, sys\n\
try:\n    socket.getaddrinfo(sys.argv[1], 80)\n    print('resolved')\n\
except socket.gaierror as e:\n    print('gaierror', e.errno, 'EAI_FAIL' if e.errno == socket.EAI_FAIL else 'other')";

    /// Query lines for `name` in the dnsmasq logs of every upstream.
    fn asked(tb: &Testbed, name: &str) -> Vec<String> {
        let needle = format!(" {name} from ");
        UPLINKS
            .iter()
            .flat_map(|u| {
                tb.dns_log(u)
                    .lines()
                    .filter(|l| l.contains("query[") && l.contains(&needle))
                    .map(|l| format!("{u}: {l}"))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    both!(
        /// Item 10: an invalid policy under plain LD_PRELOAD refused connections but
        /// left names to glibc, which asked eth0's server. Now a name that needs the
        /// network fails (EAI_FAIL, nothing sent on any uplink, no server asked), while
        /// `localhost` and /etc/hosts names still answer.
        invalid_policy_refuses_name_lookups_over_the_network, |fam| {
            let tb = Testbed::up();
            if fam.v6() {
                tb.set_host_etc("resolv.conf", &format!("nameserver {DNS6}\nsearch mif.test\n"));
            }
            tb.set_host_etc(
                "hosts",
                "127.0.0.1 localhost\n::1 localhost\n198.51.100.7 pinned.mif.test\n",
            );
            let dir = TempDir::new("badpol-names");
            let p = dir.write("bad.toml", "via = [\"wlan0\"]\ncolour = \"blue\"\n");
            let run = |argv: &[String]| {
                preloaded(&tb, argv).env("MIFSHIM_POLICY", &p).timeout(NO_HANG).run()
            };
            let sn = tb.sniff_all();
            let getent = run(&strs(&["getent", "ahosts", "who.mif.test"]));
            let py = run(&strs(&["python3", "-c", PY_GAI_CODE, "who.mif.test"]));
            let counts = sn.stop();
            assert!(!getent.ok() && getent.status.is_some(), "{}", getent.dump());
            assert!(getent.stdout.trim().is_empty(), "{}", getent.dump());
            assert!(py.stdout.contains("EAI_FAIL"), "{}", py.dump());
            assert_silent(&counts);
            let q = asked(&tb, "who.mif.test");
            assert!(q.is_empty(), "a server was asked: {q:#?}");
            let pinned = run(&strs(&["getent", "ahosts", "pinned.mif.test"]));
            pinned.assert_ok();
            assert!(pinned.stdout.contains("198.51.100.7"), "{}", pinned.dump());
            let lo = run(&strs(&["getent", "ahosts", "localhost"]));
            lo.assert_ok();
            assert!(lo.stdout.contains(fam.lo()), "{}", lo.dump());
        }
    );
}

mod unsafe_sources {
    use super::*;

    /// Item 15: a policy path naming a FIFO blocked the program's first socket call
    /// forever (open(2) waits for a writer). It is refused at once: fail closed.
    #[test]
    fn policy_fifo_fails_closed_instead_of_blocking() {
        let tb = Testbed::up();
        let dir = TempDir::new("fifo-pol");
        let fifo = dir.path().join("policy.toml");
        mkfifo(&fifo);
        let c =
            preloaded(&tb, &curl(&Fam::V4.url(80))).env("MIFSHIM_POLICY", fifo.to_string_lossy());
        expect_fail_closed(
            &tb,
            c,
            &[&fifo.to_string_lossy(), "not a regular file (a FIFO)"],
        );
    }

    /// Item 15: `/dev/zero` as the policy was read until memory ran out (here bounded
    /// by `ulimit -v`, so that a regression fails instead of exhausting the machine).
    #[test]
    fn policy_dev_zero_fails_closed_instead_of_exhausting_memory() {
        let tb = Testbed::up();
        let argv = sh_then("ulimit -v 2000000;", &curl(&Fam::V4.url(80)));
        let c = preloaded(&tb, &argv).env("MIFSHIM_POLICY", "/dev/zero");
        expect_fail_closed(
            &tb,
            c,
            &["/dev/zero", "not a regular file (a character device)"],
        );
    }

    /// Item 15 and the stub/engine agreement of item 9: a policy file found at the
    /// default path made the stub steer the process (it only checks that the path
    /// exists), while the engine wanted a regular file and went inert: the program ran
    /// unsteered (answered by eth0). Now the engine reads what the stub saw, refuses a
    /// FIFO or a directory there, and fails closed.
    #[test]
    fn default_policy_path_that_is_not_a_file_fails_closed_instead_of_unsteered() {
        let tb = Testbed::up();
        for kind in ["FIFO", "directory"] {
            let dir = TempDir::new("xdg");
            std::fs::create_dir_all(dir.path().join("mifshim")).unwrap();
            let p = dir.path().join("mifshim/policy.toml");
            if kind == "FIFO" {
                mkfifo(&p);
            } else {
                std::fs::create_dir(&p).unwrap();
            }
            let c = preloaded(&tb, &curl(&Fam::V4.url(80)))
                .env("XDG_CONFIG_HOME", dir.path().to_string_lossy());
            expect_fail_closed(
                &tb,
                c,
                &[
                    &p.to_string_lossy(),
                    &format!("not a regular file (a {kind})"),
                ],
            );
        }
    }

    both!(
        /// Item 15: `--log-file` naming a FIFO nobody reads blocked the first socket
        /// call forever. It is opened without blocking; with no reader the lines go to
        /// standard error after one warning, and the program is steered as ever.
        log_fifo_without_reader_does_not_block, |fam| {
            let tb = Testbed::up();
            let dir = TempDir::new("fifo-log");
            let fifo = dir.path().join("log");
            mkfifo(&fifo);
            let fifo = fifo.to_string_lossy().into_owned();
            let argv = strs(&[&s(mifrun()), "--via", "wlan0", "--log-file", &fifo, "--"]);
            let mut argv = argv;
            argv.extend(curl(&fam.url(80)));
            let out = expect_via(&tb, tb.cmd(&argv).timeout(NO_HANG), "wlan0");
            let warnings = out
                .stderr
                .lines()
                .filter(|l| l.contains("mifshim[") && l.contains(&fifo))
                .count();
            assert_eq!(warnings, 1, "one warning naming the log file:{}", out.dump());
        }
    );

    /// Opens the FIFO for reading without waiting for a writer (so the reader exists
    /// before the program starts), says `ready`, then collects what arrives.
    const FIFO_READER: &str = r#"
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)
print('ready', flush=True)
buf = b''
end = time.time() + 10
while time.time() < end and b'-> wlan0' not in buf:
    try:
        d = os.read(fd, 4096)
    except BlockingIOError:
        d = b''
    buf += d
    if not d:
        time.sleep(0.05)
sys.stdout.write(buf.decode(errors='replace'))
"#;

    /// A FIFO with a reader is a fine log: the reader gets the lines.
    #[test]
    fn log_fifo_with_a_reader_gets_the_lines() {
        let tb = Testbed::up();
        let dir = TempDir::new("fifo-log-reader");
        let fifo = dir.path().join("log");
        mkfifo(&fifo);
        let fifo = fifo.to_string_lossy().into_owned();
        let mut reader = Cmd::new(None, &strs(&["python3", "-c", FIFO_READER, &fifo]))
            .timeout(NO_HANG)
            .spawn();
        reader.wait_for_stdout("ready", NO_HANG);
        let mut argv = strs(&[
            &s(mifrun()),
            "--via",
            "wlan0",
            "--log",
            "info",
            "--log-file",
            &fifo,
            "--",
        ]);
        argv.extend(curl(&Fam::V4.url(80)));
        let out = expect_via(&tb, tb.cmd(&argv).timeout(NO_HANG), "wlan0");
        assert!(!out.stderr.contains("mifshim["), "{}", out.dump());
        let got = reader.wait(NO_HANG);
        assert!(got.stdout.contains("-> wlan0"), "{}", got.dump());
    }
}
