//! Harness for the mifshim end-to-end tests.
//!
//! - **Artifacts**: [`mifrun`], [`shim_lib`], [`probe`], [`testserver`] find the built files in
//!   `target/<profile>/` (from `CARGO_TARGET_DIR` or by walking up from the test executable).
//!   `cargo test` does not build `libmifshim.so` or `mifrun`: `scripts/test.sh` builds the
//!   workspace first, and the lookups panic with that hint when something is missing.
//! - **Testbed**: [`Testbed::up`] brings up a private copy of the topology defined by
//!   `scripts/testbed.sh` (the single source of truth) under a unique prefix; `Drop` tears
//!   it down. Commands run in the testbed's host namespace with a hermetic environment.
//! - **Sniffer**: [`Sniffer`] counts TCP/UDP packets on an upstream's veth with an AF_PACKET
//!   socket (no tcpdump), so a test can prove that *no* packet used the other uplinks.
//! - **Root**: everything here needs root (CAP_NET_ADMIN + CAP_SYS_ADMIN). Without it each
//!   test fails loudly via [`require_root`]; `scripts/test.sh` decides whether to run them.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The uplinks of the testbed, in the order of their default-route metric.
pub const UPLINKS: [&str; 3] = ["eth0", "wlan0", "wwan0"];
/// The service address every upstream owns (IPv4).
pub const SVC4: &str = "203.0.113.10";
/// The service address every upstream owns (IPv6).
pub const SVC6: &str = "2001:db8:ff::10";
/// The DNS server address every upstream owns (IPv4); its dnsmasq answers for `mif.test`.
pub const DNS4: &str = "203.0.113.53";
/// The DNS server address every upstream owns (IPv6).
pub const DNS6: &str = "2001:db8:ff::53";
/// An address routed to a blackhole in every upstream: a DNS server that never answers.
pub const DNS_SILENT: &str = "203.0.113.99";
/// Where `scripts/testbed.sh` keeps its state (pids, logs), one directory per prefix.
pub const STATE_ROOT: &str = "/run/mifshim-testbed";
/// Default timeout of a command run by the harness.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(20);
/// PATH given to every command.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The host-side address of an uplink.
pub fn host_addr(uplink: &str, v6: bool) -> &'static str {
    match (uplink, v6) {
        ("eth0", false) => "198.51.100.2",
        ("wlan0", false) => "198.51.100.66",
        ("wwan0", false) => "198.51.100.130",
        ("eth0", true) => "2001:db8:10::2",
        ("wlan0", true) => "2001:db8:20::2",
        ("wwan0", true) => "2001:db8:30::2",
        _ => panic!("unknown uplink {uplink}"),
    }
}

// ---------------------------------------------------------------------------------------
// Root check
// ---------------------------------------------------------------------------------------

/// Panics (fails the test) with the reason if the tests cannot create namespaces.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        panic!(
            "mifshim e2e tests need root (CAP_NET_ADMIN + CAP_SYS_ADMIN for `ip netns`); \
             running as euid {euid}. They never pass silently: run them as root via scripts/test.sh."
        );
    }
}

// ---------------------------------------------------------------------------------------
// Artifacts
// ---------------------------------------------------------------------------------------

/// The workspace root (this crate's parent directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("integration-tests has a parent directory")
        .to_path_buf()
}

/// `target/<profile>/`: from `CARGO_TARGET_DIR` (matching the profile of this executable), or
/// the first ancestor of the current executable that contains `mif-testserver`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile = if exe.components().any(|c| c.as_os_str() == "release") {
        "release"
    } else {
        "debug"
    };
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        let d = PathBuf::from(t).join(profile);
        if d.join("mif-testserver").exists() {
            return d;
        }
    }
    for a in exe.ancestors().skip(1) {
        if a.join("mif-testserver").exists() {
            return a.to_path_buf();
        }
    }
    let fallback = repo_root().join("target").join(profile);
    if fallback.join("mif-testserver").exists() {
        return fallback;
    }
    panic!(
        "cannot find target/<profile>/ with mif-testserver near {}; run `cargo build --workspace` first",
        exe.display()
    );
}

fn artifact(name: &str, hint: &str) -> PathBuf {
    let p = profile_dir().join(name);
    if !p.exists() {
        panic!("{} not found: {hint}", p.display());
    }
    p
}

/// `target/<profile>/mifrun`.
pub fn mifrun() -> PathBuf {
    // mifrun preloads the shim found next to it: require both, with a clear message.
    shim_lib();
    artifact(
        "mifrun",
        "build it first with `cargo build --workspace` (scripts/test.sh does)",
    )
}

/// `target/<profile>/libmifshim.so`.
pub fn shim_lib() -> PathBuf {
    artifact(
        "libmifshim.so",
        "build it first with `cargo build --workspace` (scripts/test.sh does)",
    )
}

/// `target/<profile>/mif-probe`.
pub fn probe() -> PathBuf {
    artifact(
        "mif-probe",
        "build it with `cargo build -p integration-tests`",
    )
}

/// `target/<profile>/mif-testserver`.
pub fn testserver() -> PathBuf {
    artifact(
        "mif-testserver",
        "build it with `cargo build -p integration-tests`",
    )
}

/// `target/<profile>/X` as a `String`, for command lines.
pub fn s(p: PathBuf) -> String {
    p.to_string_lossy().into_owned()
}

// ---------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------

/// The result of a finished command.
#[derive(Debug, Clone)]
pub struct Out {
    /// The command line, for failure messages.
    pub cmdline: String,
    /// Exit status; `None` if the command was killed by the harness timeout.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Exit code (`-1` if killed by a signal or by the timeout).
    pub fn code(&self) -> i32 {
        self.status.and_then(|s| s.code()).unwrap_or(-1)
    }

    pub fn ok(&self) -> bool {
        self.code() == 0
    }

    /// The full dump used in failure messages.
    pub fn dump(&self) -> String {
        format!(
            "\n--- command: {}\n--- status: {}\n--- stdout:\n{}\n--- stderr:\n{}\n---",
            self.cmdline,
            match self.status {
                Some(s) => format!("{s}"),
                None => "killed after timeout".to_string(),
            },
            self.stdout,
            self.stderr
        )
    }

    /// Panics with the dump unless the exit code is 0.
    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert!(self.ok(), "command failed:{}", self.dump());
        self
    }

    /// Panics with the dump unless the exit code is `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code(), code, "unexpected exit code:{}", self.dump());
        self
    }

    /// The `NAME` of the first `upstream=NAME` in stdout.
    pub fn upstream(&self) -> Option<String> {
        upstreams(&self.stdout).into_iter().next()
    }

    /// Panics with the dump unless the command succeeded and every answer came from `uplink`.
    #[track_caller]
    pub fn assert_answered_by(&self, uplink: &str) -> &Self {
        self.assert_ok();
        let ups = upstreams(&self.stdout);
        assert!(
            !ups.is_empty(),
            "no upstream answer in stdout:{}",
            self.dump()
        );
        assert!(
            ups.iter().all(|u| u == uplink),
            "expected every answer from {uplink}, got {ups:?}:{}",
            self.dump()
        );
        // Path *and* source address (pitfalls §7): a global peer address must be the
        // uplink's own, or the flow left with another interface's source (weak host model).
        for peer in peers(&self.stdout) {
            match peer {
                IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 => {}
                IpAddr::V6(_) => assert_eq!(
                    peer.to_string(),
                    host_addr(uplink, true),
                    "wrong source address for {uplink}:{}",
                    self.dump()
                ),
                IpAddr::V4(_) => assert_eq!(
                    peer.to_string(),
                    host_addr(uplink, false),
                    "wrong source address for {uplink}:{}",
                    self.dump()
                ),
            }
        }
        self
    }
}

/// Every IP of `peer=IP:PORT` on the `upstream=` lines of `text`, in order.
pub fn peers(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter(|l| l.contains("upstream="))
        .flat_map(str::split_whitespace)
        .filter_map(|w| w.strip_prefix("peer="))
        .filter_map(|p| p.parse::<std::net::SocketAddr>().ok())
        .map(|sa| sa.ip())
        .collect()
}

/// Every `NAME` of `upstream=NAME` in `text`, in order.
pub fn upstreams(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter_map(|w| w.strip_prefix("upstream="))
        .map(str::to_string)
        .collect()
}

/// A command to run in a namespace with a hermetic environment.
#[derive(Debug, Clone)]
pub struct Cmd {
    ns: Option<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    timeout: Duration,
    stdin: Option<Vec<u8>>,
}

impl Cmd {
    /// `args` in namespace `ns` (`None`: the namespace of the test process).
    pub fn new<S: AsRef<str>>(ns: Option<&str>, args: &[S]) -> Self {
        assert!(!args.is_empty(), "empty command");
        Self {
            ns: ns.map(str::to_string),
            args: args.iter().map(|a| a.as_ref().to_string()).collect(),
            env: Vec::new(),
            timeout: CMD_TIMEOUT,
            stdin: None,
        }
    }

    /// Adds one environment variable for the program (never for `ip`).
    pub fn env(mut self, k: &str, v: impl AsRef<str>) -> Self {
        self.env.push((k.to_string(), v.as_ref().to_string()));
        self
    }

    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    fn cmdline(&self) -> String {
        let mut parts = Vec::new();
        if let Some(ns) = &self.ns {
            parts.push(format!("ip netns exec {ns}"));
        }
        for (k, v) in &self.env {
            parts.push(format!("{k}={v}"));
        }
        parts.push(self.args.join(" "));
        parts.join(" ")
    }

    /// `ip netns exec NS env -i PATH=… HOME=… K=V… PROG ARGS…`: the environment of `ip` is
    /// empty, and the program gets only PATH, HOME and what the test set (no inherited
    /// LD_PRELOAD or MIFSHIM_*).
    fn command(&self) -> Command {
        let mut argv: Vec<String> = Vec::new();
        if let Some(ns) = &self.ns {
            argv.extend(["ip", "netns", "exec", ns].map(String::from));
        }
        argv.push("/usr/bin/env".into());
        argv.push("-i".into());
        argv.push(format!("PATH={PATH}"));
        argv.push("HOME=/root".into());
        for (k, v) in &self.env {
            argv.push(format!("{k}={v}"));
        }
        argv.extend(self.args.iter().cloned());
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        c.env_clear();
        c.env("PATH", PATH);
        // Own process group, so a timeout kills grandchildren too.
        c.process_group(0);
        c
    }

    /// Runs to completion (bounded by the timeout; killed on expiry).
    pub fn run(&self) -> Out {
        let bg = self.spawn();
        bg.wait(self.timeout)
    }

    /// Starts in the background; the process group is killed when the handle is dropped.
    pub fn spawn(&self) -> Bg {
        let mut c = self.command();
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = c
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn `{}`: {e}", self.cmdline()));
        if let (Some(data), Some(mut w)) = (self.stdin.clone(), child.stdin.take()) {
            std::thread::spawn(move || {
                use std::io::Write;
                let _ = w.write_all(&data);
            });
        }
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            pump(child.stdout.take().expect("stdout"), stdout.clone()),
            pump(child.stderr.take().expect("stderr"), stderr.clone()),
        ];
        Bg {
            cmdline: self.cmdline(),
            child: Some(child),
            stdout,
            stderr,
            readers,
        }
    }
}

fn pump<R: Read + Send + 'static>(mut r: R, buf: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        loop {
            match r.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.lock().unwrap().extend_from_slice(&chunk[..n]),
            }
        }
    })
}

/// A background command. Dropping it kills its process group.
pub struct Bg {
    cmdline: String,
    child: Option<Child>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Bg {
    /// The process id of the command (what it `exec`ed into keeps it).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// stdout so far.
    pub fn stdout_now(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    /// stderr so far.
    pub fn stderr_now(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits (bounded) until stdout contains `needle`; panics with the output otherwise.
    #[track_caller]
    pub fn wait_for_stdout(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.stdout_now().contains(needle) {
                return;
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                std::thread::sleep(Duration::from_millis(50));
                if self.stdout_now().contains(needle) {
                    return;
                }
                panic!(
                    "`{}` exited ({st}) before printing {needle:?}\nstdout:\n{}\nstderr:\n{}",
                    self.cmdline,
                    self.stdout_now(),
                    self.stderr_now()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "`{}` did not print {needle:?} within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
            self.cmdline,
            self.stdout_now(),
            self.stderr_now()
        );
    }

    fn kill_group(&mut self) {
        if let Some(c) = self.child.as_ref() {
            let pid = c.id() as libc::pid_t;
            // SAFETY: signalling the process group we created for this child.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }

    /// Waits for the exit (bounded; killed on expiry) and returns the output.
    pub fn wait(mut self, timeout: Duration) -> Out {
        let deadline = Instant::now() + timeout;
        let mut status = None;
        let mut child = self.child.take().expect("child");
        loop {
            match child.try_wait() {
                Ok(Some(st)) => {
                    status = Some(st);
                    break;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => break,
            }
        }
        // Kill leftovers in the group (also the child itself on timeout).
        // SAFETY: signalling our own process group.
        unsafe {
            libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
        }
        if status.is_none() {
            let _ = child.wait();
        }
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        Out {
            cmdline: self.cmdline.clone(),
            status,
            stdout: self.stdout_now(),
            stderr: self.stderr_now(),
        }
    }

    /// Kills the process group and returns the output so far.
    pub fn stop(mut self) -> Out {
        self.kill_group();
        self.wait(Duration::from_secs(5))
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.kill_group();
            if let Some(mut c) = self.child.take() {
                let _ = c.wait();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Temporary directories
// ---------------------------------------------------------------------------------------

static TMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A per-test temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let n = TMP_COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("mifshim-it-{}-{n}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        Self(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `name` with `content` and returns its path as a string.
    pub fn write(&self, name: &str, content: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, content).expect("write temp file");
        p.to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------
// Testbed
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Sniffer
// ---------------------------------------------------------------------------------------

/// Time given to a sniffer after start and before stop, so in-flight frames are counted.
pub const SNIFF_SETTLE: Duration = Duration::from_millis(150);

/// What a sniffer saw on one interface.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub tcp: usize,
    pub udp: usize,
    /// `proto dst:dport` of the first few TCP/UDP packets.
    pub first: Vec<String>,
    /// The first [`MAX_PKTS`] TCP/UDP packets, with their header fields.
    pub pkts: Vec<Pkt>,
}

/// How many packets a [`Counts`] keeps in detail.
pub const MAX_PKTS: usize = 256;

/// One TCP/UDP packet a sniffer saw: what the wire carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pkt {
    /// 6 (TCP) or 17 (UDP).
    pub proto: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub dport: u16,
    /// The DSCP (the IPv4 TOS byte's / IPv6 traffic class's upper six bits).
    pub dscp: u8,
    /// TCP flags (`0x02` SYN, `0x10` ACK, `0x01` FIN, `0x04` RST; 0 for UDP).
    pub tcp_flags: u8,
}

impl Counts {
    /// The packets sent to `dst` (the client's side of a flow to the service).
    pub fn to(&self, dst: &str) -> Vec<Pkt> {
        let dst: IpAddr = dst.parse().expect("an address");
        self.pkts.iter().filter(|p| p.dst == dst).copied().collect()
    }
}

impl Counts {
    pub fn total(&self) -> usize {
        self.tcp + self.udp
    }
}

/// Counts TCP and UDP packets (IPv4 and IPv6, both directions) on one interface of a
/// namespace, without tcpdump.
pub struct Sniffer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<Counts, String>>>,
}

impl Sniffer {
    /// Starts sniffing `ifname` inside namespace `ns`; returns once the socket is bound.
    pub fn start(ns: &str, ifname: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let ns_path = format!("/run/netns/{ns}");
        let ifname = ifname.to_string();
        let stop2 = stop.clone();
        let handle = std::thread::spawn(move || {
            let fd = match open_packet_socket(&ns_path, &ifname) {
                Ok(fd) => {
                    let _ = tx.send(Ok(()));
                    fd
                }
                Err(e) => {
                    let _ = tx.send(Err(e.clone()));
                    return Err(e);
                }
            };
            Ok(sniff_loop(&fd, &stop2))
        });
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("sniffer on {ns}/{}: {e}", "up"),
            Err(_) => panic!("sniffer on {ns} did not start within 5 s"),
        }
        Self {
            stop,
            handle: Some(handle),
        }
    }

    /// Waits a short settle time, stops, and returns the counts.
    pub fn stop(mut self) -> Counts {
        std::thread::sleep(SNIFF_SETTLE);
        self.finish()
    }

    fn finish(&mut self) -> Counts {
        self.stop.store(true, Ordering::SeqCst);
        match self.handle.take().map(|h| h.join()) {
            Some(Ok(Ok(c))) => c,
            Some(Ok(Err(e))) => panic!("sniffer failed: {e}"),
            Some(Err(_)) => panic!("sniffer thread panicked"),
            None => Counts::default(),
        }
    }
}

impl Drop for Sniffer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Enters `ns_path` (this thread only), opens an AF_PACKET socket bound to `ifname`, returns
/// to the original namespace.
fn open_packet_socket(ns_path: &str, ifname: &str) -> Result<OwnedFd, String> {
    let open = |p: &str| -> Result<OwnedFd, String> {
        let c = CString::new(p).map_err(|e| e.to_string())?;
        // SAFETY: c is a valid C string.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(format!("open {p}: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: fd is fresh and ours.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    };
    let orig = open("/proc/thread-self/ns/net")?;
    let target = open(ns_path)?;
    // SAFETY: setns with a valid netns fd affects only the calling thread.
    if unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(format!(
            "setns {ns_path}: {}",
            std::io::Error::last_os_error()
        ));
    }
    let res = (|| {
        let proto = (libc::ETH_P_ALL as u16).to_be() as libc::c_int;
        // SAFETY: plain socket(2).
        let fd =
            unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
        if fd < 0 {
            return Err(format!(
                "socket(AF_PACKET): {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: fd is fresh and ours.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        let cname = CString::new(ifname).map_err(|e| e.to_string())?;
        // SAFETY: valid C string; resolved in the namespace we are in now.
        let idx = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if idx == 0 {
            return Err(format!("no interface {ifname} in {ns_path}"));
        }
        // SAFETY: all-zero sockaddr_ll is valid; fields set below.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = idx as i32;
        // SAFETY: sll is a valid sockaddr_ll of the given size.
        let rc = unsafe {
            libc::bind(
                sock.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(format!(
                "bind AF_PACKET to {ifname}: {}",
                std::io::Error::last_os_error()
            ));
        }
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 50_000,
        };
        // SAFETY: tv outlives the call; the length matches.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            );
        }
        Ok(sock)
    })();
    // SAFETY: return this thread to the namespace it started in.
    if unsafe { libc::setns(orig.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(format!("setns back: {}", std::io::Error::last_os_error()));
    }
    res
}

fn sniff_loop(fd: &OwnedFd, stop: &AtomicBool) -> Counts {
    let mut c = Counts::default();
    let mut buf = vec![0u8; 65536];
    // Bounded: the harness always stops it, but never run longer than 10 minutes.
    let deadline = Instant::now() + Duration::from_secs(600);
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        // SAFETY: buf is writable for its whole length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n <= 0 {
            continue;
        }
        if let Some((proto, dst)) = parse_frame(&buf[..n as usize]) {
            match proto {
                6 => c.tcp += 1,
                17 => c.udp += 1,
                _ => continue,
            }
            if c.pkts.len() < MAX_PKTS {
                if let Some(p) = parse_pkt(&buf[..n as usize]) {
                    c.pkts.push(p);
                }
            }
            if c.first.len() < 8 {
                c.first
                    .push(format!("{} {dst}", if proto == 6 { "tcp" } else { "udp" }));
            }
        }
    }
    c
}

/// The header fields of an Ethernet frame carrying IPv4/IPv6 (no VLAN tags: the
/// testbed's veths carry none).
fn parse_pkt(f: &[u8]) -> Option<Pkt> {
    let ip = f.get(14..)?;
    match u16::from_be_bytes([*f.get(12)?, *f.get(13)?]) {
        0x0800 if ip.len() >= 20 => {
            let ihl = ((ip[0] & 0x0f) as usize) * 4;
            let dport = ip
                .get(ihl + 2..ihl + 4)
                .map_or(0, |p| u16::from_be_bytes([p[0], p[1]]));
            let tcp_flags = if ip[9] == 6 {
                ip.get(ihl + 13).copied().unwrap_or(0)
            } else {
                0
            };
            Some(Pkt {
                tcp_flags,
                proto: ip[9],
                src: IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15])),
                dst: IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19])),
                dport,
                dscp: ip[1] >> 2,
            })
        }
        0x86dd if ip.len() >= 40 => {
            let a = |at: usize| {
                let mut o = [0u8; 16];
                o.copy_from_slice(&ip[at..at + 16]);
                IpAddr::V6(Ipv6Addr::from(o))
            };
            let tclass = ((ip[0] & 0x0f) << 4) | (ip[1] >> 4);
            let dport = ip
                .get(42..44)
                .map_or(0, |p| u16::from_be_bytes([p[0], p[1]]));
            // No extension headers: the TCP header starts at 40.
            let tcp_flags = if ip[6] == 6 {
                ip.get(53).copied().unwrap_or(0)
            } else {
                0
            };
            Some(Pkt {
                tcp_flags,
                proto: ip[6],
                src: a(8),
                dst: a(24),
                dport,
                dscp: tclass >> 2,
            })
        }
        _ => None,
    }
}

/// `(ip protocol, "dst:dport")` of an Ethernet frame carrying IPv4/IPv6.
fn parse_frame(f: &[u8]) -> Option<(u8, String)> {
    if f.len() < 14 {
        return None;
    }
    let mut off = 12;
    let mut ethertype = u16::from_be_bytes([f[off], f[off + 1]]);
    if ethertype == 0x8100 && f.len() >= 18 {
        off += 4;
        ethertype = u16::from_be_bytes([f[off], f[off + 1]]);
    }
    let ip = &f[off + 2..];
    match ethertype {
        0x0800 if ip.len() >= 20 => {
            let ihl = ((ip[0] & 0x0f) as usize) * 4;
            let proto = ip[9];
            let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
            let port = ip
                .get(ihl + 2..ihl + 4)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .unwrap_or(0);
            Some((proto, format!("{dst}:{port}")))
        }
        0x86dd if ip.len() >= 40 => {
            let proto = ip[6];
            let mut d = [0u8; 16];
            d.copy_from_slice(&ip[24..40]);
            let dst = Ipv6Addr::from(d);
            let port = ip
                .get(42..44)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .unwrap_or(0);
            Some((proto, format!("[{dst}]:{port}")))
        }
        _ => None,
    }
}

/// One sniffer per uplink.
pub struct Sniffers(Vec<(String, Sniffer)>);

impl Sniffers {
    /// Stops all sniffers (after one shared settle time) and returns counts per uplink.
    pub fn stop(self) -> BTreeMap<String, Counts> {
        std::thread::sleep(SNIFF_SETTLE);
        self.0
            .into_iter()
            .map(|(name, mut sn)| {
                let c = sn.finish();
                (name, c)
            })
            .collect()
    }
}

/// Panics unless `uplink` saw TCP/UDP packets and every other uplink saw none.
#[track_caller]
pub fn assert_only(counts: &BTreeMap<String, Counts>, uplink: &str) {
    let got = counts.get(uplink).map(Counts::total).unwrap_or(0);
    assert!(
        got > 0,
        "expected TCP/UDP packets on {uplink}, saw none; counts: {counts:#?}"
    );
    for (name, c) in counts {
        if name != uplink {
            assert_eq!(
                c.total(),
                0,
                "expected no TCP/UDP packets on {name}; counts: {counts:#?}"
            );
        }
    }
}

/// Panics unless no uplink saw any TCP/UDP packet.
#[track_caller]
pub fn assert_silent(counts: &BTreeMap<String, Counts>) {
    for (name, c) in counts {
        assert_eq!(
            c.total(),
            0,
            "expected no TCP/UDP packets on {name}; counts: {counts:#?}"
        );
    }
}

/// Panics unless none of `uplinks` saw TCP/UDP packets.
#[track_caller]
pub fn assert_none_on(counts: &BTreeMap<String, Counts>, uplinks: &[&str]) {
    for u in uplinks {
        let c = counts.get(*u).map(Counts::total).unwrap_or(0);
        assert_eq!(
            c, 0,
            "expected no TCP/UDP packets on {u}; counts: {counts:#?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Test variants and the common assertion
// ---------------------------------------------------------------------------------------

/// Address family of a test variant.
#[derive(Clone, Copy, Debug)]
pub enum Fam {
    V4,
    V6,
}

impl Fam {
    pub fn v6(self) -> bool {
        matches!(self, Fam::V6)
    }

    /// The service address every upstream owns.
    pub fn svc(self) -> &'static str {
        if self.v6() { SVC6 } else { SVC4 }
    }

    /// `http://SVC:PORT/`.
    pub fn url(self, port: u16) -> String {
        match self {
            Fam::V4 => format!("http://{SVC4}:{port}/"),
            Fam::V6 => format!("http://[{SVC6}]:{port}/"),
        }
    }

    /// The service prefix as a CIDR for policies.
    pub fn svc_cidr(self) -> &'static str {
        if self.v6() {
            "2001:db8:ff::10/128"
        } else {
            "203.0.113.10/32"
        }
    }

    /// The loopback address.
    pub fn lo(self) -> &'static str {
        if self.v6() { "::1" } else { "127.0.0.1" }
    }

    /// `host` in URL form.
    pub fn url_host(self, addr: &str) -> String {
        if self.v6() {
            format!("[{addr}]")
        } else {
            addr.to_string()
        }
    }
}

/// Generates `mod $name { fn v4(); fn v6(); }` from a body taking a [`Fam`]; the
/// attributes given (doc comments, `#[ignore = "…"]`) go on both tests.
#[macro_export]
macro_rules! both {
    ($(#[$m:meta])* $name:ident, |$fam:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn body($fam: $crate::Fam) $body
            $(#[$m])*
            #[test]
            fn v4() {
                body($crate::Fam::V4)
            }
            $(#[$m])*
            #[test]
            fn v6() {
                body($crate::Fam::V6)
            }
        }
    };
}

/// `mifrun --via VIA -- PROG…`.
pub fn mifrun_args<S: AsRef<str>>(via: &str, prog: &[S]) -> Vec<String> {
    let mut v = vec![s(mifrun()), "--via".into(), via.into(), "--".into()];
    v.extend(prog.iter().map(|a| a.as_ref().to_string()));
    v
}

/// `mifrun --policy FILE -- PROG…`.
pub fn mifrun_policy_args<S: AsRef<str>>(policy: &str, prog: &[S]) -> Vec<String> {
    let mut v = vec![s(mifrun()), "--policy".into(), policy.into(), "--".into()];
    v.extend(prog.iter().map(|a| a.as_ref().to_string()));
    v
}

/// Runs `cmd` with all sniffers on; asserts the answer came from `uplink` and that only
/// `uplink` carried TCP/UDP.
#[track_caller]
pub fn expect_via(tb: &Testbed, cmd: Cmd, uplink: &str) -> Out {
    let sn = tb.sniff_all();
    let out = cmd.run();
    let counts = sn.stop();
    out.assert_answered_by(uplink);
    assert_only(&counts, uplink);
    out
}
