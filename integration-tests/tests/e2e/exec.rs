//! A program the preload cannot steer, exec'ed by one it steers: the stub's exec hooks
//! run it under mifrun's supervisor (`$MIFSHIM_MIFRUN --supervise … -- PROGRAM`), or,
//! without a mifrun (plain `LD_PRELOAD`), fail the exec closed. Every way in: a shell,
//! `env`, a `#!` interpreter, Python's `subprocess` and `os.posix_spawn`, each call of
//! the exec family by name (`exec_launch.c`), `system`; a glibc program exec'ed stays
//! preloaded and unsupervised; the errors of an exec are the kernel's.
//!
//! The static program is the review's reproducer (`supervise_review.c`, `plain` mode:
//! one datagram to the service, `control upstream=NAME`), built with `gcc -static`.

use super::*;

const REVIEW_C: &str = include_str!("supervise_review.c");
const LAUNCH_C: &str = include_str!("exec_launch.c");

/// The static reproducer (`gcc -static -pthread`).
fn build_static(dir: &TempDir) -> String {
    compile_c(
        dir,
        "supervise_review.c",
        REVIEW_C,
        "static-prog",
        &["gcc", "-static", "-O1", "-pthread"],
        &[],
    )
}

/// The launcher (dynamic glibc: preloaded).
fn build_launcher(dir: &TempDir) -> String {
    compile_c(
        dir,
        "exec_launch.c",
        LAUNCH_C,
        "exec-launch",
        &["gcc", "-O1"],
        &[],
    )
}

/// The reproducer built with `musl-gcc` without `-static` (`PT_INTERP`
/// `/lib/ld-musl-x86_64.so.1`).
fn build_musl(dir: &TempDir) -> String {
    let include = [
        "-idirafter",
        "/usr/include",
        "-idirafter",
        "/usr/include/x86_64-linux-gnu",
    ];
    let cc = [&["musl-gcc", "-O1"][..], &include[..]].concat();
    compile_c(
        dir,
        "supervise_review.c",
        REVIEW_C,
        "musl-prog",
        &cc,
        &["-lpthread"],
    )
}

const GO_UDP: &str = r#"package main

import (
	"fmt"
	"net"
	"os"
	"time"
)

func main() {
	u, err := net.Dial("udp", net.JoinHostPort(os.Args[1], "9000"))
	if err != nil {
		fmt.Println("go error", err)
		os.Exit(1)
	}
	u.SetDeadline(time.Now().Add(3 * time.Second))
	u.Write([]byte("x"))
	buf := make([]byte, 512)
	n, err := u.Read(buf)
	if err != nil {
		fmt.Println("go error", err)
		os.Exit(1)
	}
	fmt.Printf("go %s", buf[:n])
}
"#;

/// A Go program with `CGO_ENABLED=0` (static, raw system calls): one datagram.
fn build_go(dir: &TempDir) -> String {
    let src = dir.write("main.go", GO_UDP);
    let bin = dir.path().join("goudp").to_string_lossy().into_owned();
    Cmd::new(None, &["go", "build", "-o", &bin, &src])
        .env("CGO_ENABLED", "0")
        .env("GOCACHE", dir.path().join("gocache").to_string_lossy())
        .env("GOPATH", dir.path().join("gopath").to_string_lossy())
        .env("GO111MODULE", "off")
        .timeout(Duration::from_secs(300))
        .run()
        .assert_ok();
    bin
}

fn fam_arg(fam: Fam) -> &'static str {
    if fam.v6() { "6" } else { "4" }
}

/// `mifrun --via wlan0 -- sh -c SCRIPT`, answered by wlan0 only (every answer, and no
/// TCP/UDP on eth0 or wwan0).
#[track_caller]
fn sh_via_wlan0(tb: &Testbed, script: &str) -> Out {
    expect_via(
        tb,
        tb.cmd(&mifrun_args("wlan0", &["sh", "-c", script]))
            .timeout(Duration::from_secs(60)),
        "wlan0",
    )
}

both!(
    /// A Go tool (`CGO_ENABLED=0`: kubectl, terraform) run by a script: the shell is
    /// preloaded, the Go program is not reachable by a preload and is supervised.
    a_go_program_started_by_a_preloaded_shell_is_supervised,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("exec");
        let go = build_go(&dir);
        let out = sh_via_wlan0(&tb, &format!("{go} {}; echo done", fam.svc()));
        assert!(out.stdout.contains("go upstream=wlan0"), "{}", out.dump());
        assert!(out.stdout.contains("done"), "{}", out.dump());
    }
);

both!(
    /// Python starting a static busybox applet: `os.posix_spawn` and `os.posix_spawnp`
    /// (the stub's spawn hooks) and `subprocess.run` (vfork and `execve` in the child,
    /// through the hook): all three supervised, by wlan0.
    a_static_busybox_started_by_python_is_supervised,
    |fam| {
        let tb = Testbed::up();
        let url = fam.url(80);
        let py = format!(
            r#"
import os, subprocess, sys
argv = ["/bin/busybox", "wget", "-q", "-O-", "{url}"]
for spawn in (os.posix_spawn, os.posix_spawnp):
    pid = spawn(argv[0] if spawn is os.posix_spawn else "busybox", argv, os.environ)
    _, st = os.waitpid(pid, 0)
    print("spawn status", st, flush=True)
r = subprocess.run(["busybox", "wget", "-q", "-O-", "{url}"])
print("subprocess status", r.returncode, flush=True)
"#
        );
        let out = expect_via(
            &tb,
            tb.cmd(&mifrun_args("wlan0", &["python3", "-c", py.as_str()]))
                .timeout(Duration::from_secs(60)),
            "wlan0",
        );
        assert_eq!(
            upstreams(&out.stdout).len(),
            3,
            "three answers expected:{}",
            out.dump()
        );
        assert!(out.stdout.contains("subprocess status 0"), "{}", out.dump());
        assert_eq!(
            out.stdout.matches("spawn status 0").count(),
            2,
            "{}",
            out.dump()
        );
    }
);

both!(
    /// `env PROGRAM` (glibc's `env`, preloaded) running a static program: `execvp` in
    /// `env`, supervised.
    env_running_a_static_program_supervises_it,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("exec");
        let bin = build_static(&dir);
        let out = expect_via(
            &tb,
            tb.cmd(&mifrun_args("wlan0", &["env", bin.as_str(), "plain", fam_arg(fam)]))
                .timeout(Duration::from_secs(60)),
            "wlan0",
        );
        assert!(out.stdout.contains("control upstream=wlan0"), "{}", out.dump());
    }
);

both!(
    /// A script whose `#!` interpreter is static (`#!/bin/busybox sh`), run by a
    /// preloaded shell: the kernel would run busybox, so the script is supervised.
    a_script_whose_interpreter_is_static_is_supervised,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("exec");
        let script = dir.write(
            "fetch",
            &format!("#!/bin/busybox sh\nbusybox wget -q -O- {}\n", fam.url(80)),
        );
        Cmd::new(None, &["chmod", "+x", &script]).run().assert_ok();
        let out = sh_via_wlan0(&tb, &format!("{script}; echo status=$?"));
        assert!(out.stdout.contains("status=0"), "{}", out.dump());
    }
);

both!(
    /// A glibc program exec'ed by a steered shell stays preloaded and is not
    /// supervised: the engine's own line names `curl`, no supervisor line is printed.
    a_glibc_program_execd_stays_preloaded_and_unsupervised,
    |fam| {
        let tb = Testbed::up();
        let mut args = vec![s(mifrun()), "--via".into(), "wlan0".into(), "--log".into(), "info".into(), "--".into()];
        args.extend(strs(&["sh", "-c", &format!("curl -sS --max-time 5 {}", fam.url(80))]));
        let out = expect_via(&tb, tb.cmd(&args), "wlan0");
        assert!(out.stderr.contains("mifshim[curl:"), "no engine line for curl:{}", out.dump());
        assert!(!out.stderr.contains("supervising"), "curl was supervised:{}", out.dump());
    }
);

both!(
    /// Plain `LD_PRELOAD` (no mifrun, so no supervisor to hand the program to): a
    /// static program exec'ed by the preloaded shell is refused (`EACCES`, the shell's
    /// 126) with one line naming it and what works, and nothing leaves by any uplink.
    plain_ld_preload_fails_a_static_exec_closed,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("exec");
        let bin = build_static(&dir);
        let sn = tb.sniff_all();
        let out = tb
            .cmd(&["sh", "-c", &format!("{bin} plain {}", fam_arg(fam))])
            .env("LD_PRELOAD", s(shim_lib()))
            .env("MIFSHIM_VIA", "wlan0")
            .timeout(Duration::from_secs(30))
            .run();
        let counts = sn.stop();
        assert_eq!(out.code(), 126, "{}", out.dump());
        assert!(!out.stdout.contains("control"), "the program ran:{}", out.dump());
        assert!(
            out.stderr.contains(&format!("mifshim: not running {bin}: it is statically linked"))
                && out.stderr.contains("mifrun --supervise"),
            "{}",
            out.dump()
        );
        assert_silent(&counts);
    }
);

both!(
    /// Every call of the exec family, by name, from a glibc program under mifrun:
    /// `execve`, `execv`, `execvp`, `execvpe`, `execl`, `execle`, `execlp`,
    /// `execveat`, `posix_spawn`, `posix_spawnp`, `system` run the static program under
    /// the supervisor (all by wlan0); `fexecve` (a descriptor, which cannot be handed
    /// to the supervisor) fails closed with `EACCES`.
    every_exec_call_supervises_a_static_program,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("exec");
        let bin = build_static(&dir);
        let launch = build_launcher(&dir);
        let calls = [
            "execve", "execv", "execvp", "execvpe", "execl", "execle", "execlp", "execveat",
            "posix_spawn", "posix_spawnp", "system",
        ];
        let sn = tb.sniff_all();
        let mut outs = Vec::new();
        for call in calls {
            let out = tb
                .cmd(&mifrun_args("wlan0", &[launch.as_str(), call, bin.as_str(), "plain", fam_arg(fam)]))
                .timeout(Duration::from_secs(60))
                .run();
            outs.push((call, out));
        }
        let fexecve = tb
            .cmd(&mifrun_args("wlan0", &[launch.as_str(), "fexecve", bin.as_str(), "plain", fam_arg(fam)]))
            .run();
        let counts = sn.stop();
        for (call, out) in &outs {
            assert!(out.stdout.contains("control upstream=wlan0"), "{call}:{}", out.dump());
            out.assert_answered_by("wlan0");
        }
        assert_only(&counts, "wlan0");
        assert!(fexecve.stdout.contains("errno=EACCES"), "{}", fexecve.dump());
        assert!(fexecve.stderr.contains("exec'ed by descriptor"), "{}", fexecve.dump());
    }
);

/// The errors of an exec are the kernel's, with the hooks as without them: `ENOENT`
/// for a missing file (also after a `PATH` search), `EACCES` for a file without the x
/// bit, `ENOEXEC` for an executable that is neither ELF nor `#!` (by `execve`; the
/// p-variants run it with /bin/sh, as glibc does).
#[test]
fn exec_errors_are_the_kernels() {
    let tb = Testbed::up();
    let dir = TempDir::new("exec");
    let launch = build_launcher(&dir);
    let junk = dir.write("junk", "not a program\n");
    Cmd::new(None, &["chmod", "+x", &junk]).run().assert_ok();
    let noexec = dir.write("noexec", "#!/bin/sh\necho ran\n");
    let cases = [
        ("execve", "/nonexistent/prog", "errno=ENOENT"),
        ("execv", "/nonexistent/prog", "errno=ENOENT"),
        ("execvp", "no-such-program-anywhere", "errno=ENOENT"),
        ("execve", noexec.as_str(), "errno=EACCES"),
        ("execvp", noexec.as_str(), "errno=EACCES"),
        ("execve", junk.as_str(), "errno=ENOEXEC"),
        ("execveat", junk.as_str(), "errno=ENOEXEC"),
        ("posix_spawn", "/nonexistent/prog", "errno=ENOENT"),
    ];
    for (call, path, want) in cases {
        let plain = tb.cmd(&[launch.as_str(), call, path]).run();
        let hooked = tb
            .cmd(&mifrun_args("wlan0", &[launch.as_str(), call, path]))
            .run();
        assert!(
            plain.stdout.contains(want),
            "{call} {path} without mifrun:{}",
            plain.dump()
        );
        assert!(
            hooked.stdout.contains(want),
            "{call} {path} under mifrun:{}",
            hooked.dump()
        );
        assert_eq!(
            plain.code(),
            hooked.code(),
            "{call} {path}:{}{}",
            plain.dump(),
            hooked.dump()
        );
    }
}

/// A dynamic musl program (`PT_INTERP` musl's loader) under `--supervise` (which keeps
/// the preload for glibc programs) and exec'ed by a preloaded shell: supervised, and
/// given no `LD_PRELOAD` (musl's loader cannot load the library: status 127).
#[test]
fn a_dynamic_musl_program_runs_supervised_under_supervise_and_through_sh() {
    let tb = Testbed::up();
    let dir = TempDir::new("exec");
    let bin = build_musl(&dir);
    for fam in [Fam::V4, Fam::V6] {
        let mut args = vec![
            s(mifrun()),
            "--via".into(),
            "wlan0".into(),
            "--supervise".into(),
            "--".into(),
        ];
        args.extend(strs(&[bin.as_str(), "plain", fam_arg(fam)]));
        let out = expect_via(&tb, tb.cmd(&args), "wlan0");
        assert!(
            out.stdout.contains("control upstream=wlan0"),
            "{}",
            out.dump()
        );
        let out = sh_via_wlan0(&tb, &format!("{bin} plain {}", fam_arg(fam)));
        assert!(
            out.stdout.contains("control upstream=wlan0"),
            "{}",
            out.dump()
        );
    }
}
