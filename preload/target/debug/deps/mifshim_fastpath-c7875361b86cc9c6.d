/work/wt/dns/preload/target/debug/deps/mifshim_fastpath-c7875361b86cc9c6.d: /work/wt/dns/fastpath/src/lib.rs

/work/wt/dns/preload/target/debug/deps/libmifshim_fastpath-c7875361b86cc9c6.rmeta: /work/wt/dns/fastpath/src/lib.rs

/work/wt/dns/fastpath/src/lib.rs:
