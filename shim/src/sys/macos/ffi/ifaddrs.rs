//! Interface state from `getifaddrs`, with the IPv6 address flags
//! (`SIOCGIFAFLAG_IN6`) that tell a tentative or duplicated address from a usable one:
//! the macOS counterpart of the Linux engine's netlink dump.

use crate::sys::real;
use std::ffi::CStr;
use std::net::IpAddr;

use config_schema::sysdns::AddrKind;
use libc::c_int;

use super::errno;
use super::sockopt::from_sockaddr;
use crate::sys::macos::ifaddr::{address_kind, strip_embedded_scope};

/// One address of an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Addr {
    pub ip: IpAddr,
    pub prefix: u8,
    /// What it counts for (`None`: nothing, e.g. tentative).
    pub kind: Option<AddrKind>,
}

/// One interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    pub name: String,
    pub index: u32,
    /// `ifa_flags` (`IFF_UP`, `IFF_RUNNING`, `IFF_LOOPBACK`…).
    pub flags: u32,
    pub addrs: Vec<Addr>,
}

fn prefix_of(mask: Option<std::net::SocketAddr>) -> u8 {
    match mask.map(|m| m.ip()) {
        Some(IpAddr::V4(m)) => u32::from(m).count_ones() as u8,
        Some(IpAddr::V6(m)) => u128::from(m).count_ones() as u8,
        None => 0,
    }
}

/// The `IN6_IFF_*` flags of an IPv6 address of interface `name` (0 when unknown).
fn in6_flags(sock: c_int, name: &CStr, sa: *const libc::sockaddr) -> u32 {
    // SAFETY: in6_ifreq is plain data; all-zero is valid.
    let mut req: libc::in6_ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.to_bytes();
    if bytes.len() >= req.ifr_name.len() {
        return 0;
    }
    for (d, s) in req.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    // SAFETY: `sa` is an AF_INET6 sockaddr from getifaddrs (checked by the caller),
    // at least sockaddr_in6 long; `req` is a valid in6_ifreq for SIOCGIFAFLAG_IN6,
    // which reads the address and writes `ifru_flags6`.
    unsafe {
        req.ifr_ifru.ifru_addr = sa.cast::<libc::sockaddr_in6>().read_unaligned();
        if libc::ioctl(sock, libc::SIOCGIFAFLAG_IN6, &mut req) != 0 {
            return 0;
        }
        req.ifr_ifru.ifru_flags6 as u32
    }
}

/// Every interface with its flags and addresses.
pub(crate) fn snapshot() -> Result<Vec<Link>, c_int> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `head` is a valid out-pointer; freed below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(errno());
    }
    // SAFETY: a plain socket call; closed below.
    let sock6 = unsafe { real::socket(libc::AF_INET6, libc::SOCK_DGRAM, 0) };
    let mut links: Vec<Link> = Vec::new();
    let mut p = head;
    while !p.is_null() {
        // SAFETY: `p` walks the list getifaddrs returned, which stays valid until
        // freeifaddrs; every name is a NUL-terminated string.
        let ifa = unsafe { &*p };
        p = ifa.ifa_next;
        // SAFETY: as above.
        let cname = unsafe { CStr::from_ptr(ifa.ifa_name) };
        let name = cname.to_string_lossy().into_owned();
        let i = match links.iter().position(|l| l.name == name) {
            Some(i) => i,
            None => {
                // SAFETY: `ifa_name` is NUL-terminated.
                let index = unsafe { libc::if_nametoindex(ifa.ifa_name) };
                links.push(Link {
                    name,
                    index,
                    flags: ifa.ifa_flags,
                    addrs: Vec::new(),
                });
                links.len() - 1
            }
        };
        // SAFETY: getifaddrs's sockaddrs are null or valid for their sa_len.
        let (addr, mask) = unsafe { (from_sockaddr(ifa.ifa_addr), from_sockaddr(ifa.ifa_netmask)) };
        let Some(addr) = addr else {
            continue;
        };
        let ip = strip_embedded_scope(addr.ip());
        let flags6 = if ip.is_ipv6() && sock6 >= 0 {
            in6_flags(sock6, cname, ifa.ifa_addr)
        } else {
            0
        };
        links[i].addrs.push(Addr {
            ip,
            prefix: prefix_of(mask),
            kind: address_kind(ip, flags6),
        });
    }
    // SAFETY: `head` came from getifaddrs and is freed once; `sock6` is ours.
    unsafe {
        libc::freeifaddrs(head);
        if sock6 >= 0 {
            real::own_close(sock6);
        }
    }
    Ok(links)
}
