#!/usr/bin/env bash
# Installs mifrun and the two libraries where mifrun finds them, with the docs and an
# example policy:
#
#   $DESTDIR$PREFIX/bin/mifrun
#   $DESTDIR$PREFIX/lib/mifshim/{libmifshim.so,libmifshim_engine.so}
#   $DESTDIR$PREFIX/share/doc/mifshim/{README.md,BENCHMARKS.md,policy.example.toml}
#
#   scripts/install.sh [--from DIR]      (PREFIX=/usr/local, DESTDIR= by default)
#
# Without --from it builds the release artifacts first (scripts/build.sh --release)
# and installs target/release/; --from DIR installs what DIR holds (no build).
# mifrun looks for libmifshim.so next to itself or in ../lib/mifshim/, so the tree
# works wherever PREFIX puts it (and from a DESTDIR staging root, for packaging).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
from=
while (($#)); do
    case $1 in
    --from)
        from=${2:?--from needs a directory}
        shift 2
        ;;
    -h | --help)
        sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "install.sh: unknown argument $1 (see --help)" >&2
        exit 2
        ;;
    esac
done
if [[ -z $from ]]; then
    scripts/build.sh --release
    from=${CARGO_TARGET_DIR:-$PWD/target}/release
fi
for f in mifrun libmifshim.so libmifshim_engine.so; do
    [[ -f $from/$f ]] || {
        echo "install.sh: $from/$f is missing (build first, or give --from)" >&2
        exit 1
    }
done
root=$DESTDIR$PREFIX
install -d "$root/bin" "$root/lib/mifshim" "$root/share/doc/mifshim"
install -m 0755 "$from/mifrun" "$root/bin/mifrun"
install -m 0755 "$from/libmifshim.so" "$from/libmifshim_engine.so" "$root/lib/mifshim/"
install -m 0644 README.md BENCHMARKS.md "$root/share/doc/mifshim/"
install -m 0644 examples/policy.toml "$root/share/doc/mifshim/policy.example.toml"
echo "installed mifrun in $root/bin, the libraries in $root/lib/mifshim, docs in $root/share/doc/mifshim"
