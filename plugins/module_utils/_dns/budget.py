# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The TTL to publish: given, or the longest the recovery budget allows, and checked against it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._dns.errors import DdnsBudgetError, DdnsInputError

try:
    from ansible_collections.ntsops.nts.plugins.module_utils._model.recovery import max_ttl as _recovery_max_ttl

    HAS_RECOVERY_MODEL = True
except ImportError:  # pragma: no cover - a copy of _dns without _model still updates records
    HAS_RECOVERY_MODEL = False


def budget_max_ttl(budget: Mapping[str, Any]) -> int:
    """The longest TTL the recovery model allows for this client mix and update latency."""
    if not isinstance(budget, Mapping) or "clients" not in budget or "update_latency" not in budget:
        raise DdnsInputError("budget needs 'clients' (a list of client dicts) and 'update_latency' (seconds)")
    if not HAS_RECOVERY_MODEL:
        raise DdnsBudgetError(
            "the recovery model (plugins/module_utils/_model/recovery.py) is not installed, so a TTL cannot be "
            "derived from the budget; set ttl instead"
        )
    try:
        latency = float(budget["update_latency"])
    except (TypeError, ValueError):
        raise DdnsInputError(f"budget update_latency {budget['update_latency']!r} is not a number") from None
    return int(_recovery_max_ttl(list(budget["clients"]), latency))


def choose_ttl(
    ttl: int | None,
    budget: Mapping[str, Any] | None,
    allow_ttl_over_budget: bool = False,
    *,
    option_prefix: str = "",
) -> tuple[int, int | None, list[str]]:
    """The TTL to publish, the budget's maximum (if a budget was given) and warnings.

    ``option_prefix`` goes before the option names ``ttl`` and ``allow_ttl_over_budget``
    in the messages, so that a role's messages name its own variables.
    """
    if budget is None:
        if ttl is None:
            raise DdnsInputError("give ttl or budget")
        return ttl, None, []
    limit = budget_max_ttl(budget)
    if ttl is None:
        return limit, limit, []
    if ttl <= limit:
        return ttl, limit, []
    message = f"{option_prefix}ttl {ttl} s is above {limit} s, the longest TTL the recovery budget allows"
    if not allow_ttl_over_budget:
        raise DdnsBudgetError(f"{message}; lower {option_prefix}ttl or set {option_prefix}allow_ttl_over_budget")
    return ttl, limit, [message]
