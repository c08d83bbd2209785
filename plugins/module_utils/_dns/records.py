# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A name's A and AAAA RRsets: as wanted, and as a server serves them now."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._dns.client import (
    DnsClient,
    Endpoint,
    absolute_name,
    rcode_text,
)
from ansible_collections.ntsops.nts.plugins.module_utils._dns.dnspython import dns
from ansible_collections.ntsops.nts.plugins.module_utils._dns.errors import (
    DdnsInputError,
    DdnsRefusedError,
    DdnsServerError,
    DdnsZoneNotFoundError,
)

FAMILIES = ("ipv4", "ipv6")
RDTYPE_NAMES = {"ipv4": "A", "ipv6": "AAAA"}
MAX_TTL = 2**31 - 1


@dataclass(frozen=True)
class RRsetState:
    """One family's RRset: the addresses (sorted, normalised) and the TTL; empty means absent."""

    addresses: tuple[str, ...] = ()
    ttl: int | None = None

    @property
    def exists(self) -> bool:
        return bool(self.addresses)

    def as_dict(self) -> dict[str, Any]:
        return {"addresses": list(self.addresses), "ttl": self.ttl if self.addresses else None}


def normalise_addresses(family: str, addresses: Iterable[str]) -> tuple[str, ...]:
    version = 4 if family == "ipv4" else 6
    out = set()
    for text in addresses:
        try:
            address = ipaddress.ip_address(str(text).strip())
        except ValueError:
            raise DdnsInputError(f"{family}: {text!r} is not an IP address") from None
        if address.version != version:
            raise DdnsInputError(f"{family}: {text!r} is an IPv{address.version} address")
        out.add(address.compressed)
    return tuple(sorted(out, key=ipaddress.ip_address))


def desired_states(
    state: str, ttl: int, ipv4: Sequence[str] | None, ipv6: Sequence[str] | None
) -> dict[str, RRsetState]:
    """The wanted RRsets; a family that is None is left alone."""
    if state not in ("present", "absent"):
        raise DdnsInputError(f"state must be present or absent, not {state!r}")
    if not 0 <= ttl <= MAX_TTL:
        raise DdnsInputError(f"ttl {ttl} is outside 0..{MAX_TTL}")
    wanted = {}
    for family, addresses in (("ipv4", ipv4), ("ipv6", ipv6)):
        if addresses is None:
            continue
        normalised = normalise_addresses(family, addresses)
        wanted[family] = RRsetState(normalised, ttl) if state == "present" and normalised else RRsetState()
    return wanted


def read_rrsets(
    client: DnsClient, name: str, server: Endpoint, families: Sequence[str], signed: bool = False
) -> dict[str, RRsetState]:
    """Read the A and AAAA RRsets of ``name`` as the (authoritative) server serves them now."""
    qname = absolute_name(name)
    states = {}
    for family in families:
        rdtype = RDTYPE_NAMES[family]
        response = client.query(qname, rdtype, server, f"reading {qname} {rdtype}", signed=signed)
        states[family] = rrset_from_answer(response, qname, rdtype, server)
    return states


def rrset_from_answer(response: Any, qname: Any, rdtype: str, server: Endpoint) -> RRsetState:
    """The RRset of ``rdtype`` at ``qname`` in an authoritative answer; empty when there is none."""
    rcode = response.rcode()
    if rcode == dns.rcode.REFUSED:
        raise DdnsRefusedError(f"{server} refused the query for {qname} {rdtype}")
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        raise DdnsServerError(f"{server} answered {rcode_text(response)} to the query for {qname} {rdtype}")
    if not response.flags & dns.flags.AA:
        raise DdnsZoneNotFoundError(f"{server} is not authoritative for {qname}")
    for rrset in response.answer:
        if rrset.name == qname and rrset.rdtype == dns.rdatatype.CNAME:
            raise DdnsInputError(f"{qname} is a CNAME; A and AAAA records cannot live beside it")
        if rrset.name == qname and rrset.rdtype == dns.rdatatype.from_text(rdtype):
            family = "ipv4" if rdtype == "A" else "ipv6"
            return RRsetState(normalise_addresses(family, (r.address for r in rrset)), int(rrset.ttl))
    return RRsetState()
