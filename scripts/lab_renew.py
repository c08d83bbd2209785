# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Forced ACME renewal on every NTS server of the running lab, and what the clients saw of it.

What it does (scripts/lab.sh renew and all run it), one NTS server after the other:

1. Checks that every lab client gets authenticated time from the server (full
   reachability register), and keeps one of the server's cookies on the controller
   (the core of ntsops.nts.cookie_check, step save: one NTS-KE).
2. Reads each client's counters for the server (chrony: ``chronyc ntpdata`` requests
   sent and valid responses, which for an NTS source means authenticated; NTPsec:
   ``ntpq pstats`` packets sent and received, and ``rv`` auth) and starts a sampler in
   the server's container that reads its NTS-KE counter every 0.1 s (chrony:
   ``chronyc serverstats`` "NTS-KE connections accepted", NTPsec: ``ntpq ntsinfo``
   "NTS KE serves good") with the daemon's PID, since chronyd's restart resets it.
3. Runs the renewal unit's own command (ntsops-acme renew, from the installed
   ntsops-acme-renew.service) with ``--force``: certbot answers a fresh DNS-01
   challenge at the lab's Pebble, and the deploy hook installs the certificate and
   restarts chronyd (ntpd: SIGHUP).
4. Checks that the server now serves the renewed certificate (the NTS-KE port's
   certificate is the lineage's cert.pem, and not the one from before), waits
   RENEW_WAIT_POLLS client polls, reads the counters again, and sends the saved
   cookie in an NTS request (step verify): it must be accepted.

Prints one line per server. Exit status 1 when any server shows client impact (a
poll not answered or not authenticated, an NTS-KE session accepted during the
renewal, the old cookie refused) or the renewed certificate is not served; 2 when
the step cannot run. Everything it starts in the containers (the samplers) is
stopped by PID at the end, also on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / ".collections"))

from ansible_collections.ntsops.nts.plugins.module_utils._check import cookie_continuity, daemon_status
from ansible_collections.ntsops.nts.plugins.module_utils._check.endpoint import CheckOptions
from lab_drill import FULL_REACH, SERVICE, DrillError, podman_exec, run

RENEW_UNIT = "/etc/systemd/system/ntsops-acme-renew.service"
LIVE_DIR = "/etc/letsencrypt/live"
SAMPLER_LOG = "/run/ntsops-renew-sampler.log"
SAMPLER_PID = "/run/ntsops-renew-sampler.pid"
SAMPLE_INTERVAL_S = 0.1
# After the renewal, the clients get this many polls of the renewed server before the
# counters are read again: each must have reached the restarted daemon.
RENEW_WAIT_POLLS = 3
PREFLIGHT_TIMEOUT_S = 120.0
# The NTS-KE counter of each daemon (daemon_status parses both outputs).
KE_COUNTER = {"chrony": "NTS-KE connections accepted", "ntpsec": "NTS KE serves good"}
KE_COMMAND = {"chrony": "chronyc serverstats", "ntpsec": "ntpq -c ntsinfo"}
KE_TABLE = "ntsops_lab_renew"


def log(message: str) -> None:
    print(f"[renew {time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Server:
    container: str
    name: str
    implementation: str
    addresses: list[str]


@dataclass
class Lab:
    servers: list[Server]
    clients: dict[str, str]  # container -> implementation
    poll: int


def load_lab(inventory: Path) -> Lab:
    """The lab's literal facts from the inventory (ansible-inventory --list)."""
    data = json.loads(run([str(ROOT / ".venv/bin/ansible-inventory"), "-i", str(inventory), "--list"], timeout=120))
    hostvars: dict[str, dict[str, Any]] = data["_meta"]["hostvars"]
    servers = [
        Server(host, hostvars[host]["nts_server_name"], hostvars[host]["nts_server_implementation"],
               [str(a) for a in hostvars[host]["lab_drill_addresses4"]])
        for host in data["nts_servers"]["hosts"]
    ]
    clients = {host: hostvars[host]["nts_client_implementation"] for host in data["nts_clients"]["hosts"]}
    poll = int(hostvars[data["nts_clients"]["hosts"][0]]["lab_client_poll"])
    return Lab(servers, clients, poll)


def current_address(server: Server) -> str:
    """The one drill address the server has on eth0 now (the drill may have moved it)."""
    out = podman_exec(server.container, "ip -4 -o addr show dev eth0 scope global")
    found = [a for a in re.findall(r"inet (\S+)/", out) if a in server.addresses]
    if len(found) != 1:
        raise DrillError(f"{server.container} has {found or 'none'} of {server.addresses} on eth0")
    return found[0]


# ---------------------------------------------------------------- the clients' view


@dataclass
class Polls:
    sent: int
    answered: int  # valid, authenticated responses (see read_polls)
    authenticated: bool
    reach: int


def _chrony_polls(container: str, address: str) -> Polls | None:
    return chrony_polls(podman_exec(container, f"chronyc -c -n ntpdata {address}; chronyc -c -n sources",
                                    check=False), address)


def chrony_polls(text: str, address: str) -> Polls | None:
    """The source at `address` in the output of ``chronyc -c -n ntpdata`` and ``sources`` (one run)."""
    data = next((r for r in daemon_status.chronyc_ntpdata(text) if r["remote_address"] == address), None)
    source = next((s for s in daemon_status.chronyc_sources(text) if s["name"] == address), None)
    if data is None or source is None:
        return None
    # Valid RX passed the NTP tests, which for an NTS source include the authenticator.
    return Polls(sent=int(data["total_tx"]), answered=int(data["total_valid_rx"]),
                 authenticated=data["authenticated"] == "Yes", reach=int(source["reach"], 8))


def _ntpsec_polls(container: str, address: str) -> Polls | None:
    # NTPsec drops an NTS response that fails authentication before it counts as received
    # (ntpd/ntp_proto.c), so pstats' "packets received" are authenticated answers.
    assocs = daemon_status.ntpq_associations(podman_exec(container, "ntpq -n -c associations"))
    for assoc in assocs:
        assid = assoc["assid"]
        text = podman_exec(container, f"ntpq -n -c 'pstats {assid}' -c 'rv {assid} srcadr,reach'")
        stats = daemon_status.ntpq_ntsinfo(text)  # pstats prints "label: count" lines too
        variables = daemon_status.ntpq_variables(text)
        if not variables or variables[-1].get("srcadr") != address:
            continue
        if "packets sent" not in stats or "packets received" not in stats:
            raise DrillError(f"ntpq pstats on {container} shows no packet counts: {text.strip()}")
        return Polls(sent=stats["packets sent"], answered=stats["packets received"],
                     authenticated=assoc.get("auth") == "ok", reach=int(variables[-1].get("reach", "0"), 8))
    return None


def read_polls(container: str, kind: str, address: str) -> Polls | None:
    return _chrony_polls(container, address) if kind == "chrony" else _ntpsec_polls(container, address)


def settled_polls(container: str, kind: str, address: str) -> Polls:
    """Two equal reads 0.2 s apart: no request of the client is in flight (the lab answers in
    well under a millisecond), so every request counted as sent had its chance to be answered."""
    last = None
    for _attempt in range(20):
        polls = read_polls(container, kind, address)
        if polls is not None and polls == last:
            return polls
        last = polls
        time.sleep(0.2)
    if last is None:
        raise DrillError(f"{container} has no source at {address}")
    return last


def wait_synchronised(lab: Lab, address: str) -> None:
    deadline = time.monotonic() + PREFLIGHT_TIMEOUT_S
    pending = dict(lab.clients)
    while pending and time.monotonic() < deadline:
        for container, kind in list(pending.items()):
            polls = read_polls(container, kind, address)
            if polls is not None and polls.authenticated and polls.reach == FULL_REACH:
                del pending[container]
        if pending:
            time.sleep(1)
    if pending:
        raise DrillError(f"no authenticated time from {address} within {PREFLIGHT_TIMEOUT_S:g} s: "
                         f"{', '.join(pending)} (is the lab up? scripts/lab.sh up)")


# ---------------------------------------------------------------- the server's view


@contextmanager
def local_ke_counter(server: Server) -> Iterator[None]:
    """Counts the TCP SYNs to the NTS-KE port from 127.0.0.1 while it is open: the deploy hook's
    own check of the served certificate (ntsops-acme deploy --served 127.0.0.1:4460), which the
    daemon counts as an NTS-KE connection like a client's."""
    table = (f"table inet {KE_TABLE} {{\n chain input {{\n  type filter hook input priority -10; policy accept;\n"
             '  ip saddr 127.0.0.1 tcp dport 4460 tcp flags syn counter comment "local"\n }\n}')
    podman_exec(server.container, f"nft delete table inet {KE_TABLE} 2>/dev/null; nft -f - <<'EOF'\n{table}\nEOF")
    try:
        yield
    finally:
        podman_exec(server.container, f"nft delete table inet {KE_TABLE}", check=False)


def local_ke_count(server: Server) -> int:
    rules = json.loads(podman_exec(server.container, f"nft -j list table inet {KE_TABLE}"))["nftables"]
    for item in rules:
        rule = item.get("rule")
        if rule and rule.get("comment") == "local":
            return sum(int(expr["counter"]["packets"]) for expr in rule["expr"] if "counter" in expr)
    raise DrillError(f"no counter in the nftables table {KE_TABLE} on {server.container}")


@contextmanager
def ke_sampler(server: Server) -> Iterator[None]:
    service = SERVICE[server.implementation]
    script = (
        f"echo $$ > {SAMPLER_PID}; end=$(($(date +%s) + 600)); while [ $(date +%s) -lt $end ]; do "
        f"p=$(systemctl show -p MainPID --value {service}); "
        f"s=$({KE_COMMAND[server.implementation]} 2>&1 | tr '\\n' ';'); "
        f'echo "$p|$s"; sleep {SAMPLE_INTERVAL_S}; done > {SAMPLER_LOG} 2>&1'
    )
    podman_exec(server.container, f"rm -f {SAMPLER_LOG} {SAMPLER_PID}")
    run(["podman", "exec", "-d", server.container, "sh", "-c", script])
    try:
        # The first sample is the baseline: wait for it.
        for _attempt in range(50):
            if podman_exec(server.container, f"grep -c '|' {SAMPLER_LOG} 2>/dev/null || true").strip() not in ("", "0"):
                break
            time.sleep(0.1)
        yield
    finally:
        podman_exec(server.container,
                    f'[ -s {SAMPLER_PID} ] && kill "$(cat {SAMPLER_PID})" 2>/dev/null; rm -f {SAMPLER_PID}; true',
                    check=False)


def ke_sessions(server: Server) -> tuple[int, int]:
    """NTS-KE sessions the server accepted while the sampler ran, and how many daemon processes it saw.

    The counter restarts at 0 with a new process (chronyd's restart in the deploy): per
    process, its last reading less its first, and for every process after the first its
    whole count (it started during the renewal).
    """
    found = ke_sessions_from(podman_exec(server.container, f"cat {SAMPLER_LOG}"), server.implementation)
    if found is None:
        raise DrillError(f"the sampler on {server.container} read no '{KE_COUNTER[server.implementation]}'")
    return found


def ke_sessions_from(log_text: str, implementation: str) -> tuple[int, int] | None:
    """The sampler's log ("PID|counter lines joined by ;" per line) as (sessions, processes); None if empty."""
    counter = KE_COUNTER[implementation]
    per_pid: dict[str, list[int]] = {}
    for line in log_text.splitlines():
        pid, _sep, text = line.partition("|")
        text = text.replace(";", "\n")
        parse = daemon_status.chronyc_serverstats if implementation == "chrony" else daemon_status.ntpq_ntsinfo
        stats = parse(text)
        if pid.strip() not in ("", "0") and counter in stats:
            per_pid.setdefault(pid.strip(), []).append(stats[counter])
    if not per_pid:
        return None
    readings = list(per_pid.values())
    return readings[0][-1] - readings[0][0] + sum(r[-1] for r in readings[1:]), len(readings)


def fingerprint(server: Server, source: str) -> str:
    """SHA-256 of the certificate the NTS-KE port serves (source 'served') or of the lineage's cert.pem."""
    if source == "served":
        script = (f"openssl s_client -connect 127.0.0.1:4460 -servername {shlex.quote(server.name)} -alpn ntske/1 "
                  "-tls1_3 </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256")
    else:
        script = f"openssl x509 -in {LIVE_DIR}/{shlex.quote(server.name)}/cert.pem -noout -fingerprint -sha256"
    return podman_exec(server.container, script, check=False).strip()


def renew_command(server: Server) -> str:
    """The renewal unit's own command and environment, plus --force."""
    unit = podman_exec(server.container, f"cat {RENEW_UNIT}")
    environment = [line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("Environment=")]
    command = next((line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("ExecStart=")), None)
    if command is None:
        raise DrillError(f"{server.container}: no ExecStart= in {RENEW_UNIT}")
    return " ".join(["env", *(shlex.quote(e) for e in environment), command, "--force"])


# ---------------------------------------------------------------- one renewal


@dataclass
class Result:
    server: str
    name: str
    implementation: str
    address: str
    renewed: bool = False
    served_matches_file: bool = False
    renewal_to_served_s: float | None = None
    polls_sent: int = 0
    polls_unanswered: int = 0
    clients_authenticated: bool = False
    ke_sessions: int = 0
    ke_sessions_local: int = 0
    daemon_processes: int = 0
    old_cookie_accepted: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def cookie(name: str, address: str, ca_path: Path, state_path: Path, step: str) -> dict[str, Any]:
    """ntsops.nts.cookie_check's core from the controller (on the lab bridge), save or verify."""
    if step == "save":
        saved = cookie_continuity.save_cookies(CheckOptions(name=name, ca_path=str(ca_path)), addresses=[address])
        # The state holds the session's keys: root only, as cookie_check writes it.
        state_path.touch(mode=0o600)
        state_path.write_text(cookie_continuity.state_text(saved["state"]))
        return {"ok": bool(saved["saved"]) and not saved["problems"], "problems": saved["problems"]}
    result = cookie_continuity.verify_cookies(cookie_continuity.load_state(state_path.read_text(), name=name))
    return {"ok": result["ok"], "problems": result["problems"]}


def renew(lab: Lab, server: Server, ca_path: Path, state_dir: Path) -> Result:
    address = current_address(server)
    result = Result(server.container, server.name, server.implementation, address)
    wait_synchronised(lab, address)
    cookie_file = state_dir / f"renew-cookies-{server.container}.json"
    saved = cookie(server.name, address, ca_path, cookie_file, "save")
    if not saved["ok"]:
        raise DrillError(f"no cookie saved from {server.name} at {address}: {saved['problems']}")
    command = renew_command(server)
    before = fingerprint(server, "served")
    with local_ke_counter(server), ke_sampler(server):
        polls_before = {c: settled_polls(c, k, address) for c, k in lab.clients.items()}
        log(f"{server.name} ({server.container}, {address}): ntsops-acme renew --force")
        started = time.monotonic()
        # Not lab_drill.run: the exit status matters here. S603: argv is built here, the unit's
        # command runs inside the container.
        argv = ["podman", "exec", server.container, "sh", "-c", command]
        renewal = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)  # noqa: S603
        result.renewal_to_served_s = round(time.monotonic() - started, 2)
        time.sleep(RENEW_WAIT_POLLS * 2.0**lab.poll)
        polls_after = {c: settled_polls(c, k, address) for c, k in lab.clients.items()}
        result.ke_sessions_local = local_ke_count(server)
    result.ke_sessions, result.daemon_processes = ke_sessions(server)
    served, live = fingerprint(server, "served"), fingerprint(server, "file")
    result.renewed = renewal.returncode == 0 and served != before
    result.served_matches_file = bool(served) and served == live
    if not result.renewed:
        output = (renewal.stdout + renewal.stderr).strip()[-500:]
        result.problems.append(
            f"not renewed (exit {renewal.returncode}; served before {before}, now {served}): {output}")
    if not result.served_matches_file:
        result.problems.append(f"served {served or 'nothing'}, {LIVE_DIR}/{server.name}/cert.pem is {live}")
    for container in lab.clients:
        first, last = polls_before[container], polls_after[container]
        sent, answered = last.sent - first.sent, last.answered - first.answered
        result.polls_sent += sent
        result.polls_unanswered += sent - answered
        if sent < RENEW_WAIT_POLLS:
            result.problems.append(f"{container} sent only {sent} polls across the renewal")
        if sent != answered:
            result.problems.append(f"{container}: {sent} polls sent, {answered} answered and authenticated")
        if not last.authenticated:
            result.problems.append(f"{container}: the source is no longer authenticated")
    result.clients_authenticated = all(p.authenticated for p in polls_after.values())
    if result.ke_sessions - result.ke_sessions_local:
        result.problems.append(f"{result.ke_sessions} NTS-KE sessions accepted during the renewal, "
                               f"{result.ke_sessions_local} of them the deploy hook's local check")
    continuity = cookie(server.name, address, ca_path, cookie_file, "verify")
    result.old_cookie_accepted = continuity["ok"]
    if not continuity["ok"]:
        result.problems.append(f"the cookie from before the renewal was refused: {continuity['problems']}")
    return result


def line(result: Result) -> str:
    served = "-" if result.renewal_to_served_s is None else f"{result.renewal_to_served_s:.1f} s"
    return (
        f"{result.name} ({result.implementation}): renewed {'yes' if result.renewed else 'NO'}, "
        f"served == file {'yes' if result.served_matches_file else 'NO'}, renewal to served {served}; "
        f"client polls {result.polls_sent}, unanswered or unauthenticated {result.polls_unanswered}; "
        f"NTS-KE sessions accepted during the renewal {result.ke_sessions - result.ke_sessions_local} "
        f"(+{result.ke_sessions_local} the deploy hook's check from 127.0.0.1); "
        f"old cookie accepted {'yes' if result.old_cookie_accepted else 'NO'} -> "
        + ("no client impact" if result.ok else "IMPACT: " + "; ".join(result.problems))
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", type=Path, default=ROOT / "inventories/lab")
    parser.add_argument("--ca", type=Path, required=True, help="the ACME server's root (.cache/lab/acme-root.pem)")
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".cache/lab", help="where the saved cookies go")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    os.environ.setdefault("CONTAINERS_CONF", str(ROOT / "molecule/containers.conf"))
    results = []
    try:
        lab = load_lab(args.inventory)
        args.state_dir.mkdir(parents=True, exist_ok=True)
        for server in lab.servers:
            results.append(renew(lab, server, args.ca, args.state_dir))
            log(line(results[-1]))
    except DrillError as exc:
        print(f"renew: cannot run: {exc}", file=sys.stderr)
        return 2
    print("\nForced ACME renewal per NTS server (ntsops-acme renew --force), as the lab's clients saw it:")
    for result in results:
        print(line(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(r) | {"ok": r.ok} for r in results], indent=2) + "\n")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
