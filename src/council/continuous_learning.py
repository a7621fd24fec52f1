"""The seed's import path: `from council.continuous_learning import get_learner, ...`."""

from council.learning.collector import KnowledgeDistillation, Learner, get_learner

__all__ = ["KnowledgeDistillation", "Learner", "get_learner"]
