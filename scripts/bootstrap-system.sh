#!/bin/sh
# Install the Debian packages the tests and the lab need, and unpack private copies
# of chronyd and ntpd. Idempotent: does nothing when everything is present.
#
# chrony and ntpsec conflict as packages and start services when installed, so the
# daemons the tests run are unpacked from their .deb files (dpkg -x) into
# .cache/daemons instead of being installed; only their libraries are installed.
# prometheus (the server and promtool, for `make rules-test` and the exporter's
# integration test) is unpacked the same way: installing the package would start
# and enable a prometheus service on this machine.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DAEMONS="$ROOT/.cache/daemons"
# shellcheck source=scripts/debian-release.sh
. "$ROOT/scripts/debian-release.sh"

# The host may be Debian 12 or 13. The libraries of the unpacked daemons have other
# package names on 13 (the 64-bit time_t transition added a t64 suffix).
SUITE=$(host_suite)
case "$SUITE" in
    bookworm) DAEMON_LIBS="libbsd0 libcap2 libedit2 libgnutls30 libnettle8 libseccomp2 libssl3" ;;
    trixie) DAEMON_LIBS="libbsd0 libcap2 libedit2 libgnutls30t64 libnettle8t64 libseccomp2 libssl3t64" ;;
    *)
        echo "bootstrap: this host runs Debian suite '$SUITE'; supported hosts are Debian 12 (bookworm) and 13 (trixie)" >&2
        exit 2
        ;;
esac

# ansible-test sanity skips its shell script test when the shellcheck program is missing.
PACKAGES="bind9 bind9-utils bind9-dnsutils iproute2 libcap2-bin openssl nftables rsync make git \
podman runc debootstrap uidmap slirp4netns fuse-overlayfs shellcheck \
pebble certbot python3-certbot-dns-rfc2136 $DAEMON_LIBS"

missing=""
for pkg in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $pkg"
    fi
done

if [ -n "$missing" ]; then
    echo "bootstrap: installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086  # word splitting of the package list is wanted
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

unpack() {
    # $1: package name, $2: binary inside the package that proves it is unpacked
    if [ -x "$DAEMONS/$1/$2" ]; then
        return 0
    fi
    echo "bootstrap: unpacking $1 into $DAEMONS/$1"
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download -qq "$1" >/dev/null 2>&1) || {
        apt-get update -qq
        (cd "$tmp" && apt-get download -qq "$1")
    }
    rm -rf "${DAEMONS:?}/$1"
    mkdir -p "$DAEMONS/$1"
    dpkg -x "$tmp"/"$1"_*.deb "$DAEMONS/$1"
    rm -rf "$tmp"
}

unpack chrony usr/sbin/chronyd
unpack ntpsec usr/sbin/ntpd
unpack prometheus usr/bin/promtool
# ntpq (in the ntpsec package) needs NTPsec's Python module; its ntpc.py looks for
# libntpc.so next to itself first, so the unpacked copy needs no system path.
unpack python3-ntp usr/lib/python3/dist-packages/ntp/ntpc.py
NTP_PY="$DAEMONS/python3-ntp/usr/lib/python3/dist-packages/ntp"
[ -e "$NTP_PY/libntpc.so" ] || ln -s ../../../x86_64-linux-gnu/ntp/libntpc.so.1.1.0 "$NTP_PY/libntpc.so"
