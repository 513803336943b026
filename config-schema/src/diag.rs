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
    /// An error at a byte offset of `src`, whose line starts `lines` indexes.
    pub(crate) fn at(
        origin: &str,
        src: &str,
        lines: &Lines,
        offset: usize,
        message: String,
    ) -> Self {
        let (line, col) = lines.line_col(src, offset);
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

/// Where the lines of a source text start, so that a position costs a binary search
/// and a scan of its own line only (finding each rule's line by scanning the text from
/// its start made validation quadratic in the size of the policy).
pub(crate) struct Lines {
    /// Byte offset of the start of every line; `starts[0] == 0`.
    starts: Vec<usize>,
}

impl Lines {
    pub(crate) fn new(src: &str) -> Lines {
        let mut starts = vec![0];
        starts.extend(
            src.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        Lines { starts }
    }

    /// 1-based line of byte `offset`, and the byte offset that line starts at.
    pub(crate) fn line_of(&self, offset: usize) -> (u32, usize) {
        let i = self.starts.partition_point(|&s| s <= offset).max(1) - 1;
        (i as u32 + 1, self.starts[i])
    }

    /// 1-based line and column (in characters) of byte `offset` in `src` (the text
    /// this index was built from).
    pub(crate) fn line_col(&self, src: &str, offset: usize) -> (u32, u32) {
        let mut cut = offset.min(src.len());
        while !src.is_char_boundary(cut) {
            cut -= 1;
        }
        let (line, start) = self.line_of(cut);
        let col = src[start..cut].chars().count() + 1;
        (line, col as u32)
    }
}

/// 1-based line and column (in characters) of byte `offset` in `src`.
#[cfg(test)]
pub(crate) fn line_col(src: &str, offset: usize) -> (u32, u32) {
    Lines::new(src).line_col(src, offset)
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
        let d = Diagnostic::at("p.toml", "a\nb", &Lines::new("a\nb"), 2, "bad".into());
        assert_eq!(d.to_string(), "p.toml:2:1: bad");
        let mut w = Diagnostic::whole("MIFSHIM_VIA", "empty".into());
        assert_eq!(w.to_string(), "MIFSHIM_VIA: empty");
        w.warning = true;
        assert_eq!(w.to_string(), "MIFSHIM_VIA: warning: empty");
    }
}
