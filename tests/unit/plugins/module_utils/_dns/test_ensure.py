"""ensure_records: plan, apply, confirm, as the module and the agent run it (canned DNS)."""

from __future__ import annotations

import dns.rdatatype
import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._dns.ensure import ensure_records
from ansible_collections.ntsops.nts.plugins.module_utils._dns.errors import DdnsPropagationError
from ansible_collections.ntsops.nts.plugins.module_utils._dns.records import desired_states
from ansible_collections.ntsops.nts.tests.unit.plugins.module_utils._dns.dns_fakes import (
    NAME,
    PRIMARY,
    lab,
    zone_records,
)


def test_noop_sends_no_update() -> None:
    transport, client, _primary, _secondary = lab(zone_records(a=(60, ["192.0.2.1"])))
    wanted = desired_states("present", 60, ["192.0.2.1"], None)
    result = ensure_records(client, NAME, wanted, ttl=60, server=PRIMARY)
    assert result.changed is False
    assert transport.updates() == []
    assert [s.up_to_date for s in result.servers] == [True, True]


def test_check_mode_sends_no_update_and_reports_current_state() -> None:
    transport, client, _primary, _secondary = lab(zone_records(a=(60, ["192.0.2.1"])))
    wanted = desired_states("present", 60, ["192.0.2.9"], None)
    result = ensure_records(client, NAME, wanted, ttl=60, server=PRIMARY, check_mode=True)
    assert result.changed
    assert transport.updates() == []
    assert result.propagation_s is None
    assert all(s.up_to_date for s in result.servers)  # they serve what was read


def test_propagation_timeout_raises_with_the_result() -> None:
    _transport, client, _primary, secondary = lab()
    secondary.refuse = True
    now = [0.0]

    def clock() -> float:
        now[0] += 1.0
        return now[0]

    with pytest.raises(DdnsPropagationError, match=r"within 3 s: ns2.example.test. \(127.0.0.2\)") as caught:
        ensure_records(
            client,
            NAME,
            desired_states("present", 60, ["192.0.2.5"], None),
            ttl=60,
            server=PRIMARY,
            propagation_timeout=3,
            clock=clock,
        )
    result = caught.value.result
    assert result.changed
    assert [s.up_to_date for s in result.servers] == [True, False]
    assert "REFUSED" in (result.servers[1].error or "")


def test_reads_from_the_primary_are_signed_other_queries_are_not() -> None:
    transport, client, _primary, _secondary = lab(zone_records(a=(60, ["192.0.2.1"])))
    wanted = desired_states("present", 60, ["192.0.2.1"], None)
    ensure_records(client, NAME, wanted, ttl=60, server=PRIMARY)
    signed = {
        (m.question[0].name.to_text(), dns.rdatatype.to_text(m.question[0].rdtype), address)
        for m, address, _port in transport.sent
        if m.keyring is not None
    }
    # SOA discovery and the A/AAAA reads at the primary; not the NS set or the propagation checks.
    assert signed == {(NAME, "SOA", "127.0.0.1"), (NAME, "A", "127.0.0.1"), (NAME, "AAAA", "127.0.0.1")}
