"""Evaluation: probe, multi-view test, per-view results, checkpoints, kNN, extract, t-SNE, fusion, report."""

import json

import numpy as np
import pytest
import torch

from viewclr.checkpoint import CheckpointError
from viewclr.cli import main
from viewclr.config import load_config
from viewclr.data.ntu import parse_name
from viewclr.data.sampling import eval_clip_indices
from viewclr.engine.plan import pretrain
from viewclr.errors import ConfigError, DatasetError
from viewclr.eval.classify import Classifier, evaluate, fit_linear
from viewclr.eval.fusion import fuse
from viewclr.eval.predict import ten_crop
from viewclr.eval.tables import results_table
from viewclr.models import S3D, build_backbone
from viewclr.models.weights import load_encoder
from viewclr.synth import SynthSettings, generate


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    path = tmp_path_factory.mktemp("synth_eval")
    generate(SynthSettings(subjects=4, classes=3, size=32, frames=12), path, workers=1, progress=False)
    return path


def overrides(root, out, *extra):
    return [
        "data.dataset=synth", f"data.root={root}", "data.frames=8", "data.short_side=32", "augment.size=32",
        "data.batch_size=4", "data.num_workers=0", "model.width=0.125", "model.npl_hidden=8", "model.low_dim=8",
        "model.proj_dim=16", "method.queue_size=16", "train.stage1_epochs=1", "train.stage2_epochs=1",
        "train.threads=1", "eval.epochs=5", "eval.finetune_epochs=1", "eval.feature_windows=2", f"out_dir={out}",
        *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def pretrained(root, tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrained")
    pretrain(load_config(None, overrides(root, out)), progress=False)
    return out


def test_a_probe_on_separable_features_reaches_100_percent(capsys):
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(5, 128, generator=generator) * 4  # 128: S3D width 0.125's features
    labels = torch.arange(5).repeat_interleave(40)
    features = centres[labels] + torch.randn(200, 128, generator=generator)
    cfg = load_config(None, ["eval.epochs=50", "eval.lr=0.01"])
    model = Classifier(build_backbone("s3d", 0.125), 5, 0.0, "bn", frozen=True)
    model.head.linear.weight.data.mul_(0)  # from nothing
    fit_linear(model, features, labels, cfg.eval, batch=32, progress=True)
    bars = capsys.readouterr().err  # one bar over the epochs, not an empty bar per epoch
    assert "probe:" in bars and "0/50 " in bars and "probe 1/50" not in bars
    test = centres[labels] + torch.randn(200, 128, generator=generator)
    with torch.no_grad():
        accuracy = (model.classify(test).argmax(1) == labels).float().mean().item()
    assert accuracy > 0.99


def test_ten_crops_are_the_centre_and_corners_each_flipped():
    # a 1-frame clip whose red channel is the column index and green the row index
    h, w, size = 36, 48, 32
    rows, cols = np.mgrid[0:h, 0:w]
    clip = np.stack([cols, rows, np.zeros_like(rows)], -1).astype(np.uint8)[None, None]  # [1, 1, H, W, 3]
    normalize = lambda frames, lead: frames.permute(0, 2, 1, 3, 4).reshape(*lead, 3, *frames.shape[1:2], size, size)  # noqa: E731
    crops = ten_crop(torch.from_numpy(clip), size, 10, normalize)
    assert crops.shape == (10, 3, 1, size, size)
    # resized to short side 32·256/224 ≈ 37: 37 × 49; corners land at the resized frame's edges
    left_columns = crops[:, 0, 0, 0, 0] * 255  # top-left pixel's column value of each crop
    assert left_columns[1] < 1 and left_columns[3] < 1  # top-left and bottom-left corners start at column 0
    assert left_columns[2] > 10 and left_columns[4] > 10  # the right corners start further right
    torch.testing.assert_close(crops[5:], crops[:5].flip(-1))  # the last five are the first five, mirrored
    assert ten_crop(torch.from_numpy(clip), size, 1, normalize).shape == (1, 3, 1, size, size)


def test_probe_tests_every_view_on_its_own_samples_with_all_crops_and_windows(root, pretrained, tmp_path):
    cfg = load_config(None, overrides(root, tmp_path, f"eval.checkpoint={pretrained / 'stage2' / 'final.pt'}"))
    results = evaluate(cfg, "probe", tmp_path / "probe", progress=False)
    assert set(results["groups"]) == {"0", "45", "90"}
    # CS-test subject 3 × 2 takes × 3 classes per view; 12 frames, 8-frame windows half overlapping → 2 windows
    windows = len(eval_clip_indices(12, 8, 1, 0.5))
    for result in results["groups"].values():
        assert result["videos"] == 6
        assert result["clips_per_video"] == 10 * windows
        assert 0 <= result["top1"] <= result["top5"] <= 1 and result["top5_of"] == 3
        assert np.array(result["confusion"]).sum() == 6
    assert results["classes"] == results["classes_present"] == 3
    scores = torch.load(tmp_path / "probe" / "scores.pt", weights_only=False)
    for group, entry in scores["groups"].items():
        assert {str(parse_name(name).view) for name in entry["names"]} == {group}
        torch.testing.assert_close(entry["scores"].sum(1), torch.ones(6))
    record = torch.load(tmp_path / "probe" / "classifier.pt", weights_only=False)["model"]
    assert record == {
        "backbone": "s3d",
        "width": 0.125,
        "input": "rgb",
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
    }  # fmt: skip — what the encoder means travels with it
    table = (tmp_path / "probe" / "results.md").read_text()
    assert "CVS1 (0°) | CVS2 (45°) | CVS3 (90°)" in table
    # the classifier tests again, single clip per video
    test_cfg = load_config(None, overrides(root, tmp_path, f"eval.checkpoint={tmp_path / 'probe' / 'classifier.pt'}",
                                           "eval.crops=1", "eval.windows=1"))  # fmt: skip
    again = evaluate(test_cfg, "test", tmp_path / "test", progress=False)
    assert all(r["clips_per_video"] == 1 for r in again["groups"].values())


def test_finetune_trains_the_encoder(root, pretrained, tmp_path):
    start = pretrained / "stage1" / "final.pt"
    cfg = load_config(None, overrides(root, tmp_path, f"eval.checkpoint={start}", "eval.crops=1", "eval.windows=1"))
    evaluate(cfg, "finetune", tmp_path / "ft", progress=False)
    before = torch.load(start, weights_only=False)["backbone"]
    after = torch.load(tmp_path / "ft" / "classifier.pt", weights_only=False)["backbone"]
    assert not torch.equal(before["features.0.0.0.weight"], after["features.0.0.0.weight"])


def test_finetune_trains_as_appendix_1_says_and_the_probe_with_its_own_settings(root, tmp_path, monkeypatch):
    """Appendix 1: the finetune uses pretraining's augmentation except Gaussian blur, and pretraining's Adam (lr
    1e-3, weight decay 1e-5 by default, the encoder at the head's rate) for eval.finetune_epochs; the probe on clips
    (eval.fast=false) its own weight decay and epochs. What reaches the optimiser and the augmentation is checked."""
    import viewclr.eval.classify as classify

    seen = {}

    def fake_fit(model, batches, groups, epochs, *, weight_decay=0.0, **kwargs):
        seen["fit"] = ([(g["lr"], sum(p.numel() for p in g["params"])) for g in groups], epochs, weight_decay)

    class SpyAugment(classify.ClipAugment):
        def __init__(self, cfg, *args, **kwargs):
            seen["augment"] = cfg
            super().__init__(cfg, *args, **kwargs)

    monkeypatch.setattr(classify, "fit", fake_fit)
    monkeypatch.setattr(classify, "ClipAugment", SpyAugment)
    cfg = load_config(None, [*overrides(root, tmp_path), "eval.finetune_epochs=7", "eval.epochs=3"])
    assert (cfg.eval.lr, cfg.eval.finetune_weight_decay, cfg.eval.backbone_lr_scale) == (1e-3, 1e-5, 1.0)
    from viewclr.data.registry import build_split

    samples = build_split(cfg.data)[1].train_samples()
    backbone = build_backbone("s3d", 0.125)
    encoder_parameters = sum(p.numel() for p in backbone.parameters())
    for finetune in (True, False):
        model = Classifier(backbone, 3, 0.5, "none" if finetune else "bn", frozen=not finetune)
        classify._train_on_clips(model, samples, cfg, torch.device("cpu"), tmp_path / str(finetune), False, finetune)
        groups, epochs, weight_decay = seen["fit"]
        if finetune:
            assert groups[1] == (1e-3, encoder_parameters) and groups[0][0] == 1e-3
            assert (epochs, weight_decay) == (7, 1e-5)
        else:
            assert len(groups) == 1 and (epochs, weight_decay) == (3, 0.0)
        augment = seen["augment"]
        assert augment.blur_p == 0.0 and cfg.augment.blur_p > 0
        assert {k: v for k, v in vars(augment).items() if k != "blur_p"} == {
            k: v for k, v in vars(cfg.augment).items() if k != "blur_p"
        }


def test_checkpoints_with_other_heads_load_and_bad_ones_explain(root, pretrained, tmp_path):
    tiny_cfg = load_config(None, overrides(root, tmp_path))
    cfg = load_config(None, ["model.width=0.125"])
    # a torchvision-style state dict with its own 400-class classifier
    torchvision_like = S3D(width=0.125, num_classes=400)
    torch.save(torchvision_like.state_dict(), tmp_path / "tv.pth")
    loaded = load_encoder(tmp_path / "tv.pth", cfg)
    assert torch.equal(loaded.features[3][0][0].weight, torchvision_like.features[3][0][0].weight)
    # a training checkpoint (method state) and a pretrain result
    checkpoint = sorted((pretrained / "stage2" / "checkpoints").glob("step_*.pt"))[-1]
    assert load_encoder(checkpoint, tiny_cfg).out_channels == 128
    assert load_encoder(pretrained / "stage2" / "final.pt", tiny_cfg) is not None
    with pytest.raises(CheckpointError, match="does not exist"):
        load_encoder(tmp_path / "missing.pt", cfg)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt is not a readable checkpoint"):
        load_encoder(tmp_path / "junk.pt", cfg)
    wide = load_config(None, overrides(root, tmp_path, "model.width=0.25"))
    with pytest.raises(ConfigError, match=r"model.width.*width 0.125.*set model.width=0.125"):
        load_encoder(pretrained / "stage2" / "final.pt", wide)
    # the input travels with the weights: an RGB encoder fed residual frames (or other normalisation) stops
    residual = load_config(None, overrides(root, tmp_path, "model.input=residual"))
    with pytest.raises(ConfigError, match=r"model.input.*trained with model.input=rgb; this config gives residual"):
        load_encoder(pretrained / "stage2" / "final.pt", residual)
    other_mean = load_config(None, overrides(root, tmp_path, "augment.mean=[0.5,0.5,0.5]"))
    with pytest.raises(ConfigError, match=r"augment.mean"):
        load_encoder(checkpoint, other_mean)  # a training checkpoint records it through its config
    args = ["probe", *overrides(root, tmp_path / "p"), "model.input=residual", "--checkpoint"]
    assert main([*args, str(pretrained / "stage2" / "final.pt")]) == 2 and not (tmp_path / "p").exists()
    assert main(["probe", *overrides(root, tmp_path), "--checkpoint", str(tmp_path / "missing.pt")]) == 1


def test_knn_extract_and_tsne(root, pretrained, tmp_path, capsys, monkeypatch):
    import sys

    args = overrides(root, tmp_path, f"eval.checkpoint={pretrained / 'stage2' / 'final.pt'}")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # bars are drawn on a terminal only
    assert main(["knn", *args]) == 0
    bars = capsys.readouterr().err  # a bar per feature extraction, each over its videos
    assert "features train" in bars and "0/18 [" in bars and "features test 90" in bars and "0/6 [" in bars
    knn = json.loads((tmp_path / "eval" / "knn" / "results.json").read_text())
    assert {g: r["videos"] for g, r in knn["groups"].items()} == {"0": 6, "45": 6, "90": 6}
    assert knn["modality"] == "RGB" and "| RGB |" in (tmp_path / "eval" / "knn" / "results.md").read_text()
    # an encoder trained on frames is not fed residual frames (its file says what it was trained on) ...
    assert main(["knn", *args, "model.input=residual", "--out", str(tmp_path / "knn_residual")]) == 2
    # ... and one fed residual frames is reported as such (a random encoder, which records nothing)
    fresh = overrides(root, tmp_path, "model.input=residual", "--out", str(tmp_path / "knn_residual"))
    assert main(["knn", *fresh, "--no-progress"]) == 0
    assert "features" not in capsys.readouterr().err
    residual = json.loads((tmp_path / "knn_residual" / "results.json").read_text())
    assert residual["modality"] == "RGB residual"
    assert main(["extract", *args, "--out", str(tmp_path / "feat")]) == 0
    features = np.load(tmp_path / "feat.npy")
    index = json.loads((tmp_path / "feat.json").read_text())
    assert features.shape == (18 + 3 * 6, 128) and len(index["samples"]) == 36
    assert {s["side"] for s in index["samples"]} == {"train", "test"}
    assert main(["tsne", *args, "--out", str(tmp_path / "tsne.png")]) == 0
    assert (tmp_path / "tsne.png").stat().st_size > 10_000
    # every test view in one picture, a marker per view
    assert main(["tsne", *args, "--view", "all", "--out", str(tmp_path / "tsne_all.png")]) == 0
    assert "t-SNE of 18 test videos at view all" in capsys.readouterr().out
    assert (tmp_path / "tsne_all.png").stat().st_size > 10_000


def scores_file(path, names, labels, scores, kind="probabilities"):
    torch.save({"kind": kind, "groups": {"90": {"names": names, "labels": torch.tensor(labels),
                                                 "scores": torch.tensor(scores)}}}, path)  # fmt: skip


def test_fusion_is_a_weighted_sum_of_softmax_scores(tmp_path):
    names = ["a", "b", "c", "d"]
    # the RGB stream is right on a and b, the pose stream on c and d; together they get all four
    scores_file(tmp_path / "rgb.pt", names, [0, 1, 0, 1], [[0.9, 0.1], [0.2, 0.8], [0.45, 0.55], [0.55, 0.45]])
    torch.save(
        {"names": names[::-1], "scores": torch.tensor([[-3.0, 3.0], [3.0, -3.0], [0.1, 0.0], [0.0, 0.1]])},
        tmp_path / "pose.pt",
    )  # fmt: skip  (a user's flat logits file, in another order)
    result = fuse(tmp_path / "rgb.pt", tmp_path / "pose.pt", weight=0.5, out=tmp_path / "fused")
    group = result["groups"]["90"]
    assert (group["top1_first"], group["top1_second"], group["top1"]) == (0.5, 0.5, 1.0)
    assert fuse(tmp_path / "rgb.pt", tmp_path / "pose.pt", weight=1.0)["groups"]["90"]["top1"] == 0.5
    torch.save({"names": ["x"], "scores": torch.zeros(1, 2)}, tmp_path / "other.pt")
    with pytest.raises(DatasetError, match="share no sample names"):
        fuse(tmp_path / "rgb.pt", tmp_path / "other.pt", weight=0.5)
    with pytest.raises(ConfigError, match="--weight"):
        fuse(tmp_path / "rgb.pt", tmp_path / "pose.pt", weight=1.5)


POSE = ["pose.frames=12", "pose.bodies=1", "pose.supervised_epochs=40", "pose.supervised_batch_size=6",
        "pose.agcn_width=0.125", "pose.val_subjects=1", "pose.batch_size=8"]  # fmt: skip


def test_pose_stream_fusion_and_report_end_to_end(root, pretrained, tmp_path, capsys):
    args = overrides(root, tmp_path, f"eval.checkpoint={pretrained / 'stage2' / 'final.pt'}", "eval.crops=1", *POSE)
    assert main(["pose", *args, "--method", "agcn", "--validation", "--no-progress"]) == 0
    pose = json.loads((tmp_path / "pose" / "agcn" / "finetune" / "results.json").read_text())
    assert pose["modality"] == "Pose" and pose["normalise"] == "none" and set(pose["groups"]) == {"0", "45", "90"}
    assert pose["groups"]["0"]["top1"] > 0.5  # 3 classes from the joints seen at the training view
    val = json.loads((tmp_path / "pose" / "agcn" / "finetune-val" / "results.json").read_text())
    assert list(val["groups"]) == ["val"] and val["groups"]["val"]["videos"] == 3 * 2  # one subject's 0° takes
    assert main(["probe", *args, "--no-progress"]) == 0
    pose_scores = tmp_path / "pose" / "agcn" / "finetune" / "scores.pt"
    assert main(["fuse", str(tmp_path / "eval" / "probe" / "scores.pt"), str(pose_scores),
                 "--out", str(tmp_path / "fused")]) == 0  # fmt: skip
    assert set(json.loads((tmp_path / "fused" / "results.json").read_text())["groups"]) == {"0", "45", "90"}
    assert "| fused (w = 0.5) | fusion | RGB + Pose |" in (tmp_path / "fused" / "results.md").read_text()
    assert main(["report", str(pretrained), str(tmp_path), "--out", str(tmp_path / "report.md")]) == 0
    report = (tmp_path / "report.md").read_text()
    for piece in (
        "losses.png",
        "knn.png",
        "pretext.png",
        "instance.png",
        "## Results",
        "CVS3 (90°)",
        "confusion_",
        "```yaml",
    ):
        assert piece in report, piece
    assert (tmp_path / "report_files" / "losses.png").stat().st_size > 10_000


def test_one_results_table_for_one_result_or_several_seeds():
    one = {"method": "InfoNCE", "evaluation": "probe", "modality": "RGB", "protocol": "cs", "groups": {"all": 0.5}}
    assert results_table([one]).splitlines() == [
        "| Method | Evaluation | M | CS |", "|---|---|---|---:|", "| InfoNCE | linear probe | RGB | 50.0 |"
    ]  # fmt: skip
    seeds = {**one, "protocol": "cvs", "groups": {"0": [0.5, 0.7], "45": [0.2, 0.2], "90": None}}
    lines = results_table([seeds]).splitlines()
    assert lines[0] == "| Method | Evaluation | M | CVS1 (0°) | CVS2 (45°) | CVS3 (90°) |"
    assert lines[2] == "| InfoNCE | linear probe | RGB | 60.0 ± 14.1 | 20.0 ± 0.0 | – |"  # sample std (ddof 1)


def test_top5_is_over_the_classes_the_split_has():
    from viewclr.eval.predict import Predictions, summarise

    classes = tuple(f"c{i}" for i in range(60))
    scores = torch.zeros(4, 60)
    scores[:, 50:] = 1.0  # a 60-way head trained elsewhere prefers classes the split does not have
    scores[torch.arange(4), torch.tensor([0, 1, 2, 3])] = 0.5
    scores[torch.arange(4), torch.tensor([1, 2, 3, 4])] = 0.6  # each video's own class is second among 0…7
    predictions = Predictions(["a", "b", "c", "d"], torch.tensor([0, 1, 2, 3]), scores, torch.ones(4))
    everything = summarise(predictions, classes)
    assert everything["top1"] == 0.0 and everything["top5"] == 0.0 and everything["top5_of"] == 60
    present = summarise(predictions, classes, present=list(range(8)))
    assert present["top1"] == 0.0 and present["top5"] == 1.0 and present["top5_of"] == 8


def test_mean_class_accuracy_weighs_every_class_the_same():
    from viewclr.eval.predict import Predictions, summarise

    scores = torch.tensor([[1.0, 0.0]] * 4)  # always class 0: three of class 0 right, the one of class 1 wrong
    done = summarise(Predictions(list("abcd"), torch.tensor([0, 0, 0, 1]), scores, torch.ones(4)), ("x", "y"))
    assert (done["top1"], done["mean_class"], done["per_class"]) == (0.75, 0.5, {"x": 1.0, "y": 0.0})


def test_class_names_name_the_classes_of_an_ntu_layout_dataset_with_its_own_actions(tmp_path):
    from helpers import make_ntu_tree

    from viewclr.config import DataConfig
    from viewclr.data.registry import build_split
    from viewclr.errors import ConfigError, DatasetError

    root = tmp_path / "mine"
    make_ntu_tree(root, ["S001C001P001R001A001", "S001C001P002R001A002"], num_frames=8, height=16, width=16)
    names = tmp_path / "classes.txt"
    names.write_text("# my actions\nwave\nclap\n")
    spec, split = build_split(DataConfig(dataset="ntu60", root=str(root), protocol="cs", class_names=str(names)))
    assert spec.classes == ("wave", "clap") and {s.label for s in split.train_samples()} == {0, 1}
    assert build_split(DataConfig(dataset="ntu60", root=str(root), protocol="cs"))[0].classes[0] == "drink water"
    names.write_text("wave\n")
    with pytest.raises(DatasetError, match="beyond the 1 classes.*data.class_names"):
        build_split(DataConfig(dataset="ntu60", root=str(root), protocol="cs", class_names=str(names)))
    with pytest.raises(ConfigError, match="data.class_names.*does not exist"):
        build_split(DataConfig(dataset="ntu60", root=str(root), protocol="cs", class_names=str(tmp_path / "no")))
