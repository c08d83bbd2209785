"""The ddns_agent role converged for real on a systemd host, and the service it starts.

The host is a podman container of the lab image (Debian 12, systemd as PID 1,
python3-dnspython 2.3 from Debian) with no network but its loopback. The role runs
through the containers.podman connection with its defaults: packages, the shared
core, the key as a credential, the hardened unit with DynamicUser. The two named
(this host's BIND, started inside the container's network namespace with nsenter)
serve the zone on the container's loopback. The test then moves the address of
a veth inside that namespace and times both servers serving it, and reads the
journal.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "dns"))

from ansible_collections.ntsops.nts.plugins.module_utils._model.recovery import max_ttl
from ddns_lab import (
    KEY_NAME,
    LAB_ALLOW_PREFIXES,
    PRIMARY_ADDRESS,
    PROXY_ADDRESS,
    SECONDARY_ADDRESS,
    VENV_BIN,
    AgentLab,
    BindPair,
    LabNamespace,
    ansible_env,
)
from harness.podman import PODMAN_ENV, podman, podman_result

pytestmark = pytest.mark.integration

IMAGE = "localhost/ntsops/lab:latest"
BUDGET = {"clients": [{"client": "chrony-4.3", "maxpoll": 4}], "update_latency": 2}
CHANGE_BOUND_S = 5.0


class ContainerNamespace(LabNamespace):
    """The network namespace of a running container, entered with nsenter (never deleted: podman owns it)."""

    def __init__(self, pid: int) -> None:
        super().__init__()
        self.pid = pid
        self.name = f"container pid {pid}"

    def create(self) -> None:
        for address in (PRIMARY_ADDRESS, SECONDARY_ADDRESS, PROXY_ADDRESS):
            self.ip("addr", "add", f"{address}/32", "dev", "lo")

    def argv(self, argv: list[str]) -> list[str]:
        return ["nsenter", "-t", str(self.pid), "-n", *argv]

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(["ip", *args]), capture_output=True, text=True, timeout=20, check=check)

    def delete(self) -> None:
        from ddns_lab import _stop_pids  # noqa: PLC0415 - the harness' PID-based stop

        _stop_pids(self.started)


@pytest.fixture(scope="module")
def container() -> Iterator[tuple[str, int]]:
    if os.geteuid() != 0:
        pytest.skip("needs root (podman, nsenter, named)")
    if shutil.which("podman") is None or podman_result("image", "exists", IMAGE).returncode != 0:
        pytest.skip(f"needs podman and the locally built {IMAGE}")
    name = f"ntsops-ddns-sd-{os.getpid()}"
    podman(
        "run", "-d", "--name", name, "--hostname", "ddns-sd", "--systemd=always", "--network", "none",
        # SYS_ADMIN lets this container's systemd build the unit's mount-namespace sandbox.
        "--cap-drop", "SYS_TIME", "--cap-add", "SYS_ADMIN",
        "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768",
        "--pull", "never", IMAGE, "/sbin/init",
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = podman("exec", name, "systemctl", "is-system-running", check=False).strip()
            if state in ("running", "degraded"):
                break
            time.sleep(0.5)
        pid = int(podman("inspect", "--format", "{{.State.Pid}}", name).strip())
        yield name, pid
    finally:
        podman("rm", "-f", "-t", "5", name, check=False)


@pytest.fixture(scope="module")
def pair(container: tuple[str, int], tmp_path_factory: pytest.TempPathFactory) -> Iterator[BindPair]:
    netns = ContainerNamespace(container[1])
    netns.create()
    started = BindPair(tmp_path_factory.mktemp("bind"), netns)
    try:
        started.start()
        yield started
    finally:
        started.stop()
        netns.delete()


def converge(container: str, pair: BindPair, root: Path) -> subprocess.CompletedProcess[str]:
    role_vars: dict[str, Any] = {
        "ddns_agent_name": "sd.example.test",
        "ddns_agent_server": pair.primary_address,
        "ddns_agent_port": pair.port,
        "ddns_agent_key_name": KEY_NAME,
        "ddns_agent_key_secret": pair.key_secret,
        "ddns_agent_ipv4_interface": "ddns0",
        "ddns_agent_ipv6_interface": "ddns0",
        "ddns_agent_budget": BUDGET,
        "ddns_agent_allow_prefixes": LAB_ALLOW_PREFIXES,
        "ddns_agent_propagation_timeout": 10,
    }
    play = [{"name": "Converge", "hosts": "all", "gather_facts": True,
             "roles": [{"role": "ntsops.nts.ddns_agent", "vars": role_vars}]}]  # fmt: skip
    playbook = root / "converge.yml"
    playbook.write_text(json.dumps(play))
    return subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", f"{container},", "-c", "containers.podman.podman",
         "-e", "ansible_python_interpreter=/usr/bin/python3", str(playbook)],
        capture_output=True, text=True, timeout=600, check=False,
        env={**ansible_env(), "CONTAINERS_CONF": PODMAN_ENV["CONTAINERS_CONF"]},
        cwd=str(Path(__file__).resolve().parents[2]),
    )  # fmt: skip


def test_role_on_systemd_publishes_and_follows_a_change(
    container: tuple[str, int], pair: BindPair, tmp_path: Path
) -> None:
    name = container[0]
    agent = AgentLab(pair, "sd.example.test")
    agent.add_interface("192.0.2.50", "2001:db8::50")

    first = converge(name, pair, tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert pair.key_secret not in first.stdout + first.stderr
    second = converge(name, pair, tmp_path)
    assert second.returncode == 0, second.stdout
    assert "changed=0" in second.stdout

    active = podman("exec", name, "systemctl", "is-active", "ntsops-ddns-agent", check=False).strip()
    journal = podman("exec", name, "journalctl", "-u", "ntsops-ddns-agent", "--no-pager", check=False)
    assert active == "active", journal
    agent.wait_served("A", ["192.0.2.50"], timeout=20)
    agent.wait_served("AAAA", ["2001:db8::50"], timeout=20)

    seconds = agent.change_and_measure("192.0.2.50", "192.0.2.51", "2001:db8::50", "2001:db8::51")
    print(f"systemd agent: address change -> both servers serve it: {seconds:.3f} s")
    assert seconds < CHANGE_BOUND_S

    journal = podman("exec", name, "journalctl", "-u", "ntsops-ddns-agent", "--no-pager", "-o", "cat")
    print(journal)
    expected_ttl = max_ttl(BUDGET["clients"], BUDGET["update_latency"])
    assert f"ttl {expected_ttl}" in journal
    assert "A 192.0.2.50 -> 192.0.2.51; AAAA 2001:db8::50 -> 2001:db8::51" in journal
    assert "(trigger: address event)" in journal
    assert pair.key_secret not in journal

    # The service holds no capability at all, and the key on disk is root's alone.
    main_pid = podman("exec", name, "systemctl", "show", "-p", "MainPID", "--value", "ntsops-ddns-agent")
    status = podman("exec", name, "cat", f"/proc/{main_pid.strip()}/status")
    capabilities = {line.split(":")[0]: line.split()[1] for line in status.splitlines() if line.startswith("Cap")}
    assert capabilities["CapEff"] == capabilities["CapPrm"] == capabilities["CapBnd"] == "0000000000000000"
    assert "NoNewPrivs:\t1" in status
    mode = podman("exec", name, "stat", "-c", "%a %U", "/etc/ntsops-ddns-agent/tsig.key").strip()
    assert mode == "600 root"
    unit = podman("exec", name, "cat", "/etc/systemd/system/ntsops-ddns-agent.service")
    assert pair.key_secret not in unit
