"""NTS-KE connections to the old address while DNS is stale: each kind's retry law, and the fleet count."""

from __future__ import annotations

import itertools
import math

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._model import simulate
from ansible_collections.ntsops.nts.plugins.module_utils._model.clients import parse_client
from ansible_collections.ntsops.nts.plugins.module_utils._model.schedules import make_plan
from ansible_collections.ntsops.nts.plugins.module_utils._model.simulate import OldKeCounter, simulate_fleet

PATHS = [False] + ([True] if simulate.np is not None else [])


def test_chrony_backs_off_from_the_first_poll_without_a_cookie() -> None:
    # P = 16 s fixed, 8 cookies: polls 1..8 use them; NTS-KE at poll 9 (128 s after the
    # first lost poll), then 2^4, 2^5, 2^6 ... s later, each at the next poll.
    plan = make_plan(parse_client({"client": "chrony-4.3", "minpoll": 4, "maxpoll": 4}), 4, latest=False, jitter=0.0)
    times = plan.old_ke_times(1000.0)
    assert times == [128.0, 144.0, 176.0, 240.0, 368.0, 624.0]


def test_chrony_waits_longer_after_a_failed_handshake() -> None:
    connect = make_plan(parse_client({"client": "chrony-4.4+", "maxpoll": 4}), 4, latest=False, jitter=0.0)
    tls = make_plan(parse_client({"client": "chrony-4.4+", "maxpoll": 4, "old_address": "other"}), 4,
                    latest=False, jitter=0.0)
    assert tls.old_ke_times(5000.0) == [128.0, 128.0 + 1024.0, 128.0 + 1024.0 + 2048.0]
    assert len(connect.old_ke_times(5000.0)) > len(tls.old_ke_times(5000.0))


@pytest.mark.parametrize(("old_address", "period"), [("refused", 1.0), ("dark", 128.0)])
def test_ntpdrs_retries_every_second_or_after_each_syn_timeout(old_address: str, period: float) -> None:
    plan = make_plan(parse_client({"client": "ntpd-rs-1.4", "maxpoll": 4, "old_address": old_address}), 4,
                     latest=False)
    times = plan.old_ke_times(plan.first_at + 600.0)
    assert times[0] == plan.first_at
    assert all(b - a == pytest.approx(period) for a, b in itertools.pairwise(times))
    assert len(times) == math.ceil(600.0 / period)


def test_ntpsec_connects_once_per_4096_s() -> None:
    plan = make_plan(parse_client({"client": "ntpsec-1.2", "maxpoll": 6, "old_address": "refused"}), 6, latest=False)
    assert plan.old_ke_times(plan.first_at + 5000.0) == [plan.first_at, plan.first_at + 4096.0]


def test_runs_and_points_count_the_same_in_both_paths() -> None:
    if simulate.np is None:
        pytest.skip("numpy not installed")
    refused = make_plan(parse_client({"client": "ntpd-rs-1.4", "maxpoll": 4, "old_address": "refused"}), 4,
                        latest=False)
    chrony = make_plan(parse_client({"client": "chrony-4.3", "maxpoll": 4}), 4, latest=False)
    u = [0.5, 3.25, 15.9, 7.0]
    until = [200.0, 40.0, 900.0, 3.0]  # the last one re-keys at the new address before any stale attempt
    counted = []
    for use_numpy in (False, True):
        counter = OldKeCounter(2, use_numpy)
        counter.add(0, refused, u, until)
        counter.add(1, chrony, u, until)
        counted.append((counter.per_bin(), counter.by_kind))
    assert counted[0] == counted[1]
    per_bin, by_kind = counted[0]
    assert sum(per_bin) == sum(by_kind)
    # ntpd-rs: one connection a second from first_at after the first lost poll until the re-key
    expected = sum(max(math.ceil(b - a - refused.first_at - 1e-12), 0) for a, b in zip(u, until, strict=True))
    assert by_kind[0] == expected


@pytest.mark.parametrize("use_numpy", PATHS)
def test_fleet_counts_the_flood_of_ntpdrs_while_dns_is_stale(use_numpy: bool) -> None:
    mix = [{"client": "ntpd-rs-1.4", "maxpoll": 4, "poll": 4, "old_address": "refused"}]
    result = simulate_fleet(mix, 2_000, 0, 600, use_numpy=use_numpy)
    assert sum(result.old_ke_per_bin) == result.old_ke_by_kind[0]
    # every client resets about 8 polls (128-136 s) after the change and then connects to
    # the old address once a second until DNS is fresh at 600 s
    per_client = result.old_ke_by_kind[0] / 2_000
    assert 600 - 8 * 16 * 1.05 - 16 <= per_client <= 600 - 8 * 16 * 1.01 + 1
    assert max(result.old_ke_per_bin) <= 2_000


@pytest.mark.parametrize("use_numpy", PATHS)
def test_no_connection_to_the_old_address_when_dns_is_fresh_in_time(use_numpy: bool) -> None:
    mix = [{"client": "ntpd-rs-1.4", "maxpoll": 6, "old_address": "refused"}, {"client": "ntpsec-1.2", "maxpoll": 6}]
    result = simulate_fleet(mix, 1_000, 0, 0, use_numpy=use_numpy)
    assert result.old_ke_per_bin == [] and result.old_ke_by_kind == [0, 0]
