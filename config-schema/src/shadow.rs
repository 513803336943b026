//! "Can never match": is a rule shadowed by an earlier one that matches everything it
//! matches?
//!
//! Comparing every rule with every earlier one is quadratic: 16 000 rules made 128
//! million comparisons, seconds in every steered process's first socket call. Here the
//! earlier rules are indexed so that a rule is compared only with those that could
//! cover it:
//!
//! * an address rule `b` can be covered only by an address rule without `to` or by one
//!   whose `to` holds a prefix containing `b`'s first destination: one lookup per
//!   prefix length in use (at most 33 for IPv4, 129 for IPv6) finds them;
//! * a name rule only by a rule listing `b`'s first pattern itself or a `*.suffix` of
//!   it: one lookup per label.
//!
//! A comparison uses a summary of the earlier rule (its prefixes as a set, its port
//! ranges merged and sorted, its names as a set), so it costs in proportion to the size
//! of the later rule. The earliest covering rule is reported, as before.
//!
//! What the index cannot narrow — thousands of rules without `to` that differ only in
//! their ports, or sharing one prefix — is bounded instead: after
//! [`MAX_COMPARISONS`] comparisons the remaining rules are not checked, and the
//! caller says so in a warning (enforcement does not depend on this check: a rule
//! that can never match changes no decision).

use crate::policy::{PortRange, Protocol, Rule};
use ipnet::IpNet;
use std::collections::{HashMap, HashSet};

/// Comparisons between rules the check does at most, per list of rules.
pub(crate) const MAX_COMPARISONS: u64 = 1_000_000;

/// The earlier rules of one list, indexed.
#[derive(Default)]
pub(crate) struct Shadow {
    summaries: Vec<Summary>,
    /// Address rules without `to`.
    any_to: Vec<usize>,
    /// Address rules by each prefix of their `to`.
    by_net: HashMap<IpNet, Vec<usize>>,
    /// Prefix lengths present in `by_net`, IPv4 and IPv6.
    /// (indexed by length; empty until the first rule with `to` is added).
    lens4: Vec<bool>,
    lens6: Vec<bool>,
    /// Name rules by each of their patterns.
    by_name: HashMap<String, Vec<usize>>,
    comparisons: u64,
    /// Work done: comparisons plus index lookups (for the complexity tests).
    pub(crate) work: u64,
    /// The first rule left unchecked because the budget ran out.
    pub(crate) unchecked_from: Option<String>,
}

struct Summary {
    protocol: Protocol,
    to_any: bool,
    nets: HashSet<IpNet>,
    lens4: Vec<u8>,
    lens6: Vec<u8>,
    ports_any: bool,
    /// Merged, sorted, disjoint.
    ports: Vec<PortRange>,
    names: HashSet<String>,
}

impl Shadow {
    /// The index of the earliest rule added so far that matches everything `rule`
    /// matches (`None` also when the budget is spent; see `unchecked_from`). Then
    /// adds `rule`.
    pub(crate) fn check_and_add(&mut self, rule: &Rule) -> Option<usize> {
        let found = if self.unchecked_from.is_some() {
            None
        } else {
            self.find_cover(rule)
        };
        self.add(rule);
        found
    }

    fn find_cover(&mut self, b: &Rule) -> Option<usize> {
        let mut cands: Vec<usize> = Vec::new();
        if !b.names.is_empty() {
            for key in covering_patterns(&b.names[0]) {
                self.work += 1;
                if let Some(v) = self.by_name.get(&key) {
                    cands.extend_from_slice(v);
                }
            }
        } else {
            cands.extend_from_slice(&self.any_to);
            if let Some(first) = b.to.first() {
                let used: &[bool] = match first {
                    IpNet::V4(_) => &self.lens4,
                    IpNet::V6(_) => &self.lens6,
                };
                let max = first.prefix_len() as usize;
                for len in (0..=max).filter(|l| used.get(*l).copied().unwrap_or(false)) {
                    self.work += 1;
                    if let Some(v) = self.by_net.get(&truncated(first, len as u8)) {
                        cands.extend_from_slice(v);
                    }
                }
            }
        }
        cands.sort_unstable();
        cands.dedup();
        for i in cands {
            if self.comparisons >= MAX_COMPARISONS {
                self.unchecked_from = Some(b.label.clone());
                return None;
            }
            self.comparisons += 1;
            self.work += 1;
            if covers(&self.summaries[i], b) {
                return Some(i);
            }
        }
        None
    }

    fn add(&mut self, r: &Rule) {
        let i = self.summaries.len();
        let mut nets = HashSet::new();
        let (mut lens4, mut lens6) = (Vec::new(), Vec::new());
        if !r.to.is_empty() && self.lens4.is_empty() {
            self.lens4 = vec![false; 33];
            self.lens6 = vec![false; 129];
        }
        for n in &r.to {
            if nets.insert(*n) {
                self.by_net.entry(*n).or_default().push(i);
            }
            let len = n.prefix_len();
            match n {
                IpNet::V4(_) => {
                    self.lens4[len as usize] = true;
                    lens4.push(len);
                }
                IpNet::V6(_) => {
                    self.lens6[len as usize] = true;
                    lens6.push(len);
                }
            }
        }
        for l in [&mut lens4, &mut lens6] {
            l.sort_unstable();
            l.dedup();
        }
        let mut names = HashSet::new();
        for p in &r.names {
            if names.insert(p.clone()) {
                self.by_name.entry(p.clone()).or_default().push(i);
            }
        }
        if r.names.is_empty() && r.to.is_empty() {
            self.any_to.push(i);
        }
        self.summaries.push(Summary {
            protocol: r.protocol,
            to_any: r.to.is_empty(),
            nets,
            lens4,
            lens6,
            ports_any: r.ports.is_empty(),
            ports: merge_ranges(&r.ports),
            names,
        });
    }
}

/// Does the rule summarised by `a` match every flow that rule `b` matches?
fn covers(a: &Summary, b: &Rule) -> bool {
    match (a.names.is_empty(), b.names.is_empty()) {
        (false, false) => {
            return b.names.iter().all(|bp| {
                covering_patterns(bp)
                    .into_iter()
                    .any(|k| a.names.contains(&k))
            });
        }
        (true, true) => {}
        _ => return false,
    }
    let proto = a.protocol == Protocol::Any || a.protocol == b.protocol;
    let to = a.to_any || (!b.to.is_empty() && b.to.iter().all(|bn| net_covered(a, bn)));
    let ports = a.ports_any
        || (!b.ports.is_empty() && b.ports.iter().all(|br| range_covered(&a.ports, br)));
    proto && to && ports
}

/// Is `bn` inside one of `a`'s prefixes? (Each is stored truncated, so `bn` is inside
/// one of length `l` exactly when `bn` truncated to `l` is one of them.)
fn net_covered(a: &Summary, bn: &IpNet) -> bool {
    let lens = match bn {
        IpNet::V4(_) => &a.lens4,
        IpNet::V6(_) => &a.lens6,
    };
    lens.iter()
        .take_while(|l| **l <= bn.prefix_len())
        .any(|l| a.nets.contains(&truncated(bn, *l)))
}

fn truncated(n: &IpNet, len: u8) -> IpNet {
    IpNet::new(n.addr(), len)
        .expect("len is at most the prefix length of n")
        .trunc()
}

/// Is `r` inside one of `merged` (sorted, disjoint)?
fn range_covered(merged: &[PortRange], r: &PortRange) -> bool {
    let i = merged.partition_point(|m| m.lo <= r.lo);
    i > 0 && merged[i - 1].hi >= r.hi
}

/// Every pattern that matches all the names `p` matches: `p` itself and `*.S` for
/// each shorter label suffix `S` of its body (`a.b.c` → `a.b.c`, `*.b.c`, `*.c`;
/// `*.b.c` → `*.b.c`, `*.c`).
fn covering_patterns(p: &str) -> Vec<String> {
    let mut out = vec![p.to_owned()];
    let body = p.strip_prefix("*.").unwrap_or(p);
    let mut rest = body;
    while let Some(i) = rest.find('.') {
        rest = &rest[i + 1..];
        if !rest.is_empty() {
            out.push(format!("*.{rest}"));
        }
    }
    out
}

pub(crate) fn merge_ranges(ranges: &[PortRange]) -> Vec<PortRange> {
    let mut v = ranges.to_vec();
    v.sort_by_key(|r| r.lo);
    let mut out: Vec<PortRange> = Vec::new();
    for r in v {
        match out.last_mut() {
            Some(last) if r.lo as u32 <= last.hi as u32 + 1 => last.hi = last.hi.max(r.hi),
            _ => out.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Target, name_pattern_matches};

    /// The check as it was (every earlier rule compared), the reference the index
    /// must agree with.
    fn covers_reference(a: &Rule, b: &Rule) -> bool {
        match (a.names.is_empty(), b.names.is_empty()) {
            (false, false) => {
                return b
                    .names
                    .iter()
                    .all(|bp| a.names.iter().any(|ap| pattern_covers(ap, bp)));
            }
            (true, true) => {}
            _ => return false,
        }
        let proto = a.protocol == Protocol::Any || a.protocol == b.protocol;
        let to = a.to.is_empty()
            || (!b.to.is_empty() && b.to.iter().all(|bn| a.to.iter().any(|an| an.contains(bn))));
        let ports = a.ports.is_empty()
            || (!b.ports.is_empty() && {
                let merged = merge_ranges(&a.ports);
                b.ports
                    .iter()
                    .all(|br| merged.iter().any(|m| m.lo <= br.lo && br.hi <= m.hi))
            });
        proto && to && ports
    }

    fn pattern_covers(a: &str, b: &str) -> bool {
        match (a.strip_prefix("*."), b.strip_prefix("*.")) {
            (Some(sa), Some(sb)) => sa == sb || sb.ends_with(&format!(".{sa}")),
            (Some(_), None) => name_pattern_matches(a, b),
            (None, Some(_)) => false,
            (None, None) => a == b,
        }
    }

    /// A small deterministic generator (no dependency, same cases every run).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) as usize) % n
        }
        fn some<T: Clone>(&mut self, pool: &[T], max: usize) -> Vec<T> {
            let k = self.next(max + 1);
            (0..k)
                .map(|_| pool[self.next(pool.len())].clone())
                .collect()
        }
    }

    fn random_rule(g: &mut Lcg, i: usize) -> Rule {
        let nets: Vec<IpNet> = [
            "0.0.0.0/0",
            "10.0.0.0/8",
            "10.1.0.0/16",
            "10.1.2.0/24",
            "10.1.2.3/32",
            "10.2.0.0/16",
            "192.0.2.0/24",
            "::/0",
            "2001:db8::/32",
            "2001:db8:1::/48",
            "2001:db8:1::5/128",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let ports = [
            (1, 100),
            (50, 150),
            (101, 200),
            (443, 443),
            (1, 65535),
            (53, 53),
        ]
        .map(|(lo, hi)| PortRange { lo, hi });
        let names = [
            "*.corp.example",
            "a.corp.example",
            "*.b.corp.example",
            "x.b.corp.example",
            "intranet",
            "*.example",
            "corp.example",
        ]
        .map(String::from);
        let name_rule = g.next(3) == 0;
        Rule {
            label: format!("rule {}", i + 1),
            line: i as u32,
            to: if name_rule {
                Vec::new()
            } else {
                g.some(&nets, 3)
            },
            ports: if name_rule {
                Vec::new()
            } else {
                g.some(&ports, 2)
            },
            protocol: if name_rule {
                Protocol::Any
            } else {
                [Protocol::Any, Protocol::Tcp, Protocol::Udp][g.next(3)]
            },
            names: if name_rule {
                let mut v = g.some(&names, 2);
                if v.is_empty() {
                    v.push(names[g.next(names.len())].clone());
                }
                v
            } else {
                Vec::new()
            },
            target: Target::Direct,
            options: Default::default(),
        }
    }

    #[test]
    fn the_index_finds_the_same_earliest_covering_rule_as_comparing_all() {
        let mut g = Lcg(9);
        let mut found = 0;
        for _ in 0..400 {
            let n = 2 + g.next(12);
            let rules: Vec<Rule> = (0..n).map(|i| random_rule(&mut g, i)).collect();
            let mut shadow = Shadow::default();
            for (j, b) in rules.iter().enumerate() {
                let want = rules[..j].iter().position(|a| covers_reference(a, b));
                let got = shadow.check_and_add(b);
                assert_eq!(got, want, "rule {j} of {rules:#?}");
                found += usize::from(got.is_some());
            }
        }
        // The cases exercise both answers.
        assert!(found > 200, "{found}");
    }

    #[test]
    fn covering_patterns_are_the_name_and_its_wildcard_suffixes() {
        assert_eq!(
            covering_patterns("a.b.c"),
            ["a.b.c", "*.b.c", "*.c"].map(String::from)
        );
        assert_eq!(
            covering_patterns("*.b.c"),
            ["*.b.c", "*.c"].map(String::from)
        );
        assert_eq!(
            covering_patterns("intranet"),
            ["intranet"].map(String::from)
        );
    }
}
