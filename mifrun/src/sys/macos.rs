//! macOS's counterparts of the Linux-only calls in `sys`: file capabilities (none on
//! macOS) and whether System Integrity Protection protects the file system.

use std::path::Path;

use super::FileCaps;

/// macOS has no file capabilities; privilege comes from set-ID bits and entitlements
/// (read from the code signature by `inspect::macho`).
pub fn file_caps(_path: &Path) -> FileCaps {
    FileCaps::None
}

/// `CSR_ALLOW_UNRESTRICTED_FS` (XNU `bsd/sys/csr.h`): set when SIP's file-system
/// protection is off (`csrutil disable`, or `csrutil enable --without fs`).
const CSR_ALLOW_UNRESTRICTED_FS: u32 = 1 << 1;

unsafe extern "C" {
    /// libsystem_kernel's wrapper of the `csrctl` system call (`bsd/sys/csr.h`):
    /// writes the active SIP configuration, returns 0 or -1 with errno.
    fn csr_get_active_config(config: *mut u32) -> libc::c_int;
}

/// Whether SIP protects the system's files, and with them (its runtime protection)
/// the processes started from them. Unknown (the call failed) counts as on.
pub fn sip_enabled() -> bool {
    let mut config = 0u32;
    // SAFETY: `config` is a valid, writable u32 for the duration of the call.
    let rc = unsafe { csr_get_active_config(&mut config) };
    rc != 0 || config & CSR_ALLOW_UNRESTRICTED_FS == 0
}
