"""Addresses added to the server's name, with real chronyd 4.3 and NTPsec 1.2.2 clients.

One chronyd NTS server answers on every address of its namespace: the address the
clients use (CURRENT), the added A (ADDED) and an AAAA (CURRENT6). The clients find it
by name through their namespace's /etc/hosts, whose order is the answer's order for
one family (glibc keeps it: both A records share as long a prefix with the client's
address). Each client has its own namespace with nftables counters on its way out,
so SYNs to TCP 4460 and NTP requests are counted per client and destination.
Predictions come from plugins/module_utils/_model/added_address.py; figures are
printed (run with -s). The client's poll is 2 s (poll 1).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._model.added_address import added_address
from harness.ca import TestCA
from harness.daemons import ChronyClient, MovableChronyServer, NtpsecClient
from harness.lab import Daemons
from harness.netns import Host, Network
from harness.watch import (
    SAMPLE_PERIOD,
    Counters,
    NtpsecSamples,
    ValidSamples,
    chrony_first_address,
    ntpsec_first_address,
)

pytestmark = pytest.mark.integration

NAME = "added.nts.test"
# This test's ranges: 198.18.7.0/24 and 2001:db8:7::/64 only.
CURRENT = "198.18.7.30"
ADDED = "198.18.7.31"
CURRENT6 = "2001:db8:7::30"
POLL = 1
INTERVAL = 2.0**POLL
# Polls watched while the current address keeps answering.
WATCH_POLLS = 12
# The samplers' resolution plus chronyc's run time, in seconds.
SLACK_S = SAMPLE_PERIOD + 0.2


@dataclass
class Rig:
    network: Network
    daemons: Daemons
    ca: TestCA
    server_host: Host
    server: MovableChronyServer
    server_counters: Counters
    hosts_made: int = 0

    def client_host(self, role: str) -> Host:
        """A client namespace with one A and one AAAA address, the name at CURRENT only."""
        self.hosts_made += 1
        n = 40 + self.hosts_made
        return self.network.add_host(role, [f"198.18.7.{n}/24", f"2001:db8:7::{n}/64"], hosts={NAME: [CURRENT]})

    def chrony(self, role: str) -> tuple[ChronyClient, Counters, ValidSamples]:
        host = self.client_host(role)
        counters = Counters(host, [CURRENT, ADDED, CURRENT6], hook="output")
        client = self.daemons.chrony_client(host, NAME, poll=POLL)
        return client, counters, ValidSamples(client).start()

    def ntpsec(self, role: str) -> tuple[NtpsecClient, Counters, NtpsecSamples]:
        host = self.client_host(role)
        counters = Counters(host, [CURRENT, ADDED, CURRENT6], hook="output")
        client = NtpsecClient(self.daemons.tmp_path / role, host, self.ca.cert_path, POLL, NAME)
        self.daemons.started.append(client)
        client.start()
        return client, counters, NtpsecSamples(client).start()


@pytest.fixture
def rig(network: Network, daemons: Daemons, test_ca: TestCA) -> Iterator[Rig]:
    server_host = network.add_host("addsrv", [f"{CURRENT}/24", f"{ADDED}/24", f"{CURRENT6}/64"])
    cert = daemons.cert_for([NAME], [CURRENT, ADDED, CURRENT6])
    server = MovableChronyServer(daemons.tmp_path / "addsrv", cert, host=server_host, addresses=[CURRENT, CURRENT6])
    daemons.started.append(server)
    server.start()
    yield Rig(network, daemons, test_ca, server_host, server, Counters(server_host, [CURRENT, ADDED, CURRENT6]))


def report(title: str, figures: dict[str, object]) -> None:
    print(f"\n[added address] {title}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


def same(a: str, b: str) -> bool:
    return ipaddress.ip_address(a) == ipaddress.ip_address(b)


def wait_samples(samples: ValidSamples | NtpsecSamples, count: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(samples.events) < count:
        time.sleep(0.1)
    assert len(samples.events) >= count, f"{what}: only {len(samples.events)} authenticated samples"


def first_from(samples: ValidSamples | NtpsecSamples, address: str, after: float) -> float | None:
    return next((t for t, a in list(samples.events) if same(a, address) and t > after), None)


def model(client: str, **kwargs: object) -> dict[str, dict[str, object]]:
    result = added_address([{"client": client, "maxpoll": POLL}], **kwargs)
    triggers: dict[str, dict[str, object]] = result["clients"][0]["triggers"]
    return triggers


def test_added_a_unused_while_current_answers_then_chronyc_refresh_moves_chrony43(rig: Rig) -> None:
    """Second A (listed FIRST) while the current address keeps answering: neither client
    sends anything to it in 12 polls; then `chronyc refresh` moves chrony 4.3 to it."""
    chrony, chrony_counts, chrony_samples = rig.chrony("addc1")
    ntpsec, ntpsec_counts, ntpsec_samples = rig.ntpsec("addn1")
    try:
        wait_samples(chrony_samples, 3, 30, "chrony")
        wait_samples(ntpsec_samples, 3, 40, f"NTPsec\n{ntpsec.log_tail()}")
        for host in (chrony.host, ntpsec.host):
            assert host is not None
            host.set_hosts({NAME: [ADDED, CURRENT]})
        added_at = time.monotonic()
        time.sleep(WATCH_POLLS * INTERVAL * 1.02)
        counts = {"chrony": chrony_counts.read(), "ntpsec": ntpsec_counts.read()}
        seen = {
            "chrony": sorted({a for t, a in chrony_samples.events if t > added_at}),
            "ntpsec": sorted({a for t, a in ntpsec_samples.events if t > added_at}),
        }
        report("current address answering", {
            "polls": WATCH_POLLS, "chrony_sources": seen["chrony"], "ntpsec_sources": seen["ntpsec"],
            "to_added": {kind: (c[f"ke {ADDED}"], c[f"ntp {ADDED}"]) for kind, c in counts.items()},
        })
        for kind in ("chrony-4.3", "ntpsec-1.2"):
            assert model(kind)["current_answers"]["uses_added"] == "never"
        for kind, c in counts.items():
            assert c[f"ke {ADDED}"] == 0 and c[f"ntp {ADDED}"] == 0, (kind, c)
            assert seen[kind] == [CURRENT], (kind, seen)

        before = chrony_counts.read()
        chrony.chronyc("refresh")
        refreshed_at = time.monotonic()
        predicted = model("chrony-4.3")["refresh"]
        deadline = refreshed_at + 4 * INTERVAL + 5
        first = None
        while first is None and time.monotonic() < deadline:
            time.sleep(SAMPLE_PERIOD)
            first = first_from(chrony_samples, ADDED, refreshed_at)
        after = chrony_counts.read()
        report("chronyc refresh (chrony 4.3)", {
            "first_auth_added_s": None if first is None else round(first - refreshed_at, 2),
            "model_s": [predicted["earliest_s"], predicted["latest_s"]],
            "ke_to_added": after[f"ke {ADDED}"] - before[f"ke {ADDED}"],
            "source": chrony.sources(),
        })
        assert first is not None, f"chronyc refresh did not move chrony 4.3; sources={chrony.sources()}"
        assert float(predicted["earliest_s"]) - 0.05 <= first - refreshed_at <= float(predicted["latest_s"]) + SLACK_S
        assert after[f"ke {ADDED}"] - before[f"ke {ADDED}"] == 1
    finally:
        chrony_samples.stop()
        ntpsec_samples.stop()


def test_current_fails_while_in_dns(rig: Rig) -> None:
    """The current address goes dark but stays in DNS beside the added one. chrony 4.3
    replaces it with the added address on the unplanned timeline; NTPsec takes the first
    answer: the added one when it is listed first, else the failed address again."""
    chrony, chrony_counts, chrony_samples = rig.chrony("addc2")
    ntpsec_a, counts_a, samples_a = rig.ntpsec("addn2")  # answer: added first
    ntpsec_c, counts_c, samples_c = rig.ntpsec("addn3")  # answer: current first
    try:
        wait_samples(chrony_samples, 3, 30, "chrony")
        wait_samples(samples_a, 3, 40, f"NTPsec\n{ntpsec_a.log_tail()}")
        wait_samples(samples_c, 3, 40, f"NTPsec\n{ntpsec_c.log_tail()}")
        assert chrony.host is not None and ntpsec_a.host is not None and ntpsec_c.host is not None
        chrony.host.set_hosts({NAME: [CURRENT, ADDED]})
        ntpsec_a.host.set_hosts({NAME: [ADDED, CURRENT]})
        ntpsec_c.host.set_hosts({NAME: [CURRENT, ADDED]})
        before = {"c": chrony_counts.read(), "a": counts_a.read(), "n": counts_c.read()}
        rig.server_counters.go_dark(CURRENT)
        failed_at = time.monotonic()
        chrony_model = model("chrony-4.3")["current_fails"]
        ntpsec_first = model("ntpsec-1.2", order="added_first")["current_fails"]
        ntpsec_second = model("ntpsec-1.2", order="current_first")["current_fails"]
        deadline = failed_at + max(float(chrony_model["latest_s"]), float(ntpsec_first["latest_s"])) + 3 * INTERVAL
        firsts: dict[str, float | None] = {"c": None, "a": None}
        while time.monotonic() < deadline and None in firsts.values():
            time.sleep(SAMPLE_PERIOD)
            firsts["c"] = firsts["c"] or first_from(chrony_samples, ADDED, failed_at)
            firsts["a"] = firsts["a"] or first_from(samples_a, ADDED, failed_at)
        time.sleep(max(0.0, deadline - time.monotonic()))
        after = {"c": chrony_counts.read(), "a": counts_a.read(), "n": counts_c.read()}
        moved = {k: None if t is None else round((t - failed_at) / INTERVAL, 2) for k, t in firsts.items()}
        delta = {k: {key: after[k][key] - before[k][key] for key in after[k]} for k in after}
        watched = round((time.monotonic() - failed_at) / INTERVAL, 1)
        report("current address fails, still in DNS", {
            "chrony43_polls": moved["c"],
            "chrony43_model_polls": [round(float(chrony_model["earliest_s"]) / INTERVAL, 2),
                                     round(float(chrony_model["latest_s"]) / INTERVAL, 2)],
            "ntpsec_added_first_polls": moved["a"],
            "ntpsec_model_polls": [round(float(ntpsec_first["earliest_s"]) / INTERVAL, 2),
                                   round(float(ntpsec_first["latest_s"]) / INTERVAL, 2)],
            "ntpsec_current_first": f"no sample from {ADDED} in {watched} polls",
            "ke_syns": {k: (d[f"ke {CURRENT}"], d[f"ke {ADDED}"]) for k, d in delta.items()},
        })
        assert firsts["c"] is not None, f"chrony 4.3 never moved: {chrony.sources()}"
        polls = (firsts["c"] - failed_at) / INTERVAL
        assert float(chrony_model["earliest_s"]) / INTERVAL - 0.05 <= polls
        assert polls <= float(chrony_model["latest_s"]) / INTERVAL + SLACK_S / INTERVAL
        assert firsts["a"] is not None, f"NTPsec (added first) never moved:\n{ntpsec_a.log_tail()}"
        polls = (firsts["a"] - failed_at) / INTERVAL
        assert float(ntpsec_first["earliest_s"]) / INTERVAL - 0.05 <= polls
        assert polls <= float(ntpsec_first["latest_s"]) / INTERVAL + SLACK_S / INTERVAL
        assert delta["a"][f"ke {ADDED}"] >= 1 and delta["a"][f"ke {CURRENT}"] == 0
        # NTPsec with the failed address first: NTS-KE went to it again, never to the added one.
        assert ntpsec_second["chance"] == 0.0
        assert first_from(samples_c, ADDED, failed_at) is None
        assert delta["n"][f"ke {CURRENT}"] >= 1 and delta["n"][f"ke {ADDED}"] == 0, delta["n"]
        assert delta["n"][f"ntp {ADDED}"] == 0
    finally:
        for samples in (chrony_samples, samples_a, samples_c):
            samples.stop()


@pytest.mark.parametrize(
    ("answer", "added_family", "order", "expected"),
    [
        ([CURRENT, ADDED], "ipv4", "current_first", CURRENT),
        ([ADDED, CURRENT], "ipv4", "added_first", ADDED),
        # The AAAA listed second: getaddrinfo's RFC 6724 sort still puts it first.
        ([CURRENT, CURRENT6], "ipv6", "current_first", CURRENT6),
    ],
    ids=["second-a-listed-second", "second-a-listed-first", "aaaa"],
)
def test_restart_takes_the_first_address_of_the_answer(
    rig: Rig, answer: list[str], added_family: str, order: str, expected: str
) -> None:
    chrony_host = rig.client_host("addc4")
    ntpsec_host = rig.client_host("addn4")
    for host in (chrony_host, ntpsec_host):
        host.set_hosts({NAME: answer})
    chrony = rig.daemons.chrony_client(chrony_host, NAME, poll=POLL)
    ntpsec = NtpsecClient(rig.daemons.tmp_path / "addn4", ntpsec_host, rig.ca.cert_path, POLL, NAME)
    rig.daemons.started.append(ntpsec)
    ntpsec.start()
    got = {"chrony-4.3": chrony_first_address(chrony), "ntpsec-1.2": ntpsec_first_address(ntpsec, 0)}
    predicted = {
        kind: model(kind, added_family=added_family, order=order)["restart"]["chance"] for kind in got
    }
    report(f"start with answer {answer}", {"took": got, "model_chance_added": predicted})
    for kind, address in got.items():
        assert same(address, expected), (kind, address)
        assert predicted[kind] == (1.0 if expected != CURRENT else 0.0)
