# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What keeps the exporter from becoming a load generator: a probe limit, a per-target interval, a deadline.

:class:`ProbeGate` runs a probe for a key (module and target) only when

- no result for that key is younger than ``min_interval`` (else that result is
  returned again, marked ``cached``),
- no probe for that key is running (a second scrape waits for that one's result),
- fewer than ``max_concurrent`` probes are running (else :class:`ProbeBusy`).

Each probe runs on its own thread and the caller waits at most ``deadline``
seconds: a peer that stalls every step cannot hold the scrape past it. A probe
still running after its deadline keeps its slot until it really ends, so the
limit counts what is on the wire. :class:`ExporterStats` counts what happened, for
the exporter's own /metrics.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._check import prometheus
from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError

MAX_CACHED = 4096


class ProbeBusy(NtsopsError):
    """Too many probes are running; the scrape should be answered 503."""


@dataclasses.dataclass
class _Slot:
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    text: str | None = None
    finished: float = 0.0


@dataclasses.dataclass(frozen=True)
class Outcome:
    text: str
    how: str  # "fresh", "cached", "joined" (waited for a running probe), "timeout" or "error"
    seconds: float


class ProbeGate:
    def __init__(
        self,
        max_concurrent: int,
        min_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_concurrent = max_concurrent
        self.min_interval = min_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._running: dict[Hashable, _Slot] = {}
        self._results: dict[Hashable, _Slot] = {}

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._running)

    def run(
        self,
        key: Hashable,
        probe: Callable[[], str],
        deadline: float,
        on_timeout: Callable[[float], str],
    ) -> Outcome:
        start = self._clock()
        with self._lock:
            cached = self._results.get(key)
            if cached is not None and cached.text is not None and start - cached.finished < self.min_interval:
                return Outcome(cached.text, "cached", 0.0)
            slot = self._running.get(key)
            joined = slot is not None
            if slot is None:
                if len(self._running) >= self.max_concurrent:
                    raise ProbeBusy(
                        f"{len(self._running)} probes are running (max_concurrent_probes {self.max_concurrent})"
                    )
                slot = self._running[key] = _Slot()
                threading.Thread(target=self._work, args=(key, slot, probe), daemon=True).start()
        finished = slot.done.wait(max(0.0, deadline))
        seconds = self._clock() - start
        if finished and slot.text is not None:
            return Outcome(slot.text, "joined" if joined else "fresh", seconds)
        return Outcome(on_timeout(seconds), "timeout" if not finished else "error", seconds)

    def _work(self, key: Hashable, slot: _Slot, probe: Callable[[], str]) -> None:
        try:
            slot.text = probe()
        except Exception:  # noqa: BLE001 - a probe bug must not kill the exporter: the scrape reports UNKNOWN
            slot.text = None
        finally:
            slot.finished = self._clock()
            with self._lock:
                self._running.pop(key, None)
                if slot.text is not None:
                    self._results[key] = slot
                    self._prune()
            slot.done.set()

    def _prune(self) -> None:
        now = self._clock()
        for old in [k for k, s in self._results.items() if now - s.finished >= self.min_interval]:
            del self._results[old]
        while len(self._results) > MAX_CACHED:
            del self._results[min(self._results, key=lambda k: self._results[k].finished)]


class ExporterStats:
    """Counters of the exporter itself, rendered in the Prometheus text format."""

    def __init__(self, process_time: Callable[[], float] = time.process_time) -> None:
        self._lock = threading.Lock()
        self._probes: dict[tuple[str, str], int] = {}
        self._rejected: dict[str, int] = {}
        self._duration: dict[str, list[float]] = {}
        self._process_time = process_time

    def probed(self, module: str, outcome: Outcome) -> None:
        with self._lock:
            key = (module, outcome.how)
            self._probes[key] = self._probes.get(key, 0) + 1
            if outcome.how in ("fresh", "timeout", "error"):
                total = self._duration.setdefault(module, [0.0, 0.0])
                total[0] += outcome.seconds
                total[1] += 1

    def rejected(self, reason: str) -> None:
        with self._lock:
            self._rejected[reason] = self._rejected.get(reason, 0) + 1

    def render(self, in_flight: int, extra: list[prometheus.Family] | None = None) -> str:
        with self._lock:
            probes = dict(self._probes)
            rejected = dict(self._rejected)
            duration = {k: list(v) for k, v in self._duration.items()}
        families: list[prometheus.Family] = [
            (
                "ntsops_exporter_probes_total",
                "Probe requests answered, by module and how: fresh, cached, joined (a running probe), timeout, error.",
                [prometheus.sample("ntsops_exporter_probes_total", {"module": m, "result": h}, n)
                 for (m, h), n in sorted(probes.items())],
            ),
            (
                "ntsops_exporter_probe_rejections_total",
                "Probe requests refused: unknown_module, bad_target, not_allowed, busy.",
                [prometheus.sample("ntsops_exporter_probe_rejections_total", {"reason": r}, n)
                 for r, n in sorted(rejected.items())],
            ),
            (
                "ntsops_exporter_probes_in_flight",
                "Probes running now (the limit is max_concurrent_probes).",
                [prometheus.sample("ntsops_exporter_probes_in_flight", {}, in_flight)],
            ),
            (
                "process_cpu_seconds_total",
                "CPU time (user and system) the exporter process has used.",
                [prometheus.sample("process_cpu_seconds_total", {}, round(self._process_time(), 6))],
            ),
        ]
        # A summary without quantiles: _sum and _count, as rate(sum)/rate(count) needs.
        lines = _render_summary(duration)
        return prometheus.render(families + (extra or [])) + lines

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"probes": dict(self._probes), "rejected": dict(self._rejected)}


def _render_summary(duration: dict[str, list[float]]) -> str:
    if not duration:
        return ""
    metric = "ntsops_exporter_probe_duration_seconds"
    lines = [
        f"# HELP {metric} Wall time of the probes the exporter ran (not cached answers).",
        f"# TYPE {metric} summary",
    ]
    for module, (total, count) in sorted(duration.items()):
        lines.append(prometheus.sample(f"{metric}_sum", {"module": module}, round(total, 6)))
        lines.append(prometheus.sample(f"{metric}_count", {"module": module}, count))
    return "\n".join(lines) + "\n"
