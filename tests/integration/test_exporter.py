"""``ntsops exporter`` scraped by a real Prometheus (Debian's binary) with the shipped alert rules,
probing a real chronyd NTS server and a hostile peer with an expired certificate; and the
exporter alone against a scrape storm and peers that stall.

Everything runs on loopback: chronyd (no clock access, harness/daemons.py), the hostile
peers (harness/hostile.py), the exporter and Prometheus, each on a free port; all are
stopped at the end of the test.
"""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness.daemons import CHRONYC, free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / ".cache" / "daemons" / "prometheus" / "usr" / "bin" / "prometheus"
RULES = REPO / "extras" / "monitoring" / "prometheus" / "ntsops.rules.yml"
# Start-up of Python with the check's imports, or of Prometheus, on a busy 2-core machine.
START_TIMEOUT = 30.0


def _get(url: str, timeout: float = 10.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback only
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _wait_http(url: str, proc: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}:\n{proc.stderr.read() if proc.stderr else ''}")
        try:
            if _get(url, timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{what} did not answer {url} within {START_TIMEOUT} s")


@pytest.fixture
def start_process() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def start(argv: list[str], log: Path) -> subprocess.Popen[str]:
        handle = log.open("w")
        proc = subprocess.Popen(argv, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT, text=True)
        started.append(proc)
        return proc

    yield start
    for proc in reversed(started):
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _exporter(tmp_path: Path, start: Callable[..., Any], config: dict[str, Any]) -> str:
    port = free_port()
    path = tmp_path / "exporter.yml"
    # JSON is YAML: the exporter reads it with the same loader.
    path.write_text(json.dumps({"listen": f"127.0.0.1:{port}", **config}, indent=2))
    proc = start([sys.executable, "-m", "ntsops_cli", "exporter", "--config", str(path)], tmp_path / "exporter.log")
    base = f"http://127.0.0.1:{port}"
    _wait_http(base + "/metrics", proc, "ntsops exporter")
    return base


def _module(test_ca: Any, **extra: Any) -> dict[str, Any]:
    return {"ca_file": str(test_ca.cert_path), "timeout": 2, "probe_timeout": 6, **extra}


def _samples(text: str, metric: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line.startswith(metric + "{") or line.startswith(metric + " "):
            labels, _space, value = line.rpartition(" ")
            out[labels] = float(value)
    return out


def _prom_query(base: str, query: str) -> list[dict[str, Any]]:
    status, body = _get(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": query}))
    assert status == 200, body
    result: list[dict[str, Any]] = json.loads(body)["data"]["result"]
    return result


def test_prometheus_fires_the_certificate_alert_for_the_expired_peer_only(
    tmp_path: Path, chrony_loopback: Any, hostile: Any, test_ca: Any, start_process: Any
) -> None:
    expired = hostile("expired_cert")
    healthy_target = f"localhost:{chrony_loopback.ntsport}"
    expired_target = f"127.0.0.1:{expired.port}"
    exporter = _exporter(tmp_path, start_process, {
        "min_interval": 1,
        "allowed_targets": [healthy_target, expired_target],
        "modules": {"nts": _module(test_ca)},
        "chrony_serverstats": {
            "command": [str(CHRONYC), "-h", str(chrony_loopback.socket_path), "serverstats"],
        },
    })
    exporter_address = exporter.removeprefix("http://")
    prom_port = free_port()
    config = {
        # A 5 s scrape timeout leaves a loaded 2-core machine room (the probe itself takes ~0.1 s).
        "global": {"scrape_interval": "5s", "scrape_timeout": "5s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                # The blackbox_exporter layout the README shows: the target becomes a parameter.
                "job_name": "nts",
                "metrics_path": "/probe",
                "params": {"module": ["nts"]},
                "static_configs": [{"targets": [healthy_target, expired_target]}],
                "relabel_configs": [
                    {"source_labels": ["__address__"], "target_label": "__param_target"},
                    {"source_labels": ["__param_target"], "target_label": "instance"},
                    {"target_label": "__address__", "replacement": exporter_address},
                ],
            },
            {"job_name": "ntsops_exporter", "static_configs": [{"targets": [exporter_address]}]},
        ],
    }
    prom_config = tmp_path / "prometheus.yml"
    prom_config.write_text(json.dumps(config, indent=2))
    prom = start_process([
        str(PROMETHEUS), f"--config.file={prom_config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn",
    ], tmp_path / "prometheus.log")
    prom_base = f"http://127.0.0.1:{prom_port}"
    _wait_http(prom_base + "/-/ready", prom, "prometheus")

    # Bounded: rules evaluate every second, scrapes every 5 s.
    alerts: list[dict[str, Any]] = []
    healthy_up: list[dict[str, Any]] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        _status, body = _get(f"{prom_base}/api/v1/alerts")
        alerts = json.loads(body)["data"]["alerts"]
        healthy_up = _prom_query(prom_base, f'ntsops_nts_up{{instance="{healthy_target}"}}')
        fired = [a for a in alerts if a["labels"]["alertname"] == "NtsCertificateExpired" and a["state"] == "firing"]
        if fired and healthy_up:
            break
        time.sleep(1)
    else:
        log = (tmp_path / "exporter.log").read_text()[-2000:]
        raise AssertionError(f"NtsCertificateExpired did not fire within 90 s: {alerts}\nexporter log:\n{log}")
    # Let more scrapes and rule evaluations pass over the healthy target's series.
    time.sleep(11)
    _status, body = _get(f"{prom_base}/api/v1/alerts")
    alerts = json.loads(body)["data"]["alerts"]

    by_instance: dict[str, list[tuple[str, str]]] = {}
    for alert in alerts:
        by_instance.setdefault(alert["labels"].get("instance", ""), []).append(
            (alert["labels"]["alertname"], alert["state"])
        )
    assert ("NtsCertificateExpired", "firing") in by_instance[expired_target]
    # The expired peer also fails the check: that alert waits its 5 minutes (pending).
    assert ("NtsEndpointDown", "pending") in by_instance[expired_target]
    assert healthy_target not in by_instance, by_instance[healthy_target]

    # The healthy chronyd passes on every address, through Prometheus; the expired peer fails.
    assert healthy_up and all(float(s["value"][1]) == 1 for s in healthy_up)
    ratio = _prom_query(prom_base, "ntsops_nts_cert_lifetime_left_ratio")
    by_target = {s["metric"]["instance"]: float(s["value"][1]) for s in ratio}
    assert by_target[expired_target] == 0
    assert 0.9 < by_target[healthy_target] <= 1
    # Server side: chronyd's serverstats through the exporter's /metrics; every probe was an NTS-KE.
    accepted = _prom_query(prom_base, "ntsops_chrony_nts_ke_connections_accepted_total")
    assert accepted and float(accepted[0]["value"][1]) >= 1
    probes = _prom_query(prom_base, 'sum(ntsops_exporter_probes_total{result="fresh"})')
    assert float(probes[0]["value"][1]) >= 2


def test_a_scrape_storm_is_one_probe_and_refused_targets_are_never_contacted(
    tmp_path: Path, chrony_loopback: Any, test_ca: Any, start_process: Any
) -> None:
    target = f"localhost:{chrony_loopback.ntsport}"
    exporter = _exporter(tmp_path, start_process, {
        "min_interval": 60,
        "max_concurrent_probes": 2,
        "allowed_targets": [target],
        "modules": {"nts": _module(test_ca, ntp_exchange=False)},
    })
    before = chrony_loopback.serverstats()["NTS-KE connections accepted"]
    url = f"{exporter}/probe?" + urllib.parse.urlencode({"target": target, "module": "nts"})
    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _i: _get(url), range(100)))
    assert all(status == 200 for status, _body in answers)
    assert all('ntsops_nts_up{name="localhost",address="127.0.0.1"} 1' in body for _status, body in answers)
    after = chrony_loopback.serverstats()["NTS-KE connections accepted"]
    assert after - before == 1

    # Another port of the same host, and another host: refused before any connection.
    other = f"localhost:{chrony_loopback.port}"
    assert _get(f"{exporter}/probe?target={other}&module=nts")[0] == 403
    assert _get(f"{exporter}/probe?target=evil.example&module=nts")[0] == 403
    assert _get(f"{exporter}/probe?target=localhost%3B%20rm&module=nts")[0] == 400
    assert chrony_loopback.serverstats()["NTS-KE connections accepted"] == after
    _status, metrics = _get(f"{exporter}/metrics")
    counts = _samples(metrics, "ntsops_exporter_probes_total")
    assert counts['ntsops_exporter_probes_total{module="nts",result="fresh"}'] == 1
    assert sum(counts.values()) == 100
    rejected = _samples(metrics, "ntsops_exporter_probe_rejections_total")
    assert rejected['ntsops_exporter_probe_rejections_total{reason="not_allowed"}'] == 2
    assert rejected['ntsops_exporter_probe_rejections_total{reason="bad_target"}'] == 1


@pytest.mark.parametrize("behaviour", ["silent", "never_ending_records"])
def test_a_stalling_peer_cannot_hold_a_probe_past_its_timeout(
    tmp_path: Path, hostile: Any, test_ca: Any, start_process: Any, behaviour: str
) -> None:
    peer = hostile(behaviour)
    exporter = _exporter(tmp_path, start_process, {
        "min_interval": 0,
        "modules": {"nts": _module(test_ca, timeout=1, probe_timeout=3)},
    })
    url = f"{exporter}/probe?target=127.0.0.1:{peer.port}&module=nts"
    began = time.monotonic()
    status, body = _get(url, timeout=30)
    elapsed = time.monotonic() - began
    assert status == 200
    assert 'ntsops_nts_up{name="127.0.0.1",address="127.0.0.1"} 0' in body or (
        'ntsops_nts_check_status{name="127.0.0.1"} 3' in body
    )
    assert elapsed < 3 + 1.0  # probe_timeout plus HTTP
    # The exporter is still there and answers the next scrape.
    assert _get(f"{exporter}/metrics")[0] == 200


# Fetches a URL from inside a namespace, retrying while the exporter starts (bounded: 20 s).
_FETCH = (
    "import sys, time, urllib.request\n"
    "for attempt in range(100):\n"
    "    try:\n"
    "        print(urllib.request.urlopen(sys.argv[1], timeout=20).read().decode()); break\n"
    "    except OSError:\n"
    "        time.sleep(0.2)\n"
)
NTP_PYTHON = REPO / ".cache" / "daemons" / "python3-ntp" / "usr" / "lib" / "python3" / "dist-packages"
NTPQ = REPO / ".cache" / "daemons" / "ntpsec" / "usr" / "bin" / "ntpq"


def _fetch_in(run: Callable[..., subprocess.CompletedProcess[str]], url: str, log: Path) -> str:
    result = run([sys.executable, "-c", _FETCH, url], timeout=60)
    assert result.returncode == 0 and result.stdout, (result.stderr, log.read_text())
    return result.stdout


def test_ntpsec_nts_counters_through_the_exporter(tmp_path: Path, network: Any, daemons: Any, test_ca: Any) -> None:
    """A real NTPsec 1.2.2 ntpd: probed through the exporter, its ntsinfo counters on /metrics."""
    host = network.add_host("ntpsec", ["198.51.100.11/24"])
    daemons.ntpsec_server(host)
    config = {
        "listen": "127.0.0.1:9816",  # the namespace's own loopback
        "min_interval": 0,
        "modules": {"nts": _module(test_ca)},
        "ntpsec_ntsinfo": {"command": ["env", f"PYTHONPATH={NTP_PYTHON}", "python3", str(NTPQ), "-c", "ntsinfo",
                                       "127.0.0.1"], "timeout": 10},
    }
    path = tmp_path / "exporter.yml"
    path.write_text(json.dumps(config))
    log = tmp_path / "exporter.log"
    with log.open("wb") as handle:
        proc = subprocess.Popen(host.exec_argv([sys.executable, "-m", "ntsops_cli", "exporter", "--config", str(path)]),
                                cwd=REPO, stdout=handle, stderr=subprocess.STDOUT)
    try:
        def run(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
            return host.run(argv, timeout=timeout, check=False)

        probed = _fetch_in(run, "http://127.0.0.1:9816/probe?target=198.51.100.11&module=nts", log)
        assert 'ntsops_nts_up{name="198.51.100.11",address="198.51.100.11"} 1' in probed, probed
        assert 'ntsops_nts_authenticated{name="198.51.100.11",address="198.51.100.11"} 1' in probed
        metrics = _fetch_in(run, "http://127.0.0.1:9816/metrics", log)
        counters = _samples(metrics, "ntsops_ntpsec_nts_ke_serves_good_total")
        assert "ntsops_ntpsec_ntsinfo_up 1" in metrics, metrics
        assert counters and next(iter(counters.values())) >= 1
        assert next(iter(_samples(metrics, "ntsops_ntpsec_nts_server_recvs_good_total").values())) >= 1
    finally:
        proc.terminate()
        proc.wait(10)


def _nsupdate(pair: Any, commands: str) -> None:
    script = f"server {pair.primary_address} {pair.port}\nzone example.test\n{commands}\nsend\n"
    result = pair.netns.run(["nsupdate", "-k", str(pair.key_file)], input=script, timeout=30)
    assert result.returncode == 0, result.stderr


def _wait_served(pair: Any, name: str, want: list[str]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if all(pair.dig(server, name, "A") == want for server in (pair.primary_address, pair.secondary_address)):
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} A {want} did not reach both servers within 20 s")


def test_dns_consistency_against_two_real_bind_servers(tmp_path: Path) -> None:
    """The exporter's DNS series from a real primary and secondary named (tests/integration/dns/ddns_lab.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent / "dns"))
    from ddns_lab import PROXY_ADDRESS, bind_pair  # noqa: PLC0415 - needs the dns folder on sys.path

    name = "exporter.example.test"
    with bind_pair() as pair:
        _nsupdate(pair, f"update add {name} 120 A 198.51.100.77")
        _wait_served(pair, name, ["198.51.100.77"])
        servers = [f"{pair.primary_address}:{pair.port}", f"{pair.secondary_address}:{pair.port}",
                   f"{PROXY_ADDRESS}:{pair.port}"]  # nothing listens on the third
        config = {
            "listen": "127.0.0.1:9816",  # the namespace's own loopback
            "min_interval": 0,
            "modules": {"nts": {"timeout": 1, "probe_timeout": 8, "ntp_exchange": False, "dns": {
                "servers": servers, "expected_ipv4": ["198.51.100.77"], "max_ttl": 60}}},
        }
        path = tmp_path / "exporter.yml"
        path.write_text(json.dumps(config))
        with (tmp_path / "exporter.log").open("wb") as log:
            proc = pair.netns.popen([sys.executable, "-m", "ntsops_cli", "exporter", "--config", str(path)],
                                    cwd=str(REPO), stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:9816/probe?target={name}&module=nts"

            def scrape() -> str:
                return _fetch_in(pair.netns.run, url, tmp_path / "exporter.log")

            first = scrape()
            primary, secondary, dead = (f'name="{name}",server="{s}"' for s in servers)
            for server in (primary, secondary):
                assert f"ntsops_dns_server_up{{{server}}} 1" in first
                assert f'ntsops_dns_record_matches_expected{{{server},family="ipv4"}} 1' in first
                assert f'ntsops_dns_record_ttl_seconds{{{server},family="ipv4"}} 120' in first
                assert f'ntsops_dns_record{{{server},family="ipv4",value="198.51.100.77"}} 1' in first
                assert f'ntsops_dns_record_addresses{{{server},family="ipv6"}} 0' in first
            assert f"ntsops_dns_server_up{{{dead}}} 0" in first
            assert f'ntsops_dns_ttl_budget_seconds{{name="{name}"}} 60' in first

            # The address moves in DNS but the exporter still expects the old one.
            _nsupdate(pair, f"update delete {name} A\nupdate add {name} 30 A 198.51.100.78")
            _wait_served(pair, name, ["198.51.100.78"])
            second = scrape()
            for server in (primary, secondary):
                assert f'ntsops_dns_record_matches_expected{{{server},family="ipv4"}} 0' in second
                assert f'ntsops_dns_record_ttl_seconds{{{server},family="ipv4"}} 30' in second
                assert f'ntsops_dns_record{{{server},family="ipv4",value="198.51.100.78"}} 1' in second
        finally:
            proc.terminate()
            proc.wait(10)
