"""Tests of the fleet simulator and the server sizing."""

from __future__ import annotations

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._model import fleet
from ansible_collections.ntsops.nts.plugins.module_utils._model.fleet import (
    arrival_histogram,
    largest_group_arrivals,
    percentile,
    rate_limited_requests,
    recommend_server_settings,
    simulate_fleet,
)
from ansible_collections.ntsops.nts.plugins.module_utils._model.recovery import (
    CLIENTS,
    RecoveryModelError,
    recovery_time,
)
from hypothesis import given, settings
from hypothesis import strategies as st

PATHS = [False] + ([True] if fleet.np is not None else [])
CASES = [
    ({"client": "chrony-4.3", "maxpoll": 6}, 30, 10),  # fresh DNS
    ({"client": "chrony-4.3", "maxpoll": 1}, 0, 20),  # late DNS, 1792 s hold-off
    ({"client": "chrony-4.4+", "maxpoll": 2}, 50, 20),
    ({"client": "ntpsec-1.2", "maxpoll": 4}, 100, 100),
    ({"client": "rfc8915", "maxpoll": 5, "poll_state": "ramping", "minpoll": 3}, 500, 0),
    ({"client": "chrony-4.3", "minpoll": 4, "maxpoll": 8, "poll_state": "ramping"}, 0, 0),
]


@pytest.mark.parametrize("use_numpy", PATHS)
@pytest.mark.parametrize(("client", "ttl", "latency"), CASES)
def test_fleet_of_one_reproduces_the_model(
    client: dict[str, object], ttl: float, latency: float, use_numpy: bool
) -> None:
    model = recovery_time(client, ttl, latency)
    for seed in range(25):
        result = simulate_fleet([client], 1, ttl, latency, seed=seed, use_numpy=use_numpy)
        value = float(result.recovery_s[0])
        assert model["recovery_earliest_s"] - 1e-6 <= value <= model["recovery_latest_s"] + 1e-6
        assert float(result.ke_s[0]) <= value + 1e-9


@pytest.mark.parametrize("use_numpy", PATHS)
def test_large_fleet_spans_the_model_interval(use_numpy: bool) -> None:
    client = {"client": "chrony-4.3", "maxpoll": 6}
    model = recovery_time(client, 0, 0)
    result = simulate_fleet([client], 20_000, 0, 0, seed=3, use_numpy=use_numpy)
    low, high = percentile(result.recovery_s, 0.0), percentile(result.recovery_s, 1.0)
    p = 64.0
    assert model["recovery_earliest_s"] <= low < model["recovery_earliest_s"] + 0.01 * p
    assert model["recovery_latest_s"] - 0.05 * p < high <= model["recovery_latest_s"]


@pytest.mark.parametrize("use_numpy", PATHS)
def test_arrival_curve_integrates_to_n(use_numpy: bool) -> None:
    mix = [{"client": name, "maxpoll": 7} for name in CLIENTS]
    result = simulate_fleet(mix, 5_001, 600, 60, nat_group_size=10, nat_fraction=0.5, use_numpy=use_numpy)
    assert result.clients == 5_001
    for width in (1.0, 60.0):
        assert sum(arrival_histogram(result.ke_s, width)) == 5_001
    counts = [int(sum(1 for k in result.kind_index if k == i)) for i in range(4)]
    assert counts == [1250, 1250, 1250, 1251] or sorted(counts) == [1250, 1250, 1250, 1251]


def test_numpy_and_pure_paths_agree() -> None:
    if fleet.np is None:
        pytest.skip("numpy not installed")
    mix = [{"client": "chrony-4.3", "maxpoll": 6, "share": 0.5}, {"client": "ntpsec-1.2", "maxpoll": 6}]
    pure = simulate_fleet(mix, 20_000, 60, 30, use_numpy=False)
    vector = simulate_fleet(mix, 20_000, 60, 30, use_numpy=True)
    for q in (0.1, 0.5, 0.9):
        assert percentile(list(pure.recovery_s), q) == pytest.approx(percentile(vector.recovery_s, q), rel=0.02)


def test_shares_split_exactly_and_bad_mix_is_named() -> None:
    mix = [{"client": "chrony-4.3", "share": 0.25}, {"client": "ntpsec-1.2"}, {"client": "rfc8915"}]
    result = simulate_fleet(mix, 8, 0, 0, use_numpy=False)
    assert sorted(result.kind_index) == [0, 0, 1, 1, 1, 2, 2, 2]
    with pytest.raises(RecoveryModelError, match="add up to 1"):
        simulate_fleet([{"client": "chrony-4.3", "share": 0.5}], 10, 0, 0)
    with pytest.raises(RecoveryModelError, match="share"):
        simulate_fleet([{"client": "chrony-4.3", "share": 2}], 10, 0, 0)
    with pytest.raises(RecoveryModelError, match="clients"):
        simulate_fleet([{"client": "chrony-4.3"}], 0, 0, 0)


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


@settings(max_examples=40, deadline=None)
@given(
    client=st.sampled_from(CLIENTS),
    minpoll=st.integers(0, 6),
    span=st.integers(0, 3),
    state=st.sampled_from(["steady", "ramping"]),
    old_address=st.sampled_from(["dark", "refused", "other"]),
    ttl=st.floats(0, 20_000),
    latency=st.floats(0, 5_000),
    seed=st.integers(0, 2**16),
)
def test_simulated_clients_stay_inside_the_model_bounds(  # noqa: PLR0917 - hypothesis passes each strategy
    client: str, minpoll: int, span: int, state: str, old_address: str, ttl: float, latency: float, seed: int
) -> None:
    spec = {
        "client": client,
        "minpoll": minpoll,
        "maxpoll": minpoll + span,
        "poll_state": state,
        "old_address": old_address,
    }
    model = recovery_time(spec, ttl, latency)
    result = simulate_fleet([spec], 200, ttl, latency, nat_group_size=10, seed=seed, use_numpy=False)
    assert model["recovery_earliest_s"] - 1e-6 <= min(result.recovery_s)
    assert max(result.recovery_s) <= model["recovery_latest_s"] + 1e-6


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
