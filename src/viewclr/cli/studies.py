"""`viewclr config`, and the studies: `compare`, `demo`."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from viewclr.cli import command, config_arguments, progress_argument


@command(
    "config",
    "print the resolved configuration (preset + overrides), checked",
    "Merge defaults, a YAML preset and dotted overrides; check them; print the result as YAML.",
)
def config(p: argparse.ArgumentParser):
    config_arguments(p)
    p.add_argument("--list", action="store_true", help="list the presets shipped with viewclr, then exit")

    def run(args: argparse.Namespace) -> int:
        from viewclr.config import NOT_A_ROW, load_config, presets, table1_row, to_yaml

        if args.list:
            for name, path in presets().items():
                first = preset_summary(path)
                print(f"{name:<14} {first}")
            return 0
        cfg = load_config(args.config, args.overrides)
        row = table1_row(cfg)
        print(to_yaml(cfg), end="")
        print(f"# {row}" if row == NOT_A_ROW else f"# pretrains the paper's Table 1 row '{row}'")
        return 0

    return run


@command(
    "compare",
    "the paper's comparison on any dataset: methods at equal budgets, seeds, probe/finetune, tables and plots",
    "Train every method for the same total epochs (stage 1 shared per seed; the InfoNCE baseline continued from it "
    "with its optimiser state; supervised from scratch), evaluate each, and write to --out a table per evaluation "
    "(mean ± sample std over seeds per test group and each seed, with the chance level), per_view.png and "
    "report.md. Every finished step made with these settings is reused (an interrupted comparison continues, a "
    "second call trains nothing); what a changed setting reaches is set aside and trained again. --out must be "
    "new, empty or compare's own.",
)
def compare(p: argparse.ArgumentParser):
    from viewclr.methods import METHODS

    config_arguments(p)
    p.add_argument(
        "--methods",
        nargs="+",
        default=["infonce", "viewclr"],
        choices=list(METHODS),
        metavar="METHOD",
        help=f"methods to compare (default: infonce viewclr), from: {', '.join(METHODS)}",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds (default: 0)")
    p.add_argument(
        "--eval",
        nargs="+",
        default=["probe"],
        choices=("probe", "finetune", "knn"),
        dest="evaluations",
        help="evaluations (default: probe)",
    )
    p.add_argument(
        "--eval-on",
        nargs="+",
        default=[],
        metavar="PRESET",
        help="evaluate the encoders pretrained here on these presets' datasets too (or YAML files), e.g. "
        "--config ntu60_cvs --eval-on nucla_v12_3: the paper's N-UCLA column",
    )
    p.add_argument(
        "--eval-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an override of the --eval-on configs (repeatable), e.g. --eval-set data.root=/data/nucla",
    )
    p.add_argument("--out", required=True, help="output folder")
    progress_argument(p)

    def run(args: argparse.Namespace) -> int:
        from viewclr.studies.compare import compare

        done = compare(
            args.config,
            args.out,
            args.methods,
            args.seeds,
            args.evaluations,
            args.overrides,
            eval_on=args.eval_on,
            eval_overrides=args.eval_set,
            progress=not args.no_progress,
        )
        print((Path(args.out) / "results.md").read_text())
        print(f"written: {args.out}/results.md, results.json, per_view.png, report.md")
        return 0 if done else 1

    return run


@command(
    "demo",
    "the main job on the synthetic benchmark: InfoNCE vs ViewCLR on CVS, linear probes, table and report",
    "Render the synthetic benchmark, pretrain InfoNCE and ViewCLR on the CVS protocol's 0° training videos "
    "(stage 1 shared; equal total epochs), linear-probe both, print top-1 at 0°, 45° and 90° and write a report "
    "to --out. Reuses what an earlier run made.",
)
def demo(p: argparse.ArgumentParser):
    config_arguments(p, default="synth_cpu")
    p.add_argument("--out", default="runs/demo", help="output folder (default: %(default)s)")
    progress_argument(p)

    def run(args: argparse.Namespace) -> int:
        from viewclr.studies.demo import run_demo

        run_demo(args.config, args.out, args.overrides, progress=not args.no_progress)
        return 0

    return run


def preset_summary(path: Path) -> str:
    """A preset's opening sentence from the comment block that starts it: a first line that is a title (the next
    line starts a new sentence), or the text up to the first full stop, however many lines it runs over."""
    block = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        block.append(line[1:].strip())
    text = ""
    for index, line in enumerate(block):
        text = f"{text} {line}".strip()
        end = re.search(r"[.!?](\s|$)", text)
        if end:
            return text[: end.start() + 1]
        following = block[index + 1] if index + 1 < len(block) else ""
        if not following or following[0].isupper():
            return text
    return text
