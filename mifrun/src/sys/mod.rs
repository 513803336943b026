//! The only `unsafe` in mifrun: thin, safe wrappers over a few libc calls (and, in
//! `netlink`, the route socket's system calls).

pub mod netlink;

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
