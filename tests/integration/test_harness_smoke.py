"""Smoke tests of the integration harness itself: real servers, real client, hostile peers."""

from __future__ import annotations

import datetime
import os
import socket
import struct
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness import ntswire
from harness.ca import TestCA
from harness.daemons import ChronyServer
from harness.hostile import UNKNOWN_CRITICAL_TYPE, WRONG_NAME, HostileServer
from harness.lab import LAB_DOMAIN, Daemons, NtsLab
from harness.netns import (
    ETC_NETNS,
    PREFIX,
    PROCESS_REGISTRY,
    Host,
    Network,
    delete_namespace,
    reap_leftovers,
    rooted_subnets,
)
from OpenSSL import SSL

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
    handshake = s_client(None, "127.0.0.1", srv.ntsport, "localhost", str(srv.cert.ca_path))
    assert "ALPN protocol: ntske/1" in handshake.stdout


@pytest.mark.parametrize("which", ["chrony", "ntpsec"])
def test_servers_handshake_tls13_alpn(nts_lab: NtsLab, which: str) -> None:
    server = nts_lab.chrony if which == "chrony" else nts_lab.ntpsec
    name = f"{which}.{LAB_DOMAIN}"
    for address in server.addresses:
        result = s_client(nts_lab.client_host, address, 4460, name, str(nts_lab.ca_path))
        assert "ALPN protocol: ntske/1" in result.stdout, result.stdout + result.stderr
        assert "Verify return code: 0 (ok)" in result.stdout
        assert "TLSv1.3" in result.stdout
    # both refuse TLS 1.2 (both require TLS 1.3, RFC 8915 section 3)
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


# ---------------------------------------------------------------- hostile peers

def _ke(server: HostileServer, name: str = "localhost", ca: TestCA | None = None, timeout: float = 2.0,
        **kw: Any) -> ntswire.KeResult:
    ca_path = str((ca or server.ca).cert_path)
    sock = server.host.socket() if server.host else socket.socket()
    return ntswire.ke_client(sock, server.address, server.port, name, ca_path, timeout=timeout, **kw)


def _ntp(server: HostileServer, ke: ntswire.KeResult, timeout: float = 1.0) -> ntswire.NtpReply:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    return ntswire.ntp_client(sock, server.address, ke.port or 123, cookie=ke.cookies[0], c2s=ke.c2s,
                              s2c=ke.s2c, timeout=timeout)


def test_hostile_good_is_a_correct_nts_server(hostile: Callable[..., HostileServer]) -> None:
    server = hostile("good")
    ke = _ke(server)
    assert ke.alpn == b"ntske/1" and ke.tls_version == "TLSv1.3"
    assert len(ke.cookies) == 8 and ke.port == server.ntp_port and not ke.errors
    reply = _ntp(server, ke)
    assert reply.authenticated and not reply.nak and reply.stratum == 2 and len(reply.cookies) == 1
    assert server.errors == []


def test_hostile_refuse(hostile: Callable[..., HostileServer]) -> None:
    server = hostile("refuse")
    with pytest.raises(ConnectionRefusedError):
        _ke(server)


def test_hostile_silent(hostile: Callable[..., HostileServer]) -> None:
    server = hostile("silent")
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        _ke(server, timeout=0.5)
    assert time.monotonic() - start < 2
    assert server.stats.tcp_accepted == 1 and server.stats.handshakes == 0


def test_hostile_tls12_only(hostile: Callable[..., HostileServer]) -> None:
    server = hostile("tls12_only")
    with pytest.raises(SSL.Error):
        _ke(server)
    # it does speak TLS 1.2, which is what makes it a TLS 1.2-only server
    ke = _ke(server, tls12=True)
    assert ke.tls_version == "TLSv1.2" and server.stats.handshakes == 1


def test_hostile_no_alpn(hostile: Callable[..., HostileServer]) -> None:
    ke = _ke(hostile("no_alpn"))
    assert ke.alpn is None and ke.tls_version == "TLSv1.3" and len(ke.cookies) == 8


def test_hostile_untrusted_ca(hostile: Callable[..., HostileServer], untrusted_ca: TestCA) -> None:
    server = hostile("untrusted_ca")
    with pytest.raises(SSL.Error, match="certificate verify failed"):
        _ke(server)
    assert len(_ke(server, ca=untrusted_ca).cookies) == 8


def test_hostile_wrong_name(hostile: Callable[..., HostileServer]) -> None:
    server = hostile("wrong_name")
    with pytest.raises(ntswire.WireError, match="does not match"):
        _ke(server)
    assert len(_ke(server, name=WRONG_NAME).cookies) == 8


def test_hostile_expired_cert(hostile: Callable[..., HostileServer]) -> None:
    server = hostile("expired_cert")
    with pytest.raises(SSL.Error, match="certificate verify failed"):
        _ke(server)
    assert server.cert is not None and server.cert.not_after < datetime.datetime.now(datetime.UTC)


def test_hostile_error_record(hostile: Callable[..., HostileServer]) -> None:
    ke = _ke(hostile("error_record", error_code=2))
    assert ke.errors == [2] and not ke.cookies and ke.records[-1].rtype == ntswire.END_OF_MESSAGE


def test_hostile_unknown_critical_record(hostile: Callable[..., HostileServer]) -> None:
    ke = _ke(hostile("unknown_critical_record"))
    assert any(r.critical and r.rtype == UNKNOWN_CRITICAL_TYPE for r in ke.records)


def test_hostile_truncated_record(hostile: Callable[..., HostileServer]) -> None:
    ke = _ke(hostile("truncated_record"))
    assert ke.closed_cleanly and not ke.cookies
    assert [r.rtype for r in ke.records] == [ntswire.NEXT_PROTOCOL, ntswire.AEAD_ALGORITHM]
    assert len(ke.leftover) >= 4
    assert struct.unpack_from("!HH", ke.leftover)[1] > len(ke.leftover) - 4


def test_hostile_length_overrun(hostile: Callable[..., HostileServer]) -> None:
    ke = _ke(hostile("length_overrun"))
    assert ke.closed_cleanly
    assert struct.unpack_from("!HH", ke.leftover) == (ntswire.NEW_COOKIE, 1000) and len(ke.leftover) == 14


def test_hostile_never_ending_records(hostile: Callable[..., HostileServer]) -> None:
    server = hostile("never_ending_records")
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        _ke(server, timeout=1.0)
    assert time.monotonic() - start < 2.5
    sent = server.stats.records_sent
    assert sent >= 10  # it kept sending valid records the whole second
    time.sleep(0.5)  # the client hung up: the peer notices and stops sending
    assert server.stats.records_sent <= sent + 2


def test_hostile_no_cookies(hostile: Callable[..., HostileServer]) -> None:
    ke = _ke(hostile("no_cookies"))
    assert [r.rtype for r in ke.records] == [ntswire.NEXT_PROTOCOL, ntswire.AEAD_ALGORITHM, ntswire.END_OF_MESSAGE]


def test_hostile_bad_authenticator(hostile: Callable[..., HostileServer]) -> None:
    server = hostile("bad_authenticator")
    with pytest.raises(ntswire.WireError, match="does not verify"):
        _ntp(server, _ke(server))
    assert server.stats.ntp_replies == 1


def test_hostile_nts_nak(hostile: Callable[..., HostileServer]) -> None:
    reply = _ntp(server := hostile("nts_nak"), _ke(server))
    assert reply.nak and not reply.authenticated and reply.stratum == 0 and reply.refid == b"NTSN"


def test_hostile_silent_ntp(hostile: Callable[..., HostileServer]) -> None:
    server = hostile("silent_ntp")
    ke = _ke(server)
    with pytest.raises(TimeoutError):
        _ntp(server, ke, timeout=0.5)
    assert server.stats.ntp_requests == 1 and server.stats.ntp_replies == 0


def test_hostile_good_in_namespace_serves_real_chrony_client(
        network: Network, daemons: Daemons, hostile: Callable[..., HostileServer]) -> None:
    """Cross-check of the harness's own NTS code: real chronyd accepts its KE and NTP."""
    peer = network.add_host("peer", ["198.51.100.30/24"])
    client = network.add_host("client", ["198.51.100.31/24"], hosts={"peer.nts.test": ["198.51.100.30"]})
    server = hostile("good", host=peer, port=4460, ntp_port=123, name="peer.nts.test")
    chronyd = daemons.chrony_client(client, "peer.nts.test", poll=0)
    row = chronyd.wait_synced(timeout=15, min_reach=2)
    assert row["stratum"] == "2"
    auth = chronyd.authdata()[0]
    assert auth["mode"] == "NTS" and int(auth["cookies"]) >= 7
    assert server.stats.ke_requests == 1 and server.stats.ntp_replies >= 2 and server.errors == []


def test_daemons_cannot_set_the_clock(nts_lab: NtsLab, daemons: Daemons) -> None:
    """CAP_SYS_TIME (bit 25) is absent from every daemon's effective and bounding sets."""
    client = daemons.chrony_client(nts_lab.client_host, f"chrony.{LAB_DOMAIN}")
    for daemon in (nts_lab.chrony, nts_lab.ntpsec, client):
        status = Path(f"/proc/{daemon.pid}/status").read_text()
        caps = {k: int(v, 16) for k, v in (line.split(":\t") for line in status.splitlines() if line.startswith("Cap"))}
        assert not caps["CapEff"] & (1 << 25) and not caps["CapBnd"] & (1 << 25), (daemon, caps)


def test_sixteen_chrony_servers_in_one_namespace(network: Network, daemons: Daemons) -> None:
    """The pattern for multi-address tests: one chronyd per address, all on 4460/123."""
    servers_host = network.add_host("servers", [f"198.51.100.{40 + i}/24" for i in range(16)])
    client = network.add_host("client", ["198.51.100.20/24"],
                              hosts={"many.nts.test": servers_host.addresses})
    servers = [daemons.chrony_server(servers_host, addresses=[a], dns=["many.nts.test"])
               for a in servers_host.addresses]
    for server in servers:
        ke = ntswire.ke_client(client.socket(), server.address, 4460, "many.nts.test",
                               str(daemons.ca.cert_path), timeout=2)
        assert len(ke.cookies) == 8 and ke.port is None


def test_reaper_removes_leftovers_of_a_dead_run(reaped_leftovers: list[str]) -> None:
    dead_pid = 4_000_000  # above any pid this machine hands out (pid_max is lower)
    assert int(Path("/proc/sys/kernel/pid_max").read_text()) <= dead_pid
    ns = f"{PREFIX}{dead_pid}-1-crashed"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    (ETC_NETNS / ns).mkdir(parents=True, exist_ok=True)
    sleeper = subprocess.Popen(["ip", "netns", "exec", ns, "sleep", "60"])
    try:
        time.sleep(0.1)
        assert ns in reap_leftovers()
        assert sleeper.wait(5) is not None
        assert not (ETC_NETNS / ns).exists() and ns not in subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
        delete_namespace(ns)


def test_reaper_stops_loopback_daemons_of_a_dead_run(chrony_loopback: ChronyServer) -> None:
    """A loopback chronyd registered by an owner that died is stopped by the reaper."""
    pid = chrony_loopback.pid
    assert pid is not None
    registered = PROCESS_REGISTRY / f"{os.getpid()}-{pid}"
    assert registered.read_bytes() == Path(f"/proc/{pid}/cmdline").read_bytes()
    # pretend the owner crashed: move the record to a pid that is not running
    orphan = PROCESS_REGISTRY / f"4000000-{pid}"
    registered.rename(orphan)
    assert f"pid {pid}" in reap_leftovers()
    assert not orphan.exists() and not chrony_loopback.alive()


def test_chrony_restart_keeps_or_drops_cookie_keys(chrony_loopback: ChronyServer) -> None:
    srv = chrony_loopback
    ke = ntswire.ke_client(socket.socket(), "127.0.0.1", srv.ntsport, "localhost", str(srv.cert.ca_path))
    assert ke.port == srv.port  # Port Negotiation, since the loopback server is not on 123

    def ntp(cookie: bytes) -> ntswire.NtpReply:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        return ntswire.ntp_client(sock, "127.0.0.1", srv.port, cookie=cookie, c2s=ke.c2s, s2c=ke.s2c)

    assert ntp(ke.cookies[0]).authenticated
    srv.restart()
    assert ntp(ke.cookies[1]).authenticated  # keys saved in ntsdumpdir survive
    srv.restart(drop_keys=True)
    reply = ntp(ke.cookies[2])
    assert reply.nak and not reply.authenticated
