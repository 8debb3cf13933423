"""The per-GPU BatchNorm emulation alone: every BatchNorm call of one MoCo training step at the config's settings
(shapes, memory format and whether autograd records it, taken from a real step), replayed in three forms, each
summed over the step's calls:

- one call over the whole batch: no emulation (`method.bn_splits=1`);
- SplitBatchNorm with `method.bn_splits` sub-batches, as training runs it (one native call per sub-batch);
- one `group_norm` call on a view of the channels-last input that makes each sub-batch a "sample" and each channel
  a group — the only single-call form the channels_last_3d layout allows (no copy). It is not bitwise equal to
  normalising each sub-batch alone (another summation order; its largest difference in float64 is printed), so
  training does not use it; it is measured to show whether one call would pay.

Calls recorded with autograd are timed forward + backward, the key encoder's forward only. benchmarks/textbook.py
measures the emulation inside the whole step; this isolates the BatchNorm work.

    python -m benchmarks.batchnorm                 # the synth_cpu preset
    python -m benchmarks.batchnorm model.width=1.0 data.batch_size=4
"""

from __future__ import annotations

import math
import os
import sys
from collections import Counter

import torch
import torch.nn.functional as F

from benchmarks import config_parser, interleaved_rounds, medians, paired_ratio, report, run_shape
from benchmarks.pretrain import setup
from viewclr.config import load_config
from viewclr.methods.distributed import SplitBatchNorm

FORMS = ("one call (no emulation)", "SplitBatchNorm", "group_norm, one call")


def recorded_calls(cfg, device: torch.device) -> Counter:
    """(shape, channels-last, with autograd) of every SplitBatchNorm call of one MoCo step, with counts."""
    method, step = setup(cfg, "infonce", device)
    calls: Counter = Counter()

    def hook(module, inputs):
        x = inputs[0]
        last = x.dim() == 5 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last_3d)
        calls[(tuple(x.shape), last, torch.is_grad_enabled() and x.requires_grad)] += 1

    handles = [m.register_forward_pre_hook(hook) for m in method.modules() if isinstance(m, SplitBatchNorm)]
    step()
    for handle in handles:
        handle.remove()
    return calls


def group_norm_form(x: torch.Tensor, weight, bias, splits: int, eps: float) -> torch.Tensor:
    """Each contiguous sub-batch normalised on its own by one group_norm call: sub-batch j is sample j of an
    [s, C, M, 1] tensor (M = positions of a sub-batch), channel c group c. For a channels-last x both reshapes are
    views (no copy); for any other layout they copy, and the result is the same."""
    n, c = x.shape[:2]
    last = x.permute(0, 2, 3, 4, 1)  # [n, T, H, W, C]: contiguous when x is channels-last
    out = F.group_norm(last.reshape(splits, -1, 1, c).permute(0, 3, 1, 2), c, weight, bias, eps)
    return out.permute(0, 2, 3, 1).reshape(last.shape).permute(0, 4, 1, 2, 3)


def make_form(name: str, shape, last: bool, grad: bool, splits: int, dtype=torch.float32):
    """A callable that runs one recorded call in the named form — forward, and backward when `grad` — on fixed
    random data, and returns the output (detached)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=generator, dtype=dtype)
    if last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    c = shape[1]
    layer = SplitBatchNorm(c, splits).to(dtype).train()
    with torch.no_grad():
        layer.weight.copy_(torch.rand(c, generator=generator, dtype=dtype) + 0.5)
        layer.bias.copy_(torch.randn(c, generator=generator, dtype=dtype))
    x.requires_grad_(grad)
    layer.requires_grad_(grad)
    upstream = torch.randn(shape, generator=generator, dtype=dtype)
    if name == FORMS[0]:
        layer.splits = 1
    # group_norm's view needs a channels-last map of more than one position (else SplitBatchNorm's own path)
    one_call = name == FORMS[2] and last and math.prod(shape[2:]) > 1

    def run():
        with torch.set_grad_enabled(grad):
            out = group_norm_form(x, layer.weight, layer.bias, splits, layer.eps) if one_call else layer(x)
            if grad:  # the gradients a step passes on (no accumulation into .grad)
                torch.autograd.grad(out, (x, layer.weight, layer.bias), upstream)
        return out.detach()

    return run


def main(argv: list[str] | None = None) -> int:
    args = config_parser(__doc__, 15, "model.width=1.0").parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    splits = cfg.method.bn_splits
    if splits < 2:
        raise SystemExit("method.bn_splits=1: there is no emulation to measure")
    device = torch.device("cpu")
    calls = recorded_calls(cfg, device)

    def step_of(name):
        runs = [(make_form(name, *key, splits), count) for key, count in calls.items()]

        def step():
            for run, count in runs:
                for _ in range(count):
                    run()

        return step

    rounds = interleaved_rounds({name: step_of(name) for name in FORMS}, args.rounds)
    ms = medians(rounds)
    largest = 0.0  # group_norm against SplitBatchNorm, float64
    for key in calls:
        outputs = [make_form(name, *key, splits, dtype=torch.float64)() for name in FORMS[1:]]  # detached
        largest = max(largest, float((outputs[0] - outputs[1]).abs().max()))
    result = {
        "ms": ms,
        "calls": sum(calls.values()),
        "split_cost": paired_ratio(rounds[FORMS[1]], rounds[FORMS[0]]) - 1,
        "group_norm_cost": paired_ratio(rounds[FORMS[2]], rounds[FORMS[0]]) - 1,
        "group_norm_max_difference": largest,
    }
    summary = (
        f"{result['calls']} BatchNorm calls a step; against one call: SplitBatchNorm "
        f"{100 * result['split_cost']:+.0f} %, group_norm {100 * result['group_norm_cost']:+.0f} %; "
        f"group_norm's largest difference from SplitBatchNorm in float64: {largest:.1e}"
    )
    setting = (
        f"{args.config} {' '.join(args.overrides)}: the BatchNorm calls of one MoCo step ({run_shape(cfg)}, "
        f"{splits} sub-batches), CPU ({os.cpu_count()} cores, {torch.get_num_threads()} threads); median of "
        f"{args.rounds} rounds"
    )
    report(setting, "BatchNorm calls of one step", ms, summary, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
