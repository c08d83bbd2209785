"""Unit tests of the ddns agent: address parsing, configuration, reconcile (canned DNS, no network)."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._dns import agent as ddns_agent
from ansible_collections.ntsops.nts.plugins.module_utils._dns.errors import DdnsInputError
from ansible_collections.ntsops.nts.tests.unit.plugins.module_utils._dns.dns_fakes import (
    NAME,
    PRIMARY,
    lab,
    zone_records,
)

IP_ADDR_4 = """\
2: eth0    inet 192.0.2.10/24 brd 192.0.2.255 scope global eth0\\       valid_lft forever preferred_lft forever
2: eth0    inet 192.0.2.11/24 scope global secondary eth0\\       valid_lft forever preferred_lft forever
2: eth0    inet 192.0.2.12/24 scope global tentative eth0\\       valid_lft forever preferred_lft forever
1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
"""
IP_ADDR_6 = """\
2: eth0    inet6 2001:db8::10/64 scope global \\       valid_lft forever preferred_lft forever
2: eth0    inet6 2001:db8::abcd/64 scope global temporary dynamic \\       valid_lft 86000sec preferred_lft 14000sec
2: eth0    inet6 2001:db8::dead/64 scope global deprecated \\       valid_lft forever preferred_lft 0sec
2: eth0    inet6 2001:db8::bad/64 scope global dadfailed tentative \\       valid_lft forever preferred_lft forever
2: eth0    inet6 fe80::1/64 scope link \\       valid_lft forever preferred_lft forever
"""


def test_parse_ip_addr_keeps_usable_global_addresses_only() -> None:
    assert ddns_agent.parse_ip_addr(IP_ADDR_4, "ipv4") == ("192.0.2.10", "192.0.2.11")
    assert ddns_agent.parse_ip_addr(IP_ADDR_6, "ipv6") == ("2001:db8::10",)
    assert ddns_agent.parse_ip_addr(IP_ADDR_6, "ipv4") == ()
    assert ddns_agent.parse_ip_addr("", "ipv6") == ()


def test_parse_command_output() -> None:
    assert ddns_agent.parse_command_output("198.51.100.7\n", "ipv4") == ("198.51.100.7",)
    with pytest.raises(DdnsInputError, match="printed something else"):
        ddns_agent.parse_command_output("<html>", "ipv4")


def test_read_addresses_runs_ip_for_an_interface_and_the_command_otherwise() -> None:
    calls: list[list[str]] = []

    def runner(argv: Sequence[str]) -> str:
        calls.append(list(argv))
        return IP_ADDR_6 if argv[0] == "ip" else "2001:db8::7\n"

    assert ddns_agent.read_addresses(ddns_agent.Source(interface="eth0"), "ipv6", runner) == ("2001:db8::10",)
    assert ddns_agent.read_addresses(ddns_agent.Source(command=("get-ip",)), "ipv6", runner) == ("2001:db8::7",)
    assert calls == [["ip", "-o", "-6", "addr", "show", "dev", "eth0"], ["get-ip"]]


def test_run_command_failures_are_clear() -> None:
    with pytest.raises(DdnsInputError, match="exited with 1"):
        ddns_agent.run_command(["false"])
    with pytest.raises(DdnsInputError, match="no-such-command"):
        ddns_agent.run_command(["/nonexistent/no-such-command"])


def config_data(**extra: object) -> dict[str, object]:
    data: dict[str, object] = {"name": NAME, "ttl": 60, "sources": {"ipv4": {"interface": "eth0"}}}
    data.update(extra)
    return data


def test_parse_config() -> None:
    config = ddns_agent.parse_config(config_data(_managed="Ansible managed", sources={"ipv6": {"command": "a b"}}))
    assert config.sources == {"ipv6": ddns_agent.Source(command=("a", "b"))}
    assert config.reconcile_interval == 60


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (config_data(colour="blue"), "unknown settings: colour"),
        ({"name": NAME, "ttl": 60}, "lacks 'sources'"),
        (config_data(sources={"ipv5": {"interface": "eth0"}}), "sources must map"),
        (config_data(sources={"ipv4": {"interface": "eth0", "command": ["x"]}}), "sources.ipv4 must be"),
        (config_data(sources={"ipv4": {"command": []}}), "non-empty argument list"),
        (config_data(ttl=-1), "ttl must be"),
        (config_data(reconcile_interval=0), "reconcile_interval must be positive"),
        (config_data(protocol="sctp"), "protocol"),
        ([], "JSON object"),
    ],
)
def test_parse_config_rejects(data: object, message: str) -> None:
    with pytest.raises(ddns_agent.AgentConfigError, match=message):
        ddns_agent.parse_config(data)  # type: ignore[arg-type]


def test_load_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ddns_agent.AgentConfigError, match="cannot read"):
        ddns_agent.load_config(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ddns_agent.AgentConfigError, match="not valid JSON"):
        ddns_agent.load_config(str(bad))
    good = tmp_path / "good.json"
    good.write_text(json.dumps(config_data()))
    assert ddns_agent.load_config(str(good)).name == NAME


@pytest.mark.parametrize(("latency", "interval"), [(2, 5), (30, 15), (600, 300), (86400, 3600)])
def test_reconcile_interval(latency: float, interval: int) -> None:
    assert ddns_agent.reconcile_interval(latency) == interval


def test_reconcile_interval_needs_a_positive_latency() -> None:
    with pytest.raises(ddns_agent.AgentConfigError):
        ddns_agent.reconcile_interval(0)


def make_agent(addresses: dict[str, str], records: dict | None = None) -> tuple[ddns_agent.Agent, io.StringIO, list]:
    transport, client, primary, secondary = lab(records)
    out = io.StringIO()
    config = ddns_agent.parse_config(
        config_data(sources={"ipv4": {"interface": "eth0"}, "ipv6": {"command": ["get-ip6"]}})
    )

    def runner(argv: Sequence[str]) -> str:
        # The secondary catches up at once, as NOTIFY + IXFR would.
        return addresses["ipv4"] if argv[0] == "ip" else addresses["ipv6"]

    agent = ddns_agent.Agent(config=config, client=client, server=PRIMARY, runner=runner, out=out)
    original_exchange = transport.exchange

    def exchange(message, address, port, timeout, tcp):  # type: ignore[no-untyped-def]
        secondary.records, secondary.serial = dict(primary.records), primary.serial
        return original_exchange(message, address, port, timeout, tcp)

    transport.exchange = exchange  # type: ignore[method-assign]
    return agent, out, transport.sent


def test_reconcile_publishes_and_logs_old_and_new() -> None:
    addresses = {"ipv4": IP_ADDR_4, "ipv6": "2001:db8::7\n"}
    agent, out, sent = make_agent(addresses, zone_records(a=(60, ["192.0.2.1"])))
    assert agent.reconcile("address event", detected_at=agent.clock())
    line = out.getvalue()
    assert "A 192.0.2.1 -> 192.0.2.10,192.0.2.11" in line
    assert "AAAA none -> 2001:db8::7" in line
    assert "(2/2 servers up to date)" in line
    assert "change to served" in line
    assert agent.published == {"ipv4": ("192.0.2.10", "192.0.2.11"), "ipv6": ("2001:db8::7",)}

    # The same addresses again on an event: no DNS traffic at all.
    before = len(sent)
    assert agent.reconcile("address event")
    assert len(sent) == before
    # A periodic reconcile reads DNS but, with nothing to change, logs nothing.
    out.truncate(0)
    assert agent.reconcile("periodic reconcile")
    assert len(sent) > before
    assert out.getvalue() == ""


def test_family_without_an_address_is_left_alone() -> None:
    addresses = {"ipv4": "", "ipv6": "2001:db8::7\n"}
    agent, out, _sent = make_agent(addresses, zone_records(a=(60, ["192.0.2.1"])))
    assert agent.reconcile("periodic reconcile")
    assert "no usable address from interface eth0; its record is left alone" in out.getvalue()
    assert "A 192.0.2.1" not in out.getvalue()


def test_dns_error_is_logged_and_reported() -> None:
    agent, out, _sent = make_agent({"ipv4": IP_ADDR_4, "ipv6": "x"})
    agent.client.transport.servers["127.0.0.1"].update_rcode = 5  # type: ignore[attr-defined]
    assert not agent.reconcile("periodic reconcile")
    text = out.getvalue()
    assert "error: periodic reconcile:" in text
    assert "REFUSED" in text
    assert agent.published == {}


def test_cli_reports_a_bad_configuration_without_a_traceback(tmp_path: Path) -> None:
    out = io.StringIO()
    assert ddns_agent.cli(["--config", str(tmp_path / "missing.json")], out) == 2
    assert out.getvalue().startswith("error: cannot read")


def test_cli_warns_about_a_readable_key_file(tmp_path: Path) -> None:
    key = tmp_path / "tsig.key"
    key.write_text('secret "QUJD";')  # no key statement: fails before any network use
    key.chmod(0o644)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(config_data(key_file=str(key), server="127.0.0.1")))
    out = io.StringIO()
    assert ddns_agent.cli(["--config", str(config), "--once"], out) == 2
    assert "readable by group or others" in out.getvalue()
    assert "no key statement" in out.getvalue()
    assert "QUJD" not in out.getvalue()
