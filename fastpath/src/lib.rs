//! The per-datagram fast path, shared by the preloaded stub (`preload/`,
//! `libmifshim.so`) and the engine (`shim/`, `libmifshim_engine.so`).
//!
//! The engine owns one [`Shared`] (`mifshim_abi::Engine::fast` points to it) and writes it: a
//! word per fd saying what the shim knows and did to the socket, a memo per fd of the
//! last datagram destination it steered, and the generation and freshness of its
//! snapshot of the host's interfaces. The stub reads it in its `sendto`/`sendmsg`
//! hooks: when [`is_fast`] says the datagram goes where the last one went, on a socket
//! whose unicast interface the engine already set, under a snapshot that is still
//! fresh, the stub calls the C library directly. That path makes no call besides one
//! vDSO clock read, touches no thread-local, cannot fail and does not set errno, so it
//! is safe wherever the hooked call is (signal handlers, after `fork`).
//!
//! Everything else — the first datagram of a socket, a new destination, a stale
//! snapshot — goes to the engine, which decides and updates the table.

#![cfg_attr(not(test), no_std)]

use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicU64, Ordering};

/// File descriptors per lazily mapped chunk.
pub const CHUNK: usize = 4096;
/// Chunks: fds up to `CHUNK * CHUNKS` (about a million) have entries.
pub const CHUNKS: usize = 256;

/// Bumped whenever [`Shared`] changes shape, so a stub never reads an engine of
/// another build through the wrong layout.
pub const LAYOUT: u32 = 5;

// Entry bits (one `AtomicU32` per fd).
/// The entry describes the socket on this fd.
pub const VALID: u32 = 1;
/// `AF_INET` or `AF_INET6`.
pub const INET: u32 = 1 << 1;
/// `AF_INET6`.
pub const V6: u32 = 1 << 2;
/// A TCP (or MPTCP) socket.
pub const TCP: u32 = 1 << 3;
/// A UDP (or UDP-Lite) socket.
pub const UDP: u32 = 1 << 4;
/// The program bound the socket to a device itself (or it was bound when found).
pub const APP_BOUND: u32 = 1 << 5;
/// The program chose a multicast interface.
pub const APP_MCAST_IF: u32 = 1 << 6;
/// The program chose the IPv4 unicast interface (`IP_UNICAST_IF`: IPv4 and
/// IPv4-mapped destinations).
pub const APP_UC4: u32 = 1 << 7;
/// The shim bound the socket to a device.
pub const SHIM_BOUND: u32 = 1 << 8;
/// The shim has logged this socket's first datagram decision.
pub const LOGGED_SEND: u32 = 1 << 9;
/// The shim set the multicast interface.
pub const SHIM_MCAST_IF: u32 = 1 << 10;
/// The kernel was asked whether the program chose a multicast interface (no).
pub const MCAST_CHECKED: u32 = 1 << 11;
/// The shim redirected this socket's DNS traffic.
pub const REDIRECTED: u32 = 1 << 12;
/// The shim set `IP_UNICAST_IF` (IPv4 and IPv4-mapped destinations) to the index in
/// the slot's `uc_index`. Never cleared while the socket lives: the shim never lowers
/// a socket's steering (another thread's datagram may be on its way through the fast
/// path, another process may hold the socket).
pub const UC4: u32 = 1 << 13;
/// The shim set `IPV6_UNICAST_IF` to the index in the slot's `uc_index`; as [`UC4`].
pub const UC6: u32 = 1 << 14;
/// The socket also sends to destinations its unicast interface does not cover
/// (exempt ones, other interfaces'): it is not promoted any further, and steered
/// datagrams carry their own PKTINFO.
pub const MIXED: u32 = 1 << 15;
/// The program chose the IPv6 unicast interface (`IPV6_UNICAST_IF`: native IPv6
/// destinations only).
pub const APP_UC6: u32 = 1 << 16;
/// The socket may be held by someone else too: another fd of this process (`dup`,
/// `fcntl(F_DUPFD)`), another process (`fork`, `SCM_RIGHTS`), or it was not created
/// under the shim's eyes (inherited across `exec`, received). What the shim set on it
/// may be changed behind its back, so nothing relies on it: no fast path, no trust
/// in the unicast interface, bindings checked with the kernel before they are relied
/// on.
pub const SHARED: u32 = 1 << 17;
/// The shim bound the socket ([`SHIM_BOUND`]) to the interface a *direct* destination
/// needed (loopback or an address's own interface, or the route's): a UDP socket that
/// carried the shim's unicast interface, connected to such a destination. Its device
/// binding cannot be undone, so a later steered destination is refused rather than
/// sent through that interface.
pub const SHIM_DIRECT: u32 = 1 << 18;
/// The shim applied the policy's socket options (`source`, `mark`, `dscp`) to this
/// socket (the first steered decision does it; later ones need not ask again).
pub const SHIM_OPTS: u32 = 1 << 19;
/// The socket is bound to a specific local address (not the wildcard). The kernel
/// then routes its datagrams differently: an IPv6 one takes a unicast interface or a
/// PKTINFO's interface as a preference among routes of equal metric only
/// (`ip6_route_output_flags` sets `RT6_LOOKUP_F_IFACE` only without a source), and an
/// IPv4 PKTINFO's `ipi_spec_dst` (0) replaces the bound source. Only a device binding
/// steers it.
pub const SRC_ADDR: u32 = 1 << 20;
/// The socket's device binding was found on it (the engine probed a socket it did not
/// see created: received by `SCM_RIGHTS`, inherited across `exec`), not seen being
/// made: whose it is cannot be told (another process's shim may have made it). Cleared
/// when this process's program binds or unbinds it itself.
pub const FOUND_BOUND: u32 = 1 << 21;

/// [`Shared::log_fd`] when standard error was closed and no log file is configured:
/// the engine writes nothing (fd 2 may be the program's socket by now).
pub const LOG_SILENT: i32 = -3;

/// What the shim keeps per fd: the entry (bits above) and the memo of the last
/// steered datagram destination ([`memo`]), side by side so that the fast path reads
/// one cache line per datagram.
#[repr(C)]
pub struct FdSlot {
    pub entry: AtomicU32,
    /// The interface index the shim set as the socket's unicast interface ([`UC4`],
    /// [`UC6`]).
    pub uc_index: AtomicU32,
    pub memo: AtomicU64,
}

impl FdSlot {
    #[allow(clippy::new_without_default)] // all-zero, like the mapped chunks
    pub const fn new() -> FdSlot {
        FdSlot {
            entry: AtomicU32::new(0),
            uc_index: AtomicU32::new(0),
            memo: AtomicU64::new(0),
        }
    }
}

/// What the engine shares with the stub. All fields are written by the engine only.
/// The fields every datagram reads come first, in one cache line with the first
/// chunk pointer.
#[repr(C)]
pub struct Shared {
    /// [`LAYOUT`] of the engine that owns this.
    pub layout: u32,
    /// Generation of the engine's interface snapshot (bumped by every refresh).
    pub generation: AtomicU64,
    /// `CLOCK_MONOTONIC_COARSE` milliseconds up to which that snapshot is fresh;
    /// 0: none is.
    pub fresh_until_ms: AtomicU64,
    /// The fd the engine logs to (negative: none, [`LOG_SILENT`]: never again): its
    /// `close` must reach the engine.
    pub log_fd: AtomicI32,
    /// Per-fd slots, chunks of [`CHUNK`] mapped (zeroed) on first use.
    pub fds: [AtomicPtr<FdSlot>; CHUNKS],
    /// Per-fd full address of the memoised destination when it is native IPv6 (the
    /// memo only holds a hash of it), as two big-endian halves.
    pub ip6s: [AtomicPtr<[AtomicU64; 2]>; CHUNKS],
}

impl Shared {
    #[allow(clippy::new_without_default)] // a `const fn` for a static; no Default wanted
    pub const fn new() -> Shared {
        Shared {
            layout: LAYOUT,
            generation: AtomicU64::new(0),
            fresh_until_ms: AtomicU64::new(0),
            log_fd: AtomicI32::new(2),
            fds: [const { AtomicPtr::new(core::ptr::null_mut()) }; CHUNKS],
            ip6s: [const { AtomicPtr::new(core::ptr::null_mut()) }; CHUNKS],
        }
    }
}

/// The slot of `fd` in a chunked table, if its chunk is mapped.
pub fn slot<T>(table: &[AtomicPtr<T>; CHUNKS], fd: i32) -> Option<&T> {
    if fd < 0 {
        return None;
    }
    let fd = fd as usize;
    let p = table.get(fd / CHUNK)?.load(Ordering::Acquire);
    if p.is_null() {
        return None;
    }
    // SAFETY: a published chunk points to CHUNK initialised (zeroed) values that are
    // never unmapped; fd % CHUNK < CHUNK.
    Some(unsafe { &*p.add(fd % CHUNK) })
}

/// The slot of `fd`, mapping its chunk first if needed.
///
/// # Safety
/// `map(bytes)` returns `bytes` of zeroed memory (or `None`) that stays mapped for
/// the life of the process unless handed to `unmap` (only when another thread
/// published its chunk first); all-zero bytes must be a valid `T`.
pub unsafe fn slot_create<T>(
    table: &[AtomicPtr<T>; CHUNKS],
    fd: i32,
    map: impl FnOnce(usize) -> Option<*mut T>,
    unmap: impl FnOnce(*mut T, usize),
) -> Option<&T> {
    if fd < 0 {
        return None;
    }
    let fd = fd as usize;
    let head = table.get(fd / CHUNK)?;
    let mut p = head.load(Ordering::Acquire);
    if p.is_null() {
        let bytes = CHUNK * size_of::<T>();
        let fresh = map(bytes)?;
        match head.compare_exchange(
            core::ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => p = fresh,
            Err(existing) => {
                unmap(fresh, bytes);
                p = existing;
            }
        }
    }
    // SAFETY: p is a published chunk of CHUNK zeroed values (the caller's contract)
    // that is never unmapped; fd % CHUNK < CHUNK.
    Some(unsafe { &*p.add(fd % CHUNK) })
}

/// A new description of the socket on an fd: the memo of whatever the number was
/// before goes first, then the entry.
pub fn set_entry(slot: &FdSlot, entry: u32) {
    slot.memo.store(0, Ordering::Release);
    slot.entry.store(entry, Ordering::Release);
}

/// The fd is closed: nothing is known about it any more.
pub fn forget(shared: &Shared, fd: i32) {
    if let Some(s) = slot(&shared.fds, fd) {
        s.entry.store(0, Ordering::Release);
        s.memo.store(0, Ordering::Release);
    }
}

/// Marks the socket on `fd` [`SHARED`] (it was passed to another process, say).
pub fn mark_shared(shared: &Shared, fd: i32) {
    if let Some(s) = slot(&shared.fds, fd) {
        let _ = s
            .entry
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                (v & VALID != 0).then_some(v | SHARED)
            });
    }
}

/// Marks every known INET socket [`SHARED`]: before a child process is made, which
/// holds them all. Walks the mapped chunks only.
pub fn mark_all_shared(shared: &Shared) {
    for head in &shared.fds {
        let p = head.load(Ordering::Acquire);
        if p.is_null() {
            continue;
        }
        for i in 0..CHUNK {
            // SAFETY: a published chunk holds CHUNK slots and is never unmapped.
            let s = unsafe { &*p.add(i) };
            let e = s.entry.load(Ordering::Acquire);
            if e & (VALID | INET) == VALID | INET && e & SHARED == 0 {
                s.entry.fetch_or(SHARED, Ordering::AcqRel);
            }
        }
    }
}

/// The transport bits ([`TCP`], [`UDP`] or none) of a socket's type and protocol.
pub fn proto_bits(sotype: i32, protocol: i32) -> u32 {
    const SOCK_STREAM: i32 = 1;
    const SOCK_DGRAM: i32 = 2;
    const IPPROTO_TCP: i32 = 6;
    const IPPROTO_UDP: i32 = 17;
    const IPPROTO_UDPLITE: i32 = 136;
    const IPPROTO_MPTCP: i32 = 262;
    match (sotype & 0xf, protocol) {
        (SOCK_STREAM, 0 | IPPROTO_TCP | IPPROTO_MPTCP) => TCP,
        (SOCK_DGRAM, 0 | IPPROTO_UDP | IPPROTO_UDPLITE) => UDP,
        _ => 0,
    }
}

/// The entry of a socket just created by `socket(domain, sotype, protocol)`.
pub fn entry_for_socket(domain: i32, sotype: i32, protocol: i32) -> u32 {
    let family = match domain as u16 {
        AF_INET => INET,
        AF_INET6 => INET | V6,
        _ => 0,
    };
    VALID | family | proto_bits(sotype, protocol)
}

/// Whether an entry may take the fast path for a destination of this kind (native
/// IPv6 or not): the engine set the unicast interface of that path itself, and
/// nothing since made the socket's state untrustworthy or the program's.
pub fn entry_is_fast(e: u32, v6: bool) -> bool {
    let needed = if v6 { UC6 } else { UC4 };
    e & needed != 0 && e & (SHARED | SHIM_BOUND | APP_BOUND | APP_UC4 | APP_UC6 | TCP) == 0
}

/// Key bit: the destination is native IPv6 (follows `IPV6_UNICAST_IF`).
pub const KEY_V6: u64 = 1 << 48;
/// Generation bits kept in a memo.
pub const GEN_BITS: u32 = 15;
const GEN_SHIFT: u32 = 49;

/// A datagram destination as the fast path compares it: `word` is
/// `[v6:1][address or its hash:32][port:16]`; `ip6` the whole address (big-endian
/// halves) when it is native IPv6, else zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    pub word: u64,
    pub ip6: [u64; 2],
}

impl Key {
    pub fn is_v6(&self) -> bool {
        self.word & KEY_V6 != 0
    }
}

/// The key of an IPv4 (or IPv4-mapped) destination: the address itself and the port.
pub fn key_v4(ip: u32, port: u16) -> Key {
    Key {
        word: ((ip as u64) << 16) | port as u64,
        ip6: [0; 2],
    }
}

/// The key of an IPv6 destination (`sin6_addr` bytes): IPv4-mapped addresses are
/// keyed as IPv4; others carry [`KEY_V6`], a 32-bit hash of the address (which only
/// narrows the search) and the whole address (which decides).
pub fn key_v6(ip: [u8; 16], port: u16) -> Key {
    if ip[..10] == [0; 10] && ip[10] == 0xff && ip[11] == 0xff {
        return key_v4(u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]), port);
    }
    let v = u128::from_be_bytes(ip);
    let (hi, lo) = ((v >> 64) as u64, v as u64);
    let h = (hi ^ lo).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    Key {
        word: KEY_V6 | (h << 16) | port as u64,
        ip6: [hi, lo],
    }
}

/// The key of a datagram's destination as the program wrote it (`sockaddr` bytes),
/// or `None` when it is not a plain INET/INET6 address: too short, another family
/// (`AF_UNSPEC` included), or an IPv6 address with a scope (those always go to the
/// engine).
pub fn key_of(sa: &[u8]) -> Option<Key> {
    let family = u16::from_ne_bytes([*sa.first()?, *sa.get(1)?]);
    let port = u16::from_be_bytes([*sa.get(2)?, *sa.get(3)?]);
    match family {
        AF_INET if sa.len() >= 16 => Some(key_v4(
            u32::from_be_bytes([sa[4], sa[5], sa[6], sa[7]]),
            port,
        )),
        // 24 bytes: the RFC 2133 layout without sin6_scope_id, as the kernel takes.
        AF_INET6 if sa.len() >= 24 => {
            if sa.len() >= 28 && sa[24..28] != [0; 4] {
                return None;
            }
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&sa[8..24]);
            Some(key_v6(ip, port))
        }
        _ => None,
    }
}

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// The memo word the engine stores for `key` under snapshot `generation`.
pub fn memo(generation: u64, key: &Key) -> u64 {
    ((generation & ((1 << GEN_BITS) - 1)) << GEN_SHIFT) | key.word
}

/// The key word a memo was stored for (its generation bits dropped).
pub fn memo_key_word(memo: u64) -> u64 {
    memo & ((1 << GEN_SHIFT) - 1)
}

/// Whether a generation starts a new cycle of the memo's generation bits: the engine
/// then clears every memo, so that one written [`GEN_BITS`] wraps ago cannot match.
pub fn generation_wraps(generation: u64) -> bool {
    generation & ((1 << GEN_BITS) - 1) == 0
}

/// The engine's side: records `word` (from [`memo`]) for `key` in an fd's slots. For
/// an IPv6 key the word is withdrawn while the address changes, so a reader never
/// pairs a new word with an old address; without an address slot nothing is
/// recorded.
pub fn memo_store(m: &AtomicU64, ip6: Option<&[AtomicU64; 2]>, word: u64, key: &Key) {
    if key.is_v6() {
        m.store(0, Ordering::Release);
        let Some(a) = ip6 else {
            return;
        };
        a[0].store(key.ip6[0], Ordering::Release);
        a[1].store(key.ip6[1], Ordering::Release);
    }
    m.store(word, Ordering::Release);
}

/// Whether `fd`'s memo is `word` for exactly `key`'s destination. For IPv6 the word is
/// read again after the address: a change in between fails the match. (A writer
/// storing the *same* word for another address between the two reads — a hash and
/// port collision of two destinations sent on one socket by two threads at once —
/// could pass with a mixed address that equals neither; the address compared must
/// then also be the one being sent to.)
pub fn memo_equals(shared: &Shared, fd: i32, word: u64, key: &Key) -> bool {
    slot(&shared.fds, fd).is_some_and(|s| memo_matches(shared, s, fd, word, key))
}

/// [`memo_equals`] on `fd`'s slot, already looked up.
fn memo_matches(shared: &Shared, s: &FdSlot, fd: i32, word: u64, key: &Key) -> bool {
    let m = &s.memo;
    if m.load(Ordering::Acquire) != word {
        return false;
    }
    if !key.is_v6() {
        return true;
    }
    let Some(a) = slot(&shared.ip6s, fd) else {
        return false;
    };
    a[0].load(Ordering::Acquire) == key.ip6[0]
        && a[1].load(Ordering::Acquire) == key.ip6[1]
        && m.load(Ordering::Acquire) == word
}

/// The fast path's first test, made before the program's address is read: `fd`'s slot,
/// if the engine set a unicast interface on its socket and may still rely on it (for
/// either path; [`is_fast_at`] then checks the one the destination takes).
pub fn promoted_slot(shared: &Shared, fd: i32) -> Option<&FdSlot> {
    slot(&shared.fds, fd).filter(|s| {
        let e = s.entry.load(Ordering::Acquire);
        entry_is_fast(e, false) || entry_is_fast(e, true)
    })
}

/// The fast-path test: may a datagram to `key` on `fd` go out unchanged at
/// `now_ms` (`CLOCK_MONOTONIC_COARSE`)? Yes when the engine set this socket's unicast
/// interface for the destination's family itself, nothing since made the socket's
/// state untrustworthy or the program's (see [`entry_is_fast`]), the last datagram it
/// steered went to exactly this destination, and the snapshot it decided under is
/// still the current and fresh one.
///
/// Lock-free, and sound without locks because what it relies on is never taken away
/// while the socket lives: the engine never clears a unicast interface it set (an
/// exempt datagram on such a socket carries a PKTINFO naming the loopback or owning
/// interface instead), and a socket anyone else may hold ([`SHARED`]) never passes.
/// What can race is the program itself changing the option from another thread (its
/// own choice; the setsockopt hook withdraws [`UC4`]/[`UC6`] before the kernel sees
/// the change).
pub fn is_fast(shared: &Shared, fd: i32, key: &Key, now_ms: u64) -> bool {
    slot(&shared.fds, fd).is_some_and(|s| is_fast_at(shared, s, fd, key, now_ms))
}

/// [`is_fast`] on `fd`'s slot, already looked up (by [`promoted_slot`]).
pub fn is_fast_at(shared: &Shared, fs: &FdSlot, fd: i32, key: &Key, now_ms: u64) -> bool {
    let e = fs.entry.load(Ordering::Acquire);
    if !entry_is_fast(e, key.is_v6()) {
        return false;
    }
    // Freshness before generation: the engine bumps the generation before it moves
    // the deadline, so a new deadline always comes with its generation.
    if now_ms > shared.fresh_until_ms.load(Ordering::Acquire) {
        return false;
    }
    let g = shared.generation.load(Ordering::Acquire);
    memo_matches(shared, fs, fd, memo(g, key), key)
}

/// `sizeof(struct cmsghdr)` on the 64-bit Linux ABIs this project builds for.
pub const CMSGHDR: usize = 16;

/// `CMSG_ALIGN`: control messages are 8-byte aligned.
pub const fn cmsg_align(n: usize) -> usize {
    (n + 7) & !7
}

/// Walks control data as the kernel does (`for_each_cmsghdr` with `CMSG_OK`, the check
/// every protocol's parser makes first): a header is read while one fits in the rest of
/// the buffer; `f` gets each message's offset, `cmsg_len`, level and type. A `cmsg_len`
/// below a header's size or beyond the buffer (also one near `SIZE_MAX`, which never
/// wraps here) ends the walk with `Err(EINVAL)`, as the kernel answers. `Ok`: where the kernel
/// would look for the next header, the aligned end of the last message.
pub fn walk_cmsgs(ctl: &[u8], mut f: impl FnMut(usize, usize, i32, i32)) -> Result<usize, i32> {
    const EINVAL: i32 = 22;
    let word = |at: usize, n: usize| {
        let mut w = [0u8; 8];
        w[..n].copy_from_slice(&ctl[at..at + n]);
        u64::from_ne_bytes(w)
    };
    let n = ctl.len();
    let mut pos = 0usize;
    let mut end = 0usize;
    while pos <= n && n - pos >= CMSGHDR {
        let len = word(pos, 8) as usize;
        if len < CMSGHDR || len > n - pos {
            return Err(EINVAL);
        }
        f(
            pos,
            len,
            word(pos + 8, 4) as u32 as i32,
            word(pos + 12, 4) as u32 as i32,
        );
        // len <= n - pos: no overflow; the next header starts at the aligned end,
        // which may lie up to 7 bytes past n (the loop then ends).
        pos += cmsg_align(len);
        end = pos;
    }
    Ok(end)
}

// ---------------------------------------------------------------------------------
// The PKTINFO rules of the kernel's send paths, shared by the preload's engine
// (`shim/src/sys/linux/uapi.rs` re-exports them, with their kernel-observed tests)
// and the seccomp supervisor: both read a program's control messages the same way.
// ---------------------------------------------------------------------------------

const CTL_IPPROTO_IP: i32 = 0;
const CTL_IPPROTO_IPV6: i32 = 41;
const IP_PKTINFO: i32 = 8;
const IPV6_PKTINFO: i32 = 50;
/// RFC 2292's number for the same message (`ip6_datagram_send_ctl` reads both alike).
const IPV6_2292PKTINFO: i32 = 2;
const CTL_ENOBUFS: i32 = 105;
/// `sizeof(struct in_pktinfo)` / `sizeof(struct in6_pktinfo)`.
pub const IN_PKTINFO: usize = 12;
pub const IN6_PKTINFO: usize = 20;

/// How a datagram must be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pktinfo {
    pub ifindex: u32,
    /// Use `IPV6_PKTINFO` (native IPv6 destination on an `AF_INET6` socket) rather
    /// than `IP_PKTINFO` (IPv4, also accepted for IPv4-mapped destinations on an
    /// `AF_INET6` socket).
    pub v6: bool,
}

/// `CMSG_LEN(payload)`.
pub const fn cmsg_len(payload: usize) -> usize {
    CMSGHDR + payload
}

/// `CMSG_SPACE(payload)`.
pub const fn cmsg_space(payload: usize) -> usize {
    CMSGHDR + cmsg_align(payload)
}

/// What a walk of the program's control messages found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scan {
    /// Where the kernel would look for the next header: the aligned end of the last
    /// message (bytes after it, fewer than a header, are ignored by the kernel).
    pub end: usize,
    /// The program named the interface itself: the kernel will send the datagram
    /// through the index of a PKTINFO of the program's (see [`scan_control`]).
    pub chosen: bool,
    /// Offset of the data of a PKTINFO of the needed family with interface 0, the
    /// one the kernel takes its interface from.
    pub patch: Option<usize>,
    /// The interface index the kernel takes from the program's PKTINFO (0: none;
    /// `chosen` says whether there is one).
    pub index: u32,
    /// The source address the program's control data gives the datagram, by the
    /// kernel's rule for the path: the last `IPV6_PKTINFO` (or `IPV6_2292PKTINFO`)
    /// with an address on the IPv6 path; on the IPv4 path the last `IP_PKTINFO`'s
    /// `ipi_spec_dst` (each one sets it, also to 0) or an `IPV6_PKTINFO`'s IPv4-mapped
    /// address (read on an `AF_INET6` socket). `None`: the route chooses it. With a
    /// source, the kernel's IPv6 route lookup takes an interface index (a PKTINFO's,
    /// `IPV6_UNICAST_IF`) only as a preference: only a device binding is strict.
    pub source: Option<core::net::IpAddr>,
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    i32_at(b, at) as u32
}

/// Walks control messages as the kernel does (`for_each_cmsghdr` with `CMSG_OK`, the
/// check every INET protocol's parser makes first): a header is read while one fits
/// in the rest of the buffer; a `cmsg_len` below a header's size or beyond the
/// buffer is `EINVAL` (also `cmsg_len` near `SIZE_MAX`, which never wraps here).
/// `v6`: the datagram takes the IPv6 path (a native IPv6 destination), else the
/// IPv4 path (an IPv4 destination, or an IPv4-mapped one on an `AF_INET6` socket).
///
/// Which PKTINFO chooses the interface is the kernel's rule for that path, not the
/// program's wish:
/// * IPv6 path (`ip6_datagram_send_ctl`): only `SOL_IPV6` messages are read; any
///   `IPV6_PKTINFO` with a non-zero index sets the interface (two different ones are
///   `EINVAL`). An `IP_PKTINFO` there is ignored: it chooses nothing.
/// * IPv4 path (`ip_cmsg_send`): an `IP_PKTINFO` with a non-zero index sets the
///   interface (the last such one wins; one of index 0 leaves it as it was: seen on
///   6.18, an index then a 0 sent by the index); an `IPV6_PKTINFO` is read only on
///   an `AF_INET6` socket, which this walk does not know, so it is taken to choose
///   nothing and ours, put last, wins (a fail-safe override of a dual-stack
///   program's own choice).
///
/// A PKTINFO counts only in the exact length its parser accepts (`IP_PKTINFO`:
/// `CMSG_LEN(12)`; `IPV6_PKTINFO`: at least `CMSG_LEN(20)`); the kernel refuses other
/// lengths with `EINVAL` itself.
pub fn scan_control(ctl: &[u8], v6: bool) -> Result<Scan, i32> {
    use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let mut scan = Scan {
        end: 0,
        chosen: false,
        patch: None,
        index: 0,
        source: None,
    };
    let in6 = |at: usize| {
        let mut a = [0u8; 16];
        a.copy_from_slice(&ctl[at..at + 16]);
        Ipv6Addr::from(a)
    };
    scan.end = walk_cmsgs(ctl, |pos, len, level, ty| {
        let data = pos + CMSGHDR;
        match (level, ty) {
            (CTL_IPPROTO_IP, IP_PKTINFO) if !v6 && len == cmsg_len(IN_PKTINFO) => {
                // in_pktinfo { int ipi_ifindex; in_addr spec_dst; in_addr addr }
                let index = u32_at(ctl, data);
                if index != 0 {
                    scan.chosen = true;
                    scan.index = index;
                } else if scan.patch.is_none() {
                    scan.patch = Some(data);
                }
                let spec_dst = [ctl[data + 4], ctl[data + 5], ctl[data + 6], ctl[data + 7]];
                scan.source =
                    Some(IpAddr::V4(Ipv4Addr::from(spec_dst))).filter(|a| !a.is_unspecified());
            }
            (CTL_IPPROTO_IPV6, IPV6_PKTINFO) if !v6 && len >= cmsg_len(IN6_PKTINFO) => {
                // Read on an AF_INET6 socket only; the index is overridden by ours
                // (put last), the IPv4-mapped address kept as the source.
                if let Some(a) = in6(data).to_ipv4_mapped() {
                    scan.source = Some(IpAddr::V4(a)).filter(|a| !a.is_unspecified());
                }
            }
            (CTL_IPPROTO_IPV6, IPV6_PKTINFO | IPV6_2292PKTINFO)
                if v6 && len >= cmsg_len(IN6_PKTINFO) =>
            {
                // in6_pktinfo { in6_addr ipi6_addr; unsigned ipi6_ifindex }
                let index = u32_at(ctl, data + 16);
                if index != 0 {
                    scan.chosen = true;
                    scan.index = index;
                } else if scan.patch.is_none() {
                    scan.patch = Some(data);
                }
                let a = in6(data);
                if !a.is_unspecified() {
                    scan.source = Some(IpAddr::V6(a));
                }
            }
            _ => {}
        }
    })?;
    if scan.chosen {
        scan.patch = None;
    }
    Ok(scan)
}

/// Whether control data may give a datagram its own source address (a PKTINFO of
/// either family with an address, on either path), or cannot be read as the kernel
/// would: such a datagram must be decided by the engine ([`Scan::source`]), never sent
/// on the stub's fast path.
pub fn may_carry_source(ctl: &[u8]) -> bool {
    !matches!(
        (scan_control(ctl, false), scan_control(ctl, true)),
        (Ok(Scan { source: None, .. }), Ok(Scan { source: None, .. }))
    )
}

/// The control data to send: the program's messages (`app`, at most [`CMSG_ROOM`]
/// minus our message) with our PKTINFO, written into `out`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Built {
    /// `out[..len]` is the control data to send.
    Control(usize),
    /// The program named the interface itself: send its control data unchanged
    /// (`out[..len]`, a copy of `app`).
    Chosen(usize),
}

/// Builds the control data of a steered datagram from the program's (`app`, already
/// copied): an `IP(V6)_PKTINFO` with interface 0 gets `p.ifindex`; otherwise ours is
/// put where the kernel's walk looks next (the program's trailing bytes, which the
/// kernel ignores, are dropped). `Err(EINVAL)`: malformed, as the kernel says;
/// `Err(ENOBUFS)`: no room (callers check the engine's `control_len` first, so only when
/// `out` is smaller than `app` plus our message).
pub fn build_control(app: &[u8], p: Pktinfo, out: &mut [u8]) -> Result<Built, i32> {
    let scan = scan_control(app, p.v6)?;
    let copy = out.get_mut(..app.len()).ok_or(CTL_ENOBUFS)?;
    copy.copy_from_slice(app);
    if scan.chosen {
        return Ok(Built::Chosen(app.len()));
    }
    if let Some(data) = scan.patch {
        let at = if p.v6 { data + 16 } else { data };
        out[at..at + 4].copy_from_slice(&p.ifindex.to_ne_bytes());
        return Ok(Built::Control(app.len()));
    }
    let (level, ty, payload) = if p.v6 {
        (CTL_IPPROTO_IPV6, IPV6_PKTINFO, IN6_PKTINFO)
    } else {
        (CTL_IPPROTO_IP, IP_PKTINFO, IN_PKTINFO)
    };
    let start = scan.end;
    let space = cmsg_space(payload);
    if let Some(pad) = out.get_mut(app.len()..start) {
        pad.fill(0);
    }
    let ours = out.get_mut(start..start + space).ok_or(CTL_ENOBUFS)?;
    ours.fill(0);
    ours[..8].copy_from_slice(&(cmsg_len(payload) as u64).to_ne_bytes());
    ours[8..12].copy_from_slice(&level.to_ne_bytes());
    ours[12..16].copy_from_slice(&ty.to_ne_bytes());
    let idx = if p.v6 { CMSGHDR + 16 } else { CMSGHDR };
    ours[idx..idx + 4].copy_from_slice(&p.ifindex.to_ne_bytes());
    Ok(Built::Control(start + space))
}

/// The fds an `SCM_RIGHTS` message in well-formed control data carries.
pub fn passed_fds(ctl: &[u8], mut f: impl FnMut(i32)) {
    const SOL_SOCKET: i32 = 1;
    const SCM_RIGHTS: i32 = 1;
    let _ = walk_cmsgs(ctl, |pos, len, level, ty| {
        if level == SOL_SOCKET && ty == SCM_RIGHTS {
            for fd in ctl[pos + CMSGHDR..pos + len].chunks_exact(4) {
                f(i32::from_ne_bytes([fd[0], fd[1], fd[2], fd[3]]));
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmsg(level: i32, ty: i32, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((CMSGHDR + data.len()) as u64).to_ne_bytes());
        v.extend_from_slice(&level.to_ne_bytes());
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(data);
        v.resize(cmsg_align(v.len()), 0);
        v
    }

    /// The stub looked at no more than 64 control messages: an fd passed in a later
    /// one was not marked shared.
    #[test]
    fn scm_rights_after_64_other_control_messages_was_not_seen() {
        let mut ctl = Vec::new();
        for _ in 0..70 {
            ctl.extend(cmsg(0, 8, &[0; 12]));
        }
        ctl.extend(cmsg(1, 1, &[7, 0, 0, 0, 9, 0, 0, 0]));
        let mut fds = Vec::new();
        passed_fds(&ctl, |fd| fds.push(fd));
        assert_eq!(fds, [7, 9]);
        // Malformed data: the walk stops, as the kernel's refuses it.
        let mut bad = cmsg(1, 1, &[7, 0, 0, 0]);
        bad[..8].copy_from_slice(&u64::MAX.to_ne_bytes());
        assert_eq!(walk_cmsgs(&bad, |_, _, _, _| {}), Err(22));
        assert_eq!(walk_cmsgs(&[0; 15], |_, _, _, _| {}), Ok(0));
    }

    fn pk6(ty: i32, addr: [u8; 16], index: u32) -> Vec<u8> {
        let mut d = addr.to_vec();
        d.extend_from_slice(&index.to_ne_bytes());
        cmsg(CTL_IPPROTO_IPV6, ty, &d)
    }

    fn pk4(index: u32, spec_dst: [u8; 4]) -> Vec<u8> {
        let mut d = index.to_ne_bytes().to_vec();
        d.extend_from_slice(&spec_dst);
        d.extend_from_slice(&[0; 4]);
        cmsg(CTL_IPPROTO_IP, IP_PKTINFO, &d)
    }

    /// Review: an `IPV6_PKTINFO` naming a source (and an interface, ours or the
    /// program's) left by eth0 — with a source, the kernel takes the index only as a
    /// preference. The walk must report the source, by the kernel's rule (the last
    /// one with an address), for both numbers of the message.
    #[test]
    fn an_ipv6_pktinfo_naming_a_source_reports_it() {
        let src = DOC6;
        for ty in [IPV6_PKTINFO, IPV6_2292PKTINFO] {
            let s = scan_control(&pk6(ty, src, 0), true).unwrap();
            assert_eq!(s.source, Some(core::net::IpAddr::from(src)), "type {ty}");
            assert_eq!((s.chosen, s.patch), (false, Some(CMSGHDR)), "type {ty}");
            let s = scan_control(&pk6(ty, src, 4), true).unwrap();
            assert_eq!((s.chosen, s.index), (true, 4), "type {ty}");
            assert_eq!(s.source, Some(core::net::IpAddr::from(src)));
            // A later one without an address leaves the source as it was.
            let mut two = pk6(ty, src, 0);
            two.extend(pk6(IPV6_PKTINFO, [0; 16], 0));
            assert_eq!(scan_control(&two, true).unwrap().source, Some(src.into()));
            assert!(may_carry_source(&two));
        }
        // No address: no source; the IPv4 path does not read an IPv6 address that is
        // not IPv4-mapped.
        assert_eq!(
            scan_control(&pk6(IPV6_PKTINFO, [0; 16], 4), true)
                .unwrap()
                .source,
            None
        );
        assert_eq!(
            scan_control(&pk6(IPV6_PKTINFO, src, 0), false)
                .unwrap()
                .source,
            None
        );
        assert!(!may_carry_source(&pk6(IPV6_PKTINFO, [0; 16], 4)));
    }

    /// `IPV6_2292PKTINFO` (type 2) was not recognised: a program's index there and
    /// ours made two different interfaces, which the kernel refuses (`EINVAL`).
    #[test]
    fn an_ipv6_2292pktinfo_is_read_as_an_ipv6_pktinfo() {
        let s = scan_control(&pk6(IPV6_2292PKTINFO, [0; 16], 3), true).unwrap();
        assert_eq!((s.chosen, s.index, s.patch), (true, 3, None));
        let s = scan_control(&pk6(IPV6_2292PKTINFO, [0; 16], 0), true).unwrap();
        assert_eq!((s.chosen, s.patch), (false, Some(CMSGHDR)));
        // The IPv4 path does not read it.
        let s = scan_control(&pk6(IPV6_2292PKTINFO, [0; 16], 3), false).unwrap();
        assert!(!s.chosen && s.patch.is_none());
    }

    /// The IPv4 path: every `IP_PKTINFO` sets the source to its `ipi_spec_dst` (also
    /// to 0); an `IPV6_PKTINFO`'s IPv4-mapped address does too (an `AF_INET6` socket).
    #[test]
    fn an_ip_pktinfo_spec_dst_is_the_datagrams_source_until_the_next_one() {
        let a = core::net::IpAddr::from([198, 51, 100, 7]);
        let s = scan_control(&pk4(0, [198, 51, 100, 7]), false).unwrap();
        assert_eq!((s.source, s.patch), (Some(a), Some(CMSGHDR)));
        let mut reset = pk4(0, [198, 51, 100, 7]);
        reset.extend(pk4(0, [0; 4]));
        assert_eq!(scan_control(&reset, false).unwrap().source, None);
        let mut mapped = [0u8; 16];
        mapped[10] = 0xff;
        mapped[11] = 0xff;
        mapped[12..].copy_from_slice(&[198, 51, 100, 7]);
        assert_eq!(
            scan_control(&pk6(IPV6_PKTINFO, mapped, 0), false)
                .unwrap()
                .source,
            Some(a)
        );
        assert!(may_carry_source(&pk4(2, [198, 51, 100, 7])));
        assert!(!may_carry_source(&pk4(2, [0; 4])));
        // The IPv6 path does not read an IP_PKTINFO.
        assert_eq!(
            scan_control(&pk4(0, [198, 51, 100, 7]), true)
                .unwrap()
                .source,
            None
        );
        // Malformed control data goes to the engine.
        let mut bad = pk4(0, [0; 4]);
        bad[..8].copy_from_slice(&4u64.to_ne_bytes());
        assert!(may_carry_source(&bad));
        assert!(!may_carry_source(&[]));
    }

    fn sin(ip: [u8; 4], port: u16) -> Vec<u8> {
        let mut v = vec![0u8; 16];
        v[..2].copy_from_slice(&AF_INET.to_ne_bytes());
        v[2..4].copy_from_slice(&port.to_be_bytes());
        v[4..8].copy_from_slice(&ip);
        v
    }

    fn sin6(ip: [u8; 16], port: u16, scope: u32, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; 28];
        v[..2].copy_from_slice(&AF_INET6.to_ne_bytes());
        v[2..4].copy_from_slice(&port.to_be_bytes());
        v[8..24].copy_from_slice(&ip);
        v[24..28].copy_from_slice(&scope.to_ne_bytes());
        v.truncate(len);
        v
    }

    const DOC6: [u8; 16] = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    #[test]
    fn keys_are_exact_for_ipv4_and_mapped_ipv4() {
        let k = key_of(&sin([203, 0, 113, 10], 9)).unwrap();
        assert_eq!(k.word, (0xcb00_710a_u64 << 16) | 9);
        assert!(!k.is_v6());
        let mut mapped = [0u8; 16];
        mapped[10] = 0xff;
        mapped[11] = 0xff;
        mapped[12..].copy_from_slice(&[203, 0, 113, 10]);
        assert_eq!(key_of(&sin6(mapped, 9, 0, 28)), Some(k));
        assert_ne!(key_of(&sin([203, 0, 113, 10], 10)), Some(k));
        assert_ne!(key_of(&sin([203, 0, 113, 11], 9)), Some(k));
    }

    #[test]
    fn ipv6_keys_carry_their_family_port_and_whole_address() {
        let k = key_of(&sin6(DOC6, 9, 0, 28)).unwrap();
        assert!(k.is_v6());
        assert_eq!(k.word & 0xffff, 9);
        assert_eq!(k.ip6, [0x2001_0db8_00ff_0000, 0x10]);
        // The RFC 2133 layout (24 bytes) keys the same.
        assert_eq!(key_of(&sin6(DOC6, 9, 0, 24)), Some(k));
        let mut other = DOC6;
        other[15] = 0x11;
        assert_ne!(key_of(&sin6(other, 9, 0, 28)), Some(k));
        // An IPv4 key never has the IPv6 bit, whatever the address.
        for ip in [[0, 0, 0, 0], [255, 255, 255, 255], [1, 0, 0, 1]] {
            assert!(!key_of(&sin(ip, 65535)).unwrap().is_v6());
        }
    }

    #[test]
    fn scoped_short_unspec_and_foreign_addresses_have_no_key() {
        assert_eq!(key_of(&sin6(DOC6, 9, 3, 28)), None);
        assert_eq!(key_of(&sin6(DOC6, 9, 0, 23)), None);
        assert_eq!(key_of(&sin([1, 2, 3, 4], 9)[..15]), None);
        assert_eq!(key_of(&[]), None);
        for family in [0u16, 1] {
            let mut other = sin([1, 2, 3, 4], 9);
            other[..2].copy_from_slice(&family.to_ne_bytes());
            assert_eq!(key_of(&other), None);
        }
    }

    #[test]
    fn memo_keeps_generation_apart_from_key() {
        let k = key_v6(DOC6, 65535);
        assert_ne!(memo(1, &k), memo(2, &k));
        assert_eq!(memo_key_word(memo(1, &k)), k.word);
        assert_eq!(memo(1 << GEN_BITS, &k), memo(0, &k), "generation bits wrap");
        assert!(generation_wraps(1 << GEN_BITS));
        assert!(!generation_wraps(1));
    }

    /// A table with one chunk of each kind mapped (leaked: tests only), the memo of
    /// `fd` stored for `key`.
    fn shared_with(fd: i32, entry: u32, generation: u64, key: &Key) -> Shared {
        let s = Shared::new();
        let f: &'static mut [FdSlot] = Vec::from_iter((0..CHUNK).map(|_| FdSlot::new())).leak();
        let a: &'static mut [[AtomicU64; 2]] =
            Vec::from_iter((0..CHUNK).map(|_| [AtomicU64::new(0), AtomicU64::new(0)])).leak();
        f[fd as usize].entry.store(entry, Ordering::Relaxed);
        memo_store(
            &f[fd as usize].memo,
            Some(&a[fd as usize]),
            memo(generation, key),
            key,
        );
        s.fds[0].store(f.as_mut_ptr(), Ordering::Release);
        s.ip6s[0].store(a.as_mut_ptr(), Ordering::Release);
        s.generation.store(generation, Ordering::Release);
        s
    }

    const UDP4: u32 = VALID | INET | UDP | UC4;
    const UDP6: u32 = VALID | INET | V6 | UDP | UC6;

    #[test]
    fn fast_only_on_a_promoted_socket_to_the_memoised_destination_while_fresh() {
        let k = key_v4(0xcb00_710a, 9);
        let s = shared_with(5, UDP4, 3, &k);
        s.fresh_until_ms.store(1000, Ordering::Release);
        assert!(is_fast(&s, 5, &k, 999));
        assert!(is_fast(&s, 5, &k, 1000));
        assert!(!is_fast(&s, 5, &k, 1001), "stale snapshot");
        assert!(!is_fast(&s, 5, &key_v4(0xcb00_710a, 10), 999), "other port");
        assert!(!is_fast(&s, 6, &k, 999), "other fd");
        assert!(!is_fast(&s, -1, &k, 999));
        assert!(!is_fast(&s, (CHUNK * CHUNKS) as i32, &k, 999));
        assert!(!is_fast(&s, CHUNK as i32, &k, 999), "unmapped chunk");
        s.generation.store(4, Ordering::Release);
        assert!(!is_fast(&s, 5, &k, 999), "new snapshot");
    }

    #[test]
    fn ipv6_hash_collision_let_another_destination_take_the_fast_path() {
        // 2001:db8::10 and 2001:db9::1:0:10 fold to the same 32-bit hash: the memo
        // word alone cannot tell them apart, the whole address does.
        let a = key_v6(DOC6, 9);
        let mut forged = [0u8; 16];
        forged.copy_from_slice(
            &(((a.ip6[0] ^ 0x0000_0001_0000_0000) as u128) << 64
                | (a.ip6[1] ^ 0x0000_0001_0000_0000) as u128)
                .to_be_bytes(),
        );
        let b = key_v6(forged, 9);
        assert_eq!(a.word, b.word, "the test needs a real collision");
        assert_ne!(a.ip6, b.ip6);
        let s = shared_with(5, UDP6, 0, &a);
        s.fresh_until_ms.store(u64::MAX, Ordering::Release);
        assert!(is_fast(&s, 5, &a, 0));
        assert!(!is_fast(&s, 5, &b, 0));
        // Without an address slot an IPv6 memo is never recorded.
        let m = AtomicU64::new(7);
        memo_store(&m, None, memo(0, &a), &a);
        assert_eq!(m.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn not_fast_when_the_socket_left_the_promoted_state() {
        let k = key_v4(0xcb00_710a, 9);
        for (extra, why) in [
            (SHARED, "held by another fd or process"),
            (SHIM_BOUND, "bound by the shim"),
            (APP_BOUND, "bound by the program"),
            (APP_UC4, "program's IPv4 unicast interface"),
            (APP_UC6, "program's IPv6 unicast interface"),
            (TCP, "tcp"),
        ] {
            let s = shared_with(5, UDP4 | extra, 0, &k);
            s.fresh_until_ms.store(u64::MAX, Ordering::Release);
            assert!(!is_fast(&s, 5, &k, 0), "{why}");
        }
        // Memoised but never promoted (the first datagram only records it).
        let s = shared_with(5, VALID | INET | UDP, 0, &k);
        s.fresh_until_ms.store(u64::MAX, Ordering::Release);
        assert!(!is_fast(&s, 5, &k, 0));
        // Promoted for IPv4 only: an IPv6 destination is not fast.
        let k6 = key_v6(DOC6, 9);
        let s = shared_with(5, UDP4 | V6, 0, &k6);
        s.fresh_until_ms.store(u64::MAX, Ordering::Release);
        assert!(!is_fast(&s, 5, &k6, 0));
        s.fds[0].store(core::ptr::null_mut(), Ordering::Release);
        assert!(!is_fast(&s, 5, &k6, 0));
    }

    /// A socket the engine promoted, then shared by `dup` or `fork`: the other holder
    /// may change what the engine set, so the memo no longer lets datagrams through.
    #[test]
    fn promoted_socket_shared_by_dup_or_fork_kept_its_fast_path() {
        let k = key_v4(0xcb00_710a, 9);
        let s = shared_with(5, UDP4, 0, &k);
        s.fresh_until_ms.store(u64::MAX, Ordering::Release);
        assert!(is_fast(&s, 5, &k, 0));
        mark_shared(&s, 5);
        assert!(!is_fast(&s, 5, &k, 0), "mark_shared");
        let s = shared_with(5, UDP4, 0, &k);
        s.fresh_until_ms.store(u64::MAX, Ordering::Release);
        mark_all_shared(&s);
        assert!(!is_fast(&s, 5, &k, 0), "mark_all_shared (fork)");
        assert_ne!(
            slot(&s.fds, 5).unwrap().entry.load(Ordering::Acquire) & SHARED,
            0
        );
        // A mixed socket keeps its unicast interface (never cleared), so its memoised
        // destination stays fast.
        let s = shared_with(5, UDP4 | MIXED, 0, &k);
        s.fresh_until_ms.store(u64::MAX, Ordering::Release);
        assert!(is_fast(&s, 5, &k, 0));
    }

    #[test]
    fn socket_entries_match_family_and_transport() {
        assert_eq!(entry_for_socket(2, 2, 0), VALID | INET | UDP);
        assert_eq!(
            entry_for_socket(10, 1 | 0o4000 | 0o2000000, 6),
            VALID | INET | V6 | TCP
        );
        assert_eq!(
            entry_for_socket(10, 1, 262),
            VALID | INET | V6 | TCP,
            "MPTCP"
        );
        assert_eq!(entry_for_socket(2, 2, 136), VALID | INET | UDP, "UDP-Lite");
        assert_eq!(entry_for_socket(2, 3, 255), VALID | INET, "raw");
        // Not INET: the transport bits are kept, the family says the shim has no business.
        assert_eq!(entry_for_socket(1, 1, 0), VALID | TCP, "unix");
    }

    #[test]
    fn created_slots_are_shared_and_forgotten() {
        let s = Shared::new();
        let map = |bytes: usize| {
            let v: &'static mut [FdSlot] =
                Vec::from_iter((0..bytes / size_of::<FdSlot>()).map(|_| FdSlot::new())).leak();
            Some(v.as_mut_ptr())
        };
        // SAFETY: map returns leaked zeroed slots; nothing is ever unmapped here.
        let a = unsafe { slot_create(&s.fds, 4100, map, |_, _| unreachable!()) }.unwrap();
        set_entry(a, entry_for_socket(2, 2, 0));
        a.memo.store(7, Ordering::Release);
        set_entry(a, entry_for_socket(2, 2, 0));
        assert_eq!(
            a.memo.load(Ordering::Acquire),
            0,
            "a new socket starts without a memo"
        );
        // SAFETY: as above; the chunk exists, so map is not called.
        let b = unsafe { slot_create(&s.fds, 4100, |_| unreachable!(), |_, _| unreachable!()) };
        assert!(core::ptr::eq(a, b.unwrap()));
        forget(&s, 4100);
        assert_eq!(a.entry.load(Ordering::Acquire), 0);
        // SAFETY: as above.
        assert!(unsafe { slot_create(&s.fds, -1, map, |_, _| ()) }.is_none());
    }

    #[test]
    fn a_fresh_table_is_never_fast() {
        let s = Shared::new();
        assert_eq!(s.layout, LAYOUT);
        assert!(!is_fast(&s, 0, &key_v4(0, 0), 0));
    }
}
