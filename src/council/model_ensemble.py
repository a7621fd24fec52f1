"""The seed's import path: `from council.model_ensemble import get_ensemble, EnsembleStrategy`."""

from council.compat import EnsembleStrategy, ModelEnsemble, get_ensemble

__all__ = ["EnsembleStrategy", "ModelEnsemble", "get_ensemble"]
