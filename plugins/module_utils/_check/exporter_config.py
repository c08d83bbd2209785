# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The exporter's configuration and its probe targets, checked before anything is probed.

``parse_config`` takes the already loaded YAML document (a mapping) and returns an
:class:`ExporterConfig`; every mistake raises :class:`ExporterConfigError` with the
dotted path of the offending key (``modules.nts.timeout``), which the command line
turns into a line number of the file. ``parse_target`` and
:meth:`ExporterConfig.allows` decide whether a ``/probe?target=`` value may be
probed at all: a target is a host name or an IP address, optionally with a port,
and when ``allowed_targets`` is set nothing outside it is ever contacted.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError
from ansible_collections.ntsops.nts.plugins.module_utils._nts.records import NTS_KE_PORT

# Not in Prometheus' default port allocations list; any free port works.
DEFAULT_LISTEN = "127.0.0.1:9816"
DEFAULT_MAX_CONCURRENT = 4
DEFAULT_MIN_INTERVAL = 15.0
MAX_DNS_SERVERS = 8
# A host name label per RFC 1123 (letters, digits, hyphens; not starting or ending with a hyphen).
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


class ExporterConfigError(NtsopsError):
    """The configuration is wrong; ``path`` names the key (``modules.nts.timeout``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


class TargetError(NtsopsError):
    """A probe target that is not a host name or address, or that is not allowed."""


@dataclasses.dataclass(frozen=True)
class DnsServer:
    address: str
    port: int = 53

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


@dataclasses.dataclass(frozen=True)
class DnsOptions:
    """DNS consistency: ask each server (or, with none given, the zone's NS set) for A and AAAA."""

    servers: tuple[DnsServer, ...] = ()
    expected_ipv4: tuple[str, ...] | None = None
    expected_ipv6: tuple[str, ...] | None = None
    max_ttl: int | None = None


@dataclasses.dataclass(frozen=True)
class Module:
    """One probe module: how to check a target."""

    name: str
    port: int = NTS_KE_PORT
    ca_file: str | None = None
    timeout: float = 3.0
    probe_timeout: float = 10.0
    ntp_exchange: bool = True
    min_cert_days: int = 14
    warn_cert_days: int = 30
    cert_file: str | None = None
    dns: DnsOptions | None = None


@dataclasses.dataclass(frozen=True)
class Target:
    host: str
    port: int | None = None

    @property
    def is_address(self) -> bool:
        return _is_address(self.host)

    def __str__(self) -> str:
        if self.port is None:
            return self.host
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclasses.dataclass(frozen=True)
class _Allowed:
    host: str | None  # a lower-case host name without the final dot
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    port: int | None


@dataclasses.dataclass(frozen=True)
class CounterCommand:
    """Run this command line (chronyc serverstats, ntpq -c ntsinfo) and expose its counters on /metrics."""

    command: tuple[str, ...]
    timeout: float = 2.0


@dataclasses.dataclass(frozen=True)
class ExporterConfig:
    modules: Mapping[str, Module]
    listen: str = DEFAULT_LISTEN
    max_concurrent_probes: int = DEFAULT_MAX_CONCURRENT
    min_interval: float = DEFAULT_MIN_INTERVAL
    allowed_targets: tuple[_Allowed, ...] | None = None
    chrony_serverstats: CounterCommand | None = None
    ntpsec_ntsinfo: CounterCommand | None = None
    # ntsops-acme's state folder (_acme/state.py): its runs on /metrics.
    acme_state_dir: str | None = None

    def module(self, name: str) -> Module:
        try:
            return self.modules[name]
        except KeyError:
            raise TargetError(f"unknown module {name!r}; configured: {', '.join(sorted(self.modules))}") from None

    def allows(self, target: Target, module: Module) -> bool:
        """True when no allowed list is set, or the target (on the port it will be probed on) is in it."""
        if self.allowed_targets is None:
            return True
        port = target.port if target.port is not None else module.port
        host = target.host.lower().rstrip(".")
        address = _address(host)
        for allowed in self.allowed_targets:
            if allowed.port is not None and allowed.port != port:
                continue
            if allowed.port is None and port != module.port:
                continue  # an entry without a port allows only the module's own port
            if allowed.host is not None and allowed.host == host:
                return True
            if allowed.network is not None and address is not None and address in allowed.network:
                return True
        return False


def _is_address(text: str) -> bool:
    return _address(text) is not None


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_host_name(text: str) -> bool:
    name = text[:-1] if text.endswith(".") else text
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    # A name made of digits and dots only would be read as an address by getaddrinfo.
    return all(_LABEL.match(label) for label in labels) and not labels[-1].isdigit()


def _split_host_port(text: str) -> tuple[str, str | None]:
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise TargetError(f"target {text!r}: a bracketed IPv6 address must be [ADDRESS] or [ADDRESS]:PORT")
        return host, rest[1:] if rest else None
    if text.count(":") > 1:
        return text, None  # a bare IPv6 address
    host, sep, port = text.partition(":")
    return host, port if sep else None


def parse_target(text: str) -> Target:
    """``NAME``, ``NAME:PORT``, ``ADDRESS``, ``[IPv6]`` or ``[IPv6]:PORT``; anything else raises TargetError."""
    if not text or len(text) > 300:
        raise TargetError("target must be a host name or IP address, optionally with :PORT")
    if any(ch.isspace() or ord(ch) < 0x21 or ord(ch) > 0x7E for ch in text):
        raise TargetError(f"target {text!r} holds spaces or characters outside printable ASCII")
    host, port_text = _split_host_port(text)
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise TargetError(f"target {text!r}: port must be 1-65535")
        port = int(port_text)
    address = _address(host)
    if address is not None:
        return Target(address.compressed, port)
    if not is_host_name(host):
        raise TargetError(f"target {text!r} is neither a host name nor an IP address")
    return Target(host.lower().rstrip("."), port)


# ---------------------------------------------------------------- parsing the file


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ExporterConfigError(path, f"must be a mapping, got {type(value).__name__}")
    return value


def _known(data: Mapping[str, Any], path: str, keys: Sequence[str]) -> None:
    for key in data:
        if key not in keys:
            where = f"{path}.{key}" if path else str(key)
            raise ExporterConfigError(where, f"unknown key; allowed: {', '.join(keys)}")


def _number(data: Mapping[str, Any], key: str, path: str, default: float, *, minimum: float = 0.0) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= minimum:
        where = f"{path}.{key}" if path else key
        raise ExporterConfigError(where, f"must be a number above {minimum:g}, got {value!r}")
    return float(value)


def _integer(data: Mapping[str, Any], key: str, path: str, default: int | None, *, low: int, high: int) -> int | None:
    value = data.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        where = f"{path}.{key}" if path else key
        raise ExporterConfigError(where, f"must be an integer {low}-{high}, got {value!r}")
    return value


def _text(data: Mapping[str, Any], key: str, path: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ExporterConfigError(f"{path}.{key}", f"must be a non-empty string, got {value!r}")
    return value


def _addresses(value: Any, path: str, version: int) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise ExporterConfigError(path, "must be a list of addresses")
    out = []
    for index, item in enumerate(value):
        address = _address(str(item))
        if address is None or address.version != version:
            raise ExporterConfigError(f"{path}[{index}]", f"{item!r} is not an IPv{version} address")
        out.append(address.compressed)
    return tuple(sorted(set(out), key=ipaddress.ip_address))


def _dns_server(item: Any, path: str) -> DnsServer:
    try:
        target = parse_target(str(item))
    except TargetError as exc:
        raise ExporterConfigError(path, str(exc)) from None
    if not target.is_address:
        raise ExporterConfigError(path, f"{item!r}: a DNS server must be an IP address, optionally with :PORT")
    return DnsServer(target.host, target.port or 53)


def _dns(value: Any, path: str) -> DnsOptions | None:
    if value is None or value is False:
        return None
    data = {} if value is True else _mapping(value, path)
    _known(data, path, ("servers", "expected_ipv4", "expected_ipv6", "max_ttl"))
    servers = data.get("servers") or []
    if not isinstance(servers, list) or len(servers) > MAX_DNS_SERVERS:
        raise ExporterConfigError(f"{path}.servers", f"must be a list of at most {MAX_DNS_SERVERS} server addresses")
    return DnsOptions(
        servers=tuple(_dns_server(item, f"{path}.servers[{i}]") for i, item in enumerate(servers)),
        expected_ipv4=_addresses(data.get("expected_ipv4"), f"{path}.expected_ipv4", 4),
        expected_ipv6=_addresses(data.get("expected_ipv6"), f"{path}.expected_ipv6", 6),
        max_ttl=_integer(data, "max_ttl", path, None, low=0, high=2**31 - 1),
    )


_MODULE_KEYS = (
    "port", "ca_file", "timeout", "probe_timeout", "ntp_exchange", "min_cert_days", "warn_cert_days",
    "cert_file", "dns",
)


def _module(name: str, value: Any, path: str) -> Module:
    data = _mapping(value, path)
    _known(data, path, _MODULE_KEYS)
    ntp = data.get("ntp_exchange", True)
    if not isinstance(ntp, bool):
        raise ExporterConfigError(f"{path}.ntp_exchange", f"must be true or false, got {ntp!r}")
    timeout = _number(data, "timeout", path, 3.0)
    probe_timeout = _number(data, "probe_timeout", path, max(10.0, timeout))
    if probe_timeout < timeout:
        raise ExporterConfigError(f"{path}.probe_timeout", f"must not be below timeout ({timeout:g})")
    min_days = _integer(data, "min_cert_days", path, 14, low=0, high=3650)
    warn_days = _integer(data, "warn_cert_days", path, max(30, min_days or 0), low=0, high=3650)
    if warn_days is not None and min_days is not None and warn_days < min_days:
        raise ExporterConfigError(f"{path}.warn_cert_days", f"must not be below min_cert_days ({min_days})")
    return Module(
        name=name,
        port=_integer(data, "port", path, NTS_KE_PORT, low=1, high=65535) or NTS_KE_PORT,
        ca_file=_text(data, "ca_file", path),
        timeout=timeout,
        probe_timeout=probe_timeout,
        ntp_exchange=ntp,
        min_cert_days=min_days or 0,
        warn_cert_days=warn_days or 0,
        cert_file=_text(data, "cert_file", path),
        dns=_dns(data.get("dns"), f"{path}.dns"),
    )


def _allowed(value: Any, path: str) -> tuple[_Allowed, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise ExporterConfigError(path, "must be a list of host names, addresses or networks (CIDR)")
    out = []
    for index, item in enumerate(value):
        text = str(item)
        host_part, _slash, tail = text.partition("/")
        if tail:
            try:
                network = ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise ExporterConfigError(f"{path}[{index}]", f"{text!r} is not a network") from None
            out.append(_Allowed(None, network, None))
            continue
        try:
            target = parse_target(host_part)
        except TargetError as exc:
            raise ExporterConfigError(f"{path}[{index}]", str(exc)) from None
        if target.is_address:
            out.append(_Allowed(None, ipaddress.ip_network(target.host), target.port))
        else:
            out.append(_Allowed(target.host, None, target.port))
    return tuple(out)


def _counter_command(value: Any, path: str) -> CounterCommand | None:
    if value is None:
        return None
    data = _mapping(value, path)
    _known(data, path, ("command", "timeout"))
    command = data.get("command")
    if not isinstance(command, list) or not command or not all(isinstance(a, str) and a for a in command):
        raise ExporterConfigError(f"{path}.command", "must be a list of strings (argv), e.g. [chronyc, serverstats]")
    return CounterCommand(tuple(command), _number(data, "timeout", path, 2.0))


def _acme_state(value: Any, path: str) -> str | None:
    if value is None:
        return None
    data = _mapping(value, path)
    _known(data, path, ("directory",))
    directory = data.get("directory")
    if not isinstance(directory, str) or not directory.startswith("/"):
        raise ExporterConfigError(f"{path}.directory", "must be an absolute path (ntsops-acme's --state-dir)")
    return directory


def parse_config(data: Any) -> ExporterConfig:
    """The exporter's configuration from the loaded YAML document."""
    top = _mapping(data, "")
    _known(top, "", ("listen", "max_concurrent_probes", "min_interval", "allowed_targets", "modules",
                     "chrony_serverstats", "ntpsec_ntsinfo", "acme_state"))
    modules_data = _mapping(top.get("modules"), "modules")
    if not modules_data:
        raise ExporterConfigError("modules", "at least one module is needed")
    modules = {}
    for name, value in modules_data.items():
        if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9_.-]{1,64}$", name):
            raise ExporterConfigError(f"modules.{name}", "a module name is 1-64 letters, digits, '_', '.' or '-'")
        modules[name] = _module(name, value, f"modules.{name}")
    listen = top.get("listen", DEFAULT_LISTEN)
    if not isinstance(listen, str):
        raise ExporterConfigError("listen", "must be ADDRESS:PORT")
    parse_listen(listen, "listen")
    min_interval = top.get("min_interval", DEFAULT_MIN_INTERVAL)
    if isinstance(min_interval, bool) or not isinstance(min_interval, int | float) or not 0 <= min_interval < 86400:
        raise ExporterConfigError("min_interval", f"must be 0-86400 seconds, got {min_interval!r}")
    return ExporterConfig(
        modules=modules,
        listen=listen,
        max_concurrent_probes=_integer(top, "max_concurrent_probes", "", DEFAULT_MAX_CONCURRENT, low=1, high=256)
        or DEFAULT_MAX_CONCURRENT,
        min_interval=float(min_interval),
        allowed_targets=_allowed(top.get("allowed_targets"), "allowed_targets"),
        chrony_serverstats=_counter_command(top.get("chrony_serverstats"), "chrony_serverstats"),
        ntpsec_ntsinfo=_counter_command(top.get("ntpsec_ntsinfo"), "ntpsec_ntsinfo"),
        acme_state_dir=_acme_state(top.get("acme_state"), "acme_state"),
    )


def parse_listen(text: str, path: str = "listen") -> tuple[str, int]:
    """``ADDRESS:PORT`` or ``[IPv6]:PORT`` to listen on."""
    try:
        target = parse_target(text)
    except TargetError as exc:
        raise ExporterConfigError(path, str(exc)) from None
    if target.port is None or not target.is_address:
        raise ExporterConfigError(path, f"{text!r} must be ADDRESS:PORT (an IP address and a port)")
    return target.host, target.port
