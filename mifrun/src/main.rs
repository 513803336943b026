//! `mifrun`: run a program with `libmifshim.so` preloaded so that its sockets use the
//! chosen network interface(s).
//!
//! Order of work: parse the command line, validate the policy (exit 2 with every
//! diagnostic), check the interfaces, find the library, inspect the program (refuse
//! what a preload cannot steer), compose the environment, then `exec` (replace this
//! process, so that the exit status and signals are the program's own).

mod assets;
mod check;
mod cli;
#[cfg(target_os = "linux")]
mod guard;
mod inspect;
#[cfg(target_os = "linux")]
mod launch;
#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "linux")]
mod net;
mod platform;
mod preload;
#[cfg(target_os = "linux")]
mod routes;
#[cfg(target_os = "linux")]
mod summary;
#[cfg(target_os = "linux")]
mod supervise;
mod sys;
#[cfg(target_os = "linux")]
mod tools;

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::Parser;
use config_schema::{Diagnostic, Policy};

use crate::preload::EnvChange;

#[cfg(target_os = "linux")]
use crate::launch::run_linux as run;
#[cfg(target_os = "linux")]
use crate::tools::run as run_tool;

#[cfg(target_os = "macos")]
use crate::macos::{run, run_tool};

/// Exit status when mifrun refuses to start the program.
const EXIT_REFUSED: u8 = 2;

/// A reason to stop before exec: one `mifrun: ` line, an optional indented hint.
struct Fail {
    code: u8,
    message: String,
    hint: Option<String>,
}

fn fail(message: impl Into<String>, hint: Option<&str>) -> Fail {
    Fail {
        code: EXIT_REFUSED,
        message: message.into(),
        hint: hint.map(str::to_owned),
    }
}

fn warn(message: &str) {
    eprintln!("mifrun: warning: {message}");
}

fn main() -> ExitCode {
    #[cfg(target_os = "linux")]
    sys::exec_as_is();
    let mut cli = cli::Cli::parse();
    if cli.tool.is_some() || cli.check {
        // They only print: a closed pipe ends them quietly (see default_sigpipe).
        sys::default_sigpipe();
    }
    if let Some(tool) = cli.tool.take() {
        return run_tool(tool);
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("mifrun: {}", f.message);
            if let Some(hint) = f.hint {
                eprintln!("  hint: {hint}");
            }
            ExitCode::from(f.code)
        }
    }
}

fn print_diagnostics(diags: &[Diagnostic]) {
    for d in diags {
        eprintln!("{d}");
    }
}

/// Validates `--policy`/`--via` into the effective policy, its absolute path and the
/// `--via` list as passed to the shim.
fn load_policy(cli: &cli::Cli) -> Result<(Policy, Option<PathBuf>, Option<String>), Fail> {
    load_policy_from(cli.via.as_deref(), cli.policy.as_deref())
}

/// [`load_policy`] from its two inputs (`--via`, `--policy`).
fn load_policy_from(
    via: Option<&str>,
    policy_file: Option<&Path>,
) -> Result<(Policy, Option<PathBuf>, Option<String>), Fail> {
    let invalid = |n: usize| fail(format!("{n} error(s) in the policy; nothing was run"), None);
    let mut policy = None;
    let mut policy_path = None;
    if let Some(path) = policy_file {
        match config_schema::load_policy_file(path) {
            Ok(loaded) => {
                print_diagnostics(&loaded.warnings);
                policy = Some(loaded.policy);
                policy_path = Some(path.canonicalize().map_err(|e| {
                    fail(
                        format!("cannot resolve the path of {}: {e}", path.display()),
                        None,
                    )
                })?);
            }
            Err(diags) => {
                print_diagnostics(&diags);
                return Err(invalid(diags.len()));
            }
        }
    }
    let mut via_env = None;
    if let Some(via) = via {
        let list = config_schema::parse_via_list(via, "--via").map_err(|diags| {
            print_diagnostics(&diags);
            invalid(diags.len())
        })?;
        via_env = Some(
            list.iter()
                .map(|i| i.as_str())
                .collect::<Vec<_>>()
                .join(","),
        );
        match &mut policy {
            Some(p) => p.override_via(list),
            None => policy = Some(Policy::from_via(list)),
        }
    }
    let policy = policy.ok_or_else(|| {
        fail(
            "one of --via or --policy is needed",
            Some(
                "e.g. `mifrun --via wlan0 -- PROGRAM` or `mifrun --policy policy.toml -- PROGRAM`",
            ),
        )
    })?;
    Ok((policy, policy_path, via_env))
}

#[cfg(target_os = "linux")]
/// Checks that every interface exists (or warns with `--allow-missing`) and warns
/// about interfaces without a default route.
fn check_interfaces(policy: &Policy, allow_missing: bool) -> Result<(), Fail> {
    let names = policy.interface_names();
    let missing: Vec<_> = names
        .iter()
        .filter(|n| !sys::interface_exists(n.as_str()))
        .collect();
    if !missing.is_empty() && !allow_missing {
        let (last, others) = missing.split_last().expect("not empty");
        for name in others {
            eprintln!("mifrun: network interface `{name}` does not exist");
        }
        return Err(fail(
            format!("network interface `{last}` does not exist"),
            Some("check `ip link`; pass --allow-missing for an interface that is plugged in later"),
        ));
    }
    for name in &missing {
        warn(&format!(
            "network interface `{name}` does not exist (continuing: --allow-missing)"
        ));
    }
    let Some(routes) = routes::read_default_routes() else {
        return Ok(());
    };
    // Loopback never has a default route and needs none (`--via lo` is for tests).
    for name in names
        .iter()
        .filter(|n| !missing.contains(n) && n.as_str() != "lo")
    {
        if !routes.has_any(name.as_str()) {
            warn(&format!(
                "interface `{name}` has no IPv4 or IPv6 default route in the main table; \
                 sockets bound to it (SO_BINDTODEVICE) reach only its directly connected networks"
            ));
            eprintln!(
                "  hint: add a default route via it with a higher metric \
                 (`ip route add default via GATEWAY dev {name} metric 600`) or route it with `ip rule`"
            );
        }
    }
    Ok(())
}

/// The `--dns` list checked and normalised (as MIFSHIM_DNS takes it), and the servers.
fn parse_dns(list: &str) -> Result<(String, Vec<std::net::SocketAddr>), Fail> {
    let mut servers = Vec::new();
    let mut bad = Vec::new();
    for s in list.split(',') {
        match config_schema::parse_server(s) {
            Ok(a) => servers.push(a),
            Err(e) => bad.push(e),
        }
    }
    if !bad.is_empty() {
        for b in &bad {
            eprintln!("--dns: {b}");
        }
        return Err(fail("invalid --dns; nothing was run", None));
    }
    Ok((
        list.split(',').map(str::trim).collect::<Vec<_>>().join(","),
        servers,
    ))
}

#[cfg(target_os = "linux")]
/// Warns about socket options this host or process cannot honour: a `source` that is
/// not one of this host's addresses (the shim checks it against the chosen interface
/// at each decision), a `mark` without `CAP_NET_ADMIN`/`CAP_NET_RAW`.
fn check_options(policy: &Policy) {
    let sets = policy.option_sets();
    for (place, o) in &sets {
        for ip in [o.source(false), o.source(true)].into_iter().flatten() {
            // Binding a throwaway socket is how to ask whether an address is local.
            if let Err(e) = std::net::UdpSocket::bind((ip, 0)) {
                if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) {
                    warn(&format!(
                        "{place}: source {ip} is not an address of this host now; the kernel will choose the source until an interface has it"
                    ));
                }
            }
        }
    }
    let marks = sets.iter().any(|(_, o)| o.mark.is_some_and(|m| m != 0));
    if marks && !sys::may_set_mark() {
        warn(&format!(
            "the policy sets a mark (SO_MARK), which needs CAP_NET_ADMIN or CAP_NET_RAW; this process has neither, so marked sockets {}",
            match policy.base.on_mark_denied {
                config_schema::OnMarkDenied::Block =>
                    "will fail with EPERM (on_mark_denied = \"block\")",
                config_schema::OnMarkDenied::Continue =>
                    "go out unmarked (on_mark_denied = \"continue\")",
            }
        ));
    }
}

fn find_library() -> Result<PathBuf, Fail> {
    let exe = std::env::current_exe()
        .and_then(|e| e.canonicalize())
        .map_err(|e| fail(format!("cannot find the mifrun executable: {e}"), None))?;
    let library = preload::find_library(&exe).map_err(|e| {
        fail(
            e.to_string(),
            Some("install libmifshim.so next to mifrun or in ../lib/mifshim/ relative to it"),
        )
    })?;
    // The preloaded stub loads its engine from its own directory on the first socket
    // decision; without it every steered call would fail closed.
    let engine = preload::engine_path(&library);
    if !engine.is_file() {
        return Err(fail(
            format!("{} is missing (libmifshim.so loads it)", engine.display()),
            Some("install libmifshim_engine.so in the same directory as libmifshim.so"),
        ));
    }
    Ok(library)
}

/// The program's command: its path, `argv[0]` as given, the environment changes.
fn command(resolved: &Path, command: &[OsString], changes: &[EnvChange]) -> Command {
    let mut cmd = Command::new(resolved);
    cmd.arg0(&command[0]).args(&command[1..]);
    for change in changes {
        match change {
            EnvChange::Set(k, v) => cmd.env(k, v),
            EnvChange::Unset(k) => cmd.env_remove(k),
        };
    }
    cmd
}

fn exec_failed(resolved: &Path, err: std::io::Error) -> Fail {
    Fail {
        code: if err.kind() == std::io::ErrorKind::NotFound {
            127
        } else {
            126
        },
        message: format!("cannot execute {}: {err}", resolved.display()),
        hint: None,
    }
}
