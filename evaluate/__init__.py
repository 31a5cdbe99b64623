"""Completion engine (Predictor) and evaluation (`python -m evaluate`); see docs/evaluation.md."""
from .predictor import Completion, Predictor, PredictorConfig

__all__ = ["Completion", "Predictor", "PredictorConfig"]
