"""Self-improvement: harvest failures, rewrite them, gate, and freeze datasets."""
