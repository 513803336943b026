//! The events file (`mifrun --events`, `MIFSHIM_EVENTS`) for what the supervisor
//! decides: the same version-1 lines as the preload's (README, "Events file"), with
//! the fields of a decision from config-schema's [`fields`](config_schema::events::fields)
//! — what the preload writes for the same decision — so `--summary` and `--fail-on`
//! add up a supervised program like a preloaded one.
//!
//! Each line is written with one `write(2)` to a file opened `O_APPEND | O_NONBLOCK`
//! (never torn by the preload's processes appending to the same file, never waited
//! for: a FIFO without room drops the line).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use config_schema::Proto;
use config_schema::events::{Fields, VERSION, civil_utc, proto_name};

/// The most of one string field written (as the preload: a rule label, a name).
const FIELD: usize = 200;

pub struct Events {
    file: File,
}

impl Events {
    /// Opens (or creates, mode 0644) `path` for appending.
    pub fn open(path: &Path) -> io::Result<Events> {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
            .open(path)?;
        Ok(Events { file })
    }

    /// Appends one line (one `write`).
    pub fn write(&mut self, line: &str) {
        let _ = self.file.write(line.as_bytes());
    }
}

/// A JSON string's contents for `s` (at most [`FIELD`] bytes of it).
fn escape(out: &mut String, s: &str) {
    let mut left = FIELD;
    for c in s.chars() {
        if left < c.len_utf8() {
            break;
        }
        left -= c.len_utf8();
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// `,"key":"value"`.
pub fn str_field(out: &mut String, k: &str, v: &str) {
    let _ = write!(out, ",\"{k}\":\"");
    escape(out, v);
    out.push('"');
}

fn sockaddr(a: SocketAddr) -> String {
    match a {
        SocketAddr::V4(v4) => format!("{}:{}", v4.ip(), v4.port()),
        SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
    }
}

/// The part of a decision line after its header: the flow (`call`, `fd`,
/// `protocol`, `destination`, `address`, `port`) and the decision's fields, in the
/// preload's order. A block's `errno` is included; another failure's is added by
/// [`line`].
pub fn body(call: &str, fd: i32, proto: Proto, dest: SocketAddr, f: &Fields<'_>) -> String {
    let mut o = String::with_capacity(256);
    str_field(&mut o, "call", call);
    let _ = write!(o, ",\"fd\":{fd}");
    str_field(&mut o, "protocol", proto_name(proto));
    str_field(&mut o, "destination", &sockaddr(dest));
    str_field(&mut o, "address", &dest.ip().to_string());
    let _ = write!(o, ",\"port\":{}", dest.port());
    str_field(&mut o, "decision", f.decision);
    match f.interface {
        Some((name, index)) => {
            str_field(&mut o, "interface", name);
            let _ = write!(o, ",\"ifindex\":{index}");
        }
        None => o.push_str(",\"interface\":null"),
    }
    str_field(&mut o, "reason", f.reason);
    match f.rule {
        Some(r) => {
            str_field(&mut o, "rule", &r.label);
            if r.line > 0 {
                let _ = write!(o, ",\"rule_line\":{}", r.line);
            }
        }
        None => o.push_str(",\"rule\":null"),
    }
    if f.skipped > 0 {
        let _ = write!(o, ",\"skipped\":{}", f.skipped);
    }
    if f.multicast {
        o.push_str(",\"multicast\":true");
    }
    if let Some(e) = f.errno {
        str_field(&mut o, "errno", e);
    }
    o
}

/// A whole line: the header (`v`, `time`, `pid`, `program`, `event`), `body`, the
/// `errno` of a failed call that was not a block, the newline.
pub fn line(
    secs: i64,
    micros: u32,
    pid: u32,
    program: &str,
    body: &str,
    errno: Option<&str>,
) -> String {
    let (y, mo, d, h, mi, s) = civil_utc(secs);
    let mut o = String::with_capacity(body.len() + 128);
    let _ = write!(
        o,
        "{{\"v\":{VERSION},\"time\":\"{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{micros:06}Z\",\"pid\":{pid}"
    );
    str_field(&mut o, "program", program);
    str_field(&mut o, "event", "decision");
    o.push_str(body);
    if let Some(e) = errno {
        str_field(&mut o, "errno", e);
    }
    o.push_str("}\n");
    o
}

/// The name of an errno the supervisor fails a call with (as the preload names them).
pub fn errno_name(e: i32) -> &'static str {
    match e {
        libc::EACCES => "EACCES",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::EPERM => "EPERM",
        libc::EINVAL => "EINVAL",
        libc::ENODEV => "ENODEV",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::EFAULT => "EFAULT",
        libc::ENOBUFS => "ENOBUFS",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::EBADF => "EBADF",
        libc::ENOSYS => "ENOSYS",
        _ => "EIO",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use config_schema::{Decision, DirectReason};

    #[test]
    fn a_supervisor_line_has_the_preloads_fields_in_its_order() {
        let d = Decision::Direct(DirectReason::Loopback);
        let f = config_schema::events::fields(&d);
        let b = body(
            "connect",
            7,
            Proto::Tcp,
            "[2001:db8::1]:443".parse().unwrap(),
            &f,
        );
        assert_eq!(
            b,
            r#","call":"connect","fd":7,"protocol":"tcp","destination":"[2001:db8::1]:443","address":"2001:db8::1","port":443,"decision":"direct","interface":null,"reason":"loopback","rule":null"#
        );
        let l = line(1_796_169_599, 42, 10, "a\"b", &b, Some("EPERM"));
        assert!(
            l.starts_with(
                r#"{"v":1,"time":"2026-12-01T23:59:59.000042Z","pid":10,"program":"a\"b","event":"decision","call""#
            ),
            "{l}"
        );
        assert!(l.ends_with(",\"errno\":\"EPERM\"}\n"), "{l}");
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["program"], "a\"b");
        assert_eq!(v["errno"], "EPERM");
    }
}
