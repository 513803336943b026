#!/usr/bin/env bash
# Runs every test of the project: the README's test command, and what CI runs.
#
#   scripts/test.sh            install what is missing (when root), build, run all tests
#   scripts/test.sh -- ARGS    extra arguments for the test runner (e.g. a filter)
#
# The end-to-end tests build network namespaces. As root they run directly. As a
# normal user they run inside an unprivileged user + network namespace when the system
# allows that; otherwise they are NOT run and the script says so loudly (and exits 3
# unless MIFSHIM_ALLOW_SKIP=1), so a skipped run is never mistaken for a passing one.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
extra=()
if [[ ${1:-} == "--" ]]; then
    shift
    extra=("$@")
fi

say() { printf '==> %s\n' "$*" >&2; }

install_deps() {
    # Programs the end-to-end tests run for real, and what building needs; man, zsh
    # and fish check the manual pages and completions, dpkg-dev and lintian build and
    # check the Debian package (scripts/deb.sh).
    local need=() cmd pkg
    for pair in ip:iproute2 curl:curl wget:wget python3:python3 node:nodejs nc:netcat-openbsd \
        socat:socat nft:nftables gcc:gcc unshare:util-linux setpriv:util-linux dnsmasq:dnsmasq-base dig:dnsutils \
        musl-gcc:musl-tools go:golang-go busybox:busybox-static \
        strace:strace man:man-db zsh:zsh fish:fish dpkg-shlibdeps:dpkg-dev lintian:lintian; do
        cmd=${pair%%:*}
        pkg=${pair#*:}
        command -v "$cmd" >/dev/null 2>&1 || [[ -x /usr/sbin/$cmd ]] || need+=("$pkg")
    done
    # Static libc for the "static binary is refused" test.
    [[ -e /usr/lib/x86_64-linux-gnu/libc.a || -e /usr/lib/libc.a ]] || need+=(libc6-dev)
    if ((${#need[@]})); then
        say "installing: ${need[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    fi
}

if [[ $(id -u) -eq 0 ]]; then
    install_deps
fi

say "building the workspace and the preloaded stub (libmifshim.so, its engine, mifrun, test programs)"
scripts/build.sh --all-targets --locked
# The release artifacts too: tests of what only the release build's code generation
# shows (e2e_leak release_build_*) run them.
say "building the release artifacts (scripts/build.sh --release)"
scripts/build.sh --release --locked
# The fuzz targets compile engine files by #[path] (shim/src/dns/wire.rs, ...); a file
# that starts to reach for the rest of its crate breaks them, and only the CI fuzz
# slice would notice. A stable type-check catches it here (about 20 s).
say "type-checking the fuzz targets (cargo check --manifest-path fuzz/Cargo.toml)"
cargo check --manifest-path fuzz/Cargo.toml --bins --locked --quiet

runner=(cargo test --workspace --locked)
skip_dns=(-- --skip dns:: --skip guard_)
if cargo nextest --version >/dev/null 2>&1; then
    runner=(cargo nextest run --workspace --locked --no-fail-fast)
    skip_dns=(-E 'not (test(/^dns::/) | binary(guard))')
fi

if [[ $(id -u) -eq 0 ]]; then
    say "running all tests as root"
    exec "${runner[@]}" "${extra[@]}"
fi

if unshare --user --map-root-user --mount --net true 2>/dev/null; then
    say "not root: running the tests in an unprivileged user + network namespace"
    say "NOT RUN: the DNS end-to-end tests (module dns): dnsmasq cannot start in an"
    say "         unprivileged user namespace (setgroups is denied there); run as root for them"
    say "NOT RUN: the --guard tests (binary guard): they create cgroups at the root of the"
    say "         cgroup v2 hierarchy, which only root may; run as root for them"
    # `ip netns` needs a writable /run, and the testbed writes /etc/netns/*: give the
    # namespace its own /run and a writable copy of /etc (files it cannot read, such as
    # /etc/shadow, are left out of the copy).
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    # shellcheck disable=SC2016 # expanded by the inner bash, on purpose
    MIFTB_NO_DNS=1 unshare --user --map-root-user --mount --net -- bash -c '
        set -e
        mount -t tmpfs tmpfs /run && mkdir -p /run/netns
        mkdir -p "$1/etc" && { cp -a /etc/. "$1/etc/" 2>/dev/null || true; }
        mount --bind "$1/etc" /etc
        shift
        exec "$@"' bash "$scratch" "${runner[@]}" "${skip_dns[@]}" "${extra[@]}"
    exit $?
fi

say "NOT RUN: the end-to-end tests need root or unprivileged user namespaces, and"
say "         'unshare --user --map-root-user --net' is refused here (e.g. Ubuntu's"
say "         kernel.apparmor_restrict_unprivileged_userns=1). Running the unit tests only."
"${runner[@]}" --exclude integration-tests "${extra[@]}"
say "NOT RUN: end-to-end tests (see above)."
[[ ${MIFSHIM_ALLOW_SKIP:-0} == 1 ]] || exit 3
