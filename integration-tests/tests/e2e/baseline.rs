use super::*;

both!(
    /// Without the shim the eth0 default route (metric 100) wins: proves the testbed
    /// distinguishes links and the sniffers see the traffic.
    no_shim_answered_by_eth0, |fam| {
        let tb = Testbed::up();
        expect_via(&tb, tb.cmd(&curl(&fam.url(80))), "eth0");
    }
);

both!(
    /// `curl --interface wlan0` without the shim goes via wlan0.
    curl_interface_wlan0, |fam| {
        let tb = Testbed::up();
        let mut a = curl(&fam.url(80));
        a.splice(1..1, strs(&["--interface", "wlan0"]));
        expect_via(&tb, tb.cmd(&a), "wlan0");
    }
);

both!(
    /// Every upstream server answers on every port and both UDP ports (no shim).
    all_services_answer, |fam| {
        let tb = Testbed::up();
        for port in [80, 8080] {
            tb.run(&curl(&fam.url(port))).assert_answered_by("eth0");
        }
        tb.run(&strs(&["nc", "-w", "3", fam.svc(), "9000"])).assert_answered_by("eth0");
        for port in ["9000", "9001"] {
            tb.run(&probe_args(&["udp-sendto", fam.svc(), port])).assert_answered_by("eth0");
        }
    }
);
