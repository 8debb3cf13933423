"""Skeleton encoders, written from their papers: ST-GCN (Yan et al., AAAI 2018; SkeletonCLR's backbone) and the
2s-AGCN joint stream (Shi et al., CVPR 2019), behind the backbone interface S3D has (`models.registry.register`).

Input: [B, 3, T, V, M] (x, y, z; frames; joints; bodies). Each body goes through the network on its own (bodies
folded into the batch, as both papers do); features are averaged over frames, joints and bodies → [B, C].

- The graph (`Graph`): the skeleton's bones, and ST-GCN's spatial partition of each joint's neighbourhood into
  three subsets — the joint itself, its neighbours nearer the body's centre (centripetal), and those farther
  (centrifugal) — each a normalised adjacency A_k, stacked [3, V, V].
- ST-GCN block: a graph convolution Σ_k A_k X W_k (A_k weighted by a learned edge importance), then a temporal
  convolution (9 frames), BatchNorm, ReLU, dropout, and a residual.
- 2s-AGCN block: the adjacency of each subset is A_k + B_k + C_k: A_k the fixed graph, B_k learned freely
  (initialised at 0), C_k computed from the sample — softmax over joints of θ(X)ᵀφ(X), two 1×1 convolutions to a
  quarter of the channels, embedded over time. Then the temporal convolution and a residual.
"""

from __future__ import annotations

import torch
from torch import nn

# Bones as (joint, parent nearer the centre), 0-based in NTU's order (data.skeleton.NTU_JOINTS). N-UCLA's 20
# joints are NTU's first 20; it has no spine-shoulder joint, so its shoulders and neck hang from joint 2 (neck).
NTU_BONES = (
    (1, 0),
    (20, 1),
    (2, 20),
    (3, 2),
    (4, 20),
    (5, 4),
    (6, 5),
    (7, 6),
    (8, 20),
    (9, 8),
    (10, 9),
    (11, 10),
    (12, 0),
    (13, 12),
    (14, 13),
    (15, 14),
    (16, 0),
    (17, 16),
    (18, 17),
    (19, 18),
    (21, 7),
    (22, 7),
    (23, 11),
    (24, 11),
)  # fmt: skip  (limb by limb)
NUCLA_BONES = (
    (1, 0), (2, 1), (3, 2), (4, 2), (5, 4), (6, 5), (7, 6), (8, 2), (9, 8), (10, 9), (11, 10),
    (12, 0), (13, 12), (14, 13), (15, 14), (16, 0), (17, 16), (18, 17), (19, 18),
)  # fmt: skip
CENTRE = 1  # spine mid: the centre the centripetal / centrifugal partition measures distances to (ST-GCN's NTU)


class Graph:
    """The skeleton graph of `joints` joints (25: NTU, 20: N-UCLA) and its spatial partition, `A` [3, V, V]."""

    def __init__(self, joints: int = 25):
        if joints not in (20, 25):
            raise ValueError(f"a skeleton graph has 25 (NTU) or 20 (N-UCLA) joints, not {joints}")
        self.joints = joints
        self.bones = NTU_BONES if joints == 25 else NUCLA_BONES
        adjacency = torch.zeros(joints, joints)
        for a, b in self.bones:
            adjacency[a, b] = adjacency[b, a] = 1.0
        self.hops = _hop_distance(adjacency)
        self.A = self._spatial_partition(adjacency)

    def _spatial_partition(self, adjacency: torch.Tensor) -> torch.Tensor:
        neighbourhood = adjacency + torch.eye(self.joints)
        normalised = neighbourhood / neighbourhood.sum(0, keepdim=True)  # A D⁻¹: each column sums to 1
        to_centre = self.hops[:, CENTRE]
        root, closer, farther = (torch.zeros_like(normalised) for _ in range(3))
        for i in range(self.joints):
            for j in range(self.joints):
                if neighbourhood[i, j] == 0:
                    continue
                if to_centre[j] == to_centre[i]:
                    root[i, j] = normalised[i, j]
                elif to_centre[j] > to_centre[i]:
                    closer[i, j] = normalised[i, j]
                else:
                    farther[i, j] = normalised[i, j]
        return torch.stack([root, closer, farther])


def _hop_distance(adjacency: torch.Tensor) -> torch.Tensor:
    """[V, V] shortest path lengths in bones (breadth-first, the graph is small)."""
    joints = len(adjacency)
    hops = torch.full((joints, joints), float("inf"))
    reach = torch.eye(joints)
    for d in range(joints):
        hops[(reach > 0) & torch.isinf(hops)] = d
        reach = ((reach + reach @ adjacency) > 0).float()
    return hops


class _Temporal(nn.Sequential):
    """BatchNorm → ReLU → conv over 9 frames (stride) → BatchNorm → dropout: ST-GCN's temporal unit."""

    def __init__(self, channels: int, stride: int, dropout: float):
        super().__init__(
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, (9, 1), (stride, 1), (4, 0)),
            nn.BatchNorm2d(channels),
            nn.Dropout(dropout, inplace=True),
        )


def _residual(in_channels: int, out_channels: int, stride: int, residual: bool) -> nn.Module | None:
    if not residual:
        return None
    if in_channels == out_channels and stride == 1:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, (stride, 1)), nn.BatchNorm2d(out_channels))


class STGCNBlock(nn.Module):
    """One ST-GCN layer on [N, C, T, V]: Σ_k (X W_k)(A_k ⊙ importance_k), then `_Temporal`, + residual, ReLU."""

    def __init__(self, in_channels, out_channels, A, stride=1, residual=True, dropout=0.0):
        super().__init__()
        self.register_buffer("A", A.clone(), persistent=False)
        self.subsets = len(A)
        self.importance = nn.Parameter(torch.ones_like(A))  # ST-GCN's learnable edge importance
        self.conv = nn.Conv2d(in_channels, out_channels * self.subsets, 1)
        self.temporal = _Temporal(out_channels, stride, dropout)
        self.residual = _residual(in_channels, out_channels, stride, residual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, v = x.shape
        y = self.conv(x).view(n, self.subsets, -1, t, v)
        y = torch.einsum("nkctv,kvw->nctw", y, self.A * self.importance)
        y = self.temporal(y)
        return torch.relu(y + (0 if self.residual is None else self.residual(x)))


class AdaptiveGraphConv(nn.Module):
    """2s-AGCN's graph convolution on [N, C, T, V]: Σ_k W_k X (A_k + B_k + C_k(X)), BatchNorm, + residual, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, A: torch.Tensor):
        super().__init__()
        self.register_buffer("A", A.clone(), persistent=False)
        self.subsets, inner = len(A), max(out_channels // 4, 1)
        self.B = nn.Parameter(torch.zeros_like(A))  # learned freely; 2s-AGCN starts it at (nearly) zero
        self.theta = nn.ModuleList(nn.Conv2d(in_channels, inner, 1) for _ in range(self.subsets))
        self.phi = nn.ModuleList(nn.Conv2d(in_channels, inner, 1) for _ in range(self.subsets))
        self.W = nn.ModuleList(nn.Conv2d(in_channels, out_channels, 1) for _ in range(self.subsets))
        self.bn = nn.BatchNorm2d(out_channels)
        self.down = _residual(in_channels, out_channels, 1, True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v = x.shape
        y = 0
        for k in range(self.subsets):
            theta = self.theta[k](x).permute(0, 3, 1, 2).reshape(n, v, -1)  # [N, V, C'·T]
            phi = self.phi[k](x).reshape(n, -1, v)  # [N, C'·T, V]
            C = torch.softmax(theta @ phi / theta.shape[-1], dim=-2)  # [N, V, V]: the sample's own graph
            adjacency = self.A[k] + self.B[k] + C
            y = y + self.W[k](torch.einsum("nctv,nvw->nctw", x, adjacency))
        return torch.relu(self.bn(y) + self.down(x))


class AGCNBlock(nn.Module):
    """AdaptiveGraphConv → temporal conv (9 frames) + BatchNorm, + residual, ReLU (2s-AGCN's TCN-GCN unit)."""

    def __init__(self, in_channels, out_channels, A, stride=1, residual=True):
        super().__init__()
        self.gcn = AdaptiveGraphConv(in_channels, out_channels, A)
        self.tcn = nn.Sequential(
            nn.Conv2d(out_channels, out_channels, (9, 1), (stride, 1), (4, 0)), nn.BatchNorm2d(out_channels)
        )
        self.residual = _residual(in_channels, out_channels, stride, residual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.tcn(self.gcn(x)) + (0 if self.residual is None else self.residual(x)))


class SkeletonBackbone(nn.Module):
    """Shared by ST-GCN and AGCN: BatchNorm of the input per (body, joint, coordinate), the blocks, pooling.

    The backbone interface (as S3D's): `forward(x)` → pooled features [B, out_channels]; `f1` (the first half of
    the blocks) and `f2` (the rest), `forward_features` (before pooling), `pool`, `f1_layers` / `f2_layers`,
    `split_channels`. Bodies are folded into the batch before the blocks and averaged in `pool`.
    """

    def __init__(self, blocks: list[nn.Module], channels: list[int], joints: int, bodies: int):
        super().__init__()
        self.joints, self.bodies = joints, bodies
        self.data_bn = nn.BatchNorm1d(3 * joints * bodies)
        self.blocks = nn.ModuleList(blocks)
        half = len(blocks) // 2
        self.f1_layers = [f"blocks.{i}" for i in range(half)]
        self.f2_layers = [f"blocks.{i}" for i in range(half, len(blocks))]
        self.split_channels = channels[half - 1]
        self.out_channels = channels[-1]

    def _fold(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, T, V, M] → [B·M, 3, T, V], after the input BatchNorm."""
        b, c, t, v, m = x.shape
        if v != self.joints or m != self.bodies:
            raise ValueError(f"this encoder takes {self.joints} joints × {self.bodies} bodies, got {v} × {m}")
        x = x.permute(0, 4, 3, 1, 2).reshape(b, m * v * c, t)
        x = self.data_bn(x).view(b, m, v, c, t).permute(0, 1, 3, 4, 2)
        return x.reshape(b * m, c, t, v)

    def f1(self, x: torch.Tensor) -> torch.Tensor:
        x = self._fold(x)
        for block in self.blocks[: len(self.f1_layers)]:
            x = block(x)
        return x

    def f2(self, h: torch.Tensor) -> torch.Tensor:
        for block in self.blocks[len(self.f1_layers) :]:
            h = block(h)
        return h

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, T, V, M] → [B·M, C, T', V]."""
        return self.f2(self.f1(x))

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        """[B·M, C, T', V] → [B, C]: averaged over frames, joints and bodies."""
        return h.mean(dim=(2, 3)).view(-1, self.bodies, h.shape[1]).mean(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.forward_features(x))


def _widths(base: int) -> list[tuple[int, int]]:
    """(channels, stride) of the ten blocks both papers use: base ×4, 2·base ×3 (the first strided), 4·base ×3."""
    return [(base, 1)] * 4 + [(2 * base, 2), (2 * base, 1), (2 * base, 1), (4 * base, 2), (4 * base, 1), (4 * base, 1)]


class STGCN(SkeletonBackbone):
    """ST-GCN as SkeletonCLR configures it: `base=16` channels, the last block widened to `out_dim=256` (its
    "hidden_dim", the features the projection head and the linear probe read)."""

    def __init__(self, joints=25, bodies=2, base=16, out_dim=256, dropout=0.0, width=1.0, **_):
        base = max(1, round(base * width))
        widths = _widths(base)
        widths[-1] = (out_dim, 1)
        A = Graph(joints).A
        blocks, channels, previous = [], [], 3
        for i, (c, stride) in enumerate(widths):
            blocks.append(STGCNBlock(previous, c, A, stride, residual=i > 0, dropout=dropout))
            channels.append(c)
            previous = c
        super().__init__(blocks, channels, joints, bodies)


class AGCN(SkeletonBackbone):
    """The 2s-AGCN joint stream: ten adaptive blocks at 64 … 256 channels (`base=64`)."""

    def __init__(self, joints=25, bodies=2, base=64, width=1.0, **_):
        base = max(1, round(base * width))
        A = Graph(joints).A
        blocks, channels, previous = [], [], 3
        for i, (c, stride) in enumerate(_widths(base)):
            blocks.append(AGCNBlock(previous, c, A, stride, residual=i > 0))
            channels.append(c)
            previous = c
        super().__init__(blocks, channels, joints, bodies)


def transfer_state(state: dict, joints: int, bodies: int, to_joints: int, to_bodies: int) -> dict:
    """A skeleton encoder's state dict for fewer joints or bodies: an NTU-trained encoder (25 joints) on N-UCLA (20,
    NTU's first 20), or a two-body encoder on one-body data. Every weight of the blocks is shared by all joints and
    bodies; what is per joint or per body is kept for the ones that remain — the input BatchNorm's entries (laid out
    body, joint, coordinate) and the [K, V, V] edge weights (ST-GCN's importance, AGCN's B) among those joints.
    An edge of the smaller graph that the larger one lacks keeps the learned weight's value there (ST-GCN: its
    initial 1; AGCN: what B learned between those joints)."""
    if to_joints > joints or to_bodies > bodies:
        raise ValueError(
            f"an encoder of {joints} joints × {bodies} bodies cannot take {to_joints} × {to_bodies}: only fewer"
        )
    out = {}
    for key, value in state.items():
        if key.startswith("data_bn.") and value.ndim == 1:
            value = value.view(bodies, joints, -1)[:to_bodies, :to_joints].reshape(-1)
        elif value.ndim == 3 and value.shape[-2:] == (joints, joints):
            value = value[:, :to_joints, :to_joints]
        out[key] = value.clone()
    return out
