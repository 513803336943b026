//! The engine's decoders of program-supplied socket arguments
//! (`shim/src/sys/linux/uapi.rs`, compiled here as it is): socket addresses, the
//! length rules, and the control-message walk and builder. No panic, no hang, and:
//! * the walk refuses exactly what a direct transcription of the kernel's
//!   `for_each_cmsghdr` + `CMSG_OK` refuses;
//! * a built control buffer fits, walks cleanly, and names our interface (or keeps
//!   the program's own choice, unchanged).
#![no_main]

#[allow(dead_code)]
#[path = "../../shim/src/sys/linux/uapi.rs"]
mod uapi;

use libfuzzer_sys::fuzz_target;
use uapi::{Built, CMSG_ROOM, CMSGHDR, ControlLen, Pktinfo};

/// The kernel's walk (include/linux/socket.h), transcribed with wide integers:
/// `true` when some header fails CMSG_OK.
fn kernel_refuses(ctl: &[u8]) -> bool {
    let size = ctl.len() as u128;
    if size < CMSGHDR as u128 {
        return false; // __CMSG_FIRSTHDR is NULL
    }
    let mut at: u128 = 0;
    loop {
        let i = at as usize;
        let len = u64::from_ne_bytes(ctl[i..i + 8].try_into().unwrap()) as u128;
        if !(len >= CMSGHDR as u128 && len <= size - at) {
            return true;
        }
        let next = at + ((len + 7) & !7);
        if next + CMSGHDR as u128 > size {
            return false;
        }
        at = next;
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    // Addresses: any bytes; a decoded address round-trips its port.
    if let Some(d) = uapi::decode_sockaddr(rest) {
        assert_eq!(d.addr.port(), u16::from_be_bytes([rest[2], rest[3]]));
    }
    let _ = uapi::decode_unspec_as_inet(rest);
    if rest.len() >= 8 {
        let w = u32::from_ne_bytes(rest[..4].try_into().unwrap());
        let z = usize::from_ne_bytes(rest[..8].try_into().unwrap());
        let _ = uapi::addr_len(w);
        if let Ok(n) = uapi::msg_name_len(sel & 1 == 1, w) {
            assert!(n <= uapi::SOCKADDR_MAX);
        }
        match uapi::control_len(z) {
            ControlLen::Copy(n) => assert!(uapi::cmsg_align(n) + uapi::cmsg_space(20) <= CMSG_ROOM),
            ControlLen::Refused(_) => assert!(z > i32::MAX as usize),
            ControlLen::TooBig => {}
        }
        let _ = uapi::sockopt_len(w, 272);
    }
    // Control messages: the program's bytes, capped as the engine caps them (the
    // longest it copies: 216, whose aligned end leaves room for an IPV6_PKTINFO).
    let cap = CMSG_ROOM - uapi::cmsg_space(20);
    assert_eq!(uapi::control_len(cap), ControlLen::Copy(cap));
    assert_eq!(uapi::control_len(cap + 1), ControlLen::TooBig);
    let app = &rest[..rest.len().min(cap)];
    let p = Pktinfo {
        ifindex: 0x0101_0101 | u32::from(sel),
        v6: sel & 2 == 2,
    };
    let scan = uapi::scan_control(app, p.v6);
    assert_eq!(scan.is_err(), kernel_refuses(app), "{app:02x?}");
    let mut out = [0u8; CMSG_ROOM];
    match uapi::build_control(app, p, &mut out) {
        Err(_) => assert!(scan.is_err()),
        Ok(Built::Chosen(n)) => {
            assert!(scan.unwrap().chosen);
            assert_eq!(&out[..n], app);
        }
        Ok(Built::Control(n)) => {
            let built = &out[..n];
            assert!(!kernel_refuses(built), "{built:02x?}");
            let again = uapi::scan_control(built, p.v6).unwrap();
            // Ours is there now, patched or added: the program did not choose, so the
            // only interface named is ours.
            assert!(again.chosen);
            assert!(
                built
                    .windows(4)
                    .any(|w| w == p.ifindex.to_ne_bytes()),
                "{built:02x?}"
            );
        }
    }
});
