"""The cookie-continuity core without a network: state checks and verdicts with an injected exchange."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._check.cookie_continuity import (
    CookieStateError,
    load_state,
    state_text,
    verify_cookies,
)
from ansible_collections.ntsops.nts.plugins.module_utils._net import nts_session
from ansible_collections.ntsops.nts.plugins.module_utils._net.deadline import NtsStepError
from ansible_collections.ntsops.nts.plugins.module_utils._nts import ntp as nts_ntp

ENTRY = {
    "address": "203.0.113.7",
    "ntp_address": "203.0.113.7",
    "ntp_port": 123,
    "aead": 15,
    "c2s_key": "11" * 32,
    "s2c_key": "22" * 32,
    "cookie": "ab" * 52,
}


def _state(**entry: Any) -> dict[str, Any]:
    return {
        "format": "ntsops-cookie-state",
        "version": 1,
        "name": "time.example.net",
        "saved_at": "2026-12-02T18:00:00+00:00",
        "entries": [ENTRY | entry],
    }


def _answer(*, nak: bool = False, authenticated: bool = True) -> nts_session.NtpResult:
    response = nts_ntp.NtpResponse(
        leap=0, version=4, mode=4, stratum=0 if nak else 2, poll=0, precision=-20, root_delay=0.0,
        root_dispersion=0.0, refid=b"NTSN" if nak else b"\x7f\x00\x00\x01", refid_text="", reference_ts=0,
        origin_ts=0, receive_ts=0, transmit_ts=0, authenticated=authenticated and not nak, nak=nak,
    )
    return nts_session.NtpResult(response=response, server="203.0.113.7", port=123, offset=0.0, delay=0.0, ms=0.1)


def test_state_round_trips_and_is_checked_for_the_name() -> None:
    text = state_text(_state())
    assert load_state(text, "time.example.net")["entries"][0] == ENTRY
    with pytest.raises(CookieStateError, match=r"saved for 'time\.example\.net', not 'other\.example\.net'"):
        load_state(text, "other.example.net")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not JSON"),
        (json.dumps({"format": "else"}), "is not an ntsops-cookie-state file"),
        (json.dumps(_state() | {"version": 9}), "has version 9"),
        (json.dumps(_state() | {"entries": []}), "holds no saved cookie"),
        (json.dumps(_state(cookie="zz")), "entry 1: cookie must be a non-empty hex string"),
        (json.dumps(_state(address="time.example.net")), "entry 1: address must be an IP address"),
        (json.dumps(_state(ntp_port=0)), "ntp_port must be 1-65535"),
        (json.dumps(_state(aead=99)), "aead 99 is not one"),
    ],
)
def test_bad_state_is_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(CookieStateError, match=message):
        load_state(text)


def test_verdicts_from_the_server_answer() -> None:
    seen: list[tuple[str, int, bytes]] = []

    def accepted(address: str, port: int, ke: nts_session.KeResult, timeout: float) -> nts_session.NtpResult:
        seen.append((address, port, ke.response.cookies[0]))
        return _answer()

    result = verify_cookies(load_state(state_text(_state())), exchange=accepted)
    assert result["ok"] is True
    assert result["addresses"][0]["accepted"] is True
    # The saved cookie, not a fresh one, goes to the saved NTP server.
    assert seen == [("203.0.113.7", 123, bytes.fromhex(ENTRY["cookie"]))]

    nak = verify_cookies(_state(), exchange=lambda *_args: _answer(nak=True))
    assert nak["ok"] is False
    assert nak["addresses"][0]["nak"] is True
    assert "NTS NAK" in nak["problems"][0]

    def silent(*_args: Any) -> nts_session.NtpResult:
        raise NtsStepError("ntp", "no NTP response within 5 s")

    dark = verify_cookies(_state(), exchange=silent)
    assert dark["ok"] is False
    assert dark["addresses"][0]["accepted"] is False
    # The step error's text, after the address.
    assert dark["problems"] == [f"203.0.113.7: {NtsStepError('ntp', 'no NTP response within 5 s')}"]
