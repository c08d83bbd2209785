"""Fixtures for integration tests against real NTS servers and hostile peers.

Everything runs as root inside network namespaces this session creates (named
`ntsops-t-<pid>-...`) or on loopback; the clock is never touched (see
harness/daemons.py). Tests that use these fixtures are skipped when not root.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# appended, not prepended: a folder here must never shadow an installed package (e.g. dns)
sys.path.append(str(Path(__file__).resolve().parent))

from harness.ca import TestCA
from harness.daemons import ChronyServer
from harness.hostile import HostileServer
from harness.lab import LAB_DOMAIN, Daemons, NtsLab
from harness.netns import Network, reap_leftovers


def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("integration tests need root (network namespaces, real daemons)")


@pytest.fixture(scope="session")
def reaped_leftovers() -> list[str]:
    """Removes namespaces left by crashed runs once per session; yields their names."""
    _require_root()
    return reap_leftovers()


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    """The trusted test CA (session-wide). `test_ca.cert_path` is the PEM to trust."""
    return TestCA(tmp_path_factory.mktemp("ca"), "ntsops test CA")


@pytest.fixture(scope="session")
def untrusted_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    """A second CA nobody trusts, for 'untrusted CA' cases."""
    return TestCA(tmp_path_factory.mktemp("untrusted-ca"), "ntsops untrusted CA")


@pytest.fixture
def network(reaped_leftovers: list[str]) -> Iterator[Network]:
    """An empty Network (hub bridge namespace); add hosts with `network.add_host(role, [cidr...], hosts={})`."""
    with Network() as net:
        yield net


@pytest.fixture
def daemons(tmp_path: Path, test_ca: TestCA, reaped_leftovers: list[str]) -> Iterator[Daemons]:
    """Factory for real daemons: daemons.chrony_server(...), .ntpsec_server(host), .chrony_client(host, name)."""
    factory = Daemons(tmp_path, test_ca)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
def chrony_loopback(daemons: Daemons) -> ChronyServer:
    """chronyd NTS server on 127.0.0.1 (and ::1) with free ports; cert for localhost, 127.0.0.1, ::1."""
    return daemons.chrony_server()


@pytest.fixture
def nts_lab(network: Network, daemons: Daemons, test_ca: TestCA) -> NtsLab:
    """The NtsLab above, both servers started and answering NTS-KE."""
    chrony_host = network.add_host("chrony", ["198.51.100.10/24", "2001:db8::10/64"])
    ntpsec_host = network.add_host("ntpsec", ["198.51.100.11/24", "2001:db8::11/64"])
    client_host = network.add_host("client", ["198.51.100.20/24", "2001:db8::20/64"], hosts={
        f"chrony.{LAB_DOMAIN}": ["198.51.100.10", "2001:db8::10"],
        f"ntpsec.{LAB_DOMAIN}": ["198.51.100.11", "2001:db8::11"],
        f"half-dead.{LAB_DOMAIN}": ["198.51.100.10", "198.51.100.99"],
    })
    chrony = daemons.chrony_server(chrony_host, dns=[f"chrony.{LAB_DOMAIN}", f"half-dead.{LAB_DOMAIN}"])
    ntpsec = daemons.ntpsec_server(ntpsec_host, dns=[f"ntpsec.{LAB_DOMAIN}"])
    return NtsLab(network, chrony_host, ntpsec_host, client_host, chrony, ntpsec, test_ca, daemons)


@pytest.fixture
def hostile(
    test_ca: TestCA, untrusted_ca: TestCA, reaped_leftovers: list[str]
) -> Iterator[Callable[..., HostileServer]]:
    """Factory: hostile(behaviour, host=None, address=None, port=0, ntp_port=None, name='localhost',
    error_code=1, cookies=8, announce_server=None) -> a started HostileServer.

    On loopback (host=None) it binds 127.0.0.1 on free ports and, for NTP behaviours,
    sends Port Negotiation for its UDP port; in a netns Host it uses the host's first
    address and ports 4460/123 if you pass port=4460. All are stopped afterwards.
    """
    servers: list[HostileServer] = []

    def make(behaviour: str, **kw: Any) -> HostileServer:
        kw.setdefault("ca", test_ca)
        kw.setdefault("untrusted_ca", untrusted_ca)
        server = HostileServer(behaviour, **kw)
        servers.append(server)
        return server.start()

    try:
        yield make
    finally:
        for server in reversed(servers):
            server.stop()
