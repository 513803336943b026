//! `mif-testserver --name NAME [--lifetime SECS]`: the upstream server of the testbed.
//!
//! Runs inside each upstream namespace. Every answer is the line
//! `upstream=NAME peer=IP:PORT`, so a test can tell which uplink carried the flow and which
//! source address the client used. Listens dual-stack (one IPv6 socket per port, V6ONLY off;
//! v4-mapped peers are printed as plain IPv4):
//!
//! - TCP 80 and 8080: minimal HTTP/1.1, any request gets `200 OK`, `Connection: close`;
//! - TCP 9000: writes the line and closes;
//! - UDP 9000 and 9001: answers each datagram with the line, from the address it was sent to
//!   (IP_PKTINFO / IPV6_PKTINFO), so connected UDP clients accept the reply.
//!
//! Threads only, no async runtime. The process exits by itself after `--lifetime` seconds
//! (default 300).

use std::io::{Read, Write};
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

fn main() {
    let mut name = None;
    let mut lifetime = 300u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--name" => name = args.next(),
            "--lifetime" => {
                lifetime = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| usage("--lifetime needs a number of seconds"))
            }
            _ => usage(&format!("unknown argument {a}")),
        }
    }
    let name: &'static str = Box::leak(
        name.unwrap_or_else(|| usage("--name is required"))
            .into_boxed_str(),
    );

    // Bind everything first; TCP 9000 last, because the testbed's readiness check uses it.
    let udp: Vec<OwnedFd> = [9000u16, 9001]
        .iter()
        .map(|&p| bind_v6(libc::SOCK_DGRAM, p))
        .collect();
    let http: Vec<TcpListener> = [80u16, 8080]
        .iter()
        .map(|&p| TcpListener::from(bind_v6(libc::SOCK_STREAM, p)))
        .collect();
    let line_port = TcpListener::from(bind_v6(libc::SOCK_STREAM, 9000));

    for fd in udp {
        std::thread::spawn(move || serve_udp(fd, name));
    }
    for l in http {
        std::thread::spawn(move || accept_loop(l, name, true));
    }
    std::thread::spawn(move || accept_loop(line_port, name, false));

    std::thread::sleep(Duration::from_secs(lifetime));
    std::process::exit(0);
}

fn usage(msg: &str) -> ! {
    eprintln!("mif-testserver: {msg}\nusage: mif-testserver --name NAME [--lifetime SECS]");
    std::process::exit(2);
}

fn fatal(what: &str) -> ! {
    eprintln!(
        "mif-testserver: {what}: {}",
        std::io::Error::last_os_error()
    );
    std::process::exit(1);
}

/// Creates a dual-stack IPv6 socket bound to `[::]:port` (listening if it is a stream socket).
fn bind_v6(ty: libc::c_int, port: u16) -> OwnedFd {
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd: RawFd = unsafe { libc::socket(libc::AF_INET6, ty | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        fatal("socket");
    }
    // SAFETY: fd is a fresh, valid descriptor that nothing else owns.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    setopt(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 0);
    setopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1);
    if ty == libc::SOCK_DGRAM {
        setopt(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1);
        setopt(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1);
    }
    // SAFETY: all-zero is a valid sockaddr_in6 (the unspecified address).
    let mut sa: libc::sockaddr_in6 = unsafe { zeroed() };
    sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    sa.sin6_port = port.to_be();
    // SAFETY: sa is a valid sockaddr_in6 and the length matches it.
    let rc = unsafe {
        libc::bind(
            fd,
            (&sa as *const libc::sockaddr_in6).cast(),
            size_of::<libc::sockaddr_in6>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        fatal(&format!("bind [::]:{port}"));
    }
    // SAFETY: listen(2) on our own socket.
    if ty == libc::SOCK_STREAM && unsafe { libc::listen(fd, 512) } != 0 {
        fatal("listen");
    }
    owned
}

fn setopt(fd: RawFd, level: libc::c_int, opt: libc::c_int, val: libc::c_int) {
    // SAFETY: val lives for the call and the length matches its type.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (&val as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        fatal(&format!("setsockopt {level}/{opt}"));
    }
}

fn normalise(sa: SocketAddr) -> SocketAddr {
    match sa {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => sa,
        },
        v4 => v4,
    }
}

fn answer(name: &str, peer: SocketAddr) -> String {
    format!("upstream={name} peer={}\n", normalise(peer))
}

fn accept_loop(l: TcpListener, name: &'static str, http: bool) {
    loop {
        match l.accept() {
            Ok((s, peer)) => {
                std::thread::spawn(move || {
                    let _ = serve_tcp(s, name, peer, http);
                });
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn serve_tcp(mut s: TcpStream, name: &str, peer: SocketAddr, http: bool) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    let body = answer(name, peer);
    if http {
        // Read the request head (bounded); any request gets the same answer.
        let mut buf = Vec::new();
        let mut chunk = [0u8; 2048];
        while buf.len() < 65536 && !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
            body.len(),
            body
        );
        s.write_all(resp.as_bytes())?;
    } else {
        s.write_all(body.as_bytes())?;
    }
    s.flush()?;
    let _ = s.shutdown(std::net::Shutdown::Write);
    // Drain briefly so the close does not turn into a RST that eats our answer.
    let mut sink = [0u8; 512];
    s.set_read_timeout(Some(Duration::from_millis(500)))?;
    while let Ok(n) = s.read(&mut sink) {
        if n == 0 {
            break;
        }
    }
    Ok(())
}

/// Where a datagram was sent to, as reported by IP_PKTINFO / IPV6_PKTINFO.
enum Dst {
    V4(libc::in_addr),
    V6(libc::in6_addr),
    Unknown,
}

fn serve_udp(fd: OwnedFd, name: &'static str) {
    let raw = fd.as_raw_fd();
    let mut buf = [0u8; 65536];
    loop {
        // SAFETY: zeroed sockaddr_in6 / msghdr are valid initial values; every pointer put in
        // msghdr refers to a local that outlives the recvmsg call.
        let mut from: libc::sockaddr_in6 = unsafe { zeroed() };
        let mut cbuf = [0u64; 32];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: see above.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_name = (&mut from as *mut libc::sockaddr_in6).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 32]>();
        // SAFETY: msg is fully initialised and points at live buffers.
        let n = unsafe { libc::recvmsg(raw, &mut msg, 0) };
        if n < 0 {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let mut dst = Dst::Unknown;
        // SAFETY: CMSG_* walk the control buffer the kernel just filled, within controllen.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                let h = &*c;
                if h.cmsg_level == libc::IPPROTO_IP && h.cmsg_type == libc::IP_PKTINFO {
                    let pi =
                        std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::in_pktinfo);
                    dst = Dst::V4(pi.ipi_addr);
                } else if h.cmsg_level == libc::IPPROTO_IPV6 && h.cmsg_type == libc::IPV6_PKTINFO {
                    let pi =
                        std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::in6_pktinfo);
                    if !matches!(dst, Dst::V4(_)) {
                        dst = Dst::V6(pi.ipi6_addr);
                    }
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        let peer = SocketAddr::new(
            IpAddr::V6(Ipv6Addr::from(from.sin6_addr.s6_addr)),
            u16::from_be(from.sin6_port),
        );
        let reply = answer(name, peer);
        send_reply(raw, &mut from, &dst, reply.as_bytes());
    }
}

fn send_reply(fd: RawFd, to: &mut libc::sockaddr_in6, dst: &Dst, data: &[u8]) {
    let mut cbuf = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: zeroed msghdr is valid; all pointers refer to locals alive during sendmsg.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (to as *mut libc::sockaddr_in6).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    // SAFETY: the control buffer is large enough for one pktinfo cmsg of either family; the
    // CMSG_* macros stay inside it.
    unsafe {
        match dst {
            Dst::V4(a) => {
                msg.msg_control = cbuf.as_mut_ptr().cast();
                msg.msg_controllen =
                    libc::CMSG_SPACE(size_of::<libc::in_pktinfo>() as u32) as usize;
                let c = libc::CMSG_FIRSTHDR(&msg);
                (*c).cmsg_level = libc::IPPROTO_IP;
                (*c).cmsg_type = libc::IP_PKTINFO;
                (*c).cmsg_len = libc::CMSG_LEN(size_of::<libc::in_pktinfo>() as u32) as usize;
                let pi = libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: *a,
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut libc::in_pktinfo, pi);
            }
            Dst::V6(a) => {
                msg.msg_control = cbuf.as_mut_ptr().cast();
                msg.msg_controllen =
                    libc::CMSG_SPACE(size_of::<libc::in6_pktinfo>() as u32) as usize;
                let c = libc::CMSG_FIRSTHDR(&msg);
                (*c).cmsg_level = libc::IPPROTO_IPV6;
                (*c).cmsg_type = libc::IPV6_PKTINFO;
                (*c).cmsg_len = libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as usize;
                let pi = libc::in6_pktinfo {
                    ipi6_addr: *a,
                    ipi6_ifindex: 0,
                };
                std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut libc::in6_pktinfo, pi);
            }
            Dst::Unknown => {}
        }
        // A multicast destination cannot be a source: let the kernel choose then.
        let is_mcast = match dst {
            Dst::V4(a) => (u32::from_be(a.s_addr) >> 28) == 0xe,
            Dst::V6(a) => a.s6_addr[0] == 0xff,
            Dst::Unknown => false,
        };
        if is_mcast {
            msg.msg_control = std::ptr::null_mut();
            msg.msg_controllen = 0;
        }
        libc::sendmsg(fd, &msg, 0);
    }
}
