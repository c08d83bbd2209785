"""The probe gate: a scrape storm gets cached answers, a full house gets 'busy', a stall ends at the deadline."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._check.probe_gate import (
    ExporterStats,
    ProbeBusy,
    ProbeGate,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _timeout(seconds: float) -> str:
    return f"timeout after {seconds:g}\n"


def test_a_repeated_scrape_inside_the_interval_gets_the_cached_result() -> None:
    clock = Clock()
    gate = ProbeGate(max_concurrent=2, min_interval=15, clock=clock)
    runs: list[int] = []

    def probe() -> str:
        runs.append(1)
        return f"run {len(runs)}\n"

    assert gate.run("a", probe, 5, _timeout).how == "fresh"
    clock.now += 14.9
    second = gate.run("a", probe, 5, _timeout)
    assert (second.text, second.how) == ("run 1\n", "cached")
    assert gate.run("b", probe, 5, _timeout).text == "run 2\n"  # another target is probed
    clock.now += 0.2
    assert gate.run("a", probe, 5, _timeout).text == "run 3\n"  # the interval has passed
    assert len(runs) == 3


def test_concurrent_scrapes_of_one_target_share_one_probe_and_the_limit_refuses_more() -> None:
    gate = ProbeGate(max_concurrent=1, min_interval=0)
    release = threading.Event()
    started = threading.Event()
    runs: list[str] = []

    def slow() -> str:
        runs.append("slow")
        started.set()
        release.wait(5)
        return "slow done\n"

    results: list[Any] = []
    first = threading.Thread(target=lambda: results.append(gate.run("a", slow, 5, _timeout)))
    first.start()
    assert started.wait(5)
    joiner = threading.Thread(target=lambda: results.append(gate.run("a", slow, 5, _timeout)))
    joiner.start()
    with pytest.raises(ProbeBusy, match="max_concurrent_probes 1"):
        gate.run("b", lambda: "never\n", 5, _timeout)
    assert gate.in_flight == 1
    release.set()
    first.join(5)
    joiner.join(5)
    assert sorted(r.how for r in results) == ["fresh", "joined"]
    assert all(r.text == "slow done\n" for r in results)
    assert runs == ["slow"]
    assert gate.in_flight == 0


def test_a_stalled_probe_is_answered_at_the_deadline_and_keeps_its_slot() -> None:
    gate = ProbeGate(max_concurrent=1, min_interval=0)
    release = threading.Event()
    began = time.monotonic()
    outcome = gate.run("a", lambda: "late\n" if release.wait(5) else "never\n", 0.2, _timeout)
    assert outcome.how == "timeout"
    assert outcome.text.startswith("timeout after")
    assert time.monotonic() - began < 1.0
    # Still on the wire: the slot is taken until the probe really ends.
    with pytest.raises(ProbeBusy):
        gate.run("b", lambda: "x\n", 1, _timeout)
    release.set()
    for _attempt in range(100):
        if gate.in_flight == 0:
            break
        time.sleep(0.01)
    assert gate.run("b", lambda: "x\n", 1, _timeout).text == "x\n"


def test_a_probe_that_raises_is_an_error_outcome_not_a_crash() -> None:
    gate = ProbeGate(max_concurrent=1, min_interval=60)

    def broken() -> str:
        raise RuntimeError("bug")

    outcome = gate.run("a", broken, 1, _timeout)
    assert outcome.how == "error"
    assert gate.run("a", lambda: "ok\n", 1, _timeout).text == "ok\n"  # nothing was cached


def test_stats_render_counters_and_a_summary(parse_exposition: Callable[..., Any]) -> None:
    gate = ProbeGate(max_concurrent=1, min_interval=60)
    stats = ExporterStats(process_time=lambda: 1.25)
    stats.probed("nts", gate.run("a", lambda: "x\n", 1, _timeout))
    stats.probed("nts", gate.run("a", lambda: "x\n", 1, _timeout))
    stats.rejected("busy")
    declared, samples = parse_exposition(stats.render(gate.in_flight))
    values = {(m, tuple(labels.values())): v for m, labels, v in samples}
    assert values[("ntsops_exporter_probes_total", ("nts", "fresh"))] == 1
    assert values[("ntsops_exporter_probes_total", ("nts", "cached"))] == 1
    assert values[("ntsops_exporter_probe_rejections_total", ("busy",))] == 1
    assert values[("ntsops_exporter_probe_duration_seconds_count", ("nts",))] == 1
    assert values[("process_cpu_seconds_total", ())] == 1.25
    assert declared["ntsops_exporter_probes_total"][0] == "counter"
    assert declared["ntsops_exporter_probe_duration_seconds"][0] == "summary"
