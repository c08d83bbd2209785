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
)

CLIENTS: tuple[str, ...] = ("chrony-4.3", "chrony-4.4+", "ntpsec-1.2", "ntpd-rs-1.4", "rfc8915")
POLL_STATES: tuple[str, ...] = ("steady", "ramping")
# unreachable: the old address answers with ICMP host/network unreachable.
OLD_ADDRESS_BEHAVIOURS: tuple[str, ...] = ("dark", "refused", "other", "unreachable")
KE_FAILURES: tuple[str, ...] = ("connect", "tls")

# Largest number of clients a fleet description may give.
MAX_FLEET_CLIENTS = 1_000_000_000

# Keys a client description may carry besides the model inputs (fleet bookkeeping).
_EXTRA_CLIENT_KEYS = frozenset({"share", "name", "count"})
_CLIENT_KEYS = frozenset({"client", "minpoll", "maxpoll", "poll_state", "poll", "old_address", "cookies"})

# chrony: nts_ke.h NKE_MAX_COOKIES, sources.c SOURCE_REACH_BITS.
CHRONY_MAX_COOKIES = 8
CHRONY_REACH_BITS = 8
# chrony ntp_sources.c RESOLVE_INTERVAL_UNIT (seconds).
CHRONY_RESOLVE_INTERVAL_UNIT_S = 7
# chrony 4.3 ntp_sources.c: RESOLVE_INTERVAL_UNIT * 2^MIN_REPLACEMENT_INTERVAL.
CHRONY_43_REPLACEMENT_HOLDOFF_S = CHRONY_RESOLVE_INTERVAL_UNIT_S * 2**8
# chrony >= 4.4 ntp_sources.c: uniform in [0, RESOLVE_INTERVAL_UNIT * 2^MAX_REPLACEMENT_INTERVAL].
CHRONY_44_REPLACEMENT_POSTPONE_MAX_S = CHRONY_RESOLVE_INTERVAL_UNIT_S * 2**9
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
# timeout: Linux net.ipv4.tcp_syn_retries 6 with a 1 s initial RTO, 1 + 2 + ... + 64 s.
LINUX_TCP_SYN_TIMEOUT_S = 127.0

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
    return ClientSpec(str(name), minpoll, maxpoll, poll_state, poll, old_address, cookies)


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
