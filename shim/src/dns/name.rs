//! Domain names as glibc reads them, as pure functions: `ns_name_pton` (presentation
//! text to wire form: `\DDD` and `\X` escapes, 63-byte labels, 255-byte names, no empty
//! label) and `res_hnok` (what `getaddrinfo` and `gethostbyname` accept as a host name
//! before asking anyone). A name glibc refuses by syntax fails at once with
//! `EAI_NONAME`, without a query; a name it accepts is asked in the wire form glibc
//! would send (`\115vc` is `svc`).

/// The longest wire-form name (`NS_MAXCDNAME`).
pub(crate) const MAX_WIRE: usize = 255;
/// The longest label (`NS_MAXLABEL`).
pub(crate) const MAX_LABEL: usize = 63;

/// A presentation-form name in wire form (labels, each with its length byte, then the
/// root's zero byte), and whether the text was fully qualified (a trailing dot).
/// `None` where glibc's `ns_name_pton` fails.
pub(crate) fn pton(text: &[u8]) -> Option<(Vec<u8>, bool)> {
    let mut wire = Vec::with_capacity(text.len() + 2);
    let mut label = 0; // where the current label's length byte goes
    wire.push(0);
    let mut i = 0;
    let close = |wire: &mut Vec<u8>, label: usize| -> Option<usize> {
        let len = wire.len() - label - 1;
        if len > MAX_LABEL {
            return None;
        }
        wire[label] = len as u8;
        Some(len)
    };
    while i < text.len() {
        let c = text[i];
        i += 1;
        let byte = match c {
            b'\\' => {
                let e = *text.get(i)?; // a trailing backslash is an error
                i += 1;
                if e.is_ascii_digit() {
                    let d1 = *text.get(i).filter(|d| d.is_ascii_digit())?;
                    let d2 = *text.get(i + 1).filter(|d| d.is_ascii_digit())?;
                    i += 2;
                    let n = (e - b'0') as u32 * 100 + (d1 - b'0') as u32 * 10 + (d2 - b'0') as u32;
                    u8::try_from(n).ok()?
                } else {
                    e
                }
            }
            b'.' => {
                let len = close(&mut wire, label)?;
                if i == text.len() {
                    // Fully qualified ("." alone is the root).
                    if len != 0 {
                        wire.push(0);
                    }
                    return (wire.len() <= MAX_WIRE).then_some((wire, true));
                }
                if len == 0 || text[i] == b'.' {
                    return None; // an empty label
                }
                label = wire.len();
                wire.push(0);
                continue;
            }
            other => other,
        };
        wire.push(byte);
    }
    if close(&mut wire, label)? != 0 {
        wire.push(0);
    }
    (wire.len() <= MAX_WIRE).then_some((wire, false))
}

/// The labels of a wire-form name (no compression pointers: our own encoding).
pub(crate) fn labels(wire: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let len = *wire.get(at)? as usize;
        if len == 0 {
            return None;
        }
        let l = wire.get(at + 1..at + 1 + len)?;
        at += 1 + len;
        Some(l)
    })
}

/// glibc's `res_hnok`: printable ASCII without blanks, a valid presentation name,
/// every label of letters, digits, `-` and `_`, the first not starting with `-`.
pub(crate) fn hnok(text: &[u8]) -> bool {
    if !text.iter().all(|c| (b'!'..=b'~').contains(c)) {
        return false;
    }
    let Some((wire, _)) = pton(text) else {
        return false;
    };
    if wire.get(1) == Some(&b'-') {
        return false;
    }
    labels(&wire).all(|l| {
        l.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
    })
}

/// A host name as `getaddrinfo` asks for it: its labels joined by dots (escapes
/// resolved; only letters, digits, `-` and `_` remain) and whether it was absolute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HostName {
    pub text: String,
    pub absolute: bool,
}

/// The host name `text` stands for, or `None` when glibc refuses it by syntax
/// (`EAI_NONAME` without a query).
pub(crate) fn host_name(text: &[u8]) -> Option<HostName> {
    if !hnok(text) {
        return None;
    }
    let (wire, absolute) = pton(text)?;
    let parts: Vec<&str> = labels(&wire)
        .map(|l| std::str::from_utf8(l).unwrap_or(""))
        .collect();
    Some(HostName {
        text: parts.join("."),
        absolute,
    })
}

/// Test cases shared with the check against the real C library
/// (`entry::names` tests): the text, `ns_name_pton`'s wire form as dotted
/// labels (`None`: refused) with the fully-qualified flag, and `res_hnok`'s verdict.
#[cfg(test)]
pub(crate) type Case = (&'static str, Option<(&'static str, bool)>, bool);

#[cfg(test)]
pub(crate) const CASES: &[Case] = &[
    ("svc.test", Some(("svc.test", false)), true),
    ("svc.test.", Some(("svc.test", true)), true),
    ("svc..test", None, false),
    (".svc.test", None, false),
    ("svc.test..", None, false),
    ("..", None, false),
    (".", Some(("", true)), true),
    ("", Some(("", false)), true),
    ("\\115vc.test", Some(("svc.test", false)), true),
    ("ex\\ample.test", Some(("example.test", false)), true),
    ("\\046.test", Some(("..test", false)), false),
    ("svc\\.x.test", Some(("svc.x.test", false)), false),
    ("svc\\\\.test", Some(("svc\\.test", false)), false),
    ("a\\000b.test", Some(("a\0b.test", false)), false),
    ("\\256.test", None, false),
    ("\\1x", None, false),
    ("a\\", None, false),
    ("0.1.1.~1", Some(("0.1.1.~1", false)), false),
    ("1+.1.1.1", Some(("1+.1.1.1", false)), false),
    ("::1q", Some(("::1q", false)), false),
    ("::1::2", Some(("::1::2", false)), false),
    ("a_b.test", Some(("a_b.test", false)), true),
    ("x-.test", Some(("x-.test", false)), true),
    ("-x.test", Some(("-x.test", false)), false),
    ("x.-y.test", Some(("x.-y.test", false)), true),
    ("x*.test", Some(("x*.test", false)), false),
    ("a b.test", Some(("a b.test", false)), false),
    ("x/y.test", Some(("x/y.test", false)), false),
    ("1ab.cafe", Some(("1ab.cafe", false)), true),
    ("caf\u{e9}.test", Some(("caf\u{e9}.test", false)), false),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// `wire` as dotted labels (each label's bytes as is), for comparing with CASES.
    pub(crate) fn dotted(wire: &[u8]) -> String {
        labels(wire)
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect::<Vec<_>>()
            .join(".")
    }

    #[test]
    fn pton_and_hnok_table() {
        for (text, wire, ok) in CASES {
            let got = pton(text.as_bytes()).map(|(w, fq)| (dotted(&w), fq));
            let want = wire.map(|(d, fq)| (d.to_string(), fq));
            assert_eq!(got, want, "ns_name_pton({text:?})");
            assert_eq!(hnok(text.as_bytes()), *ok, "res_hnok({text:?})");
        }
    }

    #[test]
    fn label_and_name_limits() {
        let l63 = "a".repeat(63);
        let l64 = "a".repeat(64);
        assert!(hnok(format!("{l63}.test").as_bytes()));
        assert!(pton(format!("{l64}.test").as_bytes()).is_none());
        assert!(pton(format!("{l63}\\.").as_bytes()).is_none());
        // 3 x 63 + 61 bytes of labels + 4 length bytes + the root byte = 255.
        let max = format!("{l63}.{l63}.{l63}.{}", "a".repeat(61));
        assert_eq!(pton(max.as_bytes()).map(|w| w.0.len()), Some(255));
        assert_eq!(pton(format!("{max}.").as_bytes()).map(|w| w.1), Some(true));
        assert!(pton(format!("{max}a").as_bytes()).is_none());
        assert!(!hnok(format!("{}test", "abc.".repeat(64)).as_bytes()));
    }

    #[test]
    fn host_names_are_unescaped() {
        assert_eq!(
            host_name(b"\\115vc.Test."),
            Some(HostName {
                text: "svc.Test".into(),
                absolute: true
            })
        );
        assert_eq!(host_name(b"svc..test"), None);
        assert_eq!(host_name(b"who.mif.test..").map(|h| h.absolute), None);
    }
}
