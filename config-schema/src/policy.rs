//! The validated policy: what the shim enforces. No `Option`s that the enforcement
//! would have to interpret, no spans; built by `parse.rs` or [`Policy::from_via`].

use crate::{Diagnostic, IfName};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// What happens when none of the interfaces in a `via` list is usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum OnUnavailable {
    /// Fail the call with `ENETUNREACH` (the default): never fall back to the default
    /// route.
    #[default]
    Block,
    /// Let the traffic follow the routing table.
    Direct,
}

/// What happens to wildcard listeners (`bind(0.0.0.0)` / `bind(::)` then `listen`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Listen {
    /// Confine them to the chosen interface and loopback (the default): a socket filter
    /// admits what arrives on `lo` and what arrives on the chosen interface (TCP: from
    /// its own subnets only, whose replies the connected route sends back through it).
    #[default]
    Interface,
    /// Bind them to the chosen interface's device: every reply leaves by it, peers
    /// beyond its subnets are accepted too, loopback is refused.
    Device,
    /// Leave them listening on every interface.
    Any,
}

/// Transport protocol a rule applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP (stream sockets).
    Tcp,
    /// UDP (datagram sockets).
    Udp,
    /// Both (the default).
    #[default]
    Any,
}

/// An inclusive port range; a single port is `lo == hi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    pub fn contains(&self, port: u16) -> bool {
        self.lo <= port && port <= self.hi
    }
}

/// What a matching rule does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Use the first usable interface of this ordered list.
    Via(Vec<IfName>),
    /// Follow the routing table, unbound.
    Direct,
    /// Fail the call with `EACCES`.
    Block,
}

/// What a `bind` to an address of another interface than the chosen one becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ForeignBind {
    /// Rewritten to the chosen interface's address of the same family (the default):
    /// a packet leaving by wlan0 with eth0's source is dropped by any upstream that
    /// validates sources (BCP 38, strict reverse-path filtering).
    #[default]
    Rewrite,
    /// Left as the program asked.
    Keep,
}

/// What happens when `mark` cannot be set (`SO_MARK` needs `CAP_NET_ADMIN`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum OnMarkDenied {
    /// Fail the call with `EPERM` (the default): nothing leaves unmarked.
    #[default]
    Block,
    /// Go on without the mark (one warning per process).
    Continue,
}

/// Options set on the sockets steered onto an interface (`source`, `mark`, `dscp`):
/// at the top level, in a program section or in a `via` rule. `None` inherits (a
/// rule from its profile, a program section from the top level).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SocketOptions {
    /// Source address for IPv4 traffic, used when the chosen interface has it.
    pub source_v4: Option<Ipv4Addr>,
    /// Source address for IPv6 traffic, used when the chosen interface has it.
    pub source_v6: Option<Ipv6Addr>,
    /// `SO_MARK`; `Some(0)` says "no mark" (overriding an inherited one).
    pub mark: Option<u32>,
    /// Differentiated Services code point (0–63), set as `IP_TOS` / `IPV6_TCLASS`
    /// (`dscp << 2`); `Some(0)` overrides an inherited one with the default class.
    pub dscp: Option<u8>,
}

impl SocketOptions {
    /// These options, with what they leave unset taken from `base`.
    pub fn or(self, base: SocketOptions) -> SocketOptions {
        SocketOptions {
            source_v4: self.source_v4.or(base.source_v4),
            source_v6: self.source_v6.or(base.source_v6),
            mark: self.mark.or(base.mark),
            dscp: self.dscp.or(base.dscp),
        }
    }

    /// Nothing set.
    pub fn is_empty(&self) -> bool {
        *self == SocketOptions::default()
    }

    /// The configured source of this family.
    pub fn source(&self, v6: bool) -> Option<IpAddr> {
        if v6 {
            self.source_v6.map(IpAddr::V6)
        } else {
            self.source_v4.map(IpAddr::V4)
        }
    }

    /// `source 198.51.100.66, mark 0x10, dscp 46 (ef)`, for `--check`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        let sources: Vec<String> = [self.source(false), self.source(true)]
            .into_iter()
            .flatten()
            .map(|a| a.to_string())
            .collect();
        if !sources.is_empty() {
            parts.push(format!("source {}", sources.join(", ")));
        }
        match self.mark {
            Some(0) => parts.push("no mark".into()),
            Some(m) => parts.push(format!("mark {m:#x}")),
            None => {}
        }
        if let Some(d) = self.dscp {
            parts.push(format!(
                "dscp {d}{}",
                dscp_name(d).map_or(String::new(), |n| format!(" ({n})"))
            ));
        }
        parts.join(", ")
    }
}

/// The DSCP names of RFC 2474/2597/3246/5865/8622: `cs0`–`cs7`, `af11`–`af43`, `ef`,
/// `va`, `le`, `be` (= `cs0`), `df` (= `cs0`).
pub const DSCP_NAMES: &[(&str, u8)] = &[
    ("be", 0),
    ("df", 0),
    ("cs0", 0),
    ("le", 1),
    ("cs1", 8),
    ("af11", 10),
    ("af12", 12),
    ("af13", 14),
    ("cs2", 16),
    ("af21", 18),
    ("af22", 20),
    ("af23", 22),
    ("cs3", 24),
    ("af31", 26),
    ("af32", 28),
    ("af33", 30),
    ("cs4", 32),
    ("af41", 34),
    ("af42", 36),
    ("af43", 38),
    ("cs5", 40),
    ("va", 44),
    ("ef", 46),
    ("cs6", 48),
    ("cs7", 56),
];

/// The usual name of a code point (`46` → `ef`), if it has one.
pub fn dscp_name(v: u8) -> Option<&'static str> {
    DSCP_NAMES
        .iter()
        .filter(|(n, _)| *n != "be" && *n != "df")
        .find(|(_, d)| *d == v)
        .map(|(n, _)| *n)
}

/// One `[[rules]]` entry. All conditions must hold; an empty list matches anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// `rule 2` or `programs.curl rule 1`: how logs and diagnostics name it.
    pub label: String,
    /// Line of the rule in its file (0 when not from a file).
    pub line: u32,
    pub to: Vec<IpNet>,
    pub ports: Vec<PortRange>,
    pub protocol: Protocol,
    /// Host-name patterns (`host.example`, `*.corp.example`), lower case, no trailing
    /// dot. A rule with names is a *name rule*: it chooses the interface a name is
    /// resolved over, and the addresses that resolution returns then follow the same
    /// target unless an address rule matches them. Name rules never match addresses
    /// directly.
    pub names: Vec<String>,
    pub target: Target,
    /// `source`, `mark`, `dscp` of this rule (only with `via`), over the profile's.
    pub options: SocketOptions,
}

impl Rule {
    /// Does this name rule match `name` (any case, with or without a trailing dot)?
    pub fn matches_name(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.');
        self.names.iter().any(|p| name_pattern_matches(p, name))
    }
}

/// The name pattern that matches every name. Only [`Profile::fail_closed`] uses it: a
/// policy cannot spell it (a rule without conditions already means "everything" for
/// addresses, and names follow `via`).
pub const EVERY_NAME: &str = "*";

/// `*.corp.example` matches `a.corp.example` and `a.b.corp.example`, not
/// `corp.example`; [`EVERY_NAME`] matches every name; any other pattern matches
/// exactly. Case-insensitive.
pub fn name_pattern_matches(pattern: &str, name: &str) -> bool {
    if pattern == EVERY_NAME {
        return true;
    }
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            name.len() > suffix.len() + 1
                && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
        }
        None => pattern.eq_ignore_ascii_case(name),
    }
}

/// `[interfaces.NAME]`: facts about one interface the kernel does not know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceSettings {
    pub name: IfName,
    /// DNS servers to use for names resolved over this interface (port 53 unless
    /// given as `[addr]:port` / `addr:port`).
    pub dns: Vec<SocketAddr>,
    /// `search`: the search domains for names resolved over this interface, in
    /// place of the system's (`None`: the system's `search` list applies).
    pub search: Option<Vec<String>>,
}

/// `[dns]`: how names are resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct DnsSettings {
    /// Resolve names over the chosen interface (default). `false` leaves name
    /// resolution to the C library, unsteered.
    pub steer: bool,
    /// Send port-53 traffic that programs with their own resolver (dig, c-ares, Go)
    /// aim at the system's servers to the chosen interface's servers instead.
    pub redirect: bool,
    /// Time for one query to one server before the next is tried, in milliseconds.
    #[cfg_attr(feature = "schema", schemars(range(min = 10, max = 60_000)))]
    pub timeout_ms: u32,
    /// Rounds over the server list.
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 10)))]
    pub attempts: u32,
}

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings {
            steer: true,
            redirect: false,
            timeout_ms: 2000,
            attempts: 2,
        }
    }
}

/// The settings that apply to one process: the top level of the policy, possibly
/// overridden by a `[programs.NAME]` section.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Profile {
    /// Ordered interfaces; empty means "leave traffic direct unless a rule says
    /// otherwise".
    pub via: Vec<IfName>,
    pub on_unavailable: OnUnavailable,
    pub listen: Listen,
    /// The program section's rules first, then the top-level ones.
    pub rules: Vec<Rule>,
    /// `programs.curl` when a section applied, for logs.
    pub section: Option<String>,
    /// `[interfaces.*]` (global: the same in every profile).
    pub interfaces: Vec<InterfaceSettings>,
    /// `[dns]` (global).
    pub dns: DnsSettings,
    /// `source`, `mark`, `dscp` for traffic steered by `via` (and the rules' own).
    pub options: SocketOptions,
    pub on_mark_denied: OnMarkDenied,
    pub foreign_bind: ForeignBind,
}

impl Profile {
    /// What a policy that cannot be used (invalid, unreadable, an environment variable
    /// that cannot be read) turns into: the exemptions still apply (loopback, the
    /// host's own addresses), every other INET destination is refused with `EACCES`,
    /// and so is every name lookup that reaches the decision (`EAI_FAIL`; the shim
    /// leaves `localhost` and `/etc/hosts` names to the C library before asking).
    /// `label` names the reason in logs (`resolve x blocked by invalid policy`).
    pub fn fail_closed(label: &str) -> Profile {
        let block = |names: Vec<String>| Rule {
            label: label.to_owned(),
            line: 0,
            to: Vec::new(),
            ports: Vec::new(),
            protocol: Protocol::Any,
            names,
            target: Target::Block,
            options: SocketOptions::default(),
        };
        Profile {
            rules: vec![block(Vec::new()), block(vec![EVERY_NAME.to_owned()])],
            ..Profile::default()
        }
    }

    /// The policy's DNS servers for `name`, if it names any.
    pub fn dns_servers(&self, name: &IfName) -> &[SocketAddr] {
        self.interfaces
            .iter()
            .find(|i| i.name == *name)
            .map_or(&[], |i| &i.dns)
    }

    /// The policy's search domains for names resolved over `name` (`None`: the
    /// system's apply).
    pub fn search_domains(&self, name: &IfName) -> Option<&[String]> {
        self.interfaces
            .iter()
            .find(|i| i.name == *name)
            .and_then(|i| i.search.as_deref())
    }
}

/// A `[programs.KEY]` section. `None` fields inherit from the top level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramSection {
    /// An executable name (`curl`) or an absolute path (`/usr/bin/curl`).
    pub key: String,
    pub via: Option<Vec<IfName>>,
    pub on_unavailable: Option<OnUnavailable>,
    pub listen: Option<Listen>,
    pub rules: Vec<Rule>,
    /// Each unset field inherits the top level's.
    pub options: SocketOptions,
    pub on_mark_denied: Option<OnMarkDenied>,
    pub foreign_bind: Option<ForeignBind>,
}

impl ProgramSection {
    /// Does this section apply to a process whose executable is `exe` (the resolved
    /// `/proc/self/exe`) and whose `argv[0]` is `argv0`? A key with a `/` must equal
    /// one of them; a plain name must equal the last path component of either (so
    /// `python3` matches `/usr/bin/python3.11` started as `python3`).
    pub fn matches(&self, exe: &str, argv0: &str) -> bool {
        if self.key.contains('/') {
            return self.key == exe || self.key == argv0;
        }
        let base = |p: &str| p.rsplit('/').next().unwrap_or(p).to_owned();
        (!exe.is_empty() && base(exe) == self.key) || (!argv0.is_empty() && base(argv0) == self.key)
    }
}

/// A whole, validated policy.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Policy {
    pub base: Profile,
    pub programs: Vec<ProgramSection>,
}

/// A parsed policy with the warnings found while validating it.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub policy: Policy,
    pub warnings: Vec<Diagnostic>,
}

impl Policy {
    /// The policy `--via a,b` / `MIFSHIM_VIA=a,b` stands for: everything over the
    /// first usable of `via`, fail closed, listeners confined.
    pub fn from_via(via: Vec<IfName>) -> Policy {
        Policy {
            base: Profile {
                via,
                ..Profile::default()
            },
            programs: Vec::new(),
        }
    }

    /// Replaces the top-level `via` (what `--via` does to a `--policy` file).
    pub fn override_via(&mut self, via: Vec<IfName>) {
        self.base.via = via;
    }

    /// Every interface named anywhere in the policy, in order of first mention.
    pub fn interface_names(&self) -> Vec<IfName> {
        let mut out: Vec<IfName> = Vec::new();
        let mut add = |names: &[IfName]| {
            for n in names {
                if !out.contains(n) {
                    out.push(*n);
                }
            }
        };
        let rules = |rules: &[Rule], add: &mut dyn FnMut(&[IfName])| {
            for r in rules {
                if let Target::Via(v) = &r.target {
                    add(v);
                }
            }
        };
        add(&self.base.via);
        for i in &self.base.interfaces {
            add(std::slice::from_ref(&i.name));
        }
        rules(&self.base.rules, &mut add);
        for p in &self.programs {
            if let Some(v) = &p.via {
                add(v);
            }
            rules(&p.rules, &mut add);
        }
        out
    }

    /// Every set of socket options in the policy (top level, program sections, rules),
    /// with where it stands (`top level`, `programs.curl`, `rule 2`), for checks of
    /// the host (`mifrun`: are the sources this host's, may this process mark?).
    pub fn option_sets(&self) -> Vec<(String, SocketOptions)> {
        let mut out = vec![("top level".to_owned(), self.base.options)];
        out.extend(self.base.rules.iter().map(|r| (r.label.clone(), r.options)));
        for p in &self.programs {
            out.push((format!("programs.{}", p.key), p.options));
            out.extend(p.rules.iter().map(|r| (r.label.clone(), r.options)));
        }
        out.retain(|(_, o)| !o.is_empty());
        out
    }

    /// The settings for one process (see [`ProgramSection::matches`]); the first
    /// matching section wins. Its keys override the top level; its rules are
    /// evaluated before the top-level rules.
    pub fn profile_for(&self, exe: &str, argv0: &str) -> Profile {
        let Some(sec) = self.programs.iter().find(|s| s.matches(exe, argv0)) else {
            return self.base.clone();
        };
        let mut rules = sec.rules.clone();
        rules.extend(self.base.rules.iter().cloned());
        Profile {
            via: sec.via.clone().unwrap_or_else(|| self.base.via.clone()),
            on_unavailable: sec.on_unavailable.unwrap_or(self.base.on_unavailable),
            listen: sec.listen.unwrap_or(self.base.listen),
            rules,
            section: Some(format!("programs.{}", sec.key)),
            interfaces: self.base.interfaces.clone(),
            dns: self.base.dns.clone(),
            options: sec.options.or(self.base.options),
            on_mark_denied: sec.on_mark_denied.unwrap_or(self.base.on_mark_denied),
            foreign_bind: sec.foreign_bind.unwrap_or(self.base.foreign_bind),
        }
    }

    /// A human description, for `mifrun --check`.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        describe(
            &mut s,
            "",
            &self.base.via,
            self.base.on_unavailable,
            self.base.listen,
        );
        describe_options(
            &mut s,
            "",
            &self.base.options,
            self.base.on_mark_denied,
            self.base.foreign_bind,
        );
        for r in &self.base.rules {
            let _ = writeln!(s, "  {}", describe_rule(r));
        }
        let d = &self.base.dns;
        if d.steer {
            let _ = writeln!(
                s,
                "names: resolved over the chosen interface (timeout {} ms, {} attempts){}",
                d.timeout_ms,
                d.attempts,
                if d.redirect {
                    "; port-53 traffic to the system's servers redirected"
                } else {
                    ""
                }
            );
        } else {
            let _ = writeln!(
                s,
                "names: resolved by the C library, unsteered ([dns] steer = false)"
            );
        }
        for i in &self.base.interfaces {
            let servers: Vec<String> = i.dns.iter().map(ToString::to_string).collect();
            if !servers.is_empty() {
                let _ = writeln!(
                    s,
                    "[interfaces.{}] dns servers: {}",
                    i.name,
                    servers.join(", ")
                );
            }
            match &i.search {
                Some(d) if d.is_empty() => {
                    let _ = writeln!(
                        s,
                        "[interfaces.{}] search domains: none (the system's list does not apply)",
                        i.name
                    );
                }
                Some(d) => {
                    let _ = writeln!(
                        s,
                        "[interfaces.{}] search domains: {} (in place of the system's)",
                        i.name,
                        d.join(", ")
                    );
                }
                None => {}
            }
        }
        for p in &self.programs {
            let _ = writeln!(s, "[programs.{}]", p.key);
            let via = p.via.clone().unwrap_or_else(|| self.base.via.clone());
            describe(
                &mut s,
                "  ",
                &via,
                p.on_unavailable.unwrap_or(self.base.on_unavailable),
                p.listen.unwrap_or(self.base.listen),
            );
            describe_options(
                &mut s,
                "  ",
                &p.options.or(self.base.options),
                p.on_mark_denied.unwrap_or(self.base.on_mark_denied),
                p.foreign_bind.unwrap_or(self.base.foreign_bind),
            );
            for r in &p.rules {
                let _ = writeln!(s, "    {}", describe_rule(r));
            }
        }
        s
    }
}

fn join(names: &[IfName]) -> String {
    names
        .iter()
        .map(IfName::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe(s: &mut String, indent: &str, via: &[IfName], on: OnUnavailable, listen: Listen) {
    if via.is_empty() {
        let _ = writeln!(
            s,
            "{indent}traffic: direct (routing table) unless a rule matches"
        );
    } else {
        let _ = writeln!(
            s,
            "{indent}traffic: via the first usable of [{}]",
            join(via)
        );
        let _ = writeln!(
            s,
            "{indent}when none is usable: {}",
            match on {
                OnUnavailable::Block => "fail with ENETUNREACH",
                OnUnavailable::Direct => "follow the routing table",
            }
        );
    }
    let _ = writeln!(
        s,
        "{indent}wildcard listeners: {}",
        match listen {
            Listen::Interface => "confined to the chosen interface (its own subnets) and loopback",
            Listen::Device => "bound to the chosen interface's device (loopback refused)",
            Listen::Any => "left on every interface",
        }
    );
    let _ = writeln!(
        s,
        "{indent}always direct: loopback and this host's own addresses"
    );
}

fn describe_options(
    s: &mut String,
    indent: &str,
    o: &SocketOptions,
    denied: OnMarkDenied,
    foreign: ForeignBind,
) {
    if !o.is_empty() {
        let _ = writeln!(s, "{indent}steered sockets get: {}", o.describe());
    }
    if o.source_v4.is_some() || o.source_v6.is_some() {
        let _ = writeln!(
            s,
            "{indent}  (a source is used on the chosen interface only when it has that address; otherwise the kernel chooses, with a warning)"
        );
    }
    if o.mark.is_some_and(|m| m != 0) {
        let _ = writeln!(
            s,
            "{indent}  (the mark needs CAP_NET_ADMIN or CAP_NET_RAW; without: {})",
            match denied {
                OnMarkDenied::Block => "fail with EPERM",
                OnMarkDenied::Continue => "go on without the mark",
            }
        );
    }
    let _ = writeln!(
        s,
        "{indent}binds to another interface's address: {}",
        match foreign {
            ForeignBind::Rewrite => "rewritten to the chosen interface's address",
            ForeignBind::Keep => "kept as the program asked",
        }
    );
}

fn describe_rule(r: &Rule) -> String {
    let mut s = format!("{}: ", r.label);
    let mut conds = Vec::new();
    if !r.names.is_empty() {
        conds.push(format!("names {}", r.names.join(", ")));
    }
    if !r.to.is_empty() {
        conds.push(format!(
            "to {}",
            r.to.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !r.ports.is_empty() {
        conds.push(format!(
            "port {}",
            r.ports
                .iter()
                .map(|p| if p.lo == p.hi {
                    p.lo.to_string()
                } else {
                    format!("{}-{}", p.lo, p.hi)
                })
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    match r.protocol {
        Protocol::Tcp => conds.push("tcp".into()),
        Protocol::Udp => conds.push("udp".into()),
        Protocol::Any => {}
    }
    if conds.is_empty() {
        conds.push("everything".into());
    }
    s.push_str(&conds.join(" and "));
    s.push_str(" -> ");
    match &r.target {
        Target::Via(v) => {
            let _ = write!(s, "via [{}]", join(v));
        }
        Target::Direct => s.push_str("direct"),
        Target::Block => s.push_str("block (EACCES)"),
    }
    if !r.options.is_empty() {
        let _ = write!(s, " with {}", r.options.describe());
    }
    s
}

/// The shim's log verbosity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum LogLevel {
    Off = 0,
    Error = 1,
    #[default]
    Warn = 2,
    Info = 3,
    Debug = 4,
}

impl std::str::FromStr for LogLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" | "none" | "0" => Ok(LogLevel::Off),
            "error" => Ok(LogLevel::Error),
            "warn" | "warning" => Ok(LogLevel::Warn),
            "info" => Ok(LogLevel::Info),
            "debug" | "trace" => Ok(LogLevel::Debug),
            _ => Err(format!(
                "unknown log level `{s}`; expected off, error, warn, info or debug"
            )),
        }
    }
}

impl std::fmt::Display for LogLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LogLevel::Off => "off",
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
        })
    }
}

/// True when `ip` lies in one of `nets` (IPv4-mapped IPv6 addresses are matched as
/// IPv4).
pub(crate) fn nets_contain(nets: &[IpNet], ip: IpAddr) -> bool {
    nets.iter().any(|n| n.contains(&ip))
}
