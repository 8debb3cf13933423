"""`viewclr --help` lists every command; `viewclr splits` prints sizes from a names file."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import reference_lines

from viewclr.cli import build_parser, main


def viewclr(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "viewclr", *args], capture_output=True, text=True, check=True).stdout


def test_help_lists_every_command_with_a_description(capsys):
    text = viewclr("--help")  # the installed entry point; each command's help in this process (a start each is 2 s)
    listed = {}
    for line in text.split("commands:")[1].splitlines():
        words = line.split()
        if line.startswith("    ") and not line.startswith("     ") and len(words) > 1:
            listed[words[0]] = " ".join(words[1:])
    assert set(listed) == set(build_parser()._subparsers._group_actions[0].choices)
    assert {"config", "splits", "prepare"} <= set(listed)
    for name, description in listed.items():
        assert len(description) > 15, name
        with pytest.raises(SystemExit) as done:
            main([name, "--help"])
        assert done.value.code == 0 and f"usage: viewclr {name}" in capsys.readouterr().out


@pytest.fixture
def ntu60_names(tmp_path):
    path = tmp_path / "names.txt"
    path.write_text("\n".join(reference_lines("ntu/ntu60_all_names.txt")))
    return path


def test_splits_json(ntu60_names, capsys):
    assert (
        main(
            [
                "splits",
                "--dataset",
                "ntu60",
                "--names",
                str(ntu60_names),
                "--protocol",
                "cs",
                "--format",
                "json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out) == {"train": 40320, "test": 16560}
    assert (
        main(
            [
                "splits",
                "--dataset",
                "ntu60",
                "--names",
                str(ntu60_names),
                "--protocol",
                "cvs",
                "--format",
                "json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out) == {
        "train": {"0": 13225},
        "test": {"0": 5447, "45": 5447, "90": 5447},
    }


def test_splits_text(ntu60_names, capsys):
    assert main(["splits", "--dataset", "ntu60", "--names", str(ntu60_names), "--protocol", "cvs"]) == 0
    out = capsys.readouterr().out
    assert "train 0°" in out and "13,225" in out and "test  90°" in out
    assert "286 triplets left out: on NTU's missing-skeleton list" in out  # what CVS leaves out, and why
    args = ["splits", "--dataset", "ntu60", "--names", str(ntu60_names), "--protocol", "cvs", "--format", "json"]
    assert main([*args, "--no-exclude-missing-skeletons"]) == 0
    assert json.loads(capsys.readouterr().out)["train"] == {"0": 13_440}


def test_splits_errors_exit_nonzero(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("hello\n")
    assert main(["splits", "--dataset", "ntu60", "--names", str(bad)]) == 1
    assert "bad.txt line 1" in capsys.readouterr().err
    assert main(["splits", "--dataset", "ntu60", "--root", str(tmp_path)]) == 1
    assert "no NTU RGB+D 60 videos" in capsys.readouterr().err
    assert main(["splits", "--dataset", "ntu60", "--names", str(bad), "--protocol", "v12_3"]) == 2  # a config error


def test_overrides_may_come_before_and_after_options(tmp_path, capsys):
    preset = tmp_path / "p.yaml"
    preset.write_text("optim:\n  lr: 0.25\n")
    assert main(["config", "train.stage2_epochs=7", "--config", str(preset), "data.frames=8"]) == 0
    text = capsys.readouterr().out
    assert "stage2_epochs: 7" in text and "frames: 8" in text and "lr: 0.25" in text
    with pytest.raises(SystemExit) as err:
        main(["config", "data.frames=8", "--config", str(preset), "--bogus"])
    assert err.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a command without overrides keeps argparse's error
        main(["report", "runs/x", "--out", "r.md", "a=1"])


def documented_commands() -> list[tuple[str, list[str]]]:
    """Every `viewclr ...` command line in the code blocks of README.md and docs/usage.md (continuations joined,
    comments cut, a `torchrun ... -m viewclr` launch or an environment prefix before the command left out)."""
    import re
    import shlex

    root = Path(__file__).parent.parent
    found = []
    for doc in ("README.md", "docs/usage.md"):
        for block in re.findall(r"```(?:bash|sh)\n(.*?)```", (root / doc).read_text(), re.S):
            for line in re.sub(r"\\\n\s*", " ", block).splitlines():
                words = shlex.split(line, comments=True)
                if "viewclr" in words:
                    found.append((doc, words[words.index("viewclr") + 1 :]))
    return found


DOCUMENTED = documented_commands()


@pytest.mark.parametrize("doc, argv", DOCUMENTED, ids=[" ".join(argv)[:80] for _, argv in DOCUMENTED])
def test_every_documented_command_line_parses_and_its_overrides_are_settings(doc, argv):
    """The README's compare example once stopped with `argument --eval: invalid choice: 'data.dataset=folder'`:
    overrides after an option were read as that option's values. Every command line the docs show parses as
    written, and its overrides (and its preset, where it is one of the package's) load as a configuration."""
    from viewclr.cli import parse_args
    from viewclr.config import load_config, presets

    _, args = parse_args(argv)
    overrides = getattr(args, "overrides", [])
    config = getattr(args, "config", None)
    if config is None or config in presets() or Path(config).is_file():
        load_config(config, overrides)
    assert all("=" not in value for value in getattr(args, "methods", []) + getattr(args, "evaluations", []))


def test_documented_commands_include_the_compare_example_with_overrides_after_options():
    compares = [argv for _, argv in DOCUMENTED if argv[0] == "compare"]
    assert any(any("=" in a for a in argv[argv.index("--eval") :]) for argv in compares if "--eval" in argv)
