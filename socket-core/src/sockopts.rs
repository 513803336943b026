//! The executor of the policy's socket options (`source`, `mark`, `dscp`), over a
//! small trait of socket-option primitives ([`OptionSocket`]): the preload engine
//! implements it with the C library on the program's fd, the supervisor on its
//! `pidfd_getfd` copy. [`apply`] reads what the socket carries, asks
//! [`options`](crate::options) which of the policy's options it gets, sets them in
//! the order both executors have always used (mark, the other path's class, the
//! class, the source), and returns what happened: an [`Outcome`] and typed
//! [`Note`]s, which each side writes to its log with its own prefix
//! ([`Note::text`] is the same words for both).
//!
//! Runs once per socket (`SHIM_OPTS`), before its `connect` or first steered
//! datagram; the caller keeps that test inline and calls this out of line.

use crate::{Current, EADDRNOTAVAIL, EPERM, Path, Sock, mark_refused, options};
use config_schema::{AddrFamily, Applied, IfName, OnMarkDenied, Proto};
use core::fmt;
use core::net::{IpAddr, SocketAddr};

/// The socket-option primitives [`apply`] needs. Errors are errno values.
pub trait OptionSocket {
    /// `IPV6_V6ONLY` (asked of `AF_INET6` sockets only).
    fn v6only(&mut self) -> bool;
    /// `IP_TOS` (IPv4 path) or `IPV6_TCLASS` (IPv6 path) as it stands.
    fn tos(&mut self, path: Path) -> i32;
    fn set_tos(&mut self, path: Path, tos: i32) -> Result<(), i32>;
    /// `SO_MARK` as it stands.
    fn mark(&mut self) -> u32;
    fn set_mark(&mut self, mark: u32) -> Result<(), i32>;
    /// The socket's local address (`getsockname`), if it has one.
    fn local_addr(&mut self) -> Option<SocketAddr>;
    /// Binds the socket to `src`, port 0 (IPv4-mapped on an `AF_INET6` socket,
    /// `v6_socket`); for TCP (`defer_port`) with `IP_BIND_ADDRESS_NO_PORT` first, so
    /// the port is still chosen at `connect`.
    fn bind_source(&mut self, src: IpAddr, v6_socket: bool, defer_port: bool) -> Result<(), i32>;
}

/// One call's options to set.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// What the executor knows about the socket (its family, transport, and whether
    /// the options were set already).
    pub sock: Sock,
    /// The destination (its path: IPv4 and IPv4-mapped, or native IPv6).
    pub dest: IpAddr,
    /// The decision's options on the chosen interface (`config_schema::applied`).
    pub applied: &'a Applied,
    /// The chosen interface.
    pub ifname: IfName,
    pub on_mark_denied: OnMarkDenied,
    /// A datagram (not a `connect`): an IPv4-mapped one on a dual-stack socket binds
    /// no source.
    pub datagram: bool,
}

/// How [`apply`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The call goes on.
    Done,
    /// The call goes on, and the socket is bound to the source address now
    /// (`SRC_ADDR`: a device binding, not a PKTINFO, steers its datagrams).
    SourceBound,
    /// The call fails with `errno`; nothing has been sent. `retry`: the options were
    /// not applied (the socket's "done" mark must be taken back, so the next call
    /// tries again).
    Refused { errno: i32, retry: bool },
}

/// Why the policy's `source` was not applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotApplied {
    /// An IPv4-mapped datagram on a dual-stack socket.
    MappedOnDualStack,
    /// An earlier datagram gave the socket a port.
    GivenPort,
    /// The socket has a local address already.
    HasLocal,
}

/// What [`apply`] did or found, one log line each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Note {
    /// The configured source is not an address of the interface (the decision said
    /// so, or the bind found it gone since the snapshot).
    SourceMissing {
        src: IpAddr,
        ifname: IfName,
    },
    Mark(u32),
    /// `SO_MARK` could not be set; `refused`: the call fails (`on_mark_denied =
    /// "block"`).
    MarkFailed {
        mark: u32,
        err: i32,
        refused: bool,
    },
    /// The program marked the socket itself.
    MarkOwn(u32),
    /// The other path's class could not be set (best effort).
    TosOtherFailed {
        dscp: i32,
        err: i32,
    },
    Dscp(i32),
    DscpFailed {
        dscp: i32,
        err: i32,
    },
    /// The program set its own TOS / traffic class.
    DscpOwn,
    Source(IpAddr),
    SourceFailed {
        src: IpAddr,
        err: i32,
    },
    SourceNotApplied {
        src: IpAddr,
        why: NotApplied,
    },
}

impl Note {
    /// A warning (else an info line).
    pub fn warn(&self) -> bool {
        match self {
            Note::Mark(_) | Note::MarkOwn(_) | Note::Dscp(_) | Note::DscpOwn | Note::Source(_) => {
                false
            }
            Note::SourceNotApplied { why, .. } => *why != NotApplied::HasLocal,
            _ => true,
        }
    }

    /// The line's words, after the executor's prefix (`connect 1.2.3.4:80: `);
    /// `errno` writes an errno the executor's way.
    pub fn text<D: fmt::Display>(&self, errno: impl Fn(i32) -> D) -> impl fmt::Display {
        NoteText { note: *self, errno }
    }
}

struct NoteText<F> {
    note: Note,
    errno: F,
}

impl<D: fmt::Display, F: Fn(i32) -> D> fmt::Display for NoteText<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.errno;
        match self.note {
            Note::SourceMissing { src, ifname } => write!(
                f,
                "source {src} is not an address of {ifname} now; the kernel chooses the source"
            ),
            Note::Mark(mark) => write!(f, "mark {mark:#x}"),
            Note::MarkFailed { mark, err, refused } => write!(
                f,
                "mark {mark:#x} {} ({}); {}",
                if err == EPERM {
                    "needs CAP_NET_ADMIN (or CAP_NET_RAW), which this process lacks"
                } else {
                    "cannot be set"
                },
                e(err),
                if refused {
                    "refusing (on_mark_denied = \"block\")"
                } else {
                    "going on without the mark (on_mark_denied = \"continue\")"
                }
            ),
            Note::MarkOwn(mark) => write!(
                f,
                "the program marked the socket itself ({mark:#x}); mark left alone"
            ),
            Note::TosOtherFailed { dscp, err } => write!(
                f,
                "cannot set dscp {dscp} for the socket's other family ({})",
                e(err)
            ),
            Note::Dscp(dscp) => write!(f, "dscp {dscp}"),
            Note::DscpFailed { dscp, err } => write!(
                f,
                "cannot set dscp {dscp} ({}); sent with the socket's class",
                e(err)
            ),
            Note::DscpOwn => {
                f.write_str("the program set its own TOS/traffic class; dscp left alone")
            }
            Note::Source(src) => write!(f, "source {src}"),
            Note::SourceFailed { src, err } => {
                write!(f, "cannot bind the source {src} ({}); refusing", e(err))
            }
            Note::SourceNotApplied { src, why } => match why {
                NotApplied::MappedOnDualStack => write!(
                    f,
                    "source {src} not applied: an IPv4-mapped datagram on a dual-stack socket (IPV6_V6ONLY off), which a bound IPv4 source would keep from IPv6; the kernel chooses the source"
                ),
                NotApplied::GivenPort => write!(
                    f,
                    "source {src} not applied: the socket was given a port by an earlier datagram and can no longer be bound to an address; the kernel chooses the source"
                ),
                NotApplied::HasLocal => write!(
                    f,
                    "the socket has a local address already; source {src} not applied"
                ),
            },
        }
    }
}

/// The most notes one [`apply`] makes (source missing, mark, other class, class,
/// source).
const MAX_NOTES: usize = 6;

/// The notes of one [`apply`], in order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Notes {
    list: [Option<Note>; MAX_NOTES],
    n: usize,
}

impl Notes {
    fn push(&mut self, note: Note) {
        if self.n < MAX_NOTES {
            self.list[self.n] = Some(note);
            self.n += 1;
        }
    }
    pub fn iter(&self) -> impl Iterator<Item = Note> + '_ {
        self.list[..self.n].iter().flatten().copied()
    }
}

/// What [`apply`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    pub outcome: Outcome,
    pub notes: Notes,
    /// The interface snapshot is older than the addresses (a source gone since it):
    /// read it again.
    pub refresh: bool,
}

/// Sets the policy's options on a socket steered to `r.ifname` (see the module
/// doc). The caller marks the socket as done (`SHIM_OPTS`) before, and takes the mark
/// back when the outcome says `retry`.
pub fn apply(s: &mut impl OptionSocket, r: &Request<'_>) -> Report {
    let a = r.applied;
    let mut rep = Report {
        outcome: Outcome::Done,
        notes: Notes::default(),
        refresh: false,
    };
    if let Some(src) = a.source_missing {
        rep.notes.push(Note::SourceMissing {
            src,
            ifname: r.ifname,
        });
    }
    let v6_socket = r.sock.family() == Some(AddrFamily::V6);
    let path = if v6_socket && r.dest.to_canonical().is_ipv6() {
        Path::V6
    } else {
        Path::V4
    };
    // Both paths' options on an AF_INET6 socket that also carries IPv4-mapped traffic.
    let dual_stack = v6_socket && !s.v6only();
    let local = a.source.and_then(|_| s.local_addr());
    let now = Current {
        tos: if a.dscp.is_some() { s.tos(path) } else { 0 },
        tos_other: (a.dscp.is_some() && dual_stack).then(|| s.tos(path.other())),
        locally_bound: local.is_some_and(|l| !l.ip().is_unspecified() || l.port() != 0),
        mark: if a.mark.is_some() { s.mark() } else { 0 },
        mapped_on_dual_stack: dual_stack && r.datagram && path == Path::V4,
    };
    let plan = options(r.sock, path, a, now);
    if let Some(mark) = plan.mark {
        match s.set_mark(mark) {
            Ok(()) => rep.notes.push(Note::Mark(mark)),
            Err(err) => {
                let refused = mark_refused(r.on_mark_denied);
                rep.notes.push(Note::MarkFailed {
                    mark,
                    err,
                    refused: refused.is_some(),
                });
                if let Some(errno) = refused {
                    rep.outcome = Outcome::Refused {
                        errno: if err == EPERM { errno } else { err },
                        retry: true,
                    };
                    return rep;
                }
            }
        }
    }
    if a.mark.is_some() && plan.mark.is_none() {
        rep.notes.push(Note::MarkOwn(now.mark));
    }
    if let Some((p, tos)) = plan.tos_other {
        // The other path's class: best effort (this call's datagrams do not take it).
        if let Err(err) = s.set_tos(p, tos) {
            rep.notes.push(Note::TosOtherFailed {
                dscp: tos >> 2,
                err,
            });
        }
    }
    if let Some((p, tos)) = plan.tos {
        rep.notes.push(match s.set_tos(p, tos) {
            Ok(()) => Note::Dscp(tos >> 2),
            Err(err) => Note::DscpFailed {
                dscp: tos >> 2,
                err,
            },
        });
    } else if a.dscp.is_some_and(|d| d != 0) {
        rep.notes.push(Note::DscpOwn);
    }
    if let Some(src) = plan.source {
        match s.bind_source(src, v6_socket, r.sock.proto() == Proto::Tcp) {
            Ok(()) => {
                rep.notes.push(Note::Source(src));
                rep.outcome = Outcome::SourceBound;
            }
            Err(EADDRNOTAVAIL) => {
                // Gone since the snapshot (a DHCP change within its second): as when
                // the decision finds it missing, the kernel chooses the source.
                rep.refresh = true;
                rep.notes.push(Note::SourceMissing {
                    src,
                    ifname: r.ifname,
                });
            }
            Err(err) => {
                rep.notes.push(Note::SourceFailed { src, err });
                rep.outcome = Outcome::Refused {
                    errno: err,
                    retry: false,
                };
            }
        }
    } else if let Some(src) = a.source {
        let why = if now.mapped_on_dual_stack {
            NotApplied::MappedOnDualStack
        } else if local.is_some_and(|l| l.ip().is_unspecified()) {
            // The kernel gave the socket a port at an earlier datagram (to loopback,
            // say): a socket with a port cannot be bound to an address any more.
            NotApplied::GivenPort
        } else {
            NotApplied::HasLocal
        };
        rep.notes.push(Note::SourceNotApplied { src, why });
    }
    rep
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::{INET, SHIM_OPTS, TCP, UDP, V6, VALID};
    use core::fmt::Write;

    const EACCES: i32 = 13;

    /// A socket as the kernel would hold it, recording what was set.
    #[derive(Default)]
    struct Fake {
        v6only: bool,
        tos: [i32; 2],
        mark: u32,
        local: Option<SocketAddr>,
        mark_err: Option<i32>,
        tos_err: Option<i32>,
        bind_err: Option<i32>,
        bound: Option<(IpAddr, bool, bool)>,
        sets: usize,
    }

    fn at(p: Path) -> usize {
        match p {
            Path::V4 => 0,
            Path::V6 => 1,
        }
    }

    impl OptionSocket for Fake {
        fn v6only(&mut self) -> bool {
            self.v6only
        }
        fn tos(&mut self, path: Path) -> i32 {
            self.tos[at(path)]
        }
        fn set_tos(&mut self, path: Path, tos: i32) -> Result<(), i32> {
            self.sets += 1;
            match self.tos_err {
                Some(e) => Err(e),
                None => {
                    self.tos[at(path)] = tos;
                    Ok(())
                }
            }
        }
        fn mark(&mut self) -> u32 {
            self.mark
        }
        fn set_mark(&mut self, mark: u32) -> Result<(), i32> {
            self.sets += 1;
            match self.mark_err {
                Some(e) => Err(e),
                None => {
                    self.mark = mark;
                    Ok(())
                }
            }
        }
        fn local_addr(&mut self) -> Option<SocketAddr> {
            self.local
        }
        fn bind_source(&mut self, src: IpAddr, v6: bool, defer: bool) -> Result<(), i32> {
            self.sets += 1;
            match self.bind_err {
                Some(e) => Err(e),
                None => {
                    self.bound = Some((src, v6, defer));
                    Ok(())
                }
            }
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn all() -> Applied {
        Applied {
            source: Some(ip("198.51.100.67")),
            source_missing: None,
            mark: Some(0x10),
            dscp: Some(46),
        }
    }

    fn req<'a>(sock: Sock, a: &'a Applied, datagram: bool) -> Request<'a> {
        Request {
            sock,
            dest: ip("203.0.113.10"),
            applied: a,
            ifname: IfName::new("wlan0").unwrap(),
            on_mark_denied: OnMarkDenied::Block,
            datagram,
        }
    }

    /// Every note's text, one a line, errnos by number.
    fn texts(r: &Report) -> std::string::String {
        let mut s = std::string::String::new();
        for n in r.notes.iter() {
            let _ = writeln!(s, "{}{}", if n.warn() { "W " } else { "I " }, n.text(|e| e));
        }
        s
    }

    #[test]
    fn a_steered_tcp_connect_gets_mark_class_and_source_and_says_so() {
        let tcp = Sock::new(VALID | INET | TCP, 0);
        let a = all();
        let mut s = Fake::default();
        let r = apply(&mut s, &req(tcp, &a, false));
        assert_eq!(r.outcome, Outcome::SourceBound);
        assert_eq!((s.mark, s.tos[0]), (0x10, 46 << 2));
        assert_eq!(
            s.bound,
            Some((ip("198.51.100.67"), false, true)),
            "TCP defers the port"
        );
        assert_eq!(
            texts(&r).as_str(),
            "I mark 0x10\nI dscp 46\nI source 198.51.100.67\n"
        );
        assert!(!r.refresh);
    }

    #[test]
    fn the_programs_own_mark_class_and_address_win() {
        let udp = Sock::new(VALID | INET | UDP, 0);
        let a = all();
        let mut s = Fake {
            mark: 0x20,
            tos: [0x28, 0],
            local: Some("198.51.100.66:5000".parse().unwrap()),
            ..Fake::default()
        };
        let r = apply(&mut s, &req(udp, &a, true));
        assert_eq!(r.outcome, Outcome::Done);
        assert_eq!(s.sets, 0, "nothing set");
        assert_eq!(
            texts(&r).as_str(),
            "I the program marked the socket itself (0x20); mark left alone\n\
             I the program set its own TOS/traffic class; dscp left alone\n\
             I the socket has a local address already; source 198.51.100.67 not applied\n"
        );
        // Given a port by an earlier datagram: a warning that says why.
        let mut s = Fake {
            local: Some("0.0.0.0:5000".parse().unwrap()),
            ..Fake::default()
        };
        let only_source = Applied {
            source: a.source,
            ..Applied::default()
        };
        let r = apply(&mut s, &req(udp, &only_source, true));
        assert!(texts(&r).as_str().starts_with(
            "W source 198.51.100.67 not applied: the socket was given a port by an earlier datagram"
        ));
    }

    #[test]
    fn a_mark_refused_blocks_and_is_tried_again_or_goes_on_as_the_policy_says() {
        let tcp = Sock::new(VALID | INET | TCP, 0);
        let a = all();
        let mut s = Fake {
            mark_err: Some(EPERM),
            ..Fake::default()
        };
        let r = apply(&mut s, &req(tcp, &a, false));
        assert_eq!(
            r.outcome,
            Outcome::Refused {
                errno: EPERM,
                retry: true
            }
        );
        assert_eq!(s.tos[0], 0, "nothing after the mark");
        assert_eq!(
            texts(&r).as_str(),
            "W mark 0x10 needs CAP_NET_ADMIN (or CAP_NET_RAW), which this process lacks (1); refusing (on_mark_denied = \"block\")\n"
        );
        // Another errno is the call's own.
        let mut s = Fake {
            mark_err: Some(EACCES),
            ..Fake::default()
        };
        let r = apply(&mut s, &req(tcp, &a, false));
        assert_eq!(
            r.outcome,
            Outcome::Refused {
                errno: EACCES,
                retry: true
            }
        );
        // on_mark_denied = "continue": the rest is set.
        let mut s = Fake {
            mark_err: Some(EPERM),
            ..Fake::default()
        };
        let go_on = Request {
            on_mark_denied: OnMarkDenied::Continue,
            ..req(tcp, &a, false)
        };
        let r = apply(&mut s, &go_on);
        assert_eq!(r.outcome, Outcome::SourceBound);
        assert!(texts(&r).as_str().contains("going on without the mark"));
        assert_eq!(s.tos[0], 46 << 2);
    }

    #[test]
    fn a_source_gone_since_the_snapshot_is_left_to_the_kernel_and_another_bind_error_refuses() {
        let udp = Sock::new(VALID | INET | UDP, 0);
        let a = Applied {
            source: Some(ip("198.51.100.67")),
            ..Applied::default()
        };
        let mut s = Fake {
            bind_err: Some(EADDRNOTAVAIL),
            ..Fake::default()
        };
        let r = apply(&mut s, &req(udp, &a, true));
        assert_eq!(r.outcome, Outcome::Done);
        assert!(r.refresh);
        assert_eq!(
            texts(&r).as_str(),
            "W source 198.51.100.67 is not an address of wlan0 now; the kernel chooses the source\n"
        );
        let mut s = Fake {
            bind_err: Some(EACCES),
            ..Fake::default()
        };
        let r = apply(&mut s, &req(udp, &a, true));
        assert_eq!(
            r.outcome,
            Outcome::Refused {
                errno: EACCES,
                retry: false
            }
        );
        assert_eq!(
            texts(&r).as_str(),
            "W cannot bind the source 198.51.100.67 (13); refusing\n"
        );
        // The decision found it missing: said first, nothing bound.
        let missing = Applied {
            source_missing: Some(ip("198.51.100.2")),
            ..Applied::default()
        };
        let mut s = Fake::default();
        let r = apply(&mut s, &req(udp, &missing, true));
        assert_eq!(r.outcome, Outcome::Done);
        assert_eq!(
            texts(&r).as_str(),
            "W source 198.51.100.2 is not an address of wlan0 now; the kernel chooses the source\n"
        );
    }

    #[test]
    fn a_dual_stack_socket_gets_both_classes_and_no_source_for_a_mapped_datagram() {
        let udp6 = Sock::new(VALID | INET | V6 | UDP, 0);
        let a = Applied {
            source: Some(ip("198.51.100.67")),
            dscp: Some(46),
            ..Applied::default()
        };
        let mut s = Fake::default();
        let mapped = Request {
            dest: ip("::ffff:203.0.113.10"),
            ..req(udp6, &a, true)
        };
        let r = apply(&mut s, &mapped);
        assert_eq!(r.outcome, Outcome::Done);
        assert_eq!(s.tos, [46 << 2, 46 << 2]);
        assert!(s.bound.is_none());
        assert!(
            texts(&r)
                .as_str()
                .contains("not applied: an IPv4-mapped datagram")
        );
        // The other path's class failing is a warning; the call goes on.
        let mut s = Fake {
            tos_err: Some(EACCES),
            ..Fake::default()
        };
        let r = apply(&mut s, &mapped);
        assert_eq!(r.outcome, Outcome::Done);
        assert!(texts(&r).as_str().starts_with(
            "W cannot set dscp 46 for the socket's other family (13)\nW cannot set dscp 46 (13); sent with the socket's class\n"
        ));
        // IPv6-only: one path, and the source (IPv4-mapped binding is the
        // executor's: v6_socket says so).
        let mut s = Fake {
            v6only: true,
            ..Fake::default()
        };
        let native = Request {
            dest: ip("2001:db8::10"),
            ..req(udp6, &a, true)
        };
        let r = apply(&mut s, &native);
        assert_eq!(r.outcome, Outcome::SourceBound);
        assert_eq!(s.tos, [0, 46 << 2]);
        assert_eq!(s.bound, Some((ip("198.51.100.67"), true, false)));
    }

    #[test]
    fn a_socket_whose_options_were_set_gets_nothing_more() {
        let done = Sock::new(VALID | INET | TCP | SHIM_OPTS, 0);
        let a = all();
        let mut s = Fake::default();
        let r = apply(&mut s, &req(done, &a, false));
        assert_eq!(r.outcome, Outcome::Done);
        assert_eq!(s.sets, 0);
    }
}
