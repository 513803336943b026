use super::*;

/// Appends a sockaddr with XNU's padding.
fn push_sa(out: &mut Vec<u8>, sa: &[u8]) {
    out.extend_from_slice(sa);
    out.resize(out.len() + roundup32(sa.len()) - sa.len(), 0);
}

fn sin(ip: [u8; 4]) -> Vec<u8> {
    let mut v = vec![16, AF_INET, 0, 0];
    v.extend(ip);
    v.resize(16, 0);
    v
}

fn sin6(ip: Ipv6Addr) -> Vec<u8> {
    let mut v = vec![28, AF_INET6, 0, 0, 0, 0, 0, 0];
    v.extend(ip.octets());
    v.resize(28, 0);
    v
}

fn sdl(index: u16, name: &str) -> Vec<u8> {
    let mut v = vec![0, AF_LINK];
    v.extend(index.to_ne_bytes());
    v.extend([6, name.len() as u8, 6, 0]);
    v.extend(name.as_bytes());
    v.extend([0xa, 0xb, 0xc, 0xd, 0xe, 0xf]);
    v[0] = v.len() as u8;
    v
}

/// A message: `header_len` bytes of header with the common fields, then the sockaddrs.
fn msg(kind: u8, header_len: usize, fill: impl Fn(&mut Vec<u8>), sas: &[Vec<u8>]) -> Vec<u8> {
    let mut m = vec![0u8; header_len];
    m[2] = RTM_VERSION;
    m[3] = kind;
    fill(&mut m);
    for sa in sas {
        push_sa(&mut m, sa);
    }
    let len = m.len() as u16;
    m[0..2].copy_from_slice(&len.to_ne_bytes());
    m
}

fn put_i32(m: &mut [u8], at: usize, v: i32) {
    m[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}
fn put_u16(m: &mut [u8], at: usize, v: u16) {
    m[at..at + 2].copy_from_slice(&v.to_ne_bytes());
}

#[test]
fn roundup_is_xnus_roundup32() {
    // ((a) > 0 ? (1 + (((a) - 1) | (sizeof (uint32_t) - 1))) : sizeof (uint32_t))
    assert_eq!(roundup32(0), 4);
    assert_eq!(roundup32(1), 4);
    assert_eq!(roundup32(4), 4);
    assert_eq!(roundup32(5), 8);
    assert_eq!(roundup32(16), 16);
    assert_eq!(
        roundup32(20),
        20,
        "a sockaddr_dl of 20 bytes is not padded to 24 (FreeBSD's long rule would)"
    );
    assert_eq!(roundup32(28), 28);
    assert_eq!(roundup32(0x6a), 0x6c);
}

#[test]
fn ifinfo_link_flags() {
    let m = msg(
        RTM_IFINFO,
        IF_MSGHDR_LEN,
        |m| {
            put_i32(m, 4, RTA_IFP);
            put_i32(m, 8, IFF_UP | IFF_RUNNING | 0x8800);
            put_u16(m, 12, 6);
        },
        &[sdl(6, "en0")],
    );
    let (got, n) = parse(&m).unwrap();
    assert_eq!(n, m.len());
    assert_eq!(
        got,
        Msg::Link {
            index: 6,
            flags: IFF_UP | IFF_RUNNING | 0x8800
        }
    );
    assert!(got.invalidates_snapshot());
}

#[test]
fn newaddr_with_netmask_ifp_ifa_brd() {
    // A short IPv4 netmask as the kernel writes it: sa_len 7, family 0, 255.255.255.
    let mask = vec![7, 0, 0, 0, 255, 255, 255];
    let m = msg(
        RTM_NEWADDR,
        IFA_MSGHDR_LEN,
        |m| {
            put_i32(m, 4, RTA_NETMASK | RTA_IFP | RTA_IFA | RTA_BRD);
            put_u16(m, 12, 14);
        },
        &[
            mask,
            sdl(14, "en5"),
            sin([172, 20, 10, 2]),
            sin([172, 20, 10, 15]),
        ],
    );
    let Msg::Addr {
        added,
        index,
        addrs,
    } = parse(&m).unwrap().0
    else {
        panic!("not an address message");
    };
    assert!(added);
    assert_eq!(index, 14);
    assert_eq!(addrs.netmask().unwrap().prefix(false), Some(24));
    assert_eq!(
        addrs.ifp(),
        Some(&Sa::Link {
            index: 14,
            name: "en5".into()
        })
    );
    assert_eq!(addrs.ifa(), Some(&Sa::Ip("172.20.10.2".parse().unwrap())));
    assert_eq!(addrs.0[7], Some(Sa::Ip("172.20.10.15".parse().unwrap())));
}

#[test]
fn deladdr_ipv6_link_local_scope_is_not_part_of_the_address() {
    // KAME embeds the interface index in bytes 2-3 of a link-local address.
    let embedded: Ipv6Addr = "fe80:6::1c2b:3dff:fe4e:5f60".parse().unwrap();
    let mut mask6 = vec![0u8; 24];
    mask6[0] = 24;
    mask6[1] = AF_INET6;
    for b in &mut mask6[8..16] {
        *b = 0xff;
    }
    let m = msg(
        RTM_DELADDR,
        IFA_MSGHDR_LEN,
        |m| {
            put_i32(m, 4, RTA_NETMASK | RTA_IFA);
            put_u16(m, 12, 6);
        },
        &[mask6, sin6(embedded)],
    );
    let Msg::Addr { added, addrs, .. } = parse(&m).unwrap().0 else {
        panic!()
    };
    assert!(!added);
    assert_eq!(addrs.netmask().unwrap().prefix(true), Some(64));
    assert_eq!(
        addrs.ifa(),
        Some(&Sa::Ip("fe80::1c2b:3dff:fe4e:5f60".parse().unwrap()))
    );
}

#[test]
fn route_add_delete_with_a_zero_length_sockaddr() {
    // RTM_ADD default via 192.0.2.1 on en0 (scoped), netmask of length 0 (0.0.0.0/0).
    let m = msg(
        RTM_ADD,
        RT_MSGHDR_LEN,
        |m| {
            put_u16(m, 4, 6);
            put_i32(m, 8, RTF_UP | RTF_GATEWAY | RTF_IFSCOPE);
            put_i32(m, 12, RTA_DST | RTA_GATEWAY | RTA_NETMASK | RTA_IFP);
        },
        &[
            sin([0, 0, 0, 0]),
            sin([192, 0, 2, 1]),
            vec![0],
            sdl(6, "en0"),
        ],
    );
    // The zero-length netmask took 4 bytes: 92 + 16 + 16 + 4 + sdl.
    assert_eq!(
        m.len(),
        RT_MSGHDR_LEN + 16 + 16 + 4 + roundup32(sdl(6, "en0").len())
    );
    let Msg::Route {
        kind,
        index,
        flags,
        addrs,
        ..
    } = parse(&m).unwrap().0
    else {
        panic!()
    };
    assert_eq!((kind, index), (RTM_ADD, 6));
    assert_eq!(flags & RTF_IFSCOPE, RTF_IFSCOPE);
    assert_eq!(addrs.dst(), Some(&Sa::Ip("0.0.0.0".parse().unwrap())));
    assert_eq!(addrs.gateway(), Some(&Sa::Ip("192.0.2.1".parse().unwrap())));
    assert_eq!(addrs.netmask().unwrap().prefix(false), Some(0));
    assert_eq!(
        addrs.ifp(),
        Some(&Sa::Link {
            index: 6,
            name: "en0".into()
        })
    );
}

/// A link's `RTM_IFINFO`, an `RTM_GET` reply and a multicast membership message: the
/// reads the tests below combine.
fn link_get_maddr() -> [Vec<u8>; 3] {
    [
        msg(RTM_IFINFO, IF_MSGHDR_LEN, |m| put_u16(m, 12, 4), &[]),
        msg(
            RTM_GET,
            RT_MSGHDR_LEN,
            |m| put_i32(m, 12, RTA_DST),
            &[sin([203, 0, 113, 10])],
        ),
        msg(RTM_NEWMADDR, IFMA_MSGHDR_LEN, |_| {}, &[]),
    ]
}

#[test]
fn several_messages_in_one_read_and_what_invalidates() {
    let [link, get, maddr] = link_get_maddr();
    let mut old = msg(RTM_ADD, RT_MSGHDR_LEN, |_| {}, &[]);
    old[2] = 4; // another version: skipped
    let del = msg(
        RTM_DELETE,
        RT_MSGHDR_LEN,
        |m| put_i32(m, 12, RTA_DST),
        &[sin6("2001:db8::1".parse().unwrap())],
    );
    let mut all = Vec::new();
    for m in [&link, &get, &maddr, &old, &del] {
        all.extend_from_slice(m);
    }
    // A truncated tail ends the walk.
    all.extend_from_slice(&link[..10]);
    let msgs = parse_all(&all);
    assert_eq!(msgs.len(), 4, "{msgs:?}");
    let inval: Vec<bool> = msgs.iter().map(Msg::invalidates_snapshot).collect();
    assert_eq!(inval, [true, false, false, true]);
    assert!(
        matches!(&msgs[3], Msg::Route { kind: RTM_DELETE, addrs, .. } if addrs.dst() == Some(&Sa::Ip("2001:db8::1".parse().unwrap())))
    );
}

#[test]
fn neighbour_entries_and_cloned_routes_leave_the_snapshot_alone() {
    let route = |kind: u8, flags: i32| {
        let m = msg(
            kind,
            RT_MSGHDR_LEN,
            |m| {
                put_i32(m, 8, flags);
                put_i32(m, 12, RTA_DST);
            },
            &[sin([192, 0, 2, 44])],
        );
        parse(&m).unwrap().0.invalidates_snapshot()
    };
    // An ARP entry made for a new peer, and dropped when it expires.
    let arp = RTF_UP | RTF_HOST | RTF_LLINFO | RTF_WASCLONED;
    assert!(!route(RTM_ADD, arp));
    assert!(!route(RTM_DELETE, arp));
    // A host route cloned from the default route for a peer (path MTU, RTT).
    assert!(!route(
        RTM_ADD,
        RTF_UP | RTF_HOST | RTF_GATEWAY | RTF_WASCLONED
    ));
    // A VPN's default route, a scoped one, a static host route: decisions may change.
    assert!(route(RTM_ADD, RTF_UP | RTF_GATEWAY));
    assert!(route(RTM_CHANGE, RTF_UP | RTF_GATEWAY | RTF_IFSCOPE));
    assert!(route(RTM_DELETE, RTF_UP | RTF_HOST));
}

/// The watcher's in-place walk says what parsing every message says, on the reads of
/// the tests above, and stays on the stale side for a message with broken addresses.
#[test]
fn the_in_place_walk_agrees_with_the_parser() {
    let [link, get, maddr] = link_get_maddr();
    let arp = msg(
        RTM_ADD,
        RT_MSGHDR_LEN,
        |m| {
            put_i32(m, 8, RTF_UP | RTF_HOST | RTF_LLINFO | RTF_WASCLONED);
            put_i32(m, 12, RTA_DST);
        },
        &[sin([192, 0, 2, 44])],
    );
    let mut old = msg(RTM_ADD, RT_MSGHDR_LEN, |_| {}, &[]);
    old[2] = 4;
    let del = msg(
        RTM_DELETE,
        RT_MSGHDR_LEN,
        |m| put_i32(m, 12, RTA_DST),
        &[sin([198, 51, 100, 0])],
    );
    let cat = |ms: &[&Vec<u8>]| {
        ms.iter()
            .flat_map(|m| m.iter().copied())
            .collect::<Vec<u8>>()
    };
    for read in [
        cat(&[&get, &maddr, &arp]),
        cat(&[&get, &link]),
        cat(&[&old, &arp, &del]),
        cat(&[&old]),
        cat(&[&get, &get, &get]),
        cat(&[&maddr, &link[..10].to_vec()]),
        Vec::new(),
    ] {
        let parsed = parse_all(&read).iter().any(Msg::invalidates_snapshot);
        assert_eq!(any_invalidates(&read), parsed, "{read:?}");
    }
    // RTA_DST announced but no room for it: parse refuses, the walk says stale.
    let mut broken = msg(RTM_DELETE, RT_MSGHDR_LEN, |m| put_i32(m, 12, RTA_DST), &[]);
    broken.extend_from_slice(&[16, AF_INET]);
    let n = broken.len() as u16;
    broken[0..2].copy_from_slice(&n.to_ne_bytes());
    assert!(any_invalidates(&broken));
}

#[test]
fn malformed_messages_are_errors_not_panics() {
    assert_eq!(parse(&[]), Err(ParseError::Truncated));
    assert_eq!(
        parse(&[200, 0, 5, 1]),
        Err(ParseError::Truncated),
        "msglen beyond the buffer"
    );
    let short_rt = msg(RTM_ADD, 40, |_| {}, &[]);
    assert_eq!(parse(&short_rt), Err(ParseError::Truncated));
    // A sockaddr whose sa_len runs past the message.
    let mut bad = msg(
        RTM_ADD,
        RT_MSGHDR_LEN,
        |m| put_i32(m, 12, RTA_DST),
        &[sin([1, 2, 3, 4])],
    );
    bad[RT_MSGHDR_LEN] = 200;
    assert_eq!(parse(&bad), Err(ParseError::Truncated));
    // Every truncation of every kind of message, and garbage: no panic.
    let good = msg(
        RTM_NEWADDR,
        IFA_MSGHDR_LEN,
        |m| put_i32(m, 4, RTA_NETMASK | RTA_IFP | RTA_IFA),
        &[
            vec![5, 0, 0, 0, 255],
            sdl(3, "utun3"),
            sin6("2001:db8::2".parse().unwrap()),
        ],
    );
    for n in 0..good.len() {
        let mut t = good[..n].to_vec();
        if t.len() >= 2 {
            t[0..2].copy_from_slice(&(n as u16).to_ne_bytes());
        }
        let _ = parse(&t);
        let _ = parse_all(&t);
    }
    let mut x = 0x1234_5678u32;
    for _ in 0..2000 {
        let mut junk = vec![0u8; 64];
        for b in &mut junk {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            *b = (x >> 16) as u8;
        }
        junk[2] = RTM_VERSION;
        junk[0] = 64;
        junk[1] = 0;
        let _ = parse_all(&junk);
    }
}

/// The request is a whole `rt_msghdr`, a silent `RTM_GET` our own parser reads back as
/// an `RTM_GET` for the destination, with the empty `sockaddr_dl` that asks for the interface.
#[test]
fn rtm_get_request_asks_for_the_destinations_interface() {
    for (dest, sa_len) in [
        ("198.51.100.7".parse::<IpAddr>().unwrap(), 16),
        ("2001:db8::5".parse().unwrap(), 28),
    ] {
        let mut m = get_request(dest, 77);
        assert_eq!(m.len(), RT_MSGHDR_LEN + sa_len + SOCKADDR_DL_LEN);
        assert_eq!(m[3], RTM_GET_SILENT, "the reply for this socket only");
        // What the kernel reads it as (route_output rewrites the type).
        m[3] = RTM_GET;
        assert_eq!(u16_at(&m, 0), Some(m.len() as u16));
        assert_eq!(pid_seq(&m), Some((0, 77)));
        let Msg::Route {
            kind,
            flags,
            errno,
            addrs,
            ..
        } = parse(&m).unwrap().0
        else {
            panic!("not a route message")
        };
        assert_eq!((kind, errno), (RTM_GET, 0));
        assert_eq!(flags & (RTF_UP | RTF_HOST), RTF_UP | RTF_HOST);
        assert_eq!(addrs.dst(), Some(&Sa::Ip(dest)));
        assert_eq!(
            addrs.ifp(),
            Some(&Sa::Link {
                index: 0,
                name: String::new()
            })
        );
        assert_eq!(addrs.gateway(), None);
    }
}

/// The kernel's reply to an `RTM_GET`: the interface comes from `RTA_IFP`, else
/// `rtm_index`; an `rtm_errno` is the answer; another message is no answer.
#[test]
fn rtm_get_reply_names_the_interface_or_the_error() {
    let reply = |index: u16, errno: i32, sas: &[Vec<u8>], addrs: i32| {
        msg(
            RTM_GET,
            RT_MSGHDR_LEN,
            |m| {
                put_u16(m, 4, index);
                put_i32(m, 8, RTF_UP | RTF_GATEWAY);
                put_i32(m, 12, addrs);
                put_i32(m, 16, 4242);
                put_i32(m, 20, 77);
                put_i32(m, 24, errno);
            },
            sas,
        )
    };
    let full = reply(
        0,
        0,
        &[sin([0, 0, 0, 0]), sin([192, 0, 2, 1]), sdl(7, "en1")],
        RTA_DST | RTA_GATEWAY | RTA_IFP,
    );
    assert_eq!(pid_seq(&full), Some((4242, 77)));
    assert_eq!(route_ifindex(&parse(&full).unwrap().0), Ok(7));
    let by_index = reply(5, 0, &[sin([198, 51, 100, 7])], RTA_DST);
    assert_eq!(route_ifindex(&parse(&by_index).unwrap().0), Ok(5));
    let none = reply(0, 0, &[sin([198, 51, 100, 7])], RTA_DST);
    assert_eq!(
        route_ifindex(&parse(&none).unwrap().0),
        Err(NoRoute::Unknown)
    );
    let esrch = reply(0, 3, &[sin([198, 51, 100, 7])], RTA_DST);
    assert_eq!(
        route_ifindex(&parse(&esrch).unwrap().0),
        Err(NoRoute::Errno(3))
    );
    let add = msg(RTM_ADD, RT_MSGHDR_LEN, |m| put_u16(m, 4, 5), &[]);
    assert_eq!(
        route_ifindex(&parse(&add).unwrap().0),
        Err(NoRoute::Unknown)
    );
    assert_eq!(pid_seq(&full[..RT_MSGHDR_LEN - 1]), None);
}
