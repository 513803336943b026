//! `sys::filter` on macOS: the listener confinement `ops` asks for, which macOS cannot
//! give. Pure (no call into macOS), compiled everywhere so that Linux runs its test.
//!
//! Linux confines a wildcard listener with a classic-BPF socket filter (`listen =
//! "interface"`) or the device binding (`listen = "device"`, the filter's fallback);
//! either way the kernel drops what arrives by another link before the socket sees it.
//! macOS has neither:
//!
//! * **No socket filter.** XNU has no `SO_ATTACH_FILTER`/`SO_GET_FILTER` (BPF there
//!   is `/dev/bpf`, a tap, not a per-socket admission program; libc has no
//!   `sock_filter` for Apple targets). Every filter operation here refuses
//!   (`ENOPROTOOPT`) or finds nothing, so the program's own filter options are never
//!   taken over (they fail in the kernel as they would without the shim).
//! * **`IP_BOUND_IF` does not confine arrivals.** Read in apple-oss-distributions/xnu
//!   (not tried on a Mac): `in_pcblookup_hash_locked` (`bsd/netinet/in_pcb.c`) matches
//!   a listener for a segment from any interface, skipping a pcb only for
//!   `inp_restricted_recv` — which looks at `INP_BOUND_IF` solely for interfaces marked
//!   `IFEF_RESTRICTED_RECV`, and then to *admit* — and for NECP client policy
//!   (`necp_socket_is_allowed_to_recv_on_interface`, Network.framework's listeners,
//!   not a plain socket's); `tcp_input` (`bsd/netinet/tcp_input.c`) takes the
//!   listener's `inp_boundifp` as the *scope of its outbound segments* (`ifscope`) and
//!   copies it to the accepted socket (`head_ifscope`). So a SYN from another link
//!   reaches the listener and its SYN-ACK leaves by the bound interface: what the
//!   listener sends stays on that link (verified from the source), what it accepts does
//!   not (verified: no check drops it), and whether such a handshake then fails (no
//!   scoped route back to the peer) or completes depends on the networks — not
//!   settled. A loopback client is matched the same way; whether the scoped reply to
//!   it can leave is not settled either.
//!
//! So neither `listen = "interface"` nor `listen = "device"` can be honoured, and
//! [`LISTENERS_UNCONFINABLE`] makes `ops::confine` refuse such a listener
//! (`ENETUNREACH`, logged) rather than leave it open to every link under a binding
//! that only looks like confinement. `listen = "any"` is unaffected. Not decided here
//! (a policy question): whether a macOS listener should instead get `IP_BOUND_IF` for
//! what it does give — every reply by the chosen interface.

use std::net::IpAddr;

use libc::c_int;

/// Why no listener can be confined on macOS (see the module comment).
pub(crate) const LISTENERS_UNCONFINABLE: Option<&str> = Some(
    "macOS has no socket filter, and IP_BOUND_IF on a listener scopes what it sends, not what it accepts",
);

/// What every filter operation answers: no such option.
const REFUSED: c_int = libc::ENOPROTOOPT;

/// One instruction of a socket filter: macOS has none, so no filter is ever built or
/// read ([`MAX_OWN`] and [`MAX_INSNS`] are 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Insn(());

/// The zero instruction (for buffers, which are empty here).
pub(crate) const ZERO: Insn = Insn(());
/// No filter instructions.
pub(crate) const MAX_INSNS: usize = 0;
/// No filter of the shim's.
pub(crate) const MAX_OWN: usize = 0;
/// No prefixes are checked by a filter (there is none).
pub(crate) const MAX_PREFIXES: usize = 0;

/// The sources a filter would admit from the chosen interface (the Linux filter's
/// parameter; nothing reads it here).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Sources<'a> {
    Any,
    Prefixes(&'a [(IpAddr, u8)]),
}

/// What the shim's filter on a socket says: never found here ([`ours`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ours {
    pub lo: u32,
    pub ifindex: u32,
    pub tail: usize,
}

/// No filter can be built.
pub(crate) fn build(
    _out: &mut [Insn],
    _lo: u32,
    _ifindex: u32,
    _sources: Sources<'_>,
    _program: &[Insn],
) -> Option<usize> {
    None
}

/// No filter is the shim's.
pub(crate) fn ours(_prog: &[Insn]) -> Option<Ours> {
    None
}

/// Nothing of a program's.
pub(crate) fn program_part(_prog: &[Insn], _o: Ours) -> &[Insn] {
    &[]
}

/// Refused: no socket filter.
pub(crate) fn attach(_fd: c_int, _prog: &[Insn]) -> Result<(), c_int> {
    Err(REFUSED)
}

/// Refused: no socket filter.
pub(crate) fn detach(_fd: c_int) -> Result<(), c_int> {
    Err(REFUSED)
}

/// Refused: no socket filter to read.
pub(crate) fn get(_fd: c_int, _buf: &mut [Insn]) -> Result<usize, c_int> {
    Err(REFUSED)
}

/// Refused: no socket filter to measure (so `ops` never finds one of its own).
pub(crate) fn len(_fd: c_int) -> Result<usize, c_int> {
    Err(REFUSED)
}

/// The Linux filter's fallback confinement (the device binding), refused: on macOS a
/// listener's `IP_BOUND_IF` does not confine what it accepts (module comment).
pub(crate) fn bind_index(_fd: c_int, _index: u32) -> Result<(), c_int> {
    Err(REFUSED)
}

/// No filter is locked.
pub(crate) fn locked(_fd: c_int) -> bool {
    false
}

/// The program's filter options: macOS has none (`SO_ATTACH_BPF`, `SO_ATTACH_FILTER`,
/// `SO_DETACH_FILTER`), so `ops::setsockopt_filter` never carries one out.
pub(crate) fn is_attach_ebpf(_name: c_int) -> bool {
    false
}

pub(crate) fn is_attach_classic(_name: c_int) -> bool {
    false
}

pub(crate) fn is_detach(_name: c_int) -> bool {
    false
}

/// A program's filter option value: never made (no filter options here, and no
/// entry point decodes one).
#[derive(Clone, Copy)]
pub(crate) struct ProgramOpt(());

impl ProgramOpt {
    /// The program's option value (never read: macOS has no socket filters).
    pub(crate) fn new(_val: *const libc::c_void, _len: libc::socklen_t) -> Self {
        ProgramOpt(())
    }

    /// Refused: never reached (no filter option is carried out here).
    pub(crate) fn forward(self, _fd: c_int, _name: c_int) -> Result<(), c_int> {
        Err(REFUSED)
    }

    /// Refused: no filter to read.
    pub(crate) fn read_filter(self, _buf: &mut [Insn]) -> Result<usize, c_int> {
        Err(REFUSED)
    }
}

/// Room for filters: none is needed, so none is made.
pub(crate) struct Scratch(());

impl Scratch {
    pub(crate) fn new() -> Option<Scratch> {
        None
    }

    pub(crate) fn parts(&mut self) -> [&mut [Insn]; 3] {
        [&mut [], &mut [], &mut []]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macos_confines_no_listener_and_takes_over_no_filter_option() {
        assert!(LISTENERS_UNCONFINABLE.is_some_and(|w| w.starts_with("macOS")));
        assert_eq!(len(3), Err(REFUSED));
        assert_eq!(attach(3, &[]), Err(REFUSED));
        assert_eq!(bind_index(3, 4), Err(REFUSED));
        assert!(build(&mut [], 1, 4, Sources::Any, &[]).is_none());
        assert!(Scratch::new().is_none());
        for name in [0, 26, 50, 27, 0xffff] {
            assert!(!is_attach_ebpf(name) && !is_attach_classic(name) && !is_detach(name));
        }
    }
}
