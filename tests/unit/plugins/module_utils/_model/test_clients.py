"""Tests of the client table and of client descriptions."""

from __future__ import annotations

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._model.clients import CLIENTS, parse_client
from ansible_collections.ntsops.nts.plugins.module_utils._model.recovery import recovery_time
from ansible_collections.ntsops.nts.plugins.module_utils._model.validate import RecoveryModelError


def test_clients_are_the_documented_ids() -> None:
    assert CLIENTS == ("chrony-4.3", "chrony-4.4+", "ntpsec-1.2", "ntpd-rs-1.4", "rfc8915")


@pytest.mark.parametrize(
    ("client", "message"),
    [
        ({"client": "chrony-9"}, "unknown client 'chrony-9'"),
        ({"client": "chrony-4.3", "maxpoll": 25}, "maxpoll 25 is outside"),
        ({"client": "ntpsec-1.2", "maxpoll": 18}, "maxpoll 18 is outside"),
        ({"client": "chrony-4.3", "minpoll": 8, "maxpoll": 6}, "minpoll 8 is larger than maxpoll 6"),
        ({"client": "chrony-4.3", "poll_state": "fast"}, "'fast'"),
        ({"client": "chrony-4.3", "old_address": "gone"}, "'gone'"),
        ({"client": "chrony-4.3", "cookies": 9}, "cookies 9"),
        ({"client": "chrony-4.3", "maxpol": 9}, "maxpol"),
        ({"client": "chrony-4.3", "maxpoll": "ten"}, "'ten'"),
        ({"client": "chrony-4.3", "maxpoll": True}, "True"),
        ({"client": "chrony-4.3", "poll": 3}, "poll 3"),
        (["chrony-4.3"], "mapping"),
    ],
)
def test_bad_client_is_named(client: object, message: str) -> None:
    with pytest.raises(RecoveryModelError, match=message.replace("+", r"\+")):
        recovery_time(client, ttl=1, update_latency=1)  # type: ignore[arg-type]


def test_string_client_and_defaults() -> None:
    spec = parse_client("ntpsec-1.2")
    assert (spec.minpoll, spec.maxpoll, spec.cookies, spec.poll_state) == (6, 10, 8, "steady")
    assert parse_client({"client": "chrony-4.3", "maxpoll": 4}).minpoll == 4
