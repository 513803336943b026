//! The filter builder, checked by running its output through a small classic-BPF
//! interpreter over made-up packets (interface index, protocol, source address), and
//! against the kernel by attaching it to real sockets.

use super::*;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A packet as the filter sees it: where it arrived, its network header.
struct Pkt {
    ifindex: u32,
    net: Vec<u8>,
    proto: u32,
}

fn v4(ifindex: u32, src: Ipv4Addr) -> Pkt {
    let mut net = vec![0x45u8; 20];
    net[12..16].copy_from_slice(&src.octets());
    Pkt {
        ifindex,
        net,
        proto: ETH_P_IP,
    }
}

fn v6(ifindex: u32, src: Ipv6Addr) -> Pkt {
    let mut net = vec![0x60u8; 40];
    net[8..24].copy_from_slice(&src.octets());
    Pkt {
        ifindex,
        net,
        proto: ETH_P_IPV6,
    }
}

/// Interprets the instructions the builder emits (and those test programs use).
fn run(prog: &[sock_filter], p: &Pkt) -> u32 {
    let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
    loop {
        let i = prog[pc];
        pc += 1;
        match i.code {
            LD_IMM => a = i.k,
            LDX_IMM => x = i.k,
            LD_W_ABS | LD_H_ABS => {
                a = if i.k == SKF_AD_OFF + SKF_AD_IFINDEX {
                    p.ifindex
                } else if i.k == SKF_AD_OFF + SKF_AD_PROTOCOL {
                    p.proto
                } else {
                    let at = (i.k - SKF_NET_OFF) as usize;
                    let b = &p.net[at..at + 4];
                    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
                }
            }
            AND_K => a &= i.k,
            TAX => x = a,
            TXA => a = x,
            JA => pc += i.k as usize,
            JEQ_K => pc += if a == i.k { i.jt } else { i.jf } as usize,
            RET_K => return i.k,
            0x16 => return a, // ret a
            c => panic!("opcode {c:#x} not interpreted"),
        }
        let _ = x;
    }
}

fn prefixes() -> Vec<(IpAddr, u8)> {
    vec![
        ("198.51.100.64".parse().unwrap(), 26),
        ("2001:db8:20::".parse().unwrap(), 64),
        ("fe80::".parse().unwrap(), 64),
    ]
}

fn built(sources: Sources<'_>, program: &[sock_filter]) -> Vec<sock_filter> {
    let mut buf = vec![ZERO; MAX_INSNS];
    let n = build(&mut buf, 1, 3, sources, program).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn a_tcp_filter_admits_loopback_and_on_link_peers_of_the_chosen_interface_only() {
    let p = prefixes();
    let f = built(Sources::Prefixes(&p), &[]);
    let ok = |pkt: &Pkt| run(&f, pkt) != 0;
    // Loopback, any source (also the host's own address of another link).
    assert!(ok(&v4(1, "127.0.0.1".parse().unwrap())));
    assert!(ok(&v4(1, "198.51.100.2".parse().unwrap())));
    assert!(ok(&v6(1, "::1".parse().unwrap())));
    // The chosen interface: on-link sources only.
    assert!(ok(&v4(3, "198.51.100.65".parse().unwrap())));
    assert!(ok(&v4(3, "198.51.100.127".parse().unwrap())));
    assert!(!ok(&v4(3, "198.51.100.128".parse().unwrap())));
    assert!(!ok(&v4(3, "203.0.113.10".parse().unwrap())));
    assert!(ok(&v6(3, "2001:db8:20::1".parse().unwrap())));
    assert!(ok(&v6(3, "fe80::1".parse().unwrap())));
    assert!(!ok(&v6(3, "2001:db8:21::1".parse().unwrap())));
    assert!(!ok(&v6(3, "2001:db8:ff::10".parse().unwrap())));
    // Another interface: nothing, not even an on-link-looking source.
    assert!(!ok(&v4(2, "198.51.100.65".parse().unwrap())));
    assert!(!ok(&v6(2, "2001:db8:20::1".parse().unwrap())));
    assert_eq!(
        ours(&f),
        Some(Ours {
            lo: 1,
            ifindex: 3,
            tail: 0
        })
    );
}

#[test]
fn a_udp_filter_admits_any_source_on_the_chosen_interface_and_loopback() {
    let f = built(Sources::Any, &[]);
    assert_ne!(run(&f, &v4(3, "203.0.113.10".parse().unwrap())), 0);
    assert_ne!(run(&f, &v6(1, "::1".parse().unwrap())), 0);
    assert_eq!(run(&f, &v4(2, "198.51.100.1".parse().unwrap())), 0);
}

#[test]
fn a_programs_filter_runs_behind_the_shims_and_keeps_its_own_verdict() {
    // The program's filter: "ret a" right away (A must be 0, as at a filter's start),
    // then a second one that accepts 100 bytes.
    let program = [insn(0x16, 0, 0, 0)];
    let p = prefixes();
    let f = built(Sources::Prefixes(&p), &program);
    assert_eq!(run(&f, &v4(1, "127.0.0.1".parse().unwrap())), 0);
    let program = [insn(RET_K, 0, 0, 100)];
    let f = built(Sources::Prefixes(&p), &program);
    assert_eq!(run(&f, &v4(3, "198.51.100.65".parse().unwrap())), 100);
    assert_eq!(run(&f, &v4(2, "198.51.100.65".parse().unwrap())), 0);
    let o = ours(&f).unwrap();
    let part = program_part(&f, o);
    assert_eq!(part.len(), 1);
    assert_eq!((part[0].code, part[0].k), (RET_K, 100));
}

#[test]
fn the_longest_filter_fits_and_an_oversized_composition_is_refused() {
    let mut many = Vec::new();
    for i in 0..40u8 {
        many.push((IpAddr::V4(Ipv4Addr::new(10, i, 0, 0)), 16));
        many.push((
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, i as u16, 0, 0, 0, 0, 0)),
            48,
        ));
    }
    let f = built(Sources::Prefixes(&many), &[]);
    assert!(f.len() <= MAX_OWN, "{} > {MAX_OWN}", f.len());
    // Prefixes beyond MAX_PREFIXES are left out (fail closed).
    assert_eq!(run(&f, &v4(3, Ipv4Addr::new(10, 31, 1, 1))), u32::MAX);
    assert_eq!(run(&f, &v4(3, Ipv4Addr::new(10, 39, 1, 1))), 0);
    let mut buf = vec![ZERO; MAX_INSNS + 100];
    let big = vec![insn(RET_K, 0, 0, 1); MAX_INSNS - 5];
    assert_eq!(build(&mut buf, 1, 3, Sources::Any, &big), None);
}
