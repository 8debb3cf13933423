"""Commands that evaluate encoders: `probe`, `finetune`, `test`, `knn`, `extract`, `tsne`, `fuse`, `pose`, `report`."""

from __future__ import annotations

import argparse
from functools import partial

from viewclr.cli import command, config_arguments, progress_argument

WHERE = "Results: results.json, results.md (Table 1 layout), scores.pt in --out (default out_dir/eval/<command>)."


def print_results(results: dict, where: str) -> None:
    """One line: top-1 (mean-class accuracy, and top-5 over how many classes) per test group, and where the
    results are."""
    from viewclr.data.index import view_label

    mode = results["mode"]
    if mode == "knn":  # say which measurement it is (the pretraining monitor uses one window per video)
        mode = f"knn (k={results.get('k')}, {results.get('windows', '?')} windows per video)"
    cells = "  ".join(
        f"{view_label(g)}: {100 * r['top1']:.1f}%"
        + (f" (mean-class {100 * r['mean_class']:.1f}%" if "mean_class" in r else "")
        + (
            f"{'; ' if 'mean_class' in r else ' ('}top-5 of {r.get('top5_of', '?')} classes {100 * r['top5']:.1f}%"
            if "top5" in r
            else ""
        )
        + (")" if "mean_class" in r or "top5" in r else "")
        for g, r in results.get("groups", {}).items()
        if "top1" in r
    )
    print(f"{mode} top-1 per test group: {cells or 'no test split'}; results in {where}")


def eval_config(args: argparse.Namespace):
    """The config of an evaluation command: preset + overrides, --checkpoint as eval.checkpoint."""
    from viewclr.config import load_config

    checkpoint = getattr(args, "checkpoint", None)
    return load_config(args.config, list(args.overrides) + ([f"eval.checkpoint={checkpoint}"] if checkpoint else []))


def encoder_arguments(p: argparse.ArgumentParser, out: str = "results folder", required: bool = False) -> None:
    """The arguments of a command on an encoder: --config, overrides, --checkpoint (eval.checkpoint), --out."""
    config_arguments(p)
    p.add_argument(
        "--checkpoint",
        help="encoder (or classifier) weights (sets eval.checkpoint); a pose file (SkeletonCLR's final.pt, a pose "
        "classifier.pt) reads the split's skeletons instead of its videos",
    )
    p.add_argument("--out", required=required, help=out)


def evaluation_arguments(p: argparse.ArgumentParser, mode: str):
    """The arguments of probe, finetune and test, and their handler."""
    encoder_arguments(p)
    if mode != "test":
        p.add_argument(
            "--validation",
            action="store_true",
            help="also train without the last pose.val_subjects training subjects and score those (training view "
            "only) into <out>-val/: the validation scores viewclr fuse --validation chooses its weight on",
        )
    progress_argument(p)
    return partial(run_evaluation, mode=mode)


def run_evaluation(args: argparse.Namespace, mode: str) -> int:
    """probe, finetune or test: evaluate, then one line of results (and the validation run's, when asked)."""
    from viewclr.data.registry import build_split
    from viewclr.eval.classify import evaluate
    from viewclr.models.weights import pose_record

    cfg = eval_config(args)
    out = args.out or f"{cfg.out_dir}/eval/{mode}"
    if pose_record(cfg.eval.checkpoint) is not None:  # a skeleton encoder: the split's skeletons, not its videos
        from viewclr.studies.pose import evaluate_checkpoint

        for validation in (False, True) if getattr(args, "validation", False) else (False,):
            where = f"{out}-val" if validation else out
            print_results(evaluate_checkpoint(cfg, mode, where, not args.no_progress, validation), where)
        return 0
    print_results(evaluate(cfg, mode, out, progress=not args.no_progress), out)
    if getattr(args, "validation", False):
        from viewclr.studies.pose import validation_split

        spec, split = build_split(cfg.data)
        held_out = (spec, validation_split(split, cfg.pose.val_subjects))
        print_results(evaluate(cfg, mode, f"{out}-val", progress=not args.no_progress, split=held_out), f"{out}-val")
    return 0


PROBE = "linear probe: frozen encoder (BatchNorm in eval mode), a linear layer; multi-view test per view"
FINETUNE = "finetune the encoder (lower learning rate) with a linear layer; multi-view test per view"
TEST = (
    "multi-view test of a probe/finetune classifier: ten crops × windows, top-1/top-5 per view (a pose "
    "classifier.pt: each test skeleton once)"
)


@command("probe", PROBE, f"{PROBE}. {WHERE}")
def probe(p: argparse.ArgumentParser):
    return evaluation_arguments(p, "probe")


@command("finetune", FINETUNE, f"{FINETUNE}. {WHERE}")
def finetune(p: argparse.ArgumentParser):
    return evaluation_arguments(p, "finetune")


@command("test", TEST, f"{TEST}. {WHERE}")
def multiview_test(p: argparse.ArgumentParser):
    return evaluation_arguments(p, "test")


@command("knn", "cosine kNN on frozen features (no training): top-1 per test view", f"kNN top-1 per view. {WHERE}")
def knn(p: argparse.ArgumentParser):
    encoder_arguments(p)
    progress_argument(p)

    def run(args: argparse.Namespace) -> int:
        from viewclr.eval.embed import knn

        cfg = eval_config(args)
        out = args.out or f"{cfg.out_dir}/eval/knn"
        print_results(knn(cfg, out, progress=not args.no_progress), out)
        return 0

    return run


@command("extract", "write frozen features of every video of a split to .npy + .json")
def extract(p: argparse.ArgumentParser):
    encoder_arguments(p, "output path without extension: OUT.npy and OUT.json", required=True)
    p.add_argument("--split", choices=("train", "test", "all"), default="all", help="which side (default: all)")
    progress_argument(p)

    def run(args: argparse.Namespace) -> int:
        from viewclr.eval.embed import extract

        done = extract(eval_config(args), args.out, side=args.split, progress=not args.no_progress)
        print(
            f"features {done['shape'][0]:,} × {done['shape'][1] if len(done['shape']) > 1 else 0}: "
            f"{done['features']}; names, labels, views: {done['index']}"
        )
        return 0

    return run


@command("tsne", "t-SNE plot (PNG) of the test videos of one view, coloured by class")
def tsne(p: argparse.ArgumentParser):
    encoder_arguments(p, "PNG file", required=True)
    p.add_argument(
        "--view",
        help="test group to embed (default: the last, e.g. 90 for CVS; all: every test view in one picture, "
        "a marker per view)",
    )
    p.add_argument("--max-samples", type=int, default=1000, help="at most this many videos (default: 1000)")
    progress_argument(p)

    def run(args: argparse.Namespace) -> int:
        from viewclr.eval.embed import tsne

        done = tsne(
            eval_config(args), args.out, view=args.view, max_samples=args.max_samples, progress=not args.no_progress
        )
        print(f"t-SNE of {done['videos']} test videos at view {done['view']}: {done['png']}")
        return 0

    return run


@command(
    "export",
    "write the encoder of any weights file as a plain state dict in torchvision's S3D layout",
    "The encoder of a viewclr final.pt, checkpoint or probe/finetune result as a plain state dict (features.*, no "
    "head): torchvision's s3d() loads it with strict=False, and so do train.init and --checkpoint. What it expects "
    "(input, mean, std) is printed: a plain state dict cannot carry it.",
)
def export(p: argparse.ArgumentParser):
    p.add_argument("checkpoint", help="a viewclr final.pt, checkpoint, or probe/finetune classifier.pt (video or pose)")
    p.add_argument("--out", required=True, help="the .pth file to write")

    def run(args: argparse.Namespace) -> int:
        from viewclr.fileio import save_torch
        from viewclr.models.weights import pretrained_encoder

        encoder = pretrained_encoder(args.checkpoint)
        save_torch(args.out, dict(encoder.state_dict()))
        record = ", ".join(f"{k}={v}" for k, v in encoder.record.items())
        print(f"wrote {args.out}: {len(encoder.state_dict())} tensors ({record})")
        return 0

    return run


@command("fuse", "late fusion of two models' per-video scores (e.g. RGB + pose)")
def fuse(p: argparse.ArgumentParser):
    p.add_argument("first", help="scores.pt of the first model (e.g. viewclr probe/test)")
    p.add_argument("second", help="scores.pt of the second model (e.g. viewclr pose, or your own: names + scores)")
    p.add_argument("--weight", type=float, help="weight of the first model's softmax (default: 0.5)")
    p.add_argument(
        "--validation",
        nargs=2,
        metavar=("FIRST_VAL", "SECOND_VAL"),
        help="both models' scores.pt on a validation split (e.g. held-out training subjects): the weight is "
        "chosen on them, never on the test scores",
    )
    p.add_argument("--out", help="results folder")

    def run(args: argparse.Namespace) -> int:
        from viewclr.eval.fusion import fuse

        weight = args.weight if args.weight is not None or args.validation else 0.5
        results = fuse(args.first, args.second, weight, args.out, validation=args.validation)
        chosen = " (chosen on the validation scores)" if args.validation else ""
        print(f"weight of the first model: {results['weight']:g}{chosen}")
        print_results(results, args.out or "(not written)")
        return 0

    return run


@command(
    "pose",
    "the pose modality: SkeletonCLR (pretrain, then probe / finetune) or the supervised 2s-AGCN joint stream",
    "Reads the skeletons (pose.root or data.root; cached as arrays in pose.cache or <out_dir>/skeletons), splits "
    "them by the config's protocol, trains, and writes results.json, results.md and scores.pt (for viewclr fuse) "
    "per evaluation in --out.",
)
def pose(p: argparse.ArgumentParser):
    config_arguments(p)
    p.add_argument("--method", choices=("skeletonclr", "agcn"), default="skeletonclr", help="(default: %(default)s)")
    p.add_argument(
        "--eval", nargs="+", choices=("probe", "finetune"), default=["probe"], help="SkeletonCLR's evaluations"
    )
    p.add_argument(
        "--validation",
        action="store_true",
        help="also score a classifier trained without pose.val_subjects training subjects on them (<eval>-val/), "
        "for viewclr fuse --validation",
    )
    p.add_argument("--out", help="results folder (default: out_dir/pose)")
    progress_argument(p)

    def run(args: argparse.Namespace) -> int:
        from pathlib import Path

        from viewclr.studies.pose import evaluate_pose, pose_data, pretrain_skeletonclr

        cfg = eval_config(args)
        out = Path(args.out or f"{cfg.out_dir}/pose")
        progress = not args.no_progress
        data = pose_data(cfg, progress)
        for line in data.split.left_out:
            print(line)
        weights = None
        if args.method == "skeletonclr":
            weights = pretrain_skeletonclr(cfg, data, out / "skeletonclr", progress)
            print(f"SkeletonCLR weights: {weights}")
        modes = args.eval if args.method == "skeletonclr" else ["finetune"]
        for mode in modes:
            for validation in (False, True) if args.validation else (False,):
                where = out / args.method / (mode + ("-val" if validation else ""))
                results = evaluate_pose(cfg, args.method, mode, weights, data, where, progress, validation)
                print_results(results, str(where))
        return 0

    return run


@command("report", "a Markdown report of one run or a comparison of several, with plots")
def report(p: argparse.ArgumentParser):
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="out_dir folders of pretrain / eval runs")
    p.add_argument("--out", default="report.md", help="Markdown file; images go beside it (default: report.md)")

    def run(args: argparse.Namespace) -> int:
        from viewclr.eval.report import report

        print(f"report: {report(args.runs, args.out)}")
        return 0

    return run
