//! Running the program as a child (`--summary`, `--fail-on`) instead of `exec`ing it:
//! the signals a shell or a CI runner sends to mifrun reach the program, and its end
//! (exit status or signal) becomes mifrun's own.
//!
//! mifrun blocks `SIGINT`, `SIGTERM`, `SIGHUP`, `SIGQUIT` and `SIGCHLD` and takes them
//! with `sigwaitinfo` while the child runs; the child gets mifrun's original mask back
//! between `fork` and `exec` (the standard library keeps the parent's mask). A signal another process sent to mifrun (`kill`,
//! `si_code <= 0`) is forwarded to the child; one the terminal sent to the whole
//! foreground process group (`SI_KERNEL`: ^C, ^\, a hang-up) already reached the child,
//! which stays in mifrun's process group, and is not sent twice. `SIGTSTP` and
//! `SIGCONT` keep their defaults, so ^Z stops both and `fg` resumes both.

/// How the child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Exited(i32),
    Signaled { signal: i32, core: bool },
}

const FORWARDED: [i32; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

fn waited_set() -> libc::sigset_t {
    // SAFETY: zero is a valid sigset_t; sigemptyset and sigaddset only write to it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in FORWARDED.iter().chain(&[libc::SIGCHLD]) {
            libc::sigaddset(&mut set, *s);
        }
        set
    }
}

/// The signal mask mifrun had before [`block`]; restored by [`Blocked::restore`].
pub struct Blocked(libc::sigset_t);

/// Blocks the signals [`wait`] takes; call before starting the child.
pub fn block() -> Blocked {
    let set = waited_set();
    // SAFETY: zero is a valid sigset_t (overwritten by the call).
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: both sets are valid; mifrun is single-threaded.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) };
    Blocked(old)
}

impl Blocked {
    /// Makes `cmd`'s child start with the mask mifrun had before [`block`].
    pub fn restore_in_child(&self, cmd: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        let old = self.0;
        // SAFETY: the closure runs in the child between fork and exec and calls only
        // pthread_sigmask, which is async-signal-safe, on a set it owns.
        unsafe {
            cmd.pre_exec(move || {
                libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
                Ok(())
            });
        }
    }

    pub fn restore(self) {
        // SAFETY: the saved set is valid.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
    }
}

fn reap(pid: i32, flags: i32) -> Option<End> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is valid for writes.
        let r = unsafe { libc::waitpid(pid, &mut status, flags) };
        if r == pid {
            break;
        }
        if r == 0 {
            return None;
        }
        if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        // ECHILD: someone else reaped it (cannot happen here): report a failure.
        return Some(End::Exited(127));
    }
    Some(if libc::WIFSIGNALED(status) {
        End::Signaled {
            signal: libc::WTERMSIG(status),
            core: libc::WCOREDUMP(status),
        }
    } else {
        End::Exited(libc::WEXITSTATUS(status))
    })
}

/// Waits for child `pid` to end (with the signals of [`block`] blocked), forwarding
/// what other processes send to mifrun.
pub fn wait(pid: i32) -> End {
    let set = waited_set();
    loop {
        if let Some(end) = reap(pid, libc::WNOHANG) {
            return end;
        }
        // SAFETY: zero is a valid siginfo_t (filled by the call).
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` and `info` are valid.
        let sig = unsafe { libc::sigwaitinfo(&set, &mut info) };
        if sig < 0 || sig == libc::SIGCHLD {
            continue;
        }
        if info.si_code <= 0 {
            // SAFETY: kill has no memory arguments; `pid` is our child, not yet reaped.
            unsafe { libc::kill(pid, sig) };
        }
    }
}

/// Ends mifrun the way the child ended: by the same signal (its default action, with
/// core dumps off so that mifrun does not dump its own), else exit 128 + N.
pub fn die_by(signal: i32) -> ! {
    // SAFETY: plain system calls on this process; the structures are valid.
    unsafe {
        let off = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &off);
        libc::signal(signal, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(signal);
    }
    std::process::exit(128 + signal)
}
