"""The chronyc_serverstats filter returns what the core's parser reads, by chronyc's labels."""

from __future__ import annotations

from ansible_collections.ntsops.nts.plugins.filter.chronyc_serverstats import FilterModule

FILTERS = FilterModule().filters()

# `chronyc serverstats` of chrony 4.3 (client.c process_cmd_serverstats), labels padded to one column.
CHRONY_43 = """\
NTP packets received       : 1520
NTP packets dropped        : 0
Command packets received   : 31
Command packets dropped    : 0
Client log records dropped : 0
NTS-KE connections accepted: 14
NTS-KE connections dropped : 2
Authenticated NTP packets  : 1498
"""


def test_filter_names() -> None:
    assert set(FILTERS) == {"chronyc_serverstats"}


def test_counters_by_label() -> None:
    stats = FILTERS["chronyc_serverstats"](CHRONY_43)
    assert stats["NTS-KE connections accepted"] == 14
    assert stats["NTS-KE connections dropped"] == 2
    assert stats["NTP packets received"] - stats["Authenticated NTP packets"] == 22
    assert len(stats) == 8


def test_error_text_gives_no_counters() -> None:
    assert FILTERS["chronyc_serverstats"]("506 Cannot talk to daemon\n") == {}
    assert FILTERS["chronyc_serverstats"]("") == {}
