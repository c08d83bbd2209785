# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HTTP side of ``ntsops exporter``, in the style of blackbox_exporter.

``GET /probe?target=NAME[:PORT]&module=M`` answers the series of ``ntsops check
--prometheus`` for that target (plus DNS consistency and certificate lifetime, see
probe.py); ``GET /metrics`` answers the exporter's own counters and, when
configured, chrony's serverstats.

It is the standard library's ThreadingHTTPServer: the exporter serves a handful
of scrapes a minute, each a few milliseconds of work besides the wait on the
network, and a client library (prometheus_client) would add a dependency for
nothing the text format needs (prometheus.py already writes it). What decides
what is probed is elsewhere in this package: exporter_config (the file, targets,
the allowed list), probe_gate (concurrency, interval, deadline) and probe.

This file is here, not in ntsops_cli, because the ntsops.nts.exporter role
installs the exporter from the collection (ntsops_cli is not part of it), as
ddns_agent installs _dns/agent.py; ``ntsops exporter`` and the role's launcher
both call :func:`main`.
"""

from __future__ import annotations

import argparse
import http.server
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._acme import state as acme_state
from ansible_collections.ntsops.nts.plugins.module_utils._check import (
    daemon_status,
    exporter_config,
    probe,
    probe_gate,
    serverstats,
)
from ansible_collections.ntsops.nts.plugins.module_utils._check.exporter_config import (
    ExporterConfig,
    ExporterConfigError,
    TargetError,
)
from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Connections handled at once; more are closed unanswered (each has its own thread).
MAX_CONNECTIONS = 64
# A client that sends its request this slowly is dropped (no thread held by a trickle).
REQUEST_TIMEOUT = 10.0
# Prometheus sends its scrape timeout; the probe must answer a little before it.
SCRAPE_TIMEOUT_MARGIN = 0.5


DESCRIPTION = (
    "Serve /probe?target=NAME&module=M (the ntsops check series for NAME, like blackbox_exporter) "
    "and /metrics (the exporter's own counters) over HTTP."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="YAML", help="the exporter's configuration file")
    parser.add_argument("--listen", metavar="ADDR:PORT", help="override the file's listen address")
    parser.add_argument("--check-config", action="store_true", help="read the configuration, report and exit")


# ---------------------------------------------------------------- configuration file


def _line_of(node: Any, path: str) -> int | None:
    """The 1-based line of ``path`` (``modules.nts.dns.servers[0]``) in a composed YAML node tree."""
    import yaml  # noqa: PLC0415 - only the exporter needs PyYAML

    line = None
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if str(k.value) == part), None)
            if found is None:
                break
            line, node = found[0].start_mark.line + 1, found[1]
        elif isinstance(node, yaml.SequenceNode) and part.startswith("["):
            index = int(part[1:-1])
            if index >= len(node.value):
                break
            node = node.value[index]
            line = node.start_mark.line + 1
        else:
            break
    return line


def load_config(path: str) -> ExporterConfig:
    """Read and check the file; every error names the file and, where it can, the line."""
    import yaml  # noqa: PLC0415 - only the exporter needs PyYAML

    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ExporterConfigError("", f"cannot read {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
        tree = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark else path
        raise ExporterConfigError("", f"{where}: not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ExporterConfigError("", f"{path}: not valid YAML: {exc}") from None
    try:
        return exporter_config.parse_config(data)
    except ExporterConfigError as exc:
        line = _line_of(tree, exc.path) if exc.path else None
        where = f"{path}:{line}" if line else path
        raise ExporterConfigError("", f"{where}: {exc}") from None


# ---------------------------------------------------------------- the server


def run_counter_command(command: tuple[str, ...], timeout: float) -> str:
    completed = subprocess.run(  # noqa: S603 - the argv comes from the operator's config file
        list(command), capture_output=True, text=True, timeout=timeout, check=True
    )
    return completed.stdout


class _Rejected(NtsopsError):
    """A /probe request that is answered with an HTTP error instead of a probe."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class Exporter:
    """The state one exporter process shares between its request threads."""

    def __init__(
        self,
        config: ExporterConfig,
        *,
        prober: Callable[[exporter_config.Module, exporter_config.Target], str] = probe.probe,
        chronyc: Callable[[tuple[str, ...], float], str] = run_counter_command,
    ) -> None:
        self.config = config
        self.gate = probe_gate.ProbeGate(config.max_concurrent_probes, config.min_interval)
        self.stats = probe_gate.ExporterStats()
        self._prober = prober
        self._chronyc = chronyc

    def _select(self, query: Mapping[str, list[str]]) -> tuple[exporter_config.Module, exporter_config.Target]:
        """The module and target a /probe request names; a bad one raises _Rejected."""
        targets, modules = query.get("target", []), query.get("module", [])
        if len(targets) != 1 or len(modules) > 1:
            raise _Rejected(400, "bad_target", "exactly one target= and at most one module= parameter are needed")
        if not modules and len(self.config.modules) != 1:
            configured = ", ".join(sorted(self.config.modules))
            raise _Rejected(400, "unknown_module", f"module= is needed; configured: {configured}")
        try:
            module = self.config.module(modules[0] if modules else next(iter(self.config.modules)))
        except TargetError as exc:
            raise _Rejected(400, "unknown_module", str(exc)) from None
        try:
            target = exporter_config.parse_target(targets[0])
        except TargetError as exc:
            raise _Rejected(400, "bad_target", str(exc)) from None
        if not self.config.allows(target, module):
            raise _Rejected(403, "not_allowed", f"target {target} is not in allowed_targets")
        return module, target

    def probe(self, query: Mapping[str, list[str]], scrape_timeout: float | None) -> tuple[int, str]:
        """(HTTP status, body) for one /probe request."""
        try:
            module, target = self._select(query)
        except _Rejected as exc:
            self.stats.rejected(exc.reason)
            return exc.status, f"{exc}\n"
        deadline = module.probe_timeout
        if scrape_timeout is not None:
            deadline = max(0.1, min(deadline, scrape_timeout - SCRAPE_TIMEOUT_MARGIN))
        try:
            outcome = self.gate.run(
                (module.name, str(target)),
                lambda: self._prober(module, target),
                deadline,
                lambda seconds: probe.timed_out(module, target, seconds),
            )
        except probe_gate.ProbeBusy as exc:
            self.stats.rejected("busy")
            return 503, f"{exc}\n"
        self.stats.probed(module.name, outcome)
        return 200, outcome.text

    def metrics(self) -> str:
        extra: list[Any] = []
        sources = (
            (self.config.chrony_serverstats, daemon_status.chronyc_serverstats, serverstats.chrony_families),
            (self.config.ntpsec_ntsinfo, daemon_status.ntpq_ntsinfo, serverstats.ntpsec_families),
        )
        for command, parse, families in sources:
            if command is None:
                continue
            try:
                extra += families(parse(self._chronyc(command.command, command.timeout)), True)
            except (OSError, subprocess.SubprocessError):
                extra += families({}, False)
        if self.config.acme_state_dir is not None:
            extra += acme_state.families(*acme_state.read_directory(self.config.acme_state_dir))
        return self.stats.render(self.gate.in_flight, extra)


def _scrape_timeout(headers: Any) -> float | None:
    value = headers.get("X-Prometheus-Scrape-Timeout-Seconds")
    try:
        return float(value) if value else None
    except ValueError:
        return None


class Handler(http.server.BaseHTTPRequestHandler):
    server: Server
    timeout = REQUEST_TIMEOUT
    server_version = "ntsops-exporter"

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        exporter = self.server.exporter
        if url.path == "/probe":
            status, body = exporter.probe(urllib.parse.parse_qs(url.query), _scrape_timeout(self.headers))
        elif url.path == "/metrics":
            status, body = 200, exporter.metrics()
        elif url.path == "/":
            status, body = 200, "ntsops exporter: /probe?target=NAME&module=M, /metrics\n"
        else:
            status, body = 404, "not found: use /probe?target=NAME&module=M or /metrics\n"
        payload = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE if status == 200 else "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        # Only failures: a scrape every 15 s per target would flood the journal.
        if args and len(args) >= 2 and str(args[1])[:1] in ("4", "5"):
            sys.stderr.write(f"{self.address_string()} {format % args}\n")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], exporter: Exporter) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.exporter = exporter
        self._connections = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._connections.acquire(blocking=False):
            self.shutdown_request(request)  # too many open connections: drop this one unanswered
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connections.release()


def main(argv: list[str] | None = None) -> int:
    """The role's launcher: ``ntsops-exporter --config FILE [--listen ADDR:PORT] [--check-config]``."""
    parser = argparse.ArgumentParser(prog="ntsops-exporter", description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        listen = args.listen or config.listen
        host, port = exporter_config.parse_listen(listen, "--listen" if args.listen else "listen")
    except ExporterConfigError as exc:
        sys.stderr.write(f"ntsops exporter: {exc}\n")
        return 2
    if args.check_config:
        sys.stdout.write(f"ntsops exporter: {args.config}: {len(config.modules)} modules, listen {listen}\n")
        return 0
    try:
        server = Server((host, port), Exporter(config))
    except OSError as exc:
        sys.stderr.write(f"ntsops exporter: cannot listen on {listen}: {exc.strerror}\n")
        return 2

    def stop(_signum: int, _frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stderr.write(f"ntsops exporter: listening on {listen}\n")
    sys.stderr.flush()
    with server:
        server.serve_forever()
    return 0
