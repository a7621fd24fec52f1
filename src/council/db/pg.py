"""Postgres behind the store's connection: the subset of sqlite3.Connection the ledgers use.

The ledgers write portable SQL with `?` placeholders (SQLite's); this runs it on psycopg 3:
placeholders become `%s`, an INSERT into a table with a serial id returns it as `lastrowid`,
booleans are stored as the 0/1 integers the schema holds, and rows answer by index and name
like sqlite3.Row. A statement that is not portable fails here with Postgres's message.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any

import psycopg
from pgvector.psycopg import register_vector
from psycopg.adapt import Dumper
from psycopg.types.numeric import FloatLoader
from sqlalchemy.engine import make_url

from council.db.tables import metadata

# Tables whose `id` Postgres numbers (serial): an INSERT into them reports the id it got.
SERIAL = frozenset(
    t.name for t in metadata.tables.values() if [c.name for c in t.primary_key] == ["id"]
    and t.c.id.type.python_type is int
)  # fmt: skip
_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+(\w+)", re.IGNORECASE)
_QUOTED = re.compile(r"('(?:[^']|'')*'|\"[^\"]*\")")
# SQLite's functions with no standard spelling, rewritten: GROUP_CONCAT(x), and
# json_extract(column, '$.key') or (column, '$[1]') as jsonb's ->> (text, as SQLite's is).
_GROUP_CONCAT = re.compile(r"GROUP_CONCAT\(([^()]*)\)", re.IGNORECASE)
_JSON_KEY = re.compile(r"json_extract\(([\w.]+),\s*'\$\.(\w+)'\)", re.IGNORECASE)
_JSON_INDEX = re.compile(r"json_extract\(([\w.]+),\s*'\$\[(\d+)\]'\)", re.IGNORECASE)
# INSERT OR IGNORE / OR REPLACE INTO t (columns) VALUES (...): Postgres's ON CONFLICT on t's
# primary key (REPLACE sets every listed column; the ledgers list them all).
_INSERT_OR = re.compile(
    r"^\s*INSERT\s+OR\s+(IGNORE|REPLACE)\s+INTO\s+(\w+)\s*\(([^)]*)\)(.*)$",
    re.IGNORECASE | re.DOTALL,
)


class Row(tuple[Any, ...]):
    """A result row: r[0], r["name"], dict(r), like sqlite3.Row."""

    _names: dict[str, int]

    def __new__(cls, names: dict[str, int], values: Sequence[Any]) -> Row:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return super().__getitem__(self._names[key])
        return super().__getitem__(key)

    def keys(self) -> list[str]:
        return list(self._names)


def row_factory(cursor: Any) -> Any:
    names = {c.name: i for i, c in enumerate(cursor.description or [])}
    return lambda values: Row(names, values)


class _BoolAsInt(Dumper):
    """The schema keeps flags as 0/1 integers (as SQLite did); Python bools go in as those."""

    oid = psycopg.postgres.types["int4"].oid

    def dump(self, obj: Any) -> bytes:
        return b"1" if obj else b"0"


@lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """SQLite's `?` placeholders as psycopg's `%s` (literal `%` doubled), quoted text kept."""
    if sql.strip().upper() == "BEGIN IMMEDIATE":
        return "BEGIN"  # Postgres takes its row locks as it writes
    sql = _upsert(sql)
    sql = _GROUP_CONCAT.sub(r"string_agg(\1, ',')", sql)
    sql = _JSON_INDEX.sub(r"(\1::jsonb ->> \2)", _JSON_KEY.sub(r"(\1::jsonb ->> '\2')", sql))
    parts = _QUOTED.split(sql)
    for i in range(0, len(parts), 2):  # even parts are outside quotes
        parts[i] = parts[i].replace("%", "%%").replace("?", "%s")
    for i in range(1, len(parts), 2):
        parts[i] = parts[i].replace("%", "%%")
    return "".join(parts)


def _upsert(sql: str) -> str:
    match = _INSERT_OR.match(sql)
    if match is None:
        return sql
    how, table, columns, rest = match.groups()
    head = f"INSERT INTO {table} ({columns}){rest.rstrip().rstrip(';')}"
    if how.upper() == "IGNORE":
        return f"{head} ON CONFLICT DO NOTHING"
    keys = [c.name for c in metadata.tables[table].primary_key]
    names = [c.strip() for c in columns.split(",") if c.strip() not in keys]
    sets = ", ".join(f"{n} = excluded.{n}" for n in names)
    return f"{head} ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"


class Cursor:
    """What an execute() returns: rows, rowcount and (after an INSERT) lastrowid."""

    def __init__(self, cur: psycopg.Cursor[Any], lastrowid: int | None = None):
        self._cur = cur
        self.rowcount = cur.rowcount
        self.lastrowid = lastrowid

    def fetchone(self) -> Any:
        return self._cur.fetchone() if self._cur.description else None

    def fetchall(self) -> list[Any]:
        return self._cur.fetchall() if self._cur.description else []

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


def dsn(url: str) -> str:
    """libpq's form of a SQLAlchemy URL (postgresql+psycopg://... names a driver libpq lacks)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def configure(raw: psycopg.Connection[Any]) -> None:
    """What every connection converts: 0/1 flags, numerics as floats, numpy vectors."""
    raw.adapters.register_dumper(bool, _BoolAsInt)
    raw.adapters.register_loader("numeric", FloatLoader)
    # numpy arrays in and out of `vector` columns; an admin connection to a database
    # without pgvector has none to convert
    with contextlib.suppress(psycopg.ProgrammingError):
        register_vector(raw)


def connect(url: str) -> PgConnection:
    """One connection of its own, outside the store's pool (`council db copy`)."""
    raw = psycopg.connect(dsn(url), autocommit=True, row_factory=row_factory)
    configure(raw)
    return PgConnection(raw)


class PgConnection:
    """A psycopg connection (autocommit: transactions are explicit) answering like sqlite3's."""

    def __init__(self, raw: psycopg.Connection[Any]):
        self.raw = raw

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Cursor:
        statement = translate(sql)
        match = _INSERT.match(statement)
        serial = match is not None and match.group(1) in SERIAL and "RETURNING" not in sql.upper()
        if serial:
            statement += " RETURNING id"
        cur = self.raw.cursor()
        cur.execute(statement, tuple(args))
        if serial:
            row = cur.fetchone()
            return Cursor(cur, int(row[0]) if row else None)
        return Cursor(cur)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Cursor:
        cur = self.raw.cursor()
        cur.executemany(translate(sql), [tuple(r) for r in rows])
        return Cursor(cur)

    def close(self) -> None:
        self.raw.close()
