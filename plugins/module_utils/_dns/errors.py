# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The errors of a dynamic update, one class for each thing an operator fixes differently."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError

if TYPE_CHECKING:
    from ansible_collections.ntsops.nts.plugins.module_utils._dns.ensure import EnsureResult


class DdnsError(NtsopsError):
    """A dynamic update could not be planned, sent or confirmed."""


class DdnsInputError(DdnsError):
    """The request itself is wrong (bad address, name outside the zone, bad key file)."""


class DdnsTsigError(DdnsError):
    """The server rejected the TSIG signature (BADSIG, BADKEY, BADTIME) or ours failed to verify."""


class DdnsRefusedError(DdnsError):
    """The server answered REFUSED."""


class DdnsNotAuthError(DdnsError):
    """The server answered NOTAUTH: not authoritative for the zone, or the TSIG key was not accepted."""


class DdnsZoneNotFoundError(DdnsError):
    """No zone containing the name is served by the server asked."""


class DdnsNotZoneError(DdnsError):
    """The server answered NOTZONE: the name is not inside the zone of the update."""


class DdnsTimeoutError(DdnsError):
    """No answer within the timeout, after the bounded retries."""


class DdnsUnreachableError(DdnsError):
    """The server could not be reached (connection refused, no route, connection closed)."""


class DdnsConflictError(DdnsError):
    """The records changed between read and update: a concurrent writer; nothing was overwritten."""


class DdnsServerError(DdnsError):
    """The server answered with an error code this module does not expect (SERVFAIL, FORMERR...)."""


class DdnsProtocolError(DdnsError):
    """The answer was not a well-formed DNS message for the question asked."""


class DdnsPropagationError(DdnsError):
    """The update was applied but not every authoritative server served it in time."""

    def __init__(self, message: str, result: EnsureResult) -> None:
        super().__init__(message)
        self.result = result


class DdnsBudgetError(DdnsError):
    """The TTL does not fit the recovery budget, or the budget cannot be evaluated."""
