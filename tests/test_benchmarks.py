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
