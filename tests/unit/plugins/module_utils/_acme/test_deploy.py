"""The deploy step's decisions on a fake host: what is installed, restarted, checked and put back."""

from __future__ import annotations

import dataclasses
import datetime
import grp
import os
import pwd
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._acme import deploy
from ansible_collections.ntsops.nts.plugins.module_utils._check import cert_files, cert_info
from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError

NAME = "time.example.net"


class FakeHost:
    """Files in a dict; the 'daemon' serves whatever certificate file it loaded at its last apply."""

    def __init__(self, files: dict[str, bytes], *, apply_codes: Sequence[int] = (0,), serve_after_apply: bool = True,
                 served_override: str | None = None) -> None:
        self.files = dict(files)
        self.apply_codes = list(apply_codes)
        self.serve_after_apply = serve_after_apply
        self.served_override = served_override
        self.loaded: bytes | None = files.get("/etc/chrony/nts/server.crt")
        self.commands: list[list[str]] = []
        self.installs: list[str] = []
        self.clock = 0.0

    def read(self, path: str) -> bytes | None:
        return self.files.get(path)

    def install(self, data: bytes, spec: deploy.FileSpec) -> None:
        self.installs.append(spec.path)
        self.files[spec.path] = data

    def run(self, argv: Sequence[str], timeout: float) -> tuple[int, str]:
        self.commands.append(list(argv))
        code = self.apply_codes.pop(0) if len(self.apply_codes) > 1 else self.apply_codes[0]
        if code == 0 and self.serve_after_apply:
            self.loaded = self.files.get("/etc/chrony/nts/server.crt")
        elif code != 0:
            self.loaded = None  # a failed restart leaves nothing listening
        return code, "" if code == 0 else "Job for chrony.service failed.\n"

    def served_sha256(self, served: str, server_name: str | None, timeout: float) -> str:
        if self.served_override is not None:
            return self.served_override
        if self.loaded is None:
            raise NtsopsError("connection refused")
        return cert_info.sha256_fingerprint(cert_files._load_pem_certificates(self.loaded)[0])

    def now(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC)

    def monotonic(self) -> float:
        return self.clock

    def sleep(self, seconds: float) -> None:
        self.clock += seconds


def _target(new: Any, implementation: str = "chrony", **kw: Any) -> deploy.DeployTarget:
    return deploy.DeployTarget(
        new_cert=str(new.chain_path), new_key=str(new.key_path),
        cert=deploy.FileSpec("/etc/chrony/nts/server.crt", "root", "root", 0o644),
        key=deploy.FileSpec("/etc/chrony/nts/server.key", "root", "_chrony", 0o640),
        names=(NAME,), implementation=implementation, service=implementation,
        served="127.0.0.1:4460", verify_timeout=3.0, **kw,
    )


@pytest.fixture
def old_and_new(pki: Any) -> tuple[Any, Any, dict[str, bytes]]:
    old = pki.issue(dns=[NAME])
    new = pki.issue(dns=[NAME])
    files = {"/etc/chrony/nts/server.crt": old.chain_path.read_bytes(),
             "/etc/chrony/nts/server.key": old.key_path.read_bytes()}
    return old, new, files


def sha(issued: Any) -> str:
    return cert_info.sha256_fingerprint(issued.cert)


@pytest.mark.parametrize(("implementation", "argv"), [
    ("chrony", ["systemctl", "restart", "chrony"]),
    ("ntpd-rs", ["systemctl", "restart", "ntpd-rs"]),
    ("ntpsec", ["systemctl", "kill", "--kill-who=main", "--signal=SIGHUP", "ntpsec"]),
])
def test_success_installs_key_then_cert_applies_once_and_proves_the_served_certificate(
    old_and_new: tuple[Any, Any, dict[str, bytes]], implementation: str, argv: list[str]
) -> None:
    _old, new, files = old_and_new
    host = FakeHost(files)
    result = deploy.deploy(_target(new, implementation), host)
    assert result.ok, result.message
    assert host.commands == [argv]
    assert host.installs == ["/etc/chrony/nts/server.key", "/etc/chrony/nts/server.crt"]
    assert result.served_sha256 == result.new_sha256 == sha(new)


def test_wrong_name_changes_nothing(pki: Any, old_and_new: tuple[Any, Any, dict[str, bytes]]) -> None:
    _old, _new, files = old_and_new
    wrong = pki.issue(dns=["other.example.net"])
    host = FakeHost(files)
    result = deploy.deploy(_target(wrong), host)
    assert not result.ok and (result.step, result.reason) == ("check", "wrong_name")
    assert "nothing was changed" in result.message and "other.example.net" in result.message
    assert host.installs == [] and host.commands == []


def test_key_that_does_not_match_changes_nothing(old_and_new: tuple[Any, Any, dict[str, bytes]]) -> None:
    old, new, files = old_and_new
    mixed = type(new)(new.cert, new.key, new.cert_path, new.chain_path, old.key_path)
    host = FakeHost(files)
    result = deploy.deploy(_target(mixed), host)
    assert (result.step, result.reason) == ("check", "key_mismatch") and host.installs == []


def test_expired_certificate_changes_nothing(pki: Any, certs: Any,
                                             old_and_new: tuple[Any, Any, dict[str, bytes]]) -> None:
    _old, _new, files = old_and_new
    now = certs.utcnow()
    expired = pki.issue(dns=[NAME], not_before=now - datetime.timedelta(days=10),
                        not_after=now - datetime.timedelta(days=1))
    result = deploy.deploy(_target(expired), FakeHost(files))
    assert (result.step, result.reason) == ("check", "invalid_certificate") and "expired" in result.message


def test_failed_restart_puts_the_old_files_back_and_serves_them(
    old_and_new: tuple[Any, Any, dict[str, bytes]]
) -> None:
    old, new, files = old_and_new
    host = FakeHost(files, apply_codes=[1, 0])
    result = deploy.deploy(_target(new), host)
    assert not result.ok and (result.step, result.reason) == ("restart", "restart_failed")
    assert "exited with status 1: Job for chrony.service failed." in result.message
    assert result.previous_served_again is True and "previous certificate is served again" in result.message
    assert host.files == files  # the previous chain and key are back
    assert host.served_sha256("", None, 1) == sha(old)
    assert len(host.commands) == 2


def test_restart_that_keeps_failing_says_so(old_and_new: tuple[Any, Any, dict[str, bytes]]) -> None:
    _old, new, files = old_and_new
    result = deploy.deploy(_target(new), FakeHost(files, apply_codes=[1]))
    assert result.previous_served_again is False
    assert "the daemon does not serve them" in result.message


def test_daemon_that_keeps_serving_something_else_is_a_mismatch_within_the_deadline(
    old_and_new: tuple[Any, Any, dict[str, bytes]]
) -> None:
    _old, new, files = old_and_new
    host = FakeHost(files, served_override="AA:BB")
    result = deploy.deploy(_target(new), host)
    assert (result.step, result.reason) == ("verify", "served_mismatch")
    assert "serves sha256 AA:BB after 3 s" in result.message
    assert host.clock <= 3.0 + 3.0 + 2 * deploy.RETRY_INTERVAL  # bounded: verify, then the restore's verify
    assert result.previous_served_again is False  # the override serves neither


def test_first_deploy_has_nothing_to_put_back(old_and_new: tuple[Any, Any, dict[str, bytes]]) -> None:
    _old, new, _files = old_and_new
    result = deploy.deploy(_target(new), FakeHost({}, apply_codes=[1]))
    assert result.previous_served_again is None and "no previous certificate" in result.message


def test_apply_command_replaces_systemctl(old_and_new: tuple[Any, Any, dict[str, bytes]]) -> None:
    _old, new, files = old_and_new
    host = FakeHost(files)
    assert deploy.deploy(_target(new, apply_command=("kill", "-HUP", "42")), host).ok
    assert host.commands == [["kill", "-HUP", "42"]]


@pytest.mark.parametrize(("change", "message"), [
    ({"implementation": "openntpd"}, "implementation must be one of"),
    ({"names": ()}, "at least one name"),
    ({"verify_timeout": 0}, "timeouts must be positive"),
    ({"served": "[::1"}, "served must be host or host:port"),
])
def test_bad_options_are_refused_before_anything_happens(
    old_and_new: tuple[Any, Any, dict[str, bytes]], change: dict[str, Any], message: str
) -> None:
    _old, new, files = old_and_new
    target = _target(new)
    host = FakeHost(files)
    with pytest.raises(NtsopsError, match=message.replace("[", r"\[")):
        deploy.deploy(dataclasses.replace(target, **change), host)
    assert host.installs == []


def test_system_ops_install_is_atomic_with_mode(tmp_path: Path) -> None:
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    path = tmp_path / "server.key"
    path.write_bytes(b"old")
    deploy.SystemOps().install(b"new", deploy.FileSpec(str(path), user, group, 0o640))
    assert path.read_bytes() == b"new" and (path.stat().st_mode & 0o777) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["server.key"]
