"""Where an audit stands: each sample's progress, overall and by auditor.

>>> import tempfile, pathlib
>>> from crimeaudit.store import Project
>>> with Project.init(pathlib.Path(tempfile.mkdtemp()) / "p") as p:
...     audit_status(p).empty
True
"""

from __future__ import annotations

import json

import pandas as pd

from crimeaudit.audit.decisions import latest_decisions
from crimeaudit.audit.design import DESIGNS_TABLE, SAMPLES_TABLE
from crimeaudit.store.project import project_verb

COLUMNS = ("sample_id", "frame", "design", "drawn_at", "size", "decided", "undecided",
           "cannot_tell", "second_reviews", "adjudications", "by_auditor", "last_decision")


@project_verb
def audit_status(project) -> pd.DataFrame:
    """One row per sample: size, decided and undecided records (current decisions), records
    judged cannot_tell, second reviews and adjudications, decided records by auditor, and the
    time of the latest decision. Oldest sample first."""
    eng = project.engine
    if not eng.has_table(DESIGNS_TABLE):
        return pd.DataFrame(columns=list(COLUMNS))
    designs = eng.to_pandas(eng.table(DESIGNS_TABLE).order_by("drawn_at"))
    if designs.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    samples = eng.table(SAMPLES_TABLE)
    sizes = eng.to_pandas(samples.group_by("sample_id").aggregate(n=samples.count()))
    size_of = dict(zip(sizes.sample_id, sizes.n, strict=True))
    current = latest_decisions(project)
    second = latest_decisions(project, review="second")
    adjudicated = latest_decisions(project, review="adjudication")
    rows = []
    for d in designs.itertuples(index=False):
        mine = current[current.sample_id == d.sample_id]
        n = int(size_of.get(d.sample_id, 0))
        decided = int(mine.record_id.nunique())
        by_auditor = (mine.auditor.fillna("?").value_counts().sort_index().to_dict()
                      if len(mine) else {})
        rows.append({
            "sample_id": d.sample_id, "frame": json.loads(d.params).get("frame", "incidents"),
            "design": d.design, "drawn_at": d.drawn_at, "size": n,
            "decided": decided, "undecided": n - decided,
            "cannot_tell": int((mine.should_record == "cannot_tell").sum()),
            "second_reviews": int((second.sample_id == d.sample_id).sum()),
            "adjudications": int((adjudicated.sample_id == d.sample_id).sum()),
            "by_auditor": {str(k): int(v) for k, v in by_auditor.items()},
            "last_decision": (str(pd.Timestamp(mine.decided_at.max())) if len(mine) else None),
        })
    return pd.DataFrame(rows, columns=list(COLUMNS))
