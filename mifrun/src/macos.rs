//! `mifrun` on macOS: the same order of work as the Linux run (validate the policy,
//! check the interfaces, find the library, inspect the program, compose the
//! environment, `exec`), with macOS's mechanisms: `libmifshim.dylib` through
//! `DYLD_INSERT_LIBRARIES`, and the inspection of what SIP, AMFI and dyld will refuse
//! (`inspect::dyld`). What is Linux's alone (`--guard`, `--supervise`, the events
//! file and `status`/`explain`/`doctor`, which read rtnetlink; a policy's `[dns]
//! redirect`, `platform::linux_only_setting`) is refused with the reason, never
//! silently ignored.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::ExitCode;

use config_schema::{LogLevel, Policy};

use crate::cli::{Cli, Tool};
use crate::inspect::dyld::{self, Host, MacContext};
use crate::inspect::{self, Target, macho};
use crate::preload::{self, PRELOAD_VAR};
use crate::{Fail, command, exec_failed, fail, find_library, load_policy, parse_dns, sys, warn};

/// `mifrun status|explain|doctor` on macOS.
pub fn run_tool(tool: Tool) -> ExitCode {
    // The schema, completions and manual pages are the same on every system.
    let generated = match tool {
        Tool::Schema => Some(crate::assets::schema()),
        Tool::Completions { ref shell } => Some(crate::assets::completions(shell)),
        Tool::Manpages { ref dir } => Some(crate::assets::manpages(dir)),
        _ => None,
    };
    if let Some(r) = generated {
        return match r {
            Ok(code) => ExitCode::from(code),
            Err(f) => {
                eprintln!("mifrun: {}", f.message);
                if let Some(hint) = f.hint {
                    eprintln!("  hint: {hint}");
                }
                ExitCode::from(f.code)
            }
        };
    }
    let name = match tool {
        Tool::Status(_) => "status",
        Tool::Explain(_) => "explain",
        Tool::Doctor(_) => "doctor",
        Tool::SourceRules(_) => "source-rules",
        Tool::Resolve { .. } => "resolve",
        Tool::Schema | Tool::Completions { .. } | Tool::Manpages { .. } => unreachable!(),
    };
    eprintln!(
        "mifrun: `mifrun {name}` is Linux-only for now: it reads interfaces and routes over rtnetlink; the macOS build has getifaddrs and the routing socket in the engine, not yet in mifrun"
    );
    ExitCode::from(crate::EXIT_REFUSED)
}

/// Whether every named interface exists (`if_nametoindex`); `--allow-missing` warns.
fn check_interfaces(policy: &Policy, allow_missing: bool) -> Result<(), Fail> {
    let names = policy.interface_names();
    let missing: Vec<_> = names
        .iter()
        .filter(|n| !sys::interface_exists(n.as_str()))
        .collect();
    if let Some((last, others)) = missing.split_last() {
        if !allow_missing {
            for name in others {
                eprintln!("mifrun: network interface `{name}` does not exist");
            }
            return Err(fail(
                format!("network interface `{last}` does not exist"),
                Some(
                    "check `ifconfig -l` or `networksetup -listallhardwareports`; pass --allow-missing for an interface that is plugged in later",
                ),
            ));
        }
        for name in &missing {
            warn(&format!(
                "network interface `{name}` does not exist (continuing: --allow-missing)"
            ));
        }
    }
    Ok(())
}

/// Warns about policy options macOS cannot honour.
fn check_options(policy: &Policy) {
    for (place, o) in &policy.option_sets() {
        if o.mark.is_some_and(|m| m != 0) {
            warn(&format!(
                "{place}: `mark` is SO_MARK, which macOS does not have; marked sockets follow on_mark_denied"
            ));
        }
        for ip in [o.source(false), o.source(true)].into_iter().flatten() {
            if let Err(e) = std::net::UdpSocket::bind((ip, 0))
                && e.raw_os_error() == Some(libc::EADDRNOTAVAIL)
            {
                warn(&format!(
                    "{place}: source {ip} is not an address of this host now; the kernel will choose the source until an interface has it"
                ));
            }
        }
    }
}

/// The macOS run.
pub fn run(cli: Cli) -> Result<(), Fail> {
    if let Some((option, why)) = cli.linux_only_option() {
        return Err(fail(
            format!("{option} is Linux-only: {why}"),
            Some("nothing was run"),
        ));
    }
    let (policy, policy_path, via) = load_policy(&cli)?;
    if let Some((setting, why)) = crate::platform::linux_only_setting(&policy) {
        return Err(fail(
            format!("the policy's {setting} is Linux-only: {why}"),
            Some("nothing was run; remove it (or set it to false) to run on macOS"),
        ));
    }
    check_interfaces(&policy, cli.allow_missing)?;
    check_options(&policy);
    let library = find_library()?;
    let parsed_library = std::fs::File::open(&library)
        .ok()
        .and_then(|f| macho::parse_macho(&f).ok());
    match &parsed_library {
        None => warn(&format!(
            "{} is not a readable Mach-O file",
            library.display()
        )),
        Some(lib) => {
            for note in dyld::library_notes(&library, lib) {
                warn(&note);
            }
        }
    }
    let cx = MacContext {
        host: Host::current(),
        sip: sys::sip_enabled(),
        library: parsed_library,
    };

    let path_var = std::env::var_os("PATH");
    let inspection = match cli.command.first() {
        Some(program) => {
            let ins = inspect::inspect_for(
                program,
                path_var.as_deref(),
                &Target::MacOs(cx),
                sys::creds(),
            )
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
    let mut refusal = None;
    if let Some(ins) = &inspection
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
            for b in &ins.blockers {
                eprintln!("mifrun: {}", describe(b));
                if let Some(r) = dyld::remedy(b) {
                    eprintln!("  what would work: {r}");
                }
            }
            refusal = Some(fail(
                format!("{program} cannot be steered on macOS; nothing was run"),
                Some("pass --allow-unsteered to run it anyway, unsteered"),
            ));
        }
    }
    if !cli.check
        && let Some(refusal) = refusal.take()
    {
        return Err(refusal);
    }

    let inserted = preload::compose_preload(
        std::env::var_os(PRELOAD_VAR).as_deref(),
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
    let settings = preload::Settings {
        ld_preload: inserted,
        via,
        policy: policy_path,
        log,
        log_file,
        dns,
    };
    let plan = preload::env_plan(&settings, |name| std::env::var_os(name));
    for w in &plan.warnings {
        warn(w);
    }
    if cli.check {
        println!("Mode: preload ({})", library.display());
        crate::check::print(&policy, inspection.as_ref(), &plan, &cli.command);
        println!("Note: {}", preload::DYLD_SURVIVAL);
        return refusal.map_or(Ok(()), Err);
    }
    let ins = inspection.expect("PROGRAM is required without --check");
    if matches!(cli.log.as_deref(), Some("info" | "debug")) {
        eprintln!("mifrun: note: {}", preload::DYLD_SURVIVAL);
    }
    let err = command(&ins.resolved, &cli.argv(), &plan.changes).exec();
    Err(exec_failed(&ins.resolved, err))
}
