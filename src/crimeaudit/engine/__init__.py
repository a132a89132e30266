"""The one interface to the table engines (Ibis backends).

Every stage reads and writes full-size tables through an :class:`Engine`, never through a
backend directly, so the same code runs on the embedded DuckDB store (the default) and on
PySpark when a national dataset outgrows one machine.

>>> eng = Engine.duckdb(":memory:")
>>> import pyarrow as pa
>>> eng.write("t", pa.table({"a": [1, 2, 3]}))
>>> eng.table("t").count().execute()
3
>>> eng.has_table("t"), eng.has_table("u")
(True, False)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

from crimeaudit.errors import CrimeauditError


class EngineError(CrimeauditError, RuntimeError):
    """An engine could not be reached or does not support what was asked."""


class Engine:
    """A thin wrapper over an Ibis backend with the operations crimeaudit needs."""

    def __init__(self, backend: Any, name: str):
        self.backend = backend
        self.name = name

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def duckdb(cls, path: str | Path = ":memory:", threads: int | None = None) -> Engine:
        """The embedded default: a DuckDB database file (or ``:memory:``)."""
        kwargs: dict[str, Any] = {}
        if threads:
            kwargs["threads"] = threads
        backend = ibis.duckdb.connect(str(path), **kwargs)
        # DuckDB draws its own progress bar on standard output for queries over 2 s, even when
        # output is piped, which would corrupt `--json` output; crimeaudit shows its own.
        backend.con.execute("SET enable_progress_bar = false")
        return cls(backend, "duckdb")

    @classmethod
    def pyspark(cls, session: Any | None = None) -> Engine:
        """A PySpark session (install with ``pip install 'crimeaudit[spark]'``)."""
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:  # pragma: no cover - depends on the extra
            raise EngineError(
                "the PySpark engine needs pyspark: pip install 'crimeaudit[spark]'"
            ) from exc
        session = session or SparkSession.builder.appName("crimeaudit").getOrCreate()
        return cls(ibis.pyspark.connect(session), "pyspark")

    # -- tables -----------------------------------------------------------------------------
    def list_tables(self) -> list[str]:
        return sorted(self.backend.list_tables())

    def has_table(self, name: str) -> bool:
        return name in self.backend.list_tables()

    def table(self, name: str) -> ir.Table:
        if not self.has_table(name):
            raise EngineError(f"the store has no table {name!r}")
        return self.backend.table(name)

    def write(
        self,
        name: str,
        data: ir.Table | pa.Table | pd.DataFrame,
        mode: str = "replace",
        schema: pa.Schema | None = None,
    ) -> None:
        """Write ``data`` as table ``name``; ``mode`` is ``replace`` or ``append``."""
        if mode not in ("replace", "append"):
            raise ValueError(f"mode must be 'replace' or 'append', not {mode!r}")
        if schema is not None and isinstance(data, pd.DataFrame):
            data = pa.Table.from_pandas(data, schema=schema, preserve_index=False)
        if mode == "append" and self.has_table(name):
            self.backend.insert(name, data)
        else:
            self.backend.create_table(name, data, overwrite=True)

    def create_empty(self, name: str, schema: pa.Schema) -> None:
        """Create ``name`` with ``schema`` and no rows, unless it exists."""
        if not self.has_table(name):
            self.backend.create_table(name, schema=ibis.schema(schema))

    def drop(self, name: str) -> None:
        self.backend.drop_table(name, force=True)

    def read_parquet(self, path: str | Path, **kwargs: Any) -> ir.Table:
        return self.backend.read_parquet(str(path), **kwargs)

    def read_csv(self, path: str | Path, **kwargs: Any) -> ir.Table:
        return self.backend.read_csv(str(path), **kwargs)

    def to_pyarrow(self, expr: ir.Table) -> pa.Table:
        return self.backend.to_pyarrow(expr)

    def to_pyarrow_batches(self, expr: ir.Table, chunk_size: int = 100_000) -> pa.RecordBatchReader:
        """Stream a table expression as Arrow record batches, for work that must not hold the
        whole table in memory (scoring a million incidents)."""
        return self.backend.to_pyarrow_batches(expr, chunk_size=chunk_size)

    def to_pandas(self, expr: ir.Table) -> pd.DataFrame:
        return self.backend.execute(expr)

    def count(self, name: str) -> int:
        return int(self.table(name).count().execute())

    # -- atomicity --------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Engine]:
        """All writes inside happen together or not at all (DuckDB: one SQL transaction)."""
        if self.name != "duckdb":
            # Spark tables are written whole by each stage; there is nothing to roll back.
            yield self
            return
        con = self.backend.con
        con.execute("BEGIN TRANSACTION")
        try:
            yield self
        except BaseException:
            con.execute("ROLLBACK")
            raise
        else:
            con.execute("COMMIT")

    def close(self) -> None:
        disconnect = getattr(self.backend, "disconnect", None)
        if disconnect:
            disconnect()


__all__ = ["Engine", "EngineError"]
