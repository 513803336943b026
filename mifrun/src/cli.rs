//! Command-line interface (clap derive).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Parser;

const EXAMPLES: &str = "\
Examples:
  mifrun --via wlan0 -- curl https://example.org/
      Every socket of curl (and of its children) goes out through wlan0.
  mifrun --via wlan0,wwan0 -- app
      Prefer wlan0; use wwan0 when wlan0 is unusable.
  mifrun --policy ./policy.toml -- app
      Per-program rules from a TOML policy file.
  mifrun --policy ./policy.toml --via eth1 --check -- app
      Validate, inspect `app` and print what would be run, without running it.

  mifrun --via wlan0 --summary --fail-on blocked,direct -- ./integration-check
      CI: print what went where at exit; exit 3 if anything was blocked or left
      direct by the policy.

Exit status:
  the program's own status when it runs; 2 when mifrun refuses (invalid policy,
  missing interface, program that a preload cannot steer, usage error);
  3 when a --fail-on condition held (whatever the program's status);
  126 when the program cannot be executed; 127 when it is not found.
  With --summary or --fail-on, a program killed by a signal kills mifrun with
  the same signal (the shell reports 128+N).

Limits:
  LD_PRELOAD cannot steer static binaries, Go programs (raw syscalls), or
  setuid/setgid/file-capability programs (the loader drops LD_PRELOAD). mifrun
  refuses to run those unless --allow-unsteered is given.";

/// Run PROGRAM with its sockets forced onto the chosen network interface(s).
///
/// mifrun validates the policy, checks that the interfaces exist, inspects PROGRAM,
/// preloads libmifshim.so (found next to the mifrun executable or in
/// ../lib/mifshim/), sets the MIFSHIM_* variables and replaces itself with PROGRAM.
#[derive(Debug, Parser)]
#[command(
    name = "mifrun",
    version,
    override_usage = "mifrun [OPTIONS] (--via IF[,IF...] | --policy FILE) [--] PROGRAM [ARGS]...\n       mifrun [OPTIONS] (--via IF[,IF...] | --policy FILE) --check [[--] PROGRAM [ARGS]...]",
    after_long_help = EXAMPLES, after_help = "See --help for examples and exit codes.")]
pub struct Cli {
    /// Interface(s) to use, in order of preference (comma-separated). With --policy,
    /// replaces the policy's top-level `via`.
    #[arg(long, value_name = "IF[,IF...]")]
    pub via: Option<String>,

    /// TOML policy file.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// DNS server(s) for names resolved over the chosen interface (comma-separated
    /// `ADDR` or `ADDR:PORT`; sets MIFSHIM_DNS). They take precedence over the policy's
    /// `[interfaces.NAME] dns`, per-link state and /etc/resolv.conf.
    #[arg(long, value_name = "ADDR[,ADDR...]")]
    pub dns: Option<String>,

    /// Log level of the shim (sets MIFSHIM_LOG).
    #[arg(
        long,
        value_name = "LEVEL",
        ignore_case = true,
        value_parser = ["off", "error", "warn", "info", "debug"]
    )]
    pub log: Option<String>,

    /// File the shim appends its log to instead of standard error (sets MIFSHIM_LOG_FILE).
    #[arg(long, value_name = "PATH")]
    pub log_file: Option<PathBuf>,

    /// Run a program that the shim cannot steer (static, Go, setuid, ...) anyway, unsteered,
    /// after a warning.
    #[arg(long)]
    pub allow_unsteered: bool,

    /// Do not fail when a named interface does not exist (yet); only warn. For hot-plugged links.
    #[arg(long)]
    pub allow_missing: bool,

    /// Append one JSON line per decision and per name resolved to FILE (sets
    /// MIFSHIM_EVENTS; schema version 1, see the README). A FIFO is fine.
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,

    /// Run PROGRAM as a child and, when it exits, print per interface what was steered,
    /// left direct (and why) and blocked, from the events (a temporary file unless
    /// --events is given).
    #[arg(long)]
    pub summary: bool,

    /// Exit 3 when any call was blocked (`blocked`) or left direct by the policy — a
    /// `direct` rule, on_unavailable = "direct", no interface set (`direct`).
    /// Comma-separated; implies running PROGRAM as a child, as --summary does.
    #[arg(long, value_name = "WHAT[,WHAT...]", value_delimiter = ',', value_parser = ["blocked", "direct"])]
    pub fail_on: Vec<String>,

    /// Validate the policy, inspect PROGRAM, print the effective policy and the exec plan,
    /// then exit without running anything (0, or 2 when mifrun would refuse).
    #[arg(long)]
    pub check: bool,

    /// The program to run and its arguments (PROGRAM is looked up in PATH).
    #[arg(
        value_name = "PROGRAM",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required_unless_present = "check",
        num_args = 1..
    )]
    pub command: Vec<OsString>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("mifrun").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn program_args_with_hyphens_are_kept() {
        let cli = parse(&["--via", "wlan0", "--", "curl", "-v", "--via", "x"]).unwrap();
        assert_eq!(cli.via.as_deref(), Some("wlan0"));
        assert_eq!(cli.command, ["curl", "-v", "--via", "x"]);
        // Without `--`, everything after PROGRAM belongs to PROGRAM too.
        let cli = parse(&["--via", "wlan0", "curl", "-v", "--check"]).unwrap();
        assert!(!cli.check);
        assert_eq!(cli.command, ["curl", "-v", "--check"]);
    }

    #[test]
    fn program_is_required_unless_check() {
        assert!(parse(&["--via", "wlan0"]).is_err());
        let cli = parse(&["--via", "wlan0", "--check"]).unwrap();
        assert!(cli.command.is_empty());
    }

    #[test]
    fn log_level_is_case_insensitive_and_checked() {
        let cli = parse(&["--via", "lo", "--log", "DEBUG", "true"]).unwrap();
        assert_eq!(
            cli.log.as_deref().map(str::to_ascii_lowercase).as_deref(),
            Some("debug")
        );
        assert!(parse(&["--via", "lo", "--log", "loud", "true"]).is_err());
    }

    #[test]
    fn flags_parse() {
        let cli = parse(&[
            "--policy",
            "p.toml",
            "--allow-unsteered",
            "--allow-missing",
            "--log-file",
            "x.log",
            "--",
            "app",
        ])
        .unwrap();
        assert!(cli.allow_unsteered && cli.allow_missing && !cli.check);
        assert_eq!(cli.policy.as_deref(), Some(std::path::Path::new("p.toml")));
    }

    #[test]
    fn event_flags_parse() {
        let cli = parse(&[
            "--via",
            "lo",
            "--events",
            "e.jsonl",
            "--summary",
            "--fail-on",
            "blocked,direct",
            "true",
        ])
        .unwrap();
        assert!(cli.summary);
        assert_eq!(cli.fail_on, ["blocked", "direct"]);
        assert_eq!(cli.events.as_deref(), Some(std::path::Path::new("e.jsonl")));
        assert!(parse(&["--via", "lo", "--fail-on", "loud", "true"]).is_err());
    }
}
