"""Unit tests of the planned-move model (issue 8) against hand-computed cases."""

from __future__ import annotations

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._model.planned_move import planned_move_plan
from ansible_collections.ntsops.nts.plugins.module_utils._model.recovery import (
    RecoveryModelError,
    planned_move_client,
    recovery_time,
)

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
    # nts-facts 2, "Planned move, measured": first authenticated response from the new
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


FLEET = [
    {"client": "chrony-4.3", "maxpoll": 10, "count": 900},
    {"client": "ntpsec-1.2", "maxpoll": 10, "count": 100},
]


def test_chrony_server_plan_steps_and_times() -> None:
    plan = planned_move_plan("chrony", FLEET, 300, 60, old_ttl=3600, restart_s=5)
    assert plan["path"] == "negotiation"
    assert [s["step"] for s in plan["steps"]] == [
        "lower_ttl", "add_address", "announce", "update_dns", "rekey", "watch",
        "close_old_ntp", "keep_old_ke", "retire_old", "restore_ttl",
    ]
    times = {s["step"]: s["expected_s"] for s in plan["steps"]}
    assert times["lower_ttl"] == 3600  # one old TTL
    assert times["update_dns"] == 360  # update latency + TTL
    # NTPsec is the slowest: ten intervals of 1024 * (1 + 255/4096) + 2 s.
    assert times["watch"] == pytest.approx(10 * (P10 * (1 + 255 / 4096) + 2))
    assert times["keep_old_ke"] is None and times["retire_old"] is None
    assert plan["move_expected_s"] == pytest.approx(3600 + 5 + 5 + 360 + 5 + times["watch"])
    assert plan["ke_burst"] == {"window_s": [P10, pytest.approx(2 * P10 * 1.02)], "clients": 900}
    assert plan["old_ke"]["required"] is True
    assert "restarted" in plan["old_ke"]["until"]
    assert plan["ttl_budget_s"] == 8 * 1024 - 60
    assert plan["ttl_within_budget"] is True
    kinds = {c["client"]: c["path"] for c in plan["clients"]}
    assert kinds == {"chrony-4.3": "nak", "ntpsec-1.2": "cookies"}


def test_announcing_a_different_ntp_address_frees_the_old_one_at_a_price() -> None:
    # At ntsrefresh the moved client has no cookie from its first poll on: misses at
    # polls 1..8, lookup at S_8 = 7 P, recovery at S_10 = 9 P; latest with u = 1.02 P
    # and 1.02 P intervals: 10 * 1.02 P.
    plan = planned_move_plan("chrony", [{"client": "chrony-4.3", "maxpoll": 10}], 300, 60, ntp_address_differs=True)
    assert plan["old_ke"]["required"] is False
    assert plan["old_ke"]["refresh_cost_s"] == pytest.approx(10 * P10 * 1.02)
    retire = next(s for s in plan["steps"] if s["step"] == "retire_old")
    assert retire["expected_s"] == 5


def test_ntpsec_server_takes_the_dns_only_path() -> None:
    mix = {"expected_clients": 1000, "client_mix": [
        {"client": "chrony-4.3", "maxpoll": 10, "share": 0.9}, {"client": "ntpsec-1.2", "maxpoll": 10, "share": 0.1}]}
    plan = planned_move_plan("ntpsec", mix, 300, 60)
    assert plan["path"] == "dns_only"
    steps = [s["step"] for s in plan["steps"]]
    assert "announce" not in steps and "rekey" not in steps and "old_dark" in steps
    # DNS is fresh when the old address goes dark: chrony's minimum, 11 * 1.02 P at the latest.
    assert plan["watch_s"] == pytest.approx(11 * P10 * 1.02)
    assert plan["old_ke"]["required"] is False
    assert [c["count"] for c in plan["clients"]] == pytest.approx([900, 100])
    assert plan["ke_burst"]["window_s"] is None


def test_plan_with_ttl_over_budget_says_so() -> None:
    plan = planned_move_plan("chrony", [{"client": "chrony-4.3", "maxpoll": 6}], 3600, 60)
    assert plan["ttl_budget_s"] == 8 * 64 - 60
    assert plan["ttl_within_budget"] is False


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("openntpd", FLEET, 300, 60), {}, "server must be one of"),
        (("chrony", FLEET, -1, 60), {}, "ttl"),
        (("chrony", [], 300, 60), {}, "fleet"),
        (("chrony", "chrony-4.3", 300, 60), {}, "fleet"),
        (("chrony", [{"client": "ntpd-4"}], 300, 60), {}, "unknown client"),
        (("chrony", FLEET, 300, 60), {"ntp_address_differs": "yes"}, "ntp_address_differs"),
        (("chrony", FLEET, 300, 60), {"restart_s": float("nan")}, "restart_s"),
    ],
)
def test_bad_input_is_a_clear_error(args: tuple, kwargs: dict, message: str) -> None:
    with pytest.raises(RecoveryModelError, match=message):
        planned_move_plan(*args, **kwargs)
