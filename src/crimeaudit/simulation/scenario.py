"""Scenarios: the YAML files that describe a simulated force, validated with pydantic.

A scenario may ``extends:`` a built-in (or another file) and override only the knobs it changes;
mappings merge key by key, lists replace. Every knob is documented in ``docs/simulator.md``.

>>> s = load_scenario("kent-2013")
>>> s.name, s.period.start.year
('kent-2013', 2013)
>>> "compliant" in list_scenarios()
True
"""

from __future__ import annotations

import datetime as dt
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from crimeaudit.errors import CrimeauditError
from crimeaudit.model.codes import load_code_lists

Probability = Field(ge=0.0, le=1.0)

# Sections a reform may change: behaviour, not the force's size, shape or geography.
REFORMABLE = (
    "recording", "delay", "downgrading", "cancellation", "target_pressure", "bunching",
    "incident_ref_lost_rate",
)


class ScenarioError(CrimeauditError, ValueError):
    """A scenario file that cannot be used; the message names the file, line and field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Period(_Model):
    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end < self.start:
            raise ValueError("period end is before its start")
        return self

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


class Volume(_Model):
    incidents_per_day: float | None = Field(default=None, gt=0)
    total: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one(self) -> Volume:
        if (self.incidents_per_day is None) == (self.total is None):
            raise ValueError("give exactly one of incidents_per_day or total")
        return self


class Shape(_Model):
    weekly: list[float] = Field(
        default=[1.0, 0.97, 0.97, 1.0, 1.1, 1.25, 1.15], min_length=7, max_length=7
    )
    hourly: list[float] = Field(
        default=[
            0.9, 0.7, 0.5, 0.35, 0.25, 0.25, 0.35, 0.55, 0.8, 0.95, 1.0, 1.05,
            1.1, 1.1, 1.15, 1.25, 1.35, 1.4, 1.4, 1.35, 1.3, 1.25, 1.15, 1.05,
        ],
        min_length=24, max_length=24,
    )
    seasonal_amplitude: float = Field(default=0.12, ge=0.0, lt=1.0)
    seasonal_peak_month: int = Field(default=7, ge=1, le=12)

    @model_validator(mode="after")
    def _positive(self) -> Shape:
        if min(self.weekly) < 0 or min(self.hourly) < 0 or sum(self.hourly) <= 0:
            raise ValueError("weekly and hourly weights must be non-negative, not all zero")
        return self


class Division(_Model):
    name: str = Field(min_length=1)
    weight: float = Field(default=1.0, gt=0)
    officers: int = Field(default=80, ge=1)
    centre: tuple[float, float] | None = None  # (latitude, longitude) of the town centre
    recording_odds: float = Field(default=1.0, gt=0)
    downgrading: dict[str, float] = {}  # strand -> probability, replacing the force-wide one


class IncidentType(_Model):
    weight: float = Field(ge=0)
    discloses_crime: float = Probability
    offences: dict[str, float] = {}
    closing: dict[str, float] = {"NFA": 0.45, "ADVICE_GIVEN": 0.3, "REFERRED": 0.1,
                                 "NO_TRACE": 0.15}

    @model_validator(mode="after")
    def _offences(self) -> IncidentType:
        if self.discloses_crime > 0 and not self.offences:
            raise ValueError("a type that can disclose a crime needs an offences mix")
        return self


class Recording(_Model):
    by_strand: dict[str, float] = {"all": 0.98}
    officer_sd: float = Field(default=0.4, ge=0)
    officer_overrides: dict[str, float] = {}
    non_crime_rate: float = Field(default=0.004, ge=0, le=1)


class Delay(_Model):
    median_hours: float = Field(default=2.0, gt=0)
    sigma: float = Field(default=1.0, ge=0)
    late_share: float = Field(default=0.04, ge=0, le=1)
    late_median_hours: float = Field(default=80.0, gt=0)
    late_sigma: float = Field(default=0.7, ge=0)


class Downgrading(_Model):
    by_strand: dict[str, float] = {"all": 0.0}
    at_recording_share: float = Field(default=0.5, ge=0, le=1)
    correction_rate: float = Field(default=0.02, ge=0, le=1)
    misclassification_rate: float = Field(default=0.005, ge=0, le=1)
    reclassify_median_days: float = Field(default=4.0, gt=0)
    targets: dict[str, list[str]] = {}


class Cancellation(_Model):
    rate: dict[str, float] = {"all": 0.02}
    invalid_share: dict[str, float] = {"all": 0.03}
    valid_reasons: dict[str, float] = {"transferred": 0.3, "avi": 0.7}
    invalid_reasons: dict[str, float] = {"avi": 0.75, "recorded_in_error": 0.2, "duplicate": 0.05}
    victim_told_valid: float = Field(default=0.95, ge=0, le=1)
    victim_told_invalid: float = Field(default=0.6, ge=0, le=1)
    median_days: float = Field(default=6.0, gt=0)
    duplicate_rate: float = Field(default=0.01, ge=0, le=1)
    error_records_cancelled: float = Field(default=0.9, ge=0, le=1)


class TargetPressure(_Model):
    strands: list[str] = []
    period: Literal["month", "quarter", "financial_year"] = "month"
    last_days: int = Field(default=7, ge=1, le=92)
    cancellation_multiplier: float = Field(default=1.0, ge=0)
    downgrade_multiplier: float = Field(default=1.0, ge=0)
    deferral_probability: float = Field(default=0.0, ge=0, le=1)
    extra_cancellations_invalid: float = Field(default=0.0, ge=0, le=1)


class Bunching(_Model):
    offences: list[str] = Field(min_length=1)
    threshold: float = Field(gt=0)
    share: float = Field(ge=0, le=1)
    upper: float | None = None  # values in [threshold, upper) may be heaped; default 2x


class PropertyValues(_Model):
    median: dict[str, float] = {"theft": 110.0, "burglary": 850.0, "robbery": 220.0,
                                "criminal_damage": 280.0}
    sigma: float = Field(default=1.1, ge=0)


class Outcomes(_Model):
    mix: dict[str, float] = {
        "OC1": 0.12, "OC2": 0.01, "OC3": 0.03, "OC8": 0.05, "OC14": 0.12, "OC15": 0.07,
        "OC16": 0.12, "OC18": 0.42, "OC20": 0.03, "OC21": 0.03,
    }
    open_days: float = Field(default=45.0, ge=0)


class Victims(_Model):
    distinct_share: float = Field(default=0.8, gt=0, le=1)


class NarrativeStyle(_Model):
    ambiguous_share: float = Field(default=0.10, ge=0, le=1)
    vague_share: float = Field(default=0.08, ge=0, le=1)
    non_crime_ambiguous_share: float = Field(default=0.22, ge=0, le=1)
    non_crime_vague_share: float = Field(default=0.05, ge=0, le=1)

    @model_validator(mode="after")
    def _sums(self) -> NarrativeStyle:
        if self.ambiguous_share + self.vague_share > 1:
            raise ValueError("ambiguous_share + vague_share must not exceed 1")
        if self.non_crime_ambiguous_share + self.non_crime_vague_share > 1:
            raise ValueError("non_crime_ambiguous_share + non_crime_vague_share must not exceed 1")
        return self


class Reform(_Model):
    date: dt.date
    changes: dict[str, Any]


class Scenario(_Model):
    name: str
    description: str = ""
    period: Period
    volume: Volume = Volume(incidents_per_day=500)
    shape: Shape = Shape()
    divisions: list[Division] = Field(min_length=1)
    incident_types: dict[str, IncidentType] = Field(min_length=1)
    recording: Recording = Recording()
    delay: Delay = Delay()
    downgrading: Downgrading = Downgrading()
    cancellation: Cancellation = Cancellation()
    target_pressure: TargetPressure = TargetPressure()
    bunching: list[Bunching] = []
    property_values: PropertyValues = PropertyValues()
    outcomes: Outcomes = Outcomes()
    victims: Victims = Victims()
    narratives: NarrativeStyle = NarrativeStyle()
    incident_ref_lost_rate: float = Field(default=0.0, ge=0, le=1)
    no_incident_share: float = Field(default=0.02, ge=0, lt=1)
    reform: Reform | None = None

    @model_validator(mode="after")
    def _codes(self) -> Scenario:
        _check_codes(self)
        return self

    def n_incidents(self) -> int:
        if self.volume.total is not None:
            return self.volume.total
        return int(round(self.volume.incidents_per_day * self.period.days))

    def after_reform(self) -> Scenario:
        """The scenario as it behaves from the reform date on (itself when there is none)."""
        if self.reform is None:
            return self
        data = self.model_dump(mode="json", exclude={"reform"})
        return Scenario.model_validate(_merge(data, self.reform.changes))


class _FieldError(ValueError):
    """A cross-field check that failed, with the path of the field it is about."""

    def __init__(self, loc: tuple, message: str):
        super().__init__(f"{'.'.join(map(str, loc))}: {message}")
        self.loc = loc
        self.message = message


def _check_codes(s: Scenario) -> None:
    codes = load_code_lists()
    strands = set(codes.strands)
    reasons = set(codes.cancellation_reasons)

    def need(values, known, what: str, loc: tuple) -> None:
        bad = sorted(set(values) - set(known))
        if bad:
            raise _FieldError(loc, f"unknown {what}: {', '.join(map(str, bad))}; "
                                   f"known: {', '.join(sorted(known))}")

    for t, it in s.incident_types.items():
        need([t], codes.incident_types, "incident type", ("incident_types", t))
        need(it.offences, codes.offences, "offence code", ("incident_types", t, "offences"))
        need(it.closing, ("NFA", "ADVICE_GIVEN", "REFERRED", "NO_TRACE"), "closing code",
             ("incident_types", t, "closing"))
    for loc, mapping in (
        (("recording", "by_strand"), s.recording.by_strand),
        (("downgrading", "by_strand"), s.downgrading.by_strand),
        (("cancellation", "rate"), s.cancellation.rate),
        (("cancellation", "invalid_share"), s.cancellation.invalid_share),
        (("property_values", "median"), s.property_values.median),
    ):
        need(mapping, strands, "strand", loc)
        if loc[0] != "property_values" and any(not 0 <= v <= 1 for v in mapping.values()):
            raise _FieldError(loc, "probabilities must lie between 0 and 1")
    for i, d in enumerate(s.divisions):
        need(d.downgrading, strands, "strand", ("divisions", i, "downgrading"))
        if any(not 0 <= v <= 1 for v in d.downgrading.values()):
            raise _FieldError(("divisions", i, "downgrading"),
                              "probabilities must lie between 0 and 1")
    need(s.target_pressure.strands, strands, "strand", ("target_pressure", "strands"))
    need(s.cancellation.valid_reasons, reasons, "cancellation reason",
         ("cancellation", "valid_reasons"))
    need(s.cancellation.invalid_reasons, reasons, "cancellation reason",
         ("cancellation", "invalid_reasons"))
    need(s.outcomes.mix, codes.outcomes, "outcome code", ("outcomes", "mix"))
    for i, b in enumerate(s.bunching):
        need(b.offences, codes.offences, "offence code", ("bunching", i, "offences"))
    for src, targets in s.downgrading.targets.items():
        need([src, *targets], codes.offences, "offence code", ("downgrading", "targets", src))
    names = [d.name for d in s.divisions]
    if len(set(names)) != len(names):
        raise _FieldError(("divisions",), "division names must be unique")
    if s.reform is not None:
        need(s.reform.changes, REFORMABLE, "section a reform may change",
             ("reform", "changes"))
        try:
            s.after_reform()
        except ValidationError as exc:
            first = exc.errors()[0]
            raise _FieldError(("reform", "changes", *first["loc"]), first["msg"]) from None


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _builtin_dir():
    return resources.files("crimeaudit.simulation").joinpath("scenarios")


def list_scenarios() -> list[str]:
    """Names of the built-in scenarios."""
    return sorted(
        p.name[:-5] for p in _builtin_dir().iterdir()
        if p.name.endswith(".yaml") and not p.name.startswith("_")
    )


def _raw(ref: str | Path, seen: tuple[str, ...] = ()) -> tuple[dict, str, str]:
    """The merged raw mapping of a scenario, its display name and its YAML text."""
    text, where = _read_text(ref)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{where}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: a scenario must be a YAML mapping")
    parent = data.pop("extends", None)
    if parent is not None:
        if str(parent) in seen:
            raise ScenarioError(f"{where}: 'extends' goes round in a circle via {parent!r}")
        base_ref: str | Path = parent
        if isinstance(ref, Path) and str(parent) not in list_scenarios():
            base_ref = (ref.parent / str(parent)).resolve()
        base, _, _ = _raw(base_ref, (*seen, str(parent)))
        data = _merge(base, data)
    return data, where, text


def _read_text(ref: str | Path) -> tuple[str, str]:
    if isinstance(ref, str) and ref in list_scenarios():
        name = f"{ref}.yaml"
        return _builtin_dir().joinpath(name).read_text(encoding="utf-8"), f"built-in {name}"
    path = Path(ref)
    if not path.exists():
        raise ScenarioError(
            f"no scenario {str(ref)!r}: not a built-in ({', '.join(list_scenarios())}) "
            "and no such file"
        )
    return path.read_text(encoding="utf-8"), str(path)


def load_scenario(ref: str | Path) -> Scenario:
    """Load and validate a built-in scenario by name, or a scenario YAML file by path."""
    if isinstance(ref, str) and ref not in list_scenarios():
        ref = Path(ref)
    data, where, text = _raw(ref)
    if "name" not in data:
        data["name"] = ref if isinstance(ref, str) else Path(ref).stem
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        lines = []
        for e in exc.errors():
            loc, msg = tuple(e["loc"]), e["msg"]
            cause = (e.get("ctx") or {}).get("error")
            if isinstance(cause, _FieldError):
                loc, msg = loc + cause.loc, cause.message
            lines.append(f"{where}{_position(text, loc)}: {'.'.join(map(str, loc)) or '(top)'}: "
                         f"{msg}")
        raise ScenarioError("\n".join(lines)) from None


def _position(text: str, loc: tuple) -> str:
    """', line L, column C' of the YAML node at ``loc``, as near as the file allows."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return ""
    found = node
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if k.value == str(key)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            nxt = node.value[key]
        else:
            nxt = None
        if nxt is None:
            break
        node = found = nxt
    if found is None:
        return ""
    return f", line {found.start_mark.line + 1}, column {found.start_mark.column + 1}"
