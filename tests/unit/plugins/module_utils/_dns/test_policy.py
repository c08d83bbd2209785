"""The address publication policy: which addresses become A and AAAA records, and why not."""

from __future__ import annotations

import ipaddress

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._dns.errors import DdnsInputError
from ansible_collections.ntsops.nts.plugins.module_utils._dns.policy import (
    Refusal,
    parse_allow_prefixes,
    partition_publishable,
    refusal_reason,
    require_publishable,
)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("fe80::1", "link-local"),
        ("169.254.3.4", "link-local"),
        ("fd12:3456::1", "unique local address"),
        ("fc00::1", "unique local address"),
        ("2001:db8:5::1", "documentation range (RFC 3849)"),
        ("3fff:0fff::1", "documentation range (RFC 9637)"),
        ("192.0.2.1", "TEST-NET-1"),
        ("198.51.100.1", "TEST-NET-2"),
        ("203.0.113.1", "TEST-NET-3"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private (RFC 1918)"),
        ("172.31.0.1", "private (RFC 1918)"),
        ("192.168.1.1", "private (RFC 1918)"),
        ("100.64.0.1", "shared address space"),
        ("198.18.5.1", "benchmarking (RFC 2544)"),
        ("198.19.255.1", "benchmarking (RFC 2544)"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address to refuse, not to bind
        ("::", "unspecified"),
        ("::ffff:192.0.2.1", "IPv4-mapped"),
        ("240.0.0.1", "reserved"),
        ("fec0::1", "site-local"),
        ("192.0.0.8", "IETF protocol assignments"),
        ("2001:2::1", "benchmarking (RFC 5180)"),
        ("64:ff9b:1::1", "RFC 8215"),
        ("2001:10::1", "not globally reachable"),
    ],
)
def test_special_purpose_addresses_are_refused_with_the_reason(address: str, reason: str) -> None:
    found = refusal_reason(ipaddress.ip_address(address))
    assert found is not None
    assert reason in found


@pytest.mark.parametrize(
    "address", ["2a00:1450:4001:80b::200e", "2606:4700::1111", "9.9.9.9", "1.1.1.1", "3fff:1000::1"]
)
def test_global_unicast_is_published(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None


def test_allowed_prefixes_publish_documentation_and_private_space_only_inside_them() -> None:
    allowed = parse_allow_prefixes(["2001:db8:5::/48", "198.18.5.0/24", "fd00::/8"])
    assert refusal_reason(ipaddress.ip_address("2001:db8:5::1"), allowed) is None
    assert refusal_reason(ipaddress.ip_address("198.18.5.9"), allowed) is None
    assert refusal_reason(ipaddress.ip_address("fd00::5"), allowed) is None
    assert "RFC 3849" in (refusal_reason(ipaddress.ip_address("2001:db8:6::1"), allowed) or "")
    assert "RFC 2544" in (refusal_reason(ipaddress.ip_address("198.18.6.1"), allowed) or "")


def test_multicast_and_unspecified_are_refused_even_when_allowed() -> None:
    allowed = parse_allow_prefixes(["::/0", "0.0.0.0/0"])
    assert refusal_reason(ipaddress.ip_address("ff02::1"), allowed) == "multicast"
    unspecified = ipaddress.ip_address("0.0.0.0")  # noqa: S104 - an address to refuse, not to bind
    assert refusal_reason(unspecified, allowed) == "unspecified address"
    assert refusal_reason(ipaddress.ip_address("fe80::1"), allowed) is None


@pytest.mark.parametrize(("text", "message"), [("2001:db8::1/48", "has host bits set"), ("nonsense", "not a network")])
def test_allow_prefixes_must_be_prefixes(text: str, message: str) -> None:
    with pytest.raises(DdnsInputError, match=message):
        parse_allow_prefixes([text])


def test_partition_and_require() -> None:
    accepted, refused = partition_publishable(["2606:4700::1111", "fe80::1", "fd00::1"])
    assert accepted == ("2606:4700::1111",)
    assert refused == (
        Refusal("fe80::1", "link-local (RFC 4291)"),
        Refusal("fd00::1", "unique local address, ULA (RFC 4193)"),
    )
    require_publishable("ipv4", ["9.9.9.9"])
    require_publishable("ipv4", [])
    with pytest.raises(DdnsInputError, match=r"ipv6: refusing to publish fe80::1 \(link-local \(RFC 4291\)\)"):
        require_publishable("ipv6", ["2606:4700::1111", "fe80::1"])
    require_publishable("ipv6", ["2001:db8:5::1"], parse_allow_prefixes(["2001:db8:5::/48"]))
