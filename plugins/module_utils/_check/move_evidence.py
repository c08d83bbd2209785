# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The verdict of a planned move: does one watched poll interval prove that the clients moved?

playbooks/planned_move.yml measures, on a chrony server, `chronyc serverstats` at the
start of one client poll interval, then the nftables counters of NTP requests to the
old and the new address (reset at the interval's end) and `chronyc serverstats` again;
``move_evidence()`` reads that output (docs/recovery-model.md, "The verdict").
"""

from __future__ import annotations

import json
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._check.daemon_status import chronyc_serverstats
from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError

# Between the two `chronyc serverstats` readings: this marker, then `nft -j reset
# counter` of the old address's NTP requests, then the new address's.
WATCH_MARKER = "%%ntsops-watch%%"
_AUTHENTICATED = "Authenticated NTP packets"
_RECEIVED = "NTP packets received"
_KE_ACCEPTED = "NTS-KE connections accepted"


def _nft_packets(line: str, what: str) -> int:
    try:
        items = json.loads(line)["nftables"]
        return int(next(item["counter"]["packets"] for item in items if "counter" in item))
    except (ValueError, KeyError, TypeError, StopIteration):
        raise NtsopsError(f"the watch's {what} line is not nft -j counter output: {line[:80]!r}") from None


def move_evidence(watch_output: str, switch_stats: str) -> dict[str, Any]:
    """Whether one watched window proves the move, and what it saw.

    ``authenticated_at_new``: NTP reached the new address and chronyd authenticated
    more requests than reached the old one (so some came elsewhere): authenticated time
    flows at the new address while clients may still use the old one (NTPsec clients,
    which ignore NAKs, until NTP closes there). ``proven``: besides, none reached the
    old address.

    Proven only on positive evidence in the same interval: no NTP request reached the
    old address, some reached the new one, and chronyd authenticated NTP requests
    (only cookies it can decode authenticate, so a stranded client, silent after a
    NAK, adds nothing). Silence is never proof. ``switch_stats``: `chronyc
    serverstats` right after the key change, the baseline of the "since" figures
    (a restart zeroes the counters).
    """
    head, marker, tail = watch_output.partition(WATCH_MARKER)
    lines = tail.strip().splitlines()
    if not marker or len(lines) < 3:
        raise NtsopsError("the watch's output lacks the interval's counters")
    start, end = chronyc_serverstats(head), chronyc_serverstats("\n".join(lines[2:]))
    switch = chronyc_serverstats(switch_stats)
    for name, stats in (("start", start), ("end", end), ("switch", switch)):
        if _AUTHENTICATED not in stats or _RECEIVED not in stats:
            raise NtsopsError(f"chronyc serverstats at the interval's {name} lacks the NTP counters")
    evidence = {
        "old_ntp_interval": _nft_packets(lines[0], "old address"),
        "new_ntp_interval": _nft_packets(lines[1], "new address"),
        "authenticated_ntp_interval": end[_AUTHENTICATED] - start[_AUTHENTICATED],
        "unauthenticated_ntp_interval": (end[_RECEIVED] - end[_AUTHENTICATED])
        - (start[_RECEIVED] - start[_AUTHENTICATED]),
        "authenticated_ntp_since_switch": end[_AUTHENTICATED] - switch[_AUTHENTICATED],
        "nts_ke_since_switch": end.get(_KE_ACCEPTED, 0) - switch.get(_KE_ACCEPTED, 0),
    }
    # Each request to the old address is authenticated at most once, so whatever
    # chronyd authenticated beyond them came to the other addresses.
    evidence["authenticated_ntp_elsewhere_interval"] = max(
        evidence["authenticated_ntp_interval"] - evidence["old_ntp_interval"], 0)
    evidence["authenticated_at_new"] = (evidence["new_ntp_interval"] > 0
                                        and evidence["authenticated_ntp_elsewhere_interval"] > 0)
    evidence["proven"] = (evidence["old_ntp_interval"] == 0 and evidence["new_ntp_interval"] > 0
                          and evidence["authenticated_ntp_interval"] > 0)
    return evidence
