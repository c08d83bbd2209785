"""A DNS-over-TCP proxy that lets another writer win the race against an UPDATE.

It forwards every message from its clients to the primary unchanged. When a message
is an UPDATE, it first sends its own signed update (replacing the A RRset of the
same name with RACING_ADDRESS) straight to the primary, then forwards the client's
UPDATE. So the client's prerequisites (written from what it read) no longer hold:
exactly the concurrent writer the prerequisites exist to catch.

Run: python racing_proxy.py LISTEN_ADDR PORT PRIMARY_ADDR PRIMARY_PORT KEY_FILE LIFETIME_S
"""

from __future__ import annotations

import socket
import struct
import sys
import time
from pathlib import Path

import dns.message
import dns.query
import dns.tsigkeyring
import dns.update

RACING_ADDRESS = "192.0.2.99"


def read_key(path: str) -> tuple[str, str]:
    text = Path(path).read_text(encoding="ascii")
    name = text.split('"')[1]
    secret = text.split("secret")[1].split('"')[1]
    return name, secret


def recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def race(wire: bytes, primary: tuple[str, int], key: tuple[str, str]) -> None:
    message = dns.message.from_wire(wire, ignore_trailing=True, keyring=False)
    zone = message.zone[0].name  # type: ignore[attr-defined]
    names = {rrset.name for rrset in message.update}  # type: ignore[attr-defined]
    racer = dns.update.UpdateMessage(zone, keyring=dns.tsigkeyring.from_text({key[0]: key[1]}))
    for name in names:
        racer.replace(name, 300, "A", RACING_ADDRESS)
    dns.query.tcp(racer, primary[0], port=primary[1], timeout=5)


def serve(listen: tuple[str, int], primary: tuple[str, int], key: tuple[str, str], lifetime: float) -> None:
    deadline = time.monotonic() + lifetime
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(listen)
        server.listen(8)
        server.settimeout(0.5)
        while time.monotonic() < deadline:
            try:
                client, _client_address = server.accept()
            except TimeoutError:
                continue
            with client, socket.create_connection(primary, timeout=5) as upstream:
                client.settimeout(5)
                try:
                    size = struct.unpack("!H", recv_exact(client, 2))[0]
                    wire = recv_exact(client, size)
                    if (wire[2] >> 3) & 0x0F == 5:  # opcode UPDATE
                        race(wire, primary, key)
                    upstream.sendall(struct.pack("!H", size) + wire)
                    answer_size = struct.unpack("!H", recv_exact(upstream, 2))[0]
                    client.sendall(struct.pack("!H", answer_size) + recv_exact(upstream, answer_size))
                except (EOFError, OSError):
                    continue


if __name__ == "__main__":
    listen_address, listen_port, primary_address, primary_port, key_file, lifetime = sys.argv[1:7]
    serve(
        (listen_address, int(listen_port)),
        (primary_address, int(primary_port)),
        read_key(key_file),
        float(lifetime),
    )
