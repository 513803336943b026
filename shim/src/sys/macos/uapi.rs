//! What XNU does with the arguments the engine's macOS entry points copy out of the
//! program, byte by byte and with macOS's numbers, so that Linux runs the tests: the
//! `sys::uapi` of macOS (the Linux one is `sys/linux/uapi.rs`). `ffi::msg` copies the
//! program's memory and hands the bytes to these.
//!
//! * A socket address (`connect`, `bind`, `sendto`, `sendmsg`'s name, `connectx`'s
//!   endpoints) is copied by `getsockaddr` (`bsd/kern/uipc_syscalls.c`): a length above
//!   `SOCK_MAXADDRLEN` (255) is `ENAMETOOLONG`, one shorter than the `sa_len` and
//!   `sa_family` bytes `EINVAL`, and the copy's `sa_len` is then set to the length
//!   given, whatever the program wrote there. So the address decided on is read with
//!   that length ([`decode`]).
//! * `connectx(2)`'s endpoints are a `sa_endpoints_t` (`<sys/socket.h>`):
//!   `{u32 sae_srcif; const sockaddr *sae_srcaddr; socklen_t sae_srcaddrlen; const
//!   sockaddr *sae_dstaddr; socklen_t sae_dstaddrlen}`, 40 bytes on the 64-bit
//!   targets, the pointers at offsets 8 and 24 ([`Endpoints`]).

use std::net::SocketAddr;

use super::wire::{self, Dest};

/// macOS's `EINVAL`.
pub(crate) const EINVAL: i32 = 22;
/// macOS's `ENOBUFS` (Linux's is 105).
pub(crate) const ENOBUFS: i32 = 55;
/// macOS's `ENAMETOOLONG` (Linux's is 36).
pub(crate) const ENAMETOOLONG: i32 = 63;
/// `SOCK_MAXADDRLEN`: the longest socket address XNU copies in.
pub(crate) const SOCK_MAXADDRLEN: usize = 255;
/// `offsetof(struct sockaddr, sa_data)`: the `sa_len` and `sa_family` bytes.
pub(crate) const SA_HEADER: usize = 2;
/// `AF_UNSPEC`.
pub(crate) const AF_UNSPEC: u8 = 0;

/// The kernel's limit for an address argument of `len` bytes (`getsockaddr`): the
/// bytes to copy, or its errno.
pub(crate) fn addr_len(len: u32) -> Result<usize, i32> {
    let n = len as usize;
    if n > SOCK_MAXADDRLEN {
        Err(ENAMETOOLONG)
    } else if n < SA_HEADER {
        Err(EINVAL)
    } else {
        Ok(n)
    }
}

/// The name length of a `sendmsg` message: 0 without a name (a NULL `msg_name`), else
/// the rules of [`addr_len`] (XNU copies the name with `getsockaddr` too).
pub(crate) fn msg_name_len(has_name: bool, len: u32) -> Result<usize, i32> {
    if !has_name {
        return Ok(0);
    }
    addr_len(len)
}

/// How many bytes of an option value the engine reads (`cap` at most). XNU's
/// `socklen_t` length is unsigned and never refused by itself.
pub(crate) fn sockopt_len(len: u32, cap: usize) -> Result<usize, i32> {
    Ok((len as usize).min(cap))
}

/// The INET destination in `b`, the bytes of an address the program passed (their
/// number is the length it gave): `sa_len` is taken to be that length, as the kernel
/// sets it. `None`: another family, or too short for its family's structure. A
/// length longer than the structure still decodes (the engine steers whatever the
/// kernel might take).
pub(crate) fn decode(b: &[u8]) -> Option<Dest> {
    if b.len() < SA_HEADER {
        return None;
    }
    let mut copy = [0u8; wire::SOCKADDR_MAX];
    let n = b.len().min(wire::SOCKADDR_MAX);
    copy[..n].copy_from_slice(&b[..n]);
    copy[0] = b.len().min(SOCK_MAXADDRLEN) as u8;
    let addr = wire::decode_sockaddr(&copy[..n])?;
    let scope_id = match addr {
        SocketAddr::V6(v6) => v6.scope_id(),
        SocketAddr::V4(_) => 0,
    };
    Some(Dest { addr, scope_id })
}

/// Whether `b` is an `AF_UNSPEC` address (`connect`'s "dissolve the association").
pub(crate) fn is_unspec(b: &[u8]) -> bool {
    b.len() >= SA_HEADER && b[1] == AF_UNSPEC
}

/// An `AF_UNSPEC` address of at least `sockaddr_in`'s size read as `AF_INET`: the
/// engine steers it as the IPv4 destination it would be if the kernel took it so
/// (whether XNU does is not settled from the source; steering it changes nothing when
/// the kernel refuses it).
pub(crate) fn decode_unspec_as_inet(b: &[u8]) -> Option<Dest> {
    if b.len() < wire::SOCKADDR_IN_LEN || !is_unspec(b) {
        return None;
    }
    let mut sin = [0u8; wire::SOCKADDR_IN_LEN];
    sin.copy_from_slice(&b[..wire::SOCKADDR_IN_LEN]);
    sin[1] = wire::AF_INET;
    decode(&sin)
}

/// `sizeof(sa_endpoints_t)` on the 64-bit targets.
pub(crate) const SA_ENDPOINTS_LEN: usize = 40;

/// A `sa_endpoints_t` as the program wrote it (its pointers as addresses, not read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Endpoints {
    /// The source interface the program asks for (0: none).
    pub srcif: u32,
    pub srcaddr: usize,
    pub srcaddrlen: u32,
    pub dstaddr: usize,
    pub dstaddrlen: u32,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn ptr_at(b: &[u8], at: usize) -> usize {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(w) as usize
}

impl Endpoints {
    /// Reads the structure's bytes.
    pub(crate) fn read(b: &[u8; SA_ENDPOINTS_LEN]) -> Endpoints {
        Endpoints {
            srcif: u32_at(b, 0),
            srcaddr: ptr_at(b, 8),
            srcaddrlen: u32_at(b, 16),
            dstaddr: ptr_at(b, 24),
            dstaddrlen: u32_at(b, 32),
        }
    }

    /// The structure's bytes with the addresses replaced (the copies the kernel is
    /// handed instead of the program's).
    pub(crate) fn write(&self) -> [u8; SA_ENDPOINTS_LEN] {
        let mut b = [0u8; SA_ENDPOINTS_LEN];
        b[0..4].copy_from_slice(&self.srcif.to_ne_bytes());
        b[8..16].copy_from_slice(&(self.srcaddr as u64).to_ne_bytes());
        b[16..20].copy_from_slice(&self.srcaddrlen.to_ne_bytes());
        b[24..32].copy_from_slice(&(self.dstaddr as u64).to_ne_bytes());
        b[32..36].copy_from_slice(&self.dstaddrlen.to_ne_bytes());
        b
    }
}

/// Whether a `connectx` whose program asked for source interface `srcif` (0: none)
/// may go on a socket the engine left bound to interface `bound` (0: not bound, the
/// destination goes direct): only when they agree, or when one of them says nothing.
/// A source interface other than the one the policy binds would send the connection
/// by another link (`sae_srcif` scopes the connection's route), so it fails closed.
pub(crate) fn srcif_agrees(srcif: u32, bound: u32) -> bool {
    srcif == 0 || bound == 0 || srcif == bound
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_lengths_follow_getsockaddr() {
        assert_eq!(addr_len(16), Ok(16));
        assert_eq!(addr_len(255), Ok(255));
        assert_eq!(addr_len(256), Err(ENAMETOOLONG));
        assert_eq!(addr_len(u32::MAX), Err(ENAMETOOLONG));
        assert_eq!(addr_len(1), Err(EINVAL));
        assert_eq!(addr_len(0), Err(EINVAL));
        assert_eq!(msg_name_len(false, 0), Ok(0));
        assert_eq!(msg_name_len(false, 300), Ok(0));
        assert_eq!(msg_name_len(true, 0), Err(EINVAL));
        assert_eq!(msg_name_len(true, 28), Ok(28));
        assert_eq!(sockopt_len(u32::MAX, 272), Ok(272));
        assert_eq!(sockopt_len(4, 272), Ok(4));
    }

    #[test]
    fn the_length_given_stands_for_sa_len() {
        let a: SocketAddr = "198.51.100.7:443".parse().unwrap();
        let (mut b, n) = wire::encode_sockaddr(&a);
        // The program's own sa_len is ignored: the kernel writes the length given.
        b[0] = 0;
        assert_eq!(decode(&b[..n]).map(|d| d.addr), Some(a));
        // Too short for a sockaddr_in: not an INET destination.
        assert_eq!(decode(&b[..15]), None);
        // Longer than the structure: still the destination.
        let mut long = [0u8; 64];
        long[..n].copy_from_slice(&b[..n]);
        assert_eq!(decode(&long).map(|d| d.addr), Some(a));
        let v6: SocketAddr = "[fe80::1%7]:53".parse().unwrap();
        let (b6, n6) = wire::encode_sockaddr(&v6);
        assert_eq!(
            decode(&b6[..n6]),
            Some(Dest {
                addr: v6,
                scope_id: 7
            })
        );
        assert_eq!(decode(&b6[..27]), None);
        assert_eq!(decode(&[16]), None);
    }

    #[test]
    fn unspec_reads_as_inet_only_with_room_for_it() {
        let a: SocketAddr = "192.0.2.1:53".parse().unwrap();
        let (mut b, n) = wire::encode_sockaddr(&a);
        b[1] = AF_UNSPEC;
        assert!(is_unspec(&b[..n]));
        assert_eq!(decode(&b[..n]), None);
        assert_eq!(decode_unspec_as_inet(&b[..n]).map(|d| d.addr), Some(a));
        assert_eq!(decode_unspec_as_inet(&b[..15]), None);
        assert!(is_unspec(&b[..2]));
        assert!(!is_unspec(&b[..1]));
        let (inet, n) = wire::encode_sockaddr(&a);
        assert!(!is_unspec(&inet[..n]));
        assert_eq!(decode_unspec_as_inet(&inet[..n]), None);
    }

    #[test]
    fn endpoints_are_read_at_their_offsets_and_written_back() {
        let mut b = [0u8; SA_ENDPOINTS_LEN];
        b[0..4].copy_from_slice(&6u32.to_ne_bytes());
        b[8..16].copy_from_slice(&0x1000u64.to_ne_bytes());
        b[16..20].copy_from_slice(&16u32.to_ne_bytes());
        b[24..32].copy_from_slice(&0x2000u64.to_ne_bytes());
        b[32..36].copy_from_slice(&28u32.to_ne_bytes());
        // Padding the program left dirty is not read.
        b[4] = 0xff;
        b[36] = 0xff;
        let e = Endpoints::read(&b);
        assert_eq!(
            e,
            Endpoints {
                srcif: 6,
                srcaddr: 0x1000,
                srcaddrlen: 16,
                dstaddr: 0x2000,
                dstaddrlen: 28,
            }
        );
        let mut w = e.write();
        assert_eq!(Endpoints::read(&w), e);
        assert_eq!(w[4], 0);
        w[24..32].copy_from_slice(&0x3000u64.to_ne_bytes());
        assert_eq!(Endpoints::read(&w).dstaddr, 0x3000);
    }

    #[test]
    fn a_source_interface_must_agree_with_the_binding() {
        assert!(srcif_agrees(0, 6));
        assert!(srcif_agrees(6, 0));
        assert!(srcif_agrees(6, 6));
        assert!(!srcif_agrees(9, 6));
    }
}
