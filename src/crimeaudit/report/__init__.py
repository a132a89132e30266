"""The inspection report: one self-contained HTML file and the same figures as JSON.

::

    from crimeaudit.report import write_report
    paths = write_report("kent")        # kent/reports/report.html and report.json

See ``docs/report.md``.
"""

from crimeaudit.report.figures import ReportError, collect, figures_document
from crimeaudit.report.headline import headline, one_in
from crimeaudit.report.html import render, write_report

__all__ = ["ReportError", "collect", "figures_document", "headline", "one_in", "render",
           "write_report"]
