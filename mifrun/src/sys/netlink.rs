//! A small rtnetlink client: the links, addresses and routes of this network
//! namespace, and the kernel's own route lookup (`ip route get`), for `mifrun status`,
//! `explain` and `doctor`. Requests and replies are built and read by safe code over
//! byte buffers; only the socket's system calls are `unsafe`.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_GETROUTE: u16 = 26;
const RTM_NEWRULE: u16 = 32;
const RTM_DELRULE: u16 = 33;
const RTM_GETRULE: u16 = 34;
const NLM_F_ACK: u16 = 4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
/// `FRA_SRC`, `FRA_PRIORITY`, `FRA_TABLE` (`<linux/fib_rules.h>`).
const FRA_SRC: u16 = 2;
const FRA_PRIORITY: u16 = 6;
const FRA_TABLE: u16 = 15;
/// `FR_ACT_TO_TBL`: a rule that looks up a table.
const FR_ACT_TO_TBL: u8 = 1;
/// `RTPROT_STATIC`: routes mifrun adds (as `ip route add` marks them).
const RTPROT_STATIC: u8 = 4;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_OPERSTATE: u16 = 16;
const IFLA_CARRIER: u16 = 33;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_FLAGS: u16 = 8;
const RTA_DST: u16 = 1;
const RTA_SRC: u16 = 2;
const RTA_IIF: u16 = 3;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_PREFSRC: u16 = 7;
const RTA_TABLE: u16 = 15;
/// `RTM_F_LOOKUP_TABLE`: say which table the lookup used.
const RTM_F_LOOKUP_TABLE: u32 = 0x1000;
/// `RTN_UNICAST`, `RTN_LOCAL`.
pub const RTN_UNICAST: u8 = 1;
#[cfg(test)]
pub const RTN_LOCAL: u8 = 2;

/// One link (`ip link`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `ifi_flags` (`IFF_UP`, `IFF_RUNNING`, `IFF_LOOPBACK`…).
    pub flags: u32,
    /// `IF_OPER_*` (6: up, 2: down, 3: lower layer down, 0: unknown).
    pub operstate: u8,
    pub carrier: Option<bool>,
    pub mtu: u32,
}

/// One address (`ip addr`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addr {
    pub index: u32,
    pub ip: IpAddr,
    pub prefix: u8,
    pub scope: u8,
    /// `IFA_FLAGS` (or `ifa_flags`): tentative, DAD failed, deprecated…
    pub flags: u32,
    /// The on-link prefix's address: `IFA_ADDRESS` (the peer on a point-to-point
    /// link), as the shim's snapshot takes it.
    pub onlink: IpAddr,
}

/// One route of any table (`ip route show table all`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub table: u32,
    pub dst: Option<IpAddr>,
    pub dst_len: u8,
    pub oif: Option<u32>,
    pub gateway: Option<IpAddr>,
    pub metric: u32,
    /// `RTN_*`: 1 unicast, 2 local, 6 blackhole, 7 unreachable, 8 prohibit…
    pub rtype: u8,
    pub v6: bool,
    /// `RT_SCOPE_*`: 0 universe (via a gateway), 253 link (on-link), 254 host.
    pub scope: u8,
    /// `RTA_PREFSRC`: the source address the route gives.
    pub prefsrc: Option<IpAddr>,
}

/// One policy routing rule (`ip rule`) that looks up a table by source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub v6: bool,
    pub priority: u32,
    /// `from SRC/LEN` (`None`: from all).
    pub src: Option<IpAddr>,
    pub src_len: u8,
    pub table: u32,
    /// `FR_ACT_*` (1: look up the table).
    pub action: u8,
}

/// The kernel's answer to one route lookup (`ip route get`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lookup {
    pub oif: Option<u32>,
    pub gateway: Option<IpAddr>,
    pub prefsrc: Option<IpAddr>,
    pub table: u32,
    pub rtype: u8,
}

fn open() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the result is checked and owned at once.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let tv = libc::timeval {
        tv_sec: 5,
        tv_usec: 0,
    };
    // SAFETY: `tv` is a valid timeval of the size given.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    Ok(fd)
}

fn send(fd: &OwnedFd, msg: &[u8]) -> io::Result<()> {
    // SAFETY: a sockaddr_nl of zeros with the family set is the kernel's address.
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: `msg` and `sa` are valid for the lengths given.
    let n = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (&sa as *const libc::sockaddr_nl).cast(),
            size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn recv(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Sends one request and hands every reply message (type, payload) to `each` until
/// the dump ends (or, for a plain request, the first reply). An `NLMSG_ERROR` with a
/// code is returned as that error.
fn transact(req: &[u8], dump: bool, mut each: impl FnMut(u16, &[u8])) -> io::Result<()> {
    let fd = open()?;
    send(&fd, req)?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = recv(&fd, &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        let mut off = 0;
        while off + 16 <= n {
            let len = u32_at(&buf, off) as usize;
            let ty = u16_at(&buf, off + 4);
            if len < 16 || off + len > n {
                return Ok(());
            }
            let payload = &buf[off + 16..off + len];
            match ty {
                NLMSG_DONE => return Ok(()),
                NLMSG_ERROR => {
                    let code = payload
                        .get(..4)
                        .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                    if code != 0 {
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                    if !dump {
                        return Ok(());
                    }
                }
                _ => {
                    each(ty, payload);
                    if !dump {
                        return Ok(());
                    }
                }
            }
            off += align(len);
        }
    }
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_ne_bytes([b[i], b[i + 1]])
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// The attributes after a fixed header of `hdr` bytes.
fn attrs(payload: &[u8], hdr: usize) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut off = hdr;
    while off + 4 <= payload.len() {
        let len = u16_at(payload, off) as usize;
        let ty = u16_at(payload, off + 2) & 0x3fff;
        if len < 4 || off + len > payload.len() {
            break;
        }
        out.push((ty, &payload[off + 4..off + len]));
        off += align(len);
    }
    out
}

fn ip_of(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
        _ => None,
    }
}

fn u32_of(b: &[u8]) -> Option<u32> {
    (b.len() >= 4).then(|| u32_at(b, 0))
}

/// A request: header, fixed part, attributes.
fn request(ty: u16, flags: u16, fixed: &[u8], attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut m = vec![0u8; 16];
    m.extend_from_slice(fixed);
    for (t, v) in attrs {
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m.extend_from_slice(&((v.len() + 4) as u16).to_ne_bytes());
        m.extend_from_slice(&t.to_ne_bytes());
        m.extend_from_slice(v);
    }
    while m.len() % 4 != 0 {
        m.push(0);
    }
    let len = m.len() as u32;
    m[0..4].copy_from_slice(&len.to_ne_bytes());
    m[4..6].copy_from_slice(&ty.to_ne_bytes());
    m[6..8].copy_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
    m[8..12].copy_from_slice(&1u32.to_ne_bytes());
    m
}

/// Every link.
pub fn links() -> io::Result<Vec<Link>> {
    let mut out = Vec::new();
    let req = request(RTM_GETLINK, NLM_F_DUMP, &[0u8; 16], &[]);
    transact(&req, true, |ty, p| {
        if ty != RTM_NEWLINK || p.len() < 16 {
            return;
        }
        let mut l = Link {
            index: u32_at(p, 4),
            name: String::new(),
            flags: u32_at(p, 8),
            operstate: 0,
            carrier: None,
            mtu: 0,
        };
        for (t, v) in attrs(p, 16) {
            match t {
                IFLA_IFNAME => {
                    l.name = String::from_utf8_lossy(v.split(|b| *b == 0).next().unwrap_or(v))
                        .into_owned()
                }
                IFLA_MTU => l.mtu = u32_of(v).unwrap_or(0),
                IFLA_OPERSTATE => l.operstate = v.first().copied().unwrap_or(0),
                IFLA_CARRIER => l.carrier = v.first().map(|c| *c != 0),
                _ => {}
            }
        }
        out.push(l);
    })?;
    out.sort_by_key(|l| l.index);
    Ok(out)
}

/// Every address of every link.
pub fn addrs() -> io::Result<Vec<Addr>> {
    let mut out = Vec::new();
    let req = request(RTM_GETADDR, NLM_F_DUMP, &[0u8; 8], &[]);
    transact(&req, true, |ty, p| {
        if ty != RTM_NEWADDR || p.len() < 8 {
            return;
        }
        let (prefix, flags8, scope, index) = (p[1], p[2], p[3], u32_at(p, 4));
        let mut local = None;
        let mut address = None;
        let mut flags = flags8 as u32;
        for (t, v) in attrs(p, 8) {
            match t {
                IFA_LOCAL => local = ip_of(v),
                IFA_ADDRESS => address = ip_of(v),
                IFA_FLAGS => flags = u32_of(v).unwrap_or(flags),
                _ => {}
            }
        }
        // IPv4: IFA_LOCAL is the address (IFA_ADDRESS is the peer on a point-to-point
        // link); IPv6 gives IFA_ADDRESS only.
        if let Some(ip) = local.or(address) {
            out.push(Addr {
                index,
                ip,
                prefix,
                scope,
                flags,
                onlink: address.unwrap_or(ip),
            });
        }
    })?;
    Ok(out)
}

/// Every route of every table, both families.
pub fn routes() -> io::Result<Vec<Route>> {
    let mut out = Vec::new();
    for family in [libc::AF_INET, libc::AF_INET6] {
        let mut fixed = [0u8; 12];
        fixed[0] = family as u8;
        let req = request(RTM_GETROUTE, NLM_F_DUMP, &fixed, &[]);
        transact(&req, true, |ty, p| {
            if ty != RTM_NEWROUTE || p.len() < 12 {
                return;
            }
            let mut r = Route {
                table: p[4] as u32,
                dst: None,
                dst_len: p[1],
                oif: None,
                gateway: None,
                metric: 0,
                rtype: p[7],
                v6: p[0] == libc::AF_INET6 as u8,
                scope: p[6],
                prefsrc: None,
            };
            for (t, v) in attrs(p, 12) {
                match t {
                    RTA_DST => r.dst = ip_of(v),
                    RTA_PREFSRC => r.prefsrc = ip_of(v),
                    RTA_OIF => r.oif = u32_of(v),
                    RTA_GATEWAY => r.gateway = ip_of(v),
                    RTA_PRIORITY => r.metric = u32_of(v).unwrap_or(0),
                    RTA_TABLE => r.table = u32_of(v).unwrap_or(r.table),
                    _ => {}
                }
            }
            out.push(r);
        })?;
    }
    Ok(out)
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// The kernel's route lookup for `dst`: through interface `oif` when given (what a
/// socket bound to that device gets), from `src`, or as a packet from `src` arriving
/// on interface `iif` (what the kernel does with a reply: the reverse-path filter
/// refuses it with `EXDEV`).
pub fn route_get(
    dst: IpAddr,
    src: Option<IpAddr>,
    oif: Option<u32>,
    iif: Option<u32>,
) -> io::Result<Lookup> {
    let v6 = dst.is_ipv6();
    let mut fixed = [0u8; 12];
    fixed[0] = if v6 { libc::AF_INET6 } else { libc::AF_INET } as u8;
    fixed[1] = if v6 { 128 } else { 32 };
    fixed[8..12].copy_from_slice(&RTM_F_LOOKUP_TABLE.to_ne_bytes());
    let mut a = vec![(RTA_DST, ip_bytes(dst))];
    if let Some(s) = src {
        fixed[2] = if v6 { 128 } else { 32 };
        a.push((RTA_SRC, ip_bytes(s)));
    }
    if let Some(o) = oif {
        a.push((RTA_OIF, o.to_ne_bytes().to_vec()));
    }
    if let Some(i) = iif {
        a.push((RTA_IIF, i.to_ne_bytes().to_vec()));
    }
    let req = request(RTM_GETROUTE, 0, &fixed, &a);
    let mut got = None;
    transact(&req, false, |ty, p| {
        if ty != RTM_NEWROUTE || p.len() < 12 {
            return;
        }
        let mut l = Lookup {
            oif: None,
            gateway: None,
            prefsrc: None,
            table: p[4] as u32,
            rtype: p[7],
        };
        for (t, v) in attrs(p, 12) {
            match t {
                RTA_OIF => l.oif = u32_of(v),
                RTA_GATEWAY => l.gateway = ip_of(v),
                RTA_PREFSRC => l.prefsrc = ip_of(v),
                RTA_TABLE => l.table = u32_of(v).unwrap_or(l.table),
                _ => {}
            }
        }
        got = Some(l);
    })?;
    got.ok_or_else(|| io::Error::other("no answer from the kernel"))
}

/// Every policy routing rule, both families.
pub fn rules() -> io::Result<Vec<Rule>> {
    let mut out = Vec::new();
    for family in [libc::AF_INET, libc::AF_INET6] {
        let mut fixed = [0u8; 12];
        fixed[0] = family as u8;
        let req = request(RTM_GETRULE, NLM_F_DUMP, &fixed, &[]);
        transact(&req, true, |ty, p| {
            if ty != RTM_NEWRULE || p.len() < 12 {
                return;
            }
            let mut r = Rule {
                v6: p[0] == libc::AF_INET6 as u8,
                priority: 0,
                src: None,
                src_len: p[2],
                table: p[4] as u32,
                action: p[7],
            };
            for (t, v) in attrs(p, 12) {
                match t {
                    FRA_SRC => r.src = ip_of(v),
                    FRA_PRIORITY => r.priority = u32_of(v).unwrap_or(0),
                    FRA_TABLE => r.table = u32_of(v).unwrap_or(r.table),
                    _ => {}
                }
            }
            out.push(r);
        })?;
    }
    Ok(out)
}

fn family_of(v6: bool) -> u8 {
    (if v6 { libc::AF_INET6 } else { libc::AF_INET }) as u8
}

/// The `fib_rule_hdr` and attributes of `r`.
fn rule_message(r: &Rule) -> ([u8; 12], Vec<(u16, Vec<u8>)>) {
    let mut fixed = [0u8; 12];
    fixed[0] = family_of(r.v6);
    fixed[2] = r.src_len;
    fixed[7] = r.action;
    let mut a = vec![
        (FRA_PRIORITY, r.priority.to_ne_bytes().to_vec()),
        (FRA_TABLE, r.table.to_ne_bytes().to_vec()),
    ];
    if let Some(s) = r.src {
        a.push((FRA_SRC, ip_bytes(s)));
    }
    (fixed, a)
}

/// Adds a rule that looks up `r.table` (`ip rule add`); `EEXIST` if it is there.
pub fn add_rule(r: &Rule) -> io::Result<()> {
    let (fixed, a) = rule_message(&Rule {
        action: FR_ACT_TO_TBL,
        ..*r
    });
    let req = request(
        RTM_NEWRULE,
        NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        &fixed,
        &a,
    );
    transact(&req, false, |_, _| {})
}

/// Deletes the rule that matches `r` (`ip rule del`).
pub fn del_rule(r: &Rule) -> io::Result<()> {
    let (fixed, a) = rule_message(r);
    let req = request(RTM_DELRULE, NLM_F_ACK, &fixed, &a);
    transact(&req, false, |_, _| {})
}

/// The `rtmsg` and attributes of `r`.
fn route_message(r: &Route) -> ([u8; 12], Vec<(u16, Vec<u8>)>) {
    let mut fixed = [0u8; 12];
    fixed[0] = family_of(r.v6);
    fixed[1] = r.dst_len;
    // RT_TABLE_UNSPEC in the header: the table is the attribute (it may exceed 255).
    fixed[5] = RTPROT_STATIC;
    fixed[6] = r.scope;
    fixed[7] = r.rtype;
    let mut a = vec![
        (RTA_TABLE, r.table.to_ne_bytes().to_vec()),
        (RTA_PRIORITY, r.metric.to_ne_bytes().to_vec()),
    ];
    if let Some(d) = r.dst {
        a.push((RTA_DST, ip_bytes(d)));
    }
    if let Some(o) = r.oif {
        a.push((RTA_OIF, o.to_ne_bytes().to_vec()));
    }
    if let Some(g) = r.gateway {
        a.push((RTA_GATEWAY, ip_bytes(g)));
    }
    if let Some(s) = r.prefsrc {
        a.push((RTA_PREFSRC, ip_bytes(s)));
    }
    (fixed, a)
}

/// Adds a route (`ip route add … table T`); `EEXIST` if it is there.
pub fn add_route(r: &Route) -> io::Result<()> {
    let (fixed, a) = route_message(r);
    let req = request(
        RTM_NEWROUTE,
        NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        &fixed,
        &a,
    );
    transact(&req, false, |_, _| {})
}

/// Deletes a route (`ip route del … table T`).
pub fn del_route(r: &Route) -> io::Result<()> {
    let (mut fixed, a) = route_message(r);
    // Any protocol and scope (`RT_SCOPE_NOWHERE`), as `ip route del` asks.
    fixed[5] = 0;
    fixed[6] = 255;
    let req = request(RTM_DELROUTE, NLM_F_ACK, &fixed, &a);
    transact(&req, false, |_, _| {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_dumped_with_its_addresses_and_local_routes() {
        let links = links().unwrap();
        let lo = links.iter().find(|l| l.name == "lo").expect("lo");
        assert_eq!(
            lo.flags & libc::IFF_LOOPBACK as u32,
            libc::IFF_LOOPBACK as u32
        );
        let addrs = addrs().unwrap();
        if lo.flags & libc::IFF_UP as u32 != 0 {
            assert!(
                addrs
                    .iter()
                    .any(|a| a.index == lo.index && a.ip == IpAddr::from([127, 0, 0, 1]))
            );
            let l = route_get(IpAddr::from([127, 0, 0, 1]), None, None, None).unwrap();
            assert_eq!((l.oif, l.rtype), (Some(lo.index), RTN_LOCAL));
        }
        assert!(!routes().unwrap().is_empty() || lo.flags & libc::IFF_UP as u32 == 0);
    }

    #[test]
    fn requests_are_aligned_and_sized() {
        let r = request(
            RTM_GETROUTE,
            0,
            &[0u8; 12],
            &[(RTA_DST, vec![1, 2, 3, 4]), (RTA_OIF, vec![5, 0, 0, 0])],
        );
        assert_eq!(r.len(), 16 + 12 + 8 + 8);
        assert_eq!(u32_at(&r, 0) as usize, r.len());
        let a = attrs(&r[16..], 12);
        assert_eq!(
            a,
            vec![
                (RTA_DST, &[1u8, 2, 3, 4][..]),
                (RTA_OIF, &[5u8, 0, 0, 0][..])
            ]
        );
    }
}
