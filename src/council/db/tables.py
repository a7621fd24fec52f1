"""The one definition of the store's tables, for SQLite and Postgres (SQLAlchemy Core).

Alembic's revisions (db/migrations/versions/) are generated from these tables and checked
against them (tests/test_db.py); the parts' ledgers keep their queries. Columns keep the types
the SQLite history gave them (tests/test_db.py compares a database built by the old
migrations with these tables); `Real` is double precision on Postgres, where REAL is 4 bytes.
"""

from __future__ import annotations

from sqlalchemy import (
    REAL,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION
from sqlalchemy.types import TypeEngine

Real: TypeEngine[float] = REAL().with_variant(DOUBLE_PRECISION(), "postgresql")

metadata = MetaData()


t_adapters = Table(
    "adapters",
    metadata,
    Column("version", Text, primary_key=True),
    Column("role", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("base_model", Text, nullable=False),
    Column("dataset_version", Text),
    Column("meta_json", Text, nullable=False),
    Column("retired", Integer, nullable=False, server_default=text("0")),
    Column("created_at", Real, nullable=False),
    Index("adapters_role", "role", "created_at"),
)

t_conversations = Table(
    "conversations",
    metadata,
    Column("id", Text, primary_key=True),
    Column("user_id", Text, nullable=False),
    Column("title", Text, nullable=False, server_default=text("''")),
    Column("created_at", Real, nullable=False),
    Column("updated_at", Real, nullable=False),
    Column("deleted", Integer, nullable=False, server_default=text("0")),
    Index("conversations_user", "user_id", "updated_at"),
)

t_datasets = Table(
    "datasets",
    metadata,
    Column("version", Text, primary_key=True),
    Column("path", Text, nullable=False),
    Column("examples", Integer, nullable=False),
    Column("manifest_sha256", Text, nullable=False),
    Column("created_at", Real, nullable=False),
)

t_deployments = Table(
    "deployments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("role", Text, nullable=False),
    Column("version", Text),
    Column("previous", Text),
    Column("action", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("share", Real, nullable=False, server_default=text("1.0")),
    Column("window_s", Real, nullable=False, server_default=text("0")),
    Column("requests", Integer, nullable=False, server_default=text("0")),
    Column("reason", Text, nullable=False, server_default=text("''")),
    Column("summary_json", Text, nullable=False, server_default=text("'{}'")),
    Column("started_at", Real, nullable=False),
    Column("ended_at", Real),
    Index("deployments_state", "state", "role"),
    sqlite_autoincrement=True,
)

t_documents = Table(
    "documents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("path", Text, nullable=False, unique=True),
    Column("sha256", Text, nullable=False),
    Column("size", Integer, nullable=False),
    Column("chunks", Integer, nullable=False),
    Column("ingested_at", Real, nullable=False),
    Column("owner", Text),
)

t_examples = Table(
    "examples",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source", Text, nullable=False),
    Column("exchange_ids_json", Text, nullable=False),
    Column("messages_json", Text, nullable=False),
    Column("response", Text, nullable=False),
    Column("reasoning", Text),
    Column("quality", Real, nullable=False),
    Column("task_type", Text),
    Column("models_agreed", Integer),
    Column("user_feedback", Integer),
    Column("signals_json", Text, nullable=False, server_default=text("'{}'")),
    Column("content_hash", Text, nullable=False, unique=True),
    Column("vector", LargeBinary),
    Column("created_at", Real, nullable=False),
    Index("examples_quality", "quality"),
    sqlite_autoincrement=True,
)

t_fact_jobs = Table(
    "fact_jobs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("exchange_id", Text),
    Column("user_id", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("said_at", Real, nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("created_at", Real, nullable=False),
    sqlite_autoincrement=True,
)

t_facts = Table(
    "facts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("said_at", Real, nullable=False),
    Column("exchange_id", Text),
    Column("source", Text, nullable=False),
    Column("superseded_by", ForeignKey("facts.id", ondelete="SET NULL")),
    Column("superseded_at", Real),
    Column("created_at", Real, nullable=False),
    Column("vector", LargeBinary, nullable=False),
    Index("facts_user", "user_id", "superseded_at"),
    sqlite_autoincrement=True,
)

t_gauntlet_reports = Table(
    "gauntlet_reports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("role", Text, nullable=False),
    Column("champion", Text),
    Column("challenger", Text, nullable=False),
    Column("verdict", Text, nullable=False),
    Column("ratio", Real),
    Column("path", Text),
    Column("report_json", Text, nullable=False),
    Column("created_at", Real, nullable=False),
    sqlite_autoincrement=True,
)

t_heldout_traffic = Table(
    "heldout_traffic",
    metadata,
    Column("question_hash", Text, primary_key=True),
    Column("dataset_version", Text, nullable=False),
    Column("example_id", Integer),
    Column("question", Text, nullable=False),
    Column("messages_json", Text, nullable=False),
    Column("response", Text, nullable=False),
    Column("correction", Text),
    Column("source", Text, nullable=False),
    Column("task_type", Text),
    Column("created_at", Real, nullable=False),
)

t_holdout = Table(
    "holdout",
    metadata,
    Column("content_hash", Text, primary_key=True),
    Column("text", Text, nullable=False),
    Column("family", Text),
    Column("vector", LargeBinary),
    Column("created_at", Real, nullable=False),
)

t_key_requests = Table(
    "key_requests",
    metadata,
    Column("day", Text, primary_key=True),
    Column("user", Text, primary_key=True),
    Column("requests", Integer, nullable=False, server_default=text("0")),
    Column("rejected", Integer, nullable=False, server_default=text("0")),
)

t_key_usage = Table(
    "key_usage",
    metadata,
    Column("day", Text, primary_key=True),
    Column("user", Text, primary_key=True),
    Column("head", Text, primary_key=True),
    Column("calls", Integer, nullable=False, server_default=text("0")),
    Column("tokens_in", Integer, nullable=False, server_default=text("0")),
    Column("tokens_out", Integer, nullable=False, server_default=text("0")),
    Column("cost_usd", Real, nullable=False, server_default=text("0")),
)

t_limits_override = Table(
    "limits_override",
    metadata,
    Column("user", Text, primary_key=True),
    Column("rpm", Integer),
    Column("tokens_per_day", Integer),
    Column("usd_per_day", Real),
    Column("updated_at", Real, nullable=False),
)

t_runs = Table(
    "runs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("step", Text, nullable=False, server_default=text("''")),
    Column("progress", Real, nullable=False, server_default=text("0")),
    Column("params_json", Text, nullable=False, server_default=text("'{}'")),
    Column("steps_json", Text, nullable=False, server_default=text("'[]'")),
    Column("result_json", Text, nullable=False, server_default=text("'{}'")),
    Column("error", Text),
    Column("log_path", Text),
    Column("host", Text),
    Column("pid", Integer),
    Column("created_at", Real, nullable=False),
    Column("updated_at", Real, nullable=False),
    Column("finished_at", Real),
)

t_users = Table(
    "users",
    metadata,
    Column("name", Text, primary_key=True),
    Column("admin", Integer, nullable=False, server_default=text("0")),
    Column("created_at", Real, nullable=False),
    Column("revoked_at", Real),
)

t_adapter_aliases = Table(
    "adapter_aliases",
    metadata,
    Column("role", Text, primary_key=True),
    Column("alias", Text, primary_key=True),
    Column("version", ForeignKey("adapters.version")),
    Column("updated_at", Real, nullable=False),
)

t_api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_name", ForeignKey("users.name"), nullable=False),
    Column("sha256", Text, nullable=False, unique=True),
    Column("prefix", Text, nullable=False),
    Column("created_at", Real, nullable=False),
    Column("revoked_at", Real),
    Index("api_keys_user", "user_name"),
)

t_chunks = Table(
    "chunks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("document_id", ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("start", Integer, nullable=False),
    Column("end", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("vector", LargeBinary, nullable=False),
    Index("chunks_document", "document_id", "position"),
    sqlite_autoincrement=True,
)

t_exchanges = Table(
    "exchanges",
    metadata,
    Column("id", Text, primary_key=True),
    Column("conversation_id", ForeignKey("conversations.id")),
    Column("user_id", Text, nullable=False),
    Column("role", Text, nullable=False, server_default=text("'council'")),
    Column("created_at", Real, nullable=False),
    Column("prompt", Text, nullable=False),
    Column("messages_json", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("strategy", Text, nullable=False),
    Column("task_type", Text),
    Column("models_json", Text, nullable=False),
    Column("confidence", Real),
    Column("latency_ms", Real),
    Column("cost_usd", Real),
    Column("tokens_in", Integer),
    Column("tokens_out", Integer),
    Column("notes_json", Text, nullable=False, server_default=text("'[]'")),
    Column("recalled_json", Text, nullable=False, server_default=text("'[]'")),
    Column("success", Integer),
    Column("label_source", Text),
    Column("parent_id", ForeignKey("exchanges.id")),
    Column("improved", Integer, nullable=False, server_default=text("0")),
    Index("exchanges_conversation", "conversation_id", "created_at"),
    Index("exchanges_success", "success", "created_at"),
    Index("exchanges_time", "created_at"),
)

t_feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("exchange_id", ForeignKey("exchanges.id"), nullable=False),
    Column("rating", Integer, nullable=False),
    Column("comment", Text),
    Column("created_at", Real, nullable=False),
    Column("correction", Text),
    CheckConstraint("rating IN (-1, 1)"),
    Index("feedback_exchange", "exchange_id"),
)

t_harvests = Table(
    "harvests",
    metadata,
    Column("exchange_id", ForeignKey("exchanges.id"), primary_key=True),
    Column("status", Text, nullable=False),
    Column("rewrite_id", ForeignKey("exchanges.id")),
    Column("quality", Real, nullable=False),
    Column("signals_json", Text, nullable=False),
    Column("agent", Text, nullable=False),
    Column("harvested_at", Real, nullable=False),
)

t_memories = Table(
    "memories",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("text", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("user_id", Text, nullable=False),
    Column("session_id", Text),
    Column("exchange_id", ForeignKey("exchanges.id")),
    Column("success", Integer),
    Column("meta_json", Text, nullable=False, server_default=text("'{}'")),
    Column("created_at", Real, nullable=False),
    Column("vector", LargeBinary, nullable=False),
    Index("memories_exchange", "exchange_id"),
    Index("memories_user", "user_id", "created_at"),
    sqlite_autoincrement=True,
)

t_sessions = Table(
    "sessions",
    metadata,
    Column("sha256", Text, primary_key=True),
    Column("key_id", ForeignKey("api_keys.id"), nullable=False),
    Column("created_at", Real, nullable=False),
    Column("expires_at", Real, nullable=False),
)

t_votes = Table(
    "votes",
    metadata,
    Column("exchange_id", ForeignKey("exchanges.id"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("head", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("extracted", Text),
    Column("cluster", Integer),
    Column("weight", Real, nullable=False),
    Column("latency_ms", Real),
    Column("tokens_in", Integer),
    Column("tokens_out", Integer),
    Column("cost_usd", Real),
    Column("error", Text),
    Column("won", Integer, nullable=False),
    Column("logprob", Real),
)
