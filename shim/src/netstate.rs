//! A snapshot of the host's interfaces and addresses, refreshed at most once a second
//! when a decision needs it (so a link change is seen by new sockets within about a
//! second, without a netlink dump per call); on macOS also as soon as the routing
//! socket tells of a change (`sys::netwatch`, looked at once a millisecond at most).
//!
//! Readers never block and never allocate: two static snapshot slots, a current index
//! and a reader count per slot (`sys::sync::DoubleBuffer`). A reader announces itself
//! on the current slot and re-checks that it is still current; the refresher only ever
//! writes the other slot, and only when nobody is reading it, then flips the index. The
//! refresher is whoever wins a flag; everybody else keeps using the current snapshot.

use crate::sys::sync::DoubleBuffer;
use crate::sys::{self, ifdump};
use config_schema::sysdns::{AddrKind, address_kind, link_up};
use config_schema::{IfName, IfaceState, NetView};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};

/// Capacity of a snapshot: enough for a container host (a veth per container, each
/// with a link-local address). Held in two static slots (`.bss`: pages are only
/// resident once a refresh writes them), filled in place (never on the stack).
const MAX_IF: usize = 1024;
const MAX_ADDR: usize = 4096;
/// Maximum age of a snapshot before a decision refreshes it.
pub(crate) const MAX_AGE_MS: u64 = 1000;

#[derive(Clone, Copy)]
struct IfRec {
    index: u32,
    name: [u8; 16],
    name_len: u8,
    flags: u32,
    has_v4: bool,
    has_v6: bool,
    has_v6_ll: bool,
    v4: Ipv4Addr,
}

impl IfRec {
    const EMPTY: IfRec = IfRec {
        index: 0,
        name: [0; 16],
        name_len: 0,
        flags: 0,
        has_v4: false,
        has_v6: false,
        has_v6_ll: false,
        v4: Ipv4Addr::UNSPECIFIED,
    };
}

#[derive(Clone, Copy)]
struct AddrRec {
    ip: IpAddr,
    index: u32,
    /// The on-link prefix this address gives its interface (`onlink`/`prefix`).
    onlink: IpAddr,
    prefix: u8,
    /// The address can be a source (an IPv6 one is not while tentative or after a
    /// failed duplicate detection: binding it fails with `EADDRNOTAVAIL`).
    source_ok: bool,
}

pub(crate) struct Snap {
    n_if: usize,
    ifs: [IfRec; MAX_IF],
    n_addr: usize,
    addrs: [AddrRec; MAX_ADDR],
    /// Set when the dump failed: every interface then looks missing (fail closed).
    pub(crate) error: i32,
    /// Interfaces or addresses beyond the snapshot's capacity, left out.
    dropped: usize,
    /// `ifs[..n_if]` is sorted by index (done once, when the addresses start coming).
    sorted: bool,
    /// Which refresh took it (`fdtable::SHARED_TABLE.generation` while it is current).
    pub(crate) generation: u64,
}

impl Snap {
    const fn new() -> Snap {
        Snap {
            n_if: 0,
            ifs: [IfRec::EMPTY; MAX_IF],
            n_addr: 0,
            // All-zero (an IPv4 unspecified address), so the static slots are `.bss`.
            addrs: [AddrRec {
                ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                index: 0,
                onlink: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                prefix: 0,
                source_ok: false,
            }; MAX_ADDR],
            error: 0,
            dropped: 0,
            sorted: false,
            generation: 0,
        }
    }

    fn find(&self, name: &IfName) -> Option<&IfRec> {
        let want = name.as_bytes();
        self.ifs[..self.n_if]
            .iter()
            .find(|r| &r.name[..r.name_len as usize] == want)
    }

    /// The first IPv4 address of interface `index` (for `ip_mreq_source`).
    pub(crate) fn v4_of(&self, index: u32) -> Option<Ipv4Addr> {
        self.ifs[..self.n_if]
            .iter()
            .find(|r| r.index == index && r.has_v4)
            .map(|r| r.v4)
    }

    /// The usable addresses of interface `index` (source candidates).
    pub(crate) fn addrs_of(&self, index: u32) -> Vec<IpAddr> {
        self.addrs[..self.n_addr]
            .iter()
            .filter(|a| a.index == index)
            .map(|a| a.ip)
            .collect()
    }

    /// The on-link prefixes of interface `index` (from its addresses), each once.
    pub(crate) fn onlink_of(&self, index: u32, mut f: impl FnMut(IpAddr, u8)) {
        let mine = |a: &&AddrRec| a.index == index;
        for (i, a) in self.addrs[..self.n_addr]
            .iter()
            .enumerate()
            .filter(|(_, a)| mine(a))
        {
            let dup = self.addrs[..i]
                .iter()
                .filter(mine)
                .any(|b| b.onlink == a.onlink && b.prefix == a.prefix);
            if !dup {
                f(a.onlink, a.prefix);
            }
        }
    }

    /// The index of the loopback interface (1 in every network namespace).
    pub(crate) fn loopback_index(&self) -> u32 {
        self.ifs[..self.n_if]
            .iter()
            .find(|r| r.flags & libc::IFF_LOOPBACK as u32 != 0)
            .map_or(1, |r| r.index)
    }

    /// The name of interface `index`.
    pub(crate) fn name_of(&self, index: u32) -> Option<IfName> {
        let r = self.ifs[..self.n_if].iter().find(|r| r.index == index)?;
        std::str::from_utf8(&r.name[..r.name_len as usize])
            .ok()
            .and_then(|s| IfName::new(s).ok())
    }

    fn fill(&mut self, buf: &mut ifdump::RecvBuf) {
        self.n_if = 0;
        self.n_addr = 0;
        self.dropped = 0;
        self.sorted = false;
        let r = ifdump::dump(buf, &mut |item| self.add(item));
        self.error = r.err().unwrap_or(0);
    }

    /// Takes one dumped link or address (links all come first: the dump asks for the
    /// links, then for the addresses).
    fn add(&mut self, item: ifdump::Item<'_>) {
        match item {
            ifdump::Item::Link { index, flags, name } => {
                if self.n_if == MAX_IF {
                    self.dropped += 1;
                    return;
                }
                if name.is_empty() || name.len() >= 16 {
                    return;
                }
                let mut rec = IfRec {
                    index,
                    flags,
                    name_len: name.len() as u8,
                    ..IfRec::EMPTY
                };
                rec.name[..name.len()].copy_from_slice(name);
                self.ifs[self.n_if] = rec;
                self.n_if += 1;
                self.sorted = false;
            }
            ifdump::Item::Addr {
                index,
                ip,
                scope,
                flags,
                onlink,
                prefix,
            } => {
                if !self.sorted {
                    self.ifs[..self.n_if].sort_unstable_by_key(|r| r.index);
                    self.sorted = true;
                }
                if self.n_addr < MAX_ADDR {
                    self.addrs[self.n_addr] = AddrRec {
                        ip,
                        index,
                        onlink,
                        prefix,
                        source_ok: address_kind(ip, scope, flags).is_some(),
                    };
                    self.n_addr += 1;
                } else {
                    self.dropped += 1;
                }
                let Ok(i) = self.ifs[..self.n_if].binary_search_by_key(&index, |r| r.index) else {
                    return;
                };
                let rec = &mut self.ifs[i];
                // What counts is config-schema's rule (`mifrun status` shows the same):
                // tentative or failed-DAD IPv6 addresses cannot be used as a source.
                match (address_kind(ip, scope, flags), ip) {
                    (Some(AddrKind::V4), IpAddr::V4(v4)) => {
                        if !rec.has_v4 {
                            rec.v4 = v4;
                        }
                        rec.has_v4 = true;
                    }
                    (Some(AddrKind::V6LinkLocal), _) => rec.has_v6_ll = true,
                    (Some(AddrKind::V6), _) => rec.has_v6 = true,
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
impl Snap {
    /// A snapshot of one interface with one IPv4 address (tests only).
    pub(crate) fn one_interface(index: u32, name: &str, up: bool, v4: Ipv4Addr) -> Box<Snap> {
        let mut s = Box::new(Snap::new());
        let mut rec = IfRec {
            index,
            name_len: name.len() as u8,
            flags: if up {
                (libc::IFF_UP | libc::IFF_RUNNING) as u32
            } else {
                0
            },
            has_v4: true,
            v4,
            ..IfRec::EMPTY
        };
        rec.name[..name.len()].copy_from_slice(name.as_bytes());
        s.ifs[0] = rec;
        s.n_if = 1;
        s.addrs[0] = AddrRec {
            ip: IpAddr::V4(v4),
            index,
            onlink: IpAddr::V4(v4),
            prefix: 24,
            source_ok: true,
        };
        s.n_addr = 1;
        s
    }

    pub(crate) fn set_up(&mut self, up: bool) {
        self.ifs[0].flags = if up {
            (libc::IFF_UP | libc::IFF_RUNNING) as u32
        } else {
            0
        };
    }
}

impl Snap {
    /// The interface that owns `ip`, if it is one of this host's addresses.
    pub(crate) fn owner_of(&self, ip: IpAddr) -> Option<u32> {
        self.addrs[..self.n_addr]
            .iter()
            .find(|a| a.ip == ip)
            .map(|a| a.index)
    }
}

impl NetView for Snap {
    fn iface(&self, name: &IfName) -> Option<IfaceState> {
        let r = self.find(name)?;
        let up = link_up(r.flags);
        Some(IfaceState {
            index: r.index,
            up,
            has_v4: r.has_v4,
            has_v6: r.has_v6,
            has_v6_link_local: r.has_v6_ll,
        })
    }

    fn is_local(&self, ip: IpAddr) -> bool {
        self.addrs[..self.n_addr].iter().any(|a| a.ip == ip)
    }

    fn learned(&self, ip: IpAddr) -> Option<usize> {
        crate::learned::lookup(ip)
    }

    /// Only addresses that can be a source (`source`, a bind kept or rewritten).
    fn owns(&self, index: u32, ip: IpAddr) -> bool {
        self.addrs[..self.n_addr]
            .iter()
            .any(|a| a.index == index && a.ip == ip && a.source_ok)
    }

    fn address_of(&self, index: u32, family: config_schema::AddrFamily) -> Option<IpAddr> {
        // In the kernel's order: an interface's primary IPv4 address comes first.
        self.addrs[..self.n_addr]
            .iter()
            .filter(|a| a.index == index && a.source_ok)
            .map(|a| a.ip)
            .find(|ip| match (ip, family) {
                (IpAddr::V4(_), config_schema::AddrFamily::V4) => true,
                (IpAddr::V6(v6), config_schema::AddrFamily::V6) => !v6.is_unicast_link_local(),
                _ => false,
            })
    }
}

/// The two snapshot slots, their reader counts, the refresher's flag and its netlink
/// receive buffer (`sys::sync::DoubleBuffer`).
static SNAPSHOTS: DoubleBuffer<Snap, ifdump::RecvBuf> =
    DoubleBuffer::new(Snap::new(), Snap::new(), ifdump::RecvBuf::new());
static LOADED: AtomicBool = AtomicBool::new(false);
static TAKEN_MS: AtomicU64 = AtomicU64::new(0);
/// Bumped by every [`invalidate`]: a refresh that began before one must not mark its
/// snapshot fresh when it is published (it was filled before the change).
static INVALIDATED: AtomicU64 = AtomicU64::new(0);

/// Tries to take a new snapshot; `false` when another thread is doing it or a reader
/// still holds the spare slot.
fn refresh() -> bool {
    // With every signal blocked: a handler that ran here and left by `siglongjmp` (or
    // `pthread_exit`) would leave the refresher's flag set, and the snapshot would never
    // be taken again. A refresh happens at most once a second.
    sys::with_signals_blocked(refresh_now)
}

fn refresh_now() -> bool {
    // The generation (bumped by every refresh, so that per-socket memos know when to
    // decide again) and the deadline live in the table the stub's fast path reads.
    // Only the refresher (the one writer of SNAPSHOTS) writes them.
    let fast = &crate::fdtable::SHARED_TABLE;
    let epoch = INVALIDATED.load(SeqCst);
    let filled = SNAPSHOTS.write(
        |snap, buf| {
            snap.fill(buf);
            let generation = fast.generation.load(SeqCst) + 1;
            if mifshim_fastpath::generation_wraps(generation) {
                // Before the new generation is visible: a memo written 2^15 refreshes
                // ago must not match it.
                crate::fdtable::clear_memos();
            }
            snap.generation = generation;
            (generation, snap.error, snap.dropped)
        },
        // The snapshot is current; still the only writer.
        |&(generation, _, _)| {
            fast.generation.store(generation, SeqCst);
            let now = sys::now_ms();
            TAKEN_MS.store(now, SeqCst);
            fast.fresh_until_ms.store(now + MAX_AGE_MS, SeqCst);
            LOADED.store(true, SeqCst);
            if INVALIDATED.load(SeqCst) != epoch {
                // Invalidated while this one was being filled: current, not fresh.
                fast.fresh_until_ms.store(0, SeqCst);
                TAKEN_MS.store(0, SeqCst);
            }
        },
    );
    let Some((_, failed, dropped)) = filled else {
        return false;
    };
    if failed != 0 {
        crate::log::netlink_failed(failed);
    }
    if dropped != 0 {
        crate::log::warn_limited(format_args!(
            "this host has more than {MAX_IF} interfaces or {MAX_ADDR} addresses: {dropped} left out of the snapshot (a left-out interface counts as missing, a left-out address as not local)"
        ));
    }
    true
}

/// Runs `f` on a current snapshot (refreshing it first if it is older than
/// [`MAX_AGE_MS`]).
#[inline]
pub(crate) fn with<R>(f: impl FnOnce(&Snap) -> R) -> R {
    if !LOADED.load(SeqCst) {
        // The change watcher (macOS) first, so that the first snapshot already holds
        // what a new watcher cannot have heard.
        let _ = sys::netwatch::changed();
        // The first snapshot: wait (bounded) if another thread is taking it.
        let mut spins = 0;
        while !refresh() && !LOADED.load(SeqCst) && spins < 20_000 {
            spins += 1;
            std::thread::yield_now();
        }
    } else {
        // Looked at before the age, so that messages older than an age refresh do not
        // make the next decision take another.
        let changed = sys::netwatch::changed();
        let old = sys::now_ms().saturating_sub(TAKEN_MS.load(SeqCst)) > MAX_AGE_MS;
        let missed = (changed || old) && !refresh();
        if missed && changed {
            // Another thread is taking a snapshot (perhaps begun before the change) or
            // a reader holds the spare slot: the next decision takes one (and a
            // refresh in progress does not mark its snapshot fresh: `INVALIDATED`).
            invalidate();
        }
    }
    SNAPSHOTS.read(f)
}

/// Whether interface `index` has `ip` as a source address now, asked when the current
/// snapshot (which the caller may still hold) says it has not and a call would be
/// refused for it: a snapshot is up to [`MAX_AGE_MS`] old, and an address added since
/// (a DHCP lease, a VPN client configuring its link, then binding to the address at
/// once) must not be refused. Takes a new snapshot each time (one netlink dump per
/// refused call: the coarse clock's 4 ms ticks are too coarse to tell a snapshot taken
/// before the address from one taken after it); `false` when none can be taken.
pub(crate) fn owns_now(index: u32, ip: IpAddr) -> bool {
    refresh() && SNAPSHOTS.read(|s| s.owns(index, ip))
}

/// Forces the next decision to take a new snapshot (after `ENODEV`, say).
pub(crate) fn invalidate() {
    INVALIDATED.fetch_add(1, SeqCst);
    crate::fdtable::SHARED_TABLE.fresh_until_ms.store(0, SeqCst);
    TAKEN_MS.store(0, SeqCst);
}

/// In a child after `fork`: a refresher that was running in another thread of the
/// parent does not exist here.
pub(crate) fn after_fork_in_child() {
    SNAPSHOTS.reset_after_fork();
    sys::netwatch::after_fork_in_child();
}

// Linux's rtnetlink scopes: run there.
#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn link(index: u32, name: &str) -> ifdump::Item<'_> {
        ifdump::Item::Link {
            index,
            flags: (libc::IFF_UP | libc::IFF_RUNNING) as u32,
            name: name.as_bytes(),
        }
    }

    fn addr(index: u32, ip: IpAddr, scope: u8) -> ifdump::Item<'static> {
        ifdump::Item::Addr {
            index,
            ip,
            scope,
            flags: 0,
            onlink: ip,
            prefix: 64,
        }
    }

    /// A container host: hundreds of veths, each with a link-local address, and the
    /// VPN created last. With room for 64 interfaces, tun0 was missing (the policy
    /// failed closed) and its address was not the host's own.
    #[test]
    fn vpn_created_after_hundreds_of_veths_was_missing_from_the_snapshot() {
        let mut snap = Box::new(Snap::new());
        let names: Vec<String> = (0..600).map(|i| format!("veth{i}")).collect();
        // Links arrive in no particular order.
        for i in (0..600u32).rev() {
            snap.add(link(i + 10, &names[i as usize]));
        }
        snap.add(link(700, "tun0"));
        for i in 0..600u32 {
            let ll = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, i as u16 + 1);
            snap.add(addr(i + 10, IpAddr::V6(ll), libc::RT_SCOPE_LINK));
        }
        let vpn: IpAddr = "10.8.0.2".parse().unwrap();
        snap.add(addr(700, vpn, libc::RT_SCOPE_UNIVERSE));
        let tun0 = snap
            .iface(&IfName::new("tun0").unwrap())
            .expect("tun0 in the snapshot");
        assert_eq!(tun0.index, 700);
        assert!(tun0.up && tun0.has_v4 && !tun0.has_v6);
        assert!(snap.is_local(vpn));
        let veth = snap.iface(&IfName::new("veth599").unwrap()).unwrap();
        assert!(veth.has_v6_link_local && !veth.has_v6);
        assert_eq!(snap.dropped, 0);
    }

    #[test]
    fn beyond_capacity_is_counted_not_written() {
        let mut snap = Box::new(Snap::new());
        let names: Vec<String> = (0..MAX_IF + 5).map(|i| format!("if{i}")).collect();
        for (i, n) in names.iter().enumerate() {
            snap.add(link(i as u32 + 1, n));
        }
        for i in 0..MAX_ADDR + 3 {
            snap.add(addr(
                1,
                IpAddr::V4(Ipv4Addr::from(i as u32 + 1)),
                libc::RT_SCOPE_UNIVERSE,
            ));
        }
        assert_eq!(
            (snap.n_if, snap.n_addr, snap.dropped),
            (MAX_IF, MAX_ADDR, 8)
        );
        assert!(snap.iface(&IfName::new("if1023").unwrap()).is_some());
        assert!(snap.iface(&IfName::new("if1024").unwrap()).is_none());
    }
}
