"""Pretraining end to end on a tiny synthetic dataset: both stages, exact resume after a real SIGKILL, corrupt
checkpoints, non-finite losses, stage planning."""

import functools
import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import onednn, tiny_training

from viewclr.checkpoint import CheckpointError, CheckpointManager
from viewclr.cli import main
from viewclr.config import load_config
from viewclr.data.registry import build_split
from viewclr.engine.plan import Stage, TrainingError, plan, pretrain, stage1_weights, stage_moments
from viewclr.engine.trainer import Trainer, learning_rate
from viewclr.logger import read_metrics
from viewclr.methods import build_method
from viewclr.synth import SynthSettings, generate


def train_stage(cfg, stage, progress=False):
    """One stage of cfg on its split, as `pretrain` trains it."""
    from viewclr.engine.plan import train_stage as run

    spec, split = build_split(cfg.data)
    return run(cfg, stage, split, len(spec.classes), progress=progress)


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth_pretrain")
    generate(SynthSettings(subjects=4, classes=3, size=32, frames=12), root, workers=1, progress=False)
    return root


tiny = tiny_training


def test_two_stages_write_weights_logs_and_checkpoints(synth_root, tmp_path):
    cfg = load_config(None, tiny(synth_root, tmp_path / "run"))
    results = pretrain(cfg, progress=False)
    assert set(results) == {"stage1", "stage2"}
    # CVS at 0°: CS-train subjects 1, 2, 4 × 2 takes × 3 classes = 18 videos → 4 batches of 4
    assert results["stage1"]["steps"] == 4 and results["stage2"]["steps"] == 8
    assert set(results["stage2"]["knn"]) == {"0", "45", "90"}
    final = torch.load(tmp_path / "run" / "stage2" / "final.pt", weights_only=False)
    assert "fg1.0.0.0.weight" in final["method"] and "codes.features" in final["method"]
    ids = final["method"]["queue.ids"]  # every slot filled by the 12 steps knows its video (dataset index < 18)
    assert len(ids) == 16 and ids.min() >= 0 and ids.max() < 18
    metrics = read_metrics(tmp_path / "run" / "stage2")
    terms = {k for m in metrics for k in m}
    assert {
        "loss/mix",
        "loss/l3d",
        "loss/adv",
        "loss/rec",
        "train/pretext_acc",
        "train/instance_acc",
        "knn/90",
    } <= terms
    assert any((tmp_path / "run" / "stage2" / "tensorboard").iterdir())
    index = json.loads((tmp_path / "run" / "stage2" / "checkpoints" / "index.json").read_text())
    assert [e["step"] for e in index] == [6, 8]  # the newest two of steps 2, 4, 6, 8


def test_stage_one_with_batches_grouped_by_subject(synth_root, tmp_path):
    overrides = ["train.stage2_epochs=0", "data.group_by=subject"]
    cfg = load_config(None, tiny(synth_root, tmp_path / "run", *overrides))
    assert pretrain(cfg, stage="1", progress=False)["stage1"]["steps"] == 4
    assert any("train/instance_acc" in m for m in read_metrics(tmp_path / "run" / "stage1"))
    # the 4 steps of 4 filled the queue of 16 once, in training order: each subject's videos came together
    ids = torch.load(tmp_path / "run" / "stage1" / "final.pt", weights_only=False)["method"]["queue.ids"]
    subjects = [sample.subject for sample in build_split(cfg.data)[1].train_samples()]
    order = [subjects[i] for i in ids.tolist()]
    runs = [s for j, s in enumerate(order) if j == 0 or s != order[j - 1]]
    assert sorted(runs) == sorted(set(order)) == [1, 2, 4]  # one run per subject (CS-train subjects 1, 2, 4)


def test_stage_two_starts_from_stage_one(synth_root, tmp_path):
    cfg = load_config(None, tiny(synth_root, tmp_path / "run", "train.stage2_epochs=0"))
    pretrain(cfg, stage="1", progress=False)
    stage1 = torch.load(tmp_path / "run" / "stage1" / "final.pt", weights_only=False)["method"]
    pretrain(cfg, stage="2", progress=False)
    stage2 = torch.load(tmp_path / "run" / "stage2" / "final.pt", weights_only=False)["method"]
    for key in ("encoder.backbone.features.0.0.0.weight", "queue.features", "momentum_encoder.head.mlp.0.weight"):
        assert torch.equal(stage1[key], stage2[key])  # 0 epochs of stage 2: stage 1's weights
    assert torch.equal(stage2["fg1.3.0.0.weight"], stage1["encoder.backbone.features.3.0.0.weight"])
    assert torch.equal(stage2["fg2.8.branch0.0.weight"], stage1["encoder.backbone.features.8.branch0.0.weight"])
    with pytest.raises(TrainingError, match="run stage 1"):
        pretrain(load_config(None, tiny(synth_root, tmp_path / "empty")), stage="2", progress=False)


def test_stage_two_carries_the_encoders_adam_moments(synth_root, tmp_path):
    """method.stage2_optimizer=carry: stage 2's Adam starts with stage 1's moments (and step count) for every
    encoder weight, by parameter name, and with none for the new parts (G, fg1, fg2, auto-encoder); fresh carries
    nothing."""
    cfg = load_config(None, tiny(synth_root, tmp_path / "run", "train.stage2_epochs=0"))
    pretrain(cfg, stage="1", progress=False)
    state, _ = CheckpointManager(tmp_path / "run" / "stage1" / "checkpoints").load_latest()
    stage1_names = [n for n, _ in build_method(cfg, "infonce").trainable()]
    assert state["optimizer_params"] == stage1_names  # the checkpoint names what each Adam index is
    named = stage_moments(tmp_path / "run" / "stage1", cfg)
    assert len(named) == len(state["optimizer"]["state"]) == len(stage1_names)
    spec, split = build_split(cfg.data)
    trainer = Trainer(cfg, Stage("stage2", "viewclr", 1), split, len(spec.classes), progress=False)
    trainer.build()
    trainer.start(init=stage1_weights(tmp_path / "run" / "stage1"), init_optimizer=named)
    optimizer, params = trainer.optimizer, dict(trainer.method.trainable())
    assert len(optimizer.param_groups[0]["params"]) == len(params) > len(stage1_names)
    first = "encoder.backbone.features.0.0.0.weight"
    moments = state["optimizer"]["state"][stage1_names.index(first)]
    assert torch.equal(optimizer.state[params[first]]["exp_avg"], moments["exp_avg"])
    assert float(optimizer.state[params[first]]["step"]) == 4  # stage 1's 4 steps
    assert sum(1 for p in params.values() if optimizer.state[p]) == len(stage1_names)
    assert all(optimizer.state[p] == {} for n, p in params.items() if n.startswith(("generator.", "fg1.", "fg2.")))
    fresh = load_config(
        None, tiny(synth_root, tmp_path / "run", "train.stage2_epochs=0", "method.stage2_optimizer=fresh")
    )
    assert stage_moments(tmp_path / "run" / "stage1", fresh) is None
    assert stage_moments(tmp_path / "nowhere", cfg) is None  # no checkpoint: a warning, a fresh Adam


def test_plan_baseline_and_ablation_switches():
    cfg = load_config(None, ["method.name=infonce"])
    assert plan(cfg) == [Stage("infonce", "infonce", 500)]  # the InfoNCE baseline: 300 + 200 epochs
    assert [s.epochs for s in plan(load_config(None, []))] == [300, 200]


def cli(args, **kwargs):
    env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "viewclr", "pretrain", "--no-progress", *args], env=env, **kwargs)


def test_learning_rate_warms_up_then_stays_or_follows_a_cosine():
    constant = load_config(None, ["optim.lr=0.01", "optim.warmup_epochs=1"]).optim
    cosine = load_config(None, ["optim.lr=0.01", "optim.schedule=cosine"]).optim
    assert [learning_rate(constant, s, 10, 4) for s in (0, 1, 3, 4, 9)] == pytest.approx(
        [0.0025, 0.005, 0.01, 0.01, 0.01]
    )
    assert [learning_rate(cosine, s, 10, 0) for s in (0, 5, 10)] == pytest.approx([0.01, 0.005, 0.0])
    assert learning_rate(cosine, 2, 10, 2) == pytest.approx(0.01)  # the cosine starts after the warm-up
    assert learning_rate(cosine, 6, 10, 2) == pytest.approx(0.005)


def test_resume_after_sigkill_is_bitwise_exact(synth_root, tmp_path):
    # the learning rate follows a schedule, so a resumed run must also restore where on the curve it was
    settings = ["train.deterministic=true", "optim.schedule=cosine", "optim.warmup_epochs=0.5"]
    whole = cli(tiny(synth_root, tmp_path / "whole", *settings))
    assert whole.wait(timeout=300) == 0

    killed = cli(tiny(synth_root, tmp_path / "killed", *settings), stderr=subprocess.DEVNULL)
    index = tmp_path / "killed" / "stage2" / "checkpoints" / "index.json"
    deadline = time.time() + 300
    while time.time() < deadline and killed.poll() is None:
        if index.is_file() and any(e["step"] >= 2 for e in json.loads(index.read_text() or "[]")):
            killed.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    assert killed.wait(timeout=60) == -signal.SIGKILL
    assert not (tmp_path / "killed" / "stage2" / "final.pt").exists()  # it really died mid-stage

    resumed = cli([*tiny(synth_root, tmp_path / "killed", *settings), "--resume"])
    assert resumed.wait(timeout=300) == 0
    a = torch.load(tmp_path / "whole" / "stage2" / "final.pt", weights_only=False)["method"]
    b = torch.load(tmp_path / "killed" / "stage2" / "final.pt", weights_only=False)["method"]
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert different == []
    lrs = [m["train/lr"] for m in read_metrics(tmp_path / "whole" / "stage2") if "train/lr" in m]
    assert lrs[0] == pytest.approx(1e-3 / 2) and lrs[1] == pytest.approx(1e-3)  # warm-up: 2 of 8 steps
    assert len(lrs) == 8 and lrs[1:] == sorted(lrs[1:], reverse=True)
    assert lrs[-1] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 5 / 6)))  # step 7: 5 of 6 cosine steps


def test_corrupt_checkpoint_falls_back_to_the_previous_good_one(tmp_path, caplog):
    manager = CheckpointManager(tmp_path, keep=3)
    for step in (1, 2, 3):
        manager.save({"step": step, "weights": torch.full((4,), float(step))}, step)
    newest = tmp_path / "step_000000003.pt"
    newest.write_bytes(newest.read_bytes()[:100])  # truncated, as by a crash during a copy
    with caplog.at_level(logging.WARNING):
        state, path = manager.load_latest()
    assert state["step"] == 2 and path.name == "step_000000002.pt"
    assert "step_000000003.pt is truncated or corrupt" in caplog.text
    for name in ("step_000000001.pt", "step_000000002.pt"):
        (tmp_path / name).write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="no usable checkpoint"):
        manager.load_latest()
    assert CheckpointManager(tmp_path / "none").load_latest() is None


def test_without_an_index_the_newest_readable_step_file_is_taken_and_said(tmp_path, caplog):
    manager = CheckpointManager(tmp_path, keep=3)
    for step in (1, 2, 3):
        manager.save({"step": step}, step)
    (tmp_path / "index.json").unlink()
    (tmp_path / "step_000000003.pt").write_bytes(b"half")  # the newest is unreadable too
    (tmp_path / "step_000000004.pt.part").write_bytes(b"an interrupted write")
    with caplog.at_level(logging.WARNING):
        state, path = manager.load_latest()
    assert state["step"] == 2 and path.name == "step_000000002.pt"
    assert "index.json is missing; looking for checkpoints by file name (3 found)" in caplog.text
    manager.save({"step": 5}, 5)  # a save clears what interrupted writes left
    assert not list(tmp_path.glob("*.part"))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        CheckpointManager(tmp_path / "fresh").save({"step": 1}, 1)  # a first save has no index yet: nothing to say
    assert caplog.text == ""


def test_a_nonfinite_loss_stops_without_a_checkpoint_or_is_skipped(synth_root, tmp_path, monkeypatch):
    import viewclr.methods.moco as moco

    calls = []
    real = moco.infonce

    def diverging(*args, **kwargs):  # the loss turns NaN on the third step
        loss, logits = real(*args, **kwargs)
        calls.append(1)
        return (loss * float("nan") if len(calls) >= 3 else loss), logits

    monkeypatch.setattr(moco, "infonce", diverging)
    cfg = load_config(None, tiny(synth_root, tmp_path / "stop"))
    with pytest.raises(TrainingError, match=r"stage1 step 2 .*loss term 'infonce' is nan.*no checkpoint written"):
        train_stage(cfg, plan(cfg, "1")[0], progress=False)
    index = json.loads((tmp_path / "stop" / "stage1" / "checkpoints" / "index.json").read_text())
    assert [e["step"] for e in index] == [2]  # the last good one, written before the bad step
    state = torch.load(tmp_path / "stop" / "stage1" / "checkpoints" / index[0]["file"], weights_only=False)
    assert all(torch.isfinite(v).all() for v in state["method"].values() if v.is_floating_point())

    calls.clear()
    cfg = load_config(None, tiny(synth_root, tmp_path / "skip", "train.nonfinite=skip"))
    result = train_stage(cfg, plan(cfg, "1")[0], progress=False)
    assert (result["steps"], result["skipped_steps"]) == (4, 2)  # steps 2 and 3 skipped, the run went on
    state = torch.load(tmp_path / "skip" / "stage1" / "final.pt", weights_only=False)["method"]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def test_a_step_that_breaks_a_weight_stops_in_either_mode_and_nothing_non_finite_is_written(
    synth_root, tmp_path, monkeypatch, capsys
):
    """A finite loss whose optimiser step makes a weight non-finite (a rate far too high) stops the run, with
    train.nonfinite=skip too; every checkpoint on disk is finite. optim.lr=inf is a config error (exit 2)."""
    real = torch.optim.Adam.step
    steps = []

    def breaking(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        steps.append(1)
        if len(steps) == 3:
            with torch.no_grad():
                self.param_groups[0]["params"][5].view(-1)[0] = float("inf")
        return out

    monkeypatch.setattr(torch.optim.Adam, "step", breaking)
    for mode in ("stop", "skip"):
        steps.clear()
        cfg = load_config(None, tiny(synth_root, tmp_path / mode, f"train.nonfinite={mode}"))
        with pytest.raises(TrainingError, match=r"stage1 step 2 .*step made 1 tensor \(e.g. .*non-finite.*optim.lr"):
            train_stage(cfg, plan(cfg, "1")[0], progress=False)
        assert not (tmp_path / mode / "stage1" / "final.pt").exists()
        for path in (tmp_path / mode / "stage1" / "checkpoints").glob("*.pt"):
            state = torch.load(path, weights_only=False)["method"]
            assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    assert main(["pretrain", *tiny(synth_root, tmp_path / "inf", "optim.lr=inf", "train.nonfinite=skip")]) == 2
    assert "optim.lr" in capsys.readouterr().err and not (tmp_path / "inf").exists()


def test_torchrun_two_processes_train_both_stages(synth_root, tmp_path):
    """The multi-GPU path of the trainer (process group, DDP, sharded sampler, rank-0 outputs), with gloo on CPU."""
    args = tiny(synth_root, tmp_path / "ddp", "data.batch_size=2", "train.stage2_epochs=1")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(  # --standalone: a free port, so that another launch at the same time cannot collide
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "viewclr",
         "pretrain", "--no-progress", *args],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "× 2 processes" in done.stderr
    # 18 training videos over 2 processes, 2 per batch on each: 4 steps per epoch
    assert "stage2: 4 steps" in done.stdout
    assert (tmp_path / "ddp" / "stage2" / "final.pt").is_file()


def test_gpu_switches_default_to_the_faster_on_each_device_and_are_wired(synth_root, tmp_path):
    """On CUDA: bf16 autocast, channels_last_3d, cuDNN's autotuner (not with train.deterministic) and fused Adam; on
    CPU channels_last_3d only. Each one reaches what the trainer builds (checked on CPU by switching them on, and
    the memory format off)."""
    from viewclr.runtime import switches

    train = load_config(None, []).train
    cuda = switches(train, torch.device("cuda"))
    assert (cuda.amp, cuda.channels_last, cuda.cudnn_benchmark, cuda.fused_adam) == (torch.bfloat16, True, True, True)
    cpu = switches(train, torch.device("cpu"))
    assert (cpu.amp, cpu.channels_last, cpu.cudnn_benchmark, cpu.fused_adam) == (None, True, False, False)
    assert not switches(load_config(None, ["train.deterministic=true"]).train, torch.device("cuda")).cudnn_benchmark
    assert switches(load_config(None, ["train.amp=fp32"]).train, torch.device("cuda")).amp is None
    on = ["train.channels_last=true", "train.cudnn_benchmark=true", "train.fused_adam=true", "train.amp=bf16"]
    cfg = load_config(None, tiny(synth_root, tmp_path / "run", *on))
    spec, split = build_split(cfg.data)
    before = torch.backends.cudnn.benchmark
    # PyTorch's own kernels: on CPUs whose oneDNN computes wrong bf16 convolution gradients (some AVX-512-BF16
    # ones) the trainer refuses bf16 (runtime.check_precision), and the switches are what this test is about
    with onednn(False):
        trainer = Trainer(cfg, plan(cfg, "1")[0], split, len(spec.classes), progress=False)
        try:
            trainer.build()
            trainer.start()
            assert torch.backends.cudnn.benchmark and trainer.optimizer.defaults["fused"] is True
            assert trainer.dtype == torch.bfloat16
            weight = trainer.method.encoder.backbone.features[0][0][0].weight
            assert weight.is_contiguous(memory_format=torch.channels_last_3d) and not weight.is_contiguous()
        finally:
            torch.backends.cudnn.benchmark = before
    cfg = load_config(None, tiny(synth_root, tmp_path / "off", "train.channels_last=false"))
    trainer = Trainer(cfg, plan(cfg, "1")[0], split, len(spec.classes), progress=False)
    trainer.build()
    assert trainer.method.encoder.backbone.features[0][0][0].weight.is_contiguous()


def adam_steps(stage_dir: Path, names: list[str]) -> dict[str, int]:
    """How many optimiser steps Adam took on each named parameter, from a stage's newest checkpoint."""
    state, _ = CheckpointManager(stage_dir / "checkpoints").load_latest()
    index = {name: i for i, name in enumerate(state["optimizer_params"])}
    moments = state["optimizer"]["state"]
    return {n: int(moments[index[n]]["step"]) if index[n] in moments else 0 for n in names}


def test_training_under_autocast_takes_real_low_precision_steps_in_both_stages(synth_root, tmp_path):
    """train.amp=bf16 (a CUDA run's default) and fp16 (with the gradient scaler), here on CPU: every one of the 4 + 4
    steps reaches Adam (its step count per parameter, stage 1's encoder carried into stage 2), stage 1 and stage 2
    train to finite float32 weights that moved, Queue1 and Queue2 stay float32 and fill, and the low precision is in
    the step — the weights differ from those of the same run in fp32.

    bf16 runs on PyTorch's own convolution kernels, the same on every CPU: oneDNN's bf16 weight-gradient kernel for
    3-D convolutions is wrong on some AVX-512-BF16 CPUs, and not on every call (two checks in one process have
    disagreed), so a test that trusted one check could train on it. fp16 starts its loss scale at 1: this tiny
    network's first-layer weight gradients overflow fp16 at loss scales of 32 and more (at torch's 2**16 the scaler
    skips every step of a stage this short), so 1 lets every step through with room to spare."""
    encoder, generator = "encoder.backbone.features.0.0.0.weight", "generator.projection.pose.weight"
    final, done = {}, {}
    for amp in ("fp32", "bf16", "fp16"):
        overrides = tiny(synth_root, tmp_path / amp, f"train.amp={amp}", "train.stage2_epochs=1", "train.loss_scale=1")
        with onednn(amp != "bf16"):
            done[amp] = pretrain(load_config(None, overrides), progress=False)
        assert [done[amp][s]["overflow_steps"] for s in ("stage1", "stage2")] == [0, 0], amp
        assert adam_steps(tmp_path / amp / "stage1", [encoder]) == {encoder: 4}, amp
        assert adam_steps(tmp_path / amp / "stage2", [encoder, generator]) == {encoder: 8, generator: 4}, amp
        stage1 = torch.load(done[amp]["stage1"]["final"], weights_only=False)["method"]
        state = torch.load(done[amp]["stage2"]["final"], weights_only=False)["method"]
        final[amp] = state
        floats = {k: v for k, v in state.items() if v.is_floating_point()}
        assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in floats.values()), amp
        assert state["queue.filled"].any() and state["codes.filled"].any(), amp
        assert (state[encoder] - stage1[encoder]).abs().max() > 1e-5, amp  # stage 2 moved the encoder
    torch.manual_seed(0)
    start = build_method(load_config(None, tiny(synth_root, tmp_path / "x")), "infonce").state_dict()[encoder]
    for amp in ("bf16", "fp16"):
        assert (final[amp][encoder] - start).abs().max() > 1e-4, amp  # the weights moved
        assert (final[amp][encoder] - final["fp32"][encoder]).abs().max() > 1e-6, amp


def test_fp16_steps_whose_gradients_overflow_are_skipped_and_counted(synth_root, tmp_path, caplog):
    """A loss scale that overflows every gradient: the scaler skips all 4 steps of stage 1, Adam never steps, the
    weights stay as built, and the stage's summary and log say how many were skipped."""
    cfg = load_config(None, tiny(synth_root, tmp_path / "run", "train.amp=fp16", "train.loss_scale=1e38"))
    with caplog.at_level(logging.INFO):
        done = pretrain(cfg, stage="1", progress=False)["stage1"]
    assert (done["trained_steps"], done["overflow_steps"]) == (4, 4)
    encoder = "encoder.backbone.features.0.0.0.weight"
    assert adam_steps(tmp_path / "run" / "stage1", [encoder]) == {encoder: 0}
    torch.manual_seed(0)
    start = build_method(cfg, "infonce").state_dict()[encoder]
    assert torch.equal(torch.load(done["final"], weights_only=False)["method"][encoder], start)
    assert "fp16's gradient scaler skipped 4 of 4 steps" in caplog.text


def broken_bf16_conv3d(monkeypatch) -> None:
    """Make F.conv3d behave as oneDNN's defective bf16 kernel does: under bf16 autocast, with a temporal kernel
    longer than the clip, the weight gradient is off by a factor of 1e30 (finite, so nothing else notices)."""
    import torch.nn.functional as F

    from viewclr import runtime

    class Inflate(torch.autograd.Function):
        @staticmethod
        def forward(ctx, weight):
            return weight.view_as(weight)

        @staticmethod
        def backward(ctx, grad):
            return grad * 1e30

    real = F.conv3d

    def conv3d(input, weight, *args, **kwargs):
        bf16 = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        if bf16 and input.shape[2] < weight.shape[2]:
            weight = Inflate.apply(weight)
        return real(input, weight, *args, **kwargs)

    monkeypatch.setattr(F, "conv3d", conv3d)
    runtime._checked_error.cache_clear()
    monkeypatch.setattr(runtime, "_checked_error", functools.cache(runtime._checked_error.__wrapped__))


def test_the_low_precision_check_passes_right_kernels_and_stops_a_wrong_one_before_any_work(
    synth_root, tmp_path, monkeypatch, capsys
):
    """The check at start-up compares conv3d's weight gradient in bf16 / fp16 with float32's. PyTorch's own kernels
    (oneDNN off: right on every CPU) pass it within bf16's rounding; a kernel broken as oneDNN's bf16 kernel is on
    some AVX-512-BF16 CPUs stops `pretrain`, `compare` and `demo` with exit 2 and one line naming train.amp and what
    to set, before anything is written; fp16 and fp32 are not stopped by a bf16 defect."""
    from viewclr import runtime

    cpu = torch.device("cpu")
    with onednn(False):
        for dtype, bound in ((torch.bfloat16, 0.02), (torch.float16, 0.002)):
            error, _ = runtime.conv3d_gradient_error(dtype, cpu)
            assert 0 < error < bound, dtype
    broken_bf16_conv3d(monkeypatch)
    error, frames = runtime.conv3d_gradient_error(torch.bfloat16, cpu)
    assert error > 1e29 and frames in (1, 2)
    for amp in ("fp32", "fp16"):
        runtime.check_precision(load_config(None, [f"train.amp={amp}"]).train, cpu)
    runtime.check_precision(load_config(None, []).train, cpu)  # auto: fp32 on a CPU
    commands = {
        "pretrain": ["pretrain", "--no-progress", *tiny(synth_root, tmp_path / "pretrain", "train.amp=bf16")],
        "compare": ["compare", "--out", str(tmp_path / "compare"), "--no-progress",
                    *tiny(synth_root, tmp_path / "x", "train.amp=bf16")],
        "demo": ["demo", "--out", str(tmp_path / "demo"), "--no-progress", "train.amp=bf16"],
    }  # fmt: skip
    for name, argv in commands.items():
        assert main(argv) == 2, name
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, (name, err)
        assert err.startswith("viewclr: error: config key 'train.amp': oneDNN on this CPU computes wrong bf16 "), err
        assert "times the largest float32 gradient" in err
        assert "set train.amp=fp32 (the CPU default), or keep it and set ONEDNN_MAX_CPU_ISA=AVX2" in err
        assert not (tmp_path / name).exists(), name


# ---------------------------------------------------------------------------------------------- train.init


def test_a_run_initialised_from_another_starts_from_exactly_its_weights(synth_root, tmp_path, capsys):
    """train.init=A's final.pt: the encoder, projection head and momentum encoder a 0-epoch stage 1 writes are
    A's, byte for byte; the queue is fresh; the stage says so in one line and its summary records it. Stage 2 of
    the same run also takes A's viewpoint generator."""
    a = pretrain(load_config(None, tiny(synth_root, tmp_path / "a")), progress=False)
    source = torch.load(a["stage2"]["final"], weights_only=False)["method"]
    zero = ["train.stage1_epochs=0", "train.stage2_epochs=0", f"train.init={a['stage2']['final']}"]
    b = pretrain(load_config(None, tiny(synth_root, tmp_path / "b", *zero)), progress=False)
    stage1 = torch.load(b["stage1"]["final"], weights_only=False)
    for prefix in ("encoder.", "momentum_encoder."):
        keys = [k for k in source if k.startswith(prefix)]
        assert keys and all(torch.equal(stage1["method"][k], source[k]) for k in keys), prefix
    assert not torch.equal(stage1["method"]["queue.features"], source["queue.features"])  # another dataset's keys
    assert stage1["summary"]["init"].startswith(f"from {a['stage2']['final']}: the encoder, its projection head, ")
    assert "the queues fresh" in stage1["summary"]["init"] and "init: " in stage1["config"]
    stage2 = torch.load(b["stage2"]["final"], weights_only=False)
    # stage 2 starts from this run's stage 1 and takes only the generator from train.init, and says so
    assert stage2["summary"]["init"] == (
        f"from stage 1 ({tmp_path / 'b' / 'stage1' / 'final.pt'}), the viewpoint generator from {a['stage2']['final']}"
    )
    stage2 = stage2["method"]
    generator = [k for k in source if k.startswith("generator.") and "standardise" not in k]
    assert generator and all(torch.equal(stage2[k], source[k]) for k in generator)
    assert torch.equal(stage2["fg1.0.0.0.weight"], stage2["encoder.backbone.features.0.0.0.weight"])  # fg1 ← f1


def test_init_from_torchvision_layout_drops_its_classifier_and_checks_the_width(synth_root, tmp_path, capsys, caplog):
    """A state dict in torchvision's Kinetics-400 S3D layout (the key list in tests/data) loads into the encoder
    with its 400-class classifier dropped; the head starts fresh; a width that does not fit stops with exit 2."""
    from viewclr.models import S3D

    layout = {}
    for line in (Path(__file__).parent / "data" / "torchvision_s3d_keys.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape = line.split()
            layout[key] = () if shape == "-" else tuple(int(s) for s in shape.split("x"))
    torchvision_like = S3D(width=1.0, num_classes=400).state_dict()
    assert {k: tuple(v.shape) for k, v in torchvision_like.items()} == layout
    torch.save(torchvision_like, tmp_path / "s3d_kinetics400.pth")
    args = tiny(synth_root, tmp_path / "tv", "model.width=1.0", "train.stage1_epochs=0", "method.name=infonce",
                "train.stage2_epochs=0", f"train.init={tmp_path / 's3d_kinetics400.pth'}")  # fmt: skip
    final = pretrain(load_config(None, args), progress=False)["infonce"]["final"]
    method = torch.load(final, weights_only=False)["method"]
    for key, value in torchvision_like.items():
        if not key.startswith("classifier."):
            assert torch.equal(method[f"encoder.backbone.{key}"], value), key
            assert torch.equal(method[f"momentum_encoder.backbone.{key}"], value), key
    assert not any("classifier" in k for k in method)
    assert "the projection head fresh" in torch.load(final, weights_only=False)["summary"]["init"]
    # a plain state dict cannot say what it was trained on: said so, and that Kinetics weights are RGB's
    from viewclr.models.weights import load_encoder

    with caplog.at_level(logging.WARNING):
        load_encoder(tmp_path / "s3d_kinetics400.pth", load_config(None, [*args, "model.input=residual"]))
    said = (
        "s3d_kinetics400.pth does not say which input it was trained on (a plain state dict); it is loaded into a "
        "model.input=residual encoder, but Kinetics weights such as torchvision's were trained on RGB frames"
    )
    assert said in caplog.text
    narrow = [a for a in args if not a.startswith("model.width")] + ["model.width=0.5"]
    assert main(["pretrain", "--no-progress", *narrow]) == 2
    assert "model.width" in capsys.readouterr().err


def test_resuming_an_initialised_run_resumes_and_does_not_initialise_again(synth_root, tmp_path, caplog):
    a = pretrain(load_config(None, tiny(synth_root, tmp_path / "a", "train.stage2_epochs=0")), stage="1")
    init = f"train.init={a['stage1']['final']}"
    one = load_config(None, tiny(synth_root, tmp_path / "b", init, "method.name=infonce", "train.stage2_epochs=0"))
    pretrain(one, progress=False)
    two = load_config(None, tiny(synth_root, tmp_path / "b", init, "method.name=infonce", "train.stage1_epochs=2",
                                 "train.stage2_epochs=0"))  # fmt: skip
    with caplog.at_level(logging.INFO):
        result = pretrain(two, resume=True, progress=False)["infonce"]
    assert (result["first_step"], result["trained_steps"], result["init"]) == (4, 4, None)
    assert "resuming infonce from" in caplog.text and "starts from" not in caplog.text
