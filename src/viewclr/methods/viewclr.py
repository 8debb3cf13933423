"""ViewCLR (stage 2): MoCo plus a third stream whose features are seen from a learned viewpoint.

The three clips of a video are x (query), x′ (key) and x″ (third stream). Read top to bottom:

1. keys k = f_k(x′) from the momentum encoder, through shuffle-BN (as MoCo);
2. the clean stream h = f1(x), f(x) = head(f2(h)) without gradient: it picks the nearest key in Queue1 (eq. 9),
   is the adversary's reference (eq. 11), and is the pass that moves f2's BatchNorm statistics — the clean input
   is what evaluation sees;
3. the third stream g = fg1(x″) goes through the viewpoint generator G (NPL, §3.2.2);
4. mixing in feature space (eq. 8, i-Mix): mᵢ = λᵢ·hᵢ + (1−λᵢ)·G(g)_{r(i)}, q = head(f2(m)), logits over
   [every key of the batch; Queue1], soft target λ on i and 1−λ on r(i) (eq. 6–7); f2's statistics stay put;
5. L3D (eq. 9–10): the world code F_W,inter(x″) against the code Queue2 holds for f(x)'s nearest key in Queue1,
   searched only among slots whose code has been written; L3D shapes F_W (G, and fg1 through it), never the
   auto-encoder, which L_R (its reconstruction) trains alone;
6. L_adv (eq. 11): d = ‖fg2(G(fg1(x″))) − f(x)‖: fg2 minimises d, G's parameters θ_g maximise it through the
   gradient reversal layer, and nothing else hears of it — G runs a second time on a detached fg1(x″), so the
   reversed gradient stops at θ_g and never reaches fg1 or the encoder;
7. enqueue k in Queue1 and the codes in Queue2, together: slot j of both is one video (aligned at stage 2's start
   by `align_queues`, since Queue1 arrives from stage 1 with its pointer).

Loss = L_mix + w_3d·L3D + w_adv·L_adv + w_rec·L_R. Ablations (Table 1): `use_l3d`, `use_adv`, `use_generator`.
tests/test_stage2_wiring.py holds the table of which parameters each term reaches, with which sign; `monitors`
computes what a step logs beside its losses.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from viewclr.methods.distributed import frozen_statistics, gather, local_slice, split_batchnorm
from viewclr.methods.losses import (
    accuracy,
    adversarial_distance,
    instance_accuracy,
    mixed_accuracy,
    mixed_infonce,
    nearest_neighbour,
    reconstruction_loss,
    world_3d_loss,
)
from viewclr.methods.moco import MoCo
from viewclr.methods.queue import FeatureQueue
from viewclr.models.heads import reverse_gradient
from viewclr.models.npl import rotation_angle, view_change
from viewclr.models.viewpoint import ViewpointGenerator
from viewclr.runtime import rank, step_generator, world_size


class ViewCLR(MoCo):
    num_views = 3

    def __init__(self, backbone: nn.Module, cfg, model_cfg, split_shape: tuple[int, int, int, int], seed: int = 0):
        super().__init__(backbone, cfg, model_cfg.proj_dim, model_cfg.proj_hidden, seed)
        # the third stream: fg1 (and fg2 for the adversary) start as copies of f1 and f2
        self.fg1 = split_batchnorm(copy.deepcopy(backbone.f1_layers()), self.bn_splits)
        self.generator = None
        if cfg.use_generator:
            self.generator = ViewpointGenerator.from_config(model_cfg, split_shape, autoencoder=cfg.use_l3d)
            split_batchnorm(self.generator, self.bn_splits)
        self.fg2 = split_batchnorm(copy.deepcopy(backbone.f2_layers()), self.bn_splits) if cfg.use_adv else None
        self.codes = FeatureQueue(cfg.queue_size, model_cfg.low_dim, seed + 1) if cfg.use_l3d else None

    def trainable(self) -> list[tuple[str, nn.Parameter]]:
        """The query encoder and head, and the third stream: fg1, G (with its auto-encoder), fg2."""
        parts = {"fg1": self.fg1, "generator": self.generator, "fg2": self.fg2}
        extra = [(f"{prefix}.{n}", p) for prefix, m in parts.items() if m is not None for n, p in m.named_parameters()]
        return super().trainable() + extra

    def start_from(self, state: dict) -> None:
        """Stage 2 from stage 1's weights: the encoder, momentum encoder and Queue1 from `state`; fg1 ← f1 and
        fg2 ← f2 of the encoder; Queue2 empty and aligned with Queue1."""
        super().start_from(state)
        with torch.no_grad():
            self.fg1.load_state_dict(self.encoder.backbone.f1_layers().state_dict())
            if self.fg2 is not None:
                self.fg2.load_state_dict(self.encoder.backbone.f2_layers().state_dict())
        self.align_queues()

    @torch.no_grad()
    def align_queues(self) -> None:
        """Queue2 empty, its pointer at Queue1's: from here on slot j of both is written by the same push."""
        if self.codes is not None:
            self.codes.restart_at(int(self.queue.pointer))

    def adversary_coefficient(self, step: int) -> float:
        """The gradient reversal coefficient at `step`: method.grl, or DANN's ramp from 0 to it over stage 2
        (method.grl_schedule=dann; Ganin et al. 2016)."""
        if self.cfg.grl_schedule != "dann" or not self.total_steps:
            return self.cfg.grl
        progress = min(1.0, step / self.total_steps)
        return self.cfg.grl * (2.0 / (1.0 + math.exp(-self.cfg.grl_gamma * progress)) - 1.0)

    def mixing(self, batch: int, generator: torch.Generator, device) -> tuple[torch.Tensor, torch.Tensor]:
        """λ ~ Beta(α, α) per sample and the partner permutation r, drawn for the global batch from the step's
        generator and sliced per rank; partners stay on the same GPU (or sub-batch) so features can be mixed."""
        world, blocks = world_size(), max(self.bn_splits, 1)
        total = batch * world
        lam = beta_sample(self.cfg.alpha, total, generator)
        groups = world * blocks
        size = total // groups
        partner = torch.arange(total)
        for g in range(groups):  # a permutation inside each GPU's (or sub-batch's) share
            partner[g * size : (g + 1) * size] = g * size + torch.randperm(size, generator=generator)
        lam, partner = local_slice(lam), local_slice(partner) - rank() * batch
        return lam.to(device), partner.to(device)

    def forward(self, clips: torch.Tensor, step: int, ids: torch.Tensor | None = None) -> dict:
        """One step of stage 2, numbered as the module docstring and docs/method.md.

        Args:
            clips: [B, 3, 3, T, H, W] float, the clips x, x′, x″ of each of B videos.
            step: the global step (seeds λ, the partners and the key shuffle).
            ids: [B] long, the videos' dataset indices (an older key of a video is not its negative), or None.

        Returns:
            {"loss": scalar, "terms": {"mix", "l3d", "rec", "adv"} (those the ablation keeps), "metrics": monitors}.
        """
        generator = step_generator(self.seed, step)
        x, x_key, x_third = clips[:, 0], clips[:, 1], clips[:, 2]
        batch = len(x)
        lam, partner = self.mixing(batch, generator, x.device)  # [B] λ ~ Beta(α, α), [B] r (eq. 7)
        backbone = self.encoder.backbone

        # 1. keys k = f_k(x′): momentum encoder, shuffle-BN                              [B, D]
        key = self.keys(x_key, generator)
        # 2. the clean stream: h = f1(x) [B, C, t, h, w]; f(x) without gradient (eq. 9's query, eq. 11's reference)
        h = backbone.f1(x)
        with torch.no_grad():
            clean_features, clean = self.encoder.embed_split(h)  # pooled f2(h) [B, C′], f(x) [B, D]
        # 3. the third stream: G(fg1(x″)) (§3.2.2), f1's shape                            [B, C, t, h, w]
        g = self.fg1(x_third)
        out = self.generator(g, groups=max(self.bn_splits, 1)) if self.generator is not None else None
        third = out.view if out is not None else g
        # 4. eq. 8: m = λ·f1(x) + (1−λ)·G(fg1(x″))_r, q = head(f2(m)); eq. 6–7: L_mix over [batch keys; Queue1].
        #    f2's BatchNorm statistics moved in the clean pass.
        shape = (batch,) + (1,) * (h.dim() - 1)
        mixed = lam.view(shape).to(h.dtype) * h + (1 - lam.view(shape)).to(h.dtype) * third[partner]
        with frozen_statistics(backbone.f2_layers()):
            _, query = self.encoder.embed_split(mixed)
        all_keys = gather(key)  # [world·B, D]
        offset = rank() * batch
        own = torch.arange(batch, device=x.device) + offset  # [B] each query's key in all_keys
        queue = self.queue.features.clone()  # [K, D]
        own_video = self.own_video(ids)  # [B, K]: older keys of the query's own video are no negatives
        exclude = None if own_video is None else own_video | own_video[partner]
        loss, logits = mixed_infonce(query, all_keys, queue, own, partner + offset, lam, self.cfg.tau, exclude)
        terms = {"mix": loss}
        # 5. eq. 9–10: L3D, the world code of x″ against Queue2's code of f(x)'s nearest key in Queue1 (among
        #    written slots); L_R, the auto-encoder's reconstruction
        if self.codes is not None:
            unwritten = ~self.codes.filled.expand(batch, -1)
            excluded = unwritten if own_video is None else unwritten | own_video
            index = nearest_neighbour(clean, queue, excluded)
            has_neighbour = ~excluded.all(dim=1)
            terms["l3d"] = world_3d_loss(out.code, self.codes.features.clone(), index, has_neighbour)
            terms["rec"] = reconstruction_loss(out.reconstruction, out.inter.detach())
            loss = loss + self.cfg.w_3d * terms["l3d"] + self.cfg.w_rec * terms["rec"]
        # 6. eq. 11: fg2 minimises d = ‖fg2(G(fg1(x″))) − f(x)‖, θ_g maximises it through the reversal layer, on a
        #    second pass of G from a detached fg1(x″) (its statistics moved in the first)
        coefficient = self.adversary_coefficient(step)
        if self.fg2 is not None:
            with frozen_statistics(self.generator):
                generated = self.generator.view(g.detach())
            adversary = backbone.pool(self.fg2(reverse_gradient(generated, coefficient)))
            terms["adv"] = adversarial_distance(adversary, clean_features)
            loss = loss + self.cfg.w_adv * terms["adv"]
        # 7. enqueue keys and codes together: slot j of Queue2 is the video of slot j of Queue1
        codes = gather(out.code.detach()) if self.codes is not None else None
        if torch.isfinite(all_keys).all() and (codes is None or torch.isfinite(codes).all()):
            gathered_ids = None if ids is None else gather(ids)
            self.queue.push(all_keys, gathered=True, ids=gathered_ids)
            if codes is not None:
                self.codes.push(codes, gathered=True, ids=gathered_ids)

        metrics = self.monitors(logits, own, partner + offset, clean, all_keys, lam, coefficient, out, g)
        return {"loss": loss, "terms": terms, "metrics": metrics}

    @torch.no_grad()
    def monitors(self, logits, own, partner, clean, all_keys, lam, coefficient, out, g) -> dict[str, torch.Tensor]:
        """What a step logs beside its losses (none of it trains): the pretext accuracies, λ, the reversal
        coefficient, and how far G turns and moves its input."""
        metrics = {
            "pretext_acc": mixed_accuracy(logits, own, partner),  # own or partner's key first (λ-aware)
            "pretext_acc_own": accuracy(logits, own),  # own key first (at most ≈ ½ for a perfect model)
            "instance_acc": instance_accuracy(clean, all_keys, own),  # the clean stream, among the batch's keys
            "lambda": lam.mean(),
        }
        if self.fg2 is not None:
            metrics["grl"] = torch.tensor(coefficient)
        if out is not None:
            camera_rotation = self.generator.projection.camera()[0]
            # the net change of viewpoint R_K·Rᵀ (not the pose R alone)
            metrics["gen_view_deg"] = rotation_angle(view_change(out.rotation, camera_rotation)).mean()
            # how far G moves its input: 0 means it collapsed to the identity
            metrics["gen_change"] = (out.view - g).norm() / g.norm().clamp_min(1e-12)
        return metrics


def beta_sample(alpha: float, n: int, generator: torch.Generator) -> torch.Tensor:
    """n draws of Beta(α, α) that depend on `generator` only (torch's Beta sampler uses the global RNG).
    α = 1 (the paper) is the uniform distribution; other α go through numpy's seeded sampler; α = 0 means λ = 1."""
    if alpha <= 0:
        return torch.ones(n)
    if alpha == 1.0:
        return torch.rand(n, generator=generator)
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    return torch.from_numpy(np.random.default_rng(seed).beta(alpha, alpha, size=n).astype(np.float32))
