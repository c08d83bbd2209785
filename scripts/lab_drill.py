# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Recovery drill on the running lab: move an NTS server's address, measure the clients.

What it does (scripts/lab.sh drill and drill-late-dns run it):

1. Checks that every lab client is synchronised over NTS to the server's name.
2. Starts a sampler in each client container (chronyc sources/authdata, or ntpq rv
   with the last receive time), one on the DNS primary (what it serves for the
   name), and reads the lab resolver's query log (who looked the name up, when).
3. Changes the server's address inside its container: the old address is removed
   (it goes dark) and the other address of lab_drill_addresses4 is added. The
   server's ddns agent notices and updates DNS. With --late-dns the agent is
   stopped first and started only after every client has looked the name up again
   (the bad case: the clients get the old address from DNS).
4. Measures, per client, when it looked the name up again and when it first got an
   authenticated response from the new address, and prints both next to the
   recovery model's predicted interval (plugins/module_utils/_model/recovery.py, fed with
   the lab's poll, the record's TTL and the measured DNS update latency).

Exit status 1 when any measurement falls outside its predicted interval: that is a
finding about the model (or the lab), reported as such, never a tolerance to widen.
Everything it starts in the containers (samplers) is stopped by PID at the end, and
the agent is started again, also on failure.
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
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / ".collections"))

from ansible_collections.ntsops.nts.plugins.module_utils._check import daemon_status
from ansible_collections.ntsops.nts.plugins.module_utils._model import recovery

# The recovery model's kind of each implementation as Debian 12 ships it; a lab host
# with another version says its kind in lab_model_client.
MODEL_CLIENT = {"chrony": "chrony-4.3", "ntpsec": "ntpsec-1.2"}
SERVICE = {"chrony": "chrony", "ntpsec": "ntpsec"}
# The model's input: a client holding all its cookies (chrony NTS_MAX_COOKIES).
FULL_COOKIES = 8
# chrony and NTPsec keep an 8-bit reachability register; 0o377: the last 8 polls answered.
FULL_REACH = 0o377
SAMPLE_INTERVAL_S = 0.2
# chrony shows no receive time, so its sampler runs faster: the resolution of its
# measurement is this interval plus one chronyc call (a few ms).
CHRONY_SAMPLE_INTERVAL_S = 0.05
SAMPLER_LOG = "/run/ntsops-drill-sampler.log"
SAMPLER_PID = "/run/ntsops-drill-sampler.pid"
QUERY_LOG = "/var/log/named/queries.log"
# How long the clients get to be synchronised before the drill starts.
PREFLIGHT_TIMEOUT_S = 120.0
# The drill waits for the model's latest prediction plus this margin (and this
# factor) before it calls a client unrecovered: enough to see how far off a miss is.
WAIT_MARGIN_S = 30.0
WAIT_FACTOR = 1.5
# A hard upper bound on any drill, whatever the model says (late DNS, NTPsec: ~70 min).
MAX_DRILL_S = 3 * 3600.0


class DrillError(Exception):
    """The drill cannot run (lab not up, client not synchronised, command failed)."""


def log(message: str) -> None:
    print(f"[drill {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(argv: Sequence[str], timeout: float = 60.0, check: bool = True) -> str:
    try:
        # S603: argv is built here from the inventory and fixed commands, never a shell string.
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
    except subprocess.TimeoutExpired as exc:
        raise DrillError(f"timed out after {timeout:g} s: {shlex.join(argv)}") from exc
    if check and done.returncode != 0:
        raise DrillError(f"{shlex.join(argv)} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def podman_exec(container: str, script: str, timeout: float = 60.0, check: bool = True) -> str:
    return run(["podman", "exec", container, "sh", "-c", script], timeout=timeout, check=check)


# ---------------------------------------------------------------- the lab's facts


@dataclass
class Lab:
    server: str
    server_name: str
    addresses: list[str]
    prefix: int
    dns_primary: str
    resolver: str
    zone: str
    poll: int
    clients: dict[str, str]  # container -> implementation
    client_addresses: dict[str, str]
    model_clients: dict[str, str]  # container -> recovery model client kind


def load_lab(inventory: Path, server_kind: str, only: Sequence[str]) -> Lab:
    """Read the lab's literal facts from the inventory (ansible-inventory --list)."""
    data = json.loads(run([str(ROOT / ".venv/bin/ansible-inventory"), "-i", str(inventory), "--list"], timeout=120))
    hostvars: dict[str, dict[str, Any]] = data["_meta"]["hostvars"]
    servers = [h for h in data["nts_servers"]["hosts"] if hostvars[h].get("nts_server_implementation") == server_kind]
    if len(servers) != 1:
        raise DrillError(f"expected one {server_kind} server in nts_servers, found {servers}")
    server = servers[0]
    clients = {h: hostvars[h]["nts_client_implementation"] for h in data["nts_clients"]["hosts"]}
    if only:
        clients = {h: kind for h, kind in clients.items() if kind in only}
    if not clients:
        raise DrillError(f"no lab client of kind {list(only)}")
    any_vars = hostvars[server]
    return Lab(
        server=server,
        server_name=hostvars[server]["nts_server_name"],
        addresses=list(hostvars[server]["lab_drill_addresses4"]),
        prefix=int(any_vars["lab_prefix4"]),
        dns_primary=data["lab_dns_primary"]["hosts"][0],
        resolver=data["lab_resolvers"]["hosts"][0],
        zone=any_vars["lab_zone"],
        poll=int(any_vars["lab_client_poll"]),
        clients=clients,
        client_addresses={h: str(hostvars[h]["lab_address4"]) for h in clients},
        # lab_model_client: the kind of a client whose daemon version differs (Debian 13's chrony 4.6).
        model_clients={h: str(hostvars[h].get("lab_model_client") or MODEL_CLIENT[k]) for h, k in clients.items()},
    )


def current_address(lab: Lab) -> str:
    out = podman_exec(lab.server, "ip -4 -o addr show dev eth0 scope global")
    found: list[str] = [a for a in re.findall(r"inet (\S+)/", out) if a in lab.addresses]
    if len(found) != 1:
        raise DrillError(f"{lab.server} has {found or 'none'} of its drill addresses {lab.addresses} on eth0")
    return found[0]


def dns_record(lab: Lab) -> tuple[list[str], int]:
    """The A RRset and TTL the primary serves for the server's name."""
    out = podman_exec(lab.dns_primary, f"dig +noall +answer +norec @127.0.0.1 {shlex.quote(lab.server_name)} A")
    rows = [line.split() for line in out.splitlines() if line.strip()]
    addresses = sorted(row[4] for row in rows if len(row) >= 5 and row[3] == "A")
    ttl = int(rows[0][1]) if rows else 0
    return addresses, ttl


# ---------------------------------------------------------------- client state


@dataclass
class Sample:
    at: float
    address: str | None  # the address the client uses for the server now
    reach: int  # reachability register of that source (0: no valid response yet)
    authenticated: bool  # NTS: cookies held (chrony) / auth ok (NTPsec)
    last_rx: float | None  # NTPsec: when the last packet from the source arrived
    cookies: int | None = None  # chrony: NTS cookies held for the source


def chrony_sampler(interval: float) -> str:
    # One chronyc process per sample (commands on stdin), so the sample interval is
    # what bounds the measurement's resolution.
    return (
        f"echo $$ > {SAMPLER_PID}; end=$(($(date +%s) + {int(MAX_DRILL_S)})); "
        f"while [ $(date +%s) -lt $end ]; do "
        f"t=$(date +%s.%N); s=$(printf 'sources\\nauthdata\\n' | chronyc -c -n 2>&1 | tr '\\n' ';'); "
        f'echo "$t|$s"; sleep {interval}; done > {SAMPLER_LOG} 2>&1'
    )


def parse_chrony(line: str, addresses: Sequence[str]) -> Sample | None:
    """The source (and its NTS cookies) whose address is one of the server's drill addresses."""
    try:
        stamp, text = line.split("|", 1)
        at = float(stamp)
    except ValueError:
        return None
    text = text.replace(";", "\n")  # the sampler joined chronyc's lines with ';'
    sources = daemon_status.chrony_client_sources(
        daemon_status.chronyc_sources(text), daemon_status.chronyc_authdata(text)
    )
    source = next((s for s in sources if s["mode"] == "server" and s["address"] in addresses), None)
    if source is None:
        return Sample(at, None, 0, False, None)
    cookies = source["cookies"] or 0
    return Sample(at, source["address"], source["reach"] or 0, cookies > 0, None, cookies)


def ntpsec_sampler() -> str:
    query = " ".join(f"-c 'rv &{i} srcadr,reach,rec,flash'" for i in (1, 2, 3, 4))
    return (
        f"echo $$ > {SAMPLER_PID}; end=$(($(date +%s) + {int(MAX_DRILL_S)})); "
        f"while [ $(date +%s) -lt $end ]; do "
        f"t=$(date +%s.%N); s=$(ntpq -n -c as {query} 2>&1 | tr '\\n' ' '); "
        f'echo "$t|$s"; sleep {SAMPLE_INTERVAL_S}; done > {SAMPLER_LOG} 2>&1'
    )


def parse_ntpsec(line: str, addresses: Sequence[str]) -> Sample | None:
    """The association whose address is one of the server's drill addresses."""
    try:
        stamp, text = line.split("|", 1)
        at = float(stamp)
    except ValueError:
        return None
    for variables in daemon_status.ntpq_variables(text):
        address = variables.get("srcadr", "")
        last_rx = daemon_status.ntpq_timestamp(variables.get("rec"))
        reach = variables.get("reach", "")
        if address in addresses and last_rx is not None and reach.isdigit():
            # NTPsec drops an NTS response that fails authentication before it counts in
            # reach or rec, so a set reach bit at this address is an authenticated answer.
            # The flash bits are not a test here: the first sample after a re-key always
            # carries peer_dist/peer_unreach (0x1400), though the response was good.
            return Sample(at, address, int(reach, 8), True, last_rx)
    return Sample(at, None, 0, False, None)


_read_offsets: dict[str, int] = {}


def read_samples(container: str, kind: str, lab: Lab) -> list[Sample]:
    """The samples the container's sampler wrote since the last call (whole lines only)."""
    offset = _read_offsets.get(container, 0)
    text = podman_exec(container, f"tail -c +{offset + 1} {SAMPLER_LOG} 2>/dev/null || true")
    complete = text[: text.rfind("\n") + 1]
    _read_offsets[container] = offset + len(complete.encode())
    parsed = [
        parse_chrony(line, lab.addresses) if kind == "chrony" else parse_ntpsec(line, lab.addresses)
        for line in complete.splitlines()
    ]
    return [s for s in parsed if s is not None]


def synchronised(sample: Sample | None, address: str) -> bool:
    return sample is not None and sample.address == address and sample.reach != 0 and sample.authenticated


def lookups_after(lab: Lab, client_address: str, since: float) -> list[float]:
    """When the client asked the resolver for the server's name after `since`."""
    text = podman_exec(
        lab.resolver, f"grep -h -F {shlex.quote(' (' + lab.server_name + '): ')} {QUERY_LOG}* 2>/dev/null || true"
    )
    times = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4 or not parts[3].startswith(client_address + "#"):
            continue
        at = datetime.fromisoformat(parts[0].replace("Z", "+00:00")).timestamp()
        if at >= since:
            times.append(at)
    return sorted(times)


# ---------------------------------------------------------------- the drill


@dataclass
class Result:
    container: str
    implementation: str
    model_client: str
    poll_s: float
    reresolved_s: float | None = None
    reresolve_predicted_s: tuple[float, float] = (0.0, 0.0)
    recovered_s: float | None = None
    recovery_predicted_s: tuple[float, float] = (0.0, 0.0)
    measured_with: str = ""
    verdicts: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.verdicts


@contextmanager
def samplers(lab: Lab, chrony_interval: float) -> Iterator[None]:
    started = []
    try:
        for container, kind in lab.clients.items():
            script = chrony_sampler(chrony_interval) if kind == "chrony" else ntpsec_sampler()
            podman_exec(container, f"rm -f {SAMPLER_LOG} {SAMPLER_PID}")
            _read_offsets[container] = 0
            run(["podman", "exec", "-d", container, "sh", "-c", script])
            started.append(container)
        yield
    finally:
        for container in started:
            podman_exec(
                container,
                f'[ -s {SAMPLER_PID} ] && kill "$(cat {SAMPLER_PID})" 2>/dev/null; rm -f {SAMPLER_PID}; true',
                check=False,
            )


def restart_clients(lab: Lab) -> None:
    """Fresh client processes: the model's starting point.

    chrony 4.3 replaces a source's address at most once per 1792 s per process
    (ntp_sources.c), so a client that followed a drill less than 30 min ago would
    only show that hold-off. The recovery model assumes no replacement in the last
    1792 s; restarting gives exactly that (cookies come back from ntsdumpdir or a
    fresh NTS-KE).
    """
    for container, kind in lab.clients.items():
        podman_exec(container, f"systemctl restart {SERVICE[kind]}")
    log(f"restarted {', '.join(lab.clients)} (chrony 4.3 allows one address replacement per 1792 s per process)")


def wait_synchronised(lab: Lab, address: str) -> None:
    """Every client gets authenticated time from the address and holds all its cookies."""
    deadline = time.monotonic() + PREFLIGHT_TIMEOUT_S
    pending = dict(lab.clients)
    while pending and time.monotonic() < deadline:
        for container, kind in list(pending.items()):
            samples = read_samples(container, kind, lab)
            last = samples[-1] if samples else None
            # Steady state, as the model assumes: all cookies, and a full reachability
            # register (8 answered polls: the start-up burst is over).
            full = last is not None and last.reach == FULL_REACH
            full = full and last is not None and (last.cookies is None or last.cookies >= FULL_COOKIES)
            if synchronised(last, address) and full:
                log(f"{container}: synchronised over NTS to {lab.server_name} at {address}")
                del pending[container]
        time.sleep(1)
    if pending:
        raise DrillError(
            f"not synchronised over NTS to {lab.server_name} at {address} within {PREFLIGHT_TIMEOUT_S:g} s: "
            f"{', '.join(pending)} (is the lab up? scripts/lab.sh up)"
        )


def change_address(lab: Lab, old: str, new: str) -> float:
    """Remove the old address (it goes dark) and add the new one; return when the old went."""
    out = podman_exec(
        lab.server,
        f"date +%s.%N; ip addr del {old}/{lab.prefix} dev eth0 && ip addr add {new}/{lab.prefix} dev eth0",
    )
    return float(out.split()[0])


def wait_for_dns(lab: Lab, address: str, since: float, timeout: float) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if dns_record(lab)[0] == [address]:
            return time.time() - since
        time.sleep(0.1)
    return None


def predictions(model_client: str, poll: int, ttl: float, update_latency: float) -> dict[str, Any]:
    spec = {
        "client": model_client,
        "minpoll": poll,
        "maxpoll": poll,
        "poll_state": "steady",
        "old_address": "dark",
    }
    return recovery.recovery_time(spec, ttl=ttl, update_latency=max(0.0, update_latency))


def drill(lab: Lab, late_dns: bool) -> dict[str, Any]:
    old = current_address(lab)
    new = next(a for a in lab.addresses if a != old)
    records, ttl = dns_record(lab)
    if records != [old]:
        raise DrillError(f"the primary serves {records} for {lab.server_name}, expected [{old}]; is the agent running?")
    log(
        f"moving {lab.server_name} ({lab.server}) from {old} to {new}; TTL {ttl} s; poll {2**lab.poll} s; "
        f"clients: {', '.join(f'{c} ({k})' for c, k in lab.clients.items())}; "
        f"DNS {'updated only after the clients looked the name up again' if late_dns else 'updated by the agent'}"
    )
    agent = "ntsops-ddns-agent"
    results = {c: Result(c, k, lab.model_clients[c], 2.0**lab.poll) for c, k in lab.clients.items()}
    restart_clients(lab)
    # The late case lasts half an hour or more: a slower sampler is precise enough there.
    with samplers(lab, SAMPLE_INTERVAL_S if late_dns else CHRONY_SAMPLE_INTERVAL_S):
        wait_synchronised(lab, old)
        if late_dns:
            podman_exec(lab.server, f"systemctl stop {agent}")
        try:
            changed_at = change_address(lab, old, new)
            log(f"address changed at {datetime.fromtimestamp(changed_at).isoformat(timespec='milliseconds')}")
            if late_dns:
                latest = max(predictions(m, lab.poll, ttl, 0)["reresolve_latest_s"] for m in lab.model_clients.values())
                wait_lookups(lab, results, changed_at, latest * WAIT_FACTOR + WAIT_MARGIN_S)
                podman_exec(lab.server, f"systemctl start {agent}")
                log("DNS agent started again after every client looked the name up")
            dns_latency = wait_for_dns(lab, new, changed_at, 60.0)
        finally:
            if late_dns:
                podman_exec(lab.server, f"systemctl start {agent}", check=False)
        if dns_latency is None:
            raise DrillError(f"the primary did not serve {new} for {lab.server_name} within 60 s of the change")
        log(f"the primary serves {new} {dns_latency:.2f} s after the change")
        models = {c: predictions(m, lab.poll, ttl, dns_latency) for c, m in lab.model_clients.items()}
        for container, model in models.items():
            results[container].reresolve_predicted_s = (model["reresolve_earliest_s"], model["reresolve_latest_s"])
            results[container].recovery_predicted_s = (model["recovery_earliest_s"], model["recovery_latest_s"])
        deadline_s = min(
            MAX_DRILL_S, max(m["recovery_latest_s"] for m in models.values()) * WAIT_FACTOR + WAIT_MARGIN_S
        )
        log(f"waiting up to {deadline_s:.0f} s after the change for every client")
        wait_recovery(lab, results, new, changed_at, deadline_s)
    for container, result in results.items():
        lookups = lookups_after(lab, lab.client_addresses[container], changed_at)
        result.reresolved_s = lookups[0] - changed_at if lookups else None
        judge(result)
    return {
        "server": lab.server,
        "name": lab.server_name,
        "old_address": old,
        "new_address": new,
        "ttl_s": ttl,
        "poll_s": 2.0**lab.poll,
        "late_dns": late_dns,
        "dns_update_latency_s": dns_latency,
        "changed_at": changed_at,
        "results": [asdict(r) | {"ok": r.ok} for r in results.values()],
        "model": models,
        "ok": all(r.ok for r in results.values()),
    }


def wait_lookups(lab: Lab, results: dict[str, Result], since: float, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = set(results)
    while pending and time.monotonic() < deadline:
        for container in list(pending):
            if lookups_after(lab, lab.client_addresses[container], since):
                log(f"{container} looked {lab.server_name} up again (DNS still has the old address)")
                pending.discard(container)
        time.sleep(0.5)
    if pending:
        log(f"no new lookup within {timeout:.0f} s from {', '.join(sorted(pending))}; updating DNS anyway")


def wait_recovery(lab: Lab, results: dict[str, Result], new: str, since: float, timeout_s: float) -> None:
    pending = set(results)
    last_report = time.monotonic()
    while pending and time.time() - since < timeout_s:
        for container in list(pending):
            result = results[container]
            for sample in read_samples(container, result.implementation, lab):
                if sample.at > since and synchronised(sample, new):
                    # NTPsec reports when the response arrived; chrony only that it has one.
                    if sample.last_rx is not None and sample.last_rx > since:
                        result.recovered_s = sample.last_rx - since
                        result.measured_with = "ntpq rv: srcadr, reach and rec (when the response arrived)"
                    else:
                        result.recovered_s = sample.at - since
                        result.measured_with = f"chronyc sources/authdata sampled every {CHRONY_SAMPLE_INTERVAL_S} s"
                    log(f"{container}: authenticated time from {new} {result.recovered_s:.1f} s after the change")
                    pending.discard(container)
                    break
        if pending and time.monotonic() - last_report > 60:
            log(f"{time.time() - since:.0f} s after the change; still waiting for {', '.join(sorted(pending))}")
            last_report = time.monotonic()
        time.sleep(1.0)


def judge(result: Result) -> None:
    low, high = result.recovery_predicted_s
    if result.recovered_s is None:
        result.verdicts.append("not recovered before the drill gave up")
    elif not low <= result.recovered_s <= high:
        result.verdicts.append(f"recovery {result.recovered_s:.1f} s outside the model's [{low:.1f}, {high:.1f}] s")
    low, high = result.reresolve_predicted_s
    if result.reresolved_s is None:
        result.verdicts.append("no new lookup of the name seen in the resolver's log")
    elif not low <= result.reresolved_s <= high:
        result.verdicts.append(
            f"re-resolution {result.reresolved_s:.1f} s outside the model's [{low:.1f}, {high:.1f}] s"
        )


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def report(summary: dict[str, Any], baseline: dict[str, Any] | None = None) -> str:
    lines = [
        "",
        f"Recovery drill: {summary['name']} moved {summary['old_address']} -> {summary['new_address']} "
        f"({'late DNS' if summary['late_dns'] else 'DNS updated by the agent'}); "
        f"poll {summary['poll_s']:g} s, TTL {summary['ttl_s']} s, primary had the new record "
        f"{summary['dns_update_latency_s']:.2f} s after the change.",
        "Times are seconds after the change; predicted = recovery model (plugins/module_utils/_model/recovery.py).",
        "",
        f"{'client':<30} {'model':<11} {'re-resolved':>11} {'predicted':>16} "
        f"{'recovered':>10} {'predicted':>18}  result",
    ]
    for r in summary["results"]:
        rr = f"[{r['reresolve_predicted_s'][0]:.1f}, {r['reresolve_predicted_s'][1]:.1f}]"
        rc = f"[{r['recovery_predicted_s'][0]:.1f}, {r['recovery_predicted_s'][1]:.1f}]"
        lines.append(
            f"{r['container']:<30} {r['model_client']:<11} {fmt(r['reresolved_s']):>11} {rr:>16} "
            f"{fmt(r['recovered_s']):>10} {rc:>18}  {'ok' if r['ok'] else 'MISMATCH'}"
        )
        lines.extend(f"    finding: {v}" for v in r["verdicts"])
    good = {r["container"]: r["recovered_s"] for r in (baseline or {}).get("results", [])}
    for container, model in summary["model"].items():
        lines.append(f"  model for {container}: {model['explanation']}")
        if summary["late_dns"]:
            measured = next(r["recovered_s"] for r in summary["results"] if r["container"] == container)
            extra = (
                f"{measured - good[container]:.0f} s (against the last good drill's {good[container]:.1f} s)"
                if measured is not None and good.get(container) is not None
                else "- (no measured recovery, or no good drill to compare with)"
            )
            lines.append(
                f"    extra delay from late DNS: measured {extra}; model {model['late_dns_extra_s']:.0f} s "
                f"(recovery {model['recovery_earliest_s']:.0f}-{model['recovery_latest_s']:.0f} s instead of "
                f"{model['minimum_recovery_earliest_s']:.0f}-{model['minimum_recovery_latest_s']:.0f} s)"
            )
    lines.append("")
    lines.append(
        "drill: "
        + (
            "every measurement inside the model's interval"
            if summary["ok"]
            else "MISMATCH between the lab and the recovery model (see findings)"
        )
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", type=Path, default=ROOT / "inventories/lab")
    parser.add_argument("--server", choices=["chrony", "ntpsec"], default="chrony", help="which NTS server moves")
    parser.add_argument("--clients", default="chrony,ntpsec", help="client kinds to measure (comma separated)")
    parser.add_argument("--late-dns", action="store_true", help="update DNS only after the clients looked again")
    parser.add_argument("--json", type=Path, help="write the measurements and the model's numbers here")
    parser.add_argument("--baseline", type=Path, help="a good drill's JSON, to show the late case's extra delay")
    args = parser.parse_args(argv)
    os.environ.setdefault("CONTAINERS_CONF", str(ROOT / "molecule/containers.conf"))
    try:
        lab = load_lab(args.inventory, args.server, [k for k in args.clients.split(",") if k])
        summary = drill(lab, args.late_dns)
    except DrillError as exc:
        print(f"drill: cannot run: {exc}", file=sys.stderr)
        return 2
    baseline = json.loads(args.baseline.read_text()) if args.baseline and args.baseline.is_file() else None
    print(report(summary, baseline))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
