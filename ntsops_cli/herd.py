# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``ntsops herd``: a bounded NTS-KE load test, a thundering herd of re-keying clients.

Only loopback targets (127.0.0.0/8, ::1) are allowed without ``--i-mean-it``. An
address inside a network namespace counts as remote: tests run the command inside
the namespace with ``ip netns exec`` and pass the flag.

Arrival curve file (``--curve``, written by ``ntsops simulate --curve-out``): JSON
``{"format": "ntsops-arrival-curve/1", "bin_seconds": 1.0, "counts": [...]}``, the
NTS-KE arrivals per bin at the server after an address change. The curve's whole
span is scaled onto ``--duration`` and the ``--clients`` are shared out over its
bins in proportion to the counts, so the shape is kept and the size is yours.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError
from ansible_collections.ntsops.nts.plugins.module_utils._herd import herd, plan
from ansible_collections.ntsops.nts.plugins.module_utils._net.resolve import resolve_host
from ansible_collections.ntsops.nts.plugins.module_utils._nts.records import NTS_KE_PORT

EXIT_OK, EXIT_FAILURES, EXIT_USAGE = 0, 1, 2
FAILURE_WORDS = {
    "refused": "refused (TCP RST)",
    "closed": "accepted then closed (rate limit or allow)",
    "tls_error": "TLS error",
    "timeout": "timeout",
    "error_record": "NTS-KE Error record",
    "protocol_error": "broken NTS-KE response",
    "other": "other",
}


def configure(parser: argparse.ArgumentParser) -> None:
    """Fill the `herd` subcommand's parser (ntsops_cli.main creates it, with its help line)."""
    parser.description = (
        "Run N full TLS 1.3 + NTS-KE sessions against HOST and report NTS-KE per second, latency "
        "percentiles and failures by class, in total and per source address. Loopback only unless "
        "--i-mean-it. Exit 0 when every session succeeded, 1 when some failed, 2 on bad arguments."
    )
    parser.add_argument("host", help="NTS-KE server name or address (loopback unless --i-mean-it)")
    parser.add_argument("--port", type=int, default=NTS_KE_PORT, help=f"NTS-KE port (default {NTS_KE_PORT})")
    parser.add_argument("--ca", metavar="PEM", help="CA bundle to trust (default: the system trust store)")
    parser.add_argument("--server-name", help="SNI name to send (default: HOST when it is a name)")
    parser.add_argument("--clients", type=int, required=True, help=f"number of sessions (at most {plan.MAX_CLIENTS})")
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument("--rate", type=float, help="clients started per second (default: as fast as possible)")
    shape.add_argument("--curve", metavar="FILE", help="shape the starts by an arrival curve (simulate --curve-out)")
    parser.add_argument(
        "--duration", type=float, required=True,
        help=f"seconds during which clients start (at most {plan.MAX_DURATION_S:g}); later ones are not started",
    )
    sources = parser.add_mutually_exclusive_group()
    sources.add_argument(
        "--source-addresses", type=int, metavar="K",
        help="spread clients over K loopback source addresses 127.0.1.1 ... (IPv4 loopback targets)",
    )
    sources.add_argument(
        "--source-address", dest="source_list", action="append", metavar="ADDR",
        help="bind clients to this local address; repeat for several (round robin)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=32, help="sessions in flight at most, per process (default 32)"
    )
    parser.add_argument(
        "--processes", type=int, default=1,
        help="generator processes (default 1); one Python process tops out near a few hundred NTS-KE/s",
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per step of a session (default 5)")
    parser.add_argument("--json", action="store_true", help="print the full summary as JSON")
    parser.add_argument(
        "--i-mean-it", dest="allow_remote", action="store_true",
        help="allow a target or source outside loopback: only against a server you operate",
    )
    parser.set_defaults(run=run)


def build_options(args: argparse.Namespace) -> plan.HerdOptions:
    target = resolve_host(args.host, error=plan.HerdError)[0]
    is_name = target != args.host
    if args.source_addresses is not None:
        if not target.startswith("127."):
            raise plan.HerdError("--source-addresses K needs an IPv4 loopback target; use --source-address ADDR")
        source_addresses = plan.loopback_sources(args.source_addresses)
    else:
        source_addresses = tuple(args.source_list or ())
    return plan.HerdOptions(
        target=target,
        port=args.port,
        server_name=args.server_name or (args.host if is_name else None),
        ca_path=args.ca,
        clients=args.clients,
        duration=args.duration,
        rate=args.rate,
        curve=plan.load_curve(args.curve) if args.curve else None,
        source_addresses=source_addresses,
        concurrency=args.concurrency,
        processes=args.processes,
        timeout=args.timeout,
        allow_remote=args.allow_remote,
    )


def _latency_text(latency: dict[str, float] | None) -> str:
    if not latency:
        return "-"
    return f"p50 {latency['p50']:.2f} / p95 {latency['p95']:.2f} / p99 {latency['p99']:.2f} ms"


def print_report(summary: dict[str, Any]) -> None:
    print(
        f"{summary['attempted']} of {summary['clients']} clients ran against {summary['target']} port "
        f"{summary['port']} in {summary['elapsed_s']:.2f} s ({summary['mode']}"
        + (f" {summary['offered_rate']:g}/s" if summary["offered_rate"] else "")
        + f", {summary['processes']} x {summary['concurrency']} in flight); not started: {summary['not_started']}"
    )
    print(
        f"ok {summary['ok']}: {summary['ke_per_second']:.1f} NTS-KE/s, {summary['handshakes_per_second']:.1f} "
        f"TLS handshakes/s, {summary['cookies']} cookies; latency {_latency_text(summary['latency_ms'])}"
    )
    failures = {k: v for k, v in summary["failures"].items() if v}
    if failures:
        print("failures: " + ", ".join(f"{FAILURE_WORDS[k]} {v}" for k, v in failures.items()))
        for outcome, detail in summary["failure_examples"].items():
            print(f"  e.g. {FAILURE_WORDS[outcome]}: {detail}")
    else:
        print("failures: none")
    if len(summary["per_source"]) > 1 or "default" not in summary["per_source"]:
        header = f"{'source':<40} {'ok':>7} {'failed':>7}  {'by class':<40} latency"
        print(header)
        for source, stats in summary["per_source"].items():
            classes = ", ".join(f"{k} {v}" for k, v in stats["failures"].items() if v) or "-"
            print(f"{source:<40} {stats['ok']:>7} {stats['failed']:>7}  {classes:<40} "
                  f"{_latency_text(stats['latency_ms'])}")


def run(args: argparse.Namespace) -> int:
    try:
        summary = herd.run_herd(build_options(args))
    except NtsopsError as exc:
        print(f"ntsops herd: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    else:
        print_report(summary)
    return EXIT_OK if summary["failed"] == 0 and summary["attempted"] == summary["clients"] else EXIT_FAILURES
