"""The ntpd-rs-1.4 client kind across schedules.py and recovery.py (ntpd-rs 1.4.0 source rules)."""

from __future__ import annotations

import itertools

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._model.clients import (
    LINUX_ARP_FAILURE_S,
    LINUX_TCP_SYN_TIMEOUT_LATEST_S,
    LINUX_TCP_SYN_TIMEOUT_S,
    NTPDRS_NETWORK_WAIT_S,
    parse_client,
)
from ansible_collections.ntsops.nts.plugins.module_utils._model.recovery import (
    ke_retry_schedule,
    max_ttl,
    recovery_time,
)
from ansible_collections.ntsops.nts.plugins.module_utils._model.schedules import NtpdrsPlan, make_plan
from ansible_collections.ntsops.nts.plugins.module_utils._model.sizing import recommend_server_settings


def _spec(**extra: object) -> object:
    return parse_client({"client": "ntpd-rs-1.4", **extra})


def test_defaults_are_ntpdrs_poll_limits_and_cookie_stash() -> None:
    spec = parse_client("ntpd-rs-1.4")
    # PollIntervalLimits::default() 4..10, cookiestash.rs MAX_COOKIES 8; steady at maxpoll.
    assert (spec.minpoll, spec.maxpoll, spec.cookies, spec.poll_range()) == (4, 10, 8, (10, 10))


@pytest.mark.parametrize("latest, stretch", [(False, 1.01), (True, 1.05)])
def test_reset_eight_polls_after_the_first_lost_poll(latest: bool, stretch: float) -> None:
    plan = make_plan(_spec(), 6, latest=latest)
    assert isinstance(plan, NtpdrsPlan)
    interval = 64 * stretch
    assert plan.first_interval == pytest.approx(interval)
    # The reach register empties at the 9th timer after the last answer.
    assert plan.first().at == pytest.approx(8 * interval)


def test_fewer_cookies_reset_when_the_stash_is_empty() -> None:
    assert make_plan(_spec(cookies=3), 6, latest=False).first().at == pytest.approx(3 * 64 * 1.01)
    assert make_plan(_spec(cookies=0), 6, latest=False).first().at == 0.0


def test_retries_every_second_without_back_off_when_refused() -> None:
    plan = make_plan(_spec(old_address="refused"), 6, latest=False)
    first = plan.first().at
    times = [attempt.at for attempt in itertools.islice(plan.attempts(), 6)]
    assert times == pytest.approx([first + n * NTPDRS_NETWORK_WAIT_S for n in range(6)])
    # Recovery is at the attempt: the new source polls at once.
    assert all(attempt.recovery == attempt.at for attempt in itertools.islice(plan.attempts(), 6))


def test_dark_old_address_costs_a_syn_timeout_per_attempt() -> None:
    assert make_plan(_spec(old_address="dark"), 6, latest=False).gap(1) == LINUX_TCP_SYN_TIMEOUT_S + 1 == 128.0
    # The latest case: tcp_syn_linear_timeouts gives up at 131 s, the wheel adds up to 8 s.
    latest = make_plan(_spec(old_address="dark"), 6, latest=True)
    assert latest.gap(1) == LINUX_TCP_SYN_TIMEOUT_LATEST_S + NTPDRS_NETWORK_WAIT_S == 140.0


def test_unreachable_old_address_resets_by_the_reach_register_like_a_dark_one() -> None:
    # ICMP host/network unreachable and ARP failures are soft errors a connected UDP
    # socket never reports: no NetworkIssue restart (measured: reset after 8 polls).
    spec = _spec(old_address="unreachable")
    for latest, stretch in ((False, 1.01), (True, 1.05)):
        assert make_plan(spec, 6, latest=latest).first().at == pytest.approx(8 * 64 * stretch)

    # Each NTS-KE to it fails with EHOSTUNREACH once ARP gives up (at once when a router
    # says network unreachable), then the spawner waits 1 s (measured: 4.06 s apart).
    assert make_plan(spec, 6, latest=False).gap(1) == NTPDRS_NETWORK_WAIT_S
    assert make_plan(spec, 6, latest=True).gap(1) == LINUX_ARP_FAILURE_S + NTPDRS_NETWORK_WAIT_S


def test_late_dns_with_an_unreachable_old_address_waits_for_the_failing_attempt() -> None:
    client = {"client": "ntpd-rs-1.4", "maxpoll": 3, "minpoll": 3, "old_address": "unreachable"}
    result = recovery_time(client, ttl=0, update_latency=120)
    # The attempt under way when DNS turns fresh still goes to the old address.
    assert result["recovery_earliest_s"] == pytest.approx(120)
    assert result["recovery_latest_s"] == pytest.approx(120 + LINUX_ARP_FAILURE_S + NTPDRS_NETWORK_WAIT_S)


def test_ke_retry_schedule_is_flat() -> None:
    assert ke_retry_schedule("ntpd-rs-1.4", "connect", 4) == [1.0, 1.0, 1.0, 1.0]
    assert ke_retry_schedule("ntpd-rs-1.4", "tls", 2) == [1.0, 1.0]


def test_fresh_dns_recovery_interval() -> None:
    result = recovery_time({"client": "ntpd-rs-1.4", "maxpoll": 6, "minpoll": 6}, ttl=0, update_latency=0)
    # Earliest: first lost poll right after the change, 8 intervals of 64 * 1.01 s;
    # latest: first lost poll a whole interval later, intervals of 64 * 1.05 s.
    assert result["recovery_earliest_s"] == pytest.approx(8 * 64 * 1.01)
    assert result["recovery_latest_s"] == pytest.approx(9 * 64 * 1.05)
    assert result["meets_budget"]
    assert result["ke_retry_to_old_s"] == [1.0] * 4


@pytest.mark.parametrize("old_address, shortest, period", [("refused", 1.0, 1.0), ("dark", 128.0, 140.0)])
def test_late_dns_has_no_hold_off(old_address: str, shortest: float, period: float) -> None:
    client = {"client": "ntpd-rs-1.4", "maxpoll": 6, "minpoll": 6, "old_address": old_address}
    result = recovery_time(client, ttl=20_000, update_latency=0)
    # Back within one retry period of DNS turning fresh: no replacement hold-off.
    assert result["recovery_latest_s"] == pytest.approx(20_000 + period)
    assert result["late_dns_extra_s"] == pytest.approx(20_000 + period - 9 * 64 * 1.05)
    assert result["next_reresolution_after_stale_s"] == [shortest, period]


def test_max_ttl_is_the_earliest_reset() -> None:
    # maxpoll 10: 8 polls of 1024 * 1.01 s.
    assert max_ttl([{"client": "ntpd-rs-1.4"}], update_latency=60) == int(8 * 1024 * 1.01 - 60)


def test_server_recommendation_accepts_ntpdrs_clients() -> None:
    fleet = {
        "expected_clients": 10_000,
        "largest_nat_group": 50,
        "client_mix": [{"client": "ntpd-rs-1.4", "share": 0.3}, {"client": "chrony-4.4+"}],
    }
    result = recommend_server_settings(fleet)
    assert result["maxntsconnections"] >= 100


# benchmarks/ntpdrs_recovery.py, 3 Dec 2026, P = 8 s, 4 clients per row: first
# authenticated response from the new address, s after the change; the moment the
# names moved (the model's update latency, TTL 0).
MEASURED = [
    ("refused", 0.0, 67.85, 74.62),
    ("dark", 0.0, 66.83, 74.45),
    ("unreachable", 0.0, 68.36, 75.58),
    ("refused", 120.9, 121.01, 121.35),
    ("dark", 121.82, 203.49, 205.49),
    ("unreachable", 122.6, 122.68, 125.58),
]


@pytest.mark.parametrize("old_address, moved, first, last", MEASURED)
def test_measured_recovery_lies_inside_the_model(old_address: str, moved: float, first: float, last: float) -> None:
    client = {"client": "ntpd-rs-1.4", "maxpoll": 3, "minpoll": 3, "old_address": old_address}
    result = recovery_time(client, ttl=0, update_latency=moved)
    assert result["recovery_earliest_s"] <= first <= last <= result["recovery_latest_s"]
