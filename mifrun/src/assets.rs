//! What mifrun generates about itself: the policy's JSON Schema (`mifrun schema`),
//! shell completions (`mifrun completions SHELL`, clap_complete) and the manual pages
//! (`mifrun manpages DIR`, for scripts/install.sh and scripts/deb.sh): mifrun(1) and a
//! page per command from the clap definition (clap_mangen), and mifshim-policy(5)
//! from the schema's descriptions (the policy types' doc comments) with the prose a
//! format page needs around them.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use clap::CommandFactory;
use serde_json::Value;

use crate::Fail;
use crate::cli::Cli;

/// The policy's JSON Schema, as committed in config-schema/policy.schema.json.
pub fn schema() -> Result<u8, Fail> {
    print!("{}", config_schema::document::policy_schema_json());
    Ok(0)
}

pub fn completions(shell: &str) -> Result<u8, Fail> {
    let shell = match shell {
        "bash" => clap_complete::Shell::Bash,
        "zsh" => clap_complete::Shell::Zsh,
        _ => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut completion_command(), "mifrun", &mut out);
    if shell == clap_complete::Shell::Fish {
        // clap_complete's fish script completes options only, not positional
        // values: the one positional with a fixed set of values is added here.
        out.extend_from_slice(
            b"complete -c mifrun -n \"__fish_mifrun_using_subcommand completions\" -f -a \"bash zsh fish\"\n",
        );
    }
    std::io::stdout()
        .write_all(&out)
        .map_err(|e| crate::fail(format!("cannot write the completions: {e}"), None))?;
    Ok(0)
}

/// The clap command, built (so that subcommands know their display names), without
/// the `help` subcommand clap would add.
fn command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// The command for completion scripts: mifrun's arguments and its visible commands.
/// clap_complete offers hidden subcommands too (`manpages`, `__resolve`), and clap
/// cannot remove a subcommand, so the command is rebuilt without them.
fn completion_command() -> clap::Command {
    let full = Cli::command();
    let mut cmd = clap::Command::new("mifrun")
        .version(env!("CARGO_PKG_VERSION"))
        .about(full.get_about().cloned().unwrap_or_default())
        .args_conflicts_with_subcommands(true)
        .subcommand_negates_reqs(true)
        .disable_help_subcommand(true)
        .args(full.get_arguments().cloned())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    cmd.build();
    cmd
}

pub fn manpages(dir: &Path) -> Result<u8, Fail> {
    let io = |what: &Path, e: std::io::Error| {
        crate::fail(format!("cannot write {}: {e}", what.display()), None)
    };
    let (man1, man5) = (dir.join("man1"), dir.join("man5"));
    for d in [&man1, &man5] {
        std::fs::create_dir_all(d).map_err(|e| io(d, e))?;
    }
    for (name, text) in pages() {
        let d = if name.ends_with(".5") { &man5 } else { &man1 };
        let path = d.join(&name);
        std::fs::write(&path, text).map_err(|e| io(&path, e))?;
        println!("{}", path.display());
    }
    Ok(0)
}

/// Every page: (file name, roff source).
pub fn pages() -> Vec<(String, String)> {
    let cmd = command();
    let version = cmd.get_version().unwrap_or_default().to_owned();
    let source = format!("mifshim {version}");
    let subs: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let mut out = Vec::new();
    let mut see_also: Vec<String> = subs
        .iter()
        .map(|s| format!("mifrun-{}(1)", s.get_name()))
        .collect();
    see_also.push("mifshim-policy(5)".into());
    out.push((
        "mifrun.1".into(),
        command_page(&cmd, "mifrun", &source, &see_also),
    ));
    for s in &subs {
        let name = format!("mifrun-{}", s.get_name());
        let also = vec!["mifrun(1)".to_owned(), "mifshim-policy(5)".to_owned()];
        out.push((format!("{name}.1"), command_page(s, &name, &source, &also)));
    }
    out.push(("mifshim-policy.5".into(), policy_page(&source)));
    out
}

/// A command's page: clap_mangen's title, name, synopsis, description, options and
/// command list, then its `after_long_help` as sections of their own (a line such
/// as `Exit status:` starts one) and SEE ALSO.
fn command_page(cmd: &clap::Command, name: &str, source: &str, see_also: &[String]) -> String {
    let man = clap_mangen::Man::new(cmd.clone())
        .title(name.to_ascii_uppercase())
        .section("1")
        .source(source.to_owned())
        .manual("mifshim manual");
    let mut buf: Vec<u8> = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = man.render_title(&mut buf);
    let _ = man.render_name_section(&mut buf);
    let _ = man.render_synopsis_section(&mut buf);
    let _ = man.render_description_section(&mut buf);
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        let _ = man.render_options_section(&mut buf);
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        let _ = man.render_subcommands_section(&mut buf);
    }
    let mut page = String::from_utf8_lossy(&buf).into_owned();
    if let Some(after) = cmd.get_after_long_help() {
        page.push_str(&text_sections(&after.to_string()));
    }
    if name == "mifrun" {
        page.push_str(ENVIRONMENT);
    }
    let _ = writeln!(page, ".SH \"SEE ALSO\"");
    let refs: Vec<String> = see_also
        .iter()
        .map(|r| {
            let (n, s) = r.split_once('(').unwrap_or((r, ")"));
            format!(".BR {} ({}", esc(n), s)
        })
        .collect();
    // `.BR a (1),` lines: the comma belongs to the section part.
    for (i, r) in refs.iter().enumerate() {
        if i + 1 < refs.len() {
            let _ = writeln!(page, "{r},");
        } else {
            let _ = writeln!(page, "{r}");
        }
    }
    page
}

const ENVIRONMENT: &str = r#".SH ENVIRONMENT
mifrun sets these for the program; the shim (libmifshim.so) reads them, so a program started with LD_PRELOAD alone is steered by them too.
.TP
.B MIFSHIM_VIA
Comma\-separated, ordered interfaces (\fB\-\-via\fR).
.TP
.B MIFSHIM_POLICY
Path of a TOML policy file (\fB\-\-policy\fR); see \fBmifshim\-policy\fR(5).
.TP
.B MIFSHIM_DNS
DNS servers for names resolved over the chosen interface (\fB\-\-dns\fR).
.TP
.B MIFSHIM_LOG\fR, \fBMIFSHIM_LOG_FILE
Log level and log file of the shim (\fB\-\-log\fR, \fB\-\-log\-file\fR).
.TP
.B MIFSHIM_EVENTS
File the shim appends one JSON line per decision to (\fB\-\-events\fR).
.TP
.B MIFSHIM_DISABLE
\fB1\fR turns the shim into a no\-op.
.SH FILES
.TP
.I ~/.config/mifshim/policy.toml\fR, \fI/etc/mifshim/policy.toml
The policy used when neither \fB\-\-via\fR nor \fB\-\-policy\fR (nor their variables) is given.
.TP
.I ../lib/mifshim/libmifshim.so\fR, \fI../lib/mifshim/libmifshim_engine.so
The shim and its engine, found next to the mifrun executable or in ../lib/mifshim/ relative to it.
"#;

/// `Examples:` / `Exit status:` / `Limits:` blocks of a help text as `.SH` sections,
/// their bodies kept as written (no fill).
fn text_sections(text: &str) -> String {
    let mut out = String::new();
    let mut open = false;
    for line in text.lines() {
        let heading = !line.starts_with(' ') && line.ends_with(':') && line.len() < 40;
        if heading {
            if open {
                out.push_str(".fi\n");
            }
            let title = line.trim_end_matches(':').to_ascii_uppercase();
            let _ = writeln!(out, ".SH \"{title}\"\n.nf");
            open = true;
            continue;
        }
        if !open {
            out.push_str(".SH NOTES\n.nf\n");
            open = true;
        }
        if line.trim().is_empty() {
            out.push_str(".sp\n");
        } else {
            let _ = writeln!(out, "{}", esc_line(line));
        }
    }
    if open {
        out.push_str(".fi\n");
    }
    out
}

/// Escapes text for roff: backslashes, hyphens (so they stay ASCII when copied),
/// and a leading `.` or `'` (which would start a request).
fn esc(s: &str) -> String {
    s.replace('\\', "\\e").replace('-', "\\-")
}

fn esc_line(s: &str) -> String {
    let e = esc(s);
    if e.starts_with('.') || e.starts_with('\'') {
        format!("\\&{e}")
    } else {
        e
    }
}

/// Inline markup of the doc comments: `code` in bold, *emphasis* in italics.
fn inline(s: &str) -> String {
    let mut out = String::new();
    let mut bold = false;
    for (i, part) in s.split('`').enumerate() {
        if i > 0 {
            out.push_str(if bold { "\\fR" } else { "\\fB" });
            bold = !bold;
        }
        out.push_str(&esc(part));
    }
    out
}

/// A description as one filled paragraph (the doc comments' line breaks are not
/// meaningful).
fn para(s: &str) -> String {
    let joined = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = inline(&joined);
    if text.starts_with('.') || text.starts_with('\'') {
        format!("\\&{text}")
    } else {
        text
    }
}

/// mifshim-policy(5): prose, then every key of every table of the schema with its
/// type, accepted values, default and description.
fn policy_page(source: &str) -> String {
    let schema: Value =
        serde_json::from_str(&config_schema::document::policy_schema_json()).unwrap_or_default();
    let defs = &schema["definitions"];
    let mut p = String::new();
    let _ = writeln!(
        p,
        ".TH MIFSHIM\\-POLICY 5 \"\" \"{}\" \"mifshim manual\"",
        esc(source)
    );
    p.push_str(POLICY_HEAD);
    let tables: [(&str, &Value, &str); 5] = [
        ("TOP LEVEL", &schema, ""),
        ("[[rules]]", &defs["RuleEntry"], "RULES"),
        ("[programs.NAME]", &defs["ProgramEntry"], "PROGRAMS"),
        ("[interfaces.NAME]", &defs["InterfaceEntry"], "INTERFACES"),
        ("[dns]", &defs["DnsSettings"], "DNS"),
    ];
    for (title, table, _) in tables {
        let _ = writeln!(p, ".SS \"{}\"", esc(title));
        if let Some(d) = table["description"].as_str() {
            let _ = writeln!(p, "{}", para(d));
        }
        let Some(props) = table["properties"].as_object() else {
            continue;
        };
        for (key, prop) in props {
            let target = resolve(prop, defs);
            let _ = writeln!(
                p,
                ".TP\n\\fB{}\\fR = \\fI{}\\fR",
                esc(key),
                type_of(&target, defs)
            );
            if let Some(d) = prop["description"].as_str() {
                let _ = writeln!(p, "{}", para(d));
            }
            if let Some(values) = values_of(&target) {
                for (v, d) in values {
                    let _ = writeln!(p, ".RS\n.TP\n\\fB\"{}\"\\fR\n{}\n.RE", esc(&v), para(&d));
                }
            }
            if let Some(def) = prop.get("default").filter(|d| !d.is_object()) {
                let _ = writeln!(p, ".IP\nDefault: \\fB{}\\fR.", esc(&def.to_string()));
            }
            if let Some(d) = target["description"].as_str() {
                let same = prop["description"].as_str() == Some(d);
                let table = target["type"] == "object";
                let list = type_of(&target, defs).contains('[');
                if values_of(&target).is_none() && !same && !table && !list {
                    let _ = writeln!(p, ".IP\n{}", para(d));
                }
            }
        }
    }
    p.push_str(POLICY_TAIL_HEAD);
    for line in include_str!("../../examples/policy.toml").lines() {
        if line.is_empty() {
            p.push_str(".sp\n");
        } else {
            let _ = writeln!(p, "{}", esc_line(line));
        }
    }
    p.push_str(POLICY_TAIL);
    p
}

/// The definition a property refers to (through `allOf [$ref]` or `$ref`), or the
/// property itself.
fn resolve<'a>(prop: &'a Value, defs: &'a Value) -> Value {
    let r = prop["allOf"][0]["$ref"]
        .as_str()
        .or_else(|| prop["$ref"].as_str());
    match r.and_then(|r| r.strip_prefix("#/definitions/")) {
        Some(name) => {
            let mut v = defs[name].clone();
            if let Some(o) = v.as_object_mut() {
                o.insert("x-name".into(), name.into());
            }
            v
        }
        None => prop.clone(),
    }
}

/// A short type for the key's line: `string | [string, ...]`, `integer (1-10)`…
fn type_of(v: &Value, defs: &Value) -> String {
    if let Some(name) = v["x-name"].as_str() {
        let one_or_list = |what: &str| format!("{what} | [{what}, ...]");
        return match name {
            "Interfaces" => one_or_list("interface"),
            "Networks" => one_or_list("address/prefix"),
            "Ports" => one_or_list("port | \"lo-hi\""),
            "NamePatterns" => one_or_list("name pattern"),
            "Sources" => one_or_list("address"),
            "Servers" => one_or_list("address[:port]"),
            "SearchDomains" => one_or_list("domain"),
            "Mark" => "integer | string".into(),
            "Dscp" => "integer (0-63) | class name".into(),
            "DnsSettings" => "table".into(),
            _ if values_of(v).is_some() => "string".into(),
            other => other.to_ascii_lowercase(),
        };
    }
    match v["type"].as_str() {
        Some("array") => {
            let item = resolve(&v["items"], defs);
            match item["x-name"].as_str() {
                Some("RuleEntry") => "array of tables ([[rules]])".into(),
                _ => "array".into(),
            }
        }
        Some("object") => "table".into(),
        Some("integer") => match (v["minimum"].as_u64(), v["maximum"].as_u64()) {
            (Some(lo), Some(hi)) => format!("integer ({lo}-{hi})"),
            _ => "integer".into(),
        },
        Some(t) => t.into(),
        None => "value".into(),
    }
}

/// The values of an enumeration (`oneOf` of `const`s, or `enum`), with their
/// descriptions.
fn values_of(v: &Value) -> Option<Vec<(String, String)>> {
    if let Some(list) = v["oneOf"].as_array() {
        let vals: Vec<(String, String)> = list
            .iter()
            .filter_map(|c| {
                Some((
                    c["const"].as_str()?.to_owned(),
                    c["description"].as_str().unwrap_or("").to_owned(),
                ))
            })
            .collect();
        return (!vals.is_empty()).then_some(vals);
    }
    None
}

const POLICY_HEAD: &str = r#".SH NAME
mifshim\-policy \- the mifshim policy file: which network interface a program's sockets use
.SH SYNOPSIS
.I ~/.config/mifshim/policy.toml
.br
.I /etc/mifshim/policy.toml
.br
\fBmifrun \-\-policy\fR \fIFILE\fR ...
.br
\fBMIFSHIM_POLICY=\fR\fIFILE\fR
.SH DESCRIPTION
A policy is a TOML file that tells the mifshim preload library (and \fBmifrun\fR(1)'s supervisor) which interface each socket of a program is bound to, per destination and per program.
The shim finds it through \fBMIFSHIM_POLICY\fR (\fBmifrun \-\-policy\fR), else in \fI$XDG_CONFIG_HOME/mifshim/policy.toml\fR (or \fI~/.config/mifshim/policy.toml\fR), else in \fI/etc/mifshim/policy.toml\fR.
\fB\-\-via\fR (\fBMIFSHIM_VIA\fR) given as well replaces the top\-level \fBvia\fR.
.PP
A policy that cannot be used (invalid, unreadable) fails closed: loopback and the host's own addresses still work, everything else is refused.
\fBmifrun \-\-policy\fR \fIFILE\fR \fB\-\-check\fR lists every problem at once as \fIfile:line:col: message\fR and runs nothing.
.PP
\fBDecisions.\fR Loopback and the host's own addresses are never steered.
For any other destination the first matching rule decides (the program section's rules first, then the top\-level ones); no rule matching, the section's or the top level's \fBvia\fR applies: the first usable interface of the list (up, with an address of the destination's family); none usable, \fBon_unavailable\fR.
Names are resolved over the chosen interface, from that interface's DNS servers.
A rule that can never match, because an earlier one already matches everything it does, is an error.
.PP
Every list below may also be written as a single string (\fBvia = "wlan0"\fR is \fBvia = ["wlan0"]\fR).
A key that is not listed here is an error (with a suggestion for a near miss).
.SH KEYS
The tables and keys, generated from the policy's JSON Schema (\fBmifrun schema\fR), whose descriptions are the policy types' own documentation.
"#;

const POLICY_TAIL_HEAD: &str = r#".SH "EDITOR SUPPORT"
The JSON Schema printed by \fBmifrun schema\fR is installed as \fIshare/mifshim/policy.schema.json\fR.
Editors using taplo (Even Better TOML for VS Code, taplo's language server for others) pick it up from a first line such as
.PP
.nf
.RS
#:schema file:///usr/share/mifshim/policy.schema.json
.RE
.fi
.PP
and then complete keys and values and flag mistakes as the file is typed.
.SH EXAMPLES
The example installed in \fI/usr/share/doc/mifshim/examples/policy.toml\fR:
.PP
.nf
.RS
"#;

const POLICY_TAIL: &str = r#".RE
.fi
.SH "SEE ALSO"
.BR mifrun (1),
.BR mifrun\-schema (1)
"#;
