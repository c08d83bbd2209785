"""The planned_move_plan filter calls the model and turns its errors into AnsibleFilterError."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.ntsops.nts.plugins.filter.planned_move import FilterModule

FILTERS = FilterModule().filters()


def test_filter_name_and_call_shape() -> None:
    assert set(FILTERS) == {"planned_move_plan", "planned_move_evidence"}
    plan = FILTERS["planned_move_plan"]([{"client": "chrony-4.3", "maxpoll": 1}], server="chrony", ttl=5)
    assert plan["watch_s"] == pytest.approx(3 * 2 * 1.02)
    assert plan["steps"][0]["step"] == "lower_ttl"


@pytest.mark.parametrize(
    ("fleet", "kwargs", "needle"),
    [
        ([{"client": "chrony-4.3"}], {"server": "ntpd"}, "'ntpd'"),
        ([{"client": "chrony-4.3"}], {"ttl": "soon"}, "'soon'"),
    ],
)
def test_errors_name_the_bad_value(fleet: list, kwargs: dict, needle: str) -> None:
    with pytest.raises(AnsibleFilterError, match=needle):
        FILTERS["planned_move_plan"](fleet, **kwargs)


def test_evidence_filter_errors_become_filter_errors() -> None:
    with pytest.raises(AnsibleFilterError, match="planned_move_evidence"):
        FILTERS["planned_move_evidence"]("no marker", "NTP packets received : 1")
