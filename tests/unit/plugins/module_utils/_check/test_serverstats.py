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


# `ntpq -c ntsinfo` of the Debian 12 NTPsec 1.2.2 the integration harness runs (one TCP probe
# of its NTS-KE port counted as a bad serve).
NTPSEC_122 = """NTS client sends:                       0
NTS client recvs good:                  0
NTS client recvs w error:               0
NTS server recvs good:                  3
NTS server recvs w error:               0
NTS server sends:                       3
NTS make cookies:                       24
NTS decode cookies:                     3
NTS decode cookies old:                 0
NTS decode cookies old2:                0
NTS decode cookies older:               0
NTS decode cookies too old:             0
NTS decode cookies error:               0
NTS KE client probes good:              0
NTS KE client probes bad:               0
NTS KE serves good:                     3
NTS KE serves bad:                      1
"""


def test_ntpsec_ntsinfo_lines_become_counters(parse_exposition: Callable[..., Any]) -> None:
    stats = daemon_status.ntpq_ntsinfo(NTPSEC_122)
    declared, samples = parse_exposition(prometheus.render(serverstats.ntpsec_families(stats, True)))
    values = {metric: value for metric, _labels, value in samples}
    assert values["ntsops_ntpsec_ntsinfo_up"] == 1
    assert values["ntsops_ntpsec_nts_ke_serves_good_total"] == 3
    assert values["ntsops_ntpsec_nts_ke_serves_bad_total"] == 1
    assert values["ntsops_ntpsec_nts_server_recvs_good_total"] == 3
    assert values["ntsops_ntpsec_nts_decode_cookies_too_old_total"] == 0
    assert declared["ntsops_ntpsec_nts_make_cookies_total"][0] == "counter"
    assert len(values) == 18
