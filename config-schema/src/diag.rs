//! Diagnostics with a position in the source, printed as `file:line:col: message`.

use std::fmt;

/// One problem found in a policy. `line` and `col` are 1-based; both are 0 when the
/// problem has no position (for example an unreadable file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file name, or a label such as `MIFSHIM_VIA` or `--via`.
    pub origin: String,
    pub line: u32,
    pub col: u32,
    pub message: String,
    /// Warnings do not make a policy invalid.
    pub warning: bool,
}

impl Diagnostic {
    /// An error at a byte offset of `src`.
    pub(crate) fn at(origin: &str, src: &str, offset: usize, message: String) -> Self {
        let (line, col) = line_col(src, offset);
        Diagnostic {
            origin: origin.to_owned(),
            line,
            col,
            message,
            warning: false,
        }
    }

    /// An error without a position.
    pub(crate) fn whole(origin: &str, message: String) -> Self {
        Diagnostic {
            origin: origin.to_owned(),
            line: 0,
            col: 0,
            message,
            warning: false,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.col)?;
        }
        f.write_str(": ")?;
        if self.warning {
            f.write_str("warning: ")?;
        }
        f.write_str(&self.message)
    }
}

/// 1-based line and column (in characters) of byte `offset` in `src`.
pub(crate) fn line_col(src: &str, offset: usize) -> (u32, u32) {
    let offset = offset.min(src.len());
    let mut cut = offset;
    while !src.is_char_boundary(cut) {
        cut -= 1;
    }
    let before = &src[..cut];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line as u32, col as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one_in_characters() {
        let s = "ab\ncdé\nf";
        assert_eq!(line_col(s, 0), (1, 1));
        assert_eq!(line_col(s, 3), (2, 1));
        assert_eq!(line_col(s, 7), (2, 4)); // after the two-byte é
        assert_eq!(line_col(s, 8), (3, 1));
        assert_eq!(line_col(s, 99), (3, 2));
    }

    #[test]
    fn display_is_file_line_col_message() {
        let d = Diagnostic::at("p.toml", "a\nb", 2, "bad".into());
        assert_eq!(d.to_string(), "p.toml:2:1: bad");
        let mut w = Diagnostic::whole("MIFSHIM_VIA", "empty".into());
        assert_eq!(w.to_string(), "MIFSHIM_VIA: empty");
        w.warning = true;
        assert_eq!(w.to_string(), "MIFSHIM_VIA: warning: empty");
    }
}
