"""The on-host ddns agent against two real BIND 9 servers, with a real address change.

The agent (the same _dns core the module uses) runs inside the lab namespace and
watches a veth interface there. The test replaces the interface's addresses and
measures how long until BOTH authoritative servers answer with the new ones.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "dns"))

from ddns_lab import KEY_NAME, PRIMARY_ADDRESS, AgentLab, BindPair, bind_pair, key_text

pytestmark = pytest.mark.integration

# The loopback target is 2 s; the bound here leaves room for a loaded CI host.
CHANGE_BOUND_S = 5.0


@pytest.fixture(scope="module")
def pair() -> Iterator[BindPair]:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespace, named)")
    with bind_pair() as started:
        yield started


def test_agent_follows_an_address_change_and_reconciles(pair: BindPair) -> None:
    agent = AgentLab(pair, "agent.example.test")
    agent.add_interface("192.0.2.10", "2001:db8::10")
    agent.write_config(reconcile_interval=2)
    agent.start()
    try:
        agent.wait_served("A", ["192.0.2.10"])
        agent.wait_served("AAAA", ["2001:db8::10"])

        seconds = agent.change_and_measure("192.0.2.10", "192.0.2.11", "2001:db8::10", "2001:db8::11")
        print(f"address change -> both servers serve it: {seconds:.3f} s")
        assert seconds < CHANGE_BOUND_S

        # A hand edit of the zone (or a lost update) is repaired by the periodic reconcile.
        edit = pair.netns.run(
            ["nsupdate", "-k", str(pair.key_file)],
            input=(
                f"server {PRIMARY_ADDRESS} {pair.port}\n"
                "update delete agent.example.test A\n"
                "update add agent.example.test 30 A 192.0.2.77\n"
                "send\n"
            ),
            timeout=20,
        )
        assert edit.returncode == 0, edit.stderr
        assert pair.dig(PRIMARY_ADDRESS, "agent.example.test", "A") == ["192.0.2.77"]
        agent.wait_served("A", ["192.0.2.11"], timeout=15)
    finally:
        agent.stop()
    log = agent.log()
    print(log)
    assert "A 192.0.2.10 -> 192.0.2.11" in log
    assert "AAAA 2001:db8::10 -> 2001:db8::11" in log
    assert "(trigger: address event)" in log
    assert "A 192.0.2.77 -> 192.0.2.11" in log
    assert "(trigger: periodic reconcile)" in log
    assert "propagation 0." in log or "propagation 1." in log
    assert "(2/2 servers up to date)" in log
    assert pair.key_secret not in log


def test_agent_command_source_once(pair: BindPair) -> None:
    agent = AgentLab(pair, "nat.example.test")
    address_file = pair.root / "public-address"
    address_file.write_text("198.51.100.7\n")
    agent.write_config(sources={"ipv4": {"command": ["cat", str(address_file)]}})
    once = pair.netns.run(agent.argv("--once"), env=agent.env(), timeout=60)
    assert once.returncode == 0, once.stdout + once.stderr
    assert "A none -> 198.51.100.7" in once.stdout
    agent.wait_served("A", ["198.51.100.7"], timeout=5)
    again = pair.netns.run(agent.argv("--once"), env=agent.env(), timeout=60)
    assert again.returncode == 0
    assert again.stdout == ""

    address_file.write_text("not-an-address\n")
    bad = pair.netns.run(agent.argv("--once"), env=agent.env(), timeout=60)
    assert bad.returncode == 1
    assert "not an IP address" in bad.stdout
    assert pair.dig(PRIMARY_ADDRESS, "nat.example.test", "A") == ["198.51.100.7"]


def test_agent_wrong_key_logs_and_keeps_going(pair: BindPair) -> None:
    agent = AgentLab(pair, "badkey.example.test", interface="ddns1")
    agent.add_interface("192.0.2.20", "2001:db8::20")
    config = agent.write_config()
    bad_key = pair.root / "bad.key"
    bad_key.write_text(key_text(KEY_NAME, "A" * 43 + "="))
    bad_key.chmod(0o600)
    config.write_text(config.read_text().replace(str(pair.root / "agent-tsig.key"), str(bad_key)))
    agent.start()
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and agent.log().count("BADSIG") < 2:
            time.sleep(0.2)
        assert agent.process is not None and agent.process.poll() is None
    finally:
        agent.stop()
    assert agent.log().count("BADSIG") >= 2, agent.log()
    assert pair.dig(PRIMARY_ADDRESS, "badkey.example.test", "A") == []
