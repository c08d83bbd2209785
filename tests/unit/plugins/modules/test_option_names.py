"""Option names the modules share: the canonical name and the alias it replaced both reach the core."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.ntsops.nts.plugins.modules import cert_check

FILES = {"cert_path": "/etc/chrony/nts/fullchain.pem", "key_path": "/etc/chrony/nts/privkey.pem"}


def run_cert_check(monkeypatch: pytest.MonkeyPatch, run_module: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Run cert_check's main() with the core replaced; return the keyword arguments the core got."""
    seen: dict[str, Any] = {}

    def fake_check_files(**kwargs: Any) -> dict[str, Any]:
        seen.update(kwargs)
        return {"ok": True, "problems": [], "served_matches": None, "served_sha256": None}

    monkeypatch.setattr(cert_check, "check_files", fake_check_files)
    code, output = run_module(cert_check.main, args)
    assert code == 0, output
    assert output["changed"] is False
    return seen


@pytest.mark.parametrize(
    ("args", "expected"),
    [({}, 14), ({"min_cert_days": 21}, 21), ({"min_days": 30}, 30)],
    ids=["default", "min_cert_days", "alias min_days"],
)
def test_cert_check_threshold_reaches_the_core(
    monkeypatch: pytest.MonkeyPatch, run_module: Any, args: dict[str, Any], expected: int
) -> None:
    seen = run_cert_check(monkeypatch, run_module, {**FILES, **args})
    assert seen["min_days"] == expected
