# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Measure real ntpd-rs 1.4.0 clients following an address change, next to the model.

The rig (podman network ``ntsops-ntpdrs-measure``, 198.18.4.0/24, internal; Debian 13
image from scripts/build-image.sh, packages installed from its apt cache, no
container gets CAP_SYS_TIME):

* ``ntpdrs-m-srv``: chronyd 4.6.1 (``-x``, local stratum 8) as NTS server on
  198.18.4.10 (the old address) and 198.18.4.11 (the new one).
* ``ntpdrs-m-old``: 198.18.4.9; at the change it takes over 198.18.4.10 with an
  nftables counter of the NTS-KE SYNs sent to it, and for ``dark`` a rule dropping
  everything sent to it; for ``refused`` nothing listens there (TCP RST).
* ``ntpdrs-m-cN``: ntpd-rs clients (``ntp-daemon``) with one NTS source ``ntp.m.test``,
  poll fixed at 2^P s, run with molecule/ntpd-rs/seccomp-clock-noop.json so that
  their clock steering is a no-op (ntp-daemon exits when it cannot steer).

The name is resolved from each client's /etc/hosts (glibc reads it on every lookup,
as ntp-daemon's NTS-KE does on every attempt): "DNS" is fresh at once (TTL 0) and the
update latency is chosen. At the change chronyd loses 198.18.4.10: with ``unreachable``
nobody takes it (ARP fails, sends fail with EHOSTUNREACH); with ``dark``/``refused``
ntpdrs-m-old takes it. The names move to 198.18.4.11 ``--latency`` s after the change.

Per client: the first NTS-KE attempt after the change and the last one to the old
address (ntp-daemon's "error while attempting key exchange" lines), the source
created on the new address ("new source" with 198.18.4.11) and the first answered
poll seen there (``ntp-ctl status`` polled every 0.5 s: unanswered polls 0). The
model's interval (plugins/module_utils/_model/recovery.py recovery_time) is printed
next to them, and the old address's SYN count per second of stale DNS.

Run as root: ``python3 benchmarks/ntpdrs_recovery.py --variant dark --latency 120``
(wrap it in ``flock /tmp/ntsops-integration.lock``). Every container and the network
are removed at the end, also on failure; every wait is bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / ".collections"))

from ansible_collections.ntsops.nts.plugins.module_utils._model.recovery import (
    recovery_time,
)

IMAGE = "localhost/ntsops/debian13-systemd:latest"
NETWORK = "ntsops-ntpdrs-measure"
SUBNET = "198.18.4.0/24"
OLD, NEW, OLD_HOST, SRV_NAME = "198.18.4.10", "198.18.4.11", "198.18.4.9", "ntp.m.test"
SECCOMP = REPO / "molecule" / "ntpd-rs" / "seccomp-clock-noop.json"
PREFIX = "ntpdrs-m-"
ENV = {**os.environ, "CONTAINERS_CONF": str(REPO / "molecule" / "containers.conf")}
COOKIES = re.compile(r"(?m)^ntp_source_nts_cookies_available\{[^}]*\} [1-9]")
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z")

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


def pid_of(container: str) -> str:
    return run("podman", "inspect", "--format", "{{.State.Pid}}", container).strip()


def in_netns(container: str, *argv: str, check: bool = True) -> str:
    return run("nsenter", "-t", pid_of(container), "-n", *argv, check=check)


def client_toml(poll: int) -> str:
    return f"""[observability]
log-level = "info"
ansi-colors = false
observation-path = "/run/ntp-observe"

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
        "--cap-drop", "SYS_TIME", "--label", "owner=ntsops-ntpdrs-measure", "--pull", "never", *extra,
        IMAGE, "sleep", "infinity")


def install(name: str, package: str) -> None:
    run("podman", "exec", name, "sh", "-c",
        f"apt-get install -y --no-install-recommends {package} >/dev/null 2>&1 || exit 1", timeout=300)


def set_hosts(name: str, address: str) -> None:
    # /etc/hosts is a bind mount from podman: rewrite it in place, never rename over it.
    run("podman", "exec", name, "sh", "-c",
        f"printf '127.0.0.1 localhost\\n{address} {SRV_NAME}\\n' > /etc/hosts")


def log_events(name: str, since: float) -> dict[str, Any]:
    """Times (s after ``since``) of the client's KE failures and of its source on NEW."""
    text = run("podman", "exec", name, "cat", "/m/log", check=False)
    failures, new_source, send_errors = [], None, []
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
            send_errors.append(round(at, 2))
        elif "new source" in line and NEW in line and new_source is None:
            new_source = round(at, 2)
    return {"ke_failures": failures, "new_source": new_source, "socket_errors": send_errors[:3]}


def answered_on_new(name: str) -> bool:
    out = run("podman", "exec", name, "ntp-ctl", "-c", "/m/ntp.toml", "status", "-f", "prometheus", check=False)
    for line in out.splitlines():
        if line.startswith("ntp_source_unanswered_polls{") and NEW in line:
            return line.rsplit(" ", 1)[1] == "0"
    return False


def cleanup() -> None:
    names = run("podman", "ps", "-a", "--filter", "label=owner=ntsops-ntpdrs-measure", "--format", "{{.Names}}",
                check=False).split()
    if names:
        run("podman", "rm", "-f", "-t", "0", *names, check=False)
    run("podman", "network", "rm", "-f", NETWORK, check=False)


def set_up(args: argparse.Namespace, clients: list[str]) -> None:
    """The network, the server, the old-address host and the clients, steady on OLD."""
    pki = Path(tempfile.mkdtemp(prefix="ntpdrs-m-"))
    run("sh", str(REPO / "molecule" / "shared" / "make-test-pki.sh"), str(pki), SRV_NAME)
    (pki / "chrony.conf").write_text(CHRONY_CONF)
    (pki / "ntp.toml").write_text(client_toml(args.poll))
    for path in pki.iterdir():
        path.chmod(0o644)
    mount = ["-v", f"{pki}:/m-ro:ro"]
    run("podman", "network", "create", "--internal", "--subnet", SUBNET, NETWORK)
    start(f"{PREFIX}srv", OLD, *mount)
    start(f"{PREFIX}old", OLD_HOST)
    for i, name in enumerate(clients):
        start(name, f"198.18.4.{20 + i}", "--security-opt", f"seccomp={SECCOMP}", *mount)
    install(f"{PREFIX}srv", "chrony")
    in_netns(f"{PREFIX}srv", "ip", "addr", "add", f"{NEW}/24", "dev", "eth0")
    run("podman", "exec", f"{PREFIX}srv", "sh", "-c", "mkdir -p /m && cp /m-ro/* /m/")
    run("podman", "exec", "-d", f"{PREFIX}srv", "chronyd", "-x", "-u", "root", "-d", "-f", "/m/chrony.conf")
    for name in clients:
        install(name, "ntpd-rs")
        set_hosts(name, OLD)
        run("podman", "exec", name, "sh", "-c", "mkdir -p /m && cp /m-ro/* /m/")
        run("podman", "exec", "-d", name, "sh", "-c", "exec ntp-daemon -c /m/ntp.toml > /m/log 2>&1")
    # Steady: every client answered on the old address for a few polls.
    deadline = time.monotonic() + 8 * 2**args.poll + 60
    while time.monotonic() < deadline:
        if all(
            COOKIES.search(run("podman", "exec", n, "ntp-ctl", "-c", "/m/ntp.toml", "status", "-f", "prometheus",
                               check=False))
            for n in clients
        ):
            break
        time.sleep(1)
    else:
        raise RuntimeError("the clients did not get NTS cookies from the old address")
    time.sleep(3 * 2**args.poll)


def make_change(variant: str, clients: list[str]) -> float:
    """Take OLD from the server (to the old-address host unless unreachable); its time."""
    old = f"{PREFIX}old"
    in_netns(old, "nft", "add", "table", "inet", "m")
    in_netns(old, "nft", "add", "chain", "inet", "m", "in", "{ type filter hook input priority 0 ; }")
    in_netns(old, "nft", "add", "rule", "inet", "m", "in", "ip", "daddr", OLD, "tcp", "dport", "4460",
             "tcp", "flags", "syn", "counter")
    if variant == "dark":
        in_netns(old, "nft", "add", "rule", "inet", "m", "in", "ip", "daddr", OLD, "drop")
    change = time.time()
    in_netns(f"{PREFIX}srv", "ip", "addr", "del", f"{OLD}/24", "dev", "eth0")
    if variant != "unreachable":
        in_netns(old, "ip", "addr", "add", f"{OLD}/24", "dev", "eth0")
    for name in clients:
        in_netns(name, "ip", "neigh", "flush", "all")
    return change


def measure(args: argparse.Namespace) -> dict[str, Any]:
    clients = [f"{PREFIX}c{i}" for i in range(args.clients)]
    set_up(args, clients)
    change = make_change(args.variant, clients)
    old = f"{PREFIX}old"
    updated, dns_at = False, 0.0
    answered: dict[str, float] = {}
    end = time.monotonic() + args.window
    while time.monotonic() < end and len(answered) < len(clients):
        now = time.time() - change
        if not updated and now >= args.latency:
            for name in clients:
                set_hosts(name, NEW)
            updated, dns_at = True, now
        for name in clients:
            if name not in answered and answered_on_new(name):
                answered[name] = round(time.time() - change, 2)
        time.sleep(0.5)
    syns = int(re.findall(r"packets (\d+)", in_netns(old, "nft", "list", "table", "inet", "m"))[0])
    results = []
    for name in clients:
        events = log_events(name, change)
        events["answered_on_new"] = answered.get(name)
        results.append(events)
    model = recovery_time(
        {"client": "ntpd-rs-1.4", "minpoll": args.poll, "maxpoll": args.poll, "old_address": args.variant},
        ttl=0, update_latency=args.latency,
    )
    return {
        "variant": args.variant, "poll": args.poll, "latency_s": args.latency,
        "dns_updated_at_s": round(dns_at, 2) if updated else None,
        "model_recovery_s": [round(model["recovery_earliest_s"], 1), round(model["recovery_latest_s"], 1)],
        "model_first_reresolution_s": [round(model["reresolve_earliest_s"], 1),
                                       round(model["reresolve_latest_s"], 1)],
        "old_address_syns": syns, "clients": results,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=["unreachable", "dark", "refused"], default="refused")
    parser.add_argument("--latency", type=float, default=0.0, help="s from the change to the name moving")
    parser.add_argument("--poll", type=int, default=3, help="the clients' fixed poll exponent")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--window", type=float, default=400.0, help="longest watch after the change, s")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root (podman, nsenter)", file=sys.stderr)
        return 2
    cleanup()
    try:
        print(json.dumps(measure(args), indent=1))
    finally:
        cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
