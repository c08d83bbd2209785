# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ddns_agent and exporter roles install a core that holds everything their code imports.

Each role copies the files that its patterns (``__<role>_core`` in vars/main.yml)
give below plugins/module_utils; here every collection import in those files, and the
launcher's, must resolve to one of them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
# role -> its launcher in files/
ROLES = {"acme": "ntsops-acme", "ddns_agent": "ntsops-ddns-agent", "exporter": "ntsops-exporter"}
MODULE_UTILS = ROOT / "plugins" / "module_utils"
PREFIX = "ansible_collections.ntsops.nts.plugins.module_utils."


def _patterns(role: str) -> list[str]:
    variables = yaml.safe_load((ROOT / "roles" / role / "vars" / "main.yml").read_text(encoding="utf-8"))
    patterns: list[str] = variables[f"__{role}_core"]
    return patterns


def _core_files(role: str) -> set[str]:
    # The role expands the same patterns with the fileglob lookup.
    return {str(p.relative_to(MODULE_UTILS)) for pattern in _patterns(role) for p in MODULE_UTILS.glob(pattern)}


def _candidates(dotted: str) -> list[str]:
    """The files a module_utils import may name: a module or a package."""
    path = dotted.removeprefix(PREFIX).replace(".", "/")
    return [f"{path}.py", f"{path}/__init__.py"]


def _collection_imports(source: Path) -> list[tuple[str, list[str]]]:
    """Each collection import as (written module, files it may resolve to), guarded ones included."""
    found = []
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, _candidates(alias.name)) for alias in node.names if alias.name.startswith(PREFIX)]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PREFIX):
            # "from package import module" names a file; "from module import name" needs only the module.
            for alias in node.names:
                written = f"{node.module}.{alias.name}"
                found.append((written, [*_candidates(written), *_candidates(node.module)]))
    return found


@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_pattern_gives_files(role: str) -> None:
    for pattern in _patterns(role):
        assert list(MODULE_UTILS.glob(pattern)), f"__{role}_core: {pattern} matches no file"


@pytest.mark.parametrize("role", sorted(ROLES))
def test_the_core_holds_every_package_it_uses_whole(role: str) -> None:
    core = _core_files(role)
    for name in core:
        package = Path(name).parent
        if str(package) != ".":
            whole = {str(path.relative_to(MODULE_UTILS)) for path in (MODULE_UTILS / package).glob("*.py")}
            assert whole <= core, f"{role}: {package} is installed only in part: {sorted(whole - core)} missing"


@pytest.mark.parametrize("role", sorted(ROLES))
def test_the_core_holds_everything_it_and_the_launcher_import(role: str) -> None:
    core = _core_files(role)
    launcher = ROOT / "roles" / role / "files" / ROLES[role]
    sources = [MODULE_UTILS / name for name in sorted(core)] + [launcher]
    assert _collection_imports(launcher), "the launcher imports nothing from the collection"
    for source in sources:
        for module, files in _collection_imports(source):
            assert core & set(files), f"{source.relative_to(ROOT)} imports {module}, which {role} does not install"
