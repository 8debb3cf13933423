"""What every trained or evaluated artefact was made from, and the one rule for reusing it.

An artefact's *identity* is everything its numbers are a function of: the settings that change what it trains or
measures (flat config keys), the videos it saw (names and labels, digested), and its parent — the identity of the
weights it starts from or evaluates (stage 2's stage 1, `train.init`'s file, a probe's encoder). A stage's identity
also holds its length (epochs). Checkpoints, final.pt and results.json record it; `differences` compares a recorded
identity with the one a run would make, naming the keys, and nothing is reused unless they are equal — except that
a run may be extended (`continues`): a checkpoint of the same settings, at or before the epochs asked, with a
learning rate (and an adversary ramp) that does not depend on the run's length.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from viewclr.config import Config, flat_settings
from viewclr.fileio import read_json, set_aside

# The three tables of settings below keep their hand layout (`# fmt: skip`): a reader scans them as lists.
#
# Settings that do not change what a stage trains: where files go, how often to log or save, the monitor, the
# evaluation, the stage lengths (the identity's epochs), threads and devices; train.init is its file's digest.
NOT_RUN_IDENTITY = (
    "out_dir", "data.root", "data.num_workers", "train.threads", "train.log_every", "train.checkpoint_every",
    "train.keep_checkpoints", "train.knn_every", "train.knn_k", "train.knn_max_train", "train.device",
    "train.compile", "train.channels_last", "train.cudnn_benchmark", "train.fused_adam", "train.nonfinite",
    "train.deterministic", "train.stage1_epochs", "train.stage2_epochs", "train.init", "method.name", "eval.",
    "pose.",
)  # fmt: skip
# Settings only ViewCLR's stage 2 reads: a MoCo stage (stage 1, the InfoNCE baseline) is the same run without them.
STAGE2_ONLY = tuple(f"method.{k}" for k in (
    "alpha", "use_generator", "use_l3d", "use_adv", "w_3d", "w_adv", "w_rec", "grl",
    "grl_schedule", "grl_gamma", "stage2_optimizer",
)) + tuple(f"model.{k}" for k in (
    "npl_hidden", "npl_depth", "low_dim", "autoencoder_hidden", "world", "voxel_size", "voxel_channels",
))  # fmt: skip
# Settings that do not change what an evaluation measures: pretraining's own (they reach it through the weights'
# identity), where files go, speed switches; eval.checkpoint is the weights' identity.
NOT_EVAL_IDENTITY = (
    "out_dir", "data.root", "data.num_workers", "train.", "method.", "optim.", "eval.checkpoint",
    "eval.channels_last", "pose.",
)  # fmt: skip
# What a pose artefact (SkeletonCLR's weights, a pose evaluation) depends on: the pose settings but where files
# lie, and the protocol's data settings.
POSE_DATA = ("data.dataset", "data.protocol", "data.class_names", "data.train_views", "data.train_subjects",
             "data.exclude_missing_skeletons", "data.min_frames", "seed")  # fmt: skip

# Settings a later version removed, with the value at which the code computed exactly what it computes without
# them: an artefact that recorded one of them at that value is the same run as one that records none.
RETIRED = {"method.w_clean": 0.0, "method.mix_partner": "random", "method.batch_negatives": False}


def stage_settings(cfg: Config | str | None, stage2: bool) -> dict:
    """The settings a stage's weights depend on (flat keys), from a config or the YAML a file stores."""
    ignored = NOT_RUN_IDENTITY if stage2 else NOT_RUN_IDENTITY + STAGE2_ONLY
    return {k: v for k, v in flat_settings(cfg).items() if not k.startswith(ignored)}


def eval_settings(cfg: Config) -> dict:
    return {k: v for k, v in flat_settings(cfg).items() if not k.startswith(NOT_EVAL_IDENTITY)}


def pose_settings(cfg: Config) -> dict:
    flat = flat_settings(cfg)
    return {
        k: v
        for k, v in flat.items()
        if (k.startswith("pose.") and k not in ("pose.root", "pose.cache")) or k.startswith(POSE_DATA)
    }


def samples_digest(samples) -> str:
    """The videos a run saw, by name and label (a moved dataset root is the same data)."""
    digest = hashlib.sha256()
    for sample in sorted(samples, key=lambda s: s.name):
        digest.update(f"{sample.name}\t{sample.label}\n".encode())
    return digest.hexdigest()[:16]


_FILE_DIGESTS: dict[tuple, str] = {}


def file_digest(path: str | Path) -> str:
    """sha256 (16 hex digits) of a file's bytes, kept per (path, size, mtime) for the process."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _FILE_DIGESTS:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _FILE_DIGESTS[key] = digest.hexdigest()[:16]
    return _FILE_DIGESTS[key]


def weights_identity(path: str | Path | None) -> dict | None:
    """The identity of the weights in `path`: the one a viewclr final.pt records, else the file's digest."""
    if path is None:
        return None
    from viewclr.checkpoint import load_weights  # torch, only when weights are read

    saved = load_weights(path, mmap=True)
    recorded = saved.get("summary", {}).get("identity") if isinstance(saved, dict) else None
    return recorded if recorded is not None else {"file": file_digest(path)}


def stage_identity(cfg: Config, method: str, epochs: int, samples, parent: dict | None = None) -> dict:
    """A pretraining stage's identity: `method` infonce (stage 1, the InfoNCE baseline) or viewclr (stage 2)."""
    from viewclr.checkpoint import CheckpointError
    from viewclr.errors import ConfigError

    try:
        init = weights_identity(cfg.train.init)
    except CheckpointError as err:
        raise ConfigError("train.init", str(err)) from None
    return {
        "method": method,
        "settings": stage_settings(cfg, method == "viewclr"),
        "data": samples_digest(samples),
        "init": init,
        "parent": parent,
        "epochs": epochs,
    }


def eval_identity(cfg: Config, mode: str, split) -> dict:
    """An evaluation's identity: its mode and settings, the videos it trains and tests on, the weights' identity."""
    samples = split.train_samples() + [s for group in split.test.values() for s in group]
    return {
        "mode": mode,
        "settings": eval_settings(cfg),
        "data": samples_digest(samples),
        "weights": weights_identity(cfg.eval.checkpoint),
    }


def fit_identity(identity: dict, epochs: int) -> dict:
    """An evaluation's identity as its training's checkpoints record it: its length is the identity's epochs (a
    longer fit continues a shorter one), not a setting."""
    settings = {k: v for k, v in identity["settings"].items() if k not in ("eval.epochs", "eval.finetune_epochs")}
    return {**identity, "settings": settings, "epochs": epochs}


def length_dependent(cfg: Config, method: str) -> bool:
    """Whether a step's learning rate (or adversary coefficient) depends on the stage's length: then a longer run
    is not the continuation of a shorter one."""
    return cfg.optim.schedule != "constant" or (method == "viewclr" and cfg.method.grl_schedule != "constant")


def without_retired(identity):
    """A recorded identity without the RETIRED settings it holds at their neutral value (its parents' too)."""
    if not isinstance(identity, dict):
        return identity
    upgraded = dict(identity)
    if isinstance(identity.get("settings"), dict):
        upgraded["settings"] = {k: v for k, v in identity["settings"].items() if not (k in RETIRED and v == RETIRED[k])}
    for key in ("parent", "weights", "init"):
        if isinstance(identity.get(key), dict):
            upgraded[key] = without_retired(identity[key])
    return upgraded


def differences(saved: dict | None, current: dict, prefix: str = "") -> list[str]:
    """What differs between a recorded identity and the current one, one phrase each ('optim.lr 0.001 there,
    0.002 here'); [] when they are equal."""
    if saved is None:
        return [f"{prefix}no record of its settings (written by an older version)"]
    saved, current = without_retired(saved), without_retired(current)
    found = []
    for key in sorted(saved.keys() | current.keys()):
        there, here = saved.get(key), current.get(key)
        if there == here:
            continue
        if key == "settings":
            there, here = there or {}, here or {}
            found += [
                f"{prefix}{k} {_show(there.get(k))} there, {_show(here.get(k))} here"
                for k in sorted(there.keys() | here.keys())
                if there.get(k) != here.get(k)
            ]
        elif key in ("parent", "weights", "init") and isinstance(there, dict) and isinstance(here, dict):
            found += differences(there, here, f"{prefix}{_NAMES[key]}: ")
        else:
            found.append(f"{prefix}{_NAMES.get(key, key)} {_show(there)} there, {_show(here)} here")
    return found


PARENT = "the stage it starts from:"  # how differences in an identity's parent begin
_NAMES = {
    "parent": PARENT[:-1],
    "weights": "the encoder",
    "init": "train.init",
    "data": "the videos (digest)",
}


def _show(value) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {v}" for k, v in list(value.items())[:3]) + (", ..." if len(value) > 3 else "}")
    return "none" if value is None else str(value)


def continues(saved: dict | None, position: tuple[int, int], current: dict, length_dependent_: bool) -> list[str]:
    """Why a checkpoint with identity `saved`, at (epoch, batch) `position`, is not a point of the run `current`
    asks ([] if it is): the same identity but for the epochs, the checkpoint at or before the run's end, and a
    rate that does not depend on the run's length."""
    if saved is None:
        return differences(None, current)
    found = differences({**saved, "epochs": current["epochs"]}, current)  # it drops the retired settings
    if found or saved["epochs"] == current["epochs"]:
        return found
    if tuple(position) > (current["epochs"], 0):
        return [
            f"a run cannot be shortened: it trained {position[0]} epochs"
            f"{f' and {position[1]} steps' if position[1] else ''}, this run asks {current['epochs']}"
        ]
    if length_dependent_:
        return [
            f"epochs {saved['epochs']} there, {current['epochs']} here, and the learning rate (or the adversary's "
            "ramp) depends on the run's length: a longer run is not its continuation"
        ]
    return []


def same(saved: dict | None, current: dict) -> bool:
    recorded, current = without_retired(saved), without_retired(current)
    return saved is not None and json.dumps(recorded, sort_keys=True) == json.dumps(current, sort_keys=True)


def reuse(out: str | Path, identity: dict, doing: str = "evaluating") -> dict | None:
    """The results.json in `out` when it records `identity`; otherwise None — and a results.json of another
    identity is named with its differences and set aside (`doing` again: "evaluating", "testing")."""
    done = Path(out) / "results.json"
    if not done.is_file():
        return None
    saved = read_json(done)
    recorded = saved.get("identity") if isinstance(saved, dict) else None
    if same(recorded, identity):
        return saved
    problems = "; ".join(differences(recorded, identity)[:4])
    logging.getLogger(__name__).warning("%s does not match this evaluation (%s); %s again", done, problems, doing)
    set_aside(out)
    return None
