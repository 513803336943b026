//! Raw DNS messages, for the `res_*` family: the program hands over a query (or the
//! parts of one) and wants the answer's bytes. Pure functions: building a query as
//! `res_mkquery` does, reading the header and question section, matching an answer to
//! its query as `res_queriesmatch` does, and the `h_errno` `res_query` reports.

/// `h_errno` values (netdb.h).
pub(crate) const HOST_NOT_FOUND: i32 = 1;
pub(crate) const TRY_AGAIN: i32 = 2;
pub(crate) const NO_RECOVERY: i32 = 3;
pub(crate) const NO_DATA: i32 = 4;

const HEADER: usize = 12;

/// The query `res_mkquery(QUERY, …)` builds for a wire-form name: id, RD, one
/// question.
pub(crate) fn build_query(id: u16, wire_name: &[u8], class: u16, ty: u16) -> Vec<u8> {
    let mut q = Vec::with_capacity(HEADER + wire_name.len() + 4);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00]); // RD
    q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // QD=1, AN=NS=AR=0
    q.extend_from_slice(wire_name);
    q.extend_from_slice(&ty.to_be_bytes());
    q.extend_from_slice(&class.to_be_bytes());
    q
}

fn u16_at(msg: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]))
}

pub(crate) fn id(msg: &[u8]) -> Option<u16> {
    u16_at(msg, 0)
}

/// The response code of a message header.
pub(crate) fn rcode(msg: &[u8]) -> u8 {
    msg.get(3).map_or(0, |b| b & 0x0f)
}

/// Whether the message says it was truncated.
pub(crate) fn truncated(msg: &[u8]) -> bool {
    msg.get(2).is_some_and(|b| b & 0x02 != 0)
}

/// Marks a message as truncated (an answer cut to the program's buffer).
pub(crate) fn set_truncated(msg: &mut [u8]) {
    if let Some(b) = msg.get_mut(2) {
        *b |= 0x02;
    }
}

/// The name at `at`, lower-cased, as labels (compression followed, bounded), and
/// where the name ends in the message.
fn read_name(msg: &[u8], mut at: usize) -> Option<(Vec<Vec<u8>>, usize)> {
    let mut labels = Vec::new();
    let mut end = None;
    for _ in 0..128 {
        let len = *msg.get(at)? as usize;
        match len {
            0 => return Some((labels, end.unwrap_or(at + 1))),
            l if l & 0xc0 == 0xc0 => {
                let ptr = (u16_at(msg, at)? & 0x3fff) as usize;
                end.get_or_insert(at + 2);
                if ptr >= at {
                    return None; // only backward pointers: no loops
                }
                at = ptr;
            }
            l if l <= 63 => {
                let l = msg.get(at + 1..at + 1 + len)?;
                labels.push(l.to_ascii_lowercase());
                at += 1 + len;
            }
            _ => return None,
        }
    }
    None
}

/// The questions of a message: (labels, type, class) each.
type Question = (Vec<Vec<u8>>, u16, u16);

fn questions(msg: &[u8]) -> Option<Vec<Question>> {
    let n = u16_at(msg, 4)?;
    let mut at = HEADER;
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let (labels, end) = read_name(msg, at)?;
        out.push((labels, u16_at(msg, end)?, u16_at(msg, end + 2)?));
        at = end + 4;
    }
    Some(out)
}

/// The first question's name as text (for the policy's name rules): labels joined by
/// dots, bytes outside printable ASCII (and dots in labels) escaped as `\DDD`.
pub(crate) fn question_name(msg: &[u8]) -> Option<String> {
    let qs = questions(msg)?;
    let (labels, _, _) = qs.first()?;
    let mut s = String::new();
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        for &c in l {
            if c.is_ascii_graphic() && c != b'.' && c != b'\\' {
                s.push(c as char);
            } else {
                s.push_str(&format!("\\{c:03}"));
            }
        }
    }
    Some(s)
}

/// Whether `reply` answers `query` (`res_queriesmatch`): a response with the query's
/// id and the same questions (names compared without case).
pub(crate) fn answers(query: &[u8], reply: &[u8]) -> bool {
    let qr = reply.get(2).is_some_and(|b| b & 0x80 != 0);
    qr && id(query).is_some()
        && id(query) == id(reply)
        && questions(query).is_some_and(|q| questions(reply) == Some(q))
}

/// What `res_query` makes of an answer: 0 (the program gets it) or the `h_errno` it
/// fails with (the answer is still copied to the program's buffer).
pub(crate) fn query_h_errno(answer: &[u8]) -> i32 {
    let ancount = u16_at(answer, 6).unwrap_or(0);
    match rcode(answer) {
        0 if ancount > 0 => 0,
        0 => NO_DATA,
        3 => HOST_NOT_FOUND,
        2 => TRY_AGAIN,
        _ => NO_RECOVERY,
    }
}

/// Whether a server's answer makes the resolver try the next server (SERVFAIL,
/// NOTIMP, REFUSED), as glibc's `res_send` does.
pub(crate) fn try_next_server(answer: &[u8]) -> bool {
    matches!(rcode(answer), 2 | 4 | 5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::name::pton;

    fn reply_to(q: &[u8], rcode: u8, answers: u16) -> Vec<u8> {
        let mut r = q.to_vec();
        r[2] |= 0x80;
        r[3] = (r[3] & 0xf0) | rcode;
        r[6..8].copy_from_slice(&answers.to_be_bytes());
        r
    }

    #[test]
    fn queries_are_built_like_res_mkquery() {
        let (w, _) = pton(b"\\119ho.mif.test").unwrap();
        let q = build_query(0xbeef, &w, 1, 28);
        assert_eq!(&q[..12], &[0xbe, 0xef, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&q[12..], b"\x03who\x03mif\x04test\x00\x00\x1c\x00\x01");
        assert_eq!(question_name(&q).as_deref(), Some("who.mif.test"));
        let (w, _) = pton(b"a\\.b\\255.x").unwrap();
        let q = build_query(1, &w, 1, 1);
        assert_eq!(question_name(&q).as_deref(), Some("a\\046b\\255.x"));
    }

    #[test]
    fn answers_match_their_query() {
        let (w, _) = pton(b"who.mif.test").unwrap();
        let q = build_query(7, &w, 1, 1);
        let r = reply_to(&q, 0, 1);
        assert!(answers(&q, &r));
        assert!(!answers(&q, &q), "a query is no answer");
        let mut other_id = r.clone();
        other_id[1] = 8;
        assert!(!answers(&q, &other_id));
        let (w2, _) = pton(b"WHO.mif.test").unwrap();
        let mut upper = reply_to(&build_query(7, &w2, 1, 1), 0, 1);
        assert!(answers(&q, &upper), "names compare without case");
        let n = upper.len();
        upper[n - 3] = 28; // another type
        assert!(!answers(&q, &upper));
        // A compressed question name (pointer to itself is refused, no loop).
        let mut looped = r.clone();
        looped.truncate(12);
        looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert!(!answers(&q, &looped));
        assert!(!answers(&q, &r[..14]));
        assert!(!answers(&q, &[]));
    }

    #[test]
    fn h_errno_of_answers() {
        let (w, _) = pton(b"x").unwrap();
        let q = build_query(1, &w, 1, 1);
        assert_eq!(query_h_errno(&reply_to(&q, 0, 2)), 0);
        assert_eq!(query_h_errno(&reply_to(&q, 0, 0)), NO_DATA);
        assert_eq!(query_h_errno(&reply_to(&q, 3, 0)), HOST_NOT_FOUND);
        assert_eq!(query_h_errno(&reply_to(&q, 2, 0)), TRY_AGAIN);
        assert_eq!(query_h_errno(&reply_to(&q, 5, 0)), NO_RECOVERY);
        assert!(try_next_server(&reply_to(&q, 5, 0)));
        assert!(!try_next_server(&reply_to(&q, 3, 0)));
        let mut t = reply_to(&q, 0, 0);
        assert!(!truncated(&t));
        set_truncated(&mut t);
        assert!(truncated(&t));
    }
}
