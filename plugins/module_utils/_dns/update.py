# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan, then apply: the difference between the RRsets read and wanted, sent as one guarded UPDATE.

``plan()`` finds the zone and its primary, reads the current A and AAAA RRsets with
their TTL from the primary and compares them with the wanted ones. ``apply()`` sends
ONE update (RFC 2136) for every RRset that differs, guarded by prerequisites saying
each RRset still holds exactly what was read, so a concurrent writer makes the
update fail instead of being overwritten.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._dns.client import (
    DnsClient,
    Endpoint,
    absolute_name,
    rcode_text,
)
from ansible_collections.ntsops.nts.plugins.module_utils._dns.dnspython import dns, require_dnspython
from ansible_collections.ntsops.nts.plugins.module_utils._dns.errors import (
    DdnsConflictError,
    DdnsInputError,
    DdnsNotAuthError,
    DdnsNotZoneError,
    DdnsRefusedError,
    DdnsServerError,
)
from ansible_collections.ntsops.nts.plugins.module_utils._dns.records import (
    FAMILIES,
    RDTYPE_NAMES,
    RRsetState,
    read_rrsets,
)
from ansible_collections.ntsops.nts.plugins.module_utils._dns.tsig import TsigKey
from ansible_collections.ntsops.nts.plugins.module_utils._dns.zone import ZoneInfo, find_zone


@dataclass
class Plan:
    name: str
    zone: ZoneInfo
    before: dict[str, RRsetState]
    after: dict[str, RRsetState]

    @property
    def changed_families(self) -> tuple[str, ...]:
        return tuple(f for f in FAMILIES if f in self.after and self.after[f] != self.before.get(f, RRsetState()))

    @property
    def changed(self) -> bool:
        return bool(self.changed_families)

    def expected(self) -> dict[str, RRsetState]:
        """What every authoritative server must serve once the plan is applied."""
        return {f: self.after.get(f, self.before[f]) for f in FAMILIES if f in self.after}

    def zone_text(self, which: str) -> str:
        """The managed RRsets as zone-file lines, for diff mode."""
        states = self.before if which == "before" else {**self.before, **self.after}
        lines: list[str] = []
        for family in FAMILIES:
            if family not in self.after:
                continue
            state = states.get(family, RRsetState())
            lines.extend(f"{self.name} {state.ttl} IN {RDTYPE_NAMES[family]} {a}" for a in state.addresses)
        return "\n".join(lines) + ("\n" if lines else "")


def plan(
    client: DnsClient,
    name: str,
    wanted: Mapping[str, RRsetState],
    server: Endpoint | None = None,
    zone: str | None = None,
) -> Plan:
    qname = absolute_name(name)
    if zone is not None and not qname.is_subdomain(absolute_name(zone)):
        raise DdnsInputError(f"{qname} is not inside zone {absolute_name(zone)} (NOTZONE)")
    info = find_zone(client, name, server, zone)
    families = list(FAMILIES)
    before = read_rrsets(client, name, info.primary, families, signed=True)
    return Plan(name=qname.to_text(), zone=info, before=before, after=dict(wanted))


def build_update(plan_: Plan, key: TsigKey | None) -> Any:
    """One UPDATE for every RRset that differs, each guarded by a prerequisite on what was read."""
    require_dnspython()
    update = dns.update.UpdateMessage(plan_.zone.zone, keyring=key.to_dnspython() if key else None)
    qname = absolute_name(plan_.name)
    for family in plan_.changed_families:
        rdtype = dns.rdatatype.from_text(RDTYPE_NAMES[family])
        read = plan_.before[family]
        # RFC 2136 3.2.5: value-dependent prerequisites compare RDATA only, not TTL.
        if read.exists:
            update.present(qname, _rdataset(rdtype, read, ttl=0))
        else:
            update.absent(qname, rdtype)
    for family in plan_.changed_families:
        rdtype = dns.rdatatype.from_text(RDTYPE_NAMES[family])
        update.delete(qname, rdtype)
        wanted = plan_.after[family]
        if wanted.exists:
            update.add(qname, _rdataset(rdtype, wanted))
    return update


def _rdataset(rdtype: Any, state: RRsetState, ttl: int | None = None) -> Any:
    rdatas = [dns.rdata.from_text(dns.rdataclass.IN, rdtype, a) for a in state.addresses]
    return dns.rdataset.from_rdata_list(state.ttl or 0 if ttl is None else ttl, rdatas)


_CONFLICT_RCODES = ("YXDOMAIN", "YXRRSET", "NXRRSET", "NXDOMAIN")


def apply(client: DnsClient, plan_: Plan) -> None:
    """Send the update of ``plan_``; a failed prerequisite is re-checked, never retried blindly."""
    if not plan_.changed:
        return
    update = build_update(plan_, client.key)
    server = plan_.zone.primary
    what = f"updating {plan_.name} in {plan_.zone.zone}"
    response = client.exchange(update, server, what)
    rcode = rcode_text(response)
    if response.rcode() == dns.rcode.NOERROR:
        return
    if rcode in _CONFLICT_RCODES:
        # An earlier try that timed out may have landed: then the records are already right.
        now = read_rrsets(client, plan_.name, server, plan_.changed_families, signed=True)
        if all(now[f] == plan_.after[f] for f in plan_.changed_families):
            return
        raise DdnsConflictError(
            f"{what}: the records changed since they were read ({rcode}); nothing was overwritten. "
            f"Read: {_describe(plan_.before, plan_.changed_families)}; now: {_describe(now, plan_.changed_families)}"
        )
    if rcode == "REFUSED":
        key = f"TSIG key {client.key.name!r}" if client.key else "unsigned updates"
        raise DdnsRefusedError(
            f"{what}: {server} answered REFUSED; its update policy does not allow {key} to change this name"
        )
    if rcode == "NOTAUTH":
        raise DdnsNotAuthError(
            f"{what}: {server} answered NOTAUTH: it is not the primary for {plan_.zone.zone}, "
            "or it did not accept the TSIG key"
        )
    if rcode == "NOTZONE":
        raise DdnsNotZoneError(f"{what}: {server} answered NOTZONE: {plan_.name} is not inside {plan_.zone.zone}")
    raise DdnsServerError(f"{what}: {server} answered {rcode}")


def _describe(states: Mapping[str, RRsetState], families: Iterable[str]) -> str:
    parts = []
    for family in families:
        state = states.get(family, RRsetState())
        body = ", ".join(state.addresses) if state.exists else "none"
        parts.append(f"{RDTYPE_NAMES[family]} {body}")
    return "; ".join(parts)
