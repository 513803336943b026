#!/usr/bin/env bash
# A/B of the shim between an older revision and this tree, on this host: the per-socket
# and per-datagram costs of both builds, measured in the same rounds.
#
#   scripts/bench-ab.sh [--rounds N] [--no-build] REV
#
#   REV          the revision to compare against (e.g. 615319e, the reference run's tree)
#   --rounds N   rounds; each runs every variant once, in turn (default 21)
#   --no-build   use the builds already made (this tree's target/release and REV's
#                target/bench/ab-REV); cargo is not run
#
# BENCHMARKS.md's reference numbers were taken on another host, where a system call and
# the kernel's own floor cost something else: a ratio against them mixes the host with
# the code. This script builds REV's release stub and engine in a worktree
# (target/bench/ab-REV), this tree's with scripts/build.sh --release, brings up the
# namespace testbed and, pinned to one CPU, runs scripts/bench's UDP socket+connect+close
# and unconnected sendto generators without a preload, as the design floor (the
# generator makes the shim's system calls itself), with REV's shim and with this tree's,
# alternated round by round. It prints the median of each (each sample the fastest of the
# generator's 20 slices, as scripts/bench.sh does), `with/floor` for both shims and
# this/REV. Needs root (network namespaces).
set -euo pipefail
export LC_ALL=C

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO_ROOT/target}
BIN=$TARGET_DIR/bench/bin
TESTBED=$SCRIPT_DIR/testbed.sh
VIA=wlan0
DEST4=203.0.113.10
SINK_PORT=9
N_UDP=30000
N_SENDTO=200000
ROUNDS=21
BUILD=1
CPU_PIN=$(($(nproc) - 1))

usage() {
    sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
REV=""
while [[ $# -gt 0 ]]; do
    case $1 in
    --rounds)
        [[ $# -ge 2 && $2 =~ ^[0-9]+$ && $2 -ge 1 && $2 -le 199 ]] || usage
        ROUNDS=$2
        shift
        ;;
    --no-build) BUILD=0 ;;
    -h | --help) usage ;;
    -*) usage ;;
    *)
        [[ -z $REV ]] || usage
        REV=$1
        ;;
    esac
    shift
done
[[ -n $REV ]] || usage
log() { echo "bench-ab: $*" >&2; }
die() {
    log "$*"
    exit 1
}
[[ $(id -u) -eq 0 ]] || die "must run as root (network namespaces)"
SHORT=$(git -C "$REPO_ROOT" rev-parse --short "$REV^{commit}") || die "no such revision: $REV"
OLD_DIR=$TARGET_DIR/bench/ab-$SHORT
OLD_SHIM=$OLD_DIR/target/release/libmifshim.so
NEW_SHIM=$TARGET_DIR/release/libmifshim.so

if [[ $BUILD -eq 1 ]]; then
    log "this tree: scripts/build.sh --release"
    "$REPO_ROOT/scripts/build.sh" --release
    if [[ ! -d $OLD_DIR ]]; then
        git -C "$REPO_ROOT" worktree add --detach "$OLD_DIR" "$SHORT" >/dev/null
    fi
    log "$SHORT: scripts/build.sh --release (in $OLD_DIR)"
    (cd "$OLD_DIR" && CARGO_TARGET_DIR=$OLD_DIR/target scripts/build.sh --release)
    cargo build --release --manifest-path "$REPO_ROOT/Cargo.toml" -p integration-tests --bin mif-testserver
fi
[[ -f $NEW_SHIM ]] || die "$NEW_SHIM not found (build it, or drop --no-build)"
[[ -f $OLD_SHIM ]] || die "$OLD_SHIM not found (drop --no-build)"
SERVER=$TARGET_DIR/release/mif-testserver
[[ -x $SERVER ]] || die "$SERVER not found (drop --no-build)"
mkdir -p "$BIN"
for g in udp_connect sendto_loop; do
    gcc -O2 -Wall -Wextra -o "$BIN/$g" "$SCRIPT_DIR/bench/$g.c"
done

PREFIX="miftab$(($$ % 10000))"
NS=${PREFIX}h
WORK=$(mktemp -d /tmp/mifbenchab.XXXXXX)
cleanup() {
    local rc=$?
    "$TESTBED" down "$PREFIX" >/dev/null 2>&1 || true
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log "testbed up $PREFIX"
MIFTB_LIFETIME=1800 "$TESTBED" up "$PREFIX" --server "$SERVER" >/dev/null

# sample FILE PRELOAD GEN ARGS... : one run, its fastest slice appended to FILE.
sample() {
    local file=$1 pre=$2 gen=$3
    shift 3
    timeout 300 ip netns exec "$NS" env MIFSHIM_VIA="$VIA" MIFSHIM_LOG=off LD_PRELOAD="$pre" \
        taskset -c "$CPU_PIN" "$BIN/$gen" "$@" |
        awk -F= '$1 == "min_ns_per_op" { print $2; found = 1 } END { exit !found }' >>"$file" ||
        die "$gen ($pre) failed"
}
log "$ROUNDS rounds, pinned to CPU $CPU_PIN"
for ((i = 1; i <= ROUNDS; i++)); do
    sample "$WORK/udp.none" "" udp_connect "$N_UDP" "$DEST4" "$SINK_PORT"
    sample "$WORK/udp.floor" "" udp_connect "$N_UDP" "$DEST4" "$SINK_PORT" "$VIA"
    sample "$WORK/udp.old" "$OLD_SHIM" udp_connect "$N_UDP" "$DEST4" "$SINK_PORT"
    sample "$WORK/udp.new" "$NEW_SHIM" udp_connect "$N_UDP" "$DEST4" "$SINK_PORT"
    sample "$WORK/send.none" "" sendto_loop "$N_SENDTO" "$DEST4" "$SINK_PORT"
    sample "$WORK/send.floor" "" sendto_loop "$N_SENDTO" "$DEST4" "$SINK_PORT" "$VIA" unicast-if
    sample "$WORK/send.old" "$OLD_SHIM" sendto_loop "$N_SENDTO" "$DEST4" "$SINK_PORT"
    sample "$WORK/send.new" "$NEW_SHIM" sendto_loop "$N_SENDTO" "$DEST4" "$SINK_PORT"
done

med() { sort -n "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# spread FILE : median absolute deviation over the median, in per cent
spread() {
    local m
    m=$(med "$1")
    awk -v m="$m" '{ d = $1 - m; print (d < 0) ? -d : d }' "$1" | sort -n |
        awk -v m="$m" '{ v[NR] = $1 } END { printf "%.1f", 100 * v[int((NR + 1) / 2)] / m }'
}
r() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3fx", a / b }'; }
now=$(git -C "$REPO_ROOT" rev-parse --short HEAD)
[[ -z $(git -C "$REPO_ROOT" status --porcelain --untracked-files=no) ]] || now="$now+dirty"
echo "mifshim A/B: $SHORT (old) against $now (new), $ROUNDS rounds, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: $(uname -r), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-26s %9s %9s %9s %9s %10s %10s %9s %7s\n' workload without floor old new old/floor new/floor new/old noise
for w in udp send; do
    label="UDP socket+connect+close"
    [[ $w == send ]] && label="sendto, unconnected UDP"
    n=$(med "$WORK/$w.none") f=$(med "$WORK/$w.floor") o=$(med "$WORK/$w.old") c=$(med "$WORK/$w.new")
    printf '%-26s %9s %9s %9s %9s %10s %10s %9s %6s%%\n' "$label" "$n" "$f" "$o" "$c" \
        "$(r "$o" "$f")" "$(r "$c" "$f")" "$(r "$c" "$o")" "$(spread "$WORK/$w.none")"
done
