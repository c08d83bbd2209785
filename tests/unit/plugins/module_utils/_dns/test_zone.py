"""Finding the zone and its primary from the SOA (canned DNS, no network)."""

from __future__ import annotations

from typing import Any

import dns.flags
import dns.message
import dns.rrset
import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._dns.client import Endpoint
from ansible_collections.ntsops.nts.plugins.module_utils._dns.errors import DdnsInputError, DdnsZoneNotFoundError
from ansible_collections.ntsops.nts.plugins.module_utils._dns.update import plan
from ansible_collections.ntsops.nts.plugins.module_utils._dns.zone import find_zone
from ansible_collections.ntsops.nts.tests.unit.plugins.module_utils._dns.dns_fakes import (
    NAME,
    PRIMARY,
    ZONE,
    FakeServer,
    lab,
)


def test_find_zone_from_authority_soa_of_a_missing_name() -> None:
    _transport, client, _primary, _secondary = lab()
    info = find_zone(client, NAME, PRIMARY)
    assert (info.zone, info.mname, info.serial, info.primary) == (ZONE, f"ns1.{ZONE}", 1, PRIMARY)


def test_find_zone_without_server_uses_the_resolver_and_the_mname() -> None:
    transport, client, primary, _secondary = lab()
    transport.servers["127.0.0.53"] = primary
    transport.hosts[f"ns1.{ZONE}"] = ["127.0.0.1"]
    info = find_zone(client, NAME, None)
    assert info.primary == Endpoint("127.0.0.1", 53)
    first, address, _port = transport.sent[0]
    assert address == "127.0.0.53"
    assert first.flags & dns.flags.RD


def test_find_zone_refused_means_zone_not_found() -> None:
    _transport, client, _primary, _secondary = lab()
    with pytest.raises(DdnsZoneNotFoundError, match=r"serves no zone containing ntp\.other\.test\."):
        find_zone(client, "ntp.other.test", PRIMARY)


def test_find_zone_not_authoritative() -> None:
    _transport, client, primary, _secondary = lab()
    primary.authoritative = False
    with pytest.raises(DdnsZoneNotFoundError, match="not authoritative"):
        find_zone(client, NAME, PRIMARY)


def test_find_zone_referral_names_the_delegation() -> None:
    class Referral(FakeServer):
        def answer(self, message: Any) -> Any:
            response = dns.message.make_response(message)
            response.authority.append(dns.rrset.from_text("sub.example.test.", 60, "IN", "NS", "ns.sub.example.test."))
            return response

    transport, client, _primary, _secondary = lab()
    transport.servers["127.0.0.1"] = Referral()
    with pytest.raises(DdnsZoneNotFoundError, match=r"delegated to sub\.example\.test\."):
        find_zone(client, "ntp.sub.example.test", PRIMARY)


def test_given_zone_must_be_an_apex_and_contain_the_name() -> None:
    _transport, client, _primary, _secondary = lab()
    with pytest.raises(DdnsInputError, match="NOTZONE"):
        plan(client, "ntp.other.test", {}, PRIMARY, zone=ZONE)
    with pytest.raises(DdnsZoneNotFoundError, match="not a zone apex"):
        plan(client, NAME, {}, PRIMARY, zone="ntp.example.test")


def test_resolver_query_is_not_signed() -> None:
    transport, client, primary, _secondary = lab()
    transport.servers["127.0.0.53"] = primary
    transport.hosts[f"ns1.{ZONE}"] = ["127.0.0.1"]
    find_zone(client, NAME, None)
    assert transport.sent[0][0].keyring is None
