"""The harness's own, deliberately small NTS wire code (RFC 8915).

Written independently of plugins/module_utils so integration tests cross-check two
implementations: hostile peers build their bytes here, and the smoke tests use the
tiny client below to prove each peer misbehaves exactly as named.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from OpenSSL import SSL

# NTS-KE record types
END_OF_MESSAGE = 0
NEXT_PROTOCOL = 1
ERROR = 2
WARNING = 3
AEAD_ALGORITHM = 4
NEW_COOKIE = 5
SERVER_NEGOTIATION = 6
PORT_NEGOTIATION = 7
CRITICAL = 0x8000
PROTOCOL_NTPV4 = 0
AEAD_AES_SIV_CMAC_256 = 15
ALPN = b"ntske/1"
EXPORTER_LABEL = b"EXPORTER-network-time-security"

# NTP extension field types
EF_UNIQUE_ID = 0x0104
EF_COOKIE = 0x0204
EF_COOKIE_PLACEHOLDER = 0x0304
EF_AUTHENTICATOR = 0x0404
NTP_EPOCH_OFFSET = 2208988800
T = TypeVar("T")


class WireError(Exception):
    """Malformed bytes, or a peer that broke the protocol (harness side)."""


# ---------------------------------------------------------------- NTS-KE records


def record(rtype: int, body: bytes = b"", critical: bool = False) -> bytes:
    return struct.pack("!HH", rtype | (CRITICAL if critical else 0), len(body)) + body


def u16(*values: int) -> bytes:
    return b"".join(struct.pack("!H", v) for v in values)


def ke_request(aeads: tuple[int, ...] = (AEAD_AES_SIV_CMAC_256,)) -> bytes:
    return (record(NEXT_PROTOCOL, u16(PROTOCOL_NTPV4), True) + record(AEAD_ALGORITHM, u16(*aeads), True)
            + record(END_OF_MESSAGE, critical=True))


@dataclass
class Record:
    critical: bool
    rtype: int
    body: bytes


def parse_records(data: bytes) -> tuple[list[Record], bytes]:
    """Complete records in `data` and the unparsed rest (an incomplete record)."""
    records = []
    pos = 0
    while len(data) - pos >= 4:
        head, length = struct.unpack_from("!HH", data, pos)
        if len(data) - pos - 4 < length:
            break
        records.append(Record(bool(head & CRITICAL), head & 0x7FFF, data[pos + 4:pos + 4 + length]))
        pos += 4 + length
        if records[-1].rtype == END_OF_MESSAGE:
            break
    return records, data[pos:]


def exporter_context(aead: int, s2c: bool) -> bytes:
    return u16(PROTOCOL_NTPV4, aead) + (b"\x01" if s2c else b"\x00")


# ---------------------------------------------------------------- NTP packets


def extension_field(ftype: int, body: bytes, min_length: int = 16) -> bytes:
    length = max(4 + len(body), min_length)
    length += (-length) % 4
    return struct.pack("!HH", ftype, length) + body + b"\x00" * (length - 4 - len(body))


def parse_extension_fields(data: bytes) -> list[tuple[int, bytes]]:
    fields = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 4:
            raise WireError("truncated extension field header")
        ftype, length = struct.unpack_from("!HH", data, pos)
        if length < 16 or length % 4 or pos + length > len(data):
            raise WireError(f"bad extension field length {length}")
        fields.append((ftype, data[pos + 4:pos + length]))
        pos += length
    return fields


def authenticator(key: bytes, associated: bytes, plaintext: bytes = b"") -> bytes:
    """The NTS Authenticator and Encrypted EFs field: 16-byte nonce, no extra padding."""
    nonce = os.urandom(16)
    ciphertext = AESSIV(key).encrypt(plaintext, [associated, nonce])
    body = u16(len(nonce), len(ciphertext)) + nonce + ciphertext + b"\x00" * ((-len(ciphertext)) % 4)
    return extension_field(EF_AUTHENTICATOR, body)


def open_authenticator(key: bytes, associated: bytes, body: bytes) -> bytes:
    """Verify and decrypt an authenticator field body; WireError when it fails."""
    if len(body) < 4:
        raise WireError("short authenticator")
    nonce_len, ct_len = struct.unpack_from("!HH", body)
    nonce_end = 4 + nonce_len + (-nonce_len) % 4
    nonce = body[4:4 + nonce_len]
    ciphertext = body[nonce_end:nonce_end + ct_len]
    if len(nonce) != nonce_len or len(ciphertext) != ct_len or ct_len < 16:
        raise WireError("authenticator lengths out of range")
    try:
        return AESSIV(key).decrypt(ciphertext, [associated, nonce])
    except Exception as exc:  # cryptography raises InvalidTag
        raise WireError("authenticator does not verify") from exc


def ntp_timestamp(now: float | None = None) -> bytes:
    now = time.time() if now is None else now
    seconds = int(now) + NTP_EPOCH_OFFSET
    return struct.pack("!II", seconds & 0xFFFFFFFF, int((now % 1) * 2**32) & 0xFFFFFFFF)


def ntp_header(mode: int, *, stratum: int = 0, leap: int = 0, refid: bytes = b"\x00" * 4,
               origin: bytes = b"\x00" * 8, receive: bytes = b"\x00" * 8, transmit: bytes | None = None,
               poll: int = 4) -> bytes:
    first = (leap << 6) | (4 << 3) | mode
    return (struct.pack("!BBbb", first, stratum, poll, -20) + struct.pack("!II", 0, 0x100) + refid
            + (ntp_timestamp() if stratum else b"\x00" * 8) + origin + receive
            + (transmit if transmit is not None else ntp_timestamp()))


@dataclass
class NtpRequest:
    header: bytes
    unique_id: bytes
    cookie: bytes
    placeholders: int
    associated: bytes  # packet up to the authenticator
    auth_body: bytes


def parse_ntp_request(packet: bytes) -> NtpRequest:
    if len(packet) < 48:
        raise WireError("short NTP packet")
    fields = parse_extension_fields(packet[48:])
    uid = cookie = auth = None
    placeholders = 0
    pos = 48
    associated = b""
    for ftype, body in fields:
        length = struct.unpack_from("!H", packet, pos + 2)[0]
        if ftype == EF_UNIQUE_ID:
            uid = body
        elif ftype == EF_COOKIE and cookie is None:
            cookie = body
        elif ftype == EF_COOKIE_PLACEHOLDER:
            placeholders += 1
        elif ftype == EF_AUTHENTICATOR:
            auth = body
            associated = packet[:pos]
        pos += length
    if uid is None or cookie is None or auth is None:
        raise WireError("not an NTS request")
    return NtpRequest(packet[:48], uid, cookie, placeholders, associated, auth)


def ntp_client_request(unique_id: bytes, cookie: bytes, c2s: bytes, placeholders: int = 0) -> bytes:
    packet = ntp_header(3, transmit=os.urandom(8)) + extension_field(EF_UNIQUE_ID, unique_id)
    packet += extension_field(EF_COOKIE, cookie)
    for _unused in range(placeholders):
        packet += extension_field(EF_COOKIE_PLACEHOLDER, b"\x00" * len(cookie))
    return packet + authenticator(c2s, packet)


@dataclass
class NtpReply:
    leap: int
    stratum: int
    refid: bytes
    authenticated: bool
    nak: bool
    cookies: list[bytes] = field(default_factory=list)


def parse_ntp_reply(packet: bytes, unique_id: bytes, s2c: bytes) -> NtpReply:
    """Check the echoed unique id and the authenticator (WireError when bad)."""
    if len(packet) < 48:
        raise WireError("short NTP reply")
    leap, stratum, refid = packet[0] >> 6, packet[1], packet[12:16]
    fields = parse_extension_fields(packet[48:])
    if not any(t == EF_UNIQUE_ID and b == unique_id for t, b in fields):
        raise WireError("unique identifier not echoed")
    auth_pos = None
    pos = 48
    for ftype, _body in fields:
        if ftype == EF_AUTHENTICATOR:
            auth_pos = pos
        pos += struct.unpack_from("!H", packet, pos + 2)[0]
    if auth_pos is None:
        return NtpReply(leap, stratum, refid, False, stratum == 0 and refid == b"NTSN")
    auth_body = dict(fields)[EF_AUTHENTICATOR]
    plaintext = open_authenticator(s2c, packet[:auth_pos], auth_body)
    cookies = [b for t, b in parse_extension_fields(plaintext) if t == EF_COOKIE]
    return NtpReply(leap, stratum, refid, True, False, cookies)


# ---------------------------------------------------------------- pyOpenSSL I/O helpers


def ossl_call(conn: SSL.Connection, deadline: float, func: Callable[..., T], *args: Any,
              stop: Callable[[], bool] | None = None) -> T:
    """Call a pyOpenSSL method on a non-blocking socket until it completes or time runs out."""
    while True:
        try:
            return func(*args)
        except (SSL.WantReadError, SSL.WantWriteError) as want:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (stop is not None and stop()):
                raise TimeoutError("TLS operation timed out") from want
            rlist = [conn] if isinstance(want, SSL.WantReadError) else []
            wlist = [conn] if isinstance(want, SSL.WantWriteError) else []
            select.select(rlist, wlist, [], min(remaining, 0.2))


# ---------------------------------------------------------------- a tiny client (for smoke tests)


@dataclass
class KeResult:
    alpn: bytes | None
    tls_version: str
    records: list[Record]
    c2s: bytes
    s2c: bytes
    cookies: list[bytes]
    server: str | None
    port: int | None
    errors: list[int]
    leftover: bytes
    closed_cleanly: bool


def ke_client(sock: socket.socket, address: str, port: int, name: str, ca_path: str, *,
              timeout: float = 3.0, verify: bool = True, tls12: bool = False) -> KeResult:
    """One NTS-KE over `sock` (already created, e.g. in a namespace). Raises WireError,
    TimeoutError, OSError or SSL.Error; returns what arrived up to EOM or close."""
    deadline = time.monotonic() + timeout
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION if tls12 else SSL.TLS1_3_VERSION)
    if tls12:
        ctx.set_max_proto_version(SSL.TLS1_2_VERSION)
    ctx.load_verify_locations(ca_path)
    if verify:
        ctx.set_verify(SSL.VERIFY_PEER, lambda *_a: bool(_a[-1]))
    ctx.set_alpn_protos([ALPN])
    sock.settimeout(timeout)
    sock.connect((address, port))
    sock.setblocking(False)
    conn = SSL.Connection(ctx, sock)
    conn.set_tlsext_host_name(name.encode())
    conn.set_connect_state()
    try:
        ossl_call(conn, deadline, conn.do_handshake)
        if verify:
            cert = conn.get_peer_certificate(as_cryptography=True)
            if cert is None:
                raise WireError("no peer certificate")
            sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            if name not in sans.get_values_for_type(x509.DNSName) and name not in [
                    str(a) for a in sans.get_values_for_type(x509.IPAddress)]:
                raise WireError(f"certificate does not match {name}")
        ossl_call(conn, deadline, conn.sendall, ke_request())
        data = b""
        records: list[Record] = []
        closed = False
        while not (records and records[-1].rtype == END_OF_MESSAGE):
            try:
                chunk = ossl_call(conn, deadline, conn.recv, 65536)
            except SSL.ZeroReturnError:
                closed = True
                break
            except SSL.SysCallError as exc:
                if exc.args and exc.args[0] in (-1, 0):  # EOF without close_notify
                    closed = True
                    break
                raise
            if not chunk:
                closed = True
                break
            data += chunk
            records, rest = parse_records(data)
        records, rest = parse_records(data)
        c2s = conn.export_keying_material(EXPORTER_LABEL, 32, exporter_context(AEAD_AES_SIV_CMAC_256, False))
        s2c = conn.export_keying_material(EXPORTER_LABEL, 32, exporter_context(AEAD_AES_SIV_CMAC_256, True))
        server = next((r.body.decode() for r in records if r.rtype == SERVER_NEGOTIATION), None)
        nport = next((struct.unpack("!H", r.body)[0] for r in records if r.rtype == PORT_NEGOTIATION), None)
        errors = [struct.unpack("!H", r.body)[0] for r in records if r.rtype == ERROR and len(r.body) == 2]
        return KeResult(conn.get_alpn_proto_negotiated() or None, conn.get_protocol_version_name(), records,
                        c2s, s2c, [r.body for r in records if r.rtype == NEW_COOKIE], server, nport, errors,
                        rest, closed)
    finally:
        conn.close()
        sock.close()


def ntp_client(sock: socket.socket, address: str, port: int, *, cookie: bytes, c2s: bytes, s2c: bytes,
               timeout: float = 2.0) -> NtpReply:
    """One NTS-protected NTP exchange over UDP `sock`; TimeoutError when nothing comes."""
    uid = os.urandom(32)
    sock.settimeout(timeout)
    sock.sendto(ntp_client_request(uid, cookie, c2s), (address, port))
    deadline = time.monotonic() + timeout
    while True:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            packet, _peer = sock.recvfrom(2048)
        except TimeoutError:
            raise
        except OSError as exc:
            raise TimeoutError(str(exc)) from exc
        try:
            return parse_ntp_reply(packet, uid, s2c)
        except WireError as exc:
            if "not echoed" in str(exc) and time.monotonic() < deadline:
                continue
            raise
