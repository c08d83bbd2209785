"""Unit tests of the added-address model: per client kind and trigger, against the rules read from source."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._model.added_address import (
    TRIGGERS,
    added_address,
)
from ansible_collections.ntsops.nts.plugins.module_utils._model.recovery import recovery_time
from ansible_collections.ntsops.nts.plugins.module_utils._model.validate import RecoveryModelError

P1 = 2.0


def one(client: Any, **kwargs: Any) -> dict[str, Any]:
    result: dict[str, Any] = added_address([client], **kwargs)["clients"][0]
    return result


def verdicts(client: Any, **kwargs: Any) -> dict[str, tuple[str, float]]:
    triggers = one(client, **kwargs)["triggers"]
    return {trigger: (answer["uses_added"], answer["chance"]) for trigger, answer in triggers.items()}


def test_every_kind_answers_every_trigger_in_order() -> None:
    result = added_address(["chrony-4.3", "chrony-4.4+", "ntpsec-1.2", "ntpd-rs-1.4"])
    for client in result["clients"]:
        assert tuple(client["triggers"]) == TRIGGERS
        for answer in client["triggers"].values():
            assert answer["source"]
            assert 0.0 <= answer["chance"] <= 1.0


def test_no_kind_takes_the_added_address_while_the_current_one_answers() -> None:
    # chrony: NSR_HandleBadSource() only for an empty register; NTPsec: NTS-KE only without
    # cookies; ntpd-rs: reset only on empty reach or no cookies.
    result = added_address(["chrony-4.3", "chrony-4.4+", "ntpsec-1.2", "ntpd-rs-1.4"])
    assert result["stuck"] == ["chrony-4.3", "chrony-4.4+", "ntpd-rs-1.4", "ntpsec-1.2"]
    assert result["moves_by_itself"] is False
    for client in result["clients"]:
        answer = client["triggers"]["current_answers"]
        assert answer["uses_added"] == "never"
        assert answer["earliest_s"] is None
        assert answer["when"].startswith("never")
    assert len(result["reasons"]) == 4


def test_chrony43_refresh_is_a_full_replacement() -> None:
    # change_source_address() refuses the address in use, so the next one replaces it;
    # then NTS-KE at the next poll and the first request the poll after: (P, 2P x 1.02].
    answer = one({"client": "chrony-4.3", "maxpoll": 1})["triggers"]["refresh"]
    assert answer["uses_added"] == "always"
    assert answer["chance"] == 1.0
    assert answer["earliest_s"] == P1
    assert answer["latest_s"] == pytest.approx(2 * P1 * 1.02)
    assert "NSR_AlreadyInUse" in answer["source"]


def test_chrony43_refresh_by_the_operator_counts_as_moving_by_itself() -> None:
    result = added_address(["chrony-4.3"], refresh=True)
    assert result["moves_by_itself"] is True
    assert result["stuck"] == []
    # ... but not for 4.4+, whose refresh keeps a current address that is still in the answer.
    assert added_address(["chrony-4.4+"], refresh=True)["stuck"] == ["chrony-4.4+"]


def test_chrony44_refresh_never_takes_the_added_address() -> None:
    answer = one("chrony-4.4+")["triggers"]["refresh"]
    assert answer["uses_added"] == "never"
    assert "still fresh" in answer["source"]


@pytest.mark.parametrize("client", ["chrony-4.3", "chrony-4.4+"])
def test_chrony_current_fails_follows_the_unplanned_timeline(client: str) -> None:
    # With the added address already in DNS the lookup at the empty register takes it:
    # the recovery model's fresh-DNS timeline (10P to 11P at steady poll).
    answer = one({"client": client, "maxpoll": 10})["triggers"]["current_fails"]
    model = recovery_time({"client": client, "maxpoll": 10}, ttl=0, update_latency=0)
    assert answer["uses_added"] == "always"
    assert answer["earliest_s"] == model["minimum_recovery_earliest_s"] == 10 * 1024
    assert answer["latest_s"] == model["minimum_recovery_latest_s"]


@pytest.mark.parametrize(
    ("order", "chance"), [("random", 0.5), ("added_first", 1.0), ("current_first", 0.0)]
)
@pytest.mark.parametrize("client", ["chrony-4.3", "chrony-4.4+", "ntpsec-1.2", "ntpd-rs-1.4"])
def test_restart_takes_the_first_address_of_the_answer(client: str, order: str, chance: float) -> None:
    answer = one(client, order=order)["triggers"]["restart"]
    assert answer["uses_added"] == "if_first"
    assert answer["chance"] == chance
    assert (answer["earliest_s"] is None) == (chance == 0)


def test_ntpsec_current_fails_is_order_dependent_and_retries_after_4096_s() -> None:
    answer = one({"client": "ntpsec-1.2", "maxpoll": 1})["triggers"]["current_fails"]
    model = recovery_time({"client": "ntpsec-1.2", "maxpoll": 1}, ttl=0, update_latency=0)
    assert answer["uses_added"] == "if_first"
    assert answer["chance"] == 0.5
    assert answer["retry_s"] == 4096
    assert answer["earliest_s"] == model["minimum_recovery_earliest_s"]
    assert "find_best_addr" in answer["source"]
    stuck = one("ntpsec-1.2", order="current_first")["triggers"]["current_fails"]
    assert stuck["chance"] == 0.0
    assert stuck["earliest_s"] is None
    assert stuck["when"].startswith("never here")


def test_an_added_aaaa_for_ipv4_clients() -> None:
    # Running NTPsec asks only the current family; chrony's replacement takes any
    # connectable address; at a restart getaddrinfo puts IPv6 first.
    added6 = {"added_family": "ipv6", "current_family": "ipv4"}
    assert verdicts("ntpsec-1.2", **added6) == {
        "current_answers": ("never", 0.0),
        "refresh": ("unavailable", 0.0),
        "current_fails": ("never", 0.0),
        "restart": ("if_first", 1.0),
        "planned_move": ("never", 0.0),
    }
    assert verdicts("chrony-4.3", **added6)["current_fails"] == ("always", 1.0)
    assert verdicts("chrony-4.3", **added6)["restart"] == ("if_first", 1.0)
    # An IPv4-only client cannot use it at all.
    v4_only = verdicts("chrony-4.3", client_families=["ipv4"], **added6)
    assert all(chance == 0.0 for _verdict, chance in v4_only.values())


def test_an_added_a_for_ipv6_clients_comes_second_at_restart() -> None:
    answer = one("chrony-4.3", added_family="ipv4", current_family="ipv6")["triggers"]["restart"]
    assert answer["chance"] == 0.0
    # The order input does not decide across families.
    again = one("chrony-4.3", added_family="ipv4", current_family="ipv6", order="added_first")
    assert again["triggers"]["restart"]["chance"] == 0.0


def test_planned_move_needs_a_chrony_server() -> None:
    chrony = one({"client": "chrony-4.3", "maxpoll": 1})["triggers"]["planned_move"]
    assert chrony["uses_added"] == "always"
    assert chrony["earliest_s"] == 2 * P1
    assert chrony["ke_address_after"] == "old"
    ntpsec = one({"client": "ntpsec-1.2", "maxpoll": 1})["triggers"]["planned_move"]
    assert ntpsec["uses_added"] == "always"
    assert ntpsec["earliest_s"] > 8 * P1  # its cookies first
    for client in ("chrony-4.3", "ntpsec-1.2"):
        answer = one(client, server="ntpsec")["triggers"]["planned_move"]
        assert answer["uses_added"] == "unavailable"
        assert answer["earliest_s"] is None


def test_moves_with_lists_the_triggers_that_can_move_the_client() -> None:
    assert one("chrony-4.3")["moves_with"] == ["refresh", "current_fails", "restart", "planned_move"]
    assert one("ntpsec-1.2", server="ntpsec")["moves_with"] == ["current_fails", "restart"]
    assert one("ntpsec-1.2", server="ntpsec", order="current_first")["moves_with"] == []
    assert "never uses the added address." in one("ntpsec-1.2", server="ntpsec", order="current_first")["summary"]


@pytest.mark.parametrize(
    ("clients", "kwargs", "needle"),
    [
        (["rfc8915"], {}, "no added-address rule for rfc8915"),
        (["chrony-9"], {}, "'chrony-9'"),
        ([], {}, "non-empty list"),
        (["chrony-4.3"], {"added_family": "ipv5"}, "'ipv5'"),
        (["chrony-4.3"], {"order": "sorted"}, "'sorted'"),
        (["chrony-4.3"], {"server": "ntpd"}, "'ntpd'"),
        (["chrony-4.3"], {"refresh": "yes"}, "'yes'"),
        (["chrony-4.3"], {"client_families": "ipv4"}, "client_families"),
        (["chrony-4.3"], {"client_families": ["ipv6"]}, "current_family 'ipv4'"),
        ([{"client": "chrony-4.3", "maxpoll": 30}], {}, "maxpoll 30"),
    ],
)
def test_bad_input_is_refused_with_the_value(clients: Any, kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(RecoveryModelError, match=needle):
        added_address(clients, **kwargs)


def test_one_mapping_counts_as_a_fleet_of_one() -> None:
    result = added_address({"client": "chrony-4.4+", "maxpoll": 6})
    assert [client["client"] for client in result["clients"]] == ["chrony-4.4+"]
    assert result["clients"][0]["poll"] == 6
    assert result["situation"]["client_families"] == ["ipv4", "ipv6"]
