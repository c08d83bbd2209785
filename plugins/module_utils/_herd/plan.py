# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a herd run is: its options and limits, the targets it may load, and when each client starts.

Start times come from a constant rate, from an arrival curve (the fleet simulator's,
scaled onto the run), or as fast as the concurrency allows. The run is bounded: at
most MAX_CLIENTS clients and MAX_DURATION_S seconds of starts. Targets and source
addresses outside loopback are refused unless the caller says it means it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError
from ansible_collections.ntsops.nts.plugins.module_utils._net.resolve import address_family
from ansible_collections.ntsops.nts.plugins.module_utils._nts.records import NTS_KE_PORT

MAX_CLIENTS = 200_000
MAX_DURATION_S = 600.0
MAX_CONCURRENCY = 1024
MAX_PROCESSES = 64
MAX_SOURCE_ADDRESSES = 4096
CURVE_FORMAT = "ntsops-arrival-curve/1"
_LOOPBACK_SOURCE_BASE = ipaddress.IPv4Address("127.0.1.0")


class HerdError(NtsopsError):
    """Bad herd options or an unusable arrival curve."""


@dataclasses.dataclass(frozen=True)
class HerdOptions:
    target: str
    port: int = NTS_KE_PORT
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
        ipaddress.ip_address(address)
    except ValueError:
        raise HerdError(f"{address!r} is not an IP address") from None
    return address_family(address)


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
