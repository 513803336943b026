use super::*;

const FIXTURE: &str = include_str!("scutil-dns.txt");

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn scutil_dns_is_read_into_both_sections() {
    let cfg = parse_scutil_dns(FIXTURE);
    assert_eq!(cfg.resolvers.len(), 5);
    assert_eq!(cfg.scoped.len(), 3);
    let wifi = &cfg.resolvers[0];
    assert_eq!(wifi.search, ["home.example"]);
    assert_eq!(wifi.if_index, Some(6));
    assert_eq!(wifi.if_name.as_deref(), Some("en0"));
    assert!(!wifi.scoped);
    // The link-local server's zone is the resolver's interface.
    assert_eq!(
        wifi.nameservers,
        [
            sa("192.168.1.1:53"),
            SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 53, 0, 6))
        ]
    );
    assert!(cfg.resolvers[2].is_mdns());
    assert!(cfg.resolvers[2].nameservers.is_empty());
    assert_eq!(cfg.resolvers[2].timeout, Some(5));
    assert_eq!(
        cfg.resolvers[4].nameservers,
        [sa("10.8.9.53:5353")],
        "port line"
    );
    assert!(cfg.scoped.iter().all(|r| r.scoped));
}

#[test]
fn each_interface_gets_its_own_servers() {
    let cfg = parse_scutil_dns(FIXTURE);
    let wifi = cfg.for_interface(6, Some("example.org")).unwrap();
    assert_eq!(wifi.servers[0], sa("192.168.1.1:53"));
    assert_eq!(wifi.search, ["home.example"]);
    assert_eq!(wifi.source, FROM_SCOPED);
    // The iPhone hotspot has a scoped resolver only (it is not the primary service).
    let hotspot = cfg.for_interface(14, Some("example.org")).unwrap();
    assert_eq!(hotspot.servers, [sa("172.20.10.1:53")]);
    assert!(hotspot.search.is_empty());
    // An interface without DNS of its own gets none, never another one's.
    assert_eq!(cfg.for_interface(7, Some("example.org")), None);
    assert_eq!(cfg.for_interface(1, None), None, "lo0");
}

#[test]
fn per_domain_resolvers_apply_to_their_names_on_their_interface() {
    let cfg = parse_scutil_dns(FIXTURE);
    let corp = cfg.for_interface(19, Some("wiki.corp.example")).unwrap();
    assert_eq!(corp.servers, [sa("10.8.0.53:53"), sa("10.8.0.54:53")]);
    assert_eq!(corp.source, FROM_SUPPLEMENTAL);
    // The longest matching domain wins.
    let lab = cfg.for_interface(19, Some("ci.lab.corp.example.")).unwrap();
    assert_eq!(lab.servers, [sa("10.8.9.53:5353")]);
    // Other names over the VPN: its scoped resolver.
    let other = cfg.for_interface(19, Some("example.org")).unwrap();
    assert_eq!(other.servers, [sa("10.8.0.53:53")]);
    assert_eq!(other.source, FROM_SCOPED);
    // The VPN's domain does not apply over Wi-Fi.
    assert_eq!(
        cfg.for_interface(6, Some("wiki.corp.example"))
            .unwrap()
            .source,
        FROM_SCOPED
    );
    // Without a name: the scoped resolver.
    assert_eq!(cfg.for_interface(19, None).unwrap().source, FROM_SCOPED);
}

#[test]
fn default_resolver_when_there_is_no_scoped_section() {
    let text = "DNS configuration\n\nresolver #1\n  nameserver[0] : 2001:db8::53\n  if_index : 6 (en0)\n  flags    : Request AAAA records\n";
    let cfg = parse_scutil_dns(text);
    let d = cfg.for_interface(6, Some("x.example")).unwrap();
    assert_eq!(d.servers, [sa("[2001:db8::53]:53")]);
    assert_eq!(d.source, FROM_DEFAULT);
    assert_eq!(parse_scutil_dns(""), DnsConfig::default());
    assert_eq!(
        parse_scutil_dns("No DNS configuration available\n"),
        DnsConfig::default()
    );
}

#[test]
fn names_in_domains() {
    assert!(name_in("a.corp.example", "corp.example"));
    assert!(name_in("CORP.example.", "corp.example"));
    assert!(!name_in("xcorp.example", "corp.example"));
    assert!(!name_in("example", "corp.example"));
}
