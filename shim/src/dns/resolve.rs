//! The stub resolver that runs inside `getaddrinfo`: asks the chosen interface's
//! servers, from sockets bound to that interface, A and AAAA in parallel, each server
//! in turn with a doubling time-out per round, TCP when an answer is truncated, search
//! domains, and a bound on the total time.

use super::raw;
use super::wire::{QType, Reply, build_query, parse_reply};
use crate::sys::net::{Sock, random_u16, wait_any};
use crate::sys::now_ms;
use config_schema::IfName;
use std::net::{IpAddr, SocketAddr};

/// Where and how to ask.
pub(crate) struct Plan<'a> {
    pub ifindex: u32,
    pub ifname: IfName,
    pub servers: &'a [SocketAddr],
    pub timeout_ms: u64,
    pub attempts: u32,
    /// The policy's `mark` for traffic over this interface (its queries are routed
    /// like the program's), and whether a mark the kernel refuses fails the query
    /// (`on_mark_denied = "block"`) rather than letting it go unmarked.
    pub mark: Option<u32>,
    pub mark_required: bool,
}

/// A socket for one query: bound to the plan's interface, with its mark.
fn open(plan: &Plan<'_>, server: &SocketAddr, tcp: bool) -> Option<Sock> {
    let sock = Sock::new(server, tcp, plan.ifindex, &plan.ifname).ok()?;
    if let Some(m) = plan.mark {
        if sock.set_mark(m).is_err() && plan.mark_required {
            crate::log::warn_limited(format_args!(
                "DNS query over {}: mark {m:#x} refused (no CAP_NET_ADMIN or CAP_NET_RAW); not asked (on_mark_denied = \"block\")",
                plan.ifname
            ));
            return None;
        }
    }
    Some(sock)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Found {
        addrs: Vec<IpAddr>,
        canon: String,
    },
    /// NXDOMAIN for every candidate name.
    NoName,
    /// The name exists but has no address of the families asked for.
    NoData,
    /// No server answered in time (or every one failed).
    Again,
}

/// The names to try for `name`, in order (resolv.conf(5) `search` and `ndots`).
pub(crate) fn candidates(name: &str, search: &[String], ndots: usize) -> Vec<String> {
    if let Some(abs) = name.strip_suffix('.') {
        return vec![abs.to_owned()];
    }
    let dots = name.matches('.').count();
    let searched = search
        .iter()
        .filter(|d| !d.is_empty())
        .map(|d| format!("{name}.{d}"));
    if dots >= ndots {
        std::iter::once(name.to_owned()).chain(searched).collect()
    } else {
        searched.chain(std::iter::once(name.to_owned())).collect()
    }
}

/// Resolves the first candidate that exists.
pub(crate) fn lookup(plan: &Plan<'_>, names: &[String], want: &[QType]) -> Outcome {
    let deadline = now_ms() + total_budget(plan);
    let mut nodata = false;
    let mut again = false;
    for n in names {
        match lookup_one(plan, n, want, deadline) {
            Outcome::Found { addrs, canon } => return Outcome::Found { addrs, canon },
            Outcome::NoData => nodata = true,
            Outcome::Again => again = true,
            Outcome::NoName => {}
        }
        if now_ms() >= deadline {
            again = true;
            break;
        }
    }
    if again {
        Outcome::Again
    } else if nodata {
        Outcome::NoData
    } else {
        Outcome::NoName
    }
}

/// The most a whole lookup may take: every round over every server at its time-out.
fn total_budget(plan: &Plan<'_>) -> u64 {
    let per_round: u64 = (0..plan.attempts)
        .map(|a| plan.timeout_ms << a.min(4))
        .sum();
    (per_round * plan.servers.len().max(1) as u64).min(30_000)
}

fn lookup_one(plan: &Plan<'_>, name: &str, want: &[QType], deadline: u64) -> Outcome {
    let mut target = name.to_owned();
    let mut canon = name.to_owned();
    // A CNAME chain that leaves the answer is chased with new queries, a few times.
    for _ in 0..8 {
        let replies = ask(plan, &target, want, deadline);
        let mut addrs = Vec::new();
        let mut no_name = 0;
        let mut unanswered = 0;
        let mut chase = None;
        for r in replies {
            match r {
                Some(Reply::NoName) => no_name += 1,
                Some(Reply::Answer {
                    addrs: a,
                    canon: c,
                    chase: ch,
                }) => {
                    // The canonical name comes from an answer with addresses (or the
                    // end of a chain to chase), not from a NODATA for the other family.
                    if !a.is_empty() || ch.is_some() {
                        canon = c;
                    }
                    addrs.extend(a);
                    if ch.is_some() {
                        chase = ch;
                    }
                }
                Some(Reply::Truncated | Reply::ServerError) | None => unanswered += 1,
            }
        }
        // Addresses of one family are an answer even if the other question failed
        // (as glibc does): the program can connect.
        if !addrs.is_empty() {
            return Outcome::Found { addrs, canon };
        }
        if unanswered > 0 {
            return Outcome::Again;
        }
        if no_name == want.len() {
            return Outcome::NoName;
        }
        match chase {
            Some(next) => target = next,
            None => return Outcome::NoData,
        }
    }
    Outcome::Again
}

/// A reverse lookup of `ip`: `Found` carries the name in `canon` (and no address).
pub(crate) fn reverse(plan: &Plan<'_>, ip: IpAddr) -> Outcome {
    let q = crate::lookup::reverse_name(ip);
    let deadline = now_ms() + total_budget(plan);
    match ask(plan, &q, &[QType::Ptr], deadline).pop().flatten() {
        Some(Reply::Answer { canon, .. }) if canon != q => Outcome::Found {
            addrs: Vec::new(),
            canon,
        },
        Some(Reply::Answer { .. }) => Outcome::NoData,
        Some(Reply::NoName) => Outcome::NoName,
        _ => Outcome::Again,
    }
}

/// Asks the questions (A and AAAA together), server after server, round after round,
/// until every one has a definite answer (addresses, NODATA or NXDOMAIN) or time runs
/// out. Replies come back in the order of `qs`; `None` for a question nobody answered.
fn ask(plan: &Plan<'_>, name: &str, qs: &[QType], deadline: u64) -> Vec<Option<Reply>> {
    let mut done: Vec<Option<Reply>> = vec![None; qs.len()];
    for round in 0..plan.attempts {
        for server in plan.servers {
            let pending: Vec<usize> = (0..qs.len()).filter(|i| done[*i].is_none()).collect();
            if pending.is_empty() {
                break;
            }
            let now = now_ms();
            if now >= deadline {
                return done;
            }
            let wait = (plan.timeout_ms << round.min(4)).min(deadline - now);
            let pq: Vec<QType> = pending.iter().map(|i| qs[*i]).collect();
            let got = udp_exchange(plan, server, name, &pq, wait);
            for (slot, r) in pending.into_iter().zip(got) {
                done[slot] = match r {
                    Some(Reply::Truncated) => {
                        match tcp_exchange(plan, server, name, qs[slot], deadline) {
                            Some(r @ (Reply::Answer { .. } | Reply::NoName)) => Some(r),
                            _ => None,
                        }
                    }
                    Some(r @ (Reply::Answer { .. } | Reply::NoName)) => Some(r),
                    Some(Reply::ServerError) | None => None,
                };
            }
        }
        if done.iter().all(Option::is_some) {
            break;
        }
    }
    done
}

/// Sends every question to `server` at once from one socket bound to the interface
/// and collects the answers that arrive within `wait_ms`.
fn udp_exchange(
    plan: &Plan<'_>,
    server: &SocketAddr,
    name: &str,
    qs: &[QType],
    wait_ms: u64,
) -> Vec<Option<Reply>> {
    let mut out: Vec<Option<Reply>> = vec![None; qs.len()];
    let Some(sock) = open(plan, server, false) else {
        return out;
    };
    if sock.connect(server).is_err() {
        return out;
    }
    let mut ids = Vec::with_capacity(qs.len());
    for q in qs {
        let id = random_u16();
        let Some(query) = build_query(id, name, *q) else {
            return out;
        };
        if sock.send(&query).is_err() {
            return out;
        }
        ids.push(id);
    }
    let end = now_ms() + wait_ms;
    let mut buf = [0u8; 1232];
    while out.iter().any(Option::is_none) {
        let now = now_ms();
        if now >= end {
            break;
        }
        match wait_any(&[&sock], false, end - now) {
            Ok(Some(_)) => {}
            Ok(None) => continue,
            Err(_) => break,
        }
        match sock.recv(&mut buf) {
            // A stray or forged datagram matches no (id, question): ignored.
            Ok(n) => {
                for (i, q) in qs.iter().enumerate() {
                    if out[i].is_none() {
                        if let Some(r) = parse_reply(&buf[..n], ids[i], name, *q) {
                            out[i] = Some(r);
                            break;
                        }
                    }
                }
            }
            // ICMP port unreachable and the like: this server is no good.
            Err(e) if e != libc::EAGAIN && e != libc::EINTR => break,
            Err(_) => {}
        }
    }
    out
}

fn tcp_exchange(
    plan: &Plan<'_>,
    server: &SocketAddr,
    name: &str,
    q: QType,
    deadline: u64,
) -> Option<Reply> {
    let id = random_u16();
    let query = build_query(id, name, q)?;
    let answer = tcp_raw(plan, server, &query, deadline)?;
    parse_reply(&answer, id, name, q)
}

/// One query over TCP to `server` from a socket bound to the interface; the answer's
/// bytes (whatever they say).
fn tcp_raw(plan: &Plan<'_>, server: &SocketAddr, query: &[u8], deadline: u64) -> Option<Vec<u8>> {
    let sock = open(plan, server, true)?;
    sock.connect(server).ok()?;
    let left = |d: u64| d.saturating_sub(now_ms());
    if !sock.wait(true, left(deadline)).ok()? || sock.take_error() != 0 {
        return None;
    }
    let mut msg = Vec::with_capacity(query.len() + 2);
    msg.extend_from_slice(&u16::try_from(query.len()).ok()?.to_be_bytes());
    msg.extend_from_slice(query);
    let mut sent = 0;
    while sent < msg.len() {
        if !sock.wait(true, left(deadline)).ok()? {
            return None;
        }
        match sock.send(&msg[sent..]) {
            Ok(n) => sent += n,
            Err(libc::EAGAIN | libc::EINTR) => {}
            Err(_) => return None,
        }
    }
    let mut buf = vec![0u8; 65_537];
    let mut got = 0;
    loop {
        if got >= 2 {
            let want = u16::from_be_bytes([buf[0], buf[1]]) as usize + 2;
            if got >= want {
                buf.truncate(want);
                buf.drain(..2);
                return Some(buf);
            }
        }
        if !sock.wait(false, left(deadline)).ok()? {
            return None;
        }
        match sock.recv(&mut buf[got..]) {
            Ok(0) => return None,
            Ok(n) => got += n,
            Err(libc::EAGAIN | libc::EINTR) => {}
            Err(_) => return None,
        }
    }
}

/// What asking the servers with a program's own query gave.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RawOutcome {
    /// An answer to the query (any response code but the three below).
    Answer(Vec<u8>),
    /// Every server that answered said SERVFAIL, NOTIMP or REFUSED: the last such answer.
    Refused(Vec<u8>),
    /// Nobody answered in time.
    NoAnswer,
}

/// Sends `query` (a whole DNS message) to the plan's servers, server after server,
/// round after round with doubling time-outs, from sockets bound to the interface,
/// and returns the first answer to it (TCP when the UDP answer is truncated), as
/// glibc's `res_send` does.
pub(crate) fn exchange_raw(plan: &Plan<'_>, query: &[u8]) -> RawOutcome {
    let deadline = now_ms() + total_budget(plan);
    let mut refused = None;
    for round in 0..plan.attempts {
        for server in plan.servers {
            let now = now_ms();
            if now >= deadline {
                return refused.map_or(RawOutcome::NoAnswer, RawOutcome::Refused);
            }
            let wait = (plan.timeout_ms << round.min(4)).min(deadline - now);
            let Some(mut answer) = udp_raw(plan, server, query, wait) else {
                continue;
            };
            if raw::truncated(&answer) {
                if let Some(full) = tcp_raw(plan, server, query, deadline) {
                    if raw::answers(query, &full) {
                        answer = full;
                    }
                }
            }
            if raw::try_next_server(&answer) {
                refused = Some(answer);
                continue;
            }
            return RawOutcome::Answer(answer);
        }
    }
    refused.map_or(RawOutcome::NoAnswer, RawOutcome::Refused)
}

/// One query over UDP to `server` from a socket bound to the interface: the first
/// datagram within `wait_ms` that answers it.
fn udp_raw(plan: &Plan<'_>, server: &SocketAddr, query: &[u8], wait_ms: u64) -> Option<Vec<u8>> {
    let sock = open(plan, server, false)?;
    sock.connect(server).ok()?;
    sock.send(query).ok()?;
    let end = now_ms() + wait_ms;
    let mut buf = vec![0u8; 65_535];
    loop {
        let now = now_ms();
        if now >= end {
            return None;
        }
        match wait_any(&[&sock], false, end - now) {
            Ok(Some(_)) => {}
            Ok(None) => continue,
            Err(_) => return None,
        }
        match sock.recv(&mut buf) {
            // A stray or forged datagram answers another query: ignored.
            Ok(n) if raw::answers(query, &buf[..n]) => {
                buf.truncate(n);
                return Some(buf);
            }
            Ok(_) => {}
            // ICMP port unreachable and the like: this server is no good.
            Err(e) if e != libc::EAGAIN && e != libc::EINTR => return None,
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_and_ndots() {
        let s = vec!["corp.example".to_owned(), "example.net".to_owned()];
        assert_eq!(
            candidates("host", &s, 1),
            vec!["host.corp.example", "host.example.net", "host"]
        );
        assert_eq!(
            candidates("www.example.org", &s, 1),
            vec![
                "www.example.org",
                "www.example.org.corp.example",
                "www.example.org.example.net"
            ]
        );
        assert_eq!(
            candidates("a.b", &s, 2),
            vec!["a.b.corp.example", "a.b.example.net", "a.b"]
        );
        assert_eq!(candidates("abs.example.", &s, 1), vec!["abs.example"]);
        assert_eq!(candidates("host", &[], 1), vec!["host"]);
    }

    #[test]
    fn total_time_is_bounded() {
        let servers = [
            "198.51.100.1:53".parse().unwrap(),
            "198.51.100.2:53".parse().unwrap(),
        ];
        let plan = Plan {
            ifindex: 0,
            ifname: IfName::new("x").unwrap(),
            servers: &servers,
            timeout_ms: 1000,
            attempts: 2,
            mark: None,
            mark_required: false,
        };
        assert_eq!(total_budget(&plan), (1000 + 2000) * 2);
        let plan = Plan {
            timeout_ms: 60_000,
            attempts: 10,
            ..plan
        };
        assert_eq!(total_budget(&plan), 30_000);
    }
}
