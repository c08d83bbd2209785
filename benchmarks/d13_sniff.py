# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Passive packet log for the Debian 13 recovery rig (benchmarks/recovery_d13.py).

One AF_PACKET socket per host-side veth of the rig's containers; each socket keeps
only the frames its container *sent* (PACKET_OUTGOING on the host side is what the
container receives), so every packet on the rig's bridge is logged exactly once,
timestamped when it left its sender. Only what the measurement needs is decoded:
DNS queries and answers for the server name, TCP SYNs to NTS-KE port 4460, NTP
requests and responses (with whether a response carries an NTS authenticator
0x0404 or is an NTS NAK, RFC 8915 sections 5.7 and 5.8).
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
from dataclasses import dataclass

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
NTS_AUTHENTICATOR = 0x0404
NTP_PORT = 123
NTS_KE_PORT = 4460
DNS_PORT = 53


@dataclass(frozen=True)
class Packet:
    t: float
    kind: str  # dns-query, dns-answer, syn, ntp-request, ntp-response
    src: str
    sport: int
    dst: str
    dport: int
    answer: tuple[str, ...] = ()  # dns-answer: the A records
    qname: str = ""  # dns-query, dns-answer
    auth: bool = False  # ntp-response: carries an NTS authenticator
    nak: bool = False  # ntp-response: stratum 0, refid NTSN


def _dns_answers(payload: bytes) -> tuple[str, tuple[str, ...]] | None:
    """(qname, A records) of a DNS message, or None when it is not one we can read."""
    if len(payload) < 12:
        return None
    qd, an = struct.unpack("!HH", payload[4:8])
    pos, labels = 12, []
    while pos < len(payload) and payload[pos]:
        n = payload[pos]
        labels.append(payload[pos + 1 : pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n
    pos += 5  # root label, qtype, qclass
    if qd != 1:
        return None
    addrs = []
    for _record in range(an):
        if pos >= len(payload):
            break
        if payload[pos] & 0xC0 == 0xC0:
            pos += 2
        else:
            while pos < len(payload) and payload[pos]:
                pos += 1 + payload[pos]
            pos += 1
        rtype, _cls, _ttl, length = struct.unpack("!HHIH", payload[pos : pos + 10])
        pos += 10
        if rtype == 1 and length == 4:
            addrs.append(socket.inet_ntoa(payload[pos : pos + 4]))
        pos += length
    return ".".join(labels).lower(), tuple(addrs)


def _ntp_flags(payload: bytes) -> tuple[bool, bool]:
    """(has an NTS authenticator, is an NTS NAK) for an NTP response."""
    if len(payload) < 48:
        return False, False
    nak = payload[1] == 0 and payload[12:16] == b"NTSN"
    pos, auth = 48, False
    while pos + 4 <= len(payload):
        ftype, flen = struct.unpack("!HH", payload[pos : pos + 4])
        if flen < 4:
            break
        if ftype == NTS_AUTHENTICATOR:
            auth = True
        pos += flen
    return auth, nak


def decode(frame: bytes, t: float, names: frozenset[str]) -> Packet | None:  # noqa: PLR0911 - one return per packet kind
    """The rig-relevant content of one Ethernet frame."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return None
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    proto = ip[9]
    src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
    l4 = ip[ihl:]
    if proto == 6 and len(l4) >= 14:
        sport, dport = struct.unpack("!HH", l4[:4])
        flags = l4[13]
        if dport == NTS_KE_PORT and flags & 0x02 and not flags & 0x10:
            return Packet(t, "syn", src, sport, dst, dport)
        return None
    if proto != 17 or len(l4) < 8:
        return None
    sport, dport = struct.unpack("!HH", l4[:4])
    payload = l4[8:]
    if DNS_PORT in {dport, sport}:
        parsed = _dns_answers(payload)
        if parsed is None or parsed[0] not in names:
            return None
        is_response = bool(payload[2] & 0x80)
        kind = "dns-answer" if is_response else "dns-query"
        return Packet(t, kind, src, sport, dst, dport, answer=parsed[1] if is_response else (), qname=parsed[0])
    if sport == NTP_PORT and len(payload) >= 48 and payload[0] & 0x07 == 4:
        auth, nak = _ntp_flags(payload)
        return Packet(t, "ntp-response", src, sport, dst, dport, auth=auth, nak=nak)
    if dport == NTP_PORT and len(payload) >= 48 and payload[0] & 0x07 == 3:
        return Packet(t, "ntp-request", src, sport, dst, dport)
    return None


class Sniffer:
    """Log the rig's packets from the given host-side interfaces until stop()."""

    def __init__(self, interfaces: list[str], names: list[str]) -> None:
        self.names = frozenset(name.lower().rstrip(".") for name in names)
        self.packets: list[Packet] = []
        self._socks = []
        for ifname in interfaces:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            sock.bind((ifname, 0))
            sock.setblocking(False)
            self._socks.append(sock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Sniffer:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _w, _x = select.select(self._socks, [], [], 0.2)
            for sock in ready:
                while True:
                    try:
                        frame, addr = sock.recvfrom(2048)
                    except BlockingIOError:
                        break
                    t = time.time()
                    # addr[2] is the packet type: OUTGOING on a host-side veth is a
                    # frame its container receives; the sender's veth logs it already.
                    if addr[2] == PACKET_OUTGOING:
                        continue
                    packet = decode(frame, t, self.names)
                    if packet is not None:
                        self.packets.append(packet)

    def stop(self) -> list[Packet]:
        self._stop.set()
        self._thread.join(timeout=5)
        for sock in self._socks:
            sock.close()
        return sorted(self.packets, key=lambda p: p.t)
