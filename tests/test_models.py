"""Models: S3D's layout and split, heads, gradient reversal, and the geometry of the Neural Projection Layer."""

import math
from pathlib import Path

import pytest
import torch

from viewclr.errors import ConfigError
from viewclr.models import (
    S3D,
    NeuralProjection,
    ProjectionHead,
    ViewpointGenerator,
    build_backbone,
    reverse_gradient,
    rotation_angle,
    rotation_from_6d,
    splat,
    split_shape,
)
from viewclr.models.npl import LiftingCamera, project, splat3d, to_world, view_change

TORCHVISION_KEYS = Path(__file__).parent / "data" / "torchvision_s3d_keys.txt"


def torchvision_layout() -> dict[str, tuple[int, ...]]:
    """torchvision.models.video.s3d(num_classes=400)'s state-dict keys and shapes, as listed in the test data."""
    layout = {}
    for line in TORCHVISION_KEYS.read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape = line.split()
            layout[key] = () if shape == "-" else tuple(int(s) for s in shape.split("x"))
    return layout


# ---------------------------------------------------------------------------------------------- S3D


def test_s3d_matches_torchvision_layout_and_loads_its_weights_strictly():
    model = S3D(width=1.0, num_classes=400)
    layout = torchvision_layout()
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == layout
    assert sum(p.numel() for p in model.parameters()) == 8_320_048  # torchvision's documented count
    weights = {k: torch.randn(shape) if shape else torch.tensor(0) for k, shape in layout.items()}
    model.load_state_dict(weights, strict=True)
    assert torch.equal(model.features[6].branch1[1][1][0].weight, weights["features.6.branch1.1.1.0.weight"])


def test_s3d_split_at_the_papers_setting():
    model = S3D(width=1.0).eval()
    x = torch.randn(2, 3, 32, 128, 128)
    with torch.no_grad():
        h = model.f1(x)
        assert h.shape == (2, 480, 16, 16, 16) and model.split_channels == 480
        out = model.f2(h)
        assert out.shape == (2, 1024, 4, 4, 4)
        assert torch.equal(out, model.forward_features(x))  # f2(f1(x)) is the whole network, exactly
        assert torch.equal(model(x), out.mean(dim=(2, 3, 4)))
    assert split_shape(model, 32, 128) == (480, 16, 16, 16)
    assert split_shape(model, 16, 64) == (480, 8, 8, 8)


@pytest.mark.parametrize("width, split, out", [(0.25, 120, 256), (0.5, 240, 512)])
def test_s3d_width_multiplier(width, split, out):
    model = build_backbone("s3d", width=width)
    assert (model.split_channels, model.out_channels) == (split, out)
    x = torch.randn(2, 3, 8, 32, 32)
    features = model(x)
    assert features.shape == (2, out)
    features.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    params = sum(p.numel() for p in model.parameters())
    assert params < 8_320_048 * width  # channels scale by w, most weights by w²


def test_unknown_backbone_names_the_config_key():
    with pytest.raises(ConfigError, match="model.backbone.*s3d"):
        build_backbone("resnet9000")


# ---------------------------------------------------------------------------------------------- heads


def test_projection_head_is_l2_normalised():
    z = ProjectionHead(64, 128)(torch.randn(5, 64))
    assert z.shape == (5, 128)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(5))


def test_gradient_reversal_flips_and_scales_exactly():
    x = torch.randn(4, 3, requires_grad=True)
    upstream = torch.randn(4, 3)
    y = reverse_gradient(x, 0.3)
    assert torch.equal(y, x)
    y.backward(upstream)
    assert torch.equal(x.grad, -0.3 * upstream)
    x.grad = None
    reverse_gradient(x, 2.0).backward(upstream)
    assert torch.equal(x.grad, -2.0 * upstream)


# ---------------------------------------------------------------------------------------------- NPL geometry


def rot_y(degrees: float) -> torch.Tensor:
    a = math.radians(degrees)
    return torch.tensor([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])


def test_rotations_from_6d_are_proper_and_the_identity_is_exact():
    r = rotation_from_6d(torch.randn(100, 6))
    torch.testing.assert_close(r @ r.transpose(1, 2), torch.eye(3).expand(100, 3, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(100), atol=1e-5, rtol=0)
    assert torch.equal(rotation_from_6d(torch.tensor([1.0, 0, 0, 0, 1, 0])), torch.eye(3))
    assert rotation_angle(rot_y(90)).item() == pytest.approx(90.0, abs=1e-3)


def test_identity_pose_and_lifting_camera_return_the_input_whatever_the_depth():
    layer = NeuralProjection(channels=6, height=8, width=10).eval()
    with torch.no_grad():  # arbitrary per-pixel depths: a point lifted along its pixel's ray projects back onto it
        layer.coordinates[-1].weight[2].normal_(0, 0.5)
    features = torch.randn(2, 6, 3, 8, 10)
    out = layer(features)
    depth_spread = out.world[:, -1].std()  # z of the world points
    assert depth_spread > 0.1
    torch.testing.assert_close(out.view, features, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.mass, torch.ones(2, 3, 8, 10), atol=1e-5, rtol=0)


def test_a_90_degree_turn_lands_where_the_analytic_projection_says():
    camera = LiftingCamera(height=16, width=16, depth=2.0)  # focal 8, centre (7.5, 7.5)
    points = torch.tensor([[[0.5, 0.0, 0.0], [0.5, 0.3, 0.0], [0.0, 0.0, 0.5], [0.0, -0.4, 0.0]]])
    world = to_world(points, rot_y(90)[None], torch.zeros(1, 3))
    # Rᵀ = R_y(−90°) maps (x, y, z) → (−z, y, x)
    torch.testing.assert_close(world[0], torch.tensor([[0, 0, 0.5], [0, 0.3, 0.5], [-0.5, 0, 0], [0, -0.4, 0.0]]))
    u, v, depth = project(world, torch.eye(3), torch.tensor([8.0, 8.0]), torch.tensor([7.5, 7.5]), camera.depth)
    # on the vertical axis through the centre, 0.5 m further: u = 7.5, v = 7.5 + 8·y/2.5
    torch.testing.assert_close(u[0], torch.tensor([7.5, 7.5, 7.5 - 8 * 0.5 / 2.0, 7.5]))
    torch.testing.assert_close(v[0], torch.tensor([7.5, 7.5 + 8 * 0.3 / 2.5, 7.5, 7.5 - 8 * 0.4 / 2.0]))
    torch.testing.assert_close(depth[0], torch.tensor([2.5, 2.5, 2.0, 2.0]))


def test_splatting_is_bilinear_and_conserves_mass():
    sums, weights = splat(torch.tensor([[[2.0]]]), torch.tensor([[3.25]]), torch.tensor([[5.5]]), height=8, width=8)
    assert weights[0, 5, 3] == pytest.approx(0.75 * 0.5) and weights[0, 6, 4] == pytest.approx(0.25 * 0.5)
    assert sums[0, 5, 4, 0] == pytest.approx(2 * 0.25 * 0.5) and weights.sum() == pytest.approx(1.0)
    generator = torch.Generator().manual_seed(0)
    u = torch.rand(3, 500, generator=generator) * 14 - 3  # columns −3 … 11 on a 8-wide grid
    v = torch.rand(3, 500, generator=generator) * 10 - 1
    _, weights = splat(torch.ones(3, 500, 1), u, v, height=6, width=8)
    inside = ((u >= 0) & (u <= 7) & (v >= 0) & (v <= 5)).sum(1).float()
    far = ((u < -1) | (u > 8) | (v < -1) | (v > 6)).sum(1).float()
    border = 500 - inside - far  # partly on the grid: between 0 and 1 each
    total = weights.sum(dim=(1, 2))
    assert (total >= inside - 1e-3).all() and (total <= inside + border + 1e-3).all()
    _, inner = splat(torch.ones(1, 200, 1), u[:1, :200].clamp(0, 7), v[:1, :200].clamp(0, 5), height=6, width=8)
    assert inner.sum().item() == pytest.approx(200.0, abs=1e-3)  # all inside: exactly the number of points


def test_gradients_reach_every_part_of_the_generator():
    torch.manual_seed(0)
    generator = ViewpointGenerator(channels=8, height=6, width=6, hidden=16, low_dim=4)
    layer = generator.projection
    with torch.no_grad():  # leave the identity so that every path carries gradient
        layer.coordinates[-1].weight.normal_(0, 0.1)
        layer.pose.weight.normal_(0, 0.1)
        layer.camera_rotation.add_(torch.randn(6) * 0.1)
        layer.offset.add_(torch.randn(2) * 0.3)
    features = torch.randn(2, 8, 3, 6, 6, requires_grad=True)
    out = generator(features)
    loss = (
        (out.view * torch.randn_like(out.view)).sum() + out.code.sum() + (out.reconstruction - out.inter).pow(2).mean()
    )
    loss.backward()
    named = dict(generator.named_parameters())
    for name in (
        "coordinates.0.weight",
        "coordinates.6.weight",
        "pose.weight",
        "camera_rotation",
        "log_scale",
        "offset",
    ):
        grad = named[f"projection.{name}"].grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
    assert named["autoencoder.encoder.weight"].grad.abs().sum() > 0
    assert torch.isfinite(features.grad).all() and features.grad.abs().sum() > 0


def test_at_initialisation_the_generator_is_the_identity_and_can_leave_it():
    generator = ViewpointGenerator(channels=8, height=6, width=6, hidden=16)
    features = torch.randn(2, 8, 4, 6, 6)
    out = generator(features)
    assert torch.equal(out.view, features)
    assert rotation_angle(out.rotation).abs().max() < 1e-3 and out.translation.abs().max() == 0
    (out.view * torch.randn_like(out.view)).sum().backward()
    assert generator.projection.coordinates[-1].weight.grad.abs().sum() > 0  # the zero layers get gradient
    assert generator.projection.pose.weight.grad.abs().sum() > 0


def test_generator_on_the_papers_split_shape():
    generator = ViewpointGenerator(480, 16, 16).eval()
    with torch.no_grad():
        generator.projection.pose.weight.normal_(0, 0.01)
        h = torch.randn(2, 480, 16, 16, 16)
        out = generator(h)
    assert out.view.shape == h.shape and out.world.shape == (2, 483, 16, 16, 16)
    assert out.inter.shape == (2, 483 * 16 * 16) and out.code.shape == (2, 128)
    torch.testing.assert_close(out.code.norm(dim=1), torch.ones(2))
    # every slice is its own image: one sample's output does not depend on the other's
    with torch.no_grad():
        alone = generator(h[1:])
    torch.testing.assert_close(alone.view, out.view[1:], atol=1e-5, rtol=1e-5)


def test_generator_from_config_fits_the_backbone_split():
    from viewclr.config import load_config

    cfg = load_config(None, ["model.width=0.25", "model.npl_hidden=8", "model.low_dim=16"])
    backbone = build_backbone(cfg.model.backbone, cfg.model.width)
    shape = split_shape(backbone, 8, 64)
    generator = ViewpointGenerator.from_config(cfg.model, shape)
    h = backbone.f1(torch.randn(2, 3, 8, 64, 64))
    out = generator(h)
    assert h.shape[1:] == shape and out.view.shape == h.shape and out.code.shape == (2, 16)


# ---------------------------------------------------------------------------------------------- eq. 1: voxels


def test_voxel_splatting_conserves_mass_and_keeps_each_points_position():
    generator = torch.Generator().manual_seed(0)
    size = 5
    inside = torch.rand(2, 300, 3, generator=generator) * (size - 1)  # every corner on the grid
    grid = splat3d(torch.ones(2, 300, 1), inside, size)
    torch.testing.assert_close(grid.sum(dim=(1, 2, 3, 4)), torch.full((2,), 300.0))  # mass conserved exactly
    far = torch.rand(1, 50, 3, generator=generator) * 3 + size + 1  # wholly off the grid
    assert splat3d(torch.ones(1, 50, 1), far, size).sum() == 0
    # one point: the weighted mean position of what it left is the point itself (trilinear weights)
    point = torch.tensor([[[1.3, 2.7, 0.4]]])
    weights = splat3d(torch.ones(1, 1, 1), point, size)[0, ..., 0]  # [z, y, x]
    z, y, x = torch.meshgrid(*(torch.arange(size, dtype=torch.float32),) * 3, indexing="ij")
    centroid = torch.stack([(weights * c).sum() for c in (x, y, z)])
    torch.testing.assert_close(centroid, point[0, 0])
    assert weights[0, 2, 1] == pytest.approx(0.7 * 0.3 * 0.6)  # the voxel at (x 1, y 2, z 0)


def test_a_known_rotation_turns_the_voxel_world_where_it_should():
    """Identity pose: the lifted points (depth d₀, no offsets) lie in the plane z = 0 through the scene centre, so
    F_W's mass sits in the grid's middle z-layer; a pose of 90° about the vertical axis puts them in the plane
    x = 0, the middle x-layer, and their spread along x becomes a spread along z."""
    layer = NeuralProjection(4, 6, 6, hidden=8, world="voxels", voxel_size=9, voxel_channels=1)
    with torch.no_grad():  # the reduced channel is 1 at every pixel: its grid is where the points went
        layer.reduce.weight.zero_()
        layer.reduce.bias.fill_(1.0)
    features = torch.randn(1, 4, 2, 6, 6)
    mass = layer(features).world[0, 0]  # [T, D, D, D] = [t, z, y, x]
    assert layer(features).world.shape == (1, 1 + 3, 2, 9, 9, 9)
    torch.testing.assert_close(mass.sum(dim=(1, 2, 3)), torch.full((2,), 36.0))  # all 6×6 points inside
    torch.testing.assert_close(mass[:, 4].sum(dim=(1, 2)), torch.full((2,), 36.0))  # the middle z-layer only
    with torch.no_grad():
        layer.pose.bias.copy_(torch.tensor([0.0, 0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]))  # R: 90° about y
    turned = layer(features).world[0, 0]
    torch.testing.assert_close(turned[..., 4].sum(dim=(1, 2)), torch.full((2,), 36.0))  # the middle x-layer only
    # what was spread along x now spreads along z (p_w = Rᵀp = (0, y, x)): the profiles are the same
    torch.testing.assert_close(turned.sum(dim=(2, 3)), mass.sum(dim=(1, 2)))


def test_voxel_world_generator_shapes_and_gradients():
    torch.manual_seed(0)
    generator = ViewpointGenerator(8, 4, 4, hidden=8, low_dim=6, world="voxels", voxel_size=3, voxel_channels=5)
    out = generator(torch.randn(2, 8, 3, 4, 4))
    assert out.world.shape == (2, 5 + 3, 3, 3, 3, 3) and out.inter.shape == (2, 8 * 27) and out.code.shape == (2, 6)
    out.code.sum().backward()
    assert generator.projection.reduce.weight.grad.abs().sum() > 0  # L3D's path reaches the channel reduction


def test_the_view_change_is_the_learned_camera_against_the_pose():
    turn = rotation_from_6d(torch.tensor([0.0, 0.0, -1.0, 0.0, 1.0, 0.0]))  # 90° about y
    assert rotation_angle(view_change(turn, turn)).item() == pytest.approx(0.0, abs=1e-4)  # R = R_K: no change
    assert rotation_angle(view_change(turn, torch.eye(3))).item() == pytest.approx(90.0, abs=1e-3)
    assert rotation_angle(view_change(torch.eye(3), turn @ turn)).item() == pytest.approx(180.0, abs=1e-2)
