"""The viewpoint generator G of ViewCLR (§3.2.2, implementation details): the NPL over the temporal slices of
fg1(x″), plus the auto-encoder that squeezes the world representation F_W into the d_low = 128 code Queue2 holds.

G's output has the shape of its input, so it can be mixed with f1(x) (eq. 8). The auto-encoder pools F_W over
time and flattens it (F_inter, (c + 3)·m·n values), maps it to d_low with one MLP and back with another; the
reconstruction loss L_R compares the two ends, and the (L2-normalised) code F_W,inter enters L3D (eq. 10).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from viewclr.models.npl import NeuralProjection, ProjectionOutput

if TYPE_CHECKING:
    from viewclr.config import ModelConfig


class WorldAutoEncoder(nn.Module):
    """F_inter [B, D] → code [B, d_low] → reconstruction [B, D] (two MLPs; `hidden` adds a layer to each)."""

    def __init__(self, in_dim: int, low_dim: int = 128, hidden: int | None = None):
        super().__init__()

        def mlp(a: int, b: int) -> nn.Module:
            if hidden is None:
                return nn.Linear(a, b)
            return nn.Sequential(nn.Linear(a, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, b))

        self.encoder = mlp(in_dim, low_dim)
        self.decoder = mlp(low_dim, in_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        code = self.encoder(x)
        return code, self.decoder(code)


@dataclass
class GeneratorOutput:
    view: torch.Tensor  # G(fg1(x)): [B, c, T, m, n]
    world: torch.Tensor  # F_W: [B, c + 3, T, m, n]
    rotation: torch.Tensor  # [B, T, 3, 3]
    translation: torch.Tensor  # [B, T, 3]
    inter: torch.Tensor | None  # F_inter: F_W pooled over time, flattened [B, (c + 3)·m·n]
    code: torch.Tensor | None  # F_W,inter: the auto-encoder's L2-normalised code [B, d_low] (eq. 10)
    reconstruction: torch.Tensor | None  # [B, (c + 3)·m·n]


class ViewpointGenerator(nn.Module):
    """G: a feature map [B, c, T, m, n] (f1's output shape) → the same features seen from a learned viewpoint."""

    def __init__(
        self,
        channels: int,
        height: int,
        width: int,
        *,
        hidden: int = 64,
        low_dim: int = 128,
        autoencoder: bool = True,
        autoencoder_hidden: int | None = None,
        depth: float = 2.0,
    ):
        super().__init__()
        self.projection = NeuralProjection(channels, height, width, hidden=hidden, depth=depth)
        world_dim = (channels + 3) * height * width
        self.autoencoder = WorldAutoEncoder(world_dim, low_dim, autoencoder_hidden) if autoencoder else None

    @classmethod
    def from_config(cls, model: ModelConfig, shape: tuple[int, int, int, int], autoencoder: bool = True):
        """G for f1 outputs of `shape` = (c, T, m, n) (see `models.split_shape`), sized by the `model` config."""
        channels, _, height, width = shape
        return cls(
            channels,
            height,
            width,
            hidden=model.npl_hidden,
            low_dim=model.low_dim,
            autoencoder=autoencoder,
            autoencoder_hidden=model.autoencoder_hidden,
            depth=model.npl_depth,
        )

    def forward(self, features: torch.Tensor) -> GeneratorOutput:
        out: ProjectionOutput = self.projection(features)
        inter = code = reconstruction = None
        if self.autoencoder is not None:
            inter = out.world.mean(dim=2).flatten(1)
            raw_code, reconstruction = self.autoencoder(inter)
            code = F.normalize(raw_code, dim=1)
        return GeneratorOutput(out.view, out.world, out.rotation, out.translation, inter, code, reconstruction)
