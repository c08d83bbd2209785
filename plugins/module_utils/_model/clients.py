# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The NTS clients the model knows: their daemon constants, behaviour table and descriptions.

Each constant names the daemon source file (or RFC) it is taken from;
docs/recovery-model.md explains how the model uses it. ``parse_client`` turns a
user's client description (a mapping, or just the client id) into a ClientSpec;
``parse_mix`` does the same for a client mix with shares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._model.validate import (
    RecoveryModelError,
    choice,
    fraction,
    integer,
    seconds,
)

CLIENTS: tuple[str, ...] = ("chrony-4.3", "chrony-4.4+", "ntpsec-1.2", "ntpd-rs-1.4", "rfc8915")
POLL_STATES: tuple[str, ...] = ("steady", "ramping")
# unreachable: the old address answers with ICMP host/network unreachable, or ARP fails.
OLD_ADDRESS_BEHAVIOURS: tuple[str, ...] = ("dark", "refused", "other", "unreachable")
KE_FAILURES: tuple[str, ...] = ("connect", "tls")

# Largest number of clients a fleet description may give.
MAX_FLEET_CLIENTS = 1_000_000_000

# Keys a client description may carry besides the model inputs (fleet bookkeeping).
_EXTRA_CLIENT_KEYS = frozenset({"share", "name", "count"})
_CLIENT_KEYS = frozenset(
    {
        "client",
        "minpoll",
        "maxpoll",
        "poll_state",
        "poll",
        "old_address",
        "cookies",
        "since_last_replacement_s",
        "since_start_s",
    }
)
# The inputs that describe one client process's recent history rather than its
# configuration (chrony only: see ClientSpec).
HISTORY_KEYS: tuple[str, ...] = ("since_last_replacement_s", "since_start_s")

# chrony: nts_ke.h NKE_MAX_COOKIES, sources.c SOURCE_REACH_BITS.
CHRONY_MAX_COOKIES = 8
CHRONY_REACH_BITS = 8
# chrony ntp_sources.c RESOLVE_INTERVAL_UNIT (seconds).
CHRONY_RESOLVE_INTERVAL_UNIT_S = 7
# chrony 4.3 ntp_sources.c: RESOLVE_INTERVAL_UNIT * 2^MIN_REPLACEMENT_INTERVAL.
CHRONY_43_REPLACEMENT_HOLDOFF_S = CHRONY_RESOLVE_INTERVAL_UNIT_S * 2**8
# chrony >= 4.4 ntp_sources.c: uniform in [0, RESOLVE_INTERVAL_UNIT * 2^MAX_REPLACEMENT_INTERVAL].
CHRONY_44_REPLACEMENT_POSTPONE_MAX_S = CHRONY_RESOLVE_INTERVAL_UNIT_S * 2**9
# chrony ntp_core.c MAX_BURST_INTERVAL, MAX_BURST_POLL_RATIO: a burst request follows
# the previous one after min(2 s, 2^poll / 4).
CHRONY_MAX_BURST_INTERVAL_S = 2.0
CHRONY_MAX_BURST_POLL_RATIO = 0.25
# chrony ntp_core.c IBURST_TOTAL_SAMPLES (= SOURCE_REACH_BITS) and IBURST_GOOD_SAMPLES:
# the start-up burst sends up to 8 requests and ends after 4 good samples.
CHRONY_IBURST_TOTAL_SAMPLES = 8
CHRONY_IBURST_GOOD_SAMPLES = 4
# chrony conf.c/ntp_core.c: the default polltarget. get_poll_adj() returns
# (samples / polltarget - 1) / polltarget, which is <= 0 up to polltarget samples and
# below 1 for the at most 64 samples sourcestats keeps (MAX_SAMPLES), so adjust_poll()
# raises the poll by at most one step per sample, and not before sample polltarget + 1.
CHRONY_DEFAULT_POLLTARGET = 8
# chrony nts_ke_client.c CLIENT_TIMEOUT: the longest a start-up NTS-KE can delay the
# first request.
CHRONY_NTSKE_CLIENT_TIMEOUT_S = 16.0
# chrony ntp_core.c SAMPLING_RANDOMNESS: every poll timer is stretched by U[1, 1.02].
CHRONY_POLL_JITTER = 0.02
# chrony ntp_core.c adjust_poll() increments while the source misses responses.
CHRONY_ADJ_SYNC_PEER = 0.1
CHRONY_ADJ_OTHER = 0.25
# chrony nts_ke.h NKE_RETRY_FACTOR2_CONNECT/TLS, NKE_MAX_RETRY_INTERVAL2.
CHRONY_KE_FACTOR = {"connect": 4, "tls": 10}
CHRONY_KE_MAX_EXP = 19
# chrony conf.c: the client's default ntsrefresh (4 weeks).
CHRONY_DEFAULT_NTSREFRESH_S = 2419200

# NTPsec include/nts.h NTS_MAX_COOKIES.
NTPSEC_MAX_COOKIES = 8
# NTPsec include/nts.h NTS_KE_TIMEOUT (connect timeout towards a dark address).
NTPSEC_KE_TIMEOUT_S = 3.0
# NTPsec ntp_proto.c dns_take_status(): after a failed lookup/NTS-KE the retry waits
# 2^min(max(hpoll, 8) + 4, 12) s, and hpoll <= 17 makes that 2^12 for every poll.
NTPSEC_KE_RETRY_S = 2.0**12
# NTPsec ntp_proto.c poll_update(): next = ((0x1000 | random & 0xff) << hpoll) >> 12.
NTPSEC_POLL_JITTER = 255 / 4096
# NTPsec include/ntp.h NTP_MINPKT: the guard poll_update() adds while throttled.
NTPSEC_MINPKT_S = 2.0

# Samples a source needs after the address change before it is selectable again, as
# (fewest, most); docs/recovery-model.md "Selectable again" gives the reasoning.
# chrony (4.3, 4.4 to 4.6.1): NCR_ChangeRemoteAddress() calls SRC_ResetInstance(),
# which drops the samples (sourcestats.c SST_ResetInstance: n_samples 0, regression_ok
# 0); SST_GetSelectionData() gives select_ok only once RGR_FindBestRegression()
# succeeded, and regress.c refuses fewer than MIN_SAMPLES_FOR_REGRESS (regress.h, 3).
CHRONY_SELECT_SAMPLES = (3, 3)
# NTPsec 1.2.3: the peer keeps its clock filter across dns_take_server() (no
# peer_clear()); ntp_proto.c peer_unfit() refuses it while the filter dispersion
# peer->disp (clock_filter(): stage i weighted 2^-(i+1), stages without a sample at
# MAXDISPERSE 16 s) is at or above sys_maxdist (MAXDISTANCE 1.5 s). With every stage
# at 16 s that takes 4 samples (16 * (2^-4 - 2^-8) = 0.94 s); with the pre-outage
# samples still in the filter, 1.
NTPSEC_SELECT_SAMPLES = (1, 4)
# The RFC 8915 reference client is assumed to use its first authenticated response.
RFC_SELECT_SAMPLES = (1, 1)
SELECT_SAMPLES: dict[str, tuple[int, int]] = {
    "chrony-4.3": CHRONY_SELECT_SAMPLES,
    "chrony-4.4+": CHRONY_SELECT_SAMPLES,
    "ntpsec-1.2": NTPSEC_SELECT_SAMPLES,
    "rfc8915": RFC_SELECT_SAMPLES,
}
# ntpd-rs 1.4.0 ntp-proto/src/cookiestash.rs MAX_COOKIES.
NTPDRS_MAX_COOKIES = 8
# ntpd-rs 1.4.0 ntp-proto/src/source.rs Reach: an 8-bit register shifted at every poll;
# handle_timer() resets the source when it is empty (after STARTUP_TRIES_THRESHOLD 3
# tries) or when no cookie is left.
NTPDRS_REACH_BITS = 8
# ntpd-rs 1.4.0 ntp-proto/src/source.rs handle_timer(): each poll timer is the poll
# interval times U[1.01, 1.05].
NTPDRS_POLL_JITTER_MIN = 0.01
NTPDRS_POLL_JITTER_MAX = 0.05
# ntpd-rs 1.4.0 ntpd/src/daemon/system.rs NETWORK_WAIT_PERIOD: spawn/mod.rs
# spawner_task() starts the next NTS-KE this long after the previous one returned.
NTPDRS_NETWORK_WAIT_S = 1.0
# ntpd-rs 1.4.0 ntpd/src/daemon/keyexchange.rs key_exchange_client(): the TCP connect
# has no timeout of its own, so towards a dark address it lasts the kernel's SYN
# timeout: Linux net.ipv4.tcp_syn_retries 6 with a 1 s initial RTO gives up once 127 s
# (1 + 2 + ... + 64) have passed, at the first retransmission timer after that: 127 s
# with exponential back-off; 131 s with tcp_syn_linear_timeouts (Linux 6.5+, default 4:
# RTOs 1, 1, 1, 1, 1, 2, 4, ... 64 s), and that last 64 s timer may fire up to an eighth
# late (kernel/time/timer.c wheel granularity): 131 + 8 = 139 s. Measured on Linux 6.18:
# 133.3 .. 135.3 s (benchmarks/ntpdrs_recovery.py).
LINUX_TCP_SYN_TIMEOUT_S = 127.0
LINUX_TCP_SYN_TIMEOUT_LATEST_S = 139.0
# Linux neighbour resolution (net.ipv4.neigh.default.mcast_solicit 3 probes,
# retrans_time_ms 1000): a connect or send to an address on the link that nobody
# answers ARP for fails with EHOSTUNREACH about 3 s later, and a last-hop router gives
# up as late before its ICMP host unreachable. Measured with ntpd-rs 1.4.0 clients
# (benchmarks/ntpdrs_recovery.py): each failed NTS-KE to such an address took 3.06 s.
LINUX_ARP_FAILURE_S = 3.1

# RFC 8915: servers send eight cookies.
RFC_COOKIES = 8
# RFC 8915's NTS-KE retry rule: retries start at >= 10 s, grow by >= 1.5, cap 5 days.
RFC_KE_FIRST_RETRY_S = 10.0
RFC_KE_RETRY_FACTOR = 1.5
RFC_KE_MAX_RETRY_S = 5 * 86400.0


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
    # The smallest stretch of a poll timer (ntpd-rs never polls early: U[1.01, 1.05]).
    poll_jitter_min: float = 0.0


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
    "ntpsec-1.2": ClientBehaviour("ntpsec-1.2", 0, 17, 6, 10, NTPSEC_MAX_COOKIES, NTPSEC_POLL_JITTER, "NTPsec 1.2"),
    # ntpd-rs 1.4.0 ntp-proto/src/time_types.rs PollIntervalLimits default 4..10; the
    # limits themselves are not bounded there, so the model takes RFC 5905's range.
    "ntpd-rs-1.4": ClientBehaviour(
        "ntpd-rs-1.4",
        0,
        17,
        4,
        10,
        NTPDRS_MAX_COOKIES,
        NTPDRS_POLL_JITTER_MAX,
        "ntpd-rs 1.4 (Debian 13)",
        NTPDRS_POLL_JITTER_MIN,
    ),
    # RFC 5905 poll range.
    "rfc8915": ClientBehaviour("rfc8915", 0, 17, 6, 10, RFC_COOKIES, 0.0, "RFC 8915 reference client"),
}


def behaviour_of(name: Any) -> ClientBehaviour:
    """The behaviour of client id ``name``."""
    if name not in BEHAVIOURS:
        raise RecoveryModelError(f"unknown client {name!r}; known clients: {', '.join(CLIENTS)}")
    return BEHAVIOURS[name]


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
    # chrony only. Seconds from the client process's last source replacement (any of
    # its sources; ntp_sources.c NSR_HandleBadSource() keeps one hold-off for the whole
    # process) to the change, as [shortest, longest]; None: none recently.
    since_last_replacement_s: tuple[float, float] | None = None
    # chrony only. Seconds from the client's start to the change; None: long ago
    # (the poll state then says where the poll is).
    since_start_s: float | None = None

    @property
    def behaviour(self) -> ClientBehaviour:
        return BEHAVIOURS[self.client]

    def poll_range(self) -> tuple[int, int]:
        """Lowest and highest poll exponent the client may be running at the change."""
        if self.poll is not None:
            return self.poll, self.poll
        if self.since_start_s is not None:
            return self.minpoll, startup_poll_cap(self.minpoll, self.maxpoll, self.since_start_s)
        if self.poll_state == "steady":
            return self.maxpoll, self.maxpoll
        return self.minpoll, self.maxpoll

    def ke_failure_at_old(self) -> str:
        """How NTS-KE to the old address fails (a KE_FAILURES value): an unrelated host
        answering TLS there fails the handshake; dark, refused or unreachable, the connection."""
        return "tls" if self.old_address == "other" else "connect"

    def polls(self) -> list[int]:
        """Every poll exponent the client may be running at the change."""
        low, high = self.poll_range()
        return list(range(low, high + 1))

    def poll_field(self) -> int | list[int]:
        """The poll as results report it: one exponent, or [lowest, highest]."""
        low, high = self.poll_range()
        return high if low == high else [low, high]


def _poll_bounds(client: Mapping[str, Any], behaviour: ClientBehaviour) -> tuple[int, int]:
    minpoll = integer(client.get("minpoll", behaviour.default_minpoll), "minpoll")
    maxpoll = integer(client.get("maxpoll", behaviour.default_maxpoll), "maxpoll")
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
    behaviour = behaviour_of(name)
    minpoll, maxpoll = _poll_bounds(client, behaviour)
    poll_state = choice(client.get("poll_state", "steady"), "poll_state", POLL_STATES)
    poll: int | None = None
    if client.get("poll") is not None:
        poll = integer(client["poll"], "poll")
        if not minpoll <= poll <= maxpoll:
            raise RecoveryModelError(f"poll {poll!r} must lie between minpoll {minpoll} and maxpoll {maxpoll}")
    old_address = choice(client.get("old_address", "dark"), "old_address", OLD_ADDRESS_BEHAVIOURS)
    cookies = integer(client.get("cookies", behaviour.max_cookies), "cookies")
    if not 0 <= cookies <= behaviour.max_cookies:
        raise RecoveryModelError(f"cookies {cookies!r} is outside 0..{behaviour.max_cookies} for {name}")
    since_replacement = _since_last_replacement(client.get("since_last_replacement_s"))
    since_start = None
    if client.get("since_start_s") is not None:
        since_start = seconds(client["since_start_s"], "since_start_s")
    if (since_replacement is not None or since_start is not None) and not str(name).startswith("chrony"):
        raise RecoveryModelError(
            f"since_last_replacement_s and since_start_s describe chrony's process-wide replacement hold-off and "
            f"start-up burst; {name} has neither (leave them out for it)"
        )
    return ClientSpec(
        str(name), minpoll, maxpoll, poll_state, poll, old_address, cookies, since_replacement, since_start
    )


def _since_last_replacement(value: Any) -> tuple[float, float] | None:
    """A duration, or [shortest, longest] when only a window is known; None stays None."""
    if value is None:
        return None
    what = "since_last_replacement_s"
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        if len(value) != 2:
            raise RecoveryModelError(f"{what} must be a number of seconds or [shortest, longest], got {value!r}")
        low, high = seconds(value[0], what), seconds(value[1], what)
        if low > high:
            raise RecoveryModelError(f"{what} [shortest, longest] must not run backwards, got {value!r}")
        return low, high
    one = seconds(value, what)
    return one, one


def startup_poll_cap(minpoll: int, maxpoll: int, since_start: float) -> int:
    """The highest poll exponent chrony can have reached ``since_start`` s after its start.

    ntp_core.c: the source starts at minpoll; get_poll_adj() keeps it there until more
    than polltarget samples are held and then raises it by at most one step per sample
    (see CHRONY_DEFAULT_POLLTARGET). Counting the start-up burst's good samples as taken
    at once makes this an upper bound.
    """
    exponent, samples, elapsed = minpoll, CHRONY_IBURST_GOOD_SAMPLES, 0.0
    while exponent < maxpoll:
        elapsed += 2.0**exponent
        if elapsed > since_start:
            break
        samples += 1
        if samples > CHRONY_DEFAULT_POLLTARGET:
            exponent += 1
    return exponent


def client_list(clients: Any, what: str) -> Sequence[Any]:
    """A non-empty list of client descriptions; one mapping counts as a list of one."""
    if isinstance(clients, Mapping):
        clients = [clients]
    if isinstance(clients, str | bytes) or not isinstance(clients, Sequence) or not clients:
        raise RecoveryModelError(f"{what} must be a non-empty list of client mappings, got {clients!r}")
    return clients


def parse_mix(client_mix: Any) -> list[tuple[ClientSpec, float]]:
    """A client mix as (spec, share) pairs; entries without ``share`` split what is left."""
    entries = client_list([client_mix] if isinstance(client_mix, str) else client_mix, "client_mix")
    specs, shares = [], []
    for entry in entries:
        specs.append(parse_client(entry))
        share = entry.get("share") if isinstance(entry, Mapping) else None
        shares.append(None if share is None else fraction(share, "share"))
    given = sum(share for share in shares if share is not None)
    missing = [i for i, share in enumerate(shares) if share is None]
    if given > 1.0 + 1e-9 or (not missing and abs(given - 1.0) > 1e-6):
        raise RecoveryModelError(f"the shares of client_mix must add up to 1, got {given:g}")
    rest = (1.0 - given) / len(missing) if missing else 0.0
    return [(spec, rest if share is None else share) for spec, share in zip(specs, shares, strict=True)]
