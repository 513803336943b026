#!/usr/bin/env bash
# Type-checks and lints the macOS build: `cargo check` and `cargo clippy --all-targets
# -- -D warnings` for x86_64-apple-darwin and aarch64-apple-darwin, for every crate
# that builds there (config-schema, socket-core, fastpath, mifshim-abi, mifrun, the
# engine's macOS primitives and, over them, its socket core `ops`/`redirect`), and `cargo check` + `cargo clippy -- -D warnings` for the
# stub (preload/, a workspace of its own; no test targets: it is std-free). Then the
# stub is compiled to Mach-O object code for both targets (`--crate-type staticlib`:
# compiled and assembled, not linked) and its object is read back (`llvm-readobj`):
# the `__DATA,__interpose` section must hold one {replacement, replacee} tuple for
# every hooked call the list in abi/src/lib.rs keeps on macOS (plus `sigaction`,
# `signal`, `longjmp`, `_longjmp`, `siglongjmp`, `posix_spawn`, `posix_spawnp`,
# `vfork` and the eight `$NOCANCEL` twins), each replacee the C library's symbol and each replacement the stub's own,
# and the initialiser must sit in a `__mod_init_func` section of that type. Nothing is
# linked or run: no macOS is needed, and none is used.
#
#   scripts/apple-check.sh
#
# Installs the two Rust targets (and, without an `llvm-readobj` on PATH, rustup's
# llvm-tools) when missing (`rustup target add`, `rustup component add`, from
# static.rust-lang.org). If they cannot be installed the check is NOT RUN, says so,
# and exits 3 (scripts/test.sh's and scripts/fuzz.sh's convention for a skip); 1 when
# a check or lint fails.
#
# Not checked for Apple targets: supervisor/ (seccomp) and integration-tests/
# (network namespaces), which are Linux's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
say() { printf '==> %s\n' "$*" >&2; }
targets=(x86_64-apple-darwin aarch64-apple-darwin)
crates=(-p config-schema -p mifshim-socket-core -p mifshim-fastpath -p mifshim-abi -p mifrun -p mifshim)
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
    say "cargo clippy --target $t --manifest-path preload/Cargo.toml -- -D warnings (the stub)"
    cargo check --quiet --target "$t" --target-dir "$target_dir" --manifest-path preload/Cargo.toml \
        || { say "FAILED: cargo check --target $t (preload)"; failed=1; }
    cargo clippy --quiet --target "$t" --target-dir "$target_dir" --manifest-path preload/Cargo.toml -- -D warnings \
        || { say "FAILED: cargo clippy --target $t (preload)"; failed=1; }
done

# The stub's interposition table, read back from its Mach-O object code.
readobj=$(command -v llvm-readobj || true)
if [[ -z $readobj ]]; then
    host=$(rustc -vV | sed -n 's/^host: //p')
    readobj="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-readobj"
    if [[ ! -x $readobj ]]; then
        say "installing rustup's llvm-tools (for llvm-readobj)"
        rustup component add llvm-tools >&2 || true
    fi
    if [[ ! -x $readobj ]]; then
        ((failed)) && exit 1
        say "NOT RUN: the check of the stub's __interpose table: no llvm-readobj (rustup component add llvm-tools failed)"
        exit 3
    fi
fi
# The list's calls macOS keeps: every entry of `hooked_calls!` not preceded by
# `#[cfg(target_os = "linux")]`; the stub interposes `sigaction`, `signal`, the
# longjmp family, `posix_spawn(p)` and `vfork` too, and the `$NOCANCEL` twins.
expected=$( {
    awk '/^macro_rules! hooked_calls/ {on=1} on && /^}/ {on=0}
         on && /^ *#\[cfg\(target_os = "linux"\)\]/ {skip=1; next}
         on && /^            [a-z_0-9]+\(/ {n=$1; sub(/\(.*/, "", n); if (!skip) print n; skip=0}' abi/src/lib.rs
    printf '%s\n' sigaction signal longjmp _longjmp siglongjmp posix_spawn posix_spawnp vfork
    # The non-cancellable twins of the cancellable calls it hooks (preload/src/macos.rs).
    printf '%s$NOCANCEL\n' accept close connect fcntl recvfrom recvmsg sendmsg sendto
} | sort)
if [[ $(wc -l <<<"$expected") -lt 10 ]]; then
    say "FAILED: could not read the list of hooked calls from abi/src/lib.rs"
    exit 1
fi
# Hexadecimal offsets and sizes, read by any awk (mawk has no strtonum).
hex='function hex(s,  i, v) { s = tolower(s); sub(/^0x/, "", s); v = 0
    for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
    return v }'
objdir=$(mktemp -d)
trap 'rm -rf "$objdir"' EXIT
for t in "${targets[@]}"; do
    say "the stub's __DATA,__interpose table, compiled for $t (not linked)"
    if ! cargo rustc --quiet --release --target "$t" --target-dir "$target_dir" --manifest-path preload/Cargo.toml --crate-type staticlib; then
        say "FAILED: compiling the stub for $t"; failed=1; continue
    fi
    lib="$target_dir/$t/release/libmifshim.a"
    member=$(llvm-ar t "$lib" 2>/dev/null | grep '^mifshim-' | head -1 || true)
    if [[ -z $member ]]; then
        # No llvm-ar: ar(1) reads the archive as well.
        member=$(ar t "$lib" | grep '^mifshim-' | head -1 || true)
    fi
    rm -f "$objdir"/*.o
    (cd "$objdir" && ar x "$lib" "$member") || { say "FAILED: extracting $member from $lib"; failed=1; continue; }
    obj="$objdir/$member"
    # (The awk programs read all their input: one that exits early makes llvm-readobj
    # die of SIGPIPE, which pipefail turns into a failure.)
    # Each tuple is 16 bytes: the replacement's address at +0, the replacee's at +8,
    # each an absolute relocation to a symbol.
    pairs=$("$readobj" --relocations "$obj" | awk "$hex"'
        /Section __interpose/ {on=1; next} on && /^  }/ {on=0}
        on && /RELOC_UNSIGNED/ {off=hex($1); sym[off]=$NF; if (off > max) max=off}
        END {for (o = 0; o <= max; o += 16) print sym[o], sym[o + 8]}')
    size=$("$readobj" --sections "$obj" | awk "$hex"'/Name: __interpose / {on=1} on && !done && /Size:/ {print hex($2); done=1}')
    init=$("$readobj" --sections "$obj" | awk '/Name: __mod_init_func / {on=1} on && !done && /Type:/ {print $2; done=1}')
    got=$(awk '{print $2}' <<<"$pairs" | sed 's/^_//' | sort)
    bad=$(awk '$1 == "" || $2 == "" || $1 == $2 || $1 !~ /^_/ || $2 !~ /^_[a-z_0-9]+(\$NOCANCEL)?$/' <<<"$pairs")
    n=$(wc -l <<<"$expected")
    if [[ $got != "$expected" || -n $bad || $size != $((16 * n)) || $init != ModInitFuncPointers ]]; then
        say "FAILED: the stub's table for $t: $size bytes for $n calls, initialiser section type ${init:-missing}"
        diff <(echo "$expected") <(echo "$got") >&2 || true
        [[ -n $bad ]] && printf 'malformed tuples:\n%s\n' "$bad" >&2
        failed=1
    else
        say "$t: $n tuples, each {the stub's hook, the C library's function}; initialiser in __mod_init_func"
    fi
done
if ((failed)); then
    exit 1
fi
say "macOS type-check, lint and interposition table passed for ${targets[*]} (compiled only: nothing was linked or run)"
