//! [`Sniffer`]: TCP/UDP packet counts on an upstream's veth (AF_PACKET) and the assertions on them.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::topology::host_addr;

/// Time given to a sniffer after start and before stop, so in-flight frames are counted.
pub const SNIFF_SETTLE: Duration = Duration::from_millis(150);

/// What a sniffer saw on one interface.
#[derive(Clone, Default)]
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
    /// The TCP connections a SYN without ACK opened on this link, every one (up to
    /// [`MAX_OPENED`]), as [`Pkt::flow`]: the opener's side of each.
    pub opened: BTreeSet<Flow>,
}

impl std::fmt::Debug for Counts {
    /// Every field but [`Counts::opened`], of which the number (there may be thousands).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counts")
            .field("tcp", &self.tcp)
            .field("udp", &self.udp)
            .field("first", &self.first)
            .field("pkts", &self.pkts)
            .field("icmp", &self.icmp)
            .field("igmp_mld", &self.igmp_mld)
            .field("groups", &self.groups)
            .field("opened", &self.opened.len())
            .finish()
    }
}

/// How many opened connections a [`Counts`] remembers.
pub const MAX_OPENED: usize = 65536;

/// A TCP/UDP packet's `(src, sport, dst, dport)`.
pub type Flow = (IpAddr, u16, IpAddr, u16);

/// How many packets a [`Counts`] keeps in detail.
pub const MAX_PKTS: usize = 256;

/// One TCP/UDP packet a sniffer saw: what the wire carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pkt {
    /// 6 (TCP) or 17 (UDP).
    pub proto: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    /// The TCP/UDP payload's length (from the IP and TCP/UDP headers, not the frame:
    /// Ethernet padding is not payload).
    pub payload: usize,
    /// The DSCP (the IPv4 TOS byte's / IPv6 traffic class's upper six bits).
    pub dscp: u8,
    /// TCP flags (`0x02` SYN, `0x10` ACK, `0x01` FIN, `0x04` RST; 0 for UDP).
    pub tcp_flags: u8,
}

/// TCP flags.
pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_ACK: u8 = 0x10;

impl Pkt {
    /// `(src, sport, dst, dport)`.
    pub fn flow(&self) -> Flow {
        (self.src, self.sport, self.dst, self.dport)
    }

    /// A TCP reset and nothing else: RST set (ACK allowed), no SYN, FIN, PSH or URG,
    /// no payload. What the kernel sends for a segment that finds no socket.
    pub fn is_bare_reset(&self) -> bool {
        self.proto == 6
            && self.tcp_flags & TCP_RST != 0
            && self.tcp_flags & !(TCP_RST | TCP_ACK) == 0
            && self.payload == 0
    }
}

/// Whether `p`, seen on a link the flows must not take, is the kernel's reset of a
/// connection steered by another link: a bare reset ([`Pkt::is_bare_reset`]) from
/// `steered_addr` (that link's own address) of a connection opened from that address
/// by that link (`steered`, its counts: the SYN's flow is the reset's). Such a reset
/// answers a segment that came in by the steered link for a connection whose socket
/// is gone; it belongs to no socket, and the kernel routes it by the main table
/// (README, Limits), so nothing that steers sockets can steer it. Anything else —
/// a SYN, data, UDP, a reset with payload or with SYN, a reset from another address
/// or of a connection the steered link did not open — is not.
pub fn is_socketless_reset(p: &Pkt, steered_addr: IpAddr, steered: &Counts) -> bool {
    p.is_bare_reset() && p.src == steered_addr && steered.opened.contains(&p.flow())
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
            if let Some(p) = parse_pkt(&buf[..n as usize]) {
                if p.proto == 6
                    && p.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN
                    && c.opened.len() < MAX_OPENED
                {
                    c.opened.insert(p.flow());
                }
                if c.pkts.len() < MAX_PKTS {
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

/// The length of what follows the transport header of protocol `proto` in `l4` (the
/// IP payload, `len` bytes by the IP header): the TCP header by its data offset, UDP's
/// 8 bytes, nothing for another protocol.
fn payload_len(proto: u8, l4: &[u8], len: usize) -> usize {
    let header = match proto {
        6 => l4.get(12).map_or(20, |o| ((o >> 4) as usize) * 4),
        17 => 8,
        _ => 0,
    };
    len.saturating_sub(header)
}

/// The header fields of an Ethernet frame carrying IPv4/IPv6 (no VLAN tags: the
/// testbed's veths carry none).
fn parse_pkt(f: &[u8]) -> Option<Pkt> {
    let ip = f.get(14..)?;
    let port = |l4: &[u8], at: usize| {
        l4.get(at..at + 2)
            .map_or(0, |p| u16::from_be_bytes([p[0], p[1]]))
    };
    match u16::from_be_bytes([*f.get(12)?, *f.get(13)?]) {
        0x0800 if ip.len() >= 20 => {
            let ihl = ((ip[0] & 0x0f) as usize) * 4;
            let l4 = ip.get(ihl..).unwrap_or(&[]);
            let tcp_flags = if ip[9] == 6 {
                l4.get(13).copied().unwrap_or(0)
            } else {
                0
            };
            let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
            Some(Pkt {
                tcp_flags,
                proto: ip[9],
                src: IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15])),
                dst: IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19])),
                sport: port(l4, 0),
                dport: port(l4, 2),
                payload: payload_len(ip[9], l4, total.saturating_sub(ihl)),
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
            // No extension headers: the TCP/UDP header starts at 40.
            let l4 = &ip[40..];
            let tcp_flags = if ip[6] == 6 {
                l4.get(13).copied().unwrap_or(0)
            } else {
                0
            };
            let len = u16::from_be_bytes([ip[4], ip[5]]) as usize;
            Some(Pkt {
                tcp_flags,
                proto: ip[6],
                src: a(8),
                dst: a(24),
                sport: port(l4, 0),
                dport: port(l4, 2),
                payload: payload_len(ip[6], l4, len),
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

/// [`assert_none_on`] for a test that closes its TCP sockets while their connections
/// may still have segments coming (a race that tears them down mid-connect): panics
/// unless every TCP/UDP packet on `uplinks` is the kernel's socketless reset of a
/// connection `steered` opened from its own address ([`is_socketless_reset`]; v4 or
/// v6). Every packet is examined: more than [`MAX_PKTS`] on one of `uplinks` fail.
/// Prints the tolerated resets and returns how many there were. Only for such tests:
/// anywhere else a reset on another link is a packet to explain, [`assert_none_on`].
#[track_caller]
pub fn assert_no_flows_on(
    counts: &BTreeMap<String, Counts>,
    uplinks: &[&str],
    steered: &str,
) -> usize {
    let empty = Counts::default();
    let via = counts.get(steered).unwrap_or(&empty);
    let own: [IpAddr; 2] = [false, true].map(|v6| {
        host_addr(steered, v6)
            .parse()
            .expect("the topology's addresses parse")
    });
    let mut tolerated = 0;
    for u in uplinks {
        let Some(c) = counts.get(*u) else { continue };
        assert!(
            c.total() <= c.pkts.len(),
            "{u} saw {} TCP/UDP packets, {} of them kept in detail: not only socketless \
             resets; counts: {counts:#?}",
            c.total(),
            c.pkts.len()
        );
        let flows: Vec<&Pkt> = c
            .pkts
            .iter()
            .filter(|p| !own.iter().any(|a| is_socketless_reset(p, *a, via)))
            .collect();
        assert!(
            flows.is_empty(),
            "expected no TCP/UDP packets on {u} but the kernel's socketless resets of \
             connections {steered} opened; these are not: {flows:#?}; counts: {counts:#?}"
        );
        if !c.pkts.is_empty() {
            eprintln!(
                "tolerated on {u}: {} socketless reset(s) from {steered}'s address of \
                 connections opened by {steered}: {:?}",
                c.pkts.len(),
                c.pkts
            );
        }
        tolerated += c.pkts.len();
    }
    tolerated
}

#[cfg(test)]
mod tests {
    use super::*;

    const WLAN0_V6: &str = "2001:db8:20::2";
    const ETH0_V6: &str = "2001:db8:10::2";
    const SVC6: &str = "2001:db8:ff::10";
    const WLAN0_V4: &str = "198.51.100.66";
    const SVC4: &str = "203.0.113.10";

    /// An Ethernet frame: IP from `src` to `dst` carrying TCP (`proto` 6, with `flags`)
    /// or UDP (17) from `sport` to `dport` with `payload` bytes, then `pad` bytes of
    /// Ethernet padding.
    fn frame(
        proto: u8,
        src: &str,
        dst: &str,
        (sport, dport): (u16, u16),
        flags: u8,
        payload: usize,
        pad: usize,
    ) -> Vec<u8> {
        let mut l4 = Vec::new();
        l4.extend_from_slice(&sport.to_be_bytes());
        l4.extend_from_slice(&dport.to_be_bytes());
        if proto == 6 {
            l4.extend_from_slice(&[0; 8]); // seq, ack
            l4.push(5 << 4); // data offset: 20 bytes
            l4.push(flags);
            l4.extend_from_slice(&[0; 6]); // window, checksum, urgent
        } else {
            l4.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
            l4.extend_from_slice(&[0; 2]);
        }
        l4.extend(std::iter::repeat_n(b'x', payload));
        let mut f = vec![0u8; 12];
        match (
            src.parse::<IpAddr>().unwrap(),
            dst.parse::<IpAddr>().unwrap(),
        ) {
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
                f.extend_from_slice(&(l4.len() as u16).to_be_bytes());
                f.extend_from_slice(&[proto, 64]);
                f.extend_from_slice(&s.octets());
                f.extend_from_slice(&d.octets());
            }
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
                f.extend_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
                f.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0]);
                f.extend_from_slice(&s.octets());
                f.extend_from_slice(&d.octets());
            }
            _ => panic!("mixed families"),
        }
        f.extend_from_slice(&l4);
        f.extend(std::iter::repeat_n(0, pad));
        f
    }

    fn pkt(f: &[u8]) -> Pkt {
        parse_pkt(f).expect("a packet")
    }

    /// The counts of the steered link: it opened the connection from `src`:40000 to
    /// the service's port 9000.
    fn opened_from(src: &str, dst: &str) -> Counts {
        let mut c = Counts::default();
        c.opened
            .insert(pkt(&frame(6, src, dst, (40000, 9000), TCP_SYN, 0, 0)).flow());
        c
    }

    #[test]
    fn parses_ports_flags_and_payload_not_padding() {
        let p = pkt(&frame(6, WLAN0_V4, SVC4, (40000, 9000), TCP_RST, 0, 6));
        assert_eq!(
            (p.proto, p.sport, p.dport, p.tcp_flags, p.payload),
            (6, 40000, 9000, TCP_RST, 0)
        );
        let p = pkt(&frame(6, WLAN0_V6, SVC6, (40000, 9000), TCP_ACK, 3, 0));
        assert_eq!((p.sport, p.dport, p.payload), (40000, 9000, 3));
        let p = pkt(&frame(17, WLAN0_V6, SVC6, (40000, 9000), 0, 5, 0));
        assert_eq!((p.proto, p.tcp_flags, p.payload), (17, 0, 5));
    }

    #[test]
    fn only_a_bare_reset_from_the_steered_address_of_a_connection_it_opened_is_socketless() {
        for (own, svc) in [(WLAN0_V6, SVC6), (WLAN0_V4, SVC4)] {
            let via = opened_from(own, svc);
            let a: IpAddr = own.parse().unwrap();
            let is = |f: Vec<u8>| is_socketless_reset(&pkt(&f), a, &via);
            let flow = (40000, 9000);
            // The kernel's answers: RST alone (to a segment with ACK), RST+ACK.
            assert!(is(frame(6, own, svc, flow, TCP_RST, 0, 0)));
            assert!(is(frame(6, own, svc, flow, TCP_RST, 0, 6)));
            assert!(is(frame(6, own, svc, flow, TCP_RST | TCP_ACK, 0, 0)));
            // Anything else is a flow.
            assert!(!is(frame(6, own, svc, flow, TCP_SYN, 0, 0)));
            assert!(!is(frame(6, own, svc, flow, TCP_SYN | TCP_RST, 0, 0)));
            assert!(!is(frame(6, own, svc, flow, TCP_RST | TCP_ACK, 1, 0)));
            assert!(!is(frame(6, own, svc, flow, TCP_RST | TCP_FIN, 0, 0)));
            assert!(!is(frame(6, own, svc, flow, TCP_ACK, 0, 0)));
            assert!(!is(frame(6, own, svc, flow, 0x08 | TCP_ACK, 1, 0)));
            assert!(!is(frame(17, own, svc, flow, 0, 0, 0)));
            assert!(!is(frame(17, own, svc, flow, 0, 1, 0)));
            // Another port: a connection the steered link did not open.
            assert!(!is(frame(6, own, svc, (40001, 9000), TCP_RST, 0, 0)));
            // The reply direction only: a reset to the steered address is the peer's.
            assert!(!is(frame(6, svc, own, (9000, 40000), TCP_RST, 0, 0)));
        }
        // A reset from eth0's own address, even of a flow with that tuple opened on
        // the steered link, is no socketless reset of a steered connection.
        let via = opened_from(ETH0_V6, SVC6);
        let wlan0: IpAddr = WLAN0_V6.parse().unwrap();
        let eth0 = pkt(&frame(6, ETH0_V6, SVC6, (40000, 9000), TCP_RST, 0, 0));
        assert!(!is_socketless_reset(&eth0, wlan0, &via));
        assert!(!is_socketless_reset(
            &eth0,
            wlan0,
            &opened_from(WLAN0_V6, SVC6)
        ));
    }

    #[test]
    fn the_assertion_tolerates_socketless_resets_and_counts_them() {
        let mut counts = BTreeMap::new();
        counts.insert("wlan0".to_string(), opened_from(WLAN0_V6, SVC6));
        let reset = pkt(&frame(6, WLAN0_V6, SVC6, (40000, 9000), TCP_RST, 0, 0));
        let eth0 = Counts {
            tcp: 1,
            pkts: vec![reset],
            ..Counts::default()
        };
        counts.insert("eth0".to_string(), eth0);
        counts.insert("wwan0".to_string(), Counts::default());
        assert_eq!(assert_no_flows_on(&counts, &["eth0", "wwan0"], "wlan0"), 1);
    }

    #[test]
    #[should_panic(expected = "these are not")]
    fn the_assertion_fails_on_a_syn() {
        let mut counts = BTreeMap::new();
        counts.insert("wlan0".to_string(), opened_from(WLAN0_V6, SVC6));
        let eth0 = Counts {
            tcp: 2,
            pkts: [TCP_RST, TCP_SYN]
                .map(|flags| pkt(&frame(6, WLAN0_V6, SVC6, (40000, 9000), flags, 0, 0)))
                .to_vec(),
            ..Counts::default()
        };
        counts.insert("eth0".to_string(), eth0);
        assert_no_flows_on(&counts, &["eth0", "wwan0"], "wlan0");
    }

    #[test]
    #[should_panic(expected = "kept in detail")]
    fn the_assertion_fails_on_packets_it_did_not_keep() {
        let mut counts = BTreeMap::new();
        counts.insert("wlan0".to_string(), opened_from(WLAN0_V6, SVC6));
        let eth0 = Counts {
            tcp: MAX_PKTS + 1,
            ..Counts::default()
        };
        counts.insert("eth0".to_string(), eth0);
        assert_no_flows_on(&counts, &["eth0"], "wlan0");
    }
}
