//! systemd-resolved, asked over its varlink socket with the interface index
//! (`io.systemd.Resolve.ResolveHostname`): resolved then uses that link's servers
//! (from NetworkManager, networkd or DHCP) and binds its own sockets to the link.
//! Used when the socket exists and neither `MIFSHIM_DNS` nor the policy names servers.

use super::resolve::Outcome;
use serde::Deserialize;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

pub(crate) const SOCKET: &str = config_schema::sysdns::RESOLVED_SOCKET;

/// Is resolved's varlink socket there?
pub(crate) fn available() -> bool {
    Path::new(SOCKET).exists()
}

#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    parameters: Option<Params>,
}

#[derive(Deserialize)]
struct Params {
    #[serde(default)]
    addresses: Vec<Address>,
    #[serde(default)]
    name: Option<String>,
    /// For `io.systemd.Resolve.DNSError`: the DNS rcode.
    #[serde(default)]
    rcode: Option<u16>,
}

#[derive(Deserialize)]
struct Address {
    family: i32,
    address: Vec<u8>,
}

/// The request, as one NUL-terminated JSON object.
pub(crate) fn request(name: &str, family: i32, ifindex: u32) -> Vec<u8> {
    let body = serde_json::json!({
        "method": "io.systemd.Resolve.ResolveHostname",
        "parameters": { "name": name, "family": family, "ifindex": ifindex },
    });
    let mut v = serde_json::to_vec(&body).unwrap_or_default();
    v.push(0);
    v
}

/// Reads resolved's answer.
pub(crate) fn parse(reply: &[u8]) -> Outcome {
    let Ok(r) = serde_json::from_slice::<Reply>(reply) else {
        return Outcome::Again;
    };
    match r.error.as_deref() {
        None => {
            let p = r.parameters.unwrap_or(Params {
                addresses: Vec::new(),
                name: None,
                rcode: None,
            });
            let addrs: Vec<IpAddr> = p
                .addresses
                .iter()
                .filter_map(|a| match (a.family, a.address.len()) {
                    (libc::AF_INET, 4) => Some(IpAddr::from([
                        a.address[0],
                        a.address[1],
                        a.address[2],
                        a.address[3],
                    ])),
                    (libc::AF_INET6, 16) => <[u8; 16]>::try_from(a.address.as_slice())
                        .ok()
                        .map(IpAddr::from),
                    _ => None,
                })
                .collect();
            if addrs.is_empty() {
                Outcome::NoData
            } else {
                Outcome::Found {
                    addrs,
                    canon: p.name.unwrap_or_default(),
                }
            }
        }
        Some("io.systemd.Resolve.NoSuchResourceRecord") => Outcome::NoData,
        Some("io.systemd.Resolve.DNSError") if r.parameters.and_then(|p| p.rcode) == Some(3) => {
            Outcome::NoName
        }
        Some(_) => Outcome::Again,
    }
}

/// Resolves `name` over interface `ifindex` through resolved, within `timeout`.
pub(crate) fn resolve(name: &str, family: i32, ifindex: u32, timeout: Duration) -> Outcome {
    let attempt = || -> std::io::Result<Vec<u8>> {
        let mut s = UnixStream::connect(SOCKET)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        s.write_all(&request(name, family, ifindex))?;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while !out.contains(&0) && out.len() < 1 << 20 {
            let n = s.read(&mut buf)?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out.truncate(out.iter().position(|b| *b == 0).unwrap_or(out.len()));
        Ok(out)
    };
    match attempt() {
        Ok(reply) => parse(&reply),
        Err(_) => Outcome::Again,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_names_the_interface() {
        let r = request("web.example", libc::AF_UNSPEC, 3);
        assert_eq!(r.last(), Some(&0));
        let v: serde_json::Value = serde_json::from_slice(&r[..r.len() - 1]).unwrap();
        assert_eq!(v["method"], "io.systemd.Resolve.ResolveHostname");
        assert_eq!(v["parameters"]["ifindex"], 3);
        assert_eq!(v["parameters"]["name"], "web.example");
        assert_eq!(v["parameters"]["family"], 0);
    }

    #[test]
    fn replies_and_errors() {
        let ok = br#"{"parameters":{"addresses":[{"ifindex":3,"family":2,"address":[203,0,113,10]},{"ifindex":3,"family":10,"address":[32,1,13,184,0,255,0,0,0,0,0,0,0,0,0,16]}],"name":"web.example","flags":1}}"#;
        assert_eq!(
            parse(ok),
            Outcome::Found {
                addrs: vec![
                    "203.0.113.10".parse().unwrap(),
                    "2001:db8:ff::10".parse().unwrap()
                ],
                canon: "web.example".into()
            }
        );
        assert_eq!(
            parse(br#"{"error":"io.systemd.Resolve.DNSError","parameters":{"rcode":3}}"#),
            Outcome::NoName
        );
        assert_eq!(
            parse(br#"{"error":"io.systemd.Resolve.NoSuchResourceRecord"}"#),
            Outcome::NoData
        );
        assert_eq!(
            parse(br#"{"error":"io.systemd.Resolve.QueryTimedOut"}"#),
            Outcome::Again
        );
        assert_eq!(
            parse(br#"{"error":"io.systemd.Resolve.NoNameServers"}"#),
            Outcome::Again
        );
        assert_eq!(parse(b"not json"), Outcome::Again);
    }
}
