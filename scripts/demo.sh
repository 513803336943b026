#!/usr/bin/env bash
# The README's "main job", on a machine without a second link: build, bring up a namespace
# testbed (scripts/testbed.sh), and show the same curl answered by a different uplink
# without the shim, with `mifrun --via wlan0` and with `mifrun --via wwan0`, for IPv4 and
# IPv6. Needs root (network namespaces). Tears the testbed down on exit.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug
TESTBED=$SCRIPT_DIR/testbed.sh
PREFIX=${DEMO_PREFIX:-mift$$d}
PREFIX=${PREFIX:0:13}

if [[ $(id -u) -ne 0 ]]; then
    echo "demo: must run as root (it creates network namespaces)" >&2
    exit 1
fi

echo "== building (scripts/build.sh)"
"$REPO_ROOT/scripts/build.sh" --quiet
for f in mifrun libmifshim.so mif-testserver; do
    [[ -e $TARGET/$f ]] || {
        echo "demo: $TARGET/$f missing after the build" >&2
        exit 1
    }
done

cleanup() { "$TESTBED" down "$PREFIX" || true; }
trap cleanup EXIT INT TERM

echo "== bringing up testbed $PREFIX (eth0 metric 100, wlan0 600, wwan0 700)"
"$TESTBED" up "$PREFIX" --server "$TARGET/mif-testserver"

HOSTNS=${PREFIX}h
# Run in the testbed's host namespace with a clean environment; the shim is only ever
# preloaded into the program, never into `ip` itself.
inhost() {
    ip netns exec "$HOSTNS" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"
}

# shown PICK LABEL CMD...: runs CMD in the host namespace and prints LABEL and the part
# of CMD's output that PICK (a function reading it on stdin) keeps.
shown() {
    local pick=$1 label=$2
    shift 2
    printf '%-44s ' "$label"
    local out
    if out=$(inhost "$@" 2>&1); then
        "$pick" <<<"$out"
    else
        echo "FAILED: $(echo "$out" | tail -n 1)"
    fi
}

# The first upstream=... line (which upstream answered).
pick_upstream() {
    local out
    out=$(cat)
    echo "$out" | tr -d '\r' | grep -m1 'upstream=' || echo "(no answer) $out"
}

show() { shown pick_upstream "$@"; }

for url in "http://203.0.113.10/" "http://[2001:db8:ff::10]/"; do
    echo
    echo "== curl $url"
    show "without the shim:" curl -sS --max-time 5 "$url"
    show "mifrun --via wlan0:" "$TARGET/mifrun" --via wlan0 -- curl -sS --max-time 5 "$url"
    show "mifrun --via wwan0:" "$TARGET/mifrun" --via wwan0 -- curl -sS --max-time 5 "$url"
done

# Names follow the link too: every upstream runs a DNS server on the same address that
# answers who.mif.test with an address naming itself (192.0.2.1 eth0, .2 wlan0, .3 wwan0).
# The first address getent printed.
pick_address() { awk 'NR == 1 { print $1 }'; }

showdns() { shown pick_address "$@"; }
echo
echo "== getent ahostsv4 who.mif.test (which link's DNS server answered)"
showdns "without the shim:" getent ahostsv4 who.mif.test
showdns "mifrun --via wlan0:" "$TARGET/mifrun" --via wlan0 -- getent ahostsv4 who.mif.test
showdns "mifrun --via wwan0:" "$TARGET/mifrun" --via wwan0 -- getent ahostsv4 who.mif.test
echo
echo "== curl http://web.mif.test/ (resolved and connected over the chosen link)"
show "mifrun --via wlan0:" "$TARGET/mifrun" --via wlan0 -- curl -sS --max-time 5 http://web.mif.test/
show "mifrun --via wwan0:" "$TARGET/mifrun" --via wwan0 -- curl -sS --max-time 5 http://web.mif.test/
echo
echo "== done; tearing down $PREFIX"
