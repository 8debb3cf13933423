"""Typed configuration: dataclasses, YAML presets shipped in the package (`viewclr/configs/`), dotted
command-line overrides. Each section's dataclass sits beside the checks of its values, so that what one setting
means is said in one place.

`load_config("synth_cpu", ["optim.lr=3e-4"])` merges, in order, the dataclass defaults, the preset (a bare name
is a packaged preset, from any folder; a path is a YAML file of your own) and the overrides, checks every key and
type (OmegaConf structured configs) and every value's meaning (`validate`), and returns a plain `Config`
dataclass. Any problem raises `ConfigError` naming the key, before any work starts.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field, fields, is_dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from viewclr.errors import ConfigError


@dataclass
class DataConfig:
    """Which videos to read, which protocol splits them, and how clips are cut from them."""

    dataset: str = "ntu60"  # ntu60 | ntu120 | nucla | folder | synth (checked where the dataset is built)
    root: str | None = None  # raw dataset root, or a cache made by `viewclr prepare`
    labels_csv: str | None = None  # folder dataset only: path,label[,view][,subject]
    class_names: str | None = None  # a file of class names, one a line (label 0 first): a dataset in NTU layout
    # with its own actions (A001 = the first line), or other names for any dataset's classes
    protocol: str = "cvs"  # each dataset's protocols: `viewclr splits --help` (checked where the split is made)
    train_views: list[str] = field(default_factory=list)  # folder dataset, protocol cross_view
    train_subjects: list[int] = field(default_factory=list)  # folder dataset, protocol cross_subject
    exclude_missing_skeletons: bool | None = None  # NTU: drop the official missing-skeleton samples; None: the
    # protocol's default — on for CVS (SURREACT's lists: also its two extra drops), off for CS/CV/CSub/CSet
    min_frames: int | None = None  # drop shorter videos when frame counts are known; None: dataset default
    frames: int = 32  # T, frames per clip (paper §4.2: 32)
    stride: int = 1  # temporal stride between clip frames (paper: 30 fps, stride 1)
    short_side: int | None = 128  # decoded frames are resized to this short side; None keeps file size
    frame_size: list[int] | None = None  # [H, W]: resize every video to exactly this (mixed aspect ratios)
    pad: Literal["loop", "repeat"] = "loop"  # videos shorter than a clip: loop, or repeat the last frame
    eval_overlap: float = 0.5  # overlap of consecutive evaluation windows
    eval_max_windows: int | None = None  # evenly spaced subset of windows; None: all
    batch_size: int = 32  # per device
    # training batches: none (random) | subject: consecutive videos of one subject, so a
    # clip's in-batch negatives share its actor (docs/results.md, "Why residual frames")
    group_by: Literal["none", "subject"] = "none"
    num_workers: int = 4  # DataLoader worker processes


@dataclass
class AugmentConfig:
    """Clip-consistent augmentation on the training device (paper §4.2, CoCLR's values)."""

    size: int = 128  # output crop, square
    crop_scale: list[float] = field(default_factory=lambda: [0.2, 1.0])  # area fraction
    crop_ratio: list[float] = field(default_factory=lambda: [3 / 4, 4 / 3])
    hflip_p: float = 0.5
    jitter: list[float] = field(default_factory=lambda: [0.4, 0.4, 0.4, 0.1])  # b, c, s, hue
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_sigma: list[float] = field(default_factory=lambda: [0.1, 2.0])
    blur_p: float = 0.5
    mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])  # part of what an encoder means:
    std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])  # recorded with its weights


@dataclass
class OptimConfig:
    """Optimiser settings (paper §4.2: Adam, lr 1e-3, weight decay 1e-5)."""

    lr: float = 1e-3
    weight_decay: float = 1e-5
    # constant (the paper) | cosine: from lr down to 0 over each stage's steps
    schedule: Literal["constant", "cosine"] = "constant"
    warmup_epochs: float = 0.0  # linear warm-up from lr / warm-up steps to lr over each stage's first epochs


@dataclass
class ModelConfig:
    """The encoder (paper §4.2: S3D, split after Mixed_3c), its projection head and the viewpoint generator."""

    backbone: str = "s3d"  # checked where it is built (models.registry)
    # what the encoder sees: the frames (the paper) | residual: their differences, motion only. Recorded with the
    # weights and checked when they are loaded, as the width is
    input: Literal["rgb", "residual"] = "rgb"
    width: float = 1.0  # channel multiplier: 1.0 is the paper's S3D; 0.25 / 0.5 for CPU presets
    proj_dim: int = 128  # contrastive embedding size
    proj_hidden: int | None = None  # projection MLP hidden size (default: the encoder's feature size)
    npl_hidden: int = 64  # channels of the NPL's coordinate CNN
    npl_depth: float = 2.0  # d₀: distance of the lifting camera from the scene centre
    low_dim: int = 128  # d_low of the world auto-encoder (paper: 128)
    autoencoder_hidden: int | None = None  # a hidden layer in each auto-encoder MLP (default: none)
    # F_W of eq. 1: points ([F ; p_w] per pixel, the paper's (c+3)×T×m×n) | voxels (a grid)
    world: Literal["points", "voxels"] = "points"
    voxel_size: int = 8  # world=voxels: D, the grid is D×D×D around the scene centre
    voxel_channels: int = 32  # world=voxels: c′, the features are reduced to this many channels before splatting


@dataclass
class MethodConfig:
    """The self-supervised method (paper §3, §4.2). `viewclr` pretrains MoCo (stage 1) then ViewCLR (stage 2);
    `infonce` is the InfoNCE-only baseline (MoCo trained with InfoNCE), trained for the same total epochs."""

    name: Literal["viewclr", "infonce"] = "viewclr"
    queue_size: int = 2048  # Queue1 (and Queue2) length
    momentum: float = 0.999  # momentum encoder
    tau: float = 0.07  # softmax temperature
    alpha: float = 1.0  # mixup λ ~ Beta(α, α)
    use_generator: bool = True  # Table 1 "no VG": the third stream's fg1 features are mixed without G
    use_l3d: bool = True  # L3D (and the world auto-encoder, L_R, Queue2)
    use_adv: bool = True  # L_adv through the gradient reversal layer (and fg2)
    w_3d: float = 1.0
    w_adv: float = 1.0
    w_rec: float = 1.0
    grl: float = 1.0  # gradient reversal coefficient
    # constant (grl throughout) | dann: grl·(2/(1 + exp(−grl_gamma·p)) − 1), p the
    # fraction of stage 2 done (Ganin et al. 2016): the adversary starts at 0 and reaches grl by the stage's end
    grl_schedule: Literal["constant", "dann"] = "constant"
    grl_gamma: float = 10.0  # the dann ramp's steepness
    bn_splits: int = 2  # one device: shuffle-BN emulated by BatchNorm over this many sub-batches (1 = off)
    # carry: stage 2 keeps the encoder's Adam moments from stage 1; fresh: new Adam
    stage2_optimizer: Literal["carry", "fresh"] = "carry"
    exclude_own_video: bool = True  # a queued key of the query's own video is no negative (nor L3D's neighbour)


@dataclass
class TrainConfig:
    """The training engine (paper §4.2: 300 + 200 epochs; the InfoNCE baseline 500)."""

    stage1_epochs: int = 300
    stage2_epochs: int = 200
    max_steps_per_epoch: int | None = None  # cap an epoch (smoke runs, tests)
    checkpoint_every: int = 500  # steps; a checkpoint is also written at the end of every epoch
    keep_checkpoints: int = 2
    log_every: int = 10  # steps between logged values
    knn_every: int = 0  # epochs between kNN monitors of cross-view accuracy (0: only at the end of a stage)
    knn_k: int = 20
    knn_max_train: int | None = None  # subsample the kNN reference set (None: all training videos)
    # auto: bf16 on CUDA, fp32 on CPU | bf16 | fp16 | fp32 (no autocast; not "off", which YAML reads as false)
    amp: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    # fp16 only: the gradient scaler's starting loss scale (torch's 2**16). A step whose gradients overflow is
    # skipped and the scale halved; each stage's summary counts the skipped steps (overflow_steps)
    loss_scale: float = 65536.0
    compile: bool = False  # torch.compile the encoder
    # the GPU switches; None picks the faster on the device (on for CUDA; on CPU channels_last_3d only, as cuDNN,
    # fused Adam and autocast do not apply or are slower there)
    channels_last: bool | None = None  # channels_last_3d memory format for training
    cudnn_benchmark: bool | None = None  # cuDNN's autotuner (never with train.deterministic)
    fused_adam: bool | None = None  # Adam's fused update, where the torch version has it
    nonfinite: Literal["stop", "skip"] = "stop"  # a NaN/inf loss: stop (naming the step and term) | skip the step
    deterministic: bool = False  # torch.use_deterministic_algorithms
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto | cpu | cuda
    threads: int | None = None  # CPU intra-op threads (None: torch's default)
    # start pretraining from other weights: a pretrain final.pt, a probe/finetune result or an S3D state dict
    # (torchvision's Kinetics-400 layout); its width and input are checked; see docs/usage.md
    init: str | None = None


@dataclass
class EvalConfig:
    """Downstream evaluation (paper §4.3, appendix 1): linear probe, finetune, multi-view test, kNN. The finetune's
    defaults are Appendix 1's ("similar optimization configuration as in the pre-training stage for 500 epochs");
    the paper gives no settings of the linear probe's training (docs/method.md)."""

    checkpoint: str | None = None  # encoder weights: a pretrain final.pt, a probe/finetune result, or torchvision's S3D
    epochs: int = 100  # linear probe epochs (the paper gives none)
    finetune_epochs: int = 500  # Appendix 1
    lr: float = 1e-3  # Adam, probe and finetune (the finetune's: pretraining's, Appendix 1)
    weight_decay: float = 0.0  # linear probe (the paper gives none)
    finetune_weight_decay: float = 1e-5  # pretraining's (Appendix 1)
    backbone_lr_scale: float = 1.0  # finetune: the encoder learns at lr × this (Appendix 1: one configuration)
    dropout: float = 0.5  # before the linear layer (finetune; and the probe's slow path); the paper gives none
    feature_norm: Literal["none", "bn", "l2"] = "bn"  # probe: none | bn (non-affine BatchNorm, as CoCLR) | l2
    fast: bool = True  # probe: extract features once and train the linear layer on them
    crops: int = 10  # test: 10 (centre + 4 corners, each flipped) or 1 (centre)
    windows: int | None = None  # test: overlapping windows per video (None: all that cover it)
    feature_windows: int = 4  # probe / kNN / extract / t-SNE: windows averaged into a video's feature
    knn_k: int = 20
    channels_last: bool = True  # channels_last_3d for evaluation forwards (faster S3D pooling: docs/performance.md)


@dataclass
class PoseConfig:
    """The pose modality: 3D skeletons, SkeletonCLR (MoCo over ST-GCN; Table 1's modality P) and the supervised
    2s-AGCN joint stream fused with ViewCLR (Tables 4-6's "ViewCLR + Poses"). The defaults are the published
    settings (SkeletonCLR's repository; 2s-AGCN's); docs/method.md maps them."""

    root: str | None = None  # skeleton files (NTU: nturgb+d_skeletons/, N-UCLA: skeletons/); None: data.root
    cache: str | None = None  # the array cache of `viewclr prepare --skeletons`; None: made in <out_dir>/skeletons
    frames: int = 300  # T: sequences are cut or zero-padded to this many frames (NTU's longest is 300)
    bodies: int = 2  # M: the most-moving bodies kept
    normalise: Literal["none", "pre"] = "none"  # none: camera coordinates | pre: 2s-AGCN's pre-normalisation
    batch_size: int = 128  # SkeletonCLR pretraining and the linear probe
    epochs: int = 300  # SkeletonCLR pretraining (its repository; the ViewCLR paper trains 500)
    lr: float = 0.1  # SGD, momentum 0.9
    weight_decay: float = 1.0e-4
    lr_steps: list[int] = field(default_factory=lambda: [250])  # epochs at which the lr drops ×0.1
    queue_size: int = 32768
    momentum: float = 0.999
    tau: float = 0.07
    shear: float = 0.5  # shear coefficients drawn from [-shear, shear]
    crop_padding: int = 6  # temporal crop: T // crop_padding frames of reflect padding on each side
    stgcn_width: float = 1.0  # × ST-GCN's 16 base channels
    probe_epochs: int = 100  # linear evaluation: the fc layer only, SGD
    probe_lr: float = 3.0
    probe_steps: list[int] = field(default_factory=lambda: [80])
    supervised_epochs: int = 50  # the AGCN joint stream, and SkeletonCLR's finetune: SGD Nesterov
    supervised_lr: float = 0.1
    supervised_batch_size: int = 64
    supervised_steps: list[int] = field(default_factory=lambda: [30, 40])
    agcn_width: float = 1.0  # × 2s-AGCN's 64 base channels
    val_subjects: int = 4  # training subjects held out to choose the fusion weight (never the test views)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    pose: PoseConfig = field(default_factory=PoseConfig)
    seed: int = 0
    out_dir: str = "runs/default"


def _all_keys(node: Any, prefix: str = "") -> list[str]:
    keys = []
    for name, value in node.items():
        full = f"{prefix}{name}"
        keys.append(full)
        if isinstance(value, DictConfig):
            keys += _all_keys(value, full + ".")
    return keys


def _explain(err: OmegaConfBaseException, schema: DictConfig, source: str, fallback_key: str | None) -> ConfigError:
    """Turn an OmegaConf exception into one line that names the key and where it came from."""
    key = getattr(err, "full_key", None) or getattr(err, "key", None) or fallback_key
    if isinstance(err, ConfigKeyError):
        hint = difflib.get_close_matches(str(key), _all_keys(schema), n=1)
        suffix = f"; did you mean '{hint[0]}'?" if hint else ""
        return ConfigError(key, f"unknown key (from {source}){suffix}")
    message = str(err).splitlines()[0]
    if "is not a ListConfig" in message:  # a single value where the schema has a list
        value = getattr(err, "value", None)
        shown = f" ({value!r})" if value is not None else ""
        return ConfigError(key, f"needs a list, e.g. {key}=[a,b], got a single value{shown} (from {source})")
    return ConfigError(key, f"{message} (from {source})")  # wrong type, bad value


def _merge(base: DictConfig, other: Any, schema: DictConfig, source: str, key: str | None = None) -> DictConfig:
    try:
        return OmegaConf.merge(base, other)
    except OmegaConfBaseException as err:
        raise _explain(err, schema, source, key) from None


def parse_override(item: str) -> tuple[str, DictConfig]:
    """`"optim.lr=3e-4"` → ("optim.lr", a nested config), values read with OmegaConf's dotlist grammar."""
    key, sep, _ = item.partition("=")
    key = key.strip()
    if not sep or not key or " " in key:
        raise ConfigError(None, f"override '{item}' must look like key=value, e.g. optim.lr=3e-4")
    try:
        return key, OmegaConf.from_dotlist([item])
    except OmegaConfBaseException as err:
        raise ConfigError(key, f"cannot parse '{item}': {str(err).splitlines()[0]}") from None


def presets() -> dict[str, Path]:
    """The presets shipped in the package, by name (`viewclr config --list`)."""
    folder = resources.files("viewclr") / "configs"
    return {
        Path(p.name).stem: Path(str(p))
        for p in sorted(folder.iterdir(), key=lambda p: p.name)
        if p.name.endswith(".yaml")
    }


def resolve_preset(name: str | Path) -> Path:
    """A YAML file that exists is itself; otherwise a packaged preset by name: `synth_cpu`, `synth_cpu.yaml` or
    `configs/synth_cpu.yaml` (the repository's older spelling) all name the same preset, from any folder."""
    path = Path(name)
    if path.is_file():
        return path
    stem = path.name.removesuffix(".yaml").removesuffix(".yml")
    known = presets()
    if stem in known and path.parent in (Path("."), Path("configs")):
        return known[stem]
    raise ConfigError(
        None,
        f"config file {path} does not exist and is not a preset (presets: {', '.join(known)}; viewclr config --list)",
    )


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults ← YAML preset (a file, or a packaged preset's name) ← dotted overrides, checked; returns a
    `Config` dataclass."""
    schema = OmegaConf.structured(Config)
    cfg = schema
    if path is not None:
        path = resolve_preset(path)
        try:
            preset = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise ConfigError(None, f"{path}{where}: not valid YAML") from None
        if not isinstance(preset, dict):
            raise ConfigError(None, f"{path}: a config file must be a mapping of keys to values")
        cfg = _merge(cfg, preset, schema, str(path))
    for item in overrides or []:
        key, value = parse_override(item)
        cfg = _merge(cfg, value, schema, "command line", key)
    try:  # resolves ${...} interpolations: an unknown variable or key is the config's error too
        result: Config = OmegaConf.to_object(cfg)  # type: ignore[assignment]
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None)
        raise ConfigError(key, f"cannot resolve its value: {str(err).splitlines()[0]}") from None
    validate(result)
    return result


def to_yaml(cfg: Config) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


# The rows of the paper's Table 1 that ViewCLR's switches make, by (use_generator, use_l3d, use_adv). Its
# "ViewCLR − L_adv − L3D" removes the viewpoint generator too: "the third stream only provides feature to perform
# manifold mixup" (§4.4).
TABLE1_ROWS = {
    (True, True, True): "ViewCLR",
    (True, False, True): "ViewCLR − L3D",
    (True, True, False): "ViewCLR − L_adv",
    (False, False, False): "ViewCLR − L_adv − L3D (no viewpoint generator)",
}
NOT_A_ROW = (
    "not a row of the paper's Table 1: method.use_l3d=false method.use_adv=false keep the viewpoint generator, "
    "trained by L_mix alone; the paper's 'ViewCLR − L_adv − L3D' also removes it (add method.use_generator=false)"
)


def table1_row(cfg: Config) -> str:
    """The row of the paper's Table 1 that `cfg` pretrains ('InfoNCE', 'ViewCLR − L3D', ...), or NOT_A_ROW."""
    if cfg.method.name == "infonce":
        return "InfoNCE"
    m = cfg.method
    return TABLE1_ROWS.get((m.use_generator, m.use_l3d, m.use_adv), NOT_A_ROW)


def flat_settings(cfg: Config | str | None) -> dict:
    """{'optim.lr': 0.001, ...}: every setting of a config, or of the YAML a file stores ({} for none)."""
    if cfg is None or isinstance(cfg, str):
        node = yaml.safe_load(cfg) if cfg else {}
    else:
        node = OmegaConf.to_container(OmegaConf.structured(cfg))

    def flat(node: dict, prefix: str = "") -> dict:
        out = {}
        for key, value in node.items():
            out |= flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value}
        return out

    return flat(node or {})


def _check(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(key, message)


def _check_finite(node: Any, prefix: str = "") -> None:
    """Every float setting (and every float in a list setting) is a finite number: inf or nan (`1e400` reads as
    inf) would pass the range checks below, or overflow later."""
    for item in fields(node):
        value, key = getattr(node, item.name), f"{prefix}{item.name}"
        if is_dataclass(value):
            _check_finite(value, f"{key}.")
        for number in value if isinstance(value, list) else [value]:
            _check(not isinstance(number, float) or math.isfinite(number), key, f"must be a finite number, got {value}")


def _check_range(values: list[float], key: str, low: float, high: float) -> None:
    _check(len(values) == 2, key, f"needs two values [min, max], got {values}")
    _check(low <= values[0] <= values[1] <= high, key, f"needs {low} <= min <= max <= {high}, got {values}")


def validate(cfg: Config) -> None:
    """Check what types cannot: positive sizes, probabilities in [0, 1], settings that must agree. (The choices
    among fixed values are Literal fields OmegaConf enforces; registry names — datasets, protocols, backbones —
    are checked where those are built, naming the key.)"""
    _check_finite(cfg)
    d = cfg.data
    for key in ("frames", "stride", "batch_size"):
        _check(getattr(d, key) >= 1, f"data.{key}", f"must be >= 1, got {getattr(d, key)}")
    _check(d.num_workers >= 0, "data.num_workers", f"must be >= 0, got {d.num_workers}")
    _check(d.short_side is None or d.short_side >= 8, "data.short_side", "must be >= 8 or null")
    if d.frame_size is not None:
        _check(
            len(d.frame_size) == 2 and min(d.frame_size) >= 8,
            "data.frame_size",
            f"must be [H, W] with both >= 8, got {d.frame_size}",
        )
    _check(0.0 <= d.eval_overlap < 1.0, "data.eval_overlap", f"must be in [0, 1), got {d.eval_overlap}")
    _check(d.min_frames is None or d.min_frames >= 0, "data.min_frames", "must be >= 0 or null")
    _check(d.eval_max_windows is None or d.eval_max_windows >= 1, "data.eval_max_windows", "must be >= 1 or null")

    a = cfg.augment
    _check(a.size >= 8, "augment.size", f"must be >= 8, got {a.size}")
    _check_range(a.crop_scale, "augment.crop_scale", 0.0, 1.0)
    _check(a.crop_scale[0] > 0, "augment.crop_scale", "the smallest area must be > 0")
    _check_range(a.crop_ratio, "augment.crop_ratio", 1e-3, 1e3)
    _check_range(a.blur_sigma, "augment.blur_sigma", 1e-6, 1e3)
    _check(len(a.jitter) == 4 and min(a.jitter) >= 0, "augment.jitter", "needs 4 values >= 0 [b, c, s, h]")
    _check(a.jitter[3] <= 0.5, "augment.jitter", f"hue must be <= 0.5, got {a.jitter[3]}")
    for key in ("hflip_p", "jitter_p", "grayscale_p", "blur_p"):
        value = getattr(a, key)
        _check(0.0 <= value <= 1.0, f"augment.{key}", f"is a probability, got {value}")
    _check(len(a.mean) == 3 and len(a.std) == 3, "augment.mean", "mean and std need 3 values each")
    _check(min(a.std) > 0, "augment.std", "must be > 0")

    m = cfg.model
    _check(m.input != "residual" or d.frames >= 2, "model.input", "residual frames need data.frames >= 2")
    _check(0 < m.width <= 8, "model.width", f"must be in (0, 8], got {m.width}")
    for key in ("proj_dim", "npl_hidden", "low_dim"):
        _check(getattr(m, key) >= 1, f"model.{key}", f"must be >= 1, got {getattr(m, key)}")
    for key in ("proj_hidden", "autoencoder_hidden"):
        _check(getattr(m, key) is None or getattr(m, key) >= 1, f"model.{key}", "must be >= 1 or null")
    _check(m.npl_depth > 0, "model.npl_depth", f"must be > 0, got {m.npl_depth}")
    _check(m.voxel_size >= 2, "model.voxel_size", f"must be >= 2, got {m.voxel_size}")
    _check(m.voxel_channels >= 1, "model.voxel_channels", f"must be >= 1, got {m.voxel_channels}")

    me = cfg.method
    _check(me.queue_size >= 1, "method.queue_size", f"must be >= 1, got {me.queue_size}")
    _check(me.queue_size >= d.batch_size, "method.queue_size", f"must hold a batch ({d.batch_size})")
    _check(0.0 <= me.momentum < 1.0, "method.momentum", f"must be in [0, 1), got {me.momentum}")
    _check(me.tau > 0, "method.tau", f"must be > 0, got {me.tau}")
    _check(me.alpha >= 0, "method.alpha", f"must be >= 0, got {me.alpha}")
    _check(me.bn_splits >= 1, "method.bn_splits", f"must be >= 1, got {me.bn_splits}")
    _check(d.batch_size % me.bn_splits == 0, "method.bn_splits", f"must divide data.batch_size ({d.batch_size})")
    for key in ("use_l3d", "use_adv"):
        _check(me.use_generator or not getattr(me, key), f"method.{key}", "needs method.use_generator=true")
    _check(me.grl_gamma > 0, "method.grl_gamma", f"must be > 0, got {me.grl_gamma}")
    for key in ("w_3d", "w_adv", "w_rec", "grl"):
        _check(getattr(me, key) >= 0, f"method.{key}", f"must be >= 0, got {getattr(me, key)}")

    t = cfg.train
    _check(t.stage1_epochs >= 0 and t.stage2_epochs >= 0, "train.stage1_epochs", "epochs must be >= 0")
    _check(t.max_steps_per_epoch is None or t.max_steps_per_epoch >= 1, "train.max_steps_per_epoch", ">= 1 or null")
    for key in ("checkpoint_every", "keep_checkpoints", "log_every", "knn_k"):
        _check(getattr(t, key) >= 1, f"train.{key}", f"must be >= 1, got {getattr(t, key)}")
    _check(t.knn_every >= 0, "train.knn_every", f"must be >= 0, got {t.knn_every}")
    _check(t.threads is None or t.threads >= 1, "train.threads", f"must be >= 1 or null, got {t.threads}")
    _check(
        math.isfinite(t.loss_scale) and t.loss_scale > 0,
        "train.loss_scale",
        f"must be finite and > 0, got {t.loss_scale}",
    )

    e = cfg.eval
    for key in ("epochs", "finetune_epochs", "feature_windows", "knn_k"):
        _check(getattr(e, key) >= 1, f"eval.{key}", f"must be >= 1, got {getattr(e, key)}")
    _check(math.isfinite(e.lr) and e.lr > 0, "eval.lr", f"must be finite and > 0, got {e.lr}")
    for key in ("weight_decay", "finetune_weight_decay", "backbone_lr_scale"):
        _check(getattr(e, key) >= 0, f"eval.{key}", f"must be >= 0, got {getattr(e, key)}")
    _check(0.0 <= e.dropout < 1.0, "eval.dropout", f"must be in [0, 1), got {e.dropout}")
    _check(e.crops in (1, 10), "eval.crops", f"must be 1 or 10, got {e.crops}")
    _check(e.windows is None or e.windows >= 1, "eval.windows", "must be >= 1 or null")

    p = cfg.pose
    for key in ("frames", "bodies", "batch_size", "epochs", "queue_size", "probe_epochs", "supervised_epochs"):
        _check(getattr(p, key) >= 1, f"pose.{key}", f"must be >= 1, got {getattr(p, key)}")
    _check(p.supervised_batch_size >= 2, "pose.supervised_batch_size", "must be >= 2 (BatchNorm)")
    _check(p.queue_size >= p.batch_size, "pose.queue_size", f"must hold a batch ({p.batch_size})")
    _check(0.0 <= p.momentum < 1.0, "pose.momentum", f"must be in [0, 1), got {p.momentum}")
    for key in ("lr", "probe_lr", "supervised_lr", "tau", "stgcn_width", "agcn_width"):
        _check(getattr(p, key) > 0, f"pose.{key}", f"must be > 0, got {getattr(p, key)}")
    for key in ("weight_decay", "shear"):
        _check(getattr(p, key) >= 0, f"pose.{key}", f"must be >= 0, got {getattr(p, key)}")
    _check(p.crop_padding >= 2, "pose.crop_padding", f"must be >= 2, got {p.crop_padding}")
    _check(p.val_subjects >= 1, "pose.val_subjects", f"must be >= 1, got {p.val_subjects}")

    _check(math.isfinite(cfg.optim.lr) and cfg.optim.lr > 0, "optim.lr", f"must be finite and > 0, got {cfg.optim.lr}")
    _check(cfg.optim.weight_decay >= 0, "optim.weight_decay", "must be >= 0")
    _check(cfg.optim.warmup_epochs >= 0, "optim.warmup_epochs", "must be >= 0")
