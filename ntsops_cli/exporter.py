# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``ntsops exporter``: the Prometheus exporter; the server is _check/exporter_http.py (shared with the role)."""

from __future__ import annotations

import argparse

from ansible_collections.ntsops.nts.plugins.module_utils._check import exporter_http


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = exporter_http.DESCRIPTION
    exporter_http.add_arguments(parser)
    parser.set_defaults(run=exporter_http.run)
