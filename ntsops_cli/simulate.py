# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``ntsops simulate``: Monte Carlo of a client fleet through one server address change."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError
from ansible_collections.ntsops.nts.plugins.module_utils._herd.plan import curve_document
from ansible_collections.ntsops.nts.plugins.module_utils._model.clients import CLIENTS
from ansible_collections.ntsops.nts.plugins.module_utils._model.recovery import recovery_time
from ansible_collections.ntsops.nts.plugins.module_utils._model.simulate import (
    OLD_KE_BIN_S,
    SimulationResult,
    simulate_fleet,
)
from ansible_collections.ntsops.nts.plugins.module_utils._model.sizing import (
    CHRONY_NTS_RATELIMIT_DEFAULT,
    rate_limited_requests,
    recommend_server_settings,
)
from ansible_collections.ntsops.nts.plugins.module_utils._model.summary import (
    arrival_histogram,
    kind_values,
    largest_group_arrivals,
    latest_ke,
    percentile,
)

_INT_KEYS = {"minpoll", "maxpoll", "poll", "cookies"}
_PLOT_POINTS = 2000
# How many NAT groups the rate-limit check replays (they are all the same size).
_CHECKED_GROUPS = 500
_CURVE_BINS = 20_000


def parse_client_spec(text: str) -> dict[str, Any]:
    """``chrony-4.3,maxpoll=10,share=0.5`` -> a client mapping."""
    name, *pairs = [part.strip() for part in text.split(",")]
    spec: dict[str, Any] = {"client": name}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"expected key=value in client spec, got {pair!r}")
        try:
            spec[key] = int(value) if key in _INT_KEYS else float(value) if key == "share" else value
        except ValueError:
            raise argparse.ArgumentTypeError(f"{key} must be a number in client spec, got {value!r}") from None
    return spec


def configure(parser: argparse.ArgumentParser) -> None:
    """Fill the `simulate` subcommand's parser (ntsops_cli.main creates it, with its help line)."""
    parser.description = (
        "Simulate N clients through one change of the server's address: their recovery times and the "
        "NTS-KE arrival rate at the new address, the NTS-KE connections each kind's retry law sends to the "
        "old address before that, with recommended chrony server settings. Client specs "
        f"look like 'chrony-4.3,maxpoll=10,share=0.5' (clients: {', '.join(CLIENTS)}; keys: minpoll, "
        "maxpoll, poll_state, poll, old_address, cookies, share)."
    )
    parser.add_argument("--clients", type=int, default=100_000, help="number of clients (default 100000)")
    parser.add_argument(
        "--client",
        dest="mix",
        action="append",
        type=parse_client_spec,
        metavar="SPEC",
        help="a client kind of the mix; repeat for several (default chrony-4.3)",
    )
    parser.add_argument("--ttl", type=float, default=300.0, help="DNS TTL in seconds (default 300)")
    parser.add_argument("--update-latency", type=float, default=60.0, help="seconds until DNS has the new address")
    parser.add_argument("--nat-group-size", type=int, default=1, help="clients sharing one source address")
    parser.add_argument("--nat-fraction", type=float, default=1.0, help="fraction of clients behind such NAT groups")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--server-cores", type=int, default=None, help="cap on the recommended ntsprocesses")
    parser.add_argument("--plot", metavar="FILE", help="write the recovery CDF and arrival rate (.png or .svg)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--curve-out", metavar="FILE",
        help="write the NTS-KE arrival curve at the new address as JSON for 'ntsops herd --curve'",
    )
    parser.add_argument(
        "--old-curve-out", metavar="FILE",
        help="write the NTS-KE connections to the OLD address while DNS is stale, same format",
    )
    parser.add_argument("--pure", action="store_true", help="do not use numpy even when it is installed")
    parser.set_defaults(run=run)


def summarise(result: SimulationResult, mix: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    kinds = []
    for index, client in enumerate(mix):
        values = kind_values(result, index)
        if not len(values):
            continue
        model = recovery_time(client, args.ttl, args.update_latency)
        kinds.append(
            {
                "client": client["client"],
                "spec": client,
                "count": len(values),
                "model_recovery_s": [model["recovery_earliest_s"], model["recovery_latest_s"]],
                "model_selectable_s": (
                    None
                    if model["selectable_earliest_s"] is None
                    else [model["selectable_earliest_s"], model["selectable_latest_s"]]
                ),
                "meets_budget": model["meets_budget"],
                "p50_s": percentile(values, 0.5),
                "p99_s": percentile(values, 0.99),
                "max_s": percentile(values, 1.0),
                "old_ke_total": result.old_ke_by_kind[index],
            }
        )
    per_second = arrival_histogram(result.ke_s, 1.0)
    peak = max(per_second)
    fleet_description = {
        "expected_clients": result.clients,
        "largest_nat_group": args.nat_group_size,
        "client_mix": mix,
    }
    if args.server_cores is not None:
        fleet_description["server_cores"] = args.server_cores
    recommendation = recommend_server_settings(fleet_description)
    groups = largest_group_arrivals(result, _CHECKED_GROUPS)
    limits = {
        "recommended": (recommendation["ntsratelimit_interval"], recommendation["ntsratelimit_burst"]),
        "chrony_default": (CHRONY_NTS_RATELIMIT_DEFAULT["interval"], CHRONY_NTS_RATELIMIT_DEFAULT["burst"]),
    }
    rate_limited = {
        name: {
            "groups_checked": len(groups),
            "groups_affected": sum(1 for g in groups if rate_limited_requests(g, interval, burst)),
            "requests_limited": sum(rate_limited_requests(g, interval, burst) for g in groups),
        }
        for name, (interval, burst) in limits.items()
    }
    group_peak = max((max(arrival_histogram(g, 1.0)) for g in groups), default=0)
    old = result.old_ke_per_bin
    old_peak = max(old, default=0)
    return {
        "parameters": result.parameters,
        "kinds": kinds,
        "recovery_p50_s": percentile(result.recovery_s, 0.5),
        "recovery_p99_s": percentile(result.recovery_s, 0.99),
        "recovery_max_s": percentile(result.recovery_s, 1.0),
        "ke_peak_per_s": peak,
        "ke_peak_at_s": per_second.index(peak),
        "ke_total": sum(per_second),
        "ke_group_peak_per_s": group_peak,
        "old_ke_total": sum(old),
        "old_ke_peak_per_s": old_peak / OLD_KE_BIN_S,
        "old_ke_peak_at_s": old.index(old_peak) * OLD_KE_BIN_S if old else None,
        "rate_limited": rate_limited,
        "recommendation": recommendation,
    }


def print_table(summary: dict[str, Any], elapsed: float) -> None:
    params = summary["parameters"]
    print(
        f"{params['clients']} clients, TTL {params['ttl']:g} s, update latency {params['update_latency']:g} s, "
        f"NAT groups of {params['nat_group_size']} for {params['nat_fraction']:.0%} ({elapsed:.2f} s)"
    )
    header = f"{'client':<13} {'count':>9}  {'model recovery s':>19}  {'p50 s':>9} {'p99 s':>9} {'max s':>9}  budget"
    print(header)
    print("-" * len(header))
    for kind in summary["kinds"]:
        low, high = kind["model_recovery_s"]
        print(
            f"{kind['client']:<13} {kind['count']:>9}  {low:>9.0f}-{high:<9.0f}  {kind['p50_s']:>9.0f} "
            f"{kind['p99_s']:>9.0f} {kind['max_s']:>9.0f}  {'ok' if kind['meets_budget'] else 'MISSED'}"
        )
    for kind in summary["kinds"]:
        if kind.get("model_selectable_s"):
            low, high = kind["model_selectable_s"]
            print(f"{kind['client']:<13} source selectable again (model): {low:.0f}-{high:.0f} s after the change")
    print(
        f"{'all':<13} {params['clients']:>9}  {'':>19}  {summary['recovery_p50_s']:>9.0f} "
        f"{summary['recovery_p99_s']:>9.0f} {summary['recovery_max_s']:>9.0f}"
    )
    print(
        f"NTS-KE at the new address: {summary['ke_total']} in total, peak {summary['ke_peak_per_s']}/s "
        f"at {summary['ke_peak_at_s']} s; one NAT group peaks at {summary['ke_group_peak_per_s']}/s"
    )
    if summary["old_ke_total"]:
        by_kind = ", ".join(f"{k['client']} {k['old_ke_total']}" for k in summary["kinds"])
        print(
            f"NTS-KE connections to the OLD address before that: {summary['old_ke_total']} in total ({by_kind}), "
            f"peak {summary['old_ke_peak_per_s']:.0f}/s at {summary['old_ke_peak_at_s']:.0f} s"
        )
    else:
        print("NTS-KE connections to the OLD address before that: none")
    for name, limited in summary["rate_limited"].items():
        if limited["groups_checked"]:
            print(
                f"rate limit ({name.replace('_', ' ')}): {limited['groups_affected']} of {limited['groups_checked']} "
                f"NAT groups hit it, {limited['requests_limited']} NTS-KE requests refused"
            )
    rec = summary["recommendation"]
    print(
        f"recommended chrony: ntsratelimit interval {rec['ntsratelimit_interval']} burst {rec['ntsratelimit_burst']} "
        f"leak {rec['ntsratelimit_leak']}; ntsprocesses {rec['ntsprocesses']}; "
        f"maxntsconnections {rec['maxntsconnections']}"
    )
    print(rec["explanation"])


def write_plot(path: str, result: SimulationResult, mix: list[dict[str, Any]]) -> None:
    try:
        import matplotlib  # noqa: PLC0415 - optional, only for --plot

        matplotlib.use("Agg")
        from matplotlib import pyplot  # noqa: PLC0415
    except ImportError as exc:
        raise NtsopsError("--plot needs matplotlib, which is not installed") from exc
    figure, (cdf, rate) = pyplot.subplots(2, 1, figsize=(9, 8))
    for index, client in enumerate(mix):
        values = kind_values(result, index, sort=True)
        if not len(values):
            continue
        step = max(1, len(values) // _PLOT_POINTS)
        xs = [float(x) for x in values[::step]] + [float(values[-1])]
        ys = [i / len(values) for i in range(0, len(values), step)] + [1.0]
        cdf.step([x / 3600 for x in xs], ys, where="post", label=client["client"])
    cdf.set_xlabel("hours after the change")
    cdf.set_ylabel("share of clients back on authenticated time")
    cdf.legend()
    cdf.grid(True)
    span = latest_ke(result)
    width = max(1.0, math.ceil(span / 300))
    counts = arrival_histogram(result.ke_s, width)
    rate.bar([i * width / 3600 for i in range(len(counts))], [c / width for c in counts], width=width / 3600)
    rate.set_xlabel("hours after the change")
    rate.set_ylabel(f"NTS-KE per second at the new address ({width:g} s bins)")
    rate.grid(True)
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)


def write_curve(path: str, per_bin: list[int], bin_s: float, result: SimulationResult) -> None:
    """A curve for ``ntsops herd`` from counts per ``bin_s``, merged into wider bins when
    needed to stay under _CURVE_BINS bins."""
    factor = max(1, math.ceil(len(per_bin) / _CURVE_BINS))
    merged = [sum(per_bin[i : i + factor]) for i in range(0, len(per_bin), factor)]
    document = curve_document(merged, bin_s * factor, clients=result.clients, parameters=result.parameters)
    try:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(document, handle)
    except OSError as exc:
        raise NtsopsError(f"cannot write arrival curve {path}: {exc.strerror}") from exc


def run(args: argparse.Namespace) -> int:
    mix = args.mix or [{"client": "chrony-4.3"}]
    if args.plot and not args.plot.endswith((".png", ".svg")):
        print("ntsops simulate: --plot must name a .png or .svg file", file=sys.stderr)
        return 2
    try:
        started = time.perf_counter()
        result = simulate_fleet(
            mix,
            args.clients,
            args.ttl,
            args.update_latency,
            nat_group_size=args.nat_group_size,
            nat_fraction=args.nat_fraction,
            seed=args.seed,
            use_numpy=False if args.pure else None,
        )
        elapsed = time.perf_counter() - started
        summary = summarise(result, mix, args)
        summary["simulation_seconds"] = round(elapsed, 3)
        if args.plot:
            write_plot(args.plot, result, mix)
        if args.curve_out:
            write_curve(args.curve_out, arrival_histogram(result.ke_s, 1.0), 1.0, result)
        if args.old_curve_out:
            if not result.old_ke_per_bin:
                raise NtsopsError("--old-curve-out: no client connects to the old address in this simulation")
            write_curve(args.old_curve_out, result.old_ke_per_bin, OLD_KE_BIN_S, result)
    except NtsopsError as exc:
        print(f"ntsops simulate: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    else:
        print_table(summary, elapsed)
    return 0
