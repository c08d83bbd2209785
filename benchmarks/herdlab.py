"""Shared pieces of the herd benchmarks: a loopback chronyd NTS server (the integration
harness's, so it never touches the clock and is stopped by PID), CPU accounting from
/proc, and running ``ntsops herd`` as a subprocess with its JSON summary."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# The harness parses chronyc output with the collection's core (module_utils).
sys.path.insert(0, str(REPO / ".collections"))
sys.path.append(str(REPO / "tests" / "integration"))

from harness.ca import TestCA
from harness.daemons import ChronyServer
from harness.lab import Daemons

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
RESULTS = REPO / "benchmarks" / "results"


@contextlib.contextmanager
def chrony_server(extra_conf: Sequence[str]) -> Iterator[tuple[ChronyServer, Path]]:
    """chronyd on 127.0.0.1 only (free ports), cert from a fresh test CA; yields (server, CA path)."""
    if os.geteuid() != 0:
        raise SystemExit("run as root: chronyd is started under capsh without CAP_SYS_TIME")
    with tempfile.TemporaryDirectory(prefix="ntsops-herd-bench-") as tmp:
        ca = TestCA(Path(tmp) / "ca", "ntsops benchmark CA")
        daemons = Daemons(Path(tmp), ca)
        try:
            server = daemons.chrony_server(addresses=["127.0.0.1"], extra_conf=list(extra_conf))
            yield server, ca.cert_path
        finally:
            daemons.stop_all()


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces; the fields after it are fixed.
    return text[text.rindex(")") + 2 :].split()


def process_tree(pid: int) -> list[int]:
    """``pid`` and its children (chronyd's NTS-KE helper processes are forked children)."""
    pids = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields and int(fields[1]) == pid:
                pids.append(int(entry))
    return pids


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds of the processes (utime and stime, fields 14 and 15)."""
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def machine_busy_share(before: list[int], after: list[int]) -> float:
    """Share of all CPU time that was not idle/iowait between two /proc/stat 'cpu' samples."""
    delta = [b - a for a, b in zip(before, after, strict=True)]
    idle = delta[3] + delta[4]
    return 1 - idle / sum(delta) if sum(delta) else 0.0


def cpu_sample() -> list[int]:
    with open("/proc/stat") as handle:
        return [int(x) for x in handle.readline().split()[1:]]


def run_herd(args: Sequence[str], timeout: float = 900) -> tuple[dict[str, Any], float]:
    """``ntsops herd ... --json``; returns (summary, generator CPU seconds incl. its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = subprocess.run(
        [sys.executable, "-m", "ntsops_cli", "herd", *args, "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.returncode not in (0, 1):
        raise RuntimeError(f"ntsops herd failed ({run.returncode}): {run.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads(run.stdout), cpu


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cores": os.cpu_count(),
        "load_average_at_start": data.pop("load_average_at_start", None),
        **data,
    }
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    return path
