//! Hostile review of e009211 (a datagram whose PKTINFO gives it a source is planned
//! as a socket bound to that source): real programs' sends with a source in their
//! control data, on the wire.

use super::*;
use std::net::IpAddr;

/// A `sendmmsg(2)` for Python through ctypes (the preloaded hook answers it):
/// `mmsg(sock, [(dest or None, payload, control bytes)], flags)`; `cmsg`, `pk6`.
const MM: &str = r#"import ctypes, socket, struct
libc = ctypes.CDLL(None, use_errno=True)
def cmsg(level, ty, data, clen=None):
    n = 16 + len(data) if clen is None else clen
    b = struct.pack('@Qii', n, level, ty) + data
    return b + bytes((-len(b)) % 8)
def pk6(addr, idx=0):
    return cmsg(socket.IPPROTO_IPV6, 50, socket.inet_pton(socket.AF_INET6, addr) + struct.pack('@I', idx))
def sa(dest):
    if dest is None: return None
    if ':' in dest[0]:
        return struct.pack('<H', socket.AF_INET6) + struct.pack('>H', dest[1]) + bytes(4) + socket.inet_pton(socket.AF_INET6, dest[0]) + bytes(4)
    return struct.pack('<H', socket.AF_INET) + struct.pack('>H', dest[1]) + socket.inet_aton(dest[0]) + bytes(8)
KEEP = []
def mmsg(s, msgs, flags=0):
    """msgs: list of (dest or None, payload, control bytes); returns sendmmsg's answer."""
    arr = (ctypes.c_char * (64 * len(msgs)))()
    for i, (dest, data, ctl) in enumerate(msgs):
        name = sa(dest)
        nb = ctypes.create_string_buffer(name, len(name)) if name else None
        db = ctypes.create_string_buffer(data, len(data))
        iov = ctypes.create_string_buffer(struct.pack('@QQ', ctypes.addressof(db), len(data)), 16)
        cb = ctypes.create_string_buffer(ctl, max(len(ctl), 1)) if ctl else None
        KEEP.extend([nb, db, iov, cb])
        h = struct.pack('@QI4xQQQQi4xI4x',
            ctypes.addressof(nb) if nb else 0, len(name) if name else 0,
            ctypes.addressof(iov), 1,
            ctypes.addressof(cb) if cb else 0, len(ctl) if ctl else 0, 0, 0)
        ctypes.memmove(ctypes.addressof(arr) + 64 * i, h, 64)
    r = libc.sendmmsg(s.fileno(), arr, len(msgs), flags)
    if r < 0:
        e = ctypes.get_errno(); raise OSError(e, 'sendmmsg')
    return r
"#;

/// Runs Python `code` (after [`MM`]) under `mifrun` (`--via wlan0`, or `policy`),
/// with every uplink sniffed.
fn py(
    tb: &Testbed,
    code: &str,
    policy: Option<&str>,
) -> (Out, std::collections::BTreeMap<String, Counts>) {
    let full = format!("{MM}\n{code}");
    let prog = strs(&["python3", "-c", &full]);
    let args = match policy {
        Some(p) => mifrun_policy_args(p, &prog),
        None => mifrun_args("wlan0", &prog),
    };
    let sn = tb.sniff_all();
    let out = tb.cmd(&args).timeout(Duration::from_secs(30)).run();
    let counts = sn.stop();
    (out, counts)
}

/// Each uplink's packet count and its first packets (`src->dst:port`), for a test's
/// diagnostics (also review_1203's).
pub(super) fn per_link(counts: &std::collections::BTreeMap<String, Counts>) -> String {
    counts
        .iter()
        .map(|(k, c)| {
            let pk: Vec<String> = c
                .pkts
                .iter()
                .take(12)
                .map(|p| format!("{}->{}:{}", p.src, p.dst, p.dport))
                .collect();
            format!("{k}={} {pk:?}", c.total())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every answer from wlan0's upstream, and packets on wlan0 only.
#[track_caller]
fn only_wlan0(tb: &Testbed, code: &str) -> Out {
    let (out, counts) = py(tb, code, None);
    eprintln!("links: {}\n{}", per_link(&counts), out.dump());
    out.assert_answered_by("wlan0");
    assert_only(&counts, "wlan0");
    out
}

/// Python prelude for the tests below: wlan0's IPv6 source as an `in6_pktinfo`.
const SRC6: &str = r#"
import socket, struct, errno
S6 = ('2001:db8:ff::10', 9000)
S4 = ('203.0.113.10', 9000)
def pi6(a, idx=0):
    return socket.inet_pton(socket.AF_INET6, a) + struct.pack('@I', idx)
W6 = pi6('2001:db8:20::2')
def pi4(a, idx=0):
    return struct.pack('@i', idx) + socket.inet_aton(a) + bytes(4)
def err(f):
    try:
        f(); return 'sent'
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
"#;

fn code(body: &str) -> String {
    format!("{SRC6}\n{body}")
}

/// [`only_wlan0`] of `body` (after [`SRC6`]) on a testbed of its own.
#[track_caller]
fn on_wlan0_only(body: &str) {
    let tb = Testbed::up();
    only_wlan0(&tb, &code(body));
}

/// A CONNECTED UDP socket sending with `sendmsg` without a name, its PKTINFO giving
/// wlan0's source.
#[test]
fn connected_udp6_source_pktinfo_without_a_name() {
    on_wlan0_only(
        r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
s.connect(S6)
for _ in range(3):
    s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, W6)])
    print(s.recv(200).decode().strip())
"#,
    );
}

/// The same after a plain datagram on the connected socket first.
#[test]
fn connected_udp6_plain_then_source_pktinfo() {
    on_wlan0_only(
        r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
s.connect(S6)
s.send(b'x'); print(s.recv(200).decode().strip())
for _ in range(2):
    s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, W6)])
    print(s.recv(200).decode().strip())
"#,
    );
}

/// A sticky `IPV6_PKTINFO` (setsockopt) giving wlan0's source, then plain sendto.
#[test]
fn sticky_ipv6_pktinfo_source() {
    on_wlan0_only(
        r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
s.setsockopt(socket.IPPROTO_IPV6, 50, W6)
for _ in range(3):
    s.sendto(b'x', S6); print(s.recvfrom(200)[0].decode().strip())
"#,
    );
}

/// sendmmsg of three to one destination, the second with wlan0's source.
#[test]
fn sendmmsg_second_message_carries_a_source() {
    on_wlan0_only(
        r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
for rnd in range(2):
    n = mmsg(s, [(S6, b'a', b''), (S6, b'b', pk6('2001:db8:20::2')), (S6, b'c', b'')])
    print('sent', n)
    for _ in range(n): print(s.recvfrom(200)[0].decode().strip())
"#,
    );
}

/// sendmmsg of ten to one destination, the ninth with wlan0's source (beyond the
/// engine's window of 8); repeated until all are sent.
#[test]
fn sendmmsg_ninth_message_carries_a_source() {
    on_wlan0_only(
        r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
for rnd in range(2):
    msgs = [(S6, b'm%d' % i, pk6('2001:db8:20::2') if i == 8 else b'') for i in range(10)]
    while msgs:
        n = mmsg(s, msgs); print('sent', n); msgs = msgs[n:]
    for _ in range(10): print(s.recvfrom(200)[0].decode().strip())
"#,
    );
}

/// sendmmsg on a connected socket, no names, the second with wlan0's source.
#[test]
fn sendmmsg_connected_second_message_carries_a_source() {
    on_wlan0_only(
        r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
s.connect(S6)
for rnd in range(2):
    n = mmsg(s, [(None, b'a', b''), (None, b'b', pk6('2001:db8:20::2')), (None, b'c', b'')])
    print('sent', n)
    for _ in range(n): print(s.recv(200).decode().strip())
"#,
    );
}

/// A dual-stack AF_INET6 socket to an IPv4-mapped destination, its IPV6_PKTINFO
/// giving wlan0's mapped IPv4 source (index 0): wlan0, that source.
#[test]
fn dual_stack_mapped_source_pktinfo() {
    on_wlan0_only(
        r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
for _ in range(3):
    s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, pi6('::ffff:198.51.100.66'))], 0, ('::ffff:203.0.113.10', 9000))
    print(s.recvfrom(200)[0].decode().strip())
"#,
    );
}

/// The same with eth0's mapped source, and with eth0's index: refused / the
/// program's (index) choice.
#[test]
fn dual_stack_mapped_eth0_source_is_refused() {
    let tb = Testbed::up();
    let (out, counts) = py(
        &tb,
        &code(
            r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
print(err(lambda: s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, pi6('::ffff:198.51.100.2'))], 0, ('::ffff:203.0.113.10', 9000))))
print(err(lambda: s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, pi6('::ffff:127.0.0.1'))], 0, ('::ffff:203.0.113.10', 9000))))
"#,
        ),
        None,
    );
    eprintln!("links: {}\n{}", per_link(&counts), out.dump());
    out.assert_ok();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["EADDRNOTAVAIL", "EINVAL"],
        "{}",
        out.dump()
    );
    assert_silent(&counts);
}

/// Control data longer than the engine's copy room (12 IPV6_TCLASS messages, then
/// the source PKTINFO): the Unknown path.
#[test]
fn long_control_data_with_a_source_last() {
    on_wlan0_only(
        r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
tc = [(socket.IPPROTO_IPV6, 67, struct.pack('@i', 0))] * 12
for _ in range(3):
    s.sendmsg([b'x'], tc + [(socket.IPPROTO_IPV6, 50, W6)], 0, S6)
    print(s.recvfrom(200)[0].decode().strip())
"#,
    );
}

/// A PKTINFO whose cmsg_len is CMSG_LEN(24) (four bytes more than in6_pktinfo),
/// msg_controllen 40 (not a multiple of 8), through sendmmsg (one message).
#[test]
fn odd_cmsg_len_source() {
    on_wlan0_only(
        r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
c = struct.pack('@Qii', 40, socket.IPPROTO_IPV6, 50) + W6 + bytes(4)
for _ in range(3):
    n = mmsg(s, [(S6, b'x', c)]); print('sent', n)
    print(s.recvfrom(200)[0].decode().strip())
"#,
    );
}

/// After a source datagram bound the socket to wlan0, a datagram to a loopback
/// listener; and the other order.
#[test]
fn loopback_after_the_source_binding_and_before() {
    let tb = Testbed::up();
    let (out, counts) = py(
        &tb,
        &code(
            r#"
l = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); l.bind(('::1', 0)); l.settimeout(2)
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, W6)], 0, S6); print(s.recvfrom(200)[0].decode().strip())
print('lo-after', err(lambda: s.sendto(b'y', l.getsockname())))
try: print('got', l.recvfrom(10)[0])
except socket.timeout: print('lo-timeout')
t = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); t.settimeout(3)
print('lo-before', err(lambda: t.sendto(b'z', l.getsockname()))); print('got', l.recvfrom(10)[0])
t.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, W6)], 0, S6); print(t.recvfrom(200)[0].decode().strip())
print('lo-again', err(lambda: t.sendto(b'w', l.getsockname())))
"#,
        ),
        None,
    );
    eprintln!("links: {}\n{}", per_link(&counts), out.dump());
    out.assert_answered_by("wlan0");
    assert_only(&counts, "wlan0");
    let got: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| !l.starts_with("upstream="))
        .collect();
    assert_eq!(
        got,
        [
            "lo-after EINVAL",
            "lo-timeout",
            "lo-before sent",
            "got b'z'",
            "lo-again EINVAL"
        ],
        "{}",
        out.dump()
    );
}

/// A rule sending port 9001 by wwan0, on a socket a source datagram bound to wlan0.
#[test]
fn rule_via_wwan0_after_the_source_binding() {
    let tb = Testbed::up();
    let dir = TempDir::new("pktinfo-review");
    let p = dir.write(
        "p.toml",
        "via = [\"wlan0\"]\n\n[[rules]]\nports = [\"9001\"]\nvia = [\"wwan0\"]\n",
    );
    let (out, counts) = py(
        &tb,
        &code(
            r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, W6)], 0, S6); print(s.recvfrom(200)[0].decode().strip())
print('9001', err(lambda: s.sendto(b'y', ('2001:db8:ff::10', 9001))))
t = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); t.settimeout(3)
t.sendto(b'y', ('2001:db8:ff::10', 9001))
print('9000', err(lambda: t.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, W6)], 0, S6)))
"#,
        ),
        Some(&p),
    );
    eprintln!("links: {}\n{}", per_link(&counts), out.dump());
    out.assert_ok();
    let got: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| !l.starts_with("upstream="))
        .collect();
    assert_eq!(got, ["9001 ENETUNREACH", "9000 sent"], "{}", out.dump());
    assert_none_on(&counts, &["eth0"]);
    let svc: IpAddr = "2001:db8:ff::10".parse().unwrap();
    assert!(
        counts["wwan0"]
            .pkts
            .iter()
            .all(|p| p.dst != svc || p.dport == 9001),
        "{counts:#?}"
    );
    assert!(
        counts["wlan0"]
            .pkts
            .iter()
            .all(|p| p.dst != svc || p.dport == 9000),
        "{counts:#?}"
    );
}

/// foreign_bind = "keep" with eth0's source.
#[test]
fn foreign_bind_keep_eth0_source() {
    let tb = Testbed::up();
    let dir = TempDir::new("pktinfo-review");
    let p = dir.write("p.toml", "via = [\"wlan0\"]\nforeign_bind = \"keep\"\n");
    let (out, counts) = py(
        &tb,
        &code(
            r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(2)
for _ in range(2):
    print(err(lambda: s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, pi6('2001:db8:10::2'))], 0, S6)))
"#,
        ),
        Some(&p),
    );
    eprintln!("links: {}\n{}", per_link(&counts), out.dump());
    out.assert_ok();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["sent", "sent"],
        "{}",
        out.dump()
    );
    assert_only(&counts, "wlan0");
}

/// MSG_CONFIRM / MSG_ZEROCOPY on a source datagram.
#[test]
fn flags_on_a_source_datagram() {
    on_wlan0_only(
        r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
for fl in (0x800, 0x4000000, 0x800):
    s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, W6)], fl, S6); print(s.recvfrom(200)[0].decode().strip())
"#,
    );
}

/// wlan0's link-local address as the source, to the global service.
#[test]
fn link_local_source() {
    let tb = Testbed::up();
    let (out, counts) = py(
        &tb,
        &code(
            r#"
w = socket.if_nametoindex('wlan0')
ll = None
for line in open('/proc/net/if_inet6'):
    f = line.split()
    if f[5] == 'wlan0' and f[0].startswith('fe80'):
        ll = ':'.join(f[0][i:i+4] for i in range(0, 32, 4))
print('ll', ll)
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(2)
for idx in (0, w):
    print(err(lambda: s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, pi6(ll, idx))], 0, S6)))
    try: print(s.recvfrom(200)[0].decode().strip())
    except socket.timeout: print('timeout')
"#,
        ),
        None,
    );
    eprintln!("links: {}\n{}", per_link(&counts), out.dump());
    out.assert_ok();
    assert_only(&counts, "wlan0");
    assert_eq!(
        out.stdout.matches("upstream=wlan0").count(),
        2,
        "{}",
        out.dump()
    );
}

/// fork after the source binding; a dup'd fd.
#[test]
fn fork_and_dup_after_the_source_binding() {
    on_wlan0_only(
        r#"
import os
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, W6)], 0, S6); print(s.recvfrom(200)[0].decode().strip())
d = socket.socket(fileno=os.dup(s.fileno())); d.settimeout(3)
d.sendto(b'x', S6); print(d.recvfrom(200)[0].decode().strip())
pid = os.fork()
if pid == 0:
    s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, W6)], 0, S6); s.sendto(b'x', S6); os._exit(0)
os.waitpid(pid, 0)
for _ in range(2): print(s.recvfrom(200)[0].decode().strip())
"#,
    );
}

/// Link-local sources of the other link (eth0's) and of wlan0, index 0.
#[test]
fn eth0_link_local_source() {
    let tb = Testbed::up();
    let (out, counts) = py(
        &tb,
        &code(
            r#"
def ll(dev):
    for line in open('/proc/net/if_inet6'):
        f = line.split()
        if f[5] == dev and f[0].startswith('fe80'):
            return ':'.join(f[0][i:i+4] for i in range(0, 32, 4))
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(2)
print('eth0-ll', err(lambda: s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, pi6(ll('eth0')))], 0, S6)))
try: print(s.recvfrom(200)[0].decode().strip())
except socket.timeout: print('timeout')
"#,
        ),
        None,
    );
    eprintln!("links: {}\n{}", per_link(&counts), out.dump());
    out.assert_ok();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["eth0-ll EADDRNOTAVAIL", "timeout"],
        "{}",
        out.dump()
    );
    assert_silent(&counts);
}

/// A second address of wlan0, added while the program runs.
#[test]
fn wlan0_second_address_source() {
    let tb = Testbed::up();
    tb.run(&strs(&[
        "ip",
        "-6",
        "addr",
        "add",
        "2001:db8:20::99/64",
        "dev",
        "wlan0",
        "nodad",
    ]))
    .assert_ok();
    let (out, counts) = py(
        &tb,
        &code(
            r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
for _ in range(3):
    print(err(lambda: s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, pi6('2001:db8:20::99'))], 0, S6)))
    try: print(s.recvfrom(200)[0].decode().strip())
    except socket.timeout: print('timeout')
"#,
        ),
        None,
    );
    eprintln!("links: {}\n{}", per_link(&counts), out.dump());
    out.assert_ok();
    assert_only(&counts, "wlan0");
    assert_eq!(
        out.stdout
            .matches("upstream=wlan0 peer=[2001:db8:20::99]")
            .count(),
        3,
        "{}",
        out.dump()
    );
}

/// Under `--supervise`: an unconnected socket's PKTINFO giving wlan0's source.
#[test]
fn supervised_source_pktinfo_leaves_by_wlan0() {
    let tb = Testbed::up();
    let c = code(
        r#"
t = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); t.settimeout(2)
for _ in range(3):
    t.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, W6)], 0, S6)
    print(t.recvfrom(200)[0].decode().strip())
"#,
    );
    let mut a = vec![
        s(mifrun()),
        "--supervise".into(),
        "--via".into(),
        "wlan0".into(),
        "--".into(),
    ];
    a.extend(strs(&["python3", "-c", &c]));
    expect_via(&tb, tb.cmd(&a).timeout(Duration::from_secs(30)), "wlan0");
}

/// A C program whose second thread rewrites its PKTINFO's `ipi6_addr` (zero <->
/// wlan0's) while it sends (the stub's fast path reads the control data, then the
/// kernel reads it again).
const RACE_C: &str = r#"#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
/* A thread rewrites the PKTINFO's ipi6_addr (zero <-> wlan0's) while the main
   thread sends: argv[1] = "msg" (sendmsg) or "mmsg" (sendmmsg of 4 to one dest). */
static union { char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))]; struct cmsghdr al; } u;
static struct in6_addr src;
static volatile int stop;
static void *flip(void *p) {
    (void)p;
    struct in6_pktinfo *pi = (struct in6_pktinfo *)CMSG_DATA((struct cmsghdr *)u.buf);
    while (!stop) {
        memcpy(&pi->ipi6_addr, &src, 16);
        for (volatile int i = 0; i < 100; i++);
        memset(&pi->ipi6_addr, 0, 16);
        for (volatile int i = 0; i < 100; i++);
    }
    return 0;
}
int main(int argc, char **argv) {
    int mm = argc > 1 && !strcmp(argv[1], "mmsg");
    inet_pton(AF_INET6, "2001:db8:20::2", &src);
    struct cmsghdr *c = (struct cmsghdr *)u.buf;
    c->cmsg_level = IPPROTO_IPV6; c->cmsg_type = IPV6_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(struct in6_pktinfo));
    struct sockaddr_in6 d = { .sin6_family = AF_INET6, .sin6_port = htons(9000) };
    inet_pton(AF_INET6, "2001:db8:ff::10", &d.sin6_addr);
    pthread_t t; pthread_create(&t, 0, flip, 0);
    long ok = 0, bad = 0;
    for (int k = 0; k < 2000; k++) {
        int s = socket(AF_INET6, SOCK_DGRAM, 0);
        for (int i = 0; i < 3; i++) sendto(s, "p", 1, 0, (void *)&d, sizeof d);
        if (k == 0) { int b = -1; socklen_t bl = sizeof b; getsockopt(s, SOL_SOCKET, 62, &b, &bl); printf("bound=%d\n", b); }
        for (int i = 0; i < 3; i++) {
            struct iovec iov = { "x", 1 };
            struct msghdr h = { .msg_name = &d, .msg_namelen = sizeof d, .msg_iov = &iov,
                .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
            if (mm) {
                struct mmsghdr v[4]; for (int j = 0; j < 4; j++) v[j].msg_hdr = h;
                if (sendmmsg(s, v, 4, 0) > 0) ok++; else bad++;
            } else if (sendmsg(s, &h, 0) > 0) ok++; else bad++;
        }
        close(s);
    }
    stop = 1; pthread_join(t, 0);
    printf("ok=%ld failed=%ld\n", ok, bad);
    return 0;
}
"#;

fn race(mode: &str) {
    let tb = Testbed::up();
    let dir = TempDir::new("pktinfo-race");
    let src = dir.write("race.c", RACE_C);
    let bin = format!("{src}.bin");
    let st = std::process::Command::new("gcc")
        .args(["-O1", "-pthread", "-o", &bin, &src])
        .status()
        .unwrap();
    assert!(st.success());
    let sn = tb.sniff_all();
    let out = tb
        .cmd(&mifrun_args("wlan0", &[bin.as_str(), mode]))
        .timeout(Duration::from_secs(60))
        .run();
    let counts = sn.stop();
    eprintln!(
        "links: {}\n{}",
        counts
            .iter()
            .map(|(k, c)| format!("{k}={}", c.total()))
            .collect::<Vec<_>>()
            .join(" "),
        out.dump()
    );
    out.assert_ok();
    assert_only(&counts, "wlan0");
}

#[test]
fn racing_control_buffer_sendmsg() {
    race("msg");
}

#[test]
fn racing_control_buffer_sendmmsg() {
    race("mmsg");
}

/// A connected socket whose PKTINFO names another link's source (eth0's): it must be
/// refused as on an unconnected socket, nothing on the wire. Before the fix: both
/// `sent`, wlan0 carrying `2001:db8:10::2 -> 2001:db8:ff::10:9000` and
/// `198.51.100.2 -> 203.0.113.10:9000`.
#[test]
fn connected_socket_another_links_source_is_refused() {
    let tb = Testbed::up();
    let (out, counts) = py(
        &tb,
        &code(
            r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.connect(S6)
print(err(lambda: s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, pi6('2001:db8:10::2'))])))
t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); t.connect(S4)
print(err(lambda: t.sendmsg([b'x'], [(socket.IPPROTO_IP, 8, pi4('198.51.100.2'))])))
"#,
        ),
        None,
    );
    eprintln!("links: {}\n{}", per_link(&counts), out.dump());
    out.assert_ok();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["EADDRNOTAVAIL", "EADDRNOTAVAIL"],
        "{}",
        out.dump()
    );
    assert_silent(&counts);
}

/// The same through `sendmmsg` (no names, a connected socket). Before the fix: `sent`
/// (1), wlan0 carrying `2001:db8:10::2 -> 2001:db8:ff::10:9000`.
#[test]
fn sendmmsg_connected_another_links_source_is_refused() {
    let tb = Testbed::up();
    let (out, counts) = py(
        &tb,
        &code(
            r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.connect(S6)
print(err(lambda: mmsg(s, [(None, b'a', pk6('2001:db8:10::2'))])))
"#,
        ),
        None,
    );
    eprintln!("links: {}\n{}", per_link(&counts), out.dump());
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "EADDRNOTAVAIL", "{}", out.dump());
    assert_silent(&counts);
}

/// Under `--supervise`, the same through `sendmsg` and `sendmmsg`, IPv6 and IPv4, and
/// a loopback source. Before the fix: `sent`, wlan0 carrying
/// `2001:db8:10::2 -> 2001:db8:ff::10:9000`.
#[test]
fn supervised_connected_another_links_source_is_refused() {
    let tb = Testbed::up();
    let c = code(
        r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.connect(S6)
print(err(lambda: s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, pi6('2001:db8:10::2'))])))
print(err(lambda: mmsg(s, [(None, b'a', b''), (None, b'b', pk6('2001:db8:10::2'))])))
print(err(lambda: mmsg(s, [(None, b'b', pk6('::1'))])))
t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); t.connect(S4)
print(err(lambda: t.sendmsg([b'x'], [(socket.IPPROTO_IP, 8, pi4('198.51.100.2'))])))
"#,
    );
    let c = format!("{MM}\n{c}");
    let mut a = vec![
        s(mifrun()),
        "--supervise".into(),
        "--via".into(),
        "wlan0".into(),
        "--".into(),
    ];
    a.extend(strs(&["python3", "-c", &c]));
    let sn = tb.sniff_all();
    let out = tb.cmd(&a).timeout(Duration::from_secs(30)).run();
    let counts = sn.stop();
    eprintln!("links: {}\n{}", per_link(&counts), out.dump());
    out.assert_ok();
    // The batch's first message goes, its second is refused (the kernel's count).
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["EADDRNOTAVAIL", "sent", "EINVAL", "EADDRNOTAVAIL"],
        "{}",
        out.dump()
    );
    assert_none_on(&counts, &["eth0", "wwan0"]);
    let svc: IpAddr = "2001:db8:ff::10".parse().unwrap();
    let from_eth0: IpAddr = "2001:db8:10::2".parse().unwrap();
    assert!(
        counts["wlan0"].pkts.iter().all(|p| p.src != from_eth0),
        "{counts:#?}"
    );
    assert_eq!(
        counts["wlan0"].pkts.iter().filter(|p| p.dst == svc).count(),
        1,
        "{counts:#?}"
    );
}
