//! The exec hooks: a steered process that execs a program the preload cannot steer
//! (static, Go, linked for another loader than glibc's, of another ABI; or a script
//! whose interpreter is one of those) runs it under the supervisor instead —
//! `$MIFSHIM_MIFRUN --supervise [--via V] [--policy P] [--dns D] --allow-missing --
//! PATH ARGS…`, with the same environment — and when no mifrun is known (a plain
//! `LD_PRELOAD` user) the exec fails closed: `EACCES`, one line on standard error.
//!
//! What the kernel will run is decided by `mifshim_execcheck::decide` (pure, unit-tested);
//! this module is its I/O and the calls: `execve`, `execveat`, `fexecve`, `execv`,
//! `execvp`, `execvpe` (the list's `check`s), `execl`, `execlp`, `execle` (variadic:
//! naked entry points below), `posix_spawn`, `posix_spawnp`, `system`, `popen`
//! (lib.rs's hooks call [`spawn_check`], [`shell_check`]).
//!
//! These run in `vfork` children and after `fork` in multithreaded programs: no
//! allocation (an argument vector that does not fit the stack buffers is an anonymous
//! mapping), no lock, no C library call (raw system calls, so errno is untouched on the
//! way to the real call), nothing that unwinds. And on small stacks (a `clone` child's
//! few KiB, a thread's 16 KiB): the buffers are sized by what the exec needs, a 4 KiB
//! one only for a path that needs it ([`check::with_buf`]). Not a mapping per exec: one
//! made in a `vfork` child whose exec succeeds stays in the parent. A file that cannot
//! be opened (missing, no read permission) is left to the kernel's own answer, as is
//! one the kernel would refuse anyway.

use core::ffi::{c_char, c_int, c_long, c_void};
use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering::*};
use mifshim_abi::set_errno;
use mifshim_execcheck::{self as check, Probe, Verdict};

// ---------------------------------------------------------------------------------
// Raw system calls
// ---------------------------------------------------------------------------------

/// A system call with up to five arguments: the kernel's return value (`-errno` on
/// failure). Errno is not touched.
///
/// # Safety
/// `n` and the arguments are a valid system call for the kernel's contract.
#[cfg(target_arch = "x86_64")]
unsafe fn sys(n: c_long, a: usize, b: usize, c: usize, d: usize, e: usize) -> isize {
    let r: isize;
    // SAFETY: the caller's contract; the syscall instruction clobbers rcx and r11.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") n as isize => r,
            in("rdi") a, in("rsi") b, in("rdx") c, in("r10") d, in("r8") e,
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        )
    };
    r
}

/// See the x86-64 version.
///
/// # Safety
/// As there.
#[cfg(target_arch = "aarch64")]
unsafe fn sys(n: c_long, a: usize, b: usize, c: usize, d: usize, e: usize) -> isize {
    let r: isize;
    // SAFETY: the caller's contract.
    unsafe {
        core::arch::asm!(
            "svc 0",
            in("x8") n,
            inlateout("x0") a as isize => r,
            in("x1") b, in("x2") c, in("x3") d, in("x4") e,
            options(nostack),
        )
    };
    r
}

/// A system call of six arguments (`mmap`: its offset is the sixth; with [`sys`] it
/// was whatever `r9` held, and a misaligned one made `mmap` fail with `EINVAL`).
///
/// # Safety
/// As [`sys`].
#[cfg(target_arch = "x86_64")]
unsafe fn sys6(n: c_long, a: usize, b: usize, c: usize, d: usize, e: usize, f: usize) -> isize {
    let r: isize;
    // SAFETY: the caller's contract; the syscall instruction clobbers rcx and r11.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") n as isize => r,
            in("rdi") a, in("rsi") b, in("rdx") c, in("r10") d, in("r8") e, in("r9") f,
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        )
    };
    r
}

/// See the x86-64 version.
///
/// # Safety
/// As there.
#[cfg(target_arch = "aarch64")]
unsafe fn sys6(n: c_long, a: usize, b: usize, c: usize, d: usize, e: usize, f: usize) -> isize {
    let r: isize;
    // SAFETY: the caller's contract.
    unsafe {
        core::arch::asm!(
            "svc 0",
            in("x8") n,
            inlateout("x0") a as isize => r,
            in("x1") b, in("x2") c, in("x3") d, in("x4") e, in("x5") f,
            options(nostack),
        )
    };
    r
}

/// An open file, closed when dropped.
struct Fd(c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: close of a descriptor this module opened.
        unsafe { sys(libc::SYS_close, self.0 as usize, 0, 0, 0, 0) };
    }
}

/// A descriptor the program gave (`fexecve`, `execveat(AT_EMPTY_PATH)`): read, never
/// closed.
struct Borrowed(c_int);

fn pread(fd: c_int, buf: &mut [u8], off: u64) -> Option<usize> {
    loop {
        // SAFETY: buf is valid for writes of its length.
        let r = unsafe {
            sys(
                libc::SYS_pread64,
                fd as usize,
                buf.as_mut_ptr() as usize,
                buf.len(),
                off as usize,
                0,
            )
        };
        match r {
            r if r >= 0 => return Some(r as usize),
            r if r == -(libc::EINTR as isize) => continue,
            _ => return None,
        }
    }
}

impl check::File for Fd {
    fn read_at(&mut self, buf: &mut [u8], off: u64) -> Option<usize> {
        pread(self.0, buf, off)
    }
}

impl check::File for Borrowed {
    fn read_at(&mut self, buf: &mut [u8], off: u64) -> Option<usize> {
        pread(self.0, buf, off)
    }
}

/// The file system through raw system calls.
struct Sys {
    /// Where relative paths are resolved: the current directory (`AT_FDCWD`), or the
    /// directory a `posix_spawn` child execs in. `#!` interpreters and `PATH` entries
    /// are resolved here, as the kernel and `execvp` resolve them.
    cwd: c_int,
    /// Where the exec's own path is resolved (`execveat`'s directory descriptor).
    target: c_int,
    /// The exec's own path is not followed if it is a link (`AT_SYMLINK_NOFOLLOW`:
    /// about that file only; its interpreter is followed).
    nofollow: bool,
}

/// Paths relative to the current directory, links followed.
fn cwd() -> Sys {
    Sys {
        cwd: libc::AT_FDCWD,
        target: libc::AT_FDCWD,
        nofollow: false,
    }
}

/// Opens `path` (relative to `dirfd`) for reading when it is a regular file.
fn open_regular(dirfd: c_int, path: &[u8], nofollow: bool) -> Option<Fd> {
    // Non-blocking and without a controlling terminal: a FIFO or a device named as
    // the program must not block the exec (the kernel answers EACCES for it at
    // once) or become the session's terminal; only a regular file is read.
    let flags = libc::O_RDONLY
        | libc::O_CLOEXEC
        | libc::O_NONBLOCK
        | libc::O_NOCTTY
        | if nofollow { libc::O_NOFOLLOW } else { 0 };
    // SAFETY: path is NUL-terminated (execcheck's contract).
    let r = unsafe {
        sys(
            libc::SYS_openat,
            dirfd as usize,
            path.as_ptr() as usize,
            flags as usize,
            0,
            0,
        )
    };
    if r < 0 {
        return None;
    }
    let fd = Fd(r as c_int);
    // SAFETY: a zeroed stat is a valid buffer for the kernel to fill.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: fd is open; st is writable.
    let r = unsafe {
        sys(
            libc::SYS_fstat,
            fd.0 as usize,
            (&raw mut st) as usize,
            0,
            0,
            0,
        )
    };
    // Anything else is the kernel's to refuse (Fd closes on drop).
    (r == 0 && st.st_mode & libc::S_IFMT == libc::S_IFREG).then_some(fd)
}

/// `faccessat2(dirfd, path, X_OK, AT_EACCESS)`: whether the effective ids may execute
/// `path`, as the kernel's exec checks (the plain `faccessat` checks the real ids, and
/// a process whose ids differ was told "not executable" where its exec runs the file).
/// Before Linux 5.8, or where a sandbox refuses it, `faccessat`.
fn executable(dirfd: c_int, path: &[u8]) -> bool {
    // SAFETY: path is NUL-terminated; integer arguments.
    let r = unsafe {
        sys(
            libc::SYS_faccessat2,
            dirfd as usize,
            path.as_ptr() as usize,
            libc::X_OK as usize,
            libc::AT_EACCESS as usize,
            0,
        )
    };
    if r != -(libc::ENOSYS as isize) && r != -(libc::EPERM as isize) {
        return r == 0;
    }
    // SAFETY: as above.
    let r = unsafe {
        sys(
            libc::SYS_faccessat,
            dirfd as usize,
            path.as_ptr() as usize,
            libc::X_OK as usize,
            0,
            0,
        )
    };
    r == 0
}

impl check::Fs for Sys {
    type F = Fd;
    fn open(&mut self, path: &[u8]) -> Option<Fd> {
        open_regular(self.cwd, path, false)
    }

    fn open_target(&mut self, path: &[u8]) -> Option<Fd> {
        open_regular(self.target, path, self.nofollow)
    }

    fn probe(&mut self, path: &[u8]) -> Probe {
        // SAFETY: a zeroed stat is a valid buffer for the kernel to fill.
        let mut st: libc::stat = unsafe { core::mem::zeroed() };
        // SAFETY: path is NUL-terminated; st is writable.
        let r = unsafe {
            sys(
                libc::SYS_newfstatat,
                self.cwd as usize,
                path.as_ptr() as usize,
                (&raw mut st) as usize,
                0,
                0,
            )
        };
        if r < 0 {
            return Probe::Missing;
        }
        if st.st_mode & libc::S_IFMT == libc::S_IFREG && executable(self.cwd, path) {
            Probe::Executable
        } else {
            Probe::NotExecutable
        }
    }
}

// ---------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------

/// Set by `mifshim_exec_as_is` (a preloaded mifrun: its execs are its own decision).
static AS_IS: AtomicBool = AtomicBool::new(false);

/// ## Entry point
/// Called by a `mifrun` that finds this stub preloaded into itself (`dlsym`): the
/// programs it execs are its own decision (the preload, the supervisor), so this
/// process's execs are not inspected.
#[unsafe(no_mangle)]
pub extern "C" fn mifshim_exec_as_is() {
    AS_IS.store(true, Release);
}

/// The variables the supervisor's command line is built from, as this process's
/// start-up saw them (pointers into the environment block; NULL when unset).
pub(crate) static MIFRUN: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());
pub(crate) static VIA: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());
pub(crate) static POLICY: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());
pub(crate) static DNS: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());
/// `MIFSHIM_SUPERVISED` (mifrun's supervisor sets it for its program).
pub(crate) static SUPERVISED: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());

/// Whether this process runs under mifrun's supervisor: its program's environment
/// says so and a seccomp filter is in force (`Seccomp: 2` in `/proc/self/status`;
/// a filter is never removed, and every descendant inherits it). Supervisors do not
/// nest, so there a program the preload cannot steer is exec'ed as is.
fn supervised() -> bool {
    if SUPERVISED.load(Acquire).is_null() {
        return false;
    }
    let Some(mut f) = check::Fs::open(&mut cwd(), b"/proc/self/status\0") else {
        return false;
    };
    // Read in pieces (a few hundred bytes of stack), each starting with the last bytes
    // of the one before so that the line is found across a boundary.
    const KEY: &[u8] = b"\nSeccomp:\t2";
    let mut buf = [0u8; 256];
    let (mut off, mut kept) = (0u64, 0usize);
    loop {
        let n = match check::File::read_at(&mut f, &mut buf[kept..], off) {
            Some(0) | None => return false,
            Some(k) => k,
        };
        off += n as u64;
        let have = kept + n;
        if buf[..have].windows(KEY.len()).any(|w| w == KEY) {
            return true;
        }
        kept = (KEY.len() - 1).min(have);
        buf.copy_within(have - kept..have, 0);
    }
}

/// Whether this process's execs are inspected: it is steered, and it is not mifrun.
fn inspecting() -> bool {
    !AS_IS.load(Acquire) && super::active()
}

/// The bytes of a NUL-terminated string, without the NUL.
///
/// # Safety
/// `p` is NULL or a valid NUL-terminated string.
unsafe fn bytes<'a>(p: *const c_char) -> Option<&'a [u8]> {
    // SAFETY: the caller's contract.
    (!p.is_null())
        .then(|| unsafe { core::slice::from_raw_parts(p.cast::<u8>(), super::cstr_len(p)) })
}

/// The bytes of a NUL-terminated string, with its NUL.
///
/// # Safety
/// As [`bytes`].
unsafe fn with_nul<'a>(p: *const c_char) -> Option<&'a [u8]> {
    // SAFETY: the caller's contract.
    (!p.is_null())
        .then(|| unsafe { core::slice::from_raw_parts(p.cast::<u8>(), super::cstr_len(p) + 1) })
}

/// The granule of [`Readable`]'s probes: the smallest page size (a larger page is a
/// whole number of them, so a probe per 4 KiB is never wrong, only more).
const GRANULE: usize = 4096;

/// Which of an exec's argument pointers the kernel could read: each 4 KiB it touches
/// is probed once (`process_vm_readv` of one byte of this process, which answers
/// `EFAULT` where a read would fault), the last few remembered. The kernel answers a
/// bad path, `argv` or `envp` with `EFAULT`; the hook reads them first, so it must
/// ask before it reads (an `execve` with a bad pointer died of SIGSEGV in the hook).
struct Readable {
    seen: [usize; 8],
    next: usize,
}

impl Readable {
    fn new() -> Self {
        Readable {
            seen: [usize::MAX; 8],
            next: 0,
        }
    }

    /// Whether the granule holding `addr` is readable; `true` when the probe itself
    /// is refused (`ENOSYS`, `EPERM` under a sandbox's filter): no worse than before.
    fn granule(&mut self, addr: usize) -> bool {
        let g = addr & !(GRANULE - 1);
        if self.seen.contains(&g) {
            return true;
        }
        let mut byte = 0u8;
        let local = libc::iovec {
            iov_base: (&mut byte as *mut u8).cast(),
            iov_len: 1,
        };
        let remote = libc::iovec {
            iov_base: addr as *mut c_void,
            iov_len: 1,
        };
        // SAFETY: getpid has no arguments and cannot fail; a raw call keeps errno.
        let pid = unsafe { sys(libc::SYS_getpid, 0, 0, 0, 0, 0) } as usize;
        // SAFETY: reads one byte of this process into `byte`; the kernel checks the
        // remote address (`EFAULT`), which is the point. A raw call keeps errno.
        let r = unsafe {
            sys6(
                libc::SYS_process_vm_readv,
                pid,
                (&local as *const libc::iovec) as usize,
                1,
                (&remote as *const libc::iovec) as usize,
                1,
                0,
            )
        };
        if r == -(libc::EFAULT as isize) {
            return false;
        }
        self.seen[self.next] = g;
        self.next = (self.next + 1) % self.seen.len();
        true
    }

    /// Whether the NUL-terminated string at `p` (not NULL) can be read to its end.
    fn string(&mut self, p: *const c_char) -> bool {
        let mut at = p as usize;
        loop {
            if !self.granule(at) {
                return false;
            }
            let end = (at | (GRANULE - 1)) + 1;
            while at < end {
                // SAFETY: `at` lies in a granule just found readable.
                if unsafe { *(at as *const u8) } == 0 {
                    return true;
                }
                at += 1;
            }
        }
    }

    /// Whether the NULL-terminated array of strings `a` (NULL: none) and every
    /// string in it can be read.
    fn strings(&mut self, a: *const *const c_char) -> bool {
        if a.is_null() {
            return true;
        }
        let mut i = 0;
        loop {
            // SAFETY: pointer arithmetic only; the slot is probed before it is read.
            let slot = unsafe { a.add(i) };
            let last = slot as usize + size_of::<*const c_char>() - 1;
            if !self.granule(slot as usize) || !self.granule(last) {
                return false;
            }
            // SAFETY: the slot's bytes were found readable.
            let s = unsafe { slot.read_unaligned() };
            if s.is_null() {
                return true;
            }
            if !self.string(s) {
                return false;
            }
            i += 1;
        }
    }
}

/// Whether the kernel could read an exec's `path` (NULL: none to read), `argv` and
/// `envp`: else the exec fails with `EFAULT`, as the kernel's does.
fn exec_args_readable(
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> bool {
    let mut r = Readable::new();
    (path.is_null() || r.string(path)) && r.strings(argv) && r.strings(envp)
}

/// `NAME=`'s value in the environment block `envp`.
///
/// # Safety
/// `envp` is NULL or a NULL-terminated array of valid strings.
unsafe fn env_value<'a>(envp: *const *const c_char, name: &[u8]) -> Option<&'a [u8]> {
    if envp.is_null() {
        return None;
    }
    let mut i = 0;
    loop {
        // SAFETY: the caller's contract: every entry up to the NULL is readable.
        let s = unsafe { *envp.add(i) };
        // SAFETY: as above: a valid string.
        let b = unsafe { bytes(s) }?;
        if let Some(v) = b.strip_prefix(name).and_then(|r| r.strip_prefix(b"=")) {
            return Some(v);
        }
        i += 1;
    }
}

/// The address of the process's `environ` variable: the program's own copy when it
/// has one (a copy relocation: the C library's then goes stale), so looked up in the
/// global scope (`RTLD_DEFAULT`), not past this object as the `Lazy` functions are.
static ENVIRON: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());

/// Finds `environ` (normal context: the constructor's, or before a fork from the engine's
/// load; a hook in a child finds it there).
pub(crate) fn resolve() {
    if ENVIRON.load(Acquire).is_null() {
        let saved = mifshim_abi::errno();
        // SAFETY: a NUL-terminated name; RTLD_DEFAULT searches the global scope.
        let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"environ".as_ptr()) };
        set_errno(saved);
        ENVIRON.store(p, Release);
    }
}

/// The calling process's environment (`environ`).
fn environ() -> *const *const c_char {
    resolve();
    let p = ENVIRON.load(Acquire);
    if p.is_null() {
        return core::ptr::null();
    }
    // SAFETY: `environ` is the C library's `char **environ`.
    unsafe { *p.cast::<*const *const c_char>() }
}

// ---------------------------------------------------------------------------------
// What happens to an exec
// ---------------------------------------------------------------------------------

/// Where the program to exec is.
#[derive(Clone, Copy)]
enum Target<'a> {
    /// A path (NUL-terminated), relative to the current directory.
    Path(&'a [u8]),
    /// A path relative to a directory descriptor, or a descriptor: decided, but not
    /// nameable for mifrun.
    Unnamed,
}

/// What the hook does instead of the call: `None`, go on to the C library with the
/// program's arguments; `Some(errno)`, fail the call with it (the supervisor's exec, if
/// tried, failed too).
fn verdict_for(
    target: Target<'_>,
    verdict: Verdict,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> Option<c_int> {
    let Verdict::Supervise(why) = verdict else {
        return None;
    };
    if supervised() {
        return match (why, target) {
            // Its loader must not meet our library (it cannot load it).
            (check::Why::Elf(check::Elf::ForeignLoader, _), Target::Path(path)) => {
                Some(with_env_without_preload(envp, |env| {
                    // SAFETY: path is NUL-terminated; argv and env are NULL-terminated
                    // arrays of strings that live across the call. Returns only when
                    // the exec failed.
                    let r = unsafe {
                        sys(
                            libc::SYS_execve,
                            path.as_ptr() as usize,
                            argv as usize,
                            env as usize,
                            0,
                            0,
                        )
                    };
                    (-r) as c_int
                }))
            }
            (check::Why::Elf(check::Elf::ForeignLoader, _), Target::Unnamed) => {
                refuse(
                    b"(a file descriptor)",
                    why,
                    b"LD_PRELOAD cannot be kept from it when it is exec'ed by descriptor",
                );
                Some(libc::EACCES)
            }
            // The supervisor's filter, inherited, steers it.
            _ => None,
        };
    }
    let Target::Path(path) = target else {
        refuse(
            b"(a file descriptor)",
            why,
            b"it is exec'ed by descriptor, which cannot be handed to the supervisor",
        );
        return Some(libc::EACCES);
    };
    let shown = &path[..path.len() - 1];
    // SAFETY: MIFRUN is NULL or a NUL-terminated value of the environment block.
    let mifrun =
        unsafe { with_nul(MIFRUN.load(Acquire).cast()) }.filter(|m| m.first() == Some(&b'/'));
    let Some(mifrun) = mifrun else {
        refuse(
            shown,
            why,
            b"no mifrun started this process (MIFSHIM_MIFRUN is unset)",
        );
        return Some(libc::EACCES);
    };
    let err = with_supervisor_argv(mifrun, path, argv, |new| {
        // SAFETY: mifrun is NUL-terminated; new and envp are NULL-terminated arrays of
        // strings that live across the call. Returns only when it failed.
        let r = unsafe {
            sys(
                libc::SYS_execve,
                mifrun.as_ptr() as usize,
                new as usize,
                envp as usize,
                0,
                0,
            )
        };
        (-r) as c_int
    });
    // What the program's own exec would have met too (the arguments and environment
    // are its own, with ten more arguments): the kernel's answer, not a refusal.
    if matches!(err, libc::E2BIG | libc::ENOMEM | libc::EFAULT) {
        return Some(err);
    }
    refuse(
        shown,
        why,
        b"its supervisor (MIFSHIM_MIFRUN) could not be executed",
    );
    Some(libc::EACCES)
}

/// One line on standard error: the program, why the preload cannot steer it, why it
/// is not supervised, and what works.
fn refuse(program: &[u8], why: check::Why, because: &[u8]) {
    if super::STDERR_CLOSED.load(Acquire) {
        return;
    }
    let parts: [&[u8]; 7] = [
        b"mifshim: not running ",
        program,
        b": it ",
        why.text().as_bytes(),
        b", which a preload cannot steer, and ",
        because,
        b"; run it under `mifrun --supervise`\n",
    ];
    let mut iov = [libc::iovec {
        iov_base: core::ptr::null_mut(),
        iov_len: 0,
    }; 7];
    for (v, p) in iov.iter_mut().zip(parts) {
        v.iov_base = p.as_ptr().cast_mut().cast();
        v.iov_len = p.len();
    }
    // SAFETY: the iovecs describe the slices above, valid for reads.
    unsafe { sys(libc::SYS_writev, 2, iov.as_ptr() as usize, iov.len(), 0, 0) };
}

/// Calls `f` with an array of `total` pointers that `fill` wrote, in [`with_words`]'s
/// words: on the stack when it fits, else in an anonymous mapping. `ENOMEM` when it
/// cannot be mapped.
fn with_array(
    total: usize,
    fill: impl FnOnce(*mut *const c_char),
    f: impl FnOnce(*const *const c_char) -> c_int,
) -> c_int {
    with_words(total, |base| {
        let buf = base.cast::<*const c_char>();
        fill(buf);
        f(buf.cast_const())
    })
}

/// The number of entries of a NULL-terminated array (0 for NULL).
///
/// # Safety
/// `a` is NULL or a NULL-terminated array.
unsafe fn count(a: *const *const c_char) -> usize {
    let mut n = 0;
    // SAFETY: the caller's contract.
    while !a.is_null() && !unsafe { *a.add(n) }.is_null() {
        n += 1;
    }
    n
}

/// Calls `f` with `envp` without its `LD_PRELOAD` entries.
fn with_env_without_preload(
    envp: *const *const c_char,
    f: impl FnOnce(*const *const c_char) -> c_int,
) -> c_int {
    // SAFETY: exec's contract: envp is NULL or a NULL-terminated array of strings.
    let n = unsafe { count(envp) };
    let fill = |buf: *mut *const c_char| {
        let mut k = 0;
        for i in 0..n {
            // SAFETY: i < n entries of envp, each a valid string.
            let (p, b) = unsafe { (*envp.add(i), bytes(*envp.add(i))) };
            if !b.is_some_and(|b| b.starts_with(b"LD_PRELOAD=")) {
                // SAFETY: k <= i < n + 1 entries of buf.
                unsafe { *buf.add(k) = p };
                k += 1;
            }
        }
        // SAFETY: k <= n: the last entry used.
        unsafe { *buf.add(k) = core::ptr::null() };
    };
    with_array(n + 1, fill, f)
}

/// Calls `f` with the supervisor's argument vector: `MIFRUN --supervise
/// --allow-missing [--via V] [--policy P] [--dns D] [--argv0 ARGV[0]] -- PATH ARGV[1..]`
/// (NULL-terminated;
/// `PATH` made `./PATH` when it has no `/`, so that mifrun does not look it up in
/// `PATH`). On the stack when it fits, else in an anonymous mapping, unmapped after
/// `f`. Returns what `f` returns, or `ENOMEM`.
fn with_supervisor_argv(
    mifrun: &[u8],
    path: &[u8],
    argv: *const *const c_char,
    f: impl FnOnce(*const *const c_char) -> c_int,
) -> c_int {
    // A name without a `/` is one file name (at most NAME_MAX, 255 bytes, else the
    // kernel's ENAMETOOLONG).
    let mut dotted = [0u8; 258];
    let path: *const c_char = if path.contains(&b'/') {
        path.as_ptr().cast()
    } else {
        match dotted.get_mut(..path.len() + 2) {
            Some(d) => {
                d[..2].copy_from_slice(b"./");
                d[2..].copy_from_slice(path);
                d.as_ptr().cast()
            }
            None => return libc::ENAMETOOLONG,
        }
    };
    let mut head: [*const c_char; 14] = [core::ptr::null(); 14];
    let mut n = 0;
    let mut push = |p: *const c_char| {
        head[n] = p;
        n += 1;
    };
    push(mifrun.as_ptr().cast());
    push(c"--supervise".as_ptr());
    push(c"--allow-missing".as_ptr());
    for (flag, var) in [(c"--via", &VIA), (c"--policy", &POLICY), (c"--dns", &DNS)] {
        let v = var.load(Acquire);
        if !v.is_null() {
            push(flag.as_ptr());
            push(v.cast());
        }
    }
    // The program's own argv[0] (a multi-call binary exec'ed under another name).
    let argv0 = if argv.is_null() {
        core::ptr::null()
    } else {
        // SAFETY: execve's contract: argv is NULL or a NULL-terminated array.
        unsafe { *argv }
    };
    if !argv0.is_null() {
        push(c"--argv0".as_ptr());
        push(argv0);
    }
    push(c"--".as_ptr());
    push(path);
    // The program's own arguments after argv[0].
    // SAFETY: execve's contract: argv is NULL or a NULL-terminated array.
    let rest = unsafe { count(argv) }.saturating_sub(1);
    let total = n + rest + 1;
    let fill = |buf: *mut *const c_char| {
        for (i, p) in head[..n].iter().enumerate() {
            // SAFETY: i < n <= total entries of buf.
            unsafe { *buf.add(i) = *p };
        }
        for i in 0..rest {
            // SAFETY: i + 1 <= rest entries of argv after argv[0]; n + i < total.
            unsafe { *buf.add(n + i) = *argv.add(i + 1) };
        }
        // SAFETY: the last entry of buf.
        unsafe { *buf.add(total - 1) = core::ptr::null() };
    };
    with_array(total, fill, f)
}

/// The new program's `PATH` (for `#!/usr/bin/env NAME`).
///
/// # Safety
/// `envp` is NULL or a valid environment block.
unsafe fn path_of<'a>(envp: *const *const c_char) -> Option<&'a [u8]> {
    // SAFETY: the caller's contract.
    unsafe { env_value(envp, b"PATH") }
}

/// An exec of `path` with `argv`, `envp`: `None` to go on with the call, `Some(errno)`
/// to fail it.
///
/// # Safety
/// The arguments of `execve`.
unsafe fn exec_path(
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> Option<c_int> {
    // SAFETY: execve's contract.
    let p = unsafe { with_nul(path) }?;
    // SAFETY: as above.
    let v = check::decide(&mut cwd(), p, unsafe { path_of(envp) });
    verdict_for(Target::Path(p), v, argv, envp).or_else(|| {
        // SAFETY: execve's contract; the new block lives across the call.
        unsafe { with_preload_env(envp, |e| raw_execve(path, argv, e)) }
    })
}

/// An exec that searches `PATH` as glibc's `execvp` does (the calling process's
/// `PATH`): the file it will run is decided.
///
/// # Safety
/// The arguments of `execvpe`.
unsafe fn exec_search(
    file: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> Option<c_int> {
    // SAFETY: execvp's contract.
    let name = unsafe { bytes(file) }?;
    // SAFETY: environ is the process's environment block.
    let path_var = unsafe { env_value(environ(), b"PATH") };
    check::with_search(&mut cwd(), name, path_var, |fs, found| {
        // Nothing to run: execvp's own errno, here (the C library's search, past every
        // hook, could find what this one did not).
        let path = match found {
            Ok(p) => p,
            Err(e) => return Some(not_found_errno(e)),
        };
        // SAFETY: execvpe's contract.
        let v = check::decide(fs, path, unsafe { path_of(envp) });
        verdict_for(Target::Path(path), v, argv, envp).or_else(|| {
            // Exec'ed here, not by the C library's execvp, even with the environment
            // as it is: its ENOEXEC fallback (`/bin/sh FILE`) runs past every hook.
            // SAFETY: execvpe's contract; the new block lives across the call.
            let r = unsafe { with_preload_env(envp, |e| exec_or_shell(path, argv, e)) };
            // SAFETY: as above.
            Some(r.unwrap_or_else(|| unsafe { exec_or_shell(path, argv, envp) }))
        })
    })
}

/// What the C library's `execvp` fails with when its search finds nothing.
fn not_found_errno(e: check::NotFound) -> c_int {
    match e {
        check::NotFound::None { denied: true } => libc::EACCES,
        check::NotFound::None { denied: false } => libc::ENOENT,
        check::NotFound::NameTooLong => libc::ENAMETOOLONG,
        // with_search answers the longer search itself.
        check::NotFound::Longer => libc::ENAMETOOLONG,
    }
}

/// `execve(path)`, and for a file the kernel does not run (neither ELF nor `#!`:
/// `ENOEXEC`) glibc's execvp fallback, `/bin/sh PATH ARGS`, the shell checked like any
/// exec (a static `/bin/sh` is supervised, or refused). Returns the errno it failed
/// with.
///
/// # Safety
/// `path` is NUL-terminated; `argv` and `envp` are execve's.
unsafe fn exec_or_shell(
    path: &[u8],
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    // SAFETY: the caller's contract.
    let r = unsafe { raw_execve(path.as_ptr().cast(), argv, envp) };
    if r != libc::ENOEXEC {
        return r;
    }
    const SH: &[u8] = b"/bin/sh\0";
    // SAFETY: the caller's contract: argv is NULL or NULL-terminated.
    let rest = unsafe { count(argv) }.saturating_sub(1);
    let fill = |buf: *mut *const c_char| {
        // SAFETY: buf has rest + 3 entries; argv has rest after argv[0].
        unsafe {
            *buf = SH.as_ptr().cast();
            *buf.add(1) = path.as_ptr().cast();
            for i in 0..rest {
                *buf.add(2 + i) = *argv.add(1 + i);
            }
            *buf.add(2 + rest) = core::ptr::null();
        }
    };
    with_array(rest + 3, fill, |sh| {
        // SAFETY: the caller's contract (envp).
        let v = check::decide(&mut cwd(), SH, unsafe { path_of(envp) });
        verdict_for(Target::Path(SH), v, sh, envp).unwrap_or_else(|| {
            // SAFETY: SH is NUL-terminated; sh and envp live across the call.
            unsafe { raw_execve(SH.as_ptr().cast(), sh, envp) }
        })
    })
}

/// Fails the call with `errno`: `-1`.
fn failed(errno: c_int) -> c_int {
    set_errno(errno);
    -1
}

// ---------------------------------------------------------------------------------
// The checks of the list (`mifshim_abi::hooked_calls!`, `check:`)
// ---------------------------------------------------------------------------------

/// `execve(2)`.
pub(crate) fn execve_check(
    (path, argv, envp): (*const c_char, *const *const c_char, *const *const c_char),
) -> Option<c_int> {
    if !inspecting() {
        return None;
    }
    if path.is_null() || !exec_args_readable(path, argv, envp) {
        return Some(failed(libc::EFAULT));
    }
    // SAFETY: the program's arguments to execve, found readable.
    unsafe { exec_path(path, argv, envp) }.map(failed)
}

/// `execv(3)`: `execve` with `environ`.
pub(crate) fn execv_check((path, argv): (*const c_char, *const *const c_char)) -> Option<c_int> {
    if !inspecting() {
        return None;
    }
    // glibc's `execv` is `execve` with `environ`: the kernel reads the pointers.
    if path.is_null() || !exec_args_readable(path, argv, environ()) {
        return Some(failed(libc::EFAULT));
    }
    // SAFETY: the program's arguments, found readable; environ is the process's block.
    unsafe { exec_path(path, argv, environ()) }.map(failed)
}

/// `execvp(3)`: `PATH` searched.
pub(crate) fn execvp_check((file, argv): (*const c_char, *const *const c_char)) -> Option<c_int> {
    if !inspecting() {
        return None;
    }
    // SAFETY: the program's arguments; environ is the process's block.
    unsafe { exec_search(file, argv, environ()) }.map(failed)
}

/// `execvpe(3)`.
pub(crate) fn execvpe_check(
    (file, argv, envp): (*const c_char, *const *const c_char, *const *const c_char),
) -> Option<c_int> {
    if !inspecting() {
        return None;
    }
    // SAFETY: the program's arguments.
    unsafe { exec_search(file, argv, envp) }.map(failed)
}

/// `execveat(2)`: a path (absolute, or relative to the current directory or to
/// `dirfd`), or `dirfd` itself (`AT_EMPTY_PATH`).
#[allow(clippy::type_complexity)]
pub(crate) fn execveat_check(
    (dirfd, path, argv, envp, flags): (
        c_int,
        *const c_char,
        *const *const c_char,
        *const *const c_char,
        c_int,
    ),
) -> Option<c_int> {
    if !inspecting() {
        return None;
    }
    if path.is_null() || !exec_args_readable(path, argv, envp) {
        return Some(failed(libc::EFAULT));
    }
    // SAFETY: execveat's contract, its path found readable.
    let p = unsafe { with_nul(path) }?;
    // SAFETY: as above.
    let path_var = unsafe { path_of(envp) };
    if p.len() == 1 && flags & libc::AT_EMPTY_PATH != 0 {
        return exec_fd(dirfd, argv, envp, path_var);
    }
    // The path is resolved from dirfd, and not followed when it is a link under
    // AT_SYMLINK_NOFOLLOW; its `#!` interpreter, by the kernel's open_exec, from the
    // current directory and followed.
    let mut fs = Sys {
        cwd: libc::AT_FDCWD,
        target: dirfd,
        nofollow: flags & libc::AT_SYMLINK_NOFOLLOW != 0,
    };
    let v = check::decide(&mut fs, p, path_var);
    let target = if dirfd == libc::AT_FDCWD || p.first() == Some(&b'/') {
        Target::Path(p)
    } else {
        Target::Unnamed
    };
    verdict_for(target, v, argv, envp)
        .or_else(|| {
            // SAFETY: execveat's contract; the new block lives across the call.
            unsafe { with_preload_env(envp, |e| raw_execveat(dirfd, path, argv, e, flags)) }
        })
        .map(failed)
}

/// `fexecve(3)`.
pub(crate) fn fexecve_check(
    (fd, argv, envp): (c_int, *const *const c_char, *const *const c_char),
) -> Option<c_int> {
    if !inspecting() {
        return None;
    }
    if !exec_args_readable(core::ptr::null(), argv, envp) {
        return Some(failed(libc::EFAULT));
    }
    // SAFETY: fexecve's contract, its arrays found readable.
    exec_fd(fd, argv, envp, unsafe { path_of(envp) })
}

/// An exec of the file open as `fd` (an `O_PATH` descriptor is read through
/// `/proc/self/fd/N`).
fn exec_fd(
    fd: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
    path_var: Option<&[u8]>,
) -> Option<c_int> {
    let mut one = [0u8; 1];
    let v = match pread(fd, &mut one, 0) {
        Some(_) => {
            let mut fs = FdFs(Some(Borrowed(fd)));
            check::decide(&mut fs, b"\0", path_var)
        }
        None => {
            let mut name = [0u8; 32];
            let len = proc_fd_path(fd, &mut name);
            check::decide(&mut cwd(), &name[..=len], path_var)
        }
    };
    verdict_for(Target::Unnamed, v, argv, envp)
        .or_else(|| {
            // SAFETY: fexecve's contract (an exec of the descriptor itself); the new
            // block lives across the call.
            unsafe {
                with_preload_env(envp, |e| {
                    raw_execveat(fd, c"".as_ptr(), argv, e, libc::AT_EMPTY_PATH)
                })
            }
        })
        .map(failed)
}

/// `/proc/self/fd/N`, NUL-terminated, into `out`; its length.
fn proc_fd_path(fd: c_int, out: &mut [u8; 32]) -> usize {
    let prefix = b"/proc/self/fd/";
    out[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0u8; 10];
    let (mut v, mut k) = (fd.max(0) as u32, 0);
    loop {
        digits[k] = b'0' + (v % 10) as u8;
        k += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let mut n = prefix.len();
    for d in digits[..k].iter().rev() {
        out[n] = *d;
        n += 1;
    }
    out[n] = 0;
    n
}

/// A file system whose one file is a descriptor the program gave (opened once, as
/// the "path" `""`); `#!` interpreters are opened normally.
struct FdFs(Option<Borrowed>);

/// The descriptor given, or a file opened by path.
enum Either {
    Given(Borrowed),
    Opened(Fd),
}

impl check::File for Either {
    fn read_at(&mut self, buf: &mut [u8], off: u64) -> Option<usize> {
        match self {
            Self::Given(f) => f.read_at(buf, off),
            Self::Opened(f) => f.read_at(buf, off),
        }
    }
}

impl check::Fs for FdFs {
    type F = Either;
    fn open(&mut self, path: &[u8]) -> Option<Either> {
        if path == b"\0" {
            return self.0.take().map(Either::Given);
        }
        check::Fs::open(&mut cwd(), path).map(Either::Opened)
    }
    fn probe(&mut self, path: &[u8]) -> Probe {
        check::Fs::probe(&mut cwd(), path)
    }
}

// ---------------------------------------------------------------------------------
// The hooks outside the list: the variadic `execl` family, spawning, the shell
// ---------------------------------------------------------------------------------

/// `posix_spawn` / `posix_spawnp` (`search`): `Ok(None)` to spawn as asked;
/// `Ok(Some(r))` when the supervisor was spawned instead (`r`: what the real call
/// returned); `Err(errno)` to fail.
///
/// # Safety
/// The arguments of `posix_spawn`; `spawn` calls the real `posix_spawn` (not `p`).
pub(crate) unsafe fn spawn_check(
    path: *const c_char,
    actions: *const c_void,
    argv: *const *const c_char,
    envp: *const *const c_char,
    search: bool,
    spawn: impl FnOnce(*const c_char, *const *const c_char, *const *const c_char) -> c_int,
) -> Result<Option<c_int>, c_int> {
    if !inspecting() {
        return Ok(None);
    }
    // The directory the child execs in: the file actions' `chdir`s and `fchdir`s,
    // followed here by `O_PATH` opens, so that a relative path, a relative `PATH`
    // entry and a relative `#!` interpreter are decided where the child finds them.
    // SAFETY: posix_spawn's contract: actions is NULL or initialised file actions.
    let n = unsafe { spawn_action_count(actions) };
    // SAFETY: as above, i < n.
    let at = |i| unsafe { spawn_action(actions, n, i) };
    let mut dir = ChildDir {
        fd: libc::AT_FDCWD,
        owned: false,
    };
    let known = check::spawn_dir(n, at, |st| dir.step(st));
    let mut fs = Sys {
        cwd: dir.fd,
        target: dir.fd,
        nofollow: false,
    };
    if !search {
        // SAFETY: posix_spawn's contract.
        let Some(p) = (unsafe { with_nul(path) }) else {
            return Ok(None);
        };
        // SAFETY: the caller's contract.
        return unsafe { spawn_target(&mut fs, known, false, p, argv, envp, spawn) };
    }
    // SAFETY: posix_spawnp's contract; environ is the process's block.
    let (Some(name), path_var) = (unsafe { bytes(path) }, unsafe {
        env_value(environ(), b"PATH")
    }) else {
        return Ok(None);
    };
    check::with_search(&mut fs, name, path_var, |fs, found| match found {
        // What the child's search would fail with (the C library's, past every hook,
        // could find what this one did not: it is not left to it).
        Err(e) => Err(not_found_errno(e)),
        // SAFETY: the caller's contract.
        Ok(target) => unsafe { spawn_target(fs, known, true, target, argv, envp, spawn) },
    })
}

/// The directory a `posix_spawn` child execs in, as a descriptor: `AT_FDCWD` (the
/// parent's), one of the parent's (`fchdir`), or one opened here (closed on drop).
struct ChildDir {
    fd: c_int,
    owned: bool,
}

impl ChildDir {
    /// Follows one directory change; `false` when it cannot be (the child's `chdir`
    /// would fail too, or it cannot be told: decided as unknown).
    fn step(&mut self, st: check::DirStep<'_>) -> bool {
        let fd = match st {
            check::DirStep::Fchdir(fd) => {
                self.close();
                self.fd = fd;
                return true;
            }
            // SAFETY: d is NUL-terminated (spawn_dir's contract); integer flags.
            check::DirStep::Chdir(d) => unsafe {
                sys(
                    libc::SYS_openat,
                    self.fd as usize,
                    d.as_ptr() as usize,
                    (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as usize,
                    0,
                    0,
                )
            },
        };
        if fd < 0 {
            return false;
        }
        self.close();
        self.fd = fd as c_int;
        self.owned = true;
        true
    }

    fn close(&mut self) {
        if self.owned {
            // SAFETY: a descriptor this module opened; a raw call keeps errno.
            unsafe { sys(libc::SYS_close, self.fd as usize, 0, 0, 0, 0) };
            self.owned = false;
        }
    }
}

impl Drop for ChildDir {
    fn drop(&mut self) {
        self.close();
    }
}

/// [`spawn_check`] of the file it spawns, `target` (NUL-terminated: as given, or
/// found through `PATH` — `searched` — from the child's directory, where `fs`
/// resolves relative paths). `known`: whether that directory could be told.
///
/// # Safety
/// As [`spawn_check`].
unsafe fn spawn_target(
    fs: &mut Sys,
    known: bool,
    searched: bool,
    target: &[u8],
    argv: *const *const c_char,
    envp: *const *const c_char,
    spawn: impl FnOnce(*const c_char, *const *const c_char, *const *const c_char) -> c_int,
) -> Result<Option<c_int>, c_int> {
    let shown = &target[..target.len() - 1];
    // SAFETY: posix_spawn's contract: envp is NULL or an environment block.
    let path_var = unsafe { path_of(envp) };
    let verdict = if known {
        check::decide(fs, target, path_var)
    } else {
        Verdict::Supervise(check::Why::SpawnDirectory)
    };
    let Verdict::Supervise(why) = verdict else {
        // The preload kept in the new program's environment. `spawn` is the real
        // posix_spawn: the file found is spawned, not searched for again.
        let mut spawn = Some(spawn);
        let t = target.as_ptr().cast();
        // SAFETY: posix_spawn's contract; the new block lives across the call.
        let r = unsafe {
            with_preload_env(envp, |e| {
                spawn.take().map_or(libc::EINVAL, |f| f(t, argv, e))
            })
        };
        return Ok(match (r, spawn.take()) {
            (Some(r), _) => Some(r),
            (None, Some(f)) if searched => Some(f(t, argv, envp)),
            (None, _) => None,
        });
    };
    if supervised() {
        // As for an exec (see `verdict_for`): as is, but a foreign loader's program
        // without LD_PRELOAD.
        if let check::Why::Elf(check::Elf::ForeignLoader, _) = why {
            return Ok(Some(with_env_without_preload(envp, |env| {
                spawn(target.as_ptr().cast(), argv, env)
            })));
        }
        return Ok(None);
    }
    // SAFETY: MIFRUN is NULL or a NUL-terminated value.
    let Some(mifrun) =
        (unsafe { with_nul(MIFRUN.load(Acquire).cast()) }).filter(|m| m.first() == Some(&b'/'))
    else {
        refuse(
            shown,
            why,
            b"no mifrun started this process (MIFSHIM_MIFRUN is unset)",
        );
        return Err(libc::EACCES);
    };
    let mut result = None;
    let e = with_supervisor_argv(mifrun, target, argv, |new| {
        let r = spawn(mifrun.as_ptr().cast(), new, envp);
        result = Some(r);
        r
    });
    match result {
        Some(0) => Ok(Some(0)),
        _ => {
            refuse(
                shown,
                why,
                b"its supervisor (MIFSHIM_MIFRUN) could not be executed",
            );
            Err(if e == 0 { libc::EACCES } else { e })
        }
    }
}

/// The size of one of glibc's `struct __spawn_action` (`posix/spawn_int.h`): an enum
/// tag, then at offset 8 a union whose largest member is `open_action` (`int`, a
/// pointer, `int`, `mode_t`).
const SPAWN_ACTION: usize = 32;

/// How many file actions `actions` (glibc's `posix_spawn_file_actions_t`: `int
/// __allocated; int __used; struct __spawn_action *__actions; …`) holds;
/// `usize::MAX` when the header makes no sense ([`spawn_action`] then answers
/// `Unknown` for the first, and the spawn is supervised).
///
/// # Safety
/// `actions` is NULL or points to initialised file actions.
unsafe fn spawn_action_count(actions: *const c_void) -> usize {
    if actions.is_null() {
        return 0;
    }
    let h = actions.cast::<i32>();
    // SAFETY: the caller's contract: the header's two ints and the array pointer.
    let (allocated, used, list) = unsafe { (*h, *h.add(1), *actions.cast::<*const u8>().add(1)) };
    match (used, list.is_null()) {
        (0, _) => 0,
        (u, false) if u > 0 && u <= allocated => u as usize,
        _ => usize::MAX,
    }
}

/// File action `i` of `n` ([`spawn_action_count`]), as far as the child's directory
/// goes. The tags are glibc's (`spawn_do_close` 0, `dup2` 1, `open` 2, `chdir` 3,
/// `fchdir` 4, `closefrom` 5, `tcsetpgrp` 6); any other is `Unknown`.
///
/// # Safety
/// As [`spawn_action_count`], `i < n`.
unsafe fn spawn_action<'a>(actions: *const c_void, n: usize, i: usize) -> check::SpawnAction<'a> {
    use check::SpawnAction::*;
    if n == usize::MAX {
        return Unknown;
    }
    // SAFETY: the caller's contract: the array holds `n` actions.
    let a = unsafe { (*actions.cast::<*const u8>().add(1)).add(i * SPAWN_ACTION) };
    // SAFETY: as above: the tag, then the union at 8.
    let (tag, first, second) = unsafe {
        (
            *a.cast::<i32>(),
            *a.add(8).cast::<i32>(),
            *a.add(12).cast::<i32>(),
        )
    };
    match tag {
        0 | 2 => Replaces(first),
        1 => Replaces(second),
        // SAFETY: chdir_action's path: a NUL-terminated string the program gave.
        3 => match unsafe { with_nul(*a.add(8).cast::<*const c_char>()) } {
            Some(p) => Chdir(p),
            None => Unknown,
        },
        4 => Fchdir(first),
        5 => ClosesFrom(first),
        6 => Other,
        _ => Unknown,
    }
}

/// `system` and `popen` run `/bin/sh -c` (glibc spawns it internally, past every hook):
/// a shell the preload cannot steer is not run. `Err(errno)` to fail the call.
pub(crate) fn shell_check() -> Result<(), c_int> {
    if !inspecting() {
        return Ok(());
    }
    match check::decide(&mut cwd(), b"/bin/sh\0", None) {
        Verdict::AsIs => Ok(()),
        Verdict::Supervise(why) => {
            refuse(
                b"/bin/sh",
                why,
                b"system(3) and popen(3) start it past every hook",
            );
            Err(libc::EACCES)
        }
    }
}

/// What the variadic entry points collected: `execl` (`path`, `environ`), `execle`
/// (the `envp` after the list's NULL), `execlp` (`PATH` searched).
#[repr(usize)]
#[derive(Clone, Copy, PartialEq, Eq)]
enum ListKind {
    Execl = 0,
    Execle = 1,
    Execlp = 2,
}

/// The common part of `execl`, `execle`, `execlp`, called by their naked entry points
/// with the argument list as it arrived: `regs`, the register arguments after `path`
/// (five on x86-64), then `stack`, the caller's stack arguments. Builds `argv` (on the
/// stack, or mapped when long), then runs the matching `execv*` hook.
///
/// # Safety
/// `regs` and `stack` are what the entry point saved: the list is NULL-terminated
/// (execl(3)'s contract), followed for `execle` by `envp`.
unsafe extern "C" fn exec_list(
    path: *const c_char,
    regs: *const *const c_char,
    stack: *const *const c_char,
    kind: usize,
) -> c_int {
    let arg = |i: usize| -> *const c_char {
        // SAFETY: the caller's contract: argument i exists (the list up to its NULL,
        // and one more for execle).
        unsafe {
            if i < REG_ARGS {
                *regs.add(i)
            } else {
                *stack.add(i - REG_ARGS)
            }
        }
    };
    let mut argc = 0;
    while !arg(argc).is_null() {
        argc += 1;
    }
    let envp = if kind == ListKind::Execle as usize {
        arg(argc + 1) as *const *const c_char
    } else {
        environ()
    };
    let fill = |buf: *mut *const c_char| {
        for i in 0..=argc {
            // SAFETY: i <= argc: within buf's argc + 1 entries.
            unsafe { *buf.add(i) = arg(i) };
        }
    };
    let r = with_array(argc + 1, fill, |argv| {
        // SAFETY: the program's arguments, as execv*/execve take them.
        unsafe {
            match kind {
                1 => super::execve(path, argv, envp),
                2 => super::execvp(path, argv),
                _ => super::execv(path, argv),
            }
        }
    });
    if r == libc::ENOMEM && argc + 1 > WORDS_STACK {
        // Not even mapped: nothing was called.
        return failed(libc::ENOMEM);
    }
    r
}

/// Register arguments after `path` the entry points save.
#[cfg(target_arch = "x86_64")]
const REG_ARGS: usize = 5;
#[cfg(target_arch = "aarch64")]
const REG_ARGS: usize = 7;

/// The naked entry points of `execl`, `execle`, `execlp`: stable Rust cannot define a
/// variadic function, so each saves the argument registers after `path` next to each
/// other on its stack and passes them, the caller's stack arguments and its kind to
/// [`exec_list`] (on x86-64 and AArch64 Linux a variadic pointer argument is passed
/// like a named one: in the next register, then on the stack).
macro_rules! list_hooks {
    ($($name:ident => $kind:expr;)*) => {$(
        /// ## Hook
        /// See `list_hooks`.
        ///
        /// # Safety
        /// The contract of the C function of the same name.
        #[cfg(target_arch = "x86_64")]
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name() -> c_int {
            // At entry rsp is 8 off 16-byte alignment; five pushes (40 bytes) align it.
            // The caller's stack arguments start above the return address: 48 bytes up.
            core::arch::naked_asm!(
                "push r9",
                "push r8",
                "push rcx",
                "push rdx",
                "push rsi",
                "mov rsi, rsp",
                "lea rdx, [rsp + 48]",
                "mov ecx, {kind}",
                "call {list}",
                "add rsp, 40",
                "ret",
                kind = const $kind as usize,
                list = sym exec_list,
            )
        }

        /// ## Hook
        /// See `list_hooks`.
        ///
        /// # Safety
        /// The contract of the C function of the same name.
        #[cfg(target_arch = "aarch64")]
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name() -> c_int {
            // x1..x7 saved in order below the frame record; the caller's stack
            // arguments are at the entry sp.
            core::arch::naked_asm!(
                "stp x29, x30, [sp, #-80]!",
                "mov x29, sp",
                "stp x1, x2, [sp, #16]",
                "stp x3, x4, [sp, #32]",
                "stp x5, x6, [sp, #48]",
                "str x7, [sp, #64]",
                "add x1, sp, #16",
                "add x2, sp, #80",
                "mov x3, #{kind}",
                "bl {list}",
                "ldp x29, x30, [sp], #80",
                "ret",
                kind = const $kind as usize,
                list = sym exec_list,
            )
        }
    )*};
}

list_hooks! {
    execl => ListKind::Execl;
    execle => ListKind::Execle;
    execlp => ListKind::Execlp;
}

// ---------------------------------------------------------------------------------
// The new program's environment: the preload kept in it
// ---------------------------------------------------------------------------------

/// How many `MIFSHIM_*` entries of the start-up environment are kept.
const START_VARS: usize = 16;

/// The `MIFSHIM_*` entries (`NAME=value`) of the environment this process was started
/// with, and its `LD_PRELOAD` value: what a new program's environment is given back
/// when the program leaves them out (`env -i`, `execve(…, {})`, `env -u LD_PRELOAD`),
/// so that its child stays steered. Pointers into the start-up block.
static START_ENV: [AtomicPtr<u8>; START_VARS] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; START_VARS];
static START_PRELOAD: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());

/// Keeps the start-up block's `MIFSHIM_*` entries and `LD_PRELOAD` value (a steered
/// process's constructor, normal context).
///
/// # Safety
/// `envp` is NULL or a NULL-terminated array of valid strings that live as long as the
/// process.
pub(crate) unsafe fn keep_start_env(envp: *const *const c_char) {
    if envp.is_null() {
        return;
    }
    let mut k = 0;
    let mut i = 0;
    loop {
        // SAFETY: the caller's contract.
        let s = unsafe { *envp.add(i) };
        if s.is_null() {
            break;
        }
        i += 1;
        // SAFETY: a valid string.
        let Some(b) = (unsafe { bytes(s) }) else {
            break;
        };
        if b.starts_with(b"MIFSHIM_") && b.contains(&b'=') && k < START_VARS {
            if !(0..k).any(|j| {
                // SAFETY: set above from this block.
                let e = unsafe { bytes(START_ENV[j].load(Relaxed).cast()) }.unwrap_or(b"");
                name_of(e) == name_of(b)
            }) {
                START_ENV[k].store(s.cast_mut().cast(), Release);
                k += 1;
            }
        } else if let Some(v) = b.strip_prefix(b"LD_PRELOAD=")
            && START_PRELOAD.load(Relaxed).is_null()
        {
            START_PRELOAD.store(v.as_ptr().cast_mut(), Release);
        }
    }
}

/// [`keep_start_env`] of `environ` (a hook that ran before the constructor).
pub(crate) fn keep_start_environ() {
    // SAFETY: environ is the process's environment block.
    unsafe { keep_start_env(environ()) };
}

/// `NAME=` of an entry `NAME=value` (the whole entry when it has no `=`).
fn name_of(e: &[u8]) -> &[u8] {
    match e.iter().position(|&b| b == b'=') {
        Some(i) => &e[..=i],
        None => e,
    }
}

/// The elements of an `LD_PRELOAD` value (separated by `:` or spaces, as ld.so reads it).
fn elements(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b':' || b == b' ')
        .filter(|e| !e.is_empty())
}

/// This library's element of the start-up `LD_PRELOAD` (the one named
/// `libmifshim.so`; the whole value when none is): `None` when the process was not
/// preloaded by `LD_PRELOAD` (`/etc/ld.so.preload` loads it into the new program too).
fn our_preload<'a>() -> Option<&'a [u8]> {
    // SAFETY: NULL or a NUL-terminated value of the start-up block.
    let v = unsafe { bytes(START_PRELOAD.load(Acquire).cast()) }?;
    elements(v)
        .find(|e| e.rsplit(|&b| b == b'/').next() == Some(b"libmifshim.so"))
        .or(Some(v).filter(|v| !v.is_empty()))
}

/// Calls `f` with `envp` given back what it leaves out of the preload (see
/// [`START_ENV`]): `LD_PRELOAD` with this library in it (the program's own elements
/// kept, after ours), the start-up `MIFSHIM_*` entries it lacks (its own values kept).
/// `None`, `f` not called, when `envp` lacks nothing. The new block is on the stack
/// when it fits, else in an anonymous mapping, unmapped after `f` (no allocation: this
/// runs in `vfork` children); `Some(ENOMEM)` when it cannot be mapped.
///
/// # Safety
/// `envp` is NULL or a NULL-terminated array of valid strings.
unsafe fn with_preload_env(
    envp: *const *const c_char,
    f: impl FnOnce(*const *const c_char) -> c_int,
) -> Option<c_int> {
    // SAFETY: the caller's contract.
    let n = unsafe { count(envp) };
    let ours = our_preload();
    let entry = |i: usize| -> &[u8] {
        // SAFETY: i < n entries of envp, each a valid string.
        unsafe { bytes(*envp.add(i)) }.unwrap_or(b"")
    };
    // The program's LD_PRELOAD (the first: the one ld.so reads), and whether it has ours.
    let preload = (0..n).find(|&i| entry(i).starts_with(b"LD_PRELOAD="));
    let theirs = preload.map(|i| &entry(i)[11..]);
    let need_preload = match (ours, theirs) {
        (None, _) => false,
        (Some(o), Some(t)) => !elements(t).any(|e| e == o),
        (Some(_), None) => true,
    };
    let missing = |s: &AtomicPtr<u8>| -> Option<&[u8]> {
        // SAFETY: NULL or an entry of the start-up block.
        let e = unsafe { bytes(s.load(Acquire).cast()) }?;
        let name = name_of(e);
        (!(0..n).any(|i| entry(i).starts_with(name))).then_some(e)
    };
    let extra = START_ENV.iter().filter(|s| missing(s).is_some()).count();
    if !need_preload && extra == 0 {
        return None;
    }
    // The new LD_PRELOAD entry: `LD_PRELOAD=OURS[:THEIRS]`, NUL-terminated.
    let ours = ours.unwrap_or(b"");
    let theirs = theirs.unwrap_or(b"");
    let str_len = if need_preload {
        11 + ours.len() + 1 + theirs.len() + 1
    } else {
        0
    };
    let ptrs = n + extra + 2;
    let words = ptrs + str_len.div_ceil(size_of::<usize>());
    let build = |base: *mut usize| -> c_int {
        let arr = base.cast::<*const c_char>();
        // SAFETY: the string area follows the ptrs pointer slots, within the words.
        let s = unsafe { base.add(ptrs) }.cast::<u8>();
        if need_preload {
            let mut k = 0;
            let mut put = |b: &[u8]| {
                for &c in b {
                    // SAFETY: k < str_len bytes of the string area.
                    unsafe { core::ptr::write_volatile(s.add(k), c) };
                    k += 1;
                }
            };
            put(b"LD_PRELOAD=");
            put(ours);
            if !theirs.is_empty() {
                put(b":");
                put(theirs);
            }
            put(b"\0");
        }
        let mut k = 0;
        let mut push = |p: *const c_char| {
            // SAFETY: k < ptrs slots (n entries, extra, the LD_PRELOAD entry, the NULL).
            unsafe { core::ptr::write_volatile(arr.add(k), p) };
            k += 1;
        };
        for i in 0..n {
            if need_preload && Some(i) == preload {
                push(s.cast());
            } else {
                // SAFETY: i < n.
                push(unsafe { *envp.add(i) });
            }
        }
        if need_preload && preload.is_none() {
            push(s.cast());
        }
        for st in &START_ENV {
            if let Some(e) = missing(st) {
                push(e.as_ptr().cast());
            }
        }
        push(core::ptr::null());
        f(arr.cast_const())
    };
    Some(with_words(words, build))
}

/// How many words the small stack buffer of [`with_words`] holds.
const WORDS_SMALL: usize = 32;
/// How many its middle one holds (an environment of some 120 entries), in a frame of
/// its own.
const WORDS_MIDDLE: usize = 128;
/// How many its large one holds, in a frame of its own.
const WORDS_STACK: usize = 512;

/// Calls `f` with `words` writable words: on the stack when they fit (a small buffer,
/// or a larger one in a frame of its own that only a longer argument vector or
/// environment uses: each tier's frame alone, never two), else in an anonymous
/// mapping, unmapped after `f` (errno kept). `ENOMEM` when it cannot be mapped.
///
/// A mapping made in a `vfork` child whose exec succeeds stays in the parent (the
/// memory is the parent's): one per exec of more than 511 arguments. Far rarer than a
/// mapping per exec; an exec's own scratch is on the stack for that reason.
fn with_words(words: usize, f: impl FnOnce(*mut usize) -> c_int) -> c_int {
    if words <= WORDS_SMALL {
        words_on_stack::<WORDS_SMALL>(f)
    } else if words <= WORDS_MIDDLE {
        words_middle(f)
    } else if words <= WORDS_STACK {
        words_large(f)
    } else {
        words_mapped(words, f)
    }
}

/// `N` words on the stack.
#[inline(always)]
fn words_on_stack<const N: usize>(f: impl FnOnce(*mut usize) -> c_int) -> c_int {
    let mut stack = [0usize; N];
    f(stack.as_mut_ptr())
}

#[inline(never)]
fn words_middle(f: impl FnOnce(*mut usize) -> c_int) -> c_int {
    words_on_stack::<WORDS_MIDDLE>(f)
}

#[inline(never)]
fn words_large(f: impl FnOnce(*mut usize) -> c_int) -> c_int {
    words_on_stack::<WORDS_STACK>(f)
}

/// [`with_words`] in an anonymous mapping.
#[inline(never)]
fn words_mapped(words: usize, f: impl FnOnce(*mut usize) -> c_int) -> c_int {
    let bytes = words * size_of::<usize>();
    // SAFETY: an anonymous private mapping; no memory of the program is touched.
    let p = unsafe {
        sys6(
            libc::SYS_mmap,
            0,
            bytes,
            (libc::PROT_READ | libc::PROT_WRITE) as usize,
            (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as usize,
            usize::MAX,
            0,
        )
    };
    if p < 0 {
        return libc::ENOMEM;
    }
    let r = f(p as *mut usize);
    // SAFETY: the mapping made above, no longer used; a raw call keeps errno.
    unsafe { sys(libc::SYS_munmap, p as usize, bytes, 0, 0, 0) };
    r
}

/// `execve(2)` by a raw system call: the errno it failed with.
///
/// # Safety
/// execve's contract.
unsafe fn raw_execve(
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    // SAFETY: the caller's contract.
    let r = unsafe {
        sys(
            libc::SYS_execve,
            path as usize,
            argv as usize,
            envp as usize,
            0,
            0,
        )
    };
    (-r) as c_int
}

/// `execveat(2)` by a raw system call: the errno it failed with.
///
/// # Safety
/// execveat's contract.
unsafe fn raw_execveat(
    dirfd: c_int,
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    flags: c_int,
) -> c_int {
    // SAFETY: the caller's contract.
    let r = unsafe {
        sys(
            libc::SYS_execveat,
            dirfd as usize,
            path as usize,
            argv as usize,
            envp as usize,
            flags as usize,
        )
    };
    (-r) as c_int
}
