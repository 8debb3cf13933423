"""Small heads on top of an encoder: the contrastive projection MLP, a classifier, and gradient reversal (eq. 11)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ProjectionHead(nn.Module):
    """MLP (Linear → ReLU → Linear) to `out_dim` (128), L2-normalised: the embedding MoCo compares (MoCo v2, CoCLR)."""

    def __init__(self, in_dim: int, out_dim: int = 128, hidden_dim: int | None = None):
        super().__init__()
        hidden_dim = hidden_dim or in_dim
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.mlp(x), dim=1)


class ClassifierHead(nn.Module):
    """Dropout → Linear, optionally after a non-affine BatchNorm of the features (CoCLR's linear probe)."""

    def __init__(self, in_dim: int, num_classes: int, dropout: float = 0.0, feature_norm: bool = False):
        super().__init__()
        self.norm = nn.BatchNorm1d(in_dim, affine=False) if feature_norm else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(in_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(self.norm(x)))


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, coefficient: float) -> torch.Tensor:
        ctx.coefficient = coefficient
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.coefficient * grad, None


def reverse_gradient(x: torch.Tensor, coefficient: float = 1.0) -> torch.Tensor:
    """Identity forwards; multiplies the gradient by −coefficient backwards (Ganin & Lempitsky 2015)."""
    return _ReverseGradient.apply(x, coefficient)
