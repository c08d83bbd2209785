# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Measure real ntpd-rs 1.4.0 clients following an address change, next to the model.

The rig (podman network ``ntsops-ntpdrs-measure``, 198.18.4.0/24, internal; Debian 13
image from scripts/build-image.sh, packages installed from its apt cache, no
container gets CAP_SYS_TIME) measures groups of clients side by side, one group per
old-address behaviour (``--variants``) and DNS update latency (``--latencies``):

* ``ntpdrs-m-srv``: chronyd 4.6.1 (``-x``, local stratum 8) as NTS server on the new
  address 198.18.4.11 and, until the change, on one old address per behaviour:
  198.18.4.10 (``refused``, ``nak``), .12 (``dark``), .13 (``unreachable``).
* ``ntpdrs-m-old``: 198.18.4.9; at the change it takes over .10 (nothing listens:
  TCP RST, ICMP port unreachable for NTP) and .12 (an nftables rule drops everything
  sent to it); nobody takes .13 (ARP fails, sockets get EHOSTUNREACH).
* ``ntpdrs-m-cN``: ntpd-rs clients (``ntp-daemon``) with one NTS source ``ntp.m.test``,
  poll fixed at 2^P s, run with molecule/ntpd-rs/seccomp-clock-noop.json so that
  their clock steering is a no-op (ntp-daemon exits when it cannot steer).

The name is resolved from each client's /etc/hosts (glibc reads it on every lookup,
as ntp-daemon's NTS-KE does on every attempt): "DNS" has TTL 0, and each group's
names move to 198.18.4.11 its latency after the change. ``nak`` (measured alone)
keeps the address and changes chronyd's cookie keys instead (restart without its
saved ``ntskeys``, one of the two ways in docs/recovery-model.md "Planned move"), so
every request gets an NTS NAK; its names move at once.

Measured per client from a passive packet log of the rig's bridge
(benchmarks/d13_sniff.py): the first NTS-KE SYN after the change, the first SYN to
the new address, the first authenticated NTP response from the new address, the NAKs
received; from an nftables counter in each client's own output path, the SYNs sent
to its old address while the name still pointed there (for ``unreachable`` no SYN
reaches the wire, so only this counter sees them); from ntp-daemon's log, the socket
errors and failed key exchanges. Next to them the model's interval
(plugins/module_utils/_model/recovery.py recovery_time; ``nak`` is compared with the
unplanned model, since ntpd-rs ignores the NAK).

Run as root: ``python3 benchmarks/ntpdrs_recovery.py --variants refused dark unreachable --latencies 0 120``
(wrap it in ``flock /tmp/ntsops-integration.lock``); ``--json FILE`` also writes the
result there. Every container and the network are removed at the end, also on
failure; every wait is bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / ".collections"))
sys.path.insert(0, str(REPO / "benchmarks"))

from ansible_collections.ntsops.nts.plugins.module_utils._model.recovery import (
    recovery_time,
)
from d13_sniff import Packet, Sniffer

IMAGE = "localhost/ntsops/debian13-systemd:latest"
NETWORK = "ntsops-ntpdrs-measure"
SUBNET = "198.18.4.0/24"
NEW, OLD_HOST, SRV_NAME = "198.18.4.11", "198.18.4.9", "ntp.m.test"
# One old address per behaviour, so that one rig measures them side by side; each
# is a secondary address of the server until the change.
OLD = {"refused": "198.18.4.10", "dark": "198.18.4.12", "unreachable": "198.18.4.13", "nak": "198.18.4.10"}
SECCOMP = REPO / "molecule" / "ntpd-rs" / "seccomp-clock-noop.json"
PREFIX = "ntpdrs-m-"
LABEL = "owner=ntsops-ntpdrs-measure"
ENV = {**os.environ, "CONTAINERS_CONF": str(REPO / "molecule" / "containers.conf")}
OBSERVE = "/run/ntp-observe"
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z")
VARIANTS = tuple(OLD)

# No bindaddress: one chronyd answers on both addresses. ntsdumpdir keeps the cookie
# keys across a restart unless the file is removed (the nak variant removes it).
CHRONY_CONF = """local stratum 8
allow all
ntsserverkey /m/server.key
ntsservercert /m/server.crt
ntsdumpdir /var/lib/chrony
"""


def run(*argv: str, check: bool = True, timeout: float = 120) -> str:
    result = subprocess.run(argv, env=ENV, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def pid_of(container: str) -> str:
    return run("podman", "inspect", "--format", "{{.State.Pid}}", container).strip()


def in_netns(container: str, *argv: str, check: bool = True) -> str:
    return run("nsenter", "-t", pid_of(container), "-n", *argv, check=check)


def client_toml(poll: int) -> str:
    return f"""[observability]
log-level = "info"
ansi-colors = false
observation-path = "{OBSERVE}"

[[source]]
mode = "nts"
address = "{SRV_NAME}"
certificate-authority = "/m/ca.crt"

[synchronization]
minimum-agreeing-sources = 1

[source-defaults]
poll-interval-limits = {{ min = {poll}, max = {poll} }}
initial-poll-interval = {poll}
"""


def start(name: str, address: str, *extra: str) -> None:
    run("podman", "run", "-d", "--name", name, "--hostname", name, "--network", NETWORK, "--ip", address,
        "--cap-drop", "SYS_TIME", "--label", LABEL, "--pull", "never", *extra,
        IMAGE, "sleep", "infinity")


def install(name: str, package: str) -> None:
    # The image carries the .deb files in its apt cache; the rig's network is internal.
    run("podman", "exec", name, "sh", "-c",
        f"apt-get install -y --no-install-recommends {package} >/dev/null 2>&1 || exit 1", timeout=300)


@dataclass
class Group:
    """Clients facing one old-address behaviour with one DNS update latency."""

    variant: str
    latency: float
    clients: list[str]
    dns_at: float | None = None
    syns_at_dns: dict[str, int] = field(default_factory=dict)
    syns_at_change: dict[str, int] = field(default_factory=dict)

    @property
    def old(self) -> str:
        return OLD[self.variant]


def set_hosts(name: str, address: str) -> None:
    # /etc/hosts is a bind mount from podman: rewrite it in place, never rename over it.
    run("podman", "exec", name, "sh", "-c",
        f"printf '127.0.0.1 localhost\\n{address} {SRV_NAME}\\n' > /etc/hosts")


def observe(pid: str) -> list[dict[str, Any]]:
    """ntp-daemon's observation socket (u64 length + JSON, ntpd/src/daemon/sockets.rs
    write_json), read through the container's root; [] while it is not there."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(f"/proc/{pid}/root{OBSERVE}")
            data = b""
            while len(data) < 8 or len(data) < 8 + struct.unpack("!Q", data[:8])[0]:
                chunk = sock.recv(65536)
                if not chunk:
                    return []
                data += chunk
        sources = json.loads(data[8:])["sources"]
        return sources if isinstance(sources, list) else []
    except (OSError, ValueError, KeyError, struct.error):
        return []


def synced_on(pid: str, address: str) -> bool:
    """The source on ``address`` answered its last poll and holds cookies."""
    return any(
        s.get("address", "").startswith(f"{address}:") and s.get("unanswered_polls") == 0
        and (s.get("nts_cookies") or 0) > 0
        for s in observe(pid)
    )


def log_events(name: str, since: float) -> dict[str, Any]:
    """Times (s after ``since``) of the client's failed key exchanges and socket errors."""
    text = run("podman", "exec", name, "cat", "/m/log", check=False)
    failures, socket_errors, naks_logged, new_source = [], [], 0, None
    for line in text.splitlines():
        match = LOG_TIME.match(line)
        if not match:
            continue
        at = datetime.fromisoformat(match.group(1) + "+00:00").timestamp() - since
        if at < 0:
            continue
        if "error while attempting key exchange" in line:
            failures.append(round(at, 2))
        elif "could not be sent" in line or "could not receive" in line:
            socket_errors.append(round(at, 2))
        elif "nts not-acknowledge" in line:
            naks_logged += 1
        elif "new source" in line and NEW in line and new_source is None:
            new_source = round(at, 2)
    return {"ke_failures": failures, "ke_failure_count": len(failures), "socket_errors": socket_errors[:3],
            "naks_logged": naks_logged, "new_source_logged_s": new_source}


def syn_counter(name: str) -> int:
    out = in_netns(name, "nft", "list", "table", "inet", "m", check=False)
    found = re.findall(r"packets (\d+)", out)
    return int(found[0]) if found else -1


def cleanup() -> None:
    names = run("podman", "ps", "-a", "--filter", f"label={LABEL}", "--format", "{{.Names}}",
                check=False).split()
    if names:
        run("podman", "rm", "-f", "-t", "0", *names, check=False)
    run("podman", "network", "rm", "-f", NETWORK, check=False)


def start_chronyd() -> None:
    run("podman", "exec", "-d", f"{PREFIX}srv", "chronyd", "-x", "-u", "root", "-d", "-f", "/m/chrony.conf")


def set_up(args: argparse.Namespace, groups: list[Group], pki: Path) -> str:
    """The network, the server, the old-address host and the clients; the bridge's name."""
    run("sh", str(REPO / "molecule" / "shared" / "make-test-pki.sh"), str(pki), SRV_NAME)
    (pki / "chrony.conf").write_text(CHRONY_CONF)
    (pki / "ntp.toml").write_text(client_toml(args.poll))
    pki.chmod(0o755)
    for path in pki.iterdir():
        path.chmod(0o644)
    mount = ["-v", f"{pki}:/m-ro:ro"]
    run("podman", "network", "create", "--internal", "--subnet", SUBNET, NETWORK)
    bridge = str(json.loads(run("podman", "network", "inspect", NETWORK))[0]["network_interface"])
    srv = f"{PREFIX}srv"
    # The server's own address is NEW and the old ones are secondaries: deleting a
    # primary address also deletes its secondaries (promote_secondaries is off).
    start(srv, NEW, *mount)
    start(f"{PREFIX}old", OLD_HOST)
    clients = [(group, name) for group in groups for name in group.clients]
    for i, (_group, name) in enumerate(clients):
        start(name, f"198.18.4.{20 + i}", "--security-opt", f"seccomp={SECCOMP}", *mount)
    install(srv, "chrony")
    for old in sorted({group.old for group in groups}):
        in_netns(srv, "ip", "addr", "add", f"{old}/24", "dev", "eth0")
    run("podman", "exec", srv, "sh", "-c", "mkdir -p /m /var/lib/chrony /run/chrony && cp /m-ro/* /m/")
    start_chronyd()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda name: install(name, "ntpd-rs"), [name for _group, name in clients]))
    for group, name in clients:
        set_hosts(name, group.old)
        run("podman", "exec", name, "sh", "-c", "mkdir -p /m && cp /m-ro/* /m/")
        # SYNs to the old address, counted where they leave the client's stack (also
        # when ARP fails and nothing reaches the wire).
        in_netns(name, "nft", "add", "table", "inet", "m")
        in_netns(name, "nft", "add", "chain", "inet", "m", "out", "{ type filter hook output priority 0 ; }")
        in_netns(name, "nft", "add", "rule", "inet", "m", "out", "ip", "daddr", group.old, "tcp", "dport", "4460",
                 "tcp", "flags", "&", "(syn|ack)", "==", "syn", "counter")
        run("podman", "exec", "-d", name, "sh", "-c", "exec ntp-daemon -c /m/ntp.toml > /m/log 2>&1")
    return bridge


def wait_steady(args: argparse.Namespace, groups: list[Group], pids: dict[str, str]) -> None:
    """Every client answered on its old address, then three more polls."""
    deadline = time.monotonic() + 3 * 2**args.poll + 120
    while time.monotonic() < deadline:
        if all(synced_on(pids[name], group.old) for group in groups for name in group.clients):
            break
        time.sleep(1)
    else:
        logs = {n: run("podman", "exec", n, "tail", "-3", "/m/log", check=False) for n in pids}
        raise RuntimeError(f"the clients did not synchronise over NTS on the old address: {logs}")
    time.sleep(3 * 2**args.poll)


def make_change(groups: list[Group]) -> float:
    """Take the old addresses away (or change the keys for ``nak``); the moment it took effect."""
    srv, old = f"{PREFIX}srv", f"{PREFIX}old"
    variants = {group.variant for group in groups}
    if variants == {"nak"}:
        # New cookie keys: stop chronyd, drop the keys it saved at exit, start again.
        run("podman", "exec", srv, "sh", "-c", "kill $(cat /run/chrony/chronyd.pid); "
            "for i in $(seq 50); do [ -e /run/chrony/chronyd.pid ] || break; sleep 0.1; done; "
            "rm -f /var/lib/chrony/ntskeys")
        change = time.time()
        start_chronyd()
        return change
    if "dark" in variants:
        in_netns(old, "nft", "add", "table", "inet", "m")
        in_netns(old, "nft", "add", "chain", "inet", "m", "in", "{ type filter hook input priority 0 ; }")
        in_netns(old, "nft", "add", "rule", "inet", "m", "in", "ip", "daddr", OLD["dark"], "drop")
    change = time.time()
    for variant in sorted(variants):
        in_netns(srv, "ip", "addr", "del", f"{OLD[variant]}/24", "dev", "eth0")
        if variant != "unreachable":
            in_netns(old, "ip", "addr", "add", f"{OLD[variant]}/24", "dev", "eth0")
    for group in groups:
        for name in group.clients:
            in_netns(name, "ip", "neigh", "flush", "all")
    return change


def per_client(packets: list[Packet], address: str, old: str, change: float, dns_at: float | None) -> dict[str, Any]:
    def rel(t: float) -> float:
        return round(t - change, 2)

    syns = [p for p in packets if p.kind == "syn" and p.src == address and p.t >= change]
    to_new = [p for p in syns if p.dst == NEW]
    answers = [p for p in packets if p.kind == "ntp-response" and p.dst == address and p.t >= change]
    auth_new = [p for p in answers if p.src == NEW and p.auth]
    stale_syns = [p for p in syns if p.dst == old and (dns_at is None or p.t < change + dns_at)]
    return {
        "address": address,
        "first_syn_s": rel(syns[0].t) if syns else None,
        "first_syn_to_new_s": rel(to_new[0].t) if to_new else None,
        "first_authenticated_from_new_s": rel(auth_new[0].t) if auth_new else None,
        "wire_syns_to_old_while_stale": len(stale_syns),
        "naks_received": sum(1 for p in answers if p.nak),
        "ntp_requests_to_old_after_change": sum(
            1 for p in packets if p.kind == "ntp-request" and p.src == address and p.dst == old and p.t >= change
        ),
    }


def watch(args: argparse.Namespace, groups: list[Group], pids: dict[str, str], change: float) -> float:
    """Move each group's name at its latency; until every client is back or the window ends."""
    everyone = [name for group in groups for name in group.clients]
    recovered: set[str] = set()
    end = time.monotonic() + args.window
    while time.monotonic() < end and len(recovered) < len(everyone):
        for group in groups:
            if group.dns_at is None and time.time() - change >= group.latency:
                group.syns_at_dns = {name: syn_counter(name) for name in group.clients}
                for name in group.clients:
                    set_hosts(name, NEW)
                group.dns_at = round(time.time() - change, 2)
                log(f"{group.variant}/{group.latency:g}: names on the new address at {group.dns_at} s")
        recovered |= {name for name in everyone if name not in recovered and synced_on(pids[name], NEW)}
        time.sleep(0.25)
    watched = round(time.time() - change, 1)
    for group in groups:
        if group.dns_at is None:
            group.syns_at_dns = {name: syn_counter(name) for name in group.clients}
    return watched


def group_result(args: argparse.Namespace, group: Group, packets: list[Packet], addresses: dict[str, str], *,
                 change: float, watched: float) -> dict[str, Any]:
    rows = []
    for name in group.clients:
        row = per_client(packets, addresses[name], group.old, change, group.dns_at)
        before = group.syns_at_change.get(name, 0)
        row["syns_to_old_while_stale"] = group.syns_at_dns.get(name, before) - before
        row["syns_to_old_total"] = syn_counter(name) - before
        row.update(log_events(name, change))
        rows.append(row)
    stale = group.dns_at if group.dns_at is not None else watched
    # ntpd-rs ignores the NAK, so the key change is compared with the unplanned model.
    model_old = "dark" if group.variant == "nak" else group.variant
    # The model gets the moment the names really moved (the rig's update takes time).
    model = recovery_time(
        {"client": "ntpd-rs-1.4", "minpoll": args.poll, "maxpoll": args.poll, "old_address": model_old},
        ttl=0, update_latency=group.dns_at if group.dns_at is not None else group.latency,
    )

    def measured(key: str) -> list[float]:
        return sorted(r[key] for r in rows if r[key] is not None)

    return {
        "variant": group.variant, "latency_s": group.latency, "old_address": group.old,
        "dns_updated_at_s": group.dns_at, "model_old_address": model_old,
        "model_first_reresolution_s": [round(model["reresolve_earliest_s"], 1),
                                       round(model["reresolve_latest_s"], 1)],
        "model_recovery_s": [round(model["recovery_earliest_s"], 1), round(model["recovery_latest_s"], 1)],
        "measured_first_syn_s": measured("first_syn_s"),
        "measured_first_syn_to_new_s": measured("first_syn_to_new_s"),
        "measured_recovery_s": measured("first_authenticated_from_new_s"),
        "not_recovered": sum(1 for r in rows if r["first_authenticated_from_new_s"] is None),
        "syns_per_s_per_client_at_old_while_stale": round(
            sum(max(r["syns_to_old_while_stale"] or 0, 0) for r in rows) / stale / len(rows), 3) if stale else None,
        "per_client": rows,
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    groups, n = [], 0
    for variant in args.variants:
        for latency in args.latencies:
            groups.append(Group(variant, latency, [f"{PREFIX}c{n + i}" for i in range(args.clients)]))
            n += args.clients
    everyone = [name for group in groups for name in group.clients]
    addresses = {name: f"198.18.4.{20 + i}" for i, name in enumerate(everyone)}
    log(f"setting up the server and {len(everyone)} ntpd-rs clients in {len(groups)} groups")
    pki = Path(tempfile.mkdtemp(prefix="ntpdrs-m-"))
    try:
        bridge = set_up(args, groups, pki)
    finally:
        shutil.rmtree(pki, ignore_errors=True)  # the containers hold their own copies
    pids = {name: pid_of(name) for name in everyone}
    veths = [line.split(":")[1].strip().split("@")[0]
             for line in run("ip", "-o", "link", "show", "master", bridge).splitlines() if line.strip()]
    sniffer = Sniffer(veths, [SRV_NAME]).start()
    try:
        log("waiting for every client to synchronise over NTS on its old address")
        wait_steady(args, groups, pids)
        log(f"change: {', '.join(args.variants)}")
        for group in groups:  # the start-up NTS-KE's SYN is not part of the flood
            group.syns_at_change = {name: syn_counter(name) for name in group.clients}
        # Latency 0: the names move just before the change (nobody looks them up while
        # the old address answers), so that no group waits for another's update.
        for group in groups:
            if group.latency == 0:
                group.syns_at_dns = {name: syn_counter(name) for name in group.clients}
                for name in group.clients:
                    set_hosts(name, NEW)
        change = make_change(groups)
        for group in groups:
            if group.latency == 0:
                group.dns_at = 0.0
        watched = watch(args, groups, pids, change)
        time.sleep(1)
    finally:
        packets = sniffer.stop()
    return {
        "client": "ntpd-rs 1.4.0 (Debian 13)", "server": "chronyd 4.6.1", "poll": args.poll,
        "clients_per_group": args.clients, "window_s": args.window, "watched_s": watched,
        "date": datetime.fromtimestamp(change).astimezone().isoformat(timespec="seconds"),
        "groups": [group_result(args, group, packets, addresses, change=change, watched=watched) for group in groups],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=["refused"],
                        help="old-address behaviours measured side by side (nak only alone)")
    parser.add_argument("--latencies", nargs="+", type=float, default=[0.0],
                        help="s from the change to the names moving, one client group each")
    parser.add_argument("--poll", type=int, default=3, help="the clients' fixed poll exponent")
    parser.add_argument("--clients", type=int, default=4, help="clients per group (variant x latency)")
    parser.add_argument("--window", type=float, default=400.0, help="longest watch after the change, s")
    parser.add_argument("--json", type=Path, help="also write the result to this file")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root (podman, nsenter, AF_PACKET)", file=sys.stderr)
        return 2
    groups = len(set(args.variants)) * len(set(args.latencies)) * args.clients
    if "nak" in args.variants and len(set(args.variants)) > 1:
        print("--variants nak changes the server's keys for every client: measure it alone", file=sys.stderr)
        return 2
    if (not 1 <= groups <= 40 or not 0 <= args.poll <= 10 or args.window <= 0 or min(args.latencies) < 0
            or len(set(args.variants)) != len(args.variants) or len(set(args.latencies)) != len(args.latencies)):
        print("at most 40 clients in all, --poll 0..10, --window > 0, distinct --variants and --latencies >= 0",
              file=sys.stderr)
        return 2
    # A background job ignores SIGINT: end on SIGTERM through the clean-up too.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    cleanup()
    try:
        result = measure(args)
    finally:
        cleanup()
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0 if all(group["not_recovered"] == 0 for group in result["groups"]) else 1


if __name__ == "__main__":
    sys.exit(main())
