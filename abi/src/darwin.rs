//! macOS's control-message layout, for the macOS stub's `SCM_RIGHTS` bookkeeping (the
//! Linux stub's is `mifshim_fastpath::passed_fds`). Pure and compiled on every OS, so
//! that Linux runs its tests.
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

#[cfg(test)]
mod tests {
    use super::*;

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
