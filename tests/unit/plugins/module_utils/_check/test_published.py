"""The published A/AAAA records against the server's own addresses (pure comparison, canned input)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._check import endpoint, monitoring
from ansible_collections.ntsops.nts.plugins.module_utils._check.endpoint import (
    CheckOptions,
    EndpointCheckError,
    check_endpoint,
)
from ansible_collections.ntsops.nts.plugins.module_utils._check.published import (
    PublishedRecordsError,
    compare_records,
    gather_server_addresses,
)

NAME = "time.example.net"


def test_equal_records_match_per_family() -> None:
    result = compare_records(NAME, ["2001:db8::7", "192.0.2.7"], ["192.0.2.7", "2001:DB8:0::7"])
    assert result["ipv4"] == {
        "published": ["192.0.2.7"], "server": ["192.0.2.7"], "verdict": "match", "missing": [], "stale": []
    }
    assert result["ipv6"]["verdict"] == "match"
    assert (result["problems"], result["missing"], result["stale"]) == ([], False, False)


def test_a_record_set_lacking_a_family_the_server_serves_is_flagged() -> None:
    result = compare_records(NAME, ["192.0.2.7"], ["192.0.2.7", "2001:db8::7"])
    assert result["ipv6"]["verdict"] == "missing"
    assert result["problems"] == [f"{NAME}: no AAAA record, but the server has ipv6 2001:db8::7"]
    assert result["missing"] and not result["stale"]


def test_stale_and_partly_missing_records() -> None:
    # After a renumbering the AAAA still has the old prefix; the A lacks one of two addresses.
    result = compare_records(
        NAME, ["192.0.2.7", "2001:db8:1::7"], ["192.0.2.7", "192.0.2.8", "2001:db8:2::7"]
    )
    assert result["ipv6"] == {
        "published": ["2001:db8:1::7"], "server": ["2001:db8:2::7"], "verdict": "stale",
        "missing": ["2001:db8:2::7"], "stale": ["2001:db8:1::7"],
    }
    assert result["ipv4"]["verdict"] == "missing"
    assert result["problems"] == [
        f"{NAME}: A lacks the server's 192.0.2.8",
        f"{NAME}: AAAA 2001:db8:1::7 published but not an address of the server (it has 2001:db8:2::7)",
        f"{NAME}: AAAA lacks the server's 2001:db8:2::7",
    ]


def test_a_record_of_a_family_the_server_does_not_have() -> None:
    result = compare_records(NAME, ["192.0.2.7", "2001:db8::7"], ["192.0.2.7"])
    assert result["problems"] == [
        f"{NAME}: AAAA 2001:db8::7 published but not an address of the server (it has no ipv6 address)"
    ]


def test_an_unknown_family_is_not_judged() -> None:
    # Gathered on a host behind NAT: no global IPv4 address on any interface.
    result = compare_records(NAME, ["198.51.100.7", "2001:db8::7"], ["2001:db8::7"], known_families=["ipv6"])
    assert result["ipv4"] == {"published": ["198.51.100.7"], "server": None, "verdict": "unknown",
                              "missing": [], "stale": []}
    assert result["problems"] == []


def test_a_server_address_that_is_no_address_is_an_error() -> None:
    with pytest.raises(PublishedRecordsError, match="server_addresses: 'time' is not an IP address"):
        compare_records(NAME, [], ["time"])


IP4 = "2: eth0    inet 198.18.5.1/24 scope global eth0\\       valid_lft forever preferred_lft forever\n"
IP6 = (
    "2: eth0    inet6 2a00:1450:4001::5/64 scope global deprecated \\       valid_lft 100sec preferred_lft 0sec\n"
    "2: eth0    inet6 2a00:1450:4002::5/64 scope global \\       valid_lft forever preferred_lft forever\n"
    "2: eth0    inet6 2a00:1450:4002::abcd/64 scope global temporary dynamic \\       valid_lft 1sec\n"
    "2: eth0    inet6 fe80::5/64 scope link \\       valid_lft forever preferred_lft forever\n"
)


def runner(argv: Sequence[str]) -> str:
    return IP4 if "-4" in argv else IP6


def test_gathered_addresses_follow_the_agents_selection() -> None:
    addresses, families = gather_server_addresses(runner=runner)
    # 198.18.5.1 is benchmarking space: not the server's public address unless allowed.
    assert families == ("ipv6",)
    assert addresses == ("2a00:1450:4002::5", "2a00:1450:4001::5")
    addresses, families = gather_server_addresses(["198.18.5.0/24"], runner=runner)
    assert families == ("ipv4", "ipv6")
    assert addresses[0] == "198.18.5.1"


def ok_entry(address: str, options: CheckOptions, *, context: Any = None) -> dict[str, Any]:
    return {"address": address, "ok": True, "problems": []}


def test_check_endpoint_compares_the_resolved_records(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(endpoint, "check_address", ok_entry)
    options = CheckOptions(name=NAME, server_addresses=("192.0.2.7", "2001:db8::7"))
    result = check_endpoint(options, resolver=lambda name: ["192.0.2.7"])
    assert result["ok"] is False
    assert result["records"]["ipv6"]["verdict"] == "missing"
    assert result["problems"] == [f"{NAME}: no AAAA record, but the server has ipv6 2001:db8::7"]
    assessment = monitoring.assess(result, monitoring.Thresholds())
    assert assessment.status == monitoring.WARNING
    assert assessment.reasons == result["problems"]

    stale = check_endpoint(options, resolver=lambda name: ["192.0.2.7", "2001:db8::8"])
    assert monitoring.assess(stale, monitoring.Thresholds()).status == monitoring.CRITICAL

    same = check_endpoint(options, resolver=lambda name: ["2001:db8::7", "192.0.2.7"])
    assert same["ok"] is True
    assert monitoring.assess(same, monitoring.Thresholds()).status == monitoring.OK


def test_explicit_addresses_are_checked_and_the_records_still_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(endpoint, "check_address", ok_entry)
    asked: list[str] = []

    def resolver(name: str) -> list[str]:
        asked.append(name)
        raise EndpointCheckError(f"{name} does not resolve: Name or service not known")

    options = CheckOptions(name=NAME, server_addresses=("192.0.2.9",))
    result = check_endpoint(options, addresses=["192.0.2.9"], resolver=resolver)
    assert asked == [NAME]
    assert [e["address"] for e in result["addresses"]] == ["192.0.2.9"]
    assert result["problems"] == [f"{NAME}: no A record, but the server has ipv4 192.0.2.9"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": "192.0.2.1", "server_addresses": ("192.0.2.1",)}, "needs a host name"),
        ({"name": NAME, "server_addresses": ("eth0",)}, "'eth0' is not an IP address"),
        ({"name": NAME, "server_addresses": (), "server_families": ("ipx",)}, "server_families"),
    ],
)
def test_bad_server_addresses_fail_before_any_check(options: dict[str, Any], message: str) -> None:
    with pytest.raises(EndpointCheckError, match=message):
        check_endpoint(CheckOptions(**options), resolver=lambda name: pytest.fail("nothing may be resolved"))
