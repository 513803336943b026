//! The events file (`MIFSHIM_EVENTS`, `mifrun --events`): one JSON object per line for
//! each decision the shim takes and each name it resolves, for CI harnesses that must
//! prove afterwards where a program's traffic went. The schema (version 1) is in the
//! README ("Events file"); `mifrun --summary` and `--fail-on` read it.
//!
//! Written from the hook path, so: a line is formatted into a fixed stack buffer (no
//! allocation, no lock), kept under `PIPE_BUF` and written with **one** raw `write(2)`
//! system call (`sys::rawio`: not a cancellation point) to a file opened with
//! `O_APPEND`, so lines of many processes and threads appending at once are never
//! interleaved or torn. The file is opened like the log: `O_NONBLOCK` (a FIFO without a
//! reader is refused at once; a line a full pipe cannot take is dropped, never waited
//! for), `O_NOCTTY`, `O_CLOEXEC` (a child program opens it again by name).
//!
//! With events off (the default) every call below costs one relaxed atomic load.
//!
//! The fd is checked before each write (`fstat`: same device and inode as opened), so a
//! program that closes it — `closefrom`, a daemon closing everything — never gets a
//! line written into whatever it opens under that number next; the file is then
//! reopened by name.

use crate::fdtable::{Entry, LOGGED_SEND};
use crate::sys::rawio;
use config_schema::{Decision, DirectReason, Proto, Rule};
use std::ffi::{CString, OsStr};
use std::fmt::{self, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering::Relaxed};

/// The schema version every line carries as `"v"`.
pub(crate) const VERSION: u32 = 1;

/// No events file (the default, or it could not be opened).
const OFF: i32 = -1;
static FD: AtomicI32 = AtomicI32::new(OFF);
/// Device and inode of the file [`FD`] was opened on.
static DEV: AtomicU64 = AtomicU64::new(0);
static INO: AtomicU64 = AtomicU64::new(0);
static PATH: OnceLock<CString> = OnceLock::new();
static PROG: OnceLock<String> = OnceLock::new();
/// Lines not written (a full pipe, a file that could not be reopened).
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// A line is at most this long (with its newline): under `PIPE_BUF` (4096), so one
/// `write` to a pipe is atomic, and small enough for any stack a hook runs on.
const LINE: usize = 2048;
/// Longest text of one string field (a rule label, a program name), before escaping.
const FIELD: usize = 200;

/// Opens `path` (any bytes) for the events; `prog` names the program in every line.
/// A file that cannot be opened leaves events off after one warning.
pub(crate) fn configure(path: Option<&OsStr>, prog: &str) {
    use std::os::unix::ffi::OsStrExt;
    let _ = PROG.set(prog.chars().take(64).collect());
    let Some(path) = path.filter(|p| !p.is_empty()) else {
        return;
    };
    let Ok(c) = CString::new(path.as_bytes()) else {
        return;
    };
    match open(&c) {
        Ok(()) => {}
        Err(e) => crate::log_at!(
            Warn,
            "cannot open the events file {} ({}); no events are written",
            path.to_string_lossy(),
            if e == crate::sys::ENXIO {
                "a FIFO without a reader".to_owned()
            } else {
                std::io::Error::from_raw_os_error(e).to_string()
            }
        ),
    }
    let _ = PATH.set(c);
}

fn open(path: &CString) -> Result<(), i32> {
    let fd = rawio::open_append(path)?;
    let (dev, ino) = rawio::file_id(fd).unwrap_or((0, 0));
    DEV.store(dev, Relaxed);
    INO.store(ino, Relaxed);
    FD.store(fd, Relaxed);
    Ok(())
}

/// Whether events are written (one relaxed load).
#[inline]
pub(crate) fn on() -> bool {
    FD.load(Relaxed) != OFF
}

/// Writes one finished line: to our file if `FD` still is it, else after reopening it
/// by name (the program closed it). Never blocks, never allocates.
fn emit(line: &[u8]) {
    let mut fd = FD.load(Relaxed);
    if fd == OFF {
        return;
    }
    let ours = |fd: i32| rawio::file_id(fd) == Some((DEV.load(Relaxed), INO.load(Relaxed)));
    if !ours(fd) {
        // Closed (and maybe reused) by the program: reopen by name. A second thread
        // doing the same at once opens a second fd; the first is leaked, harmlessly.
        let reopened = PATH.get().and_then(|p| rawio::open_append(p).ok());
        match reopened {
            Some(new) => {
                let id = rawio::file_id(new).unwrap_or((0, 0));
                DEV.store(id.0, Relaxed);
                INO.store(id.1, Relaxed);
                FD.store(new, Relaxed);
                fd = new;
            }
            None => {
                FD.store(OFF, Relaxed);
                DROPPED.fetch_add(1, Relaxed);
                return;
            }
        }
    }
    if !rawio::write_once(fd, line) {
        DROPPED.fetch_add(1, Relaxed);
    }
}

// ---------------------------------------------------------------------------------
// The line builder
// ---------------------------------------------------------------------------------

/// A decision line's buffer: every field of one is bounded (see [`FIELD`]), so this
/// holds any of them but one with absurdly long, heavily escaped labels, which is cut.
const DECISION_LINE: usize = 768;

/// One JSON object being formatted into a stack buffer of `N` bytes (at most
/// [`LINE`]). Plain bytes are copied, numbers and addresses written digit by digit:
/// `core::fmt` is used only for IPv6 addresses (a decision line costs a few hundred
/// instructions, not the ~19 000 the formatting machinery took). What does not fit
/// is cut at a field boundary (`"truncated":true`).
struct Rec<const N: usize> {
    buf: [u8; N],
    len: usize,
    full: bool,
}

impl<const N: usize> fmt::Write for Rec<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.raw(s.as_bytes());
        if self.full { Err(fmt::Error) } else { Ok(()) }
    }
}

impl<const N: usize> Rec<N> {
    /// `{"v":1,"time":"…","pid":N,"program":"…","event":"…"`.
    fn new(event: &str) -> Rec<N> {
        let mut r = Rec {
            buf: [0; N],
            len: 0,
            full: false,
        };
        let (secs, us) = rawio::realtime_us();
        let (y, mo, d, h, mi, s) = config_schema::events::civil_utc(secs);
        r.raw(b"{\"v\":");
        r.uint(VERSION as u64);
        r.raw(b",\"time\":\"");
        r.digits(y.max(0) as u64, 4);
        r.raw(b"-");
        r.digits(mo as u64, 2);
        r.raw(b"-");
        r.digits(d as u64, 2);
        r.raw(b"T");
        r.digits(h as u64, 2);
        r.raw(b":");
        r.digits(mi as u64, 2);
        r.raw(b":");
        r.digits(s as u64, 2);
        r.raw(b".");
        r.digits(us as u64, 6);
        r.raw(b"Z\"");
        r.num("pid", rawio::raw_getpid() as u64);
        r.str("program", PROG.get().map_or("", String::as_str));
        r.str("event", event);
        r
    }

    /// Copies `b` (keeping room for `,"truncated":true}\n`). Byte by byte: the
    /// pieces are a few bytes long, where a `memcpy` call costs more than the copy.
    #[inline(always)]
    fn raw(&mut self, b: &[u8]) {
        if self.full || self.len + b.len() > N - 24 {
            self.full = true;
            return;
        }
        let dst = &mut self.buf[self.len..self.len + b.len()];
        for (d, s) in dst.iter_mut().zip(b) {
            *d = *s;
        }
        self.len += b.len();
    }

    /// `n` in decimal, at least `width` digits (zero-padded).
    fn digits(&mut self, mut n: u64, width: usize) {
        let mut tmp = [0u8; 20];
        let mut i = tmp.len();
        loop {
            i -= 1;
            tmp[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 && tmp.len() - i >= width {
                break;
            }
        }
        self.raw(&tmp[i..]);
    }

    fn uint(&mut self, n: u64) {
        self.digits(n, 1);
    }

    fn int(&mut self, n: i64) {
        if n < 0 {
            self.raw(b"-");
        }
        self.uint(n.unsigned_abs());
    }

    /// The inside of a JSON string for `s`, at most `left` bytes of it; returns what
    /// is left of `left`.
    fn escaped(&mut self, s: &str, mut left: usize) -> usize {
        let b = s.as_bytes();
        let plain = |c: u8| c >= 0x20 && c != b'"' && c != b'\\' && c != 0x7f;
        if b.len() <= left && b.iter().all(|c| plain(*c)) {
            self.raw(b);
            return left - b.len();
        }
        for c in s.chars() {
            if left < c.len_utf8() {
                break;
            }
            left -= c.len_utf8();
            match c {
                '"' => self.raw(b"\\\""),
                '\\' => self.raw(b"\\\\"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    let v = c as u32 as usize;
                    self.raw(&[b'\\', b'u', b'0', b'0', HEX[v >> 4], HEX[v & 15]]);
                }
                c => {
                    let mut e = [0u8; 4];
                    self.raw(c.encode_utf8(&mut e).as_bytes());
                }
            }
        }
        left
    }

    fn key(&mut self, k: &str) {
        self.raw(b",\"");
        self.raw(k.as_bytes());
        self.raw(b"\":");
    }

    fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        self.raw(b"\"");
        self.escaped(v, FIELD);
        self.raw(b"\"");
    }

    fn opt_str(&mut self, k: &str, v: Option<&str>) {
        match v {
            Some(v) => self.str(k, v),
            None => self.null(k),
        }
    }

    fn num(&mut self, k: &str, v: u64) {
        self.key(k);
        self.uint(v);
    }

    fn bool(&mut self, k: &str, v: bool) {
        self.key(k);
        self.raw(if v { b"true" } else { b"false" });
    }

    fn null(&mut self, k: &str) {
        self.key(k);
        self.raw(b"null");
    }

    /// An address, unquoted (IPv4 by hand; IPv6 through `core::fmt`, which writes
    /// the RFC 5952 form).
    fn ip(&mut self, a: IpAddr) {
        match a {
            IpAddr::V4(v4) => {
                for (i, o) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        self.raw(b".");
                    }
                    self.uint(o as u64);
                }
            }
            IpAddr::V6(v6) => {
                let _ = write!(self, "{v6}");
            }
        }
    }

    /// `"1.2.3.4:80"` / `"[2001:db8::1]:80"`.
    fn sockaddr(&mut self, a: SocketAddr) {
        self.raw(b"\"");
        if a.is_ipv6() {
            self.raw(b"[");
            self.ip(a.ip());
            self.raw(b"]");
        } else {
            self.ip(a.ip());
        }
        self.raw(b":");
        self.uint(a.port() as u64);
        self.raw(b"\"");
    }

    /// Whether `n` more bytes fit with room to close the line.
    fn room(&self, n: usize) -> bool {
        !self.full && self.len + n + 64 < N
    }

    fn finish(mut self) {
        if self.full {
            // Cut at the last complete field: drop a partly written one.
            let cut = self.buf[..self.len]
                .iter()
                .rposition(|b| *b == b',')
                .unwrap_or(self.len);
            self.len = cut;
            self.full = false;
            self.raw(b",\"truncated\":true");
        }
        self.buf[self.len..self.len + 2].copy_from_slice(b"}\n");
        self.len += 2;
        emit(&self.buf[..self.len]);
    }
}

// ---------------------------------------------------------------------------------
// Decisions
// ---------------------------------------------------------------------------------

use config_schema::events::proto_name;

/// `decision`, `interface`, `reason`, `rule` (and `rule_line`, `skipped`,
/// `multicast`, `errno` where they apply) of a decision (config-schema's
/// [`fields`](config_schema::events::fields), which the supervisor writes too).
fn decision_fields<const N: usize>(r: &mut Rec<N>, d: &Decision<'_>, errno: Option<i32>) {
    let f = config_schema::events::fields(d);
    r.str("decision", f.decision);
    match f.interface {
        Some((name, index)) => {
            r.str("interface", name);
            r.num("ifindex", index as u64);
        }
        None => r.null("interface"),
    }
    r.str("reason", f.reason);
    match f.rule {
        Some(x) => {
            r.str("rule", &x.label);
            if x.line > 0 {
                r.num("rule_line", x.line as u64);
            }
        }
        None => r.null("rule"),
    }
    if f.skipped > 0 {
        r.num("skipped", f.skipped as u64);
    }
    if f.multicast {
        r.bool("multicast", true);
    }
    if let Some(e) = f.errno {
        r.str("errno", e);
        return;
    }
    if let Some(e) = errno {
        r.str("errno", crate::sys::errno_name(e));
    }
}

fn flow_fields<const N: usize>(
    r: &mut Rec<N>,
    call: &str,
    fd: i32,
    proto: Proto,
    dest: SocketAddr,
) {
    r.str("call", call);
    r.key("fd");
    r.int(fd as i64);
    r.str("protocol", proto_name(proto));
    r.key("destination");
    r.sockaddr(dest);
    r.key("address");
    r.raw(b"\"");
    r.ip(dest.ip());
    r.raw(b"\"");
    r.num("port", dest.port() as u64);
}

/// A socket-wide decision (`connect`, a Fast Open send, `listen`, a UDP server's
/// `bind`, a multicast join): one line per call. `errno`: the call was refused by the
/// shim although the decision was not a block (a device binding that failed).
pub(crate) fn decided(
    call: &str,
    fd: i32,
    proto: Proto,
    dest: SocketAddr,
    d: &Decision<'_>,
    errno: Option<i32>,
) {
    if !on() {
        return;
    }
    let mut r = Rec::<DECISION_LINE>::new("decision");
    flow_fields(&mut r, call, fd, proto, dest);
    decision_fields(&mut r, d, errno);
    r.finish();
}

/// The program bound the socket to a device itself (`curl --interface eth0`): the
/// shim leaves it alone.
pub(crate) fn program_bound(call: &str, fd: i32, proto: Proto, dest: SocketAddr) {
    if !on() {
        return;
    }
    let mut r = Rec::<DECISION_LINE>::new("decision");
    flow_fields(&mut r, call, fd, proto, dest);
    r.str("decision", "direct");
    r.null("interface");
    r.str("reason", "program-bound");
    r.null("rule");
    r.finish();
}

/// Recently written datagram flows: a hash of (fd, the socket's serial, destination,
/// outcome) per slot, direct-mapped. A datagram whose flow is there is not written
/// again; an evicted flow is written again (a line too many, never one too few).
static SEEN: [AtomicU64; 512] = [const { AtomicU64::new(0) }; 512];
/// Per fd (modulo the table size), bumped by the first datagram of each socket (the
/// entry lacks `LOGGED_SEND`), so that a new socket reusing an fd number is never
/// taken for the old one.
static SERIAL: [AtomicU32; 1024] = [const { AtomicU32::new(0) }; 1024];

fn mix(mut h: u64, v: u64) -> u64 {
    h ^= v;
    h = h.wrapping_mul(0x100_0000_01b3);
    h ^ (h >> 29)
}

fn flow_hash(fd: i32, serial: u32, dest: SocketAddr, d: &Decision<'_>) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325;
    h = mix(h, fd as u32 as u64 | (serial as u64) << 32);
    h = match dest.ip() {
        IpAddr::V4(a) => mix(h, u32::from(a) as u64),
        IpAddr::V6(a) => {
            let b = a.octets();
            let hi = u64::from_be_bytes(b[..8].try_into().unwrap_or_default());
            let lo = u64::from_be_bytes(b[8..].try_into().unwrap_or_default());
            mix(mix(h, hi), lo)
        }
    };
    h = mix(h, dest.port() as u64);
    h = match d {
        Decision::Bind(b) => mix(mix(h, 1), b.index as u64 | (b.skipped as u64) << 32),
        Decision::Direct(r) => mix(h, 2 | direct_code(r) << 8),
        Decision::Block(_) => mix(h, 3),
    };
    h | 1
}

fn direct_code(r: &DirectReason<'_>) -> u64 {
    match r {
        DirectReason::Loopback => 1,
        DirectReason::OwnAddress => 2,
        DirectReason::Unspecified => 3,
        DirectReason::ScopedLinkLocal => 4,
        DirectReason::NoVia => 5,
        DirectReason::Unavailable => 6,
        DirectReason::ListenAny => 7,
        DirectReason::Rule(x) => *x as *const Rule as usize as u64,
    }
}

/// One datagram's decision (`sendto`, `sendmsg`, `sendmmsg` on an unconnected
/// socket): written once per socket, destination and outcome; a blocked datagram
/// every time (each one is a failed call). `e` is the socket's entry as the send found
/// it.
pub(crate) fn datagram(call: &str, fd: i32, e: Entry, dest: SocketAddr, d: &Decision<'_>) {
    if !on() {
        return;
    }
    if !matches!(d, Decision::Block(_)) {
        let s = &SERIAL[fd as u32 as usize % SERIAL.len()];
        let serial = if e.has(LOGGED_SEND) {
            s.load(Relaxed)
        } else {
            s.fetch_add(1, Relaxed).wrapping_add(1)
        };
        let h = flow_hash(fd, serial, dest, d);
        let slot = &SEEN[(h >> 7) as usize % SEEN.len()];
        if slot.swap(h, Relaxed) == h {
            return;
        }
    }
    decided(call, fd, e.proto(), dest, d, None);
}

// ---------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------

/// What a name lookup found out on its way, for its line (filled only when [`on`]).
#[derive(Default)]
pub(crate) struct Name {
    pub on: bool,
    /// How it was answered when not by a decision: `hosts`, `loopback`, `syntax`.
    pub local: Option<&'static str>,
    pub decision: Option<Decision<'static>>,
    /// Where the servers came from (`MIFSHIM_DNS`, `the policy`,
    /// `systemd-resolved`, …).
    pub source: Option<&'static str>,
    pub servers: Vec<SocketAddr>,
}

impl Name {
    pub(crate) fn new() -> Name {
        Name {
            on: on(),
            ..Name::default()
        }
    }

    pub(crate) fn decided(&mut self, d: Decision<'static>) {
        if self.on {
            self.decision = Some(d);
        }
    }

    pub(crate) fn local(&mut self, how: &'static str) {
        if self.on {
            self.local = Some(how);
        }
    }

    pub(crate) fn servers(&mut self, servers: &[SocketAddr], source: &'static str) {
        if self.on {
            self.servers = servers.to_vec();
            self.source = Some(source);
        }
    }
}

/// The name of an `EAI_*` code, in this OS's numbers (`sys::eai_name`: glibc's
/// negative ones on Linux, `<netdb.h>`'s positive ones on macOS).
fn eai_name(code: i32) -> &'static str {
    crate::sys::eai_name(code)
}

/// One line for a name lookup: `result` is `ok` with `answers`, `libc` (left to the
/// C library: /etc/hosts, a direct rule), or the `EAI_*` code.
pub(crate) fn name(ev: &Name, node: &str, answers: Option<&[IpAddr]>, fail: Option<i32>) {
    if !ev.on || !on() {
        return;
    }
    let mut r = Rec::<LINE>::new("name");
    r.str("name", node);
    match (&ev.decision, ev.local) {
        (_, Some(how)) => {
            r.str("decision", "local");
            r.null("interface");
            r.str("reason", how);
            r.null("rule");
        }
        (Some(d), None) => decision_fields(&mut r, d, None),
        (None, None) => {
            r.null("decision");
            r.null("interface");
        }
    }
    r.opt_str("source", ev.source);
    r.key("servers");
    r.raw(b"[");
    for (i, s) in ev.servers.iter().take(8).enumerate() {
        if i > 0 {
            r.raw(b",");
        }
        r.sockaddr(*s);
    }
    r.raw(b"]");
    match (fail, answers) {
        (Some(code), _) => {
            r.str("result", eai_name(code));
            r.null("answers");
        }
        (None, Some(list)) => {
            r.str("result", "ok");
            r.key("answers");
            r.raw(b"[");
            let mut omitted = 0u64;
            for (i, a) in list.iter().enumerate() {
                if omitted > 0 || !r.room(48) {
                    omitted += 1;
                    continue;
                }
                if i > 0 {
                    r.raw(b",");
                }
                r.raw(b"\"");
                r.ip(*a);
                r.raw(b"\"");
            }
            r.raw(b"]");
            if omitted > 0 {
                r.num("answers_omitted", omitted);
            }
        }
        (None, None) => {
            r.str("result", "libc");
            r.null("answers");
        }
    }
    r.finish();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decision_line_is_exact() {
        let mut r = Rec::<DECISION_LINE> {
            buf: [0; DECISION_LINE],
            len: 0,
            full: false,
        };
        let dest: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
        flow_fields(&mut r, "connect", 7, Proto::Tcp, dest);
        decision_fields(&mut r, &Decision::Direct(DirectReason::Loopback), None);
        let dest: SocketAddr = "203.0.113.10:53".parse().unwrap();
        r.key("d4");
        r.sockaddr(dest);
        assert_eq!(
            std::str::from_utf8(&r.buf[..r.len]).unwrap(),
            r#","call":"connect","fd":7,"protocol":"tcp","destination":"[2001:db8::1]:443","address":"2001:db8::1","port":443,"decision":"direct","interface":null,"reason":"loopback","rule":null,"d4":"203.0.113.10:53""#
        );
        let mut r = Rec::<DECISION_LINE> {
            buf: [0; DECISION_LINE],
            len: 0,
            full: false,
        };
        r.digits(7, 6);
        r.int(-12);
        r.uint(0);
        assert_eq!(std::str::from_utf8(&r.buf[..r.len]).unwrap(), "000007-120");
    }

    #[test]
    fn strings_are_escaped_and_bounded() {
        let mut r = Rec::<LINE> {
            buf: [0; LINE],
            len: 0,
            full: false,
        };
        r.str("k", "a\"b\\c\nd\u{1}");
        assert_eq!(
            std::str::from_utf8(&r.buf[..r.len]).unwrap(),
            r#","k":"a\"b\\c\u000ad\u0001""#
        );
        let mut r = Rec::<LINE> {
            buf: [0; LINE],
            len: 0,
            full: false,
        };
        r.str("k", &"x".repeat(5000));
        assert_eq!(r.len, FIELD + 7);
    }

    #[test]
    fn an_overfull_line_is_cut_at_a_field() {
        let mut r = Rec::<LINE> {
            buf: [0; LINE],
            len: 0,
            full: false,
        };
        r.raw(b"{\"v\":1");
        for _ in 0..40 {
            r.str("k", &"y".repeat(FIELD));
        }
        assert!(r.full);
        // finish() would emit; check the cut by hand the same way.
        let cut = r.buf[..r.len].iter().rposition(|b| *b == b',').unwrap();
        assert!(cut < LINE - 24);
    }
}
