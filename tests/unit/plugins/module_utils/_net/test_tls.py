"""tls: TCP and TLS failures on loopback sockets the tests open themselves."""

from __future__ import annotations

import errno
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._net import tls
from ansible_collections.ntsops.nts.plugins.module_utils._net.deadline import NtsStepError
from OpenSSL import SSL


def test_connect_tcp_to_a_closed_port_is_refused(closed_port: int) -> None:
    started = time.monotonic()
    with pytest.raises(NtsStepError) as excinfo:
        tls.connect_tcp("127.0.0.1", closed_port, 2.0)
    assert excinfo.value.step == "tcp"
    assert str(excinfo.value) == f"TCP {closed_port} refused"
    assert time.monotonic() - started < 0.5


def test_connect_tcp_sets_nodelay_and_non_blocking() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        sock = tls.connect_tcp("127.0.0.1", listener.getsockname()[1], 1.0)
        try:
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            assert sock.getblocking() is False
            assert sock.getpeername()[1] == listener.getsockname()[1]
        finally:
            sock.close()


def test_connect_tcp_over_ipv6_loopback_is_refused_too() -> None:
    with socket.socket(socket.AF_INET6) as probe:
        probe.bind(("::1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(NtsStepError, match=f"^TCP {port} refused$"):
        tls.connect_tcp("::1", port, 1.0)


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (errno.ECONNREFUSED, "TCP 4460 refused"),
        (errno.EHOSTUNREACH, "TCP 4460 unreachable (No route to host)"),
        (errno.ENETUNREACH, "TCP 4460 unreachable (Network is unreachable)"),
        (errno.ETIMEDOUT, "TCP 4460 connect failed: Connection timed out"),
    ],
)
def test_connect_error_wording(code: int, text: str) -> None:
    assert tls._connect_error(4460, code) == text


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """Accepts TCP (the kernel does, from the backlog) and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        yield int(listener.getsockname()[1])


@pytest.mark.parametrize("timeout", [0.3, 0.6])
def test_silent_server_times_out_in_the_tls_step(silent_listener: int, timeout: float) -> None:
    started = time.monotonic()
    with pytest.raises(NtsStepError) as excinfo:
        tls.open_tls("127.0.0.1", silent_listener, "localhost", None, timeout)
    elapsed = time.monotonic() - started
    assert excinfo.value.step == "tls"
    assert str(excinfo.value) == f"TLS handshake timed out after {timeout:g} s"
    assert timeout - 0.01 <= elapsed < timeout + 0.5


@pytest.mark.parametrize(
    ("args", "text"),
    [
        ([[("SSL routines", "", "tlsv1 alert protocol version")]],
         "server does not offer TLS 1.3 (tlsv1 alert protocol version)"),
        ([[("SSL routines", "ssl_choose_client_version", "unsupported protocol")]],
         "server does not offer TLS 1.3 (unsupported protocol)"),
        ([[("SSL routines", "", "no protocols available")]], "server does not offer TLS 1.3 (no protocols available)"),
        ([[("SSL routines", "", "certificate verify failed"), ("x509", "", "bad thing")]],
         "certificate verify failed; bad thing"),
        ([[("SSL routines", "", "")]], "[('SSL routines', '', '')]"),
        (["plain message"], "plain message"),
        ([], "Error"),
    ],
)
def test_tls_error_text(args: list[Any], text: str) -> None:
    assert tls.tls_error_text(SSL.Error(*args)) == text


def test_tls12_only_server_is_named_as_such(pki: Any, tls_server: Callable[..., Any]) -> None:
    issued = pki.issue(dns=["localhost"])
    server = tls_server(issued.chain_path, issued.key_path, max_version=ssl.TLSVersion.TLSv1_2)
    with pytest.raises(NtsStepError) as excinfo:
        tls.open_tls("127.0.0.1", server.port, "localhost", str(pki.ca_path), 2.0)
    assert excinfo.value.step == "tls"
    assert str(excinfo.value).startswith("TLS handshake failed: server does not offer TLS 1.3 (")


def test_server_closing_at_once_is_a_tls_failure() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]

        # A server that accepts and closes before the ClientHello is answered.
        def accept_and_close() -> None:
            conn, _peer = listener.accept()
            conn.close()

        thread = threading.Thread(target=accept_and_close)
        thread.start()
        with pytest.raises(NtsStepError) as excinfo:
            tls.open_tls("127.0.0.1", port, None, None, 2.0)
        thread.join(2)
    assert excinfo.value.step == "tls"
    assert str(excinfo.value).startswith("TLS handshake failed: connection closed by server")


def test_handshake_reports_session_and_verifies_the_chain(pki: Any, tls_server: Callable[..., Any]) -> None:
    issued = pki.issue(dns=["localhost"])
    server = tls_server(issued.chain_path, issued.key_path)
    session = tls.open_tls("127.0.0.1", server.port, "localhost", str(pki.ca_path), 2.0)
    try:
        assert session.version == "TLSv1.3"
        assert session.alpn == "ntske/1"
        assert session.cipher
        assert session.verify_errors == []
        assert session.chain[0] == issued.cert
        assert 0 < session.handshake_ms < 2000
    finally:
        session.close()


def test_untrusted_chain_finishes_the_handshake_and_records_why(pki: Any, tls_server: Callable[..., Any]) -> None:
    issued = pki.issue(dns=["localhost"])
    server = tls_server(issued.chain_path, issued.key_path)
    # No ca_path: the system store does not hold the test root.
    session = tls.open_tls("127.0.0.1", server.port, "localhost", None, 2.0)
    try:
        # OpenSSL reports both the missing issuer and the unverifiable leaf, once each.
        assert session.verify_errors == [
            "certificate is not trusted (issuer not in the trust store)",
            "certificate is not trusted (unable to verify the first certificate)",
        ]
    finally:
        session.close()


def test_server_without_alpn_agrees_none(pki: Any, tls_server: Callable[..., Any]) -> None:
    issued = pki.issue(dns=["localhost"])
    server = tls_server(issued.chain_path, issued.key_path, alpn=None)
    session = tls.open_tls("127.0.0.1", server.port, "localhost", str(pki.ca_path), 2.0)
    try:
        assert session.alpn == ""
    finally:
        session.close()


def test_unusable_server_name_is_a_tls_step_error_before_connecting(closed_port: int) -> None:
    # An empty label cannot go into SNI; this must not surface as UnicodeError.
    with pytest.raises(NtsStepError) as excinfo:
        tls.open_tls("127.0.0.1", closed_port, "a..example.net", None, 1.0)
    assert excinfo.value.step == "tls"
    assert str(excinfo.value) == "'a..example.net' is not a valid TLS server name"


def test_unloadable_ca_bundle_is_a_tls_step_error(tmp_path: Any, pki: Any, tls_server: Callable[..., Any]) -> None:
    issued = pki.issue(dns=["localhost"])
    server = tls_server(issued.chain_path, issued.key_path)
    bundle = tmp_path / "not-a-bundle.pem"
    bundle.write_text("not a certificate\n")
    with pytest.raises(NtsStepError) as excinfo:
        tls.open_tls("127.0.0.1", server.port, "localhost", str(bundle), 2.0)
    assert excinfo.value.step == "tls"
    assert str(excinfo.value).startswith(f"cannot load CA bundle {bundle}: ")


def test_connect_tcp_binds_the_source_address() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        sock = tls.connect_tcp("127.0.0.1", listener.getsockname()[1], 1.0, source_address="127.0.1.9")
        try:
            assert sock.getsockname()[0] == "127.0.1.9"
        finally:
            sock.close()


def test_connect_failures_chain_the_errno_for_classification(closed_port: int) -> None:
    with pytest.raises(NtsStepError) as excinfo:
        tls.connect_tcp("127.0.0.1", closed_port, 1.0)
    assert isinstance(excinfo.value.__cause__, ConnectionRefusedError)
    # 192.0.2.1 (TEST-NET-1) is not an address of this host.
    with pytest.raises(NtsStepError) as excinfo:
        tls.connect_tcp("127.0.0.1", closed_port, 1.0, source_address="192.0.2.1")
    assert excinfo.value.step == "tcp"
    assert str(excinfo.value).startswith(f"TCP {closed_port} connect from 192.0.2.1 failed: ")
    assert isinstance(excinfo.value.__cause__, OSError)


def test_a_timed_out_step_chains_a_timeout_error(silent_listener: int) -> None:
    with pytest.raises(NtsStepError) as excinfo:
        tls.open_tls("127.0.0.1", silent_listener, "localhost", None, 0.2)
    assert isinstance(excinfo.value.__cause__, TimeoutError)


def test_strict_context_fails_the_handshake_on_an_untrusted_chain(pki: Any, tls_server: Callable[..., Any]) -> None:
    issued = pki.issue(dns=["localhost"])
    server = tls_server(issued.chain_path, issued.key_path)
    context = tls.make_client_context(None, strict_verify=True)
    with pytest.raises(NtsStepError) as excinfo:
        tls.open_tls("127.0.0.1", server.port, "localhost", None, 2.0, context=context)
    assert excinfo.value.step == "tls"
    assert "certificate verify failed" in str(excinfo.value)
    assert isinstance(excinfo.value.__cause__, SSL.Error)
