//! `getaddrinfo_a` bookkeeping that needs no system: which `gai_suspend` result a list
//! of requests calls for, and what `gai_cancel` answers. The lookups themselves are
//! the engine's own `getaddrinfo`, run in the caller's thread (`GAI_WAIT`) or in
//! helper threads (`GAI_NOWAIT`), so they are steered like any other.

/// glibc's `EAI_*` codes for asynchronous requests (netdb.h, `__USE_GNU`).
pub(crate) const EAI_INPROGRESS: i32 = -100;
pub(crate) const EAI_NOTCANCELED: i32 = -102;
pub(crate) const EAI_ALLDONE: i32 = -103;
pub(crate) const EAI_INTR: i32 = -104;

/// Whether `getaddrinfo_a` and friends are the engine's (names are steered) or the C
/// library's.
pub(crate) fn steered() -> bool {
    match crate::state::mode() {
        crate::state::Mode::Inert => false,
        crate::state::Mode::Active(p) => p.dns.steer,
    }
}

/// What `gai_suspend` returns now for requests in these states (`None`: a NULL
/// entry), or `None` to wait: 0 when one has completed, `EAI_ALLDONE` when there is
/// no request at all.
pub(crate) fn suspend_now(states: &[Option<i32>]) -> Option<i32> {
    if states.iter().flatten().any(|s| *s != EAI_INPROGRESS) {
        return Some(0);
    }
    if states.iter().all(Option::is_none) {
        return Some(EAI_ALLDONE);
    }
    None
}

/// What `gai_cancel` answers for a request in state `s`: a running lookup is not
/// cancelled (as glibc answers for one its helper thread has started).
pub(crate) fn cancel(s: Option<i32>) -> i32 {
    match s {
        Some(EAI_INPROGRESS) => EAI_NOTCANCELED,
        _ => EAI_ALLDONE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suspend_and_cancel() {
        assert_eq!(suspend_now(&[]), Some(EAI_ALLDONE));
        assert_eq!(suspend_now(&[None, None]), Some(EAI_ALLDONE));
        assert_eq!(suspend_now(&[Some(EAI_INPROGRESS), None]), None);
        assert_eq!(suspend_now(&[Some(EAI_INPROGRESS), Some(0)]), Some(0));
        assert_eq!(suspend_now(&[Some(-2)]), Some(0));
        assert_eq!(cancel(Some(EAI_INPROGRESS)), EAI_NOTCANCELED);
        assert_eq!(cancel(Some(0)), EAI_ALLDONE);
        assert_eq!(cancel(None), EAI_ALLDONE);
    }
}
