"""The seed's Python API (seed 003), kept in one place over today's Council and collector.

    from council.model_ensemble import get_ensemble, EnsembleStrategy
    result = await get_ensemble().ensemble_query(messages, strategy=EnsembleStrategy.BEST_OF_N,
                                                 num_models=3, task_type="reasoning")
    result["answer"], result["confidence"], result["total_cost"]

    from council.continuous_learning import KnowledgeDistillation, get_learner
    learner = get_learner()
    learner.collect_example(messages, response, quality_score=0.92, task_type="reasoning")

`council.model_ensemble` and `council.continuous_learning` (the seed's import paths) re-export
from here; new code uses Council and learning/collector.py directly.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from council.config import Settings, load_settings
from council.council import Council
from council.learning.collector import KnowledgeDistillation, Learner


class EnsembleStrategy(StrEnum):
    VOTE = "vote"
    BEST_OF_N = "best_of_n"
    WEIGHTED = "weighted"
    CONSENSUS = "consensus"
    SPECIALIZATION = "specialization"
    RANK = "rank"
    MOA = "moa"
    DEBATE = "debate"
    CLONE_DISPATCH = "clone_dispatch"
    AUTO = "auto"


class ModelEnsemble:
    def __init__(self, council: Council):
        self.council = council

    async def ensemble_query(
        self,
        messages: list[dict[str, Any]] | str,
        strategy: EnsembleStrategy | str = EnsembleStrategy.VOTE,
        num_models: int | None = None,
        task_type: str | None = None,
    ) -> dict[str, Any]:
        """Ask the council; the verdict as a dict (answer, votes, confidence, total_cost, ...)."""
        verdict = await self.council.ask(
            messages, strategy=str(strategy), num_models=num_models, task_type=task_type
        )
        return verdict.to_dict()


_ensemble: ModelEnsemble | None = None


def get_ensemble(settings: Settings | None = None) -> ModelEnsemble:
    """The process-wide ensemble (built on first use from settings)."""
    global _ensemble
    if _ensemble is None or settings is not None:
        _ensemble = ModelEnsemble(Council(settings or load_settings()))
    return _ensemble


_learner: Learner | None = None


def get_learner(settings: Settings | None = None) -> Learner:
    """The process-wide learner (built on first use from settings)."""
    global _learner
    if _learner is None or settings is not None:
        _learner = Learner(settings or load_settings())
    return _learner


__all__ = [
    "EnsembleStrategy",
    "KnowledgeDistillation",
    "Learner",
    "ModelEnsemble",
    "get_ensemble",
    "get_learner",
]
