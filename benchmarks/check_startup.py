"""Time a whole `ntsops check` process next to `chronyd -Q` against one local chronyd (run as root).

Run from the repository root: sudo .venv/bin/python benchmarks/check_startup.py [--runs 7]

Both clients do the same job once per run against one chronyd NTS server on
127.0.0.1 (free ports, so NTS-KE sends Port Negotiation): NTS-KE over TLS 1.3,
then authenticated NTP. `ntsops check` is this checkout's command line
(`python -m ntsops_cli`, interpreter start-up and imports included) and exits
after one exchange; `chronyd -Q 'server ... nts iburst'` is what an operator
would type to ask chrony "what offset would I get", and exits when chrony's
reference mode has the samples it wants. Runs alternate between the two, so load
from the rest of the machine falls on both alike.

Safety, as in tests/integration/harness/daemons.py: the server and the chronyd
client run under `capsh --drop=cap_sys_time`, the server with `-x`; the client's
`-Q` never sets the clock, and without the capability it could not. The server
(benchmarks/herdlab.py's) is stopped by PID at the end, also on failure or
SIGTERM. Prints the medians and their ratio, each process's CPU time and how busy
the machine was, and writes benchmarks/results/check_startup.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# herdlab first: it puts tests/integration (the harness) on sys.path
import herdlab
from harness.daemons import CHRONYD, ChronyServer, no_clock_argv

REPO = herdlab.REPO
ADDRESS = "127.0.0.1"  # where herdlab.chrony_server listens
# How much faster the whole `ntsops check` process must be than chronyd -Q.
TARGET_RATIO = 10.0


class BenchError(RuntimeError):
    pass


def ntsops_argv(server: ChronyServer, ca_path: Path) -> list[str]:
    # --address: the name is not resolved, so the system resolver's speed plays no part.
    return [sys.executable, "-m", "ntsops_cli", "check", "localhost", "--address", ADDRESS,
            "--port", str(server.ntsport), "--ca", str(ca_path), "--timeout", "5", "--nagios"]


def chronyd_argv(server: ChronyServer, ca_path: Path, workdir: Path) -> list[str]:
    # Directives on the command line: chronyd then reads no configuration file.
    directives = [
        f"server {ADDRESS} port {server.port} ntsport {server.ntsport} nts iburst",
        f"ntstrustedcerts {ca_path}",
        f"pidfile {workdir / 'chronyd-q.pid'}",
        f"ntsdumpdir {workdir / 'chronyd-q-nts'}",
        "cmdport 0",
        "port 0",
    ]
    (workdir / "chronyd-q-nts").mkdir(exist_ok=True)
    return no_clock_argv([str(CHRONYD), "-Q", "-u", "root", "-4", *directives])


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], env: dict[str, str], ok: str, timeout: float) -> tuple[float, float, str]:
    """Run `argv` to the end: wall seconds, CPU seconds (user + system) and its output, which must
    contain `ok`. The CPU time tells a busy machine's share apart from the process's own work."""
    cpu_before = _children_cpu()
    started = time.perf_counter()
    result = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    elapsed = time.perf_counter() - started
    output = result.stdout + result.stderr
    if result.returncode != 0 or ok not in output:
        raise BenchError(f"{shlex.join(argv)} exited {result.returncode}:\n{output}")
    return elapsed, _children_cpu() - cpu_before, output


def summary(values: list[float]) -> dict[str, Any]:
    return {"median_s": round(statistics.median(values), 4), "min_s": round(min(values), 4),
            "max_s": round(max(values), 4), "n": len(values), "runs_s": [round(v, 4) for v in values]}


def chrony_version() -> str:
    out = subprocess.run([str(CHRONYD), "-v"], capture_output=True, text=True, check=False).stdout
    return out.split("\n", 1)[0].strip()


def measure(args: argparse.Namespace, server: ChronyServer, ca_path: Path, workdir: Path) -> dict[str, Any]:
    # This checkout's ntsops_cli, whatever the venv's editable install points at; and
    # bytecode caching as on any installed system (the warm-up writes the .pyc files).
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(args.checkout)
    check = ntsops_argv(server, ca_path)
    chrony = chronyd_argv(server, ca_path, workdir)
    # Warm-up of both (page cache, .pyc files, the server's first NTS-KE), not counted.
    timed(check, env, "NTS OK", args.timeout)
    timed(chrony, env, "System clock wrong by", args.timeout)
    load_at_start = os.getloadavg()
    busy_before = herdlab.cpu_sample()
    times: dict[str, list[float]] = {"ntsops_check": [], "chronyd_q": []}
    cpu: dict[str, list[float]] = {"ntsops_check": [], "chronyd_q": []}
    last_output = ""
    for _run in range(args.runs):
        seconds, cpu_seconds, _output = timed(check, env, "NTS OK", args.timeout)
        times["ntsops_check"].append(seconds)
        cpu["ntsops_check"].append(cpu_seconds)
        seconds, cpu_seconds, last_output = timed(chrony, env, "System clock wrong by", args.timeout)
        times["chronyd_q"].append(seconds)
        cpu["chronyd_q"].append(cpu_seconds)
    if not server.alive():
        raise BenchError("the chronyd server died during the benchmark")
    check_s = {**summary(times["ntsops_check"]), "cpu_median_s": round(statistics.median(cpu["ntsops_check"]), 4)}
    chrony_s = {**summary(times["chronyd_q"]), "cpu_median_s": round(statistics.median(cpu["chronyd_q"]), 4)}
    return {
        "command": shlex.join(sys.orig_argv),
        "load_average_at_start": load_at_start,
        "machine": {"load_average_at_end": os.getloadavg(),
                    "busy_share": round(herdlab.machine_busy_share(busy_before, herdlab.cpu_sample()), 2),
                    "python": platform.python_version(), "chrony": chrony_version()},
        "server": {"address": ADDRESS, "ntsport": server.ntsport, "ntp_port": server.port},
        "ntsops_check": {"argv": shlex.join(check[1:]), "checkout": str(args.checkout), **check_s},
        "chronyd_q": {"argv": shlex.join(chrony), "last_output": last_output.strip().splitlines()[-1:], **chrony_s},
        "ratio": round(chrony_s["median_s"] / check_s["median_s"], 1),
        "target_ratio": TARGET_RATIO,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each (after one warm-up each)")
    parser.add_argument("--timeout", type=float, default=60, help="seconds one run may take")
    parser.add_argument("--checkout", type=Path, default=REPO,
                        help="the tree whose ntsops_cli to run (default: this one), e.g. an older commit's")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    # SIGTERM and SIGHUP unwind through chrony_server's cleanup, so no chronyd is left behind.
    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)

    try:
        with herdlab.chrony_server([]) as (server, ca_path), \
                tempfile.TemporaryDirectory(prefix="ntsops-check-startup-") as workdir:
            report = measure(args, server, ca_path, Path(workdir))
    except (BenchError, subprocess.TimeoutExpired) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    check, chrony = report["ntsops_check"], report["chronyd_q"]
    print(f"ntsops check, whole process, one address: median {check['median_s']:.3f} s "
          f"(min {check['min_s']:.3f}, max {check['max_s']:.3f}, n={check['n']}; CPU {check['cpu_median_s']:.3f} s)")
    print(f"chronyd -Q, same server:                  median {chrony['median_s']:.3f} s"
          f" (min {chrony['min_s']:.3f}, max {chrony['max_s']:.3f}, n={chrony['n']};"
          f" CPU {chrony['cpu_median_s']:.3f} s)")
    machine = report["machine"]
    print(f"machine busy {machine['busy_share']:.0%} of {os.cpu_count()} CPUs during the runs, "
          f"load average {machine['load_average_at_end'][0]:.1f} at the end")
    print(f"chronyd -Q / ntsops check: {report['ratio']:.1f} x (target at least {TARGET_RATIO:g} x)")
    print(f"wrote {herdlab.write_result('check_startup', report)}")
    return 0 if report["ratio"] >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
