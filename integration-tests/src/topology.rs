//! The testbed's topology as the tests see it: uplinks and the addresses of `scripts/testbed.sh` (defined there and here only).

use std::time::Duration;

/// The uplinks of the testbed, in the order of their default-route metric.
pub const UPLINKS: [&str; 3] = ["eth0", "wlan0", "wwan0"];
/// The service address every upstream owns (IPv4).
pub const SVC4: &str = "203.0.113.10";
/// The service address every upstream owns (IPv6).
pub const SVC6: &str = "2001:db8:ff::10";
/// The DNS server address every upstream owns (IPv4); its dnsmasq answers for `mif.test`.
pub const DNS4: &str = "203.0.113.53";
/// The DNS server address every upstream owns (IPv6).
pub const DNS6: &str = "2001:db8:ff::53";
/// An address routed to a blackhole in every upstream: a DNS server that never answers.
pub const DNS_SILENT: &str = "203.0.113.99";
/// The same blackhole for IPv6.
pub const DNS_SILENT6: &str = "2001:db8:ff::99";
/// Where `scripts/testbed.sh` keeps its state (pids, logs), one directory per prefix.
pub const STATE_ROOT: &str = "/run/mifshim-testbed";
/// Default timeout of a command run by the harness.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(20);
/// PATH given to every command.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The host-side address of an uplink.
pub fn host_addr(uplink: &str, v6: bool) -> &'static str {
    match (uplink, v6) {
        ("eth0", false) => "198.51.100.2",
        ("wlan0", false) => "198.51.100.66",
        ("wwan0", false) => "198.51.100.130",
        ("eth0", true) => "2001:db8:10::2",
        ("wlan0", true) => "2001:db8:20::2",
        ("wwan0", true) => "2001:db8:30::2",
        _ => panic!("unknown uplink {uplink}"),
    }
}

/// The upstream's address on an uplink's link (its end `up`): the host's gateway there.
pub fn upstream_addr(uplink: &str, v6: bool) -> &'static str {
    match (uplink, v6) {
        ("eth0", false) => "198.51.100.1",
        ("wlan0", false) => "198.51.100.65",
        ("wwan0", false) => "198.51.100.129",
        ("eth0", true) => "2001:db8:10::1",
        ("wlan0", true) => "2001:db8:20::1",
        ("wwan0", true) => "2001:db8:30::1",
        _ => panic!("unknown uplink {uplink}"),
    }
}
