# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""On-host agent: publish this host's own addresses in DNS within seconds of a change.

It watches the kernel's address events (``ip -o monitor address``) and also
reconciles every ``reconcile_interval`` seconds (for what netlink cannot show: a
NAT's public address, a lost update, a hand edit of the zone). Each reconcile calls
``ensure.ensure_records`` - the very code of the ``ntsops.nts.ddns_record`` module.

Every change is printed to stdout (the journal under systemd) with the old and new
addresses, the update time and the propagation time. The TSIG secret is only ever
read from the key file; no message contains it.

Run through the launcher the ddns_agent role installs (roles/ddns_agent/files/ntsops-ddns-agent):
``ntsops-ddns-agent --config /etc/ntsops-ddns-agent/config.json [--once] [--key-file PATH]``
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import os
import select
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ansible_collections.ntsops.nts.plugins.module_utils._dns.client import (
    DnsClient,
    DnspythonTransport,
    DnsTransport,
    Endpoint,
)
from ansible_collections.ntsops.nts.plugins.module_utils._dns.dnspython import require_dnspython
from ansible_collections.ntsops.nts.plugins.module_utils._dns.ensure import EnsureResult, ensure_records
from ansible_collections.ntsops.nts.plugins.module_utils._dns.errors import (
    DdnsError,
    DdnsInputError,
    DdnsPropagationError,
)
from ansible_collections.ntsops.nts.plugins.module_utils._dns.interfaces import (
    FamilyReading,
    Runner,
    parse_ip_addr,
    run_command,
)
from ansible_collections.ntsops.nts.plugins.module_utils._dns.policy import (
    Network,
    parse_allow_prefixes,
    partition_publishable,
)
from ansible_collections.ntsops.nts.plugins.module_utils._dns.records import (
    FAMILIES,
    RDTYPE_NAMES,
    desired_states,
    normalise_addresses,
)
from ansible_collections.ntsops.nts.plugins.module_utils._dns.tsig import load_key_file
from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError

IP_MONITOR = ("ip", "-o", "monitor", "address")
# How long a family must have no address at all before remove_absent_family deletes its
# record: three default Router Advertisement intervals (MaxRtrAdvInterval 600 s, RFC 4861
# 6.2.1), so a lost RA or a reconnect of the uplink never deletes the AAAA record.
DEFAULT_ABSENT_GRACE_S = 1800.0
MIN_RECONCILE_S = 5
MAX_RECONCILE_S = 3600


class AgentConfigError(NtsopsError):
    """The agent's configuration file is missing, unreadable or wrong."""


@dataclass(frozen=True)
class Source:
    """Where one family's addresses come from: an interface, or a command printing them."""

    interface: str | None = None
    command: tuple[str, ...] | None = None

    def describe(self) -> str:
        return f"interface {self.interface}" if self.interface else f"command {shlex.join(self.command or ())}"


@dataclass(frozen=True)
class AgentConfig:
    name: str
    ttl: int
    sources: dict[str, Source]
    key_file: str | None = None
    key_name: str | None = None
    server: str | None = None
    port: int = 53
    zone: str | None = None
    protocol: str = "tcp"
    timeout: float = 5.0
    retries: int = 2
    reconcile_interval: float = 60.0
    wait_for_propagation: bool = True
    propagation_timeout: float = 30.0
    settle_s: float = 0.05
    # Address policy (policy.py): prefixes published although not global (labs, tests).
    allow_prefixes: tuple[str, ...] = ()
    allow_temporary: bool = False
    # A family with no address at all: its record is left alone unless this is set,
    # and then deleted only after absent_grace seconds without any address.
    remove_absent_family: bool = False
    absent_grace: float = DEFAULT_ABSENT_GRACE_S

    @property
    def allowed_networks(self) -> tuple[Network, ...]:
        return parse_allow_prefixes(self.allow_prefixes)


def reconcile_interval(update_latency: float) -> int:
    """Seconds between reconciles for a budget's update latency.

    A change the address watcher cannot see (NAT, a lost update) is noticed by the
    next reconcile, so that wait counts against the update latency the budget
    assumed; half of it leaves the other half for the update and its propagation.
    """
    if update_latency <= 0:
        raise AgentConfigError(f"update_latency must be positive, not {update_latency!r}")
    return int(min(MAX_RECONCILE_S, max(MIN_RECONCILE_S, update_latency // 2)))


def _source(family: str, raw: Any) -> Source:
    if not isinstance(raw, Mapping) or len(raw) != 1 or not ({"interface", "command"} & set(raw)):
        raise AgentConfigError(f"sources.{family} must be {{'interface': NAME}} or {{'command': [ARGV...]}}")
    if "interface" in raw:
        if not isinstance(raw["interface"], str) or not raw["interface"]:
            raise AgentConfigError(f"sources.{family}.interface must be an interface name")
        return Source(interface=raw["interface"])
    command = raw["command"]
    if isinstance(command, str):
        command = shlex.split(command)
    if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
        raise AgentConfigError(f"sources.{family}.command must be a non-empty argument list")
    return Source(command=tuple(command))


def parse_config(data: Mapping[str, Any]) -> AgentConfig:
    if not isinstance(data, Mapping):
        raise AgentConfigError("the configuration must be a JSON object")
    known = set(AgentConfig.__dataclass_fields__)
    # Keys starting with "_" are notes (JSON has no comments), e.g. the "managed by Ansible" line.
    data = {k: v for k, v in data.items() if not str(k).startswith("_")}
    unknown = set(data) - known
    if unknown:
        raise AgentConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
    for required in ("name", "ttl", "sources"):
        if required not in data:
            raise AgentConfigError(f"the configuration lacks {required!r}")
    raw_sources = data["sources"]
    if not isinstance(raw_sources, Mapping) or not raw_sources or set(raw_sources) - set(FAMILIES):
        raise AgentConfigError("sources must map ipv4 and/or ipv6 to a source")
    values = dict(data)
    values["sources"] = {family: _source(family, raw) for family, raw in raw_sources.items()}
    _check_policy_settings(values)
    try:
        config = AgentConfig(**values)
    except TypeError as exc:
        raise AgentConfigError(str(exc)) from None
    if not isinstance(config.ttl, int) or config.ttl < 0:
        raise AgentConfigError(f"ttl must be a whole number of seconds, not {config.ttl!r}")
    if config.reconcile_interval <= 0:
        raise AgentConfigError("reconcile_interval must be positive")
    if config.protocol not in ("tcp", "udp"):
        raise AgentConfigError("protocol must be tcp or udp")
    return config


def _check_policy_settings(values: dict[str, Any]) -> None:
    """Validate (and normalise in ``values``) the address policy settings."""
    prefixes = values.get("allow_prefixes", [])
    if not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes):
        raise AgentConfigError('allow_prefixes must be a list of prefixes such as "2001:db8::/32"')
    try:
        parse_allow_prefixes(prefixes)
    except DdnsInputError as exc:
        raise AgentConfigError(str(exc)) from None
    values["allow_prefixes"] = tuple(prefixes)
    for flag in ("allow_temporary", "remove_absent_family", "wait_for_propagation"):
        if flag in values and not isinstance(values[flag], bool):
            raise AgentConfigError(f"{flag} must be true or false, not {values[flag]!r}")
    grace = values.get("absent_grace", DEFAULT_ABSENT_GRACE_S)
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or grace < 0:
        raise AgentConfigError(f"absent_grace must be a number of seconds, not {grace!r}")


def load_config(path: str) -> AgentConfig:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise AgentConfigError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise AgentConfigError(f"{path} is not valid JSON: {exc}") from None
    return parse_config(data)


# ------------------------------------------------------------------ address sources


def parse_command_output(text: str, family: str, allowed: Sequence[Network] = ()) -> FamilyReading:
    """Addresses printed one per line (or space separated) by an operator's command, sorted by the policy."""
    words = [w for w in text.split() if w]
    try:
        addresses = normalise_addresses(family, words)
    except DdnsInputError as exc:
        raise DdnsInputError(f"the {family} address command printed something else: {exc}") from None
    usable, refused = partition_publishable(addresses, allowed)
    return FamilyReading(usable=usable, refused=refused)


def read_addresses(
    source: Source,
    family: str,
    runner: Runner = run_command,
    allowed: Sequence[Network] = (),
    allow_temporary: bool = False,
) -> FamilyReading:
    if source.interface:
        flag = "-4" if family == "ipv4" else "-6"
        text = runner(["ip", "-o", flag, "addr", "show", "dev", source.interface])
        return parse_ip_addr(text, family, allowed, allow_temporary)
    return parse_command_output(runner(list(source.command or ())), family, allowed)


# --------------------------------------------------------------------------- agent


def _fmt_seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


@dataclass
class Agent:
    config: AgentConfig
    client: DnsClient
    server: Endpoint | None
    runner: Runner = run_command
    out: TextIO = field(default_factory=lambda: sys.stdout)
    clock: Callable[[], float] = time.monotonic
    published: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # When each family was first seen with no address at all (agent clock).
    absent_since: dict[str, float] = field(default_factory=dict)
    # The last "skipped" note per family, so it is logged when it changes only.
    skipped: dict[str, str] = field(default_factory=dict)

    def log(self, message: str) -> None:
        self.out.write(message + "\n")
        self.out.flush()

    def local_addresses(self) -> dict[str, tuple[str, ...]]:
        """Each family's addresses to publish; a family to leave alone is left out, one to remove maps to ()."""
        found: dict[str, tuple[str, ...]] = {}
        allowed = self.config.allowed_networks
        for family, source in self.config.sources.items():
            try:
                reading = read_addresses(source, family, self.runner, allowed, self.config.allow_temporary)
            except DdnsError as exc:
                self.log(f"warning: {family}: {exc}; its record is left alone")
                self.absent_since.pop(family, None)
                continue
            self._note_skipped(family, source, reading)
            if reading.usable:
                self.absent_since.pop(family, None)
                found[family] = reading.usable
                continue
            if reading.pending:
                # Renumbering: the old prefix is deprecated or the new one still tentative.
                # Replacing the record now could only empty it; keep it until one is preferred.
                self.absent_since.pop(family, None)
                self.log(
                    f"warning: {family}: no preferred address from {source.describe()} yet "
                    f"({', '.join(str(r) for r in reading.pending)}); its record is kept"
                )
                continue
            since = self.absent_since.setdefault(family, self.clock())
            absent_s = self.clock() - since
            if self.config.remove_absent_family and absent_s >= self.config.absent_grace:
                self.log(
                    f"warning: {family}: no address from {source.describe()} for {absent_s:.0f} s "
                    f"(absent_grace {self.config.absent_grace:g} s); removing its record"
                )
                found[family] = ()
                continue
            left = (
                f"; removed after {self.config.absent_grace:g} s without one"
                if self.config.remove_absent_family
                else ""
            )
            self.log(f"warning: {family}: no usable address from {source.describe()}; its record is left alone{left}")
        return found

    def _note_skipped(self, family: str, source: Source, reading: FamilyReading) -> None:
        """Log the addresses not published, with the reason, whenever that set changes (not every reconcile)."""
        skipped = reading.describe_skipped()
        if skipped and skipped != self.skipped.get(family):
            self.log(f"skipped: {family} from {source.describe()}: {skipped}")
        self.skipped[family] = skipped

    def reconcile(self, trigger: str, detected_at: float | None = None) -> bool:
        """Make DNS match the local addresses; True when DNS is known to be right afterwards."""
        local = self.local_addresses()
        if not local:
            return False
        if trigger == "address event" and local == self.published:
            return True
        wanted = desired_states("present", self.config.ttl, local.get("ipv4"), local.get("ipv6"))
        try:
            result = ensure_records(
                self.client,
                self.config.name,
                wanted,
                ttl=self.config.ttl,
                server=self.server,
                zone=self.config.zone,
                wait=self.config.wait_for_propagation,
                propagation_timeout=self.config.propagation_timeout,
            )
        except DdnsPropagationError as exc:
            self.published = dict(local)
            self._log_change(exc.result, trigger, detected_at, problem=str(exc))
            return False
        except NtsopsError as exc:
            self.log(f"error: {trigger}: {exc}")
            return False
        self.published = dict(local)
        if result.changed:
            self._log_change(result, trigger, detected_at)
        return True

    def _log_change(
        self, result: EnsureResult, trigger: str, detected_at: float | None, problem: str | None = None
    ) -> None:
        the_plan = result.plan
        parts = []
        for family in the_plan.changed_families:
            old = ",".join(the_plan.before[family].addresses) or "none"
            new = ",".join(the_plan.after[family].addresses) or "none"
            parts.append(f"{RDTYPE_NAMES[family]} {old} -> {new}")
        ready = sum(1 for s in result.servers if s.up_to_date)
        total = f"; change to served {self.clock() - detected_at:.3f} s" if detected_at is not None else ""
        self.log(
            f"{'error' if problem else 'updated'}: {the_plan.name} {'; '.join(parts)} ttl {result.ttl} "
            f"(trigger: {trigger}); update {_fmt_seconds(result.update_s)}; "
            f"propagation {_fmt_seconds(result.propagation_s)} ({ready}/{len(result.servers)} servers up to date)"
            f"{total}" + (f"; {problem}" if problem else "")
        )

    def run(self, monitor_argv: Sequence[str] = IP_MONITOR, max_runtime: float | None = None) -> int:
        """Watch address events and reconcile; returns only when the watcher dies (systemd restarts us)."""
        self.log(
            f"started: {self.config.name}, "
            + ", ".join(f"{f} from {s.describe()}" for f, s in self.config.sources.items())
            + f", ttl {self.config.ttl}, reconcile every {self.config.reconcile_interval:g} s"
            + (f", allowing {', '.join(self.config.allow_prefixes)}" if self.config.allow_prefixes else "")
            + (", temporary addresses too" if self.config.allow_temporary else "")
            + (
                f", removing a family absent for {self.config.absent_grace:g} s"
                if self.config.remove_absent_family
                else ""
            )
        )
        monitor = subprocess.Popen(list(monitor_argv), stdout=subprocess.PIPE)  # noqa: S603 - fixed argv
        try:
            return self._loop(monitor, monitor.stdout.fileno() if monitor.stdout else -1, max_runtime)
        finally:
            monitor.terminate()
            try:
                monitor.wait(timeout=5)
            except subprocess.TimeoutExpired:
                monitor.kill()

    def _loop(self, monitor: subprocess.Popen[bytes], events: int, max_runtime: float | None) -> int:
        # Any output of the watcher is an address event; lines need no parsing because
        # every reconcile reads the addresses afresh. Raw reads, so no buffer hides data from select().
        started = self.clock()
        # First reconcile at once; after a failure retry sooner (1, 2, 4 ... s, up to the interval).
        next_at, backoff = started, 1.0
        trigger = "start"
        while max_runtime is None or self.clock() - started < max_runtime:
            wait = max(0.0, next_at - self.clock())
            if max_runtime is not None:
                wait = min(wait, max(0.0, started + max_runtime - self.clock()))
            readable = select.select([events], [], [], wait)[0]
            if readable:
                if not os.read(events, 65536):
                    self.log(f"error: the address watcher exited with {monitor.wait(timeout=5)}")
                    return 1
                detected = self.clock()
                self._drain(events)
                ok = self.reconcile("address event", detected)
            elif self.clock() >= next_at:
                ok = self.reconcile(trigger)
                trigger = "periodic reconcile"
            else:
                continue
            if ok:
                next_at, backoff = self.clock() + self.config.reconcile_interval, 1.0
            else:
                next_at = self.clock() + min(backoff, self.config.reconcile_interval)
                backoff *= 2
        return 0

    def _drain(self, events: int) -> None:
        """Swallow the burst of events one change makes (a del and an add), for settle_s at most."""
        deadline = self.clock() + self.config.settle_s
        while True:
            left = deadline - self.clock()
            if left <= 0 or not select.select([events], [], [], left)[0]:
                return
            if not os.read(events, 65536):
                return


def build_agent(config: AgentConfig, transport: DnsTransport | None = None) -> Agent:
    require_dnspython()
    key = load_key_file(config.key_file, config.key_name) if config.key_file else None
    real = transport or DnspythonTransport()
    client = DnsClient(real, key=key, timeout=config.timeout, retries=config.retries, tcp=config.protocol == "tcp")
    server = None
    if config.server:
        try:
            server = Endpoint(ipaddress.ip_address(config.server).compressed, config.port)
        except ValueError:
            addresses = real.host_addresses(config.server)
            if not addresses:
                raise AgentConfigError(f"server {config.server!r} has no address") from None
            server = Endpoint(addresses[0], config.port)
    return Agent(config=config, client=client, server=server)


def cli(argv: Sequence[str], out: TextIO) -> int:
    """The agent's command line; the launcher the role installs calls this and exits with its result."""
    parser = argparse.ArgumentParser(
        prog="ntsops-ddns-agent", description="Publish this host's addresses by RFC 2136 dynamic update."
    )
    parser.add_argument("--config", required=True, help="JSON configuration file")
    parser.add_argument("--once", action="store_true", help="reconcile once and exit (0 when DNS is right)")
    parser.add_argument(
        "--key-file", help="TSIG key file in BIND format, overriding the configuration (e.g. systemd's %%d/tsig.key)"
    )
    args = parser.parse_args(list(argv))
    try:
        config = load_config(args.config)
        if args.key_file:
            config = dataclasses.replace(config, key_file=args.key_file)
        if config.key_file and os.stat(config.key_file).st_mode & 0o077:
            out.write(f"warning: {config.key_file} is readable by group or others; it should be 0600\n")
        agent = build_agent(config)
        agent.out = out
        if args.once:
            return 0 if agent.reconcile("one-shot run") else 1
        return agent.run()
    except (NtsopsError, OSError) as exc:
        out.write(f"error: {exc}\n")
        out.flush()
        return 2
