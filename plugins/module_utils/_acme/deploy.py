# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hand a renewed certificate to the NTS daemon, prove it is served, or put the old one back.

The steps, each named in a failure: ``check`` the new chain and key (key matches,
every name covered, valid now, usable for TLS servers; nothing is touched when
they fail), ``install`` them where the daemon reads them (atomic rename), make the
daemon load them (``restart`` for chronyd and ntp-daemon, which read their
certificate only at start and keep their cookie keys across it in ntsdumpdir and
key-storage-path; ``reload`` for NTPsec's ntpd, which rereads certificate and key
on SIGHUP), and ``verify`` that the NTS-KE port now serves the new leaf. After a
failed install, restart or verify the previous files are put back and the daemon
made to load them again, so the previous certificate stays served; the result
says whether that worked.

All I/O goes through :class:`HostOps`, so the decisions are unit-tested with a
fake host; :class:`SystemOps` is the real one.
"""

from __future__ import annotations

import dataclasses
import datetime
import grp
import os
import pwd
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ansible_collections.ntsops.nts.plugins.module_utils._check import cert_files, cert_info
from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError

# How each daemon loads a new certificate (see the module docstring).
APPLY_ACTION = {"chrony": "restart", "ntpd-rs": "restart", "ntpsec": "reload"}
# Seconds a restarted daemon gets to serve on its NTS-KE port again.
DEFAULT_VERIFY_TIMEOUT = 20.0
RETRY_INTERVAL = 0.5


class DeployError(NtsopsError):
    """The deploy could not start (bad options)."""


class StepError(NtsopsError):
    """One deploy step failed; ``reason`` is a fixed code for metrics and alerts."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class FileSpec:
    path: str
    owner: str
    group: str
    mode: int


@dataclasses.dataclass(frozen=True)
class DeployTarget:
    new_cert: str  # the lineage's fullchain.pem
    new_key: str  # the lineage's privkey.pem
    cert: FileSpec  # where the daemon reads its chain
    key: FileSpec
    names: tuple[str, ...]
    implementation: str
    service: str
    served: str  # host:port of the local NTS-KE listener
    server_name: str | None = None
    apply_command: tuple[str, ...] | None = None  # replaces systemctl (daemons not run by systemd)
    verify_timeout: float = DEFAULT_VERIFY_TIMEOUT
    connect_timeout: float = 5.0

    def validate(self) -> None:
        if self.implementation not in APPLY_ACTION:
            raise DeployError(
                f"implementation must be one of {', '.join(sorted(APPLY_ACTION))}, got {self.implementation!r}"
            )
        if not self.names:
            raise DeployError("at least one name the certificate must cover is needed")
        if self.verify_timeout <= 0 or self.connect_timeout <= 0:
            raise DeployError("timeouts must be positive")
        cert_files.parse_served(self.served)

    @property
    def action(self) -> str:
        return APPLY_ACTION[self.implementation]


@dataclasses.dataclass
class DeployResult:
    ok: bool
    step: str | None = None
    reason: str | None = None
    message: str = ""
    new_sha256: str | None = None
    previous_sha256: str | None = None
    served_sha256: str | None = None
    previous_served_again: bool | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class HostOps(Protocol):
    """The host a deploy acts on: files, commands, the NTS-KE port, time."""

    def read(self, path: str) -> bytes | None:
        """What SystemOps does on the real host."""

    def install(self, data: bytes, spec: FileSpec) -> None:
        """What SystemOps does on the real host."""

    def run(self, argv: Sequence[str], timeout: float) -> tuple[int, str]:
        """What SystemOps does on the real host."""

    def served_sha256(self, served: str, server_name: str | None, timeout: float) -> str:
        """What SystemOps does on the real host."""

    def now(self) -> datetime.datetime:
        """What SystemOps does on the real host."""

    def monotonic(self) -> float:
        """What SystemOps does on the real host."""

    def sleep(self, seconds: float) -> None:
        """What SystemOps does on the real host."""


def apply_argv(target: DeployTarget) -> list[str]:
    """The command that makes the daemon load its certificate files."""
    if target.apply_command:
        return list(target.apply_command)
    if target.action == "restart":
        return ["systemctl", "restart", target.service]
    # ntpsec.service has no ExecReload, so the signal goes to the main process directly.
    return ["systemctl", "kill", "--kill-who=main", "--signal=SIGHUP", target.service]


def check_new(target: DeployTarget, now: datetime.datetime) -> tuple[bytes, bytes, str]:
    """The new chain's and key's bytes and the leaf's fingerprint, or StepError('check')."""
    try:
        chain = cert_files.load_certificates(target.new_cert)
        key = cert_files.load_private_key(target.new_key)
    except NtsopsError as exc:
        raise StepError("unreadable", str(exc)) from None
    leaf = chain[0]
    if not cert_files.key_matches(leaf, key):
        raise StepError("key_mismatch", f"key {target.new_key} does not match the certificate in {target.new_cert}")
    for name in target.names:
        mismatch = cert_info.name_mismatch(leaf, name)
        if mismatch:
            raise StepError("wrong_name", f"{target.new_cert}: {mismatch}")
    problems = cert_info.validity_problems(leaf, now, 0) + cert_info.usage_problems(leaf)
    if problems:
        raise StepError("invalid_certificate", f"{target.new_cert}: {'; '.join(problems)}")
    with open(target.new_cert, "rb") as cert_handle, open(target.new_key, "rb") as key_handle:
        return cert_handle.read(), key_handle.read(), cert_info.sha256_fingerprint(leaf)


def _apply(target: DeployTarget, ops: HostOps) -> None:
    argv = apply_argv(target)
    try:
        code, output = ops.run(argv, 60.0)
    except (OSError, subprocess.SubprocessError) as exc:
        raise StepError(f"{target.action}_failed", f"{' '.join(argv)} could not run: {exc}") from None
    if code != 0:
        detail = output.strip().splitlines()[-1] if output.strip() else "no output"
        raise StepError(f"{target.action}_failed", f"{' '.join(argv)} exited with status {code}: {detail}")


def _wait_served(target: DeployTarget, ops: HostOps, want: str) -> str:
    """Poll the NTS-KE port until it serves ``want``; StepError('verify') at the deadline."""
    deadline = ops.monotonic() + target.verify_timeout
    served: str | None = None
    error = "nothing fetched"
    while True:
        try:
            served = ops.served_sha256(target.served, target.server_name or target.names[0], target.connect_timeout)
        except NtsopsError as exc:
            served, error = None, str(exc)
        if served == want:
            return served
        if ops.monotonic() >= deadline:
            break
        ops.sleep(RETRY_INTERVAL)
    if served is None:
        raise StepError(
            "not_serving", f"{target.served} serves no certificate after {target.verify_timeout:g} s: {error}"
        )
    raise StepError(
        "served_mismatch",
        f"{target.served} serves sha256 {served} after {target.verify_timeout:g} s, expected {want}",
    )


def _restore(target: DeployTarget, ops: HostOps, old_cert: bytes, old_key: bytes, old_sha: str | None) -> bool:
    """Put the previous files back and make the daemon serve them; True when it does."""
    try:
        ops.install(old_key, target.key)
        ops.install(old_cert, target.cert)
        _apply(target, ops)
        if old_sha is not None:
            _wait_served(target, ops, old_sha)
    except (NtsopsError, OSError):
        return False
    return True


def _fingerprint_of(data: bytes | None) -> str | None:
    if not data:
        return None
    try:
        return cert_info.sha256_fingerprint(cert_files._load_pem_certificates(data)[0])
    except (ValueError, IndexError):
        return None


def deploy(target: DeployTarget, ops: HostOps) -> DeployResult:
    """Run every step; the result says which failed, why, and what is served now."""
    target.validate()
    started = ops.monotonic()
    result = DeployResult(ok=False)
    step = "check"
    try:
        new_cert, new_key, result.new_sha256 = check_new(target, ops.now())
    except StepError as exc:
        result.step, result.reason = step, exc.reason
        result.message = f"{exc}; nothing was changed"
        result.seconds = ops.monotonic() - started
        return result
    old_cert, old_key = ops.read(target.cert.path), ops.read(target.key.path)
    result.previous_sha256 = _fingerprint_of(old_cert)
    try:
        step = "install"
        try:
            # Key first: a daemon that starts in between fails on a mismatch rather than serving an old key.
            ops.install(new_key, target.key)
            ops.install(new_cert, target.cert)
        except OSError as exc:
            raise StepError("install_failed", f"cannot write {exc.filename or 'a file'}: {exc.strerror}") from None
        step = target.action
        _apply(target, ops)
        step = "verify"
        result.served_sha256 = _wait_served(target, ops, result.new_sha256)
    except StepError as exc:
        result.step, result.reason = step, exc.reason
        if old_cert is not None and old_key is not None:
            result.previous_served_again = _restore(target, ops, old_cert, old_key, result.previous_sha256)
            after = (
                "the previous certificate is served again"
                if result.previous_served_again
                else "the previous files are back but the daemon does not serve them"
            )
        else:
            after = "there was no previous certificate to put back"
        result.message = f"{exc}; {after}"
        result.seconds = ops.monotonic() - started
        return result
    result.ok = True
    result.message = f"{target.served} serves the new certificate sha256 {result.new_sha256}"
    result.seconds = ops.monotonic() - started
    return result


class SystemOps:
    """The real host: files, subprocesses and the NTS-KE port."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        self._sleep = sleep

    def read(self, path: str) -> bytes | None:
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    def install(self, data: bytes, spec: FileSpec) -> None:
        uid = pwd.getpwnam(spec.owner).pw_uid
        gid = grp.getgrnam(spec.group).gr_gid
        directory = os.path.dirname(spec.path) or "."
        fd, temporary = tempfile.mkstemp(prefix=".ntsops-", dir=directory)
        try:
            os.fchmod(fd, spec.mode)
            os.fchown(fd, uid, gid)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.rename(temporary, spec.path)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise

    def run(self, argv: Sequence[str], timeout: float) -> tuple[int, str]:
        completed = subprocess.run(  # noqa: S603 - argv built by apply_argv from the hook's options
            list(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
        return completed.returncode, completed.stdout + completed.stderr

    def served_sha256(self, served: str, server_name: str | None, timeout: float) -> str:
        return cert_info.sha256_fingerprint(cert_files.fetch_served_certificate(served, server_name, timeout))

    def now(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        self._sleep(seconds)
