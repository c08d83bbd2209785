"""Dynamic DNS figures, measured against two real BIND 9 servers on loopback.

1. Agent path: time from an address change on an interface to BOTH authoritative
   servers (primary, and secondary by NOTIFY + IXFR) answering with the new A and
   AAAA records; median and max over --changes changes (target: under 2 s).
   With --renumbers N, then N IPv6 prefix renumberings with IPv4 unchanged: the
   old address deprecated (preferred_lft 0), the new prefix's address added with
   duplicate address detection (tentative first, as SLAAC does it), and the time
   from that add until both servers serve AAAA with the new address only; median
   and max, and the same with DAD off (the agent's share alone). The AAAA record
   must never be empty meanwhile (the script fails if it is).
2. The ntsops.nts.ddns_record module's wall-clock run time through `ansible
   localhost -m` for a no-op (records already right), median of --noop-runs, and
   the same no-op through the core alone (no Ansible start-up).

Everything runs inside a network namespace the script creates and removes (see
tests/integration/dns/ddns_lab.py). Needs root. Run from the repository root:

    sudo .venv/bin/python benchmarks/ddns_bench.py [--changes 20] [--renumbers 10] [--noop-runs 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration" / "dns"))

from ddns_lab import AgentLab, bind_pair, run_ddns_record

CORE_NOOP = """
import sys, time
from ansible_collections.ntsops.nts.plugins.module_utils._dns.client import DnsClient, DnspythonTransport, Endpoint
from ansible_collections.ntsops.nts.plugins.module_utils._dns.ensure import ensure_records
from ansible_collections.ntsops.nts.plugins.module_utils._dns.records import desired_states
from ansible_collections.ntsops.nts.plugins.module_utils._dns.tsig import load_key_file
key = load_key_file(sys.argv[1])
client = DnsClient(DnspythonTransport(), key=key, timeout=2)
wanted = desired_states("present", 30, [sys.argv[2]], [sys.argv[3]])
primary = Endpoint(sys.argv[5], int(sys.argv[7]))
times = []
for _ in range(int(sys.argv[6])):
    start = time.perf_counter()
    result = ensure_records(client, sys.argv[4], wanted, ttl=30, server=primary)
    assert not result.changed
    times.append(time.perf_counter() - start)
print(" ".join(f"{t:.6f}" for t in times))
"""


def summary(values: list[float]) -> dict[str, float]:
    return {"median_s": statistics.median(values), "max_s": max(values), "min_s": min(values), "n": len(values)}


def renumber(agent: AgentLab, v6: str, count: int, dad: bool) -> tuple[str, list[float]]:
    """``count`` prefix renumberings from ``v6``; the last address and the seconds to AAAA on both servers."""
    times = []
    for n in range(1, count + 1):
        new6 = f"2001:db8:5:{n + (0 if dad else 0x100):x}::1"
        measured = agent.renumber_and_measure(v6, new6, dad=dad)
        if not set(measured["aaaa_seen"]) <= {(v6,), (new6,)}:
            raise SystemExit(f"AAAA was not the old or the new address meanwhile: {measured}")
        agent.pair.netns.ip("-6", "addr", "del", f"{v6}/64", "dev", agent.interface)
        times.append(measured["seconds"])
        print(
            f"renumber {n:2d} (DAD {'on' if dad else 'off'}): {v6} -> {new6} "
            f"served by both servers after {measured['seconds']:.3f} s"
        )
        v6 = new6
        time.sleep(0.2)
    return v6, times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--renumbers", type=int, default=0, help="IPv6 prefix renumberings (each with and without DAD)")
    parser.add_argument("--noop-runs", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespace, named)", file=sys.stderr)
        return 2

    figures: dict[str, object] = {}
    with bind_pair() as pair:
        agent = AgentLab(pair, "bench.example.test")
        agent.add_interface("192.0.2.1", "2001:db8::1")
        agent.write_config(reconcile_interval=3600)
        agent.start()
        try:
            agent.wait_served("A", ["192.0.2.1"])
            changes = []
            for n in range(1, args.changes + 1):
                old, new = n, n + 1
                seconds = agent.change_and_measure(
                    f"192.0.2.{old}", f"192.0.2.{new}", f"2001:db8::{old:x}", f"2001:db8::{new:x}"
                )
                changes.append(seconds)
                print(f"change {n:2d}: 192.0.2.{old} -> 192.0.2.{new} served by both servers after {seconds:.3f} s")
                time.sleep(0.2)
            last = args.changes + 1
            v6 = f"2001:db8::{last:x}"
            for dad in (True, False):
                v6, times = renumber(agent, v6, args.renumbers, dad)
                if times:
                    figures[f"ipv6_prefix_change_to_aaaa_both_servers_dad_{'on' if dad else 'off'}"] = summary(times)
        finally:
            agent.stop()
        figures["agent_change_to_both_servers"] = summary(changes)

        noop_args = {
            "name": "bench.example.test",
            "server": pair.primary_address,
            "port": pair.port,
            "key_file": str(pair.key_file),
            "ipv4": [f"192.0.2.{last}"],
            "ipv6": [v6],
            "ttl": 30,
        }
        before = pair.update_count()
        module_times = []
        for _run_index in range(args.noop_runs):
            run = run_ddns_record(pair.netns, noop_args)
            if run.failed or run.result.get("changed"):
                raise SystemExit(f"no-op run was not a no-op: {run.stdout}")
            module_times.append(run.seconds)
        if pair.update_count() != before:
            raise SystemExit("a no-op run sent an UPDATE")
        figures["module_noop_via_ansible"] = summary(module_times)

        core = pair.netns.run(
            [
                sys.executable,
                "-c",
                CORE_NOOP,
                str(pair.key_file),
                f"192.0.2.{last}",
                v6,
                "bench.example.test",
                pair.primary_address,
                "20",
                str(pair.port),
            ],
            env=dict(os.environ, PYTHONPATH=str(REPO / ".collections")),
        )
        if core.returncode != 0:
            raise SystemExit(core.stderr)
        figures["core_noop_with_propagation_check"] = summary([float(t) for t in core.stdout.split()])

    for name, values in figures.items():
        print(f"{name}: " + ", ".join(f"{k} {v:.3f}" if k != "n" else f"n {v}" for k, v in values.items()))  # type: ignore[union-attr]
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
