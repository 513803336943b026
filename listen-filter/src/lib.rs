//! Classic BPF socket filters that confine a listener to one interface and loopback
//! (`listen = "interface"`). Pure: the preload engine (`shim/src/sys/linux/filter.rs`)
//! and the seccomp supervisor both build the program here and attach it themselves.
//!
//! A device binding (`SO_BINDTOIFINDEX`) would also close a listener to the other links,
//! but it closes it to loopback too: locally originated traffic, to `127.0.0.1`, `::1`
//! or any of the host's own addresses, arrives on `lo`. The filter instead looks at the
//! interface each packet arrived on (`SKF_AD_IFINDEX`) and admits:
//!
//! * packets that arrived on `lo` (any local peer: it never touched another link);
//! * packets that arrived on the chosen interface — for a TCP listener only from a source
//!   inside one of that interface's own prefixes. An unbound listener's SYN-ACK follows
//!   the routing table, so a SYN from an off-link peer that came in through the chosen
//!   interface would be answered by the default route (verified on Linux 6.18: the
//!   SYN-ACK left by eth0); an on-link peer is answered through its connected route.
//!   A UDP server's replies are sent through the shim's own per-datagram steering, so
//!   UDP admits any source that came in through the chosen interface.
//!
//! Everything else is dropped before the socket sees it: a SYN from another link gets no
//! SYN-ACK and no RST there. Accepted sockets inherit the filter (the kernel clones it
//! with the listener), which keeps their peer's packets (same path) and nothing else.
//!
//! The filter carries a signature, so the shim recognises its own filter on a socket —
//! also one it reaches through another fd or process: it is part of the kernel object.
//! A program's own classic filter is composed behind the shim's (the shim's admission
//! first, then the program's program, with A and X reset to 0 as at the start of a
//! filter); see `ops::setsockopt_filter`.
//!
//! Instruction layout (`k` of the second instruction says where a composed program's
//! code starts, 0 when there is none):
//!
//! ```text
//!  0  ld #SIGNATURE
//!  1  ld #TAIL                 ; index of the program's code, or 0
//!  2  ld [ifindex]
//!  3  jeq #lo, 0, 1
//!  4  ja ACCEPT
//!  5  jeq #chosen, 1, 0
//!  6  ret #0
//!     ja ACCEPT                ; any source (UDP), or the source checks:
//!     ld [protocol]; jeq #ETH_P_IP, 1, 0; ja V6
//!     ld [net+12]; tax; { txa; and #mask; jeq #net, 0, 1; ja ACCEPT }*; ret #0
//!  V6 jeq #ETH_P_IPV6, 1, 0; ret #0
//!     { (ld [net+8+4i]; and #mask; jeq #word, 0, skip)*; ja ACCEPT }*; ret #0
//!  ACCEPT  ret #-1             ; or: ldx #0; ld #0; <the program's filter>
//! ```

use libc::sock_filter;
use std::net::IpAddr;

/// The kernel's limit on a classic filter's length (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;
/// "mifs": the first instruction of every filter the shim attaches.
const SIGNATURE: u32 = 0x6d69_6673;
/// Prefixes per family a filter checks at most (more are left out: fail closed).
pub const MAX_PREFIXES: usize = 32;
/// Instructions of the longest filter [`build`] makes, without a program's part.
pub const MAX_OWN: usize = 16 + MAX_PREFIXES * 4 + MAX_PREFIXES * 13;

const SKF_AD_OFF: u32 = (-0x1000i32) as u32;
const SKF_NET_OFF: u32 = (-0x10_0000i32) as u32;
const SKF_AD_PROTOCOL: u32 = 0;
const SKF_AD_IFINDEX: u32 = 8;

// Opcodes (linux/filter.h, linux/bpf_common.h).
const LD_IMM: u16 = 0x00; // BPF_LD | BPF_W | BPF_IMM
const LDX_IMM: u16 = 0x01; // BPF_LDX | BPF_W | BPF_IMM
const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const LD_H_ABS: u16 = 0x28; // BPF_LD | BPF_H | BPF_ABS
const AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const JA: u16 = 0x05; // BPF_JMP | BPF_JA
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
pub const RET_K: u16 = 0x06; // BPF_RET | BPF_K
const TAX: u16 = 0x07; // BPF_MISC | BPF_TAX
const TXA: u16 = 0x87; // BPF_MISC | BPF_TXA

const ETH_P_IP: u32 = 0x0800;
const ETH_P_IPV6: u32 = 0x86dd;

pub fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// Which sources a filter admits from the chosen interface.
#[derive(Clone, Copy)]
pub enum Sources<'a> {
    /// Any (UDP: replies are steered per datagram).
    Any,
    /// Only these prefixes (address, length); at most [`MAX_PREFIXES`] per family count.
    Prefixes(&'a [(IpAddr, u8)]),
}

/// What the shim's filter on a socket says (read back from the kernel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ours {
    /// The loopback interface it admits.
    pub lo: u32,
    /// The interface it admits besides loopback.
    pub ifindex: u32,
    /// Where the program's composed filter starts (0: none).
    pub tail: usize,
}

/// Appends instructions, remembering the `ja ACCEPT` to patch.
struct Asm<'a> {
    out: &'a mut [sock_filter],
    n: usize,
    accepts: [u16; 2 + 2 * MAX_PREFIXES],
    n_acc: usize,
}

impl Asm<'_> {
    fn push(&mut self, i: sock_filter) -> Option<()> {
        *self.out.get_mut(self.n)? = i;
        self.n += 1;
        Some(())
    }
    fn accept(&mut self) -> Option<()> {
        *self.accepts.get_mut(self.n_acc)? = self.n as u16;
        self.n_acc += 1;
        self.push(insn(JA, 0, 0, 0))
    }
}

/// Writes the shim's filter for interface `ifindex` (and loopback `lo`) into `out`,
/// followed by `program` (a program's own classic filter) or by `ret #-1`. Returns the
/// length, or `None` when `out` is too short or the result would exceed
/// [`MAX_INSNS`].
pub fn build(
    out: &mut [sock_filter],
    lo: u32,
    ifindex: u32,
    sources: Sources<'_>,
    program: &[sock_filter],
) -> Option<usize> {
    let mut a = Asm {
        out,
        n: 0,
        accepts: [0; 2 + 2 * MAX_PREFIXES],
        n_acc: 0,
    };
    a.push(insn(LD_IMM, 0, 0, SIGNATURE))?;
    a.push(insn(LD_IMM, 0, 0, 0))?; // patched: where the program's part starts
    a.push(insn(LD_W_ABS, 0, 0, SKF_AD_OFF + SKF_AD_IFINDEX))?;
    a.push(insn(JEQ_K, 0, 1, lo))?;
    a.accept()?;
    a.push(insn(JEQ_K, 1, 0, ifindex))?;
    a.push(insn(RET_K, 0, 0, 0))?;
    match sources {
        Sources::Any => a.accept()?,
        Sources::Prefixes(list) => {
            let v4 = list
                .iter()
                .filter(|(ip, _)| ip.is_ipv4())
                .take(MAX_PREFIXES);
            let v6 = list
                .iter()
                .filter(|(ip, _)| ip.is_ipv6())
                .take(MAX_PREFIXES);
            a.push(insn(LD_H_ABS, 0, 0, SKF_AD_OFF + SKF_AD_PROTOCOL))?;
            a.push(insn(JEQ_K, 1, 0, ETH_P_IP))?;
            let to_v6 = a.n;
            a.push(insn(JA, 0, 0, 0))?; // patched below
            a.push(insn(LD_W_ABS, 0, 0, SKF_NET_OFF + 12))?; // IPv4 source
            a.push(insn(TAX, 0, 0, 0))?;
            for (ip, len) in v4 {
                let IpAddr::V4(ip) = ip else { continue };
                let mask = mask32(u32::from(*len));
                a.push(insn(TXA, 0, 0, 0))?;
                a.push(insn(AND_K, 0, 0, mask))?;
                a.push(insn(JEQ_K, 0, 1, u32::from(*ip) & mask))?;
                a.accept()?;
            }
            a.push(insn(RET_K, 0, 0, 0))?;
            a.out[to_v6].k = (a.n - to_v6 - 1) as u32;
            a.push(insn(JEQ_K, 1, 0, ETH_P_IPV6))?;
            a.push(insn(RET_K, 0, 0, 0))?;
            for (ip, len) in v6 {
                let IpAddr::V6(ip) = ip else { continue };
                let len = u32::from((*len).min(128));
                let words = len.div_ceil(32);
                let o = ip.octets();
                for i in 0..words {
                    let mask = mask32((len - 32 * i).min(32));
                    let at = 4 * i as usize;
                    let w = u32::from_be_bytes([o[at], o[at + 1], o[at + 2], o[at + 3]]);
                    // On a mismatch skip the rest of this prefix and its `ja`.
                    let skip = (words - 1 - i) * 3 + 1;
                    a.push(insn(LD_W_ABS, 0, 0, SKF_NET_OFF + 8 + 4 * i))?;
                    a.push(insn(AND_K, 0, 0, mask))?;
                    a.push(insn(JEQ_K, 0, skip as u8, w & mask))?;
                }
                a.accept()?;
            }
            a.push(insn(RET_K, 0, 0, 0))?;
        }
    }
    let accept_at = a.n;
    if program.is_empty() {
        a.push(insn(RET_K, 0, 0, u32::MAX))?;
    } else {
        a.push(insn(LDX_IMM, 0, 0, 0))?;
        a.push(insn(LD_IMM, 0, 0, 0))?;
        a.out[1].k = a.n as u32;
        for i in program {
            a.push(*i)?;
        }
    }
    for &j in &a.accepts[..a.n_acc] {
        a.out[j as usize].k = (accept_at - j as usize - 1) as u32;
    }
    (a.n <= MAX_INSNS).then_some(a.n)
}

fn mask32(bits: u32) -> u32 {
    if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    }
}

/// Recognises the shim's filter.
pub fn ours(prog: &[sock_filter]) -> Option<Ours> {
    let first = prog.first()?;
    if (first.code, first.k) != (LD_IMM, SIGNATURE) || prog.len() < 7 {
        return None;
    }
    Some(Ours {
        lo: prog[3].k,
        ifindex: prog[5].k,
        tail: prog[1].k as usize,
    })
}

/// The program's part of a filter [`ours`] recognised (empty when there is none).
pub fn program_part(prog: &[sock_filter], o: Ours) -> &[sock_filter] {
    if o.tail == 0 || o.tail > prog.len() {
        &[]
    } else {
        &prog[o.tail..]
    }
}

/// A zeroed instruction, for buffers.
pub const ZERO: sock_filter = sock_filter {
    code: 0,
    jt: 0,
    jf: 0,
    k: 0,
};

#[cfg(test)]
mod tests;
