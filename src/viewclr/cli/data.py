"""Commands on data: `splits`, `prepare`, `synth`."""

from __future__ import annotations

import argparse
import json

from viewclr.cli import command, progress_argument

DATASET_HELP = "ntu60 | ntu120 | nucla | folder | synth"


@command(
    "splits",
    "print the train/test sizes of a dataset protocol (from videos or a names file)",
    "Apply an evaluation protocol and print its split sizes and what it left out. With --names the protocol is "
    "checked on a list of sample names, no videos needed. Protocols: ntu60 cs, cv, cvs (= cvs0), cvs45, cvs90; "
    "ntu120 csub, cset; nucla v12_3, v13_2, v23_1; folder all, cross_view, cross_subject.",
)
def splits(p: argparse.ArgumentParser):
    p.add_argument("--dataset", required=True, help=DATASET_HELP)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--names", metavar="FILE", help="names file: one sample name per line [, frame count]")
    source.add_argument("--root", metavar="DIR", help="dataset root (raw videos or a prepared cache)")
    p.add_argument("--protocol", help="evaluation protocol (default: the dataset's standard one)")
    p.add_argument("--labels-csv", help="folder dataset: path,label[,view][,subject] CSV")
    p.add_argument(
        "--exclude-missing-skeletons",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="NTU: drop the official missing-skeleton samples (default: the protocol's, on for CVS only)",
    )
    p.add_argument("--min-frames", type=int, help="drop videos known to be shorter (default: dataset's rule)")
    p.add_argument("--train-views", nargs="+", help="folder dataset, cross_view: the training views")
    p.add_argument("--train-subjects", nargs="+", type=int, help="folder dataset, cross_subject: training ids")
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")

    def run(args: argparse.Namespace) -> int:
        from viewclr.config import DataConfig
        from viewclr.data.index import view_label
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
        ntu_views = spec.name in ("ntu60", "ntu120", "synth")
        for side, groups in (("train", split.train), ("test", split.test)):
            for group, samples in groups.items():
                label = "" if group == "all" else (view_label(group) if ntu_views else group)
                print(f"  {side:<6}{label:<8}{len(samples):>9,}")
        for line in split.left_out:
            print(f"  {line}")
        return 0

    return run


@command(
    "prepare",
    "convert a raw dataset once into a small, fast-decoding video cache (resumable), or its skeletons into arrays",
    "Re-encode every video (or N-UCLA frame folder) small, as H.264 with short keyframe intervals, in parallel "
    "workers. A second run skips finished files; unreadable ones are listed in failed.txt. Use the output folder "
    "as data.root. With --skeletons: read every skeleton file (NTU .skeleton, N-UCLA JSON) into one "
    "N x 3 x T x V x M float32 array (memory-mapped when read); unusable files are skipped and named in "
    "skeletons.json. Use the output folder as pose.cache.",
)
def prepare(p: argparse.ArgumentParser):
    p.add_argument("--dataset", required=True, help=DATASET_HELP)
    p.add_argument("--root", required=True, metavar="RAW", help="raw dataset root")
    p.add_argument("--out", required=True, metavar="CACHE", help="cache folder to create or complete")
    p.add_argument("--labels-csv", help="folder dataset: path,label[,view][,subject] CSV")
    p.add_argument("--short-side", type=int, default=128, help="short side of cached frames (default: 128)")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: all CPU cores)")
    p.add_argument("--crf", type=int, default=20, help="H.264 quality, lower is better (default: 20)")
    p.add_argument("--gop", type=int, default=8, help="keyframe interval in frames (default: 8)")
    p.add_argument("--skeletons", action="store_true", help="the skeleton array cache instead of the videos")
    p.add_argument("--frames", type=int, default=300, help="--skeletons: T, frames kept or padded to (default: 300)")
    p.add_argument("--bodies", type=int, default=2, help="--skeletons: M, the most-moving bodies kept (default: 2)")
    p.add_argument("--normalise", choices=("none", "pre"), default="none", help="--skeletons: none | pre (2s-AGCN's)")
    progress_argument(p)

    def run(args: argparse.Namespace) -> int:
        from viewclr.data.cache import FAILED_LIST, CacheSettings, prepare_dataset
        from viewclr.data.registry import get_dataset

        if args.skeletons:
            from viewclr.studies.pose import prepare_for

            get_dataset(args.dataset)  # a config error before any reading
            index = prepare_for(
                args.dataset, args.root, args.out, args.frames, args.bodies, args.normalise, not args.no_progress
            )
            print(
                f"prepared {len(index['names']):,} skeletons ({len(index['skipped']):,} skipped, each named with "
                f"its reason in {args.out}/skeletons.json); pose.cache: {args.out}"
            )
            return 0

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

    return run


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


@command(
    "synth",
    "render the built-in synthetic multi-view action benchmark (and/or a preview contact sheet)",
    "Render an articulated actor performing the benchmark's actions, seen by NTU RGB+D's three-camera rig "
    "(0°/45°/90° by camera and replication), into an NTU-layout dataset with metadata and 3D joints. Deterministic "
    "for a seed; a second run renders only what is missing; never writes into a folder that is not its own.",
)
def synth(p: argparse.ArgumentParser):
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
        help="nucla/folder layouts: camera azimuths relative to the actor, "
        "optionally @elevation (default: 0,45,90 at the setup's camera height)",
    )
    p.add_argument("--replications", type=int, help="takes per subject and action (ntu: 2; default: 2)")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: all CPU cores)")
    p.add_argument("--preview", metavar="PNG", help="write a contact sheet: every class, every view, a few frames")
    p.add_argument("--preview-frames", type=int, default=4, help="frames per view in the preview (default: 4)")
    progress_argument(p)

    def run(args: argparse.Namespace) -> int:
        from viewclr.errors import DatasetError
        from viewclr.synth.generate import METADATA, generate
        from viewclr.synth.preview import contact_sheet
        from viewclr.synth.world import SynthSettings

        if args.out is None and args.preview is None:
            raise DatasetError("give an output folder (OUT), --preview PNG, or both")
        settings = SynthSettings(
            subjects=args.subjects,
            setups=args.setups,
            size=args.size,
            frames=args.frames,
            fps=args.fps,
            classes=args.classes if args.classes is not None else (10 if args.layout == "nucla" else 12),
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
                f"rendered {report.rendered:,} videos ({report.already_done:,} already there) in "
                f"{report.seconds:.1f} s; dataset: {report.out} ({report.videos:,} videos, metadata in {METADATA}); "
                f"use it with data.dataset={dataset} data.root={report.out}"
            )
        if args.preview is not None:
            print(f"preview: {contact_sheet(settings, args.preview, frames_per_view=args.preview_frames)}")
        return 0

    return run
