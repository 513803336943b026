//! The seccomp filter, hand-written in classic BPF (no libseccomp): which system calls
//! the supervisor is asked about, which are refused outright and which run untouched.
//! Pure: [`program`] returns the instructions; `sys::install_filter` loads them.
//!
//! | system call (x86_64)                                   | filter says            |
//! |--------------------------------------------------------|------------------------|
//! | any, `seccomp_data.arch` not `AUDIT_ARCH_X86_64` (i386 `int 0x80`) | kill the process |
//! | any, number with bit 30 set (x32)                      | `ENOSYS`               |
//! | `connect`, `sendmsg`, `sendmmsg`                       | notify the supervisor  |
//! | `sendto` with a non-NULL address                       | notify                 |
//! | `setsockopt(SOL_SOCKET, SO_BINDTODEVICE / SO_BINDTOIFINDEX)` | notify           |
//! | `setsockopt(IP_UNICAST_IF / IPV6_UNICAST_IF)`          | notify (remembered)    |
//! | `setsockopt` of a multicast membership (`IP_ADD_MEMBERSHIP`, `IP_ADD_SOURCE_MEMBERSHIP`, `MCAST_JOIN_GROUP`, `MCAST_JOIN_SOURCE_GROUP`, `IPV6_ADD_MEMBERSHIP`, their leaves) | notify (steered) |
//! | `setsockopt(IP_MULTICAST_IF / IPV6_MULTICAST_IF)`      | notify (remembered)    |
//! | `setsockopt(SOL_SOCKET, SO_ATTACH_FILTER / SO_DETACH_FILTER / SO_ATTACH_BPF)` | notify (composed with a confinement filter) |
//! | `listen`, `bind`                                       | notify (confinement)   |
//! | `socket(…, IPPROTO_MPTCP / IPPROTO_SCTP)`              | `EPROTONOSUPPORT`      |
//! | `seccomp(SET_MODE_FILTER, NEW_LISTENER…)` (a nested supervisor) | notify (EBUSY, said) |
//! | `io_uring_setup`, `io_uring_enter`, `io_uring_register`| `ENOSYS`               |
//! | `pidfd_getfd` (any)                                    | `EPERM`                |
//! | `ptrace(…, pid)`, `process_vm_readv/writev(pid, …)` with the supervisor's pid | `EPERM` |
//! | anything else                                          | allow                  |
//!
//! The last two rows keep the program away from the supervisor's seccomp listener and
//! memory (answering its own notifications unsteers everything) where the kernel
//! would let it through: a program with `CAP_SYS_PTRACE` (mifrun makes itself
//! non-dumpable, which stops a same-uid one). `pidfd_getfd` is refused outright
//! (almost nothing needs it); the others only for mifrun's pid, a scalar argument.
//! Paths (`/proc/PID/mem`, `/proc/PID/fd/N`) cannot be seen by a filter: README says
//! what that leaves.
//!
//! The calls the child makes to hand the listener over (`write`, `read`, `close`,
//! `execve`) are not trapped, so it never waits on a supervisor that is not there yet.

use libc::sock_filter;
use mifshim_socket_core::membership;

/// `AUDIT_ARCH_X86_64` (`EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`).
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `__X32_SYSCALL_BIT`.
pub const X32_BIT: u32 = 0x4000_0000;

pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;

/// x86_64 system call numbers.
pub mod nr {
    pub const SOCKET: u32 = 41;
    pub const CONNECT: u32 = 42;
    pub const SENDTO: u32 = 44;
    pub const SENDMSG: u32 = 46;
    pub const BIND: u32 = 49;
    pub const LISTEN: u32 = 50;
    pub const SETSOCKOPT: u32 = 54;
    pub const SENDMMSG: u32 = 307;
    pub const SECCOMP: u32 = 317;
    pub const IO_URING_SETUP: u32 = 425;
    pub const IO_URING_ENTER: u32 = 426;
    pub const IO_URING_REGISTER: u32 = 427;
    pub const PTRACE: u32 = 101;
    pub const PROCESS_VM_READV: u32 = 310;
    pub const PROCESS_VM_WRITEV: u32 = 311;
    pub const PIDFD_GETFD: u32 = 438;
}

/// `SECCOMP_SET_MODE_FILTER`, `SECCOMP_FILTER_FLAG_NEW_LISTENER`.
pub const SECCOMP_SET_MODE_FILTER: u32 = 1;
pub const SECCOMP_FILTER_FLAG_NEW_LISTENER: u32 = 8;
pub const IPPROTO_MPTCP: u32 = 262;
pub const IPPROTO_SCTP: u32 = 132;
pub const SOL_SOCKET: u32 = 1;
pub const SO_BINDTODEVICE: u32 = 25;
pub const SO_BINDTOIFINDEX: u32 = 62;
pub const SO_ATTACH_FILTER: u32 = 26;
pub const SO_DETACH_FILTER: u32 = 27;
pub const SO_ATTACH_BPF: u32 = 50;
pub const IPPROTO_IP: u32 = 0;
pub const IPPROTO_IPV6: u32 = 41;
pub const IP_UNICAST_IF: u32 = 50;
pub const IPV6_UNICAST_IF: u32 = 76;
pub const IP_MULTICAST_IF: u32 = membership::IP_MULTICAST_IF as u32;
pub const IPV6_MULTICAST_IF: u32 = membership::IPV6_MULTICAST_IF as u32;
const ENOSYS: u32 = 38;
const EPERM: u32 = 1;
const EPROTONOSUPPORT: u32 = 93;

// Offsets in `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
/// Low 32 bits of argument `i` (x86_64 is little-endian).
const fn arg_lo(i: u32) -> u32 {
    16 + 8 * i
}
const fn arg_hi(i: u32) -> u32 {
    16 + 8 * i + 4
}

const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;

#[derive(Clone, Copy, PartialEq, Eq)]
enum L {
    ArchOk,
    Sendto,
    SendtoHi,
    Setsockopt,
    SolSocket,
    IpLevel,
    Ip6Level,
    Socket,
    Seccomp,
    SeccompFilter,
    Ptrace,
    ProcessVm,
    Notify,
    Eperm,
    Enosys,
    Eproto,
    Allow,
}

#[derive(Clone, Copy)]
enum Item {
    Ld(u32),
    /// `if A == k goto label` (else fall through).
    Jeq(u32, L),
    /// `if A & k goto label`.
    Jset(u32, L),
    Ret(u32),
    Label(L),
}

fn items(supervisor: u32) -> Vec<Item> {
    use Item::*;
    let mut v = vec![
        Ld(OFF_ARCH),
        Jeq(AUDIT_ARCH_X86_64, L::ArchOk),
        Ret(RET_KILL_PROCESS),
        Label(L::ArchOk),
        Ld(OFF_NR),
        Jset(X32_BIT, L::Enosys),
        Jeq(nr::CONNECT, L::Notify),
        Jeq(nr::SENDMSG, L::Notify),
        Jeq(nr::SENDMMSG, L::Notify),
        Jeq(nr::LISTEN, L::Notify),
        Jeq(nr::BIND, L::Notify),
        Jeq(nr::SENDTO, L::Sendto),
        Jeq(nr::SETSOCKOPT, L::Setsockopt),
        Jeq(nr::SOCKET, L::Socket),
        Jeq(nr::SECCOMP, L::Seccomp),
        Jeq(nr::IO_URING_SETUP, L::Enosys),
        Jeq(nr::IO_URING_ENTER, L::Enosys),
        Jeq(nr::IO_URING_REGISTER, L::Enosys),
        Jeq(nr::PIDFD_GETFD, L::Eperm),
        Jeq(nr::PTRACE, L::Ptrace),
        Jeq(nr::PROCESS_VM_READV, L::ProcessVm),
        Jeq(nr::PROCESS_VM_WRITEV, L::ProcessVm),
        Ret(RET_ALLOW),
        // ptrace(request, pid, …) and process_vm_readv/writev(pid, …) of the
        // supervisor (the kernel takes the pid as a 32-bit pid_t: the low word).
        Label(L::Ptrace),
        Ld(arg_lo(1)),
        Jeq(supervisor, L::Eperm),
        Ret(RET_ALLOW),
        Label(L::ProcessVm),
        Ld(arg_lo(0)),
        Jeq(supervisor, L::Eperm),
        Ret(RET_ALLOW),
        // sendto(fd, buf, len, flags, dest_addr, addrlen): notify unless dest_addr is NULL.
        Label(L::Sendto),
        Ld(arg_lo(4)),
        Jeq(0, L::SendtoHi),
        Ret(RET_USER_NOTIF),
        Label(L::SendtoHi),
        Ld(arg_hi(4)),
        Jeq(0, L::Allow),
        Ret(RET_USER_NOTIF),
        // setsockopt(fd, level, optname, …): the device-binding options only.
        // And the unicast interfaces (the program's own choice, remembered per socket).
        Label(L::Setsockopt),
        Ld(arg_lo(1)),
        Jeq(SOL_SOCKET, L::SolSocket),
        Jeq(IPPROTO_IP, L::IpLevel),
        Jeq(IPPROTO_IPV6, L::Ip6Level),
        Ret(RET_ALLOW),
        Label(L::IpLevel),
        Ld(arg_lo(2)),
        Jeq(IP_UNICAST_IF, L::Notify),
        Jeq(IP_MULTICAST_IF, L::Notify),
    ];
    // The membership options (socket-core's `membership`): a join or leave that
    // names no interface is pointed at the chosen one.
    v.extend(ip_membership().map(|o| Jeq(o, L::Notify)));
    v.extend([
        Ret(RET_ALLOW),
        Label(L::Ip6Level),
        Ld(arg_lo(2)),
        Jeq(IPV6_UNICAST_IF, L::Notify),
        Jeq(IPV6_MULTICAST_IF, L::Notify),
    ]);
    v.extend(ipv6_membership().map(|o| Jeq(o, L::Notify)));
    v.extend([
        Ret(RET_ALLOW),
        Label(L::SolSocket),
        Ld(arg_lo(2)),
        Jeq(SO_BINDTODEVICE, L::Notify),
        Jeq(SO_BINDTOIFINDEX, L::Notify),
        Jeq(SO_ATTACH_FILTER, L::Notify),
        Jeq(SO_DETACH_FILTER, L::Notify),
        Jeq(SO_ATTACH_BPF, L::Notify),
        Ret(RET_ALLOW),
        // socket(domain, type, protocol): MPTCP and SCTP are refused (Go falls back to TCP).
        Label(L::Socket),
        Ld(arg_lo(2)),
        Jeq(IPPROTO_MPTCP, L::Eproto),
        Jeq(IPPROTO_SCTP, L::Eproto),
        Ret(RET_ALLOW),
        // seccomp(SECCOMP_SET_MODE_FILTER, flags with NEW_LISTENER, …): a nested
        // supervisor, which the kernel refuses (EBUSY); notified so mifrun can say so.
        Label(L::Seccomp),
        Ld(arg_lo(0)),
        Jeq(SECCOMP_SET_MODE_FILTER, L::SeccompFilter),
        Ret(RET_ALLOW),
        Label(L::SeccompFilter),
        Ld(arg_lo(1)),
        Jset(SECCOMP_FILTER_FLAG_NEW_LISTENER, L::Notify),
        Ret(RET_ALLOW),
        Label(L::Notify),
        Ret(RET_USER_NOTIF),
        Label(L::Eperm),
        Ret(RET_ERRNO | EPERM),
        Label(L::Enosys),
        Ret(RET_ERRNO | ENOSYS),
        Label(L::Eproto),
        Ret(RET_ERRNO | EPROTONOSUPPORT),
        Label(L::Allow),
        Ret(RET_ALLOW),
    ]);
    v
}

/// The `IPPROTO_IP` membership options, as the filter compares them.
fn ip_membership() -> impl Iterator<Item = u32> {
    membership::IP_OPTIONS.into_iter().map(|o| o as u32)
}

/// The `IPPROTO_IPV6` membership options.
fn ipv6_membership() -> impl Iterator<Item = u32> {
    membership::IPV6_OPTIONS.into_iter().map(|o| o as u32)
}

/// The filter's instructions, jumps resolved (all forward, each within 255);
/// `supervisor`: the pid of the process that holds the listener (mifrun), in the
/// program's pid namespace.
pub fn program(supervisor: u32) -> Vec<sock_filter> {
    let items = items(supervisor);
    let mut pos = Vec::new();
    let mut pc = 0usize;
    for it in &items {
        match it {
            Item::Label(l) => pos.push((*l, pc)),
            _ => pc += 1,
        }
    }
    let at = |l: L| pos.iter().find(|(x, _)| *x == l).map(|(_, p)| *p).unwrap();
    let mut out = Vec::with_capacity(pc);
    for it in &items {
        let pc = out.len();
        let ins = |code, k, jt: usize| sock_filter {
            code,
            jt: u8::try_from(jt).expect("jump within 255"),
            jf: 0,
            k,
        };
        match *it {
            Item::Label(_) => continue,
            Item::Ld(off) => out.push(ins(LD_W_ABS, off, 0)),
            Item::Ret(v) => out.push(ins(RET_K, v, 0)),
            Item::Jeq(k, l) => out.push(ins(JEQ_K, k, at(l) - pc - 1)),
            Item::Jset(k, l) => out.push(ins(JSET_K, k, at(l) - pc - 1)),
        }
    }
    out
}

/// Runs `prog` over one `seccomp_data` the way the kernel does (the subset of classic
/// BPF [`program`] uses). For tests and `--check`-style explanations.
pub fn eval(prog: &[sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    let mut a: u32 = 0;
    let mut pc = 0usize;
    loop {
        let ins = prog[pc];
        pc += 1;
        match ins.code {
            LD_W_ABS => {
                let o = ins.k as usize;
                a = u32::from_le_bytes(data[o..o + 4].try_into().unwrap());
            }
            JEQ_K => {
                pc += if a == ins.k { ins.jt } else { ins.jf } as usize;
            }
            JSET_K => {
                pc += if a & ins.k != 0 { ins.jt } else { ins.jf } as usize;
            }
            RET_K => return ins.k,
            c => panic!("unexpected BPF opcode {c:#x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUP: u32 = 4242;

    /// A program (same uid, or root) took mifrun's listener with `pidfd_getfd` and
    /// answered its own notifications: everything it sent left unsteered. Refused
    /// outright; ptrace and process_vm_* only against the supervisor's pid.
    #[test]
    fn the_program_cannot_reach_the_supervisors_listener_or_memory() {
        assert_eq!(run(nr::PIDFD_GETFD, [3, 4, 0, 0, 0, 0]), RET_ERRNO | EPERM);
        for req in [16, 0x4206, 0] {
            // PTRACE_ATTACH, PTRACE_SEIZE, PTRACE_TRACEME-like: the pid decides.
            assert_eq!(
                run(nr::PTRACE, [req, SUP as u64, 0, 0, 0, 0]),
                RET_ERRNO | EPERM
            );
            // The pid's high word is not the kernel's (pid_t).
            assert_eq!(
                run(nr::PTRACE, [req, (1 << 32) | SUP as u64, 0, 0, 0, 0]),
                RET_ERRNO | EPERM
            );
            assert_eq!(run(nr::PTRACE, [req, 77, 0, 0, 0, 0]), RET_ALLOW);
        }
        for n in [nr::PROCESS_VM_READV, nr::PROCESS_VM_WRITEV] {
            assert_eq!(run(n, [SUP as u64, 1, 1, 1, 1, 0]), RET_ERRNO | EPERM);
            assert_eq!(run(n, [77, 1, 1, 1, 1, 0]), RET_ALLOW);
        }
    }

    fn run(nr: u32, args: [u64; 6]) -> u32 {
        eval(&program(SUP), nr, AUDIT_ARCH_X86_64, args)
    }

    #[test]
    fn socket_calls_notify_and_the_rest_is_allowed() {
        for n in [nr::CONNECT, nr::SENDMSG, nr::SENDMMSG, nr::LISTEN, nr::BIND] {
            assert_eq!(run(n, [3, 0x7fff_0000_1000, 16, 0, 0, 0]), RET_USER_NOTIF);
        }
        for n in [0, 1, 3, 59, 60, 231, nr::SOCKET] {
            assert_eq!(run(n, [2, 1, 0, 0, 0, 0]), RET_ALLOW, "nr {n}");
        }
    }

    #[test]
    fn sendto_notifies_only_with_an_address() {
        assert_eq!(run(nr::SENDTO, [3, 1, 1, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(nr::SENDTO, [3, 1, 1, 0, 0x1000, 16]), RET_USER_NOTIF);
        // A pointer whose low half is zero is still a pointer.
        assert_eq!(
            run(nr::SENDTO, [3, 1, 1, 0, 0x7fff_0000_0000, 16]),
            RET_USER_NOTIF
        );
    }

    #[test]
    fn device_binding_options_notify() {
        assert_eq!(
            run(nr::SETSOCKOPT, [3, 1, SO_BINDTODEVICE as u64, 0, 0, 0]),
            RET_USER_NOTIF
        );
        assert_eq!(
            run(nr::SETSOCKOPT, [3, 1, SO_BINDTOIFINDEX as u64, 0, 0, 0]),
            RET_USER_NOTIF
        );
        for opt in [SO_ATTACH_FILTER, SO_DETACH_FILTER, SO_ATTACH_BPF] {
            assert_eq!(
                run(nr::SETSOCKOPT, [3, 1, opt as u64, 0, 0, 0]),
                RET_USER_NOTIF
            );
        }
        assert_eq!(run(nr::SETSOCKOPT, [3, 0, 50, 0, 0, 0]), RET_USER_NOTIF); // IP_UNICAST_IF
        assert_eq!(run(nr::SETSOCKOPT, [3, 41, 76, 0, 0, 0]), RET_USER_NOTIF); // IPV6_UNICAST_IF
        assert_eq!(run(nr::SETSOCKOPT, [3, 41, 50, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(nr::SETSOCKOPT, [3, 1, 2, 0, 0, 0]), RET_ALLOW); // SO_REUSEADDR
        assert_eq!(run(nr::SETSOCKOPT, [3, 0, 25, 0, 0, 0]), RET_ALLOW); // IPPROTO_IP, 25
    }

    /// A multicast join naming no interface left by the default route's interface
    /// under the supervisor (its IGMP/MLD report on eth0): the membership options and
    /// the multicast interfaces notify; other IP options do not.
    #[test]
    fn multicast_membership_and_interface_options_notify_and_no_others() {
        let notify =
            |level: u32, name: u32| run(nr::SETSOCKOPT, [3, level as u64, name as u64, 0, 0, 0]);
        for o in ip_membership().chain([IP_MULTICAST_IF]) {
            assert_eq!(notify(IPPROTO_IP, o), RET_USER_NOTIF, "IPPROTO_IP {o}");
        }
        for o in ipv6_membership().chain([IPV6_MULTICAST_IF]) {
            assert_eq!(notify(IPPROTO_IPV6, o), RET_USER_NOTIF, "IPPROTO_IPV6 {o}");
        }
        assert_eq!(ip_membership().count(), 8);
        assert_eq!(ipv6_membership().count(), 6);
        // IP_TOS, IP_TTL, IP_MULTICAST_TTL, IP_MULTICAST_LOOP, IP_RECVERR; IPV6_V6ONLY,
        // IPV6_MULTICAST_HOPS, IPV6_TCLASS; SOL_SOCKET's SO_RCVBUF; a level the kernel
        // does not have.
        for (level, o) in [
            (0, 1),
            (0, 2),
            (0, 33),
            (0, 34),
            (0, 11),
            (41, 26),
            (41, 18),
            (41, 67),
            (1, 8),
            (6, 42),
        ] {
            assert_eq!(notify(level, o), RET_ALLOW, "level {level} option {o}");
        }
        // Only the low 32 bits of the level and option count (the kernel takes ints).
        assert_eq!(
            run(nr::SETSOCKOPT, [3, 1 << 32, (1 << 32) | 35, 0, 0, 0]),
            RET_USER_NOTIF
        );
    }

    #[test]
    fn mptcp_and_sctp_sockets_are_refused_so_go_falls_back() {
        assert_eq!(
            run(nr::SOCKET, [2, 1, IPPROTO_MPTCP as u64, 0, 0, 0]),
            RET_ERRNO | EPROTONOSUPPORT
        );
        assert_eq!(
            run(nr::SOCKET, [10, 1, IPPROTO_SCTP as u64, 0, 0, 0]),
            RET_ERRNO | EPROTONOSUPPORT
        );
        assert_eq!(run(nr::SOCKET, [10, 1, 6, 0, 0, 0]), RET_ALLOW);
    }

    #[test]
    fn a_nested_supervisors_listener_notifies_and_other_filters_pass() {
        assert_eq!(run(nr::SECCOMP, [1, 8, 0x1000, 0, 0, 0]), RET_USER_NOTIF);
        assert_eq!(
            run(nr::SECCOMP, [1, 8 | 32, 0x1000, 0, 0, 0]),
            RET_USER_NOTIF
        );
        assert_eq!(run(nr::SECCOMP, [1, 0, 0x1000, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(nr::SECCOMP, [3, 0, 0x1000, 0, 0, 0]), RET_ALLOW);
    }

    #[test]
    fn io_uring_is_refused_with_enosys() {
        for n in [
            nr::IO_URING_SETUP,
            nr::IO_URING_ENTER,
            nr::IO_URING_REGISTER,
        ] {
            assert_eq!(run(n, [0; 6]), RET_ERRNO | ENOSYS);
        }
    }

    #[test]
    fn other_architectures_are_killed_and_x32_numbers_refused() {
        let p = program(SUP);
        // i386 connect via socketcall (102) or int 0x80 socket calls.
        assert_eq!(eval(&p, 102, 0x4000_0003, [0; 6]), RET_KILL_PROCESS);
        assert_eq!(eval(&p, 362, 0x4000_0003, [0; 6]), RET_KILL_PROCESS);
        assert_eq!(
            eval(&p, X32_BIT | nr::CONNECT, AUDIT_ARCH_X86_64, [0; 6]),
            RET_ERRNO | ENOSYS
        );
        assert_eq!(
            eval(&p, X32_BIT | 1, AUDIT_ARCH_X86_64, [0; 6]),
            RET_ERRNO | ENOSYS
        );
    }

    #[test]
    fn program_is_small_and_ends_in_returns() {
        let p = program(SUP);
        assert!(p.len() < 96, "{}", p.len());
        assert_eq!(p.last().unwrap().code, RET_K);
    }
}
