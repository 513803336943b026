//! Everything that touches the C ABI: exported hooks, the real functions behind them,
//! raw socket options, netlink. One module per OS; the rest of the crate is safe Rust.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;

// macOS: compiled everywhere for its pure parts' tests; its calls into macOS only
// there (see its module comment).
pub(crate) mod macos;
