# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""NTS-protected NTPv4 packets (RFC 8915 section 5, RFC 5905, RFC 7822), without any I/O.

``build_nts_request()`` makes a client packet carrying one cookie;
``parse_nts_response()`` checks the server's answer strictly and returns its
header, whether it authenticated, whether it is an NTS NAK, and the fresh cookies
decrypted from it.

Errors: a response that breaks the protocol raises ``NtsProtocolError``; one whose
authenticator is missing or does not verify raises ``NtsAuthenticationError`` (a
subclass, from the aead module, which holds the ciphers); bad caller values raise
``NtsArgumentError``; a missing ``cryptography`` raises ``MissingDependencyError``.
All derive from ``NtsopsError``.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass, field

from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsProtocolError
from ansible_collections.ntsops.nts.plugins.module_utils._nts.aead import (
    GCM_SIV_NONCE_BYTES,
    TAG_BYTES,
    NtsAuthenticationError,
    make_aead,
)
from ansible_collections.ntsops.nts.plugins.module_utils._nts.records import (
    AEAD_AES_SIV_CMAC_256,
    NtsArgumentError,
    aead_name,
)

EF_UNIQUE_IDENTIFIER = 0x0104
EF_NTS_COOKIE = 0x0204
EF_NTS_COOKIE_PLACEHOLDER = 0x0304
EF_NTS_AUTHENTICATOR = 0x0404
EF_NAMES: dict[int, str] = {
    EF_UNIQUE_IDENTIFIER: "Unique Identifier",
    EF_NTS_COOKIE: "NTS Cookie",
    EF_NTS_COOKIE_PLACEHOLDER: "NTS Cookie Placeholder",
    EF_NTS_AUTHENTICATOR: "NTS Authenticator and Encrypted Extension Fields",
}

NTP_PORT = 123
NTP_VERSION = 4
MODE_CLIENT = 3
MODE_SERVER = 4
NTP_HEADER_BYTES = 48
LEAP_UNSYNCHRONIZED = 3
# RFC 5905 section 7.3: stratum 16 is "unsynchronized", 17-255 are reserved; a server
# with no source answers there (ntpd-rs 1.4.0: stratum 16, leap 3, refid XNON).
STRATUM_UNSYNCHRONIZED = 16
KISS_NTS_NAK = b"NTSN"

# Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
NTP_UNIX_OFFSET = 2208988800
_ERA_SECONDS = 1 << 32
_U64_MASK = (1 << 64) - 1

MIN_UNIQUE_ID_BYTES = 32
EF_HEADER_BYTES = 4
MIN_EF_BYTES = 16  # RFC 7822
# chrony treats up to 24 trailing bytes as a legacy MAC (RFC 7822), so the last field
# of a packet without a MAC must be longer than that.
MIN_LAST_EF_BYTES = 28

_HEADER = struct.Struct(">BBbbII4sQQQQ")


def unix_to_ntp(t: float) -> int:
    """Unix time in seconds to a 64-bit NTP timestamp (32.32 fixed point, era folded in)."""
    if not isinstance(t, int | float) or isinstance(t, bool) or not math.isfinite(t):
        raise NtsArgumentError(f"time must be a finite number of seconds, got {t!r}")
    seconds = math.floor(t)
    fraction = min(int((t - seconds) * _ERA_SECONDS), _ERA_SECONDS - 1)
    return (((seconds + NTP_UNIX_OFFSET) % _ERA_SECONDS) << 32) | fraction


def ntp_to_unix(ts: int) -> float:
    """64-bit NTP timestamp to Unix seconds.

    NTP seconds wrap every 2^32 s; as in RFC 4330 section 3, values with the top bit
    clear are taken to be in era 1 (from 2036-02-07), so 1968 to 2104 maps uniquely.
    """
    if not isinstance(ts, int) or isinstance(ts, bool) or not 0 <= ts <= _U64_MASK:
        raise NtsArgumentError(f"NTP timestamp must be an unsigned 64-bit integer, got {ts!r}")
    seconds = ts >> 32
    if not seconds & 0x80000000:
        seconds += _ERA_SECONDS
    return seconds - NTP_UNIX_OFFSET + (ts & 0xFFFFFFFF) / _ERA_SECONDS


def offset_and_delay(t1: float, t2: float, t3: float, t4: float) -> tuple[float, float]:
    """RFC 5905 on-wire offset and round-trip delay in seconds.

    t1 client transmit, t2 server receive, t3 server transmit, t4 client receive.
    """
    offset = ((t2 - t1) + (t3 - t4)) / 2
    delay = (t4 - t1) - (t3 - t2)
    return offset, delay


def _padded(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % 4)


def encode_extension_field(ef_type: int, body: bytes, min_length: int = MIN_EF_BYTES) -> bytes:
    """One extension field: type, total length, body zero-padded to 4 bytes and to ``min_length``."""
    if not 0 <= ef_type <= 0xFFFF:
        raise NtsArgumentError(f"extension field type must fit in 16 bits, got {ef_type!r}")
    value = _padded(bytes(body))
    shortfall = min_length - EF_HEADER_BYTES - len(value)
    if shortfall > 0:
        value += b"\x00" * (shortfall + (-shortfall % 4))
    length = EF_HEADER_BYTES + len(value)
    if length > 0xFFFF:
        raise NtsArgumentError(f"extension field of {length} bytes exceeds the 65535-byte limit")
    return struct.pack(">HH", ef_type, length) + value


@dataclass(frozen=True)
class ExtensionField:
    """One parsed extension field; ``offset`` is where its header starts in the buffer."""

    ef_type: int
    offset: int
    body: bytes


def parse_extension_fields(data: bytes, start: int, min_length: int, where: str) -> list[ExtensionField]:
    """Split ``data[start:]`` into extension fields, checking lengths, alignment and overruns."""
    fields: list[ExtensionField] = []
    offset = start
    while offset < len(data):
        remaining = len(data) - offset
        if remaining < EF_HEADER_BYTES:
            raise NtsProtocolError(f"{where}: {remaining} trailing bytes at byte {offset} are not an extension field")
        ef_type, length = struct.unpack_from(">HH", data, offset)
        label = f"{where}: extension field 0x{ef_type:04x} at byte {offset}"
        if length > remaining:
            raise NtsProtocolError(f"{label} declares {length} bytes, only {remaining} remain")
        if length < min_length:
            raise NtsProtocolError(f"{label} is {length} bytes, below the {min_length}-byte minimum")
        if length % 4:
            raise NtsProtocolError(f"{label} is {length} bytes, not a multiple of 4")
        fields.append(ExtensionField(ef_type, offset, bytes(data[offset + EF_HEADER_BYTES : offset + length])))
        offset += length
    return fields


def build_nts_request(
    cookie: bytes,
    c2s_key: bytes,
    unique_id: bytes,
    transmit_timestamp: int,
    *,
    placeholders: int = 0,
    nonce: bytes | None = None,
    aead_id: int = AEAD_AES_SIV_CMAC_256,
) -> bytes:
    """An NTPv4 client packet protected by NTS.

    Header (LI 0, version 4, mode 3, only the transmit timestamp set), Unique
    Identifier, NTS Cookie, ``placeholders`` Cookie Placeholders of the cookie's
    length (each asks the server for one more cookie), and last the Authenticator
    over everything before it with an empty plaintext, the nonce (16 random bytes by
    default) and no extra padding, which is what NTPsec insists on.
    """
    if not isinstance(cookie, bytes) or not cookie:
        raise NtsArgumentError("cookie must be non-empty bytes")
    if not isinstance(unique_id, bytes) or len(unique_id) < MIN_UNIQUE_ID_BYTES or len(unique_id) % 4:
        raise NtsArgumentError(
            f"unique_id must be bytes, at least {MIN_UNIQUE_ID_BYTES} long and a multiple of 4"
            " (so the server echoes it unpadded)"
        )
    if (
        not isinstance(transmit_timestamp, int)
        or isinstance(transmit_timestamp, bool)
        or not 0 < transmit_timestamp <= _U64_MASK
    ):
        raise NtsArgumentError(
            f"transmit_timestamp must be a non-zero 64-bit NTP timestamp, got {transmit_timestamp!r}"
        )
    if not isinstance(placeholders, int) or isinstance(placeholders, bool) or not 0 <= placeholders <= 7:
        raise NtsArgumentError(f"placeholders must be from 0 to 7 (8 cookies at most), got {placeholders!r}")
    cipher = make_aead(aead_id, c2s_key, "c2s_key")
    if nonce is None:
        nonce = os.urandom(cipher.nonce_length)
    if not isinstance(nonce, bytes) or len(nonce) != cipher.nonce_length:
        raise NtsArgumentError(f"nonce for {aead_name(aead_id)} must be exactly {cipher.nonce_length} bytes")

    header = _HEADER.pack(
        (0 << 6) | (NTP_VERSION << 3) | MODE_CLIENT, 0, 0, 0, 0, 0, b"\x00" * 4, 0, 0, 0, transmit_timestamp
    )
    packet = header + encode_extension_field(EF_UNIQUE_IDENTIFIER, unique_id)
    packet += encode_extension_field(EF_NTS_COOKIE, cookie)
    packet += encode_extension_field(EF_NTS_COOKIE_PLACEHOLDER, bytes(len(cookie))) * placeholders
    ciphertext = cipher.seal(nonce, packet, b"")
    body = struct.pack(">HH", len(nonce), len(ciphertext)) + _padded(nonce) + _padded(ciphertext)
    return packet + encode_extension_field(EF_NTS_AUTHENTICATOR, body, min_length=MIN_LAST_EF_BYTES)


@dataclass
class NtpResponse:
    """A parsed NTS-protected NTP response.

    root_delay and root_dispersion are in seconds; timestamps are raw 64-bit NTP
    values (use ``ntp_to_unix``). ``refid_text`` is the kiss code, reference
    clock name or unsynchronised code as text (stratum 0, 1 or 16 and above), or
    as hex when not printable; for stratum 2-15 a dotted IPv4 address (or the first
    four bytes of an IPv6 address's hash, shown the same way). ``nak`` is true for
    stratum 0 with kiss code NTSN; a real NTS
    NAK carries no authenticator, so it comes with ``authenticated`` false.
    ``cookies`` are the New Cookie fields from the encrypted part.
    ``extension_fields`` lists the outer field types in packet order.
    """

    leap: int
    version: int
    mode: int
    stratum: int
    poll: int
    precision: int
    root_delay: float
    root_dispersion: float
    refid: bytes
    refid_text: str
    reference_ts: int
    origin_ts: int
    receive_ts: int
    transmit_ts: int
    authenticated: bool = False
    nak: bool = False
    cookies: list[bytes] = field(default_factory=list)
    extension_fields: list[int] = field(default_factory=list)

    @property
    def unsynchronised(self) -> bool:
        """Whether the server says it has no time to give (see ``is_unsynchronised``)."""
        return is_unsynchronised(self.leap, self.stratum)


def is_unsynchronised(leap: int, stratum: int) -> bool:
    """Leap indicator 3 (alarm), stratum 0 (unspecified or invalid, RFC 5905 figure 11;
    NTPsec's INIT) or stratum 16 and above (unsynchronized or reserved)."""
    return leap == LEAP_UNSYNCHRONIZED or stratum == 0 or stratum >= STRATUM_UNSYNCHRONIZED


def refid_text(stratum: int, refid: bytes) -> str:
    """Readable reference id: ASCII kiss code/clock name, dotted IPv4, or hex.

    RFC 5905 section 7.3 makes the refid four ASCII characters at stratum 0 (kiss
    code) and 1 (reference clock); at 16 and above servers send ASCII too (ntpd-rs's
    XNON), so those are read as text and not as an address.
    """
    if stratum <= 1 or stratum >= STRATUM_UNSYNCHRONIZED:
        name = refid.rstrip(b"\x00")
        if name and all(0x20 <= byte <= 0x7E for byte in name):
            return name.decode("ascii")
        return refid.hex()
    return ".".join(str(byte) for byte in refid)


def _authenticator_parts(body: bytes, nonce_length_required: int) -> tuple[bytes, bytes]:
    if len(body) < 4:
        raise NtsProtocolError(f"NTS authenticator body is {len(body)} bytes, too short for its lengths")
    nonce_length, ciphertext_length = struct.unpack_from(">HH", body)
    nonce_end = 4 + nonce_length + (-nonce_length % 4)
    ciphertext_end = nonce_end + ciphertext_length + (-ciphertext_length % 4)
    if ciphertext_end > len(body):
        raise NtsProtocolError(
            f"NTS authenticator declares a {nonce_length}-byte nonce and {ciphertext_length}-byte ciphertext,"
            f" more than its {len(body)}-byte body"
        )
    if nonce_length == 0 or (nonce_length_required == GCM_SIV_NONCE_BYTES and nonce_length != GCM_SIV_NONCE_BYTES):
        raise NtsProtocolError(f"NTS authenticator has a {nonce_length}-byte nonce")
    if ciphertext_length < TAG_BYTES:
        raise NtsProtocolError(
            f"NTS authenticator ciphertext is {ciphertext_length} bytes, shorter than the {TAG_BYTES}-byte tag"
        )
    return body[4 : 4 + nonce_length], body[nonce_end : nonce_end + ciphertext_length]


def _check_request_values(unique_id: bytes, origin_timestamp: int) -> None:
    if not isinstance(unique_id, bytes) or len(unique_id) < MIN_UNIQUE_ID_BYTES:
        raise NtsArgumentError(f"unique_id must be bytes of at least {MIN_UNIQUE_ID_BYTES}")
    if not isinstance(origin_timestamp, int) or isinstance(origin_timestamp, bool) or origin_timestamp <= 0:
        raise NtsArgumentError(
            f"origin_timestamp must be the request's non-zero transmit timestamp, got {origin_timestamp!r}"
        )


def _check_unique_id_echo(fields: list[ExtensionField], unique_id: bytes) -> None:
    echoed = [ef for ef in fields if ef.ef_type == EF_UNIQUE_IDENTIFIER]
    if not echoed:
        raise NtsProtocolError("NTP response does not echo the Unique Identifier")
    if len(echoed) > 1:
        raise NtsProtocolError(f"NTP response has {len(echoed)} Unique Identifier fields")
    if echoed[0].body != _padded(unique_id):
        raise NtsProtocolError("NTP response echoes a different Unique Identifier (a reply to another request)")


def _parse_header(packet: bytes) -> NtpResponse:
    if len(packet) < NTP_HEADER_BYTES:
        raise NtsProtocolError(f"NTP response is {len(packet)} bytes, shorter than the {NTP_HEADER_BYTES}-byte header")
    if len(packet) % 4:
        raise NtsProtocolError(f"NTP response is {len(packet)} bytes, not a multiple of 4")
    (
        lvm,
        stratum,
        poll,
        precision,
        root_delay,
        root_dispersion,
        refid,
        reference_ts,
        origin_ts,
        receive_ts,
        transmit_ts,
    ) = _HEADER.unpack_from(packet)
    return NtpResponse(
        leap=lvm >> 6,
        version=(lvm >> 3) & 7,
        mode=lvm & 7,
        stratum=stratum,
        poll=poll,
        precision=precision,
        root_delay=root_delay / 65536,
        root_dispersion=root_dispersion / 65536,
        refid=refid,
        refid_text=refid_text(stratum, refid),
        reference_ts=reference_ts,
        origin_ts=origin_ts,
        receive_ts=receive_ts,
        transmit_ts=transmit_ts,
    )


def parse_nts_response(
    packet: bytes,
    unique_id: bytes,
    s2c_key: bytes,
    origin_timestamp: int,
    *,
    aead_id: int = AEAD_AES_SIV_CMAC_256,
) -> NtpResponse:
    """Check an NTS-protected NTP response to the request made with these values.

    Checks the header (version 4, mode 4 server), that the origin timestamp and the
    Unique Identifier echo the request, the layout of every extension field, and
    that the Authenticator is last and verifies with ``s2c_key``. An NTS NAK
    (stratum 0, kiss code NTSN, echoed identifier, no authenticator) is returned with
    ``nak=True`` and ``authenticated=False``; any other response without a valid
    authenticator raises NtsAuthenticationError.
    """
    _check_request_values(unique_id, origin_timestamp)
    cipher = make_aead(aead_id, s2c_key, "s2c_key")
    if not isinstance(packet, bytes | bytearray | memoryview):
        raise NtsArgumentError(f"packet must be bytes, got {type(packet).__name__}")
    packet = bytes(packet)
    response = _parse_header(packet)
    if response.version != NTP_VERSION:
        raise NtsProtocolError(f"NTP response has version {response.version}; NTS needs version 4")
    if response.mode != MODE_SERVER:
        raise NtsProtocolError(f"NTP response has mode {response.mode}, expected {MODE_SERVER} (server)")
    if response.origin_ts != origin_timestamp:
        raise NtsProtocolError(
            f"NTP response origin timestamp 0x{response.origin_ts:016x} does not echo the request's transmit"
            f" timestamp 0x{origin_timestamp:016x} (a stale or spoofed response)"
        )
    fields = parse_extension_fields(packet, NTP_HEADER_BYTES, MIN_EF_BYTES, "NTP response")
    response.extension_fields = [ef.ef_type for ef in fields]

    _check_unique_id_echo(fields, unique_id)

    authenticators = [index for index, ef in enumerate(fields) if ef.ef_type == EF_NTS_AUTHENTICATOR]
    response.nak = response.stratum == 0 and response.refid == KISS_NTS_NAK
    if not authenticators:
        if response.nak:
            return response
        kiss = f" (unauthenticated kiss code {response.refid_text})" if response.stratum == 0 else ""
        raise NtsAuthenticationError(f"NTP response has no NTS authenticator{kiss}")
    if authenticators[0] != len(fields) - 1:
        following = fields[authenticators[0] + 1]
        raise NtsProtocolError(
            f"extension field 0x{following.ef_type:04x} follows the NTS authenticator, which must be last"
        )
    auth_field = fields[-1]
    nonce, ciphertext = _authenticator_parts(auth_field.body, cipher.nonce_length)
    try:
        plaintext = cipher.open(nonce, packet[: auth_field.offset], ciphertext)
    except ValueError as exc:
        raise NtsProtocolError(f"NTS authenticator cannot be checked: {exc}") from exc
    encrypted = parse_extension_fields(plaintext, 0, EF_HEADER_BYTES, "encrypted extension fields")
    response.cookies = [ef.body for ef in encrypted if ef.ef_type == EF_NTS_COOKIE]
    if any(not cookie for cookie in response.cookies):
        raise NtsProtocolError("NTP response carries an empty NTS Cookie field")
    response.authenticated = True
    return response
