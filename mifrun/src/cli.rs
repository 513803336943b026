//! Command-line interface (clap derive).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  mifrun status
      Every interface: state, addresses, routes, DNS servers (and where they came
      from), and whether the shim can use it.
  mifrun explain --via wlan0,wwan0 203.0.113.10 443
      The whole chain for one destination: rule, interface, source, next hop, reply.
  mifrun doctor --via wlan0
      Checks, each with a verdict and a fix.
  mifrun schema > policy.schema.json
      The policy's JSON Schema, for editors (taplo: a `#:schema` first line).
  source <(mifrun completions bash)
      Completions for bash (also zsh and fish).
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
  Options go before PROGRAM (or before `--`): a mistyped one is an error, not a
  program. A program called like a command (`status`) is run with `-- status`.
  With --summary or --fail-on, a program killed by a signal kills mifrun with
  the same signal (the shell reports 128+N).

Limits:
  LD_PRELOAD cannot steer static binaries, Go programs (raw syscalls), or
  setuid/setgid/file-capability programs (the loader drops LD_PRELOAD). mifrun
  runs static and Go programs under its seccomp supervisor instead (--supervise
  forces it for any program; --preload-only refuses them) and refuses setuid and
  file-capability programs unless --allow-unsteered is given.";

/// Run PROGRAM with its sockets forced onto the chosen network interface(s).
///
/// mifrun validates the policy, checks that the interfaces exist, inspects PROGRAM,
/// preloads libmifshim.so (found next to the mifrun executable or in
/// ../lib/mifshim/), sets the MIFSHIM_* variables and replaces itself with PROGRAM.
#[derive(Debug, Parser)]
#[command(
    name = "mifrun",
    version,
    override_usage = "mifrun [OPTIONS] (--via IF[,IF...] | --policy FILE) [--] PROGRAM [ARGS]...\n       mifrun [OPTIONS] (--via IF[,IF...] | --policy FILE) --check [[--] PROGRAM [ARGS]...]\n       mifrun status|explain|doctor [OPTIONS]\n       mifrun schema | completions SHELL",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_long_help = EXAMPLES, after_help = "See --help for examples and exit codes.")]
pub struct Cli {
    #[command(subcommand)]
    pub tool: Option<Tool>,

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

    /// Run PROGRAM under the seccomp supervisor (no root needed): mifrun decides every
    /// socket connect and send of the program, its threads and children, whatever
    /// they are (static, Go, raw system calls, children that clear the environment).
    /// Chosen automatically for static and Go programs.
    #[arg(long, conflicts_with_all = ["preload_only", "allow_unsteered"])]
    pub supervise: bool,

    /// Never use the supervisor: refuse (or, with --allow-unsteered, run unsteered)
    /// what the preload cannot steer.
    #[arg(long)]
    pub preload_only: bool,

    /// Do not fail when a named interface does not exist (yet); only warn. For hot-plugged links.
    #[arg(long)]
    pub allow_missing: bool,

    /// Kernel backstop (root): run PROGRAM's whole process tree in a cgroup of its own
    /// whose packets nftables lets out only by loopback and the policy's interfaces (and
    /// to the destinations of its `direct` rules); anything else is dropped and counted,
    /// and reported when the tree has exited. Needs cgroup v2 and nftables (`nft`).
    #[arg(long)]
    pub guard: bool,
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
    /// `direct` rule, on_unavailable = "direct", no interface set (`direct`) — or when
    /// --guard dropped a packet (`dropped`).
    /// Comma-separated; implies running PROGRAM as a child, as --summary does.
    #[arg(long, value_name = "WHAT[,WHAT...]", value_delimiter = ',', value_parser = ["blocked", "direct", "dropped"])]
    pub fail_on: Vec<String>,

    /// Run PROGRAM with NAME as its `argv[0]` (bash's `exec -a`): PROGRAM is still what
    /// is looked up and run. For multi-call binaries (busybox) started under another
    /// name; the exec hooks pass it when they hand a program to the supervisor.
    #[arg(long, value_name = "NAME", allow_hyphen_values = true)]
    pub argv0: Option<OsString>,

    /// Validate the policy, inspect PROGRAM, print the effective policy and the exec plan,
    /// then exit without running anything (0, or 2 when mifrun would refuse).
    #[arg(long)]
    pub check: bool,

    /// The program to run and its arguments (PROGRAM is looked up in PATH).
    #[arg(
        value_name = "PROGRAM",
        trailing_var_arg = true,
        required_unless_present = "check",
        num_args = 1..
    )]
    pub command: Vec<OsString>,
}

impl Cli {
    /// The program's argument vector: the command, its `argv[0]` replaced by
    /// `--argv0`'s NAME when given.
    pub fn argv(&self) -> std::borrow::Cow<'_, [OsString]> {
        match (&self.argv0, self.command.split_first()) {
            (Some(name), Some((_, rest))) => {
                let mut v = Vec::with_capacity(self.command.len());
                v.push(name.clone());
                v.extend_from_slice(rest);
                std::borrow::Cow::Owned(v)
            }
            _ => std::borrow::Cow::Borrowed(&self.command),
        }
    }

    /// The first option given that only the Linux build has, with what it is there
    /// (the macOS build refuses it with that reason rather than ignoring it).
    #[cfg_attr(not(target_os = "macos"), allow(dead_code))]
    pub fn linux_only_option(&self) -> Option<(&'static str, &'static str)> {
        if self.guard {
            return Some((
                "--guard",
                "it is a cgroup v2 and nftables backstop; a pf anchor would be macOS's, and is not written",
            ));
        }
        if self.supervise {
            return Some((
                "--supervise",
                "it is a seccomp user-notification supervisor; macOS has no such interface for an unprivileged wrapper",
            ));
        }
        if self.events.is_some() {
            return Some((
                "--events",
                "the events file is written by the engine, whose macOS hooks are not written yet",
            ));
        }
        if self.summary || !self.fail_on.is_empty() {
            return Some((
                if self.summary {
                    "--summary"
                } else {
                    "--fail-on"
                },
                "they read the events file, which the engine's macOS hooks do not write yet",
            ));
        }
        None
    }
}

/// The commands that look instead of running something.
#[derive(Debug, Subcommand)]
pub enum Tool {
    /// Every interface: index, state, carrier, addresses, routes, DNS servers (and where
    /// each came from) and whether the shim can use it for IPv4 / IPv6.
    #[command(after_long_help = STATUS_HELP)]
    Status(StatusArgs),
    /// The whole chain for one destination (an address or a name): exemption or rule,
    /// interface or failover, socket options (source, dscp, mark), source address, next
    /// hop, whether replies come back; for a name, the servers asked over which link
    /// and their answers (real queries).
    #[command(after_long_help = EXPLAIN_HELP)]
    Explain(ExplainArgs),
    /// Checks, each with a verdict and a fix: routes, reverse-path filtering, DNS over
    /// the link (real queries), systemd-resolved, glibc, what a supervisor would need.
    #[command(after_long_help = DOCTOR_HELP)]
    Doctor(DoctorArgs),
    /// The source routing rules that send the kernel's own answers from the chosen
    /// interfaces' addresses (ICMP errors, TCP RSTs, IPv6's TIME_WAIT ACK: packets of
    /// no socket) back by those interfaces: printed as `ip` commands, made with
    /// --apply, taken away with --remove.
    #[command(name = "source-rules", after_long_help = SOURCE_RULES_HELP)]
    SourceRules(SourceRulesArgs),
    /// Print the policy file's JSON Schema (draft 7), generated from the policy types:
    /// for editors (taplo / Even Better TOML: `#:schema` on the policy's first line)
    /// and for validating policies with any JSON-Schema tool.
    #[command(after_long_help = SCHEMA_HELP)]
    Schema,
    /// Print a completion script for bash, zsh or fish.
    #[command(after_long_help = COMPLETIONS_HELP)]
    Completions {
        /// The shell to complete for.
        #[arg(value_name = "SHELL", value_parser = ["bash", "zsh", "fish"])]
        shell: String,
    },
    /// (for installers) Write the manual pages into DIR: man1/mifrun.1, a page per
    /// command (man1/mifrun-status.1, …) and man5/mifshim-policy.5.
    #[command(name = "manpages", hide = true)]
    Manpages {
        /// Directory to write man1/ and man5/ into (created if missing).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// (internal) getaddrinfo under the shim, for explain and doctor.
    #[command(name = "__resolve", hide = true)]
    Resolve { name: String },
}

const SCHEMA_HELP: &str = "\
Examples:
  mifrun schema > policy.schema.json
  # first line of a policy, for taplo / Even Better TOML:
  #:schema /usr/share/mifshim/policy.schema.json

The same schema is installed as share/mifshim/policy.schema.json. It checks the
file's shape (keys, types, spellings, ranges); mifrun --check also reports what
only the whole policy shows (a rule that can never match, an interface listed
twice, host bits in a prefix).";

const COMPLETIONS_HELP: &str = "\
Examples:
  source <(mifrun completions bash)
  mifrun completions zsh > ~/.zfunc/_mifrun
  mifrun completions fish > ~/.config/fish/completions/mifrun.fish

scripts/install.sh and the Debian package install them where each shell looks:
share/bash-completion/completions/mifrun, share/zsh/vendor-completions/_mifrun,
share/fish/vendor_completions.d/mifrun.fish.";

const STATUS_HELP: &str = "\
Examples:
  mifrun status
  mifrun status --to 203.0.113.10 --json
  mifrun status --policy policy.toml     # DNS servers as that policy sets them

DNS sources, in the shim's order: --dns / MIFSHIM_DNS, the policy's
[interfaces.NAME] dns, systemd-resolved (asked with the link's index when its
socket exists), systemd-networkd's link state, a dhclient lease, /etc/resolv.conf.";

const EXPLAIN_HELP: &str = "\
Examples:
  mifrun explain --via wlan0,wwan0 203.0.113.10 443
  mifrun explain --policy policy.toml --program curl 2001:db8::10 80
  mifrun explain --via wlan0 --udp 198.51.100.53 53
  mifrun explain --via wlan0 web.example      # the servers asked, their answers

A name is resolved for real: mifrun runs getaddrinfo under the shim (the same code a
program gets) and asks each server alone over the chosen link. Exit status 0 when the
destination would be reached through an interface (or left direct), 1 when it would
be blocked or cannot work, 2 on a usage error.";

const DOCTOR_HELP: &str = "\
Examples:
  mifrun doctor --via wlan0
  mifrun doctor --policy policy.toml --json
  mifrun doctor --via wlan0 --name web.example   # the name the DNS check asks

Without --via or --policy it checks the policy the shim would find
($MIFSHIM_POLICY, ~/.config/mifshim/policy.toml, /etc/mifshim/policy.toml), else
every interface that is up. Exit status 0 when nothing failed, 1 otherwise.";

const SOURCE_RULES_HELP: &str = "\
Examples:
  mifrun source-rules --via wlan0            # what it would change, as ip commands
  sudo mifrun source-rules --via wlan0 --apply
  sudo mifrun source-rules --via wlan0 --remove

For each global address of each interface of the policy: a rule `from ADDR
priority 31000 table T` (T = 1000000 + the interface's index), and in T a copy of
the main table's routes through the interface, behind them an `unreachable`
default. A packet from ADDR then leaves by the interface or not at all, whatever
socket (or none) sent it. The copy is taken when it runs: run it again after an
address or a gateway changes (it deletes what is stale and adds what is missing;
nothing to do prints so). Rules do not survive a reboot: put them in the network
configuration (systemd-networkd's [RoutingPolicyRule], NetworkManager's
ipv4.routing-rules) or run it from the link's up hook.";

/// Where the interfaces and servers come from, as for running a program.
#[derive(Debug, Args, Default)]
pub struct PolicyArgs {
    /// Interface(s), in order of preference (comma-separated or repeated). With
    /// --policy, replaces the policy's top-level `via`.
    #[arg(long, value_name = "IF[,IF...]", value_delimiter = ',')]
    pub via: Vec<String>,
    /// TOML policy file.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// DNS server(s), as `mifrun --dns` sets them.
    #[arg(long, value_name = "ADDR[,ADDR...]")]
    pub dns: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Also look up the route through each interface to this address.
    #[arg(long, value_name = "ADDR")]
    pub to: Option<std::net::IpAddr>,
    /// JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Explain for this program (`[programs.NAME]` of the policy).
    #[arg(long, value_name = "NAME")]
    pub program: Option<String>,
    /// A UDP datagram instead of a TCP connection.
    #[arg(long)]
    pub udp: bool,
    /// JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// An IPv4 or IPv6 address, or a host name.
    #[arg(value_name = "DEST")]
    pub dest: String,
    /// Destination port (rules may name ports).
    #[arg(value_name = "PORT", default_value_t = 443)]
    pub port: u16,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// The name the DNS check asks (default: the first search domain of
    /// /etc/resolv.conf, else example.org); any answer, even "no such name", counts.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `source-rules`' priority by default: ahead of the main table's rule (32766), behind
/// the low numbers administrators and VPN tools use for their own.
pub const SOURCE_RULE_PRIORITY: u32 = 31_000;

#[derive(Debug, Args)]
pub struct SourceRulesArgs {
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Make the changes (root, CAP_NET_ADMIN); without it they are printed only.
    #[arg(long, conflicts_with = "remove")]
    pub apply: bool,
    /// Delete every rule and route of the interfaces' tables.
    #[arg(long)]
    pub remove: bool,
    /// The rules' priority (lower is looked at first; the main table's rule is 32766).
    #[arg(long, value_name = "N", default_value_t = SOURCE_RULE_PRIORITY)]
    pub priority: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("mifrun").chain(args.iter().copied()))
    }

    #[test]
    fn linux_only_options_are_named_for_the_macos_refusal() {
        let name = |args: &[&str]| parse(args).unwrap().linux_only_option().map(|(o, _)| o);
        assert_eq!(name(&["--via", "en0", "--", "curl"]), None);
        assert_eq!(name(&["--via", "en0", "--preload-only", "curl"]), None);
        assert_eq!(name(&["--via", "en0", "--guard", "curl"]), Some("--guard"));
        assert_eq!(
            name(&["--via", "en0", "--supervise", "curl"]),
            Some("--supervise")
        );
        assert_eq!(
            name(&["--via", "en0", "--events", "e.jsonl", "curl"]),
            Some("--events")
        );
        assert_eq!(
            name(&["--via", "en0", "--summary", "curl"]),
            Some("--summary")
        );
        assert_eq!(
            name(&["--via", "en0", "--fail-on", "blocked", "curl"]),
            Some("--fail-on")
        );
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

    /// `mifrun --via wlan0 --supervize -- prog` ran a program called `--supervize`.
    #[test]
    fn mistyped_option_before_the_program_was_taken_for_the_program() {
        let e = parse(&["--via", "wlan0", "--supervize", "--", "prog"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument);
        assert!(
            e.to_string().contains("unexpected argument '--supervize'"),
            "{e}"
        );
        let e = parse(&["--via", "wlan0", "--chek", "prog"]).unwrap_err();
        assert!(e.to_string().contains("--check"), "a suggestion: {e}");
        let cli = parse(&["--via", "wlan0", "--", "prog", "--any-flag"]).unwrap();
        assert_eq!(cli.command, ["prog", "--any-flag"]);
        let cli = parse(&["--via", "wlan0", "prog", "--flag"]).unwrap();
        assert_eq!(cli.command, ["prog", "--flag"]);
        let cli = parse(&["--via", "wlan0", "--", "--prog-with-dashes"]).unwrap();
        assert_eq!(cli.command, ["--prog-with-dashes"]);
    }

    #[test]
    fn tools_parse_and_a_program_named_like_one_runs_after_dashes() {
        let cli = parse(&["status", "--json"]).unwrap();
        assert!(matches!(
            cli.tool,
            Some(Tool::Status(StatusArgs { json: true, .. }))
        ));
        let cli = parse(&[
            "explain",
            "--via",
            "wlan0,wwan0",
            "--via",
            "eth0",
            "--udp",
            "203.0.113.10",
            "53",
        ])
        .unwrap();
        let Some(Tool::Explain(e)) = cli.tool else {
            panic!()
        };
        assert_eq!(e.policy.via, ["wlan0", "wwan0", "eth0"]);
        assert_eq!((e.dest.as_str(), e.port, e.udp), ("203.0.113.10", 53, true));
        let cli = parse(&["doctor", "--via", "wlan0"]).unwrap();
        assert!(matches!(cli.tool, Some(Tool::Doctor(_))));
        let cli = parse(&["--via", "wlan0", "--", "status"]).unwrap();
        assert!(cli.tool.is_none());
        assert_eq!(cli.command, ["status"]);
        assert!(parse(&["explain", "--vai", "wlan0", "x"]).is_err());
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
    fn argv0_replaces_only_the_programs_argv0() {
        let cli = parse(&[
            "--via",
            "lo",
            "--argv0",
            "-wget",
            "--",
            "/bin/busybox",
            "-q",
        ])
        .unwrap();
        assert_eq!(cli.command, ["/bin/busybox", "-q"]);
        assert_eq!(&*cli.argv(), ["-wget", "-q"]);
        let cli = parse(&["--via", "lo", "prog", "a"]).unwrap();
        assert_eq!(&*cli.argv(), ["prog", "a"]);
    }

    #[test]
    fn supervise_and_preload_only_parse_and_exclude_each_other() {
        let cli = parse(&["--via", "lo", "--supervise", "--", "prog"]).unwrap();
        assert!(cli.supervise && !cli.preload_only);
        let cli = parse(&["--via", "lo", "--preload-only", "prog"]).unwrap();
        assert!(cli.preload_only);
        assert!(parse(&["--via", "lo", "--supervise", "--preload-only", "prog"]).is_err());
        assert!(parse(&["--via", "lo", "--supervise", "--allow-unsteered", "prog"]).is_err());
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
