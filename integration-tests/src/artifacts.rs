//! Root check and the built files the tests run (`target/<profile>/`).

use std::path::{Path, PathBuf};

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

// Artifacts

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
