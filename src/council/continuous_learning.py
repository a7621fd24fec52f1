"""The seed's import path: `from council.continuous_learning import get_learner, ...`."""

from council.compat import KnowledgeDistillation, Learner, get_learner

__all__ = ["KnowledgeDistillation", "Learner", "get_learner"]
