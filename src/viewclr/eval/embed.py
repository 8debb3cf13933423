"""Frozen features for users' own work (`viewclr extract`), the kNN evaluation (`viewclr knn`) and t-SNE plots of
an unseen view (`viewclr tsne`, appendix Fig. 4) — of a video encoder, or of SkeletonCLR's (its final.pt says so:
the skeletons of the split's samples are read from the pose cache instead of the videos)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from viewclr import lineage, provenance
from viewclr.config import to_yaml
from viewclr.data.augment import modality
from viewclr.data.index import view_label
from viewclr.data.poses import batches_of, pose_data
from viewclr.data.registry import build_split
from viewclr.errors import ConfigError, ViewCLRError
from viewclr.eval.classify import encoder_of
from viewclr.eval.tables import result_row, results_table
from viewclr.features import extract_features, knn_accuracy
from viewclr.fileio import folder_lock, write_json
from viewclr.models.weights import check_skeletons, load_pose_encoder, pose_record
from viewclr.runtime import choose_device


def _encoder(cfg, split=None):
    """(backbone, spec, split, skeleton cache or None): a skeleton encoder (SkeletonCLR's final.pt or a pose
    classifier.pt says so) reads the samples that have skeletons, from the pose cache (`data.poses`), normalised
    as it was trained; any other, the videos."""
    record = pose_record(cfg.eval.checkpoint)
    if record is not None:
        check_skeletons(cfg.eval.checkpoint, record, cfg)
        data = pose_data(cfg, progress=False)
        encoder = load_pose_encoder(cfg.eval.checkpoint, data.joints, cfg.pose.bodies)
        return encoder, data.spec, data.split, data.cache
    spec, split = split if split is not None else build_split(cfg.data)
    return encoder_of(cfg), spec, split, None


@torch.no_grad()
def pose_features(backbone, cache, samples, device, normalize=False, indices=None):
    """A skeleton encoder's features [N, C] (eval mode) of `samples`, read from the skeleton cache, and labels [N]."""
    backbone.eval()
    parts = [backbone(x.to(device)).float().cpu() for x, _, _ in batches_of(cache, samples, 64, 0, 0, False)]
    if indices is not None:
        indices.extend(range(len(samples)))
    features = torch.cat(parts) if parts else torch.zeros(0, backbone.out_channels)
    return F.normalize(features, dim=1) if normalize else features, torch.tensor([s.label for s in samples])


def _features(
    cfg, samples, device, backbone, normalize=True, indices=None, progress=False, desc="features", cache=None
):
    if cache is not None:
        return pose_features(backbone, cache, samples, device, normalize, indices)
    return extract_features(
        backbone,
        samples,
        cfg,
        device,
        windows=cfg.eval.feature_windows,
        normalize=normalize,
        indices=indices,
        progress=progress,
        desc=desc,
    )


def extract(cfg, out: str | Path, side: str = "all", progress: bool = False) -> dict:
    """Features of every video of the split (`side`: train, test or all) → OUT.npy [N, C] + OUT.json with the
    sample names, labels, views and which side and group each belongs to."""
    device = choose_device(cfg.train.device)
    backbone, spec, split, cache = _encoder(cfg)
    backbone.to(device)
    parts = []
    if side in ("train", "all"):
        parts += [("train", group, samples) for group, samples in split.train.items()]
    if side in ("test", "all"):
        parts += [("test", group, samples) for group, samples in split.test.items()]
    arrays, records = [], []
    for part, group, samples in parts:
        kept: list[int] = []
        features, _ = _features(
            cfg, samples, device, backbone, False, kept, progress, f"features {part} {group}", cache
        )
        arrays.append(features.numpy())
        records += [
            {"name": s.name, "label": int(s.label), "view": s.view, "side": part, "group": group}
            for s in (samples[i] for i in kept)
        ]
    out = Path(out).with_suffix("")
    out.parent.mkdir(parents=True, exist_ok=True)
    matrix = np.concatenate(arrays) if arrays else np.zeros((0, 0), np.float32)
    np.save(out.with_suffix(".npy"), matrix)
    meta = {"classes": list(spec.classes), "checkpoint": cfg.eval.checkpoint, "samples": records}
    write_json(out.with_suffix(".json"), meta)
    return {
        "features": str(out.with_suffix(".npy")),
        "shape": list(matrix.shape),
        "index": str(out.with_suffix(".json")),
    }


def knn(cfg, out: str | Path | None = None, progress: bool = False, split=None) -> dict:
    """kNN top-1 per test group (frozen features, eval.feature_windows windows averaged per video, the training
    videos as reference), into `out` (results.json with its identity, results.md). `split`: (spec, Split)."""
    device = choose_device(cfg.train.device)
    backbone, spec, split, cache = _encoder(cfg, split)
    backbone.to(device)
    out = Path(out or Path(cfg.out_dir) / "eval" / "knn")
    with folder_lock(out, "viewclr knn"):
        return _knn(cfg, out, progress, spec, split, backbone, device, cache)


def _knn(cfg, out: Path, progress: bool, spec, split, backbone, device, cache=None) -> dict:
    train_x, train_y = _features(
        cfg, split.train_samples(), device, backbone, progress=progress, desc="features train", cache=cache
    )
    groups = {}
    for group, samples in split.test.items():
        test_x, test_y = _features(
            cfg, samples, device, backbone, progress=progress, desc=f"features test {group}", cache=cache
        )
        groups[group] = {
            "videos": len(test_y),
            "top1": knn_accuracy(train_x, train_y, test_x, test_y, len(spec.classes), cfg.eval.knn_k),
        }
    windows = 1 if cache is not None else cfg.eval.feature_windows  # a skeleton sequence is encoded whole, once
    results = {
        "mode": "knn",
        "k": cfg.eval.knn_k,
        "windows": windows,
        "dataset": spec.name,
        "protocol": split.protocol,
        "checkpoint": cfg.eval.checkpoint,
        "modality": "Pose" if cache is not None else modality(cfg.model.input),
        "classes": len(spec.classes),
        "groups": groups,
        # what it measured (compare reuses only its like); a pose encoder's features depend on the pose settings
        "identity": {
            **lineage.eval_identity(cfg, "knn", split),
            **({"pose": lineage.pose_settings(cfg)} if cache is not None else {}),
        },
        "provenance": provenance.record(),  # which code measured it (compare warns on a mix)
    }
    (out / "config.yaml").write_text(to_yaml(cfg))
    write_json(out / "results.json", results)
    title = f"kNN (k={cfg.eval.knn_k}, {windows} windows per video)"
    (out / "results.md").write_text(results_table([result_row(title, results)]) + "\n")
    return results


def tsne(cfg, out: str | Path, view: str | None = None, max_samples: int = 1000, progress: bool = False) -> dict:
    """A t-SNE of the test videos of one view (default: the last test group, e.g. 90° for CVS — unseen in
    training), coloured by class, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        from sklearn.manifold import TSNE
    except ImportError:
        raise ViewCLRError("viewclr tsne needs scikit-learn: pip install 'viewclr[tsne]'") from None

    device = choose_device(cfg.train.device)
    backbone, spec, split, cache = _encoder(cfg)
    if not split.test:
        raise ConfigError("data.protocol", f"{split.protocol} has no test split to embed")
    view = view or list(split.test)[-1]
    if view not in split.test and view != "all":
        raise ConfigError(
            None, f"--view {view} is not a test group of {split.protocol} ({', '.join(split.test)}, or all)"
        )
    views = list(split.test) if view == "all" else [view]
    tagged = [(sample, v) for v in views for sample in split.test[v]]
    if len(tagged) > max_samples:
        keep = np.sort(np.random.default_rng(cfg.seed).choice(len(tagged), max_samples, replace=False))
        tagged = [tagged[i] for i in keep]
    backbone.to(device)
    features, labels, where = [], [], []
    for v in views:  # one view at a time: a video a feature extraction may skip (unreadable) keeps its view
        part = [sample for sample, w in tagged if w == v]
        if part:
            x, y = _features(cfg, part, device, backbone, progress=progress, cache=cache)
            features.append(x)
            labels.append(y)
            where += [v] * len(y)
    features, labels = torch.cat(features), torch.cat(labels)
    if len(features) < 5:
        raise ConfigError(None, f"t-SNE needs at least 5 videos; {len(features)} were readable")
    perplexity = float(min(30, max(2, (len(features) - 1) // 3)))
    points = TSNE(2, perplexity=perplexity, init="pca", random_state=cfg.seed).fit_transform(features.numpy())
    figure, axis = plt.subplots(figsize=(7, 6), dpi=120)
    colours = plt.get_cmap("tab20" if len(spec.classes) > 10 else "tab10")
    markers = "o^sDvP*X"
    where = np.array(where)
    for c in sorted(set(labels.tolist())):
        for i, v in enumerate(views):
            mask = (labels.numpy() == c) & (where == v)
            if mask.any():
                label = spec.classes[c] if i == 0 or len(views) == 1 else None
                axis.scatter(
                    points[mask, 0],
                    points[mask, 1],
                    s=12,
                    color=colours(c % colours.N),
                    marker=markers[i % len(markers)],
                    label=label,
                )
    for i, v in enumerate(views if len(views) > 1 else []):  # the marker of each view, in grey
        axis.scatter([], [], s=12, color="grey", marker=markers[i % len(markers)], label=f"view {view_label(v)}")
    shown = "every test view (marker: view)" if len(views) > 1 else view_label(view)
    axis.set_title(f"t-SNE of {spec.title} test videos at {shown} ({len(features)} videos)")
    axis.set_xticks([])
    axis.set_yticks([])
    axis.legend(fontsize=6, markerscale=1.5, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    figure.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    plt.close(figure)
    return {"png": str(out), "view": view, "videos": len(features)}
