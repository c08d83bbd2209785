"""Fixtures for the certificate and NTS client unit tests.

`pki` makes CA and server certificates with `cryptography` in the test's tmp_path;
`tls_server` runs a TLS server on a loopback port the test itself opens, in a
thread, so the client code runs against real TLS without any daemon.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

UTC = datetime.UTC


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(UTC).replace(microsecond=0)


def key_usage(*, digital_signature: bool = True, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature, content_commitment=False, key_encipherment=not digital_signature,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
        encipher_only=False, decipher_only=False,
    )


def build_cert(
    subject_key: Any,
    issuer_key: Any,
    *,
    common_name: str = "server",
    issuer_name: x509.Name | None = None,
    dns: Sequence[str] = (),
    ips: Sequence[str] = (),
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
    usage: x509.KeyUsage | None = None,
    eku: Sequence[x509.ObjectIdentifier] | None = (ExtendedKeyUsageOID.SERVER_AUTH,),
    ca: bool | None = False,
) -> x509.Certificate:
    """One certificate; an argument of None leaves that extension out."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = utcnow()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name or subject)
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - datetime.timedelta(hours=1))
        .not_valid_after(not_after or now + datetime.timedelta(days=90))
    )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    if usage is not None:
        builder = builder.add_extension(usage, critical=True)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(address)) for address in ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    algorithm = None if isinstance(issuer_key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey) else hashes.SHA256()
    return builder.sign(issuer_key, algorithm)


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: Any, password: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


@dataclass
class Issued:
    cert: x509.Certificate
    key: Any
    cert_path: Path  # leaf only
    chain_path: Path  # leaf, then the intermediates that issued it
    key_path: Path


class Pki:
    """A root CA (optionally an intermediate) issuing server certificates as files."""

    def __init__(self, directory: Path, name: str = "unit test root") -> None:
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = build_cert(
            self.key, self.key, common_name=name, usage=key_usage(cert_sign=True), eku=None, ca=True
        )
        self.ca_path = directory / f"{name.replace(' ', '-')}.pem"
        self.ca_path.write_bytes(pem(self.cert))
        self._count = 0

    def intermediate(self, name: str = "unit test intermediate") -> tuple[x509.Certificate, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = build_cert(
            key, self.key, common_name=name, issuer_name=self.cert.subject,
            usage=key_usage(cert_sign=True), eku=None, ca=True,
        )
        return cert, key

    def issue(
        self,
        *,
        dns: Sequence[str] = ("time.example.net",),
        ips: Sequence[str] = (),
        via: tuple[x509.Certificate, Any] | None = None,
        **options: Any,
    ) -> Issued:
        self._count += 1
        key = ec.generate_private_key(ec.SECP256R1())
        issuer_cert, issuer_key = via or (self.cert, self.key)
        options.setdefault("usage", key_usage())
        cert = build_cert(
            key, issuer_key, common_name=(list(dns) + list(ips))[0], issuer_name=issuer_cert.subject,
            dns=dns, ips=ips, **options,
        )
        stem = self.directory / f"server{self._count}"
        cert_path = stem.with_suffix(".crt.pem")
        chain_path = stem.with_suffix(".chain.pem")
        key_path = stem.with_suffix(".key.pem")
        cert_path.write_bytes(pem(cert))
        chain_path.write_bytes(pem(cert) + (pem(issuer_cert) if via else b""))
        key_path.write_bytes(key_pem(key))
        return Issued(cert, key, cert_path, chain_path, key_path)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


@pytest.fixture
def certs() -> SimpleNamespace:
    """The builders above, for tests that make certificates by hand."""
    return SimpleNamespace(build=build_cert, pem=pem, key_pem=key_pem, key_usage=key_usage, utcnow=utcnow)


Handler = Callable[[ssl.SSLSocket], None]


class LoopbackTlsServer:
    """Accepts TLS connections on 127.0.0.1 (or ::1) in a thread and runs `handler` on each."""

    def __init__(
        self,
        chain_path: Path,
        key_path: Path,
        *,
        alpn: Sequence[str] | None = ("ntske/1",),
        max_version: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
        handler: Handler | None = None,
        response: bytes | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        """`response`: read the request (one read, kept in `requests`) and answer these bytes."""
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(chain_path, key_path)
        self.context.maximum_version = max_version
        if alpn:
            self.context.set_alpn_protocols(list(alpn))
        self.requests: list[bytes] = []
        self.handler = reply_with(response, self.requests) if response is not None else handler
        self.listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.listener.bind((host, 0))
        self.listener.listen(32)
        self.listener.settimeout(0.05)
        self.host = host
        self.port = int(self.listener.getsockname()[1])
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _peer = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(3)
            try:
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    if self.handler:
                        self.handler(tls)
            except (OSError, ssl.SSLError) as exc:  # a client that gives up is fine
                self.errors.append(exc)
            finally:
                conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.listener.close()


def reply_with(response: bytes, requests: list[bytes] | None = None) -> Handler:
    """A handler that reads the NTS-KE request (one read) and answers `response`."""

    def handle(tls: ssl.SSLSocket) -> None:
        data = tls.recv(65536)
        if requests is not None:
            requests.append(data)
        tls.sendall(response)
        with contextlib.suppress(OSError, ssl.SSLError):
            tls.unwrap()

    return handle


@pytest.fixture
def tls_server() -> Iterator[Callable[..., LoopbackTlsServer]]:
    servers: list[LoopbackTlsServer] = []

    def start(*args: Any, **kwargs: Any) -> LoopbackTlsServer:
        server = LoopbackTlsServer(*args, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def closed_port() -> int:
    """A loopback TCP port nobody listens on (bound and released; nothing else races on lo here)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
