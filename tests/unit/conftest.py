"""Fixtures shared by the unit tests of more than one area."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

Exposition = tuple[dict[str, tuple[str, str]], list[tuple[str, dict[str, str], float]]]

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-z_]+="(?:[^"\\]|\\.)*",?)*)\})? (\S+)$')


def _parse_exposition(text: str) -> Exposition:
    """Prometheus text format, strictly: HELP then TYPE once per family, samples after their TYPE,
    no series twice. Returns {metric: (type, help)} and [(metric, labels, value)]."""
    declared: dict[str, tuple[str, str]] = {}
    samples = []
    help_text: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            metric, _space, words = line[7:].partition(" ")
            help_text[metric] = words
        elif line.startswith("# TYPE "):
            metric, _space, kind = line[7:].partition(" ")
            assert metric in help_text, f"TYPE before HELP for {metric}"
            assert metric not in declared, f"{metric} declared twice"
            declared[metric] = (kind, help_text[metric])
        else:
            match = _SAMPLE.match(line)
            assert match, line
            family = match.group(1)
            if family not in declared and family.endswith(("_sum", "_count")):
                family = family.rsplit("_", 1)[0]  # a summary's samples
                assert declared.get(family, ("",))[0] == "summary", f"sample before TYPE: {line}"
            assert family in declared, f"sample before TYPE: {line}"
            labels = dict(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
            samples.append((match.group(1), labels, float(match.group(3))))
    series = [(metric, sorted(labels.items())) for metric, labels, _value in samples]
    assert len(series) == len({repr(s) for s in series}), "a series appears twice"
    return declared, samples


@pytest.fixture
def parse_exposition() -> Callable[[str], Exposition]:
    """The Prometheus exposition parser above, for tests of the text ntsops writes."""
    return _parse_exposition
