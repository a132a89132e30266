"""Ingest profiles: declarative YAML descriptions of how a source maps to canonical tables.

A profile names the source's columns for each canonical column, the date formats, the code
crosswalks and which fields are personal. Built-in profiles live in ``ingest/profiles``; a user
passes the path of their own YAML file instead of a name.

>>> p = load_profile("police-uk-street")
>>> [t.table for t in p.targets]
['incidents', 'crimes']
>>> "canonical" in list_profiles()
True
"""

from __future__ import annotations

import datetime as dt
import re
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from crimeaudit.ingestion.errors import IngestError
from crimeaudit.model.schema import TABLES


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


#: Directives the engine's ``strptime`` knows (DuckDB's list); ``%-d`` etc. drop padding.
DATE_DIRECTIVES = frozenset("aAbBcdfgGhHIjmMnpSTuUVwWxXyYzZ%")
_DIRECTIVE = re.compile(r"%(-?)(.?)", re.DOTALL)


def check_date_format(fmt: str) -> str:
    """``fmt`` if the engine can parse dates with it, else ValueError saying what is wrong.

    A format the engine rejects fails the ingest half-way; one without a single directive
    ("YYYY-MM-DD") parses nothing, so every row would be quarantined. Both are refused when
    the profile is read, so that ``profiles --check`` says so.

    >>> check_date_format("%d/%m/%Y %H:%M")
    '%d/%m/%Y %H:%M'
    >>> check_date_format("YYYY-MM-DD")
    Traceback (most recent call last):
    ValueError: date format 'YYYY-MM-DD' has no %-directive (write e.g. %Y-%m-%d)
    """
    if fmt == "auto":
        return fmt
    found = False
    for m in _DIRECTIVE.finditer(fmt):
        code = m.group(2)
        if code == "":
            raise ValueError(f"date format {fmt!r} ends with a lone %")
        if code not in DATE_DIRECTIVES:
            raise ValueError(f"date format {fmt!r}: %{m.group(1)}{code} is not a date "
                             f"directive (known: %Y %m %d %H %M %S %p %b %y ...)")
        found = found or code != "%"
    if not found:
        raise ValueError(f"date format {fmt!r} has no %-directive (write e.g. %Y-%m-%d)")
    return fmt


#: What a crosswalk or an exclusion rule may ignore when it compares a value with its list.
NORMALISATIONS = ("case", "space", "zeros", "punctuation")
_SPACES = re.compile(r"\s+")
_LEADING_ZEROS = re.compile(r"(?<![0-9])0+(?=[0-9])")
_NOT_WORD = re.compile(r"[\W_]+")
Normalise = bool | list[Literal["case", "space", "zeros", "punctuation"]]


def normalise_value(value: str, how: Normalise) -> str:
    """``value`` as a crosswalk compares it: ``case`` ignores letter case, ``space`` runs of
    spaces, ``zeros`` leading zeros of numbers, ``punctuation`` every character that is not a
    letter or digit (spaces too); ``True`` is all four. Ends are always trimmed.

    >>> [normalise_value(v, True) for v in ("008N", "8n", " 037/2 ", "37.2")]
    ['8n', '8n', '372', '372']
    >>> normalise_value("Theft  FROM the person", ["case", "space"])
    'theft from the person'
    """
    how = NORMALISATIONS if how is True else (how or ())
    v = value.strip()
    if "case" in how:
        v = v.casefold()
    if "space" in how:
        v = _SPACES.sub(" ", v)
    if "zeros" in how:
        v = _LEADING_ZEROS.sub("", v)
    if "punctuation" in how:
        v = _NOT_WORD.sub("", v)
    return v


def _compile(patterns: list[str]) -> list[str]:
    for rx in patterns:
        try:
            re.compile(rx)
        except re.error as exc:
            raise ValueError(f"/{rx}/ is not a regular expression: {exc.msg} at position "
                             f"{exc.pos}") from None
    return patterns


class Crosswalk(_Strict):
    """Source codes to canonical codes. ``default`` applies to codes not listed; ``keep``
    (the default's alternative) passes unlisted values through unchanged.

    Values are compared after ``normalise`` (see :func:`normalise_value`), first with the
    ``map``, then with the ``patterns`` (regular expressions matched against the whole
    normalised value, in the order written). ``file`` names a YAML file holding a crosswalk
    (map, patterns, normalise...) shared by several profiles; entries written in the profile
    add to it and win.

    >>> cw = Crosswalk(map={"8N": "8N", "37.2": "37.2"}, patterns={"105.*": "105A"},
    ...                normalise=True)
    >>> [cw.translate(v) for v in ("008N", "8n", "037/2", "105B", "99")]
    [(True, '8N'), (True, '8N'), (True, '37.2'), (True, '105A'), (False, None)]
    """

    map: dict[str, str | None] = Field(default_factory=dict)
    patterns: dict[str, str | None] = Field(default_factory=dict)
    normalise: Normalise = False
    file: str | None = None
    default: str | None = None
    keep: bool = False
    strict: bool = Field(False, description="Quarantine values the map does not list.")
    approximate: bool = False
    note: str = ""

    @field_validator("patterns")
    @classmethod
    def _patterns(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        _compile(list(value))
        return value

    @model_validator(mode="after")
    def _distinct_keys(self) -> Crosswalk:
        seen: dict[str, str] = {}
        for key, code in self.map.items():
            norm = normalise_value(str(key), self.normalise)
            if norm in seen and self.map[seen[norm]] != code:
                raise ValueError(f"map keys {seen[norm]!r} and {key!r} are the same code once "
                                 f"normalised ({norm!r}) but map to different classes")
            seen.setdefault(norm, str(key))
        return self

    def _lookup(self) -> dict[str, str | None]:
        return {normalise_value(str(k), self.normalise): v for k, v in self.map.items()}

    def translate(self, value: str) -> tuple[bool, str | None]:
        """(found, class) for one source value: found is False when neither the map nor a
        pattern lists it (then ``default``, ``keep`` or the column's rule decides)."""
        v = normalise_value(value, self.normalise)
        lookup = self._lookup()
        if v in lookup:
            return True, lookup[v]
        for rx, code in self.patterns.items():
            if re.fullmatch(rx, v):
                return True, code
        return False, None

    def resolved(self, values: list[str]) -> tuple[Crosswalk, list[str]]:
        """This crosswalk as an exact map of ``values`` (the source values present), and the
        values it does not list: what an engine applies without knowing normalisation."""
        lookup = self._lookup()
        compiled = [(re.compile(rx), code) for rx, code in self.patterns.items()]
        exact: dict[str, str | None] = {}
        unlisted: list[str] = []
        for value in values:
            v = normalise_value(value, self.normalise)
            if v in lookup:
                exact[value] = lookup[v]
                continue
            hit = next((code for rx, code in compiled if rx.fullmatch(v)), _MISS)
            if hit is _MISS:
                unlisted.append(value)
            else:
                exact[value] = hit
        return self.model_copy(update={"map": exact, "patterns": {}, "normalise": False,
                                       "file": None}), unlisted

    @property
    def classes(self) -> set[str]:
        """Every class the crosswalk can give (its map, patterns and default)."""
        out = {v for v in [*self.map.values(), *self.patterns.values(), self.default] if v}
        return out


_MISS = object()


class Exclude(_Strict):
    """Rows outside the profile's scope: those whose ``column`` holds one of ``values`` (or
    matches one of ``patterns``), compared after ``normalise`` as a crosswalk does. They are
    counted under ``reason``, not quarantined: they are not errors.

    >>> rule = Exclude(column="Incident Category", values=["Lost Property"],
    ...                patterns=["missing.*"], normalise=["case"], reason="not a crime")
    >>> rule.matches("LOST PROPERTY"), rule.matches("Missing Person"), rule.matches("Assault")
    (True, True, False)
    """

    column: str
    values: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)
    normalise: Normalise = False
    reason: str

    @field_validator("patterns")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        return _compile(value)

    @model_validator(mode="after")
    def _something(self) -> Exclude:
        if not self.values and not self.patterns:
            raise ValueError(f"exclude rule on {self.column!r} lists no values or patterns")
        return self

    def matches(self, value: str | None) -> bool:
        if value is None:
            return False
        v = normalise_value(value, self.normalise)
        if v in {normalise_value(x, self.normalise) for x in self.values}:
            return True
        return any(re.fullmatch(rx, v) for rx in self.patterns)


#: What marks the second and later copies of a value repeated within one file (``copies``).
COPY_MARK = "~copy"


class ColumnSpec(_Strict):
    """How one canonical column is filled: from a source column, several joined, or a value."""

    source: str | list[str] | None = Field(None, alias="from")
    optional: bool = False
    concat: list[str] | None = None
    first_of: list[str] | None = None
    sep: str = " "
    value: str | None = None
    row_id: bool = False
    format: str | list[str] | None = None
    crosswalk: str | None = None
    prefix: str = ""
    #: A value repeated within one file is another record, not an error: the copies after the
    #: first (in file order) get ``~copy2``, ``~copy3``... (see :data:`COPY_MARK`).
    copies: bool = False

    @field_validator("format")
    @classmethod
    def _date_formats(cls, value: str | list[str] | None) -> str | list[str] | None:
        for fmt in [value] if isinstance(value, str) else value or []:
            check_date_format(fmt)
        return value

    @model_validator(mode="after")
    def _one_origin(self) -> ColumnSpec:
        origins = [self.source is not None, self.concat is not None, self.value is not None,
                   self.row_id, self.first_of is not None]
        if sum(origins) != 1:
            raise ValueError("give exactly one of 'from', 'concat', 'first_of', 'value' or "
                             "'row_id'")
        return self

    @property
    def formats(self) -> list[str]:
        if self.format is None:
            return []
        return [self.format] if isinstance(self.format, str) else list(self.format)

    @property
    def source_columns(self) -> list[str]:
        if isinstance(self.source, str):
            return [self.source]
        return list(self.concat or self.first_of or [])

    def resolve(self, file_columns: list[str]) -> ColumnSpec | None:
        """This spec for one file: the first alternative source column the file has.

        None when an optional column is absent; KeyError naming the alternatives otherwise.
        """
        if self.first_of is not None:
            present = [c for c in self.first_of if c in file_columns]
            if present:
                return self.model_copy(update={"first_of": present})
            if self.optional:
                return None
            raise KeyError(" or ".join(self.first_of))
        if not isinstance(self.source, list):
            return self
        for c in self.source:
            if c in file_columns:
                return self.model_copy(update={"source": c})
        if self.optional:
            return None
        raise KeyError(" or ".join(self.source))


class Condition(_Strict):
    """Which rows go to a target: a column empty or not, or in a list of values."""

    column: str
    empty: bool | None = None
    values: list[str] | None = None


class Period(_Strict):
    """How an aggregate row's period is read (counts only)."""

    type: Literal["month", "rolling_12m", "fiscal_quarter"]
    source: str | None = Field(None, alias="from")
    format: str | None = None
    anchor: Literal["start", "end"] = "start"
    year: str | None = None
    quarter: str | None = None
    month_end: Literal["required", "snap"] = Field(
        "required", description="rolling_12m: a date that is not the last day of its month "
        "is quarantined (required) or read as that month's end and reported (snap).")

    @field_validator("format")
    @classmethod
    def _date_format(cls, value: str | None) -> str | None:
        return None if value is None else check_date_format(value)


class Unpivot(_Strict):
    """Wide sources: columns whose names match ``pattern`` become rows."""

    pattern: str
    name: str = "period"
    value: str = "count"

    @field_validator("pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        # Checked here, not at the first file: `profiles --check` must not call it valid.
        return _compile([value])[0]


class Target(_Strict):
    table: str
    mode: Literal["insert", "update"] = "insert"
    when: Condition | None = None
    exclude: list[Exclude] = Field(default_factory=list)
    columns: dict[str, ColumnSpec] = Field(default_factory=dict)
    period: Period | None = None
    adjustment: Literal["negative"] | None = None

    @model_validator(mode="after")
    def _known(self) -> Target:
        if self.table not in TABLES:
            raise ValueError(f"unknown table {self.table!r}; choose from {sorted(TABLES)}")
        known = set(TABLES[self.table].column_names)
        bad = sorted(set(self.columns) - known)
        if bad:
            raise ValueError(f"table {self.table!r} has no column(s) {bad}")
        if self.table == "counts" and self.period is None:
            raise ValueError("a counts target needs a 'period'")
        if self.mode == "update" and not set(TABLES[self.table].key) <= set(self.columns):
            raise ValueError(f"an update target must map the key {TABLES[self.table].key}")
        return self

    def resolve(self, file_columns: list[str]) -> Target:
        """This target for one file, alternative source columns resolved."""
        cols = {}
        for name, spec in self.columns.items():
            r = spec.resolve(file_columns)
            if r is not None:
                cols[name] = r
        return self.model_copy(update={"columns": cols})


class Plausible(_Strict):
    """Ranges outside which a value is an error, quarantined with the reason (the project's
    settings ``earliest_date``, ``latest_date``, ``latitude``, ``longitude``)."""

    earliest_date: dt.date
    latest_date: dt.date
    #: Where the date range comes from, for the quarantine reason.
    why: str = "project settings earliest_date, latest_date"
    latitude: tuple[float, float] = (-90.0, 90.0)
    longitude: tuple[float, float] = (-180.0, 180.0)


class Profile(_Strict):
    """A validated ingest profile."""

    name: str
    description: str = ""
    kind: Literal["records", "counts"] = "records"
    format: Literal["auto", "csv", "parquet"] = "auto"
    encoding: Literal["auto", "utf-8", "utf-8-sig", "windows-1252"] = "auto"
    delimiter: Literal["auto", ",", ";", "\t", "|"] = "auto"
    canonical: bool = Field(False, description="Columns already carry canonical names.")
    check_incident_refs: bool = False
    personal: list[str] = Field(default_factory=list)
    crosswalks: dict[str, Crosswalk] = Field(default_factory=dict)
    unpivot: Unpivot | None = None
    targets: list[Target] = Field(default_factory=list)
    notes: str = ""
    multiline_fields: bool = Field(
        False, description="A quoted field may span lines (a narrative with line breaks). Off, "
        "a quote left open at a line end quarantines that line alone, so one stray quote "
        "cannot swallow the lines after it.")
    decimal: Literal[".", ","] = Field(
        ".", description="Decimal separator of numbers in the source; a number written with "
        "the other one is quarantined, never read as a different number.")
    #: Plausible ranges, from the project's settings at ingest (not written in a profile).
    plausible: Plausible | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        for t in self.targets:
            for name, spec in t.columns.items():
                if spec.crosswalk and spec.crosswalk not in self.crosswalks:
                    raise ValueError(
                        f"{t.table}.{name} uses crosswalk {spec.crosswalk!r}, "
                        f"which the profile does not define"
                    )
        if not self.canonical and not self.targets:
            raise ValueError("a profile needs 'targets' (or 'canonical: true')")
        return self

    @property
    def source_columns(self) -> set[str]:
        """Source columns the profile reads (all must be present in each file)."""
        cols: set[str] = set()
        for t in self.targets:
            for spec in t.columns.values():
                if spec.optional or spec.first_of is not None:
                    continue
                cols.update(spec.source_columns)
            if t.when:
                cols.add(t.when.column)
            cols.update(rule.column for rule in t.exclude)
            if t.period:
                cols.update(c for c in (t.period.source, t.period.year, t.period.quarter) if c)
        if self.unpivot:
            cols -= {self.unpivot.name, self.unpivot.value}
        return cols

    def columns_read(self, columns: list[str], targets: list[Target]) -> set[str]:
        """The columns of a file (``columns``) some of ``targets`` reads: values, routing,
        exclusion rules, periods, and the wide period columns of an unpivot."""
        used = {c for t in targets for spec in t.columns.values() for c in spec.source_columns}
        used |= {t.when.column for t in targets if t.when}
        used |= {rule.column for t in targets for rule in t.exclude}
        for t in targets:
            if t.period:
                used |= {c for c in (t.period.source, t.period.year, t.period.quarter) if c}
        if self.unpivot:
            used |= {c for c in columns if re.fullmatch(self.unpivot.pattern, c)}
        return used


class _ProfileLoader(yaml.SafeLoader):
    """YAML as a profile means it: numbers stay the text written (a code ``037`` is not the
    octal number 31, ``37.2`` not a float, ``8`` not an int); booleans and nulls as usual."""


_ProfileLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers
            if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _yaml(text: str):
    return yaml.load(text, Loader=_ProfileLoader)  # noqa: S506 (a SafeLoader subclass)


def _builtin_dir():
    return resources.files("crimeaudit.ingestion") / "profiles"


def list_profiles() -> dict[str, str]:
    """Built-in profile names and their one-line descriptions."""
    out = {}
    for f in sorted(_builtin_dir().iterdir(), key=lambda p: p.name):
        if f.name.endswith(".yaml"):
            data = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
            out[f.name[:-5]] = " ".join(str(data.get("description", "")).split())
    return out


def _read_profile_text(path: Path) -> str:
    """A profile file's text; one that is not UTF-8 is refused naming the line, not echoed."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise IngestError(f"{path}: line {line}: byte {exc.start} is not UTF-8; save the "
                          f"profile as UTF-8") from None


def load_profile(name_or_path: str | Path | Profile) -> Profile:
    """A built-in profile by name, or a user's profile from a YAML file, validated."""
    if isinstance(name_or_path, Profile):
        return name_or_path
    text_name = str(name_or_path)
    builtin = _builtin_dir() / f"{text_name}.yaml"
    if builtin.is_file():
        text, where = builtin.read_text(encoding="utf-8"), f"built-in profile {text_name!r}"
        base = _builtin_dir()
    else:
        path = Path(text_name)
        if path.is_dir():
            raise IngestError(f"{path}: is a directory, not a profile YAML file")
        if not path.is_file():
            raise IngestError(
                f"no profile {text_name!r}: not a built-in ({', '.join(list_profiles())}) "
                f"and no such file"
            )
        text, where = _read_profile_text(path), str(path)
        base = path.parent
    # Messages below never quote the file's content: `profiles --check /etc/shadow` must not
    # print its lines. They name the line and column instead.
    try:
        data = _yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None)
        raise IngestError(f"{where}: not valid YAML{at}" + (f" ({problem})" if problem else "")
                          ) from None
    if not isinstance(data, dict) or not set(map(str, data)) & set(Profile.model_fields):
        raise IngestError(f"{where}: not a profile YAML (a profile is a YAML mapping with "
                          f"'name' and 'targets'; see the built-in ones: crimeaudit profiles)")
    _include_crosswalk_files(data, base, where)
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or 'profile'}: "
            f"{e['msg'].removeprefix('Value error, ')}" for e in exc.errors()
        )
        raise IngestError(f"{where}: invalid profile: {problems}") from exc


def _include_crosswalk_files(data: dict, base, where: str) -> None:
    """Replace each crosswalk's ``file:`` by the crosswalk that file holds (a path relative to
    the profile's folder), the profile's own entries added on top."""
    crosswalks = data.get("crosswalks")
    if not isinstance(crosswalks, dict):
        return
    for name, cw in crosswalks.items():
        if not isinstance(cw, dict) or not isinstance(cw.get("file"), str):
            continue
        ref = cw["file"]
        path = base / ref
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            why = "not UTF-8" if isinstance(exc, UnicodeDecodeError) else (
                exc.strerror or "cannot read")
            raise IngestError(f"{where}: crosswalk {name!r}: file {ref!r} ({path}): {why}"
                              ) from None
        try:
            shared = _yaml(text) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise IngestError(f"{where}: crosswalk {name!r}: {path} is not valid YAML{at}"
                              ) from None
        if not isinstance(shared, dict):
            raise IngestError(f"{where}: crosswalk {name!r}: {path} is not a crosswalk (a YAML "
                              f"mapping with 'map', 'patterns', 'normalise'...)")
        merged = {**shared, **{k: v for k, v in cw.items() if k != "file"}}
        for part in ("map", "patterns"):
            if isinstance(shared.get(part), dict) and isinstance(cw.get(part), dict):
                merged[part] = {**shared[part], **cw[part]}
        merged["file"] = ref
        crosswalks[name] = merged


def profile_problems(profile: Profile, offences: list[str] | set[str]) -> list[str]:
    """What makes ``profile`` unable to load a single row correctly, in words: a required
    canonical column it does not map, a crosswalk giving an offence class the code list does not
    have, a status other than recorded or cancelled. ``profiles --check`` exits non-zero on any.

    >>> p = Profile.model_validate({"name": "x", "crosswalks": {"c": {"map": {"a": "ZZ9"}}},
    ...     "targets": [{"table": "crimes", "columns": {"crime_id": {"from": "id"},
    ...     "recorded_at": {"from": "d"}, "offence_code": {"from": "o", "crosswalk": "c"}}}]})
    >>> for line in profile_problems(p, {"8N"}): print(line)
    crimes.status is required and the profile does not map it
    crimes.offence_code: crosswalk 'c' gives class 'ZZ9', which the code list does not have
    """
    from crimeaudit.model.codes import UNCLASSIFIED
    from crimeaudit.model.schema import CRIME_STATUSES, OFFENCE_COLUMNS

    known = set(offences) | {UNCLASSIFIED}
    out: list[str] = []
    for t in profile.targets:
        table = TABLES[t.table]
        if t.mode == "insert":
            for col in table.columns:
                if col.required and col.name not in t.columns and col.name != "source" and not (
                        t.table == "counts" and col.name.startswith("period")):
                    out.append(f"{t.table}.{col.name} is required and the profile does not "
                               f"map it")
        for name, spec in t.columns.items():
            allowed = (known if (t.table, name) in OFFENCE_COLUMNS else
                       set(CRIME_STATUSES) if (t.table, name) == ("crimes", "status") else None)
            if allowed is None:
                continue
            if spec.value is not None and spec.value not in allowed:
                out.append(f"{t.table}.{name}: value {spec.value!r} is not one of "
                           f"{', '.join(sorted(allowed)) if len(allowed) < 5 else 'the code list'}")
            if spec.crosswalk:
                cw = profile.crosswalks[spec.crosswalk]
                for code in sorted(cw.classes - allowed):
                    what = "class" if (t.table, name) in OFFENCE_COLUMNS else "status"
                    has = ("which the code list does not have" if what == "class"
                           else "expected recorded or cancelled")
                    out.append(f"{t.table}.{name}: crosswalk {spec.crosswalk!r} gives {what} "
                               f"{code!r}, {has}")
    return out
