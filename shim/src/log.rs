//! The shim's logger: a line is formatted into a stack buffer and written with one
//! `write(2)`; nothing allocates, nothing locks, errno is kept. Off the hot path at
//! the default level (`warn`), where only problems are printed.
//!
//! **Never log from `close` or while holding anything**: a program may close our log
//! fd, and the close hook only notes that.

use crate::sys;
use config_schema::LogLevel;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, AtomicU64, Ordering};

static LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Warn as u8);
/// The fd lines go to: 2 (stderr) by default; [`CLOSED`] when the program closed our
/// log file, which is then reopened by name. Kept in `fdtable::SHARED_TABLE.log_fd`, where
/// the stub's `close` sees it (a close of this fd must reach the engine).
static FD: &AtomicI32 = &crate::fdtable::SHARED_TABLE.log_fd;
const CLOSED: i32 = -2;
/// Standard error was closed and there is no log file: drop the lines.
const SILENT: i32 = mifshim_fastpath::LOG_SILENT;
/// The program closed fd 2 (and did not put anything back with dup2/dup3).
static STDERR_GONE: AtomicBool = AtomicBool::new(false);
static PATH: std::sync::OnceLock<std::ffi::CString> = std::sync::OnceLock::new();
/// Last time a rate-limited warning was written (ms, coarse clock).
static LAST_WARN: AtomicU64 = AtomicU64::new(0);
static SUPPRESSED: AtomicU64 = AtomicU64::new(0);

/// The program name shown in every line (`mifshim[curl:1234]`).
static PROG: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Sets the level and the program name, and opens `file` (a path by its bytes: it
/// need not be UTF-8). A file that cannot be opened — a FIFO nobody reads (`ENXIO`: the
/// open does not wait for a reader), a directory, no permission — leaves the lines on
/// standard error after one warning saying so; the shim is configured all the same.
pub(crate) fn configure(level: LogLevel, file: Option<&std::ffi::OsStr>, prog: &str) {
    use std::os::unix::ffi::OsStrExt;
    LEVEL.store(level as u8, Ordering::Relaxed);
    let _ = PROG.set(prog.chars().take(32).collect());
    let Some(path) = file.filter(|p| !p.is_empty()) else {
        return;
    };
    // An environment value holds no NUL byte.
    let Ok(c) = std::ffi::CString::new(path.as_bytes()) else {
        return;
    };
    match sys::open_log(&c) {
        Ok(fd) => FD.store(fd, Ordering::Relaxed),
        Err(e) => {
            let why = if e == sys::ENXIO {
                "a FIFO without a reader".to_owned()
            } else {
                std::io::Error::from_raw_os_error(e).to_string()
            };
            line(
                LogLevel::Warn,
                format_args!(
                    "cannot open the log file {} ({why}); logging to standard error",
                    path.to_string_lossy()
                ),
            );
        }
    }
    let _ = PATH.set(c);
}

pub(crate) fn enabled(level: LogLevel) -> bool {
    level != LogLevel::Off && level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Called by the close/dup hooks: `fd` is about to stop being ours. `replaced`: by
/// `dup2`/`dup3` (a program pointing its standard error elsewhere keeps it standard
/// error); otherwise closed, and a closed standard error is never written to again (the
/// number may be reused by a socket of the program's).
pub(crate) fn fd_closing(fd: i32, replaced: bool) {
    if fd == 2 {
        // Whether fd 2 is still standard error, for the fallback below.
        STDERR_GONE.store(!replaced, Ordering::Relaxed);
    }
    if fd < 0 || FD.load(Ordering::Relaxed) != fd {
        return;
    }
    if fd != 2 {
        FD.store(CLOSED, Ordering::Relaxed);
    } else if !replaced {
        FD.store(
            if PATH.get().is_some() { CLOSED } else { SILENT },
            Ordering::Relaxed,
        );
    }
}

/// fds `first..=last` are being closed (`close_range`, `closefrom`): as [`fd_closing`]
/// for standard error and the log file among them.
pub(crate) fn fd_range_closing(first: u32, last: u32) {
    let within = |fd: i32| fd >= 0 && (first..=last).contains(&(fd as u32));
    if within(2) {
        fd_closing(2, false);
    }
    let log = FD.load(Ordering::Relaxed);
    if log != 2 && within(log) {
        fd_closing(log, false);
    }
}

struct Line {
    buf: [u8; 480],
    len: usize,
}

impl fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Writes one line `mifshim[prog:pid] <args>` if `level` is enabled.
pub(crate) fn line(level: LogLevel, args: fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let mut l = Line {
        buf: [0; 480],
        len: 0,
    };
    let prog = PROG.get().map_or("?", String::as_str);
    let _ = write!(l, "mifshim[{prog}:{}] ", sys::getpid());
    if level <= LogLevel::Warn {
        let _ = write!(
            l,
            "{}: ",
            if level == LogLevel::Error {
                "error"
            } else {
                "warning"
            }
        );
    }
    let _ = l.write_fmt(args);
    if l.len == l.buf.len() {
        l.buf[l.len - 4..l.len - 1].copy_from_slice(b"...");
        l.len -= 1;
    }
    l.buf[l.len] = b'\n';
    let mut fd = FD.load(Ordering::Relaxed);
    if fd == SILENT {
        return;
    }
    if fd == CLOSED {
        // Our log file was closed by the program: reopen it; failing that, standard
        // error, unless that was closed too (fd 2 may be the program's by now).
        let fallback = if STDERR_GONE.load(Ordering::Relaxed) {
            SILENT
        } else {
            2
        };
        fd = PATH
            .get()
            .and_then(|p| sys::open_log(p).ok())
            .unwrap_or(fallback);
        FD.store(fd, Ordering::Relaxed);
        if fd == SILENT {
            return;
        }
    }
    sys::write_all(fd, &l.buf[..=l.len]);
}

/// A warning printed at most once a second (a UDP loop failing closed must not flood
/// the terminal); the next one says how many were suppressed.
pub(crate) fn warn_limited(args: fmt::Arguments<'_>) {
    if !enabled(LogLevel::Warn) {
        return;
    }
    let now = sys::now_ms();
    let last = LAST_WARN.load(Ordering::Relaxed);
    if last != 0 && now.saturating_sub(last) < 1000 {
        SUPPRESSED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    if LAST_WARN
        .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
        .is_err()
    {
        SUPPRESSED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let n = SUPPRESSED.swap(0, Ordering::Relaxed);
    if n > 0 {
        line(
            LogLevel::Warn,
            format_args!("{args} ({n} similar messages suppressed)"),
        );
    } else {
        line(LogLevel::Warn, args);
    }
}

pub(crate) fn netlink_failed(errno: i32) {
    warn_limited(format_args!(
        "cannot read the interface list from the kernel ({}): every interface counts as unusable",
        sys::errno_name(errno)
    ));
}

#[macro_export]
macro_rules! log_at {
    ($level:ident, $($t:tt)*) => {
        if $crate::log::enabled(config_schema::LogLevel::$level) {
            $crate::log::line(config_schema::LogLevel::$level, format_args!($($t)*));
        }
    };
}
