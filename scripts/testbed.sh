#!/usr/bin/env bash
# Network-namespace testbed for mifshim: the single source of truth for the topology.
#
#   scripts/testbed.sh up PREFIX [--server PATH]   build the testbed, start servers, wait
#   scripts/testbed.sh down PREFIX                 stop servers, delete namespaces (idempotent)
#   scripts/testbed.sh down-all                    remove every testbed with a state directory
#   scripts/testbed.sh exec PREFIX -- CMD...       run CMD in the host namespace
#   scripts/testbed.sh names PREFIX                print "ROLE NETNS IFACE" lines
#
# Topology (PREFIX is short, e.g. mift1234; namespace names stay <= 15 chars):
#
#   ${P}h  "host": uplinks eth0, wlan0, wwan0 (veth), default routes metric 100/600/700
#   ${P}e  upstream of eth0   peer "up" 198.51.100.1/26   2001:db8:10::1/64
#   ${P}w  upstream of wlan0  peer "up" 198.51.100.65/26  2001:db8:20::1/64
#   ${P}m  upstream of wwan0  peer "up" 198.51.100.129/26 2001:db8:30::1/64
#
# Every upstream owns the same service addresses 203.0.113.10/32 and 2001:db8:ff::10/128
# on its lo and runs `mif-testserver --name <uplink>`, so the answer names the uplink used.
# arp_ignore=1 upstream, so a device-bound socket without a route cannot get a false positive.
#
# DNS: every upstream also owns 203.0.113.53/32 and 2001:db8:ff::53/128 on lo, where a dnsmasq
# (log: STATEDIR/dnsmasq-<uplink>.log) serves the zone mif.test (unknown names: NXDOMAIN).
# N = 1 (eth0), 2 (wlan0), 3 (wwan0):
#   web.mif.test        A 203.0.113.10, AAAA 2001:db8:ff::10   (same everywhere)
#   who.mif.test        A 192.0.2.N, AAAA 2001:db8:ee::N        (names the server asked)
#   who.corp.mif.test   A 192.0.2.(10+N)
#   web.corp.mif.test   A 203.0.113.10
#   v4only.mif.test     A 192.0.2.N only
#   cname.mif.test      CNAME web.mif.test
#   big.mif.test        60 A records 198.18.0.1-60 (a UDP answer without EDNS is truncated)
#   PTR 203.0.113.10 and 2001:db8:ff::10 -> web-<uplink>.mif.test
# 203.0.113.99 and 2001:db8:ff::99 are blackholes upstream (a silent DNS server, an
# unanswered SYN: time-out, no ICMP error).
# The host namespace gets /etc/netns/${P}h/{resolv.conf,hosts} (nameserver 203.0.113.53,
# search mif.test; 198.51.100.200 fromhosts.mif.test), which `ip netns exec` bind-mounts.
set -euo pipefail

STATE_ROOT=${MIFTB_STATE_ROOT:-/run/mifshim-testbed} # overridable for tests of down-all
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
WAIT_STEPS=100 # x 0.05 s = 5 s per server
DNS4=203.0.113.53
DNS6=2001:db8:ff::53
BLACKHOLE4=203.0.113.99
BLACKHOLE6=2001:db8:ff::99
BIG_COUNT=60
# The reverse name of 2001:db8:ff::10.
PTR6=0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.f.f.0.0.8.b.d.0.1.0.0.2.ip6.arpa

# uplink  upstream-suffix  host-v4            upstream-v4     host-v6            upstream-v6       metric
LINKS=(
    "eth0  e 198.51.100.2/26   198.51.100.1   2001:db8:10::2/64 2001:db8:10::1 100"
    "wlan0 w 198.51.100.66/26  198.51.100.65  2001:db8:20::2/64 2001:db8:20::1 600"
    "wwan0 m 198.51.100.130/26 198.51.100.129 2001:db8:30::2/64 2001:db8:30::1 700"
)

die() {
    echo "testbed: $*" >&2
    exit 1
}

usage() {
    sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

check_prefix() {
    local p=$1
    [[ $p =~ ^mift[A-Za-z0-9]{1,9}$ ]] ||
        die "bad PREFIX '$p': must match mift[A-Za-z0-9]{1,9} (namespace names must stay <= 15 chars)"
}

require_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (needs CAP_NET_ADMIN/CAP_SYS_ADMIN for ip netns); uid is $(id -u)"
    command -v ip >/dev/null || die "iproute2 'ip' not found in PATH"
    # Probe that network namespaces work at all, with a throwaway name.
    local probe="mift$$x"
    probe=${probe:0:15}
    if ! ip netns add "$probe" 2>/dev/null; then
        die "cannot create network namespaces (ip netns add failed): netns unavailable here"
    fi
    ip netns del "$probe" 2>/dev/null || true
}

ns_exists() {
    [[ -e /run/netns/$1 ]]
}

nsx() {
    local ns=$1
    shift
    ip netns exec "$ns" "$@"
}

find_server() {
    local tdir=${CARGO_TARGET_DIR:-$REPO_ROOT/target}
    local c
    for c in "$tdir/debug/mif-testserver" "$tdir/release/mif-testserver"; do
        if [[ -x $c ]]; then
            echo "$c"
            return 0
        fi
    done
    return 1
}

# Stops servers and deletes the namespaces recorded for PREFIX. Idempotent.
do_down() {
    local p=$1
    local dir=$STATE_ROOT/$p
    [[ -d $dir ]] || return 0
    local f pid
    for f in "$dir"/*.pid; do
        [[ -e $f ]] || continue
        pid=$(cat "$f" 2>/dev/null || true)
        if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; fi
    done
    local ns
    if [[ -f $dir/namespaces ]]; then
        while read -r ns; do
            [[ -n $ns ]] || continue
            if ns_exists "$ns"; then
                # Anything still running inside a namespace we created is ours.
                local pids
                pids=$(ip netns pids "$ns" 2>/dev/null || true)
                if [[ -n $pids ]]; then
                    # shellcheck disable=SC2086
                    kill -9 $pids 2>/dev/null || true
                fi
                ip netns del "$ns" 2>/dev/null || true
            fi
        done <"$dir/namespaces"
    fi
    rm -rf "/etc/netns/${p}h"
    rm -rf "$dir"
}

# EXIT trap of `up`: a failed or interrupted `up` removes what it built.
on_up_exit() {
    local rc=$?
    if [[ $rc -ne 0 ]]; then do_down "$TB_PREFIX"; fi
}

do_up() {
    local p=$1
    shift
    local server=""
    while [[ $# -gt 0 ]]; do
        case $1 in
        --server)
            [[ $# -ge 2 ]] || die "--server needs a PATH"
            server=$2
            shift 2
            ;;
        *) die "unknown argument to up: $1" ;;
        esac
    done
    require_root
    if [[ -z $server ]]; then
        server=$(find_server) ||
            die "mif-testserver not found under ${CARGO_TARGET_DIR:-$REPO_ROOT/target}/{debug,release}; run 'cargo build -p integration-tests' or pass --server PATH"
    fi
    [[ -x $server ]] || die "server '$server' is not executable"

    local dir=$STATE_ROOT/$p
    [[ ! -e $dir ]] || die "testbed $p already exists ($dir); run '$0 down $p' first"
    local all=("${p}h" "${p}e" "${p}w" "${p}m")
    local ns
    for ns in "${all[@]}"; do
        ! ns_exists "$ns" || die "namespace $ns already exists and was not created by this testbed"
    done
    mkdir -p "$dir"
    # From here on, a failure tears down what we built.
    TB_PREFIX=$p
    trap on_up_exit EXIT
    trap 'exit 130' INT TERM

    for ns in "${all[@]}"; do
        ip netns add "$ns"
        echo "$ns" >>"$dir/namespaces"
        nsx "$ns" ip link set dev lo up
        nsx "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
            net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
            net.ipv6.conf.all.router_solicitations=0 net.ipv6.conf.default.router_solicitations=0
    done
    local host=${p}h
    local line ifname suf h4 u4 h6 u6 metric up
    for line in "${LINKS[@]}"; do
        read -r ifname suf h4 u4 h6 u6 metric <<<"$line"
        up=${p}${suf}
        ip link add "$ifname" netns "$host" type veth peer name up netns "$up"
        nsx "$host" sysctl -qw "net.ipv6.conf.$ifname.accept_dad=0" "net.ipv6.conf.$ifname.accept_ra=0"
        nsx "$up" sysctl -qw net.ipv6.conf.up.accept_dad=0 net.ipv6.conf.up.accept_ra=0 \
            net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.up.arp_ignore=1
        nsx "$host" ip addr add "$h4" dev "$ifname"
        nsx "$host" ip -6 addr add "$h6" dev "$ifname" nodad
        nsx "$host" ip link set dev "$ifname" up
        nsx "$up" ip addr add "${u4}/26" dev up
        nsx "$up" ip -6 addr add "${u6}/64" dev up nodad
        nsx "$up" ip addr add 203.0.113.10/32 dev lo
        nsx "$up" ip -6 addr add 2001:db8:ff::10/128 dev lo nodad
        nsx "$up" ip link set dev up up
        nsx "$host" ip route add default via "$u4" dev "$ifname" metric "$metric"
        nsx "$host" ip -6 route add default via "$u6" dev "$ifname" metric "$metric"
        nsx "$up" ip addr add "$DNS4/32" dev lo
        nsx "$up" ip -6 addr add "$DNS6/128" dev lo nodad
        nsx "$up" ip route add blackhole "$BLACKHOLE4/32"
        nsx "$up" ip -6 route add blackhole "$BLACKHOLE6/128"
    done
    write_host_resolver "$p" "$dir"
    local n=0 big=$dir/big.hosts i
    for ((i = 1; i <= BIG_COUNT; i++)); do echo "198.18.0.$i big.mif.test"; done >"$big"
    # MIFTB_NO_DNS=1: no DNS servers (inside an unprivileged user namespace dnsmasq
    # cannot start: it calls setgroups(), which such a namespace denies).
    local dns=1
    [[ ${MIFTB_NO_DNS:-0} == 1 ]] && dns=0
    for line in "${LINKS[@]}"; do
        read -r ifname suf _ <<<"$line"
        up=${p}${suf}
        n=$((n + 1))
        [[ $dns == 1 ]] && start_dnsmasq "$up" "$ifname" "$n" "$dir" "$big"
    done
    for line in "${LINKS[@]}"; do
        read -r ifname suf _ <<<"$line"
        up=${p}${suf}
        # setsid: the server must not share our process group or terminal; it exits by itself
        # after its lifetime even if nobody runs `down`.
        setsid ip netns exec "$up" "$server" --name "$ifname" --lifetime "${MIFTB_LIFETIME:-900}" \
            </dev/null >"$dir/$ifname.log" 2>&1 &
        echo $! >"$dir/$ifname.pid"
    done
    # Wait (bounded) until every server accepts. The server binds UDP and TCP 80/8080
    # before TCP 9000, so 9000 accepting means all sockets are in place.
    for line in "${LINKS[@]}"; do
        read -r ifname suf _ <<<"$line"
        up=${p}${suf}
        local i ok=0
        for ((i = 0; i < WAIT_STEPS; i++)); do
            if nsx "$up" bash -c 'exec 3<>/dev/tcp/127.0.0.1/9000' 2>/dev/null; then
                ok=1
                break
            fi
            kill -0 "$(cat "$dir/$ifname.pid")" 2>/dev/null ||
                die "server for $ifname exited early: $(tail -n 5 "$dir/$ifname.log" 2>/dev/null)"
            sleep 0.05
        done
        [[ $ok -eq 1 ]] || die "server for $ifname did not accept on 127.0.0.1:9000 within 5 s"
    done
    # Wait (bounded) until every dnsmasq answers on both addresses.
    for line in "${LINKS[@]}"; do
        [[ $dns == 1 ]] || break
        read -r ifname suf _ <<<"$line"
        up=${p}${suf}
        local i ok=0 a srv
        for srv in "$DNS4" "$DNS6"; do
            ok=0
            for ((i = 0; i < WAIT_STEPS; i++)); do
                a=$(nsx "$up" dig +short +time=1 +tries=1 "@$srv" web.mif.test A 2>/dev/null || true)
                if [[ $a == 203.0.113.10 ]]; then
                    ok=1
                    break
                fi
                kill -0 "$(cat "$dir/dnsmasq-$ifname.pid")" 2>/dev/null ||
                    die "dnsmasq for $ifname exited early: $(tail -n 5 "$dir/dnsmasq-$ifname.out" 2>/dev/null)"
                sleep 0.05
            done
            [[ $ok -eq 1 ]] || die "dnsmasq for $ifname did not answer on $srv within the bound"
        done
    done
    trap - EXIT INT TERM
}

# /etc/netns/${P}h/{resolv.conf,hosts}: `ip netns exec ${P}h` bind-mounts them over /etc.
write_host_resolver() {
    local p=$1 dir=$2
    local d=/etc/netns/${p}h
    mkdir -p "$d"
    printf 'nameserver %s\nsearch mif.test\n' "$DNS4" >"$d/resolv.conf"
    printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n198.51.100.200\tfromhosts.mif.test\n' \
        >"$d/hosts"
    echo "$d" >"$dir/etc-netns"
}

# dnsmasq in upstream namespace UP for uplink IFNAME (record number N), in the background.
start_dnsmasq() {
    local up=$1 ifname=$2 n=$3 dir=$4 big=$5
    setsid ip netns exec "$up" /usr/sbin/dnsmasq --keep-in-foreground --user=root \
        --conf-file=/dev/null --pid-file="$dir/dnsmasq-$ifname.pidfile" \
        --no-resolv --no-hosts --bind-interfaces \
        --listen-address="$DNS4" --listen-address="$DNS6" \
        --local=/mif.test/ --log-queries --log-facility="$dir/dnsmasq-$ifname.log" \
        --host-record=web.mif.test,203.0.113.10,2001:db8:ff::10 \
        --host-record="who.mif.test,192.0.2.$n,2001:db8:ee::$n" \
        --host-record="who.corp.mif.test,192.0.2.$((10 + n))" \
        --host-record=web.corp.mif.test,203.0.113.10 \
        --host-record="v4only.mif.test,192.0.2.$n" \
        --cname=cname.mif.test,web.mif.test \
        --addn-hosts="$big" \
        --ptr-record="10.113.0.203.in-addr.arpa,web-$ifname.mif.test" \
        --ptr-record="$PTR6,web-$ifname.mif.test" \
        </dev/null >"$dir/dnsmasq-$ifname.out" 2>&1 &
    echo $! >"$dir/dnsmasq-$ifname.pid"
}

# Removes only the testbeds this script created (those with a state directory); other
# namespaces named mift* are left alone.
do_down_all() {
    require_root
    local d p
    for d in "$STATE_ROOT"/mift*; do
        [[ -d $d ]] || continue
        p=$(basename "$d")
        do_down "$p"
    done
}

[[ $# -ge 1 ]] || usage
cmd=$1
shift
case $cmd in
up)
    [[ $# -ge 1 ]] || usage
    check_prefix "$1"
    do_up "$@"
    ;;
down)
    [[ $# -eq 1 ]] || usage
    check_prefix "$1"
    [[ $(id -u) -eq 0 ]] || die "must run as root"
    do_down "$1"
    ;;
down-all)
    [[ $# -eq 0 ]] || usage
    do_down_all
    ;;
exec)
    [[ $# -ge 3 && $2 == -- ]] || usage
    check_prefix "$1"
    p=$1
    shift 2
    ns_exists "${p}h" || die "testbed $p is not up (no namespace ${p}h)"
    exec ip netns exec "${p}h" "$@"
    ;;
names)
    [[ $# -eq 1 ]] || usage
    check_prefix "$1"
    echo "host ${1}h -"
    for line in "${LINKS[@]}"; do
        read -r ifname suf _ <<<"$line"
        echo "$ifname ${1}${suf} up"
    done
    ;;
*) usage ;;
esac
