"""``ntsops`` itself: every subcommand is listed, and only the chosen one's module is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
# A fresh interpreter per case: this test process has imported every subcommand already.
PROBE = """
import json, sys
from ntsops_cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
loaded = sorted(name for name in sys.modules if name.startswith("ntsops_cli.") or name == "numpy")
print(json.dumps({"code": code, "loaded": loaded}), file=sys.stderr)
"""


def probe(*argv: str) -> tuple[str, dict[str, object]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / ".collections")])}
    result = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    return result.stdout, json.loads(result.stderr.strip().splitlines()[-1])


def test_help_lists_every_subcommand_and_imports_none() -> None:
    out, state = probe("--help")
    assert state["code"] == 0
    for name in ("check", "simulate", "herd"):
        assert f"    {name} " in out
    assert state["loaded"] == ["ntsops_cli.main"]


@pytest.mark.parametrize(("argv", "module"), [
    (["check", "--help"], "ntsops_cli.check"),
    (["simulate", "--help"], "ntsops_cli.simulate"),
    (["herd", "--help"], "ntsops_cli.herd"),
])
def test_a_subcommand_imports_its_module_only(argv: list[str], module: str) -> None:
    out, state = probe(*argv)
    assert state["code"] == 0
    assert out.startswith(f"usage: ntsops {argv[0]} ")
    loaded = state["loaded"]
    assert isinstance(loaded, list)
    assert module in loaded
    assert not ({"ntsops_cli.check", "ntsops_cli.simulate", "ntsops_cli.herd"} - {module}) & set(loaded)


def test_check_does_not_load_numpy() -> None:
    _out, state = probe("check", "--help")
    assert "numpy" not in state["loaded"]  # type: ignore[operator]
