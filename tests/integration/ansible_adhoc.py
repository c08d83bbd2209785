"""Run one ntsops module through Ansible (a one-task playbook, local connection).

Integration tests go through ansible itself, not the Python functions, so argument
specs, module packaging (AnsiballZ) and fail_json paths are exercised for real. The
registered result is written to a JSON file by the playbook itself, so the test
reads exactly what a later task would see.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]

PLAYBOOK = """\
- name: Run one module for a test
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Run the module under test
      {module}: {args}
      register: module_result
      ignore_errors: true
    - name: Save the registered result
      # Also in check mode: the test must see what the module returned.
      check_mode: false
      ansible.builtin.copy:
        content: "{{{{ module_result | to_json }}}}"
        dest: "{{{{ result_path }}}}"
        mode: "0600"
"""


@dataclass
class ModuleRun:
    result: dict[str, Any]
    elapsed: float
    stdout: str
    stderr: str

    @property
    def failed(self) -> bool:
        return bool(self.result.get("failed"))


def run_module(
    module: str,
    args: dict[str, Any],
    *,
    prefix: Sequence[str] = (),
    check_mode: bool = False,
    diff: bool = False,
    timeout: float = 120.0,
) -> ModuleRun:
    """Run `ntsops.nts.<module>` with `args`; `prefix` runs it inside a namespace."""
    with tempfile.TemporaryDirectory(prefix="ntsops-adhoc-") as tmp:
        playbook = Path(tmp) / "run.yml"
        result_path = Path(tmp) / "result.json"
        # JSON is YAML: the arguments go in literally, never through a template.
        playbook.write_text(PLAYBOOK.format(module=f"ntsops.nts.{module}", args=json.dumps(args)))
        extra_vars = {
            "result_path": str(result_path),
            # The module runs on the controller's venv, which has pyOpenSSL and friends.
            "ansible_python_interpreter": sys.executable,
        }
        argv = [
            *prefix,
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i", "localhost,",
            "-c", "local",
            "-e", json.dumps(extra_vars),
            str(playbook),
        ]
        if check_mode:
            argv.append("--check")
        if diff:
            argv.append("--diff")
        env = dict(os.environ, ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
        started = time.monotonic()
        proc = subprocess.run(
            argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        elapsed = time.monotonic() - started
        if not result_path.exists():
            raise AssertionError(
                f"ansible-playbook saved no result (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        result = json.loads(result_path.read_text())
    return ModuleRun(result=result, elapsed=elapsed, stdout=proc.stdout, stderr=proc.stderr)
