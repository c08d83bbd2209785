"""The exporter's configuration and probe targets: what is accepted, what is refused and how it says so."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._check.exporter_config import (
    ExporterConfigError,
    TargetError,
    parse_config,
    parse_listen,
    parse_target,
)


def _config(**top: Any) -> dict[str, Any]:
    return {"modules": {"nts": {"timeout": 2}}, **top}


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("time.example.net", "time.example.net", None),
        ("Time.Example.NET.", "time.example.net", None),
        ("time.example.net:4461", "time.example.net", 4461),
        ("192.0.2.1", "192.0.2.1", None),
        ("192.0.2.1:4460", "192.0.2.1", 4460),
        ("2001:db8::1", "2001:db8::1", None),
        ("[2001:db8:0::1]:4460", "2001:db8::1", 4460),
        ("[::1]", "::1", None),
    ],
)
def test_targets_are_names_or_addresses_with_an_optional_port(text: str, host: str, port: int | None) -> None:
    target = parse_target(text)
    assert (target.host, target.port) == (host, port)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "host name or IP address"),
        ("a b", "spaces"),
        ("time.example.net:0", "port must be 1-65535"),
        ("time.example.net:http", "port must be 1-65535"),
        ("-bad.example", "neither a host name nor an IP address"),
        ("a..b", "neither a host name nor an IP address"),
        ("http://x/", "port must be 1-65535"),
        ("1.2.3.999", "neither a host name nor an IP address"),
        ("[2001:db8::1", "bracketed IPv6"),
        ("x" * 64 + ".example", "neither a host name"),
        ("t\u00e4st.example", "printable ASCII"),
    ],
)
def test_bad_targets_are_refused_with_the_reason(text: str, words: str) -> None:
    with pytest.raises(TargetError, match=words):
        parse_target(text)


def test_defaults_and_module_values() -> None:
    config = parse_config({"modules": {"nts": None, "fast": {"timeout": 1, "ntp_exchange": False, "port": 4461}}})
    assert config.listen == "127.0.0.1:9816"
    assert config.max_concurrent_probes == 4
    assert config.min_interval == 15
    assert config.allowed_targets is None
    nts, fast = config.modules["nts"], config.modules["fast"]
    assert (nts.port, nts.timeout, nts.probe_timeout, nts.ntp_exchange, nts.dns) == (4460, 3.0, 10.0, True, None)
    assert (fast.port, fast.timeout, fast.ntp_exchange) == (4461, 1.0, False)


def test_dns_options_are_normalised() -> None:
    config = parse_config({"modules": {"nts": {"dns": {
        "servers": ["198.51.100.53", "[2001:db8::53]:5353"],
        "expected_ipv4": ["198.51.100.2", "198.51.100.1", "198.51.100.1"],
        "expected_ipv6": ["2001:DB8::0:1"],
        "max_ttl": 300,
    }}}})
    dns = config.modules["nts"].dns
    assert dns is not None
    assert [str(s) for s in dns.servers] == ["198.51.100.53:53", "[2001:db8::53]:5353"]
    assert dns.expected_ipv4 == ("198.51.100.1", "198.51.100.2")
    assert dns.expected_ipv6 == ("2001:db8::1",)
    assert dns.max_ttl == 300


@pytest.mark.parametrize(
    ("data", "path", "words"),
    [
        ({}, "modules", "at least one module"),
        ({"modules": []}, "modules", "must be a mapping"),
        (_config(colour="red"), "colour", "unknown key"),
        ({"modules": {"nts": {"timeout": "fast"}}}, "modules.nts.timeout", "must be a number above 0"),
        ({"modules": {"nts": {"timeout": 0}}}, "modules.nts.timeout", "must be a number above 0"),
        ({"modules": {"nts": {"timeout": 5, "probe_timeout": 2}}}, "modules.nts.probe_timeout", "not be below"),
        ({"modules": {"nts": {"port": 70000}}}, "modules.nts.port", "1-65535"),
        ({"modules": {"nts": {"ntp_exchange": "yes"}}}, "modules.nts.ntp_exchange", "true or false"),
        ({"modules": {"nts": {"min_cert_days": 40, "warn_cert_days": 20}}}, "modules.nts.warn_cert_days", "below"),
        ({"modules": {"nts": {"dns": {"servers": ["ns1.example"]}}}}, "modules.nts.dns.servers[0]", "IP address"),
        ({"modules": {"nts": {"dns": {"expected_ipv4": ["2001:db8::1"]}}}}, "modules.nts.dns.expected_ipv4[0]",
         "not an IPv4"),
        ({"modules": {"bad name": {}}}, "modules.bad name", "module name"),
        (_config(listen="localhost:80"), "listen", "ADDRESS:PORT"),
        (_config(listen="127.0.0.1"), "listen", "ADDRESS:PORT"),
        (_config(max_concurrent_probes=0), "max_concurrent_probes", "1-256"),
        (_config(min_interval=-1), "min_interval", "0-86400"),
        (_config(allowed_targets="x"), "allowed_targets", "must be a list"),
        (_config(allowed_targets=["ok.example", "bad name"]), "allowed_targets[1]", "spaces"),
        (_config(allowed_targets=["10.0.0.0/33"]), "allowed_targets[0]", "not a network"),
        (_config(chrony_serverstats={"command": "chronyc serverstats"}), "chrony_serverstats.command", "argv"),
    ],
)
def test_config_errors_name_the_key(data: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(ExporterConfigError, match=words) as caught:
        parse_config(data)
    assert caught.value.path == path


def test_allowed_targets_limit_names_addresses_networks_and_ports() -> None:
    config = parse_config(_config(allowed_targets=[
        "time.example.net", "other.example.net:4461", "198.51.100.0/24", "2001:db8::10",
    ]))
    nts = config.modules["nts"]

    def allowed(text: str) -> bool:
        return config.allows(parse_target(text), nts)

    assert allowed("time.example.net")
    assert allowed("TIME.example.net.")
    assert allowed("time.example.net:4460")
    assert not allowed("time.example.net:22")  # only the module's port unless the entry names one
    assert allowed("other.example.net:4461")
    assert not allowed("other.example.net")
    assert allowed("198.51.100.77")
    assert not allowed("198.51.101.1")
    assert allowed("[2001:db8::10]")
    assert not allowed("2001:db8::11")
    assert not allowed("sub.time.example.net")
    assert parse_config(_config()).allows(parse_target("anything.example"), nts)


def test_listen_addresses() -> None:
    assert parse_listen("0.0.0.0:9816") == ("0.0.0.0", 9816)  # noqa: S104 - parsing only
    assert parse_listen("[::]:9816") == ("::", 9816)
    with pytest.raises(ExporterConfigError, match="ADDRESS:PORT"):
        parse_listen("[::]")
