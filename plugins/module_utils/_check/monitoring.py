# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turn an endpoint check result into a monitoring status, Nagios output or Prometheus text.

Pure functions over the dict :func:`endpoint.check_endpoint` returns. The status is
decided from structured fields only: any problem the check reported is CRITICAL
(the check itself enforces ``min_cert_days``), while the WARNING thresholds (a
certificate inside the warning window, an NTP offset above the warning limit) are
compared here against ``cert.days_left`` and ``ntp.offset``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATUS_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
_SEVERITY_ORDER = (OK, WARNING, UNKNOWN, CRITICAL)  # Nagios convention: CRITICAL is worst


class MonitoringError(NtsopsError):
    """Inconsistent monitoring thresholds."""


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """WARNING/CRITICAL limits beyond what the check enforces itself.

    min_cert_days is the check's own limit (below it the check reports a problem,
    so the status is CRITICAL); warn_cert_days is the WARNING window above it.
    Offsets are absolute seconds; None disables the limit.
    """

    min_cert_days: int = 14
    warn_cert_days: int = 30
    warn_offset: float | None = None
    crit_offset: float | None = None

    def validate(self) -> None:
        if self.warn_cert_days < self.min_cert_days:
            raise MonitoringError(
                f"warn_cert_days ({self.warn_cert_days}) must not be below min_cert_days ({self.min_cert_days})"
            )
        for label, value in (("warn_offset", self.warn_offset), ("crit_offset", self.crit_offset)):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise MonitoringError(f"{label} must be a positive number of seconds, got {value}")
        if self.warn_offset is not None and self.crit_offset is not None and self.warn_offset > self.crit_offset:
            raise MonitoringError(
                f"warn_offset ({self.warn_offset}) must not exceed crit_offset ({self.crit_offset})"
            )


@dataclasses.dataclass(frozen=True)
class Assessment:
    """The overall status, one status per address, and the reasons behind non-OK ones."""

    status: int
    address_status: dict[str, int]
    reasons: list[str]

    @property
    def status_name(self) -> str:
        return STATUS_NAMES[self.status]


def worst(statuses: Iterable[int]) -> int:
    """The most severe status (CRITICAL > UNKNOWN > WARNING > OK)."""
    return max(statuses, key=_SEVERITY_ORDER.index, default=OK)


def _section(entry: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = entry.get(key)
    return value if isinstance(value, Mapping) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def assess_address(entry: Mapping[str, Any], thresholds: Thresholds) -> tuple[int, list[str]]:
    """Status of one address entry and the reasons for it."""
    address = str(entry.get("address"))
    if not entry.get("ok"):
        problems = [str(p) for p in entry.get("problems") or []] or [f"{address}: check failed"]
        return CRITICAL, problems
    status, reasons = OK, []
    offset = _number(_section(entry, "ntp").get("offset"))
    if offset is not None and thresholds.crit_offset is not None and abs(offset) > thresholds.crit_offset:
        status = CRITICAL
        reasons.append(f"{address}: NTP offset {offset:+.6f} s beyond {thresholds.crit_offset:g} s")
    elif offset is not None and thresholds.warn_offset is not None and abs(offset) > thresholds.warn_offset:
        status = WARNING
        reasons.append(f"{address}: NTP offset {offset:+.6f} s beyond {thresholds.warn_offset:g} s")
    days = _number(_section(entry, "cert").get("days_left"))
    if days is not None and days < thresholds.warn_cert_days:
        status = worst((status, WARNING))
        reasons.append(
            f"{address}: certificate expires in {days:g} days (warning below {thresholds.warn_cert_days})"
        )
    return status, reasons


def assess(result: Mapping[str, Any], thresholds: Thresholds) -> Assessment:
    """Map a check_endpoint result to a Nagios status; no address at all is UNKNOWN."""
    thresholds.validate()
    entries = result.get("addresses") or []
    if not entries:
        return Assessment(UNKNOWN, {}, ["no address was checked"])
    address_status: dict[str, int] = {}
    reasons: list[str] = []
    for entry in entries:
        status, why = assess_address(entry, thresholds)
        address_status[str(entry.get("address"))] = status
        reasons.extend(why)
    return Assessment(worst(address_status.values()), address_status, reasons)


# ------------------------------------------------------------------ Nagios / Icinga


def _perf_label(text: str) -> str:
    # Plugin guidelines: quote labels with spaces; a label may not hold ' or =.
    return "'" + text.replace("'", "").replace("=", "") + "'"


def _perf_value(value: float | None, unit: str = "") -> str:
    if value is None:
        return "U"
    return f"{value:.6f}".rstrip("0").rstrip(".") + unit if unit == "s" else f"{value:g}{unit}"


def nagios_perfdata(result: Mapping[str, Any], thresholds: Thresholds) -> list[str]:
    """Perfdata items 'label'=value[UOM];[warn];[crit];[min];[max] per address, then totals."""
    items: list[str] = []
    entries = result.get("addresses") or []
    offset_warn = f"{-thresholds.warn_offset:g}:{thresholds.warn_offset:g}" if thresholds.warn_offset else ""
    offset_crit = f"{-thresholds.crit_offset:g}:{thresholds.crit_offset:g}" if thresholds.crit_offset else ""
    for entry in entries:
        address = str(entry.get("address"))
        tls, ke, ntp, cert = (_section(entry, k) for k in ("tls", "ke", "ntp", "cert"))

        def seconds(section: Mapping[str, Any], key: str) -> float | None:
            ms = _number(section.get(key))
            return None if ms is None else ms / 1000

        items.append(f"{_perf_label(address + ' handshake')}={_perf_value(seconds(tls, 'handshake_ms'), 's')};;;0")
        items.append(f"{_perf_label(address + ' ke')}={_perf_value(seconds(ke, 'ms'), 's')};;;0")
        if entry.get("ntp") is not None or not entry.get("ok"):
            items.append(f"{_perf_label(address + ' ntp')}={_perf_value(seconds(ntp, 'ms'), 's')};;;0")
            items.append(
                f"{_perf_label(address + ' offset')}={_perf_value(_number(ntp.get('offset')), 's')}"
                f";{offset_warn};{offset_crit}"
            )
        cookies = _number(ke.get("cookies"))
        items.append(f"{_perf_label(address + ' cookies')}={_perf_value(cookies)};;;0")
        days = _number(cert.get("days_left"))
        items.append(
            f"{_perf_label(address + ' cert_days')}={_perf_value(days)}"
            f";{thresholds.warn_cert_days}:;{thresholds.min_cert_days}:"
        )
    total = len(entries)
    passed = sum(1 for entry in entries if entry.get("ok"))
    items.append(f"addresses_ok={passed};;{total}:;0;{total}")
    return items


def nagios_output(name: str, result: Mapping[str, Any], assessment: Assessment, thresholds: Thresholds) -> str:
    """One status line with perfdata, e.g. ``NTS OK - time.example: 2/2 addresses ok ... | ...``."""
    entries = result.get("addresses") or []
    passed = sum(1 for entry in entries if entry.get("ok"))
    summary = f"{name}: {passed}/{len(entries)} addresses ok"
    if assessment.reasons:
        summary += "; " + "; ".join(assessment.reasons)
    else:
        days = [d for e in entries if (d := _number(_section(e, "cert").get("days_left"))) is not None]
        offsets = [o for e in entries if (o := _number(_section(e, "ntp").get("offset"))) is not None]
        if offsets:
            summary += f", largest offset {max(offsets, key=abs) * 1000:+.3f} ms"
        if days:
            summary += f", certificate {min(days):g} days left"
    # A pipe would start the perfdata; a newline would end the status line.
    summary = summary.replace("|", "/").replace("\n", " ")
    return f"NTS {assessment.status_name} - {summary} | {' '.join(nagios_perfdata(result, thresholds))}"


def nagios_unknown(name: str, message: str) -> str:
    text = message.replace("|", "/").replace("\n", " ")
    return f"NTS UNKNOWN - {name}: {text}"


# ------------------------------------------------------------------ Prometheus

# metric -> (type, help, value getter over an address entry)
_ADDRESS_METRICS: Sequence[tuple[str, str, str]] = (
    ("ntsops_nts_up", "gauge", "1 when every step of the NTS check passed for this address, else 0."),
    ("ntsops_nts_tls_handshake_seconds", "gauge", "TCP connect and TLS 1.3 handshake time."),
    ("ntsops_nts_ke_seconds", "gauge", "NTS-KE request and response time after the handshake."),
    ("ntsops_nts_ntp_seconds", "gauge", "Time of one NTS-protected NTP exchange."),
    ("ntsops_nts_cookies", "gauge", "Cookies the NTS-KE response carried."),
    ("ntsops_nts_cert_days_left", "gauge", "Whole days until the served certificate expires."),
    ("ntsops_nts_ntp_offset_seconds", "gauge", "Offset of the server's clock from this host's (NTP sign)."),
    ("ntsops_nts_ntp_delay_seconds", "gauge", "Round-trip delay of the NTP exchange."),
    ("ntsops_nts_ntp_stratum", "gauge", "Stratum in the authenticated NTP response."),
    ("ntsops_nts_authenticated", "gauge", "1 when the NTP response carried a valid NTS authenticator, else 0."),
    ("ntsops_nts_problems", "gauge", "Number of problems the check found on this address."),
)


def _address_values(entry: Mapping[str, Any]) -> dict[str, float | None]:
    tls, ke, ntp, cert = (_section(entry, k) for k in ("tls", "ke", "ntp", "cert"))

    def seconds(section: Mapping[str, Any], key: str) -> float | None:
        ms = _number(section.get(key))
        return None if ms is None else ms / 1000

    authenticated = ntp.get("authenticated")
    return {
        "ntsops_nts_up": 1.0 if entry.get("ok") else 0.0,
        "ntsops_nts_tls_handshake_seconds": seconds(tls, "handshake_ms"),
        "ntsops_nts_ke_seconds": seconds(ke, "ms"),
        "ntsops_nts_ntp_seconds": seconds(ntp, "ms"),
        "ntsops_nts_cookies": _number(ke.get("cookies")),
        "ntsops_nts_cert_days_left": _number(cert.get("days_left")),
        "ntsops_nts_ntp_offset_seconds": _number(ntp.get("offset")),
        "ntsops_nts_ntp_delay_seconds": _number(ntp.get("delay")),
        "ntsops_nts_ntp_stratum": _number(ntp.get("stratum")),
        # No NTP step (disabled, or KE failed): no sample rather than a misleading 0.
        "ntsops_nts_authenticated": None if authenticated is None else float(bool(authenticated)),
        "ntsops_nts_problems": float(len(entry.get("problems") or [])),
    }


def _label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _sample(metric: str, labels: Mapping[str, str], value: float) -> str:
    rendered = ",".join(f'{key}="{_label_value(val)}"' for key, val in labels.items())
    # Nanosecond resolution is plenty and avoids float noise such as 0.004097000000000001.
    value = round(float(value), 9)
    number = str(int(value)) if value.is_integer() else repr(value)
    return f"{metric}{{{rendered}}} {number}"


def prometheus_output(name: str, result: Mapping[str, Any] | None, status: int, duration_s: float) -> str:
    """Exposition text format: check-wide series by name, one series per address for the rest.

    A value the check could not measure is left out (no sample), as Prometheus
    expects, instead of being written as 0.
    """
    lines: list[str] = []

    def family(metric: str, kind: str, help_text: str, samples: list[str]) -> None:
        if samples:
            lines.extend([f"# HELP {metric} {help_text}", f"# TYPE {metric} {kind}", *samples])

    by_name = {"name": name}
    family(
        "ntsops_nts_check_status", "gauge", "Nagios status of the whole check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
        [_sample("ntsops_nts_check_status", by_name, status)],
    )
    family(
        "ntsops_nts_check_duration_seconds", "gauge", "Wall time of the whole check.",
        [_sample("ntsops_nts_check_duration_seconds", by_name, round(duration_s, 6))],
    )
    entries = (result or {}).get("addresses") or []
    if result is not None:
        family(
            "ntsops_nts_addresses", "gauge", "Addresses checked for this name.",
            [_sample("ntsops_nts_addresses", by_name, len(entries))],
        )
    values = [(str(entry.get("address")), _address_values(entry)) for entry in entries]
    for metric, kind, help_text in _ADDRESS_METRICS:
        samples = [
            _sample(metric, {"name": name, "address": address}, value)
            for address, by_metric in values
            if (value := by_metric[metric]) is not None
        ]
        family(metric, kind, help_text, samples)
    return "\n".join(lines) + "\n"
