"""A TCP and UDP forwarder that delays every chunk and datagram by a fixed time each way.

Stands in for network distance on loopback where the kernel has no netem. For each
`--map LISTEN=TARGET` it listens on LISTEN:tcp-port and LISTEN:udp-port and forwards
to TARGET on the same ports. Order within a connection is kept. TCP's own handshake
cannot be delayed from user space (the kernel completes it before accept).

Run by endpoint_bench.py as its own process (so it never competes for the measuring
process's GIL); prints "ready" once every socket listens; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import signal
import sys
import time

CHUNK = 65536


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy reader to writer, each chunk `delay` seconds after it arrived; EOF likewise."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def read() -> None:
        while True:
            data = await reader.read(CHUNK)
            await queue.put((time.monotonic() + delay, data))
            if not data:
                return

    async def write() -> None:
        while True:
            due, data = await queue.get()
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if not data:
                with contextlib.suppress(OSError):
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        await asyncio.gather(read(), write())


async def _serve_tcp(target: str, port: int, delay: float, client_reader: asyncio.StreamReader,
                     client_writer: asyncio.StreamWriter) -> None:
    try:
        server_reader, server_writer = await asyncio.open_connection(target, port)
    except OSError:
        client_writer.close()
        return
    try:
        await asyncio.gather(_pump(client_reader, server_writer, delay), _pump(server_reader, client_writer, delay))
    except asyncio.CancelledError:
        pass  # the proxy is stopping; the connection just ends
    finally:
        for writer in (client_writer, server_writer):
            writer.close()


class _UdpUpstream(asyncio.DatagramProtocol):
    """One client's flow to the target: replies go back to that client, delayed."""

    def __init__(self, front: asyncio.DatagramTransport, client: tuple[str, int], delay: float) -> None:
        self.front = front
        self.client = client
        self.delay = delay

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        asyncio.get_running_loop().call_later(self.delay, self.front.sendto, data, self.client)


class _UdpFront(asyncio.DatagramProtocol):
    def __init__(self, target: str, port: int, delay: float) -> None:
        self.target = target
        self.port = port
        self.delay = delay
        self.transport: asyncio.DatagramTransport | None = None
        self.upstreams: dict[tuple[str, int], asyncio.DatagramTransport] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        asyncio.get_running_loop().call_later(self.delay, lambda: asyncio.ensure_future(self._forward(data, addr)))

    async def _forward(self, data: bytes, client: tuple[str, int]) -> None:
        upstream = self.upstreams.get(client)
        if upstream is None:
            front = self.transport
            if front is None:
                return
            upstream, _protocol = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: _UdpUpstream(front, client, self.delay), remote_addr=(self.target, self.port)
            )
            self.upstreams[client] = upstream
        upstream.sendto(data)


async def run(mapping: list[tuple[str, str]], tcp_port: int, udp_port: int, delay: float) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    servers = []
    for listen, target in mapping:
        servers.append(await asyncio.start_server(
            functools.partial(_serve_tcp, target, tcp_port, delay), listen, tcp_port
        ))
        await loop.create_datagram_endpoint(functools.partial(_UdpFront, target, udp_port, delay),
                                            local_addr=(listen, udp_port))
    print("ready", flush=True)
    await stop.wait()
    for server in servers:
        server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--delay-ms", type=float, required=True, help="one-way delay")
    parser.add_argument("--tcp-port", type=int, required=True)
    parser.add_argument("--udp-port", type=int, required=True)
    parser.add_argument("--map", action="append", required=True, metavar="LISTEN=TARGET")
    args = parser.parse_args()
    mapping: list[tuple[str, str]] = []
    for item in args.map:
        listen, sep, target = item.partition("=")
        if not (sep and listen and target):
            parser.error(f"--map takes LISTEN=TARGET, got {item!r}")
        mapping.append((listen, target))
    asyncio.run(run(mapping, args.tcp_port, args.udp_port, args.delay_ms / 1000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
