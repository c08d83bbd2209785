# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planned move on the running lab: playbooks/planned_move.yml, measured.

What it does:

1. Restarts the lab's clients (fresh processes: their NTS-KE address is the server's
   current address) and waits until each is synchronised over NTS to the chrony
   server, with the drill's samplers running in the client containers
   (scripts/lab_drill.py: chronyc every 50 ms, ntpq every 200 ms).
2. Runs playbooks/planned_move.yml against the lab's chrony server: from its current
   address to the other address of lab_drill_addresses4 (Server Negotiation, DNS
   updated and fresh before the key change, keys replaced, watch, NTP closed on the
   old address while NTS-KE stays there).
3. Prints, per client, the polls from the key change to its first authenticated
   response from the new address next to the recovery model's interval
   (planned_move_client), and for NTPsec the time without an authenticated sample;
   then watches the clients for --watch-polls polls with the old address closed for
   NTP and reports whether each stayed synchronised at the new address.
4. With --runs N, repeats 2. and 3. N times in a row on the same clients, each move
   going back to the other address (both directions, alternating), with the key
   change delayed by a random fraction of the poll interval (--seed), so it lands at
   random points of the clients' poll cycle; prints each run's figures and the pass
   rate.
5. With --refusal, first checks that the playbook refuses to start: with NTS-KE
   dropped on the current address (pre-move check old_nts_ke) and with NTP dropped
   on the other one (pre-move check new_ntp), nothing may change (DNS record, TTL,
   key file).
6. Puts the lab back: the old address and the playbook's nftables table go, the
   server role runs again from the inventory (ntsntpserver and ntsrotate as before),
   the ddns agent starts and the clients restart.

Exit status: 0 when every measurement lies in the model's interval and every client
stayed synchronised in every run (and the refusals refused), 1 when not (a finding),
2 when it cannot run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / ".collections"))
sys.path.insert(0, str(ROOT / "scripts"))

import lab_drill as drill
from ansible_collections.ntsops.nts.plugins.module_utils._model import move_client

STATE_DIR = ROOT / ".cache" / "lab"
PLAYBOOK_TIMEOUT_S = 1800.0
# The TTL during the move: short, the lab's clients are few and the resolver honours it.
MOVE_TTL_S = 5
NFT_TABLE = "ntsops_planned_move"


def log(message: str) -> None:
    print(f"[planned-move {time.strftime('%H:%M:%S')}] {message}", flush=True)


def ansible_playbook(inventory: Path, playbook: str, *extra: str, expect_failure: bool | None = False) -> str:
    """Run a playbook; its output is printed and returned.

    Raises DrillError unless it exits as expected (expect_failure None: either way).
    """
    env = dict(os.environ)
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}:{env.get('PATH', '')}"
    env["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    argv = [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(inventory), playbook, *extra]
    log("running " + " ".join(argv[1:4]) + " ...")
    # S603: argv is fixed here plus values from the inventory.
    done = subprocess.run(argv, cwd=ROOT, env=env, timeout=PLAYBOOK_TIMEOUT_S, check=False,  # noqa: S603
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(done.stdout[-20000:] if expect_failure else done.stdout, end="", flush=True)
    if expect_failure is not None and (done.returncode != 0) != expect_failure:
        raise drill.DrillError(f"{playbook} {'succeeded' if expect_failure else 'failed'} ({done.returncode})")
    return done.stdout


@dataclass(frozen=True)
class Move:
    """What every move of one series shares."""

    ttl: int
    key_method: str
    report: Path


def move_args(lab: drill.Lab, old: str, new: str, move: Move, switch_delay: float = 0.0) -> list[str]:
    ttl = move.ttl
    return [
        "-e", f"planned_move_server={lab.server}", "-e", f"planned_move_old_ipv4={old}",
        "-e", f"planned_move_new_ipv4={new}", "-e", f"planned_move_prefix4={lab.prefix}",
        "-e", "planned_move_dns_server={{ lab_dns_primary_address4 }}",
        "-e", "planned_move_dns_zone={{ lab_zone }}",
        "-e", "planned_move_dns_key_name={{ lab_tsig_key_name }}",
        "-e", "planned_move_dns_key_secret={{ lab_tsig_secret }}",
        "-e", "planned_move_dns_key_algorithm={{ lab_tsig_algorithm }}",
        "-e", "planned_move_fleet={{ lab_client_mix }}",
        "-e", "planned_move_update_latency={{ lab_update_latency }}",
        "-e", f"planned_move_old_ttl={ttl}", "-e", f"planned_move_ttl={min(ttl, MOVE_TTL_S)}",
        "-e", f"planned_move_key_method={move.key_method}",
        "-e", f"planned_move_report_file={move.report}",
        "-e", f"planned_move_switch_delay={switch_delay:.2f}",
    ]


def server_state(lab: drill.Lab) -> dict[str, Any]:
    """What a refused move must leave alone: the name's record and TTL, the cookie key ids.

    (Ids, not the file: a restart rewrites it with a new key age, chrony save_keys.)
    """
    keys = drill.podman_exec(lab.server, "awk 'NR > 2 {print $1}' /var/lib/chrony/ntskeys", check=False)
    return {"dns": drill.dns_record(lab), "keys": keys.split()}


def refusals(inventory: Path, lab: drill.Lab, old: str, new: str, move: Move) -> list[str]:
    """The playbook must refuse, naming the check, when old NTS-KE or new NTP is broken."""
    findings = []
    cases = [("old_nts_ke", f"ip daddr {old} tcp dport 4460 drop"),
             ("new_ntp", f"ip daddr {new} udp dport 123 drop")]
    for check, rule in cases:
        found = len(findings)
        before = server_state(lab)
        drill.podman_exec(lab.server, "nft add table inet ntsops_lab_break && nft add chain inet ntsops_lab_break "
                          f"input '{{ type filter hook input priority -20; policy accept; }}' && "
                          f"nft add rule inet ntsops_lab_break input {rule}")
        try:
            out = ansible_playbook(inventory, "playbooks/planned_move.yml",
                                   *move_args(lab, old, new, move), expect_failure=True)
        except drill.DrillError as exc:
            findings.append(f"refusal {check}: {exc}")
            out = ""
        finally:
            drill.podman_exec(lab.server, "nft delete table inet ntsops_lab_break", check=False)
        if out and f"pre-move check {check} failed" not in out.replace("\n", " "):
            findings.append(f"refusal {check}: the playbook failed without naming the check")
        after = server_state(lab)
        if after != before:
            findings.append(f"refusal {check}: changed {[k for k in before if before[k] != after[k]]}")
        log(f"refusal with {rule}: {'; '.join(findings[found:]) or 'refused as it must, nothing changed'}")
    return findings


def measure(lab: drill.Lab, samples: dict[str, list[drill.Sample]], new: str, switched: float,
            watch_from: float, *, closed: float | None = None) -> list[dict[str, Any]]:
    """Per client: polls to the first authenticated response from the new address.

    chrony clients count from the key change (the NAK moves them); NTPsec clients,
    which ignore NAKs, from when NTP closed on the old address (their cookies run out
    from then on), when the playbook closed it.
    """
    poll_s = 2.0**lab.poll
    rows = []
    for container, kind in lab.clients.items():
        since = closed if kind == "ntpsec" and closed is not None else switched
        model = move_client.planned_move_client({"client": lab.model_clients[container], "maxpoll": lab.poll})
        mine = samples.get(container, [])
        first = next((s for s in mine if s.at > since and s.address == new and s.reach != 0
                      and s.authenticated), None)
        row: dict[str, Any] = {
            "container": container, "client": lab.model_clients[container], "poll_s": poll_s,
            "model_first_auth_polls": model["first_auth_new_polls"], "model_gap_polls": model["gap_polls"],
            "first_auth_polls": None, "gap_polls": None, "watch_unsynchronised_samples": None, "verdicts": [],
        }
        if first is not None:
            # NTPsec's sampler reads the receive time of the last packet: exact.
            first_at = first.last_rx if first.last_rx is not None else first.at
            row["first_auth_polls"] = round((first_at - since) / poll_s, 2)
            before = [s for s in mine if s.at <= since and s.last_rx is not None]
            if before:
                row["gap_polls"] = round((first_at - before[-1].last_rx) / poll_s, 2)
            low, high = model["first_auth_new_polls"]
            # resolution: the chrony sampler's 50 ms plus one chronyc call
            if not low - 0.05 <= row["first_auth_polls"] <= high + 0.25 / poll_s:
                row["verdicts"].append(f"first authenticated response outside the model's {low:.2f} .. {high:.2f}")
        else:
            row["verdicts"].append("no authenticated response from the new address")
        watched = [s for s in mine if s.at >= watch_from]
        bad = [s for s in watched if not drill.synchronised(s, new)]
        row["watch_unsynchronised_samples"] = f"{len(bad)} of {len(watched)}"
        if not watched or bad:
            row["verdicts"].append("not synchronised at the new address throughout the watch")
        rows.append(row)
    return rows


def restore(inventory: Path, lab: drill.Lab, old: str, new: str, agent: str) -> None:
    """The lab as site.yml leaves it, at the new address."""
    log("putting the lab back: old address and nftables table removed, server role again, agent, clients")
    # Deleting a primary address also deletes the secondaries of its subnet (the new
    # address) unless promote_secondaries is on, which the container cannot set: the
    # new address is put back at once.
    drill.podman_exec(lab.server, f"nft delete table inet {NFT_TABLE} 2>/dev/null; "
                      f"ip addr del {old}/{lab.prefix} dev eth0 2>/dev/null; "
                      f"ip addr replace {new}/{lab.prefix} dev eth0", check=False)
    ansible_playbook(inventory, "playbooks/site.yml", "--limit", lab.server)
    drill.podman_exec(lab.server, f"systemctl start {agent}", check=False)
    drill.restart_clients(lab)


def one_move(inventory: Path, lab: drill.Lab, old: str, new: str, move: Move, *, watch_polls: int,
             rng: random.Random) -> dict[str, Any]:
    """One planned move, measured; the samplers run. A playbook that stops is a failed run, not the end."""
    drill.wait_synchronised(lab, old)
    for container, kind in lab.clients.items():
        drill.read_samples(container, kind, lab)  # forget what came before this run
    delay = rng.uniform(0, 2.0**lab.poll)
    report_path = move.report
    report_path.unlink(missing_ok=True)
    started = time.time()
    out = ansible_playbook(inventory, "playbooks/planned_move.yml",
                           *move_args(lab, old, new, move, delay), expect_failure=None)
    if not report_path.exists():
        raise drill.DrillError("the playbook stopped before the key change (no report)")
    report = json.loads(report_path.read_text())
    switched = float(report["switched_at"])
    watch_from = time.time()
    log(f"watching {watch_polls} polls with NTP closed on {old} (NTS-KE stays)")
    time.sleep(watch_polls * 2.0**lab.poll)
    samples = {c: drill.read_samples(c, kind, lab) for c, kind in lab.clients.items()}
    closed = report.get("old_ntp_closed_at")
    rows = measure(lab, samples, new, switched, watch_from, closed=None if closed is None else float(closed))
    if "is NOT proven" in out:
        rows[0]["verdicts"].append("the playbook did not prove the move (it stopped, both addresses serve)")
    return {"old": old, "new": new, "switch_delay_s": round(delay, 2), "playbook_s": round(watch_from - started, 1),
            "rows": rows, "playbook_report": report}


def print_run(number: int, run: dict[str, Any], lab: drill.Lab, key_method: str) -> None:
    print(f"\nRun {number}: planned move of {lab.server_name} {run['old']} -> {run['new']} (poll {2.0**lab.poll:g} s, "
          f"keys: {key_method}, key change delayed {run['switch_delay_s']} s, playbook {run['playbook_s']} s)")
    labels = [f"{row['container']} ({row['client']})" for row in run["rows"]]
    width = max([len("client"), *map(len, labels)])
    print(f"{'client':<{width}} {'first auth from new (polls)':>28} {'model':>14} {'gap (polls)':>12} {'model':>14}"
          f" {'watch: unsynced samples':>24}")
    for label, row in zip(labels, run["rows"], strict=True):
        first = "-" if row["first_auth_polls"] is None else f"{row['first_auth_polls']:.2f}"
        gap = "-" if row["gap_polls"] is None else f"{row['gap_polls']:.2f}"
        model = "{:.2f} .. {:.2f}".format(*row["model_first_auth_polls"])
        model_gap = "{:.2f} .. {:.2f}".format(*row["model_gap_polls"])
        print(f"{label:<{width}} {first:>28} {model:>14} {gap:>12} {model_gap:>14}"
              f" {row['watch_unsynchronised_samples']:>24}")
        for verdict in row["verdicts"]:
            print(f"  FINDING: {verdict}")
    report = run["playbook_report"]
    print(f"  server, last watched interval: {json.dumps(report.get('evidence'))}; "
          f"intervals watched {report.get('watch_intervals')}; counters since the move began {report.get('counters')}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--inventory", type=Path, default=ROOT / "inventories/lab")
    parser.add_argument("--watch-polls", type=int, default=30)
    parser.add_argument("--key-method", choices=["restart", "rekey"], default="rekey")
    parser.add_argument("--runs", type=int, default=1, help="moves in a row, alternating direction")
    parser.add_argument("--seed", type=int, default=None, help="seed of the key-change delays")
    parser.add_argument("--refusal", action="store_true", help="first check the two pre-move refusals")
    parser.add_argument("--json", type=Path, default=STATE_DIR / "planned-move.json")
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 50:
        parser.error("--runs must be 1 to 50")
    os.environ.setdefault("CONTAINERS_CONF", str(ROOT / "molecule/containers.conf"))
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)  # noqa: S311 -- delays of a test, not secrets
    agent = "ntsops-ddns-agent"
    runs: list[dict[str, Any]] = []
    findings: list[str] = []
    try:
        lab = drill.load_lab(args.inventory, "chrony", ["chrony", "ntpsec"])
        first_old = old = drill.current_address(lab)
        new = next(a for a in lab.addresses if a != old)
        _records, ttl = drill.dns_record(lab)
        report_path = args.json.with_name("planned-move-playbook.json")
        report_path.parent.mkdir(parents=True, exist_ok=True)
        move = Move(ttl=ttl, key_method=args.key_method, report=report_path)
        try:
            if args.refusal:
                findings += refusals(args.inventory, lab, old, new, move)
            # After the refusals: they drop NTS-KE or NTP for a moment, which a client in
            # its start-up NTS-KE would take as a failure (NTPsec then waits 2^12 s).
            drill.restart_clients(lab)
            with drill.samplers(lab, drill.CHRONY_SAMPLE_INTERVAL_S):
                for number in range(1, args.runs + 1):
                    log(f"move {number} of {args.runs}: {old} -> {new} (key-change delays seeded {seed})")
                    run = one_move(args.inventory, lab, old, new, move, watch_polls=args.watch_polls, rng=rng)
                    runs.append(run)
                    print_run(number, run, lab, args.key_method)
                    old, new = new, old
        finally:
            try:
                # the last move went from `new` to `old` (swapped after it)
                restore(args.inventory, lab, new, old, agent)
            except drill.DrillError as exc:
                print(f"planned-move: could not put the lab back: {exc} (scripts/lab.sh up repairs it)",
                      file=sys.stderr)
    except drill.DrillError as exc:
        print(f"planned-move: cannot run: {exc}", file=sys.stderr)
        return 2
    passed = [run for run in runs if all(not row["verdicts"] for row in run["rows"])]
    print(f"\nPlanned moves on {lab.server_name} starting at {first_old}: {len(passed)} of {len(runs)} passed "
          f"(key-change delays seeded {seed}; watch {args.watch_polls} polls each)")
    for finding in findings:
        print(f"FINDING: {finding}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"seed": seed, "runs": runs, "refusal_findings": findings}, indent=2) + "\n")
    return 0 if len(passed) == len(runs) and not findings else 1


if __name__ == "__main__":
    sys.exit(main())
