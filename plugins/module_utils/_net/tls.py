# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""TCP connect and the TLS 1.3 handshake with ALPN ``ntske/1``, the way chrony and NTPsec do it.

TCP gets TCP_NODELAY (NTS-KE is latency bound) and, when asked, a source address;
TLS is pyOpenSSL, for its public TLS exporter. Sockets are non-blocking and waited
on with ``select``, so a silent or slow peer never holds a step past its timeout.
Failures raise :class:`~.deadline.NtsStepError` with the step ``tcp`` or ``tls``
and the underlying error chained (see the deadline module). The endpoint and
certificate checks and the herd's sessions all connect through here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import socket
import time
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._errors import MissingDependencyError
from ansible_collections.ntsops.nts.plugins.module_utils._net.deadline import Deadline, NtsStepError, wait_ready
from ansible_collections.ntsops.nts.plugins.module_utils._net.resolve import address_family
from ansible_collections.ntsops.nts.plugins.module_utils._nts.records import ALPN_PROTOCOL

try:
    from OpenSSL import SSL
except ImportError:  # pragma: no cover - reported when used
    SSL = None  # type: ignore[assignment]

# Linux: bind() to an address without picking the port until connect(), so many
# sessions from one source address do not run out of ports at bind time.
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)

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


def _require_pyopenssl() -> None:
    if SSL is None:
        raise MissingDependencyError("pyOpenSSL", "for the TLS exporter NTS derives its keys from")


def connect_tcp(address: str, port: int, timeout: float, *, source_address: str | None = None) -> socket.socket:
    """A connected, non-blocking TCP socket with TCP_NODELAY, bound to ``source_address`` if given."""
    sock = None
    try:
        sock = socket.socket(address_family(address), socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if source_address:
            if sock.family == socket.AF_INET:
                sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((source_address, 0))
        sock.setblocking(False)
        code = sock.connect_ex((address, port))
        if code not in (0, errno.EINPROGRESS):
            raise _connect_failure(port, code)
        wait_ready(sock, True, Deadline(timeout), "tcp", f"TCP {port} connect")
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise _connect_failure(port, code)
        return sock
    except OSError as exc:
        # No socket (out of file descriptors in a large herd) or a source address that is not local.
        if sock is not None:
            sock.close()
        source = f" from {source_address}" if source_address else ""
        raise NtsStepError("tcp", f"TCP {port} connect{source} failed: {exc.strerror or exc}") from exc
    except BaseException:
        if sock is not None:
            sock.close()
        raise


def _connect_failure(port: int, code: int) -> NtsStepError:
    failure = NtsStepError("tcp", _connect_error(port, code))
    # The errno as an OSError: ECONNREFUSED is a ConnectionRefusedError, ETIMEDOUT a TimeoutError.
    failure.__cause__ = OSError(code, os.strerror(code))
    return failure


def _connect_error(port: int, code: int) -> str:
    if code == errno.ECONNREFUSED:
        return f"TCP {port} refused"
    if code in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return f"TCP {port} unreachable ({os.strerror(code)})"
    return f"TCP {port} connect failed: {os.strerror(code)}"


def tls_error_text(exc: Exception) -> str:
    """The OpenSSL reason strings, without the library noise around them."""
    reasons: list[str] = []
    for entry in exc.args[0] if exc.args and isinstance(exc.args[0], list) else []:
        if isinstance(entry, tuple) and entry:
            reasons.append(str(entry[-1]))
    text = "; ".join(r for r in reasons if r) or str(exc) or type(exc).__name__
    if "protocol version" in text or "unsupported protocol" in text or "no protocols available" in text:
        return f"server does not offer TLS 1.3 ({text})"
    return text


def make_client_context(ca_path: str | None, *, strict_verify: bool = False) -> Any:
    """A TLS 1.3 client context with ALPN ntske/1 and the trust store loaded once.

    One context serves every connection of a check or a herd: loading a trust
    store costs more than the rest of the handshake's setup. Without
    ``strict_verify`` a chain that does not verify still completes the handshake
    and its errors go to the list each connection carries as its app data (a check
    reports everything that is wrong); with it the handshake fails (a herd counts a
    TLS error). The certificate name is not checked here.
    """
    _require_pyopenssl()
    context = SSL.Context(SSL.TLS_METHOD)
    # RFC 8915 section 3: NTS-KE runs over TLS 1.3 or later only.
    context.set_min_proto_version(SSL.TLS1_3_VERSION)
    context.set_alpn_protos([ALPN_PROTOCOL])
    # Every connection makes a full handshake, as a client does after an address change.
    context.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    if ca_path:
        try:
            context.load_verify_locations(ca_path)
        except SSL.Error as exc:
            raise NtsStepError("tls", f"cannot load CA bundle {ca_path}: {tls_error_text(exc)}") from exc
    else:
        context.set_default_verify_paths()
    if strict_verify:
        context.set_verify(SSL.VERIFY_PEER)
        return context

    def record_verify_error(conn: Any, _cert: Any, errnum: int, depth: int, ok: int) -> bool:
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


def server_name_indication(server_name: str | None) -> bytes | None:
    """The SNI bytes for ``server_name``; a name no server can be asked for raises the tls step."""
    try:
        return server_name.encode("idna") if server_name else None
    except UnicodeError as exc:
        # An empty or over-long label.
        raise NtsStepError("tls", f"{server_name!r} is not a valid TLS server name") from exc


def handshake(sock: socket.socket, context: Any, sni: bytes | None, timeout: float) -> Any:
    """The TLS 1.3 client handshake on a connected socket; returns the pyOpenSSL connection.

    The connection's app data is the list of verification errors (see
    make_client_context). The caller owns ``sock`` and closes it on failure.
    """
    connection = SSL.Connection(context, sock)
    connection.set_app_data([])
    if sni:
        connection.set_tlsext_host_name(sni)
    connection.set_connect_state()
    deadline = Deadline(timeout)
    while True:
        try:
            connection.do_handshake()
            return connection
        except SSL.WantReadError:
            wait_ready(sock, False, deadline, "tls", "TLS handshake")
        except SSL.WantWriteError:
            wait_ready(sock, True, deadline, "tls", "TLS handshake")
        except SSL.SysCallError as exc:
            # EOF or reset before the handshake finished: the server accepted and closed.
            reason = exc.args[-1]
            raise NtsStepError("tls", f"TLS handshake failed: connection closed by server ({reason})") from exc
        except SSL.Error as exc:
            raise NtsStepError("tls", f"TLS handshake failed: {tls_error_text(exc)}") from exc


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
    sni = server_name_indication(server_name)
    started = time.monotonic()
    sock = connect_tcp(address, port, timeout)
    try:
        connection = handshake(sock, context, sni, timeout)
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
            verify_errors=connection.get_app_data(),
            chain=list(chain),
        )
    except BaseException:
        sock.close()
        raise
