# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The model's input checks and its one error type.

Every entry point of the model (recovery, planned move, simulator, sizing) checks
its numbers with these functions, so a value is accepted or refused by the same
rule wherever it is given. Numbers may arrive as strings ("40", "0.5"): Ansible
hands extra vars and inventory values over like that. Booleans are refused even
though Python counts them as integers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError

# Longest TTL or update latency the model accepts: 30 days. Resolvers cap TTLs at
# a week or less (BIND max-cache-ttl, Unbound cache-max-ttl), so this only bounds
# the model's loops, it does not reject any real configuration.
MAX_DNS_SECONDS = 30 * 86400


class RecoveryModelError(NtsopsError):
    """An input to the recovery model is invalid, or no setting meets the budget."""


def integer(value: Any, what: str, bounds: tuple[int, int] | None = None) -> int:
    """An integer (or an integral float, or a string of digits), within ``bounds`` when given."""
    wanted = "an integer" if bounds is None else f"an integer between {bounds[0]} and {bounds[1]}"
    result: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        result = value
    elif isinstance(value, float) and value.is_integer():
        result = int(value)
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        result = int(value.strip())
    if result is None or (bounds is not None and not bounds[0] <= result <= bounds[1]):
        raise RecoveryModelError(f"{what} must be {wanted}, got {value!r}")
    return result


def _bounded(value: Any, what: str, upper: float, wanted: str, unit: str = "") -> float:
    """A finite float in [0, upper]; one message for every way of missing it."""
    if upper == math.inf:
        wanted += " >= 0"
    else:
        limit = f"{upper:.0f}" if float(upper).is_integer() else f"{upper:g}"
        if unit:
            limit += f" {unit}"
        if unit == "s" and upper >= 86400 and upper % 86400 == 0:
            limit += f" ({upper / 86400:g} days)"
        wanted += f" between 0 and {limit}"
    try:
        result = math.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        result = math.nan
    if not (math.isfinite(result) and 0 <= result <= upper):
        raise RecoveryModelError(f"{what} must be {wanted}, got {value!r}")
    return result


def number(value: Any, what: str, upper: float = math.inf) -> float:
    """A finite number in [0, upper]."""
    return _bounded(value, what, upper, "a number")


def seconds(value: Any, what: str, upper: float = MAX_DNS_SECONDS) -> float:
    """A duration in [0, upper] seconds (30 days unless the caller says otherwise)."""
    return _bounded(value, what, upper, "a number of seconds", "s")


def fraction(value: Any, what: str) -> float:
    """A number between 0 and 1."""
    return _bounded(value, what, 1.0, "a fraction")


def choice(value: Any, what: str, choices: Sequence[str]) -> str:
    """One of ``choices``."""
    if value not in choices:
        raise RecoveryModelError(f"{what} must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def boolean(value: Any, what: str) -> bool:
    """True or false, nothing that merely converts to one."""
    if not isinstance(value, bool):
        raise RecoveryModelError(f"{what} must be true or false, got {value!r}")
    return value
