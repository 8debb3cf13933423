"""`viewclr <command>`: thin wrappers that parse arguments, load config and call library functions."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import sys
import traceback

from viewclr import __version__
from viewclr.errors import ViewCLRError

log = logging.getLogger("viewclr")


def _add_config_arguments(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    help_ = "a preset's name (viewclr config --list) or a YAML file" + (
        " (default: %(default)s)" if default else " (defaults apply without one)"
    )
    parser.add_argument("--config", metavar="PRESET", default=default, help=help_)
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="dotted overrides, e.g. optim.lr=3e-4 data.frames=16",
    )


def cmd_config(args: argparse.Namespace) -> int:
    from viewclr.config import load_config, presets, to_yaml

    if args.list:
        for name, path in presets().items():
            first = next((line[1:].strip() for line in path.read_text().splitlines() if line.startswith("#")), "")
            print(f"{name:<14} {first}")
        return 0
    print(to_yaml(load_config(args.config, args.overrides)), end="")
    return 0


def _view_label(dataset: str, group: str) -> str:
    from viewclr.data.index import view_label

    return view_label(group) if dataset in ("ntu60", "ntu120", "synth") else group


def cmd_splits(args: argparse.Namespace) -> int:
    from viewclr.config import DataConfig
    from viewclr.data.registry import build_split, get_dataset

    spec = get_dataset(args.dataset)
    data = DataConfig(
        dataset=args.dataset,
        root=args.root,
        labels_csv=args.labels_csv,
        protocol=args.protocol or spec.default_protocol,
        exclude_missing_skeletons=args.exclude_missing_skeletons,
        min_frames=args.min_frames,
        train_views=args.train_views or [],
        train_subjects=args.train_subjects or [],
    )
    spec, split = build_split(data, names_file=args.names)
    if args.format == "json":
        print(json.dumps(split.sizes()))
        return 0
    print(f"{spec.title} · protocol {split.protocol}")
    for side, groups in (("train", split.train), ("test", split.test)):
        for group, samples in groups.items():
            label = "" if group == "all" else _view_label(spec.name, group)
            print(f"  {side:<6}{label:<8}{len(samples):>9,}")
    for line in split.left_out:
        print(f"  {line}")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from viewclr.data.cache import FAILED_LIST, CacheSettings, prepare_dataset
    from viewclr.data.registry import get_dataset

    settings = CacheSettings(short_side=args.short_side, crf=args.crf, gop=args.gop)
    report = prepare_dataset(
        get_dataset(args.dataset),
        args.root,
        args.out,
        labels_csv=args.labels_csv,
        settings=settings,
        workers=args.workers,
        progress=not args.no_progress,
    )
    failed = f", {len(report.failed)} unreadable, listed in {args.out}/{FAILED_LIST}" if report.failed else ""
    print(
        f"prepared {report.converted:,} videos ({report.already_done:,} already there{failed}); "
        f"cache: {report.out} ({report.converted + report.already_done:,} of {report.total:,} videos)"
    )
    return 0


def _parse_views(text: str) -> tuple[tuple[float, float | None], ...]:
    """`0,45,90` or `0@10,90@30` (azimuth@elevation, degrees) → ((0, None), (45, None), (90, None))."""
    views = []
    for item in text.split(","):
        azimuth, _, elevation = item.strip().partition("@")
        try:
            views.append((float(azimuth), float(elevation) if elevation else None))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"'{item}' is not AZIMUTH or AZIMUTH@ELEVATION in degrees (e.g. --views 0,45,90@20)"
            ) from None
    return tuple(views)


def cmd_synth(args: argparse.Namespace) -> int:
    from viewclr.data.synth.generate import METADATA, generate
    from viewclr.data.synth.preview import contact_sheet
    from viewclr.data.synth.world import SynthSettings
    from viewclr.errors import DatasetError

    if args.out is None and args.preview is None:
        raise DatasetError("give an output folder (OUT), --preview PNG, or both")
    settings = SynthSettings(
        subjects=args.subjects,
        classes=args.classes if args.classes is not None else (10 if args.layout == "nucla" else 12),
        setups=args.setups,
        size=args.size,
        frames=args.frames,
        fps=args.fps,
        seed=args.seed,
        layout=args.layout,
        views=args.views,
        replications=args.replications if args.replications is not None else 2,
    )
    settings.validate()
    if args.out is not None:
        report = generate(settings, args.out, workers=args.workers, progress=not args.no_progress)
        dataset = {"ntu": "synth", "nucla": "nucla", "folder": "folder"}[settings.layout]
        print(
            f"rendered {report.rendered:,} videos ({report.already_done:,} already there) in {report.seconds:.1f} s; "
            f"dataset: {report.out} ({report.videos:,} videos, metadata in {METADATA}); "
            f"use it with data.dataset={dataset} data.root={report.out}"
        )
    if args.preview is not None:
        path = contact_sheet(settings, args.preview, frames_per_view=args.preview_frames)
        print(f"preview: {path}")
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    from viewclr.config import load_config
    from viewclr.data.index import view_label
    from viewclr.engine.trainer import pretrain
    from viewclr.methods.distributed import rank

    cfg = load_config(args.config, args.overrides)
    results = pretrain(
        cfg, stage=args.stage, resume=args.resume, progress=not args.no_progress, source=getattr(args, "source", None)
    )
    if rank() == 0:
        for name, r in results.items():
            knn = "  ".join(f"{view_label(g)}: {100 * a:.1f}%" for g, a in r.get("knn", {}).items())
            monitor = f"; kNN monitor (one window per video) {knn}" if knn else ""
            print(f"{name}: {_steps_line(r)}; weights: {r['final']}{monitor}")
    return 0


def _steps_line(r: dict) -> str:
    """What a stage trained: '90 steps in 131 s (steps 217–306; 1–216 continued from another run's stage 1)'."""
    if r.get("already_trained"):
        return f"already trained ({r['steps']:,} steps), nothing to do"
    trained, total = r.get("trained_steps", r["steps"]), r["steps"]
    line = f"{trained:,} steps in {r['seconds']:.0f} s"
    if trained != total:
        before = "continued from another run's stage 1" if r.get("continued") else "trained before (resumed)"
        line += f" (steps {total - trained + 1:,}–{total:,}; 1–{total - trained:,} {before})"
    return line


def _print_results(results: dict, where: str) -> None:
    from viewclr.data.index import view_label

    groups = results.get("groups", {})
    mode = results["mode"]
    if mode == "knn":  # say which measurement it is (the pretraining monitor uses one window per video)
        mode = f"knn (k={results.get('k')}, {results.get('windows', '?')} windows per video)"
    cells = "  ".join(
        f"{view_label(g)}: {100 * r['top1']:.1f}%"
        + (f" (top-5 of {r.get('top5_of', '?')} classes {100 * r['top5']:.1f}%)" if "top5" in r else "")
        for g, r in groups.items()
        if "top1" in r
    )
    print(f"{mode} top-1 per test group: {cells or 'no test split'}; results in {where}")


def _eval_config(args: argparse.Namespace):
    """The config of an evaluation command: preset + overrides, --checkpoint as eval.checkpoint."""
    from viewclr.config import load_config

    checkpoint = getattr(args, "checkpoint", None)
    return load_config(args.config, list(args.overrides) + ([f"eval.checkpoint={checkpoint}"] if checkpoint else []))


def _eval_command(mode: str):
    def run(args: argparse.Namespace) -> int:
        from viewclr.eval.classify import evaluate

        cfg = _eval_config(args)
        out = args.out or f"{cfg.out_dir}/eval/{mode}"
        _print_results(evaluate(cfg, mode, out, progress=not args.no_progress), out)
        return 0

    return run


def cmd_knn(args: argparse.Namespace) -> int:
    from viewclr.eval.embed import knn

    cfg = _eval_config(args)
    out = args.out or f"{cfg.out_dir}/eval/knn"
    _print_results(knn(cfg, out), out)
    return 0


def cmd_extract(args: argparse.Namespace) -> int:
    from viewclr.eval.embed import extract

    cfg = _eval_config(args)
    done = extract(cfg, args.out, side=args.split)
    print(f"features {done['shape'][0]:,} × {done['shape'][1] if len(done['shape']) > 1 else 0}: {done['features']}; "
          f"names, labels, views: {done['index']}")  # fmt: skip
    return 0


def cmd_tsne(args: argparse.Namespace) -> int:
    from viewclr.eval.embed import tsne

    cfg = _eval_config(args)
    done = tsne(cfg, args.out, view=args.view, max_samples=args.max_samples)
    print(f"t-SNE of {done['videos']} test videos at view {done['view']}: {done['png']}")
    return 0


def cmd_fuse(args: argparse.Namespace) -> int:
    from viewclr.eval.fusion import fuse

    _print_results(fuse(args.first, args.second, args.weight, args.out), args.out or "(not written)")
    return 0


def cmd_pose(args: argparse.Namespace) -> int:
    from viewclr.eval.fusion import train_pose_stream

    cfg = _eval_config(args)
    out = args.out or f"{cfg.out_dir}/eval/pose"
    _print_results(train_pose_stream(cfg, out, epochs=args.epochs), out)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from viewclr.eval.report import report

    print(f"report: {report(args.runs, args.out)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="viewclr",
        description="ViewCLR: self-supervised video representations that generalise to unseen viewpoints.",
    )
    parser.add_argument("--version", action="version", version=f"viewclr {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(title="commands", metavar="<command>")

    p = commands.add_parser(
        "config",
        help="print the resolved configuration (preset + overrides), checked",
        description="Merge defaults, a YAML preset and dotted overrides; check them; print the result as YAML.",
    )
    _add_config_arguments(p)
    p.add_argument("--list", action="store_true", help="list the presets shipped with viewclr, then exit")
    p.set_defaults(handler=cmd_config)

    p = commands.add_parser(
        "splits",
        help="print the train/test sizes of a dataset protocol (from videos or a names file)",
        description="Apply an evaluation protocol and print its split sizes. With --names the protocol is "
        "checked on a list of sample names, no videos needed. Protocols: ntu60 cs, cv, cvs (= cvs0), cvs45, "
        "cvs90; ntu120 csub, cset; nucla v12_3, v13_2, v23_1; folder all, cross_view, cross_subject.",
    )
    p.add_argument("--dataset", required=True, help="ntu60 | ntu120 | nucla | folder | synth")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--names", metavar="FILE", help="names file: one sample name per line [, frame count]")
    source.add_argument("--root", metavar="DIR", help="dataset root (raw videos or a prepared cache)")
    p.add_argument("--protocol", help="evaluation protocol (default: the dataset's standard one)")
    p.add_argument("--labels-csv", help="folder dataset: path,label[,view][,subject] CSV")
    p.add_argument(
        "--exclude-missing-skeletons", action=argparse.BooleanOptionalAction, default=None,
        help="NTU: drop the official missing-skeleton samples (default: the protocol's, on for CVS only)",
    )  # fmt: skip
    p.add_argument("--min-frames", type=int, help="drop videos known to be shorter (default: dataset's rule)")
    p.add_argument("--train-views", nargs="+", help="folder dataset, cross_view: the training views")
    p.add_argument("--train-subjects", nargs="+", type=int, help="folder dataset, cross_subject: training ids")
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    p.set_defaults(handler=cmd_splits)

    p = commands.add_parser(
        "prepare",
        help="convert a raw dataset once into a small, fast-decoding video cache (resumable)",
        description="Re-encode every video (or N-UCLA frame folder) small, as H.264 with short keyframe "
        "intervals, in parallel workers. A second run skips finished files; unreadable ones are listed in "
        "failed.txt. Use the output folder as data.root.",
    )
    p.add_argument("--dataset", required=True, help="ntu60 | ntu120 | nucla | folder | synth")
    p.add_argument("--root", required=True, metavar="RAW", help="raw dataset root")
    p.add_argument("--out", required=True, metavar="CACHE", help="cache folder to create or complete")
    p.add_argument("--labels-csv", help="folder dataset: path,label[,view][,subject] CSV")
    p.add_argument("--short-side", type=int, default=128, help="short side of cached frames (default: 128)")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: all CPU cores)")
    p.add_argument("--crf", type=int, default=20, help="H.264 quality, lower is better (default: 20)")
    p.add_argument("--gop", type=int, default=8, help="keyframe interval in frames (default: 8)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_prepare)

    p = commands.add_parser(
        "synth",
        help="render the built-in synthetic multi-view action benchmark (and/or a preview contact sheet)",
        description="Render an articulated actor performing the benchmark's actions, seen by NTU RGB+D's "
        "three-camera rig (0°/45°/90° by camera and replication), into an NTU-layout dataset with metadata and "
        "3D joints. Deterministic for a seed; a second run renders only what is missing.",
    )
    p.add_argument("out", nargs="?", metavar="OUT", help="output folder (a dataset root)")
    p.add_argument("--subjects", type=int, default=16, help="actors (default: 16; CS train = NTU's ids 1,2,4,5,8,…)")
    p.add_argument("--classes", type=int, help="action classes, the first K of 16 (default: 12; nucla: 10)")
    p.add_argument("--setups", type=int, default=1, help="rooms / camera placements (default: 1)")
    p.add_argument("--size", type=int, default=112, help="frame size in pixels, square (default: 112)")
    p.add_argument("--frames", type=int, default=48, help="frames per video (default: 48)")
    p.add_argument("--fps", type=int, default=30, help="frame rate written to the videos (default: 30)")
    p.add_argument("--seed", type=int, default=0, help="random seed: same seed, same bytes (default: 0)")
    p.add_argument("--layout", choices=("ntu", "nucla", "folder"), default="ntu", help="file layout (default: ntu)")
    p.add_argument(
        "--views",
        type=_parse_views,
        help="nucla/folder layouts: camera azimuths relative to the actor, optionally @elevation "
        "(default: 0,45,90 at the setup's camera height)",
    )
    p.add_argument("--replications", type=int, help="takes per subject and action (ntu: 2; default: 2)")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: all CPU cores)")
    p.add_argument("--preview", metavar="PNG", help="write a contact sheet: every class, every view, a few frames")
    p.add_argument("--preview-frames", type=int, default=4, help="frames per view in the preview (default: 4)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_synth)

    p = commands.add_parser(
        "pretrain",
        help="self-supervised pretraining: MoCo (stage 1) then ViewCLR (stage 2), or the InfoNCE baseline",
        description="Train on the protocol's training videos. method.name=viewclr runs stage 1 (MoCo, "
        "train.stage1_epochs) then stage 2 (ViewCLR, train.stage2_epochs, from stage 1's weights); "
        "method.name=moco trains the InfoNCE baseline for the same total epochs. Multi-GPU: launch with "
        "`torchrun --nproc_per_node N -m viewclr pretrain ...`. Outputs, checkpoints and logs go to out_dir.",
    )
    _add_config_arguments(p)
    p.add_argument("--stage", choices=("all", "1", "2"), default="all", help="which stage(s) to train (default: all)")
    p.add_argument("--resume", action="store_true", help="continue from the last good checkpoint in out_dir")
    p.add_argument(
        "--from",
        dest="source",
        metavar="STAGE_DIR",
        help="InfoNCE baseline (method.name=moco): continue another run's finished stage 1 (e.g. runs/x/stage1) "
        "for train.stage2_epochs more, the same run as the full baseline at the cost of stage 2's epochs",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=cmd_pretrain)

    evaluations = {
        "probe": "linear probe: frozen encoder (BatchNorm in eval mode), a linear layer; multi-view test per view",
        "finetune": "finetune the encoder (lower learning rate) with a linear layer; multi-view test per view",
        "test": "multi-view test of a probe/finetune classifier: ten crops × windows, top-1/top-5 per view and class",
        "knn": "cosine kNN on frozen features (no training): top-1 per test view",
    }
    for mode, text in evaluations.items():
        where = (
            "Results: results.json, results.md (Table 1 layout), scores.pt in --out (default out_dir/eval/<command>)."
        )
        p = commands.add_parser(mode, help=text, description=f"{text}. {where}")
        _add_config_arguments(p)
        p.add_argument("--checkpoint", help="encoder or classifier weights (sets eval.checkpoint)")
        p.add_argument("--out", help="results folder")
        if mode != "knn":
            p.add_argument("--no-progress", action="store_true", help="no progress bars")
        p.set_defaults(handler=cmd_knn if mode == "knn" else _eval_command(mode))

    p = commands.add_parser("extract", help="write frozen features of every video of a split to .npy + .json")
    _add_config_arguments(p)
    p.add_argument("--checkpoint", help="encoder weights (sets eval.checkpoint)")
    p.add_argument("--out", required=True, help="output path without extension: OUT.npy and OUT.json")
    p.add_argument("--split", choices=("train", "test", "all"), default="all", help="which side (default: all)")
    p.set_defaults(handler=cmd_extract)

    p = commands.add_parser("tsne", help="t-SNE plot (PNG) of the test videos of one view, coloured by class")
    _add_config_arguments(p)
    p.add_argument("--checkpoint", help="encoder weights (sets eval.checkpoint)")
    p.add_argument("--out", required=True, help="PNG file")
    p.add_argument("--view", help="test group to embed (default: the last, e.g. 90 for CVS)")
    p.add_argument("--max-samples", type=int, default=1000, help="at most this many videos (default: 1000)")
    p.set_defaults(handler=cmd_tsne)

    p = commands.add_parser("fuse", help="late fusion of two models' per-video scores (e.g. RGB + pose)")
    p.add_argument("first", help="scores.pt of the first model (e.g. viewclr probe/test)")
    p.add_argument("second", help="scores.pt of the second model (e.g. viewclr pose, or your own: names + scores)")
    p.add_argument("--weight", type=float, default=0.5, help="weight of the first model's softmax (default: 0.5)")
    p.add_argument("--out", help="results folder")
    p.set_defaults(handler=cmd_fuse)

    p = commands.add_parser("pose", help="synthetic benchmark: train a small MLP on the rendered joints (pose stream)")
    _add_config_arguments(p)
    p.add_argument("--out", help="results folder (default: out_dir/eval/pose)")
    p.add_argument("--epochs", type=int, default=300, help="full-batch training epochs (default: 300)")
    p.set_defaults(handler=cmd_pose)

    p = commands.add_parser("report", help="a Markdown report of one run or a comparison of several, with plots")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="out_dir folders of pretrain / eval runs")
    p.add_argument("--out", default="report.md", help="Markdown file; images go beside it (default: report.md)")
    p.set_defaults(handler=cmd_report)

    p = commands.add_parser(
        "demo",
        help="the main job on the synthetic benchmark: InfoNCE vs ViewCLR on CVS, linear probes, table and report",
        description="Render the synthetic benchmark, pretrain InfoNCE and ViewCLR on the CVS protocol's 0° "
        "training videos (stage 1 shared; equal total epochs), linear-probe both, print top-1 at 0°, 45° and 90° "
        "and write a report to --out. Reuses what an earlier run made.",
    )
    _add_config_arguments(p, default="synth_cpu")
    p.add_argument("--out", default="runs/demo", help="output folder (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=cmd_demo)

    p = commands.add_parser(
        "bench",
        help="one table of speed and memory: loader, S3D and generator, MoCo vs ViewCLR step, demo wall time",
        description="Measure on this machine's CPU (and on its GPU, if any, at the paper's settings in bf16) and "
        "print one Markdown table; also written to --out/bench.md and bench.json.",
    )
    p.add_argument("--out", default="runs/bench", help="output folder (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke test of the suite)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where to measure")
    p.add_argument("--demo", default="runs/demo", help="demo folder whose timings.json gives the demo wall time")
    p.set_defaults(handler=cmd_bench)
    return parser


def cmd_demo(args: argparse.Namespace) -> int:
    from viewclr.demo import run_demo

    run_demo(args.config, args.out, args.overrides, progress=not args.no_progress)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from viewclr.bench import run_bench

    run_bench(args.out, quick=args.quick, device=args.device, demo_timings=args.demo)
    return 0


OS_ERROR_HINTS = {
    errno.ENOSPC: "the disk is full: free some space or choose another out_dir; the last complete files are intact",
    errno.EFBIG: "the file exceeds a size limit (a full quota, or ulimit -f): make room or choose another out_dir",
    errno.EDQUOT: "the disk quota is used up: make room or choose another out_dir",
    errno.EACCES: "not writable: change its permissions or choose another out_dir",
    errno.EPERM: "not permitted: change its permissions or choose another out_dir",
    errno.EROFS: "a read-only file system: choose another out_dir",
    errno.ENOTDIR: "a file stands where a folder is needed: move it away or choose another out_dir",
    errno.EISDIR: "a folder stands where a file is written: move it away or choose another out_dir",
}


def describe_os_error(err: OSError) -> str:
    """'<path>: <what the system said>; <what to do>' for an OSError."""
    path = err.filename2 or err.filename  # a rename names its target second
    where = f"{path}: " if path else ""
    hint = OS_ERROR_HINTS.get(err.errno)
    return f"{where}{err.strerror or err}" + (f"; {hint}" if hint else "") + " (-v shows the traceback)"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # argparse stops collecting KEY=VALUE overrides at the first option that follows them
    # (`pretrain a=1 --resume b=2` would reject b=2), so overrides after options are gathered here.
    args, extra = parser.parse_known_args(argv)
    if extra:
        if hasattr(args, "overrides") and all("=" in item and not item.startswith("-") for item in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            parser.error("unrecognized arguments: " + " ".join(extra))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except ViewCLRError as err:
        print(f"viewclr: error: {err}", file=sys.stderr)
        return err.exit_code
    except OSError as err:  # a file system that refuses: one line naming the path and what to do
        print(f"viewclr: error: {describe_os_error(err)}", file=sys.stderr)
        if args.verbose:
            traceback.print_exc()
        return 1
    except KeyboardInterrupt:
        print("viewclr: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
