"""Planned move with real chronyd 4.3: NAK, Server Negotiation, the trap.

One chronyd server answers on the old address A and the new address B of its
namespace; a chronyd client knows the server by name. The move follows the plan of
plugins/module_utils/_model/planned_move.py: announce B with `ntsntpserver` (restart keeping
the cookie keys), point the name at B, then replace the cookie keys with `ntsrotate 0`,
a fresh `ntskeys` file and `chronyc rekey` (no restart). The client is watched through
`chronyc ntpdata` (every valid, i.e. authenticated, response) and nftables counters in
the server's namespace (SYNs to TCP 4460 and NTP requests, per address).

Measured figures are printed (run with -s) and checked against the recovery model.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._model.move_client import planned_move_client
from ansible_collections.ntsops.nts.plugins.module_utils._model.planned_move import planned_move_plan
from ansible_collections.ntsops.nts.plugins.module_utils._model.recovery import recovery_time
from harness.ca import TestCA
from harness.daemons import ChronyClient, MovableChronyServer, NtpsecClient
from harness.lab import Daemons
from harness.netns import Host, Network
from harness.watch import SAMPLE_PERIOD, Counters, NtpsecSamples, ValidSamples

pytestmark = pytest.mark.integration

NAME = "move.nts.test"
# The harness range (the lab and Molecule use parts of 203.0.113.0/24).
OLD = "198.51.100.30"
NEW = "198.51.100.31"
NEW_NTP = "198.51.100.32"  # the announced NTP address when it must differ from the name's
CLIENT = "198.51.100.40"


@dataclass
class Move:
    """The set-up of one planned-move test: server, client, counters, sampler."""

    network: Network
    server_host: Host
    client_host: Host
    server: MovableChronyServer
    client: ChronyClient
    counters: Counters
    samples: ValidSamples
    poll: int

    @property
    def interval(self) -> float:
        return 2.0**self.poll

    def announce(self, ntp_address: str) -> None:
        """Step 'announce': ntsntpserver, restart keeping the keys; ntsrotate 0 for the rekey."""
        self.server.extra_conf = [f"ntsntpserver {ntp_address}", "ntsrotate 0"]
        self.server.restart()

    def update_dns(self, address: str) -> None:
        self.client_host.set_hosts({NAME: [address]})

    def rekey(self) -> float:
        """Step 'rekey': fresh ntskeys + chronyc rekey; returns the moment it took effect."""
        self.server.write_fresh_keys()
        self.server.chronyc("rekey")
        return time.monotonic()


@pytest.fixture
def move_setup(network: Network, daemons: Daemons, test_ca: TestCA, request: pytest.FixtureRequest) -> Iterator[Move]:
    poll, ntsrefresh = request.param
    server_host = network.add_host("movesrv", [f"{OLD}/24", f"{NEW}/24", f"{NEW_NTP}/24"])
    client_host = network.add_host("movecli", [f"{CLIENT}/24"], hosts={NAME: [OLD]})
    cert = daemons.cert_for([NAME], [OLD, NEW, NEW_NTP])
    server = MovableChronyServer(daemons.tmp_path / "movesrv", cert, host=server_host, addresses=[OLD])
    daemons.started.append(server)
    server.start()
    counters = Counters(server_host, [OLD, NEW, NEW_NTP])
    client = daemons.chrony_client(client_host, NAME, poll=poll, extra_conf=[f"ntsrefresh {ntsrefresh}"])
    client.wait_synced(timeout=30, min_reach=3)
    samples = ValidSamples(client).start()
    try:
        yield Move(network, server_host, client_host, server, client, counters, samples, poll)
    finally:
        samples.stop()


def wait(seconds: float) -> None:
    time.sleep(seconds)


def report(title: str, figures: dict[str, object]) -> None:
    print(f"\n[planned move] {title}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


def do_move(move: Move, ntp_address: str = NEW) -> tuple[float, float, float]:
    """announce, update DNS, rekey; returns (rekey moment, first valid response from the
    announced address, longest gap in valid responses around the move)."""
    move.announce(ntp_address)
    move.update_dns(NEW)
    # A clean run of samples through the announce restart, then a random part of a
    # poll, so that the key change falls anywhere in the client's poll cycle.
    wait(2 * move.interval + random.uniform(0, move.interval))  # noqa: S311 - not for security
    before = move.counters.read()
    moved_at = move.rekey()
    deadline = moved_at + 6 * move.interval + 5
    first = None
    while time.monotonic() < deadline and first is None:
        wait(SAMPLE_PERIOD)
        first = move.samples.first_from(ntp_address, moved_at)
    assert first is not None, f"no authenticated response from {ntp_address}; events={move.samples.events[-10:]}"
    wait(move.interval)
    gap = move.samples.longest_gap(moved_at - 2 * move.interval, first + move.interval / 2)
    after = move.counters.read()
    # The client's re-key went to the OLD address (its stored NTS-KE address), not the new one.
    assert after[f"ke {OLD}"] - before[f"ke {OLD}"] == 1, (before, after)
    assert after[f"ke {NEW}"] == before[f"ke {NEW}"], (before, after)
    return moved_at, first, gap


@pytest.mark.parametrize("move_setup", [(1, 16), (0, 8)], indirect=True, ids=["poll1", "poll0"])
def test_chrony_client_moves_in_about_three_polls_and_stays_with_old_ke_alive(move_setup: Move) -> None:
    """The chosen way: NAK move, then NTP on A dark while A keeps answering NTS-KE."""
    move = move_setup
    model = planned_move_client({"client": "chrony-4.3", "maxpoll": move.poll})
    moved_at, first, gap = do_move(move)
    polls = (first - moved_at) / move.interval
    gap_polls = gap / move.interval
    report("chrony-4.3 NAK move", {
        "poll_s": move.interval, "first_auth_new_polls": round(polls, 2), "longest_gap_polls": round(gap_polls, 2),
        "model_polls": [round(x, 2) for x in model["first_auth_new_polls"]],
        "model_gap_polls": [round(x, 2) for x in model["gap_polls"]],
    })
    # Resolution: the sampler sees a response up to one period (plus chronyc's run) late.
    slack = (SAMPLE_PERIOD + 0.1) / move.interval
    low, high = model["first_auth_new_polls"]
    assert low - 0.02 <= polls <= high + slack
    assert gap_polls <= model["gap_polls"][1] + slack

    # NTP on A goes dark; A keeps answering NTS-KE. With ntsrefresh 16 s the client
    # re-keys (at A) every 8 polls: it must stay synchronised through B.
    move.counters.go_dark(OLD, ntp=True, ke=False)
    dark_at = time.monotonic()
    before = move.counters.read()
    watch_polls = 24
    wait(watch_polls * move.interval)
    after = move.counters.read()
    end = time.monotonic()
    watch_gap = move.samples.longest_gap(dark_at, end) / move.interval
    refreshes = after[f"ke {OLD}"] - before[f"ke {OLD}"]
    rows = move.client.sources()
    report("old NTP dark, old NTS-KE alive", {
        "watched_polls": watch_polls, "ke_to_old": refreshes, "ke_to_new": after[f"ke {NEW}"] - before[f"ke {NEW}"],
        "ntp_to_old": after[f"ntp {OLD}"] - before[f"ntp {OLD}"], "longest_gap_polls": round(watch_gap, 2),
        "source": rows,
    })
    assert refreshes >= 1  # its NTS-KE address is still A: that is the trap's premise
    assert after[f"ntp {OLD}"] == before[f"ntp {OLD}"]  # nothing more sent to A over NTP
    # A refresh costs one poll without a request (NTS-KE runs at that poll): <= 2 polls.
    assert watch_gap <= 2 * 1.02 + 0.2
    assert rows[0]["name"] == NEW and rows[0]["state"] == "*"


@pytest.mark.parametrize("move_setup", [(0, 8)], indirect=True)
def test_trap_old_ke_gone_strands_the_moved_client(move_setup: Move) -> None:
    """The trap: once A stops answering NTS-KE, the moved client fails its next refresh,
    re-resolves the name to the address it already uses for NTP and stays unsynchronised."""
    move = move_setup
    _moved_at, _first, _gap = do_move(move)
    move.counters.go_dark(OLD, ntp=True, ke=True)
    dark_at = time.monotonic()
    # The refresh comes within ntsrefresh (8 s); then 8 missed polls empty the register.
    watch_s = 8 + 8 * move.interval + 25
    wait(watch_s)
    last = move.samples.last_time()
    assert last is not None
    stranded_for = time.monotonic() - last
    rows = move.client.sources()
    auth = move.client.authdata()
    counts = move.counters.read()
    report("trap: old NTS-KE gone", {
        "seconds_since_last_auth": round(stranded_for, 1), "polls": round(stranded_for / move.interval, 1),
        "source": rows, "authdata": auth, "ke_syns_to_old": counts[f"ke {OLD}"],
    })
    assert last > dark_at  # it was fine until the refresh ...
    assert stranded_for >= 25  # ... and then stuck: no authenticated response for 25+ polls
    assert rows[0]["name"] == NEW  # re-resolution gave B, the NTP address it already had
    assert int(rows[0]["reach"], 8) == 0 and rows[0]["state"] != "*"


@pytest.mark.parametrize("move_setup", [(0, 8)], indirect=True)
def test_announcing_an_address_other_than_the_names_recovers_from_the_trap(move_setup: Move) -> None:
    """ntp_address_differs: ntsntpserver NEW_NTP while the name goes to NEW. When A's
    NTS-KE is gone, the failed refresh leads to a re-resolution that gets a DIFFERENT
    address, so the client re-keys at NEW and is back on NEW_NTP; the cost is the
    model's refresh_cost_s."""
    move = move_setup
    _moved_at, _first, _gap = do_move(move, ntp_address=NEW_NTP)
    move.counters.go_dark(OLD, ntp=True, ke=True)
    dark_at = time.monotonic()
    before = move.counters.read()
    deadline = dark_at + 8 + 14 * move.interval + 10
    back = None
    while time.monotonic() < deadline and back is None:
        wait(0.2)
        # a valid response after a gap of more than 3 polls: the client came back
        times = [t for t, a in list(move.samples.events) if t > dark_at and a == NEW_NTP]
        for earlier, later in itertools.pairwise(times):
            if later - earlier > 3 * move.interval:
                back = (earlier, later)
                break
    after = move.counters.read()
    plan = planned_move_plan("chrony", [{"client": "chrony-4.3", "maxpoll": move.poll}], 0, 0,
                             ntp_address_differs=True)
    model_cost = plan["old_ke"]["refresh_cost_s"]
    report("announced NTP address differs from the name's", {
        "outage_s": None if back is None else round(back[1] - back[0], 2),
        "outage_polls": None if back is None else round((back[1] - back[0]) / move.interval, 2),
        "model_refresh_cost_polls": round(model_cost / move.interval, 2),
        "ke_to_new": after[f"ke {NEW}"] - before[f"ke {NEW}"], "source": move.client.sources(),
    })
    assert back is not None, f"client did not come back; sources={move.client.sources()}"
    assert after[f"ke {NEW}"] - before[f"ke {NEW}"] >= 1  # re-keyed at the name's new address
    # From the last sample before the failed refresh to the first after: the cookieless
    # timeline (lookup at the 8th cookieless poll, authenticated 2 polls later) plus the
    # poll of the last sample.
    minimum = recovery_time({"client": "chrony-4.3", "maxpoll": move.poll, "cookies": 0}, ttl=0, update_latency=0)
    outage = back[1] - back[0]
    assert minimum["minimum_recovery_earliest_s"] <= outage <= model_cost + move.interval + 0.3


@pytest.mark.parametrize("poll", [1])
def test_ntpsec_client_ignores_the_nak_and_moves_on_its_cookie_path(
    network: Network, daemons: Daemons, test_ca: TestCA, poll: int
) -> None:
    """NTPsec 1.2.2 under the same move: it burns its cookies on NAK'd requests, then
    resolves the name (already on NEW) and re-keys there; compared with the model."""
    server_host = network.add_host("movesrv", [f"{OLD}/24", f"{NEW}/24"])
    client_host = network.add_host("movents", [f"{CLIENT}/24"], hosts={NAME: [OLD]})
    cert = daemons.cert_for([NAME], [OLD, NEW])
    server = MovableChronyServer(daemons.tmp_path / "movesrv", cert, host=server_host, addresses=[OLD])
    daemons.started.append(server)
    server.start()
    counters = Counters(server_host, [OLD, NEW])
    client = NtpsecClient(daemons.tmp_path / "ntpsec-client", client_host, test_ca.cert_path, poll, NAME)
    daemons.started.append(client)
    client.start()
    samples = NtpsecSamples(client).start()
    interval = 2.0**poll
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and len(samples.events) < 4:
            time.sleep(0.2)
        assert len(samples.events) >= 4, f"NTPsec client never got going:\n{client.log_tail()}"
        server.extra_conf = [f"ntsntpserver {NEW}", "ntsrotate 0"]
        server.restart()
        client_host.set_hosts({NAME: [NEW]})
        wait(2 * interval + random.uniform(0, interval))  # noqa: S311 - not for security
        before = counters.read()
        server.write_fresh_keys()
        server.chronyc("rekey")
        moved_at = time.monotonic()
        model = planned_move_client({"client": "ntpsec-1.2", "maxpoll": poll})
        deadline = moved_at + model["first_auth_new_latest_s"] + 10
        first = None
        while time.monotonic() < deadline and first is None:
            wait(0.1)
            first = next((t for t, a in list(samples.events) if a == NEW and t > moved_at), None)
        after = counters.read()
        last_before = max((t for t, _a in list(samples.events) if t <= moved_at), default=None)
        report("ntpsec-1.2 under the NAK move", {
            "poll_s": interval,
            "first_auth_new_polls": None if first is None else round((first - moved_at) / interval, 2),
            "longest_gap_polls": None if first is None or last_before is None
            else round((first - last_before) / interval, 2),
            "model_polls": [round(x, 2) for x in model["first_auth_new_polls"]],
            "ke_to_old": after[f"ke {OLD}"] - before[f"ke {OLD}"],
            "ke_to_new": after[f"ke {NEW}"] - before[f"ke {NEW}"],
        })
        assert first is not None, f"no valid response from {NEW}:\n{client.log_tail()}"
        polls = (first - moved_at) / interval
        low, high = model["first_auth_new_polls"]
        assert low - 0.05 <= polls <= high + (SAMPLE_PERIOD + 0.2) / interval
        # It looked the name up and re-keyed at the NEW address, never at the old one.
        assert after[f"ke {NEW}"] - before[f"ke {NEW}"] >= 1
        assert after[f"ke {OLD}"] == before[f"ke {OLD}"]
    finally:
        samples.stop()
