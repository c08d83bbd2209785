"""``ntsops herd``: the summary of canned sessions by class, the report and the exit code, without a real server."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import time
from pathlib import Path

import pytest

if importlib.util.find_spec("ntsops_cli") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from ansible_collections.ntsops.nts.plugins.module_utils._herd import herd, plan
from ansible_collections.ntsops.nts.plugins.module_utils._herd.session import SessionResult

import ntsops_cli.herd as herd_cli
from ntsops_cli.main import main

# ------------------------------------------------------------------ the herd with canned sessions


def _canned_runner(outcomes: dict[str, list[str]]) -> tuple[herd.SessionRunner, list[str | None]]:
    """Each source address plays its outcomes in order; records which sources were used."""
    used: list[str | None] = []
    lock = threading.Lock()
    positions: dict[str | None, int] = {}

    def runner(source: str | None) -> SessionResult:
        with lock:
            used.append(source)
            index = positions.get(source, 0)
            positions[source] = index + 1
        outcome = outcomes[source or ""][index % len(outcomes[source or ""])]
        cookies = 8 if outcome == "ok" else 0
        latency = 0.002 if outcome == "ok" else 0.001
        return SessionResult(
            source or "", outcome, time.monotonic(), latency, 0.001, cookies, f"canned {outcome}"
        )

    return runner, used


def test_summary_counts_classes_in_total_and_per_source() -> None:
    sources = ("127.0.1.1", "127.0.1.2")
    runner, used = _canned_runner({
        "127.0.1.1": ["ok"],
        "127.0.1.2": ["ok", "closed", "refused", "timeout", "error_record", "tls_error", "protocol_error", "other"],
    })
    options = plan.HerdOptions(target="127.0.0.1", clients=16, duration=5.0, source_addresses=sources, concurrency=4)
    summary = herd.run_herd(options, runner)
    assert used.count("127.0.1.1") == used.count("127.0.1.2") == 8
    assert summary["attempted"] == 16
    assert summary["ok"] == 9
    assert summary["failures"] == {
        "refused": 1, "closed": 1, "tls_error": 1, "timeout": 1, "error_record": 1, "protocol_error": 1, "other": 1,
    }
    assert summary["cookies"] == 72
    assert summary["per_source"]["127.0.1.1"]["ok"] == 8
    assert summary["per_source"]["127.0.1.2"]["failures"]["closed"] == 1
    assert summary["latency_ms"]["p50"] == pytest.approx(2.0)
    assert summary["failure_examples"]["closed"] == "canned closed"
    assert summary["not_started"] == 0
    assert summary["ke_per_second"] > 0


def test_rate_bounds_the_run_by_duration() -> None:
    runner, used = _canned_runner({"": ["ok"]})
    options = plan.HerdOptions(target="127.0.0.1", clients=50, duration=0.3, rate=50.0, concurrency=4)
    summary = herd.run_herd(options, runner)
    # Starts at 0, 0.02, ... 0.28 s fit in 0.3 s: 15 clients; the rest are never started.
    assert summary["attempted"] == len(used) == 15
    assert summary["not_started"] == 35
    assert summary["mode"] == "rate"


# ------------------------------------------------------------------ the command


def test_command_refuses_a_remote_target_without_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["herd", "192.0.2.1", "--clients", "1", "--duration", "1"])
    assert code == herd_cli.EXIT_USAGE
    assert "not a loopback address" in capsys.readouterr().err


def test_command_needs_an_ipv4_loopback_target_for_generated_sources(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["herd", "::1", "--clients", "1", "--duration", "1", "--source-addresses", "2"])
    assert code == herd_cli.EXIT_USAGE
    assert "--source-addresses K needs an IPv4 loopback target" in capsys.readouterr().err


def test_command_report_and_exit_code(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    runner, _used_sources = _canned_runner({f"127.0.1.{i}": ["ok", "closed"] for i in (1, 2)})
    real_run_herd = herd.run_herd
    monkeypatch.setattr(herd, "run_herd", lambda options: real_run_herd(options, runner))
    code = main(["herd", "127.0.0.1", "--clients", "8", "--duration", "2", "--source-addresses", "2"])
    out = capsys.readouterr().out
    assert code == herd_cli.EXIT_FAILURES
    assert "ok 4:" in out
    assert "accepted then closed (rate limit or allow) 4" in out
    assert "127.0.1.1" in out and "127.0.1.2" in out

    code = main(["herd", "127.0.0.1", "--clients", "4", "--duration", "2", "--source-addresses", "2", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert data["failures"]["closed"] == 2
    assert set(data["per_source"]) == {"127.0.1.1", "127.0.1.2"}


def test_command_rate_and_curve_are_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["herd", "127.0.0.1", "--clients", "1", "--duration", "1", "--rate", "1", "--curve", "x"])
    assert exited.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


def test_simulate_writes_a_curve_herd_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "curve.json"
    code = main(["simulate", "--clients", "2000", "--client", "chrony-4.3,maxpoll=6", "--curve-out", str(path)])
    assert code == 0
    capsys.readouterr()
    document = json.loads(path.read_text())
    assert document["format"] == plan.CURVE_FORMAT
    assert sum(document["counts"]) == 2000
    weights = plan.load_curve(str(path))
    assert weights[0] > 0 and weights[-1] > 0
    starts = plan.plan_starts(100, 5.0, None, weights)
    assert starts is not None and len(starts) == 100
