//! `mifrun status`, `explain` and `doctor`: what the shim would do here, and why.
//!
//! Nothing here decides anything itself: interface verdicts are config-schema's
//! `unusable_reason`, destinations go through its `decide` / `decide_name`, the DNS
//! servers and their sources are its `sysdns::servers_for`, addresses count by its
//! `sysdns::address_kind` (the rules the shim's own snapshot uses), and names are
//! resolved by running `getaddrinfo` under the shim itself ([`probe`]).

mod doctor;
mod explain;
mod probe;
mod source_rules;
mod status;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use config_schema::sysdns::{self, ResolvConf};
use config_schema::{IfName, Policy, Profile};
use serde_json::{Value, json};

use crate::cli::{PolicyArgs, Tool};
use crate::{Fail, fail};

pub fn run(tool: Tool) -> ExitCode {
    let r = match tool {
        Tool::Status(a) => status::run(&a),
        Tool::Explain(a) => explain::run(&a),
        Tool::Doctor(a) => doctor::run(&a),
        Tool::SourceRules(a) => source_rules::run(&a),
        Tool::Schema => crate::assets::schema(),
        Tool::Completions { shell } => crate::assets::completions(&shell),
        Tool::Manpages { dir } => crate::assets::manpages(&dir),
        Tool::Resolve { name } => return probe::child(&name),
    };
    match r {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("mifrun: {}", f.message);
            if let Some(hint) = f.hint {
                eprintln!("  hint: {hint}");
            }
            ExitCode::from(f.code)
        }
    }
}

/// The configuration a command looks at: what `mifrun` with the same options (or the
/// shim with the same environment) would enforce.
pub struct Config {
    pub policy: Policy,
    pub policy_path: Option<PathBuf>,
    /// The `--via` list as MIFSHIM_VIA takes it.
    pub via_env: Option<String>,
    /// `--dns` (or MIFSHIM_DNS) as given, and its servers.
    pub dns_env: Option<String>,
    pub dns: Vec<SocketAddr>,
    /// Where it came from, for the reader (`--via wlan0`, `policy ./p.toml`…).
    pub origin: String,
    /// False when no policy was found at all (status shows the host only).
    pub found: bool,
}

impl Config {
    /// From the options; else from MIFSHIM_POLICY / MIFSHIM_VIA / MIFSHIM_DNS; else from
    /// the default policy paths. Nothing found: an empty policy (`found = false`).
    pub fn load(args: &PolicyArgs) -> Result<Config, Fail> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let mut via = (!args.via.is_empty()).then(|| args.via.join(","));
        let mut file = args.policy.clone();
        let mut origin = Vec::new();
        if via.is_none() && file.is_none() {
            via = env(config_schema::env::VIA);
            file = env(config_schema::env::POLICY).map(PathBuf::from);
            if via.is_some() || file.is_some() {
                origin.push("the MIFSHIM_* environment".to_owned());
            } else {
                let paths = config_schema::default_policy_paths(
                    std::env::var_os("XDG_CONFIG_HOME").as_deref(),
                    std::env::var_os("HOME").as_deref(),
                );
                file = paths.into_iter().find(|p| p.exists());
            }
        }
        if let Some(v) = &via {
            origin.push(format!("--via {v}"));
        }
        if let Some(f) = &file {
            origin.push(format!("policy {}", f.display()));
        }
        let found = via.is_some() || file.is_some();
        let (policy, policy_path, via_env) = if found {
            crate::load_policy_from(via.as_deref(), file.as_deref())?
        } else {
            (Policy::default(), None, None)
        };
        let dns_env = args.dns.clone().or_else(|| env(config_schema::env::DNS));
        let (dns_env, dns) = match dns_env {
            Some(d) => {
                let (e, v) = crate::parse_dns(&d)?;
                (Some(e), v)
            }
            None => (None, Vec::new()),
        };
        Ok(Config {
            policy,
            policy_path,
            via_env,
            dns_env,
            dns,
            origin: if origin.is_empty() {
                "no policy (none given, none found)".into()
            } else {
                origin.join(", ")
            },
            found,
        })
    }

    /// The profile for a program (`--program NAME`: found in PATH for its path too).
    pub fn profile(&self, program: Option<&str>) -> Profile {
        match program {
            None => self.policy.base.clone(),
            Some(p) => {
                let exe = which(p)
                    .map(|e| e.display().to_string())
                    .unwrap_or_default();
                self.policy.profile_for(&exe, p)
            }
        }
    }

    /// Requires a policy (explain and doctor need one to say anything).
    pub fn require(self) -> Result<Config, Fail> {
        if self.found {
            return Ok(self);
        }
        Err(fail(
            "no interface to explain: give --via IF or --policy FILE",
            Some(
                "e.g. `mifrun explain --via wlan0 DEST`; without options mifrun reads MIFSHIM_VIA, MIFSHIM_POLICY or the default policy paths, like the shim",
            ),
        ))
    }
}

fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return std::fs::canonicalize(program).ok();
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .and_then(|p| p.canonicalize().ok())
}

/// `/etc/resolv.conf`, parsed as the shim parses it.
pub fn resolv_conf() -> ResolvConf {
    sysdns::parse_resolv_conf(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
}

pub fn resolved_present() -> bool {
    Path::new(sysdns::RESOLVED_SOCKET).exists()
}

/// The DNS servers the shim would use for one interface, and where they came from.
pub struct Dns {
    pub servers: Vec<SocketAddr>,
    pub source: &'static str,
    /// The file they were read from (per-link state, a lease, resolv.conf).
    pub file: Option<String>,
    /// The shim hands names to systemd-resolved (with the link's index) instead.
    pub via_resolved: bool,
}

impl Dns {
    pub fn find(cfg: &Config, profile: &Profile, name: &IfName, index: u32) -> Dns {
        let rc = resolv_conf();
        let mut file = None;
        let (servers, source) = sysdns::servers_for(
            &cfg.dns,
            profile,
            name,
            || {
                let (v, s, f) = sysdns::read_link_servers(index, name.as_str(), |p| {
                    std::fs::read_to_string(p).ok()
                });
                file = Some(f);
                (v, s)
            },
            &rc,
        );
        let file = match source {
            sysdns::FROM_RESOLV_CONF => Some("/etc/resolv.conf".to_owned()),
            sysdns::FROM_NETWORKD | sysdns::FROM_DHCLIENT => file,
            _ => cfg
                .policy_path
                .as_ref()
                .map(|p| p.display().to_string())
                .filter(|_| source == sysdns::FROM_POLICY),
        };
        Dns {
            servers,
            source,
            file,
            via_resolved: sysdns::asks_resolved(source, resolved_present()),
        }
    }

    pub fn json(&self) -> Value {
        json!({
            "servers": self.servers.iter().map(|s| json!({
                "address": s.ip().to_string(),
                "port": s.port(),
                "source": self.source,
            })).collect::<Vec<_>>(),
            "source": self.source,
            "file": self.file,
            "systemd_resolved": self.via_resolved,
        })
    }

    /// `203.0.113.53 (/etc/resolv.conf)`, or the resolved hand-off.
    pub fn text(&self, index: u32) -> String {
        let list = servers_text(&self.servers);
        if self.via_resolved {
            return format!(
                "asked through systemd-resolved (link {index}); if it cannot: {} ({})",
                if list.is_empty() { "none".into() } else { list },
                self.source
            );
        }
        if self.servers.is_empty() {
            return format!("none known ({} names only loopback servers)", self.source);
        }
        format!("{list} ({})", self.source)
    }
}

pub fn servers_text(servers: &[SocketAddr]) -> String {
    servers
        .iter()
        .map(|s| server_text(*s))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn server_text(s: SocketAddr) -> String {
    if s.port() == 53 {
        s.ip().to_string()
    } else {
        s.to_string()
    }
}

/// Prints a JSON value (pretty) to standard output.
pub fn print_json(v: &Value) {
    use std::io::Write;
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = writeln!(
        std::io::stdout().lock(),
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".into())
    );
}

/// Before running a program: interfaces of `policy` whose DNS servers cannot be asked
/// through them (every one on another interface's subnet, or none known), as
/// (warning, hint) pairs. Nothing when the interfaces cannot be read.
pub fn dns_warnings(
    policy: &Policy,
    policy_path: Option<&Path>,
    dns: &[SocketAddr],
) -> Vec<(String, String)> {
    if !policy.base.dns.steer {
        return Vec::new();
    }
    let Ok(net) = crate::net::Net::read() else {
        return Vec::new();
    };
    let cfg = Config {
        policy: policy.clone(),
        policy_path: policy_path.map(Path::to_path_buf),
        via_env: None,
        dns_env: None,
        dns: dns.to_vec(),
        origin: String::new(),
        found: true,
    };
    let mut out = Vec::new();
    for name in policy.interface_names() {
        let Some(link) = net.link(name.as_str()) else {
            continue;
        };
        if link.flags & libc::IFF_LOOPBACK as u32 != 0 {
            continue;
        }
        let d = Dns::find(&cfg, &policy.base, &name, link.index);
        if d.via_resolved {
            continue;
        }
        let hint = format!(
            "give {name} a server it can reach: --dns ADDR or `[interfaces.{name}] dns = [\"ADDR\"]` in the policy; `mifrun explain --via {name} NAME` shows what is asked"
        );
        if d.servers.is_empty() {
            out.push((
                format!(
                    "no DNS server known for {name} ({} lists only loopback servers): names resolved over it will fail",
                    d.source
                ),
                hint,
            ));
            continue;
        }
        let elsewhere: Vec<String> = d
            .servers
            .iter()
            .filter_map(|s| {
                let (owner, ip, len) = net.subnet_owner(s.ip())?;
                (owner != link.index).then(|| {
                    format!(
                        "{} is on {}'s subnet ({}/{len})",
                        server_text(*s),
                        net.name_of(owner),
                        crate::net::network(ip, len)
                    )
                })
            })
            .collect();
        if elsewhere.len() == d.servers.len() {
            out.push((
                format!(
                    "the DNS server(s) known for {name} (from {}) are on other links: {}; names resolved over {name} will not be answered",
                    d.source,
                    elsewhere.join(", ")
                ),
                hint,
            ));
        }
    }
    out
}
