//! The interface snapshot's source on macOS (`netstate` fills its snapshot from
//! `sys::ifdump`; on Linux that is the rtnetlink dump): every interface from
//! `getifaddrs`, then every address, in the snapshot's vocabulary (`Item`, the
//! Linux dump's shape; an address's kind given as rtnetlink's scope and flags by
//! `ifaddr::rtnl_terms`, which its tests hold to `ifaddr::address_kind`).
//!
//! Unlike the Linux dump this allocates (`getifaddrs` and the list built from it), so a
//! refresh reached from a signal handler is not async-signal-safe on macOS; and a link
//! counts as up by `IFF_UP` and `IFF_RUNNING`, as on Linux, which macOS keeps on a
//! Wi-Fi interface that is not associated (such an interface has no address, so it
//! still offers nothing to steer through).

use std::net::IpAddr;

use libc::c_int;

use crate::sys::macos::ifaddr::rtnl_terms;

/// One dumped link or address, as `netstate` takes them (links all first).
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
        /// The on-link prefix: the address and its prefix length.
        onlink: IpAddr,
        prefix: u8,
    },
}

/// Nothing kept between dumps (`getifaddrs` allocates its own list).
pub(crate) struct RecvBuf;

impl RecvBuf {
    pub(crate) const fn new() -> Self {
        RecvBuf
    }
}

/// Dumps all links, then all addresses, calling `f` for each.
pub(crate) fn dump(_buf: &mut RecvBuf, f: &mut dyn FnMut(Item<'_>)) -> Result<(), c_int> {
    let links = super::ifaddrs::snapshot()?;
    for l in &links {
        f(Item::Link {
            index: l.index,
            flags: l.flags,
            name: l.name.as_bytes(),
        });
    }
    for l in &links {
        for a in &l.addrs {
            let (scope, flags) = rtnl_terms(a.ip, a.kind);
            f(Item::Addr {
                index: l.index,
                ip: a.ip,
                scope,
                flags,
                onlink: a.ip,
                prefix: a.prefix,
            });
        }
    }
    Ok(())
}
