# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The NTS exchanges over an open TLS session: NTS-KE, then one NTS-protected NTP request.

The request goes out in one write, the response is read up to End of Message, and
the keys come from the TLS exporter; the NTP exchange uses a fresh cookie and
verifies the reply. Failures raise :class:`~.deadline.NtsStepError` with the step
``ke`` or ``ntp`` and the underlying error chained.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import socket
import time
from collections.abc import Sequence

from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError, NtsProtocolError
from ansible_collections.ntsops.nts.plugins.module_utils._net.deadline import Deadline, NtsStepError, wait_ready
from ansible_collections.ntsops.nts.plugins.module_utils._net.resolve import address_family, resolve_host
from ansible_collections.ntsops.nts.plugins.module_utils._net.tls import TlsSession, tls_error_text
from ansible_collections.ntsops.nts.plugins.module_utils._nts import ntp as nts_ntp
from ansible_collections.ntsops.nts.plugins.module_utils._nts import records as nts_records

try:
    from OpenSSL import SSL
except ImportError:  # pragma: no cover - the tls module reports it
    SSL = None  # type: ignore[assignment]

RECV_CHUNK = 16384


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


def _send_all(session: TlsSession, data: bytes, deadline: Deadline) -> None:
    view = memoryview(data)
    while view:
        try:
            sent = session.connection.send(view.tobytes())
            view = view[sent:]
        except SSL.WantReadError:
            wait_ready(session.sock, False, deadline, "ke", "NTS-KE request")
        except SSL.WantWriteError:
            wait_ready(session.sock, True, deadline, "ke", "NTS-KE request")
        except SSL.Error as exc:
            raise NtsStepError("ke", f"NTS-KE request could not be sent: {tls_error_text(exc)}") from exc


def _receive_records(session: TlsSession, deadline: Deadline) -> list[nts_records.Record]:
    parser = nts_records.RecordParser()
    records: list[nts_records.Record] = []
    received = 0
    while not parser.complete:
        try:
            chunk = session.connection.recv(RECV_CHUNK)
        except SSL.WantReadError:
            wait_ready(session.sock, False, deadline, "ke", "NTS-KE response")
            continue
        except SSL.WantWriteError:
            wait_ready(session.sock, True, deadline, "ke", "NTS-KE response")
            continue
        except SSL.ZeroReturnError:
            chunk = b""
        except SSL.SysCallError as exc:
            if received == 0:
                # How chrony's ntsratelimit and a denied `allow` look from outside.
                raise NtsStepError("ke", "server accepted the connection, then closed it without a response") from exc
            chunk = b""
        except SSL.Error as exc:
            raise NtsStepError("ke", f"NTS-KE response failed: {tls_error_text(exc)}") from exc
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
        exported_as = nts_records.exporter_aead(response)
        for direction in (False, True):
            context = nts_records.exporter_context(nts_records.PROTOCOL_NTPV4, exported_as, direction)
            key = session.connection.export_keying_material(nts_records.EXPORTER_LABEL, key_length, context)
            if direction:
                s2c_key = key
            else:
                c2s_key = key
    return KeResult(response=response, c2s_key=c2s_key, s2c_key=s2c_key, ms=(time.monotonic() - started) * 1000)


def resolve_ntp_server(server: str, family: int) -> str:
    """The address of a Server Negotiation name, preferring the KE address's family."""
    # The peer chose the name, so a bad one is a failure of the ntp step.
    addresses = resolve_host(
        server, what="negotiated NTP server ", socktype=socket.SOCK_DGRAM, error=functools.partial(NtsStepError, "ntp")
    )
    addresses.sort(key=lambda address: address_family(address) != family)
    return addresses[0]


def ntp_exchange(address: str, port: int, ke: KeResult, timeout: float) -> NtpResult:
    """One NTS-protected NTPv4 request with a fresh cookie; the reply is verified."""
    if not ke.response.cookies:
        raise NtsStepError("ntp", "no cookie to send: NTS-KE returned none")
    aead_id = ke.response.aead
    if aead_id is None:
        raise NtsStepError("ntp", "no AEAD algorithm was negotiated")
    started = time.monotonic()
    deadline = Deadline(timeout)
    # RFC 8915 section 5.3: at least 32 random bytes; the shortest will do.
    unique_id = os.urandom(nts_ntp.MIN_UNIQUE_ID_BYTES)
    with socket.socket(address_family(address), socket.SOCK_DGRAM) as sock:
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
            wait_ready(sock, False, deadline, "ntp", f"NTP response from port {port}")
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
