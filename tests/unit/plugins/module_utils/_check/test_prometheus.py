"""verify.yml's textfile: the ntsops check schema for every name, plus what only verify.yml knows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._check import monitoring, prometheus

PASSED: dict[str, Any] = {
    "address": "192.0.2.10", "ok": True, "problems": [],
    "tls": {"handshake_ms": 2.0}, "cert": {"days_left": 60},
    "ke": {"cookies": 8, "ms": 1.5},
    "ntp": {"authenticated": True, "offset": 0.0002, "delay": 0.0004, "stratum": 2, "ms": 0.5},
}
FAILED: dict[str, Any] = {
    "address": "2001:db8::10", "ok": False, "problems": ["2001:db8::10: TCP 4460 connect refused"],
    "tls": None, "cert": None, "ke": None, "ntp": None,
}


def _host(host: str, name: str, entries: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
    return {
        "host": host, "name": name, "implementation": "chrony",
        "endpoint_ok": all(e["ok"] for e in entries) and bool(entries), "addresses": entries,
        "cert_ok": True, "cert_days_left": 59, **changes,
    }


def _values(samples: list[tuple[str, dict[str, str], float]]) -> dict[tuple[str, tuple[str, ...]], float]:
    return {(metric, tuple(labels.values())): value for metric, labels, value in samples}


def test_verify_writes_the_check_schema_per_address(parse_exposition: Callable[..., Any]) -> None:
    results = [_host("ntp1", "time.example", [PASSED, FAILED]), _host("ntp2", "other.example", [PASSED])]
    declared, samples = parse_exposition(prometheus.verify_output(results, timestamp=1700000000.7))
    assert all(kind == "gauge" for kind, _help in declared.values())
    values = _values(samples)
    assert values[("ntsops_nts_check_status", ("time.example",))] == monitoring.CRITICAL
    assert values[("ntsops_nts_check_status", ("other.example",))] == monitoring.OK
    assert values[("ntsops_nts_addresses", ("time.example",))] == 2
    assert values[("ntsops_nts_up", ("time.example", "192.0.2.10"))] == 1
    assert values[("ntsops_nts_up", ("time.example", "2001:db8::10"))] == 0
    assert values[("ntsops_nts_ke_seconds", ("time.example", "192.0.2.10"))] == 0.0015
    assert values[("ntsops_nts_ntp_offset_seconds", ("other.example", "192.0.2.10"))] == 0.0002
    assert values[("ntsops_nts_cert_days_left", ("time.example", "192.0.2.10"))] == 60
    assert ("ntsops_nts_ke_seconds", ("time.example", "2001:db8::10")) not in values
    assert values[("ntsops_nts_cert_check_ok", ("time.example", "ntp1"))] == 1
    assert values[("ntsops_nts_cert_check_days_left", ("other.example", "ntp2"))] == 59
    assert values[("ntsops_nts_server_info", ("time.example", "ntp1", "chrony"))] == 1
    assert values[("ntsops_nts_verify_timestamp_seconds", ())] == 1700000000


def test_same_families_and_labels_as_ntsops_check(parse_exposition: Callable[..., Any]) -> None:
    check_declared, check_samples = parse_exposition(
        prometheus.prometheus_output("time.example", {"addresses": [PASSED]}, monitoring.OK, 0.1)
    )
    verify_declared, verify_samples = parse_exposition(
        prometheus.verify_output([_host("ntp1", "time.example", [PASSED])])
    )
    shared = set(check_declared) & set(verify_declared)
    assert shared == set(check_declared) - {"ntsops_nts_check_duration_seconds"}
    assert all(check_declared[metric] == verify_declared[metric] for metric in shared)
    check_series = {(m, tuple(labels.items())) for m, labels, _v in check_samples if m in shared}
    verify_series = {(m, tuple(labels.items())) for m, labels, _v in verify_samples if m in shared}
    assert check_series == verify_series


def test_hosts_sharing_a_name_write_each_address_once(parse_exposition: Callable[..., Any]) -> None:
    results = [_host("ntp1", "pool.example", [PASSED]),
               _host("ntp2", "pool.example", [PASSED], implementation="ntpsec", cert_ok=False, cert_days_left=None)]
    _declared, samples = parse_exposition(prometheus.verify_output(results))
    values = _values(samples)
    assert [m for m, labels, _v in samples if m == "ntsops_nts_up"] == ["ntsops_nts_up"]
    assert values[("ntsops_nts_check_status", ("pool.example",))] == monitoring.CRITICAL
    assert values[("ntsops_nts_cert_check_ok", ("pool.example", "ntp2"))] == 0
    assert ("ntsops_nts_cert_check_days_left", ("pool.example", "ntp2")) not in values
    assert values[("ntsops_nts_server_info", ("pool.example", "ntp2", "ntpsec"))] == 1
    assert not any(m == "ntsops_nts_verify_timestamp_seconds" for m, _l, _v in samples)


def test_a_name_whose_endpoint_check_did_not_run_is_unknown(parse_exposition: Callable[..., Any]) -> None:
    results = [_host("ntp1", "gone.example", [], cert_ok=False)]
    _declared, samples = parse_exposition(prometheus.verify_output(results))
    values = _values(samples)
    assert values[("ntsops_nts_check_status", ("gone.example",))] == monitoring.CRITICAL
    assert prometheus.verify_status([_host("ntp1", "gone.example", [])]) == monitoring.UNKNOWN
    assert values[("ntsops_nts_addresses", ("gone.example",))] == 0
