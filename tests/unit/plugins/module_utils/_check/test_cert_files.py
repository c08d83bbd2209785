"""cert_files: the checks cert_check makes on certificate and key files, and on what is served."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._check import cert_files
from ansible_collections.ntsops.nts.plugins.module_utils._check.cert_files import (
    CertCheckError,
    check_files,
    parse_served,
)
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

DAY = datetime.timedelta(days=1)


class Messages:
    """Every message a test saw, so one check can prove no key material leaked."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def add(self, *texts: str) -> None:
        self.seen.extend(texts)

    def result(self, result: dict[str, Any]) -> dict[str, Any]:
        self.add(*result["problems"], repr(result))
        return result

    def error(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str:
        # The chained cause too: a module may show it in a traceback-free msg one day.
        texts = [str(excinfo.value), repr(excinfo.value)]
        if excinfo.value.__cause__ is not None:
            texts += [str(excinfo.value.__cause__)]
        self.add(*texts)
        return str(excinfo.value)


@pytest.fixture
def messages(pki: Any) -> Iterator[Messages]:
    seen = Messages()
    yield seen
    # Every key file under the test's folder: no line of its base64 body may appear.
    key_lines = set()
    for path in pki.directory.glob("*key*"):
        for line in path.read_bytes().decode("ascii", "replace").splitlines():
            if line and not line.startswith("-----"):
                key_lines.add(line)
    for text in seen.seen:
        assert "PRIVATE KEY" not in text
        for line in key_lines:
            assert line[:40] not in text


def test_good_files_pass_and_describe_the_leaf(pki: Any, messages: Messages) -> None:
    issued = pki.issue(dns=["time.example.net"], ips=["192.0.2.7"])
    result = messages.result(check_files(
        cert_path=str(issued.cert_path), key_path=str(issued.key_path),
        names=["time.example.net", "192.0.2.7"], ca_path=str(pki.ca_path),
    ))
    assert result["ok"] is True
    assert result["problems"] == []
    assert result["chain_length"] == 1
    assert result["served_matches"] is None
    assert result["served_sha256"] is None
    assert result["cert"]["sans"] == ["DNS:time.example.net", "IP:192.0.2.7"]
    assert result["cert"]["issuer"] == "CN=unit test root"


def test_key_of_another_certificate_is_reported_by_path(pki: Any, messages: Messages) -> None:
    issued = pki.issue()
    other = pki.issue()
    result = messages.result(check_files(
        cert_path=str(issued.cert_path), key_path=str(other.key_path), names=[], ca_path=str(pki.ca_path),
    ))
    assert result["ok"] is False
    assert result["problems"] == [f"key {other.key_path} does not match the certificate in {issued.cert_path}"]


def test_encrypted_key_is_refused_with_a_clear_message(pki: Any, certs: SimpleNamespace, messages: Messages) -> None:
    issued = pki.issue()
    encrypted = pki.directory / "encrypted.key.pem"
    encrypted.write_bytes(certs.key_pem(issued.key, password=b"secret-pass"))
    with pytest.raises(CertCheckError) as excinfo:
        check_files(cert_path=str(issued.cert_path), key_path=str(encrypted), names=[])
    assert messages.error(excinfo) == f"key file {encrypted} is encrypted; NTS servers need an unencrypted key"


def test_damaged_key_is_reported_without_quoting_it(pki: Any, messages: Messages) -> None:
    issued = pki.issue()
    damaged = pki.directory / "damaged.key.pem"
    lines = issued.key_path.read_bytes().splitlines()
    lines[2] = lines[2][::-1]  # a line of the base64 body reversed
    damaged.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(CertCheckError) as excinfo:
        check_files(cert_path=str(issued.cert_path), key_path=str(damaged), names=[])
    assert messages.error(excinfo) == f"key file {damaged} holds no readable PEM private key"


def test_key_file_given_as_certificate_is_not_echoed(pki: Any, messages: Messages) -> None:
    issued = pki.issue()
    with pytest.raises(CertCheckError) as excinfo:
        check_files(cert_path=str(issued.key_path), key_path=str(issued.key_path), names=[])
    assert messages.error(excinfo) == f"certificate file {issued.key_path} holds no readable PEM certificate"


def test_certificate_given_as_key_is_reported(pki: Any, messages: Messages) -> None:
    issued = pki.issue()
    with pytest.raises(CertCheckError) as excinfo:
        check_files(cert_path=str(issued.cert_path), key_path=str(issued.cert_path), names=[])
    assert messages.error(excinfo) == f"key file {issued.cert_path} holds no readable PEM private key"


@pytest.mark.parametrize("which", ["cert", "key"])
def test_unreadable_files_name_the_path_and_reason(pki: Any, messages: Messages, which: str) -> None:
    issued = pki.issue()
    missing = pki.directory / "missing.pem"
    paths = {"cert_path": str(issued.cert_path), "key_path": str(issued.key_path)}
    paths[f"{which}_path"] = str(missing)
    with pytest.raises(CertCheckError) as excinfo:
        check_files(names=[], **paths)
    what = "certificate file" if which == "cert" else "key file"
    assert messages.error(excinfo) == f"cannot read {what} {missing}: No such file or directory"


def test_a_directory_is_not_a_readable_file(pki: Any, messages: Messages) -> None:
    issued = pki.issue()
    with pytest.raises(CertCheckError) as excinfo:
        check_files(cert_path=str(pki.directory), key_path=str(issued.key_path), names=[])
    assert messages.error(excinfo) == f"cannot read certificate file {pki.directory}: Is a directory"


def test_chain_verifies_through_an_intermediate_in_the_file(pki: Any, messages: Messages) -> None:
    issued = pki.issue(via=pki.intermediate())
    result = messages.result(check_files(
        cert_path=str(issued.chain_path), key_path=str(issued.key_path), names=[], ca_path=str(pki.ca_path),
    ))
    assert result["problems"] == []
    assert result["chain_length"] == 2


def test_chain_without_its_intermediate_does_not_verify(pki: Any, messages: Messages) -> None:
    issued = pki.issue(via=pki.intermediate())
    result = messages.result(check_files(
        cert_path=str(issued.cert_path), key_path=str(issued.key_path), names=[], ca_path=str(pki.ca_path),
    ))
    assert result["ok"] is False
    assert result["problems"] == ["certificate chain does not verify: unable to get local issuer certificate"]


def test_chain_against_the_system_store_does_not_trust_a_private_ca(pki: Any, messages: Messages) -> None:
    issued = pki.issue()
    result = messages.result(check_files(cert_path=str(issued.cert_path), key_path=str(issued.key_path), names=[]))
    assert result["problems"] == ["certificate chain does not verify: unable to get local issuer certificate"]


def test_chain_against_another_ca_does_not_verify(pki: Any, tmp_path: Path, messages: Messages) -> None:
    (tmp_path / "other").mkdir()
    other_root = type(pki)(tmp_path / "other", "other root")
    issued = pki.issue()
    result = messages.result(check_files(
        cert_path=str(issued.cert_path), key_path=str(issued.key_path), names=[], ca_path=str(other_root.ca_path),
    ))
    assert result["problems"] == ["certificate chain does not verify: unable to get local issuer certificate"]


def test_unloadable_ca_bundle_is_an_error(pki: Any, messages: Messages) -> None:
    issued = pki.issue()
    with pytest.raises(CertCheckError) as excinfo:
        check_files(cert_path=str(issued.cert_path), key_path=str(issued.key_path), names=[],
                    ca_path=str(pki.directory / "no-bundle.pem"))
    assert messages.error(excinfo) == f"cannot load CA bundle {pki.directory / 'no-bundle.pem'}"


def test_every_uncovered_name_is_a_problem(pki: Any, messages: Messages) -> None:
    issued = pki.issue(dns=["time.example.net", "*.pool.example.net"])
    result = messages.result(check_files(
        cert_path=str(issued.cert_path), key_path=str(issued.key_path), ca_path=str(pki.ca_path),
        names=["time.example.net", "a.pool.example.net", "ntp.example.net", "192.0.2.1"],
    ))
    sans = "DNS:time.example.net, DNS:*.pool.example.net"
    assert result["problems"] == [
        f"certificate does not cover ntp.example.net (names: {sans})",
        f"certificate does not cover 192.0.2.1 (names: {sans})",
    ]


@pytest.mark.parametrize(
    ("min_days", "expected"), [(9, []), (10, []), (11, ["certificate expires in 10 days (minimum 11)"])]
)
def test_min_days(pki: Any, certs: SimpleNamespace, messages: Messages, min_days: int, expected: list[str]) -> None:
    # 10 days and 1 hour left: 10 whole days
    issued = pki.issue(not_after=certs.utcnow() + 10 * DAY + datetime.timedelta(hours=1))
    result = messages.result(check_files(
        cert_path=str(issued.cert_path), key_path=str(issued.key_path), names=[], ca_path=str(pki.ca_path),
        min_days=min_days,
    ))
    assert result["problems"] == expected
    assert result["cert"]["days_left"] == 10


def test_expired_certificate_fails_both_chain_and_validity(
    pki: Any, certs: SimpleNamespace, messages: Messages
) -> None:
    now = certs.utcnow()
    issued = pki.issue(not_before=now - 30 * DAY, not_after=now - 2 * DAY)
    result = messages.result(check_files(
        cert_path=str(issued.cert_path), key_path=str(issued.key_path), names=[], ca_path=str(pki.ca_path),
    ))
    assert result["problems"] == [
        "certificate chain does not verify: certificate has expired",
        f"certificate expired on {(now - 2 * DAY).isoformat()}",
    ]


def test_negative_min_days_is_refused_before_reading_files(messages: Messages) -> None:
    with pytest.raises(CertCheckError) as excinfo:
        check_files(cert_path="/nonexistent", key_path="/nonexistent", names=[], min_days=-1)
    assert messages.error(excinfo) == "min_days must not be negative, got -1"


def test_client_only_certificate_is_reported(pki: Any, messages: Messages) -> None:
    issued = pki.issue(eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    result = messages.result(check_files(
        cert_path=str(issued.cert_path), key_path=str(issued.key_path), names=[], ca_path=str(pki.ca_path),
    ))
    # OpenSSL's purpose check and cert_info's usage check both see it.
    assert "certificate extended key usage lacks serverAuth" in result["problems"]


@pytest.mark.parametrize(
    ("served", "expected"),
    [
        ("time.example.net", ("time.example.net", 4460)),
        ("time.example.net:4461", ("time.example.net", 4461)),
        ("  192.0.2.7:1 ", ("192.0.2.7", 1)),
        ("192.0.2.7:65535", ("192.0.2.7", 65535)),
        ("[2001:db8::7]:4460", ("2001:db8::7", 4460)),
        ("[2001:db8::7]:123", ("2001:db8::7", 123)),
        ("[::1]", ("::1", 4460)),
        ("::1", ("::1", 4460)),
        ("2001:db8::7", ("2001:db8::7", 4460)),  # bare IPv6: every colon belongs to the address
    ],
)
def test_parse_served(served: str, expected: tuple[str, int]) -> None:
    assert parse_served(served) == expected


@pytest.mark.parametrize(
    ("served", "message"),
    [
        ("time.example.net:0", "served port must be 1-65535, got 0"),
        ("time.example.net:65536", "served port must be 1-65535, got 65536"),
        ("time.example.net:-4", "served port must be 1-65535, got -4"),
        ("time.example.net:ntske", "served has a bad port: 'time.example.net:ntske'"),
        ("[::1]:x", "served has a bad port: '[::1]:x'"),
        ("[::1]:70000", "served port must be 1-65535, got 70000"),
        (":4460", "served must be host or host:port, got ':4460'"),
        ("", "served must be host or host:port, got ''"),
        ("[]:4460", "served must be host or host:port, got '[]:4460'"),
        ("[::1]4461", "served must be host or host:port, got '[::1]4461'"),
        ("[::1", "served must be host or host:port, got '[::1'"),
    ],
)
def test_parse_served_rejects_bad_input(served: str, message: str) -> None:
    with pytest.raises(CertCheckError) as excinfo:
        parse_served(served)
    assert str(excinfo.value) == message


def test_served_certificate_matching_the_file(
    pki: Any, tls_server: Callable[..., Any], messages: Messages
) -> None:
    issued = pki.issue(dns=["localhost"])
    server = tls_server(issued.chain_path, issued.key_path)
    result = messages.result(check_files(
        cert_path=str(issued.cert_path), key_path=str(issued.key_path), names=["localhost"],
        ca_path=str(pki.ca_path), served=f"127.0.0.1:{server.port}", timeout=2,
    ))
    assert result["problems"] == []
    assert result["served_matches"] is True
    assert result["served_sha256"] == result["cert"]["sha256"]


def test_served_certificate_differing_from_the_file_is_reported(
    pki: Any, tls_server: Callable[..., Any], messages: Messages
) -> None:
    loaded = pki.issue(dns=["localhost"])
    renewed = pki.issue(dns=["localhost"])
    server = tls_server(loaded.chain_path, loaded.key_path)
    served = f"127.0.0.1:{server.port}"
    result = messages.result(check_files(
        cert_path=str(renewed.cert_path), key_path=str(renewed.key_path), names=["localhost"],
        ca_path=str(pki.ca_path), served=served, timeout=2,
    ))
    assert result["served_matches"] is False
    assert result["served_sha256"] == cert_files.cert_info.sha256_fingerprint(loaded.cert)
    assert result["problems"] == [
        f"{served} serves a different certificate (sha256 {result['served_sha256']}) than {renewed.cert_path};"
        " restart or reload the NTS server to load the file"
    ]


def test_served_on_ipv6_loopback(pki: Any, tls_server: Callable[..., Any], messages: Messages) -> None:
    issued = pki.issue(dns=["localhost"], ips=["::1"])
    server = tls_server(issued.chain_path, issued.key_path, host="::1")
    result = messages.result(check_files(
        cert_path=str(issued.cert_path), key_path=str(issued.key_path), names=["::1"],
        ca_path=str(pki.ca_path), served=f"[::1]:{server.port}", timeout=2,
    ))
    assert result["problems"] == []
    assert result["served_matches"] is True


def test_served_port_closed_is_a_problem_not_an_error(pki: Any, closed_port: int, messages: Messages) -> None:
    issued = pki.issue()
    result = messages.result(check_files(
        cert_path=str(issued.cert_path), key_path=str(issued.key_path), names=[], ca_path=str(pki.ca_path),
        served=f"127.0.0.1:{closed_port}", timeout=1,
    ))
    assert result["served_matches"] is None
    assert result["problems"] == [
        f"served certificate on 127.0.0.1:{closed_port} could not be fetched: TCP {closed_port} refused"
    ]


def test_served_tls12_server_is_reported(pki: Any, tls_server: Callable[..., Any], messages: Messages) -> None:
    issued = pki.issue(dns=["localhost"])
    server = tls_server(issued.chain_path, issued.key_path, max_version=ssl.TLSVersion.TLSv1_2)
    result = messages.result(check_files(
        cert_path=str(issued.cert_path), key_path=str(issued.key_path), names=[], ca_path=str(pki.ca_path),
        served=f"127.0.0.1:{server.port}", timeout=2,
    ))
    assert result["served_matches"] is None
    assert len(result["problems"]) == 1
    assert result["problems"][0].startswith(
        f"served certificate on 127.0.0.1:{server.port} could not be fetched: TLS handshake failed:"
        " server does not offer TLS 1.3"
    )


def test_key_matches_compares_public_keys(certs: SimpleNamespace) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP256R1())
    cert = certs.build(key, other, dns=["time.example.net"])  # signed by `other`, holds `key`
    assert cert_files.key_matches(cert, key)
    assert not cert_files.key_matches(cert, other)


def test_served_host_that_is_no_host_name_is_a_problem_not_a_traceback(pki: Any, messages: Messages) -> None:
    issued = pki.issue()
    result = messages.result(check_files(
        cert_path=str(issued.cert_path), key_path=str(issued.key_path), names=[], ca_path=str(pki.ca_path),
        served="time..example.net:4460", timeout=1,
    ))
    assert result["served_matches"] is None
    assert result["problems"] == [
        "served certificate on time..example.net:4460 could not be fetched:"
        " served host 'time..example.net' is not a valid host name"
    ]
