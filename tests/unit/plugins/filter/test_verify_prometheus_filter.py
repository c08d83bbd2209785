"""The verify_prometheus filter renders verify.yml's results through the core and refuses other input."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.ntsops.nts.plugins.filter.verify_prometheus import FilterModule

FILTERS = FilterModule().filters()


def test_filter_name_and_call_shape() -> None:
    assert set(FILTERS) == {"verify_prometheus"}
    text = FILTERS["verify_prometheus"](
        [{"host": "ntp1", "name": "t.example", "implementation": "chrony", "endpoint_ok": False, "addresses": [],
          "cert_ok": True, "cert_days_left": 30}],
        timestamp=5.0,
    )
    assert 'ntsops_nts_check_status{name="t.example"} 3\n' in text
    assert text.endswith("ntsops_nts_verify_timestamp_seconds 5\n")


@pytest.mark.parametrize("results", ["text", [1, 2]])
def test_other_input_is_refused(results: object) -> None:
    with pytest.raises(AnsibleFilterError, match=r"list of verify\.yml result"):
        FILTERS["verify_prometheus"](results)
