"""Tests of the summaries of simulated times."""

from __future__ import annotations

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._model.summary import arrival_histogram, percentile
from ansible_collections.ntsops.nts.plugins.module_utils._model.validate import RecoveryModelError


def test_percentile_is_the_nearest_rank() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(values, 0.0) == 1.0
    assert percentile(values, 0.5) == 3.0
    assert percentile(values, 0.41) == 3.0
    assert percentile(values, 1.0) == 5.0
    with pytest.raises(RecoveryModelError, match="no values"):
        percentile([], 0.5)


def test_arrival_histogram_bins_from_the_change() -> None:
    assert arrival_histogram([0.0, 0.5, 1.0, 3.2], 1.0) == [2, 1, 0, 1]
    with pytest.raises(RecoveryModelError, match="bin width"):
        arrival_histogram([1.0], 0)
