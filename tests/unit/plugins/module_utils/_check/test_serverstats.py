"""chrony serverstats as Prometheus series, from chronyc's own output."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._check import daemon_status, prometheus, serverstats

# `chronyc serverstats` of the Debian 12 chronyd (4.3) the integration harness runs, after a few NTS-KE.
CHRONY_43 = """NTP packets received       : 12
NTP packets dropped        : 0
Command packets received   : 3
Command packets dropped    : 0
Client log records dropped : 0
NTS-KE connections accepted: 5
NTS-KE connections dropped : 2
Authenticated NTP packets  : 11
Interleaved NTP packets    : 0
NTP timestamps held        : 0
NTP timestamp span         : 0
"""


def test_every_line_becomes_a_series_counters_typed_as_counters(parse_exposition: Callable[..., Any]) -> None:
    stats = daemon_status.chronyc_serverstats(CHRONY_43)
    declared, samples = parse_exposition(prometheus.render(serverstats.chrony_families(stats, True)))
    values = {metric: value for metric, _labels, value in samples}
    assert values["ntsops_chrony_serverstats_up"] == 1
    assert values["ntsops_chrony_nts_ke_connections_accepted_total"] == 5
    assert values["ntsops_chrony_nts_ke_connections_dropped_total"] == 2
    assert values["ntsops_chrony_authenticated_ntp_packets_total"] == 11
    assert declared["ntsops_chrony_nts_ke_connections_dropped_total"][0] == "counter"
    assert declared["ntsops_chrony_ntp_timestamps_held"][0] == "gauge"
    assert len(values) == 12


def test_a_failed_chronyc_is_one_series() -> None:
    text = prometheus.render(serverstats.chrony_families({}, False))
    assert text.splitlines()[-1] == "ntsops_chrony_serverstats_up 0"
