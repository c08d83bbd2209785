# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Entry point of the ``ntsops`` command: one module per subcommand, imported only when chosen.

``ntsops check`` runs from cron and monitoring every minute: it must not pay for
numpy and the fleet simulator that ``ntsops simulate`` needs, so this file imports no
subcommand module. Each subcommand's parser is created here with its help line (so
``ntsops --help`` lists them all) and fills itself from ``ntsops_cli.<name>.configure``
when argparse hands it the arguments.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

# Each module ntsops_cli.<name> has configure(parser), which adds the arguments and
# sets `run` (run(args) -> exit code) as the parser's default.
SUBCOMMANDS = {
    "check": "check an NTS server on every address of its name (Nagios, Prometheus or JSON)",
    "simulate": "simulate a fleet of NTS clients through an address change",
    "herd": "bounded NTS-KE load test: many clients re-keying at once",
    "exporter": "Prometheus exporter: /probe?target=NAME&module=M like blackbox_exporter, and /metrics",
    "acme": "issue, renew and deploy an NTS server's certificate with certbot (DNS-01 over RFC 2136)",
}


class _SubcommandParser(argparse.ArgumentParser):
    """A subcommand's parser that imports its module and adds its arguments when first used."""

    def __init__(self, *args: Any, subcommand: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._subcommand = subcommand

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        name, self._subcommand = self._subcommand, None
        if name is None:
            return super().parse_known_args(args, namespace)
        importlib.import_module(f"ntsops_cli.{name}").configure(self)
        # configure() may wrap this method on the instance (check's exit codes): go through it
        return self.parse_known_args(args, namespace)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ntsops", description="Operate NTS (RFC 8915) time servers.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_SubcommandParser)
    subparsers.required = True
    for name, help_line in SUBCOMMANDS.items():
        subparsers.add_parser(name, help=help_line, subcommand=name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    code: int = args.run(args)
    return code
