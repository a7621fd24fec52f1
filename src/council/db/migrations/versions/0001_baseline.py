"""baseline: the schema the ten SQLite migrations (m001..m010) had built, for both backends

Revision ID: 0001_baseline
Revises:
Create Date: 2026-11-29 08:18:13.686768

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# The timestamps' type: REAL on SQLite, double precision on Postgres (its REAL is 4 bytes).
REAL: sa.types.TypeEngine[float] = sa.REAL().with_variant(sa.DOUBLE_PRECISION(), "postgresql")
TABLES = [  # in creation order
    "adapters", "conversations", "datasets", "deployments", "documents", "examples",
    "fact_jobs", "facts", "gauntlet_reports", "heldout_traffic", "holdout", "key_requests",
    "key_usage", "limits_override", "runs", "users", "adapter_aliases", "api_keys", "chunks",
    "exchanges", "feedback", "harvests", "memories", "sessions", "votes"
]  # fmt: skip

# revision identifiers, used by Alembic.
revision: str = "0001_baseline"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "adapters",
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("base_model", sa.Text(), nullable=False),
        sa.Column("dataset_version", sa.Text(), nullable=True),
        sa.Column("meta_json", sa.Text(), nullable=False),
        sa.Column("retired", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", REAL, nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_index("adapters_role", "adapters", ["role", "created_at"])
    op.create_table(
        "conversations",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), server_default=sa.text("('')"), nullable=False),
        sa.Column("created_at", REAL, nullable=False),
        sa.Column("updated_at", REAL, nullable=False),
        sa.Column("deleted", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("conversations_user", "conversations", ["user_id", "updated_at"])
    op.create_table(
        "datasets",
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("examples", sa.Integer(), nullable=False),
        sa.Column("manifest_sha256", sa.Text(), nullable=False),
        sa.Column("created_at", REAL, nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("version", sa.Text(), nullable=True),
        sa.Column("previous", sa.Text(), nullable=True),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column(
            "share",
            REAL,
            server_default=sa.text("(1.0)"),
            nullable=False,
        ),
        sa.Column("window_s", REAL, server_default=sa.text("0"), nullable=False),
        sa.Column("requests", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("reason", sa.Text(), server_default=sa.text("('')"), nullable=False),
        sa.Column("summary_json", sa.Text(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("started_at", REAL, nullable=False),
        sa.Column("ended_at", REAL, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("deployments_state", "deployments", ["state", "role"])
    op.create_table(
        "documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("ingested_at", REAL, nullable=False),
        sa.Column("owner", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("path"),
    )
    op.create_table(
        "examples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("exchange_ids_json", sa.Text(), nullable=False),
        sa.Column("messages_json", sa.Text(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("reasoning", sa.Text(), nullable=True),
        sa.Column("quality", REAL, nullable=False),
        sa.Column("task_type", sa.Text(), nullable=True),
        sa.Column("models_agreed", sa.Integer(), nullable=True),
        sa.Column("user_feedback", sa.Integer(), nullable=True),
        sa.Column("signals_json", sa.Text(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("content_hash", sa.Text(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", REAL, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("content_hash"),
        sqlite_autoincrement=True,
    )
    op.create_index("examples_quality", "examples", ["quality"])
    op.create_table(
        "fact_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("exchange_id", sa.Text(), nullable=True),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("said_at", REAL, nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", REAL, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "facts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("said_at", REAL, nullable=False),
        sa.Column("exchange_id", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("superseded_by", sa.Integer(), nullable=True),
        sa.Column("superseded_at", REAL, nullable=True),
        sa.Column("created_at", REAL, nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["superseded_by"], ["facts.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("facts_user", "facts", ["user_id", "superseded_at"])
    op.create_table(
        "gauntlet_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("champion", sa.Text(), nullable=True),
        sa.Column("challenger", sa.Text(), nullable=False),
        sa.Column("verdict", sa.Text(), nullable=False),
        sa.Column("ratio", REAL, nullable=True),
        sa.Column("path", sa.Text(), nullable=True),
        sa.Column("report_json", sa.Text(), nullable=False),
        sa.Column("created_at", REAL, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "heldout_traffic",
        sa.Column("question_hash", sa.Text(), nullable=False),
        sa.Column("dataset_version", sa.Text(), nullable=False),
        sa.Column("example_id", sa.Integer(), nullable=True),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("messages_json", sa.Text(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("correction", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("task_type", sa.Text(), nullable=True),
        sa.Column("created_at", REAL, nullable=False),
        sa.PrimaryKeyConstraint("question_hash"),
    )
    op.create_table(
        "holdout",
        sa.Column("content_hash", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("family", sa.Text(), nullable=True),
        sa.Column("vector", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", REAL, nullable=False),
        sa.PrimaryKeyConstraint("content_hash"),
    )
    op.create_table(
        "key_requests",
        sa.Column("day", sa.Text(), nullable=False),
        sa.Column("user", sa.Text(), nullable=False),
        sa.Column("requests", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("rejected", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("day", "user"),
    )
    op.create_table(
        "key_usage",
        sa.Column("day", sa.Text(), nullable=False),
        sa.Column("user", sa.Text(), nullable=False),
        sa.Column("head", sa.Text(), nullable=False),
        sa.Column("calls", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("tokens_in", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("tokens_out", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("cost_usd", REAL, server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("day", "user", "head"),
    )
    op.create_table(
        "limits_override",
        sa.Column("user", sa.Text(), nullable=False),
        sa.Column("rpm", sa.Integer(), nullable=True),
        sa.Column("tokens_per_day", sa.Integer(), nullable=True),
        sa.Column("usd_per_day", REAL, nullable=True),
        sa.Column("updated_at", REAL, nullable=False),
        sa.PrimaryKeyConstraint("user"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("step", sa.Text(), server_default=sa.text("('')"), nullable=False),
        sa.Column("progress", REAL, server_default=sa.text("0"), nullable=False),
        sa.Column("params_json", sa.Text(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("steps_json", sa.Text(), server_default=sa.text("'[]'"), nullable=False),
        sa.Column("result_json", sa.Text(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("log_path", sa.Text(), nullable=True),
        sa.Column("host", sa.Text(), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("created_at", REAL, nullable=False),
        sa.Column("updated_at", REAL, nullable=False),
        sa.Column("finished_at", REAL, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "users",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("admin", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", REAL, nullable=False),
        sa.Column("revoked_at", REAL, nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "adapter_aliases",
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("alias", sa.Text(), nullable=False),
        sa.Column("version", sa.Text(), nullable=True),
        sa.Column("updated_at", REAL, nullable=False),
        sa.ForeignKeyConstraint(["version"], ["adapters.version"]),
        sa.PrimaryKeyConstraint("role", "alias"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_name", sa.Text(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("created_at", REAL, nullable=False),
        sa.Column("revoked_at", REAL, nullable=True),
        sa.ForeignKeyConstraint(["user_name"], ["users.name"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sha256"),
    )
    op.create_index("api_keys_user", "api_keys", ["user_name"])
    op.create_table(
        "chunks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("start", sa.Integer(), nullable=False),
        sa.Column("end", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("chunks_document", "chunks", ["document_id", "position"])
    op.create_table(
        "exchanges",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("conversation_id", sa.Text(), nullable=True),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), server_default=sa.text("'council'"), nullable=False),
        sa.Column("created_at", REAL, nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("messages_json", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("strategy", sa.Text(), nullable=False),
        sa.Column("task_type", sa.Text(), nullable=True),
        sa.Column("models_json", sa.Text(), nullable=False),
        sa.Column("confidence", REAL, nullable=True),
        sa.Column("latency_ms", REAL, nullable=True),
        sa.Column("cost_usd", REAL, nullable=True),
        sa.Column("tokens_in", sa.Integer(), nullable=True),
        sa.Column("tokens_out", sa.Integer(), nullable=True),
        sa.Column("notes_json", sa.Text(), server_default=sa.text("'[]'"), nullable=False),
        sa.Column("recalled_json", sa.Text(), server_default=sa.text("'[]'"), nullable=False),
        sa.Column("success", sa.Integer(), nullable=True),
        sa.Column("label_source", sa.Text(), nullable=True),
        sa.Column("parent_id", sa.Text(), nullable=True),
        sa.Column("improved", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"]),
        sa.ForeignKeyConstraint(["parent_id"], ["exchanges.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("exchanges_conversation", "exchanges", ["conversation_id", "created_at"])
    op.create_index("exchanges_success", "exchanges", ["success", "created_at"])
    op.create_index("exchanges_time", "exchanges", ["created_at"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("exchange_id", sa.Text(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", REAL, nullable=False),
        sa.Column("correction", sa.Text(), nullable=True),
        sa.CheckConstraint("rating IN (-1, 1)"),
        sa.ForeignKeyConstraint(["exchange_id"], ["exchanges.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("feedback_exchange", "feedback", ["exchange_id"])
    op.create_table(
        "harvests",
        sa.Column("exchange_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("rewrite_id", sa.Text(), nullable=True),
        sa.Column("quality", REAL, nullable=False),
        sa.Column("signals_json", sa.Text(), nullable=False),
        sa.Column("agent", sa.Text(), nullable=False),
        sa.Column("harvested_at", REAL, nullable=False),
        sa.ForeignKeyConstraint(["exchange_id"], ["exchanges.id"]),
        sa.ForeignKeyConstraint(["rewrite_id"], ["exchanges.id"]),
        sa.PrimaryKeyConstraint("exchange_id"),
    )
    op.create_table(
        "memories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("session_id", sa.Text(), nullable=True),
        sa.Column("exchange_id", sa.Text(), nullable=True),
        sa.Column("success", sa.Integer(), nullable=True),
        sa.Column("meta_json", sa.Text(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("created_at", REAL, nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["exchange_id"], ["exchanges.id"]),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("memories_exchange", "memories", ["exchange_id"])
    op.create_index("memories_user", "memories", ["user_id", "created_at"])
    op.create_table(
        "sessions",
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("created_at", REAL, nullable=False),
        sa.Column("expires_at", REAL, nullable=False),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"]),
        sa.PrimaryKeyConstraint("sha256"),
    )
    op.create_table(
        "votes",
        sa.Column("exchange_id", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("head", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("extracted", sa.Text(), nullable=True),
        sa.Column("cluster", sa.Integer(), nullable=True),
        sa.Column("weight", REAL, nullable=False),
        sa.Column("latency_ms", REAL, nullable=True),
        sa.Column("tokens_in", sa.Integer(), nullable=True),
        sa.Column("tokens_out", sa.Integer(), nullable=True),
        sa.Column("cost_usd", REAL, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("won", sa.Integer(), nullable=False),
        sa.Column("logprob", REAL, nullable=True),
        sa.ForeignKeyConstraint(["exchange_id"], ["exchanges.id"]),
        sa.PrimaryKeyConstraint("exchange_id", "position"),
    )


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)  # its indexes go with it
