"""The training loop of one stage: a `Trainer` whose state (method, optimiser, loader, step) lives on the object,
shared by its set-up, loop, checkpoints and monitor.

The loop knows only the method interface (`viewclr.methods`): K augmented clips per video and a step number in,
{"loss", "terms", "metrics"} out; `trainable()` is what the optimiser steps. Around it: uint8 clips from the
loader → augmentation on the device → forward under autocast → a finite-loss check → the optimiser step → a
finite-weights check; logs, checkpoints, exact resume, the kNN monitor. Which stages run, and what a stage starts
from, is `engine.plan`'s business.

Exact resume: all randomness of step s is a function of (seed, s, rank) (`runtime.derived_seed`) — the global RNG
is reseeded before each step's augmentation, the method draws λ, partners and shuffles from a generator seeded with
(seed, s), and the loader samples clips from (seed, epoch, index) — and a checkpoint holds the weights, momentum
encoder, generator, queues and pointers, optimiser, gradient scaler, step and the position within the epoch.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from viewclr import lineage, provenance
from viewclr.checkpoint import CheckpointManager
from viewclr.config import Config, to_yaml
from viewclr.data.augment import ClipAugment, to_device
from viewclr.data.index import Split, view_label
from viewclr.data.loader import ClipDataset, ClipLoader
from viewclr.errors import DatasetError, ViewCLRError
from viewclr.features import extract_features, knn_accuracy, subsample
from viewclr.fileio import save_torch
from viewclr.logger import MetricLogger
from viewclr.methods import build_method
from viewclr.models.registry import encoder_record
from viewclr.runtime import (
    Switches,
    barrier,
    check_precision,
    choose_device,
    derived_seed,
    is_distributed,
    rank,
    restore_rng,
    rng_state,
    switches,
    world_size,
)

log = logging.getLogger(__name__)
FINAL = "final.pt"


class TrainingError(ViewCLRError):
    """Training cannot go on (a non-finite loss or weight, no data for a batch, a missing stage-1 checkpoint)."""


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


def make_optimizer(params, optim, switches: Switches) -> torch.optim.Adam:
    """Adam (the paper's: optim.lr, optim.weight_decay), with the fused update when the switches say so."""
    fused = {"fused": True} if switches.fused_adam else {}
    return torch.optim.Adam(params, lr=optim.lr, weight_decay=optim.weight_decay, **fused)


def channels_last(clips: torch.Tensor) -> torch.Tensor:
    """Clips [B, K, C, T, H, W] laid out in memory as [K, B, T, H, W, C], so that each view clips[:, k] is a
    channels_last_3d batch (as the channels_last weights want it: no conversion inside the network)."""
    if clips.dim() == 5:
        return clips.contiguous(memory_format=torch.channels_last_3d)
    return clips.permute(1, 0, 3, 4, 5, 2).contiguous().permute(1, 0, 5, 2, 3, 4)


class Trainer:
    """One stage of `cfg` on `split`'s training videos, written to out_dir/<stage.name>.

    `start()` decides where training begins (fresh, from `init` weights and carried optimiser moments, or from the
    stage's own newest checkpoint), `fit()` trains the remaining steps and writes final.pt. Most users call
    `engine.plan.pretrain`, which chains the stages and builds the trainer.

    Args:
        cfg: the run's config.
        stage: an `engine.plan.Stage` (name, objective "infonce" | "viewclr" as `method`, epochs).
        split: the protocol's split; the stage trains on its training videos.
        num_classes: the dataset's classes (for the kNN monitor's labels).
        progress: progress bars on a terminal.
        identity: what the stage is made from (`lineage.stage_identity`; computed from cfg when None).

    Attributes: `method` (the module trained: MoCo or ViewCLR), `optimizer`, `step`, `out`.
    """

    def __init__(
        self, cfg: Config, stage, split: Split, num_classes: int, progress: bool = True, identity: dict | None = None
    ) -> None:
        self.cfg, self.stage, self.split, self.num_classes, self.progress = cfg, stage, split, num_classes, progress
        provenance.at_start()  # for library use; the CLI took it first thing
        self.out = Path(cfg.out_dir) / stage.name
        self.device = choose_device(cfg.train.device)
        self.switches = switches(cfg.train, self.device)
        check_precision(cfg.train, self.device)  # once per process: pretrain() checked it already
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        if cfg.train.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = self.switches.cudnn_benchmark
        self.main = rank() == 0
        self.checkpoints = CheckpointManager(self.out / "checkpoints", cfg.train.keep_checkpoints)
        self.samples = split.train_samples()
        # what this stage is made from (recorded in every checkpoint and final.pt; a resume must match it)
        self.identity = identity or lineage.stage_identity(cfg, stage.method, stage.epochs, self.samples)
        self.step = self.start_epoch = self.start_batch = 0
        self.continued = False  # from another stage's checkpoint (the InfoNCE baseline continuing stage 1)
        self.init_note: str | None = None  # what train.init gave this stage, when it started from it
        self.skipped_steps = 0
        self.dropped_batches = 0  # batches that unreadable videos left too small to train on
        self.overflow_steps = 0  # fp16: steps the gradient scaler skipped (their gradients overflowed)

    # ------------------------------------------------------------------------------------------ set-up

    def build(self) -> None:
        cfg = self.cfg
        if cfg.method.queue_size > len(self.samples) and self.main:
            log.warning(
                "method.queue_size=%d is larger than the %d training videos: the queue holds older keys of a "
                "query's own video, %s; a queue smaller than the training set holds only other videos' keys",
                cfg.method.queue_size,
                len(self.samples),
                "which method.exclude_own_video keeps out of the negatives"
                if cfg.method.exclude_own_video
                else "and they count as its negatives (method.exclude_own_video=false)",
            )
        torch.manual_seed(cfg.seed)
        self.method = build_method(cfg, self.stage.method)

    def start(
        self,
        init: dict | None = None,
        init_optimizer: dict | None = None,
        resume: bool = False,
        init_note: str | None = None,
        checkpoint: tuple | None = None,
    ) -> None:
        """Weights from `init` (a stage-1 state for stage 2, or train.init's; `init_note` says what it holds), the
        optimiser's moments from `init_optimizer` (by parameter name), then — with `resume` — `checkpoint` (state,
        path) or the stage's own newest checkpoint over both."""
        cfg, method = self.cfg, self.method
        if init is not None:
            method.start_from(init)
        method.to(self.device)
        if self.switches.channels_last:
            method.to(memory_format=torch.channels_last_3d)
        self.names = [name for name, _ in method.trainable()]
        params = [p for _, p in method.trainable()]
        self.optimizer = make_optimizer(params, cfg.optim, self.switches)
        self.dtype = self.switches.amp
        fp16 = self.dtype == torch.float16
        self.scaler = torch.amp.GradScaler(self.device.type, init_scale=cfg.train.loss_scale, enabled=fp16)
        self._build_loader()
        found = (checkpoint or self.checkpoints.load_latest(map_location="cpu")) if resume else None
        if found is None and init_optimizer:  # a resumed stage has its own optimiser state
            carried = self.carry_moments(init_optimizer)
            if self.main:
                log.info(
                    "%s carries stage 1's optimiser state for %d of %d parameters",
                    self.stage.name,
                    carried,
                    len(params),
                )
        if found is not None:
            self._resume(*found)
        elif init_note is not None:
            self.init_note = init_note
            if self.main:
                log.info("%s starts %s", self.stage.name, init_note)

    def _build_loader(self) -> None:
        cfg, samples = self.cfg, self.samples
        dataset = ClipDataset.from_config(samples, cfg.data, num_clips=self.method.num_views, train=True, seed=cfg.seed)
        self.loader = ClipLoader(
            dataset,
            cfg.data.batch_size,
            shuffle=True,
            num_workers=cfg.data.num_workers,
            seed=cfg.seed,
            drop_last=True,
            rank=rank(),
            world_size=world_size(),
            pin_memory=self.device.type == "cuda",
            groups=[sample.subject for sample in samples] if cfg.data.group_by == "subject" else None,
        )
        limit = cfg.train.max_steps_per_epoch
        self.steps_per_epoch = len(self.loader) if limit is None else min(len(self.loader), limit)
        if self.steps_per_epoch == 0:
            raise DatasetError(
                f"{len(samples)} training videos make no full batch of data.batch_size={cfg.data.batch_size}"
                f"{f' on each of {world_size()} GPUs' if world_size() > 1 else ''}; lower data.batch_size"
            )

    def carry_moments(self, named: dict[str, dict]) -> int:
        """Adam's state per parameter name (`stage_moments`) into this optimiser for the parameters both have; the
        new ones (generator, fg1, fg2, auto-encoder) start fresh. Returns how many were carried."""
        carried = {index: named[name] for index, name in enumerate(self.names) if name in named}
        groups = self.optimizer.state_dict()["param_groups"]
        self.optimizer.load_state_dict({"state": carried, "param_groups": groups})
        return len(carried)

    def _resume(self, state: dict, path: Path) -> None:
        self.continued = state.get("stage") not in (None, self.stage.name)
        problems = lineage.continues(
            state.get("identity"),
            (state["epoch"], state["batch"]),
            self.identity,
            lineage.length_dependent(self.cfg, self.stage.method),
        )
        if problems:
            raise TrainingError(
                f"{path} does not match this run ({'; '.join(problems[:4])}): resume it with its settings, or start "
                "over without --resume (the earlier run is then set aside)"
            )
        self.method.load_state_dict(state["method"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.start_epoch, self.start_batch = state["step"], state["epoch"], state["batch"]
        if "rng" in state:
            restore_rng(state["rng"])
        if self.main:
            log.info(
                "resuming %s from %s (epoch %d, batch %d, step %d)",
                self.stage.name,
                path,
                self.start_epoch + 1,
                self.start_batch,
                self.step,
            )

    @property
    def stage2(self) -> bool:
        return self.stage.method == "viewclr"

    # ------------------------------------------------------------------------------------------ the loop

    def fit(self) -> dict:
        cfg, stage, method = self.cfg, self.stage, self.method
        if cfg.train.compile:
            method.encoder.backbone.compile()
        model = method
        if world_size() > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = torch.nn.parallel.DistributedDataParallel(method, device_ids=ids)
        self.augment = ClipAugment(cfg.augment, cfg.model.input).to(self.device)
        self.logger = MetricLogger(self.out, enabled=self.main, after=self.step)
        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.yaml").write_text(to_yaml(cfg))
            log.info(
                "%s: %s, %d training videos (%s), %d epochs × %d steps of %d clips × %d views on %s%s",
                stage.name,
                stage.method,
                len(self.samples),
                self.split.protocol,
                stage.epochs,
                self.steps_per_epoch,
                cfg.data.batch_size,
                method.num_views,
                self.device,
                f" × {world_size()} processes" if world_size() > 1 else "",
            )
        self.total_steps = stage.epochs * self.steps_per_epoch
        method.set_schedule(self.total_steps)
        self.warmup_steps = round(cfg.optim.warmup_epochs * self.steps_per_epoch)
        first_step, knn, started = self.step, {}, time.perf_counter()
        for epoch in range(self.start_epoch, stage.epochs):
            self._epoch(model, epoch)
            self.save(epoch + 1, 0)
            if cfg.train.knn_every and (epoch + 1) % cfg.train.knn_every == 0 and epoch + 1 < stage.epochs:
                knn = self.monitor(epoch + 1)
        knn = self.monitor(stage.epochs) if stage.epochs else knn
        summary = {
            "stage": stage.name,
            "method": stage.method,
            "epochs": stage.epochs,
            "steps": self.step,  # the stage's total
            "trained_steps": self.step - first_step,  # in this call (after a resume, or continuing another stage)
            "first_step": first_step,
            "continued": self.continued,
            "skipped_steps": self.skipped_steps,
            "overflow_steps": self.overflow_steps,  # of the trained_steps, skipped by fp16's gradient scaler
            "dropped_batches": self.dropped_batches,  # of the trained_steps, too few readable clips to train on
            "seconds": time.perf_counter() - started,  # of the trained_steps
            "knn": knn,
            "init": self.init_note,
            "provenance": provenance.record(),  # which code trained it (viewclr compare warns on a mix)
            "identity": self.identity,  # what it was made from: reused only by a run of the same (lineage)
        }
        if self.overflow_steps and self.main:
            log.info(
                "%s: fp16's gradient scaler skipped %d of %d steps (gradients overflowed; the scale is now %g, "
                "from train.loss_scale=%g)",
                stage.name,
                self.overflow_steps,
                self.step - first_step,
                self.scaler.get_scale(),
                cfg.train.loss_scale,
            )
        self.write_final(summary)
        self.logger.close()
        barrier()
        return {"final": str(self.out / FINAL), **summary}

    def _epoch(self, model, epoch: int) -> None:
        first = self.start_batch if epoch == self.start_epoch else 0
        self.loader.set_epoch(epoch, first)
        bar = tqdm(
            total=self.steps_per_epoch,
            initial=first,
            desc=f"{self.stage.name} {epoch + 1}/{self.stage.epochs}",
            unit="step",
            disable=not (self.progress and self.main),
            dynamic_ncols=True,
        )
        last: dict[str, str] = {}  # the losses of the epoch's last logged step
        batch_index = first
        for batch in self.loader:
            if batch_index >= self.steps_per_epoch:
                break
            values = self.train_step(model, batch, epoch, batch_index)
            batch_index += 1
            if values and (self.step % self.cfg.train.log_every == 0 or batch_index == self.steps_per_epoch):
                self.logger.log(self.step, values, epoch=epoch + 1, stage=self.stage.name)
            losses = {k.split("/")[-1]: f"{v:.3g}" for k, v in values.items() if k.startswith("loss/")}
            bar.set_postfix(losses, refresh=False)
            last = losses or last
            bar.update()
            if self.step % self.cfg.train.checkpoint_every == 0 and batch_index < self.steps_per_epoch:
                self.save(epoch, batch_index)
        bar.close()
        if bar.disable and self.main:  # no bar (--no-progress, or a log file): one plain line per epoch
            log.info(
                "%s epoch %d/%d: step %d, %s",
                self.stage.name,
                epoch + 1,
                self.stage.epochs,
                self.step,
                " ".join(f"{k}={v}" for k, v in last.items()) or "no step trained",
            )

    def train_step(self, model, batch: dict, epoch: int, batch_index: int) -> dict[str, float]:
        """One optimiser step on one batch; returns the values to log."""
        cfg, method = self.cfg, self.method
        where = f"{self.stage.name} step {self.step} (epoch {epoch + 1}, batch {batch_index})"
        torch.manual_seed(derived_seed(cfg.seed, self.step, rank()))
        batch = to_device(batch, self.device)
        clips = _even_batch(self.augment(batch["clips"]), method.bn_splits)
        if clips is None:  # unreadable videos left too few clips: the batch is dropped, never the run
            self.dropped_batches += 1
            log.warning(
                "%s: %d readable clips of %d left, too few for %d BatchNorm sub-batches of 2; batch dropped",
                where,
                len(batch["clips"]),
                self.cfg.data.batch_size,
                max(method.bn_splits, 1),
            )
            self.step += 1
            return {}
        ids = batch["index"][: len(clips)]
        if self.switches.channels_last:
            clips = channels_last(clips)
        with torch.autocast(self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None):
            output = model(clips, self.step, ids)
        loss, terms = output["loss"], output["terms"]
        bad = _nonfinite(loss, terms)
        if bad is not None:
            if cfg.train.nonfinite == "stop":
                raise TrainingError(
                    f"{where}: {bad}; stopped before the optimiser step, no checkpoint written (the last good one is "
                    f"in {self.checkpoints.folder}). Lower optim.lr, or set train.nonfinite=skip to skip such steps"
                )
            self.skipped_steps += 1
            log.warning("%s step %d: %s; skipping the step (train.nonfinite=skip)", self.stage.name, self.step, bad)
            self.optimizer.zero_grad(set_to_none=True)
        else:
            lr = learning_rate(cfg.optim, self.step, self.total_steps, self.warmup_steps)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            scale = self.scaler.get_scale() if self.scaler.is_enabled() else None
            self.scaler.update()
            if scale is not None and self.scaler.get_scale() < scale:  # the scaler skipped this step's update
                self.overflow_steps += 1
                log.debug("%s: fp16 gradients overflowed at scale %g; step skipped", where, scale)
            broken = _nonfinite_state(method)
            if broken is not None:  # a finite loss, and yet the step broke a weight (a rate far too high)
                raise TrainingError(
                    f"{where}: the optimiser step made {broken} non-finite; stopped, no checkpoint written (the last "
                    f"good one is in {self.checkpoints.folder}). Lower optim.lr"
                )
        self.step += 1
        values = {f"loss/{k}": float(v.detach()) for k, v in terms.items()} | {"loss/total": float(loss.detach())}
        values |= {f"train/{k}": float(v.detach()) for k, v in output["metrics"].items()}
        values["train/lr"] = self.optimizer.param_groups[0]["lr"]
        return values

    # ------------------------------------------------------------------------------------------ writing

    def save(self, epoch: int, batch: int) -> None:
        self._refuse_nonfinite()
        if self.main:
            state = {
                "method": self.method.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "optimizer_params": self.names,  # the parameter of each Adam index: moments carry by name
                "scaler": self.scaler.state_dict(),
                "step": self.step,
                "epoch": epoch,
                "batch": batch,
                "stage": self.stage.name,
                "config": to_yaml(self.cfg),
                "rng": rng_state(),
                "identity": self.identity,
            }
            self.checkpoints.save(state, self.step)
        barrier()

    def write_final(self, summary: dict) -> None:
        self._refuse_nonfinite()
        if self.main:
            save_torch(
                self.out / FINAL,
                {
                    "backbone": self.method.encoder.backbone.state_dict(),
                    "method": self.method.state_dict(),
                    "model": encoder_record(self.cfg),
                    "config": to_yaml(self.cfg),
                    "summary": summary,
                },
            )

    def _refuse_nonfinite(self) -> None:
        """No checkpoint or final.pt ever holds a non-finite tensor."""
        broken = _nonfinite_state(self.method)
        if broken is not None:
            raise TrainingError(
                f"{self.stage.name}: {broken} non-finite; nothing written (the last good checkpoint is in "
                f"{self.checkpoints.folder})"
            )

    def monitor(self, epoch: int) -> dict:
        """kNN top-1 per test group (per view for CVS), frozen features, one centre window per video, training
        videos as the reference."""
        cfg, split = self.cfg, self.split
        if not split.test or rank() != 0:
            barrier()
            return {}
        backbone = self.method.encoder.backbone
        amp = self.device.type == "cuda"
        reference = subsample(self.samples, cfg.train.knn_max_train, cfg.seed)
        train_x, train_y = extract_features(backbone, reference, cfg, self.device, amp=amp)
        accuracies = {}
        for group, samples in split.test.items():
            test_x, test_y = extract_features(backbone, samples, cfg, self.device, amp=amp)
            accuracies[group] = knn_accuracy(train_x, train_y, test_x, test_y, self.num_classes, cfg.train.knn_k)
        self.logger.log(self.step, {f"knn/{group}": value for group, value in accuracies.items()}, epoch=epoch)
        views = "  ".join(f"{view_label(g)}: {100 * a:.1f}%" for g, a in accuracies.items())
        # one centre window per video (viewclr knn averages eval.feature_windows of them: a different figure)
        tqdm.write(f"kNN monitor top-1 (k={cfg.train.knn_k}, one window per video) after epoch {epoch}: {views}")
        barrier()
        return accuracies


def _nonfinite_state(method: torch.nn.Module) -> str | None:
    """'N tensors (e.g. X)' when a floating tensor of the method's state is not finite, else None; one device
    synchronisation, and agreed across ranks."""
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


def _even_batch(clips: torch.Tensor, splits: int) -> torch.Tensor | None:
    """Drop the last few clips when skipped videos left a batch that the sub-batches (or GPUs) cannot share; None
    when fewer than 2 clips a sub-batch would be left (BatchNorm needs 2, and so does L3D's standardisation)."""
    size = len(clips)
    if is_distributed():
        smallest = torch.tensor([size], device=clips.device)
        dist.all_reduce(smallest, op=dist.ReduceOp.MIN)
        size = int(smallest)
    splits = max(splits, 1)
    size -= size % splits
    return clips[:size] if size // splits >= 2 else None
