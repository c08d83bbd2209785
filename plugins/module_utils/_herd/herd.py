# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A bounded NTS-KE load generator: many clients re-keying at once against one server.

The clients (see the session module) start as the plan module schedules them, on
``concurrency`` threads in each of ``processes`` forked processes, and their
outcomes are summarised in total and per source address. Each process stops
starting clients after the duration and waits at most three session timeouts more.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

from ansible_collections.ntsops.nts.plugins.module_utils._herd.plan import HerdError, HerdOptions, plan_starts
from ansible_collections.ntsops.nts.plugins.module_utils._herd.session import (
    FAILURE_CLASSES,
    OUTCOMES,
    SessionResult,
    run_session,
)
from ansible_collections.ntsops.nts.plugins.module_utils._model.summary import percentile
from ansible_collections.ntsops.nts.plugins.module_utils._net import tls
from ansible_collections.ntsops.nts.plugins.module_utils._net.deadline import NtsStepError


class SessionRunner(Protocol):
    """Runs one client session from a source address (None: the kernel picks)."""

    def __call__(self, source: str | None) -> SessionResult:
        ...


def _stats(results: Sequence[SessionResult], elapsed: float) -> dict[str, Any]:
    counts = dict.fromkeys(OUTCOMES, 0)
    for result in results:
        counts[result.outcome] += 1
    ok = [r for r in results if r.outcome == "ok"]
    latencies = [r.latency_s * 1000 for r in ok]
    handshakes = [r.handshake_s * 1000 for r in results if r.handshake_s is not None]
    summary: dict[str, Any] = {
        "attempted": len(results),
        "ok": counts["ok"],
        "failed": len(results) - counts["ok"],
        "failures": {name: counts[name] for name in FAILURE_CLASSES},
        "cookies": sum(r.cookies for r in ok),
        "ke_per_second": round(counts["ok"] / elapsed, 1) if elapsed > 0 else 0.0,
        "handshakes_per_second": round(len(handshakes) / elapsed, 1) if elapsed > 0 else 0.0,
    }
    for label, values in (("latency_ms", latencies), ("handshake_ms", handshakes)):
        summary[label] = (
            {f"p{q}": round(percentile(values, q / 100), 3) for q in (50, 95, 99)} | {"max": round(max(values), 3)}
            if values else None
        )
    examples = {}
    for result in results:
        if result.outcome != "ok" and result.outcome not in examples:
            examples[result.outcome] = result.detail
    summary["failure_examples"] = examples
    return summary


def _real_runner(options: HerdOptions) -> SessionRunner:
    try:
        context = tls.make_client_context(options.ca_path, strict_verify=True)
    except NtsStepError as exc:
        # A HerdError crosses from a forked process back to the parent intact.
        raise HerdError(str(exc)) from exc

    def runner(source: str | None) -> SessionResult:
        return run_session(options.target, options.port, options.server_name, context, source=source,
                           timeout=options.timeout)

    return runner


def _run_shard(
    options: HerdOptions, runner: SessionRunner | None, shard: int, shards: int, began: float
) -> tuple[list[SessionResult], int]:
    """Run clients shard, shard + shards, ... on ``options.concurrency`` threads.

    ``began`` is a CLOCK_MONOTONIC moment, which every process on the host shares.
    Returns the finished sessions and how many threads were still busy at the bound.
    """
    runner = runner or _real_runner(options)
    starts = plan_starts(options.clients, options.duration, options.rate, options.curve)
    sources: Sequence[str | None] = options.source_addresses or (None,)
    indices = iter(range(shard, options.clients, shards))
    results: list[SessionResult] = []
    lock = threading.Lock()
    stop_at = began + options.duration

    def worker() -> None:
        while True:
            with lock:
                index = next(indices, None)
            if index is None:
                return
            planned = starts[index] if starts is not None else None
            due = began + (planned or 0.0)
            if due >= stop_at or time.monotonic() >= stop_at:
                return
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            result = runner(sources[index % len(sources)])
            result.started -= began
            result.planned = planned
            with lock:
                results.append(result)

    count = min(options.concurrency, len(range(shard, options.clients, shards)))
    threads = [threading.Thread(target=worker, daemon=True) for _thread in range(count)]
    for thread in threads:
        thread.start()
    # Bounded: no start after the duration, and each session ends within its
    # three step timeouts; the margin only covers scheduling.
    join_by = stop_at + 3 * options.timeout + 5.0
    for thread in threads:
        thread.join(max(0.0, join_by - time.monotonic()))
    hung = sum(1 for thread in threads if thread.is_alive())
    with lock:
        return list(results), hung


def _run_shard_in_child(options: HerdOptions, shard: int, shards: int, began: float) -> tuple[list[SessionResult], int]:
    return _run_shard(options, None, shard, shards, began)


def run_herd(options: HerdOptions, runner: SessionRunner | None = None) -> dict[str, Any]:
    """Run the herd and summarise it; ``runner`` (for tests) replaces the real session.

    With ``options.processes`` > 1 the clients are dealt out to that many forked
    processes (each with ``concurrency`` threads), so one Python interpreter's lock
    does not cap the rate; a canned ``runner`` always runs in this process.
    """
    options.validate()
    began = time.monotonic() + 0.05 * options.processes  # let every process get ready
    if options.processes > 1 and runner is None:
        context = multiprocessing.get_context("fork")
        with context.Pool(options.processes) as pool:
            shards = pool.starmap(
                _run_shard_in_child, [(options, p, options.processes, began) for p in range(options.processes)]
            )
        finished = [result for results, _hung in shards for result in results]
        hung = sum(busy for _results, busy in shards)
    else:
        finished, hung = _run_shard(options, runner, 0, 1, began)
    sources: Sequence[str | None] = options.source_addresses or (None,)
    elapsed = max((r.started + r.latency_s for r in finished), default=0.0)
    summary = _stats(finished, elapsed)
    lags = [r.started - r.planned for r in finished if r.planned is not None]
    summary.update(
        {
            "target": options.target,
            "port": options.port,
            "clients": options.clients,
            "not_started": options.clients - len(finished) - hung,
            "unfinished": hung,
            "duration_s": options.duration,
            "elapsed_s": round(elapsed, 3),
            "mode": "rate" if options.rate is not None else "curve" if options.curve is not None else "max",
            "offered_rate": options.rate,
            "concurrency": options.concurrency,
            "processes": options.processes,
            "start_lag_ms": {"p50": round(percentile(lags, 0.5) * 1000, 3), "max": round(max(lags) * 1000, 3)}
            if lags else None,
            "per_source": {
                str(source or "default"): _stats([r for r in finished if r.source == (source or "")], elapsed)
                for source in sources
            },
        }
    )
    return summary
