//! The `[dns] redirect` answer on macOS, which `crate::dns` there (`dns_macos.rs`)
//! forwards: Linux's resolver module is not built (it reads `/etc/resolv.conf` and
//! sends from its own sockets); macOS's names go to mDNSResponder with the interface's
//! index (`ffi/names.rs`). Pure, compiled everywhere.

use std::net::SocketAddr;

use config_schema::Profile;

/// `[dns] redirect` (a port-53 datagram or connection the program makes to one of the
/// system's servers goes to the chosen interface's own server instead): **not written
/// for macOS** — the system's servers there are configd's (`dnsinfo`, `dnsconf`), not
/// `resolv.conf`'s, and nothing maps them to an interface's yet — so nothing is
/// redirected: such a query is decided and steered like any other destination
/// (through the chosen interface to the server the program named, or refused), never
/// sent by another link. What the policy asks, a redirect, does not happen: `mifrun`
/// refuses `redirect = true` on macOS (`mifrun/src/platform.rs`), and the engine's
/// `dns_macos::redirect_target` warns when it is set.
pub(crate) fn redirect_target(
    _profile: &Profile,
    _dest: SocketAddr,
    _v6_socket: bool,
) -> Option<SocketAddr> {
    None
}
