"""A throw-away test CA that issues NTS server certificates as PEM files.

Every certificate is written to the CA's own directory: key (mode 0600), leaf
certificate, and a chain file (leaf followed by the issuing CA) - the form both
chronyd (`ntsservercert`) and ntpd (`nts cert`) load.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class IssuedCert:
    """Paths and identity of one issued server certificate."""

    name: str
    cert_path: Path
    key_path: Path
    chain_path: Path
    sha256: str  # hex, lower case, of the DER leaf certificate
    not_before: datetime.datetime
    not_after: datetime.datetime
    dns: tuple[str, ...] = field(default_factory=tuple)
    ips: tuple[str, ...] = field(default_factory=tuple)
    ca_path: Path | None = None  # the issuing CA certificate


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


class TestCA:
    """A self-signed ECDSA P-256 CA living in `directory`."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, directory: Path | str, common_name: str = "ntsops test CA") -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.common_name = common_name
        slug = "".join(ch if ch.isalnum() else "-" for ch in common_name).strip("-")
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = _utcnow()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_path = self.directory / f"{slug}.ca.pem"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    @property
    def ca_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(
        self,
        name: str,
        *,
        dns: list[str] | tuple[str, ...] | None = None,
        ips: list[str] | tuple[str, ...] | None = None,
        days: float = 90,
        not_before: datetime.datetime | None = None,
        common_name: str | None = None,
        server_auth: bool = True,
    ) -> IssuedCert:
        """Issue a server certificate; files are named after `name` (a file slug).

        `days` counts from `not_before` (default: one hour ago), so
        `not_before=now - 10 days, days=5` gives a certificate that expired 5 days ago
        and `days=3` a certificate that expires in about 3 days.
        """
        dns = tuple(dns or ())
        ips = tuple(ips or ())
        if not dns and not ips:
            raise ValueError("a server certificate needs at least one DNS or IP SAN")
        start = not_before or (_utcnow() - datetime.timedelta(hours=1))
        end = start + datetime.timedelta(days=days)
        if not_before is None:
            # "expires in N days" should read N days from now, not from an hour ago
            end = _utcnow() + datetime.timedelta(days=days)
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
        eku = [ExtendedKeyUsageOID.SERVER_AUTH] if server_auth else [ExtendedKeyUsageOID.CLIENT_AUTH]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name or (dns or ips)[0])]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=False,
                    crl_sign=False, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        leaf_pem = cert.public_bytes(serialization.Encoding.PEM)
        cert_path = self.directory / f"{name}.crt.pem"
        key_path = self.directory / f"{name}.key.pem"
        chain_path = self.directory / f"{name}.chain.pem"
        cert_path.write_bytes(leaf_pem)
        chain_path.write_bytes(leaf_pem + self.ca_pem)
        _write_private(
            key_path,
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
        return IssuedCert(
            name=name,
            cert_path=cert_path,
            key_path=key_path,
            chain_path=chain_path,
            sha256=hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
            not_before=start,
            not_after=end,
            dns=dns,
            ips=ips,
            ca_path=self.cert_path,
        )

    def issue_expired(self, name: str, *, dns: list[str] | None = None, ips: list[str] | None = None) -> IssuedCert:
        """A certificate whose validity ended two days ago."""
        start = _utcnow() - datetime.timedelta(days=32)
        return self.issue(name, dns=dns, ips=ips, days=30, not_before=start)

    def issue_expiring(
        self, name: str, days_left: float, *, dns: list[str] | None = None, ips: list[str] | None = None
    ) -> IssuedCert:
        """A currently valid certificate that expires in `days_left` days."""
        return self.issue(name, dns=dns, ips=ips, days=days_left)
