"""The training augmentation against kornia's own pipeline it replaces, the same batch, interleaved in one process.

The reference is the five kornia steps as CoCLR's recipe reads (random resized crop, flip, ColorJitter with
kornia's HSV hue, grayscale, blur), every step built whatever its probability; viewclr's `ClipAugment` is the same
kornia pipeline with the hue step done by `shift_hue` (no HSV image) and the steps whose probability is 0 left out.
The batch is what a MoCo step augments: `data.batch_size` videos × 2 clips of uint8 frames at the data's short side
(4:3). Also the hue step alone, on the cropped frames. The ratio is kornia's time over viewclr's: ≥ 2 is the goal.

    python -m benchmarks.augment                       # the synth_cpu preset (batch 16, 2 × 16 frames, 64 px)
    python -m benchmarks.augment --config ntu60_cvs    # the paper's settings (batch 32, 2 × 32 frames, 128 px)
"""

from __future__ import annotations

import math
import os
import sys

import kornia.augmentation as K
import torch
from kornia.enhance import adjust_hue

from benchmarks import config_parser, interleaved_ms, report
from viewclr.config import load_config
from viewclr.data.augment import ClipAugment, _to_frames, blur_kernel_size, shift_hue


def kornia_pipeline(cfg) -> K.VideoSequential:
    """The augmentation as kornia ships it: the reference."""
    a = cfg.augment
    kernel = blur_kernel_size(a.size)
    return K.VideoSequential(
        K.RandomResizedCrop((a.size, a.size), scale=tuple(a.crop_scale), ratio=tuple(a.crop_ratio)),
        K.RandomHorizontalFlip(p=a.hflip_p),
        K.ColorJitter(*a.jitter, p=a.jitter_p),
        K.RandomGrayscale(p=a.grayscale_p),
        K.RandomGaussianBlur((kernel, kernel), sigma=tuple(a.blur_sigma), p=a.blur_p),
        data_format="BTCHW",
        same_on_frame=True,
    )


def main(argv: list[str] | None = None) -> int:
    args = config_parser(__doc__, 7, "data.batch_size=8").parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    torch.manual_seed(0)
    side = cfg.data.short_side
    clips = torch.randint(0, 256, (cfg.data.batch_size, 2, cfg.data.frames, side, side * 4 // 3, 3), dtype=torch.uint8)
    ours, reference = ClipAugment(cfg.augment, cfg.model.input), kornia_pipeline(cfg)
    frames = torch.rand(cfg.data.batch_size * 2 * cfg.data.frames, 3, cfg.augment.size, cfg.augment.size)
    turns = (torch.rand(len(frames)) * 2 - 1) * cfg.augment.jitter[3]
    angles = turns * 2 * math.pi

    def kornia_augmentation() -> torch.Tensor:
        uint8_frames, lead = _to_frames(clips)
        return ours.normalize(reference(uint8_frames), lead)

    cases = {
        "augmentation, kornia": kornia_augmentation,
        "augmentation, viewclr": lambda: ours(clips),
        "hue step, kornia (HSV round trip)": lambda: adjust_hue(frames, angles),
        "hue step, viewclr (shift_hue)": lambda: shift_hue(frames, angles),
    }
    ms = interleaved_ms(cases, args.rounds)
    speedup = {
        "augmentation": ms["augmentation, kornia"] / ms["augmentation, viewclr"],
        "hue": ms["hue step, kornia (HSV round trip)"] / ms["hue step, viewclr (shift_hue)"],
    }
    setting = (
        f"{args.config} {' '.join(args.overrides)}: {cfg.data.batch_size} videos × 2 clips × "
        f"{cfg.data.frames} frames {side}×{side * 4 // 3} → {cfg.augment.size}², CPU ({os.cpu_count()} cores, "
        f"{torch.get_num_threads()} threads); median of {args.rounds} rounds"
    )
    summary = (
        f"augmentation: kornia / viewclr {speedup['augmentation']:.2f}× (goal ≥ 2); hue step {speedup['hue']:.2f}×"
    )
    report(setting, "per batch", ms, summary, {"ms": ms, "speedup": speedup})
    return 0


if __name__ == "__main__":
    sys.exit(main())
