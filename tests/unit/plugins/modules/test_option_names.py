"""Option names the modules share: the canonical name and the alias it replaced both reach the core."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from ansible.module_utils import basic
from ansible_collections.ntsops.nts.plugins.modules import cert_check

try:  # ansible-core 2.19 and later
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core 2.18: the module reads its arguments from basic._ANSIBLE_ARGS

    @contextlib.contextmanager
    def patch_module_args(args: dict[str, Any]) -> Iterator[None]:
        saved = basic._ANSIBLE_ARGS
        basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
        try:
            yield
        finally:
            basic._ANSIBLE_ARGS = saved

FILES = {"cert_path": "/etc/chrony/nts/fullchain.pem", "key_path": "/etc/chrony/nts/privkey.pem"}


def run_cert_check(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: dict[str, Any]
) -> dict[str, Any]:
    """Run cert_check's main() with the core replaced; return the keyword arguments the core got."""
    seen: dict[str, Any] = {}

    def fake_check_files(**kwargs: Any) -> dict[str, Any]:
        seen.update(kwargs)
        return {"ok": True, "problems": [], "served_matches": None, "served_sha256": None}

    monkeypatch.setattr(cert_check, "check_files", fake_check_files)
    with patch_module_args(args), pytest.raises(SystemExit) as excinfo:
        cert_check.main()
    output = json.loads(capsys.readouterr().out)
    assert excinfo.value.code == 0, output
    assert output["changed"] is False
    return seen


@pytest.mark.parametrize(
    ("args", "expected"),
    [({}, 14), ({"min_cert_days": 21}, 21), ({"min_days": 30}, 30)],
    ids=["default", "min_cert_days", "alias min_days"],
)
def test_cert_check_threshold_reaches_the_core(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: dict[str, Any], expected: int
) -> None:
    seen = run_cert_check(monkeypatch, capsys, {**FILES, **args})
    assert seen["min_days"] == expected
