"""The state file ntsops-acme writes and the ntsops_acme_* series the exporter makes of it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._acme import state
from ansible_collections.ntsops.nts.plugins.module_utils._check import prometheus


def test_runs_count_failures_until_a_success(tmp_path: Path) -> None:
    path = state.path_for(str(tmp_path), "time.example.net")
    current: dict[str, Any] = state.load(path)
    assert current == {}
    for ok, when in ((False, 10.0), (False, 20.0)):
        current = state.record_run(current, cert_name="time.example.net", step="renew", ok=ok,
                                   reason=None if ok else "tsig_rejected", message="m", when=when)
    assert current["consecutive_failures"] == 2 and "last_success_time" not in current
    current = state.record_run(current, cert_name="time.example.net", step="renew", ok=True, reason=None,
                               message="renewed", when=30.0, extra={"not_after": 99.0})
    assert current["consecutive_failures"] == 0 and current["last_success_time"] == 30.0
    state.save(path, current)
    assert state.load(path) == current
    assert (Path(path).stat().st_mode & 0o777) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["time.example.net.json"]


@pytest.mark.parametrize("name", ["../etc/passwd", "", "a/b", ".hidden"])
def test_a_name_that_is_not_a_lineage_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(state.StateError):
        state.path_for(str(tmp_path), name)


@pytest.mark.parametrize(("content", "message"), [(b"{", "is not JSON"), (b"[]", "JSON object"),
                                                  (b" " * 70000, "larger than")])
def test_damaged_state_is_an_error_not_a_traceback(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(content)
    with pytest.raises(state.StateError, match=message):
        state.load(str(path))


def test_families_of_a_failed_deploy(parse_exposition: Callable[[str], Any]) -> None:
    failed = {"cert_name": "time.example.net", "consecutive_failures": 1, "served_matches": False,
              "last_success_time": 5.0, "not_after": 1e9, "renew_before_expiry_seconds": 172800,
              "last_run": {"step": "deploy", "ok": False, "reason": "served_mismatch", "time": 7.0}}
    text = prometheus.render(state.families([failed, {"no": "name"}], True))
    declared, samples = parse_exposition(text)
    values = {(m, tuple(sorted(labels.items()))): v for m, labels, v in samples}
    lineage = (("cert_name", "time.example.net"),)
    assert values[("ntsops_acme_state_readable", ())] == 1
    assert values[("ntsops_acme_last_run_success", lineage)] == 0
    assert values[("ntsops_acme_served_matches", lineage)] == 0
    assert values[("ntsops_acme_last_run_timestamp_seconds", lineage)] == 7
    assert values[("ntsops_acme_renew_before_expiry_seconds", lineage)] == 172800
    info = (("cert_name", "time.example.net"), ("reason", "served_mismatch"), ("step", "deploy"))
    assert values[("ntsops_acme_last_failure_info", info)] == 1
    assert all(kind == "gauge" for kind, _help in declared.values())


def test_read_directory_reports_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "good.json").write_text(json.dumps({"cert_name": "good", "last_run": {"ok": True, "time": 1}}))
    (tmp_path / "bad.json").write_text("{")
    states, readable = state.read_directory(str(tmp_path))
    assert [s["cert_name"] for s in states] == ["good"] and readable is False
    assert state.read_directory(str(tmp_path / "absent")) == ([], True)
