# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""When a client's source is selectable again after the address change.

The first authenticated response from the new address (recovery.py's recovery) is
not yet a usable source: the client needs a few samples before its selection
accepts it. This is the model's second output; the TTL budget keeps using the
re-resolution time. docs/recovery-model.md ("Selectable again") names the code.
"""

from __future__ import annotations

from ansible_collections.ntsops.nts.plugins.module_utils._model.clients import (
    CHRONY_POLL_JITTER,
    NTPSEC_MINPKT_S,
    NTPSEC_POLL_JITTER,
    SELECT_SAMPLES,
    ClientSpec,
)


def sample_interval(spec: ClientSpec) -> tuple[float, float]:
    """Shortest and longest interval between requests after the first authenticated response.

    chrony: ntp_core.c requeues the transmit timer after each response one poll after
    the request (get_transmit_delay()); NCR_ChangeRemoteAddress() resets the poll only
    for a source that was reachable, which after an outage it is not, so the poll is
    the one of the outage (at most maxpoll, stretched by SAMPLING_RANDOMNESS), and
    get_poll_adj() may lower it while the samples are few, never below minpoll.
    NTPsec: dns_take_server() sets hpoll to minpoll; with iburst the first response
    starts a burst (receive(): burst NTP_IBURST - 1 for an unreachable peer) whose
    packets poll_update() spaces NTP_MINPKT apart, and without one the next poll is
    2^minpoll stretched by its jitter, plus NTP_MINPKT while throttled; never less
    than NTP_MINPKT. The RFC 8915 reference client polls at minpoll.
    """
    if spec.client.startswith("chrony"):
        return 2.0**spec.minpoll, 2.0**spec.maxpoll * (1.0 + CHRONY_POLL_JITTER)
    if spec.client == "ntpsec-1.2":
        return NTPSEC_MINPKT_S, 2.0**spec.minpoll * (1.0 + NTPSEC_POLL_JITTER) + NTPSEC_MINPKT_S
    return 2.0**spec.minpoll, 2.0**spec.minpoll


def selectable_offset(spec: ClientSpec) -> tuple[float, float] | None:
    """Shortest and longest time from the first authenticated response at the new address
    to the source being selectable again; None for a client kind without a rule."""
    samples = SELECT_SAMPLES.get(spec.client)
    if samples is None:
        return None
    fewest, most = samples
    shortest, longest = sample_interval(spec)
    return (fewest - 1) * shortest, (most - 1) * longest
