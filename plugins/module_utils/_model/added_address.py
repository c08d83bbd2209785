# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Addresses added to an NTS server's name: when does each client kind start using one?

A second A record (or an AAAA beside the A) appears while every client already
polls the address it resolved. Whether and when a client ever uses the added one
depends on what makes it look the name up again and which address of the answer it
then takes. The rules below name the daemon source they come from
(docs/recovery-model.md, "Added addresses"); times reuse recovery.py (the current
address failing) and move_client.py (a planned move).

Private to the ntsops.nts collection: not a public API, may change in any release.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._model.clients import (
    CHRONY_POLL_JITTER,
    NTPSEC_KE_RETRY_S,
    ClientSpec,
    client_list,
    parse_client,
)
from ansible_collections.ntsops.nts.plugins.module_utils._model.move_client import planned_move_client
from ansible_collections.ntsops.nts.plugins.module_utils._model.recovery import duration, recovery_time
from ansible_collections.ntsops.nts.plugins.module_utils._model.validate import (
    RecoveryModelError,
    boolean,
    choice,
)

# The moments at which a client could start using the added address, in the order a
# report lists them.
TRIGGERS: tuple[str, ...] = ("current_answers", "refresh", "current_fails", "restart", "planned_move")
# never: not at this trigger; always: whenever the added address is usable; if_first:
# only when the added address comes first in the answer it gets; unavailable: the
# client kind has no such trigger.
# How a summary names each trigger.
TRIGGER_WORDS: dict[str, str] = {
    "current_answers": "any time",
    "refresh": "`chronyc refresh`",
    "current_fails": "the failure of its current address (chance {chance:g})",
    "restart": "a restart (chance {chance:g})",
    "planned_move": "a planned move",
}
VERDICTS: tuple[str, ...] = ("never", "always", "if_first", "unavailable")
FAMILIES: tuple[str, ...] = ("ipv4", "ipv6")
# The order in which the client's resolver returns two addresses of one family:
# random (a server or resolver that shuffles or rotates the records), or fixed.
ORDERS: tuple[str, ...] = ("random", "added_first", "current_first")
SERVERS: tuple[str, ...] = ("chrony", "ntpsec")
ADDED_CLIENTS: tuple[str, ...] = ("chrony-4.3", "chrony-4.4+", "ntpsec-1.2", "ntpd-rs-1.4")

# Where each rule comes from (docs/recovery-model.md explains them).
SRC_CHRONY_BAD_SOURCE = (
    "chrony sources.c SRC_UpdateReachability() calls ntp_sources.c NSR_HandleBadSource() only while the "
    "reachability register is empty"
)
SRC_CHRONY_43_REPLACE = (
    "chrony 4.3 ntp_sources.c process_resolved_name(): change_source_address() refuses the address the source "
    "already has (find_slot2() == 2, NSR_AlreadyInUse), so the next address of the answer replaces it"
)
SRC_CHRONY_44_FRESH = (
    "chrony 4.4+ ntp_sources.c process_resolved_name(): a refreshment returns early ('still fresh') while the "
    "current address is in the answer"
)
SRC_CHRONY_44_REPLACE = (
    "chrony 4.4+ ntp_sources.c resolve_source_replacement() (random_order 1) and process_resolved_name(): the "
    "current address is NSR_AlreadyInUse, so another address of the answer replaces it"
)
SRC_CHRONY_START = (
    "chrony ntp_sources.c NSR_AddSourceByName() (random_order 0) and process_resolved_name(): the first "
    "connectable address of the answer, in the resolver's order (nameserv.c DNS_Name2IPAddress(), AF_UNSPEC)"
)
SRC_CHRONY_FAMILY = (
    "chrony ntp_sources.c replace_source_connectable(): NIO_IsServerConnectable() skips an address the client "
    "cannot reach"
)
SRC_NTPSEC_COOKIES = (
    "NTPsec 1.2 ntp_proto.c transmit(): NTS-KE (and its lookup) only in restart_nts_ke(), when the cookies run "
    "out; every valid response brings a fresh cookie"
)
SRC_NTPSEC_LOOKUP = (
    "NTPsec 1.2 nts_client.c open_TCP_socket(): getaddrinfo() with ai_family AF(&peer->srcadr) (the current "
    "address's family), and find_best_addr() returns the first answer, even the address that just failed; "
    "ntp_proto.c dns_take_status() retries a failed NTS-KE after 4096 s"
)
SRC_NTPSEC_START = (
    "NTPsec 1.2 ntp_config.c config_peers(): a server name starts with an AF_UNSPEC address, so "
    "nts_client.c open_TCP_socket() takes the first answer of either family"
)
SRC_NTPSEC_NO_REFRESH = "NTPsec 1.2 has no command or option that looks a server's name up again"
SRC_NTPDRS_RESET = (
    "ntpd-rs 1.4.0 ntp-proto/src/source.rs handle_timer(): a source is reset only when its reach register is "
    "empty or its cookies are gone; the spawner never looks the name up otherwise"
)
SRC_NTPDRS_SPAWN = (
    "ntpd-rs 1.4.0 ntpd/src/daemon/keyexchange.rs key_exchange_client(): TcpStream::connect() tries the "
    "answer's addresses in order until one connects; spawn/nts.rs try_spawn()/resolve_addr() then sends NTP "
    "to the FIRST address of a second lookup (or of the negotiated server)"
)
SRC_NTPDRS_NO_REFRESH = "ntpd-rs 1.4.0 ntpd/src/ctl.rs: ntp-ctl knows validate, status and force-sync only"
SRC_PLANNED_MOVE = (
    "move_client.py: the server (chrony, ntsntpserver) announces the added address by Server Negotiation and "
    "replaces its cookie keys"
)
SRC_GAI_ORDER = (
    "glibc getaddrinfo() sorts by RFC 6724 (gai.conf): IPv6 before IPv4 when the client has a usable IPv6 "
    "source address"
)
# chrony 4.3 and NTPsec 1.2.2 answers are measured in tests/integration/test_added_address.py.
MEASURED_BY = "tests/integration/test_added_address.py"


@dataclass(frozen=True)
class Situation:
    """What the operator knows about the added address and the clients' network."""

    added_family: str
    current_family: str
    client_families: tuple[str, ...]
    order: str
    server: str
    refresh: bool

    @property
    def same_family(self) -> bool:
        return self.added_family == self.current_family

    @property
    def usable(self) -> bool:
        return self.added_family in self.client_families

    def first_chance(self) -> float:
        """Chance that the added address comes first in one lookup's answer.

        Across families getaddrinfo's RFC 6724 sort decides, not the DNS order: IPv6
        first when the client can use it. Within a family the resolver's order does.
        """
        if not self.usable:
            return 0.0
        if not self.same_family:
            if "ipv6" in self.client_families and "ipv4" in self.client_families:
                return 1.0 if self.added_family == "ipv6" else 0.0
            return 1.0
        return {"random": 0.5, "added_first": 1.0, "current_first": 0.0}[self.order]


def situation(
    *,
    added_family: Any = "ipv4",
    current_family: Any = "ipv4",
    client_families: Any = ("ipv4", "ipv6"),
    order: Any = "random",
    server: Any = "chrony",
    refresh: Any = False,
) -> Situation:
    """Validate the inputs shared by every client kind."""
    added = choice(added_family, "added_family", FAMILIES)
    current = choice(current_family, "current_family", FAMILIES)
    if isinstance(client_families, str) or not isinstance(client_families, list | tuple) or not client_families:
        raise RecoveryModelError(f"client_families must be a non-empty list of ipv4/ipv6, got {client_families!r}")
    families = tuple(sorted({choice(f, "client_families entry", FAMILIES) for f in client_families}))
    if current not in families:
        raise RecoveryModelError(
            f"current_family {current!r} is not among client_families {list(families)!r}: the client could not "
            f"be using it"
        )
    return Situation(
        added,
        current,
        families,
        choice(order, "order", ORDERS),
        choice(server, "server", SERVERS),
        boolean(refresh, "refresh"),
    )


def _answer(
    verdict: str,
    chance: float,
    source: str,
    when: str,
    *,
    earliest: float | None = None,
    latest: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    chance = chance if verdict in ("always", "if_first") else 0.0
    timed = chance > 0
    if verdict == "if_first" and not timed:
        when = "never here: the added address does not come first in the answer"
    elif verdict == "never":
        when = f"never ({when})"
    return {
        "uses_added": verdict,
        "chance": chance,
        "earliest_s": earliest if timed else None,
        "latest_s": latest if timed else None,
        "when": when,
        "source": source,
        **extra,
    }


def _never(source: str, why: str) -> dict[str, Any]:
    return _answer("never", 0.0, source, why)


def _restart(start_source: str, where: Situation) -> dict[str, Any]:
    """At start-up a client takes the answer's first address it can reach."""
    chance = where.first_chance()
    return _answer(
        "if_first",
        chance,
        start_source + ("" if where.same_family else f"; {SRC_GAI_ORDER}"),
        f"at start-up, when the added address comes first in the answer (chance {chance:g})",
        earliest=0.0,
        latest=0.0,
    )


def _chrony_refresh_poll_times(spec: ClientSpec) -> tuple[float, float]:
    """From a replacement to the first authenticated response at the new address.

    NCR_ChangeRemoteAddress()/NNC_ChangeAddress() leave the poll timer alone: the next
    poll runs NTS-KE to the new address, the one after sends the first request
    (docs/recovery-model.md, rule 5). The refresh can come just before a poll.
    """
    low, high = spec.poll_range()
    return 2.0**low, 2 * 2.0**high * (1.0 + CHRONY_POLL_JITTER)


def _current_fails(spec: ClientSpec) -> tuple[float, float]:
    """The unplanned timeline with the added address already in DNS (nothing stale)."""
    result = recovery_time(asdict(spec), ttl=0, update_latency=0)
    return result["minimum_recovery_earliest_s"], result["minimum_recovery_latest_s"]


def _planned(spec: ClientSpec, where: Situation) -> dict[str, Any]:
    if where.server != "chrony":
        return _answer(
            "unavailable",
            0.0,
            "NTPsec servers send no Server Negotiation record (nts_server.c)",
            "no planned move: an NTPsec server cannot announce another address",
        )
    if not where.usable or (spec.client == "ntpsec-1.2" and not where.same_family):
        # NTPsec resolves a negotiated server name in the current family only
        # (nts_client.c nts_server_lookup(..., AF(&peer->srcadr))).
        return _never(SRC_PLANNED_MOVE, "the announced address is of a family the client does not use")
    move = planned_move_client(asdict(spec))
    early, late = move["first_auth_new_earliest_s"], move["first_auth_new_latest_s"]
    if move["path"] == "nak":
        when = f"about 2 polls after the key change ({duration(early)} to {duration(late)})"
    else:
        when = (
            f"once its cookies are spent on NAK'd requests, then by Server Negotiation "
            f"({duration(early)} to {duration(late)} after the key change)"
        )
    return _answer(
        "always", 1.0, SRC_PLANNED_MOVE, when, earliest=early, latest=late, ke_address_after=move["ke_address_after"]
    )


def _chrony(spec: ClientSpec, where: Situation) -> dict[str, dict[str, Any]]:
    answers: dict[str, dict[str, Any]] = {}
    v44 = spec.client == "chrony-4.4+"
    if v44:
        answers["current_answers"] = _never(
            f"{SRC_CHRONY_BAD_SOURCE}; the refresh option (default 2 weeks, maybe_refresh_source()) is a "
            f"refreshment: {SRC_CHRONY_44_FRESH}",
            "while the current address answers and stays in DNS",
        )
        answers["refresh"] = _never(SRC_CHRONY_44_FRESH, "the current address is still in the answer")
    else:
        answers["current_answers"] = _never(
            f"{SRC_CHRONY_BAD_SOURCE}; chrony 4.3 has no refresh option",
            "while the current address answers",
        )
        if where.usable:
            early, late = _chrony_refresh_poll_times(spec)
            answers["refresh"] = _answer(
                "always",
                1.0,
                f"chronyc refresh: ntp_sources.c NSR_RefreshAddresses(); {SRC_CHRONY_43_REPLACE}",
                f"at the next poll after `chronyc refresh` NTS-KE to the added address, authenticated the poll after "
                f"({duration(early)} to {duration(late)})",
                earliest=early,
                latest=late,
            )
        else:
            answers["refresh"] = _never(SRC_CHRONY_FAMILY, "the client cannot reach the added address's family")
    if where.usable:
        early, late = _current_fails(spec)
        answers["current_fails"] = _answer(
            "always",
            1.0,
            f"{SRC_CHRONY_BAD_SOURCE}; {SRC_CHRONY_44_REPLACE if v44 else SRC_CHRONY_43_REPLACE}; "
            f"nts_ntp_client.c NNC_ChangeAddress() reloads cookies saved in ntsdumpdir for the added address",
            f"the unplanned timeline: looked up again 8 to 9 polls after the current address fails, authenticated "
            f"{duration(early)} to {duration(late)} after it (replacement hold-off permitting)",
            earliest=early,
            latest=late,
        )
        answers["restart"] = _restart(SRC_CHRONY_START, where)
    else:
        answers["current_fails"] = _never(SRC_CHRONY_FAMILY, "the client cannot reach the added address's family")
        answers["restart"] = _never(SRC_CHRONY_FAMILY, "the client cannot reach the added address's family")
    answers["planned_move"] = _planned(spec, where)
    return answers


def _ntpsec(spec: ClientSpec, where: Situation) -> dict[str, dict[str, Any]]:
    answers: dict[str, dict[str, Any]] = {
        "current_answers": _never(SRC_NTPSEC_COOKIES, "while the current address answers"),
        "refresh": _answer("unavailable", 0.0, SRC_NTPSEC_NO_REFRESH, "no such command"),
    }
    if where.usable and where.same_family:
        early, late = _current_fails(spec)
        chance = where.first_chance()
        answers["current_fails"] = _answer(
            "if_first",
            chance,
            SRC_NTPSEC_LOOKUP,
            f"when its cookies run out, if the added address comes first in the answer (chance {chance:g} per "
            f"attempt): authenticated {duration(early)} to {duration(late)} after the current address fails; "
            f"otherwise it re-keys at the failed address and tries again {NTPSEC_KE_RETRY_S:.0f} s later",
            earliest=early,
            latest=late,
            retry_s=NTPSEC_KE_RETRY_S,
        )
    else:
        answers["current_fails"] = _never(SRC_NTPSEC_LOOKUP, "it looks up only the current address's family")
    if where.usable:
        answers["restart"] = _restart(SRC_NTPSEC_START, where)
    else:
        answers["restart"] = _never(SRC_NTPSEC_START, "the client cannot reach the added address's family")
    answers["planned_move"] = _planned(spec, where)
    return answers


def _ntpdrs(spec: ClientSpec, where: Situation) -> dict[str, dict[str, Any]]:
    answers: dict[str, dict[str, Any]] = {
        "current_answers": _never(SRC_NTPDRS_RESET, "while the current address answers"),
        "refresh": _answer("unavailable", 0.0, SRC_NTPDRS_NO_REFRESH, "no such command"),
    }
    chance = where.first_chance()
    family_note = "" if where.same_family else f"; {SRC_GAI_ORDER}"
    if where.usable:
        early, late = _current_fails(spec)
        answers["current_fails"] = _answer(
            "if_first",
            chance,
            f"{SRC_NTPDRS_RESET}; {SRC_NTPDRS_SPAWN}{family_note}",
            f"at the source reset, if the added address comes first in the NTP lookup (chance {chance:g} per "
            f"reset; NTS-KE itself reaches it either way): authenticated {duration(early)} to {duration(late)} "
            f"after the current address fails",
            earliest=early,
            latest=late,
        )
        answers["restart"] = _restart(SRC_NTPDRS_SPAWN, where)
    else:
        answers["current_fails"] = _never(SRC_NTPDRS_SPAWN, "the client cannot reach the added address's family")
        answers["restart"] = _never(SRC_NTPDRS_SPAWN, "the client cannot reach the added address's family")
    answers["planned_move"] = _planned(spec, where)
    return answers


def added_address_client(client: Mapping[str, Any] | str, where: Situation) -> dict[str, Any]:
    """When one client kind starts using the added address, per trigger (TRIGGERS).

    Each trigger's answer: ``uses_added`` (a VERDICTS value), ``chance`` (that it takes
    the added address at that trigger, 0..1), ``earliest_s``/``latest_s`` (seconds from
    the trigger to its first authenticated response from the added address; 0 for a
    restart, None when it does not), ``when`` (one line) and ``source`` (the daemon code).
    """
    spec = parse_client(client)
    if spec.client not in ADDED_CLIENTS:
        raise RecoveryModelError(
            f"no added-address rule for {spec.client}: RFC 8915 does not say which address a client takes; "
            f"known: {', '.join(ADDED_CLIENTS)}"
        )
    if spec.client.startswith("chrony"):
        answers = _chrony(spec, where)
    elif spec.client == "ntpsec-1.2":
        answers = _ntpsec(spec, where)
    else:
        answers = _ntpdrs(spec, where)
    answers = {trigger: answers[trigger] for trigger in TRIGGERS}
    by_itself = answers["current_answers"]["chance"] > 0 or (where.refresh and answers["refresh"]["chance"] > 0)
    moves_with = [trigger for trigger in TRIGGERS if answers[trigger]["chance"] > 0]
    if by_itself:
        summary = "moves to the added address by itself"
    elif moves_with:
        summary = "never uses the added address while the current one answers; it may take it at " + ", ".join(
            TRIGGER_WORDS[trigger].format(chance=answers[trigger]["chance"]) for trigger in moves_with
        )
    else:
        summary = "never uses the added address"
    return {
        "client": spec.client,
        "poll": spec.poll_field(),
        "triggers": answers,
        "moves_by_itself": by_itself,
        "moves_with": moves_with,
        "summary": f"{spec.behaviour.description} {summary}.",
    }


def added_address(
    clients: Any,
    *,
    added_family: Any = "ipv4",
    current_family: Any = "ipv4",
    client_families: Any = ("ipv4", "ipv6"),
    order: Any = "random",
    server: Any = "chrony",
    refresh: Any = False,
) -> dict[str, Any]:
    """When each client kind of a fleet starts using an address added to the server's name.

    ``added_family``/``current_family``: the family of the added address and of the one
    the clients use now; ``client_families``: the families the clients can reach;
    ``order``: how their resolver orders two addresses of one family (ORDERS);
    ``server``: the server implementation (a planned move needs chrony); ``refresh``:
    the operator will run ``chronyc refresh`` on the clients.

    Returns ``clients`` (one added_address_client() result per entry), ``stuck`` (the
    client kinds that never move by themselves while the current address answers),
    ``moves_by_itself`` (no kind is stuck) and ``reasons`` (one line per stuck kind).
    """
    where = situation(
        added_family=added_family,
        current_family=current_family,
        client_families=client_families,
        order=order,
        server=server,
        refresh=refresh,
    )
    # A client id alone counts as a fleet of one, as one mapping does (client_list).
    fleet = [clients] if isinstance(clients, str) else clients
    results = [added_address_client(client, where) for client in client_list(fleet, "clients")]
    stuck = [result for result in results if not result["moves_by_itself"]]
    return {
        "clients": results,
        "stuck": sorted({result["client"] for result in stuck}),
        "moves_by_itself": not stuck,
        "reasons": [result["summary"] for result in stuck],
        "situation": asdict(where) | {"client_families": list(where.client_families)},
    }
