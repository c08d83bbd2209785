# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""NTS Key Establishment records (RFC 8915, section 4), without any I/O.

The caller owns the TLS connection: it sends ``build_ke_request()`` in one write,
feeds every chunk it reads to a ``RecordParser``, calls ``finish()`` at EOF (or
stops reading once ``complete`` is true) and hands the records to
``interpret_ke_response()``.

Errors: bytes from the peer that break RFC 8915 raise ``NtsProtocolError``; values
passed by the caller that the protocol cannot carry raise ``NtsArgumentError``.
Both derive from ``NtsopsError``.

The file runs a little over 400 lines on purpose: the encoder, the stream parser and
the interpretation of the response share the one RFC 8915 record set and its limits.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError, NtsProtocolError

END_OF_MESSAGE = 0
NEXT_PROTOCOL = 1
ERROR = 2
WARNING = 3
AEAD_ALGORITHM = 4
NEW_COOKIE = 5
SERVER_NEGOTIATION = 6
PORT_NEGOTIATION = 7
# chrony's "Compliant AES-128-GCM-SIV Export" record (nts_ke.h NKE_RECORD_COMPLIANT_128GCM_EXPORT,
# chrony >= 4.4): empty and non-critical. A chrony server answering AEAD 30 derives the keys
# with AEAD id 15 in the exporter context unless the client sent this record and the server
# echoes it (nts_ke_server.c prepare_response()); chrony's client sends it whenever it offers 30
# (nts_ke_client.c prepare_request()).
COMPLIANT_128GCM_EXPORT = 1024

RECORD_NAMES: dict[int, str] = {
    END_OF_MESSAGE: "End of Message",
    NEXT_PROTOCOL: "NTS Next Protocol Negotiation",
    ERROR: "Error",
    WARNING: "Warning",
    AEAD_ALGORITHM: "AEAD Algorithm Negotiation",
    NEW_COOKIE: "New Cookie for NTPv4",
    SERVER_NEGOTIATION: "NTPv4 Server Negotiation",
    PORT_NEGOTIATION: "NTPv4 Port Negotiation",
    COMPLIANT_128GCM_EXPORT: "Compliant AES-128-GCM-SIV Export (chrony)",
}

ERROR_UNRECOGNIZED_CRITICAL_RECORD = 0
ERROR_BAD_REQUEST = 1
ERROR_INTERNAL_SERVER_ERROR = 2
ERROR_NAMES: dict[int, str] = {
    ERROR_UNRECOGNIZED_CRITICAL_RECORD: "Unrecognized Critical Record",
    ERROR_BAD_REQUEST: "Bad Request",
    ERROR_INTERNAL_SERVER_ERROR: "Internal Server Error",
}
# The IANA "NTS Warning Codes" registry has no entries yet.
WARNING_NAMES: dict[int, str] = {}

PROTOCOL_NTPV4 = 0
PROTOCOL_NAMES: dict[int, str] = {PROTOCOL_NTPV4: "NTPv4"}

# IANA "AEAD Algorithms" ids that are SIV constructions (RFC 5297, RFC 8452); NTS
# needs nonce-misuse resistance, so only these make sense to offer.
AEAD_AES_SIV_CMAC_256 = 15
AEAD_AES_SIV_CMAC_384 = 16
AEAD_AES_SIV_CMAC_512 = 17
AEAD_AES_128_GCM_SIV = 30
AEAD_AES_256_GCM_SIV = 31
AEAD_NAMES: dict[int, str] = {
    AEAD_AES_SIV_CMAC_256: "AEAD_AES_SIV_CMAC_256",
    AEAD_AES_SIV_CMAC_384: "AEAD_AES_SIV_CMAC_384",
    AEAD_AES_SIV_CMAC_512: "AEAD_AES_SIV_CMAC_512",
    AEAD_AES_128_GCM_SIV: "AEAD_AES_128_GCM_SIV",
    AEAD_AES_256_GCM_SIV: "AEAD_AES_256_GCM_SIV",
}
# Key length in bytes of each direction's key, i.e. what to ask the TLS exporter for.
AEAD_KEY_LENGTHS: dict[int, int] = {
    AEAD_AES_SIV_CMAC_256: 32,
    AEAD_AES_SIV_CMAC_384: 48,
    AEAD_AES_SIV_CMAC_512: 64,
    AEAD_AES_128_GCM_SIV: 16,
    AEAD_AES_256_GCM_SIV: 32,
}

EXPORTER_LABEL = b"EXPORTER-network-time-security"
# ALPN protocol ids are byte strings (RFC 7301).
ALPN_PROTOCOL = b"ntske/1"
NTS_KE_PORT = 4460

# A real response (8 cookies of ~100-200 bytes) is well under 2 KiB; a server whose
# records never end must be cut off by size, the caller's deadline covers slowness.
MAX_RESPONSE_BYTES = 65536

RECORD_HEADER_BYTES = 4
_CRITICAL_BIT = 0x8000
_MAX_U16 = 0xFFFF
_MAX_RECORD_TYPE = 0x7FFF


class NtsArgumentError(NtsopsError, ValueError):
    """The caller asked for something NTS cannot express (not the peer's fault)."""


class NtsNegotiationError(NtsProtocolError):
    """The server answered well-formed records but supports none of what was offered.

    chrony 4.3 answers an offer it cannot meet with an empty Next Protocol or an
    empty AEAD Algorithm record and no Error record (measured).
    """


def record_name(record_type: int) -> str:
    """Human name of a record type, e.g. ``Error`` or ``unknown record type 99``."""
    return RECORD_NAMES.get(record_type, f"unknown record type {record_type}")


def error_name(code: int) -> str:
    """RFC 8915 name of an Error record code, ``unassigned`` for codes not in the registry."""
    return ERROR_NAMES.get(code, "unassigned")


def warning_name(code: int) -> str:
    """Name of a Warning record code; the registry is empty, so usually ``unassigned``."""
    return WARNING_NAMES.get(code, "unassigned")


def aead_name(aead_id: int) -> str:
    """IANA name of an AEAD id, e.g. ``AEAD_AES_SIV_CMAC_256``."""
    return AEAD_NAMES.get(aead_id, f"unknown AEAD {aead_id}")


def _check_u16(value: object, what: str) -> int:
    # bool is an int subclass; True as an AEAD id is certainly a mistake.
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MAX_U16:
        raise NtsArgumentError(f"{what} must be an integer from 0 to 65535, got {value!r}")
    return value


def encode_record(record_type: int, body: bytes, critical: bool) -> bytes:
    """One NTS-KE record: critical bit and 15-bit type, 16-bit body length, body."""
    if not isinstance(record_type, int) or isinstance(record_type, bool) or not 0 <= record_type <= _MAX_RECORD_TYPE:
        raise NtsArgumentError(f"record type must be an integer from 0 to 32767, got {record_type!r}")
    if not isinstance(body, bytes | bytearray | memoryview):
        raise NtsArgumentError(f"record body must be bytes, got {type(body).__name__}")
    body = bytes(body)
    if len(body) > _MAX_U16:
        raise NtsArgumentError(f"record body of {len(body)} bytes exceeds the 65535-byte limit")
    first = record_type | (_CRITICAL_BIT if critical else 0)
    return struct.pack(">HH", first, len(body)) + body


def _encode_id_list(ids: Sequence[int], what: str) -> bytes:
    if isinstance(ids, str | bytes) or not isinstance(ids, Sequence):
        raise NtsArgumentError(f"{what} must be a sequence of integers, got {ids!r}")
    if len(ids) == 0:
        raise NtsArgumentError(f"{what} must not be empty")
    checked = [_check_u16(value, what) for value in ids]
    if len(set(checked)) != len(checked):
        raise NtsArgumentError(f"{what} lists an id more than once: {list(checked)}")
    return b"".join(struct.pack(">H", value) for value in checked)


def build_ke_request(
    aead_ids: Sequence[int] = (AEAD_AES_SIV_CMAC_256,),
    next_protocols: Sequence[int] = (PROTOCOL_NTPV4,),
) -> bytes:
    """The client's NTS-KE request: Next Protocol, AEAD Algorithm, End of Message, all critical,
    with chrony's empty non-critical Compliant 128GCM Export record when AEAD 30 is offered
    (servers that do not know it ignore it, as RFC 8915 requires).

    Raises NtsArgumentError for an empty list, a duplicate id or an id outside 0..65535.
    """
    protocols = _encode_id_list(next_protocols, "next protocols")
    aeads = _encode_id_list(aead_ids, "AEAD ids")
    compliant = b""
    if AEAD_AES_128_GCM_SIV in aead_ids:
        compliant = encode_record(COMPLIANT_128GCM_EXPORT, b"", critical=False)
    return (
        encode_record(NEXT_PROTOCOL, protocols, critical=True)
        + encode_record(AEAD_ALGORITHM, aeads, critical=True)
        + compliant
        + encode_record(END_OF_MESSAGE, b"", critical=True)
    )


def exporter_aead(response: KeResponse) -> int:
    """The AEAD id the keys are exported with: the negotiated one, except AEAD 30 from a
    server that did not echo the Compliant 128GCM Export record, which (as chrony's client
    assumes, nts_ke_client.c process_response()) uses 15 there. Only for a response that
    negotiated an AEAD."""
    if response.aead is None:
        raise NtsArgumentError("the response negotiated no AEAD")
    if response.aead == AEAD_AES_128_GCM_SIV and not response.compliant_128gcm:
        return AEAD_AES_SIV_CMAC_256
    return response.aead


def exporter_context(protocol_id: int, aead_id: int, server_to_client: bool) -> bytes:
    """TLS exporter context (RFC 8915 section 5.1): protocol id, AEAD id, 0x00 C2S / 0x01 S2C."""
    _check_u16(protocol_id, "protocol id")
    _check_u16(aead_id, "AEAD id")
    return struct.pack(">HHB", protocol_id, aead_id, 1 if server_to_client else 0)


@dataclass(frozen=True)
class Record:
    """One parsed NTS-KE record; ``body`` excludes the 4-byte header."""

    record_type: int
    critical: bool
    body: bytes


class RecordParser:
    """Incremental NTS-KE record parser for a byte stream read in arbitrary chunks.

    ``feed()`` returns the records completed by each chunk. ``complete`` turns true
    once End of Message is parsed; any byte after it is an error. The total stream
    is capped at ``max_bytes`` so that a peer whose records never end is cut off.
    """

    def __init__(self, max_bytes: int = MAX_RESPONSE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.complete = False
        self.records: list[Record] = []
        self.bytes_received = 0
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Record]:
        """Add one chunk of the stream and return the records it completed."""
        if not data:
            return []
        if self.complete:
            raise NtsProtocolError(f"{len(data)} bytes of data after the End of Message record")
        self.bytes_received += len(data)
        if self.bytes_received > self.max_bytes:
            raise NtsProtocolError(
                f"NTS-KE response exceeds {self.max_bytes} bytes without a complete End of Message record"
                f" ({len(self.records)} records so far): the records never end"
            )
        self._buffer += data
        completed: list[Record] = []
        while len(self._buffer) >= RECORD_HEADER_BYTES:
            first, body_length = struct.unpack_from(">HH", self._buffer)
            end = RECORD_HEADER_BYTES + body_length
            if len(self._buffer) < end:
                break
            record = Record(
                record_type=first & _MAX_RECORD_TYPE,
                critical=bool(first & _CRITICAL_BIT),
                body=bytes(self._buffer[RECORD_HEADER_BYTES:end]),
            )
            del self._buffer[:end]
            if record.record_type == END_OF_MESSAGE:
                if record.body:
                    raise NtsProtocolError(
                        f"End of Message record has a {len(record.body)}-byte body; it must be empty"
                    )
                self.complete = True
            completed.append(record)
            self.records.append(record)
            if self.complete:
                if self._buffer:
                    raise NtsProtocolError(f"{len(self._buffer)} bytes of data after the End of Message record")
                break
        return completed

    def finish(self) -> None:
        """Declare the end of the stream; raise if it ended mid-record or before End of Message."""
        if self.complete:
            return
        if len(self._buffer) >= RECORD_HEADER_BYTES:
            first, body_length = struct.unpack_from(">HH", self._buffer)
            received = len(self._buffer) - RECORD_HEADER_BYTES
            raise NtsProtocolError(
                f"truncated record: type {first & _MAX_RECORD_TYPE} declares {body_length} bytes,"
                f" only {received} received"
            )
        if self._buffer:
            raise NtsProtocolError(
                f"stream ended inside a record header ({len(self._buffer)} of {RECORD_HEADER_BYTES} bytes)"
            )
        raise NtsProtocolError(
            f"stream ended before the End of Message record ({len(self.records)} complete records received)"
        )


def parse_records(data: bytes, max_bytes: int = MAX_RESPONSE_BYTES) -> list[Record]:
    """Parse a complete NTS-KE message held in memory (convenience around RecordParser)."""
    parser = RecordParser(max_bytes=max_bytes)
    parser.feed(data)
    parser.finish()
    return parser.records


@dataclass
class KeResponse:
    """What the server's NTS-KE response says, after validation.

    ``unknown_records`` lists non-critical record types this code does not know
    (ignored, as RFC 8915 requires). ``deviations`` lists RFC violations that do
    not stop the exchange, e.g. a Next Protocol record without the critical bit.
    """

    next_protocols: list[int] = field(default_factory=list)
    aead: int | None = None
    cookies: list[bytes] = field(default_factory=list)
    server: str | None = None
    port: int | None = None
    warnings: list[int] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)
    unknown_records: list[int] = field(default_factory=list)
    deviations: list[str] = field(default_factory=list)
    # the server echoed COMPLIANT_128GCM_EXPORT
    compliant_128gcm: bool = False


def _single_u16(record: Record) -> int:
    if len(record.body) != 2:
        raise NtsProtocolError(
            f"{record_name(record.record_type)} record body must be exactly 2 bytes, got {len(record.body)}"
        )
    value: int = struct.unpack(">H", record.body)[0]
    return value


def _u16_list(record: Record) -> list[int]:
    if len(record.body) % 2:
        raise NtsProtocolError(
            f"{record_name(record.record_type)} record body must be a multiple of 2 bytes, got {len(record.body)}"
        )
    return [value for (value,) in struct.iter_unpack(">H", record.body)]


def _server_name(record: Record) -> str:
    if not record.body:
        raise NtsProtocolError("NTPv4 Server Negotiation record is empty")
    # A host name or an address literal: printable ASCII without spaces.
    if any(not 0x21 <= byte <= 0x7E for byte in record.body):
        raise NtsProtocolError(
            f"NTPv4 Server Negotiation record is not a printable ASCII name or address: {record.body[:64]!r}"
        )
    return record.body.decode("ascii")


class _ResponseInterpreter:
    """Applies one record at a time to a KeResponse; one method per record type."""

    def __init__(self, offered_aeads: Sequence[int], offered_protocols: Sequence[int]) -> None:
        self.offered_aeads = offered_aeads
        self.offered_protocols = offered_protocols
        self.response = KeResponse()
        self.seen: set[int] = set()
        self.no_common_aead = False

    def apply(self, record: Record) -> None:
        kind = record.record_type
        if kind in _SINGLETON_RECORDS and kind in self.seen:
            raise NtsProtocolError(f"duplicate {record_name(kind)} record")
        self.seen.add(kind)
        handler = self._handlers.get(kind)
        if handler is not None:
            handler(self, record)
        elif record.critical:
            raise NtsProtocolError(f"unrecognized critical record type {kind}")
        else:
            self.response.unknown_records.append(kind)

    def _end_of_message(self, record: Record) -> None:
        if record.body:
            raise NtsProtocolError(f"End of Message record has a {len(record.body)}-byte body; it must be empty")
        if not record.critical:
            self.response.deviations.append("End of Message record lacks the critical bit")

    def _next_protocol(self, record: Record) -> None:
        protocols = _u16_list(record)
        unoffered = [p for p in protocols if p not in self.offered_protocols]
        if unoffered:
            raise NtsProtocolError(f"server chose next protocol {unoffered[0]}, which was not offered")
        if not record.critical:
            self.response.deviations.append("Next Protocol record lacks the critical bit")
        self.response.next_protocols = protocols

    def _aead(self, record: Record) -> None:
        if not record.body:
            self.no_common_aead = True
            return
        aead = _single_u16(record)
        if aead not in self.offered_aeads:
            raise NtsProtocolError(f"server chose AEAD {aead} ({aead_name(aead)}), which was not offered")
        self.response.aead = aead

    def _error(self, record: Record) -> None:
        self.response.errors.append(_single_u16(record))

    def _warning(self, record: Record) -> None:
        self.response.warnings.append(_single_u16(record))

    def _new_cookie(self, record: Record) -> None:
        if not record.body:
            raise NtsProtocolError("New Cookie record is empty")
        self.response.cookies.append(record.body)

    def _server(self, record: Record) -> None:
        self.response.server = _server_name(record)

    def _compliant_128gcm(self, record: Record) -> None:
        if record.body:
            raise NtsProtocolError(f"{record_name(record.record_type)} record has a {len(record.body)}-byte body")
        self.response.compliant_128gcm = True

    def _port(self, record: Record) -> None:
        port = _single_u16(record)
        if port == 0:
            raise NtsProtocolError("NTPv4 Port Negotiation record names port 0")
        self.response.port = port

    _handlers: ClassVar[dict[int, Callable[[_ResponseInterpreter, Record], None]]] = {
        END_OF_MESSAGE: _end_of_message,
        NEXT_PROTOCOL: _next_protocol,
        AEAD_ALGORITHM: _aead,
        ERROR: _error,
        WARNING: _warning,
        NEW_COOKIE: _new_cookie,
        SERVER_NEGOTIATION: _server,
        PORT_NEGOTIATION: _port,
        COMPLIANT_128GCM_EXPORT: _compliant_128gcm,
    }


_SINGLETON_RECORDS = frozenset((END_OF_MESSAGE, NEXT_PROTOCOL, AEAD_ALGORITHM, SERVER_NEGOTIATION, PORT_NEGOTIATION))


def interpret_ke_response(
    records: Sequence[Record],
    offered_aeads: Sequence[int],
    offered_protocols: Sequence[int] = (PROTOCOL_NTPV4,),
) -> KeResponse:
    """Validate the server's records and collect what they negotiate.

    Raises NtsProtocolError for malformed or duplicate records, an unknown critical
    record, a choice that was not offered, a missing or misplaced End of Message,
    and, when the server sent no Error record, a missing Next Protocol record or
    (with NTPv4 agreed) a missing AEAD record. Raises its subclass
    NtsNegotiationError when, without an Error record, the server's Next Protocol
    or AEAD record is empty: it supports none of the offered values. Error records
    are not raised: they are returned in ``errors`` for the caller to report with
    ``error_name()``. Whether there are enough cookies is for the caller to judge.
    """
    if not records or records[-1].record_type != END_OF_MESSAGE:
        raise NtsProtocolError("NTS-KE response does not end with an End of Message record")
    interpreter = _ResponseInterpreter(offered_aeads, offered_protocols)
    for record in records:
        interpreter.apply(record)
    response = interpreter.response
    if response.errors:
        return response
    if NEXT_PROTOCOL not in interpreter.seen:
        raise NtsProtocolError("NTS-KE response has no Next Protocol record")
    if not response.next_protocols:
        offered = ", ".join(f"{p} ({PROTOCOL_NAMES.get(p, 'unknown')})" for p in offered_protocols)
        raise NtsNegotiationError(f"server supports none of the offered next protocols: {offered}")
    if PROTOCOL_NTPV4 in response.next_protocols and response.aead is None:
        if interpreter.no_common_aead:
            offered = ", ".join(f"{a} ({aead_name(a)})" for a in offered_aeads)
            raise NtsNegotiationError(f"server supports none of the offered AEAD algorithms: {offered}")
        raise NtsProtocolError("NTS-KE response agrees on NTPv4 but has no AEAD Algorithm record")
    return response
