"""The ACME rig of test_acme.py and benchmarks/acme_renewal.py: one container, real BIND, Pebble, certbot and chronyd.

The container (the lab image plus certbot with certbot-dns-rfc2136 and Pebble:
Debian 12, systemd, BIND; scripts/lab/Containerfile.acme) runs with
``--network none``. In it: BIND on 127.0.0.1 is the primary of ``acme.test`` with
two challenge-only TSIG keys (each may change only one name's ``_acme-challenge``
TXT record), Pebble on 127.0.0.1:14000 validates DNS-01 against that BIND
(``-dnsserver``), and ntsops.nts.server with certificate source ``acme`` obtains the
certificate through certbot before it configures chronyd.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.ca import TestCA
from harness.podman import PODMAN_ENV, podman, podman_result

REPO = Path(__file__).resolve().parents[3]
# The lab image plus certbot and Pebble (scripts/lab/Containerfile.acme; `make images` builds it).
IMAGE = "localhost/ntsops/lab-acme:latest"
ZONE = "acme.test"
NAME = f"time.{ZONE}"
OTHER = f"other.{ZONE}"
KEY_NAME = "acme-time"
OTHER_KEY_NAME = "acme-other"
PEBBLE_URL = "https://127.0.0.1:14000/dir"
# A CA's rate limit before the same Pebble (acme_ratelimit.py, copied into the container).
RATELIMIT_FRONT = Path(__file__).with_name("acme_ratelimit.py")
RATELIMIT_PORT = 14002
RATELIMIT_URL = f"https://127.0.0.1:{RATELIMIT_PORT}/dir"
TEST_DIR = "/etc/ntsops-test"
TLS_CA = f"{TEST_DIR}/tls-ca.pem"
LAUNCHER = "/usr/local/lib/ntsops-acme/ntsops-acme"
CREDENTIALS = "/etc/ntsops-acme/rfc2136.ini"
STATE = f"/var/lib/ntsops-acme/{NAME}.json"
HOOK = "/etc/letsencrypt/renewal-hooks/deploy/ntsops-nts.sh"
SERVED_CERT = "/etc/chrony/nts/server.crt"
# Pebble's own randomness, off: PEBBLE_VA_NOSLEEP no wait before validating, NONCEREJECT=0 no
# deliberately bad nonces, AUTHZREUSE=0 a fresh challenge at every order (by default it reuses
# a valid authorization half the time, and then a renewal with a wrong TSIG key succeeds).
PEBBLE_OPTIONS = "-E PEBBLE_VA_NOSLEEP=1 -E PEBBLE_WFE_NONCEREJECT=0 -E PEBBLE_AUTHZREUSE=0"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


class Box:
    """The one container, addressed by name; removed (by name) afterwards."""

    def __init__(self, name: str) -> None:
        self.name = name

    def sh(self, script: str, timeout: float = 120, check: bool = True) -> str:
        return podman("exec", self.name, "sh", "-c", script, timeout=timeout, check=check)

    def run(self, script: str, timeout: float = 300) -> Run:
        result = podman_result("exec", self.name, "sh", "-c", script, timeout=timeout)
        return Run(result.returncode, result.stdout, result.stderr)

    def write(self, path: str, text: str, mode: str = "0644") -> None:
        script = f"mkdir -p $(dirname {path}) && cat > {path} && chmod {mode} {path}"
        podman("exec", "-i", self.name, "sh", "-c", script, stdin=text)


@dataclass
class Lab:
    box: Box
    secret: str
    other_secret: str
    converge: subprocess.CompletedProcess[str]


def missing() -> str | None:
    """Why the rig cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("podman") is None:
        return "needs podman"
    if podman_result("image", "exists", IMAGE).returncode != 0:
        return f"needs the ACME test image {IMAGE} (make images builds it)"
    found = subprocess.run(["podman", "run", "--rm", "--pull", "never", "--network", "none", IMAGE, "sh", "-c",
                            "command -v pebble && command -v certbot"],
                           env=PODMAN_ENV, capture_output=True, text=True, check=False)
    if found.stdout.count("\n") < 2:
        return f"{IMAGE} has no pebble or certbot: rebuild it with make images"
    return None


def start_bind(box: Box, secret: str, other_secret: str) -> None:
    keys = "".join(f'key "{name}" {{ algorithm hmac-sha256; secret "{value}"; }};\n'
                   for name, value in ((KEY_NAME, secret), (OTHER_KEY_NAME, other_secret)))
    box.write("/etc/bind/acme-keys.conf", keys, "0640")
    box.write("/etc/bind/named.conf.options", (
        'options { directory "/var/cache/bind"; listen-on { 127.0.0.1; }; listen-on-v6 { none; };'
        " recursion no; allow-query { any; }; notify no; dnssec-validation no; };\n"))
    # Each key may change only its own name's challenge record (the README's update-policy).
    box.write("/etc/bind/named.conf.local", (
        'include "/etc/bind/acme-keys.conf";\n'
        f'zone "{ZONE}" {{ type primary; file "/var/lib/bind/db.{ZONE}"; update-policy {{\n'
        f"  grant {KEY_NAME} name _acme-challenge.{NAME}. TXT;\n"
        f"  grant {OTHER_KEY_NAME} name _acme-challenge.{OTHER}. TXT;\n}}; }};\n"))
    box.write(f"/var/lib/bind/db.{ZONE}", (
        f"$TTL 2\n@ IN SOA ns1.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 2\n  IN NS ns1.{ZONE}.\n"
        f"ns1 IN A 127.0.0.1\ntime IN A 127.0.0.1\nother IN A 127.0.0.1\n"))
    box.sh(f"chown root:bind /etc/bind/acme-keys.conf && chown bind:bind /var/lib/bind/db.{ZONE} && "
           "systemctl enable --now named && "
           "printf 'nameserver 127.0.0.1\\noptions timeout:1 attempts:2\\n' > /etc/resolv.conf")


def start_pebble(box: Box) -> None:
    box.sh(f"systemd-run --unit pebble {PEBBLE_OPTIONS} "
           f"pebble -config {TEST_DIR}/pebble.json -dnsserver 127.0.0.1:53")
    fetch_root = (
        "import ssl, sys, time, urllib.request\n"
        f"ctx = ssl.create_default_context(cafile='{TLS_CA}')\n"
        "for _ in range(100):\n"
        "    try:\n"
        "        sys.stdout.write(urllib.request.urlopen('https://127.0.0.1:15000/roots/0', context=ctx,"
        " timeout=2).read().decode()); break\n"
        "    except OSError:\n"
        "        time.sleep(0.1)\n"
    )
    box.write(f"{TEST_DIR}/fetch_root.py", fetch_root)
    box.sh(f"python3 {TEST_DIR}/fetch_root.py > {TEST_DIR}/pebble-root.pem && grep -q BEGIN {TEST_DIR}/pebble-root.pem")


def ansible_playbook(playbook: Path, inventory: Path, *extra: str, timeout: float = 900
                     ) -> subprocess.CompletedProcess[str]:
    env = {**PODMAN_ENV, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_STDOUT_CALLBACK": "default",
           "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}"}
    return subprocess.run([str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", str(inventory), str(playbook),
                           *extra], capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env, check=False)


@contextlib.contextmanager
def running_lab(test_ca: TestCA, workdir: Path, *playbook_options: str) -> Iterator[Lab]:
    """The container with BIND and Pebble running and the server role converged (its output in the Lab)."""
    name = f"ntsops-acmetest-{os.getpid()}"
    podman("rm", "-f", name, check=False)
    podman("run", "-d", "--name", name, "--hostname", "acmetest", "--network", "none",
           "--cap-drop", "SYS_TIME", "--systemd", "always",
           "--label", "owner=ntsops-acmetest", "--pull", "never", IMAGE, "/sbin/init")
    box = Box(name)
    try:
        box.sh("systemctl is-system-running --wait || true", timeout=90)
        secret = base64.b64encode(secrets.token_bytes(32)).decode()
        other_secret = base64.b64encode(secrets.token_bytes(32)).decode()
        start_bind(box, secret, other_secret)
        tls = test_ca.issue("pebble", dns=["localhost"], ips=["127.0.0.1"])
        box.write(TLS_CA, Path(test_ca.cert_path).read_text())
        box.write(f"{TEST_DIR}/pebble.crt", tls.chain_path.read_text())
        box.write(f"{TEST_DIR}/pebble.key", tls.key_path.read_text(), "0600")
        box.write(f"{TEST_DIR}/pebble.json", json.dumps({"pebble": {
            "listenAddress": "127.0.0.1:14000", "managementListenAddress": "127.0.0.1:15000",
            "certificate": f"{TEST_DIR}/pebble.crt", "privateKey": f"{TEST_DIR}/pebble.key",
            "httpPort": 5002, "tlsPort": 5001, "ocspResponderURL": "", "externalAccountBindingRequired": False}}))
        start_pebble(box)

        inventory = workdir / "inventory.yml"
        inventory.write_text(json.dumps({"all": {"hosts": {name: {
            "ansible_connection": "containers.podman.podman",
            "ansible_python_interpreter": "/usr/bin/python3",
            "ansible_become": False,
            "nts_server_implementation": "chrony",
            "nts_server_name": NAME,
            "nts_server_certificate_source": "acme",
            "nts_server_upstreams": [],
            "nts_server_local_stratum": 10,
            "nts_server_no_clock_control": True,
            "nts_server_clear_capability_condition": True,
            "nts_server_cert_check": True,
            "nts_server_cert_check_ca_path": f"{TEST_DIR}/pebble-root.pem",
            "nts_server_endpoint_check": False,  # the controller cannot reach a --network none container
            "acme_server": PEBBLE_URL,
            "acme_ca_bundle": TLS_CA,
            "acme_dns_server": "127.0.0.1",
            "acme_tsig_key_name": KEY_NAME,
            "acme_tsig_key_secret": secret,
            "acme_propagation_seconds": 1,
        }}}}))
        playbook = workdir / "deploy.yml"
        playbook.write_text("- name: Deploy\n  hosts: all\n  roles:\n    - role: ntsops.nts.server\n")
        converge = ansible_playbook(playbook, inventory, *playbook_options)
        yield Lab(box, secret, other_secret, converge)
    finally:
        podman("rm", "-f", name, check=False, timeout=60)


def served_sha256(box: Box) -> str:
    return box.sh("openssl s_client -connect 127.0.0.1:4460 -servername " + NAME +
                  " -alpn ntske/1 -tls1_3 </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256")


def file_sha256(box: Box, path: str) -> str:
    return box.sh(f"openssl x509 -in {path} -noout -fingerprint -sha256")


def acme(box: Box, step: str, *args: str) -> Run:
    return box.run(f"REQUESTS_CA_BUNDLE={TLS_CA} python3 {LAUNCHER} {step} --cert-name {NAME} "
                   f"--credentials {CREDENTIALS} {' '.join(args)}")


def state(box: Box) -> dict:
    return json.loads(box.sh(f"cat {STATE}"))


EXPORTER_SCRIPT = """
import sys, threading, urllib.request
sys.path.insert(0, "/usr/local/lib/ntsops-acme")
from ansible_collections.ntsops.nts.plugins.module_utils._check import exporter_config, exporter_http
config = exporter_config.parse_config({"modules": {"nts": {}}, "acme_state": {"directory": "/var/lib/ntsops-acme"}})
server = exporter_http.Server(("127.0.0.1", 0), exporter_http.Exporter(config))
threading.Thread(target=server.serve_forever, daemon=True).start()
url = "http://127.0.0.1:%d/metrics" % server.server_address[1]
sys.stdout.write(urllib.request.urlopen(url, timeout=10).read().decode())
"""


def exporter_metrics(box: Box) -> str:
    """/metrics of the real exporter (the code the role installed) reading the container's state files."""
    box.write(f"{TEST_DIR}/exporter_metrics.py", EXPORTER_SCRIPT)
    return box.sh(f"python3 {TEST_DIR}/exporter_metrics.py")
