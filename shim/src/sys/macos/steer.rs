//! What each socket primitive the shared core (`ops`, over socket-core's decisions)
//! asks of `sys` becomes on macOS: an option of XNU's, the per-datagram control
//! message, or a refusal with its reason. One table, pure, so that Linux runs its
//! tests; `ffi::sock` executes it under the Linux primitives' names and signatures
//! (`bind_to_interface`, `set_unicast_if_on`, `set_multicast_if`, `mark`, …), so the
//! decision and socket-core logic stay the one shared copy.
//!
//! From XNU's source (`bsd/netinet/ip_output.c`, `in_pcb.c`, `udp_usrreq.c`,
//! `bsd/netinet6/ip6_output.c`, `in6_src.c`), not tried on a Mac:
//! * `SO_BINDTOIFINDEX` (the connect-time binding) →
//!   `IP_BOUND_IF` on an `AF_INET` socket, `IPV6_BOUND_IF` on an `AF_INET6` one. Both
//!   set the one `inp_boundifp` of the socket's pcb (`inp_bindif`), which the IPv4
//!   output path of an `AF_INET6` socket (IPv4-mapped destinations) reads too, so the
//!   socket's family picks the option, not the destination's.
//! * `IP_UNICAST_IF` / `IPV6_UNICAST_IF` (a socket's egress for datagrams naming no
//!   interface, the core's `Promote`) → **refused**: macOS's only socket-wide
//!   counterpart is `IP_BOUND_IF`, and whether it also narrows what the socket
//!   receives is not settled from the source (README, "Steering on macOS"); the core
//!   then sends each datagram with a PKTINFO, which XNU honours over any binding.
//! * the multicast interface → `IP_MULTICAST_IFINDEX` (by index; Linux's
//!   `IP_MULTICAST_IF` with an `ip_mreqn`) / `IPV6_MULTICAST_IF`.
//! * `SO_MARK` → refused: macOS has no packet mark.
//! * `IP_BIND_ADDRESS_NO_PORT` → skipped: no such option; a source binding picks its
//!   port at `bind`.
//! * the classic-BPF listener filter (`SO_ATTACH_FILTER`, `listen = "interface"`) →
//!   refused: no socket filters; and `IP_BOUND_IF` does not confine what a listener
//!   accepts (`sys/macos/filter.rs`), so no listener is confined: `ops` refuses one
//!   the policy would confine.
//! * `MSG_FASTOPEN` → refused: macOS's Fast Open is `connectx` with
//!   `CONNECT_DATA_IDEMPOTENT`, not a `sendto` flag (not written); [`is_fast_open`]
//!   is false, so no send takes the core's Fast Open path.
//! * the per-datagram interface → `IP_PKTINFO` / `IPV6_PKTINFO` in `sendmsg`.

use mifshim_socket_core::Path;

use super::wire::{IP_PKTINFO, IPPROTO_IP, IPPROTO_IPV6, IPV6_PKTINFO};

/// `IP_TOS` (`<netinet/in.h>`).
pub(crate) const IP_TOS: i32 = 3;
/// `IP_BOUND_IF` (`<netinet/in.h>`, private in some SDKs, public in libc).
pub(crate) const IP_BOUND_IF: i32 = 25;
/// `IP_MULTICAST_IFINDEX` (`<netinet/in.h>`).
pub(crate) const IP_MULTICAST_IFINDEX: i32 = 66;
/// `IPV6_MULTICAST_IF` (`<netinet6/in6.h>`).
pub(crate) const IPV6_MULTICAST_IF: i32 = 9;
/// `IPV6_V6ONLY`.
pub(crate) const IPV6_V6ONLY: i32 = 27;
/// `IPV6_TCLASS`.
pub(crate) const IPV6_TCLASS: i32 = 36;
/// `IPV6_BOUND_IF` (`<netinet6/in6.h>`).
pub(crate) const IPV6_BOUND_IF: i32 = 125;

/// A socket primitive the shared core asks `sys` for (named after Linux's option).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Primitive {
    /// `SO_BINDTOIFINDEX`: the socket's interface (connect time, listeners), and its
    /// getter.
    BindInterface,
    /// `IP_UNICAST_IF` / `IPV6_UNICAST_IF` on a path.
    UnicastIf(Path),
    /// `IP_MULTICAST_IF` / `IPV6_MULTICAST_IF` by the socket's family.
    MulticastIf,
    /// `SO_MARK`.
    Mark,
    /// `IP_TOS` / `IPV6_TCLASS` on a path.
    Tos(Path),
    /// `IPV6_V6ONLY`.
    V6Only,
    /// `IP_BIND_ADDRESS_NO_PORT`.
    BindNoPort,
    /// `SO_ATTACH_FILTER`: the listener's admission filter.
    ListenerFilter,
    /// `MSG_FASTOPEN`.
    FastOpen,
    /// `IP_PKTINFO` / `IPV6_PKTINFO` in `sendmsg`, on a path.
    Pktinfo(Path),
}

/// Why macOS has no counterpart (each maps to `ENOPROTOOPT` in `ffi::sock`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `IP_BOUND_IF` is the only socket-wide egress option and may scope reception:
    /// PKTINFO per datagram instead.
    UnicastNeedsPktinfo,
    /// No `SO_MARK`.
    NoMark,
    /// Not needed: the port is chosen at `bind`.
    NoDeferredPort,
    /// No classic-BPF socket filters (and `IP_BOUND_IF` does not confine a listener).
    NoSocketFilter,
    /// Fast Open is `connectx`'s, not a send flag.
    FastOpenIsConnectx,
}

impl Refusal {
    /// The line the engine logs.
    pub(crate) fn why(self) -> &'static str {
        match self {
            Refusal::UnicastNeedsPktinfo => {
                "macOS has no IP_UNICAST_IF (IP_BOUND_IF may also scope what the socket receives): a PKTINFO per datagram"
            }
            Refusal::NoMark => "macOS has no SO_MARK",
            Refusal::NoDeferredPort => {
                "macOS has no IP_BIND_ADDRESS_NO_PORT: the port is chosen at bind"
            }
            Refusal::NoSocketFilter => "macOS has no classic-BPF socket filter",
            Refusal::FastOpenIsConnectx => {
                "macOS's TCP Fast Open is connectx(CONNECT_DATA_IDEMPOTENT), not MSG_FASTOPEN"
            }
        }
    }
}

/// What a primitive is on macOS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Counterpart {
    /// A socket option `(level, name)` taking (or giving) an `int`/`u32`.
    Opt { level: i32, name: i32 },
    /// A control message `(level, type)` of one `sendmsg`.
    Cmsg { level: i32, kind: i32 },
    /// None.
    Refused(Refusal),
}

/// The counterpart of `p` on a socket of family `v6_socket` (`AF_INET6`).
pub(crate) fn counterpart(p: Primitive, v6_socket: bool) -> Counterpart {
    let opt = |level, name| Counterpart::Opt { level, name };
    match p {
        Primitive::BindInterface if v6_socket => opt(IPPROTO_IPV6, IPV6_BOUND_IF),
        Primitive::BindInterface => opt(IPPROTO_IP, IP_BOUND_IF),
        Primitive::UnicastIf(_) => Counterpart::Refused(Refusal::UnicastNeedsPktinfo),
        Primitive::MulticastIf if v6_socket => opt(IPPROTO_IPV6, IPV6_MULTICAST_IF),
        Primitive::MulticastIf => opt(IPPROTO_IP, IP_MULTICAST_IFINDEX),
        Primitive::Mark => Counterpart::Refused(Refusal::NoMark),
        Primitive::Tos(Path::V4) => opt(IPPROTO_IP, IP_TOS),
        Primitive::Tos(Path::V6) => opt(IPPROTO_IPV6, IPV6_TCLASS),
        Primitive::V6Only => opt(IPPROTO_IPV6, IPV6_V6ONLY),
        Primitive::BindNoPort => Counterpart::Refused(Refusal::NoDeferredPort),
        Primitive::ListenerFilter => Counterpart::Refused(Refusal::NoSocketFilter),
        Primitive::FastOpen => Counterpart::Refused(Refusal::FastOpenIsConnectx),
        Primitive::Pktinfo(Path::V4) => Counterpart::Cmsg {
            level: IPPROTO_IP,
            kind: IP_PKTINFO,
        },
        Primitive::Pktinfo(Path::V6) => Counterpart::Cmsg {
            level: IPPROTO_IPV6,
            kind: IPV6_PKTINFO,
        },
    }
}

// ---------------------------------------------------------------------------------
// What the program's own calls mean, as the core books them (`ops::setsockopt_done`,
// `ops::setsockopt_rewrite`, `ops::send`; Linux's are in `sys/linux/mod.rs`)
// ---------------------------------------------------------------------------------

/// `IP_MULTICAST_IF` (`<netinet/in.h>`: an `in_addr`, or XNU's `ip_mreqn`).
pub(crate) const IP_MULTICAST_IF: i32 = 9;

/// Whether a send's `flags` ask for TCP Fast Open: never on macOS
/// ([`Refusal::FastOpenIsConnectx`]), so no send takes the core's Fast Open path.
pub(crate) fn is_fast_open(_flags: i32) -> bool {
    false
}

/// Whether `setsockopt(level, name)` is the program binding the socket to an
/// interface (or dropping that binding): `IP_BOUND_IF` or `IPV6_BOUND_IF` (either
/// sets the pcb's one `inp_boundifp`, `inp_bindif`), Linux's `SO_BINDTODEVICE` /
/// `SO_BINDTOIFINDEX`.
pub(crate) fn binds_device(level: i32, name: i32) -> bool {
    matches!(
        (level, name),
        (IPPROTO_IP, IP_BOUND_IF) | (IPPROTO_IPV6, IPV6_BOUND_IF)
    )
}

/// Whether a `setsockopt` value drops the socket's interface binding: `IP_BOUND_IF`
/// or `IPV6_BOUND_IF` of index 0 (XNU's `inp_bindif`: "A zero interface scope value
/// indicates an unbind", clearing `INP_BOUND_IF`; read in the source, not tried). A
/// value shorter than an `int` is the kernel's to refuse.
pub(crate) fn unbinds_device(level: i32, name: i32, val: &[u8]) -> bool {
    binds_device(level, name)
        && val
            .first_chunk::<4>()
            .is_some_and(|i| i32::from_ne_bytes(*i) == 0)
}

/// The path whose unicast interface `setsockopt(level, name)` sets: none on macOS (no
/// `IP_UNICAST_IF`/`IPV6_UNICAST_IF`; the shim never sets one either,
/// [`Refusal::UnicastNeedsPktinfo`]).
pub(crate) fn unicast_if_option(_level: i32, _name: i32) -> Option<Path> {
    None
}

/// Whether `setsockopt(level, name)` chooses the socket's multicast interface:
/// `IP_MULTICAST_IF` (an address), `IP_MULTICAST_IFINDEX` (an index) or
/// `IPV6_MULTICAST_IF` (an index); what each value chooses is read as XNU reads it
/// (`membership::XNU`'s `multicast_if_chooses`).
pub(crate) fn multicast_if_option(level: i32, name: i32) -> bool {
    matches!(
        (level, name),
        (IPPROTO_IP, IP_MULTICAST_IF)
            | (IPPROTO_IP, IP_MULTICAST_IFINDEX)
            | (IPPROTO_IPV6, IPV6_MULTICAST_IF)
    )
}

/// `SOCK_STREAM` / `SOCK_DGRAM` (the same numbers on macOS and Linux).
pub(crate) const SOCK_STREAM: i32 = 1;
pub(crate) const SOCK_DGRAM: i32 = 2;

/// The protocol of an INET socket of type `sotype`, for the probe of a socket the
/// shim did not see created (macOS has no `SO_PROTOCOL`): TCP for a stream, UDP for
/// a datagram socket, 0 (unknown: raw, ICMP) otherwise.
pub(crate) fn protocol_of(sotype: i32) -> i32 {
    match sotype {
        SOCK_STREAM => 6,
        SOCK_DGRAM => 17,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_time_binding_is_bound_if_by_the_sockets_family() {
        assert_eq!(
            counterpart(Primitive::BindInterface, false),
            Counterpart::Opt {
                level: IPPROTO_IP,
                name: IP_BOUND_IF
            }
        );
        // An AF_INET6 socket's IPv4-mapped traffic reads the same inp_boundifp.
        assert_eq!(
            counterpart(Primitive::BindInterface, true),
            Counterpart::Opt {
                level: IPPROTO_IPV6,
                name: IPV6_BOUND_IF
            }
        );
    }

    #[test]
    fn per_datagram_steering_is_pktinfo_and_promotion_is_refused() {
        assert_eq!(
            counterpart(Primitive::Pktinfo(Path::V4), true),
            Counterpart::Cmsg {
                level: IPPROTO_IP,
                kind: IP_PKTINFO
            }
        );
        assert_eq!(
            counterpart(Primitive::Pktinfo(Path::V6), true),
            Counterpart::Cmsg {
                level: IPPROTO_IPV6,
                kind: IPV6_PKTINFO
            }
        );
        for path in [Path::V4, Path::V6] {
            for v6 in [false, true] {
                assert_eq!(
                    counterpart(Primitive::UnicastIf(path), v6),
                    Counterpart::Refused(Refusal::UnicastNeedsPktinfo)
                );
            }
        }
    }

    #[test]
    fn multicast_interface_is_by_index_on_both_families() {
        assert_eq!(
            counterpart(Primitive::MulticastIf, false),
            Counterpart::Opt {
                level: IPPROTO_IP,
                name: IP_MULTICAST_IFINDEX
            }
        );
        assert_eq!(
            counterpart(Primitive::MulticastIf, true),
            Counterpart::Opt {
                level: IPPROTO_IPV6,
                name: IPV6_MULTICAST_IF
            }
        );
    }

    #[test]
    fn what_macos_lacks_is_refused_with_its_reason() {
        for (p, r) in [
            (Primitive::Mark, Refusal::NoMark),
            (Primitive::BindNoPort, Refusal::NoDeferredPort),
            (Primitive::ListenerFilter, Refusal::NoSocketFilter),
            (Primitive::FastOpen, Refusal::FastOpenIsConnectx),
        ] {
            assert_eq!(counterpart(p, false), Counterpart::Refused(r));
            assert_eq!(counterpart(p, true), Counterpart::Refused(r));
            assert!(r.why().starts_with("macOS"), "{}", r.why());
        }
    }

    #[test]
    fn tos_and_v6only_keep_their_paths() {
        assert_eq!(
            counterpart(Primitive::Tos(Path::V4), true),
            Counterpart::Opt {
                level: IPPROTO_IP,
                name: IP_TOS
            }
        );
        assert_eq!(
            counterpart(Primitive::Tos(Path::V6), true),
            Counterpart::Opt {
                level: IPPROTO_IPV6,
                name: IPV6_TCLASS
            }
        );
        assert_eq!(
            counterpart(Primitive::V6Only, true),
            Counterpart::Opt {
                level: IPPROTO_IPV6,
                name: IPV6_V6ONLY
            }
        );
    }

    #[test]
    fn the_programs_own_interface_choices_are_macos_options() {
        let i = |v: i32| v.to_ne_bytes();
        assert!(binds_device(IPPROTO_IP, IP_BOUND_IF));
        assert!(binds_device(IPPROTO_IPV6, IPV6_BOUND_IF));
        // Linux's SO_BINDTODEVICE / SO_BINDTOIFINDEX numbers mean nothing here.
        assert!(!binds_device(1, 25) && !binds_device(0xffff, 25));
        assert!(!binds_device(IPPROTO_IPV6, IP_BOUND_IF));
        assert!(unbinds_device(IPPROTO_IP, IP_BOUND_IF, &i(0)));
        assert!(unbinds_device(IPPROTO_IPV6, IPV6_BOUND_IF, &i(0)));
        assert!(!unbinds_device(IPPROTO_IP, IP_BOUND_IF, &i(4)));
        assert!(!unbinds_device(IPPROTO_IP, IP_BOUND_IF, &[0, 0]));
        assert!(!unbinds_device(IPPROTO_IP, IP_TOS, &i(0)));
        for (level, name) in [
            (IPPROTO_IP, IP_MULTICAST_IF),
            (IPPROTO_IP, IP_MULTICAST_IFINDEX),
            (IPPROTO_IPV6, IPV6_MULTICAST_IF),
        ] {
            assert!(multicast_if_option(level, name));
            assert!(!binds_device(level, name));
        }
        assert!(!multicast_if_option(IPPROTO_IPV6, IP_MULTICAST_IFINDEX));
        for name in [0, 25, 31, 50, 125] {
            assert_eq!(unicast_if_option(IPPROTO_IP, name), None);
            assert_eq!(unicast_if_option(IPPROTO_IPV6, name), None);
        }
        assert!(!is_fast_open(-1));
    }

    #[test]
    fn a_probed_sockets_protocol_comes_from_its_type() {
        assert_eq!(protocol_of(SOCK_STREAM), 6);
        assert_eq!(protocol_of(SOCK_DGRAM), 17);
        assert_eq!(protocol_of(3), 0);
    }
}
