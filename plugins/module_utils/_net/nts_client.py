# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An NTS client that talks to one server address the way chrony and NTPsec do.

It opens TCP with TCP_NODELAY, runs TLS 1.3 with ALPN ``ntske/1`` (pyOpenSSL, for
its public TLS exporter), sends the NTS-KE request in one write, and optionally
runs one NTS-protected NTP exchange. Every step has its own deadline and every
failure is raised as an :class:`NtsStepError` naming the step, so a caller can
turn it into one readable problem line. Sockets are non-blocking and waited on
with ``select``, so a silent or slow peer never holds a step past its timeout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import select
import socket
import time
from collections.abc import Sequence
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._errors import (
    MissingDependencyError,
    NtsopsError,
    NtsProtocolError,
)
from ansible_collections.ntsops.nts.plugins.module_utils._nts import ntp as nts_ntp
from ansible_collections.ntsops.nts.plugins.module_utils._nts import records as nts_records

try:
    from OpenSSL import SSL
except ImportError:  # pragma: no cover - reported when used
    SSL = None  # type: ignore[assignment]

ALPN_NTSKE = b"ntske/1"
NTS_KE_PORT = 4460
UNIQUE_ID_BYTES = 32
RECV_CHUNK = 16384

# OpenSSL X509_V_ERR_* codes a checker meets in practice, worded for operators.
_VERIFY_MESSAGES = {
    2: "certificate is not trusted (issuer certificate not found)",
    9: "certificate is not yet valid",
    10: "certificate has expired",
    18: "certificate is self-signed and not trusted",
    19: "certificate is not trusted (self-signed certificate in chain)",
    20: "certificate is not trusted (issuer not in the trust store)",
    21: "certificate is not trusted (unable to verify the first certificate)",
    26: "certificate is not meant for TLS servers (unsupported purpose)",
}


class NtsStepError(NtsopsError):
    """One step of the exchange failed; ``step`` is tcp, tls, ke or ntp."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step


@dataclasses.dataclass
class TlsSession:
    """An established TLS 1.3 session and what the handshake showed."""

    connection: Any
    sock: socket.socket
    version: str
    cipher: str | None
    alpn: str
    handshake_ms: float
    verify_errors: list[str]
    chain: list[Any]

    def close(self) -> None:
        # Closing a session the peer already broke must never raise.
        with contextlib.suppress(Exception):
            self.connection.shutdown()
        self.sock.close()


@dataclasses.dataclass
class KeResult:
    response: nts_records.KeResponse
    c2s_key: bytes
    s2c_key: bytes
    ms: float


@dataclasses.dataclass
class NtpResult:
    response: nts_ntp.NtpResponse
    server: str
    port: int
    offset: float
    delay: float
    ms: float


class Deadline:
    """Seconds left until a fixed moment on the monotonic clock."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def left(self) -> float:
        return self._end - time.monotonic()

    def expired(self) -> bool:
        return self.left() <= 0


def _require_pyopenssl() -> None:
    if SSL is None:
        raise MissingDependencyError("pyOpenSSL", "for the TLS exporter NTS derives its keys from")


def _wait(sock: socket.socket, for_write: bool, deadline: Deadline, step: str, what: str) -> None:
    left = deadline.left()
    if left <= 0:
        raise NtsStepError(step, f"{what} timed out after {deadline.seconds:g} s")
    readers, writers = ([], [sock]) if for_write else ([sock], [])
    ready = select.select(readers, writers, [], left)
    if not any(ready):
        raise NtsStepError(step, f"{what} timed out after {deadline.seconds:g} s")


def connect_tcp(address: str, port: int, timeout: float) -> socket.socket:
    """A connected, non-blocking TCP socket with TCP_NODELAY (NTS-KE is latency bound)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        code = sock.connect_ex((address, port))
        if code not in (0, errno.EINPROGRESS):
            raise NtsStepError("tcp", _connect_error(port, code))
        _wait(sock, True, Deadline(timeout), "tcp", f"TCP {port} connect")
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise NtsStepError("tcp", _connect_error(port, code))
    except BaseException:
        sock.close()
        raise
    return sock


def _connect_error(port: int, code: int) -> str:
    if code == errno.ECONNREFUSED:
        return f"TCP {port} refused"
    if code in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return f"TCP {port} unreachable ({os.strerror(code)})"
    return f"TCP {port} connect failed: {os.strerror(code)}"


def _tls_error_text(exc: Exception) -> str:
    """The OpenSSL reason strings, without the library noise around them."""
    reasons: list[str] = []
    for entry in exc.args[0] if exc.args and isinstance(exc.args[0], list) else []:
        if isinstance(entry, tuple) and entry:
            reasons.append(str(entry[-1]))
    text = "; ".join(r for r in reasons if r) or str(exc) or type(exc).__name__
    if "protocol version" in text or "unsupported protocol" in text or "no protocols available" in text:
        return f"server does not offer TLS 1.3 ({text})"
    return text


def make_client_context(ca_path: str | None) -> Any:
    """A TLS 1.3 client context with ALPN ntske/1 and the trust store loaded once.

    One context serves every connection of a check: loading a trust store costs
    more than the rest of the handshake's setup. Verification errors go to the
    list each connection carries as its app data.
    """
    _require_pyopenssl()
    context = SSL.Context(SSL.TLS_METHOD)
    # RFC 8915 section 3: NTS-KE runs over TLS 1.3 or later only.
    context.set_min_proto_version(SSL.TLS1_3_VERSION)
    context.set_alpn_protos([ALPN_NTSKE])
    if ca_path:
        try:
            context.load_verify_locations(ca_path)
        except SSL.Error as exc:
            raise NtsStepError("tls", f"cannot load CA bundle {ca_path}: {_tls_error_text(exc)}") from exc
    else:
        context.set_default_verify_paths()

    def record_verify_error(conn: Any, _cert: Any, errnum: int, depth: int, ok: int) -> bool:
        # Finish the handshake even when the chain fails, so the report can say
        # everything that is wrong rather than only the first thing.
        verify_errors: list[str] = conn.get_app_data()
        if not ok:
            message = _VERIFY_MESSAGES.get(errnum, f"certificate verification failed (OpenSSL error {errnum})")
            if depth:
                message += f" at chain depth {depth}"
            if message not in verify_errors:
                verify_errors.append(message)
        return True

    context.set_verify(SSL.VERIFY_PEER, record_verify_error)
    return context


def open_tls(
    address: str,
    port: int,
    server_name: str | None,
    ca_path: str | None,
    timeout: float,
    *,
    context: Any | None = None,
) -> TlsSession:
    """TCP connect and TLS 1.3 handshake with ALPN ntske/1; the chain is verified, not the name.

    ``context`` (from make_client_context) is shared between connections; without
    it, one is made from ``ca_path``.
    """
    if context is None:
        context = make_client_context(ca_path)
    try:
        sni = server_name.encode("idna") if server_name else None
    except UnicodeError as exc:
        # An empty or over-long label: no server can be asked for this name.
        raise NtsStepError("tls", f"{server_name!r} is not a valid TLS server name") from exc
    started = time.monotonic()
    sock = connect_tcp(address, port, timeout)
    verify_errors: list[str] = []
    try:
        connection = SSL.Connection(context, sock)
        connection.set_app_data(verify_errors)
        if sni:
            connection.set_tlsext_host_name(sni)
        connection.set_connect_state()
        deadline = Deadline(timeout)
        while True:
            try:
                connection.do_handshake()
                break
            except SSL.WantReadError:
                _wait(sock, False, deadline, "tls", "TLS handshake")
            except SSL.WantWriteError:
                _wait(sock, True, deadline, "tls", "TLS handshake")
            except SSL.SysCallError as exc:
                reason = exc.args[-1]
                raise NtsStepError("tls", f"TLS handshake failed: connection closed by server ({reason})") from exc
            except SSL.Error as exc:
                raise NtsStepError("tls", f"TLS handshake failed: {_tls_error_text(exc)}") from exc
        handshake_ms = (time.monotonic() - started) * 1000
        # as_cryptography needs pyOpenSSL 24.3; Debian 12 hosts have 23.0.
        chain = [cert.to_cryptography() for cert in connection.get_peer_cert_chain() or []]
        return TlsSession(
            connection=connection,
            sock=sock,
            version=connection.get_protocol_version_name(),
            cipher=connection.get_cipher_name(),
            alpn=connection.get_alpn_proto_negotiated().decode("ascii", "replace"),
            handshake_ms=handshake_ms,
            verify_errors=verify_errors,
            chain=list(chain),
        )
    except BaseException:
        sock.close()
        raise


def _send_all(session: TlsSession, data: bytes, deadline: Deadline) -> None:
    view = memoryview(data)
    while view:
        try:
            sent = session.connection.send(view.tobytes())
            view = view[sent:]
        except SSL.WantReadError:
            _wait(session.sock, False, deadline, "ke", "NTS-KE request")
        except SSL.WantWriteError:
            _wait(session.sock, True, deadline, "ke", "NTS-KE request")
        except SSL.Error as exc:
            raise NtsStepError("ke", f"NTS-KE request could not be sent: {_tls_error_text(exc)}") from exc


def _receive_records(session: TlsSession, deadline: Deadline) -> list[nts_records.Record]:
    parser = nts_records.RecordParser()
    records: list[nts_records.Record] = []
    received = 0
    while not parser.complete:
        try:
            chunk = session.connection.recv(RECV_CHUNK)
        except SSL.WantReadError:
            _wait(session.sock, False, deadline, "ke", "NTS-KE response")
            continue
        except SSL.WantWriteError:
            _wait(session.sock, True, deadline, "ke", "NTS-KE response")
            continue
        except SSL.ZeroReturnError:
            chunk = b""
        except SSL.SysCallError as exc:
            if received == 0:
                # How chrony's ntsratelimit and a denied `allow` look from outside.
                raise NtsStepError("ke", "server accepted the connection, then closed it without a response") from exc
            chunk = b""
        except SSL.Error as exc:
            raise NtsStepError("ke", f"NTS-KE response failed: {_tls_error_text(exc)}") from exc
        if not chunk:
            if received == 0:
                raise NtsStepError("ke", "server accepted the connection, then closed it without a response")
            try:
                parser.finish()
            except NtsProtocolError as exc:
                raise NtsStepError("ke", f"NTS-KE response: {exc}") from exc
            break
        received += len(chunk)
        try:
            records.extend(parser.feed(chunk))
        except NtsProtocolError as exc:
            raise NtsStepError("ke", f"NTS-KE response: {exc}") from exc
    return records


def key_exchange(session: TlsSession, aead_ids: Sequence[int], timeout: float) -> KeResult:
    """Send the NTS-KE request in one write and read the response up to End of Message."""
    started = time.monotonic()
    deadline = Deadline(timeout)
    try:
        request = nts_records.build_ke_request(aead_ids=aead_ids)
    except NtsopsError as exc:
        raise NtsStepError("ke", f"invalid NTS-KE request: {exc}") from exc
    # NTPsec 1.2.2 reads only the first TLS record of a request: one write.
    _send_all(session, request, deadline)
    records = _receive_records(session, deadline)
    try:
        response = nts_records.interpret_ke_response(records, offered_aeads=aead_ids)
    except NtsProtocolError as exc:
        raise NtsStepError("ke", f"NTS-KE response: {exc}") from exc
    c2s_key = s2c_key = b""
    if response.aead is not None and not response.errors:
        key_length = nts_records.AEAD_KEY_LENGTHS.get(response.aead, 32)
        for direction in (False, True):
            context = nts_records.exporter_context(nts_records.PROTOCOL_NTPV4, response.aead, direction)
            key = session.connection.export_keying_material(nts_records.EXPORTER_LABEL, key_length, context)
            if direction:
                s2c_key = key
            else:
                c2s_key = key
    return KeResult(response=response, c2s_key=c2s_key, s2c_key=s2c_key, ms=(time.monotonic() - started) * 1000)


def resolve_ntp_server(server: str, family: int) -> str:
    """The address of a Server Negotiation name, preferring the KE address's family."""
    try:
        infos = socket.getaddrinfo(server, nts_ntp.NTP_PORT, type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise NtsStepError("ntp", f"negotiated NTP server {server} does not resolve: {exc.strerror}") from exc
    except UnicodeError as exc:
        # The peer chose the name: an empty or over-long label ("a..b") fails in the IDNA codec.
        raise NtsStepError("ntp", f"negotiated NTP server {server!r} is not a valid host name") from exc
    infos.sort(key=lambda info: info[0] != family)
    return str(infos[0][4][0])


def ntp_exchange(address: str, port: int, ke: KeResult, timeout: float) -> NtpResult:
    """One NTS-protected NTPv4 request with a fresh cookie; the reply is verified."""
    if not ke.response.cookies:
        raise NtsStepError("ntp", "no cookie to send: NTS-KE returned none")
    aead_id = ke.response.aead
    if aead_id is None:
        raise NtsStepError("ntp", "no AEAD algorithm was negotiated")
    started = time.monotonic()
    deadline = Deadline(timeout)
    unique_id = os.urandom(UNIQUE_ID_BYTES)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        try:
            # connect() makes the kernel drop datagrams from any other source.
            sock.connect((address, port))
            t1 = time.time()
            origin = nts_ntp.unix_to_ntp(t1)
            request = nts_ntp.build_nts_request(
                ke.response.cookies[0], ke.c2s_key, unique_id, origin, aead_id=aead_id
            )
            sock.send(request)
        except OSError as exc:
            raise NtsStepError("ntp", f"NTP request to {address} port {port} failed: {exc.strerror}") from exc
        except NtsopsError as exc:
            raise NtsStepError("ntp", f"NTP request could not be built: {exc}") from exc
        while True:
            _wait(sock, False, deadline, "ntp", f"NTP response from port {port}")
            try:
                packet = sock.recv(65535)
            except ConnectionRefusedError as exc:
                raise NtsStepError("ntp", f"NTP port {port} refused (ICMP port unreachable)") from exc
            except BlockingIOError:
                continue
            except OSError as exc:
                raise NtsStepError("ntp", f"NTP response failed: {exc.strerror}") from exc
            t4 = time.time()
            try:
                response = nts_ntp.parse_nts_response(
                    packet, unique_id, ke.s2c_key, origin, aead_id=aead_id
                )
            except NtsopsError as exc:
                raise NtsStepError("ntp", f"NTP response: {exc}") from exc
            break
    t2 = nts_ntp.ntp_to_unix(response.receive_ts)
    t3 = nts_ntp.ntp_to_unix(response.transmit_ts)
    offset, delay = nts_ntp.offset_and_delay(t1, t2, t3, t4)
    return NtpResult(
        response=response, server=address, port=port, offset=offset, delay=delay,
        ms=(time.monotonic() - started) * 1000,
    )
