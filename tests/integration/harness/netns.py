"""Isolated network namespaces for integration tests.

A `Network` owns one hub namespace holding a bridge and any number of host
namespaces, each wired to the bridge by a veth pair created *inside* the
namespaces (the root namespace's interfaces, routes and /etc are never touched).
Hosts get addresses from the documentation (and benchmarking) ranges only. Each host has its own
/etc/netns/<ns>/hosts and resolv.conf, which `ip netns exec` bind-mounts over /etc.

Names are `ntsops-t-<pid>-<n>-<role>`: `reap_leftovers()` removes the namespaces
(and their processes and /etc/netns folders) of runs whose pid is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import itertools
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

PREFIX = "ntsops-t-"
ETC_NETNS = Path("/etc/netns")
RUN_NETNS = Path("/run/netns")
# <owner pid>-<daemon pid> files holding the daemon's cmdline, so daemons outside any
# namespace (on loopback) are reaped too after a crash, and never a reused pid
PROCESS_REGISTRY = Path("/run/ntsops-t")
_counter = itertools.count(1)
_counter_lock = threading.Lock()
_CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=check)


def _unique_name(role: str) -> str:
    with _counter_lock:
        n = next(_counter)
    safe = "".join(ch for ch in role if ch.isalnum())[:12] or "ns"
    return f"{PREFIX}{os.getpid()}-{n}-{safe}"


def _pid_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (exited, not yet reaped by its parent) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def namespace_pids(ns: str) -> list[int]:
    result = _ip("netns", "pids", ns, check=False)
    return [int(p) for p in result.stdout.split() if p.isdigit()]


def _kill_pids(pids: Iterable[int], grace: float = 2.0) -> None:
    pids = [p for p in pids if p != os.getpid()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_pid_alive(p) for p in pids):
        time.sleep(0.05)
    for pid in pids:
        if _pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def delete_namespace(ns: str) -> None:
    """Kill what still runs in `ns` (by PID), delete it and its /etc/netns folder."""
    if not ns.startswith(PREFIX):
        raise ValueError(f"refusing to delete a namespace this harness did not name: {ns}")
    if (RUN_NETNS / ns).exists():
        _kill_pids(namespace_pids(ns))
        _ip("netns", "delete", ns, check=False)
    shutil.rmtree(ETC_NETNS / ns, ignore_errors=True)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def register_process(pid: int) -> None:
    """Remember a daemon this process started, for reap_leftovers() after a crash."""
    PROCESS_REGISTRY.mkdir(mode=0o700, exist_ok=True)
    (PROCESS_REGISTRY / f"{os.getpid()}-{pid}").write_bytes(_cmdline(pid))


def unregister_process(pid: int) -> None:
    (PROCESS_REGISTRY / f"{os.getpid()}-{pid}").unlink(missing_ok=True)


def _reap_processes() -> list[str]:
    reaped: list[str] = []
    if not PROCESS_REGISTRY.is_dir():
        return reaped
    for entry in PROCESS_REGISTRY.iterdir():
        try:
            owner, pid = (int(x) for x in entry.name.split("-"))
        except ValueError:
            continue
        if _pid_alive(owner):
            continue
        recorded = entry.read_bytes()
        if recorded and _pid_alive(pid) and _cmdline(pid) == recorded:
            _kill_pids([pid])
            reaped.append(f"pid {pid}")
        entry.unlink(missing_ok=True)
    return reaped


def reap_leftovers() -> list[str]:
    """Remove namespaces and loopback daemons left by crashed runs (owner pid gone).
    Returns what was removed."""
    names: set[str] = set()
    if RUN_NETNS.is_dir():
        names.update(p.name for p in RUN_NETNS.iterdir() if p.name.startswith(PREFIX))
    if ETC_NETNS.is_dir():
        names.update(p.name for p in ETC_NETNS.iterdir() if p.name.startswith(PREFIX))
    reaped = []
    for ns in sorted(names):
        try:
            owner = int(ns[len(PREFIX):].split("-", 1)[0])
        except ValueError:
            owner = -1
        if owner > 0 and _pid_alive(owner):
            continue
        delete_namespace(ns)
        reaped.append(ns)
    return reaped + _reap_processes()


_libc: Any = None


def _setns(fd: int) -> None:
    global _libc  # noqa: PLW0603 - lazily loaded handle to the C library
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def call_in_netns(ns: str | None, func: Callable[[], T]) -> T:
    """Run `func` in a short-lived thread that has entered network namespace `ns`.

    setns(CLONE_NEWNET) changes only the calling thread, so sockets created by `func`
    live in `ns` and stay there when handed back; nothing else in this process moves.
    `ns=None` runs `func` in the current namespace.
    """
    if ns is None:
        return func()
    box: dict[str, Any] = {}

    def runner() -> None:
        try:
            fd = os.open(RUN_NETNS / ns, os.O_RDONLY)
            try:
                _setns(fd)
            finally:
                os.close(fd)
            box["value"] = func()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=runner, name=f"netns-{ns}", daemon=True)
    thread.start()
    thread.join(30)
    if thread.is_alive():
        raise TimeoutError(f"call in namespace {ns} did not finish within 30 s")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


class Host:
    """One network namespace attached to the Network's bridge as `eth0`."""

    def __init__(self, network: Network, role: str, ns: str) -> None:
        self.network = network
        self.role = role
        self.ns = ns
        self.addresses: list[str] = []  # plain addresses, no prefix length
        self.etc_dir = ETC_NETNS / ns

    def __repr__(self) -> str:
        return f"Host({self.role!r}, ns={self.ns!r}, addresses={self.addresses!r})"

    @property
    def address(self) -> str:
        return self.addresses[0]

    @property
    def address6(self) -> str | None:
        return next((a for a in self.addresses if ":" in a), None)

    def add_address(self, cidr: str) -> str:
        """Add an address (with prefix length) from a documentation range to eth0."""
        iface = ipaddress.ip_interface(cidr)
        if not any(iface.ip in net for net in DOC_NETWORKS):
            raise ValueError(f"{cidr} is not in a documentation range")
        for net in rooted_subnets():
            if iface.ip in net:
                raise ValueError(f"{cidr} is in {net}, which the root namespace uses: pick another range")
        extra = ["nodad"] if iface.version == 6 else []
        self.ip("addr", "add", str(iface), "dev", "eth0", *extra)
        self.addresses.append(str(iface.ip))
        return str(iface.ip)

    def remove_address(self, address: str) -> None:
        """Drop an address: the host goes dark on it (nothing answers, not even ICMP)."""
        for line in self.ip("-o", "addr", "show", "dev", "eth0").stdout.splitlines():
            fields = line.split()
            for i, field in enumerate(fields):
                if field in ("inet", "inet6") and str(ipaddress.ip_interface(fields[i + 1]).ip) == address:
                    self.ip("addr", "del", fields[i + 1], "dev", "eth0")
                    self.addresses.remove(address)
                    return
        raise ValueError(f"{self.ns} has no address {address}")

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _ip("-n", self.ns, *args, check=check)

    def exec_argv(self, argv: Sequence[str]) -> list[str]:
        """The argv that runs `argv` inside this namespace (with its /etc files)."""
        return ["ip", "netns", "exec", self.ns, *argv]

    def run(
        self, argv: Sequence[str], timeout: float = 20, check: bool = True, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.exec_argv(argv), capture_output=True, text=True, timeout=timeout, check=check, **kw)

    def popen(self, argv: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        return subprocess.Popen(self.exec_argv(argv), **kw)

    def set_hosts(self, names: dict[str, Sequence[str]]) -> Path:
        """Write this namespace's /etc/hosts: each name maps to the given addresses, in order."""
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        for name, addrs in names.items():
            for addr in addrs:
                ipaddress.ip_address(addr)  # reject junk early
                lines.append(f"{addr}\t{name}")
        path = self.etc_dir / "hosts"
        path.write_text("\n".join(lines) + "\n")
        return path

    def set_resolver(self, nameservers: Sequence[str] = ("127.0.0.1",), options: str = "timeout:1 attempts:1") -> Path:
        """Write this namespace's /etc/resolv.conf (default: nobody answers, fast)."""
        text = "".join(f"nameserver {ns}\n" for ns in nameservers) + f"options {options}\n"
        path = self.etc_dir / "resolv.conf"
        path.write_text(text)
        return path

    def socket(self, family: int = socket.AF_INET, type_: int = socket.SOCK_STREAM) -> socket.socket:
        """A socket that lives in this namespace (usable from any thread)."""
        return call_in_netns(self.ns, lambda: socket.socket(family, type_))

    def call(self, func: Callable[[], T]) -> T:
        """Run `func` with this thread's network in this namespace (see call_in_netns)."""
        return call_in_netns(self.ns, func)


DOC_NETWORKS = (
    ipaddress.ip_network("192.0.2.0/24"),
    ipaddress.ip_network("198.51.100.0/24"),
    ipaddress.ip_network("203.0.113.0/24"),
    # RFC 2544 benchmarking range: the podman networks the tests create use it
    ipaddress.ip_network("198.18.0.0/15"),
    ipaddress.ip_network("2001:db8::/32"),
)


def rooted_subnets() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Documentation-range subnets configured in the root namespace (on this machine
    192.0.2.0/24 is its real uplink), which test hosts must therefore not use."""
    out = _ip("-o", "addr", "show").stdout
    found = []
    for line in out.splitlines():
        fields = line.split()
        for i, field in enumerate(fields[:-1]):
            if field in ("inet", "inet6"):
                net = ipaddress.ip_interface(fields[i + 1]).network
                if any(net.subnet_of(doc) for doc in DOC_NETWORKS if doc.version == net.version):  # type: ignore[arg-type]
                    found.append(net)
    return found


class Network:
    """A bridge in a hub namespace plus host namespaces; a context manager that cleans up."""

    def __init__(self) -> None:
        self.hub = _unique_name("hub")
        self.hosts: list[Host] = []
        self._ports = itertools.count(1)
        self._created: list[str] = []
        self._closed = False

    def __enter__(self) -> Network:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _new_ns(self, ns: str) -> None:
        _ip("netns", "add", ns)
        self._created.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")
        (ETC_NETNS / ns).mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        try:
            self._new_ns(self.hub)
            _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.hub, "link", "set", "br0", "up")
        except BaseException:
            self.close()
            raise

    def add_host(self, role: str, addresses: Sequence[str] = (), hosts: dict[str, Sequence[str]] | None = None) -> Host:
        """A new namespace on the bridge with `addresses` (CIDR strings) on eth0.

        Its /etc/hosts maps `hosts` (default: none besides localhost) and its
        resolv.conf points at 127.0.0.1 (no DNS answers unless a test starts one).
        """
        ns = _unique_name(role)
        self._new_ns(ns)
        host = Host(self, role, ns)
        self.hosts.append(host)
        port = f"p{next(self._ports)}"
        _ip("-n", self.hub, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _ip("-n", self.hub, "link", "set", port, "master", "br0")
        _ip("-n", self.hub, "link", "set", port, "up")
        # no router solicitations or DAD delays; tests want addresses usable at once
        host.run(["sysctl", "-q", "-w", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"],
                 check=False)
        host.ip("link", "set", "eth0", "up")
        for cidr in addresses:
            host.add_address(cidr)
        host.set_hosts(hosts or {})
        host.set_resolver()
        return host

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for ns in reversed(self._created):
            delete_namespace(ns)
        self._created.clear()
