# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keep a name's A and AAAA records exactly as wanted, by RFC 2136 dynamic update.

``ensure_records()`` runs the three steps; the Ansible module and the on-host agent
both call it, so there is one implementation of the update logic:

1. ``update.plan()`` finds the zone (from the SOA of the name) and its primary (the
   SOA MNAME) unless given, reads the current A and AAAA RRsets with their TTL from
   the primary, and compares them with the wanted ones.
2. ``update.apply()`` sends ONE update for every RRset that differs, guarded by
   prerequisites saying each RRset still holds exactly what was read.
3. ``servers.wait_for_propagation()`` asks every server in the zone's NS set until
   all of them serve the new records.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._dns.client import DnsClient, Endpoint
from ansible_collections.ntsops.nts.plugins.module_utils._dns.errors import DdnsPropagationError
from ansible_collections.ntsops.nts.plugins.module_utils._dns.records import FAMILIES, RRsetState
from ansible_collections.ntsops.nts.plugins.module_utils._dns.servers import (
    ServerStatus,
    authoritative_servers,
    check_servers,
    wait_for_propagation,
)
from ansible_collections.ntsops.nts.plugins.module_utils._dns.update import Plan, apply, plan


@dataclass
class EnsureResult:
    changed: bool
    plan: Plan
    ttl: int
    update_s: float | None = None
    propagation_s: float | None = None
    servers: list[ServerStatus] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        families = [f for f in FAMILIES if f in self.plan.after]
        after = {**self.plan.before, **self.plan.after}
        return {
            "changed": self.changed,
            "name": self.plan.name,
            "zone": self.plan.zone.zone,
            "primary": str(self.plan.zone.primary),
            "records": {
                "before": {f: self.plan.before[f].as_dict() for f in families},
                "after": {f: after[f].as_dict() for f in families},
            },
            "ttl": self.ttl,
            "update_s": self.update_s,
            "propagation_s": self.propagation_s,
            "servers": [s.as_dict() for s in self.servers],
        }


def ensure_records(
    client: DnsClient,
    name: str,
    wanted: Mapping[str, RRsetState],
    *,
    ttl: int,
    server: Endpoint | None = None,
    zone: str | None = None,
    check_mode: bool = False,
    wait: bool = True,
    propagation_timeout: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
) -> EnsureResult:
    """Plan, apply unless checking, then confirm every authoritative server serves the result."""
    the_plan = plan(client, name, wanted, server=server, zone=zone)
    result = EnsureResult(changed=the_plan.changed, plan=the_plan, ttl=ttl)
    if the_plan.changed and not check_mode:
        start = clock()
        apply(client, the_plan)
        result.update_s = clock() - start
    if not wait or not the_plan.after:
        return result
    expected = the_plan.after if not check_mode else {f: the_plan.before[f] for f in the_plan.after}
    if check_mode:
        # One look only: a check run reports the servers' state but never waits.
        servers = authoritative_servers(client, the_plan.zone)
        result.servers = check_servers(client, the_plan.name, the_plan.zone, expected, servers)
        return result
    done, elapsed, statuses = wait_for_propagation(
        client, the_plan.name, the_plan.zone, expected, timeout=propagation_timeout, clock=clock
    )
    result.propagation_s, result.servers = elapsed, statuses
    if not done:
        late = ", ".join(f"{s.name} ({s.address}): {s.error or 'old records'}" for s in statuses if not s.up_to_date)
        raise DdnsPropagationError(
            f"not every authoritative server served the new records of {the_plan.name} within "
            f"{propagation_timeout:g} s: {late}",
            result,
        )
    return result
