//! What the macOS build refuses in a policy, with the reason, rather than run a
//! program whose policy asks for something its engine would not do (the command
//! line's counterpart is `Cli::linux_only_option`). Pure and compiled everywhere, so
//! that Linux runs its tests; `macos::run` calls it after the policy is loaded.

use config_schema::Policy;

/// The first setting of `policy` only the Linux engine honours, with what it is and
/// why the macOS engine does not: `[dns] redirect`, whose "system's servers" are
/// `/etc/resolv.conf`'s on Linux, while macOS's come from configd (`dnsinfo`) and the
/// engine there (`sys/macos/dns.rs`) redirects nothing: a port-53 query to a system
/// server would be steered to the server the program named, not to the interface's.
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
pub fn linux_only_setting(policy: &Policy) -> Option<(&'static str, &'static str)> {
    // `[dns]` is global: the top level's is every profile's.
    if policy.base.dns.redirect {
        return Some((
            "[dns] redirect",
            "the macOS engine does not redirect port-53 traffic: the system's servers there are configd's, not /etc/resolv.conf's, and the mapping to an interface's servers is not written; queries would go, steered, to the server the program named",
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(src: &str) -> Policy {
        config_schema::parse_policy(src, "test.toml")
            .unwrap()
            .policy
    }

    #[test]
    fn a_policy_asking_for_dns_redirect_is_refused_on_macos_with_the_reason() {
        let p = policy("via = [\"en0\"]\n[dns]\nredirect = true\n");
        let (setting, why) = linux_only_setting(&p).unwrap();
        assert_eq!(setting, "[dns] redirect");
        assert!(why.contains("configd"), "{why}");
        // Without it, or with it off, nothing is refused.
        assert_eq!(linux_only_setting(&policy("via = [\"en0\"]\n")), None);
        let off = policy("via = [\"en0\"]\n[dns]\nredirect = false\nsteer = true\n");
        assert_eq!(linux_only_setting(&off), None);
        assert_eq!(linux_only_setting(&Policy::default()), None);
    }
}
