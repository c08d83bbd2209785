"""Canned DNS for the unit tests: a fake authoritative server and transport, no network."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from ansible_collections.ntsops.nts.plugins.module_utils._dns.client import DnsClient, Endpoint
from ansible_collections.ntsops.nts.plugins.module_utils._dns.tsig import TsigKey

ZONE = "example.test."
NAME = "ntp.example.test."
SECRET = "+7qkRZgOYu+e2DYwydQ9FLGnyl6Jkgiq8PTSLKBxDL8="
PRIMARY = Endpoint("127.0.0.1", 5300)


class FakeServer:
    """An authoritative server for one zone, answering from a dict; applies plain updates."""

    def __init__(self, records: dict[tuple[str, str], tuple[int, list[str]]] | None = None, serial: int = 1) -> None:
        self.records = dict(records or {})
        self.serial = serial
        self.update_rcode: int | None = None
        self.on_update: Callable[[Any], None] | None = None
        self.authoritative = True
        self.refuse = False

    def answer(self, message: Any) -> Any:
        response = dns.message.make_response(message)
        if self.refuse:
            response.set_rcode(dns.rcode.REFUSED)
            return response
        if message.opcode() == dns.opcode.UPDATE:
            return self._update(message, response)
        if self.authoritative:
            response.flags |= dns.flags.AA
        question = message.question[0]
        qname, rdtype = question.name.to_text(), dns.rdatatype.to_text(question.rdtype)
        if not question.name.is_subdomain(dns.name.from_text(ZONE)):
            response.set_rcode(dns.rcode.REFUSED)
            response.flags &= ~dns.flags.AA
            return response
        if (qname, rdtype) in self.records:
            ttl, values = self.records[(qname, rdtype)]
            response.answer.append(dns.rrset.from_text_list(qname, ttl, "IN", rdtype, values))
            if rdtype == "NS":
                for value in values:
                    if (value, "A") in self.records:
                        glue_ttl, glue = self.records[(value, "A")]
                        response.additional.append(dns.rrset.from_text_list(value, glue_ttl, "IN", "A", glue))
        elif rdtype == "SOA" and qname == ZONE:
            response.answer.append(self._soa())
        else:
            if not any(name == qname for name, _rdtype in self.records):
                response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority.append(self._soa())
        return response

    def _soa(self) -> Any:
        return dns.rrset.from_text(
            ZONE, 60, "IN", "SOA", f"ns1.{ZONE} hostmaster.{ZONE} {self.serial} 3600 600 86400 60"
        )

    def _update(self, message: Any, response: Any) -> Any:
        if self.on_update is not None:
            self.on_update(message)
        if self.update_rcode is not None:
            response.set_rcode(self.update_rcode)
            return response
        for rrset in message.update:
            key = (rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype))
            if rrset.deleting == dns.rdataclass.ANY:
                self.records.pop(key, None)
            else:
                # dnspython puts every added RR in an RRset of its own (force_unique).
                _old_ttl, values = self.records.get(key, (0, []))
                self.records[key] = (rrset.ttl, sorted({*values, *(r.to_text() for r in rrset)}))
        self.serial += 1
        return response


class FakeTransport:
    """Routes each message to the FakeServer at its address; records everything sent."""

    def __init__(self, servers: dict[str, FakeServer]) -> None:
        self.servers = servers
        self.sent: list[tuple[Any, str, int]] = []
        self.failures: list[BaseException] = []
        self.hosts: dict[str, list[str]] = {}
        self.resolver = "127.0.0.53"

    def exchange(self, message: Any, address: str, port: int, timeout: float, tcp: bool) -> Any:
        self.sent.append((message, address, port))
        if self.failures:
            raise self.failures.pop(0)
        return self.servers[address].answer(message)

    def host_addresses(self, hostname: str) -> list[str]:
        return self.hosts.get(hostname, [])

    def system_nameserver(self) -> str:
        return self.resolver

    def updates(self) -> list[Any]:
        return [m for m, _address, _port in self.sent if m.opcode() == dns.opcode.UPDATE]


def zone_records(**extra: tuple[int, list[str]]) -> dict[tuple[str, str], tuple[int, list[str]]]:
    records = {
        (ZONE, "NS"): (300, [f"ns1.{ZONE}", f"ns2.{ZONE}"]),
        (f"ns1.{ZONE}", "A"): (300, ["127.0.0.1"]),
        (f"ns2.{ZONE}", "A"): (300, ["127.0.0.2"]),
    }
    for key, value in extra.items():
        rdtype = "AAAA" if key.endswith("_aaaa") else "A"
        records[(NAME, rdtype)] = value
    return records


def lab(
    primary_records: dict[tuple[str, str], tuple[int, list[str]]] | None = None, retries: int = 0
) -> tuple[FakeTransport, DnsClient, FakeServer, FakeServer]:
    primary = FakeServer(primary_records if primary_records is not None else zone_records())
    secondary = FakeServer(dict(primary.records))
    transport = FakeTransport({"127.0.0.1": primary, "127.0.0.2": secondary})
    key = TsigKey("ddns-key", SECRET)
    return transport, DnsClient(transport, key=key, timeout=1, retries=retries), primary, secondary


def sync(primary: FakeServer, secondary: FakeServer) -> Callable[[float], None]:
    """A sleep() that completes the zone transfer, as NOTIFY + IXFR would."""

    def sleep(_seconds: float) -> None:
        secondary.records = dict(primary.records)
        secondary.serial = primary.serial

    return sleep
