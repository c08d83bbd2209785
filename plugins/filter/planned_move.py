# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planned-move filters: planned_move_plan (the recovery model's plan), planned_move_evidence (the verdict)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._check.move_evidence import (
    move_evidence as _move_evidence,
)
from ansible_collections.ntsops.nts.plugins.module_utils._model.clients import (
    CHRONY_DEFAULT_NTSREFRESH_S,
)
from ansible_collections.ntsops.nts.plugins.module_utils._model.planned_move import (
    planned_move_plan as _planned_move_plan,
)
from ansible_collections.ntsops.nts.plugins.plugin_utils._filter import call_core


def planned_move_plan(
    fleet: Any,
    *,
    server: str = "chrony",
    ttl: float = 300,
    update_latency: float = 0,
    old_ttl: float | None = None,
    restart_s: float = 5.0,
    ntp_address_differs: bool = False,
    ntsrefresh_s: float = CHRONY_DEFAULT_NTSREFRESH_S,
) -> dict[str, Any]:
    """Steps, expected times and per-client predictions of a planned address change."""
    result: dict[str, Any] = call_core(
        "planned_move_plan",
        _planned_move_plan,
        server,
        fleet,
        ttl,
        update_latency,
        old_ttl=old_ttl,
        restart_s=restart_s,
        ntp_address_differs=ntp_address_differs,
        ntsrefresh_s=ntsrefresh_s,
    )
    return result


def planned_move_evidence(watch_output: Any, switch_stats: Any) -> dict[str, Any]:
    """What one watched poll interval saw, and whether it proves the move."""
    result: dict[str, Any] = call_core("planned_move_evidence", _move_evidence, str(watch_output), str(switch_stats))
    return result


class FilterModule:
    """Planned-move filter."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"planned_move_plan": planned_move_plan, "planned_move_evidence": planned_move_evidence}
