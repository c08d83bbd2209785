"""One exporter probe: the ntsops check series, plus certificate lifetime, cert file and DNS consistency."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._check import monitoring, probe, prometheus
from ansible_collections.ntsops.nts.plugins.module_utils._check.endpoint import CheckOptions, EndpointCheckError
from ansible_collections.ntsops.nts.plugins.module_utils._check.exporter_config import (
    parse_config,
    parse_target,
)
from ansible_collections.ntsops.nts.tests.unit.plugins.module_utils._dns.dns_fakes import (
    FakeServer,
    FakeTransport,
    zone_records,
)

NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)
ENTRY: dict[str, Any] = {
    "address": "192.0.2.10", "ok": True, "problems": [],
    "tls": {"handshake_ms": 2.0},
    "cert": {"days_left": 30, "not_before": "2026-04-01T00:00:00+00:00", "not_after": "2026-07-01T00:00:00+00:00",
             "sha256": "ab" * 32},
    "ke": {"cookies": 8, "ms": 1.5},
    "ntp": {"authenticated": True, "offset": 0.0002, "delay": 0.0004, "stratum": 2, "ms": 0.5},
}


def _values(text: str, parse: Callable[..., Any]) -> dict[tuple[str, tuple[str, ...]], float]:
    _declared, samples = parse(text)
    return {(metric, tuple(labels.values())): value for metric, labels, value in samples}


def _module(**options: Any) -> Any:
    return parse_config({"modules": {"nts": options}}).modules["nts"]


def test_the_address_series_are_those_of_ntsops_check(parse_exposition: Callable[..., Any]) -> None:
    seen: list[CheckOptions] = []

    def check(options: CheckOptions) -> Mapping[str, Any]:
        seen.append(options)
        return {"ok": True, "addresses": [ENTRY], "problems": []}

    module = _module(timeout=2, port=4461, ntp_exchange=False, min_cert_days=7)
    text = probe.probe(module, parse_target("time.example.net"), check=check, dns=None, now=lambda: NOW)
    assert seen == [CheckOptions(name="time.example.net", port=4461, timeout=2.0, min_cert_days=7,
                                 ntp_exchange=False)]
    # Everything ntsops check --prometheus writes is there, with the same values (duration aside).
    status = monitoring.assess({"addresses": [ENTRY]}, probe.thresholds(module)).status
    check_text = prometheus.prometheus_output("time.example.net", {"addresses": [ENTRY]}, status, 0.0)
    values, expected = _values(text, parse_exposition), _values(check_text, parse_exposition)
    duration = ("ntsops_nts_check_duration_seconds", ("time.example.net",))
    assert {k: v for k, v in values.items() if k in expected and k != duration} == {
        k: v for k, v in expected.items() if k != duration
    }
    # A third of the 91-day lifetime is left.
    assert values[("ntsops_nts_cert_lifetime_left_ratio", ("time.example.net", "192.0.2.10"))] == pytest.approx(
        30 / 91, abs=1e-6
    )
    assert values[("ntsops_nts_check_status", ("time.example.net",))] == monitoring.OK


def test_a_check_that_cannot_start_is_unknown_without_address_series(parse_exposition: Callable[..., Any]) -> None:
    def check(options: CheckOptions) -> Mapping[str, Any]:
        raise EndpointCheckError(f"{options.name} does not resolve")

    values = _values(probe.probe(_module(), parse_target("gone.example"), check=check, dns=None), parse_exposition)
    assert values[("ntsops_nts_check_status", ("gone.example",))] == monitoring.UNKNOWN
    assert not [key for key in values if key[0] == "ntsops_nts_up"]


def test_lifetime_left_is_clamped_and_needs_both_dates() -> None:
    cert = {"not_before": "2026-01-01T00:00:00+00:00", "not_after": "2026-01-11T00:00:00+00:00"}
    assert probe.lifetime_left(cert, datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC)) == pytest.approx(0.9)
    assert probe.lifetime_left(cert, datetime.datetime(2026, 2, 1, tzinfo=datetime.UTC)) == 0.0
    assert probe.lifetime_left(cert, datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)) == 1.0
    assert probe.lifetime_left({"not_after": "2026-01-11T00:00:00+00:00"}, NOW) is None


def test_served_certificate_is_compared_with_the_file(tmp_path: Path, parse_exposition: Callable[..., Any]) -> None:
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "time.example.net")])
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(1).not_valid_before(NOW).not_valid_after(NOW + datetime.timedelta(days=90))
        .sign(key, hashes.SHA256())
    )
    pem = tmp_path / "cert.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    same = {**ENTRY, "cert": {**ENTRY["cert"], "sha256": cert.fingerprint(hashes.SHA256()).hex()}}
    other = {**ENTRY, "address": "192.0.2.11"}

    def check(_options: CheckOptions) -> Mapping[str, Any]:
        return {"ok": True, "addresses": [same, other], "problems": []}

    values = _values(
        probe.probe(_module(cert_file=str(pem)), parse_target("time.example.net"), check=check, dns=None),
        parse_exposition,
    )
    assert values[("ntsops_nts_cert_matches_file", ("time.example.net", "192.0.2.10"))] == 1
    assert values[("ntsops_nts_cert_matches_file", ("time.example.net", "192.0.2.11"))] == 0
    assert values[("ntsops_nts_cert_file_ok", ("time.example.net",))] == 1

    missing = _values(
        probe.probe(_module(cert_file=str(tmp_path / "nope.pem")), parse_target("time.example.net"), check=check,
                    dns=None),
        parse_exposition,
    )
    assert missing[("ntsops_nts_cert_file_ok", ("time.example.net",))] == 0
    assert not [key for key in missing if key[0] == "ntsops_nts_cert_matches_file"]


NAME = "ntp.example.test"


def _dns_lab(**records: tuple[int, list[str]]) -> tuple[FakeTransport, FakeServer, FakeServer]:
    primary = FakeServer(zone_records(**records))
    secondary = FakeServer(zone_records(**records))
    return FakeTransport({"127.0.0.1": primary, "127.0.0.2": secondary}), primary, secondary


def test_dns_consistency_per_server_against_the_expected_addresses(parse_exposition: Callable[..., Any]) -> None:
    transport, _primary, secondary = _dns_lab(a=(300, ["198.51.100.1"]), a_aaaa=(300, ["2001:db8::1"]))
    # The secondary has not caught up: old address, and a TTL over the budget.
    secondary.records[(f"{NAME}.", "A")] = (3600, ["198.51.100.9"])
    module = _module(dns={"servers": ["127.0.0.1", "127.0.0.2"], "expected_ipv4": ["198.51.100.1"],
                          "expected_ipv6": ["2001:db8::1"], "max_ttl": 600})

    def dns(name: str, options: Any, timeout: float) -> list[probe.ServerRecords]:
        return probe.dns_records(name, options, timeout, transport)

    def check(_options: CheckOptions) -> Mapping[str, Any]:
        return {"ok": True, "addresses": [ENTRY], "problems": []}

    values = _values(probe.probe(module, parse_target(NAME), check=check, dns=dns), parse_exposition)
    first, second = (NAME, "127.0.0.1:53"), (NAME, "127.0.0.2:53")
    assert values[("ntsops_dns_server_up", first)] == 1
    assert values[("ntsops_dns_record_matches_expected", (*first, "ipv4"))] == 1
    assert values[("ntsops_dns_record_matches_expected", (*first, "ipv6"))] == 1
    assert values[("ntsops_dns_record_matches_expected", (*second, "ipv4"))] == 0
    assert values[("ntsops_dns_record_ttl_seconds", (*second, "ipv4"))] == 3600
    assert values[("ntsops_dns_record_ttl_seconds", (*first, "ipv6"))] == 300
    assert values[("ntsops_dns_record", (*second, "ipv4", "198.51.100.9"))] == 1
    assert values[("ntsops_dns_record_addresses", (*first, "ipv4"))] == 1
    assert values[("ntsops_dns_ttl_budget_seconds", (NAME,))] == 600


def test_dns_servers_come_from_the_ns_set_and_a_dead_one_is_down() -> None:
    transport, _primary, _secondary = _dns_lab(a=(300, ["198.51.100.1"]))
    transport.resolver = "127.0.0.1"
    del transport.servers["127.0.0.2"]

    class Dead(FakeTransport):
        def exchange(self, message: Any, address: str, port: int, timeout: float, tcp: bool) -> Any:
            if address not in self.servers:
                raise ConnectionRefusedError(111, "refused")
            return super().exchange(message, address, port, timeout, tcp)

    dead = Dead(transport.servers)
    dead.resolver = "127.0.0.1"
    dead.hosts["ns1.example.test."] = ["127.0.0.1"]  # the SOA MNAME, as the resolver gives it
    options = _module(dns=True).dns
    answers = {a.server: a for a in probe.dns_records(NAME, options, 1.0, dead)}
    assert set(answers) == {"127.0.0.1:53", "127.0.0.2:53"}
    assert answers["127.0.0.1:53"].records["ipv4"] == (("198.51.100.1",), 300)
    assert answers["127.0.0.2:53"].error is not None
    assert "refused" in answers["127.0.0.2:53"].error


def test_no_dns_part_for_an_address_target(parse_exposition: Callable[..., Any]) -> None:
    calls: list[str] = []

    def dns(name: str, options: Any, timeout: float) -> list[probe.ServerRecords]:
        calls.append(name)
        return []

    def check(_options: CheckOptions) -> Mapping[str, Any]:
        return {"ok": True, "addresses": [ENTRY], "problems": []}

    probe.probe(_module(dns=True), parse_target("192.0.2.10"), check=check, dns=dns)
    assert calls == []
