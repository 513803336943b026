#!/usr/bin/env bash
# Runs every cargo-fuzz target for a fixed time and fails on the first crash.
#
#   scripts/fuzz.sh [--seconds N] [TARGET...]
#
#   --seconds N   time per target (default 60)
#   TARGET        policy, dns_reply, control (default: all)
#
# Needs the nightly toolchain and cargo-fuzz (`rustup toolchain install nightly`,
# `cargo install cargo-fuzz`); says so and exits 3 when either is missing. Each target
# starts from its committed seed corpus (fuzz/corpus/TARGET) and writes what it finds
# to a scratch copy under target/fuzz-corpus/, so the committed corpus stays small; a
# crash leaves its input in fuzz/artifacts/TARGET/ and the script exits 1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=60
targets=()
while [[ $# -gt 0 ]]; do
    case $1 in
    --seconds)
        [[ $# -ge 2 && $2 =~ ^[0-9]+$ && $2 -ge 1 ]] || { echo "usage: $0 [--seconds N] [TARGET...]" >&2; exit 2; }
        seconds=$2
        shift
        ;;
    -h | --help)
        sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
        exit 0
        ;;
    *) targets+=("$1") ;;
    esac
    shift
done
((${#targets[@]})) || targets=(policy dns_reply control)

say() { printf '==> %s\n' "$*" >&2; }
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    say "NOT RUN: the nightly toolchain is missing (rustup toolchain install nightly)"
    exit 3
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    say "NOT RUN: cargo-fuzz is missing (cargo install cargo-fuzz)"
    exit 3
fi

scratch=${CARGO_TARGET_DIR:-$PWD/target}/fuzz-corpus
failed=0
for t in "${targets[@]}"; do
    [[ -d fuzz/corpus/$t ]] || { say "unknown target $t (no fuzz/corpus/$t)"; exit 2; }
    mkdir -p "$scratch/$t"
    say "fuzzing $t for ${seconds}s"
    # -max_total_time bounds the run; -timeout flags a single input taking over 5 s (a
    # hang) as a crash; -rss_limit_mb flags runaway memory.
    if ! cargo +nightly fuzz run --fuzz-dir fuzz "$t" "$scratch/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 \
        2> >(tee "$scratch/$t.log" >&2); then
        say "FAILED: $t (input in fuzz/artifacts/$t/, log in $scratch/$t.log)"
        failed=1
    fi
done
exit $failed
