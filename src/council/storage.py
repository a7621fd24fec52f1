"""The store (the SQLite file, or Postgres) and its migration history, assembled above the parts.

Since Alembic (council/db/), the tables are defined once in db/tables.py and new schema
changes are Alembic revisions in db/migrations/versions/ (`council db upgrade`); the parts'
ledgers keep every query of their tables. MIGRATIONS below is the frozen history from before:
a SQLite file part-way through it finishes it, then is stamped at Alembic's baseline. Never
append to it, reorder or rename it (databases record the names and count them in user_version).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from council.adapters.ledger import m003_adapter_tables
from council.config import Settings
from council.db.engine import sqlite_url
from council.facts.ledger import m008_facts
from council.jobs.ledger import m003_runs
from council.learning.ledger import m002_learning, m003_gauntlet_reports, m010_heldout_traffic
from council.memory.schema import (
    Migration,
    m001_initial,
    m004_vote_certainty,
    m007_document_owner,
    m009_feedback_correction,
)
from council.memory.store import Store
from council.quota.ledger import m005_key_limits
from council.users.ledger import m006_users

DATABASE = "council.db"


def m003_adapters(db: sqlite3.Connection) -> None:
    """One release added the tables of three parts in one step; each part keeps its DDL."""
    m003_adapter_tables(db)  # adapters, adapter_aliases, deployments
    m003_gauntlet_reports(db)  # learning
    m003_runs(db)  # jobs


MIGRATIONS: list[Migration] = [
    m001_initial,  # memory: conversations, exchanges, votes, feedback, memories, documents
    m002_learning,  # learning: harvests, examples, holdout, datasets
    m003_adapters,
    m004_vote_certainty,  # memory: votes.logprob
    m005_key_limits,  # quota: limits_override, key_requests, key_usage
    m006_users,  # users: users, api_keys, sessions
    m007_document_owner,  # memory: documents.owner (shared or one user's)
    m008_facts,  # facts: facts, fact_jobs
    m009_feedback_correction,  # memory: feedback.correction
    m010_heldout_traffic,  # learning: heldout_traffic
]


def open_db(where: Path | str, pool_size: int = 8) -> Store:
    """The store in this file (or at this postgresql:// URL), migrated to the whole history;
    on Postgres, a pool of at most `pool_size` connections."""
    return Store(where, MIGRATIONS, pool_size)


def open_store(settings: Settings) -> Store:
    """The store of this data dir, or of COUNCIL_DATABASE_URL where it is set."""
    return open_db(
        database_url(settings) if settings.memory.database_url else database_path(settings),
        settings.memory.database_pool_size,
    )


def database_path(settings: Settings) -> Path:
    return settings.server.data_dir / DATABASE


def database_url(settings: Settings) -> str:
    """The store's URL: COUNCIL_DATABASE_URL, or the SQLite file's."""
    return settings.memory.database_url or sqlite_url(database_path(settings))
