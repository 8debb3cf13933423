"""Reuse never mixes budgets or settings: every reused artefact (stage 1, stage 2, the InfoNCE continuation, a
probe, a finetune's checkpoints) records what it was made from (`viewclr.lineage`), and `compare`, `pretrain
--resume` and `--from` reuse it only on an exact match; a mismatch retrains what depends on the change (compare) or
stops naming the keys (--resume). One test per way a stale result once came back with exit 0.

Sizes: the tiny synthetic dataset gives 4 steps an epoch of batch 4; stage 1 one epoch, stage 2 two."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
from helpers import tiny_training

from viewclr.config import load_config
from viewclr.engine.plan import TrainingError, pretrain
from viewclr.eval.classify import evaluate
from viewclr.logger import read_metrics
from viewclr.studies.compare import compare
from viewclr.synth import SynthSettings, generate

METHODS = ["infonce", "viewclr"]


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth_reuse")
    generate(SynthSettings(subjects=4, classes=3, size=32, frames=12), root, workers=1, progress=False)
    return root


def tiny(root, *extra) -> list[str]:
    return tiny_training(
        root, "unused", "train.checkpoint_every=100", "eval.epochs=3", "eval.crops=1", "eval.windows=1",
        "eval.feature_windows=1", *extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def compared(synth_root, tmp_path_factory) -> Path:
    """A finished comparison of InfoNCE and ViewCLR (seed 0, linear probes); tests copy it."""
    out = tmp_path_factory.mktemp("compared") / "cmp"
    compare(None, out, METHODS, [0], ["probe"], tiny(synth_root), progress=False)
    return out


def copy(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / folder.name))


def summary(path: Path) -> dict:
    return torch.load(path, weights_only=False, map_location="cpu")["summary"]


def probe_of(root: Path, method: str) -> dict:
    return json.loads((root / method / "probe" / "results.json").read_text())


def mtimes(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in root.rglob("final.pt")}


def test_compare_after_the_stage_lengths_change_keeps_budgets_equal(synth_root, compared, tmp_path):
    """train.stage1_epochs 1 → 2 (attack A: InfoNCE was retrained and its old probe reused; ViewCLR kept its
    1-epoch stage 1 and its stage 2). Now stage 1 continues to 2 epochs, stage 2 is trained again from it, InfoNCE
    continues to 4, and both probes are of the new weights."""
    out = copy(compared, tmp_path)
    compare(None, out, METHODS, [0], ["probe"], tiny(synth_root, "train.stage1_epochs=2"), progress=False)
    root = out / "seed0"
    stage1, stage2 = summary(root / "viewclr/stage1/final.pt"), summary(root / "viewclr/stage2/final.pt")
    infonce = summary(root / "infonce/infonce/final.pt")
    assert (stage1["epochs"], stage1["steps"]) == (2, 8)
    assert stage2["identity"]["parent"] == stage1["identity"]  # from this stage 1, not the 1-epoch one
    assert stage2["trained_steps"] == 8 and (root / "viewclr/stage2.earlier-1").is_dir()  # trained again, the old kept
    assert stage1["epochs"] + stage2["epochs"] == infonce["epochs"] == 4 and infonce["steps"] == 16  # equal budgets
    for method, final in (("infonce", infonce), ("viewclr", stage2)):
        assert probe_of(root, method)["identity"]["weights"] == final["identity"]  # the probe of these weights
        assert (root / method / "probe.earlier-1").is_dir()


def test_compare_after_an_evaluation_setting_changes_evaluates_again_and_trains_nothing(
    synth_root, compared, tmp_path, caplog
):
    """eval.epochs 3 → 4 (attack B: the old results.json was reused, since only its existence was checked)."""
    out = copy(compared, tmp_path)
    before = mtimes(out)
    with caplog.at_level(logging.WARNING):
        compare(None, out, METHODS, [0], ["probe"], tiny(synth_root, "eval.epochs=4"), progress=False)
    assert "probe/results.json does not match this evaluation (eval.epochs 3 there, 4 here)" in caplog.text
    assert mtimes(out) == before  # no pretraining again
    for method in METHODS:
        assert probe_of(out / "seed0", method)["identity"]["settings"]["eval.epochs"] == 4
    table = json.loads((out / "results.json").read_text())["table"]
    assert set(table) == set(METHODS)


def test_compare_killed_after_stage_one_and_rerun_at_another_rate_retrains_stage_one(synth_root, compared, tmp_path):
    """Attack C: killed after stage 1, rerun with optim.lr=2e-3; stage 1 (lr 1e-3) was reused and InfoNCE's first
    steps ran at 1e-3 while its record said 2e-3. Now stage 1 is set aside and every step of every stage runs at
    2e-3."""
    out = copy(compared, tmp_path)
    for path in [*(out / "seed0").iterdir(), out / "results.json"]:
        if path.name != "viewclr":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    shutil.rmtree(out / "seed0" / "viewclr" / "stage2")
    compare(None, out, METHODS, [0], ["probe"], tiny(synth_root, "optim.lr=2e-3"), progress=False)
    root = out / "seed0"
    assert (root / "viewclr" / "stage1.earlier-1" / "final.pt").is_file()
    for stage in ("viewclr/stage1", "viewclr/stage2", "infonce/infonce"):
        assert summary(root / stage / "final.pt")["identity"]["settings"]["optim.lr"] == 2e-3
        rates = {m["train/lr"] for m in read_metrics(root / stage) if "train/lr" in m}
        assert rates == {2e-3}, stage
    infonce = summary(root / "infonce/infonce/final.pt")
    assert (infonce["steps"], infonce["trained_steps"], infonce["continued"]) == (12, 8, True)  # from the new stage 1


@pytest.fixture(scope="module")
def full_run(synth_root, tmp_path_factory) -> Path:
    """A finished ViewCLR pretraining (stage 1 one epoch, stage 2 two) in RUN; tests copy it."""
    out = tmp_path_factory.mktemp("full") / "RUN"
    pretrain(load_config(None, tiny_training(synth_root, out)), progress=False)
    return out


def test_resume_with_a_longer_stage_one_trains_stage_two_again(synth_root, full_run, tmp_path, caplog):
    """Attack D: `pretrain --resume` with train.stage1_epochs 1 → 2 extended stage 1 and handed back the old stage
    2 ("already trained"). Stage 2 depends on stage 1: it is trained again, the old one set aside."""
    run = copy(full_run, tmp_path)
    old = summary(run / "stage2/final.pt")
    with caplog.at_level(logging.WARNING):
        done = pretrain(load_config(None, tiny_training(synth_root, run, "train.stage1_epochs=2")), resume=True,
                        progress=False)  # fmt: skip
    assert "stage2/final.pt does not match this run (the stage it starts from: epochs 1 there, 2 here)" in caplog.text
    assert (done["stage1"]["steps"], done["stage1"]["trained_steps"]) == (8, 4)  # continued, not started over
    assert done["stage2"]["trained_steps"] == 8 and not done["stage2"].get("already_trained")
    new = summary(run / "stage2/final.pt")
    assert old["identity"]["parent"]["epochs"] == 1 and new["identity"]["parent"]["epochs"] == 2
    assert summary(run / "stage2.earlier-1/final.pt")["identity"] == old["identity"]  # kept whole


def test_resume_with_fewer_epochs_stops_and_changes_nothing(synth_root, tmp_path):
    """Attack E: --resume with 3 → 2 epochs ran "0 steps (steps 13–12)" and labelled 3 epochs of training "2
    epochs"."""
    args = tiny_training(synth_root, tmp_path / "R", "method.name=infonce", "train.checkpoint_every=100")
    pretrain(load_config(None, args), progress=False)
    final = tmp_path / "R" / "infonce" / "final.pt"
    before = final.read_bytes()
    shorter = load_config(None, [*args, "train.stage2_epochs=1"])
    with pytest.raises(TrainingError, match=r"a run cannot be shortened: it trained 3 epochs, this run asks 2"):
        pretrain(shorter, resume=True, progress=False)
    assert final.read_bytes() == before and sorted(p.name for p in (tmp_path / "R").iterdir()) == ["infonce"]
    # and a longer run continues it (the schedule is constant): 3 → 4 epochs, 4 more steps
    longer = pretrain(load_config(None, [*args, "train.stage2_epochs=3"]), resume=True, progress=False)["infonce"]
    assert (longer["epochs"], longer["steps"], longer["trained_steps"]) == (4, 16, 4)


def test_a_longer_run_at_a_length_dependent_rate_is_not_a_continuation(synth_root, tmp_path):
    args = tiny_training(synth_root, tmp_path / "R", "method.name=infonce", "optim.schedule=cosine")
    pretrain(load_config(None, args), progress=False)
    with pytest.raises(TrainingError, match=r"depends on the run's length: a longer run is not its continuation"):
        pretrain(load_config(None, [*args, "train.stage2_epochs=3"]), resume=True, progress=False)


def test_from_continues_only_a_stage_one_of_the_same_settings(synth_root, full_run, tmp_path):
    """`pretrain --from` seeds the InfoNCE baseline with another run's stage 1 only when that stage 1 is the start of
    this run; one at another rate is refused, naming the key."""
    args = tiny_training(synth_root, tmp_path / "B", "method.name=infonce", "optim.lr=2e-3")
    with pytest.raises(TrainingError, match=r"step_0+4\.pt is not the start of this run \(optim\.lr 0\.001 there, "):
        pretrain(load_config(None, args), source=full_run / "stage1", progress=False)
    assert not (tmp_path / "B" / "infonce" / "checkpoints").exists()


def test_a_resumed_run_logs_each_step_once(synth_root, tmp_path):
    """Attack L: after a resume, metrics.jsonl held the steps between the checkpoint and the kill twice."""
    args = tiny_training(synth_root, tmp_path / "R", "method.name=infonce", "train.stage2_epochs=0")
    pretrain(load_config(None, args), progress=False)  # checkpoints at steps 2 and 4, steps 1-4 logged
    stage = tmp_path / "R" / "infonce"
    (stage / "final.pt").unlink()
    index = json.loads((stage / "checkpoints" / "index.json").read_text())
    (stage / "checkpoints" / "index.json").write_text(json.dumps(index[:1]))  # as if killed before step 4's save
    assert index[0]["step"] == 2 and [m["step"] for m in read_metrics(stage)].count(3) == 1
    pretrain(load_config(None, args), resume=True, progress=False)
    steps = [m["step"] for m in read_metrics(stage) if "loss/total" in m]
    assert steps == [1, 2, 3, 4]


def test_a_finetune_resumes_only_its_own_checkpoints(synth_root, full_run, tmp_path, caplog):
    """A finetune's epoch checkpoints record the fit; a rerun in the same folder with another eval.lr starts over
    (the old checkpoints set aside) instead of resuming another fit's weights."""
    args = tiny(synth_root, f"eval.checkpoint={full_run / 'stage2' / 'final.pt'}", "eval.finetune_epochs=1")
    out = tmp_path / "ft"
    evaluate(load_config(None, args), "finetune", out, progress=False)
    (out / "results.json").unlink()
    with caplog.at_level(logging.INFO):
        evaluate(load_config(None, [*args, "eval.finetune_epochs=2"]), "finetune", out, progress=False)
    assert "resuming from" in caplog.text and "starting it over" not in caplog.text  # 1 → 2 epochs continues
    assert [m["step"] for m in read_metrics(out) if "eval/loss" in m] == [1, 2]  # logged as pretraining logs
    caplog.clear()
    with caplog.at_level(logging.INFO):
        result = evaluate(load_config(None, [*args, "eval.finetune_epochs=2", "eval.lr=5e-4"]), "finetune", out,
                          progress=False)  # fmt: skip
    assert "is not a checkpoint of this fit (eval.lr 0.001 there, 0.0005 here)" in caplog.text
    assert (out / "checkpoints.earlier-1").is_dir() and result["identity"]["settings"]["eval.lr"] == 5e-4
    assert [m["step"] for m in read_metrics(out) if "eval/loss" in m] == [1, 2]  # the new fit's epochs, once each
    assert "lr: 0.0005" in (out / "config.yaml").read_text()  # the settings beside the result


def test_compare_with_an_unreadable_timings_file_says_so_and_goes_on(synth_root, compared, tmp_path, caplog):
    """Attack M: a non-JSON timings.json in compare's folder was a JSONDecodeError traceback."""
    out = copy(compared, tmp_path)
    (out / "timings.json").write_text("{half")
    with caplog.at_level(logging.WARNING):
        compare(None, out, METHODS, [0], ["probe"], tiny(synth_root), progress=False)
    assert "timings.json is not readable JSON (JSONDecodeError); ignoring it" in caplog.text
    assert "seed0/viewclr/probe" in json.loads((out / "timings.json").read_text())


def test_timings_keep_only_the_steps_this_comparison_ran(synth_root, compared, tmp_path):
    """timings.json once kept the seeds of an earlier, larger comparison in the same folder."""
    out = copy(compared, tmp_path)
    timings = json.loads((out / "timings.json").read_text())
    (out / "timings.json").write_text(json.dumps({**timings, "seed7/infonce/pretrain": 99.0}))
    compare(None, out, METHODS, [0], ["probe"], tiny(synth_root), progress=False)
    assert json.loads((out / "timings.json").read_text()) == timings


def test_compare_runs_knn_as_an_evaluation_and_reuses_it_only_where_it_matches(synth_root, compared, tmp_path):
    """`compare --eval knn`: the frozen encoders' kNN top-1 per view beside the probes (pretraining reused), a
    results.json with its identity, reused by a second call, measured again when eval.knn_k changes."""
    out = copy(compared, tmp_path)
    before = mtimes(out)
    done = compare(None, out, METHODS, [0], ["probe", "knn"], tiny(synth_root), progress=False)
    assert mtimes(out) == before and set(done["table"]["viewclr"]) == {"probe", "knn"}
    assert done["provenance_warning"] is None  # the kNN result records its code like every other
    knn = out / "seed0" / "viewclr" / "knn" / "results.json"
    first = json.loads(knn.read_text())
    assert first["identity"]["mode"] == "knn" and set(first["groups"]) == {"0", "45", "90"}
    assert "## kNN (top-1 %, seed 0)" in (out / "results.md").read_text()
    stamp = knn.stat().st_mtime_ns
    compare(None, out, METHODS, [0], ["probe", "knn"], tiny(synth_root), progress=False)
    assert knn.stat().st_mtime_ns == stamp  # reused
    compare(None, out, METHODS, [0], ["probe", "knn"], tiny(synth_root, "eval.knn_k=3"), progress=False)
    assert json.loads(knn.read_text())["k"] == 3 and (out / "seed0" / "viewclr" / "knn.earlier-1").is_dir()


def test_a_removed_setting_recorded_at_its_neutral_value_is_the_same_run():
    """A run recorded by a version that still had method.w_clean, mix_partner or batch_negatives matches a run
    without them when it used the value at which the code computed what it computes now (its parent too); any
    other value is a difference that names the key."""
    from viewclr import lineage

    stage1 = {"method": "infonce", "settings": {"optim.lr": 0.001}, "data": "d", "init": None, "parent": None,
              "epochs": 2}  # fmt: skip
    current = {**stage1, "method": "viewclr", "parent": stage1, "epochs": 3}
    parent = {**stage1, "settings": {**stage1["settings"], "method.batch_negatives": False}}
    recorded = {**current, "parent": parent, "settings": {"optim.lr": 0.001, "method.w_clean": 0.0,
                                                          "method.mix_partner": "random"}}  # fmt: skip
    assert lineage.same(recorded, current) and lineage.differences(recorded, current) == []
    assert lineage.continues({**recorded, "epochs": 2}, (2, 0), current, False) == []  # and continues it
    changed = {**recorded, "settings": {**recorded["settings"], "method.mix_partner": "self"}}
    assert not lineage.same(changed, current)
    assert lineage.differences(changed, current) == ["method.mix_partner self there, none here"]
    own = {**recorded, "parent": {**parent, "settings": {**parent["settings"], "method.batch_negatives": True}}}
    phrase = "the stage it starts from: method.batch_negatives True there, none here"
    assert lineage.differences(own, current) == [phrase]
    # an evaluation of weights an older version trained: the identity of the encoder is read from its file, on the
    # side of the current evaluation as well as in the recorded results.json
    evaluation = {"mode": "probe", "settings": {"eval.epochs": 3}, "data": "d", "weights": recorded}
    assert lineage.same({**evaluation, "weights": current}, evaluation)
    assert lineage.same(evaluation, {**evaluation, "weights": current})
    assert lineage.differences(evaluation, {**evaluation, "weights": current}) == []
