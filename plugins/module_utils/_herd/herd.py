# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A bounded NTS-KE load generator: many clients re-keying at once against one server.

Each simulated client opens TCP (from one of K source addresses), runs a full TLS 1.3
handshake with ALPN ntske/1 (no session resumption), and one NTS-KE request through
:func:`nts_client.key_exchange`; the cookies it gets are counted. Start times come
from a constant rate, from an arrival curve (the fleet simulator's, scaled onto the
run), or as fast as the concurrency allows. Every outcome is put in one class:

- ``ok``: an NTS-KE response without Error records;
- ``refused``: TCP connect refused (RST to the SYN);
- ``closed``: TCP accepted, then closed before any NTS-KE response (chrony's
  ``ntsratelimit`` and a denying ``allow`` look like this: accept, close at once);
- ``tls_error``: the TLS handshake failed with a TLS alert or verification error;
- ``timeout``: a step did not finish within its timeout;
- ``error_record``: the response held an NTS-KE Error record;
- ``protocol_error``: the response broke RFC 8915 framing;
- ``other``: anything else (for example no route, source address not local).

The run is bounded: at most MAX_CLIENTS clients, MAX_DURATION_S seconds of starts,
and each session at most three timeouts (connect, handshake, key exchange) on top.
Targets outside loopback are refused unless the caller says it means it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import ipaddress
import json
import math
import multiprocessing
import os
import select
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ansible_collections.ntsops.nts.plugins.module_utils._errors import (
    MissingDependencyError,
    NtsopsError,
    NtsProtocolError,
)
from ansible_collections.ntsops.nts.plugins.module_utils._model.summary import percentile
from ansible_collections.ntsops.nts.plugins.module_utils._net import nts_client
from ansible_collections.ntsops.nts.plugins.module_utils._nts import records as nts_records

try:
    from OpenSSL import SSL
except ImportError:  # pragma: no cover - reported when used
    SSL = None  # type: ignore[assignment]

MAX_CLIENTS = 200_000
MAX_DURATION_S = 600.0
MAX_CONCURRENCY = 1024
MAX_PROCESSES = 64
MAX_SOURCE_ADDRESSES = 4096
CURVE_FORMAT = "ntsops-arrival-curve/1"
OUTCOMES = ("ok", "refused", "closed", "tls_error", "timeout", "error_record", "protocol_error", "other")
FAILURE_CLASSES = OUTCOMES[1:]
# Linux: bind() to an address without picking the port until connect(), so many
# sessions from one source address do not run out of ports at bind time.
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
_LOOPBACK_SOURCE_BASE = ipaddress.IPv4Address("127.0.1.0")


class HerdError(NtsopsError):
    """Bad herd options or an unusable arrival curve."""


@dataclasses.dataclass(frozen=True)
class HerdOptions:
    target: str
    port: int = nts_client.NTS_KE_PORT
    server_name: str | None = None
    ca_path: str | None = None
    clients: int = 100
    duration: float = 10.0
    rate: float | None = None
    curve: tuple[float, ...] | None = None
    source_addresses: tuple[str, ...] = ()
    concurrency: int = 32
    timeout: float = 5.0
    allow_remote: bool = False
    processes: int = 1

    def validate(self) -> None:
        if not 1 <= self.port <= 65535:
            raise HerdError(f"port must be 1-65535, got {self.port}")
        if not 1 <= self.clients <= MAX_CLIENTS:
            raise HerdError(f"clients must be 1-{MAX_CLIENTS}, got {self.clients}")
        if not 0 < self.duration <= MAX_DURATION_S:
            raise HerdError(f"duration must be more than 0 and at most {MAX_DURATION_S:g} s, got {self.duration}")
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise HerdError(f"concurrency must be 1-{MAX_CONCURRENCY}, got {self.concurrency}")
        if not 1 <= self.processes <= MAX_PROCESSES:
            raise HerdError(f"processes must be 1-{MAX_PROCESSES}, got {self.processes}")
        if not 0 < self.timeout <= 60:
            raise HerdError(f"timeout must be more than 0 and at most 60 s, got {self.timeout}")
        if self.rate is not None and self.curve is not None:
            raise HerdError("give a rate or an arrival curve, not both")
        if self.rate is not None and not (math.isfinite(self.rate) and self.rate > 0):
            raise HerdError(f"rate must be a positive number of clients per second, got {self.rate}")
        if len(self.source_addresses) > MAX_SOURCE_ADDRESSES:
            raise HerdError(f"at most {MAX_SOURCE_ADDRESSES} source addresses")
        check_target(self.target, self.allow_remote)
        family = _family(self.target)
        for source in self.source_addresses:
            if _family(source) != family:
                raise HerdError(f"source address {source} is not of the target's address family")
            if not self.allow_remote and not ipaddress.ip_address(source).is_loopback:
                raise HerdError(f"source address {source} is outside loopback; pass allow_remote (--i-mean-it)")


def _family(address: str) -> int:
    try:
        version = ipaddress.ip_address(address).version
    except ValueError:
        raise HerdError(f"{address!r} is not an IP address") from None
    return socket.AF_INET6 if version == 6 else socket.AF_INET


def check_target(address: str, allow_remote: bool) -> None:
    """Refuse a target outside 127.0.0.0/8 and ::1 unless the operator means it."""
    _family(address)
    if not allow_remote and not ipaddress.ip_address(address).is_loopback:
        raise HerdError(
            f"{address} is not a loopback address; a load test against another host needs allow_remote "
            "(--i-mean-it), and only against a server you operate"
        )


def loopback_sources(count: int) -> tuple[str, ...]:
    """``count`` distinct IPv4 loopback source addresses: 127.0.1.1, 127.0.1.2, ...

    Linux routes all of 127.0.0.0/8 to ``lo``, so they can be bound without setup.
    """
    if not 1 <= count <= MAX_SOURCE_ADDRESSES:
        raise HerdError(f"source address count must be 1-{MAX_SOURCE_ADDRESSES}, got {count}")
    return tuple(str(_LOOPBACK_SOURCE_BASE + 1 + i) for i in range(count))


# ---------------------------------------------------------------------- schedule


def curve_document(arrivals_per_bin: Sequence[int], bin_seconds: float, **meta: Any) -> dict[str, Any]:
    """The arrival-curve file: NTS-KE arrivals per bin at the server, from the change on."""
    return {
        "format": CURVE_FORMAT,
        "bin_seconds": bin_seconds,
        "counts": [int(c) for c in arrivals_per_bin],
        **meta,
    }


def parse_curve(document: Any) -> tuple[float, ...]:
    """The relative arrival weights of a curve document (see curve_document), from the
    first bin with an arrival to the last."""
    if not isinstance(document, Mapping) or document.get("format") != CURVE_FORMAT:
        raise HerdError(f"an arrival curve must be a JSON object with \"format\": \"{CURVE_FORMAT}\"")
    counts = document.get("counts")
    if not isinstance(counts, list) or not counts:
        raise HerdError("arrival curve has no 'counts' list")
    weights = []
    for count in counts:
        if isinstance(count, bool) or not isinstance(count, int | float) or not math.isfinite(count) or count < 0:
            raise HerdError(f"arrival curve counts must be non-negative numbers, got {count!r}")
        weights.append(float(count))
    if not sum(weights) > 0:
        raise HerdError("arrival curve counts sum to zero")
    # The quiet time before the first and after the last arrival tells a load test nothing.
    first = next(i for i, w in enumerate(weights) if w > 0)
    last = max(i for i, w in enumerate(weights) if w > 0)
    return tuple(weights[first : last + 1])


def load_curve(path: str) -> tuple[float, ...]:
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except OSError as exc:
        raise HerdError(f"cannot read arrival curve {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise HerdError(f"arrival curve {path} is not JSON: {exc}") from exc
    return parse_curve(document)


def plan_starts(clients: int, duration: float, rate: float | None, curve: Sequence[float] | None) -> list[float] | None:
    """Start offsets in seconds, or None for "as fast as the concurrency allows".

    rate: client i starts at i / rate (those past ``duration`` never start).
    curve: the curve's whole span is scaled onto ``duration`` and the clients are
    shared out over its bins in proportion to the weights (largest remainder), evenly
    spaced inside each bin.
    """
    if rate is not None:
        return [i / rate for i in range(clients)]
    if curve is None:
        return None
    total = sum(curve)
    exact = [clients * w / total for w in curve]
    shares = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(curve)), key=lambda i: exact[i] - shares[i], reverse=True)
    for i in by_remainder[: clients - sum(shares)]:
        shares[i] += 1
    width = duration / len(curve)
    starts: list[float] = []
    for index, share in enumerate(shares):
        starts.extend((index + (k + 0.5) / share) * width for k in range(share))
    return starts


# ---------------------------------------------------------------------- one client


@dataclasses.dataclass
class SessionResult:
    source: str
    outcome: str
    started: float  # seconds after the run began
    latency_s: float  # connect to NTS-KE response (or to the failure)
    handshake_s: float | None = None
    cookies: int = 0
    detail: str = ""
    planned: float | None = None  # planned start, seconds after the run began


def make_context(ca_path: str | None) -> Any:
    """One client context shared by every session: TLS 1.3 only, ALPN ntske/1, chain verified.

    The certificate name is not checked here (``ntsops check`` does that); a chain
    that does not verify fails the handshake and counts as ``tls_error``.
    """
    if SSL is None:
        raise MissingDependencyError("pyOpenSSL", "for TLS 1.3 NTS-KE sessions")
    context = SSL.Context(SSL.TLS_METHOD)
    context.set_min_proto_version(SSL.TLS1_3_VERSION)
    context.set_alpn_protos([nts_client.ALPN_NTSKE])
    if ca_path:
        try:
            context.load_verify_locations(ca_path)
        except SSL.Error as exc:
            raise HerdError(f"cannot load CA bundle {ca_path}") from exc
    else:
        context.set_default_verify_paths()
    context.set_verify(SSL.VERIFY_PEER)
    # Every client must pay for a full handshake, as after an address change.
    context.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    return context


class _SessionFailed(Exception):
    def __init__(self, outcome: str, detail: str) -> None:
        super().__init__(detail)
        self.outcome = outcome


def _wait(sock: socket.socket, for_write: bool, deadline: nts_client.Deadline, what: str) -> None:
    left = deadline.left()
    readers, writers = ([], [sock]) if for_write else ([sock], [])
    if left <= 0 or not any(select.select(readers, writers, [], left)):
        raise _SessionFailed("timeout", f"{what} timed out after {deadline.seconds:g} s")


def _connect(address: str, port: int, source: str | None, timeout: float) -> socket.socket:
    sock = socket.socket(_family(address), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if source:
            if sock.family == socket.AF_INET:
                sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((source, 0))
        sock.setblocking(False)
        code = sock.connect_ex((address, port))
        if code not in (0, errno.EINPROGRESS):
            raise _connect_failure(code)
        _wait(sock, True, nts_client.Deadline(timeout), "TCP connect")
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise _connect_failure(code)
    except OSError as exc:
        sock.close()
        raise _SessionFailed("other", f"socket error: {exc.strerror or exc}") from exc
    except BaseException:
        sock.close()
        raise
    return sock


def _connect_failure(code: int) -> _SessionFailed:
    if code == errno.ECONNREFUSED:
        return _SessionFailed("refused", "TCP connect refused")
    if code == errno.ETIMEDOUT:
        return _SessionFailed("timeout", "TCP connect timed out")
    return _SessionFailed("other", f"TCP connect failed: {os.strerror(code)}")


def _handshake(sock: socket.socket, context: Any, server_name: str | None, timeout: float) -> Any:
    connection = SSL.Connection(context, sock)
    if server_name:
        connection.set_tlsext_host_name(server_name.encode("idna"))
    connection.set_connect_state()
    deadline = nts_client.Deadline(timeout)
    while True:
        try:
            connection.do_handshake()
            return connection
        except SSL.WantReadError:
            _wait(sock, False, deadline, "TLS handshake")
        except SSL.WantWriteError:
            _wait(sock, True, deadline, "TLS handshake")
        except SSL.SysCallError as exc:
            # EOF or reset before the handshake finished: the server accepted and closed.
            raise _SessionFailed("closed", f"closed during the TLS handshake ({exc.args[-1]})") from exc
        except SSL.Error as exc:
            raise _SessionFailed("tls_error", f"TLS handshake failed: {_ssl_reason(exc)}") from exc


def _ssl_reason(exc: Exception) -> str:
    reasons = [str(e[-1]) for e in (exc.args[0] if exc.args and isinstance(exc.args[0], list) else [])
               if isinstance(e, tuple) and e]
    return "; ".join(r for r in reasons if r) or type(exc).__name__


def _classify_ke_failure(exc: nts_client.NtsStepError, deadline: nts_client.Deadline) -> str:
    # nts_client chains the underlying cause: a TLS-level EOF/reset, a TLS error, or a
    # record that breaks the framing; none with the deadline spent is its timeout.
    cause = exc.__cause__
    if isinstance(cause, NtsProtocolError):
        return "protocol_error"
    if SSL is not None and isinstance(cause, SSL.SysCallError):
        return "closed"
    if SSL is not None and isinstance(cause, SSL.Error):
        return "tls_error"
    if deadline.expired():
        return "timeout"
    return "closed"


def run_session(
    address: str, port: int, server_name: str | None, context: Any, *, source: str | None, timeout: float
) -> SessionResult:
    """One client: connect, full TLS 1.3 handshake, one NTS-KE; never raises NtsopsError."""
    started = time.monotonic()
    handshake_s = None
    sock = connection = None
    try:
        sock = _connect(address, port, source, timeout)
        connection = _handshake(sock, context, server_name, timeout)
        handshake_s = time.monotonic() - started
        session = nts_client.TlsSession(
            connection=connection, sock=sock, version="", cipher=None, alpn="", handshake_ms=handshake_s * 1000,
            verify_errors=[], chain=[],
        )
        deadline = nts_client.Deadline(timeout)
        try:
            ke = nts_client.key_exchange(session, (nts_records.AEAD_AES_SIV_CMAC_256,), timeout)
        except nts_client.NtsStepError as exc:
            raise _SessionFailed(_classify_ke_failure(exc, deadline), str(exc)) from exc
        latency = time.monotonic() - started
        if ke.response.errors:
            names = ", ".join(nts_records.error_name(code) for code in ke.response.errors)
            return SessionResult(source or "", "error_record", started, latency, handshake_s, 0, names)
        return SessionResult(source or "", "ok", started, latency, handshake_s, len(ke.response.cookies))
    except _SessionFailed as exc:
        return SessionResult(source or "", exc.outcome, started, time.monotonic() - started, handshake_s, 0, str(exc))
    except NtsopsError as exc:
        return SessionResult(source or "", "other", started, time.monotonic() - started, handshake_s, 0, str(exc))
    finally:
        if connection is not None:
            with contextlib.suppress(SSL.Error):  # the peer may already have closed
                connection.shutdown()
        if sock is not None:
            sock.close()


# ---------------------------------------------------------------------- the herd

class SessionRunner(Protocol):
    """Runs one client session from a source address (None: the kernel picks)."""

    def __call__(self, source: str | None) -> SessionResult:
        ...


def _stats(results: Sequence[SessionResult], elapsed: float) -> dict[str, Any]:
    counts = dict.fromkeys(OUTCOMES, 0)
    for result in results:
        counts[result.outcome] += 1
    ok = [r for r in results if r.outcome == "ok"]
    latencies = [r.latency_s * 1000 for r in ok]
    handshakes = [r.handshake_s * 1000 for r in results if r.handshake_s is not None]
    summary: dict[str, Any] = {
        "attempted": len(results),
        "ok": counts["ok"],
        "failed": len(results) - counts["ok"],
        "failures": {name: counts[name] for name in FAILURE_CLASSES},
        "cookies": sum(r.cookies for r in ok),
        "ke_per_second": round(counts["ok"] / elapsed, 1) if elapsed > 0 else 0.0,
        "handshakes_per_second": round(len(handshakes) / elapsed, 1) if elapsed > 0 else 0.0,
    }
    for label, values in (("latency_ms", latencies), ("handshake_ms", handshakes)):
        summary[label] = (
            {f"p{q}": round(percentile(values, q / 100), 3) for q in (50, 95, 99)} | {"max": round(max(values), 3)}
            if values else None
        )
    examples = {}
    for result in results:
        if result.outcome != "ok" and result.outcome not in examples:
            examples[result.outcome] = result.detail
    summary["failure_examples"] = examples
    return summary


def _real_runner(options: HerdOptions) -> SessionRunner:
    context = make_context(options.ca_path)

    def runner(source: str | None) -> SessionResult:
        return run_session(options.target, options.port, options.server_name, context, source=source,
                           timeout=options.timeout)

    return runner


def _run_shard(
    options: HerdOptions, runner: SessionRunner | None, shard: int, shards: int, began: float
) -> tuple[list[SessionResult], int]:
    """Run clients shard, shard + shards, ... on ``options.concurrency`` threads.

    ``began`` is a CLOCK_MONOTONIC moment, which every process on the host shares.
    Returns the finished sessions and how many threads were still busy at the bound.
    """
    runner = runner or _real_runner(options)
    starts = plan_starts(options.clients, options.duration, options.rate, options.curve)
    sources: Sequence[str | None] = options.source_addresses or (None,)
    indices = iter(range(shard, options.clients, shards))
    results: list[SessionResult] = []
    lock = threading.Lock()
    stop_at = began + options.duration

    def worker() -> None:
        while True:
            with lock:
                index = next(indices, None)
            if index is None:
                return
            planned = starts[index] if starts is not None else None
            due = began + (planned or 0.0)
            if due >= stop_at or time.monotonic() >= stop_at:
                return
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            result = runner(sources[index % len(sources)])
            result.started -= began
            result.planned = planned
            with lock:
                results.append(result)

    count = min(options.concurrency, len(range(shard, options.clients, shards)))
    threads = [threading.Thread(target=worker, daemon=True) for _thread in range(count)]
    for thread in threads:
        thread.start()
    # Bounded: no start after the duration, and each session ends within its
    # three step timeouts; the margin only covers scheduling.
    join_by = stop_at + 3 * options.timeout + 5.0
    for thread in threads:
        thread.join(max(0.0, join_by - time.monotonic()))
    hung = sum(1 for thread in threads if thread.is_alive())
    with lock:
        return list(results), hung


def _run_shard_in_child(options: HerdOptions, shard: int, shards: int, began: float) -> tuple[list[SessionResult], int]:
    return _run_shard(options, None, shard, shards, began)


def run_herd(options: HerdOptions, runner: SessionRunner | None = None) -> dict[str, Any]:
    """Run the herd and summarise it; ``runner`` (for tests) replaces the real session.

    With ``options.processes`` > 1 the clients are dealt out to that many forked
    processes (each with ``concurrency`` threads), so one Python interpreter's lock
    does not cap the rate; a canned ``runner`` always runs in this process.
    """
    options.validate()
    began = time.monotonic() + 0.05 * options.processes  # let every process get ready
    if options.processes > 1 and runner is None:
        context = multiprocessing.get_context("fork")
        with context.Pool(options.processes) as pool:
            shards = pool.starmap(
                _run_shard_in_child, [(options, p, options.processes, began) for p in range(options.processes)]
            )
        finished = [result for results, _hung in shards for result in results]
        hung = sum(busy for _results, busy in shards)
    else:
        finished, hung = _run_shard(options, runner, 0, 1, began)
    sources: Sequence[str | None] = options.source_addresses or (None,)
    elapsed = max((r.started + r.latency_s for r in finished), default=0.0)
    summary = _stats(finished, elapsed)
    lags = [r.started - r.planned for r in finished if r.planned is not None]
    summary.update(
        {
            "target": options.target,
            "port": options.port,
            "clients": options.clients,
            "not_started": options.clients - len(finished) - hung,
            "unfinished": hung,
            "duration_s": options.duration,
            "elapsed_s": round(elapsed, 3),
            "mode": "rate" if options.rate is not None else "curve" if options.curve is not None else "max",
            "offered_rate": options.rate,
            "concurrency": options.concurrency,
            "processes": options.processes,
            "start_lag_ms": {"p50": round(percentile(lags, 0.5) * 1000, 3), "max": round(max(lags) * 1000, 3)}
            if lags else None,
            "per_source": {
                str(source or "default"): _stats([r for r in finished if r.source == (source or "")], elapsed)
                for source in sources
            },
        }
    )
    return summary
