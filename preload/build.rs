//! Linker settings of `libmifshim.so`, which every process the preload reaches loads:
//! each is there for what the loader does with the object before `main` (see
//! BENCHMARKS.md, "Issue 16").
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    // No C start files (crti/crtn, crtbeginS/crtendS): nothing here needs them (no C++
    // constructors, no transactional memory, no profiling), and they cost four symbol
    // lookups in every process, three of them for weak symbols nobody defines
    // (`_ITM_deregisterTMCloneTable`, `_ITM_registerTMCloneTable`, `__gmon_start__`),
    // which the loader looks for in every object, plus `__cxa_finalize`, a second
    // `.init_array` entry and `_init`/`_fini`.
    println!("cargo:rustc-link-arg-cdylib=-nostartfiles");
    // The stub's own references to its exported hooks (`__connect` calls `connect`,
    // `__recvfrom_chk` calls `recvfrom`, …) bound at link time: no symbol lookup at load
    // time, and an alias is the same hook whatever another object defines.
    println!("cargo:rustc-link-arg-cdylib=-Wl,-Bsymbolic-functions");
    // Never unloaded: its fork handlers, the engine it loads and the pointers the engine
    // keeps into it must outlive everything (a preload is never unloaded anyway; this
    // makes it so for a `dlopen`ed copy too).
    println!("cargo:rustc-link-arg-cdylib=-Wl,-z,nodelete");
    println!("cargo:rerun-if-changed=build.rs");
}
