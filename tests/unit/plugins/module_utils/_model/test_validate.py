"""Tests of the model's input checks: one rule per kind of value, one error type."""

from __future__ import annotations

import math

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError
from ansible_collections.ntsops.nts.plugins.module_utils._model.validate import (
    MAX_DNS_SECONDS,
    RecoveryModelError,
    boolean,
    choice,
    fraction,
    integer,
    number,
    seconds,
)


def test_error_type_is_an_ntsops_error() -> None:
    assert issubclass(RecoveryModelError, NtsopsError)


def test_numbers_may_arrive_as_strings() -> None:
    # Ansible hands extra vars over as strings.
    assert integer("40", "x") == 40
    assert integer(" -3 ", "x") == -3
    assert integer(8.0, "x") == 8
    assert seconds("1.5", "x") == 1.5
    assert fraction("0.25", "x") == 0.25
    assert number(7, "x") == 7.0


@pytest.mark.parametrize(
    ("check", "value", "message"),
    [
        (lambda v: integer(v, "poll"), True, "poll must be an integer, got True"),
        (lambda v: integer(v, "poll"), 2.5, "poll must be an integer, got 2.5"),
        (lambda v: integer(v, "n", (1, 9)), 0, "n must be an integer between 1 and 9, got 0"),
        (lambda v: integer(v, "n", (1, 9)), None, "n must be an integer between 1 and 9, got None"),
        (lambda v: seconds(v, "ttl"), False, "ttl must be a number of seconds between 0 and"),
        (lambda v: seconds(v, "ttl"), "x", "'x'"),
        (lambda v: seconds(v, "ttl"), -1, "ttl"),
        (lambda v: seconds(v, "ttl"), math.inf, "ttl"),
        (lambda v: seconds(v, "ttl"), MAX_DNS_SECONDS + 1, r"2592000 s \(30 days\)"),
        (lambda v: seconds(v, "restart_s", 3600), math.nan, "restart_s must be a number of seconds between 0 and 3600"),
        (lambda v: seconds(v, "horizon", math.inf), -1, "horizon must be a number of seconds >= 0, got -1"),
        (lambda v: fraction(v, "share"), 2, "share must be a fraction between 0 and 1, got 2"),
        (lambda v: fraction(v, "share"), True, "share must be a fraction"),
        (lambda v: choice(v, "server", ("chrony", "ntpsec")), "ntpd", "server must be one of chrony, ntpsec, got"),
        (lambda v: boolean(v, "flag"), "yes", "flag must be true or false, got 'yes'"),
    ],
)
def test_bad_values_are_named(check: object, value: object, message: str) -> None:
    with pytest.raises(RecoveryModelError, match=message):
        check(value)  # type: ignore[operator]


def test_limits_are_inclusive() -> None:
    assert seconds(MAX_DNS_SECONDS, "ttl") == MAX_DNS_SECONDS
    assert seconds(0, "ttl") == 0.0
    assert integer(9, "n", (1, 9)) == 9
    assert fraction(1, "share") == 1.0
