//! The `AF_UNIX` swap-and-rewrite race under `--supervise` (issue 11): known, not
//! fixed, parked here (not compiled: see `integration-tests/open/README.md`). Copy the
//! test into `tests/e2e/supervise_review.rs` (whose helpers it uses) to work on it.
//!
//! The supervisor lets a call on a non-INET socket continue (`SECCOMP_USER_NOTIF_FLAG_
//! CONTINUE`): an `AF_UNIX` connect made by the supervisor would carry the
//! supervisor's credentials (`SO_PEERCRED`, read by D-Bus and polkit) and resolve its
//! path in the supervisor's cwd and root. The kernel reads the fd and the address again
//! when the call continues, so a thread that `dup2`s an INET socket onto the fd and
//! rewrites the address in that window connects the INET socket itself, unbound.
//!
//! Measured on 2026-12-06 (a2d8917 + the `unixswap` mode): the race is won at the
//! first or second connect of 5000, v4 and v6 — the window is the supervisor's whole
//! handling of the notification, tens of microseconds — and the swapped-in socket's
//! datagram is answered by eth0 (`upstream=eth0`, 1 UDP packet each way on eth0).
//! `--guard` drops it (`tests/guard.rs`:
//! `guard_drops_what_an_inet_socket_swapped_onto_an_af_unix_connect_sends_supervise`).

both!(
    /// An INET socket swapped onto an `AF_UNIX` connect, its address rewritten: must
    /// be steered or refused, never connected unbound.
    an_inet_socket_swapped_onto_an_af_unix_connect_is_not_connected_unsteered,
    |fam| {
        let tb = Testbed::up();
        let dir = TempDir::new("suprev");
        let bin = build(&dir);
        let (out, counts) = run_review(&tb, &bin, &["unixswap", fam_arg(fam), "5000"]);
        assert!(out.stdout.contains("unixswap iterations="), "{}", out.dump());
        steered_or_refused(&out, &counts);
    }
);
