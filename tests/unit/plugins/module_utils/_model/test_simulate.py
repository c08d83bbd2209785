"""Tests of the fleet simulator against the recovery model."""

from __future__ import annotations

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._model import simulate
from ansible_collections.ntsops.nts.plugins.module_utils._model.clients import CLIENTS
from ansible_collections.ntsops.nts.plugins.module_utils._model.recovery import recovery_time
from ansible_collections.ntsops.nts.plugins.module_utils._model.simulate import simulate_fleet
from ansible_collections.ntsops.nts.plugins.module_utils._model.summary import arrival_histogram, percentile
from ansible_collections.ntsops.nts.plugins.module_utils._model.validate import RecoveryModelError
from hypothesis import given, settings
from hypothesis import strategies as st

PATHS = [False] + ([True] if simulate.np is not None else [])
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
    kinds = len(CLIENTS)
    counts = [int(sum(1 for k in result.kind_index if k == i)) for i in range(kinds)]
    # Equal shares: each kind gets 5001 // kinds, one of them the remainder too.
    expected = [5_001 // kinds] * (kinds - 1) + [5_001 // kinds + 5_001 % kinds]
    assert sorted(counts) == sorted(expected)


def test_numpy_and_pure_paths_agree() -> None:
    if simulate.np is None:
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
