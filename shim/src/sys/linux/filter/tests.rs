//! The shared filter builder (`mifshim-listen-filter`, which checks the program itself
//! with an interpreter) against the kernel: attached to a real socket through this
//! module's options and read back.

use super::*;
use mifshim_listen_filter::{RET_K, insn};
use std::net::IpAddr;

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
fn the_kernel_accepts_the_filters_and_gives_them_back() {
    let p = prefixes();
    let f = built(Sources::Prefixes(&p), &[insn(RET_K, 0, 0, 7)]);
    // SAFETY: plain socket creation for the test.
    let s = unsafe { libc::socket(libc::AF_INET6, libc::SOCK_STREAM, 0) };
    assert!(s >= 0);
    let fp = sock_fprog {
        len: f.len() as u16,
        filter: f.as_ptr().cast_mut(),
    };
    // SAFETY: fp describes f, alive for the call (libc's setsockopt: the test has no
    // real functions installed).
    let r = unsafe {
        libc::setsockopt(
            s,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&raw const fp).cast(),
            size_of::<sock_fprog>() as socklen_t,
        )
    };
    assert_eq!(r, 0, "errno {}", errno());
    assert_eq!(len(s), Ok(f.len()));
    let mut back = vec![ZERO; MAX_INSNS];
    let n = get(s, &mut back).unwrap();
    assert_eq!(n, f.len());
    let same = back[..n]
        .iter()
        .zip(&f)
        .all(|(a, b)| (a.code, a.jt, a.jf, a.k) == (b.code, b.jt, b.jf, b.k));
    assert!(same);
    assert!(!locked(s));
    // SAFETY: our socket.
    unsafe { libc::close(s) };
}
