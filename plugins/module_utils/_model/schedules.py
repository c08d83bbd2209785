# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Poll schedules and re-resolution plans: when each client looks the server name up again.

Times are seconds after the change (the moment the old address stops answering).
``u`` is the time from the change to the client's first unanswered poll, in
(0, P0]; ``S_k`` the k-th poll after the change relative to that first one
(``S_1 = 0``). An *attempt* is a moment at which the client resolves the name
again; if the resolver gives the new address then, the client recovers at the
attempt's *recovery* moment. A plan lists a client's attempts under the earliest
or the latest assumptions (poll score, poll jitter, chrony 4.4+'s postponement);
recovery.py turns the two extreme plans into bounds and simulate.py draws from
between them. docs/recovery-model.md names the daemon code behind every rule.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator
from dataclasses import dataclass

from ansible_collections.ntsops.nts.plugins.module_utils._model.clients import (
    CHRONY_43_REPLACEMENT_HOLDOFF_S,
    CHRONY_44_REPLACEMENT_POSTPONE_MAX_S,
    CHRONY_ADJ_OTHER,
    CHRONY_ADJ_SYNC_PEER,
    CHRONY_IBURST_GOOD_SAMPLES,
    CHRONY_IBURST_TOTAL_SAMPLES,
    CHRONY_KE_FACTOR,
    CHRONY_KE_MAX_EXP,
    CHRONY_MAX_BURST_INTERVAL_S,
    CHRONY_MAX_BURST_POLL_RATIO,
    CHRONY_NTSKE_CLIENT_TIMEOUT_S,
    CHRONY_POLL_JITTER,
    CHRONY_REACH_BITS,
    LINUX_ARP_FAILURE_S,
    LINUX_TCP_SYN_TIMEOUT_LATEST_S,
    LINUX_TCP_SYN_TIMEOUT_S,
    NTPDRS_NETWORK_WAIT_S,
    NTPDRS_POLL_JITTER_MAX,
    NTPDRS_POLL_JITTER_MIN,
    NTPDRS_REACH_BITS,
    NTPSEC_KE_RETRY_S,
    NTPSEC_KE_TIMEOUT_S,
    NTPSEC_MINPKT_S,
    NTPSEC_POLL_JITTER,
    RFC_KE_FIRST_RETRY_S,
    RFC_KE_MAX_RETRY_S,
    RFC_KE_RETRY_FACTOR,
    ClientSpec,
)
from ansible_collections.ntsops.nts.plugins.module_utils._model.validate import RecoveryModelError

# Bound on how many re-resolution attempts the model walks before giving up.
MAX_ATTEMPTS = 100_000
# A score just below 1 (chrony's poll_score lies in [0, 1)).
_SCORE_BELOW_ONE = 1.0 - 1e-9


def gave_up(who: str = "the recovery model") -> RecoveryModelError:
    """The error for a walk over re-resolution attempts that does not end."""
    return RecoveryModelError(f"{who} gave up after too many re-resolution attempts")


class ChronySchedule:
    """chrony's poll times during an outage, relative to the first unanswered poll.

    ntp_core.c transmit_timeout(): a request with no answer to the previous one
    (tx_count >= 2) counts as a miss and calls adjust_poll(0.1 for the sync peer,
    0.25 otherwise); a poll with no cookie left (NAU_PrepareRequestAuth fails)
    counts as a miss and calls adjust_poll(0.25). adjust_poll() adds to a score in
    [0, 1) and raises the poll exponent by one when it reaches 1, up to maxpoll.
    The poll timer is restarted with the poll after those adjustments. The first
    ``burst`` intervals belong to the start-up burst: get_transmit_delay() makes them
    min(MAX_BURST_INTERVAL, MAX_BURST_POLL_RATIO * 2^poll).
    """

    def __init__(
        self,
        poll: int,
        maxpoll: int,
        cookies: int,
        *,
        score: float,
        sent_adj: float,
        jitter: float,
        burst: int = 0,
    ) -> None:
        self.first_interval = _interval(poll, jitter, burst > 0)
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
            if exponent >= maxpoll and self.empty_index and k > burst:
                break
            times.append(times[-1] + _interval(exponent, jitter, k <= burst))
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


def _interval(exponent: int, jitter: float, in_burst: bool) -> float:
    """One chrony poll interval (ntp_core.c get_transmit_delay()), stretched by ``jitter``."""
    interval = 2.0**exponent
    if in_burst:
        interval = min(CHRONY_MAX_BURST_INTERVAL_S, CHRONY_MAX_BURST_POLL_RATIO * interval)
    return interval * (1.0 + jitter)


def startup_burst_left(poll: int, since_start: float | None, latest: bool) -> int:
    """Bound on the start-up burst intervals still to come after the first lost request.

    ntp_core.c: iburst starts NCR_InitiateSampleBurst(IBURST_GOOD_SAMPLES,
    IBURST_TOTAL_SAMPLES) when the source goes online: up to 8 requests one burst
    interval apart, ended by the 4th good sample. A change during it leaves
    8 - 1 - sent intervals of the burst after the first lost request. Earliest (the
    most burst): nothing sent yet, as long as the start-up NTS-KE and the whole burst
    may not be over. Latest (the least): every request sent so far was answered, so
    the burst can only be over once 4 were; before that at most one request per burst
    interval has gone out.
    """
    if since_start is None:
        return 0
    step = _interval(poll, 0.0, True)
    if not latest:
        window = CHRONY_NTSKE_CLIENT_TIMEOUT_S + CHRONY_IBURST_TOTAL_SAMPLES * step * (1.0 + CHRONY_POLL_JITTER)
        return CHRONY_IBURST_TOTAL_SAMPLES - 1 if since_start < window else 0
    if since_start >= (CHRONY_IBURST_GOOD_SAMPLES - 1) * step:
        return 0
    sent = math.floor(since_start / step) + 1
    return max(0, CHRONY_IBURST_TOTAL_SAMPLES - 1 - sent)


@dataclass(frozen=True)
class Attempt:
    """One re-resolution: when it happens and when the client recovers if it is fresh."""

    at: float
    recovery: float
    ke: float = -1.0  # NTS-KE to the new address; -1 means at ``at``

    @property
    def ke_at(self) -> float:
        return self.at if self.ke < 0 else self.ke


class Plan:
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

    def old_ke_times(self, until: float) -> list[float]:
        """The NTS-KE connections the client opens to the OLD address before ``until``
        (plan time, exclusive) while every lookup still gives it the old address.

        By default each re-resolution attempt is one: the client resolves the name and
        connects to what it got (NTPsec's dns_probe(), ntpd-rs's key_exchange_client(),
        the RFC client). Failure at the old address is what makes the next attempt.
        """
        times = []
        for attempt in self.attempts():
            if attempt.at >= until:
                break
            times.append(attempt.at)
        return times


class ChronyPlan(Plan):
    """chrony: re-resolution when the reachability register is empty, then rate limited.

    sources.c SRC_UpdateReachability() calls NSR_HandleBadSource() at every poll while
    the 8-bit register is zero; ntp_sources.c NSR_HandleBadSource() postpones the
    replacement (4.3: 1792 s after the previous one; 4.4+: a uniform delay drawn
    after each one). After NCR_ChangeRemoteAddress()/NNC_ChangeAddress() the next poll
    runs NTS-KE to the new address and the poll after that is authenticated.
    ``holdoff_end`` (seconds after the change) is when a hold-off left by the process's
    previous replacement ends: no attempt before it. ``burst`` is the start-up burst
    intervals still to come (startup_burst_left()).
    """

    def __init__(
        self,
        spec: ClientSpec,
        poll: int,
        latest: bool,
        postpone: float,
        jitter: float | None = None,
        *,
        holdoff_end: float = 0.0,
        burst: int = 0,
    ) -> None:
        score = _SCORE_BELOW_ONE if latest else 0.0
        sent_adj = CHRONY_ADJ_OTHER if latest else CHRONY_ADJ_SYNC_PEER
        if jitter is None:
            jitter = CHRONY_POLL_JITTER if latest else 0.0
        self.schedule = ChronySchedule(
            poll, spec.maxpoll, spec.cookies, score=score, sent_adj=sent_adj, jitter=jitter, burst=burst
        )
        self.first_interval = self.schedule.first_interval
        self.postpone = postpone
        self.latest = latest
        self.cookies = spec.cookies
        self.ke_factor = CHRONY_KE_FACTOR[spec.ke_failure_at_old()]
        # The schedule counts from the first lost poll, which the latest plan puts one
        # first interval after the change.
        self.holdoff_end = holdoff_end - (self.first_interval if latest else 0.0)

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

    def _held_attempt(self) -> tuple[Attempt, int] | None:
        """The first attempt when a hold-off outlasts the empty register, else None.

        The lookup is the first poll at or after the hold-off's end. The earliest plan
        puts it at that end, the latest one a longest interval after it; both keep the
        usual two polls to recovery (the earliest with the shortest intervals left).
        """
        schedule, k = self.schedule, self.schedule.empty_index
        if self.holdoff_end <= schedule.time(k):
            return None
        if self.latest:
            step = schedule.steady_interval
            at = max(schedule.time(k), self.holdoff_end + step)
            return Attempt(at, at + 2 * step, at + step), schedule.first_index_at_or_after(at)
        at = self.holdoff_end
        first, second = schedule.time(k + 1) - schedule.time(k), schedule.time(k + 2) - schedule.time(k)
        return Attempt(at, at + second, at + first), schedule.first_index_at_or_after(at)

    def _next_index(self, k: int) -> int:
        return max(k + 1, self.schedule.first_index_at_or_after(self.schedule.time(k) + self.postpone))

    def old_ke_times(self, until: float) -> list[float]:
        """chrony's NTS-KE to its stored NTS-KE address (the old one) while it has no cookie.

        A lookup that returns the old address changes nothing (ntp_sources.c
        change_source_address(): NSR_AlreadyInUse), so the NTS-KE address stays old until
        the replacement that gets the new one. From the first poll with no cookie left,
        nts_ntp_client.c get_cookies() starts NTS-KE at a poll once next_nke_attempt has
        passed; update_next_nke_attempt() puts that 2^min(factor + n - 1, 19) s after the
        n-th attempt (factor 4 after a failed connection, 10 after a failed handshake).
        Against a dark address the attempt's session lasts up to CLIENT_TIMEOUT (16 s) and
        the wait counts from the last poll during it; the model counts it from the attempt.
        """
        schedule = self.schedule
        times: list[float] = []
        k, n = self.cookies + 1, 1
        for _attempt in range(MAX_ATTEMPTS):
            at = schedule.time(k)
            if at >= until:
                return times
            times.append(at)
            wait = 2.0 ** min(self.ke_factor + n - 1, CHRONY_KE_MAX_EXP)
            k = max(k + 1, schedule.first_index_at_or_after(at + wait))
            n += 1
        raise gave_up()

    def attempts(self, start: float = 0.0) -> Iterator[Attempt]:
        k = self.schedule.empty_index
        held = self._held_attempt()
        if held is not None:
            attempt, k = held
            if attempt.at >= start:
                yield attempt
            k = self._next_index(k)
        elif self.postpone == 0.0 and start > self.schedule.time(k):
            # With no postponement every poll is an attempt: jump straight there.
            k = max(k, self.schedule.first_index_at_or_after(start))
        for _attempt in range(MAX_ATTEMPTS):
            if self.schedule.time(k) >= start:
                yield self._attempt(k)
            k = self._next_index(k)
        raise gave_up()


class FixedPeriodPlan(Plan):
    """Attempts at ``first_at``, then every ``period``, each recovering at once when fresh.

    Subclasses set ``first_at`` and ``period``; NTPsec and ntpd-rs both retry NTS-KE on
    a fixed period with no back-off, so they share this walk.
    """

    first_at: float
    period: float

    def gap(self, n: int) -> float:
        return self.period

    def attempts(self, start: float = 0.0) -> Iterator[Attempt]:
        n = 0
        if start > self.first_at:
            n = math.ceil((start - self.first_at) / self.period - 1e-12)
        for _attempt in range(MAX_ATTEMPTS):
            at = self.first_at + n * self.period
            if at >= start:
                yield Attempt(at, at)
            n += 1
        raise gave_up()


class NtpsecPlan(FixedPeriodPlan):
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


class NtpdrsPlan(FixedPeriodPlan):
    """ntpd-rs 1.4: reset after 8 unanswered polls, then NTS-KE every second.

    ntp-proto/src/source.rs handle_timer() resets the source at the first timer that
    finds the 8-bit reach register empty (the 9th after the last answer, so 8 polls
    after the first unanswered one) or no cookie left (after ``cookies`` polls), also
    when the old address is unreachable: ntpd/src/daemon/ntp_source.rs restarts a
    source at once (MsgForSystem::NetworkIssue) only when send or recv itself returns
    EHOSTUNREACH/ENETUNREACH/EHOSTDOWN/ENETDOWN, which an ICMP or ARP failure never
    makes them do: Linux treats host and network unreachable as soft errors
    (net/ipv4/icmp.c icmp_err_convert), which a connected UDP socket without
    IP_RECVERR drops (udp.c __udp4_lib_err), and timestamped-socket 0.2.6
    connect_address() sets no IP_RECVERR (measured: reset after 8 polls, no socket
    error). On reset, spawn/mod.rs
    spawner_task() runs spawn/nts.rs try_spawn() at once: key_exchange_client()
    connects to (name, port), which resolves the name each time; a failed attempt is
    retried NETWORK_WAIT_PERIOD (1 s) after it returned, with no back-off; a connect to
    a dark address lasts the kernel's SYN timeout, one to an unreachable address up to
    the neighbour resolution's failure (an ICMP network unreachable from a router ends
    it at once). A fresh attempt creates a source
    that polls at once (ntp_source.rs: the first poll timer is zero), so recovery is
    at the attempt. NTS NAKs are ignored (source.rs is_kiss_ntsn).
    """

    def __init__(self, spec: ClientSpec, poll: int, latest: bool, jitter: float | None = None) -> None:
        if jitter is None:
            jitter = NTPDRS_POLL_JITTER_MAX if latest else NTPDRS_POLL_JITTER_MIN
        self.interval = 2.0**poll * (1.0 + jitter)
        self.first_interval = self.interval
        self.first_at = min(spec.cookies, NTPDRS_REACH_BITS) * self.interval
        connect = {
            "dark": LINUX_TCP_SYN_TIMEOUT_LATEST_S if latest else LINUX_TCP_SYN_TIMEOUT_S,
            "unreachable": LINUX_ARP_FAILURE_S if latest else 0.0,
        }
        self.period = connect.get(spec.old_address, 0.0) + NTPDRS_NETWORK_WAIT_S


class RfcPlan(Plan):
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
        for _attempt in range(MAX_ATTEMPTS):
            if at >= start:
                yield Attempt(at, at)
            at += wait
            wait = min(wait * RFC_KE_RETRY_FACTOR, RFC_KE_MAX_RETRY_S)
        raise gave_up()


def chrony_holdoff_end(spec: ClientSpec, latest: bool) -> float:
    """When the hold-off left by the process's previous replacement ends, after the change.

    ntp_sources.c NSR_HandleBadSource(): chrony 4.3 refuses a replacement within 1792 s
    of the previous one (last_replacement); 4.4+ draws the next allowed moment
    uniformly up to 3584 s after it (next_replacement), so its earliest case has no
    hold-off at all. Both are one static variable for the whole process.
    """
    if spec.since_last_replacement_s is None:
        return 0.0
    shortest, longest = spec.since_last_replacement_s
    if spec.client == "chrony-4.3":
        return max(0.0, CHRONY_43_REPLACEMENT_HOLDOFF_S - (shortest if latest else longest))
    return max(0.0, CHRONY_44_REPLACEMENT_POSTPONE_MAX_S - shortest) if latest else 0.0


def make_plan(
    spec: ClientSpec, poll: int, latest: bool, jitter: float | None = None, postpone: float | None = None
) -> Plan:
    """The attempt plan of ``spec`` running at ``poll``, under earliest or latest assumptions.

    ``jitter`` (fraction each poll interval is stretched by) and ``postpone`` (chrony
    4.4+'s replacement delay) override the extreme values; the simulator uses them.
    """
    if spec.client in ("chrony-4.3", "chrony-4.4+"):
        # The burst runs at minpoll: get_poll_adj() cannot raise the poll before sample 9.
        burst = startup_burst_left(poll, spec.since_start_s, latest) if poll == spec.minpoll else 0
        holdoff = chrony_holdoff_end(spec, latest)
        if spec.client == "chrony-4.3":
            return ChronyPlan(
                spec, poll, latest, CHRONY_43_REPLACEMENT_HOLDOFF_S, jitter, holdoff_end=holdoff, burst=burst
            )
        if postpone is None:
            postpone = CHRONY_44_REPLACEMENT_POSTPONE_MAX_S if latest else 0.0
        return ChronyPlan(spec, poll, latest, postpone, jitter, holdoff_end=holdoff, burst=burst)
    if spec.client == "ntpsec-1.2":
        return NtpsecPlan(spec, poll, latest, jitter)
    if spec.client == "ntpd-rs-1.4":
        return NtpdrsPlan(spec, poll, latest, jitter)
    return RfcPlan(spec, poll)
