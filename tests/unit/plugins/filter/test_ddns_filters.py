"""The ddns filters return what the ddns core computes and turn its errors into AnsibleFilterError."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.ntsops.nts.plugins.filter.ddns import FilterModule
from ansible_collections.ntsops.nts.plugins.module_utils._dns.agent import reconcile_interval
from ansible_collections.ntsops.nts.plugins.module_utils._dns.budget import budget_max_ttl

FILTERS = FilterModule().filters()
BUDGET = {"clients": [{"client": "chrony-4.3", "maxpoll": 4}], "update_latency": 2}


def test_filter_names() -> None:
    assert set(FILTERS) == {"ddns_ttl", "ddns_reconcile_interval"}


def test_ddns_ttl_call_shape() -> None:
    limit = budget_max_ttl(BUDGET)
    assert FILTERS["ddns_ttl"](BUDGET) == {"ttl": limit, "max_ttl": limit, "warnings": []}
    assert FILTERS["ddns_ttl"](BUDGET, ttl=60) == {"ttl": 60, "max_ttl": limit, "warnings": []}
    assert FILTERS["ddns_ttl"](None, ttl=60) == {"ttl": 60, "max_ttl": None, "warnings": []}
    allowed = FILTERS["ddns_ttl"](BUDGET, ttl=limit + 1, allow_ttl_over_budget=True, option_prefix="ddns_agent_")
    assert allowed["ttl"] == limit + 1
    assert allowed["warnings"] == [
        f"ddns_agent_ttl {limit + 1} s is above {limit} s, the longest TTL the recovery budget allows"
    ]


def test_ddns_ttl_over_budget_fails_naming_the_callers_variables() -> None:
    limit = budget_max_ttl(BUDGET)
    with pytest.raises(AnsibleFilterError, match=rf"ntsops\.nts\.ddns_ttl: ddns_agent_ttl {limit + 1} s is above"):
        FILTERS["ddns_ttl"](BUDGET, ttl=limit + 1, option_prefix="ddns_agent_")
    with pytest.raises(AnsibleFilterError, match="give ttl or budget"):
        FILTERS["ddns_ttl"](None)


@pytest.mark.parametrize("latency", [2, 30, 600, 86400])
def test_ddns_reconcile_interval_is_the_agents(latency: float) -> None:
    assert FILTERS["ddns_reconcile_interval"](latency) == reconcile_interval(latency)


def test_ddns_reconcile_interval_errors() -> None:
    message = r"ntsops\.nts\.ddns_reconcile_interval: update_latency must be positive"
    with pytest.raises(AnsibleFilterError, match=message):
        FILTERS["ddns_reconcile_interval"](0)
