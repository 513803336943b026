//! A minimal rtnetlink client: dumps links and addresses with raw system calls and a
//! static buffer (no allocation), for the interface snapshot.

use libc::{c_int, c_void};
use std::mem::size_of;
use std::net::IpAddr;

/// One thing the kernel told us.
pub(crate) enum Item<'a> {
    Link {
        index: u32,
        flags: u32,
        name: &'a [u8],
    },
    Addr {
        index: u32,
        ip: IpAddr,
        scope: u8,
        flags: u32,
        /// The on-link prefix: `IFA_ADDRESS` (the peer on a point-to-point link) and
        /// the prefix length.
        onlink: IpAddr,
        prefix: u8,
    },
}

const BUF_LEN: usize = 32 * 1024;

/// Receive buffer, 4-byte aligned as netlink headers require.
#[repr(C, align(8))]
pub(crate) struct RecvBuf(pub [u8; BUF_LEN]);

impl RecvBuf {
    pub(crate) const fn new() -> Self {
        RecvBuf([0; BUF_LEN])
    }
}

/// Dumps all links, then all addresses, calling `f` for each. `buf` is the caller's
/// (the snapshot refresher owns one exclusively).
pub(crate) fn dump(buf: &mut RecvBuf, f: &mut dyn FnMut(Item<'_>)) -> Result<(), c_int> {
    with_socket(|fd| {
        dump_one(fd, buf, libc::RTM_GETLINK, 1, f)
            .and_then(|_| dump_one(fd, buf, libc::RTM_GETADDR, 2, f))
    })
}

/// Runs `f` on a fresh rtnetlink socket, made and closed with raw system calls
/// (bypassing every preload, ours included).
fn with_socket<T>(f: impl FnOnce(c_int) -> Result<T, c_int>) -> Result<T, c_int> {
    // SAFETY: plain socket(2) via syscall(2).
    let fd = unsafe {
        libc::syscall(
            libc::SYS_socket,
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    } as c_int;
    if fd < 0 {
        return Err(super::errno());
    }
    let r = f(fd);
    // SAFETY: closing the socket we opened, via syscall(2).
    unsafe { libc::syscall(libc::SYS_close, fd) };
    r
}

/// Sends `len` bytes of a request at `req` to the kernel (an unbound netlink socket
/// with a zero destination).
fn send_request(fd: c_int, req: *const c_void, len: usize) -> Result<(), c_int> {
    // SAFETY: the caller's request, `len` bytes of it.
    let n = unsafe { libc::syscall(libc::SYS_sendto, fd, req, len, 0, 0usize, 0usize) };
    if n < 0 { Err(super::errno()) } else { Ok(()) }
}

/// Receives one netlink datagram into `buf` (retrying `EINTR`); its length.
fn recv_reply(fd: c_int, buf: &mut [u8]) -> Result<usize, c_int> {
    loop {
        // SAFETY: receiving into our own buffer of its size.
        let n = unsafe {
            libc::syscall(
                libc::SYS_recvfrom,
                fd,
                buf.as_mut_ptr(),
                buf.len(),
                0,
                0usize,
                0usize,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = super::errno();
        if e != libc::EINTR {
            return Err(e);
        }
    }
}

#[repr(C)]
struct Request {
    nh: libc::nlmsghdr,
    // ifinfomsg and ifaddrmsg both start with the family byte; 16 bytes covers the
    // larger of the two.
    body: [u8; 16],
}

fn dump_one(
    fd: c_int,
    buf: &mut RecvBuf,
    ty: u16,
    seq: u32,
    f: &mut dyn FnMut(Item<'_>),
) -> Result<(), c_int> {
    let body_len = if ty == libc::RTM_GETLINK { 16 } else { 8 };
    let req = Request {
        nh: libc::nlmsghdr {
            nlmsg_len: (size_of::<libc::nlmsghdr>() + body_len) as u32,
            nlmsg_type: ty,
            nlmsg_flags: (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16,
            nlmsg_seq: seq,
            nlmsg_pid: 0,
        },
        body: [0; 16], // family AF_UNSPEC: everything
    };
    send_request(
        fd,
        (&raw const req).cast::<c_void>(),
        req.nh.nlmsg_len as usize,
    )?;
    for _ in 0..10_000 {
        let n = recv_reply(fd, &mut buf.0)?;
        let data = &buf.0[..n];
        let mut off = 0;
        while off + size_of::<libc::nlmsghdr>() <= data.len() {
            let len = u32::from_ne_bytes(data[off..off + 4].try_into().unwrap_or([0; 4])) as usize;
            let mtype = u16::from_ne_bytes(data[off + 4..off + 6].try_into().unwrap_or([0; 2]));
            if len < size_of::<libc::nlmsghdr>() || off + len > data.len() {
                return Err(libc::EPROTO);
            }
            let msg = &data[off + size_of::<libc::nlmsghdr>()..off + len];
            match mtype as c_int {
                libc::NLMSG_DONE => return Ok(()),
                libc::NLMSG_ERROR => {
                    let e = msg
                        .get(..4)
                        .map_or(0, |b| i32::from_ne_bytes(b.try_into().unwrap_or([0; 4])));
                    return if e == 0 { Ok(()) } else { Err(-e) };
                }
                t if t == libc::RTM_NEWLINK as c_int => parse_link(msg, f),
                t if t == libc::RTM_NEWADDR as c_int => parse_addr(msg, f),
                _ => {}
            }
            off += (len + 3) & !3;
        }
    }
    Err(libc::EPROTO)
}

/// Iterates rtattrs: (type, payload).
fn attrs<'a>(mut b: &'a [u8], mut f: impl FnMut(u16, &'a [u8])) {
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let ty = u16::from_ne_bytes([b[2], b[3]]);
        if len < 4 || len > b.len() {
            return;
        }
        f(ty & 0x3fff, &b[4..len]);
        let adv = (len + 3) & !3;
        if adv >= b.len() {
            return;
        }
        b = &b[adv..];
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

fn parse_link(msg: &[u8], f: &mut dyn FnMut(Item<'_>)) {
    // struct ifinfomsg: family u8, pad u8, type u16, index i32, flags u32, change u32.
    if msg.len() < 16 {
        return;
    }
    let index = u32_at(msg, 4);
    let flags = u32_at(msg, 8);
    let mut name: &[u8] = &[];
    attrs(&msg[16..], |ty, p| {
        if ty == libc::IFLA_IFNAME {
            name = p.split(|b| *b == 0).next().unwrap_or(&[]);
        }
    });
    f(Item::Link { index, flags, name });
}

fn parse_addr(msg: &[u8], f: &mut dyn FnMut(Item<'_>)) {
    // struct ifaddrmsg: family u8, prefixlen u8, flags u8, scope u8, index u32.
    if msg.len() < 8 {
        return;
    }
    let family = msg[0] as c_int;
    let prefix = msg[1];
    let mut flags = msg[2] as u32;
    let scope = msg[3];
    let index = u32_at(msg, 4);
    let mut local: Option<IpAddr> = None;
    let mut address: Option<IpAddr> = None;
    attrs(&msg[8..], |ty, p| {
        let ip = match (family, p.len()) {
            (libc::AF_INET, 4) => Some(IpAddr::from([p[0], p[1], p[2], p[3]])),
            (libc::AF_INET6, 16) => {
                let mut a = [0u8; 16];
                a.copy_from_slice(p);
                Some(IpAddr::from(a))
            }
            _ => None,
        };
        match ty {
            libc::IFA_LOCAL => local = ip,
            libc::IFA_ADDRESS => address = ip,
            libc::IFA_FLAGS if p.len() == 4 => flags = u32_at(p, 0),
            _ => {}
        }
    });
    // IPv4 point-to-point links put the peer in IFA_ADDRESS and ours in IFA_LOCAL.
    if let Some(ip) = local.or(address) {
        f(Item::Addr {
            index,
            ip,
            scope,
            flags,
            onlink: address.unwrap_or(ip),
            prefix,
        });
    }
}

/// The interface the routing table sends `dest` through (`RTM_GETROUTE`, as
/// `ip route get` asks): for a direct destination on a socket whose unicast interface
/// must not apply. One request, one answer, a stack buffer; raw system calls only.
pub(crate) fn route_oif(dest: IpAddr) -> Result<u32, c_int> {
    #[repr(C, align(8))]
    struct Req {
        nh: libc::nlmsghdr,
        // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags(u32)
        rtm: [u8; 12],
        // one RTA_DST attribute: header (4) + up to 16 bytes
        rta: [u8; 20],
    }
    let (family, addr_len, bytes): (u8, usize, [u8; 16]) = match dest {
        IpAddr::V4(a) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&a.octets());
            (libc::AF_INET as u8, 4, b)
        }
        IpAddr::V6(a) => (libc::AF_INET6 as u8, 16, a.octets()),
    };
    let mut req = Req {
        nh: libc::nlmsghdr {
            nlmsg_len: 0,
            nlmsg_type: libc::RTM_GETROUTE,
            nlmsg_flags: libc::NLM_F_REQUEST as u16,
            nlmsg_seq: 3,
            nlmsg_pid: 0,
        },
        rtm: [0; 12],
        rta: [0; 20],
    };
    req.rtm[0] = family;
    req.rtm[1] = (addr_len * 8) as u8;
    let rta_len = 4 + addr_len;
    req.rta[..2].copy_from_slice(&(rta_len as u16).to_ne_bytes());
    req.rta[2..4].copy_from_slice(&libc::RTA_DST.to_ne_bytes());
    req.rta[4..4 + addr_len].copy_from_slice(&bytes[..addr_len]);
    req.nh.nlmsg_len = (size_of::<libc::nlmsghdr>() + 12 + rta_len) as u32;
    with_socket(|fd| route_oif_on(fd, &req.nh, req.nh.nlmsg_len as usize))
}

fn route_oif_on(fd: c_int, req: &libc::nlmsghdr, len: usize) -> Result<u32, c_int> {
    send_request(fd, (req as *const libc::nlmsghdr).cast::<c_void>(), len)?;
    #[repr(C, align(8))]
    struct Buf([u8; 4096]);
    let mut buf = Buf([0; 4096]);
    let n = recv_reply(fd, &mut buf.0)?;
    parse_route_reply(&buf.0[..n])
}

/// The `RTA_OIF` of an `RTM_NEWROUTE` answer (or the errno of an `NLMSG_ERROR`).
fn parse_route_reply(data: &[u8]) -> Result<u32, c_int> {
    let hl = size_of::<libc::nlmsghdr>();
    if data.len() < hl {
        return Err(libc::EPROTO);
    }
    let len = u32_at(data, 0) as usize;
    let ty = u16::from_ne_bytes([data[4], data[5]]);
    if len < hl || len > data.len() {
        return Err(libc::EPROTO);
    }
    let msg = &data[hl..len];
    if ty as c_int == libc::NLMSG_ERROR {
        let e = msg
            .get(..4)
            .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
        return Err(if e < 0 { -e } else { libc::EPROTO });
    }
    if ty != libc::RTM_NEWROUTE || msg.len() < 12 {
        return Err(libc::EPROTO);
    }
    let mut oif = None;
    attrs(&msg[12..], |t, p| {
        if t == libc::RTA_OIF && p.len() == 4 {
            oif = Some(u32_at(p, 0));
        }
    });
    oif.ok_or(libc::ENETUNREACH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_reply_gives_the_output_interface_or_the_kernel_error() {
        // An RTM_NEWROUTE with RTA_TABLE and RTA_OIF = 7.
        let mut m = vec![0u8; 16];
        m[4..6].copy_from_slice(&libc::RTM_NEWROUTE.to_ne_bytes());
        m.extend_from_slice(&[libc::AF_INET as u8, 32, 0, 0, 254, 0, 0, 1, 0, 0, 0, 0]);
        for (t, v) in [(libc::RTA_TABLE, 254u32), (libc::RTA_OIF, 7u32)] {
            m.extend_from_slice(&8u16.to_ne_bytes());
            m.extend_from_slice(&t.to_ne_bytes());
            m.extend_from_slice(&v.to_ne_bytes());
        }
        let len = m.len() as u32;
        m[..4].copy_from_slice(&len.to_ne_bytes());
        assert_eq!(parse_route_reply(&m), Ok(7));
        // NLMSG_ERROR -ENETUNREACH.
        let mut e = vec![0u8; 16];
        e[4..6].copy_from_slice(&(libc::NLMSG_ERROR as u16).to_ne_bytes());
        e.extend_from_slice(&(-libc::ENETUNREACH).to_ne_bytes());
        e.extend_from_slice(&[0; 16]);
        let len = e.len() as u32;
        e[..4].copy_from_slice(&len.to_ne_bytes());
        assert_eq!(parse_route_reply(&e), Err(libc::ENETUNREACH));
        assert_eq!(parse_route_reply(&[1, 2]), Err(libc::EPROTO));
    }
}
