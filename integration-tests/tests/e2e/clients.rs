use super::*;

both!(curl_via_wlan0, |fam| {
    let tb = Testbed::up();
    curl_via(&tb, fam, "wlan0", "wlan0");
});

both!(curl_via_wwan0, |fam| {
    let tb = Testbed::up();
    curl_via(&tb, fam, "wwan0", "wwan0");
});

both!(wget_via_wlan0, |fam| {
    let tb = Testbed::up();
    let a = strs(&["wget", "-q", "-O", "-", "-T", "5", "-t", "1", &fam.url(80)]);
    expect_via(&tb, tb.cmd(&mifrun_args("wlan0", &a)), "wlan0");
});

both!(python_urllib_via_wlan0, |fam| {
    let tb = Testbed::up();
    let code = "import sys, urllib.request; \
                print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode(), end='')";
    let a = strs(&["python3", "-c", code, &fam.url(80)]);
    expect_via(&tb, tb.cmd(&mifrun_args("wlan0", &a)), "wlan0");
});

both!(node_http_get_via_wlan0, |fam| {
    let tb = Testbed::up();
    let code = "const r = require('http').get(process.argv[1], res => res.pipe(process.stdout)); \
                r.setTimeout(5000, () => { console.error('timeout'); process.exit(1); }); \
                r.on('error', e => { console.error(e.message); process.exit(1); });";
    let a = strs(&["node", "-e", code, &fam.url(80)]);
    expect_via(&tb, tb.cmd(&mifrun_args("wlan0", &a)), "wlan0");
});

both!(nc_tcp_via_wlan0, |fam| {
    let tb = Testbed::up();
    let a = strs(&["nc", "-w", "3", fam.svc(), "9000"]);
    expect_via(&tb, tb.cmd(&mifrun_args("wlan0", &a)), "wlan0");
});
