# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check the certificate and key files an NTS server serves, and what it serves now.

Messages never contain key material: a key that cannot be read is reported by
path and reason only.
"""

from __future__ import annotations

import datetime
import re
import ssl
from collections.abc import Sequence
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._check import cert_info
from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError
from ansible_collections.ntsops.nts.plugins.module_utils._net.resolve import resolve_host
from ansible_collections.ntsops.nts.plugins.module_utils._net.tls import open_tls
from ansible_collections.ntsops.nts.plugins.module_utils._nts.records import NTS_KE_PORT

try:
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
except ImportError:  # pragma: no cover - reported when used
    x509 = None  # type: ignore[assignment]

try:
    from OpenSSL import crypto as openssl_crypto
except ImportError:  # pragma: no cover - reported when used
    openssl_crypto = None  # type: ignore[assignment]


class CertCheckError(NtsopsError):
    """The check could not run (bad options, unreadable file)."""


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise CertCheckError(f"cannot read {what} {path}: {exc.strerror}") from exc


def load_certificates(path: str) -> list[x509.Certificate]:
    """Every certificate in a PEM file, leaf first as servers send them."""
    cert_info.require_cryptography()
    data = _read(path, "certificate file")
    try:
        certs = _load_pem_certificates(data)
    except ValueError as exc:
        raise CertCheckError(f"certificate file {path} holds no readable PEM certificate") from exc
    if not certs:
        raise CertCheckError(f"certificate file {path} holds no readable PEM certificate")
    return certs


_PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def _load_pem_certificates(data: bytes) -> list[x509.Certificate]:
    # load_pem_x509_certificates needs cryptography 39; Debian 12 hosts have 38.
    if hasattr(x509, "load_pem_x509_certificates"):
        return list(x509.load_pem_x509_certificates(data))
    return [x509.load_pem_x509_certificate(block) for block in _PEM_CERTIFICATE.findall(data)]


def load_private_key(path: str) -> Any:
    cert_info.require_cryptography()
    data = _read(path, "key file")
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:
        raise CertCheckError(f"key file {path} is encrypted; NTS servers need an unencrypted key") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        # The exception text of a parser could quote input; say only what failed.
        raise CertCheckError(f"key file {path} holds no readable PEM private key") from exc


def _public_der(key: Any) -> bytes:
    return bytes(
        key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def key_matches(cert: x509.Certificate, key: Any) -> bool:
    return _public_der(cert.public_key()) == _public_der(key.public_key())


def chain_problems(chain: Sequence[x509.Certificate], ca_path: str | None) -> list[str]:
    """Verify leaf and intermediates against ca_path, or the system store when it is None."""
    if openssl_crypto is None:
        raise CertCheckError("the Python library 'pyOpenSSL' is required to verify certificate chains")
    store = openssl_crypto.X509Store()
    if ca_path:
        try:
            store.load_locations(ca_path)
        except openssl_crypto.Error as exc:
            raise CertCheckError(f"cannot load CA bundle {ca_path}") from exc
    else:
        # The same default locations OpenSSL clients use.
        defaults = ssl.get_default_verify_paths()
        store.load_locations(defaults.cafile, defaults.capath)
    leaf = openssl_crypto.X509.from_cryptography(chain[0])
    intermediates = [openssl_crypto.X509.from_cryptography(cert) for cert in chain[1:]]
    context = openssl_crypto.X509StoreContext(store, leaf, chain=intermediates)
    try:
        context.verify_certificate()
    except openssl_crypto.X509StoreContextError as exc:
        return [f"certificate chain does not verify: {exc}"]
    return []


def parse_served(served: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address -> (host, port)."""
    text = served.strip()
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            # "[::1]4461" or "[::1": never check port 4460 when something else was meant.
            raise CertCheckError(f"served must be host or host:port, got {served!r}")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _colon, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not host:
        raise CertCheckError(f"served must be host or host:port, got {served!r}")
    try:
        port = int(port_text) if port_text else NTS_KE_PORT
    except ValueError as exc:
        raise CertCheckError(f"served has a bad port: {served!r}") from exc
    if not 1 <= port <= 65535:
        raise CertCheckError(f"served port must be 1-65535, got {port}")
    return host, port


def fetch_served_certificate(served: str, server_name: str | None, timeout: float) -> x509.Certificate:
    """The leaf certificate an NTS-KE server sends now (TLS 1.3, ALPN ntske/1)."""
    host, port = parse_served(served)
    if cert_info.is_ip_address(host):
        address = host
    else:
        address = resolve_host(host, what="served host ", error=CertCheckError)[0]
        server_name = server_name or host
    # Only the fingerprint matters here; trust is checked on the files.
    session = open_tls(address, port, server_name, None, timeout)
    try:
        if not session.chain:
            raise CertCheckError(f"{served} sent no certificate")
        leaf: x509.Certificate = session.chain[0]
        return leaf
    finally:
        session.close()


def check_files(
    *,
    cert_path: str,
    key_path: str,
    names: Sequence[str],
    ca_path: str | None = None,
    min_days: int = 14,
    served: str | None = None,
    timeout: float = 5.0,
) -> dict[str, Any]:
    """Every check cert_check makes; ``ok`` is true when ``problems`` is empty."""
    if min_days < 0:
        raise CertCheckError(f"min_days must not be negative, got {min_days}")
    chain = load_certificates(cert_path)
    key = load_private_key(key_path)
    leaf = chain[0]
    now = datetime.datetime.now(datetime.UTC)
    problems: list[str] = []
    if not key_matches(leaf, key):
        problems.append(f"key {key_path} does not match the certificate in {cert_path}")
    problems.extend(chain_problems(chain, ca_path))
    for name in names:
        mismatch = cert_info.name_mismatch(leaf, name)
        if mismatch:
            problems.append(mismatch)
    problems.extend(cert_info.validity_problems(leaf, now, min_days))
    problems.extend(cert_info.usage_problems(leaf))
    served_matches = None
    served_sha256 = None
    if served:
        try:
            served_cert = fetch_served_certificate(served, names[0] if names else None, timeout)
        except NtsopsError as exc:
            problems.append(f"served certificate on {served} could not be fetched: {exc}")
        else:
            served_sha256 = cert_info.sha256_fingerprint(served_cert)
            served_matches = served_sha256 == cert_info.sha256_fingerprint(leaf)
            if not served_matches:
                problems.append(
                    f"{served} serves a different certificate (sha256 {served_sha256}) than {cert_path};"
                    " restart or reload the NTS server to load the file"
                )
    return {
        "ok": not problems,
        "problems": problems,
        "cert": cert_info.describe(leaf, now),
        "chain_length": len(chain),
        "served_matches": served_matches,
        "served_sha256": served_sha256,
    }
