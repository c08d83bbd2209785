"""cert_info: the certificate fields both modules report, and the checks on them."""

from __future__ import annotations

import datetime
import hashlib
from types import SimpleNamespace

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._check import cert_info
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

DAY = datetime.timedelta(days=1)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def self_signed(certs: SimpleNamespace, **options: object):  # type: ignore[no-untyped-def]
    return certs.build(EC_KEY, EC_KEY, **options)


def test_describe_reports_every_field_from_the_certificate(certs: SimpleNamespace) -> None:
    not_before = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    not_after = datetime.datetime(2026, 4, 2, 3, 4, 5, tzinfo=datetime.UTC)
    cert = self_signed(
        certs, common_name="time.example.net", dns=["time.example.net"], ips=["192.0.2.7"],
        not_before=not_before, not_after=not_after,
    )
    now = datetime.datetime(2026, 3, 1, 0, 0, 0, tzinfo=datetime.UTC)
    described = cert_info.describe(cert, now)
    assert described == {
        "subject": "CN=time.example.net",
        "sans": ["DNS:time.example.net", "IP:192.0.2.7"],
        "issuer": "CN=time.example.net",
        "not_before": "2026-01-02T03:04:05+00:00",
        "not_after": "2026-04-02T03:04:05+00:00",
        # 32 days, 3 hours and change: whole days only
        "days_left": 32,
        # 90 days from notBefore to notAfter; 32 days 3 h 4 min 5 s of them left.
        "lifetime_days": 90.0,
        "lifetime_left": round((32 * 86400 + 3 * 3600 + 4 * 60 + 5) / (90 * 86400), 4),
        "sha256": hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
        "key_type": "EC secp256r1",
    }


def test_describe_shows_the_issuer_not_the_subject(certs: SimpleNamespace, pki) -> None:  # type: ignore[no-untyped-def]
    leaf = pki.issue(dns=["a.example.net"]).cert
    described = cert_info.describe(leaf, certs.utcnow())
    assert described["subject"] == "CN=a.example.net"
    assert described["issuer"] == "CN=unit test root"


def test_subject_alt_names_lists_dns_then_ip_in_canonical_form(certs: SimpleNamespace) -> None:
    cert = self_signed(certs, dns=["b.example.net", "a.example.net"], ips=["2001:db8:0:0::7", "198.51.100.1"])
    assert cert_info.subject_alt_names(cert) == [
        "DNS:b.example.net", "DNS:a.example.net", "IP:2001:db8::7", "IP:198.51.100.1",
    ]


def test_subject_alt_names_is_empty_without_the_extension(certs: SimpleNamespace) -> None:
    assert cert_info.subject_alt_names(self_signed(certs)) == []


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (rsa.generate_private_key(public_exponent=65537, key_size=2048), "RSA 2048"),
        (ec.generate_private_key(ec.SECP384R1()), "EC secp384r1"),
        (ed25519.Ed25519PrivateKey.generate(), "Ed25519"),
        (ed448.Ed448PrivateKey.generate(), "Ed448"),
    ],
)
def test_key_type_names_algorithm_and_size(certs: SimpleNamespace, key: object, expected: str) -> None:
    cert = certs.build(key, key, dns=["time.example.net"])
    assert cert_info.key_type(cert) == expected
    assert cert_info.describe(cert, certs.utcnow())["key_type"] == expected


# validity_problems boundaries; the window is [start, end] as RFC 5280 defines it.
START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
END = START + 100 * DAY


@pytest.fixture
def hundred_day_cert(certs: SimpleNamespace):  # type: ignore[no-untyped-def]
    return self_signed(certs, dns=["time.example.net"], not_before=START, not_after=END)


@pytest.mark.parametrize(
    ("now", "min_days", "expected"),
    [
        (START - datetime.timedelta(seconds=1), 14, ["certificate is not valid before 2026-01-01T00:00:00+00:00"]),
        (START, 14, []),
        (END - 14 * DAY, 14, []),  # exactly the minimum left
        (END - 14 * DAY + datetime.timedelta(seconds=1), 14, ["certificate expires in 13 days (minimum 14)"]),
        (END - 3 * DAY, 14, ["certificate expires in 3 days (minimum 14)"]),
        (END - 3 * DAY, 3, []),
        (END, 0, []),  # the last valid second
        (END + datetime.timedelta(seconds=1), 0, ["certificate expired on 2026-04-11T00:00:00+00:00"]),
        (END + 30 * DAY, 14, ["certificate expired on 2026-04-11T00:00:00+00:00"]),
    ],
)
def test_validity_problems_boundaries(
    hundred_day_cert: object, now: datetime.datetime, min_days: int, expected: list[str]
) -> None:
    assert cert_info.validity_problems(hundred_day_cert, now, min_days) == expected  # type: ignore[arg-type]


def test_days_left_is_negative_once_expired(hundred_day_cert: object) -> None:
    assert cert_info.days_left(hundred_day_cert, END + 2 * DAY) == -2  # type: ignore[arg-type]
    assert cert_info.days_left(hundred_day_cert, END - datetime.timedelta(hours=1)) == 0  # type: ignore[arg-type]


def test_usage_problems_accepts_a_normal_server_certificate(certs: SimpleNamespace) -> None:
    cert = self_signed(certs, dns=["t.example.net"], usage=certs.key_usage())
    assert cert_info.usage_problems(cert) == []


def test_usage_problems_accepts_a_certificate_without_usage_extensions(certs: SimpleNamespace) -> None:
    cert = self_signed(certs, dns=["t.example.net"], usage=None, eku=None, ca=None)
    assert cert_info.usage_problems(cert) == []


def test_usage_problems_names_each_unsuitable_extension(certs: SimpleNamespace) -> None:
    cert = self_signed(
        certs, dns=["t.example.net"], usage=certs.key_usage(digital_signature=False),
        eku=[ExtendedKeyUsageOID.CLIENT_AUTH], ca=True,
    )
    assert cert_info.usage_problems(cert) == [
        "certificate key usage lacks digitalSignature",
        "certificate extended key usage lacks serverAuth",
        "certificate is a CA certificate, not a server certificate",
    ]


def test_usage_problems_accepts_server_auth_among_other_purposes(certs: SimpleNamespace) -> None:
    cert = self_signed(
        certs, dns=["t.example.net"], eku=[ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
    )
    assert cert_info.usage_problems(cert) == []


@pytest.mark.parametrize(
    ("sans", "name"),
    [
        ({"dns": ["time.example.net"]}, "time.example.net"),
        ({"dns": ["time.example.net"]}, "TIME.Example.NET"),  # DNS names compare case-insensitively
        ({"dns": ["other.example.net", "time.example.net"]}, "time.example.net"),
        ({"dns": ["*.example.net"]}, "ntp1.example.net"),
        ({"ips": ["192.0.2.7"]}, "192.0.2.7"),
        ({"ips": ["2001:db8::7"]}, "2001:db8:0:0:0:0:0:7"),  # the address, not its spelling
        ({"dns": ["time.example.net"], "ips": ["::1"]}, "::1"),
    ],
)
def test_name_mismatch_accepts_covered_names(certs: SimpleNamespace, sans: dict[str, list[str]], name: str) -> None:
    assert cert_info.name_mismatch(self_signed(certs, **sans), name) is None


@pytest.mark.parametrize(
    ("sans", "name"),
    [
        ({"dns": ["time.example.net"]}, "ntp.example.net"),
        ({"dns": ["*.example.net"]}, "a.b.example.net"),  # a wildcard covers one label only
        ({"dns": ["*.example.net"]}, "example.net"),
        ({"ips": ["192.0.2.7"]}, "192.0.2.8"),
        ({"ips": ["192.0.2.7"]}, "time.example.net"),
    ],
)
def test_name_mismatch_rejects_uncovered_names(certs: SimpleNamespace, sans: dict[str, list[str]], name: str) -> None:
    cert = self_signed(certs, **sans)
    listed = ", ".join(cert_info.subject_alt_names(cert))
    assert cert_info.name_mismatch(cert, name) == f"certificate does not cover {name} (names: {listed})"


def test_name_mismatch_does_not_take_an_address_from_a_dns_san(certs: SimpleNamespace) -> None:
    # An address must be an IP SAN; service-identity refuses a DNS SAN that holds one.
    problem = cert_info.name_mismatch(self_signed(certs, dns=["192.0.2.7"]), "192.0.2.7")
    assert problem == "certificate names cannot be read: Invalid DNS pattern b'192.0.2.7'."


def test_name_mismatch_without_sans_reports_that_names_cannot_be_read(certs: SimpleNamespace) -> None:
    # The common name is not a fallback (RFC 6125, and what chrony and browsers do).
    cert = self_signed(certs, common_name="time.example.net")
    problem = cert_info.name_mismatch(cert, "time.example.net")
    assert problem is not None
    assert problem.startswith("certificate names cannot be read: ")
    assert "subjectAltName" in problem


@pytest.mark.parametrize("name", ["bad name", "*.example.net", " ", "a..b.example.net"])
def test_name_mismatch_reports_a_name_that_is_no_host_name(certs: SimpleNamespace, name: str) -> None:
    cert = self_signed(certs, dns=["time.example.net"])
    assert cert_info.name_mismatch(cert, name) == f"{name!r} is not a valid host name"


def test_name_mismatch_compares_internationalised_names_as_a_labels(certs: SimpleNamespace) -> None:
    cert = self_signed(certs, dns=["xn--bcher-kva.example"])
    assert cert_info.name_mismatch(cert, "bücher.example") is None
    assert cert_info.name_mismatch(cert, "xn--bcher-kva.example") is None


def test_is_ip_address() -> None:
    assert cert_info.is_ip_address("192.0.2.1")
    assert cert_info.is_ip_address("2001:db8::1")
    assert not cert_info.is_ip_address("time.example.net")
    assert not cert_info.is_ip_address("192.0.2.1:4460")
    assert not cert_info.is_ip_address("")


def test_lifetime_thresholds_suit_short_and_long_certificates(certs: SimpleNamespace) -> None:
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    short = self_signed(certs, dns=["a.example.net"], not_before=start, not_after=start + datetime.timedelta(days=6))
    long = self_signed(certs, dns=["a.example.net"], not_before=start, not_after=start + datetime.timedelta(days=90))
    # Two days into a 6-day certificate: fine by its lifetime, a problem by 14 fixed days.
    now = start + datetime.timedelta(days=2)
    assert cert_info.validity_problems(short, now, 14, min_fraction=1 / 6) == []
    assert cert_info.validity_problems(short, now, 14) == ["certificate expires in 4 days (minimum 14)"]
    # 5.5 days in: less than a sixth left.
    late = start + datetime.timedelta(days=5, hours=12)
    assert cert_info.validity_problems(short, late, 14, min_fraction=1 / 6) == [
        "certificate has 0.5 of its 6.0 days left (8%, minimum 17% of its lifetime)"
    ]
    # 80 days into a 90-day one: 10 days left is below a sixth (15 days).
    assert cert_info.validity_problems(long, start + datetime.timedelta(days=80), 14, min_fraction=1 / 6)
    assert cert_info.lifetime_left(long, start - datetime.timedelta(days=1)) == 1.0
    assert cert_info.lifetime_left(long, start + datetime.timedelta(days=100)) == 0.0
