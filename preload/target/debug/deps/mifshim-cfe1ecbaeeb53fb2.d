/work/wt/listen/preload/target/debug/deps/mifshim-cfe1ecbaeeb53fb2.d: src/lib.rs Cargo.toml

/work/wt/listen/preload/target/debug/deps/libmifshim-cfe1ecbaeeb53fb2.rmeta: src/lib.rs Cargo.toml

src/lib.rs:
Cargo.toml:

# env-dep:CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__
# env-dep:CLIPPY_CONF_DIR
