# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keep a name's A and AAAA records exactly as wanted, by RFC 2136 dynamic update.

The flow is plan, then apply:

1. ``plan()`` finds the zone (from the SOA of the name) and its primary (the SOA
   MNAME) unless given, reads the current A and AAAA RRsets with their TTL from the
   primary, and compares them with the wanted ones.
2. ``apply()`` sends ONE update for every RRset that differs, guarded by
   prerequisites saying each RRset still holds exactly what was read, so a
   concurrent writer makes the update fail instead of being overwritten.
3. ``wait_for_propagation()`` asks every server in the zone's NS set until all of
   them serve the new records.

``ensure_records()`` runs the three steps; the Ansible module and the on-host agent
both call it, so there is one implementation of the update logic.

All network I/O goes through a ``DnsTransport`` that the caller passes in, so the
unit tests feed canned DNS messages.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ansible_collections.ntsops.nts.plugins.module_utils._errors import MissingDependencyError, NtsopsError

try:
    import dns.exception
    import dns.flags
    import dns.message
    import dns.name
    import dns.opcode
    import dns.query
    import dns.rcode
    import dns.rdata
    import dns.rdataclass
    import dns.rdataset
    import dns.rdatatype
    import dns.resolver
    import dns.tsig
    import dns.update

    HAS_DNSPYTHON = True
except ImportError:  # pragma: no cover - reported when used
    HAS_DNSPYTHON = False

try:
    from ansible_collections.ntsops.nts.plugins.module_utils._model.recovery import max_ttl as _recovery_max_ttl  # type: ignore[import-not-found,unused-ignore]

    HAS_RECOVERY_MODEL = True
except ImportError:  # pragma: no cover - the recovery model ships separately
    HAS_RECOVERY_MODEL = False

FAMILIES = ("ipv4", "ipv6")
RDTYPE_NAMES = {"ipv4": "A", "ipv6": "AAAA"}
TSIG_ALGORITHMS = ("hmac-sha256", "hmac-sha224", "hmac-sha384", "hmac-sha512", "hmac-sha1", "hmac-md5")
MAX_TTL = 2**31 - 1


class DdnsError(NtsopsError):
    """A dynamic update could not be planned, sent or confirmed."""


class DdnsInputError(DdnsError):
    """The request itself is wrong (bad address, name outside the zone, bad key file)."""


class DdnsTsigError(DdnsError):
    """The server rejected the TSIG signature (BADSIG, BADKEY, BADTIME) or ours failed to verify."""


class DdnsRefusedError(DdnsError):
    """The server answered REFUSED."""


class DdnsNotAuthError(DdnsError):
    """The server answered NOTAUTH: not authoritative for the zone, or the TSIG key was not accepted."""


class DdnsZoneNotFoundError(DdnsError):
    """No zone containing the name is served by the server asked."""


class DdnsNotZoneError(DdnsError):
    """The server answered NOTZONE: the name is not inside the zone of the update."""


class DdnsTimeoutError(DdnsError):
    """No answer within the timeout, after the bounded retries."""


class DdnsUnreachableError(DdnsError):
    """The server could not be reached (connection refused, no route, connection closed)."""


class DdnsConflictError(DdnsError):
    """The records changed between read and update: a concurrent writer; nothing was overwritten."""


class DdnsServerError(DdnsError):
    """The server answered with an error code this module does not expect (SERVFAIL, FORMERR...)."""


class DdnsProtocolError(DdnsError):
    """The answer was not a well-formed DNS message for the question asked."""


class DdnsPropagationError(DdnsError):
    """The update was applied but not every authoritative server served it in time."""

    def __init__(self, message: str, result: EnsureResult) -> None:
        super().__init__(message)
        self.result = result


class DdnsBudgetError(DdnsError):
    """The TTL does not fit the recovery budget, or the budget cannot be evaluated."""


def require_dnspython() -> None:
    if not HAS_DNSPYTHON:
        raise MissingDependencyError("dnspython", "for dynamic DNS updates")


# --------------------------------------------------------------------------- TSIG


@dataclass(frozen=True)
class TsigKey:
    name: str
    secret: str = field(repr=False)
    algorithm: str = "hmac-sha256"

    def to_dnspython(self) -> Any:
        require_dnspython()
        try:
            return dns.tsig.Key(self.name, self.secret, self.algorithm)
        except (ValueError, TypeError, dns.exception.DNSException) as exc:
            # binascii.Error (bad base64) is a ValueError; the message never contains the secret.
            problem = type(exc).__name__
            raise DdnsInputError(f"TSIG key {self.name!r}: the secret is not valid base64 ({problem})") from None


_KEY_BLOCK = re.compile(r'key\s+"?([A-Za-z0-9._-]+)"?\s*\{(.*?)\}\s*;', re.S)
_KEY_ALGORITHM = re.compile(r"algorithm\s+\"?([A-Za-z0-9-]+)\"?\s*;")
_KEY_SECRET = re.compile(r'secret\s+"([A-Za-z0-9+/=\s]+)"\s*;')
_COMMENTS = re.compile(r"(#|//)[^\n]*|/\*.*?\*/", re.S)


def parse_bind_key(text: str, key_name: str | None = None) -> TsigKey:
    """Read a key statement as written by ``tsig-keygen`` (BIND's named.conf syntax)."""
    keys = {}
    for match in _KEY_BLOCK.finditer(_COMMENTS.sub("", text)):
        name, body = match.group(1), match.group(2)
        algorithm = _KEY_ALGORITHM.search(body)
        secret = _KEY_SECRET.search(body)
        if algorithm is None or secret is None:
            raise DdnsInputError(f"key {name!r} in the key file lacks an algorithm or a secret statement")
        keys[name.rstrip(".")] = TsigKey(name, "".join(secret.group(1).split()), algorithm.group(1).lower())
    if not keys:
        raise DdnsInputError('no key statement (key "name" { algorithm ...; secret "..."; };) in the key file')
    if key_name is None:
        if len(keys) > 1:
            raise DdnsInputError(f"the key file holds several keys ({', '.join(sorted(keys))}); set key_name")
        return next(iter(keys.values()))
    try:
        return keys[key_name.rstrip(".")]
    except KeyError:
        raise DdnsInputError(f"no key named {key_name!r} in the key file (found: {', '.join(sorted(keys))})") from None


def load_key_file(path: str | Path, key_name: str | None = None) -> TsigKey:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise DdnsInputError(f"cannot read TSIG key file {str(path)!r}: {exc.strerror}") from None
    return parse_bind_key(text, key_name)


def make_key(
    key_name: str | None, key_secret: str | None, key_algorithm: str = "hmac-sha256", key_file: str | None = None
) -> TsigKey | None:
    """Build the TSIG key from a secret or a BIND key file; None means unsigned updates."""
    if key_file:
        if key_secret:
            raise DdnsInputError("give key_secret or key_file, not both")
        return load_key_file(key_file, key_name)
    if key_secret:
        if not key_name:
            raise DdnsInputError("key_secret needs key_name")
        if key_algorithm not in TSIG_ALGORITHMS:
            raise DdnsInputError(f"unknown TSIG algorithm {key_algorithm!r}; use one of {', '.join(TSIG_ALGORITHMS)}")
        return TsigKey(key_name, key_secret, key_algorithm)
    if key_name:
        raise DdnsInputError("key_name needs key_secret or key_file")
    return None


# ---------------------------------------------------------------------- transport


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


# ------------------------------------------------------------------------- records


@dataclass(frozen=True)
class RRsetState:
    """One family's RRset: the addresses (sorted, normalised) and the TTL; empty means absent."""

    addresses: tuple[str, ...] = ()
    ttl: int | None = None

    @property
    def exists(self) -> bool:
        return bool(self.addresses)

    def as_dict(self) -> dict[str, Any]:
        return {"addresses": list(self.addresses), "ttl": self.ttl if self.addresses else None}


def normalise_addresses(family: str, addresses: Iterable[str]) -> tuple[str, ...]:
    version = 4 if family == "ipv4" else 6
    out = set()
    for text in addresses:
        try:
            address = ipaddress.ip_address(str(text).strip())
        except ValueError:
            raise DdnsInputError(f"{family}: {text!r} is not an IP address") from None
        if address.version != version:
            raise DdnsInputError(f"{family}: {text!r} is an IPv{address.version} address")
        out.add(address.compressed)
    return tuple(sorted(out, key=ipaddress.ip_address))


@dataclass(frozen=True)
class ZoneInfo:
    zone: str
    mname: str
    serial: int
    primary: Endpoint


@dataclass
class Plan:
    name: str
    zone: ZoneInfo
    before: dict[str, RRsetState]
    after: dict[str, RRsetState]

    @property
    def changed_families(self) -> tuple[str, ...]:
        return tuple(f for f in FAMILIES if f in self.after and self.after[f] != self.before.get(f, RRsetState()))

    @property
    def changed(self) -> bool:
        return bool(self.changed_families)

    def expected(self) -> dict[str, RRsetState]:
        """What every authoritative server must serve once the plan is applied."""
        return {f: self.after.get(f, self.before[f]) for f in FAMILIES if f in self.after}

    def zone_text(self, which: str) -> str:
        """The managed RRsets as zone-file lines, for diff mode."""
        states = self.before if which == "before" else {**self.before, **self.after}
        lines: list[str] = []
        for family in FAMILIES:
            if family not in self.after:
                continue
            state = states.get(family, RRsetState())
            lines.extend(f"{self.name} {state.ttl} IN {RDTYPE_NAMES[family]} {a}" for a in state.addresses)
        return "\n".join(lines) + ("\n" if lines else "")


def _absolute(name: str) -> Any:
    require_dnspython()
    try:
        return dns.name.from_text(name.strip() or ".", origin=dns.name.root)
    except dns.exception.DNSException as exc:
        raise DdnsInputError(f"{name!r} is not a valid domain name: {exc}") from None


def _rcode_text(response: Any) -> str:
    return str(dns.rcode.to_text(response.rcode()))


def find_zone(client: DnsClient, name: str, server: Endpoint | None, zone: str | None = None) -> ZoneInfo:
    """Find the zone of ``name`` from its SOA, and the primary to update (``server`` or the SOA MNAME).

    With a server, the server must be authoritative for the zone. Without one, the
    SOA is asked of the system resolver and the update goes to the MNAME's address.
    """
    qname = _absolute(zone if zone else name)
    if server is None:
        lookup = Endpoint(_system_nameserver(client.transport), 53)
        recursion = True
    else:
        lookup, recursion = server, False
    # Signed when asking the primary itself: a wrong key then fails before anything is
    # planned, in check mode too. A resolver does not know the key, so that query is not.
    response = client.query(
        qname, "SOA", lookup, f"looking up the SOA of {qname}", recursion=recursion, signed=server is not None
    )
    rcode = response.rcode()
    if rcode in (dns.rcode.REFUSED, dns.rcode.NOTAUTH):
        raise DdnsZoneNotFoundError(
            f"{lookup} serves no zone containing {qname} (it answered {_rcode_text(response)} to the SOA query)"
        )
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        raise DdnsServerError(f"{lookup} answered {_rcode_text(response)} to the SOA query for {qname}")
    soa = _soa_of(response, qname)
    if soa is None:
        delegated = [r for r in response.authority if r.rdtype == dns.rdatatype.NS]
        hint = f"; it is delegated to {delegated[0].name}" if delegated else ""
        raise DdnsZoneNotFoundError(f"{lookup} returned no SOA for {qname}{hint}")
    if zone is not None and soa.name != qname:
        raise DdnsZoneNotFoundError(f"{qname} is not a zone apex at {lookup} (the zone there is {soa.name})")
    if server is not None and not response.flags & dns.flags.AA:
        raise DdnsZoneNotFoundError(f"{server} is not authoritative for {soa.name}")
    rdata = soa[0]
    mname = rdata.mname.to_text()
    if server is None:
        addresses = client.transport.host_addresses(mname)
        if not addresses:
            raise DdnsZoneNotFoundError(f"the primary {mname} (SOA MNAME of {soa.name}) has no address")
        server = Endpoint(addresses[0], 53)
    return ZoneInfo(zone=soa.name.to_text(), mname=mname, serial=int(rdata.serial), primary=server)


def _soa_of(response: Any, qname: Any) -> Any:
    """The SOA RRset answering for ``qname`` itself, else the one in the authority section above it."""
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.SOA and rrset.name == qname and len(rrset):
            return rrset
    for rrset in response.authority:
        if rrset.rdtype == dns.rdatatype.SOA and qname.is_subdomain(rrset.name) and len(rrset):
            return rrset
    return None


def _system_nameserver(transport: DnsTransport) -> str:
    getter: Callable[[], str] | None = getattr(transport, "system_nameserver", None)
    if getter is None:
        raise DdnsInputError("no server given and the transport cannot find a resolver; set server")
    return getter()


def read_rrsets(
    client: DnsClient, name: str, server: Endpoint, families: Sequence[str], signed: bool = False
) -> dict[str, RRsetState]:
    """Read the A and AAAA RRsets of ``name`` as the (authoritative) server serves them now."""
    qname = _absolute(name)
    states = {}
    for family in families:
        rdtype = RDTYPE_NAMES[family]
        response = client.query(qname, rdtype, server, f"reading {qname} {rdtype}", signed=signed)
        states[family] = _rrset_from_answer(response, qname, rdtype, server)
    return states


def _rrset_from_answer(response: Any, qname: Any, rdtype: str, server: Endpoint) -> RRsetState:
    rcode = response.rcode()
    if rcode == dns.rcode.REFUSED:
        raise DdnsRefusedError(f"{server} refused the query for {qname} {rdtype}")
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        raise DdnsServerError(f"{server} answered {_rcode_text(response)} to the query for {qname} {rdtype}")
    if not response.flags & dns.flags.AA:
        raise DdnsZoneNotFoundError(f"{server} is not authoritative for {qname}")
    for rrset in response.answer:
        if rrset.name == qname and rrset.rdtype == dns.rdatatype.CNAME:
            raise DdnsInputError(f"{qname} is a CNAME; A and AAAA records cannot live beside it")
        if rrset.name == qname and rrset.rdtype == dns.rdatatype.from_text(rdtype):
            family = "ipv4" if rdtype == "A" else "ipv6"
            return RRsetState(normalise_addresses(family, (r.address for r in rrset)), int(rrset.ttl))
    return RRsetState()


def desired_states(
    state: str, ttl: int, ipv4: Sequence[str] | None, ipv6: Sequence[str] | None
) -> dict[str, RRsetState]:
    """The wanted RRsets; a family that is None is left alone."""
    if state not in ("present", "absent"):
        raise DdnsInputError(f"state must be present or absent, not {state!r}")
    if not 0 <= ttl <= MAX_TTL:
        raise DdnsInputError(f"ttl {ttl} is outside 0..{MAX_TTL}")
    wanted = {}
    for family, addresses in (("ipv4", ipv4), ("ipv6", ipv6)):
        if addresses is None:
            continue
        normalised = normalise_addresses(family, addresses)
        wanted[family] = RRsetState(normalised, ttl) if state == "present" and normalised else RRsetState()
    return wanted


def plan(
    client: DnsClient,
    name: str,
    wanted: Mapping[str, RRsetState],
    server: Endpoint | None = None,
    zone: str | None = None,
) -> Plan:
    qname = _absolute(name)
    if zone is not None and not qname.is_subdomain(_absolute(zone)):
        raise DdnsInputError(f"{qname} is not inside zone {_absolute(zone)} (NOTZONE)")
    info = find_zone(client, name, server, zone)
    families = list(FAMILIES)
    before = read_rrsets(client, name, info.primary, families, signed=True)
    return Plan(name=qname.to_text(), zone=info, before=before, after=dict(wanted))


def build_update(plan_: Plan, key: TsigKey | None) -> Any:
    """One UPDATE for every RRset that differs, each guarded by a prerequisite on what was read."""
    require_dnspython()
    update = dns.update.UpdateMessage(plan_.zone.zone, keyring=key.to_dnspython() if key else None)
    qname = _absolute(plan_.name)
    for family in plan_.changed_families:
        rdtype = dns.rdatatype.from_text(RDTYPE_NAMES[family])
        read = plan_.before[family]
        # RFC 2136 3.2.5: value-dependent prerequisites compare RDATA only, not TTL.
        if read.exists:
            update.present(qname, _rdataset(rdtype, read, ttl=0))
        else:
            update.absent(qname, rdtype)
    for family in plan_.changed_families:
        rdtype = dns.rdatatype.from_text(RDTYPE_NAMES[family])
        update.delete(qname, rdtype)
        wanted = plan_.after[family]
        if wanted.exists:
            update.add(qname, _rdataset(rdtype, wanted))
    return update


def _rdataset(rdtype: Any, state: RRsetState, ttl: int | None = None) -> Any:
    rdatas = [dns.rdata.from_text(dns.rdataclass.IN, rdtype, a) for a in state.addresses]
    return dns.rdataset.from_rdata_list(state.ttl or 0 if ttl is None else ttl, rdatas)


_CONFLICT_RCODES = ("YXDOMAIN", "YXRRSET", "NXRRSET", "NXDOMAIN")


def apply(client: DnsClient, plan_: Plan) -> None:
    """Send the update of ``plan_``; a failed prerequisite is re-checked, never retried blindly."""
    if not plan_.changed:
        return
    update = build_update(plan_, client.key)
    server = plan_.zone.primary
    what = f"updating {plan_.name} in {plan_.zone.zone}"
    response = client.exchange(update, server, what)
    rcode = _rcode_text(response)
    if response.rcode() == dns.rcode.NOERROR:
        return
    if rcode in _CONFLICT_RCODES:
        # An earlier try that timed out may have landed: then the records are already right.
        now = read_rrsets(client, plan_.name, server, plan_.changed_families, signed=True)
        if all(now[f] == plan_.after[f] for f in plan_.changed_families):
            return
        raise DdnsConflictError(
            f"{what}: the records changed since they were read ({rcode}); nothing was overwritten. "
            f"Read: {_describe(plan_.before, plan_.changed_families)}; now: {_describe(now, plan_.changed_families)}"
        )
    if rcode == "REFUSED":
        key = f"TSIG key {client.key.name!r}" if client.key else "unsigned updates"
        raise DdnsRefusedError(
            f"{what}: {server} answered REFUSED; its update policy does not allow {key} to change this name"
        )
    if rcode == "NOTAUTH":
        raise DdnsNotAuthError(
            f"{what}: {server} answered NOTAUTH: it is not the primary for {plan_.zone.zone}, "
            "or it did not accept the TSIG key"
        )
    if rcode == "NOTZONE":
        raise DdnsNotZoneError(f"{what}: {server} answered NOTZONE: {plan_.name} is not inside {plan_.zone.zone}")
    raise DdnsServerError(f"{what}: {server} answered {rcode}")


def _describe(states: Mapping[str, RRsetState], families: Iterable[str]) -> str:
    parts = []
    for family in families:
        state = states.get(family, RRsetState())
        body = ", ".join(state.addresses) if state.exists else "none"
        parts.append(f"{RDTYPE_NAMES[family]} {body}")
    return "; ".join(parts)


# --------------------------------------------------------------------- propagation


@dataclass
class ServerStatus:
    name: str
    address: str
    answered: bool = False
    serial: int | None = None
    up_to_date: bool = False
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": self.address,
            "answered": self.answered,
            "serial": self.serial,
            "up_to_date": self.up_to_date,
            "error": self.error,
        }


def authoritative_servers(client: DnsClient, zone: ZoneInfo) -> list[tuple[str, Endpoint]]:
    """Every address of every server in the zone's NS set, asked of the primary."""
    qzone = _absolute(zone.zone)
    response = client.query(qzone, "NS", zone.primary, f"reading the NS set of {qzone}")
    if response.rcode() != dns.rcode.NOERROR:
        raise DdnsServerError(f"{zone.primary} answered {_rcode_text(response)} to the NS query for {qzone}")
    targets = sorted({r.target for rrset in response.answer if rrset.rdtype == dns.rdatatype.NS for r in rrset})
    if not targets:
        raise DdnsServerError(f"{zone.primary} returned no NS records for {qzone}")
    glue: dict[Any, list[str]] = {}
    for rrset in response.additional:
        if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            glue.setdefault(rrset.name, []).extend(r.address for r in rrset)
    servers = []
    for target in targets:
        addresses = glue.get(target)
        if not addresses and target.is_subdomain(qzone):
            found = read_rrsets(client, target.to_text(), zone.primary, FAMILIES)
            addresses = [a for f in FAMILIES for a in found[f].addresses]
        if not addresses:
            addresses = client.transport.host_addresses(target.to_text())
        if not addresses:
            servers.append((target.to_text(), Endpoint("", zone.primary.port)))
        servers.extend((target.to_text(), Endpoint(a, zone.primary.port)) for a in sorted(set(addresses)))
    return servers


def check_servers(
    client: DnsClient,
    name: str,
    zone: ZoneInfo,
    expected: Mapping[str, RRsetState],
    servers: Sequence[tuple[str, Endpoint]],
) -> list[ServerStatus]:
    """One round: does each server serve exactly the expected RRsets (addresses and TTL)?"""
    qname, qzone = _absolute(name), _absolute(zone.zone)
    statuses = []
    for ns_name, endpoint in servers:
        status = ServerStatus(ns_name, endpoint.address)
        statuses.append(status)
        if not endpoint.address:
            status.error = "no address found for this name server"
            continue
        try:
            soa = client.query(qzone, "SOA", endpoint, f"reading the SOA serial of {qzone}")
            if soa.rcode() != dns.rcode.NOERROR or not soa.flags & dns.flags.AA:
                status.error = f"answered {_rcode_text(soa)} without authority to the SOA query for {qzone}"
                continue
            for rrset in soa.answer:
                if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
                    status.serial = int(rrset[0].serial)
            status.answered = True
            up_to_date = True
            for family, want in expected.items():
                rdtype = RDTYPE_NAMES[family]
                got = _rrset_from_answer(client.query(qname, rdtype, endpoint, "checking"), qname, rdtype, endpoint)
                up_to_date = up_to_date and got.addresses == want.addresses and (not want.exists or got.ttl == want.ttl)
            status.up_to_date = up_to_date
        except DdnsError as exc:
            status.error = str(exc)
    return statuses


def wait_for_propagation(
    client: DnsClient,
    name: str,
    zone: ZoneInfo,
    expected: Mapping[str, RRsetState],
    *,
    timeout: float,
    servers: Sequence[tuple[str, Endpoint]] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[bool, float, list[ServerStatus]]:
    """Poll the NS set until every server is up to date or ``timeout`` passes: (all done, seconds, statuses)."""
    start = clock()
    if servers is None:
        servers = authoritative_servers(client, zone)
    delay = 0.01
    while True:
        statuses = check_servers(client, name, zone, expected, servers)
        elapsed = clock() - start
        if all(s.up_to_date for s in statuses):
            return True, elapsed, statuses
        if elapsed >= timeout:
            return False, elapsed, statuses
        sleep(min(delay, max(0.0, timeout - elapsed)))
        delay = min(delay * 2, 0.5)


# ------------------------------------------------------------------------- budget


def budget_max_ttl(budget: Mapping[str, Any]) -> int:
    """The longest TTL the recovery model allows for this client mix and update latency."""
    if not isinstance(budget, Mapping) or "clients" not in budget or "update_latency" not in budget:
        raise DdnsInputError("budget needs 'clients' (a list of client dicts) and 'update_latency' (seconds)")
    if not HAS_RECOVERY_MODEL:
        raise DdnsBudgetError(
            "the recovery model (plugins/module_utils/_model/recovery.py) is not installed, so a TTL cannot be "
            "derived from the budget; set ttl instead"
        )
    try:
        latency = float(budget["update_latency"])
    except (TypeError, ValueError):
        raise DdnsInputError(f"budget update_latency {budget['update_latency']!r} is not a number") from None
    return int(_recovery_max_ttl(list(budget["clients"]), latency))


def choose_ttl(
    ttl: int | None, budget: Mapping[str, Any] | None, allow_ttl_over_budget: bool = False
) -> tuple[int, int | None, list[str]]:
    """The TTL to publish, the budget's maximum (if a budget was given) and warnings."""
    if budget is None:
        if ttl is None:
            raise DdnsInputError("give ttl or budget")
        return ttl, None, []
    limit = budget_max_ttl(budget)
    if ttl is None:
        return limit, limit, []
    if ttl <= limit:
        return ttl, limit, []
    message = f"ttl {ttl} s is above {limit} s, the longest TTL the recovery budget allows"
    if not allow_ttl_over_budget:
        raise DdnsBudgetError(message + "; lower ttl or set allow_ttl_over_budget")
    return ttl, limit, [message]


# -------------------------------------------------------------------------- ensure


@dataclass
class EnsureResult:
    changed: bool
    plan: Plan
    ttl: int
    update_s: float | None = None
    propagation_s: float | None = None
    servers: list[ServerStatus] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        families = [f for f in FAMILIES if f in self.plan.after]
        after = {**self.plan.before, **self.plan.after}
        return {
            "changed": self.changed,
            "name": self.plan.name,
            "zone": self.plan.zone.zone,
            "primary": str(self.plan.zone.primary),
            "records": {
                "before": {f: self.plan.before[f].as_dict() for f in families},
                "after": {f: after[f].as_dict() for f in families},
            },
            "ttl": self.ttl,
            "update_s": self.update_s,
            "propagation_s": self.propagation_s,
            "servers": [s.as_dict() for s in self.servers],
        }


def ensure_records(
    client: DnsClient,
    name: str,
    wanted: Mapping[str, RRsetState],
    *,
    ttl: int,
    server: Endpoint | None = None,
    zone: str | None = None,
    check_mode: bool = False,
    wait: bool = True,
    propagation_timeout: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
) -> EnsureResult:
    """Plan, apply unless checking, then confirm every authoritative server serves the result."""
    the_plan = plan(client, name, wanted, server=server, zone=zone)
    result = EnsureResult(changed=the_plan.changed, plan=the_plan, ttl=ttl)
    if the_plan.changed and not check_mode:
        start = clock()
        apply(client, the_plan)
        result.update_s = clock() - start
    if not wait or not the_plan.after:
        return result
    expected = the_plan.after if not check_mode else {f: the_plan.before[f] for f in the_plan.after}
    if check_mode:
        # One look only: a check run reports the servers' state but never waits.
        servers = authoritative_servers(client, the_plan.zone)
        result.servers = check_servers(client, the_plan.name, the_plan.zone, expected, servers)
        return result
    done, elapsed, statuses = wait_for_propagation(
        client, the_plan.name, the_plan.zone, expected, timeout=propagation_timeout, clock=clock
    )
    result.propagation_s, result.servers = elapsed, statuses
    if not done:
        late = ", ".join(f"{s.name} ({s.address}): {s.error or 'old records'}" for s in statuses if not s.up_to_date)
        raise DdnsPropagationError(
            f"not every authoritative server served the new records of {the_plan.name} within "
            f"{propagation_timeout:g} s: {late}",
            result,
        )
    return result
