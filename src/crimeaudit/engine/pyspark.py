"""The distributed engine: PySpark, with the store's tables as folders of Parquet files.

Spark's own tables cannot be updated in place and have no transactions, and a Hive catalog
allows one process at a time. So the store is kept the way table formats such as Delta and
Iceberg keep theirs, reduced to what crimeaudit needs: every table is a list of folders of
Parquet files (each write adds a folder: an append adds one to the list, a replacement starts a
new list), and one small ``catalog.json`` names each table's folders and schema. A write never
changes a file another version reads; a transaction changes only the catalog in memory, and
commits by replacing ``catalog.json`` in one rename, so a killed command leaves the store as
it was (the folders it wrote are swept away when the store next opens).

Each engine has its own Spark session (the JVM is shared within a process), in which every
table is a temporary view of its current folders, so Ibis expressions, Splink and the SQL of
:meth:`PySparkEngine.rows` read the tables by name.

Where Spark runs is a setting, not code: ``CRIMEAUDIT_SPARK_MASTER`` (default ``local[*]``),
``CRIMEAUDIT_SPARK_MEMORY`` (the driver's memory, default ``4g``) and any ``spark.*`` property
in ``CRIMEAUDIT_SPARK_CONF`` (``key=value`` pairs separated by spaces) are read when the first
engine of a process starts Spark (see docs/spark.md).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

from crimeaudit.engine.base import Engine, EngineError, naive_timestamps

if TYPE_CHECKING:
    from splink.internals.splink_dataframe import SplinkDataFrame

    from crimeaudit.ingestion.profile import Profile

CATALOG = "catalog.json"
TABLES_DIR = "tables"
#: Folders a table may have before the end of a command rewrites it as one.
MAX_PARTS = 16


def spark_available() -> str | None:
    """Why Spark cannot start here (no pyspark, no Java), or None when it can."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install 'crimeaudit[spark]')"
    java_home = os.environ.get("JAVA_HOME")
    if not (java_home and Path(java_home, "bin", "java").exists()) and not shutil.which("java"):
        return "Java is not installed (Spark 4 needs Java 17 or newer)"
    return None


def _conf_pairs() -> dict[str, str]:
    out = {}
    for item in os.environ.get("CRIMEAUDIT_SPARK_CONF", "").split():
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("spark."):
            raise EngineError(f"CRIMEAUDIT_SPARK_CONF: {item!r} is not a spark.key=value pair")
        out[key] = value
    return out


_SESSION: Any = None
_LOG4J = """rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
logger.repl.name = org.apache.spark.repl.Main
logger.repl.level = error
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d spark %p %c: %m%n
"""


def spark_session() -> Any:
    """The process's Spark session (started on first use: 10-15 s for the JVM)."""
    global _SESSION
    if _SESSION is not None:
        return _SESSION
    why = spark_available()
    if why:
        raise EngineError(f"engine: pyspark cannot start: {why}; install it, or set "
                          f"engine: duckdb to use the embedded store")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession
    from splink.backends.spark import similarity_jar_location

    # Spark's own log lines (start-up, warnings) would mix with crimeaudit's output: errors
    # only, from a log4j2 configuration of ours, and the JVM's standard error goes to a log
    # file (its errors reach Python as exceptions anyway).
    tmp = Path(tempfile.gettempdir())
    log_conf = tmp / "crimeaudit-spark-log4j2.properties"
    log_conf.write_text(_LOG4J, encoding="utf-8")
    builder = (SparkSession.builder
               .master(os.environ.get("CRIMEAUDIT_SPARK_MASTER", "local[*]"))
               .appName("crimeaudit")
               .config("spark.driver.memory", os.environ.get("CRIMEAUDIT_SPARK_MEMORY", "4g"))
               .config("spark.driver.extraJavaOptions",
                       f"-Dlog4j2.configurationFile={log_conf.as_uri()}")
               .config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.driver.host", "127.0.0.1")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "4")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.timestampType", "TIMESTAMP_NTZ")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               # Splink's string-similarity functions are Scala UDFs in a jar it ships.
               .config("spark.jars", similarity_jar_location()))
    for key, value in _conf_pairs().items():
        builder = builder.config(key, value)
    saved = os.dup(2)
    with open(tmp / "crimeaudit-spark.log", "ab") as log:
        os.dup2(log.fileno(), 2)  # (the JVM inherits this standard error)
        try:
            _SESSION = builder.getOrCreate()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    _SESSION.sparkContext.setLogLevel("ERROR")
    return _SESSION


class _Catalog:
    """``catalog.json``: per table, its schema (Spark's JSON) and the folders holding its rows.

    >>> import tempfile
    >>> c = _Catalog(Path(tempfile.mkdtemp()))
    >>> c.tables["t"] = {"schema": "{}", "parts": ["tables/t/a"]}
    >>> c.commit()
    >>> sorted(_Catalog(c.root).tables)
    ['t']
    """

    def __init__(self, root: Path):
        self.root = root
        path = root / CATALOG
        self.tables: dict[str, dict[str, Any]] = (
            json.loads(path.read_text(encoding="utf-8"))["tables"] if path.exists() else {})

    def commit(self) -> None:
        tmp = self.root / f".{CATALOG}.{uuid.uuid4().hex}"
        tmp.write_text(json.dumps({"tables": self.tables}, indent=1), encoding="utf-8")
        os.replace(tmp, self.root / CATALOG)

    def parts(self) -> set[str]:
        return {p for t in self.tables.values() for p in t["parts"]}


class PySparkEngine(Engine):
    """PySpark through Ibis, the store's tables as Parquet folders named by ``catalog.json``.

    Writes made inside :meth:`transaction` become visible to this engine at once and to the
    store (the next command) only when the transaction ends without an error.
    """

    name = "pyspark"

    def __init__(self, backend: Any, root: Path):
        super().__init__(backend, str(root))
        self.root = root
        self._catalog = _Catalog(root)
        self._depth = 0  # open transactions (nested ones join the outer)
        self._written: list[str] = []  # folders written in the open transaction
        self._superseded: list[str] = []  # folders the open transaction no longer uses
        for name in self._catalog.tables:
            self._register(name)

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def connect(cls, path: str | Path, threads: int | None = None) -> PySparkEngine:
        """Open (or create) the store in folder ``path``; sweep folders no table uses (what a
        killed command wrote)."""
        root = Path(path)
        (root / TABLES_DIR).mkdir(parents=True, exist_ok=True)
        session = spark_session().newSession()
        engine = cls(ibis.pyspark.connect(session), root)
        engine._sweep()
        return engine

    @property
    def spark(self) -> Any:
        return self._backend._session

    def _sweep(self) -> None:
        used = self._catalog.parts()
        for table_dir in (self.root / TABLES_DIR).iterdir():
            for part in table_dir.iterdir() if table_dir.is_dir() else ():
                if f"{TABLES_DIR}/{table_dir.name}/{part.name}" not in used:
                    shutil.rmtree(part, ignore_errors=True)
        for tmp in self.root.glob(f".{CATALOG}.*"):
            tmp.unlink(missing_ok=True)

    # -- the catalog ----------------------------------------------------------------------------
    def _frame(self, name: str) -> Any:
        """The Spark DataFrame of table ``name`` as the catalog (in this engine) has it."""
        from pyspark.sql.types import StructType

        entry = self._catalog.tables[name]
        schema = StructType.fromJson(json.loads(entry["schema"]))
        if not entry["parts"]:
            return self.spark.createDataFrame([], schema)
        return self.spark.read.schema(schema).parquet(
            *(str(self.root / p) for p in entry["parts"]))

    def _register(self, name: str) -> None:
        self._frame(name).createOrReplaceTempView(name)

    def _save(self, name: str, df: Any, mode: str) -> None:
        """Write ``df`` as a new folder of ``name`` (``append``: added to its folders;
        ``replace``: its only folder), and make it the table's current state."""
        part = f"{TABLES_DIR}/{name}/{uuid.uuid4().hex}"
        df.write.mode("overwrite").parquet(str(self.root / part))
        entry = self._catalog.tables.get(name)
        if mode == "append" and entry is not None:
            entry["parts"].append(part)
        else:
            if entry is not None:
                self._superseded.extend(entry["parts"])
            self._catalog.tables[name] = {"schema": df.schema.json(), "parts": [part]}
        self._written.append(part)
        self._register(name)
        self._changed()

    def _changed(self) -> None:
        if self._depth == 0:
            self._commit()

    def _commit(self) -> None:
        try:
            self._compact()
        except BaseException:
            self._rollback()
            raise
        self._catalog.commit()
        for part in self._superseded:
            shutil.rmtree(self.root / part, ignore_errors=True)
        self._written, self._superseded = [], []

    def _compact(self) -> None:
        """Rewrite a table that appends have left in more than :data:`MAX_PARTS` folders as
        one (an ingest of many files appends a folder per file to each record table, and
        every read lists them all)."""
        for name, entry in self._catalog.tables.items():
            if len(entry["parts"]) > MAX_PARTS:
                part = f"{TABLES_DIR}/{name}/{uuid.uuid4().hex}"
                self._frame(name).write.mode("overwrite").parquet(str(self.root / part))
                self._superseded.extend(entry["parts"])
                entry["parts"] = [part]
                self._written.append(part)
                self._register(name)

    @contextmanager
    def transaction(self) -> Iterator[PySparkEngine]:
        """All writes inside reach the store together (one rename of ``catalog.json``) or
        not at all."""
        self._depth += 1
        try:
            yield self
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                self._rollback()
            raise
        else:
            self._depth -= 1
            if self._depth == 0:
                self._commit()

    def _rollback(self) -> None:
        for view in list(self._catalog.tables):
            self.spark.catalog.dropTempView(view)
        self._catalog = _Catalog(self.root)
        for part in self._written:
            shutil.rmtree(self.root / part, ignore_errors=True)
        self._written, self._superseded = [], []
        for name in self._catalog.tables:
            self._register(name)

    # -- tables -----------------------------------------------------------------------------
    def list_tables(self) -> list[str]:
        return sorted(self._catalog.tables)

    def has_table(self, name: str) -> bool:
        return name in self._catalog.tables

    def columns(self, name: str) -> list[str]:
        if name not in self._catalog.tables:
            return []
        return [f["name"] for f in json.loads(self._catalog.tables[name]["schema"])["fields"]]

    def _spark_frame(self, data: ir.Table | pa.Table | pd.DataFrame) -> Any:
        if isinstance(data, ir.Table):
            self._backend._run_pre_execute_hooks(data)
            return self.spark.sql(self._backend.compile(data))
        if isinstance(data, pd.DataFrame):
            data = pa.Table.from_pandas(data, preserve_index=False)
        return self.spark.createDataFrame(_spark_ready(data))

    def write(self, name: str, data: ir.Table | pa.Table | pd.DataFrame, mode: str = "replace",
              schema: pa.Schema | None = None) -> None:
        if mode not in ("replace", "append"):
            raise ValueError(f"mode must be 'replace' or 'append', not {mode!r}")
        if schema is not None and isinstance(data, pd.DataFrame):
            data = pa.Table.from_pandas(data, schema=schema, preserve_index=False)
        if (mode == "append" and isinstance(data, pa.Table | pd.DataFrame) and len(data) == 0
                and self.has_table(name)):
            return  # (nothing to add: no empty folder)
        df = self._spark_frame(data)
        if mode == "append" and self.has_table(name):
            have = self.columns(name)
            extra = sorted(set(df.columns) - set(have))
            if extra:
                raise EngineError(f"cannot append to {name!r}: it has no column(s) {extra}")
            df = _aligned(df, self._frame(name).schema)
        self._save(name, df, mode)

    def create_empty(self, name: str, schema: pa.Schema) -> None:
        if not self.has_table(name):
            self._save(name, self.spark.createDataFrame(_spark_ready(schema.empty_table())),
                       "replace")

    def add_missing_columns(self, name: str, schema: pa.Schema) -> list[str]:
        if not self.has_table(name):
            return []
        have = set(self.columns(name))
        missing = [f for f in schema if f.name not in have]
        if missing:
            df = self._frame(name)
            empty = self.spark.createDataFrame(_spark_ready(pa.schema(missing).empty_table()))
            for f in empty.schema.fields:
                df = df.withColumn(f.name, _null(f.name).cast(f.dataType))
            self._save(name, df, "replace")
        return [f.name for f in missing]

    def drop(self, name: str) -> None:
        entry = self._catalog.tables.pop(name, None)
        if entry is None:
            return
        self._superseded.extend(entry["parts"])
        self.spark.catalog.dropTempView(name)
        self._changed()

    def replace_rows(self, name: str, key: str, remove: pa.Table | ir.Table | None = None,
                     add: pa.Table | None = None) -> None:
        if remove is None:
            if add is not None and add.num_rows:
                self.write(name, add, mode="append")
            return
        ids = (self._spark_frame(remove) if isinstance(remove, ir.Table)
               else self.spark.createDataFrame(_spark_ready(remove.select([key]))))
        df = self._frame(name)
        keep = df.join(ids.select(key).distinct(), on=key, how="left_anti")
        if add is not None and add.num_rows:
            extra = self.spark.createDataFrame(_spark_ready(add))
            keep = keep.unionByName(_aligned(extra, df.schema))
        self._save(name, keep, "replace")

    def delete_rows(self, name: str, where: Callable[[ir.Table], ir.BooleanValue]) -> None:
        t = self.table(name)
        self._save(name, self._spark_frame(t.filter(~where(t).fill_null(False))), "replace")

    def to_pyarrow(self, expr: ir.Table) -> pa.Table:
        """The rows of ``expr`` through Arrow (not pandas): the store's naive timestamps stay
        naive and strings stay strings."""
        table = self._spark_frame(expr).toArrow()
        if not table.num_columns:
            return table
        return naive_timestamps(table).cast(expr.schema().to_pyarrow())

    def to_pyarrow_batches(self, expr: ir.Table, chunk_size: int = 100_000) -> pa.RecordBatchReader:
        """The rows of ``expr`` as Arrow batches. (Spark hands the driver the whole result:
        on a cluster, screen in batches of incidents instead.)"""
        table = self.to_pyarrow(expr)
        return pa.RecordBatchReader.from_batches(table.schema,
                                                 table.to_batches(max_chunksize=chunk_size))

    def close(self) -> None:
        for view in list(self._catalog.tables):
            self.spark.catalog.dropTempView(view)
        if getattr(self, "_versions", None) is not None:
            self._versions.close()
            self._versions = None

    # -- what differs between backends ----------------------------------------------------------
    @contextmanager
    def memory_cap(self, limit: int) -> Iterator[None]:
        """Spark's memory is fixed when it starts (``CRIMEAUDIT_SPARK_MEMORY``) and it spills
        beyond it on its own: nothing to lower."""
        yield

    @contextmanager
    def splink_api(self) -> Iterator[Any]:
        """Splink's Spark API on this engine's session; its working tables are written under
        the store's ``splink-scratch`` folder, removed on exit."""
        from splink import SparkAPI

        scratch = self.root / f"splink-scratch-{uuid.uuid4().hex}"
        scratch.mkdir()
        self.spark.sparkContext.setCheckpointDir(str(scratch))
        before = {v.name for v in self.spark.catalog.listTables()}
        try:
            yield SparkAPI(spark_session=self.spark, break_lineage_method="parquet",
                           num_partitions_on_repartition=4)
        finally:
            for view in self.spark.catalog.listTables():
                if view.isTemporary and view.name not in before:
                    self.spark.catalog.dropTempView(view.name)
            shutil.rmtree(scratch, ignore_errors=True)

    def splink_input(self, api: Any, name: str, expr: ir.Table) -> tuple[SplinkDataFrame, int]:
        df = self._spark_frame(expr).persist()
        df.createOrReplaceTempView(name)
        return api.register(name), int(df.count())

    def file_loader(self, profile: Profile, offences: list[str],
                    hash_sql: Callable[[str], str]) -> Any:
        from crimeaudit.engine.scratch_ingest import ScratchFileLoader

        return ScratchFileLoader(self, profile, offences, hash_sql, self.record_versions())

    def record_versions(self) -> Any:
        from crimeaudit.engine.scratch_ingest import ScratchRecordVersions

        if getattr(self, "_versions", None) is None:
            self._versions = ScratchRecordVersions(self)
        return self._versions

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        """The rows of Spark SQL ``sql`` with ``?`` parameters (no Ibis compile)."""
        df = self.spark.sql(sql, args=list(params)) if params else self.spark.sql(sql)
        return [tuple(r) for r in df.collect()]

    def insert_rows(self, name: str, data: pa.Table) -> None:
        self.write(name, data, mode="append")


def _null(name: str) -> Any:
    from pyspark.sql import functions as F

    return F.lit(None).alias(name)


def _aligned(df: Any, schema: Any) -> Any:
    """``df`` with the columns of ``schema`` in its order and types (missing ones NULL)."""
    return df.select(*[(df[f.name] if f.name in df.columns else _null(f.name))
                       .cast(f.dataType).alias(f.name) for f in schema.fields])


def _spark_ready(table: pa.Table) -> pa.Table:
    """Arrow data as Spark takes it: large strings as strings, dictionaries decoded, NULL
    columns as strings."""
    fields = []
    for f in table.schema:
        t = f.type
        if pa.types.is_dictionary(t):
            t = t.value_type
        if pa.types.is_large_string(t) or pa.types.is_null(t):
            t = pa.string()
        if pa.types.is_timestamp(t) and t.tz is not None:
            t = pa.timestamp("us")
        fields.append(pa.field(f.name, t))
    schema = pa.schema(fields)
    return table if schema == table.schema else table.cast(schema)


__all__ = ["PySparkEngine", "spark_available", "spark_session"]
