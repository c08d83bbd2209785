"""Time the fleet simulator for 1,000,000 clients (numpy path and pure-Python path).

Run from the repository root: .venv/bin/python benchmarks/simulate_bench.py [--clients N] [--pure-only]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / ".collections"))

from ansible_collections.ntsops.nts.plugins.module_utils._model import simulate

MIX = [
    {"client": "chrony-4.3", "maxpoll": 10, "share": 0.5},
    {"client": "chrony-4.4+", "maxpoll": 10, "share": 0.2},
    {"client": "ntpsec-1.2", "maxpoll": 10, "share": 0.2},
    {"client": "rfc8915", "minpoll": 6, "maxpoll": 10, "poll_state": "ramping"},
]
SCENARIOS = {"fresh DNS (TTL 300 s)": (300.0, 60.0), "late DNS (TTL 86400 s)": (86400.0, 60.0)}


def measure(clients: int, use_numpy: bool, ttl: float, latency: float, repeats: int) -> float:
    times = []
    for seed in range(repeats):
        started = time.perf_counter()
        simulate.simulate_fleet(
            MIX, clients, ttl, latency, nat_group_size=40, nat_fraction=0.3, seed=seed, use_numpy=use_numpy
        )
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pure-only", action="store_true")
    args = parser.parse_args()
    paths = [False] if args.pure_only or simulate.np is None else [True, False]
    for name, (ttl, latency) in SCENARIOS.items():
        for use_numpy in paths:
            seconds = measure(args.clients, use_numpy, ttl, latency, args.repeats)
            print(
                f"{args.clients} clients, {name}, {'numpy' if use_numpy else 'pure Python'}: "
                f"{seconds:.2f} s (median of {args.repeats})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
