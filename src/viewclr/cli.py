"""`viewclr <command>`: thin wrappers that parse arguments, load config and call library functions."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from viewclr import __version__
from viewclr.errors import ViewCLRError

log = logging.getLogger("viewclr")


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="YAML", help="a preset from configs/ (defaults apply without one)")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="dotted overrides, e.g. optim.lr=3e-4 data.frames=16",
    )


def cmd_config(args: argparse.Namespace) -> int:
    from viewclr.config import load_config, to_yaml

    print(to_yaml(load_config(args.config, args.overrides)), end="")
    return 0


def _view_label(dataset: str, group: str) -> str:
    return f"{group}°" if dataset.startswith("ntu") and group.isdigit() else group


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
    p.set_defaults(handler=cmd_config)

    p = commands.add_parser(
        "splits",
        help="print the train/test sizes of a dataset protocol (from videos or a names file)",
        description="Apply an evaluation protocol and print its split sizes. With --names the protocol is "
        "checked on a list of sample names, no videos needed. Protocols: ntu60 cs, cv, cvs (= cvs0), cvs45, "
        "cvs90; ntu120 csub, cset; nucla v12_3, v13_2, v23_1; folder all, cross_view, cross_subject.",
    )
    p.add_argument("--dataset", required=True, help="ntu60 | ntu120 | nucla | folder")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--names", metavar="FILE", help="names file: one sample name per line [, frame count]")
    source.add_argument("--root", metavar="DIR", help="dataset root (raw videos or a prepared cache)")
    p.add_argument("--protocol", help="evaluation protocol (default: the dataset's standard one)")
    p.add_argument("--labels-csv", help="folder dataset: path,label[,view][,subject] CSV")
    p.add_argument("--exclude-missing-skeletons", action="store_true", help="NTU: drop samples without skeletons")
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
    p.add_argument("--dataset", required=True, help="ntu60 | ntu120 | nucla | folder")
    p.add_argument("--root", required=True, metavar="RAW", help="raw dataset root")
    p.add_argument("--out", required=True, metavar="CACHE", help="cache folder to create or complete")
    p.add_argument("--labels-csv", help="folder dataset: path,label[,view][,subject] CSV")
    p.add_argument("--short-side", type=int, default=128, help="short side of cached frames (default: 128)")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: all CPU cores)")
    p.add_argument("--crf", type=int, default=20, help="H.264 quality, lower is better (default: 20)")
    p.add_argument("--gop", type=int, default=8, help="keyframe interval in frames (default: 8)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_prepare)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
    except KeyboardInterrupt:
        print("viewclr: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
