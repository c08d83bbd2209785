# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``ntsops check``: the endpoint_check logic as a Nagios/Icinga plugin, Prometheus text or JSON.

Exit codes follow the Nagios plugin convention in every output mode: 0 OK,
1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad arguments, a name that does not resolve).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import NoReturn

from ansible_collections.ntsops.nts.plugins.module_utils._check import monitoring, nagios, prometheus
from ansible_collections.ntsops.nts.plugins.module_utils._check.endpoint import CheckOptions, check_endpoint
from ansible_collections.ntsops.nts.plugins.module_utils._check.published import FAMILIES, gather_server_addresses
from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError
from ansible_collections.ntsops.nts.plugins.module_utils._nts.records import NTS_KE_PORT


def _unknown_on_usage_error(parser: argparse.ArgumentParser) -> None:
    """Bad arguments are UNKNOWN (3) for a monitoring plugin, not argparse's 2."""

    def error(message: str) -> NoReturn:
        parser.print_usage(sys.stderr)
        print(f"NTS UNKNOWN - bad arguments: {message}")
        sys.exit(monitoring.UNKNOWN)

    parser.error = error  # type: ignore[method-assign]
    # Unknown options would otherwise reach the top-level parser, which exits 2.
    parse_known = parser.parse_known_args

    def parse_known_strict(
        args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = parse_known(args, namespace)
        if extras:
            error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras

    parser.parse_known_args = parse_known_strict  # type: ignore[method-assign,assignment]


def configure(parser: argparse.ArgumentParser) -> None:
    """Fill the `check` subcommand's parser (ntsops_cli.main creates it, with its help line)."""
    parser.description = (
        "Check an NTS server as clients use it: on every A/AAAA address of NAME, TCP, TLS 1.3 with "
        "ALPN ntske/1 and a certificate for NAME, NTS-KE with 8 cookies, and one authenticated NTP "
        "exchange. Exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN in every output mode."
    )
    _unknown_on_usage_error(parser)
    parser.add_argument("name", help="the NTS-KE host name clients use (an address is allowed)")
    parser.add_argument("--port", type=int, default=NTS_KE_PORT, help=f"NTS-KE port (default {NTS_KE_PORT})")
    parser.add_argument(
        "--address", dest="addresses", action="append", metavar="ADDR",
        help="check this address instead of resolving NAME; repeat for several",
    )
    parser.add_argument("--ca", metavar="PEM", help="CA bundle to trust (default: the system trust store)")
    parser.add_argument(
        "--min-cert-days", type=int, default=14, help="CRITICAL when the certificate has fewer days left (default 14)"
    )
    parser.add_argument(
        "--warn-cert-days", type=int, default=30, help="WARNING when the certificate has fewer days left (default 30)"
    )
    parser.add_argument(
        "--cert-lifetime", action="store_true",
        help="certificate limits relative to its lifetime instead of days: WARNING below a third of it left "
        "(a renewal is late), CRITICAL below a sixth",
    )
    parser.add_argument("--warn-offset", type=float, metavar="SECONDS", help="WARNING when |NTP offset| exceeds this")
    parser.add_argument("--crit-offset", type=float, metavar="SECONDS", help="CRITICAL when |NTP offset| exceeds this")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per step and address (default 5)")
    parser.add_argument("--no-ntp", action="store_true", help="skip the authenticated NTP exchange")
    own = parser.add_mutually_exclusive_group()
    own.add_argument(
        "--server-address", dest="server_addresses", action="append", metavar="ADDR",
        help="an address the server has (repeat for every one, both families): the A and AAAA records must "
        "equal them (WARNING for an unpublished address or family, CRITICAL for a record the server lacks)",
    )
    own.add_argument(
        "--gather-server-addresses", action="store_true",
        help="the same with this host's own addresses (run on the server), selected as the ddns agent does",
    )
    parser.add_argument(
        "--allow-prefix", dest="allow_prefixes", action="append", default=[], metavar="PREFIX",
        help="with --gather-server-addresses, count this non-global prefix's addresses (a lab's) as the server's",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", dest="output", action="store_const", const="json", help="print the module's result")
    output.add_argument("--nagios", dest="output", action="store_const", const="nagios",
                        help="one status line with perfdata (the default)")
    output.add_argument("--prometheus", dest="output", action="store_const", const="prometheus",
                        help="Prometheus exposition text, one series per address")
    parser.set_defaults(run=run, output="nagios")


def _report_unknown(args: argparse.Namespace, message: str, started: float) -> int:
    print(f"ntsops check: {message}", file=sys.stderr)
    if args.output == "prometheus":
        sys.stdout.write(
            prometheus.prometheus_output(args.name, None, monitoring.UNKNOWN, time.monotonic() - started)
        )
    elif args.output == "json":
        print(json.dumps({"ok": False, "status": "UNKNOWN", "msg": message}, indent=2))
    else:
        print(nagios.nagios_unknown(args.name, message))
    return monitoring.UNKNOWN


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    thresholds = monitoring.Thresholds(
        min_cert_days=args.min_cert_days,
        warn_cert_days=args.warn_cert_days,
        warn_offset=args.warn_offset,
        crit_offset=args.crit_offset,
    )
    if args.cert_lifetime:
        thresholds = monitoring.lifetime_thresholds(thresholds)
    server_addresses, server_families = args.server_addresses, FAMILIES
    if args.gather_server_addresses:
        try:
            server_addresses, server_families = gather_server_addresses(args.allow_prefixes)
        except NtsopsError as exc:
            return _report_unknown(args, f"cannot read this host's addresses: {exc}", started)
    options = CheckOptions(
        name=args.name,
        port=args.port,
        ca_path=args.ca,
        timeout=args.timeout,
        min_cert_days=args.min_cert_days,
        min_cert_fraction=thresholds.min_cert_fraction,
        ntp_exchange=not args.no_ntp,
        server_addresses=tuple(server_addresses) if server_addresses is not None else None,
        server_families=tuple(server_families),
    )
    try:
        thresholds.validate()
        if args.ca:
            with open(args.ca, "rb"):
                pass  # an unreadable bundle is an operator error (UNKNOWN), not a server failure
        result = check_endpoint(options, addresses=args.addresses)
    except OSError as exc:
        return _report_unknown(args, f"cannot read CA bundle {args.ca}: {exc.strerror}", started)
    except NtsopsError as exc:
        return _report_unknown(args, str(exc), started)
    assessment = monitoring.assess(result, thresholds)
    if args.output == "json":
        print(json.dumps({**result, "status": assessment.status_name}, indent=2, sort_keys=True, default=str))
    elif args.output == "prometheus":
        sys.stdout.write(
            prometheus.prometheus_output(args.name, result, assessment.status, time.monotonic() - started)
        )
    else:
        print(nagios.nagios_output(args.name, result, assessment, thresholds))
    return assessment.status
