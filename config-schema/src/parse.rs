//! TOML → [`Policy`], collecting every problem with its position.
//!
//! The document is first parsed into toml's spanned tree (all syntax errors at once),
//! then walked by hand so that an unknown key, a bad value or a rule that can never
//! match is reported where it stands and the walk goes on. Enumerated values go
//! through serde so their messages list the accepted spellings.

use crate::diag::Lines;
use crate::document::Action;
use crate::policy::{
    DSCP_NAMES, DnsSettings, ForeignBind, InterfaceSettings, Listen, OnMarkDenied, OnUnavailable,
    PortRange, Protocol, Rule, SocketOptions, Target,
};
use crate::shadow::{MAX_COMPARISONS, Shadow};
use crate::{Diagnostic, IfName, Loaded, Policy, ProgramSection};
use ipnet::IpNet;
use serde::de::{DeserializeOwned, IntoDeserializer};
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::Path;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

pub const TOP_KEYS: &[&str] = &[
    "via",
    "on_unavailable",
    "listen",
    "rules",
    "programs",
    "interfaces",
    "dns",
    "source",
    "mark",
    "dscp",
    "on_mark_denied",
    "foreign_bind",
];
pub const PROGRAM_KEYS: &[&str] = &[
    "via",
    "on_unavailable",
    "listen",
    "rules",
    "source",
    "mark",
    "dscp",
    "on_mark_denied",
    "foreign_bind",
];
pub const RULE_KEYS: &[&str] = &[
    "to", "ports", "protocol", "names", "via", "action", "source", "mark", "dscp",
];
pub const INTERFACE_KEYS: &[&str] = &["dns", "search"];
pub const DNS_KEYS: &[&str] = &["steer", "redirect", "timeout_ms", "attempts"];

/// The largest policy file read, in bytes (4 MiB: some 40 000 rules).
pub const MAX_POLICY_BYTES: u64 = 4 << 20;

/// Reads and parses a policy file. The file name is the origin of every diagnostic
/// (shown lossily when it is not UTF-8; the file itself is opened by its bytes).
///
/// The file is opened safely (see `read_policy_text`): a FIFO, a device or a
/// directory is refused without blocking or reading it, and so is a file larger than
/// [`MAX_POLICY_BYTES`].
pub fn load_policy_file(path: &Path) -> Result<Loaded, Vec<Diagnostic>> {
    let origin = path.display().to_string();
    match read_policy_text(path, MAX_POLICY_BYTES) {
        Ok(src) => parse_policy(&src, &origin),
        Err(message) => Err(vec![Diagnostic::whole(&origin, message)]),
    }
}

/// Reads a policy file of at most `limit` bytes, as text, without ever
/// blocking on it: it is opened with `O_NONBLOCK | O_NOCTTY | O_CLOEXEC` (opening a
/// FIFO without a writer returns at once, a terminal does not become the controlling
/// one), then `fstat`ed, and anything but a regular file is refused unread. At most
/// `limit + 1` bytes are read, so a file that grows meanwhile is refused too.
fn read_policy_text(path: &Path, limit: u64) -> Result<String, String> {
    use std::io::Read as _;
    use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| format!("cannot read policy file: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read policy file: {e}"))?;
    let t = meta.file_type();
    if !t.is_file() {
        let kind = if t.is_dir() {
            "a directory"
        } else if t.is_fifo() {
            "a FIFO"
        } else if t.is_char_device() {
            "a character device"
        } else if t.is_block_device() {
            "a block device"
        } else if t.is_socket() {
            "a socket"
        } else {
            "not a file"
        };
        return Err(format!(
            "cannot read policy file: not a regular file ({kind})"
        ));
    }
    let too_big = || format!("cannot read policy file: larger than the limit of {limit} bytes");
    if meta.len() > limit {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read policy file: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(too_big());
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "cannot read policy file: not valid UTF-8 (at byte {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Parses and validates a policy. On success the warnings come with it; on failure
/// every error (and warning) found, in source order.
pub fn parse_policy(src: &str, origin: &str) -> Result<Loaded, Vec<Diagnostic>> {
    parse_policy_counted(src, origin).0
}

/// [`parse_policy`], also returning how much validation work it did (rule comparisons
/// plus source bytes scanned to find positions), for the complexity tests.
pub(crate) fn parse_policy_counted(
    src: &str,
    origin: &str,
) -> (Result<Loaded, Vec<Diagnostic>>, u64) {
    let mut cx = Cx {
        origin,
        src,
        diags: Vec::new(),
        lines: Lines::new(src),
        work: 0,
    };
    let r = parse_in(&mut cx);
    (r, cx.work)
}

fn parse_in(cx: &mut Cx<'_>) -> Result<Loaded, Vec<Diagnostic>> {
    let src = cx.src;
    let (doc, syntax) = DeTable::parse_recoverable(src);
    if !syntax.is_empty() {
        for e in syntax {
            let at = e.span().map_or(0, |s| s.start);
            cx.error(at..at, e.message().trim_end().to_owned());
        }
        return Err(cx.finish_err());
    }
    let doc = doc.get_ref();
    let mut policy = Policy::default();
    for (key, value) in doc.iter() {
        match key.get_ref().as_ref() {
            "via" => {
                if let Some(v) = cx.via_list(value) {
                    policy.base.via = v;
                }
            }
            "on_unavailable" => {
                if let Some(v) = cx.de::<OnUnavailable>(value) {
                    policy.base.on_unavailable = v;
                }
            }
            "listen" => {
                if let Some(v) = cx.de::<Listen>(value) {
                    policy.base.listen = v;
                }
            }
            "rules" => policy.base.rules = cx.rules(value, ""),
            "programs" => policy.programs = cx.programs(value),
            "interfaces" => policy.base.interfaces = cx.interfaces(value),
            "dns" => {
                if let Some(d) = cx.dns(value) {
                    policy.base.dns = d;
                }
            }
            k @ ("source" | "mark" | "dscp") => cx.option(k, value, &mut policy.base.options),
            "on_mark_denied" => {
                if let Some(v) = cx.de::<OnMarkDenied>(value) {
                    policy.base.on_mark_denied = v;
                }
            }
            "foreign_bind" => {
                if let Some(v) = cx.de::<ForeignBind>(value) {
                    policy.base.foreign_bind = v;
                }
            }
            other => cx.unknown_key(key.span(), other, TOP_KEYS, "at the top level"),
        }
    }
    if policy.interface_names().is_empty() && policy.base.rules.is_empty() {
        let no_program_rules = policy.programs.iter().all(|p| p.rules.is_empty());
        if no_program_rules {
            cx.warning(
                0..0,
                "the policy names no interface and has no rule: it changes nothing".into(),
            );
        }
    }
    if cx.diags.iter().any(|d| !d.warning) {
        Err(cx.finish_err())
    } else {
        let mut warnings = std::mem::take(&mut cx.diags);
        sort(&mut warnings);
        Ok(Loaded { policy, warnings })
    }
}

/// Parses `wlan0,wwan0` (from `--via` or `MIFSHIM_VIA`) into an ordered list.
pub fn parse_via_list(s: &str, origin: &str) -> Result<Vec<IfName>, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let mut out: Vec<IfName> = Vec::new();
    if s.trim().is_empty() {
        return Err(vec![Diagnostic::whole(
            origin,
            "the interface list is empty".into(),
        )]);
    }
    for part in s.split(',') {
        let name = part.trim();
        match IfName::new(name) {
            Ok(n) if out.contains(&n) => errors.push(Diagnostic::whole(
                origin,
                format!("interface `{n}` is listed twice"),
            )),
            Ok(n) => out.push(n),
            Err(e) => errors.push(Diagnostic::whole(origin, e)),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn sort(d: &mut [Diagnostic]) {
    d.sort_by_key(|d| (d.line, d.col));
}

struct Cx<'s> {
    origin: &'s str,
    src: &'s str,
    diags: Vec<Diagnostic>,
    lines: Lines,
    /// Validation work done (see [`parse_policy_counted`]).
    work: u64,
}

type Value<'i> = Spanned<DeValue<'i>>;

impl Cx<'_> {
    fn error(&mut self, span: Range<usize>, message: String) {
        self.diags.push(Diagnostic::at(
            self.origin,
            self.src,
            &self.lines,
            span.start,
            message,
        ));
    }

    fn warning(&mut self, span: Range<usize>, message: String) {
        let mut d = Diagnostic::at(self.origin, self.src, &self.lines, span.start, message);
        if span.start == 0 && span.end == 0 {
            d.line = 0;
            d.col = 0;
        }
        d.warning = true;
        self.diags.push(d);
    }

    fn finish_err(&mut self) -> Vec<Diagnostic> {
        let mut d = std::mem::take(&mut self.diags);
        sort(&mut d);
        d
    }

    fn unknown_key(&mut self, span: Range<usize>, key: &str, known: &[&str], place: &str) {
        let hint = known
            .iter()
            .filter(|k| edit_distance(k, key) <= 2)
            .min_by_key(|k| edit_distance(k, key))
            .map(|k| format!("; did you mean `{k}`?"))
            .unwrap_or_else(|| format!("; expected one of {}", quoted(known)));
        self.error(span, format!("unknown key `{key}` {place}{hint}"));
    }

    /// Deserializes a leaf value with serde, reporting failures at the value.
    fn de<T: DeserializeOwned>(&mut self, v: &Value<'_>) -> Option<T> {
        match T::deserialize(v.clone().into_deserializer()) {
            Ok(t) => Some(t),
            Err(e) => {
                let span = e.span().unwrap_or_else(|| v.span());
                self.error(span, e.message().trim_end().to_owned());
                None
            }
        }
    }

    /// A string or an array of strings; each element reported where it stands.
    fn strings<'v, 'i>(&mut self, v: &'v Value<'i>, what: &str) -> Option<Vec<&'v Value<'i>>> {
        match v.get_ref() {
            DeValue::String(_) => Some(vec![v]),
            DeValue::Array(items) => Some(items.iter().collect()),
            other => {
                self.error(
                    v.span(),
                    format!(
                        "`{what}` must be a string or an array of strings, not {}",
                        other.type_str()
                    ),
                );
                None
            }
        }
    }

    fn via_list(&mut self, v: &Value<'_>) -> Option<Vec<IfName>> {
        let items = self.strings(v, "via")?;
        if items.is_empty() {
            self.error(
                v.span(),
                "`via` is empty: name at least one interface".into(),
            );
            return None;
        }
        let mut out: Vec<IfName> = Vec::new();
        let mut ok = true;
        for item in items {
            let Some(s) = item.get_ref().as_str() else {
                self.error(
                    item.span(),
                    format!(
                        "interface names are strings, not {}",
                        item.get_ref().type_str()
                    ),
                );
                ok = false;
                continue;
            };
            match IfName::new(s) {
                Ok(n) if out.contains(&n) => {
                    self.error(item.span(), format!("interface `{n}` is listed twice"));
                    ok = false;
                }
                Ok(n) => out.push(n),
                Err(e) => {
                    self.error(item.span(), e);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn rules(&mut self, v: &Value<'_>, section: &str) -> Vec<Rule> {
        let DeValue::Array(items) = v.get_ref() else {
            self.error(
                v.span(),
                "`rules` must be an array of tables (`[[rules]]`)".into(),
            );
            return Vec::new();
        };
        let mut rules: Vec<Rule> = Vec::new();
        let mut shadow = Shadow::default();
        for (i, item) in items.iter().enumerate() {
            let label = if section.is_empty() {
                format!("rule {}", i + 1)
            } else {
                format!("{section} rule {}", i + 1)
            };
            let DeValue::Table(t) = item.get_ref() else {
                self.error(item.span(), format!("{label} must be a table"));
                continue;
            };
            if let Some(rule) = self.rule(t, item.span(), label) {
                if let Some(earlier) = shadow.check_and_add(&rule).map(|i| &rules[i]) {
                    let msg = format!(
                        "{} can never match: {} (line {}) already matches everything it matches",
                        rule.label, earlier.label, earlier.line
                    );
                    self.error(item.span(), msg);
                }
                rules.push(rule);
            }
        }
        self.work += shadow.work;
        if let Some(label) = shadow.unchecked_from {
            self.warning(
                v.span(),
                format!(
                    "{label} and the rules after it were not checked for rules that can never match (the check stops after {MAX_COMPARISONS} comparisons)"
                ),
            );
        }
        rules
    }

    fn rule(&mut self, t: &DeTable<'_>, span: Range<usize>, label: String) -> Option<Rule> {
        let before = self.errors();
        let line = self.lines.line_of(span.start).0;
        let mut rule = Rule {
            label,
            line,
            to: Vec::new(),
            ports: Vec::new(),
            protocol: Protocol::Any,
            names: Vec::new(),
            target: Target::Direct,
            options: SocketOptions::default(),
        };
        let mut target: Option<Target> = None;
        let mut option_key: Option<Range<usize>> = None;
        let mut address_key: Option<Range<usize>> = None;
        let mut names_key: Option<Range<usize>> = None;
        let mut target_key: Option<Range<usize>> = None;
        for (key, value) in t.iter() {
            match key.get_ref().as_ref() {
                "to" => {
                    address_key.get_or_insert(key.span());
                    rule.to = self.nets(value)
                }
                "ports" => {
                    address_key.get_or_insert(key.span());
                    rule.ports = self.ports(value)
                }
                "protocol" => {
                    address_key.get_or_insert(key.span());
                    if let Some(p) = self.de::<Protocol>(value) {
                        rule.protocol = p;
                    }
                }
                "names" => {
                    names_key = Some(key.span());
                    rule.names = self.names(value);
                }
                k @ ("source" | "mark" | "dscp") => {
                    option_key.get_or_insert(key.span());
                    self.option(k, value, &mut rule.options);
                }
                k @ ("via" | "action") => {
                    if target_key.is_some() {
                        self.error(
                            key.span(),
                            format!("{}: give either `via` or `action`, not both", rule.label),
                        );
                        continue;
                    }
                    target_key = Some(key.span());
                    target = if k == "via" {
                        self.via_list(value).map(Target::Via)
                    } else {
                        self.de::<Action>(value).map(|a| match a {
                            Action::Direct => Target::Direct,
                            Action::Block => Target::Block,
                        })
                    };
                }
                other => {
                    let place = format!("in {}", rule.label);
                    self.unknown_key(key.span(), other, RULE_KEYS, &place)
                }
            }
        }
        if let (Some(_), Some(n)) = (&address_key, &names_key) {
            self.error(
                n.clone(),
                format!(
                    "{}: a rule matches either `names` or addresses (`to`, `ports`, `protocol`), not both; split it in two",
                    rule.label
                ),
            );
        }
        if let (Some(k), Some(Target::Direct | Target::Block)) = (&option_key, &target) {
            self.error(
                k.clone(),
                format!(
                    "{}: `source`, `mark` and `dscp` apply to traffic a rule sends `via` an interface, not to an `action` rule",
                    rule.label
                ),
            );
        }
        if target_key.is_none() {
            self.error(
                span.clone(),
                format!(
                    "{} has no target: add `via = [\"IFACE\"]` or `action = \"direct\"` / `\"block\"`",
                    rule.label
                ),
            );
        }
        rule.target = target?;
        (self.errors() == before).then_some(rule)
    }

    fn errors(&self) -> usize {
        self.diags.iter().filter(|d| !d.warning).count()
    }

    fn nets(&mut self, v: &Value<'_>) -> Vec<IpNet> {
        let Some(items) = self.strings(v, "to") else {
            return Vec::new();
        };
        if items.is_empty() {
            self.error(
                v.span(),
                "`to` is empty: leave it out to match every address".into(),
            );
        }
        let mut out = Vec::new();
        for item in items {
            let Some(s) = item.get_ref().as_str() else {
                self.error(
                    item.span(),
                    "addresses are strings such as \"198.51.100.0/24\"".into(),
                );
                continue;
            };
            match parse_net(s) {
                Ok(n) => out.push(n),
                Err(e) => self.error(item.span(), e),
            }
        }
        out
    }

    fn ports(&mut self, v: &Value<'_>) -> Vec<PortRange> {
        let items: Vec<&Value<'_>> = match v.get_ref() {
            DeValue::Array(items) => items.iter().collect(),
            DeValue::String(_) | DeValue::Integer(_) => vec![v],
            other => {
                self.error(
                    v.span(),
                    format!("`ports` must be an array, not {}", other.type_str()),
                );
                return Vec::new();
            }
        };
        if items.is_empty() {
            self.error(
                v.span(),
                "`ports` is empty: leave it out to match every port".into(),
            );
        }
        let mut out = Vec::new();
        for item in items {
            let parsed = match item.get_ref() {
                DeValue::String(s) => parse_port_range(s),
                DeValue::Integer(i) => parse_port_range(i.as_str()),
                other => Err(format!(
                    "a port is a number or a \"LO-HI\" string, not {}",
                    other.type_str()
                )),
            };
            match parsed {
                Ok(p) => out.push(p),
                Err(e) => self.error(item.span(), e),
            }
        }
        out
    }

    fn names(&mut self, v: &Value<'_>) -> Vec<String> {
        let Some(items) = self.strings(v, "names") else {
            return Vec::new();
        };
        if items.is_empty() {
            self.error(v.span(), "`names` is empty".into());
        }
        let mut out = Vec::new();
        for item in items {
            let Some(s) = item.get_ref().as_str() else {
                self.error(
                    item.span(),
                    "names are strings such as \"*.corp.example\"".into(),
                );
                continue;
            };
            match parse_name_pattern(s) {
                Ok(p) => out.push(p),
                Err(e) => self.error(item.span(), e),
            }
        }
        out
    }

    fn interfaces(&mut self, v: &Value<'_>) -> Vec<InterfaceSettings> {
        let DeValue::Table(t) = v.get_ref() else {
            self.error(
                v.span(),
                "`interfaces` must be a table of `[interfaces.NAME]` sections".into(),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (key, value) in t.iter() {
            let name = match IfName::new(key.get_ref()) {
                Ok(n) => n,
                Err(e) => {
                    self.error(key.span(), e);
                    continue;
                }
            };
            let DeValue::Table(body) = value.get_ref() else {
                self.error(value.span(), format!("`interfaces.{name}` must be a table"));
                continue;
            };
            let mut settings = InterfaceSettings {
                name,
                dns: Vec::new(),
                search: None,
            };
            for (k, val) in body.iter() {
                match k.get_ref().as_ref() {
                    "dns" => settings.dns = self.servers(val),
                    "search" => settings.search = self.search(val),
                    other => {
                        let place = format!("in [interfaces.{name}]");
                        self.unknown_key(k.span(), other, INTERFACE_KEYS, &place)
                    }
                }
            }
            out.push(settings);
        }
        out
    }

    fn servers(&mut self, v: &Value<'_>) -> Vec<SocketAddr> {
        let Some(items) = self.strings(v, "dns") else {
            return Vec::new();
        };
        if items.is_empty() {
            self.error(
                v.span(),
                "`dns` is empty: leave it out to find the servers automatically".into(),
            );
        }
        let mut out = Vec::new();
        for item in items {
            match item.get_ref().as_str().map(parse_server) {
                Some(Ok(a)) => out.push(a),
                Some(Err(e)) => self.error(item.span(), e),
                None => self.error(
                    item.span(),
                    "DNS servers are strings such as \"198.51.100.53\"".into(),
                ),
            }
        }
        out
    }

    /// `search = ["corp.example", …]`: domain names (an empty list: no search over
    /// this interface).
    fn search(&mut self, v: &Value<'_>) -> Option<Vec<String>> {
        let items = self.strings(v, "search")?;
        let mut out: Vec<String> = Vec::new();
        let mut ok = true;
        for item in items {
            let Some(s) = item.get_ref().as_str() else {
                self.error(
                    item.span(),
                    "search domains are strings such as \"corp.example\"".into(),
                );
                ok = false;
                continue;
            };
            match parse_name_pattern(s) {
                Ok(d) if d.starts_with("*.") => {
                    self.error(
                        item.span(),
                        format!("`{s}`: a search domain is a domain name, not a pattern"),
                    );
                    ok = false;
                }
                Ok(d) if out.contains(&d) => {
                    self.error(item.span(), format!("search domain `{d}` is listed twice"));
                    ok = false;
                }
                Ok(d) => out.push(d),
                Err(_) => {
                    self.error(item.span(), format!("`{s}` is not a domain name"));
                    ok = false;
                }
            }
        }
        if out.len() > MAX_SEARCH {
            self.error(
                v.span(),
                format!("at most {MAX_SEARCH} search domains (resolv.conf(5)'s limit)"),
            );
            ok = false;
        }
        ok.then_some(out)
    }

    /// `source`, `mark` or `dscp` into `o`.
    fn option(&mut self, key: &str, v: &Value<'_>, o: &mut SocketOptions) {
        match key {
            "source" => self.sources(v, o),
            "mark" => {
                if let Some(m) = self.mark(v) {
                    o.mark = Some(m);
                }
            }
            _ => {
                if let Some(d) = self.dscp(v) {
                    o.dscp = Some(d);
                }
            }
        }
    }

    /// `source = "ADDR"` or `["V4", "V6"]`: at most one address per family.
    fn sources(&mut self, v: &Value<'_>, o: &mut SocketOptions) {
        let Some(items) = self.strings(v, "source") else {
            return;
        };
        if items.is_empty() {
            self.error(
                v.span(),
                "`source` is empty: leave it out to let the kernel choose".into(),
            );
        }
        let (mut v4, mut v6) = (None, None);
        for item in items {
            let Some(s) = item.get_ref().as_str() else {
                self.error(
                    item.span(),
                    "source addresses are strings such as \"198.51.100.66\"".into(),
                );
                continue;
            };
            match parse_source(s) {
                Ok(IpAddr::V4(a)) if v4.is_some() => self.error(
                    item.span(),
                    format!(
                        "`source` names two IPv4 addresses ({} and {a})",
                        v4.unwrap_or(a)
                    ),
                ),
                Ok(IpAddr::V6(a)) if v6.is_some() => self.error(
                    item.span(),
                    format!(
                        "`source` names two IPv6 addresses ({} and {a})",
                        v6.unwrap_or(a)
                    ),
                ),
                Ok(IpAddr::V4(a)) => v4 = Some(a),
                Ok(IpAddr::V6(a)) => v6 = Some(a),
                Err(e) => self.error(item.span(), e),
            }
        }
        o.source_v4 = v4.or(o.source_v4);
        o.source_v6 = v6.or(o.source_v6);
    }

    /// `mark = 0x10` (any 32-bit value; 0 = no mark), or the same as a string.
    fn mark(&mut self, v: &Value<'_>) -> Option<u32> {
        let parsed = match v.get_ref() {
            DeValue::Integer(i) => u64::from_str_radix(i.as_str(), i.radix()).ok(),
            DeValue::String(s) => {
                let t = s.trim();
                match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                    Some(h) => u64::from_str_radix(h, 16).ok(),
                    None => t.parse::<u64>().ok(),
                }
            }
            other => {
                self.error(
                    v.span(),
                    format!("`mark` is a number such as 0x10, not {}", other.type_str()),
                );
                return None;
            }
        };
        match parsed.and_then(|m| u32::try_from(m).ok()) {
            Some(m) => Some(m),
            None => {
                self.error(
                    v.span(),
                    "`mark` must be a 32-bit number (0 to 0xffffffff; 0: no mark)".into(),
                );
                None
            }
        }
    }

    /// `dscp = "ef"`, `"af41"`, `"cs3"` or a number 0–63.
    fn dscp(&mut self, v: &Value<'_>) -> Option<u8> {
        let bad = |what: &str| {
            format!(
                "`dscp` must be a number from 0 to 63 or a class name ({}), not {what}",
                DSCP_NAMES
                    .iter()
                    .map(|(n, _)| *n)
                    .filter(|n| *n != "df" && *n != "be")
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let parsed = match v.get_ref() {
            DeValue::Integer(i) => u64::from_str_radix(i.as_str(), i.radix()).ok(),
            DeValue::String(s) => {
                let t = s.trim().to_ascii_lowercase();
                DSCP_NAMES
                    .iter()
                    .find(|(n, _)| *n == t)
                    .map(|(_, d)| u64::from(*d))
                    .or_else(|| t.parse::<u64>().ok())
            }
            other => {
                self.error(v.span(), bad(other.type_str()));
                return None;
            }
        };
        match parsed {
            Some(d) if d <= 63 => Some(d as u8),
            _ => {
                let shown = match v.get_ref() {
                    DeValue::String(s) => format!("`{s}`"),
                    DeValue::Integer(i) => i.to_string(),
                    _ => "this".into(),
                };
                self.error(v.span(), bad(&shown));
                None
            }
        }
    }

    fn dns(&mut self, v: &Value<'_>) -> Option<DnsSettings> {
        let DeValue::Table(t) = v.get_ref() else {
            self.error(v.span(), "`dns` must be a table (`[dns]`)".into());
            return None;
        };
        let mut d = DnsSettings::default();
        for (k, val) in t.iter() {
            match k.get_ref().as_ref() {
                "steer" => d.steer = self.de(val).unwrap_or(d.steer),
                "redirect" => d.redirect = self.de(val).unwrap_or(d.redirect),
                "timeout_ms" => match self.de::<u32>(val) {
                    Some(ms) if (10..=60_000).contains(&ms) => d.timeout_ms = ms,
                    Some(_) => self.error(
                        val.span(),
                        "`timeout_ms` must be between 10 and 60000".into(),
                    ),
                    None => {}
                },
                "attempts" => match self.de::<u32>(val) {
                    Some(n) if (1..=10).contains(&n) => d.attempts = n,
                    Some(_) => self.error(val.span(), "`attempts` must be between 1 and 10".into()),
                    None => {}
                },
                other => self.unknown_key(k.span(), other, DNS_KEYS, "in [dns]"),
            }
        }
        Some(d)
    }

    fn programs(&mut self, v: &Value<'_>) -> Vec<ProgramSection> {
        let DeValue::Table(t) = v.get_ref() else {
            self.error(
                v.span(),
                "`programs` must be a table of `[programs.NAME]` sections".into(),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (key, value) in t.iter() {
            let name = key.get_ref().as_ref();
            if name.is_empty() {
                self.error(key.span(), "program name is empty".into());
                continue;
            }
            if name.contains('/') && !name.starts_with('/') {
                self.error(
                    key.span(),
                    format!("program `{name}`: use a bare executable name or an absolute path"),
                );
                continue;
            }
            let DeValue::Table(body) = value.get_ref() else {
                self.error(value.span(), format!("`programs.{name}` must be a table"));
                continue;
            };
            let mut sec = ProgramSection {
                key: name.to_owned(),
                via: None,
                on_unavailable: None,
                listen: None,
                rules: Vec::new(),
                options: SocketOptions::default(),
                on_mark_denied: None,
                foreign_bind: None,
            };
            if body.is_empty() {
                self.warning(
                    key.span(),
                    format!("`[programs.{name}]` is empty and changes nothing"),
                );
            }
            let label = format!("programs.{name}");
            for (k, val) in body.iter() {
                match k.get_ref().as_ref() {
                    "via" => sec.via = self.via_list(val),
                    "on_unavailable" => sec.on_unavailable = self.de(val),
                    "listen" => sec.listen = self.de(val),
                    "rules" => sec.rules = self.rules(val, &label),
                    k @ ("source" | "mark" | "dscp") => self.option(k, val, &mut sec.options),
                    "on_mark_denied" => sec.on_mark_denied = self.de(val),
                    "foreign_bind" => sec.foreign_bind = self.de(val),
                    other => {
                        let place = format!("in [{label}]");
                        self.unknown_key(k.span(), other, PROGRAM_KEYS, &place)
                    }
                }
            }
            out.push(sec);
        }
        out
    }
}

/// A DNS server: `198.51.100.53`, `2001:db8::53`, `198.51.100.53:5353` or
/// `[2001:db8::53]:5353`.
pub fn parse_server(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    s.parse::<SocketAddr>()
        .map_err(|_| format!("`{s}` is not an address or address:port"))
}

/// resolv.conf(5): "The search list is currently limited to six domains".
const MAX_SEARCH: usize = 6;

/// A source address: a unicast address a host can own (no loopback, unspecified,
/// multicast, broadcast, IPv4-mapped or link-local address).
fn parse_source(s: &str) -> Result<IpAddr, String> {
    let t = s.trim();
    let ip: IpAddr = t
        .parse()
        .map_err(|_| format!("`{s}` is not an IP address"))?;
    let why = match ip {
        IpAddr::V4(a) if a.is_unspecified() => Some("the unspecified address"),
        IpAddr::V4(a) if a.is_loopback() => Some("a loopback address"),
        IpAddr::V4(a) if a.is_multicast() => Some("a multicast address"),
        IpAddr::V4(a) if a.is_broadcast() => Some("the broadcast address"),
        IpAddr::V4(a) if a.is_link_local() => Some("a link-local address"),
        IpAddr::V6(a) if a.is_unspecified() => Some("the unspecified address"),
        IpAddr::V6(a) if a.is_loopback() => Some("a loopback address"),
        IpAddr::V6(a) if a.is_multicast() => Some("a multicast address"),
        IpAddr::V6(a) if a.is_unicast_link_local() => Some("a link-local address"),
        IpAddr::V6(a) if a.to_ipv4_mapped().is_some() => {
            return Err(format!(
                "`{s}` is IPv4-mapped: write the IPv4 address ({})",
                a.to_canonical()
            ));
        }
        _ => None,
    };
    match why {
        Some(w) => Err(format!(
            "`{s}` is {w}, not a source address for traffic leaving by a link"
        )),
        None => Ok(ip),
    }
}

/// `host.example` or `*.corp.example`, normalised to lower case without a trailing
/// dot.
fn parse_name_pattern(s: &str) -> Result<String, String> {
    let p = s.trim().trim_end_matches('.').to_ascii_lowercase();
    let body = p.strip_prefix("*.").unwrap_or(&p);
    let ok = !body.is_empty()
        && body.len() <= 253
        && body.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if ok {
        Ok(p)
    } else {
        Err(format!("`{s}` is not a host name or a `*.domain` pattern"))
    }
}

/// `198.51.100.0/24`, `2001:db8::/32` or a bare address (a host route).
fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    let net: IpNet = s.parse().map_err(|_| {
        format!("`{s}` is not an address or CIDR prefix (e.g. \"198.51.100.0/24\")")
    })?;
    if net.trunc() != net {
        return Err(format!(
            "`{s}` has host bits set; did you mean \"{}\"?",
            net.trunc()
        ));
    }
    Ok(net)
}

/// `443`, `"443"` or `"8000-8100"`.
fn parse_port_range(s: &str) -> Result<PortRange, String> {
    let s = s.trim();
    let port = |p: &str| -> Result<u16, String> {
        match p.trim().parse::<u32>() {
            Ok(0) => Err(format!("port 0 in `{s}` is not a destination port")),
            Ok(n) if n <= 65535 => Ok(n as u16),
            Ok(_) => Err(format!("port in `{s}` is above 65535")),
            Err(_) => Err(format!("`{s}` is not a port or a \"LO-HI\" port range")),
        }
    };
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => {
            let p = port(s)?;
            (p, p)
        }
    };
    if lo > hi {
        return Err(format!("port range `{s}` is reversed; write \"{hi}-{lo}\""));
    }
    Ok(PortRange { lo, hi })
}

fn quoted(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests;
