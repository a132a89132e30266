"""Compare audits and forces: did the rate really change, and who stands out.

::

    import crimeaudit as ca
    res = ca.compare("kent-2017", "kent-2018")      # two audits: AuditComparison
    print(res.get("recording_rate").sentence)
    res = ca.compare("kent")                        # one project, several samples: a trend
    res = ca.compare(counts="forces.csv", pairs=True)   # league table, funnel, pairs
    res.summary(); res.to_frame(); res.to_json()

Every result states its method; see ``docs/compare.md`` for the formulas.

>>> import io
>>> from crimeaudit.comparison import compare_areas, read_counts
>>> csv = "area,recorded,should_have_been\\nGreater Manchester,265,388\\nHampshire,67,112\\n"
>>> res = compare_areas(read_counts(io.StringIO(csv)))
>>> res.to_frame()[["area", "estimate"]].round(3).values.tolist()
[['Greater Manchester', 0.683], ['Hampshire', 0.598]]
"""

from crimeaudit.comparison.areas import (
    Area,
    AreaComparison,
    area_pairs,
    compare_areas,
    counts_area,
    published_area,
    read_counts,
)
from crimeaudit.comparison.audits import Audit, lead_audit, sample_audits
from crimeaudit.comparison.difference import Difference, count_difference, rate_difference
from crimeaudit.comparison.errors import CompareError
from crimeaudit.comparison.funnel import Funnel, funnel_of
from crimeaudit.comparison.page import write_page
from crimeaudit.comparison.pair import AuditComparison, compare_pair
from crimeaudit.comparison.trend import TrendComparison, compare_trend
from crimeaudit.comparison.verb import compare, read_audits

__all__ = [
    "Area", "AreaComparison", "Audit", "AuditComparison", "CompareError", "Difference",
    "Funnel", "TrendComparison", "area_pairs", "compare", "compare_areas", "compare_pair",
    "compare_trend", "count_difference", "counts_area", "funnel_of", "lead_audit",
    "published_area", "rate_difference", "read_audits", "read_counts", "sample_audits",
    "write_page",
]
