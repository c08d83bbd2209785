"""The exporter's HTTP layer on loopback, with a canned prober: status codes, messages, config errors."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._check import exporter_http as exporter
from ansible_collections.ntsops.nts.plugins.module_utils._check.exporter_config import (
    ExporterConfigError,
    parse_config,
)

from ntsops_cli.main import main


def _fetch(base: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(base + path, headers=headers or {})  # noqa: S310 - loopback test server
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback test server
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[exporter.Server] = []

    def start(config: dict[str, Any], prober: Any, chronyc: Any = None) -> tuple[str, exporter.Exporter]:
        state = exporter.Exporter(parse_config(config), prober=prober,
                                  **({"chronyc": chronyc} if chronyc else {}))
        server = exporter.Server(("127.0.0.1", 0), state)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.server_address[1]}", state

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_probe_answers_the_probers_text_and_refuses_bad_requests(serve: Any) -> None:
    probed: list[str] = []

    def prober(module: Any, target: Any) -> str:
        probed.append(f"{module.name} {target}")
        return "ntsops_nts_check_status{name=\"x\"} 0\n"

    base, _state = serve({"modules": {"nts": {}, "fast": {"ntp_exchange": False}},
                          "allowed_targets": ["time.example.net", "198.51.100.0/24"]}, prober)
    assert _fetch(base, "/probe?target=time.example.net&module=nts") == (200, "ntsops_nts_check_status{name=\"x\"} 0\n")
    assert _fetch(base, "/probe?target=198.51.100.7&module=fast")[0] == 200
    status, body = _fetch(base, "/probe?target=time.example.net&module=http_2xx")
    assert (status, body) == (400, "unknown module 'http_2xx'; configured: fast, nts\n")
    status, body = _fetch(base, "/probe?target=time.example.net")
    assert status == 400
    assert "module= is needed" in body
    status, body = _fetch(base, "/probe?target=%3Bcurl%20evil&module=nts")
    assert status == 400
    assert "spaces" in body
    assert _fetch(base, "/probe?module=nts")[0] == 400
    status, body = _fetch(base, "/probe?target=evil.example&module=nts")
    assert (status, body) == (403, "target evil.example is not in allowed_targets\n")
    assert _fetch(base, "/nope")[0] == 404
    # Nothing refused reached the prober.
    assert probed == ["nts time.example.net", "fast 198.51.100.7"]
    status, metrics = _fetch(base, "/metrics")
    assert status == 200
    assert 'ntsops_exporter_probe_rejections_total{reason="not_allowed"} 1' in metrics
    assert 'ntsops_exporter_probe_rejections_total{reason="unknown_module"} 2' in metrics
    assert 'ntsops_exporter_probe_rejections_total{reason="bad_target"} 2' in metrics


def test_the_scrape_timeout_header_shortens_the_deadline(serve: Any) -> None:
    release = threading.Event()

    def stalled(module: Any, target: Any) -> str:
        release.wait(10)
        return "late\n"

    base, _state = serve({"modules": {"nts": {"timeout": 5, "probe_timeout": 30}}}, stalled)
    began = time.monotonic()
    status, body = _fetch(base, "/probe?target=stall.example", {"X-Prometheus-Scrape-Timeout-Seconds": "1.5"})
    elapsed = time.monotonic() - began
    release.set()
    assert status == 200
    assert 'ntsops_nts_check_status{name="stall.example"} 3' in body
    assert 0.9 < elapsed < 1.6


def test_chrony_serverstats_on_metrics(serve: Any) -> None:
    calls: list[tuple[str, ...]] = []

    def chronyc(command: tuple[str, ...], timeout: float) -> str:
        calls.append(command)
        return "NTS-KE connections accepted: 7\nNTS-KE connections dropped : 1\n"

    base, _state = serve({"modules": {"nts": {}}, "chrony_serverstats": {"command": ["chronyc", "serverstats"]}},
                         lambda m, t: "", chronyc)
    _status, metrics = _fetch(base, "/metrics")
    assert calls == [("chronyc", "serverstats")]
    assert "ntsops_chrony_serverstats_up 1" in metrics
    assert "ntsops_chrony_nts_ke_connections_dropped_total 1" in metrics


def test_acme_state_on_metrics(serve: Any, tmp_path: Path) -> None:
    (tmp_path / "time.example.net.json").write_text(
        '{"cert_name": "time.example.net", "last_run": {"step": "renew", "ok": false, "reason": "update_refused",'
        ' "time": 5}, "consecutive_failures": 3}'
    )
    base, _state = serve({"modules": {"nts": {}}, "acme_state": {"directory": str(tmp_path)}}, lambda m, t: "")
    _status, metrics = _fetch(base, "/metrics")
    assert "ntsops_acme_state_readable 1" in metrics
    assert 'ntsops_acme_last_run_success{cert_name="time.example.net"} 0' in metrics
    assert ('ntsops_acme_last_failure_info{cert_name="time.example.net",step="renew",reason="update_refused"} 1'
            in metrics)
    assert 'ntsops_acme_consecutive_failures{cert_name="time.example.net"} 3' in metrics
    with pytest.raises(ExporterConfigError, match=r"acme_state\.directory"):
        parse_config({"modules": {"nts": {}}, "acme_state": {"directory": "relative"}})


def test_config_errors_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "exporter.yml"
    path.write_text("listen: 127.0.0.1:9816\nmodules:\n  nts:\n    port: 4460\n    timeout: fast\n")
    with pytest.raises(ExporterConfigError, match=rf"^{path}:5: modules.nts.timeout: must be a number"):
        exporter.load_config(str(path))
    path.write_text("modules:\n  nts:\n    dns:\n      servers:\n        - 198.51.100.53\n        - ns2.example\n")
    with pytest.raises(ExporterConfigError, match=rf"^{path}:6: modules.nts.dns.servers\[1\]"):
        exporter.load_config(str(path))
    path.write_text("modules:\n  nts: {port: 4460\n")
    with pytest.raises(ExporterConfigError, match=rf"^{path}:3: not valid YAML"):
        exporter.load_config(str(path))
    with pytest.raises(ExporterConfigError, match="cannot read"):
        exporter.load_config(str(tmp_path / "missing.yml"))


def test_command_line_reports_a_bad_config_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "exporter.yml"
    path.write_text("modules:\n  nts:\n    colour: red\n")
    assert main(["exporter", "--config", str(path)]) == 2
    assert f"{path}:3: modules.nts.colour: unknown key" in capsys.readouterr().err
    path.write_text("modules:\n  nts: {}\n")
    assert main(["exporter", "--config", str(path), "--check-config"]) == 0
    assert "1 modules, listen 127.0.0.1:9816" in capsys.readouterr().out
