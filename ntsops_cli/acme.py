# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``ntsops acme``: issue, renew and deploy with certbot; the code is _acme/cli.py (shared with the role)."""

from __future__ import annotations

import argparse

from ansible_collections.ntsops.nts.plugins.module_utils._acme import cli


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = cli.DESCRIPTION
    cli.add_arguments(parser)
    parser.set_defaults(run=cli.run)
