"""Batched, clip-consistent augmentation on the training device (kornia), and normalisation.

Paper §4.2: clip-wise consistent random crops, horizontal flips, Gaussian blur and colour jittering; CoCLR's
values by default (crop area 0.2–1, jitter 0.4/0.4/0.4/0.1 with p 0.8, grayscale p 0.2, blur σ 0.1–2 p 0.5).
"Clip-consistent" means one set of parameters per clip, shared by all its frames; different clips of a batch
(and x, x′, x″ of one video) get different parameters.

Input: uint8 [..., T, H, W, 3] as the loader yields it; output: float [..., 3, T, S, S], normalised — the
layout 3D CNNs take.
"""

from __future__ import annotations

import kornia.augmentation as K
import torch
import torch.nn.functional as F
from torch import nn

from viewclr.config import AugmentConfig


def _to_frames(clips: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    """uint8 [..., T, H, W, C] → float [N, T, C, H, W] in [0, 1], and the leading shape."""
    if clips.dtype != torch.uint8 or clips.dim() < 4 or clips.shape[-1] != 3:
        raise ValueError(f"expected uint8 clips [..., T, H, W, 3], got {tuple(clips.shape)} {clips.dtype}")
    lead = tuple(clips.shape[:-4])
    frames = clips.reshape(-1, *clips.shape[-4:]).permute(0, 1, 4, 2, 3)
    return frames.float().div_(255.0), lead


def modality(input_: str) -> str:
    """The "M" column of the paper's tables for an encoder fed `input_` (model.input): RGB, or RGB residual."""
    return "RGB" if input_ == "rgb" else "RGB residual"


def blur_kernel_size(size: int) -> int:
    """Odd kernel about a tenth of the image side (SimCLR/CoCLR: 23 px at 224)."""
    return max(3, int(0.1 * size) // 2 * 2 + 1)


class Normalize(nn.Module):
    """Per-channel (x - mean) / std on [N, T, C, H, W]; then to the 3D-CNN layout [..., C, T, H, W].

    `residual`: the clip's residual frames instead (frame t+1 − frame t of the normalised frames; the last one
    repeated so the clip keeps T frames). Everything that does not move — the room, the actor's clothes, a
    shadow's direction — is zero in them; what is left is the motion (Tao et al. 2020, "residual frames")."""

    def __init__(self, mean, std, residual: bool = False):
        super().__init__()
        self.residual = residual
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 1, 3, 1, 1), persistent=False)

    def forward(self, frames: torch.Tensor, lead: tuple[int, ...]) -> torch.Tensor:
        n, t, c, h, w = frames.shape
        frames = (frames - self.mean) / self.std
        if self.residual and t > 1:
            difference = frames[:, 1:] - frames[:, :-1]
            frames = torch.cat([difference, difference[:, -1:]], dim=1)
        return frames.permute(0, 2, 1, 3, 4).reshape(*lead, c, t, h, w)

    @classmethod
    def from_config(cls, cfg: AugmentConfig, input_: str = "rgb") -> Normalize:
        """The normalisation every path (training, evaluation, testing) applies for an encoder of `input_`
        (model.input)."""
        return cls(cfg.mean, cfg.std, residual=input_ == "residual")


class ClipAugment(nn.Module):
    """Training augmentation: random resized crop to S×S, flip, colour jitter, grayscale, blur — per clip."""

    def __init__(self, cfg: AugmentConfig, input_: str = "rgb"):
        super().__init__()
        kernel = blur_kernel_size(cfg.size)
        self.pipeline = K.VideoSequential(
            K.RandomResizedCrop((cfg.size, cfg.size), scale=tuple(cfg.crop_scale), ratio=tuple(cfg.crop_ratio)),
            K.RandomHorizontalFlip(p=cfg.hflip_p),
            K.ColorJitter(*cfg.jitter, p=cfg.jitter_p),
            K.RandomGrayscale(p=cfg.grayscale_p),
            K.RandomGaussianBlur((kernel, kernel), sigma=tuple(cfg.blur_sigma), p=cfg.blur_p),
            data_format="BTCHW",
            same_on_frame=True,
        )
        self.normalize = Normalize.from_config(cfg, input_)

    @torch.no_grad()
    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        frames, lead = _to_frames(clips)
        return self.normalize(self.pipeline(frames), lead)


class ClipCenter(nn.Module):
    """Evaluation transform: resize the short side to S, take the centre S×S crop, normalise."""

    def __init__(self, cfg: AugmentConfig, input_: str = "rgb"):
        super().__init__()
        self.size = cfg.size
        self.normalize = Normalize.from_config(cfg, input_)

    @torch.no_grad()
    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        frames, lead = _to_frames(clips)
        n, t, c, h, w = frames.shape
        scale = self.size / min(h, w)
        new_h, new_w = max(self.size, round(h * scale)), max(self.size, round(w * scale))
        flat = frames.reshape(n * t, c, h, w)
        if (new_h, new_w) != (h, w):
            flat = F.interpolate(flat, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True)
        top, left = (new_h - self.size) // 2, (new_w - self.size) // 2
        flat = flat[:, :, top : top + self.size, left : left + self.size]
        return self.normalize(flat.reshape(n, t, c, self.size, self.size), lead)


def to_device(batch: dict, device: torch.device | str) -> dict:
    """Move a loader batch's tensors to the device (asynchronously from pinned memory on CUDA)."""
    non_blocking = torch.device(device).type == "cuda"
    return {
        key: value.to(device, non_blocking=non_blocking) if isinstance(value, torch.Tensor) else value
        for key, value in batch.items()
    }
