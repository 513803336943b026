/work/main/preload/target/debug/deps/mifshim-9a3d17d2f37f662a.d: src/lib.rs Cargo.toml

/work/main/preload/target/debug/deps/libmifshim-9a3d17d2f37f662a.rmeta: src/lib.rs Cargo.toml

src/lib.rs:
Cargo.toml:

# env-dep:CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__
# env-dep:CLIPPY_CONF_DIR
