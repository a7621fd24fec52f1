"""Whose is what: the owner of a conversation or an exchange, the knowledge a user may recall,
and the admin's view across users. The server asks these before it serves an id, so another
user's id answers exactly like an id that does not exist.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from council.memory.store import Store


def conversation_owner(store: Store, cid: str) -> str | None:
    """The user of a conversation that is not deleted; None if there is none."""
    rows = store.query("SELECT user_id FROM conversations WHERE id = ? AND deleted = 0", (cid,))
    return str(rows[0][0]) if rows else None


def conversation_taken(store: Store, cid: str, user: str) -> bool:
    """Whether this id is already another user's conversation (deleted ones included: their
    exchanges stay for audit, so the id is never handed to someone else)."""
    rows = store.query("SELECT user_id FROM conversations WHERE id = ?", (cid,))
    return bool(rows) and rows[0][0] != user


def exchange_owner(store: Store, exchange_id: str) -> str | None:
    rows = store.query("SELECT user_id FROM exchanges WHERE id = ?", (exchange_id,))
    return str(rows[0][0]) if rows else None


def knowledge_ids(store: Store, user: str) -> np.ndarray | None:
    """Chunk ids `user` may recall: shared documents and their own. None (no filter) when no
    document is owned by anyone, the common case of a single-user server."""
    if not store.query("SELECT EXISTS (SELECT 1 FROM documents WHERE owner IS NOT NULL)")[0][0]:
        return None
    rows = store.query(
        "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id "
        "WHERE d.owner IS NULL OR d.owner = ?",
        (user,),
    )
    return np.array([r[0] for r in rows], dtype=np.int64)


def all_conversations(store: Store, user: str | None = None) -> list[dict[str, Any]]:
    """Every user's conversations (or one user's), most recently active first: admins only."""
    where, args = ("AND c.user_id = ? ", (user,)) if user else ("", ())
    rows = store.query(
        "SELECT c.id, c.user_id, c.title, c.created_at, c.updated_at, "
        "(SELECT COUNT(*) FROM exchanges e WHERE e.conversation_id = c.id) AS turns "
        f"FROM conversations c WHERE c.deleted = 0 {where}ORDER BY c.updated_at DESC",
        args,
    )
    return [dict(r) for r in rows]
