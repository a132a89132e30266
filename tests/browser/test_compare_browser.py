"""Open the comparison page (funnel plot, league table, pairs) in real headless Chromium,
offline, and read it.

Needs Debian's chromium and the ``playwright`` Python package, as the report's browser test.
Areas: the inspectorate's published 2014 counts for Greater Manchester (265 of 388) and
Hampshire (67 of 112), and synthetic areas generated here (named "Synthetic ...").
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

_REQUIRED = os.environ.get("CRIMEAUDIT_REQUIRE_BROWSER") == "1"
try:
    from playwright import sync_api
except ImportError:
    if _REQUIRED:
        raise
    pytest.skip("playwright not installed (pip install playwright)", allow_module_level=True)
if not Path(CHROMIUM).exists():
    if _REQUIRED:
        raise RuntimeError(f"CRIMEAUDIT_REQUIRE_BROWSER=1 but no chromium at {CHROMIUM}")
    pytest.skip("chromium not installed (apt-get install -y chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def funnel_page(tmp_path_factory) -> Path:
    from typer.testing import CliRunner

    from crimeaudit.cli import app

    d = tmp_path_factory.mktemp("compare-browser")
    rng = np.random.default_rng(5)
    rows = ["area,recorded,should_have_been", "Greater Manchester,265,388", "Hampshire,67,112"]
    for i in range(10):
        n = int(rng.integers(200, 1500))
        rows.append(f"Synthetic {i + 1},{rng.binomial(n, 0.8)},{n}")
    (d / "forces.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    # Written the way a user writes it: the command line with --out.
    r = CliRunner().invoke(app, ["compare", "--counts", str(d / "forces.csv"), "--pairs",
                                 "--out", str(d / "page")])
    assert r.exit_code == 0, r.output
    return d / "page" / "compare.html"


def test_funnel_page_opens_offline_with_chart_league_and_pairs(funnel_page, tmp_path):
    requests: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1100, "height": 900})

        def route(r):
            requests.append(r.request.url)
            if r.request.url.startswith("file:"):
                r.continue_()
            else:
                r.abort()

        page.route("**/*", route)
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(funnel_page.as_uri())
        page.wait_for_load_state("load")
        funnel = page.locator("#chart-funnel svg")
        assert funnel.is_visible()
        box = funnel.bounding_box()
        assert box and box["width"] > 300 and box["height"] > 200
        # The funnel draws its limits and one point per area (12 areas).
        assert page.locator("#chart-funnel svg path").count() >= 12
        assert "99.8% limits" in page.locator("#chart-funnel").inner_text()
        league = page.locator("#league")
        assert league.is_visible()
        assert league.locator("tbody tr").count() == 12
        assert "Greater Manchester" in league.inner_text()
        assert "Outside the 95% limits" in page.locator("#outside").inner_text()
        assert page.locator("#pairs tbody tr").count() == 12 * 11 // 2
        page.screenshot(path=str(tmp_path / "funnel.png"), full_page=True)
        browser.close()
    assert errors == [], errors
    assert [u for u in requests if not u.startswith("file:")] == []
    assert (tmp_path / "funnel.png").stat().st_size > 10_000
