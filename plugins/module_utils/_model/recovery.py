# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Recovery model: how long NTS clients take to follow a server's address change.

The rules come from the clients' source code and from measurements recorded in
docs/recovery-model.md (which names the file and function behind every rule).
Times are seconds after the change: the moment the old address stops answering.
schedules.py gives each client's re-resolution attempts (``u``, ``S_k`` and
*attempt* are defined there); this module bounds recovery over every poll phase
and jitter, given ``F``: the moment from which the client's resolver returns the
new address, between ``update_latency`` (nothing cached) and
``update_latency + ttl`` (the resolver cached the old record just before the
update).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._model.clients import (
    CHRONY_KE_FACTOR,
    CHRONY_KE_MAX_EXP,
    KE_FAILURES,
    NTPDRS_NETWORK_WAIT_S,
    NTPSEC_KE_RETRY_S,
    RFC_KE_FIRST_RETRY_S,
    RFC_KE_MAX_RETRY_S,
    RFC_KE_RETRY_FACTOR,
    ClientSpec,
    behaviour_of,
    client_list,
    parse_client,
)
from ansible_collections.ntsops.nts.plugins.module_utils._model.schedules import (
    Plan,
    chrony_holdoff_end,
    gave_up,
    make_plan,
)
from ansible_collections.ntsops.nts.plugins.module_utils._model.selectable import selectable_offset
from ansible_collections.ntsops.nts.plugins.module_utils._model.validate import (
    RecoveryModelError,
    choice,
    integer,
    seconds,
)


def _last_index(predicate: Callable[[int], bool]) -> int:
    """Largest n >= 1 with predicate(n), for a predicate true up to some n and false after
    (0 when predicate(1) is false). Doubling, then bisection: no long loops."""
    if not predicate(1):
        return 0
    high = 2
    while predicate(high):
        high *= 2
        if high > 2**50:
            raise gave_up()
    low = high // 2  # predicate(low) holds, predicate(high) does not
    while high - low > 1:
        middle = (low + high) // 2
        if predicate(middle):
            low = middle
        else:
            high = middle
    return low


def recovery_bounds(early: Plan, late: Plan, fresh_earliest: float, fresh_latest: float) -> tuple[float, float]:
    """Earliest and latest recovery, DNS fresh from ``fresh_earliest`` / ``fresh_latest``.

    The n-th re-resolution falls, over every poll phase and every poll jitter, within
    [lo_n, hi_n] after the change: lo_1 is the earliest plan's first attempt, hi_1 the
    latest plan's (its poll phase u = P0), and each later one is at least the earliest
    plan's gap and at most the latest plan's gap after the previous one.

    Earliest: the first window that can reach F holds the first fresh attempt, at the
    earliest at max(F, lo). Latest: either the first attempt is already fresh (at most
    at hi_1), or the last stale attempt comes before F and the next one at most one
    longest gap later; that bound grows with n, so the last window starting before F
    gives it.
    """
    first_early, first_late = early.first(), late.first()
    lo_1, hi_1 = first_early.at, late.first_interval + first_late.at

    def lo(n: int) -> float:
        return lo_1 + early.gap_sum(n)

    def hi(n: int) -> float:
        return hi_1 + late.gap_sum(n)

    reach = _last_index(lambda n: hi(n) < fresh_earliest) + 1
    offset = first_early.recovery - first_early.at if reach == 1 else early.later_offset()
    earliest = max(fresh_earliest, lo(reach)) + offset

    latest = 0.0
    if hi_1 >= fresh_latest:
        latest = hi_1 + first_late.recovery - first_late.at
    last_stale = _last_index(lambda n: lo(n) < fresh_latest)
    if last_stale:
        latest = max(latest, min(hi(last_stale), fresh_latest) + late.gap(last_stale) + late.later_offset())
    return earliest, latest


def ke_retry_schedule(client: str, failure: str, attempts: int) -> list[float]:
    """Seconds the client waits after each of ``attempts`` failed NTS-KE attempts.

    chrony: nts_ntp_client.c update_next_nke_attempt(), 2^min(factor + n - 1, 19) with
    factor 4 when the connection or the TLS handshake was cut (nts_ke_session.c keeps
    NKE_RETRY_FACTOR2_CONNECT) and 10 once a handshake failed on its merits or
    completed (NKE_RETRY_FACTOR2_TLS). The retry happens at the first poll after the
    wait. NTPsec 1.2: dns_take_status() waits 2^12 s after every failed lookup or
    NTS-KE, whatever the failure. ntpd-rs 1.4: spawn/mod.rs spawner_task() retries
    NETWORK_WAIT_PERIOD (1 s) after each failed attempt returned, whatever the failure.
    RFC 8915: 10 s, times 1.5 each time, at most 5 days.
    """
    behaviour_of(client)
    choice(failure, "failure", KE_FAILURES)
    count = integer(attempts, "attempts", (1, 1000))
    if client.startswith("chrony"):
        factor = CHRONY_KE_FACTOR[failure]
        return [2.0 ** min(factor + n - 1, CHRONY_KE_MAX_EXP) for n in range(1, count + 1)]
    if client == "ntpsec-1.2":
        return [NTPSEC_KE_RETRY_S] * count
    if client == "ntpd-rs-1.4":
        return [NTPDRS_NETWORK_WAIT_S] * count
    schedule, wait = [], RFC_KE_FIRST_RETRY_S
    for _client in range(count):
        schedule.append(wait)
        wait = min(wait * RFC_KE_RETRY_FACTOR, RFC_KE_MAX_RETRY_S)
    return schedule


def _second_attempt_gap(plan: Plan) -> float:
    attempts = plan.attempts()
    first = next(attempts)
    return next(attempts).at - first.at


def duration(value: float) -> str:
    """Seconds as the explanations print them, with hours or minutes when long."""
    if value >= 5400:
        return f"{value:.0f} s ({value / 3600:.1f} h)"
    if value >= 120:
        return f"{value:.0f} s ({value / 60:.0f} min)"
    return f"{value:.1f} s"


def recovery_time(
    client: Mapping[str, Any] | str, ttl: float, update_latency: float, previous_change_s: float | None = None
) -> dict[str, Any]:
    """When the client re-resolves the name and gets back to authenticated time.

    ``previous_change_s``: seconds since the previous address change of the same name,
    when there was one recently. The client's last replacement then lies between its
    earliest lookup and its latest recovery after that change (same TTL and update
    latency), which is the chrony hold-off input ``since_last_replacement_s``; a change
    before the client can have followed the previous one is refused, because no model
    says when a client still looking for the previous address comes back.

    Returns a dict with reresolve_earliest_s/latest_s (first re-resolution after the
    change), recovery_earliest_s/latest_s (back on authenticated time at the new
    address, given this TTL and update latency), minimum_recovery_earliest_s/latest_s
    (the same with DNS already fresh), late_dns_extra_s, dns_fresh_earliest_s/latest_s,
    budget_s (the latest moment DNS may become fresh), meets_budget,
    first_reresolution_answer ("new", "old" or "either": what the first re-resolution
    returns), next_reresolution_after_stale_s ([shortest, longest] wait from a stale
    re-resolution to the next), ke_retry_to_old_s (the client's NTS-KE retry waits
    towards the old address) and a one-sentence explanation. Next to the first
    authenticated response it gives when the source is selectable again
    (selectable_earliest_s/latest_s, minimum_selectable_earliest_s/latest_s with DNS
    fresh, selectable_after_recovery_s; None for a client kind without that rule).
    """
    spec = parse_client(client)
    ttl_s = seconds(ttl, "ttl")
    latency_s = seconds(update_latency, "update_latency")
    if previous_change_s is not None:
        spec = _after_previous_change(spec, seconds(previous_change_s, "previous_change_s"), ttl_s, latency_s)
    low_poll, high_poll = spec.poll_range()
    fresh_earliest = latency_s
    fresh_latest = latency_s + ttl_s
    # With stale DNS a lower poll can end later (its retries fall differently), so
    # every poll the client may be running at the change is an extreme candidate.
    early_plans = [make_plan(spec, poll, latest=False) for poll in spec.polls()]
    late_plans = [make_plan(spec, poll, latest=True) for poll in spec.polls()]
    reresolve_earliest = min(plan.first().at for plan in early_plans)
    reresolve_latest = max(plan.first_interval + plan.first().at for plan in late_plans)
    minimum_earliest = min(plan.first().recovery for plan in early_plans)
    minimum_latest = max(plan.first_interval + plan.first().recovery for plan in late_plans)
    bounds = [
        recovery_bounds(early, late, fresh_earliest, fresh_latest)
        for early, late in zip(early_plans, late_plans, strict=True)
    ]
    recovery_earliest = min(low for low, _high in bounds)
    recovery_latest = max(high for _low, high in bounds)
    meets = fresh_latest <= reresolve_earliest
    if meets:
        first_answer = "new"
    elif fresh_earliest > reresolve_latest:
        first_answer = "old"
    else:
        first_answer = "either"
    # What a stale answer at a re-resolution costs: the wait until the next one.
    gaps_early = [_second_attempt_gap(plan) for plan in early_plans]
    gaps_late = [_second_attempt_gap(plan) for plan in late_plans]
    late_extra = max(0.0, recovery_latest - minimum_latest)

    poll_text = f"poll 2^{high_poll} s" if low_poll == high_poll else f"poll 2^{low_poll}..2^{high_poll} s"
    if meets:
        explanation = (
            f"{spec.behaviour.description} at {poll_text} looks the name up again "
            f"{duration(reresolve_earliest)} to {duration(reresolve_latest)} after the change, DNS is fresh by "
            f"{duration(fresh_latest)} (update latency + TTL), so it is back on authenticated time "
            f"{duration(recovery_earliest)} to {duration(recovery_latest)} after the change."
        )
    else:
        explanation = (
            f"{spec.behaviour.description} at {poll_text} may look the name up again as early as "
            f"{duration(reresolve_earliest)} after the change, before DNS is surely fresh "
            f"({duration(fresh_latest)} = update latency + TTL), so recovery can stretch from "
            f"{duration(minimum_latest)} to {duration(recovery_latest)}; keep update latency + TTL <= "
            f"{duration(reresolve_earliest)}."
        )
    explanation += _history_text(spec)
    offset = selectable_offset(spec)
    selectable: dict[str, Any] = {
        "selectable_after_recovery_s": None if offset is None else [offset[0], offset[1]],
        "selectable_earliest_s": None if offset is None else recovery_earliest + offset[0],
        "selectable_latest_s": None if offset is None else recovery_latest + offset[1],
        "minimum_selectable_earliest_s": None if offset is None else minimum_earliest + offset[0],
        "minimum_selectable_latest_s": None if offset is None else minimum_latest + offset[1],
    }
    if offset is not None and offset[1] > 0:
        explanation += (
            f" Its source is selectable again {duration(offset[0])} to {duration(offset[1])} after that "
            f"first authenticated response."
        )
    return {
        "client": spec.client,
        "minpoll": spec.minpoll,
        "maxpoll": spec.maxpoll,
        "poll_state": spec.poll_state,
        "old_address": spec.old_address,
        "cookies": spec.cookies,
        "since_last_replacement_s": None
        if spec.since_last_replacement_s is None
        else list(spec.since_last_replacement_s),
        "since_start_s": spec.since_start_s,
        "ttl": ttl_s,
        "update_latency": latency_s,
        "reresolve_earliest_s": reresolve_earliest,
        "reresolve_latest_s": reresolve_latest,
        "dns_fresh_earliest_s": fresh_earliest,
        "dns_fresh_latest_s": fresh_latest,
        "budget_s": reresolve_earliest,
        "meets_budget": meets,
        "minimum_recovery_earliest_s": minimum_earliest,
        "minimum_recovery_latest_s": minimum_latest,
        "recovery_earliest_s": recovery_earliest,
        "recovery_latest_s": recovery_latest,
        "late_dns_extra_s": late_extra,
        "first_reresolution_answer": first_answer,
        "next_reresolution_after_stale_s": [min(gaps_early), max(gaps_late)],
        "ke_retry_to_old_s": ke_retry_schedule(spec.client, spec.ke_failure_at_old(), 4),
        **selectable,
        "explanation": explanation,
    }


def _after_previous_change(spec: ClientSpec, previous_change: float, ttl: float, latency: float) -> ClientSpec:
    """``spec`` with the hold-off the previous change of the name left in it."""
    if spec.since_last_replacement_s is not None:
        raise RecoveryModelError(
            "give either previous_change_s or the client's since_last_replacement_s, not both: they describe the "
            "same replacement"
        )
    before = recovery_time(asdict(spec), ttl, latency)
    followed = before["recovery_latest_s"]
    if previous_change < followed:
        raise RecoveryModelError(
            f"{spec.client} may still be following the previous address change, {previous_change:.0f} s ago: the "
            f"model has it back on authenticated time up to {followed:.0f} s after that change. Wait "
            f"{math.ceil(followed - previous_change)} s more before the next change; until then no model says "
            f"when such a client comes back"
        )
    if not spec.client.startswith("chrony"):
        # Only chrony holds replacements off (docs/recovery-model.md): for the others the
        # previous change no longer matters once followed.
        return spec
    window = (previous_change - followed, previous_change - before["reresolve_earliest_s"])
    return replace(spec, since_last_replacement_s=window)


def _history_text(spec: ClientSpec) -> str:
    """What the client's recent history adds to the explanation (nothing without one)."""
    text = ""
    holdoff = chrony_holdoff_end(spec, latest=True)
    if holdoff > 0:
        text += (
            f" Its previous source replacement holds the first lookup off for up to {duration(holdoff)} after the "
            f"change (chrony keeps one replacement hold-off per process, ntp_sources.c NSR_HandleBadSource())."
        )
    if spec.since_start_s is not None:
        text += (
            f" Started {duration(spec.since_start_s)} before the change, it polls at 2^{spec.poll_range()[0]}.."
            f"2^{spec.poll_range()[1]} s, a start-up burst included while it may still run."
        )
    return text


def reresolve_budget(client: Mapping[str, Any] | str) -> float:
    """The earliest moment after the change at which the client may look the name up again."""
    spec = parse_client(client)
    return min(make_plan(spec, poll, latest=False).first().at for poll in spec.polls())


def max_ttl(clients: Sequence[Mapping[str, Any]] | Mapping[str, Any], update_latency: float) -> int:
    """The largest TTL (whole seconds) that keeps every listed client at its minimum recovery.

    A resolver that cached the old record just before the update keeps it for the
    whole TTL, so the client sees the new address only ``update_latency + ttl`` after
    the change; that must not be later than the client's earliest re-resolution.
    """
    clients = client_list(clients, "clients")
    latency_s = seconds(update_latency, "update_latency")
    budgets = [(reresolve_budget(client), client) for client in clients]
    budget, tightest = min(budgets, key=lambda item: item[0])
    ttl = math.floor(budget - latency_s)
    # The same comparison recovery_time() makes (update_latency + ttl <= budget), in
    # floating point: a latency far below one second can round either way.
    while latency_s + (ttl + 1) <= budget:
        ttl += 1
    while ttl >= 1 and latency_s + ttl > budget:
        ttl -= 1
    if ttl < 1:
        raise RecoveryModelError(
            f"no TTL can keep recovery at its minimum: update_latency {latency_s:g} s is already at or past the "
            f"earliest re-resolution of {tightest!r}, {budget:g} s after the change; shorten the update latency "
            f"or raise that client's poll"
        )
    return ttl
