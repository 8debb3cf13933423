"""The command line attacked as a careless or unlucky user would: one row per attack, run as a real process.

Each row states the attack, the exit code it must end with, a message the user must see (one line, no traceback),
and what must be intact afterwards. The next defect of this kind is one more row.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from helpers import checksums, make_decoy, tiny_training, write_video

from viewclr.data.index import read_cache_manifest
from viewclr.metrics import read_metrics
from viewclr.synth import SynthSettings, generate

ENV = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}


def moco(root: Path, out: Path, *extra: str) -> list[str]:
    """A 4-step InfoNCE run (one epoch of the tiny dataset)."""
    return [
        "pretrain",
        "--no-progress",
        *tiny_training(root, out, "method.name=infonce", "train.stage2_epochs=0", *extra),
    ]


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "viewclr", *args], env=ENV, capture_output=True, text=True,
                          timeout=600, **kwargs)  # fmt: skip


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth_attacks")
    generate(SynthSettings(subjects=4, classes=3, size=32, frames=12), root, workers=1, progress=False)
    return root


@pytest.fixture(scope="module")
def killed(synth, tmp_path_factory) -> Path:
    """A run (seed 1, two epochs) started over where a finished run (seed 0, one epoch) was, and killed with
    SIGKILL right after its first checkpoint. Rows copy it."""
    out = tmp_path_factory.mktemp("killed") / "R"
    assert run(moco(synth, out)).returncode == 0
    process = subprocess.Popen([sys.executable, "-m", "viewclr", *moco(synth, out, "seed=1", "train.stage1_epochs=2")],
                               env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    index = out / "infonce" / "checkpoints" / "index.json"
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        moved = (out / "infonce.earlier-1").is_dir()  # the earlier run set aside: what is in infonce/ is this run's
        if moved and index.is_file() and json.loads(index.read_text() or "[]"):
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    assert process.wait(timeout=60) == -signal.SIGKILL and not (out / "infonce" / "final.pt").exists()
    return out


@dataclass
class Attack:
    name: str
    attack: Callable[[Path, Path, Path], list[str]]  # (dataset, killed run, a fresh folder) → the command line
    code: int
    message: str  # a regular expression the output must match
    intact: Callable[[Path], None] = lambda folder: None  # what must hold afterwards (given the fresh folder)
    read_only: str | None = None  # a folder (relative to the fresh one) the process may not write into
    size_limit: int | None = None  # RLIMIT_FSIZE in bytes: files cannot grow past it (a full disk)
    setup: Callable[[Path, Path], None] = field(default=lambda synth, folder: None)


def copy_killed(killed: Path, folder: Path) -> Path:
    shutil.copytree(killed, folder / "R")
    return folder / "R"


def summary_of(final: Path) -> tuple[int, int]:
    state = torch.load(final, weights_only=False)
    return state["summary"]["epochs"], int(re.search(r"^seed: (\d+)", state["config"], re.M).group(1))


def resumed_is_this_run(folder: Path) -> None:
    run_dir = folder / "R"
    assert summary_of(run_dir / "infonce" / "final.pt") == (2, 1)  # this run's: 2 epochs, seed 1
    assert summary_of(run_dir / "infonce.earlier-1" / "final.pt") == (1, 0)  # the earlier run, set aside, whole
    steps = [m["step"] for m in read_metrics(run_dir / "infonce") if "loss/total" in m]
    assert steps == sorted(set(steps)) and max(steps) == 8  # one run's log, not two mixed


def no_part_files(folder: Path) -> None:
    assert not list(folder.rglob("*.part")), list(folder.rglob("*.part"))


def odd_videos(synth: Path, folder: Path) -> None:
    write_video(folder / "raw" / "a.mp4", 12, height=48, width=61)
    write_video(folder / "raw" / "b.mp4", 12, height=48, width=64)
    (folder / "raw" / "labels.csv").write_text("path,label\na.mp4,x\nb.mp4,y\n")


def prepare_odd(synth, killed, folder) -> list[str]:
    return ["prepare", "--dataset", "folder", "--root", str(folder / "raw"), "--labels-csv",
            str(folder / "raw" / "labels.csv"), "--out", str(folder / "cache"), "--short-side", "48", "--workers", "1",
            "--no-progress"]  # fmt: skip


def checkpoint_folder_in_the_way(synth: Path, folder: Path) -> None:
    blocker = folder / "R" / "infonce" / "checkpoints" / "step_000000002.pt"
    blocker.mkdir(parents=True)
    (blocker / "keep.txt").write_text("mine")


def read_only_out_dir(synth: Path, folder: Path) -> None:
    (folder / "ro").mkdir()
    (folder / "ro").chmod(0o555)


def decoy(synth: Path, folder: Path) -> None:
    make_decoy(folder / "MY_NTU")
    (folder / "sums.json").write_text(json.dumps(checksums(folder / "MY_NTU")))


ATTACKS = [
    Attack(
        "--resume after starting over where a finished run was: this run's weights, not the earlier run's",
        lambda synth, killed, folder: [
            *moco(synth, copy_killed(killed, folder), "seed=1", "train.stage1_epochs=2"),
            "--resume",
        ],  # fmt: skip
        0,
        r"resuming infonce from .*step_0+2\.pt",
        resumed_is_this_run,
    ),
    Attack(
        "--resume with other settings than the checkpoint's",
        lambda synth, killed, folder: [
            *moco(synth, copy_killed(killed, folder), "seed=2", "train.stage1_epochs=2"),
            "--resume",
        ],  # fmt: skip
        1,
        r"is a checkpoint of a run with other settings \(seed 1 there, 2 here\)",
        lambda folder: not (folder / "R" / "infonce" / "final.pt").exists() or pytest.fail("it trained"),
    ),
    Attack(
        "--resume where a finished run of other settings is",
        lambda synth, killed, folder: [*moco(synth, folder / "R2", "seed=3"), "--resume"],
        1,
        r"final\.pt is a finished run with other settings \(seed 0 there, 3 here\)",
        lambda folder: summary_of(folder / "R2" / "infonce" / "final.pt") == (1, 0) or pytest.fail("changed"),
        setup=lambda synth, folder: run(moco(synth, folder / "R2")),
    ),
    Attack(
        "--resume without checkpoints/index.json: the newest readable step file, said so",
        lambda synth, killed, folder: [
            *moco(synth, _without_index(copy_killed(killed, folder)), "seed=1", "train.stage1_epochs=2"),
            "--resume",
        ],
        0,
        r"index\.json is missing; looking for checkpoints by file name",
        lambda folder: summary_of(folder / "R" / "infonce" / "final.pt") == (2, 1) or pytest.fail("wrong run"),
    ),
    Attack(
        "prepare: a valid video with an odd long side at its own short side (61×48 at --short-side 48)",
        prepare_odd,
        0,
        r"prepared 2 videos",
        lambda folder: set(read_cache_manifest(folder / "cache")) == {"a.mp4", "b.mp4"} or pytest.fail("missing"),
        setup=odd_videos,
    ),
    Attack(
        "optim.lr=inf with train.nonfinite=skip",
        lambda synth, killed, folder: moco(synth, folder / "R", "optim.lr=inf", "train.nonfinite=skip"),
        2,
        r"config key 'optim\.lr': must be finite and > 0",
        lambda folder: not (folder / "R").exists() or pytest.fail("work was done"),
    ),
    Attack(
        "out_dir is a file",
        lambda synth, killed, folder: moco(synth, folder / "afile"),
        1,
        r"afile.*Not a directory; a file stands where a folder is needed",
        lambda folder: (folder / "afile").read_text() == "mine" or pytest.fail("the file changed"),
        setup=lambda synth, folder: (folder / "afile").write_text("mine"),
    ),
    Attack(
        "out_dir is read-only",
        lambda synth, killed, folder: moco(synth, folder / "ro" / "R"),
        1,
        r"ro/R.*Permission denied; not writable",
        lambda folder: list((folder / "ro").iterdir()) == [] or pytest.fail("written"),
        read_only="ro",
        setup=read_only_out_dir,
    ),
    Attack(
        "a folder stands where a checkpoint is written",
        lambda synth, killed, folder: [*moco(synth, folder / "R"), "--resume"],
        1,
        r"step_000000002\.pt: Is a directory; a folder stands where a file is written",
        lambda folder: (no_part_files(folder), (folder / "R/infonce/checkpoints/step_000000002.pt/keep.txt").is_file()),
        setup=checkpoint_folder_in_the_way,
    ),
    Attack(
        "the disk fills up (files cannot grow past 300 kB)",
        lambda synth, killed, folder: moco(synth, folder / "R"),
        1,
        r"File too large; the file exceeds a size limit",
        no_part_files,
        size_limit=300_000,
    ),
    Attack(
        "stray .part files of an interrupted write are cleared",
        lambda synth, killed, folder: [*moco(synth, folder / "R"), "--resume"],
        0,
        r"infonce: 4 steps in",
        no_part_files,
        setup=lambda synth, folder: (
            (folder / "R/infonce/checkpoints").mkdir(parents=True)
            or (folder / "R/infonce/checkpoints/step_000000009.pt.part").write_bytes(b"half")
        ),
    ),
    Attack(
        "a queue larger than the training set",
        lambda synth, killed, folder: moco(synth, folder / "R", "method.queue_size=40"),
        0,
        r"method\.queue_size=40 is larger than the 18 training videos",
    ),
    Attack(
        "an environment variable that is not set, in an interpolation",
        lambda synth, killed, folder: moco(synth, folder / "R", "data.root=${oc.env:VIEWCLR_SURELY_UNSET}"),
        2,
        r"config key 'data\.root': cannot resolve its value",
    ),
    Attack(
        "an interpolation of a key that does not exist",
        lambda synth, killed, folder: moco(synth, folder / "R", "data.root=${data.nope}"),
        2,
        r"config key 'data\.root': cannot resolve its value: Interpolation key 'data\.nope' not found",
    ),
    Attack(
        "train.threads < 0",
        lambda synth, killed, folder: moco(synth, folder / "R", "train.threads=-1"),
        2,
        r"config key 'train\.threads': must be >= 1 or null",
    ),
    Attack(
        "data.eval_max_windows=0",
        lambda synth, killed, folder: moco(synth, folder / "R", "data.eval_max_windows=0"),
        2,
        r"config key 'data\.eval_max_windows': must be >= 1 or null",
    ),
    Attack(
        "probe of a checkpoint that does not exist",
        lambda synth, killed, folder: [
            "probe",
            *tiny_training(synth, folder / "P"),
            "--checkpoint",
            str(folder / "nothing.pt"),
            "--no-progress",
        ],  # fmt: skip
        1,
        r"nothing\.pt does not exist",
        lambda folder: not (folder / "P").exists() or pytest.fail("an output folder was made"),
    ),
    Attack(
        "demo pointed at a user's dataset",
        lambda synth, killed, folder: ["demo", "--out", str(folder / "d"), f"data.root={folder / 'MY_NTU'}"],
        2,
        r"viewclr demo renders and reads its own dataset",
        lambda folder: (
            checksums(folder / "MY_NTU") == json.loads((folder / "sums.json").read_text())
            or pytest.fail("the user's files changed")
        ),
        setup=decoy,
    ),
]


def _without_index(run_dir: Path) -> Path:
    (run_dir / "infonce" / "checkpoints" / "index.json").unlink()
    return run_dir


def _limit_size(size_limit: int | None):
    def before_exec() -> None:
        if size_limit is not None:
            import resource

            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
            resource.setrlimit(resource.RLIMIT_FSIZE, (size_limit, size_limit))

    return before_exec


# Root may write into a read-only folder, so as root the folder's refusal is made by the process itself: its
# os.mkdir answers inside that folder as the kernel answers anyone else (EACCES). Without root, chmod does it.
AS_IF_READ_ONLY = """
import os, runpy, sys
blocked, real = os.path.abspath(os.environ["VIEWCLR_TEST_READ_ONLY"]), os.mkdir
def mkdir(path, *args, **kwargs):
    if os.path.abspath(path).startswith(blocked + os.sep):
        raise PermissionError(13, "Permission denied", os.fspath(path))
    return real(path, *args, **kwargs)
os.mkdir = mkdir
sys.argv[0] = "viewclr"
runpy.run_module("viewclr", run_name="__main__")
"""


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack(attack: Attack, synth, killed, tmp_path):
    folder = tmp_path
    attack.setup(synth, folder)
    args = attack.attack(synth, killed, folder)
    command, env = [sys.executable, "-m", "viewclr", *args], ENV
    if attack.read_only is not None and os.geteuid() == 0:
        command = [sys.executable, "-c", AS_IF_READ_ONLY, *args]
        env = {**ENV, "VIEWCLR_TEST_READ_ONLY": str(folder / attack.read_only)}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600,
                            preexec_fn=_limit_size(attack.size_limit))  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == attack.code, output[-3000:]
    assert re.search(attack.message, output), output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("viewclr: error:")]
    assert len(errors) == (attack.code != 0)  # a failure is one line
    attack.intact(folder)
