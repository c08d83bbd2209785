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

import contextlib
import itertools
import json
import random
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._model.move_client import planned_move_client
from ansible_collections.ntsops.nts.plugins.module_utils._model.planned_move import planned_move_plan
from ansible_collections.ntsops.nts.plugins.module_utils._model.recovery import recovery_time
from harness.ca import TestCA
from harness.daemons import NTPD, ChronyClient, ChronyServer, _Daemon
from harness.lab import Daemons
from harness.netns import Host, Network

pytestmark = pytest.mark.integration

NAME = "move.nts.test"
# The harness range (the lab and Molecule use parts of 203.0.113.0/24).
OLD = "198.51.100.30"
NEW = "198.51.100.31"
NEW_NTP = "198.51.100.32"  # the announced NTP address when it must differ from the name's
CLIENT = "198.51.100.40"
# How often the sampler asks the client (the measurement resolution).
SAMPLE_PERIOD = 0.05
# chrony nts_ke_server.c: DUMP_IDENTIFIER, SERVER_COOKIE_SIV (AES-SIV-CMAC-256 = 15),
# MAX_SERVER_KEYS 4 with the key's index in the 2 low bits of its id, 32-byte keys.
KEYS_HEADER = "NKS0"
COOKIE_AEAD = 15
SERVER_KEYS = 4


class MovableChronyServer(ChronyServer):
    """chronyd with no bindaddress, so one process answers on every address of its namespace."""

    def _bind_lines(self) -> list[str]:
        return []

    def write_fresh_keys(self) -> None:
        """A new ntskeys file: every cookie issued so far fails once chronyd loads it."""
        lines = [KEYS_HEADER, f"{COOKIE_AEAD} 0.0"]
        for index in range(SERVER_KEYS):
            key_id = (secrets.randbits(32) & ~(SERVER_KEYS - 1)) | index
            lines.append(f"{key_id:08X} {secrets.token_hex(32)}")
        tmp = self.dump_dir / "ntskeys.tmp"
        tmp.write_text("\n".join(lines) + "\n")
        tmp.chmod(0o600)
        tmp.replace(self.dump_dir / "ntskeys")


class Counters:
    """nftables counters in the server's namespace: SYNs to 4460 and NTP requests per address."""

    TABLE = "ntsops_planned_move"

    def __init__(self, host: Host, addresses: list[str]) -> None:
        self.host = host
        rules = []
        for address in addresses:
            rules.append(f'ip daddr {address} tcp dport 4460 tcp flags syn counter comment "ke {address}"')
            rules.append(f'ip daddr {address} udp dport 123 counter comment "ntp {address}"')
        script = (
            f"table inet {self.TABLE} {{\n chain input {{\n  type filter hook input priority -10; policy accept;\n"
            + "".join(f"  {rule}\n" for rule in rules)
            + " }\n}\n"
        )
        self.host.run(["nft", "-f", "-"], input=script)

    def read(self) -> dict[str, int]:
        """{'ke 198.51.100.30': packets, 'ntp 198.51.100.30': packets, ...}."""
        out = json.loads(self.host.run(["nft", "-j", "list", "table", "inet", self.TABLE]).stdout)
        counts: dict[str, int] = {}
        for item in out["nftables"]:
            rule = item.get("rule")
            if not rule or "comment" not in rule:
                continue
            for expr in rule["expr"]:
                if "counter" in expr:
                    counts[rule["comment"]] = int(expr["counter"]["packets"])
        return counts

    def go_dark(self, address: str, *, ntp: bool = True, ke: bool = True) -> None:
        """Drop NTP and/or NTS-KE to `address` (after the counters, which still count)."""
        if ntp:
            self.host.run(["nft", "add", "rule", "inet", self.TABLE, "input",
                           "ip", "daddr", address, "udp", "dport", "123", "drop"])
        if ke:
            self.host.run(["nft", "add", "rule", "inet", self.TABLE, "input",
                           "ip", "daddr", address, "tcp", "dport", "4460", "drop"])


@dataclass
class ValidSamples:
    """Every authenticated response the client accepts, seen through `chronyc ntpdata`.

    chronyc's "Total valid RX" counts responses that passed the NTP tests, which for an
    NTS source includes the authenticator; changing the source's address resets it.
    """

    client: ChronyClient
    events: list[tuple[float, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> ValidSamples:
        self._thread = threading.Thread(target=self._run, name="valid-samples", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        last_address, last_valid = "", 0
        while not self._stop.is_set():
            out = self.client.chronyc("-c", "ntpdata", check=False, timeout=3)
            now = time.monotonic()
            for row in out.splitlines():
                fields = row.split(",")
                if len(fields) < 30:
                    continue
                address, valid = fields[0], int(fields[-2])
                new = valid if address != last_address else valid - last_valid
                self.events.extend((now, address) for _n in range(max(new, 0)))
                last_address, last_valid = address, valid
            self._stop.wait(SAMPLE_PERIOD)

    def first_from(self, address: str, after: float) -> float | None:
        return next((t for t, a in list(self.events) if a == address and t > after), None)

    def longest_gap(self, start: float, end: float) -> float:
        """Longest time without a valid response within [start, end] (ends count as samples)."""
        times = [start] + [t for t, _a in list(self.events) if start < t < end] + [end]
        return max(b - a for a, b in itertools.pairwise(times))

    def last_time(self) -> float | None:
        return self.events[-1][0] if self.events else None


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


# MJD of the Unix epoch: NTPsec's statistics files time-stamp lines as MJD + seconds of day.
MJD_UNIX_EPOCH = 40587


class NtpsecClient(_Daemon):
    """NTPsec 1.2.2 ntpd as an NTS client of NAME, alone in its namespace (it binds every
    address). Its peerstats file gets one line per valid (authenticated) sample."""

    name = "ntpd-client"

    def __init__(self, workdir: Path, host: Host, ca_path: Path, poll: int) -> None:
        super().__init__(workdir, host)
        self.conf_path = self.workdir / "ntp.conf"
        self.log_path = self.workdir / "ntpd.log"
        self.stats_dir = self.workdir / "stats"
        self.ca_path = ca_path
        self.poll = poll

    @property
    def peerstats(self) -> Path:
        return self.stats_dir / "peerstats"

    def _argv(self) -> list[str]:
        return [str(NTPD), "-n", "-c", str(self.conf_path), "-p", str(self.workdir / "ntpd.pid"),
                "-l", str(self.log_path)]

    def start(self) -> NtpsecClient:
        self.stats_dir.mkdir(exist_ok=True)
        self.conf_path.write_text("\n".join([
            "disable kernel",
            f"driftfile {self.workdir / 'drift'}",
            f"statsdir {self.stats_dir}/",
            "statistics peerstats",
            "filegen peerstats file peerstats type none enable",
            f"nts ca {self.ca_path}",
            f"server {NAME} nts iburst minpoll {self.poll} maxpoll {self.poll}",
            "restrict default nomodify noquery",
            "restrict 127.0.0.1",
            "",
        ]))
        self._spawn()
        self._register()
        return self

    def log_tail(self, lines: int = 40) -> str:
        text = super().log_tail(lines)
        with contextlib.suppress(OSError):
            text += "\n" + "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return text


@dataclass
class NtpsecSamples:
    """Every valid sample of the NTPsec client (peerstats lines), in time.monotonic() terms."""

    client: NtpsecClient
    events: list[tuple[float, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> NtpsecSamples:
        self._thread = threading.Thread(target=self._run, name="ntpsec-samples", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        seen = 0
        while not self._stop.is_set():
            wall_minus_mono = time.time() - time.monotonic()
            lines: list[str] = []
            with contextlib.suppress(OSError):
                lines = self.client.peerstats.read_text().splitlines()
            for line in lines[seen:]:
                fields = line.split()
                if len(fields) >= 3:
                    unix = (int(fields[0]) - MJD_UNIX_EPOCH) * 86400 + float(fields[1])
                    self.events.append((unix - wall_minus_mono, fields[2]))
            seen = len(lines)
            self._stop.wait(SAMPLE_PERIOD)


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
    client = NtpsecClient(daemons.tmp_path / "ntpsec-client", client_host, test_ca.cert_path, poll)
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
