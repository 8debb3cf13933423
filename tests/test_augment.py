"""Device-side augmentation: shapes, one set of parameters per clip, each transform doing what it says."""

import json
import math

import kornia.augmentation as K
import numpy as np
import pytest
import torch
from kornia.enhance import adjust_hue
from PIL import Image

from benchmarks.augment import kornia_pipeline
from viewclr.config import AugmentConfig, load_config
from viewclr.data.augment import (
    ClipAugment,
    ClipCenter,
    ColorJitter,
    Normalize,
    RandomResizedCrop,
    blur_kernel_size,
    shift_hue,
)
from viewclr.eval.predict import ten_crop

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1, 1)


def identity_config(**changes) -> AugmentConfig:
    """Everything off, full-frame crops of a square input: the pipeline should only normalise."""
    cfg = AugmentConfig(size=32, crop_scale=[1.0, 1.0], crop_ratio=[1.0, 1.0], hflip_p=0.0, jitter_p=0.0,
                        grayscale_p=0.0, blur_p=0.0)  # fmt: skip
    for key, value in changes.items():
        setattr(cfg, key, value)
    return cfg


def random_clips(*lead, t=4, h=32, w=32, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (*lead, t, h, w, 3), generator=g, dtype=torch.uint8)


def normalised(clips: torch.Tensor) -> torch.Tensor:
    """uint8 [..., T, H, W, 3] → what the pipeline should output when it changes nothing."""
    x = clips.float().div(255).movedim(-1, -4)  # [..., 3, T, H, W]
    return (x - MEAN) / STD


def test_shape_dtype_layout():
    out = ClipAugment(AugmentConfig(size=24))(random_clips(2, 3, t=4, h=40, w=60))
    assert out.shape == (2, 3, 3, 4, 24, 24) and out.dtype == torch.float32


def test_identity_settings_only_normalise():
    clips = random_clips(2)
    torch.testing.assert_close(ClipAugment(identity_config())(clips), normalised(clips), atol=1e-5, rtol=0)


def test_flip():
    clips = random_clips(2)
    out = ClipAugment(identity_config(hflip_p=1.0))(clips)
    torch.testing.assert_close(out, normalised(clips).flip(-1), atol=1e-5, rtol=0)


def test_grayscale_makes_channels_equal():
    out = ClipAugment(identity_config(grayscale_p=1.0))(random_clips(2))
    rgb = out * STD + MEAN
    torch.testing.assert_close(rgb[:, 0], rgb[:, 1], atol=1e-5, rtol=0)
    torch.testing.assert_close(rgb[:, 1], rgb[:, 2], atol=1e-5, rtol=0)


def test_blur_removes_fine_detail():
    checker = ((torch.arange(32)[:, None] + torch.arange(32)[None, :]) % 2 * 255).to(torch.uint8)
    clips = checker[None, None, :, :, None].expand(1, 4, 32, 32, 3).contiguous()
    sharp = ClipAugment(identity_config())(clips)
    blurred = ClipAugment(identity_config(blur_p=1.0, blur_sigma=[2.0, 2.0]))(clips)
    assert blurred.std() < 0.2 * sharp.std()


@pytest.mark.parametrize("setting", [{}, {"hflip_p": 0.5, "jitter_p": 1.0, "grayscale_p": 0.5, "blur_p": 0.5}])
def test_same_parameters_on_every_frame_of_a_clip(setting):
    """A clip of T identical frames stays T identical frames: crop, flip, jitter and blur are per clip."""
    torch.manual_seed(0)
    frame = random_clips(1, t=1, h=40, w=56)
    clips = frame.expand(16, 6, 40, 56, 3).contiguous()  # 16 clips of one repeated frame
    out = ClipAugment(AugmentConfig(size=32, **setting))(clips)
    torch.testing.assert_close(out, out[:, :, :1].expand_as(out), atol=1e-5, rtol=0)
    # ... while different clips (x, x′, x″ of a video) get different parameters
    assert not torch.allclose(out[0], out[1])


def test_center_transform():
    clips = random_clips(2, t=3, h=40, w=40)
    out = ClipCenter(AugmentConfig(size=40))(clips)
    torch.testing.assert_close(out, normalised(clips), atol=1e-5, rtol=0)
    wide = torch.zeros(1, 2, 32, 64, 3, dtype=torch.uint8)
    wide[..., 16:48, :] = 255  # the centre square is white, the sides black
    centre = ClipCenter(AugmentConfig(size=32))(wide) * STD + MEAN
    assert centre.shape == (1, 3, 2, 32, 32) and centre.min() > 0.99


def test_rejects_float_input_and_kernel_size():
    with pytest.raises(ValueError, match="uint8"):
        ClipAugment(AugmentConfig())(torch.zeros(1, 4, 8, 8, 3))
    assert blur_kernel_size(128) == 13 and blur_kernel_size(224) == 23 and blur_kernel_size(16) == 3


def test_residual_frames_are_differences_of_normalised_frames():
    clips = random_clips(2, t=5)
    x = normalised(clips)  # [2, 3, 5, H, W]
    expected = torch.cat([x[:, :, 1:] - x[:, :, :-1], x[:, :, -1:] - x[:, :, -2:-1]], dim=2)
    out = ClipAugment(identity_config(), "residual")(clips)
    assert out.shape == x.shape  # the clip keeps its T frames (the last difference repeated)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_residual_frames_of_a_still_clip_are_zero_with_motion_only_where_it_moves():
    clips = random_clips(1, t=1).expand(1, 5, 32, 32, 3).contiguous()  # one frame, held
    clips[0, 2, 10:12, 20:22] = 255 - clips[0, 2, 10:12, 20:22]  # something changes in frame 2 only
    out = ClipCenter(AugmentConfig(size=32), "residual")(clips)[0]  # [3, T, H, W]
    moved = out.abs().sum(0) > 0  # [T, H, W]
    for t in (0, 3, 4):  # 0→1, 3→4 and its repeat: nothing moves
        assert moved[t].sum() == 0
    for t in (1, 2):  # 1→2 and 2→3: exactly the changed pixels
        assert moved[t, 10:12, 20:22].all() and moved[t].sum() == 4


@pytest.mark.parametrize("crops", [1, 10])
def test_every_path_sees_the_same_input_kind(crops):
    """Training (ClipAugment), feature extraction (ClipCenter) and testing (ten_crop) all give residual frames
    when the config says so: an encoder trained on them must be tested on them."""
    cfg = AugmentConfig(size=32)
    still = random_clips(1, t=1).expand(2, 4, 32, 32, 3).contiguous()
    assert ClipAugment(identity_config(), "residual")(still).abs().max() == 0
    assert ClipCenter(cfg, "residual")(still).abs().max() == 0
    assert ten_crop(still, 32, crops, Normalize.from_config(cfg, "residual")).abs().max() == 0
    assert ten_crop(still, 32, crops, Normalize.from_config(AugmentConfig(size=32))).abs().max() > 0  # rgb


def photographs(side: int = 96) -> torch.Tensor:
    """Real photographs that ship with the dependencies (matplotlib's Grace Hopper, scikit-learn's China and
    flower), resized to side×side: float [3 images, 3, side, side] in [0, 1]."""
    from matplotlib import cbook
    from sklearn.datasets import load_sample_images

    images = [np.asarray(Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB"))]
    images += list(load_sample_images().images)
    resized = [np.asarray(Image.fromarray(image).resize((side, side), Image.BILINEAR)) for image in images]
    return torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2).float().div(255)


# The stated tolerance: the exact hue rotation agrees with kornia's RGB → HSV → RGB round trip to float32 rounding.
HUE_TOLERANCE = 1e-5


@pytest.mark.parametrize("turns", [0.0, 0.03, -0.1, 0.25, 0.5, -0.5])
def test_hue_shift_matches_the_hsv_round_trip_on_real_photographs(turns):
    photos = photographs()
    angle = torch.full((len(photos),), turns * 2 * math.pi)
    ours, reference = shift_hue(photos, angle), adjust_hue(photos, angle)
    assert (ours - reference).abs().max() <= HUE_TOLERANCE
    if turns not in (0.0,):  # and it does change the colours (by a lot at half a turn)
        assert (ours - photos).abs().mean() > (0.002 if abs(turns) < 0.05 else 0.02)
    # value (max) and HSV saturation are what a hue rotation keeps
    torch.testing.assert_close(ours.amax(1), photos.amax(1), atol=HUE_TOLERANCE, rtol=0)
    torch.testing.assert_close(ours.amax(1) - ours.amin(1), photos.amax(1) - photos.amin(1), atol=2e-5, rtol=0)


def test_hue_shift_of_primaries_greys_and_one_angle_per_image():
    pixels = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.5], [0.0, 0.0, 0.0]])
    images = pixels.view(4, 3, 1, 1)
    third = 2 * math.pi / 3  # red → green → blue: a third of a turn each
    out = shift_hue(images, torch.tensor([third, third, 1.0, -2.0])).view(4, 3)
    torch.testing.assert_close(out, torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.5, 0.5], [0.0] * 3]))


def test_color_jitter_is_kornias_with_the_hue_step_replaced():
    """The same seed draws the same factors and order as kornia's ColorJitter; outputs agree to the tolerance."""
    photos = photographs(48).repeat(4, 1, 1, 1)  # 12 images: some gated off (p 0.8), each its own factors
    torch.manual_seed(3)
    reference = K.ColorJitter(0.4, 0.4, 0.4, 0.5, p=0.8)(photos)
    torch.manual_seed(3)
    ours = ColorJitter(0.4, 0.4, 0.4, 0.5, p=0.8)(photos)
    assert (ours - reference).abs().max() <= HUE_TOLERANCE
    assert (ours - photos).abs().flatten(1).amax(1).gt(0.05).sum() >= 6  # most images were changed


@pytest.mark.parametrize("step", ["brightness", "contrast", "saturation"])
def test_each_colour_step_is_kornias_formula(step):
    """Each step alone (order and factors drawn by kornia) against K.ColorJitter with only that step."""
    photos = photographs(48).repeat(3, 1, 1, 1)
    settings = {"brightness": (0.6, 0, 0, 0), "contrast": (0, 0.6, 0, 0), "saturation": (0, 0, 0.6, 0)}[step]
    torch.manual_seed(4)
    reference = K.ColorJitter(*settings, p=1.0)(photos)
    torch.manual_seed(4)
    ours = ColorJitter(*settings, p=1.0)(photos)
    assert (ours - reference).abs().max() <= HUE_TOLERANCE
    assert (ours - photos).abs().mean() > 0.02


def test_crop_resizes_a_clip_at_a_time_with_kornias_boxes_and_numbers():
    clips = photographs(64)[:, None].expand(3, 5, 3, 64, 64).repeat(4, 1, 1, 1, 1)  # 12 clips × 5 frames
    kwargs = {"size": (40, 40), "scale": (0.2, 1.0)}
    torch.manual_seed(6)
    reference = K.VideoSequential(K.RandomResizedCrop(**kwargs), data_format="BTCHW", same_on_frame=True)(clips)
    torch.manual_seed(6)
    ours = K.VideoSequential(RandomResizedCrop(**kwargs), data_format="BTCHW", same_on_frame=True)(clips)
    assert torch.equal(ours, reference)
    assert not torch.equal(ours[0], ours[3])  # one box per clip: the same photo cropped differently


def test_training_augmentation_equals_the_kornia_pipeline_it_replaces():
    """ClipAugment at the default settings against kornia's own steps (K.ColorJitter's HSV hue) on clips of real
    photographs: same seed, same output to the hue tolerance."""
    cfg = AugmentConfig(size=40)
    clips = (photographs(64) * 255).round().to(torch.uint8).permute(0, 2, 3, 1)  # [3, 64, 64, 3]
    clips = clips[:, None].expand(3, 4, 64, 64, 3).repeat(2, 1, 1, 1, 1)  # 6 clips of 4 frames
    kornia_steps = kornia_pipeline(load_config(None, ["augment.size=40"]))
    augment = ClipAugment(cfg)
    torch.manual_seed(5)
    ours = augment(clips)
    torch.manual_seed(5)
    frames = clips.permute(0, 1, 4, 2, 3).float().div(255)
    reference = augment.normalize(kornia_steps(frames), (6,))
    assert (ours - reference).abs().max() <= HUE_TOLERANCE / 0.224  # normalised by the smallest std


def test_steps_that_never_apply_are_left_out():
    steps = [type(m).__name__ for m in ClipAugment(identity_config(hflip_p=0.5, blur_p=0.0)).pipeline.children()]
    assert steps == ["RandomResizedCrop", "RandomHorizontalFlip"]
    steps = [type(m).__name__ for m in ClipAugment(AugmentConfig()).pipeline.children()]
    every = ["RandomResizedCrop", "RandomHorizontalFlip", "ColorJitter", "RandomGrayscale", "RandomGaussianBlur"]
    assert steps == every


def test_the_augmentation_benchmark_times_both_pipelines(capsys):
    from benchmarks.augment import main

    assert main(["--rounds", "1", "data.batch_size=2", "data.frames=2"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result["ms"]) == {
        "augmentation, kornia",
        "augmentation, viewclr",
        "hue step, kornia (HSV round trip)",
        "hue step, viewclr (shift_hue)",
    }
    assert all(value > 0 for value in result["ms"].values()) and result["speedup"]["hue"] > 0
