"""The ntsops.nts.ddns_agent role: installed files, secrecy, idempotence, budget, and the installed agent.

The role runs with every path under a temporary folder and without touching
packages or systemd (this test host has no systemd). The agent is then started
exactly as the unit's ExecStart says - from the installed copy, not from the
checkout - inside the lab namespace, with the key where systemd's LoadCredential
would put it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "dns"))

from ansible_collections.ntsops.nts.plugins.module_utils._model.recovery import max_ttl
from ddns_lab import KEY_NAME, LAB_ALLOW_PREFIXES, AgentLab, BindPair, bind_pair, run_playbook

pytestmark = pytest.mark.integration

BUDGET = {"clients": [{"client": "chrony-4.3", "maxpoll": 4}], "update_latency": 2}
BUDGET_MAX_TTL = max_ttl(BUDGET["clients"], BUDGET["update_latency"])
REPO_CORE = Path(__file__).resolve().parents[2] / "plugins/module_utils"
# Imports every installed module with nothing but the installed tree (and the interpreter's
# own site-packages, for dnspython) on the path, and checks that none came from elsewhere.
IMPORT_ALL = """
import importlib, sys
from pathlib import Path
root = Path(sys.argv[1])
sys.path.insert(0, str(root))
for path in sorted((root / "ansible_collections/ntsops/nts/plugins/module_utils").rglob("*.py")):
    parts = path.relative_to(root).with_suffix("").parts
    importlib.import_module(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
outside = sorted(
    module.__file__ for name, module in sys.modules.items()
    if name.startswith("ansible_collections.") and module.__file__ and not module.__file__.startswith(str(root))
)
assert not outside, outside
from ansible_collections.ntsops.nts.plugins.module_utils._dns import budget
assert budget.HAS_RECOVERY_MODEL, "the installed _dns cannot import the recovery model"
"""


@pytest.fixture(scope="module")
def pair() -> Iterator[BindPair]:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespace, named)")
    with bind_pair() as started:
        yield started


def write_playbook(pair: BindPair, root: Path, **overrides: Any) -> Path:
    role_vars = {
        "ddns_agent_name": "role.example.test",
        "ddns_agent_server": pair.primary_address,
        "ddns_agent_port": pair.port,
        "ddns_agent_key_name": KEY_NAME,
        "ddns_agent_key_secret": pair.key_secret,
        "ddns_agent_ipv4_interface": "ddnsr0",
        "ddns_agent_ipv6_interface": "ddnsr0",
        "ddns_agent_budget": BUDGET,
        "ddns_agent_allow_prefixes": LAB_ALLOW_PREFIXES,
        "ddns_agent_manage_package": False,
        "ddns_agent_manage_service": False,
        "ddns_agent_python": sys.executable,
        "ddns_agent_install_dir": str(root / "lib"),
        "ddns_agent_config_dir": str(root / "etc"),
        "ddns_agent_unit_dir": str(root / "systemd"),
    }
    role_vars.update(overrides)
    (root / "systemd").mkdir(parents=True, exist_ok=True)
    playbook = root / "site.yml"
    play = [
        {
            "name": "Install the ddns agent",
            "hosts": "localhost",
            "gather_facts": False,
            "roles": [{"role": "ntsops.nts.ddns_agent", "vars": role_vars}],
        }
    ]
    playbook.write_text(json.dumps(play))
    return playbook


def recap_changed(stdout: str) -> int:
    match = re.search(r"localhost\s+:\s+ok=\d+\s+changed=(\d+)", stdout)
    assert match, stdout
    return int(match.group(1))


def assert_installed_core_is_the_repositorys(lib: Path) -> None:
    """Whole packages of the repository's core, byte for byte, that import on their own."""
    installed = lib / "ansible_collections/ntsops/nts/plugins/module_utils"
    files = sorted(str(path.relative_to(installed)) for path in installed.rglob("*.py"))
    assert {"_errors.py", "_dns/agent.py", "_dns/ensure.py"} <= set(files)
    packages = sorted({Path(name).parts[0] for name in files if "/" in name})
    whole = [str(path.relative_to(REPO_CORE)) for package in packages for path in (REPO_CORE / package).glob("*.py")]
    assert files == sorted([name for name in files if "/" not in name] + whole)
    for name in files:
        assert (installed / name).read_bytes() == (REPO_CORE / name).read_bytes(), name
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    imported = subprocess.run(
        [sys.executable, "-I", "-c", IMPORT_ALL, str(lib)], capture_output=True, text=True, env=env, check=False
    )
    assert imported.returncode == 0, imported.stderr


def test_role_installs_a_working_agent(pair: BindPair, tmp_path: Path) -> None:
    playbook = write_playbook(pair, tmp_path)
    first = run_playbook(playbook, "--diff", "-v")
    assert first.returncode == 0, first.stdout + first.stderr
    assert pair.key_secret not in first.stdout + first.stderr
    assert recap_changed(first.stdout) > 0
    second = run_playbook(playbook)
    assert second.returncode == 0, second.stdout
    assert recap_changed(second.stdout) == 0

    etc = tmp_path / "etc"
    assert stat.S_IMODE(etc.stat().st_mode) == 0o700
    assert stat.S_IMODE((etc / "tsig.key").stat().st_mode) == 0o600
    assert pair.key_secret in (etc / "tsig.key").read_text()
    config = json.loads((etc / "config.json").read_text())
    assert config["ttl"] == BUDGET_MAX_TTL  # the recovery model's max_ttl (126 s for chrony 4.3, maxpoll 4, 2 s)
    assert config["reconcile_interval"] == 5  # half the update latency, at least 5 s
    assert config["allow_prefixes"] == LAB_ALLOW_PREFIXES
    assert config["allow_temporary"] is False
    assert config["remove_absent_family"] is False
    assert config["absent_grace"] == 1800.0
    assert "Ansible" in config["_managed"]
    unit = (tmp_path / "systemd" / "ntsops-ddns-agent.service").read_text()
    assert unit.startswith("#")
    assert pair.key_secret not in unit
    assert pair.key_secret not in (etc / "config.json").read_text()
    assert_installed_core_is_the_repositorys(tmp_path / "lib")
    assert stat.S_IMODE((tmp_path / "lib" / "ntsops-ddns-agent").stat().st_mode) == 0o644

    # Start the agent as the unit would: its ExecStart, its PYTHONPATH, the key as a credential.
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    argv = shlex.split(exec_start.removeprefix("ExecStart="))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    agent = AgentLab(pair, "role.example.test", interface="ddnsr0")
    agent.add_interface("192.0.2.110", "2001:db8::110")
    once = pair.netns.run([*argv, "--once"], env=env, cwd="/", timeout=60)
    assert once.returncode == 0, once.stdout + once.stderr
    assert "A none -> 192.0.2.110" in once.stdout
    assert f"ttl {BUDGET_MAX_TTL}" in once.stdout
    agent.wait_served("A", ["192.0.2.110"], timeout=5)
    agent.wait_served("AAAA", ["2001:db8::110"], timeout=5)

    # A file of an older core (ddns.py, before _dns was split) goes on the next run.
    stale = tmp_path / "lib" / "ansible_collections/ntsops/nts/plugins/module_utils/_dns/ddns.py"
    stale.write_text("raise ImportError('a file of an older core')\n")
    third = run_playbook(playbook)
    assert third.returncode == 0, third.stdout
    assert recap_changed(third.stdout) > 0
    assert not stale.exists()
    assert_installed_core_is_the_repositorys(tmp_path / "lib")


def test_role_refuses_ttl_over_budget(pair: BindPair, tmp_path: Path) -> None:
    too_long = BUDGET_MAX_TTL + 100
    over = run_playbook(write_playbook(pair, tmp_path, ddns_agent_ttl=too_long))
    assert over.returncode != 0
    assert f"ddns_agent_ttl {too_long} s is above {BUDGET_MAX_TTL} s" in over.stdout
    assert not (tmp_path / "etc").exists()


def test_role_argument_spec_rejects_missing_key(pair: BindPair, tmp_path: Path) -> None:
    playbook = write_playbook(pair, tmp_path)
    play = json.loads(playbook.read_text())
    del play[0]["roles"][0]["vars"]["ddns_agent_key_secret"]
    playbook.write_text(json.dumps(play))
    missing = run_playbook(playbook)
    assert missing.returncode != 0
    assert "ddns_agent_key_secret" in missing.stdout
