//! Test variants (IPv4/IPv6, [`both!`]) and the common assertion [`expect_via`].

use crate::*;

/// Address family of a test variant.
#[derive(Clone, Copy, Debug)]
pub enum Fam {
    V4,
    V6,
}

impl Fam {
    pub fn v6(self) -> bool {
        matches!(self, Fam::V6)
    }

    /// The service address every upstream owns.
    pub fn svc(self) -> &'static str {
        if self.v6() { SVC6 } else { SVC4 }
    }

    /// `http://SVC:PORT/`.
    pub fn url(self, port: u16) -> String {
        match self {
            Fam::V4 => format!("http://{SVC4}:{port}/"),
            Fam::V6 => format!("http://[{SVC6}]:{port}/"),
        }
    }

    /// The service prefix as a CIDR for policies.
    pub fn svc_cidr(self) -> &'static str {
        if self.v6() {
            "2001:db8:ff::10/128"
        } else {
            "203.0.113.10/32"
        }
    }

    /// The loopback address.
    pub fn lo(self) -> &'static str {
        if self.v6() { "::1" } else { "127.0.0.1" }
    }

    /// `host` in URL form.
    pub fn url_host(self, addr: &str) -> String {
        if self.v6() {
            format!("[{addr}]")
        } else {
            addr.to_string()
        }
    }
}

/// Generates `mod $name { fn v4(); fn v6(); }` from a body taking a [`Fam`]; the
/// attributes given (doc comments, `#[ignore = "…"]`) go on both tests.
#[macro_export]
macro_rules! both {
    ($(#[$m:meta])* $name:ident, |$fam:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn body($fam: $crate::Fam) $body
            $(#[$m])*
            #[test]
            fn v4() {
                body($crate::Fam::V4)
            }
            $(#[$m])*
            #[test]
            fn v6() {
                body($crate::Fam::V6)
            }
        }
    };
}

/// `mifrun --via VIA -- PROG…`.
pub fn mifrun_args<S: AsRef<str>>(via: &str, prog: &[S]) -> Vec<String> {
    let mut v = vec![s(mifrun()), "--via".into(), via.into(), "--".into()];
    v.extend(prog.iter().map(|a| a.as_ref().to_string()));
    v
}

/// `mifrun --policy FILE -- PROG…`.
pub fn mifrun_policy_args<S: AsRef<str>>(policy: &str, prog: &[S]) -> Vec<String> {
    let mut v = vec![s(mifrun()), "--policy".into(), policy.into(), "--".into()];
    v.extend(prog.iter().map(|a| a.as_ref().to_string()));
    v
}

/// Runs `cmd` with all sniffers on; asserts the answer came from `uplink` and that only
/// `uplink` carried TCP/UDP.
#[track_caller]
pub fn expect_via(tb: &Testbed, cmd: Cmd, uplink: &str) -> Out {
    let sn = tb.sniff_all();
    let out = cmd.run();
    let counts = sn.stop();
    out.assert_answered_by(uplink);
    assert_only(&counts, uplink);
    out
}
