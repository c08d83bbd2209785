"""endpoint_check and cert_check through Ansible, against real chronyd and NTPsec ntpd
and against scripted hostile peers (tests/integration/harness)."""

from __future__ import annotations

import pytest
from ansible_adhoc import run_module
from harness.lab import LAB_DOMAIN
from hostile_cases import EXPECTED_PROBLEM

pytestmark = pytest.mark.integration

# The module is given this per-step timeout against hostile peers; the whole run
# (ansible start-up included) must end well within a few of them.
HOSTILE_TIMEOUT = 2.0
ANSIBLE_OVERHEAD = 15.0


def _endpoint(lab, name, **extra):
    args = {"name": name, "ca_path": str(lab.ca_path), **extra}
    return run_module("endpoint_check", args, prefix=lab.client_host.exec_argv([]))


@pytest.mark.parametrize("server", ["chrony", "ntpsec"])
def test_real_server_gives_eight_cookies_and_authenticated_time(nts_lab, server):
    run = _endpoint(nts_lab, f"{server}.{LAB_DOMAIN}")
    assert not run.failed, run.result.get("msg")
    result = run.result
    assert result["ok"] is True
    assert result["changed"] is False
    # Every A and AAAA address, in resolver order.
    assert sorted(entry["address"] for entry in result["addresses"]) == (
        ["198.51.100.10", "2001:db8::10"] if server == "chrony" else ["198.51.100.11", "2001:db8::11"]
    )
    for entry in result["addresses"]:
        assert entry["tls"]["version"] == "TLSv1.3"
        assert entry["tls"]["alpn"] == "ntske/1"
        assert entry["cert"]["sans"][0] == f"DNS:{server}.{LAB_DOMAIN}"
        assert entry["ke"]["cookies"] == 8
        assert entry["ke"]["aead"] == 15
        assert entry["ntp"]["authenticated"] is True
        assert entry["ntp"]["nak"] is False
        assert entry["ntp"]["cookies"] >= 1
        assert abs(entry["ntp"]["offset"]) < 1.0


def test_check_mode_is_supported_and_changes_nothing(nts_lab):
    args = {"name": f"chrony.{LAB_DOMAIN}", "ca_path": str(nts_lab.ca_path), "ntp_exchange": False}
    run = run_module("endpoint_check", args, prefix=nts_lab.client_host.exec_argv([]), check_mode=True)
    assert not run.failed, run.result.get("msg")
    assert run.result["changed"] is False
    assert all(entry["ntp"] is None for entry in run.result["addresses"])


def test_name_with_one_dead_address_is_reported_for_that_address_only(nts_lab):
    run = _endpoint(nts_lab, f"half-dead.{LAB_DOMAIN}", timeout=2)
    assert run.failed
    by_address = {entry["address"]: entry for entry in run.result["addresses"]}
    assert by_address["198.51.100.10"]["ok"] is True
    assert by_address[nts_lab.dead_address]["ok"] is False
    assert run.result["problems"]
    assert all(problem.startswith(f"{nts_lab.dead_address}: ") for problem in run.result["problems"])
    assert nts_lab.dead_address in run.result["msg"]


def test_explicit_addresses_replace_resolution(nts_lab):
    run = _endpoint(nts_lab, f"chrony.{LAB_DOMAIN}", addresses=["2001:db8::10"])
    assert not run.failed, run.result.get("msg")
    assert [entry["address"] for entry in run.result["addresses"]] == ["2001:db8::10"]


def test_records_equal_the_servers_addresses_given(nts_lab):
    name = f"chrony.{LAB_DOMAIN}"
    run = _endpoint(nts_lab, name, ntp_exchange=False, server_addresses=["198.51.100.10", "2001:db8::10"])
    assert not run.failed, run.result.get("msg")
    records = run.result["records"]
    assert (records["ipv4"]["verdict"], records["ipv6"]["verdict"]) == ("match", "match")
    # The server is said to have another IPv6 address: the AAAA record at ::10 is stale.
    moved = _endpoint(nts_lab, name, ntp_exchange=False, server_addresses=["198.51.100.10", "2001:db8::12"])
    assert moved.failed
    assert moved.result["records"]["ipv6"]["stale"] == ["2001:db8::10"]
    assert f"{name}: AAAA 2001:db8::10 published but not an address of the server" in moved.result["msg"]


def test_gathered_on_the_server_a_record_set_without_aaaa_is_flagged(nts_lab):
    # On the chrony host itself, whose name has an A record only although it has IPv6 too.
    name = f"chrony.{LAB_DOMAIN}"
    nts_lab.chrony_host.set_hosts({name: ["198.51.100.10"]})
    args = {
        "name": name,
        "ca_path": str(nts_lab.ca_path),
        "ntp_exchange": False,
        "gather_server_addresses": True,
        "allow_prefixes": ["198.51.100.0/24", "2001:db8::/32"],
    }
    run = run_module("endpoint_check", args, prefix=nts_lab.chrony_host.exec_argv([]))
    assert run.failed
    records = run.result["records"]
    assert records["ipv4"] == {
        "published": ["198.51.100.10"], "server": ["198.51.100.10"], "verdict": "match", "missing": [], "stale": []
    }
    assert records["ipv6"]["verdict"] == "missing"
    assert records["problems"] == [f"{name}: no AAAA record, but the server has ipv6 2001:db8::10"]
    assert [entry["ok"] for entry in run.result["addresses"]] == [True]


def test_cert_check_catches_a_renewal_chronyd_has_not_loaded(daemons, test_ca):
    server = daemons.chrony_server()
    cert = server.cert
    args = {
        "cert_path": str(cert.chain_path),
        "key_path": str(cert.key_path),
        "ca_path": str(test_ca.cert_path),
        "names": ["localhost"],
        "served": f"127.0.0.1:{server.ntsport}",
    }
    first = run_module("cert_check", args)
    assert not first.failed, first.result.get("msg")
    assert first.result["served_matches"] is True

    # Renew in place, as an ACME client does: same paths, new certificate and key.
    renewed = test_ca.issue("renewed", dns=["localhost"], ips=["127.0.0.1", "::1"])
    cert.chain_path.write_bytes(renewed.chain_path.read_bytes())
    cert.key_path.write_bytes(renewed.key_path.read_bytes())
    stale = run_module("cert_check", args)
    assert stale.failed
    assert stale.result["served_matches"] is False
    assert stale.result["cert"]["sha256"] == renewed.sha256
    assert any("serves a different certificate" in p for p in stale.result["problems"])

    server.restart()
    args["served"] = f"127.0.0.1:{server.ntsport}"
    fresh = run_module("cert_check", args)
    assert not fresh.failed, fresh.result.get("msg")
    assert fresh.result["served_matches"] is True


def test_cert_check_reports_bad_files_without_key_material(tmp_path, test_ca):
    good = test_ca.issue("files", dns=["time.nts.test"])
    other = test_ca.issue("other", dns=["time.nts.test"])
    run = run_module("cert_check", {
        "cert_path": str(good.chain_path),
        "key_path": str(other.key_path),
        "ca_path": str(test_ca.cert_path),
        "names": ["time.nts.test", "other.nts.test"],
        "min_days": 400,
    })
    assert run.failed
    problems = "\n".join(run.result["problems"])
    assert "does not match the certificate" in problems
    assert "does not cover other.nts.test" in problems
    assert "minimum 400" in problems
    assert "PRIVATE KEY" not in run.stdout + run.stderr

    missing = run_module("cert_check", {"cert_path": str(tmp_path / "nope.pem"), "key_path": str(good.key_path)})
    assert missing.failed
    assert "cannot read certificate file" in missing.result["msg"]


@pytest.mark.parametrize("behaviour", sorted(EXPECTED_PROBLEM))
def test_hostile_peer_gives_one_clear_problem_within_the_timeout(hostile, test_ca, behaviour):
    peer = hostile(behaviour, port=0)
    # "refuse" binds nothing: its port is free, so the connect is refused.
    port = peer.port
    run = run_module("endpoint_check", {
        "name": "localhost",
        "addresses": ["127.0.0.1"],
        "port": port,
        "ca_path": str(test_ca.cert_path),
        "timeout": HOSTILE_TIMEOUT,
    })
    assert run.failed
    assert "Traceback" not in run.stdout + run.stderr
    assert "MODULE FAILURE" not in run.result.get("msg", "")
    problems = run.result["problems"]
    expected = EXPECTED_PROBLEM[behaviour].format(port=port)
    assert any(expected in problem for problem in problems), problems
    assert all(problem.startswith("127.0.0.1: ") for problem in problems)
    assert run.elapsed < 3 * HOSTILE_TIMEOUT + ANSIBLE_OVERHEAD
