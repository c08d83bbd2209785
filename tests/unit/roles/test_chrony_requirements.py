# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options that need a newer chrony: documented, off by default, and marked as set only when set.

Each role's vars/main.yml lists them as __nts_<role>_chrony_requirements (option,
first chrony version, whether it is set); the daemon role's chrony_requirements entry
point refuses the ones set that the installed chronyd lacks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
ROLES = ["server", "client"]


def _requirements(role: str) -> list[dict[str, Any]]:
    data = yaml.safe_load((ROOT / "roles" / role / "vars" / "main.yml").read_text(encoding="utf-8"))
    return data[f"__nts_{role}_chrony_requirements"]


def _spec(role: str, option: str) -> dict[str, Any]:
    """The argument spec of ``nts_client_ntsaeads`` or of ``nts_client_servers[].ip_family``."""
    data = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))
    options = data["argument_specs"]["main"]["options"]
    spec: dict[str, Any] = {}
    for part in option.split("[]."):
        spec = options[part]
        options = spec.get("options", {})
    return spec


def _is_set(expression: str, variables: dict[str, Any]) -> bool:
    # Output is compared with "True", never used as markup; autoescape changes nothing here.
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=True)
    return environment.from_string(expression).render(**variables) == "True"


def _defaults(role: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("role", ROLES)
def test_each_option_names_its_chrony_version_and_is_off_by_default(role: str) -> None:
    requirements = _requirements(role)
    assert requirements
    for requirement in requirements:
        spec = _spec(role, requirement["option"])
        assert f"chrony {requirement['version']} or later" in spec["description"], requirement["option"]
        assert spec.get("default") is None, requirement["option"]


@pytest.mark.parametrize("role", ROLES)
def test_nothing_is_set_with_the_defaults(role: str) -> None:
    defaults = _defaults(role)
    defaults.setdefault("nts_client_servers", [{"name": "nts.example.net"}])
    assert not [r["option"] for r in _requirements(role) if _is_set(r["set"], defaults)]


@pytest.mark.parametrize(
    ("role", "override", "option"),
    [
        ("server", {"nts_server_ntsaeads": [15]}, "nts_server_ntsaeads"),
        ("client", {"nts_client_ntsaeads": [30, 15]}, "nts_client_ntsaeads"),
        ("client", {"nts_client_refresh": 0}, "nts_client_refresh"),
        (
            "client",
            {"nts_client_servers": [{"name": "a.example.net"}, {"name": "b.example.net", "ip_family": "ipv6"}]},
            "nts_client_servers[].ip_family",
        ),
    ],
)
def test_an_option_set_is_the_one_marked(role: str, override: dict[str, Any], option: str) -> None:
    variables = {**_defaults(role), **override}
    assert [r["option"] for r in _requirements(role) if _is_set(r["set"], variables)] == [option]


def test_versions_are_the_first_chrony_with_the_option() -> None:
    """chrony's NEWS: refresh is 4.4, the ipv4/ipv6 source options 4.6, ntsaeads 4.6.1."""
    found = {r["option"]: r["version"] for role in ROLES for r in _requirements(role)}
    assert found == {
        "nts_server_ntsaeads": "4.6.1",
        "nts_client_ntsaeads": "4.6.1",
        "nts_client_refresh": "4.4",
        "nts_client_servers[].ip_family": "4.6",
    }
