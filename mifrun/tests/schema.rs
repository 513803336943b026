//! The policy's JSON Schema (`mifrun schema`, config-schema/policy.schema.json): that
//! the committed file is what the types generate, that it accepts every policy the
//! parser accepts (examples/policy.toml, the README's, and every policy written in the
//! test suite's sources), that it refuses what the parser refuses for its shape, and
//! that its properties are exactly the keys the parser knows.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

const COMMITTED: &str = "config-schema/policy.schema.json";

fn schema_text() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mifrun"))
        .arg("schema")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(&schema_text()).unwrap();
    jsonschema::draft7::new(&schema).expect("the schema is a valid draft-7 schema")
}

fn to_json(toml_src: &str) -> Value {
    toml::from_str::<Value>(toml_src).expect("TOML")
}

/// `MIFSHIM_BLESS=1 cargo test -p mifrun --test schema` rewrites the file.
#[test]
fn committed_schema_matches_the_policy_types() {
    let now = schema_text();
    let path = root().join(COMMITTED);
    if std::env::var_os("MIFSHIM_BLESS").is_some() {
        std::fs::write(&path, &now).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == now,
        "{COMMITTED} is not what the policy types generate; regenerate it with\n  \
         cargo run -p mifrun -- schema > {COMMITTED}\n(or MIFSHIM_BLESS=1 cargo test -p mifrun --test schema)"
    );
    // The library function and the command agree, and it names itself.
    assert_eq!(now, config_schema::document::policy_schema_json());
    let v: Value = serde_json::from_str(&now).unwrap();
    assert_eq!(v["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(v["title"], "mifshim policy");
    assert_eq!(v["additionalProperties"], false);
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

fn sorted(k: &[&str]) -> Vec<String> {
    let mut k: Vec<String> = k.iter().map(|s| s.to_string()).collect();
    k.sort();
    k
}

#[test]
fn schema_properties_are_the_keys_the_parser_knows() {
    use config_schema::policy_keys as pk;
    let v: Value = serde_json::from_str(&schema_text()).unwrap();
    let d = &v["definitions"];
    assert_eq!(keys(&v), sorted(pk::TOP));
    assert_eq!(keys(&d["ProgramEntry"]), sorted(pk::PROGRAM));
    assert_eq!(keys(&d["RuleEntry"]), sorted(pk::RULE));
    assert_eq!(keys(&d["InterfaceEntry"]), sorted(pk::INTERFACE));
    assert_eq!(keys(&d["DnsSettings"]), sorted(pk::DNS));
    for t in ["ProgramEntry", "RuleEntry", "InterfaceEntry", "DnsSettings"] {
        assert_eq!(d[t]["additionalProperties"], false, "{t}");
    }
    // serde's renames and defaults, as the parser reads them.
    assert_eq!(v["properties"]["on_unavailable"]["default"], "block");
    assert_eq!(v["properties"]["listen"]["default"], "interface");
    assert_eq!(v["properties"]["foreign_bind"]["default"], "rewrite");
    assert_eq!(
        v["properties"]["dns"]["default"],
        serde_json::json!({"steer": true, "redirect": false, "timeout_ms": 2000, "attempts": 2})
    );
    let consts: Vec<&str> = d["Listen"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["const"].as_str().unwrap())
        .collect();
    assert_eq!(consts, ["interface", "device", "any"]);
    // Doc comments became descriptions.
    assert!(
        d["Listen"]["oneOf"][2]["description"]
            .as_str()
            .unwrap()
            .contains("every interface")
    );
    assert!(
        d["DnsSettings"]["properties"]["timeout_ms"]["description"]
            .as_str()
            .unwrap()
            .contains("milliseconds")
    );
    assert_eq!(d["DnsSettings"]["properties"]["timeout_ms"]["minimum"], 10);
    assert_eq!(d["DnsSettings"]["properties"]["attempts"]["maximum"], 10);
}

/// Every string literal of a Rust source file (plain and raw), unescaped.
fn rust_strings(src: &str) -> Vec<String> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'\'' => {
                // A char literal ('"', '\'', '\n'), or a lifetime.
                if b.get(i + 1) == Some(&b'\\') {
                    i += 2;
                    while i < b.len() && b[i] != b'\'' {
                        i += 1;
                    }
                    i += 1;
                } else if b.get(i + 2) == Some(&b'\'') {
                    i += 3;
                } else {
                    i += 1;
                }
            }
            b'r' if (b.get(i + 1) == Some(&b'#') || b.get(i + 1) == Some(&b'"'))
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
            {
                let mut j = i + 1;
                let mut hashes = 0;
                while b.get(j) == Some(&b'#') {
                    hashes += 1;
                    j += 1;
                }
                if b.get(j) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                let close = format!("\"{}", "#".repeat(hashes));
                let start = j + 1;
                let end = src[start..].find(&close).map_or(b.len(), |e| start + e);
                out.push(src[start..end].to_owned());
                i = end + close.len();
            }
            b'"' => {
                let mut s = String::new();
                let mut chars = src[i + 1..].char_indices();
                let mut end = b.len();
                while let Some((k, c)) = chars.next() {
                    match c {
                        '"' => {
                            end = i + 1 + k + 1;
                            break;
                        }
                        '\\' => match chars.next().map(|(_, c)| c) {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some('r') => s.push('\r'),
                            Some('0') => s.push('\0'),
                            Some('\n') => {
                                // A line continuation: the next line's indentation goes.
                                let rest = chars.as_str();
                                let skip = rest.len() - rest.trim_start().len();
                                for _ in 0..rest[..skip].chars().count() {
                                    chars.next();
                                }
                            }
                            Some(c) => s.push(c),
                            None => {}
                        },
                        c => s.push(c),
                    }
                }
                out.push(s);
                i = end;
            }
            _ => i += 1,
        }
    }
    out
}

/// The policies of the test suite: examples/policy.toml, the README's ```toml
/// blocks, and every string literal in the tests' sources that is a TOML document
/// with a policy key at its top level.
fn corpus() -> Vec<(String, String)> {
    let r = root();
    let mut out = vec![(
        "examples/policy.toml".to_owned(),
        std::fs::read_to_string(r.join("examples/policy.toml")).unwrap(),
    )];
    let readme = std::fs::read_to_string(r.join("README.md")).unwrap();
    for (n, block) in readme.split("```toml\n").skip(1).enumerate() {
        let body = block.split("```").next().unwrap();
        out.push((format!("README.md toml block {}", n + 1), body.to_owned()));
    }
    let mut files: Vec<PathBuf> = vec![
        r.join("config-schema/src/parse/tests.rs"),
        r.join("config-schema/src/decide/tests.rs"),
        r.join("mifrun/tests/cli.rs"),
    ];
    for dir in ["integration-tests/tests", "integration-tests/src"] {
        let mut stack = vec![r.join(dir)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    files.push(p);
                }
            }
        }
    }
    files.sort();
    let top = config_schema::policy_keys::TOP;
    for f in files {
        let src = std::fs::read_to_string(&f).unwrap();
        let name = f.strip_prefix(&r).unwrap_or(&f).display().to_string();
        for s in rust_strings(&src) {
            let Ok(t) = toml::from_str::<toml::Table>(&s) else {
                continue;
            };
            if t.keys().any(|k| top.contains(&k.as_str()) || k == "lisen") {
                out.push((name.clone(), s));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Every policy the parser accepts, the schema accepts; every policy the parser
/// refuses for an unknown key, the schema refuses.
#[test]
fn schema_accepts_the_example_and_every_policy_of_the_tests() {
    let v = validator();
    let mut accepted = 0;
    let mut refused_unknown = 0;
    let mut files = std::collections::BTreeSet::new();
    for (origin, src) in corpus() {
        let json = to_json(&src);
        let errors: Vec<String> = v
            .iter_errors(&json)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        match config_schema::parse_policy(&src, &origin) {
            Ok(_) => {
                assert!(
                    errors.is_empty(),
                    "{origin}: the parser accepts this policy, the schema does not:\n{src}\n{errors:#?}"
                );
                accepted += 1;
                files.insert(origin.clone());
            }
            Err(d) if d.iter().any(|d| d.message.contains("unknown key")) => {
                assert!(
                    !errors.is_empty(),
                    "{origin}: the parser refuses an unknown key, the schema accepts:\n{src}"
                );
                refused_unknown += 1;
            }
            Err(_) => {}
        }
    }
    eprintln!(
        "{accepted} accepted policies from {files:?}; {refused_unknown} with unknown keys refused"
    );
    assert!(files.contains("examples/policy.toml"));
    assert!(files.iter().any(|f| f.starts_with("README.md")));
    assert!(files.iter().any(|f| f.starts_with("integration-tests/")));
    assert!(files.iter().any(|f| f.starts_with("config-schema/")));
    assert!(
        accepted >= 50,
        "only {accepted} policies found in the tests"
    );
    assert!(refused_unknown >= 2, "{refused_unknown}");
}

/// Policies of the wrong shape, each with where the schema says it is wrong.
#[test]
fn schema_refuses_invalid_policies_where_they_are_wrong() {
    let v = validator();
    let cases: &[(&str, &str)] = &[
        ("lisen = \"any\"\n", ""),
        ("listen = \"everywhere\"\n", "/listen"),
        ("via = []\n", "/via"),
        ("via = [\"wlan0\", \"wlan0\"]\n", "/via"),
        ("via = [\"a-name-longer-than-15\"]\n", "/via"),
        ("via = [\"eth/0\"]\n", "/via"),
        ("via = 3\n", "/via"),
        ("[[rules]]\nto = [\"198.51.100.0/24\"]\n", "/rules/0"),
        (
            "[[rules]]\nto = [\"198.51.100.0/24\"]\nvia = [\"wlan0\"]\naction = \"block\"\n",
            "/rules/0",
        ),
        (
            "[[rules]]\nnames = [\"a.example\"]\nto = [\"198.51.100.1\"]\naction = \"block\"\n",
            "/rules/0",
        ),
        (
            "[[rules]]\nto = [\"198.51.100.1\"]\naction = \"block\"\nmark = 1\n",
            "/rules/0",
        ),
        ("[[rules]]\naction = \"allow\"\n", "/rules/0/action"),
        (
            "[[rules]]\nports = [0]\naction = \"block\"\n",
            "/rules/0/ports",
        ),
        (
            "[[rules]]\nports = [70000]\naction = \"block\"\n",
            "/rules/0/ports",
        ),
        (
            "[[rules]]\nprotocol = \"sctp\"\naction = \"block\"\n",
            "/rules/0/protocol",
        ),
        (
            "[[rules]]\nto = [\"ten.0.0.0/8\"]\naction = \"block\"\n",
            "/rules/0/to",
        ),
        ("[dns]\ntimeout_ms = 5\n", "/dns/timeout_ms"),
        ("[dns]\nattempts = 11\n", "/dns/attempts"),
        ("[dns]\nsteer = \"yes\"\n", "/dns/steer"),
        ("[dns]\nstear = true\n", "/dns"),
        ("dscp = 64\n", "/dscp"),
        ("dscp = \"fast\"\n", "/dscp"),
        ("mark = -1\n", "/mark"),
        ("[programs.\"bin/curl\"]\nvia = [\"wlan0\"]\n", "/programs"),
        ("[programs.curl]\nvai = [\"wlan0\"]\n", "/programs/curl"),
        (
            "[interfaces.\"..\"]\ndns = [\"198.51.100.53\"]\n",
            "/interfaces",
        ),
        ("[interfaces.wlan0]\ndns = []\n", "/interfaces/wlan0/dns"),
        (
            "[interfaces.wlan0]\nsearch = [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\", \"g\"]\n",
            "/interfaces/wlan0/search",
        ),
        (
            "source = [\"198.51.100.1\", \"2001:db8::1\", \"203.0.113.1\"]\n",
            "/source",
        ),
    ];
    for (src, at) in cases {
        let json = to_json(src);
        let errors: Vec<(String, String)> = v
            .iter_errors(&json)
            .map(|e| (e.instance_path().to_string(), e.to_string()))
            .collect();
        assert!(!errors.is_empty(), "the schema accepts:\n{src}");
        assert!(
            errors.iter().any(|(p, _)| p == at),
            "{src}: expected an error at {at:?}, got {errors:?}"
        );
        // The parser refuses each of them too.
        assert!(
            config_schema::parse_policy(src, "p.toml").is_err(),
            "the parser accepts:\n{src}"
        );
    }
    // And a few valid spellings the parser accepts in their other forms.
    for src in [
        "via = \"wlan0\"\n",
        "dscp = \"EF\"\nvia = \"wlan0\"\n",
        "dscp = 46\nmark = \"0x10\"\nvia = \"wlan0\"\n",
        "[[rules]]\nports = 443\nprotocol = \"tcp\"\nvia = \"wwan0\"\n",
        "[[rules]]\nports = [\"8000-8100\", 53]\naction = \"direct\"\n",
        "[interfaces.wlan0]\nsearch = []\ndns = \"[2001:db8::53]:5353\"\nvia = 1\n",
    ] {
        let json = to_json(src);
        let parser_ok = config_schema::parse_policy(src, "p.toml").is_ok();
        assert_eq!(
            v.is_valid(&json),
            parser_ok,
            "schema and parser disagree on:\n{src}"
        );
    }
}
