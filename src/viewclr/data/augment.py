"""Batched, clip-consistent augmentation on the training device (kornia), and normalisation.

Paper §4.2: clip-wise consistent random crops, horizontal flips, Gaussian blur and colour jittering; CoCLR's
values by default (crop area 0.2–1, jitter 0.4/0.4/0.4/0.1 with p 0.8, grayscale p 0.2, blur σ 0.1–2 p 0.5).
"Clip-consistent" means one set of parameters per clip, shared by all its frames; different clips of a batch
(and x, x′, x″ of one video) get different parameters.

The steps are kornia's (its parameter generators, probability gates and VideoSequential); two are done here in
fewer passes because kornia's are slow on a CPU — the colour jitter (its HSV hue round trip and torch.where
selects) and the crop's resize (one call per frame) — with the same numbers to float rounding
(tests/test_augment.py compares them with kornia's on real photographs; benchmarks/augment.py times both).

Input: uint8 [..., T, H, W, 3] as the loader yields it; output: float [..., 3, T, S, S], normalised — the
layout 3D CNNs take.
"""

from __future__ import annotations

import math

import kornia.augmentation as K
import torch
import torch.nn.functional as F
from kornia.color import rgb_to_grayscale
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


def shift_hue(images: torch.Tensor, radians: torch.Tensor) -> torch.Tensor:
    """Rotate the hue of RGB images [N, 3, H, W] in [0, 1] by `radians` [N] (one angle per image), keeping HSV's
    saturation and value: the result of RGB → HSV, h + angle, HSV → RGB (kornia.enhance.adjust_hue, torchvision's
    adjust_hue) to float rounding, without building the HSV image.

    Per pixel, v = max, m = min, c = v − m; the hue in sextants h ∈ [0, 6) comes from which channel is largest;
    after the shift each output channel is m + c·t(h′), t the trapezoid of the HSV → RGB formula. Two passes
    fewer than the round trip, no gather, no select: about a fifth of kornia's time on a CPU."""
    r, g, b = images.unbind(-3)
    v = torch.maximum(torch.maximum(r, g), b)
    m = torch.minimum(torch.minimum(r, g), b)
    c = v - m
    # Which channel is the largest (the first of equals, as torch.max picks it), as one-hot weights: arithmetic,
    # because torch.where and masked_fill run ~20× slower than a multiply on a CPU.
    r_max = (r == v).to(images.dtype)
    g_max = (g == v).to(images.dtype).mul_(1.0 - r_max)
    b_max = 1.0 - r_max - g_max
    hue = (g - b).mul_(r_max).addcmul_(b - r, g_max).addcmul_(r - g, b_max).div_(c.clamp_min(1e-12))
    hue.add_(g_max, alpha=2.0).add_(b_max, alpha=4.0)  # sextants: red 0, green 2, blue 4 (grey: c = 0, hue 0)
    hue.add_((radians * (3.0 / math.pi)).reshape(-1, *([1] * (hue.dim() - 1)))).remainder_(6.0)
    out = torch.empty_like(images)
    t = torch.empty_like(hue)
    torch.sub(hue, 3.0, out=t).abs_().sub_(1.0).clamp_(0.0, 1.0)  # red: |h − 3| − 1
    torch.addcmul(m, c, t, out=out[:, 0])
    torch.sub(hue, 2.0, out=t).abs_().neg_().add_(2.0).clamp_(0.0, 1.0)  # green: 2 − |h − 2|
    torch.addcmul(m, c, t, out=out[:, 1])
    torch.sub(hue, 4.0, out=t).abs_().neg_().add_(2.0).clamp_(0.0, 1.0)  # blue: 2 − |h − 4|
    torch.addcmul(m, c, t, out=out[:, 2])
    return out


def _per_image(factor: torch.Tensor) -> torch.Tensor:
    return factor.view(-1, 1, 1, 1)


def _brightness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (images * _per_image(factor)).clamp_(0.0, 1.0)


def _contrast(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with the image's mean grey level."""
    mean = rgb_to_grayscale(images).mean((-2, -1), keepdim=True)
    return (images * _per_image(factor)).add_(mean * _per_image(1.0 - factor)).clamp_(0.0, 1.0)


def _saturation(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with the image's grey levels."""
    grey = rgb_to_grayscale(images)
    return torch.addcmul(images * _per_image(factor), grey, _per_image(1.0 - factor)).clamp_(0.0, 1.0)


def _hue(images: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    return shift_hue(images, turns * (2.0 * math.pi))


class ColorJitter(K.ColorJitter):
    """kornia's ColorJitter — torchvision's four steps (brightness multiplies, contrast blends with the mean grey
    level, saturation with the grey image, hue rotates) in a random order, each factor drawn per image, the
    probability gate per image — with the steps done in plain arithmetic and the hue by `shift_hue`.

    The parameters, their order and the gate are kornia's own (its generator draws them, so a seed draws the same
    jitter as K.ColorJitter, to float rounding: tests/test_augment.py). kornia's steps select with torch.where
    and its hue converts to HSV and back, which made the jitter ~70 % of the whole augmentation's time on a CPU."""

    _STEPS = (
        ("brightness_factor", 1.0, _brightness),
        ("contrast_factor", 1.0, _contrast),
        ("saturation_factor", 1.0, _saturation),
        ("hue_factor", 0.0, _hue),
    )

    def apply_transform(self, input, params, flags, transform=None):  # noqa: A002 (kornia's signature)
        out = input.clamp(0.0, 1.0)
        for index in params["order"].tolist():
            key, neutral, step = self._STEPS[index]
            factor = params[key].to(out)
            if (factor != neutral).any():
                out = step(out, factor)
        return out


class RandomResizedCrop(K.RandomResizedCrop):
    """kornia's RandomResizedCrop (its boxes, drawn by its generator), resized one clip at a time: the frames of a
    clip share one box (same_on_frame), and kornia resizes each frame on its own (a call per frame, ~500 a
    batch). The same bilinear interpolation, so the same output."""

    def apply_transform(self, input, params, flags, transform=None):  # noqa: A002 (kornia's signature)
        if flags.get("cropping_mode") != "slice" or flags["resample"].name.lower() != "bilinear":
            return super().apply_transform(input, params, flags, transform)
        src = params["src"].to(torch.long)
        boxes = torch.stack([src[:, 0, 1], src[:, 3, 1] + 1, src[:, 0, 0], src[:, 1, 0] + 1], dim=1).tolist()
        size = tuple(flags["size"])
        out = input.new_empty(len(input), input.shape[1], *size)
        start = 0
        while start < len(input):
            end = start + 1
            while end < len(input) and boxes[end] == boxes[start]:
                end += 1
            top, bottom, left, right = boxes[start]
            crop = input[start:end, :, top:bottom, left:right]
            if crop.shape[-2:] != size:
                crop = F.interpolate(crop, size=size, mode="bilinear", align_corners=flags["align_corners"])
            out[start:end] = crop
            start = end
        return out


class ClipAugment(nn.Module):
    """Training augmentation: random resized crop to S×S, flip, colour jitter, grayscale, blur — per clip."""

    def __init__(self, cfg: AugmentConfig, input_: str = "rgb"):
        super().__init__()
        kernel = blur_kernel_size(cfg.size)
        steps = [RandomResizedCrop((cfg.size, cfg.size), scale=tuple(cfg.crop_scale), ratio=tuple(cfg.crop_ratio))]
        # A step that never applies is left out: kornia still draws and copies for it (the blur at p=0 cost as
        # much as the crop).
        if cfg.hflip_p > 0:
            steps.append(K.RandomHorizontalFlip(p=cfg.hflip_p))
        if cfg.jitter_p > 0 and any(cfg.jitter):
            steps.append(ColorJitter(*cfg.jitter, p=cfg.jitter_p))
        if cfg.grayscale_p > 0:
            steps.append(K.RandomGrayscale(p=cfg.grayscale_p))
        if cfg.blur_p > 0:
            steps.append(K.RandomGaussianBlur((kernel, kernel), sigma=tuple(cfg.blur_sigma), p=cfg.blur_p))
        self.pipeline = K.VideoSequential(*steps, data_format="BTCHW", same_on_frame=True)
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
