# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan of a planned address change of an NTS server.

A chrony server can move its clients itself: it keeps answering on the old address,
announces the new NTP address by NTS-KE Server Negotiation (``ntsntpserver``) and
replaces its cookie keys, so every chrony client gets an NTS NAK, re-keys and sends
its NTP requests to the new address two polls later. NTPsec servers cannot send
Server Negotiation, so they take the DNS-only path (the old address goes dark once
DNS is fresh). ``planned_move_plan()`` lists the steps with the expected time of
each, the per-client prediction (move_client.py for the NAK path, recovery.py for
the DNS path) and the constraint on the old address's NTS-KE
(docs/recovery-model.md, "Planned move").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._model.clients import (
    CHRONY_DEFAULT_NTSREFRESH_S,
    MAX_FLEET_CLIENTS,
    client_list,
    parse_client,
)
from ansible_collections.ntsops.nts.plugins.module_utils._model.move_client import planned_move_client
from ansible_collections.ntsops.nts.plugins.module_utils._model.recovery import max_ttl, recovery_time
from ansible_collections.ntsops.nts.plugins.module_utils._model.validate import (
    boolean,
    choice,
    number,
    seconds,
)

SERVERS: tuple[str, ...] = ("chrony", "ntpsec")
# Polls of the slowest client between staging a new cookie key and dropping the old.
STAGE_WAIT_POLLS = 1.05
# Longest client ntsrefresh the plan accepts: ten years.
_MAX_NTSREFRESH_S = 10 * 365 * 86400.0


def _fleet_clients(fleet: Any) -> list[tuple[dict[str, Any], float | None]]:
    """The fleet as (client description, expected count or None).

    Accepts a list of client descriptions (as ``max_ttl`` does) or a fleet mapping as
    ``server_recommendation`` takes it (``client_mix`` with ``share`` and optional
    ``expected_clients``).
    """
    if isinstance(fleet, Mapping) and "client_mix" in fleet:
        mix = client_list(fleet["client_mix"], "client_mix")
        expected = fleet.get("expected_clients")
        total = None if expected is None else number(expected, "expected_clients", MAX_FLEET_CLIENTS)
        shares = [number(item.get("share", 1.0), "share") if isinstance(item, Mapping) else 1.0 for item in mix]
        weight = sum(shares) or 1.0
        return [
            (dict(item) if isinstance(item, Mapping) else {"client": item},
             None if total is None else total * share / weight)
            for item, share in zip(mix, shares, strict=True)
        ]
    clients = []
    for item in client_list(fleet, "fleet"):
        description = dict(item) if isinstance(item, Mapping) else {"client": item}
        count = description.get("count")
        clients.append((description, None if count is None else number(count, "count", MAX_FLEET_CLIENTS)))
    return clients


def _label(description: Mapping[str, Any]) -> str:
    spec = parse_client(description)
    low, high = spec.poll_range()
    poll = f"poll {high}" if low == high else f"poll {low}..{high}"
    return str(description.get("name") or f"{spec.client} {poll}")


def _step(step: str, action: str, expected_s: float | None, note: str) -> dict[str, Any]:
    return {"step": step, "action": action, "expected_s": expected_s, "note": note}


def _old_ke(
    server: str,
    clients: list[tuple[dict[str, Any], float | None]],
    nak_clients: list[dict[str, Any]],
    *,
    ntp_address_differs: bool,
    watch: float,
    refresh: float,
) -> dict[str, Any]:
    """Whether, why and how long the old address must keep answering NTS-KE."""
    if nak_clients and not ntp_address_differs:
        return {
            "required": True,
            "keep_s": None,
            "until": "every chrony client moved by the NAK has restarted (or re-resolved the name)",
            "reason": (
                "A chrony client moved by the NAK keeps the OLD address as its NTS-KE address. At its next NTS-KE "
                f"(ntsrefresh, default {CHRONY_DEFAULT_NTSREFRESH_S} s = 4 weeks) it connects there; if nothing "
                "answers, it loses reachability, resolves the name, gets the address it already uses for NTP, "
                "changes nothing and stays unsynchronised (docs/recovery-model.md, 'The trap'; chrony "
                "ntp_sources.c change_source_address() refuses the address the source already has)."
            ),
            "retire_when": (
                f"no NTS-KE connection has reached the old address for at least one client ntsrefresh "
                f"({refresh:g} s): a moved client re-keys there once per ntsrefresh"
            ),
            "refresh_cost_s": None,
        }
    if nak_clients:
        # The moved client's NTS-KE at ntsrefresh fails: no cookie from that poll on,
        # so the unplanned timeline with no cookie left gives its cost.
        costs = [
            recovery_time(asdict(parse_client(description)) | {"cookies": 0}, ttl=0, update_latency=0)
            for description, _count in clients
            if parse_client(description).client.startswith("chrony")
        ]
        cost = max(c["minimum_recovery_latest_s"] for c in costs) if costs else 0.0
        return {
            "required": False,
            "keep_s": watch,
            "until": "the watch ends",
            "reason": (
                "ntsntpserver announces an address the name will not resolve to, so a moved chrony client whose "
                "NTS-KE to the old address fails loses reachability, resolves the name, gets a DIFFERENT address "
                "and re-keys there. That costs it one unplanned recovery at its next NTS-KE (ntsrefresh)."
            ),
            "retire_when": "after the watch",
            "refresh_cost_s": cost,
        }
    return {
        "required": False,
        "keep_s": 0.0 if server == "ntpsec" else watch,
        "until": "the watch ends",
        "reason": "No client keeps the old address as its NTS-KE address.",
        "retire_when": "after the watch",
        "refresh_cost_s": None,
    }


def planned_move_plan(
    server: str,
    fleet: Any,
    ttl: float,
    update_latency: float,
    *,
    old_ttl: float | None = None,
    restart_s: float = 5.0,
    ntp_address_differs: bool = False,
    ntsrefresh_s: float = CHRONY_DEFAULT_NTSREFRESH_S,
) -> dict[str, Any]:
    """The steps of a planned move of ``server`` (``chrony`` or ``ntpsec``) serving ``fleet``.

    ``ttl``: the record TTL during the move; ``old_ttl``: the TTL before it (the plan
    waits that long after lowering it, default ``ttl``); ``update_latency``: seconds
    from the DNS update until the authoritative servers answer with the new address;
    ``restart_s``: time one server restart takes. ``ntp_address_differs``: the address
    announced by ``ntsntpserver`` is not the one the name will resolve to (then the old
    address may be retired right after the move, at a cost measured in polls at each
    moved chrony client's next NTS-KE, see ``old_ke``).

    Returns ``server``, ``path`` (``negotiation`` or ``dns_only``), ``steps`` (each with
    ``step``, ``action``, ``expected_s`` (None: open-ended) and ``note``),
    ``move_expected_s`` (sum of the timed steps), ``watch_s`` (how long to watch
    clients after the switch), ``clients`` (per client: the recovery model's
    prediction), ``ke_burst`` (when the old address receives the NTS-KE burst, and how
    many clients, when the fleet says), ``ttl_budget_s`` (the largest TTL that keeps an
    unplanned loss of the old address at minimum recovery), ``ttl_within_budget``, and
    ``old_ke`` (whether, why and how long the old address must keep answering NTS-KE).
    """
    choice(server, "server", SERVERS)
    clients = _fleet_clients(fleet)
    ttl_s = seconds(ttl, "ttl")
    latency_s = seconds(update_latency, "update_latency")
    old_ttl_s = ttl_s if old_ttl is None else seconds(old_ttl, "old_ttl")
    restart = seconds(restart_s, "restart_s", 3600)
    refresh = seconds(ntsrefresh_s, "ntsrefresh_s", _MAX_NTSREFRESH_S)
    boolean(ntp_address_differs, "ntp_address_differs")
    budget = max_ttl([description for description, _count in clients], latency_s)
    fresh_wait = latency_s + ttl_s
    # Resolvers may hold a record fetched just before the change for a whole old TTL.
    ttl_wait = old_ttl_s if old_ttl_s > ttl_s else 0.0

    steps = [
        _step(
            "lower_ttl",
            f"Lower the TTL of the server name's records from {old_ttl_s:g} s to {ttl_s:g} s",
            ttl_wait,
            "Wait one old TTL so that no resolver still holds a record with the old TTL.",
        ),
        _step(
            "add_address",
            "Bring up the new address(es) beside the old one; the server answers on both",
            restart,
            "chrony: no bindaddress limited to the old address (a restart re-binds).",
        ),
    ]
    predictions: list[dict[str, Any]] = []
    if server == "chrony":
        path = "negotiation"
        steps.append(
            _step(
                "announce",
                "Set ntsntpserver to the new address and restart chronyd keeping its cookie keys (ntsdumpdir)",
                restart,
                "No client is NAKed yet; clients that re-key from now on get the new NTP address.",
            )
        )
        steps.append(
            _step(
                "update_dns",
                "Point the name at the new address and wait until every resolver returns it",
                fresh_wait,
                "update latency + TTL: NTPsec clients look the name up when their cookies run out, "
                "new and restarted clients at start.",
            )
        )
        for description, count in clients:
            prediction = planned_move_client(description, dns_fresh_s=0.0)
            prediction["name"] = _label(description)
            prediction["count"] = count
            predictions.append(prediction)
        nak_clients = [p for p in predictions if p["path"] == "nak" and p["old_ke_at_earliest_s"] is not None]
        # One poll of the slowest client (with chrony's up to 2 % jitter, rounded up to
        # 5 %) between staging and dropping the old keys (_nts/ntskeys.py: every client
        # that re-keyed within it holds new cookies); playbooks/planned_move.yml waits as long.
        slowest_poll_s = STAGE_WAIT_POLLS * max(
            2.0 ** parse_client(description).poll_range()[1] for description, _count in clients)
        steps.append(
            _step(
                "rekey",
                "Stage a fresh current cookie key keeping the old ones, wait one poll of the slowest client, then "
                "drop the old keys (ntsops.nts.chrony_ntskeys; chronyc rekey under ntsrotate 0, or restarts)",
                2 * restart + slowest_poll_s,
                "Every cookie from before the staging gets an NTS NAK; a client that re-keyed within the last "
                "poll holds cookies under the new key and is not NAKed (a NAK before its first valid response "
                "would leave it silent). The old address receives an NTS-KE burst within one poll.",
            )
        )
    else:
        path = "dns_only"
        steps.append(
            _step(
                "update_dns",
                "Point the name at the new address and wait until every resolver returns it",
                fresh_wait,
                "NTPsec servers cannot send Server Negotiation (no ntsntpserver), so clients move only by DNS.",
            )
        )
        for description, count in clients:
            minimum = recovery_time(description, ttl=0, update_latency=0)
            spec = parse_client(description)
            low, high = spec.poll_range()
            predictions.append(
                {
                    "client": spec.client,
                    "name": _label(description),
                    "count": count,
                    "path": "dns",
                    "poll": spec.poll_field(),
                    "first_auth_new_earliest_s": minimum["recovery_earliest_s"],
                    "first_auth_new_latest_s": minimum["recovery_latest_s"],
                    "first_auth_new_polls": [minimum["recovery_earliest_s"] / 2.0**low,
                                             minimum["recovery_latest_s"] / 2.0**high],
                    "ke_address_after": "new",
                    "needs_old_ke": False,
                    "explanation": minimum["explanation"],
                }
            )
        nak_clients = []
        steps.append(
            _step(
                "old_dark",
                "Make the old address go dark (remove it, or drop UDP 123 and TCP 4460 to it)",
                restart,
                "Clients that still answer on the old address never move (docs/recovery-model.md).",
            )
        )
    watch = max(p["first_auth_new_latest_s"] for p in predictions)
    steps.append(
        _step(
            "watch",
            "Watch the server's statistics (NTS-KE accepted, NAKs) until the clients have moved",
            watch,
            "The latest predicted first authenticated response from the new address over the fleet.",
        )
    )

    old_ke = _old_ke(
        server, clients, nak_clients, ntp_address_differs=ntp_address_differs, watch=watch, refresh=refresh
    )
    if server == "chrony":
        steps.append(
            _step(
                "close_old_ntp",
                "Optionally stop answering NTP (UDP 123) on the old address; keep NTS-KE (TCP 4460) there",
                0.0,
                "Moved clients send no NTP to the old address; clients still there lose NTP only.",
            )
        )
        steps.append(
            _step(
                "keep_old_ke",
                "Keep the old address answering NTS-KE: " + old_ke["until"],
                old_ke["keep_s"],
                old_ke["reason"],
            )
        )
    steps.append(
        _step(
            "retire_old",
            "Remove the old address" + (" once " + old_ke["retire_when"] if old_ke["required"] else ""),
            None if old_ke["required"] else restart,
            "Retiring it earlier strands every NAK-moved chrony client at its next ntsrefresh."
            if old_ke["required"]
            else "Nothing depends on the old address any more.",
        )
    )
    steps.append(
        _step(
            "restore_ttl",
            f"Restore the TTL to {old_ttl_s:g} s",
            0.0,
            "Keep the lowered TTL if the move may be rolled back.",
        )
    )
    burst: dict[str, Any] = {"window_s": None, "clients": None}
    if nak_clients:
        counts = [p["count"] for p in nak_clients]
        burst = {
            "window_s": [min(p["old_ke_at_earliest_s"] for p in nak_clients),
                         max(p["old_ke_at_latest_s"] for p in nak_clients)],
            "clients": None if any(c is None for c in counts) else sum(counts),
        }
    timed = [s["expected_s"] for s in steps if s["step"] in {
        "lower_ttl", "add_address", "announce", "update_dns", "rekey", "old_dark", "watch"}]
    return {
        "server": server,
        "path": path,
        "ttl": ttl_s,
        "old_ttl": old_ttl_s,
        "update_latency": latency_s,
        "ttl_budget_s": budget,
        "ttl_within_budget": ttl_s <= budget,
        "steps": steps,
        "move_expected_s": float(sum(timed)),
        "watch_s": watch,
        "clients": predictions,
        "ke_burst": burst,
        "old_ke": old_ke,
    }
