//! `--events`, `--summary` and `--fail-on`: where the shim's events go, running the
//! program as a child, and what is printed (and exited with) when it ends.
//!
//! The events file is the shim's (`MIFSHIM_EVENTS`, one JSON object per line, schema
//! version 1 in the README). With `--summary` or `--fail-on` and no `--events`, it is a
//! temporary file (mode 0600 in `$TMPDIR`), removed at the end; with `--events FILE`
//! only the lines appended during this run are read (from the size FILE had at start).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::sys::child::End;

/// Exit status when a `--fail-on` condition held.
pub const EXIT_FAIL_ON: u8 = 3;

/// Appends `lines` (whole lines, each under `PIPE_BUF`) to the events file at `path`
/// with one `write(2)` each, as the shim appends its own (`O_APPEND`: never torn by a
/// concurrent writer); never blocks (a FIFO without a reader is skipped).
pub fn append_lines(path: &Path, lines: &str) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let Ok(mut f) = std::fs::OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    else {
        return;
    };
    for line in lines.lines() {
        let _ = f.write_all(format!("{line}\n").as_bytes());
    }
}

/// The events file of this run.
pub struct Events {
    pub path: PathBuf,
    /// Size of the file when the run started: lines before it are not this run's.
    start: u64,
    temp: bool,
}

impl Events {
    /// Removes the file if it is a temporary one (mifrun ends by `exit`, which runs no
    /// destructor).
    fn cleanup(&self) {
        if self.temp {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Prepares the events file: `given` (`--events`, made absolute; created if missing,
/// a FIFO left alone unless it must be `read`), or a fresh temporary file when
/// `read` and none was given. `None`: no events.
pub fn prepare(given: Option<&Path>, read: bool) -> Result<Option<Events>, String> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let Some(path) = given else {
        if !read {
            return Ok(None);
        }
        let dir = std::env::temp_dir();
        for n in 0..100u32 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let path = dir.join(format!(
                "mifrun-events-{}-{nanos:x}-{n}.jsonl",
                std::process::id()
            ));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(_) => {
                    return Ok(Some(Events {
                        path,
                        start: 0,
                        temp: true,
                    }));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(format!(
                        "cannot create a temporary events file in {}: {e}",
                        dir.display()
                    ));
                }
            }
        }
        return Err(format!(
            "cannot create a temporary events file in {}",
            dir.display()
        ));
    };
    let path =
        std::path::absolute(path).map_err(|e| format!("--events {}: {e}", path.display()))?;
    if let Ok(m) = std::fs::metadata(&path)
        && m.file_type().is_fifo()
    {
        if read {
            return Err(format!(
                "--events {}: a FIFO cannot be read back for --summary/--fail-on; give a regular file",
                path.display()
            ));
        }
        return Ok(Some(Events {
            path,
            start: 0,
            temp: false,
        }));
    }
    let f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(&path)
        .map_err(|e| format!("--events {}: {e}", path.display()))?;
    let start = f.metadata().map_or(0, |m| m.len());
    Ok(Some(Events {
        path,
        start,
        temp: false,
    }))
}

impl Events {
    /// What was appended since the run started (invalid UTF-8 replaced).
    pub fn read_new(&self) -> std::io::Result<String> {
        let mut f = std::fs::File::open(&self.path)?;
        f.seek(std::io::SeekFrom::Start(self.start))?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// Counts of one interface.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PerIf {
    pub tcp: u64,
    pub udp: u64,
    pub other: u64,
    pub names: u64,
    /// Decisions for it that failed (the device binding was refused).
    pub failed: u64,
}

/// What the events of one run add up to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub decisions: u64,
    pub names: u64,
    pub pids: std::collections::BTreeSet<u64>,
    pub steered: BTreeMap<String, PerIf>,
    /// Direct decisions by reason (`loopback`, `rule rule 2`, …).
    pub direct: BTreeMap<String, u64>,
    /// Blocked calls by reason.
    pub blocked: BTreeMap<String, u64>,
    /// Lines that are not a version-1 event (should stay 0).
    pub malformed: u64,
    /// The first few events that meet each `--fail-on` class, as text.
    pub policy_direct: Vec<String>,
    /// How many were left direct by the policy (see [`policy_direct`]).
    pub policy_direct_n: u64,
    pub blocked_list: Vec<String>,
}

/// Reasons for `direct` that `--fail-on direct` counts: the policy sent it down the
/// routing table. Exemptions (loopback, this host, a scope the program chose,
/// listeners left open, a device the program bound itself) do not count.
fn policy_direct(reason: &str) -> bool {
    matches!(reason, "rule" | "unavailable" | "no-via")
}

fn reason_text(v: &Value) -> String {
    let reason = v["reason"].as_str().unwrap_or("?");
    match v["rule"].as_str() {
        Some(rule) => format!("{reason} `{rule}`"),
        None => reason.replace('-', " "),
    }
}

fn what(v: &Value) -> String {
    if v["event"] == "name" {
        format!(
            "name {} ({})",
            v["name"].as_str().unwrap_or("?"),
            v["program"].as_str().unwrap_or("?")
        )
    } else {
        format!(
            "{} {} {} ({})",
            v["call"].as_str().unwrap_or("?"),
            v["protocol"].as_str().unwrap_or("?"),
            v["destination"].as_str().unwrap_or("?"),
            v["program"].as_str().unwrap_or("?")
        )
    }
}

/// Adds up the events in `text`.
pub fn summarize(text: &str) -> Summary {
    let mut s = Summary::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            s.malformed += 1;
            continue;
        };
        if v["v"] != 1 {
            s.malformed += 1;
            continue;
        }
        if let Some(pid) = v["pid"].as_u64() {
            s.pids.insert(pid);
        }
        let name = v["event"] == "name";
        if name {
            s.names += 1;
        } else {
            s.decisions += 1;
        }
        match v["decision"].as_str() {
            Some("bind") => {
                let iface = v["interface"].as_str().unwrap_or("?").to_owned();
                let e = s.steered.entry(iface).or_default();
                if !v["errno"].is_null() && !name {
                    e.failed += 1;
                } else if name {
                    e.names += 1;
                } else {
                    match v["protocol"].as_str() {
                        Some("tcp") => e.tcp += 1,
                        Some("udp") => e.udp += 1,
                        _ => e.other += 1,
                    }
                }
            }
            Some("direct") => {
                let key = if name {
                    format!("{} (names)", reason_text(&v))
                } else {
                    reason_text(&v)
                };
                *s.direct.entry(key).or_default() += 1;
                if policy_direct(v["reason"].as_str().unwrap_or("")) {
                    s.policy_direct_n += 1;
                    if s.policy_direct.len() < 5 {
                        s.policy_direct
                            .push(format!("{} by {}", what(&v), reason_text(&v)));
                    }
                }
            }
            Some("block") => {
                *s.blocked.entry(reason_text(&v)).or_default() += 1;
                if s.blocked_list.len() < 5 {
                    s.blocked_list
                        .push(format!("{} by {}", what(&v), reason_text(&v)));
                }
            }
            _ => {}
        }
    }
    s
}

impl Summary {
    pub fn blocked_total(&self) -> u64 {
        self.blocked.values().sum()
    }

    /// Decisions (and names) left direct by the policy (see [`policy_direct`]).
    pub fn policy_direct_total(&self) -> u64 {
        self.policy_direct_n
    }
}

fn list(m: &BTreeMap<String, u64>) -> String {
    let total: u64 = m.values().sum();
    let mut out = total.to_string();
    for (i, (k, n)) in m.iter().enumerate() {
        let _ = write!(out, "{}{k} {n}", if i == 0 { ": " } else { ", " });
    }
    out
}

fn end_text(end: End) -> String {
    match end {
        End::Exited(c) => format!("exited with status {c}"),
        End::Signaled { signal, core } => format!(
            "killed by signal {signal}{}",
            if core { " (core dumped)" } else { "" }
        ),
    }
}

/// The human summary (for standard error).
pub fn render(s: &Summary, end: End) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "mifrun: summary: {} decision(s) and {} name(s) in {} process(es); the program {}",
        s.decisions,
        s.names,
        s.pids.len(),
        end_text(end)
    );
    for (iface, c) in &s.steered {
        let _ = write!(
            out,
            "  {iface:<10} steered {} (tcp {}, udp {}",
            c.tcp + c.udp + c.other,
            c.tcp,
            c.udp
        );
        if c.other > 0 {
            let _ = write!(out, ", other {}", c.other);
        }
        let _ = write!(out, "), names {}", c.names);
        if c.failed > 0 {
            let _ = write!(out, ", {} refused (the device binding failed)", c.failed);
        }
        out.push('\n');
    }
    if s.steered.is_empty() {
        let _ = writeln!(out, "  {:<10} 0", "steered");
    }
    let _ = writeln!(out, "  {:<10} {}", "direct", list(&s.direct));
    let _ = writeln!(out, "  {:<10} {}", "blocked", list(&s.blocked));
    if s.malformed > 0 {
        let _ = writeln!(
            out,
            "  warning: {} line(s) of the events file are not version-1 events",
            s.malformed
        );
    }
    out
}

/// The `--fail-on` verdict: one line per class that held (empty: none).
pub fn failures(s: &Summary, classes: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    if classes.iter().any(|c| c == "blocked") && s.blocked_total() > 0 {
        out.push(format!(
            "--fail-on blocked: {} call(s) blocked: {}",
            s.blocked_total(),
            s.blocked_list.join("; ")
        ));
    }
    if classes.iter().any(|c| c == "direct") && s.policy_direct_total() > 0 {
        out.push(format!(
            "--fail-on direct: {} left direct by the policy: {}",
            s.policy_direct_total(),
            s.policy_direct.join("; ")
        ));
    }
    out
}

/// Runs the program as a child, waits for it, prints the summary (`--summary`) and
/// applies `--fail-on`; ends mifrun as the program ended. Returns only when the
/// program could not be started.
pub fn run(
    cmd: &mut std::process::Command,
    events: &Events,
    summary: bool,
    fail_on: &[String],
    guard: Option<&crate::guard::Guard>,
) -> std::io::Error {
    let blocked = crate::sys::child::block();
    blocked.restore_in_child(cmd);
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            blocked.restore();
            return e;
        }
    };
    let end = crate::sys::child::wait(child.id() as i32);
    blocked.restore();
    finish(events, end, summary, fail_on, guard)
}

/// After the program ended (`end`): prints the summary (`--summary`), applies
/// `--fail-on` and ends mifrun as the program ended (exit 3 when a condition held).
/// Also for a program run under the supervisor, which writes its decisions to the
/// same events file.
pub fn finish(
    events: &Events,
    end: End,
    summary: bool,
    fail_on: &[String],
    guard: Option<&crate::guard::Guard>,
) -> ! {
    use std::io::Write as _;
    // Standard error may be a pipe whose reader is gone by now: nothing written to it
    // may change what mifrun exits with (eprintln! would panic: status 101).
    let mut err = std::io::stderr();
    let s = match events.read_new() {
        Ok(text) => summarize(&text),
        Err(e) => {
            let _ = writeln!(
                err,
                "mifrun: cannot read the events file {}: {e}",
                events.path.display()
            );
            Summary {
                malformed: 1,
                ..Summary::default()
            }
        }
    };
    // What the guard dropped while the program ran (the reaper writes the run's
    // guard_drop lines to the events file when the whole tree has exited, daemons
    // included).
    let drops = guard.map(crate::guard::Guard::drops);
    if summary {
        let _ = write!(err, "{}", render(&s, end));
        match &drops {
            Some(Ok(d)) => {
                let _ = writeln!(err, "  {:<10} {}", "dropped", crate::guard::summary_list(d));
            }
            Some(Err(e)) => {
                let _ = writeln!(err, "  {:<10} unknown: {e}", "dropped");
            }
            None => {}
        }
    }
    events.cleanup();
    let mut failed = failures(&s, fail_on);
    if fail_on.iter().any(|c| c == "dropped") {
        match &drops {
            Some(Ok(d)) if crate::guard::total(d) > 0 => failed.push(format!(
                "--fail-on dropped: --guard dropped {} packet(s): {}",
                crate::guard::total(d),
                crate::guard::summary_list(d)
            )),
            // Unknown is not "nothing": fail closed.
            Some(Err(e)) => failed.push(format!("--fail-on dropped: {e}")),
            _ => {}
        }
    }
    for f in &failed {
        let _ = writeln!(err, "mifrun: {f}");
    }
    if !failed.is_empty() {
        let _ = writeln!(
            err,
            "mifrun: exit status {EXIT_FAIL_ON} (--fail-on; the program {})",
            end_text(end)
        );
        std::process::exit(EXIT_FAIL_ON as i32);
    }
    match end {
        End::Exited(c) => std::process::exit(c),
        End::Signaled { signal, .. } => crate::sys::child::die_by(signal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINES: &str = r#"{"v":1,"time":"2025-01-01T00:00:00.000000Z","pid":10,"program":"curl","event":"decision","call":"connect","fd":5,"protocol":"tcp","destination":"203.0.113.10:80","address":"203.0.113.10","port":80,"decision":"bind","interface":"wlan0","ifindex":3,"reason":"default","rule":null}
{"v":1,"time":"2025-01-01T00:00:00.000001Z","pid":10,"program":"curl","event":"decision","call":"sendto","fd":6,"protocol":"udp","destination":"127.0.0.1:9","address":"127.0.0.1","port":9,"decision":"direct","interface":null,"reason":"loopback","rule":null}
{"v":1,"time":"2025-01-01T00:00:00.000002Z","pid":11,"program":"py","event":"decision","call":"connect","fd":3,"protocol":"tcp","destination":"203.0.113.9:81","address":"203.0.113.9","port":81,"decision":"block","interface":null,"reason":"rule","rule":"rule 1","rule_line":3,"errno":"EACCES"}
{"v":1,"time":"2025-01-01T00:00:00.000003Z","pid":11,"program":"py","event":"decision","call":"connect","fd":4,"protocol":"tcp","destination":"203.0.113.8:80","address":"203.0.113.8","port":80,"decision":"direct","interface":null,"reason":"rule","rule":"rule 2"}
{"v":1,"time":"2025-01-01T00:00:00.000004Z","pid":11,"program":"py","event":"name","name":"svc.mif.test","decision":"bind","interface":"wlan0","ifindex":3,"reason":"default","rule":null,"source":"MIFSHIM_DNS","servers":["203.0.113.53:53"],"result":"ok","answers":["203.0.113.10"]}
{"v":1,"torn
"#;

    #[test]
    fn events_add_up_per_interface_and_reason() {
        let s = summarize(LINES);
        assert_eq!((s.decisions, s.names, s.malformed), (4, 1, 1));
        assert_eq!(s.pids.len(), 2);
        assert_eq!(
            s.steered["wlan0"],
            PerIf {
                tcp: 1,
                names: 1,
                ..PerIf::default()
            }
        );
        assert_eq!(s.direct["loopback"], 1);
        assert_eq!(s.direct["rule `rule 2`"], 1);
        assert_eq!(s.blocked["rule `rule 1`"], 1);
        assert_eq!(s.blocked_total(), 1);
        assert_eq!(s.policy_direct_total(), 1);
        let text = render(&s, End::Exited(0));
        assert!(
            text.contains("wlan0      steered 1 (tcp 1, udp 0), names 1"),
            "{text}"
        );
        assert!(
            text.contains("direct     2: loopback 1, rule `rule 2` 1"),
            "{text}"
        );
        assert!(text.contains("blocked    1: rule `rule 1` 1"), "{text}");
    }

    #[test]
    fn fail_on_names_what_held() {
        let s = summarize(LINES);
        let f = failures(&s, &["blocked".into()]);
        assert_eq!(f.len(), 1);
        assert!(
            f[0].contains("connect tcp 203.0.113.9:81 (py) by rule `rule 1`"),
            "{f:?}"
        );
        let f = failures(&s, &["blocked".into(), "direct".into()]);
        assert_eq!(f.len(), 2);
        assert!(f[1].contains("203.0.113.8:80"), "{f:?}");
        // Loopback alone is never a failure.
        let s = summarize(LINES.lines().nth(1).unwrap());
        assert!(failures(&s, &["blocked".into(), "direct".into()]).is_empty());
    }
}
