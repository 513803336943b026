//! The `res_*` family (`res_query`, `res_search`, `res_querydomain`, `res_send` and
//! their `res_n*` forms): glibc sends these queries itself, from sockets no preload
//! sees, to the default link's servers. Here the query is sent (the program's own
//! bytes for `res_send`, one built as `res_mkquery` would for the others) to the chosen
//! interface's servers, from sockets bound to it, and the answer's bytes are the
//! program's. What cannot be asked over the chosen link fails (`-1`, `h_errno`).
//!
//! The `res_state` a program passes to the `res_n*` forms is not read: its servers
//! are the system's, and the chosen link's are asked instead (as with `[dns]
//! redirect = true`).

use super::raw::{self, NO_DATA, NO_RECOVERY, TRY_AGAIN};
use super::resolve::{self, RawOutcome};
use super::{conf, name, names, servers_for, stub_plan};
use crate::netstate;
use crate::state::{self, Mode};
use crate::{log, log_at};
use config_schema::{BlockReason, Decision, decide_name};

/// How a `res_*` call is answered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ResPlan {
    /// Leave it to the C library (inert, `[dns] steer = false`, direct by policy).
    Real,
    /// Fail: `-1` with this `h_errno` (and errno, for `res_send`).
    Fail { h_errno: i32, errno: i32 },
    /// These answer bytes; with a non-zero `h_errno` the call returns `-1` after
    /// copying them (as `res_query` does for NXDOMAIN or NODATA).
    Answer { bytes: Vec<u8>, h_errno: i32 },
}

const fn fail(h_errno: i32) -> ResPlan {
    ResPlan::Fail { h_errno, errno: 0 }
}

/// Sends `query` (asking about `qname`, for the policy's name rules) over the
/// interface names go by; `None`: leave the call to the C library.
fn ask(qname: &str, query: &[u8]) -> Option<Result<RawOutcome, ResPlan>> {
    let profile = match state::mode() {
        Mode::Inert => return None,
        Mode::Active(p) => p,
    };
    if !profile.dns.steer {
        return None;
    }
    // Only the decision is taken on the snapshot (a query left by siglongjmp must not
    // leave a snapshot reader count behind).
    let b = match netstate::with(|snap| decide_name(profile, snap, qname)) {
        Decision::Direct(_) => return None,
        Decision::Block(b) => {
            return Some(Err(match b.reason {
                BlockReason::Rule(r) => {
                    log_at!(Info, "res query {qname} blocked by {}", r.label);
                    fail(NO_RECOVERY)
                }
                BlockReason::Unavailable(list) => {
                    log::warn_limited(format_args!(
                        "res query {qname} refused: no usable interface among [{}]",
                        names(list)
                    ));
                    fail(TRY_AGAIN)
                }
            }));
        }
        Decision::Bind(b) => b,
    };
    let rc = conf::resolv_conf();
    let (servers, source) = servers_for(profile, b.ifname, b.index, &rc);
    if servers.is_empty() {
        log::warn_limited(format_args!(
            "res query {qname}: no DNS server known for {} (the system's are loopback); set [interfaces.{}] dns or mifrun --dns",
            b.ifname, b.ifname
        ));
        return Some(Err(fail(TRY_AGAIN)));
    }
    log_at!(
        Info,
        "res query {qname} over {} with {} from {source}",
        b.ifname,
        super::Servers(&servers)
    );
    Some(Ok(resolve::exchange_raw(
        &stub_plan(profile, &b, &servers),
        query,
    )))
}

/// `res_query(name, class, type)`: one query for `name` exactly.
pub(crate) fn query(name: &[u8], class: u16, ty: u16) -> ResPlan {
    let Some((wire, _)) = name::pton(name) else {
        // res_mkquery cannot encode it: glibc fails the same way, asking nobody.
        return fail(NO_RECOVERY);
    };
    let q = raw::build_query(crate::sys::net::random_u16(), &wire, class, ty);
    let qname = raw::question_name(&q).unwrap_or_default();
    match ask(&qname, &q) {
        None => ResPlan::Real,
        Some(Err(p)) => p,
        Some(Ok(RawOutcome::Answer(bytes))) => {
            let h_errno = raw::query_h_errno(&bytes);
            ResPlan::Answer { bytes, h_errno }
        }
        // Every server refused: glibc's res_send fails, res_query says TRY_AGAIN (the
        // answer stays in the buffer: res_search reads its SERVFAIL to go on).
        Some(Ok(RawOutcome::Refused(bytes))) => ResPlan::Answer {
            bytes,
            h_errno: TRY_AGAIN,
        },
        Some(Ok(RawOutcome::NoAnswer)) => fail(TRY_AGAIN),
    }
}

/// `res_querydomain(name, domain, …)`: `name.domain` (or `name` without one trailing
/// dot when there is no domain).
pub(crate) fn querydomain(name: &[u8], domain: Option<&[u8]>, class: u16, ty: u16) -> ResPlan {
    let long = match domain {
        Some(d) => [name, b".", d].concat(),
        None => name.strip_suffix(b".").unwrap_or(name).to_vec(),
    };
    // glibc: NO_RECOVERY for a name of MAXDNAME (1025) bytes or more.
    if long.len() >= 1025 {
        return fail(NO_RECOVERY);
    }
    query(&long, class, ty)
}

/// `res_search(name, …)`: the `search` list and `ndots` of /etc/resolv.conf, as
/// glibc's `res_nsearch` applies them.
pub(crate) fn search(name: &[u8], class: u16, ty: u16) -> ResPlan {
    let Ok(text) = std::str::from_utf8(name) else {
        return query(name, class, ty);
    };
    let rc = conf::resolv_conf();
    // The search list of the interface the name goes by (the policy's for it, else
    // the system's).
    let search: &[String] = match state::mode() {
        Mode::Active(p) => match netstate::with(|snap| decide_name(p, snap, text)) {
            Decision::Bind(b) => super::search_list(p, &b.ifname, &rc),
            _ => &rc.search,
        },
        Mode::Inert => &rc.search,
    };
    let dots = text.matches('.').count();
    let as_is_first = text.ends_with('.') || dots >= rc.ndots;
    let mut last = fail(raw::HOST_NOT_FOUND);
    let mut first_h_errno = None;
    let (mut got_nodata, mut got_servfail) = (false, false);
    for (i, cand) in resolve::candidates(text, search, rc.ndots)
        .iter()
        .enumerate()
    {
        let p = query(cand.as_bytes(), class, ty);
        let h = match &p {
            ResPlan::Real => return ResPlan::Real,
            ResPlan::Answer { h_errno: 0, .. } => return p,
            ResPlan::Answer { h_errno, .. } | ResPlan::Fail { h_errno, .. } => *h_errno,
        };
        if i == 0 && as_is_first {
            first_h_errno = Some(h);
        }
        let servfail = matches!(&p, ResPlan::Answer { bytes, .. } if raw::rcode(bytes) == 2);
        last = p;
        match h {
            NO_DATA => got_nodata = true,
            raw::HOST_NOT_FOUND => {}
            TRY_AGAIN if servfail => got_servfail = true,
            _ => return last,
        }
    }
    let h = first_h_errno.unwrap_or(if got_nodata {
        NO_DATA
    } else if got_servfail {
        TRY_AGAIN
    } else {
        match &last {
            ResPlan::Answer { h_errno, .. } | ResPlan::Fail { h_errno, .. } => *h_errno,
            ResPlan::Real => raw::HOST_NOT_FOUND,
        }
    });
    match last {
        ResPlan::Answer { bytes, .. } => ResPlan::Answer { bytes, h_errno: h },
        _ => fail(h),
    }
}

/// `res_send(msg)`: the program's own query, sent as it is; the answer whatever its
/// response code (`-1` with `ECONNREFUSED` when every server refused,
/// `ETIMEDOUT` when none answered).
pub(crate) fn send(msg: &[u8]) -> ResPlan {
    if msg.len() < 12 {
        return ResPlan::Fail {
            h_errno: NO_RECOVERY,
            errno: libc::EINVAL,
        };
    }
    // A message without a readable question is still the program's to send; the
    // policy's default interface carries it.
    let qname = raw::question_name(msg).unwrap_or_else(|| ".".into());
    match ask(&qname, msg) {
        None => ResPlan::Real,
        Some(Err(p)) => p,
        Some(Ok(RawOutcome::Answer(bytes))) => ResPlan::Answer { bytes, h_errno: 0 },
        Some(Ok(RawOutcome::Refused(_))) => ResPlan::Fail {
            h_errno: TRY_AGAIN,
            errno: libc::ECONNREFUSED,
        },
        Some(Ok(RawOutcome::NoAnswer)) => ResPlan::Fail {
            h_errno: TRY_AGAIN,
            errno: libc::ETIMEDOUT,
        },
    }
}
