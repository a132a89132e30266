"""Force codes: one prefix on every identifier, so several simulated forces share one store.

A national audit loads many forces into one project. Each force's simulator numbers its
incidents, crimes, officers and victims from 1, so two forces would collide; a force code
(``simulate(..., force_code="KNT")``) prefixes every identifier and division name.

>>> import pyarrow as pa
>>> t = pa.table({"incident_id": ["INC-1", None], "crime_refs": ["CR-1;CR-2", ""],
...               "division": ["North", "South"], "narrative": ["x", "y"]})
>>> row = prefix_identifiers({"incidents": t}, "KNT")["incidents"].to_pylist()[0]
>>> row["incident_id"], row["crime_refs"], row["division"], row["narrative"]
('KNT-INC-1', 'KNT-CR-1;KNT-CR-2', 'KNT North', 'x')
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

# Identifier columns of the canonical tables the simulator writes (and of its truth tables).
ID_COLUMNS = frozenset({"incident_id", "crime_id", "true_incident_id", "officer", "victim",
                        "changed_by"})
LIST_COLUMNS = frozenset({"crime_refs"})  # ';'-joined identifiers
NAME_COLUMNS = frozenset({"division"})  # names: prefixed with the code and a space

CODE = re.compile(r"[A-Z][A-Z0-9]{0,7}")


def check_code(code: str) -> str:
    """The code if it is 1-8 capital letters or digits starting with a letter, else ValueError."""
    if not isinstance(code, str) or not CODE.fullmatch(code):
        raise ValueError(f"a force code is 1-8 capital letters or digits starting with a "
                         f"letter (such as KNT), not {code!r}")
    return code


def prefix_identifiers(tables: dict[str, pa.Table], code: str) -> dict[str, pa.Table]:
    """The tables with ``code`` before every identifier and division name (nulls stay null)."""
    check_code(code)
    out = {}
    for name, table in tables.items():
        for i, col in enumerate(table.column_names):
            if col in ID_COLUMNS:
                new = pc.binary_join_element_wise(pa.scalar(f"{code}-"), table[col], "")
            elif col in NAME_COLUMNS:
                new = pc.binary_join_element_wise(pa.scalar(f"{code} "), table[col], "")
            elif col in LIST_COLUMNS:
                new = pc.replace_substring_regex(table[col], r"(^|;)([^;])", rf"\1{code}-\2")
            else:
                continue
            table = table.set_column(i, col, new.cast(table.schema.field(col).type))
        out[name] = table
    return out
