# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Summaries of simulated (or measured) times: percentiles, arrival histograms, per-group arrivals.

Each function takes plain lists or, on the simulator's numpy path, arrays, and
gives the same figures either way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ansible_collections.ntsops.nts.plugins.module_utils._model.simulate import SimulationResult, np
from ansible_collections.ntsops.nts.plugins.module_utils._model.validate import RecoveryModelError


def kind_values(result: SimulationResult, index: int, sort: bool = False) -> Sequence[float]:
    """Recovery times of the clients of mix entry ``index`` (sorted when asked); an array
    on the numpy path."""
    if np is not None and not isinstance(result.recovery_s, list):
        selected = np.asarray(result.recovery_s)[np.asarray(result.kind_index) == index]
        return np.sort(selected) if sort else selected  # type: ignore[return-value]
    values = [float(v) for v, k in zip(result.recovery_s, result.kind_index, strict=True) if k == index]
    return sorted(values) if sort else values


def latest_ke(result: SimulationResult) -> float:
    """The last NTS-KE moment of the simulation."""
    if np is not None and not isinstance(result.ke_s, list):
        return float(np.max(np.asarray(result.ke_s)))
    return float(max(result.ke_s))


def percentile(values: Sequence[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` lie (nearest rank)."""
    if np is not None and not isinstance(values, list):
        return float(np.quantile(np.asarray(values), fraction, method="inverted_cdf"))
    ordered = sorted(values)
    if not ordered:
        raise RecoveryModelError("no values to summarise")
    rank = max(1, math.ceil(fraction * len(ordered)))
    return float(ordered[rank - 1])


def arrival_histogram(times: Sequence[float], bin_s: float) -> list[int]:
    """NTS-KE arrivals per ``bin_s`` seconds from the change; sums to len(times)."""
    if bin_s <= 0:
        raise RecoveryModelError(f"bin width must be > 0, got {bin_s!r}")
    if np is not None and not isinstance(times, list):
        array = np.asarray(times)
        bins = np.floor(array / bin_s).astype(np.int64)
        return [int(x) for x in np.bincount(bins, minlength=int(bins.max()) + 1)]
    counts: list[int] = [0] * (int(max(times) // bin_s) + 1)
    for value in times:
        counts[int(value // bin_s)] += 1
    return counts


def largest_group_arrivals(result: SimulationResult, limit_groups: int = 64) -> list[list[float]]:
    """Sorted NTS-KE moments of up to ``limit_groups`` NAT groups (all the same size)."""
    if not result.group_sizes:
        return []
    wanted = set(list(result.group_sizes)[:limit_groups])
    by_group: dict[int, list[float]] = {g: [] for g in wanted}
    if np is not None and not isinstance(result.group, list):
        groups = np.asarray(result.group)
        ke = np.asarray(result.ke_s)
        mask = np.isin(groups, list(wanted))
        for g, t in zip(groups[mask].tolist(), ke[mask].tolist(), strict=True):
            by_group[g].append(t)
    else:
        for g, t in zip(result.group, result.ke_s, strict=True):
            if g in by_group:
                by_group[g].append(float(t))
    return [sorted(times) for times in by_group.values()]
