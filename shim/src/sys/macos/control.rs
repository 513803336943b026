//! The program's own control messages in a steered `sendmsg`, as XNU reads them: what
//! they say about the datagram's interface and source ([`scan_control`], what the
//! shared core plans with, `ops`'s `Ctl::carried`), and the control data sent instead
//! ([`build_control`]: the program's messages kept, the steering's PKTINFO patched into
//! or added to them). The macOS counterparts of `mifshim_fastpath::scan_control` and
//! `build_control` (Linux's rules and layout), with the same types. Pure, so that
//! Linux runs the tests; `ffi::msg::MsgCopy` copies the program's control data and
//! sends this.
//!
//! On macOS the per-datagram steering is a PKTINFO too (`steer`'s table:
//! `IP_BOUND_IF` is a socket option, which the core sets only on a socket it binds);
//! read in XNU's source (apple-oss-distributions/xnu), not tried on a Mac:
//! * layout (`<sys/socket.h>`): a `cmsghdr` is `{u32 cmsg_len, int level, int type}`,
//!   12 bytes, its data and the next header 4-byte aligned (`__DARWIN_ALIGN32`;
//!   `mifshim_abi::darwin`); a `cmsg_len` shorter than a header or past the end is
//!   refused (`EINVAL`), as `udp_check_pktinfo` and `ip6_setpktopts` refuse it (this
//!   walk is as strict, never laxer).
//! * IPv4 path (`udp_output` → `udp_check_pktinfo`, also for an IPv4-mapped
//!   destination of an `AF_INET6` socket): only `IPPROTO_IP`/`IP_PKTINFO` (26) is read,
//!   and only **the first** one: of any other length than `CMSG_LEN(12)` it is
//!   `EINVAL`; a non-zero `ipi_ifindex` is the datagram's interface and "takes
//!   precedence over ipi_spec_dst" (the source is then the kernel's); with index 0,
//!   `ipi_spec_dst` is the datagram's source. So the steering writes its index into
//!   that first `IP_PKTINFO` when its index is 0 — its `ipi_spec_dst` is then no
//!   longer read: the datagram takes the chosen interface's own source, not the
//!   program's (which the core has checked is the steered interface's, or refused) —
//!   and adds its own `IP_PKTINFO` after the program's messages when there is none.
//! * IPv6 path (`udp6_output` → `ip6_setpktopts`): the `IPPROTO_IPV6` messages are read,
//!   `IPV6_PKTINFO` (46) and `IPV6_2292PKTINFO` (19) alike, each of exactly
//!   `CMSG_LEN(20)`; the index of an `in6_pktinfo` chooses the interface ("IPV6_PKTINFO
//!   takes precedence over IPV6_BOUND_IF", `in6_selectroute`) and its address the
//!   source. Which of several counts is not relied on: every one with index 0 gets the
//!   steering's index (its address kept), so whichever the kernel takes sends by the
//!   chosen interface or by one the program named itself; with none, ours is added.
//! * A PKTINFO of the program's naming an interface is the program's choice, as on
//!   Linux (socket-core's `datagram_source`: "its PKTINFO names another interface than
//!   the steered one"): sent as it is, like a socket the program bound itself.

use mifshim_abi::darwin::{CMSGHDR, align32};
pub(crate) use mifshim_fastpath::{Built, Pktinfo, Scan};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::uapi::{EINVAL, ENOBUFS};
use super::wire::{
    IN_PKTINFO_LEN, IN6_PKTINFO_LEN, IP_PKTINFO, IPPROTO_IP, IPPROTO_IPV6, IPV6_PKTINFO,
};

/// `IPV6_2292PKTINFO` (`<netinet6/in6.h>`: RFC 2292's number, read alike on send).
pub(crate) const IPV6_2292PKTINFO: i32 = 19;

/// The most bytes of the program's control data the engine copies; longer data is
/// `Ctl::Unknown` to the core and `Prepared::TooBig` to the executor (socket-core's
/// fallback: the socket is bound to the interface, the message sent unchanged).
pub(crate) const ROOM: usize = 1024;
/// The buffer the control data is built in: the program's, up to 3 bytes of
/// padding, and one PKTINFO.
pub(crate) const BUF: usize = ROOM + 4 + super::wire::PKTINFO_SPACE;

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Walks XNU's control messages: `f` gets each one's offset, `cmsg_len`, level and
/// type. `Ok`: where the next header would be, the aligned end of the last message
/// (up to 3 bytes past the data); `Err(EINVAL)`: a `cmsg_len` shorter than a header
/// or past the end.
pub(crate) fn walk(ctl: &[u8], mut f: impl FnMut(usize, usize, i32, i32)) -> Result<usize, i32> {
    let n = ctl.len();
    let mut pos = 0usize;
    let mut end = 0usize;
    while pos <= n && n - pos >= CMSGHDR {
        let len = u32_at(ctl, pos) as usize;
        if len < CMSGHDR || len > n - pos {
            return Err(EINVAL);
        }
        f(
            pos,
            len,
            u32_at(ctl, pos + 4) as i32,
            u32_at(ctl, pos + 8) as i32,
        );
        // len <= n - pos: no overflow.
        pos += align32(len);
        end = pos;
    }
    Ok(end)
}

/// `CMSG_LEN(n)` on macOS.
const fn cmsg_len(n: usize) -> usize {
    CMSGHDR + n
}

fn is_v6_pktinfo(level: i32, ty: i32) -> bool {
    level == IPPROTO_IPV6 && (ty == IPV6_PKTINFO || ty == IPV6_2292PKTINFO)
}

/// What XNU takes from the program's control data `ctl` for a datagram on the IPv6
/// path (`v6`) or the IPv4 path (the module comment): `chosen`/`index` the interface
/// a PKTINFO of the program's names (on the IPv6 path only when no PKTINFO there has
/// index 0, which the steering patches), `patch` the data of the first PKTINFO with
/// index 0, `source` the source it gives the datagram, `end` where a message added
/// after the program's goes. `Err(EINVAL)`: malformed, as the kernel says.
pub(crate) fn scan_control(ctl: &[u8], v6: bool) -> Result<Scan, i32> {
    let mut scan = Scan {
        end: 0,
        chosen: false,
        patch: None,
        index: 0,
        source: None,
    };
    let mut bad = false;
    let mut seen_v4 = false;
    scan.end = walk(ctl, |pos, len, level, ty| {
        let data = pos + CMSGHDR;
        if !v6 && level == IPPROTO_IP && ty == IP_PKTINFO && !seen_v4 {
            // in_pktinfo { u32 ipi_ifindex; in_addr ipi_spec_dst; in_addr ipi_addr }
            seen_v4 = true;
            if len != cmsg_len(IN_PKTINFO_LEN) {
                bad = true;
                return;
            }
            let index = u32_at(ctl, data);
            if index != 0 {
                scan.chosen = true;
                scan.index = index;
            } else {
                scan.patch = Some(data);
                let a = Ipv4Addr::new(ctl[data + 4], ctl[data + 5], ctl[data + 6], ctl[data + 7]);
                scan.source = Some(IpAddr::V4(a)).filter(|a| !a.is_unspecified());
            }
        } else if v6 && is_v6_pktinfo(level, ty) {
            // in6_pktinfo { in6_addr ipi6_addr; u32 ipi6_ifindex }
            if len != cmsg_len(IN6_PKTINFO_LEN) {
                bad = true;
                return;
            }
            let index = u32_at(ctl, data + 16);
            if index != 0 {
                scan.chosen = true;
                scan.index = index;
            } else if scan.patch.is_none() {
                scan.patch = Some(data);
            }
            let mut a = [0u8; 16];
            a.copy_from_slice(&ctl[data..data + 16]);
            let a = Ipv6Addr::from(a);
            if !a.is_unspecified() {
                scan.source = Some(IpAddr::V6(a));
            }
        }
    })?;
    if bad {
        return Err(EINVAL);
    }
    if scan.patch.is_some() {
        // Patched: whichever the kernel takes is ours or the program's choice.
        scan.chosen = false;
        scan.index = 0;
    }
    Ok(scan)
}

/// Whether control data may give a datagram its own source (a PKTINFO with an
/// address, on either path), or cannot be read as the kernel would.
pub(crate) fn may_carry_source(ctl: &[u8]) -> bool {
    !matches!(
        (scan_control(ctl, false), scan_control(ctl, true)),
        (Ok(Scan { source: None, .. }), Ok(Scan { source: None, .. }))
    )
}

/// The control data of a steered datagram built from the program's (`app`, already
/// copied) into `out`: each PKTINFO of the path that XNU reads with index 0 gets
/// `p.ifindex`; without one, ours is added where the next header would be (the
/// program's trailing bytes, fewer than a header, which XNU ignores, are dropped);
/// a PKTINFO of the program's naming an interface leaves the data as it is
/// (`Built::Chosen`). `Err(EINVAL)`: malformed; `Err(ENOBUFS)`: `out` too small
/// ([`BUF`] always holds [`ROOM`] bytes and ours).
pub(crate) fn build_control(app: &[u8], p: Pktinfo, out: &mut [u8]) -> Result<Built, i32> {
    let scan = scan_control(app, p.v6)?;
    out.get_mut(..app.len())
        .ok_or(ENOBUFS)?
        .copy_from_slice(app);
    let idx = p.ifindex.to_ne_bytes();
    if p.v6 {
        let mut patched = false;
        walk(app, |pos, _, level, ty| {
            let at = pos + CMSGHDR + 16;
            if is_v6_pktinfo(level, ty) && u32_at(app, at) == 0 {
                out[at..at + 4].copy_from_slice(&idx);
                patched = true;
            }
        })?;
        if patched {
            return Ok(Built::Control(app.len()));
        }
    } else if let Some(data) = scan.patch {
        out[data..data + 4].copy_from_slice(&idx);
        return Ok(Built::Control(app.len()));
    }
    if scan.chosen {
        return Ok(Built::Chosen(app.len()));
    }
    let (ours, space) = super::wire::pktinfo(p.v6, p.ifindex);
    let start = scan.end;
    let dst = out
        .get_mut(app.len().min(start)..start + space)
        .ok_or(ENOBUFS)?;
    let pad = start - app.len().min(start);
    dst[..pad].fill(0);
    dst[pad..].copy_from_slice(&ours[..space]);
    Ok(Built::Control(start + space))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EN0: u32 = 4;
    const UTUN: u32 = 14;
    const P4: Pktinfo = Pktinfo {
        ifindex: EN0,
        v6: false,
    };
    const P6: Pktinfo = Pktinfo {
        ifindex: EN0,
        v6: true,
    };

    /// One XNU control message: {u32 len, level, type}, data, padding to 4 bytes.
    fn cmsg(level: i32, ty: i32, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((CMSGHDR + data.len()) as u32).to_ne_bytes());
        v.extend_from_slice(&level.to_ne_bytes());
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(data);
        v.resize(align32(v.len()), 0);
        v
    }

    fn in_pktinfo(index: u32, spec_dst: [u8; 4]) -> Vec<u8> {
        let data = [&index.to_ne_bytes()[..], &spec_dst, &[0; 4]].concat();
        cmsg(IPPROTO_IP, IP_PKTINFO, &data)
    }

    fn in6_pktinfo(ty: i32, addr: Ipv6Addr, index: u32) -> Vec<u8> {
        let data = [&addr.octets()[..], &index.to_ne_bytes()].concat();
        cmsg(IPPROTO_IPV6, ty, &data)
    }

    /// IP_TOS as a control message (3, an int): kept as the program wrote it.
    fn tos() -> Vec<u8> {
        cmsg(IPPROTO_IP, 3, &0x10i32.to_ne_bytes())
    }

    /// SCM_RIGHTS with one fd, `SOL_SOCKET` 0xffff.
    fn rights() -> Vec<u8> {
        cmsg(0xffff, 1, &7i32.to_ne_bytes())
    }

    fn build(app: &[u8], p: Pktinfo) -> (Built, Vec<u8>) {
        let mut out = [0u8; BUF];
        let b = build_control(app, p, &mut out).unwrap();
        let (Built::Control(n) | Built::Chosen(n)) = b;
        (b, out[..n].to_vec())
    }

    #[test]
    fn the_programs_messages_are_kept_and_ours_follows_them() {
        for p in [P4, P6] {
            let app = [tos(), rights()].concat();
            let (b, out) = build(&app, p);
            let ours = super::super::wire::pktinfo(p.v6, EN0);
            assert_eq!(b, Built::Control(app.len() + ours.1));
            assert_eq!(&out[..app.len()], &app[..]);
            assert_eq!(&out[app.len()..], &ours.0[..ours.1]);
            // Walked as XNU walks it: three messages, ours last.
            let mut seen = Vec::new();
            assert_eq!(walk(&out, |_, _, l, t| seen.push((l, t))), Ok(out.len()));
            assert_eq!(seen.len(), 3);
            let s = scan_control(&out, p.v6).unwrap();
            assert!(s.chosen && s.index == EN0, "{s:?}");
        }
        // No control data of the program's: ours alone.
        let (_, out) = build(&[], P4);
        assert_eq!(out, in_pktinfo(EN0, [0; 4]));
    }

    /// XNU reads the first IP_PKTINFO only: one of index 0 gets ours (its spec_dst is
    /// then not read), and one naming an interface is the program's choice.
    #[test]
    fn the_first_ip_pktinfo_is_the_one_xnu_reads() {
        let app = [tos(), in_pktinfo(0, [192, 0, 2, 7])].concat();
        let s = scan_control(&app, false).unwrap();
        assert_eq!(s.source, Some("192.0.2.7".parse().unwrap()));
        assert!(!s.chosen);
        let (b, out) = build(&app, P4);
        assert_eq!(b, Built::Control(app.len()));
        assert_eq!(out, [tos(), in_pktinfo(EN0, [192, 0, 2, 7])].concat());
        // Named by the program: sent as it is.
        let mine = [in_pktinfo(UTUN, [0; 4]), in_pktinfo(0, [0; 4])].concat();
        let s = scan_control(&mine, false).unwrap();
        assert!(s.chosen && s.index == UTUN && s.source.is_none());
        assert_eq!(build(&mine, P4), (Built::Chosen(mine.len()), mine.clone()));
        // A second IP_PKTINFO is not read, so it is not patched either.
        let two = [in_pktinfo(0, [0; 4]), in_pktinfo(0, [0; 4])].concat();
        let (_, out) = build(&two, P4);
        assert_eq!(
            out,
            [in_pktinfo(EN0, [0; 4]), in_pktinfo(0, [0; 4])].concat()
        );
        // The IPv6 messages are not read on the IPv4 path (an AF_INET6 socket's
        // IPv4-mapped destination): ours is added.
        let v6 = in6_pktinfo(IPV6_PKTINFO, Ipv6Addr::UNSPECIFIED, UTUN);
        let (b, out) = build(&v6, P4);
        assert_eq!(b, Built::Control(v6.len() + in_pktinfo(0, [0; 4]).len()));
        assert_eq!(&out[v6.len()..], &in_pktinfo(EN0, [0; 4])[..]);
    }

    /// On the IPv6 path every PKTINFO with index 0 gets ours, RFC 2292's number too,
    /// their addresses kept; one naming an interface alone is the program's choice.
    #[test]
    fn every_ipv6_pktinfo_of_index_zero_gets_the_chosen_index() {
        let src: Ipv6Addr = "2001:db8::7".parse().unwrap();
        let app = [
            in6_pktinfo(IPV6_PKTINFO, src, 0),
            tos(),
            in6_pktinfo(IPV6_2292PKTINFO, Ipv6Addr::UNSPECIFIED, 0),
        ]
        .concat();
        let s = scan_control(&app, true).unwrap();
        assert_eq!(s.source, Some(IpAddr::V6(src)));
        let (b, out) = build(&app, P6);
        assert_eq!(b, Built::Control(app.len()));
        let want = [
            in6_pktinfo(IPV6_PKTINFO, src, EN0),
            tos(),
            in6_pktinfo(IPV6_2292PKTINFO, Ipv6Addr::UNSPECIFIED, EN0),
        ]
        .concat();
        assert_eq!(out, want);
        // One naming an interface and one of index 0: the 0 is patched, so the
        // kernel sends by the program's or by ours, never by the route.
        let mixed = [
            in6_pktinfo(IPV6_PKTINFO, Ipv6Addr::UNSPECIFIED, UTUN),
            in6_pktinfo(IPV6_PKTINFO, Ipv6Addr::UNSPECIFIED, 0),
        ]
        .concat();
        assert!(!scan_control(&mixed, true).unwrap().chosen);
        let (b, out) = build(&mixed, P6);
        assert_eq!(b, Built::Control(mixed.len()));
        assert_eq!(&out[mixed.len() - 4..], &EN0.to_ne_bytes());
        let mine = in6_pktinfo(IPV6_PKTINFO, Ipv6Addr::UNSPECIFIED, UTUN);
        assert_eq!(build(&mine, P6), (Built::Chosen(mine.len()), mine.clone()));
        // An IP_PKTINFO is not read on the IPv6 path.
        let v4 = in_pktinfo(UTUN, [0; 4]);
        let (b, _) = build(&v4, P6);
        assert_eq!(
            b,
            Built::Control(v4.len() + in6_pktinfo(46, Ipv6Addr::UNSPECIFIED, 0).len())
        );
    }

    #[test]
    fn malformed_control_data_is_the_kernels_einval() {
        let mut short = in_pktinfo(0, [0; 4]);
        short[0..4].copy_from_slice(&11u32.to_ne_bytes());
        let mut long = tos();
        long[0..4].copy_from_slice(&200u32.to_ne_bytes());
        // A PKTINFO of another length than CMSG_LEN(its structure).
        let odd4 = cmsg(IPPROTO_IP, IP_PKTINFO, &[0; 8]);
        let odd6 = cmsg(IPPROTO_IPV6, IPV6_PKTINFO, &[0; 24]);
        for (v, v6) in [
            (&short, false),
            (&long, true),
            (&odd4, false),
            (&odd6, true),
        ] {
            let mut out = [0u8; BUF];
            assert_eq!(scan_control(v, v6), Err(EINVAL));
            let p = if v6 { P6 } else { P4 };
            assert_eq!(build_control(v, p, &mut out), Err(EINVAL));
        }
        // Fewer bytes than a header after the last message are ignored, and dropped
        // when ours is added where the next header would be.
        let mut tail = tos();
        tail.extend_from_slice(&[0xaa; 5]);
        let (_, out) = build(&tail, P4);
        assert_eq!(out, [tos(), in_pktinfo(EN0, [0; 4])].concat());
        // No room: ENOBUFS, never a write past the buffer.
        let mut small = [0u8; 8];
        assert_eq!(build_control(&[], P4, &mut small), Err(ENOBUFS));
    }

    #[test]
    fn a_source_is_seen_on_either_path() {
        assert!(!may_carry_source(&[tos(), rights()].concat()));
        assert!(
            !may_carry_source(&in_pktinfo(EN0, [192, 0, 2, 7])),
            "the index wins"
        );
        assert!(may_carry_source(&in_pktinfo(0, [192, 0, 2, 7])));
        let src: Ipv6Addr = "2001:db8::7".parse().unwrap();
        assert!(may_carry_source(&in6_pktinfo(IPV6_PKTINFO, src, EN0)));
        assert!(
            may_carry_source(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
            "unreadable"
        );
    }
}
