"""Performance targets, declared in YAML, so the detectors ask the right question.

A target says which strand was under pressure, on what measure, over what period and in
which direction the force wanted it to move::

    targets:
      - strand: violence
        measure: recorded_crime      # recorded_crime | cancellations | detections
        period: quarter              # month | quarter | financial_year
        direction: down              # down | up
        start: 2010-04-01            # optional: when the target began
        last_days: 3                 # optional: days before the period end to test (3)
        related: [other]             # optional: strands without a target, for displacement

Without a targets file every strand is tested in both directions and the run's multiplicity
control (Benjamini-Hochberg over all tests) keeps false alarms in check.

>>> t = parse_targets({"targets": [{"strand": "violence", "period": "quarter"}]})
>>> t.targets[0].direction, t.targets[0].measure
('down', 'recorded_crime')
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crimeaudit.detect.errors import DetectError


class TargetsError(DetectError):
    """The targets file is missing or invalid (the message names the file and the field)."""


class Target(BaseModel):
    """One performance target."""

    model_config = ConfigDict(extra="forbid")

    strand: str = Field(description="Strand (code lists) or offence group name under target.")
    measure: Literal["recorded_crime", "cancellations", "detections"] = "recorded_crime"
    period: Literal["month", "quarter", "financial_year"] = "quarter"
    direction: Literal["down", "up"] = "down"
    start: dt.date | None = None
    last_days: int = Field(3, ge=1, le=31, description="Days before the period end to test.")
    related: list[str] = Field(default_factory=list)


class Targets(BaseModel):
    """A targets file: a list of :class:`Target`."""

    model_config = ConfigDict(extra="forbid")

    targets: list[Target] = Field(default_factory=list)

    @property
    def periods(self) -> list[str]:
        """Periods that carry a target (all three when none is declared)."""
        found = sorted({t.period for t in self.targets})
        return found or ["month", "quarter", "financial_year"]

    @property
    def last_days(self) -> int:
        """The window of the period-end tests: the widest declared, else three days."""
        return max((t.last_days for t in self.targets), default=3)

    def for_strand(self, strand: str) -> list[Target]:
        return [t for t in self.targets if t.strand == strand]


def parse_targets(data: Any, source: str = "targets") -> Targets:
    """Validate already-parsed YAML; errors name the source and the offending field."""
    if data is None:
        return Targets()
    if isinstance(data, list):
        data = {"targets": data}
    try:
        return Targets.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise TargetsError(f"{source}: invalid targets: {problems}") from None


def load_targets(path: str | Path | None) -> Targets:
    """Read a targets YAML file; ``None`` means no declared targets."""
    if path is None:
        return Targets()
    path = Path(path)
    if not path.is_file():
        raise TargetsError(f"{path}: targets file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise TargetsError(f"{path}:{where} not valid YAML: {exc}") from None
    return parse_targets(data, str(path))
