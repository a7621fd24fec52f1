"""`council db copy`: a SQLite store into an empty Postgres, checked after.

Tables go in foreign-key order through the one table definition (db/tables.py); a column that
points into its own table (exchanges.parent_id, facts.superseded_by) is filled in a second
pass, serial ids keep their values and their sequences resume after them, and pgvector's
`embedding` is filled from the float32 blobs. The check: every table's row count, and a sample
of vectors whose blob and embedding must equal the source's.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import Connection, Table, bindparam, func, select, text

from council.db.connect import write_embeddings
from council.db.engine import is_postgres, make_engine, shown
from council.db.pg import SERIAL, connect
from council.db.tables import metadata
from council.db.upgrade import upgrade
from council.errors import ConfigError
from council.memory.schema import Migration

BATCH = 2000
SAMPLE = 200  # vectors compared after the copy, per table


@dataclass
class CopyReport:
    rows: dict[str, int] = field(default_factory=dict)
    vectors_checked: int = 0


def copy_store(source: str, target: str, legacy: Sequence[Migration]) -> CopyReport:
    if not is_postgres(target):
        raise ConfigError(f"--to {shown(target)}: copy into Postgres (postgresql://...).")
    upgrade(source, legacy)
    upgrade(target, legacy)
    src_engine, dst_engine = make_engine(source), make_engine(target)
    report = CopyReport()
    try:
        with src_engine.connect() as src, dst_engine.connect() as dst:
            _refuse_nonempty(dst, target)
            for table in metadata.sorted_tables:
                report.rows[table.name] = _copy_table(src, dst, table)
                dst.commit()
            _resume_sequences(dst)
            dst.commit()
            _check_counts(src, dst, report)
        report.vectors_checked = _fill_and_check_vectors(src_engine.connect(), target)
    finally:
        src_engine.dispose()
        dst_engine.dispose()
    return report


def _refuse_nonempty(dst: Connection, target: str) -> None:
    for table in metadata.sorted_tables:
        n = dst.execute(select(func.count()).select_from(table)).scalar_one()
        if n:
            raise ConfigError(
                f"{shown(target)} already holds {n} rows in {table.name}: copy into an empty "
                "database (createdb a new one), so nothing there is overwritten or mixed."
            )


def _copy_table(src: Connection, dst: Connection, table: Table) -> int:
    own = [c.name for c in table.columns for fk in c.foreign_keys if fk.column.table is table]
    count, later = 0, []
    result = src.execute(select(table)).mappings()
    while batch := result.fetchmany(BATCH):
        rows = [dict(r) for r in batch]
        if own:
            later += [(r, {c: r[c] for c in own}) for r in rows if any(r[c] for c in own)]
            rows = [{**r, **dict.fromkeys(own)} for r in rows]
        dst.execute(table.insert(), rows)
        count += len(rows)
    pk = [c.name for c in table.primary_key]
    for row, values in later:  # rows that point into their own table, now that all exist
        where = [table.c[k] == bindparam(f"k_{k}") for k in pk]
        dst.execute(table.update().where(*where).values(**values), {f"k_{k}": row[k] for k in pk})
    return count


def _resume_sequences(dst: Connection) -> None:
    for name in sorted(SERIAL):
        dst.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                f"COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM {name}"
            )
        )


def _check_counts(src: Connection, dst: Connection, report: CopyReport) -> None:
    for table in metadata.sorted_tables:
        a = src.execute(select(func.count()).select_from(table)).scalar_one()
        b = dst.execute(select(func.count()).select_from(table)).scalar_one()
        if a != b:
            raise ConfigError(
                f"The copy of {table.name} holds {b} rows, the source {a}: the source changed "
                "during the copy, or the copy failed. Stop the server and copy again into a "
                "new empty database."
            )


def _fill_and_check_vectors(src: Connection, target: str) -> int:
    pg = connect(target)
    checked = 0
    try:
        for name in ("memories", "chunks"):
            rows = src.execute(text(f"SELECT id, vector FROM {name} ORDER BY id")).fetchall()
            for start in range(0, len(rows), BATCH):
                part = rows[start : start + BATCH]
                vecs = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in part])
                pg.execute("BEGIN")
                write_embeddings(pg, name, [int(r[0]) for r in part], vecs)
                pg.execute("COMMIT")
            for rid, blob in random.Random(0).sample(rows, min(SAMPLE, len(rows))):
                got = pg.execute(f"SELECT vector, embedding FROM {name} WHERE id = ?", (rid,))
                copied, embedding = got.fetchone()
                want = np.frombuffer(blob, dtype=np.float32)
                if bytes(copied) != bytes(blob) or not np.array_equal(_numpy(embedding), want):
                    raise ConfigError(
                        f"{name} {rid}: the copied vector differs from the source's. Copy "
                        "again into a new empty database, and report this if it repeats."
                    )
                checked += 1
    finally:
        pg.close()
        src.close()
    return checked


def _numpy(embedding: object) -> np.ndarray:
    to_numpy = getattr(embedding, "to_numpy", None)  # pgvector's Vector, or already an array
    return np.asarray(to_numpy() if to_numpy else embedding, dtype=np.float32)
