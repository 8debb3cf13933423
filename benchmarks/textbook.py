"""viewclr's MoCo step against a textbook MoCo v2 step, the same batch and shapes, interleaved in one process.

The textbook step is written plainly here, as MoCo's builder does it on one device: a query encoder and its
momentum copy (the same S3D and projection head, plain BatchNorm), the momentum update, keys without gradient,
InfoNCE against a queue, enqueue, Adam. viewclr's step is the trainer's at the config's settings (its default
emulates two GPUs' BatchNorm with split BatchNorm and shuffles the keys, excludes a query's own video from the
negatives, logs its accuracies). The ratio is viewclr's time per step over the textbook's: ≤ 1.0 is the goal.
Where the config emulates several GPUs' BatchNorm (`method.bn_splits` > 1), the same viewclr model also steps with
its split BatchNorm layers set to one sub-batch, in the same rounds: the ratio of the two is what the emulation
costs (goal: a few percent). One model with its layers switched, rather than a second model, because that is the
comparison that repeats from run to run on a shared machine.

    python -m benchmarks.textbook                  # the synth_cpu preset (S3D ×0.25, batch 16, 3×16×64²)
    python -m benchmarks.textbook --config ntu60_cvs --device cuda data.batch_size=32
"""

from __future__ import annotations

import copy
import sys

import torch
import torch.nn.functional as F

from benchmarks import (
    add_device,
    config_parser,
    device_label,
    interleaved_rounds,
    medians,
    paired_ratio,
    report,
    run_shape,
)
from benchmarks.pretrain import setup
from viewclr.config import load_config
from viewclr.methods.distributed import SplitBatchNorm
from viewclr.models.heads import ProjectionHead
from viewclr.models.registry import build_backbone


def textbook_step(cfg, device: torch.device):
    """MoCo v2 on one device, plainly: encoder + head, momentum encoder, queue, InfoNCE, Adam."""
    torch.manual_seed(0)
    backbone = build_backbone(cfg.model.backbone, cfg.model.width)
    query_encoder = torch.nn.Sequential(backbone, ProjectionHead(backbone.out_channels, cfg.model.proj_dim)).to(device)
    key_encoder = copy.deepcopy(query_encoder).requires_grad_(False)
    queue = F.normalize(torch.randn(cfg.method.queue_size, cfg.model.proj_dim, device=device), dim=1)
    pointer = 0
    optimizer = torch.optim.Adam(query_encoder.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    size, frames, batch = cfg.augment.size, cfg.data.frames, cfg.data.batch_size
    clips = torch.randn(batch, 2, 3, frames, size, size, device=device)
    m, tau = cfg.method.momentum, cfg.method.tau

    def step() -> None:
        nonlocal queue, pointer
        q = query_encoder(clips[:, 0])
        with torch.no_grad():
            for key_param, param in zip(key_encoder.parameters(), query_encoder.parameters(), strict=True):
                key_param.mul_(m).add_(param.detach(), alpha=1 - m)
            k = key_encoder(clips[:, 1])
        logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue.T], dim=1) / tau
        loss = F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            slots = torch.arange(pointer, pointer + len(k), device=device) % len(queue)
            queue[slots] = k
            pointer = (pointer + len(k)) % len(queue)
        if device.type == "cuda":
            torch.cuda.synchronize()

    return step


UNSPLIT = "viewclr MoCo, its BatchNorm unsplit"


def with_splits(method, step, splits: int):
    """`step` with every SplitBatchNorm of `method` set to `splits` sub-batches first."""
    layers = [m for m in method.modules() if isinstance(m, SplitBatchNorm)]

    def run() -> None:
        for layer in layers:
            layer.splits = splits
        step()

    return run


def main(argv: list[str] | None = None) -> int:
    parser = config_parser(__doc__, 7, "method.bn_splits=1")
    add_device(parser)
    parser.add_argument("--steps", type=int, default=3, help="steps per round")
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    device = torch.device(args.device)
    method, step = setup(cfg, "infonce", device)
    steps = {"viewclr MoCo": with_splits(method, step, cfg.method.bn_splits)}
    steps["textbook MoCo v2"] = textbook_step(cfg, device)
    if cfg.method.bn_splits > 1:
        steps[UNSPLIT] = with_splits(method, step, 1)
    rounds = interleaved_rounds(steps, args.rounds, args.steps)
    ms = medians(rounds)
    ratio = paired_ratio(rounds["viewclr MoCo"], rounds["textbook MoCo v2"])  # the median of each round's ratio
    result, summary = {"ms": ms, "ratio": ratio}, f"viewclr / textbook: {ratio:.2f}× (goal ≤ 1.0)"
    if UNSPLIT in ms:
        result["split_bn_cost"] = paired_ratio(rounds["viewclr MoCo"], rounds[UNSPLIT]) - 1
        summary += (
            f"\nthe emulation of {cfg.method.bn_splits} GPUs' BatchNorm (method.bn_splits="
            f"{cfg.method.bn_splits}): {100 * result['split_bn_cost']:+.1f} % of the step"
        )
    where = device_label(device)
    setting = (
        f"{args.config} {' '.join(args.overrides)}: {run_shape(cfg)}, queue {cfg.method.queue_size}, {where}; "
        f"median of {args.rounds} rounds × {args.steps} steps; ratios: the median of each round's"
    )
    report(setting, "step", ms, summary, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
