# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``ntsops-acme issue|renew|deploy``: certbot driven for one NTS certificate lineage.

``issue`` obtains the first certificate (``certbot certonly`` with the rfc2136
authenticator) unless the lineage already holds one for the names; ``renew`` is
what the systemd timer runs (``certbot renew --cert-name``); ``deploy`` is the
certbot deploy hook (deploy.py). After a certificate is issued or renewed, the
lineage's ``renew_before_expiry`` is set to a third of that certificate's
lifetime (renewal.py). A failure prints one line naming the step and the cause
to stderr (the journal, under the timer's unit), exits 1 and is recorded in the
lineage's state file for the exporter (state.py); the certificate served stays
the previous one, since nothing is installed before a new one passed every check.

This file is here, not in ntsops_cli, because the ntsops.nts.acme role installs it
with the collection's core on the NTS server (as ddns_agent and exporter do);
``ntsops acme`` calls the same :func:`main`.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._acme import deploy, failures, renewal, state
from ansible_collections.ntsops.nts.plugins.module_utils._check import cert_files, cert_info
from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError

DESCRIPTION = "Issue, renew and deploy an NTS server's certificate with certbot (ACME DNS-01 over RFC 2136)."
DEFAULT_STATE_DIR = "/var/lib/ntsops-acme"
DEFAULT_CONFIG_DIR = "/etc/letsencrypt"
# certbot's own network timeouts are 45 s per request; a whole run that takes this long is stuck.
DEFAULT_CERTBOT_TIMEOUT = 900.0
# certbot's default --logs-dir and the log of its latest run, which it rotates at each
# start (certbot/_internal/constants.py CLI_DEFAULTS, certbot/_internal/log.py).
DEFAULT_LOGS_DIR = "/var/log/letsencrypt"
CERTBOT_LOG = "letsencrypt.log"
# A failed run's cause is near the end of its log; the rest is request bodies and debug.
LOG_TAIL_BYTES = 256 * 1024

Runner = Callable[[Sequence[str], float], tuple[int, str]]


def run_certbot(argv: Sequence[str], timeout: float) -> tuple[int, str]:
    try:
        completed = subprocess.run(  # noqa: S603 - argv built here from the unit's options
            list(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return 124, f"certbot did not finish within {timeout:g} s"
    except OSError as exc:
        return 127, f"cannot run {argv[0]}: {exc.strerror}"
    return completed.returncode, completed.stdout + completed.stderr


def certbot_log_since(logs_dir: str | None, started: float) -> str:
    """The tail of certbot's log when certbot wrote it after ``started``, else ""."""
    path = os.path.join(logs_dir or DEFAULT_LOGS_DIR, CERTBOT_LOG)
    try:
        with open(path, "rb") as handle:
            # A log older than the run is an earlier run's: certbot failed before it logged.
            if os.fstat(handle.fileno()).st_mtime < started - 1:
                return ""
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - LOG_TAIL_BYTES))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def credential_secrets(path: str | None) -> list[str]:
    """The secret of a certbot-dns-rfc2136 credentials file, only to keep it out of any output."""
    if not path:
        return []
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_string("[c]\n" + handle.read())
    except (OSError, configparser.Error, UnicodeDecodeError):
        return []
    secret = parser.get("c", "dns_rfc2136_secret", fallback="").strip()
    return [secret] if secret else []


def _live_cert(config_dir: str, cert_name: str) -> str:
    return os.path.join(config_dir, "live", cert_name, "cert.pem")


def _renewal_conf(config_dir: str, cert_name: str) -> str:
    return os.path.join(config_dir, "renewal", f"{cert_name}.conf")


def set_margin(config_dir: str, cert_name: str) -> dict[str, Any]:
    """Set renew_before_expiry from the lineage's current certificate; the values for the state file."""
    leaf = cert_files.load_certificates(_live_cert(config_dir, cert_name))[0]
    seconds = renewal.margin_seconds(cert_info.not_before(leaf), cert_info.not_after(leaf))
    path = _renewal_conf(config_dir, cert_name)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise renewal.RenewalError(f"cannot read certbot's renewal file {path}: {exc.strerror}") from None
    wanted = renewal.interval_text(seconds)
    if renewal.current_interval(text) != wanted:
        new_text = renewal.with_interval(text, wanted)
        temporary = f"{path}.ntsops"
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(new_text)
        os.chmod(temporary, os.stat(path).st_mode & 0o7777)
        os.rename(temporary, path)
    return {
        "renew_before_expiry_seconds": seconds,
        "not_after": cert_info.not_after(leaf).timestamp(),
        "lifetime_seconds": (cert_info.not_after(leaf) - cert_info.not_before(leaf)).total_seconds(),
        "sha256": cert_info.sha256_fingerprint(leaf),
    }


def _covers(config_dir: str, cert_name: str, names: Sequence[str]) -> bool:
    try:
        leaf = cert_files.load_certificates(_live_cert(config_dir, cert_name))[0]
    except NtsopsError:
        return False
    return all(cert_info.name_mismatch(leaf, name) is None for name in names)


def _record(args: argparse.Namespace, step: str, ok: bool, reason: str | None, message: str,
            *, extra: dict[str, Any] | None = None) -> None:
    path = state.path_for(args.state_dir, args.cert_name)
    try:
        previous = state.load(path)
    except state.StateError:
        previous = {}  # a damaged state file is replaced, not a reason to stop
    state.save(path, state.record_run(previous, cert_name=args.cert_name, step=step, ok=ok, reason=reason,
                                      message=message, when=time.time(), extra=extra))


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _fail(args: argparse.Namespace, step: str, reason: str, cause: str, extra: dict[str, Any] | None = None) -> int:
    line = failures.message(step, args.cert_name, cause)
    sys.stderr.write(line + "\n")
    _record(args, step, False, reason, line, extra=extra)
    return 1


def _certbot_common(args: argparse.Namespace) -> list[str]:
    argv = [args.certbot, "--non-interactive", "--config-dir", args.config_dir]
    if args.work_dir:
        argv += ["--work-dir", args.work_dir]
    if args.logs_dir:
        argv += ["--logs-dir", args.logs_dir]
    return argv


def cmd_issue(args: argparse.Namespace, runner: Runner) -> int:
    names = args.domain
    if not args.force and _covers(args.config_dir, args.cert_name, names):
        _say(json.dumps({"changed": False, "cert_name": args.cert_name,
                         "message": f"{args.cert_name} already holds a certificate for {', '.join(names)}"}))
        return 0
    argv = [*_certbot_common(args), "certonly", "--cert-name", args.cert_name, "--authenticator", "dns-rfc2136",
            "--dns-rfc2136-credentials", args.credentials,
            "--dns-rfc2136-propagation-seconds", str(args.propagation_seconds)]
    for name in names:
        argv += ["-d", name]
    path = state.path_for(args.state_dir, args.cert_name)
    before_deploy = _deploy_time(path)
    failed, secrets = _run_certbot(args, runner, "issue", argv)
    if failed is not None:
        return failed
    # certbot runs the deploy hooks when certonly replaces an existing lineage's certificate,
    # logs a failed hook and still exits 0: the hook's own record decides, as for renew.
    if _hook_failed(args, path, before_deploy):
        return 1
    try:
        extra = set_margin(args.config_dir, args.cert_name)
    except NtsopsError as exc:
        return _fail(args, "issue", "margin_failed", failures.redact(str(exc), secrets))
    _record(args, "issue", True, None, f"issued {args.cert_name}", extra=extra)
    _say(json.dumps({"changed": True, "cert_name": args.cert_name, **extra}))
    return 0


def _run_certbot(args: argparse.Namespace, runner: Runner, step: str, argv: list[str]) -> tuple[int | None, list[str]]:
    """Run certbot for ``step`` (with --force-renewal and the extra arguments asked for).

    Returns the exit status to end with when certbot failed (its one line recorded), else
    None, and the credential secrets to redact from anything printed later.
    """
    if args.force:
        argv.append("--force-renewal")
    argv += args.certbot_args
    started = time.time()
    code, output = runner(argv, args.timeout)
    secrets = credential_secrets(args.credentials)
    if code != 0:
        reason, cause = failures.explain(output, code, secrets, certbot_log_since(args.logs_dir, started))
        return _fail(args, step, reason, cause), secrets
    return None, secrets


def _live_sha256(config_dir: str, cert_name: str) -> str | None:
    try:
        return cert_info.sha256_fingerprint(cert_files.load_certificates(_live_cert(config_dir, cert_name))[0])
    except NtsopsError:
        return None


def cmd_renew(args: argparse.Namespace, runner: Runner) -> int:
    path = state.path_for(args.state_dir, args.cert_name)
    before_deploy = _deploy_time(path)
    before_sha = _live_sha256(args.config_dir, args.cert_name)
    # certbot sleeps 1-480 s before a due or forced renewal whenever stdin is not a
    # terminal (certbot/_internal/renewal.py, handle_renewal_request); the timer unit
    # already spreads its runs with RandomizedDelaySec, and a run by hand must not wait.
    argv = [*_certbot_common(args), "renew", "--cert-name", args.cert_name, "--no-random-sleep-on-renew"]
    failed, secrets = _run_certbot(args, runner, "renew", argv)
    if failed is not None:
        return failed
    # certbot logs a failed deploy hook and still exits 0: the hook's own record decides.
    # The hook has written the failure (state and its line); say it again on this unit's stderr.
    deployed = state.load(path).get("last_deploy")
    if _hook_failed(args, path, before_deploy):
        return 1
    try:
        extra = set_margin(args.config_dir, args.cert_name)
    except NtsopsError as exc:
        return _fail(args, "renew", "margin_failed", failures.redact(str(exc), secrets))
    renewed = extra["sha256"] != before_sha
    if not renewed and _deploy_pending(deployed, extra["sha256"]):
        # The lineage holds a certificate whose deploy failed: run the deploy hooks again, as certbot would.
        hooks = run_deploy_hooks(args.config_dir, args.cert_name, args.timeout, runner)
        deployed = state.load(path).get("last_deploy")
        if hooks and isinstance(deployed, dict) and not deployed.get("ok"):
            _say_deploy_failure(args, deployed)
            return 1
        message = "deploy of the renewed certificate retried" if hooks else "not due for renewal"
    else:
        message = "renewed" if renewed else "not due for renewal"
    _record(args, "renew", True, None, f"{args.cert_name}: {message}", extra=extra)
    _say(f"ntsops-acme: {args.cert_name}: {message}")
    return 0


def _deploy_pending(deployed: Any, live_sha256: str) -> bool:
    """True when the last deploy failed for the certificate the lineage holds now."""
    return isinstance(deployed, dict) and not deployed.get("ok") and deployed.get("new_sha256") == live_sha256


def run_deploy_hooks(config_dir: str, cert_name: str, timeout: float, runner: Runner) -> list[str]:
    """Run the lineage's renewal-hooks/deploy programs as certbot does (its hooks.py renew_hook)."""
    directory = os.path.join(config_dir, "renewal-hooks", "deploy")
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    hooks = [os.path.join(directory, n) for n in names
             if os.path.isfile(os.path.join(directory, n)) and os.access(os.path.join(directory, n), os.X_OK)]
    lineage = os.path.join(config_dir, "live", cert_name)
    previous = os.environ.get("RENEWED_LINEAGE")
    os.environ["RENEWED_LINEAGE"] = lineage
    try:
        for hook in hooks:
            runner([hook], timeout)
    finally:
        if previous is None:
            del os.environ["RENEWED_LINEAGE"]
        else:
            os.environ["RENEWED_LINEAGE"] = previous
    return hooks


def _hook_failed(args: argparse.Namespace, path: str, before_deploy: Any) -> bool:
    """True (and the hook's failure said again on this run's stderr) when certbot ran the
    deploy hook in this run and it failed: certbot logs a failed hook and still exits 0."""
    deployed = state.load(path).get("last_deploy")
    if isinstance(deployed, dict) and deployed.get("time") != before_deploy and not deployed.get("ok"):
        _say_deploy_failure(args, deployed)
        return True
    return False


def _say_deploy_failure(args: argparse.Namespace, deployed: dict[str, Any]) -> None:
    sys.stderr.write(failures.message("deploy", args.cert_name, f"{deployed.get('step')}: {deployed.get('message')}")
                     + "\n")


def _deploy_time(path: str) -> Any:
    try:
        deployed = state.load(path).get("last_deploy")
    except state.StateError:
        return None
    return deployed.get("time") if isinstance(deployed, dict) else None


def _mode(text: str) -> int:
    try:
        return int(text, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a mode is octal, such as 0640, got {text!r}") from None


def cmd_deploy(args: argparse.Namespace, ops: deploy.HostOps | None = None) -> int:
    renewed = os.environ.get("RENEWED_LINEAGE", "")
    lineage = args.lineage
    # certbot runs deploy hooks for every renewed lineage; act only on ours.
    if os.path.normpath(renewed) != os.path.normpath(lineage):
        return 0
    target = deploy.DeployTarget(
        new_cert=os.path.join(lineage, "fullchain.pem"),
        new_key=os.path.join(lineage, "privkey.pem"),
        cert=deploy.FileSpec(args.cert_file, args.cert_owner, args.cert_group, args.cert_mode),
        key=deploy.FileSpec(args.key_file, args.key_owner, args.key_group, args.key_mode),
        names=tuple(args.name),
        implementation=args.implementation,
        service=args.service,
        served=args.served,
        apply_command=tuple(args.apply_command.split()) if args.apply_command else None,
        verify_timeout=args.verify_timeout,
    )
    result = deploy.deploy(target, ops or deploy.SystemOps())
    record = {**result.as_dict(), "time": time.time()}
    extra: dict[str, Any] = {"last_deploy": record}
    if result.ok:
        extra["served_matches"] = True
    elif result.step == "verify" or result.previous_served_again is False:
        extra["served_matches"] = False
    if result.ok:
        _record(args, "deploy", True, None, result.message, extra=extra)
        _say(f"ntsops-acme: deploy of {args.cert_name}: {result.message} ({result.seconds:.1f} s)")
        return 0
    return _fail(args, "deploy", str(result.reason), f"{result.step}: {result.message}", extra)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="acme_command", metavar="STEP")
    sub.required = True
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--cert-name", required=True, help="certbot lineage name")
    common.add_argument("--config-dir", default=DEFAULT_CONFIG_DIR, help="certbot's configuration directory")
    common.add_argument("--state-dir", default=DEFAULT_STATE_DIR, help="where the exporter's state files are")
    certbot = argparse.ArgumentParser(add_help=False)
    certbot.add_argument("--certbot", default="certbot", help="certbot program")
    certbot.add_argument("--work-dir", help="certbot --work-dir")
    certbot.add_argument("--logs-dir", help="certbot --logs-dir")
    certbot.add_argument("--credentials", help="certbot-dns-rfc2136 credentials file (root-only)")
    certbot.add_argument("--timeout", type=float, default=DEFAULT_CERTBOT_TIMEOUT, help="seconds certbot may take")
    certbot.add_argument("--force", action="store_true", help="issue or renew even when not due")
    certbot.add_argument("certbot_args", nargs="*", help="more certbot options, after --")

    issue = sub.add_parser("issue", parents=[common, certbot], help="obtain the first certificate")
    issue.add_argument("-d", "--domain", action="append", required=True, help="a name to cover (repeat)")
    issue.add_argument("--propagation-seconds", type=int, default=10,
                       help="seconds certbot waits after the TXT update before asking the CA to validate")
    issue.set_defaults(acme_run=cmd_issue)

    renew = sub.add_parser("renew", parents=[common, certbot], help="renew when due (the timer's job)")
    renew.set_defaults(acme_run=cmd_renew)

    hook = sub.add_parser("deploy", help="certbot deploy hook (reads RENEWED_LINEAGE)")
    hook.add_argument("--lineage", required=True, help="the lineage the hook acts on (.../live/NAME)")
    hook.add_argument("--state-dir", default=DEFAULT_STATE_DIR, help="where the exporter's state files are")
    hook.add_argument("--name", action="append", required=True, help="a name the certificate must cover (repeat)")
    hook.add_argument("--cert-file", required=True)
    hook.add_argument("--key-file", required=True)
    hook.add_argument("--cert-owner", default="root")
    hook.add_argument("--cert-group", default="root")
    hook.add_argument("--cert-mode", type=_mode, default=0o644)
    hook.add_argument("--key-owner", default="root")
    hook.add_argument("--key-group", default="root")
    hook.add_argument("--key-mode", type=_mode, default=0o640)
    hook.add_argument("--implementation", required=True, choices=sorted(deploy.APPLY_ACTION))
    hook.add_argument("--service", required=True, help="systemd unit of the daemon")
    hook.add_argument("--served", required=True, help="ADDRESS:PORT of the local NTS-KE listener")
    hook.add_argument("--apply-command", help="command that makes the daemon load the files, instead of systemctl")
    hook.add_argument("--verify-timeout", type=float, default=deploy.DEFAULT_VERIFY_TIMEOUT)
    hook.set_defaults(acme_run=None, cert_name=None)


def run(args: argparse.Namespace, runner: Runner = run_certbot) -> int:
    try:
        if args.acme_command == "deploy":
            args.cert_name = os.path.basename(os.path.normpath(args.lineage))
            return cmd_deploy(args)
        code: int = args.acme_run(args, runner)
        return code
    except NtsopsError as exc:
        sys.stderr.write(f"ntsops-acme: {args.acme_command} of {args.cert_name} failed: {exc}\n")
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ntsops-acme", description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(list(sys.argv[1:] if argv is None else argv)))
