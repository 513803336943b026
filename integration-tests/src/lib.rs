//! Harness for the mifshim end-to-end tests.
//!
//! - **Artifacts**: [`mifrun`], [`shim_lib`], [`probe`], [`testserver`] find the built files in
//!   `target/<profile>/` (from `CARGO_TARGET_DIR` or by walking up from the test executable).
//!   `cargo test` does not build `libmifshim.so` or `mifrun`: `scripts/test.sh` builds the
//!   workspace first, and the lookups panic with that hint when something is missing.
//! - **Testbed**: [`Testbed::up`] brings up a private copy of the topology defined by
//!   `scripts/testbed.sh` (the single source of truth) under a unique prefix; `Drop` tears
//!   it down. Commands run in the testbed's host namespace with a hermetic environment.
//! - **Sniffer**: [`Sniffer`] counts TCP/UDP packets on an upstream's veth with an AF_PACKET
//!   socket (no tcpdump), so a test can prove that *no* packet used the other uplinks.
//! - **Root**: everything here needs root (CAP_NET_ADMIN + CAP_SYS_ADMIN). Without it each
//!   test fails loudly via [`require_root`]; `scripts/test.sh` decides whether to run them.

//!
//! Modules: `topology` (addresses), `artifacts`, `runner`, `testbed`, `sniffer`,
//! `assertions`; everything is re-exported here.

mod artifacts;
mod assertions;
mod runner;
mod sniffer;
mod testbed;
mod topology;

pub use artifacts::*;
pub use assertions::*;
pub use runner::*;
pub use sniffer::*;
pub use testbed::*;
pub use topology::*;
