"""The report from the figures contract: Estimate/Finding objects written where the stages
write them, rendered to HTML and JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from crimeaudit.audit import AuditEstimates
from crimeaudit.audit.figures_store import store_run
from crimeaudit.detect.findings_file import CHARTS_FILE, write_charts, write_findings
from crimeaudit.model.figures import FIGURES_VERSION, Estimate, Finding
from crimeaudit.report import ReportError, collect, one_in, write_report
from crimeaudit.report.html import render
from crimeaudit.store import Project

STRANDS = {"all": (1344, 1500), "violence": (380, 450), "sexual": (70, 90), "rape": (20, 26)}


def _estimates() -> list[Estimate]:
    from crimeaudit.audit import wilson

    out = []
    for scope, (x, n) in STRANDS.items():
        for measure in ("recording_rate", "timeliness", "classification_accuracy"):
            lo, hi = wilson(x, n, 0.95)
            out.append(Estimate(measure, scope, x / n, lo, hi, 0.95, "wilson", n, x, n))
        r = x / n
        out.append(Estimate("unrecorded_per_year", scope, 50_000 * (1 - r) / r,
                            50_000 * (1 - hi) / hi, 50_000 * (1 - lo) / lo, 0.95,
                            "C(1-r)/r at the wilson interval", n, unit="crimes"))
    out.append(Estimate("cancellation_wrong", "all", 0.2, 0.1, 0.3, 0.95, "wilson", 60, 12, 60))
    out.append(Estimate("victim_told", "all", 0.8, 0.7, 0.9, 0.95, "wilson", 60, 48, 60))
    return out


def _finding() -> Finding:
    spec = {"$schema": "https://vega.github.io/schema/vega-lite/v5.json",
            "data": {"values": [{"day": d, "crimes": 10 + (d > 25) * 8} for d in range(1, 31)]},
            "mark": "bar", "encoding": {"x": {"field": "day", "type": "ordinal"},
                                        "y": {"field": "crimes", "type": "quantitative"}}}
    return Finding("period_end", "force", 1.8, 1.4, 2.3, "rate ratio", 1e-6, 1e-4,
                   "Recording jumps in the last days of each month.", method="poisson",
                   n=900, extra={"chart": spec})


def project_with_figures(tmp: Path, detection: bool = False, estimates=None) -> Path:
    """A project whose reports folder holds what the audit (and detection) would write."""
    d = tmp / "proj"
    with Project.init(d, name="Testshire") as p:
        src = tmp / "crimes.csv"
        src.write_text("id\n1\n", encoding="utf-8")
        p.log_run("ingest", inputs=[src], params={"profile": "canonical"})
        p.log_run("sample", params={"kind": "srs", "seed": 11, "size": 1500})
        est = _estimates() if estimates is None else estimates
        store_run(p, AuditEstimates(
            estimates=est, design={"kind": "srs", "seed": 11, "frame": "incidents",
                                   "strata_by": []},
            level=0.95, method="auto", sample_id="S1",
            sample={"frame_size": 40_000, "size": 1500, "population": {"all": 40_000},
                    "allocation": {"all": 1500}},
            decisions={"decided": 1500, "undecided": 0, "cannot_tell": 3,
                       "auditors": ["jo"], "sources": ["sheet"]}))
        reports = p.folder("reports")
        if detection:
            f = _finding()
            quiet = Finding("bunching", "force", 0.1, -0.2, 0.4, "excess", 0.5, 0.8, "Nothing.")
            # As crimeaudit detect writes them: findings, and their charts once, beside them.
            with open(reports / "findings.json", "w", encoding="utf-8") as fp:
                write_findings([f, quiet], {"summary": {"tests_run": ["period_end", "bunching"],
                                                        "skipped": {}}}, fp)
            with open(reports / CHARTS_FILE, "w", encoding="utf-8") as fp:
                write_charts([f, quiet], fp)
    return d


def test_headline_states_rate_interval_and_unrecorded_from_the_figures(tmp_path):
    paths = write_report(project_with_figures(tmp_path))
    html = paths["html"].read_text(encoding="utf-8")
    head = re.search(r'id="headline">(.*?)</p>', html, re.S).group(1)
    assert "An estimated 89.6% of crimes that should have been recorded were recorded" in head
    assert "(95% CI 88.0-91.0%)" in head
    assert "one crime in ten" in head
    # 50,000 x (1 - 0.896) / 0.896 = 5,804 a year, rounded to two figures in the sentence.
    assert "some 5,800 a year" in head


def test_every_figure_row_shows_interval_method_and_n(tmp_path):
    html = write_report(project_with_figures(tmp_path))["html"].read_text(encoding="utf-8")
    table = re.search(r'<table class="figures" id="strand-table">(.*?)</table>', html,
                      re.S).group(1)
    rows = re.findall(r"<tr><td>(.*?)</tr>", table, re.S)
    assert [re.match(r"[^<]*", r).group(0) for r in rows] == [
        "All crime", "Violence against the person", "Sexual offences", "Rape"]
    for r in rows:
        assert " to " in r and "wilson" in r
    assert "380 of 450" in table
    assert html.count("<svg") >= 5  # recording, cancellations x2, timeliness, classification


def test_report_is_self_contained_and_deterministic(tmp_path):
    d = project_with_figures(tmp_path, detection=True)
    first = write_report(d)["html"].read_bytes()
    second = write_report(d)["html"].read_bytes()
    assert first == second
    text = first.decode()
    assert "<script" not in text
    assert not re.search(r'(src|href)="https?:', text)
    assert "Recording jumps in the last days of each month." in text
    assert "Nothing." not in text  # q = 0.8: not reported as a sign of target pressure


def test_report_json_carries_the_figures_contract(tmp_path):
    paths = write_report(project_with_figures(tmp_path, detection=True))
    doc = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert doc["figures_version"] == FIGURES_VERSION
    est = [Estimate.from_dict(e) for e in doc["estimates"]]
    assert Estimate("recording_rate", "all", 1344 / 1500, 0, 0, 0.95, "wilson", 1500) in [
        Estimate(e.measure, e.scope, e.estimate, 0, 0, e.level, e.method, e.n) for e in est]
    assert doc["runs"][0]["inputs"][0]["sha256"]
    assert "chart" not in doc["detection"]["findings"][0]["extra"]


def test_report_says_plainly_when_detection_was_not_run(tmp_path):
    html = write_report(project_with_figures(tmp_path))["html"].read_text(encoding="utf-8")
    assert "Detection was not run" in html


def test_reproducibility_block_lists_input_hashes_and_seed(tmp_path):
    d = project_with_figures(tmp_path)
    html = write_report(d)["html"].read_text(encoding="utf-8")
    sha = Project.open(d).runs()[0]["inputs"][0]["sha256"]
    assert re.search(rf"crimes.csv</td><td class=\"mono\">{sha}", html)
    assert "seed 11" in html
    assert "crimes.csv" in html


def test_no_overall_rate_does_not_invent_a_headline(tmp_path):
    est = [e for e in _estimates() if not (e.scope == "all" and e.measure == "recording_rate")]
    doc = collect(project_with_figures(tmp_path, estimates=est))
    assert "No overall recording rate" in render(doc)


@pytest.mark.parametrize(("rate", "phrase"), [(0.9, "one crime in ten"),
                                              (0.81, "one crime in five"),
                                              (0.67, "one crime in three"),
                                              (0.99, "one crime in 100")])
def test_one_in_phrase_is_computed_from_the_rate(rate, phrase):
    assert one_in(rate) == phrase


def test_cli_report_writes_both_files(tmp_path):
    from typer.testing import CliRunner

    from crimeaudit.cli import app

    d = project_with_figures(tmp_path)
    out = tmp_path / "out" / "kent.html"
    r = CliRunner().invoke(app, ["report", str(d), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.exists() and out.with_suffix(".json").exists()
    r = CliRunner().invoke(app, ["report", str(tmp_path / "nowhere")])
    assert r.exit_code == 2


# -- the public-data report (#11) and the force's sections (#16) ---------------------------------

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"
CITY_FILE = FIXTURES / "2019-06-city-of-london-street.csv"


def _text(html: str) -> str:
    """What a reader sees: the HTML without tags, charts or styles."""
    import html as html_lib

    html = re.sub(r"<svg.*?</svg>|<style>.*?</style>", " ", html, flags=re.S)
    return html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def _row(html: str, table_id: str, first_cell: str) -> list[str]:
    table = re.search(rf'<table[^>]*id="{table_id}">(.*?)</table>', html, re.S).group(1)
    for tr in re.findall(r"<tr>(.*?)</tr>", table, re.S):
        cells = [_text(c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", tr, re.S)]
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in {table_id}")


@pytest.fixture(scope="module")
def public_project(tmp_path_factory):
    """A journalist's project: one data.police.uk file ingested, detect run, no audit."""
    import os

    from crimeaudit.detect import detect_project
    from crimeaudit.ingestion import ingest

    d = tmp_path_factory.mktemp("public") / "city"
    old = os.environ.get("CRIMEAUDIT_PSEUDONYM_KEY")
    os.environ["CRIMEAUDIT_PSEUDONYM_KEY"] = "public-data-example-key-0123456789"
    try:
        with Project.init(d) as p:
            ingest(p, "police-uk-street", [CITY_FILE])
        detect_project(d)
    finally:
        if old is None:
            os.environ.pop("CRIMEAUDIT_PSEUDONYM_KEY", None)
        else:
            os.environ["CRIMEAUDIT_PSEUDONYM_KEY"] = old
    return d


def test_public_project_gets_the_public_report_with_no_audit_sections(public_project):
    import duckdb
    import pandas as pd

    paths = write_report(public_project)
    html = paths["html"].read_text(encoding="utf-8")
    text = _text(html)
    doc = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert doc["kind"] == "public"
    for audit_only in ('id="headline"', 'id="strand-table"', 'id="cancellations"',
                       'id="n100"', "recording rate"):
        assert audit_only not in html.replace("nothing here is a recording rate", "")
    assert "run crimeaudit estimate" not in text and "run estimate" not in text
    # The file's row against an independent count: pandas on the file, DuckDB on the store.
    rows_in_file = len(pd.read_csv(CITY_FILE, dtype=str, keep_default_na=False))
    with duckdb.connect(str(public_project / "store.duckdb"), read_only=True) as con:
        quarantined = con.sql("select count(*) from quarantine").fetchone()[0]
        crimes = con.sql("select count(*) from crimes").fetchone()[0]
        excluded = 0
        if "ingest_exclusions" in {r[0] for r in con.sql("show tables").fetchall()}:
            excluded = con.sql("select coalesce(sum(rows), 0) from ingest_exclusions"
                               ).fetchone()[0]
    cells = _row(html, "quality-files", CITY_FILE.name)
    assert cells[3] == f"{rows_in_file:,}"
    assert cells[6] == f"{quarantined:,}"
    loaded = int(cells[4].replace(",", ""))
    assert loaded + excluded + quarantined == rows_in_file
    assert f"{crimes:,} rows of crimes" in text
    assert "Findings by area" in text and "tests were run over the data" in text
    assert "No earlier release was compared" in text


def test_public_report_on_an_empty_project_says_to_ingest(tmp_path):
    with Project.init(tmp_path / "p"):
        pass
    with pytest.raises(ReportError, match="crimeaudit ingest"):
        collect(tmp_path / "p")


def _two_area_findings(d: Path) -> None:
    spec = _finding().extra["chart"]
    kent = Finding("breaks", "Kent: robbery", 0.53, 0.2, 0.9, "relative step", 1e-5, 0.015,
                   "Kent's robbery rose 53% at 2013-12.", extra={
                       "area": "Kent", "measure": "robbery", "rank": 1, "chart": spec,
                       "date": "2013-12-31", "scale": "relative"})
    essex = Finding("breaks", "Essex: robbery", 0.05, -0.1, 0.2, "relative step", 0.4, 0.7,
                    "Essex's robbery did not change.", extra={"area": "Essex", "rank": 2,
                                                              "measure": "robbery"})
    reports = d / "reports"
    reports.mkdir(exist_ok=True)
    with open(reports / "findings.json", "w", encoding="utf-8") as fp:
        write_findings([kent, essex], {"summary": {"tests_run": ["breaks"], "skipped": {},
                                                   "excluded": [{"area": "British Transport "
                                                                 "Police", "reason": "a "
                                                                 "transport police force"}]}},
                       fp)
    with open(reports / CHARTS_FILE, "w", encoding="utf-8") as fp:
        write_charts([kent, essex], fp)


def test_public_report_groups_findings_by_area_and_writes_one_area(tmp_path):
    d = tmp_path / "ons"
    with Project.init(d):
        pass
    _two_area_findings(d)
    html = write_report(d)["html"].read_text(encoding="utf-8")
    text = _text(html)
    assert "Kent's robbery rose 53% at 2013-12." in text
    assert "British Transport Police: a transport police force" in text
    assert "No significant finding about 1 other area: Essex" in text
    assert html.count("<svg") == 1  # Kent's finding has its chart
    one = write_report(d, area="essex")
    assert one["html"].name == "report-essex.html"
    text = _text(one["html"].read_text(encoding="utf-8"))
    assert "Findings for essex" in text and "Essex's robbery did not change." in text
    assert "Kent's robbery" not in text
    with pytest.raises(ReportError, match="did you mean|no finding"):
        write_report(d, area="Narnia")


def _division_estimates() -> list[Estimate]:
    from crimeaudit.audit import wilson

    out = _estimates()
    cells = {"division=North": (300, 330), "division=South": (20, 26),
             "division=North, strand=violence": (90, 110),
             "division=North, strand=rape": (10, 12)}
    for scope, (x, n) in cells.items():
        lo, hi = wilson(x, n, 0.95)
        warn = (f"only {n} decided records in this figure's denominator (fewer than 30): read "
                "it as an indication, not a measurement",) if n < 30 else ()
        out.append(Estimate("recording_rate", scope, x / n, lo, hi, 0.95, "wilson", n, x, n,
                            warnings=warn))
    return out


def test_division_section_and_strand_by_division_where_the_sample_allows(tmp_path):
    from crimeaudit.audit import wilson

    html = write_report(project_with_figures(tmp_path, estimates=_division_estimates()))[
        "html"].read_text(encoding="utf-8")
    strand_rows = re.search(r'id="strand-table">(.*?)</table>', html, re.S).group(1)
    assert "division=" not in strand_rows and "North" not in strand_rows
    lo, hi = wilson(300, 330, 0.95)
    north = _row(html, "division-table", "North")
    assert north[1] == f"{100 * 300 / 330:.1f}%"
    assert north[2] == f"{100 * lo:.1f}% to {100 * hi:.1f}%"
    assert north[4] == "300 of 330"
    # South rests on 26 records: its caution is printed under its row.
    south = re.search(r"<tr><td>South</td>.*?</tr>\s*<tr class=\"caution\">(.*?)</tr>", html,
                      re.S)
    assert south and "only 26 decided records" in south.group(1)
    grid = _row(html, "strand-by-division", "North")
    assert grid[1] == f"{100 * 90 / 110:.1f}% ({100 * wilson(90, 110, .95)[0]:.1f}% to " \
                      f"{100 * wilson(90, 110, .95)[1]:.1f}%)"
    assert grid[2] == "too few (12)"


@pytest.fixture(scope="module")
def audited_force(tmp_path_factory):
    """A simulated force in the store, sampled, reviewed by the oracle and estimated by strand
    and division."""
    from crimeaudit.audit import draw_sample, estimate, oracle_review
    from crimeaudit.simulation import simulate

    d = tmp_path_factory.mktemp("force") / "kent"
    sim = simulate("kent-2013", seed=5, n_incidents=3000)
    with Project.init(d) as p:
        for name, t in sim.tables.items():
            if not name.startswith("truth"):
                p.engine.write(name, t)
        for name, t in sim.tables.items():
            if name.startswith("truth"):
                p.engine.write(name, t)
        s = draw_sample(p, kind="srs", size=400, seed=3)
        oracle_review(p, s.sample_id, error_rate=0.02, seed=1)
        estimate(p, s.sample_id, by=("strand", "division"))
    return d


def test_census_timeliness_counts_every_crime_against_an_independent_count(audited_force):
    import duckdb

    with duckdb.connect(str(audited_force / "store.duckdb"), read_only=True) as con:
        timed, within = con.sql("""
            select count(*), count(*) filter (where h <= 24) from (
              select (epoch(c.recorded_at) - epoch(coalesce(c.reported_at, i.reported_at)))
                     / 3600.0 as h
              from crimes c left join incidents i on c.incident_id = i.incident_id)
            where h >= 0""").fetchone()
    doc = collect(audited_force)
    html = render(doc)
    census = doc["census_timeliness"]
    assert (census["overall"]["timed"], census["overall"]["within"]) == (timed, within)
    share = _text(re.search(r'id="census-share">(.*?)</p>', html, re.S).group(1))
    assert f"{within:,} of {timed:,} crime records ({100 * within / timed:.1f}%)" in share
    bands = re.search(r'id="census-delays">(.*?)</table>', html, re.S).group(1)
    assert f"<td>within 24 hours</td><td class=\"num\">{within:,}</td>" in bands
    assert 'id="chart-census-delays"><svg' in html.replace("\n", "")


def test_report_discloses_oracle_error_rate_agreement_and_divisions(audited_force):
    html = render(collect(audited_force))
    text = _text(html)
    assert "deliberate error rate of 2.0% per decision" in text
    assert "No double review was done" in text
    assert 'id="division-table"' in html and 'id="strand-by-division"' in html
    assert 'id="links-by-method"' in html and 'id="data-quality"' in html


@pytest.mark.parametrize("with_key", [True, False])
def test_n100_lists_rape_reports_without_a_crime_record_by_pseudonym(audited_force, tmp_path,
                                                                      monkeypatch, with_key):
    import shutil

    import pandas as pd

    from crimeaudit.ingestion.pseudonym import KEY_FILE, pseudonym

    d = tmp_path / "kent"
    shutil.copytree(audited_force, d)
    key = "report-test-key-0123456789abcdef"
    monkeypatch.delenv("CRIMEAUDIT_PSEUDONYM_KEY_FILE", raising=False)
    if with_key:
        monkeypatch.setenv("CRIMEAUDIT_PSEUDONYM_KEY", key)
    else:
        monkeypatch.delenv("CRIMEAUDIT_PSEUDONYM_KEY", raising=False)
        assert not (d / KEY_FILE).exists()
    with Project.open(d) as p:
        inc = p.engine.to_pandas(p.engine.table("incidents").select("incident_id", "call_type"))
        crimes = p.engine.to_pandas(p.engine.table("crimes").select("crime_id", "incident_id"))
        refs = p.engine.to_pandas(p.engine.table("incidents").select("incident_id",
                                                                     "crime_refs"))
        # The screen judged 40 sexual-offence calls most likely a rape.
        chosen = inc[inc.call_type == "SEXUAL"].incident_id.head(40).tolist()
        p.engine.write("screen_scores", pd.DataFrame({
            "incident_id": chosen, "p_crime": [0.9] * len(chosen),
            "predicted_offence": ["19C"] * len(chosen), "rule_hits": [""] * len(chosen),
            "model_version": ["test"] * len(chosen)}))
        doc = collect(p)
    # Independently: a chosen incident is recorded when a crime references it, or it
    # references an existing crime.
    known = set(crimes.crime_id)
    by_ref = {r.incident_id for r in refs.itertuples()
              if r.crime_refs and any(c.strip() in known for c in r.crime_refs.split(";"))}
    recorded = set(crimes.incident_id.dropna()) | by_ref
    missing = [i for i in chosen if i not in recorded]
    n100 = doc["n100"]
    assert n100["reports"] == len(chosen)
    assert n100["without_record"] == len(missing) > 0
    if not with_key:
        # Counted, never listed: without the key no reference can be given.
        assert n100["listed"] == [] and n100["references"].startswith("not listed")
        return
    html = render(doc)
    listed = re.search(r'id="n100-list">(.*?)</table>', html, re.S).group(1)
    assert {pseudonym(key.encode(), i) for i in missing} == set(
        re.findall(r"p:[0-9a-f]{20}", listed))
    assert not any(i in listed for i in missing)  # no reference in clear


def test_public_report_shows_release_differences_with_zeros(public_project, tmp_path):
    import shutil

    import duckdb

    from crimeaudit.detect import detect_project

    d = tmp_path / "again"
    shutil.copytree(public_project, d)
    (d / "reports" / "findings.json").unlink()
    detect_project(d, None, public_project)  # the same release compared with itself
    with duckdb.connect(str(public_project / "store.duckdb"), read_only=True) as con:
        # distinct Crime IDs: a copy of an id the file repeats ("<id>~copy2") is not compared
        crimes = con.sql("select count(distinct regexp_replace(crime_id, '~copy[0-9]+$', '')) "
                         "from crimes").fetchone()[0]
    html = write_report(d)["html"].read_text(encoding="utf-8")
    assert _row(html, "release-counts", "crimes of the earlier release also in the later")[
        1] == f"{crimes:,}"
    for words in ("crimes the earlier release never had",
                  "matched crimes whose crime type changed",
                  "matched crimes whose outcome changed"):
        assert _row(html, "release-counts", words)[1] == "0"


def test_cli_report_area_writes_one_area_and_refuses_an_unknown_one(tmp_path):
    from typer.testing import CliRunner

    from crimeaudit.cli import app

    d = tmp_path / "ons"
    with Project.init(d):
        pass
    _two_area_findings(d)
    r = CliRunner().invoke(app, ["report", str(d), "--area", "Kent"])
    assert r.exit_code == 0, r.output
    page = (d / "reports" / "report-kent.html").read_text(encoding="utf-8")
    assert "Kent's robbery rose 53%" in _text(page) and "Essex" not in _text(page)
    r = CliRunner().invoke(app, ["report", str(d), "--area", "Narnia"])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1
    assert "Narnia" in r.output


def test_division_rows_match_an_independent_count_of_the_decisions(audited_force):
    import duckdb
    from scipy import stats

    from crimeaudit.audit import wilson

    def interval(x, n):
        # Wilson, with Brown, Cai and DasGupta's Poisson bound within 3 records of an end
        # (2 for n <= 50), where that is wider: docs/audit.md.
        lo, hi = wilson(x, n, 0.95)
        near = 3 if n > 50 else 2
        if 0 < x <= near:
            lo = min(lo, stats.chi2.ppf(0.05, 2 * x) / (2 * n))
        if 0 < n - x <= near:
            hi = max(hi, 1 - stats.chi2.ppf(0.05, 2 * (n - x)) / (2 * n))
        return lo, hi

    with duckdb.connect(str(audited_force / "store.duckdb"), read_only=True) as con:
        rows = con.sql("""
            with d as (select * from audit_decisions
                       qualify row_number() over (partition by record_id
                                                  order by decision_id desc) = 1)
            select s.division,
                   count(*) filter (where d.should_record = 'yes' and d.recorded = 'yes'),
                   count(*) filter (where d.should_record = 'yes')
            from audit_samples s join d using (sample_id, record_id)
            group by 1 order by 1""").fetchall()
    html = render(collect(audited_force))
    assert len(rows) > 1
    for division, x, n in rows:
        cells = _row(html, "division-table", division)
        lo, hi = interval(x, n)
        assert cells[4] == f"{x} of {n}"
        assert cells[1] == f"{100 * x / n:.1f}%"
        assert cells[2] == f"{100 * lo:.1f}% to {100 * hi:.1f}%"
