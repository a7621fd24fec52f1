"""The SQL condition on `memories` for recall's filters (user, session, exclude_session, role,
success, since), shared by the store's id lists and the vector tables' filtered searches: on
Postgres the condition goes into pgvector's own query, so a user's search never ships that
user's whole id list (benchmarks/pg_bench.py: 250 ms of Postgres CPU for 10k ids vs ~12 ms)."""

from __future__ import annotations

from typing import Any

Where = tuple[str, list[Any]]  # an SQL condition with `?` placeholders, and its arguments


def memory_where(**filters: Any) -> Where:
    where: list[str] = []
    args: list[Any] = []
    for key, column in (("user", "user_id"), ("session", "session_id"), ("role", "role")):
        if filters.get(key) is not None:
            where.append(f"{column} = ?")
            args.append(filters[key])
    if filters.get("exclude_session") is not None:
        where.append("(session_id IS NULL OR session_id != ?)")
        args.append(filters["exclude_session"])
    if "success" in filters:
        s = filters["success"]
        if s is None:
            where.append("success IS NULL")
        elif s == "not_failed":
            where.append("(success IS NULL OR success = 1)")
        else:
            where.append("success = ?")
            args.append(int(bool(s)))
    if filters.get("since") is not None:
        where.append("created_at >= ?")
        args.append(float(filters["since"]))
    return " AND ".join(where) or "1 = 1", args
