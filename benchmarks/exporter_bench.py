"""Measure `ntsops exporter` against one local chronyd (run as root): probe latency, CPU per probe,
and the most probes a minute it completes with every probe passing inside its timeout.

Run from the repository root: sudo .venv/bin/python benchmarks/exporter_bench.py [--seconds 15]

chronyd is the integration harness's (benchmarks/herdlab.py: 127.0.0.1, free ports, no
CAP_SYS_TIME, -x, stopped by PID at the end). The exporter is this checkout's
`python -m ntsops_cli exporter`, started here on a free loopback port with
`min_interval: 0` (every scrape is a probe: nothing is served from the cache) and
`max_concurrent_probes: 8`. A probe is the full check: TCP, TLS 1.3, NTS-KE, one
authenticated NTP exchange.

1. Latency: probes one after the other; wall time per HTTP request, and the
   exporter's CPU (user + system, /proc) divided by the number of probes.
2. Throughput: for 1, 2, 4 and 8 concurrent scrapers, each looping over its own
   targets (distinct module names with the same settings, so no two scrapes share a
   probe), for --seconds each: probes completed, how many passed (ntsops_nts_up 1 and
   ntsops_nts_check_duration_seconds below the module timeout), and per minute.
   The figure reported is the best rate at which every probe passed in time.

Prints the figures and writes benchmarks/results/exporter_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

# herdlab first: it puts tests/integration (the harness) on sys.path
import herdlab
from harness.daemons import free_port

REPO = herdlab.REPO
TIMEOUT = 2.0  # the module's per-step timeout; a passing probe must also finish within it
MODULES = 32
CONCURRENCY = (1, 2, 4, 8)
_UP = re.compile(r'^ntsops_nts_up\{[^}]*\} 1$', re.MULTILINE)
_DURATION = re.compile(r'^ntsops_nts_check_duration_seconds\{[^}]*\} (\S+)$', re.MULTILINE)


def start_exporter(workdir: Path, server: Any, ca_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    module = {"ca_file": str(ca_path), "timeout": TIMEOUT, "probe_timeout": 2 * TIMEOUT}
    config = {
        "listen": f"127.0.0.1:{port}",
        "min_interval": 0,
        "max_concurrent_probes": max(CONCURRENCY),
        "modules": {f"m{i}": module for i in range(MODULES)},
    }
    path = workdir / "exporter.yml"
    path.write_text(json.dumps(config))
    log = (workdir / "exporter.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "ntsops_cli", "exporter", "--config", str(path)],
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/metrics", timeout=2):  # noqa: S310 - loopback
                return proc, base
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit(f"the exporter did not start:\n{(workdir / 'exporter.log').read_text()}")


def probe(base: str, target: str, module: str) -> tuple[float, bool]:
    """(wall seconds, passed inside the timeout) of one scrape."""
    began = time.monotonic()
    with urllib.request.urlopen(f"{base}/probe?target={target}&module={module}", timeout=30) as answer:  # noqa: S310
        text = answer.read().decode()
    wall = time.monotonic() - began
    durations = [float(d) for d in _DURATION.findall(text)]
    return wall, bool(_UP.search(text)) and bool(durations) and max(durations) < TIMEOUT


def latency(base: str, target: str, pid: int, count: int) -> dict[str, Any]:
    probe(base, target, "m0")  # warm: imports and the TLS context are loaded on first use
    cpu_before = herdlab.cpu_seconds([pid])
    walls, passed = [], 0
    for _probe in range(count):
        wall, ok = probe(base, target, "m0")
        walls.append(wall)
        passed += ok
    cpu = herdlab.cpu_seconds([pid]) - cpu_before
    walls.sort()
    return {
        "probes": count,
        "passed": passed,
        "wall_median_ms": round(statistics.median(walls) * 1000, 2),
        "wall_p95_ms": round(walls[int(0.95 * (count - 1))] * 1000, 2),
        "exporter_cpu_ms_per_probe": round(cpu / count * 1000, 2),
    }


def throughput(base: str, target: str, pid: int, server_pid: int, *, workers: int, seconds: float) -> dict[str, Any]:
    stop = time.monotonic() + seconds
    lock = threading.Lock()
    counts = {"done": 0, "passed": 0}
    walls: list[float] = []

    def scraper(index: int) -> None:
        modules = [f"m{i}" for i in range(index, MODULES, workers)]
        n = 0
        while time.monotonic() < stop:
            wall, ok = probe(base, target, modules[n % len(modules)])
            n += 1
            with lock:
                counts["done"] += 1
                counts["passed"] += ok
                walls.append(wall)

    cpu_before = herdlab.cpu_seconds([pid])
    server_before = herdlab.cpu_seconds(herdlab.process_tree(server_pid))
    busy_before = herdlab.cpu_sample()
    began = time.monotonic()
    threads = [threading.Thread(target=scraper, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    walls.sort()
    return {
        "concurrent_scrapers": workers,
        "seconds": round(elapsed, 2),
        "probes": counts["done"],
        "passed_in_time": counts["passed"],
        "probes_per_minute": round(counts["done"] / elapsed * 60),
        "wall_median_ms": round(statistics.median(walls) * 1000, 2),
        "wall_max_ms": round(walls[-1] * 1000, 2),
        "exporter_cpu_ms_per_probe": round((herdlab.cpu_seconds([pid]) - cpu_before) / counts["done"] * 1000, 2),
        "chronyd_cpu_ms_per_probe": round(
            (herdlab.cpu_seconds(herdlab.process_tree(server_pid)) - server_before) / counts["done"] * 1000, 2),
        "machine_busy_share": round(herdlab.machine_busy_share(busy_before, herdlab.cpu_sample()), 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each throughput run (default 15)")
    parser.add_argument("--latency-probes", type=int, default=50, help="probes in the latency run (default 50)")
    args = parser.parse_args()
    report: dict[str, Any] = {"load_average_at_start": os.getloadavg()[0], "timeout_s": TIMEOUT}
    with herdlab.chrony_server([]) as (server, ca_path), \
            tempfile.TemporaryDirectory(prefix="ntsops-exporter-bench-") as tmp:
        proc, base = start_exporter(Path(tmp), server, ca_path)
        try:
            target = f"localhost:{server.ntsport}"
            server_pid = server.pid
            if server_pid is None:
                raise SystemExit("chronyd has no PID")
            report["latency"] = latency(base, target, proc.pid, args.latency_probes)
            print("latency:", json.dumps(report["latency"]))
            report["throughput"] = []
            for workers in CONCURRENCY:
                row = throughput(base, target, proc.pid, server_pid, workers=workers, seconds=args.seconds)
                report["throughput"].append(row)
                print("throughput:", json.dumps(row))
        finally:
            proc.terminate()
            proc.wait(10)
    clean = [r for r in report["throughput"] if r["passed_in_time"] == r["probes"]]
    best = max(clean, key=lambda r: r["probes_per_minute"]) if clean else None
    report["most_probes_per_minute_all_in_time"] = best["probes_per_minute"] if best else 0
    report["at_concurrent_scrapers"] = best["concurrent_scrapers"] if best else None
    print(f"most probes a minute with every probe passing within {TIMEOUT:g} s: "
          f"{report['most_probes_per_minute_all_in_time']} (at {report['at_concurrent_scrapers']} concurrent scrapers)")
    print(f"wrote {herdlab.write_result('exporter_bench', report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
