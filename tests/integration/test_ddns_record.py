"""ntsops.nts.ddns_record driven through Ansible against two real BIND 9 servers.

The primary and the secondary (NOTIFY + IXFR) run inside a namespace this module
creates; `ansible localhost -m ntsops.nts.ddns_record` runs inside it too. Every
test uses its own owner name, so the tests do not depend on each other's records.
Whether an UPDATE reached the primary is read from named's statistics channel.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "dns"))

from ansible_collections.ntsops.nts.plugins.module_utils._model.recovery import max_ttl
from ddns_lab import (
    KEY_NAME,
    PROXY_ADDRESS,
    BindPair,
    bind_pair,
    run_ddns_record,
)

pytestmark = pytest.mark.integration

WRONG_SECRET = "c2VjcmV0LXRoYXQtaXMtd3Jvbmctc2VjcmV0LXdyb25nIQ=="
BUDGET = {"clients": [{"client": "chrony-4.3", "maxpoll": 4}], "update_latency": 2}
# What the recovery model allows for BUDGET (126 s with the model of this writing).
BUDGET_MAX_TTL = max_ttl(BUDGET["clients"], BUDGET["update_latency"])


@pytest.fixture(scope="module")
def pair() -> Iterator[BindPair]:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespace, named)")
    with bind_pair() as started:
        yield started


def args(pair: BindPair, name: str, **extra: Any) -> dict[str, Any]:
    base = {
        "name": f"{name}.example.test",
        "server": pair.primary_address,
        "port": pair.port,
        "key_file": str(pair.key_file),
        "timeout": 2,
        "propagation_timeout": 10,
    }
    base.update(extra)
    return base


def served(pair: BindPair, name: str, rdtype: str) -> tuple[list[str], list[str]]:
    fqdn = f"{name}.example.test"
    return pair.dig(pair.primary_address, fqdn, rdtype), pair.dig(pair.secondary_address, fqdn, rdtype)


def test_create_change_noop_and_propagation(pair: BindPair) -> None:
    before = pair.update_count()
    created = run_ddns_record(pair.netns, args(pair, "create", ipv4=["192.0.2.1"], ttl=60))
    assert not created.failed, created.stdout
    assert created.result["changed"] is True
    assert created.result["records"]["before"]["ipv4"] == {"addresses": [], "ttl": None}
    assert created.result["records"]["after"]["ipv4"] == {"addresses": ["192.0.2.1"], "ttl": 60}
    assert [s["up_to_date"] for s in created.result["servers"]] == [True, True]
    assert {s["address"] for s in created.result["servers"]} == {pair.primary_address, pair.secondary_address}
    assert created.result["propagation_s"] is not None
    assert served(pair, "create", "A") == (["192.0.2.1"], ["192.0.2.1"])
    assert pair.update_count() == before + 1

    changed = run_ddns_record(pair.netns, args(pair, "create", ipv4=["192.0.2.2", "192.0.2.3"], ttl=60))
    assert changed.result["changed"] is True, changed.stdout
    assert changed.result["records"]["before"]["ipv4"]["addresses"] == ["192.0.2.1"]
    assert served(pair, "create", "A") == (["192.0.2.2", "192.0.2.3"], ["192.0.2.2", "192.0.2.3"])
    assert pair.update_count() == before + 2

    # Same addresses in another order and spelling: nothing to do, and no UPDATE reaches named.
    noop = run_ddns_record(pair.netns, args(pair, "create", ipv4=["192.0.2.3", "192.0.2.2"], ttl=60))
    assert not noop.failed, noop.stdout
    assert noop.result["changed"] is False
    assert noop.result["update_s"] is None
    assert pair.update_count() == before + 2

    # A TTL change alone is a change.
    ttl_only = run_ddns_record(pair.netns, args(pair, "create", ipv4=["192.0.2.2", "192.0.2.3"], ttl=30))
    assert ttl_only.result["changed"] is True
    assert ttl_only.result["records"]["after"]["ipv4"]["ttl"] == 30
    assert pair.update_count() == before + 3


def test_zone_and_primary_found_from_soa_without_server(pair: BindPair) -> None:
    # No server, port or zone: the SOA comes from the system resolver (the lab's
    # resolv.conf), the update goes to the SOA MNAME ns1.example.test on port 53.
    bare = {"name": "discover.example.test", "key_file": str(pair.key_file), "ipv4": ["192.0.2.95"], "ttl": 60}
    run = run_ddns_record(pair.netns, bare)
    assert not run.failed, run.stdout
    assert run.result["zone"] == "example.test."
    assert run.result["primary"] == f"{pair.primary_address}#53"
    assert [s["up_to_date"] for s in run.result["servers"]] == [True, True]
    assert served(pair, "discover", "A") == (["192.0.2.95"], ["192.0.2.95"])


def test_check_mode_sends_nothing_then_real_runs(pair: BindPair) -> None:
    wanted = args(pair, "check", ipv4=["192.0.2.10"], ttl=60)
    before = pair.update_count()
    first_check = run_ddns_record(pair.netns, wanted, check=True)
    assert first_check.result["changed"] is True, first_check.stdout
    assert pair.update_count() == before
    assert served(pair, "check", "A") == ([], [])
    first_real = run_ddns_record(pair.netns, wanted)
    assert first_real.result["changed"] is True
    second_check = run_ddns_record(pair.netns, wanted, check=True)
    assert second_check.result["changed"] is False
    second_real = run_ddns_record(pair.netns, wanted)
    assert second_real.result["changed"] is False
    assert pair.update_count() == before + 1


def test_diff_shows_records_and_ttl(pair: BindPair) -> None:
    assert not run_ddns_record(pair.netns, args(pair, "diff", ipv4=["192.0.2.20"], ttl=300)).failed
    run = run_ddns_record(pair.netns, args(pair, "diff", ipv4=["192.0.2.21"], ttl=60), diff=True)
    assert run.result["changed"] is True
    # Ansible prints the diff (and drops it from the displayed result).
    assert "-diff.example.test. 300 IN A 192.0.2.20" in run.stdout
    assert "+diff.example.test. 60 IN A 192.0.2.21" in run.stdout


def test_a_and_aaaa_change_in_one_update_then_absent(pair: BindPair) -> None:
    before = pair.update_count()
    both = run_ddns_record(pair.netns, args(pair, "dual", ipv4=["192.0.2.30"], ipv6=["2001:DB8::0:30"], ttl=60))
    assert both.result["changed"] is True, both.stdout
    assert pair.update_count() == before + 1
    assert served(pair, "dual", "AAAA") == (["2001:db8::30"], ["2001:db8::30"])
    moved = run_ddns_record(pair.netns, args(pair, "dual", ipv4=["192.0.2.31"], ipv6=["2001:db8::31"], ttl=60))
    assert moved.result["records"]["after"]["ipv6"]["addresses"] == ["2001:db8::31"]
    assert pair.update_count() == before + 2
    assert served(pair, "dual", "A") == (["192.0.2.31"], ["192.0.2.31"])

    removed = run_ddns_record(pair.netns, args(pair, "dual", state="absent", ipv6=[]))
    assert removed.result["changed"] is True, removed.stdout
    assert served(pair, "dual", "AAAA") == ([], [])
    assert served(pair, "dual", "A") == (["192.0.2.31"], ["192.0.2.31"])
    again = run_ddns_record(pair.netns, args(pair, "dual", state="absent", ipv6=[]))
    assert again.result["changed"] is False
    assert pair.update_count() == before + 3


def test_concurrent_writer_is_caught_not_overwritten(pair: BindPair) -> None:
    assert not run_ddns_record(pair.netns, args(pair, "race", ipv4=["192.0.2.40"], ttl=60)).failed
    proxy = pair.netns.popen(
        [
            sys.executable,
            str(Path(__file__).resolve().parent / "dns" / "racing_proxy.py"),
            PROXY_ADDRESS,
            str(pair.port),
            pair.primary_address,
            str(pair.port),
            str(pair.key_file),
            "60",
        ]
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not pair.dig(PROXY_ADDRESS, "example.test", "SOA"):
            time.sleep(0.1)
        run = run_ddns_record(pair.netns, args(pair, "race", server=PROXY_ADDRESS, ipv4=["192.0.2.41"], ttl=60))
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)
    assert run.failed, run.stdout
    assert "changed since they were read" in run.result["msg"]
    assert "192.0.2.99" in run.result["msg"]
    # The other writer's record stands; ours did not overwrite it.
    assert pair.dig(pair.primary_address, "race.example.test", "A") == ["192.0.2.99"]


def test_wrong_key_is_named(pair: BindPair) -> None:
    before = pair.update_count()
    wrong = args(pair, "wrongkey", ipv4=["192.0.2.50"], ttl=60, key_name=KEY_NAME, key_secret=WRONG_SECRET)
    del wrong["key_file"]
    run = run_ddns_record(pair.netns, wrong)
    assert run.failed
    assert "BADSIG" in run.result["msg"]
    assert WRONG_SECRET not in run.stdout + run.stderr
    # Reads from the primary are signed, so a wrong key fails before any UPDATE is sent.
    assert pair.update_count() == before
    in_check_mode = run_ddns_record(pair.netns, wrong, check=True)
    assert "BADSIG" in in_check_mode.result["msg"]
    unknown = run_ddns_record(pair.netns, {**wrong, "key_name": "nobody"})
    assert "BADKEY" in unknown.result["msg"]
    assert served(pair, "wrongkey", "A") == ([], [])


def test_refused_by_update_policy(pair: BindPair) -> None:
    run = run_ddns_record(pair.netns, args(pair, "locked-name", ipv4=["192.0.2.60"], ttl=60))
    assert run.failed
    assert "REFUSED" in run.result["msg"]


def test_unknown_zone(pair: BindPair) -> None:
    run = run_ddns_record(pair.netns, {**args(pair, "x", ipv4=["192.0.2.70"], ttl=60), "name": "ntp.nowhere.test"})
    assert run.failed
    assert "serves no zone containing ntp.nowhere.test." in run.result["msg"]


def test_server_down_fails_in_bounded_time(pair: BindPair) -> None:
    down = {**args(pair, "down", ipv4=["192.0.2.80"], ttl=60), "port": 5399, "timeout": 1, "retries": 1}
    udp = run_ddns_record(pair.netns, {**down, "protocol": "udp"})
    assert udp.failed
    assert "no answer from 127.53.0.1#5399 within 1 s (2 tries)" in udp.result["msg"]
    tcp = run_ddns_record(pair.netns, down)
    assert "refused or closed the connection" in tcp.result["msg"]
    # Two tries of 1 s plus Ansible's own start-up, far from a hang.
    assert udp.seconds < 30


def test_ttl_over_budget_refused(pair: BindPair) -> None:
    before = pair.update_count()
    too_long = BUDGET_MAX_TTL + 100
    run = run_ddns_record(pair.netns, args(pair, "budget", ipv4=["192.0.2.90"], ttl=too_long, budget=BUDGET))
    assert run.failed
    assert f"ttl {too_long} s is above {BUDGET_MAX_TTL} s" in run.result["msg"]
    assert pair.update_count() == before
    derived = run_ddns_record(pair.netns, args(pair, "budget", ipv4=["192.0.2.90"], budget=BUDGET))
    assert derived.result["ttl"] == BUDGET_MAX_TTL, derived.stdout
    assert derived.result["budget_max_ttl"] == BUDGET_MAX_TTL
    assert (
        pair.netns.run(
            ["dig", "+norec", "-p", str(pair.port), f"@{pair.secondary_address}", "budget.example.test", "A"]
        ).stdout.count(f"\t{BUDGET_MAX_TTL}\tIN\tA")
        == 1
    )
    allowed = run_ddns_record(
        pair.netns, args(pair, "budget", ipv4=["192.0.2.90"], ttl=too_long, budget=BUDGET, allow_ttl_over_budget=True)
    )
    assert allowed.result["changed"] is True
    assert f"ttl {too_long} s is above {BUDGET_MAX_TTL} s" in allowed.stderr  # the warning


def test_non_global_addresses_are_refused_unless_their_prefix_is_allowed(pair: BindPair) -> None:
    before = pair.update_count()
    for ipv4, ipv6, reason in (
        (["198.18.5.9"], None, "198.18.5.9 (benchmarking (RFC 2544))"),
        (None, ["fe80::9"], "fe80::9 (link-local (RFC 4291))"),
        (None, ["fd00:5::9"], "fd00:5::9 (unique local address, ULA (RFC 4193))"),
        (None, ["2001:db8:5::9"], "2001:db8:5::9 (documentation range (RFC 3849))"),
    ):
        extra = {k: v for k, v in (("ipv4", ipv4), ("ipv6", ipv6)) if v is not None}
        run = run_ddns_record(pair.netns, args(pair, "policy", ttl=60, allow_prefixes=[], **extra))
        assert run.failed, run.stdout
        assert reason in run.result["msg"]
        assert "refusing to publish" in run.result["msg"]
    assert pair.update_count() == before
    assert served(pair, "policy", "AAAA") == ([], [])
    allowed = run_ddns_record(
        pair.netns,
        args(pair, "policy", ttl=60, ipv4=["198.18.5.9"], ipv6=["2001:db8:5::9"],
             allow_prefixes=["198.18.5.0/24", "2001:db8:5::/48"]),
    )
    assert allowed.result["changed"] is True, allowed.stdout
    assert served(pair, "policy", "AAAA") == (["2001:db8:5::9"], ["2001:db8:5::9"])
    # A bad prefix is an input error, not a traceback.
    bad = run_ddns_record(
        pair.netns, args(pair, "policy", ttl=60, ipv4=["198.18.5.9"], allow_prefixes=["198.18.5.9/24"])
    )
    assert bad.failed
    assert "is not a network prefix" in bad.result["msg"]
