# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Entry point of the ``ntsops`` command: one module per subcommand."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Each module exposes add_parser(subparsers) and run(args); modules not yet present
# in this checkout are skipped, so subcommands can land independently.
SUBCOMMANDS = ("check", "simulate", "herd")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ntsops", description="Operate NTS (RFC 8915) time servers.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"ntsops_cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"ntsops_cli.{name}":
                raise
            continue
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    code: int = args.run(args)
    return code
