//! The only `unsafe` in mifrun: thin, safe wrappers over a few libc calls.

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

fn c_path(path: &Path) -> Option<CString> {
    CString::new(path.as_os_str().as_bytes()).ok()
}

/// Result of looking for a `security.capability` extended attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileCaps {
    None,
    Present(Vec<u8>),
    /// The attribute could not be read (the error), so the answer is unknown.
    Unknown(String),
}

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
