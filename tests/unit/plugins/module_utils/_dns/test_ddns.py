"""Unit tests of the ddns core with canned DNS messages (no network)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsig
import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._dns import ddns
from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError

ZONE = "example.test."
NAME = "ntp.example.test."
SECRET = "+7qkRZgOYu+e2DYwydQ9FLGnyl6Jkgiq8PTSLKBxDL8="
PRIMARY = ddns.Endpoint("127.0.0.1", 5300)


class FakeServer:
    """An authoritative server for one zone, answering from a dict; applies plain updates."""

    def __init__(self, records: dict[tuple[str, str], tuple[int, list[str]]] | None = None, serial: int = 1) -> None:
        self.records = dict(records or {})
        self.serial = serial
        self.update_rcode: int | None = None
        self.on_update: Callable[[Any], None] | None = None
        self.authoritative = True
        self.refuse = False

    def answer(self, message: Any) -> Any:
        response = dns.message.make_response(message)
        if self.refuse:
            response.set_rcode(dns.rcode.REFUSED)
            return response
        if message.opcode() == dns.opcode.UPDATE:
            return self._update(message, response)
        if self.authoritative:
            response.flags |= dns.flags.AA
        question = message.question[0]
        qname, rdtype = question.name.to_text(), dns.rdatatype.to_text(question.rdtype)
        if not question.name.is_subdomain(dns.name.from_text(ZONE)):
            response.set_rcode(dns.rcode.REFUSED)
            response.flags &= ~dns.flags.AA
            return response
        if (qname, rdtype) in self.records:
            ttl, values = self.records[(qname, rdtype)]
            response.answer.append(dns.rrset.from_text_list(qname, ttl, "IN", rdtype, values))
            if rdtype == "NS":
                for value in values:
                    if (value, "A") in self.records:
                        glue_ttl, glue = self.records[(value, "A")]
                        response.additional.append(dns.rrset.from_text_list(value, glue_ttl, "IN", "A", glue))
        elif rdtype == "SOA" and qname == ZONE:
            response.answer.append(self._soa())
        else:
            if not any(name == qname for name, _rdtype in self.records):
                response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority.append(self._soa())
        return response

    def _soa(self) -> Any:
        return dns.rrset.from_text(
            ZONE, 60, "IN", "SOA", f"ns1.{ZONE} hostmaster.{ZONE} {self.serial} 3600 600 86400 60"
        )

    def _update(self, message: Any, response: Any) -> Any:
        if self.on_update is not None:
            self.on_update(message)
        if self.update_rcode is not None:
            response.set_rcode(self.update_rcode)
            return response
        for rrset in message.update:
            key = (rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype))
            if rrset.deleting == dns.rdataclass.ANY:
                self.records.pop(key, None)
            else:
                # dnspython puts every added RR in an RRset of its own (force_unique).
                _old_ttl, values = self.records.get(key, (0, []))
                self.records[key] = (rrset.ttl, sorted({*values, *(r.to_text() for r in rrset)}))
        self.serial += 1
        return response


class FakeTransport:
    """Routes each message to the FakeServer at its address; records everything sent."""

    def __init__(self, servers: dict[str, FakeServer]) -> None:
        self.servers = servers
        self.sent: list[tuple[Any, str, int]] = []
        self.failures: list[BaseException] = []
        self.hosts: dict[str, list[str]] = {}
        self.resolver = "127.0.0.53"

    def exchange(self, message: Any, address: str, port: int, timeout: float, tcp: bool) -> Any:
        self.sent.append((message, address, port))
        if self.failures:
            raise self.failures.pop(0)
        return self.servers[address].answer(message)

    def host_addresses(self, hostname: str) -> list[str]:
        return self.hosts.get(hostname, [])

    def system_nameserver(self) -> str:
        return self.resolver

    def updates(self) -> list[Any]:
        return [m for m, _address, _port in self.sent if m.opcode() == dns.opcode.UPDATE]


def zone_records(**extra: tuple[int, list[str]]) -> dict[tuple[str, str], tuple[int, list[str]]]:
    records = {
        (ZONE, "NS"): (300, [f"ns1.{ZONE}", f"ns2.{ZONE}"]),
        (f"ns1.{ZONE}", "A"): (300, ["127.0.0.1"]),
        (f"ns2.{ZONE}", "A"): (300, ["127.0.0.2"]),
    }
    for key, value in extra.items():
        rdtype = "AAAA" if key.endswith("_aaaa") else "A"
        records[(NAME, rdtype)] = value
    return records


def lab(
    primary_records: dict[tuple[str, str], tuple[int, list[str]]] | None = None, retries: int = 0
) -> tuple[FakeTransport, ddns.DnsClient, FakeServer, FakeServer]:
    primary = FakeServer(primary_records if primary_records is not None else zone_records())
    secondary = FakeServer(dict(primary.records))
    transport = FakeTransport({"127.0.0.1": primary, "127.0.0.2": secondary})
    key = ddns.TsigKey("ddns-key", SECRET)
    return transport, ddns.DnsClient(transport, key=key, timeout=1, retries=retries), primary, secondary


def sync(primary: FakeServer, secondary: FakeServer) -> Callable[[float], None]:
    """A sleep() that completes the zone transfer, as NOTIFY + IXFR would."""

    def sleep(_seconds: float) -> None:
        secondary.records = dict(primary.records)
        secondary.serial = primary.serial

    return sleep


# ------------------------------------------------------------------------ keys


def test_parse_bind_key_as_written_by_tsig_keygen() -> None:
    text = f'# comment\nkey "ddns-key" {{\n\talgorithm hmac-sha512;\n\tsecret "{SECRET}";\n}};\n'
    key = ddns.parse_bind_key(text)
    assert key == ddns.TsigKey("ddns-key", SECRET, "hmac-sha512")
    assert SECRET not in repr(key)


def test_parse_bind_key_picks_by_name_and_needs_a_name_among_several() -> None:
    text = f'key "a" {{ algorithm hmac-sha256; secret "{SECRET}"; }};\nkey b {{ algorithm hmac-sha1; secret "QUJD"; }};'
    assert ddns.parse_bind_key(text, "b").algorithm == "hmac-sha1"
    with pytest.raises(ddns.DdnsInputError, match="several keys"):
        ddns.parse_bind_key(text)
    with pytest.raises(ddns.DdnsInputError, match="no key named 'c'"):
        ddns.parse_bind_key(text, "c")


@pytest.mark.parametrize("text", ["", "options { };", 'key "x" { algorithm hmac-sha256; };'])
def test_parse_bind_key_rejects_files_without_a_usable_key(text: str) -> None:
    with pytest.raises(ddns.DdnsInputError):
        ddns.parse_bind_key(text)


def test_load_key_file_missing(tmp_path: Any) -> None:
    with pytest.raises(ddns.DdnsInputError, match="cannot read TSIG key file"):
        ddns.load_key_file(tmp_path / "nope.key")


def test_make_key_combinations(tmp_path: Any) -> None:
    assert ddns.make_key(None, None) is None
    assert ddns.make_key("k", SECRET, "hmac-sha384") == ddns.TsigKey("k", SECRET, "hmac-sha384")
    with pytest.raises(ddns.DdnsInputError, match="needs key_name"):
        ddns.make_key(None, SECRET)
    with pytest.raises(ddns.DdnsInputError, match="needs key_secret or key_file"):
        ddns.make_key("k", None)
    with pytest.raises(ddns.DdnsInputError, match="unknown TSIG algorithm"):
        ddns.make_key("k", SECRET, "hmac-sha3")
    path = tmp_path / "k.key"
    path.write_text(f'key "k" {{ algorithm hmac-sha256; secret "{SECRET}"; }};')
    with pytest.raises(ddns.DdnsInputError, match="not both"):
        ddns.make_key("k", SECRET, key_file=str(path))
    assert ddns.make_key(None, None, key_file=str(path)) == ddns.TsigKey("k", SECRET)


def test_bad_base64_secret_is_a_clear_error_without_the_secret() -> None:
    with pytest.raises(ddns.DdnsInputError, match="not valid base64") as caught:
        ddns.TsigKey("k", "not*base64!").to_dnspython()
    assert "not*base64!" not in str(caught.value)


# ------------------------------------------------------------------- addresses


def test_normalise_addresses_sorts_dedupes_and_compresses() -> None:
    assert ddns.normalise_addresses("ipv6", ["2001:DB8::0:1", "2001:db8::1", "2001:db8::0"]) == (
        "2001:db8::",
        "2001:db8::1",
    )
    assert ddns.normalise_addresses("ipv4", ["192.0.2.10", "192.0.2.9"]) == ("192.0.2.9", "192.0.2.10")


@pytest.mark.parametrize(
    ("family", "value", "message"),
    [
        ("ipv4", "2001:db8::1", "is an IPv6 address"),
        ("ipv6", "192.0.2.1", "is an IPv4 address"),
        ("ipv4", "192.0.2.300", "not an IP address"),
        ("ipv4", "", "not an IP address"),
    ],
)
def test_normalise_addresses_rejects(family: str, value: str, message: str) -> None:
    with pytest.raises(ddns.DdnsInputError, match=message):
        ddns.normalise_addresses(family, [value])


def test_desired_states() -> None:
    wanted = ddns.desired_states("present", 60, ["192.0.2.1"], None)
    assert wanted == {"ipv4": ddns.RRsetState(("192.0.2.1",), 60)}
    assert ddns.desired_states("present", 60, [], ["2001:db8::1"])["ipv4"] == ddns.RRsetState()
    assert ddns.desired_states("absent", 0, ["192.0.2.1"], []) == {"ipv4": ddns.RRsetState(), "ipv6": ddns.RRsetState()}
    with pytest.raises(ddns.DdnsInputError, match="outside"):
        ddns.desired_states("present", -1, ["192.0.2.1"], None)
    with pytest.raises(ddns.DdnsInputError, match="state"):
        ddns.desired_states("gone", 1, ["192.0.2.1"], None)


# ------------------------------------------------------------------ zone finding


def test_find_zone_from_authority_soa_of_a_missing_name() -> None:
    _transport, client, _primary, _secondary = lab()
    info = ddns.find_zone(client, NAME, PRIMARY)
    assert (info.zone, info.mname, info.serial, info.primary) == (ZONE, f"ns1.{ZONE}", 1, PRIMARY)


def test_find_zone_without_server_uses_the_resolver_and_the_mname() -> None:
    transport, client, primary, _secondary = lab()
    transport.servers["127.0.0.53"] = primary
    transport.hosts[f"ns1.{ZONE}"] = ["127.0.0.1"]
    info = ddns.find_zone(client, NAME, None)
    assert info.primary == ddns.Endpoint("127.0.0.1", 53)
    first, address, _port = transport.sent[0]
    assert address == "127.0.0.53"
    assert first.flags & dns.flags.RD


def test_find_zone_refused_means_zone_not_found() -> None:
    _transport, client, _primary, _secondary = lab()
    with pytest.raises(ddns.DdnsZoneNotFoundError, match=r"serves no zone containing ntp\.other\.test\."):
        ddns.find_zone(client, "ntp.other.test", PRIMARY)


def test_find_zone_not_authoritative() -> None:
    _transport, client, primary, _secondary = lab()
    primary.authoritative = False
    with pytest.raises(ddns.DdnsZoneNotFoundError, match="not authoritative"):
        ddns.find_zone(client, NAME, PRIMARY)


def test_find_zone_referral_names_the_delegation() -> None:
    class Referral(FakeServer):
        def answer(self, message: Any) -> Any:
            response = dns.message.make_response(message)
            response.authority.append(dns.rrset.from_text("sub.example.test.", 60, "IN", "NS", "ns.sub.example.test."))
            return response

    transport, client, _primary, _secondary = lab()
    transport.servers["127.0.0.1"] = Referral()
    with pytest.raises(ddns.DdnsZoneNotFoundError, match=r"delegated to sub\.example\.test\."):
        ddns.find_zone(client, "ntp.sub.example.test", PRIMARY)


def test_given_zone_must_be_an_apex_and_contain_the_name() -> None:
    _transport, client, _primary, _secondary = lab()
    with pytest.raises(ddns.DdnsInputError, match="NOTZONE"):
        ddns.plan(client, "ntp.other.test", {}, PRIMARY, zone=ZONE)
    with pytest.raises(ddns.DdnsZoneNotFoundError, match="not a zone apex"):
        ddns.plan(client, NAME, {}, PRIMARY, zone="ntp.example.test")


def test_cname_at_the_name_is_refused() -> None:
    records = zone_records()
    records[(NAME, "CNAME")] = (60, ["other.example.test."])

    class WithCname(FakeServer):
        def answer(self, message: Any) -> Any:
            response = super().answer(message)
            if message.question and message.question[0].name.to_text() == NAME:
                response.set_rcode(dns.rcode.NOERROR)
                response.answer = [dns.rrset.from_text(NAME, 60, "IN", "CNAME", "other.example.test.")]
            return response

    transport, client, _primary, _secondary = lab(records)
    transport.servers["127.0.0.1"] = WithCname(records)
    with pytest.raises(ddns.DdnsInputError, match="is a CNAME"):
        ddns.plan(client, NAME, {}, PRIMARY)


# ------------------------------------------------------------------- plan/apply


def test_noop_sends_no_update() -> None:
    transport, client, _primary, _secondary = lab(zone_records(a=(60, ["192.0.2.1"])))
    wanted = ddns.desired_states("present", 60, ["192.0.2.1"], None)
    result = ddns.ensure_records(client, NAME, wanted, ttl=60, server=PRIMARY)
    assert result.changed is False
    assert transport.updates() == []
    assert [s.up_to_date for s in result.servers] == [True, True]


def test_ttl_difference_is_a_change() -> None:
    _transport, client, _primary, _secondary = lab(zone_records(a=(300, ["192.0.2.1"])))
    the_plan = ddns.plan(client, NAME, ddns.desired_states("present", 60, ["192.0.2.1"], None), PRIMARY)
    assert the_plan.changed_families == ("ipv4",)


def test_one_update_changes_both_families_with_prerequisites() -> None:
    transport, client, primary, _secondary = lab(zone_records(a=(60, ["192.0.2.1"])))
    wanted = ddns.desired_states("present", 60, ["192.0.2.2"], ["2001:db8::2"])
    result = ddns.ensure_records(client, NAME, wanted, ttl=60, server=PRIMARY, wait=False)
    assert result.changed
    [update] = transport.updates()
    prereqs = {(r.rdclass, r.rdtype): r for r in update.prerequisite}
    # A existed: value-dependent, TTL 0 (RFC 2136 3.2.5). AAAA did not: "RRset does not exist" (class NONE).
    a_prereq = prereqs[(dns.rdataclass.IN, dns.rdatatype.A)]
    assert a_prereq.ttl == 0
    assert [r.address for r in a_prereq] == ["192.0.2.1"]
    assert (dns.rdataclass.NONE, dns.rdatatype.AAAA) in prereqs
    changes = [(r.deleting is not None, dns.rdatatype.to_text(r.rdtype), len(r)) for r in update.update]
    assert changes == [(True, "A", 0), (False, "A", 1), (True, "AAAA", 0), (False, "AAAA", 1)]
    assert update.had_tsig or update.keyring is not None
    assert primary.records[(NAME, "AAAA")] == (60, ["2001:db8::2"])


def test_unchanged_family_is_not_touched() -> None:
    transport, client, _primary, _secondary = lab(zone_records(a=(60, ["192.0.2.1"]), a_aaaa=(60, ["2001:db8::1"])))
    wanted = ddns.desired_states("present", 60, ["192.0.2.2"], ["2001:db8::1"])
    ddns.ensure_records(client, NAME, wanted, ttl=60, server=PRIMARY, wait=False)
    [update] = transport.updates()
    assert {r.rdtype for r in update.update} == {dns.rdatatype.A}
    assert {r.rdtype for r in update.prerequisite} == {dns.rdatatype.A}


def test_absent_removes_only_the_given_family() -> None:
    _transport, client, primary, _secondary = lab(zone_records(a=(60, ["192.0.2.1"]), a_aaaa=(60, ["2001:db8::1"])))
    ddns.ensure_records(client, NAME, ddns.desired_states("absent", 0, None, []), ttl=0, server=PRIMARY, wait=False)
    assert (NAME, "AAAA") not in primary.records
    assert primary.records[(NAME, "A")] == (60, ["192.0.2.1"])


def test_check_mode_sends_no_update_and_reports_current_state() -> None:
    transport, client, _primary, _secondary = lab(zone_records(a=(60, ["192.0.2.1"])))
    wanted = ddns.desired_states("present", 60, ["192.0.2.9"], None)
    result = ddns.ensure_records(client, NAME, wanted, ttl=60, server=PRIMARY, check_mode=True)
    assert result.changed
    assert transport.updates() == []
    assert result.propagation_s is None
    assert all(s.up_to_date for s in result.servers)  # they serve what was read


def test_concurrent_writer_is_reported_with_both_states() -> None:
    _transport, client, primary, _secondary = lab(zone_records(a=(60, ["192.0.2.1"])))

    def other_writer(_message: Any) -> None:
        primary.records[(NAME, "A")] = (60, ["192.0.2.99"])

    primary.on_update = other_writer
    primary.update_rcode = dns.rcode.NXRRSET
    wanted = ddns.desired_states("present", 60, ["192.0.2.2"], None)
    with pytest.raises(ddns.DdnsConflictError, match=r"Read: A 192\.0\.2\.1; now: A 192\.0\.2\.99"):
        ddns.ensure_records(client, NAME, wanted, ttl=60, server=PRIMARY)


def test_update_that_landed_before_a_timeout_is_recognised() -> None:
    _transport, client, primary, _secondary = lab(zone_records(a=(60, ["192.0.2.1"])))

    def landed_earlier(_message: Any) -> None:
        primary.records[(NAME, "A")] = (60, ["192.0.2.2"])

    primary.on_update = landed_earlier
    primary.update_rcode = dns.rcode.NXRRSET
    wanted = ddns.desired_states("present", 60, ["192.0.2.2"], None)
    result = ddns.ensure_records(client, NAME, wanted, ttl=60, server=PRIMARY, wait=False)
    assert result.changed


@pytest.mark.parametrize(
    ("rcode", "error", "text"),
    [
        (dns.rcode.REFUSED, ddns.DdnsRefusedError, "REFUSED; its update policy does not allow TSIG key 'ddns-key'"),
        (dns.rcode.NOTAUTH, ddns.DdnsNotAuthError, "NOTAUTH"),
        (dns.rcode.NOTZONE, ddns.DdnsNotZoneError, "NOTZONE"),
        (dns.rcode.SERVFAIL, ddns.DdnsServerError, "SERVFAIL"),
    ],
)
def test_update_rcodes_become_clear_errors(rcode: int, error: type[Exception], text: str) -> None:
    _transport, client, primary, _secondary = lab()
    primary.update_rcode = rcode
    with pytest.raises(error, match=text):
        ddns.ensure_records(
            client, NAME, ddns.desired_states("present", 60, ["192.0.2.1"], None), ttl=60, server=PRIMARY
        )


# -------------------------------------------------------------- transport errors


@pytest.mark.parametrize(
    ("exception", "error", "text"),
    [
        (dns.tsig.PeerBadKey(), ddns.DdnsTsigError, "BADKEY"),
        (dns.tsig.PeerBadSignature(), ddns.DdnsTsigError, "BADSIG"),
        (dns.tsig.PeerBadTime(), ddns.DdnsTsigError, "BADTIME"),
        (dns.tsig.BadSignature(), ddns.DdnsTsigError, "failed TSIG verification"),
        (ConnectionRefusedError(), ddns.DdnsUnreachableError, "refused or closed"),
        (EOFError(), ddns.DdnsUnreachableError, "refused or closed"),
        (OSError(101, "Network is unreachable"), ddns.DdnsUnreachableError, "Network is unreachable"),
        (dns.exception.FormError("bad"), ddns.DdnsProtocolError, "malformed"),
    ],
)
def test_transport_errors_are_mapped_and_not_retried(exception: BaseException, error: type, text: str) -> None:
    transport, client, _primary, _secondary = lab(retries=3)
    transport.failures = [exception]
    with pytest.raises(error, match=text):
        ddns.find_zone(client, NAME, PRIMARY)
    assert len(transport.sent) == 1


def test_timeouts_are_retried_a_bounded_number_of_times() -> None:
    transport, client, _primary, _secondary = lab(retries=2)
    transport.failures = [dns.exception.Timeout()] * 3
    with pytest.raises(ddns.DdnsTimeoutError, match=r"within 1 s \(3 tries\)"):
        ddns.find_zone(client, NAME, PRIMARY)
    assert len(transport.sent) == 3
    transport.sent.clear()
    transport.failures = [dns.exception.Timeout()] * 2
    assert ddns.find_zone(client, NAME, PRIMARY).zone == ZONE
    assert len(transport.sent) == 3


def test_answer_with_another_id_is_rejected() -> None:
    class WrongId(FakeServer):
        def answer(self, message: Any) -> Any:
            response = super().answer(message)
            response.id = (message.id + 1) % 65536
            return response

    transport, client, _primary, _secondary = lab()
    transport.servers["127.0.0.1"] = WrongId(zone_records())
    with pytest.raises(ddns.DdnsProtocolError, match="wrong message id"):
        ddns.find_zone(client, NAME, PRIMARY)


def test_every_error_is_an_ntsops_error() -> None:
    for error in (ddns.DdnsTimeoutError, ddns.DdnsConflictError, ddns.DdnsBudgetError, ddns.DdnsTsigError):
        assert issubclass(error, NtsopsError)


def test_bad_client_settings() -> None:
    with pytest.raises(ddns.DdnsInputError):
        ddns.DnsClient(FakeTransport({}), timeout=0)
    with pytest.raises(ddns.DdnsInputError):
        ddns.DnsClient(FakeTransport({}), retries=-1)


# ------------------------------------------------------------------ propagation


def test_authoritative_servers_from_ns_and_glue() -> None:
    _transport, client, _primary, _secondary = lab()
    info = ddns.find_zone(client, NAME, PRIMARY)
    servers = ddns.authoritative_servers(client, info)
    assert servers == [
        (f"ns1.{ZONE}", ddns.Endpoint("127.0.0.1", 5300)),
        (f"ns2.{ZONE}", ddns.Endpoint("127.0.0.2", 5300)),
    ]


def test_propagation_waits_for_the_secondary() -> None:
    _transport, client, primary, secondary = lab()
    info = ddns.find_zone(client, NAME, PRIMARY)
    expected = {"ipv4": ddns.RRsetState(("192.0.2.5",), 60)}
    primary.records[(NAME, "A")] = (60, ["192.0.2.5"])
    primary.serial = 2
    now = [0.0]

    def clock() -> float:
        now[0] += 0.01
        return now[0]

    done, seconds, statuses = ddns.wait_for_propagation(
        client, NAME, info, expected, timeout=5, clock=clock, sleep=sync(primary, secondary)
    )
    assert done
    assert 0 < seconds < 1
    assert [(s.serial, s.up_to_date) for s in statuses] == [(2, True), (2, True)]


def test_propagation_timeout_raises_with_the_result() -> None:
    _transport, client, _primary, secondary = lab()
    secondary.refuse = True
    now = [0.0]

    def clock() -> float:
        now[0] += 1.0
        return now[0]

    with pytest.raises(ddns.DdnsPropagationError, match=r"within 3 s: ns2.example.test. \(127.0.0.2\)") as caught:
        ddns.ensure_records(
            client,
            NAME,
            ddns.desired_states("present", 60, ["192.0.2.5"], None),
            ttl=60,
            server=PRIMARY,
            propagation_timeout=3,
            clock=clock,
        )
    result = caught.value.result
    assert result.changed
    assert [s.up_to_date for s in result.servers] == [True, False]
    assert "REFUSED" in (result.servers[1].error or "")


def test_ttl_mismatch_on_a_secondary_is_not_up_to_date() -> None:
    _transport, client, primary, _secondary = lab(zone_records(a=(300, ["192.0.2.5"])))
    info = ddns.find_zone(client, NAME, PRIMARY)
    primary.records[(NAME, "A")] = (60, ["192.0.2.5"])
    statuses = ddns.check_servers(
        client, NAME, info, {"ipv4": ddns.RRsetState(("192.0.2.5",), 60)}, ddns.authoritative_servers(client, info)
    )
    assert [s.up_to_date for s in statuses] == [True, False]


# -------------------------------------------------------------------- budget/diff


def test_choose_ttl() -> None:
    budget = {"clients": [{"client": "chrony-4.3", "maxpoll": 4}], "update_latency": 2}
    limit = ddns.budget_max_ttl(budget)
    assert ddns.choose_ttl(None, budget) == (limit, limit, [])
    assert ddns.choose_ttl(limit, budget) == (limit, limit, [])
    with pytest.raises(ddns.DdnsBudgetError, match=f"ttl {limit + 1} s is above {limit} s"):
        ddns.choose_ttl(limit + 1, budget)
    ttl, _max_ttl, warnings = ddns.choose_ttl(limit + 1, budget, allow_ttl_over_budget=True)
    assert ttl == limit + 1
    assert warnings
    assert ddns.choose_ttl(30, None) == (30, None, [])
    with pytest.raises(ddns.DdnsInputError, match="give ttl or budget"):
        ddns.choose_ttl(None, None)
    with pytest.raises(ddns.DdnsInputError, match="budget needs"):
        ddns.choose_ttl(None, {"clients": []})


def test_budget_that_no_ttl_can_meet_is_an_ntsops_error() -> None:
    with pytest.raises(NtsopsError):
        ddns.choose_ttl(None, {"clients": [{"client": "chrony-4.3", "maxpoll": 4}], "update_latency": 100000})


def test_budget_without_the_recovery_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ddns, "HAS_RECOVERY_MODEL", False)
    with pytest.raises(ddns.DdnsBudgetError, match="recovery model"):
        ddns.choose_ttl(None, {"clients": [{"client": "chrony-4.3"}], "update_latency": 2})


def test_zone_text_for_diff() -> None:
    _transport, client, _primary, _secondary = lab(zone_records(a=(300, ["192.0.2.1"])))
    the_plan = ddns.plan(client, NAME, ddns.desired_states("present", 60, ["192.0.2.2"], []), PRIMARY)
    assert the_plan.zone_text("before") == f"{NAME} 300 IN A 192.0.2.1\n"
    assert the_plan.zone_text("after") == f"{NAME} 60 IN A 192.0.2.2\n"
    assert the_plan.expected() == {"ipv4": ddns.RRsetState(("192.0.2.2",), 60), "ipv6": ddns.RRsetState()}


def test_reads_from_the_primary_are_signed_other_queries_are_not() -> None:
    transport, client, _primary, _secondary = lab(zone_records(a=(60, ["192.0.2.1"])))
    wanted = ddns.desired_states("present", 60, ["192.0.2.1"], None)
    ddns.ensure_records(client, NAME, wanted, ttl=60, server=PRIMARY)
    signed = {
        (m.question[0].name.to_text(), dns.rdatatype.to_text(m.question[0].rdtype), address)
        for m, address, _port in transport.sent
        if m.keyring is not None
    }
    # SOA discovery and the A/AAAA reads at the primary; not the NS set or the propagation checks.
    assert signed == {(NAME, "SOA", "127.0.0.1"), (NAME, "A", "127.0.0.1"), (NAME, "AAAA", "127.0.0.1")}


def test_resolver_query_is_not_signed() -> None:
    transport, client, primary, _secondary = lab()
    transport.servers["127.0.0.53"] = primary
    transport.hosts[f"ns1.{ZONE}"] = ["127.0.0.1"]
    ddns.find_zone(client, NAME, None)
    assert transport.sent[0][0].keyring is None
