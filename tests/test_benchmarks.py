"""The benchmarks behind `viewclr bench` run, and report what they claim to."""

import json


def test_the_textbook_benchmark_times_viewclr_with_and_without_the_batchnorm_emulation(capsys):
    from viewclr.studies.benchmarks.textbook import UNSPLIT, main

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
    from viewclr.studies.benchmarks import interleaved_rounds, paired_ratio

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

    from viewclr.methods.distributed import SplitBatchNorm, split_batchnorm
    from viewclr.studies.benchmarks.textbook import with_splits

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

    from viewclr.models.registry import build_backbone
    from viewclr.studies.benchmarks.batchnorm import FORMS, main

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

    from viewclr.studies.benchmarks.batchnorm import group_norm_form

    torch.manual_seed(0)
    x = torch.randn(6, 5, 3, 4, 7, dtype=torch.float64).contiguous(memory_format=torch.channels_last_3d)
    weight, bias = torch.rand(5, dtype=torch.float64) + 0.5, torch.randn(5, dtype=torch.float64)
    out = group_norm_form(x, weight, bias, 3, 1e-5)
    reference = torch.cat([F.batch_norm(part, None, None, weight, bias, True, 0.1, 1e-5) for part in x.chunk(3)])
    assert out.shape == x.shape and out.stride() == x.stride()
    torch.testing.assert_close(out, reference, rtol=0, atol=1e-12)
    assert (out - F.batch_norm(x, None, None, weight, bias, True, 0.1, 1e-5)).abs().max() > 1e-3  # not one batch
