//! Hostile review (2026-12-03) of e26d290 (a connected UDP socket's datagram whose
//! control data names a source is checked against the socket's device binding) and
//! 18612fd (the exec hooks and mifrun's inspection follow a `#!` chain of scripts).
//! Each test asserts the correct behaviour; see each one's comment for what was seen
//! on wt-rev (all of them pass since f396566 and 8f68d95). Failing on wt-rev (another link's source leaves by wlan0, or an exec's
//! error changes): `connected_af_unspec_name_*` (preload sendmsg+sendmmsg, supervisor
//! sendmsg), `*connected_long_control_*` (preload >216 B, supervisor >4096 B),
//! `passed_connected_socket_*` (preload: SCM_RIGHTS, inherited fd),
//! `*racing_connected_control_*` (preload fast path, supervisor CONTINUE),
//! `a_chain_of_six_scripts_*` (ELOOP -> rc 126), `a_chain_through_a_non_executable_*`
//! (EACCES -> rc 126), `mifrun_check_of_a_chain_*`. The rest pass (guards).

use super::pktinfo_review::per_link;
use super::*;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Python prelude: `mmsg` (sendmmsg through ctypes; a `bytes` destination is a raw
/// name), `rawmsg` (sendmsg of a hand-made msghdr: any name bytes, any control bytes),
/// `cmsg`, `pk6`, `pi6`, `pi4`, `err`, the testbed's addresses.
const PRE: &str = r#"import ctypes, socket, struct, errno, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
S6 = ('2001:db8:ff::10', 9000); S4 = ('203.0.113.10', 9000)
E6 = '2001:db8:10::2'; W6 = '2001:db8:20::2'; E4 = '198.51.100.2'; W4 = '198.51.100.66'
def cmsg(level, ty, data, clen=None):
    n = 16 + len(data) if clen is None else clen
    b = struct.pack('@Qii', n, level, ty) + data
    return b + bytes((-len(b)) % 8)
def pi6(a, idx=0):
    return socket.inet_pton(socket.AF_INET6, a) + struct.pack('@I', idx)
def pi4(a, idx=0):
    return struct.pack('@i', idx) + socket.inet_aton(a) + bytes(4)
def pk6(a, idx=0):
    return cmsg(socket.IPPROTO_IPV6, 50, pi6(a, idx))
UNSPEC6 = struct.pack('<H', 0) + bytes(26)
def err(f):
    try:
        f(); return 'sent'
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
def sa(dest):
    if dest is None: return None
    if isinstance(dest, bytes): return dest
    if ':' in dest[0]:
        return struct.pack('<H', socket.AF_INET6) + struct.pack('>H', dest[1]) + bytes(4) + socket.inet_pton(socket.AF_INET6, dest[0]) + bytes(4)
    return struct.pack('<H', socket.AF_INET) + struct.pack('>H', dest[1]) + socket.inet_aton(dest[0]) + bytes(8)
KEEP = []
def _buf(b):
    if not b: return None
    x = ctypes.create_string_buffer(b, len(b)); KEEP.append(x); return x
def _addr(x): return ctypes.addressof(x) if x is not None else 0
def _hdr(name, data, ctl):
    nb, db, cb = _buf(name), _buf(data), _buf(ctl)
    iov = _buf(struct.pack('@QQ', _addr(db), len(data)))
    return struct.pack('@QI4xQQQQi4x', _addr(nb), len(name) if name else 0, _addr(iov), 1, _addr(cb), len(ctl) if ctl else 0, 0)
def mmsg(s, msgs, flags=0):
    arr = (ctypes.c_char * (64 * len(msgs)))()
    for i, (dest, data, ctl) in enumerate(msgs):
        ctypes.memmove(ctypes.addressof(arr) + 64 * i, _hdr(sa(dest), data, ctl) + bytes(8), 64)
    r = libc.sendmmsg(s.fileno(), arr, len(msgs), flags)
    if r < 0:
        e = ctypes.get_errno(); raise OSError(e, 'sendmmsg')
    return r
def rawmsg(s, name, data, ctl, flags=0):
    h = _buf(_hdr(name, data, ctl))
    r = libc.sendmsg(s.fileno(), h, flags)
    if r < 0:
        e = ctypes.get_errno(); raise OSError(e, 'sendmsg')
    return r
def disconnect(s):
    a = _buf(UNSPEC6 if s.family == socket.AF_INET6 else struct.pack('<H', 0) + bytes(14))
    return libc.connect(s.fileno(), a, len(a.raw))
def up(s):
    try: return s.recv(300).decode().split()[0]
    except socket.timeout: return 'timeout'
"#;

#[derive(Clone, Copy)]
enum Mode<'a> {
    Preload,
    Supervise,
    Policy(&'a str),
    Native,
}

fn run_py(tb: &Testbed, body: &str, mode: Mode<'_>) -> (Out, BTreeMap<String, Counts>) {
    let full = format!("{PRE}\n{body}");
    let prog = strs(&["python3", "-c", &full]);
    let args = match mode {
        Mode::Preload => mifrun_args("wlan0", &prog),
        Mode::Policy(p) => mifrun_policy_args(p, &prog),
        Mode::Native => prog,
        Mode::Supervise => {
            let mut a = strs(&[&s(mifrun()), "--supervise", "--via", "wlan0", "--"]);
            a.extend(prog);
            a
        }
    };
    let sn = tb.sniff_all();
    let out = tb.cmd(&args).timeout(Duration::from_secs(60)).run();
    let counts = sn.stop();
    eprintln!("links: {}\n{}", per_link(&counts), out.dump());
    (out, counts)
}

/// The program ran, its answers were `want` (refusals), and nothing went out: no
/// packet on any uplink, none with eth0's source anywhere.
#[track_caller]
fn refused_silently((out, counts): (Out, BTreeMap<String, Counts>), want: &[&str]) {
    out.assert_ok();
    no_eth0_source_elsewhere(&counts);
    assert_eq!(lines(&out), want, "{}", out.dump());
    assert_silent(&counts);
}

fn lines(out: &Out) -> Vec<&str> {
    out.stdout.lines().collect()
}

/// No packet on any uplink carries eth0's own source (v4 or v6) except on eth0.
#[track_caller]
fn no_eth0_source_elsewhere(counts: &BTreeMap<String, Counts>) {
    let e6: IpAddr = "2001:db8:10::2".parse().unwrap();
    let e4: IpAddr = "198.51.100.2".parse().unwrap();
    for (k, c) in counts {
        if k == "eth0" {
            continue;
        }
        let bad: Vec<_> = c
            .pkts
            .iter()
            .filter(|p| p.src == e6 || p.src == e4)
            .collect();
        assert!(bad.is_empty(), "{k} carried eth0's source: {bad:?}");
    }
}

const SUP_C: &str = include_str!("review_1203.c");

/// `review_1203.c MODE` (static) under `mifrun --supervise --via wlan0`.
fn sup_static(tb: &Testbed, mode: &str) -> (Out, BTreeMap<String, Counts>) {
    let dir = TempDir::new("review1203-sup");
    let bin = compile_c(
        &dir,
        "review_1203.c",
        SUP_C,
        "sup",
        &["gcc", "-static", "-O1"],
        &[],
    );
    let mut a = strs(&[
        &s(mifrun()),
        "--supervise",
        "--via",
        "wlan0",
        "--",
        &bin,
        mode,
    ]);
    a.shrink_to_fit();
    let sn = tb.sniff_all();
    let out = tb.cmd(&a).timeout(Duration::from_secs(60)).run();
    let counts = sn.stop();
    eprintln!("links: {}\n{}", per_link(&counts), out.dump());
    (out, counts)
}

// ---------------------------------------------------------------------------------
// e26d290: connected sockets
// ---------------------------------------------------------------------------------

/// An `AF_UNSPEC` `msg_name` on an `AF_INET6` UDP socket is no name to the kernel
/// (`udpv6_sendmsg`: `case AF_UNSPEC: msg_name = NULL`): the datagram goes to the
/// connected peer with the PKTINFO's source. The hook takes a non-null name as a
/// name (`send_dest` None, `m.name()` Some -> `Plan::AsIs`,
/// shim/src/entry/socket.rs:168, and `decide_message`'s `m.name().is_none()`), so the
/// new check is skipped.
const UNSPEC_NAME: &str = r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(2); s.connect(S6)
print(err(lambda: rawmsg(s, UNSPEC6, b'x', pk6(E6))))
print(err(lambda: mmsg(s, [(UNSPEC6, b'y', pk6(E6))])))
"#;

#[test]
fn connected_af_unspec_name_another_links_source_is_refused() {
    let tb = Testbed::up();
    let (out, counts) = run_py(&tb, UNSPEC_NAME, Mode::Preload);
    out.assert_ok();
    assert_eq!(
        lines(&out),
        ["EADDRNOTAVAIL", "EADDRNOTAVAIL"],
        "{}",
        out.dump()
    );
    no_eth0_source_elsewhere(&counts);
    assert_silent(&counts);
}

/// Control data longer than the engine copies (216 bytes) or the supervisor reads
/// (4096): a filler message of a level the kernel skips (`IPPROTO_TCP`, 4096 bytes),
/// then eth0's PKTINFO source, on connected IPv6 and IPv4 sockets. The kernel takes
/// it (optmem_max is far larger). Before the fix all three were `sent` (preload:
/// `Ctl::Unknown` planned as is; supervisor: `read_iov_control`'s ENOBUFS turned into
/// a CONTINUE). On a socket the shim bound, control data that cannot be checked is
/// refused now: ENOBUFS, nothing on the wire.
const LONG_CONTROL: &str = r#"
fill = (socket.IPPROTO_TCP, 1, bytes(4080))
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(2); s.connect(S6)
print(err(lambda: s.sendmsg([b'x'], [fill, (socket.IPPROTO_IPV6, 50, pi6(E6))])))
short = (socket.IPPROTO_TCP, 1, bytes(300))
print(err(lambda: s.sendmsg([b'x'], [short, (socket.IPPROTO_IPV6, 50, pi6(E6))])))
t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); t.settimeout(2); t.connect(S4)
print(err(lambda: t.sendmsg([b'x'], [fill, (socket.IPPROTO_IP, 8, pi4(E4))])))
"#;

#[test]
fn connected_long_control_another_links_source_is_refused() {
    let tb = Testbed::up();
    refused_silently(
        run_py(&tb, LONG_CONTROL, Mode::Preload),
        &["ENOBUFS", "ENOBUFS", "ENOBUFS"],
    );
}

/// An AF_INET6 socket connected to an IPv4-mapped peer: the kernel takes its
/// `IPV6_PKTINFO` (a mapped source) and its `IP_PKTINFO` (`ipi_spec_dst`) both, on
/// the IPv4 path (`ip_cmsg_send(.., allow_ipv6)`). eth0's must be refused, wlan0's sent.
const MAPPED: &str = r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(2); s.connect(('::ffff:203.0.113.10', 9000))
s.send(b'p'); print(up(s))
print(err(lambda: s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, pi6('::ffff:' + E4))])))
print(err(lambda: s.sendmsg([b'x'], [(socket.IPPROTO_IP, 8, pi4(E4))])))
print(err(lambda: mmsg(s, [(None, b'x', cmsg(socket.IPPROTO_IP, 8, pi4(E4)))])))
print(err(lambda: s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, pi6('::ffff:' + W4))]))); print(up(s))
"#;

/// A connected socket (bound to wlan0 by the shim's `connect`) passed by `SCM_RIGHTS`
/// within the process, and inherited by a preloaded child (`pass_fds`): the receiving
/// fd's entry has no `SHIM_BOUND` (received fds are forgotten): before the fix
/// `unnamed_source` answered `AsIs` and eth0's source left by wlan0. A binding found on
/// a received or inherited socket is now checked when it is the policy's interface.
#[test]
fn passed_connected_socket_another_links_source_is_refused() {
    let tb = Testbed::up();
    let body = r#"
import subprocess
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(2); s.connect(S6)
s.send(b'p'); print(up(s))
print('own', err(lambda: s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, pi6(E6))])))
a, b = socket.socketpair()
socket.send_fds(a, [b'f'], [s.fileno()])
_, fds, _, _ = socket.recv_fds(b, 10, 1)
r = socket.socket(fileno=fds[0])
print('scm', err(lambda: r.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, pi6(E6))])))
child = "import socket, errno\nr = socket.socket(fileno=%d)\ntry:\n    r.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, %r)]); print('child sent')\nexcept OSError as e:\n    print('child', errno.errorcode[e.errno])\n" % (s.fileno(), pi6(E6))
sys.stdout.flush()
subprocess.run([sys.executable, '-c', child], pass_fds=[s.fileno()])
"#;
    let (out, counts) = run_py(&tb, body, Mode::Preload);
    out.assert_ok();
    no_eth0_source_elsewhere(&counts);
    assert_eq!(
        lines(&out),
        [
            "upstream=wlan0",
            "own EADDRNOTAVAIL",
            "scm EADDRNOTAVAIL",
            "child EADDRNOTAVAIL"
        ],
        "{}",
        out.dump()
    );
}

#[test]
fn mapped_connected_another_links_source_is_refused() {
    let tb = Testbed::up();
    let (out, counts) = run_py(&tb, MAPPED, Mode::Preload);
    out.assert_ok();
    no_eth0_source_elsewhere(&counts);
    assert_eq!(
        lines(&out),
        [
            "upstream=wlan0",
            "EADDRNOTAVAIL",
            "EADDRNOTAVAIL",
            "EADDRNOTAVAIL",
            "sent",
            "upstream=wlan0"
        ],
        "{}",
        out.dump()
    );
    assert_only(&counts, "wlan0");
}

/// Odd control layouts on a connected socket, each with eth0's source, all taken by
/// the kernel: PKTINFO with an overlong `cmsg_len` (40) in a 40-byte buffer; an
/// unpadded one (`msg_controllen` 36); `IPV6_2292PKTINFO`; a 17-byte filler then the
/// PKTINFO at the next aligned offset; 8 trailing bytes after it.
const ODD: &str = r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(2); s.connect(S6)
P = pi6(E6)
over = struct.pack('@Qii', 40, 41, 50) + P + bytes(4)
unpadded = struct.pack('@Qii', 36, 41, 50) + P
rfc2292 = cmsg(41, 2, P)
filler = struct.pack('@Qii', 17, 6, 1) + b'z' + bytes(7) + cmsg(41, 50, P)
trail = cmsg(41, 50, P) + bytes(8)
for c in (over, unpadded, rfc2292, filler, trail):
    print(err(lambda: rawmsg(s, None, b'x', c)), err(lambda: mmsg(s, [(None, b'y', c)])))
"#;

#[test]
fn connected_odd_cmsg_layouts_another_links_source_is_refused() {
    let tb = Testbed::up();
    refused_silently(
        run_py(&tb, ODD, Mode::Preload),
        &["EADDRNOTAVAIL EADDRNOTAVAIL"; 5],
    );
}

/// The program's own `SO_BINDTODEVICE` (eth0, and wlan0) before `connect`: its own
/// choice, so a source in its control data is the kernel's business — never refused.
const OWN_DEVICE: &str = r#"
for dev, src in (('eth0', E6), ('wlan0', E6), ('wlan0', W6)):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(2)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
    s.connect(S6)
    print(dev, err(lambda: s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, pi6(src))])), err(lambda: mmsg(s, [(None, b'y', pk6(src))])))
"#;

#[test]
fn program_bound_connected_socket_source_is_not_refused() {
    let tb = Testbed::up();
    let (out, _counts) = run_py(&tb, OWN_DEVICE, Mode::Preload);
    out.assert_ok();
    assert_eq!(
        lines(&out),
        ["eth0 sent sent", "wlan0 sent sent", "wlan0 sent sent"],
        "{}",
        out.dump()
    );
}

#[test]
fn supervised_program_bound_connected_socket_source_is_not_refused() {
    let tb = Testbed::up();
    let (out, _counts) = run_py(&tb, OWN_DEVICE, Mode::Supervise);
    out.assert_ok();
    assert_eq!(
        lines(&out),
        ["eth0 sent sent", "wlan0 sent sent", "wlan0 sent sent"],
        "{}",
        out.dump()
    );
}

/// Sockets connected to loopback and to the host's own addresses (direct), with
/// sources in their control data, and one connected to the service first then
/// disconnected (`AF_UNSPEC`, which drops the kernel's device binding) and connected
/// to loopback: the shim's answers must be the kernel's (the same program run
/// without mifrun).
const DIRECT: &str = r#"
l = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); l.bind(('::1', 0)); l.settimeout(2)
o = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); o.bind((W6, 0)); o.settimeout(2)
def got(x):
    try: return x.recv(10).decode()
    except socket.timeout: return 'timeout'
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.connect(l.getsockname())
print('lo', err(lambda: s.sendmsg([b'a'], [(41, 50, pi6('::1'))])), got(l))
print('lo-mm', err(lambda: mmsg(s, [(None, b'b', pk6('::1'))])), got(l))
t = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); t.connect(o.getsockname())
print('own', err(lambda: t.sendmsg([b'c'], [(41, 50, pi6(E6))])), got(o))
print('own-mm', err(lambda: mmsg(t, [(None, b'd', pk6(W6))])), got(o))
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u.settimeout(2); u.connect(S6)
u.send(b'p'); print('svc', up(u).startswith('upstream='))
print('disc', disconnect(u))
print('unnamed', err(lambda: u.sendmsg([b'q'], [(41, 50, pi6(E6))])))
print('relo', err(lambda: u.connect(l.getsockname())))
print('relo-send', err(lambda: u.sendmsg([b'e'], [(41, 50, pi6('::1'))])), got(l))
"#;

#[test]
fn connected_to_loopback_and_own_addresses_with_sources_as_the_kernel_answers() {
    let tb = Testbed::up();
    let (native, _) = run_py(&tb, DIRECT, Mode::Native);
    native.assert_ok();
    let (out, counts) = run_py(&tb, DIRECT, Mode::Preload);
    out.assert_ok();
    no_eth0_source_elsewhere(&counts);
    assert_eq!(lines(&out), lines(&native), "{}", out.dump());
    let (sup, counts) = run_py(&tb, DIRECT, Mode::Supervise);
    sup.assert_ok();
    no_eth0_source_elsewhere(&counts);
    assert_eq!(lines(&sup), lines(&native), "{}", sup.dump());
}

/// connect(S6) -> connect(AF_UNSPEC) (the kernel drops the device binding) ->
/// connect(S6) again: the new binding is the shim's, and eth0's source is refused;
/// wlan0's is sent and answered by wlan0.
const RECONNECT: &str = r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(2); s.connect(S6)
s.send(b'p'); print(up(s))
print('disc', disconnect(s))
s.connect(S6)
print(err(lambda: s.sendmsg([b'x'], [(41, 50, pi6(E6))])))
print(err(lambda: mmsg(s, [(None, b'x', pk6(E6))])))
print(err(lambda: s.sendmsg([b'x'], [(41, 50, pi6(W6))]))); print(up(s))
"#;

#[test]
fn reconnected_after_af_unspec_another_links_source_is_refused() {
    let tb = Testbed::up();
    for mode in [Mode::Preload, Mode::Supervise] {
        let (out, counts) = run_py(&tb, RECONNECT, mode);
        out.assert_ok();
        no_eth0_source_elsewhere(&counts);
        assert_eq!(
            lines(&out),
            [
                "upstream=wlan0",
                "disc 0",
                "EADDRNOTAVAIL",
                "EADDRNOTAVAIL",
                "sent",
                "upstream=wlan0"
            ],
            "{}",
            out.dump()
        );
        assert_only(&counts, "wlan0");
    }
}

/// TCP with an `IPV6_PKTINFO` (eth0's source) in a `sendmsg`: the kernel's TCP ignores
/// it; the request must go (by wlan0) and be answered.
#[test]
fn tcp_sendmsg_with_pktinfo_control_is_answered() {
    let tb = Testbed::up();
    let body = r#"
s = socket.create_connection(('2001:db8:ff::10', 80), timeout=5)
s.sendmsg([b'GET / HTTP/1.0\r\nHost: x\r\n\r\n'], [(41, 50, pi6(E6))])
b = b''
while True:
    d = s.recv(4096)
    if not d: break
    b += d
print(b.decode(errors='replace'))
"#;
    for mode in [Mode::Preload, Mode::Supervise] {
        let (out, counts) = run_py(&tb, body, mode);
        out.assert_ok();
        out.assert_answered_by("wlan0");
        assert_only(&counts, "wlan0");
    }
}

/// A sendmmsg batch on a connected socket mixing unnamed and named messages, the
/// third (unnamed) with eth0's source: the first two go, the call after them fails.
const MIXED: &str = r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(2); s.connect(S6)
msgs = [(None, b'a', b''), (S6, b'b', b''), (None, b'c', pk6(E6)), (None, b'd', b'')]
n = mmsg(s, msgs); print('sent', n)
print(err(lambda: mmsg(s, msgs[n:])))
for _ in range(n): print(up(s))
"#;

#[test]
fn sendmmsg_connected_mixed_named_and_unnamed() {
    let tb = Testbed::up();
    for mode in [Mode::Preload, Mode::Supervise] {
        let (out, counts) = run_py(&tb, MIXED, mode);
        out.assert_ok();
        no_eth0_source_elsewhere(&counts);
        assert_eq!(
            lines(&out),
            [
                "sent 2",
                "EADDRNOTAVAIL",
                "upstream=wlan0",
                "upstream=wlan0"
            ],
            "{}",
            out.dump()
        );
        assert_only(&counts, "wlan0");
    }
}

/// `foreign_bind = "keep"`: a connected socket's eth0 source is kept (sent), and the
/// device binding holds it to wlan0.
#[test]
fn foreign_bind_keep_connected_eth0_source_is_sent_by_wlan0() {
    let tb = Testbed::up();
    let dir = TempDir::new("review1203");
    let p = dir.write("p.toml", "via = [\"wlan0\"]\nforeign_bind = \"keep\"\n");
    let body = r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(2); s.connect(S6)
print(err(lambda: s.sendmsg([b'x'], [(41, 50, pi6(E6))])), err(lambda: mmsg(s, [(None, b'y', pk6(E6))])))
"#;
    let (out, counts) = run_py(&tb, body, Mode::Policy(&p));
    out.assert_ok();
    assert_eq!(lines(&out), ["sent sent"], "{}", out.dump());
    assert_only(&counts, "wlan0");
}

/// A C program whose second thread flips its PKTINFO's address between zero (no
/// source) and eth0's while the main thread sends on connected sockets (no name):
/// before the fix the stub's fast path (`control_is_plain`) and the supervisor
/// (`may_carry_source` false -> CONTINUE) read it, then the kernel read it again.
/// argv[1]: 6 or 4; argv[2]: msg or mmsg.
const RACE_C: &str = r#"#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
static union { char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))]; struct cmsghdr al; } u;
static unsigned char src[16], *at; static int alen;
static volatile int stop;
static void *flip(void *p) {
    (void)p;
    while (!stop) {
        memcpy(at, src, alen);
        for (volatile int i = 0; i < 50; i++);
        memset(at, 0, alen);
        for (volatile int i = 0; i < 50; i++);
    }
    return 0;
}
int main(int argc, char **argv) {
    int v6 = argv[1][0] == '6', mm = argc > 2 && !strcmp(argv[2], "mmsg");
    struct cmsghdr *c = (struct cmsghdr *)u.buf;
    struct sockaddr_storage d = {0}; socklen_t dl; size_t clen;
    if (v6) {
        inet_pton(AF_INET6, "2001:db8:10::2", src); alen = 16;
        c->cmsg_level = IPPROTO_IPV6; c->cmsg_type = IPV6_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(struct in6_pktinfo)); clen = CMSG_SPACE(sizeof(struct in6_pktinfo));
        at = CMSG_DATA(c);
        struct sockaddr_in6 *a = (void *)&d; a->sin6_family = AF_INET6; a->sin6_port = htons(9000);
        inet_pton(AF_INET6, "2001:db8:ff::10", &a->sin6_addr); dl = sizeof *a;
    } else {
        inet_pton(AF_INET, "198.51.100.2", src); alen = 4;
        c->cmsg_level = IPPROTO_IP; c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo)); clen = CMSG_SPACE(sizeof(struct in_pktinfo));
        at = (unsigned char *)&((struct in_pktinfo *)CMSG_DATA(c))->ipi_spec_dst;
        struct sockaddr_in *a = (void *)&d; a->sin_family = AF_INET; a->sin_port = htons(9000);
        inet_pton(AF_INET, "203.0.113.10", &a->sin_addr); dl = sizeof *a;
    }
    pthread_t t; pthread_create(&t, 0, flip, 0);
    long ok = 0, bad = 0;
    for (int k = 0; k < 1000; k++) {
        int s = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
        if (connect(s, (void *)&d, dl)) { perror("connect"); return 1; }
        for (int i = 0; i < 4; i++) {
            struct iovec iov = { "x", 1 };
            struct msghdr h = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = clen };
            if (mm) {
                struct mmsghdr v[2]; v[0].msg_hdr = h; v[1].msg_hdr = h;
                if (sendmmsg(s, v, 2, 0) > 0) ok++; else bad++;
            } else if (sendmsg(s, &h, 0) > 0) ok++; else bad++;
        }
        close(s);
    }
    stop = 1; pthread_join(t, 0);
    printf("ok=%ld refused=%ld\n", ok, bad);
    return 0;
}
"#;

fn race(fam: &str, call: &str, supervised: bool) {
    let tb = Testbed::up();
    let dir = TempDir::new("review1203-race");
    let cc: &[&str] = if supervised {
        &["gcc", "-static", "-O1", "-pthread"]
    } else {
        &["gcc", "-O1", "-pthread"]
    };
    let bin = compile_c(&dir, "race.c", RACE_C, "race", cc, &[]);
    let prog = [bin.as_str(), fam, call];
    let args = if supervised {
        let mut a = strs(&[&s(mifrun()), "--supervise", "--via", "wlan0", "--"]);
        a.extend(strs(&prog));
        a
    } else {
        mifrun_args("wlan0", &prog)
    };
    let sn = tb.sniff_all();
    let out = tb.cmd(&args).timeout(Duration::from_secs(120)).run();
    let counts = sn.stop();
    let e6: IpAddr = "2001:db8:10::2".parse().unwrap();
    let e4: IpAddr = "198.51.100.2".parse().unwrap();
    let leaked = counts
        .get("wlan0")
        .map(|c| c.pkts.iter().filter(|p| p.src == e6 || p.src == e4).count())
        .unwrap_or(0);
    eprintln!(
        "eth0-sourced on wlan0 (of the first {MAX_PKTS} kept): {leaked}; totals {:?}\n{}",
        counts
            .iter()
            .map(|(k, c)| (k.clone(), c.total()))
            .collect::<Vec<_>>(),
        out.dump()
    );
    out.assert_ok();
    assert_none_on(&counts, &["eth0", "wwan0"]);
    no_eth0_source_elsewhere(&counts);
}

#[test]
fn racing_connected_control_sendmsg_v6() {
    race("6", "msg", false);
}

#[test]
fn racing_connected_control_sendmsg_v4() {
    race("4", "msg", false);
}

#[test]
fn supervised_racing_connected_control_sendmsg_v6() {
    race("6", "msg", true);
}

#[test]
fn supervised_racing_connected_control_sendmmsg_v6() {
    race("6", "mmsg", true);
}

// Under `--supervise`, a dynamic program keeps the preload, which answers first (the
// supervisor takes the preload's device binding for the program's own: `shim_bound`
// false, so its own check never runs for it). These use a static program.

/// `AF_UNSPEC` name (see above) under `--supervise`: before the fix `send_dest` found
/// no IP destination and the call continued; the kernel sent to the peer with eth0's
/// source (sendmsg `sent`, wlan0 carrying 2001:db8:10::2 -> the service; sendmmsg
/// `EADDRNOTAVAIL`).
#[test]
fn supervised_connected_af_unspec_name_another_links_source_is_refused() {
    let tb = Testbed::up();
    refused_silently(
        sup_static(&tb, "unspec"),
        &["EADDRNOTAVAIL", "EADDRNOTAVAIL"],
    );
}

/// Control data over 4096 bytes under `--supervise`: before the fix
/// `read_iov_control`'s ENOBUFS became a CONTINUE, and a `sendmmsg` message's first
/// 4096 bytes only were scanned, the batch continued. Refused now (ENOBUFS).
#[test]
fn supervised_connected_long_control_another_links_source_is_refused() {
    let tb = Testbed::up();
    refused_silently(sup_static(&tb, "long"), &["ENOBUFS", "ENOBUFS", "ENOBUFS"]);
}

/// A connected socket passed by `SCM_RIGHTS` under `--supervise` (state by cookie).
#[test]
fn supervised_passed_connected_socket_another_links_source_is_refused() {
    let tb = Testbed::up();
    refused_silently(
        sup_static(&tb, "scm"),
        &["own EADDRNOTAVAIL", "scm EADDRNOTAVAIL"],
    );
}

/// The IPv4-mapped peer under `--supervise`.
#[test]
fn supervised_mapped_connected_another_links_source_is_refused() {
    let tb = Testbed::up();
    refused_silently(
        sup_static(&tb, "mapped"),
        &["EADDRNOTAVAIL EADDRNOTAVAIL", "EADDRNOTAVAIL EADDRNOTAVAIL"],
    );
}

/// The odd control layouts under `--supervise`.
#[test]
fn supervised_connected_odd_cmsg_layouts_another_links_source_is_refused() {
    let tb = Testbed::up();
    refused_silently(sup_static(&tb, "odd"), &["EADDRNOTAVAIL EADDRNOTAVAIL"; 5]);
}

// ---------------------------------------------------------------------------------
// 18612fd: `#!` chains
// ---------------------------------------------------------------------------------

const STATIC_C: &str = include_str!("supervise_review.c");

/// The static program (`plain` mode: one datagram, `control upstream=NAME`) and a
/// chain of `n` scripts in `dir`: `s1` = `#!BIN plain`, `sK` = `#!s(K-1)`; returns
/// the paths of s1..sn.
fn chain(dir: &TempDir, n: usize) -> Vec<String> {
    let bin = compile_c(
        dir,
        "supervise_review.c",
        STATIC_C,
        "static-prog",
        &["gcc", "-static", "-O1", "-pthread"],
        &[],
    );
    let mut v = Vec::new();
    let mut prev = format!("{bin} plain");
    for k in 1..=n {
        let p = dir.write(&format!("s{k}"), &format!("#!{prev}\n"));
        Cmd::new(None, &["chmod", "+x", &p]).run().assert_ok();
        prev = p.clone();
        v.push(p);
    }
    v
}

/// What Python's `subprocess.run(PATH 6)` answers: `rc N`, or `oserror ERRNO`.
const SPAWN_PY: &str = r#"import subprocess, errno, sys
try:
    r = subprocess.run([sys.argv[1], '6'], capture_output=True, timeout=20); print('rc', r.returncode)
except OSError as e:
    print('oserror', errno.errorcode[e.errno])
"#;

/// Linux 6.18 runs a chain of 5 scripts and refuses 6 with `ELOOP` (seen by hand:
/// `s6: bad interpreter: Too many levels of symbolic links`). The hooks follow up to
/// 1 + MAX_SCRIPT_LEVELS (8) scripts, so an exec the
/// kernel refuses becomes an exec of mifrun --supervise: the program's exec succeeds
/// and its error turns into mifrun's exit status. The program must see `ELOOP`, as
/// without mifrun.
#[test]
fn a_chain_of_six_scripts_fails_with_eloop_as_without_mifrun() {
    let tb = Testbed::up();
    let dir = TempDir::new("review1203-chain");
    let c = chain(&dir, 6);
    let native = tb
        .cmd(&["python3", "-c", SPAWN_PY, &c[5]])
        .timeout(Duration::from_secs(30))
        .run();
    native.assert_ok();
    assert_eq!(native.stdout.trim(), "oserror ELOOP", "{}", native.dump());
    let sn = tb.sniff_all();
    let out = tb
        .cmd(&mifrun_args("wlan0", &["python3", "-c", SPAWN_PY, &c[5]]))
        .timeout(Duration::from_secs(30))
        .run();
    let counts = sn.stop();
    eprintln!("links: {}\n{}", per_link(&counts), out.dump());
    assert_eq!(out.stdout.trim(), "oserror ELOOP", "{}", out.dump());
    assert_silent(&counts);
}

/// The kernel's deepest chain (5 scripts) of a static program: supervised, by a
/// preloaded shell (the hooks) and run by mifrun itself (the inspection).
#[test]
fn a_chain_of_five_scripts_of_a_static_program_is_supervised() {
    let tb = Testbed::up();
    let dir = TempDir::new("review1203-chain");
    let c = chain(&dir, 5);
    let by_shell = format!("{} 6", c[4]);
    for prog in [&["sh", "-c", by_shell.as_str()][..], &[c[4].as_str(), "6"]] {
        let out = expect_via(
            &tb,
            tb.cmd(&mifrun_args("wlan0", prog))
                .timeout(Duration::from_secs(60)),
            "wlan0",
        );
        assert!(
            out.stdout.contains("control upstream=wlan0"),
            "{}",
            out.dump()
        );
    }
}

/// A chain whose inner `#!` names its interpreter by a relative path (resolved by the
/// kernel against the exec'ing process's cwd), exec'ed by `execvp`, `posix_spawnp`
/// and `system()` from a preloaded Python in that directory.
#[test]
fn a_relative_interpreter_chain_by_execvp_spawnp_and_system_is_supervised() {
    let tb = Testbed::up();
    let dir = TempDir::new("review1203-chain");
    let c = chain(&dir, 1);
    let d = dir.path().to_string_lossy().into_owned();
    let mid = dir.write("mid", "#!s1\n");
    let top = dir.write("top", "#!./mid\n");
    for p in [&mid, &top] {
        Cmd::new(None, &["chmod", "+x", p]).run().assert_ok();
    }
    let _ = c;
    let py = format!(
        r#"import os, sys
os.chdir({d:?}); os.environ['PATH'] = {d:?} + ':' + os.environ['PATH']
sys.stdout.flush()
pid = os.posix_spawnp('top', ['top', '6'], os.environ); os.waitpid(pid, 0)
os.system('top 6')
pid = os.fork()
if pid == 0:
    os.execvp('top', ['top', '6'])
os.waitpid(pid, 0)
"#
    );
    let out = expect_via(
        &tb,
        tb.cmd(&mifrun_args("wlan0", &["python3", "-c", &py]))
            .timeout(Duration::from_secs(60)),
        "wlan0",
    );
    assert_eq!(
        out.stdout.matches("control upstream=wlan0").count(),
        3,
        "{}",
        out.dump()
    );
}

/// A chain through an interpreter script without execute permission: the kernel
/// answers `EACCES`; the hooks read it (readable), follow it to the static program
/// and exec mifrun instead. The program must see `EACCES`, as without mifrun.
#[test]
fn a_chain_through_a_non_executable_script_fails_with_eacces_as_without_mifrun() {
    let tb = Testbed::up();
    let dir = TempDir::new("review1203-chain");
    let c = chain(&dir, 2);
    Cmd::new(None, &["chmod", "0644", &c[0]]).run().assert_ok();
    let native = tb
        .cmd(&["python3", "-c", SPAWN_PY, &c[1]])
        .timeout(Duration::from_secs(30))
        .run();
    assert_eq!(native.stdout.trim(), "oserror EACCES", "{}", native.dump());
    let sn = tb.sniff_all();
    let out = tb
        .cmd(&mifrun_args("wlan0", &["python3", "-c", SPAWN_PY, &c[1]]))
        .timeout(Duration::from_secs(30))
        .run();
    let counts = sn.stop();
    eprintln!("links: {}\n{}", per_link(&counts), out.dump());
    assert_eq!(out.stdout.trim(), "oserror EACCES", "{}", out.dump());
    assert_silent(&counts);
}

/// `mifrun --check` of a chain of 6 (the kernel: ELOOP) must not describe it as run.
#[test]
fn mifrun_check_of_a_chain_the_kernel_refuses_says_so() {
    let dir = TempDir::new("review1203-chain");
    let c = chain(&dir, 6);
    let out = Cmd::new(
        None,
        &[
            &s(mifrun()),
            "--check",
            "--allow-missing",
            "--via",
            "wlan0",
            "--",
            &c[5],
        ],
    )
    .timeout(Duration::from_secs(30))
    .run();
    eprintln!("{}", out.dump());
    // Seen before the fix: every level "itself a script, ..., which the kernel runs in turn", then
    // the static program and an exec plan; nothing says the kernel answers ELOOP.
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains("ELOOP"),
        "--check describes a chain the kernel refuses (ELOOP) as run:{}",
        out.dump()
    );
}
