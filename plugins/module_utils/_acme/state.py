# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the last issue, renewal and deploy did, kept in a file the exporter turns into metrics.

One JSON file per certificate lineage (``<directory>/<cert name>.json``), written by
``ntsops-acme`` after every run (atomic rename) and read by ``ntsops exporter``
(``acme_state`` in its configuration) on each /metrics scrape. It holds no secret:
fingerprints, times, step and reason codes, and the one-line message.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._check.prometheus import Family, sample
from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$")
# A state file larger than this is not ours.
_MAX_BYTES = 65536


class StateError(NtsopsError):
    """A state file that cannot be read or written."""


def path_for(directory: str, cert_name: str) -> str:
    if not _NAME.match(cert_name):
        raise StateError(f"certificate name {cert_name!r} is not a certbot lineage name")
    return os.path.join(directory, f"{cert_name}.json")


def load(path: str) -> dict[str, Any]:
    """The state in ``path``; an absent file is an empty state."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(_MAX_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise StateError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > _MAX_BYTES:
        raise StateError(f"{path} is larger than {_MAX_BYTES} bytes")
    try:
        state = json.loads(data)
    except ValueError:
        raise StateError(f"{path} is not JSON") from None
    if not isinstance(state, dict):
        raise StateError(f"{path} does not hold a JSON object")
    return state


def save(path: str, state: Mapping[str, Any]) -> None:
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".ntsops-", dir=directory)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(state, handle, indent=1, sort_keys=True)
            handle.write("\n")
        os.rename(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def record_run(
    state: Mapping[str, Any],
    *,
    cert_name: str,
    step: str,
    ok: bool,
    reason: str | None,
    message: str,
    when: float,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The new state after one run of ``step`` (issue, renew or deploy)."""
    new = dict(state)
    new["cert_name"] = cert_name
    new["last_run"] = {"step": step, "ok": ok, "reason": reason, "message": message, "time": when}
    if ok:
        new["last_success_time"] = when
        new["consecutive_failures"] = 0
    else:
        new["consecutive_failures"] = int(state.get("consecutive_failures", 0) or 0) + 1
    for key, value in (extra or {}).items():
        new[key] = value
    return new


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


_HELP = {
    "ntsops_acme_state_readable": "1 when every ACME state file could be read, else 0.",
    "ntsops_acme_last_run_success": "1 when the last issue, renewal or deploy of the lineage succeeded, else 0.",
    "ntsops_acme_last_run_timestamp_seconds": "When ntsops-acme last ran for the lineage (Unix time).",
    "ntsops_acme_last_success_timestamp_seconds": "When ntsops-acme last succeeded for the lineage (Unix time).",
    "ntsops_acme_consecutive_failures": "Runs that failed since the last success.",
    "ntsops_acme_last_failure_info": "1 for the step and reason of the last run when it failed.",
    "ntsops_acme_served_matches": "1 when the last deploy proved the daemon serves the lineage's certificate, else 0.",
    "ntsops_acme_cert_not_after_timestamp_seconds": "notAfter of the lineage's current certificate (Unix time).",
    "ntsops_acme_renew_before_expiry_seconds": "certbot's renewal margin for the lineage (a third of its lifetime).",
}


def families(states: Sequence[Mapping[str, Any]], readable: bool) -> list[Family]:
    """Prometheus families for the states of every lineage."""
    out: dict[str, list[str]] = {name: [] for name in _HELP}
    out["ntsops_acme_state_readable"].append(sample("ntsops_acme_state_readable", {}, 1.0 if readable else 0.0))
    for state in states:
        name = state.get("cert_name")
        if not isinstance(name, str):
            continue
        labels = {"cert_name": name}
        last_run = state.get("last_run")
        run: Mapping[str, Any] = last_run if isinstance(last_run, Mapping) else {}
        if "ok" in run:
            out["ntsops_acme_last_run_success"].append(
                sample("ntsops_acme_last_run_success", labels, 1.0 if run.get("ok") else 0.0)
            )
            if not run.get("ok"):
                out["ntsops_acme_last_failure_info"].append(sample(
                    "ntsops_acme_last_failure_info",
                    {**labels, "step": str(run.get("step") or ""), "reason": str(run.get("reason") or "")},
                    1.0,
                ))
        values = {
            "ntsops_acme_last_run_timestamp_seconds": _number(run.get("time")),
            "ntsops_acme_last_success_timestamp_seconds": _number(state.get("last_success_time")),
            "ntsops_acme_consecutive_failures": _number(state.get("consecutive_failures")),
            "ntsops_acme_cert_not_after_timestamp_seconds": _number(state.get("not_after")),
            "ntsops_acme_renew_before_expiry_seconds": _number(state.get("renew_before_expiry_seconds")),
        }
        served = state.get("served_matches")
        if isinstance(served, bool):
            values["ntsops_acme_served_matches"] = 1.0 if served else 0.0
        for metric, value in values.items():
            if value is not None:
                out[metric].append(sample(metric, labels, value))
    return [(metric, _HELP[metric], lines) for metric, lines in out.items() if lines]


def read_directory(directory: str) -> tuple[list[dict[str, Any]], bool]:
    """Every state file in ``directory`` and whether all of them were readable."""
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(".json") and not n.startswith("."))
    except FileNotFoundError:
        return [], True  # nothing issued yet
    except OSError:
        return [], False
    states, readable = [], True
    for name in names:
        try:
            states.append(load(os.path.join(directory, name)))
        except StateError:
            readable = False
    return states, readable
