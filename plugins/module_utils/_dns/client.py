# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Talking to one DNS server: the injected transport, bounded retries, and clear errors.

All network I/O goes through a ``DnsTransport`` that the caller passes in, so the
unit tests feed canned DNS messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ansible_collections.ntsops.nts.plugins.module_utils._dns.dnspython import dns, require_dnspython
from ansible_collections.ntsops.nts.plugins.module_utils._dns.errors import (
    DdnsInputError,
    DdnsProtocolError,
    DdnsTimeoutError,
    DdnsTsigError,
    DdnsUnreachableError,
    DdnsZoneNotFoundError,
)
from ansible_collections.ntsops.nts.plugins.module_utils._dns.tsig import TsigKey


class DnsTransport(Protocol):
    """Sends one DNS message and returns the parsed answer; raises dnspython's exceptions."""

    def exchange(self, message: Any, address: str, port: int, timeout: float, tcp: bool) -> Any:
        ...

    def host_addresses(self, hostname: str) -> list[str]:
        ...


class DnspythonTransport:
    """The real transport: dnspython's query.tcp / query.udp, and the system resolver for host names."""

    def exchange(self, message: Any, address: str, port: int, timeout: float, tcp: bool) -> Any:
        require_dnspython()
        if tcp:
            return dns.query.tcp(message, address, timeout=timeout, port=port)
        response = dns.query.udp(message, address, timeout=timeout, port=port, ignore_unexpected=True)
        if response.flags & dns.flags.TC:
            return dns.query.tcp(message, address, timeout=timeout, port=port)
        return response

    def host_addresses(self, hostname: str) -> list[str]:
        import socket  # noqa: PLC0415 - only the real transport needs it

        try:
            infos = socket.getaddrinfo(hostname.rstrip("."), None, proto=socket.IPPROTO_UDP)
        except OSError:
            return []
        return sorted({str(info[4][0]) for info in infos})

    def system_nameserver(self) -> str:
        require_dnspython()
        servers = dns.resolver.Resolver().nameservers
        if not servers:
            raise DdnsZoneNotFoundError("no server given and no nameserver in /etc/resolv.conf to find the zone")
        return str(servers[0])


@dataclass(frozen=True)
class Endpoint:
    address: str
    port: int = 53

    def __str__(self) -> str:
        return f"{self.address}#{self.port}"


class DnsClient:
    """Sends messages to one server with a timeout, bounded retries on timeout only, and clear errors."""

    def __init__(
        self,
        transport: DnsTransport,
        key: TsigKey | None = None,
        timeout: float = 5.0,
        retries: int = 2,
        tcp: bool = True,
    ) -> None:
        if timeout <= 0:
            raise DdnsInputError("timeout must be positive")
        if retries < 0:
            raise DdnsInputError("retries must be 0 or more")
        self.transport = transport
        self.key = key
        self.timeout = timeout
        self.retries = retries
        self.tcp = tcp

    def exchange(self, message: Any, server: Endpoint, what: str) -> Any:
        """Send and return the response; only a timeout is retried, at most ``retries`` times."""
        require_dnspython()
        attempts = self.retries + 1
        for attempt in range(1, attempts + 1):
            try:
                response = self.transport.exchange(message, server.address, server.port, self.timeout, self.tcp)
            except dns.exception.Timeout:
                if attempt < attempts:
                    continue
                raise DdnsTimeoutError(
                    f"{what}: no answer from {server} within {self.timeout:g} s ({attempts} tries)"
                ) from None
            except dns.tsig.PeerBadKey:
                raise DdnsTsigError(
                    f"{what}: {server} does not know TSIG key {self._key_name()} (BADKEY); check key_name and algorithm"
                ) from None
            except dns.tsig.PeerBadSignature:
                raise DdnsTsigError(
                    f"{what}: {server} rejected the signature of TSIG key {self._key_name()} (BADSIG); wrong secret"
                ) from None
            except dns.tsig.PeerBadTime:
                raise DdnsTsigError(
                    f"{what}: {server} rejected TSIG key {self._key_name()} for clock skew (BADTIME); "
                    "check this host's and the server's clocks"
                ) from None
            except dns.tsig.PeerError as exc:
                raise DdnsTsigError(f"{what}: {server} returned a TSIG error: {exc}") from None
            except (dns.tsig.BadSignature, dns.tsig.BadKey, dns.tsig.BadTime, dns.message.UnknownTSIGKey) as exc:
                raise DdnsTsigError(
                    f"{what}: the answer from {server} failed TSIG verification ({type(exc).__name__})"
                ) from None
            except (ConnectionRefusedError, ConnectionResetError, EOFError) as exc:
                raise DdnsUnreachableError(
                    f"{what}: {server} refused or closed the connection ({type(exc).__name__}); is the server running?"
                ) from None
            except OSError as exc:
                raise DdnsUnreachableError(f"{what}: cannot reach {server}: {exc.strerror or exc}") from None
            except dns.exception.DNSException as exc:
                raise DdnsProtocolError(f"{what}: malformed answer from {server}: {exc}") from None
            if response.id != message.id:
                raise DdnsProtocolError(f"{what}: answer from {server} has the wrong message id")
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def query(
        self, qname: Any, rdtype: str, server: Endpoint, what: str, *, recursion: bool = False, signed: bool = False
    ) -> Any:
        """A query; ``signed`` uses the TSIG key (only for the primary, which knows it)."""
        message = dns.message.make_query(qname, rdtype)
        if not recursion:
            message.flags &= ~dns.flags.RD
        if signed and self.key is not None:
            message.use_tsig(self.key.to_dnspython())
        return self.exchange(message, server, what)

    def _key_name(self) -> str:
        return repr(self.key.name) if self.key else "(none)"


def absolute_name(name: str) -> Any:
    """``name`` as an absolute dnspython name; a bad name is an input error."""
    require_dnspython()
    try:
        return dns.name.from_text(name.strip() or ".", origin=dns.name.root)
    except dns.exception.DNSException as exc:
        raise DdnsInputError(f"{name!r} is not a valid domain name: {exc}") from None


def rcode_text(response: Any) -> str:
    return str(dns.rcode.to_text(response.rcode()))
