# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check an NTS server on every address its name resolves to, as a client would use it.

Shared by the endpoint_check module and the ``ntsops check`` command. Each address
is checked on its own thread; every finding becomes one problem line that starts
with the address.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._check import cert_info
from ansible_collections.ntsops.nts.plugins.module_utils._check.published import (
    FAMILIES,
    PublishedRecordsError,
    compare_records,
    split_families,
)
from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError
from ansible_collections.ntsops.nts.plugins.module_utils._net import nts_session, tls
from ansible_collections.ntsops.nts.plugins.module_utils._net.deadline import NtsStepError
from ansible_collections.ntsops.nts.plugins.module_utils._net.resolve import address_family, resolve_host
from ansible_collections.ntsops.nts.plugins.module_utils._nts import ntp as nts_ntp
from ansible_collections.ntsops.nts.plugins.module_utils._nts import records as nts_records

Resolver = Callable[[str], list[str]]

MAX_PARALLEL_ADDRESSES = 32


class EndpointCheckError(NtsopsError):
    """The check could not start (bad options, name that does not resolve)."""


@dataclasses.dataclass(frozen=True)
class CheckOptions:
    name: str
    port: int = nts_records.NTS_KE_PORT
    ca_path: str | None = None
    timeout: float = 5.0
    min_cert_days: int = 14
    # When set, the fraction of the certificate's lifetime that must be left, instead
    # of min_cert_days.
    min_cert_fraction: float | None = None
    ntp_exchange: bool = True
    aead: tuple[int, ...] = (nts_records.AEAD_AES_SIV_CMAC_256,)
    expect_cookies: int = 8
    # Send the NTP exchange here instead of where NTS-KE pointed (cookies are not bound
    # to an address: a planned move checks the new address with cookies from the old).
    ntp_address: str | None = None
    # The server's own addresses, to compare with the name's A and AAAA records; None: no
    # comparison. server_families: the families those addresses cover (a family gathered
    # from the host with no global address there is unknown, not absent).
    server_addresses: tuple[str, ...] | None = None
    server_families: tuple[str, ...] = FAMILIES

    def validate(self) -> None:
        if not self.name:
            raise EndpointCheckError("name must not be empty")
        if not 1 <= self.port <= 65535:
            raise EndpointCheckError(f"port must be 1-65535, got {self.port}")
        if not self.timeout > 0:
            raise EndpointCheckError(f"timeout must be positive, got {self.timeout}")
        if self.min_cert_fraction is not None and not 0 < self.min_cert_fraction < 1:
            raise EndpointCheckError(f"min_cert_fraction must lie between 0 and 1, got {self.min_cert_fraction}")
        if self.expect_cookies < 1:
            raise EndpointCheckError(f"expect_cookies must be at least 1, got {self.expect_cookies}")
        if not self.aead:
            raise EndpointCheckError("aead must list at least one AEAD algorithm id")
        if self.ntp_address is not None and not cert_info.is_ip_address(self.ntp_address):
            raise EndpointCheckError(f"ntp_address must be an IP address, got {self.ntp_address!r}")
        for aead_id in self.aead:
            if not 0 <= aead_id <= 0xFFFF:
                raise EndpointCheckError(f"AEAD id {aead_id} is outside 0-65535")
        self._validate_server_addresses()

    def _validate_server_addresses(self) -> None:
        if self.server_addresses is not None:
            if cert_info.is_ip_address(self.name):
                raise EndpointCheckError("server_addresses needs a host name: an address has no A or AAAA records")
            try:
                split_families(self.server_addresses, "server_addresses")
            except PublishedRecordsError as exc:
                raise EndpointCheckError(str(exc)) from None
            if set(self.server_families) - set(FAMILIES):
                raise EndpointCheckError(f"server_families must be among {', '.join(FAMILIES)}")


def resolve_addresses(name: str) -> list[str]:
    """Every A and AAAA address of ``name`` in resolver order, without duplicates."""
    if cert_info.is_ip_address(name):
        return [name]
    return resolve_host(name, error=EndpointCheckError)


def _cert_section(session: tls.TlsSession, options: CheckOptions, problems: list[str]) -> dict[str, Any]:
    if not session.chain:
        problems.append("server sent no certificate")
        return {}
    leaf = session.chain[0]
    now = datetime.datetime.now(datetime.UTC)
    problems.extend(session.verify_errors)
    mismatch = cert_info.name_mismatch(leaf, options.name)
    if mismatch:
        problems.append(mismatch)
    # An expired or not-yet-valid chain is already in verify_errors; report the window only.
    if not any("expired" in p or "not yet valid" in p for p in session.verify_errors):
        problems.extend(cert_info.validity_problems(leaf, now, options.min_cert_days, options.min_cert_fraction))
    return cert_info.describe(leaf, now)


def _ke_section(ke: nts_session.KeResult, options: CheckOptions, problems: list[str]) -> dict[str, Any]:
    response = ke.response
    for code in response.errors:
        problems.append(f"NTS-KE Error record: {nts_records.error_name(code)} ({code})")
    for code in response.warnings:
        problems.append(f"NTS-KE Warning record: {nts_records.warning_name(code)} ({code})")
    if nts_records.PROTOCOL_NTPV4 not in response.next_protocols and not response.errors:
        problems.append("NTS-KE response does not select NTPv4 as next protocol")
    if response.aead is None and not response.errors:
        problems.append("NTS-KE response selects no AEAD algorithm")
    if not response.errors and len(response.cookies) < options.expect_cookies:
        problems.append(f"NTS-KE returned {len(response.cookies)} cookies, expected {options.expect_cookies}")
    return {
        "next_protocol": response.next_protocols[0] if response.next_protocols else None,
        "aead": response.aead,
        "aead_name": nts_records.AEAD_NAMES.get(response.aead, None) if response.aead is not None else None,
        "cookies": len(response.cookies),
        "cookie_sizes": sorted({len(c) for c in response.cookies}),
        "server": response.server,
        "port": response.port,
        "warnings": list(response.warnings),
        "errors": list(response.errors),
        "ms": round(ke.ms, 3),
    }


def _ntp_section(
    address: str, ke: nts_session.KeResult, options: CheckOptions, problems: list[str]
) -> dict[str, Any]:
    server = ke.response.server
    if options.ntp_address:
        ntp_address = options.ntp_address
    else:
        ntp_address = nts_session.resolve_ntp_server(server, address_family(address)) if server else address
    ntp_port = ke.response.port if ke.response.port is not None else nts_ntp.NTP_PORT
    result = nts_session.ntp_exchange(ntp_address, ntp_port, ke, options.timeout)
    response = result.response
    if response.nak:
        problems.append(f"NTP server {ntp_address} port {ntp_port} answered with an NTS NAK (cookie rejected)")
    elif response.unsynchronised:
        problems.append(
            f"NTP server {ntp_address} is not synchronised (leap {response.leap}, stratum {response.stratum},"
            f" refid {response.refid_text})"
        )
    return {
        "address": ntp_address,
        "port": ntp_port,
        "authenticated": response.authenticated,
        "nak": response.nak,
        "stratum": response.stratum,
        "leap": response.leap,
        "refid": response.refid_text,
        "offset": result.offset,
        "delay": result.delay,
        "cookies": len(response.cookies),
        "ms": round(result.ms, 3),
    }


def check_address(address: str, options: CheckOptions, *, context: Any | None = None) -> dict[str, Any]:
    """Run TCP, TLS, NTS-KE and (optionally) NTP against one address; never raises NtsopsError.

    ``context`` is a shared TLS context from tls.make_client_context.
    """
    problems: list[str] = []
    entry: dict[str, Any] = {"address": address, "tls": None, "cert": None, "ke": None, "ntp": None}
    server_name = None if cert_info.is_ip_address(options.name) else options.name
    session = None
    try:
        session = tls.open_tls(
            address, options.port, server_name, options.ca_path, options.timeout, context=context
        )
        entry["tls"] = {
            "version": session.version,
            "cipher": session.cipher,
            "alpn": session.alpn,
            "handshake_ms": round(session.handshake_ms, 3),
        }
        entry["cert"] = _cert_section(session, options, problems)
        if session.alpn != nts_records.ALPN_PROTOCOL.decode():
            problems.append("server agreed no ALPN protocol (ntske/1 expected); clients will not use it")
        else:
            ke = nts_session.key_exchange(session, options.aead, options.timeout)
            entry["ke"] = _ke_section(ke, options, problems)
            session.close()
            session = None
            if options.ntp_exchange and ke.response.cookies and not ke.response.errors:
                entry["ntp"] = _ntp_section(address, ke, options, problems)
    except NtsStepError as exc:
        problems.append(str(exc))
    except NtsopsError as exc:
        problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        if session is not None:
            session.close()
    entry["problems"] = [f"{address}: {problem}" for problem in problems]
    entry["ok"] = not problems
    return entry


def check_endpoint(
    options: CheckOptions,
    addresses: Sequence[str] | None = None,
    resolver: Resolver = resolve_addresses,
) -> dict[str, Any]:
    """Check every address concurrently; ``ok`` is true only when every address passed.

    With ``options.server_addresses`` the name's records are compared with them as well
    (``records``, see published.py); each finding is a problem line starting with the name.
    """
    options.validate()
    if addresses:
        targets = list(dict.fromkeys(addresses))
        for address in targets:
            if not cert_info.is_ip_address(address):
                raise EndpointCheckError(f"addresses must be IP addresses, got {address!r}")
    else:
        targets = resolver(options.name)
    if not targets:
        raise EndpointCheckError(f"{options.name} has no A or AAAA records")
    # A CA bundle that cannot be loaded is an option error, raised once here.
    context = tls.make_client_context(options.ca_path)
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_ADDRESSES, len(targets))) as pool:
        results = list(pool.map(lambda address: check_address(address, options, context=context), targets))
    problems = [problem for result in results for problem in result["problems"]]
    output: dict[str, Any] = {"addresses": results}
    if options.server_addresses is not None:
        # The records as clients resolve them, also when explicit addresses were checked.
        published = targets if not addresses else _resolve_or_none(options.name, resolver)
        records = compare_records(
            options.name, published, options.server_addresses, options.server_families
        )
        output["records"] = records
        problems.extend(records["problems"])
    return {"ok": not problems, **output, "problems": problems}


def _resolve_or_none(name: str, resolver: Resolver) -> list[str]:
    """The name's addresses; a name that does not resolve has none (compare_records reports what is missing)."""
    try:
        return resolver(name)
    except EndpointCheckError:
        return []
