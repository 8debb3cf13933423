"""What a method needs from torch.distributed — and its single-device stand-ins, so both paths run the same code.

In a multi-GPU run (torchrun + DDP) every rank holds B samples of a global batch of W·B, in rank order. A
single-device run emulates W "virtual ranks" with `SplitBatchNorm` (each contiguous quarter, half, … of the
batch is normalised on its own), which is what makes it match a W-GPU run of the same global batch.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from viewclr.runtime import is_distributed, rank, world_size


@torch.no_grad()
def gather(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's tensor along dim 0, in rank order (no gradient: keys and codes only)."""
    if not is_distributed():
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def local_slice(global_tensor: torch.Tensor) -> torch.Tensor:
    """This rank's part of a tensor built for the global batch."""
    size = len(global_tensor) // world_size()
    return global_tensor[rank() * size : (rank() + 1) * size]


class SplitBatchNorm(nn.BatchNorm3d):
    """BatchNorm3d whose training statistics are computed on `splits` contiguous sub-batches separately, as if
    each were on its own GPU; the running statistics move by the average of the sub-batches' statistics.
    Evaluation is plain BN.

    Each sub-batch is a contiguous slice of the batch (a view, in either memory format) normalised by the native
    kernel on its own. With autograd the outputs are joined by `torch.cat`, so that the backward is the native
    backward of each sub-batch and nothing of the layer runs in Python; without (the key encoder, on CPU) each
    output is written straight into its slice of one tensor. The running statistics need no copies: the
    sub-batches update the layer's own buffers one after the other, sub-batch j with momentum
    m_j = (m/s) / (1 - (s-1-j)·m/s) (`sequential_momenta`), which moves them by (1 - m)·r + m·mean_j(stat_j) — the
    average of s updates from the same r — exactly up to float rounding. Maps of a single position (1×1×1, the end
    of S3D) are folded into channels instead (a copy of a few numbers), where the kernel would otherwise take
    another summation order. Outputs and gradients are those of normalising each sub-batch alone, bit for bit
    (tested against the transposed-copy implementation in float64); what the emulation costs a training step is
    in docs/performance.md."""

    def __init__(self, num_features: int, splits: int, **kwargs):
        super().__init__(num_features, **kwargs)
        self.splits = splits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.splits == 1:
            return super().forward(x)
        n, c = x.shape[:2]
        s, track = self.splits, self.track_running_stats  # track off inside frozen_statistics: nothing recorded
        if n % s:
            raise ValueError(f"batch {n} does not split into {s} equal sub-batches (method.bn_splits)")
        momentum, mean, var = 0.0, None, None  # without running statistics
        if track:
            self.num_batches_tracked.add_(1)
            momentum = self.momentum if self.momentum is not None else 1 / float(self.num_batches_tracked)  # cumulative
            mean, var = self.running_mean, self.running_var
        if math.prod(x.shape[2:]) == 1:  # [n, c, 1, 1, 1]: sub-batches folded into channels
            grouped = x.view(s, n // s, c, *x.shape[2:]).transpose(0, 1).reshape(n // s, s * c, *x.shape[2:])
            copies = (mean.repeat(s), var.repeat(s)) if track else (None, None)
            out = F.batch_norm(grouped, *copies, self.weight.repeat(s), self.bias.repeat(s), True, momentum, self.eps)
            if track:
                with torch.no_grad():
                    torch.mean(copies[0].view(s, c), 0, out=mean)
                    torch.mean(copies[1].view(s, c), 0, out=var)
            return out.view(n // s, s, c, *x.shape[2:]).transpose(0, 1).reshape(x.shape)
        momenta = sequential_momenta(momentum, s)
        if x.device.type == "cpu" and x.dtype == self.weight.dtype and not _needs_grad(x, self.weight, self.bias):
            # no autograd (the key encoder): each sub-batch's output written into its slice of one tensor
            out, unused = torch.empty_like(x), x.new_empty(2, c).unbind(0)  # the kernel's saved mean and 1/std
            for part, into, m in zip(x.chunk(s), out.chunk(s), momenta, strict=True):
                torch.native_batch_norm(part, self.weight, self.bias, mean, var, True, m, self.eps, out=(into, *unused))
            return out
        # the weight's and bias's gradients of the sub-batches meet in one sum per call, in sub-batch order (as a
        # `repeat`'s do), before autograd adds the calls of a layer used more than once a step (the generator's):
        # two sub-batches share one view per call (two terms add to the same bits in either order); from three
        # on, each sub-batch has its own view
        if s == 2:
            weights, biases = (self.weight.view(c),) * 2, (self.bias.view(c),) * 2
        else:
            weights, biases = self.weight.expand(s, c).unbind(0), self.bias.expand(s, c).unbind(0)
        cudnn = torch.backends.cudnn.enabled
        return torch.cat(
            [
                torch.batch_norm(part, w, b, mean, var, True, m, self.eps, cudnn)
                for part, w, b, m in zip(x.chunk(s), weights, biases, momenta, strict=True)
            ]
        )


def _needs_grad(*tensors: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def sequential_momenta(momentum: float, splits: int) -> list[float]:
    """Momenta m_0 … m_{s-1} under which s running-statistics updates applied one after the other,
    r ← (1 - m_j)·r + m_j·stat_j, give (1 - m)·r + (m/s)·Σ_j stat_j: the average of s updates from the same r.
    (The weight of stat_j, m_j·Π_{k>j}(1 - m_k), telescopes to m/s.)"""
    share = momentum / splits
    return [share / (1 - (splits - 1 - j) * share) for j in range(splits)]


@contextlib.contextmanager
def frozen_statistics(*modules: nn.Module | None):
    """Inside: the BatchNorm layers of `modules` normalise with their batch's statistics as in training but do
    not update their running statistics (nor their batch count). For a second pass of a module in one step, so
    that its statistics move once a step, from the input evaluation will see."""
    layers = [m for module in modules if module is not None for m in module.modules()]
    layers = [m for m in layers if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    for layer in layers:
        layer.track_running_stats = False
    try:
        yield
    finally:
        for layer in layers:
            layer.track_running_stats = True


def split_batchnorm(module: nn.Module, splits: int) -> nn.Module:
    """Replace every BatchNorm3d in `module` by a SplitBatchNorm with the same parameters and buffers."""
    if splits <= 1:
        return module
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm3d) and not isinstance(child, SplitBatchNorm):
            split = SplitBatchNorm(child.num_features, splits, eps=child.eps, momentum=child.momentum)
            split.load_state_dict(child.state_dict())
            setattr(module, name, split.to(child.weight.device))
        else:
            split_batchnorm(child, splits)
    return module


def mixing_permutation(n: int, blocks: int, generator: torch.Generator) -> torch.Tensor:
    """A permutation of n samples in `blocks` equal blocks (GPUs, or sub-batches of SplitBatchNorm) under which
    every block of the result draws equally from every block of the input: block j receives about n / blocks²
    samples of each block. A key is then normalised with as few of its query's batch-mates as the block count
    allows (1/blocks of them), so its BatchNorm statistics carry little of the query's. (Moving whole blocks, as
    this project once did, keeps every key with exactly its query's batch-mates — a full leak; a plain random
    permutation leaves the overlap to chance.) With one block it is a plain random permutation."""
    if blocks <= 1 or n % blocks:
        return torch.randperm(n, generator=generator)
    size = n // blocks
    # shuffle inside each input block, then deal the blocks out round-robin, starting from a random block
    shuffled = torch.stack([b * size + torch.randperm(size, generator=generator) for b in range(blocks)])
    order = torch.randperm(blocks, generator=generator)
    dealt = shuffled[order].t().reshape(-1)  # position p holds input block order[p % blocks]
    # the result's blocks are consecutive runs of `size`; shuffle inside each so no position carries the origin
    return torch.cat([run[torch.randperm(size, generator=generator)] for run in dealt.view(blocks, size)])


def shuffled_forward(encoder, x: torch.Tensor, generator: torch.Generator, blocks: int = 1) -> torch.Tensor:
    """Shuffle BN (MoCo): run `encoder` on the batch in shuffled order and put the outputs back in place, so that
    each key is normalised with other samples than its query. Across GPUs the global batch is gathered, permuted
    with the same seeded permutation on every rank, and each rank encodes its share; on one device `blocks` (the
    SplitBatchNorm count) plays the ranks. The permutation (`mixing_permutation`) gives every GPU (sub-batch) an
    equal share of every other's samples, so a key shares the fewest BatchNorm batch-mates with its query."""
    world = world_size()
    full = gather(x) if world > 1 else x
    permutation = mixing_permutation(len(full), world if world > 1 else blocks, generator).to(x.device)
    inverse = torch.argsort(permutation)
    mine = local_slice(full[permutation]) if world > 1 else full[permutation]
    out = encoder(mine)
    out = gather(out) if world > 1 else out
    out = out[inverse]
    return local_slice(out) if world > 1 else out
