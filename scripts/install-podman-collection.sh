#!/bin/sh
# Install the containers.podman collection that Molecule's podman driver needs.
# Galaxy is unreachable from this kind of machine, so the collection is taken from
# the `ansible` community package on PyPI (the 12.x line matches ansible-core 2.19)
# and only that one collection is unpacked. Idempotent: does nothing when present.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PIP="$ROOT/.venv/bin/pip"
PY="$ROOT/.venv/bin/python"
DEST="$ROOT/.collections/ansible_collections/containers/podman"
ANSIBLE_SPEC=${ANSIBLE_SPEC:-"ansible>=12,<13"}

if [ -f "$DEST/MANIFEST.json" ]; then
    exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

echo "install-podman-collection: downloading $ANSIBLE_SPEC from PyPI (no dependencies)"
"$PIP" download -q --disable-pip-version-check --no-deps "$ANSIBLE_SPEC" -d "$tmp"
wheel=$(ls "$tmp"/ansible-*.whl)

# Unpack into a staging folder first, so an interrupted run never leaves a half
# collection that the MANIFEST.json check above would take for a complete one.
"$PY" - "$wheel" "$tmp/stage" <<'PYEOF'
import sys
import zipfile

wheel, stage = sys.argv[1], sys.argv[2]
prefix = "ansible_collections/containers/podman/"
with zipfile.ZipFile(wheel) as archive:
    members = [name for name in archive.namelist() if name.startswith(prefix)]
    if not members:
        sys.exit(f"{wheel} holds no {prefix}")
    archive.extractall(stage, members)
PYEOF

mkdir -p "$(dirname "$DEST")"
rm -rf "$DEST"
mv "$tmp/stage/ansible_collections/containers/podman" "$DEST"
version=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["collection_info"]["version"])' "$DEST/MANIFEST.json")
echo "install-podman-collection: containers.podman $version installed in $DEST"
