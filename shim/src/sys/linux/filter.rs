//! The socket options that attach and read the classic BPF filters confining a listener
//! to one interface and loopback (`listen = "interface"`). The filter itself is built
//! by `mifshim-listen-filter` (shared with the seccomp supervisor); see its docs.

pub(crate) use mifshim_listen_filter::{
    MAX_INSNS, MAX_OWN, MAX_PREFIXES, Sources, ZERO, build, ours, program_part,
};

use super::{errno, real};
use libc::{c_int, c_void, sock_filter, sock_fprog, socklen_t};
use std::mem::size_of;

/// One instruction of a socket filter (classic BPF).
pub(crate) type Insn = sock_filter;

/// Why a wildcard listener cannot be confined to one interface here (`ops::confine`
/// refuses it then): never on Linux, where this module's filter does it (`listen =
/// "interface"`) or the device binding (`listen = "device"`, and the filter's
/// fallbacks), which the kernel's socket lookup enforces on arrival (another link's
/// SYN gets a RST).
pub(crate) const LISTENERS_UNCONFINABLE: Option<&str> = None;

// ---------------------------------------------------------------------------------
// The program's own filter options (`ops::setsockopt_filter`)
// ---------------------------------------------------------------------------------

/// `SO_ATTACH_BPF`: an eBPF program (which cannot be composed with the shim's filter).
pub(crate) fn is_attach_ebpf(name: c_int) -> bool {
    name == libc::SO_ATTACH_BPF
}

/// `SO_ATTACH_FILTER`: a classic filter.
pub(crate) fn is_attach_classic(name: c_int) -> bool {
    name == libc::SO_ATTACH_FILTER
}

/// `SO_DETACH_FILTER`.
pub(crate) fn is_detach(name: c_int) -> bool {
    name == libc::SO_DETACH_FILTER
}

// ---------------------------------------------------------------------------------
// Socket options
// ---------------------------------------------------------------------------------

/// Attaches `prog` to `fd` (`SO_ATTACH_FILTER`, replacing any filter; `EPERM` when the
/// filter is locked).
pub(crate) fn attach(fd: c_int, prog: &[sock_filter]) -> Result<(), c_int> {
    let fp = sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: fp points to prog.len() valid instructions, alive for the call; the
    // kernel copies them.
    let r = unsafe {
        real::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&raw const fp).cast(),
            size_of::<sock_fprog>() as socklen_t,
        )
    };
    if r == 0 { Ok(()) } else { Err(errno()) }
}

/// Removes `fd`'s filter (`SO_DETACH_FILTER`).
pub(crate) fn detach(fd: c_int) -> Result<(), c_int> {
    let v: c_int = 0;
    // SAFETY: v is a readable int.
    let r = unsafe {
        real::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_DETACH_FILTER,
            (&raw const v).cast(),
            size_of::<c_int>() as socklen_t,
        )
    };
    if r == 0 || errno() == libc::ENOENT {
        Ok(())
    } else {
        Err(errno())
    }
}

/// Reads `fd`'s classic filter into `buf` (`SO_GET_FILTER`): `Ok(0)` when there is
/// none, `Err(EACCES)` for an eBPF program (it has no classic form), `Err(EINVAL)`
/// when `buf` is too short.
pub(crate) fn get(fd: c_int, buf: &mut [sock_filter]) -> Result<usize, c_int> {
    // The length is counted in instructions, not bytes.
    let mut len = buf.len() as socklen_t;
    // SAFETY: buf has room for `len` instructions, which is what the kernel writes at
    // most; len is a valid socklen_t.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_GET_FILTER,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r == 0 {
        Ok(len as usize)
    } else {
        Err(errno())
    }
}

/// The number of instructions of `fd`'s classic filter (`Ok(0)`: none; `Err(EACCES)`:
/// an eBPF program).
pub(crate) fn len(fd: c_int) -> Result<usize, c_int> {
    let mut len: socklen_t = 0;
    // SAFETY: with a zero length the kernel only reports the count in `len`.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_GET_FILTER,
            std::ptr::null_mut(),
            &mut len,
        )
    };
    if r == 0 {
        Ok(len as usize)
    } else {
        Err(errno())
    }
}

/// Binds `fd` to interface `index` (`SO_BINDTOIFINDEX`): the fallback confinement.
pub(crate) fn bind_index(fd: c_int, index: u32) -> Result<(), c_int> {
    let v = index as c_int;
    // SAFETY: v is a readable int.
    let r = unsafe {
        real::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_BINDTOIFINDEX,
            (&raw const v).cast(),
            size_of::<c_int>() as socklen_t,
        )
    };
    if r == 0 { Ok(()) } else { Err(errno()) }
}

/// Whether `fd`'s filter is locked (`SO_LOCK_FILTER`).
pub(crate) fn locked(fd: c_int) -> bool {
    let mut v: c_int = 0;
    let mut len = size_of::<c_int>() as socklen_t;
    // SAFETY: v and len are valid for writes of the sizes given.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LOCK_FILTER,
            (&raw mut v).cast(),
            &mut len,
        )
    };
    r == 0 && v != 0
}

/// A program's `setsockopt` value for a filter option, not yet read: the shim never
/// dereferences the program's pointer itself, it hands it to the kernel.
#[derive(Clone, Copy)]
pub(crate) struct ProgramOpt {
    val: *const c_void,
    len: socklen_t,
}

impl ProgramOpt {
    pub(crate) fn new(val: *const c_void, len: socklen_t) -> Self {
        ProgramOpt { val, len }
    }

    /// Makes the program's own call (`SOL_SOCKET`, `name`) on `fd`, unchanged.
    pub(crate) fn forward(self, fd: c_int, name: c_int) -> Result<(), c_int> {
        // SAFETY: the program's arguments, forwarded as they were.
        let r = unsafe { real::setsockopt(fd, libc::SOL_SOCKET, name, self.val, self.len) };
        if r == 0 { Ok(()) } else { Err(errno()) }
    }

    /// Copies the program's filter into `buf`, validated as the kernel validates it:
    /// the kernel attaches it to a scratch socket (answering `EFAULT`, `EINVAL`,
    /// `ENOMEM` as it would for the program), and the shim reads the kernel's copy.
    pub(crate) fn read_filter(self, buf: &mut [sock_filter]) -> Result<usize, c_int> {
        // SAFETY: plain socket creation (the real function: the shim's own sockets
        // never pass through its hooks).
        let s = unsafe { real::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if s < 0 {
            return Err(errno());
        }
        // SAFETY: the program's setsockopt arguments, handed to the kernel as they
        // were; the kernel checks the pointer and the length.
        let r = unsafe {
            real::setsockopt(
                s,
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                self.val,
                self.len,
            )
        };
        let out = if r == 0 { get(s, buf) } else { Err(errno()) };
        // SAFETY: s is our own socket. A raw close: the C library's is a cancellation
        // point, and this runs inside a hook.
        unsafe { libc::syscall(libc::SYS_close, s) };
        out
    }
}

/// Room for a program's filter, the one read back from a socket and the composition:
/// an anonymous mapping (no malloc: hooks may run in signal handlers), unmapped on drop.
pub(crate) struct Scratch {
    p: *mut sock_filter,
}

const SCRATCH_INSNS: usize = 3 * MAX_INSNS;
const SCRATCH_BYTES: usize = SCRATCH_INSNS * size_of::<sock_filter>();

impl Scratch {
    pub(crate) fn new() -> Option<Scratch> {
        let p = super::map_zeroed(SCRATCH_BYTES)?;
        Some(Scratch { p: p.cast() })
    }

    /// Three buffers of [`MAX_INSNS`] instructions.
    pub(crate) fn parts(&mut self) -> [&mut [sock_filter]; 3] {
        // SAFETY: the mapping holds SCRATCH_INSNS zeroed (valid) instructions, is
        // page-aligned, and is only reachable through `&mut self`; the three slices
        // do not overlap.
        let all = unsafe { std::slice::from_raw_parts_mut(self.p, SCRATCH_INSNS) };
        let (a, rest) = all.split_at_mut(MAX_INSNS);
        let (b, c) = rest.split_at_mut(MAX_INSNS);
        [a, b, c]
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // SAFETY: the mapping came from map_zeroed and no slice of it outlives self.
        unsafe { super::unmap(self.p.cast(), SCRATCH_BYTES) };
    }
}

#[cfg(test)]
mod tests;
