# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Describe X.509 certificates the way endpoint_check and cert_check report them."""

from __future__ import annotations

import datetime
import ipaddress
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._errors import MissingDependencyError

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID
except ImportError:  # pragma: no cover - reported when used
    x509 = None  # type: ignore[assignment]

try:
    from service_identity import VerificationError as ServiceIdentityError
    from service_identity import cryptography as service_identity_x509
except ImportError:  # pragma: no cover - reported when used
    service_identity_x509 = None  # type: ignore[assignment]


def require_cryptography() -> None:
    if x509 is None:
        raise MissingDependencyError("cryptography", "to read certificates")


def require_service_identity() -> None:
    if service_identity_x509 is None:
        raise MissingDependencyError("service-identity", "to check certificate names")


def is_ip_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def sha256_fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def key_type(cert: x509.Certificate) -> str:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA {key.key_size}"
    return type(key).__name__


def subject_alt_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names = [f"DNS:{value}" for value in san.get_values_for_type(x509.DNSName)]
    names += [f"IP:{value}" for value in san.get_values_for_type(x509.IPAddress)]
    return names


def not_before(cert: x509.Certificate) -> datetime.datetime:
    """notBefore as an aware UTC datetime (``not_valid_before_utc`` needs cryptography 42,
    and Debian 12 hosts, where cert_check runs, have 38)."""
    if hasattr(cert, "not_valid_before_utc"):
        value: datetime.datetime = cert.not_valid_before_utc
        return value
    return cert.not_valid_before.replace(tzinfo=datetime.UTC)


def not_after(cert: x509.Certificate) -> datetime.datetime:
    """notAfter as an aware UTC datetime (see not_before)."""
    if hasattr(cert, "not_valid_after_utc"):
        value: datetime.datetime = cert.not_valid_after_utc
        return value
    return cert.not_valid_after.replace(tzinfo=datetime.UTC)


def days_left(cert: x509.Certificate, now: datetime.datetime) -> int:
    """Whole days until notAfter; negative once expired."""
    remaining = not_after(cert) - now
    return remaining.days


def lifetime_days(cert: x509.Certificate) -> float:
    """notBefore to notAfter, in days."""
    return (not_after(cert) - not_before(cert)).total_seconds() / 86400


def lifetime_left(cert: x509.Certificate, now: datetime.datetime) -> float:
    """The fraction of the certificate's lifetime still to come, 0 to 1."""
    lifetime = (not_after(cert) - not_before(cert)).total_seconds()
    if lifetime <= 0:
        return 0.0
    return min(1.0, max(0.0, (not_after(cert) - now).total_seconds() / lifetime))


def describe(cert: x509.Certificate, now: datetime.datetime) -> dict[str, Any]:
    """The certificate fields both modules return under ``cert``."""
    return {
        "subject": cert.subject.rfc4514_string(),
        "sans": subject_alt_names(cert),
        "issuer": cert.issuer.rfc4514_string(),
        "not_before": not_before(cert).isoformat(),
        "not_after": not_after(cert).isoformat(),
        "days_left": days_left(cert, now),
        "lifetime_days": round(lifetime_days(cert), 3),
        "lifetime_left": round(lifetime_left(cert, now), 4),
        "sha256": sha256_fingerprint(cert),
        "key_type": key_type(cert),
    }


def name_mismatch(cert: x509.Certificate, name: str) -> str | None:
    """Why ``cert`` does not cover ``name`` (RFC 6125 rules via service-identity), or None."""
    require_service_identity()
    if not subject_alt_names(cert):
        # Checked here because service-identity before 23.1 (Debian 12's 21.1) still
        # falls back to the subject CN, which RFC 6125 and current clients do not.
        return "certificate names cannot be read: the certificate has no subjectAltName"
    try:
        if is_ip_address(name):
            service_identity_x509.verify_certificate_ip_address(cert, name)
        else:
            # service-identity needs the idna package for non-ASCII names; the A-label
            # from Python's own codec is what goes into SNI and the certificate anyway.
            service_identity_x509.verify_certificate_hostname(cert, name.encode("idna").decode("ascii"))
    except ValueError:
        # Also UnicodeError: a name no certificate can hold must be a problem line, not a traceback.
        return f"{name!r} is not a valid host name"
    except ServiceIdentityError:
        return f"certificate does not cover {name} (names: {', '.join(subject_alt_names(cert)) or 'none'})"
    except service_identity_x509.CertificateError as exc:
        return f"certificate names cannot be read: {exc}"
    return None


def validity_problems(
    cert: x509.Certificate, now: datetime.datetime, min_days: int, min_fraction: float | None = None
) -> list[str]:
    """The validity window's problems; ``min_fraction`` (of the lifetime left) replaces ``min_days``.

    A fixed number of days suits no lifetime: 14 days is always too late for a 90-day
    certificate renewed at 30 days left, and always a problem for a 6-day one.
    """
    if now < not_before(cert):
        return [f"certificate is not valid before {not_before(cert).isoformat()}"]
    left = days_left(cert, now)
    if now > not_after(cert):
        return [f"certificate expired on {not_after(cert).isoformat()}"]
    if min_fraction is not None:
        fraction = lifetime_left(cert, now)
        if fraction < min_fraction:
            remaining = (not_after(cert) - now).total_seconds() / 86400
            return [
                f"certificate has {remaining:.1f} of its {lifetime_days(cert):.1f} days left "
                f"({fraction:.0%}, minimum {min_fraction:.0%} of its lifetime)"
            ]
        return []
    if left < min_days:
        return [f"certificate expires in {left} days (minimum {min_days})"]
    return []


def usage_problems(cert: x509.Certificate) -> list[str]:
    """Key usage and extended key usage that a TLS 1.3 server certificate needs."""
    problems = []
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    # TLS 1.3 servers sign the handshake, so digitalSignature is what matters.
    if usage is not None and not usage.digital_signature:
        problems.append("certificate key usage lacks digitalSignature")
    try:
        extended = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        extended = None
    if extended is not None and ExtendedKeyUsageOID.SERVER_AUTH not in extended:
        problems.append("certificate extended key usage lacks serverAuth")
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is not None and constraints.ca:
        problems.append("certificate is a CA certificate, not a server certificate")
    return problems
