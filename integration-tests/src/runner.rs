//! Running commands (foreground [`Cmd`]/[`Out`], background [`Bg`]) and temporary directories.

use crate::*;
use std::io::Read;
use std::net::IpAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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

// Temporary directories

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
