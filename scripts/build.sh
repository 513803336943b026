#!/usr/bin/env bash
# Builds everything a run needs: the workspace (libmifshim_engine.so, mifrun, the test
# programs) and the preloaded stub libmifshim.so (preload/, a std-free workspace of its
# own), into the same target directory, so that libmifshim.so finds its engine beside
# it.
#
#   scripts/build.sh [--release] [extra cargo build arguments for the workspace]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
target=${CARGO_TARGET_DIR:-$PWD/target}
args=()
if [[ ${1:-} == "--release" ]]; then
    args+=(--release)
    shift
fi
cargo build --workspace "${args[@]}" "$@"
# The stub takes the profile and --locked/--quiet, not the workspace's other options.
for a in "$@"; do
    case $a in
    --locked | --quiet | -q) args+=("$a") ;;
    esac
done
cargo build --manifest-path preload/Cargo.toml --target-dir "$target" "${args[@]}"
