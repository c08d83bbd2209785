"""resolve: the one getaddrinfo call, its order, and the caller's error class and wording."""

from __future__ import annotations

import functools
import socket
from typing import Any

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError
from ansible_collections.ntsops.nts.plugins.module_utils._net import resolve
from ansible_collections.ntsops.nts.plugins.module_utils._net.deadline import NtsStepError


class _OwnError(NtsopsError):
    pass


def test_addresses_keep_resolver_order_without_duplicates(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[str, int]] = []

    def fake_getaddrinfo(host: str, port: Any, type: int = 0) -> list[Any]:
        asked.append((host, type))
        return [
            (socket.AF_INET6, type, 17, "", ("2001:db8::7", 0, 0, 0)),
            (socket.AF_INET, type, 17, "", ("192.0.2.7", 0)),
            (socket.AF_INET6, type, 17, "", ("2001:db8::7", 0, 0, 0)),
        ]

    monkeypatch.setattr(resolve.socket, "getaddrinfo", fake_getaddrinfo)
    assert resolve.resolve_host("ntp.example.net", socktype=socket.SOCK_DGRAM) == ["2001:db8::7", "192.0.2.7"]
    assert asked == [("ntp.example.net", socket.SOCK_DGRAM)]


def test_a_name_that_does_not_resolve_raises_the_callers_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_getaddrinfo(*_args: Any, **_kwargs: Any) -> list[Any]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(resolve.socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(_OwnError) as excinfo:
        resolve.resolve_host("nothere.example.net", what="served host ", error=_OwnError)
    assert str(excinfo.value) == "served host nothere.example.net does not resolve: Name or service not known"
    with pytest.raises(NtsStepError) as step_error:
        resolve.resolve_host("nothere.example.net", error=functools.partial(NtsStepError, "ntp"))
    assert step_error.value.step == "ntp"


def test_a_name_with_an_empty_label_is_not_a_valid_host_name() -> None:
    with pytest.raises(NtsopsError) as excinfo:
        resolve.resolve_host("a..example.net")
    assert str(excinfo.value) == "'a..example.net' is not a valid host name"


def test_address_family() -> None:
    assert resolve.address_family("2001:db8::1") == socket.AF_INET6
    assert resolve.address_family("192.0.2.1") == socket.AF_INET
