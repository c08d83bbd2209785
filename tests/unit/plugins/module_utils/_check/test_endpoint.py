"""endpoint: options, address selection, concurrency and the per-address report."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._check import endpoint
from ansible_collections.ntsops.nts.plugins.module_utils._check.endpoint import (
    CheckOptions,
    EndpointCheckError,
    check_address,
    check_endpoint,
    resolve_addresses,
)
from ansible_collections.ntsops.nts.plugins.module_utils._net import nts_session
from ansible_collections.ntsops.nts.plugins.module_utils._nts import ntp as nts_ntp
from ansible_collections.ntsops.nts.plugins.module_utils._nts import records as nts_records


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": ""}, "name must not be empty"),
        ({"port": 0}, "port must be 1-65535, got 0"),
        ({"port": 65536}, "port must be 1-65535, got 65536"),
        ({"timeout": 0}, "timeout must be positive, got 0"),
        ({"timeout": -1.5}, "timeout must be positive, got -1.5"),
        ({"timeout": float("nan")}, "timeout must be positive, got nan"),
        ({"expect_cookies": 0}, "expect_cookies must be at least 1, got 0"),
        ({"aead": ()}, "aead must list at least one AEAD algorithm id"),
        ({"aead": (15, 65536)}, "AEAD id 65536 is outside 0-65535"),
        ({"aead": (-1,)}, "AEAD id -1 is outside 0-65535"),
    ],
)
def test_validate_rejects_bad_options(options: dict[str, Any], message: str) -> None:
    options.setdefault("name", "time.example.net")
    with pytest.raises(EndpointCheckError) as excinfo:
        CheckOptions(**options).validate()
    assert str(excinfo.value) == message


def test_validate_accepts_the_defaults_and_the_edges() -> None:
    CheckOptions(name="time.example.net").validate()
    CheckOptions(name="192.0.2.1", port=1, timeout=0.001, expect_cookies=1, aead=(0, 65535)).validate()
    CheckOptions(name="time.example.net", port=65535).validate()


def test_bad_options_fail_before_any_resolution() -> None:
    def resolver(name: str) -> list[str]:
        raise AssertionError("resolver must not be called")

    with pytest.raises(EndpointCheckError, match=r"^port must be 1-65535, got 0$"):
        check_endpoint(CheckOptions(name="time.example.net", port=0), resolver=resolver)


def test_resolve_addresses_returns_an_ip_literal_as_is() -> None:
    assert resolve_addresses("192.0.2.7") == ["192.0.2.7"]
    assert resolve_addresses("2001:db8::7") == ["2001:db8::7"]


def test_resolve_addresses_keeps_resolver_order_without_duplicates(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_getaddrinfo(host: str, port: Any, type: int = 0) -> list[Any]:
        assert host == "time.example.net"
        assert type == socket.SOCK_STREAM
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2001:db8::7", 0, 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.7", 0)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2001:db8::7", 0, 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.8", 0)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    assert resolve_addresses("time.example.net") == ["2001:db8::7", "192.0.2.7", "192.0.2.8"]


def test_resolve_addresses_reports_a_name_that_does_not_resolve(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_getaddrinfo(*_args: Any, **_kwargs: Any) -> list[Any]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(EndpointCheckError) as excinfo:
        resolve_addresses("nothere.example.net")
    assert str(excinfo.value) == "nothere.example.net does not resolve: Name or service not known"


def fake_result(address: str, problems: list[str]) -> dict[str, Any]:
    return {"address": address, "ok": not problems, "problems": [f"{address}: {p}" for p in problems]}


def test_check_endpoint_checks_what_the_resolver_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    checked: list[tuple[str, CheckOptions]] = []

    def resolver(name: str) -> list[str]:
        asked.append(name)
        return ["192.0.2.7", "2001:db8::7", "192.0.2.8"]

    def fake_check(address: str, options: CheckOptions, *, context: Any = None) -> dict[str, Any]:
        checked.append((address, options))
        return fake_result(address, ["TCP 4460 refused"] if address == "2001:db8::7" else [])

    monkeypatch.setattr(endpoint, "check_address", fake_check)
    options = CheckOptions(name="time.example.net", timeout=1)
    result = check_endpoint(options, resolver=resolver)
    assert asked == ["time.example.net"]
    assert sorted(address for address, _options in checked) == ["192.0.2.7", "192.0.2.8", "2001:db8::7"]
    assert all(seen is options for _address, seen in checked)
    assert result["ok"] is False
    # Results and problems keep the resolver's order, whatever order the threads finish in.
    assert [entry["address"] for entry in result["addresses"]] == ["192.0.2.7", "2001:db8::7", "192.0.2.8"]
    assert result["problems"] == ["2001:db8::7: TCP 4460 refused"]


def test_check_endpoint_is_ok_only_when_every_address_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(endpoint, "check_address", lambda address, options, context=None: fake_result(address, []))
    result = check_endpoint(CheckOptions(name="t.example.net"), resolver=lambda name: ["192.0.2.1", "192.0.2.2"])
    expected = [fake_result("192.0.2.1", []), fake_result("192.0.2.2", [])]
    assert result == {"ok": True, "problems": [], "addresses": expected}


def test_explicit_addresses_replace_resolution_and_lose_duplicates(monkeypatch: pytest.MonkeyPatch) -> None:
    def resolver(name: str) -> list[str]:
        raise AssertionError("resolver must not be called when addresses are given")

    monkeypatch.setattr(endpoint, "check_address", lambda address, options, context=None: fake_result(address, []))
    result = check_endpoint(
        CheckOptions(name="time.example.net"), addresses=["::1", "127.0.0.1", "::1"], resolver=resolver
    )
    assert [entry["address"] for entry in result["addresses"]] == ["::1", "127.0.0.1"]


@pytest.mark.parametrize("bad", ["time.example.net", "192.0.2.1:4460", "[::1]", ""])
def test_explicit_addresses_must_be_ip_addresses(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setattr(
        endpoint, "check_address", lambda address, options, context=None: pytest.fail("nothing may be checked")
    )
    with pytest.raises(EndpointCheckError) as excinfo:
        check_endpoint(CheckOptions(name="time.example.net"), addresses=["192.0.2.1", bad])
    assert str(excinfo.value) == f"addresses must be IP addresses, got {bad!r}"


def test_a_name_without_addresses_is_an_error() -> None:
    with pytest.raises(EndpointCheckError, match=r"^time\.example\.net has no A or AAAA records$"):
        check_endpoint(CheckOptions(name="time.example.net"), resolver=lambda name: [])


def test_sixteen_addresses_are_checked_at_the_same_time(monkeypatch: pytest.MonkeyPatch) -> None:
    addresses = [f"192.0.2.{n}" for n in range(1, 17)]
    # Every check waits until all 16 are running: sequential checks would break the barrier.
    all_running = threading.Barrier(16, timeout=3)

    def fake_check(address: str, options: CheckOptions, *, context: Any = None) -> dict[str, Any]:
        all_running.wait()
        time.sleep(0.1)
        return fake_result(address, [])

    monkeypatch.setattr(endpoint, "check_address", fake_check)
    started = time.monotonic()
    result = check_endpoint(CheckOptions(name="time.example.net"), resolver=lambda name: addresses)
    elapsed = time.monotonic() - started
    assert result["ok"] is True
    assert [entry["address"] for entry in result["addresses"]] == addresses
    assert not all_running.broken
    assert elapsed < 0.1 * 4  # one check's time, not 16 of them


def test_parallelism_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    changed = threading.Condition()
    running = started = peak = 0
    addresses = [f"10.0.{n // 250}.{n % 250 + 1}" for n in range(endpoint.MAX_PARALLEL_ADDRESSES + 8)]

    def fake_check(address: str, options: CheckOptions, *, context: Any = None) -> dict[str, Any]:
        nonlocal running, started, peak
        with changed:
            running += 1
            started += 1
            peak = max(peak, running)
            changed.notify_all()
            # Each check holds its slot until the pool is full or every check has started,
            # so the peak does not depend on how fast a loaded machine starts threads.
            changed.wait_for(
                lambda: running >= endpoint.MAX_PARALLEL_ADDRESSES or started == len(addresses), timeout=10)
            running -= 1
        return fake_result(address, [])

    monkeypatch.setattr(endpoint, "check_address", fake_check)
    result = check_endpoint(CheckOptions(name="time.example.net"), resolver=lambda name: addresses)
    assert len(result["addresses"]) == len(addresses)
    assert peak == endpoint.MAX_PARALLEL_ADDRESSES


# check_address for real, against loopback sockets this test opens.


def test_refused_address_gives_one_problem_line_starting_with_it(closed_port: int) -> None:
    entry = check_address("127.0.0.1", CheckOptions(name="localhost", port=closed_port, timeout=1))
    assert entry == {
        "address": "127.0.0.1", "tls": None, "cert": None, "ke": None, "ntp": None,
        "problems": [f"127.0.0.1: TCP {closed_port} refused"], "ok": False,
    }


def test_ipv6_problem_lines_start_with_the_bare_address() -> None:
    with socket.socket(socket.AF_INET6) as probe:
        probe.bind(("::1", 0))
        port = probe.getsockname()[1]
    result = check_endpoint(CheckOptions(name="localhost", port=port, timeout=1), addresses=["::1"])
    assert result["problems"] == [f"::1: TCP {port} refused"]


def ke_response(cookies: int = 8, *, error: int | None = None, cookie_size: int = 100) -> bytes:
    records = b""
    if error is not None:
        records += nts_records.encode_record(nts_records.ERROR, error.to_bytes(2, "big"), critical=True)
    else:
        records += nts_records.encode_record(nts_records.NEXT_PROTOCOL, b"\x00\x00", critical=True)
        records += nts_records.encode_record(nts_records.AEAD_ALGORITHM, b"\x00\x0f", critical=True)
        for _cookie in range(cookies):
            records += nts_records.encode_record(nts_records.NEW_COOKIE, os.urandom(cookie_size), critical=False)
    return records + nts_records.encode_record(nts_records.END_OF_MESSAGE, b"", critical=True)


@pytest.fixture
def ke_server(pki: Any, tls_server: Callable[..., Any]) -> Callable[..., Any]:
    """A loopback NTS-KE server answering one canned response; `.requests` holds what it read."""

    def start(
        response: bytes, *, dns: tuple[str, ...] = ("localhost",), alpn: tuple[str, ...] | None = ("ntske/1",)
    ) -> Any:
        issued = pki.issue(dns=dns, ips=["127.0.0.1"])
        return tls_server(issued.chain_path, issued.key_path, alpn=alpn, response=response)

    return start


def options_for(server: Any, pki: Any, **extra: Any) -> CheckOptions:
    extra.setdefault("name", "localhost")
    extra.setdefault("ntp_exchange", False)
    return CheckOptions(port=server.port, ca_path=str(pki.ca_path), timeout=2, **extra)


def test_good_ke_server_gives_a_full_report_and_no_problems(ke_server: Callable[..., Any], pki: Any) -> None:
    server = ke_server(ke_response(8, cookie_size=104))
    entry = check_address("127.0.0.1", options_for(server, pki))
    assert entry["problems"] == []
    assert entry["ok"] is True
    assert entry["tls"]["version"] == "TLSv1.3"
    assert entry["tls"]["alpn"] == "ntske/1"
    assert entry["cert"]["sans"] == ["DNS:localhost", "IP:127.0.0.1"]
    assert entry["cert"]["issuer"] == "CN=unit test root"
    ke = entry["ke"]
    assert (ke["next_protocol"], ke["aead"], ke["aead_name"]) == (0, 15, "AEAD_AES_SIV_CMAC_256")
    assert (ke["cookies"], ke["cookie_sizes"]) == (8, [104])
    assert (ke["server"], ke["port"], ke["warnings"], ke["errors"]) == (None, None, [], [])
    assert entry["ntp"] is None
    # The request went in one piece: Next Protocol NTPv4, AEAD 15, End of Message.
    assert server.requests == [nts_records.build_ke_request()]


def test_few_cookies_and_an_uncovered_name_are_separate_problem_lines(
    ke_server: Callable[..., Any], pki: Any
) -> None:
    server = ke_server(ke_response(3), dns=("time.example.net",))
    entry = check_address("127.0.0.1", options_for(server, pki, name="ntp.example.net"))
    assert entry["problems"] == [
        "127.0.0.1: certificate does not cover ntp.example.net (names: DNS:time.example.net, IP:127.0.0.1)",
        "127.0.0.1: NTS-KE returned 3 cookies, expected 8",
    ]
    assert entry["ke"]["cookies"] == 3


def test_error_record_is_named(ke_server: Callable[..., Any], pki: Any) -> None:
    server = ke_server(ke_response(error=nts_records.ERROR_BAD_REQUEST))
    entry = check_address("127.0.0.1", options_for(server, pki, ntp_exchange=True))
    assert entry["problems"] == ["127.0.0.1: NTS-KE Error record: Bad Request (1)"]
    assert entry["ke"]["errors"] == [1]
    assert entry["ntp"] is None  # no NTP exchange after an Error record


def test_no_alpn_stops_before_nts_ke(ke_server: Callable[..., Any], pki: Any) -> None:
    server = ke_server(ke_response(), alpn=None)
    entry = check_address("127.0.0.1", options_for(server, pki))
    assert entry["problems"] == [
        "127.0.0.1: server agreed no ALPN protocol (ntske/1 expected); clients will not use it"
    ]
    assert entry["ke"] is None
    assert not any(server.requests)  # the server read nothing but the close


def test_untrusted_certificate_is_reported_with_the_rest_of_the_report(
    ke_server: Callable[..., Any], pki: Any
) -> None:
    server = ke_server(ke_response())
    entry = check_address("127.0.0.1", CheckOptions(name="localhost", port=server.port, timeout=2, ntp_exchange=False))
    assert entry["problems"] == [
        "127.0.0.1: certificate is not trusted (issuer not in the trust store)",
        "127.0.0.1: certificate is not trusted (unable to verify the first certificate)",
    ]
    assert entry["ke"]["cookies"] == 8  # the handshake went on, so the rest is still checked


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("bad name", "'bad name' is not a valid host name"),
        ("a..example.net", "'a..example.net' is not a valid TLS server name"),
    ],
)
def test_a_name_no_certificate_can_hold_is_a_problem_line_not_a_traceback(
    ke_server: Callable[..., Any], pki: Any, name: str, problem: str
) -> None:
    server = ke_server(ke_response())
    result = check_endpoint(options_for(server, pki, name=name), addresses=["127.0.0.1"])
    assert result["ok"] is False
    assert result["problems"] == [f"127.0.0.1: {problem}"]


def test_sixteen_silent_addresses_cost_one_timeout_not_sixteen() -> None:
    # 16 listeners that accept TCP and never answer TLS: each address times out in the
    # TLS step; checked concurrently, the whole check takes about one timeout.
    listeners = []
    try:
        first = socket.socket()
        first.bind(("127.0.0.1", 0))
        port = first.getsockname()[1]
        listeners.append(first)
        for n in range(2, 17):
            sock = socket.socket()
            sock.bind((f"127.0.0.{n}", port))
            listeners.append(sock)
        for sock in listeners:
            sock.listen(2)
        addresses = [sock.getsockname()[0] for sock in listeners]
        started = time.monotonic()
        result = check_endpoint(CheckOptions(name="localhost", port=port, timeout=0.4), addresses=addresses)
        elapsed = time.monotonic() - started
    finally:
        for sock in listeners:
            sock.close()
    assert result["problems"] == [f"{address}: TLS handshake timed out after 0.4 s" for address in addresses]
    assert elapsed < 0.4 * 3


def negotiating_response(server: bytes | None, port: int | None) -> bytes:
    """8 cookies plus Server and Port Negotiation records (random cookies: the NTP step never gets that far)."""
    records = ke_response(8)[:-4]  # without End of Message
    if server is not None:
        records += nts_records.encode_record(nts_records.SERVER_NEGOTIATION, server, critical=False)
    if port is not None:
        records += nts_records.encode_record(nts_records.PORT_NEGOTIATION, port.to_bytes(2, "big"), critical=False)
    return records + nts_records.encode_record(nts_records.END_OF_MESSAGE, b"", critical=True)


def test_refused_ntp_port_is_an_ntp_problem_with_the_negotiated_server(
    ke_server: Callable[..., Any], pki: Any, closed_port: int
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        udp_port = probe.getsockname()[1]
    server = ke_server(negotiating_response(b"127.0.0.1", udp_port))
    entry = check_address("127.0.0.1", options_for(server, pki, ntp_exchange=True))
    assert entry["ke"]["server"] == "127.0.0.1"
    assert entry["ke"]["port"] == udp_port
    assert entry["problems"] == [f"127.0.0.1: NTP port {udp_port} refused (ICMP port unreachable)"]
    assert entry["ntp"] is None


def test_silent_ntp_server_times_out_within_the_timeout(ke_server: Callable[..., Any], pki: Any) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        udp_port = silent.getsockname()[1]
        server = ke_server(negotiating_response(None, udp_port))
        options = CheckOptions(name="localhost", port=server.port, ca_path=str(pki.ca_path), timeout=0.3)
        started = time.monotonic()
        entry = check_address("127.0.0.1", options)
        elapsed = time.monotonic() - started
        request, _peer = silent.recvfrom(65536)
    assert entry["problems"] == [f"127.0.0.1: NTP response from port {udp_port} timed out after 0.3 s"]
    assert elapsed < 0.3 * 3 + 0.5  # each step has its own 0.3 s; only the NTP step waits
    assert request[0] & 0x3F == 0x23  # NTPv4, mode 3 (client)
    assert len(request) > 48  # with NTS extension fields


def test_server_negotiating_an_impossible_name_is_a_problem_line(ke_server: Callable[..., Any], pki: Any) -> None:
    # Printable ASCII, so the record parser accepts it; the IDNA codec refuses the empty label.
    server = ke_server(negotiating_response(b"ntp..example.net", 4123))
    result = check_endpoint(options_for(server, pki, ntp_exchange=True), addresses=["127.0.0.1"])
    assert result["problems"] == ["127.0.0.1: negotiated NTP server 'ntp..example.net' is not a valid host name"]


def test_ntp_address_sends_the_exchange_there_with_the_cookies_of_the_ke_address(
    ke_server: Callable[..., Any], pki: Any
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        other.bind(("127.0.0.2", 0))
        udp_port = other.getsockname()[1]
        server = ke_server(negotiating_response(b"127.0.0.1", udp_port))
        options = CheckOptions(name="localhost", port=server.port, ca_path=str(pki.ca_path), timeout=0.3,
                               ntp_address="127.0.0.2")
        entry = check_address("127.0.0.1", options)
        request, _peer = other.recvfrom(65536)
    assert entry["problems"] == [f"127.0.0.1: NTP response from port {udp_port} timed out after 0.3 s"]
    assert request[0] & 0x3F == 0x23 and len(request) > 48  # an NTS request reached the other address


def test_ntp_address_must_be_an_address() -> None:
    with pytest.raises(EndpointCheckError, match="ntp_address"):
        CheckOptions(name="localhost", ntp_address="time.example.net").validate()


def _ntp_result(leap: int, stratum: int, refid: bytes) -> nts_session.NtpResult:
    response = nts_ntp.NtpResponse(
        leap=leap, version=4, mode=4, stratum=stratum, poll=4, precision=-20, root_delay=0.0,
        root_dispersion=0.0, refid=refid, refid_text=nts_ntp.refid_text(stratum, refid), reference_ts=0,
        origin_ts=1, receive_ts=2, transmit_ts=3, authenticated=True, cookies=[b"c" * 96],
    )
    return nts_session.NtpResult(response, "192.0.2.7", 123, 0.0001, 0.0004, 0.2)


@pytest.mark.parametrize(
    "case",
    [
        # ntpd-rs 1.4.0 without a source
        (3, 16, b"XNON", "XNON", "not synchronised (leap 3, stratum 16, refid XNON)"),
        (0, 16, b"XNON", "XNON", "not synchronised (leap 0, stratum 16, refid XNON)"),
        # NTPsec before its orphan stratum
        (3, 0, b"INIT", "INIT", "not synchronised (leap 3, stratum 0, refid INIT)"),
        (0, 1, b"GPS\x00", "GPS", None),
        (0, 2, b"\xc6\x33\x64\x07", "198.51.100.7", None),
        (0, 15, b"\xc6\x33\x64\x07", "198.51.100.7", None),
    ],
)
def test_ntp_section_reports_an_unsynchronised_server_and_its_refid(
    monkeypatch: pytest.MonkeyPatch, case: tuple[int, int, bytes, str, str | None]
) -> None:
    leap, stratum, refid, text, problem = case
    # The reply as the parser made it; the exchange itself is tested against real servers.
    monkeypatch.setattr(nts_session, "ntp_exchange", lambda *_args: _ntp_result(leap, stratum, refid))
    ke_records = nts_records.parse_records(ke_response(8))
    ke = nts_session.KeResult(nts_records.interpret_ke_response(ke_records, offered_aeads=(15,)), b"k" * 32,
                              b"k" * 32, 1.0)
    problems: list[str] = []
    section = endpoint._ntp_section("192.0.2.7", ke, CheckOptions(name="time.example.net"), problems)
    assert (section["stratum"], section["leap"], section["refid"], section["authenticated"]) == (
        stratum, leap, text, True)
    assert problems == ([f"NTP server 192.0.2.7 is {problem}"] if problem else [])
