"""`viewclr pretrain`: the training loop for MoCo (stage 1, or the InfoNCE baseline) and ViewCLR (stage 2).

One loop for both methods: the trainer only knows that a method takes K augmented clips per video and a step
number and returns {"loss", "terms", "metrics"}. Around it: uint8 clips from the loader → augmentation on the
device → forward under autocast → a finite-loss check → the optimiser step; logs, checkpoints, resume, and the
kNN monitor of cross-view accuracy.

Exact resume: all randomness of step s is a function of (seed, s, rank) — the global RNG is reseeded before each
step's augmentation, the method draws λ, partners and shuffles from a generator seeded with (seed, s), and the
loader samples clips from (seed, epoch, index) — and a checkpoint holds the weights, momentum encoder, generator,
queues and pointers, optimiser, gradient scaler, step and the position within the epoch.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from viewclr.config import Config, run_differences, to_yaml
from viewclr.data.augment import ClipAugment, to_device
from viewclr.data.index import view_label
from viewclr.data.loader import ClipDataset, ClipLoader
from viewclr.data.registry import build_split
from viewclr.engine.checkpoint import CheckpointError, CheckpointManager, load_weights
from viewclr.engine.logger import MetricLogger
from viewclr.errors import DatasetError, ViewCLRError
from viewclr.eval.knn import extract_features, knn_accuracy, subsample
from viewclr.fileio import save_torch
from viewclr.methods import MoCo, ViewCLR
from viewclr.methods.distributed import is_distributed, rank, world_size
from viewclr.models import build_backbone, split_shape

log = logging.getLogger(__name__)
FINAL = "final.pt"


class TrainingError(ViewCLRError):
    """Training cannot go on (a non-finite loss, no data for a batch, a missing stage-1 checkpoint)."""


@dataclass(frozen=True)
class Stage:
    name: str  # folder under out_dir: stage1, stage2, moco
    method: str  # moco | viewclr
    epochs: int


def plan(cfg: Config, which: str = "all") -> list[Stage]:
    """The stages a run trains: ViewCLR is MoCo for stage1_epochs then ViewCLR for stage2_epochs; the InfoNCE
    baseline (method.name=moco) is MoCo for the same total number of epochs."""
    t = cfg.train
    if cfg.method.name == "moco":
        if which not in ("all", "1"):
            raise ViewCLRError("method.name=moco has one stage; --stage 2 is for ViewCLR")
        return [Stage("moco", "moco", t.stage1_epochs + t.stage2_epochs)]
    stages = [Stage("stage1", "moco", t.stage1_epochs), Stage("stage2", "viewclr", t.stage2_epochs)]
    return {"all": stages, "1": stages[:1], "2": stages[1:]}[which]


# ---------------------------------------------------------------------------------------------- set-up


def setup_distributed() -> None:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); NCCL on GPUs, gloo on CPUs."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not is_distributed():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))


def choose_device(cfg: Config) -> torch.device:
    wanted = cfg.train.device
    if wanted == "cuda" and not torch.cuda.is_available():
        raise ViewCLRError("train.device=cuda but no CUDA device is available")
    if wanted == "cuda" or (wanted == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def amp_dtype(cfg: Config, device: torch.device) -> torch.dtype | None:
    amp = cfg.train.amp
    if amp == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}[amp]


def build_method(cfg: Config, method: str) -> MoCo:
    backbone = build_backbone(cfg.model.backbone, cfg.model.width)
    if method == "moco":
        return MoCo(backbone, cfg.method, cfg.model.proj_dim, cfg.model.proj_hidden, seed=cfg.seed)
    size = cfg.augment.size
    shape = split_shape(backbone, cfg.data.frames, size)
    return ViewCLR(backbone, cfg.method, cfg.model, shape, seed=cfg.seed)


def channels_last(clips: torch.Tensor) -> torch.Tensor:
    """Clips [B, K, C, T, H, W] laid out in memory as [K, B, T, H, W, C], so that each view clips[:, k] is a
    channels_last_3d batch (as the channels_last weights want it: no conversion inside the network)."""
    if clips.dim() == 5:
        return clips.contiguous(memory_format=torch.channels_last_3d)
    return clips.permute(1, 0, 3, 4, 5, 2).contiguous().permute(1, 0, 5, 2, 3, 4)


def learning_rate(optim, step: int, total_steps: int, warmup_steps: int) -> float:
    """The learning rate of a stage's step `step` (0-based) of `total_steps`: `optim.lr`, after a linear warm-up
    over `warmup_steps`, constant or cosine-decayed to 0 by the stage's end (`optim.schedule`). A function of the
    step alone, so a resumed run follows the same curve."""
    if step < warmup_steps:
        return optim.lr * (step + 1) / warmup_steps
    if optim.schedule == "cosine":
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return optim.lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    return optim.lr


def rng_state() -> dict:
    """Every generator's state. Steps reseed from (seed, step) anyway; this keeps anything outside them exact too."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def step_seed(seed: int, step: int, rank_: int) -> int:
    return (seed * 1_000_003 + step) * 64 + rank_


# ---------------------------------------------------------------------------------------------- the loop


def pretrain(
    cfg: Config, stage: str = "all", resume: bool = False, progress: bool = True, source: str | Path | None = None
) -> dict:
    """Train the planned stages in order; returns {stage name: summary}. Stage 2 starts from stage 1's final
    weights (fg1, fg2 from f1, f2). `source` (InfoNCE baseline only): continue another run's stage 1."""
    setup_distributed()
    results = {}
    if source is not None:
        if cfg.method.name != "moco":
            raise TrainingError("--from continues another run's stage 1 with the InfoNCE baseline (method.name=moco)")
        if rank() == 0:
            continue_from(source, cfg, plan(cfg)[0])
        if is_distributed():
            dist.barrier()
        resume = True
    for s in plan(cfg, stage):
        if s.name == "stage2":
            results[s.name] = train_stage2(cfg, s, Path(cfg.out_dir) / "stage1", resume=resume, progress=progress)
        else:
            results[s.name] = train_stage(cfg, s, resume=resume, progress=progress)
    return results


def stage1_weights(stage1: str | Path) -> dict:
    """The method state stage 2 starts from: stage 1's final weights (a stage folder such as RUN/stage1)."""
    path = Path(stage1) / FINAL
    if not path.is_file():
        raise TrainingError(f"stage 2 starts from stage 1's weights, and {path} does not exist; run stage 1")
    return load_weights(path)["method"]


def trainable(module: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    """The parameters the optimiser steps, by name, in the order Adam indexes its state."""
    return [(name, p) for name, p in module.named_parameters() if p.requires_grad]


def train_stage2(cfg: Config, stage: Stage, stage1: Path, *, resume: bool = False, progress=True) -> dict:
    """ViewCLR's stage 2 from a finished stage 1 folder: its final weights and (method.stage2_optimizer=carry) the
    encoder's Adam moments."""
    init, moments = stage1_weights(stage1), stage1_optimizer(stage1, cfg)
    return train_stage(cfg, stage, init=init, init_optimizer=moments, resume=resume, progress=progress)


def stage1_optimizer(stage1: str | Path, cfg: Config) -> dict[str, dict] | None:
    """Stage 1's Adam state per parameter name, for stage 2 to continue the encoder's moments
    (method.stage2_optimizer=carry; None with fresh, or when stage 1 left no checkpoint). A fresh Adam's first
    steps move every weight by about the learning rate, which costs a short stage 2 what stage 1 learned
    (docs/results.md, diagnostic 11); the InfoNCE baseline, continued from stage 1, keeps its moments too."""
    if cfg.method.stage2_optimizer != "carry":
        return None
    found = CheckpointManager(Path(stage1) / "checkpoints").load_latest(map_location="cpu")
    if found is None:
        log.warning("%s holds no checkpoint with an optimiser state; stage 2 starts a fresh Adam", stage1)
        return None
    state, path = found
    names = [name for name, _ in trainable(build_method(cfg, "moco"))]
    per_param = state["optimizer"]["state"]
    if len(per_param) > len(names):
        raise TrainingError(f"{path}: its optimiser state does not fit a MoCo stage 1 of this config")
    return {names[index]: values for index, values in per_param.items()}


def carry_optimizer_state(optimizer: torch.optim.Optimizer, method: torch.nn.Module, named: dict[str, dict]) -> int:
    """Load `named` (stage1_optimizer) into `optimizer` of `method` for the parameters both share; the new ones
    (generator, fg1, fg2, auto-encoder) start fresh. Returns how many parameters were carried."""
    names = [name for name, _ in trainable(method)]
    carried = {index: named[name] for index, name in enumerate(names) if name in named}
    optimizer.load_state_dict({"state": carried, "param_groups": optimizer.state_dict()["param_groups"]})
    return len(carried)


def continues_stage1(cfg: Config) -> bool:
    """Whether a finished stage 1 is the start of a longer InfoNCE baseline: only at a rate that does not depend
    on the run's length (optim.schedule=constant)."""
    return cfg.optim.schedule == "constant"


def continue_from(source: str | Path, cfg: Config, stage: Stage) -> Path:
    """Seed `stage`'s checkpoints with the newest good checkpoint of another run's MoCo stage (`source`, a stage
    folder such as runs/x/stage1), so that training it with resume=True continues that run. The InfoNCE baseline
    continued from ViewCLR's stage 1 for stage2_epochs is the same run as an uninterrupted baseline of
    stage1_epochs + stage2_epochs (resume is exact), and costs stage 2's epochs only."""
    if stage.method != "moco":
        raise TrainingError("only a MoCo stage (the InfoNCE baseline) continues another run's stage 1")
    if not continues_stage1(cfg):
        raise TrainingError(
            f"with optim.schedule={cfg.optim.schedule} the learning rate depends on the stage's length, so a finished "
            "stage 1 is not the start of a longer baseline; train the baseline on its own (without --from)"
        )
    target = CheckpointManager(Path(cfg.out_dir) / stage.name / "checkpoints", cfg.train.keep_checkpoints)
    if target.load_latest(map_location="cpu") is not None:
        return target.folder  # already seeded (or further along): resume takes it from there
    found = CheckpointManager(Path(source) / "checkpoints").load_latest(map_location="cpu")
    if found is None:
        raise TrainingError(f"{source} holds no checkpoint to continue from (a pretrain stage folder, e.g. RUN/stage1)")
    state, path = found
    if state.get("batch", 0) != 0 or state.get("stage") not in (None, "stage1", "moco"):
        raise TrainingError(f"{path} is not the end of an epoch of a MoCo stage; continue from a finished stage 1")
    target.save(state, state["step"])
    log.info("%s continues %s (epoch %d, step %d)", stage.name, path, state["epoch"], state["step"])
    return target.folder


def train_stage(
    cfg: Config,
    stage: Stage,
    *,
    init: dict | None = None,
    init_optimizer: dict | None = None,
    resume: bool = False,
    progress=True,
) -> dict:
    out = Path(cfg.out_dir) / stage.name
    device = choose_device(cfg)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    if cfg.train.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    main_process = rank() == 0
    checkpoints = CheckpointManager(out / "checkpoints", cfg.train.keep_checkpoints)
    final = out / FINAL
    if resume and final.is_file():
        finished = finished_run(final, cfg, stage)
        if finished is not None:
            log.info("%s is already trained (%s); skipping it", stage.name, final)
            return finished
    if not resume and main_process:
        set_aside(out)
    if is_distributed():
        dist.barrier()

    spec, split = build_split(cfg.data)
    samples = split.train_samples()
    if cfg.method.queue_size > len(samples) and main_process:
        log.warning(
            "method.queue_size=%d is larger than the %d training videos: the queue holds older keys of a query's own "
            "video, %s; a queue smaller than the training set holds only other videos' keys",
            cfg.method.queue_size, len(samples),
            "which method.exclude_own_video keeps out of the negatives" if cfg.method.exclude_own_video
            else "and they count as its negatives (method.exclude_own_video=false)",
        )  # fmt: skip
    torch.manual_seed(cfg.seed)
    method = build_method(cfg, stage.method)
    if init is not None:
        missing, unexpected = method.load_state_dict(init, strict=False)
        if unexpected:
            raise TrainingError(f"stage-1 weights do not fit this model (unexpected keys, e.g. {unexpected[0]})")
        method.init_third_stream()
    method.to(device)
    if cfg.train.channels_last:
        method.to(memory_format=torch.channels_last_3d)
    parameters = [p for _, p in trainable(method)]
    optimizer = torch.optim.Adam(parameters, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    dtype = amp_dtype(cfg, device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    dataset = ClipDataset.from_config(samples, cfg.data, num_clips=method.num_views, train=True, seed=cfg.seed)
    loader = ClipLoader(
        dataset,
        cfg.data.batch_size,
        shuffle=True,
        num_workers=cfg.data.num_workers,
        seed=cfg.seed,
        drop_last=True,
        rank=rank(),
        world_size=world_size(),
        pin_memory=device.type == "cuda",
        groups=[sample.subject for sample in samples] if cfg.data.group_by == "subject" else None,
    )
    steps_per_epoch = (
        len(loader) if cfg.train.max_steps_per_epoch is None else min(len(loader), cfg.train.max_steps_per_epoch)
    )
    if steps_per_epoch == 0:
        raise DatasetError(
            f"{len(samples)} training videos make no full batch of data.batch_size={cfg.data.batch_size}"
            f"{f' on each of {world_size()} GPUs' if world_size() > 1 else ''}; lower data.batch_size"
        )

    step, start_epoch, start_batch = 0, 0, 0
    continued = False  # from another stage's checkpoint (the InfoNCE baseline continuing stage 1)
    found = checkpoints.load_latest(map_location="cpu") if resume else None
    if found is None and init_optimizer:  # a resumed stage has its own optimiser state
        carried = carry_optimizer_state(optimizer, method, init_optimizer)
        if main_process:
            total = len(parameters)
            log.info("%s carries stage 1's optimiser state for %d of %d parameters", stage.name, carried, total)
    if found is not None:
        state, path = found
        method.load_state_dict(state["method"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        step, start_epoch, start_batch = state["step"], state["epoch"], state["batch"]
        continued = state.get("stage") not in (None, stage.name)
        differences = [] if continued else run_differences(state.get("config"), cfg, stage.method == "viewclr")
        if differences:
            raise TrainingError(
                f"{path} is a checkpoint of a run with other settings ({'; '.join(differences[:4])}), not this one: "
                "resume it with its settings, or start over without --resume (the earlier run is then set aside)"
            )
        if "rng" in state:
            restore_rng(state["rng"])
        if main_process:
            log.info(
                "resuming %s from %s (epoch %d, batch %d, step %d)",
                stage.name,
                path,
                start_epoch + 1,
                start_batch,
                step,
            )
    if cfg.train.compile:
        method.encoder.backbone.compile()
    model = method
    if world_size() > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            method, device_ids=[device.index] if device.type == "cuda" else None
        )
    augment = ClipAugment(cfg.augment).to(device)
    logger = MetricLogger(out, enabled=main_process)
    if main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(to_yaml(cfg))
        log.info(
            "%s: %s, %d training videos (%s), %d epochs × %d steps of %d clips × %d views on %s%s",
            stage.name, stage.method, len(samples), split.protocol, stage.epochs, steps_per_epoch,
            cfg.data.batch_size, method.num_views, device, f" × {world_size()} processes" if world_size() > 1 else "",
        )  # fmt: skip

    def save(epoch: int, batch: int) -> None:
        _refuse_nonfinite(method, stage.name, checkpoints.folder)
        if main_process:
            checkpoints.save(
                {
                    "method": method.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict(),
                    "step": step,
                    "epoch": epoch,
                    "batch": batch,
                    "stage": stage.name,
                    "config": to_yaml(cfg),
                    "rng": rng_state(),
                },
                step,
            )
        if is_distributed():
            dist.barrier()

    total_steps = stage.epochs * steps_per_epoch
    method.set_schedule(total_steps)
    first_step = step  # what this call trains: steps first_step + 1 … the last
    warmup_steps = round(cfg.optim.warmup_epochs * steps_per_epoch)
    skipped_steps = 0
    knn = {}
    started = time.perf_counter()
    for epoch in range(start_epoch, stage.epochs):
        first = start_batch if epoch == start_epoch else 0
        loader.set_epoch(epoch, first)
        bar = tqdm(
            total=steps_per_epoch, initial=first, desc=f"{stage.name} {epoch + 1}/{stage.epochs}",
            unit="step", disable=not (progress and main_process), dynamic_ncols=True,
        )  # fmt: skip
        batch_index = first
        for batch in loader:
            if batch_index >= steps_per_epoch:
                break
            torch.manual_seed(step_seed(cfg.seed, step, rank()))
            batch = to_device(batch, device)
            clips = _even_batch(augment(batch["clips"]), method.bn_splits)
            ids = batch["index"][: len(clips)]
            if cfg.train.channels_last:
                clips = channels_last(clips)
            with torch.autocast(device_type=device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                output = model(clips, step, ids)
            loss, terms = output["loss"], output["terms"]
            bad = _nonfinite(loss, terms)
            if bad is not None:
                if cfg.train.nonfinite == "stop":
                    raise TrainingError(
                        f"{stage.name} step {step} (epoch {epoch + 1}, batch {batch_index}): {bad}; stopped before "
                        f"the optimiser step, no checkpoint written (the last good one is in {checkpoints.folder}). "
                        "Lower optim.lr, or set train.nonfinite=skip to skip such steps"
                    )
                skipped_steps += 1
                log.warning("%s step %d: %s; skipping the step (train.nonfinite=skip)", stage.name, step, bad)
                optimizer.zero_grad(set_to_none=True)
            else:
                lr = learning_rate(cfg.optim, step, total_steps, warmup_steps)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                broken = _nonfinite_state(method)
                if broken is not None:  # a finite loss, and yet the step broke a weight (a rate far too high)
                    raise TrainingError(
                        f"{stage.name} step {step} (epoch {epoch + 1}, batch {batch_index}): the optimiser step "
                        f"made {broken} non-finite; stopped, no checkpoint written (the last good one is in "
                        f"{checkpoints.folder}). Lower optim.lr"
                    )
            step += 1
            batch_index += 1
            values = {f"loss/{k}": float(v.detach()) for k, v in terms.items()} | {"loss/total": float(loss.detach())}
            values |= {f"train/{k}": float(v.detach()) for k, v in output["metrics"].items()}
            values["train/lr"] = optimizer.param_groups[0]["lr"]
            if step % cfg.train.log_every == 0 or batch_index == steps_per_epoch:
                logger.log(step, values, epoch=epoch + 1, stage=stage.name)
            bar.set_postfix(
                {k.split("/")[-1]: f"{v:.3g}" for k, v in values.items() if k.startswith("loss/")}, refresh=False
            )
            bar.update()
            if step % cfg.train.checkpoint_every == 0 and batch_index < steps_per_epoch:
                save(epoch, batch_index)
        bar.close()
        save(epoch + 1, 0)
        monitor_now = cfg.train.knn_every and (epoch + 1) % cfg.train.knn_every == 0
        if monitor_now and epoch + 1 < stage.epochs:
            knn = monitor(cfg, method, split, spec, device, step, logger, epoch + 1)
    knn = monitor(cfg, method, split, spec, device, step, logger, stage.epochs) if stage.epochs else knn
    summary = {
        "stage": stage.name,
        "method": stage.method,
        "epochs": stage.epochs,
        "steps": step,  # the stage's total
        "trained_steps": step - first_step,  # in this call (after a resume, or continuing another stage)
        "first_step": first_step,
        "continued": continued,
        "skipped_steps": skipped_steps,
        "seconds": time.perf_counter() - started,  # of the trained_steps
        "knn": knn,
    }
    _refuse_nonfinite(method, stage.name, checkpoints.folder)
    if main_process:
        save_torch(
            final,
            {
                "backbone": method.encoder.backbone.state_dict(),
                "method": method.state_dict(),
                "model": {"backbone": cfg.model.backbone, "width": cfg.model.width},
                "config": to_yaml(cfg),
                "summary": summary,
            },
        )
    logger.close()
    if is_distributed():
        dist.barrier()
    return {"final": str(final), **summary}


def finished_run(final: Path, cfg: Config, stage: Stage) -> dict | None:
    """The summary of a stage's final.pt if it is this run's (the same settings, the same epochs) — then the stage
    need not train again. A final.pt of another run stops with the differences; one that only trained fewer
    epochs returns None, and the stage continues from its checkpoints."""
    saved = load_weights(final)
    differences = run_differences(saved.get("config"), cfg, stage.method == "viewclr")
    if differences:
        raise TrainingError(
            f"{final} is a finished run with other settings ({'; '.join(differences[:4])}), not this one: resume "
            "with its settings, or start over without --resume (the earlier run is then set aside)"
        )
    summary = saved.get("summary", {})
    if summary.get("epochs", stage.epochs) != stage.epochs:
        log.info("%s trained %s epochs, this run asks %d: continuing from its checkpoints", final,
                 summary.get("epochs"), stage.epochs)  # fmt: skip
        return None
    return {"final": str(final), **summary, "already_trained": True}


def set_aside(out: Path) -> Path | None:
    """Starting a stage over where an earlier run left files: move them to `<stage>.earlier-<n>` beside it (nothing
    is deleted), so that a later --resume never reads the earlier run's checkpoints or final.pt, nor appends to
    its metrics. Returns where they went."""
    if not out.is_dir() or not any(out.iterdir()):
        return None
    n = 1
    while (target := out.with_name(f"{out.name}.earlier-{n}")).exists():
        n += 1
    out.rename(target)
    log.warning("%s held an earlier run; moved it to %s (starting over; --resume continues a run)", out, target)
    return target


def monitor(cfg: Config, method, split, spec, device, step: int, logger: MetricLogger, epoch: int) -> dict:
    """kNN top-1 per test group (per view for CVS), frozen features, training videos as the reference."""
    if not split.test or rank() != 0:
        if is_distributed():
            dist.barrier()
        return {}
    backbone = method.encoder.backbone
    amp = device.type == "cuda"
    reference = subsample(split.train_samples(), cfg.train.knn_max_train, cfg.seed)
    train_x, train_y = extract_features(backbone, reference, cfg, device, amp=amp)
    accuracies = {}
    for group, samples in split.test.items():
        test_x, test_y = extract_features(backbone, samples, cfg, device, amp=amp)
        accuracies[group] = knn_accuracy(train_x, train_y, test_x, test_y, len(spec.classes), cfg.train.knn_k)
    logger.log(step, {f"knn/{group}": value for group, value in accuracies.items()}, epoch=epoch)
    views = "  ".join(f"{view_label(g)}: {100 * a:.1f}%" for g, a in accuracies.items())
    # one centre window per video (viewclr knn averages eval.feature_windows of them: a different figure)
    tqdm.write(f"kNN monitor top-1 (k={cfg.train.knn_k}, one window per video) after epoch {epoch}: {views}")
    if is_distributed():
        dist.barrier()
    return accuracies


def _nonfinite_state(method: torch.nn.Module) -> str | None:
    """'weight X' (or 'buffer X') when a floating tensor of the method's state is not finite, else None; one
    device synchronisation, and agreed across ranks."""
    named = [(n, t) for n, t in method.state_dict(keep_vars=True).items() if t.is_floating_point()]
    finite = torch.stack([torch.isfinite(t.detach()).all() for _, t in named])
    flag = (~finite).any().float().reshape(1)
    if is_distributed():
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    if not flag.item():
        return None
    bad = [n for (n, _), ok in zip(named, finite.tolist(), strict=True) if not ok]
    if not bad:
        return "a weight of another process"
    return f"{len(bad)} tensor{'s' if len(bad) > 1 else ''} (e.g. {bad[0]})"


def _refuse_nonfinite(method: torch.nn.Module, stage: str, folder: Path) -> None:
    """No checkpoint or final.pt ever holds a non-finite tensor."""
    broken = _nonfinite_state(method)
    if broken is not None:
        raise TrainingError(f"{stage}: {broken} non-finite; nothing written (the last good checkpoint is in {folder})")


def _nonfinite(loss: torch.Tensor, terms: dict) -> str | None:
    """A description of the first non-finite loss term (agreed across ranks), or None."""
    bad = None
    for name, value in terms.items():
        if not math.isfinite(float(value.detach())):
            bad = f"loss term '{name}' is {float(value.detach())}"
            break
    if bad is None and not math.isfinite(float(loss.detach())):
        bad = f"the total loss is {float(loss.detach())}"
    if is_distributed():
        flag = torch.tensor([0.0 if bad is None else 1.0], device=loss.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if flag.item() and bad is None:
            bad = "another process had a non-finite loss"
    return bad


def _even_batch(clips: torch.Tensor, splits: int) -> torch.Tensor:
    """Drop the last few clips when skipped videos left a batch that the sub-batches (or GPUs) cannot share."""
    size = len(clips)
    if is_distributed():
        smallest = torch.tensor([size], device=clips.device)
        dist.all_reduce(smallest, op=dist.ReduceOp.MIN)
        size = int(smallest)
    size -= size % max(splits, 1)
    if size == 0:
        raise TrainingError("a batch lost all its clips to unreadable videos; check the warnings above")
    return clips[:size]


__all__ = [
    "FINAL", "CheckpointError", "Stage", "TrainingError", "continue_from", "continues_stage1", "plan", "pretrain",
    "stage1_optimizer", "stage1_weights", "train_stage", "train_stage2",
]  # fmt: skip
