/work/wt/listen/preload/target/debug/deps/mifshim_fastpath-56f97a1e07df2949.d: /work/wt/listen/fastpath/src/lib.rs

/work/wt/listen/preload/target/debug/deps/libmifshim_fastpath-56f97a1e07df2949.rmeta: /work/wt/listen/fastpath/src/lib.rs

/work/wt/listen/fastpath/src/lib.rs:
