"""SkeletonCLR (Li et al., CVPR 2021, CrosSCLR's single-view baseline): MoCo over an ST-GCN on 3D skeletons.

The module is this package's `MoCo` unchanged — momentum encoder, queue, InfoNCE — with `models.gcn.STGCN` as its
backbone and SkeletonCLR's projection MLP (256 → 256 → 128). What differs from the video methods is the
augmentation, applied to each of the two views independently, batched on the training device:

- shear: x ← x Sᵀ with S = [[1, a, b], [c, 1, d], [e, f, 1]], the six coefficients drawn from U(−s, s) per sample;
- temporal crop: the sequence padded by reflection with T // p frames on each side, then T consecutive frames cut
  at a random offset in [0, 2·(T // p)].
"""

from __future__ import annotations

from dataclasses import replace

import torch

from viewclr.methods.moco import MoCo
from viewclr.models.gcn import STGCN

PROJECTION_HIDDEN = 256  # SkeletonCLR's MLP head: Linear(256, 256) → ReLU → Linear(256, 128)


def shear(x: torch.Tensor, amount: float, generator: torch.Generator) -> torch.Tensor:
    """[B, 3, T, V, M] → the same, each sample's coordinates sheared by its own random S (module docstring)."""
    b = x.shape[0]
    off = (torch.rand(b, 6, generator=generator) * 2 - 1) * amount
    S = torch.eye(3).repeat(b, 1, 1)
    S[:, 0, 1], S[:, 0, 2], S[:, 1, 0], S[:, 1, 2], S[:, 2, 0], S[:, 2, 1] = off.unbind(1)
    return torch.einsum("bij,bjtvm->bitvm", S.to(x.device, x.dtype), x)


def temporal_crop(x: torch.Tensor, padding_ratio: int, generator: torch.Generator) -> torch.Tensor:
    """[B, 3, T, V, M] → the same length, each sample cut from its reflect-padded sequence at a random offset."""
    b, t = x.shape[0], x.shape[2]
    pad = t // padding_ratio
    if pad == 0:
        return x
    # reflect padding as an index: frame −k is frame k−1 (the padded edge repeats its frame, as [::-1] does)
    position = torch.arange(-pad, t + pad)
    source = torch.where(position < 0, -position - 1, torch.where(position >= t, 2 * t - position - 1, position))
    start = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    index = source[start[:, None] + torch.arange(t)]  # [B, T]
    index = index.to(x.device)[:, None, :, None, None].expand(-1, x.shape[1], -1, *x.shape[3:])
    return torch.gather(x, 2, index)


def two_views(x: torch.Tensor, pose_cfg, generator: torch.Generator) -> torch.Tensor:
    """[B, 3, T, V, M] → [B, 2, 3, T, V, M]: query and key views, each cropped then sheared on its own draw."""
    views = [shear(temporal_crop(x, pose_cfg.crop_padding, generator), pose_cfg.shear, generator) for _ in range(2)]
    return torch.stack(views, dim=1)


def build_skeletonclr(cfg, joints: int) -> MoCo:
    """MoCo over ST-GCN with SkeletonCLR's settings (`cfg.pose`: queue, momentum, τ, width): no shuffle-BN,
    as SkeletonCLR trains on one device without it."""
    p = cfg.pose
    backbone = STGCN(joints=joints, bodies=p.bodies, width=p.stgcn_width)
    method = replace(cfg.method, queue_size=p.queue_size, momentum=p.momentum, tau=p.tau, bn_splits=1)
    return MoCo(backbone, method, proj_dim=128, proj_hidden=PROJECTION_HIDDEN, seed=cfg.seed)
