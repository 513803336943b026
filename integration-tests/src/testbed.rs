//! [`Testbed`]: a private copy of the topology of `scripts/testbed.sh` per test.

use crate::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static TB_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// One private copy of the topology of `scripts/testbed.sh`.
pub struct Testbed {
    prefix: String,
}

impl Testbed {
    /// Brings up a testbed under a unique prefix (`mift` + pid + counter). Panics with the
    /// script's output on failure (including "not root").
    pub fn up() -> Self {
        require_root();
        let n = TB_COUNTER.fetch_add(1, Ordering::SeqCst);
        // Names: PREFIX + 1 char, at most 15; keep the prefix <= 13.
        let mut prefix = format!("mift{}{}", std::process::id(), n);
        prefix.truncate(13);
        // A testbed of this name is a dead process's (the prefix holds this live
        // process's pid): one killed before its `Drop` (a test run's time-out, a
        // Ctrl-C) left it behind, and `up` would refuse (seen: "already exists").
        let state = std::env::var("MIFTB_STATE_ROOT")
            .unwrap_or_else(|_| "/run/mifshim-testbed".to_string());
        if Path::new(&state).join(&prefix).exists() {
            let _ = Self::down_prefix(&prefix);
        }
        let script = repo_root().join("scripts/testbed.sh");
        let mut cmd = Cmd::new(
            None,
            &[
                s(script),
                "up".into(),
                prefix.clone(),
                "--server".into(),
                s(testserver()),
            ],
        )
        .env("MIFTB_LIFETIME", "600")
        .timeout(Duration::from_secs(60));
        // scripts/test.sh sets this in an unprivileged user namespace, where dnsmasq
        // cannot start (the DNS tests are not run there).
        if std::env::var("MIFTB_NO_DNS").as_deref() == Ok("1") {
            cmd = cmd.env("MIFTB_NO_DNS", "1");
        }
        let out = cmd.run();
        if !out.ok() {
            // Best effort: do not leave half a testbed behind.
            let _ = Self::down_prefix(&prefix);
            panic!("testbed up failed:{}", out.dump());
        }
        Self { prefix }
    }

    fn down_prefix(prefix: &str) -> Out {
        let script = repo_root().join("scripts/testbed.sh");
        Cmd::new(None, &[s(script), "down".into(), prefix.to_string()])
            .timeout(Duration::from_secs(30))
            .run()
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The host namespace (with eth0, wlan0, wwan0).
    pub fn host_ns(&self) -> String {
        format!("{}h", self.prefix)
    }

    /// The upstream namespace of `uplink`; its end of the veth is named `up`.
    pub fn upstream_ns(&self, uplink: &str) -> String {
        let suffix = match uplink {
            "eth0" => "e",
            "wlan0" => "w",
            "wwan0" => "m",
            _ => panic!("unknown uplink {uplink}"),
        };
        format!("{}{suffix}", self.prefix)
    }

    /// The testbed's state directory (pids, server and dnsmasq logs).
    pub fn state_dir(&self) -> PathBuf {
        Path::new(STATE_ROOT).join(&self.prefix)
    }

    /// The query log of the dnsmasq upstream of `uplink` so far (empty if none yet).
    pub fn dns_log(&self, uplink: &str) -> String {
        std::fs::read_to_string(self.state_dir().join(format!("dnsmasq-{uplink}.log")))
            .unwrap_or_default()
    }

    /// Waits (bounded) until the dnsmasq log of `uplink` contains `needle`; `false` if it
    /// never did.
    pub fn wait_dns_log(&self, uplink: &str, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.dns_log(uplink).contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Replaces `/etc/netns/<host ns>/NAME` (`resolv.conf`, `hosts`), which `ip netns exec`
    /// bind-mounts over `/etc/NAME` for every command started afterwards.
    pub fn set_host_etc(&self, name: &str, content: &str) {
        let p = Path::new("/etc/netns").join(self.host_ns()).join(name);
        std::fs::write(&p, content).unwrap_or_else(|e| panic!("cannot write {}: {e}", p.display()));
    }

    /// A command in the host namespace.
    pub fn cmd<S: AsRef<str>>(&self, args: &[S]) -> Cmd {
        Cmd::new(Some(&self.host_ns()), args)
    }

    /// Resolves every uplink's gateway (ARP and neighbour discovery) from the host
    /// namespace, unsteered: a TCP connect to its closed port 9, answered by a reset.
    /// A test that looks for a packet the kernel sends by the wrong link late in a run
    /// (a time-wait ACK) calls this first: until the neighbour is resolved such a
    /// packet waits in the neighbour queue, and it is dropped if that outlasts the
    /// capture, so a leak would go unseen.
    pub fn warm_neighbours(&self) {
        let mut addrs = Vec::new();
        for u in UPLINKS {
            for v6 in [false, true] {
                addrs.push(format!("'{}'", upstream_addr(u, v6)));
            }
        }
        let code = format!(
            "import socket\nfor a in [{}]:\n    try:\n        socket.create_connection((a, 9), timeout=3).close()\n    except ConnectionRefusedError:\n        pass\n",
            addrs.join(", ")
        );
        self.run(&["python3", "-c", &code]).assert_ok();
    }

    /// A command in the upstream namespace of `uplink`.
    pub fn cmd_upstream<S: AsRef<str>>(&self, uplink: &str, args: &[S]) -> Cmd {
        Cmd::new(Some(&self.upstream_ns(uplink)), args)
    }

    /// Runs `args` in the host namespace (hermetic env, default timeout).
    pub fn run<S: AsRef<str>>(&self, args: &[S]) -> Out {
        self.cmd(args).run()
    }

    /// `ip link set IF down` in the host namespace.
    pub fn link_down(&self, ifname: &str) {
        self.run(&["ip", "link", "set", ifname, "down"]).assert_ok();
    }

    /// `ip link set IF up` in the host namespace.
    pub fn link_up(&self, ifname: &str) {
        self.run(&["ip", "link", "set", ifname, "up"]).assert_ok();
    }

    /// `ip link del IF` in the host namespace (the veth peer goes with it).
    pub fn link_del(&self, ifname: &str) {
        self.run(&["ip", "link", "del", ifname]).assert_ok();
    }

    /// Starts one [`Sniffer`] per uplink.
    pub fn sniff_all(&self) -> Sniffers {
        self.sniff(&UPLINKS)
    }

    /// Starts one [`Sniffer`] for each of `uplinks` (e.g. all but a deleted one).
    pub fn sniff(&self, uplinks: &[&str]) -> Sniffers {
        let sn = uplinks
            .iter()
            .map(|u| (u.to_string(), Sniffer::start(&self.upstream_ns(u), "up")))
            .collect();
        std::thread::sleep(SNIFF_SETTLE);
        Sniffers(sn)
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        let out = Self::down_prefix(&self.prefix);
        if !out.ok() {
            eprintln!("warning: testbed down failed:{}", out.dump());
        }
    }
}
