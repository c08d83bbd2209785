# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""This host's own addresses, from ``ip -o addr show``, sorted by the publication policy.

The ddns agent publishes what ``parse_ip_addr`` finds usable; endpoint_check and
``ntsops check`` compare the published records with ``host_addresses`` (the same
selection over every interface). The command runner is injected.
"""

from __future__ import annotations

import ipaddress
import shlex
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ansible_collections.ntsops.nts.plugins.module_utils._dns.errors import DdnsInputError
from ansible_collections.ntsops.nts.plugins.module_utils._dns.policy import Network, Refusal, refusal_reason
from ansible_collections.ntsops.nts.plugins.module_utils._dns.records import FAMILIES, normalise_addresses

# Address flags (iproute2 ipaddress.c, print_addrinfo) that mean "not published now".
# Never: DAD failed. Not yet or no longer preferred: the record is kept, not replaced.
REFUSED_FLAGS = {"dadfailed": "duplicate address detection failed"}
PENDING_FLAGS = {
    "tentative": "tentative, duplicate address detection not finished",
    "deprecated": "deprecated, preferred lifetime over",
}
TEMPORARY_REASON = "temporary (privacy) address; allow_temporary publishes it"
COMMAND_TIMEOUT_S = 20


@dataclass(frozen=True)
class FamilyReading:
    """One family's addresses as the policy sorts them."""

    usable: tuple[str, ...] = ()
    # Allowed, but not preferred now (tentative, deprecated): while only these exist the record is kept.
    pending: tuple[Refusal, ...] = ()
    # Never published, with the reason.
    refused: tuple[Refusal, ...] = ()

    def describe_skipped(self) -> str:
        return ", ".join(str(r) for r in self.pending + self.refused)


def parse_ip_addr(
    text: str, family: str, allowed: Sequence[Network] = (), allow_temporary: bool = False
) -> FamilyReading:
    """Sort one family's addresses in ``ip -o addr show`` output by the publication policy."""
    token = "inet" if family == "ipv4" else "inet6"
    usable, pending, refused = [], [], []
    for line in text.splitlines():
        words = line.replace("\\", " ").split()
        if token not in words or words.index(token) + 1 >= len(words):
            continue
        at = words.index(token)
        address = normalise_addresses(family, [words[at + 1].split("/")[0]])[0]
        flags = set(words[at + 2 :])
        scope = words[words.index("scope") + 1] if "scope" in words[:-1] else "global"
        reason = refusal_reason(ipaddress.ip_address(address), allowed)
        reason = reason or next((r for f, r in REFUSED_FLAGS.items() if f in flags), None)
        if reason is None and "temporary" in flags and not allow_temporary:
            reason = TEMPORARY_REASON
        if reason is None and scope != "global":
            reason = f"scope {scope}"
        if reason is not None:
            refused.append(Refusal(address, reason))
            continue
        waiting = [r for f, r in PENDING_FLAGS.items() if f in flags]
        if waiting:
            pending.append(Refusal(address, "; ".join(waiting)))
            continue
        usable.append(address)
    return FamilyReading(normalise_addresses(family, usable), tuple(pending), tuple(refused))


Runner = Callable[[Sequence[str]], str]


def run_command(argv: Sequence[str]) -> str:
    """Run a command and return its stdout; a failure or a hang becomes a clear error."""
    try:
        # The argv comes from the root-owned agent configuration; no shell is involved.
        completed = subprocess.run(  # noqa: S603
            list(argv), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DdnsInputError(f"{shlex.join(argv)}: {exc}") from None
    if completed.returncode != 0:
        raise DdnsInputError(
            f"{shlex.join(argv)} exited with {completed.returncode}: {completed.stderr.strip()[:200]}"
        )
    return completed.stdout


def host_addresses(
    runner: Runner = run_command, allowed: Sequence[Network] = (), allow_temporary: bool = False
) -> dict[str, FamilyReading]:
    """Every interface's addresses per family, as the agent would select them."""
    return {
        family: parse_ip_addr(
            runner(["ip", "-o", "-4" if family == "ipv4" else "-6", "addr", "show"]), family, allowed, allow_temporary
        )
        for family in FAMILIES
    }
