"""MoCo (He et al. 2020), ViewCLR's stage 1 and its InfoNCE baseline: a query encoder, a momentum encoder, a queue.

Reads top to bottom like MoCo's builder.py: momentum update, keys through shuffle-BN, InfoNCE against the queue,
enqueue."""

from __future__ import annotations

import copy

import torch
from torch import nn

from viewclr.checkpoint import shape_mismatch
from viewclr.errors import ConfigError
from viewclr.methods.distributed import gather, shuffled_forward, split_batchnorm
from viewclr.methods.losses import accuracy, infonce, instance_accuracy
from viewclr.methods.queue import FeatureQueue
from viewclr.models.heads import ProjectionHead
from viewclr.runtime import rank, step_generator, world_size


class Encoder(nn.Module):
    """f = backbone → global pooling → projection head (L2-normalised embedding)."""

    def __init__(self, backbone: nn.Module, proj_dim: int = 128, proj_hidden: int | None = None):
        super().__init__()
        self.backbone = backbone
        self.head = ProjectionHead(backbone.out_channels, proj_dim, proj_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def embed_split(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """From f1's output: (pooled features f(x), embedding)."""
        pooled = self.backbone.pool(self.backbone.f2(h))
        return pooled, self.head(pooled)


class MoCo(nn.Module):
    num_views = 2

    def __init__(self, backbone: nn.Module, cfg, proj_dim: int = 128, proj_hidden: int | None = None, seed: int = 0):
        super().__init__()
        self.cfg, self.seed = cfg, seed
        self.encoder = Encoder(backbone, proj_dim, proj_hidden)
        # one device: emulate shuffle-BN's per-GPU statistics with sub-batches
        self.bn_splits = cfg.bn_splits if world_size() == 1 else 1
        split_batchnorm(self.encoder, self.bn_splits)
        self.momentum_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        self.queue = FeatureQueue(cfg.queue_size, proj_dim, seed)
        self.total_steps: int | None = None  # the stage's length, for schedules inside the method (set_schedule)

    def set_schedule(self, total_steps: int) -> None:
        """The number of steps the stage trains (ViewCLR's reversal ramp is a function of step / total_steps)."""
        self.total_steps = total_steps

    def trainable(self) -> list[tuple[str, nn.Parameter]]:
        """What the optimiser steps, by name, in the order Adam indexes its state: the query encoder and head."""
        return [(f"encoder.{name}", p) for name, p in self.encoder.named_parameters()]

    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """(follower, leader): the momentum encoder follows the query encoder."""
        return [(self.momentum_encoder, self.encoder)]

    def start_from(self, state: dict) -> None:
        """Start a stage from another stage's weights (a MoCo state: encoder, momentum encoder, Queue1)."""
        mismatch = shape_mismatch(state, self.state_dict())
        if mismatch is not None:
            raise ConfigError(
                None, f"the starting weights do not fit this model: {mismatch[1]} ({_settings_of(mismatch[0])}?)"
            )
        result = self.load_state_dict(state, strict=False)
        if result.unexpected_keys:
            extra = result.unexpected_keys[0]
            raise ConfigError(
                None, f"the starting weights do not fit this model: it has no {extra} ({_settings_of(extra)}?)"
            )

    @torch.no_grad()
    def momentum_update(self) -> None:
        m = self.cfg.momentum
        for follower, leader in self.momentum_pairs():
            for key_param, param in zip(follower.parameters(), leader.parameters(), strict=True):
                key_param.mul_(m).add_(param.detach(), alpha=1 - m)

    @torch.no_grad()
    def keys(self, x_key: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        self.momentum_update()
        return shuffled_forward(self.momentum_encoder, x_key, generator, self.bn_splits)

    def own_video(self, ids: torch.Tensor | None) -> torch.Tensor | None:
        """[B, K] bool: the queue slots holding an older key of each clip's own video (None: nothing excluded)."""
        if ids is None or not self.cfg.exclude_own_video:
            return None
        return self.queue.same_video(ids)

    def forward(self, clips: torch.Tensor, step: int, ids: torch.Tensor | None = None) -> dict:
        """clips [B, 2, 3, T, H, W] (query, key views), ids [B] (the videos' dataset indices) →
        {"loss", "terms", "metrics"}."""
        generator = step_generator(self.seed, step)
        query = self.encoder(clips[:, 0])
        key = self.keys(clips[:, 1], generator)
        queue, exclude = self.queue.features.clone(), self.own_video(ids)
        keys = gather(key)
        own = torch.arange(len(query), device=query.device) + rank() * len(query)
        loss, logits = infonce(query, key, queue, self.cfg.tau, exclude)  # eq. 5: the positive against Queue1
        target = torch.zeros(len(query), dtype=torch.long, device=query.device)
        if torch.isfinite(keys).all():  # a diverged step must not poison the queue (the same test on every rank)
            self.queue.push(keys, gathered=True, ids=None if ids is None else gather(ids))
        metrics = {"pretext_acc": accuracy(logits, target), "instance_acc": instance_accuracy(query, keys, own)}
        return {"loss": loss, "terms": {"infonce": loss}, "metrics": metrics}


def _settings_of(key: str) -> str:
    """The settings that shape the tensor `key` of a method's state, for an error that says what to change."""
    if key.startswith(("generator.", "fg1.", "fg2.", "codes.")):
        return "model.npl_hidden, model.low_dim, model.autoencoder_hidden, model.world, method.use_l3d, method.use_adv"
    if ".head." in key:
        return "model.proj_dim, model.proj_hidden"
    if key.startswith("queue."):
        return "method.queue_size, model.proj_dim"
    return "model.backbone, model.width"
