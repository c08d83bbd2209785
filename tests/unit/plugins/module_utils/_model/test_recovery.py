"""Unit and property tests of the recovery model against hand-computed cases."""

from __future__ import annotations

import math

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._model.clients import CLIENTS
from ansible_collections.ntsops.nts.plugins.module_utils._model.recovery import (
    ke_retry_schedule,
    max_ttl,
    recovery_time,
)
from ansible_collections.ntsops.nts.plugins.module_utils._model.validate import RecoveryModelError
from hypothesis import given, settings
from hypothesis import strategies as st

P10 = 1024.0


def test_chrony43_steady_maxpoll10_fresh_dns() -> None:
    # First lost poll u in (0, P] after the change; the register empties at the 9th
    # poll after the last good exchange (S_9 = 8P), NTS-KE at S_10, first
    # authenticated response at S_11; the latest case stretches every interval by 2 %.
    result = recovery_time({"client": "chrony-4.3", "maxpoll": 10}, ttl=300, update_latency=60)
    assert result["reresolve_earliest_s"] == 8 * P10
    assert result["reresolve_latest_s"] == pytest.approx(9 * P10 * 1.02)
    assert result["recovery_earliest_s"] == 10 * P10
    assert result["recovery_latest_s"] == pytest.approx(11 * P10 * 1.02)
    assert result["meets_budget"] is True
    assert result["late_dns_extra_s"] == 0
    assert result["budget_s"] == 8 * P10
    assert "chrony 4.3" in result["explanation"]


def test_chrony43_measured_fresh_case_lies_inside_prediction() -> None:
    # Measured (docs/recovery-model.md): from the change, re-resolution 8.1-9.1 P, authenticated 10.1-11.1 P.
    for poll in (0, 1, 2):
        p = 2.0**poll
        result = recovery_time({"client": "chrony-4.3", "maxpoll": poll}, ttl=0, update_latency=0)
        assert result["reresolve_earliest_s"] <= 8.1 * p and 9.1 * p <= result["reresolve_latest_s"]
        assert result["recovery_earliest_s"] <= 10.1 * p and 11.1 * p <= result["recovery_latest_s"]


def test_chrony43_late_dns_costs_the_1792s_holdoff() -> None:
    # P = 2 s, DNS fresh only at 20 s, after the first re-resolution at 16-18.36 s.
    # Earliest: u -> 0, no jitter: the next attempt is the first poll >= 16 + 1792 =
    # 1808, recovery two polls later: 1812. Latest: the first attempt as late as
    # 9 * 2.04 = 18.36 s, the next at most 1792 s plus one 2.04 s poll later, recovery
    # at most two 2.04 s polls after that: 18.36 + 1794.04 + 4.08 = 1816.48.
    result = recovery_time({"client": "chrony-4.3", "maxpoll": 1}, ttl=0, update_latency=20)
    assert result["meets_budget"] is False
    assert result["first_reresolution_answer"] == "old"
    assert result["recovery_earliest_s"] == pytest.approx(1812.0)
    assert result["recovery_latest_s"] == pytest.approx(1816.48)
    # Measured: back 1814 s after the change, re-resolved 1794 s after the first time.
    assert result["recovery_earliest_s"] <= 1814 <= result["recovery_latest_s"]
    low, high = result["next_reresolution_after_stale_s"]
    assert low == 1792 and high >= 1793.16
    assert result["minimum_recovery_latest_s"] == pytest.approx(11 * 2.04)


def test_chrony44_late_dns_postponement_range() -> None:
    # Earliest: no postponement, the name is looked up at every poll: the first poll
    # at or after 20 s (u -> 0) is S_11 = 20, recovery S_13 = 24.
    # Latest: a stale attempt just before 20 s (the second can come one poll after the
    # first, at 18 s or later), then the longest postponement 3584 s, the wait for the
    # next 2.04 s poll and two more polls: 20 + 3584 + 2.04 + 4.08.
    result = recovery_time({"client": "chrony-4.4+", "maxpoll": 1}, ttl=0, update_latency=20)
    assert result["recovery_earliest_s"] == pytest.approx(24.0)
    assert result["recovery_latest_s"] == pytest.approx(3610.12)


def test_ntpsec_steady_maxpoll10() -> None:
    # Cookies used at polls 1..8, restart_nts_ke at poll 9, lookup + NTS-KE + request
    # at poll 10 = u + 9P; poll timer stretched by up to 255/4096.
    # The latest case also adds the 2 s NTP_MINPKT guard of a throttled client per poll.
    result = recovery_time({"client": "ntpsec-1.2", "maxpoll": 10}, ttl=60, update_latency=60)
    stretch = 1 + 255 / 4096
    assert result["reresolve_earliest_s"] == 9 * P10
    assert result["reresolve_latest_s"] == pytest.approx(10 * (P10 * stretch + 2))
    assert result["recovery_earliest_s"] == 9 * P10
    assert result["recovery_latest_s"] == pytest.approx(10 * (P10 * stretch + 2))


def test_ntpsec_measured_fresh_case_lies_inside_prediction() -> None:
    # Measured (docs/recovery-model.md): back on authenticated time 9.2-9.9 P after the change (P = 4, 8 s),
    # 11.1 P at P = 16 s where throttling added 2 s per poll.
    for poll in (2, 3):
        p = 2.0**poll
        result = recovery_time({"client": "ntpsec-1.2", "maxpoll": poll}, ttl=0, update_latency=0)
        assert result["recovery_earliest_s"] <= 9.2 * p and 9.9 * p <= result["recovery_latest_s"]
    throttled = recovery_time({"client": "ntpsec-1.2", "minpoll": 4, "maxpoll": 4}, ttl=0, update_latency=0)
    assert throttled["recovery_latest_s"] >= 11.1 * 16


def test_ntpsec_late_dns_waits_4096s_after_failed_ke() -> None:
    # P = 16: lookup at u + 144 (< 200, stale), NTS-KE to the dark old address fails
    # after the 3 s connect timeout, retry 4096 s later: 144 + 3 + 4096 = 4243 (u -> 0).
    result = recovery_time({"client": "ntpsec-1.2", "maxpoll": 4}, ttl=0, update_latency=200)
    assert result["recovery_earliest_s"] == pytest.approx(4243.0)
    stretch = 1 + 255 / 4096
    assert result["recovery_latest_s"] == pytest.approx(10 * (16 * stretch + 2) + 3 + 4096)
    refused = recovery_time({"client": "ntpsec-1.2", "maxpoll": 4, "old_address": "refused"}, ttl=0, update_latency=200)
    assert refused["recovery_earliest_s"] == pytest.approx(4240.0)


def test_rfc8915_reference() -> None:
    # Cookies gone after 8 unanswered requests; NTS-KE with a fresh lookup at the next
    # poll, u + 8P, and the first request at once.
    result = recovery_time({"client": "rfc8915", "maxpoll": 10}, ttl=0, update_latency=0)
    assert result["reresolve_earliest_s"] == 8 * P10
    assert result["recovery_latest_s"] == 9 * P10
    # Late DNS: retries 10, 15, 22.5 s ... re-resolving each time. F = 8P + 20:
    # u -> 0: attempts at 8P, 8P+10, 8P+25 -> 8P + 25.
    late = recovery_time({"client": "rfc8915", "maxpoll": 10}, ttl=0, update_latency=8 * P10 + 20)
    assert late["recovery_earliest_s"] == pytest.approx(8 * P10 + 20)
    assert late["recovery_latest_s"] <= 9 * P10


def test_chrony_ramping_earliest_grows_the_poll() -> None:
    # From minpoll 6 as sync peer: +0.1 at polls 2..8, +0.25 at polls 9 and 10 -> the
    # score passes 1 at poll 10, so S_11 - S_10 = 128: re-resolution 8 * 64 = 512,
    # recovery 512 + 64 + 128 = 704.
    result = recovery_time(
        {"client": "chrony-4.3", "minpoll": 6, "maxpoll": 10, "poll_state": "ramping"}, ttl=0, update_latency=0
    )
    assert result["reresolve_earliest_s"] == 512
    assert result["recovery_earliest_s"] == 704
    assert result["recovery_latest_s"] == pytest.approx(11 * P10 * 1.02)


def test_fewer_cookies_do_not_change_chrony_reresolution() -> None:
    # The register needs 8 misses whatever the cookies; polls without cookies are misses too.
    full = recovery_time({"client": "chrony-4.3", "maxpoll": 6}, ttl=0, update_latency=0)
    few = recovery_time({"client": "chrony-4.3", "maxpoll": 6, "cookies": 3}, ttl=0, update_latency=0)
    assert few["reresolve_earliest_s"] == full["reresolve_earliest_s"]
    none = recovery_time({"client": "chrony-4.3", "maxpoll": 6, "cookies": 0}, ttl=0, update_latency=0)
    assert none["reresolve_earliest_s"] == 7 * 64


def test_max_ttl_fleet() -> None:
    clients = [{"client": "chrony-4.3", "maxpoll": 10}, {"client": "ntpsec-1.2", "maxpoll": 10}]
    assert max_ttl(clients, update_latency=60) == 8 * 1024 - 60
    assert max_ttl({"client": "ntpsec-1.2"}, update_latency=0.5) == 9 * 1024 - 1
    with pytest.raises(RecoveryModelError, match="update_latency 8192"):
        max_ttl(clients, update_latency=8192)
    with pytest.raises(RecoveryModelError, match="non-empty list"):
        max_ttl([], update_latency=1)


def test_ke_retry_schedules() -> None:
    assert ke_retry_schedule("chrony-4.3", "tls", 4) == [1024, 2048, 4096, 8192]
    assert ke_retry_schedule("chrony-4.4+", "connect", 3) == [16, 32, 64]
    capped = ke_retry_schedule("chrony-4.3", "connect", 17)
    assert capped[-2:] == [2**19, 2**19] and capped[-3] == 2**18
    assert ke_retry_schedule("ntpsec-1.2", "tls", 2) == [4096, 4096]
    rfc = ke_retry_schedule("rfc8915", "connect", 40)
    assert rfc[:3] == [10, 15, 22.5] and rfc[-1] == 5 * 86400


@pytest.mark.parametrize(
    ("ttl", "latency", "message"),
    [(-1, 0, "ttl"), (0, -5, "update_latency"), ("x", 0, "'x'"), (math.inf, 0, "ttl"), (0, 10**9, "30 days")],
)
def test_bad_dns_numbers_are_named(ttl: object, latency: object, message: str) -> None:
    with pytest.raises(RecoveryModelError, match=message):
        recovery_time({"client": "chrony-4.3"}, ttl=ttl, update_latency=latency)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("client", "failure", "attempts", "message"),
    [
        ("x", "tls", 1, "'x'"),
        ("rfc8915", "dns", 1, "'dns'"),
        ("rfc8915", "tls", 0, "attempts"),
        ("rfc8915", "tls", "a", "'a'"),
    ],
)
def test_bad_retry_inputs(client: str, failure: str, attempts: object, message: str) -> None:
    with pytest.raises(RecoveryModelError, match=message):
        ke_retry_schedule(client, failure, attempts)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Properties

client_ids = st.sampled_from(CLIENTS)
polls = st.integers(min_value=0, max_value=14)
dns = st.floats(min_value=0, max_value=200_000, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(client=client_ids, low=polls, ttl=dns, latency=dns, state=st.sampled_from(["steady", "ramping"]))
def test_monotonic_in_maxpoll(client: str, low: int, ttl: float, latency: float, state: str) -> None:
    # Re-resolution and the minimum recovery never get earlier with a longer maxpoll.
    before = recovery_time({"client": client, "minpoll": 0, "maxpoll": low, "poll_state": state}, ttl, latency)
    after = recovery_time({"client": client, "minpoll": 0, "maxpoll": low + 1, "poll_state": state}, ttl, latency)
    for key in (
        "reresolve_earliest_s",
        "reresolve_latest_s",
        "minimum_recovery_earliest_s",
        "minimum_recovery_latest_s",
    ):
        assert after[key] >= before[key] - 1e-9, key


@settings(max_examples=60, deadline=None)
@given(client=client_ids, poll=polls, ttl=dns, extra=dns, latency=dns)
def test_monotonic_in_ttl(client: str, poll: int, ttl: float, extra: float, latency: float) -> None:
    shorter = recovery_time({"client": client, "maxpoll": poll}, ttl, latency)
    longer = recovery_time({"client": client, "maxpoll": poll}, ttl + extra, latency)
    assert longer["recovery_latest_s"] >= shorter["recovery_latest_s"] - 1e-9
    assert longer["recovery_earliest_s"] == pytest.approx(shorter["recovery_earliest_s"])
    assert shorter["meets_budget"] or not longer["meets_budget"]


@settings(max_examples=60, deadline=None)
@given(
    client=client_ids,
    minpoll=st.integers(0, 8),
    span=st.integers(0, 6),
    cookies=st.integers(0, 8),
    ttl=dns,
    latency=dns,
    state=st.sampled_from(["steady", "ramping"]),
)
def test_never_faster_than_cookie_exhaustion(
    *,
    client: str, minpoll: int, span: int, cookies: int, ttl: float, latency: float, state: str
) -> None:
    # No client can notice before its cookies run out: `cookies` polls at the lowest poll.
    spec = {"client": client, "minpoll": minpoll, "maxpoll": minpoll + span, "cookies": cookies, "poll_state": state}
    result = recovery_time(spec, ttl, latency)
    bound = cookies * 2.0**minpoll
    assert result["reresolve_earliest_s"] >= bound - 1e-9
    assert result["recovery_earliest_s"] >= max(bound, result["reresolve_earliest_s"]) - 1e-9
    assert result["recovery_latest_s"] >= result["recovery_earliest_s"] - 1e-9
    assert result["recovery_latest_s"] >= result["minimum_recovery_latest_s"] - 1e-9


@settings(max_examples=60, deadline=None)
@given(
    fleet=st.lists(
        st.fixed_dictionaries({"client": client_ids, "maxpoll": st.integers(3, 14)}), min_size=1, max_size=4
    ),
    latency=st.floats(min_value=0, max_value=60, allow_nan=False),
)
def test_max_ttl_meets_budget_when_fed_back(fleet: list[dict[str, object]], latency: float) -> None:
    ttl = max_ttl(fleet, latency)
    results = [recovery_time(client, ttl, latency) for client in fleet]
    assert all(result["meets_budget"] for result in results)
    for result in results:
        assert result["recovery_latest_s"] == pytest.approx(result["minimum_recovery_latest_s"])
    assert not all(recovery_time(client, ttl + 1, latency)["meets_budget"] for client in fleet)
