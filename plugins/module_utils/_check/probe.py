# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One exporter probe: the endpoint check of ``ntsops check --prometheus``, plus what only the exporter adds.

The per-address series are :func:`prometheus.prometheus_output` over
:func:`endpoint.check_endpoint`'s result, exactly as ``ntsops check --prometheus``
writes them. Added here: the fraction of the served certificate's lifetime left,
whether the served certificate is the one in a file (``cert_file``), and DNS
consistency: the A and AAAA records each authoritative server serves for the name,
their TTL, and whether they equal the expected addresses.

All I/O is injected: ``check`` (check_endpoint), ``dns_client`` (a _dns DnsClient
factory) and ``now``; the unit tests pass canned results.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._check import cert_files, cert_info, monitoring, prometheus
from ansible_collections.ntsops.nts.plugins.module_utils._check.endpoint import CheckOptions, check_endpoint
from ansible_collections.ntsops.nts.plugins.module_utils._check.exporter_config import (
    DnsOptions,
    DnsServer,
    Module,
    Target,
)
from ansible_collections.ntsops.nts.plugins.module_utils._dns.client import (
    DnsClient,
    DnspythonTransport,
    DnsTransport,
    Endpoint,
)
from ansible_collections.ntsops.nts.plugins.module_utils._dns.errors import DdnsError
from ansible_collections.ntsops.nts.plugins.module_utils._dns.records import read_rrsets
from ansible_collections.ntsops.nts.plugins.module_utils._dns.servers import authoritative_servers
from ansible_collections.ntsops.nts.plugins.module_utils._dns.zone import find_zone
from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError

CheckFunction = Callable[[CheckOptions], Mapping[str, Any]]
# (name, DnsOptions, timeout) -> one ServerRecords per server asked.
DnsFunction = Callable[[str, DnsOptions, float], list["ServerRecords"]]
FAMILIES = ("ipv4", "ipv6")


@dataclasses.dataclass(frozen=True)
class ServerRecords:
    """What one authoritative server serves for the name: {family: (addresses, ttl)}, or the error."""

    server: str
    records: Mapping[str, tuple[tuple[str, ...], int | None]] = dataclasses.field(default_factory=dict)
    error: str | None = None


def dns_records(
    name: str, options: DnsOptions, timeout: float, transport: DnsTransport | None = None
) -> list[ServerRecords]:
    """A and AAAA of ``name`` as each server serves them: the configured ones, else the zone's NS set.

    One try per query (no retries): a probe must end within its timeout.
    """
    client = DnsClient(transport or DnspythonTransport(), timeout=timeout, retries=0)
    servers = [(str(server), Endpoint(server.address, server.port)) for server in options.servers]
    if not servers:
        try:
            zone = find_zone(client, name, None)
            servers = [
                (str(DnsServer(endpoint.address, endpoint.port)) if endpoint.address else ns_name, endpoint)
                for ns_name, endpoint in authoritative_servers(client, zone)
            ]
        except DdnsError as exc:
            return [ServerRecords("zone", error=str(exc))]
    answers = []
    for label, endpoint in servers:
        if not endpoint.address:
            answers.append(ServerRecords(label, error="no address found for this name server"))
            continue
        try:
            states = read_rrsets(client, name, endpoint, FAMILIES)
        except DdnsError as exc:
            answers.append(ServerRecords(label, error=str(exc)))
            continue
        answers.append(ServerRecords(label, {family: (s.addresses, s.ttl) for family, s in states.items()}))
    return answers


def check_options(module: Module, target: Target) -> CheckOptions:
    return CheckOptions(
        name=target.host,
        port=target.port if target.port is not None else module.port,
        ca_path=module.ca_file,
        timeout=module.timeout,
        min_cert_days=module.min_cert_days,
        ntp_exchange=module.ntp_exchange,
    )


def thresholds(module: Module) -> monitoring.Thresholds:
    return monitoring.Thresholds(min_cert_days=module.min_cert_days, warn_cert_days=module.warn_cert_days)


def lifetime_left(cert: Mapping[str, Any], now: datetime.datetime) -> float | None:
    """Fraction of the certificate's validity period still ahead, clamped to 0-1."""
    try:
        start = datetime.datetime.fromisoformat(str(cert["not_before"]))
        end = datetime.datetime.fromisoformat(str(cert["not_after"]))
    except (KeyError, ValueError):
        return None
    total = (end - start).total_seconds()
    if total <= 0:
        return 0.0
    return min(1.0, max(0.0, (end - now).total_seconds() / total))


def _file_fingerprint(path: str) -> str | None:
    try:
        return cert_info.sha256_fingerprint(cert_files.load_certificates(path)[0])
    except NtsopsError:
        return None


def _cert_families(
    name: str, entries: Sequence[Mapping[str, Any]], module: Module, now: datetime.datetime
) -> list[prometheus.Family]:
    lifetime: list[str] = []
    matches: list[str] = []
    file_sha = _file_fingerprint(module.cert_file) if module.cert_file else None
    for entry in entries:
        cert = monitoring.section(entry, "cert")
        if not cert:
            continue
        labels = {"name": name, "address": str(entry.get("address"))}
        left = lifetime_left(cert, now)
        if left is not None:
            lifetime.append(prometheus.sample("ntsops_nts_cert_lifetime_left_ratio", labels, round(left, 6)))
        if file_sha is not None:
            matches.append(prometheus.sample("ntsops_nts_cert_matches_file", labels, cert.get("sha256") == file_sha))
    families: list[prometheus.Family] = [
        (
            "ntsops_nts_cert_lifetime_left_ratio",
            "Fraction of the served certificate's validity period still ahead (0 once expired).",
            lifetime,
        ),
        (
            "ntsops_nts_cert_matches_file",
            "1 when the served certificate is the first one in the module's cert_file, else 0.",
            matches,
        ),
    ]
    if module.cert_file:
        families.append((
            "ntsops_nts_cert_file_ok",
            "1 when the module's cert_file could be read as a PEM certificate, else 0.",
            [prometheus.sample("ntsops_nts_cert_file_ok", {"name": name}, file_sha is not None)],
        ))
    return families


def _dns_families(name: str, options: DnsOptions, answers: Sequence[ServerRecords]) -> list[prometheus.Family]:
    up: list[str] = []
    count: list[str] = []
    ttl: list[str] = []
    equal: list[str] = []
    record: list[str] = []
    expected = {"ipv4": options.expected_ipv4, "ipv6": options.expected_ipv6}
    for answer in answers:
        by_server = {"name": name, "server": answer.server}
        up.append(prometheus.sample("ntsops_dns_server_up", by_server, answer.error is None))
        if answer.error is not None:
            continue
        for family in FAMILIES:
            addresses, family_ttl = answer.records.get(family, ((), None))
            labels = {**by_server, "family": family}
            count.append(prometheus.sample("ntsops_dns_record_addresses", labels, len(addresses)))
            if family_ttl is not None and addresses:
                ttl.append(prometheus.sample("ntsops_dns_record_ttl_seconds", labels, family_ttl))
            want = expected[family]
            if want is not None:
                equal.append(prometheus.sample("ntsops_dns_record_matches_expected", labels, tuple(addresses) == want))
            record.extend(
                prometheus.sample("ntsops_dns_record", {**labels, "value": address}, 1) for address in addresses
            )
    families: list[prometheus.Family] = [
        ("ntsops_dns_server_up", "1 when the DNS server answered with authority for the name, else 0.", up),
        ("ntsops_dns_record_addresses", "Addresses in the A (ipv4) or AAAA (ipv6) RRset the server serves.", count),
        ("ntsops_dns_record_ttl_seconds", "TTL of the RRset the server serves.", ttl),
        ("ntsops_dns_record_matches_expected", "1 when the served RRset equals the expected addresses, else 0.", equal),
        ("ntsops_dns_record", "One address the server serves for the name (value always 1).", record),
    ]
    if options.max_ttl is not None:
        families.append((
            "ntsops_dns_ttl_budget_seconds",
            "The largest TTL the recovery budget allows for the name (the module's dns.max_ttl).",
            [prometheus.sample("ntsops_dns_ttl_budget_seconds", {"name": name}, options.max_ttl)],
        ))
    return families


def probe(
    module: Module,
    target: Target,
    *,
    check: CheckFunction = check_endpoint,
    dns: DnsFunction | None = dns_records,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
) -> str:
    """The exposition text of one probe; never raises NtsopsError (a failed check is a series)."""
    started = clock()
    name = target.host
    result: Mapping[str, Any] | None
    try:
        result = check(check_options(module, target))
    except NtsopsError:
        result = None
    status = monitoring.UNKNOWN if result is None else monitoring.assess(result, thresholds(module)).status
    families: list[prometheus.Family] = []
    if result is not None:
        families += _cert_families(name, result.get("addresses") or [], module, now())
    if module.dns is not None and dns is not None and not target.is_address:
        families += _dns_families(name, module.dns, dns(name, module.dns, module.timeout))
    text = prometheus.prometheus_output(name, result, status, clock() - started)
    return text + prometheus.render(families) if any(samples for _m, _h, samples in families) else text


def timed_out(module: Module, target: Target, seconds: float) -> str:
    """What a probe that ran past its probe_timeout reports: UNKNOWN and its duration, no address series."""
    return prometheus.prometheus_output(target.host, None, monitoring.UNKNOWN, seconds)
