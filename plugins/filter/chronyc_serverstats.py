# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter chronyc_serverstats: ``chronyc serverstats`` output as {label: count}, by the core's parser."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._check.daemon_status import (
    chronyc_serverstats as _chronyc_serverstats,
)
from ansible_collections.ntsops.nts.plugins.plugin_utils._filter import call_core


def chronyc_serverstats(text: str) -> dict[str, int]:
    """The counters of ``chronyc serverstats`` keyed by chronyc's own labels."""
    if not isinstance(text, str):
        text = str(text)
    result: dict[str, int] = call_core("chronyc_serverstats", _chronyc_serverstats, text)
    return result


class FilterModule:
    """chronyc output filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"chronyc_serverstats": chronyc_serverstats}
