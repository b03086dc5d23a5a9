"""A strict reader of Prometheus' text exposition format 0.0.4, for the metrics tests.

Written from the format's description, independently of :mod:`pek.router.metrics`: every line
is a ``# HELP``, a ``# TYPE`` or a sample; a family's ``# TYPE`` comes once and before its
samples; label values are unescaped; values are floats (``+Inf``, ``NaN`` included); histogram
buckets are cumulative and end with ``le="+Inf"`` equal to ``_count``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"^({_NAME})(?:\{{(.*)\}})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
_KINDS = {"counter", "gauge", "histogram", "summary", "untyped"}

Labels = frozenset[tuple[str, str]]


@dataclass
class Exposition:
    types: dict[str, str] = field(default_factory=dict)
    helps: dict[str, str] = field(default_factory=dict)
    samples: dict[tuple[str, Labels], float] = field(default_factory=dict)

    def value(self, name: str, **labels: str) -> float:
        return self.samples[(name, frozenset(labels.items()))]

    def get(self, name: str, default: float = 0.0, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), default)

    def series(self, name: str) -> dict[Labels, float]:
        return {labels: v for (n, labels), v in self.samples.items() if n == name}


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), value)


def _labels(text: str) -> Labels:
    out: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = _LABEL.match(text, position)
        assert match is not None, f"bad labels {text!r} at {position}"
        out.append((match.group(1), _unescape(match.group(2))))
        position = match.end()
        if position < len(text):
            assert text[position] == ",", f"bad labels {text!r}"
            position += 1
    names = [name for name, _ in out]
    assert len(names) == len(set(names)), f"repeated label in {text!r}"
    return frozenset(out)


def _family(name: str, types: dict[str, str]) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        base = name.removesuffix(suffix)
        if base != name and types.get(base) == "histogram":
            return base
    return name


def parse(text: str) -> Exposition:
    assert text.endswith("\n"), "the exposition ends with a line feed"
    result = Exposition()
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert name not in result.helps, f"second HELP for {name}"
            result.helps[name] = help_text
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert kind in _KINDS, line
            assert name not in result.types, f"second TYPE for {name}"
            assert not any(n == name for n, _ in result.samples), f"TYPE after samples: {name}"
            result.types[name] = kind
        else:
            assert not line.startswith("#") and line, f"unexpected line {line!r}"
            match = _SAMPLE.match(line)
            assert match is not None, f"bad sample line {line!r}"
            name, labels, value = match.groups()
            assert _family(name, result.types) in result.types, f"{name} has no TYPE"
            key = (name, _labels(labels or ""))
            assert key not in result.samples, f"repeated sample {line!r}"
            result.samples[key] = float(value)  # accepts +Inf and NaN
    _check_histograms(result)
    return result


def _check_histograms(result: Exposition) -> None:
    for name, kind in result.types.items():
        if kind != "histogram":
            continue
        buckets: dict[Labels, list[tuple[float, float]]] = {}
        for labels, value in result.series(f"{name}_bucket").items():
            le = dict(labels)["le"]
            rest = frozenset((k, v) for k, v in labels if k != "le")
            buckets.setdefault(rest, []).append((float(le), value))
        for rest, points in buckets.items():
            points.sort()
            counts = [count for _, count in points]
            assert counts == sorted(counts), f"{name} buckets are not cumulative"
            assert math.isinf(points[-1][0]), f"{name} lacks le=+Inf"
            assert result.samples[(f"{name}_count", rest)] == counts[-1]
            assert (f"{name}_sum", rest) in result.samples
