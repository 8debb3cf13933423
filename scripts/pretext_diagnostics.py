"""Two checks of what a contrastive pretext task can be solved with (docs/results.md, "Why residual frames").

    python scripts/pretext_diagnostics.py freshness RUN/moco/checkpoints/step_000000240.pt
    python scripts/pretext_diagnostics.py augment --config synth_study [overrides...]

`freshness`: from a stage-1 (MoCo) checkpoint and its run's config, a few training batches through the query and
momentum encoders: how similar each query is to its own key, to the other keys of its batch (made at the same
step) and to the keys in the checkpoint's queue (made at earlier steps). If own key ≈ other batch keys ≫ queue,
the pretext task is being won by telling new keys from old ones, not by recognising the video.

`augment`: two augmented clips of each video of a batch (as in training), through a randomly initialised encoder
and as average-pooled pixels: how often a clip's most similar partner among the batch's second clips is its own.
If that is at chance (1 / batch), the augmentation has erased what tells the videos apart at the input.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from viewclr.config import load_config
from viewclr.data.augment import ClipAugment
from viewclr.data.loader import ClipDataset, ClipLoader
from viewclr.data.registry import build_split
from viewclr.methods import build_method
from viewclr.models import build_backbone
from viewclr.runtime import step_generator


def batches(cfg, count: int, seed: int):
    _, split = build_split(cfg.data)
    dataset = ClipDataset.from_config(split.train_samples(), cfg.data, num_clips=2, train=True, seed=seed)
    loader = ClipLoader(dataset, cfg.data.batch_size, shuffle=True, num_workers=0, seed=seed, drop_last=True)
    augment = ClipAugment(cfg.augment, cfg.model.input)
    for n, batch in enumerate(loader):
        if n == count:
            return
        yield augment(batch["clips"])


def own_best(a: torch.Tensor, b: torch.Tensor) -> float:
    """Share of rows of a whose most similar row of b (cosine, after centring each) is the same index."""
    a, b = F.normalize(a - a.mean(0), dim=1), F.normalize(b - b.mean(0), dim=1)
    return ((a @ b.T).argmax(1) == torch.arange(len(a))).float().mean().item()


@torch.no_grad()
def freshness(checkpoint: Path, overrides: list[str], count: int) -> None:
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    cfg = load_config(checkpoint.parents[1] / "config.yaml", overrides)
    torch.manual_seed(cfg.seed)  # the augmentation's randomness
    method = build_method(cfg, "infonce")
    method.load_state_dict(state["method"])
    method.train()  # as in training: batch statistics, shuffle-BN
    print(f"{checkpoint} (step {state['step']}), batch {cfg.data.batch_size}, queue {len(method.queue.features)}")
    print(
        "batch | own key | other batch keys | queue | own key above the whole queue | own key best of the batch "
        "| distinct best keys"
    )
    for n, clips in enumerate(batches(cfg, count, seed=cfg.seed + 1)):
        query = method.encoder(clips[:, 0])
        key = method.keys(clips[:, 1], step_generator(cfg.seed, 10**9 + n))
        similarity, queue = query @ key.T, query @ method.queue.features.T
        eye = torch.eye(len(query), dtype=torch.bool)
        above = (similarity[eye][:, None] > queue).all(1).float().mean()
        nearest = similarity.argmax(1)
        best = (nearest == torch.arange(len(query))).float().mean()
        print(
            f"{n} | {similarity[eye].mean():.3f} | {similarity[~eye].mean():.3f} | {queue.mean():.3f} | "
            f"{above:.2f} | {best:.2f} | {len(nearest.unique())}"
        )
    print(f"(chance for the last column: {1 / cfg.data.batch_size:.3f})")


@torch.no_grad()
def augment(config: str, overrides: list[str], count: int) -> None:
    cfg = load_config(config, overrides)
    torch.manual_seed(cfg.seed)
    encoder = build_backbone(cfg.model.backbone, cfg.model.width).eval()
    encoded, pixels = [], []
    for clips in batches(cfg, count, seed=cfg.seed):
        encoded.append(own_best(encoder(clips[:, 0]), encoder(clips[:, 1])))
        pool = (4, 8, 8)
        pixels.append(own_best(F.avg_pool3d(clips[:, 0], pool).flatten(1), F.avg_pool3d(clips[:, 1], pool).flatten(1)))
    print(
        f"own clip best of {cfg.data.batch_size} ({count} batches; chance {1 / cfg.data.batch_size:.3f}): "
        f"random encoder {sum(encoded) / len(encoded):.3f}, pooled pixels {sum(pixels) / len(pixels):.3f}"
        f"{'  [' + ' '.join(overrides) + ']' if overrides else ''}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="check", required=True)
    fresh = sub.add_parser("freshness", help="own key vs the batch's other keys vs the queue, from a checkpoint")
    fresh.add_argument("checkpoint", type=Path)
    aug = sub.add_parser("augment", help="can two augmented clips of a video still be matched at the input?")
    aug.add_argument("--config", default="synth_study")
    for p in (fresh, aug):
        p.add_argument("--batches", type=int, default=4)
        p.add_argument("overrides", nargs="*", help="config overrides, e.g. augment.jitter_p=0")
    args = parser.parse_args()
    if args.check == "freshness":
        freshness(args.checkpoint, args.overrides, args.batches)
    else:
        augment(args.config, args.overrides, args.batches)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
