# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AEAD algorithms that protect NTS NTP packets (RFC 8915 section 5.6), over ``cryptography``.

``make_aead()`` returns an object with ``seal`` and ``open`` and the algorithm's
nonce length. A tag that does not verify raises ``NtsAuthenticationError``; a key
of the wrong size or an unsupported algorithm raises ``NtsArgumentError``; a
missing or too old ``cryptography`` raises ``MissingDependencyError``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol

from ansible_collections.ntsops.nts.plugins.module_utils._errors import MissingDependencyError, NtsProtocolError
from ansible_collections.ntsops.nts.plugins.module_utils._nts.records import (
    AEAD_AES_128_GCM_SIV,
    AEAD_AES_256_GCM_SIV,
    AEAD_AES_SIV_CMAC_256,
    AEAD_AES_SIV_CMAC_384,
    AEAD_AES_SIV_CMAC_512,
    AEAD_KEY_LENGTHS,
    NtsArgumentError,
    aead_name,
)

try:
    import cryptography
    from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
    from cryptography.hazmat.primitives.ciphers import aead as _crypto_aead
except ImportError:  # ansible-test's import sanity test runs without it; make_aead() reports it
    _crypto_aead = None  # type: ignore[assignment]

# AES-SIV with an empty plaintext (every NTS request) fails inside cryptography's
# OpenSSL bindings before version 45; Debian 12 ships 38, so make_aead() refuses it.
MIN_CRYPTOGRAPHY = (45, 0)

SIV_NONCE_BYTES = 16  # NTPsec accepts exactly 16; chrony pads shorter nonces to 16
GCM_SIV_NONCE_BYTES = 12  # RFC 8452 fixes the nonce at 96 bits
TAG_BYTES = 16


class NtsAuthenticationError(NtsProtocolError):
    """The response carries no NTS authenticator, or its authenticator does not verify."""


@contextlib.contextmanager
def _tag_checked() -> Iterator[None]:
    try:
        yield
    except InvalidTag as exc:
        raise NtsAuthenticationError(
            "NTS authenticator does not verify (wrong keys, a stale cookie, or a tampered response)"
        ) from exc


class _Aead(Protocol):
    def seal(self, nonce: bytes, associated_data: bytes, plaintext: bytes) -> bytes:
        ...

    def open(self, nonce: bytes, associated_data: bytes, ciphertext: bytes) -> bytes:
        ...


class _SivCmac:
    """AES-SIV (RFC 5297): the nonce is the last associated-data item (RFC 8915 section 5.6)."""

    nonce_length = SIV_NONCE_BYTES

    def __init__(self, key: bytes) -> None:
        self._cipher = _crypto_aead.AESSIV(key)

    def seal(self, nonce: bytes, associated_data: bytes, plaintext: bytes) -> bytes:
        return self._cipher.encrypt(plaintext, [associated_data, nonce])

    def open(self, nonce: bytes, associated_data: bytes, ciphertext: bytes) -> bytes:
        with _tag_checked():
            return self._cipher.decrypt(ciphertext, [associated_data, nonce])


class _GcmSiv:
    """AES-GCM-SIV (RFC 8452): a real 12-byte nonce and one associated-data string."""

    nonce_length = GCM_SIV_NONCE_BYTES

    def __init__(self, key: bytes) -> None:
        self._cipher = _crypto_aead.AESGCMSIV(key)

    # RFC 8452's output is ciphertext || tag, and NTS carries the AEAD's output as it is
    # (RFC 8915 section 5.6); chrony 4.6 (siv_nettle.c, Nettle's
    # siv_gcm_aes128_encrypt_message()) does the same. Only AES-SIV-CMAC puts its SIV first.
    def seal(self, nonce: bytes, associated_data: bytes, plaintext: bytes) -> bytes:
        return self._cipher.encrypt(nonce, plaintext, associated_data)

    def open(self, nonce: bytes, associated_data: bytes, ciphertext: bytes) -> bytes:
        with _tag_checked():
            return self._cipher.decrypt(nonce, ciphertext, associated_data)


_AEAD_CLASSES: dict[int, type[_SivCmac] | type[_GcmSiv]] = {
    AEAD_AES_SIV_CMAC_256: _SivCmac,
    AEAD_AES_SIV_CMAC_384: _SivCmac,
    AEAD_AES_SIV_CMAC_512: _SivCmac,
    AEAD_AES_128_GCM_SIV: _GcmSiv,
    AEAD_AES_256_GCM_SIV: _GcmSiv,
}


def make_aead(aead_id: int, key: bytes, what: str) -> _SivCmac | _GcmSiv:
    """The AEAD ``aead_id`` keyed with ``key``; ``what`` names the key in errors."""
    if _crypto_aead is None:
        raise MissingDependencyError("cryptography", "for NTS-protected NTP (AES-SIV)")
    version = tuple(int(part) for part in cryptography.__version__.split(".")[:2] if part.isdigit())
    if version < MIN_CRYPTOGRAPHY:
        raise MissingDependencyError(
            "cryptography>=45", "for NTS-protected NTP (AES-SIV with empty plaintext)", found=cryptography.__version__
        )
    aead_class = _AEAD_CLASSES.get(aead_id)
    if aead_class is None:
        raise NtsArgumentError(f"AEAD {aead_id} ({aead_name(aead_id)}) is not supported for NTS-protected NTP")
    if not isinstance(key, bytes) or len(key) != AEAD_KEY_LENGTHS[aead_id]:
        size = len(key) if isinstance(key, bytes) else type(key).__name__
        raise NtsArgumentError(f"{what} for {aead_name(aead_id)} must be {AEAD_KEY_LENGTHS[aead_id]} bytes, got {size}")
    try:
        return aead_class(key)
    except UnsupportedAlgorithm as exc:  # OpenSSL before 3.2 has no GCM-SIV
        raise NtsArgumentError(f"{aead_name(aead_id)} is not available in this cryptography build: {exc}") from exc
