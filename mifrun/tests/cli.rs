//! End-to-end tests of the `mifrun` binary: exit codes, messages and the environment
//! it hands to the program.
//!
//! Each test stages a private directory holding a copy of `mifrun` and a stand-in
//! `libmifshim.so` (a copy of this test executable: an ELF file of the host ABI that
//! ld.so declines to preload with a harmless "ignored" message), so that the tests do
//! not depend on the real shim having been built. Interface `lo` always exists.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Stage {
    dir: PathBuf,
}

impl Stage {
    fn new() -> Stage {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "mifrun-cli-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::copy(env!("CARGO_BIN_EXE_mifrun"), dir.join("bin/mifrun")).unwrap();
        std::fs::copy(
            std::env::current_exe().unwrap(),
            dir.join("bin/libmifshim.so"),
        )
        .unwrap();
        // The stub's engine only has to exist for mifrun.
        std::fs::write(dir.join("bin/libmifshim_engine.so"), b"").unwrap();
        Stage { dir }
    }

    fn library(&self) -> PathBuf {
        self.dir.join("bin/libmifshim.so").canonicalize().unwrap()
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Runs the staged mifrun with a hermetic environment.
    ///
    /// Retries on `ETXTBSY`: a file just written (the copied mifrun, a test script) can
    /// still be open for writing in a child that another test thread forked at that
    /// moment, until that child reaches exec and its close-on-exec descriptors close.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut argv = vec![self.dir.join("bin/mifrun").into_os_string()];
        argv.extend(args.iter().map(OsString::from));
        self.run_argv(&argv, env)
    }

    /// Runs the staged mifrun under `/bin/sh -c "PRE exec timeout -s KILL 15 mifrun
    /// ARGS…"`: for calls that used to block (a regression then fails with status 137
    /// instead of hanging) and for `ulimit`s.
    fn run_bounded(&self, pre: &str, args: &[&OsStr]) -> Output {
        let mut argv: Vec<OsString> = ["/bin/sh", "-c"].map(OsString::from).to_vec();
        argv.push(format!("{pre} exec timeout -s KILL 15 \"$@\"").into());
        argv.push("sh".into());
        argv.push(self.dir.join("bin/mifrun").into_os_string());
        argv.extend(args.iter().map(|a| a.to_os_string()));
        self.run_argv(&argv, &[])
    }

    fn run_argv(&self, argv: &[OsString], env: &[(&str, &str)]) -> Output {
        let args = &argv[1..];
        for _ in 0..50 {
            let mut cmd = Command::new(&argv[0]);
            cmd.args(args)
                .current_dir(&self.dir)
                .env_clear()
                .env("PATH", "/usr/bin:/bin");
            for (k, v) in env {
                cmd.env(k, v);
            }
            let out = match cmd.output() {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => None,
                Err(e) => panic!("cannot run mifrun: {e}"),
                Ok(o) if String::from_utf8_lossy(&o.stderr).contains("Text file busy") => None,
                Ok(o) => Some(o),
            };
            let Some(out) = out else {
                std::thread::sleep(std::time::Duration::from_millis(20));
                continue;
            };
            eprintln!(
                "mifrun {args:?} -> {:?}\n--- stdout\n{}--- stderr\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            return out;
        }
        panic!("mifrun {args:?}: still ETXTBSY after 50 attempts");
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn env_lines(o: &Output) -> Vec<String> {
    stdout(o)
        .lines()
        .filter(|l| l.starts_with("LD_PRELOAD=") || l.starts_with("MIFSHIM_"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn sets_environment_and_passes_exit_status() {
    let s = Stage::new();
    let lib = s.library();
    let o = s.run(
        &[
            "--via",
            "lo",
            "--log",
            "INFO",
            "--log-file",
            "x.log",
            "--",
            "env",
        ],
        &[
            ("LD_PRELOAD", "/nonexistent/a.so"),
            ("MIFSHIM_DISABLE", "1"),
            ("MIFSHIM_POLICY", "/old.toml"),
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    let mut lines = env_lines(&o);
    lines.sort();
    assert_eq!(
        lines,
        [
            format!("LD_PRELOAD={}:/nonexistent/a.so", lib.display()),
            "MIFSHIM_LOG=info".to_owned(),
            format!("MIFSHIM_LOG_FILE={}", s.dir.join("x.log").display()),
            // Where the preload's exec hooks find the supervisor.
            format!(
                "MIFSHIM_MIFRUN={}",
                s.dir.join("bin/mifrun").canonicalize().unwrap().display()
            ),
            "MIFSHIM_VIA=lo".to_owned(),
        ]
    );
    let err = stderr(&o);
    assert!(
        err.contains("mifrun: warning: removing inherited MIFSHIM_DISABLE=1"),
        "{err}"
    );
    assert!(
        err.contains("mifrun: warning: ignoring inherited MIFSHIM_POLICY"),
        "{err}"
    );

    let o = s.run(
        &["--via", "lo", "--", "sh", "-c", "echo \"$0\"; exit 7"],
        &[],
    );
    assert_eq!(o.status.code(), Some(7));
    assert_eq!(stdout(&o), "sh\n", "argv[0] is kept as given");
}

#[test]
fn policy_file_is_passed_as_absolute_path_and_via_overrides() {
    let s = Stage::new();
    s.write("p.toml", "via = [\"lo\"]\n");
    let o = s.run(&["--policy", "p.toml", "--via", "lo", "--", "env"], &[]);
    assert_eq!(o.status.code(), Some(0));
    let lines = env_lines(&o);
    let policy = s.dir.join("p.toml").canonicalize().unwrap();
    assert!(
        lines.contains(&format!("MIFSHIM_POLICY={}", policy.display())),
        "{lines:?}"
    );
    assert!(lines.contains(&"MIFSHIM_VIA=lo".to_owned()), "{lines:?}");
}

#[test]
fn invalid_policy_exits_2_with_diagnostics() {
    let s = Stage::new();
    s.write("bad.toml", "via = [\"lo\"]\nlisen = \"any\"\n");
    let o = s.run(&["--policy", "bad.toml", "--", "touch", "ran"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad.toml:2:1: "), "{}", stderr(&o));
    assert!(stderr(&o).lines().last().unwrap().starts_with("mifrun: "));
    assert!(!s.dir.join("ran").exists(), "the program must not run");

    let o = s.run(&["--via", "a b", "--", "true"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("--via: "), "{}", stderr(&o));
}

#[test]
fn needs_via_or_policy() {
    let s = Stage::new();
    let o = s.run(&["--", "true"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("mifrun: one of --via or --policy is needed"));
}

#[test]
fn missing_interface_exits_2_unless_allowed() {
    let s = Stage::new();
    let o = s.run(&["--via", "mifnope0,lo", "--", "true"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("mifrun: network interface `mifnope0` does not exist"));
    let o = s.run(
        &["--via", "mifnope0,lo", "--allow-missing", "--", "true"],
        &[],
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("mifrun: warning: network interface `mifnope0` does not exist"));
}

#[test]
fn exec_failures_use_env_exit_codes() {
    let s = Stage::new();
    let o = s.run(&["--via", "lo", "--", "mifrun-no-such-program"], &[]);
    assert_eq!(o.status.code(), Some(127));
    assert!(stderr(&o).starts_with("mifrun: mifrun-no-such-program: No such file or directory"));
    let plain = s.write("plain", "data\n");
    let o = s.run(&["--via", "lo", "--", plain.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(126));
    let script = s.write("bad-interp.sh", "#!/nonexistent/interp\n");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = s.run(&["--via", "lo", "--", "./bad-interp.sh"], &[]);
    assert_eq!(o.status.code(), Some(127));
    assert!(stderr(&o).contains("bad interpreter"), "{}", stderr(&o));
}

#[test]
fn scripts_run_through_their_interpreter() {
    let s = Stage::new();
    let script = s.write("s.sh", "#!/usr/bin/env sh\necho \"script $1\"\nexit 4\n");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = s.run(&["--via", "lo", "--", "./s.sh", "-x"], &[]);
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(stdout(&o), "script -x\n");
}

#[test]
fn check_prints_plan_and_runs_nothing() {
    let s = Stage::new();
    let o = s.run(&["--via", "lo", "--check", "--", "touch", "ran"], &[]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.contains("Effective policy:"), "{out}");
    assert!(out.contains("steerable by the preload library"), "{out}");
    assert!(
        out.contains(&format!("set LD_PRELOAD={}", s.library().display())),
        "{out}"
    );
    assert!(out.contains("set MIFSHIM_VIA=lo"), "{out}");
    assert!(!s.dir.join("ran").exists());
    let o = s.run(&["--via", "lo", "--check"], &[]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn refuses_setuid_program_that_changes_credentials() {
    // Needs a file owned by someone else than the effective uid: only possible as root.
    let s = Stage::new();
    let copy = s.dir.join("suid-true");
    std::fs::copy("/usr/bin/true", &copy).unwrap();
    let Ok(meta) = std::fs::metadata(&copy) else {
        return;
    };
    let me = std::os::unix::fs::MetadataExt::uid(&meta);
    if me != 0 {
        eprintln!("skipped: needs root to chown a setuid file to another user");
        return;
    }
    let status = Command::new("chown").arg("65534").arg(&copy).status();
    if !status.is_ok_and(|s| s.success()) {
        eprintln!("skipped: chown failed");
        return;
    }
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let o = s.run(&["--via", "lo", "--", "./suid-true"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("is setuid (owner uid 65534)"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("--allow-unsteered"));
    let o = s.run(
        &["--via", "lo", "--allow-unsteered", "--", "./suid-true"],
        &[],
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("UNSTEERED"));
}

#[test]
fn help_and_version() {
    let s = Stage::new();
    let o = s.run(&["--help"], &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("Examples:"));
    let o = s.run(&["--version"], &[]);
    assert_eq!(
        stdout(&o).trim(),
        format!("mifrun {}", env!("CARGO_PKG_VERSION"))
    );
    let o = s.run(&["--via", "lo", "--log", "loud", "true"], &[]);
    assert_eq!(o.status.code(), Some(2));
}

/// mifrun refuses to start a program when the stub's engine is missing: every steered
/// call would fail closed.
#[test]
fn missing_engine_is_refused() {
    let st = Stage::new();
    std::fs::remove_file(st.dir.join("bin/libmifshim_engine.so")).unwrap();
    let out = st.run(&["--via", "lo", "--", "/usr/bin/true"], &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = stderr(&out);
    assert!(err.contains("libmifshim_engine.so is missing"), "{err}");
}

/// Issue 9 item 15: `mifrun --check --policy FIFO` blocked forever in open(2). It is
/// refused at once, naming what the path is.
#[test]
fn check_with_a_fifo_policy_is_refused_instead_of_blocking() {
    let s = Stage::new();
    let fifo = s.dir.join("policy.toml");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    let o = s.run_bounded(
        "",
        &[
            OsStr::new("--policy"),
            fifo.as_os_str(),
            OsStr::new("--check"),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("policy.toml: cannot read policy file: not a regular file (a FIFO)"),
        "{}",
        stderr(&o)
    );
}

/// Issue 9 item 15: `mifrun --policy /dev/zero` read until memory ran out (bounded
/// here by `ulimit -v`, so that a regression fails instead of exhausting the machine).
#[test]
fn policy_dev_zero_is_refused_instead_of_read_until_memory_runs_out() {
    let s = Stage::new();
    let o = s.run_bounded(
        "ulimit -v 2000000;",
        &[
            OsStr::new("--policy"),
            OsStr::new("/dev/zero"),
            OsStr::new("--check"),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "/dev/zero: cannot read policy file: not a regular file (a character device)"
        ),
        "{}",
        stderr(&o)
    );
}

/// A policy larger than the limit is refused with the limit named.
#[test]
fn oversized_policy_is_refused() {
    let s = Stage::new();
    let big = "# x\n".repeat((4 << 20) / 4 + 1);
    s.write("big.toml", &format!("via = [\"lo\"]\n{big}"));
    let o = s.run(&["--policy", "big.toml", "--check"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("larger than the limit of 4194304 bytes"),
        "{}",
        stderr(&o)
    );
}

/// Issue 9 item 9: a `--policy` path that is not UTF-8 is read, and handed to the
/// program's environment byte for byte (the engine opens it by its bytes).
#[test]
fn policy_path_that_is_not_utf8_is_passed_byte_for_byte() {
    let s = Stage::new();
    let p = s.dir.join(OsStr::from_bytes(b"p\xff.toml"));
    std::fs::write(&p, "via = [\"lo\"]\n").unwrap();
    let argv = [
        s.dir.join("bin/mifrun").into_os_string(),
        "--policy".into(),
        p.clone().into_os_string(),
        "--".into(),
        "/usr/bin/env".into(),
    ];
    let o = s.run_argv(&argv, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut want = b"MIFSHIM_POLICY=".to_vec();
    want.extend_from_slice(p.canonicalize().unwrap().as_os_str().as_bytes());
    assert!(
        o.stdout
            .split(|b| *b == b'\n')
            .any(|l| l == want.as_slice()),
        "{}",
        stdout(&o)
    );
}

/// `mifrun status | head -1` (and `--check`, `explain`, `doctor`, `schema`,
/// `completions`) panicked with status 101 and a backtrace when the reader had gone:
/// Rust ignores SIGPIPE, so the write failed with `EPIPE` and `println!` panicked. The
/// printing commands now die of SIGPIPE, silently, as `cat` and `ls` do (the shell
/// reports 141); what they print into a live pipe is unchanged.
#[test]
#[cfg(target_os = "linux")] // status/explain/doctor are Linux's (and so is pipe2)
fn printing_into_a_closed_pipe_panicked() {
    use std::os::fd::{FromRawFd as _, OwnedFd};
    use std::os::unix::process::ExitStatusExt as _;
    let s = Stage::new();
    let cases: &[(&[&str], &str)] = &[
        (&["status"], "Policy:"),
        (&["--via", "lo", "--check", "--", "true"], "Mode:"),
        (
            &["explain", "--via", "lo", "127.0.0.1", "80"],
            "Policy: --via lo\nDestination: 127.0.0.1 port 80/tcp",
        ),
        (&["doctor", "--via", "lo"], "Policy: --via lo\n"),
        (
            &["schema"],
            "{\n  \"$schema\": \"http://json-schema.org/draft-07/schema#\"",
        ),
        (&["completions", "bash"], "_mifrun() {"),
    ];
    for (args, first) in cases {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two descriptors into the array it is given.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: both descriptors were just created and are owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        drop(read);
        let o = Command::new(s.dir.join("bin/mifrun"))
            .args(*args)
            .current_dir(&s.dir)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdout(write)
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(
            o.status.signal(),
            Some(libc::SIGPIPE),
            "mifrun {args:?} into a closed pipe: {:?}\n{err}",
            o.status
        );
        assert!(!err.contains("panicked"), "mifrun {args:?}: {err}");
        // Into a live pipe, the same command still prints what it did.
        let o = s.run(args, &[]);
        let out = stdout(&o);
        assert!(out.starts_with(first), "mifrun {args:?}: {out}");
        assert!(!stderr(&o).contains("panicked"));
    }
}
