//! A second hostile review of the exec hooks (db43716, "buffers sized by what the exec
//! needs", 2026-12-06): each test failed on the branch reviewed and passes now.
//!
//! The stack, still overflowing an 8 KiB `clone(CLONE_VM|CLONE_VFORK)` child or a
//! 16 KiB thread with two ordinary inputs:
//! - a `PATH` with one entry longer than 512 bytes: the search buffer was sized by the
//!   longest entry, not by the candidates before the one found. Now `with_search`
//!   tries 512 bytes, then 1 KiB, then `PATH_MAX`, each frame replacing the one before,
//!   and only when a candidate before the one found needs it;
//! - an environment of more than 32 words that the hook rebuilds (`LD_PRELOAD` left
//!   out): a 4 KiB array. Now a 128-word tier comes first (`with_words`).
//!
//! And leaks older than that commit, each running a static program unsteered:
//! - `posix_spawnp` with an `addchdir_np` action and a relative (or empty) `PATH`
//!   entry: the hook searched in the parent's directory, glibc's child after its
//!   chdir; when the hook found nothing the call went on to the real `posix_spawnp`;
//! - `posix_spawn` of a `#!` script with a relative interpreter after an
//!   `addchdir_np`: the kernel opens the interpreter in the child's directory;
//! - `execveat(…, AT_SYMLINK_NOFOLLOW)` of a script whose interpreter is a link: the
//!   flag is about the script only, and the hook opened the interpreter `O_NOFOLLOW`;
//! - `execveat(dirfd, "scr", 0)` of a script with a relative interpreter: the kernel
//!   opens it in the current directory, the hook did relative to `dirfd`;
//! - (by reading) `execvp` in a process whose real and effective uids differ: the
//!   `PATH` probe checked the real uid.
//!
//! Fixed by deciding each file where the kernel resolves it: the spawn child's
//! directory followed by `O_PATH` opens of its `chdir`s (`execcheck::spawn_dir`), the
//! exec's own path through `Fs::open_target` (`execveat`'s descriptor and flag) and
//! the interpreters through `Fs::open` (the current directory, links followed); the
//! probe asks for the effective ids (`faccessat2(AT_EACCESS)`); and a search that
//! finds nothing fails with execvp's errno instead of being left to the C library.
//!
//! No other verdict was found wrong (static, Go, musl programs checked by hand with
//! long `PATH` entries, deep paths near `PATH_MAX`, long `addchdir_np` chains, 31–300
//! arguments and 0–5000 environment entries; ~800k mutated Go and glibc binaries gave
//! no "as is" where the stub before supervised).
//!
//! The launcher is `exec_review2.c` (dynamic glibc: preloaded). The measurements
//! (2026-12-06, Linux, x86-64): see each test.

use super::*;

const LAUNCH_C: &str = include_str!("exec_review2.c");
const REVIEW_LAUNCH_C: &str = include_str!("exec_review.c");

/// The launcher (dynamic glibc: preloaded).
fn build_launcher(dir: &TempDir) -> String {
    compile_c(
        dir,
        "exec_review2.c",
        LAUNCH_C,
        "exec-review2",
        &["gcc", "-O1", "-pthread"],
        &[],
    )
}

/// A `PATH` whose first entry is 610 bytes long (three components of 200 bytes, none
/// existing: glibc's search goes on past its ENOENT), then the system's directories.
fn long_entry_path() -> String {
    format!(
        "/nonexistent/{}/{}/{}:{PATH}",
        "x".repeat(200),
        "y".repeat(200),
        "z".repeat(180)
    )
}

/// The launcher with `args`, without the preload and under it (`MIFSHIM_VIA`), `PATH`
/// set to `path`.
fn plain_and_preloaded(launch: &str, path: &str, args: &[&str]) -> (Out, Out) {
    let mut argv = vec![launch];
    argv.extend_from_slice(args);
    run_both(&argv, path)
}

/// `argv` without the preload and under it (`MIFSHIM_VIA`), `PATH` set to `path`.
fn run_both(argv: &[&str], path: &str) -> (Out, Out) {
    let plain = Cmd::new(None, argv)
        .env("PATH", path)
        .timeout(Duration::from_secs(20))
        .run();
    let hooked = Cmd::new(None, argv)
        .env("PATH", path)
        .env("LD_PRELOAD", s(shim_lib()))
        .env("MIFSHIM_VIA", "wlan0")
        .timeout(Duration::from_secs(20))
        .run();
    (plain, hooked)
}

/// `argv` (`PATH` = `path`) runs the static program without the preload
/// (`static-ran`); under it, without a mifrun, the program is refused (`errno=EACCES`
/// and the refusal line), not run. `what`: the case, for the message.
#[track_caller]
fn ran_natively_refused_preloaded(argv: &[&str], path: &str, what: &str) {
    let (plain, hooked) = run_both(argv, path);
    assert!(plain.stdout.contains("static-ran"), "{}", plain.dump());
    assert!(
        !hooked.stdout.contains("static-ran")
            && hooked.stdout.contains("errno=EACCES")
            && hooked.stderr.contains("not running"),
        "{what}, no mifrun:{}",
        hooked.dump()
    );
}

/// `execvpe("true")` in a `clone(CLONE_VM|CLONE_VFORK)` child on an 8 KiB stack (guard
/// page below), `PATH` with one 610-byte entry before `/usr/bin`, the environment
/// small: `exited=0` without the preload; under it `signal=11` with the debug stub
/// and with the release one (measured 2026-12-06: the release stub dies at 5, 6 and 8
/// KiB and runs at 10; with `PATH=/usr/bin:/bin` it runs at 5 KiB).
#[test]
fn execvpe_in_an_8k_clone_child_with_a_long_path_entry_does_not_overflow_it() {
    let dir = TempDir::new("execreview2");
    let launch = build_launcher(&dir);
    let path = long_entry_path();
    let (plain, hooked) = plain_and_preloaded(&launch, &path, &["clone", "8", "0", "true"]);
    assert!(plain.stdout.contains("exited=0"), "{}", plain.dump());
    assert!(
        hooked.stdout.contains("exited=0"),
        "execvpe in the clone child under the preload, a 610-byte PATH entry:{}",
        hooked.dump()
    );
}

/// `execvpe("true")` in a `clone(CLONE_VM|CLONE_VFORK)` child on an 8 KiB stack, the
/// new environment `environ` without `LD_PRELOAD` plus 40 entries (the hook gives
/// `LD_PRELOAD` back in a block of more than 32 words): `exited=0` without the
/// preload; `signal=11` under the debug stub (measured 2026-12-06; it runs at 10 KiB,
/// and at 8 KiB with the environment's `LD_PRELOAD` kept; the release stub runs at
/// 8 KiB).
#[test]
fn execvpe_in_an_8k_clone_child_with_an_environment_to_rebuild_does_not_overflow_it() {
    let dir = TempDir::new("execreview2");
    let launch = build_launcher(&dir);
    let (plain, hooked) = plain_and_preloaded(&launch, PATH, &["clone", "8", "40", "true"]);
    assert!(plain.stdout.contains("exited=0"), "{}", plain.dump());
    assert!(
        hooked.stdout.contains("exited=0"),
        "execvpe in the clone child under the preload, LD_PRELOAD left out:{}",
        hooked.dump()
    );
}

/// `posix_spawnp("true")` from a thread with a 16 KiB stack, `PATH` with one 610-byte
/// entry and the new environment without `LD_PRELOAD` plus 40 entries: `status=0`
/// without the preload; under the debug stub the program dies of SIGSEGV (exit 139;
/// measured 2026-12-06: either input alone runs, both die; the release stub runs).
#[test]
fn posix_spawnp_from_a_16k_thread_with_a_long_path_entry_and_an_environment_to_rebuild() {
    let dir = TempDir::new("execreview2");
    let launch = build_launcher(&dir);
    let path = long_entry_path();
    let (plain, hooked) = plain_and_preloaded(&launch, &path, &["thread", "16", "40", "true"]);
    assert!(plain.stdout.contains("status=0"), "{}", plain.dump());
    assert!(
        hooked.stdout.contains("status=0") && hooked.code() == 0,
        "the thread's posix_spawnp under the preload:{}",
        hooked.dump()
    );
}

/// `posix_spawnp("static-prog")` with `addchdir_np(DIR)`, `PATH` =
/// `mifshim-review2-bin:/usr/bin`, where `DIR/mifshim-review2-bin/static-prog` is a
/// static program (`gcc -static`) and the launcher's own directory has no
/// `mifshim-review2-bin`: glibc's child chdirs, then searches `PATH` and runs it. Under
/// the preload without a mifrun it must be refused (`errno=EACCES`, the refusal line);
/// measured 2026-12-06: it ran (`static-ran`, `status=0`), with this stub and with the
/// one before db43716. The same with an empty `PATH` entry and `DIR` holding it.
#[test]
fn posix_spawnp_after_a_chdir_action_with_a_relative_path_entry_is_checked() {
    let dir = TempDir::new("execreview2");
    let launch = compile_c(
        &dir,
        "exec_review.c",
        REVIEW_LAUNCH_C,
        "exec-review",
        &["gcc", "-O1", "-pthread"],
        &[],
    );
    let bin = dir.path().join("mifshim-review2-bin");
    std::fs::create_dir(&bin).unwrap();
    let prog = compile_c(
        &dir,
        "static_ran.c",
        "#include <stdio.h>\nint main(void) { puts(\"static-ran\"); return 0; }\n",
        "mifshim-review2-bin/static-prog",
        &["gcc", "-static", "-O1"],
        &[],
    );
    assert!(prog.starts_with(&*dir.path().to_string_lossy()));
    let d = s(dir.path().to_path_buf());
    let bin_dir = s(bin.clone());
    for (path, chdir) in [
        (format!("mifshim-review2-bin:{PATH}"), d.as_str()),
        (format!(":{PATH}"), bin_dir.as_str()),
    ] {
        let argv = [launch.as_str(), "spawnp-chdir", chdir, "static-prog"];
        ran_natively_refused_preloaded(
            &argv,
            &path,
            "a static program found by the child's PATH search after its chdir",
        );
    }
}

/// `posix_spawn(SCRIPT)` with `addchdir_np(DIR)`, `DIR/scr` a script `#!sub/interp` and
/// `DIR/sub/interp` a static program, the launcher's directory without `sub/interp`:
/// the kernel resolves the interpreter in the child's directory, `DIR`. Under the
/// preload without a mifrun it must be refused; measured 2026-12-06: the static
/// interpreter ran (`static-ran`, `status=0`) for `scr` and for `DIR/scr`, with this
/// stub and with the one before db43716 (an `execve` of `./scr` from `DIR` is refused).
#[test]
fn posix_spawn_after_a_chdir_action_of_a_script_with_a_relative_interpreter_is_checked() {
    let dir = TempDir::new("execreview2");
    let launch = compile_c(
        &dir,
        "exec_review.c",
        REVIEW_LAUNCH_C,
        "exec-review",
        &["gcc", "-O1", "-pthread"],
        &[],
    );
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    compile_c(
        &dir,
        "static_ran.c",
        "#include <stdio.h>\nint main(void) { puts(\"static-ran\"); return 0; }\n",
        "sub/interp",
        &["gcc", "-static", "-O1"],
        &[],
    );
    let script = dir.write("scr", "#!sub/interp\n");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let d = s(dir.path().to_path_buf());
    for target in ["scr", script.as_str()] {
        let argv = [launch.as_str(), "spawn-chdir", d.as_str(), target];
        ran_natively_refused_preloaded(
            &argv,
            PATH,
            &format!("{target}: a static interpreter found in the child's directory"),
        );
    }
}

/// `execveat(AT_FDCWD, DIR/scr, AT_SYMLINK_NOFOLLOW)`, `scr` being `#!DIR/interp-link`,
/// `interp-link` a symbolic link to a static program: the kernel runs it (the flag is
/// about `scr` itself). Under the preload without a mifrun it must be refused;
/// measured 2026-12-06: the static program ran (`static-ran`), with this stub and with
/// the one before db43716 (without the flag it is refused).
#[test]
fn execveat_nofollow_of_a_script_whose_interpreter_is_a_link_is_checked() {
    let dir = TempDir::new("execreview2");
    let launch = build_launcher(&dir);
    let prog = compile_c(
        &dir,
        "static_ran.c",
        "#include <stdio.h>\nint main(void) { puts(\"static-ran\"); return 0; }\n",
        "static-ran",
        &["gcc", "-static", "-O1"],
        &[],
    );
    let link = dir.path().join("interp-link");
    std::os::unix::fs::symlink(&prog, &link).unwrap();
    let script = dir.write("scr", &format!("#!{}\n", s(link)));
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    ran_natively_refused_preloaded(
        &[&launch, "execveat-nofollow", "0", "0", &script],
        PATH,
        "a script's interpreter behind a link, exec'ed with AT_SYMLINK_NOFOLLOW",
    );
}

/// `execveat(open(D), "scr", 0)` from the directory `C`, `D/scr` being `#!sub/interp`,
/// `C/sub/interp` a static program and `D/sub/interp` missing: the kernel opens the
/// interpreter relative to the current directory (`C`) and runs it. Under the preload
/// without a mifrun it must be refused; measured 2026-12-06: it ran (`static-ran`), with
/// this stub and with the one before db43716.
#[test]
fn execveat_of_a_script_with_a_relative_interpreter_is_checked_in_the_current_directory() {
    let dir = TempDir::new("execreview2");
    let launch = build_launcher(&dir);
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    compile_c(
        &dir,
        "static_ran.c",
        "#include <stdio.h>\nint main(void) { puts(\"static-ran\"); return 0; }\n",
        "sub/interp",
        &["gcc", "-static", "-O1"],
        &[],
    );
    let script = dir.write("d/scr", "#!sub/interp\n");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let d = s(dir.path().join("d"));
    // The launcher run from `C` (the test directory) by a shell's `cd`.
    let c = s(dir.path().to_path_buf());
    let line = format!("cd {c} && exec {launch} execveat-at {d} 0 scr");
    // The shell (dash, glibc) is preloaded too and execs the launcher: steered.
    ran_natively_refused_preloaded(
        &["/bin/sh", "-c", line.as_str()],
        PATH,
        "execveat by dirfd of a script with a relative interpreter",
    );
}

/// `execvp(NAME)` from a process whose real uid (nobody) is not its effective one
/// (root), `NAME` a static program of mode 0700 owned by root in a `PATH` directory:
/// the kernel's exec checks the effective uid and runs it; the hook's `PATH` probe
/// (`faccessat`, the real uid) found it not executable, found nothing, and left the
/// call to glibc's `execvp`, which ran it past every check (found by reading in this
/// review; measured 2026-12-06 with the stub before: `static-ran`). Now the probe asks
/// for the effective ids (`faccessat2(AT_EACCESS)`), and a search that finds nothing
/// fails with execvp's errno instead of being left to the C library.
#[test]
fn execvp_with_real_and_effective_uids_apart_checks_what_the_kernel_runs() {
    // SAFETY: geteuid has no arguments and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test needs root (setreuid to nobody with root kept effective)"
    );
    let dir = TempDir::new("execreview2");
    let launch = build_launcher(&dir);
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let prog = compile_c(
        &dir,
        "static_ran.c",
        "#include <stdio.h>\nint main(void) { puts(\"static-ran\"); return 0; }\n",
        "bin/mifshim-root-only",
        &["gcc", "-static", "-O1"],
        &[],
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o700)).unwrap();
    // nobody must reach the directories for nothing else to differ.
    for d in [dir.path().to_path_buf(), bin.clone()] {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!("{}:{PATH}", s(bin));
    ran_natively_refused_preloaded(
        &[&launch, "reuid-execvp", "0", "0", "mifshim-root-only"],
        &path,
        "a static program the effective uid may run",
    );
}
