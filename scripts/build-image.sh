#!/bin/sh
# Build the Debian 12 image with systemd that the Molecule scenarios run, locally:
# debootstrap a minimal root file system, import it into podman, then podman build
# molecule/image/Containerfile on top. No registry is used and nothing is pulled.
#
# Idempotent: the image carries a label with a hash of its recipe (this script, the
# Containerfile and molecule/containers.conf); when an image with the same hash
# exists, nothing is done. Change the recipe and the next run rebuilds.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
IMAGE=${NTSOPS_IMAGE:-localhost/ntsops/debian12-systemd:latest}
SUITE=bookworm
MIRROR=${NTSOPS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
CONTEXT="$ROOT/molecule/image"
export CONTAINERS_CONF="$ROOT/molecule/containers.conf"

recipe=$(cat "$0" "$CONTEXT/Containerfile" "$CONTAINERS_CONF" | sha256sum | cut -c1-16)
recipe="$recipe-$SUITE"

current=$(podman image inspect --format '{{ index .Labels "ntsops.recipe" }}' "$IMAGE" 2>/dev/null || true)
if [ "$current" = "$recipe" ]; then
    echo "build-image: $IMAGE is up to date (recipe $recipe)"
    exit 0
fi

# The debootstrap root file system depends only on this script (suite, mirror,
# variant), so a Containerfile change reuses it and skips the slow part.
base="localhost/ntsops/debian12-rootfs:$(sha256sum "$0" | cut -c1-16)-$SUITE"
work=$(mktemp -d /var/tmp/ntsops-rootfs.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM

if ! podman image exists "$base"; then
    echo "build-image: debootstrap $SUITE into $work"
    debootstrap --variant=minbase "$SUITE" "$work/rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
        tail -n 30 "$work/debootstrap.log" >&2
        exit 1
    }
    # Leave no host-specific resolver or hostname in the image.
    rm -f "$work/rootfs/etc/hostname"
    : >"$work/rootfs/etc/resolv.conf"
    echo "build-image: importing the root file system as $base"
    tar -C "$work/rootfs" --numeric-owner -cf - . | podman import --quiet - "$base" >/dev/null
    rm -rf "$work/rootfs"
fi

echo "build-image: building $IMAGE"
podman build --quiet --pull=never --build-arg "BASE=$base" \
    --label "ntsops.recipe=$recipe" --tag "$IMAGE" \
    --file "$CONTEXT/Containerfile" "$CONTEXT" >/dev/null

# Old rootfs images of earlier recipes are no longer needed.
podman images --format '{{.Repository}}:{{.Tag}}' \
    | grep '^localhost/ntsops/debian12-rootfs:' | grep -vF "$base" \
    | while read -r old; do podman rmi "$old" >/dev/null 2>&1 || true; done

echo "build-image: $IMAGE built (recipe $recipe)"
