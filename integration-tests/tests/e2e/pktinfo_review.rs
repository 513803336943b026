//! Hostile review of e009211 (a datagram whose PKTINFO gives it a source is planned
//! as a socket bound to that source): real programs' sends with a source in their
//! control data, on the wire.

use super::*;

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
fn py(tb: &Testbed, code: &str, policy: Option<&str>) -> (Out, std::collections::BTreeMap<String, Counts>) {
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

fn per_link(counts: &std::collections::BTreeMap<String, Counts>) -> String {
    counts
        .iter()
        .map(|(k, c)| {
            let pk: Vec<String> = c
                .pkts
                .iter()
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

/// A CONNECTED UDP socket sending with `sendmsg` without a name, its PKTINFO giving
/// wlan0's source.
#[test]
fn connected_udp6_source_pktinfo_without_a_name() {
    let tb = Testbed::up();
    only_wlan0(&tb, &code(r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
s.connect(S6)
for _ in range(3):
    s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, W6)])
    print(s.recv(200).decode().strip())
"#));
}

/// The same after a plain datagram on the connected socket first.
#[test]
fn connected_udp6_plain_then_source_pktinfo() {
    let tb = Testbed::up();
    only_wlan0(&tb, &code(r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
s.connect(S6)
s.send(b'x'); print(s.recv(200).decode().strip())
for _ in range(2):
    s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, W6)])
    print(s.recv(200).decode().strip())
"#));
}

/// A connected socket whose PKTINFO names another link's source (eth0's): refused
/// (as on an unconnected socket), nothing on the wire.
#[test]
fn connected_socket_another_links_source_is_refused() {
    let tb = Testbed::up();
    let (out, counts) = py(&tb, &code(r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.connect(S6)
print(err(lambda: s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, pi6('2001:db8:10::2'))])))
t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); t.connect(S4)
print(err(lambda: t.sendmsg([b'x'], [(socket.IPPROTO_IP, 8, pi4('198.51.100.2'))])))
"#), None);
    eprintln!("links: {}\n{}", per_link(&counts), out.dump());
    out.assert_ok();
    assert_eq!(out.stdout.lines().collect::<Vec<_>>(), ["EADDRNOTAVAIL", "EADDRNOTAVAIL"], "{}", out.dump());
    assert_silent(&counts);
}

/// A sticky `IPV6_PKTINFO` (setsockopt) giving wlan0's source, then plain sendto.
#[test]
fn sticky_ipv6_pktinfo_source() {
    let tb = Testbed::up();
    only_wlan0(&tb, &code(r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
s.setsockopt(socket.IPPROTO_IPV6, 50, W6)
for _ in range(3):
    s.sendto(b'x', S6); print(s.recvfrom(200)[0].decode().strip())
"#));
}

/// sendmmsg of three to one destination, the second with wlan0's source.
#[test]
fn sendmmsg_second_message_carries_a_source() {
    let tb = Testbed::up();
    only_wlan0(&tb, &code(r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
for rnd in range(2):
    n = mmsg(s, [(S6, b'a', b''), (S6, b'b', pk6('2001:db8:20::2')), (S6, b'c', b'')])
    print('sent', n)
    for _ in range(n): print(s.recvfrom(200)[0].decode().strip())
"#));
}

/// sendmmsg of ten to one destination, the ninth with wlan0's source (beyond the
/// engine's window of 8); repeated until all are sent.
#[test]
fn sendmmsg_ninth_message_carries_a_source() {
    let tb = Testbed::up();
    only_wlan0(&tb, &code(r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
for rnd in range(2):
    msgs = [(S6, b'm%d' % i, pk6('2001:db8:20::2') if i == 8 else b'') for i in range(10)]
    while msgs:
        n = mmsg(s, msgs); print('sent', n); msgs = msgs[n:]
    for _ in range(10): print(s.recvfrom(200)[0].decode().strip())
"#));
}

/// sendmmsg on a connected socket, no names, the second with wlan0's source.
#[test]
fn sendmmsg_connected_second_message_carries_a_source() {
    let tb = Testbed::up();
    only_wlan0(&tb, &code(r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
s.connect(S6)
for rnd in range(2):
    n = mmsg(s, [(None, b'a', b''), (None, b'b', pk6('2001:db8:20::2')), (None, b'c', b'')])
    print('sent', n)
    for _ in range(n): print(s.recv(200).decode().strip())
"#));
}

/// A dual-stack AF_INET6 socket to an IPv4-mapped destination, its IPV6_PKTINFO
/// giving wlan0's mapped IPv4 source (index 0): wlan0, that source.
#[test]
fn dual_stack_mapped_source_pktinfo() {
    let tb = Testbed::up();
    only_wlan0(&tb, &code(r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
for _ in range(3):
    s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, pi6('::ffff:198.51.100.66'))], 0, ('::ffff:203.0.113.10', 9000))
    print(s.recvfrom(200)[0].decode().strip())
"#));
}

/// The same with eth0's mapped source, and with eth0's index: refused / the
/// program's (index) choice.
#[test]
fn dual_stack_mapped_eth0_source_is_refused() {
    let tb = Testbed::up();
    let (out, counts) = py(&tb, &code(r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
print(err(lambda: s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, pi6('::ffff:198.51.100.2'))], 0, ('::ffff:203.0.113.10', 9000))))
print(err(lambda: s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, pi6('::ffff:127.0.0.1'))], 0, ('::ffff:203.0.113.10', 9000))))
"#), None);
    eprintln!("links: {}\n{}", per_link(&counts), out.dump());
    out.assert_ok();
    assert_eq!(out.stdout.lines().collect::<Vec<_>>(), ["EADDRNOTAVAIL", "EINVAL"], "{}", out.dump());
    assert_silent(&counts);
}

/// A dual-stack socket's mapped IPV6_PKTINFO naming eth0's index (no source) on
/// the IPv4 path: the kernel takes it as the program's interface.
#[test]
fn dual_stack_mapped_pktinfo_index_only() {
    let tb = Testbed::up();
    let (out, counts) = py(&tb, &code(r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
e = socket.if_nametoindex('wwan0')
s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, pi6('::ffff:0.0.0.0', e))], 0, ('::ffff:203.0.113.10', 9000))
print(s.recvfrom(200)[0].decode().strip())
"#), None);
    eprintln!("links: {}\n{}", per_link(&counts), out.dump());
}

/// Control data longer than the engine's copy room (12 IPV6_TCLASS messages, then
/// the source PKTINFO): the Unknown path.
#[test]
fn long_control_data_with_a_source_last() {
    let tb = Testbed::up();
    only_wlan0(&tb, &code(r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
tc = [(socket.IPPROTO_IPV6, 67, struct.pack('@i', 0))] * 12
for _ in range(3):
    s.sendmsg([b'x'], tc + [(socket.IPPROTO_IPV6, 50, W6)], 0, S6)
    print(s.recvfrom(200)[0].decode().strip())
"#));
}

/// A PKTINFO whose cmsg_len is CMSG_LEN(24) (four bytes more than in6_pktinfo),
/// msg_controllen 40 (not a multiple of 8), through sendmmsg (one message).
#[test]
fn odd_cmsg_len_source() {
    let tb = Testbed::up();
    only_wlan0(&tb, &code(r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
c = struct.pack('@Qii', 40, socket.IPPROTO_IPV6, 50) + W6 + bytes(4)
for _ in range(3):
    s.sendmsg([b'x'], [], 0, S6) if False else None
    n = mmsg(s, [(S6, b'x', c)]); print('sent', n)
    print(s.recvfrom(200)[0].decode().strip())
"#));
}

/// After a source datagram bound the socket to wlan0, a datagram to a loopback
/// listener; and the other order.
#[test]
fn loopback_after_the_source_binding_and_before() {
    let tb = Testbed::up();
    let (out, counts) = py(&tb, &code(r#"
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
"#), None);
    eprintln!("links: {}\n{}", per_link(&counts), out.dump());
    out.assert_answered_by("wlan0");
    assert_only(&counts, "wlan0");
}

/// A rule sending port 9001 by wwan0, on a socket a source datagram bound to wlan0.
#[test]
fn rule_via_wwan0_after_the_source_binding() {
    let tb = Testbed::up();
    let dir = TempDir::new("pktinfo-review");
    let p = dir.write("p.toml", "via = [\"wlan0\"]\n\n[[rules]]\nports = [\"9001\"]\nvia = [\"wwan0\"]\n");
    let (out, counts) = py(&tb, &code(r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, W6)], 0, S6); print(s.recvfrom(200)[0].decode().strip())
print('9001', err(lambda: s.sendto(b'y', ('2001:db8:ff::10', 9001))))
t = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); t.settimeout(3)
t.sendto(b'y', ('2001:db8:ff::10', 9001))
print('9000', err(lambda: t.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, W6)], 0, S6)))
"#), Some(&p));
    eprintln!("links: {}\n{}", per_link(&counts), out.dump());
    assert_none_on(&counts, &["eth0"]);
}

/// foreign_bind = "keep" with eth0's source.
#[test]
fn foreign_bind_keep_eth0_source() {
    let tb = Testbed::up();
    let dir = TempDir::new("pktinfo-review");
    let p = dir.write("p.toml", "via = [\"wlan0\"]\nforeign_bind = \"keep\"\n");
    let (out, counts) = py(&tb, &code(r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(2)
for _ in range(2):
    print(err(lambda: s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, pi6('2001:db8:10::2'))], 0, S6)))
"#), Some(&p));
    eprintln!("links: {}\n{}", per_link(&counts), out.dump());
    assert_none_on(&counts, &["eth0", "wwan0"]);
}

/// MSG_CONFIRM / MSG_ZEROCOPY on a source datagram.
#[test]
fn flags_on_a_source_datagram() {
    let tb = Testbed::up();
    only_wlan0(&tb, &code(r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
for fl in (0x800, 0x4000000, 0x800):
    s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, W6)], fl, S6); print(s.recvfrom(200)[0].decode().strip())
"#));
}

/// wlan0's link-local address as the source, to the global service.
#[test]
fn link_local_source() {
    let tb = Testbed::up();
    let (out, counts) = py(&tb, &code(r#"
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
"#), None);
    eprintln!("links: {}\n{}", per_link(&counts), out.dump());
    assert_none_on(&counts, &["eth0", "wwan0"]);
}

/// fork after the source binding; a dup'd fd.
#[test]
fn fork_and_dup_after_the_source_binding() {
    let tb = Testbed::up();
    only_wlan0(&tb, &code(r#"
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
"#));
}

/// Link-local sources of the other link (eth0's) and of wlan0, index 0.
#[test]
fn eth0_link_local_source() {
    let tb = Testbed::up();
    let (out, counts) = py(&tb, &code(r#"
def ll(dev):
    for line in open('/proc/net/if_inet6'):
        f = line.split()
        if f[5] == dev and f[0].startswith('fe80'):
            return ':'.join(f[0][i:i+4] for i in range(0, 32, 4))
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(2)
print('eth0-ll', err(lambda: s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, pi6(ll('eth0')))], 0, S6)))
try: print(s.recvfrom(200)[0].decode().strip())
except socket.timeout: print('timeout')
"#), None);
    eprintln!("links: {}\n{}", per_link(&counts), out.dump());
    assert_none_on(&counts, &["eth0", "wwan0"]);
}

/// A second address of wlan0, added while the program runs.
#[test]
fn wlan0_second_address_source() {
    let tb = Testbed::up();
    tb.run(&strs(&["ip", "-6", "addr", "add", "2001:db8:20::99/64", "dev", "wlan0", "nodad"])).assert_ok();
    only_wlan0(&tb, &code(r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(3)
for _ in range(3):
    print(err(lambda: s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, pi6('2001:db8:20::99'))], 0, S6)))
    try: print(s.recvfrom(200)[0].decode().strip())
    except socket.timeout: print('timeout')
"#));
}

/// sendmmsg on a connected socket, no names, with eth0's source.
#[test]
fn sendmmsg_connected_another_links_source() {
    let tb = Testbed::up();
    let (out, counts) = py(&tb, &code(r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.connect(S6)
print(err(lambda: mmsg(s, [(None, b'a', pk6('2001:db8:10::2'))])))
"#), None);
    eprintln!("links: {}\n{}", per_link(&counts), out.dump());
}

/// Under --supervise: connected socket with eth0's source, and wlan0's source.
#[test]
fn supervised_connected_sources() {
    let tb = Testbed::up();
    let c = code(r#"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(2); s.connect(S6)
print(err(lambda: s.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, pi6('2001:db8:10::2'))])))
t = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); t.settimeout(2)
for _ in range(2):
    t.sendmsg([b'x'], [(socket.IPPROTO_IPV6, 50, W6)], 0, S6)
    print(t.recvfrom(200)[0].decode().strip())
"#);
    let mut a = vec![s(mifrun()), "--supervise".into(), "--via".into(), "wlan0".into(), "--".into()];
    a.extend(strs(&["python3", "-c", &c]));
    let sn = tb.sniff_all();
    let out = tb.cmd(&a).timeout(Duration::from_secs(30)).run();
    let counts = sn.stop();
    eprintln!("links: {}\n{}", per_link(&counts), out.dump());
}
