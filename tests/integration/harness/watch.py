"""Watching real clients: nftables packet counters and samplers of authenticated responses.

Counters count SYNs to TCP 4460 and NTP requests per destination address in one
namespace (the server's input, or a client's output); ValidSamples (chronyd, through
`chronyc ntpdata`) and NtpsecSamples (ntpd's peerstats) record every authenticated
response a client accepts, in time.monotonic() terms.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from typing import Self

from ansible_collections.ntsops.nts.plugins.module_utils._check import daemon_status

from .daemons import ChronyClient, NtpsecClient
from .netns import Host

# How often the samplers read the client (the measurement resolution).
SAMPLE_PERIOD = 0.05


# MJD of the Unix epoch: NTPsec's statistics files time-stamp lines as MJD + seconds of day.
MJD_UNIX_EPOCH = 40587


def _family(address: str) -> str:
    """The nftables address match for `address` (ip or ip6)."""
    return "ip6" if ":" in address else "ip"


class Counters:
    """nftables counters in one namespace: SYNs to TCP 4460 and NTP requests per destination
    address, on the way in (`hook` input: a server's namespace) or out (output: a client's)."""

    TABLE = "ntsops_planned_move"

    def __init__(self, host: Host, addresses: list[str], hook: str = "input") -> None:
        self.host = host
        self.hook = hook
        rules = []
        for address in addresses:
            match = f"{_family(address)} daddr {address}"
            rules.append(f'{match} tcp dport 4460 tcp flags syn counter comment "ke {address}"')
            rules.append(f'{match} udp dport 123 counter comment "ntp {address}"')
        script = (
            f"table inet {self.TABLE} {{\n chain {hook} {{\n  type filter hook {hook} priority -10; policy accept;\n"
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
        match = [_family(address), "daddr", address]
        if ntp:
            self.host.run(["nft", "add", "rule", "inet", self.TABLE, self.hook, *match, "udp", "dport", "123", "drop"])
        if ke:
            self.host.run(["nft", "add", "rule", "inet", self.TABLE, self.hook, *match, "tcp", "dport", "4460", "drop"])


class _Samples:
    """A thread that reads a client every SAMPLE_PERIOD and records (time.monotonic(), address)
    for every authenticated sample it accepted; the subclass's _run reads its client."""

    thread_name = "samples"

    def __init__(self) -> None:
        self.events: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        raise NotImplementedError

    def first_from(self, address: str, after: float) -> float | None:
        return next((t for t, a in list(self.events) if a == address and t > after), None)

    def longest_gap(self, start: float, end: float) -> float:
        """Longest time without a valid response within [start, end] (ends count as samples)."""
        times = [start] + [t for t, _a in list(self.events) if start < t < end] + [end]
        return max(b - a for a, b in itertools.pairwise(times))

    def last_time(self) -> float | None:
        return self.events[-1][0] if self.events else None


class ValidSamples(_Samples):
    """Every authenticated response the client accepts, seen through `chronyc ntpdata`.

    chronyc's "Total valid RX" counts responses that passed the NTP tests, which for an
    NTS source includes the authenticator; changing the source's address resets it.
    """

    thread_name = "valid-samples"

    def __init__(self, client: ChronyClient) -> None:
        super().__init__()
        self.client = client

    def _run(self) -> None:
        last_address, last_valid = "", 0
        while not self._stop.is_set():
            out = self.client.chronyc("-c", "ntpdata", check=False, timeout=3)
            now = time.monotonic()
            for row in daemon_status.chronyc_ntpdata(out):
                address, valid = row["remote_address"], int(row["total_valid_rx"])
                new = valid if address != last_address else valid - last_valid
                self.events.extend((now, address) for _n in range(max(new, 0)))
                last_address, last_valid = address, valid
            self._stop.wait(SAMPLE_PERIOD)


class NtpsecSamples(_Samples):
    """Every valid sample of the NTPsec client (peerstats lines), in time.monotonic() terms."""

    thread_name = "ntpsec-samples"

    def __init__(self, client: NtpsecClient) -> None:
        super().__init__()
        self.client = client

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


def chrony_first_address(client: ChronyClient, timeout: float = 20) -> str:
    """The address of the client's first authenticated response after its start."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for row in daemon_status.chronyc_ntpdata(client.chronyc("-c", "ntpdata", check=False, timeout=3)):
            if int(row["total_valid_rx"]) > 0:
                return row["remote_address"]
        time.sleep(SAMPLE_PERIOD)
    raise AssertionError(f"no authenticated response after the start: {client.sources()}\n{client.log_tail()}")


def ntpsec_first_address(client: NtpsecClient, seen: int = 0, timeout: float = 30) -> str:
    """The address of the first peerstats line after line `seen` (a start's or restart's first sample)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = client.peerstats.read_text().splitlines() if client.peerstats.exists() else []
        if len(lines) > seen:
            return lines[seen].split()[2]
        time.sleep(SAMPLE_PERIOD)
    raise AssertionError(f"no authenticated sample after the start:\n{client.log_tail()}")
