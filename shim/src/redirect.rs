//! Sockets whose DNS queries the shim redirected (`[dns] redirect = true`): the
//! program believes it talks to the system's server, so answers from the
//! interface's server are shown to it as coming from the original address (c-ares,
//! for one, drops answers from any other source). A small table keyed by fd,
//! seqlocked like the learned-address table; only sockets flagged `REDIRECTED` in the
//! fd table are looked up, so other receives pay one atomic load.

use crate::fdtable::{self, REDIRECTED};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering::*};

const SLOTS: usize = 64;

struct Slot {
    seq: AtomicU32,
    fd: AtomicI32,
    orig: [AtomicU64; 3],
    new: [AtomicU64; 3],
}

static TABLE: [Slot; SLOTS] = [const {
    Slot {
        seq: AtomicU32::new(0),
        fd: AtomicI32::new(-1),
        orig: [const { AtomicU64::new(0) }; 3],
        new: [const { AtomicU64::new(0) }; 3],
    }
}; SLOTS];

fn pack(a: SocketAddr) -> [u64; 3] {
    let ip = match a.ip() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    let v = u128::from(ip);
    [(v >> 64) as u64, v as u64, a.port() as u64]
}

fn unpack(w: [u64; 3]) -> SocketAddr {
    let ip = Ipv6Addr::from(((w[0] as u128) << 64) | w[1] as u128);
    SocketAddr::new(ip.to_canonical(), w[2] as u16)
}

/// How many slots a socket may use, starting at `fd % SLOTS`.
const PROBE: usize = 4;

fn read_slot(s: &Slot) -> Option<(i32, [u64; 3], [u64; 3])> {
    for _ in 0..64 {
        let a = s.seq.load(Acquire);
        if a & 1 == 1 {
            std::hint::spin_loop();
            continue;
        }
        let f = s.fd.load(Acquire);
        let o = [
            s.orig[0].load(Acquire),
            s.orig[1].load(Acquire),
            s.orig[2].load(Acquire),
        ];
        let n = [
            s.new[0].load(Acquire),
            s.new[1].load(Acquire),
            s.new[2].load(Acquire),
        ];
        if s.seq.load(Acquire) == a {
            return Some((f, o, n));
        }
    }
    None
}

/// Remembers that `fd`'s traffic to `orig` goes to `new`: in the slot that already
/// holds `fd`, else a free one (or one whose socket is gone), else the first.
pub(crate) fn record(fd: i32, orig: SocketAddr, new: SocketAddr) {
    let slots = (0..PROBE).map(|i| &TABLE[(fd as usize + i) % SLOTS]);
    let holder = |s: &&Slot| read_slot(s).is_some_and(|(f, _, _)| f == fd);
    let free = |s: &&Slot| read_slot(s).is_some_and(|(f, _, _)| f < 0 || !flagged(f));
    let s = slots
        .clone()
        .find(holder)
        .or_else(|| slots.clone().find(free))
        .unwrap_or(&TABLE[fd as usize % SLOTS]);
    // A writer on the same slot is brief: wait for it rather than give up, since an
    // unrecorded redirect means an answer the program would drop.
    for _ in 0..1000 {
        let seq = s.seq.load(Acquire);
        if seq & 1 == 1
            || s.seq
                .compare_exchange(seq, seq + 1, AcqRel, Acquire)
                .is_err()
        {
            std::hint::spin_loop();
            continue;
        }
        s.fd.store(fd, Release);
        for (slot, v) in s.orig.iter().zip(pack(orig)) {
            slot.store(v, Release);
        }
        for (slot, v) in s.new.iter().zip(pack(new)) {
            slot.store(v, Release);
        }
        s.seq.store(seq + 2, Release);
        fdtable::add_flags(fd, REDIRECTED);
        return;
    }
}

/// `(orig, new)` for `fd`, if its traffic was redirected.
pub(crate) fn lookup(fd: i32) -> Option<(SocketAddr, SocketAddr)> {
    if !flagged(fd) {
        return None;
    }
    (0..PROBE).find_map(|i| match read_slot(&TABLE[(fd as usize + i) % SLOTS]) {
        Some((f, o, n)) if f == fd => Some((unpack(o), unpack(n))),
        _ => None,
    })
}

/// Is `fd` a socket whose traffic was redirected? (One atomic load.)
pub(crate) fn flagged(fd: i32) -> bool {
    fdtable::get(fd).has(REDIRECTED)
}

/// The address to show the program for a datagram from `from` on `fd`.
pub(crate) fn disguise(fd: i32, from: SocketAddr) -> Option<SocketAddr> {
    let (orig, new) = lookup(fd)?;
    (from.ip().to_canonical() == new.ip() && from.port() == new.port()).then_some(orig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_disguise() {
        let fd = 70_100;
        fdtable::set(
            fd,
            fdtable::Entry::of(
                Some(config_schema::AddrFamily::V4),
                config_schema::Proto::Udp,
            ),
        );
        let orig: SocketAddr = "192.0.2.53:53".parse().unwrap();
        let new: SocketAddr = "203.0.113.53:53".parse().unwrap();
        assert_eq!(disguise(fd, new), None, "nothing recorded yet");
        record(fd, orig, new);
        assert_eq!(lookup(fd), Some((orig, new)));
        assert_eq!(disguise(fd, new), Some(orig));
        assert_eq!(
            disguise(fd, "[::ffff:203.0.113.53]:53".parse().unwrap()),
            Some(orig)
        );
        assert_eq!(disguise(fd, "203.0.113.54:53".parse().unwrap()), None);
        let v6o: SocketAddr = "[2001:db8::53]:53".parse().unwrap();
        let v6n: SocketAddr = "[2001:db8:ff::53]:53".parse().unwrap();
        record(fd, v6o, v6n);
        assert_eq!(disguise(fd, v6n), Some(v6o));
        fdtable::forget(fd);
        assert_eq!(lookup(fd), None);
    }
}
