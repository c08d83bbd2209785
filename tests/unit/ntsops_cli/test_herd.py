"""``ntsops herd``: schedules, curve files, limits, failure classes and the report, without a real server
(a few loopback sockets stand in for "refused" and "accepted then closed")."""

from __future__ import annotations

import importlib.util
import json
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

if importlib.util.find_spec("ntsops_cli") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsProtocolError
from ansible_collections.ntsops.nts.plugins.module_utils._herd import herd
from ansible_collections.ntsops.nts.plugins.module_utils._net import nts_client
from OpenSSL import SSL

import ntsops_cli.herd as herd_cli
from ntsops_cli.main import main

# ------------------------------------------------------------------ schedule and curve


def test_rate_spaces_starts_evenly() -> None:
    assert herd.plan_starts(4, 10.0, 2.0, None) == [0.0, 0.5, 1.0, 1.5]


def test_no_rate_and_no_curve_means_as_fast_as_possible() -> None:
    assert herd.plan_starts(5, 1.0, None, None) is None


def test_curve_keeps_the_shape_and_the_client_count() -> None:
    starts = herd.plan_starts(100, 4.0, None, (1.0, 0.0, 3.0, 0.0))
    assert starts is not None
    assert len(starts) == 100
    assert sum(1 for s in starts if 0 <= s < 1) == 25
    assert sum(1 for s in starts if 2 <= s < 3) == 75
    assert not any(1 <= s < 2 or s >= 3 for s in starts)


def test_curve_shares_by_largest_remainder() -> None:
    starts = herd.plan_starts(10, 3.0, None, (1.0, 1.0, 1.0))
    assert starts is not None
    per_bin = [sum(1 for s in starts if i <= s < i + 1) for i in range(3)]
    assert sorted(per_bin) == [3, 3, 4]


def test_curve_document_round_trip_trims_quiet_ends(tmp_path: Path) -> None:
    path = tmp_path / "curve.json"
    path.write_text(json.dumps(herd.curve_document([0, 0, 5, 0, 7, 0], 1.0, clients=12)))
    assert herd.load_curve(str(path)) == (5.0, 0.0, 7.0)


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ({"counts": [1]}, "format"),
        ({"format": herd.CURVE_FORMAT, "counts": []}, "no 'counts'"),
        ({"format": herd.CURVE_FORMAT, "counts": [1, -1]}, "non-negative"),
        ({"format": herd.CURVE_FORMAT, "counts": [True]}, "non-negative"),
        ({"format": herd.CURVE_FORMAT, "counts": [0, 0]}, "sum to zero"),
        ([1, 2], "format"),
    ],
)
def test_bad_curves_are_refused(document: Any, words: str) -> None:
    with pytest.raises(herd.HerdError, match=words):
        herd.parse_curve(document)


def test_curve_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text("counts: 1")
    with pytest.raises(herd.HerdError, match="not JSON"):
        herd.load_curve(str(path))


# ------------------------------------------------------------------ limits


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"target": "192.0.2.1"}, "not a loopback address"),
        ({"target": "2001:db8::1"}, "not a loopback address"),
        ({"target": "localhost"}, "not an IP address"),
        ({"clients": 0}, "clients must be"),
        ({"clients": herd.MAX_CLIENTS + 1}, "clients must be"),
        ({"duration": 0}, "duration"),
        ({"duration": herd.MAX_DURATION_S + 1}, "duration"),
        ({"concurrency": 0}, "concurrency"),
        ({"rate": 0.0}, "rate"),
        ({"rate": 1.0, "curve": (1.0,)}, "not both"),
        ({"source_addresses": ("::1",)}, "address family"),
        ({"source_addresses": ("192.0.2.5",)}, "outside loopback"),
        ({"timeout": 0}, "timeout"),
        ({"processes": 0}, "processes"),
        ({"processes": herd.MAX_PROCESSES + 1}, "processes"),
    ],
)
def test_options_are_bounded_and_loopback_only(changes: dict[str, Any], words: str) -> None:
    options = herd.HerdOptions(**{"target": "127.0.0.1", **changes})
    with pytest.raises(herd.HerdError, match=words):
        options.validate()


def test_remote_target_only_when_the_operator_means_it() -> None:
    herd.HerdOptions(target="198.51.100.10", source_addresses=("198.51.100.20",), allow_remote=True).validate()
    herd.HerdOptions(target="::1").validate()
    herd.HerdOptions(target="127.3.4.5").validate()


def test_loopback_sources_are_distinct() -> None:
    sources = herd.loopback_sources(300)
    assert len(set(sources)) == 300
    assert sources[0] == "127.0.1.1"
    assert all(s.startswith("127.") for s in sources)
    with pytest.raises(herd.HerdError):
        herd.loopback_sources(0)


# ------------------------------------------------------------------ the herd with canned sessions


def _canned_runner(outcomes: dict[str, list[str]]) -> tuple[herd.SessionRunner, list[str | None]]:
    """Each source address plays its outcomes in order; records which sources were used."""
    used: list[str | None] = []
    lock = threading.Lock()
    positions: dict[str | None, int] = {}

    def runner(source: str | None) -> herd.SessionResult:
        with lock:
            used.append(source)
            index = positions.get(source, 0)
            positions[source] = index + 1
        outcome = outcomes[source or ""][index % len(outcomes[source or ""])]
        cookies = 8 if outcome == "ok" else 0
        latency = 0.002 if outcome == "ok" else 0.001
        return herd.SessionResult(
            source or "", outcome, time.monotonic(), latency, 0.001, cookies, f"canned {outcome}"
        )

    return runner, used


def test_summary_counts_classes_in_total_and_per_source() -> None:
    sources = ("127.0.1.1", "127.0.1.2")
    runner, used = _canned_runner({
        "127.0.1.1": ["ok"],
        "127.0.1.2": ["ok", "closed", "refused", "timeout", "error_record", "tls_error", "protocol_error", "other"],
    })
    options = herd.HerdOptions(target="127.0.0.1", clients=16, duration=5.0, source_addresses=sources, concurrency=4)
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
    options = herd.HerdOptions(target="127.0.0.1", clients=50, duration=0.3, rate=50.0, concurrency=4)
    summary = herd.run_herd(options, runner)
    # Starts at 0, 0.02, ... 0.28 s fit in 0.3 s: 15 clients; the rest are never started.
    assert summary["attempted"] == len(used) == 15
    assert summary["not_started"] == 35
    assert summary["mode"] == "rate"


# ------------------------------------------------------------------ real sockets for two classes


def _listener(accept_and_close: bool) -> tuple[socket.socket, threading.Thread | None]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    if not accept_and_close:
        return server, None  # bound, not listening: a connect is refused
    server.listen(8)
    server.settimeout(5)

    def serve() -> None:
        try:
            conn, _peer = server.accept()
            conn.close()
        except OSError:
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, thread


@pytest.mark.parametrize(("accept_and_close", "outcome"), [(False, "refused"), (True, "closed")])
def test_real_session_classifies_refused_and_accepted_then_closed(accept_and_close: bool, outcome: str) -> None:
    server, thread = _listener(accept_and_close)
    try:
        port = server.getsockname()[1]
        context = herd.make_context(None)
        result = herd.run_session("127.0.0.1", port, None, context, source="127.0.1.7", timeout=2.0)
    finally:
        server.close()
        if thread:
            thread.join(5)
    assert result.outcome == outcome, result.detail
    assert result.source == "127.0.1.7"
    assert result.latency_s < 2.0


def test_key_exchange_failures_are_classified_by_their_cause() -> None:
    deadline = nts_client.Deadline(60)

    def failure(cause: BaseException | None) -> nts_client.NtsStepError:
        exc = nts_client.NtsStepError("ke", "x")
        exc.__cause__ = cause
        return exc

    assert herd._classify_ke_failure(failure(NtsProtocolError("bad")), deadline) == "protocol_error"
    assert herd._classify_ke_failure(failure(SSL.SysCallError(-1, "Unexpected EOF")), deadline) == "closed"
    assert herd._classify_ke_failure(failure(SSL.Error([])), deadline) == "tls_error"
    assert herd._classify_ke_failure(failure(None), deadline) == "closed"
    assert herd._classify_ke_failure(failure(None), nts_client.Deadline(0)) == "timeout"


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
    assert document["format"] == herd.CURVE_FORMAT
    assert sum(document["counts"]) == 2000
    weights = herd.load_curve(str(path))
    assert weights[0] > 0 and weights[-1] > 0
    starts = herd.plan_starts(100, 5.0, None, weights)
    assert starts is not None and len(starts) == 100
