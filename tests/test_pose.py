"""The pose modality: skeleton files, the array cache, ST-GCN / AGCN, SkeletonCLR's augmentations, fusion's weight."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from viewclr.data.skeleton import (
    SkeletonError,
    load_sample,
    main_bodies,
    normalise,
    read_ntu_skeleton,
    read_nucla_skeleton,
    skeleton_file,
    to_array,
)
from viewclr.data.skeleton_cache import SkeletonCache, open_cache, prepare_skeletons
from viewclr.errors import ConfigError, DatasetError
from viewclr.eval.fusion import choose_weight, fuse
from viewclr.methods.skeletonclr import build_skeletonclr, shear, temporal_crop, two_views
from viewclr.models.gcn import AGCN, STGCN, Graph
from viewclr.synth import SynthMetadata, SynthSettings, generate

# ---------------------------------------------------------------------------------------------- a hand-written file


def joint_line(x, y, z):
    return f"{x} {y} {z} 250.1 180.2 960.5 540.5 0.1 0.2 0.3 0.9 2"


def body_lines(body_id, x0, z):
    """A body whose joint j is at (x0 + j/100, j/50, z)."""
    lines = [f"{body_id} 0 1 1 1 1 0 0.01 -0.02 2", "25"]
    return lines + [joint_line(round(x0 + j / 100, 4), round(j / 50, 4), z) for j in range(25)]


def hand_written(path, frames=3):
    """Frame 1: bodies 7 (x0 = 0, z = 2) and 9 (x0 = 1, z = 3); frame 2: no body; frame 3: body 7 at z = 2.5 and
    body 9 unmoved — so body 7 moves (z by 0.5) and 9 does not."""
    lines = [str(frames), "2", *body_lines(7, 0.0, 2.0), *body_lines(9, 1.0, 3.0), "0", "2"]
    lines += [*body_lines(7, 0.0, 2.5), *body_lines(9, 1.0, 3.0)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_ntu_reader_reads_hand_written_values(tmp_path):
    frames = read_ntu_skeleton(hand_written(tmp_path / "S001C001P001R001A001.skeleton"))
    assert [sorted(f) for f in frames] == [[7, 9], [], [7, 9]]
    assert frames[0][7].shape == (25, 3)
    np.testing.assert_allclose(frames[0][9][4], [1.04, 0.08, 3.0])
    np.testing.assert_allclose(frames[2][7][24], [0.24, 0.48, 2.5])
    assert main_bodies(frames, 2) == [7, 9]  # the moving body first
    assert main_bodies(frames, 1) == [7]
    array = to_array(frames, 5, 2)
    assert array.shape == (3, 5, 25, 2)
    np.testing.assert_allclose(array[:, 0, 3, 1], [1.03, 0.06, 3.0])  # body 9's head, frame 1
    assert not array[:, 1].any() and not array[:, 3:].any()  # the missing frame and the padding stay zero


@pytest.mark.parametrize(
    "edit, fault",
    [
        (lambda lines: lines[:40], "truncated"),
        (lambda lines: ["2", "0", "0"], "no body in any of its 2 frames"),
        (lambda lines: [*lines[:3], "24", *lines[4:]], "24 joints per body"),
        (lambda lines: [*lines[:4], joint_line("nan", 0, 1), *lines[5:]], "non-finite"),
        (lambda lines: ["three", *lines[1:]], "expected the frame count"),
    ],
)
def test_ntu_reader_names_file_and_fault(tmp_path, edit, fault):
    path = hand_written(tmp_path / "a.skeleton")
    path.write_text("\n".join(edit(path.read_text().splitlines())) + "\n")
    with pytest.raises(SkeletonError, match=fault) as err:
        read_ntu_skeleton(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_nucla_reader_and_its_faults(tmp_path):
    path = tmp_path / "a01_s01_e01_v01.json"
    data = np.arange(4 * 20 * 3, dtype=np.float32).reshape(4, 20, 3) / 100
    path.write_text(json.dumps({"skeletons": data.tolist()}))
    frames = read_nucla_skeleton(path)
    assert len(frames) == 4 and np.array_equal(frames[2][0], data[2])
    assert load_sample(path, "nucla", 6, 1).shape == (3, 6, 20, 1)
    for text, fault in (
        ({"skeletons": data[:, :19].tolist()}, "shape"),
        ({"skeletons": []}, "shape|no body"),
        ({"joints": 1}, "no 'skeletons'"),
        ({"skeletons": [[[float("nan")] * 3] * 20]}, "non-finite"),
    ):
        path.write_text(json.dumps(text))
        with pytest.raises(SkeletonError, match=fault):
            read_nucla_skeleton(path)


# ---------------------------------------------------------------------------------------------- synthetic round trip


@pytest.fixture(scope="module")
def synth_ntu(tmp_path_factory):
    root = tmp_path_factory.mktemp("pose") / "ntu"
    generate(SynthSettings(subjects=4, classes=3, size=32, frames=20), root, workers=1, progress=False)
    return root


def test_synth_skeletons_round_trip(synth_ntu, tmp_path):
    meta = SynthMetadata(synth_ntu)
    assert len(list((synth_ntu / "nturgb+d_skeletons").iterdir())) == len(meta.samples)
    for name in list(meta.samples)[::17]:
        frames = read_ntu_skeleton(skeleton_file(synth_ntu, "ntu60", name))
        joints = np.stack([next(iter(f.values())) for f in frames])  # one body per frame
        camera = meta.joints(name, "camera") * np.array([-1, -1, 1])  # OpenCV → Kinect camera space
        np.testing.assert_allclose(joints[:, :20], camera, atol=1e-5)
        np.testing.assert_allclose(joints[:, 20], (camera[:, 4] + camera[:, 8]) / 2, atol=1e-5)  # spine shoulder
    nucla = tmp_path / "nucla"
    settings = SynthSettings(subjects=2, classes=2, size=32, frames=10, layout="nucla", replications=1)
    generate(settings, nucla, workers=1, progress=False)
    meta = SynthMetadata(nucla)
    name = sorted(meta.samples)[-1]
    frames = read_nucla_skeleton(skeleton_file(nucla, "nucla", name))
    np.testing.assert_allclose(np.stack([f[0] for f in frames]), meta.joints(name, "camera") * [-1, -1, 1], atol=1e-5)
    generate(settings, nucla, workers=1, progress=False)  # a second run keeps the folder (its own files)


def test_cache_skips_and_counts_bad_files_and_joins_by_name(synth_ntu, tmp_path):
    from viewclr.config import load_config
    from viewclr.studies.pose import pose_data

    folder = tmp_path / "skeletons"
    copy = tmp_path / "copy" / "nturgb+d_skeletons"
    copy.mkdir(parents=True)
    names = sorted(p.stem for p in (synth_ntu / "nturgb+d_skeletons").iterdir())
    for name in names:
        (copy / f"{name}.skeleton").write_bytes((synth_ntu / "nturgb+d_skeletons" / f"{name}.skeleton").read_bytes())
    bad = {names[0]: "truncated", names[1]: "no body", names[2]: "24 joints", names[3]: "non-finite"}
    lines = (copy / f"{names[0]}.skeleton").read_text().splitlines()
    (copy / f"{names[0]}.skeleton").write_text("\n".join(lines[:30]))
    (copy / f"{names[1]}.skeleton").write_text("3\n0\n0\n0\n")
    lines = (copy / f"{names[2]}.skeleton").read_text().splitlines()
    (copy / f"{names[2]}.skeleton").write_text("\n".join([*lines[:3], "24", *lines[4:]]))
    lines = (copy / f"{names[3]}.skeleton").read_text().splitlines()
    (copy / f"{names[3]}.skeleton").write_text("\n".join([*lines[:5], "nan 0 0 0 0 0 0 0 0 0 0 2", *lines[6:]]))
    (copy / "S001C001P099R001A001.skeleton").write_bytes((copy / f"{names[5]}.skeleton").read_bytes())  # no video
    index = prepare_skeletons(copy.parent, "ntu60", folder, 24, 1, "none", progress=False)
    assert set(index["skipped"]) == set(bad)
    for name, fault in bad.items():
        assert fault in index["skipped"][name]
    cache = SkeletonCache(folder)
    assert cache.arrays.shape == (len(names) + 1 - 4, 3, 24, 25, 1)
    np.testing.assert_array_equal(cache.take([names[7]])[0], load_sample(copy / f"{names[7]}.skeleton", "ntu60", 24, 1))
    assert open_cache(folder, {**cache.settings, "frames": 30}) is None  # other settings: made again
    with pytest.raises(ConfigError, match="pose.cache.*frames=24 \\(asked 30\\)"):
        open_cache(folder, {**cache.settings, "frames": 30}, "pose.cache")  # unless the folder was named
    cfg = load_config(
        None,
        ["data.dataset=synth", f"data.root={synth_ntu}", f"pose.cache={folder}", "pose.frames=24", "pose.bodies=1"],
    )
    data = pose_data(cfg, progress=False)
    notes = " ".join(data.split.left_out)
    assert f"4 videos left out: they have no skeleton ({', '.join(sorted(bad)[:3])} and 1 more)" in notes
    assert "1 skeletons have no video, not used (S001C001P099R001A001)" in notes
    used = {s.name for s in data.split.train_samples() + data.split.test_samples()}
    assert not used & set(bad)


# ---------------------------------------------------------------------------------------------- normalisation


def test_pre_normalisation_puts_the_body_in_its_own_frame(synth_ntu):
    meta = SynthMetadata(synth_ntu)
    name = next(iter(meta.samples))
    x = load_sample(skeleton_file(synth_ntu, "ntu60", name), "ntu60", 24, 2)
    pre = normalise(x, "pre")
    first = pre[:, 0, :, 0]
    np.testing.assert_allclose(first[:, 1], 0, atol=1e-6)  # spine mid of frame 1 at the origin
    spine = first[:, 1] - first[:, 0]
    np.testing.assert_allclose(spine[:2], 0, atol=1e-6)  # hip → spine on +z
    assert spine[2] > 0
    shoulders = first[:, 4] - first[:, 8]
    assert abs(shoulders[1]) < 1e-6 and shoulders[0] > 0  # right → left shoulder in the xz-plane, towards +x
    assert pre[:, 20:, :, 0].any() and not pre[:, :, :, 1].any()  # frames 21-24 looped; the absent body stays 0
    # a camera anywhere: the same body frame
    angle = 1.1
    turn = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    moved = np.einsum("ij,jtvm->itvm", turn, x) + np.array([0.3, -0.2, 1.0])[:, None, None, None] * (x != 0)
    np.testing.assert_allclose(normalise(moved.astype(np.float32), "pre"), pre, atol=1e-4)
    assert normalise(x, "none") is x


# ---------------------------------------------------------------------------------------------- graphs and encoders


def test_graph_partitions():
    for joints, bones in ((25, 24), (20, 19)):
        graph = Graph(joints)
        assert graph.A.shape == (3, joints, joints)
        np.testing.assert_allclose(graph.A.sum(0).sum(0), torch.ones(joints), atol=1e-6)  # A D⁻¹: columns sum to 1
        assert int((graph.A.sum(0) > 0).sum()) == joints + 2 * bones  # self-loops and both directions of each bone
        assert torch.all(torch.diagonal(graph.A[0]) > 0)  # the root subset holds the joint itself
        assert graph.hops[1, 1] == 0 and graph.hops[3, 1] == (3 if joints == 25 else 2)  # head → spine mid
    with pytest.raises(ValueError, match="25 .* or 20"):
        Graph(18)


def test_parameter_counts_match_the_papers():
    # SkeletonCLR's ST-GCN (16 base channels, 256-d): ~0.85 M with its head; the 2s-AGCN joint stream: ~3.47 M
    assert sum(p.numel() for p in STGCN().parameters()) == 821_530
    assert sum(p.numel() for p in AGCN().parameters()) + 256 * 60 + 60 == 3_469_510


@pytest.mark.parametrize("cls, joints", [(STGCN, 25), (AGCN, 25), (STGCN, 20), (AGCN, 20)])
def test_encoders_shapes_and_gradients(cls, joints):
    torch.manual_seed(0)
    model = cls(joints=joints, bodies=2, width=0.25)
    x = torch.randn(3, 3, 13, joints, 2)  # 13 frames: strides that do not divide evenly
    y = model(x)
    assert y.shape == (3, model.out_channels)
    h = model.f1(x)
    assert h.shape[:2] == (6, model.split_channels)  # bodies folded into the batch
    assert model.pool(model.f2(h)).shape == y.shape
    y.square().sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []
    with pytest.raises(ValueError, match="joints"):
        model(torch.randn(1, 3, 13, joints - 1, 2))


# ---------------------------------------------------------------------------------------------- SkeletonCLR


def test_shear_and_temporal_crop():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 12, 25, 2)
    assert torch.equal(shear(x, 0.0, g), x)
    sheared = shear(x, 0.5, torch.Generator().manual_seed(1))
    # each sample is one linear map of its coordinates: solve for it and check its shape
    for b in range(4):
        S = torch.linalg.lstsq(x[b].reshape(3, -1).T, sheared[b].reshape(3, -1).T).solution.T
        assert torch.allclose(torch.diagonal(S), torch.ones(3), atol=1e-4)
        assert (S - torch.eye(3)).abs().max() <= 0.5 + 1e-4
    frames = torch.arange(12.0).view(1, 1, 12, 1, 1).expand(5, 3, 12, 25, 2).contiguous()
    cropped = temporal_crop(frames, 6, torch.Generator().manual_seed(2))  # padding 2 frames each side
    padded = torch.tensor([1.0, 0, *range(12), 11, 10])
    for b in range(5):
        sequence = cropped[b, 0, :, 0, 0]
        starts = [s for s in range(5) if torch.equal(padded[s : s + 12], sequence)]
        assert len(starts) == 1
        assert torch.equal(cropped[b], sequence.view(1, 12, 1, 1).expand(3, 12, 25, 2))
    views = two_views(x, type("P", (), {"crop_padding": 6, "shear": 0.5})(), torch.Generator().manual_seed(3))
    assert views.shape == (4, 2, 3, 12, 25, 2) and not torch.equal(views[:, 0], views[:, 1])


def test_skeletonclr_is_moco_over_stgcn_with_published_settings():
    from viewclr.config import load_config

    cfg = load_config(None, ["pose.stgcn_width=0.25", "pose.queue_size=40", "pose.batch_size=6"])
    method = build_skeletonclr(cfg, 25)
    assert method.cfg.momentum == 0.999 and method.cfg.tau == 0.07 and method.bn_splits == 1
    assert method.queue.features.shape == (40, 128)
    out = method(two_views(torch.randn(6, 3, 12, 25, 2), cfg.pose, torch.Generator().manual_seed(0)), 0)
    out["loss"].backward()
    assert all(p.grad is not None for _, p in method.trainable())
    assert load_config(None).pose.queue_size == 32768


# ---------------------------------------------------------------------------------------------- fusion


def scores(path, names, labels, probabilities, group="val"):
    torch.save(
        {
            "kind": "probabilities",
            "groups": {group: {"names": names, "labels": torch.tensor(labels), "scores": torch.tensor(probabilities)}},
        },
        path,
    )
    return path


def test_fusion_weight_is_chosen_on_validation_only(tmp_path):
    names = ["a", "b", "c", "d"]
    labels = [0, 1, 0, 1]
    # validation: the first model is right on a, b; the second on c, d, and more confident, so only weights where
    # the first model's confident votes win all four: w ≥ 0.6 here
    first = [[0.9, 0.1], [0.1, 0.9], [0.45, 0.55], [0.55, 0.45]]
    second = [[0.3, 0.7], [0.7, 0.3], [0.9, 0.1], [0.1, 0.9]]
    weight, curve = choose_weight(
        scores(tmp_path / "a.pt", names, labels, first), scores(tmp_path / "b.pt", names, labels, second)
    )
    assert curve[weight] == 1.0 and curve[0.0] == 0.5 and curve[1.0] == 0.5
    assert weight == min((w for w, a in curve.items() if a == 1.0), key=lambda w: abs(w - 0.5))
    # the test scores favour another weight; the result still uses the validation one
    test_a = scores(tmp_path / "ta.pt", names, labels, second, group="0")
    test_b = scores(tmp_path / "tb.pt", names, labels, first, group="0")
    result = fuse(test_a, test_b, None, tmp_path / "out", validation=(tmp_path / "a.pt", tmp_path / "b.pt"))
    assert result["weight"] == weight and result["weight_chosen_on"]["files"][0].endswith("a.pt")
    with pytest.raises(Exception, match="not both"):
        fuse(test_a, test_b, 0.5, validation=(tmp_path / "a.pt", tmp_path / "b.pt"))


def test_fusion_of_files_sharing_no_names_stops(tmp_path):
    a = scores(tmp_path / "a.pt", ["x", "y"], [0, 1], [[1.0, 0.0], [0.0, 1.0]])
    b = scores(tmp_path / "b.pt", ["p", "q"], [0, 1], [[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(DatasetError, match="share no sample names") as err:
        fuse(a, b, 0.5)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------------------------------------- training, resumed


def test_skeletonclr_resumes_exactly_and_reuses_only_its_own_weights(synth_ntu, tmp_path, caplog):
    from viewclr.checkpoint import load_weights
    from viewclr.config import load_config
    from viewclr.studies.pose import pose_data, pretrain_skeletonclr

    def config(*extra):
        return load_config(
            None,
            [
                "data.dataset=synth",
                f"data.root={synth_ntu}",
                f"pose.cache={tmp_path / 'cache'}",
                "pose.frames=20",
                "pose.bodies=1",
                "pose.batch_size=5",
                "pose.queue_size=13",
                "pose.stgcn_width=0.25",
                "pose.epochs=3",
                "train.device=cpu",
                *extra,
            ],
        )  # fmt: skip  (batch 5 and queue 13 divide neither the training samples nor each other)

    data = pose_data(config(), progress=False)
    assert len(data.split.train_samples()) % 5 != 0
    whole = load_weights(pretrain_skeletonclr(config(), data, tmp_path / "whole", progress=False))
    pretrain_skeletonclr(config("pose.epochs=2"), data, tmp_path / "cut", progress=False)
    (tmp_path / "cut" / "final.pt").unlink()  # as if stopped after epoch 2
    resumed = load_weights(pretrain_skeletonclr(config(), data, tmp_path / "cut", progress=False))
    assert resumed["identity"] == whole["identity"]
    assert resumed["method"].keys() == whole["method"].keys()
    for key, value in whole["method"].items():
        assert torch.equal(resumed["method"][key], value), key  # weights, momentum encoder, queue and its pointer
    assert int(whole["method"]["queue.pointer"]) != 0  # the queue did not happen to end at slot 0
    # a different setting is not these weights: set aside and trained again, naming the key
    again = load_weights(pretrain_skeletonclr(config("pose.shear=0.3"), data, tmp_path / "whole", progress=False))
    assert again["identity"]["settings"]["pose.shear"] == 0.3
    assert "pose.shear" in caplog.text


def test_cli_prepare_pose_and_compare_checks(synth_ntu, tmp_path, capsys):
    from viewclr.cli import main
    from viewclr.errors import ConfigError
    from viewclr.studies.compare import compare

    cache = tmp_path / "cache"
    assert main(["prepare", "--skeletons", "--dataset", "synth", "--root", str(synth_ntu), "--out", str(cache),
                 "--frames", "20", "--bodies", "1", "--normalise", "pre", "--no-progress"]) == 0  # fmt: skip
    assert "prepared 72 skeletons (0 skipped" in capsys.readouterr().out
    assert SkeletonCache(cache).settings == {"dataset": "ntu60", "frames": 20, "bodies": 1, "normalise": "pre"}
    args = ["data.dataset=synth", f"data.root={synth_ntu}", f"pose.cache={cache}", "pose.frames=20", "pose.bodies=1",
            "pose.normalise=pre", "pose.batch_size=6", "pose.queue_size=12", "pose.epochs=1", "pose.probe_epochs=2",
            "pose.stgcn_width=0.25", f"out_dir={tmp_path / 'run'}"]  # fmt: skip
    assert main(["pose", "--config", "synth_cpu", *args, "--method", "skeletonclr", "--no-progress"]) == 0
    results = json.loads((tmp_path / "run" / "pose" / "skeletonclr" / "probe" / "results.json").read_text())
    assert results["normalise"] == "pre" and results["identity"]["settings"]["pose.normalise"] == "pre"
    assert "normalisation 'pre'" in (tmp_path / "run" / "pose" / "skeletonclr" / "probe" / "results.md").read_text()
    # the video tools on SkeletonCLR's encoder: its final.pt says it is one, and the skeletons are read instead
    weights = str(tmp_path / "run" / "pose" / "skeletonclr" / "final.pt")
    assert main(["knn", *args, "--checkpoint", weights, "--out", str(tmp_path / "knn")]) == 0
    knn = json.loads((tmp_path / "knn" / "results.json").read_text())
    assert knn["modality"] == "Pose" and knn["identity"]["pose"]["pose.normalise"] == "pre" and knn["windows"] == 1
    assert set(knn["groups"]) == {"0", "45", "90"} and knn["groups"]["0"]["videos"] == 6
    assert main(["extract", *args, "--checkpoint", weights, "--out", str(tmp_path / "features")]) == 0
    index = json.loads((tmp_path / "features.json").read_text())
    assert np.load(tmp_path / "features.npy").shape == (len(index["samples"]), 256)
    assert main(["tsne", *args, "--checkpoint", weights, "--out", str(tmp_path / "tsne.png")]) == 0
    assert (tmp_path / "tsne.png").stat().st_size > 10_000
    # probe and test, the video commands, on SkeletonCLR's files: the same probe as `pose`'s, and its classifier.pt
    # tested again gives exactly the scores the probe wrote
    probe = tmp_path / "run" / "pose" / "skeletonclr" / "probe"
    assert main(["probe", *args, "--checkpoint", weights, "--out", str(tmp_path / "probe"), "--no-progress"]) == 0
    again = json.loads((tmp_path / "probe" / "results.json").read_text())
    assert again["groups"] == results["groups"] and again["modality"] == "Pose"
    assert main(["test", *args, "--checkpoint", str(probe / "classifier.pt"), "--out", str(tmp_path / "test"),
                 "--no-progress"]) == 0  # fmt: skip
    assert "test top-1 per test group: 0°: " in capsys.readouterr().out
    tested, scored = torch.load(tmp_path / "test" / "scores.pt"), torch.load(probe / "scores.pt")
    for group in ("0", "45", "90"):
        assert tested["groups"][group]["names"] == scored["groups"][group]["names"]
        assert torch.equal(tested["groups"][group]["scores"], scored["groups"][group]["scores"]), group
    test = json.loads((tmp_path / "test" / "results.json").read_text())
    assert (test["mode"], test["normalise"], test["groups"]["90"]["videos"]) == ("test", "pre", 6)
    from viewclr.config import load_config
    from viewclr.eval.classify import evaluate

    with pytest.raises(
        ConfigError, match="holds a skeleton encoder: evaluate it with studies.pose.evaluate_checkpoint"
    ):
        evaluate(load_config(None, [*args, f"eval.checkpoint={weights}"]), "probe", tmp_path / "video-probe")
    assert main(["export", str(probe / "classifier.pt"), "--out", str(tmp_path / "stgcn.pth")]) == 0
    assert "(backbone=stgcn, joints=25, bodies=1, width=0.25, frames=20, normalise=pre" in capsys.readouterr().out
    exported, encoder = torch.load(tmp_path / "stgcn.pth"), torch.load(weights)["encoder"]
    assert exported.keys() == encoder.keys() and torch.equal(
        exported["blocks.9.conv.weight"], encoder["blocks.9.conv.weight"]
    )
    # a classifier meets only the skeletons it was trained on: one line naming the setting, before any work
    other = [a for a in args if not a.startswith("pose.normalise")] + ["pose.normalise=none"]
    assert main(["test", *other, "--checkpoint", str(probe / "classifier.pt"), "--out", str(tmp_path / "t2")]) == 2
    error = capsys.readouterr().err.strip()
    assert "pose.normalise" in error and "classifier.pt" in error and "\n" not in error
    assert not (tmp_path / "t2").exists()
    with pytest.raises(ConfigError, match="add viewclr and agcn"):
        compare(None, tmp_path / "cmp", ["infonce", "viewclr_poses"], [0], ["probe"], args, progress=False)
    with pytest.raises(ConfigError, match="pose.val_subjects"):
        main_args = ["pose.val_subjects=0"]
        compare(None, tmp_path / "cmp", ["skeletonclr"], [0], ["probe"], [*args, *main_args], progress=False)


def test_an_encoder_moves_to_fewer_joints_and_bodies():
    """`transfer_state`: what is per body and joint is kept for those that remain. A two-body encoder whose bodies
    share their input statistics, on a sequence whose second body repeats the first, is the one-body encoder on the
    first (bodies are averaged); an NTU encoder keeps N-UCLA's 20 joints' entries; more joints is refused."""
    from viewclr.models.gcn import transfer_state

    torch.manual_seed(0)
    two = STGCN(joints=25, bodies=2, width=0.25).eval()
    stats = torch.rand(25 * 3) + 0.5  # different per joint and coordinate: a wrong layout picks other entries
    for name, value in (("running_mean", stats - 1.0), ("running_var", stats), ("weight", stats * 2), ("bias", -stats)):
        getattr(two.data_bn, name).data.copy_(value.repeat(2))
    for block in two.blocks:
        block.importance.data.uniform_(0.5, 1.5)
    one = STGCN(joints=25, bodies=1, width=0.25).eval()
    one.load_state_dict(transfer_state(two.state_dict(), 25, 2, 25, 1))
    x = torch.randn(3, 3, 16, 25, 1)
    assert torch.allclose(one(x), two(x.repeat(1, 1, 1, 1, 2)), atol=1e-5)
    nucla = transfer_state(two.state_dict(), 25, 2, 20, 1)
    assert torch.equal(nucla["data_bn.running_var"], stats.view(25, 3)[:20].reshape(-1))
    assert torch.equal(nucla["blocks.3.importance"], two.blocks[3].importance.detach()[:, :20, :20])
    STGCN(joints=20, bodies=1, width=0.25).load_state_dict(nucla)  # every tensor fits
    agcn = AGCN(joints=25, bodies=1, width=0.125)
    AGCN(joints=20, bodies=1, width=0.125).load_state_dict(transfer_state(agcn.state_dict(), 25, 1, 20, 1))
    with pytest.raises(ValueError, match="only fewer"):
        transfer_state(nucla, 20, 1, 25, 1)


def test_an_interrupted_skeleton_cache_resumes_and_equals_an_uninterrupted_one(synth_ntu, tmp_path, monkeypatch):
    """Progress marks every SAVE_EVERY files: a preparation stopped mid-way reads only the files after the last mark
    and gives the same arrays, names, lengths and skips (a bad file before the stop stays skipped)."""
    import shutil

    import viewclr.data.skeleton_cache as skeleton_cache

    root = tmp_path / "raw"
    shutil.copytree(synth_ntu / "nturgb+d_skeletons", root / "nturgb+d_skeletons")
    files = sorted((root / "nturgb+d_skeletons").iterdir())
    files[3].write_text(files[3].read_text()[:200])  # truncated: skipped, before the stop
    whole = prepare_skeletons(root, "ntu60", tmp_path / "whole", 20, 1, progress=False)
    reads, original = [], skeleton_cache.read_skeleton

    def counted(path, dataset, stop_at=None):
        reads.append(path)
        if len(reads) == stop_at:
            raise KeyboardInterrupt
        return original(path, dataset)

    monkeypatch.setattr(skeleton_cache, "SAVE_EVERY", 7)
    monkeypatch.setattr(skeleton_cache, "read_skeleton", lambda p, d: counted(p, d, stop_at=31))
    with pytest.raises(KeyboardInterrupt):
        prepare_skeletons(root, "ntu60", tmp_path / "cut", 20, 1, progress=False)
    assert not (tmp_path / "cut" / "skeletons.json").exists()  # not a cache yet
    reads.clear()
    monkeypatch.setattr(skeleton_cache, "read_skeleton", lambda p, d: counted(p, d))
    resumed = prepare_skeletons(root, "ntu60", tmp_path / "cut", 20, 1, progress=False)
    assert len(reads) == 72 - 28  # from the mark after file 28 (7 does not divide 30, the files read before the stop)
    assert resumed == {**whole, "root": str(root)} and list(resumed["skipped"]) == [files[3].stem]
    assert np.array_equal(SkeletonCache(tmp_path / "cut").arrays, SkeletonCache(tmp_path / "whole").arrays)
    assert not (tmp_path / "cut" / "skeletons.progress.json").exists()
    # other settings are another cache: nothing of a stopped one is reused
    reads.clear()
    monkeypatch.setattr(skeleton_cache, "read_skeleton", lambda p, d: counted(p, d, stop_at=10))
    with pytest.raises(KeyboardInterrupt):
        prepare_skeletons(root, "ntu60", tmp_path / "other", 20, 1, progress=False)
    reads.clear()
    monkeypatch.setattr(skeleton_cache, "read_skeleton", lambda p, d: counted(p, d))
    prepare_skeletons(root, "ntu60", tmp_path / "other", 16, 1, progress=False)
    assert len(reads) == 72


def test_ntu_missing_skeleton_list_is_respected(synth_ntu, tmp_path):
    from viewclr.data.ntu import missing_skeletons
    from viewclr.studies.pose import prepare_for

    listed = sorted(missing_skeletons(60))[0]
    folder = tmp_path / "raw" / "nturgb+d_skeletons"
    folder.mkdir(parents=True)
    source = next((synth_ntu / "nturgb+d_skeletons").iterdir()).read_bytes()
    for name in (listed, "S001C001P001R001A001"):
        (folder / f"{name}.skeleton").write_bytes(source)  # readable files, both
    index = prepare_for("ntu60", tmp_path / "raw", tmp_path / "cache", 20, 1, progress=False)
    assert index["names"] == ["S001C001P001R001A001"]
    assert "missing-skeleton list (302 samples of NTU RGB+D 60)" in index["skipped"][listed]
