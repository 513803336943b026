//! `--check`: the human summary of the effective policy and of the exec plan.

use std::ffi::{OsStr, OsString};

use crate::inspect;
use crate::preload::{self, EnvChange};

/// Prints the summary to standard output.
pub fn print(
    policy: &config_schema::Policy,
    inspection: Option<&inspect::Inspection>,
    plan: &preload::EnvPlan,
    command: &[OsString],
) {
    println!("Effective policy:");
    for line in policy.summary().lines() {
        println!("  {line}");
    }
    println!("Program:");
    match inspection {
        None => println!("  (none given)"),
        Some(ins) => {
            for step in &ins.chain {
                println!("  {step}");
            }
            if ins.blockers.is_empty() {
                println!("  steerable by the preload library");
            }
            for b in &ins.blockers {
                println!("  NOT steerable: {b}");
            }
        }
    }
    println!("Exec plan:");
    for change in &plan.changes {
        match change {
            EnvChange::Set(k, v) => println!("  set {k}={}", v.to_string_lossy()),
            EnvChange::Unset(k) => println!("  unset {k}"),
        }
    }
    if let (Some(ins), Some((argv0, args))) = (inspection, command.split_first()) {
        let quoted: Vec<String> = std::iter::once(argv0.as_os_str())
            .chain(args.iter().map(OsString::as_os_str))
            .map(|a: &OsStr| format!("{:?}", a))
            .collect();
        println!(
            "  exec {} with argv [{}]",
            ins.resolved.display(),
            quoted.join(", ")
        );
    }
    println!("--check: nothing was run.");
}
