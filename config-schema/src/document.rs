//! The policy file's shape as serde types: what `mifrun schema` and
//! `config-schema/policy.schema.json` are generated from (with the `schema` feature,
//! by schemars), so that editors can complete and check a policy as it is typed.
//!
//! The parser (`parse.rs`) walks the TOML by hand, to report every problem at once
//! with its position; these types state the same shape for the schema, and the two
//! are kept in step by tests: every policy the parser's tests accept deserializes into
//! [`PolicyFile`], every unknown key the parser refuses is refused here too (serde's
//! `deny_unknown_fields`), the keys the parser knows are exactly the schema's
//! properties, and the schema accepts `examples/policy.toml` and every policy of the
//! test suite. The enumerations (`on_unavailable`, `listen`, …) and `[dns]` are the
//! very types the parser reads them into. What the schema cannot say (a rule that can
//! never match, an interface listed twice, host bits in a prefix) only `mifrun
//! --check` reports.

use crate::policy::{DnsSettings, ForeignBind, Listen, OnMarkDenied, OnUnavailable, Protocol};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[cfg(feature = "schema")]
use schemars::JsonSchema;

/// A mifshim policy: which interface a program's sockets use, per destination and per
/// program. Read from `--policy FILE`, `MIFSHIM_POLICY`,
/// `~/.config/mifshim/policy.toml` or `/etc/mifshim/policy.toml`; check it with
/// `mifrun --policy FILE --check`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[cfg_attr(feature = "schema", schemars(title = "mifshim policy"))]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// Interfaces to use, in order of preference: the first usable one wins (up, with
    /// an address of the destination's family). Left out: traffic stays direct unless
    /// a rule says otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<Interfaces>,
    /// What happens when none of the `via` interfaces is usable.
    #[serde(default)]
    pub on_unavailable: OnUnavailable,
    /// What happens to wildcard listeners (`bind(0.0.0.0)` / `bind(::)` then
    /// `listen`).
    #[serde(default)]
    pub listen: Listen,
    /// Rules, tried in order; the first that matches decides. A rule matches either
    /// host names (`names`) or addresses (`to`, `ports`, `protocol`), and either sends
    /// the traffic `via` interfaces or applies an `action`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleEntry>,
    /// `[programs.NAME]`: settings for one program, by executable name (`curl`,
    /// matching the last component of its path or `argv[0]`) or absolute path
    /// (`/usr/bin/python3.11`). Unset keys inherit the top level's; its rules are
    /// tried before the top-level ones.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(
        feature = "schema",
        schemars(extend("propertyNames" = {"minLength": 1, "pattern": "^(/.*|[^/]+)$"}))
    )]
    pub programs: BTreeMap<String, ProgramEntry>,
    /// `[interfaces.NAME]`: facts about one interface the kernel does not know (its DNS
    /// servers, its search domains).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(feature = "schema", schemars(extend("propertyNames" = if_name_schema())))]
    pub interfaces: BTreeMap<String, InterfaceEntry>,
    /// `[dns]`: how names are resolved.
    #[serde(default)]
    pub dns: DnsSettings,
    /// Source address(es) for the traffic steered by `via`: at most one IPv4 and one
    /// IPv6 address, each used when the chosen interface has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Sources>,
    /// `SO_MARK` for the traffic steered by `via` (policy routing, nftables); needs
    /// `CAP_NET_ADMIN`. `0`: no mark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<Mark>,
    /// Differentiated Services code point for the traffic steered by `via`, set as
    /// `IP_TOS` / `IPV6_TCLASS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dscp: Option<Dscp>,
    /// What happens when `mark` cannot be set (no `CAP_NET_ADMIN`).
    #[serde(default)]
    pub on_mark_denied: OnMarkDenied,
    /// What a `bind` to an address of another interface than the chosen one becomes.
    #[serde(default)]
    pub foreign_bind: ForeignBind,
}

/// One `[[rules]]` entry. All its conditions must hold; a condition left out matches
/// anything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[cfg_attr(
    feature = "schema",
    schemars(extend(
        // Exactly one target.
        "oneOf" = [{"required": ["via"]}, {"required": ["action"]}],
        "dependencies" = {
            // A name rule matches names, not addresses: split such a rule in two.
            "names": {"not": {"anyOf": [
                {"required": ["to"]}, {"required": ["ports"]}, {"required": ["protocol"]}
            ]}},
            // Socket options apply to traffic a rule sends `via` an interface.
            "action": {"not": {"anyOf": [
                {"required": ["source"]}, {"required": ["mark"]}, {"required": ["dscp"]}
            ]}}
        }
    ))
)]
#[serde(deny_unknown_fields)]
pub struct RuleEntry {
    /// Destination addresses or CIDR prefixes (`198.51.100.0/24`, `2001:db8::/32`, a
    /// bare address for one host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Networks>,
    /// Destination ports: a number or a `"LO-HI"` range, or a list of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Ports>,
    /// Transport protocol (default: any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// Host-name patterns (`host.example`, `*.corp.example`): a name rule, which
    /// chooses the interface a name is resolved over; the addresses it resolves to
    /// then follow the same target unless an address rule matches them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<NamePatterns>,
    /// Send the matching traffic through the first usable of these interfaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<Interfaces>,
    /// Instead of `via`: leave the traffic `direct` (the routing table decides) or
    /// `block` it (`EACCES`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// Source address(es) for this rule's `via` traffic (over the section's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Sources>,
    /// `SO_MARK` for this rule's `via` traffic (over the section's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<Mark>,
    /// DSCP for this rule's `via` traffic (over the section's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dscp: Option<Dscp>,
}

/// A rule's `action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Follow the routing table, unbound.
    Direct,
    /// Fail the call with `EACCES`.
    Block,
}

/// A `[programs.NAME]` section. Every key left out inherits the top level's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ProgramEntry {
    /// Interfaces for this program, in order of preference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<Interfaces>,
    /// What happens when none of this program's `via` interfaces is usable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_unavailable: Option<OnUnavailable>,
    /// What happens to this program's wildcard listeners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<Listen>,
    /// This program's rules, tried before the top-level ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleEntry>,
    /// Source address(es) for this program's `via` traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Sources>,
    /// `SO_MARK` for this program's `via` traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<Mark>,
    /// DSCP for this program's `via` traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dscp: Option<Dscp>,
    /// What happens when this program's `mark` cannot be set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_mark_denied: Option<OnMarkDenied>,
    /// What this program's `bind` to another interface's address becomes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreign_bind: Option<ForeignBind>,
}

/// An `[interfaces.NAME]` section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct InterfaceEntry {
    /// DNS servers for names resolved over this interface (`198.51.100.53`,
    /// `[2001:db8::53]:5353`; port 53 unless given). Left out: found automatically
    /// (systemd-resolved, networkd, a dhclient lease, /etc/resolv.conf).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Servers>,
    /// Search domains for names resolved over this interface, in place of the
    /// system's (an empty list: no search). At most six.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchDomains>,
}

/// One interface name or a list of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(untagged)]
pub enum Interfaces {
    One(InterfaceName),
    Many(
        #[cfg_attr(feature = "schema", schemars(length(min = 1), extend("uniqueItems" = true)))]
        Vec<InterfaceName>,
    ),
}

/// A network interface name (1–15 bytes, no `/`, `:` or white space, not `.` or `..`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[cfg_attr(feature = "schema", schemars(extend("not" = {"enum": [".", ".."]})))]
#[serde(transparent)]
pub struct InterfaceName(
    #[cfg_attr(
        feature = "schema",
        schemars(length(min = 1, max = 15), regex(pattern = r"^[^/:\s]+$"))
    )]
    pub String,
);

/// Destination addresses or prefixes: one string or a list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(untagged)]
pub enum Networks {
    One(Network),
    Many(#[cfg_attr(feature = "schema", schemars(length(min = 1)))] Vec<Network>),
}

/// An IPv4 or IPv6 address, or a CIDR prefix without host bits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(transparent)]
pub struct Network(
    #[cfg_attr(
        feature = "schema",
        schemars(regex(pattern = r"^\s*[0-9A-Fa-f:.]+(/[0-9]{1,3})?\s*$"))
    )]
    pub String,
);

/// Ports: one or a list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(untagged)]
pub enum Ports {
    One(Port),
    Many(#[cfg_attr(feature = "schema", schemars(length(min = 1)))] Vec<Port>),
}

/// A destination port (1–65535), as a number or a string, or a `"LO-HI"` range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(untagged)]
pub enum Port {
    Number(#[cfg_attr(feature = "schema", schemars(range(min = 1)))] u16),
    Range(
        #[cfg_attr(
            feature = "schema",
            schemars(regex(pattern = r"^\s*[0-9]{1,5}\s*(-\s*[0-9]{1,5}\s*)?$"))
        )]
        String,
    ),
}

/// Host-name patterns: one or a list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(untagged)]
pub enum NamePatterns {
    One(NamePattern),
    Many(#[cfg_attr(feature = "schema", schemars(length(min = 1)))] Vec<NamePattern>),
}

/// `host.example` (exactly that name) or `*.corp.example` (every name under it), any
/// case, a trailing dot allowed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(transparent)]
pub struct NamePattern(
    #[cfg_attr(
        feature = "schema",
        schemars(
            length(min = 1, max = 256),
            regex(pattern = r"^\s*(\*\.)?[A-Za-z0-9_-]{1,63}(\.[A-Za-z0-9_-]{1,63})*\.?\s*$")
        )
    )]
    pub String,
);

/// Source addresses: one, or one per family.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(untagged)]
pub enum Sources {
    One(SourceAddress),
    Many(#[cfg_attr(feature = "schema", schemars(length(min = 1, max = 2)))] Vec<SourceAddress>),
}

/// A unicast IPv4 or IPv6 address a host can own (not loopback, unspecified,
/// multicast, broadcast, link-local or IPv4-mapped).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(transparent)]
pub struct SourceAddress(
    #[cfg_attr(
        feature = "schema",
        schemars(regex(pattern = r"^\s*[0-9A-Fa-f:.]+\s*$"))
    )]
    pub String,
);

/// DNS servers: one or a list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(untagged)]
pub enum Servers {
    One(Server),
    Many(#[cfg_attr(feature = "schema", schemars(length(min = 1)))] Vec<Server>),
}

/// A DNS server: `198.51.100.53`, `2001:db8::53`, `198.51.100.53:5353` or
/// `[2001:db8::53]:5353`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(transparent)]
pub struct Server(
    #[cfg_attr(
        feature = "schema",
        schemars(regex(pattern = r"^\s*(\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?|[0-9A-Fa-f:.]+)\s*$"))
    )]
    pub String,
);

/// Search domains: one or a list (empty: no search).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(untagged)]
pub enum SearchDomains {
    One(SearchDomain),
    Many(
        #[cfg_attr(feature = "schema", schemars(length(max = 6), extend("uniqueItems" = true)))]
        Vec<SearchDomain>,
    ),
}

/// A domain name (`corp.example`), not a pattern.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(transparent)]
pub struct SearchDomain(
    #[cfg_attr(
        feature = "schema",
        schemars(
            length(min = 1, max = 256),
            regex(pattern = r"^\s*[A-Za-z0-9_-]{1,63}(\.[A-Za-z0-9_-]{1,63})*\.?\s*$")
        )
    )]
    pub String,
);

/// A 32-bit firewall mark: a number (`0x10`) or the same as a string (`"0x10"`,
/// `"16"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(untagged)]
pub enum Mark {
    Number(#[cfg_attr(feature = "schema", schemars(range(max = 4_294_967_295u32)))] u32),
    Text(
        #[cfg_attr(
            feature = "schema",
            schemars(regex(pattern = r"^\s*(0[xX][0-9A-Fa-f]{1,8}|[0-9]{1,10})\s*$"))
        )]
        String,
    ),
}

/// A DSCP: a number from 0 to 63 or a class name (`ef`, `af41`, `cs3`, `va`, `le`,
/// `be`, `df`; any case).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(untagged)]
pub enum Dscp {
    Number(#[cfg_attr(feature = "schema", schemars(range(max = 63)))] u8),
    Name(#[cfg_attr(feature = "schema", schemars(schema_with = "dscp_name_schema"))] String),
}

/// The schema of an interface name, also used for the keys of `[interfaces]`.
#[cfg(feature = "schema")]
fn if_name_schema() -> serde_json::Value {
    serde_json::json!({
        "minLength": 1, "maxLength": 15, "pattern": r"^[^/:\s]+$",
        "not": {"enum": [".", ".."]}
    })
}

/// A DSCP class name, from [`DSCP_NAMES`](crate::DSCP_NAMES): the names themselves
/// (for completion), or any case of them or a number as text (as the parser reads
/// them).
#[cfg(feature = "schema")]
fn dscp_name_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let names: Vec<&str> = crate::DSCP_NAMES.iter().map(|(n, _)| *n).collect();
    let any_case: Vec<String> = names
        .iter()
        .map(|n| {
            n.chars()
                .map(|c| {
                    if c.is_ascii_alphabetic() {
                        format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase())
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        })
        .collect();
    let pattern = format!(r"^\s*({}|[0-9]{{1,2}})\s*$", any_case.join("|"));
    schemars::json_schema!({
        "type": "string",
        "anyOf": [{"enum": names}, {"pattern": pattern}]
    })
}

/// The policy's JSON Schema (draft 7, which taplo / Even Better TOML and most
/// editors read), pretty-printed with a final newline: what `mifrun schema` prints
/// and `config-schema/policy.schema.json` holds.
#[cfg(feature = "schema")]
pub fn policy_schema_json() -> String {
    let mut settings = schemars::generate::SchemaSettings::draft07();
    settings.transforms.push(Box::new(no_null));
    let schema = settings
        .into_generator()
        .into_root_schema_for::<PolicyFile>();
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}

/// TOML has no null: an optional key is one left out, so `Option<T>`'s `anyOf [T,
/// null]` becomes `allOf [T]` (not a bare `$ref`: draft 7 ignores the description and
/// default beside one).
#[cfg(feature = "schema")]
fn no_null(schema: &mut schemars::Schema) {
    let null = serde_json::json!({"type": "null"});
    if let Some(obj) = schema.as_object_mut() {
        if let Some(serde_json::Value::Array(any)) = obj.get_mut("anyOf") {
            any.retain(|s| *s != null);
            if any.len() == 1 {
                let only = any.remove(0);
                obj.remove("anyOf");
                obj.insert("allOf".into(), serde_json::Value::Array(vec![only]));
            }
        }
    }
    schemars::transform::transform_subschemas(&mut no_null, schema);
}
