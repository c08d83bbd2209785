# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ntsops.nts.core_install on the controller: read the core's files, then run the module once.

The files come from this collection's own plugins/module_utils, the copy the controller's
modules and filters run, and travel in the module's arguments: one module run per host
whatever the number of files, where a copy task per file costs two round trips each.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

MODULE_UTILS = Path(__file__).resolve().parent.parent / "module_utils"


def core_files(patterns: list[str], root: Path = MODULE_UTILS) -> dict[str, str]:
    """Path below ``root`` -> text of every Python file the glob patterns give."""
    files: dict[str, str] = {}
    for pattern in patterns:
        parts = PurePosixPath(pattern).parts
        if not pattern or pattern.startswith("/") or ".." in parts:
            raise AnsibleActionFail(f"core_install: pattern {pattern!r} must stay below plugins/module_utils")
        matched = sorted(path for path in root.glob(pattern) if path.is_file() and path.suffix == ".py")
        if not matched:
            raise AnsibleActionFail(f"core_install: pattern {pattern!r} matches no Python file of the core")
        for path in matched:
            files[path.relative_to(root).as_posix()] = path.read_text(encoding="utf-8")
    return files


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        del tmp
        module_args = dict(self._task.args)
        patterns = module_args.get("patterns")
        try:
            if "files" in module_args:
                raise AnsibleActionFail("core_install: files is filled in from patterns; do not set it")
            # Anything else wrong (a missing or mistyped option) is the module's argument spec's to say.
            if isinstance(patterns, list) and all(isinstance(pattern, str) for pattern in patterns):
                module_args["files"] = core_files(patterns)
        except AnsibleActionFail as exc:
            result.update(exc.result)
            return result
        result.update(self._execute_module(module_name="ntsops.nts.core_install", module_args=module_args,
                                           task_vars=task_vars))
        return result
