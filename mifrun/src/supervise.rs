//! `--supervise` / `--preload-only`: whether the program runs under the seccomp
//! supervisor (crate `mifshim-supervisor`), and mifrun's side of it: the interface
//! snapshot, route lookups and DNS servers, read by the same code `mifrun status`
//! uses.

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use config_schema::{IfName, LogLevel, Policy, Profile};
use mifshim_supervisor::{Host, Snapshot};

use crate::cli::Cli;
use crate::inspect::{Blocker, Inspection};
use crate::preload::EnvChange;
use crate::{Fail, fail};

/// What the supervisor can steer that the preload cannot.
pub fn covers(b: &Blocker) -> bool {
    matches!(
        b,
        Blocker::Static { .. }
            | Blocker::Go { .. }
            | Blocker::ForeignLoader { .. }
            | Blocker::EnvClearsEnvironment { .. }
    )
}

/// `Some(why)` when the program runs under the supervisor.
pub fn choose(cli: &Cli, ins: Option<&Inspection>) -> Result<Option<String>, Fail> {
    let blockers = ins.map_or(&[][..], |i| i.blockers.as_slice());
    let uncovered: Vec<&Blocker> = blockers.iter().filter(|b| !covers(b)).collect();
    if cli.supervise {
        if let Some(b) = uncovered.first() {
            return Err(fail(
                format!(
                    "{b}; under --supervise (no_new_privs) it cannot gain its privileges or be steered either"
                ),
                Some("nothing was run"),
            ));
        }
        return Ok(Some("--supervise".into()));
    }
    if cli.preload_only || cli.allow_unsteered || blockers.is_empty() || !uncovered.is_empty() {
        return Ok(None);
    }
    let why: Vec<String> = blockers.iter().map(|b| b.to_string()).collect();
    Ok(Some(why.join("; ")))
}

/// The `--check` line saying which enforcement runs.
pub fn print_mode(supervised: Option<&str>) {
    match supervised {
        Some(why) => println!(
            "Mode: supervisor (seccomp user notification; the program's socket calls are decided by mifrun): {why}"
        ),
        None => println!("Mode: preload (libmifshim.so)"),
    }
}

struct NetHost {
    cfg: crate::tools::Config,
}

impl Host for NetHost {
    fn snapshot(&mut self) -> std::io::Result<Snapshot> {
        let net = crate::net::Net::read()?;
        let loopback = net
            .links
            .iter()
            .find(|l| l.flags & libc::IFF_LOOPBACK as u32 != 0)
            .map_or(1, |l| l.index);
        Ok(Snapshot {
            ifaces: net
                .links
                .iter()
                .map(|l| (l.name.clone(), net.state(l)))
                .collect(),
            addrs: net.addrs.iter().map(|a| (a.ip, a.index)).collect(),
            onlink: net
                .addrs
                .iter()
                .map(|a| (a.index, a.onlink, a.prefix))
                .collect(),
            loopback,
            sources: net
                .addrs
                .iter()
                .filter(|a| config_schema::sysdns::address_kind(a.ip, a.scope, a.flags).is_some())
                .map(|a| (a.index, a.ip))
                .collect(),
        })
    }

    fn route_oif(&mut self, dest: IpAddr) -> Option<u32> {
        crate::sys::netlink::route_get(dest, None, None, None)
            .ok()
            .and_then(|l| l.oif)
    }

    fn dns_servers(&mut self, profile: &Profile, name: &str, index: u32) -> Vec<SocketAddr> {
        let Ok(name) = name.parse::<IfName>() else {
            return Vec::new();
        };
        crate::tools::Dns::find(&self.cfg, profile, &name, index).servers
    }
}

/// Runs the program under the supervisor and returns how it ended (`Err`: nothing
/// could be run). `events`: the events file the supervisor appends its decisions to.
#[allow(clippy::too_many_arguments)]
pub fn run(
    resolved: &Path,
    command: &[OsString],
    changes: &[EnvChange],
    policy: &Policy,
    dns: &[SocketAddr],
    log: Option<&str>,
    why: &str,
    events: Option<&Path>,
) -> Result<mifshim_supervisor::Exit, Fail> {
    // --log, else MIFSHIM_LOG as the preload reads it.
    let env_log = std::env::var(config_schema::env::LOG).ok();
    let log = log
        .or(env_log.as_deref())
        .and_then(|l| l.parse::<LogLevel>().ok())
        .unwrap_or_default();
    if log >= LogLevel::Info {
        eprintln!(
            "mifrun: info: supervising {} (seccomp user notification): {why}",
            resolved.display()
        );
    }
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    for c in changes {
        match c {
            EnvChange::Set(k, v) => {
                env.retain(|(n, _)| n != k);
                env.push(((*k).into(), v.clone()));
            }
            EnvChange::Unset(k) => env.retain(|(n, _)| n != k),
        }
    }
    // The preload's exec hooks in the program's tree: what they cannot steer is
    // exec'ed as is, under this supervisor's inherited filter (supervisors do not nest).
    env.retain(|(n, _)| n != config_schema::env::SUPERVISED);
    env.push((config_schema::env::SUPERVISED.into(), "1".into()));
    let mut host = NetHost {
        cfg: crate::tools::Config {
            policy: policy.clone(),
            policy_path: None,
            via_env: None,
            dns_env: None,
            dns: dns.to_vec(),
            origin: String::new(),
            found: true,
        },
    };
    let run = mifshim_supervisor::Run {
        program: resolved,
        argv: command,
        env: &env,
        policy,
        log,
        stats: std::env::var_os("MIFRUN_SUPERVISOR_STATS").is_some_and(|v| v == "1"),
        events,
    };
    mifshim_supervisor::run(&run, &mut host).map_err(|e| fail(e, Some("nothing was run")))
}
