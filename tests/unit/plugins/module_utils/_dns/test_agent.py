"""Unit tests of the ddns agent: address parsing, configuration, reconcile (canned DNS, no network)."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import dns.rdatatype
import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._dns import agent as ddns_agent
from ansible_collections.ntsops.nts.plugins.module_utils._dns.errors import DdnsInputError
from ansible_collections.ntsops.nts.plugins.module_utils._dns.interfaces import TEMPORARY_REASON, host_addresses
from ansible_collections.ntsops.nts.plugins.module_utils._dns.policy import Refusal, parse_allow_prefixes
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


# The documentation space these tests publish; without it the policy refuses it.
LAB = parse_allow_prefixes(["192.0.2.0/24", "198.51.100.0/24", "2001:db8::/32"])
LAB_PREFIXES = ["192.0.2.0/24", "198.51.100.0/24", "2001:db8::/32"]


def test_parse_ip_addr_keeps_usable_global_addresses_only() -> None:
    assert ddns_agent.parse_ip_addr(IP_ADDR_4, "ipv4", LAB).usable == ("192.0.2.10", "192.0.2.11")
    assert ddns_agent.parse_ip_addr(IP_ADDR_6, "ipv6", LAB).usable == ("2001:db8::10",)
    assert ddns_agent.parse_ip_addr(IP_ADDR_6, "ipv4", LAB) == ddns_agent.FamilyReading()
    assert ddns_agent.parse_ip_addr("", "ipv6") == ddns_agent.FamilyReading()


def test_parse_ip_addr_gives_every_skipped_address_its_reason() -> None:
    reading = ddns_agent.parse_ip_addr(IP_ADDR_6, "ipv6", LAB)
    assert reading.pending == (Refusal("2001:db8::dead", "deprecated, preferred lifetime over"),)
    assert reading.refused == (
        Refusal("2001:db8::abcd", TEMPORARY_REASON),
        Refusal("2001:db8::bad", "duplicate address detection failed"),
        Refusal("fe80::1", "link-local (RFC 4291)"),
    )
    v4 = ddns_agent.parse_ip_addr(IP_ADDR_4, "ipv4", LAB)
    assert v4.pending == (Refusal("192.0.2.12", "tentative, duplicate address detection not finished"),)
    assert v4.refused == (Refusal("127.0.0.1", "loopback"),)
    # Without the lab's prefixes the documentation addresses themselves are refused.
    bare = ddns_agent.parse_ip_addr(IP_ADDR_6, "ipv6")
    assert bare.usable == ()
    assert Refusal("2001:db8::10", "documentation range (RFC 3849)") in bare.refused


IP_ADDR_6_MIXED = """\
3: ddns0    inet6 2a00:1450:4001::5/64 scope global dynamic mngtmpaddr noprefixroute \\ valid_lft 86000sec
3: ddns0    inet6 2a00:1450:4001:0:e3f1:21ab:9c0d:77/64 scope global temporary dynamic \\ valid_lft 86000sec
3: ddns0    inet6 fd00:5::5/64 scope global \\       valid_lft forever preferred_lft forever
3: ddns0    inet6 2001:db8:5::5/64 scope global \\       valid_lft forever preferred_lft forever
"""


def test_temporary_addresses_only_when_asked_and_ula_never() -> None:
    reading = ddns_agent.parse_ip_addr(IP_ADDR_6_MIXED, "ipv6")
    # The stable SLAAC address (mngtmpaddr marks the template of the temporary ones) is published.
    assert reading.usable == ("2a00:1450:4001::5",)
    assert [r.reason for r in reading.refused] == [
        TEMPORARY_REASON,
        "unique local address, ULA (RFC 4193)",
        "documentation range (RFC 3849)",
    ]
    asked = ddns_agent.parse_ip_addr(IP_ADDR_6_MIXED, "ipv6", allow_temporary=True)
    assert asked.usable == ("2a00:1450:4001::5", "2a00:1450:4001:0:e3f1:21ab:9c0d:77")


def test_parse_command_output() -> None:
    assert ddns_agent.parse_command_output("198.51.100.7\n", "ipv4", LAB).usable == ("198.51.100.7",)
    refused = ddns_agent.parse_command_output("10.0.0.7\n9.9.9.9\n", "ipv4")
    assert refused.usable == ("9.9.9.9",)
    assert refused.refused == (Refusal("10.0.0.7", "private (RFC 1918)"),)
    with pytest.raises(DdnsInputError, match="printed something else"):
        ddns_agent.parse_command_output("<html>", "ipv4")


def test_read_addresses_runs_ip_for_an_interface_and_the_command_otherwise() -> None:
    calls: list[list[str]] = []

    def runner(argv: Sequence[str]) -> str:
        calls.append(list(argv))
        return IP_ADDR_6 if argv[0] == "ip" else "2001:db8::7\n"

    interface = ddns_agent.read_addresses(ddns_agent.Source(interface="eth0"), "ipv6", runner, LAB)
    assert interface.usable == ("2001:db8::10",)
    command = ddns_agent.read_addresses(ddns_agent.Source(command=("get-ip",)), "ipv6", runner, LAB)
    assert command.usable == ("2001:db8::7",)
    assert calls == [["ip", "-o", "-6", "addr", "show", "dev", "eth0"], ["get-ip"]]


def test_run_command_failures_are_clear() -> None:
    with pytest.raises(DdnsInputError, match="exited with 1"):
        ddns_agent.run_command(["false"])
    with pytest.raises(DdnsInputError, match="no-such-command"):
        ddns_agent.run_command(["/nonexistent/no-such-command"])


def config_data(**extra: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": NAME,
        "ttl": 60,
        "sources": {"ipv4": {"interface": "eth0"}},
        "allow_prefixes": LAB_PREFIXES,
    }
    data.update(extra)
    return data


def test_parse_config() -> None:
    config = ddns_agent.parse_config(config_data(_managed="Ansible managed", sources={"ipv6": {"command": "a b"}}))
    assert config.sources == {"ipv6": ddns_agent.Source(command=("a", "b"))}
    assert config.reconcile_interval == 60
    assert config.allow_prefixes == tuple(LAB_PREFIXES)
    assert (config.allow_temporary, config.remove_absent_family) == (False, False)
    assert config.absent_grace == ddns_agent.DEFAULT_ABSENT_GRACE_S


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
        (config_data(allow_prefixes="2001:db8::/32"), "allow_prefixes must be a list"),
        (config_data(allow_prefixes=["2001:db8::1/32"]), "not a network prefix"),
        (config_data(allow_temporary="yes"), "allow_temporary must be true or false"),
        (config_data(remove_absent_family=1), "remove_absent_family must be true or false"),
        (config_data(absent_grace=-1), "absent_grace must be"),
        (config_data(absent_grace="1h"), "absent_grace must be"),
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


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def interface_agent(
    addresses: dict[str, str], records: dict | None = None, **settings: object
) -> tuple[ddns_agent.Agent, io.StringIO, object, FakeClock]:
    """An agent reading both families from `ip -o addr show dev eth0` (canned per family)."""
    transport, client, primary, secondary = lab(records)
    out = io.StringIO()
    config = ddns_agent.parse_config(
        config_data(sources={"ipv4": {"interface": "eth0"}, "ipv6": {"interface": "eth0"}}, **settings)
    )

    def runner(argv: Sequence[str]) -> str:
        return addresses["ipv4" if "-4" in argv else "ipv6"]

    clock = FakeClock()
    agent = ddns_agent.Agent(config=config, client=client, server=PRIMARY, runner=runner, out=out, clock=clock)
    original_exchange = transport.exchange

    def exchange(message, address, port, timeout, tcp):  # type: ignore[no-untyped-def]
        secondary.records, secondary.serial = dict(primary.records), primary.serial
        return original_exchange(message, address, port, timeout, tcp)

    transport.exchange = exchange  # type: ignore[method-assign]
    return agent, out, transport, clock


def v6(*lines: str) -> str:
    return "".join(f"2: eth0    inet6 {line} \\       valid_lft forever preferred_lft forever\n" for line in lines)


V4 = "2: eth0    inet 192.0.2.10/24 scope global eth0\\       valid_lft forever preferred_lft forever\n"


def test_a_and_aaaa_change_in_one_update() -> None:
    addresses = {"ipv4": V4, "ipv6": v6("2001:db8:5::1/64 scope global")}
    agent, _out, transport, _clock = interface_agent(
        addresses, zone_records(a=(60, ["192.0.2.1"]), a_aaaa=(60, ["2001:db8:5::99"]))
    )
    assert agent.reconcile("address event")
    [update] = transport.updates()  # type: ignore[attr-defined]
    assert {dns.rdatatype.to_text(r.rdtype) for r in update.update} == {"A", "AAAA"}


def test_renumbering_keeps_the_aaaa_record_until_the_new_address_is_preferred() -> None:
    addresses = {"ipv4": V4, "ipv6": v6("2001:db8:5:1::1/64 scope global")}
    agent, out, transport, clock = interface_agent(addresses, remove_absent_family=True, absent_grace=0)
    assert agent.reconcile("start")
    sent = len(transport.updates())  # type: ignore[attr-defined]
    # The old prefix deprecated, the new address still in DAD: nothing preferred yet.
    addresses["ipv6"] = v6(
        "2001:db8:5:1::1/64 scope global deprecated dynamic", "2001:db8:5:2::1/64 scope global tentative dynamic"
    )
    clock.now += 3600
    assert agent.reconcile("address event")
    assert len(transport.updates()) == sent  # type: ignore[attr-defined]
    assert "no preferred address from interface eth0 yet" in out.getvalue()
    assert "its record is kept" in out.getvalue()
    # Only the deprecated one left (the new one not there yet): still kept, even with grace 0.
    addresses["ipv6"] = v6("2001:db8:5:1::1/64 scope global deprecated dynamic")
    clock.now += 3600
    assert agent.reconcile("periodic reconcile")
    assert len(transport.updates()) == sent  # type: ignore[attr-defined]
    # DAD done: the new preferred address replaces the old one.
    addresses["ipv6"] = v6(
        "2001:db8:5:1::1/64 scope global deprecated dynamic", "2001:db8:5:2::1/64 scope global dynamic"
    )
    assert agent.reconcile("address event")
    assert "AAAA 2001:db8:5:1::1 -> 2001:db8:5:2::1" in out.getvalue()
    assert agent.published["ipv6"] == ("2001:db8:5:2::1",)


def test_absent_family_is_left_alone_by_default() -> None:
    addresses = {"ipv4": V4, "ipv6": ""}
    agent, out, _transport, clock = interface_agent(addresses, zone_records(a_aaaa=(60, ["2001:db8:5::1"])))
    for _day in range(3):
        clock.now += 86400
        assert agent.reconcile("periodic reconcile")
    assert "ipv6: no usable address from interface eth0; its record is left alone\n" in out.getvalue()
    assert "AAAA" not in out.getvalue()
    assert "ipv6" not in agent.published


def test_absent_family_is_removed_only_after_the_grace_period() -> None:
    addresses = {"ipv4": V4, "ipv6": ""}
    agent, out, transport, clock = interface_agent(
        addresses, zone_records(a_aaaa=(60, ["2001:db8:5::1"])), remove_absent_family=True, absent_grace=600
    )
    assert agent.reconcile("start")
    assert "left alone; removed after 600 s without one" in out.getvalue()
    clock.now += 599
    assert agent.reconcile("periodic reconcile")
    assert all(
        "AAAA" not in {dns.rdatatype.to_text(r.rdtype) for r in u.update}
        for u in transport.updates()  # type: ignore[attr-defined]
    )
    # An address coming back (even for a moment) restarts the clock.
    addresses["ipv6"] = v6("2001:db8:5::1/64 scope global")
    assert agent.reconcile("address event")
    addresses["ipv6"] = ""
    assert agent.reconcile("address event")
    clock.now += 599
    assert agent.reconcile("periodic reconcile")
    assert "removing" not in out.getvalue()
    clock.now += 1
    assert agent.reconcile("periodic reconcile")
    assert "ipv6: no address from interface eth0 for 600 s (absent_grace 600 s); removing its record" in out.getvalue()
    assert "AAAA 2001:db8:5::1 -> none" in out.getvalue()
    assert agent.published["ipv6"] == ()


def test_refused_addresses_are_logged_once_with_the_reason_and_never_published() -> None:
    addresses = {
        "ipv4": V4,
        "ipv6": v6("fe80::5/64 scope link", "fd00:5::5/64 scope global", "2001:db8:5::5/64 scope global"),
    }
    agent, out, transport, _clock = interface_agent(addresses, allow_prefixes=["192.0.2.0/24"])
    assert agent.reconcile("start")
    assert agent.reconcile("periodic reconcile")
    text = out.getvalue()
    assert text.count("skipped: ipv6") == 1
    assert "fe80::5 (link-local (RFC 4291))" in text
    assert "fd00:5::5 (unique local address, ULA (RFC 4193))" in text
    assert "2001:db8:5::5 (documentation range (RFC 3849))" in text
    aaaa = [r for u in transport.updates() for r in u.update if r.rdtype == dns.rdatatype.AAAA]  # type: ignore[attr-defined]
    assert aaaa == []
    assert "ipv6" not in agent.published


def test_host_addresses_reads_every_interface_with_the_agents_selection() -> None:
    calls: list[list[str]] = []

    def runner(argv: Sequence[str]) -> str:
        calls.append(list(argv))
        return IP_ADDR_4 if "-4" in argv else IP_ADDR_6_MIXED

    found = host_addresses(runner)
    assert calls == [["ip", "-o", "-4", "addr", "show"], ["ip", "-o", "-6", "addr", "show"]]
    assert found["ipv4"].usable == ()  # documentation and loopback space only
    assert found["ipv6"].usable == ("2a00:1450:4001::5",)
    assert host_addresses(runner, LAB)["ipv4"].usable == ("192.0.2.10", "192.0.2.11")
