"""Smoke tests of the integration harness itself: real servers, real client, hostile peers."""

from __future__ import annotations

import subprocess
import time

import pytest
from harness.daemons import ChronyServer
from harness.lab import LAB_DOMAIN, Daemons, NtsLab
from harness.netns import Host, Network, rooted_subnets

pytestmark = pytest.mark.integration


def s_client(host: Host | None, address: str, port: int, servername: str, ca_path: str, *,
             extra: tuple[str, ...] = ("-tls1_3", "-alpn", "ntske/1")) -> subprocess.CompletedProcess[str]:
    """One `openssl s_client` handshake (stdin closed at once, bounded)."""
    connect = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    argv = ["openssl", "s_client", "-connect", connect, "-servername", servername, "-CAfile", ca_path,
            "-verify_return_error", *extra]
    if host is not None:
        argv = host.exec_argv(argv)
    return subprocess.run(argv, input="", capture_output=True, text=True, timeout=10, check=False)


def test_network_isolation_and_names(network: Network) -> None:
    a = network.add_host("a", ["198.51.100.1/24", "2001:db8::1/64"])
    b = network.add_host("b", ["198.51.100.2/24"], hosts={"two.nts.test": ["198.51.100.1", "198.51.100.99"]})
    out = b.run(["getent", "ahostsv4", "two.nts.test"]).stdout
    assert "198.51.100.1 " in out and "198.51.100.99 " in out
    assert "198.51.100.2/24" in b.ip("-o", "addr", "show", "dev", "eth0").stdout
    # the root namespace never gets the hosts' addresses
    root = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    assert "198.51.100." not in root and "2001:db8::1/" not in root
    # a subnet the root namespace itself uses is refused (its traffic could leave the machine)
    for cidr in rooted_subnets():
        with pytest.raises(ValueError, match="root namespace"):
            b.add_address(str(next(cidr.hosts())) + f"/{cidr.prefixlen}")
    listener = a.socket()
    listener.bind(("198.51.100.1", 4460))
    listener.listen()
    client = b.socket()
    client.settimeout(2)
    client.connect(("198.51.100.1", 4460))
    client.close()
    listener.close()


def test_chrony_loopback_serves_nts(chrony_loopback: ChronyServer, test_ca: object) -> None:
    srv = chrony_loopback
    result = s_client(None, "127.0.0.1", srv.ntsport, "localhost", str(srv.cert.ca_path))
    assert "Protocol  : TLSv1.3" in result.stdout or "TLSv1.3" in result.stdout, result.stdout + result.stderr
    assert "ALPN protocol: ntske/1" in result.stdout, result.stdout
    assert "Verify return code: 0 (ok)" in result.stdout
    stats = srv.serverstats()
    assert stats["NTS-KE connections accepted"] >= 1
    # restart keeps the same ports and answers again
    old_pid = srv.pid
    srv.restart()
    assert srv.pid != old_pid
    assert "ALPN protocol: ntske/1" in s_client(None, "127.0.0.1", srv.ntsport, "localhost",
                                                 str(srv.cert.ca_path)).stdout


@pytest.mark.parametrize("which", ["chrony", "ntpsec"])
def test_servers_handshake_tls13_alpn(nts_lab: NtsLab, which: str) -> None:
    server = nts_lab.chrony if which == "chrony" else nts_lab.ntpsec
    name = f"{which}.{LAB_DOMAIN}"
    for address in server.addresses:
        result = s_client(nts_lab.client_host, address, 4460, name, str(nts_lab.ca_path))
        assert "ALPN protocol: ntske/1" in result.stdout, result.stdout + result.stderr
        assert "Verify return code: 0 (ok)" in result.stdout
        assert "TLSv1.3" in result.stdout
    # both refuse TLS 1.2 (nts-facts 4)
    result = s_client(nts_lab.client_host, server.address, 4460, name, str(nts_lab.ca_path),
                      extra=("-tls1_2", "-alpn", "ntske/1"))
    assert "Cipher is (NONE)" in result.stdout or result.returncode != 0


@pytest.mark.parametrize("which", ["chrony", "ntpsec"])
def test_chrony_client_syncs_over_nts(nts_lab: NtsLab, daemons: Daemons, which: str) -> None:
    start = time.monotonic()
    client = daemons.chrony_client(nts_lab.client_host, f"{which}.{LAB_DOMAIN}", poll=0)
    row = client.wait_synced(timeout=15, min_reach=2)
    assert row["stratum"] == ("3" if which == "chrony" else "6")
    auth = client.authdata()
    assert len(auth) == 1
    assert auth[0]["mode"] == "NTS"
    assert auth[0]["key_type"] == "15"
    assert int(auth[0]["cookies"]) >= 7
    assert int(auth[0]["nak"]) == 0
    assert time.monotonic() - start < 15
    if which == "chrony":
        stats = nts_lab.chrony.serverstats()
        assert stats["NTS-KE connections accepted"] >= 1
        assert stats["Authenticated NTP packets"] >= 2
