"""The synthetic multi-view benchmark: body geometry, actions, cameras, rendering, files, determinism, and the
viewpoint gap that makes it a cross-view benchmark."""

import json
from collections import Counter

import av
import numpy as np
import pytest
from helpers import checksums, make_decoy
from PIL import Image

from viewclr.cli import main
from viewclr.config import DataConfig
from viewclr.data.index import CACHE_MANIFEST
from viewclr.data.loader import ClipDataset
from viewclr.data.ntu import CS_TRAIN_SUBJECTS, parse_name, view_of
from viewclr.data.registry import build_split, get_dataset
from viewclr.data.video import open_frames
from viewclr.errors import ConfigError, DatasetError
from viewclr.synth import CLASSES, SynthMetadata, SynthSettings, generate
from viewclr.synth.actions import ACTIONS, MotionParams, pose
from viewclr.synth.analysis import nearest_neighbour_by_view
from viewclr.synth.body import JOINTS, J, forward_kinematics, random_actor, skeleton
from viewclr.synth.camera import look_at, orbit_camera, relative_azimuth
from viewclr.synth.generate import RENDERING, build_metadata, render_performance
from viewclr.synth.preview import GAP, HEADER, LABEL_WIDTH, contact_sheet
from viewclr.synth.render import Capsule, Ellipsoid, _capsule_depth, _ellipsoid_depth, _ray_products
from viewclr.synth.world import make_performance, make_setup

TINY = SynthSettings(subjects=3, classes=2, size=64, frames=16)


def still(action: int = 1, amplitude: float = 1.0) -> MotionParams:
    """A performance without jitter or sway, the action spanning the whole video."""
    return MotionParams(0.0, 1.0, amplitude, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


@pytest.fixture(scope="module")
def actor():
    return random_actor(np.random.default_rng(5))


def posed(actor, action: int, frames: int = 41):
    skel = skeleton(actor)
    return forward_kinematics(skel, pose(actor, ACTIONS[action - 1], still(), frames, facing=0.0)).joints, skel


# ---------------------------------------------------------------------------------------------- body and actions


def test_rest_pose_stands_on_the_floor_at_the_actor_height_and_is_symmetric(actor):
    joints, skel = posed(actor, 1)
    rest = joints[0]  # u = 0: the action has not started
    feet = rest[[J["l_ankle"], J["r_ankle"], J["l_foot"], J["r_foot"]], 1]
    assert feet.min() == pytest.approx(skel.radii["foot"], abs=1e-9)
    top = rest[J["head"], 1] + skel.radii["head_y"]
    assert top == pytest.approx(actor.height, rel=0.03)
    for name in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle", "foot"):
        left, right = rest[J[f"l_{name}"]], rest[J[f"r_{name}"]]
        np.testing.assert_allclose(left * [-1, 1, 1], right, atol=1e-9)  # mirror images across x = 0
        assert left[0] > 0  # x is the actor's left
    assert len(JOINTS) >= 15


def _peak(joints):
    return joints[len(joints) // 2]  # u = 0.5: every envelope is at its plateau


def test_arm_raised_forward_and_sideways_differ_in_depth_not_height(actor):
    forward, _ = posed(actor, CLASSES.index("raise right arm forward") + 1)
    sideways, _ = posed(actor, CLASSES.index("raise right arm sideways") + 1)
    arm = 0.7 * actor.height / 1.75
    for joints, axis in ((forward, 2), (sideways, 0)):
        p = _peak(joints)
        reach = p[J["r_wrist"]] - p[J["r_shoulder"]]
        assert abs(reach[1]) < 0.2  # held at shoulder height
        assert abs(reach[axis]) > 0.8 * arm * 0.8  # along z (forward) or x (to the side)
    assert _peak(forward)[J["r_wrist"], 2] - _peak(forward)[J["r_shoulder"], 2] > 0.4
    assert _peak(sideways)[J["r_wrist"], 0] - _peak(sideways)[J["r_shoulder"], 0] < -0.4  # the actor's right


def test_steps_move_forward_or_sideways_and_squat_lowers_but_bow_bends(actor):
    fwd, _ = posed(actor, CLASSES.index("step forward") + 1)
    side, _ = posed(actor, CLASSES.index("step sideways") + 1)
    assert _peak(fwd)[J["pelvis"], 2] - fwd[0, J["pelvis"], 2] > 0.15
    assert abs(_peak(fwd)[J["pelvis"], 0] - fwd[0, J["pelvis"], 0]) < 0.02
    assert _peak(side)[J["pelvis"], 0] - side[0, J["pelvis"], 0] < -0.12
    assert abs(_peak(side)[J["pelvis"], 2] - side[0, J["pelvis"], 2]) < 0.02
    squat, _ = posed(actor, CLASSES.index("squat") + 1)
    bow, _ = posed(actor, CLASSES.index("bow") + 1)
    assert squat[0, J["pelvis"], 1] - _peak(squat)[J["pelvis"], 1] > 0.25  # the hips go down
    assert abs(bow[0, J["pelvis"], 1] - _peak(bow)[J["pelvis"], 1]) < 0.08  # the hips stay up
    assert _peak(bow)[J["head"], 2] - bow[0, J["head"], 2] > 0.35  # the head goes forward
    for joints in (squat, bow):  # the feet stay on the floor
        assert np.abs(joints[:, [J["l_foot"], J["r_foot"]], 1].min(1) - joints[0, J["l_foot"], 1]).max() < 0.03


def test_every_action_moves_and_jump_leaves_the_floor(actor):
    for action in range(1, len(ACTIONS) + 1):
        joints, _ = posed(actor, action)
        motion = np.linalg.norm(joints - joints[0], axis=-1).max()
        assert motion > 0.2, ACTIONS[action - 1].name
    jump, skel = posed(actor, CLASSES.index("jump") + 1)
    assert _peak(jump)[[J["l_foot"], J["r_foot"]], 1].min() - skel.radii["foot"] > 0.1


# ---------------------------------------------------------------------------------------------- cameras


def test_camera_projects_its_target_to_the_centre_with_an_orthonormal_rotation():
    cam = look_at(np.array([2.0, 1.5, 3.0]), np.array([0.0, 1.0, 0.0]), size=100, fov=45)
    np.testing.assert_allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(cam.R) == pytest.approx(1.0)
    np.testing.assert_allclose(cam.project(np.array([0.0, 1.0, 0.0])), [50, 50], atol=1e-9)
    # up in the world is up in the image (smaller y), and the focal length matches the field of view
    above = cam.project(np.array([0.0, 1.2, 0.0]))
    assert above[1] < 50 and abs(above[0] - 50) < 5
    assert cam.fy == pytest.approx(50 / np.tan(np.radians(22.5)))


def test_rays_go_through_the_pixels_they_belong_to():
    cam = orbit_camera(30, 10, 3.0, 1.0, size=32, fov=50)
    rays = cam.rays()
    points = cam.position + (rays * 2.0) @ cam.R  # 2 m along each ray, in world coordinates
    v, u = np.mgrid[0:32, 0:32]
    np.testing.assert_allclose(cam.project(points), np.stack([u, v], -1).reshape(-1, 2) + 0.5, atol=1e-6)


def test_ntu_rig_views_match_ntus_camera_replication_mapping():
    settings = SynthSettings(subjects=1, classes=1)
    setup = make_setup(0, 1)
    for replication in (1, 2):
        p = make_performance(settings, setup, 1, replication, 1)
        for view in p.views:
            assert view.view == str(view_of(1, view.index, replication))
            # the take's orientation jitter (±8°) is the only difference from the nominal angle
            assert abs(abs(view.azimuth) - int(view.view)) <= 8.0 + 1e-6
    assert relative_azimuth(orbit_camera(90, 0, 3, 1, 16, 40), facing=0.0) == pytest.approx(90.0)  # actor's left


# ---------------------------------------------------------------------------------------------- rendering


def test_ray_primitive_depths_are_exact():
    rays = np.array([[0.0, 0.0, 1.0], [0.0, 0.6, 0.8], [0.6, 0.0, 0.8]], np.float32)
    one = np.ones((1, 3), np.float32)
    capsule = Capsule(one * [-1, 0, 5], one * [1, 0, 5], 0.5, "skin")  # lying across the view at 5 m
    depth = _capsule_depth(capsule, rays)
    assert depth[0, 0] == pytest.approx(4.5, abs=1e-5)
    assert np.isinf(depth[0, 1])  # 3 m above the axis at 5 m depth: a miss
    end_on = Capsule(one * [0, 0, 5], one * [0, 0, 8], 0.5, "skin")  # pointing away: the ray meets its cap
    assert _capsule_depth(end_on, rays)[0, 0] == pytest.approx(4.5, abs=1e-5)
    ellipsoid = Ellipsoid(one * [0, 0, 10], np.eye(3, dtype=np.float32)[None], np.array([1, 2, 3], np.float32), "x")
    depth = _ellipsoid_depth(ellipsoid, rays, _ray_products(rays))
    assert depth[0, 0] == pytest.approx(7.0, abs=1e-4)
    assert np.isinf(depth[0, 2])  # passes 6 m to the side


@pytest.fixture(scope="module")
def front_and_side():
    """One take of 'raise right arm sideways' from NTU's 0° and 90° cameras, with its performance."""
    settings = SynthSettings(subjects=1, classes=2, size=96, frames=24)
    p = make_performance(settings, make_setup(0, 1), 1, 1, 2)
    videos = render_performance(settings, p)
    by_view = {v.view: video for v, video in zip(p.views, videos, strict=True)}
    return settings, p, by_view


def test_rendered_joints_land_on_the_body(front_and_side):
    from viewclr.synth.render import render_room
    from viewclr.synth.world import make_actor, perform

    settings, p, _ = front_and_side
    videos = render_performance(settings, p)
    _, body = perform(p, make_actor(settings.seed, 1), settings.frames)
    scene = make_setup(0, 1).scene
    for view, video in zip(p.views, videos, strict=True):
        background = render_room(scene, view.camera, p.light).image * 255
        pixels = np.floor(view.camera.project(body.joints)).astype(int)  # [F, J, 2]
        inside = (pixels >= 0).all(-1) & (pixels < settings.size).all(-1)
        f, j = np.nonzero(inside)
        drawn = video[f, pixels[f, j, 1], pixels[f, j, 0]].astype(float)
        behind = background[pixels[f, j, 1], pixels[f, j, 0]]
        changed = np.abs(drawn - behind).max(-1) > 12
        assert inside.mean() > 0.95 and changed.mean() > 0.95  # every joint sits inside some body part


def _silhouette_width(frame, background):
    mask = np.abs(frame.astype(int) - background.astype(int)).max(-1) > 30
    columns = np.flatnonzero(mask.any(0))
    return columns.max() - columns.min()


def test_the_same_pose_looks_different_from_0_and_90_degrees(front_and_side):
    settings, p, by_view = front_and_side
    peak = int((p.motion.start + p.motion.duration / 2) * (settings.frames - 1))
    widths = {v: _silhouette_width(by_view[v][peak], by_view[v][0]) for v in ("0", "90")}
    # the arm held out sideways spans the frontal image and points at the side camera
    assert widths["0"] > 1.6 * widths["90"], widths


# ---------------------------------------------------------------------------------------------- files


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    report = generate(TINY, root, workers=1, progress=False)
    assert report.rendered == report.videos == 3 * 2 * 2 * 3
    return root


def decoded(root, relative):
    with av.open(str(root / relative)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def test_same_seed_same_decoded_frames_also_in_parallel_and_another_seed_differs(tiny_root, tmp_path):
    again = generate(TINY, tmp_path / "again", workers=2, progress=False)
    other = SynthSettings(**{**TINY.__dict__, "seed": 1})
    generate(other, tmp_path / "other", workers=1, progress=False)
    names = sorted(p.name for p in (tiny_root / "nturgb+d_rgb").iterdir())
    assert len(names) == again.videos
    for name in names:
        relative = f"nturgb+d_rgb/{name}"
        assert np.array_equal(decoded(tiny_root, relative), decoded(tmp_path / "again", relative))
    first = names[0]
    assert not np.array_equal(
        decoded(tiny_root, f"nturgb+d_rgb/{first}"), decoded(tmp_path / "other", f"nturgb+d_rgb/{first}")
    )
    assert (tiny_root / "viewclr_synth.json").read_bytes() == (tmp_path / "again" / "viewclr_synth.json").read_bytes()


def test_file_names_parse_back_to_the_metadata(tiny_root):
    meta = SynthMetadata(tiny_root)
    assert len(meta.samples) == 36
    for name, s in meta.samples.items():
        n = parse_name(name)
        assert (n.setup, n.camera, n.subject, n.replication, n.action) == (
            s["setup"], s["camera"], s["subject"], s["replication"], s["action"],
        )  # fmt: skip
        assert s["view"] == str(view_of(n.setup, n.camera, n.replication))
        assert s["label"] == n.action - 1 and (tiny_root / s["path"]).is_file()
    samples = get_dataset("synth").scan(tiny_root)
    assert {s.name for s in samples} == set(meta.samples)
    assert all(s.num_frames == TINY.frames for s in samples)  # from the manifest
    with open_frames(samples[0].path) as reader:
        assert reader.read(list(range(16))).shape == (16, 64, 64, 3)


def test_metadata_holds_classes_cameras_and_joints(tiny_root):
    meta = SynthMetadata(tiny_root)
    assert meta.class_names == CLASSES[:2]
    name = "S001C001P002R002A002"
    K, R, t = meta.camera(name)
    assert K.shape == (3, 3) and R.shape == (3, 3) and t.shape == (3,)
    world, cam, pixel = (meta.joints(name, space) for space in ("world", "camera", "pixel"))
    assert world.shape == (16, len(JOINTS), 3) and pixel.shape == (16, len(JOINTS), 2)
    assert (cam[..., 2] > 1.5).all()  # in front of the camera, metres away
    np.testing.assert_allclose(pixel[..., 0], K[0, 0] * cam[..., 0] / cam[..., 2] + K[0, 2], rtol=1e-5)
    assert ((pixel > 0) & (pixel < 64)).mean() > 0.95  # the actor is in the picture
    data = json.loads((tiny_root / "viewclr_synth.json").read_text())
    assert set(data["subjects"]) == {"1", "2", "3"} and set(data["setups"]["1"]["cameras"]) == {"1", "2", "3"}


def test_every_class_for_every_subject_and_view():
    settings = SynthSettings(subjects=16, classes=12, setups=2)
    metadata, joints = build_metadata(settings)
    counts = Counter((s["subject"], s["view"], s["label"]) for s in metadata["samples"])
    # per setup, each take (R1, R2) puts one camera at each of 0°, 45°, 90°
    assert set(counts.values()) == {2 * 2} and len(counts) == 16 * 3 * 12
    assert len(joints) == 2 * 16 * 2 * 12


def test_protocols_run_on_the_synthetic_dataset_unchanged(tiny_root):
    spec, split = build_split(DataConfig(dataset="synth", root=str(tiny_root), protocol="cvs"))
    train_subjects = {1, 2} & CS_TRAIN_SUBJECTS
    assert split.sizes() == {"train": {"0": len(train_subjects) * 2 * 2}, "test": {"0": 4, "45": 4, "90": 4}}
    _, cv = build_split(DataConfig(dataset="ntu60", root=str(tiny_root), protocol="cv"))
    assert cv.sizes() == {"train": 24, "test": 12}  # cameras 2 and 3 train, camera 1 tests
    item = ClipDataset(split.train_samples(), frames=8, stride=2, num_clips=3)[(0, 0)]
    assert tuple(item["clips"].shape) == (3, 8, 64, 64, 3)


def test_a_second_run_renders_only_what_is_missing(tiny_root, tmp_path):
    root = tmp_path / "resume"
    generate(TINY, root, workers=1, progress=False)
    victim = root / "nturgb+d_rgb" / "S001C002P001R001A001_rgb.avi"
    before = decoded(root, victim.relative_to(root))
    victim.unlink()
    report = generate(TINY, root, workers=1, progress=False)
    assert report.rendered == 3 and report.already_done == 33  # the take's three cameras are rendered again
    assert np.array_equal(decoded(root, victim.relative_to(root)), before)
    lines = (root / CACHE_MANIFEST).read_text().splitlines()
    assert len(lines) == len(set(lines)) == 36
    with pytest.raises(DatasetError, match="subjects 3 there, 4 asked"):
        generate(SynthSettings(**{**TINY.__dict__, "subjects": 4}), root, workers=1, progress=False)


def test_nucla_and_folder_layouts(tmp_path):
    nucla = SynthSettings(subjects=2, classes=2, size=64, frames=12, layout="nucla")
    generate(nucla, tmp_path / "nucla", workers=1, progress=False)
    samples = get_dataset("nucla").scan(tmp_path / "nucla")
    assert len(samples) == 2 * 2 * 2 * 3 and {s.view for s in samples} == {"1", "2", "3"}
    frames = sorted((tmp_path / "nucla" / "view_2" / "a02_s01_e02").iterdir())
    assert len(frames) == 12 and Image.open(frames[0]).size == (64, 64)
    folder = SynthSettings(subjects=1, classes=2, size=64, frames=12, layout="folder", views=((0, None), (135, 20.0)))
    generate(folder, tmp_path / "folder", workers=1, progress=False)
    _, split = build_split(
        DataConfig(dataset="folder", root=str(tmp_path / "folder"), protocol="cross_view", train_views=["0"])
    )
    assert split.sizes() == {"train": 4, "test": {"135": 4}}
    with pytest.raises(DatasetError, match="nucla layout"):
        get_dataset("synth").scan(tmp_path / "nucla")


def test_settings_are_checked_before_any_work():
    for bad, key in (
        (dict(size=63), "--size"),
        (dict(classes=17), "--classes"),
        (dict(setups=18), "--setups"),
        (dict(views=((0, None),)), "--views"),
        (dict(layout="nucla", classes=12), "--classes"),
        (dict(layout="nucla", classes=10, views=((0, None), (90, None))), "--views"),
    ):
        with pytest.raises(ConfigError, match=key):
            SynthSettings(**bad).validate()


def test_preview_shows_every_class_and_view(tmp_path):
    settings = SynthSettings(classes=3, size=48, frames=16)
    path = contact_sheet(settings, tmp_path / "sheet.png", frames_per_view=2)
    sheet = np.asarray(Image.open(path))
    assert sheet.shape == (HEADER + 3 * 48, LABEL_WIDTH + 3 * 2 * 48 + 2 * GAP, 3)
    tiles = [sheet[HEADER + r * 48 : HEADER + (r + 1) * 48, LABEL_WIDTH : LABEL_WIDTH + 96] for r in range(3)]
    assert all(not np.array_equal(a, b) for a, b in zip(tiles, tiles[1:], strict=False))  # rows are different classes


def test_cli_synth(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["synth", str(out), "--subjects", "1", "--classes", "1", "--size", "32", "--frames", "8",
                 "--workers", "1", "--no-progress", "--preview", str(tmp_path / "p.png")]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "rendered 6 videos" in printed and "data.dataset=synth" in printed and (tmp_path / "p.png").is_file()
    assert main(["synth", str(out), "--size", "31"]) == 2
    assert "--size" in capsys.readouterr().err
    assert main(["synth"]) == 1
    with pytest.raises(SystemExit):
        main(["synth", str(out), "--layout", "folder", "--views", "0,abc"])


# ---------------------------------------------------------------------------------------------- never a user's data


@pytest.fixture
def decoy(tmp_path):
    return make_decoy(tmp_path / "MY_NTU")


def test_rendering_refuses_a_folder_that_is_not_its_own_and_changes_nothing(decoy, capsys):
    before = checksums(decoy)
    with pytest.raises(DatasetError, match="is not a synthetic dataset rendered by viewclr"):
        generate(TINY, decoy, workers=1, progress=False)
    assert main(["synth", str(decoy), "--subjects", "1", "--classes", "1", "--size", "32", "--no-progress"]) == 1
    assert "choose a new or empty folder" in capsys.readouterr().err
    assert checksums(decoy) == before  # not a byte changed, nothing added
    with pytest.raises(DatasetError, match="is a file"):
        generate(TINY, decoy / "notes.txt", workers=1, progress=False)


def test_rendering_never_replaces_a_file_it_did_not_write(tmp_path):
    root = tmp_path / "own"
    generate(TINY, root, workers=1, progress=False)
    assert not (root / RENDERING).exists()  # a finished run leaves no list of pending videos
    stranger = root / "nturgb+d_rgb" / "notes.txt"  # a foreign file inside the dataset: refused, kept
    stranger.write_text("mine")
    with pytest.raises(DatasetError, match="notes.txt is not a file of the synthetic dataset"):
        generate(TINY, root, workers=1, progress=False)
    stranger.unlink()
    # a video the manifest does not list (someone put it there): refused, kept byte for byte
    manifest = root / CACHE_MANIFEST
    lines = manifest.read_text().splitlines()
    victim = json.loads(lines[0])["path"]
    manifest.write_text("\n".join(lines[1:]) + "\n")
    (root / victim).write_bytes(b"someone else's video")
    with pytest.raises(DatasetError, match="not written by this renderer"):
        generate(TINY, root, workers=1, progress=False)
    assert (root / victim).read_bytes() == b"someone else's video"
    # the same file left by an interrupted run of this renderer (listed as being rendered): rendered again
    (root / RENDERING).write_text(victim + "\n")
    report = generate(TINY, root, workers=1, progress=False)
    assert report.rendered == 3 and (root / victim).read_bytes() != b"someone else's video"
    assert not (root / RENDERING).exists()


# ---------------------------------------------------------------------------------------------- the viewpoint gap


def test_viewpoint_gap_on_geometry_alone():
    """1-NN on 2D projected joints, trained on CS-train subjects at 0°, tested on CS-test subjects per view."""
    metadata, joints = build_metadata(SynthSettings(subjects=16, classes=12))
    accuracy = nearest_neighbour_by_view(metadata, joints)
    assert accuracy["0"] > 0.9
    assert accuracy["90"] < accuracy["0"] - 0.3
    assert accuracy["0"] > accuracy["45"] > accuracy["90"]
