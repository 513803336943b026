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
#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "linux")]
mod net;
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
#[cfg(target_os = "linux")]
use config_schema::LogLevel;
use config_schema::{Diagnostic, Policy};

use crate::preload::EnvChange;

#[cfg(target_os = "linux")]
use crate::tools::run as run_tool;
#[cfg(target_os = "linux")]
use run_linux as run;

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

/// The Linux run: inspect, compose `LD_PRELOAD`, guard, supervise or exec.
#[cfg(target_os = "linux")]
fn run_linux(cli: cli::Cli) -> Result<(), Fail> {
    let (policy, policy_path, via) = load_policy(&cli)?;
    check_interfaces(&policy, cli.allow_missing)?;
    check_options(&policy);
    let library = find_library()?;

    let path_var = std::env::var_os("PATH");
    let inspection = match cli.command.first() {
        Some(program) => {
            let lib_abi = inspect::library_abi(&library);
            if lib_abi.is_none() {
                warn(&format!("{} is not a readable ELF file", library.display()));
            }
            let ins = inspect::inspect(program, path_var.as_deref(), lib_abi, sys::creds())
                .map_err(|e| Fail {
                    code: e.code,
                    message: e.message,
                    hint: e.hint,
                })?;
            for note in &ins.notes {
                warn(note);
            }
            Some(ins)
        }
        None => None,
    };
    let supervised = supervise::choose(&cli, inspection.as_ref())?;
    let mut refusal = None;
    if let Some(ins) = &inspection
        && supervised.is_none()
        && !ins.blockers.is_empty()
    {
        let program = Path::new(&cli.command[0]).display().to_string();
        let describe = |b: &inspect::Blocker| {
            if b.path() == Some(ins.resolved.as_path()) {
                b.to_string()
            } else {
                format!("{b} (it is what {program} runs)")
            }
        };
        if cli.allow_unsteered {
            for b in &ins.blockers {
                warn(&format!(
                    "running {program} UNSTEERED (--allow-unsteered): {}",
                    describe(b)
                ));
            }
        } else {
            let (last, others) = ins.blockers.split_last().expect("not empty");
            for b in others {
                eprintln!("mifrun: {}", describe(b));
            }
            refusal = Some(fail(
                describe(last),
                Some(
                    "the shim cannot steer it, so nothing was run; pass --allow-unsteered to run it anyway, unsteered",
                ),
            ));
        }
    }
    if !cli.check
        && let Some(refusal) = refusal.take()
    {
        return Err(refusal);
    }

    let ld_preload = preload::compose_preload(
        std::env::var_os(preload::PRELOAD_VAR).as_deref(),
        &library,
        |entry| Path::new(entry).canonicalize().is_ok_and(|c| c == library),
    );
    let log = cli.log.as_deref().map(|l| {
        l.parse::<LogLevel>()
            .map_or_else(|_| l.to_owned(), |l| l.to_string())
    });
    let log_file = match &cli.log_file {
        Some(f) => Some(
            std::path::absolute(f)
                .map_err(|e| fail(format!("--log-file {}: {e}", f.display()), None))?,
        ),
        None => None,
    };
    let dns = match &cli.dns {
        None => None,
        Some(list) => Some(parse_dns(list)?.0),
    };
    let dns_servers = match &cli.dns {
        Some(list) => parse_dns(list)?.1,
        None => Vec::new(),
    };
    for (w, hint) in tools::dns_warnings(&policy, policy_path.as_deref(), &dns_servers) {
        warn(&w);
        eprintln!("  hint: {hint}");
    }
    let settings = preload::Settings {
        ld_preload,
        via,
        policy: policy_path,
        log,
        log_file,
        dns,
    };
    let mut plan = preload::env_plan(&settings, |name| std::env::var_os(name));
    let supervise = cli.summary || !cli.fail_on.is_empty();
    let events = if cli.check {
        None
    } else {
        summary::prepare(cli.events.as_deref(), supervise).map_err(|m| fail(m, None))?
    };
    if let Some(path) = events.as_ref().map(|e| e.path.clone()).or_else(|| {
        cli.events
            .as_deref()
            .and_then(|p| std::path::absolute(p).ok())
    }) {
        plan.changes.push(EnvChange::Set(
            config_schema::env::EVENTS,
            path.into_os_string(),
        ));
    }
    for w in &plan.warnings {
        warn(w);
    }

    let guard_plan = match cli.guard {
        false => None,
        true => Some(
            guard::Plan::from_policy(&policy)
                .map_err(|e| fail(format!("--guard: {e}"), Some("nothing was run")))?,
        ),
    };
    if cli.check {
        supervise::print_mode(supervised.as_deref());
        check::print(&policy, inspection.as_ref(), &plan, &cli.command);
        if let Some(g) = &guard_plan {
            println!("\n# --guard: nftables rules for the run's cgroup (mifshim/guard-PID)");
            print!(
                "{}",
                guard::script(g, "mifshim_guard_PID", "mifshim/guard-PID", 2)
            );
        }
        return refusal.map_or(Ok(()), Err);
    }
    let ins = inspection.expect("PROGRAM is required without --check");
    if cli.fail_on.iter().any(|c| c == "dropped") && guard_plan.is_none() {
        return Err(fail(
            "--fail-on dropped needs --guard (only the guard drops packets)",
            Some("nothing was run"),
        ));
    }
    let mut guard = None;
    if let Some(g) = &guard_plan {
        // mifrun itself joins the guarded cgroup: the program it execs, or runs as a
        // child (--summary / --fail-on), and everything that program starts are in it.
        let gd = guard::Guard::setup(g, std::process::id())
            .map_err(|e| fail(e, None))?
            .with_events(
                cli.events
                    .as_deref()
                    .and_then(|p| std::path::absolute(p).ok()),
            );
        if let Err(e) = gd.spawn_reaper() {
            gd.remove();
            return Err(fail(e, Some("nothing was run")));
        }
        guard = Some(gd);
    }
    if let Some(why) = &supervised {
        // The supervisor appends its decisions to the events file the preload (in
        // dynamic programs under it) writes to: `--events`, or --summary's own.
        let events_path = events
            .as_ref()
            .map(|e| e.path.clone())
            .or_else(|| {
                cli.events
                    .as_deref()
                    .and_then(|p| std::path::absolute(p).ok())
            })
            // MIFSHIM_EVENTS exported by the user: the preload in dynamic children
            // writes there, so the supervisor does too.
            .or_else(|| {
                std::env::var_os(config_schema::env::EVENTS)
                    .filter(|p| !p.is_empty())
                    .map(PathBuf::from)
            });
        let exit = supervise::run(
            &ins.resolved,
            &cli.command,
            &plan.changes,
            &policy,
            &dns_servers,
            cli.log.as_deref(),
            why,
            events_path.as_deref(),
        )?;
        match &events {
            Some(ev) if supervise => {
                let end = match exit {
                    mifshim_supervisor::Exit::Code(c) => sys::child::End::Exited(c),
                    mifshim_supervisor::Exit::Signal(signal) => sys::child::End::Signaled {
                        signal,
                        core: false,
                    },
                };
                summary::finish(ev, end, cli.summary, &cli.fail_on, guard.as_ref())
            }
            _ => exit.exit(),
        }
    }
    let mut cmd = command(&ins.resolved, &cli.command, &plan.changes);
    let err = match &events {
        // --summary / --fail-on: a child, waited for; returns only if it cannot start.
        Some(ev) if supervise => {
            summary::run(&mut cmd, ev, cli.summary, &cli.fail_on, guard.as_ref())
        }
        // Replaces this process with the program; returns only on failure.
        _ => cmd.exec(),
    };
    Err(exec_failed(&ins.resolved, err))
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
