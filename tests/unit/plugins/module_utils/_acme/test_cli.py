"""ntsops-acme issue and renew with a canned certbot: arguments, margin, one failure line, state."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._acme import cli, state

NAME = "time.example.net"
SECRET = "c2VjcmV0LXRoYXQtaXMtd3Jvbmctc2VjcmV0LXdyb25nIQ=="
RENEWAL_CONF = "# renew_before_expiry = 30 days\nversion = 2.1.0\n\n[renewalparams]\nauthenticator = dns-rfc2136\n"


class FakeCertbot:
    """Writes a lineage as certbot would (a new certificate each run) or fails with canned output."""

    def __init__(self, config_dir: Path, pki: Any, output: str = "", code: int = 0) -> None:
        self.config_dir, self.pki, self.output, self.code = config_dir, pki, output, code
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], timeout: float) -> tuple[int, str]:
        self.calls.append(list(argv))
        if self.code:
            return self.code, self.output
        if "renew" in argv and "--force-renewal" not in argv:
            return 0, "Certificate not yet due for renewal"
        issued = self.pki.issue(dns=[NAME])
        live = self.config_dir / "live" / NAME
        live.mkdir(parents=True, exist_ok=True)
        (live / "cert.pem").write_bytes(issued.cert_path.read_bytes())
        renewal = self.config_dir / "renewal" / f"{NAME}.conf"
        renewal.parent.mkdir(exist_ok=True)
        if not renewal.exists():
            renewal.write_text(RENEWAL_CONF)
        return 0, "Successfully received certificate."


def _args(tmp_path: Path, *argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    credentials = tmp_path / "rfc2136.ini"
    credentials.write_text(f"dns_rfc2136_name = k\ndns_rfc2136_secret = {SECRET}\n")
    return parser.parse_args([argv[0], "--cert-name", NAME, "--config-dir", str(tmp_path / "le"),
                              "--state-dir", str(tmp_path / "state"), "--credentials", str(credentials),
                              *argv[1:]])


def _state(tmp_path: Path) -> dict[str, Any]:
    return state.load(state.path_for(str(tmp_path / "state"), NAME))


def test_issue_runs_certonly_sets_the_margin_and_is_idempotent(tmp_path: Path, pki: Any,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    certbot = FakeCertbot(tmp_path / "le", pki)
    assert cli.run(_args(tmp_path, "issue", "-d", NAME, "--", "--server", "https://acme.test/dir"), certbot) == 0
    argv = certbot.calls[0]
    assert argv[:2] == ["certbot", "--non-interactive"] and "certonly" in argv
    assert argv[argv.index("--authenticator") + 1] == "dns-rfc2136" and argv[-2:] == ["--server", "https://acme.test/dir"]
    printed = json.loads(capsys.readouterr().out)
    assert printed["changed"] is True
    conf = (tmp_path / "le" / "renewal" / f"{NAME}.conf").read_text()
    assert f"renew_before_expiry = {printed['renew_before_expiry_seconds']} seconds" in conf
    assert printed["renew_before_expiry_seconds"] == int(printed["lifetime_seconds"] / 3)
    assert cli.run(_args(tmp_path, "issue", "-d", NAME), certbot) == 0
    assert len(certbot.calls) == 1 and json.loads(capsys.readouterr().out)["changed"] is False


def test_failed_issue_is_one_redacted_line_and_recorded(tmp_path: Path, pki: Any,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    certbot = FakeCertbot(tmp_path / "le", pki, code=1,
                          output=f"Error with {SECRET}\nReceived response from server: REFUSED\n")
    assert cli.run(_args(tmp_path, "issue", "-d", NAME), certbot) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and SECRET not in err
    assert err.startswith(f"ntsops-acme: issue of {NAME} failed: the DNS server refused the TXT update")
    assert _state(tmp_path)["last_run"]["reason"] == "update_refused"


def test_problem_only_in_certbots_log_of_this_run_is_the_cause(
    tmp_path: Path, pki: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / cli.CERTBOT_LOG
    hidden = "acme.messages.Error: urn:ietf:params:acme:error:rateLimited :: too many new orders recently\n"

    def certbot(argv: Sequence[str], timeout: float) -> tuple[int, str]:
        log.write_text(hidden + "AttributeError: can't set attribute\n")
        return 1, "An unexpected error occurred:\nAttributeError: can't set attribute\n"

    assert cli.run(_args(tmp_path, "issue", "-d", NAME, "--logs-dir", str(logs)), certbot) == 1
    assert "the CA refused the order for its rate limit" in capsys.readouterr().err
    assert _state(tmp_path)["last_run"]["reason"] == "rate_limited"

    # A log certbot did not write in this run (it failed before logging) is an earlier run's.
    def certbot_without_log(argv: Sequence[str], timeout: float) -> tuple[int, str]:
        os.utime(log, (1_000_000_000, 1_000_000_000))
        return 1, "Another instance of Certbot is already running.\n"

    assert cli.run(_args(tmp_path, "issue", "-d", NAME, "--logs-dir", str(logs)), certbot_without_log) == 1
    assert "Another instance of Certbot is already running" in capsys.readouterr().err
    assert _state(tmp_path)["last_run"]["reason"] == "certbot_failed"


def _with_failing_hook(certbot: FakeCertbot, tmp_path: Path, step: str) -> cli.Runner:
    """certbot that succeeds while its deploy hook fails at ``step`` (as the hook records it)."""
    path = state.path_for(str(tmp_path / "state"), NAME)

    def run(argv: Sequence[str], timeout: float) -> tuple[int, str]:
        code, out = certbot(argv, timeout)
        live_sha = cli._live_sha256(str(tmp_path / "le"), NAME)
        state.save(path, {**state.load(path), "last_deploy": {"ok": False, "step": step, "time": 1.0,
                                                              "message": "boom", "new_sha256": live_sha}})
        return code, out

    return run


def test_forced_issue_whose_deploy_hook_failed_exits_non_zero(
    tmp_path: Path, pki: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    certbot = FakeCertbot(tmp_path / "le", pki)
    cli.run(_args(tmp_path, "issue", "-d", NAME), certbot)
    capsys.readouterr()
    failing = _with_failing_hook(certbot, tmp_path, "check")
    assert cli.run(_args(tmp_path, "issue", "--force", "-d", NAME), failing) == 1
    assert capsys.readouterr().err.startswith(f"ntsops-acme: deploy of {NAME} failed: check: boom")


def test_renew_not_due_and_forced(tmp_path: Path, pki: Any, capsys: pytest.CaptureFixture[str]) -> None:
    certbot = FakeCertbot(tmp_path / "le", pki)
    cli.run(_args(tmp_path, "issue", "-d", NAME), certbot)
    assert cli.run(_args(tmp_path, "renew"), certbot) == 0
    assert "not due for renewal" in capsys.readouterr().out
    assert cli.run(_args(tmp_path, "renew", "--force"), certbot) == 0
    assert "renewed" in capsys.readouterr().out and "--force-renewal" in certbot.calls[-1]
    # No second random wait on top of the timer's: certbot's own would add up to 480 s.
    assert all("--no-random-sleep-on-renew" in argv for argv in certbot.calls if "renew" in argv)


def test_renew_whose_deploy_hook_failed_exits_non_zero_and_retries_the_hook_next_time(
    tmp_path: Path, pki: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    certbot = FakeCertbot(tmp_path / "le", pki)
    cli.run(_args(tmp_path, "issue", "-d", NAME), certbot)
    path = state.path_for(str(tmp_path / "state"), NAME)
    assert cli.run(_args(tmp_path, "renew", "--force"), _with_failing_hook(certbot, tmp_path, "restart")) == 1
    assert capsys.readouterr().err.startswith(f"ntsops-acme: deploy of {NAME} failed: restart: boom")
    # Next run: certbot has nothing to renew, but the lineage's certificate was never deployed.
    hooks = tmp_path / "le" / "renewal-hooks" / "deploy"
    hooks.mkdir(parents=True)
    hook = hooks / "ntsops-nts.sh"
    hook.write_text("#!/bin/sh\n")
    os.chmod(hook, 0o700)
    ran: list[list[str]] = []

    def runner(argv: Sequence[str], timeout: float) -> tuple[int, str]:
        if argv[0] == str(hook):
            ran.append(list(argv))
            assert os.environ["RENEWED_LINEAGE"] == str(tmp_path / "le" / "live" / NAME)
            state.save(path, {**state.load(path), "last_deploy": {"ok": True, "time": 2.0}})
            return 0, ""
        return certbot(argv, timeout)

    assert cli.run(_args(tmp_path, "renew"), runner) == 0
    assert ran == [[str(hook)]] and "deploy of the renewed certificate retried" in capsys.readouterr().out
    assert "RENEWED_LINEAGE" not in os.environ


def test_credentials_secret_is_read_only_to_redact(tmp_path: Path) -> None:
    path = tmp_path / "c.ini"
    path.write_text(f"# comment\ndns_rfc2136_secret = {SECRET}\n")
    assert cli.credential_secrets(str(path)) == [SECRET]
    assert cli.credential_secrets(str(tmp_path / "absent")) == []
