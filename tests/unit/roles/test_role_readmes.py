# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Each role README's variable table must be what meta/argument_specs.yml gives."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_role_readme", ROOT / "scripts" / "gen-role-readme.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _load_generator()
ROLES = GEN.role_dirs(ROOT)


def test_roles_are_found() -> None:
    assert {role.name for role in ROLES} >= {"server", "client"}


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_readme_table_matches_argument_specs(role: Path) -> None:
    readme = role / "README.md"
    text = readme.read_text(encoding="utf-8")
    expected = GEN.updated_readme(text, GEN.render_table(role / "meta" / "argument_specs.yml"), readme)
    assert text == expected, f"{readme} is out of date: run .venv/bin/python scripts/gen-role-readme.py"


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_every_variable_has_a_row(role: Path) -> None:
    table = GEN.render_table(role / "meta" / "argument_specs.yml")
    options = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    for name in options:
        assert f"| `{name}` |" in table


def test_drift_is_detected(tmp_path: Path) -> None:
    spec = tmp_path / "argument_specs.yml"
    spec.write_text(
        "argument_specs:\n  main:\n    options:\n"
        "      demo_port:\n        type: int\n        default: 4460\n        description: A port.\n"
    )
    table = GEN.render_table(spec)
    readme = tmp_path / "README.md"
    stale = f"# demo\n{GEN.BEGIN}\n{table.replace('4460', '123')}\n{GEN.END}\n"
    assert GEN.updated_readme(stale, table, readme) != stale
    fresh = GEN.updated_readme(stale, table, readme)
    assert GEN.updated_readme(fresh, table, readme) == fresh


def test_missing_markers_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(GEN.ReadmeError):
        GEN.updated_readme("# no markers\n", "| table |", tmp_path / "README.md")
