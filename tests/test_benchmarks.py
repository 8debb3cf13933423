"""The benchmarks (`python -m benchmarks`, beside the package) run, and report what they claim to."""

import json
import os


def test_the_textbook_benchmark_times_viewclr_with_and_without_the_batchnorm_emulation(capsys):
    from benchmarks.textbook import UNSPLIT, main

    tiny = ["model.width=0.125", "model.npl_hidden=8", "model.proj_dim=16", "data.frames=8", "augment.size=32",
            "data.batch_size=4", "method.queue_size=6"]  # fmt: skip
    assert main(["--rounds", "1", "--steps", "1", *tiny]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result["ms"]) == {"viewclr MoCo", "textbook MoCo v2", UNSPLIT}
    assert result["ratio"] == result["ms"]["viewclr MoCo"] / result["ms"]["textbook MoCo v2"]
    assert result["split_bn_cost"] == result["ms"]["viewclr MoCo"] / result["ms"][UNSPLIT] - 1
    assert main(["--rounds", "1", "--steps", "1", *tiny, "method.bn_splits=1"]) == 0  # nothing to compare
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result["ms"]) == {"viewclr MoCo", "textbook MoCo v2"} and "split_bn_cost" not in result


def test_rounds_are_interleaved_in_a_shuffled_order_and_ratios_paired_by_round():
    from benchmarks import interleaved_rounds, paired_ratio

    calls = []
    cases = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    times = interleaved_rounds(cases, rounds=6, repeat=2)
    assert calls[:3] == ["a", "b", "c"]  # the warm-up call of each
    rounds = [calls[3 + 6 * r : 9 + 6 * r] for r in range(6)]
    assert all(sorted(r) == ["a", "a", "b", "b", "c", "c"] and r[0] == r[1] for r in rounds)  # each case `repeat`×
    assert len({r[0] for r in rounds}) > 1  # not always the same case first
    assert {name: len(values) for name, values in times.items()} == {"a": 6, "b": 6, "c": 6}
    # the median of each round's ratio (1, 2, 0.75 → 1), not the ratio of medians (20 / 10 = 2)
    assert paired_ratio([10.0, 20.0, 30.0], [10.0, 10.0, 40.0]) == 1.0


def test_the_unsplit_arm_is_the_same_model_with_every_split_layer_set_to_one_sub_batch():
    import torch

    from benchmarks.textbook import with_splits
    from viewclr.methods.distributed import SplitBatchNorm, split_batchnorm

    model = split_batchnorm(torch.nn.Sequential(torch.nn.Conv3d(3, 4, 1), torch.nn.BatchNorm3d(4),
                                                torch.nn.Conv3d(4, 4, 1), torch.nn.BatchNorm3d(4)), 3)  # fmt: skip
    seen = []

    def step():
        seen.append([m.splits for m in model.modules() if isinstance(m, SplitBatchNorm)])

    with_splits(model, step, 1)()
    with_splits(model, step, 3)()
    assert seen == [[1, 1], [3, 3]]


def test_the_batchnorm_benchmark_replays_every_batchnorm_call_of_a_step_in_three_forms(capsys):
    import torch

    from benchmarks.batchnorm import FORMS, main
    from viewclr.models.registry import build_backbone

    tiny = ["model.width=0.125", "model.npl_hidden=8", "model.proj_dim=16", "data.frames=8", "augment.size=32",
            "data.batch_size=6", "method.queue_size=7", "method.bn_splits=3"]  # fmt: skip
    assert main(["--rounds", "1", *tiny]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result["ms"]) == set(FORMS)
    layers = sum(isinstance(m, torch.nn.BatchNorm3d) for m in build_backbone("s3d", 0.125).modules())
    assert result["calls"] == 2 * layers  # the query encoder's and the key encoder's
    assert 0 <= result["group_norm_max_difference"] < 1e-12  # float64: the same normalisation, another order


def test_group_norm_on_a_channels_last_view_normalises_each_contiguous_sub_batch_alone():
    import torch
    import torch.nn.functional as F

    from benchmarks.batchnorm import group_norm_form

    torch.manual_seed(0)
    x = torch.randn(6, 5, 3, 4, 7, dtype=torch.float64).contiguous(memory_format=torch.channels_last_3d)
    weight, bias = torch.rand(5, dtype=torch.float64) + 0.5, torch.randn(5, dtype=torch.float64)
    out = group_norm_form(x, weight, bias, 3, 1e-5)
    reference = torch.cat([F.batch_norm(part, None, None, weight, bias, True, 0.1, 1e-5) for part in x.chunk(3)])
    assert out.shape == x.shape and out.stride() == x.stride()
    torch.testing.assert_close(out, reference, rtol=0, atol=1e-12)
    assert (out - F.batch_norm(x, None, None, weight, bias, True, 0.1, 1e-5)).abs().max() > 1e-3  # not one batch


def test_the_switches_benchmark_turns_off_exactly_one_gpu_switch_a_row(monkeypatch, capsys):
    """--switches: every switch on (CUDA's defaults), then each of bf16 autocast, channels_last_3d, cuDNN's
    autotuner and fused Adam off in turn, the others on; steps/s are videos/s over the batch. A configuration that
    runs out of GPU memory is a row saying so, and the rest are still measured."""
    import argparse

    import torch

    from benchmarks import pretrain

    seen = []

    def measure(cfg, device, rounds, steps):
        t = cfg.train
        seen.append((t.amp, t.channels_last, t.cudnn_benchmark, t.fused_adam, cfg.data.batch_size))
        return {"infonce": 6.0 * len(seen), "viewclr": 3.0 * len(seen)}

    monkeypatch.setattr(pretrain, "measure", measure)
    args = argparse.Namespace(config="synth_cpu", overrides=["data.batch_size=6"], rounds=1, steps=1)
    assert pretrain.compare_switches(args, None) == 0
    assert seen == [
        ("bf16", True, True, True, 6),
        ("fp32", True, True, True, 6),
        ("bf16", False, True, True, 6),
        ("bf16", True, False, True, 6),
        ("bf16", True, True, False, 6),
    ]
    rates = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps_per_second"]
    assert list(rates) == ["every switch on (the default on CUDA)", "without bf16 autocast",
                           "without channels_last_3d", "without cuDNN autotuner", "without fused Adam"]  # fmt: skip
    assert rates["without fused Adam"] == {"infonce": 5.0, "viewclr": 2.5}  # 30 and 15 videos/s, batch 6

    def out_of_memory_in_fp32(cfg, device, rounds, steps):  # fp32 at the paper's batch on a smaller GPU
        if cfg.train.amp == "fp32":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return measure(cfg, device, rounds, steps)

    monkeypatch.setattr(pretrain, "measure", out_of_memory_in_fp32)
    assert pretrain.compare_switches(args, None) == 0  # that row says so; the others are measured
    printed = capsys.readouterr().out
    rates = json.loads(printed.strip().splitlines()[-1])["steps_per_second"]
    assert "| without bf16 autocast | out of memory | out of memory |" in printed
    assert rates["without bf16 autocast"] == {"failed": "out of memory"} and len(seen) == 5 + 4
    assert rates["without fused Adam"] == {"infonce": 9.0, "viewclr": 4.5}  # the 9th measured: 54 and 27 videos/s


def test_bench_on_cuda_runs_the_gpu_rows_only_and_refuses_a_machine_without_one(monkeypatch, tmp_path, capsys):
    """`python -m benchmarks --device cuda`: the paper's settings (S3D ×1, batch 32, bf16) and the switches'
    steps/s, with the GPU's name; no CPU benchmark. Without a CUDA device: a one-line error (exit 2) before any
    benchmark. A benchmark that fails is a row saying so, the others run, and the command exits 1 after writing the
    table."""
    import pytest
    import torch

    import benchmarks.__main__ as bench

    calls = []
    gpu_step = {"rate": {"infonce": 64.0, "viewclr": 32.0}, "memory_mb": {"infonce": 9000.0, "viewclr": 17000.0},
                "time_ratio": 2.0, "memory_ratio": 1.9}  # fmt: skip
    models = [{"width": 1.0, "batch": 32, "input": [3, 32, 128, 128], "seconds": 0.2, "peak_mb": 5000.0},
              {"width": 1.0, "seconds": 0.02, "peak_mb": 500.0}]  # fmt: skip
    switches = {"steps_per_second": {"every switch on (the default on CUDA)": {"infonce": 2.5, "viewclr": 1.25},
                                     "without bf16 autocast": {"failed": "out of memory"},
                                     "without fused Adam": {"infonce": 2.25, "viewclr": 1.125}}}  # fmt: skip

    pose = {"ms": {"SkeletonCLR step": 40.0, "AGCN step": 20.0}, "rate": {"skeletonclr": 3200.0, "agcn": 3200.0},
            "setting": "ntu60_cvs: 300 frames × 25 joints × 2 bodies; SkeletonCLR batch 128"}  # fmt: skip

    def run(benchmark, *args):
        calls.append((benchmark, *args))
        result = models if benchmark == "models" else switches if "--switches" in args else gpu_step
        return "a table\n" + json.dumps(pose if benchmark == "pose" else result)

    monkeypatch.setattr(bench, "_run", run)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.main(["--device", "cuda", "--out", str(tmp_path / "b")]) == 2
    assert "--device cuda: no CUDA device is available here" in capsys.readouterr().err and calls == []

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA H200")
    assert bench.main(["--device", "cuda", "--out", str(tmp_path / "b")]) == 0
    assert calls == [
        ("models", "--device", "cuda", "--batch", "32", "--amp", "--widths", "1.0"),
        ("pretrain", "--config", "ntu60_cvs", "--device", "cuda"),
        ("pretrain", "--config", "ntu60_cvs", "--device", "cuda", "--switches"),
        ("pose", "--config", "ntu60_cvs", "--device", "cuda"),
    ]
    table = (tmp_path / "b" / "bench.md").read_text()
    assert "| SkeletonCLR training step, ntu60_cvs: 300 frames × 25 joints × 2 bodies | NVIDIA H200 | 40 ms" in table
    without = "| steps/s at the paper's settings, without fused Adam: MoCo · ViewCLR | NVIDIA H200 | 2.25 · 1.12 |"
    assert without in table
    assert (
        "| steps/s at the paper's settings, without bf16 autocast: MoCo · ViewCLR | NVIDIA H200 | out of memory |"
        in table
    )
    assert "| ViewCLR / MoCo step, one run | NVIDIA H200, bf16 | 2.00× time, 1.90× memory (goal ≤ 2.0× time) |" in table
    assert "CPU" not in table and json.loads((tmp_path / "b" / "bench.json").read_text())["switches_gpu"] == switches
    # each benchmark's whole output is kept as soon as it ends (a suite stopped by a time limit keeps it)
    assert (tmp_path / "b" / "switches_gpu.txt").read_text() == "a table\n" + json.dumps(switches)
    kept = ["models_gpu.txt", "pose_gpu.txt", "pretrain_gpu.txt", "switches_gpu.txt"]
    assert sorted(p.name for p in (tmp_path / "b").glob("*.txt")) == kept
    with pytest.raises(SystemExit):
        bench.main(["--device", "tpu"])

    # a benchmark that fails is a row saying so; the others still run, the table is written, the exit status is 1
    def fails_at_the_paper_step(benchmark, *args):
        if benchmark == "pretrain" and "--switches" not in args:
            raise bench.BenchmarkFailed("benchmarks.pretrain failed: torch.OutOfMemoryError: CUDA")
        return run(benchmark, *args)

    monkeypatch.setattr(bench, "_run", fails_at_the_paper_step)
    capsys.readouterr()
    assert bench.main(["--device", "cuda", "--out", str(tmp_path / "c")]) == 1
    assert "1 benchmark(s) failed, the table has the rest; first: benchmarks.pretrain" in capsys.readouterr().err
    table = (tmp_path / "c" / "bench.md").read_text()
    assert "| pretrain --config ntu60_cvs --device cuda | NVIDIA H200, bf16 | failed: benchmarks.pretrain" in table
    assert without in table and "| S3D ×1.0 forward+backward" in table  # before and after it
    assert json.loads((tmp_path / "c" / "bench.json").read_text())["pretrain_gpu"]["failed"].endswith("CUDA")


def test_bench_on_cpu_runs_the_cpu_rows_and_no_gpu_benchmark(monkeypatch, tmp_path):
    """`python -m benchmarks --device cpu`: loader, models, the two steps, augmentation, the textbook comparison and the
    demo's time, on a machine with a GPU too; none of them on CUDA."""
    import torch

    import benchmarks.__main__ as bench

    calls = []
    outputs = {
        "models": [{"width": 0.25, "batch": 2, "input": [3, 16, 64, 64], "seconds": 0.1, "peak_mb": 100.0},
                   {"width": 0.25, "seconds": 0.02, "peak_mb": 20.0}],
        "pretrain": {"rate": {"infonce": 40.0, "viewclr": 20.0}, "memory_mb": {"infonce": 250.0, "viewclr": 500.0},
                     "time_ratio": 2.0, "memory_ratio": 2.0},
        "augment": {"ms": {"augmentation, kornia": 165.0, "augmentation, viewclr": 55.0},
                    "speedup": {"augmentation": 3.0, "hue": 12.0}},
        "textbook": {"ms": {"viewclr MoCo": 300.0, "textbook MoCo v2": 450.0, bench.UNSPLIT: 270.0},
                     "ratio": 2 / 3, "split_bn_cost": 1 / 9},
        "pose": {"ms": {"SkeletonCLR step": 500.0, "AGCN step": 250.0}, "rate": {"skeletonclr": 64.0, "agcn": 64.0},
                 "setting": "synth_cpu: 48 frames × 25 joints × 1 bodies; SkeletonCLR batch 32"},
    }  # fmt: skip

    def run(benchmark, *args):
        calls.append((benchmark, *args))
        if benchmark == "loader":
            loader = {"per_core": [{"frames": 16, "short_side": 112, "cache_short_side": 128, "raw": 2.0,
                                    "cache": 50.0}], "two_workers_16x112_clips_per_s": 90.0}  # fmt: skip
            (tmp_path / "b" / "loader").mkdir(parents=True)
            (tmp_path / "b" / "loader" / "results.json").write_text(json.dumps(loader))
            return ""
        return json.dumps(outputs[benchmark])

    monkeypatch.setattr(bench, "_run", run)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU machine, measured on its CPU only
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "timings.json").write_text(json.dumps({"demo/first_run_seconds": 525.0}))
    table = bench.run_bench(tmp_path / "b", quick=True, device="cpu", demo_timings=tmp_path / "demo")
    assert [c[0] for c in calls] == ["loader", "models", "pretrain", "augment", "textbook", "pose"]
    assert (
        "| 2s-AGCN joint-stream training step, same skeletons | CPU (" in table and "250 ms (64 sequences/s)" in table
    )
    assert not any("cuda" in c for c in calls)
    assert "| MoCo step, synth_cpu: viewclr with / without its per-GPU BatchNorm emulation |" in table
    assert "300 / 270 ms = +11.1 % (goal: a few percent) |" in table
    assert "| augmentation per batch" in table and "165 → 55 ms (3.00×, goal ≥ 2); hue step 12.0× |" in table
    assert table.rstrip().endswith(
        "| make demo, wall time of a first run | CPU (" + f"{os.cpu_count()} cores) | 8.8 min |"
    )


def test_the_gpu_check_script_stops_before_writing_anything_without_a_gpu(tmp_path):
    """scripts/gpu_check.sh on a machine without CUDA (as CI is): exit 1, one line saying so, no OUT folder."""
    import subprocess
    import sys
    from pathlib import Path

    import pytest
    import torch

    if torch.cuda.is_available():
        pytest.skip("on a GPU machine the script runs its checks (minutes): not a unit test")
    script = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.sh"
    done = subprocess.run(["bash", str(script), str(tmp_path / "gpu")], env={**os.environ, "PYTHON": sys.executable},
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 1 and not (tmp_path / "gpu").exists()
    assert done.stderr.strip() == (
        f"gpu_check: no CUDA device is available to {sys.executable} (torch.cuda.is_available() is False)"
    )
