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

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from viewclr import lineage
from viewclr.checkpoint import CheckpointManager, load_weights, shape_mismatch
from viewclr.config import NOT_A_ROW, Config, table1_row
from viewclr.data.index import Split
from viewclr.data.registry import build_split
from viewclr.engine.trainer import FINAL, Trainer, TrainingError
from viewclr.errors import ConfigError
from viewclr.fileio import folder_lock, set_aside
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
    restart: bool = False,
) -> dict:
    """Pretrain `cfg`: ViewCLR's stage 1 and stage 2 (method.name=viewclr), or the InfoNCE baseline.

    Args:
        cfg: the run's config; its folders go under cfg.out_dir (stage1/, stage2/ or infonce/).
        stage: "1", "2" or "all" (ViewCLR's stages to run; the baseline has one).
        resume: continue a stage's own checkpoint, and reuse a finished stage, where they match this run.
        progress: progress bars on a terminal.
        source: (the InfoNCE baseline only) continue another run's finished stage 1 instead of starting afresh.
        stage1: the stage-1 folder stage 2 starts from (default out_dir/stage1).
        split: (spec, Split) when the caller built it already.
        restart: set aside and train again a stage that does not match (compare, demo), instead of stopping.

    Returns:
        {stage name: summary}; a summary holds "final" (the path of final.pt), "steps", "epochs", "seconds",
        "knn" (the monitor's accuracy), "identity" and what the stage skipped or dropped.

    Raises:
        ConfigError (a bad setting, or a stage that does not match and no `restart`), TrainingError.

    Reuse (`resume`) is by identity (`viewclr.lineage`): a stage's final.pt is reused only if it records this run's
    identity, a checkpoint is continued only if it is a point of this run. A stage that does not match stops the
    run before any work, naming the keys — or, with `restart` (compare, demo), is set aside and trained again. A
    stage whose only difference is the stage it starts from (an earlier stage now trained longer) is trained again
    either way."""
    setup_distributed()
    check_backbone(cfg.model.backbone)  # the names a config cannot check, before any work
    check_precision(cfg.train, choose_device(cfg.train.device))  # a low precision this machine computes wrongly
    stages = plan(cfg, stage)
    if any(s.method == "viewclr" for s in stages):
        check_stage2(cfg)
    spec, data = split if split is not None else build_split(cfg.data)
    if source is not None:
        if cfg.method.name != "infonce":
            raise TrainingError(
                "--from continues another run's stage 1 with the InfoNCE baseline (method.name=infonce)"
            )
        resume = True
    with folder_lock(cfg.out_dir, "viewclr pretrain") if rank() == 0 else contextlib.nullcontext():
        return _pretrain(cfg, stages, spec, data, resume, progress, source, stage1, restart)


def _pretrain(cfg, stages, spec, data, resume, progress, source, stage1, restart) -> dict:
    identities, found = identify(cfg, stages, data.train_samples(), stage1), {}
    for s in stages:  # every stage's files checked before any work
        found[s.name] = inspect(Path(cfg.out_dir) / s.name, identities[s.name], cfg) if resume else Found("fresh")
        problem = found[s.name]
        if problem.kind == "stale" and not restart and not problem.parent_only:
            raise TrainingError(
                f"{problem.where} does not match this run ({'; '.join(problem.differences[:4])}): resume it with its "
                "settings, or start over without --resume (the earlier run is then set aside)"
            )
    results = {}
    for s in stages:
        out, here = Path(cfg.out_dir) / s.name, found[s.name]
        if here.kind == "done":
            log.info("%s is already trained (%s); skipping it", s.name, here.summary["final"])
            results[s.name] = here.summary
            continue
        if here.kind == "stale" and rank() == 0:
            log.warning(
                "%s does not match this run (%s); training %s again",
                here.where,
                "; ".join(here.differences[:4]),
                s.name,
            )
        if (here.kind == "stale" or not resume) and rank() == 0:
            set_aside(out)
        if source is not None and here.kind != "continue" and rank() == 0:
            continue_from(source, cfg, s, identities[s.name])
        barrier()
        init = moments = note = None
        if s.method == "viewclr":
            start = Path(stage1) if stage1 is not None else Path(cfg.out_dir) / "stage1"
            init, moments = stage1_weights(start), stage_moments(start, cfg)
            note = f"from stage 1 ({start / FINAL})"
            if cfg.train.init is not None:  # the generator too, where train.init holds one
                generator, taken = generator_from_init(cfg)
                init |= generator
                note += f", {taken}"
        elif cfg.train.init is not None and source is None:  # the first stage starts from train.init
            init, note = initial_state(cfg.train.init, cfg)
        resumes = here.kind == "continue" or source is not None  # its own checkpoint, or the one continue_from seeded
        results[s.name] = train_stage(
            cfg, s, data, len(spec.classes), init, moments, resumes, progress, note, identities[s.name], here.checkpoint
        )
    return results


def identify(cfg: Config, stages: list[Stage], samples, stage1: str | Path | None = None) -> dict[str, dict]:
    """Each planned stage's identity (`lineage.stage_identity`): stage 2's parent is the stage 1 this call trains,
    or the one in `stage1` (default out_dir/stage1), as its final.pt records it."""
    identities: dict[str, dict] = {}
    for s in stages:
        parent = None
        if s.method == "viewclr":
            first = next((identities[t.name] for t in stages if t.name == "stage1"), None)
            if first is None:
                path = (Path(stage1) if stage1 is not None else Path(cfg.out_dir) / "stage1") / FINAL
                if not path.is_file():
                    raise TrainingError(
                        f"stage 2 starts from stage 1's weights, and {path} does not exist; run stage 1"
                    )
                first = lineage.weights_identity(path)
            parent = first
        identities[s.name] = lineage.stage_identity(cfg, s.method, s.epochs, samples, parent)
    return identities


@dataclass
class Found:
    """What a stage's folder holds for a run: `done` (a final.pt of its identity; `summary`), a `checkpoint` it
    continues, nothing (`fresh`), or a `stale` run (its `differences`, and the file `where` they are)."""

    kind: str  # done | continue | fresh | stale
    summary: dict | None = None
    checkpoint: tuple | None = None
    differences: list[str] = field(default_factory=list)
    where: Path | None = None

    @property
    def parent_only(self) -> bool:
        """Whether the stage differs only in the stage it starts from (which this call trains longer)."""
        return all(d.startswith(lineage.PARENT) for d in self.differences)


def inspect(out: Path, identity: dict, cfg: Config) -> Found:
    """How the files in a stage folder `out` stand to a run of `identity`."""
    final = out / FINAL
    if final.is_file():
        summary = load_weights(final, mmap=True).get("summary", {})
        saved = summary.get("identity")
        if lineage.same(saved, identity):
            return Found("done", summary={"final": str(final), **summary, "already_trained": True})
        other = lineage.differences(None if saved is None else {**saved, "epochs": identity["epochs"]}, identity)
        if other:  # not the same run at another length: no checkpoint of it continues this one
            return Found("stale", differences=other, where=final)
    checkpoint = CheckpointManager(out / "checkpoints").load_latest(map_location="cpu")
    if checkpoint is None:
        return (
            Found("fresh")
            if not final.is_file()
            else Found("stale", differences=["it holds no checkpoint to continue"], where=final)
        )
    state, path = checkpoint
    problems = lineage.continues(
        state.get("identity"),
        (state["epoch"], state["batch"]),
        identity,
        lineage.length_dependent(cfg, identity["method"]),
    )
    return Found("stale", differences=problems, where=path) if problems else Found("continue", checkpoint=checkpoint)


def check_stage2(cfg: Config) -> None:
    """Before any work: L3D's codes are standardised over each BatchNorm sub-batch (each process's batch under
    torchrun), which needs 2 videos or more; and a stage 2 that is no row of the paper's Table 1 is said so."""
    per_group = cfg.data.batch_size // (cfg.method.bn_splits if world_size() == 1 else 1)
    if cfg.method.use_l3d and cfg.method.use_generator and per_group < 2:
        raise ConfigError(
            "data.batch_size",
            f"L3D standardises its codes over each BatchNorm sub-batch, which needs 2 videos or "
            f"more; data.batch_size={cfg.data.batch_size} in method.bn_splits={cfg.method.bn_splits} gives {per_group}",
        )
    if table1_row(cfg) == NOT_A_ROW and rank() == 0:
        log.warning("stage 2 is %s", NOT_A_ROW)
    if cfg.train.init is not None:
        generator_from_init(cfg)  # a generator that does not fit stops here, not after stage 1


def generator_from_init(cfg: Config) -> tuple[dict, str]:
    """The viewpoint generator's weights stage 2 takes from train.init (those this stage's generator has), and the
    words saying what was taken. A tensor of another shape is a config error naming train.init; the parts this
    run's switches leave out (method.use_l3d=false: no auto-encoder) are left out, said so."""
    from viewclr.methods import build_method

    weights, _ = initial_state(cfg.train.init, cfg, third_stream=True)
    generator = {k: v for k, v in weights.items() if k.startswith("generator.")}
    own = {k: v.shape for k, v in build_method(cfg, "viewclr").state_dict().items() if k.startswith("generator.")}
    mismatch = shape_mismatch(generator, own)
    if mismatch is not None:
        raise ConfigError(
            "train.init",
            f"{cfg.train.init}: {mismatch[1]} (its generator was built with other "
            "model.npl_hidden, model.low_dim, model.autoencoder_hidden or model.world)",
        )
    if not generator:
        return {}, f"the viewpoint generator fresh ({cfg.train.init} holds none)"
    note = f"the viewpoint generator from {cfg.train.init}"
    unused = sorted(k for k in generator if k not in own)
    if unused:
        note += f" ({len(unused)} tensors of its generator this stage 2 has no place for left out, e.g. {unused[0]})"
    return {k: v for k, v in generator.items() if k in own}, note


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
    identity: dict | None = None,
    checkpoint: tuple | None = None,
) -> dict:
    """One stage, from `init` weights (`init_note` says whence) and carried `moments`, or — with `resume` — from
    `checkpoint` (or its own newest checkpoint), which must be a point of this run (`identity`)."""
    trainer = Trainer(cfg, stage, split, num_classes, progress, identity)
    trainer.build()
    trainer.start(init=init, init_optimizer=moments, resume=resume, init_note=init_note, checkpoint=checkpoint)
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
    return not lineage.length_dependent(cfg, "infonce")


def continue_from(source: str | Path, cfg: Config, stage: Stage, identity: dict) -> Path:
    """Seed `stage`'s checkpoints with the newest good checkpoint of another run's MoCo stage (`source`, a stage
    folder such as runs/x/stage1), so that training it with resume=True continues that run. The InfoNCE baseline
    continued from ViewCLR's stage 1 for stage2_epochs is the same run as an uninterrupted baseline of
    stage1_epochs + stage2_epochs (resume is exact), and costs stage 2's epochs only. The source must be a point
    of this run (`identity`): the same settings, data and train.init."""
    if stage.method != "infonce":
        raise TrainingError("only an InfoNCE stage (the baseline) continues another run's stage 1")
    if not continues_stage1(cfg):
        raise TrainingError(
            f"with optim.schedule={cfg.optim.schedule} the learning rate depends on the stage's length, so a finished "
            "stage 1 is not the start of a longer baseline; train the baseline on its own (without --from)"
        )
    target = CheckpointManager(Path(cfg.out_dir) / stage.name / "checkpoints", cfg.train.keep_checkpoints)
    found = CheckpointManager(Path(source) / "checkpoints").load_latest(map_location="cpu")
    if found is None:
        raise TrainingError(f"{source} holds no checkpoint to continue from (a pretrain stage folder, e.g. RUN/stage1)")
    state, path = found
    if state.get("batch", 0) != 0 or state.get("stage") not in (None, "stage1", "infonce"):
        raise TrainingError(f"{path} is not the end of an epoch of an InfoNCE stage; continue from a finished stage 1")
    problems = lineage.continues(state.get("identity"), (state["epoch"], 0), identity, False)
    if problems:
        raise TrainingError(
            f"{path} is not the start of this run ({'; '.join(problems[:4])}); --from continues a "
            "stage 1 of the same settings"
        )
    target.save(state, state["step"])
    log.info("%s continues %s (epoch %d, step %d)", stage.name, path, state["epoch"], state["step"])
    return target.folder
