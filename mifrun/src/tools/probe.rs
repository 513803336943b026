//! Real name lookups through the shim: mifrun runs itself (`mifrun __resolve NAME`)
//! with `libmifshim.so` preloaded and the configuration under test, so the lookup is
//! made by the very resolver a program would get (its servers, its sockets bound to
//! the link, systemd-resolved when the shim would ask it), and the shim's own log
//! lines say what it did.

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};

use serde_json::{Value, json};

use super::Config;
use crate::preload::{self, EnvChange};
use crate::{Fail, fail};

/// The hidden `__resolve NAME`: getaddrinfo, the result as one JSON line.
pub fn child(name: &str) -> ExitCode {
    let v = match crate::sys::getaddrinfo(name) {
        Ok(addrs) => json!({"addrs": addrs.iter().map(IpAddr::to_string).collect::<Vec<_>>()}),
        Err((code, message)) => json!({"code": code, "error": message}),
    };
    println!("{v}");
    ExitCode::SUCCESS
}

/// What a lookup under the shim gave.
#[derive(Debug)]
pub struct Lookup {
    pub answer: Result<Vec<IpAddr>, (i32, String)>,
    /// The shim's log lines (debug level), without their `mifshim[…]` prefix.
    pub log: Vec<String>,
}

impl Lookup {
    pub fn json(&self) -> Value {
        match &self.answer {
            Ok(a) => json!({
                "ok": true,
                "addresses": a.iter().map(IpAddr::to_string).collect::<Vec<_>>(),
                "shim_log": self.log,
            }),
            Err((code, msg)) => json!({
                "ok": false,
                "eai": eai_name(*code),
                "error": msg,
                "shim_log": self.log,
            }),
        }
    }

    /// Did a server answer (addresses, or "no such name" / "no address")?
    pub fn answered(&self) -> bool {
        match &self.answer {
            Ok(_) => true,
            Err((code, _)) => *code == libc::EAI_NONAME || *code == libc::EAI_NODATA,
        }
    }
}

pub fn eai_name(code: i32) -> &'static str {
    match code {
        libc::EAI_AGAIN => "EAI_AGAIN",
        libc::EAI_NONAME => "EAI_NONAME",
        libc::EAI_NODATA => "EAI_NODATA",
        libc::EAI_FAIL => "EAI_FAIL",
        libc::EAI_FAMILY => "EAI_FAMILY",
        -9 => "EAI_ADDRFAMILY",
        libc::EAI_SYSTEM => "EAI_SYSTEM",
        _ => "EAI_?",
    }
}

/// The environment a program run by mifrun with `cfg` gets, plus debug logging.
fn env_for(cfg: &Config) -> Result<Vec<EnvChange>, Fail> {
    let library = crate::find_library()?;
    let settings = preload::Settings {
        ld_preload: preload::compose_ld_preload(None, &library, |_| false),
        via: cfg.via_env.clone(),
        policy: cfg.policy_path.clone(),
        log: Some("debug".into()),
        log_file: None,
        dns: cfg.dns_env.clone(),
    };
    let mut changes = preload::env_plan(&settings, |n| std::env::var_os(n)).changes;
    changes.push(EnvChange::Unset("MIFSHIM_LOG_FILE"));
    changes.push(EnvChange::Unset("MIFSHIM_DISABLE"));
    Ok(changes)
}

/// Resolves `name` under the shim with `cfg`, as program `argv0` would.
pub fn resolve(cfg: &Config, name: &str, argv0: Option<&str>) -> Result<Lookup, Fail> {
    run(env_for(cfg)?, name, argv0)
}

/// Asks `server` alone, over interface `ifname`, once (one second): does it answer?
pub fn ask_one(ifname: &str, server: SocketAddr, name: &str) -> Result<Lookup, Fail> {
    let dir = std::env::temp_dir().join(format!("mifrun-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| fail(format!("cannot create {}: {e}", dir.display()), None))?;
    let file = dir.join(format!("{ifname}.toml"));
    std::fs::write(
        &file,
        format!("via = [\"{ifname}\"]\n[dns]\ntimeout_ms = 1000\nattempts = 1\n"),
    )
    .map_err(|e| fail(format!("cannot write {}: {e}", file.display()), None))?;
    let cfg = Config {
        policy: config_schema::Policy::default(),
        policy_path: Some(file.clone()),
        via_env: None,
        dns_env: Some(server.to_string()),
        dns: vec![server],
        origin: String::new(),
        found: true,
    };
    let mut env = env_for(&cfg)?;
    env.push(EnvChange::Unset(config_schema::env::VIA));
    let r = run(env, name, None);
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_dir(&dir);
    r
}

fn run(env: Vec<EnvChange>, name: &str, argv0: Option<&str>) -> Result<Lookup, Fail> {
    let exe = std::env::current_exe()
        .map_err(|e| fail(format!("cannot find the mifrun executable: {e}"), None))?;
    let mut cmd = Command::new(&exe);
    cmd.arg0(argv0.map_or_else(|| OsString::from("mifrun"), OsString::from))
        .arg("__resolve")
        .arg(name)
        .stdin(Stdio::null());
    for c in &env {
        match c {
            EnvChange::Set(k, v) => cmd.env(k, v),
            EnvChange::Unset(k) => cmd.env_remove(k),
        };
    }
    let out = cmd
        .output()
        .map_err(|e| fail(format!("cannot run {}: {e}", exe.display()), None))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| match l.strip_prefix("mifshim[") {
            Some(rest) => rest.split_once("] ").map_or(l, |(_, m)| m).to_owned(),
            None => l.to_owned(),
        })
        .collect();
    let v: Value = serde_json::from_str(stdout.trim()).map_err(|_| {
        fail(
            format!(
                "the lookup under the shim gave no answer (status {})",
                out.status
            ),
            None,
        )
    })?;
    let answer = match v.get("addrs").and_then(Value::as_array) {
        Some(a) => Ok(a.iter().filter_map(|x| x.as_str()?.parse().ok()).collect()),
        None => Err((
            v["code"].as_i64().unwrap_or(0) as i32,
            v["error"].as_str().unwrap_or("").to_owned(),
        )),
    };
    Ok(Lookup { answer, log })
}
