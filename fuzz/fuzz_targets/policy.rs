//! The policy parser (`config_schema::parse_policy`, what `mifrun --check`, `mifrun`
//! and the engine run on a policy file) and the other strings it reads from the
//! environment (`MIFSHIM_VIA`, `MIFSHIM_DNS`). Any input: no panic, no hang; a
//! policy that parses is described without panicking either.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(loaded) = config_schema::parse_policy(src, "fuzz.toml") {
        let _ = format!("{loaded:?}");
    }
    let _ = config_schema::parse_via_list(src, "MIFSHIM_VIA");
    for part in src.split(',') {
        let _ = config_schema::parse_server(part);
    }
});
