"""Capacity of the ``ntsops herd`` generator against a local chronyd with ntsprocesses =
the core count: NTS-KE per second, the server's CPU share (chronyd plus its NTS-KE helper
processes, from /proc/<pid>/stat), and as the ceiling the raw TLS 1.3 handshake rate of
OpenSSL's C client (``openssl s_time -tls1_3 -new``) against the same server.

Loopback only, bounded (each run --seconds), everything stopped by PID at the end.
Run as root from the repository root:

    .venv/bin/python benchmarks/herd_capacity.py [--seconds 5] [--generators 1x8,2x8] [--stime 1,2]

Writes benchmarks/results/herd_capacity.json.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import time
from typing import Any

import herdlab


def measure_herd(server: Any, ca_path: str, seconds: float, processes: int, concurrency: int) -> dict[str, Any]:
    pids = herdlab.process_tree(server.pid)
    accepted_before = server.serverstats()["NTS-KE connections accepted"]
    server_before, machine_before = herdlab.cpu_seconds(pids), herdlab.cpu_sample()
    summary, generator_cpu = herdlab.run_herd([
        "127.0.0.1", "--port", str(server.ntsport), "--ca", ca_path, "--clients", "200000",
        "--duration", str(seconds), "--processes", str(processes), "--concurrency", str(concurrency),
    ])
    server_cpu = herdlab.cpu_seconds(pids) - server_before
    busy = herdlab.machine_busy_share(machine_before, herdlab.cpu_sample())
    elapsed = summary["elapsed_s"]
    return {
        "generator": f"ntsops herd, {processes} process(es) x {concurrency} in flight",
        "seconds": elapsed,
        "nts_ke_ok": summary["ok"],
        "failures": {k: v for k, v in summary["failures"].items() if v},
        "nts_ke_per_second": summary["ke_per_second"],
        "latency_ms": summary["latency_ms"],
        "server_accepted": server.serverstats()["NTS-KE connections accepted"] - accepted_before,
        "server_cpu_seconds": round(server_cpu, 2),
        "server_cpu_share_of_one_core": round(server_cpu / elapsed, 3) if elapsed else None,
        "server_cpu_ms_per_nts_ke": round(server_cpu / summary["ok"] * 1000, 3) if summary["ok"] else None,
        # includes interpreter start-up, so slightly high
        "generator_cpu_seconds": round(generator_cpu, 2),
        "generator_cpu_ms_per_nts_ke": round(generator_cpu / summary["ok"] * 1000, 3) if summary["ok"] else None,
        "machine_busy_share": round(busy, 3),
    }


def measure_s_time(server: Any, ca_path: str, seconds: float, parallel: int) -> dict[str, Any]:
    pids = herdlab.process_tree(server.pid)
    server_before, machine_before = herdlab.cpu_seconds(pids), herdlab.cpu_sample()
    argv = ["openssl", "s_time", "-connect", f"127.0.0.1:{server.ntsport}", "-tls1_3", "-new",
            "-time", str(int(seconds)), "-CAfile", ca_path]
    started = time.monotonic()
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _process_index in range(parallel)]
    outputs = []
    try:
        for proc in procs:
            out, _stderr = proc.communicate(timeout=seconds + 30)
            outputs.append(out)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
    wall = time.monotonic() - started
    usage_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (usage_after.ru_utime - usage_before.ru_utime) + (usage_after.ru_stime - usage_before.ru_stime)
    server_cpu = herdlab.cpu_seconds(pids) - server_before
    busy = herdlab.machine_busy_share(machine_before, herdlab.cpu_sample())
    connections = 0
    for out in outputs:
        match = re.search(r"(\d+) connections in [0-9.]+s", out)
        if not match:
            raise RuntimeError(f"openssl s_time gave no count: {out[-300:]}")
        connections += int(match.group(1))
    return {
        "generator": f"openssl s_time -tls1_3 -new, {parallel} in parallel (TLS handshake only, no NTS-KE)",
        "seconds": round(wall, 3),
        "tls_handshakes": connections,
        "tls_handshakes_per_second": round(connections / wall, 1),
        "server_cpu_seconds": round(server_cpu, 2),
        "server_cpu_share_of_one_core": round(server_cpu / wall, 3),
        "server_cpu_ms_per_handshake": round(server_cpu / connections * 1000, 3) if connections else None,
        "client_cpu_ms_per_handshake": round(client_cpu / connections * 1000, 3) if connections else None,
        "machine_busy_share": round(busy, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--generators", default="1x8,2x8", help="PROCESSESxCONCURRENCY list")
    parser.add_argument("--stime", default="1,2", help="numbers of parallel s_time clients")
    args = parser.parse_args()
    if not 1 <= args.seconds <= 60:
        raise SystemExit("--seconds must be 1-60")
    cores = os.cpu_count() or 1
    load = os.getloadavg()
    runs: list[dict[str, Any]] = []
    with herdlab.chrony_server([f"ntsprocesses {cores}"]) as (server, ca_path):
        time.sleep(0.5)  # helpers forked
        helpers = len(herdlab.process_tree(server.pid)) - 1
        for spec in args.generators.split(","):
            processes, concurrency = (int(x) for x in spec.split("x"))
            runs.append(measure_herd(server, str(ca_path), args.seconds, processes, concurrency))
            print(runs[-1])
        for parallel in (int(x) for x in args.stime.split(",")):
            runs.append(measure_s_time(server, str(ca_path), args.seconds, parallel))
            print(runs[-1])
    best_herd = max((r["nts_ke_per_second"] for r in runs if "nts_ke_per_second" in r), default=0)
    ceiling = max((r["tls_handshakes_per_second"] for r in runs if "tls_handshakes_per_second" in r), default=0)
    per_ke = [r["server_cpu_ms_per_nts_ke"] for r in runs if r.get("server_cpu_ms_per_nts_ke")]
    path = herdlab.write_result("herd_capacity", {
        "load_average_at_start": load,
        "server": f"chronyd 4.3 on 127.0.0.1, ntsprocesses {cores} ({helpers} helper processes seen)",
        "runs": runs,
        "best_nts_ke_per_second": best_herd,
        "tls_handshake_ceiling_per_second": ceiling,
        "herd_share_of_ceiling": round(best_herd / ceiling, 3) if ceiling else None,
        # What the server's own CPU cost per NTS-KE allows if it had every core to itself.
        "server_cpu_bound_nts_ke_per_second": round(cores * 1000 / min(per_ke)) if per_ke else None,
        "bottleneck": "server" if any(r.get("server_cpu_share_of_one_core", 0) > 0.9 * cores for r in runs)
        else "client side / shared machine CPU (the server did not use its cores)",
    })
    print(f"herd best {best_herd}/s NTS-KE; openssl s_time ceiling {ceiling}/s TLS 1.3 handshakes; {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
