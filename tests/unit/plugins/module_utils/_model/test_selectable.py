"""The model's second output: when the source is selectable again after the address change."""

from __future__ import annotations

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._model.clients import (
    CLIENTS,
    SELECT_SAMPLES,
    ClientSpec,
    parse_client,
)
from ansible_collections.ntsops.nts.plugins.module_utils._model.recovery import max_ttl, recovery_time
from ansible_collections.ntsops.nts.plugins.module_utils._model.selectable import sample_interval, selectable_offset
from hypothesis import given, settings
from hypothesis import strategies as st


def test_chrony_needs_three_samples_two_polls_after_the_first() -> None:
    # regress.h MIN_SAMPLES_FOR_REGRESS 3: the first authenticated response is sample 1,
    # the two requests after it (one poll apart, stretched by up to 2 %) give 2 and 3.
    assert SELECT_SAMPLES["chrony-4.4+"] == (3, 3)
    result = recovery_time({"client": "chrony-4.4+", "minpoll": 0, "maxpoll": 0}, ttl=2, update_latency=0.2)
    assert result["selectable_after_recovery_s"] == pytest.approx([2.0, 2.04])
    assert result["selectable_earliest_s"] == pytest.approx(result["recovery_earliest_s"] + 2.0)
    assert result["selectable_latest_s"] == pytest.approx(result["recovery_latest_s"] + 2.04)
    assert result["minimum_selectable_earliest_s"] == pytest.approx(result["minimum_recovery_earliest_s"] + 2.0)
    assert result["minimum_selectable_latest_s"] == pytest.approx(result["minimum_recovery_latest_s"] + 2.04)
    assert "selectable again" in result["explanation"]


def test_chrony_ramping_poll_may_drop_to_minpoll_before_selection() -> None:
    # get_poll_adj() may lower the poll while samples are few, never below minpoll;
    # the latest takes maxpoll with the 2 % timer stretch.
    result = recovery_time({"client": "chrony-4.3", "minpoll": 6, "maxpoll": 10}, ttl=300, update_latency=60)
    assert result["selectable_after_recovery_s"] == pytest.approx([2 * 64.0, 2 * 1024 * 1.02])


def test_ntpsec_between_one_and_four_samples() -> None:
    # One sample when the pre-outage samples still fill the clock filter, four when
    # every stage holds MAXDISPERSE; requests at least NTP_MINPKT apart (iburst), at
    # most one jittered minpoll plus the NTP_MINPKT guard.
    spec = parse_client({"client": "ntpsec-1.2", "minpoll": 2, "maxpoll": 2})
    assert sample_interval(spec) == pytest.approx((2.0, 4 * (1 + 255 / 4096) + 2.0))
    assert selectable_offset(spec) == pytest.approx((0.0, 3 * (4 * (1 + 255 / 4096) + 2.0)))


def test_rfc_reference_client_uses_its_first_response() -> None:
    result = recovery_time({"client": "rfc8915", "maxpoll": 10}, ttl=0, update_latency=0)
    assert result["selectable_after_recovery_s"] == [0.0, 0.0]
    assert result["selectable_latest_s"] == result["recovery_latest_s"]
    assert "selectable again" not in result["explanation"]


def test_kind_without_a_rule_gives_none() -> None:
    # A client kind added to the model without a selection rule reports None, not a guess.
    spec = ClientSpec("no-such-kind", 6, 10, "steady", None, "dark", 8)
    assert selectable_offset(spec) is None


def test_ttl_budget_keeps_using_the_reresolution() -> None:
    fleet = [{"client": kind, "maxpoll": 10} for kind in CLIENTS]
    for kind in CLIENTS:
        result = recovery_time({"client": kind, "maxpoll": 10}, ttl=300, update_latency=60)
        assert result["budget_s"] == result["reresolve_earliest_s"]
    assert max_ttl(fleet, update_latency=60) == 8192 - 60


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(CLIENTS),
    minpoll=st.integers(0, 10),
    span=st.integers(0, 6),
    ttl=st.integers(0, 100000),
    latency=st.integers(0, 3600),
)
def test_selectable_never_before_recovery(kind: str, minpoll: int, span: int, ttl: int, latency: int) -> None:
    maxpoll = min(minpoll + span, 17)
    result = recovery_time({"client": kind, "minpoll": minpoll, "maxpoll": maxpoll}, ttl=ttl, update_latency=latency)
    if kind not in SELECT_SAMPLES:
        # No selection rule read from that client's source yet (ntpd-rs): no figure.
        assert result["selectable_earliest_s"] is None and result["selectable_after_recovery_s"] is None
        return
    assert result["recovery_earliest_s"] <= result["selectable_earliest_s"] <= result["selectable_latest_s"]
    assert result["selectable_latest_s"] >= result["recovery_latest_s"]
    assert result["minimum_selectable_earliest_s"] >= result["minimum_recovery_earliest_s"]
