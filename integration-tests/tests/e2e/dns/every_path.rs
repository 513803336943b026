//! Issue 9 (items 7, 8, 18 and the re-entrant resolver): the lookups glibc makes without
//! `getaddrinfo` (the `res_*` family, `getaddrinfo_a`, reverse lookups, local names) are
//! answered over the chosen link or fail, malformed names fail at once as glibc fails
//! them, and a lookup left by `siglongjmp` leaves nothing behind. Each test is named after
//! what broke.

use super::*;

const RES_C: &str = include_str!("c/res.c");
const GAIA_C: &str = include_str!("c/gaia.c");
const JMP_C: &str = include_str!("c/jmp.c");

/// Compiles the C probe `src` as `dir/name`.
fn build_c(dir: &TempDir, name: &str, src: &str) -> String {
    let c = dir.write(&format!("{name}.c"), src);
    let bin = dir.path().join(name).to_string_lossy().into_owned();
    Cmd::new(
        None,
        &strs(&[
            "gcc",
            "-Wall",
            "-o",
            &bin,
            &c,
            "-lresolv",
            "-lanl",
            "-lpthread",
        ]),
    )
    .run()
    .assert_ok();
    bin
}

/// `mifrun --via wlan0 [--dns DNS6] -- PROG…`: with IPv6 the queries themselves are IPv6.
fn via_wlan0(fam: Fam, prog: &[&str]) -> Vec<String> {
    let mut argv = strs(&[&s(mifrun()), "--via", "wlan0"]);
    if fam.v6() {
        argv.extend(strs(&["--dns", DNS6]));
    }
    argv.push("--".into());
    argv.extend(strs(prog));
    argv
}

fn who(fam: Fam, uplink: &str) -> &'static str {
    if fam.v6() { who6(uplink) } else { who4(uplink) }
}

/// Asserts that `out` has the line `want`.
#[track_caller]
fn has_line(out: &Out, want: &str) {
    assert!(
        out.stdout.lines().any(|l| l.trim() == want),
        "expected the line `{want}`:{}",
        out.dump()
    );
}

const RES_OPS: [&str; 11] = [
    "query",
    "search",
    "querydomain",
    "send",
    "nquery",
    "nsearch",
    "nquerydomain",
    "nsend",
    "old_query",
    "old_search",
    "old_send",
];

/// Every `res_*` call of the probe answered by `uplink`'s server, NXDOMAIN as HOST_NOT_FOUND.
#[track_caller]
fn assert_res_answers(out: &Out, fam: Fam, uplink: &str) {
    out.assert_ok();
    for op in RES_OPS {
        has_line(out, &format!("{op} {}", who(fam, uplink)));
    }
    has_line(out, "nxdomain h_errno=1");
}

both!(
    /// Item 7: res_query, res_search, res_querydomain, res_send, their res_n* forms and the
    /// __res_* names older binaries link were glibc's own: they asked eth0's server.
    res_family_asked_the_default_links_server, |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("res");
        let bin = build_c(&dir, "res", RES_C);
        let t = if fam.v6() { "AAAA" } else { "A" };
        let argv = via_wlan0(fam, &[&bin, t, "who.mif.test", "who", "mif.test"]);
        let (out, counts) = sniffed(&tb, tb.cmd(&argv));
        assert_res_answers(&out, fam, "wlan0");
        assert_only(&counts, "wlan0");
        assert_asked_only(&tb, "wlan0", "who.mif.test");
    }
);

/// Item 7, with `[dns] redirect = true` and an unreachable system server: the res_* calls
/// still asked glibc's servers by the default route.
#[test]
fn res_family_with_redirect_asked_the_default_links_server() {
    let tb = Testbed::up();
    let dir = TempDir::new("res-redir");
    tb.set_host_etc("resolv.conf", "nameserver 192.0.2.53\nsearch mif.test\n");
    let pol = dir.write(
        "policy.toml",
        &format!(
            "via = [\"wlan0\"]\n\n[interfaces.wlan0]\ndns = [\"{DNS4}\"]\n\n[dns]\nredirect = true\n"
        ),
    );
    let bin = build_c(&dir, "res", RES_C);
    let a = strs(&[&bin, "A", "who.mif.test", "who", "mif.test"]);
    let (out, counts) = sniffed(&tb, tb.cmd(&mifrun_policy_args(&pol, &a)));
    assert_res_answers(&out, Fam::V4, "wlan0");
    assert_only(&counts, "wlan0");
    assert_asked_only(&tb, "wlan0", "who.mif.test");
}

both!(
    /// Item 7: getaddrinfo_a (GAI_WAIT, GAI_NOWAIT with a signal or a thread) ran glibc's
    /// own lookups in glibc's helper threads: eth0's server answered.
    getaddrinfo_a_asked_the_default_links_server, |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("gaia");
        let bin = build_c(&dir, "gaia", GAIA_C);
        let f = if fam.v6() { "6" } else { "4" };
        let (out, counts) = sniffed(&tb, tb.cmd(&via_wlan0(fam, &[&bin, f, "who.mif.test"])));
        out.assert_ok();
        let w = who(fam, "wlan0");
        for l in [
            "wait rc 0".to_string(),
            format!("wait {w}"),
            "nowait rc 0".into(),
            format!("signal {w}"),
            "signal-nope error -2".into(),
            "signal value 7".into(),
            "cancel done 1".into(),
            "thread rc 0".into(),
            format!("thread {w}"),
            "thread value 9".into(),
        ] {
            has_line(&out, &l);
        }
        assert_only(&counts, "wlan0");
        assert_asked_only(&tb, "wlan0", "who.mif.test");
    }
);

const PY_NAMEINFO: &str = r#"
import socket, sys
for a in sys.argv[1:]:
    for flags, tag in ((0, 'any'), (socket.NI_NAMEREQD, 'namereqd')):
        try:
            print(a, tag, socket.getnameinfo((a, 80), flags)[0])
        except socket.gaierror as e:
            print(a, tag, 'error', e.errno)
    try:
        print(a, 'byaddr', socket.gethostbyaddr(a)[0])
    except socket.herror as e:
        print(a, 'byaddr', 'herror', e.errno)
"#;

/// Item 8: getnameinfo and gethostbyaddr of ::1 and 127.0.0.5 went to glibc, which sent
/// PTR queries for what /etc/hosts does not list out of eth0. They are answered from
/// /etc/hosts or in numeric form, without any packet.
#[test]
fn reverse_lookup_of_loopback_sent_ptr_queries_out_of_eth0() {
    let tb = Testbed::up();
    let (out, counts) = sniffed(
        &tb,
        tb.cmd(&mifrun_args(
            "wlan0",
            &py(PY_NAMEINFO, &["::1", "127.0.0.5", "127.0.0.1"]),
        )),
    );
    out.assert_ok();
    for l in [
        "::1 any localhost",
        "::1 namereqd localhost",
        "::1 byaddr localhost",
        "127.0.0.5 any 127.0.0.5",
        "127.0.0.5 namereqd error -2",
        "127.0.0.5 byaddr herror 1",
        "127.0.0.1 any localhost",
        "127.0.0.1 byaddr localhost",
    ] {
        has_line(&out, l);
    }
    assert_silent(&counts);
}

both!(
    /// Item 8: a reverse lookup of one of the host's own addresses (not in /etc/hosts) went to
    /// glibc: its PTR query left by eth0. It is asked of the chosen link's server.
    reverse_lookup_of_own_address_sent_ptr_query_out_of_eth0, |fam| {
        let tb = Testbed::up();
        let own = host_addr("wlan0", fam.v6());
        let (out, counts) = sniffed(&tb, tb.cmd(&mifrun_args("wlan0", &py(PY_NAMEINFO, &[own]))));
        out.assert_ok();
        // wlan0's dnsmasq knows no such PTR (it refuses: EAI_AGAIN, TRY_AGAIN); what
        // matters is who was asked.
        assert_eq!(out.stdout.lines().count(), 3, "{}", out.dump());
        assert_none_on(&counts, &["eth0", "wwan0"]);
        let ip: std::net::IpAddr = own.parse().unwrap();
        let rev = match ip {
            std::net::IpAddr::V4(v4) => {
                let o = v4.octets();
                format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
            }
            std::net::IpAddr::V6(v6) => {
                let mut s = String::new();
                for b in v6.octets().iter().rev() {
                    s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
                }
                s + "ip6.arpa"
            }
        };
        assert_asked_only(&tb, "wlan0", &rev);
    }
);

both!(
    /// Item 8: gethostbyaddr (not hooked) asked eth0's server for the PTR of the service
    /// address; it goes over wlan0 like getnameinfo.
    gethostbyaddr_asked_the_default_links_server, |fam| {
        let tb = Testbed::up();
        let code = "import socket, sys; print(socket.gethostbyaddr(sys.argv[1])[0])";
        let (out, counts) = sniffed(&tb, tb.cmd(&mifrun_args("wlan0", &py(code, &[fam.svc()]))));
        out.assert_ok();
        assert_eq!(out.stdout.trim(), "web-wlan0.mif.test", "{}", out.dump());
        assert_only(&counts, "wlan0");
    }
);

/// Item 8: the host's own name, missing from /etc/hosts, was left to glibc, which asked
/// eth0's server (with the search domain). It is answered locally, without a packet.
#[test]
fn own_host_name_missing_from_hosts_asked_eth0() {
    let tb = Testbed::up();
    let code = "import socket\nn = socket.gethostname()\n\
                print(sorted({r[4][0] for r in socket.getaddrinfo(n, 80, type=socket.SOCK_STREAM)}))";
    let (out, counts) = sniffed(&tb, tb.cmd(&mifrun_args("wlan0", &py(code, &[]))));
    out.assert_ok();
    assert!(
        out.stdout.contains(host_addr("wlan0", false)),
        "expected the host's own addresses:{}",
        out.dump()
    );
    assert_silent(&counts);
}

/// Item 8: a `.local` name was left to glibc, which asked eth0's server. It is asked of
/// the chosen link's server (and nothing else).
#[test]
fn dot_local_name_asked_eth0() {
    let tb = Testbed::up();
    let (out, counts) = sniffed(
        &tb,
        tb.cmd(&via("wlan0", &["getent", "ahosts", "printer.local"])),
    );
    assert_ne!(
        out.code(),
        0,
        "no server knows printer.local:{}",
        out.dump()
    );
    assert_none_on(&counts, &["eth0", "wwan0"]);
    assert_asked_only(&tb, "wlan0", "printer.local");
}

/// getaddrinfo of each argument (as bytes: Python's str path would apply IDNA first);
/// prints `NAME errno MS` or `NAME ADDR MS`.
const PY_GAI_EACH: &str = r#"
import os, socket, sys, time
for a in sys.argv[1:]:
    t = time.monotonic()
    try:
        r = socket.getaddrinfo(os.fsencode(a), 80, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    except socket.gaierror as e:
        r = 'error %d' % e.errno
    print(a, r, int((time.monotonic() - t) * 1000))
"#;

/// Item 18: malformed names (empty labels, a label over 63 bytes, a name over 255, a double
/// trailing dot, characters res_hnok refuses) were sent to the DNS server and came back
/// EAI_AGAIN after the time-out; glibc fails them with EAI_NONAME at once, asking nobody.
#[test]
fn malformed_names_were_sent_and_timed_out() {
    let tb = Testbed::up();
    let long_label = format!("{}.mif.test", "a".repeat(64));
    let long_name = format!("{}mif.test", "abc.".repeat(64));
    let bad = [
        "who..mif.test",
        ".who.mif.test",
        long_label.as_str(),
        long_name.as_str(),
        "who.mif.test..",
        "0.1.1.~1",
        "1+.1.1.1",
        "::1q",
        "::1::2",
        "-who.mif.test",
        "wh\\.o.mif.test",
    ];
    let (out, counts) = sniffed(&tb, tb.cmd(&mifrun_args("wlan0", &py(PY_GAI_EACH, &bad))));
    out.assert_ok();
    for (name, line) in bad.iter().zip(out.stdout.lines()) {
        let w: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            &w[..w.len() - 1],
            [*name, "error", "-2"],
            "{name} must fail with EAI_NONAME:{}",
            out.dump()
        );
        let ms: u64 = w[w.len() - 1].parse().unwrap();
        assert!(ms < 200, "{name} took {ms} ms:{}", out.dump());
    }
    assert_eq!(out.stdout.lines().count(), bad.len(), "{}", out.dump());
    assert_silent(&counts);
}

/// Item 18: an escaped label (`\119ho` is `who`) failed where glibc resolves it, and a
/// single trailing dot (an absolute name) resolves too: over wlan0.
#[test]
fn escaped_label_failed_where_glibc_resolves_it() {
    let tb = Testbed::up();
    let names = ["\\119ho.mif.test", "who.mif.test.", "WHO.mif.test"];
    let (out, counts) = sniffed(&tb, tb.cmd(&mifrun_args("wlan0", &py(PY_GAI_EACH, &names))));
    out.assert_ok();
    for (name, line) in names.iter().zip(out.stdout.lines()) {
        let w: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(w[..2], [*name, who4("wlan0")], "{}", out.dump());
    }
    assert_only(&counts, "wlan0");
    assert_asked_only(&tb, "wlan0", "who.mif.test");
}

/// Item 4: alarm() + siglongjmp() out of a getaddrinfo waiting on a silent server; the next
/// getaddrinfo and TCP connect of that thread must still be steered (wlan0's server and
/// upstream answer, nothing on the other uplinks).
#[test]
fn siglongjmp_out_of_getaddrinfo_left_the_thread_unsteered() {
    let tb = Testbed::up();
    let dir = TempDir::new("jmp");
    let bin = build_c(&dir, "jmp", JMP_C);
    let pol = dir.write(
        "policy.toml",
        &format!(
            "via = [\"wlan0\"]\n\n[interfaces.wlan0]\ndns = [\"{DNS_SILENT}\", \"{DNS4}\"]\n\n\
             [dns]\ntimeout_ms = 1500\nattempts = 1\n"
        ),
    );
    let a = strs(&[&bin, "first.mif.test", "who.mif.test", "80"]);
    let (out, counts) = sniffed(&tb, tb.cmd(&mifrun_policy_args(&pol, &a)));
    out.assert_answered_by("wlan0");
    has_line(&out, "first interrupted");
    has_line(&out, &format!("second {}", who4("wlan0")));
    assert_only(&counts, "wlan0");
    assert_asked_only(&tb, "wlan0", "who.mif.test");
    assert_asked_nobody(&tb, "first.mif.test");
}
