//! What a systemd unit's sandboxing does to mifrun (README "systemd"), emulated where
//! systemd is not PID 1 (as on the test machine): `RestrictAddressFamilies=` without
//! `AF_NETLINK` by a seccomp filter that fails `socket(AF_NETLINK, …)` with
//! `EAFNOSUPPORT`, exactly what systemd installs; `NoNewPrivileges=` by `setpriv
//! --no-new-privs`; `DynamicUser=` by an unprivileged uid without a home.

use integration_tests::*;
use std::time::Duration;

/// `nonetlink PROGRAM ARGS…`: `no_new_privs`, then a seccomp filter that answers
/// `socket(AF_NETLINK, …)` and `socketpair(AF_NETLINK, …)` with EAFNOSUPPORT (as
/// `RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX` does), then exec.
const NONETLINK: &str = r#"
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#endif
int main(int argc, char **argv) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 1, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socketpair, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_NETLINK, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EAFNOSUPPORT),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof f / sizeof f[0], f};
    if (argc < 2 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
        perror("nonetlink");
        return 125;
    }
    if (socket(AF_NETLINK, SOCK_RAW, 0) >= 0 || errno != EAFNOSUPPORT) {
        fprintf(stderr, "nonetlink: the filter does not deny AF_NETLINK\n");
        return 125;
    }
    execvp(argv[1], argv + 1);
    perror(argv[1]);
    return 127;
}
"#;

fn compile_nonetlink(dir: &TempDir) -> String {
    let file = dir.write("nonetlink.c", NONETLINK);
    let bin = dir.path().join("nonetlink").to_string_lossy().into_owned();
    Cmd::new(None, &["gcc", "-O1", "-o", bin.as_str(), file.as_str()])
        .timeout(Duration::from_secs(120))
        .run()
        .assert_ok();
    bin
}

fn s(p: std::path::PathBuf) -> String {
    p.to_string_lossy().into_owned()
}

both!(
    /// Without AF_NETLINK the shim cannot read the interfaces' state: it must fail
    /// closed (the connection refused, nothing on any uplink), never run unsteered.
    restricted_address_families_without_netlink_fail_closed,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("nonl");
        let nonetlink = compile_nonetlink(&dir);
        let m = s(mifrun());
        let url = fam.url(80);
        let sn = tb.sniff_all();
        let out = tb
            .cmd(&[
                nonetlink.as_str(),
                m.as_str(),
                "--via",
                "wlan0",
                "--",
                "curl",
                "-s",
                "-m",
                "5",
                url.as_str(),
            ])
            .run();
        let counts = sn.stop();
        assert_none_on(&counts, &UPLINKS);
        assert!(!out.ok(), "curl succeeded without netlink:{}", out.dump());
        assert!(out.stdout.is_empty(), "{}", out.dump());
        // curl's connect was refused (exit 7), and the shim said why.
        assert_eq!(out.code(), 7, "{}", out.dump());
        assert!(
            out.stderr
                .contains("cannot read the interface list from the kernel")
                && out.stderr.contains("every interface counts as unusable"),
            "{}",
            out.dump()
        );
        // Under the supervisor too (forced: curl is dynamic).
        let sn = tb.sniff_all();
        let out = tb
            .cmd(&[
                nonetlink.as_str(),
                m.as_str(),
                "--via",
                "wlan0",
                "--supervise",
                "--",
                "curl",
                "-s",
                "-m",
                "5",
                url.as_str(),
            ])
            .run();
        let counts = sn.stop();
        assert_none_on(&counts, &UPLINKS);
        assert!(!out.ok(), "curl succeeded without netlink:{}", out.dump());
        assert!(out.stdout.is_empty(), "{}", out.dump());
        // The supervisor needs the interfaces before it starts: mifrun refuses, runs
        // nothing (exit 2) and says why.
        assert_eq!(out.code(), 2, "{}", out.dump());
        assert!(
            out.stderr.contains("cannot read the interfaces (rtnetlink)")
                && out.stderr.contains("nothing was run"),
            "{}",
            out.dump()
        );
        // The same request with the filter but without the shim leaves by eth0: the
        // filter itself does not stop it.
        let out = expect_via(
            &tb,
            tb.cmd(&[nonetlink.as_str(), "curl", "-s", "-m", "5", url.as_str()]),
            "eth0",
        );
        out.assert_ok();
    }
);

both!(
    /// `NoNewPrivileges=yes` (and `DynamicUser=`, which implies it): the preload and
    /// the supervisor both work under no_new_privs, as an unprivileged user.
    no_new_privileges_and_a_dynamic_user_still_steer,
    |fam| {
        use std::os::unix::fs::PermissionsExt;
        let tb = Testbed::up();
        let m = s(mifrun());
        // The build tree must be reachable by the unprivileged user.
        let mut p = mifrun();
        while let Some(parent) = p.parent() {
            let mode = std::fs::metadata(parent).unwrap().permissions().mode();
            assert!(
                mode & 0o005 == 0o005,
                "{} is not readable by other users (mode {mode:o})",
                parent.display()
            );
            p = parent.to_path_buf();
        }
        let url = fam.url(80);
        for extra in [&[][..], &["--supervise"][..]] {
            let mut argv: Vec<String> = [
                "setpriv",
                "--no-new-privs",
                "--reuid=61234",
                "--regid=61234",
                "--clear-groups",
                "env",
                "-u",
                "HOME",
                m.as_str(),
                "--via",
                "wlan0",
            ]
            .iter()
            .map(|a| a.to_string())
            .collect();
            argv.extend(extra.iter().map(|a| a.to_string()));
            argv.extend(["--", "curl", "-s", "-m", "5", url.as_str()].map(String::from));
            let out = expect_via(&tb, tb.cmd(&argv), "wlan0");
            out.assert_ok();
        }
        // --guard needs root: refused before anything runs (exit 2), with the reason.
        let out = tb
            .cmd(&[
                "setpriv",
                "--no-new-privs",
                "--reuid=61234",
                "--regid=61234",
                "--clear-groups",
                m.as_str(),
                "--guard",
                "--via",
                "wlan0",
                "--",
                "curl",
                "-s",
                "-m",
                "5",
                url.as_str(),
            ])
            .run();
        assert_eq!(out.code(), 2, "{}", out.dump());
        assert!(out.stdout.is_empty(), "{}", out.dump());
        assert!(out.stderr.contains("--guard"), "{}", out.dump());
    }
);
