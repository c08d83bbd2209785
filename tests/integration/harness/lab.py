"""Test-side helpers shared by the pytest fixtures: a daemon factory and the NTS lab."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .ca import IssuedCert, TestCA
from .daemons import ChronyClient, ChronyServer, NtpsecServer
from .netns import Host, Network

LAB_DOMAIN = "nts.test"


class Daemons:
    """Starts real daemons for one test and stops them all (by PID) afterwards."""

    def __init__(self, tmp_path: Path, ca: TestCA) -> None:
        self.tmp_path = tmp_path
        self.ca = ca
        self.started: list[Any] = []
        self._n = 0

    def _dir(self, kind: str) -> Path:
        self._n += 1
        return self.tmp_path / f"{kind}{self._n}"

    def cert_for(self, dns: list[str] | None = None, ips: list[str] | None = None) -> IssuedCert:
        self._n += 1
        return self.ca.issue(f"server{self._n}", dns=dns, ips=ips)

    def chrony_server(self, host: Host | None = None, cert: IssuedCert | None = None,
                      dns: list[str] | None = None, **kw: Any) -> ChronyServer:
        """chronyd NTS server in `host` (None: loopback with free ports), started.

        Default cert: issued by the test CA for `dns` (default ['localhost'] on loopback)
        plus the server's addresses as IP SANs. `kw` goes to ChronyServer
        (addresses, port, ntsport, stratum, extra_conf).
        """
        if cert is None:
            addrs = kw.get("addresses") or (host.addresses if host else ["127.0.0.1", "::1"])
            cert = self.cert_for(dns or ([] if host else ["localhost"]), list(addrs))
        server = ChronyServer(self._dir("chronyd"), cert, host=host, **kw)
        self.started.append(server)
        return server.start()

    def ntpsec_server(self, host: Host, cert: IssuedCert | None = None, dns: list[str] | None = None,
                      **kw: Any) -> NtpsecServer:
        """NTPsec ntpd NTS server in `host` (NTS-KE 4460, NTP 123 on every address), started.
        kw: orphan (default 6; None = unsynchronised stratum 0), extra_conf."""
        if cert is None:
            cert = self.cert_for(dns or [], list(host.addresses))
        server = NtpsecServer(self._dir("ntpd"), cert, host=host, **kw)
        self.started.append(server)
        return server.start()

    def chrony_client(self, host: Host, server_name: str, poll: int = 0, **kw: Any) -> ChronyClient:
        """chronyd NTS client in `host` of `server_name` trusting the test CA, started.
        kw: ca_path, port, ntsport, extra_conf, server_options."""
        kw.setdefault("ca_path", self.ca.cert_path)
        client = ChronyClient(self._dir("client"), host, server_name, poll=poll, **kw)
        self.started.append(client)
        return client.start()

    def stop_all(self) -> None:
        for daemon in reversed(self.started):
            daemon.stop()


@dataclass
class NtsLab:
    """Three namespaces on one bridge with a chronyd and an NTPsec NTS server.

    chrony_host 198.51.100.10 + 2001:db8::10 runs `chrony` (cert: chrony.nts.test + IPs);
    ntpsec_host 198.51.100.11 + 2001:db8::11 runs `ntpsec` (cert: ntpsec.nts.test + IPs);
    client_host 198.51.100.20 + 2001:db8::20 has /etc/hosts with
      chrony.nts.test -> 198.51.100.10, 2001:db8::10
      ntpsec.nts.test -> 198.51.100.11, 2001:db8::11
      half-dead.nts.test -> 198.51.100.10 (served), 198.51.100.99 (nobody)
    Run clients with `client_host.run([...])` / `client_host.exec_argv([...])`,
    or sockets from `client_host.socket()`.
    """

    network: Network
    chrony_host: Host
    ntpsec_host: Host
    client_host: Host
    chrony: ChronyServer
    ntpsec: NtpsecServer
    ca: TestCA
    daemons: Daemons
    dead_address: str = "198.51.100.99"

    @property
    def ca_path(self) -> Path:
        return self.ca.cert_path
