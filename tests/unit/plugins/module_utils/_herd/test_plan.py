"""plan: schedules, curve files and the limits of a herd run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._herd import plan

# ------------------------------------------------------------------ schedule and curve


def test_rate_spaces_starts_evenly() -> None:
    assert plan.plan_starts(4, 10.0, 2.0, None) == [0.0, 0.5, 1.0, 1.5]


def test_no_rate_and_no_curve_means_as_fast_as_possible() -> None:
    assert plan.plan_starts(5, 1.0, None, None) is None


def test_curve_keeps_the_shape_and_the_client_count() -> None:
    starts = plan.plan_starts(100, 4.0, None, (1.0, 0.0, 3.0, 0.0))
    assert starts is not None
    assert len(starts) == 100
    assert sum(1 for s in starts if 0 <= s < 1) == 25
    assert sum(1 for s in starts if 2 <= s < 3) == 75
    assert not any(1 <= s < 2 or s >= 3 for s in starts)


def test_curve_shares_by_largest_remainder() -> None:
    starts = plan.plan_starts(10, 3.0, None, (1.0, 1.0, 1.0))
    assert starts is not None
    per_bin = [sum(1 for s in starts if i <= s < i + 1) for i in range(3)]
    assert sorted(per_bin) == [3, 3, 4]


def test_curve_document_round_trip_trims_quiet_ends(tmp_path: Path) -> None:
    path = tmp_path / "curve.json"
    path.write_text(json.dumps(plan.curve_document([0, 0, 5, 0, 7, 0], 1.0, clients=12)))
    assert plan.load_curve(str(path)) == (5.0, 0.0, 7.0)


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ({"counts": [1]}, "format"),
        ({"format": plan.CURVE_FORMAT, "counts": []}, "no 'counts'"),
        ({"format": plan.CURVE_FORMAT, "counts": [1, -1]}, "non-negative"),
        ({"format": plan.CURVE_FORMAT, "counts": [True]}, "non-negative"),
        ({"format": plan.CURVE_FORMAT, "counts": [0, 0]}, "sum to zero"),
        ([1, 2], "format"),
    ],
)
def test_bad_curves_are_refused(document: Any, words: str) -> None:
    with pytest.raises(plan.HerdError, match=words):
        plan.parse_curve(document)


def test_curve_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text("counts: 1")
    with pytest.raises(plan.HerdError, match="not JSON"):
        plan.load_curve(str(path))


# ------------------------------------------------------------------ limits


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"target": "192.0.2.1"}, "not a loopback address"),
        ({"target": "2001:db8::1"}, "not a loopback address"),
        ({"target": "localhost"}, "not an IP address"),
        ({"clients": 0}, "clients must be"),
        ({"clients": plan.MAX_CLIENTS + 1}, "clients must be"),
        ({"duration": 0}, "duration"),
        ({"duration": plan.MAX_DURATION_S + 1}, "duration"),
        ({"concurrency": 0}, "concurrency"),
        ({"rate": 0.0}, "rate"),
        ({"rate": 1.0, "curve": (1.0,)}, "not both"),
        ({"source_addresses": ("::1",)}, "address family"),
        ({"source_addresses": ("192.0.2.5",)}, "outside loopback"),
        ({"timeout": 0}, "timeout"),
        ({"processes": 0}, "processes"),
        ({"processes": plan.MAX_PROCESSES + 1}, "processes"),
    ],
)
def test_options_are_bounded_and_loopback_only(changes: dict[str, Any], words: str) -> None:
    options = plan.HerdOptions(**{"target": "127.0.0.1", **changes})
    with pytest.raises(plan.HerdError, match=words):
        options.validate()


def test_remote_target_only_when_the_operator_means_it() -> None:
    plan.HerdOptions(target="198.51.100.10", source_addresses=("198.51.100.20",), allow_remote=True).validate()
    plan.HerdOptions(target="::1").validate()
    plan.HerdOptions(target="127.3.4.5").validate()


def test_loopback_sources_are_distinct() -> None:
    sources = plan.loopback_sources(300)
    assert len(set(sources)) == 300
    assert sources[0] == "127.0.1.1"
    assert all(s.startswith("127.") for s in sources)
    with pytest.raises(plan.HerdError):
        plan.loopback_sources(0)
