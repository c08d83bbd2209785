#!/bin/sh
# Download packages of another Debian release without touching the host's apt setup:
# a private apt state (its own sources.list, lists and cache under .cache/apt/SUITE)
# with the host's own archive URI and the given suite.
#
#   scripts/debian-apt.sh SUITE DIR PKG...   download PKG... of SUITE (e.g. trixie) into DIR
#
# The lists are read again when they are older than a day or a package is not found.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/debian-release.sh
. "$ROOT/scripts/debian-release.sh"

[ $# -ge 3 ] || { echo "usage: $0 SUITE DIR PKG..." >&2; exit 2; }
suite=$1 dest=$2
shift 2
debian_release "$suite" >/dev/null || exit 2
mirror=$(debian_mirror)

state="$ROOT/.cache/apt/$suite"
mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$dest"
echo "deb $mirror $suite main" >"$state/sources.list"

private_apt() {
    apt-get -qq -o "Dir::Etc::sourcelist=$state/sources.list" -o "Dir::Etc::sourceparts=-" \
        -o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache" "$@"
}

update() {
    private_apt update 2>"$state/update.log" || {
        cat "$state/update.log" >&2
        echo "debian-apt: cannot read the Debian $suite package lists from $mirror" >&2
        exit 1
    }
}

if [ -z "$(find "$state/lists" -name '*_Packages' -mtime -1 2>/dev/null)" ]; then
    update
fi
cd "$dest"
for pkg in "$@"; do
    if ! private_apt download "$pkg" >/dev/null 2>&1; then
        update
        private_apt download "$pkg" >/dev/null 2>"$state/download.log" || {
            echo "debian-apt: cannot download $pkg from Debian $suite ($(tail -n 1 "$state/download.log"))" >&2
            exit 1
        }
    fi
done
