"""The DuckDB SQL of the ingest stage: reading a file as text, converting and checking it.

The file is read with every column as text, each canonical column is converted and checked by
SQL expressions, and the rows split into loaded and quarantined without a Python loop over rows.
These builders only write SQL text; :mod:`crimeaudit.engine.duckdb_loader` runs it. They live
behind the engine because they are DuckDB's dialect (its CSV reader's reject tables, UNPIVOT,
``COLUMNS(*)``), not the ingest stage's rules.

>>> print(quote_ident('Crime ID'))
"Crime ID"
>>> literal("it's")
"'it''s'"
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from crimeaudit.model.codes import UNCLASSIFIED
from crimeaudit.model.schema import CRIME_STATUSES, OFFENCE_COLUMNS, TABLES, Column

if TYPE_CHECKING:  # the profile's types only: the engine does not import the ingest stage
    from crimeaudit.ingestion.profile import ColumnSpec, Crosswalk, Period, Target

BOOL_TRUE = ("true", "t", "1", "yes", "y")
BOOL_FALSE = ("false", "f", "0", "no", "n")
SEP = "\x1f"  # between the column and the reason text in a stage's __reason
#: Starts the __reason of a row outside the profile's scope (excluded, not quarantined):
#: EXCLUDED + source column + SEP + the rule's reason + SEP + the source value.
EXCLUDED = "\x1e"

#: DuckDB's longest CSV line: above the ingest stage's own limit, so that on a file the stage
#: found clean (every line within its limit) the reader never drops a line the stage counted.
MAX_LINE_SIZE = 4 << 20


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def read_csv_sql(path: str, columns: list[str], delimiter: str) -> str:
    """DuckDB's reader over a file the ingest stage found clean. Errors are skipped rather than
    raised (an error would abort the ingest's transaction): the loader compares the count with
    the stage's and re-reads the file through the stage's splitter if a row went missing."""
    cols = "{" + ", ".join(f"{literal(c)}: 'VARCHAR'" for c in columns) + "}"
    return (
        f"SELECT * FROM read_csv({literal(path)}, "
        f"columns={cols}, header=true, delim={literal(delimiter)}, quote='\"', escape='\"', "
        f"auto_detect=false, ignore_errors=true, null_padding=false, "
        f"max_line_size={MAX_LINE_SIZE})"
    )


def read_parquet_sql(path: str, columns: list[str]) -> str:
    cast = ", ".join(f"CAST({quote_ident(c)} AS VARCHAR) AS {quote_ident(c)}" for c in columns)
    return (
        f"SELECT file_row_number + 1 AS __rn, {cast} "
        f"FROM read_parquet({literal(path)}, file_row_number=true)"
    )


def unpivot_sql(source: str, columns: list[str], pattern: str, name: str, value: str) -> str:
    wide = [c for c in columns if re.fullmatch(pattern, c)]
    if not wide:
        return ""
    on = ", ".join(quote_ident(c) for c in wide)
    return (
        f"SELECT * FROM {source} UNPIVOT INCLUDE NULLS "
        f"({quote_ident(value)} FOR {quote_ident(name)} IN ({on}))"
    )


def trimmed(value: str) -> str:
    """``NULLIF(trim(value), '')``, without the cost of trim() where it changes nothing.

    trim() copies every string (it strips Unicode spaces too, so it decodes). Most values have
    no space at either end and are plain ASCII: those are passed through as they are, and only
    the rest are trimmed. Same result, at a fraction of the cost over a whole file.

    >>> import duckdb
    >>> duckdb.sql(f"SELECT {trimmed('v')} FROM (VALUES (' a '), (''), ('b'), "
    ...            "('c' || chr(160))) t(v)").fetchall()
    [('a',), (None,), ('b',), ('c',)]
    """
    return (f"CASE WHEN {value} = '' THEN NULL WHEN prefix({value}, ' ') OR suffix({value}, ' ') "
            f"OR strlen({value}) <> length({value}) THEN NULLIF(trim({value}), '') "
            f"ELSE {value} END")


class TargetSQL:
    """Builds the SELECT that converts and checks the rows one target receives."""

    def __init__(self, target: Target, crosswalks: dict[str, Crosswalk], known_offences: list[str],
                 personal_sources: set[str], hash_sql, file_label: str, source_value: str,
                 decimal: str = ".", plausible: Any = None,
                 exclusions: list[tuple[str, list[str], str]] | None = None):
        self.t = target
        # (source column, the values of it present in the file that the profile excludes,
        # reason): resolved by the loader from the profile's rules, checked before anything else
        self.exclusions = exclusions or []
        self.decimal = decimal
        # earliest_date, latest_date, latitude, longitude: values outside are quarantined
        self.plausible = plausible
        self.table = TABLES[target.table]
        self.crosswalks = crosswalks
        self.offences = known_offences
        self.personal_sources = personal_sources
        self.hash_sql = hash_sql
        self.file_label = file_label
        self.source_value = source_value

    # -- one column ---------------------------------------------------------------------------
    def _raw(self, spec: ColumnSpec) -> str:
        def col(c: str) -> str:
            return quote_ident(c)  # already trimmed, '' as NULL, by select()

        if spec.value is not None:
            raw = literal(spec.value)
        elif spec.row_id:
            raw = "__ca_rowid"  # made by the loader from the row's content
        elif spec.first_of is not None:
            raw = f"coalesce({', '.join(col(c) for c in spec.first_of)})"
        elif spec.concat is not None:
            parts = ", ".join(col(c) for c in spec.concat)
            raw = f"NULLIF(concat_ws({literal(spec.sep)}, {parts}), '')"
        else:
            raw = col(spec.source)
        if spec.prefix:
            raw = f"({literal(spec.prefix)} || {raw})"
        return raw

    def _crosswalk(self, raw: str, cw: Crosswalk) -> str:
        if not cw.map:
            return raw if cw.keep else (literal(cw.default) if cw.default else "NULL")
        whens = " ".join(
            f"WHEN {literal(k)} THEN {literal(v) if v is not None else 'NULL'}"
            for k, v in cw.map.items()
        )
        other = raw if cw.keep else (literal(cw.default) if cw.default is not None else "NULL")
        return f"(CASE {raw} {whens} ELSE {other} END)"

    def _convert(self, raw: str, col: Column, formats: list[str]) -> str:
        if col.type in ("timestamp", "date"):
            fmts = [f for f in formats if f != "auto"]
            if fmts:
                parts = ", ".join(f"try_strptime({raw}, {literal(f)})" for f in fmts)
                expr = f"coalesce({parts}, NULL)" if len(fmts) > 1 else parts
            else:
                expr = f"TRY_CAST({raw} AS TIMESTAMP)"
            return f"CAST({expr} AS DATE)" if col.type == "date" else f"CAST({expr} AS TIMESTAMP)"
        if col.type == "float":
            # Only the declared decimal separator: "51,3" is 51.3 where the profile says
            # decimal: ",", and unparseable (quarantined) otherwise, never 513. No digit
            # grouping ("1,234", "1_234") and nothing infinite or not a number.
            if self.decimal == ",":
                text = f"CASE WHEN strpos({raw}, '.') = 0 THEN replace({raw}, ',', '.') END"
            else:
                text = raw
            num = f"TRY_CAST(CASE WHEN strpos({raw}, '_') = 0 THEN {text} END AS DOUBLE)"
            return f"(CASE WHEN isfinite({num}) THEN {num} END)"
        if col.type == "int":
            return f"TRY_CAST({raw} AS BIGINT)"
        if col.type == "bool":
            # The exact spellings first, and no IN list of five or more: DuckDB turns those
            # into joins evaluated on every row, lower() (a copy of each string) included.
            other = " ".join(f"WHEN {literal(w)} THEN {v}" for words, v in
                             ((BOOL_TRUE, "true"), (BOOL_FALSE, "false")) for w in words)
            return (f"(CASE {raw} WHEN 'true' THEN true WHEN 'false' THEN false "
                    f"ELSE (CASE lower({raw}) {other} END) END)")
        return raw

    def column(self, col: Column, spec: ColumnSpec | None) -> tuple[str, list[tuple[str, str]]]:
        """The converted SQL value of ``col`` and its checks: (condition, reason SQL)."""
        checks: list[tuple[str, str]] = []
        where = f"{self.t.table}.{col.name}"
        if spec is None:
            if col.name == "source":
                return literal(self.source_value), checks
            if col.required:
                checks.append(("TRUE", literal(f"missing required field {where}: the profile "
                                               f"does not map it")))
            return "NULL", checks
        src_name = ", ".join(spec.source_columns) or "(value)"
        raw = self._raw(spec)
        if col.required:
            checks.append((f"{raw} IS NULL",
                           literal(f"missing required field {where} (source column {src_name})")))
        value = raw
        if spec.crosswalk:
            cw = self.crosswalks[spec.crosswalk]
            value = self._crosswalk(raw, cw)
            if cw.strict and (self.t.table, col.name) not in OFFENCE_COLUMNS:
                checks.append((f"{raw} IS NOT NULL AND {value} IS NULL",
                               f"'no crosswalk entry for ''' || {raw} || ''' in column "
                               f"{src_name} (crosswalk {spec.crosswalk})'"))
        converted = self._convert(value, col, spec.formats)
        if converted != value:
            fmt = f" (expected {' or '.join(spec.formats)})" if spec.formats else ""
            if col.type == "float":
                fmt = f" (expected a number with decimal separator ''{self.decimal}'')"
            checks.append((f"{value} IS NOT NULL AND {converted} IS NULL",
                           f"'unparseable {col.type} ''' || {value} || ''' in column "
                           f"{src_name}{fmt}'"))
        if (self.t.table, col.name) in OFFENCE_COLUMNS:
            codes = ", ".join(literal(c) for c in [*self.offences, UNCLASSIFIED])
            cw = self.crosswalks[spec.crosswalk] if spec.crosswalk else None
            if cw is not None and not cw.strict:
                # A crime whose category has no class is loaded as unclassified (its source
                # category is kept beside it), never lost.
                converted = (f"coalesce({converted}, CASE WHEN {raw} IS NOT NULL THEN "
                             f"{literal(UNCLASSIFIED)} END)")
            checks.append((f"{converted} IS NOT NULL AND {converted} NOT IN ({codes})",
                           f"'unknown offence code ''' || {converted} || ''''"
                           if not spec.crosswalk else
                           f"'unknown offence code: crosswalk {spec.crosswalk} gives class ''' "
                           f"|| {converted} || ''' for {src_name} ''' || {raw} || ''', which "
                           f"the code list does not have'"))
            if cw is not None and cw.strict:
                checks.append((f"{raw} IS NOT NULL AND {converted} IS NULL",
                               f"'unknown offence code: no code-list class for {src_name} ''' "
                               f"|| {raw} || ''' (crosswalk {spec.crosswalk} is strict)'"))
        checks += self._plausible(col, converted, value, src_name)
        if self.t.table == "crimes" and col.name == "status":
            allowed = ", ".join(literal(s) for s in CRIME_STATUSES)
            checks.append((f"{converted} IS NOT NULL AND {converted} NOT IN ({allowed})",
                           f"'unknown status ''' || {converted} || ''' (expected recorded or "
                           f"cancelled)'"))
        if col.name == "source":
            converted = f"coalesce({converted}, {literal(self.source_value)})"
        if col.personal or set(spec.source_columns) & self.personal_sources:
            converted = self._hash(converted, spec)
        return converted, checks

    def _date_range(self, day: str, value: str, src_name: str,
                    timestamp: bool = False) -> list[tuple[str, str]]:
        """A date outside the project's plausible range (a year 2099, 1900 or 0001) is a
        typing or export error, and one such row can swamp every figure: quarantined.
        (Timestamps are compared as timestamps: cheaper than casting each to a date.)"""
        p = self.plausible
        if p is None:
            return []
        lo, hi = p.earliest_date.isoformat(), p.latest_date.isoformat()
        why = p.why.replace("'", "''")
        between = (f"TIMESTAMP '{lo}' AND TIMESTAMP '{hi} 23:59:59.999999'" if timestamp
                   else f"DATE '{lo}' AND DATE '{hi}'")
        return [(f"{day} NOT BETWEEN {between}",
                 f"'implausible date ''' || {value} || ''' in column {src_name}: outside "
                 f"{lo} to {hi} ({why})'")]

    def _plausible(self, col: Column, converted: str, value: str,
                   src_name: str) -> list[tuple[str, str]]:
        """Checks of a converted value against the project's plausible ranges."""
        p = self.plausible
        if p is None:
            return []
        if col.type in ("timestamp", "date"):
            return self._date_range(converted, value, src_name, col.type == "timestamp")
        if col.type == "float" and col.name in ("latitude", "longitude"):
            lo, hi = getattr(p, col.name)
            return [(f"{converted} NOT BETWEEN {float(lo)!r} AND {float(hi)!r}",
                     f"'implausible {col.name} ''' || {value} || ''' in column {src_name}: "
                     f"outside {lo:g} to {hi:g} (project setting {col.name})'")]
        return []

    def _hash(self, value: str, spec: ColumnSpec) -> str:
        """The pseudonym of ``value``, unless it is made of personal source columns only:
        those were pseudonymised as the file was read (see the loader), and are kept as they
        are (the pseudonym of a trimmed value, as :func:`~crimeaudit.ingestion.pseudonym.
        pseudonym` gives it)."""
        sources = set(spec.source_columns)
        if sources and sources <= self.personal_sources:
            return value
        return self.hash_sql(value)

    # -- periods (counts) -----------------------------------------------------------------------
    def period(self, p: Period) -> tuple[dict[str, str], list[tuple[str, str]]]:
        checks: list[tuple[str, str]] = []
        if p.type == "fiscal_quarter":
            y, q = quote_ident(p.year), quote_ident(p.quarter)
            yi = f"TRY_CAST(left({y}, 4) AS INTEGER)"
            qi = f"TRY_CAST(regexp_extract({q}, '([1-4])', 1) AS INTEGER)"
            start = f"CAST(make_date({yi}, 4, 1) + to_months(3 * ({qi} - 1)) AS DATE)"
            end = f"CAST({start} + INTERVAL 3 MONTH - INTERVAL 1 DAY AS DATE)"
            checks.append((f"{y} IS NULL OR {q} IS NULL",
                           literal(f"missing required field period ({p.year}, {p.quarter})")))
            checks.append((f"{yi} IS NULL OR {qi} IS NULL",
                           f"'unparseable financial year/quarter ''' || {y} || ''' ''' || {q}"
                           f" || ''''"))
            checks += self._date_range(start, y, p.year)
            return {"period_start": start, "period_end": end, "period_type": "'quarter'"}, checks
        raw = quote_ident(p.source)
        day = f"CAST(try_strptime({raw}, {literal(p.format)}) AS DATE)"
        checks.append((f"{raw} IS NULL", literal(f"missing required field period ({p.source})")))
        checks.append((f"{day} IS NULL",
                       f"'unparseable date ''' || {raw} || ''' in column {p.source} "
                       f"(expected {p.format})'"))
        checks += self._date_range(day, raw, p.source)
        if p.type == "month":
            start = f"CAST(date_trunc('month', {day}) AS DATE)"
            return {"period_start": start, "period_end": f"last_day({start})",
                    "period_type": "'month'"}, checks
        start = f"CAST(date_trunc('month', {day}) - INTERVAL 11 MONTH AS DATE)"
        if p.month_end == "snap":
            # Loaded as the 12 months ending that month, and reported (see adjustments()).
            return {"period_start": start, "period_end": f"last_day({day})",
                    "period_type": "'rolling_12m'"}, checks
        checks.append((f"{day} <> last_day({day})",
                       f"'malformed date ''' || {raw} || ''' in column {p.source}: a 12-month "
                       f"period ends on the last day of a month, so the period is not known'"))
        return {"period_start": start, "period_end": day, "period_type": "'rolling_12m'"}, checks

    def adjustments(self) -> list[tuple[str, str, str]]:
        """Values the profile's rules read otherwise than written, to be reported with their
        rows: (condition, the source value's SQL, what was done)."""
        p = self.t.period
        if p is None or p.type != "rolling_12m" or p.month_end != "snap":
            return []
        raw = quote_ident(p.source)
        day = f"CAST(try_strptime({raw}, {literal(p.format)}) AS DATE)"
        return [(f"{day} <> last_day({day})", raw,
                 f"{p.source}: not the last day of a month; read as the 12 months ending on "
                 f"that month's last day (profile: month_end: snap)")]

    # -- the whole target -----------------------------------------------------------------------
    def _exprs(self) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
        """Each canonical column's converted value, and the checks (condition, reason, column)."""
        exprs: dict[str, str] = {}
        checks: list[tuple[str, str, str]] = []
        for column, values, reason in self.exclusions:
            if values:
                raw = quote_ident(column)
                checks.append((f"{raw} IN ({', '.join(literal(v) for v in values)})",
                               f"{literal(reason + SEP)} || {raw}", EXCLUDED + column))
        for col in self.table.columns:
            if self.t.table == "counts" and col.name in ("period_start", "period_end",
                                                         "period_type", "adjustment"):
                continue
            spec = self.t.columns.get(col.name)
            if spec is None and self.t.mode == "update":
                continue
            if spec is None and col.name == "source_offence_description":
                spec = self._category_of_offence()
            value, cs = self.column(col, spec)
            exprs[col.name] = value
            checks += [(cond, reason, col.name) for cond, reason in cs]
        if self.t.table == "crimes" and {"reported_at", "recorded_at"} <= set(self.t.columns):
            rec, rep = exprs["recorded_at"], exprs["reported_at"]
            checks.append((f"{rec} < {rep}",
                           "'crime recorded ' || CAST(" + rec + " AS VARCHAR) || ' before it "
                           "was reported ' || CAST(" + rep + " AS VARCHAR)",
                           "recorded_at"))
        if self.t.table == "counts":
            pexprs, pchecks = self.period(self.t.period)
            exprs.update(pexprs)
            checks += [(c, r, "period") for c, r in pchecks]
            exprs["adjustment"] = (f"coalesce({exprs['count']} < 0, false)"
                                   if self.t.adjustment == "negative" else "false")
        return exprs, checks

    def _category_of_offence(self) -> ColumnSpec | None:
        """The source category behind a crosswalked offence class, for a profile that keeps
        neither the source's code nor its description: an unclassified crime always says what
        the source called it."""
        spec = self.t.columns.get("offence_code")
        if (self.t.table != "crimes" or spec is None or not spec.crosswalk
                or "source_offence_code" in self.t.columns):
            return None
        return spec.model_copy(update={"crosswalk": None, "format": None})

    @staticmethod
    def _reason(checks: list[tuple[str, str, str]]) -> str:
        # The column travels in the reason (before a unit separator) so that the checks are
        # evaluated once per row, not once for the reason and again for the column.
        if not checks:
            return "NULL"
        return "CASE " + " ".join(
            f"WHEN {c} THEN {literal(n + SEP)} || {r}" for c, r, n in checks) + " END"

    @staticmethod
    def _clean(source: str) -> str:
        # Trim every text value and read '' as missing once, in an inner projection, rather
        # than in each of the several expressions that use a column.
        return f"SELECT __rn, {trimmed('COLUMNS(* EXCLUDE (__rn))')} FROM {source}"

    def select(self, source: str, file_columns: list[str]) -> str:
        """The converted rows with ``__rn`` and ``__reason`` (NULL when the row loads)."""
        exprs, checks = self._exprs()
        cols = ", ".join(f"{v} AS {quote_ident(k)}" for k, v in exprs.items())
        return (f"SELECT __rn, {cols}, {self._reason(checks)} AS __reason "
                f"FROM ({self._clean(source)}) WHERE {self.condition()}")

    def check_select(self, source: str, keep: list[str]) -> str:
        """Narrow rows for the checks: ``__rn``, the ``keep`` columns and ``__reason``.

        The checks alone: no pseudonyms (other than of kept columns) and no wide text, so the
        whole file's verdicts fit in a small table.
        """
        exprs, checks = self._exprs()
        cols = "".join(f"{exprs[k]} AS {quote_ident(k)}, " for k in keep)
        return (f"SELECT __rn, {cols}{self._reason(checks)} AS __reason "
                f"FROM ({self._clean(source)}) WHERE {self.condition()}")

    def insert_select(self, source: str, names: list[str], verdicts: str | None) -> str:
        """The converted ``names`` of the rows that load: those this target takes, minus the
        rows ``verdicts`` (a table made from :meth:`check_select`) gives a reason."""
        exprs, _ = self._exprs()
        cols = ", ".join(f"{exprs[k]} AS {quote_ident(k)}" for k in names)
        where = self.condition()
        if verdicts:
            where += (f" AND s.__rn NOT IN (SELECT __rn FROM {verdicts} "
                      f"WHERE __reason IS NOT NULL)")
        return f"SELECT {cols} FROM ({self._clean(source)}) s WHERE {where}"

    def condition(self, untrimmed: bool = False) -> str:
        """Which rows this target takes (``untrimmed``: on the source as read)."""
        w = self.t.when
        if w is None:
            return "TRUE"
        raw = quote_ident(w.column)
        if untrimmed:
            raw = f"NULLIF(trim({raw}), '')"
        if w.values is not None:
            inside = f"{raw} IN ({', '.join(literal(v) for v in w.values)})"
            return f"coalesce({inside}, false)"
        return f"{raw} IS NULL" if w.empty else f"{raw} IS NOT NULL"


def key_checks(table: str, key: tuple[str, ...], store_has_rows: bool, incident_check: bool,
               update: bool = False, stage: str = "__ca_stage") -> list[str]:
    """Statements that mark duplicate ids and dangling incident references in the stage.

    Each is a set-wise UPDATE of rows still without a reason; on clean data they change nothing,
    so they cost one hash aggregate or semi-join each (a window over every key is far slower).
    """
    k = ", ".join(quote_ident(c) for c in key)
    keyed = " AND ".join(f"{quote_ident(c)} IS NOT NULL" for c in key)
    label = " || '/' || ".join(f"CAST(s.{quote_ident(c)} AS VARCHAR)" for c in key)
    on_d = " AND ".join(f"d.{quote_ident(c)} = s.{quote_ident(c)}" for c in key)
    on_e = " AND ".join(f"e.{quote_ident(c)} = s.{quote_ident(c)}" for c in key)
    col = literal(key[-1] + SEP)
    out = [
        f"UPDATE {stage} s SET __reason = {col} || 'duplicate id ''' || {label} || ''' (first "
        f"seen on an earlier line of this file)' FROM (SELECT {k}, min(__rn) AS "
        f"__first FROM {stage} WHERE __reason IS NULL AND {keyed} GROUP BY {k} "
        f"HAVING count(*) > 1) d WHERE {on_d} AND s.__rn <> d.__first AND s.__reason IS NULL"
    ]
    if update:
        out.append(
            f"UPDATE {stage} s SET __reason = {col} || 'no {table} row ''' || {label} "
            f"|| ''' in the "
            f"store to update (ingest its source first)' WHERE s.__reason IS NULL "
            f"AND NOT EXISTS (SELECT 1 FROM {quote_ident(table)} e WHERE {on_e})")
    elif store_has_rows:
        out.append(
            f"UPDATE {stage} s SET __reason = {col} || 'duplicate id ''' || {label} "
            f"|| ''' (already "
            f"in the store from an earlier file)' WHERE s.__reason IS NULL "
            f"AND EXISTS (SELECT 1 FROM {quote_ident(table)} e WHERE {on_e})")
    if incident_check:
        out.append(
            f"UPDATE {stage} s SET __reason = {literal('incident_id' + SEP)} || 'crime points at "
            f"incident ''' || s.incident_id || ''', which is not in the store' "
            f"WHERE s.__reason IS NULL "
            f"AND s.incident_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM incidents i "
            f"WHERE i.incident_id = s.incident_id)")
    return out


DROPPED = "[not mapped]"  # a column of the file no target reads, in quarantined text


def raw_text_sql(columns: list[str], delimiter: str, dropped: set[str] = frozenset(),
                 alias: str = "src") -> str:
    """The quarantined row as text: personal columns as the pseudonyms they were read as, and
    the ``dropped`` ones (personal or unmapped, never read) as :data:`DROPPED`."""
    parts = ", ".join(literal(DROPPED) if c in dropped
                      else f"coalesce({alias}.{quote_ident(c)}, '')" for c in columns)
    return f"concat_ws({literal(delimiter)}, {parts})"
