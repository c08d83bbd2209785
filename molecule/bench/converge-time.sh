#!/usr/bin/env bash
# Measure how long ntsops.nts.server takes to converge N chrony NTS servers in one
# run, and how long a second run that changes nothing takes.
# Usage: molecule/bench/converge-time.sh [N ...]   (default: 1 4)
# Uses the locally built image (scripts/build-image.sh) and a private podman network
# of its own; every container and the network are removed on exit, also on failure.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export CONTAINERS_CONF="$ROOT/molecule/containers.conf"
export ANSIBLE_CONFIG="$ROOT/ansible.cfg"
export ANSIBLE_COLLECTIONS_PATH="$ROOT/.collections"
export ANSIBLE_PIPELINING=True
export PATH="$ROOT/.venv/bin:$PATH"
IMAGE=localhost/ntsops/debian12-systemd:latest
NETWORK=ntsops-bench
# A /27 of TEST-NET-3 that neither the lab nor the Molecule scenarios use.
SUBNET_PREFIX=203.0.113
SUBNET=203.0.113.160/27
WORK=$(mktemp -d /tmp/ntsops-bench.XXXXXX)
containers=()

cleanup() {
    for name in "${containers[@]}"; do
        podman rm -f "$name" >/dev/null 2>&1 || true
    done
    podman network rm -f "$NETWORK" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

sh "$ROOT/scripts/install-podman-collection.sh"
sh "$ROOT/scripts/build-image.sh"
sh "$ROOT/molecule/shared/make-test-pki.sh" "$WORK/pki" nts.ntsops.test >/dev/null
podman network exists "$NETWORK" || podman network create --subnet "$SUBNET" "$NETWORK" >/dev/null

elapsed() {
    awk -v start="$1" -v end="$2" 'BEGIN { printf "%.1f", end - start }'
}

run_for() {
    local count=$1 inventory="$WORK/inventory-$1.ini" i name
    echo "[nts_servers]" >"$inventory"
    for i in $(seq 1 "$count"); do
        name="ntsops-bench-$count-$i"
        containers+=("$name")
        podman run -d --name "$name" --hostname "$name" --systemd=always --cap-drop=SYS_TIME \
            --network "$NETWORK" --ip "$SUBNET_PREFIX.$((160 + count * 5 + i))" "$IMAGE" /sbin/init >/dev/null
        echo "$name ansible_connection=containers.podman.podman nts_bench_address=$SUBNET_PREFIX.$((160 + count * 5 + i))" >>"$inventory"
    done
    for name in "${containers[@]}"; do
        podman exec "$name" systemctl is-system-running --wait >/dev/null 2>&1 || true
    done
    local playbook="$ROOT/molecule/bench/converge-server.yml"
    local start end
    start=$(date +%s.%N)
    ansible-playbook -i "$inventory" -e "nts_bench_pki=$WORK/pki" "$playbook" >"$WORK/first-$count.log" 2>&1 \
        || { tail -n 40 "$WORK/first-$count.log"; exit 1; }
    end=$(date +%s.%N)
    echo "servers=$count first run: $(elapsed "$start" "$end") s"
    start=$(date +%s.%N)
    ansible-playbook -i "$inventory" -e "nts_bench_pki=$WORK/pki" "$playbook" >"$WORK/second-$count.log" 2>&1 \
        || { tail -n 40 "$WORK/second-$count.log"; exit 1; }
    end=$(date +%s.%N)
    changed=$(grep -Eo 'changed=[0-9]+' "$WORK/second-$count.log" | awk -F= '{s += $2} END {print s + 0}')
    echo "servers=$count second run: $(elapsed "$start" "$end") s (changed tasks: $changed)"
    for name in "${containers[@]}"; do
        podman rm -f "$name" >/dev/null 2>&1 || true
    done
    containers=()
}

for count in "${@:-1 4}"; do
    for n in $count; do
        run_for "$n"
    done
done
