//! The DNS message parser of the engine's resolver (`shim/src/dns/wire.rs`, compiled
//! here as it is): any reply bytes, for each question type, with the question name
//! taken from the input too. No panic; an answer's addresses are of the type asked.
#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../shim/src/dns/wire.rs"]
mod wire;

use libfuzzer_sys::fuzz_target;
use wire::{QType, Reply};

fuzz_target!(|data: &[u8]| {
    // First byte: question type and name length; then the name; the rest is the reply.
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let q = match sel % 3 {
        0 => QType::A,
        1 => QType::Aaaa,
        _ => QType::Ptr,
    };
    let nlen = ((sel / 3) as usize).min(rest.len());
    let (name, reply) = rest.split_at(nlen);
    let name = String::from_utf8_lossy(name);
    let id = u16::from_be_bytes([*reply.first().unwrap_or(&0), *reply.get(1).unwrap_or(&0)]);
    if let Some(Reply::Answer { addrs, .. }) = wire::parse_reply(reply, id, &name, q) {
        match q {
            QType::A => assert!(addrs.iter().all(|a| a.is_ipv4()), "{addrs:?}"),
            QType::Aaaa => assert!(addrs.iter().all(|a| a.is_ipv6()), "{addrs:?}"),
            QType::Ptr => {}
        }
    }
    // Queries for the same name build or refuse without panicking.
    let _ = wire::build_query(id, &name, q);
});
