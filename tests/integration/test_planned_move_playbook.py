"""playbooks/planned_move.yml for real, in one self-contained container.

The container (the lab image: Debian 12, systemd, BIND, dnspython, chrony/ntpsec
archives) runs with `--network none`: its own `eth0` is one end of a veth pair inside it, holding
the server's old and new addresses, BIND on 127.0.0.1 is the zone's primary (TSIG
updates), ntsops.nts.server deploys the chrony NTS server, and a second chronyd in the
same container is a client of the server's name. Nothing leaves the container.

Check mode must change nothing; the real run must move the client to the new address
through the NAK, keep NTS-KE on the old address, close NTP there and leave DNS on the
new address with the TTL restored. Takes a few minutes (role converge, two playbook
runs); skipped without root, podman or the lab image (scripts/lab.sh up builds it).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.ca import TestCA
from harness.podman import PODMAN_ENV, podman, podman_result

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
IMAGE = "localhost/ntsops/lab:latest"
ZONE = "move.test"
NAME = f"time.{ZONE}"
OLD = "198.51.100.30"
NEW = "198.51.100.31"
KEY_NAME = "pmtest"
POLL = 1
NTSREFRESH_S = 16
CLIENT_DIR = "/run/pmclient"


class Box:
    """The one container, addressed by name; removed (by name) afterwards."""

    def __init__(self, name: str) -> None:
        self.name = name

    def sh(self, script: str, timeout: float = 60, check: bool = True) -> str:
        return podman("exec", self.name, "sh", "-c", script, timeout=timeout, check=check)

    def write(self, path: str, text: str, mode: str = "0644") -> None:
        podman("exec", "-i", self.name, "sh", "-c", f"cat > {path} && chmod {mode} {path}", stdin=text)

    def chronyc_client(self, *args: str) -> str:
        return self.sh(f"chronyc -h {CLIENT_DIR}/chronyd.sock -n {' '.join(args)}", check=False)


def _skip_unless_usable() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if shutil.which("podman") is None:
        pytest.skip("needs podman")
    if podman_result("image", "exists", IMAGE).returncode != 0:
        pytest.skip(f"needs the lab image {IMAGE} (scripts/lab.sh up builds it)")


@pytest.fixture
def box() -> Iterator[tuple[Box, str]]:
    _skip_unless_usable()
    name = f"ntsops-pmtest-{os.getpid()}"
    podman("rm", "-f", name, check=False)
    podman("run", "-d", "--name", name, "--hostname", "pmtest", "--network", "none",
           "--cap-add", "NET_ADMIN", "--cap-drop", "SYS_TIME", "--systemd", "always",
           "--label", "owner=ntsops-pmtest", "--pull", "never", IMAGE, "/sbin/init")
    box = Box(name)
    try:
        box.sh("systemctl is-system-running --wait || true", timeout=90)
        # no dummy module in this kernel: a veth pair whose both ends stay in the container
        box.sh("ip link add eth0 type veth peer name eth0peer && ip link set eth0peer up && ip link set eth0 up")
        box.sh(f"ip addr add {OLD}/24 dev eth0")
        secret = base64.b64encode(secrets.token_bytes(32)).decode()
        box.write(f"/etc/bind/{KEY_NAME}.key", f'key "{KEY_NAME}" {{ algorithm hmac-sha256; secret "{secret}"; }};\n')
        box.write("/etc/bind/named.conf.options", (
            'options { directory "/var/cache/bind"; listen-on { 127.0.0.1; }; listen-on-v6 { none; };'
            " recursion no; allow-query { any; }; notify no; dnssec-validation no; };\n"))
        box.write("/etc/bind/named.conf.local", (
            f'include "/etc/bind/{KEY_NAME}.key";\n'
            f'zone "{ZONE}" {{ type primary; file "/var/lib/bind/db.{ZONE}";'
            f" update-policy {{ grant {KEY_NAME} zonesub A AAAA; }}; }};\n"))
        box.write(f"/var/lib/bind/db.{ZONE}", (
            f"$TTL 4\n@ IN SOA ns1.{ZONE}. hostmaster.{ZONE}. 1 60 30 3600 2\n  IN NS ns1.{ZONE}.\n"
            f"ns1 IN A 127.0.0.1\ntime 4 IN A {OLD}\n"))
        box.sh(f"chown bind:bind /var/lib/bind/db.{ZONE} && systemctl enable --now named && "
               "printf 'nameserver 127.0.0.1\\noptions timeout:1 attempts:2\\n' > /etc/resolv.conf")
        yield box, secret
    finally:
        podman("rm", "-f", name, check=False, timeout=60)


def ansible_playbook(
    playbook: Path, inventory: Path, *extra: str, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    env = {**PODMAN_ENV, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_STDOUT_CALLBACK": "default",
           "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}"}
    return subprocess.run([str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", str(inventory), str(playbook),
                           *extra], capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env, check=False)


def state(box: Box) -> dict[str, str]:
    """What the playbook may change: chrony.conf, addresses, DNS, nftables, the ntskeys file."""
    return {
        "conf": box.sh("sha256sum /etc/chrony/chrony.conf"),
        "keys": box.sh("sha256sum /var/lib/chrony/ntskeys", check=False),
        "addresses": box.sh("ip -4 -o addr show dev eth0"),
        "dns": box.sh(f"dig +norec +noall +answer @127.0.0.1 {NAME} A"),
        "nft": box.sh("nft list ruleset", check=False),
    }


def test_planned_move_playbook_check_mode_then_real_run(
    box: tuple[Box, str], tmp_path: Path, test_ca: TestCA
) -> None:
    container, secret = box
    issued = test_ca.issue("pmtest", dns=[NAME], ips=[OLD, NEW])
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {container.name: {
        "ansible_connection": "containers.podman.podman",
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_become": False,
        "nts_server_implementation": "chrony",
        "nts_server_name": NAME,
        "nts_server_cert_src": str(issued.chain_path),
        "nts_server_key_src": str(issued.key_path),
        "nts_server_upstreams": [],
        "nts_server_local_stratum": 10,
        "nts_server_no_clock_control": True,
        "nts_server_clear_capability_condition": True,
        "nts_server_cert_check": False,
        "nts_server_endpoint_check": False,
        "nts_server_ratelimit": False,
        # the playbook counts and filters with nftables; the role installs it
        "nts_server_firewall": "nftables",
        "nts_server_fleet": {"expected_clients": 10, "largest_nat_group": 1,
                             "client_mix": [{"client": "chrony-4.3", "maxpoll": POLL, "share": 1.0}]},
    }}}}))
    deploy = tmp_path / "deploy.yml"
    deploy.write_text("- name: Deploy\n  hosts: all\n  roles:\n    - role: ntsops.nts.server\n")
    result = ansible_playbook(deploy, inventory)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]

    # The client: a second chronyd in the container, knowing the server by name, re-keying
    # every 16 s (ntsrefresh 16), so that refreshes land anywhere around the announcement
    # and the key change. A client that re-keyed after the announcement holds cookies
    # under the staged key and must not be NAKed: a NAK before any valid response leaves
    # chrony's NTS-KE back-off armed (nts_ntp_client.c update_next_nke_attempt) and the
    # client silent for up to 2^10 s.
    container.write("/tmp/pm-ca.crt", Path(test_ca.cert_path).read_text())
    container.sh(f"mkdir -p {CLIENT_DIR}/dump && chmod 700 {CLIENT_DIR}")
    container.write(f"{CLIENT_DIR}/chrony.conf", "\n".join([
        f"server {NAME} iburst nts minpoll {POLL} maxpoll {POLL}", "ntstrustedcerts /tmp/pm-ca.crt",
        "port 0", "cmdport 0", f"bindcmdaddress {CLIENT_DIR}/chronyd.sock", f"pidfile {CLIENT_DIR}/chronyd.pid",
        f"ntsdumpdir {CLIENT_DIR}/dump", f"driftfile {CLIENT_DIR}/drift", f"ntsrefresh {NTSREFRESH_S}", ""]))
    podman("exec", "-d", container.name, "chronyd", "-x", "-d", "-u", "root", "-f", f"{CLIENT_DIR}/chrony.conf")
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and "^*" not in container.chronyc_client("sources"):
        time.sleep(1)
    assert "^*" in container.chronyc_client("sources"), container.chronyc_client("sources")

    move_args = [
        "-e", f"planned_move_server={container.name}", "-e", f"planned_move_old_ipv4={OLD}",
        "-e", f"planned_move_new_ipv4={NEW}", "-e", "planned_move_dns_server=127.0.0.1",
        "-e", f"planned_move_dns_zone={ZONE}", "-e", f"planned_move_dns_key_name={KEY_NAME}",
        "-e", f"planned_move_dns_key_secret={secret}", "-e", f"planned_move_dns_delegate={container.name}",
        "-e", "planned_move_old_ttl=4", "-e", "planned_move_ttl=2", "-e", "planned_move_update_latency=1",
        "-e", "planned_move_restart_s=3", "-e", "planned_move_key_method=rekey",
        # The container has no network the controller could reach its addresses on; the
        # pre-move checks are exercised in the lab (scripts/lab_planned_move.py).
        "-e", "planned_move_precheck=false",
        # documentation space, which ddns_record refuses to publish unless allowed
        "-e", json.dumps({"planned_move_dns_allow_prefixes": ["198.51.100.0/24"]}),
    ]
    before = state(container)
    check = ansible_playbook(REPO / "playbooks" / "planned_move.yml", inventory, "--check", *move_args)
    assert check.returncode == 0, check.stdout[-4000:] + check.stderr[-2000:]
    assert "lower_ttl | 4.0 |" in check.stdout and "watch |" in check.stdout
    assert state(container) == before  # check mode changed nothing

    started = time.monotonic()
    report_file = tmp_path / "move.json"
    real = ansible_playbook(REPO / "playbooks" / "planned_move.yml", inventory, *move_args,
                            "-e", f"planned_move_report_file={report_file}")
    took = time.monotonic() - started
    print(real.stdout[-6000:])
    assert real.returncode == 0, real.stdout[-6000:] + real.stderr[-2000:]
    assert re.search(r'"moved": (true|"True")', real.stdout), "the watch did not see the clients leave the old address"
    report = json.loads(report_file.read_text())
    authdata = container.chronyc_client("-c", "authdata")
    print(f"\n[planned move playbook] evidence {report['evidence']}, counters {report['counters']}, "
          f"{report['watch_intervals']} watched intervals; client authdata {authdata.strip()}")
    assert report["moved"] is True and report["evidence"]["proven"] is True
    assert report["evidence"]["authenticated_ntp_interval"] > 0 and report["evidence"]["old_ntp_interval"] == 0

    after = state(container)
    conf = container.sh("cat /etc/chrony/chrony.conf")
    print(f"\n[planned move playbook] real run took {took:.0f} s; sources: {container.chronyc_client('-c sources')}")
    assert f"ntsntpserver {NEW}" in conf
    assert f"{OLD}/24" in after["addresses"] and f"{NEW}/24" in after["addresses"]  # NTS-KE kept on OLD
    assert NEW in after["dns"] and OLD not in after["dns"] and "\t4\tIN" in after["dns"].replace(" ", "\t")
    assert f"ip daddr {OLD} udp dport 123 drop" in after["nft"]  # NTP closed on the old address
    rows = container.chronyc_client("-c", "sources")
    assert f",{NEW}," in rows and "^,*" in rows, rows

    # Silence is not success: move back with NTS-KE broken, so that the client cannot re-key
    # after the key change, falls silent, and the playbook must stop without closing
    # anything. 4460 is dropped on both addresses: a client moved by the NAK keeps OLD as
    # its NTS-KE address, but one that chrony replaced during the first move (the restart
    # leaves it unreachable for several polls) moved its NTS-KE address to NEW with it
    # (ntp_sources.c change_source_address -> NCR_ChangeRemoteAddress(..., ntp_only=0) ->
    # nts_ntp_client.c NNC_ChangeAddress), and one replaced during this watch follows DNS.
    container.chronyc_client("dump")  # writes <NTS-KE address>.nts (nts_ntp_client.c save_cookies)
    print("\n[planned move playbook] client NTS-KE dump files (<NTS-KE address>.nts, newest is current) "
          "before the broken move:\n"
          f"{container.sh(f'ls -l --time-style=+%T {CLIENT_DIR}/dump', check=False)}")
    container.sh(
        "nft add table inet pmbreak && "
        "nft add chain inet pmbreak input '{ type filter hook input priority -20; policy accept; }' && "
        "nft add rule inet pmbreak input tcp dport 4460 drop"
    )
    back_args = [arg.replace(f"old_ipv4={OLD}", "old_ipv4=@@").replace(f"new_ipv4={NEW}", f"new_ipv4={OLD}")
                 .replace("old_ipv4=@@", f"old_ipv4={NEW}") for arg in move_args]
    broken = ansible_playbook(REPO / "playbooks" / "planned_move.yml", inventory, *back_args)
    print(broken.stdout[-3000:])
    assert broken.returncode != 0, "a move whose clients cannot re-key was reported as done"
    assert "is NOT proven" in broken.stdout, broken.stdout[-4000:]
    after_broken = state(container)
    assert f"ip daddr {NEW} udp dport 123 drop" not in after_broken["nft"]  # NTP still open on the old address
    assert f"{OLD}/24" in after_broken["addresses"] and f"{NEW}/24" in after_broken["addresses"]
