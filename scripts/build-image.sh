#!/bin/sh
# Build a Debian image with systemd that the Molecule scenarios and the lab run,
# locally: debootstrap a minimal root file system, import it into podman, then podman
# build molecule/image/Containerfile on top. No registry is used and nothing is pulled.
#
#   scripts/build-image.sh [SUITE...]   SUITE: bookworm (Debian 12), trixie (Debian 13);
#                                       default: both. Image: localhost/ntsops/debianN-systemd
#
# The host may be Debian 12 or 13: debootstrap fetches from the host's own Debian
# archive URI (scripts/debian-release.sh), whatever the host's release.
#
# Idempotent: each image carries a label with a hash of its recipe (this script, the
# Containerfile, molecule/containers.conf and the suite); when an image with the same
# hash exists, nothing is done. Change the recipe and the next run rebuilds.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/debian-release.sh
. "$ROOT/scripts/debian-release.sh"
CONTEXT="$ROOT/molecule/image"
export CONTAINERS_CONF="$ROOT/molecule/containers.conf"
MIRROR=$(debian_mirror)

build() {
    suite=$1
    release=$(debian_release "$suite") || exit 2
    image="localhost/ntsops/debian$release-systemd:latest"
    # Packages only downloaded into the image (the roles install them at converge time):
    # ntpd-rs exists from Debian 13 on.
    extra=""
    [ "$release" -ge 13 ] && extra="ntpd-rs"

    recipe=$(cat "$0" "$ROOT/scripts/debian-release.sh" "$CONTEXT/Containerfile" "$CONTAINERS_CONF" \
        | sha256sum | cut -c1-16)
    recipe="$recipe-$suite"
    current=$(podman image inspect --format '{{ index .Labels "ntsops.recipe" }}' "$image" 2>/dev/null || true)
    if [ "$current" = "$recipe" ]; then
        echo "build-image: $image is up to date (recipe $recipe)"
        return 0
    fi

    # The debootstrap root file system depends only on the suite and the mirror, so a
    # Containerfile change reuses it and skips the slow part.
    base="localhost/ntsops/debian$release-rootfs:$(printf '%s %s' "$suite" "$MIRROR" | sha256sum | cut -c1-16)"
    if ! podman image exists "$base"; then
        work=$(mktemp -d /var/tmp/ntsops-rootfs.XXXXXX)
        echo "build-image: debootstrap $suite from $MIRROR into $work"
        debootstrap --variant=minbase "$suite" "$work/rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
            tail -n 30 "$work/debootstrap.log" >&2
            echo "build-image: debootstrap of Debian $release ($suite) from $MIRROR failed (log above)" >&2
            rm -rf "$work"
            exit 1
        }
        # Leave no host-specific resolver or hostname in the image.
        rm -f "$work/rootfs/etc/hostname"
        : >"$work/rootfs/etc/resolv.conf"
        echo "build-image: importing the root file system as $base"
        tar -C "$work/rootfs" --numeric-owner -cf - . | podman import --quiet - "$base" >/dev/null
        rm -rf "$work"
    fi

    echo "build-image: building $image"
    podman build --quiet --pull=never --build-arg "BASE=$base" --build-arg "EXTRA_DOWNLOADS=$extra" \
        --label "ntsops.recipe=$recipe" --tag "$image" \
        --file "$CONTEXT/Containerfile" "$CONTEXT" >/dev/null || {
        echo "build-image: podman build of $image failed" >&2
        exit 1
    }

    # Old rootfs images of earlier recipes are no longer needed.
    podman images --format '{{.Repository}}:{{.Tag}}' \
        | grep "^localhost/ntsops/debian$release-rootfs:" | grep -vF "$base" \
        | while read -r old; do podman rmi "$old" >/dev/null 2>&1 || true; done

    echo "build-image: $image built (recipe $recipe)"
}

[ $# -gt 0 ] || set -- bookworm trixie
for suite in "$@"; do
    build "$suite"
done
