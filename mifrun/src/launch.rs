//! The Linux run, in the order of its steps: load and check the policy, find the
//! library, inspect the program (refuse what a preload cannot steer), compose the
//! environment, set up `--events`/`--guard`, then `--check`'s report, the supervisor,
//! or `exec`.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use config_schema::{LogLevel, Policy};

use crate::cli::Cli;
use crate::preload::{self, EnvChange, EnvPlan};
use crate::{
    Fail, check, check_interfaces, check_options, command, exec_failed, fail, find_library, guard,
    inspect, load_policy, parse_dns, summary, supervise, sys, tools, warn,
};

/// The Linux run: inspect, compose `LD_PRELOAD`, guard, supervise or exec.
pub(crate) fn run_linux(cli: Cli) -> Result<(), Fail> {
    let (policy, policy_path, via) = load_policy(&cli)?;
    check_interfaces(&policy, cli.allow_missing)?;
    check_options(&policy);
    let library = find_library()?;
    let inspection = inspect_program(&cli, &library)?;
    let supervised = supervise::choose(&cli, inspection.as_ref())?;
    let mut refusal = match &inspection {
        Some(ins) if supervised.is_none() && !ins.blockers.is_empty() => refuse_blockers(&cli, ins),
        _ => None,
    };
    if !cli.check
        && let Some(refusal) = refusal.take()
    {
        return Err(refusal);
    }
    let (mut plan, dns_servers) = environment(&cli, &policy, policy_path, via, &library)?;
    exec_environment(inspection.as_ref(), &library, &mut plan);
    let supervise = cli.summary || !cli.fail_on.is_empty();
    let events = events_file(&cli, &mut plan, supervise)?;
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
        print_check(
            &policy,
            inspection.as_ref(),
            &plan,
            &cli,
            guard_plan.as_ref(),
        );
        return refusal.map_or(Ok(()), Err);
    }
    let ins = inspection.expect("PROGRAM is required without --check");
    if cli.fail_on.iter().any(|c| c == "dropped") && guard_plan.is_none() {
        return Err(fail(
            "--fail-on dropped needs --guard (only the guard drops packets)",
            Some("nothing was run"),
        ));
    }
    let guard = match &guard_plan {
        Some(g) => Some(start_guard(&cli, g)?),
        None => None,
    };
    let run = Run {
        cli: &cli,
        ins: &ins,
        plan: &plan,
        events: events.as_ref(),
        guard: guard.as_ref(),
        supervise,
    };
    if let Some(why) = &supervised {
        return Err(run_supervised(&run, &policy, &dns_servers, why));
    }
    Err(exec_program(&run))
}

/// The program inspected (`None` without one, for `--check`): what it is, what it
/// loads, and what would keep the preload from steering it; its notes are warned.
fn inspect_program(cli: &Cli, library: &Path) -> Result<Option<inspect::Inspection>, Fail> {
    let Some(program) = cli.command.first() else {
        return Ok(None);
    };
    let lib_abi = inspect::library_abi(library);
    if lib_abi.is_none() {
        warn(&format!("{} is not a readable ELF file", library.display()));
    }
    let path_var = std::env::var_os("PATH");
    let ins =
        inspect::inspect(program, path_var.as_deref(), lib_abi, sys::creds()).map_err(|e| {
            Fail {
                code: e.code,
                message: e.message,
                hint: e.hint,
            }
        })?;
    for note in &ins.notes {
        warn(note);
    }
    Ok(Some(ins))
}

/// A program the preload cannot steer (`ins.blockers`, not empty) and no supervisor:
/// warned about and run anyway with `--allow-unsteered` (`None`), else the refusal
/// (every blocker but the last printed first).
fn refuse_blockers(cli: &Cli, ins: &inspect::Inspection) -> Option<Fail> {
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
        return None;
    }
    let (last, others) = ins.blockers.split_last().expect("not empty");
    for b in others {
        eprintln!("mifrun: {}", describe(b));
    }
    Some(fail(
        describe(last),
        Some(
            "the shim cannot steer it, so nothing was run; pass --allow-unsteered to run it anyway, unsteered",
        ),
    ))
}

/// The program's environment (`LD_PRELOAD` composed, the shim's variables from the
/// command line and the policy) and the `--dns` servers; the DNS warnings are printed.
fn environment(
    cli: &Cli,
    policy: &Policy,
    policy_path: Option<PathBuf>,
    via: Option<String>,
    library: &Path,
) -> Result<(EnvPlan, Vec<SocketAddr>), Fail> {
    let ld_preload = preload::compose_preload(
        std::env::var_os(preload::PRELOAD_VAR).as_deref(),
        library,
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
    let (dns, dns_servers) = match &cli.dns {
        None => (None, Vec::new()),
        Some(list) => {
            let (normalised, servers) = parse_dns(list)?;
            (Some(normalised), servers)
        }
    };
    for (w, hint) in tools::dns_warnings(policy, policy_path.as_deref(), &dns_servers) {
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
    Ok((
        preload::env_plan(&settings, |name| std::env::var_os(name)),
        dns_servers,
    ))
}

/// The environment of a run, beyond the preload's variables: a program linked for
/// another loader than glibc's (musl…) gets no `LD_PRELOAD` of ours, not even an
/// inherited one (its loader cannot load the library: status 127); every program
/// learns where this mifrun is (`MIFSHIM_MIFRUN`), so that the preload's exec hooks
/// can run what it cannot steer, exec'ed anywhere below, under this mifrun's
/// supervisor; and only the supervisor marks its program as supervised
/// (`MIFSHIM_SUPERVISED`, `supervise::run`).
fn exec_environment(ins: Option<&inspect::Inspection>, library: &Path, plan: &mut EnvPlan) {
    if ins.is_some_and(|i| {
        i.blockers
            .iter()
            .any(|b| matches!(b, inspect::Blocker::ForeignLoader { .. }))
    }) {
        let change = preload::without_ours(
            std::env::var_os(preload::PRELOAD_VAR).as_deref(),
            library,
            |entry| Path::new(entry).canonicalize().is_ok_and(|c| c == library),
        );
        plan.changes
            .retain(|c| !matches!(c, EnvChange::Set(k, _) if *k == preload::PRELOAD_VAR));
        plan.changes.push(change);
    }
    plan.changes
        .push(EnvChange::Unset(config_schema::env::SUPERVISED));
    if let Ok(exe) = std::env::current_exe().and_then(|e| e.canonicalize()) {
        plan.changes.push(EnvChange::Set(
            config_schema::env::MIFRUN,
            exe.into_os_string(),
        ));
    }
}

/// `--events` (or `--summary`/`--fail-on`'s own file, read afterwards: `supervise`),
/// prepared and exported to the program (`MIFSHIM_EVENTS`). None with `--check`.
fn events_file(
    cli: &Cli,
    plan: &mut EnvPlan,
    supervise: bool,
) -> Result<Option<summary::Events>, Fail> {
    let events = if cli.check {
        None
    } else {
        summary::prepare(cli.events.as_deref(), supervise).map_err(|m| fail(m, None))?
    };
    if let Some(path) = events
        .as_ref()
        .map(|e| e.path.clone())
        .or_else(|| events_arg(cli))
    {
        plan.changes.push(EnvChange::Set(
            config_schema::env::EVENTS,
            path.into_os_string(),
        ));
    }
    Ok(events)
}

/// `--events`, made absolute.
fn events_arg(cli: &Cli) -> Option<PathBuf> {
    cli.events
        .as_deref()
        .and_then(|p| std::path::absolute(p).ok())
}

/// `--check`'s report: the policy, the program, the environment, and `--guard`'s rules.
fn print_check(
    policy: &Policy,
    ins: Option<&inspect::Inspection>,
    plan: &EnvPlan,
    cli: &Cli,
    guard_plan: Option<&guard::Plan>,
) {
    check::print(policy, ins, plan, &cli.command);
    if let Some(g) = guard_plan {
        println!("\n# --guard: nftables rules for the run's cgroup (mifshim/guard-PID)");
        print!(
            "{}",
            guard::script(g, "mifshim_guard_PID", "mifshim/guard-PID", 2)
        );
    }
}

/// `--guard`: mifrun itself joins the guarded cgroup, so the program it execs, or runs
/// as a child (--summary / --fail-on), and everything that program starts are in it;
/// the reaper removes the rules afterwards.
fn start_guard(cli: &Cli, g: &guard::Plan) -> Result<guard::Guard, Fail> {
    let gd = guard::Guard::setup(g, std::process::id())
        .map_err(|e| fail(e, None))?
        .with_events(events_arg(cli));
    if let Err(e) = gd.spawn_reaper() {
        gd.remove();
        return Err(fail(e, Some("nothing was run")));
    }
    Ok(gd)
}

/// What the last step runs with.
struct Run<'a> {
    cli: &'a Cli,
    ins: &'a inspect::Inspection,
    plan: &'a EnvPlan,
    events: Option<&'a summary::Events>,
    guard: Option<&'a guard::Guard>,
    /// `--summary` / `--fail-on`: the program is a child, waited for.
    supervise: bool,
}

/// Runs the program under the supervisor (`why`: the reason it is supervised) and
/// ends mifrun as the program ended; returns only if it could not be run.
fn run_supervised(run: &Run<'_>, policy: &Policy, dns_servers: &[SocketAddr], why: &str) -> Fail {
    let cli = run.cli;
    // The supervisor appends its decisions to the events file the preload (in
    // dynamic programs under it) writes to: `--events`, or --summary's own.
    let events_path = run
        .events
        .map(|e| e.path.clone())
        .or_else(|| events_arg(cli))
        // MIFSHIM_EVENTS exported by the user: the preload in dynamic children
        // writes there, so the supervisor does too.
        .or_else(|| {
            std::env::var_os(config_schema::env::EVENTS)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
        });
    let exit = match supervise::run(
        &run.ins.resolved,
        &cli.argv(),
        &run.plan.changes,
        policy,
        dns_servers,
        cli.log.as_deref(),
        why,
        events_path.as_deref(),
    ) {
        Ok(exit) => exit,
        Err(f) => return f,
    };
    match run.events {
        Some(ev) if run.supervise => {
            let end = match exit {
                mifshim_supervisor::Exit::Code(c) => sys::child::End::Exited(c),
                mifshim_supervisor::Exit::Signal(signal) => sys::child::End::Signaled {
                    signal,
                    core: false,
                },
            };
            summary::finish(ev, end, cli.summary, &cli.fail_on, run.guard)
        }
        _ => exit.exit(),
    }
}

/// Replaces this process with the program, or (--summary / --fail-on) runs it as a
/// child and ends as it ended; returns only if it cannot start.
fn exec_program(run: &Run<'_>) -> Fail {
    let cli = run.cli;
    let mut cmd = command(&run.ins.resolved, &cli.argv(), &run.plan.changes);
    let err = match run.events {
        Some(ev) if run.supervise => {
            summary::run(&mut cmd, ev, cli.summary, &cli.fail_on, run.guard)
        }
        _ => cmd.exec(),
    };
    exec_failed(&run.ins.resolved, err)
}
