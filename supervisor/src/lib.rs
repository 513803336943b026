//! The seccomp user-notification supervisor of `mifrun --supervise`: it steers the
//! sockets of programs a preload cannot reach (static binaries, Go, raw system calls,
//! children that scrub their environment) without root.
//!
//! `mifrun` forks; the child sets `no_new_privs`, installs the hand-written filter of
//! [`filter`] with a listener, hands the listener's number to the parent through a
//! pipe (the parent takes it with `pidfd_getfd`), waits for the parent's go and execs
//! the program. The parent answers every trapped call ([`run`]): it reads the
//! address from the program's memory, decides with config-schema's `decide` (the
//! preload's decision) and socket-core's transitions ([`logic`]), works on a
//! `pidfd_getfd` duplicate of the program's socket (bind it to the device, set its
//! unicast interface, or send a datagram itself with a PKTINFO) and lets the call
//! continue, fails it, or returns the result of the work it did.
//!
//! When the supervisor dies, the kernel fails every trapped call of the program with
//! `ENOSYS`: nothing it would have steered leaves unsteered.

pub mod addr;
pub mod events;
pub mod filter;
pub mod interrupt;
pub mod logic;
mod run;
mod sys;

pub use logic::Snapshot;
pub use run::{Exit, Host, Run, run};
