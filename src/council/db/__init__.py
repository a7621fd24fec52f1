"""The store's schema (SQLAlchemy Core tables) and its migrations (Alembic), for SQLite and
Postgres; `engine.py` opens either from a URL, `upgrade.py` brings a database to the head."""
