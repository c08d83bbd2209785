# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Finding the zone of a name and the primary that takes its updates (the SOA and its MNAME)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._dns.client import (
    DnsClient,
    DnsTransport,
    Endpoint,
    absolute_name,
    rcode_text,
)
from ansible_collections.ntsops.nts.plugins.module_utils._dns.dnspython import dns
from ansible_collections.ntsops.nts.plugins.module_utils._dns.errors import (
    DdnsInputError,
    DdnsServerError,
    DdnsZoneNotFoundError,
)


@dataclass(frozen=True)
class ZoneInfo:
    zone: str
    mname: str
    serial: int
    primary: Endpoint


def find_zone(client: DnsClient, name: str, server: Endpoint | None, zone: str | None = None) -> ZoneInfo:
    """Find the zone of ``name`` from its SOA, and the primary to update (``server`` or the SOA MNAME).

    With a server, the server must be authoritative for the zone. Without one, the
    SOA is asked of the system resolver and the update goes to the MNAME's address.
    """
    qname = absolute_name(zone if zone else name)
    if server is None:
        lookup = Endpoint(_system_nameserver(client.transport), 53)
        recursion = True
    else:
        lookup, recursion = server, False
    # Signed when asking the primary itself: a wrong key then fails before anything is
    # planned, in check mode too. A resolver does not know the key, so that query is not.
    response = client.query(
        qname, "SOA", lookup, f"looking up the SOA of {qname}", recursion=recursion, signed=server is not None
    )
    rcode = response.rcode()
    if rcode in (dns.rcode.REFUSED, dns.rcode.NOTAUTH):
        raise DdnsZoneNotFoundError(
            f"{lookup} serves no zone containing {qname} (it answered {rcode_text(response)} to the SOA query)"
        )
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        raise DdnsServerError(f"{lookup} answered {rcode_text(response)} to the SOA query for {qname}")
    soa = _soa_of(response, qname)
    if soa is None:
        delegated = [r for r in response.authority if r.rdtype == dns.rdatatype.NS]
        hint = f"; it is delegated to {delegated[0].name}" if delegated else ""
        raise DdnsZoneNotFoundError(f"{lookup} returned no SOA for {qname}{hint}")
    if zone is not None and soa.name != qname:
        raise DdnsZoneNotFoundError(f"{qname} is not a zone apex at {lookup} (the zone there is {soa.name})")
    if server is not None and not response.flags & dns.flags.AA:
        raise DdnsZoneNotFoundError(f"{server} is not authoritative for {soa.name}")
    rdata = soa[0]
    mname = rdata.mname.to_text()
    if server is None:
        addresses = client.transport.host_addresses(mname)
        if not addresses:
            raise DdnsZoneNotFoundError(f"the primary {mname} (SOA MNAME of {soa.name}) has no address")
        server = Endpoint(addresses[0], 53)
    return ZoneInfo(zone=soa.name.to_text(), mname=mname, serial=int(rdata.serial), primary=server)


def _soa_of(response: Any, qname: Any) -> Any:
    """The SOA RRset answering for ``qname`` itself, else the one in the authority section above it."""
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.SOA and rrset.name == qname and len(rrset):
            return rrset
    for rrset in response.authority:
        if rrset.rdtype == dns.rdatatype.SOA and qname.is_subdomain(rrset.name) and len(rrset):
            return rrset
    return None


def _system_nameserver(transport: DnsTransport) -> str:
    getter: Callable[[], str] | None = getattr(transport, "system_nameserver", None)
    if getter is None:
        raise DdnsInputError("no server given and the transport cannot find a resolver; set server")
    return getter()
