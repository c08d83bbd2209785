"""The ``ntsops`` command against real daemons and hostile peers: ``check`` exit codes and
output formats (Nagios, Prometheus, JSON) and a short ``herd`` against chronyd with and
without its NTS-KE rate limit."""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from harness.lab import LAB_DOMAIN
from hostile_cases import EXPECTED_PROBLEM

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
NTSOPS = [sys.executable, "-m", "ntsops_cli"]
HOSTILE_TIMEOUT = 2.0
# Interpreter start-up and imports, on a busy 2-core machine.
START_OVERHEAD = 10.0
PERFDATA_ITEM = re.compile(r"^('[^'=]+'|[^'= ]+)=(U|-?[0-9.]+)(s|ms|us|%|B|KB|MB|TB|c)?(;[^; ]*){0,4}$")


def ntsops(args: Sequence[str], prefix: Sequence[str] = (), timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, *NTSOPS, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )


def in_lab(lab, args: Sequence[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return ntsops(args, prefix=lab.client_host.exec_argv([]), timeout=timeout)


def perfdata(line: str) -> dict[str, str]:
    _status, _separator, data = line.partition(" | ")
    items = re.findall(r"'[^']*'=\S*|\S+", data)
    for item in items:
        assert PERFDATA_ITEM.match(item), item
    return {label.strip("'"): value for label, _equals, value in (item.partition("=") for item in items)}


def prometheus_samples(text: str) -> dict[tuple[str, str | None], float]:
    samples = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.match(r'^(\w+)\{name="[^"]*"(?:,address="([^"]*)")?\} (\S+)$', line)
        assert match, line
        samples[(match.group(1), match.group(2))] = float(match.group(3))
    return samples


# ------------------------------------------------------------------ check: real servers


@pytest.mark.parametrize("server", ["chrony", "ntpsec"])
def test_check_real_server_is_ok_in_every_format(nts_lab, server):
    name = f"{server}.{LAB_DOMAIN}"
    base = ["check", name, "--ca", str(nts_lab.ca_path)]
    addresses = ["198.51.100.10", "2001:db8::10"] if server == "chrony" else ["198.51.100.11", "2001:db8::11"]

    # NTPsec answers LI 3 / stratum 0 / INIT (authenticated) until its orphan mode has
    # settled, a few seconds after start: CRITICAL "not synchronised" until then.
    deadline = time.monotonic() + 60
    while True:
        nagios = in_lab(nts_lab, [*base, "--nagios"])
        if nagios.returncode == 0 or time.monotonic() > deadline:
            break
        assert nagios.returncode == 2, nagios.stdout + nagios.stderr
        assert "is not synchronised (leap 3, stratum 0, refid INIT)" in nagios.stdout
        time.sleep(1)
    assert nagios.returncode == 0, nagios.stdout + nagios.stderr
    assert nagios.stdout.count("\n") == 1
    assert nagios.stdout.startswith(f"NTS OK - {name}: 2/2 addresses ok")
    perf = perfdata(nagios.stdout.strip())
    for address in addresses:
        assert perf[f"{address} cookies"].split(";")[0] == "8"
        assert perf[f"{address} handshake"].split(";")[0].endswith("s")
        assert perf[f"{address} offset"] != "U;;"
    assert perf["addresses_ok"].startswith("2;")

    prom = in_lab(nts_lab, [*base, "--prometheus"])
    assert prom.returncode == 0, prom.stderr
    samples = prometheus_samples(prom.stdout)
    assert samples[("ntsops_nts_check_status", None)] == 0
    for address in addresses:
        assert samples[("ntsops_nts_up", address)] == 1
        assert samples[("ntsops_nts_authenticated", address)] == 1
        assert samples[("ntsops_nts_cookies", address)] == 8
        assert 0 < samples[("ntsops_nts_tls_handshake_seconds", address)] < HOSTILE_TIMEOUT
        assert abs(samples[("ntsops_nts_ntp_offset_seconds", address)]) < 1.0
        assert samples[("ntsops_nts_cert_days_left", address)] > 30

    as_json = in_lab(nts_lab, [*base, "--json"])
    assert as_json.returncode == 0, as_json.stderr
    result = json.loads(as_json.stdout)
    assert result["ok"] is True and result["status"] == "OK"
    assert sorted(entry["address"] for entry in result["addresses"]) == addresses
    assert all(entry["ntp"]["authenticated"] for entry in result["addresses"])


def test_check_certificate_inside_warning_window_is_warning(nts_lab):
    # The test CA issues for about 90 days: a 365-day window puts it inside.
    run = in_lab(nts_lab, ["check", f"chrony.{LAB_DOMAIN}", "--ca", str(nts_lab.ca_path), "--warn-cert-days", "365"])
    assert run.returncode == 1, run.stdout + run.stderr
    assert run.stdout.startswith(f"NTS WARNING - chrony.{LAB_DOMAIN}: 2/2 addresses ok; ")
    assert "certificate expires in" in run.stdout


def test_check_dead_address_is_critical_and_named(nts_lab):
    name = f"half-dead.{LAB_DOMAIN}"
    run = in_lab(nts_lab, ["check", name, "--ca", str(nts_lab.ca_path), "--timeout", "2"])
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stdout.startswith(f"NTS CRITICAL - {name}: 1/2 addresses ok; {nts_lab.dead_address}: TCP 4460")
    perf = perfdata(run.stdout.strip())
    assert perf[f"{nts_lab.dead_address} handshake"].startswith("U")
    assert perf["198.51.100.10 cookies"].startswith("8")


def test_check_explicit_address_replaces_resolution_and_no_ntp_skips_ntp(nts_lab):
    # --no-ntp: NTPsec's unsynchronised start (stratum 0, INIT) does not matter here.
    run = in_lab(nts_lab, ["check", f"ntpsec.{LAB_DOMAIN}", "--address", "2001:db8::11", "--ca",
                           str(nts_lab.ca_path), "--no-ntp", "--json"])
    assert run.returncode == 0, run.stdout + run.stderr
    entries = json.loads(run.stdout)["addresses"]
    assert [entry["address"] for entry in entries] == ["2001:db8::11"]
    assert entries[0]["ntp"] is None
    assert entries[0]["ke"]["cookies"] == 8


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["check", f"nowhere.{LAB_DOMAIN}"], "does not resolve"),
        (["check", f"chrony.{LAB_DOMAIN}", "--address", "chrony"], "must be IP addresses"),
        (["check", f"chrony.{LAB_DOMAIN}", "--port", "0"], "port must be"),
        (["check", f"chrony.{LAB_DOMAIN}", "--timeout", "soon"], "bad arguments"),
    ],
)
def test_check_unknown(nts_lab, args, words):
    run = in_lab(nts_lab, [*args, "--nagios"] if "--timeout" not in args else args, timeout=30)
    assert run.returncode == 3, run.stdout + run.stderr
    assert run.stdout.startswith("NTS UNKNOWN - ")
    assert words in run.stdout
    assert "Traceback" not in run.stderr


# ------------------------------------------------------------------ check: hostile peers


@pytest.mark.parametrize("behaviour", sorted(EXPECTED_PROBLEM))
@pytest.mark.parametrize("output", ["--nagios", "--prometheus"])
def test_check_hostile_peer_is_critical_within_the_timeout(hostile, test_ca, behaviour, output):
    peer = hostile(behaviour, port=0)
    started = time.monotonic()
    run = ntsops(["check", "localhost", "--address", "127.0.0.1", "--port", str(peer.port), "--ca",
                  str(test_ca.cert_path), "--timeout", str(HOSTILE_TIMEOUT), output])
    elapsed = time.monotonic() - started
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert elapsed < 3 * HOSTILE_TIMEOUT + START_OVERHEAD
    if output == "--nagios":
        assert run.stdout.startswith("NTS CRITICAL - localhost: 0/1 addresses ok; 127.0.0.1: ")
        assert EXPECTED_PROBLEM[behaviour].format(port=peer.port) in run.stdout
        perfdata(run.stdout.strip())
    else:
        samples = prometheus_samples(run.stdout)
        assert samples[("ntsops_nts_check_status", None)] == 2
        assert samples[("ntsops_nts_up", "127.0.0.1")] == 0
        assert samples[("ntsops_nts_problems", "127.0.0.1")] >= 1


# ------------------------------------------------------------------ herd against chronyd


def test_herd_against_chronyd_all_succeed(daemons, test_ca):
    server = daemons.chrony_server(addresses=["127.0.0.1"])
    run = ntsops(["herd", "127.0.0.1", "--port", str(server.ntsport), "--ca", str(test_ca.cert_path),
                  "--clients", "60", "--rate", "30", "--duration", "3", "--source-addresses", "3", "--json"])
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.loads(run.stdout)
    assert summary["ok"] == 60
    assert summary["cookies"] == 60 * 8
    assert set(summary["per_source"]) == {"127.0.1.1", "127.0.1.2", "127.0.1.3"}
    assert all(stats["ok"] == 20 for stats in summary["per_source"].values())
    assert summary["latency_ms"]["p50"] > 0
    assert server.serverstats()["NTS-KE connections accepted"] >= 60


def test_herd_counts_chrony_rate_limit_drops_as_accepted_then_closed(daemons, test_ca):
    # chrony's default once enabled: interval 6 (1 per 64 s), burst 8, leak 2 - per source address.
    server = daemons.chrony_server(addresses=["127.0.0.1"], extra_conf=["ntsratelimit"])
    run = ntsops(["herd", "127.0.0.1", "--port", str(server.ntsport), "--ca", str(test_ca.cert_path),
                  "--clients", "40", "--rate", "20", "--duration", "3", "--source-addresses", "2", "--json"])
    assert run.returncode == 1, run.stdout + run.stderr
    summary = json.loads(run.stdout)
    dropped = server.serverstats()["NTS-KE connections dropped"]
    assert summary["attempted"] == 40
    assert dropped > 0
    assert summary["failures"]["closed"] == dropped
    assert summary["ok"] + summary["failures"]["closed"] == 40
    for stats in summary["per_source"].values():
        # Each source gets at least its burst of 8 before the drops start.
        assert stats["ok"] >= 8
        assert stats["failures"]["closed"] > 0


def test_herd_refuses_a_namespace_address_without_the_flag(nts_lab):
    base = ["herd", "198.51.100.10", "--ca", str(nts_lab.ca_path), "--clients", "10", "--duration", "2"]
    refused = in_lab(nts_lab, base)
    assert refused.returncode == 2
    assert "not a loopback address" in refused.stderr
    allowed = in_lab(nts_lab, [*base, "--i-mean-it", "--source-address", "198.51.100.20", "--json"])
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    summary = json.loads(allowed.stdout)
    assert summary["ok"] == 10
    assert set(summary["per_source"]) == {"198.51.100.20"}


def test_herd_replays_the_simulators_arrival_curve(daemons, test_ca, tmp_path):
    curve = tmp_path / "curve.json"
    simulated = ntsops(["simulate", "--clients", "5000", "--client", "chrony-4.3,maxpoll=6", "--curve-out", str(curve)])
    assert simulated.returncode == 0, simulated.stderr
    server = daemons.chrony_server(addresses=["127.0.0.1"])
    run = ntsops(["herd", "127.0.0.1", "--port", str(server.ntsport), "--ca", str(test_ca.cert_path),
                  "--clients", "120", "--curve", str(curve), "--duration", "3", "--json"])
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.loads(run.stdout)
    assert summary["mode"] == "curve"
    assert summary["ok"] == 120
    assert summary["start_lag_ms"]["p50"] < 100


# ------------------------------------------------------------------ check: lifetime-relative certificate limits


def test_check_cert_lifetime_judges_a_short_certificate_by_its_lifetime(daemons, test_ca):
    # A 6-day certificate half used: fixed days call it CRITICAL (3 < 14 days), its
    # lifetime says OK. With half a day left it is CRITICAL either way.
    for days_ago, fixed, relative in ((3, 2, 0), (5.5, 2, 2)):
        start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=days_ago)
        cert = test_ca.issue(f"short-{days_ago}", dns=["localhost"], ips=["127.0.0.1"], days=6, not_before=start)
        server = daemons.chrony_server(cert=cert, addresses=["127.0.0.1"])
        common = ["check", "localhost", "--address", "127.0.0.1", "--port", str(server.ntsport),
                  "--ca", str(test_ca.cert_path)]
        by_days = ntsops(common)
        by_lifetime = ntsops([*common, "--cert-lifetime"])
        assert by_days.returncode == fixed, by_days.stdout + by_days.stderr
        assert by_lifetime.returncode == relative, by_lifetime.stdout + by_lifetime.stderr
        assert "cert_lifetime_left'=" in by_lifetime.stdout
        server.stop()
