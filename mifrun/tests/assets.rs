//! The manual pages (`mifrun manpages DIR`) and the shell completions (`mifrun
//! completions SHELL`): man renders every page without a warning and they document
//! every option, command and policy key; the bash and fish completions really
//! complete (run in the shell itself), the zsh one loads. scripts/install.sh and the
//! Debian package install exactly what these commands print.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mifrun(args: &[&str]) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_mifrun"))
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "mifrun {args:?}: {o:?}");
    o
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A tool the test needs: a missing one is a failure (scripts/test.sh installs it).
fn tool(name: &str) -> &str {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{name}` is not installed (scripts/test.sh installs it as root)"
    );
    name
}

struct Scratch(PathBuf);
impl Scratch {
    fn new(tag: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("mifrun-assets-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
}
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `man -l` with warnings on: (rendered text, warnings).
fn man(page: &Path) -> (String, String) {
    let o = Command::new(tool("man"))
        .args(["--warnings", "-l"])
        .arg(page)
        .env("MANWIDTH", "80")
        .env("LC_ALL", "C.UTF-8")
        .env_remove("MANPAGER")
        .env("PAGER", "cat")
        .output()
        .unwrap();
    assert!(o.status.success(), "man -l {}: {o:?}", page.display());
    (text(&o.stdout), text(&o.stderr))
}

/// The long options `mifrun --help` lists.
fn long_options(help: &str) -> BTreeSet<String> {
    help.lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let l = l.strip_prefix("-h, ").unwrap_or(l);
            let l = l.strip_prefix("-V, ").unwrap_or(l);
            let opt: String = l
                .strip_prefix("--")?
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            Some(format!("--{opt}"))
        })
        .collect()
}

#[test]
fn manual_pages_render_without_warnings_and_document_every_option_and_key() {
    let dir = Scratch::new("man");
    let listed = text(&mifrun(&["manpages", dir.0.to_str().unwrap()]).stdout);
    let mut names: Vec<String> = listed
        .lines()
        .map(|l| {
            Path::new(l)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "mifrun-completions.1",
            "mifrun-doctor.1",
            "mifrun-explain.1",
            "mifrun-schema.1",
            "mifrun-source-rules.1",
            "mifrun-status.1",
            "mifrun.1",
            "mifshim-policy.5"
        ]
    );
    for line in listed.lines() {
        let (rendered, warnings) = man(Path::new(line));
        assert!(warnings.is_empty(), "{line}: man warns:\n{warnings}");
        assert!(rendered.len() > 500, "{line}: {rendered}");
        assert!(
            !rendered.contains("\\f") && !rendered.contains("\\-"),
            "{line}: raw roff:\n{rendered}"
        );
    }
    // mifrun(1): every option of --help, every command, the exit status, and none of
    // the hidden commands.
    let (page, _) = man(&dir.0.join("man1/mifrun.1"));
    let flat = page.split_whitespace().collect::<Vec<_>>().join(" ");
    let help = text(&mifrun(&["--help"]).stdout);
    let opts = long_options(&help);
    assert!(opts.len() >= 15, "{opts:?}");
    for o in &opts {
        assert!(flat.contains(o.as_str()), "mifrun(1) lacks {o}:\n{page}");
    }
    for section in [
        "SYNOPSIS",
        "OPTIONS",
        "SUBCOMMANDS",
        "EXAMPLES",
        "EXIT STATUS",
        "ENVIRONMENT",
        "FILES",
        "SEE ALSO",
    ] {
        assert!(
            page.lines().any(|l| l == section),
            "mifrun(1) lacks {section}:\n{page}"
        );
    }
    for cmd in ["status", "explain", "doctor", "schema", "completions"] {
        assert!(flat.contains(&format!("mifrun-{cmd}(1)")), "{cmd}:\n{page}");
    }
    assert!(
        !flat.contains("manpages") && !flat.contains("__resolve"),
        "{page}"
    );
    assert!(flat.contains("127 when it is not found"), "{page}");
    // A command's page: its own options.
    let (page, _) = man(&dir.0.join("man1/mifrun-explain.1"));
    for o in [
        "--via",
        "--policy",
        "--program",
        "--udp",
        "--json",
        "<DEST>",
        "[PORT]",
    ] {
        assert!(page.contains(o), "mifrun-explain(1) lacks {o}:\n{page}");
    }
    // mifshim-policy(5): every key of every table, the accepted values and defaults,
    // from the schema's descriptions.
    let (page, _) = man(&dir.0.join("man5/mifshim-policy.5"));
    use config_schema::policy_keys as pk;
    let sections = [
        ("TOP LEVEL", pk::TOP),
        ("[[rules]]", pk::RULE),
        ("[programs.NAME]", pk::PROGRAM),
        ("[interfaces.NAME]", pk::INTERFACE),
        ("[dns]", pk::DNS),
    ];
    for (i, (title, keys)) in sections.iter().enumerate() {
        let start = page
            .find(&format!("\n   {title}\n"))
            .unwrap_or_else(|| panic!("no {title}:\n{page}"));
        let end = sections
            .get(i + 1)
            .and_then(|(t, _)| page.find(&format!("\n   {t}\n")))
            .or_else(|| page.find("\nEDITOR SUPPORT"))
            .unwrap();
        let body = &page[start..end];
        for k in *keys {
            assert!(
                body.contains(&format!("       {k} = ")),
                "{title} lacks `{k}`:\n{body}"
            );
        }
    }
    for want in [
        "\"interface\"",
        "\"device\"",
        "Default: \"block\".",
        "Default: 2000.",
        "integer (10-60000)",
        "#:schema file:///usr/share/mifshim/policy.schema.json",
        "via = [\"wlan0\", \"wwan0\"]",
    ] {
        assert!(
            page.contains(want),
            "mifshim-policy(5) lacks {want}:\n{page}"
        );
    }
}

fn completion_file(dir: &Scratch, shell: &str) -> PathBuf {
    let p = dir.0.join(format!("mifrun.{shell}"));
    std::fs::write(&p, mifrun(&["completions", shell]).stdout).unwrap();
    p
}

/// What bash's completion function offers for the words of `line` (the last one
/// being completed).
fn bash_complete(file: &Path, words: &[&str]) -> Vec<String> {
    let script = r#"
source "$1"; shift
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
_mifrun mifrun "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let o = Command::new(tool("bash"))
        .args(["--norc", "--noprofile", "-c", script, "bash"])
        .arg(file)
        .args(words)
        .output()
        .unwrap();
    assert!(o.status.success() && o.stderr.is_empty(), "{o:?}");
    text(&o.stdout).lines().map(str::to_owned).collect()
}

#[test]
fn bash_completion_completes_options_commands_and_values() {
    let dir = Scratch::new("bash");
    let f = completion_file(&dir, "bash");
    assert_eq!(bash_complete(&f, &["mifrun", "--vi"]), ["--via"]);
    assert_eq!(bash_complete(&f, &["mifrun", "--fail"]), ["--fail-on"]);
    let cmds = bash_complete(&f, &["mifrun", "st"]);
    assert!(cmds.contains(&"status".to_owned()), "{cmds:?}");
    assert!(!cmds.contains(&"schema".to_owned()), "{cmds:?}");
    let shells = bash_complete(&f, &["mifrun", "completions", ""]);
    assert_eq!(shells, ["-h", "--help", "bash", "zsh", "fish"]);
    assert_eq!(
        bash_complete(&f, &["mifrun", "--log", ""]),
        ["off", "error", "warn", "info", "debug"]
    );
    let explain = bash_complete(&f, &["mifrun", "explain", "--u"]);
    assert_eq!(explain, ["--udp"]);
    // The hidden command is not offered.
    let all = bash_complete(&f, &["mifrun", ""]);
    assert!(
        all.contains(&"explain".to_owned()) && all.contains(&"--via".to_owned()),
        "{all:?}"
    );
    assert!(
        !all.iter().any(|w| w == "manpages" || w == "__resolve"),
        "{all:?}"
    );
}

#[test]
fn fish_completion_completes_and_zsh_completion_loads() {
    let dir = Scratch::new("fishzsh");
    let f = completion_file(&dir, "fish");
    let complete = |line: &str| -> Vec<String> {
        let o = Command::new(tool("fish"))
            .args(["--no-config", "-c"])
            .arg(format!("source '{}'; complete -C '{line}'", f.display()))
            .env("HOME", &dir.0)
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
        text(&o.stdout)
            .lines()
            .map(|l| l.split('\t').next().unwrap().to_owned())
            .collect()
    };
    assert_eq!(complete("mifrun --vi"), ["--via"]);
    let cmds = complete("mifrun ");
    for c in ["status", "explain", "doctor", "schema", "completions"] {
        assert!(cmds.contains(&c.to_owned()), "{c}: {cmds:?}");
    }
    assert!(!cmds.contains(&"manpages".to_owned()), "{cmds:?}");
    assert_eq!(complete("mifrun completions "), ["bash", "fish", "zsh"]);

    // zsh: the file parses and defines the completion function. (Running zsh's
    // completion system needs a terminal (zpty); not done here.)
    let z = completion_file(&dir, "zsh");
    let o = Command::new(tool("zsh"))
        .args(["-f", "-c"])
        .arg(format!(
            "autoload -U compinit && compinit -u -d '{}/zcd' && source '{}' && whence -w _mifrun",
            dir.0.display(),
            z.display()
        ))
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    assert_eq!(text(&o.stdout).trim(), "_mifrun: function");
    let src = std::fs::read_to_string(&z).unwrap();
    assert!(src.starts_with("#compdef mifrun"), "{src}");
    for w in ["--via", "--fail-on", "status", "completions"] {
        assert!(src.contains(w), "zsh completion lacks {w}");
    }
}
