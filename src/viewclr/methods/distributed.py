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
    each were on its own GPU; running statistics are the average over sub-batches. Evaluation is plain BN.

    Each sub-batch is a contiguous slice of the batch (a view, in either memory format), normalised by the native
    kernel on its own, with its own copy of the running statistics. On CPU the kernel writes each sub-batch's
    output straight into its slice of one output tensor (`_SubBatchNorm`), which saves the copy of every
    activation that joining the outputs takes (less memory; no step-time change was measurable, docs/performance.md:
    the emulation's remaining cost is the per-call work of twice the kernel calls). Elsewhere (CUDA, mixed dtypes)
    the outputs are joined by `torch.cat`. Folding the sub-batches into channels
    instead needs a transposed copy of the input and of the output — a quarter of a CPU training step; it is
    kept for maps of a single position (1×1×1 at the end of S3D), where it costs nothing and where the kernel
    would otherwise take another summation order. Every way gives the same numbers, bit for bit in float64
    (tested)."""

    def __init__(self, num_features: int, splits: int, **kwargs):
        super().__init__(num_features, **kwargs)
        self.splits = splits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.splits == 1:
            return super().forward(x)
        n, c = x.shape[:2]
        if n % self.splits:
            raise ValueError(f"batch {n} does not split into {self.splits} equal sub-batches (method.bn_splits)")
        s, track = self.splits, self.track_running_stats  # track off inside frozen_statistics: nothing recorded
        mean = torch.stack((self.running_mean,) * s) if track else None  # [s, C]: each sub-batch moves its copy
        var = torch.stack((self.running_var,) * s) if track else None
        if math.prod(x.shape[2:]) == 1:  # [n, c, 1, 1, 1]: sub-batches folded into channels
            grouped = x.view(s, n // s, c, *x.shape[2:]).transpose(0, 1).reshape(n // s, s * c, *x.shape[2:])
            out = F.batch_norm(grouped, None if mean is None else mean.view(-1), None if var is None else var.view(-1),
                               self.weight.repeat(s), self.bias.repeat(s), True, self.momentum, self.eps)  # fmt: skip
            out = out.view(n // s, s, c, *x.shape[2:]).transpose(0, 1).reshape(x.shape)
        elif x.device.type == "cpu" and x.dtype == self.weight.dtype:
            out = _SubBatchNorm.apply(x, self.weight, self.bias, mean, var, s, self.momentum, self.eps)
        else:
            weight, bias = self.weight.repeat(s), self.bias.repeat(s)
            out = torch.cat([
                F.batch_norm(part, None if mean is None else mean[j], None if var is None else var[j],
                             weight[j * c : (j + 1) * c], bias[j * c : (j + 1) * c], True, self.momentum, self.eps)
                for j, part in enumerate(x.chunk(s))
            ])  # fmt: skip
        if track:  # running statistics: the average of the sub-batches' copies
            with torch.no_grad():
                torch.mean(mean, 0, out=self.running_mean)
                torch.mean(var, 0, out=self.running_var)
                self.num_batches_tracked.add_(1)
        return out


class _SubBatchNorm(torch.autograd.Function):
    """Training-mode BatchNorm of each of `splits` contiguous sub-batches, by the native kernels, the outputs
    written into slices of one tensor (no joining copy). Running statistics: `running_mean` / `running_var` hold
    one copy per sub-batch ([splits, C], updated in place), or are None. Backward: the native backward of each
    sub-batch; the weight's and bias's gradients summed over sub-batches in the order autograd sums a
    `repeat`."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, splits: int, momentum: float, eps: float):
        out = torch.empty_like(x)
        saved = x.new_empty(2, splits, x.shape[1])  # each sub-batch's mean and 1/std, for the backward
        means, invstds = saved.unbind(0)
        copies = [(None,) * splits if r is None else r.unbind(0) for r in (running_mean, running_var)]
        for part, into, mean, var, *save in zip(x.chunk(splits), out.chunk(splits), *copies, means.unbind(0),
                                                invstds.unbind(0), strict=True):  # fmt: skip
            torch.ops.aten.native_batch_norm.out(part, weight, bias, mean, var, True, momentum, eps, out=into,
                                                 save_mean=save[0], save_invstd=save[1])  # fmt: skip
        ctx.save_for_backward(x, weight, saved)
        ctx.splits, ctx.eps = splits, eps
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, saved = ctx.saved_tensors
        wanted = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[2]]
        parts = zip(
            x.chunk(ctx.splits), grad_out.chunk(ctx.splits), saved[0].unbind(0), saved[1].unbind(0), strict=True
        )
        grads = [
            torch.ops.aten.native_batch_norm_backward(g, part, weight, None, None, mean, invstd, True, ctx.eps, wanted)
            for part, g, mean, invstd in parts
        ]
        grad_x = torch.cat([g[0] for g in grads]) if wanted[0] else None
        grad_weight = torch.stack([g[1] for g in grads]).sum(0) if wanted[1] else None
        grad_bias = torch.stack([g[2] for g in grads]).sum(0) if wanted[2] else None
        return grad_x, grad_weight, grad_bias, None, None, None, None, None


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
