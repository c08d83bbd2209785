# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which addresses may be published as a name's A and AAAA records, and why others may not.

One policy for every path that publishes: the on-host agent (interface and command
sources) and the ``ntsops.nts.ddns_record`` module (so ``ip_change.yml`` too). Only
global unicast addresses are published by default. An address in a special-purpose
range (the IANA IPv4 and IPv6 Special-Purpose Address Registries, RFC 6890) is refused
with the reason, unless it lies inside one of the operator's ``allow_prefixes`` -
for a lab or a test on documentation or private space. Multicast and unspecified
addresses are never host addresses and are refused even then.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Union

from ansible_collections.ntsops.nts.plugins.module_utils._dns.errors import DdnsInputError

# typing.Union: pylint (ansible-test sanity) rejects `|` between classes at run time.
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]  # noqa: UP007
Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]  # noqa: UP007

# Checked in this order; the first match gives the reason. The last resort is
# ipaddress' is_global (the registries' "globally reachable" column).
_NEVER = (
    ("0.0.0.0/32", "unspecified address"),
    ("::/128", "unspecified address"),
    ("224.0.0.0/4", "multicast"),
    ("ff00::/8", "multicast"),
)
_SPECIAL = (
    ("127.0.0.0/8", "loopback"),
    ("::1/128", "loopback"),
    ("169.254.0.0/16", "link-local (RFC 3927)"),
    ("fe80::/10", "link-local (RFC 4291)"),
    ("fc00::/7", "unique local address, ULA (RFC 4193)"),
    ("fec0::/10", "site-local, deprecated (RFC 3879)"),
    ("2001:db8::/32", "documentation range (RFC 3849)"),
    ("3fff::/20", "documentation range (RFC 9637)"),
    ("192.0.2.0/24", "documentation range TEST-NET-1 (RFC 5737)"),
    ("198.51.100.0/24", "documentation range TEST-NET-2 (RFC 5737)"),
    ("203.0.113.0/24", "documentation range TEST-NET-3 (RFC 5737)"),
    ("10.0.0.0/8", "private (RFC 1918)"),
    ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("100.64.0.0/10", "shared address space for carrier-grade NAT (RFC 6598)"),
    ("198.18.0.0/15", "benchmarking (RFC 2544)"),
    ("2001:2::/48", "benchmarking (RFC 5180)"),
    ("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
    ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation (RFC 8215)"),
    ("100::/64", "discard-only (RFC 6666)"),
    ("0.0.0.0/8", "'this network' (RFC 791)"),
    ("240.0.0.0/4", "reserved (RFC 1112)"),
    ("::ffff:0:0/96", "IPv4-mapped (RFC 4291)"),
)


def _table(rows: Iterable[tuple[str, str]]) -> tuple[tuple[Network, str], ...]:
    return tuple((ipaddress.ip_network(prefix), reason) for prefix, reason in rows)


NEVER_PUBLISHED = _table(_NEVER)
SPECIAL_PURPOSE = _table(_SPECIAL)


def parse_allow_prefixes(prefixes: Iterable[str] | None, what: str = "allow_prefixes") -> tuple[Network, ...]:
    """The operator's allowed prefixes; a host address with a prefix length (a typo) is an error."""
    out = []
    for text in prefixes or ():
        try:
            out.append(ipaddress.ip_network(str(text).strip(), strict=True))
        except ValueError as exc:
            raise DdnsInputError(f"{what}: {text!r} is not a network prefix ({exc})") from None
    return tuple(out)


def refusal_reason(address: Address, allowed: Sequence[Network] = ()) -> str | None:
    """Why ``address`` must not be published, or None when it may be."""
    for network, reason in NEVER_PUBLISHED:
        if address in network:
            return reason
    if any(address.version == n.version and address in n for n in allowed):
        return None
    for network, reason in SPECIAL_PURPOSE:
        if address.version == network.version and address in network:
            return reason
    if not address.is_global:
        return "not globally reachable (IANA special-purpose address registry)"
    return None


@dataclass(frozen=True)
class Refusal:
    address: str
    reason: str

    def __str__(self) -> str:
        return f"{self.address} ({self.reason})"


def partition_publishable(
    addresses: Iterable[str], allowed: Sequence[Network] = ()
) -> tuple[tuple[str, ...], tuple[Refusal, ...]]:
    """Split addresses (already valid IP address text) into those that may be published and the refused ones."""
    accepted, refused = [], []
    for text in addresses:
        address = ipaddress.ip_address(text)
        reason = refusal_reason(address, allowed)
        if reason is None:
            accepted.append(address.compressed)
        else:
            refused.append(Refusal(address.compressed, reason))
    return tuple(accepted), tuple(refused)


def require_publishable(family: str, addresses: Iterable[str], allowed: Sequence[Network] = ()) -> None:
    """Raise, naming every refused address and its reason, unless all of them may be published."""
    _accepted, refused = partition_publishable(addresses, allowed)
    if refused:
        raise DdnsInputError(
            f"{family}: refusing to publish {', '.join(str(r) for r in refused)}; only global unicast addresses "
            "are published unless their prefix is in allow_prefixes"
        )
