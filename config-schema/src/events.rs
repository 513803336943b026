//! What the events file's writers (the shim, the supervisor, mifrun's `--guard`)
//! share: the schema version of its lines, the UTC civil time their `time` field is
//! written in, and what a decision line says about a decision ([`fields`]).

use crate::{BlockReason, Decision, DirectReason, ErrnoKind, Proto, Rule, Why};

/// `"v"` of every line.
pub const VERSION: u32 = 1;

/// Seconds since the epoch to a UTC civil date and time: (year, month, day, hour,
/// minute, second) (Howard Hinnant's days-from-civil, inverted). Allocation-free: the
/// shim calls it in hooks.
pub fn civil_utc(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u32;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem / 60 % 60, rem % 60)
}

/// `protocol` of a decision line.
pub fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
        Proto::Other => "other",
    }
}

/// The errno name of a block.
pub fn errno_name(k: ErrnoKind) -> &'static str {
    match k {
        ErrnoKind::NetUnreach => "ENETUNREACH",
        ErrnoKind::Access => "EACCES",
    }
}

/// What a decision line says about a decision, in the order the fields are written:
/// `decision`, `interface` (and `ifindex`), `reason`, `rule` (and `rule_line`),
/// `skipped`, `multicast`, and a block's `errno`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fields<'a> {
    /// `bind`, `direct` or `block`.
    pub decision: &'static str,
    /// The interface and its index (`bind` only).
    pub interface: Option<(&'a str, u32)>,
    pub reason: &'static str,
    pub rule: Option<&'a Rule>,
    /// Earlier interfaces of the list that were unusable (written when not 0).
    pub skipped: u32,
    /// A multicast destination (written when set).
    pub multicast: bool,
    /// A block's errno (`EACCES`, `ENETUNREACH`); nothing may follow it on the line.
    pub errno: Option<&'static str>,
}

/// The fields of decision `d` (README, "Events file").
pub fn fields<'a>(d: &'a Decision<'a>) -> Fields<'a> {
    let none = Fields {
        decision: "direct",
        interface: None,
        reason: "",
        rule: None,
        skipped: 0,
        multicast: false,
        errno: None,
    };
    match d {
        Decision::Bind(b) => {
            let (reason, rule) = match b.why {
                Why::Default => ("default", None),
                Why::Rule(x) => ("rule", Some(x)),
            };
            Fields {
                decision: "bind",
                interface: Some((b.ifname.as_str(), b.index)),
                reason,
                rule,
                skipped: b.skipped,
                multicast: b.multicast,
                ..none
            }
        }
        Decision::Direct(why) => {
            let (reason, rule) = match why {
                DirectReason::Loopback => ("loopback", None),
                DirectReason::OwnAddress => ("own-address", None),
                DirectReason::Unspecified => ("unspecified", None),
                DirectReason::ScopedLinkLocal => ("scoped-link-local", None),
                DirectReason::NoVia => ("no-via", None),
                DirectReason::Rule(x) => ("rule", Some(*x)),
                DirectReason::Unavailable => ("unavailable", None),
                DirectReason::ListenAny => ("listen-any", None),
            };
            Fields {
                reason,
                rule,
                ..none
            }
        }
        Decision::Block(b) => {
            let (reason, rule) = match b.reason {
                BlockReason::Rule(x) => ("rule", Some(x)),
                BlockReason::Unavailable(_) => ("unavailable", None),
            };
            Fields {
                decision: "block",
                reason,
                rule,
                errno: Some(errno_name(b.errno)),
                ..none
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_fields_as_the_events_file_writes_them() {
        use crate::{AddrFamily, Bind, Block, IfName};
        let policy = crate::parse_policy(
            "via = [\"wlan0\"]\n\n[[rules]]\nto = [\"192.0.2.0/24\"]\nvia = [\"wlan0\"]\n",
            "p.toml",
        )
        .unwrap()
        .policy;
        let rule = &policy.base.rules[0];
        let bind = Decision::Bind(Bind {
            ifname: IfName::new("wlan0").unwrap(),
            index: 3,
            family: AddrFamily::V4,
            multicast: false,
            skipped: 1,
            why: Why::Rule(rule),
            options: false,
        });
        let f = fields(&bind);
        assert_eq!(
            (f.decision, f.interface, f.reason, f.skipped, f.errno),
            ("bind", Some(("wlan0", 3)), "rule", 1, None)
        );
        assert_eq!(
            f.rule.map(|r| (r.label.as_str(), r.line)),
            Some(("rule 1", 3))
        );
        let f = fields(&Decision::Direct(DirectReason::NoVia));
        assert_eq!(
            (f.decision, f.interface, f.reason),
            ("direct", None, "no-via")
        );
        let names = [IfName::new("wwan9").unwrap()];
        let block = Decision::Block(Block {
            errno: ErrnoKind::NetUnreach,
            reason: BlockReason::Unavailable(&names),
            family: AddrFamily::V6,
        });
        let f = fields(&block);
        assert_eq!(
            (f.decision, f.reason, f.rule.is_none(), f.errno),
            ("block", "unavailable", true, Some("ENETUNREACH"))
        );
        assert_eq!(proto_name(Proto::Udp), "udp");
    }

    #[test]
    fn civil_dates_across_leap_years_and_2038() {
        assert_eq!(civil_utc(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil_utc(951_827_696), (2000, 2, 29, 12, 34, 56));
        assert_eq!(civil_utc(2_147_483_648), (2038, 1, 19, 3, 14, 8));
        assert_eq!(civil_utc(1_796_169_599), (2026, 12, 1, 23, 59, 59));
        assert_eq!(civil_utc(-1), (1969, 12, 31, 23, 59, 59));
    }
}
