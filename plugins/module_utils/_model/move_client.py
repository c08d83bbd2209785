# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One client through a planned move: what it does when the server NAKs its cookies.

The server keeps answering on the old address, announces the new NTP address by
NTS-KE Server Negotiation (chrony's ``ntsntpserver``) and replaces its cookie keys.
chrony clients re-key at the NAK and follow the announced address; the RFC 8915
reference client re-keys by name; NTPsec ignores the NAK and takes the unplanned
path once its cookies are spent (docs/recovery-model.md, "Planned move").
planned_move.py builds the operator's plan for a whole fleet from these predictions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._model.clients import (
    CHRONY_POLL_JITTER,
    NTPSEC_MINPKT_S,
    NTPSEC_POLL_JITTER,
    parse_client,
)
from ansible_collections.ntsops.nts.plugins.module_utils._model.recovery import duration, recovery_time
from ansible_collections.ntsops.nts.plugins.module_utils._model.validate import RecoveryModelError, seconds


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
    fresh = seconds(dns_fresh_s, "dns_fresh_s")
    low, high = spec.poll_range()
    old_ke: tuple[float | None, float | None]
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
        path, ke_after = "nak", "old"
        explanation = (
            f"{spec.behaviour.description} gets an NTS NAK at its first poll after the key change, runs NTS-KE "
            f"to the OLD address at the next poll and sends its first request to the announced address at the "
            f"poll after: authenticated again {duration(first_auth[0])} to {duration(first_auth[1])} after the key "
            f"change; its NTS-KE address stays the old one until it restarts."
        )
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
        path = "nak"
        old_ke = (None, None) if ke_after == "new" else first_auth
        explanation = (
            f"{spec.behaviour.description} (assumed behaviour) re-keys at its next poll after the NAK, resolving "
            f"the name, and is authenticated at once: {duration(first_auth[0])} to {duration(first_auth[1])} "
            f"after the key change."
        )
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
        path, ke_after, old_ke = "cookies", "new", (None, None)
        explanation = (
            f"{spec.behaviour.description} ignores NTS NAKs: it spends its {spec.cookies} cookies on NAK'd "
            f"requests, then resolves the name and re-keys at the address it gets: authenticated again "
            f"{duration(first_auth[0])} to {duration(first_auth[1])} after the key change (no faster than an "
            f"unplanned change)."
        )
    return {
        "path": path,
        "first_auth_new_earliest_s": first_auth[0],
        "first_auth_new_latest_s": first_auth[1],
        "gap_earliest_s": gap[0],
        "gap_latest_s": gap[1],
        "old_ke_at_earliest_s": old_ke[0],
        "old_ke_at_latest_s": old_ke[1],
        "ke_address_after": ke_after,
        "needs_old_ke": ke_after != "new",
        "explanation": explanation,
        "client": spec.client,
        "poll": spec.poll_field(),
        "dns_fresh_s": fresh,
        "first_auth_new_polls": [first_auth[0] / 2.0**low, first_auth[1] / 2.0**high],
        "gap_polls": [gap[0] / 2.0**low, gap[1] / 2.0**high],
    }
