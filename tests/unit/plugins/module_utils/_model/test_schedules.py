"""Tests of the poll schedules and attempt plans against hand-computed cases."""

from __future__ import annotations

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._model.clients import (
    CHRONY_43_REPLACEMENT_HOLDOFF_S,
    parse_client,
)
from ansible_collections.ntsops.nts.plugins.module_utils._model.schedules import (
    ChronyPlan,
    ChronySchedule,
    NtpsecPlan,
    RfcPlan,
    make_plan,
)


def test_chrony_schedule_at_maxpoll() -> None:
    # At maxpoll the interval never changes; the register is empty after 8 misses,
    # which the polls from the second on are: S_9 = 8 P.
    schedule = ChronySchedule(6, 6, 8, score=0.0, sent_adj=0.1, jitter=0.0)
    assert schedule.empty_index == 9
    assert schedule.time(9) == 8 * 64
    assert schedule.time(20) == 19 * 64
    assert schedule.first_index_at_or_after(8 * 64) == 9
    assert schedule.first_index_at_or_after(8 * 64 + 1) == 10
    assert schedule.first_index_at_or_after(1000 * 64 + 1) == 1002


def test_make_plan_picks_the_client_plan() -> None:
    assert isinstance(make_plan(parse_client("chrony-4.3"), 10, latest=False), ChronyPlan)
    assert isinstance(make_plan(parse_client("ntpsec-1.2"), 10, latest=False), NtpsecPlan)
    assert isinstance(make_plan(parse_client("rfc8915"), 10, latest=False), RfcPlan)


def test_chrony43_attempts_respect_the_holdoff() -> None:
    plan = make_plan(parse_client({"client": "chrony-4.3", "maxpoll": 4}), 4, latest=False)
    attempts = plan.attempts()
    first, second = next(attempts), next(attempts)
    assert first.at == 8 * 16
    assert first.ke_at == 9 * 16 and first.recovery == 10 * 16
    # The next poll at least 1792 s after the first attempt.
    assert second.at == pytest.approx(first.at + 16 * -(-CHRONY_43_REPLACEMENT_HOLDOFF_S // 16))
