"""Debian 13 clients measured by benchmarks/recovery_d13.py lie inside the model.

Figures from `make bench-recovery-d13` of 3 Dec 2026 (docs/recovery-model.md,
"Measured with Debian 13 clients"): seconds after the change, TTL 2 s, the smallest
and largest value over the trials of each event; fresh DNS 0.24 s after the change,
late DNS 42.29 s after it. Any change of the model that moves its interval off a
measured figure fails here.
"""

from __future__ import annotations

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._model.recovery import recovery_time

# (client, poll, DNS update latency): event -> (min, max) measured.
MEASURED = {
    ("chrony-4.4+", 0, 0.244): {"reresolve": (8.11, 8.974), "recovery": (10.13, 11.016),
                                "selectable": (12.145, 13.042)},
    ("ntpsec-1.2", 2, 0.244): {"reresolve": (36.477, 39.982), "recovery": (36.527, 40.039),
                               "selectable": (46.475, 49.981)},
    # late DNS: 19 of 100 chrony clients recovered inside the 600 s watch
    ("chrony-4.4+", 0, 42.29): {"reresolve": (8.089, 9.127), "recovery": (56.618, 611.34),
                                "selectable": (58.626, 613.374)},
    ("ntpsec-1.2", 2, 42.29): {"reresolve": (39.074, 39.924)},
}


@pytest.mark.parametrize(("kind", "poll", "latency"), list(MEASURED), ids=str)
def test_measured_debian13_clients_inside_the_model(kind: str, poll: int, latency: float) -> None:
    model = recovery_time({"client": kind, "minpoll": poll, "maxpoll": poll}, ttl=2, update_latency=latency)
    for event, (low, high) in MEASURED[(kind, poll, latency)].items():
        earliest, latest = model[f"{event}_earliest_s"], model[f"{event}_latest_s"]
        assert earliest - 1e-6 <= low and high <= latest + 1e-6, (event, low, high, earliest, latest)
