# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Server-side counters as Prometheus series: chrony's ``serverstats`` and NTPsec's ``ntsinfo``.

chronyc prints one ``label : value`` line per counter (chrony's client.c,
``process_cmd_serverstats``), and so does NTPsec's ``ntpq -c ntsinfo``
(ntpclients/ntpq.py, ``do_ntsinfo``); :mod:`daemon_status` parses both. Each label
becomes ``ntsops_chrony_<label in snake case>`` or ``ntsops_ntpsec_<...>_total``,
so a counter a newer daemon adds shows up without a code change. The counters only
grow while the daemon runs; chrony's span and held-timestamp lines are gauges.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ansible_collections.ntsops.nts.plugins.module_utils._check import prometheus

# serverstats lines that are levels, not counts since start (chrony 4.x "NTP timestamps held"/"span").
_GAUGE_LABELS = ("NTP timestamps held", "NTP timestamp span")
# The ones the alert rules and the dashboard use, with their help text.
KNOWN = {
    "NTS-KE connections accepted": "NTS-KE connections chronyd accepted and served.",
    "NTS-KE connections dropped": "NTS-KE connections chronyd closed at once (rate limit, ntsratelimit, or too many).",
    "Authenticated NTP packets": "NTP requests with a valid NTS authenticator (or symmetric key).",
    "NTP packets received": "NTP requests received.",
    "NTP packets dropped": "NTP requests dropped (rate limit or access rules).",
}


def metric_name(label: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")
    suffix = "" if label in _GAUGE_LABELS else "_total"
    return f"ntsops_chrony_{slug}{suffix}"


def chrony_families(stats: Mapping[str, int], up: bool) -> list[prometheus.Family]:
    """``ntsops_chrony_serverstats_up`` and one family per serverstats line."""
    families: list[prometheus.Family] = [
        (
            "ntsops_chrony_serverstats_up",
            "1 when chronyc serverstats answered, else 0.",
            [prometheus.sample("ntsops_chrony_serverstats_up", {}, up)],
        )
    ]
    for label, value in stats.items():
        metric = metric_name(label)
        families.append(
            (metric, KNOWN.get(label, f"chronyc serverstats: {label}."), [prometheus.sample(metric, {}, value)])
        )
    return families


def ntpsec_families(stats: Mapping[str, int], up: bool) -> list[prometheus.Family]:
    """``ntsops_ntpsec_ntsinfo_up`` and one counter family per ``ntpq -c ntsinfo`` line."""
    families: list[prometheus.Family] = [
        (
            "ntsops_ntpsec_ntsinfo_up",
            "1 when ntpq -c ntsinfo answered, else 0.",
            [prometheus.sample("ntsops_ntpsec_ntsinfo_up", {}, up)],
        )
    ]
    for label, value in stats.items():
        metric = "ntsops_ntpsec_" + re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_") + "_total"
        families.append((metric, f"ntpq ntsinfo: {label}.", [prometheus.sample(metric, {}, value)]))
    return families
