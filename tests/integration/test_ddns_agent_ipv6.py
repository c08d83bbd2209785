"""The ddns agent's address selection on a real interface, against two real BIND 9 servers.

A veth interface in the test's network namespace gets the kinds of IPv6 address a
server meets: a stable global one, a unique local (ULA), its link-local, one outside
the allowed documentation prefix, a temporary (privacy) address the kernel derives
from a `mngtmpaddr` address, a tentative one (duplicate address detection on) and a
deprecated one (`preferred_lft 0`). The real agent process publishes; the test
checks what both servers serve: A and AAAA change in ONE update, the refused
addresses never appear, the AAAA record is kept through a renumbering window with
no preferred address (longer than the absent-family grace period), and a family
that is really gone is removed only after that grace period.

Addresses: 198.18.5.0/24 and 2001:db8:5::/48 (allowed, as a lab would), inside the namespace only.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "dns"))

from ddns_lab import PRIMARY_ADDRESS, SECONDARY_ADDRESS, AgentLab, BindPair, bind_pair

pytestmark = pytest.mark.integration

NAME = "v6.example.test"
INTERFACE = "ddns6"
ALLOWED = ["198.18.5.0/24", "2001:db8:5::/48"]
GRACE_S = 4.0
# The loopback figure is well under 2 s (plus about 1 s of DAD); the bound leaves room for a loaded host.
RENUMBER_BOUND_S = 8.0


@pytest.fixture(scope="module")
def pair() -> Iterator[BindPair]:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespace, named)")
    with bind_pair() as started:
        yield started


def served(pair: BindPair, rdtype: str) -> list[list[str]]:
    return [pair.dig(server, NAME, rdtype) for server in (PRIMARY_ADDRESS, SECONDARY_ADDRESS)]


def addresses(pair: BindPair, *selector: str) -> str:
    return pair.netns.ip("-o", "-6", "addr", "show", "dev", INTERFACE, *selector).stdout


def wait_for(predicate, timeout: float, what: str, agent: AgentLab) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout} s:\n{agent.log()}")


def test_agent_address_selection_on_a_real_interface(pair: BindPair) -> None:
    netns = pair.netns
    agent = AgentLab(pair, NAME, interface=INTERFACE)
    netns.ip("link", "add", INTERFACE, "type", "veth", "peer", "name", f"{INTERFACE}p")
    netns.ip("link", "set", f"{INTERFACE}p", "up")
    # Temporary addresses for every mngtmpaddr address (RFC 8981), as a desktop default would.
    assert netns.run(["sysctl", "-qw", f"net.ipv6.conf.{INTERFACE}.use_tempaddr=2"]).returncode == 0
    netns.ip("link", "set", INTERFACE, "up")
    netns.ip("addr", "add", "198.18.5.1/24", "dev", INTERFACE)
    for address in ("2001:db8:5:1::1/64", "fd00:5::1/64", "2001:db8:6::1/64"):
        netns.ip("-6", "addr", "add", address, "dev", INTERFACE, "nodad")
    # A large settle time, so the one ip -batch below is one reconcile (one UPDATE).
    agent.write_config(
        allow_prefixes=ALLOWED,
        reconcile_interval=1,
        settle_s=0.5,
        remove_absent_family=True,
        absent_grace=GRACE_S,
    )
    agent.start()
    try:
        agent.wait_served("A", ["198.18.5.1"])
        agent.wait_served("AAAA", ["2001:db8:5:1::1"])
        wait_for(lambda: "fe80::" in agent.log(), 10, "the link-local address was not reported", agent)
        log = agent.log()
        assert "fd00:5::1 (unique local address, ULA (RFC 4193))" in log
        assert "2001:db8:6::1 (documentation range (RFC 3849))" in log
        assert "(link-local (RFC 4291))" in log

        # Both families move at once: one UPDATE message carries A and AAAA.
        before = pair.update_count()
        batch = (
            f"address del 198.18.5.1/24 dev {INTERFACE}\n"
            f"address add 198.18.5.2/24 dev {INTERFACE}\n"
            f"address del 2001:db8:5:1::1/64 dev {INTERFACE}\n"
            f"address add 2001:db8:5:1::2/64 dev {INTERFACE} nodad\n"
        )
        assert netns.run(["ip", "-batch", "-"], input=batch, timeout=10).returncode == 0
        agent.wait_served("A", ["198.18.5.2"])
        agent.wait_served("AAAA", ["2001:db8:5:1::2"])
        assert pair.update_count() - before == 1
        line = next(li for li in agent.log().splitlines() if "198.18.5.1 -> 198.18.5.2" in li)
        assert "AAAA 2001:db8:5:1::1 -> 2001:db8:5:1::2" in line

        # Renumbering: the old prefix deprecated, no preferred address for longer than the
        # absent grace period, then the new address with DAD (tentative first).
        renumber = agent.renumber_and_measure("2001:db8:5:1::2", "2001:db8:5:2::1", hold=GRACE_S + 2, dad=True)
        print(f"renumbering, DAD on: new prefix added -> AAAA served by both servers {renumber['seconds']:.3f} s")
        assert renumber["tentative_at_add"], "the new address was never tentative: the window was not tested"
        assert set(renumber["aaaa_seen"]) <= {("2001:db8:5:1::2",), ("2001:db8:5:2::1",)}, renumber
        assert renumber["seconds"] < RENUMBER_BOUND_S
        assert served(pair, "A") == [["198.18.5.2"], ["198.18.5.2"]]
        log = agent.log()
        assert "no preferred address from interface ddns6 yet" in log
        assert "deprecated, preferred lifetime over" in log
        assert "removing its record" not in log
        assert "AAAA 2001:db8:5:1::2 -> 2001:db8:5:2::1" in log
        netns.ip("-6", "addr", "del", "2001:db8:5:1::2/64", "dev", INTERFACE)

        # A stable SLAAC-style address with the kernel's temporary address beside it.
        netns.ip(
            "-6", "addr", "add", "2001:db8:5:3::1/64", "dev", INTERFACE, "mngtmpaddr",
            "valid_lft", "3600", "preferred_lft", "3600", "nodad",
        )  # fmt: skip
        agent.wait_served("AAAA", ["2001:db8:5:2::1", "2001:db8:5:3::1"])
        wait_for(
            lambda: "temporary" in addresses(pair, "temporary") and "tentative" not in addresses(pair, "temporary"),
            10,
            "the kernel made no usable temporary address",
            agent,
        )
        temporary = addresses(pair, "temporary").split()[3].split("/")[0]
        wait_for(lambda: f"{temporary} (temporary" in agent.log(), 10, "the temporary address was not skipped", agent)
        time.sleep(1.5)  # a reconcile after the temporary address was preferred
        assert served(pair, "AAAA") == [["2001:db8:5:2::1", "2001:db8:5:3::1"]] * 2

        # IPv6 really gone (only link-local left): kept for the grace period, then removed.
        netns.ip("-6", "addr", "flush", "dev", INTERFACE, "scope", "global")
        gone_at = time.monotonic()
        time.sleep(GRACE_S / 2)
        assert served(pair, "AAAA") == [["2001:db8:5:2::1", "2001:db8:5:3::1"]] * 2
        wait_for(lambda: served(pair, "AAAA") == [[], []], GRACE_S + 10, "AAAA not removed", agent)
        removed_after = time.monotonic() - gone_at
        print(f"AAAA removed {removed_after:.1f} s after the last global IPv6 address went (grace {GRACE_S:g} s)")
        assert removed_after >= GRACE_S
        assert served(pair, "A") == [["198.18.5.2"], ["198.18.5.2"]]
    finally:
        agent.stop()
    log = agent.log()
    print(log)
    published = "\n".join(li for li in log.splitlines() if li.startswith("updated:"))
    for refused in ("fd00:5::1", "2001:db8:6::1", "fe80::", temporary):
        assert refused not in published
    assert "removing its record" in log
    assert pair.key_secret not in log
