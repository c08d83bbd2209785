# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter added_address: when each client kind starts using an address added to the server's name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._model.added_address import (
    added_address as _added_address,
)
from ansible_collections.ntsops.nts.plugins.plugin_utils._filter import call_core


def added_address(
    clients: Any,
    *,
    added_family: str = "ipv4",
    current_family: str = "ipv4",
    client_families: Any = ("ipv4", "ipv6"),
    order: str = "random",
    server: str = "chrony",
    refresh: bool = False,
) -> dict[str, Any]:
    """Per client kind and trigger, whether and when it starts using the added address."""
    result: dict[str, Any] = call_core(
        "added_address",
        _added_address,
        clients,
        added_family=added_family,
        current_family=current_family,
        client_families=client_families,
        order=order,
        server=server,
        refresh=refresh,
    )
    return result


class FilterModule:
    """Added-address filter."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"added_address": added_address}
