# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Do a name's published A and AAAA records equal the addresses the server itself has?

Pure: the published addresses (what the name resolves to) and the server's own
addresses come in as lists. The server's addresses are given by the operator (then
they are the whole truth for both families) or gathered from the host's interfaces
by the ddns agent's selection (then a family with no global address on the host is
unknown rather than absent: behind NAT the public IPv4 address is on no interface).

Per family the verdict is one of:
  match     the records are exactly the server's addresses;
  missing   the server has addresses of the family that are not published (no record
            of the family at all: "the record set lacks a family the server serves");
  stale     a record points at an address the server does not have (clients that
            pick it fail);
  unknown   the server's addresses of this family are not known: nothing compared.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._dns.interfaces import Runner, host_addresses, run_command
from ansible_collections.ntsops.nts.plugins.module_utils._dns.policy import parse_allow_prefixes
from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError

FAMILIES = ("ipv4", "ipv6")
RECORD_TYPES = {"ipv4": "A", "ipv6": "AAAA"}


class PublishedRecordsError(NtsopsError):
    """A server address given for the comparison is not an IP address."""


def _family(address: str) -> str:
    return "ipv4" if ipaddress.ip_address(address).version == 4 else "ipv6"


def split_families(addresses: Iterable[str], what: str) -> dict[str, list[str]]:
    """Addresses per family, normalised and sorted; a non-address is an error naming ``what``."""
    out: dict[str, set[str]] = {family: set() for family in FAMILIES}
    for text in addresses:
        try:
            address = ipaddress.ip_address(str(text).strip())
        except ValueError:
            raise PublishedRecordsError(f"{what}: {text!r} is not an IP address") from None
        out[_family(address.compressed)].add(address.compressed)
    return {family: sorted(values, key=ipaddress.ip_address) for family, values in out.items()}


def compare_records(
    name: str,
    published: Sequence[str],
    server: Sequence[str],
    known_families: Sequence[str] = FAMILIES,
) -> dict[str, Any]:
    """Per family: published and server addresses, the verdict, and one problem line per finding.

    ``known_families``: the families whose server addresses are known (given, or found
    on the host); the others are reported as unknown.
    """
    records = split_families(published, "published addresses")
    own = split_families(server, "server_addresses")
    result: dict[str, Any] = {"name": name, "problems": [], "stale": False, "missing": False}
    for family in FAMILIES:
        rdtype = RECORD_TYPES[family]
        known = family in known_families
        entry: dict[str, Any] = {"published": records[family], "server": own[family] if known else None}
        if not known:
            entry.update(verdict="unknown", missing=[], stale=[])
            result[family] = entry
            continue
        missing = [a for a in own[family] if a not in records[family]]
        stale = [a for a in records[family] if a not in own[family]]
        entry.update(missing=missing, stale=stale)
        if stale:
            entry["verdict"] = "stale"
            result["stale"] = True
            result["problems"].append(
                f"{name}: {rdtype} {', '.join(stale)} published but not an address of the server "
                f"(it has {', '.join(own[family]) or 'no ' + family + ' address'})"
            )
        if missing:
            entry.setdefault("verdict", "missing")
            result["missing"] = True
            if records[family]:
                result["problems"].append(f"{name}: {rdtype} lacks the server's {', '.join(missing)}")
            else:
                result["problems"].append(
                    f"{name}: no {rdtype} record, but the server has {family} {', '.join(missing)}"
                )
        entry.setdefault("verdict", "match")
        result[family] = entry
    return result


def gather_server_addresses(
    allow_prefixes: Sequence[str] = (), runner: Runner = run_command
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """This host's addresses as the ddns agent selects them, and the families found.

    Deprecated and tentative addresses count as the server's (a renumbering in
    progress: a record at the old address is not stale yet); temporary, link-local,
    ULA and other refused ones do not. A family with none is left out of the families.
    """
    readings = host_addresses(runner, parse_allow_prefixes(allow_prefixes))
    addresses: list[str] = []
    families = []
    for family in FAMILIES:
        own = list(readings[family].usable) + [r.address for r in readings[family].pending]
        if own:
            families.append(family)
            addresses.extend(own)
    return tuple(addresses), tuple(families)
