"""The engine interface: what every backend offers, and the rule that only engine/ sees one."""

import re
from pathlib import Path

import pyarrow as pa
import pytest

from crimeaudit.engine import DuckDBEngine, Engine, EngineError, connect
from crimeaudit.errors import CrimeauditError

SRC = Path(__file__).parent.parent / "src" / "crimeaudit"


@pytest.fixture
def eng():
    with Engine.duckdb(":memory:") as e:
        yield e


def test_engine_is_an_interface_and_duckdb_implements_all_of_it(eng):
    with pytest.raises(TypeError):
        Engine(None)  # abstract: only a backend module's engine can be built
    assert isinstance(eng, DuckDBEngine) and eng.name == "duckdb"
    assert not hasattr(eng, "backend")


def test_the_setting_chooses_the_engine_and_an_unavailable_one_is_a_user_error(tmp_path):
    with connect("duckdb", tmp_path / "s.duckdb") as e:
        assert isinstance(e, DuckDBEngine)
    with pytest.raises(EngineError) as err:
        connect("sqlite", tmp_path / "t.duckdb")
    assert isinstance(err.value, CrimeauditError)
    message = str(err.value)
    assert "engine: sqlite" in message and "set engine: duckdb" in message
    assert "\n" not in message


def test_execute_memtable_and_write_answer_without_the_backend(eng):
    eng.write("t", pa.table({"k": ["a", "b", "c"], "v": [1, 2, 3]}))
    keys = eng.memtable({"k": ["b", "c"]})
    t = eng.table("t")
    assert eng.execute(t.filter(t.k.isin(keys.k)).v.sum()) == 5
    eng.write("t", pa.table({"k": ["d"], "v": [4]}), mode="append")
    assert eng.count("t") == 4
    with pytest.raises(EngineError, match="no table 'u'"):
        eng.table("u")


def test_memory_cap_lowers_the_limit_and_restores_it(eng):
    def limit():
        return eng._backend.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]

    with eng.memory_cap(256 << 20):
        assert limit() == "256.0 MiB"
    before = limit()  # restored (to DuckDB's rounded spelling of the default)
    assert before != "256.0 MiB"
    with eng.memory_cap(1 << 50):  # never raised
        assert limit() == before


def test_splink_works_in_a_scratch_space_that_leaves_the_store_as_it_was(tmp_path):
    with Engine.duckdb(tmp_path / "store.duckdb") as e:
        e.write("crimes", pa.table({"crime_id": ["1", "2", "3"]}))
        before = e.list_tables()
        for _ in range(2):  # the scratch space is detached on exit, so it can be made again
            with e.splink_api() as api:
                t = e.table("crimes")
                sdf, n = e.splink_input(api, "crimes_in", t.filter(t.crime_id != "2"))
                assert n == 2
                assert sorted(r["crime_id"] for r in sdf.as_record_list()) == ["1", "3"]
                api._execute_sql_against_backend("CREATE TABLE __splink__work AS SELECT 1")
        assert e.list_tables() == before


def test_ingest_runs_in_the_engines_file_loader(tmp_path):
    """The DuckDB ingest SQL lives behind the engine: ``ingestion`` names no SQL module."""
    assert not (SRC / "ingestion" / "duckdb_sql.py").exists()
    assert (SRC / "engine" / "duckdb_ingest.py").exists()


FORBIDDEN = re.compile(r"^\s*(import duckdb|from duckdb\b)|\.\s*_?backend\b", re.MULTILINE)


def test_only_the_engine_package_touches_a_backend_or_duckdb():
    """Stages go through :class:`Engine`; a backend or a DuckDB import elsewhere is how
    engine-specific code creeps back in (and breaks the next engine)."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path.is_relative_to(SRC / "engine"):
            continue
        text = path.read_text(encoding="utf-8")
        for m in FORBIDDEN.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            offenders.append(f"{path.relative_to(SRC)}:{line}: {m.group(0).strip()}")
    assert not offenders, "use the Engine interface instead:\n" + "\n".join(offenders)
