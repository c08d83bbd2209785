# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Measure the recovery model against real Debian 13 clients (chrony 4.6.1, NTPsec 1.2.3).

The rig (all on the podman network ``d13-measure``, 198.18.2.0/24, internal):

* ``d13m-dns``: BIND ``named`` (the lab image) serving ``d13.test`` with
  ``ntp.d13.test`` at the old address and a short TTL; updated with ``nsupdate -l``.
* ``d13m-srv``: a chrony 4.6.1 NTS server (Debian 13 image, ``chronyd -x``, no
  CAP_SYS_TIME) on the old address 198.18.2.10; at the change the new address
  198.18.2.11 is added to its interface and the old one removed, so the old address
  goes dark (packets to it are dropped) while chronyd keeps serving on the new one.
* one container per client (Debian 13 image, no CAP_SYS_TIME): ``chronyd -4 -x``
  4.6.1 or ``ntpd`` 1.2.3, each resolving the name through ``d13m-dns``. One client
  per container gives every client its own address, so every DNS query, NTS-KE
  connection and NTP packet on the bridge names its client (benchmarks/d13_sniff.py).

Per client it measures, relative to the change: the re-resolutions (DNS queries from
that client and what they were answered), the first NTS-KE SYN to the new address,
the first authenticated (NTS authenticator, not a NAK) NTP response from the new
address, and when the source is selectable again (chronyd's "Selected source" log
line; NTPsec's peerstats select code). It prints each next to the recovery model's
interval (plugins/module_utils/_model/recovery.py) for the same poll, TTL and
measured DNS update latency.

Modes: ``fresh`` updates DNS at the change. ``late`` updates DNS only after every
client has looked the name up again (and got the old address); then it watches
``--window`` seconds. For chrony 4.4+ each gap between two lookups of one client is
one draw of ``ntp_sources.c`` ``NSR_HandleBadSource()``'s postponement plus the wait
for the next poll; gaps still open at the end are censored. The empirical
distribution is compared with the model's (KS statistic against U[0, 3584 s] with a
Monte Carlo p-value that applies the same censoring, and quantiles side by side).

Run as root (podman, AF_PACKET, nsenter): ``make bench-recovery-d13`` (fresh) and
``make bench-recovery-d13-late``. Every container is removed at the end, also on
failure; every wait is bounded.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / ".collections"))
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.append(str(REPO / "tests" / "integration"))

from ansible_collections.ntsops.nts.plugins.module_utils._model import recovery
from ansible_collections.ntsops.nts.plugins.module_utils._model.clients import (
    CHRONY_44_REPLACEMENT_POSTPONE_MAX_S,
    CHRONY_POLL_JITTER,
)
from d13_sniff import Packet, Sniffer
from harness.ca import TestCA

RESULTS = REPO / "benchmarks" / "results"
NETWORK = "d13-measure"
SUBNET = "198.18.2.0/24"
GATEWAY = "198.18.2.1"
DNS_IP = "198.18.2.2"
OLD_IP = "198.18.2.10"
NEW_IP = "198.18.2.11"
CLIENT_BASE = 100  # clients at 198.18.2.100 and up
MAX_CLIENTS = 150
ZONE = "d13.test"
NAME = f"ntp.{ZONE}"  # the fresh-DNS clients' server name
LATE_NAME = f"late.{ZONE}"  # the late-DNS clients' name: same server, updated later
PREFIX = "d13m-"
D13_IMAGE = "localhost/ntsops/debian13-systemd:latest"
DNS_IMAGE = "localhost/ntsops/lab:latest"  # Debian 12 with BIND (scripts/lab/Containerfile)
CONTAINERS_CONF = REPO / "molecule" / "containers.conf"
# Full reachability register and more: a client that had this many authenticated
# responses from the old address holds all its cookies (8) and a full register.
PREFLIGHT_RESPONSES = 10
PREFLIGHT_TIMEOUT_S = 240.0
STEADY_INTERVALS = 4
# Lookups of one client closer than this are one re-resolution (A retries).
LOOKUP_CLUSTER_S = 0.5
MONTE_CARLO_RUNS = 20000
# NTPsec peerstats select codes (include/ntp_control.h CTL_PST_SEL_*): 4 candidate,
# 5 backup, 6 system peer, 7 PPS peer. 4 and above passed selection.
NTPSEC_SEL_SELECTABLE = 4


def log(message: str) -> None:
    print(f"[d13 {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(argv: Sequence[str], timeout: float = 120.0, check: bool = True, stderr: bool = False) -> str:
    """Run argv; its stdout (and stderr with ``stderr``: `podman logs` replays a daemon's stderr there)."""
    env = dict(os.environ, CONTAINERS_CONF=str(CONTAINERS_CONF))
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False, env=env)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout + done.stderr if stderr else done.stdout


# ------------------------------------------------------------------ configuration


def write_configs(conf: Path, args: argparse.Namespace) -> None:
    # named reads its configuration after dropping to user bind.
    conf.chmod(0o755)
    ca = TestCA(conf / "ca", "ntsops d13 rig CA")
    cert = ca.issue("server", dns=[NAME, LATE_NAME])
    shutil.copy(ca.cert_path, conf / "ca.pem")
    shutil.copy(cert.chain_path, conf / "server.crt")
    shutil.copy(cert.key_path, conf / "server.key")
    (conf / "named.conf").write_text(
        "options {\n"
        '  directory "/var/cache/bind";\n'
        f"  listen-on {{ {DNS_IP}; 127.0.0.1; }};\n"
        "  listen-on-v6 { none; };\n"
        "  recursion no;\n"
        "  allow-query { any; };\n"
        "  dnssec-validation no;\n"
        '  pid-file "/run/named/named.pid";\n'
        '  session-keyfile "/run/named/session.key";\n'
        "};\n"
        f'zone "{ZONE}" {{ type primary; file "/var/cache/bind/{ZONE}.zone"; update-policy local; }};\n'
    )
    (conf / f"{ZONE}.zone").write_text(
        f"$TTL {args.ttl}\n"
        f"@ IN SOA ns.{ZONE}. hostmaster.{ZONE}. 1 60 60 3600 {args.ttl}\n"
        f"@ IN NS ns.{ZONE}.\n"
        f"ns IN A {DNS_IP}\n"
        f"ntp IN A {OLD_IP}\n"
        f"late IN A {OLD_IP}\n"
    )
    common = [
        "cmdport 0",
        "bindcmdaddress /run/chrony/chronyd.sock",
        "pidfile /run/chronyd.pid",
        "driftfile /run/chrony.drift",
    ]
    (conf / "server.conf").write_text(
        "\n".join(
            [
                *common,
                "local stratum 5",
                "allow all",
                "ntsservercert /conf/server.crt",
                "ntsserverkey /conf/server.key",
                "ntsdumpdir /var/lib/chrony",
            ]
        )
        + "\n"
    )
    for group, name in (("fresh", NAME), ("late", LATE_NAME)):
        (conf / f"chrony-{group}.conf").write_text(
            "\n".join(
                [
                    *common,
                    f"server {name} iburst nts minpoll {args.chrony_poll} maxpoll {args.chrony_poll}",
                    "ntstrustedcerts /conf/ca.pem",
                ]
            )
            + "\n"
        )
        (conf / f"ntpsec-{group}.conf").write_text(
            "\n".join(
                [
                    f"server {name} nts iburst minpoll {args.ntpsec_poll} maxpoll {args.ntpsec_poll}",
                    "nts ca /conf/ca.pem",
                    "disable kernel",  # no CAP_SYS_TIME anyway; keep ntpd from trying
                    "driftfile /run/ntp.drift",
                    "statsdir /run/ntpstats/",
                    "statistics peerstats",
                    "filegen peerstats file peerstats type none enable",
                ]
            )
            + "\n"
        )


# ------------------------------------------------------------------ containers


@dataclass
class Client:
    name: str
    kind: str  # chrony or ntpsec
    ip: str
    poll: int
    group: str  # fresh or late


# From the image's apt cache (the network is internal); /run/chrony for chronyd's socket.
INSTALL = (
    "mkdir -p -m 0700 /run/chrony; apt-get install -y -q --no-download {pkg} >/tmp/install.log 2>&1 "
    "|| {{ cat /tmp/install.log; exit 1; }}; "
)


def container_argv(client: Client | None, conf: Path, script: str, extra: Sequence[str] = ()) -> list[str]:
    name, ip = (client.name, client.ip) if client else (PREFIX + "srv", OLD_IP)
    return [
        "podman",
        "run",
        "-d",
        "--name",
        name,
        "--network",
        NETWORK,
        "--ip",
        ip,
        "--dns",
        DNS_IP,
        "--cap-drop",
        "SYS_TIME",
        "--volume",
        f"{conf}:/conf:ro",
        *extra,
        D13_IMAGE,
        "sh",
        "-c",
        script,
    ]


def start_rig(conf: Path, clients: list[Client]) -> None:
    run(
        [
            "podman",
            "run",
            "-d",
            "--name",
            PREFIX + "dns",
            "--network",
            NETWORK,
            "--ip",
            DNS_IP,
            "--volume",
            f"{conf}:/conf:ro",
            DNS_IMAGE,
            "sh",
            "-c",
            f"mkdir -p /run/named && chown bind:bind /run/named && cp /conf/{ZONE}.zone /var/cache/bind/ && "
            "chown -R bind:bind /var/cache/bind && exec named -g -u bind -c /conf/named.conf",
        ]
    )
    run(
        container_argv(
            None,
            conf,
            INSTALL.format(pkg="chrony") + "exec chronyd -d -x -u root -f /conf/server.conf",
            ["--cap-add", "NET_ADMIN"],
        )
    )

    def script(c: Client) -> str:
        if c.kind == "chrony":
            return INSTALL.format(pkg="chrony") + f"exec chronyd -4 -d -x -u root -f /conf/chrony-{c.group}.conf"
        return (
            INSTALL.format(pkg="ntpsec") + "mkdir -p /run/ntpstats && "
            f"exec ntpd -n -c /conf/ntpsec-{c.group}.conf -l /run/ntpd.log"
        )

    wait_dns_and_server()
    # Three at a time: podman run is mostly waiting on the runtime, the apt install is CPU.
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(lambda c: run(container_argv(c, conf, script(c))), clients))


def wait_dns_and_server(timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        srv = run(["podman", "logs", PREFIX + "srv"], check=False, stderr=True)
        dig = run(["podman", "exec", PREFIX + "dns", "dig", "+short", f"@{DNS_IP}", NAME], check=False)
        if "chronyd version" in srv and OLD_IP in dig:
            return
        time.sleep(1)
    server_log = run(["podman", "logs", PREFIX + "srv"], check=False, stderr=True)
    raise RuntimeError(f"DNS or server not up in {timeout:g} s:\n{server_log}")


def remove_rig() -> None:
    names = run(["podman", "ps", "-a", "--format", "{{.Names}}"], check=False).split()
    mine = [n for n in names if n.startswith(PREFIX)]
    if mine:
        run(["podman", "rm", "-f", "-t", "2", *mine], timeout=300, check=False)


def ensure_network() -> str:
    exists = subprocess.run(
        ["podman", "network", "exists", NETWORK],
        check=False,
        env=dict(os.environ, CONTAINERS_CONF=str(CONTAINERS_CONF)),
    )
    if exists.returncode != 0:
        run(["podman", "network", "create", "--internal", "--subnet", SUBNET, "--gateway", GATEWAY, NETWORK])
    data = json.loads(run(["podman", "network", "inspect", NETWORK]))
    return str(data[0]["network_interface"])


def veths(bridge: str) -> list[str]:
    out = run(["ip", "-o", "link", "show", "master", bridge])
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if line.strip()]


def server_pid() -> int:
    return int(run(["podman", "inspect", "--format", "{{.State.Pid}}", PREFIX + "srv"]).strip())


def nsupdate(ttl: int, name: str) -> None:
    script = f"update delete {name} A\nupdate add {name} {ttl} A {NEW_IP}\nsend\n"
    env = dict(os.environ, CONTAINERS_CONF=str(CONTAINERS_CONF))
    subprocess.run(
        ["podman", "exec", "-i", PREFIX + "dns", "nsupdate", "-l"],
        input=script,
        text=True,
        capture_output=True,
        timeout=30,
        check=True,
        env=env,
    )


# ------------------------------------------------------------------ measurement


def responses_from(packets: list[Packet], server: str, client_ip: str) -> list[Packet]:
    return [p for p in packets if p.kind == "ntp-response" and p.src == server and p.dst == client_ip]


def steady(packets: list[Packet], client: Client) -> bool:
    """Synchronised over NTS (PREFLIGHT_RESPONSES authenticated responses) and past the
    iburst: the last STEADY_INTERVALS request intervals are at least 0.9 poll."""
    good = sum(1 for p in responses_from(packets, OLD_IP, client.ip) if p.auth and not p.nak)
    sent = [p.t for p in packets if p.kind == "ntp-request" and p.src == client.ip]
    gaps = [b - a for a, b in itertools.pairwise(sent)][-STEADY_INTERVALS:]
    return good >= PREFLIGHT_RESPONSES and len(gaps) == STEADY_INTERVALS and min(gaps) >= 0.9 * 2.0**client.poll


def preflight(sniffer: Sniffer, clients: list[Client]) -> None:
    deadline = time.monotonic() + PREFLIGHT_TIMEOUT_S + 12 * 2 ** max(c.poll for c in clients)
    while time.monotonic() < deadline:
        packets = list(sniffer.packets)
        behind = [c.name for c in clients if not steady(packets, c)]
        if not behind:
            return
        time.sleep(1)
    raise RuntimeError(f"clients not synchronised over NTS in time: {behind}")


def lookups(packets: list[Packet], ip: str, after: float) -> list[dict[str, Any]]:
    """Re-resolutions of one client after ``after``: query time and the A records it got."""
    out: list[dict[str, Any]] = []
    queries = [p for p in packets if p.kind == "dns-query" and p.src == ip and p.t > after]
    answers = [p for p in packets if p.kind == "dns-answer" and p.dst == ip and p.t > after]
    for query in queries:
        got = [a for a in answers if a.dport == query.sport and a.t >= query.t]
        addrs = got[0].answer if got else ()
        if out and query.t - out[-1]["t"] < LOOKUP_CLUSTER_S:
            out[-1]["answer"] = sorted(set(out[-1]["answer"]) | set(addrs))
            continue
        out.append({"t": query.t, "answer": sorted(addrs)})
    return out


def chrony_selected(name: str) -> list[float]:
    """Times chronyd logged "Selected source <new address>" (conmon's line timestamps)."""
    out = run(["podman", "logs", "-t", name], check=False, stderr=True)
    times = []
    for line in out.splitlines():
        if f"Selected source {NEW_IP}" in line:
            stamp = line.split()[0]
            times.append(parse_rfc3339(stamp))
    return times


def parse_rfc3339(stamp: str) -> float:
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", stamp)
    if not match:
        raise ValueError(stamp)
    base = datetime.fromisoformat(match.group(1) + (match.group(3).replace("Z", "+00:00")))
    frac = float("0." + match.group(2)) if match.group(2) else 0.0
    return base.timestamp() + frac


def ntpsec_peerstats(name: str) -> list[tuple[float, str, int]]:
    """(time, address, select code) of every peerstats record (MJD, seconds of day, 3 decimals)."""
    out = run(["podman", "exec", name, "sh", "-c", "cat /run/ntpstats/peerstats* 2>/dev/null"], check=False)
    rows = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        mjd, sod, addr, status = int(parts[0]), float(parts[1]), parts[2], int(parts[3], 16)
        t = (mjd - 40587) * 86400.0 + sod
        rows.append((t, addr, (status >> 8) & 0x7))
    return rows


def client_logs(client: Client) -> dict[str, Any]:
    """What the client itself says: chronyd's selection log lines, NTPsec's peerstats."""
    if client.kind == "chrony":
        return {"selected": chrony_selected(client.name)}
    return {"peerstats": ntpsec_peerstats(client.name)}


def measure_client(
    client: Client, packets: list[Packet], logs: dict[str, Any], t_change: float, t_dns: float
) -> dict[str, Any]:
    p_s = 2.0**client.poll
    mine_req = [p for p in packets if p.kind == "ntp-request" and p.src == client.ip]
    before = [p.t for p in mine_req if p.t < t_change]
    gaps = [b - a for a, b in itertools.pairwise(before)][-8:]
    first_lost = next((p.t for p in mine_req if p.t >= t_change and p.dst == OLD_IP), None)
    looks = lookups(packets, client.ip, t_change)
    ke_new = next((p.t for p in packets if p.kind == "syn" and p.src == client.ip and p.dst == NEW_IP), None)
    auth = next((p.t for p in responses_from(packets, NEW_IP, client.ip) if p.auth and not p.nak), None)
    if client.kind == "chrony":
        selected = [t for t in logs["selected"] if t > t_change]
        selectable = selected[0] if selected else None
    else:
        # ntp_proto.c clock_filter() writes the peerstats record (with the status of the
        # last clock_select()) before it calls clock_select() for this sample: the first
        # record showing the source selectable was made selectable by the sample before.
        rows = [r for r in logs["peerstats"] if r[0] > t_change and r[1] == NEW_IP]
        first = next((i for i, (_t, _a, sel) in enumerate(rows) if sel >= NTPSEC_SEL_SELECTABLE), None)
        selectable = None if first is None else rows[max(first - 1, 0)][0]
    new_lookup = next((lk["t"] for lk in looks if NEW_IP in lk["answer"]), None)
    new_responses = [p.t for p in responses_from(packets, NEW_IP, client.ip) if p.auth and not p.nak][:6]
    stats_rows = []
    if client.kind == "ntpsec":
        stats_rows = [[round(t - t_change, 3), a, sel] for t, a, sel in logs["peerstats"] if t > t_change - 3 * p_s][
            :12
        ]

    def rel(t: float | None) -> float | None:
        return None if t is None else round(t - t_change, 3)

    return {
        "client": client.name,
        "kind": client.kind,
        "group": client.group,
        "poll": client.poll,
        "measured_poll_s": round(statistics.median(gaps), 3) if gaps else None,
        "u_s": rel(first_lost),
        "lookups": [{"t_s": rel(lk["t"]), "answer": lk["answer"]} for lk in looks],
        "reresolution_s": rel(looks[0]["t"]) if looks else None,
        "new_address_lookup_s": rel(new_lookup),
        "ke_new_s": rel(ke_new),
        "first_auth_s": rel(auth),
        "selectable_s": rel(selectable),
        "dns_fresh_s": rel(t_dns),
        "new_responses_s": [rel(t) for t in new_responses],
        "peerstats": stats_rows,
        "polls": {
            k: (None if v is None else round((v - t_change) / p_s, 3))
            for k, v in (
                ("reresolution", looks[0]["t"] if looks else None),
                ("ke_new", ke_new),
                ("first_auth", auth),
                ("selectable", selectable),
            )
        },
    }


def wait_for(predicate: Any, timeout: float, step: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


# ------------------------------------------------------------------ model side


MODEL_KIND = {"chrony": "chrony-4.4+", "ntpsec": "ntpsec-1.2"}


def model_for(kind: str, poll: int, ttl: float, latency: float) -> dict[str, Any]:
    return recovery.recovery_time({"client": MODEL_KIND[kind], "minpoll": poll, "maxpoll": poll}, ttl, latency)


def within(value: float | None, low: float, high: float) -> bool:
    return value is not None and low - 1e-6 <= value <= high + 1e-6


def quantiles(values: Sequence[float], qs: Sequence[float] = (0.1, 0.25, 0.5, 0.75, 0.9)) -> list[float | None]:
    if not values:
        return [None for _q in qs]
    ordered = sorted(values)
    return [round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2) for q in qs]


def postponement_cdf(cdf_max: float, poll_s: float) -> Callable[[float], float]:
    """CDF of one lookup gap in the model: U[0, cdf_max] (ntp_sources.c NSR_HandleBadSource()'s
    postponement) plus the wait for the next poll, U[0, poll_s * (1 + chrony jitter)]."""
    a, b = cdf_max, poll_s * (1 + CHRONY_POLL_JITTER)

    def cdf(x: float) -> float:
        # Convolution of U[0, a] and U[0, b] with b < a.
        if x <= 0:
            return 0.0
        if x < b:
            return x * x / (2 * a * b)
        if x <= a:
            return (x - b / 2) / a
        if x < a + b:
            return 1 - (a + b - x) ** 2 / (2 * a * b)
        return 1.0

    return cdf


@dataclass(frozen=True)
class LateClient:
    """One late-DNS chrony client's stale lookups: (duration, True if the next lookup was seen)."""

    first_lookup_s: float
    spells: tuple[tuple[float, bool], ...]


def late_clients(rows: list[dict[str, Any]], t_end_rel: float) -> list[LateClient]:
    """Each chrony client's gaps after stale lookups; the last one is censored when the
    watch ended before the next lookup."""
    found = []
    for row in rows:
        looks = row["lookups"]
        if not looks or NEW_IP in looks[0]["answer"]:
            continue
        spells: list[tuple[float, bool]] = []
        for a, b in itertools.pairwise(looks):
            if NEW_IP not in a["answer"]:
                spells.append((b["t_s"] - a["t_s"], True))
        if NEW_IP not in looks[-1]["answer"]:
            spells.append((t_end_rel - looks[-1]["t_s"], False))
        found.append(LateClient(looks[0]["t_s"], tuple(spells)))
    return found


def kaplan_meier(spells: Sequence[tuple[float, bool]]) -> list[tuple[float, float]]:
    """(x, estimated P(gap <= x)) at each observed gap, from right-censored spells."""
    ordered = sorted(spells, key=lambda spell: (spell[0], not spell[1]))
    at_risk, survival, steps = len(ordered), 1.0, []
    for duration, seen in ordered:
        if seen:
            survival *= 1 - 1 / at_risk
            steps.append((duration, 1 - survival))
        at_risk -= 1
    return steps


def km_distance(spells: Sequence[tuple[float, bool]], cdf: Callable[[float], float], tau: float) -> float:
    """sup over x <= tau of |KM estimate - model CDF| (checked on both sides of each step)."""
    d, before = 0.0, 0.0
    for x, after in kaplan_meier(spells):
        if x > tau:
            break
        d = max(d, abs(before - cdf(x)), abs(after - cdf(x)))
        before = after
    return max(d, abs(before - cdf(tau)))


def late_postponement_fit(
    clients: list[LateClient], t_end_rel: float, t_fresh_rel: float, cdf_max: float, poll_s: float
) -> dict[str, Any]:
    """The measured distribution of chrony 4.4+'s lookup gaps next to the model's.

    Kaplan-Meier estimate of P(gap <= x) from every stale lookup (a gap still open at
    the end is right-censored), compared with the model's CDF up to ``tau``, the
    shortest time any client was watched after its first stale lookup. The p-value is
    the share of Monte Carlo runs of the model with a larger distance; each run replays
    every client from its own first lookup with the same end of watch and the same
    moment DNS became fresh, so the censoring is the measurement's.
    """
    if not clients:
        return {"clients": 0}
    cdf = postponement_cdf(cdf_max, poll_s)
    spells = [spell for client in clients for spell in client.spells]
    tau = min(t_end_rel - client.first_lookup_s for client in clients)
    observed = km_distance(spells, cdf, tau)
    rng = random.Random(12)  # noqa: S311 - a fixed seed keeps the p-value reproducible; no secrets
    wait = poll_s * (1 + CHRONY_POLL_JITTER)
    worse = 0
    for _run in range(MONTE_CARLO_RUNS):
        simulated: list[tuple[float, bool]] = []
        for client in clients:
            at = client.first_lookup_s
            for _lookup in range(1000):
                gap = rng.uniform(0, cdf_max) + rng.uniform(0, wait)
                if at + gap > t_end_rel:
                    simulated.append((t_end_rel - at, False))
                    break
                simulated.append((gap, True))
                at += gap
                if at >= t_fresh_rel:
                    break
        if km_distance(simulated, cdf, tau) >= observed:
            worse += 1
    steps = kaplan_meier(spells)

    def measured_at(x: float) -> float:
        return next((p for at, p in reversed(steps) if at <= x), 0.0)

    points = [round(tau * f) for f in (0.125, 0.25, 0.5, 1.0)]
    return {
        "clients": len(clients),
        "stale_lookups": len(spells),
        "gaps_seen": sum(1 for _d, seen in spells if seen),
        "censored": sum(1 for _d, seen in spells if not seen),
        "tau_s": round(tau, 1),
        "ks_d": round(observed, 4),
        "ks_p": round(worse / MONTE_CARLO_RUNS, 4),
        "p_gap_le_x": {f"{x} s": {"measured_km": round(measured_at(x), 4), "model": round(cdf(x), 4)}
                       for x in points},
        "gaps_seen_s": sorted(round(d, 1) for d, seen in spells if seen),
    }


def compare(rows: list[dict[str, Any]], args: argparse.Namespace, latency: float) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for kind in ("chrony", "ntpsec"):
        mine = [r for r in rows if r["kind"] == kind]
        if not mine:
            continue
        poll = mine[0]["poll"]
        model = model_for(kind, poll, args.ttl, latency)
        checks = {
            "reresolution_s": (model["reresolve_earliest_s"], model["reresolve_latest_s"]),
            "first_auth_s": (model["recovery_earliest_s"], model["recovery_latest_s"]),
        }
        if "selectable_earliest_s" in model:
            checks["selectable_s"] = (model["selectable_earliest_s"], model["selectable_latest_s"])
        entry: dict[str, Any] = {
            "model_client": MODEL_KIND[kind],
            "poll": poll,
            "trials": len(mine),
            "dns_update_latency_s": round(latency, 3),
        }
        for key, (low, high) in checks.items():
            values = [r[key] for r in mine if r[key] is not None]
            entry[key] = {
                "n": len(values),
                "missing": len(mine) - len(values),
                "min": round(min(values), 3) if values else None,
                "max": round(max(values), 3) if values else None,
                "quantiles_10_25_50_75_90": quantiles(values),
                "model": [round(low, 3), round(high, 3)],
                "outside": sum(1 for v in values if not within(v, low, high)),
            }
        summary[kind] = entry
    return summary


def print_table(title: str, summary: dict[str, Any], late: dict[str, Any] | None) -> None:
    for entry in summary.values():
        print(
            f"\n{title}: {entry['model_client']} at poll {entry['poll']} ({entry['trials']} clients, "
            f"DNS fresh {entry['dns_update_latency_s']} s after the change)"
        )
        print(f"  {'event':<16} {'n':>3} {'min':>9} {'median':>9} {'max':>9}   model interval        outside")
        for key in ("reresolution_s", "first_auth_s", "selectable_s"):
            if key not in entry:
                continue
            e = entry[key]
            med = e["quantiles_10_25_50_75_90"][2]
            print(
                f"  {key:<16} {e['n']:>3} {e['min']!s:>9} {med!s:>9} {e['max']!s:>9}   "
                f"{e['model'][0]:>9.3f} .. {e['model'][1]:<9.3f} {e['outside']}"
            )
    if late:
        print("\nchrony-4.4+ late DNS: gap between two lookups of one client (postponement + next poll)")
        for key, value in late.items():
            print(f"  {key}: {value}")


# ------------------------------------------------------------------ main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--chrony", type=int, default=20, help="fresh-DNS chrony 4.6.1 clients (one container each)")
    parser.add_argument("--ntpsec", type=int, default=20, help="fresh-DNS NTPsec 1.2.3 clients")
    parser.add_argument("--late-chrony", type=int, default=0, help="late-DNS chrony 4.6.1 clients")
    parser.add_argument("--late-ntpsec", type=int, default=0, help="late-DNS NTPsec 1.2.3 clients")
    parser.add_argument("--chrony-poll", type=int, default=0, help="chrony minpoll = maxpoll")
    parser.add_argument("--ntpsec-poll", type=int, default=2, help="NTPsec minpoll = maxpoll")
    parser.add_argument("--ttl", type=int, default=2, help="TTL of the names' A records")
    parser.add_argument(
        "--late-after",
        type=float,
        default=2.0,
        help="seconds after the last late client's first lookup to update the late name",
    )
    parser.add_argument(
        "--window",
        type=float,
        default=1140.0,
        help="with late clients: seconds to watch after the late DNS update (chrony's draws reach 3584 s)",
    )
    parser.add_argument("--json", type=Path, default=RESULTS / "recovery_d13.json")
    parser.add_argument(
        "--reanalyse",
        type=Path,
        default=None,
        help="analyse a saved raw file (JSON_PATH with .raw.json) again instead of running",
    )
    parser.add_argument("--keep", action="store_true", help="leave the containers running (debugging)")
    return parser.parse_args(argv)


def make_clients(args: argparse.Namespace) -> list[Client]:
    wanted = [
        ("chrony", "fresh", args.chrony, args.chrony_poll),
        ("ntpsec", "fresh", args.ntpsec, args.ntpsec_poll),
        ("chrony", "late", args.late_chrony, args.chrony_poll),
        ("ntpsec", "late", args.late_ntpsec, args.ntpsec_poll),
    ]
    total = sum(n for _k, _g, n, _p in wanted)
    if min(n for _k, _g, n, _p in wanted) < 0 or not 0 < total <= MAX_CLIENTS:
        raise SystemExit(f"between 1 and {MAX_CLIENTS} clients in all")
    clients: list[Client] = []
    for kind, group, count, poll in wanted:
        for _i in range(count):
            index = len(clients)
            clients.append(
                Client(f"{PREFIX}{kind[0]}{group[0]}{index}", kind, f"198.18.2.{CLIENT_BASE + index}", poll, group)
            )
    return clients


def change_address() -> float:
    """Make the old address dark and serve on the new one; the moment of the change."""
    pid = server_pid()
    # Delete first: removing the primary address also removes the secondaries of its
    # subnet (no promote_secondaries), so the new one is added after.
    run(["nsenter", "-t", str(pid), "-n", "ip", "addr", "del", f"{OLD_IP}/24", "dev", "eth0"])
    t_change = time.time()
    run(["nsenter", "-t", str(pid), "-n", "ip", "addr", "add", f"{NEW_IP}/24", "dev", "eth0"])
    log(f"old address {OLD_IP} dark, server on {NEW_IP}")
    return t_change


def watch(sniffer: Sniffer, clients: list[Client], args: argparse.Namespace, t_change: float) -> dict[str, float]:
    """Update DNS for each group at its moment and watch; the moments DNS was fresh."""
    nsupdate(args.ttl, NAME)
    t_dns = {"fresh": time.time(), "late": 0.0}
    log(f"{NAME} fresh {t_dns['fresh'] - t_change:.2f} s after the change")
    late_clients = [c for c in clients if c.group == "late"]
    if late_clients:

        def all_looked() -> bool:
            packets = list(sniffer.packets)
            return all(lookups(packets, c.ip, t_change) for c in late_clients)

        limit = 12 * 2.0 ** max(c.poll for c in late_clients) * 1.1 + 60
        if not wait_for(all_looked, limit, 0.2):
            log("not every late client looked the name up again in time; updating DNS anyway")
        time.sleep(args.late_after)
        nsupdate(args.ttl, LATE_NAME)
        t_dns["late"] = time.time()
        log(f"{LATE_NAME} fresh {t_dns['late'] - t_change:.2f} s after the change; watching {args.window:g} s")
        time.sleep(args.window)
        return t_dns
    latency = t_dns["fresh"] - t_change
    until = max(model_for(c.kind, c.poll, args.ttl, latency)["selectable_latest_s"] for c in clients)

    def all_back() -> bool:
        packets = list(sniffer.packets)
        return all(any(p.auth for p in responses_from(packets, NEW_IP, c.ip)) for c in clients)

    wait_for(all_back, until * 1.5 + 30 - latency, 1.0)
    # Selectable comes a few polls after the first authenticated response.
    time.sleep(6 * 2.0 ** max(c.poll for c in clients) + 2)
    return t_dns


def analyse_group(
    group: str, members: list[Client], raw: dict[str, Any], packets: list[Packet], args: argparse.Namespace
) -> tuple[dict[str, Any], int]:
    """Measured against predicted for one DNS group; the result and how many lie outside."""
    t_change, t_end = raw["t_change"], raw["t_end"]
    latency = raw["t_dns"][group] - t_change
    rows = [measure_client(c, packets, raw["logs"][c.name], t_change, raw["t_dns"][group]) for c in members]
    summary = compare(rows, args, latency)
    late = None
    if group == "late" and any(c.kind == "chrony" for c in members):
        late = late_postponement_fit(
            late_clients([r for r in rows if r["kind"] == "chrony"], t_end - t_change),
            t_end - t_change, latency, CHRONY_44_REPLACEMENT_POSTPONE_MAX_S, 2.0**args.chrony_poll,
        )
    ntpsec_late = None
    if group == "late" and any(c.kind == "ntpsec" for c in members):
        nrows = [r for r in rows if r["kind"] == "ntpsec"]
        ntpsec_late = {
            "clients": len(nrows),
            "second_lookup_gaps_s": [
                round(r["lookups"][1]["t_s"] - r["lookups"][0]["t_s"], 3) for r in nrows if len(r["lookups"]) > 1
            ],
            "watched_after_first_lookup_s": [
                round(t_end - t_change - r["lookups"][0]["t_s"], 1) for r in nrows if r["lookups"]
            ],
        }
    print_table(f"{group} DNS", summary, late)
    if ntpsec_late:
        print(f"\nntpsec-1.2 late DNS: {ntpsec_late}")
    outside = sum(e[k]["outside"] for e in summary.values() for k in e if isinstance(e[k], dict))
    return {
        "dns_update_latency_s": round(latency, 3),
        "summary": summary,
        "late_chrony": late,
        "late_ntpsec": ntpsec_late,
        "models": {
            f"{kind}@{poll}": model_for(kind, poll, args.ttl, latency)
            for kind, poll in {(c.kind, c.poll) for c in members}
        },
        "clients": rows,
    }, outside


def analyse(raw: dict[str, Any], clients: list[Client], args: argparse.Namespace) -> int:
    packets = [Packet(**{**p, "answer": tuple(p["answer"])}) for p in raw["packets"]]
    result: dict[str, Any] = {
        "ttl": args.ttl,
        "chrony_version": "4.6.1 (Debian 13)",
        "ntpsec_version": "1.2.3 (Debian 13)",
        "window_s": args.window if any(c.group == "late" for c in clients) else None,
    }
    outside = 0
    for group in ("fresh", "late"):
        members = [c for c in clients if c.group == group]
        if members:
            result[group], missed = analyse_group(group, members, raw, packets, args)
            outside += missed
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    log(f"results in {args.json}")
    return 1 if outside else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    clients = make_clients(args)
    raw_path = args.json.with_suffix(".raw.json")
    if args.reanalyse:
        return analyse(json.loads(args.reanalyse.read_text()), clients, args)
    if os.geteuid() != 0:
        raise SystemExit("run as root (podman, AF_PACKET, nsenter)")
    t_start = time.monotonic()
    bridge = ensure_network()
    remove_rig()
    conf = Path(tempfile.mkdtemp(prefix="ntsops-d13-"))
    sniffer = None
    try:
        write_configs(conf, args)
        log(f"starting DNS, server and {len(clients)} clients")
        start_rig(conf, clients)
        sniffer = Sniffer(veths(bridge), [NAME, LATE_NAME]).start()
        log("waiting for every client to be synchronised over NTS to the old address")
        preflight(sniffer, clients)
        t_change = change_address()
        t_dns = watch(sniffer, clients, args, t_change)
        t_end = time.time()
        packets = sniffer.stop()
        sniffer = None
        # Everything the analysis needs, so it can run again (--reanalyse) without a rig.
        raw = {
            "t_change": t_change,
            "t_dns": t_dns,
            "t_end": t_end,
            "packets": [asdict(p) for p in packets],
            "logs": {c.name: client_logs(c) for c in clients},
        }
        raw_path.parent.mkdir(parents=True, exist_ok=True)
        raw_path.write_text(json.dumps(raw))
        code = analyse(raw, clients, args)
        log(f"wall time {time.monotonic() - t_start:.0f} s")
        return code
    except BaseException:
        # Keep the clients' logs (chronyd's, NTPsec's peerstats) for a second look.
        args.keep = True
        raise
    finally:
        if sniffer is not None:
            sniffer.stop()
        if not args.keep:
            remove_rig()
        shutil.rmtree(conf, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
