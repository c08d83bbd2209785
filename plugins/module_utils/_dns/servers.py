# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Propagation: does every server in the zone's NS set serve the new records yet?"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._dns.client import (
    DnsClient,
    Endpoint,
    absolute_name,
    rcode_text,
)
from ansible_collections.ntsops.nts.plugins.module_utils._dns.dnspython import dns
from ansible_collections.ntsops.nts.plugins.module_utils._dns.errors import DdnsError, DdnsServerError
from ansible_collections.ntsops.nts.plugins.module_utils._dns.records import (
    FAMILIES,
    RDTYPE_NAMES,
    RRsetState,
    read_rrsets,
    rrset_from_answer,
)
from ansible_collections.ntsops.nts.plugins.module_utils._dns.zone import ZoneInfo


@dataclass
class ServerStatus:
    name: str
    address: str
    answered: bool = False
    serial: int | None = None
    up_to_date: bool = False
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": self.address,
            "answered": self.answered,
            "serial": self.serial,
            "up_to_date": self.up_to_date,
            "error": self.error,
        }


def authoritative_servers(client: DnsClient, zone: ZoneInfo) -> list[tuple[str, Endpoint]]:
    """Every address of every server in the zone's NS set, asked of the primary."""
    qzone = absolute_name(zone.zone)
    response = client.query(qzone, "NS", zone.primary, f"reading the NS set of {qzone}")
    if response.rcode() != dns.rcode.NOERROR:
        raise DdnsServerError(f"{zone.primary} answered {rcode_text(response)} to the NS query for {qzone}")
    targets = sorted({r.target for rrset in response.answer if rrset.rdtype == dns.rdatatype.NS for r in rrset})
    if not targets:
        raise DdnsServerError(f"{zone.primary} returned no NS records for {qzone}")
    glue: dict[Any, list[str]] = {}
    for rrset in response.additional:
        if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            glue.setdefault(rrset.name, []).extend(r.address for r in rrset)
    servers = []
    for target in targets:
        addresses = glue.get(target)
        if not addresses and target.is_subdomain(qzone):
            found = read_rrsets(client, target.to_text(), zone.primary, FAMILIES)
            addresses = [a for f in FAMILIES for a in found[f].addresses]
        if not addresses:
            addresses = client.transport.host_addresses(target.to_text())
        if not addresses:
            servers.append((target.to_text(), Endpoint("", zone.primary.port)))
        servers.extend((target.to_text(), Endpoint(a, zone.primary.port)) for a in sorted(set(addresses)))
    return servers


def check_servers(
    client: DnsClient,
    name: str,
    zone: ZoneInfo,
    expected: Mapping[str, RRsetState],
    servers: Sequence[tuple[str, Endpoint]],
) -> list[ServerStatus]:
    """One round: does each server serve exactly the expected RRsets (addresses and TTL)?"""
    qname, qzone = absolute_name(name), absolute_name(zone.zone)
    statuses = []
    for ns_name, endpoint in servers:
        status = ServerStatus(ns_name, endpoint.address)
        statuses.append(status)
        if not endpoint.address:
            status.error = "no address found for this name server"
            continue
        try:
            soa = client.query(qzone, "SOA", endpoint, f"reading the SOA serial of {qzone}")
            if soa.rcode() != dns.rcode.NOERROR or not soa.flags & dns.flags.AA:
                status.error = f"answered {rcode_text(soa)} without authority to the SOA query for {qzone}"
                continue
            for rrset in soa.answer:
                if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
                    status.serial = int(rrset[0].serial)
            status.answered = True
            up_to_date = True
            for family, want in expected.items():
                rdtype = RDTYPE_NAMES[family]
                got = rrset_from_answer(client.query(qname, rdtype, endpoint, "checking"), qname, rdtype, endpoint)
                up_to_date = up_to_date and got.addresses == want.addresses and (not want.exists or got.ttl == want.ttl)
            status.up_to_date = up_to_date
        except DdnsError as exc:
            status.error = str(exc)
    return statuses


def wait_for_propagation(
    client: DnsClient,
    name: str,
    zone: ZoneInfo,
    expected: Mapping[str, RRsetState],
    *,
    timeout: float,
    servers: Sequence[tuple[str, Endpoint]] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[bool, float, list[ServerStatus]]:
    """Poll the NS set until every server is up to date or ``timeout`` passes: (all done, seconds, statuses)."""
    start = clock()
    if servers is None:
        servers = authoritative_servers(client, zone)
    delay = 0.01
    while True:
        statuses = check_servers(client, name, zone, expected, servers)
        elapsed = clock() - start
        if all(s.up_to_date for s in statuses):
            return True, elapsed, statuses
        if elapsed >= timeout:
            return False, elapsed, statuses
        sleep(min(delay, max(0.0, timeout - elapsed)))
        delay = min(delay * 2, 0.5)
