# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus exposition text for endpoint check results: one schema for every writer.

``ntsops check --prometheus`` renders one name with :func:`prometheus_output`;
playbooks/verify.yml renders every server it checked with :func:`verify_output`
(through the ``ntsops.nts.verify_prometheus`` filter). Both write the same
families with the same labels: the check-wide ones by ``name``, the measured ones
by ``name`` and ``address``, from the entries :func:`endpoint.check_endpoint`
returns. verify.yml adds what only it knows: the certificate file check of each
server host, the daemon behind the name, and when it wrote the file.

Every family here is a gauge (render() types a ``_total`` name as a counter, for
the exporter's own). A value that was not measured is left out (no sample), as
Prometheus expects, instead of being written as 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._check.monitoring import (
    CRITICAL,
    OK,
    Thresholds,
    assess,
    number,
    seconds,
    section,
    worst,
)

# (metric, help) of the series measured on each address.
_ADDRESS_METRICS: Sequence[tuple[str, str]] = (
    ("ntsops_nts_up", "1 when every step of the NTS check passed for this address, else 0."),
    ("ntsops_nts_tls_handshake_seconds", "TCP connect and TLS 1.3 handshake time."),
    ("ntsops_nts_ke_seconds", "NTS-KE request and response time after the handshake."),
    ("ntsops_nts_ntp_seconds", "Time of one NTS-protected NTP exchange."),
    ("ntsops_nts_cookies", "Cookies the NTS-KE response carried."),
    ("ntsops_nts_cert_days_left", "Whole days until the served certificate expires."),
    ("ntsops_nts_ntp_offset_seconds", "Offset of the server's clock from this host's (NTP sign)."),
    ("ntsops_nts_ntp_delay_seconds", "Round-trip delay of the NTP exchange."),
    ("ntsops_nts_ntp_stratum", "Stratum in the authenticated NTP response."),
    ("ntsops_nts_authenticated", "1 when the NTP response carried a valid NTS authenticator, else 0."),
    ("ntsops_nts_problems", "Number of problems the check found on this address."),
)
_STATUS_HELP = "Nagios status of the whole check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."
_ADDRESSES_HELP = "Addresses checked for this name."

# A family: metric, help text and its sample lines.
Family = tuple[str, str, list[str]]


def _address_values(entry: Mapping[str, Any]) -> dict[str, float | None]:
    tls, ke, ntp, cert = (section(entry, k) for k in ("tls", "ke", "ntp", "cert"))
    authenticated = ntp.get("authenticated")
    return {
        "ntsops_nts_up": 1.0 if entry.get("ok") else 0.0,
        "ntsops_nts_tls_handshake_seconds": seconds(tls, "handshake_ms"),
        "ntsops_nts_ke_seconds": seconds(ke, "ms"),
        "ntsops_nts_ntp_seconds": seconds(ntp, "ms"),
        "ntsops_nts_cookies": number(ke.get("cookies")),
        "ntsops_nts_cert_days_left": number(cert.get("days_left")),
        "ntsops_nts_ntp_offset_seconds": number(ntp.get("offset")),
        "ntsops_nts_ntp_delay_seconds": number(ntp.get("delay")),
        "ntsops_nts_ntp_stratum": number(ntp.get("stratum")),
        # No NTP step (disabled, or KE failed): no sample rather than a misleading 0.
        "ntsops_nts_authenticated": None if authenticated is None else float(bool(authenticated)),
        "ntsops_nts_problems": float(len(entry.get("problems") or [])),
    }


def _label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def sample(metric: str, labels: Mapping[str, str], value: float) -> str:
    rendered = ",".join(f'{key}="{_label_value(val)}"' for key, val in labels.items())
    # Nanosecond resolution is plenty and avoids float noise such as 0.004097000000000001.
    value = round(float(value), 9)
    number_text = str(int(value)) if value.is_integer() else repr(value)
    return f"{metric}{{{rendered}}} {number_text}" if labels else f"{metric} {number_text}"


def _address_families(checked: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]) -> list[Family]:
    """The per-address families over every (name, address entries) pair."""
    values = [
        (name, str(entry.get("address")), _address_values(entry)) for name, entries in checked for entry in entries
    ]
    return [
        (
            metric,
            help_text,
            [
                sample(metric, {"name": name, "address": address}, value)
                for name, address, by_metric in values
                if (value := by_metric[metric]) is not None
            ],
        )
        for metric, help_text in _ADDRESS_METRICS
    ]


def render(families: Sequence[Family]) -> str:
    """Families with samples, each under its HELP and TYPE; a ``_total`` name is a counter."""
    lines: list[str] = []
    for metric, help_text, samples in families:
        if samples:
            kind = "counter" if metric.endswith("_total") else "gauge"
            lines.extend([f"# HELP {metric} {help_text}", f"# TYPE {metric} {kind}", *samples])
    return "\n".join(lines) + "\n"


def prometheus_output(name: str, result: Mapping[str, Any] | None, status: int, duration_s: float) -> str:
    """One name's check: status, duration and address count by name, then one series per address.

    ``result`` is None when the check could not run at all (the status says why).
    """
    by_name = {"name": name}
    entries = (result or {}).get("addresses") or []
    families: list[Family] = [
        ("ntsops_nts_check_status", _STATUS_HELP, [sample("ntsops_nts_check_status", by_name, status)]),
        (
            "ntsops_nts_check_duration_seconds",
            "Wall time of the whole check.",
            [sample("ntsops_nts_check_duration_seconds", by_name, round(duration_s, 6))],
        ),
        (
            "ntsops_nts_addresses",
            _ADDRESSES_HELP,
            [] if result is None else [sample("ntsops_nts_addresses", by_name, len(entries))],
        ),
        *_address_families([(name, entries)]),
    ]
    return render(families)


def verify_status(results: Sequence[Mapping[str, Any]]) -> int:
    """The status of one name from its verify.yml results (one per server host of the name).

    The endpoint part is assessed like ``ntsops check`` with no WARNING limits (the
    playbook passes or fails); a failed certificate check is CRITICAL.
    """
    entries = [entry for result in results for entry in result.get("addresses") or []]
    status = assess({"addresses": entries}, Thresholds(min_cert_days=0, warn_cert_days=0)).status
    if status == OK and not all(result.get("endpoint_ok") for result in results):
        status = CRITICAL
    if not all(result.get("cert_ok") for result in results):
        status = worst((status, CRITICAL))
    return status


def verify_output(results: Sequence[Mapping[str, Any]], timestamp: float | None = None) -> str:
    """verify.yml's textfile: the check schema for every name, plus the certificate file checks.

    ``results`` are verify.yml's per-host results: ``host``, ``name``,
    ``implementation``, ``endpoint_ok``, ``addresses`` (endpoint_check's entries),
    ``cert_ok`` and ``cert_days_left``. Hosts that share a name checked the same
    addresses: each address is written once, from the first host's check, so
    that no series appears twice.
    """
    by_name: dict[str, list[Mapping[str, Any]]] = {}
    for result in results:
        by_name.setdefault(str(result.get("name")), []).append(result)
    checked: list[tuple[str, list[Mapping[str, Any]]]] = []
    for name, host_results in by_name.items():
        entries: dict[str, Mapping[str, Any]] = {}
        for result in host_results:
            for entry in result.get("addresses") or []:
                entries.setdefault(str(entry.get("address")), entry)
        checked.append((name, list(entries.values())))

    def per_host(metric: str, value: Any) -> list[str]:
        return [
            sample(metric, {"name": str(r.get("name")), "host": str(r.get("host"))}, float(v))
            for r in results
            if (v := value(r)) is not None
        ]

    families: list[Family] = [
        (
            "ntsops_nts_check_status",
            _STATUS_HELP,
            [sample("ntsops_nts_check_status", {"name": n}, verify_status(r)) for n, r in by_name.items()],
        ),
        (
            "ntsops_nts_addresses",
            _ADDRESSES_HELP,
            [sample("ntsops_nts_addresses", {"name": n}, len(e)) for n, e in checked],
        ),
        *_address_families(checked),
        (
            "ntsops_nts_cert_check_ok",
            "1 when the server's certificate and key files passed every check and it serves that certificate.",
            per_host("ntsops_nts_cert_check_ok", lambda r: bool(r.get("cert_ok"))),
        ),
        (
            "ntsops_nts_cert_check_days_left",
            "Whole days until the certificate file on the server expires.",
            per_host("ntsops_nts_cert_check_days_left", lambda r: number(r.get("cert_days_left"))),
        ),
        (
            "ntsops_nts_server_info",
            "The NTS daemon behind the name on this server host (value always 1).",
            [
                sample(
                    "ntsops_nts_server_info",
                    {"name": str(r.get("name")), "host": str(r.get("host")),
                     "implementation": str(r.get("implementation"))},
                    1,
                )
                for r in results
            ],
        ),
        (
            "ntsops_nts_verify_timestamp_seconds",
            "When verify.yml wrote this file (Unix time).",
            [] if timestamp is None else [sample("ntsops_nts_verify_timestamp_seconds", {}, int(timestamp))],
        ),
    ]
    return render(families)
