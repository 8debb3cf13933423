"""`viewclr pretrain`."""

from __future__ import annotations

import argparse

from viewclr.cli import command, config_arguments, progress_argument


@command(
    "pretrain",
    "self-supervised pretraining: MoCo (stage 1) then ViewCLR (stage 2), or the InfoNCE baseline",
    "Train on the protocol's training videos. method.name=viewclr runs stage 1 (MoCo with InfoNCE, "
    "train.stage1_epochs) then stage 2 (ViewCLR, train.stage2_epochs, from stage 1's weights); method.name=infonce "
    "trains the InfoNCE baseline for the same total epochs. Multi-GPU: launch with `torchrun --nproc_per_node N "
    "-m viewclr pretrain ...`. Outputs, checkpoints and logs go to out_dir.",
)
def pretrain(p: argparse.ArgumentParser):
    config_arguments(p)
    p.add_argument("--stage", choices=("all", "1", "2"), default="all", help="which stage(s) to train (default: all)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue this run from its last good checkpoint in out_dir (only a checkpoint of these settings; more "
        "epochs continue it, a stage 2 whose stage 1 grew is trained again)",
    )
    p.add_argument(
        "--from",
        dest="source",
        metavar="STAGE_DIR",
        help="InfoNCE baseline (method.name=infonce): continue another run's finished stage 1 (e.g. runs/x/stage1) "
        "for train.stage2_epochs more, the same run as the full baseline at the cost of stage 2's epochs",
    )
    progress_argument(p)

    def run(args: argparse.Namespace) -> int:
        from viewclr.config import load_config
        from viewclr.data.index import view_label
        from viewclr.engine.plan import pretrain
        from viewclr.runtime import rank

        cfg = load_config(args.config, args.overrides)
        results = pretrain(cfg, stage=args.stage, resume=args.resume, progress=not args.no_progress, source=args.source)
        if rank() == 0:
            for name, r in results.items():
                knn = "  ".join(f"{view_label(g)}: {100 * a:.1f}%" for g, a in r.get("knn", {}).items())
                monitor = f"; kNN monitor (one window per video) {knn}" if knn else ""
                print(f"{name}: {steps_line(r)}; weights: {r['final']}{monitor}")
        return 0

    return run


def steps_line(r: dict) -> str:
    """What a stage trained: '90 steps in 131 s (steps 217–306; 1–216 continued from another run's stage 1)'."""
    if r.get("already_trained"):
        return f"already trained ({r['steps']:,} steps), nothing to do"
    trained, total = r.get("trained_steps", r["steps"]), r["steps"]
    line = f"{trained:,} steps in {r['seconds']:.0f} s"
    if trained != total:
        before = "continued from another run's stage 1" if r.get("continued") else "trained before (resumed)"
        line += f" (steps {total - trained + 1:,}–{total:,}; 1–{total - trained:,} {before})"
    return line
