"""``ntsops check``: status mapping and the three output formats from canned check results."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

if importlib.util.find_spec("ntsops_cli") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from ansible_collections.ntsops.nts.plugins.module_utils._check import monitoring, nagios, prometheus
from ansible_collections.ntsops.nts.plugins.module_utils._check.endpoint import EndpointCheckError

import ntsops_cli.check as check_cli
from ntsops_cli.main import main

GOOD_ENTRY: dict[str, Any] = {
    "address": "198.51.100.10",
    "ok": True,
    "problems": [],
    "tls": {"version": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384", "alpn": "ntske/1", "handshake_ms": 1.412},
    "cert": {"subject": "CN=time.example", "sans": ["DNS:time.example"], "days_left": 80, "sha256": "ab"},
    "ke": {"next_protocol": 0, "aead": 15, "cookies": 8, "cookie_sizes": [104], "server": None, "port": None,
           "warnings": [], "errors": [], "ms": 0.61},
    "ntp": {"address": "198.51.100.10", "port": 123, "authenticated": True, "nak": False, "stratum": 3, "leap": 0,
            "refid": "7F7F0101", "offset": -0.000125, "delay": 0.00021, "cookies": 1, "ms": 0.09},
}
DEAD_ENTRY: dict[str, Any] = {
    "address": "2001:db8::99",
    "ok": False,
    "problems": ["2001:db8::99: TCP 4460 connect timed out after 5 s"],
    "tls": None, "cert": None, "ke": None, "ntp": None,
}
THRESHOLDS = monitoring.Thresholds(min_cert_days=14, warn_cert_days=30)

# Nagios plugin guidelines: 'label'=value[UOM];[warn];[crit];[min];[max]
PERFDATA_ITEM = re.compile(
    r"^('[^'=]+'|[^'= ]+)=(U|-?[0-9.]+)(s|ms|us|%|B|KB|MB|TB|c)?(;[^; ]*){0,4}$"
)


def _result(*entries: dict[str, Any]) -> dict[str, Any]:
    entries_copy = [copy.deepcopy(e) for e in entries]
    problems = [p for e in entries_copy for p in e["problems"]]
    return {"ok": not problems, "addresses": entries_copy, "problems": problems}


def _entry(**changes: Any) -> dict[str, Any]:
    entry = copy.deepcopy(GOOD_ENTRY)
    for dotted, value in changes.items():
        section, _separator, key = dotted.partition("__")
        if key:
            entry[section][key] = value
        else:
            entry[section] = value
    return entry


def test_all_good_is_ok() -> None:
    assessment = monitoring.assess(_result(GOOD_ENTRY), THRESHOLDS)
    assert assessment.status == monitoring.OK
    assert assessment.reasons == []


def test_certificate_inside_warning_window_is_warning_only() -> None:
    assessment = monitoring.assess(_result(_entry(cert__days_left=20)), THRESHOLDS)
    assert assessment.status == monitoring.WARNING
    assert assessment.reasons == ["198.51.100.10: certificate expires in 20 days (warning below 30)"]


def test_any_problem_of_the_check_is_critical_even_with_a_warning_elsewhere() -> None:
    result = _result(_entry(cert__days_left=20), DEAD_ENTRY)
    assessment = monitoring.assess(result, THRESHOLDS)
    assert assessment.status == monitoring.CRITICAL
    assert assessment.address_status == {"198.51.100.10": monitoring.WARNING, "2001:db8::99": monitoring.CRITICAL}


def test_certificate_below_the_checks_minimum_is_critical_through_its_problem() -> None:
    # The check itself turns days_left < min_cert_days into a problem line.
    entry = _entry(cert__days_left=5, ok=False, problems=["198.51.100.10: certificate expires in 5 days (minimum 14)"])
    assert monitoring.assess(_result(entry), THRESHOLDS).status == monitoring.CRITICAL


def test_lifetime_thresholds_judge_the_fraction_left_not_the_days() -> None:
    limits = monitoring.lifetime_thresholds(THRESHOLDS)
    # A 6-day certificate with 3 days left: half of it, OK (fixed days would warn).
    six_day = _entry(cert__days_left=3, cert__lifetime_days=6.0, cert__lifetime_left=0.5)
    assert monitoring.assess(_result(six_day), limits).status == monitoring.OK
    assert monitoring.assess(_result(six_day), THRESHOLDS).status == monitoring.WARNING
    # A 90-day certificate with 25 days left: below a third, the renewal is late.
    ninety_day = _entry(cert__days_left=25, cert__lifetime_days=90.0, cert__lifetime_left=0.28)
    assessment = monitoring.assess(_result(ninety_day), limits)
    assert assessment.status == monitoring.WARNING
    assert assessment.reasons == ["198.51.100.10: certificate has 28% of its lifetime left (warning below 33%)"]
    perfdata = nagios.nagios_perfdata(_result(ninety_day), limits)
    assert "'198.51.100.10 cert_lifetime_left'=0.28;0.3333:;0.1667:;0;1" in perfdata
    assert all(PERFDATA_ITEM.match(item) for item in perfdata)


@pytest.mark.parametrize(
    ("fractions", "message"),
    [((0.2, None), "go together"), ((0.5, 0.2), "min_cert_fraction"), ((0.1, 1.0), "< 1")],
)
def test_bad_lifetime_fractions_are_refused(fractions: tuple[float, float | None], message: str) -> None:
    limits = monitoring.Thresholds(min_cert_fraction=fractions[0], warn_cert_fraction=fractions[1])
    with pytest.raises(monitoring.MonitoringError, match=re.escape(message)):
        limits.validate()


def test_offset_thresholds() -> None:
    limits = monitoring.Thresholds(warn_offset=0.1, crit_offset=1.0)
    assert monitoring.assess(_result(_entry(ntp__offset=0.05)), limits).status == monitoring.OK
    assert monitoring.assess(_result(_entry(ntp__offset=-0.5)), limits).status == monitoring.WARNING
    assert monitoring.assess(_result(_entry(ntp__offset=2.0)), limits).status == monitoring.CRITICAL


def test_no_address_is_unknown() -> None:
    assert monitoring.assess({"ok": True, "addresses": [], "problems": []}, THRESHOLDS).status == monitoring.UNKNOWN


@pytest.mark.parametrize(
    ("limits", "words"),
    [
        (monitoring.Thresholds(min_cert_days=14, warn_cert_days=7), "warn_cert_days"),
        (monitoring.Thresholds(warn_offset=2.0, crit_offset=1.0), "must not exceed"),
        (monitoring.Thresholds(warn_offset=-1.0), "positive"),
    ],
)
def test_inconsistent_thresholds_are_refused(limits: monitoring.Thresholds, words: str) -> None:
    with pytest.raises(monitoring.MonitoringError, match=words):
        limits.validate()


def test_worst_orders_like_nagios() -> None:
    assert monitoring.worst([monitoring.OK, monitoring.UNKNOWN, monitoring.WARNING]) == monitoring.UNKNOWN
    assert monitoring.worst([monitoring.UNKNOWN, monitoring.CRITICAL]) == monitoring.CRITICAL
    assert monitoring.worst([]) == monitoring.OK


def test_nagios_line_and_perfdata_syntax() -> None:
    result = _result(GOOD_ENTRY, DEAD_ENTRY)
    assessment = monitoring.assess(result, THRESHOLDS)
    line = nagios.nagios_output("time.example", result, assessment, THRESHOLDS)
    assert "\n" not in line
    status, perfdata = line.split(" | ")
    assert status.startswith("NTS CRITICAL - time.example: 1/2 addresses ok; 2001:db8::99: TCP 4460 connect timed out")
    items = re.findall(r"'[^']*'=\S*|\S+", perfdata)
    assert " ".join(items) == perfdata
    labels = []
    for item in items:
        assert PERFDATA_ITEM.match(item), item
        labels.append(item.split("=")[0])
    assert len(labels) == len(set(labels))
    assert "'198.51.100.10 handshake'=0.001412s;;;0" in items
    assert "'198.51.100.10 ke'=0.00061s;;;0" in items
    assert "'198.51.100.10 offset'=-0.000125s;;" in items
    assert "'198.51.100.10 cert_days'=80;30:;14:" in items
    assert "'2001:db8::99 handshake'=U;;;0" in items
    assert items[-1] == "addresses_ok=1;;2:;0;2"


def test_nagios_ok_line_summarises_offset_and_days() -> None:
    result = _result(GOOD_ENTRY)
    line = nagios.nagios_output("time.example", result, monitoring.assess(result, THRESHOLDS), THRESHOLDS)
    assert line.startswith(
        "NTS OK - time.example: 1/1 addresses ok, largest offset -0.125 ms, certificate 80 days left |"
    )


def test_a_pipe_in_a_problem_cannot_start_the_perfdata_early() -> None:
    entry = _entry(ok=False, problems=["198.51.100.10: odd | text"])
    result = _result(entry)
    line = nagios.nagios_output("t", result, monitoring.assess(result, THRESHOLDS), THRESHOLDS)
    assert line.count("|") == 1


def test_prometheus_one_series_per_address(parse_exposition: Callable[..., Any]) -> None:
    result = _result(GOOD_ENTRY, DEAD_ENTRY)
    text = prometheus.prometheus_output("time.example", result, monitoring.CRITICAL, 0.25)
    declared, samples = parse_exposition(text)
    assert all(kind == "gauge" for kind, _help in declared.values())
    values = {(metric, labels.get("address")): value for metric, labels, value in samples}
    assert values[("ntsops_nts_check_status", None)] == 2
    assert values[("ntsops_nts_addresses", None)] == 2
    assert values[("ntsops_nts_up", "198.51.100.10")] == 1
    assert values[("ntsops_nts_up", "2001:db8::99")] == 0
    assert values[("ntsops_nts_tls_handshake_seconds", "198.51.100.10")] == pytest.approx(0.001412)
    assert values[("ntsops_nts_ke_seconds", "198.51.100.10")] == pytest.approx(0.00061)
    assert values[("ntsops_nts_ntp_seconds", "198.51.100.10")] == pytest.approx(0.00009)
    assert values[("ntsops_nts_cookies", "198.51.100.10")] == 8
    assert values[("ntsops_nts_cert_days_left", "198.51.100.10")] == 80
    assert values[("ntsops_nts_ntp_offset_seconds", "198.51.100.10")] == pytest.approx(-0.000125)
    assert values[("ntsops_nts_authenticated", "198.51.100.10")] == 1
    # Nothing measured on the dead address: no sample rather than a false 0.
    assert ("ntsops_nts_tls_handshake_seconds", "2001:db8::99") not in values
    assert ("ntsops_nts_authenticated", "2001:db8::99") not in values
    assert values[("ntsops_nts_problems", "2001:db8::99")] == 1
    for metric, labels, _value in samples:
        if metric.startswith("ntsops_nts_check") or metric == "ntsops_nts_addresses":
            assert labels == {"name": "time.example"}
        else:
            assert set(labels) == {"name", "address"}


def test_prometheus_label_values_are_escaped(parse_exposition: Callable[..., Any]) -> None:
    text = prometheus.prometheus_output('we"ird\\name', None, monitoring.UNKNOWN, 0.0)
    assert 'name="we\\"ird\\\\name"' in text
    parse_exposition(text)


# --------------------------------------------------------------- the command


@pytest.fixture
def canned(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replace the network check with a canned result (or the exception in "error"); records the options it got."""
    seen: dict[str, Any] = {"result": _result(GOOD_ENTRY)}

    def fake_check(options: Any, addresses: Any = None) -> dict[str, Any]:
        seen["options"], seen["addresses"] = options, addresses
        error = seen.get("error")
        if error is not None:
            raise error
        return copy.deepcopy(seen["result"])

    monkeypatch.setattr(check_cli, "check_endpoint", fake_check)
    return seen


def test_command_passes_options_through(canned: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", "time.example", "--port", "4461", "--address", "192.0.2.1", "--address", "2001:db8::1",
                 "--timeout", "2", "--min-cert-days", "7", "--no-ntp"])
    assert code == monitoring.OK
    options = canned["options"]
    assert (options.name, options.port, options.timeout, options.min_cert_days, options.ntp_exchange) == (
        "time.example", 4461, 2.0, 7, False)
    assert canned["addresses"] == ["192.0.2.1", "2001:db8::1"]
    assert capsys.readouterr().out.startswith("NTS OK - time.example: 1/1 addresses ok")


@pytest.mark.parametrize(
    ("entries", "expected"),
    [((GOOD_ENTRY,), 0), ((_entry(cert__days_left=20),), 1), ((GOOD_ENTRY, DEAD_ENTRY), 2)],
)
@pytest.mark.parametrize("output", ["--nagios", "--json", "--prometheus"])
def test_exit_code_is_the_status_in_every_format(
    canned: dict[str, Any], capsys: pytest.CaptureFixture[str], entries: tuple[dict[str, Any], ...], expected: int,
    output: str, *, parse_exposition: Callable[..., Any],
) -> None:
    canned["result"] = _result(*entries)
    assert main(["check", "time.example", output]) == expected
    out = capsys.readouterr().out
    if output == "--json":
        data = json.loads(out)
        assert data["status"] == monitoring.STATUS_NAMES[expected]
        assert data["addresses"] == canned["result"]["addresses"]
    elif output == "--prometheus":
        _declared, samples = parse_exposition(out)
        assert ("ntsops_nts_check_status", {"name": "time.example"}, float(expected)) in samples


def test_name_that_does_not_resolve_is_unknown(canned: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    canned["error"] = EndpointCheckError("nowhere.example does not resolve: Name or service not known")
    assert main(["check", "nowhere.example"]) == monitoring.UNKNOWN
    assert capsys.readouterr().out == (
        "NTS UNKNOWN - nowhere.example: nowhere.example does not resolve: Name or service not known\n")


@pytest.mark.parametrize(
    "argv",
    [
        ["check"],
        ["check", "t.example", "--port", "http"],
        ["check", "t.example", "--json", "--prometheus"],
        ["check", "t.example", "--timeout"],
        ["check", "t.example", "--no-such-option"],
        ["check", "t.example", "--warn-cert-days", "3"],
        ["check", "t.example", "--warn-offset", "2", "--crit-offset", "1"],
    ],
)
def test_bad_arguments_exit_unknown(
    canned: dict[str, Any], capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        code = main(argv)
        raise SystemExit(code)
    assert exited.value.code == monitoring.UNKNOWN
    assert capsys.readouterr().out.startswith("NTS UNKNOWN - ")
    assert "options" not in canned


def test_invalid_port_is_unknown_without_touching_the_network(capsys: pytest.CaptureFixture[str]) -> None:
    # The real check_endpoint validates before any socket is opened.
    assert main(["check", "t.example", "--address", "127.0.0.1", "--port", "70000"]) == monitoring.UNKNOWN
    assert "port must be 1-65535" in capsys.readouterr().out


def test_missing_ca_bundle_is_unknown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.pem"
    assert main(["check", "t.example", "--address", "127.0.0.1", "--ca", str(missing)]) == monitoring.UNKNOWN
    assert f"cannot read CA bundle {missing}" in capsys.readouterr().out


def test_server_addresses_are_passed_and_a_missing_family_warns(
    canned: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    result = _result(GOOD_ENTRY)
    result["records"] = {
        "name": "time.example", "missing": True, "stale": False,
        "problems": ["time.example: no AAAA record, but the server has ipv6 2001:db8::10"],
    }
    result["problems"] += result["records"]["problems"]
    result["ok"] = False
    canned["result"] = result
    code = main(["check", "time.example", "--server-address", "198.51.100.10", "--server-address", "2001:db8::10"])
    assert code == monitoring.WARNING
    assert canned["options"].server_addresses == ("198.51.100.10", "2001:db8::10")
    assert canned["options"].server_families == ("ipv4", "ipv6")
    assert "no AAAA record, but the server has ipv6 2001:db8::10" in capsys.readouterr().out


def test_gathered_server_addresses(canned: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    def gather(allow_prefixes: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
        seen.append(allow_prefixes)
        return ("2001:db8::10",), ("ipv6",)

    monkeypatch.setattr(check_cli, "gather_server_addresses", gather)
    assert main(["check", "time.example", "--gather-server-addresses", "--allow-prefix", "2001:db8::/32"]) == 0
    assert seen == [["2001:db8::/32"]]
    assert (canned["options"].server_addresses, canned["options"].server_families) == (("2001:db8::10",), ("ipv6",))


def test_server_addresses_given_and_gathered_is_a_usage_error(
    canned: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["check", "t.example", "--server-address", "192.0.2.1", "--gather-server-addresses"])
    assert exited.value.code == monitoring.UNKNOWN
    assert "options" not in canned
