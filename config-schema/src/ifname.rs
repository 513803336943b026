//! Interface names as a small `Copy` value, so that decisions never allocate.

use std::fmt;

/// Longest interface name Linux accepts (`IFNAMSIZ` - 1).
pub const MAX_LEN: usize = 15;

/// A validated network interface name (1–15 bytes, none of `/`, `:` or white space,
/// not `.` or `..`: the rules of the kernel's `dev_valid_name`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IfName {
    len: u8,
    bytes: [u8; 16],
}

impl IfName {
    /// Validates `name`; the error says what is wrong with it.
    pub fn new(name: &str) -> Result<Self, String> {
        if name.is_empty() {
            return Err("interface name is empty".into());
        }
        if name.len() > MAX_LEN {
            return Err(format!(
                "interface name `{name}` is {} bytes long; Linux allows at most {MAX_LEN}",
                name.len()
            ));
        }
        if name == "." || name == ".." {
            return Err(format!("`{name}` is not a valid interface name"));
        }
        if let Some(c) = name
            .chars()
            .find(|c| *c == '/' || *c == ':' || c.is_whitespace())
        {
            return Err(format!(
                "interface name `{name}` contains {c:?}, which interface names cannot contain"
            ));
        }
        let mut bytes = [0u8; 16];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        Ok(IfName {
            len: name.len() as u8,
            bytes,
        })
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        // The bytes came from a `&str` in `new`, so they are valid UTF-8.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }

    /// The name's bytes (no terminator).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The name as a NUL-terminated byte array, ready for `SO_BINDTODEVICE`.
    pub fn as_c_bytes(&self) -> &[u8; 16] {
        &self.bytes
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IfName({})", self.as_str())
    }
}

impl std::str::FromStr for IfName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        IfName::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for n in [
            "wlan0",
            "eth0",
            "wwan0",
            "tun0",
            "enp0s31f6",
            "a",
            "x23456789012345",
        ] {
            assert_eq!(IfName::new(n).unwrap().as_str(), n);
        }
        let n = IfName::new("wlan0").unwrap();
        assert_eq!(&n.as_c_bytes()[..6], b"wlan0\0");
    }

    #[test]
    fn rejects_what_the_kernel_rejects() {
        for (n, why) in [
            ("", "empty"),
            ("x234567890123456", "at most 15"),
            (".", "not a valid"),
            ("..", "not a valid"),
            ("a/b", "'/'"),
            ("eth0:1", "':'"),
            ("wl an", "' '"),
        ] {
            let e = IfName::new(n).unwrap_err();
            assert!(e.contains(why), "{n:?}: {e}");
        }
    }
}
