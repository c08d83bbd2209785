"""Hostile (and one well-behaved) NTS peers for tests: a scripted NTS-KE server and,
after a genuine NTS-KE, a scripted NTS-NTP server.

Each `HostileServer` behaves in exactly one way (see BEHAVIOURS). It listens on
`address:port` (port 0: a free port) on loopback or inside a netns Host, serves from
daemon threads with bounded waits, and `stop()` ends everything within about a
second. Cookies are the harness's own format (AES-SIV under a per-server master key),
so the NTP side can recover the keys the client holds.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from OpenSSL import SSL

from . import ntswire as w
from .ca import IssuedCert, TestCA
from .netns import Host

# behaviour -> what a client sees
BEHAVIOURS = {
    "good": "a correct NTS-KE (8 cookies) and correct authenticated NTP answers",
    "refuse": "nothing listens on the TCP port: connection refused",
    "silent": "TCP accepted, nothing ever sent (no TLS handshake)",
    "tls12_only": "TLS 1.2 at most: a TLS 1.3 client's handshake fails",
    "no_alpn": "TLS 1.3 but no ALPN agreed, then a valid NTS-KE response",
    "untrusted_ca": "certificate from a CA the client does not trust",
    "wrong_name": "trusted certificate for another name (wrong.nts.test)",
    "expired_cert": "trusted certificate for the right name that expired 2 days ago",
    "error_record": "NTS-KE response holding an Error record (code `error_code`, default 1 bad request)",
    "unknown_critical_record": "valid response plus a critical record of unknown type 0x1234",
    "truncated_record": "Next Protocol, AEAD, then half a New Cookie record, then close",
    "length_overrun": "a record header announcing 1000 bytes with 10 following, then close",
    "never_ending_records": "valid records without End of Message, one per 50 ms, until hang-up or stop",
    "no_cookies": "valid response (Next Protocol, AEAD, EOM) without New Cookie records",
    "bad_authenticator": "valid NTS-KE; NTP replies whose authenticator does not verify",
    "nts_nak": "valid NTS-KE; NTP replies are NTS NAKs (stratum 0, refid NTSN, no authenticator)",
    "silent_ntp": "valid NTS-KE; NTP requests are never answered",
}
NTP_BEHAVIOURS = {"good", "bad_authenticator", "nts_nak", "silent_ntp"}
WRONG_NAME = "wrong.nts.test"
UNKNOWN_CRITICAL_TYPE = 0x1234
MAX_CONNECTIONS = 64
NEVER_ENDING_LIMIT = 60.0  # seconds: even without stop(), the stream ends


@dataclass
class Stats:
    tcp_accepted: int = 0
    handshakes: int = 0
    ke_requests: int = 0
    ntp_requests: int = 0
    ntp_replies: int = 0
    records_sent: int = 0


class HostileServer:
    """One scripted NTS peer. `start()` returns self; `stop()` is idempotent and bounded."""

    def __init__(
        self,
        behaviour: str,
        *,
        ca: TestCA,
        untrusted_ca: TestCA | None = None,
        host: Host | None = None,
        address: str | None = None,
        port: int = 0,
        ntp_port: int | None = None,
        name: str = "localhost",
        error_code: int = 1,
        cookies: int = 8,
        announce_server: str | None = None,
    ) -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}; choose from {sorted(BEHAVIOURS)}")
        self.behaviour = behaviour
        self.ca = ca
        self.untrusted_ca = untrusted_ca
        self.host = host
        self.address = address or (host.address if host else "127.0.0.1")
        self.port = port
        self.ntp_port = ntp_port
        self.name = name
        self.error_code = error_code
        self.cookie_count = cookies
        self.announce_server = announce_server
        self.stats = Stats()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._master = AESSIV.generate_key(256)
        self._key_id = os.urandom(4)
        self.cert: IssuedCert | None = None
        self.errors: list[str] = []  # unexpected exceptions inside the server (for debugging)

    # ------------------------------------------------------------ lifecycle

    @property
    def family(self) -> int:
        return socket.AF_INET6 if ":" in self.address else socket.AF_INET

    def _socket(self, type_: int) -> socket.socket:
        sock = self.host.socket(self.family, type_) if self.host else socket.socket(self.family, type_)
        self._sockets.append(sock)
        return sock

    def start(self) -> HostileServer:
        try:
            tcp = self._socket(socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((self.address, self.port))
            self.port = tcp.getsockname()[1]
            if self.behaviour == "refuse":
                return self  # bound, never listening: connects get RST (refused)
            if self.behaviour in NTP_BEHAVIOURS:
                udp = self._socket(socket.SOCK_DGRAM)
                udp.bind((self.address, self.ntp_port if self.ntp_port is not None else (0 if not self.host else 123)))
                self.ntp_port = udp.getsockname()[1]
                self._spawn(self._serve_ntp, udp)
            self._ctx = self._tls_context()
            tcp.listen(16)
            tcp.settimeout(0.2)
            self._spawn(self._accept_loop, tcp)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.01))

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True,  # type: ignore[arg-type]
                                  name=f"hostile-{self.behaviour}")
        self._threads.append(thread)
        thread.start()

    # ------------------------------------------------------------ TLS

    def _tls_context(self) -> SSL.Context:
        if self.behaviour == "untrusted_ca":
            if self.untrusted_ca is None:
                raise ValueError("untrusted_ca behaviour needs untrusted_ca=TestCA(...)")
            issuer, dns, days, not_before = self.untrusted_ca, [self.name], 30.0, None
        elif self.behaviour == "wrong_name":
            issuer, dns, days, not_before = self.ca, [WRONG_NAME], 30.0, None
        elif self.behaviour == "expired_cert":
            issuer, dns, days = self.ca, [self.name], 30.0
            not_before = _utc_days_ago(32)
        else:
            issuer, dns, days, not_before = self.ca, [self.name], 30.0, None
        ips = [] if self.behaviour == "wrong_name" else [self.address]
        slug = f"hostile-{self.behaviour}-{os.getpid()}-{id(self):x}"
        self.cert = issuer.issue(slug, dns=dns, ips=ips, days=days, not_before=not_before)
        ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
        if self.behaviour == "tls12_only":
            ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
            ctx.set_max_proto_version(SSL.TLS1_2_VERSION)
        else:
            ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
        ctx.use_certificate_chain_file(str(self.cert.chain_path))
        ctx.use_privatekey_file(str(self.cert.key_path))
        if self.behaviour != "no_alpn":
            ctx.set_alpn_select_callback(_select_alpn)
        return ctx

    # ------------------------------------------------------------ NTS-KE side

    def _accept_loop(self, listener: socket.socket) -> None:
        active: list[threading.Thread] = []
        while not self._stop.is_set():
            try:
                conn, _peer = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.stats.tcp_accepted += 1
            active = [t for t in active if t.is_alive()]
            if len(active) >= MAX_CONNECTIONS:
                conn.close()
                continue
            thread = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            active.append(thread)
            thread.start()

    def _handle(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if self.behaviour == "silent":
                self._drain_until_close(sock, NEVER_ENDING_LIMIT)
                return
            self._handle_tls(sock)
        except (OSError, SSL.Error, TimeoutError, w.WireError):
            pass  # the client hung up or failed its side: expected with hostile peers
        except Exception as exc:  # noqa: BLE001 - keep the thread quiet, but record it
            self.errors.append(repr(exc))
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    def _drain_until_close(self, sock: socket.socket, limit: float) -> None:
        deadline = time.monotonic() + limit
        sock.setblocking(False)
        while not self._stop.is_set() and time.monotonic() < deadline:
            ready, _writable, _failed = select.select([sock], [], [], 0.2)
            if ready and not sock.recv(4096):
                return

    def _handle_tls(self, sock: socket.socket) -> None:
        deadline = time.monotonic() + 10
        sock.setblocking(False)
        conn = SSL.Connection(self._ctx, sock)
        conn.set_accept_state()
        stopped = self._stop.is_set
        w.ossl_call(conn, deadline, conn.do_handshake, stop=stopped)
        with self._lock:
            self.stats.handshakes += 1
        # read the request up to End of Message (bounded)
        data = b""
        while True:
            data += w.ossl_call(conn, deadline, conn.recv, 65536, stop=stopped)
            records, _rest = w.parse_records(data)
            if records and records[-1].rtype == w.END_OF_MESSAGE:
                break
            if len(data) > 65536:
                raise w.WireError("request too long")
        with self._lock:
            self.stats.ke_requests += 1
        for chunk, pause in self._ke_response(conn):
            if self._stop.is_set():
                break
            with self._lock:
                self.stats.records_sent += 1
            w.ossl_call(conn, deadline, conn.sendall, chunk, stop=stopped)
            if pause:
                deadline = time.monotonic() + 10
                if self._client_gone(conn, pause):
                    break
        with contextlib.suppress(SSL.Error, OSError):
            conn.shutdown()
        # give the client a moment to read before the socket closes
        self._drain_until_close(sock, 1.0)

    def _client_gone(self, conn: SSL.Connection, pause: float) -> bool:
        ready, _writable, _failed = select.select([conn], [], [], pause)
        if not ready:
            return False
        try:
            return not conn.recv(4096)
        except SSL.WantReadError:
            return False
        except (SSL.Error, OSError):
            return True

    def _ke_response(self, conn: SSL.Connection) -> list[tuple[bytes, float]] | _Endless:
        b = self.behaviour
        head = w.record(w.NEXT_PROTOCOL, w.u16(w.PROTOCOL_NTPV4), True) + w.record(
            w.AEAD_ALGORITHM, w.u16(w.AEAD_AES_SIV_CMAC_256), True)
        eom = w.record(w.END_OF_MESSAGE, critical=True)
        if b == "error_record":
            return [(w.record(w.ERROR, w.u16(self.error_code), True) + eom, 0)]
        if b == "never_ending_records":
            return _Endless(self, head)
        cookies = self._make_cookies(conn) if b != "no_cookies" else []
        body = head + b"".join(w.record(w.NEW_COOKIE, c) for c in cookies)
        if b == "truncated_record":
            partial = w.record(w.NEW_COOKIE, cookies[0])
            return [(head + partial[: len(partial) // 2], 0)]
        if b == "length_overrun":
            return [(head + struct.pack("!HH", w.NEW_COOKIE, 1000) + os.urandom(10), 0)]
        if b == "unknown_critical_record":
            body += w.record(UNKNOWN_CRITICAL_TYPE, b"\x00\x01", True)
        if self.announce_server is not None:
            body += w.record(w.SERVER_NEGOTIATION, self.announce_server.encode(), True)
        if self.ntp_port is not None and self.ntp_port != 123:
            body += w.record(w.PORT_NEGOTIATION, w.u16(self.ntp_port), True)
        return [(body + eom, 0)]

    # ------------------------------------------------------------ cookies

    def _make_cookies(self, conn: SSL.Connection) -> list[bytes]:
        c2s = conn.export_keying_material(w.EXPORTER_LABEL, 32, w.exporter_context(w.AEAD_AES_SIV_CMAC_256, False))
        s2c = conn.export_keying_material(w.EXPORTER_LABEL, 32, w.exporter_context(w.AEAD_AES_SIV_CMAC_256, True))
        return [self._cookie(c2s, s2c) for _unused in range(self.cookie_count)]

    def _cookie(self, c2s: bytes, s2c: bytes) -> bytes:
        nonce = os.urandom(16)
        return self._key_id + nonce + AESSIV(self._master).encrypt(c2s + s2c, [self._key_id + nonce])

    def _open_cookie(self, cookie: bytes) -> tuple[bytes, bytes]:
        if len(cookie) != 4 + 16 + 16 + 64 or cookie[:4] != self._key_id:
            raise w.WireError("not one of our cookies")
        try:
            keys = AESSIV(self._master).decrypt(cookie[20:], [cookie[:20]])
        except Exception as exc:
            raise w.WireError("cookie does not decrypt") from exc
        return keys[:32], keys[32:]

    # ------------------------------------------------------------ NTP side

    def _serve_ntp(self, udp: socket.socket) -> None:
        udp.settimeout(0.2)
        while not self._stop.is_set():
            try:
                packet, peer = udp.recvfrom(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            received = w.ntp_timestamp()
            with self._lock:
                self.stats.ntp_requests += 1
            try:
                reply = self._ntp_reply(packet, received)
            except w.WireError:
                continue  # not ours: stay silent like a real server
            except Exception as exc:  # noqa: BLE001
                self.errors.append(repr(exc))
                continue
            if reply is not None:
                with self._lock:  # count first: the client may read the reply at once
                    self.stats.ntp_replies += 1
                with contextlib.suppress(OSError):
                    udp.sendto(reply, peer)

    def _ntp_reply(self, packet: bytes, received: bytes) -> bytes | None:
        if self.behaviour == "silent_ntp":
            return None
        request = w.parse_ntp_request(packet)
        origin = request.header[40:48]
        uid = w.extension_field(w.EF_UNIQUE_ID, request.unique_id)
        if self.behaviour == "nts_nak":
            return w.ntp_header(4, stratum=0, leap=3, refid=b"NTSN", origin=origin, receive=received) + uid
        c2s, s2c = self._open_cookie(request.cookie)
        w.open_authenticator(c2s, request.associated, request.auth_body)
        header = w.ntp_header(4, stratum=2, refid=b"TEST", origin=origin, receive=received)
        fresh = b"".join(w.extension_field(w.EF_COOKIE, self._cookie(c2s, s2c))
                         for _unused in range(1 + request.placeholders))
        associated = header + uid
        auth = w.authenticator(s2c, associated, fresh)
        if self.behaviour == "bad_authenticator":
            # flip one bit of the SIV tag (after the 4-byte EF header, 4 bytes of
            # lengths and the 16-byte nonce)
            pos = 4 + 4 + 16
            auth = auth[:pos] + bytes([auth[pos] ^ 0x01]) + auth[pos + 1:]
        return associated + auth


class _Endless:
    """Valid records forever (one per 50 ms), never End of Message; bounded in time."""

    def __init__(self, server: HostileServer, head: bytes) -> None:
        self.server = server
        self.head = head

    def __iter__(self) -> _EndlessIter:
        return _EndlessIter(self)


class _EndlessIter:
    def __init__(self, endless: _Endless) -> None:
        self.endless = endless
        self.first = True
        self.until = time.monotonic() + NEVER_ENDING_LIMIT

    def __iter__(self) -> _EndlessIter:
        return self

    def __next__(self) -> tuple[bytes, float]:
        if self.endless.server._stop.is_set() or time.monotonic() > self.until:
            raise StopIteration
        if self.first:
            self.first = False
            return self.endless.head, 0.05
        # New Cookie records are valid in any number and change no protocol decision,
        # so only a limit on the response (size, count or time) stops a client here
        return w.record(w.NEW_COOKIE, os.urandom(100)), 0.05


def _select_alpn(_conn: SSL.Connection, offered: list[bytes]) -> Any:  # bytes or NO_OVERLAPPING_PROTOCOLS
    if w.ALPN in offered:
        return w.ALPN
    return SSL.NO_OVERLAPPING_PROTOCOLS


def _utc_days_ago(days: float) -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0) - datetime.timedelta(days=days)
