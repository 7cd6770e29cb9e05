"""Models: torch ``nn.Module`` networks only (no files, no data loading)."""

from focuskit.models._blurcnn import BlurCNN, BlurCNNConfig
from focuskit.models._deepr import (
    DeepRConfig,
    DeepRDiscriminator,
    DeepRGenerator,
    DiscriminatorConfig,
    DPMDecoder,
)
from focuskit.models._fcfnn import FCFNN, FCFNNConfig

__all__ = [
    "FCFNN",
    "BlurCNN",
    "BlurCNNConfig",
    "DPMDecoder",
    "DeepRConfig",
    "DeepRDiscriminator",
    "DeepRGenerator",
    "DiscriminatorConfig",
    "FCFNNConfig",
]
