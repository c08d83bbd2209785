# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet simulator: many clients through one address change, drawn from a client mix.

``simulate_fleet`` draws N clients from a client mix (implementation, poll, poll
phase, poll-timer jitter, the DNS cache state of the resolver they share with their
NAT group) and computes for each, with the same attempt plans as the recovery
model (schedules.py), when it runs NTS-KE to the new address and when it is back on
authenticated time, and counts, per second, the NTS-KE connections the fleet opens
to the OLD address before that (each kind's own retry law: Plan.old_ke_times()).
summary.py reads the result.

numpy is optional: when it is importable (matplotlib brings it) the simulator works
on arrays; otherwise a pure-Python path gives the same results, only slower.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._model.clients import (
    CHRONY_44_REPLACEMENT_POSTPONE_MAX_S,
    ClientSpec,
    parse_mix,
)
from ansible_collections.ntsops.nts.plugins.module_utils._model.schedules import (
    MAX_ATTEMPTS,
    ChronyPlan,
    FixedPeriodPlan,
    Plan,
    gave_up,
    make_plan,
)
from ansible_collections.ntsops.nts.plugins.module_utils._model.validate import (
    RecoveryModelError,
    fraction,
    integer,
    seconds,
)

try:
    import numpy as np
except ImportError:  # the simulator has a pure-Python path
    np = None  # type: ignore[assignment]

MAX_SIMULATED_CLIENTS = 20_000_000
_JITTER_LEVELS = 8
# Width of the bins the old address's NTS-KE connections are counted in.
OLD_KE_BIN_S = 1.0


@dataclass
class SimulationResult:
    """Per-client outcomes of one simulated address change (times from the change)."""

    kinds: list[str]
    kind_index: Sequence[int]
    recovery_s: Sequence[float]
    ke_s: Sequence[float]
    group: Sequence[int]
    group_sizes: dict[int, int]
    parameters: dict[str, Any] = field(default_factory=dict)
    # NTS-KE connections to the old address per OLD_KE_BIN_S from the change, and in
    # total per mix entry.
    old_ke_per_bin: list[int] = field(default_factory=list)
    old_ke_by_kind: list[int] = field(default_factory=list)

    @property
    def clients(self) -> int:
        return len(self.recovery_s)


def _counts(total: int, shares: Sequence[float]) -> list[int]:
    """Split ``total`` by ``shares`` with the largest-remainder method (exact sum)."""
    raw = [total * share for share in shares]
    counts = [math.floor(value) for value in raw]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _jitter_levels(spec: ClientSpec) -> list[float]:
    top, bottom = spec.behaviour.poll_jitter, spec.behaviour.poll_jitter_min
    if top == bottom:
        return [top]
    return [bottom + (top - bottom) * level / (_JITTER_LEVELS - 1) for level in range(_JITTER_LEVELS)]


def simulate_fleet(
    client_mix: Any,
    clients: int,
    ttl: float,
    update_latency: float,
    *,
    nat_group_size: int = 1,
    nat_fraction: float = 1.0,
    seed: int = 1,
    use_numpy: bool | None = None,
) -> SimulationResult:
    """Simulate ``clients`` clients drawn from ``client_mix`` through one address change.

    Clients behind one NAT address share one caching resolver, so they see the new
    address from the same moment F = update_latency + U[0, ttl] (the resolver's
    cached copy of the old record has a uniformly distributed age).
    ``nat_fraction`` of the clients sit in groups of ``nat_group_size``; the rest
    have an address of their own.
    """
    mix = parse_mix(client_mix)
    for spec, _share in mix:
        if spec.since_last_replacement_s is not None or spec.since_start_s is not None:
            # A fleet's processes have each their own history; drawing it would need a
            # distribution nobody knows, so the simulator refuses rather than guess.
            raise RecoveryModelError(
                "since_last_replacement_s and since_start_s describe one client process; the fleet simulator "
                "does not take them (use recovery_time for that client)"
            )
    total = integer(clients, "clients", (1, MAX_SIMULATED_CLIENTS))
    group_size = integer(nat_group_size, "nat_group_size", (1, total))
    grouped_share = fraction(nat_fraction, "nat_fraction")
    ttl_s = seconds(ttl, "ttl")
    latency_s = seconds(update_latency, "update_latency")
    if use_numpy is None:
        use_numpy = np is not None
    if use_numpy and np is None:
        raise RecoveryModelError("use_numpy was requested but numpy is not installed")
    # A seeded, reproducible simulation, not a secret: the stdlib generator is right here.
    rng = random.Random(seed)  # noqa: S311
    counts = _counts(total, [share for _spec, share in mix])
    grouped = min(total, round(total * grouped_share) // group_size * group_size)
    n_groups = grouped // group_size + (total - grouped)
    group_fresh = [latency_s + rng.random() * ttl_s for _group in range(n_groups)]
    group_of = _group_of(total, grouped, group_size, bool(use_numpy))
    group_sizes: dict[int, int] = {}
    if group_size > 1:
        group_sizes = {g: group_size for g in range(grouped // group_size)}
    runner = _simulate_numpy if use_numpy else _simulate_pure
    old_ke = OldKeCounter(len(mix), bool(use_numpy))
    kind_index, recovery, ke = runner(mix, counts, group_of, group_fresh, rng, old_ke=old_ke)
    return SimulationResult(
        kinds=[spec.client for spec, _share in mix],
        kind_index=kind_index,
        recovery_s=recovery,
        ke_s=ke,
        group=group_of,
        group_sizes=group_sizes,
        parameters={
            "clients": total,
            "ttl": ttl_s,
            "update_latency": latency_s,
            "nat_group_size": group_size,
            "nat_fraction": grouped_share,
            "seed": seed,
            "numpy": bool(use_numpy),
        },
        old_ke_per_bin=old_ke.per_bin(),
        old_ke_by_kind=old_ke.by_kind,
    )


class OldKeCounter:
    """Counts the NTS-KE connections to the old address, per bin and per mix entry.

    ``add(index, plan, u, until)`` takes clients of one plan: ``u`` their first lost
    poll and ``until`` their first NTS-KE at the new address, both from the change.
    A fixed-period plan retrying every bin (ntpd-rs refused or unreachable: 1 s) is
    counted as runs of consecutive bins, so that a long stale DNS costs no loop per
    retry; every other plan walks its few attempts (back-off, or a long period).
    """

    def __init__(self, kinds: int, use_numpy: bool) -> None:
        self.by_kind = [0] * kinds
        self.use_numpy = use_numpy
        self.points: list[Any] = []  # bin indices (arrays or lists) of single attempts
        self.runs: list[tuple[Any, Any]] = []  # (first bin, number of bins) of runs

    def add(self, index: int, plan: Plan, u: Any, until: Any) -> None:
        if self.use_numpy:
            self._add_numpy(index, plan, np.asarray(u), np.asarray(until))
        else:
            self._add_pure(index, plan, list(u), list(until))

    def _add_numpy(self, index: int, plan: Plan, u: Any, until: Any) -> None:
        if not u.size:
            return
        rel = until - u  # plan time of each client's first NTS-KE at the new address
        if isinstance(plan, FixedPeriodPlan) and plan.period == OLD_KE_BIN_S:
            count = np.maximum(np.ceil((rel - plan.first_at) / plan.period - 1e-12), 0).astype(np.int64)
            keep = count > 0
            start = np.floor((u[keep] + plan.first_at) / OLD_KE_BIN_S).astype(np.int64)
            self.runs.append((start, count[keep]))
            self.by_kind[index] += int(count.sum())
            return
        for at in plan.old_ke_times(float(rel.max())):
            hit = at < rel
            if not hit.any():
                continue
            self.points.append(np.floor((u[hit] + at) / OLD_KE_BIN_S).astype(np.int64))
            self.by_kind[index] += int(hit.sum())

    def _add_pure(self, index: int, plan: Plan, u: list[float], until: list[float]) -> None:
        if not u:
            return
        rel = [b - a for a, b in zip(u, until, strict=True)]
        if isinstance(plan, FixedPeriodPlan) and plan.period == OLD_KE_BIN_S:
            starts, counts = [], []
            for first, limit in zip(u, rel, strict=True):
                count = max(math.ceil((limit - plan.first_at) / plan.period - 1e-12), 0)
                if count:
                    starts.append(math.floor((first + plan.first_at) / OLD_KE_BIN_S))
                    counts.append(count)
            self.runs.append((starts, counts))
            self.by_kind[index] += sum(counts)
            return
        times = plan.old_ke_times(max(rel))
        bins: list[int] = []
        for first, limit in zip(u, rel, strict=True):
            bins.extend(math.floor((first + at) / OLD_KE_BIN_S) for at in times if at < limit)
        self.points.append(bins)
        self.by_kind[index] += len(bins)

    def per_bin(self) -> list[int]:
        """Connections per bin from the change on (empty when there were none)."""
        return self._per_bin_numpy() if self.use_numpy else self._per_bin_pure()

    def _per_bin_numpy(self) -> list[int]:
        ends = [int(np.max(bins)) + 1 for bins in self.points if bins.size]
        ends += [int(np.max(start + count)) for start, count in self.runs if start.size]
        if not ends:
            return []
        length = max(ends)
        counts = np.zeros(length, dtype=np.int64)
        for bins in self.points:
            counts += np.bincount(bins, minlength=length)
        edges = np.zeros(length + 1, dtype=np.int64)
        for start, count in self.runs:
            np.add.at(edges, start, 1)
            np.add.at(edges, start + count, -1)
        return [int(x) for x in counts + np.cumsum(edges)[:length]]

    def _per_bin_pure(self) -> list[int]:
        ends = [max(bins) + 1 for bins in self.points if bins]
        ends += [max(a + n for a, n in zip(start, count, strict=True)) for start, count in self.runs if start]
        if not ends:
            return []
        length = max(ends)
        counts = [0] * length
        for bins in self.points:
            for b in bins:
                counts[b] += 1
        edges = [0] * (length + 1)
        for start, count in self.runs:
            for a, n in zip(start, count, strict=True):
                edges[a] += 1
                edges[a + n] -= 1
        running = 0
        for b in range(length):
            running += edges[b]
            counts[b] += running
        return counts


def _group_of(total: int, grouped: int, group_size: int, use_numpy: bool) -> Any:
    """NAT group of every client.

    Clients of one kind are numbered consecutively, so they are spread over the groups
    by a stride permutation (position = client * stride mod total, the stride coprime
    with total and near total / golden ratio): every group gets the fleet's mix.
    """
    stride = max(1, round(total * 0.6180339887))
    while math.gcd(stride, total) != 1:
        stride += 1
    first_single = grouped // group_size
    if use_numpy and np is not None:
        position = (np.arange(total, dtype=np.int64) * stride) % total
        return np.where(position < grouped, position // group_size, first_single + position - grouped)
    groups = []
    for client in range(total):
        slot = client * stride % total
        groups.append(slot // group_size if slot < grouped else first_single + slot - grouped)
    return groups


def _buckets(spec: ClientSpec, count: int, rng: random.Random) -> dict[tuple[int, float], int]:
    """How many clients of one mix entry run at each (poll, jitter level), drawn uniformly."""
    keys = [(poll, level) for poll in spec.polls() for level in _jitter_levels(spec)]
    tally = [0] * len(keys)
    draw, width = rng.random, len(keys)
    for _client in range(count):
        tally[int(draw() * width)] += 1
    return {key: n for key, n in zip(keys, tally, strict=True) if n}


def _chrony44_late(plan: ChronyPlan, u: float, fresh_at: float, rng: random.Random) -> tuple[float, float]:
    """chrony 4.4+ with stale DNS: a fresh uniform postponement after every attempt."""
    schedule = plan.schedule
    k = schedule.empty_index
    for _step in range(MAX_ATTEMPTS):
        if u + schedule.time(k) >= fresh_at:
            return u + schedule.time(k + 2), u + schedule.time(k + 1)
        delay = rng.random() * CHRONY_44_REPLACEMENT_POSTPONE_MAX_S
        k = max(k + 1, schedule.first_index_at_or_after(schedule.time(k) + delay))
    raise gave_up("the simulator")  # pragma: no cover


def _simulate_pure(
    mix: list[tuple[ClientSpec, float]],
    counts: list[int],
    group_of: Sequence[int],
    group_fresh: list[float],
    rng: random.Random,
    *,
    old_ke: OldKeCounter,
) -> tuple[list[int], list[float], list[float]]:
    kind_index: list[int] = []
    recovery: list[float] = []
    ke: list[float] = []
    latest_fresh = max(group_fresh)
    client = 0
    for index, ((spec, _share), count) in enumerate(zip(mix, counts, strict=True)):
        for (poll, jitter), n in sorted(_buckets(spec, count, rng).items()):
            plan = make_plan(spec, poll, latest=False, jitter=jitter)
            first = plan.first()
            # Every attempt up to the latest DNS update, for a bisection per client.
            attempts = []
            for attempt in plan.attempts():
                attempts.append(attempt)
                if attempt.at >= latest_fresh:
                    break
            moments = [attempt.at for attempt in attempts]
            bucket_u: list[float] = []
            for _client in range(n):
                u = (1.0 - rng.random()) * plan.first_interval
                fresh_at = group_fresh[group_of[client]]
                if u + first.at >= fresh_at:
                    rec, k = u + first.recovery, u + first.ke_at
                elif spec.client == "chrony-4.4+" and isinstance(plan, ChronyPlan):
                    rec, k = _chrony44_late(plan, u, fresh_at, rng)
                else:
                    attempt = attempts[bisect.bisect_left(moments, fresh_at - u)]
                    rec, k = u + attempt.recovery, u + attempt.ke_at
                kind_index.append(index)
                recovery.append(rec)
                ke.append(k)
                bucket_u.append(u)
                client += 1
            old_ke.add(index, plan, bucket_u, ke[len(ke) - n :])
    return kind_index, recovery, ke


def _simulate_numpy(
    mix: list[tuple[ClientSpec, float]],
    counts: list[int],
    group_of: Any,
    group_fresh: list[float],
    rng: random.Random,
    *,
    old_ke: OldKeCounter,
) -> tuple[Any, Any, Any]:
    if np is None:  # pragma: no cover - simulate_fleet checks this first
        raise RecoveryModelError("numpy is not installed")
    generator = np.random.default_rng(rng.randrange(2**63))
    fresh_all = np.asarray(group_fresh)[np.asarray(group_of, dtype=np.int64)]
    kind_parts, rec_parts, ke_parts = [], [], []
    start = 0
    for index, ((spec, _share), count) in enumerate(zip(mix, counts, strict=True)):
        polls, levels = spec.polls(), _jitter_levels(spec)
        poll_pick = generator.integers(0, len(polls), count)
        level_pick = generator.integers(0, len(levels), count)
        fresh = fresh_all[start : start + count]
        rec = np.empty(count)
        ke = np.empty(count)
        for p_i, poll in enumerate(polls):
            for l_i, jitter in enumerate(levels):
                members = np.nonzero((poll_pick == p_i) & (level_pick == l_i))[0]
                if not members.size:
                    continue
                plan = make_plan(spec, poll, latest=False, jitter=jitter)
                u = (1.0 - generator.random(members.size)) * plan.first_interval
                f = fresh[members]
                r = np.full(members.size, np.nan)
                k = np.full(members.size, np.nan)
                if spec.client == "chrony-4.4+" and isinstance(plan, ChronyPlan):
                    r[:], k[:] = _chrony44_numpy(plan, u, f, generator)
                else:
                    pending = np.ones(members.size, dtype=bool)
                    for attempt in plan.attempts():
                        hit = pending & (u + attempt.at >= f)
                        r[hit] = u[hit] + attempt.recovery
                        k[hit] = u[hit] + attempt.ke_at
                        pending &= ~hit
                        if not pending.any():
                            break
                rec[members] = r
                ke[members] = k
                old_ke.add(index, plan, u, k)
        kind_parts.append(np.full(count, index, dtype=np.int32))
        rec_parts.append(rec)
        ke_parts.append(ke)
        start += count
    return np.concatenate(kind_parts), np.concatenate(rec_parts), np.concatenate(ke_parts)


def _schedule_time_np(plan: ChronyPlan, index: Any) -> Any:
    """Vectorised ChronySchedule.time()."""
    transient = np.asarray(plan.schedule.transient)
    n = transient.size
    inside = np.minimum(index, n) - 1
    return np.where(index <= n, transient[inside], transient[-1] + (index - n) * plan.schedule.steady_interval)


def _schedule_index_np(plan: ChronyPlan, offset: Any) -> Any:
    """Vectorised ChronySchedule.first_index_at_or_after()."""
    transient = np.asarray(plan.schedule.transient)
    n = transient.size
    inside = np.searchsorted(transient, offset, side="left") + 1
    extra = np.ceil((offset - transient[-1]) / plan.schedule.steady_interval - 1e-12).astype(np.int64)
    return np.where(offset <= transient[-1], inside, n + np.maximum(extra, 0))


def _chrony44_numpy(plan: ChronyPlan, u: Any, fresh: Any, generator: Any) -> tuple[Any, Any]:
    """chrony 4.4+ with a fresh uniform postponement after every attempt, on arrays."""
    index = np.full(u.size, plan.schedule.empty_index, dtype=np.int64)
    pending = np.ones(u.size, dtype=bool)
    for _step in range(MAX_ATTEMPTS):
        at = _schedule_time_np(plan, index)
        pending &= u + at < fresh
        if not pending.any():
            break
        delay = generator.random(u.size) * CHRONY_44_REPLACEMENT_POSTPONE_MAX_S
        following = np.maximum(index + 1, _schedule_index_np(plan, at + delay))
        index = np.where(pending, following, index)
    else:  # pragma: no cover
        raise gave_up("the simulator")
    return u + _schedule_time_np(plan, index + 2), u + _schedule_time_np(plan, index + 1)
