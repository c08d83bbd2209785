#!/usr/bin/env bash
# The local lab: Podman containers running an authoritative DNS server, a caching
# resolver, an ACME server (Pebble), a chrony and an NTPsec NTS server with ddns
# agents and certificates from that ACME server, and a chrony and an NTPsec client,
# all on an internal podman network (inventories/lab).
#
#   scripts/lab.sh images          build the base, lab and ACME images if their recipes changed
#   scripts/lab.sh up              build images if needed, start the lab, site.yml, verify.yml
#   scripts/lab.sh drill           recovery drill: move a server, measure each client's recovery
#   scripts/lab.sh drill-late-dns  the bad case: DNS updated only after the clients looked the
#                                  name up again (chrony 4.3: ~30 min, NTPsec 1.2: ~70 min)
#   scripts/lab.sh renew           force one ACME renewal on each NTS server, show the clients' view
#   scripts/lab.sh planned-move    planned move of the chrony server, measured (--runs N in a row,
#                                  --refusal, --watch-polls P: scripts/lab_planned_move.py)
#   scripts/lab.sh all             up, drill, then renew (what `make lab` runs); leaves the lab running
#   scripts/lab.sh verify          run playbooks/verify.yml against the running lab
#   scripts/lab.sh down            remove the containers, the network and the lab's files
#   scripts/lab.sh test            the lab's integration test (tests/integration/test_lab.py)
#
# Needs root, podman, debootstrap (scripts/bootstrap-system.sh) and the venv (make venv).
# Every step prints its name and how long it took.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export CONTAINERS_CONF="$ROOT/molecule/containers.conf"
export ANSIBLE_CONFIG="$ROOT/ansible.cfg"
export PATH="$ROOT/.venv/bin:$PATH"
# Another lab (the integration test's copy) can run beside this one with its own
# inventory (other names, network and addresses) and state folder.
INVENTORY=${NTSOPS_LAB_INVENTORY:-"$ROOT/inventories/lab"}
BASE_IMAGE=localhost/ntsops/debian12-systemd:latest
LAB_IMAGE=localhost/ntsops/lab:latest
ACME_IMAGE=localhost/ntsops/lab-acme:latest
STATE_DIR=${NTSOPS_LAB_STATE_DIR:-"$ROOT/.cache/lab"}
START=$(date +%s)

step() {
    # step NAME COMMAND...: run COMMAND, print NAME with its own and the total elapsed time.
    local name=$1 t0 rc
    shift
    t0=$(date +%s)
    printf '\n==> [%s] %s\n' "$(elapsed "$START")" "$name"
    set +e
    "$@"
    rc=$?
    set -e
    printf '<== %s: %s in %ss (total %s)\n' "$name" "$([ $rc -eq 0 ] && echo ok || echo "FAILED ($rc)")" \
        "$(($(date +%s) - t0))" "$(elapsed "$START")"
    # A failed step ends the run (set -e does not apply inside `a && b` lists).
    [ $rc -eq 0 ] || exit $rc
}

elapsed() {
    local s=$(($(date +%s) - $1))
    printf '%d:%02d' $((s / 60)) $((s % 60))
}

build_images() {
    sh scripts/install-podman-collection.sh
    sh scripts/build-image.sh
    # The lab image: the Debian 12 image plus BIND and dnspython (scripts/lab/Containerfile).
    # Rebuilt when the base image or the Containerfile changed.
    local want have
    want="$(podman image inspect --format '{{.Id}}' "$BASE_IMAGE")-$(sha256sum scripts/lab/Containerfile | cut -c1-16)"
    have=$(podman image inspect --format '{{ index .Labels "ntsops.lab.recipe" }}' "$LAB_IMAGE" 2>/dev/null || true)
    if [ "$want" = "$have" ]; then
        echo "lab image $LAB_IMAGE is up to date"
        return 0
    fi
    podman build --quiet --pull=never --build-arg "BASE=$BASE_IMAGE" --label "ntsops.lab.recipe=$want" \
        --tag "$LAB_IMAGE" --file scripts/lab/Containerfile scripts/lab >/dev/null
    echo "lab image $LAB_IMAGE built"
}

build_acme_image() {
    # The lab image plus certbot and Pebble (scripts/lab/Containerfile.acme): the lab's ACME
    # server and NTS servers, and the ACME tests.
    local want have
    want="$(podman image inspect --format '{{.Id}}' "$LAB_IMAGE")-$(sha256sum scripts/lab/Containerfile.acme | cut -c1-16)"
    have=$(podman image inspect --format '{{ index .Labels "ntsops.lab.recipe" }}' "$ACME_IMAGE" 2>/dev/null || true)
    if [ "$want" = "$have" ]; then
        echo "ACME test image $ACME_IMAGE is up to date"
        return 0
    fi
    # Its build context holds Debian 13's Pebble package, fetched only to build: Debian 12's
    # Pebble 2.4 cannot issue short-lived certificates, 2.6 can (certificateValidityPeriod).
    local context="$ROOT/.cache/acme-image"
    rm -rf "$context" && mkdir -p "$context"
    sh scripts/debian-apt.sh trixie "$context" pebble
    mv "$context"/pebble_*.deb "$context/pebble-trixie.deb"
    podman build --quiet --pull=never --build-arg "BASE=$LAB_IMAGE" --label "ntsops.lab.recipe=$want" \
        --tag "$ACME_IMAGE" --file scripts/lab/Containerfile.acme "$context" >/dev/null
    rm -rf "$context"
    echo "ACME test image $ACME_IMAGE built"
}

playbook() {
    ansible-playbook -i "$INVENTORY" "$@"
}

cmd_up() {
    step "Build the images (if needed)" build_images
    step "Build the ACME image (if needed)" build_acme_image
    step "Start the lab network and containers, configure DNS" playbook playbooks/lab/up.yml
    step "site.yml: ddns agents, NTS servers, NTS clients" playbook playbooks/site.yml
    step "verify.yml: check every NTS server as a client would" cmd_verify
}

cmd_verify() {
    mkdir -p "$STATE_DIR"
    playbook playbooks/verify.yml -e "verify_json_file=$STATE_DIR/verify.json" \
        -e "verify_prometheus_file=$STATE_DIR/verify.prom"
}

cmd_drill() {
    step "Recovery drill (address change, DNS updated by the agent)" \
        .venv/bin/python scripts/lab_drill.py --inventory "$INVENTORY" --json "$STATE_DIR/drill.json" "$@"
}

cmd_drill_late_dns() {
    step "Recovery drill, late DNS (DNS updated after the clients re-resolved)" \
        .venv/bin/python scripts/lab_drill.py --inventory "$INVENTORY" --late-dns \
        --json "$STATE_DIR/drill-late-dns.json" --baseline "$STATE_DIR/drill.json" "$@"
}

cmd_renew() {
    step "Forced ACME renewal on each NTS server (served, client polls, NTS-KE, old cookie)" \
        .venv/bin/python scripts/lab_renew.py --inventory "$INVENTORY" --ca "$STATE_DIR/acme-root.pem" \
        --state-dir "$STATE_DIR" --json "$STATE_DIR/renew.json" "$@"
}

cmd_planned_move() {
    step "Planned move of the chrony server (Server Negotiation, keys replaced, clients measured)" \
        .venv/bin/python scripts/lab_planned_move.py --inventory "$INVENTORY" \
        --json "$STATE_DIR/planned-move.json" "$@"
}

cmd_down() {
    step "Remove the lab" playbook playbooks/lab/down.yml
}

cmd_test() {
    step "Lab integration test" pytest -q -p no:cacheprovider tests/integration/test_lab.py "$@"
}

usage() {
    sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

[ $# -ge 1 ] || usage
command=$1
shift
case $command in
    images) step "Build the images (if needed)" build_images && step "Build the ACME test image (if needed)" build_acme_image ;;
    up) cmd_up ;;
    verify) step "verify.yml" cmd_verify ;;
    drill) cmd_drill "$@" ;;
    drill-late-dns) cmd_drill_late_dns "$@" ;;
    renew) cmd_renew "$@" ;;
    planned-move) cmd_planned_move "$@" ;;
    all)
        cmd_up
        cmd_drill "$@"
        cmd_renew
        ;;
    down) cmd_down ;;
    test) cmd_test "$@" ;;
    *) usage ;;
esac
printf '\nlab.sh %s: done in %s\n' "$command" "$(elapsed "$START")"
