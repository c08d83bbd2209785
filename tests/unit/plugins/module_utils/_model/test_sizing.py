"""Tests of the server sizing: chrony's token bucket and the recommended settings."""

from __future__ import annotations

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._model.simulate import simulate_fleet
from ansible_collections.ntsops.nts.plugins.module_utils._model.sizing import (
    rate_limited_requests,
    recommend_server_settings,
)
from ansible_collections.ntsops.nts.plugins.module_utils._model.summary import arrival_histogram, largest_group_arrivals
from ansible_collections.ntsops.nts.plugins.module_utils._model.validate import RecoveryModelError


def test_token_bucket_hand_cases() -> None:
    # Bucket of 2, one more per 2^0 = 1 s.
    assert rate_limited_requests([0.0, 0.0, 0.0], interval=0, burst=2) == 1
    assert rate_limited_requests([0.0, 0.0, 1.0], interval=0, burst=2) == 0
    assert rate_limited_requests([0.0, 0.0, 0.5, 1.5], interval=0, burst=2) == 1
    # chrony's default ntsratelimit: 8 at once, then one per 64 s.
    assert rate_limited_requests([float(i) for i in range(20)], interval=6, burst=8) == 12


def test_recommendation_admits_the_simulated_herd_and_defaults_do_not() -> None:
    mix = [{"client": "chrony-4.3", "maxpoll": 6, "share": 0.6}, {"client": "ntpsec-1.2", "maxpoll": 6}]
    group = 40
    settings = recommend_server_settings({"expected_clients": 4000, "largest_nat_group": group, "client_mix": mix})
    assert settings["ntsratelimit_burst"] >= group
    assert -19 <= settings["ntsratelimit_interval"] <= 12
    assert 1 <= settings["ntsratelimit_leak"] <= 4
    result = simulate_fleet(mix, 4000, 60, 30, nat_group_size=group, nat_fraction=1.0, use_numpy=False)
    groups = largest_group_arrivals(result, limit_groups=100)
    assert len(groups) == 100 and all(len(g) == group for g in groups)
    recommended = [
        rate_limited_requests(g, settings["ntsratelimit_interval"], settings["ntsratelimit_burst"]) for g in groups
    ]
    assert sum(recommended) == 0
    default = [rate_limited_requests(g, 6, 8) for g in groups]
    assert sum(default) > 0


def test_recommendation_beyond_the_largest_burst() -> None:
    mix = [{"client": "chrony-4.3", "maxpoll": 10}]
    settings = recommend_server_settings({"expected_clients": 100_000, "largest_nat_group": 5000, "client_mix": mix})
    assert settings["ntsratelimit_burst"] == 255
    # 5625 requests spread over 1024 s need about 5.5 tokens/s: interval <= -3.
    assert settings["ntsratelimit_interval"] <= -3
    result = simulate_fleet(mix, 5000, 0, 0, nat_group_size=5000, use_numpy=False)
    arrivals = largest_group_arrivals(result)[0]
    assert rate_limited_requests(arrivals, settings["ntsratelimit_interval"], settings["ntsratelimit_burst"]) == 0


def test_recommendation_processes_and_connections() -> None:
    mix = [{"client": "chrony-4.3", "maxpoll": 6}]
    small = recommend_server_settings({"expected_clients": 1000, "largest_nat_group": 1, "client_mix": mix})
    assert small["ntsprocesses"] == 1 and small["maxntsconnections"] == 100
    assert small["ntsratelimit_burst"] == 8
    big = recommend_server_settings({"expected_clients": 1_000_000, "largest_nat_group": 1, "client_mix": mix})
    # 10^6 / 64 s = 15625/s, plus 4 sigma (500): 16125/s at 1000/s per process.
    assert big["ntsprocesses"] == 17
    assert big["maxntsconnections"] == 1898  # ceil(16125 / 17 * 2 s)
    capped = recommend_server_settings(
        {"expected_clients": 1_000_000, "largest_nat_group": 1, "client_mix": mix, "server_cores": 4}
    )
    assert capped["ntsprocesses"] == 4 and "too few cores" in capped["explanation"]


@pytest.mark.parametrize(
    ("fleet_description", "message"),
    [
        ({"expected_clients": 0}, "expected_clients"),
        ({"expected_clients": 10, "largest_nat_group": 11}, "largest_nat_group"),
        ({"expected_clients": 10, "client_mix": [{"client": "x"}]}, "'x'"),
        ({"expected_clients": 10, "clients": 3}, "clients"),
        ("fleet", "mapping"),
    ],
)
def test_bad_fleet_is_named(fleet_description: object, message: str) -> None:
    with pytest.raises(RecoveryModelError, match=message):
        recommend_server_settings(fleet_description)  # type: ignore[arg-type]


def test_recommendation_accepts_numbers_as_strings() -> None:
    # Ansible extra vars arrive as strings.
    mix = [{"client": "chrony-4.3", "maxpoll": "8"}]
    as_strings = recommend_server_settings({"expected_clients": "4000", "largest_nat_group": "30", "client_mix": mix})
    as_ints = recommend_server_settings(
        {"expected_clients": 4000, "largest_nat_group": 30, "client_mix": [{"client": "chrony-4.3", "maxpoll": 8}]}
    )
    assert as_strings == as_ints


def test_recommended_peak_bounds_the_simulated_peak() -> None:
    mix = [
        {"client": "chrony-4.3", "maxpoll": 6, "share": 0.5},
        {"client": "ntpsec-1.2", "maxpoll": 6, "share": 0.3},
        {"client": "rfc8915", "minpoll": 4, "maxpoll": 6, "poll_state": "ramping"},
    ]
    settings = recommend_server_settings({"expected_clients": 20_000, "largest_nat_group": 1, "client_mix": mix})
    result = simulate_fleet(mix, 20_000, 0, 0, use_numpy=False)
    simulated_peak = max(arrival_histogram(list(result.ke_s), 1.0))
    assert simulated_peak <= settings["peak_ke_per_second"]
    # ... and is not a wild overestimate.
    assert settings["peak_ke_per_second"] < 3 * simulated_peak
