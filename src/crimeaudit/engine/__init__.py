"""The one interface to the table engines (Ibis backends).

Every stage reads and writes full-size tables through an :class:`Engine`, never through a
backend directly, so the same stage code runs on the embedded DuckDB store (the default) and on
PySpark (:mod:`crimeaudit.engine.pyspark`) when a national dataset outgrows one machine. The
project's ``engine`` setting picks the engine through :func:`connect`.

>>> eng = Engine.duckdb(":memory:")
>>> import pyarrow as pa
>>> eng.write("t", pa.table({"a": [1, 2, 3]}))
>>> eng.execute(eng.table("t").count())
3
>>> eng.has_table("t"), eng.has_table("u")
(True, False)
"""

from __future__ import annotations

from pathlib import Path

from crimeaudit.engine.base import (
    WORK_MEMORY,
    Engine,
    EngineError,
    FileLoader,
    LoadedFile,
    RecordVersions,
)
from crimeaudit.engine.duckdb import DuckDBEngine


def connect(name: str, path: str | Path) -> Engine:
    """The engine a project's ``engine`` setting names, over its store at ``path``.

    An engine this version cannot run is a clear error here, when the project opens, rather
    than a setting accepted and silently ignored.
    """
    if name == "duckdb":
        return DuckDBEngine.connect(path)
    if name == "pyspark":
        from crimeaudit.engine.pyspark import PySparkEngine  # (imports pyspark only if used)

        return PySparkEngine.connect(path)
    raise EngineError(f"engine: {name} (project.yaml) is not an engine crimeaudit knows; "
                      f"set engine: duckdb")


__all__ = ["WORK_MEMORY", "DuckDBEngine", "Engine", "EngineError", "FileLoader", "LoadedFile",
           "RecordVersions", "connect"]
