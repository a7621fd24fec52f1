"""Routing's storage: what the router reads back from the stored exchanges and votes (memory's
tables) for its figures, the heads' certainty and the cognitive map. Routing has no tables of
its own (the spend ledger is JSON lines: spend.py). Answers are exchanges of role council or
single: harvest rewrites and Agent-0's answers are not routing's doing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def answers(store: Any) -> list[Any]:
    """(strategy, models_json, notes_json) of every stored answer."""
    rows: list[Any] = store.query(
        "SELECT strategy, models_json, notes_json FROM exchanges "
        "WHERE role IN ('council', 'single')"
    )
    return rows


def recent_certainty(store: Any, size: int, skip_strategies: Sequence[str]) -> list[Any]:
    """(head, task_type, logprob) of each head's newest `size` answers per task type, oldest
    first; failed votes and the answers of `skip_strategies` left out."""
    marks = ", ".join("?" * len(skip_strategies))
    sql = f"""
    SELECT head, task_type, logprob FROM (
        SELECT v.head, e.task_type, v.logprob, e.created_at,
               ROW_NUMBER() OVER (PARTITION BY v.head, e.task_type
                                  ORDER BY e.created_at DESC) AS age
        FROM votes v JOIN exchanges e ON e.id = v.exchange_id
        WHERE v.logprob IS NOT NULL AND v.error IS NULL AND e.role IN ('council', 'single')
          AND e.strategy NOT IN ({marks})
    ) AS newest WHERE age <= ? ORDER BY created_at  -- Postgres before 16 wants the alias
"""
    rows: list[Any] = store.query(sql, (*skip_strategies, size))
    return rows


def head_votes(store: Any, since: float) -> list[Any]:
    """(task_type, prompt, success, head, answer, won) of every answer's votes that did not
    fail, since then."""
    rows: list[Any] = store.query(
        """
    SELECT e.task_type, e.prompt, e.success, v.head, v.answer, v.won
    FROM votes v JOIN exchanges e ON e.id = v.exchange_id
    WHERE v.error IS NULL AND v.cluster IS NOT NULL AND e.role IN ('council', 'single')
      AND e.created_at >= ?
""",
        (since,),
    )
    return rows


def head_outcomes(store: Any, since: float) -> list[Any]:
    """(task_type, prompt, success, label_source, head, answer, won, corrected) of every vote
    since then; `corrected` is what the exchange's answer should have been: the correction a
    user gave with their newest rating (a 👎 that says the right answer), else the newest
    accepted rewrite of the exchange (a harvest that corrected it), else NULL. Failed votes and
    abstentions (an answer with no cluster: a tool head that did not apply) are left out."""
    rows: list[Any] = store.query(
        """
    SELECT e.task_type, e.prompt, e.success, e.label_source, v.head, v.answer, v.won,
           COALESCE(
             (SELECT f.correction FROM feedback f WHERE f.exchange_id = e.id
              ORDER BY f.created_at DESC, f.id DESC LIMIT 1),
             (SELECT c.answer FROM exchanges c
              WHERE c.parent_id = e.id AND c.role = 'agent0' AND c.success = 1
              ORDER BY c.created_at DESC LIMIT 1)) AS corrected
    FROM votes v JOIN exchanges e ON e.id = v.exchange_id
    WHERE v.error IS NULL AND v.cluster IS NOT NULL AND e.role IN ('council', 'single')
      AND e.created_at >= ?
""",
        (since,),
    )
    return rows


def labelled_by_task(store: Any, since: float) -> list[Any]:
    """(task_type, count, successes) of the answers with a success label, since then."""
    rows: list[Any] = store.query(
        "SELECT task_type, COUNT(*), SUM(success) FROM exchanges "
        "WHERE success IS NOT NULL AND role IN ('council', 'single') AND created_at >= ? "
        "GROUP BY task_type",
        (since,),
    )
    return rows
