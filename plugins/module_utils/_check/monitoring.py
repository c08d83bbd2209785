# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Assess an endpoint check result: the monitoring status per address and overall.

Pure functions over the dict :func:`endpoint.check_endpoint` returns; the output
formats built on them are in :mod:`nagios` and :mod:`prometheus`. The status is
decided from structured fields only: any problem the check reported is CRITICAL
(the check itself enforces ``min_cert_days``), while the WARNING thresholds (a
certificate inside the warning window, an NTP offset above the warning limit) are
compared here against ``cert.days_left`` and ``ntp.offset``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
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
    Offsets are absolute seconds; None disables the limit. With min_cert_fraction
    and warn_cert_fraction the certificate limits are fractions of its lifetime left
    instead of days (see lifetime_thresholds()).
    """

    min_cert_days: int = 14
    warn_cert_days: int = 30
    warn_offset: float | None = None
    crit_offset: float | None = None
    min_cert_fraction: float | None = None
    warn_cert_fraction: float | None = None

    def validate(self) -> None:
        fractions = (self.min_cert_fraction, self.warn_cert_fraction)
        if (fractions[0] is None) != (fractions[1] is None):
            raise MonitoringError("min_cert_fraction and warn_cert_fraction go together")
        low, high = fractions
        if low is not None and high is not None and not 0 < low <= high < 1:
            raise MonitoringError(
                f"certificate fractions must satisfy 0 < min_cert_fraction ({low}) <= warn_cert_fraction ({high}) < 1"
            )
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


# Lifetime-relative certificate limits: renewal clients renew at a third of the
# lifetime left (certbot: 30 of 90 days), so less than that means a renewal is late
# (WARNING); below a sixth, half of the renewal window is gone and several renewal
# attempts have failed (CRITICAL). For a 90-day certificate that is 30 and 15 days,
# close to the fixed defaults; for a 6-day one, 2 days and 1 day.
LIFETIME_WARN_FRACTION = 1 / 3
LIFETIME_CRIT_FRACTION = 1 / 6


def lifetime_thresholds(thresholds: Thresholds) -> Thresholds:
    """``thresholds`` with the lifetime-relative certificate limits."""
    return dataclasses.replace(
        thresholds, min_cert_fraction=LIFETIME_CRIT_FRACTION, warn_cert_fraction=LIFETIME_WARN_FRACTION
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


def section(entry: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """One step's part of an address entry (tls, ke, ntp, cert); empty when the step did not run."""
    value = entry.get(key)
    return value if isinstance(value, Mapping) else {}


def number(value: Any) -> float | None:
    """A finite number as float, else None (a missing or unmeasured value)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def seconds(part: Mapping[str, Any], key: str) -> float | None:
    """A step's duration, which the check reports in milliseconds, in seconds."""
    ms = number(part.get(key))
    return None if ms is None else ms / 1000


def assess_address(entry: Mapping[str, Any], thresholds: Thresholds) -> tuple[int, list[str]]:
    """Status of one address entry and the reasons for it."""
    address = str(entry.get("address"))
    if not entry.get("ok"):
        problems = [str(p) for p in entry.get("problems") or []] or [f"{address}: check failed"]
        return CRITICAL, problems
    status, reasons = OK, []
    offset = number(section(entry, "ntp").get("offset"))
    if offset is not None and thresholds.crit_offset is not None and abs(offset) > thresholds.crit_offset:
        status = CRITICAL
        reasons.append(f"{address}: NTP offset {offset:+.6f} s beyond {thresholds.crit_offset:g} s")
    elif offset is not None and thresholds.warn_offset is not None and abs(offset) > thresholds.warn_offset:
        status = WARNING
        reasons.append(f"{address}: NTP offset {offset:+.6f} s beyond {thresholds.warn_offset:g} s")
    days = number(section(entry, "cert").get("days_left"))
    left = number(section(entry, "cert").get("lifetime_left"))
    if thresholds.warn_cert_fraction is not None:
        if left is not None and left < thresholds.warn_cert_fraction:
            status = worst((status, WARNING))
            reasons.append(
                f"{address}: certificate has {left:.0%} of its lifetime left "
                f"(warning below {thresholds.warn_cert_fraction:.0%})"
            )
    elif days is not None and days < thresholds.warn_cert_days:
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
    records_status, why = assess_records(result.get("records"))
    reasons.extend(why)
    return Assessment(worst([*address_status.values(), records_status]), address_status, reasons)


def assess_records(records: Any) -> tuple[int, list[str]]:
    """The records-versus-server comparison (published.py): a record at an address the server
    does not have is CRITICAL (clients that pick it fail); an address or a whole family of the
    server that is not published is WARNING (clients still reach it, by the other addresses)."""
    if not isinstance(records, Mapping):
        return OK, []
    problems = [str(p) for p in records.get("problems") or []]
    if records.get("stale"):
        return CRITICAL, problems
    if records.get("missing"):
        return WARNING, problems
    return OK, problems
