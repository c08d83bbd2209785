"""session: one herd client's outcome class, on loopback sockets the tests open themselves
(for "refused" and "accepted then closed") and from the causes the _net stack chains."""

from __future__ import annotations

import socket
import threading

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsProtocolError
from ansible_collections.ntsops.nts.plugins.module_utils._herd import session
from ansible_collections.ntsops.nts.plugins.module_utils._net import tls
from ansible_collections.ntsops.nts.plugins.module_utils._net.deadline import Deadline, NtsStepError
from OpenSSL import SSL

# ------------------------------------------------------------------ real sockets for two classes


def _listener(accept_and_close: bool) -> tuple[socket.socket, threading.Thread | None]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    if not accept_and_close:
        return server, None  # bound, not listening: a connect is refused
    server.listen(8)
    server.settimeout(5)

    def serve() -> None:
        try:
            conn, _peer = server.accept()
            conn.close()
        except OSError:
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, thread


@pytest.mark.parametrize(("accept_and_close", "outcome"), [(False, "refused"), (True, "closed")])
def test_real_session_classifies_refused_and_accepted_then_closed(accept_and_close: bool, outcome: str) -> None:
    server, thread = _listener(accept_and_close)
    try:
        port = server.getsockname()[1]
        context = tls.make_client_context(None, strict_verify=True)
        result = session.run_session("127.0.0.1", port, None, context, source="127.0.1.7", timeout=2.0)
    finally:
        server.close()
        if thread:
            thread.join(5)
    assert result.outcome == outcome, result.detail
    assert result.source == "127.0.1.7"
    assert result.latency_s < 2.0


def test_key_exchange_failures_are_classified_by_their_cause() -> None:
    deadline = Deadline(60)

    def failure(cause: BaseException | None) -> NtsStepError:
        exc = NtsStepError("ke", "x")
        exc.__cause__ = cause
        return exc

    assert session._classify(failure(NtsProtocolError("bad")), deadline) == "protocol_error"
    assert session._classify(failure(SSL.SysCallError(-1, "Unexpected EOF")), deadline) == "closed"
    assert session._classify(failure(SSL.Error([])), deadline) == "tls_error"
    assert session._classify(failure(None), deadline) == "closed"
    assert session._classify(failure(None), Deadline(0)) == "timeout"


def test_connect_and_handshake_failures_are_classified_by_their_cause() -> None:
    deadline = Deadline(60)

    def failure(step: str, cause: BaseException) -> NtsStepError:
        exc = NtsStepError(step, "x")
        exc.__cause__ = cause
        return exc

    assert session._classify(failure("tcp", ConnectionRefusedError()), deadline) == "refused"
    assert session._classify(failure("tcp", TimeoutError()), deadline) == "timeout"
    assert session._classify(failure("tcp", OSError(99, "Cannot assign requested address")), deadline) == "other"
    assert session._classify(failure("tls", TimeoutError()), deadline) == "timeout"
    assert session._classify(failure("tls", SSL.SysCallError(-1, "Unexpected EOF")), deadline) == "closed"
    assert session._classify(failure("tls", UnicodeError()), deadline) == "other"


def test_a_source_address_that_is_not_local_is_other(closed_port: int) -> None:
    context = tls.make_client_context(None, strict_verify=True)
    result = session.run_session("127.0.0.1", closed_port, None, context, source="192.0.2.1", timeout=1.0)
    assert result.outcome == "other", result.detail
    assert result.detail.startswith(f"TCP {closed_port} connect from 192.0.2.1 failed: ")
