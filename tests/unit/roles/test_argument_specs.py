# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""defaults/main.yml and meta/argument_specs.yml of each role must describe the same variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
ROLES = sorted(path.parent.parent for path in (ROOT / "roles").glob("*/meta/argument_specs.yml"))
TYPES = {"str", "int", "float", "bool", "list", "dict", "path", "raw"}


def _options(role: Path) -> dict[str, Any]:
    data = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))
    return data["argument_specs"]["main"]["options"]


def _defaults(role: Path) -> dict[str, Any]:
    return yaml.safe_load((role / "defaults" / "main.yml").read_text(encoding="utf-8")) or {}


def _walk(options: dict[str, Any], prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, option in options.items():
        found.append((prefix + name, option))
        found.extend(_walk(option.get("options", {}), prefix=f"{prefix}{name}."))
    return found


def test_roles_are_found() -> None:
    assert {role.name for role in ROLES} >= {"server", "client"}


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_every_default_is_documented(role: Path) -> None:
    missing = sorted(set(_defaults(role)) - set(_options(role)))
    assert not missing, f"{role.name}: in defaults/main.yml but not in argument_specs: {missing}"


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_every_optional_variable_has_a_default(role: Path) -> None:
    options = _options(role)
    optional = {name for name, option in options.items() if not option.get("required")}
    missing = sorted(optional - set(_defaults(role)))
    assert not missing, f"{role.name}: in argument_specs but not in defaults/main.yml: {missing}"
    required_with_default = sorted((set(options) - optional) & set(_defaults(role)))
    assert not required_with_default, f"{role.name}: required variables have a default: {required_with_default}"


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_spec_defaults_equal_defaults_file(role: Path) -> None:
    defaults = _defaults(role)
    for name, option in _options(role).items():
        if option.get("required"):
            continue
        assert "default" in option, f"{role.name}: {name} has no default in argument_specs"
        assert option["default"] == defaults[name], (
            f"{role.name}: {name} defaults to {defaults[name]!r} in defaults/main.yml "
            f"but {option['default']!r} in argument_specs"
        )


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_every_option_is_typed_and_described(role: Path) -> None:
    for name, option in _walk(_options(role)):
        assert option.get("type") in TYPES, f"{role.name}: {name} has type {option.get('type')!r}"
        assert option.get("description"), f"{role.name}: {name} has no description"
        if option["type"] == "list":
            assert "elements" in option, f"{role.name}: list {name} has no elements"
        if "choices" in option and "default" in option and option["default"] is not None:
            assert option["default"] in option["choices"], f"{role.name}: {name} default is not a choice"


def _prefix(role: Path) -> str:
    """The role's variable prefix: nts_<role>_ (server, client) or <role>_ (ddns_agent)."""
    names = list(_options(role))
    for prefix in (f"nts_{role.name}_", f"{role.name}_"):
        if names and names[0].startswith(prefix):
            return prefix
    raise AssertionError(f"{role.name}: {names[:1]} starts with neither nts_{role.name}_ nor {role.name}_")


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_user_variables_carry_the_role_prefix(role: Path) -> None:
    prefix = _prefix(role)
    for name in list(_defaults(role)) + list(_options(role)):
        assert name.startswith(prefix), f"{role.name}: {name} does not start with {prefix}"


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_internal_variables_are_private(role: Path) -> None:
    prefix = "__" + _prefix(role)
    for vars_file in sorted((role / "vars").glob("*.yml")):
        data = yaml.safe_load(vars_file.read_text(encoding="utf-8")) or {}
        for name in data:
            assert name.startswith(prefix), f"{vars_file}: {name} does not start with {prefix}"


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_templates_start_with_ansible_managed(role: Path) -> None:
    # JSON has no comment syntax, so JSON templates cannot carry the header.
    for template in sorted(path for path in (role / "templates").glob("*.j2") if not path.name.endswith(".json.j2")):
        lines = template.read_text(encoding="utf-8").splitlines()
        # A script keeps its #! line first.
        head = lines[1] if lines and lines[0].startswith("#!") else lines[0]
        assert head == "{{ ansible_managed | comment }}", f"{template} does not start with the ansible_managed header"
