"""RRsets: address normalisation, the wanted states, and reading what a server serves."""

from __future__ import annotations

from typing import Any

import dns.rcode
import dns.rrset
import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._dns.errors import DdnsInputError
from ansible_collections.ntsops.nts.plugins.module_utils._dns.records import (
    RRsetState,
    desired_states,
    normalise_addresses,
)
from ansible_collections.ntsops.nts.plugins.module_utils._dns.update import plan
from ansible_collections.ntsops.nts.tests.unit.plugins.module_utils._dns.dns_fakes import (
    NAME,
    PRIMARY,
    FakeServer,
    lab,
    zone_records,
)


def test_normalise_addresses_sorts_dedupes_and_compresses() -> None:
    assert normalise_addresses("ipv6", ["2001:DB8::0:1", "2001:db8::1", "2001:db8::0"]) == (
        "2001:db8::",
        "2001:db8::1",
    )
    assert normalise_addresses("ipv4", ["192.0.2.10", "192.0.2.9"]) == ("192.0.2.9", "192.0.2.10")


@pytest.mark.parametrize(
    ("family", "value", "message"),
    [
        ("ipv4", "2001:db8::1", "is an IPv6 address"),
        ("ipv6", "192.0.2.1", "is an IPv4 address"),
        ("ipv4", "192.0.2.300", "not an IP address"),
        ("ipv4", "", "not an IP address"),
    ],
)
def test_normalise_addresses_rejects(family: str, value: str, message: str) -> None:
    with pytest.raises(DdnsInputError, match=message):
        normalise_addresses(family, [value])


def test_desired_states() -> None:
    wanted = desired_states("present", 60, ["192.0.2.1"], None)
    assert wanted == {"ipv4": RRsetState(("192.0.2.1",), 60)}
    assert desired_states("present", 60, [], ["2001:db8::1"])["ipv4"] == RRsetState()
    assert desired_states("absent", 0, ["192.0.2.1"], []) == {"ipv4": RRsetState(), "ipv6": RRsetState()}
    with pytest.raises(DdnsInputError, match="outside"):
        desired_states("present", -1, ["192.0.2.1"], None)
    with pytest.raises(DdnsInputError, match="state"):
        desired_states("gone", 1, ["192.0.2.1"], None)


def test_cname_at_the_name_is_refused() -> None:
    records = zone_records()
    records[(NAME, "CNAME")] = (60, ["other.example.test."])

    class WithCname(FakeServer):
        def answer(self, message: Any) -> Any:
            response = super().answer(message)
            if message.question and message.question[0].name.to_text() == NAME:
                response.set_rcode(dns.rcode.NOERROR)
                response.answer = [dns.rrset.from_text(NAME, 60, "IN", "CNAME", "other.example.test.")]
            return response

    transport, client, _primary, _secondary = lab(records)
    transport.servers["127.0.0.1"] = WithCname(records)
    with pytest.raises(DdnsInputError, match="is a CNAME"):
        plan(client, NAME, {}, PRIMARY)
