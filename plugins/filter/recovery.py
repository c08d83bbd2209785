# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters exposing the recovery model: recovery_time, max_ttl, ke_retry_schedule, server_recommendation."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._model.recovery import (
    ke_retry_schedule as _ke_retry_schedule,
)
from ansible_collections.ntsops.nts.plugins.module_utils._model.recovery import (
    max_ttl as _max_ttl,
)
from ansible_collections.ntsops.nts.plugins.module_utils._model.recovery import (
    recovery_time as _recovery_time,
)
from ansible_collections.ntsops.nts.plugins.module_utils._model.sizing import recommend_server_settings
from ansible_collections.ntsops.nts.plugins.plugin_utils._filter import call_core


def recovery_time(
    client: Mapping[str, Any] | str, ttl: float = 0, update_latency: float = 0, previous_change_s: float | None = None
) -> dict[str, Any]:
    """Re-resolution and recovery interval of one client after an address change."""
    result: dict[str, Any] = call_core(
        "recovery_time",
        _recovery_time,
        client,
        ttl=ttl,
        update_latency=update_latency,
        previous_change_s=previous_change_s,
    )
    return result


def max_ttl(clients: Sequence[Mapping[str, Any]] | Mapping[str, Any], update_latency: float = 0) -> int:
    """Largest DNS TTL that keeps every listed client at its minimum recovery."""
    result: int = call_core("max_ttl", _max_ttl, clients, update_latency=update_latency)
    return result


def ke_retry_schedule(client: str, failure: str = "connect", attempts: int = 4) -> list[float]:
    """Seconds between a client's failed NTS-KE attempts."""
    result: list[float] = call_core("ke_retry_schedule", _ke_retry_schedule, client, failure=failure, attempts=attempts)
    return result


def server_recommendation(fleet: Mapping[str, Any]) -> dict[str, Any]:
    """chrony NTS-KE server settings (ntsratelimit, ntsprocesses, maxntsconnections) for a fleet."""
    result: dict[str, Any] = call_core("server_recommendation", recommend_server_settings, fleet)
    return result


class FilterModule:
    """Recovery model filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "recovery_time": recovery_time,
            "max_ttl": max_ttl,
            "ke_retry_schedule": ke_retry_schedule,
            "server_recommendation": server_recommendation,
        }
