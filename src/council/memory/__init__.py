"""Memory: the episodic store (SQLite, source of truth), vector recall and RAG."""
