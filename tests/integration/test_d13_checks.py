"""endpoint_check, cert_check and `ntsops check` against Debian 13's daemons: chronyd 4.6.1,
NTPsec 1.2.3 ntpd and ntpd-rs 1.4.0 ntp-daemon as NTS servers, over IPv4 and IPv6.

Debian 13's daemons need glibc 2.38, which a Debian 12 host lacks, so each server runs in
a container of the Debian 13 image (packages installed from the image's apt cache, no
download) on a podman network this module creates: internal, dual stack, 198.18.6.0/24
and 2001:db8:6::/64. No daemon can touch the clock: every container drops CAP_SYS_TIME,
chronyd runs with -x, ntpd with the kernel and NTP disciplines disabled, and ntp-daemon
with no time source at all, so it answers unsynchronised (leap 3, stratum 16, refid XNON)
and the checks must say exactly that.

The checks run on this host's code (the venv's ansible and `ntsops`) inside a network
namespace of the harness (tests/integration/harness/netns.py) whose hub bridge is wired to
the podman bridge by one veth pair, so the root namespace gets no address or route and
the namespace's own /etc/hosts resolves the servers' names to both families. The
containers are shared by every test here and removed at the end, also on failure.

A further container runs chronyd 4.6.1 with `ntsaeads 30` (AES-128-GCM-SIV only). The AEAD,
cookie and record-order tests pin what Debian 13's servers send, and where it differs from
chrony 4.3 and NTPsec 1.2.2 on Debian 12. ntp-daemon has two more NTS-KE listeners, one
negotiating NTP port 1123 and one port 123, for its Port Negotiation record.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ansible_adhoc import run_module
from harness import ntswire
from harness.ca import IssuedCert, TestCA
from harness.daemons import wait_ntp_stratum, wait_tcp
from harness.netns import Host, Network
from harness.podman import podman, podman_result

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
IMAGE = "localhost/ntsops/debian13-systemd:latest"
NETWORK = "ntsops-d13checks"
LABEL = "owner=ntsops-d13checks"
NET4 = "198.18.6"  # .0/24
NET6 = "2001:db8:6:"  # :/64
CLIENT_OCTET = 20
DOMAIN = "d13.test"
NTSOPS = [sys.executable, "-m", "ntsops_cli"]
CERT_DAYS = 47  # not the CA's default 90: the days left the checks report come from this certificate
READY_TIMEOUT_S = 60.0
# kind, daemon, Debian 13 version, host octet of both addresses, stratum it answers
SERVER_PLAN = (
    ("chrony", "chrony", "4.6.1", 10, 3),
    ("ntpsec", "ntpsec", "1.2.3", 11, 6),
    ("chrony-gcm", "chrony", "4.6.1", 12, 4),
    ("ntpdrs", "ntpd-rs", "1.4.0", 13, 16),  # RFC 5905 stratum 16: unsynchronised
)
# ntp-daemon's NTS-KE listeners: port -> the NTP port its `ntp-port` negotiates (None: no
# `ntp-port`, so no Port Negotiation record).
NTPDRS_KE_PORTS = {4460: None, 4461: 1123, 4462: 123}
NTPDRS_UNSYNCHRONISED = "is not synchronised (leap 3, stratum 16, refid XNON)"
# Debian's packages come from the image's /var/cache/apt/archives (the network is internal),
# as in benchmarks/recovery_d13.py; /run/chrony holds chronyd's command socket.
INSTALL = (
    "mkdir -p -m 0700 /run/chrony; apt-get install -y -q --no-download {pkg} >/tmp/install.log 2>&1 "
    "|| {{ cat /tmp/install.log; exit 1; }}; "
)


@dataclass(frozen=True)
class D13Server:
    """One NTS server container: its daemon, addresses, certificate and the stratum it answers."""

    kind: str  # chrony, ntpsec, chrony-gcm (chronyd with `ntsaeads 30`) or ntpdrs
    daemon: str  # chrony, ntpsec or ntpd-rs
    version: str  # the Debian 13 package's upstream version
    container: str
    ipv4: str
    ipv6: str
    stratum: int
    cert: IssuedCert

    @property
    def name(self) -> str:
        return f"{self.kind}.{DOMAIN}"

    def address(self, family: str) -> str:
        return self.ipv4 if family == "ipv4" else self.ipv6


@dataclass(frozen=True)
class D13Lab:
    client: Host
    servers: dict[str, D13Server]
    ca: TestCA

    @property
    def ca_path(self) -> str:
        return str(self.ca.cert_path)


def remove_rig() -> None:
    """Remove this module's containers (by label) and network (by name), left over or not."""
    names = podman("ps", "-a", "--filter", f"label={LABEL}", "--format", "{{.Names}}", check=False).split()
    if names:
        podman("rm", "-f", "-t", "2", *names, check=False, timeout=120)
    podman("network", "rm", "-f", NETWORK, check=False)


def chrony_conf(server: D13Server) -> str:
    return "\n".join([
        "cmdport 0",
        "bindcmdaddress /run/chrony/chronyd.sock",
        "pidfile /run/chrony/chronyd.pid",
        "driftfile /run/chrony.drift",
        "ntsdumpdir /var/lib/chrony",
        f"ntsservercert /conf/{server.kind}.crt",
        f"ntsserverkey /conf/{server.kind}.key",
        f"local stratum {server.stratum}",
        "allow all",
        *(["ntsaeads 30"] if server.kind == "chrony-gcm" else []),
    ]) + "\n"


def ntpsec_conf(server: D13Server) -> str:
    # As harness.daemons.NtpsecServer: no clock discipline at all, orphan stratum at once.
    return "\n".join([
        "disable kernel",
        "disable ntp",
        "driftfile /run/ntp.drift",
        "nts enable",
        f"nts cert /conf/{server.kind}.crt",
        f"nts key /conf/{server.kind}.key",
        "nts cookie /run/ntskeys",
        "restrict default nomodify noquery",
        "restrict 127.0.0.1",
        "restrict ::1",
        f"tos orphan {server.stratum} orphanwait 0",
    ]) + "\n"


def ntpdrs_toml(server: D13Server) -> str:
    # Keys as ntpd-rs 1.4.0 reads them (ntpd/src/daemon/config/server.rs). No [[source]]:
    # ntp-daemon then never adjusts the clock and answers stratum 16 / leap 3 / XNON. [::]
    # takes IPv4 too (ntp-daemon sets no IPV6_V6ONLY).
    lines = [
        "[observability]",
        'log-level = "info"',
        "ansi-colors = false",
        'observation-path = "/run/ntpd-rs/observe"',
    ]
    for ntp_port in sorted({123, *(p for p in NTPDRS_KE_PORTS.values() if p is not None)}):
        lines += ["", "[[server]]", f'listen = "[::]:{ntp_port}"']
    for ke_port, ntp_port in NTPDRS_KE_PORTS.items():
        lines += [
            "",
            "[[nts-ke-server]]",
            f'listen = "[::]:{ke_port}"',
            f'certificate-chain-path = "/conf/{server.kind}.crt"',
            f'private-key-path = "/conf/{server.kind}.key"',
            *([f"ntp-port = {ntp_port}"] if ntp_port is not None else []),
        ]
    lines += ["", "[keyset]", 'key-storage-path = "/var/lib/ntpd-rs/nts-keys"']
    return "\n".join(lines) + "\n"


def config_text(server: D13Server) -> str:
    return {"chrony": chrony_conf, "ntpsec": ntpsec_conf, "ntpd-rs": ntpdrs_toml}[server.daemon](server)


def start_script(server: D13Server) -> str:
    if server.daemon == "chrony":
        # -x: never touch the clock; -u root: the container has no CAP_SYS_TIME to keep anyway
        return INSTALL.format(pkg="chrony") + f"exec chronyd -d -x -u root -f /conf/{server.kind}.conf"
    if server.daemon == "ntpd-rs":
        # Outside systemd (RuntimeDirectory=) the package makes neither directory; as root,
        # since the unit's User=ntpd-rs comes with AmbientCapabilities=CAP_SYS_TIME, which
        # this container must never have.
        return (INSTALL.format(pkg="ntpd-rs") + "mkdir -p /run/ntpd-rs /var/lib/ntpd-rs; "
                f"exec ntp-daemon -c /conf/{server.kind}.conf")
    # as root: ntpd -u exits without CAP_SYS_TIME (nts-facts section 3)
    return INSTALL.format(pkg="ntpsec") + "exec ntpd -n -c /conf/ntpsec.conf -p /run/ntpd.pid -l /run/ntpd.log"


def daemon_log(server: D13Server) -> str:
    text = podman("logs", server.container, check=False)
    if server.daemon == "ntpsec":
        text += podman("exec", server.container, "cat", "/run/ntpd.log", check=False)
    return text


def attach_to_podman_bridge(network: Network, bridge: str) -> None:
    """Wire the harness hub's bridge to podman's bridge with one veth pair.

    Made inside the hub namespace with its peer sent to the root namespace (`netns 1`), so
    deleting the hub removes both ends; the root end carries no address.
    """
    peer = f"nd13c{os.getpid() % 1_000_000}"  # at most 11 characters, unique per run
    hub = network.hub
    subprocess.run(["ip", "-n", hub, "link", "add", "uplink", "type", "veth", "peer", "name", peer, "netns", "1"],
                   check=True, capture_output=True, timeout=20)
    subprocess.run(["ip", "link", "set", peer, "master", bridge, "up"], check=True, capture_output=True, timeout=20)
    subprocess.run(["ip", "-n", hub, "link", "set", "uplink", "master", "br0", "up"],
                   check=True, capture_output=True, timeout=20)


def wait_ready(lab: D13Lab) -> None:
    """NTS-KE accepts and NTP answers with the configured stratum, on both families of every server."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    for server in lab.servers.values():
        ntpdrs = server.daemon == "ntpd-rs"
        try:
            for address in (server.ipv4, server.ipv6):
                for ke_port in NTPDRS_KE_PORTS if ntpdrs else [4460]:
                    wait_tcp(address, ke_port, lab.client, timeout=max(1.0, deadline - time.monotonic()))
                # ntp-daemon without a source never claims a stratum below 16.
                stratum = wait_ntp_stratum(lab.client, address, 123, deadline, unsynchronised_ok=ntpdrs)
                if stratum != server.stratum:
                    raise AssertionError(f"{server.container} answers stratum {stratum}, not {server.stratum}")
        except (TimeoutError, AssertionError) as exc:
            raise AssertionError(f"{server.container} not ready: {exc}\n{daemon_log(server)}") from exc


def _skip_unless_usable() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (podman, network namespaces)")
    if shutil.which("podman") is None:
        pytest.skip("needs podman")
    if podman_result("image", "exists", IMAGE).returncode != 0:
        pytest.skip(f"needs the Debian 13 image {IMAGE} (scripts/build-image.sh builds it)")


@pytest.fixture(scope="module")
def d13(reaped_leftovers: list[str], test_ca: TestCA,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[D13Lab]:
    """The Debian 13 servers (SERVER_PLAN) answering on both families, and the client namespace."""
    _skip_unless_usable()
    conf = tmp_path_factory.mktemp("d13conf")
    conf.chmod(0o755)
    servers: dict[str, D13Server] = {}
    for kind, daemon, version, host_octet, stratum in SERVER_PLAN:
        ipv4, ipv6 = f"{NET4}.{host_octet}", f"{NET6}:{host_octet}"
        cert = test_ca.issue(f"d13-{kind}", dns=[f"{kind}.{DOMAIN}"], ips=[ipv4, ipv6], days=CERT_DAYS)
        server = D13Server(kind, daemon, version, f"{NETWORK}-{kind}", ipv4, ipv6, stratum, cert)
        servers[kind] = server
        shutil.copy(cert.chain_path, conf / f"{kind}.crt")
        shutil.copy(cert.key_path, conf / f"{kind}.key")
        (conf / f"{kind}.conf").write_text(config_text(server))

    remove_rig()
    try:
        podman("network", "create", "--internal", "--ipv6", "--subnet", f"{NET4}.0/24", "--subnet", f"{NET6}:/64",
               "--label", LABEL, NETWORK)
        bridge = json.loads(podman("network", "inspect", NETWORK))[0]["network_interface"]
        for server in servers.values():
            podman("run", "-d", "--name", server.container, "--label", LABEL, "--network", NETWORK,
                   "--ip", server.ipv4, "--ip6", server.ipv6, "--cap-drop", "SYS_TIME",
                   "--volume", f"{conf}:/conf:ro", "--pull", "never", IMAGE, "sh", "-c", start_script(server))
        with Network() as network:
            hosts = {server.name: [server.ipv4, server.ipv6] for server in servers.values()}
            client = network.add_host("d13client", [f"{NET4}.{CLIENT_OCTET}/24", f"{NET6}:{CLIENT_OCTET}/64"],
                                      hosts=hosts)
            attach_to_podman_bridge(network, bridge)
            lab = D13Lab(client, servers, test_ca)
            wait_ready(lab)
            yield lab
    finally:
        remove_rig()


def expected_days_left(server: D13Server) -> int:
    return (server.cert.not_after - datetime.datetime.now(datetime.UTC)).days


def expected_problems(server: D13Server, address: str) -> list[str]:
    """What the check must report: nothing, or for ntp-daemon (no source) that it is not
    synchronised, with the refid as text."""
    if server.daemon == "ntpd-rs":
        return [f"{address}: NTP server {address} {NTPDRS_UNSYNCHRONISED}"]
    return []


def assert_served_as_debian13(entry: dict[str, Any], server: D13Server, address: str) -> None:
    """One address's endpoint_check entry: TLS 1.3, ntske/1, the server's certificate,
    8 cookies for AES-SIV-CMAC-256 and an NTS-protected NTP answer with the server's stratum
    (ntp-daemon's unsynchronised one reported as the only problem)."""
    assert entry["problems"] == expected_problems(server, address)
    assert entry["ok"] is (not entry["problems"])
    assert entry["address"] == address
    assert entry["tls"]["version"] == "TLSv1.3"
    assert entry["tls"]["alpn"] == "ntske/1"
    assert entry["cert"]["sha256"] == server.cert.sha256
    assert entry["cert"]["days_left"] == expected_days_left(server)
    assert f"DNS:{server.name}" in entry["cert"]["sans"]
    ke = entry["ke"]
    assert ke["cookies"] == 8
    assert ke["aead"] == 15
    assert ke["errors"] == [] and ke["warnings"] == []
    # Port 123 and no Server Negotiation: the NTP exchange goes to the NTS-KE address.
    assert ke["server"] is None and ke["port"] is None
    ntp = entry["ntp"]
    assert ntp["address"] == address and ntp["port"] == 123
    assert ntp["authenticated"] is True
    assert ntp["nak"] is False
    assert ntp["stratum"] == server.stratum
    if server.daemon == "ntpd-rs":
        assert (ntp["leap"], ntp["refid"]) == (3, "XNON")
    else:
        assert ntp["leap"] != 3
    assert ntp["cookies"] >= 1
    assert abs(ntp["offset"]) < 1.0


def ntsops_check(lab: D13Lab, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(lab.client.exec_argv([*NTSOPS, "check", *args, "--ca", lab.ca_path]), cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)


def prometheus_samples(text: str) -> dict[tuple[str, str | None], float]:
    samples = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.match(r'^(\w+)\{name="[^"]*"(?:,address="([^"]*)")?\} (\S+)$', line)
        assert match, line
        samples[(match.group(1), match.group(2))] = float(match.group(3))
    return samples


SERVERS = ["chrony", "ntpsec", "ntpdrs"]  # the default configurations; chrony-gcm has its own tests below
FAMILIES = ["ipv4", "ipv6"]


# ------------------------------------------------------------------ endpoint_check


@pytest.mark.parametrize("kind", SERVERS)
def test_endpoint_check_by_name_checks_both_families(d13, kind):
    server = d13.servers[kind]
    run = run_module("endpoint_check", {"name": server.name, "ca_path": d13.ca_path},
                     prefix=d13.client.exec_argv([]))
    expected = sorted(p for address in (server.ipv4, server.ipv6) for p in expected_problems(server, address))
    assert sorted(run.result["problems"]) == expected, run.result.get("msg")
    assert run.failed is bool(expected)
    assert run.result["ok"] is (not expected) and run.result["changed"] is False
    by_address = {entry["address"]: entry for entry in run.result["addresses"]}
    assert sorted(by_address) == sorted([server.ipv4, server.ipv6])
    for address, entry in by_address.items():
        assert_served_as_debian13(entry, server, address)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kind", SERVERS)
def test_endpoint_check_by_address(d13, kind, family):
    server = d13.servers[kind]
    address = server.address(family)
    # An address as the name: the certificate's IP SAN must cover it, no SNI is sent.
    run = run_module("endpoint_check", {"name": address, "ca_path": d13.ca_path}, prefix=d13.client.exec_argv([]))
    assert run.result["problems"] == expected_problems(server, address), run.result.get("msg")
    assert run.failed is bool(run.result["problems"])
    assert [entry["address"] for entry in run.result["addresses"]] == [address]
    assert_served_as_debian13(run.result["addresses"][0], server, address)


# ------------------------------------------------------------------ cert_check


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kind", SERVERS)
def test_cert_check_file_is_what_each_family_serves(d13, kind, family):
    server = d13.servers[kind]
    address = server.address(family)
    served = f"[{address}]:4460" if family == "ipv6" else f"{address}:4460"
    run = run_module("cert_check", {
        "cert_path": str(server.cert.chain_path),
        "key_path": str(server.cert.key_path),
        "ca_path": d13.ca_path,
        "names": [server.name, server.ipv4, server.ipv6],
        "served": served,
    }, prefix=d13.client.exec_argv([]))
    assert not run.failed, run.result.get("msg")
    assert run.result["ok"] is True and run.result["problems"] == []
    assert run.result["served_matches"] is True
    assert run.result["served_sha256"] == server.cert.sha256
    assert run.result["chain_length"] == 2
    assert run.result["cert"]["days_left"] == expected_days_left(server)


# ------------------------------------------------------------------ ntsops check


@pytest.mark.parametrize("kind", SERVERS)
def test_ntsops_check_by_name_in_every_format(d13, kind):
    server = d13.servers[kind]
    addresses = sorted([server.ipv4, server.ipv6])

    # ntp-daemon with no source: CRITICAL, for that reason alone
    unsynchronised = server.daemon == "ntpd-rs"
    status, code, ok = ("CRITICAL", 2, 0) if unsynchronised else ("OK", 0, 2)

    nagios = ntsops_check(d13, server.name, "--nagios")
    assert nagios.returncode == code, nagios.stdout + nagios.stderr
    assert nagios.stdout.startswith(f"NTS {status} - {server.name}: {ok}/2 addresses ok")
    for address in addresses:
        assert f"'{address} cookies'=8" in nagios.stdout
        assert (f"NTP server {address} {NTPDRS_UNSYNCHRONISED}" in nagios.stdout) is unsynchronised

    as_json = ntsops_check(d13, server.name, "--json")
    assert as_json.returncode == code, as_json.stdout + as_json.stderr
    result = json.loads(as_json.stdout)
    assert result["status"] == status
    assert sorted(entry["address"] for entry in result["addresses"]) == addresses
    for entry in result["addresses"]:
        assert_served_as_debian13(entry, server, entry["address"])

    prom = ntsops_check(d13, server.name, "--prometheus")
    assert prom.returncode == code, prom.stdout + prom.stderr
    samples = prometheus_samples(prom.stdout)
    assert samples[("ntsops_nts_check_status", None)] == code
    for address in addresses:
        assert samples[("ntsops_nts_up", address)] == (0 if unsynchronised else 1)
        assert samples[("ntsops_nts_problems", address)] == len(expected_problems(server, address))
        assert samples[("ntsops_nts_ntp_stratum", address)] == server.stratum
        assert samples[("ntsops_nts_authenticated", address)] == 1
        assert samples[("ntsops_nts_cookies", address)] == 8
        assert samples[("ntsops_nts_cert_days_left", address)] == expected_days_left(server)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kind", SERVERS)
def test_ntsops_check_by_address(d13, kind, family):
    server = d13.servers[kind]
    address = server.address(family)
    run = ntsops_check(d13, address, "--json")
    unsynchronised = server.daemon == "ntpd-rs"
    assert run.returncode == (2 if unsynchronised else 0), run.stdout + run.stderr
    result = json.loads(run.stdout)
    assert result["status"] == ("CRITICAL" if unsynchronised else "OK")
    assert [entry["address"] for entry in result["addresses"]] == [address]
    assert_served_as_debian13(result["addresses"][0], server, address)


# ------------------------------------------------------------------ the daemons are Debian 13's


@pytest.mark.parametrize("kind", [plan[0] for plan in SERVER_PLAN])
def test_servers_run_debian13_daemons(d13, kind):
    server = d13.servers[kind]
    if server.daemon == "ntpd-rs":
        # ntp-daemon prints its version on stderr, nothing on stdout
        assert podman("exec", server.container, "ntp-daemon", "--version") == ""
        version = podman("exec", server.container, "sh", "-c", "ntp-daemon --version 2>&1")
        assert version.startswith(f"ntp-daemon {server.version}\n"), version
        return
    binary = "chronyd" if server.daemon == "chrony" else "ntpd"
    version = podman("exec", server.container, binary, "--version")
    if server.daemon == "chrony":
        expected = f"chronyd (chrony) version {server.version} "
    else:
        expected = f"ntpd ntpsec-{server.version}"
    assert version.startswith(expected), version


# ------------------------------------------------------------------ AEAD choice, cookies and record order
# Facts about Debian 13's servers (see each test); chrony 4.3 and NTPsec 1.2.2 differ where noted.

AES_SIV_CMAC_256, AES_SIV_CMAC_384, AES_128_GCM_SIV = 15, 16, 30


def endpoint_ke(lab: D13Lab, server: D13Server, aead: list[int], ntp: bool = True) -> dict[str, Any]:
    """endpoint_check over IPv4 with `aead` offered in that order; the registered result."""
    run = run_module("endpoint_check", {"name": server.name, "addresses": [server.ipv4], "ca_path": lab.ca_path,
                                        "aead": aead, "ntp_exchange": ntp}, prefix=lab.client.exec_argv([]))
    return run.result


@pytest.mark.parametrize(("aead", "chosen"), [([AES_128_GCM_SIV, AES_SIV_CMAC_256], AES_128_GCM_SIV),
                                              ([AES_SIV_CMAC_256, AES_128_GCM_SIV], AES_SIV_CMAC_256)])
def test_chrony_46_picks_the_clients_first_aead_it_enables(d13, aead, chosen):
    # chrony 4.6.1 enables `ntsaeads 30 15` by default and takes the first id of the client's
    # list that it enables (nts_ke_server.c process_request); 4.3 knows only 15.
    result = endpoint_ke(d13, d13.servers["chrony"], aead, ntp=False)
    assert not result.get("failed"), result.get("msg")
    ke = result["addresses"][0]["ke"]
    assert ke["aead"] == chosen and ke["cookies"] == 8
    # Cookie: key id 4 + nonce 12 + the two session keys + tag 16, sealed with AES-128-GCM-SIV
    # (4.3: AES-SIV-CMAC-256 with a 16-byte nonce, 100 bytes for AEAD 15).
    assert ke["cookie_sizes"] == ([64] if chosen == AES_128_GCM_SIV else [96])


@pytest.mark.parametrize(("aead", "chosen", "cookie"), [([AES_128_GCM_SIV, AES_SIV_CMAC_256], AES_SIV_CMAC_256, 104),
                                                        ([AES_SIV_CMAC_384, AES_SIV_CMAC_256], AES_SIV_CMAC_384, 136)])
def test_ntpsec_123_offers_only_aes_siv_cmac(d13, aead, chosen, cookie):
    # As 1.2.2: no AES-GCM-SIV; the client's first AES-SIV-CMAC id wins and time flows with it.
    result = endpoint_ke(d13, d13.servers["ntpsec"], aead)
    assert not result.get("failed"), result.get("msg")
    entry = result["addresses"][0]
    assert entry["ke"]["aead"] == chosen
    assert entry["ke"]["cookie_sizes"] == [cookie]
    assert entry["ntp"]["authenticated"] is True and entry["ntp"]["stratum"] == d13.servers["ntpsec"].stratum


def test_ntpsec_123_answers_aes_siv_cmac_256_when_only_gcm_siv_is_offered(d13):
    # Not in the client's list (RFC 8915 section 4.1.5 says the server chooses from it); the check says so.
    result = endpoint_ke(d13, d13.servers["ntpsec"], [AES_128_GCM_SIV])
    assert result.get("failed")
    assert any("server chose AEAD 15 (AEAD_AES_SIV_CMAC_256), which was not offered" in p for p in result["problems"])


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kind", ["chrony", "ntpsec"])
def test_ke_response_record_order(d13, kind, family):
    """Next Protocol, AEAD, 8 New Cookie, End of Message; no Port or Server Negotiation
    (port 123, no `ntsntpserver`). chrony marks the AEAD record critical, NTPsec does not."""
    server = d13.servers[kind]
    address = server.address(family)
    sock = d13.client.socket(socket.AF_INET6 if family == "ipv6" else socket.AF_INET)
    ke = ntswire.ke_client(sock, address, 4460, server.name, d13.ca_path)
    assert ke.alpn == b"ntske/1" and ke.tls_version == "TLSv1.3"
    assert [r.rtype for r in ke.records] == [ntswire.NEXT_PROTOCOL, ntswire.AEAD_ALGORITHM,
                                             *[ntswire.NEW_COOKIE] * 8, ntswire.END_OF_MESSAGE]
    critical = [r.critical for r in ke.records]
    assert critical == [True, kind == "chrony", *[False] * 8, True]
    assert ke.records[1].body == AES_SIV_CMAC_256.to_bytes(2, "big")


# ------------------------------------------------------------------ chrony 4.6.1 with `ntsaeads 30`


@pytest.mark.parametrize("family", FAMILIES)
def test_chrony_ntsaeads_30_serves_gcm_siv(d13, family):
    server = d13.servers["chrony-gcm"]
    address = server.address(family)
    run = run_module("endpoint_check", {"name": server.name, "addresses": [address], "ca_path": d13.ca_path,
                                        "aead": [AES_128_GCM_SIV], "ntp_exchange": False},
                     prefix=d13.client.exec_argv([]))
    assert not run.failed, run.result.get("msg")
    entry = run.result["addresses"][0]
    assert entry["tls"]["version"] == "TLSv1.3"
    assert entry["cert"]["days_left"] == expected_days_left(server)
    assert entry["ke"]["aead"] == AES_128_GCM_SIV
    assert entry["ke"]["aead_name"] == "AEAD_AES_128_GCM_SIV"
    assert entry["ke"]["cookies"] == 8 and entry["ke"]["cookie_sizes"] == [64]


@pytest.mark.parametrize("family", FAMILIES)
def test_chrony_ntsaeads_30_gives_an_siv_cmac_client_an_empty_aead_record(d13, family):
    server = d13.servers["chrony-gcm"]
    address = server.address(family)
    run = run_module("endpoint_check", {"name": server.name, "addresses": [address], "ca_path": d13.ca_path},
                     prefix=d13.client.exec_argv([]))
    assert run.failed
    assert run.result["problems"] == [
        f"{address}: NTS-KE response: server supports none of the offered AEAD algorithms: 15 (AEAD_AES_SIV_CMAC_256)"]
    # On the wire: Next Protocol, an empty (critical) AEAD record, End of Message; no Error record, no cookie.
    sock = d13.client.socket(socket.AF_INET6 if family == "ipv6" else socket.AF_INET)
    ke = ntswire.ke_client(sock, address, 4460, server.name, d13.ca_path)
    assert [(r.rtype, r.critical, r.body) for r in ke.records] == [
        (ntswire.NEXT_PROTOCOL, True, b"\x00\x00"), (ntswire.AEAD_ALGORITHM, True, b""),
        (ntswire.END_OF_MESSAGE, True, b"")]


# AES-128-GCM-SIV against chrony 4.6.1: the request carries chrony's Compliant 128GCM
# Export record (else chrony keys it with AEAD id 15 in the exporter context) and the
# authenticator carries the AEAD output as RFC 8452 makes it, tag last.
@pytest.mark.parametrize("kind", ["chrony", "chrony-gcm"])
def test_gcm_siv_ntp_exchange_is_authenticated(d13, kind):
    result = endpoint_ke(d13, d13.servers[kind], [AES_128_GCM_SIV])
    entry = result["addresses"][0]
    assert entry["ke"]["aead"] == AES_128_GCM_SIV
    assert entry["ntp"]["nak"] is False
    assert entry["ntp"]["authenticated"] is True


# ------------------------------------------------------------------ ntpd-rs 1.4.0 (ntp-daemon)
AES_SIV_CMAC_512 = 17


def test_ntpdrs_has_no_time_source_and_no_cap_sys_time(d13):
    # The safety of this rig: ntp-daemon (PID 1 of its container) can never set the clock.
    server = d13.servers["ntpdrs"]
    status = podman("exec", server.container, "cat", "/proc/1/status")
    assert re.search(r"^Name:\s+ntp-daemon$", status, re.MULTILINE), status
    cap_sys_time = 1 << 25  # linux/capability.h
    for field in ("CapEff", "CapPrm", "CapBnd", "CapAmb"):
        value = int(re.search(rf"^{field}:\s+([0-9a-f]+)$", status, re.MULTILINE).group(1), 16)
        assert not value & cap_sys_time, f"{field} {value:x} holds CAP_SYS_TIME"
    assert "No sources configured. Daemon will not change system time." in daemon_log(server)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(("ke_port", "ntp_port"), NTPDRS_KE_PORTS.items())
def test_ntpdrs_port_negotiation_record(d13, ke_port, ntp_port, family):
    """ntp-daemon sends Port Negotiation only from a listener with `ntp-port`, as the first
    record, critical only when the port is not 123; its AEAD record is not critical."""
    server = d13.servers["ntpdrs"]
    address = server.address(family)
    sock = d13.client.socket(socket.AF_INET6 if family == "ipv6" else socket.AF_INET)
    ke = ntswire.ke_client(sock, address, ke_port, server.name, d13.ca_path)
    port_records = [] if ntp_port is None else [
        (ntswire.PORT_NEGOTIATION, ntp_port != 123, ntp_port.to_bytes(2, "big"))]
    assert [(r.rtype, r.critical, r.body) for r in ke.records if r.rtype != ntswire.NEW_COOKIE] == [
        *port_records, (ntswire.NEXT_PROTOCOL, True, b"\x00\x00"),
        (ntswire.AEAD_ALGORITHM, False, AES_SIV_CMAC_256.to_bytes(2, "big")), (ntswire.END_OF_MESSAGE, True, b"")]
    assert [r.rtype for r in ke.records].count(ntswire.NEW_COOKIE) == 8
    # endpoint_check follows the record: the authenticated exchange goes to the negotiated port.
    run = run_module("endpoint_check", {"name": server.name, "addresses": [address], "port": ke_port,
                                        "ca_path": d13.ca_path}, prefix=d13.client.exec_argv([]))
    assert run.result["problems"] == expected_problems(server, address)
    entry = run.result["addresses"][0]
    assert entry["ke"]["port"] == ntp_port and entry["ke"]["cookies"] == 8
    ntp = entry["ntp"]
    assert ntp["port"] == (ntp_port or 123)
    assert ntp["authenticated"] is True and ntp["nak"] is False
    assert (ntp["leap"], ntp["stratum"], ntp["refid"]) == (3, 16, "XNON")


@pytest.mark.parametrize(("aead", "chosen", "cookie"), [([AES_128_GCM_SIV, AES_SIV_CMAC_256], AES_SIV_CMAC_256, 104),
                                                        ([AES_SIV_CMAC_384, AES_SIV_CMAC_256], AES_SIV_CMAC_256, 104),
                                                        ([AES_SIV_CMAC_512, AES_SIV_CMAC_256], AES_SIV_CMAC_512, 168),
                                                        ([AES_SIV_CMAC_256, AES_SIV_CMAC_512], AES_SIV_CMAC_256, 104)])
def test_ntpdrs_140_offers_aes_siv_cmac_256_and_512_only(d13, aead, chosen, cookie):
    # The client's first id that ntp-daemon knows wins (nts_record.rs: find_map over the
    # request's list; its own preference, 512 first, orders only what it asks as a client);
    # time flows with AES-SIV-CMAC-512 too.
    server = d13.servers["ntpdrs"]
    result = endpoint_ke(d13, server, aead)
    assert result["problems"] == expected_problems(server, server.ipv4)
    entry = result["addresses"][0]
    assert entry["ke"]["aead"] == chosen and entry["ke"]["cookie_sizes"] == [cookie]
    assert entry["ntp"]["authenticated"] is True and entry["ntp"]["refid"] == "XNON"


@pytest.mark.parametrize("aead", [[AES_128_GCM_SIV], [AES_SIV_CMAC_384]])
def test_ntpdrs_140_answers_no_common_aead_with_a_bad_request_error(d13, aead):
    # Unlike chrony 4.6.1 (an empty AEAD record) and NTPsec 1.2.3 (AEAD 15 regardless).
    server = d13.servers["ntpdrs"]
    result = endpoint_ke(d13, server, aead)
    assert result.get("failed")
    assert result["problems"] == [f"{server.ipv4}: NTS-KE Error record: Bad Request (1)"]
    assert result["addresses"][0]["ntp"] is None
