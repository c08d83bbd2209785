"""podman as the integration tests call it: this checkout's containers.conf, output as text."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
PODMAN_ENV = {**os.environ, "CONTAINERS_CONF": str(REPO / "molecule" / "containers.conf")}


def podman_result(*args: str, timeout: float = 120, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """podman's whole result, whatever its exit status."""
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout,
                          env=PODMAN_ENV, input=stdin, check=False)


def podman(*args: str, timeout: float = 120, check: bool = True, stdin: str | None = None) -> str:
    """podman's stdout; with ``check``, AssertionError with its output when it exits non-zero."""
    result = podman_result(*args, timeout=timeout, stdin=stdin)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed: {result.stdout}{result.stderr}")
    return result.stdout
