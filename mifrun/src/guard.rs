//! `--guard`: a kernel backstop. The program's whole process tree runs in a cgroup v2
//! of its own (`<cgroup2 root>/mifshim/guard-<pid>`), and an nftables table of the
//! run's own (`inet mifshim_guard_<pid>`) drops — and counts, per destination and
//! interface — every packet a socket of that cgroup sends by an interface the policy
//! does not allow: anything but loopback, the interfaces its `via` lists and rules
//! name, and the destinations its `direct` rules leave to the routing table. Whatever
//! the shim misses is then blocked, not leaked.
//!
//! Lifetime: the table and the cgroup exist for the run. A small reaper process (its
//! own session, outside the guarded cgroup, holding nothing but standard error) waits
//! until the cgroup is empty — the program and every child it left behind have
//! exited —, prints what was dropped, and removes both. If the reaper is killed too,
//! the next `--guard` run removes tables whose cgroup is empty or gone.
//!
//! The plan ([`Plan::from_policy`]) and the nftables script ([`script`]) are pure and
//! unit-tested; the rest runs `nft` and touches the cgroup file system.

use config_schema::{OnUnavailable, Policy, Protocol, Rule, Target};
use ipnet::IpNet;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What the guard lets out: interfaces, and the destinations of `direct` rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Output interfaces allowed (always `lo`).
    pub interfaces: BTreeSet<String>,
    /// One entry per `direct` rule with destinations or ports: allowed by any link.
    pub direct: Vec<DirectRule>,
}

/// The conditions of one `direct` rule, as the guard can express them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectRule {
    pub label: String,
    pub to: Vec<IpNet>,
    /// Inclusive ranges.
    pub ports: Vec<(u16, u16)>,
    pub protocol: Protocol,
}

impl Plan {
    /// The guard for `policy` (every program section included: the guard is per run,
    /// not per program), or why it cannot be built without guarding less than the
    /// policy promises or dropping what the policy allows.
    pub fn from_policy(policy: &Policy) -> Result<Plan, String> {
        let mut interfaces: BTreeSet<String> = BTreeSet::from(["lo".to_owned()]);
        let mut direct = Vec::new();
        let mut rules: Vec<&Rule> = policy.base.rules.iter().collect();
        interfaces.extend(policy.base.via.iter().map(|i| i.as_str().to_owned()));
        if policy.base.on_unavailable == OnUnavailable::Direct {
            return Err(on_unavailable_direct("the policy"));
        }
        for p in &policy.programs {
            if let Some(via) = &p.via {
                interfaces.extend(via.iter().map(|i| i.as_str().to_owned()));
            }
            if p.on_unavailable == Some(OnUnavailable::Direct) {
                return Err(on_unavailable_direct(&format!("[programs.{}]", p.key)));
            }
            rules.extend(p.rules.iter());
        }
        for r in &rules {
            if let Target::Direct = r.target
                && r.names.is_empty()
                && r.to.is_empty()
                && r.ports.is_empty()
            {
                return Err(format!(
                    "{} sends everything{} direct (traffic may follow the routing table by any link), which --guard would drop; give it `to` or `ports`, or run without --guard",
                    r.label,
                    match r.protocol {
                        Protocol::Tcp => " over TCP",
                        Protocol::Udp => " over UDP",
                        Protocol::Any => "",
                    }
                ));
            }
        }
        for r in rules {
            match &r.target {
                Target::Via(list) => {
                    interfaces.extend(list.iter().map(|i| i.as_str().to_owned()));
                }
                Target::Block => {}
                Target::Direct => {
                    if !r.names.is_empty() {
                        return Err(format!(
                            "{} sends names direct: the addresses they resolve to are known only at run time, so --guard cannot allow them; give the rule `to` addresses instead, or run without --guard",
                            r.label
                        ));
                    }
                    direct.push(DirectRule {
                        label: r.label.clone(),
                        to: r.to.clone(),
                        ports: r.ports.iter().map(|p| (p.lo, p.hi)).collect(),
                        protocol: r.protocol,
                    });
                }
            }
        }
        // nftables would read `*` as a wildcard (`e*` matches eth0) and a quote or
        // backslash as syntax; Linux allows them in names, the guard does not.
        if let Some(bad) = interfaces
            .iter()
            .find(|i| i.contains(['*', '"', '\\']) || i.chars().any(char::is_control))
        {
            return Err(format!(
                "the interface name {bad:?} holds a character nftables reads as syntax (*, \", \\): --guard cannot name it exactly"
            ));
        }
        Ok(Plan { interfaces, direct })
    }
}

fn on_unavailable_direct(whom: &str) -> String {
    format!(
        "{whom} sets on_unavailable = \"direct\" (traffic may follow the routing table by any link), which --guard would drop; set it to \"block\" or run without --guard"
    )
}

/// nftables quoting of a name ([`Plan::from_policy`] refuses interface names with `*`,
/// quotes or backslashes; rule labels are the policy's own, `rule N` or
/// `programs.X rule N`, and lose any quote or backslash).
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace(['"', '\\'], ""))
}

/// The nftables script that creates table `inet <table>` for sockets of the cgroup
/// `cgroup` (relative to the cgroup v2 root, at depth `level`).
pub fn script(plan: &Plan, table: &str, cgroup: &str, level: usize) -> String {
    let m = format!("socket cgroupv2 level {level} {}", quoted(cgroup));
    let ifs: Vec<String> = plan.interfaces.iter().map(|i| quoted(i)).collect();
    let mut s = String::new();
    let _ = writeln!(s, "table inet {table} {{");
    let _ = writeln!(
        s,
        "  set drops4 {{ type ipv4_addr . ifname; flags dynamic; counter; size 65535; }}"
    );
    let _ = writeln!(
        s,
        "  set drops6 {{ type ipv6_addr . ifname; flags dynamic; counter; size 65535; }}"
    );
    let _ = writeln!(s, "  chain out {{");
    let _ = writeln!(
        s,
        "    type filter hook output priority filter; policy accept;"
    );
    let _ = writeln!(s, "    {m} oifname {{ {} }} accept", ifs.join(", "));
    for d in &plan.direct {
        for cond in direct_conditions(d) {
            let _ = writeln!(s, "    {m} {cond} accept comment {}", quoted(&d.label));
        }
    }
    // Counted per destination and interface, then refused: with an ICMP
    // "administratively prohibited" to the sender's own socket, so that a TCP connect
    // fails at once instead of retrying its SYN until it times out.
    let _ = writeln!(
        s,
        "    {m} meta nfproto ipv4 update @drops4 {{ ip daddr . oifname }} counter reject with icmpx type admin-prohibited"
    );
    let _ = writeln!(
        s,
        "    {m} meta nfproto ipv6 update @drops6 {{ ip6 daddr . oifname }} counter reject with icmpx type admin-prohibited"
    );
    let _ = writeln!(s, "    {m} counter drop");
    let _ = writeln!(s, "  }}");
    let _ = writeln!(s, "}}");
    s
}

/// The match expressions (one per address family present) of a `direct` rule.
fn direct_conditions(d: &DirectRule) -> Vec<String> {
    let mut tail = String::new();
    match d.protocol {
        Protocol::Tcp => tail.push_str(" meta l4proto tcp"),
        Protocol::Udp => tail.push_str(" meta l4proto udp"),
        Protocol::Any => {}
    }
    if !d.ports.is_empty() {
        if d.protocol == Protocol::Any {
            tail.push_str(" meta l4proto { tcp, udp }");
        }
        let ports: Vec<String> = d
            .ports
            .iter()
            .map(|&(lo, hi)| {
                if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}-{hi}")
                }
            })
            .collect();
        let _ = write!(tail, " th dport {{ {} }}", ports.join(", "));
    }
    let v4: Vec<String> =
        d.to.iter()
            .filter(|n| matches!(n, IpNet::V4(_)))
            .map(|n| n.trunc().to_string())
            .collect();
    let v6: Vec<String> =
        d.to.iter()
            .filter(|n| matches!(n, IpNet::V6(_)))
            .map(|n| n.trunc().to_string())
            .collect();
    let mut out = Vec::new();
    if d.to.is_empty() {
        out.push(tail.trim_start().to_owned());
    }
    if !v4.is_empty() {
        out.push(format!("ip daddr {{ {} }}{tail}", v4.join(", ")));
    }
    if !v6.is_empty() {
        out.push(format!("ip6 daddr {{ {} }}{tail}", v6.join(", ")));
    }
    out.retain(|c| !c.is_empty());
    out
}

/// One destination the guard dropped packets to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drop {
    pub dest: String,
    pub interface: String,
    pub packets: u64,
}

/// The elements of the drop sets in `nft list table` output:
/// `203.0.113.10 . "eth0" counter packets 2 bytes 120`.
pub fn parse_drops(listing: &str) -> Vec<Drop> {
    let mut out = Vec::new();
    // Elements may span lines: join everything between `elements = {` and `}`.
    let flat = listing.replace('\n', " ");
    let mut rest = flat.as_str();
    while let Some(i) = rest.find("elements = {") {
        rest = &rest[i + "elements = {".len()..];
        let end = rest.find('}').unwrap_or(rest.len());
        for e in rest[..end].split(',') {
            let words: Vec<&str> = e.split_whitespace().collect();
            // ADDR . "IF" counter packets N bytes M
            if words.len() >= 6 && words[1] == "." && words[3] == "counter" {
                if let Ok(packets) = words[5].parse() {
                    out.push(Drop {
                        dest: words[0].to_owned(),
                        interface: words[2].trim_matches('"').to_owned(),
                        packets,
                    });
                }
            }
        }
        rest = &rest[end..];
    }
    out
}

/// How many packets `drops` counts.
pub fn total(drops: &[Drop]) -> u64 {
    drops.iter().map(|d| d.packets).sum()
}

/// The one-line report of a run's drops.
pub fn report(drops: &[Drop]) -> String {
    let total = total(drops);
    if total == 0 {
        return "mifrun: --guard: no packet of this run was dropped".to_owned();
    }
    let each: Vec<String> = drops
        .iter()
        .map(|d| format!("{} by {}: {}", d.dest, d.interface, d.packets))
        .collect();
    format!(
        "mifrun: --guard dropped {total} packet{} that would have left by another link ({})",
        if total == 1 { "" } else { "s" },
        each.join("; ")
    )
}

/// The drops as a summary list: `3: 203.0.113.10 by eth0 2, 2001:db8:ff::10 by eth0 1`.
pub fn summary_list(drops: &[Drop]) -> String {
    let total = total(drops);
    let each: Vec<String> = drops
        .iter()
        .map(|d| format!("{} by {} {}", d.dest, d.interface, d.packets))
        .collect();
    if each.is_empty() {
        total.to_string()
    } else {
        format!("{total}: {}", each.join(", "))
    }
}

/// The drops as events-file lines (schema version 1, `"event":"guard_drop"`), one per
/// destination and interface, stamped `now` (seconds and microseconds since the epoch).
pub fn event_lines_at(drops: &[Drop], pid: u32, now: (u64, u32)) -> String {
    let time = rfc3339(now);
    let mut out = String::new();
    for d in drops {
        // Destinations and interface names are addresses and policy-checked names: no
        // character needs JSON escaping; quotes and backslashes are dropped anyway.
        let clean = |s: &str| s.replace(['"', '\\'], "");
        let _ = writeln!(
            out,
            "{{\"v\":{},\"time\":\"{time}\",\"pid\":{pid},\"program\":\"mifrun\",\"event\":\"guard_drop\",\"address\":\"{}\",\"interface\":\"{}\",\"packets\":{}}}",
            config_schema::events::VERSION,
            clean(&d.dest),
            clean(&d.interface),
            d.packets
        );
    }
    out
}

/// [`event_lines_at`] now, for this process.
pub fn event_lines(drops: &[Drop]) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    event_lines_at(drops, std::process::id(), (t.as_secs(), t.subsec_micros()))
}

/// `2026-12-01T23:59:59.123456Z` for (seconds, microseconds) since the epoch.
fn rfc3339((secs, micros): (u64, u32)) -> String {
    let (y, mo, d, h, mi, s) = config_schema::events::civil_utc(secs as i64);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{micros:06}Z")
}

// ------------------------------------------------------------------------------------
// The system side: nft, the cgroup file system.
// ------------------------------------------------------------------------------------

/// A guard set up for this run.
#[derive(Debug)]
pub struct Guard {
    table: String,
    /// `<root>/mifshim/guard-<id>`.
    dir: PathBuf,
    /// `<root>/mifshim/reaper-<id>`: the reaper's own cgroup while it works.
    reaper: PathBuf,
    /// `<root>/mifshim`.
    parent: PathBuf,
    /// `--events FILE`, for the reaper's `guard_drop` lines.
    events: Option<PathBuf>,
}

const PARENT: &str = "mifshim";
const TABLE_PREFIX: &str = "mifshim_guard_";

fn nft_path() -> Option<PathBuf> {
    ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft", "/bin/nft"]
        .iter()
        .map(PathBuf::from)
        .find(|p| crate::sys::is_executable(p))
}

/// Runs `nft ARGS` with `input` on its standard input; its standard output, or its
/// error output as the error. `cgroup_root`: run it in a private mount namespace with
/// that cgroup v2 hierarchy mounted on `/sys/fs/cgroup`, where nft resolves
/// `socket cgroupv2` paths (a hybrid host mounts cgroup v2 elsewhere; `ip netns exec`
/// mounts none).
fn nft(args: &[&str], input: Option<&str>, mount_cgroup: bool) -> Result<String, String> {
    let path = nft_path().ok_or("nft (nftables) is not installed")?;
    let mut cmd = Command::new(path);
    cmd.args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if mount_cgroup && !crate::sys::is_cgroup2_root(Path::new("/sys/fs/cgroup")) {
        crate::sys::pre_exec_mount_cgroup2(&mut cmd);
    }
    let mut child = cmd.spawn().map_err(|e| format!("cannot run nft: {e}"))?;
    if let Some(text) = input {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("piped");
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("nft: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// `populated 1` in the cgroup's `cgroup.events`? (`None`: the cgroup is gone.)
fn populated(dir: &Path) -> Option<bool> {
    let text = std::fs::read_to_string(dir.join("cgroup.events")).ok()?;
    Some(text.lines().any(|l| l.trim() == "populated 1"))
}

/// Removes the guards of earlier runs whose process trees are gone and whose reaper is
/// gone too (killed): tables whose cgroup is empty or missing while their reaper's
/// cgroup (`reaper-ID`, where the reaper lives until it has reported) is empty or
/// missing, and such cgroups without a table older than a minute (a run between
/// creating its cgroup and joining it is younger).
fn clean_stale(parent: &Path, own: &str) -> Vec<String> {
    let mut removed = Vec::new();
    let tables = nft(&["list", "tables"], None, false).unwrap_or_default();
    let mut with_table = BTreeSet::new();
    for line in tables.lines() {
        let Some(name) = line.trim().strip_prefix("table inet ") else {
            continue;
        };
        let Some(id) = name.strip_prefix(TABLE_PREFIX) else {
            continue;
        };
        if name == own {
            continue;
        }
        let dir = parent.join(format!("guard-{id}"));
        let reaper = parent.join(format!("reaper-{id}"));
        with_table.insert(dir.clone());
        with_table.insert(reaper.clone());
        if populated(&dir) != Some(true)
            && populated(&reaper) != Some(true)
            && nft(&["delete", "table", "inet", name], None, false).is_ok()
        {
            let _ = std::fs::remove_dir(&dir);
            let _ = std::fs::remove_dir(&reaper);
            removed.push(name.to_owned());
        }
    }
    if let Ok(entries) = std::fs::read_dir(parent) {
        for e in entries.flatten() {
            let dir = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let is_guard = name.starts_with("guard-") || name.starts_with("reaper-");
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 60);
            if is_guard && old && !with_table.contains(&dir) && populated(&dir) == Some(false) {
                let _ = std::fs::remove_dir(&dir);
            }
        }
    }
    removed
}

/// A run id that no other run, earlier or concurrent, in any pid namespace has: the pid
/// and 64 random bits (a reused pid must never name a live guard).
fn run_id(pid: u32) -> String {
    let mut r = [0u8; 8];
    let random = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| {
            use std::io::Read as _;
            f.read_exact(&mut r)
        })
        .is_ok();
    if !random {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        r = (t.as_nanos() as u64 ^ u64::from(pid).rotate_left(32)).to_ne_bytes();
    }
    format!("{pid}_{:016x}", u64::from_ne_bytes(r))
}

/// Serialises the guards' set-up and their stale-guard clean-up across runs (an
/// exclusive `flock` on `/run/lock/mifshim-guard.lock`, released when dropped): a run
/// that has created its cgroup but not yet joined it looks stale to a clean-up.
struct SetupLock(#[allow(dead_code)] std::fs::File);

impl SetupLock {
    fn take() -> Result<SetupLock, String> {
        let dir = Path::new("/run/lock");
        let dir = if dir.is_dir() { dir } else { Path::new("/run") };
        let path = dir.join("mifshim-guard.lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("--guard cannot open its lock {} ({e})", path.display()))?;
        crate::sys::lock_exclusive(&f)
            .map_err(|e| format!("--guard cannot lock {} ({e})", path.display()))?;
        Ok(SetupLock(f))
    }
}

impl Guard {
    /// Sets up the guard of this run (`pid`: mifrun's): checks what it needs, removes
    /// stale guards, creates the cgroups, moves this process into the guarded one (so
    /// the program it runs and everything that program starts are in it) and installs
    /// the table — all under the set-up lock, so that no other run's clean-up sees the
    /// cgroup empty before it is joined.
    pub fn setup(plan: &Plan, pid: u32) -> Result<Guard, String> {
        nft_path().ok_or(
            "--guard needs nftables' `nft` (Debian: apt-get install nftables); nothing was run",
        )?;
        let root = crate::sys::cgroup2_mount().ok_or(
            "--guard needs a cgroup v2 hierarchy mounted (none in /proc/self/mountinfo); nothing was run",
        )?;
        let parent = root.join(PARENT);
        match std::fs::create_dir(&parent) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(format!(
                    "--guard cannot create the cgroup {} ({e}): it needs root (write access to the cgroup v2 root and CAP_NET_ADMIN); nothing was run",
                    parent.display()
                ));
            }
        }
        let id = run_id(pid);
        let table = format!("{TABLE_PREFIX}{id}");
        let _lock = SetupLock::take()?;
        for t in clean_stale(&parent, &table) {
            eprintln!("mifrun: --guard: removed the stale guard {t} of an earlier run");
        }
        let dir = parent.join(format!("guard-{id}"));
        let reaper = parent.join(format!("reaper-{id}"));
        for d in [&dir, &reaper] {
            std::fs::create_dir(d)
                .map_err(|e| format!("--guard cannot create the cgroup {} ({e})", d.display()))?;
        }
        let g = Guard {
            table,
            dir,
            reaper,
            parent,
            events: None,
        };
        // Joined before the table exists: from here on the cgroup is populated, and a
        // clean-up (which needs the lock we hold anyway) never takes it for stale.
        if let Err(e) = std::fs::write(g.dir.join("cgroup.procs"), "0") {
            g.remove();
            return Err(format!("--guard cannot join {} ({e})", g.dir.display()));
        }
        let rel = format!("{PARENT}/guard-{id}");
        let text = script(plan, &g.table, &rel, 2);
        if let Err(e) = nft(&["-f", "-"], Some(&text), true) {
            g.remove();
            return Err(format!(
                "--guard cannot install its nftables rules: {e} (it needs CAP_NET_ADMIN and the kernel's nf_tables with `socket cgroupv2`); nothing was run"
            ));
        }
        Ok(g)
    }

    /// The events file (`--events`) the reaper appends the run's `guard_drop` lines to.
    pub fn with_events(mut self, path: Option<PathBuf>) -> Guard {
        self.events = path;
        self
    }

    /// What was dropped so far; `Err` when the table cannot be read (gone: something
    /// removed it, so the run may not have been guarded).
    pub fn drops(&self) -> Result<Vec<Drop>, String> {
        nft(&["list", "table", "inet", &self.table], None, false)
            .map(|t| parse_drops(&t))
            .map_err(|e| {
                format!(
                    "--guard cannot read its table inet {} ({e}): the run may have been unguarded since",
                    self.table
                )
            })
    }

    /// Removes the table and the cgroups, moving this process out of the guarded one
    /// first (a cgroup is removed only once empty).
    pub fn remove(&self) {
        let _ = std::fs::write(self.parent.join("cgroup.procs"), "0");
        let _ = nft(&["delete", "table", "inet", &self.table], None, false);
        let _ = std::fs::remove_dir(&self.dir);
        let _ = std::fs::remove_dir(&self.reaper);
    }

    /// Starts the reaper (see the module doc); call after [`Guard::enter`]. The reaper
    /// moves at once from the guarded cgroup to its own (`reaper-ID`), so the guarded
    /// one empties when the program's tree has exited, and a later run sees from its
    /// own that the reaper is still at work.
    pub fn spawn_reaper(&self) -> Result<(), String> {
        crate::sys::spawn_detached(|| {
            if std::fs::write(self.reaper.join("cgroup.procs"), "0").is_err() {
                let _ = std::fs::write(self.parent.join("cgroup.procs"), "0");
            }
            self.reap();
        })
        .map_err(|e| format!("--guard cannot start its reaper: {e}"))
    }

    /// The reaper's work: wait until the cgroup is empty, report, remove.
    fn reap(&self) {
        while populated(&self.dir) == Some(true) {
            crate::sys::wait_for_change(&self.dir.join("cgroup.events"), 1000);
        }
        {
            use std::io::Write as _;
            // Standard error may be gone by now: never panic on it.
            let line = match self.drops() {
                Ok(d) => {
                    if let Some(path) = &self.events {
                        crate::summary::append_lines(path, &event_lines(&d));
                    }
                    report(&d)
                }
                Err(e) => format!("mifrun: {e}"),
            };
            let _ = writeln!(std::io::stderr(), "{line}");
        }
        let _ = nft(&["delete", "table", "inet", &self.table], None, false);
        let _ = std::fs::remove_dir(&self.dir);
        // Last: leave our own cgroup, then remove it.
        let _ = std::fs::write(self.parent.join("cgroup.procs"), "0");
        let _ = std::fs::remove_dir(&self.reaper);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str) -> Policy {
        config_schema::parse_policy(text, "test")
            .map(|l| l.policy)
            .unwrap_or_else(|d| panic!("{d:?}"))
    }

    #[test]
    fn plan_allows_loopback_every_via_and_rule_interface() {
        let p = policy(
            "via = [\"wlan0\", \"wwan0\"]\n\n[[rules]]\nto = [\"10.0.0.0/8\"]\nvia = [\"tun0\"]\n\n[programs.curl]\nvia = [\"eth1\"]\n",
        );
        let plan = Plan::from_policy(&p).unwrap();
        let want: BTreeSet<String> = ["eth1", "lo", "tun0", "wlan0", "wwan0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(plan.interfaces, want);
        assert!(plan.direct.is_empty());
    }

    #[test]
    fn direct_rules_become_accepts_by_destination_protocol_and_port() {
        let p = policy(
            "via = [\"wlan0\"]\n\n[[rules]]\nto = [\"192.0.2.0/24\", \"2001:db8:1::/48\"]\nports = [\"443\", \"8000-8080\"]\nprotocol = \"tcp\"\naction = \"direct\"\n",
        );
        let plan = Plan::from_policy(&p).unwrap();
        assert_eq!(plan.direct.len(), 1);
        let s = script(&plan, "mifshim_guard_7", "mifshim/guard-7", 2);
        assert!(
            s.contains("socket cgroupv2 level 2 \"mifshim/guard-7\" ip daddr { 192.0.2.0/24 } meta l4proto tcp th dport { 443, 8000-8080 } accept"),
            "{s}"
        );
        assert!(
            s.contains(
                "ip6 daddr { 2001:db8:1::/48 } meta l4proto tcp th dport { 443, 8000-8080 } accept"
            ),
            "{s}"
        );
        assert!(s.contains("oifname { \"lo\", \"wlan0\" } accept"), "{s}");
        assert!(s.contains(
            "update @drops4 { ip daddr . oifname } counter reject with icmpx type admin-prohibited"
        ));
        assert!(s.contains(
            "update @drops6 { ip6 daddr . oifname } counter reject with icmpx type admin-prohibited"
        ));
        // The last rule drops what is neither IPv4 nor IPv6 (nothing should be).
        assert!(s.contains("level 2 \"mifshim/guard-7\" counter drop"));
    }

    #[test]
    fn direct_rule_by_port_only_is_allowed_for_both_families() {
        let p = policy("via = [\"wlan0\"]\n\n[[rules]]\nports = [\"123\"]\naction = \"direct\"\n");
        let plan = Plan::from_policy(&p).unwrap();
        let s = script(&plan, "t", "mifshim/guard-1", 2);
        assert!(
            s.contains("\"mifshim/guard-1\" meta l4proto { tcp, udp } th dport { 123 } accept"),
            "{s}"
        );
    }

    #[test]
    fn guard_refuses_what_it_cannot_express() {
        let p = policy(
            "via = [\"wlan0\"]\n\n[[rules]]\nnames = [\"*.corp.example\"]\naction = \"direct\"\n",
        );
        let e = Plan::from_policy(&p).unwrap_err();
        assert!(e.contains("rule 1") && e.contains("names direct"), "{e}");
        let p = policy("via = [\"wlan0\"]\non_unavailable = \"direct\"\n");
        let e = Plan::from_policy(&p).unwrap_err();
        assert!(e.contains("on_unavailable"), "{e}");
        let p = policy("via = [\"wlan0\"]\n\n[programs.curl]\non_unavailable = \"direct\"\n");
        let e = Plan::from_policy(&p).unwrap_err();
        assert!(e.contains("[programs.curl]"), "{e}");
    }

    #[test]
    fn interface_name_with_a_star_became_an_nft_wildcard() {
        for name in ["e*", "w\\\"lan0"] {
            let p = policy(&format!("via = [{}]\n", toml_str(name)));
            let e = Plan::from_policy(&p).unwrap_err();
            assert!(e.contains("nftables reads as syntax"), "{name}: {e}");
        }
    }

    fn toml_str(s: &str) -> String {
        format!("'{s}'")
    }

    #[test]
    fn a_direct_rule_without_conditions_was_silently_dropped() {
        let p = policy("via = [\"wlan0\"]\n\n[[rules]]\naction = \"direct\"\n");
        let e = Plan::from_policy(&p).unwrap_err();
        assert!(e.contains("rule 1 sends everything direct"), "{e}");
        let p = policy("via = [\"wlan0\"]\n\n[[rules]]\nprotocol = \"udp\"\naction = \"direct\"\n");
        let e = Plan::from_policy(&p).unwrap_err();
        assert!(e.contains("everything over UDP direct"), "{e}");
    }

    #[test]
    fn a_reused_pid_named_a_live_guard() {
        let (a, b) = (run_id(4242), run_id(4242));
        assert_ne!(a, b);
        assert!(a.starts_with("4242_") && b.starts_with("4242_"), "{a} {b}");
        assert_eq!(a.len(), "4242_".len() + 16);
    }

    #[test]
    fn drops_are_read_from_the_listing() {
        let listing = "table inet mifshim_guard_1 {\n\tset drops4 {\n\t\ttype ipv4_addr . ifname\n\t\tsize 65535\n\t\tflags dynamic\n\t\tcounter\n\t\telements = { 203.0.113.10 . \"eth0\" counter packets 2 bytes 120,\n\t\t\t     203.0.113.11 . \"wwan0\" counter packets 1 bytes 60 }\n\t}\n\tset drops6 {\n\t\telements = { 2001:db8:ff::10 . \"eth0\" counter packets 3 bytes 240 }\n\t}\n}\n";
        let d = parse_drops(listing);
        assert_eq!(
            d,
            vec![
                Drop {
                    dest: "203.0.113.10".into(),
                    interface: "eth0".into(),
                    packets: 2
                },
                Drop {
                    dest: "203.0.113.11".into(),
                    interface: "wwan0".into(),
                    packets: 1
                },
                Drop {
                    dest: "2001:db8:ff::10".into(),
                    interface: "eth0".into(),
                    packets: 3
                },
            ]
        );
        assert!(report(&d).contains("dropped 6 packets"));
        assert_eq!(
            summary_list(&d),
            "6: 203.0.113.10 by eth0 2, 203.0.113.11 by wwan0 1, 2001:db8:ff::10 by eth0 3"
        );
        let lines = event_lines_at(&d[..1], 42, (1_796_169_599, 7));
        assert_eq!(
            lines,
            "{\"v\":1,\"time\":\"2026-12-01T23:59:59.000007Z\",\"pid\":42,\"program\":\"mifrun\",\"event\":\"guard_drop\",\"address\":\"203.0.113.10\",\"interface\":\"eth0\",\"packets\":2}\n"
        );
        assert_eq!(rfc3339((0, 0)), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339((951_782_400, 0)), "2000-02-29T00:00:00.000000Z");
        assert!(report(&[]).contains("no packet"));
        assert!(parse_drops("table inet t {\n}\n").is_empty());
    }
}
