"""scripts/lab_renew.py's parsing: the clients' counters and the NTS-KE sampler's log."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))

import lab_renew

# chronyc -c -n ntpdata and sources from the lab's chrony 4.3 client (two servers).
CHRONY = (
    "203.0.113.202,CB0071CA,123,203.0.113.212,CB0071D4,Normal,4,Server,10,2,4,-25,0.000000030,0.000000,"
    "0.000000,7F7F0101,,1796353922.745614706,0.000005478,0.000052271,0.000000059,0.000090407,0.00,111,111,"
    "1111,No,Yes,Kernel,Kernel,12,11,10,10\n"
    "^,*,203.0.113.202,10,2,377,1,0.000004,0.000004,0.000052\n"
    "^,+,203.0.113.203,10,2,17,1,0.000004,0.000004,0.000052\n"
)


def test_chrony_polls_reads_sent_valid_and_authenticated() -> None:
    polls = lab_renew.chrony_polls(CHRONY, "203.0.113.202")
    assert polls == lab_renew.Polls(sent=12, answered=10, authenticated=True, reach=0o377)


def test_chrony_46_row_with_its_four_timestamping_counts_reads_the_same() -> None:
    # chrony 4.4 and later append Total kernel TX/RX and Total HW TX/RX (Debian 13's lab clients).
    lines = CHRONY.splitlines()
    chrony_46 = "\n".join([lines[0] + ",12,11,0,0", *lines[1:]]) + "\n"
    assert lab_renew.chrony_polls(chrony_46, "203.0.113.202") == lab_renew.Polls(
        sent=12, answered=10, authenticated=True, reach=0o377)


def test_chrony_polls_none_without_ntpdata_for_the_address() -> None:
    assert lab_renew.chrony_polls(CHRONY, "203.0.113.203") is None


def _sample(pid: int, accepted: int) -> str:
    return f"{pid}|NTP packets received       : 5;NTS-KE connections accepted: {accepted};"


def test_ke_sessions_add_the_new_process_whole_count_after_a_restart() -> None:
    # 7 at the start, 8 before the restart, then the new chronyd counts from 0 to 2.
    log = "\n".join([_sample(100, 7), _sample(100, 8), "0|506 Cannot talk to daemon;", _sample(200, 1),
                     _sample(200, 2)])
    assert lab_renew.ke_sessions_from(log, "chrony") == (3, 2)


def test_ke_sessions_zero_when_the_counter_stays() -> None:
    log = "\n".join(["42|NTS KE serves good: 4;NTS KE serves bad: 0;"] * 3)
    assert lab_renew.ke_sessions_from(log, "ntpsec") == (0, 1)


def test_ke_sessions_none_when_nothing_was_read() -> None:
    assert lab_renew.ke_sessions_from("0|\n", "chrony") is None
