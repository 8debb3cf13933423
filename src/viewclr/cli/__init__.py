"""`viewclr <command>`: thin wrappers that parse arguments, load config and call library functions.

Each command is declared in one place — its arguments beside its handler — with `@command` in the module of its
topic: data.py (splits, prepare, synth), train.py (pretrain), evaluate.py (probe, finetune, test, knn, extract,
tsne, fuse, pose, report), studies.py (config, compare, demo). Errors end in one line and an exit code: 2 for a
config error, 1 for anything else the user can fix (a dataset, a checkpoint, the file system).
"""

from __future__ import annotations

import argparse
import errno
import logging
import re
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from viewclr import __version__, provenance
from viewclr.errors import ViewCLRError

log = logging.getLogger("viewclr")


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    description: str | None
    declare: Callable[[argparse.ArgumentParser], Callable[[argparse.Namespace], int]]


COMMANDS: list[Command] = []


def command(name: str, help: str, description: str | None = None):
    """Declare a command: the decorated function adds the command's arguments to its parser and returns the
    handler that runs it."""

    def register(declare):
        COMMANDS.append(Command(name, help, description, declare))
        return declare

    return register


def config_arguments(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    """--config PRESET and KEY=VALUE overrides, for the commands that take a configuration."""
    help_ = "a preset's name (viewclr config --list) or a YAML file" + (
        " (default: %(default)s)" if default else " (defaults apply without one)"
    )
    parser.add_argument("--config", metavar="PRESET", default=default, help=help_)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted overrides, e.g. optim.lr=3e-4")


def progress_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    from viewclr.cli import data, evaluate, studies, train  # noqa: F401 — each declares its commands

    parser = argparse.ArgumentParser(
        prog="viewclr",
        description="ViewCLR: self-supervised video representations that generalise to unseen viewpoints.",
    )
    parser.add_argument("--version", action="version", version=f"viewclr {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(title="commands", metavar="<command>")
    for c in COMMANDS:
        sub = commands.add_parser(c.name, help=c.help, description=c.description or c.help)
        sub.set_defaults(handler=c.declare(sub))
    return parser


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


OVERRIDE = re.compile(r"^[A-Za-z_]\w*(\.\w+)*=")  # KEY=VALUE with a dotted key: data.root=/data/ntu


def one_value_options(parser: argparse.ArgumentParser) -> set[str]:
    """The option strings of every command that take exactly one value (`--out DIR`, `--eval-set KEY=VALUE`)."""
    found = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= one_value_options(sub)
        elif action.option_strings and action.nargs in (None, 1) and action.const is None:  # not a flag
            found |= set(action.option_strings)
    return found


def parse_args(argv: list[str] | None = None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    """Parse a command line; KEY=VALUE overrides may stand anywhere, after any option. (argparse alone reads
    `--eval probe data.root=x` as a third --eval value, and stops collecting overrides at the first option.) Every
    KEY=VALUE token that is not the value of a one-value option (`--eval-set data.root=x`) is taken out first and
    handed to the command as an override; a command that takes none stops with argparse's error."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    single = one_value_options(parser)
    overrides, rest = [], []
    for i, token in enumerate(argv):
        is_override = OVERRIDE.match(token) and (i == 0 or argv[i - 1] not in single)
        (overrides if is_override else rest).append(token)
    args, extra = parser.parse_known_args(rest)
    if extra:
        parser.error("unrecognized arguments: " + " ".join(extra))
    if overrides:
        if not hasattr(args, "overrides"):
            parser.error("unrecognized arguments: " + " ".join(overrides))
        args.overrides = [*args.overrides, *overrides]
    return parser, args


def main(argv: list[str] | None = None) -> int:
    parser, args = parse_args(argv)
    if hasattr(args, "no_progress") and not sys.stderr.isatty():
        args.no_progress = True  # a log file gets plain lines (each epoch's), not a bar redrawn a thousand times
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    provenance.at_start()  # the code this process starts with, before any module is imported lazily
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
