# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters exposing the ddns core's settings: ddns_ttl, ddns_reconcile_interval.

They call the very functions the ddns_record module and the agent run, so a role
derives its TTL and reconcile interval without a Jinja copy of the rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._dns.agent import reconcile_interval
from ansible_collections.ntsops.nts.plugins.module_utils._dns.budget import choose_ttl
from ansible_collections.ntsops.nts.plugins.plugin_utils._filter import call_core


def ddns_ttl(
    budget: Mapping[str, Any] | None,
    ttl: int | None = None,
    allow_ttl_over_budget: bool = False,
    option_prefix: str = "",
) -> dict[str, Any]:
    """The TTL to publish, the budget's longest TTL, and the warnings, as the ddns_record module chooses them."""
    chosen, limit, warnings = call_core(
        "ddns_ttl", choose_ttl, ttl, budget, allow_ttl_over_budget, option_prefix=option_prefix
    )
    return {"ttl": chosen, "max_ttl": limit, "warnings": warnings}


def ddns_reconcile_interval(update_latency: float) -> int:
    """Seconds between the agent's reconciles for a budget's update latency."""
    interval: int = call_core("ddns_reconcile_interval", reconcile_interval, update_latency)
    return interval


class FilterModule:
    """ddns filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"ddns_ttl": ddns_ttl, "ddns_reconcile_interval": ddns_reconcile_interval}
