#!/usr/bin/env bash
# Builds the Debian package of mifshim with dpkg-deb (no network, no cargo-deb):
#
#   scripts/deb.sh [--from DIR] [--out DIR]     -> OUT/mifshim_VERSION_ARCH.deb
#
# Without --from it builds the release artifacts first (scripts/build.sh --release)
# and packages target/release/; OUT defaults to target/debian/. The tree is what
# scripts/install.sh installs with PREFIX=/usr (mifrun in /usr/bin, both libraries in
# /usr/lib/mifshim/ where mifrun finds them, manual pages, completions, the schema in
# /usr/share/mifshim/, the example policy and systemd examples in
# /usr/share/doc/mifshim/examples/), stripped, man pages and changelog compressed,
# Depends computed by dpkg-shlibdeps. Nothing goes to /etc: the shim reads
# /etc/mifshim/policy.toml by itself, so a policy there must be the admin's own.
# Prints the package's path.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
from=
out=${CARGO_TARGET_DIR:-$PWD/target}/debian
while (($#)); do
    case $1 in
    --from)
        from=${2:?--from needs a directory}
        shift 2
        ;;
    --out)
        out=${2:?--out needs a directory}
        shift 2
        ;;
    -h | --help)
        sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "deb.sh: unknown argument $1 (see --help)" >&2
        exit 2
        ;;
    esac
done
for tool in dpkg-deb dpkg-shlibdeps strip gzip; do
    command -v "$tool" >/dev/null || {
        echo "deb.sh: $tool is missing (apt-get install dpkg-dev binutils gzip)" >&2
        exit 1
    }
done
if [[ -z $from ]]; then
    scripts/build.sh --release
    from=${CARGO_TARGET_DIR:-$PWD/target}/release
fi
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
arch=$(dpkg --print-architecture)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage=$work/root
DESTDIR=$stage PREFIX=/usr scripts/install.sh --from "$from" >/dev/null

doc=$stage/usr/share/doc/mifshim
# Debian policy: stripped objects, private shared libraries not executable,
# compressed manual pages and changelog, a copyright file.
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/usr/bin/mifrun"
for so in "$stage"/usr/lib/mifshim/*.so; do
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$so"
    chmod 0644 "$so"
done
gzip -9n "$stage"/usr/share/man/man1/*.1 "$stage"/usr/share/man/man5/*.5
gzip -9n "$doc/BENCHMARKS.md"
install -m 0644 /dev/stdin "$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: mifshim
Source: see README.md

Files: *
Copyright: 2026 the mifshim authors
License: MIT or Apache-2.0
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0. The MIT license:
 .
 Permission is hereby granted, free of charge, to any person obtaining a copy of
 this software and associated documentation files (the "Software"), to deal in
 the Software without restriction, including without limitation the rights to
 use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of
 the Software, and to permit persons to whom the Software is furnished to do so,
 subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in all
 copies or substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS
 FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR
 COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN
 AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION
 WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
EOF
# The date of the last commit, so that the same tree gives the same package.
date=$(git log -1 --format=%cD 2>/dev/null || date -R)
printf 'mifshim (%s) unstable; urgency=medium\n\n  * Package built from the mifshim source tree by scripts/deb.sh.\n\n -- mifshim maintainers <mifshim@example.invalid>  %s\n' \
    "$version" "$date" | gzip -9n >"$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"

# Depends: what the binaries link against, from the shlibs/symbols files of the
# installed libraries (dpkg-shlibdeps wants a debian/control beside it).
mkdir -p "$work/src/debian"
printf 'Source: mifshim\n\nPackage: mifshim\nArchitecture: any\n' >"$work/src/debian/control"
depends=$(cd "$work/src" && dpkg-shlibdeps -O "$stage/usr/bin/mifrun" "$stage"/usr/lib/mifshim/*.so 2>"$work/shlibdeps.err" |
    sed -n 's/^shlibs:Depends=//p') || {
    cat "$work/shlibdeps.err" >&2
    exit 1
}
[[ -n $depends ]] || {
    echo "deb.sh: dpkg-shlibdeps found no dependency" >&2
    cat "$work/shlibdeps.err" >&2
    exit 1
}

mkdir -p "$stage/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<EOF
Package: mifshim
Version: $version
Architecture: $arch
Maintainer: mifshim maintainers <mifshim@example.invalid>
Installed-Size: $size
Depends: $depends
Section: net
Priority: optional
Description: keep a program's network traffic on one interface
 mifshim forces an unmodified program's traffic, and its name lookups, onto
 the network interface chosen on a multihomed host (Wi-Fi instead of
 Ethernet, a cellular modem, a VPN): mifrun --via wlan0 -- program.
 .
 It consists of mifrun, a wrapper that validates the policy and runs the
 program with an LD_PRELOAD library (or, for static and Go programs, under
 a seccomp supervisor), and the libraries themselves, in /usr/lib/mifshim.
EOF
(cd "$stage" && find usr -type f -print0 | sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"
find "$stage" -type d -exec chmod 0755 {} +
mkdir -p "$out"
deb=$out/mifshim_${version}_${arch}.deb
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s) \
    dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
