"""A herd of K clients behind ONE source address (a NAT) re-keying against chronyd's
NTS-KE rate limit: with the setting the fleet model recommends for that NAT group
(sizing.recommend_server_settings) none may be dropped; with chrony's default limit once
enabled (`ntsratelimit` without options: interval 6, burst 8, leak 2) the drops show.

Two arrival patterns, both from one source address 127.0.1.1:
- "at once": the whole group re-keys within a couple of seconds (K_AT_ONCE clients);
- "over one poll": K_SPREAD chrony 4.3 clients polling every 2^POLL s re-key at uniform
  random phases over one poll interval (an arrival curve file, herd --curve).

Each case runs against a fresh chronyd (loopback only; its rate-limit state starts
empty), bounded by the arrival window plus timeouts. Run as root from the repo root:

    .venv/bin/python benchmarks/herd_ratelimit.py [--at-once 200] [--spread 400] [--poll 4]

Writes benchmarks/results/herd_ratelimit.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / ".collections"))

import herdlab
from ansible_collections.ntsops.nts.plugins.module_utils._herd import plan
from ansible_collections.ntsops.nts.plugins.module_utils._model import sizing

SOURCE = "127.0.1.1"
CURVE_BIN_S = 0.25


def recommended(clients: int, poll: int) -> dict[str, Any]:
    return sizing.recommend_server_settings({
        "expected_clients": clients,
        "largest_nat_group": clients,
        "client_mix": [{"client": "chrony-4.3", "minpoll": poll, "maxpoll": poll}],
    })


def spread_curve(clients: int, window: float, seed: int) -> dict[str, Any]:
    """Uniform random re-keying phases over one poll interval, as arrivals per bin."""
    rng = random.Random(seed)  # noqa: S311 - reproducible phases, not secrets
    bins = [0] * round(window / CURVE_BIN_S)
    for _client_index in range(clients):
        bins[min(len(bins) - 1, int(rng.uniform(0, window) / CURVE_BIN_S))] += 1
    return plan.curve_document(bins, CURVE_BIN_S, clients=clients, window_s=window, seed=seed)


def run_case(label: str, limit_line: str, clients: int, shape: list[str], duration: float) -> dict[str, Any]:
    with herdlab.chrony_server([limit_line]) as (server, ca_path):
        summary, _herd_output = herdlab.run_herd([
            "127.0.0.1", "--port", str(server.ntsport), "--ca", str(ca_path), "--clients", str(clients),
            "--duration", f"{duration:g}", "--source-address", SOURCE, "--concurrency", "16", *shape,
        ])
        stats = server.serverstats()
    case = {
        "case": label,
        "chrony": limit_line,
        "clients_behind_one_address": clients,
        "ok": summary["ok"],
        "dropped_seen_by_herd": summary["failures"]["closed"],
        "other_failures": {k: v for k, v in summary["failures"].items() if v and k != "closed"},
        "chrony_ntske_accepted": stats.get("NTS-KE connections accepted"),
        "chrony_ntske_dropped": stats.get("NTS-KE connections dropped"),
        "not_started": summary["not_started"],
        "latency_ms": summary["latency_ms"],
        "elapsed_s": summary["elapsed_s"],
    }
    print(json.dumps(case))
    return case


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--at-once", type=int, default=200, help="clients of the 'at once' group (<= 255)")
    parser.add_argument("--spread", type=int, default=400, help="clients of the 'over one poll' group")
    parser.add_argument("--poll", type=int, default=4, help="poll exponent of the spread group (window 2^poll s)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not 2 <= args.poll <= 6:
        raise SystemExit("--poll must be 2-6 (the run lasts 2^poll seconds per case)")
    default_line = "ntsratelimit"
    load = os.getloadavg()
    cases = []

    at_once_rec = recommended(args.at_once, args.poll)
    at_once_line = (f"ntsratelimit interval {at_once_rec['ntsratelimit_interval']} burst "
                    f"{at_once_rec['ntsratelimit_burst']} leak {at_once_rec['ntsratelimit_leak']}")
    # All of the group within about two seconds.
    at_once_shape = ["--rate", f"{args.at_once / 2:g}"]
    for label, line in (("at once, recommended", at_once_line), ("at once, chrony default", default_line)):
        cases.append(run_case(label, line, args.at_once, at_once_shape, 2.5))

    window = 2.0**args.poll
    spread_rec = recommended(args.spread, args.poll)
    spread_line = (f"ntsratelimit interval {spread_rec['ntsratelimit_interval']} burst "
                   f"{spread_rec['ntsratelimit_burst']} leak {spread_rec['ntsratelimit_leak']}")
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="ntsops-curve-") as curve:
        json.dump(spread_curve(args.spread, window, args.seed), curve)
        curve.flush()
        shape = ["--curve", curve.name]
        for label, line in (
            ("over one poll, recommended", spread_line), ("over one poll, chrony default", default_line)
        ):
            cases.append(run_case(label, line, args.spread, shape, window))

    path = herdlab.write_result("herd_ratelimit", {
        "load_average_at_start": load,
        "source_address": SOURCE,
        "spread_window_s": window,
        "recommendations": {"at_once": at_once_rec, "over_one_poll": spread_rec},
        "cases": cases,
        "recommended_dropped_none": all(c["dropped_seen_by_herd"] == 0 and c["chrony_ntske_dropped"] == 0
                                        for c in cases if c["case"].endswith("recommended")),
        "default_dropped": {c["case"]: c["chrony_ntske_dropped"] for c in cases if c["case"].endswith("default")},
    })
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
