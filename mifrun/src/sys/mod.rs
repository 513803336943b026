//! The only `unsafe` in mifrun: thin, safe wrappers over a few libc calls (and, in
//! `netlink`, the route socket's system calls; in `child`, the signal handling of a
//! program run as a child).

#[cfg(target_os = "linux")]
pub mod child;
#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "linux")]
pub mod netlink;

#[cfg(target_os = "macos")]
pub use macos::{file_caps, sip_enabled};

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Current credentials of this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Creds {
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
}

/// When this mifrun runs with `libmifshim.so` preloaded (started from a steered tree,
/// or by the preload's own exec hook to supervise a program), what it execs is its own
/// decision (the preload, the supervisor, or a refusal): the stub is told not to
/// inspect this process's execs (`mifshim_exec_as_is`, which it exports), or a program
/// it supervises would be sent back to a mifrun again.
#[cfg(target_os = "linux")]
pub fn exec_as_is() {
    // SAFETY: dlsym with a NUL-terminated name; RTLD_DEFAULT searches every loaded
    // object.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"mifshim_exec_as_is".as_ptr()) };
    if !p.is_null() {
        // SAFETY: the stub's `extern "C" fn()`, which only sets a flag.
        let f = unsafe { std::mem::transmute::<*mut libc::c_void, extern "C" fn()>(p) };
        f();
    }
}

pub fn creds() -> Creds {
    // SAFETY: these calls take no arguments, cannot fail and have no side effects.
    unsafe {
        Creds {
            uid: libc::getuid(),
            euid: libc::geteuid(),
            gid: libc::getgid(),
            egid: libc::getegid(),
        }
    }
}

/// Gives SIGPIPE back its default action (the Rust runtime ignores it), for the
/// commands that only print: written into a pipe whose reader has gone (`mifrun
/// status | head -1`), they end at once and silently, killed by SIGPIPE as `cat`,
/// `ls` or `grep` are (the shell reports 141), instead of panicking on `EPIPE`. Not
/// for the modes that run a program: their supervisor and reaper write to pipes of
/// their own and must see `EPIPE` as an error, not die of it.
pub fn default_sigpipe() {
    // SAFETY: signal(2) with SIG_DFL installs no handler; nothing else in this
    // process relies on SIGPIPE being ignored on the printing paths that call this.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

fn c_path(path: &Path) -> Option<CString> {
    CString::new(path.as_os_str().as_bytes()).ok()
}

/// Result of looking for a `security.capability` extended attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub enum FileCaps {
    None,
    Present(Vec<u8>),
    /// The attribute could not be read (the error), so the answer is unknown.
    Unknown(String),
}

#[cfg(target_os = "linux")]
/// Reads the `security.capability` xattr of `path` (following symlinks, like exec).
pub fn file_caps(path: &Path) -> FileCaps {
    let Some(cpath) = c_path(path) else {
        return FileCaps::Unknown("path contains a NUL byte".into());
    };
    let name = c"security.capability";
    let mut buf = [0u8; 64];
    // SAFETY: `cpath` and `name` are NUL-terminated and outlive the call; `buf` is a
    // writable buffer of exactly `buf.len()` bytes.
    let n = unsafe {
        libc::getxattr(
            cpath.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n >= 0 {
        let len = usize::try_from(n).unwrap_or(0).min(buf.len());
        return FileCaps::Present(buf[..len].to_vec());
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENODATA | libc::ENOTSUP) => FileCaps::None,
        // ERANGE: larger than any vfs_cap_data; still "present".
        Some(libc::ERANGE) => FileCaps::Present(Vec::new()),
        _ => FileCaps::Unknown(err.to_string()),
    }
}

/// True when the file system holding `path` is mounted `nosuid` (setuid/setgid bits
/// and file capabilities are then ignored by exec). `None` when unknown.
pub fn is_nosuid(path: &Path) -> Option<bool> {
    let cpath = c_path(path)?;
    // SAFETY: statvfs is plain old data; all-zero is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `cpath` is NUL-terminated; `st` is a valid, writable statvfs.
    let rc = unsafe { libc::statvfs(cpath.as_ptr(), &mut st) };
    (rc == 0).then_some(st.f_flag & libc::ST_NOSUID != 0)
}

/// True when this process may execute `path` (`access(X_OK)`, as execvp checks).
pub fn is_executable(path: &Path) -> bool {
    let Some(cpath) = c_path(path) else {
        return false;
    };
    // SAFETY: `cpath` is NUL-terminated and outlives the call.
    unsafe { libc::access(cpath.as_ptr(), libc::X_OK) == 0 }
}

/// True when a network interface called `name` exists in this network namespace.
pub fn interface_exists(name: &str) -> bool {
    if Path::new("/sys/class/net").join(name).exists() {
        return true;
    }
    let Ok(cname) = CString::new(name) else {
        return false;
    };
    // SAFETY: `cname` is NUL-terminated and outlives the call.
    unsafe { libc::if_nametoindex(cname.as_ptr()) != 0 }
}

#[cfg(target_os = "linux")]
/// Whether this process may set `SO_MARK` (`CAP_NET_ADMIN` or `CAP_NET_RAW` in its
/// effective set, from `/proc/self/status`); what the program it execs inherits.
pub fn may_set_mark() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return true;
    };
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
    // CAP_NET_ADMIN = 12, CAP_NET_RAW = 13.
    eff.is_none_or(|e| e & (1 << 12 | 1 << 13) != 0)
}

#[cfg(target_os = "linux")]
/// Takes an exclusive `flock` on `f` (waits for it); released when `f` is closed.
pub fn lock_exclusive(f: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd as _;
    loop {
        // SAFETY: a valid open descriptor; flock changes only its lock.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(target_os = "linux")]
/// The mount point of the cgroup v2 hierarchy's root (from `/proc/self/mountinfo`: a
/// `cgroup2` mount whose root is `/`), if one is mounted.
pub fn cgroup2_mount() -> Option<std::path::PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|l| {
        // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS... - FSTYPE SOURCE SUPER
        let (left, right) = l.split_once(" - ")?;
        let fstype = right.split_whitespace().next()?;
        let f: Vec<&str> = left.split_whitespace().collect();
        let mount = f.get(4)?;
        (fstype == "cgroup2" && f.get(3) == Some(&"/"))
            .then(|| std::path::PathBuf::from(unescape_mount(mount)))
    })
}

#[cfg(target_os = "linux")]
/// mountinfo's octal escapes (`\040` for a space).
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(target_os = "linux")]
/// Is `path` the root of a cgroup v2 file system?
pub fn is_cgroup2_root(path: &Path) -> bool {
    let Some(cpath) = c_path(path) else {
        return false;
    };
    // SAFETY: statfs is plain old data; all-zero is a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `cpath` is NUL-terminated; `st` is a valid, writable statfs.
    let rc = unsafe { libc::statfs(cpath.as_ptr(), &mut st) };
    rc == 0 && st.f_type as i64 == libc::CGROUP2_SUPER_MAGIC
}

#[cfg(target_os = "linux")]
/// Makes `cmd` run in a private mount namespace of its own with the cgroup v2
/// hierarchy mounted on `/sys/fs/cgroup` (where nft resolves `socket cgroupv2` paths).
pub fn pre_exec_mount_cgroup2(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: the closure runs in the forked child before exec and only makes system
    // calls (unshare, mount) on constant, NUL-terminated strings: async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let none = c"none";
            if libc::mount(
                none.as_ptr(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
                || libc::mount(
                    none.as_ptr(),
                    c"/sys/fs/cgroup".as_ptr(),
                    c"cgroup2".as_ptr(),
                    0,
                    std::ptr::null(),
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(target_os = "linux")]
/// Runs `work` in a detached process: a child of a child (reparented to init or the
/// nearest subreaper, so nobody has to wait for it), in a session of its own (no
/// terminal signals), with standard input and output on `/dev/null` and standard error
/// kept. Returns once the detached process exists. mifrun is single-threaded here.
pub fn spawn_detached(work: impl FnOnce()) -> std::io::Result<()> {
    // SAFETY: mifrun has a single thread, so the child may allocate and run Rust code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if pid > 0 {
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        return if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
            Ok(())
        } else {
            Err(std::io::Error::other("the reaper could not be started"))
        };
    }
    // SAFETY: in the child: setsid and a second fork, then the grandchild works and
    // exits without returning into the caller's code.
    unsafe {
        libc::setsid();
        let pid = libc::fork();
        if pid != 0 {
            libc::_exit(if pid > 0 { 0 } else { 1 });
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            if null > 2 {
                libc::close(null);
            }
        }
        // Nothing inherited stays open but standard error (a CI runner's pipe held
        // here would keep its reader waiting).
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    // A panic must not unwind into the caller's code in this process (it would go on
    // as mifrun and run the program a second time).
    let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).is_ok();
    // SAFETY: ends the detached process without running the parent's exit handlers.
    unsafe { libc::_exit(if ok { 0 } else { 1 }) }
}

#[cfg(target_os = "linux")]
/// Waits up to `ms` for `path` (a cgroup's `cgroup.events`) to change (`POLLPRI`).
pub fn wait_for_change(path: &Path, ms: i32) {
    let Ok(f) = std::fs::File::open(path) else {
        std::thread::sleep(std::time::Duration::from_millis(ms as u64));
        return;
    };
    use std::os::fd::AsRawFd as _;
    let mut pfd = libc::pollfd {
        fd: f.as_raw_fd(),
        events: libc::POLLPRI,
        revents: 0,
    };
    // Read through this descriptor, so that only a change after it wakes us.
    {
        use std::io::Read as _;
        let mut text = String::new();
        let _ = (&f).read_to_string(&mut text);
    }
    // SAFETY: pfd is a valid pollfd for the call.
    unsafe { libc::poll(&mut pfd, 1, ms) };
}

#[cfg(target_os = "linux")]
/// The C library's version (`gnu_get_libc_version`), e.g. `2.41`.
pub fn glibc_version() -> String {
    // SAFETY: gnu_get_libc_version takes no arguments and returns a pointer to a
    // static NUL-terminated string.
    let p = unsafe { libc::gnu_get_libc_version() };
    if p.is_null() {
        return String::new();
    }
    // SAFETY: `p` is non-null and points at a static C string (above).
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned()
}

#[cfg(target_os = "linux")]
/// `getaddrinfo(name, NULL, {AF_UNSPEC, SOCK_STREAM})` as the C library (or a preload
/// hooking it) answers: the addresses in order, or the `EAI_*` code and its text.
pub fn getaddrinfo(name: &str) -> Result<Vec<std::net::IpAddr>, (i32, String)> {
    let cname = CString::new(name).map_err(|_| (libc::EAI_NONAME, "NUL in name".into()))?;
    // SAFETY: addrinfo is plain old data; all-zero is a valid hints value.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = libc::AF_UNSPEC;
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: `cname` is NUL-terminated, `hints` is valid, `res` is writable; the
    // result is freed below with freeaddrinfo.
    let rc = unsafe { libc::getaddrinfo(cname.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 {
        // SAFETY: gai_strerror returns a static string for any code.
        let msg = unsafe { std::ffi::CStr::from_ptr(libc::gai_strerror(rc)) };
        return Err((rc, msg.to_string_lossy().into_owned()));
    }
    let mut out = Vec::new();
    let mut p = res;
    while !p.is_null() {
        // SAFETY: `p` is a node of the list getaddrinfo returned, not yet freed.
        let ai = unsafe { &*p };
        if !ai.ai_addr.is_null() {
            match ai.ai_family {
                libc::AF_INET => {
                    // SAFETY: an AF_INET node's ai_addr points at a sockaddr_in.
                    let sin = unsafe { &*(ai.ai_addr as *const libc::sockaddr_in) };
                    out.push(std::net::IpAddr::from(
                        u32::from_be(sin.sin_addr.s_addr).to_be_bytes(),
                    ));
                }
                libc::AF_INET6 => {
                    // SAFETY: an AF_INET6 node's ai_addr points at a sockaddr_in6.
                    let sin6 = unsafe { &*(ai.ai_addr as *const libc::sockaddr_in6) };
                    out.push(std::net::IpAddr::from(sin6.sin6_addr.s6_addr));
                }
                _ => {}
            }
        }
        p = ai.ai_next;
    }
    // SAFETY: `res` came from a successful getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(res) };
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_exists_and_nonsense_does_not() {
        assert!(interface_exists("lo"));
        assert!(!interface_exists("mifrun-nope0"));
        assert!(!interface_exists("a\0b"));
    }

    #[test]
    fn true_is_executable_and_has_no_caps() {
        let p = Path::new("/bin/sh");
        assert!(is_executable(p));
        let plain = std::env::temp_dir().join(format!("mifrun-sys-plain-{}", std::process::id()));
        std::fs::write(&plain, "x").unwrap();
        let exec = is_executable(&plain);
        std::fs::remove_file(&plain).unwrap();
        assert!(!exec);
        assert!(matches!(
            file_caps(p),
            FileCaps::None | FileCaps::Unknown(_)
        ));
        assert!(is_nosuid(Path::new("/")).is_some());
    }
}
