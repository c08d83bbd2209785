"""The DNS client: transport errors, bounded retries, and answer checks (canned DNS)."""

from __future__ import annotations

from typing import Any

import dns.exception
import dns.tsig
import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._dns.client import DnsClient
from ansible_collections.ntsops.nts.plugins.module_utils._dns.errors import (
    DdnsInputError,
    DdnsProtocolError,
    DdnsTimeoutError,
    DdnsTsigError,
    DdnsUnreachableError,
)
from ansible_collections.ntsops.nts.plugins.module_utils._dns.zone import find_zone
from ansible_collections.ntsops.nts.tests.unit.plugins.module_utils._dns.dns_fakes import (
    NAME,
    PRIMARY,
    ZONE,
    FakeServer,
    FakeTransport,
    lab,
    zone_records,
)


@pytest.mark.parametrize(
    ("exception", "error", "text"),
    [
        (dns.tsig.PeerBadKey(), DdnsTsigError, "BADKEY"),
        (dns.tsig.PeerBadSignature(), DdnsTsigError, "BADSIG"),
        (dns.tsig.PeerBadTime(), DdnsTsigError, "BADTIME"),
        (dns.tsig.BadSignature(), DdnsTsigError, "failed TSIG verification"),
        (ConnectionRefusedError(), DdnsUnreachableError, "refused or closed"),
        (EOFError(), DdnsUnreachableError, "refused or closed"),
        (OSError(101, "Network is unreachable"), DdnsUnreachableError, "Network is unreachable"),
        (dns.exception.FormError("bad"), DdnsProtocolError, "malformed"),
    ],
)
def test_transport_errors_are_mapped_and_not_retried(exception: BaseException, error: type, text: str) -> None:
    transport, client, _primary, _secondary = lab(retries=3)
    transport.failures = [exception]
    with pytest.raises(error, match=text):
        find_zone(client, NAME, PRIMARY)
    assert len(transport.sent) == 1


def test_timeouts_are_retried_a_bounded_number_of_times() -> None:
    transport, client, _primary, _secondary = lab(retries=2)
    transport.failures = [dns.exception.Timeout()] * 3
    with pytest.raises(DdnsTimeoutError, match=r"within 1 s \(3 tries\)"):
        find_zone(client, NAME, PRIMARY)
    assert len(transport.sent) == 3
    transport.sent.clear()
    transport.failures = [dns.exception.Timeout()] * 2
    assert find_zone(client, NAME, PRIMARY).zone == ZONE
    assert len(transport.sent) == 3


def test_answer_with_another_id_is_rejected() -> None:
    class WrongId(FakeServer):
        def answer(self, message: Any) -> Any:
            response = super().answer(message)
            response.id = (message.id + 1) % 65536
            return response

    transport, client, _primary, _secondary = lab()
    transport.servers["127.0.0.1"] = WrongId(zone_records())
    with pytest.raises(DdnsProtocolError, match="wrong message id"):
        find_zone(client, NAME, PRIMARY)


def test_bad_client_settings() -> None:
    with pytest.raises(DdnsInputError):
        DnsClient(FakeTransport({}), timeout=0)
    with pytest.raises(DdnsInputError):
        DnsClient(FakeTransport({}), retries=-1)
