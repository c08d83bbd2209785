"""The planned move's verdict from one watched interval: positive evidence only."""

from __future__ import annotations

import json

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._check import move_evidence as planned_move
from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError


def _stats(received: int, authenticated: int, ke: int = 0) -> str:
    return (f"NTP packets received       : {received}\nNTP packets dropped        : 0\n"
            f"NTS-KE connections accepted: {ke}\nAuthenticated NTP packets  : {authenticated}\n")


def _nft(name: str, packets: int) -> str:
    return json.dumps({"nftables": [{"metainfo": {"version": "1.0.6"}},
                                    {"counter": {"family": "inet", "name": name, "packets": packets, "bytes": 0}}]})


def _watch(start: str, old: int, new: int, end: str) -> str:
    return "\n".join([start, planned_move.WATCH_MARKER, _nft("old_ntp", old), _nft("new_ntp", new), end])


def test_move_evidence_needs_authenticated_ntp_at_the_new_address() -> None:
    done = planned_move.move_evidence(_watch(_stats(10, 8), 0, 3, _stats(13, 11, 2)), _stats(5, 5, 1))
    assert done["proven"] is True
    assert done["authenticated_ntp_interval"] == 3 and done["authenticated_ntp_since_switch"] == 6
    assert done["nts_ke_since_switch"] == 1 and done["unauthenticated_ntp_interval"] == 0


@pytest.mark.parametrize(("old", "new", "end"), [
    (0, 0, _stats(10, 8)),  # silence: stranded clients look like this
    (0, 2, _stats(12, 8)),  # requests at the new address, none authenticated (NAKs)
    (1, 2, _stats(13, 11)),  # someone still at the old address
])
def test_move_evidence_is_never_proven_by_silence_or_naks(old: int, new: int, end: str) -> None:
    assert planned_move.move_evidence(_watch(_stats(10, 8), old, new, end), _stats(5, 5))["proven"] is False


def test_move_evidence_rejects_output_it_cannot_read() -> None:
    with pytest.raises(NtsopsError):
        planned_move.move_evidence(_stats(1, 1), _stats(1, 1))
    with pytest.raises(NtsopsError):
        planned_move.move_evidence(_watch(_stats(1, 1), 0, 1, "nothing"), _stats(1, 1))


def test_authenticated_time_at_the_new_address_while_a_client_stays_on_the_old() -> None:
    # 2 requests to the old address, 2 to the new, 4 authenticated: at least 2 at the new one.
    seen = planned_move.move_evidence(_watch(_stats(10, 8), 2, 2, _stats(14, 12)), _stats(5, 5))
    assert seen["authenticated_at_new"] is True and seen["proven"] is False
    assert seen["authenticated_ntp_elsewhere_interval"] == 2
    # the same with only the old address's requests authenticated: no proof for the new one
    seen = planned_move.move_evidence(_watch(_stats(10, 8), 2, 2, _stats(14, 10)), _stats(5, 5))
    assert seen["authenticated_at_new"] is False
