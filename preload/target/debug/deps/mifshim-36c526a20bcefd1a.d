/work/wt/dns/preload/target/debug/deps/mifshim-36c526a20bcefd1a.d: src/lib.rs Cargo.toml

/work/wt/dns/preload/target/debug/deps/libmifshim-36c526a20bcefd1a.rmeta: src/lib.rs Cargo.toml

src/lib.rs:
Cargo.toml:

# env-dep:CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__
# env-dep:CLIPPY_CONF_DIR
