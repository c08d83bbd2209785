"""chronyc and ntpq output parsed into rows and source records, from real daemon output.

The files in daemon_output/ were captured from chrony 4.3 and NTPsec 1.2.2 clients of the
integration harness's NTS servers (chrony.nts.test at 2001:db8::10, ntpsec.nts.test at
2001:db8::11): chronyc with -n, ntpq with -n, and the sampler of scripts/lab_drill.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._check import daemon_status

OUTPUT = Path(__file__).parent / "daemon_output"
# 2026-12-02T14:04:52.092Z, the "rec" of the chrony server's association in the ntpq captures.
REC_CHRONY = 1796220292.092


def _text(name: str) -> str:
    return (OUTPUT / name).read_text()


def test_chronyc_sources_and_authdata_rows() -> None:
    sources = daemon_status.chronyc_sources(_text("chronyc-c-n-sources.txt"))
    assert sources == [{
        "mode": "^", "state": "*", "name": "2001:db8::10", "stratum": "3", "poll": "0", "reach": "7",
        "last_rx": "1", "adjusted_offset": "0.000000100", "measured_offset": "-0.000000717", "error": "0.000015215",
    }]
    authdata = daemon_status.chronyc_authdata(_text("chronyc-c-n-authdata.txt"))
    assert authdata == [{
        "name": "2001:db8::10", "mode": "NTS", "key_id": "1", "key_type": "15", "key_length": "256",
        "last_ke_ago": "0", "ke_attempts": "0", "nak": "0", "cookies": "8", "cookie_length": "100",
    }]


def test_one_chronyc_run_with_both_commands_comes_apart() -> None:
    text = _text("chronyc-c-n-sources-authdata.txt")
    assert daemon_status.chronyc_sources(text) == daemon_status.chronyc_sources(_text("chronyc-c-n-sources.txt"))
    assert daemon_status.chronyc_authdata(text) == daemon_status.chronyc_authdata(_text("chronyc-c-n-authdata.txt"))


def test_human_readable_output_and_errors_are_not_rows() -> None:
    assert daemon_status.chronyc_sources(_text("chronyc-n-sources.txt")) == []
    assert daemon_status.chronyc_sources("506 Cannot talk to daemon\n") == []
    assert daemon_status.chronyc_authdata("") == []


def test_chrony_source_records() -> None:
    text = _text("chronyc-c-n-sources-authdata.txt")
    records = daemon_status.chrony_client_sources(
        daemon_status.chronyc_sources(text), daemon_status.chronyc_authdata(text)
    )
    assert records == [{
        "name": "2001:db8::10", "address": "2001:db8::10", "mode": "server", "selected": True, "state": "*",
        "stratum": 3, "poll": 0, "reach": 7, "last_rx": 1, "offset": pytest.approx(1e-7), "nts": True,
        "cookies": 8, "naks": 0,
    }]


def test_chrony_configured_names_and_numeric_addresses_from_two_runs() -> None:
    numeric = _text("chronyc-c-n-sources-authdata.txt")
    # chronyc -N prints the name as configured where -n prints the address.
    named = numeric.replace("2001:db8::10", "chrony.nts.test")
    records = daemon_status.chrony_client_sources(
        daemon_status.chronyc_sources(named), daemon_status.chronyc_authdata(named),
        daemon_status.chronyc_sources(numeric),
    )
    assert (records[0]["name"], records[0]["address"], records[0]["cookies"]) == ("chrony.nts.test", "2001:db8::10", 8)


def test_chrony_source_without_nts_and_not_selected() -> None:
    sources = daemon_status.chronyc_sources("^,?,192.0.2.1,0,6,0,-,0.0,0.0,0.0\n")
    authdata = daemon_status.chronyc_authdata("192.0.2.1,-,0,0,0,0,0,0,0,0\n")
    [record] = daemon_status.chrony_client_sources(sources, authdata)
    assert (record["selected"], record["reach"], record["last_rx"], record["nts"], record["cookies"]) == (
        False, 0, None, False, None)


def test_chronyc_serverstats() -> None:
    text = "NTP packets received       : 12\nNTS-KE connections accepted: 3\nsomething else\n"
    assert daemon_status.chronyc_serverstats(text) == {"NTP packets received": 12, "NTS-KE connections accepted": 3}


def test_ntpq_associations() -> None:
    rows = daemon_status.ntpq_associations(_text("ntpq-n-associations.txt"))
    assert [(r["assid"], r["auth"], r["condition"]) for r in rows] == [
        ("17767", "ok", "sys.peer"), ("17768", "ok", "candidate")]


def test_ntpq_readvar_of_one_association() -> None:
    [variables] = daemon_status.ntpq_variables(_text("ntpq-n-as-rv1.txt"))
    assert variables["associd"] == "17767"
    assert variables["status"].startswith("f61a conf, authenb, auth")
    assert variables["srcadr"] == "2001:db8::10"
    assert variables["srchost"] == '"chrony.nts.test"'
    assert variables["rec"] == "eebaa404.17941a5c 2026-12-02T14:04:52.092Z"
    assert (variables["reach"], variables["keyid"], variables["offset"]) == ("077", "0", "0.040341")
    assert (variables["flash"], variables["ntscookies"], variables["pmode"]) == ("00 ok", "8", "4")


@pytest.mark.parametrize("joined", [False, True])
def test_ntpq_readvar_of_several_associations(joined: bool) -> None:
    # The lab drill's sampler joins ntpq's lines with spaces.
    text = _text("ntpq-n-lab-drill.txt")
    records = daemon_status.ntpq_variables(text.replace("\n", " ") if joined else text)
    assert [(r["srcadr"], r["reach"]) for r in records] == [("2001:db8::10", "077"), ("2001:db8::11", "077")]
    assert records[0]["flash"] == "00 ok"
    assert daemon_status.ntpq_timestamp(records[0]["rec"]) == pytest.approx(REC_CHRONY)


def test_ntpq_timestamp_without_a_date() -> None:
    assert daemon_status.ntpq_timestamp("00000000.00000000") is None
    assert daemon_status.ntpq_timestamp(None) is None


def test_ntpsec_source_records() -> None:
    associations = daemon_status.ntpq_associations(_text("ntpq-n-associations.txt"))
    variables = daemon_status.ntpq_variables(_text("ntpq-n-as-rv1.txt"))
    second = {"srcadr": "2001:db8::11", "srchost": '"ntpsec.nts.test"', "hmode": "3", "stratum": "6",
              "hpoll": "3", "reach": "0", "rec": "00000000.00000000", "offset": "0.0", "keyid": "0",
              "ntscookies": "0"}
    records = daemon_status.ntpsec_client_sources(associations, [*variables, second], now=REC_CHRONY + 2)
    assert records[0] == {
        "name": "chrony.nts.test", "address": "2001:db8::10", "mode": "server", "selected": True,
        "state": "sys.peer", "stratum": 3, "poll": 3, "reach": 0o77, "last_rx": pytest.approx(2.0),
        "offset": pytest.approx(0.000040341), "nts": True, "cookies": 8, "naks": None,
    }
    assert (records[1]["name"], records[1]["selected"], records[1]["reach"], records[1]["last_rx"]) == (
        "ntpsec.nts.test", False, 0, None)


def test_ntpsec_symmetric_key_is_not_nts() -> None:
    associations = [{"assid": "1", "auth": "ok", "condition": "sys.peer"}]
    [record] = daemon_status.ntpsec_client_sources(associations, [{"srcadr": "192.0.2.1", "keyid": "7"}], now=0)
    assert (record["nts"], record["cookies"], record["name"]) == (False, None, "192.0.2.1")


# chronyc -c -n ntpdata of a chrony 4.3 client, and the 4.4+ form with its four timestamping counts.
NTPDATA_43 = (
    "203.0.113.202,CB0071CA,123,203.0.113.212,CB0071D4,Normal,4,Server,10,2,4,-25,0.000000030,0.000000,"
    "0.000000,7F7F0101,,1796353922.745614706,0.000005478,0.000052271,0.000000059,0.000090407,0.00,111,111,"
    "1111,No,Yes,Kernel,Kernel,12,11,10,9"
)


def test_chronyc_ntpdata_reads_43_and_46_rows_from_the_start_and_skips_other_lines() -> None:
    source = "^,*,203.0.113.202,10,2,377,1,0.000004,0.000004,0.000052"
    text = f"{NTPDATA_43}\n{NTPDATA_43},12,11,0,0\n{source}\n506 Cannot talk\n"
    rows = daemon_status.chronyc_ntpdata(text)
    assert len(rows) == 2
    for row in rows:
        assert (row["remote_address"], row["authenticated"], row["total_tx"], row["total_valid_rx"],
                row["total_good_rx"]) == ("203.0.113.202", "Yes", "12", "10", "9")
    assert "total_kernel_tx" not in rows[0] and rows[1]["total_kernel_tx"] == "12"
