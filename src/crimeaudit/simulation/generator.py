"""The synthetic force: incidents, crime records, reclassifications and the ground truth.

Everything is drawn with numpy ``Generator(PCG64)`` streams seeded from (seed, stage), so the
same scenario and seed give the same tables, and a change to one stage's draws leaves the
others alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crimeaudit.model.codes import load_code_lists
from crimeaudit.model.schema import TABLES
from crimeaudit.progress import Progress, resolve
from crimeaudit.simulation import narratives
from crimeaudit.simulation.behaviour import OffenceBook, calibrated_probability, pick_from
from crimeaudit.simulation.calendar import (
    US_PER_DAY,
    day_zero,
    in_pressure_window,
    next_boundary,
    report_times,
)
from crimeaudit.simulation.force import (
    build_force,
    draw_officers,
    draw_places,
    draw_victims,
    pseudonyms,
)
from crimeaudit.simulation.scenario import Scenario

# Record kinds: the crime an incident disclosed, a second record of the same crime, a record
# made for an incident that disclosed no crime, a crime reported with no incident at all.
MAIN, DUPLICATE, ERROR, WALK_IN = 0, 1, 2, 3
_FALLBACK_OFFENCES = {"49": 0.5, "105A": 0.3, "9A": 0.2}


def _rng(seed: int, stage: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stage])))


def _choice(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    w = np.asarray(weights, float)
    return np.searchsorted(np.cumsum(w / w.sum()), rng.random(n), side="right").clip(
        0, len(w) - 1
    )


def _lognormal(rng, median: float, sigma: float, n: int) -> np.ndarray:
    return np.exp(np.log(median) + sigma * rng.standard_normal(n))


@dataclass
class _Era:
    """A scenario's behaviour resolved to per-offence arrays (one before, one after reform)."""

    s: Scenario
    book: OffenceBook

    def __post_init__(self) -> None:
        s, b = self.s, self.book
        self.record = b.by_strand(s.recording.by_strand, 1.0)
        self.downgrade = b.by_strand(s.downgrading.by_strand)
        self.division_downgrade = np.stack([
            b.by_strand({**s.downgrading.by_strand, **d.downgrading}) for d in s.divisions
        ])
        self.cancel = b.by_strand(s.cancellation.rate)
        self.invalid = b.by_strand(s.cancellation.invalid_share)
        self.pressured = b.in_strands(s.target_pressure.strands)
        self.value_median = b.by_strand(s.property_values.median, np.nan)
        self.division_odds = np.log([d.recording_odds for d in s.divisions])


def generate(s: Scenario, seed: int, n_incidents: int | None = None,
             progress: Progress | None = None) -> dict[str, pa.Table]:
    """All five tables for scenario ``s`` and ``seed``, in canonical schemas, sorted by key."""
    progress = resolve(progress)
    codes = load_code_lists()
    book = OffenceBook(codes, s.downgrading.targets)
    after = s.after_reform()
    eras = (_Era(s, book), _Era(after, OffenceBook(codes, after.downgrading.targets)))
    n = n_incidents if n_incidents is not None else s.n_incidents()
    if n < 1:
        raise ValueError("the number of incidents must be at least 1")
    steps = ("incidents", "recording", "classification", "cancellation", "narratives", "tables")
    with progress.task("Simulating the force", total=len(steps)) as advance:
        inc = _incidents(s, seed, n, book)
        advance(1)
        rec = _records(s, eras, seed, inc, book)
        advance(1)
        _classify(eras, seed, rec, book, inc)
        advance(1)
        _cancel_and_close(s, eras, seed, rec, book, inc["after"])
        advance(1)
        n_inc = inc["n"]  # walk-ins have no narrative: they are not in the incident log
        text = narratives.write(_rng(seed, 50), inc["types"], inc["type_code"][:n_inc],
                                inc["discloses"][:n_inc], inc["true_code"][:n_inc], book,
                                inc["severity"][:n_inc], s.narratives)
        advance(1)
        tables = _tables(s, seed, inc, rec, book, text)
        advance(1)
    return tables


def _incidents(s: Scenario, seed: int, n: int, book: OffenceBook) -> dict[str, np.ndarray]:
    """Incidents, plus walk-in reports appended after them (dropped from the incident log)."""
    rng = _rng(seed, 1)
    disclosing_share = sum(t.weight * t.discloses_crime for t in s.incident_types.values()) / sum(
        t.weight for t in s.incident_types.values()
    )
    n_walk = int(round(n * disclosing_share * s.no_incident_share / (1 - s.no_incident_share)))
    total = n + n_walk
    t = report_times(rng, total, s.period, s.shape)
    # Walk-ins are interleaved in time: take them from random positions of the sorted times.
    walk = np.zeros(total, bool)
    walk[rng.choice(total, size=n_walk, replace=False)] = True
    order = np.concatenate([np.flatnonzero(~walk), np.flatnonzero(walk)])
    t = t[order]
    walk = walk[order]
    types = list(s.incident_types)
    type_code = _choice(rng, np.array([s.incident_types[x].weight for x in types]), total)
    p_disc = np.array([s.incident_types[x].discloses_crime for x in types])[type_code]
    discloses = rng.random(total) < p_disc
    discloses[walk] = True
    true_code = np.full(total, -1, np.int64)
    for k, name in enumerate(types):
        mix = s.incident_types[name].offences
        rows = np.flatnonzero((type_code == k) & discloses & ~walk)
        if mix and len(rows):
            idx = np.array([book.index[c] for c in mix])
            true_code[rows] = idx[_choice(rng, np.array(list(mix.values())), len(rows))]
    # Walk-ins and online reports carry the offence mix of the crimes reported by phone.
    phoned = true_code[discloses & ~walk]
    if n_walk:
        true_code[walk] = (phoned[rng.integers(0, len(phoned), n_walk)] if len(phoned)
                           else book.index["49"])
    force = build_force(s, _rng(seed, 2))
    division = _choice(rng, force.division_weights, total)
    officer = draw_officers(rng, force, division)
    street, lat, lon = draw_places(rng, force, division)
    victim = draw_victims(rng, total, s.victims.distinct_share)
    after = np.zeros(total, bool)
    if s.reform is not None:
        after = t >= _us(s.reform.date)
    # How strongly the facts show the more serious class: 0 vague, 1 clear (drives narratives).
    severity = rng.random(total)
    return {
        "n": n, "total": total, "t": t, "walk": walk, "type_code": type_code,
        "types": types, "discloses": discloses, "true_code": true_code, "division": division,
        "officer": officer, "street": street, "lat": lat, "lon": lon, "victim": victim,
        "after": after, "force": force, "severity": severity,
    }


def _records(s: Scenario, eras, seed: int, inc: dict, book: OffenceBook) -> dict[str, np.ndarray]:
    """Which incidents get a crime record, when, plus duplicates and records made in error."""
    rng = _rng(seed, 3)
    total, after = inc["total"], inc["after"]
    disc = np.flatnonzero(inc["discloses"] & ~inc["walk"])
    code = inc["true_code"][disc]
    z = _rng(seed, 4).standard_normal(inc["force"].n_officers)
    p = np.zeros(len(disc))
    for e, era in enumerate(eras):
        rows = after[disc] == bool(e)
        if not rows.any():
            continue
        off = inc["officer"][disc][rows]
        effect = (era.division_odds[inc["division"][disc][rows]]
                  + era.s.recording.officer_sd * z[off])
        fixed = np.full(rows.sum(), np.nan)
        overrides = era.s.recording.officer_overrides
        if overrides:
            names = np.asarray(pseudonyms("OFF-", off + 1, 4).to_pylist(), dtype=object)
            for name, prob in overrides.items():
                fixed[names == name] = prob
        p[rows] = calibrated_probability(era.record[code[rows]], effect, code[rows], fixed)
    recorded = np.zeros(total, bool)
    recorded[disc] = rng.random(len(disc)) < p
    recorded[inc["walk"]] = True
    # Records made for incidents that disclosed no crime (to be cancelled as recorded in error).
    non = np.flatnonzero(~inc["discloses"])
    rate = _era_value(eras, after[non], lambda x: x.s.recording.non_crime_rate)
    err = non[rng.random(len(non)) < rate]
    err_code = np.empty(len(err), np.int64)
    types = inc["types"]
    for k, name in enumerate(types):
        rows = np.flatnonzero(inc["type_code"][err] == k)
        mix = s.incident_types[name].offences or _FALLBACK_OFFENCES
        idx = np.array([book.index[c] for c in mix])
        err_code[rows] = idx[_choice(rng, np.array(list(mix.values())), len(rows))]
    main = np.flatnonzero(recorded)
    kind = np.concatenate([np.where(inc["walk"][main], WALK_IN, MAIN), np.full(len(err), ERROR)])
    src = np.concatenate([main, err])
    true = np.concatenate([inc["true_code"][main], err_code])
    delay = rng.random(len(src)) < _era_value(eras, after[src], lambda x: x.s.delay.late_share)
    med = np.where(delay, _era_value(eras, after[src], lambda x: x.s.delay.late_median_hours),
                   _era_value(eras, after[src], lambda x: x.s.delay.median_hours))
    sig = np.where(delay, _era_value(eras, after[src], lambda x: x.s.delay.late_sigma),
                   _era_value(eras, after[src], lambda x: x.s.delay.sigma))
    hours = np.exp(np.log(med) + sig * rng.standard_normal(len(src)))
    hours[kind == WALK_IN] *= 0.3  # recorded at the front counter or from the online form
    # Systems stamp records to the second.
    recorded_at = inc["t"][src] + (hours * 3600).astype(np.int64) * 1_000_000
    # Target pressure: records due just before a period end are pushed into the next period.
    deferred = np.zeros(len(src), bool)
    for e, era in enumerate(eras):
        tp = era.s.target_pressure
        if not tp.strands or tp.deferral_probability == 0:
            continue
        rows = (after[src] == bool(e)) & era.pressured[true] & (kind != ERROR)
        rows &= in_pressure_window(recorded_at, tp.period, tp.last_days)
        rows &= rng.random(len(src)) < tp.deferral_probability
        push = rng.integers(1800, 48 * 3600, len(src)) * 1_000_000
        deferred |= rows
        recorded_at = np.where(rows, next_boundary(recorded_at, tp.period) + push.astype(np.int64),
                               recorded_at)
    # Duplicates: a second record of the same crime, made a little later.
    dup_rate = _era_value(eras, after[main], lambda x: x.s.cancellation.duplicate_rate)
    dup_of = np.flatnonzero(rng.random(len(main)) < dup_rate)
    dup_at = recorded_at[dup_of] + rng.integers(3600, 72 * 3600, len(dup_of)) * 1_000_000
    return {
        "src": np.concatenate([src, src[dup_of]]),
        "kind": np.concatenate([kind, np.full(len(dup_of), DUPLICATE)]),
        "true": np.concatenate([true, true[dup_of]]),
        "recorded_at": np.concatenate([recorded_at, dup_at]),
        "deferred": np.concatenate([deferred, deferred[dup_of]]),
        "dup_of": np.concatenate([np.full(len(src), -1), dup_of]),
    }


def _us(day) -> int:
    return int(np.datetime64(day, "D").astype("datetime64[us]").astype(np.int64))


def _era_value(eras, after: np.ndarray, get) -> np.ndarray:
    return np.where(after, get(eras[1]), get(eras[0]))


def _classify(eras, seed: int, rec: dict, book: OffenceBook, inc: dict) -> None:
    """Initial and final class of each record, and the reclassifications between them."""
    rng = _rng(seed, 5)
    m = len(rec["src"])
    after = inc["after"][rec["src"]]
    true = rec["true"]
    division = inc["division"][rec["src"]]
    first = true.copy()
    final = true.copy()
    changed_at = np.full(m, -1, np.int64)
    lag = (_lognormal(rng, 1.0, 0.8, m)
           * _era_value(eras, after, lambda x: x.s.downgrading.reclassify_median_days)
           * 86400).astype(np.int64) * 1_000_000
    later = rng.random(m) >= _era_value(eras, after, lambda x: x.s.downgrading.at_recording_share)
    action_at = np.where(later, rec["recorded_at"] + lag, rec["recorded_at"])
    p = np.zeros(m)
    for e, era in enumerate(eras):
        rows = after == bool(e)
        p_e = era.division_downgrade[division, true]
        tp = era.s.target_pressure
        if tp.strands:
            hot = era.pressured[true] & in_pressure_window(action_at, tp.period, tp.last_days)
            p_e = np.where(hot, np.minimum(1.0, p_e * tp.downgrade_multiplier), p_e)
        p[rows] = p_e[rows]
    lower = pick_from(rng, book.downgrades, true)
    higher = pick_from(rng, book.upgrades, true)
    u = rng.random(m)
    is_main = rec["kind"] != DUPLICATE
    down = is_main & (u < p) & (lower >= 0)
    final[down] = lower[down]
    first[down & ~later] = lower[down & ~later]
    changed_at[down & later] = action_at[down & later]
    # Legitimate corrections: a first class that later information shows wrong, put right.
    corr_rate = _era_value(eras, after, lambda x: x.s.downgrading.correction_rate)
    miss_rate = _era_value(eras, after, lambda x: x.s.downgrading.misclassification_rate)
    v = rng.random(m)
    wrong_first = np.where(rng.random(m) < 0.5, lower, higher)
    wrong_first = np.where(wrong_first < 0, np.maximum(lower, higher), wrong_first)
    corr = is_main & ~down & (v < corr_rate) & (wrong_first >= 0)
    first[corr] = wrong_first[corr]
    changed_at[corr] = rec["recorded_at"][corr] + lag[corr]
    # Careless over-classification, never put right: wrong but not a downgrade.
    over = is_main & ~down & ~corr & (v >= corr_rate) & (v < corr_rate + miss_rate) & (higher >= 0)
    first[over] = higher[over]
    final[over] = higher[over]
    # A duplicate copies its original's final class.
    dup = ~is_main
    final[dup] = final[rec["dup_of"][dup]]
    first[dup] = final[dup]
    rec.update(first=first, final=final, changed_at=changed_at)


def _cancel_and_close(s: Scenario, eras, seed: int, rec: dict, book: OffenceBook,
                      inc_after: np.ndarray) -> None:
    """Cancellations (valid and invalid), victims told, outcomes and property values."""
    rng = _rng(seed, 6)
    m = len(rec["src"])
    after = inc_after[rec["src"]]
    kind, true, final = rec["kind"], rec["true"], rec["final"]
    settled = np.maximum(rec["recorded_at"], rec["changed_at"])
    cand = settled + (_lognormal(rng, 1.0, 0.9, m)
                      * _era_value(eras, after, lambda x: x.s.cancellation.median_days)
                      * 86400).astype(np.int64) * 1_000_000
    p = np.zeros(m)
    invalid_p = np.zeros(m)
    for e, era in enumerate(eras):
        rows = after == bool(e)
        base = era.cancel[true]
        p_e = base
        inv_e = era.invalid[true]
        tp = era.s.target_pressure
        if tp.strands:
            hot = era.pressured[true] & in_pressure_window(cand, tp.period, tp.last_days)
            p_e = np.where(hot, np.minimum(1.0, base * tp.cancellation_multiplier), base)
            # Of the cancellations pressure adds, this share are made without valid grounds.
            ratio = np.where(base > 0, p_e / np.where(base > 0, base, 1.0), 1.0)
            inv_e = (inv_e + (ratio - 1) * tp.extra_cancellations_invalid) / ratio
        p[rows] = p_e[rows]
        invalid_p[rows] = inv_e[rows]
    u = rng.random(m)
    cancelled = (kind == MAIN) | (kind == WALK_IN)
    cancelled &= u < p
    invalid = cancelled & (rng.random(m) < invalid_p)
    reasons = list(book.codes.cancellation_reasons)
    reason = np.full(m, -1, np.int64)
    for flag, mix_of in ((~invalid, lambda x: x.s.cancellation.valid_reasons),
                         (invalid, lambda x: x.s.cancellation.invalid_reasons)):
        for e, era in enumerate(eras):
            rows = np.flatnonzero(cancelled & flag & (after == bool(e)))
            mix = mix_of(era)
            idx = np.array([reasons.index(r) for r in mix])
            reason[rows] = idx[_choice(rng, np.array(list(mix.values())), len(rows))]
    # Duplicates and records of non-crimes are cancelled on valid administrative grounds.
    dup = kind == DUPLICATE
    reason[dup] = reasons.index("duplicate")
    err = (kind == ERROR) & (rng.random(m) < _era_value(
        eras, after, lambda x: x.s.cancellation.error_records_cancelled))
    reason[err] = reasons.index("recorded_in_error")
    short = settled + rng.integers(2 * 3600, 96 * 3600, m) * 1_000_000
    cand = np.where(dup | err, short, cand)
    cancelled |= dup | err
    told_p = np.where(
        invalid, _era_value(eras, after, lambda x: x.s.cancellation.victim_told_invalid),
        _era_value(eras, after, lambda x: x.s.cancellation.victim_told_valid),
    )
    told = rng.random(m) < told_p
    # Outcomes: none yet for crimes too recent to have been finalised by the data's end.
    end = day_zero(s.period) + s.period.days * US_PER_DAY
    age_days = (end - rec["recorded_at"]) / US_PER_DAY
    open_days = _era_value(eras, after, lambda x: x.s.outcomes.open_days)
    finalised = ~cancelled & (rng.random(m) * np.maximum(open_days, 1e-9) < age_days)
    outcome = np.full(m, -1, np.int64)
    outcomes = list(book.codes.outcomes)
    for e, era in enumerate(eras):
        rows = np.flatnonzero(finalised & (after == bool(e)))
        mix = era.s.outcomes.mix
        idx = np.array([outcomes.index(c) for c in mix])
        outcome[rows] = idx[_choice(rng, np.array(list(mix.values())), len(rows))]
    value = _property_values(rng, eras, after, final, book)
    rec.update(cancelled=cancelled, invalid=invalid, reason=reason, cancelled_at=cand,
               told=told, outcome=outcome, value=value, reasons=reasons, outcomes=outcomes,
               lost=rng.random(m) < _era_value(eras, after, lambda x: x.s.incident_ref_lost_rate))


def _property_values(rng, eras, after, final, book: OffenceBook) -> np.ndarray:
    m = len(final)
    median = np.where(after, eras[1].value_median[final], eras[0].value_median[final])
    sigma = _era_value(eras, after, lambda x: x.s.property_values.sigma)
    raw = np.exp(np.log(np.nan_to_num(median, nan=1.0)) + sigma * rng.standard_normal(m))
    # People report round sums: most values above 50 come in tens or fives.
    tens = rng.random(m) < 0.6
    value = np.where(raw >= 50, np.where(tens, np.round(raw, -1), np.round(raw / 5) * 5),
                     np.round(raw))
    value = np.maximum(value, 1.0)
    for e, era in enumerate(eras):
        for b in era.s.bunching:
            codes = np.array([book.index[c] for c in b.offences])
            upper = b.upper if b.upper is not None else 2 * b.threshold
            rows = ((after == bool(e)) & np.isin(final, codes) & (value >= b.threshold)
                    & (value < upper) & (rng.random(m) < b.share))
            under = rng.choice(np.array([1.0, 1.0, 1.0, 2.0, 5.0, 5.0, 10.0, 20.0]), size=m)
            value = np.where(rows, np.maximum(b.threshold - under, 0.0), value)
    return np.where(np.isnan(median), np.nan, value)


def _ts(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    mask = None if valid is None else ~valid
    return pa.array(values.astype(np.int64), pa.timestamp("us"), mask=mask)


def _take(strings: list[str], idx: np.ndarray) -> pa.Array:
    """``strings[idx]``, null where ``idx`` is -1."""
    arr = pa.array(strings, pa.string())
    return arr.take(pa.array(np.maximum(idx, 0), pa.int64(), mask=idx < 0))


def _tables(s: Scenario, seed: int, inc: dict, rec: dict, book: OffenceBook, text: pa.Array):
    n = inc["n"]
    force = inc["force"]
    # Crime ids follow the order records were created.
    m = len(rec["src"])
    order = np.lexsort((rec["kind"], rec["src"], rec["recorded_at"]))
    for k, v in list(rec.items()):
        if isinstance(v, np.ndarray) and len(v) == m:
            rec[k] = v[order]
    crime_no = np.arange(1, m + 1)
    crime_id = pseudonyms("CR-", crime_no, 9)
    src = rec["src"]
    walk = src >= n  # walk-ins and their duplicates: no incident
    has_ref = ~walk & ~rec["lost"]
    incident_ids = pseudonyms("INC-", np.arange(1, n + 1), 9)
    inc_ref = incident_ids.take(pa.array(np.where(walk, 0, src), pa.int64(), mask=walk))
    inc_ref_kept = pc.if_else(pa.array(has_ref), inc_ref, pa.scalar(None, pa.string()))
    division = pa.array(force.division_names, pa.string())
    officers = pseudonyms("OFF-", inc["officer"] + 1, 4)
    victims = pseudonyms("V-", inc["victim"] + 1, 7)
    src_arr = pa.array(src)
    street = force.street_names.take(pa.array(inc["street"]))
    # The crime's grid reference is taken separately from the incident's: close, not equal.
    jitter = _rng(seed, 8)
    lat = np.round(inc["lat"][src] + jitter.normal(0, 0.0004, m), 6)
    lon = np.round(inc["lon"][src] + jitter.normal(0, 0.0006, m), 6)
    cancelled = rec["cancelled"]
    crimes = pa.table({
        "crime_id": crime_id,
        "incident_id": inc_ref_kept,
        "reported_at": _ts(inc["t"][src]),
        "recorded_at": _ts(rec["recorded_at"]),
        "offence_code": _take(book.code, rec["final"]),
        "status": pa.array(np.where(cancelled, "cancelled", "recorded").tolist(), pa.string()),
        "cancellation_reason": _take(rec["reasons"], np.where(cancelled, rec["reason"], -1)),
        "cancelled_at": _ts(rec["cancelled_at"], cancelled),
        "outcome": _take(rec["outcomes"], rec["outcome"]),
        "property_value": pa.array(rec["value"], pa.float64(), from_pandas=True),
        "division": division.take(pa.array(inc["division"][src])),
        "officer": officers.take(src_arr),
        "victim": victims.take(src_arr),
        "location": street.take(src_arr),
        "latitude": pa.array(lat, pa.float64()),
        "longitude": pa.array(lon, pa.float64()),
        "source": pa.nulls(m, pa.string()),
    })
    # Incidents: the walk-ins are not in the log.
    recorded_any = np.zeros(inc["total"], bool)
    recorded_any[src] = True
    listed = np.flatnonzero(has_ref)
    refs = _crime_refs(n, src[listed], crime_no[listed])
    closing = _closing(s, seed, inc, recorded_any)
    keep = np.arange(n)
    narrative = text.slice(0, n)
    incidents = pa.table({
        "incident_id": incident_ids,
        "reported_at": _ts(inc["t"][:n]),
        "call_type": _take(inc["types"], inc["type_code"][:n]),
        "closing_code": closing,
        "narrative": narrative,
        "location": street.slice(0, n),
        "latitude": pa.array(inc["lat"][keep], pa.float64()),
        "longitude": pa.array(inc["lon"][keep], pa.float64()),
        "division": division.take(pa.array(inc["division"][keep])),
        "officer": officers.slice(0, n),
        "victim": victims.slice(0, n),
        "crime_refs": refs,
        "source": pa.nulls(n, pa.string()),
    })
    ch = np.flatnonzero(rec["changed_at"] >= 0)
    changer = draw_officers(_rng(seed, 9), force,
                            inc["division"][src[ch]])
    changes = pa.table({
        "crime_id": crime_id.take(pa.array(ch, pa.int64())),
        "changed_at": _ts(rec["changed_at"][ch]),
        "from_code": _take(book.code, rec["first"][ch]),
        "to_code": _take(book.code, rec["final"][ch]),
        "changed_by": pseudonyms("OFF-", changer + 1, 4),
    })
    changes = changes.take(pc.sort_indices(changes, [("crime_id", "ascending"),
                                                     ("changed_at", "ascending")]))
    truth_incidents = pa.table({
        "incident_id": incident_ids,
        "discloses_crime": pa.array(inc["discloses"][:n]),
        "true_offence_code": _take(book.code, inc["true_code"][:n]),
        "recorded": pa.array(recorded_any[:n]),
    })
    rank = book.rank
    truth_crimes = pa.table({
        "crime_id": crime_id,
        "true_offence_code": _take(book.code, rec["true"]),
        "correctly_classified": pa.array(rec["final"] == rec["true"]),
        "downgraded": pa.array(rank[rec["final"]] < rank[rec["true"]]),
        "cancellation_valid": pa.array(~rec["invalid"], mask=~cancelled),
        "victim_told": pa.array(rec["told"], mask=~cancelled),
        "true_incident_id": inc_ref,
        "incident_ref_lost": pa.array(~walk & rec["lost"]),
    })
    out = {
        "incidents": incidents, "crimes": crimes, "classification_changes": changes,
        "truth_incidents": truth_incidents, "truth_crimes": truth_crimes,
    }
    return {k: _conform(v, TABLES[k].arrow_schema()) for k, v in out.items()}


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Cast to the canonical schema; optional columns the simulator has no use for are null."""
    cols = [
        table.column(f.name) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(cols, schema=schema)


def _crime_refs(n: int, incident: np.ndarray, crime_no: np.ndarray) -> pa.Array:
    """';'-joined crime ids per incident (empty string when none is noted)."""
    order = np.lexsort((crime_no, incident))
    incident, crime_no = incident[order], crime_no[order]
    ids = pseudonyms("CR-", crime_no, 9).to_numpy(zero_copy_only=False)
    out = np.full(n, "", dtype=object)
    first = np.ones(len(incident), bool)
    first[1:] = incident[1:] != incident[:-1]
    out[incident[first]] = ids[first]
    for i in np.flatnonzero(~first):  # second and later records of an incident: a few percent
        out[incident[i]] = out[incident[i]] + ";" + ids[i]
    return pa.array(out, pa.string())


def _closing(s: Scenario, seed: int, inc: dict, recorded_any: np.ndarray) -> pa.Array:
    rng = _rng(seed, 7)
    n = inc["n"]
    labels = ["CRIME_RECORDED", "NFA", "ADVICE_GIVEN", "REFERRED", "NO_TRACE"]
    code = np.zeros(n, np.int64)
    type_code = inc["type_code"][:n]
    for k, name in enumerate(inc["types"]):
        mix = s.incident_types[name].closing
        rows = np.flatnonzero(type_code == k)
        idx = np.array([labels.index(c) for c in mix])
        code[rows] = idx[_choice(rng, np.array(list(mix.values())), len(rows))]
    code[recorded_any[:n]] = 0
    return _take(labels, code)
