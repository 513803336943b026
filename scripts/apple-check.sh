#!/usr/bin/env bash
# Type-checks and lints the macOS build: `cargo check` and `cargo clippy --all-targets
# -- -D warnings` for x86_64-apple-darwin and aarch64-apple-darwin, for every crate
# that builds there (config-schema, socket-core, fastpath, mifrun, the engine's
# macOS primitives). Nothing is linked or run: no macOS is needed, and none is used.
#
#   scripts/apple-check.sh
#
# Installs the two Rust targets when missing (`rustup target add`, from
# static.rust-lang.org). If they cannot be installed the check is NOT RUN, says so,
# and exits 3 (scripts/test.sh's and scripts/fuzz.sh's convention for a skip); 1 when
# a check or lint fails.
#
# Not checked for Apple targets: preload/ (the stub, whose macOS interposition table
# waits for issue 10's list of hooked calls), supervisor/ (seccomp) and
# integration-tests/ (network namespaces), which are Linux's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
say() { printf '==> %s\n' "$*" >&2; }
targets=(x86_64-apple-darwin aarch64-apple-darwin)
crates=(-p config-schema -p mifshim-socket-core -p mifshim-fastpath -p mifrun -p mifshim)
target_dir=${CARGO_TARGET_DIR:-$PWD/target}

installed=$(rustup target list --installed 2>/dev/null || true)
missing=()
for t in "${targets[@]}"; do
    grep -qx "$t" <<<"$installed" || missing+=("$t")
done
if ((${#missing[@]})); then
    say "installing the Rust targets ${missing[*]}"
    if ! rustup target add "${missing[@]}"; then
        say "NOT RUN: the macOS type-check and lint: cannot install ${missing[*]} (rustup target add failed)"
        exit 3
    fi
fi

failed=0
for t in "${targets[@]}"; do
    say "cargo check --target $t"
    cargo check --quiet --target "$t" --target-dir "$target_dir" "${crates[@]}" || { say "FAILED: cargo check --target $t"; failed=1; }
    say "cargo clippy --all-targets --target $t -- -D warnings"
    cargo clippy --quiet --all-targets --target "$t" --target-dir "$target_dir" "${crates[@]}" -- -D warnings \
        || { say "FAILED: cargo clippy --target $t"; failed=1; }
done
if ((failed)); then
    exit 1
fi
say "macOS type-check and lint passed for ${targets[*]} (type-checked only: nothing was linked or run)"
