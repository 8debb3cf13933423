"""Which stages a run trains, and what each starts from: the one orchestrator of pretraining.

- ViewCLR (method.name=viewclr): stage 1, MoCo with InfoNCE for stage1_epochs; stage 2, ViewCLR for stage2_epochs,
  starting from stage 1's final weights (fg1, fg2 copied from f1, f2; Queue2 aligned with Queue1) and, with
  method.stage2_optimizer=carry, the encoder's Adam moments.
- The InfoNCE baseline (method.name=infonce): one stage of stage1_epochs + stage2_epochs; `source` continues a
  finished stage 1 of another run instead (the same run as an uninterrupted baseline, since resume is exact).

`viewclr pretrain` and the studies (`viewclr.studies`) both train through `pretrain`: a study's shared stage 1 is
`pretrain(..., stage="1")`, each variant's stage 2 is `pretrain(..., stage="2", stage1=shared)` and the baseline
`pretrain(..., source=shared)`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from viewclr.checkpoint import CheckpointManager, load_weights
from viewclr.config import NOT_A_ROW, Config, run_differences, table1_row
from viewclr.data.index import Split
from viewclr.data.registry import build_split
from viewclr.engine.trainer import FINAL, Trainer, TrainingError
from viewclr.errors import ConfigError
from viewclr.models.registry import check_backbone
from viewclr.models.weights import initial_state
from viewclr.runtime import barrier, check_precision, choose_device, rank, setup_distributed, world_size

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    name: str  # folder under out_dir: stage1, stage2, infonce
    method: str  # infonce (MoCo trained with InfoNCE) | viewclr
    epochs: int


def plan(cfg: Config, which: str = "all") -> list[Stage]:
    """The stages a run trains: ViewCLR is MoCo for stage1_epochs then ViewCLR for stage2_epochs; the InfoNCE
    baseline is MoCo for the same total number of epochs."""
    t = cfg.train
    if cfg.method.name == "infonce":
        if which not in ("all", "1"):
            raise TrainingError("method.name=infonce has one stage; --stage 2 is for ViewCLR")
        return [Stage("infonce", "infonce", t.stage1_epochs + t.stage2_epochs)]
    stages = [Stage("stage1", "infonce", t.stage1_epochs), Stage("stage2", "viewclr", t.stage2_epochs)]
    return {"all": stages, "1": stages[:1], "2": stages[1:]}[which]


def pretrain(
    cfg: Config,
    stage: str = "all",
    resume: bool = False,
    progress: bool = True,
    source: str | Path | None = None,
    stage1: str | Path | None = None,
    split: tuple | None = None,
) -> dict:
    """Train the planned stages in order; returns {stage name: summary}.

    `source` (InfoNCE baseline only): continue another run's finished stage 1. `stage1`: the stage-1 folder stage
    2 starts from (default out_dir/stage1). `split`: (spec, Split) when the caller built it already."""
    setup_distributed()
    check_backbone(cfg.model.backbone)  # the names a config cannot check, before any work
    check_precision(cfg.train, choose_device(cfg.train.device))  # a low precision this machine computes wrongly
    if any(s.method == "viewclr" for s in plan(cfg, stage)):
        check_stage2(cfg)
    spec, data = split if split is not None else build_split(cfg.data)
    if source is not None:
        if cfg.method.name != "infonce":
            raise TrainingError(
                "--from continues another run's stage 1 with the InfoNCE baseline (method.name=infonce)"
            )
        if rank() == 0:
            continue_from(source, cfg, plan(cfg)[0])
        barrier()
        resume = True
    results = {}
    for s in plan(cfg, stage):
        init = moments = note = None
        if s.method == "viewclr":
            start = Path(stage1) if stage1 is not None else Path(cfg.out_dir) / "stage1"
            init, moments = stage1_weights(start), stage_moments(start, cfg)
            if cfg.train.init is not None:  # the generator too, where train.init holds one
                weights, note = initial_state(cfg.train.init, cfg, third_stream=True)
                init |= {k: v for k, v in weights.items() if k.startswith("generator.")}
        elif cfg.train.init is not None and source is None:  # the first stage starts from train.init
            init, note = initial_state(cfg.train.init, cfg)
        results[s.name] = train_stage(cfg, s, data, len(spec.classes), init, moments, resume, progress, note)
    return results


def check_stage2(cfg: Config) -> None:
    """Before any work: L3D's codes are standardised over each BatchNorm sub-batch (each process's batch under
    torchrun), which needs 2 videos or more; and a stage 2 that is no row of the paper's Table 1 is said so."""
    per_group = cfg.data.batch_size // (cfg.method.bn_splits if world_size() == 1 else 1)
    if cfg.method.use_l3d and cfg.method.use_generator and per_group < 2:
        raise ConfigError(
            "data.batch_size", f"L3D standardises its codes over each BatchNorm sub-batch, which needs 2 videos or "
            f"more; data.batch_size={cfg.data.batch_size} in method.bn_splits={cfg.method.bn_splits} gives {per_group}"
        )  # fmt: skip
    if table1_row(cfg) == NOT_A_ROW and rank() == 0:
        log.warning("stage 2 is %s", NOT_A_ROW)


def train_stage(
    cfg: Config,
    stage: Stage,
    split: Split,
    num_classes: int,
    init: dict | None = None,
    moments: dict | None = None,
    resume: bool = False,
    progress: bool = True,
    init_note: str | None = None,
) -> dict:
    """One stage: skipped when this run finished it already; started over (an earlier run set aside) without
    `resume`; otherwise from `init` weights (`init_note` says whence) and carried `moments`, or from its own
    newest checkpoint."""
    out = Path(cfg.out_dir) / stage.name
    final = out / FINAL
    if resume and final.is_file():
        finished = finished_run(final, cfg, stage)
        if finished is not None:
            log.info("%s is already trained (%s); skipping it", stage.name, final)
            return finished
    if not resume and rank() == 0:
        set_aside(out)
    barrier()
    trainer = Trainer(cfg, stage, split, num_classes, progress)
    trainer.build()
    trainer.start(init=init, init_optimizer=moments, resume=resume, init_note=init_note)
    return trainer.fit()


def stage1_weights(stage1: str | Path) -> dict:
    """The method state stage 2 starts from: stage 1's final weights (a stage folder such as RUN/stage1)."""
    path = Path(stage1) / FINAL
    if not path.is_file():
        raise TrainingError(f"stage 2 starts from stage 1's weights, and {path} does not exist; run stage 1")
    return load_weights(path)["method"]


def stage_moments(stage1: str | Path, cfg: Config) -> dict[str, dict] | None:
    """Stage 1's Adam state per parameter name, for stage 2 to continue the encoder's moments
    (method.stage2_optimizer=carry; None with fresh, or when stage 1 left no checkpoint). A fresh Adam's first
    steps move every weight by about the learning rate, which costs a short stage 2 what stage 1 learned
    (docs/results.md); the InfoNCE baseline, continued from stage 1, keeps its moments too."""
    if cfg.method.stage2_optimizer != "carry":
        return None
    found = CheckpointManager(Path(stage1) / "checkpoints").load_latest(map_location="cpu")
    if found is None:
        log.warning("%s holds no checkpoint with an optimiser state; stage 2 starts a fresh Adam", stage1)
        return None
    state, path = found
    names = state.get("optimizer_params")
    if names is None:
        raise TrainingError(f"{path} does not name its optimiser's parameters; it cannot seed stage 2's moments")
    return {names[index]: values for index, values in state["optimizer"]["state"].items()}


def continues_stage1(cfg: Config) -> bool:
    """Whether a finished stage 1 is the start of a longer InfoNCE baseline: only at a rate that does not depend
    on the run's length (optim.schedule=constant)."""
    return cfg.optim.schedule == "constant"


def continue_from(source: str | Path, cfg: Config, stage: Stage) -> Path:
    """Seed `stage`'s checkpoints with the newest good checkpoint of another run's MoCo stage (`source`, a stage
    folder such as runs/x/stage1), so that training it with resume=True continues that run. The InfoNCE baseline
    continued from ViewCLR's stage 1 for stage2_epochs is the same run as an uninterrupted baseline of
    stage1_epochs + stage2_epochs (resume is exact), and costs stage 2's epochs only."""
    if stage.method != "infonce":
        raise TrainingError("only an InfoNCE stage (the baseline) continues another run's stage 1")
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
    if state.get("batch", 0) != 0 or state.get("stage") not in (None, "stage1", "infonce"):
        raise TrainingError(f"{path} is not the end of an epoch of an InfoNCE stage; continue from a finished stage 1")
    target.save(state, state["step"])
    log.info("%s continues %s (epoch %d, step %d)", stage.name, path, state["epoch"], state["step"])
    return target.folder


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
