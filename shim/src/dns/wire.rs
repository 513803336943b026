//! DNS messages, through the `simple-dns` crate (no async runtime, no threads, one
//! small dependency): building queries and reading answers, following CNAME chains.
//! Pure functions, unit-tested against packets built with the same crate.

use simple_dns::rdata::RData;
use simple_dns::{CLASS, Name, Packet, PacketFlag, Question, RCODE, TYPE};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The record type asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QType {
    A,
    Aaaa,
    /// A reverse lookup: the answer is a name, reported as the reply's `canon`.
    Ptr,
}

impl QType {
    fn rtype(self) -> TYPE {
        match self {
            QType::A => TYPE::A,
            QType::Aaaa => TYPE::AAAA,
            QType::Ptr => TYPE::PTR,
        }
    }
}

/// A query's wire form.
pub(crate) fn build_query(id: u16, name: &str, q: QType) -> Option<Vec<u8>> {
    let mut p = Packet::new_query(id);
    p.set_flags(PacketFlag::RECURSION_DESIRED);
    let qname = Name::new(name.trim_end_matches('.')).ok()?;
    p.questions.push(Question::new(
        qname,
        q.rtype().into(),
        CLASS::IN.into(),
        false,
    ));
    p.build_bytes_vec().ok()
}

/// What one answer says about the question it answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// Addresses (possibly none: NODATA) and the canonical name at the end of the
    /// CNAME chain. `chase` is set when the chain ends at a name with no address
    /// record in this message (it must be asked for separately).
    Answer {
        addrs: Vec<IpAddr>,
        canon: String,
        chase: Option<String>,
    },
    /// NXDOMAIN.
    NoName,
    /// The answer did not fit: ask again over TCP.
    Truncated,
    /// SERVFAIL, REFUSED or anything else: try the next server.
    ServerError,
}

/// Reads `bytes` as the answer to query `id` for `name`/`q`. `None`: not an answer to
/// that query at all (wrong id or question: ignore it, as a stub resolver must).
pub(crate) fn parse_reply(bytes: &[u8], id: u16, name: &str, q: QType) -> Option<Reply> {
    let p = Packet::parse(bytes).ok()?;
    if p.id() != id {
        return None;
    }
    let name = name.trim_end_matches('.');
    let asked = p.questions.first()?;
    if !same_name(&asked.qname.to_string(), name) || asked.qtype != q.rtype().into() {
        return None;
    }
    if p.has_flags(PacketFlag::TRUNCATION) {
        return Some(Reply::Truncated);
    }
    match p.rcode() {
        RCODE::NoError => {}
        RCODE::NameError => return Some(Reply::NoName),
        _ => return Some(Reply::ServerError),
    }
    // Follow the CNAME chain from the question (bounded: a loop is an error).
    let mut current = name.to_owned();
    let mut steps = 0;
    loop {
        let next = p.answers.iter().find_map(|rr| match &rr.rdata {
            RData::CNAME(c) if same_name(&rr.name.to_string(), &current) => Some(c.0.to_string()),
            _ => None,
        });
        match next {
            Some(n) if steps < 16 => {
                current = n.trim_end_matches('.').to_owned();
                steps += 1;
            }
            Some(_) => return Some(Reply::ServerError),
            None => break,
        }
    }
    let addrs: Vec<IpAddr> = p
        .answers
        .iter()
        .filter(|rr| same_name(&rr.name.to_string(), &current))
        .filter_map(|rr| match (&rr.rdata, q) {
            (RData::A(a), QType::A) => Some(IpAddr::V4(Ipv4Addr::from(a.address))),
            (RData::AAAA(a), QType::Aaaa) => Some(IpAddr::V6(Ipv6Addr::from(a.address))),
            _ => None,
        })
        .collect();
    if q == QType::Ptr {
        let target = p.answers.iter().find_map(|rr| match &rr.rdata {
            RData::PTR(t) if same_name(&rr.name.to_string(), &current) => Some(t.0.to_string()),
            _ => None,
        });
        // NODATA for a reverse lookup is an answer whose name is the question's.
        let canon = target.map_or_else(|| name.to_owned(), |t| t.trim_end_matches('.').to_owned());
        return Some(Reply::Answer {
            addrs,
            canon,
            chase: None,
        });
    }
    let chase = (addrs.is_empty() && steps > 0).then(|| current.clone());
    Some(Reply::Answer {
        addrs,
        canon: current,
        chase,
    })
}

fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use simple_dns::ResourceRecord;
    use simple_dns::rdata::{A, AAAA, CNAME};

    fn reply(
        id: u16,
        qname: &str,
        q: QType,
        rcode: RCODE,
        answers: Vec<ResourceRecord<'_>>,
        tc: bool,
    ) -> Vec<u8> {
        let mut p = Packet::new_reply(id);
        p.questions.push(Question::new(
            Name::new_unchecked(qname),
            q.rtype().into(),
            CLASS::IN.into(),
            false,
        ));
        *p.rcode_mut() = rcode;
        if tc {
            p.set_flags(PacketFlag::TRUNCATION);
        }
        p.answers = answers;
        p.build_bytes_vec().unwrap()
    }

    fn a<'a>(name: &'a str, ip: [u8; 4]) -> ResourceRecord<'a> {
        ResourceRecord::new(
            Name::new_unchecked(name),
            CLASS::IN,
            60,
            RData::A(A {
                address: u32::from_be_bytes(ip),
            }),
        )
    }

    fn cname<'a>(name: &'a str, to: &'a str) -> ResourceRecord<'a> {
        ResourceRecord::new(
            Name::new_unchecked(name),
            CLASS::IN,
            60,
            RData::CNAME(CNAME(Name::new_unchecked(to))),
        )
    }

    #[test]
    fn query_round_trips() {
        let q = build_query(0x1234, "www.example.", QType::Aaaa).unwrap();
        let p = Packet::parse(&q).unwrap();
        assert_eq!(p.id(), 0x1234);
        assert!(p.has_flags(PacketFlag::RECURSION_DESIRED));
        assert_eq!(p.questions[0].qname.to_string(), "www.example");
        assert!(build_query(1, &format!("{}.example", "a".repeat(64)), QType::A).is_none());
    }

    #[test]
    fn addresses_and_cname_chains() {
        let r = reply(
            7,
            "www.example",
            QType::A,
            RCODE::NoError,
            vec![
                cname("www.example", "edge.cdn.example"),
                cname("edge.cdn.example", "e1.cdn.example"),
                a("e1.cdn.example", [203, 0, 113, 10]),
                a("unrelated.example", [192, 0, 2, 1]),
            ],
            false,
        );
        assert_eq!(
            parse_reply(&r, 7, "WWW.example.", QType::A),
            Some(Reply::Answer {
                addrs: vec!["203.0.113.10".parse().unwrap()],
                canon: "e1.cdn.example".into(),
                chase: None
            })
        );
    }

    #[test]
    fn chain_without_addresses_asks_to_chase() {
        let r = reply(
            7,
            "www.example",
            QType::A,
            RCODE::NoError,
            vec![cname("www.example", "far.example")],
            false,
        );
        assert_eq!(
            parse_reply(&r, 7, "www.example", QType::A),
            Some(Reply::Answer {
                addrs: vec![],
                canon: "far.example".into(),
                chase: Some("far.example".into())
            })
        );
    }

    #[test]
    fn aaaa_records_only_for_aaaa_questions() {
        let six = ResourceRecord::new(
            Name::new_unchecked("h.example"),
            CLASS::IN,
            60,
            RData::AAAA(AAAA { address: 1 }),
        );
        let r = reply(
            9,
            "h.example",
            QType::Aaaa,
            RCODE::NoError,
            vec![six, a("h.example", [1, 2, 3, 4])],
            false,
        );
        match parse_reply(&r, 9, "h.example", QType::Aaaa) {
            Some(Reply::Answer { addrs, .. }) => {
                assert_eq!(addrs, vec!["::1".parse::<IpAddr>().unwrap()])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ptr_answers() {
        // The reverse names themselves: lookup.rs's `reverse_names_of_both_families`.
        let q = "10.113.0.203.in-addr.arpa";
        let ptr = ResourceRecord::new(
            Name::new_unchecked(q),
            CLASS::IN,
            60,
            RData::PTR(simple_dns::rdata::PTR(Name::new_unchecked("web.example."))),
        );
        let r = reply(3, q, QType::Ptr, RCODE::NoError, vec![ptr], false);
        assert_eq!(
            parse_reply(&r, 3, q, QType::Ptr),
            Some(Reply::Answer {
                addrs: vec![],
                canon: "web.example".into(),
                chase: None
            })
        );
        let none = reply(3, q, QType::Ptr, RCODE::NoError, vec![], false);
        assert_eq!(
            parse_reply(&none, 3, q, QType::Ptr),
            Some(Reply::Answer {
                addrs: vec![],
                canon: q.into(),
                chase: None
            })
        );
    }

    #[test]
    fn rcodes_truncation_and_strangers() {
        let nx = reply(1, "no.example", QType::A, RCODE::NameError, vec![], false);
        assert_eq!(
            parse_reply(&nx, 1, "no.example", QType::A),
            Some(Reply::NoName)
        );
        let sf = reply(
            1,
            "x.example",
            QType::A,
            RCODE::ServerFailure,
            vec![],
            false,
        );
        assert_eq!(
            parse_reply(&sf, 1, "x.example", QType::A),
            Some(Reply::ServerError)
        );
        let tc = reply(1, "x.example", QType::A, RCODE::NoError, vec![], true);
        assert_eq!(
            parse_reply(&tc, 1, "x.example", QType::A),
            Some(Reply::Truncated)
        );
        let nodata = reply(1, "x.example", QType::A, RCODE::NoError, vec![], false);
        assert_eq!(
            parse_reply(&nodata, 1, "x.example", QType::A),
            Some(Reply::Answer {
                addrs: vec![],
                canon: "x.example".into(),
                chase: None
            })
        );
        // Wrong id, wrong question, wrong type, garbage: not our answer.
        assert_eq!(parse_reply(&nodata, 2, "x.example", QType::A), None);
        assert_eq!(parse_reply(&nodata, 1, "y.example", QType::A), None);
        assert_eq!(parse_reply(&nodata, 1, "x.example", QType::Aaaa), None);
        assert_eq!(parse_reply(&[1, 2, 3], 1, "x.example", QType::A), None);
    }
}
