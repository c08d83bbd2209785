"""ACME renewal figures with real Pebble, BIND, certbot and chronyd (harness/acme_rig.py).

Per forced renewal (``ntsops-acme renew --force``, as the timer runs it when one third of
the lifetime is left):
- renewal to served: from the start of the run until chronyd's NTS-KE port serves the
  new certificate (the run ends only after its deploy hook has seen it served), and the
  deploy step alone (install, restart, verify) as the hook records it;
- client impact: a cookie saved by a real NTS-KE before the renewals is sent in an
  NTS-protected NTP request after each one; an authenticated answer means clients keep
  their cookies and need no NTS-KE (chronyd reloads its keys from ntsdumpdir), a NAK
  would mean an NTS-KE herd at every renewal;
- time to alert: with the ACME server stopped, from the start of the failing run until
  the exporter's /metrics (the code the role installed) shows
  ``ntsops_acme_last_run_success 0``, the series the NtsAcmeRenewalFailing alert reads.

Everything runs in one ``--network none`` container this script starts and removes; the
client side enters only that container's network namespace.
Run as root: ``make bench-acme`` (RUNS=N renewals, default 5).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / ".collections"))
sys.path.append(str(REPO / "tests" / "integration"))

from harness.acme_rig import (
    NAME,
    TEST_DIR,
    Box,
    acme,
    exporter_metrics,
    file_sha256,
    missing,
    running_lab,
    served_sha256,
    state,
)
from harness.ca import TestCA
from harness.podman import podman

# The client side runs here, in the container's network namespace only (nsenter --net), with
# this checkout's core and the venv's cryptography: Debian 12's 38 cannot seal an NTS request.
COOKIE_SCRIPT = """
import json, sys
from ansible_collections.ntsops.nts.plugins.module_utils._check import cookie_continuity
from ansible_collections.ntsops.nts.plugins.module_utils._check.endpoint import CheckOptions
step, name, ca_path, state_path = sys.argv[1:5]
if step == "save":
    saved = cookie_continuity.save_cookies(CheckOptions(name=name, ca_path=ca_path), addresses=["127.0.0.1"])
    with open(state_path, "w") as handle:
        handle.write(cookie_continuity.state_text(saved["state"]))
    print(json.dumps({"ok": bool(saved["saved"]) and not saved["problems"], "problems": saved["problems"]}))
else:
    with open(state_path) as handle:
        result = cookie_continuity.verify_cookies(cookie_continuity.load_state(handle.read()))
    print(json.dumps({"ok": result["ok"], "nak": any(entry["nak"] for entry in result["addresses"]),
                      "problems": result["problems"]}))
"""


def cookie(box: Box, step: str, work: Path) -> dict:
    ca_path = work / "pebble-root.pem"
    if not ca_path.exists():
        ca_path.write_text(box.sh(f"cat {TEST_DIR}/pebble-root.pem"))
    pid = podman("inspect", "--format", "{{.State.Pid}}", box.name).strip()
    result = subprocess.run(
        ["nsenter", "--target", pid, "--net", "--", sys.executable, "-c", COOKIE_SCRIPT, step, NAME, str(ca_path),
         str(work / "cookies.json")],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PYTHONPATH": str(REPO / ".collections")})
    if result.returncode != 0:
        return {"ok": False, "nak": False, "problems": [result.stderr.strip()[-2000:]]}
    return json.loads(result.stdout)


def spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="forced renewals (1-50)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    if not 1 <= args.runs <= 50:
        parser.error("--runs must be 1-50")
    reason = missing()
    if reason:
        print(f"acme_renewal: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="ntsops-acme-bench-") as work:
        ca = TestCA(Path(work) / "ca")
        started = time.monotonic()
        with running_lab(ca, Path(work)) as lab:
            converge_s = time.monotonic() - started
            if lab.converge.returncode != 0:
                print(lab.converge.stdout[-4000:] + lab.converge.stderr[-2000:], file=sys.stderr)
                return 1
            box = lab.box
            saved = cookie(box, "save", Path(work))
            if not saved["ok"]:
                print(f"acme_renewal: no cookie saved: {saved['problems']}", file=sys.stderr)
                return 1
            # The control: the saved cookie is accepted before any renewal.
            control = cookie(box, "verify", Path(work))
            if not control["ok"]:
                print(f"acme_renewal: the saved cookie is refused before any renewal: {control['problems']}",
                      file=sys.stderr)
                return 1
            renewals = []
            for number in range(args.runs):
                before = served_sha256(box)
                begun = time.monotonic()
                run = acme(box, "renew", "--force")
                total = time.monotonic() - begun
                served = served_sha256(box)
                live = file_sha256(box, f"/etc/letsencrypt/live/{NAME}/cert.pem")
                if run.code != 0 or served == before or served != live:
                    print(f"acme_renewal: renewal {number + 1} failed: {run.stdout}{run.stderr}", file=sys.stderr)
                    return 1
                continuity = cookie(box, "verify", Path(work))
                renewals.append({"renewal_to_served_s": round(total, 2),
                                 "deploy_s": round(state(box)["last_deploy"]["seconds"], 2),
                                 "old_cookie_accepted": continuity["ok"], "nak": continuity["nak"]})
                print(f"renewal {number + 1}: served after {total:.2f} s (deploy {renewals[-1]['deploy_s']:.2f} s), "
                      f"cookie from before the first renewal "
                      f"{'accepted' if continuity['ok'] else 'REFUSED: ' + '; '.join(continuity['problems'])}")
            box.sh("systemctl stop pebble")
            begun = time.monotonic()
            failed = acme(box, "renew", "--force")
            alert_s = None
            while time.monotonic() - begun < 120:
                if f'ntsops_acme_last_run_success{{cert_name="{NAME}"}} 0' in exporter_metrics(box):
                    alert_s = time.monotonic() - begun
                    break
                time.sleep(0.5)
    figures = {
        "runs": args.runs,
        "role_run_with_first_issuance_s": round(converge_s, 1),
        "renewal_to_served_s": spread([r["renewal_to_served_s"] for r in renewals]),
        "deploy_s": spread([r["deploy_s"] for r in renewals]),
        "old_cookie_accepted": sum(r["old_cookie_accepted"] for r in renewals),
        "naks": sum(r["nak"] for r in renewals),
        "failed_run_exit": failed.code,
        "failure_to_metric_s": None if alert_s is None else round(alert_s, 2),
        "renewals": renewals,
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if alert_s is not None and failed.code != 0 else 1


if __name__ == "__main__":
    sys.exit(main())
