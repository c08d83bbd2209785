# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet simulator and server sizing built on the recovery model.

``simulate_fleet`` draws N clients from a client mix (implementation, poll, poll
phase, poll-timer jitter, the DNS cache state of the resolver they share with their
NAT group) and computes for each, with the same attempt plans as the recovery
model, when it runs NTS-KE to the new address and when it is back on authenticated
time. ``recommend_server_settings`` sizes chrony's NTS-KE rate limit, helper
processes and connection slots for a fleet description.

numpy is optional: when it is importable (matplotlib brings it) the simulator works
on arrays; otherwise a pure-Python path gives the same results, only slower.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._model.recovery import (
    BEHAVIOURS,
    CHRONY_44_REPLACEMENT_POSTPONE_MAX_S,
    ChronyPlan,
    ClientSpec,
    RecoveryModelError,
    int_value,
    make_plan,
    parse_client,
)

try:
    import numpy as np
except ImportError:  # the simulator has a pure-Python path
    np = None  # type: ignore[assignment]

# chrony clientlog.c: MIN/MAX_LIMIT_INTERVAL (-15 - TS_FRAC .. 12), MIN/MAX_LIMIT_BURST,
# MIN/MAX_LEAK_RATE; conf.c defaults for ntsratelimit.
CHRONY_RATELIMIT_INTERVAL_RANGE = (-19, 12)
CHRONY_RATELIMIT_BURST_RANGE = (1, 255)
CHRONY_RATELIMIT_LEAK_RANGE = (1, 4)
CHRONY_NTS_RATELIMIT_DEFAULT = {"interval": 6, "burst": 8, "leak": 2}
# chrony nts_ke_server.c SERVER_TIMEOUT: a server-side NTS-KE session lasts at most 2 s.
CHRONY_NTSKE_SERVER_TIMEOUT_S = 2.0
# chrony conf.c default maxntsconnections; ntsprocesses accepts 0..1000.
CHRONY_DEFAULT_MAXNTSCONNECTIONS = 100
CHRONY_MAX_NTSPROCESSES = 1000
# NTS-KE a chronyd helper process completes per second on one core (chronyd 4.3 on
# loopback: ~0.5 ms CPU per NTS-KE, 1000-1300/s; benchmarks/herd_capacity.py measures
# it); the lower figure keeps headroom.
KE_PER_SECOND_PER_PROCESS = 1000.0
# The bucket of a NAT group must be full again this long after a herd, so a second
# change (or a planned move after an unplanned one) within the hour is covered too.
DEFAULT_REFILL_HORIZON_S = 3600.0
# Margin (standard deviations) on binomial/Poisson arrival counts.
ARRIVAL_SIGMAS = 4.0

MAX_SIMULATED_CLIENTS = 20_000_000
_JITTER_LEVELS = 8


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

    @property
    def clients(self) -> int:
        return len(self.recovery_s)


def _mix(client_mix: Any) -> list[tuple[ClientSpec, float]]:
    if isinstance(client_mix, Mapping | str):
        client_mix = [client_mix]
    if not isinstance(client_mix, Sequence) or not client_mix:
        raise RecoveryModelError(f"client_mix must be a non-empty list of client mappings, got {client_mix!r}")
    specs, shares = [], []
    for entry in client_mix:
        specs.append(parse_client(entry))
        share = entry.get("share") if isinstance(entry, Mapping) else None
        if share is not None and (isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1):
            raise RecoveryModelError(f"share must be a fraction between 0 and 1, got {share!r}")
        shares.append(share)
    given = sum(share for share in shares if share is not None)
    missing = [i for i, share in enumerate(shares) if share is None]
    if given > 1.0 + 1e-9 or (not missing and abs(given - 1.0) > 1e-6):
        raise RecoveryModelError(f"the shares of client_mix must add up to 1, got {given:g}")
    rest = (1.0 - given) / len(missing) if missing else 0.0
    return [(spec, rest if share is None else float(share)) for spec, share in zip(specs, shares, strict=True)]


def _counts(total: int, shares: Sequence[float]) -> list[int]:
    """Split ``total`` by ``shares`` with the largest-remainder method (exact sum)."""
    raw = [total * share for share in shares]
    counts = [math.floor(value) for value in raw]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _positive_int(value: Any, what: str, upper: int) -> int:
    # Ansible may hand over numbers from extra vars as strings: accept "40" like 40.
    number = int_value(value, what) if value is not None else None
    if number is None or not 1 <= number <= upper:
        raise RecoveryModelError(f"{what} must be an integer between 1 and {upper}, got {value!r}")
    return number


def _fraction(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise RecoveryModelError(f"{what} must be a fraction between 0 and 1, got {value!r}")
    return float(value)


def _seconds(value: Any, what: str) -> float:
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number < 0:
        raise RecoveryModelError(f"{what} must be a number of seconds >= 0, got {value!r}")
    return number


def _poll_choices(spec: ClientSpec) -> list[int]:
    low, high = spec.poll_range()
    return list(range(low, high + 1))


def _jitter_levels(spec: ClientSpec) -> list[float]:
    top = spec.behaviour.poll_jitter
    if top == 0.0:
        return [0.0]
    return [top * level / (_JITTER_LEVELS - 1) for level in range(_JITTER_LEVELS)]


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
    mix = _mix(client_mix)
    total = _positive_int(clients, "clients", MAX_SIMULATED_CLIENTS)
    group_size = _positive_int(nat_group_size, "nat_group_size", total)
    fraction = _fraction(nat_fraction, "nat_fraction")
    ttl_s = _seconds(ttl, "ttl")
    latency_s = _seconds(update_latency, "update_latency")
    if use_numpy is None:
        use_numpy = np is not None
    if use_numpy and np is None:
        raise RecoveryModelError("use_numpy was requested but numpy is not installed")
    # A seeded, reproducible simulation, not a secret: the stdlib generator is right here.
    rng = random.Random(seed)  # noqa: S311
    counts = _counts(total, [share for _spec, share in mix])
    grouped = min(total, round(total * fraction) // group_size * group_size)
    n_groups = grouped // group_size + (total - grouped)
    group_fresh = [latency_s + rng.random() * ttl_s for _group in range(n_groups)]
    group_of = _group_of(total, grouped, group_size, bool(use_numpy))
    group_sizes: dict[int, int] = {}
    if group_size > 1:
        group_sizes = {g: group_size for g in range(grouped // group_size)}
    runner = _simulate_numpy if use_numpy else _simulate_pure
    kind_index, recovery, ke = runner(mix, counts, group_of, group_fresh, rng)
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
            "nat_fraction": fraction,
            "seed": seed,
            "numpy": bool(use_numpy),
        },
    )


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
    keys = [(poll, level) for poll in _poll_choices(spec) for level in _jitter_levels(spec)]
    tally = [0] * len(keys)
    draw, width = rng.random, len(keys)
    for _client in range(count):
        tally[int(draw() * width)] += 1
    return {key: n for key, n in zip(keys, tally, strict=True) if n}


def _chrony44_late(plan: ChronyPlan, u: float, fresh_at: float, rng: random.Random) -> tuple[float, float]:
    """chrony 4.4+ with stale DNS: a fresh uniform postponement after every attempt."""
    schedule = plan.schedule
    k = schedule.empty_index
    for _step in range(100_000):
        if u + schedule.time(k) >= fresh_at:
            return u + schedule.time(k + 2), u + schedule.time(k + 1)
        delay = rng.random() * CHRONY_44_REPLACEMENT_POSTPONE_MAX_S
        k = max(k + 1, schedule.first_index_at_or_after(schedule.time(k) + delay))
    raise RecoveryModelError("the simulator gave up after too many re-resolution attempts")  # pragma: no cover


def _simulate_pure(
    mix: list[tuple[ClientSpec, float]],
    counts: list[int],
    group_of: Sequence[int],
    group_fresh: list[float],
    rng: random.Random,
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
                client += 1
    return kind_index, recovery, ke


def _simulate_numpy(
    mix: list[tuple[ClientSpec, float]],
    counts: list[int],
    group_of: Any,
    group_fresh: list[float],
    rng: random.Random,
) -> tuple[Any, Any, Any]:
    if np is None:  # pragma: no cover - simulate_fleet checks this first
        raise RecoveryModelError("numpy is not installed")
    generator = np.random.default_rng(rng.randrange(2**63))
    fresh_all = np.asarray(group_fresh)[np.asarray(group_of, dtype=np.int64)]
    kind_parts, rec_parts, ke_parts = [], [], []
    start = 0
    for index, ((spec, _share), count) in enumerate(zip(mix, counts, strict=True)):
        polls, levels = _poll_choices(spec), _jitter_levels(spec)
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
    for _step in range(100_000):
        at = _schedule_time_np(plan, index)
        pending &= u + at < fresh
        if not pending.any():
            break
        delay = generator.random(u.size) * CHRONY_44_REPLACEMENT_POSTPONE_MAX_S
        following = np.maximum(index + 1, _schedule_index_np(plan, at + delay))
        index = np.where(pending, following, index)
    else:  # pragma: no cover
        raise RecoveryModelError("the simulator gave up after too many re-resolution attempts")
    return u + _schedule_time_np(plan, index + 2), u + _schedule_time_np(plan, index + 1)


# ---------------------------------------------------------------------------
# Summaries


def kind_values(result: SimulationResult, index: int, sort: bool = False) -> Sequence[float]:
    """Recovery times of the clients of mix entry ``index`` (sorted when asked); an array
    on the numpy path."""
    if np is not None and not isinstance(result.recovery_s, list):
        selected = np.asarray(result.recovery_s)[np.asarray(result.kind_index) == index]
        return np.sort(selected) if sort else selected  # type: ignore[return-value]
    values = [float(v) for v, k in zip(result.recovery_s, result.kind_index, strict=True) if k == index]
    return sorted(values) if sort else values


def latest_ke(result: SimulationResult) -> float:
    """The last NTS-KE moment of the simulation."""
    if np is not None and not isinstance(result.ke_s, list):
        return float(np.max(np.asarray(result.ke_s)))
    return float(max(result.ke_s))


def percentile(values: Sequence[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` lie (nearest rank)."""
    if np is not None and not isinstance(values, list):
        return float(np.quantile(np.asarray(values), fraction, method="inverted_cdf"))
    ordered = sorted(values)
    if not ordered:
        raise RecoveryModelError("no values to summarise")
    rank = max(1, math.ceil(fraction * len(ordered)))
    return float(ordered[rank - 1])


def arrival_histogram(times: Sequence[float], bin_s: float) -> list[int]:
    """NTS-KE arrivals per ``bin_s`` seconds from the change; sums to len(times)."""
    if bin_s <= 0:
        raise RecoveryModelError(f"bin width must be > 0, got {bin_s!r}")
    if np is not None and not isinstance(times, list):
        array = np.asarray(times)
        bins = np.floor(array / bin_s).astype(np.int64)
        return [int(x) for x in np.bincount(bins, minlength=int(bins.max()) + 1)]
    counts: list[int] = [0] * (int(max(times) // bin_s) + 1)
    for value in times:
        counts[int(value // bin_s)] += 1
    return counts


def group_arrivals(result: SimulationResult, group: int) -> list[float]:
    """Sorted NTS-KE moments of one NAT group."""
    return sorted(float(result.ke_s[i]) for i in range(result.clients) if result.group[i] == group)


def largest_group_arrivals(result: SimulationResult, limit_groups: int = 64) -> list[list[float]]:
    """Sorted NTS-KE moments of up to ``limit_groups`` NAT groups (all the same size)."""
    if not result.group_sizes:
        return []
    wanted = set(list(result.group_sizes)[:limit_groups])
    by_group: dict[int, list[float]] = {g: [] for g in wanted}
    if np is not None and not isinstance(result.group, list):
        groups = np.asarray(result.group)
        ke = np.asarray(result.ke_s)
        mask = np.isin(groups, list(wanted))
        for g, t in zip(groups[mask].tolist(), ke[mask].tolist(), strict=True):
            by_group[g].append(t)
    else:
        for g, t in zip(result.group, result.ke_s, strict=True):
            if g in by_group:
                by_group[g].append(float(t))
    return [sorted(times) for times in by_group.values()]


def rate_limited_requests(arrivals: Sequence[float], interval: int, burst: int) -> int:
    """How many of one address's NTS-KE requests find chrony's bucket empty.

    clientlog.c: each address has a token bucket holding ``burst`` requests that
    refills by one request per 2^interval s (CLG_LogServiceAccess); a request that
    finds it empty is dropped unless the random leak lets it through
    (CLG_LimitServiceRate). The bucket starts full. The count is of requests at risk,
    before the leak, so it is an upper bound on drops.
    """
    refill = 2.0**interval
    tokens, last, limited = float(burst), None, 0
    for moment in arrivals:
        if last is not None:
            tokens = min(float(burst), tokens + (moment - last) / refill)
        last = moment
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            limited += 1
            tokens = 0.0
    return limited


# ---------------------------------------------------------------------------
# Server sizing


def _herd_window(spec: ClientSpec) -> float:
    """Shortest spread of a group's NTS-KE moments: the client's poll interval at the change."""
    return 2.0 ** spec.poll_range()[0]


# Below interval -4 (2^-TS_FRAC s) chrony switches to coarse limiting with other
# semantics (clientlog.c set_bucket_params), so the recommendation stays above it.
RECOMMENDED_MIN_INTERVAL = -4


def _needed_burst_and_interval(group: int, window: float, horizon: float) -> tuple[int, int, str]:
    low, high = RECOMMENDED_MIN_INTERVAL, CHRONY_RATELIMIT_INTERVAL_RANGE[1]
    # One NTS-KE per client for the herd, plus an eighth for clients of the group that
    # re-key for other reasons in the same hour (restart without ntsdumpdir, ntsrefresh).
    need = group + math.ceil(group / 8)
    burst_cap = CHRONY_RATELIMIT_BURST_RANGE[1]
    if need <= burst_cap:
        burst = max(need, CHRONY_NTS_RATELIMIT_DEFAULT["burst"])
        for interval in range(high, low - 1, -1):
            if burst * 2.0**interval <= horizon:
                return burst, interval, "burst covers the whole group even if it re-keys at once"
        return burst, low, "burst covers the whole group"
    # More clients than the largest burst: the bucket must refill while the group's
    # NTS-KE requests spread over one poll interval (phases uniform, binomial counts).
    burst = burst_cap
    for interval in range(high, low - 1, -1):
        refill = 2.0**interval
        ok = True
        for step in range(1, 257):
            t = window * step / 256
            p = t / window
            expected = need * p
            spread = ARRIVAL_SIGMAS * math.sqrt(need * p * (1 - p))
            if burst + t / refill < expected + spread:
                ok = False
                break
        if ok and burst * refill <= horizon:
            return burst, interval, "burst plus refill covers the group's re-keying spread over one poll"
    raise RecoveryModelError(
        f"no chrony ntsratelimit can admit a NAT group of {group} clients re-keying within {window:g} s"
    )


def recommend_server_settings(fleet: Mapping[str, Any]) -> dict[str, Any]:
    """chrony NTS-KE server settings for a fleet description.

    fleet: expected_clients (int), largest_nat_group (int), client_mix (list of
    client mappings with optional ``share``); optional server_cores (int) and
    refill_horizon_s (seconds the bucket of an address may take to refill, 3600).
    """
    if not isinstance(fleet, Mapping):
        raise RecoveryModelError(f"fleet must be a mapping, got {fleet!r}")
    unknown = sorted(
        set(fleet) - {"expected_clients", "largest_nat_group", "client_mix", "server_cores", "refill_horizon_s"}
    )
    if unknown:
        raise RecoveryModelError(f"unknown fleet key(s) {unknown!r}")
    clients = _positive_int(fleet.get("expected_clients"), "expected_clients", MAX_SIMULATED_CLIENTS * 50)
    group = _positive_int(fleet.get("largest_nat_group", 1), "largest_nat_group", clients)
    mix = _mix(fleet.get("client_mix", [{"client": "chrony-4.3"}]))
    horizon = _seconds(fleet.get("refill_horizon_s", DEFAULT_REFILL_HORIZON_S), "refill_horizon_s")
    if horizon <= 0:
        raise RecoveryModelError("refill_horizon_s must be > 0")
    cores = fleet.get("server_cores")
    if cores is not None:
        cores = _positive_int(cores, "server_cores", CHRONY_MAX_NTSPROCESSES)

    window = min(_herd_window(spec) for spec, share in mix if share > 0 or len(mix) == 1)
    burst, interval, how = _needed_burst_and_interval(group, window, horizon)

    # Fleet-wide peak: each kind re-keys spread over its own poll interval; in the worst
    # case those spreads overlap, so the rates add. Poisson margin on a 1 s count.
    # A ramping kind is spread evenly over its polls, as in the simulator.
    rate = 0.0
    for spec, share in mix:
        polls = _poll_choices(spec)
        rate += sum(clients * share / len(polls) / 2.0**poll for poll in polls)
    peak = rate + ARRIVAL_SIGMAS * math.sqrt(rate)
    processes = max(1, math.ceil(peak / KE_PER_SECOND_PER_PROCESS))
    limited_by_cores = cores is not None and processes > cores
    if cores is not None:
        processes = min(processes, cores)
    processes = min(processes, CHRONY_MAX_NTSPROCESSES)
    connections = max(CHRONY_DEFAULT_MAXNTSCONNECTIONS, math.ceil(peak / processes * CHRONY_NTSKE_SERVER_TIMEOUT_S))
    leak = CHRONY_NTS_RATELIMIT_DEFAULT["leak"]
    explanation = (
        f"A NAT group of {group} re-keys within {window:g} s after a change; {how} "
        f"(burst {burst}, one more every 2^{interval} = {2.0**interval:g} s, full again within "
        f"{burst * 2.0**interval:g} s), so a single abusive address gets {burst} NTS-KE at once and then one per "
        f"{2.0**interval:g} s plus 1/{2**leak} of the rest (chrony's leak {leak}). The fleet of {clients} peaks at "
        f"about {peak:.0f} NTS-KE/s, {processes} helper process(es) at {KE_PER_SECOND_PER_PROCESS:g}/s each"
        + (
            " (fewer than needed: the server has too few cores, late clients retry at their next poll)"
            if limited_by_cores
            else ""
        )
        + f", and {connections} connections per process hold the sessions of the {CHRONY_NTSKE_SERVER_TIMEOUT_S:g} s "
        "server timeout."
    )
    return {
        "ntsratelimit_interval": interval,
        "ntsratelimit_burst": burst,
        "ntsratelimit_leak": leak,
        "ntsprocesses": processes,
        "maxntsconnections": connections,
        "peak_ke_per_second": round(peak, 1),
        "explanation": explanation,
    }


def known_clients() -> list[str]:
    """Client ids the simulator accepts."""
    return list(BEHAVIOURS)
