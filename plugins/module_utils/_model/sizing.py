# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Server sizing: chrony's NTS-KE rate limit, helper processes and connection slots for a fleet.

``rate_limited_requests`` replays one address's NTS-KE requests through chrony's
token bucket; ``recommend_server_settings`` sizes ``ntsratelimit``,
``ntsprocesses`` and ``maxntsconnections`` for a fleet description
(docs/recovery-model.md, "Server sizing").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._model.clients import MAX_FLEET_CLIENTS, ClientSpec, parse_mix
from ansible_collections.ntsops.nts.plugins.module_utils._model.validate import RecoveryModelError, integer, seconds

# chrony clientlog.c: MIN/MAX_LIMIT_INTERVAL (-15 - TS_FRAC .. 12), MIN/MAX_LIMIT_BURST;
# conf.c defaults for ntsratelimit.
CHRONY_RATELIMIT_INTERVAL_RANGE = (-19, 12)
CHRONY_RATELIMIT_BURST_RANGE = (1, 255)
CHRONY_NTS_RATELIMIT_DEFAULT = {"interval": 6, "burst": 8, "leak": 2}
# chrony nts_ke_server.c SERVER_TIMEOUT: a server-side NTS-KE session lasts at most 2 s.
CHRONY_NTSKE_SERVER_TIMEOUT_S = 2.0
# chrony conf.c default maxntsconnections; ntsprocesses accepts 0..1000.
CHRONY_DEFAULT_MAXNTSCONNECTIONS = 100
CHRONY_MAX_NTSPROCESSES = 1000
# NTS-KE a chronyd helper process completes per second on one core (measured:
# ~0.5 ms CPU per NTS-KE, 1000-1300/s; docs/recovery-model.md); the lower figure keeps headroom.
KE_PER_SECOND_PER_PROCESS = 1000.0
# The bucket of a NAT group must be full again this long after a herd, so a second
# change (or a planned move after an unplanned one) within the hour is covered too.
DEFAULT_REFILL_HORIZON_S = 3600.0
# Margin (standard deviations) on binomial/Poisson arrival counts.
ARRIVAL_SIGMAS = 4.0
# Below interval -4 (2^-TS_FRAC s) chrony switches to coarse limiting with other
# semantics (clientlog.c set_bucket_params), so the recommendation stays above it.
RECOMMENDED_MIN_INTERVAL = -4


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


def _herd_window(spec: ClientSpec) -> float:
    """Shortest spread of a group's NTS-KE moments: the client's poll interval at the change."""
    return 2.0 ** spec.poll_range()[0]


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
    clients = integer(fleet.get("expected_clients"), "expected_clients", (1, MAX_FLEET_CLIENTS))
    group = integer(fleet.get("largest_nat_group", 1), "largest_nat_group", (1, clients))
    mix = parse_mix(fleet.get("client_mix", [{"client": "chrony-4.3"}]))
    horizon = seconds(fleet.get("refill_horizon_s", DEFAULT_REFILL_HORIZON_S), "refill_horizon_s", math.inf)
    if horizon <= 0:
        raise RecoveryModelError("refill_horizon_s must be > 0")
    cores = fleet.get("server_cores")
    if cores is not None:
        cores = integer(cores, "server_cores", (1, CHRONY_MAX_NTSPROCESSES))

    window = min(_herd_window(spec) for spec, share in mix if share > 0 or len(mix) == 1)
    burst, interval, how = _needed_burst_and_interval(group, window, horizon)

    # Fleet-wide peak: each kind re-keys spread over its own poll interval; in the worst
    # case those spreads overlap, so the rates add. Poisson margin on a 1 s count.
    # A ramping kind is spread evenly over its polls, as in the simulator.
    rate = 0.0
    for spec, share in mix:
        polls = spec.polls()
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
