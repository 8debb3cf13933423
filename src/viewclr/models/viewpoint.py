"""The viewpoint generator G of ViewCLR (§3.2.2, implementation details): the NPL over the temporal slices of
fg1(x″), plus the auto-encoder that squeezes the world representation F_W into the d_low = 128 code Queue2 holds.

G's output has the shape of its input, so it can be mixed with f1(x) (eq. 8). The auto-encoder pools F_W over
time and flattens it (F_inter), maps it to d_low with one MLP and back with another; the reconstruction loss L_R
compares the two ends, and the (L2-normalised) code F_W,inter enters L3D (eq. 10).

The auto-encoder is a memory device (§3.2.2: it squeezes F_W so that Queue2 can hold it), so the two losses
reach different parts:
- L_R trains the auto-encoder alone: it reconstructs F_inter from a detached copy, so no gradient of L_R reaches
  G or fg1;
- L3D shapes the world representation (G, and fg1 through it) and never the auto-encoder: its code is computed
  with the encoder's weights detached, so L3D's gradient passes *through* the compressor to F_W without updating
  it. Were the auto-encoder trained by L3D it could meet it alone — its encoder's bias dominates the code, the
  L2 normalisation makes the code constant, the decoder absorbs the bias, and every video's code becomes every
  other's (tests/test_stage2_wiring.py reproduces the collapse).
- Nor can G and fg1 meet L3D by making every video's code the same: the code is standardised per dimension over
  the videos of its batch (each BatchNorm sub-batch, i.e. each GPU, on its own) before the L2 normalisation, with
  the gradient through the batch's statistics, so a component all videos share is removed whatever G does. A
  running standardisation of F_inter alone is not enough: G and fg1 run ahead of its statistics and grow such a
  component (docs/method.md gives the measurement; tests/test_stage2_wiring.py keeps the experiment).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from viewclr.models.npl import NeuralProjection, ProjectionOutput

if TYPE_CHECKING:
    from viewclr.config import ModelConfig


class RunningStandardise(nn.Module):
    """x [B, D] → (x − μ) / σ per feature, with μ and σ² running averages over training batches (a cumulative
    average over the first 1/momentum batches, then an exponential one); no parameters, and the same map for
    every sample of a step, so that codes of different steps in Queue2 stay comparable."""

    def __init__(self, dim: int, momentum: float = 0.05, eps: float = 1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                self.count += 1
                factor = max(self.momentum, 1.0 / float(self.count))
                mean, var = self.batch_moments(x.to(self.mean.dtype))
                self.mean.lerp_(mean, factor)
                self.var.lerp_(var, factor)
        return (x - self.mean) * torch.rsqrt(self.var + self.eps)

    @staticmethod
    def batch_moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and (biased) variance over the global batch: every process's samples, so that W processes of B
        move the statistics exactly as one process of W·B does."""
        moments = torch.stack([x.sum(0), (x * x).sum(0), torch.full_like(x[0], len(x))])
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(moments)
        mean = moments[0] / moments[2]
        return mean, (moments[1] / moments[2] - mean * mean).clamp_min(0)


def standardise_groups(x: torch.Tensor, groups: int, eps: float = 1e-5) -> torch.Tensor:
    """x [B, D] → each of `groups` contiguous sub-batches standardised per feature by its own mean and (biased)
    variance, with the gradient through them: what every sample of a sub-batch shares is gone. Computed in float32
    at least (under fp16 autocast the gradient through a small sub-batch's variance overflows)."""
    parts = x.to(torch.promote_types(x.dtype, torch.float32)).view(groups, len(x) // groups, -1)
    mean = parts.mean(dim=1, keepdim=True)
    var = parts.var(dim=1, unbiased=False, keepdim=True)
    return ((parts - mean) * torch.rsqrt(var + eps)).view_as(x)


class WorldAutoEncoder(nn.Module):
    """F_inter [B, D] → code [B, d_low] → reconstruction [B, D] (two MLPs; `hidden` adds a layer to each).

    F_inter is standardised first (`RunningStandardise`): the features of F_W are ReLU outputs with a large mean
    shared by every video, and a compressor of the raw F_inter spends its code on that mean — after the L2
    normalisation every video's code would be nearly the same (docs/method.md), and eq. 9's neighbour would name a
    code no different from any other."""

    def __init__(self, in_dim: int, low_dim: int = 128, hidden: int | None = None):
        super().__init__()
        self.standardise = RunningStandardise(in_dim)

        def mlp(a: int, b: int) -> nn.Module:
            if hidden is None:
                return nn.Linear(a, b)
            return nn.Sequential(nn.Linear(a, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, b))

        self.encoder = mlp(in_dim, low_dim)
        self.decoder = mlp(low_dim, in_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Standardised F_inter → (code, reconstruction), both ends trainable (for direct use)."""
        code = self.encoder(x)
        return code, self.decoder(code)

    def reconstruct(self, inter: torch.Tensor) -> torch.Tensor:
        """L_R's side: the reconstruction of a detached standardised F_inter (trains the auto-encoder, nothing
        before it)."""
        return self.forward(inter.detach())[1]

    def code_through(self, inter: torch.Tensor) -> torch.Tensor:
        """L3D's side: the code of a standardised F_inter with the encoder's weights detached (the gradient reaches
        F_inter, not the auto-encoder)."""
        frozen = {name: p.detach() for name, p in self.encoder.named_parameters()}
        return functional_call(self.encoder, frozen, (inter,))


@dataclass
class GeneratorOutput:
    view: torch.Tensor  # G(fg1(x)): [B, c, T, m, n]
    world: torch.Tensor | None  # F_W: [B, c + 3, T, m, n] (points) or [B, c′ + 3, T, D, D, D] (voxels); None
    # without the auto-encoder (−L3D), which is all that reads it
    rotation: torch.Tensor  # [B, T, 3, 3] the per-slice pose R
    translation: torch.Tensor  # [B, T, 3]
    inter: torch.Tensor | None  # F_inter: F_W pooled over time, flattened [B, world_dim], standardised
    # F_W,inter: the code [B, d_low] of eq. 10, through the frozen compressor, standardised over its sub-batch and
    # L2-normalised
    code: torch.Tensor | None
    reconstruction: torch.Tensor | None  # [B, world_dim], from a detached F_inter


class ViewpointGenerator(nn.Module):
    """The viewpoint generator G (§3.2.2): f1's feature map seen from a learned viewpoint, through the Neural
    Projection Layer, and (with the auto-encoder) the world code L3D compares across videos.

    Args:
        channels, height, width: c, m, n of the feature maps it takes (f1's output; `from_config` reads them
            from `models.split_shape`).
        hidden: the NPL's coordinate network width (model.npl_hidden).
        low_dim: d_low, the world code's size (model.low_dim, 128 in the paper).
        autoencoder: build the world auto-encoder (False for Table 1's −L3D, which has no use for F_W).
        autoencoder_hidden: a hidden layer in each half of the auto-encoder (None: one linear layer each).
        depth: the scene centre's distance from the lifting camera, in the NPL's units.
        world: "points" (F_W on the feature grid) or "voxels" (eq. 1 read literally: a D³ grid).
        voxel_size, voxel_channels: D and c′ of the voxel world.

    Shapes: `forward(features [B, c, T, m, n], groups)` → `GeneratorOutput`: view [B, c, T, m, n]; world F_W;
    rotation [B, T, 3, 3]; translation [B, T, 3]; inter [B, world_dim], code [B, d_low] and reconstruction
    [B, world_dim] (None without the auto-encoder).
    """

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
        world: str = "points",
        voxel_size: int = 8,
        voxel_channels: int = 32,
    ):
        super().__init__()
        self.projection = NeuralProjection(
            channels,
            height,
            width,
            hidden=hidden,
            depth=depth,
            world=world,
            voxel_size=voxel_size,
            voxel_channels=voxel_channels,
        )
        world_dim = 1
        for size in self.projection.world_shape:
            world_dim *= size
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
            world=model.world,
            voxel_size=model.voxel_size,
            voxel_channels=model.voxel_channels,
        )

    def view(self, features: torch.Tensor) -> torch.Tensor:
        """G(features) alone, without F_W or the auto-encoder."""
        return self.projection(features, with_world=False).view

    def forward(self, features: torch.Tensor, groups: int = 1) -> GeneratorOutput:
        """G(features) with F_W and, with the auto-encoder, F_inter, the code of eq. 10 and L_R's reconstruction.

        Args:
            features: [B, c, T, m, n], fg1(x″).
            groups: the sub-batches (BatchNorm's, one per emulated GPU) the codes are standardised over; B must
                be a multiple of it.

        Returns:
            GeneratorOutput (shapes in the class docstring).
        """
        out: ProjectionOutput = self.projection(features, with_world=self.autoencoder is not None)
        inter = code = reconstruction = None
        if self.autoencoder is not None:
            inter = self.autoencoder.standardise(out.world.mean(dim=2).flatten(1))
            code = F.normalize(standardise_groups(self.autoencoder.code_through(inter), groups), dim=1)
            reconstruction = self.autoencoder.reconstruct(inter)
        return GeneratorOutput(out.view, out.world, out.rotation, out.translation, inter, code, reconstruction)
