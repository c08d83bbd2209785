"""Propagation checks against the zone's NS set (canned DNS)."""

from __future__ import annotations

from ansible_collections.ntsops.nts.plugins.module_utils._dns.client import Endpoint
from ansible_collections.ntsops.nts.plugins.module_utils._dns.records import RRsetState
from ansible_collections.ntsops.nts.plugins.module_utils._dns.servers import (
    authoritative_servers,
    check_servers,
    wait_for_propagation,
)
from ansible_collections.ntsops.nts.plugins.module_utils._dns.zone import find_zone
from ansible_collections.ntsops.nts.tests.unit.plugins.module_utils._dns.dns_fakes import (
    NAME,
    PRIMARY,
    ZONE,
    lab,
    sync,
    zone_records,
)


def test_authoritative_servers_from_ns_and_glue() -> None:
    _transport, client, _primary, _secondary = lab()
    info = find_zone(client, NAME, PRIMARY)
    servers = authoritative_servers(client, info)
    assert servers == [
        (f"ns1.{ZONE}", Endpoint("127.0.0.1", 5300)),
        (f"ns2.{ZONE}", Endpoint("127.0.0.2", 5300)),
    ]


def test_propagation_waits_for_the_secondary() -> None:
    _transport, client, primary, secondary = lab()
    info = find_zone(client, NAME, PRIMARY)
    expected = {"ipv4": RRsetState(("192.0.2.5",), 60)}
    primary.records[(NAME, "A")] = (60, ["192.0.2.5"])
    primary.serial = 2
    now = [0.0]

    def clock() -> float:
        now[0] += 0.01
        return now[0]

    done, seconds, statuses = wait_for_propagation(
        client, NAME, info, expected, timeout=5, clock=clock, sleep=sync(primary, secondary)
    )
    assert done
    assert 0 < seconds < 1
    assert [(s.serial, s.up_to_date) for s in statuses] == [(2, True), (2, True)]


def test_ttl_mismatch_on_a_secondary_is_not_up_to_date() -> None:
    _transport, client, primary, _secondary = lab(zone_records(a=(300, ["192.0.2.5"])))
    info = find_zone(client, NAME, PRIMARY)
    primary.records[(NAME, "A")] = (60, ["192.0.2.5"])
    statuses = check_servers(
        client, NAME, info, {"ipv4": RRsetState(("192.0.2.5",), 60)}, authoritative_servers(client, info)
    )
    assert [s.up_to_date for s in statuses] == [True, False]
