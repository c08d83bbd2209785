"""cookie_check through Ansible against real chronyd and NTPsec ntpd: a cookie saved
before a restart is accepted after it when the server kept its cookie keys (chrony's
ntsdumpdir, NTPsec's `nts cookie` file) and gets an NTS NAK when they were lost."""

from __future__ import annotations

import json
import stat

import pytest
from ansible_adhoc import run_module
from harness.lab import LAB_DOMAIN

pytestmark = pytest.mark.integration


def _cookie_check(lab, name, step, state_file, **extra):
    args = {"name": name, "step": step, "state_file": str(state_file), "ca_path": str(lab.ca_path), **extra}
    return run_module("cookie_check", args, prefix=lab.client_host.exec_argv([]))


def _save(lab, name, state_file):
    run = _cookie_check(lab, name, "save", state_file)
    assert not run.failed, run.result.get("msg")
    assert run.result["changed"] is True
    assert sorted(run.result["saved"]) == sorted(lab_addresses(lab, name))
    # The file holds session keys and cookies: owner-only, and nothing secret returned.
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    saved = json.loads(state_file.read_text())
    cookies = [entry["cookie"] for entry in saved["entries"]]
    assert all(cookie not in json.dumps(run.result) for cookie in cookies)


def lab_addresses(lab, name):
    host = lab.chrony_host if name.startswith("chrony.") else lab.ntpsec_host
    return [address.split("/")[0] for address in host.addresses]


def test_chrony_keeps_cookies_across_a_restart_with_its_dump_and_not_without(nts_lab, tmp_path):
    name = f"chrony.{LAB_DOMAIN}"
    state_file = tmp_path / "cookies.json"
    _save(nts_lab, name, state_file)
    nts_lab.chrony.restart()
    run = _cookie_check(nts_lab, name, "verify", state_file)
    assert not run.failed, run.result.get("msg")
    assert [entry["accepted"] for entry in run.result["addresses"]] == [True, True]
    # The same cookie may be verified again: servers decrypt cookies statelessly.
    again = _cookie_check(nts_lab, name, "verify", state_file)
    assert not again.failed, again.result.get("msg")
    # Without the dumped keys every old cookie is answered with a NAK.
    nts_lab.chrony.restart(drop_keys=True)
    lost = _cookie_check(nts_lab, name, "verify", state_file)
    assert lost.failed
    assert [entry["nak"] for entry in lost.result["addresses"]] == [True, True]
    assert all("NTS NAK" in problem for problem in lost.result["problems"])
    assert "lost its cookie keys" in lost.result["msg"]


def test_ntpsec_keeps_cookies_across_a_restart_with_its_key_file(nts_lab, tmp_path):
    name = f"ntpsec.{LAB_DOMAIN}"
    state_file = tmp_path / "cookies.json"
    _save(nts_lab, name, state_file)
    nts_lab.ntpsec.restart()
    run = _cookie_check(nts_lab, name, "verify", state_file)
    assert not run.failed, run.result.get("msg")
    assert all(entry["accepted"] for entry in run.result["addresses"])


def test_check_mode_save_writes_nothing(nts_lab, tmp_path):
    state_file = tmp_path / "cookies.json"
    args = {"name": f"chrony.{LAB_DOMAIN}", "step": "save", "state_file": str(state_file),
            "ca_path": str(nts_lab.ca_path)}
    run = run_module("cookie_check", args, prefix=nts_lab.client_host.exec_argv([]), check_mode=True)
    assert not run.failed, run.result.get("msg")
    assert run.result["changed"] is True
    assert not state_file.exists()


def test_bad_state_file_is_a_clear_error(nts_lab, tmp_path):
    state_file = tmp_path / "cookies.json"
    state_file.write_text("{not json")
    run = _cookie_check(nts_lab, f"chrony.{LAB_DOMAIN}", "verify", state_file)
    assert run.failed
    assert "not JSON" in run.result["msg"]
    missing = _cookie_check(nts_lab, f"chrony.{LAB_DOMAIN}", "verify", tmp_path / "absent.json")
    assert missing.failed
    assert "cannot read the cookie state" in missing.result["msg"]
