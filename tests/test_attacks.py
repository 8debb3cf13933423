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
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from helpers import checksums, make_decoy, tiny_training, write_video

from viewclr.config import load_config
from viewclr.data.index import read_cache_manifest
from viewclr.engine.plan import pretrain
from viewclr.logger import read_metrics
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
    pretrain(load_config(None, tiny_training(synth, out.parent / "VCLR")), progress=False)  # a whole ViewCLR run
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


def bad_shape_weights(synth: Path, folder: Path) -> None:
    """An S3D state dict of the tiny width where one convolution's kernel is one column too wide."""
    from viewclr.models.registry import build_backbone

    state = build_backbone("s3d", 0.125).state_dict()
    name = next(k for k, v in state.items() if v.dim() == 5 and k != "features.0.0.0.weight")
    state[name] = torch.zeros(*state[name].shape[:-1], state[name].shape[-1] + 1)
    torch.save(state, folder / "bad.pt")


def live_lock(synth: Path, folder: Path) -> None:
    """R is held by a live process (this test's), as a pretrain that runs there would hold it."""
    from viewclr.fileio import LOCK, _started

    (folder / "R").mkdir()
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "command": "viewclr pretrain",
             "started": _started(os.getpid())}  # fmt: skip
    (folder / "R" / LOCK).write_text(json.dumps(owner))


def users_results(synth: Path, folder: Path) -> None:
    (folder / "mine").mkdir()
    for name in ("results.md", "results.json", "report.md"):
        (folder / "mine" / name).write_text("{}" if name.endswith("json") else "my own notes")
    (folder / "sums.json").write_text(json.dumps(checksums(folder / "mine")))


def folder_with_a_bad_video(synth: Path, folder: Path) -> None:
    """8 videos of 2 labels, one of them not a video: one batch of 4 loses a clip."""
    raw = folder / "raw"
    lines = ["path,label"]
    for i in range(8):
        if i == 5:
            (raw / f"v{i}.mp4").write_bytes(b"not a video at all" * 50)
        else:
            write_video(raw / f"v{i}.mp4", 12, height=48, width=64)
        lines.append(f"v{i}.mp4,{'ab'[i % 2]}")
    (raw / "labels.csv").write_text("\n".join(lines) + "\n")


def init_viewclr(killed: Path) -> str:
    """train.init = the whole ViewCLR run's final.pt (generator with its auto-encoder), made beside the killed run."""
    return f"train.init={killed.parent / 'VCLR' / 'stage2' / 'final.pt'}"


def nothing_made(name: str) -> Callable[[Path], None]:
    return lambda folder: not (folder / name).exists() or pytest.fail(f"{name} was made")


def final_summary(path: Path) -> dict:
    return torch.load(path, weights_only=False)["summary"]


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
        r"step_0+2\.pt does not match this run \(seed 1 there, 2 here\)",
        lambda folder: not (folder / "R" / "infonce" / "final.pt").exists() or pytest.fail("it trained"),
    ),
    Attack(
        "--resume where a finished run of other settings is",
        lambda synth, killed, folder: [*moco(synth, folder / "R2", "seed=3"), "--resume"],
        1,
        r"final\.pt does not match this run \(seed 0 there, 3 here\)",
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
        r"config key 'optim\.lr': must be a finite number, got inf",
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


ATTACKS += [
    Attack(
        "F: compare --out a folder holding the user's own results.md, results.json, report.md",
        lambda synth, killed, folder: [
            "compare",
            *tiny_training(synth, "unused"),
            "--out",
            str(folder / "mine"),
            "--methods",
            "infonce",
            "--no-progress",
        ],  # fmt: skip
        2,
        r"mine holds files viewclr compare did not make \(e\.g\. report\.md\)",
        lambda folder: checksums(folder / "mine") == json.loads((folder / "sums.json").read_text()) or pytest.fail(),
        setup=users_results,
    ),
    Attack(
        "G: pretrain where another live viewclr process writes",
        lambda synth, killed, folder: moco(synth, folder / "R"),
        1,
        r"R is in use by viewclr pretrain \(pid \d+\); wait for it to finish or choose another folder",
        lambda folder: sorted(p.name for p in (folder / "R").iterdir()) == [".viewclr.lock"] or pytest.fail(),
        setup=live_lock,
    ),
    Attack(
        "H: train.init with a tensor of the wrong shape",
        lambda synth, killed, folder: moco(synth, folder / "R", f"train.init={folder / 'bad.pt'}"),
        2,
        r"config key 'train\.init': \S*bad\.pt does not fit model\.backbone=s3d at model\.width=0\.125: features\.\S+ "
        r"is \([\d, ]+\) there and \([\d, ]+\) here",
        nothing_made("R"),
        setup=bad_shape_weights,
    ),
    Attack(
        "H: probe --checkpoint with a tensor of the wrong shape",
        lambda synth, killed, folder: [
            "probe",
            *tiny_training(synth, folder / "P"),
            "--checkpoint",
            str(folder / "bad.pt"),
            "--out",
            str(folder / "P"),
        ],  # fmt: skip
        2,
        r"config key 'eval\.checkpoint': \S*bad\.pt does not fit model\.backbone=s3d at model\.width=0\.125",
        nothing_made("P"),
        setup=bad_shape_weights,
    ),
    Attack(
        "train.init that does not exist names the key",
        lambda synth, killed, folder: moco(synth, folder / "R", f"train.init={folder / 'nothing.pt'}"),
        2,
        r"config key 'train\.init': \S*nothing\.pt does not exist",
        nothing_made("R"),
    ),
    Attack(
        "I: train.init's generator built with another model.npl_hidden: stopped before stage 1",
        lambda synth, killed, folder: [
            "pretrain",
            *tiny_training(synth, folder / "R", init_viewclr(killed), "model.npl_hidden=4"),
        ],  # fmt: skip
        2,
        r"config key 'train\.init': \S*final\.pt: generator\.\S+ is \([\d, ]+\) there and \([\d, ]+\) here \(its "
        r"generator was built with other model\.npl_hidden",
        nothing_made("R"),
    ),
    Attack(
        "I: train.init = a full ViewCLR final.pt with method.use_l3d=false (no auto-encoder to take)",
        lambda synth, killed, folder: [
            "pretrain",
            "--no-progress",
            *tiny_training(synth, folder / "R", init_viewclr(killed), "method.use_l3d=false"),
        ],
        0,
        r"stage2 starts from stage 1 \(\S*stage1/final\.pt\), the viewpoint generator from \S*VCLR/stage2/final\.pt "
        r"\(\d+ tensors of its generator this stage 2 has no place for left out, e\.g\. generator\.autoencoder\.",
        lambda folder: final_summary(folder / "R" / "stage2" / "final.pt")["steps"] == 8 or pytest.fail(),
    ),
    Attack(
        "J: a raw folder with one unreadable video, batch 4 in 2 BatchNorm sub-batches",
        lambda synth, killed, folder: moco(
            synth,
            folder / "R",
            "data.dataset=folder",
            f"data.root={folder / 'raw'}",
            f"data.labels_csv={folder / 'raw' / 'labels.csv'}",
            "data.protocol=all",
            "method.bn_splits=2",
            "train.stage1_epochs=2",
        ),  # fmt: skip
        0,
        r"3 readable clips of 4 left, too few for 2 BatchNorm sub-batches of 2; batch dropped",
        lambda folder: final_summary(folder / "R" / "infonce" / "final.pt")["dropped_batches"] == 2 or pytest.fail(),
        setup=folder_with_a_bad_video,
    ),
    Attack(
        "K: model.width=1e400 (inf)",
        lambda synth, killed, folder: moco(synth, folder / "R", "model.width=1e400"),
        2,
        r"config key 'model\.width': must be a finite number, got inf",
        nothing_made("R"),
    ),
    Attack(
        "L: resumed after a kill: each step logged once, the dead process's lock taken over",
        lambda synth, killed, folder: [
            *moco(synth, _logged_past_checkpoint(copy_killed(killed, folder)), "seed=1", "train.stage1_epochs=2"),
            "--resume",
        ],  # fmt: skip
        0,
        r"\.viewclr\.lock was left by a process that has ended \(pid \d+\); taking it over",
        resumed_is_this_run,
    ),
    Attack(
        "a method named twice in --methods",
        lambda synth, killed, folder: [
            "compare",
            *tiny_training(synth, "unused"),
            "--out",
            str(folder / "c"),
            "--methods",
            "infonce",
            "infonce",
        ],  # fmt: skip
        2,
        r"--methods names infonce twice; give each once",
        nothing_made("c"),
    ),
]


def test_two_pretrains_on_one_folder_the_second_stops_and_the_first_finishes(synth, tmp_path):
    """Attack G as it happened: the second run once moved the first's live stage folder aside and the first died
    with a traceback. Now the second stops with one line naming the first, which finishes untouched."""
    out = tmp_path / "R"
    first = subprocess.Popen([sys.executable, "-m", "viewclr", *moco(synth, out, "train.stage1_epochs=6")], env=ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    index = out / "infonce" / "checkpoints" / "index.json"
    deadline = time.time() + 300
    while not index.is_file() and first.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    second = run(moco(synth, out))
    _, first_err = first.communicate(timeout=600)
    assert second.returncode == 1, second.stderr[-2000:]
    assert f"R is in use by viewclr pretrain (pid {first.pid})" in second.stderr
    assert first.returncode == 0 and "Traceback" not in first_err + second.stderr, first_err[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["infonce"]  # nothing set aside, the lock released
    assert final_summary(out / "infonce" / "final.pt")["steps"] == 24


def _logged_past_checkpoint(run_dir: Path) -> Path:
    """Steps the killed process logged after its last checkpoint (which the resumed run trains again)."""
    stage = run_dir / "infonce"
    last = max(entry["step"] for entry in json.loads((stage / "checkpoints" / "index.json").read_text()))
    with (stage / "metrics.jsonl").open("a") as handle:
        for step in (last + 1, last + 2):
            handle.write(json.dumps({"step": step, "epoch": 1, "stage": "infonce", "loss/total": 9.0}) + "\n")
    return run_dir


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
