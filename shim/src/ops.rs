//! What each hook does, in safe Rust: take the decoded arguments, consult the policy
//! through [`config_schema::decide`], apply the socket options it calls for, and say
//! how the real call must be made. The hooks in `crate::entry` only decode and forward.

use crate::fdtable::{
    self, APP_BOUND, APP_MCAST_IF, APP_UC4, APP_UC6, Entry, LOGGED_SEND, MCAST_CHECKED, SHIM_BOUND,
    SHIM_DIRECT, SHIM_MCAST_IF, UC4, UC6,
};
use crate::netstate::{self, Snap};
use crate::state::{self, Mode};
use crate::sys::filter::{self, Sources};
use crate::sys::{self, Dest, Pktinfo};
use crate::{log, log_at};
use config_schema::{
    AddrFamily, Bind, BlockReason, Decision, DirectReason, ErrnoKind, Flow, Listen, LogLevel, Op,
    Profile, Proto, Why, decide, unusable_reason,
};
use mifshim_socket_core::mmsg::{self, Batch};
use mifshim_socket_core::{self as core, ConnectStep, DatagramStep, Path, Verdict};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// How to make a send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// The program's call, unchanged.
    AsIs,
    /// The program's call without its destination: a stream that is no Fast Open
    /// ignores it, and a datagram socket another thread `dup2`s onto the fd before
    /// the kernel reads it then sends nothing (`EDESTADDRREQ`) instead of sending by
    /// the main route to that destination.
    Nameless,
    /// Fail with this errno without sending.
    Fail(i32),
    /// Send with a PKTINFO control message choosing the interface.
    Via(Pktinfo),
    /// A DNS query redirected (`[dns] redirect`) to this server, possibly with a
    /// PKTINFO.
    Redirect(SocketAddr, Option<Pktinfo>),
}

fn errno_of(k: ErrnoKind) -> i32 {
    match k {
        ErrnoKind::NetUnreach => sys::ENETUNREACH,
        ErrnoKind::Access => sys::EACCES,
    }
}

fn profile() -> Option<&'static Profile> {
    match state::mode() {
        Mode::Inert => None,
        Mode::Active(p) => Some(p),
    }
}

/// Whether the shim is doing anything in this process (cheap: one atomic load).
pub(crate) fn active() -> bool {
    profile().is_some()
}

/// The entry for `fd`, asking the kernel once if the shim has not seen it created.
/// Whether `fd` is an `AF_INET` socket (asking the kernel if the shim has not seen it).
pub(crate) fn is_ipv4_socket(fd: i32) -> bool {
    entry(fd).family() == Some(AddrFamily::V4)
}

fn entry(fd: i32) -> Entry {
    let e = fdtable::get(fd);
    if e.valid() {
        return e;
    }
    // A probe of a number another thread is closing and reusing may describe the old
    // socket (or none): it never overwrites what the new socket's creation recorded.
    fdtable::set_if_unknown(fd, probe(fd))
}

/// What the kernel says about a socket the shim did not see created
/// (`mifshim_socket_core::probed`: shared, since others may hold it).
fn probe(fd: i32) -> Entry {
    let p = sys::probe_socket(fd);
    let e = core::probed(
        p.family,
        fdtable::proto_of(p.sotype, p.protocol),
        p.bound_ifindex,
        p.unicast_ifindex,
    );
    // A binding the kernel reports on a socket the shim did not see created.
    match e.has(APP_BOUND) {
        true => Entry::new(e.flags | mifshim_fastpath::FOUND_BOUND, e.uc_index),
        false => e,
    }
}

/// The entry of `fd`, with a device binding it claims checked with the kernel where
/// the socket core says it must be (`mifshim_socket_core::needs_binding_check`).
fn entry_checked(fd: i32, connecting: bool) -> Entry {
    let e = entry(fd);
    if core::needs_binding_check(e, connecting) {
        recheck_binding(fd, e)
    } else {
        e
    }
}

/// Asks the kernel whether the socket on `fd` is still bound to a device, as entry `e`
/// says it is, and records the answer (`mifshim_socket_core::binding_checked`).
fn recheck_binding(fd: i32, e: Entry) -> Entry {
    let now = core::binding_checked(e, sys::bound_ifindex(fd));
    if now.flags != e.flags {
        fdtable::clear_flags(fd, e.flags & !now.flags);
    }
    now
}

/// The socket's own binding against a destination steered through `v`'s interface,
/// as the kernel holds it now (socket core: [`core::bound_elsewhere`],
/// [`core::fixed_source_refuses`]): `Some(errno)` when the call must fail rather than
/// leave by the wrong link or with a source the link cannot answer. Costs a system
/// call only on the sockets it concerns: one the shim bound to a device (UDP), one
/// with a fixed source about to be bound, one shared with another holder (who may
/// have bound it unseen: its source is asked for, and recorded once fixed).
#[inline]
fn binding_refuses(
    fd: i32,
    e: &mut Entry,
    v: Verdict,
    snap: &Snap,
    what: &str,
    to: SocketAddr,
) -> Option<i32> {
    // Most sockets are neither bound nor shared: nothing to ask the kernel.
    if !e.has(SHIM_BOUND | APP_BOUND | core::SRC_ADDR | core::SHARED) {
        return None;
    }
    binding_checked(fd, e, v, snap, what, to)
}

#[inline(never)]
fn binding_checked(
    fd: i32,
    e: &mut Entry,
    v: Verdict,
    snap: &Snap,
    what: &str,
    to: SocketAddr,
) -> Option<i32> {
    let Verdict::Steer { index } = v else {
        return None;
    };
    if e.has(SHIM_DIRECT) {
        // Bound for a direct destination: the socket core refuses steered ones.
        return None;
    }
    if core::shim_bound_udp(*e) {
        let now = sys::bound_ifindex(fd);
        let r = core::bound_elsewhere(now, index);
        if let Some(errno) = r {
            log::warn_limited(format_args!(
                "{what} {}: the socket is bound to interface #{now} already, the policy sends this destination by #{index}; refusing -> {}",
                Addr(to),
                sys::errno_name(errno)
            ));
        }
        return r;
    }
    if core::binding_settles(*e) {
        return None;
    }
    let local = if e.has(core::SRC_ADDR) {
        sys::local_addr(fd)
    } else if e.has(core::SHARED) && e.is_udp() {
        // Another holder may have bound it to an address: a PKTINFO would override
        // that source (IPv4) or send it by the wrong link (IPv6). An address the
        // kernel chose at a `connect` is no fixed source (a disconnect resets it, a
        // PKTINFO chooses again).
        let a = sys::local_addr(fd).filter(|a| core::fixes_source(a.ip()));
        if a.is_some() {
            if sys::has_peer(fd) {
                return None;
            }
            fdtable::add_flags(fd, core::SRC_ADDR);
            *e = Entry::new(e.flags | core::SRC_ADDR, e.uc_index);
        }
        a
    } else {
        None
    }?;
    let ip = local.ip().to_canonical();
    let keep = profile().is_some_and(|p| p.foreign_bind == config_schema::ForeignBind::Keep);
    let owned = config_schema::NetView::owns(snap, index, ip);
    let mut r = core::fixed_source_refuses(ip, owned, keep);
    if r == Some(libc::EADDRNOTAVAIL) && netstate::owns_now(index, ip) {
        // The snapshot was older than the address (test
        // address_added_to_the_interface_just_now_was_refused_as_a_foreign_source).
        r = None;
    }
    if let Some(errno) = r {
        log::warn_limited(format_args!(
            "{what} {}: the socket's source {ip} is not an address of the interface the policy sends this destination by (#{index}); refusing -> {}",
            Addr(to),
            sys::errno_name(errno)
        ));
    }
    r
}

// ---------------------------------------------------------------------------------
// socket, close, dup
// ---------------------------------------------------------------------------------

/// Before `socket()`: `Some(errno)` when a steered process may not have this socket.
/// An MPTCP socket (`IPPROTO_MPTCP`, Linux) is refused with `EPROTONOSUPPORT`, as
/// `mifrun --supervise` refuses it and as a kernel without MPTCP answers (programs
/// that try MPTCP first, Go's among them, fall back to TCP): its extra subflows are
/// made by the kernel's path manager from its own endpoints, not bound to the
/// socket's device (seen on the testbed: with an endpoint on eth0, a subflow's SYN
/// of a socket bound to wlan0 left by eth0), and `TCP_LINGER2` cannot be set on it.
pub(crate) fn socket_refused(domain: i32, ty: i32, protocol: i32) -> Option<i32> {
    let inet = domain == libc::AF_INET || domain == libc::AF_INET6;
    if !inet || !sys::is_mptcp(ty, protocol) || !active() {
        return None;
    }
    log::warn_limited(format_args!(
        "socket(IPPROTO_MPTCP): refused in a steered process (MPTCP's extra subflows are not bound to the chosen interface) -> {}",
        sys::errno_name(libc::EPROTONOSUPPORT)
    ));
    Some(libc::EPROTONOSUPPORT)
}

pub(crate) fn socket_created(fd: i32, domain: i32, ty: i32, protocol: i32) {
    // The same entry the stub writes itself once the engine is loaded.
    let e = mifshim_fastpath::entry_for_socket(domain, ty, protocol);
    fdtable::set(fd, Entry::new(e, 0));
}

/// `fd` is being closed. Must not log (module doc of log).
pub(crate) fn fd_closing(fd: i32) {
    fdtable::forget(fd);
    log::fd_closing(fd, false);
    sys::netwatch::closing(fd);
}

/// `fd` is about to be replaced by `dup2`/`dup3`. Must not log.
pub(crate) fn fd_replacing(fd: i32) {
    fdtable::forget(fd);
    log::fd_closing(fd, true);
    sys::netwatch::closing(fd);
}

pub(crate) fn fd_duplicated(from: i32, to: i32) {
    fdtable::copy(from, to);
}

/// `fd` was returned by `accept` on `listener`: a new socket nobody else holds.
pub(crate) fn fd_accepted(listener: i32, fd: i32) {
    match core::accepted(fdtable::get(listener)) {
        Some(s) => fdtable::set(fd, s),
        None => fdtable::forget(fd),
    }
}

/// fds `first..=last` are being closed (`close_range`, `closefrom`). Must not log.
pub(crate) fn fds_closing(first: u32, last: u32) {
    fdtable::forget_range(first, last);
    log::fd_range_closing(first, last);
    sys::netwatch::range_closing(first, last);
}

/// A `connect(AF_UNSPEC)` (a UDP "disconnect": node's `dgram.disconnect()`) reached the
/// kernel, which drops the socket's device binding with the peer: what the entry says
/// about the binding is asked of the kernel again.
pub(crate) fn disconnected(fd: i32) {
    let e = fdtable::get(fd);
    if e.bound() {
        recheck_binding(fd, e);
    }
}

// ---------------------------------------------------------------------------------
// connect and TCP Fast Open
// ---------------------------------------------------------------------------------

/// Before `connect(fd, dest)`: bind the socket to the chosen interface, or refuse.
pub(crate) fn connect(fd: i32, dest: Option<Dest>) -> Result<Option<SocketAddr>, i32> {
    let Some(profile) = profile() else {
        return Ok(None);
    };
    let Some(mut dest) = dest else {
        return Ok(None);
    };
    let e = entry(fd);
    let Some(family) = e.family() else {
        return Ok(None);
    };
    let redirected = crate::dns::redirect_target(profile, dest.addr, family == AddrFamily::V6);
    if let Some(to) = redirected {
        log_at!(
            Info,
            "connect {}: DNS query redirected to {}",
            Addr(dest.addr),
            Addr(to)
        );
        crate::redirect::record(fd, dest.addr, to);
        dest = Dest {
            addr: to,
            scope_id: 0,
        };
    }
    connect_to(profile, fd, e, family, dest).map(|()| redirected)
}

/// The last socket-wide decision and what it was made under.
#[derive(Clone, Copy)]
struct LastDecision {
    generation: u64,
    learned: u64,
    flow: Flow,
    decision: Decision<'static>,
}

/// One process-wide slot for [`LastDecision`], taken with a flag rather than a lock:
/// whoever cannot take it at once (another thread, a signal handler nested in the
/// holder, a holder left by `siglongjmp`) just decides without it. No thread-local
/// (the first touch of a `dlopen`ed library's TLS allocates, which a signal handler
/// must not do), no waiting.
struct LastSlot {
    busy: std::sync::atomic::AtomicBool,
    value: std::cell::UnsafeCell<Option<LastDecision>>,
}

// SAFETY: `value` is only touched by the holder of `busy` (see `LastSlot::with`).
unsafe impl Sync for LastSlot {}

impl LastSlot {
    fn with<R>(&self, f: impl FnOnce(&mut Option<LastDecision>) -> R) -> Option<R> {
        use std::sync::atomic::Ordering::{Acquire, Release};
        if self
            .busy
            .compare_exchange(false, true, Acquire, Acquire)
            .is_err()
        {
            return None;
        }
        // SAFETY: we hold `busy`: nobody else touches `value` until we release it.
        let r = f(unsafe { &mut *self.value.get() });
        self.busy.store(false, Release);
        Some(r)
    }
}

static LAST_DECISION: LastSlot = LastSlot {
    busy: std::sync::atomic::AtomicBool::new(false),
    value: std::cell::UnsafeCell::new(None),
};

/// `decide`, reusing the last decision when the flow, the interface snapshot (its
/// generation) and the addresses learned from names (their epoch) are the same: a
/// program connecting to one server again and again pays for the decision once per
/// snapshot (at most a second). `decide` reads nothing else, so the result is the same.
fn decide_again(profile: &'static Profile, snap: &Snap, flow: &Flow) -> Decision<'static> {
    let learned = crate::learned::epoch();
    let same = |l: &LastDecision| {
        l.generation == snap.generation && l.learned == learned && l.flow == *flow
    };
    if let Some(Some(d)) =
        LAST_DECISION.with(|c| c.as_ref().filter(|l| same(l)).map(|l| l.decision))
    {
        return d;
    }
    let decision = decide(profile, snap, flow);
    let _ = LAST_DECISION.with(|c| {
        *c = Some(LastDecision {
            generation: snap.generation,
            learned,
            flow: *flow,
            decision,
        })
    });
    decision
}

fn connect_to(
    profile: &'static Profile,
    fd: i32,
    e: Entry,
    family: AddrFamily,
    dest: Dest,
) -> Result<(), i32> {
    // The kernel may have dropped a binding the entry records (`connect(AF_UNSPEC)`
    // through another fd or by another holder): one `getsockopt` before relying on it.
    let e = if core::needs_binding_check(e, true) {
        recheck_binding(fd, e)
    } else {
        e
    };
    let shim_bound = core::binding_settles(e) && e.has(SHIM_BOUND);
    // A UDP socket the shim bound is decided again at a second `connect`: the binding
    // settles its interface, not a refusal or a local destination (socket core).
    if shim_bound && !e.is_udp() {
        return Ok(());
    }
    if core::binding_settles(e) && !shim_bound {
        log_at!(
            Info,
            "connect {} on fd {fd}: socket already bound to a device by the program; left alone",
            Addr(dest.addr)
        );
        crate::events::program_bound("connect", fd, e.proto(), dest.addr);
        // Its choice of link is kept; the hold changes only the link the kernel
        // answers a late FIN by (test `close::…_program_bound_socket_…`).
        hold_fin_wait2(fd, e, "connect", dest.addr);
        return Ok(());
    }
    let flow = Flow {
        proto: e.proto(),
        op: Op::Connect,
        dest: dest.addr.ip(),
        port: dest.addr.port(),
        scope_id: dest.scope_id,
    };
    // The decision leaves the closure only for the events file (written after the
    // snapshot is released): with events off nothing more is copied.
    let mut seen = None;
    let r = netstate::with(|snap| {
        let d = decide_again(profile, snap, &flow);
        if crate::events::on() {
            seen = Some(d);
        }
        let mut e = e;
        if let Decision::Bind(
            b @ Bind {
                multicast: false, ..
            },
        ) = &d
        {
            let v = Verdict::Steer { index: b.index };
            if let Some(errno) = binding_refuses(fd, &mut e, v, snap, "connect", dest.addr) {
                return Err(errno);
            }
        }
        apply_socket(fd, e, family, "connect", dest.addr, &d, snap)
    });
    if let Some(d) = seen {
        crate::events::decided("connect", fd, flow.proto, dest.addr, &d, r.err());
    }
    r
}

/// Carries out a socket-wide decision (connect, Fast Open, listen, bind): the socket
/// core's [`ConnectStep`] for it.
fn apply_socket(
    fd: i32,
    e: Entry,
    family: AddrFamily,
    what: &str,
    addr: SocketAddr,
    d: &Decision<'_>,
    snap: &Snap,
) -> Result<(), i32> {
    let v = core::verdict(d, || local_via(snap, addr.ip()));
    match (core::connect(e, v), d) {
        (ConnectStep::Fail(errno), Decision::Block(b)) => {
            report_block(what, addr, b, snap);
            Err(errno)
        }
        (ConnectStep::Fail(errno), Decision::Direct(r)) => {
            log::warn_limited(format_args!(
                "{what} {} ({}): the socket is bound to an interface already; refusing rather than sending onto its link -> {}",
                Addr(addr),
                Direct(*r),
                sys::errno_name(errno)
            ));
            Err(errno)
        }
        (ConnectStep::Fail(errno), _) => Err(errno),
        (ConnectStep::AsIs, Decision::Direct(r)) => {
            log_at!(Info, "{what} {} direct ({})", Addr(addr), Direct(*r));
            Ok(())
        }
        (ConnectStep::AsIs, _) => Ok(()),
        (ConnectStep::MulticastIf { index }, Decision::Bind(b)) => {
            multicast_connect(fd, e, family, what, addr, b, index)
        }
        (ConnectStep::BindDevice { .. }, Decision::Bind(b)) => {
            // Connected: the device binding steers whatever the source.
            apply_options(fd, e, what, addr, b, snap, false)?;
            bind_device(fd, what, addr, b)?;
            hold_fin_wait2(fd, e, what, addr);
            Ok(())
        }
        (ConnectStep::BindDevice { index }, Decision::Direct(r)) => {
            // A UDP socket carrying the shim's unicast interface, connected to a
            // local destination: bound to the interface that keeps it local.
            log_at!(Info, "{what} {} direct ({})", Addr(addr), Direct(*r));
            bind_local(fd, what, addr, index, snap)
        }
        (ConnectStep::BindRoute, Decision::Direct(r)) => {
            log_at!(Info, "{what} {} direct ({})", Addr(addr), Direct(*r));
            bind_route(fd, what, addr, snap)
        }
        // The socket core only asks for these with the decisions above.
        _ => Err(sys::ENETUNREACH),
    }
}

/// A connected multicast socket: its multicast interface set to `index`, unless the
/// program chose one ([`ConnectStep::MulticastIf`]).
fn multicast_connect(
    fd: i32,
    e: Entry,
    family: AddrFamily,
    what: &str,
    addr: SocketAddr,
    b: &Bind<'_>,
    index: u32,
) -> Result<(), i32> {
    if e.has(APP_MCAST_IF) || sys::multicast_if_chosen(fd, family) {
        log_at!(
            Info,
            "{what} {}: the program chose the multicast interface; left alone",
            Addr(addr)
        );
        return Ok(());
    }
    match sys::set_multicast_if(fd, family, index) {
        Ok(()) => {
            fdtable::add_flags(fd, SHIM_MCAST_IF);
            log_at!(
                Info,
                "{what} {} -> {} multicast ({})",
                Addr(addr),
                b.ifname,
                WhyText(b)
            );
            Ok(())
        }
        Err(err) => {
            log::warn_limited(format_args!(
                "{what} {}: cannot set the multicast interface {} ({}); refusing",
                Addr(addr),
                b.ifname,
                sys::errno_name(err)
            ));
            Err(sys::ENETUNREACH)
        }
    }
}

/// A direct destination on a UDP socket carrying the shim's unicast interface: bound
/// to the interface the routing table sends it through ([`ConnectStep::BindRoute`]),
/// or refused when there is no route.
fn bind_route(fd: i32, what: &str, addr: SocketAddr, snap: &Snap) -> Result<(), i32> {
    match sys::route_oif(addr.ip()) {
        Ok(index) => bind_local(fd, what, addr, index, snap),
        Err(err) => {
            log::warn_limited(format_args!(
                "{what} {}: no route for a direct destination on a socket with a unicast interface ({}); refusing",
                Addr(addr),
                sys::errno_name(err)
            ));
            Err(sys::ENETUNREACH)
        }
    }
}

/// Sets the policy's `source`, `mark` and `dscp` on a socket steered by `b`, before
/// its `connect` or first steered datagram (`mifshim_socket_core::options`).
/// `Ok(true)`: the socket was bound to the source address. `Err`: the call fails (a
/// mark refused under `on_mark_denied = "block"`, a source that cannot be bound);
/// nothing has been sent.
#[inline]
fn apply_options(
    fd: i32,
    e: Entry,
    what: &str,
    addr: SocketAddr,
    b: &Bind<'_>,
    snap: &Snap,
    datagram: bool,
) -> Result<bool, i32> {
    // Most sockets get no options, and one that has them gets them once: that test
    // stays in the caller, the rest is out of line.
    if !b.options || e.has(core::SHIM_OPTS) {
        return Ok(false);
    }
    set_options(fd, e, what, addr, b, snap, datagram)
}

#[inline(never)]
fn set_options(
    fd: i32,
    e: Entry,
    what: &str,
    addr: SocketAddr,
    b: &Bind<'_>,
    snap: &Snap,
    datagram: bool,
) -> Result<bool, i32> {
    let Some(profile) = profile() else {
        return Ok(false);
    };
    let opts = config_schema::applied(profile, snap, b);
    if opts.is_empty() && opts.source_missing.is_none() {
        return Ok(false);
    }
    // Once per socket: marked before, taken back if the options were not applied.
    fdtable::add_flags(fd, core::SHIM_OPTS);
    let req = core::sockopts::Request {
        sock: e,
        dest: addr.ip(),
        applied: &opts,
        ifname: b.ifname,
        on_mark_denied: profile.on_mark_denied,
        datagram,
    };
    let rep = core::sockopts::apply(&mut OptionFd(fd), &req);
    if rep.refresh {
        netstate::invalidate();
    }
    for n in rep.notes.iter() {
        if n.warn() {
            log::warn_limited(format_args!(
                "{what} {}: {}",
                Addr(addr),
                n.text(sys::errno_name)
            ));
        } else {
            log_at!(Info, "{what} {}: {}", Addr(addr), n.text(sys::errno_name));
        }
    }
    match rep.outcome {
        core::sockopts::Outcome::Done => Ok(false),
        core::sockopts::Outcome::SourceBound => {
            fdtable::add_flags(fd, core::SRC_ADDR);
            Ok(true)
        }
        core::sockopts::Outcome::Refused { errno, retry } => {
            if retry {
                // Not applied: the next call tries again (and fails again).
                fdtable::clear_flags(fd, core::SHIM_OPTS);
            }
            Err(errno)
        }
    }
}

/// The program's socket, for socket-core's options executor.
struct OptionFd(i32);

impl core::sockopts::OptionSocket for OptionFd {
    fn v6only(&mut self) -> bool {
        sys::v6only(self.0)
    }
    fn tos(&mut self, path: Path) -> i32 {
        sys::tos(self.0, path == Path::V6)
    }
    fn set_tos(&mut self, path: Path, tos: i32) -> Result<(), i32> {
        sys::set_tos(self.0, path == Path::V6, tos)
    }
    fn mark(&mut self) -> u32 {
        sys::mark(self.0)
    }
    fn set_mark(&mut self, mark: u32) -> Result<(), i32> {
        sys::set_mark(self.0, mark)
    }
    fn local_addr(&mut self) -> Option<SocketAddr> {
        sys::local_addr(self.0)
    }
    fn bind_source(&mut self, src: IpAddr, v6_socket: bool, defer_port: bool) -> Result<(), i32> {
        sys::bind_source(self.0, src, v6_socket, defer_port)
    }
}

/// Binds a socket to the interface a direct destination needs (see
/// [`apply_socket`]).
fn bind_local(fd: i32, what: &str, addr: SocketAddr, index: u32, snap: &Snap) -> Result<(), i32> {
    let Some(ifname) = snap.name_of(index) else {
        return Err(sys::ENETUNREACH);
    };
    let b = Bind {
        ifname,
        index,
        family: if addr.is_ipv6() {
            AddrFamily::V6
        } else {
            AddrFamily::V4
        },
        multicast: false,
        options: false,
        skipped: 0,
        why: Why::Default,
    };
    bind_device(fd, what, addr, &b)?;
    fdtable::add_flags(fd, SHIM_DIRECT);
    Ok(())
}

/// The interface a PKTINFO (or binding) must name for a destination on this host:
/// the interface that owns the address, or loopback (`mifshim_socket_core::Verdict::Local`).
fn local_via(snap: &Snap, ip: IpAddr) -> u32 {
    let ip = ip.to_canonical();
    if ip.is_loopback() || ip.is_unspecified() {
        return snap.loopback_index();
    }
    snap.owner_of(ip).unwrap_or_else(|| snap.loopback_index())
}

/// After a TCP socket's device binding for `addr` (a destination, or a listener's
/// wildcard address): keeps its orphaned `FIN_WAIT2` whole where the kernel's
/// time-wait answers would not follow the device ([`core::holds_fin_wait2`]). Not
/// done, the connection still goes by the device; one of its last ACKs may not, so
/// the call goes on with a line saying so.
fn hold_fin_wait2(fd: i32, e: Entry, what: &str, addr: SocketAddr) {
    if !core::holds_fin_wait2(e.proto(), addr.ip()) {
        return;
    }
    if let Err(err) = sys::hold_fin_wait2(fd) {
        log::warn_limited(format_args!(
            "{what} {}: TCP_LINGER2 could not be set ({}); if the peer closes after the program, the kernel's ACK of its FIN may leave by the main routing table",
            Addr(addr),
            sys::errno_name(err)
        ));
    }
}

fn bind_device(fd: i32, what: &str, addr: SocketAddr, b: &Bind<'_>) -> Result<(), i32> {
    match sys::bind_to_interface(fd, b.index, &b.ifname) {
        Ok(()) => {
            fdtable::add_flags(fd, SHIM_BOUND);
            log_at!(
                Info,
                "{what} {} -> {} ({})",
                Addr(addr),
                b.ifname,
                WhyText(b)
            );
            Ok(())
        }
        Err(err) => bind_device_failed(fd, what, addr, b, err),
    }
}

/// `bind_device`'s refusal, out of line: the binding may have been made meanwhile.
#[cold]
#[inline(never)]
fn bind_device_failed(
    fd: i32,
    what: &str,
    addr: SocketAddr,
    b: &Bind<'_>,
    err: i32,
) -> Result<(), i32> {
    // Bound meanwhile (a dup of this socket was bound through another fd, or a
    // thread raced us): the kernel refuses a second binding without privilege.
    let now = sys::bound_ifindex(fd);
    if now == b.index as i32 {
        fdtable::add_flags(fd, SHIM_BOUND);
        return Ok(());
    }
    if now != 0 {
        fdtable::add_flags(fd, APP_BOUND);
        return Ok(());
    }
    if err == libc::ENODEV {
        netstate::invalidate();
    }
    log::warn_limited(format_args!(
        "{what} {}: cannot bind the socket to {} ({}); refusing rather than using the default route",
        Addr(addr),
        b.ifname,
        sys::errno_name(err)
    ));
    Err(sys::ENETUNREACH)
}

fn report_block(what: &str, addr: SocketAddr, b: &config_schema::Block<'_>, snap: &Snap) {
    match b.reason {
        BlockReason::Rule(r) => {
            log_at!(
                Info,
                "{what} {} blocked by {} -> {}",
                Addr(addr),
                r.label,
                sys::errno_name(errno_of(b.errno))
            )
        }
        BlockReason::Unavailable(list) => log::warn_limited(format_args!(
            "{what} {} refused: no usable interface ({}) -> {}",
            Addr(addr),
            Reasons {
                list,
                snap,
                family: b.family
            },
            sys::errno_name(errno_of(b.errno))
        )),
    }
}

// ---------------------------------------------------------------------------------
// Datagrams: sendto / sendmsg / sendmmsg
// ---------------------------------------------------------------------------------

/// Decides how one datagram (or a Fast Open send) to `dest` goes out.
/// `batch`: part of a `sendmmsg`, where a later message of the same call may clear the
/// socket's unicast interface: every steered message then carries its own PKTINFO.
/// `ctl`: the datagram's control data, as the kernel will get it.
pub(crate) fn send(
    fd: i32,
    dest: Option<Dest>,
    flags: i32,
    what: &str,
    batch: bool,
    ctl: Ctl<'_>,
) -> Plan {
    let batch = if batch { Batch::First } else { Batch::No };
    send_in(fd, dest, flags, what, batch, ctl)
}

/// A datagram's control data, as the engine could read it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ctl<'a> {
    /// These bytes (none for a `sendto`, or a message without control data).
    Read(&'a [u8]),
    /// Too long to copy: it may give the datagram a source (and so make any interface
    /// index a mere preference on the IPv6 path), so it is planned as if it did.
    Unknown,
}

impl Ctl<'_> {
    /// What the datagram's control data says on `path` (`sys::scan_control`: the
    /// OS's layout and rules; fastpath's on Linux): its source
    /// and the interface it names. Malformed data is the kernel's to refuse (nothing
    /// is sent), so it says nothing here.
    fn carried(self, path: Path) -> Option<(Option<IpAddr>, Option<u32>)> {
        match self {
            Ctl::Read(b) => sys::scan_control(b, path == Path::V6)
                .ok()
                .map(|sc| (sc.source, sc.chosen.then_some(sc.index))),
            Ctl::Unknown => None,
        }
    }
}

/// [`send`] for a message of a multi-destination `sendmmsg`, at `batch` (first or
/// later). A later message whose sending would change the socket itself is not
/// carried out now (`mmsg::cuts_batch`): it is answered `Plan::Fail`, at which the hook
/// cuts the batch before it and sends the rest; the program's next call starts with
/// it, and it is decided again as that batch's first message (the errno is never
/// seen: a later message's failure only cuts, `mmsg::next`).
pub(crate) fn send_batched(
    fd: i32,
    dest: Option<Dest>,
    flags: i32,
    batch: Batch,
    ctl: Ctl<'_>,
) -> Plan {
    send_in(fd, dest, flags, "sendmmsg", batch, ctl)
}

/// A datagram that names no destination (a connected socket's) but whose control data
/// may give it a source: on a socket the shim bound to the interface its peer was
/// steered by, that source must be one of that interface's, as for a datagram that
/// names its destination ([`datagram_source`]: another link's is refused
/// `EADDRNOTAVAIL`, a loopback one `EINVAL`). The device binding already keeps it on
/// that link; what is refused is a source whose answers would come back by another.
/// Anything else (not the shim's binding, not connected, unreadable control data) is
/// the kernel's to send or refuse. Cost, on this rare path only: a `getsockopt` and a
/// `getpeername`.
pub(crate) fn unnamed_source(fd: i32, what: &str, ctl: Ctl<'_>) -> Plan {
    let Some(profile) = profile() else {
        return Plan::AsIs;
    };
    // The entry is asked for first: a socket the engine did not know is recorded, so
    // the stub's next call on it knows whether to come here (`shim_bound`).
    let e = entry_checked(fd, false);
    if let Ctl::Read(b) = ctl
        && !sys::may_carry_source(b)
    {
        return Plan::AsIs;
    }
    // A binding this process's shim made, or one it found on a socket it received
    // or inherited (`SCM_RIGHTS`, exec: the kernel cannot say whose it is — another
    // process's shim may have made it — so it is checked when it is the interface
    // the policy sends the peer by). One the program made itself here, before a
    // fork too, is its own choice.
    let found = e.has(APP_BOUND) && e.has(mifshim_fastpath::FOUND_BOUND);
    if !e.is_udp() || !core::binding_settles(e) || !(e.has(SHIM_BOUND) || found) {
        return Plan::AsIs;
    }
    let index = sys::bound_ifindex(fd);
    let (true, Some(peer)) = (index > 0, sys::peer_addr(fd)) else {
        return Plan::AsIs;
    };
    let index = index as u32;
    let Some(family) = e.family() else {
        return Plan::AsIs;
    };
    netstate::with(|snap| {
        if found && !policy_steers_to(profile, snap, e, peer, index) {
            return Plan::AsIs;
        }
        if let Ctl::Unknown = ctl {
            // Too long to copy, so it cannot be checked (nor sent as checked): refused,
            // as the kernel refuses control data beyond its own limit.
            log::warn_limited(format_args!(
                "{what} to {}: control data too long to check for a source of its own on a socket bound to its interface; refusing -> ENOBUFS",
                Addr(peer)
            ));
            return Plan::Fail(libc::ENOBUFS);
        }
        let at = Planning {
            fd,
            path: datagram_path(family, peer),
            dest: peer,
            what,
            ctl,
        };
        // Planned as the shim's own binding (not the program's choice).
        let e = Entry::new(e.flags & !APP_BOUND | SHIM_BOUND, e.uc_index);
        match datagram_source(&at, e, Verdict::Steer { index }, snap) {
            Err(plan) => plan,
            Ok(_) => Plan::AsIs,
        }
    })
}

/// Whether the policy sends a datagram to `peer` by interface `index`.
fn policy_steers_to(
    profile: &Profile,
    snap: &Snap,
    e: Entry,
    peer: SocketAddr,
    index: u32,
) -> bool {
    let flow = Flow {
        proto: e.proto(),
        op: Op::Send,
        dest: peer.ip(),
        port: peer.port(),
        scope_id: 0,
    };
    let d = decide(profile, snap, &flow);
    matches!(core::verdict(&d, || local_via(snap, peer.ip())), Verdict::Steer { index: i } if i == index)
}

/// What a later batch message that cuts its batch answers ([`send_batched`]); the
/// hook never reports it.
const CUT: i32 = libc::EAGAIN;

fn send_in(
    fd: i32,
    dest: Option<Dest>,
    flags: i32,
    what: &str,
    batch: Batch,
    ctl: Ctl<'_>,
) -> Plan {
    let Some(profile) = profile() else {
        return Plan::AsIs;
    };
    let Some(dest) = dest else { return Plan::AsIs };
    // A binding the entry claims on a socket someone else may hold is checked with the
    // kernel first (another holder's `connect(AF_UNSPEC)` drops it).
    let e = entry_checked(fd, false);
    let Some(family) = e.family() else {
        return Plan::AsIs;
    };
    if e.proto() == Proto::Tcp {
        // A destination on a stream socket matters only for Fast Open, which is an
        // implicit connect.
        if !sys::is_fast_open(flags) {
            return Plan::Nameless;
        }
        if core::binding_settles(e) {
            return Plan::AsIs;
        }
        return match connect_to(profile, fd, e, family, dest) {
            Ok(()) => Plan::AsIs,
            Err(e) => Plan::Fail(e),
        };
    }
    // A socket the shim bound still decides a datagram with its own destination: the
    // binding settles its interface, not a refusal or a local destination.
    if core::binding_settles(e) && !e.has(SHIM_BOUND) {
        return Plan::AsIs;
    }
    let redirected = crate::dns::redirect_target(profile, dest.addr, family == AddrFamily::V6);
    let dest = match redirected {
        Some(to) => {
            if first_send(fd, e) {
                log_at!(
                    Info,
                    "{what} {}: DNS query redirected to {}",
                    Addr(dest.addr),
                    Addr(to)
                );
            }
            crate::redirect::record(fd, dest.addr, to);
            Dest {
                addr: to,
                scope_id: 0,
            }
        }
        None => dest,
    };
    match (
        redirected,
        send_decided(profile, fd, e, family, dest, Call { what, batch, ctl }),
    ) {
        (Some(to), Plan::AsIs) => Plan::Redirect(to, None),
        (Some(to), Plan::Via(p)) => Plan::Redirect(to, Some(p)),
        (_, p) => p,
    }
}

/// The send call a datagram comes in: its name, its place in a batch, its control data.
struct Call<'a> {
    what: &'a str,
    batch: Batch,
    ctl: Ctl<'a>,
}

/// Decides one datagram and carries out the socket core's plan for it
/// (`mifshim_socket_core::datagram`): decide, report, plan (with the policy's options
/// set first), record, carry out.
fn send_decided(
    profile: &Profile,
    fd: i32,
    e: Entry,
    family: AddrFamily,
    dest: Dest,
    call: Call<'_>,
) -> Plan {
    let Call { what, batch, ctl } = call;
    let flow = Flow {
        proto: e.proto(),
        op: Op::Send,
        dest: dest.addr.ip(),
        port: dest.addr.port(),
        scope_id: dest.scope_id,
    };
    let path = datagram_path(family, dest.addr);
    netstate::with(|snap| {
        let d = decide(profile, snap, &flow);
        crate::events::datagram(what, fd, e, dest.addr, &d);
        if !report_datagram(fd, e, family, what, dest.addr, &d, snap) {
            return Plan::AsIs;
        }
        let at = Planning {
            fd,
            path,
            dest: dest.addr,
            what,
            ctl,
        };
        match plan_datagram(&at, e, &d, snap, batch) {
            Ok(step) => carry_out(&at, &d, step),
            Err(plan) => plan,
        }
    })
}

/// The options (and control message) of the path the kernel takes for `dest`: IPv4
/// for an IPv4 or IPv4-mapped destination, also on an AF_INET6 socket.
fn datagram_path(family: AddrFamily, dest: SocketAddr) -> Path {
    if family == AddrFamily::V6 && dest.ip().to_canonical().is_ipv6() {
        Path::V6
    } else {
        Path::V4
    }
}

/// Logs a datagram decision (the socket's first at info); `false`: the program chose
/// the multicast interface itself, and the datagram goes as it is.
fn report_datagram(
    fd: i32,
    e: Entry,
    family: AddrFamily,
    what: &str,
    dest: SocketAddr,
    d: &Decision<'_>,
    snap: &Snap,
) -> bool {
    match d {
        Decision::Direct(r) => {
            if first_send(fd, e) {
                log_at!(Info, "{what} {} direct ({})", Addr(dest), Direct(*r));
            }
        }
        Decision::Block(b) => report_block(what, dest, b, snap),
        Decision::Bind(b) => {
            if b.multicast && program_chose_multicast_if(fd, e, family) {
                return false;
            }
            if first_send(fd, e) {
                let mc = if b.multicast { " multicast" } else { "" };
                log_at!(
                    Info,
                    "{what} {} -> {}{mc} ({})",
                    Addr(dest),
                    b.ifname,
                    WhyText(b)
                );
            }
        }
    }
    true
}

/// Whether the program chose a multicast socket's interface itself. Asked once per
/// socket; later choices come through the setsockopt hook.
fn program_chose_multicast_if(fd: i32, e: Entry, family: AddrFamily) -> bool {
    if !e.has(MCAST_CHECKED) && !e.has(APP_MCAST_IF) {
        let chosen = !e.has(SHIM_MCAST_IF) && sys::multicast_if_chosen(fd, family);
        fdtable::add_flags(fd, if chosen { APP_MCAST_IF } else { MCAST_CHECKED });
        return chosen;
    }
    e.has(APP_MCAST_IF)
}

/// The datagram being planned: its socket, path, destination and the call's name.
struct Planning<'a> {
    fd: i32,
    path: Path,
    dest: SocketAddr,
    what: &'a str,
    /// Its control data.
    ctl: Ctl<'a>,
}

/// The socket core's plan for a datagram decided `d`, its bookkeeping done (entry
/// flags, the memo): the step to carry out. A steered one gets the policy's options
/// first. `Err`: what to answer instead (a fixed binding refuses, the options cannot
/// be set, a later message of a batch is cut off: `mmsg::cuts_batch`).
fn plan_datagram(
    at: &Planning<'_>,
    e: Entry,
    d: &Decision<'_>,
    snap: &Snap,
    batch: Batch,
) -> Result<DatagramStep, Plan> {
    let fd = at.fd;
    let v = core::verdict(d, || local_via(snap, at.dest.ip()));
    let mut e = e;
    if let Some(errno) = binding_refuses(fd, &mut e, v, snap, at.what, at.dest) {
        return Err(Plan::Fail(errno));
    }
    // A datagram that gives itself a source is planned as a socket bound to it
    // (socket core: `datagram_source`); this entry is the plan's only, not recorded.
    e = datagram_source(at, e, v, snap)?;
    // Stamped with the generation of the snapshot this decision was made on (not
    // the current one, which a refresh by another thread may have moved on).
    let k = key(at.dest);
    let m = mifshim_fastpath::memo(snap.generation, &k);
    let memo_hit = matches!(v, Verdict::Steer { .. }) && fdtable::memo_is(fd, m, &k);
    let mut plan = core::datagram(e, at.path, v, memo_hit, batch.multi());
    if let (
        Decision::Bind(
            b @ Bind {
                multicast: false, ..
            },
        ),
        step,
    ) = (d, plan.step)
    {
        let pending = b.options && !e.has(core::SHIM_OPTS);
        if mmsg::cuts_batch(batch, step, pending) {
            return Err(Plan::Fail(CUT));
        }
        let steered = matches!(
            step,
            DatagramStep::Pktinfo { .. }
                | DatagramStep::Promote { .. }
                | DatagramStep::BindDevice { .. }
        );
        if steered && apply_options(fd, e, at.what, at.dest, b, snap, true).map_err(Plan::Fail)? {
            // The socket has a source address now: planned as one that has.
            let e = Entry::new(e.flags | core::SRC_ADDR, e.uc_index);
            plan = core::datagram(e, at.path, v, memo_hit, batch.multi());
        }
    } else if mmsg::cuts_batch(batch, plan.step, false) {
        return Err(Plan::Fail(CUT));
    }
    if plan.add != 0 {
        fdtable::add_flags(fd, plan.add);
    }
    if plan.remember {
        fdtable::memo_set(fd, m, &k);
    }
    Ok(plan.step)
}

/// The entry datagram `at` must be planned with, given the source its control data
/// gives it (socket core: [`core::datagram_source`]), or the refusal.
fn datagram_source(at: &Planning<'_>, e: Entry, v: Verdict, snap: &Snap) -> Result<Entry, Plan> {
    let (source, chosen) = match at.ctl.carried(at.path) {
        Some((None, _)) => return Ok(e),
        Some(carried) => carried,
        // Unread: planned as if it carried one of the steered interface's addresses.
        None => match v {
            Verdict::Steer { .. } if at.path == Path::V6 => {
                return Ok(Entry::new(e.flags | core::SRC_ADDR, e.uc_index));
            }
            _ => return Ok(e),
        },
    };
    let keep = profile().is_some_and(|p| p.foreign_bind == config_schema::ForeignBind::Keep);
    let owned =
        |index, ip| config_schema::NetView::owns(snap, index, ip) || netstate::owns_now(index, ip);
    core::datagram_source(e, at.path, v, source, chosen, owned, keep).map_err(|errno| {
        log::warn_limited(format_args!(
            "{} {}: the datagram's own source {} is not an address of the interface the policy sends this destination by; refusing -> {}",
            at.what,
            Addr(at.dest),
            source.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.to_canonical()),
            sys::errno_name(errno)
        ));
        Plan::Fail(errno)
    })
}

/// Carries out the socket core's step for a datagram decided `d`.
fn carry_out(at: &Planning<'_>, d: &Decision<'_>, step: DatagramStep) -> Plan {
    let v6 = at.path == Path::V6;
    let (what, dest) = (at.what, at.dest);
    match step {
        DatagramStep::AsIs => Plan::AsIs,
        DatagramStep::Fail(errno) => {
            if let Decision::Direct(r) = d {
                log::warn_limited(format_args!(
                    "{what} {} ({}): the socket is bound to an interface already; refusing rather than sending onto its link -> {}",
                    Addr(dest),
                    Direct(*r),
                    sys::errno_name(errno)
                ));
            }
            Plan::Fail(errno)
        }
        DatagramStep::Pktinfo { ifindex } => Plan::Via(Pktinfo { ifindex, v6 }),
        DatagramStep::PktinfoRoute => match sys::route_oif(dest.ip()) {
            Ok(ifindex) => Plan::Via(Pktinfo { ifindex, v6 }),
            Err(err) => {
                log::warn_limited(format_args!(
                    "{what} {}: no route for a direct destination on a socket with a unicast interface ({}); refusing",
                    Addr(dest),
                    sys::errno_name(err)
                ));
                Plan::Fail(sys::ENETUNREACH)
            }
        },
        DatagramStep::BindDevice { index } => match d {
            Decision::Bind(b) if b.index == index => match bind_device(at.fd, what, dest, b) {
                Ok(()) => Plan::AsIs,
                Err(errno) => Plan::Fail(errno),
            },
            _ => Plan::Fail(sys::ENETUNREACH),
        },
        DatagramStep::Promote { index } => match sys::set_unicast_if_on(at.fd, at.path, index) {
            Ok(()) => {
                fdtable::set_uc(at.fd, at.path.uc_flag(), index);
                Plan::AsIs
            }
            Err(_) => Plan::Via(Pktinfo { ifindex: index, v6 }),
        },
    }
}

/// The fast path's key of a destination (`mifshim_fastpath::key_of` of the same
/// address as the program wrote it, scope aside).
fn key(a: SocketAddr) -> mifshim_fastpath::Key {
    match a.ip() {
        IpAddr::V4(v4) => mifshim_fastpath::key_v4(u32::from(v4), a.port()),
        IpAddr::V6(v6) => mifshim_fastpath::key_v6(v6.octets(), a.port()),
    }
}

/// The first datagram decision of a socket is logged at info; later ones at debug.
fn first_send(fd: i32, e: Entry) -> bool {
    if e.has(LOGGED_SEND) {
        return log::enabled(LogLevel::Debug);
    }
    fdtable::add_flags(fd, LOGGED_SEND);
    true
}

/// The program's control data did not leave room for ours: bind the whole socket
/// instead (loses the per-datagram exemption for this socket, logged).
pub(crate) fn send_fallback_bind(fd: i32, dest: Option<Dest>, p: Pktinfo) -> Result<(), i32> {
    let addr = dest.map_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0), |d| {
        d.addr
    });
    log_at!(
        Info,
        "send {}: the program's control messages leave no room for IP_PKTINFO; binding the socket",
        Addr(addr)
    );
    let name = netstate::with(|snap| snap.name_of(p.ifindex));
    let Some(name) = name else {
        return Err(sys::ENETUNREACH);
    };
    let b = Bind {
        ifname: name,
        index: p.ifindex,
        family: AddrFamily::V4,
        multicast: false,
        options: false,
        skipped: 0,
        why: Why::Default,
    };
    bind_device(fd, "send", addr, &b)
}

// ---------------------------------------------------------------------------------
// Servers: bind and listen
// ---------------------------------------------------------------------------------

fn wildcard(family: AddrFamily, port: u16) -> SocketAddr {
    match family {
        AddrFamily::V4 => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        AddrFamily::V6 => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
    }
}

/// Confines a wildcard listener (TCP at `listen`, UDP at a `bind` to a fixed port):
/// with `listen = "interface"` by a socket filter admitting the chosen interface and
/// loopback (`sys::filter`), with `listen = "device"` — or when a filter cannot be
/// attached — by binding it to the device.
fn confine(fd: i32, e: Entry, family: AddrFamily, what: &str, port: u16) -> Result<(), i32> {
    let Some(profile) = profile() else {
        return Ok(());
    };
    if e.has(SHIM_BOUND) || e.has(APP_BOUND) {
        return Ok(());
    }
    let addr = wildcard(family, port);
    let flow = Flow {
        proto: e.proto(),
        op: Op::Listen,
        dest: addr.ip(),
        port,
        scope_id: 0,
    };
    let mut seen = None;
    let r = netstate::with(|snap| {
        let d = decide(profile, snap, &flow);
        if crate::events::on() {
            seen = Some(d);
        }
        match d {
            Decision::Bind(b) if !b.multicast && profile.listen == Listen::Interface => {
                match filter::LISTENERS_UNCONFINABLE {
                    Some(why) => unconfinable(what, addr, &b, why),
                    None => confine_by_filter(fd, e, what, addr, &b, snap),
                }
            }
            d => apply_socket(fd, e, family, what, addr, &d, snap),
        }
    });
    if let Some(d) = seen {
        crate::events::decided(what, fd, flow.proto, addr, &d, r.err());
    }
    r
}

/// A wildcard listener the policy confines to `b`'s interface, on an OS where no
/// listener can be confined (`sys::filter::LISTENERS_UNCONFINABLE`, `why`): refused,
/// as a device binding that cannot be made is, rather than left open to every link.
#[cold]
fn unconfinable(what: &str, addr: SocketAddr, b: &Bind<'_>, why: &str) -> Result<(), i32> {
    log::warn_limited(format_args!(
        "{what} {}: the policy confines this listener to {}, which cannot be done here ({why}); refusing (listen = \"any\" leaves listeners open) -> {}",
        Addr(addr),
        b.ifname,
        sys::errno_name(sys::ENETUNREACH)
    ));
    Err(sys::ENETUNREACH)
}

/// The on-link prefixes of interface `index` that a TCP listener's filter admits.
struct OnLink {
    list: [(IpAddr, u8); 2 * filter::MAX_PREFIXES],
    n: usize,
}

impl OnLink {
    fn of(snap: &Snap, index: u32) -> OnLink {
        let mut o = OnLink {
            list: [(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0); 2 * filter::MAX_PREFIXES],
            n: 0,
        };
        snap.onlink_of(index, |ip, len| {
            if o.n < o.list.len() {
                o.list[o.n] = (ip, len);
                o.n += 1;
            }
        });
        o
    }
    fn sources(&self, proto: Proto) -> Sources<'_> {
        match proto {
            // A UDP server's replies go through the shim's per-datagram steering.
            Proto::Udp => Sources::Any,
            // An unbound listener's SYN-ACK follows the routing table: only peers the
            // connected route answers through the chosen interface.
            _ => Sources::Prefixes(&self.list[..self.n]),
        }
    }
}

/// Attaches the shim's filter for `b`'s interface, composed with a classic filter the
/// program attached before; falls back to the device binding when that cannot be done
/// (an eBPF program, a locked filter, a composition too long).
fn confine_by_filter(
    fd: i32,
    e: Entry,
    what: &str,
    addr: SocketAddr,
    b: &Bind<'_>,
    snap: &Snap,
) -> Result<(), i32> {
    let onlink = OnLink::of(snap, b.index);
    let lo = snap.loopback_index();
    let fallback = |why: &str| {
        log_at!(
            Info,
            "{what} {}: {why}; binding the socket to {} instead (loopback closed)",
            Addr(addr),
            b.ifname
        );
        bind_device(fd, what, addr, b)?;
        hold_fin_wait2(fd, e, what, addr);
        Ok(())
    };
    let attached = match filter::len(fd) {
        Ok(0) => {
            let mut buf = [filter::ZERO; filter::MAX_OWN];
            match filter::build(&mut buf, lo, b.index, onlink.sources(e.proto()), &[]) {
                Some(n) => filter::attach(fd, &buf[..n]),
                None => Err(libc::EINVAL),
            }
        }
        Ok(_) => {
            let Some(mut scratch) = filter::Scratch::new() else {
                return fallback("no memory to compose the program's filter");
            };
            let [cur, out, _] = scratch.parts();
            let Ok(n) = filter::get(fd, cur) else {
                return fallback("the program's filter cannot be read");
            };
            let program = match filter::ours(&cur[..n]) {
                Some(o) => filter::program_part(&cur[..n], o),
                None => &cur[..n],
            };
            match filter::build(out, lo, b.index, onlink.sources(e.proto()), program) {
                Some(m) => filter::attach(fd, &out[..m]),
                None => return fallback("the program's filter is too long to compose"),
            }
        }
        Err(libc::EACCES) => return fallback("the program attached an eBPF filter"),
        Err(err) => Err(err),
    };
    match attached {
        Ok(()) => {
            log_at!(
                Info,
                "{what} {} -> {} and loopback ({})",
                Addr(addr),
                b.ifname,
                WhyText(b)
            );
            Ok(())
        }
        Err(libc::EPERM) => fallback("the program locked the socket's filter"),
        Err(err) => fallback(sys::errno_name(err)),
    }
}

/// Before the program's own `SO_ATTACH_FILTER`, `SO_ATTACH_BPF` or `SO_DETACH_FILTER`
/// on a socket the shim confined by a filter: `None` when the socket carries no filter
/// of the shim's (the call is forwarded as is), otherwise the call is carried out here
/// and its result returned:
/// * a classic filter is composed behind the shim's (the shim's admission, then the
///   program's verdict); `EPERM` if locked, as the kernel answers;
/// * an eBPF program replaces the shim's filter (it cannot be composed) and the socket
///   is bound to the device instead, with a warning: still closed to the other links;
/// * a detach removes the program's part only: the shim's admission stays.
pub(crate) fn setsockopt_filter(
    fd: i32,
    name: i32,
    opt: filter::ProgramOpt,
) -> Option<Result<(), i32>> {
    active().then_some(())?;
    let e = entry(fd);
    e.family()?;
    if filter::len(fd).ok()? == 0 {
        return None;
    }
    let mut scratch = filter::Scratch::new()?;
    let [cur, theirs, out] = scratch.parts();
    let n = filter::get(fd, cur).ok()?;
    let o = filter::ours(&cur[..n])?;
    if filter::is_attach_ebpf(name) {
        let r = opt.forward(fd, name);
        if r.is_ok() {
            let bound = filter::bind_index(fd, o.ifindex);
            log::warn_limited(format_args!(
                "fd {fd}: the program attached an eBPF filter to a confined listener; bound it to interface #{} instead (loopback closed){}",
                o.ifindex,
                if bound.is_ok() {
                    ""
                } else {
                    ": binding failed"
                }
            ));
            if bound.is_ok() {
                fdtable::add_flags(fd, SHIM_BOUND);
            }
            return Some(bound);
        }
        return Some(r);
    }
    if filter::is_detach(name) && filter::locked(fd) {
        return Some(Err(libc::EPERM));
    }
    let program: &[filter::Insn] = if filter::is_attach_classic(name) {
        match opt.read_filter(theirs) {
            Ok(m) => &theirs[..m],
            Err(err) => return Some(Err(err)),
        }
    } else {
        &[]
    };
    if filter::is_detach(name) && o.tail == 0 {
        // Nothing of the program's to remove.
        return Some(Ok(()));
    }
    let m = netstate::with(|snap| {
        let onlink = OnLink::of(snap, o.ifindex);
        filter::build(out, o.lo, o.ifindex, onlink.sources(e.proto()), program)
    });
    let Some(m) = m else {
        // Too long to compose: the program's filter alone, and the device binding.
        let r = opt.forward(fd, name);
        if r.is_ok() && filter::bind_index(fd, o.ifindex).is_ok() {
            fdtable::add_flags(fd, SHIM_BOUND);
        }
        return Some(r);
    };
    Some(filter::attach(fd, &out[..m]))
}

/// The program bound a socket the shim confined by a filter to a device itself: its
/// choice wins, so the shim's admission (which would drop that device's packets) goes;
/// a filter of the program's own stays.
fn unconfine_filter(fd: i32) {
    if !matches!(filter::len(fd), Ok(n) if n > 0) {
        return;
    }
    let Some(mut scratch) = filter::Scratch::new() else {
        return;
    };
    let [cur, _, _] = scratch.parts();
    let Ok(n) = filter::get(fd, cur) else { return };
    let Some(o) = filter::ours(&cur[..n]) else {
        return;
    };
    let program = filter::program_part(&cur[..n], o);
    let _ = if program.is_empty() {
        filter::detach(fd)
    } else {
        filter::attach(fd, program)
    };
}

/// Before `bind(fd, addr)`: a UDP socket bound to the wildcard address on a fixed
/// port is a server; confine it. An explicit address of another interface than the
/// chosen one is rewritten to the chosen interface's (`Ok(Some(ip))`: bind to `ip`
/// instead, the rest of the program's `sockaddr` kept; `config_schema::decide_bind`).
pub(crate) fn bind(fd: i32, addr: Option<Dest>) -> Result<Option<IpAddr>, i32> {
    let Some(profile) = profile() else {
        return Ok(None);
    };
    let Some(addr) = addr else { return Ok(None) };
    if addr.addr.ip().is_unspecified() {
        if addr.addr.port() == 0 {
            return Ok(None);
        }
        let e = entry(fd);
        return match (e.family(), e.proto()) {
            (Some(family), Proto::Udp) => {
                confine(fd, e, family, "bind", addr.addr.port()).map(|()| None)
            }
            _ => Ok(None),
        };
    }
    let e = entry(fd);
    if e.family().is_none() {
        return Ok(None);
    }
    let ip = addr.addr.ip();
    netstate::with(|snap| {
        let d = config_schema::decide_bind(profile, snap, ip, addr.scope_id);
        match (core::bind(e, ip, &d), d) {
            (core::BindStep::Rewrite(to), config_schema::BindAddr::Rewrite { bind: b, .. }) => {
                let owner = snap
                    .owner_of(ip.to_canonical())
                    .and_then(|i| snap.name_of(i));
                log_at!(
                    Info,
                    "bind {}: an address of {}, rewritten to {} of {} ({})",
                    Addr(addr.addr),
                    owner.as_ref().map_or("another interface", |n| n.as_str()),
                    to,
                    b.ifname,
                    WhyText(&b)
                );
                Ok(Some(to))
            }
            (core::BindStep::Fail(errno), config_schema::BindAddr::Refuse(b)) => {
                log::warn_limited(format_args!(
                    "bind {} refused: another interface's address, and no usable interface has one of its family to bind instead ({}) -> {}",
                    Addr(addr.addr),
                    Reasons {
                        list: match b.reason {
                            BlockReason::Unavailable(l) => l,
                            BlockReason::Rule(_) => &[],
                        },
                        snap,
                        family: b.family
                    },
                    sys::errno_name(errno)
                ));
                Err(errno)
            }
            (core::BindStep::Fail(errno), _) => Err(errno),
            _ => Ok(None),
        }
    })
}

/// After a successful `bind(fd, addr)` (the address as the kernel got it): a
/// specific source address is recorded ([`core::SRC_ADDR`]), since it changes how
/// the kernel routes the socket's datagrams.
pub(crate) fn bound(fd: i32, addr: Option<Dest>) {
    if !active() {
        return;
    }
    if addr.is_some_and(|a| core::fixes_source(a.addr.ip())) {
        fdtable::add_flags(fd, core::SRC_ADDR);
    }
}

/// Before `listen(fd)`: confine a wildcard TCP listener.
pub(crate) fn listen(fd: i32) -> Result<(), i32> {
    if !active() {
        return Ok(());
    }
    let e = entry(fd);
    let Some(family) = e.family() else {
        return Ok(());
    };
    if e.proto() != Proto::Tcp {
        return Ok(());
    }
    let local = sys::local_addr(fd);
    if local.is_some_and(|a| !a.ip().is_unspecified()) {
        return Ok(());
    }
    confine(fd, e, family, "listen", local.map_or(0, |a| a.port()))
}

// ---------------------------------------------------------------------------------
// setsockopt: the program's own choices, and multicast joins on "any interface"
// ---------------------------------------------------------------------------------

/// A replacement option value.
pub(crate) type OptBuf = core::membership::Value;

/// Before `setsockopt`: returns a rewritten value for a multicast join/leave whose
/// interface is "any", so that membership goes to the chosen interface.
pub(crate) fn setsockopt_rewrite(
    fd: i32,
    level: i32,
    name: i32,
    val: &[u8],
) -> Result<Option<OptBuf>, i32> {
    let Some(profile) = profile() else {
        return Ok(None);
    };
    if sys::unbinds_device(level, name, val) {
        // Dropping the shim's device binding is not choosing a link: the socket would
        // leave by the default route. Refused as the kernel refuses a program without
        // CAP_NET_RAW.
        if let Some(errno) = core::unbinding_refused(entry(fd)) {
            log::warn_limited(format_args!(
                "fd {fd}: the program drops the device binding the policy gave this socket; refused (EPERM): it would leave by the default route"
            ));
            return Err(errno);
        }
        return Ok(None);
    }
    // The program replaces a unicast interface the shim may have set: the stub's fast
    // path stops relying on it before the kernel sees the change.
    match sys::unicast_if_option(level, name) {
        Some(Path::V4) => fdtable::clear_flags(fd, UC4),
        Some(Path::V6) => fdtable::clear_flags(fd, UC6),
        None => {}
    }
    let e = entry(fd);
    let Some(family) = e.family() else {
        return Ok(None);
    };
    if e.has(APP_BOUND) {
        return Ok(None);
    }
    let Some(group) = membership_group(level, name, val) else {
        return Ok(None);
    };
    let flow = Flow {
        proto: e.proto(),
        op: Op::Join,
        dest: group,
        port: 0,
        scope_id: 0,
    };
    netstate::with(|snap| match decide(profile, snap, &flow) {
        Decision::Bind(b) => {
            let Some(out) = rewrite_membership(level, name, val, &b, snap) else {
                // A request that names no interface and cannot be pointed at the
                // chosen one (a source membership names it by an IPv4 address the
                // interface lacks): passed on, the kernel would join it on the
                // route's interface. Refused, as the supervisor refuses it. The
                // decision already blocks a v4 group on an interface without an IPv4
                // address, so this is a backstop (wt-mac4's review).
                log::warn_limited(format_args!(
                    "join {group}: cannot name {} in this request; refused (ENETUNREACH)",
                    b.ifname
                ));
                return Err(libc::ENETUNREACH);
            };
            log_at!(Info, "join {} -> {} ({})", group, b.ifname, WhyText(&b));
            let d = Decision::Bind(b);
            crate::events::decided("join", fd, flow.proto, SocketAddr::new(group, 0), &d, None);
            Ok(Some(out))
        }
        Decision::Direct(_) => Ok(None),
        Decision::Block(b) => {
            report_block("join", SocketAddr::new(group, 0), &b, snap);
            let d = Decision::Block(b);
            crate::events::decided("join", fd, flow.proto, SocketAddr::new(group, 0), &d, None);
            let _ = family;
            Err(errno_of(b.errno))
        }
    })
}

/// The group of a membership option whose interface is unspecified
/// (socket-core's `membership::Abi::group_of`, given this OS's table).
fn membership_group(level: i32, name: i32, v: &[u8]) -> Option<IpAddr> {
    sys::MEMBERSHIP.group_of(level, name, v)
}

/// The membership request pointed at the chosen interface
/// (socket-core's `membership::Abi::rewrite`).
fn rewrite_membership(
    level: i32,
    name: i32,
    v: &[u8],
    b: &Bind<'_>,
    snap: &Snap,
) -> Option<OptBuf> {
    sys::MEMBERSHIP.rewrite(level, name, v, b.index, |i| snap.v4_of(i))
}

/// After a successful `setsockopt`: remember the program's own interface choices.
pub(crate) fn setsockopt_done(fd: i32, level: i32, name: i32, val: &[u8]) {
    if !active() {
        return;
    }
    let nonzero = val.iter().any(|b| *b != 0);
    if sys::binds_device(level, name) {
        if nonzero {
            // The shim's own binding is never done through this hook.
            let e = entry(fd);
            if e.family().is_some() && !e.has(APP_BOUND) {
                // The user asked for another interface: worth a (rate-limited) warning.
                log::warn_limited(format_args!(
                    "fd {fd}: the program binds this socket to {} itself; that choice wins over the policy",
                    DeviceName(val)
                ));
            }
            // Its own choice now, not a binding found on the socket.
            fdtable::clear_flags(fd, mifshim_fastpath::FOUND_BOUND);
            fdtable::add_flags(fd, APP_BOUND);
            unconfine_filter(fd);
        } else {
            fdtable::clear_flags(fd, APP_BOUND | mifshim_fastpath::FOUND_BOUND);
        }
        return;
    }
    if sys::multicast_if_option(level, name) {
        // Only the fields the kernel reads choose: an ip_mreqn naming just the
        // group is "any" (test programs_own_multicast_interface_wins_and_any_is_
        // no_choice_under_the_preload_too).
        let _ = entry(fd);
        if sys::MEMBERSHIP.multicast_if_chooses(level, val) {
            fdtable::add_flags(fd, APP_MCAST_IF);
        } else {
            fdtable::clear_flags(fd, APP_MCAST_IF);
        }
        return;
    }
    // The program's value replaced the one the shim may have set (the shim's flag
    // was withdrawn before the call, `setsockopt_before`). IPV6_UNICAST_IF covers
    // native IPv6 destinations only; IPv4-mapped ones go by IP_UNICAST_IF.
    let flag = match sys::unicast_if_option(level, name) {
        Some(Path::V4) => APP_UC4,
        Some(Path::V6) => APP_UC6,
        None => return,
    };
    if nonzero {
        let _ = entry(fd);
        fdtable::add_flags(fd, flag);
    } else {
        fdtable::clear_flags(fd, flag);
    }
}

// ---------------------------------------------------------------------------------
// Log formatting (no allocation)
// ---------------------------------------------------------------------------------

/// The device a `SO_BINDTODEVICE` (name) or `SO_BINDTOIFINDEX` (index) value names.
struct DeviceName<'a>(&'a [u8]);

impl fmt::Display for DeviceName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.0.split(|b| *b == 0).next().unwrap_or(&[]);
        match std::str::from_utf8(name) {
            Ok(n) if self.0.len() != 4 || n.chars().all(|c| c.is_ascii_graphic()) => f.write_str(n),
            _ => match self.0.first_chunk::<4>() {
                Some(i) => write!(f, "interface #{}", i32::from_ne_bytes(*i)),
                None => f.write_str("a device"),
            },
        }
    }
}

/// `1.2.3.4:80`, `[2001:db8::1]:80`.
struct Addr(SocketAddr);

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            SocketAddr::V4(a) => write!(f, "{}:{}", a.ip(), a.port()),
            SocketAddr::V6(a) => write!(f, "[{}]:{}", a.ip(), a.port()),
        }
    }
}

struct WhyText<'a, 'p>(&'a Bind<'p>);

impl fmt::Display for WhyText<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.why {
            Why::Default => f.write_str("default")?,
            Why::Rule(r) => f.write_str(&r.label)?,
        }
        if self.0.skipped > 0 {
            write!(f, "; {} earlier interface(s) unusable", self.0.skipped)?;
        }
        Ok(())
    }
}

struct Direct<'p>(DirectReason<'p>);

impl fmt::Display for Direct<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            DirectReason::Loopback => f.write_str("loopback"),
            DirectReason::OwnAddress => f.write_str("own address"),
            DirectReason::Unspecified => f.write_str("this host"),
            DirectReason::ScopedLinkLocal => {
                f.write_str("link-local with a scope chosen by the program")
            }
            DirectReason::NoVia => f.write_str("no interface set"),
            DirectReason::Rule(r) => f.write_str(&r.label),
            DirectReason::Unavailable => {
                f.write_str("no usable interface; on_unavailable = direct")
            }
            DirectReason::ListenAny => f.write_str("listen = any"),
        }
    }
}

/// `wlan0 is down, wwan0 does not exist`.
struct Reasons<'a> {
    list: &'a [config_schema::IfName],
    snap: &'a Snap,
    family: AddrFamily,
}

impl fmt::Display for Reasons<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.list.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match unusable_reason(self.snap, n, self.family) {
                Some(r) => write!(f, "{n} {r}")?,
                None => write!(f, "{n} changed meanwhile")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use config_schema::{IfName, Policy};

    fn profile() -> &'static Profile {
        let via = vec![IfName::new("wlan0").unwrap()];
        Box::leak(Box::new(Policy::from_via(via).profile_for("test", "test")))
    }

    fn flow(port: u16) -> Flow {
        Flow {
            proto: Proto::Udp,
            op: Op::Connect,
            dest: "203.0.113.10".parse().unwrap(),
            port,
            scope_id: 0,
        }
    }

    fn bound_to(d: Decision<'_>) -> Option<u32> {
        match d {
            Decision::Bind(b) => Some(b.index),
            _ => None,
        }
    }

    #[test]
    fn a_repeated_connect_reuses_the_decision_only_under_the_same_snapshot_and_flow() {
        // Other tests write the learned-address table (and so move its epoch).
        let _lock = crate::learned::TEST_LOCK
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let p = profile();
        let mut snap = Snap::one_interface(3, "wlan0", true, "198.51.100.66".parse().unwrap());
        snap.generation = 7;
        assert_eq!(bound_to(decide_again(p, &snap, &flow(9))), Some(3));
        // Same generation: the remembered decision answers (the snapshot is changed
        // behind the generation's back only to show that it is not consulted).
        snap.set_up(false);
        assert_eq!(bound_to(decide_again(p, &snap, &flow(9))), Some(3));
        // Another flow is decided on the snapshot as it is.
        assert!(matches!(
            decide_again(p, &snap, &flow(10)),
            Decision::Block(_)
        ));
        // A new snapshot generation is decided afresh.
        snap.set_up(true);
        snap.generation = 8;
        assert_eq!(bound_to(decide_again(p, &snap, &flow(10))), Some(3));
        snap.set_up(false);
        snap.generation = 9;
        assert!(matches!(
            decide_again(p, &snap, &flow(10)),
            Decision::Block(_)
        ));
        // So is anything after a name rule learned an address.
        snap.set_up(true);
        crate::learned::remember("192.0.2.200".parse().unwrap(), 0);
        assert_eq!(bound_to(decide_again(p, &snap, &flow(10))), Some(3));
    }
}
