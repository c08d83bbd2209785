"""Plan and apply: one guarded UPDATE, conflicts, and the server's answers (canned DNS)."""

from __future__ import annotations

from typing import Any

import dns.rcode
import dns.rdataclass
import dns.rdatatype
import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._dns.ensure import ensure_records
from ansible_collections.ntsops.nts.plugins.module_utils._dns.errors import (
    DdnsConflictError,
    DdnsNotAuthError,
    DdnsNotZoneError,
    DdnsRefusedError,
    DdnsServerError,
)
from ansible_collections.ntsops.nts.plugins.module_utils._dns.records import RRsetState, desired_states
from ansible_collections.ntsops.nts.plugins.module_utils._dns.update import plan
from ansible_collections.ntsops.nts.tests.unit.plugins.module_utils._dns.dns_fakes import (
    NAME,
    PRIMARY,
    lab,
    zone_records,
)


def test_ttl_difference_is_a_change() -> None:
    _transport, client, _primary, _secondary = lab(zone_records(a=(300, ["192.0.2.1"])))
    the_plan = plan(client, NAME, desired_states("present", 60, ["192.0.2.1"], None), PRIMARY)
    assert the_plan.changed_families == ("ipv4",)


def test_one_update_changes_both_families_with_prerequisites() -> None:
    transport, client, primary, _secondary = lab(zone_records(a=(60, ["192.0.2.1"])))
    wanted = desired_states("present", 60, ["192.0.2.2"], ["2001:db8::2"])
    result = ensure_records(client, NAME, wanted, ttl=60, server=PRIMARY, wait=False)
    assert result.changed
    [update] = transport.updates()
    prereqs = {(r.rdclass, r.rdtype): r for r in update.prerequisite}
    # A existed: value-dependent, TTL 0 (RFC 2136 3.2.5). AAAA did not: "RRset does not exist" (class NONE).
    a_prereq = prereqs[(dns.rdataclass.IN, dns.rdatatype.A)]
    assert a_prereq.ttl == 0
    assert [r.address for r in a_prereq] == ["192.0.2.1"]
    assert (dns.rdataclass.NONE, dns.rdatatype.AAAA) in prereqs
    changes = [(r.deleting is not None, dns.rdatatype.to_text(r.rdtype), len(r)) for r in update.update]
    assert changes == [(True, "A", 0), (False, "A", 1), (True, "AAAA", 0), (False, "AAAA", 1)]
    assert update.had_tsig or update.keyring is not None
    assert primary.records[(NAME, "AAAA")] == (60, ["2001:db8::2"])


def test_unchanged_family_is_not_touched() -> None:
    transport, client, _primary, _secondary = lab(zone_records(a=(60, ["192.0.2.1"]), a_aaaa=(60, ["2001:db8::1"])))
    wanted = desired_states("present", 60, ["192.0.2.2"], ["2001:db8::1"])
    ensure_records(client, NAME, wanted, ttl=60, server=PRIMARY, wait=False)
    [update] = transport.updates()
    assert {r.rdtype for r in update.update} == {dns.rdatatype.A}
    assert {r.rdtype for r in update.prerequisite} == {dns.rdatatype.A}


def test_absent_removes_only_the_given_family() -> None:
    _transport, client, primary, _secondary = lab(zone_records(a=(60, ["192.0.2.1"]), a_aaaa=(60, ["2001:db8::1"])))
    ensure_records(client, NAME, desired_states("absent", 0, None, []), ttl=0, server=PRIMARY, wait=False)
    assert (NAME, "AAAA") not in primary.records
    assert primary.records[(NAME, "A")] == (60, ["192.0.2.1"])


def test_concurrent_writer_is_reported_with_both_states() -> None:
    _transport, client, primary, _secondary = lab(zone_records(a=(60, ["192.0.2.1"])))

    def other_writer(_message: Any) -> None:
        primary.records[(NAME, "A")] = (60, ["192.0.2.99"])

    primary.on_update = other_writer
    primary.update_rcode = dns.rcode.NXRRSET
    wanted = desired_states("present", 60, ["192.0.2.2"], None)
    with pytest.raises(DdnsConflictError, match=r"Read: A 192\.0\.2\.1; now: A 192\.0\.2\.99"):
        ensure_records(client, NAME, wanted, ttl=60, server=PRIMARY)


def test_update_that_landed_before_a_timeout_is_recognised() -> None:
    _transport, client, primary, _secondary = lab(zone_records(a=(60, ["192.0.2.1"])))

    def landed_earlier(_message: Any) -> None:
        primary.records[(NAME, "A")] = (60, ["192.0.2.2"])

    primary.on_update = landed_earlier
    primary.update_rcode = dns.rcode.NXRRSET
    wanted = desired_states("present", 60, ["192.0.2.2"], None)
    result = ensure_records(client, NAME, wanted, ttl=60, server=PRIMARY, wait=False)
    assert result.changed


@pytest.mark.parametrize(
    ("rcode", "error", "text"),
    [
        (dns.rcode.REFUSED, DdnsRefusedError, "REFUSED; its update policy does not allow TSIG key 'ddns-key'"),
        (dns.rcode.NOTAUTH, DdnsNotAuthError, "NOTAUTH"),
        (dns.rcode.NOTZONE, DdnsNotZoneError, "NOTZONE"),
        (dns.rcode.SERVFAIL, DdnsServerError, "SERVFAIL"),
    ],
)
def test_update_rcodes_become_clear_errors(rcode: int, error: type[Exception], text: str) -> None:
    _transport, client, primary, _secondary = lab()
    primary.update_rcode = rcode
    with pytest.raises(error, match=text):
        ensure_records(
            client, NAME, desired_states("present", 60, ["192.0.2.1"], None), ttl=60, server=PRIMARY
        )


def test_zone_text_for_diff() -> None:
    _transport, client, _primary, _secondary = lab(zone_records(a=(300, ["192.0.2.1"])))
    the_plan = plan(client, NAME, desired_states("present", 60, ["192.0.2.2"], []), PRIMARY)
    assert the_plan.zone_text("before") == f"{NAME} 300 IN A 192.0.2.1\n"
    assert the_plan.zone_text("after") == f"{NAME} 60 IN A 192.0.2.2\n"
    assert the_plan.expected() == {"ipv4": RRsetState(("192.0.2.2",), 60), "ipv6": RRsetState()}
