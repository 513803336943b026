//! What the shim knows about each file descriptor, so that the per-datagram path makes
//! no system call: one `AtomicU32` per fd in lazily `mmap`ed chunks (no malloc, usable
//! from signal handlers and after fork).
//!
//! Entries are written by the `socket`/`setsockopt`/`connect` hooks and cleared by
//! every call that closes or renumbers an fd: `close`, `close_range`, `closefrom`,
//! `fclose`, `dup2`/`dup3`/`fcntl(F_DUPFD)` onto an open fd, `accept`, and fds received
//! with `SCM_RIGHTS`. An fd the shim has no entry for is asked about with `getsockopt`
//! and marked [`SHARED`] (it came from elsewhere: inherited, received, or created by a
//! path no hook sees).
//!
//! The table describes the kernel's socket, not just the fd number: a socket shared by
//! `dup`, `fork` or `SCM_RIGHTS` is [`SHARED`], and then nothing the shim set on it is
//! relied on (see `mifshim_fastpath::SHARED`). A fact that lets a call skip steering
//! (a device binding) is checked with the kernel before it is relied on where another
//! holder or the kernel itself may have dropped it (`connect(AF_UNSPEC)`). What is
//! left: a close *and* a reuse of an fd number both made by raw system calls, which
//! no preload can see (README, Limits).
//!
//! The table's layout, the memo and the fast-path test live in `mifshim-fastpath`
//! (`fastpath/`), because the preloaded stub reads this table too: a datagram the
//! engine already steered once to the same destination is sent by the stub without
//! calling the engine at all.

use config_schema::Proto;
// For `ops`, which macOS does not build yet.
#[cfg_attr(target_os = "macos", allow(unused_imports))]
pub(crate) use mifshim_fastpath::{
    APP_BOUND, APP_MCAST_IF, APP_UC4, APP_UC6, LOGGED_SEND, MCAST_CHECKED, REDIRECTED, SHARED,
    SHIM_BOUND, SHIM_DIRECT, SHIM_MCAST_IF, UC4, UC6,
};
use mifshim_fastpath::{CHUNK, CHUNKS, Key, Shared, TCP, UDP, VALID};
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

/// The per-fd entries and datagram memos, and the snapshot generation and freshness
/// that go with them: read by the preloaded stub's `sendto`/`sendmsg` fast path
/// (`mifshim_fastpath::is_fast`), written only here and in `netstate`; the stub finds
/// it through the engine's interface (`mifshim_abi::Engine::fast`).
pub static SHARED_TABLE: Shared = Shared::new();

/// A decoded entry: what the shim knows about the socket on an fd, as the socket core
/// takes it (its flags word and the unicast interface index the shim set).
pub(crate) type Entry = mifshim_socket_core::Sock;

/// Maps a socket's type and protocol to the transport rules talk about.
pub(crate) fn proto_of(sotype: i32, protocol: i32) -> Proto {
    match mifshim_fastpath::proto_bits(sotype, protocol) {
        TCP => Proto::Tcp,
        UDP => Proto::Udp,
        _ => Proto::Other,
    }
}

/// A per-fd value kept in lazily mapped chunks of zero-initialised values (`T` is
/// `FdSlot` or a pair of `AtomicU64`: all-zero bytes are valid for both). The stub
/// creates `fds` chunks the same way (`mifshim_fastpath::slot_create`).
fn chunk_slot<T: crate::sys::sync::Zeroed + 'static>(
    table: &'static [AtomicPtr<T>; CHUNKS],
    fd: i32,
    create: bool,
) -> Option<&'static T> {
    if !create {
        return mifshim_fastpath::slot(table, fd);
    }
    crate::sys::sync::chunk_slot_create(table, fd)
}

fn slot(fd: i32, create: bool) -> Option<&'static AtomicU32> {
    chunk_slot(&SHARED_TABLE.fds, fd, create).map(|s| &s.entry)
}

/// The memo word of `fd` (`mifshim_fastpath::FdSlot::memo`).
fn memo_slot(fd: i32, create: bool) -> Option<&'static AtomicU64> {
    chunk_slot(&SHARED_TABLE.fds, fd, create).map(|s| &s.memo)
}

/// Whether `fd`'s datagram memo is `word` for exactly `key`'s destination.
pub(crate) fn memo_is(fd: i32, word: u64, key: &Key) -> bool {
    mifshim_fastpath::memo_equals(&SHARED_TABLE, fd, word, key)
}

/// Records the datagram memo of `fd` (`mifshim_fastpath::memo`) for `key`.
pub(crate) fn memo_set(fd: i32, word: u64, key: &Key) {
    let Some(m) = memo_slot(fd, true) else {
        return;
    };
    let a = if key.is_v6() {
        chunk_slot(&SHARED_TABLE.ip6s, fd, true)
    } else {
        None
    };
    mifshim_fastpath::memo_store(m, a, word, key);
}

/// Clears every memo (when the snapshot generation wraps the memo's bits).
pub(crate) fn clear_memos() {
    crate::sys::sync::for_each_mapped(&SHARED_TABLE.fds, |s| s.memo.store(0, Ordering::Release));
}

pub(crate) fn get(fd: i32) -> Entry {
    chunk_slot(&SHARED_TABLE.fds, fd, false).map_or(Entry::new(0, 0), |s| {
        Entry::new(
            s.entry.load(Ordering::Acquire),
            s.uc_index.load(Ordering::Acquire),
        )
    })
}

/// A new description of `fd` (a new socket, or one found): whatever memo an earlier
/// socket on this number left goes with it.
pub(crate) fn set(fd: i32, e: Entry) {
    if let Some(s) = chunk_slot(&SHARED_TABLE.fds, fd, true) {
        s.uc_index.store(e.uc_index, Ordering::Release);
        mifshim_fastpath::set_entry(s, e.flags);
    }
}

/// Records what the kernel said about `fd` only if nothing was recorded meanwhile (the
/// stub's `socket` bookkeeping of a new socket on this number wins over a probe that
/// raced it); returns the entry that stands.
pub(crate) fn set_if_unknown(fd: i32, e: Entry) -> Entry {
    let Some(s) = chunk_slot(&SHARED_TABLE.fds, fd, true) else {
        return e;
    };
    s.uc_index.store(e.uc_index, Ordering::Release);
    match s
        .entry
        .compare_exchange(0, e.flags, Ordering::AcqRel, Ordering::Acquire)
    {
        Ok(_) => {
            s.memo.store(0, Ordering::Release);
            e
        }
        Err(now) => Entry::new(now, s.uc_index.load(Ordering::Acquire)),
    }
}

/// Adds flags to a valid entry.
pub(crate) fn add_flags(fd: i32, flags: u32) {
    if let Some(s) = slot(fd, false) {
        let _ = s.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
            (v & VALID != 0).then_some(v | flags)
        });
    }
}

/// Records the unicast interface the shim set (`flag` is [`UC4`] or [`UC6`]): the
/// index first, then the flag that makes it count.
pub(crate) fn set_uc(fd: i32, flag: u32, index: u32) {
    if let Some(s) = chunk_slot(&SHARED_TABLE.fds, fd, false) {
        s.uc_index.store(index, Ordering::Release);
        let _ = s
            .entry
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                (v & VALID != 0).then_some(v | flag)
            });
    }
}

pub(crate) fn clear_flags(fd: i32, flags: u32) {
    if let Some(s) = slot(fd, false) {
        s.fetch_and(!flags, Ordering::AcqRel);
    }
}

pub(crate) fn forget(fd: i32) {
    mifshim_fastpath::forget(&SHARED_TABLE, fd);
}

/// fds `first..=last` are closed (`close_range`, `closefrom`): forgets those of them
/// that have slots (only mapped chunks are walked).
pub(crate) fn forget_range(first: u32, last: u32) {
    let last = (last as u64).min((CHUNK * CHUNKS) as u64 - 1) as u32;
    let mut fd = first as u64;
    while fd <= last as u64 {
        let chunk = fd as usize / CHUNK;
        let chunk_end = ((chunk + 1) * CHUNK - 1) as u64;
        if SHARED_TABLE.fds[chunk].load(Ordering::Acquire).is_null() {
            fd = chunk_end + 1;
            continue;
        }
        for f in fd..=chunk_end.min(last as u64) {
            forget(f as i32);
        }
        fd = chunk_end + 1;
    }
}

/// `to` now refers to what `from` refers to: its entry and its datagram memo, never
/// those of the socket `to` used to be. Both fds now hold one socket: it is
/// [`SHARED`] from now on (what one fd's user does to it, the other's sees).
pub(crate) fn copy(from: i32, to: i32) {
    let e = get(from);
    if !e.valid() {
        forget(to);
        return;
    }
    if e.family().is_some() {
        add_flags(from, SHARED);
    }
    let shared = if e.family().is_some() { SHARED } else { 0 };
    set(
        to,
        Entry::new((e.flags & !LOGGED_SEND) | shared, e.uc_index),
    );
    let word = memo_word_of(from);
    if word == 0 {
        return;
    }
    let ip6 = chunk_slot(&SHARED_TABLE.ip6s, from, false).map_or([0; 2], |a| {
        [a[0].load(Ordering::Acquire), a[1].load(Ordering::Acquire)]
    });
    let key = Key {
        word: mifshim_fastpath::memo_key_word(word),
        ip6: if word & mifshim_fastpath::KEY_V6 != 0 {
            ip6
        } else {
            [0; 2]
        },
    };
    // Only if `from`'s memo did not change while we read it.
    if memo_word_of(from) == word {
        memo_set(to, word, &key);
    }
}

fn memo_word_of(fd: i32) -> u64 {
    memo_slot(fd, false).map_or(0, |m| m.load(Ordering::Acquire))
}

// Linux's socket types and rtnetlink scopes: run there.
#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use config_schema::AddrFamily;

    #[test]
    fn entries_round_trip_and_flags_stick() {
        let fd = 70_000; // a chunk no other test touches
        assert!(!get(fd).valid());
        set(fd, Entry::of(Some(AddrFamily::V6), Proto::Udp));
        let e = get(fd);
        assert!(e.valid());
        assert_eq!(e.family(), Some(AddrFamily::V6));
        assert_eq!(e.proto(), Proto::Udp);
        add_flags(fd, SHIM_BOUND);
        assert!(get(fd).has(SHIM_BOUND));
        copy(fd, fd + 1);
        assert_eq!(get(fd + 1).family(), Some(AddrFamily::V6));
        forget(fd);
        assert!(!get(fd).valid());
        add_flags(fd, SHIM_BOUND);
        assert!(!get(fd).valid(), "flags are not added to forgotten entries");
        assert!(get(-1) == Entry::new(0, 0));
        assert!(get(1 << 30) == Entry::new(0, 0));
    }

    #[test]
    fn dup_onto_a_promoted_socket_left_its_memo_on_the_new_one() {
        let (a, b) = (80_000, 80_001); // a chunk no other test touches
        let udp4 = Entry::of(Some(AddrFamily::V4), Proto::Udp).flags;
        let ka = mifshim_fastpath::key_v6(
            [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            9,
        );
        let kb = mifshim_fastpath::key_v4(0xc633_6401, 9);
        let (wa, wb) = (
            mifshim_fastpath::memo(1, &ka),
            mifshim_fastpath::memo(1, &kb),
        );
        set(a, Entry::new(udp4 | UC6, 3));
        memo_set(a, wa, &ka);
        // b: another socket, promoted to another interface, memo of its own.
        set(b, Entry::new(udp4 | UC4, 4));
        memo_set(b, wb, &kb);
        assert!(memo_is(b, wb, &kb));
        // dup2(a, b): b is a's socket now, with a's memo (the whole IPv6 address
        // included), never its old one.
        copy(a, b);
        assert_eq!(get(b).uc_index, 3);
        assert!(memo_is(b, wa, &ka));
        assert!(!memo_is(b, wb, &kb));
        // Both fds hold one socket now: neither may rely on what the shim set on it.
        assert!(get(a).has(SHARED) && get(b).has(SHARED));
        // A socket created on a number whose old socket was closed unseen starts
        // without a memo.
        set(b, Entry::of(Some(AddrFamily::V4), Proto::Udp));
        assert!(!memo_is(b, wa, &ka));
        // dup2 from an fd without a memo clears the target's.
        memo_set(b, wb, &kb);
        forget(a);
        set(a, Entry::of(Some(AddrFamily::V4), Proto::Udp));
        copy(a, b);
        assert!(!memo_is(b, wb, &kb));
        assert_eq!(memo_word_of(b), 0);
    }

    #[test]
    fn proto_masks_type_flags() {
        assert_eq!(
            proto_of(
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0
            ),
            Proto::Tcp
        );
        assert_eq!(
            proto_of(libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, libc::IPPROTO_UDP),
            Proto::Udp
        );
        assert_eq!(proto_of(libc::SOCK_DGRAM, libc::IPPROTO_ICMP), Proto::Other);
        assert_eq!(proto_of(libc::SOCK_RAW, libc::IPPROTO_RAW), Proto::Other);
    }
}
