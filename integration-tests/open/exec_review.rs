//! Defects of the stub's exec hooks found by a hostile review (wt-execreview): each test
//! asserts the correct behaviour and fails on the branch reviewed. Parked, not
//! compiled: see `integration-tests/open/README.md` (the FIFO, `E2BIG` and scrubbed
//! environment tests were fixed and moved to `tests/e2e/exec_review.rs`).
//!
//! - an exec in a `clone(CLONE_VM|CLONE_VFORK)` child on an 8 KiB stack overflows it in
//!   the hook (glibc's own `execve` needs far less);
//!
//! The launcher is `exec_review.c` (dynamic glibc: preloaded); the static program is
//! `supervise_review.c` (`plain` mode: one datagram to the service, `control
//! upstream=NAME`), built with `gcc -static`.

use super::*;

const REVIEW_C: &str = include_str!("supervise_review.c");
const LAUNCH_C: &str = include_str!("exec_review.c");

/// The static reproducer (`gcc -static -pthread`), as `dir/NAME`.
fn build_static(dir: &TempDir, name: &str) -> String {
    let file = dir.write("supervise_review.c", REVIEW_C);
    let bin = dir.path().join(name).to_string_lossy().into_owned();
    let argv = strs(&["gcc", "-static", "-O1", "-pthread", "-o", &bin, &file]);
    Cmd::new(None, &argv)
        .timeout(Duration::from_secs(120))
        .run()
        .assert_ok();
    bin
}

/// The launcher (dynamic glibc: preloaded).
fn build_launcher(dir: &TempDir) -> String {
    let file = dir.write("exec_review.c", LAUNCH_C);
    let bin = dir
        .path()
        .join("exec-review")
        .to_string_lossy()
        .into_owned();
    let argv = strs(&["gcc", "-O1", "-o", &bin, &file]);
    Cmd::new(None, &argv)
        .timeout(Duration::from_secs(120))
        .run()
        .assert_ok();
    bin
}

fn fam_arg(fam: Fam) -> &'static str {
    if fam.v6() { "6" } else { "4" }
}

fn chmod_x(path: &str) {
    Cmd::new(None, &["chmod", "+x", path]).run().assert_ok();
}

/// The launcher under plain `LD_PRELOAD` (steered: `MIFSHIM_VIA`), and without it.
fn plain_and_preloaded(launch: &str, args: &[&str]) -> (Out, Out) {
    let mut argv = vec![launch];
    argv.extend_from_slice(args);
    let plain = Cmd::new(None, &argv).timeout(Duration::from_secs(20)).run();
    let hooked = Cmd::new(None, &argv)
        .env("LD_PRELOAD", s(shim_lib()))
        .env("MIFSHIM_VIA", "wlan0")
        .timeout(Duration::from_secs(20))
        .run();
    (plain, hooked)
}

/// A `clone(CLONE_VM|CLONE_VFORK)` child on its own 8 KiB stack (guard page below)
/// that `execve`s `/bin/true`: fine without the preload; the hook's stack buffers
/// (4 KiB heads, a 4 KiB `PATH` buffer, 2 KiB argument arrays…) overflow it (seen:
/// SIGSEGV up to 16 KiB in the debug build, 12 KiB in the release build).
#[test]
fn an_exec_in_a_clone_child_with_an_8k_stack_does_not_overflow_it() {
    let dir = TempDir::new("execreview");
    let launch = build_launcher(&dir);
    let (plain, hooked) = plain_and_preloaded(&launch, &["clone", "8", "/bin/true"]);
    assert!(plain.stdout.contains("exited=0"), "{}", plain.dump());
    assert!(
        hooked.stdout.contains("exited=0"),
        "the clone child under the preload:{}",
        hooked.dump()
    );
}


