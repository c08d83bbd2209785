# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Nagios/Icinga plugin output for an endpoint check result: one status line with perfdata."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._check.monitoring import (
    Assessment,
    Thresholds,
    number,
    seconds,
    section,
)


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
        tls, ke, ntp, cert = (section(entry, k) for k in ("tls", "ke", "ntp", "cert"))
        items.append(f"{_perf_label(address + ' handshake')}={_perf_value(seconds(tls, 'handshake_ms'), 's')};;;0")
        items.append(f"{_perf_label(address + ' ke')}={_perf_value(seconds(ke, 'ms'), 's')};;;0")
        if entry.get("ntp") is not None or not entry.get("ok"):
            items.append(f"{_perf_label(address + ' ntp')}={_perf_value(seconds(ntp, 'ms'), 's')};;;0")
            items.append(
                f"{_perf_label(address + ' offset')}={_perf_value(number(ntp.get('offset')), 's')}"
                f";{offset_warn};{offset_crit}"
            )
        cookies = number(ke.get("cookies"))
        items.append(f"{_perf_label(address + ' cookies')}={_perf_value(cookies)};;;0")
        days = number(cert.get("days_left"))
        if thresholds.warn_cert_fraction is not None and thresholds.min_cert_fraction is not None:
            items.append(f"{_perf_label(address + ' cert_days')}={_perf_value(days)};;;")
            items.append(
                f"{_perf_label(address + ' cert_lifetime_left')}={_perf_value(number(cert.get('lifetime_left')))}"
                f";{thresholds.warn_cert_fraction:.4g}:;{thresholds.min_cert_fraction:.4g}:;0;1"
            )
        else:
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
        days = [d for e in entries if (d := number(section(e, "cert").get("days_left"))) is not None]
        offsets = [o for e in entries if (o := number(section(e, "ntp").get("offset"))) is not None]
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
