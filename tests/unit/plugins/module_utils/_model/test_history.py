"""The model's per-process history inputs: chrony's replacement hold-off and start-up burst.

Each bound is checked by hand and against a reference walk of chrony's own rules
(written here from ntp_core.c transmit_timeout()/adjust_poll()/get_transmit_delay() and
ntp_sources.c NSR_HandleBadSource(), independently of schedules.py), over random poll
phases, jitters and histories.
"""

from __future__ import annotations

import random

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._model.clients import parse_client, startup_poll_cap
from ansible_collections.ntsops.nts.plugins.module_utils._model.recovery import max_ttl, recovery_time
from ansible_collections.ntsops.nts.plugins.module_utils._model.simulate import simulate_fleet
from ansible_collections.ntsops.nts.plugins.module_utils._model.validate import RecoveryModelError


def reference_chrony(
    *,
    poll: int,
    maxpoll: int,
    u: float,
    jitters: list[float],
    holdoff_end: float,
    burst: int,
    sync_peer: bool,
    score: float,
) -> tuple[float, float]:
    """(re-resolution, first authenticated response) of one chrony client, DNS fresh at once."""
    t, exponent, misses, k = u, poll, 0, 1
    lookup = None
    intervals: list[float] = []
    while True:
        # A poll with no cookie left (8, one per request) fails NAU_PrepareRequestAuth():
        # a miss with adjust_poll(0.25); otherwise tx_count >= 2 (the previous request
        # went unanswered) is a miss with 0.1 for the sync peer, 0.25 for the others.
        if k > 8:
            score += 0.25
        elif k >= 2:
            score += 0.1 if sync_peer else 0.25
        if k >= 2:
            if score >= 1.0:
                exponent = min(maxpoll, exponent + int(score))
                score -= int(score)
            misses += 1
            if misses >= 8 and lookup is None and t >= holdoff_end:
                lookup = t
        base = 2.0**exponent
        interval = min(2.0, base / 4) if k <= burst else base
        interval *= 1.0 + jitters[k % len(jitters)]
        if lookup is not None:
            intervals.append(interval)
            if len(intervals) == 2:
                return lookup, lookup + sum(intervals)
        t += interval
        k += 1


def test_chrony43_holdoff_postpones_the_first_lookup() -> None:
    # P = 16 s: the register empties 8P = 128 s after the change; a replacement 1000 s
    # before the change holds the next one off until 792 s after it.
    base = recovery_time({"client": "chrony-4.3", "maxpoll": 4}, ttl=0, update_latency=0)
    held = recovery_time(
        {"client": "chrony-4.3", "maxpoll": 4, "since_last_replacement_s": 1000}, ttl=0, update_latency=0
    )
    assert base["reresolve_earliest_s"] == 128
    assert held["reresolve_earliest_s"] == 792
    assert held["reresolve_latest_s"] == pytest.approx(792 + 16 * 1.02)
    assert held["recovery_earliest_s"] == 792 + 32
    assert held["recovery_latest_s"] == pytest.approx(792 + 3 * 16 * 1.02)
    # The budget moves with it: the hold-off gives DNS more time, not less.
    assert held["budget_s"] == 792
    # A replacement longer ago than the hold-off changes nothing.
    old = recovery_time(
        {"client": "chrony-4.3", "maxpoll": 4, "since_last_replacement_s": 1800}, ttl=0, update_latency=0
    )
    assert old["reresolve_earliest_s"] == base["reresolve_earliest_s"]
    assert old["recovery_latest_s"] == base["recovery_latest_s"]


def test_chrony44_holdoff_only_widens_the_latest_case() -> None:
    # 4.4+ draws the next allowed replacement up to 3584 s after the last one: with the
    # last one 1000 s before the change it may come at once or as late as 2584 s after.
    held = recovery_time(
        {"client": "chrony-4.4+", "maxpoll": 4, "since_last_replacement_s": 1000}, ttl=0, update_latency=0
    )
    assert held["reresolve_earliest_s"] == 128
    assert held["reresolve_latest_s"] == pytest.approx(2584 + 16 * 1.02)
    assert held["recovery_latest_s"] == pytest.approx(2584 + 3 * 16 * 1.02)


def test_holdoff_window_uses_shortest_for_latest_and_longest_for_earliest() -> None:
    result = recovery_time(
        {"client": "chrony-4.3", "maxpoll": 4, "since_last_replacement_s": [900, 1000]}, ttl=0, update_latency=0
    )
    assert result["reresolve_earliest_s"] == 792
    assert result["reresolve_latest_s"] == pytest.approx(892 + 16 * 1.02)


def test_startup_poll_cap_follows_get_poll_adj() -> None:
    # Minpoll 6: four burst samples count as taken at once, then samples 5..8 at 64 s
    # keep the poll; the 9th sample may raise it.
    assert startup_poll_cap(6, 10, 0) == 6
    assert startup_poll_cap(6, 10, 5 * 64 - 1) == 6
    assert startup_poll_cap(6, 10, 5 * 64) == 7
    assert startup_poll_cap(6, 10, 5 * 64 + 128) == 8
    assert startup_poll_cap(6, 10, 10**6) == 10
    spec = parse_client({"client": "chrony-4.3", "since_start_s": 400})
    assert spec.poll_range() == (6, 7)


def test_start_up_burst_makes_the_lookup_earlier() -> None:
    # Minpoll = maxpoll = 4 (P = 16 s), burst interval min(2, 16/4) = 2 s. A client that
    # started just before the change still has its burst: up to 7 of the 8 polls to an
    # empty register come 2 s apart, so the lookup can come at 7 * 2 + 16 = 30 s
    # instead of 128 s.
    result = recovery_time(
        {"client": "chrony-4.3", "minpoll": 4, "maxpoll": 4, "since_start_s": 0.5}, ttl=0, update_latency=0
    )
    assert result["reresolve_earliest_s"] == pytest.approx(7 * 2 + 16)
    # The latest case takes the fewest burst intervals left: one request was sent by
    # 0.5 s, so 8 - 1 - 1 = 6 remain; the first lost request comes at most one burst
    # interval after the change, then 6 burst intervals and 2 full polls.
    assert result["reresolve_latest_s"] == pytest.approx((2 + 6 * 2 + 2 * 16) * 1.02)
    # The TTL budget must follow the earlier lookup.
    assert max_ttl([{"client": "chrony-4.3", "minpoll": 4, "maxpoll": 4, "since_start_s": 0.5}], 0) == 30
    # Long after start the burst is over: the steady figures again.
    late = recovery_time(
        {"client": "chrony-4.3", "minpoll": 4, "maxpoll": 4, "since_start_s": 3600}, ttl=0, update_latency=0
    )
    assert late["reresolve_earliest_s"] == 128


@pytest.mark.parametrize("client", ["chrony-4.3", "chrony-4.4+"])
def test_reference_walk_lies_inside_the_bounds(client: str) -> None:
    rng = random.Random(20261202)  # noqa: S311 - a seeded draw of test cases, nothing secret
    for _trial in range(400):
        minpoll = rng.choice([0, 1, 2, 4, 6])
        maxpoll = rng.choice([minpoll, minpoll + 1, minpoll + 3])
        since_start = rng.choice([None, rng.uniform(0, 40), rng.uniform(0, 3000)])
        since_replacement = rng.choice([None, rng.uniform(0, 4000)])
        description: dict[str, object] = {"client": client, "minpoll": minpoll, "maxpoll": maxpoll}
        if since_start is not None:
            description["since_start_s"] = since_start
        else:
            description["poll_state"] = "ramping"
        if since_replacement is not None:
            description["since_last_replacement_s"] = since_replacement
        spec = parse_client(description)
        model = recovery_time(description, ttl=0, update_latency=0)
        low_poll, high_poll = spec.poll_range()
        poll = rng.randint(low_poll, high_poll)
        # The burst left after the first lost request, as chrony would have it: the
        # client sent one request per burst interval since the start; the burst
        # ends with the 4th good sample.
        burst = 0
        if since_start is not None and poll == minpoll:
            step = min(2.0, 2.0**poll / 4)
            delay = rng.uniform(0, 0.5)  # start-up NTS-KE
            sent = 0 if since_start < delay else int((since_start - delay) / step) + 1
            burst = max(0, 8 - 1 - sent) if sent < 4 else 0
        holdoff_end = 0.0
        if since_replacement is not None:
            if client == "chrony-4.3":
                holdoff_end = max(0.0, 1792 - since_replacement)
            else:
                holdoff_end = max(0.0, rng.uniform(0, 3584) - since_replacement)
        step = min(2.0, 2.0**poll / 4) if burst else 2.0**poll
        u = rng.uniform(1e-6, step)
        jitters = [rng.uniform(0, 0.02) for _stage in range(7)]
        lookup, recovered = reference_chrony(
            poll=poll,
            maxpoll=maxpoll,
            u=u,
            jitters=jitters,
            holdoff_end=holdoff_end,
            burst=burst,
            sync_peer=rng.random() < 0.5,
            score=rng.uniform(0, 0.99),
        )
        context = f"{description} poll {poll} burst {burst} holdoff {holdoff_end:.1f} u {u:.3f}"
        assert model["reresolve_earliest_s"] - 1e-6 <= lookup <= model["reresolve_latest_s"] + 1e-6, context
        assert model["recovery_earliest_s"] - 1e-6 <= recovered <= model["recovery_latest_s"] + 1e-6, context


@pytest.mark.parametrize(
    ("description", "message"),
    [
        ({"client": "ntpsec-1.2", "since_start_s": 10}, "ntpsec-1.2 has neither"),
        ({"client": "rfc8915", "since_last_replacement_s": 10}, "rfc8915 has neither"),
        ({"client": "chrony-4.3", "since_last_replacement_s": -1}, "since_last_replacement_s must be"),
        ({"client": "chrony-4.3", "since_last_replacement_s": [5, 1]}, "must not run backwards"),
        ({"client": "chrony-4.3", "since_last_replacement_s": [1, 2, 3]}, "or [shortest, longest]"),
        ({"client": "chrony-4.3", "since_start_s": "soon"}, "since_start_s must be"),
    ],
)
def test_bad_history_is_refused(description: dict[str, object], message: str) -> None:
    with pytest.raises(RecoveryModelError, match=message.replace("[", r"\[").replace("]", r"\]")):
        recovery_time(description, ttl=0, update_latency=0)


def test_simulator_refuses_process_history() -> None:
    with pytest.raises(RecoveryModelError, match="does not take them"):
        simulate_fleet([{"client": "chrony-4.3", "since_start_s": 5}], clients=10, ttl=60, update_latency=5)


def test_previous_change_gives_the_chrony_holdoff() -> None:
    # P = 16 s, DNS fresh at once: after the previous change the client looked up at
    # 128 s at the earliest and was back by 11 * 16 * 1.02 = 179.52 s at the latest.
    # 1000 s later its last replacement was 820.48 .. 872 s ago: the 4.3 hold-off ends
    # 1792 - 872 = 920 s (earliest) .. 1792 - 820.48 = 971.52 s (latest) after this change.
    client = {"client": "chrony-4.3", "maxpoll": 4}
    result = recovery_time(client, ttl=0, update_latency=0, previous_change_s=1000)
    assert result["since_last_replacement_s"] == pytest.approx([1000 - 179.52, 1000 - 128])
    assert result["reresolve_earliest_s"] == pytest.approx(920)
    assert result["reresolve_latest_s"] == pytest.approx(971.52 + 16 * 1.02)
    # Long enough ago, nothing changes.
    plain = recovery_time(client, ttl=0, update_latency=0)
    later = recovery_time(client, ttl=0, update_latency=0, previous_change_s=5000)
    assert later["recovery_latest_s"] == plain["recovery_latest_s"]
    # NTPsec has no hold-off: once it has followed, the previous change does not matter.
    ntpsec = {"client": "ntpsec-1.2", "maxpoll": 4}
    assert recovery_time(ntpsec, 0, 0, previous_change_s=1000) == recovery_time(ntpsec, 0, 0)


def test_a_change_before_the_previous_one_is_followed_is_refused() -> None:
    with pytest.raises(RecoveryModelError, match=r"may still be following .* Wait 80 s more"):
        recovery_time({"client": "chrony-4.3", "maxpoll": 4}, ttl=0, update_latency=0, previous_change_s=100)
    with pytest.raises(RecoveryModelError, match="not both"):
        recovery_time(
            {"client": "chrony-4.3", "since_last_replacement_s": 5}, ttl=0, update_latency=0, previous_change_s=9000
        )
    with pytest.raises(RecoveryModelError, match="previous_change_s must be"):
        recovery_time({"client": "chrony-4.3"}, ttl=0, update_latency=0, previous_change_s=-3)
