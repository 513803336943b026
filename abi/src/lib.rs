//! The boundary between `libmifshim.so` (the preloaded std-free stub, `preload/`) and
//! `libmifshim_engine.so` (the engine, `shim/`), written once:
//!
//! * [`hooked_calls!`]: **the one list of hooked C calls** — each call's name and C
//!   signature, what it returns when the C library lacks it, and how the stub routes it.
//!   Every table that names hooked calls is generated from it: the stub's exported hooks
//!   and its real-function slots (`preload/src/linux.rs`), the macOS stub's
//!   `__DATA,__interpose` table, hooks and originals (`preload/src/macos.rs`, through
//!   [`interpose_table!`]), the engine's real functions (`shim/src/sys/real.rs`)
//!   and its entry points (`shim/src/sys/linux/mod.rs`), and, here, [`sig`], [`Reals`]
//!   and [`Hooks`]. A new hooked call is one line of the list plus its engine function;
//!   an engine function whose signature differs from the list's does not compile. The
//!   calls macOS's C library lacks carry `#[cfg(target_os = "linux")]`, macOS's own
//!   (`connectx`) `#[cfg(target_os = "macos")]`.
//! * [`Engine`]: the versioned `#[repr(C)]` interface the engine exports as one symbol
//!   ([`ENGINE_SYMBOL`]): a version and size the stub checks before it reads anything
//!   else, the engine's own entry points and one typed function pointer per hooked call.
//!   The stub hands the engine the C library's functions the same way ([`Reals`]).
//! * The few no-std helpers both sides need: errno, the coarse clock, anonymous memory,
//!   a destination's fast-path key, and the rule that says whether a process is steered.
//!
//! Nothing here allocates, locks or unwinds; the stub builds it with `panic = "abort"`.

#![cfg_attr(not(test), no_std)]

// ---------------------------------------------------------------------------------
// The list
// ---------------------------------------------------------------------------------

/// **The hooked calls.** Expands to `$callback! { <the list> }`; `$callback` is a
/// `macro_rules!` macro in scope at the call site that generates one table from it (see
/// the generators named in the crate doc). Each entry:
///
/// ```text
/// name(arg: type, ...) -> ret {
///     absent: <value>,   // returned, errno ENOSYS, when the C library has no `name`
///     stub: {            // how the stub (preload/) routes the call
///         load: <bool>,  // the call needs a decision: load the engine for it
///         fail: <value>, errno: <errno>,  // what it answers when that load failed
///         direct: <cond>,   // optional: go straight to the C library when true
///         then: <fn>,       // optional: the stub's bookkeeping after a direct call
///         after: <fn>,      // optional: after the call, whichever way it went
///         check: <fn>,      // optional: the stub's own answer before the call:
///                           //   `Some(r)` is returned instead of making it
///         aliases: [<name>, ...],  // optional: other public names of the same function
///     }
/// };
/// ```
///
/// Names in `stub` and `absent` resolve where the list is expanded (the stub defines
/// `socket_direct`, `no_host`, …); a generator that has no use for a part ignores it.
/// Attributes written before an entry (`#[cfg(...)]`) go on everything generated for
/// it, so that a per-OS generator (the macOS `__DATA,__interpose` table) can leave out
/// what its C library lacks.
#[macro_export]
macro_rules! hooked_calls {
    ($callback:ident) => {
        $callback! {
            socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS, direct: socket_direct(domain, protocol), then: socket_done }
            };
            connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
                absent: -1,
                stub: { load: true, fail: -1, errno: libc::ENETUNREACH, aliases: [__connect] }
            };
            bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
                absent: -1,
                stub: { load: true, fail: -1, errno: libc::ENETUNREACH }
            };
            listen(fd: c_int, backlog: c_int) -> c_int {
                absent: -1,
                stub: { load: true, fail: -1, errno: libc::ENETUNREACH }
            };
            accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS }
            };
            #[cfg(target_os = "linux")]
            accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS }
            };
            sendto(fd: c_int, buf: *const c_void, n: usize, flags: c_int, addr: *const sockaddr, len: socklen_t) -> isize {
                absent: -1,
                stub: { load: true, fail: -1, errno: libc::ENETUNREACH, direct: sendto_direct(fd, addr, len) }
            };
            sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> isize {
                absent: -1,
                stub: { load: true, fail: -1, errno: libc::ENETUNREACH, direct: sendmsg_direct(fd, msg), after: sendmsg_done }
            };
            #[cfg(target_os = "linux")]
            sendmmsg(fd: c_int, msgs: *mut mmsghdr, vlen: c_uint, flags: c_int) -> c_int {
                absent: -1,
                stub: { load: true, fail: -1, errno: libc::ENETUNREACH, direct: sendmmsg_direct(fd, msgs, vlen), after: sendmmsg_done }
            };
            setsockopt(fd: c_int, level: c_int, name: c_int, val: *const c_void, len: socklen_t) -> c_int {
                absent: -1,
                stub: { load: true, fail: -1, errno: libc::ENETUNREACH }
            };
            // macOS's `connectx(2)` (what NSURLSession and Network.framework's BSD
            // path call instead of `connect`): the endpoints as an untyped pointer,
            // read by the engine as `sa_endpoints_t`, the data as `iovec`s;
            // `sae_associd_t` and `sae_connid_t` are 32-bit.
            #[cfg(target_os = "macos")]
            connectx(fd: c_int, endpoints: *const c_void, associd: u32, flags: c_uint, iov: *const c_void, iovcnt: c_uint, len: *mut usize, connid: *mut u32) -> c_int {
                absent: -1,
                stub: { load: true, fail: -1, errno: libc::ENETUNREACH }
            };
            close(fd: c_int) -> c_int {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS, direct: close_direct(fd), aliases: [__close] }
            };
            dup(fd: c_int) -> c_int {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS }
            };
            dup2(old: c_int, new: c_int) -> c_int {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS, aliases: [__dup2] }
            };
            #[cfg(target_os = "linux")]
            dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS }
            };
            recvfrom(fd: c_int, buf: *mut c_void, n: usize, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> isize {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS, direct: not_redirected(fd) }
            };
            recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> isize {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS, direct: not_redirected(fd), then: recvmsg_done }
            };
            #[cfg(target_os = "linux")]
            recvmmsg(fd: c_int, msgs: *mut mmsghdr, vlen: c_uint, flags: c_int, timeout: *mut timespec) -> c_int {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS, direct: not_redirected(fd), then: recvmmsg_done }
            };
            getpeername(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS, direct: not_redirected(fd) }
            };
            // The third argument passed on as the register it came in (every command
            // takes at most one, an integer or a pointer; on the Linux ABIs built for,
            // and on x86_64 macOS, a variadic argument is passed like a fixed one; on
            // arm64 macOS it is on the stack, which the macOS stub's generator handles).
            fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS, direct: !is_dup_cmd(cmd), aliases: [__fcntl] }
            };
            #[cfg(target_os = "linux")]
            fcntl64(fd: c_int, cmd: c_int, arg: usize) -> c_int {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS, direct: !is_dup_cmd(cmd) }
            };
            #[cfg(target_os = "linux")]
            close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS }
            };
            #[cfg(target_os = "linux")]
            closefrom(lowfd: c_int) -> () {
                absent: (),
                stub: { load: false, fail: (), errno: libc::ENOSYS }
            };
            fclose(stream: *mut FILE) -> c_int {
                absent: libc::EOF,
                stub: { load: false, fail: libc::EOF, errno: libc::ENOSYS }
            };
            getaddrinfo(node: *const c_char, service: *const c_char, hints: *const addrinfo, res: *mut *mut addrinfo) -> c_int {
                absent: libc::EAI_SYSTEM,
                stub: { load: true, fail: EAI_FAIL, errno: 0 }
            };
            freeaddrinfo(ai: *mut addrinfo) -> () {
                absent: (),
                stub: { load: false, fail: (), errno: 0 }
            };
            getnameinfo(sa: *const sockaddr, salen: socklen_t, host: *mut c_char, hostlen: socklen_t, serv: *mut c_char, servlen: socklen_t, flags: c_int) -> c_int {
                absent: libc::EAI_SYSTEM,
                stub: { load: true, fail: EAI_FAIL, errno: 0 }
            };
            gethostbyname(name: *const c_char) -> *mut hostent {
                absent: core::ptr::null_mut(),
                stub: { load: true, fail: no_host(), errno: 0 }
            };
            gethostbyname2(name: *const c_char, af: c_int) -> *mut hostent {
                absent: core::ptr::null_mut(),
                stub: { load: true, fail: no_host(), errno: 0 }
            };
            #[cfg(target_os = "linux")]
            gethostbyname_r(name: *const c_char, ret: *mut hostent, buf: *mut c_char, len: usize, result: *mut *mut hostent, h_errnop: *mut c_int) -> c_int {
                absent: libc::ENOSYS,
                stub: { load: true, fail: no_host_r(result, h_errnop), errno: 0 }
            };
            #[cfg(target_os = "linux")]
            gethostbyname2_r(name: *const c_char, af: c_int, ret: *mut hostent, buf: *mut c_char, len: usize, result: *mut *mut hostent, h_errnop: *mut c_int) -> c_int {
                absent: libc::ENOSYS,
                stub: { load: true, fail: no_host_r(result, h_errnop), errno: 0 }
            };
            gethostbyaddr(addr: *const c_void, len: socklen_t, af: c_int) -> *mut hostent {
                absent: core::ptr::null_mut(),
                stub: { load: true, fail: no_host(), errno: 0 }
            };
            #[cfg(target_os = "linux")]
            gethostbyaddr_r(addr: *const c_void, len: socklen_t, af: c_int, ret: *mut hostent, buf: *mut c_char, buflen: usize, result: *mut *mut hostent, h_errnop: *mut c_int) -> c_int {
                absent: libc::ENOSYS,
                stub: { load: true, fail: no_host_r(result, h_errnop), errno: 0 }
            };
            // The `gaicb` requests as untyped pointers: the engine reads them as its own
            // `Gaicb` (glibc's layout).
            #[cfg(target_os = "linux")]
            getaddrinfo_a(mode: c_int, list: *mut *mut c_void, ent: c_int, sig: *mut sigevent) -> c_int {
                absent: libc::EAI_SYSTEM,
                stub: { load: true, fail: EAI_SYSTEM, errno: libc::ENETUNREACH }
            };
            #[cfg(target_os = "linux")]
            gai_suspend(list: *const *const c_void, ent: c_int, timeout: *const timespec) -> c_int {
                absent: libc::EAI_SYSTEM,
                stub: { load: false, fail: EAI_SYSTEM, errno: libc::ENOSYS }
            };
            #[cfg(target_os = "linux")]
            gai_cancel(req: *mut c_void) -> c_int {
                absent: libc::EAI_SYSTEM,
                stub: { load: false, fail: EAI_SYSTEM, errno: libc::ENOSYS }
            };
            #[cfg(target_os = "linux")]
            res_query(dname: *const c_char, class: c_int, ty: c_int, answer: *mut u8, anslen: c_int) -> c_int {
                absent: -1,
                stub: { load: true, fail: no_res(), errno: libc::ENETUNREACH, aliases: [__res_query] }
            };
            #[cfg(target_os = "linux")]
            res_search(dname: *const c_char, class: c_int, ty: c_int, answer: *mut u8, anslen: c_int) -> c_int {
                absent: -1,
                stub: { load: true, fail: no_res(), errno: libc::ENETUNREACH, aliases: [__res_search] }
            };
            #[cfg(target_os = "linux")]
            res_querydomain(name: *const c_char, domain: *const c_char, class: c_int, ty: c_int, answer: *mut u8, anslen: c_int) -> c_int {
                absent: -1,
                stub: { load: true, fail: no_res(), errno: libc::ENETUNREACH, aliases: [__res_querydomain] }
            };
            #[cfg(target_os = "linux")]
            res_send(msg: *const u8, msglen: c_int, answer: *mut u8, anslen: c_int) -> c_int {
                absent: -1,
                stub: { load: true, fail: no_res(), errno: libc::ENETUNREACH, aliases: [__res_send] }
            };
            #[cfg(target_os = "linux")]
            res_nquery(statp: *mut c_void, dname: *const c_char, class: c_int, ty: c_int, answer: *mut u8, anslen: c_int) -> c_int {
                absent: -1,
                stub: { load: true, fail: no_res(), errno: libc::ENETUNREACH, aliases: [__res_nquery] }
            };
            #[cfg(target_os = "linux")]
            res_nsearch(statp: *mut c_void, dname: *const c_char, class: c_int, ty: c_int, answer: *mut u8, anslen: c_int) -> c_int {
                absent: -1,
                stub: { load: true, fail: no_res(), errno: libc::ENETUNREACH, aliases: [__res_nsearch] }
            };
            #[cfg(target_os = "linux")]
            res_nquerydomain(statp: *mut c_void, name: *const c_char, domain: *const c_char, class: c_int, ty: c_int, answer: *mut u8, anslen: c_int) -> c_int {
                absent: -1,
                stub: { load: true, fail: no_res(), errno: libc::ENETUNREACH, aliases: [__res_nquerydomain] }
            };
            #[cfg(target_os = "linux")]
            res_nsend(statp: *mut c_void, msg: *const u8, msglen: c_int, answer: *mut u8, anslen: c_int) -> c_int {
                absent: -1,
                stub: { load: true, fail: no_res(), errno: libc::ENETUNREACH, aliases: [__res_nsend] }
            };
            // The exec family: the stub decides what the exec will run (`check`: a
            // program the preload cannot steer runs under mifrun's supervisor, or the
            // call fails closed) and then makes the call itself; the engine's entries
            // only forward. glibc's `execv`, `execvp`, `execvpe`, `fexecve` reach the
            // kernel through its internal `__execve`, past the `execve` hook, so each
            // is hooked by name. The variadic `execl`, `execle`, `execlp` are the
            // stub's naked entry points (preload/src/exec.rs), outside the list.
            #[cfg(target_os = "linux")]
            execve(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS, direct: true, check: exec::execve_check }
            };
            #[cfg(target_os = "linux")]
            execveat(dirfd: c_int, path: *const c_char, argv: *const *const c_char, envp: *const *const c_char, flags: c_int) -> c_int {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS, direct: true, check: exec::execveat_check }
            };
            #[cfg(target_os = "linux")]
            fexecve(fd: c_int, argv: *const *const c_char, envp: *const *const c_char) -> c_int {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS, direct: true, check: exec::fexecve_check }
            };
            #[cfg(target_os = "linux")]
            execv(path: *const c_char, argv: *const *const c_char) -> c_int {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS, direct: true, check: exec::execv_check }
            };
            #[cfg(target_os = "linux")]
            execvp(file: *const c_char, argv: *const *const c_char) -> c_int {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS, direct: true, check: exec::execvp_check }
            };
            #[cfg(target_os = "linux")]
            execvpe(file: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int {
                absent: -1,
                stub: { load: false, fail: -1, errno: libc::ENOSYS, direct: true, check: exec::execvpe_check }
            };
        }
    };
}

// ---------------------------------------------------------------------------------
// What the list makes here: one type per signature, the two tables of the interface
// ---------------------------------------------------------------------------------

// The list is plain tokens, portable; the tables generated from it are the same on
// every OS (`iface`) over each OS's C types and helpers (`linux`, `macos`).
#[cfg(any(target_os = "linux", target_os = "macos"))]
mod iface;
#[cfg(any(target_os = "linux", target_os = "macos"))]
pub use iface::*;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::*;
#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
pub use macos::*;
/// macOS's control-message layout (pure: built everywhere, tested on Linux).
pub mod darwin;

/// The variables that decide whether a process is steered.
pub mod env {
    pub const DISABLE: &str = "MIFSHIM_DISABLE";
    pub const VIA: &str = "MIFSHIM_VIA";
    pub const POLICY: &str = "MIFSHIM_POLICY";
    /// `mifrun --dns`'s servers (the stub passes them on when it re-execs a program
    /// under the supervisor).
    pub const DNS: &str = "MIFSHIM_DNS";
    /// The absolute path of the `mifrun` that started the tree: the stub's exec hooks
    /// run a program the preload cannot steer as `MIFRUN --supervise … -- PROGRAM`.
    pub const MIFRUN: &str = "MIFSHIM_MIFRUN";
    /// Set by mifrun's supervisor for the program it supervises: the stub's exec hooks
    /// exec what the preload cannot steer as is there (the supervisor's filter, which
    /// every descendant inherits, steers it; supervisors do not nest), when the
    /// process also runs under a seccomp filter.
    pub const SUPERVISED: &str = "MIFSHIM_SUPERVISED";
    pub const XDG_CONFIG_HOME: &str = "XDG_CONFIG_HOME";
    pub const HOME: &str = "HOME";
}

/// The user's policy file, under `$XDG_CONFIG_HOME` …
pub const POLICY_UNDER_XDG: &str = "/mifshim/policy.toml";
/// … or, without it, under `$HOME`.
pub const POLICY_UNDER_HOME: &str = "/.config/mifshim/policy.toml";
/// The system's policy file.
pub const SYSTEM_POLICY: &str = "/etc/mifshim/policy.toml";

/// What the variables say (each given as its value, `None` when unset or empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Steering {
    /// `MIFSHIM_DISABLE=1`.
    Off,
    /// `MIFSHIM_VIA` or `MIFSHIM_POLICY` is set.
    On,
    /// Steered if a policy file exists (the user's, see [`POLICY_UNDER_XDG`], then
    /// [`SYSTEM_POLICY`]).
    IfPolicyFile,
}

/// The rule the stub applies at start-up and the engine applies again when it loads:
/// `MIFSHIM_DISABLE=1` no; `MIFSHIM_VIA` or `MIFSHIM_POLICY` yes; otherwise a policy
/// file decides.
#[inline]
pub fn steering(disable: Option<&[u8]>, via_set: bool, policy_set: bool) -> Steering {
    if disable == Some(b"1") {
        Steering::Off
    } else if via_set || policy_set {
        Steering::On
    } else {
        Steering::IfPolicyFile
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_os = "linux")]
    use core::ffi::c_int;

    #[test]
    fn steering_follows_the_variables() {
        assert_eq!(steering(Some(b"1"), true, true), Steering::Off);
        assert_eq!(steering(Some(b"0"), true, false), Steering::On);
        assert_eq!(steering(Some(b"1 "), false, true), Steering::On);
        assert_eq!(steering(None, false, false), Steering::IfPolicyFile);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn every_hooked_call_has_a_slot_in_both_tables() {
        assert_eq!(NAMES.len(), 49);
        let ptr = size_of::<usize>();
        assert_eq!(size_of::<Reals>(), NAMES.len() * ptr);
        assert_eq!(size_of::<Hooks>(), NAMES.len() * ptr);
        let mut sorted: [&str; 49] = [""; 49];
        sorted.copy_from_slice(NAMES);
        sorted.sort_unstable();
        assert!(
            sorted.windows(2).all(|w| w[0] != w[1]),
            "a call listed twice"
        );
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_slot_gives_back_what_it_was_given() {
        unsafe extern "C" fn seven(_: c_int) -> c_int {
            7
        }
        let s: Slot<sig::close> = Slot::new();
        assert!(s.get().is_none());
        s.set(Some(seven));
        // SAFETY: seven has no preconditions.
        assert_eq!(unsafe { s.get().unwrap()(3) }, 7);
        s.set(None);
        assert!(!s.is_set());
    }

    #[cfg(any(target_os = "linux", target_os = "macos"))]
    mod interposed {
        pub extern "C" fn hook_a() {}
        pub extern "C" fn hook_b() {}
        pub extern "C" fn real_a() {}
        pub extern "C" fn real_a_nocancel() {}
        pub extern "C" fn real_b() {}
        pub extern "C" fn real_gone() {}
    }

    /// The macOS table's generator: one {replacement, replacee} tuple per pair, in the
    /// pairs' order, replacement first (dyld's layout), a pair `#[cfg]`'d out leaving no
    /// tuple and no room for one.
    #[test]
    #[cfg(any(target_os = "linux", target_os = "macos"))]
    fn interpose_table_pairs_each_replacement_with_its_replacee_in_order() {
        use core::ffi::c_void;
        use interposed::*;
        crate::interpose_table! {
            static TABLE in ".data.mifshim_interpose_test";
            hook_a => real_a,
            #[cfg(any())]
            hook_b => real_gone,
            hook_a => real_a_nocancel,
            hook_b => real_b,
        }
        let at = |f: extern "C" fn()| f as *const c_void;
        assert_eq!(TABLE.len(), 3);
        let pairs: Vec<_> = TABLE.iter().map(|t| (t.replacement, t.replacee)).collect();
        assert_eq!(
            pairs,
            [
                (at(hook_a), at(real_a)),
                (at(hook_a), at(real_a_nocancel)),
                (at(hook_b), at(real_b)),
            ]
        );
        assert!(!pairs.iter().any(|&(_, r)| r == at(real_gone)));
    }

    /// `struct { const void *replacement; const void *replacee; }`: two pointers, the
    /// replacement at offset 0, no padding (an array of them is what dyld walks).
    #[test]
    #[cfg(any(target_os = "linux", target_os = "macos"))]
    fn an_interpose_tuple_is_two_pointers_replacement_first() {
        assert_eq!(size_of::<Interpose>(), 2 * size_of::<usize>());
        assert_eq!(core::mem::offset_of!(Interpose, replacement), 0);
        assert_eq!(
            core::mem::offset_of!(Interpose, replacee),
            size_of::<usize>()
        );
        assert_eq!(size_of::<[Interpose; 3]>(), 3 * size_of::<Interpose>());
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn key_at_reads_inet_and_inet6_addresses_only() {
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 53u16.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from_be_bytes([198, 51, 100, 1]).to_be(),
            },
            sin_zero: [0; 8],
        };
        let p = (&raw const sin).cast::<libc::sockaddr>();
        // SAFETY: sin is 16 readable bytes.
        assert!(unsafe { key_at(p, 16) }.is_some());
        // SAFETY: as above; shorter lengths read less.
        assert!(unsafe { key_at(p, 15) }.is_none());
        // SAFETY: NULL is allowed.
        assert!(unsafe { key_at(core::ptr::null(), 16) }.is_none());
    }
}
