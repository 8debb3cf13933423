"""Device-side augmentation: shapes, one set of parameters per clip, each transform doing what it says."""

import pytest
import torch

from viewclr.config import AugmentConfig
from viewclr.data.augment import ClipAugment, ClipCenter, Normalize, blur_kernel_size
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
