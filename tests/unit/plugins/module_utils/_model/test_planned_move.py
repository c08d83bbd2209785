"""Unit tests of the planned-move plan against hand-computed cases."""

from __future__ import annotations

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._model.planned_move import planned_move_plan
from ansible_collections.ntsops.nts.plugins.module_utils._model.validate import RecoveryModelError

P10 = 1024.0


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
    # rekey: stage (5 s), one poll of the slowest client with jitter (1.05 * 1024 s), switch (5 s)
    assert times["rekey"] == pytest.approx(5 + 1.05 * P10 + 5)
    assert plan["move_expected_s"] == pytest.approx(3600 + 5 + 5 + 360 + (5 + 1.05 * P10 + 5) + times["watch"])
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
