"""Writing simulated tables to files, byte for byte the same for the same scenario and seed.

>>> import pyarrow as pa, tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> files = write_tables({"t": pa.table({"x": [1, 2]})}, d, "csv")
>>> (d / "t.csv").read_text().splitlines()
['"x"', '1', '2']
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from crimeaudit.store.files import open_for_write, write_text

ROW_GROUP_SIZE = 250_000


def write_tables(tables: dict[str, pa.Table], out_dir: Path, fmt: str) -> dict[str, str]:
    """Write each table as ``<name>.<fmt>``; returns file name -> sha256."""
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"unknown format {fmt!r}: use parquet or csv")
    out_dir.mkdir(parents=True, exist_ok=True)
    hashes = {}
    for name, table in tables.items():
        path = out_dir / f"{name}.{fmt}"
        # Through open_for_write: never through a link planted in the folder, never torn.
        with open_for_write(path, "wb") as f:
            if fmt == "parquet":
                # Fixed writer settings, no pandas metadata: the bytes depend on the data alone.
                pq.write_table(
                    table.replace_schema_metadata(None), f, compression="zstd",
                    row_group_size=ROW_GROUP_SIZE, use_dictionary=True, write_statistics=True,
                    version="2.6",
                )
            else:
                pacsv.write_csv(table, f)
        hashes[path.name] = sha256(path)
    return hashes


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(manifest: dict, out_dir: Path) -> Path:
    path = out_dir / "manifest.json"
    write_text(path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path
