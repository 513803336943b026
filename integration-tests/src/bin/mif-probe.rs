//! `mif-probe SUBCOMMAND ARGS…`: a small dynamically linked test program for socket calls the
//! stock tools cannot make. Every libc call goes through the normal exported symbols, so
//! `libmifshim.so` sees them when preloaded.
//!
//! Prints the server's reply line(s), or `errno=ENAME` on failure; exits 0 on success, 1 on
//! failure, 2 on bad usage.
//!
//! ```text
//! udp-sendto ADDR PORT            one sendto(2), print the reply
//! udp-sendmsg ADDR PORT           one sendmsg(2) with msg_name, print the reply
//! udp-sendmmsg ADDR PORT N [R]    R (default 1) batches of N datagrams by sendmmsg(2) on one
//!                                 socket, resending what a call left unsent (as sendmmsg(2)
//!                                 allows); print each reply and sendmmsg_calls=<calls made>
//! udp-connected ADDR PORT         connect(2) + send(2)
//! udp-v4-on-v6 ADDR4 PORT N       N datagrams to an IPv4 sockaddr_in from a dual-stack AF_INET6
//!                                 socket, each reply printed
//! udp-unspec ADDR4 PORT N         N datagrams from an AF_INET socket to a sockaddr_in whose
//!                                 sin_family is left 0 (AF_UNSPEC: Linux takes it as AF_INET)
//! close-stderr WHEN ADDR PORT     close(2) (WHEN: early = first thing; late = after a first
//!                                 connect), then a UDP socket (fd 2) connected to ADDR; one
//!                                 datagram and its reply, one more connect on another socket,
//!                                 then extra_replies=<replies to anything else written to fd 2
//!                                 within 500 ms>
//! dns-recvmmsg SERVER NAME        an A query for NAME sent to SERVER:53 from an unconnected
//!                                 UDP socket, the answer read with recvmmsg(2); prints
//!                                 from=<the answer's source address> a=<its last A record>
//! udp-clear-ucif ADDR PORT        3 datagrams, then the program sets IP(V6)_UNICAST_IF to 0,
//!                                 then 3 more, each reply printed
//! udp-mixed ADDR PORT LOOPBACK_PORT
//!                                 one unconnected socket alternately sends to the loopback
//!                                 address (127.0.0.1 or ::1, answered by an echo thread of the
//!                                 probe) and to ADDR; all replies must arrive
//! tcp-fastopen ADDR PORT          sendto(MSG_FASTOPEN), then read the line
//! tcp-nonblock ADDR PORT          non-blocking connect (must be EINPROGRESS), poll, read
//! threads T N ADDR PORT           T threads x N sequential TCP connects, histogram of answers
//! fork ADDR PORT                  fork; the child connects and prints; the parent waits
//! mcast-send GROUP PORT           UDP datagrams to a multicast group, no interface chosen
//! mcast-join GROUP [SECS]         join GROUP on "any interface", sleep SECS (default 1)
//! getsockopt-dev ADDR PORT        TCP connect, print the SO_BINDTODEVICE name ("none" if unset)
//! ```

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::ExitCode;
use std::time::Duration;

const REPLY_TIMEOUT: Duration = Duration::from_secs(3);

/// A failure with the errno that caused it.
struct Fail(i32);

type Res<T> = Result<T, Fail>;

fn last_errno() -> Fail {
    Fail(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

fn io_fail(e: std::io::Error) -> Fail {
    Fail(e.raw_os_error().unwrap_or(libc::EIO))
}

fn errno_name(e: i32) -> String {
    let n = match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::EACCES => "EACCES",
        libc::EINVAL => "EINVAL",
        libc::EPIPE => "EPIPE",
        libc::ENODEV => "ENODEV",
        libc::ENOPROTOOPT => "ENOPROTOOPT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::ENETDOWN => "ENETDOWN",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::ECONNABORTED => "ECONNABORTED",
        libc::ECONNRESET => "ECONNRESET",
        libc::ENOTCONN => "ENOTCONN",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::EHOSTDOWN => "EHOSTDOWN",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::EALREADY => "EALREADY",
        libc::EINPROGRESS => "EINPROGRESS",
        _ => return format!("E{e}"),
    };
    n.to_string()
}

fn usage() -> ExitCode {
    eprintln!("usage: mif-probe SUBCOMMAND ARGS… (see the module docs in mif-probe.rs)");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = match a.as_slice() {
        ["udp-sendto", addr, port] => with_sa(addr, port, udp_sendto),
        ["udp-sendmsg", addr, port] => with_sa(addr, port, udp_sendmsg),
        ["udp-sendmmsg", addr, port, n] => match n.parse::<usize>() {
            Ok(n) if (1..=64).contains(&n) => with_sa(addr, port, |sa| udp_sendmmsg(sa, n, 1)),
            _ => return usage(),
        },
        ["udp-sendmmsg", addr, port, n, r] => match (n.parse::<usize>(), r.parse::<usize>()) {
            (Ok(n), Ok(r)) if (1..=64).contains(&n) && (1..=20).contains(&r) => {
                with_sa(addr, port, |sa| udp_sendmmsg(sa, n, r))
            }
            _ => return usage(),
        },
        ["udp-connected", addr, port] => with_sa(addr, port, udp_connected),
        ["udp-v4-on-v6", addr, port, n] => match n.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => with_sa(addr, port, |sa| udp_v4_on_v6(sa, n)),
            _ => return usage(),
        },
        ["udp-unspec", addr, port, n] => match n.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => with_sa(addr, port, |sa| udp_unspec(sa, n)),
            _ => return usage(),
        },
        ["udp-clear-ucif", addr, port] => with_sa(addr, port, udp_clear_ucif),
        ["dns-recvmmsg", server, name] => with_sa(server, "53", |sa| dns_recvmmsg(sa, name)),
        ["close-stderr", when @ ("early" | "late"), addr, port] => {
            let late = *when == "late";
            with_sa(addr, port, |sa| close_stderr(sa, late))
        }
        ["udp-stream", addr, port, n] => match n.parse::<usize>() {
            Ok(n) if (1..=600).contains(&n) => with_sa(addr, port, |sa| udp_stream(sa, n)),
            _ => return usage(),
        },
        ["udp-mmsg-mixed", addr, port, lport] => match lport.parse::<u16>() {
            Ok(lp) => with_sa(addr, port, |sa| udp_mmsg_mixed(sa, lp)),
            Err(_) => return usage(),
        },
        ["udp-rfc2133", addr, port] => with_sa(addr, port, udp_rfc2133),
        ["udp-repeat", addr, port, n] => match n.parse::<usize>() {
            Ok(n) if (1..=10_000).contains(&n) => with_sa(addr, port, |sa| udp_repeat(sa, n)),
            _ => return usage(),
        },
        ["udp-mixed", addr, port, lport] => match lport.parse::<u16>() {
            Ok(lp) => with_sa(addr, port, |sa| udp_mixed(sa, lp)),
            Err(_) => return usage(),
        },
        ["tcp-fastopen", addr, port] => with_sa(addr, port, tcp_fastopen),
        ["tcp-nonblock", addr, port] => with_sa(addr, port, tcp_nonblock),
        ["threads", t, n, addr, port] => match (t.parse::<usize>(), n.parse::<usize>()) {
            (Ok(t), Ok(n)) if t <= 64 && n <= 1000 => with_sa(addr, port, |sa| threads(t, n, sa)),
            _ => return usage(),
        },
        ["fork", addr, port] => with_sa(addr, port, fork_connect),
        ["mcast-send", group, port] => with_sa(group, port, mcast_send),
        ["mcast-join", group] => with_ip(group, |ip| mcast_join(ip, 1)),
        ["mcast-join", group, secs] => match secs.parse::<u64>() {
            Ok(s) if s <= 30 => with_ip(group, |ip| mcast_join(ip, s)),
            _ => return usage(),
        },
        ["getsockopt-dev", addr, port] => with_sa(addr, port, getsockopt_dev),
        _ => return usage(),
    };
    match r {
        Some(Ok(())) => ExitCode::SUCCESS,
        Some(Err(Fail(e))) => {
            println!("errno={}", errno_name(e));
            ExitCode::from(1)
        }
        None => usage(),
    }
}

fn with_ip(addr: &str, f: impl FnOnce(IpAddr) -> Res<()>) -> Option<Res<()>> {
    addr.parse::<IpAddr>().ok().map(f)
}

fn with_sa(addr: &str, port: &str, f: impl FnOnce(SocketAddr) -> Res<()>) -> Option<Res<()>> {
    let ip = addr.parse::<IpAddr>().ok()?;
    let port = port.parse::<u16>().ok()?;
    Some(f(SocketAddr::new(ip, port)))
}

/// A `sockaddr_storage` holding `sa`, and its length.
fn raw_sa(sa: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut st: libc::sockaddr_storage = unsafe { zeroed() };
    let len = match sa {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in.
            let p = unsafe {
                &mut *(&mut st as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            p.sin_family = libc::AF_INET as libc::sa_family_t;
            p.sin_port = v4.port().to_be();
            p.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in6.
            let p = unsafe {
                &mut *(&mut st as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            p.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            p.sin6_port = v6.port().to_be();
            p.sin6_addr.s6_addr = v6.ip().octets();
            p.sin6_scope_id = v6.scope_id();
            size_of::<libc::sockaddr_in6>()
        }
    };
    (st, len as libc::socklen_t)
}

fn family(sa: &SocketAddr) -> libc::c_int {
    if sa.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    }
}

fn new_socket(fam: libc::c_int, ty: libc::c_int) -> Res<OwnedFd> {
    // SAFETY: plain socket(2); checked below.
    let fd = unsafe { libc::socket(fam, ty | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(last_errno());
    }
    // SAFETY: fd is fresh and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_rcvtimeo(fd: RawFd, d: Duration) {
    let tv = libc::timeval {
        tv_sec: d.as_secs() as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: tv outlives the call; the length matches.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        );
    }
}

/// Receives one datagram (bounded by SO_RCVTIMEO) and returns it as text.
fn recv_line(fd: RawFd) -> Res<String> {
    let mut buf = [0u8; 2048];
    // SAFETY: buf is writable for its whole length.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(last_errno());
    }
    Ok(String::from_utf8_lossy(&buf[..n as usize]).into_owned())
}

fn print_reply(s: &str) {
    print!("{s}");
    if !s.ends_with('\n') {
        println!();
    }
    let _ = std::io::stdout().flush();
}

/// One `sendto(2)` of `data` to `sa` through the normal libc symbol (so the preload
/// sees it).
fn send_to(fd: RawFd, data: &[u8], sa: &SocketAddr) -> Res<()> {
    let (st, len) = raw_sa(sa);
    send_raw(fd, data, 0, &st, len)
}

/// sendto(2) of `data` with `flags` to the raw address `st` (`len` bytes of it).
fn send_raw(
    fd: RawFd,
    data: &[u8],
    flags: libc::c_int,
    st: &libc::sockaddr_storage,
    len: libc::socklen_t,
) -> Res<()> {
    // SAFETY: data and st are live for the call; len <= size_of_val(st).
    let n = unsafe {
        libc::sendto(
            fd,
            data.as_ptr().cast(),
            data.len(),
            flags,
            (st as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if n < 0 { Err(last_errno()) } else { Ok(()) }
}

/// N datagrams to the IPv4 `sa` from a socket of family `sock_family`, the address's
/// family field set to `addr_family`; each reply printed.
fn udp_odd_family(
    sa: SocketAddr,
    n: usize,
    sock_family: libc::c_int,
    addr_family: libc::c_int,
    what: &str,
) -> Res<()> {
    if !sa.is_ipv4() {
        return Err(Fail(libc::EINVAL));
    }
    let s = new_socket(sock_family, libc::SOCK_DGRAM)?;
    set_rcvtimeo(s.as_raw_fd(), REPLY_TIMEOUT);
    let (mut st, len) = raw_sa(&sa);
    st.ss_family = addr_family as libc::sa_family_t;
    for i in 0..n {
        let msg = format!("probe {what} {i}");
        send_raw(s.as_raw_fd(), msg.as_bytes(), 0, &st, len)?;
        print_reply(&recv_line(s.as_raw_fd())?);
    }
    Ok(())
}

/// A `sockaddr_in` sent from a dual-stack AF_INET6 socket.
fn udp_v4_on_v6(sa: SocketAddr, n: usize) -> Res<()> {
    udp_odd_family(sa, n, libc::AF_INET6, libc::AF_INET, "udp-v4-on-v6")
}

/// A `sockaddr_in` with `sin_family` left 0 (AF_UNSPEC) from an AF_INET socket.
fn udp_unspec(sa: SocketAddr, n: usize) -> Res<()> {
    udp_odd_family(sa, n, libc::AF_INET, libc::AF_UNSPEC, "udp-unspec")
}

fn close_stderr(sa: SocketAddr, late: bool) -> Res<()> {
    if late {
        // A first decision: the engine is loaded and logging to fd 2.
        let s = new_socket(family(&sa), libc::SOCK_DGRAM)?;
        connect_raw(s.as_raw_fd(), &sa)?;
    }
    // SAFETY: closing our own standard error.
    unsafe { libc::close(2) };
    let s = new_socket(family(&sa), libc::SOCK_DGRAM)?;
    println!("socket_fd={}", s.as_raw_fd());
    connect_raw(s.as_raw_fd(), &sa)?;
    set_rcvtimeo(s.as_raw_fd(), REPLY_TIMEOUT);
    let msg = b"probe close-stderr";
    // SAFETY: msg is live for the call.
    if unsafe { libc::send(s.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) } < 0 {
        return Err(last_errno());
    }
    print_reply(&recv_line(s.as_raw_fd())?);
    // One more decision (logged at info) while fd 2 is a connected socket.
    let other = new_socket(family(&sa), libc::SOCK_DGRAM)?;
    connect_raw(other.as_raw_fd(), &sa)?;
    set_rcvtimeo(s.as_raw_fd(), Duration::from_millis(500));
    let mut extra = 0;
    while recv_line(s.as_raw_fd()).is_ok() {
        extra += 1;
    }
    println!("extra_replies={extra}");
    Ok(())
}

fn connect_raw(fd: RawFd, sa: &SocketAddr) -> Res<()> {
    let (st, len) = raw_sa(sa);
    // SAFETY: st is live for the call; len matches its contents.
    let r = unsafe { libc::connect(fd, (&st as *const libc::sockaddr_storage).cast(), len) };
    if r < 0 { Err(last_errno()) } else { Ok(()) }
}

fn dns_recvmmsg(sa: SocketAddr, name: &str) -> Res<()> {
    let mut q = vec![0x4d, 0x49, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    let s = new_socket(family(&sa), libc::SOCK_DGRAM)?;
    send_to(s.as_raw_fd(), &q, &sa)?;
    let mut buf = [0u8; 1500];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: all-zero is a valid sockaddr_storage and mmsghdr.
    let mut from: libc::sockaddr_storage = unsafe { zeroed() };
    // SAFETY: as above.
    let mut m: libc::mmsghdr = unsafe { zeroed() };
    m.msg_hdr.msg_name = (&mut from as *mut libc::sockaddr_storage).cast();
    m.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    m.msg_hdr.msg_iov = &mut iov;
    m.msg_hdr.msg_iovlen = 1;
    let mut timeout = libc::timespec {
        tv_sec: REPLY_TIMEOUT.as_secs() as libc::time_t,
        tv_nsec: 0,
    };
    // SAFETY: m points at live buffers; one message; MSG_WAITFORONE returns after it.
    let r = unsafe { libc::recvmmsg(s.as_raw_fd(), &mut m, 1, libc::MSG_WAITFORONE, &mut timeout) };
    if r != 1 {
        return Err(last_errno());
    }
    let n = m.msg_len as usize;
    let ip = match from.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in.
            let sin =
                unsafe { &*(&from as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            IpAddr::from(u32::from_be(sin.sin_addr.s_addr).to_be_bytes())
        }
        _ => {
            // SAFETY: the kernel wrote a sockaddr_in6.
            let sin6 =
                unsafe { &*(&from as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            IpAddr::from(sin6.sin6_addr.s6_addr)
        }
    };
    let a = (n >= 16).then(|| {
        format!(
            "{}.{}.{}.{}",
            buf[n - 4],
            buf[n - 3],
            buf[n - 2],
            buf[n - 1]
        )
    });
    println!("from={ip} a={}", a.unwrap_or_default());
    Ok(())
}

fn udp_clear_ucif(sa: SocketAddr) -> Res<()> {
    let s = new_socket(family(&sa), libc::SOCK_DGRAM)?;
    set_rcvtimeo(s.as_raw_fd(), REPLY_TIMEOUT);
    for i in 0..6 {
        if i == 3 {
            let (level, name) = if sa.is_ipv4() {
                (libc::IPPROTO_IP, libc::IP_UNICAST_IF)
            } else {
                (libc::IPPROTO_IPV6, libc::IPV6_UNICAST_IF)
            };
            let zero: libc::c_int = 0;
            // SAFETY: zero is a readable c_int for the call.
            let r = unsafe {
                libc::setsockopt(
                    s.as_raw_fd(),
                    level,
                    name,
                    (&zero as *const libc::c_int).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if r < 0 {
                return Err(last_errno());
            }
        }
        send_to(
            s.as_raw_fd(),
            format!("probe udp-clear-ucif {i}").as_bytes(),
            &sa,
        )?;
        print_reply(&recv_line(s.as_raw_fd())?);
    }
    Ok(())
}

fn udp_sendto(sa: SocketAddr) -> Res<()> {
    let s = new_socket(family(&sa), libc::SOCK_DGRAM)?;
    set_rcvtimeo(s.as_raw_fd(), REPLY_TIMEOUT);
    send_to(s.as_raw_fd(), b"probe udp-sendto", &sa)?;
    print_reply(&recv_line(s.as_raw_fd())?);
    Ok(())
}

/// N datagrams from one unconnected socket to the same destination, each reply
/// printed; then the socket's unicast interface (`IP_UNICAST_IF` / `IPV6_UNICAST_IF`,
/// an index in network byte order) as `unicast_if=N`.
fn udp_repeat(sa: SocketAddr, n: usize) -> Res<()> {
    let s = new_socket(family(&sa), libc::SOCK_DGRAM)?;
    set_rcvtimeo(s.as_raw_fd(), REPLY_TIMEOUT);
    for i in 0..n {
        send_to(
            s.as_raw_fd(),
            format!("probe udp-repeat {i}").as_bytes(),
            &sa,
        )?;
        print_reply(&recv_line(s.as_raw_fd())?);
    }
    let (level, name) = match sa.ip().to_canonical() {
        IpAddr::V4(_) => (libc::IPPROTO_IP, libc::IP_UNICAST_IF),
        IpAddr::V6(_) => (libc::IPPROTO_IPV6, libc::IPV6_UNICAST_IF),
    };
    let mut v: libc::c_int = 0;
    let mut vl = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: v and vl are valid for writes of their sizes.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            level,
            name,
            (&mut v as *mut libc::c_int).cast(),
            &mut vl,
        )
    };
    if r < 0 {
        return Err(last_errno());
    }
    println!("unicast_if={}", u32::from_be(v as u32));
    Ok(())
}

/// N datagrams, one every 100 ms, from one unconnected socket to the same
/// destination; each reply (or `errno=…` for a failed send or a missing reply) on its
/// own line, `n=I ` first. Never fails: the test reads the lines.
fn udp_stream(sa: SocketAddr, n: usize) -> Res<()> {
    let s = new_socket(family(&sa), libc::SOCK_DGRAM)?;
    set_rcvtimeo(s.as_raw_fd(), Duration::from_millis(300));
    for i in 0..n {
        let sent = send_to(
            s.as_raw_fd(),
            format!("probe udp-stream {i}").as_bytes(),
            &sa,
        );
        let line = match sent.and_then(|()| recv_line(s.as_raw_fd())) {
            Ok(l) => l.trim_end().to_string(),
            Err(e) => format!("errno={}", errno_name(e.0)),
        };
        println!("n={i} {line}");
        let _ = std::io::stdout().flush();
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn udp_sendmsg(sa: SocketAddr) -> Res<()> {
    let s = new_socket(family(&sa), libc::SOCK_DGRAM)?;
    set_rcvtimeo(s.as_raw_fd(), REPLY_TIMEOUT);
    let (mut st, len) = raw_sa(&sa);
    let data = b"probe udp-sendmsg";
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: zeroed msghdr is valid; its pointers refer to locals alive during sendmsg.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut st as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = len;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    // SAFETY: msg is fully initialised.
    let n = unsafe { libc::sendmsg(s.as_raw_fd(), &msg, 0) };
    if n < 0 {
        return Err(last_errno());
    }
    print_reply(&recv_line(s.as_raw_fd())?);
    Ok(())
}

/// One iovec per payload (pointing into it: keep the payloads alive while in use).
fn iovecs<P: AsRef<[u8]>>(payloads: &[P]) -> Vec<libc::iovec> {
    payloads
        .iter()
        .map(|p| libc::iovec {
            iov_base: p.as_ref().as_ptr() as *mut libc::c_void,
            iov_len: p.as_ref().len(),
        })
        .collect()
}

fn udp_sendmmsg(sa: SocketAddr, n: usize, rounds: usize) -> Res<()> {
    let s = new_socket(family(&sa), libc::SOCK_DGRAM)?;
    set_rcvtimeo(s.as_raw_fd(), REPLY_TIMEOUT);
    let (st, len) = raw_sa(&sa);
    let mut names: Vec<libc::sockaddr_storage> = vec![st; n];
    let mut calls = 0;
    for r in 0..rounds {
        let payloads: Vec<Vec<u8>> = (0..n)
            .map(|i| format!("probe sendmmsg {}", r * n + i).into_bytes())
            .collect();
        let mut iovs = iovecs(&payloads);
        let mut msgs: Vec<libc::mmsghdr> = (0..n)
            .map(|i| {
                // SAFETY: zeroed mmsghdr is valid; the pointers set below stay valid
                // until the last sendmmsg returns (names and iovs are not touched in
                // between).
                let mut m: libc::mmsghdr = unsafe { zeroed() };
                m.msg_hdr.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
                m.msg_hdr.msg_namelen = len;
                m.msg_hdr.msg_iov = &mut iovs[i];
                m.msg_hdr.msg_iovlen = 1;
                m
            })
            .collect();
        let mut done = 0;
        while done < n {
            calls += 1;
            // SAFETY: msgs[done..] holds n - done initialised headers.
            let sent = unsafe {
                libc::sendmmsg(
                    s.as_raw_fd(),
                    msgs.as_mut_ptr().add(done),
                    (n - done) as libc::c_uint,
                    0,
                )
            };
            if sent < 0 {
                return Err(last_errno());
            }
            if sent == 0 || calls > 100 * rounds {
                eprintln!("mif-probe: sendmmsg makes no progress ({done} of {n} sent)");
                return Err(Fail(libc::EIO));
            }
            done += sent as usize;
        }
        for _ in 0..n {
            print_reply(&recv_line(s.as_raw_fd())?);
        }
    }
    println!("sendmmsg_calls={calls}");
    Ok(())
}

/// One sendto to the service, then one sendmmsg of [service, loopback echo] on the
/// same unconnected socket: both service replies and the loopback echo are printed.
fn udp_mmsg_mixed(sa: SocketAddr, lport: u16) -> Res<()> {
    let (lo, echo) = loopback_echo(&sa, lport)?;
    let s = new_socket(family(&sa), libc::SOCK_DGRAM)?;
    set_rcvtimeo(s.as_raw_fd(), REPLY_TIMEOUT);
    send_to(s.as_raw_fd(), b"probe mmsg-mixed 0", &sa)?;
    print_reply(&recv_line(s.as_raw_fd())?);
    let dests = [sa, lo];
    let mut names: Vec<(libc::sockaddr_storage, libc::socklen_t)> =
        dests.iter().map(raw_sa).collect();
    let payloads: [&[u8]; 2] = [b"probe mmsg-mixed 1", b"probe mmsg-mixed loopback"];
    let mut iovs = iovecs(&payloads);
    let mut msgs: Vec<libc::mmsghdr> = (0..2)
        .map(|i| {
            // SAFETY: zeroed mmsghdr is valid; the pointers stay valid until sendmmsg returns.
            let mut m: libc::mmsghdr = unsafe { zeroed() };
            m.msg_hdr.msg_name = (&mut names[i].0 as *mut libc::sockaddr_storage).cast();
            m.msg_hdr.msg_namelen = names[i].1;
            m.msg_hdr.msg_iov = &mut iovs[i];
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect();
    let mut sent = 0usize;
    while sent < 2 {
        // SAFETY: msgs[sent..] are initialised headers.
        let r = unsafe {
            libc::sendmmsg(
                s.as_raw_fd(),
                msgs[sent..].as_mut_ptr(),
                (2 - sent) as libc::c_uint,
                0,
            )
        };
        if r <= 0 {
            return Err(last_errno());
        }
        sent += r as usize;
    }
    print_reply(&recv_line(s.as_raw_fd())?);
    let mut buf = [0u8; 512];
    let (n, _) = echo.recv_from(&mut buf).map_err(io_fail)?;
    println!("loopback-got {}", String::from_utf8_lossy(&buf[..n]));
    Ok(())
}

/// A sendto whose IPv6 address is the 24-byte RFC 2133 `sockaddr_in6` (no
/// `sin6_scope_id`), which the kernel accepts.
fn udp_rfc2133(sa: SocketAddr) -> Res<()> {
    let SocketAddr::V6(v6) = sa else {
        return Err(Fail(libc::EAFNOSUPPORT));
    };
    let s = new_socket(libc::AF_INET6, libc::SOCK_DGRAM)?;
    set_rcvtimeo(s.as_raw_fd(), REPLY_TIMEOUT);
    let (st, _) = raw_sa(&SocketAddr::V6(v6));
    // The first 24 bytes of st: the RFC 2133 sockaddr_in6, without sin6_scope_id.
    send_raw(s.as_raw_fd(), b"probe udp-rfc2133", 0, &st, 24)?;
    print_reply(&recv_line(s.as_raw_fd())?);
    Ok(())
}

fn udp_connected(sa: SocketAddr) -> Res<()> {
    let bind: SocketAddr = if sa.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
        .parse()
        .unwrap();
    let s = UdpSocket::bind(bind).map_err(io_fail)?;
    s.set_read_timeout(Some(REPLY_TIMEOUT)).map_err(io_fail)?;
    s.connect(sa).map_err(io_fail)?;
    s.send(b"probe udp-connected").map_err(io_fail)?;
    let mut buf = [0u8; 2048];
    let n = s.recv(&mut buf).map_err(io_fail)?;
    print_reply(&String::from_utf8_lossy(&buf[..n]));
    Ok(())
}

/// A UDP socket on the loopback address of `sa`'s family, port `lport`, with the
/// reply time-out: the local peer of the mixed-destination probes.
fn loopback_echo(sa: &SocketAddr, lport: u16) -> Res<(SocketAddr, UdpSocket)> {
    let ip: IpAddr = if sa.is_ipv4() {
        std::net::Ipv4Addr::LOCALHOST.into()
    } else {
        std::net::Ipv6Addr::LOCALHOST.into()
    };
    let lo = SocketAddr::new(ip, lport);
    let echo = UdpSocket::bind(lo).map_err(io_fail)?;
    echo.set_read_timeout(Some(REPLY_TIMEOUT))
        .map_err(io_fail)?;
    Ok((lo, echo))
}

fn udp_mixed(sa: SocketAddr, lport: u16) -> Res<()> {
    // The loopback echo: answers three datagrams, then ends.
    let (lo, echo) = loopback_echo(&sa, lport)?;
    let th = std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        for _ in 0..3 {
            match echo.recv_from(&mut buf) {
                Ok((_, from)) => {
                    let _ = echo.send_to(format!("loopback-echo peer={from}\n").as_bytes(), from);
                }
                Err(_) => break,
            }
        }
    });
    let s = new_socket(family(&sa), libc::SOCK_DGRAM)?;
    set_rcvtimeo(s.as_raw_fd(), REPLY_TIMEOUT);
    let mut result = Ok(());
    for round in 0..3 {
        for dst in [lo, sa] {
            if let Err(e) = send_to(
                s.as_raw_fd(),
                format!("probe udp-mixed {round}").as_bytes(),
                &dst,
            ) {
                result = Err(e);
                break;
            }
            match recv_line(s.as_raw_fd()) {
                Ok(r) => print_reply(&r),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if result.is_err() {
            break;
        }
    }
    let _ = th.join();
    result
}

fn read_all(fd: RawFd) -> Res<String> {
    set_rcvtimeo(fd, REPLY_TIMEOUT);
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    loop {
        // SAFETY: buf is writable for its whole length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(last_errno());
        }
        if n == 0 || out.len() > 65536 {
            break;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn tcp_fastopen(sa: SocketAddr) -> Res<()> {
    let s = new_socket(family(&sa), libc::SOCK_STREAM)?;
    let (st, len) = raw_sa(&sa);
    send_raw(
        s.as_raw_fd(),
        b"probe tcp-fastopen\n",
        libc::MSG_FASTOPEN,
        &st,
        len,
    )?;
    print_reply(&read_all(s.as_raw_fd())?);
    Ok(())
}

fn tcp_nonblock(sa: SocketAddr) -> Res<()> {
    let s = new_socket(family(&sa), libc::SOCK_STREAM | libc::SOCK_NONBLOCK)?;
    let fd = s.as_raw_fd();
    let (st, len) = raw_sa(&sa);
    // SAFETY: st is live for the call.
    let rc = unsafe { libc::connect(fd, (&st as *const libc::sockaddr_storage).cast(), len) };
    if rc == 0 {
        eprintln!("mif-probe: non-blocking connect returned 0, expected EINPROGRESS");
        return Err(Fail(libc::EIO));
    }
    let e = last_errno();
    if e.0 != libc::EINPROGRESS {
        return Err(e);
    }
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, 5000) };
    if n < 0 {
        return Err(last_errno());
    }
    if n == 0 {
        return Err(Fail(libc::ETIMEDOUT));
    }
    let mut err: libc::c_int = 0;
    let mut elen = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: err/elen are valid out-parameters.
    unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut elen,
        );
    }
    if err != 0 {
        return Err(Fail(err));
    }
    // Back to blocking for the read.
    // SAFETY: fcntl on our own descriptor.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK);
    }
    print_reply(&read_all(fd)?);
    Ok(())
}

fn tcp_line(sa: SocketAddr) -> Result<String, i32> {
    let mut s = TcpStream::connect_timeout(&sa, REPLY_TIMEOUT)
        .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
    s.set_read_timeout(Some(REPLY_TIMEOUT)).ok();
    let mut out = String::new();
    s.read_to_string(&mut out)
        .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
    Ok(out)
}

fn threads(t: usize, n: usize, sa: SocketAddr) -> Res<()> {
    let handles: Vec<_> = (0..t)
        .map(|_| {
            std::thread::spawn(move || {
                let mut h: BTreeMap<String, usize> = BTreeMap::new();
                for _ in 0..n {
                    let key = match tcp_line(sa) {
                        Ok(line) => line
                            .split_whitespace()
                            .find(|w| w.starts_with("upstream="))
                            .unwrap_or("upstream=?")
                            .to_string(),
                        Err(e) => format!("error={}", errno_name(e)),
                    };
                    *h.entry(key).or_default() += 1;
                }
                h
            })
        })
        .collect();
    let mut total: BTreeMap<String, usize> = BTreeMap::new();
    for h in handles {
        for (k, v) in h.join().unwrap_or_default() {
            *total.entry(k).or_default() += v;
        }
    }
    let mut ok = true;
    for (k, v) in &total {
        println!("{k} count={v}");
        if !k.starts_with("upstream=") || k == "upstream=?" {
            ok = false;
        }
    }
    if ok { Ok(()) } else { Err(Fail(libc::EIO)) }
}

fn fork_connect(sa: SocketAddr) -> Res<()> {
    let _ = std::io::stdout().flush();
    // SAFETY: the child only performs a connect/read and then _exit()s; the probe is
    // single-threaded here.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(last_errno());
    }
    if pid == 0 {
        let code = match tcp_line(sa) {
            Ok(line) => {
                print!("child: {line}");
                0
            }
            Err(e) => {
                println!("errno={}", errno_name(e));
                1
            }
        };
        let _ = std::io::stdout().flush();
        // SAFETY: terminate the child without running the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    if unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
        return Err(last_errno());
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else {
        std::process::exit(1)
    }
}

fn mcast_send(sa: SocketAddr) -> Res<()> {
    let s = new_socket(family(&sa), libc::SOCK_DGRAM)?;
    let (st, len) = raw_sa(&sa);
    for i in 0..3 {
        send_raw(
            s.as_raw_fd(),
            format!("probe mcast {i}").as_bytes(),
            0,
            &st,
            len,
        )?;
    }
    println!("sent=3");
    Ok(())
}

fn mcast_join(group: IpAddr, secs: u64) -> Res<()> {
    let s = match group {
        IpAddr::V4(g) => {
            let s = new_socket(libc::AF_INET, libc::SOCK_DGRAM)?;
            let mreq = libc::ip_mreq {
                imr_multiaddr: libc::in_addr {
                    s_addr: u32::from(g).to_be(),
                },
                imr_interface: libc::in_addr { s_addr: 0 },
            };
            // SAFETY: mreq outlives the call; the length matches.
            let rc = unsafe {
                libc::setsockopt(
                    s.as_raw_fd(),
                    libc::IPPROTO_IP,
                    libc::IP_ADD_MEMBERSHIP,
                    (&mreq as *const libc::ip_mreq).cast(),
                    size_of::<libc::ip_mreq>() as libc::socklen_t,
                )
            };
            if rc != 0 {
                return Err(last_errno());
            }
            s
        }
        IpAddr::V6(g) => {
            let s = new_socket(libc::AF_INET6, libc::SOCK_DGRAM)?;
            let mreq = libc::ipv6_mreq {
                ipv6mr_multiaddr: libc::in6_addr {
                    s6_addr: g.octets(),
                },
                ipv6mr_interface: 0,
            };
            // SAFETY: mreq outlives the call; the length matches.
            let rc = unsafe {
                libc::setsockopt(
                    s.as_raw_fd(),
                    libc::IPPROTO_IPV6,
                    libc::IPV6_ADD_MEMBERSHIP,
                    (&mreq as *const libc::ipv6_mreq).cast(),
                    size_of::<libc::ipv6_mreq>() as libc::socklen_t,
                )
            };
            if rc != 0 {
                return Err(last_errno());
            }
            s
        }
    };
    std::thread::sleep(Duration::from_secs(secs));
    drop(s);
    Ok(())
}

fn getsockopt_dev(sa: SocketAddr) -> Res<()> {
    let s = TcpStream::connect_timeout(&sa, REPLY_TIMEOUT).map_err(io_fail)?;
    let mut name = [0u8; libc::IFNAMSIZ];
    let mut len = name.len() as libc::socklen_t;
    // SAFETY: name/len are valid out-parameters of the stated size.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            name.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(last_errno());
    }
    let end = name
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(len as usize)
        .min(len as usize);
    let dev = String::from_utf8_lossy(&name[..end]).into_owned();
    println!("{}", if dev.is_empty() { "none" } else { &dev });
    Ok(())
}
