# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Recovery model: how long NTS clients take to follow a server's address change.

The rules come from the clients' source code and from measurements recorded in
docs/recovery-model.md (which names the file and function behind every rule).
Times are seconds after the change: the moment the old address stops answering.

Vocabulary used throughout:

* ``u``: time from the change to the client's first poll after it (the first
  request that goes unanswered). It depends on the client's poll phase, so it is
  anywhere in (0, P0], P0 being the poll interval running at the change.
* ``S_k``: time of the k-th poll after the change relative to that first one
  (``S_1 = 0``), as implemented by each client's poll schedule.
* an *attempt*: a moment at which the client looks the name up again; if the
  resolver already gives the new address then, the client recovers at the
  attempt's *recovery* moment (for chrony two polls later, for NTPsec and the RFC
  reference at once).
* ``F``: the moment from which the client's resolver returns the new address:
  between ``update_latency`` (nothing cached) and ``update_latency + ttl`` (the
  resolver cached the old record just before the update).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError

CLIENTS: tuple[str, ...] = ("chrony-4.3", "chrony-4.4+", "ntpsec-1.2", "rfc8915")
POLL_STATES: tuple[str, ...] = ("steady", "ramping")
OLD_ADDRESS_BEHAVIOURS: tuple[str, ...] = ("dark", "refused", "other")
KE_FAILURES: tuple[str, ...] = ("connect", "tls")

# Keys a client description may carry besides the model inputs (fleet bookkeeping).
_EXTRA_CLIENT_KEYS = frozenset({"share", "name", "count"})
_CLIENT_KEYS = frozenset({"client", "minpoll", "maxpoll", "poll_state", "poll", "old_address", "cookies"})

# Longest TTL or update latency the model accepts: 30 days. Resolvers cap TTLs at
# a week or less (BIND max-cache-ttl, Unbound cache-max-ttl), so this only bounds
# the model's loops, it does not reject any real configuration.
MAX_DNS_SECONDS = 30 * 86400

# chrony: nts_ke.h NKE_MAX_COOKIES, sources.c SOURCE_REACH_BITS.
CHRONY_MAX_COOKIES = 8
CHRONY_REACH_BITS = 8
# chrony 4.3 ntp_sources.c: RESOLVE_INTERVAL_UNIT * 2^MIN_REPLACEMENT_INTERVAL.
CHRONY_43_REPLACEMENT_HOLDOFF_S = 7 * 2**8
# chrony >= 4.4 ntp_sources.c: uniform in [0, RESOLVE_INTERVAL_UNIT * 2^MAX_REPLACEMENT_INTERVAL].
CHRONY_44_REPLACEMENT_POSTPONE_MAX_S = 7 * 2**9
# chrony ntp_core.c SAMPLING_RANDOMNESS: every poll timer is stretched by U[1, 1.02].
CHRONY_POLL_JITTER = 0.02
# chrony ntp_core.c adjust_poll() increments while the source misses responses.
CHRONY_ADJ_SYNC_PEER = 0.1
CHRONY_ADJ_OTHER = 0.25
# chrony nts_ke.h NKE_RETRY_FACTOR2_CONNECT/TLS, NKE_MAX_RETRY_INTERVAL2.
CHRONY_KE_FACTOR = {"connect": 4, "tls": 10}
CHRONY_KE_MAX_EXP = 19

# NTPsec include/nts.h NTS_KE_TIMEOUT (connect timeout towards a dark address).
NTPSEC_KE_TIMEOUT_S = 3.0
# NTPsec ntp_proto.c dns_take_status(): after a failed lookup/NTS-KE the retry waits
# 2^min(max(hpoll, 8) + 4, 12) s, and hpoll <= 17 makes that 2^12 for every poll.
NTPSEC_KE_RETRY_S = 2.0**12
# NTPsec ntp_proto.c poll_update(): next = ((0x1000 | random & 0xff) << hpoll) >> 12.
NTPSEC_POLL_JITTER = 255 / 4096
# NTPsec include/ntp.h NTP_MINPKT: the guard poll_update() adds while throttled.
NTPSEC_MINPKT_S = 2.0

# RFC 8915's NTS-KE retry rule: retries start at >= 10 s, grow by >= 1.5, cap 5 days.
RFC_KE_FIRST_RETRY_S = 10.0
RFC_KE_RETRY_FACTOR = 1.5
RFC_KE_MAX_RETRY_S = 5 * 86400.0

# Bound on how many re-resolution attempts the model walks before giving up.
_MAX_ATTEMPTS = 100_000
# A score just below 1 (chrony's poll_score lies in [0, 1)).
_SCORE_BELOW_ONE = 1.0 - 1e-9


class RecoveryModelError(NtsopsError):
    """An input to the recovery model is invalid, or no setting meets the budget."""


@dataclass(frozen=True)
class ClientBehaviour:
    """Static facts of one client implementation."""

    name: str
    poll_min: int
    poll_max: int
    default_minpoll: int
    default_maxpoll: int
    max_cookies: int
    poll_jitter: float
    description: str


BEHAVIOURS: dict[str, ClientBehaviour] = {
    # chrony accepts -7..24 (ntp_core.c MIN_POLL/MAX_POLL) but an unreachable source
    # never polls faster than 1 s (MIN_NONLAN_POLL 0), so the model starts at 0.
    "chrony-4.3": ClientBehaviour(
        "chrony-4.3", 0, 24, 6, 10, CHRONY_MAX_COOKIES, CHRONY_POLL_JITTER, "chrony 4.3 (Debian 12)"
    ),
    "chrony-4.4+": ClientBehaviour(
        "chrony-4.4+", 0, 24, 6, 10, CHRONY_MAX_COOKIES, CHRONY_POLL_JITTER, "chrony 4.4 or later"
    ),
    # NTPsec include/ntp.h NTP_MINPOLL 0, NTP_MAXPOLL 17.
    "ntpsec-1.2": ClientBehaviour("ntpsec-1.2", 0, 17, 6, 10, 8, NTPSEC_POLL_JITTER, "NTPsec 1.2"),
    # RFC 5905 poll range; RFC 8915 servers send 8 cookies.
    "rfc8915": ClientBehaviour("rfc8915", 0, 17, 6, 10, 8, 0.0, "RFC 8915 reference client"),
}


@dataclass(frozen=True)
class ClientSpec:
    """A validated client description."""

    client: str
    minpoll: int
    maxpoll: int
    poll_state: str
    poll: int | None
    old_address: str
    cookies: int

    @property
    def behaviour(self) -> ClientBehaviour:
        return BEHAVIOURS[self.client]

    def poll_range(self) -> tuple[int, int]:
        """Lowest and highest poll exponent the client may be running at the change."""
        if self.poll is not None:
            return self.poll, self.poll
        if self.poll_state == "steady":
            return self.maxpoll, self.maxpoll
        return self.minpoll, self.maxpoll


def int_value(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value.strip())
        raise RecoveryModelError(f"{what} must be an integer, got {value!r}")
    return value


def _seconds(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise RecoveryModelError(f"{what} must be a number of seconds, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RecoveryModelError(f"{what} must be a number of seconds, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise RecoveryModelError(f"{what} must be a finite number >= 0, got {value!r}")
    if number > MAX_DNS_SECONDS:
        raise RecoveryModelError(f"{what} must be at most {MAX_DNS_SECONDS} s (30 days), got {value!r}")
    return number


def _choice(client: Mapping[str, Any], key: str, choices: tuple[str, ...], default: str) -> str:
    value = client.get(key, default)
    if value not in choices:
        raise RecoveryModelError(f"{key} must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _poll_bounds(client: Mapping[str, Any], behaviour: ClientBehaviour) -> tuple[int, int]:
    minpoll = int_value(client.get("minpoll", behaviour.default_minpoll), "minpoll")
    maxpoll = int_value(client.get("maxpoll", behaviour.default_maxpoll), "maxpoll")
    # A default must not contradict the one bound the user gave (maxpoll 4 alone means
    # minpoll 4, as in both daemons).
    if "minpoll" not in client:
        minpoll = min(minpoll, maxpoll)
    if "maxpoll" not in client:
        maxpoll = max(maxpoll, minpoll)
    for value, what in ((minpoll, "minpoll"), (maxpoll, "maxpoll")):
        if not behaviour.poll_min <= value <= behaviour.poll_max:
            raise RecoveryModelError(
                f"{what} {value!r} is outside {behaviour.name}'s range {behaviour.poll_min}..{behaviour.poll_max}"
            )
    if minpoll > maxpoll:
        # Both daemons silently raise maxpoll to minpoll; the model refuses instead,
        # because a description like that is almost always a typo.
        raise RecoveryModelError(f"minpoll {minpoll!r} is larger than maxpoll {maxpoll!r}")
    return minpoll, maxpoll


def parse_client(client: Any) -> ClientSpec:
    """Validate a client description (a mapping, or just the client id) into a ClientSpec."""
    if isinstance(client, str):
        client = {"client": client}
    if not isinstance(client, Mapping):
        raise RecoveryModelError(f"a client must be a mapping with at least 'client', got {client!r}")
    unknown = sorted(set(client) - _CLIENT_KEYS - _EXTRA_CLIENT_KEYS)
    if unknown:
        raise RecoveryModelError(f"unknown client key(s) {unknown!r}; known: {sorted(_CLIENT_KEYS)!r}")
    name = client.get("client")
    if name not in BEHAVIOURS:
        raise RecoveryModelError(f"unknown client {name!r}; known clients: {', '.join(CLIENTS)}")
    behaviour = BEHAVIOURS[name]
    minpoll, maxpoll = _poll_bounds(client, behaviour)
    poll_state = _choice(client, "poll_state", POLL_STATES, "steady")
    poll: int | None = None
    if client.get("poll") is not None:
        poll = int_value(client["poll"], "poll")
        if not minpoll <= poll <= maxpoll:
            raise RecoveryModelError(f"poll {poll!r} must lie between minpoll {minpoll} and maxpoll {maxpoll}")
    old_address = _choice(client, "old_address", OLD_ADDRESS_BEHAVIOURS, "dark")
    cookies = int_value(client.get("cookies", behaviour.max_cookies), "cookies")
    if not 0 <= cookies <= behaviour.max_cookies:
        raise RecoveryModelError(f"cookies {cookies!r} is outside 0..{behaviour.max_cookies} for {name}")
    return ClientSpec(name, minpoll, maxpoll, poll_state, poll, old_address, cookies)


# ---------------------------------------------------------------------------
# Poll schedules


class ChronySchedule:
    """chrony's poll times during an outage, relative to the first unanswered poll.

    ntp_core.c transmit_timeout(): a request with no answer to the previous one
    (tx_count >= 2) counts as a miss and calls adjust_poll(0.1 for the sync peer,
    0.25 otherwise); a poll with no cookie left (NAU_PrepareRequestAuth fails)
    counts as a miss and calls adjust_poll(0.25). adjust_poll() adds to a score in
    [0, 1) and raises the poll exponent by one when it reaches 1, up to maxpoll.
    The poll timer is restarted with the poll after those adjustments.
    """

    def __init__(self, poll: int, maxpoll: int, cookies: int, *, score: float, sent_adj: float, jitter: float) -> None:
        self.first_interval = 2.0**poll * (1.0 + jitter)
        self.empty_index = 0
        times = [0.0]
        exponent, misses, k = poll, 0, 1
        # The transient ends once the exponent has reached maxpoll: from then on every
        # interval is the same. Each poll from the second on adds >= 0.1 to the score,
        # so this loop runs at most about 10 * (maxpoll - poll) + 20 times.
        while True:
            adj = 0.0
            if k > cookies:
                adj = CHRONY_ADJ_OTHER
            elif k >= 2:
                adj = sent_adj
            if k >= 2 or k > cookies:
                misses += 1
                if misses == CHRONY_REACH_BITS and not self.empty_index:
                    self.empty_index = k
            if adj:
                score += adj
                if score >= 1.0:
                    exponent += int(score)
                    score -= int(score)
                exponent = min(exponent, maxpoll)
            if exponent >= maxpoll and self.empty_index:
                break
            times.append(times[-1] + 2.0**exponent * (1.0 + jitter))
            k += 1
        self.transient: tuple[float, ...] = tuple(times)  # transient[k - 1] = S_k for k <= len(transient)
        self.steady_interval = 2.0**maxpoll * (1.0 + jitter)

    def time(self, k: int) -> float:
        """S_k: the k-th poll (k >= 1) after the change, relative to the first one."""
        n = len(self.transient)
        if k <= n:
            return self.transient[k - 1]
        return self.transient[-1] + (k - n) * self.steady_interval

    def first_index_at_or_after(self, offset: float) -> int:
        """The smallest k >= 1 with S_k >= offset."""
        n = len(self.transient)
        if offset <= self.transient[-1]:
            return bisect.bisect_left(self.transient, offset) + 1
        extra = math.ceil((offset - self.transient[-1]) / self.steady_interval - 1e-12)
        return n + max(extra, 0)


@dataclass(frozen=True)
class Attempt:
    """One re-resolution: when it happens and when the client recovers if it is fresh."""

    at: float
    recovery: float
    ke: float = -1.0  # NTS-KE to the new address; -1 means at ``at``

    @property
    def ke_at(self) -> float:
        return self.at if self.ke < 0 else self.ke


class _Plan:
    """Attempts of one client under one set of extreme assumptions (earliest or latest)."""

    first_interval: float

    def attempts(self, start: float = 0.0) -> Iterator[Attempt]:
        raise NotImplementedError

    def gap(self, n: int) -> float:
        """Bound (lower for an earliest plan, upper for a latest one) on the wait from
        re-resolution n to re-resolution n + 1 (n >= 1), whatever the poll jitter."""
        raise NotImplementedError

    def later_offset(self) -> float:
        """Bound on the time from a fresh re-resolution after the first to recovery."""
        return 0.0

    def gap_sum(self, n: int) -> float:
        """gap(1) + ... + gap(n - 1): offset of the n-th re-resolution from the first."""
        return (n - 1) * self.gap(1)

    def first(self) -> Attempt:
        return next(self.attempts())


class ChronyPlan(_Plan):
    """chrony: re-resolution when the reachability register is empty, then rate limited.

    sources.c SRC_UpdateReachability() calls NSR_HandleBadSource() at every poll while
    the 8-bit register is zero; ntp_sources.c NSR_HandleBadSource() postpones the
    replacement (4.3: 1792 s after the previous one; 4.4+: a uniform delay drawn
    after each one). After NCR_ChangeRemoteAddress()/NNC_ChangeAddress() the next poll
    runs NTS-KE to the new address and the poll after that is authenticated.
    """

    def __init__(
        self, spec: ClientSpec, poll: int, latest: bool, postpone: float, jitter: float | None = None
    ) -> None:
        score = _SCORE_BELOW_ONE if latest else 0.0
        sent_adj = CHRONY_ADJ_OTHER if latest else CHRONY_ADJ_SYNC_PEER
        if jitter is None:
            jitter = CHRONY_POLL_JITTER if latest else 0.0
        self.schedule = ChronySchedule(poll, spec.maxpoll, spec.cookies, score=score, sent_adj=sent_adj, jitter=jitter)
        self.first_interval = self.schedule.first_interval
        self.postpone = postpone
        self.latest = latest

    def gap(self, n: int) -> float:
        # The next attempt is the first poll at least `postpone` after the previous one:
        # at most one (longest) interval later; at least one (current) interval later.
        if self.latest:
            return self.postpone + self.schedule.steady_interval
        k = self.schedule.empty_index
        return max(self.postpone, self.schedule.time(k + 1) - self.schedule.time(k))

    def later_offset(self) -> float:
        # NTS-KE at the next poll, authenticated at the one after: two intervals, which
        # never shrink during the outage.
        if self.latest:
            return 2 * self.schedule.steady_interval
        first = self.first()
        return first.recovery - first.at

    def _attempt(self, k: int) -> Attempt:
        return Attempt(self.schedule.time(k), self.schedule.time(k + 2), self.schedule.time(k + 1))

    def _next_index(self, k: int) -> int:
        return max(k + 1, self.schedule.first_index_at_or_after(self.schedule.time(k) + self.postpone))

    def attempts(self, start: float = 0.0) -> Iterator[Attempt]:
        k = self.schedule.empty_index
        if self.postpone == 0.0 and start > self.schedule.time(k):
            # With no postponement every poll is an attempt: jump straight there.
            k = max(k, self.schedule.first_index_at_or_after(start))
        for _attempt in range(_MAX_ATTEMPTS):
            if self.schedule.time(k) >= start:
                yield self._attempt(k)
            k = self._next_index(k)
        raise RecoveryModelError("the recovery model gave up after too many re-resolution attempts")


class NtpsecPlan(_Plan):
    """NTPsec 1.2: resolve and run NTS-KE one poll slot after the cookies ran out.

    ntp_proto.c peer_xmit() calls restart_nts_ke() when no cookie is left; that sets
    FLAG_LOOKUP and a long delay, but transmit()'s poll_update() overwrites the delay
    (measured), so the next poll runs dns_probe(): getaddrinfo plus NTS-KE
    (nts_client.c nts_probe()). Success sends the first request at once
    (dns_take_server() -> peer_xmit()); failure retries after 2^12 s
    (dns_take_status()).
    """

    def __init__(self, spec: ClientSpec, poll: int, latest: bool, jitter: float | None = None) -> None:
        if jitter is None:
            jitter = NTPSEC_POLL_JITTER if latest else 0.0
        # poll_update() adds the NTP_MINPKT guard to every poll while the headway
        # counter is above 2^minpoll, which lasts long after an iburst start when the
        # client polls at minpoll (measured: +2 s per poll at P = 16 s).
        guard = NTPSEC_MINPKT_S if latest else 0.0
        self.interval = 2.0**poll * (1.0 + jitter) + guard
        self.first_interval = self.interval
        self.first_at = (spec.cookies + 1) * self.interval
        # A dark old address costs the connect timeout; a refusal or a TLS failure
        # from an unrelated host ends the attempt at once.
        self.failure_time = NTPSEC_KE_TIMEOUT_S if spec.old_address == "dark" else 0.0
        self.period = self.failure_time + NTPSEC_KE_RETRY_S

    def gap(self, n: int) -> float:
        return self.period

    def attempts(self, start: float = 0.0) -> Iterator[Attempt]:
        n = 0
        if start > self.first_at:
            n = math.ceil((start - self.first_at) / self.period - 1e-12)
        for _attempt in range(_MAX_ATTEMPTS):
            at = self.first_at + n * self.period
            if at >= start:
                yield Attempt(at, at)
            n += 1
        raise RecoveryModelError("the recovery model gave up after too many re-resolution attempts")


class RfcPlan(_Plan):
    """RFC 8915 reference client (assumptions in docs/recovery-model.md).

    Each unanswered request uses a cookie; at the first poll with none left the
    client runs NTS-KE, resolving the server name as any TLS client does, and sends
    its request at once. Failed NTS-KE is retried after 10 s, growing by 1.5, at most
    5 days (RFC 8915's retry rule), resolving the name each time.
    """

    def __init__(self, spec: ClientSpec, poll: int) -> None:
        self.interval = 2.0**poll
        self.first_interval = self.interval
        self.first_at = spec.cookies * self.interval

    def gap(self, n: int) -> float:
        return min(RFC_KE_FIRST_RETRY_S * RFC_KE_RETRY_FACTOR ** min(n - 1, 64), RFC_KE_MAX_RETRY_S)

    def gap_sum(self, n: int) -> float:
        # The waits grow geometrically until the 5-day cap (about 30 terms), then stay.
        growing = min(n - 1, 64)
        total = sum(self.gap(i) for i in range(1, growing + 1))
        return total + max(0, n - 1 - growing) * RFC_KE_MAX_RETRY_S

    def attempts(self, start: float = 0.0) -> Iterator[Attempt]:
        at, wait = self.first_at, RFC_KE_FIRST_RETRY_S
        for _attempt in range(_MAX_ATTEMPTS):
            if at >= start:
                yield Attempt(at, at)
            at += wait
            wait = min(wait * RFC_KE_RETRY_FACTOR, RFC_KE_MAX_RETRY_S)
        raise RecoveryModelError("the recovery model gave up after too many re-resolution attempts")


def make_plan(
    spec: ClientSpec, poll: int, latest: bool, jitter: float | None = None, postpone: float | None = None
) -> _Plan:
    """The attempt plan of ``spec`` running at ``poll``, under earliest or latest assumptions.

    ``jitter`` (fraction each poll interval is stretched by) and ``postpone`` (chrony
    4.4+'s replacement delay) override the extreme values; the simulator uses them.
    """
    if spec.client == "chrony-4.3":
        return ChronyPlan(spec, poll, latest, CHRONY_43_REPLACEMENT_HOLDOFF_S, jitter)
    if spec.client == "chrony-4.4+":
        if postpone is None:
            postpone = CHRONY_44_REPLACEMENT_POSTPONE_MAX_S if latest else 0.0
        return ChronyPlan(spec, poll, latest, postpone, jitter)
    if spec.client == "ntpsec-1.2":
        return NtpsecPlan(spec, poll, latest, jitter)
    return RfcPlan(spec, poll)


def _last_index(predicate: Callable[[int], bool]) -> int:
    """Largest n >= 1 with predicate(n), for a predicate true up to some n and false after
    (0 when predicate(1) is false). Doubling, then bisection: no long loops."""
    if not predicate(1):
        return 0
    high = 2
    while predicate(high):
        high *= 2
        if high > 2**50:
            raise RecoveryModelError("the recovery model gave up after too many re-resolution attempts")
    low = high // 2  # predicate(low) holds, predicate(high) does not
    while high - low > 1:
        middle = (low + high) // 2
        if predicate(middle):
            low = middle
        else:
            high = middle
    return low


def recovery_bounds(early: _Plan, late: _Plan, fresh_earliest: float, fresh_latest: float) -> tuple[float, float]:
    """Earliest and latest recovery, DNS fresh from ``fresh_earliest`` / ``fresh_latest``.

    The n-th re-resolution falls, over every poll phase and every poll jitter, within
    [lo_n, hi_n] after the change: lo_1 is the earliest plan's first attempt, hi_1 the
    latest plan's (its poll phase u = P0), and each later one is at least the earliest
    plan's gap and at most the latest plan's gap after the previous one.

    Earliest: the first window that can reach F holds the first fresh attempt, at the
    earliest at max(F, lo). Latest: either the first attempt is already fresh (at most
    at hi_1), or the last stale attempt comes before F and the next one at most one
    longest gap later; that bound grows with n, so the last window starting before F
    gives it.
    """
    first_early, first_late = early.first(), late.first()
    lo_1, hi_1 = first_early.at, late.first_interval + first_late.at

    def lo(n: int) -> float:
        return lo_1 + early.gap_sum(n)

    def hi(n: int) -> float:
        return hi_1 + late.gap_sum(n)

    reach = _last_index(lambda n: hi(n) < fresh_earliest) + 1
    offset = first_early.recovery - first_early.at if reach == 1 else early.later_offset()
    earliest = max(fresh_earliest, lo(reach)) + offset

    latest = 0.0
    if hi_1 >= fresh_latest:
        latest = hi_1 + first_late.recovery - first_late.at
    last_stale = _last_index(lambda n: lo(n) < fresh_latest)
    if last_stale:
        latest = max(latest, min(hi(last_stale), fresh_latest) + late.gap(last_stale) + late.later_offset())
    return earliest, latest


def ke_retry_schedule(client: str, failure: str, attempts: int) -> list[float]:
    """Seconds the client waits after each of ``attempts`` failed NTS-KE attempts.

    chrony: nts_ntp_client.c update_next_nke_attempt(), 2^min(factor + n - 1, 19) with
    factor 4 when the connection or the TLS handshake was cut (nts_ke_session.c keeps
    NKE_RETRY_FACTOR2_CONNECT) and 10 once a handshake failed on its merits or
    completed (NKE_RETRY_FACTOR2_TLS). The retry happens at the first poll after the
    wait. NTPsec 1.2: dns_take_status() waits 2^12 s after every failed lookup or
    NTS-KE, whatever the failure. RFC 8915: 10 s, times 1.5 each time, at most 5 days.
    """
    if client not in BEHAVIOURS:
        raise RecoveryModelError(f"unknown client {client!r}; known clients: {', '.join(CLIENTS)}")
    if failure not in KE_FAILURES:
        raise RecoveryModelError(f"failure must be one of {', '.join(KE_FAILURES)}, got {failure!r}")
    count = int_value(attempts, "attempts")
    if not 1 <= count <= 1000:
        raise RecoveryModelError(f"attempts must be between 1 and 1000, got {attempts!r}")
    if client.startswith("chrony"):
        factor = CHRONY_KE_FACTOR[failure]
        return [2.0 ** min(factor + n - 1, CHRONY_KE_MAX_EXP) for n in range(1, count + 1)]
    if client == "ntpsec-1.2":
        return [NTPSEC_KE_RETRY_S] * count
    schedule, wait = [], RFC_KE_FIRST_RETRY_S
    for _client in range(count):
        schedule.append(wait)
        wait = min(wait * RFC_KE_RETRY_FACTOR, RFC_KE_MAX_RETRY_S)
    return schedule


def _second_attempt_gap(plan: _Plan) -> float:
    attempts = plan.attempts()
    first = next(attempts)
    return next(attempts).at - first.at


def _old_address_failure(spec: ClientSpec) -> str:
    """How NTS-KE to the old address fails: an unrelated host answering TLS fails the handshake."""
    return "tls" if spec.old_address == "other" else "connect"


def _fmt(seconds: float) -> str:
    if seconds >= 5400:
        return f"{seconds:.0f} s ({seconds / 3600:.1f} h)"
    if seconds >= 120:
        return f"{seconds:.0f} s ({seconds / 60:.0f} min)"
    return f"{seconds:.1f} s"


def recovery_time(client: Mapping[str, Any] | str, ttl: float, update_latency: float) -> dict[str, Any]:
    """When the client re-resolves the name and gets back to authenticated time.

    Returns a dict with reresolve_earliest_s/latest_s (first re-resolution after the
    change), recovery_earliest_s/latest_s (back on authenticated time at the new
    address, given this TTL and update latency), minimum_recovery_earliest_s/latest_s
    (the same with DNS already fresh), late_dns_extra_s, dns_fresh_earliest_s/latest_s,
    budget_s (the latest moment DNS may become fresh), meets_budget,
    first_reresolution_answer ("new", "old" or "either": what the first re-resolution
    returns), next_reresolution_after_stale_s ([shortest, longest] wait from a stale
    re-resolution to the next), ke_retry_to_old_s (the client's NTS-KE retry waits
    towards the old address) and a one-sentence explanation.
    """
    spec = parse_client(client)
    ttl_s = _seconds(ttl, "ttl")
    latency_s = _seconds(update_latency, "update_latency")
    low_poll, high_poll = spec.poll_range()
    fresh_earliest = latency_s
    fresh_latest = latency_s + ttl_s
    # With stale DNS a lower poll can end later (its retries fall differently), so
    # every poll the client may be running at the change is an extreme candidate.
    early_plans = [make_plan(spec, poll, latest=False) for poll in range(low_poll, high_poll + 1)]
    late_plans = [make_plan(spec, poll, latest=True) for poll in range(low_poll, high_poll + 1)]
    reresolve_earliest = min(plan.first().at for plan in early_plans)
    reresolve_latest = max(plan.first_interval + plan.first().at for plan in late_plans)
    minimum_earliest = min(plan.first().recovery for plan in early_plans)
    minimum_latest = max(plan.first_interval + plan.first().recovery for plan in late_plans)
    bounds = [
        recovery_bounds(early, late, fresh_earliest, fresh_latest)
        for early, late in zip(early_plans, late_plans, strict=True)
    ]
    recovery_earliest = min(low for low, _high in bounds)
    recovery_latest = max(high for _low, high in bounds)
    meets = fresh_latest <= reresolve_earliest
    if meets:
        first_answer = "new"
    elif fresh_earliest > reresolve_latest:
        first_answer = "old"
    else:
        first_answer = "either"
    # What a stale answer at a re-resolution costs: the wait until the next one.
    gaps_early = [_second_attempt_gap(plan) for plan in early_plans]
    gaps_late = [_second_attempt_gap(plan) for plan in late_plans]
    late_extra = max(0.0, recovery_latest - minimum_latest)

    poll_text = f"poll 2^{high_poll} s" if low_poll == high_poll else f"poll 2^{low_poll}..2^{high_poll} s"
    if meets:
        explanation = (
            f"{spec.behaviour.description} at {poll_text} looks the name up again {_fmt(reresolve_earliest)} to "
            f"{_fmt(reresolve_latest)} after the change, DNS is fresh by {_fmt(fresh_latest)} (update latency + "
            f"TTL), so it is back on authenticated time {_fmt(recovery_earliest)} to {_fmt(recovery_latest)} "
            f"after the change."
        )
    else:
        explanation = (
            f"{spec.behaviour.description} at {poll_text} may look the name up again as early as "
            f"{_fmt(reresolve_earliest)} after the change, before DNS is surely fresh ({_fmt(fresh_latest)} = "
            f"update latency + TTL), so recovery can stretch from {_fmt(minimum_latest)} to "
            f"{_fmt(recovery_latest)}; keep update latency + TTL <= {_fmt(reresolve_earliest)}."
        )
    return {
        "client": spec.client,
        "minpoll": spec.minpoll,
        "maxpoll": spec.maxpoll,
        "poll_state": spec.poll_state,
        "old_address": spec.old_address,
        "cookies": spec.cookies,
        "ttl": ttl_s,
        "update_latency": latency_s,
        "reresolve_earliest_s": reresolve_earliest,
        "reresolve_latest_s": reresolve_latest,
        "dns_fresh_earliest_s": fresh_earliest,
        "dns_fresh_latest_s": fresh_latest,
        "budget_s": reresolve_earliest,
        "meets_budget": meets,
        "minimum_recovery_earliest_s": minimum_earliest,
        "minimum_recovery_latest_s": minimum_latest,
        "recovery_earliest_s": recovery_earliest,
        "recovery_latest_s": recovery_latest,
        "late_dns_extra_s": late_extra,
        "first_reresolution_answer": first_answer,
        "next_reresolution_after_stale_s": [min(gaps_early), max(gaps_late)],
        "ke_retry_to_old_s": ke_retry_schedule(spec.client, _old_address_failure(spec), 4),
        "explanation": explanation,
    }


def reresolve_budget(client: Mapping[str, Any] | str) -> float:
    """The earliest moment after the change at which the client may look the name up again."""
    spec = parse_client(client)
    low, high = spec.poll_range()
    return min(make_plan(spec, poll, latest=False).first().at for poll in range(low, high + 1))


def max_ttl(clients: Sequence[Mapping[str, Any]] | Mapping[str, Any], update_latency: float) -> int:
    """The largest TTL (whole seconds) that keeps every listed client at its minimum recovery.

    A resolver that cached the old record just before the update keeps it for the
    whole TTL, so the client sees the new address only ``update_latency + ttl`` after
    the change; that must not be later than the client's earliest re-resolution.
    """
    if isinstance(clients, Mapping):
        clients = [clients]
    if isinstance(clients, str | bytes) or not isinstance(clients, Sequence) or not clients:
        raise RecoveryModelError(f"clients must be a non-empty list of client mappings, got {clients!r}")
    latency_s = _seconds(update_latency, "update_latency")
    budgets = [(reresolve_budget(client), client) for client in clients]
    budget, tightest = min(budgets, key=lambda item: item[0])
    ttl = math.floor(budget - latency_s)
    if ttl < 1:
        raise RecoveryModelError(
            f"no TTL can keep recovery at its minimum: update_latency {latency_s:g} s is already at or past the "
            f"earliest re-resolution of {tightest!r}, {budget:g} s after the change; shorten the update latency "
            f"or raise that client's poll"
        )
    return ttl


# ---------------------------------------------------------------------------
# Planned move: the server keeps answering on the old address, announces
# the new NTP address by NTS-KE Server Negotiation and replaces its cookie keys.

def _chrony_nak_polls(poll: int, maxpoll: int, latest: bool) -> tuple[float, float]:
    """Intervals after the NAK'd poll and after the NTS-KE poll (chrony).

    ntp_core.c transmit_timeout(): the poll after the NAK fails NAU_PrepareRequestAuth()
    (check_cookies() drops the cookies, get_cookies() starts NTS-KE), which calls
    adjust_poll(0.25) before the timer restarts; the NAK'd poll itself followed a
    valid exchange, so its interval is unchanged. The latest case takes a poll score
    just below 1, so that 0.25 raises the exponent by one (up to maxpoll).
    """
    jitter = 1.0 + (CHRONY_POLL_JITTER if latest else 0.0)
    second = min(poll + 1, maxpoll) if latest else poll
    return 2.0**poll * jitter, 2.0**second * jitter


def planned_move_client(client: Mapping[str, Any] | str, dns_fresh_s: float = 0.0) -> dict[str, Any]:
    """What one client does when a chrony server replaces its cookie keys and announces
    the new NTP address by Server Negotiation (``ntsntpserver``) at time 0.

    ``dns_fresh_s``: seconds after the key change from which every resolver the
    client uses returns the new address (0 when DNS was updated and its TTL has run
    out before the key change). Only clients that find the server by the name
    (NTPsec, the RFC reference) depend on it.

    Returns ``path`` (``nak``: the client re-keys because of the NAK; ``cookies``: it
    ignores the NAK and burns its cookies), ``first_auth_new_earliest_s``/``latest_s``
    (first authenticated response from the new address), ``gap_earliest_s``/
    ``gap_latest_s`` (longest time without an authenticated sample: from the last one
    before the change to the first from the new address), the same two figures in
    polls, ``old_ke_at_earliest_s``/``latest_s`` (when it connects to the old
    address's NTS-KE, or None), ``ke_address_after`` (``old`` or ``new``: where its
    next NTS-KE goes), ``needs_old_ke`` and an explanation.
    """
    spec = parse_client(client)
    fresh = _seconds(dns_fresh_s, "dns_fresh_s")
    low, high = spec.poll_range()
    result: dict[str, Any]
    polls: float
    if spec.client.startswith("chrony"):
        # nts_ntp_client.c NNC_CheckResponseAuth() marks the NAK (stratum 0, NTSN with
        # our unique id); at the next poll check_cookies() drops the cookies and
        # get_cookies() runs NTS-KE to inst->nts_address (the OLD address, stored
        # when the name was resolved); at the poll after it, set_ntp_address() ->
        # NSR_UpdateSourceNtpAddress() moves only the NTP address to the negotiated
        # one and the request goes there. The NAK'd request is the first poll after
        # the change: u in (0, P].
        early_first, early_second = _chrony_nak_polls(low, spec.maxpoll, latest=False)
        late_first, late_second = _chrony_nak_polls(high, spec.maxpoll, latest=True)
        first_auth = (early_first + early_second, late_first + late_first + late_second)
        old_ke = (early_first, late_first + late_first)
        # The last authenticated sample came one interval before the NAK'd poll.
        gap = (3 * 2.0**low, late_first + late_first + late_second)
        polls = 2.0**high
        result = {
            "path": "nak",
            "first_auth_new_earliest_s": first_auth[0],
            "first_auth_new_latest_s": first_auth[1],
            "gap_earliest_s": gap[0],
            "gap_latest_s": gap[1],
            "old_ke_at_earliest_s": old_ke[0],
            "old_ke_at_latest_s": old_ke[1],
            "ke_address_after": "old",
            "needs_old_ke": True,
            "explanation": (
                f"{spec.behaviour.description} gets an NTS NAK at its first poll after the key change, runs NTS-KE "
                f"to the OLD address at the next poll and sends its first request to the announced address at the "
                f"poll after: authenticated again {_fmt(first_auth[0])} to {_fmt(first_auth[1])} after the key "
                f"change; its NTS-KE address stays the old one until it restarts."
            ),
        }
    elif spec.client == "rfc8915":
        # Assumption (RFC 8915 section 5.7): on a NAK the client discards its cookies and
        # runs NTS-KE at the next poll, resolving the name as any TLS client does, and
        # sends its request at once; it honours Server Negotiation.
        p_low, p_high = 2.0**low, 2.0**high
        first_auth = (p_low, 2 * p_high)
        # With stale DNS the NTS-KE goes to the old address, which still answers.
        ke_after = "new"
        if fresh > first_auth[0]:
            ke_after = "old" if fresh > first_auth[1] else "either"
        gap = (2 * p_low, 3 * p_high)
        polls = p_high
        result = {
            "path": "nak",
            "first_auth_new_earliest_s": first_auth[0],
            "first_auth_new_latest_s": first_auth[1],
            "gap_earliest_s": gap[0],
            "gap_latest_s": gap[1],
            "old_ke_at_earliest_s": None if ke_after == "new" else first_auth[0],
            "old_ke_at_latest_s": None if ke_after == "new" else first_auth[1],
            "ke_address_after": ke_after,
            "needs_old_ke": ke_after != "new",
            "explanation": (
                f"{spec.behaviour.description} (assumed behaviour) re-keys at its next poll after the NAK, resolving "
                f"the name, and is authenticated at once: {_fmt(first_auth[0])} to {_fmt(first_auth[1])} after the "
                f"key change."
            ),
        }
    else:
        # NTPsec ignores the NAK (measured; ntp_proto.c drops a response without a
        # valid authenticator): every poll burns a cookie, and the poll after the last
        # one resolves the name and runs NTS-KE to what it gets: the unplanned
        # timeline with the key change as the change and the old address answering
        # NAKs instead of nothing (which NTPsec cannot tell apart).
        unplanned = recovery_time(asdict(spec) | {"old_address": "refused"}, ttl=0, update_latency=fresh)
        if unplanned["first_reresolution_answer"] != "new":
            # Its NTS-KE would then reach the old address, which still answers: what
            # NTPsec does with that (it ignores Server Negotiation?) is not measured.
            raise RecoveryModelError(
                f"not modelled: DNS fresh only {fresh:g} s after the key change, but {spec.client} may look the "
                f"name up at {unplanned['reresolve_earliest_s']:g} s; update DNS and wait update latency + TTL "
                f"before replacing the keys"
            )
        first_auth = (unplanned["recovery_earliest_s"], unplanned["recovery_latest_s"])
        interval_low = 2.0**low
        interval_high = 2.0**high * (1.0 + NTPSEC_POLL_JITTER) + NTPSEC_MINPKT_S
        gap = (first_auth[0] + interval_low, first_auth[1] + interval_high)
        polls = 2.0**high
        result = {
            "path": "cookies",
            "first_auth_new_earliest_s": first_auth[0],
            "first_auth_new_latest_s": first_auth[1],
            "gap_earliest_s": gap[0],
            "gap_latest_s": gap[1],
            "old_ke_at_earliest_s": None,
            "old_ke_at_latest_s": None,
            "ke_address_after": "new",
            "needs_old_ke": False,
            "explanation": (
                f"{spec.behaviour.description} ignores NTS NAKs: it spends its {spec.cookies} cookies on NAK'd "
                f"requests, then resolves the name and re-keys at the address it gets: authenticated again "
                f"{_fmt(first_auth[0])} to {_fmt(first_auth[1])} after the key change (no faster than an "
                f"unplanned change)."
            ),
        }
    result.update(
        {
            "client": spec.client,
            "poll": high if low == high else [low, high],
            "dns_fresh_s": fresh,
            "first_auth_new_polls": [first_auth[0] / 2.0**low, first_auth[1] / polls],
            "gap_polls": [gap[0] / 2.0**low, gap[1] / polls],
        }
    )
    return result
