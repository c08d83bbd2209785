#!/usr/bin/python
# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: core_install
short_description: Install part of the collection's Python core on a host, for a program run there
version_added: 0.1.0
description:
  - Installs Python files of this collection's core (C(plugins/module_utils)) below O(dest), at the
    path they have in the collection (C(ansible_collections/ntsops/nts/plugins/module_utils/...)).
    A program that puts O(dest) first on C(sys.path) then runs the same code as the controller's
    modules, filters and C(ntsops) command. The roles ntsops.nts.acme, ntsops.nts.ddns_agent and
    ntsops.nts.exporter install their programs' code with it.
  - The action plugin reads the files on the controller, from the collection it belongs to, and
    the module runs once per host whatever their number; it writes only the files whose content,
    mode or owner differ.
  - Python files below the installed C(module_utils) folder that O(patterns) no longer give are
    removed, so that nothing an older version installed stays importable.
  - Files are owned by root with mode 0644, folders by root with mode 0755.
author:
  - ntsops developers (@ntsops)
extends_documentation_fragment:
  - ntsops.nts._attributes
attributes:
  check_mode:
    support: full
    details: Reports the files it would write or remove, and writes nothing.
  diff_mode:
    support: full
    details: The paths written or removed, each with the SHA-256 of its content before and after.
options:
  dest:
    description: The folder that gets the C(ansible_collections) tree; created when missing.
    type: path
    required: true
  patterns:
    description:
      - Glob patterns below the collection's C(plugins/module_utils), such as V(_errors.py) and
        V(_dns/*.py). Each must give at least one Python file.
    type: list
    elements: str
    required: true
  files:
    description:
      - Path below C(plugins/module_utils) to the file's text. The action plugin fills it in from
        O(patterns); a task never sets it.
    type: dict
notes:
  - A pattern given as a whole package (V(_dns/*.py)) installs a file added to that package later
    without a change to the role that uses it.
"""

EXAMPLES = r"""
- name: Install the code the ddns agent runs
  ntsops.nts.core_install:
    dest: /usr/local/lib/ntsops-ddns-agent
    patterns:
      - _errors.py
      - _dns/*.py
      - _model/*.py
  notify: Restart the agent
"""

RETURN = r"""
package_dir:
  description: The folder below O(dest) that holds the installed files.
  returned: always
  type: str
  sample: /usr/local/lib/ntsops-ddns-agent/ansible_collections/ntsops/nts/plugins/module_utils
written:
  description: The files written (or, in check mode, that would be), relative to RV(package_dir).
  returned: always
  type: list
  elements: str
  sample: [_dns/agent.py]
removed:
  description: The Python files removed (or that would be) because no pattern gives them any more.
  returned: always
  type: list
  elements: str
  sample: [_dns/old_helper.py]
files:
  description: How many files the patterns gave.
  returned: always
  type: int
  sample: 63
"""

import hashlib
import os
import posixpath
import tempfile

from ansible.module_utils.basic import AnsibleModule

PACKAGE_PATH = ("ansible_collections", "ntsops", "nts", "plugins", "module_utils")
FILE_MODE = 0o644
DIR_MODE = 0o755


def _sha256(data: bytes | None) -> str:
    return "absent" if data is None else hashlib.sha256(data).hexdigest()


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _wrong_attributes(path: str) -> bool:
    stat = os.lstat(path)
    return (stat.st_mode & 0o7777) != FILE_MODE or stat.st_uid != 0 or stat.st_gid != 0


def check_relative(name: object) -> str:
    """The relative path, or ValueError when it is not a plain path to a .py file below the folder."""
    if not isinstance(name, str) or not name.endswith(".py") or name.startswith("/") or "\\" in name:
        raise ValueError(f"{name!r} is not a relative path to a Python file")
    if posixpath.normpath(name) != name or ".." in name.split("/"):
        raise ValueError(f"{name!r} is not a plain relative path")
    return name


def plan(package_dir: str, files: dict[str, bytes]) -> tuple[list[str], list[str], dict[str, str]]:
    """What to write and remove below ``package_dir``, and the SHA-256 of each before."""
    before: dict[str, str] = {}
    written = []
    for name, data in sorted(files.items()):
        path = os.path.join(package_dir, name)
        current = _read(path)
        if current != data or _wrong_attributes(path):
            written.append(name)
            before[name] = _sha256(current)
    removed = []
    if os.path.isdir(package_dir):
        for folder, _dirs, names in os.walk(package_dir):
            for entry in names:
                name = os.path.relpath(os.path.join(folder, entry), package_dir).replace(os.sep, "/")
                if entry.endswith(".py") and "__pycache__" not in name.split("/") and name not in files:
                    removed.append(name)
                    before[name] = _sha256(_read(os.path.join(package_dir, name)))
    return written, sorted(removed), before


def _make_dirs(dest: str, package_dir: str, names: list[str]) -> None:
    folders = {dest}
    path = dest
    for part in PACKAGE_PATH:
        path = os.path.join(path, part)
        folders.add(path)
    folders.update(os.path.dirname(os.path.join(package_dir, name)) for name in names)
    for folder in sorted(folders):
        os.makedirs(folder, mode=DIR_MODE, exist_ok=True)
        stat = os.stat(folder)
        if stat.st_uid != 0 or stat.st_gid != 0:
            os.chown(folder, 0, 0)
        if stat.st_mode & 0o7777 != DIR_MODE:
            os.chmod(folder, DIR_MODE)


def _write(path: str, data: bytes) -> None:
    fd, temporary = tempfile.mkstemp(prefix=".ntsops-", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chown(temporary, 0, 0)
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "dest": {"type": "path", "required": True},
            "patterns": {"type": "list", "elements": "str", "required": True},
            "files": {"type": "dict"},
        },
        supports_check_mode=True,
    )
    dest = module.params["dest"]
    given = module.params["files"]
    if given is None:
        module.fail_json(msg="files is missing: run core_install as the ntsops.nts.core_install action")
    try:
        files = {check_relative(name): text.encode("utf-8") for name, text in given.items()}
    except (ValueError, AttributeError) as exc:
        module.fail_json(msg=f"files: {exc}")
    if not os.path.isabs(dest):
        module.fail_json(msg=f"dest {dest!r} must be an absolute path")
    package_dir = os.path.join(dest, *PACKAGE_PATH)
    try:
        written, removed, before = plan(package_dir, files)
    except OSError as exc:
        module.fail_json(msg=f"cannot read {exc.filename or package_dir}: {exc.strerror}")
    changed = bool(written or removed)
    if changed and not module.check_mode:
        try:
            _make_dirs(dest, package_dir, written)
            for name in written:
                _write(os.path.join(package_dir, name), files[name])
            for name in removed:
                os.unlink(os.path.join(package_dir, name))
        except OSError as exc:
            module.fail_json(msg=f"cannot write {exc.filename or package_dir}: {exc.strerror}",
                             written=[], removed=[])
    result = {"changed": changed, "package_dir": package_dir, "written": written, "removed": removed,
              "files": len(files)}
    if module._diff:
        result["diff"] = {
            "before_header": package_dir, "after_header": package_dir,
            "before": "".join(f"{name} {before[name]}\n" for name in sorted(before)),
            "after": "".join(f"{name} {_sha256(files.get(name))}\n" for name in sorted(before)),
        }
    module.exit_json(**result)


if __name__ == "__main__":
    main()
