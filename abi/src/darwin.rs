//! macOS's control-message layout, for the macOS stub's `SCM_RIGHTS` bookkeeping (the
//! Linux stub's is `mifshim_fastpath::passed_fds`), and the rule of the stub's
//! `$NOCANCEL` twin records ([`twin_frame`]). Pure and compiled on every OS, so that
//! Linux runs its tests.
//!
//! XNU's `cmsghdr` is `{u32 cmsg_len, int cmsg_level, int cmsg_type}` (12 bytes), its
//! data and the next header aligned to 4 bytes (`__DARWIN_ALIGN32`, `<sys/socket.h>`);
//! `SOL_SOCKET` is `0xffff` and `SCM_RIGHTS` 1.

/// `sizeof(struct cmsghdr)`, already 4-byte aligned: where the data starts.
pub const CMSGHDR: usize = 12;
/// `SOL_SOCKET` on macOS.
pub const SOL_SOCKET: i32 = 0xffff;
/// `SCM_RIGHTS`.
pub const SCM_RIGHTS: i32 = 1;

/// `__DARWIN_ALIGN32`.
pub const fn align32(n: usize) -> usize {
    (n + 3) & !3
}

fn word(ctl: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([ctl[at], ctl[at + 1], ctl[at + 2], ctl[at + 3]])
}

/// Calls `f` for every fd the `SCM_RIGHTS` messages of control data `ctl` carry
/// (`msg_control` for `msg_controllen` bytes). The walk reads a header while one fits
/// and stops at a `cmsg_len` shorter than a header or past the end (control data the
/// kernel refuses, so it passed nothing).
pub fn passed_fds(ctl: &[u8], mut f: impl FnMut(i32)) {
    let n = ctl.len();
    let mut pos = 0usize;
    while pos <= n && n - pos >= CMSGHDR {
        let len = word(ctl, pos) as usize;
        if len < CMSGHDR || len > n - pos {
            return;
        }
        let (level, ty) = (word(ctl, pos + 4) as i32, word(ctl, pos + 8) as i32);
        if level == SOL_SOCKET && ty == SCM_RIGHTS {
            for fd in ctl[pos + CMSGHDR..pos + len].chunks_exact(4) {
                f(i32::from_ne_bytes([fd[0], fd[1], fd[2], fd[3]]));
            }
        }
        // len <= n - pos: no overflow; the aligned end may lie up to 3 bytes past n.
        pos += align32(len);
    }
}

/// The low bit of a twin record: a twin replacement's frame is recorded.
pub const TWIN_ACTIVE: usize = 1;

/// The token a twin replacement keeps at address `at` of its own frame (the recorded
/// address): a stale record's frame has since been overwritten by whatever ran there,
/// or cleared by the replacement on its way out.
pub const fn twin_token(at: usize) -> u64 {
    (at as u64) ^ 0x6e6f_6361_6e63_656c
}

/// Where to look for the token of the twin frame a thread's record `v` names, as seen
/// from a frame at `here`, with the thread's own stack at `stack` (`[lowest, top)`):
/// `Some(at)` when `v` is a record (its [`TWIN_ACTIVE`] bit set) of a frame above
/// `here` (stacks grow down on both of macOS's architectures) that lies on the thread's
/// own stack — the only memory a reader may dereference: a record in an alternate
/// signal stack or a fiber's stack may point at memory since freed. `None`: not a live
/// twin frame for this caller (no record, one below or at `here`, one off the stack).
/// The caller then compares the word at `at` with [`twin_token`]`(at)`.
pub fn twin_frame(v: usize, here: usize, stack: core::ops::Range<usize>) -> Option<usize> {
    let at = v & !7;
    (v & TWIN_ACTIVE != 0 && here < at && stack.contains(&at) && stack.contains(&(at + 7)))
        .then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_twin_record_is_read_only_above_the_caller_and_on_the_thread_stack() {
        let stack = 0x7000_0000..0x7010_0000;
        let at = 0x700f_ff00;
        let v = at | TWIN_ACTIVE;
        // The twin's hook, deeper on the same stack: look.
        assert_eq!(twin_frame(v, at - 0x400, stack.clone()), Some(at));
        // A handler on an alternate stack below the thread's: still looked at (the
        // twin it interrupted is live above it).
        assert_eq!(twin_frame(v, 0x1000, stack.clone()), Some(at));
        // A call from a shallower frame, or the frame itself: the record is gone.
        assert_eq!(twin_frame(v, at + 0x40, stack.clone()), None);
        assert_eq!(twin_frame(v, at, stack.clone()), None);
        // No record, or a cleared one.
        assert_eq!(twin_frame(0, at - 0x400, stack.clone()), None);
        assert_eq!(twin_frame(at, at - 0x400, stack.clone()), None);
        // A record on an alternate stack (above or below the thread's): never
        // dereferenced, whoever asks.
        let alt = 0x9000_0000 | TWIN_ACTIVE;
        assert_eq!(twin_frame(alt, 0x8fff_0000, stack.clone()), None);
        let low = 0x0100_0000 | TWIN_ACTIVE;
        assert_eq!(twin_frame(low, 0x00ff_0000, stack.clone()), None);
        // The top itself is past the stack.
        assert_eq!(
            twin_frame(0x7010_0000 | TWIN_ACTIVE, at, stack.clone()),
            None
        );
        // Tokens differ by frame address, and are never zero for a stack address (a
        // cleared canary never matches).
        assert_ne!(twin_token(at), twin_token(at + 8));
        assert_ne!(twin_token(at), 0);
    }

    fn cmsg(level: i32, ty: i32, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((CMSGHDR + data.len()) as u32).to_ne_bytes());
        v.extend_from_slice(&level.to_ne_bytes());
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(data);
        v.resize(align32(v.len()), 0);
        v
    }

    #[test]
    fn fds_of_every_scm_rights_message_after_others() {
        let mut ctl = cmsg(0, 26, &[0; 12]); // an IP_PKTINFO first
        ctl.extend(cmsg(SOL_SOCKET, SCM_RIGHTS, &[7, 0, 0, 0]));
        ctl.extend(cmsg(SOL_SOCKET, 2, &[1, 0, 0, 0])); // SCM_TIMESTAMP-like: no fds
        ctl.extend(cmsg(SOL_SOCKET, SCM_RIGHTS, &[9, 0, 0, 0, 11, 0, 0, 0]));
        let mut fds = Vec::new();
        passed_fds(&ctl, |fd| fds.push(fd));
        assert_eq!(fds, [7, 9, 11]);
    }

    /// Linux's layout (an 8-byte `cmsg_len`, `SOL_SOCKET` 1) is not read as fds here.
    #[test]
    fn linux_layout_and_malformed_data_pass_nothing() {
        let mut linux = Vec::new();
        linux.extend_from_slice(&20u64.to_ne_bytes());
        linux.extend_from_slice(&1i32.to_ne_bytes());
        linux.extend_from_slice(&1i32.to_ne_bytes());
        linux.extend_from_slice(&[7, 0, 0, 0, 0, 0, 0, 0]);
        let mut fds = Vec::new();
        passed_fds(&linux, |fd| fds.push(fd));
        assert!(fds.is_empty());
        let mut long = cmsg(SOL_SOCKET, SCM_RIGHTS, &[7, 0, 0, 0]);
        long[..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        passed_fds(&long, |fd| fds.push(fd));
        let mut short = cmsg(SOL_SOCKET, SCM_RIGHTS, &[7, 0, 0, 0]);
        short[..4].copy_from_slice(&11u32.to_ne_bytes());
        passed_fds(&short, |fd| fds.push(fd));
        passed_fds(&[], |fd| fds.push(fd));
        passed_fds(&short[..11], |fd| fds.push(fd));
        assert!(fds.is_empty());
    }
}
