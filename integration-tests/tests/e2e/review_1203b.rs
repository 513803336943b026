//! Hostile review (2026-12-03, second pass) of f396566, 7f82613, 90abdc5, 330d9b9: the
//! stub hands a nameless sendmsg with control data on a shim-bound / found-bound /
//! unknown socket to the engine, and the supervisor sends every nameless datagram
//! itself except on the program's own device binding. Each test runs the same
//! program without mifrun and under it and asserts the same answers (regressions).
//! Failing on wt-rev2: `loopback_connected_udp_control_*_supervise` (NULL control
//! with a length: EINVAL/EDESTADDRREQ for EFAULT; 1025 iovecs sent truncated to 1024
//! for EMSGSIZE: supervisor/src/run.rs `read_iov_control`), `own_bound_socket_after_fork_*`
//! (the program's own SO_BINDTODEVICE socket refuses its PKTINFO source in the child
//! and in the parent after fork: shim/src/ops.rs `unnamed_source`'s `found`). The rest
//! pass (guards).

use super::pktinfo_review::per_link;
use super::*;

const PRE: &str = r#"import ctypes, socket, struct, errno, os, sys, time, array
libc = ctypes.CDLL(None, use_errno=True)
S6 = ('2001:db8:ff::10', 9000); S4 = ('203.0.113.10', 9000)
E6 = '2001:db8:10::2'; W6 = '2001:db8:20::2'; E4 = '198.51.100.2'; W4 = '198.51.100.66'
SOL_UDP = 17; UDP_SEGMENT = 103
def err(f):
    try:
        r = f(); return 'sent' if r is None or isinstance(r, int) else 'sent'
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
def fds_of(anc):
    out = []
    for lvl, ty, data in anc:
        if lvl == socket.SOL_SOCKET and ty == socket.SCM_RIGHTS:
            a = array.array('i'); a.frombytes(data[:len(data) - len(data) % 4]); out += list(a)
    return out
def fdarr(fds): return array.array('i', fds).tobytes()
KEEP = []
def _buf(b):
    x = ctypes.create_string_buffer(b, len(b)); KEEP.append(x); return x
def rawhdr(s, data, iovlen=1, ctl_ptr=None, ctl=b'', ctllen=None, iov_base=None, flags=0):
    db = _buf(data)
    base = ctypes.addressof(db) if iov_base is None else iov_base
    iov = _buf(struct.pack('@QQ', base, len(data)) * max(iovlen, 1))
    cb = _buf(ctl) if ctl else None
    cp = (ctypes.addressof(cb) if cb is not None else 0) if ctl_ptr is None else ctl_ptr
    cl = len(ctl) if ctllen is None else ctllen
    h = _buf(struct.pack('@QI4xQQQQi4x', 0, 0, ctypes.addressof(iov), iovlen, cp, cl, 0))
    r = libc.sendmsg(s.fileno(), h, flags)
    if r < 0:
        e = ctypes.get_errno(); raise OSError(e, 'sendmsg')
    return r
"#;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Native,
    Preload,
    Supervise,
}

fn run(tb: &Testbed, body: &str, mode: Mode) -> Out {
    let full = format!("{PRE}\n{body}");
    let prog = strs(&["python3", "-c", &full]);
    let args = match mode {
        Mode::Native => prog,
        Mode::Preload => mifrun_args("wlan0", &prog),
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
    out
}

/// The program's answers under `mode` are those it gets without mifrun.
#[track_caller]
fn same_as_native(body: &str, mode: Mode) {
    let tb = Testbed::up();
    let native = run(&tb, body, Mode::Native);
    native.assert_ok();
    let got = run(&tb, body, mode);
    got.assert_ok();
    let n: Vec<&str> = native.stdout.lines().collect();
    let g: Vec<&str> = got.stdout.lines().collect();
    assert_eq!(
        g,
        n,
        "under mifrun (left) vs without (right)\n{}",
        got.dump()
    );
}

// ---------------------------------------------------------------------------------
// AF_UNIX sockets passing fds: the stub hands their first sendmsg with control data
// to the engine (unknown socket), then goes direct.
// ---------------------------------------------------------------------------------

const UNIX_FDS: &str = r#"
pr, pw = os.pipe()
def roundtrip(a, b, tag):
    n = a.sendmsg([b'm'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fdarr([pw, pw, pw]))])
    msg, anc, fl, _ = b.recvmsg(10, socket.CMSG_SPACE(3 * 4))
    got = fds_of(anc)
    for fd in got:
        os.write(fd, b'z'); os.close(fd)
    print(tag, 'rt', n, msg, len(got), bool(fl & socket.MSG_CTRUNC), os.read(pr, 10))
    a.sendmsg([b'c'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fdarr([pw] * 4))])
    msg, anc, fl, _ = b.recvmsg(10, socket.CMSG_SPACE(4))
    got = fds_of(anc); [os.close(x) for x in got]
    print(tag, 'ctrunc', msg, len(got), bool(fl & socket.MSG_CTRUNC))
    # 253 fds: 1032 bytes of control data, over the engine's copy (216)
    print(tag, 'max', err(lambda: a.sendmsg([b'M'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fdarr([pw] * 253))])))
    msg, anc, fl, _ = b.recvmsg(10, socket.CMSG_SPACE(253 * 4))
    got = fds_of(anc); [os.close(x) for x in got]
    print(tag, 'max recv', msg, len(got), bool(fl & socket.MSG_CTRUNC))
    print(tag, 'over', err(lambda: a.sendmsg([b'O'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fdarr([pw] * 254))])))
    # two SCM_RIGHTS messages and credentials in one control buffer
    print(tag, 'two', err(lambda: a.sendmsg([b'T'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fdarr([pw])), (socket.SOL_SOCKET, socket.SCM_RIGHTS, fdarr([pw, pw]))])))
    b.setblocking(False)
    try:
        msg, anc, fl, _ = b.recvmsg(10, 256); got = fds_of(anc); [os.close(x) for x in got]
        print(tag, 'two recv', msg, len(got))
    except OSError as e:
        print(tag, 'two recv', errno.errorcode[e.errno])
    b.setblocking(True)
    print(tag, 'bad fd', err(lambda: a.sendmsg([b'B'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fdarr([9999]))])))
    print(tag, 'short cmsg', err(lambda: a.sendmsg([b'S'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, b'\x01\x00')])))
    b.setblocking(False)
    drained = []
    while True:
        try:
            msg, anc, fl, _ = b.recvmsg(10, 4096); [os.close(x) for x in fds_of(anc)]; drained.append(msg)
        except OSError:
            break
    print(tag, 'left', drained)
    b.setblocking(True)
for ty in (socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_SEQPACKET):
    a, b = socket.socketpair(socket.AF_UNIX, ty)
    roundtrip(a, b, 'pair%d' % ty)
    roundtrip(b, a, 'back%d' % ty)
    # a socket received by SCM_RIGHTS (unknown to the engine) passing fds on
    c, d = socket.socketpair(socket.AF_UNIX, ty)
    a.sendmsg([b'p'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fdarr([c.fileno()]))])
    _, anc, _, _ = b.recvmsg(10, socket.CMSG_SPACE(4))
    rc = socket.socket(fileno=fds_of(anc)[0])
    for i in range(3):
        roundtrip(rc, d, 'recv%d.%d' % (ty, i))
# accepted sockets (abstract names)
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); srv.bind('\0mif-rev-%d' % os.getpid()); srv.listen(1)
cl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); cl.connect('\0mif-rev-%d' % os.getpid())
ac, _ = srv.accept()
roundtrip(ac, cl, 'acc'); roundtrip(cl, ac, 'conn')
# a named datagram: sendmsg to an address with SCM_RIGHTS
rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); rx.bind('\0mif-rx-%d' % os.getpid())
tx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
print('named', err(lambda: tx.sendmsg([b'N'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fdarr([pw, pw]))], 0, '\0mif-rx-%d' % os.getpid())))
msg, anc, fl, _ = rx.recvmsg(10, 64); print('named recv', msg, len(fds_of(anc)))
print('named none', err(lambda: tx.sendmsg([b'N'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fdarr([pw]))], 0, '\0mif-nobody-%d' % os.getpid())))
print('unnamed unconnected', err(lambda: tx.sendmsg([b'N'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fdarr([pw]))])))
# a full non-blocking AF_UNIX datagram pair passing fds: EAGAIN, and MSG_DONTWAIT on a blocking one
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
a.setblocking(False)
res = set()
for i in range(2000):
    r = err(lambda: a.sendmsg([b'x' * 100], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fdarr([pw]))]))
    res.add(r)
    if r != 'sent':
        break
print('full', sorted(res))
a.setblocking(True)
print('full dontwait', err(lambda: a.sendmsg([b'x'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fdarr([pw]))], socket.MSG_DONTWAIT)))
a.settimeout(0.3)
print('full timeout', err(lambda: a.sendmsg([b'x'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fdarr([pw]))])))
# a fd beyond the shim's table
import resource
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if hard >= 2048:
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    x, y = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    os.dup2(x.fileno(), hard - 1); hi = socket.socket(fileno=hard - 1)
    for i in range(3):
        roundtrip(hi, y, 'high%d' % i)
else:
    print('no high fd')
"#;

#[test]
fn unix_scm_rights_as_without_mifrun_preload() {
    same_as_native(UNIX_FDS, Mode::Preload);
}

#[test]
fn unix_scm_rights_as_without_mifrun_supervise() {
    same_as_native(UNIX_FDS, Mode::Supervise);
}

// ---------------------------------------------------------------------------------
// Connected UDP sockets to loopback (exempt) with control data that gives no source:
// the supervisor now sends them itself.
// ---------------------------------------------------------------------------------

const LOOPBACK_CTL: &str = r#"
def recv_all(r):
    out = []
    r.settimeout(0.5)
    while True:
        try:
            msg, anc, fl, _ = r.recvmsg(70000, 256)
        except socket.timeout:
            break
        t = [(l, ty, int.from_bytes(d[:4] if len(d) >= 4 else d, 'little')) for l, ty, d in anc]
        out.append((len(msg), t))
    return out
for fam, host in ((socket.AF_INET, '127.0.0.1'), (socket.AF_INET6, '::1')):
    v6 = fam == socket.AF_INET6
    r = socket.socket(fam, socket.SOCK_DGRAM); r.bind((host, 0))
    if v6:
        r.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVTCLASS, 1); r.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        TOS = (socket.IPPROTO_IPV6, socket.IPV6_TCLASS, struct.pack('i', 0x28))
        TTL = (socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT, struct.pack('i', 7))
    else:
        r.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1); r.setsockopt(socket.IPPROTO_IP, 12, 1)
        TOS = (socket.IPPROTO_IP, socket.IP_TOS, struct.pack('i', 0x28))
        TTL = (socket.IPPROTO_IP, socket.IP_TTL, struct.pack('i', 7))
    s = socket.socket(fam, socket.SOCK_DGRAM); s.connect(r.getsockname())
    tag = 'v6' if v6 else 'v4'
    print(tag, 'tos', err(lambda: s.sendmsg([b'a'], [TOS])), recv_all(r))
    print(tag, 'tos+ttl', err(lambda: s.sendmsg([b'b'], [TOS, TTL])), recv_all(r))
    print(tag, 'gso', err(lambda: s.sendmsg([b'g' * 1500], [(SOL_UDP, UDP_SEGMENT, struct.pack('H', 500))])), recv_all(r))
    print(tag, 'gso+tos dontwait', err(lambda: s.sendmsg([b'h' * 1200], [(SOL_UDP, UDP_SEGMENT, struct.pack('H', 400)), TOS], socket.MSG_DONTWAIT)), recv_all(r))
    print(tag, 'gso bad', err(lambda: s.sendmsg([b'g' * 100], [(SOL_UDP, UDP_SEGMENT, struct.pack('B', 5))])), recv_all(r))
    print(tag, 'gso too many', err(lambda: s.sendmsg([b'g' * 60000], [(SOL_UDP, UDP_SEGMENT, struct.pack('H', 10))])), recv_all(r))
    print(tag, 'tos bad len', err(lambda: s.sendmsg([b'c'], [(TOS[0], TOS[1], b'\x01\x02')])), recv_all(r))
    print(tag, 'oob', err(lambda: s.sendmsg([b'd'], [TOS], socket.MSG_OOB)), recv_all(r))
    print(tag, 'more', err(lambda: s.sendmsg([b'e'], [TOS], socket.MSG_MORE)), err(lambda: s.sendmsg([b'f'], [TOS])), recv_all(r))
    print(tag, 'too big', err(lambda: s.sendmsg([b'x' * 65530], [TOS])), recv_all(r))
    print(tag, 'null control', err(lambda: rawhdr(s, b'n', ctl_ptr=0, ctllen=16)), recv_all(r))
    print(tag, 'bad control ptr', err(lambda: rawhdr(s, b'n', ctl_ptr=8, ctllen=16)), recv_all(r))
    print(tag, 'null iov base', err(lambda: rawhdr(s, b'n', iov_base=0, ctl=bytes(struct.pack('@Qii', 20, TOS[0], TOS[1])) + TOS[2] + bytes(4))), recv_all(r))
    print(tag, '1025 iovecs', err(lambda: rawhdr(s, b'i', iovlen=1025)), recv_all(r))
    print(tag, '1024 iovecs', err(lambda: rawhdr(s, b'i', iovlen=1024)), recv_all(r))
    # an ICMP port unreachable: the next send answers ECONNREFUSED
    c = socket.socket(fam, socket.SOCK_DGRAM); c.bind((host, 0)); dead = c.getsockname(); c.close()
    s2 = socket.socket(fam, socket.SOCK_DGRAM); s2.connect(dead)
    print(tag, 'refused 1', err(lambda: s2.sendmsg([b'r'], [TOS])))
    time.sleep(0.2)
    print(tag, 'refused 2', err(lambda: s2.sendmsg([b'r'], [TOS])))
    # not connected, no name
    u = socket.socket(fam, socket.SOCK_DGRAM)
    print(tag, 'no peer', err(lambda: u.sendmsg([b'u'], [TOS])))
    print(tag, 'no peer null control', err(lambda: rawhdr(u, b'u', ctl_ptr=0, ctllen=16)))
"#;

#[test]
fn loopback_connected_udp_control_as_without_mifrun_preload() {
    same_as_native(LOOPBACK_CTL, Mode::Preload);
}

#[test]
fn loopback_connected_udp_control_as_without_mifrun_supervise() {
    same_as_native(LOOPBACK_CTL, Mode::Supervise);
}

// ---------------------------------------------------------------------------------
// The program's own SO_BINDTODEVICE socket, before and after fork.
// ---------------------------------------------------------------------------------

/// The program binds its socket to wlan0 itself (the policy's interface) and sends
/// with a PKTINFO source of eth0's address: the kernel sends it (the program's
/// choice), and the shim leaves it to the kernel in the parent (`APP_BOUND`). In a
/// forked child the same socket is `SHARED | APP_BOUND` and `unnamed_source` takes
/// the program's own binding as a "found" one (shim/src/ops.rs:830,843) and refuses
/// it: the same call answers differently after fork (seen: EADDRNOTAVAIL in the child
/// and in the parent after the fork, v4 and v6; `--supervise` too, through its preload).
const OWN_BOUND_FORK: &str = r#"
for fam, dest, src in ((socket.AF_INET, S4, E4), (socket.AF_INET6, S6, E6)):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b'wlan0')
    s.connect(dest)
    if fam == socket.AF_INET:
        pk = (socket.IPPROTO_IP, 8, struct.pack('@i', 0) + socket.inet_aton(src) + bytes(4))
    else:
        pk = (socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, socket.inet_pton(socket.AF_INET6, src) + struct.pack('@I', 0))
    tos = (socket.IPPROTO_IP, socket.IP_TOS, struct.pack('i', 8)) if fam == socket.AF_INET else (socket.IPPROTO_IPV6, socket.IPV6_TCLASS, struct.pack('i', 8))
    print(fam, 'parent', err(lambda: s.sendmsg([b'p'], [pk])), err(lambda: s.sendmsg([b'q'], [tos])))
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        print(fam, 'child', err(lambda: s.sendmsg([b'c'], [pk])), err(lambda: s.sendmsg([b'd'], [tos])))
        sys.stdout.flush()
        os._exit(0)
    os.waitpid(pid, 0)
    print(fam, 'parent after', err(lambda: s.sendmsg([b'p'], [pk])))
"#;

#[test]
fn own_bound_socket_after_fork_as_without_mifrun_preload() {
    same_as_native(OWN_BOUND_FORK, Mode::Preload);
}

#[test]
fn own_bound_socket_after_fork_as_without_mifrun_supervise() {
    same_as_native(OWN_BOUND_FORK, Mode::Supervise);
}

// ---------------------------------------------------------------------------------
// TCP with sendmsg control data (the kernel ignores all but SOL_SOCKET's).
// ---------------------------------------------------------------------------------

const TCP_CTL: &str = r#"
for fam, host in ((socket.AF_INET, '203.0.113.10'), (socket.AF_INET6, '2001:db8:ff::10'), (socket.AF_INET, '127.0.0.1')):
    v6 = fam == socket.AF_INET6
    tos = (socket.IPPROTO_IPV6, socket.IPV6_TCLASS, struct.pack('i', 8)) if v6 else (socket.IPPROTO_IP, socket.IP_TOS, struct.pack('i', 8))
    if v6:
        pk = (socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, socket.inet_pton(socket.AF_INET6, E6) + struct.pack('@I', 0))
    else:
        pk = (socket.IPPROTO_IP, 8, struct.pack('@i', 0) + socket.inet_aton(E4) + bytes(4))
    if host == '127.0.0.1':
        srv = socket.socket(fam, socket.SOCK_STREAM); srv.bind((host, 0)); srv.listen(1); port = srv.getsockname()[1]
    else:
        port = 80
    s = socket.socket(fam, socket.SOCK_STREAM); s.settimeout(5); s.connect((host, port))
    print(host, 'pktinfo', err(lambda: s.sendmsg([b'GET / HTTP/1.0\r\n'], [pk])))
    print(host, 'tos', err(lambda: s.sendmsg([b'\r\n'], [tos])))
    print(host, 'bad sol_socket', err(lambda: s.sendmsg([b''], [(socket.SOL_SOCKET, 9999, b'1234')])))
    print(host, 'null control', err(lambda: rawhdr(s, b'x', ctl_ptr=0, ctllen=16)))
    if host == '127.0.0.1':
        c, _ = srv.accept(); time.sleep(0.1); print(host, c.recv(100)); c.close(); srv.close()
    else:
        data = b''
        while True:
            try:
                d = s.recv(4096)
            except socket.timeout:
                break
            if not d: break
            data += d
        print(host, data.split(b'\r\n')[0], data.endswith(b'ok\n'))
    s.close()
"#;

#[test]
fn tcp_sendmsg_control_as_without_mifrun_preload() {
    same_as_native(TCP_CTL, Mode::Preload);
}

#[test]
fn tcp_sendmsg_control_as_without_mifrun_supervise() {
    same_as_native(TCP_CTL, Mode::Supervise);
}
