/work/main/preload/target/debug/deps/mifshim_fastpath-8a71d182cdde01b5.d: /work/main/fastpath/src/lib.rs

/work/main/preload/target/debug/deps/libmifshim_fastpath-8a71d182cdde01b5.rmeta: /work/main/fastpath/src/lib.rs

/work/main/fastpath/src/lib.rs:
