"""The TTL from the recovery budget and the check against it."""

from __future__ import annotations

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._dns import budget as budget_module
from ansible_collections.ntsops.nts.plugins.module_utils._dns.budget import budget_max_ttl, choose_ttl
from ansible_collections.ntsops.nts.plugins.module_utils._dns.errors import DdnsBudgetError, DdnsInputError
from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError


def test_choose_ttl() -> None:
    budget = {"clients": [{"client": "chrony-4.3", "maxpoll": 4}], "update_latency": 2}
    limit = budget_max_ttl(budget)
    assert choose_ttl(None, budget) == (limit, limit, [])
    assert choose_ttl(limit, budget) == (limit, limit, [])
    with pytest.raises(DdnsBudgetError, match=f"ttl {limit + 1} s is above {limit} s"):
        choose_ttl(limit + 1, budget)
    ttl, _max_ttl, warnings = choose_ttl(limit + 1, budget, allow_ttl_over_budget=True)
    assert ttl == limit + 1
    assert warnings
    assert choose_ttl(30, None) == (30, None, [])
    with pytest.raises(DdnsInputError, match="give ttl or budget"):
        choose_ttl(None, None)
    with pytest.raises(DdnsInputError, match="budget needs"):
        choose_ttl(None, {"clients": []})


def test_budget_that_no_ttl_can_meet_is_an_ntsops_error() -> None:
    with pytest.raises(NtsopsError):
        choose_ttl(None, {"clients": [{"client": "chrony-4.3", "maxpoll": 4}], "update_latency": 100000})


def test_budget_without_the_recovery_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(budget_module, "HAS_RECOVERY_MODEL", False)
    with pytest.raises(DdnsBudgetError, match="recovery model"):
        choose_ttl(None, {"clients": [{"client": "chrony-4.3"}], "update_latency": 2})


def test_option_prefix_names_the_callers_variables() -> None:
    budget = {"clients": [{"client": "chrony-4.3", "maxpoll": 4}], "update_latency": 2}
    limit = budget_max_ttl(budget)
    with pytest.raises(DdnsBudgetError) as caught:
        choose_ttl(limit + 1, budget, option_prefix="ddns_agent_")
    assert str(caught.value) == (
        f"ddns_agent_ttl {limit + 1} s is above {limit} s, the longest TTL the recovery budget allows; "
        "lower ddns_agent_ttl or set ddns_agent_allow_ttl_over_budget"
    )
    _ttl, _limit, warnings = choose_ttl(limit + 1, budget, True, option_prefix="ddns_agent_")
    assert warnings == [f"ddns_agent_ttl {limit + 1} s is above {limit} s, the longest TTL the recovery budget allows"]
