"""The dynamic-update errors share the one error root."""

from __future__ import annotations

from ansible_collections.ntsops.nts.plugins.module_utils._dns.errors import (
    DdnsBudgetError,
    DdnsConflictError,
    DdnsTimeoutError,
    DdnsTsigError,
)
from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError


def test_every_error_is_an_ntsops_error() -> None:
    for error in (DdnsTimeoutError, DdnsConflictError, DdnsBudgetError, DdnsTsigError):
        assert issubclass(error, NtsopsError)
