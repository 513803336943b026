//! Addresses learned from names resolved under a name rule, so that connections to
//! them follow that rule ("a name resolved over tun0 is connected over tun0"). A small
//! fixed table of seqlocked slots: readers (connect, send) never block or allocate;
//! the oldest entries are overwritten.

use config_schema::{Profile, Why};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::*};

const SLOTS: usize = 512;
const PROBE: usize = 4;

struct Slot {
    /// Even: stable; odd: being written.
    seq: AtomicU32,
    hi: AtomicU64,
    lo: AtomicU64,
    /// Rule index + 1; 0: empty.
    rule: AtomicU32,
}

static TABLE: [Slot; SLOTS] = [const {
    Slot {
        seq: AtomicU32::new(0),
        hi: AtomicU64::new(0),
        lo: AtomicU64::new(0),
        rule: AtomicU32::new(0),
    }
}; SLOTS];
static USED: AtomicBool = AtomicBool::new(false);
/// Bumped by every change of the table (see [`epoch`]).
static EPOCH: AtomicU64 = AtomicU64::new(0);

/// Held by the unit tests that write the table or need its epoch to stand still.
#[cfg(test)]
pub(crate) static TEST_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
static NEXT_VICTIM: AtomicU32 = AtomicU32::new(0);

fn key(ip: IpAddr) -> u128 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn home(k: u128) -> usize {
    let h = (k as u64) ^ ((k >> 64) as u64);
    (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize % SLOTS
}

fn read(s: &Slot) -> Option<(u128, u32)> {
    for _ in 0..8 {
        let a = s.seq.load(Acquire);
        if a & 1 == 1 {
            std::hint::spin_loop();
            continue;
        }
        let k = ((s.hi.load(Acquire) as u128) << 64) | s.lo.load(Acquire) as u128;
        let r = s.rule.load(Acquire);
        if s.seq.load(Acquire) == a {
            return Some((k, r));
        }
    }
    None
}

/// Changes whenever what [`lookup`] answers may have changed: a decision remembered
/// under one epoch is still right under the same one.
pub(crate) fn epoch() -> u64 {
    EPOCH.load(Acquire)
}

/// The rule index `ip` was learned under.
pub(crate) fn lookup(ip: IpAddr) -> Option<usize> {
    if !USED.load(Relaxed) {
        return None;
    }
    let k = key(ip);
    let h = home(k);
    (0..PROBE).find_map(|i| match read(&TABLE[(h + i) % SLOTS]) {
        Some((kk, r)) if r != 0 && kk == k => Some(r as usize - 1),
        _ => None,
    })
}

/// Records the addresses a name was resolved to when a rule of `profile` chose its
/// interface (`why`): a connection to one of them then follows that rule (the
/// resolvers of both OSes, `crate::dns`).
pub(crate) fn remember_answer(profile: &Profile, why: &Why<'_>, addrs: &[IpAddr]) {
    if let Why::Rule(r) = why {
        if let Some(i) = profile.rules.iter().position(|x| std::ptr::eq(x, *r)) {
            for a in addrs {
                remember(*a, i);
            }
        }
    }
}

/// Records that `ip` was resolved under rule `rule`.
pub(crate) fn remember(ip: IpAddr, rule: usize) {
    let k = key(ip);
    let h = home(k);
    let pick = (0..PROBE)
        .map(|i| (h + i) % SLOTS)
        .find(|i| matches!(read(&TABLE[*i]), Some((kk, r)) if r == 0 || kk == k))
        .unwrap_or((h + NEXT_VICTIM.fetch_add(1, Relaxed) as usize % PROBE) % SLOTS);
    let s = &TABLE[pick];
    let seq = s.seq.load(Acquire);
    if seq & 1 == 1
        || s.seq
            .compare_exchange(seq, seq + 1, AcqRel, Acquire)
            .is_err()
    {
        return; // another writer is on this slot; learning is best effort
    }
    s.hi.store((k >> 64) as u64, Release);
    s.lo.store(k as u64, Release);
    s.rule.store(rule as u32 + 1, Release);
    s.seq.store(seq + 2, Release);
    USED.store(true, Relaxed);
    EPOCH.fetch_add(1, AcqRel);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_and_overwrites() {
        let _lock = TEST_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let a: IpAddr = "203.0.113.200".parse().unwrap();
        let mapped: IpAddr = "::ffff:203.0.113.200".parse().unwrap();
        let b: IpAddr = "2001:db8::200".parse().unwrap();
        assert_eq!(lookup(b), None);
        remember(a, 3);
        remember(b, 0);
        assert_eq!(lookup(a), Some(3));
        assert_eq!(
            lookup(mapped),
            Some(3),
            "IPv4-mapped spelling finds the same entry"
        );
        assert_eq!(lookup(b), Some(0));
        remember(a, 5);
        assert_eq!(lookup(a), Some(5));
        // Fill far beyond capacity: lookups stay bounded and correct for what is kept.
        for i in 0..4000u32 {
            remember(
                IpAddr::V6(std::net::Ipv6Addr::from(
                    0x2001_0db8_0000_0000_0000_0000_0001_0000u128 + i as u128,
                )),
                1,
            );
        }
        let last = IpAddr::V6(std::net::Ipv6Addr::from(
            0x2001_0db8_0000_0000_0000_0000_0001_0000u128 + 3999,
        ));
        assert_eq!(lookup(last), Some(1));
    }
}
