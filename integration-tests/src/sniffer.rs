//! [`Sniffer`]: TCP/UDP packet counts on an upstream's veth (AF_PACKET) and the assertions on them.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Time given to a sniffer after start and before stop, so in-flight frames are counted.
pub const SNIFF_SETTLE: Duration = Duration::from_millis(150);

/// What a sniffer saw on one interface.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub tcp: usize,
    pub udp: usize,
    /// `proto dst:dport` of the first few TCP/UDP packets.
    pub first: Vec<String>,
    /// The first [`MAX_PKTS`] TCP/UDP packets, with their header fields.
    pub pkts: Vec<Pkt>,
    /// The first [`MAX_PKTS`] ICMP and ICMPv6 packets (neighbour discovery included);
    /// not in [`Counts::total`].
    pub icmp: Vec<Pkt>,
    /// IGMP and MLD messages (IPv4 protocol 2; ICMPv6 types 130–132 and 143): the
    /// reports a multicast join sends out of its interface. Not in [`Counts::total`].
    pub igmp_mld: usize,
    /// The groups those messages name (the first [`MAX_PKTS`]).
    pub groups: Vec<IpAddr>,
}

/// How many packets a [`Counts`] keeps in detail.
pub const MAX_PKTS: usize = 256;

/// One TCP/UDP packet a sniffer saw: what the wire carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pkt {
    /// 6 (TCP) or 17 (UDP).
    pub proto: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub dport: u16,
    /// The DSCP (the IPv4 TOS byte's / IPv6 traffic class's upper six bits).
    pub dscp: u8,
    /// TCP flags (`0x02` SYN, `0x10` ACK, `0x01` FIN, `0x04` RST; 0 for UDP).
    pub tcp_flags: u8,
}

impl Counts {
    /// The packets sent to `dst` (the client's side of a flow to the service).
    pub fn to(&self, dst: &str) -> Vec<Pkt> {
        let dst: IpAddr = dst.parse().expect("an address");
        self.pkts.iter().filter(|p| p.dst == dst).copied().collect()
    }
}

impl Counts {
    pub fn total(&self) -> usize {
        self.tcp + self.udp
    }
}

/// Counts TCP and UDP packets (IPv4 and IPv6, both directions) on one interface of a
/// namespace, without tcpdump.
pub struct Sniffer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<Counts, String>>>,
}

impl Sniffer {
    /// Starts sniffing `ifname` inside namespace `ns`; returns once the socket is bound.
    pub fn start(ns: &str, ifname: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let ns_path = format!("/run/netns/{ns}");
        let ifname = ifname.to_string();
        let stop2 = stop.clone();
        let handle = std::thread::spawn(move || {
            let fd = match open_packet_socket(&ns_path, &ifname) {
                Ok(fd) => {
                    let _ = tx.send(Ok(()));
                    fd
                }
                Err(e) => {
                    let _ = tx.send(Err(e.clone()));
                    return Err(e);
                }
            };
            Ok(sniff_loop(&fd, &stop2))
        });
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("sniffer on {ns}/{}: {e}", "up"),
            Err(_) => panic!("sniffer on {ns} did not start within 5 s"),
        }
        Self {
            stop,
            handle: Some(handle),
        }
    }

    /// Waits a short settle time, stops, and returns the counts.
    pub fn stop(mut self) -> Counts {
        std::thread::sleep(SNIFF_SETTLE);
        self.finish()
    }

    fn finish(&mut self) -> Counts {
        self.stop.store(true, Ordering::SeqCst);
        match self.handle.take().map(|h| h.join()) {
            Some(Ok(Ok(c))) => c,
            Some(Ok(Err(e))) => panic!("sniffer failed: {e}"),
            Some(Err(_)) => panic!("sniffer thread panicked"),
            None => Counts::default(),
        }
    }
}

impl Drop for Sniffer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Enters `ns_path` (this thread only), opens an AF_PACKET socket bound to `ifname`, returns
/// to the original namespace.
fn open_packet_socket(ns_path: &str, ifname: &str) -> Result<OwnedFd, String> {
    let open = |p: &str| -> Result<OwnedFd, String> {
        let c = CString::new(p).map_err(|e| e.to_string())?;
        // SAFETY: c is a valid C string.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(format!("open {p}: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: fd is fresh and ours.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    };
    let orig = open("/proc/thread-self/ns/net")?;
    let target = open(ns_path)?;
    // SAFETY: setns with a valid netns fd affects only the calling thread.
    if unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(format!(
            "setns {ns_path}: {}",
            std::io::Error::last_os_error()
        ));
    }
    let res = (|| {
        let proto = (libc::ETH_P_ALL as u16).to_be() as libc::c_int;
        // SAFETY: plain socket(2).
        let fd =
            unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
        if fd < 0 {
            return Err(format!(
                "socket(AF_PACKET): {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: fd is fresh and ours.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        let cname = CString::new(ifname).map_err(|e| e.to_string())?;
        // SAFETY: valid C string; resolved in the namespace we are in now.
        let idx = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if idx == 0 {
            return Err(format!("no interface {ifname} in {ns_path}"));
        }
        // SAFETY: all-zero sockaddr_ll is valid; fields set below.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = idx as i32;
        // SAFETY: sll is a valid sockaddr_ll of the given size.
        let rc = unsafe {
            libc::bind(
                sock.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(format!(
                "bind AF_PACKET to {ifname}: {}",
                std::io::Error::last_os_error()
            ));
        }
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 50_000,
        };
        // SAFETY: tv outlives the call; the length matches.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            );
        }
        Ok(sock)
    })();
    // SAFETY: return this thread to the namespace it started in.
    if unsafe { libc::setns(orig.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(format!("setns back: {}", std::io::Error::last_os_error()));
    }
    res
}

fn sniff_loop(fd: &OwnedFd, stop: &AtomicBool) -> Counts {
    let mut c = Counts::default();
    let mut buf = vec![0u8; 65536];
    // Bounded: the harness always stops it, but never run longer than 10 minutes.
    let deadline = Instant::now() + Duration::from_secs(600);
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        // SAFETY: buf is writable for its whole length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n <= 0 {
            continue;
        }
        if let Some(groups) = parse_membership(&buf[..n as usize]) {
            c.igmp_mld += 1;
            for g in groups {
                if c.groups.len() < MAX_PKTS {
                    c.groups.push(g);
                }
            }
            continue;
        }
        if let Some((proto, dst)) = parse_frame(&buf[..n as usize]) {
            match proto {
                6 => c.tcp += 1,
                17 => c.udp += 1,
                1 | 58 => {
                    if c.icmp.len() < MAX_PKTS {
                        c.icmp.extend(parse_pkt(&buf[..n as usize]));
                    }
                    continue;
                }
                _ => continue,
            }
            if c.pkts.len() < MAX_PKTS {
                if let Some(p) = parse_pkt(&buf[..n as usize]) {
                    c.pkts.push(p);
                }
            }
            if c.first.len() < 8 {
                c.first
                    .push(format!("{} {dst}", if proto == 6 { "tcp" } else { "udp" }));
            }
        }
    }
    c
}

/// The header fields of an Ethernet frame carrying IPv4/IPv6 (no VLAN tags: the
/// testbed's veths carry none).
fn parse_pkt(f: &[u8]) -> Option<Pkt> {
    let ip = f.get(14..)?;
    match u16::from_be_bytes([*f.get(12)?, *f.get(13)?]) {
        0x0800 if ip.len() >= 20 => {
            let ihl = ((ip[0] & 0x0f) as usize) * 4;
            let dport = ip
                .get(ihl + 2..ihl + 4)
                .map_or(0, |p| u16::from_be_bytes([p[0], p[1]]));
            let tcp_flags = if ip[9] == 6 {
                ip.get(ihl + 13).copied().unwrap_or(0)
            } else {
                0
            };
            Some(Pkt {
                tcp_flags,
                proto: ip[9],
                src: IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15])),
                dst: IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19])),
                dport,
                dscp: ip[1] >> 2,
            })
        }
        0x86dd if ip.len() >= 40 => {
            let a = |at: usize| {
                let mut o = [0u8; 16];
                o.copy_from_slice(&ip[at..at + 16]);
                IpAddr::V6(Ipv6Addr::from(o))
            };
            let tclass = ((ip[0] & 0x0f) << 4) | (ip[1] >> 4);
            let dport = ip
                .get(42..44)
                .map_or(0, |p| u16::from_be_bytes([p[0], p[1]]));
            // No extension headers: the TCP header starts at 40.
            let tcp_flags = if ip[6] == 6 {
                ip.get(53).copied().unwrap_or(0)
            } else {
                0
            };
            Some(Pkt {
                tcp_flags,
                proto: ip[6],
                src: a(8),
                dst: a(24),
                dport,
                dscp: tclass >> 2,
            })
        }
        _ => None,
    }
}

/// The groups an IGMP (v1/v2 report or leave, v3 report) or MLD (v1 report or done,
/// v2 report; after IPv6's hop-by-hop header) message names; `None` for any other
/// frame. A query names its group too (0 for a general one).
fn parse_membership(f: &[u8]) -> Option<Vec<IpAddr>> {
    let ip = f.get(14..)?;
    let mut out = Vec::new();
    match u16::from_be_bytes([*f.get(12)?, *f.get(13)?]) {
        0x0800 if ip.len() >= 20 && ip[9] == 2 => {
            let m = ip.get(((ip[0] & 0x0f) as usize) * 4..)?;
            let v4 = |b: &[u8]| IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]));
            match *m.first()? {
                0x22 if m.len() >= 8 => {
                    // IGMPv3 report: records of type, aux length, sources, group.
                    let n = u16::from_be_bytes([m[6], m[7]]) as usize;
                    let mut at = 8;
                    for _ in 0..n {
                        let Some(r) = m.get(at..at + 8) else { break };
                        out.push(v4(&r[4..8]));
                        let srcs = u16::from_be_bytes([r[2], r[3]]) as usize;
                        at += 8 + srcs * 4 + r[1] as usize * 4;
                    }
                }
                _ if m.len() >= 8 => out.push(v4(&m[4..8])),
                _ => {}
            }
            Some(out)
        }
        0x86dd if ip.len() >= 48 && ip[6] == 0 => {
            // Hop-by-hop options (MLD carries the router alert), then ICMPv6.
            let at = 40 + (ip[41] as usize + 1) * 8;
            if ip[40] != 58 {
                return None;
            }
            let m = ip.get(at..)?;
            let v6 = |b: &[u8]| {
                let mut o = [0u8; 16];
                o.copy_from_slice(&b[..16]);
                IpAddr::V6(Ipv6Addr::from(o))
            };
            match *m.first()? {
                143 if m.len() >= 8 => {
                    // MLDv2 report: records of type, aux length, sources, group.
                    let n = u16::from_be_bytes([m[6], m[7]]) as usize;
                    let mut at = 8;
                    for _ in 0..n {
                        let Some(r) = m.get(at..at + 20) else { break };
                        out.push(v6(&r[4..20]));
                        let srcs = u16::from_be_bytes([r[2], r[3]]) as usize;
                        at += 20 + srcs * 16 + r[1] as usize * 4;
                    }
                }
                130..=132 if m.len() >= 24 => out.push(v6(&m[8..24])),
                _ => return None,
            }
            Some(out)
        }
        _ => None,
    }
}

/// `(ip protocol, "dst:dport")` of an Ethernet frame carrying IPv4/IPv6.
fn parse_frame(f: &[u8]) -> Option<(u8, String)> {
    if f.len() < 14 {
        return None;
    }
    let mut off = 12;
    let mut ethertype = u16::from_be_bytes([f[off], f[off + 1]]);
    if ethertype == 0x8100 && f.len() >= 18 {
        off += 4;
        ethertype = u16::from_be_bytes([f[off], f[off + 1]]);
    }
    let ip = &f[off + 2..];
    match ethertype {
        0x0800 if ip.len() >= 20 => {
            let ihl = ((ip[0] & 0x0f) as usize) * 4;
            let proto = ip[9];
            let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
            let port = ip
                .get(ihl + 2..ihl + 4)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .unwrap_or(0);
            Some((proto, format!("{dst}:{port}")))
        }
        0x86dd if ip.len() >= 40 => {
            let proto = ip[6];
            let mut d = [0u8; 16];
            d.copy_from_slice(&ip[24..40]);
            let dst = Ipv6Addr::from(d);
            let port = ip
                .get(42..44)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .unwrap_or(0);
            Some((proto, format!("[{dst}]:{port}")))
        }
        _ => None,
    }
}

/// One sniffer per uplink.
pub struct Sniffers(pub(crate) Vec<(String, Sniffer)>);

impl Sniffers {
    /// Stops all sniffers (after one shared settle time) and returns counts per uplink.
    pub fn stop(self) -> BTreeMap<String, Counts> {
        std::thread::sleep(SNIFF_SETTLE);
        self.0
            .into_iter()
            .map(|(name, mut sn)| {
                let c = sn.finish();
                (name, c)
            })
            .collect()
    }
}

/// Panics unless `uplink` saw TCP/UDP packets and every other uplink saw none.
#[track_caller]
pub fn assert_only(counts: &BTreeMap<String, Counts>, uplink: &str) {
    let got = counts.get(uplink).map(Counts::total).unwrap_or(0);
    assert!(
        got > 0,
        "expected TCP/UDP packets on {uplink}, saw none; counts: {counts:#?}"
    );
    for (name, c) in counts {
        if name != uplink {
            assert_eq!(
                c.total(),
                0,
                "expected no TCP/UDP packets on {name}; counts: {counts:#?}"
            );
        }
    }
}

/// Panics unless no uplink saw any TCP/UDP packet.
#[track_caller]
pub fn assert_silent(counts: &BTreeMap<String, Counts>) {
    for (name, c) in counts {
        assert_eq!(
            c.total(),
            0,
            "expected no TCP/UDP packets on {name}; counts: {counts:#?}"
        );
    }
}

/// Panics unless none of `uplinks` saw TCP/UDP packets.
#[track_caller]
pub fn assert_none_on(counts: &BTreeMap<String, Counts>, uplinks: &[&str]) {
    for u in uplinks {
        let c = counts.get(*u).map(Counts::total).unwrap_or(0);
        assert_eq!(
            c, 0,
            "expected no TCP/UDP packets on {u}; counts: {counts:#?}"
        );
    }
}
