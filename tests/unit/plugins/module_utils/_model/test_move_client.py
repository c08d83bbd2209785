"""Unit tests of one client through a planned move against hand-computed cases."""

from __future__ import annotations

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._model.move_client import planned_move_client
from ansible_collections.ntsops.nts.plugins.module_utils._model.recovery import recovery_time
from ansible_collections.ntsops.nts.plugins.module_utils._model.validate import RecoveryModelError

P10 = 1024.0


def test_chrony43_steady_maxpoll10_nak_path() -> None:
    # NAK'd request at u in (0, P] after the key change; NTS-KE to the old address one
    # interval later; first request to the new address one interval after that.
    # Earliest: u -> 0, no jitter: 2P. Latest: u = 1.02 P, then two 1.02 P intervals
    # (the poll is already at maxpoll, so the 0.25 miss step cannot raise it): 3.06 P.
    result = planned_move_client({"client": "chrony-4.3", "maxpoll": 10})
    assert result["path"] == "nak"
    assert result["first_auth_new_earliest_s"] == 2 * P10
    assert result["first_auth_new_latest_s"] == pytest.approx(3 * P10 * 1.02)
    assert result["old_ke_at_earliest_s"] == P10
    assert result["old_ke_at_latest_s"] == pytest.approx(2 * P10 * 1.02)
    # The last sample came one interval before the NAK'd poll: three intervals.
    assert result["gap_earliest_s"] == 3 * P10
    assert result["gap_latest_s"] == pytest.approx(3 * P10 * 1.02)
    assert result["first_auth_new_polls"] == pytest.approx([2.0, 3.06])
    assert result["ke_address_after"] == "old"
    assert result["needs_old_ke"] is True


def test_chrony_below_maxpoll_may_double_its_poll_after_the_cookieless_poll() -> None:
    # poll 8 of 6..10: the poll without a cookie adds 0.25 to the score; with a score
    # just below 1 the exponent becomes 9: latest 2 * 256 * 1.02 + 512 * 1.02.
    result = planned_move_client({"client": "chrony-4.3", "minpoll": 6, "maxpoll": 10, "poll": 8})
    assert result["first_auth_new_earliest_s"] == 512
    assert result["first_auth_new_latest_s"] == pytest.approx(2 * 256 * 1.02 + 512 * 1.02)


def test_chrony_measured_planned_move_lies_inside_prediction() -> None:
    # Measured (docs/recovery-model.md, "Planned move"): first authenticated response from the new
    # address 2.0-3.0 polls after the move at polls of 1 and 2 s.
    for poll in (0, 1):
        result = planned_move_client({"client": "chrony-4.3", "maxpoll": poll})
        low, high = result["first_auth_new_polls"]
        assert low <= 2.0 and high >= 3.0


def test_chrony44_follows_the_same_nak_path() -> None:
    a = planned_move_client({"client": "chrony-4.3", "maxpoll": 6})
    b = planned_move_client({"client": "chrony-4.4+", "maxpoll": 6})
    assert a["first_auth_new_latest_s"] == b["first_auth_new_latest_s"]


def test_ntpsec_ignores_the_nak_and_takes_the_cookie_path() -> None:
    # Cookies burnt on NAK'd requests: the unplanned timeline with DNS fresh: at P = 2 s
    # 9 P = 18 s at the earliest; the latest includes the 6.2 % jitter and the 2 s guard:
    # interval 2 * (1 + 255/4096) + 2 = 4.1245 s, ten of them.
    result = planned_move_client({"client": "ntpsec-1.2", "maxpoll": 1})
    assert result["path"] == "cookies"
    assert result["first_auth_new_earliest_s"] == 18
    assert result["first_auth_new_latest_s"] == pytest.approx(10 * (2 * (1 + 255 / 4096) + 2))
    unplanned = recovery_time({"client": "ntpsec-1.2", "maxpoll": 1}, ttl=0, update_latency=0)
    assert result["first_auth_new_latest_s"] == pytest.approx(unplanned["recovery_latest_s"])
    assert result["ke_address_after"] == "new"
    assert result["needs_old_ke"] is False


def test_ntpsec_with_dns_stale_at_its_lookup_is_refused_not_guessed() -> None:
    with pytest.raises(RecoveryModelError, match="not modelled"):
        planned_move_client({"client": "ntpsec-1.2", "maxpoll": 1}, dns_fresh_s=100)


def test_rfc_reference_client_rekeys_by_name_at_the_next_poll() -> None:
    fresh = planned_move_client({"client": "rfc8915", "maxpoll": 1})
    assert (fresh["first_auth_new_earliest_s"], fresh["first_auth_new_latest_s"]) == (2, 4)
    assert fresh["ke_address_after"] == "new"
    stale = planned_move_client({"client": "rfc8915", "maxpoll": 1}, dns_fresh_s=10)
    assert stale["ke_address_after"] == "old" and stale["needs_old_ke"] is True
    either = planned_move_client({"client": "rfc8915", "maxpoll": 1}, dns_fresh_s=3)
    assert either["ke_address_after"] == "either"
