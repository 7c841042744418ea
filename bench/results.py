"""What a measurement yields: figures (one sample per repetition), targets, the table, the JSON."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of the values (pct in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class Figure:
    """One quantity measured once per repetition; the table shows the median."""

    label: str
    unit: str
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else 0.0


@dataclass
class Target:
    """A goal of the issue, checked against medians of one run."""

    label: str
    measured: float
    comparison: str  # ">=", "<=" or "<"
    threshold: float
    unit: str = "x"

    @property
    def holds(self) -> bool:
        if self.comparison == ">=":
            return self.measured >= self.threshold
        if self.comparison == "<=":
            return self.measured <= self.threshold
        return self.measured < self.threshold


@dataclass
class Measurement:
    key: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def figure(self, label: str, unit: str) -> Figure:
        for existing in self.figures:
            if existing.label == label:
                return existing
        made = Figure(label, unit)
        self.figures.append(made)
        return made

    def median(self, label: str) -> float:
        return next(f.median for f in self.figures if f.label == label)


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def _number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def table(measurements: list[Measurement], machine: dict[str, Any], profile: str) -> str:
    cores = machine["cores"]
    lines = [
        f"jobexec benchmark, profile {profile}: {cores} cores "
        f"({machine['physical_cores']} physical), {machine['cpu']}, "
        f"{machine['memory_gib']} GiB, Python {machine['python']}",
        "",
        f"{'measurement':<28} {'figure':<46} {'median':>12}  {'unit':<10} {'n':>2}  cores",
        "-" * 112,
    ]
    for m in measurements:
        for i, f in enumerate(m.figures):
            name = m.title if i == 0 else ""
            lines.append(
                f"{name:<28} {f.label:<46} {_number(f.median):>12}  {f.unit:<10} "
                f"{len(f.samples):>2}  {cores}"
            )
    lines += ["", f"{'target (ratios of medians, one run)':<64} {'measured':>10}  goal", "-" * 112]
    for m in measurements:
        for t in m.targets:
            verdict = "holds" if t.holds else "MISSED"
            goal = f"{t.comparison} {_number(t.threshold)} {t.unit}"
            lines.append(
                f"{t.label:<64} {_number(t.measured):>10} {t.unit:<3} {goal:<14} {verdict:<7}"
                f" ({cores} cores)"
            )
    return "\n".join(lines)


def to_json(
    measurements: list[Measurement], machine: dict[str, Any], profile: dict[str, Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {"machine": machine, "profile": profile, "measurements": {}}
    for m in measurements:
        out["measurements"][m.key] = {
            "title": m.title,
            "cores": machine["cores"],
            "figures": {
                f.label: {**asdict(f), "median": f.median, "cores": machine["cores"]}
                for f in m.figures
            },
            "targets": [{**asdict(t), "holds": t.holds} for t in m.targets],
            "details": m.details,
        }
    return out


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
