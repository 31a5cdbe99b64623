"""Language models for code completion; the interface is `models.base.LanguageModel` (docs/DESIGN.md)."""
from .base import LanguageModel, map_state
from .config import ARCHS, ModelConfig
from .highway import HighwayModel
from .lstm import LstmModel
from .transformer import TransformerModel
from .transformer_xl import TransformerXLModel

MODELS = {
    "lstm": LstmModel,
    "highway": HighwayModel,
    "transformer": TransformerModel,
    "transformer_xl": TransformerXLModel,
}


def build_model(config: ModelConfig) -> LanguageModel:
    """A freshly initialised model for `config.arch`."""
    return MODELS[config.arch](config)


__all__ = ["ARCHS", "LanguageModel", "map_state", "ModelConfig", "build_model", "LstmModel", "HighwayModel",
           "TransformerModel", "TransformerXLModel", "MODELS"]
