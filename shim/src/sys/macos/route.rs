//! Messages of macOS's routing socket (`socket(PF_ROUTE, SOCK_RAW, 0)`), parsed from
//! bytes: what the engine's interface snapshot needs to know that it is stale (a link
//! went up or down, an address came or went, a route changed), and the facts each
//! message carries. Pure, so that Linux tests it.
//!
//! Layouts, from XNU `bsd/net/route.h` and `bsd/net/if.h` (apple-oss-distributions/xnu):
//!
//! * `rt_msghdr` (92 bytes): `u_short rtm_msglen; u_char rtm_version; u_char rtm_type;
//!   u_short rtm_index; int rtm_flags; int rtm_addrs; pid_t rtm_pid; int rtm_seq;
//!   int rtm_errno; int rtm_use; u_int32_t rtm_inits; struct rt_metrics rtm_rmx`
//!   (`rt_metrics`: 14 × 32 bits);
//! * `if_msghdr` (`RTM_IFINFO`, 112 bytes): `ifm_msglen, ifm_version, ifm_type,
//!   int ifm_addrs, int ifm_flags, u_short ifm_index, struct if_data ifm_data` (96 bytes);
//! * `ifa_msghdr` (`RTM_NEWADDR`/`RTM_DELADDR`, 20 bytes): `…, int ifam_addrs,
//!   int ifam_flags, u_short ifam_index, int ifam_metric`;
//! * `ifma_msghdr` (`RTM_NEWMADDR`/`RTM_DELMADDR`, 16 bytes).
//!
//! Each header is followed by the sockaddrs its `*_addrs` bitmask names, in `RTA_*`
//! bit order, each padded with XNU's `ROUNDUP32` (`bsd/net/rtsock.c`): its `sa_len`
//! rounded up to a multiple of 4 bytes, and a zero `sa_len` taking 4 bytes. (FreeBSD
//! rounds to `sizeof(long)`; macOS does not.) A netmask may be shorter than a full
//! sockaddr (only the bytes up to the last non-zero one are kept) and have family 0.
//! All fields are in host byte order except the addresses inside the sockaddrs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const RTM_VERSION: u8 = 5;
pub const RTM_ADD: u8 = 0x1;
pub const RTM_DELETE: u8 = 0x2;
pub const RTM_CHANGE: u8 = 0x3;
pub const RTM_GET: u8 = 0x4;
pub const RTM_REDIRECT: u8 = 0x6;
pub const RTM_NEWADDR: u8 = 0xc;
pub const RTM_DELADDR: u8 = 0xd;
pub const RTM_IFINFO: u8 = 0xe;
pub const RTM_NEWMADDR: u8 = 0xf;
pub const RTM_DELMADDR: u8 = 0x10;
pub const RTM_IFINFO2: u8 = 0x12;
/// XNU's private `RTM_GET` whose reply goes to the asking socket only (the kernel
/// rewrites it to `RTM_GET`; needs `SO_USELOOPBACK`, a routing socket's default):
/// `route_output` in `bsd/net/rtsock.c`. A plain `RTM_GET`'s reply is copied to every
/// routing socket of the host, the engine's own watcher among them.
pub const RTM_GET_SILENT: u8 = 0x11;

pub const RTA_DST: i32 = 0x1;
pub const RTA_GATEWAY: i32 = 0x2;
pub const RTA_NETMASK: i32 = 0x4;
pub const RTA_GENMASK: i32 = 0x8;
pub const RTA_IFP: i32 = 0x10;
pub const RTA_IFA: i32 = 0x20;
pub const RTA_AUTHOR: i32 = 0x40;
pub const RTA_BRD: i32 = 0x80;
const RTAX_MAX: usize = 8;

pub const RTF_UP: i32 = 0x1;
pub const RTF_GATEWAY: i32 = 0x2;
pub const RTF_HOST: i32 = 0x4;
/// A link-layer (ARP, neighbour) entry, and a route cloned from another: XNU adds and
/// deletes them as hosts are talked to (`bsd/net/route.h`).
pub const RTF_LLINFO: i32 = 0x400;
pub const RTF_WASCLONED: i32 = 0x20000;
pub const RTF_IFSCOPE: i32 = 0x0100_0000;

/// `AF_*` values of XNU (`bsd/sys/socket.h`).
pub const AF_INET: u8 = 2;
pub const AF_LINK: u8 = 18;
pub const AF_INET6: u8 = 30;

pub const RT_MSGHDR_LEN: usize = 92;
pub const IF_MSGHDR_LEN: usize = 112;
pub const IFA_MSGHDR_LEN: usize = 20;
pub const IFMA_MSGHDR_LEN: usize = 16;

/// `IFF_UP`, `IFF_RUNNING` (`bsd/net/if.h`), as in `ifm_flags`.
pub const IFF_UP: i32 = 0x1;
pub const IFF_RUNNING: i32 = 0x40;

/// One sockaddr of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sa {
    Ip(IpAddr),
    /// A netmask: its bytes after `sa_len` and `sa_family` (the kernel drops trailing
    /// zero bytes and may leave the family 0); [`Sa::prefix`] reads it for a family.
    Mask(Vec<u8>),
    /// `sockaddr_dl`: interface index and name.
    Link {
        index: u16,
        name: String,
    },
    /// A zero-length (absent) or unknown sockaddr.
    Other(u8),
}

impl Sa {
    /// The prefix length of a netmask for an IPv4 (`v6` false) or IPv6 address: the
    /// mask bits start where `sin_addr` (offset 4) or `sin6_addr` (offset 8) would.
    pub fn prefix(&self, v6: bool) -> Option<u8> {
        let Sa::Mask(b) = self else {
            return None;
        };
        let from = if v6 { 6 } else { 2 };
        Some(
            b.get(from..)
                .unwrap_or(&[])
                .iter()
                .map(|x| x.count_ones() as u8)
                .sum(),
        )
    }
}

/// The sockaddrs of one message, by `RTAX_*` slot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addrs(pub [Option<Sa>; RTAX_MAX]);

impl Addrs {
    pub fn dst(&self) -> Option<&Sa> {
        self.0[0].as_ref()
    }
    pub fn gateway(&self) -> Option<&Sa> {
        self.0[1].as_ref()
    }
    pub fn netmask(&self) -> Option<&Sa> {
        self.0[2].as_ref()
    }
    pub fn ifp(&self) -> Option<&Sa> {
        self.0[4].as_ref()
    }
    pub fn ifa(&self) -> Option<&Sa> {
        self.0[5].as_ref()
    }
}

/// A routing-socket message, as far as the engine cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// `RTM_IFINFO`: a link's flags changed (up/down, carrier).
    Link { index: u16, flags: i32 },
    /// `RTM_NEWADDR` / `RTM_DELADDR`.
    Addr {
        added: bool,
        index: u16,
        addrs: Addrs,
    },
    /// `RTM_ADD`, `RTM_DELETE`, `RTM_CHANGE`, `RTM_GET`, `RTM_REDIRECT`…
    Route {
        kind: u8,
        index: u16,
        flags: i32,
        errno: i32,
        addrs: Addrs,
    },
    /// Multicast memberships and types the engine ignores.
    Other { kind: u8 },
}

impl Msg {
    /// Whether the message can change what the interface snapshot says (links,
    /// addresses) or what was decided over it (routes), so that the snapshot is
    /// refreshed before the next decision. Link-layer entries and cloned host routes
    /// are not: XNU makes and drops one for every neighbour talked to, and a refresh
    /// for each would be a `getifaddrs` per new peer.
    pub fn invalidates_snapshot(&self) -> bool {
        match self {
            Msg::Link { .. } | Msg::Addr { .. } => true,
            Msg::Route { kind, flags, .. } => {
                matches!(*kind, RTM_ADD | RTM_DELETE | RTM_CHANGE | RTM_REDIRECT)
                    && flags & (RTF_LLINFO | RTF_WASCLONED) == 0
            }
            Msg::Other { .. } => false,
        }
    }
}

/// Why bytes are not a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    Truncated,
    /// A version other than `RTM_VERSION`: skipped, as `route(8)` does.
    Version(u8),
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// XNU's `ROUNDUP32`: the space a sockaddr of `sa_len` bytes takes in a message.
pub fn roundup32(sa_len: usize) -> usize {
    if sa_len == 0 {
        4
    } else {
        1 + ((sa_len - 1) | 3)
    }
}

/// One sockaddr (the bytes from its `sa_len` on) in slot `slot`.
fn sockaddr(b: &[u8], slot: usize) -> Sa {
    let len = b.first().copied().unwrap_or(0) as usize;
    let b = &b[..len.min(b.len())];
    let family = b.get(1).copied().unwrap_or(0);
    if slot == 2 || slot == 3 {
        // RTAX_NETMASK, RTAX_GENMASK.
        return Sa::Mask(b.get(2..).unwrap_or(&[]).to_vec());
    }
    match family {
        // sockaddr_in: len, family, port (2), addr (4).
        AF_INET if len >= 8 => Sa::Ip(IpAddr::V4(Ipv4Addr::new(b[4], b[5], b[6], b[7]))),
        // sockaddr_in6: len, family, port, flowinfo (4), addr (16), scope_id.
        AF_INET6 if len >= 24 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[8..24]);
            let mut ip = Ipv6Addr::from(a);
            // KAME embeds the scope of a link-local address in bytes 2–3; it is not
            // part of the address.
            if ip.is_unicast_link_local() || ip.is_multicast() {
                let mut s = ip.segments();
                s[1] = 0;
                ip = Ipv6Addr::from(s);
            }
            Sa::Ip(IpAddr::V6(ip))
        }
        // sockaddr_dl: len, family, index (2), type, nlen, alen, slen, data (name…).
        AF_LINK if len >= 8 => {
            let index = u16::from_ne_bytes([b[2], b[3]]);
            let nlen = b[5] as usize;
            let name = b
                .get(8..8 + nlen)
                .map(|n| String::from_utf8_lossy(n).into_owned())
                .unwrap_or_default();
            Sa::Link { index, name }
        }
        f => Sa::Other(f),
    }
}

/// The sockaddrs named by `mask` in `b`.
fn addrs(mut b: &[u8], mask: i32) -> Result<Addrs, ParseError> {
    let mut out = Addrs::default();
    for (slot, entry) in out.0.iter_mut().enumerate() {
        if mask & (1 << slot) == 0 {
            continue;
        }
        let len = *b.first().ok_or(ParseError::Truncated)? as usize;
        let step = roundup32(len);
        if len > b.len() {
            return Err(ParseError::Truncated);
        }
        *entry = Some(sockaddr(b, slot));
        b = b.get(step..).unwrap_or(&[]);
    }
    Ok(out)
}

/// Parses the first message in `buf`; returns it and its length (`rtm_msglen`), so
/// that a read of several messages is walked message by message.
pub fn parse(buf: &[u8]) -> Result<(Msg, usize), ParseError> {
    let msglen = u16_at(buf, 0).ok_or(ParseError::Truncated)? as usize;
    if msglen < 4 || msglen > buf.len() {
        return Err(ParseError::Truncated);
    }
    let m = &buf[..msglen];
    let version = m[2];
    let kind = m[3];
    if version != RTM_VERSION {
        return Err(ParseError::Version(version));
    }
    let t = ParseError::Truncated;
    let msg = match kind {
        RTM_IFINFO => {
            if msglen < IF_MSGHDR_LEN {
                return Err(t);
            }
            Msg::Link {
                flags: i32_at(m, 8).ok_or(t)?,
                index: u16_at(m, 12).ok_or(t)?,
            }
        }
        RTM_NEWADDR | RTM_DELADDR => {
            if msglen < IFA_MSGHDR_LEN {
                return Err(t);
            }
            Msg::Addr {
                added: kind == RTM_NEWADDR,
                index: u16_at(m, 12).ok_or(t)?,
                addrs: addrs(&m[IFA_MSGHDR_LEN..], i32_at(m, 4).ok_or(t)?)?,
            }
        }
        RTM_NEWMADDR | RTM_DELMADDR | RTM_IFINFO2 => Msg::Other { kind },
        k if k <= 0xb => {
            if msglen < RT_MSGHDR_LEN {
                return Err(t);
            }
            Msg::Route {
                kind,
                index: u16_at(m, 4).ok_or(t)?,
                flags: i32_at(m, 8).ok_or(t)?,
                errno: i32_at(m, 24).ok_or(t)?,
                addrs: addrs(&m[RT_MSGHDR_LEN..], i32_at(m, 12).ok_or(t)?)?,
            }
        }
        _ => Msg::Other { kind },
    };
    Ok((msg, msglen))
}

/// Every message of one read; messages of another version are skipped, and a
/// truncated tail ends the walk.
pub fn parse_all(mut buf: &[u8]) -> Vec<Msg> {
    let mut out = Vec::new();
    while buf.len() >= 4 {
        let Some(len) = u16_at(buf, 0).map(usize::from) else {
            break;
        };
        match parse(buf) {
            Ok((msg, n)) => {
                out.push(msg);
                buf = &buf[n..];
            }
            Err(ParseError::Version(_)) if len >= 4 && len <= buf.len() => buf = &buf[len..],
            Err(_) => break,
        }
    }
    out
}

/// Whether a read of routing messages holds one that makes the snapshot stale: what
/// `parse_all(buf)` followed by [`Msg::invalidates_snapshot`] says, walked in place by
/// `rtm_msglen` without allocating (the watcher reads with signals blocked, perhaps
/// inside a hook called from a handler). A message whose addresses are malformed
/// still counts by its type and flags, where `parse` would refuse it: stale is the
/// safe answer.
pub fn any_invalidates(mut buf: &[u8]) -> bool {
    while buf.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([buf[0], buf[1]]));
        if len < 4 || len > buf.len() {
            break;
        }
        let m = &buf[..len];
        if m[2] == RTM_VERSION {
            let hit = match m[3] {
                RTM_IFINFO => len >= IF_MSGHDR_LEN,
                RTM_NEWADDR | RTM_DELADDR => len >= IFA_MSGHDR_LEN,
                RTM_ADD | RTM_DELETE | RTM_CHANGE | RTM_REDIRECT => {
                    len >= RT_MSGHDR_LEN
                        && i32_at(m, 8).is_some_and(|f| f & (RTF_LLINFO | RTF_WASCLONED) == 0)
                }
                _ => false,
            };
            if hit {
                return true;
            }
        }
        buf = &buf[len..];
    }
    false
}

/// `sizeof(struct sockaddr_dl)` (`bsd/net/if_dl.h`): what `RTA_IFP` asks with.
pub const SOCKADDR_DL_LEN: usize = 20;

/// `rtm_pid` and `rtm_seq` of a route message (`rt_msghdr`), to tell the reply to one's
/// own request from the other messages every routing socket receives.
pub fn pid_seq(buf: &[u8]) -> Option<(i32, i32)> {
    if buf.len() < RT_MSGHDR_LEN {
        return None;
    }
    Some((i32_at(buf, 16)?, i32_at(buf, 20)?))
}

/// The `RTM_GET` request for the route the kernel would use to `dest`, asking for its
/// interface (`RTA_IFP` with an empty `sockaddr_dl`, as `route -n get` asks): the bytes
/// to write to a routing socket. Sent as [`RTM_GET_SILENT`], so that the reply comes
/// back on the asking socket only, as an `RTM_GET` with the same `rtm_seq` and the
/// writer's `rtm_pid` (see [`route_ifindex`]), and is not copied to every routing
/// socket of the host (each steered datagram may ask one).
pub fn get_request(dest: IpAddr, seq: i32) -> Vec<u8> {
    let (sa, sa_len) = super::wire::encode_sockaddr(&std::net::SocketAddr::new(dest, 0));
    let len = RT_MSGHDR_LEN + roundup32(sa_len) + roundup32(SOCKADDR_DL_LEN);
    let mut m = vec![0u8; len];
    m[0..2].copy_from_slice(&(len as u16).to_ne_bytes());
    m[2] = RTM_VERSION;
    m[3] = RTM_GET_SILENT;
    m[8..12].copy_from_slice(&(RTF_UP | RTF_HOST).to_ne_bytes());
    m[12..16].copy_from_slice(&(RTA_DST | RTA_IFP).to_ne_bytes());
    m[20..24].copy_from_slice(&seq.to_ne_bytes());
    let at = RT_MSGHDR_LEN;
    m[at..at + sa_len].copy_from_slice(&sa[..sa_len]);
    let dl = at + roundup32(sa_len);
    m[dl] = SOCKADDR_DL_LEN as u8;
    m[dl + 1] = AF_LINK;
    m
}

/// Why an `RTM_GET` reply names no interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRoute {
    /// The kernel's `rtm_errno` (`ESRCH`: no route).
    Errno(i32),
    /// Not a route reply, or one without an interface.
    Unknown,
}

/// The interface index an `RTM_GET` reply names: its `RTA_IFP` link's, else
/// `rtm_index`.
pub fn route_ifindex(msg: &Msg) -> Result<u32, NoRoute> {
    let Msg::Route {
        kind: RTM_GET,
        index,
        errno,
        addrs,
        ..
    } = msg
    else {
        return Err(NoRoute::Unknown);
    };
    if *errno != 0 {
        return Err(NoRoute::Errno(*errno));
    }
    match addrs.ifp() {
        Some(Sa::Link { index, .. }) if *index != 0 => Ok(u32::from(*index)),
        _ if *index != 0 => Ok(u32::from(*index)),
        _ => Err(NoRoute::Unknown),
    }
}

#[cfg(test)]
mod tests;
