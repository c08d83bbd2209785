"""The recovery filters call the model and turn its errors into AnsibleFilterError."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.ntsops.nts.plugins.filter.recovery import FilterModule

FILTERS = FilterModule().filters()


def test_filter_names() -> None:
    assert set(FILTERS) == {"recovery_time", "max_ttl", "ke_retry_schedule", "server_recommendation"}


def test_recovery_time_call_shape() -> None:
    result = FILTERS["recovery_time"]({"client": "chrony-4.3", "maxpoll": 10}, ttl=300, update_latency=60)
    assert result["recovery_earliest_s"] == 10 * 1024
    assert result["meets_budget"] is True
    assert isinstance(result["explanation"], str)


def test_max_ttl_call_shape() -> None:
    clients = [{"client": "chrony-4.3", "maxpoll": 10}, {"client": "rfc8915", "maxpoll": 9}]
    assert FILTERS["max_ttl"](clients, update_latency=60) == 8 * 512 - 60


def test_ke_retry_schedule_call_shape() -> None:
    assert FILTERS["ke_retry_schedule"]("chrony-4.3", failure="tls", attempts=4) == [1024, 2048, 4096, 8192]


def test_server_recommendation_call_shape() -> None:
    result = FILTERS["server_recommendation"](
        {"expected_clients": 100, "largest_nat_group": 20, "client_mix": [{"client": "chrony-4.3", "share": 1.0}]}
    )
    assert set(result) >= {
        "ntsratelimit_interval",
        "ntsratelimit_burst",
        "ntsratelimit_leak",
        "ntsprocesses",
        "maxntsconnections",
        "explanation",
    }


@pytest.mark.parametrize(
    ("name", "args", "kwargs", "message"),
    [
        ("recovery_time", ({"client": "chrony-9"},), {"ttl": 1, "update_latency": 1}, "'chrony-9'"),
        ("recovery_time", ({"client": "chrony-4.3", "maxpoll": 30},), {"ttl": 1}, "maxpoll 30"),
        ("recovery_time", ({"client": "chrony-4.3"},), {"ttl": -3}, "-3"),
        ("max_ttl", ([{"client": "chrony-4.3", "maxpoll": 4}],), {"update_latency": 500}, "update_latency 500"),
        ("ke_retry_schedule", ("chrony-4.3",), {"failure": "tls", "attempts": 0}, "attempts"),
        ("ke_retry_schedule", ("ntpd",), {}, "'ntpd'"),
        ("server_recommendation", ({"expected_clients": -1},), {}, "-1"),
    ],
)
def test_errors_name_the_bad_value(
    name: str, args: tuple[object, ...], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        FILTERS[name](*args, **kwargs)
