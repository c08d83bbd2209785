"""The shipped alert rules and dashboard only use series ntsops writes (a renamed series breaks this test)."""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path
from typing import Any

import yaml
from ansible_collections.ntsops.nts.plugins.module_utils._acme import state as acme_state
from ansible_collections.ntsops.nts.plugins.module_utils._check import (
    daemon_status,
    probe,
    probe_gate,
    prometheus,
    serverstats,
)
from ansible_collections.ntsops.nts.plugins.module_utils._check.endpoint import CheckOptions
from ansible_collections.ntsops.nts.plugins.module_utils._check.exporter_config import parse_config, parse_target
from ansible_collections.ntsops.nts.tests.unit.plugins.module_utils._check.test_serverstats import (
    CHRONY_43,
    NTPSEC_122,
)

EXTRAS = Path(__file__).resolve().parents[3] / "extras" / "monitoring"
_METRIC = re.compile(r"\b((?:ntsops|process)_[a-z0-9_]+)\b")
ENTRY: dict[str, Any] = {
    "address": "198.51.100.10", "ok": True, "problems": [],
    "tls": {"handshake_ms": 2.0},
    "cert": {"days_left": 30, "not_before": "2026-04-01T00:00:00+00:00", "not_after": "2026-07-01T00:00:00+00:00",
             "sha256": "ab" * 32},
    "ke": {"cookies": 8, "ms": 1.5},
    "ntp": {"authenticated": True, "offset": 0.0002, "delay": 0.0004, "stratum": 2, "ms": 0.5},
}


def _written() -> set[str]:
    """Every series name the exporter, ntsops check and verify.yml write, with full canned data."""
    module = parse_config({"modules": {"nts": {"cert_file": "/nonexistent.pem", "dns": {
        "servers": ["198.51.100.53"], "expected_ipv4": ["198.51.100.10"], "max_ttl": 600}}}}).modules["nts"]
    answers = [probe.ServerRecords("198.51.100.53:53", {"ipv4": (("198.51.100.10",), 300), "ipv6": ((), None)})]

    def check(_options: CheckOptions) -> dict[str, Any]:
        return {"ok": True, "addresses": [ENTRY], "problems": []}

    texts = [
        probe.probe(module, parse_target("time.example"), check=check, dns=lambda *_a: answers,
                    now=lambda: datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)),
        prometheus.verify_output([{"host": "ntp1", "name": "time.example", "implementation": "chrony",
                                   "endpoint_ok": True, "addresses": [ENTRY], "cert_ok": True,
                                   "cert_days_left": 30}], timestamp=1.0),
        prometheus.render(serverstats.chrony_families(daemon_status.chronyc_serverstats(CHRONY_43), True)),
        prometheus.render(serverstats.ntpsec_families(daemon_status.ntpq_ntsinfo(NTPSEC_122), True)),
    ]
    stats = probe_gate.ExporterStats()
    gate = probe_gate.ProbeGate(1, 0)
    stats.probed("nts", gate.run("k", lambda: "", 1, lambda _s: ""))
    for reason in ("busy", "not_allowed"):
        stats.rejected(reason)
    texts.append(stats.render(0))
    acme_failed = {"cert_name": "time.example", "consecutive_failures": 1, "served_matches": False,
                   "last_success_time": 1.0, "not_after": 2.0, "renew_before_expiry_seconds": 3,
                   "last_run": {"step": "deploy", "ok": False, "reason": "served_mismatch", "time": 4.0}}
    texts.append(prometheus.render(acme_state.families([acme_failed], True)))
    names = {line.split("{")[0].split(" ")[0] for text in texts for line in text.splitlines() if line[:1] != "#"}
    # ntsops_nts_cert_matches_file needs a readable file; the cert_file test in test_probe covers it.
    return names | {"ntsops_nts_cert_matches_file"}


def _used(text: str) -> set[str]:
    return set(_METRIC.findall(text))


def test_rules_use_only_written_series() -> None:
    rules = yaml.safe_load((EXTRAS / "prometheus" / "ntsops.rules.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert len(exprs) >= 9
    used = set().union(*(_used(e) for e in exprs))
    assert used - _written() == set()


def test_every_rule_has_a_promtool_test() -> None:
    rules = yaml.safe_load((EXTRAS / "prometheus" / "ntsops.rules.yml").read_text())
    tests = yaml.safe_load((EXTRAS / "prometheus" / "ntsops.rules.test.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tested = {case["alertname"] for test in tests["tests"] for case in test.get("alert_rule_test", [])
              if case.get("exp_alerts")}
    assert alerts == tested


def test_dashboard_uses_only_written_series() -> None:
    dashboard = json.loads((EXTRAS / "grafana" / "ntsops-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = set().union(*(_used(e) for e in exprs))
    used = {re.sub(r"_(sum|count)$", "", name) if name.startswith("ntsops_exporter_probe_duration") else name
            for name in used}
    written = {re.sub(r"_(sum|count)$", "", name) for name in _written()}
    assert used - written == set()
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
