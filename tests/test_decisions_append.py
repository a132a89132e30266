"""Appending decisions to the project store: the chain continues from what is stored, and a
store written before decisions had review kinds and hashes is upgraded on the first append."""

import pandas as pd
import pyarrow as pa

from crimeaudit.audit.decisions import (
    DECISION_COLUMNS,
    DECISIONS_TABLE,
    append_decision_rows,
    append_decisions,
    latest_decisions,
    verify_chain,
)
from crimeaudit.store import Project


def _row(record_id: str, should_record: str = "yes", auditor: str = "ann") -> pd.DataFrame:
    return pd.DataFrame([{"sample_id": "S1", "record_type": "incident",
                          "record_id": record_id,
                          **{c: "yes" for c in DECISION_COLUMNS if c != "correct_class"},
                          "should_record": should_record, "correct_class": "",
                          "auditor": auditor, "notes": ""}])


def test_each_append_continues_the_stored_chain_and_supersedes_the_stored_row(tmp_path):
    with Project.init(tmp_path / "p", name="p") as p:
        first = append_decision_rows(p, _row("R1", "yes"), "test", "b1")
        # Another handle on the same project appends in between: the next append must chain
        # from that row, not from anything remembered by this one.
        with Project.open(tmp_path / "p") as other:
            append_decisions(other, _row("R2"), "test", "b2")
        again = append_decision_rows(p, _row("R1", "no", auditor="bob"), "test", "b3")
        assert again.column("decision_id").to_pylist() == [3]
        assert again.column("supersedes").to_pylist() == [first.column("decision_id")[0].as_py()]
        assert again.column("correct_class").to_pylist() == [None]  # blank is no answer
        assert verify_chain(p) == (3, None)
        now = latest_decisions(p, "S1").set_index("record_id")
        assert now.loc["R1", "should_record"] == "no" and now.loc["R1", "auditor"] == "bob"


def test_a_store_from_before_review_kinds_and_hashes_is_upgraded_on_append(tmp_path):
    old_fields = [f for f in pa.schema([
        ("decision_id", pa.int64()), ("sample_id", pa.string()), ("record_type", pa.string()),
        ("record_id", pa.string()), *[(c, pa.string()) for c in DECISION_COLUMNS],
        ("auditor", pa.string()), ("notes", pa.string()), ("decided_at", pa.timestamp("us")),
        ("source", pa.string()), ("batch", pa.string()), ("supersedes", pa.int64())])]
    old = pa.Table.from_pylist([{
        "decision_id": 1, "sample_id": "S1", "record_type": "incident", "record_id": "R1",
        **{c: "yes" for c in DECISION_COLUMNS}, "correct_class": None, "auditor": "ann",
        "notes": None, "decided_at": pd.Timestamp("2024-01-02"), "source": "sheet",
        "batch": "old", "supersedes": None}], schema=pa.schema(old_fields))
    with Project.init(tmp_path / "p", name="p") as p:
        p.engine.write(DECISIONS_TABLE, old)
        new = append_decision_rows(p, _row("R1", "no"), "test", "b1")
        assert new.column("supersedes").to_pylist() == [1]
        assert verify_chain(p) == (2, None)
        assert list(latest_decisions(p, "S1").should_record) == ["no"]
