"""The added_address filter calls the model and turns its errors into AnsibleFilterError."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.ntsops.nts.plugins.filter.added_address import FilterModule

FILTERS = FilterModule().filters()


def test_filter_name_and_call_shape() -> None:
    assert set(FILTERS) == {"added_address"}
    result = FILTERS["added_address"](["chrony-4.3", {"client": "ntpsec-1.2", "maxpoll": 1}], order="added_first")
    assert result["stuck"] == ["chrony-4.3", "ntpsec-1.2"]
    assert result["clients"][1]["triggers"]["restart"]["chance"] == 1.0
    assert FILTERS["added_address"]("chrony-4.3", refresh=True)["moves_by_itself"] is True


@pytest.mark.parametrize(
    ("clients", "kwargs", "needle"),
    [
        (["chrony-4.3"], {"added_family": "ipx"}, "ntsops.nts.added_address: added_family .*'ipx'"),
        (["rfc8915"], {}, "rfc8915"),
        (["chrony-4.3"], {"client_families": ["ipv6"]}, "current_family"),
    ],
)
def test_errors_name_the_bad_value(clients: list, kwargs: dict, needle: str) -> None:
    with pytest.raises(AnsibleFilterError, match=needle):
        FILTERS["added_address"](clients, **kwargs)
