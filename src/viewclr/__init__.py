"""ViewCLR: self-supervised video representation learning that generalises to unseen camera viewpoints."""

__version__ = "0.1.0"

from viewclr import synth as _synth  # noqa: E402, F401 — registers the synthetic benchmark's dataset
from viewclr.models.weights import pretrained_encoder as load_encoder  # noqa: E402 — viewclr.load_encoder(path)

__all__ = ["load_encoder"]
