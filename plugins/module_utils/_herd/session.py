# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One herd client: TCP from a source address, a full TLS 1.3 handshake, one NTS-KE request.

The session connects and shakes hands through the ``_net`` stack every check uses
(with a shared, strictly verifying context and no session resumption) and counts
the cookies it gets. Every outcome is put in one class:

- ``ok``: an NTS-KE response without Error records;
- ``refused``: TCP connect refused (RST to the SYN);
- ``closed``: TCP accepted, then closed before any NTS-KE response (chrony's
  ``ntsratelimit`` and a denying ``allow`` look like this: accept, close at once);
- ``tls_error``: the TLS handshake failed with a TLS alert or verification error;
- ``timeout``: a step did not finish within its timeout;
- ``error_record``: the response held an NTS-KE Error record;
- ``protocol_error``: the response broke RFC 8915 framing;
- ``other``: anything else (for example no route, source address not local).

Each session takes at most three timeouts (connect, handshake, key exchange).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError, NtsProtocolError
from ansible_collections.ntsops.nts.plugins.module_utils._net import nts_session, tls
from ansible_collections.ntsops.nts.plugins.module_utils._net.deadline import Deadline, NtsStepError
from ansible_collections.ntsops.nts.plugins.module_utils._nts import records as nts_records

try:
    from OpenSSL import SSL
except ImportError:  # pragma: no cover - the tls module reports it
    SSL = None  # type: ignore[assignment]

OUTCOMES = ("ok", "refused", "closed", "tls_error", "timeout", "error_record", "protocol_error", "other")
FAILURE_CLASSES = OUTCOMES[1:]


@dataclasses.dataclass
class SessionResult:
    source: str
    outcome: str
    started: float  # seconds after the run began
    latency_s: float  # connect to NTS-KE response (or to the failure)
    handshake_s: float | None = None
    cookies: int = 0
    detail: str = ""
    planned: float | None = None  # planned start, seconds after the run began


# The first class the chained cause belongs to decides (see the _net deadline module).
_CAUSE_OUTCOMES: tuple[tuple[type[BaseException], str], ...] = (
    (NtsProtocolError, "protocol_error"),
    (ConnectionRefusedError, "refused"),
    (TimeoutError, "timeout"),
) + (
    # EOF or reset is the server accepting, then closing; any other TLS failure is a TLS error.
    ((SSL.SysCallError, "closed"), (SSL.Error, "tls_error")) if SSL is not None else ()
)


def _classify(exc: NtsStepError, deadline: Deadline) -> str:
    """The outcome class of a failed step, from the error the ``_net`` stack chains to it."""
    cause = exc.__cause__
    if cause is None:
        # Only "closed without a response" comes without a cause; with the deadline spent it is its timeout.
        return "timeout" if deadline.expired() else "closed"
    # Anything else is "other": no route, a source address that is not local, ...
    return next((outcome for kind, outcome in _CAUSE_OUTCOMES if isinstance(cause, kind)), "other")


def run_session(
    address: str, port: int, server_name: str | None, context: Any, *, source: str | None, timeout: float
) -> SessionResult:
    """One client: connect, full TLS 1.3 handshake, one NTS-KE; never raises NtsopsError.

    ``context`` is tls.make_client_context(..., strict_verify=True), shared by every session.
    """
    started = time.monotonic()
    handshake_s = None
    sock = connection = None
    deadline = Deadline(timeout)
    try:
        sni = tls.server_name_indication(server_name)
        sock = tls.connect_tcp(address, port, timeout, source_address=source)
        connection = tls.handshake(sock, context, sni, timeout)
        handshake_s = time.monotonic() - started
        session = tls.TlsSession(
            connection=connection, sock=sock, version="", cipher=None, alpn="", handshake_ms=handshake_s * 1000,
            verify_errors=[], chain=[],
        )
        deadline = Deadline(timeout)
        ke = nts_session.key_exchange(session, (nts_records.AEAD_AES_SIV_CMAC_256,), timeout)
        latency = time.monotonic() - started
        if ke.response.errors:
            names = ", ".join(nts_records.error_name(code) for code in ke.response.errors)
            return SessionResult(source or "", "error_record", started, latency, handshake_s, 0, names)
        return SessionResult(source or "", "ok", started, latency, handshake_s, len(ke.response.cookies))
    except NtsStepError as exc:
        outcome = _classify(exc, deadline)
        return SessionResult(source or "", outcome, started, time.monotonic() - started, handshake_s, 0, str(exc))
    except NtsopsError as exc:
        return SessionResult(source or "", "other", started, time.monotonic() - started, handshake_s, 0, str(exc))
    finally:
        if connection is not None:
            with contextlib.suppress(SSL.Error):  # the peer may already have closed
                connection.shutdown()
        if sock is not None:
            sock.close()
