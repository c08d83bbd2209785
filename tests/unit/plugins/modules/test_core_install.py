"""ntsops.nts.core_install: the action's file list and the module's writes, removals and check mode."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from ansible.errors import AnsibleActionFail
from ansible_collections.ntsops.nts.plugins.action.core_install import MODULE_UTILS, core_files
from ansible_collections.ntsops.nts.plugins.modules import core_install

PATTERNS = ["_errors.py", "_dns/*.py"]
AS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="the module makes its files root's: needs root")


def test_patterns_give_every_python_file_of_the_packages_named() -> None:
    files = core_files(PATTERNS)
    expected = {"_errors.py"} | {f"_dns/{path.name}" for path in (MODULE_UTILS / "_dns").glob("*.py")}
    assert set(files) == expected
    assert files["_errors.py"] == (MODULE_UTILS / "_errors.py").read_text(encoding="utf-8")


@pytest.mark.parametrize("pattern", ["../modules/*.py", "/etc/*.py", "_nothing_here/*.py", ""])
def test_a_pattern_outside_the_core_or_matching_nothing_is_refused(pattern: str) -> None:
    with pytest.raises(AnsibleActionFail, match="core_install: pattern"):
        core_files([pattern])


def _args(dest: Path, files: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"dest": str(dest), "patterns": PATTERNS, "files": files, **extra}


@AS_ROOT
def test_install_then_nothing_to_do_then_one_file_and_a_stale_one(tmp_path: Path, run_module: Any) -> None:
    files = core_files(PATTERNS)
    code, first = run_module(core_install.main, _args(tmp_path, files))
    package = tmp_path / "ansible_collections/ntsops/nts/plugins/module_utils"
    assert code == 0 and first["changed"] is True and first["package_dir"] == str(package)
    assert sorted(first["written"]) == sorted(files) and first["files"] == len(files)
    assert (package / "_dns" / "agent.py").read_text(encoding="utf-8") == files["_dns/agent.py"]
    assert oct((package / "_dns" / "agent.py").stat().st_mode & 0o7777) == "0o644"
    assert oct(package.stat().st_mode & 0o7777) == "0o755"

    code, again = run_module(core_install.main, _args(tmp_path, files))
    assert code == 0 and again["changed"] is False and again["written"] == again["removed"] == []

    (package / "_dns" / "agent.py").write_text("# edited by hand\n", encoding="utf-8")
    (package / "_dns" / "old_helper.py").write_text("x = 1\n", encoding="utf-8")
    (package / "_errors.py").chmod(0o666)
    code, check = run_module(core_install.main, _args(tmp_path, files, _ansible_check_mode=True, _ansible_diff=True))
    assert code == 0 and check["changed"] is True
    assert check["written"] == ["_dns/agent.py", "_errors.py"] and check["removed"] == ["_dns/old_helper.py"]
    assert "_dns/old_helper.py" in check["diff"]["before"] and "_dns/old_helper.py absent" in check["diff"]["after"]
    assert (package / "_dns" / "old_helper.py").exists(), "check mode removed a file"

    code, fixed = run_module(core_install.main, _args(tmp_path, files))
    assert code == 0 and fixed["changed"] is True and fixed["removed"] == ["_dns/old_helper.py"]
    assert not (package / "_dns" / "old_helper.py").exists()
    assert (package / "_dns" / "agent.py").read_text(encoding="utf-8") == files["_dns/agent.py"]
    assert oct((package / "_errors.py").stat().st_mode & 0o7777) == "0o644"


@pytest.mark.parametrize("name", ["../escape.py", "/etc/evil.py", "_dns/../../x.py", "_dns/agent.txt", "a//b.py"])
def test_a_path_that_is_not_a_plain_python_file_below_the_folder_changes_nothing(
    tmp_path: Path, run_module: Any, name: str
) -> None:
    code, result = run_module(core_install.main, _args(tmp_path / "dest", {name: "x = 1\n"}))
    assert code == 1 and result["failed"] is True and result["msg"].startswith("files: ")
    assert not (tmp_path / "dest").exists()


def test_without_the_action_the_module_says_so(tmp_path: Path, run_module: Any) -> None:
    code, result = run_module(core_install.main, {"dest": str(tmp_path), "patterns": PATTERNS})
    assert code == 1 and "run core_install as the ntsops.nts.core_install action" in result["msg"]
