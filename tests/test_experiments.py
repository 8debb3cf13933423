"""The method comparisons (experiments.py) and the demo, end to end on a tiny synthetic dataset: equal total
epochs, the InfoNCE baseline continued from stage 1 equal to an uninterrupted one, reuse on a second run."""

import json
import math
from pathlib import Path

import pytest
import torch
from helpers import checksums, load_script, make_decoy, tiny_training

from viewclr import lineage, provenance
from viewclr.cli import main
from viewclr.cli.evaluate import print_results as _print_results
from viewclr.cli.train import steps_line as _steps_line
from viewclr.config import load_config
from viewclr.engine.plan import TrainingError, pretrain
from viewclr.logger import read_metrics
from viewclr.methods import METHODS
from viewclr.studies.compare import compare, train_method
from viewclr.studies.demo import run_demo
from viewclr.synth import SynthSettings, generate

TINY_SYNTH = SynthSettings(subjects=4, classes=3, size=32, frames=12)


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth_experiments")
    generate(TINY_SYNTH, root, workers=1, progress=False)
    return root


def tiny(root, out, *extra) -> list[str]:
    return tiny_training(
        root, out, "train.checkpoint_every=100", "train.deterministic=true", "eval.epochs=3", "eval.crops=1",
        "eval.windows=1", "eval.feature_windows=1", *extra,
    )  # fmt: skip


def test_infonce_continued_from_stage_one_is_the_uninterrupted_baseline(synth_root, tmp_path):
    whole = pretrain(load_config(None, tiny(synth_root, tmp_path / "whole", "method.name=infonce")), progress=False)
    pretrain(load_config(None, tiny(synth_root, tmp_path / "vclr")), stage="1", progress=False)
    cfg = load_config(None, tiny(synth_root, tmp_path / "cont", "method.name=infonce"))
    continued = pretrain(cfg, progress=False, source=tmp_path / "vclr" / "stage1")
    assert whole["infonce"]["steps"] == continued["infonce"]["steps"] == 12  # (1 + 2) epochs × 4 steps
    # what the continued run says: 8 steps trained, 1–4 continued from stage 1 (not "12 steps in <8 steps' time>")
    assert (continued["infonce"]["trained_steps"], continued["infonce"]["continued"]) == (8, True)
    assert _steps_line(continued["infonce"]).startswith("8 steps in ")
    assert _steps_line(continued["infonce"]).endswith("(steps 5–12; 1–4 continued from another run's stage 1)")
    assert _steps_line(whole["infonce"]).endswith(" s") and whole["infonce"]["trained_steps"] == 12
    again = pretrain(cfg, progress=False, resume=True)["infonce"]
    assert _steps_line(again) == "already trained (12 steps), nothing to do"
    a = torch.load(whole["infonce"]["final"], weights_only=False)["method"]
    b = torch.load(continued["infonce"]["final"], weights_only=False)["method"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    with pytest.raises(TrainingError, match="method.name=infonce"):
        pretrain(load_config(None, tiny(synth_root, tmp_path / "x")), source=tmp_path / "vclr" / "stage1")
    with pytest.raises(TrainingError, match="holds no checkpoint"):
        pretrain(
            load_config(None, tiny(synth_root, tmp_path / "y", "method.name=infonce")), source=tmp_path / "nothing"
        )
    with pytest.raises(TrainingError, match=r"optim.schedule=cosine .*\(without --from\)"):
        cosine = tiny(synth_root, tmp_path / "z", "method.name=infonce", "optim.schedule=cosine")
        pretrain(load_config(None, cosine), source=tmp_path / "vclr" / "stage1")


def test_knn_figures_say_which_measurement_they_are(capsys):
    result = {"mode": "knn", "k": 20, "windows": 4, "groups": {"0": {"top1": 0.5}}}
    _print_results(result, "x")
    assert capsys.readouterr().out.startswith("knn (k=20, 4 windows per video) top-1 per test group: 0°: 50.0%")


def test_with_a_cosine_schedule_the_baseline_trains_on_its_own(synth_root, tmp_path):
    cfg = load_config(None, tiny(synth_root, tmp_path / "unused", "optim.schedule=cosine"))
    final = train_method(cfg, METHODS["infonce"], tmp_path / "cmp", progress=False)
    assert torch.load(final, weights_only=False)["summary"]["steps"] == 12  # (1 + 2) epochs × 4 steps
    lrs = [m["train/lr"] for m in read_metrics(final.parent) if "train/lr" in m]
    assert len(lrs) == 12 and lrs[0] == pytest.approx(1e-3)  # from step 0, not from stage 1's end
    assert lrs[-1] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 11 / 12)))


def test_methods_share_stage_one_train_equal_epochs_and_are_reused(synth_root, tmp_path):
    names = ["supervised", "infonce", "viewclr_no_adv_l3d", "viewclr_voxels"]
    overrides = tiny(synth_root, tmp_path / "unused")
    results = compare(None, tmp_path / "cmp", names, [0], ["probe"], overrides, progress=False)["per_seed"][0]
    assert set(results) == set(names)
    assert set(results["supervised"]) == {"finetune"} and set(results["infonce"]) == {"probe"}
    for by_mode in results.values():
        for result in by_mode.values():
            assert set(result["groups"]) == {"0", "45", "90"}  # CVS: one row per test view
            assert all(0.0 <= g["top1"] <= 1.0 for g in result["groups"].values())
    root = tmp_path / "cmp" / "seed0"
    assert sorted(p.parent.name for p in root.glob("*/stage1")) == ["viewclr"]  # one shared stage 1
    infonce = torch.load(root / "infonce" / "infonce" / "final.pt", weights_only=False)["summary"]
    ablation = torch.load(root / "viewclr_no_adv_l3d" / "stage2" / "final.pt", weights_only=False)
    assert infonce["steps"] == 12 and infonce["epochs"] == 3  # stage 1 + stage 2 epochs
    keys = " ".join(ablation["method"])
    assert ablation["summary"]["epochs"] == 2 and "fg2" not in keys  # −L_adv: no fg2
    assert "generator" not in keys and "codes" not in keys and "fg1.0.0.0.weight" in keys  # no G: fg1 mixed in
    assert "use_l3d: false" in ablation["config"] and "use_generator: false" in ablation["config"]
    voxels = torch.load(root / "viewclr_voxels" / "stage2" / "final.pt", weights_only=False)
    assert "world: voxels" in voxels["config"] and "generator.projection.reduce.weight" in voxels["method"]
    supervised = json.loads((root / "supervised" / "finetune" / "results.json").read_text())
    assert supervised["checkpoint"] is None  # from scratch
    stamps = {p: p.stat().st_mtime_ns for p in root.glob("**/*.pt")}
    again = compare(None, tmp_path / "cmp", names, [0], ["probe"], overrides, progress=False)["per_seed"][0]
    assert again == results
    assert {p: p.stat().st_mtime_ns for p in root.glob("**/*.pt")} == stamps  # nothing retrained
    table = (tmp_path / "cmp" / "results.md").read_text()
    assert (
        "| InfoNCE | linear probe | RGB |" in table and "| Supervised from scratch | trained on labels | RGB |" in table
    )
    assert "| CVS1 (0°) | CVS2 (45°) | CVS3 (90°) |" in table


def test_unknown_method_is_a_clear_error(tmp_path):
    from viewclr.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown method 'mocov3'"):
        compare(None, tmp_path / "cmp", ["mocov3"])
    assert not (tmp_path / "cmp").exists()  # stopped before any work
    assert {"infonce", "viewclr", "viewclr_no_l3d", "viewclr_no_adv", "viewclr_no_adv_l3d"} <= set(METHODS)


def test_demo_end_to_end_then_reuses_everything(tmp_path, capsys):
    out = tmp_path / "demo"
    overrides = [o for o in tiny("unused", "unused") if not o.startswith(("data.root", "data.dataset", "out_dir"))]
    report = run_demo(None, out, overrides, progress=False, synth=TINY_SYNTH)
    printed = capsys.readouterr().out
    assert report == out / "report.md" and report.is_file()
    assert "| InfoNCE | linear probe |" in printed and "| ViewCLR | linear probe |" in printed
    assert "report: " in printed
    results = (out / "results.md").read_text()
    assert "Chance is 33.3%" in results and "| CVS1 (0°) | CVS2 (45°) | CVS3 (90°) |" in results
    assert (out / "synth_preview.png").is_file()
    assert any(p.suffix == ".png" for p in (out / "report_files").iterdir())
    timings = json.loads((out / "timings.json").read_text())
    assert timings["demo/first_run_seconds"] > 0 and "seed0/viewclr/probe" in timings
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("**/final.pt")}
    run_demo(None, out, overrides, progress=False, synth=TINY_SYNTH)
    assert {p: p.stat().st_mtime_ns for p in out.glob("**/final.pt")} == stamps
    assert json.loads((out / "timings.json").read_text())["demo/first_run_seconds"] == timings["demo/first_run_seconds"]


def test_the_demo_never_reads_or_writes_a_dataset_root_it_is_given(tmp_path, capsys):
    """`viewclr demo ... data.root=MY_NTU` once rendered over a user's videos; it stops before any work now."""
    decoy = make_decoy(tmp_path / "MY_NTU")
    before = checksums(decoy)
    for extra in ([f"data.root={decoy}"], [f"data.root={decoy}", "data.dataset=ntu60"], ["data.dataset=ntu60"]):
        code = main(["demo", "--out", str(tmp_path / "d"), *extra, "--no-progress"])
        assert code == 2 and "viewclr demo renders and reads its own dataset" in capsys.readouterr().err
    assert main(["demo", "--config", "configs/ntu60_cvs.yaml", "--out", str(tmp_path / "d")]) == 2
    assert "runs on the synthetic benchmark" in capsys.readouterr().err
    assert checksums(decoy) == before and not (tmp_path / "d").exists()  # nothing changed, nothing made
    # a user's dataset where the demo renders (OUT/synth): a folder the demo did not make, refused before any work
    user = make_decoy(tmp_path / "parent" / "synth")
    mine = checksums(user)
    assert main(["demo", "--out", str(tmp_path / "parent"), "--no-progress"]) == 2
    assert "parent holds files viewclr demo did not make (e.g. synth)" in capsys.readouterr().err
    assert checksums(user) == mine and sorted(p.name for p in (tmp_path / "parent").iterdir()) == ["synth"]


def test_warm_start_continues_both_methods_from_the_same_supervised_encoder(synth_root, tmp_path):
    from viewclr.methods import build_method
    from viewclr.models.weights import load_encoder

    script = load_script("warm_start")
    supervised_start, warm_start_state, warm_started = (
        script.supervised_start,
        script.warm_start_state,
        script.warm_started,
    )

    cfg = load_config(None, tiny(synth_root, tmp_path / "unused"))
    weights = supervised_start(cfg, tmp_path / "ws", epochs=1, progress=False)
    result = json.loads((tmp_path / "ws" / "start" / "supervised" / "finetune" / "results.json").read_text())
    assert result["checkpoint"] is None and set(result["groups"]) == {"0", "45", "90"}
    encoder = load_encoder(weights, cfg).state_dict()
    state = warm_start_state(cfg, weights)
    for key, value in encoder.items():
        assert torch.equal(state[f"encoder.backbone.{key}"], value), key
        assert torch.equal(state[f"momentum_encoder.backbone.{key}"], value), key
    head = next(k for k in state if k.startswith("encoder.head.") and k.endswith("weight"))
    assert warm_start_state(cfg, weights)[head].equal(state[head])  # the same fresh head for both kinds
    viewclr = build_method(cfg, "viewclr")  # as stage 2 starts from it: fg1 ← the encoder's f1
    viewclr.start_from(state)
    f1 = viewclr.encoder.backbone.f1_layers().state_dict()
    assert all(torch.equal(v, f1[k]) for k, v in viewclr.fg1.state_dict().items())
    kinds = ("infonce", "viewclr")
    finals = {kind: warm_started(cfg, weights, kind, tmp_path / "ws", progress=False) for kind in kinds}
    assert finals["infonce"].parent.name == "infonce" and finals["viewclr"].parent.name == "stage2"
    for final in finals.values():
        assert torch.load(final, weights_only=False)["summary"]["epochs"] == 2  # stage2_epochs
    stamps = {p: p.stat().st_mtime_ns for p in finals.values()}
    assert warm_started(cfg, weights, "viewclr", tmp_path / "ws", progress=False) == finals["viewclr"]
    assert {p: p.stat().st_mtime_ns for p in finals.values()} == stamps


def test_compare_on_a_folder_dataset_two_methods_two_seeds_then_reuses_everything(tmp_path, capsys):
    """`viewclr compare` on a dataset in folder layout (videos + labels.csv, cross_view): InfoNCE and ViewCLR, two
    seeds; a table per evaluation with mean ± std over seeds and the chance level, plots and a report; a second
    call trains nothing."""
    root = tmp_path / "mine"
    generate(SynthSettings(subjects=3, classes=3, size=32, frames=12, layout="folder"), root, workers=1,
             progress=False)  # fmt: skip
    sizes = [o for o in tiny(root, tmp_path / "unused") if not o.startswith(("data.dataset", "data.root", "out_dir"))]
    data = ["data.dataset=folder", f"data.root={root}", "data.protocol=cross_view", "data.train_views=[0]"]
    args = ["compare", "--methods", "infonce", "viewclr", "--seeds", "0", "1", "--out", str(tmp_path / "cmp"),
            "--no-progress", *data, *sizes]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "[1/8] seed 0: InfoNCE, pretraining" in printed and "[8/8] seed 1: ViewCLR, linear probe" in printed
    results = (tmp_path / "cmp" / "results.md").read_text()
    assert "## linear probe (top-1 %, mean ± sample std (ddof 1) over seeds 0, 1, then each seed's)" in results
    assert "| Method | Evaluation | M | 45° | 90° |" in results and "Chance is 33.3 % (3 classes)." in results
    row = next(line for line in results.splitlines() if line.startswith("| ViewCLR | linear probe |"))
    table = json.loads((tmp_path / "cmp" / "results.json").read_text())["table"]
    assert {g: len(v) for g, v in table["infonce"]["probe"].items()} == {"45": 2, "90": 2}
    for values in table["viewclr"]["probe"].values():  # each cell: mean ± the sample std of the two seeds
        a, b = (100 * v for v in values)
        assert f"{(a + b) / 2:.1f} ± {abs(a - b) / 2**0.5:.1f} ({a:.1f}, {b:.1f})" in row
    report = (tmp_path / "cmp" / "report.md").read_text()
    assert all(f"<summary>seed{seed}/{m} · " in report for seed in (0, 1) for m in ("infonce", "viewclr"))  # both seeds
    assert (tmp_path / "cmp" / "per_view.png").stat().st_size > 5_000 and (tmp_path / "cmp" / "report.md").is_file()
    for seed in (0, 1):  # the fair plan: one stage 1 per seed, the baseline continued from it
        final = torch.load(tmp_path / "cmp" / f"seed{seed}" / "infonce" / "infonce" / "final.pt", weights_only=False)
        assert final["summary"]["continued"] and final["summary"]["epochs"] == 3
    code = json.loads((tmp_path / "cmp" / "results.json").read_text())["provenance"]
    assert code["warning"] is None and {r["source"] for r in code["runs"].values()} == {provenance.source_digest()}
    trained = {"seed0/stage1", "seed0/infonce", "seed0/viewclr", "seed0/infonce/probe", "seed0/viewclr/probe"}
    assert len(code["runs"]) == 10 and trained <= set(code["runs"])  # per seed: stage 1, 2 methods, 2 probes
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "cmp").glob("**/*.pt")}
    capsys.readouterr()
    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "cmp").glob("**/*.pt")} == stamps  # nothing trained
    assert "warning" not in capsys.readouterr().out
    # a reused result of other code (here: one probe's record edited to another version) is named, not mixed in silently
    probe = tmp_path / "cmp" / "seed1" / "viewclr" / "probe" / "results.json"
    edited = json.loads(probe.read_text())
    edited["provenance"]["source"] = "0123456789abcdef"
    probe.write_text(json.dumps(edited))
    assert main(args) == 0
    assert "warning: these results come from 2 versions of the code" in capsys.readouterr().out
    assert "0123456789abcdef" in (tmp_path / "cmp" / "results.md").read_text().split("## ")[0]


POSE = ["pose.frames=12", "pose.bodies=1", "pose.epochs=2", "pose.batch_size=8", "pose.queue_size=13",
        "pose.stgcn_width=0.25", "pose.agcn_width=0.125", "pose.probe_epochs=3", "pose.supervised_epochs=3",
        "pose.supervised_batch_size=6", "pose.val_subjects=1"]  # fmt: skip


def test_compare_evaluates_on_another_dataset_the_encoders_it_pretrained(synth_root, tmp_path, capsys):
    """The paper's N-UCLA protocol, one command: `compare --eval-on` an N-UCLA-layout preset probes there the
    encoders pretrained on the NTU-layout data (their own final.pt, nothing pretrained on N-UCLA) — ViewCLR's, and
    SkeletonCLR's on N-UCLA's 20 joints —, trains the AGCN joint stream on N-UCLA's labels, and fuses ViewCLR's and
    AGCN's N-UCLA scores at a weight chosen on N-UCLA's held-out training subjects (Table 5's ViewCLR + Poses). The
    tables show both datasets with their own groups and chance, and a second call reuses everything."""
    nucla = tmp_path / "nucla"
    generate(SynthSettings(subjects=4, classes=3, size=32, frames=12, layout="nucla"), nucla, workers=1,
             progress=False)  # fmt: skip
    preset = tmp_path / "nucla_tiny.yaml"
    preset.write_text(
        f"data:\n  dataset: nucla\n  root: {nucla}\n  protocol: v12_3\n  frames: 8\n  short_side: 32\n"
        "  batch_size: 4\n  num_workers: 0\naugment:\n  size: 32\neval:\n  epochs: 3\n  crops: 1\n  windows: 1\n"
        "  feature_windows: 1\npose:\n  frames: 12\n  bodies: 1\n  batch_size: 8\n  probe_epochs: 3\n"
        "  supervised_epochs: 3\n  supervised_batch_size: 6\n  val_subjects: 1\n"
    )
    out = tmp_path / "cmp"
    methods = ["viewclr", "skeletonclr", "agcn", "viewclr_poses"]
    args = ["compare", "--methods", *methods, "--seeds", "0", "--eval-on", str(preset), "--out", str(out),
            "--no-progress", *tiny(synth_root, tmp_path / "unused"), *POSE]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    # then the time left, when the pretraining took long enough (over 5 s) to say something of the rest
    assert (
        "[2/10] seed 0: ViewCLR, linear probe\n" in printed or "[2/10] seed 0: ViewCLR, linear probe; about" in printed
    )
    for line in (
        "[3/10] seed 0: ViewCLR, linear probe on nucla_tiny",
        "[6/10] seed 0: SkeletonCLR, linear probe on nucla_tiny",
        "[7/10] seed 0: 2s-AGCN joint stream (supervised), finetune",  # no pretraining step: it trains on labels
        "[8/10] seed 0: 2s-AGCN joint stream (supervised), finetune on nucla_tiny",
        "[10/10] seed 0: ViewCLR + Poses, linear probe on nucla_tiny",
    ):
        assert line in printed, line
    there = json.loads((out / "seed0" / "viewclr" / "probe@nucla_tiny" / "results.json").read_text())
    assert (there["dataset"], there["protocol"]) == ("nucla", "v12_3")
    assert there["checkpoint"] == str(out / "seed0" / "viewclr" / "stage2" / "final.pt")
    home = json.loads((out / "seed0" / "viewclr" / "probe" / "results.json").read_text())
    assert (home["dataset"], home["protocol"]) == ("synth", "cvs")
    trained = sorted(str(p.relative_to(out)) for p in out.glob("**/final.pt"))
    assert trained == ["seed0/skeletonclr/final.pt", "seed0/viewclr/stage1/final.pt", "seed0/viewclr/stage2/final.pt"]
    # SkeletonCLR's NTU-layout encoder (25 joints) probed on N-UCLA's 20: its weights, moved to the smaller graph
    skeletons = out / "seed0" / "skeletonclr" / "probe@nucla_tiny"
    probed = json.loads((skeletons / "results.json").read_text())
    assert (probed["dataset"], probed["modality"], probed["identity"]["weights"]) == (
        "nucla",
        "Pose",
        {"file": lineage.file_digest(out / "seed0" / "skeletonclr" / "final.pt")},
    )
    classifier = torch.load(skeletons / "classifier.pt")
    assert (classifier["pose"]["joints"], classifier["pose"]["dataset"]) == (20, "nucla")
    encoder = torch.load(out / "seed0" / "skeletonclr" / "final.pt")["encoder"]
    assert torch.equal(classifier["backbone"]["blocks.0.conv.weight"], encoder["blocks.0.conv.weight"])  # frozen
    fused = json.loads((out / "seed0" / "viewclr_poses" / "probe@nucla_tiny" / "results.json").read_text())
    assert fused["first"] == str(out / "seed0" / "viewclr" / "probe@nucla_tiny" / "scores.pt")
    assert fused["second"] == str(out / "seed0" / "agcn" / "finetune@nucla_tiny" / "scores.pt")
    chosen_on = [str(out / "seed0" / m / f) for m, f in (("viewclr", "probe-val@nucla_tiny"),
                                                          ("agcn", "finetune-val@nucla_tiny"))]  # fmt: skip
    assert fused["weight_chosen_on"]["files"] == [f"{f}/scores.pt" for f in chosen_on]
    val = json.loads((out / "seed0" / "agcn" / "finetune-val@nucla_tiny" / "results.json").read_text())
    assert val["dataset"] == "nucla" and list(val["groups"]) == ["val"]  # N-UCLA's own training subjects
    table = json.loads((out / "results.json").read_text())["table"]
    assert set(table["viewclr"]["probe"]) == {"0", "45", "90"} and set(table["viewclr"]["probe@nucla_tiny"]) == {"all"}
    assert set(table["skeletonclr"]) == {"probe", "probe@nucla_tiny"}
    assert set(table["agcn"]) == {"finetune", "finetune@nucla_tiny"}
    assert set(table["viewclr_poses"]) == {"probe", "probe@nucla_tiny"}
    results = (out / "results.md").read_text()
    assert "## linear probe (top-1 %" in results and "## linear probe on nucla_tiny (top-1 %" in results
    assert "Chance is 33.3 % (3 classes)." in results and "Chance is 33.3 % (3 classes) on nucla_tiny." in results
    nucla_table = results.split("## linear probe on nucla_tiny")[1].split("## ")[0]
    assert "| ViewCLR + Poses | linear probe + AGCN, w = " in nucla_table and "| SkeletonCLR |" in nucla_table
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("**/*.pt")}
    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in out.glob("**/*.pt")} == stamps  # nothing trained or evaluated again
    # SkeletonCLR meets on N-UCLA only skeletons normalised as its own: stopped before any work, naming the key
    assert main([*args, "--eval-set", "pose.normalise=pre"]) == 2
    assert "pose.normalise" in capsys.readouterr().err


def test_the_nucla_preset_evaluates_the_ntu60_encoder_and_pretrains_nothing():
    """Tables 1, 2, 5: N-UCLA models are pre-trained on NTU-60; the preset evaluates NTU-60 CVS's ViewCLR."""
    cfg = load_config("nucla_v12_3")
    assert cfg.train.init is None and cfg.eval.checkpoint == load_config("ntu60_cvs").out_dir + "/stage2/final.pt"
    assert (cfg.data.dataset, cfg.data.protocol) == ("nucla", "v12_3")
    assert cfg.model == load_config("ntu60_cvs").model  # the encoder it evaluates is that preset's


def test_stage2_metrics_summarises_a_studys_logs(tmp_path, capsys, monkeypatch):
    """scripts/stage2_metrics.py on hand-written logs: the continuation's steps only, each variant's view change
    first / middle / end / max, and the mean ± std over seeds."""
    script = load_script("stage2_metrics")

    def write(folder, records):
        folder.mkdir(parents=True)
        (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))

    for seed, shift in (("seed0", 0.0), ("seed1", 0.2)):
        write(tmp_path / seed / "viewclr" / "stage1", [{"step": 7, "train/pretext_acc": 0.9}])
        # stage 1's steps (≤ 7) belong to stage 1, not to the continuation
        write(
            tmp_path / seed / "infonce" / "infonce",
            [{"step": s, "train/pretext_acc": a} for s, a in ((5, 0.9), (7, 0.9), (9, 0.3 + shift), (11, 0.5))],
        )
        write(tmp_path / seed / "viewclr" / "stage2", [{"step": 1, "loss/total": 3.0}] + [
            {"step": s, "train/pretext_acc": a, "train/gen_view_deg": d + 10 * shift, "train/gen_change": c}
            for s, a, d, c in ((2, 0.1, 10.0, 0.5), (4, 0.2, 50.0, 0.6), (6, 0.3, 70.0, 0.7), (8, 0.4, 40.0, 0.9))
        ])  # fmt: skip
    row = script.stage2_row(script.read_metrics(tmp_path / "seed0" / "viewclr" / "stage2"))
    assert row == pytest.approx({"pretext": 0.25, "deg_first": 10.0, "deg_middle": 50.0, "deg_end": 40.0,
                                 "deg_max": 70.0, "change_first": 0.5, "change_end": 0.9})  # fmt: skip
    assert script.continuation_pretext(tmp_path, "seed0") == pytest.approx(0.4)  # steps 9 and 11 only
    monkeypatch.setattr("sys.argv", ["stage2_metrics.py", str(tmp_path)])
    assert script.main() == 0
    printed = capsys.readouterr().out
    assert "| seed1 | viewclr | 0.25 | 12.0 / 52.0 / 42.0 / 72.0 | 0.50 → 0.90 |" in printed
    assert "| infonce | 0.45 ± 0.05 | – | – |" in printed  # seeds: 0.4 and 0.5
    assert "| viewclr | 0.25 ± 0.00 | 41.0 ± 1.0 | 71.0 ± 1.0 |" in printed


def test_stage2_diagnostics_combines_seeds_into_mean_std_and_paired_differences():
    """scripts/stage2_diagnostics.py --seeds: the end of each variant's curves, mean ± std over seeds, and
    ViewCLR − InfoNCE per seed, on hand-written summaries of two seeds."""
    script = load_script("stage2_diagnostics")

    def views(probe, knn=0.25):
        return {
            "0": {"probe": probe, "knn": knn},
            "45": {"probe": probe - 0.1, "knn": knn},
            "90": {"probe": 0.2, "knn": knn},
        }

    def seed(start, infonce, viewclr):
        # the middle points must not count: only each curve's end does
        curves = {"InfoNCE": [(0, views(start)), (5, views(0.9)), (10, views(infonce))],
                  "ViewCLR": [(0, views(start)), (5, views(0.1)), (10, views(viewclr))]}  # fmt: skip
        return {"stage1": views(start), "variants": {"preset": {"curves": curves}}}

    table, combined = script.across_seeds({0: seed(0.5, 0.6, 0.55), 1: seed(0.7, 0.6, 0.62)})
    # mean ± sample std (ddof 1) of the two seeds
    assert "| stage 1's end | 60.0 ± 14.1 (25.0 ± 0.0) | 50.0 ± 14.1 (25.0 ± 0.0) | 20.0 ± 0.0 (25.0 ± 0.0) |" in table
    assert "| preset: ViewCLR | 58.5 ± 4.9 (25.0 ± 0.0) | 48.5 ± 4.9 (25.0 ± 0.0) |" in table
    assert "| preset | -5.0 / +2.0 | -5.0 / +2.0 | +0.0 / +0.0 |" in table
    assert combined["viewclr_minus_infonce"]["preset"]["0"] == pytest.approx([-5.0, 2.0])
    assert combined["rows"]["preset: InfoNCE"]["0"]["probe"]["values"] == pytest.approx([60.0, 60.0])


def test_stage2_diagnostics_validates_stage_one_checkpoints_once_and_tables_the_steps_every_seed_kept(
    tmp_path, monkeypatch, capsys
):
    """--stage1-curve 360: the kept stage-1 checkpoints at multiples of 360 steps and the last, each validated once
    (cached), in step order; over seeds, a row per step that every seed has, before stage 1's end; a stage 1
    without checkpoints, or a step count below 1, is a clear error."""
    script = load_script("stage2_diagnostics")
    stage1 = tmp_path / "stage1"
    (stage1 / "checkpoints").mkdir(parents=True)
    entries = [{"step": s, "file": f"step_{s:09d}.pt"} for s in (735, 720, 375, 360, 345)]  # 735: the last
    (stage1 / "checkpoints" / "index.json").write_text(json.dumps(entries))
    calls = []

    def views(probe):  # a validation result: `probe` at every view
        return {v: {"probe": probe, "knn": 0.25} for v in ("0", "45", "90")}

    def validate(cfg, path, fit, validation, classes):
        calls.append(path.name)
        return views(int(path.stem.split("_")[1]) / 1000)

    monkeypatch.setattr(script, "validate", validate)
    cache = {}
    curve = script.stage1_curve(None, stage1, 360, cache, tmp_path / "validation.json", [], {}, 12)
    assert [s for s, _ in curve] == [360, 720, 735] and calls == [f"step_{s:09d}.pt" for s in (360, 720, 735)]
    assert json.loads((tmp_path / "validation.json").read_text())["stage1/720"]["0"]["probe"] == 0.72
    assert script.stage1_curve(None, stage1, 360, cache, tmp_path / "validation.json", [], {}, 12) == curve
    assert len(calls) == 3  # the second call reads the cache
    end = views(0.9)  # stage 1's end, validated by diagnose: its step is not validated again
    again = script.stage1_curve(None, stage1, 360, {}, tmp_path / "v2.json", [], {}, 12, end=(735, end))
    assert calls[3:] == ["step_000000360.pt", "step_000000720.pt"] and again[-1] == (735, end)
    # the stage-2 curves' choice: steps counted past stage 1's end (1440, not a point of its own), every 30 and the last
    kept = [(s, Path(f"step_{s}.pt")) for s in (1440, 1455, 1470, 1500, 1515)]
    assert [s for s, _ in script.selected(kept, 30, offset=1440)] == [30, 60, 75]
    with pytest.raises(SystemExit, match=r"--stage1-curve: .*none.* keeps no checkpoints"):
        script.stage1_curve(None, tmp_path / "none", 360, {}, tmp_path / "v.json", [], {}, 12)
    monkeypatch.setattr("sys.argv", ["stage2_diagnostics.py", "--stage1", str(stage1), "--stage1-curve", "0"])
    with pytest.raises(SystemExit) as stopped:
        script.main()
    assert stopped.value.code == 2 and "--stage1-curve 0: a number of steps >= 1" in capsys.readouterr().err

    ends = {"InfoNCE": [(0, views(0.5)), (10, views(0.6))], "ViewCLR": [(0, views(0.5)), (10, views(0.55))]}
    seed0 = {
        "stage1": views(0.5),
        "stage1_curve": [[360, views(0.3)], [720, views(0.4)]],  # as read from JSON
        "variants": {"preset": {"curves": ends, "viewclr_last_quarter": {}, "infonce_last_quarter": {}}},
    }
    seed1 = {**seed0, "stage1_curve": [(360, views(0.35)), (1080, views(0.45))]}  # 720 not kept by seed 1
    table, combined = script.across_seeds({0: seed0, 1: seed1})
    rows = [line.split(" | ")[0] for line in table.splitlines() if line.startswith("| stage 1")]
    assert rows == ["| stage 1, step 360", "| stage 1's end"]
    assert combined["rows"]["stage 1, step 360"]["0"]["probe"]["values"] == pytest.approx([30.0, 35.0])
    assert "Validation probe over stage 1 (step: 0° / 45° / 90°): 360: 30/30/30, 720: 40/40/40" in script.markdown(
        seed0
    )


def test_stage2_diagnostics_gives_each_seed_its_stage_one_and_keeps_a_folder_to_one(tmp_path):
    """--stage1 with {seed}: each seed's own stage 1, checked before any work; a folder whose runs continued one
    stage 1 refuses another, and the same one trained further."""
    from viewclr.engine.plan import FINAL

    script = load_script("stage2_diagnostics")
    for seed in (0, 2):
        (tmp_path / f"seed{seed}" / "stage1").mkdir(parents=True)
        (tmp_path / f"seed{seed}" / "stage1" / FINAL).write_bytes(b"")
    template = str(tmp_path / "seed{seed}" / "stage1")
    assert script.stage1_for(template, 2) == tmp_path / "seed2" / "stage1"
    with pytest.raises(SystemExit, match=r"seed1.*holds no finished stage 1"):
        script.stage1_for(template, 1)
    with pytest.raises(SystemExit, match=r"\{seed\} needs --seeds"):
        script.stage1_for(template, None)
    assert script.stage1_for(str(tmp_path / "seed0" / "stage1"), None) == tmp_path / "seed0" / "stage1"

    cache = {}
    script.check_same_stage1(cache, tmp_path / "seed0" / "stage1", 360, tmp_path / "out")
    assert cache["stage1_dir"] == str((tmp_path / "seed0" / "stage1").resolve()) and cache["stage1_steps"] == 360
    script.check_same_stage1(cache, tmp_path / "seed0" / "stage1", 360, tmp_path / "out")  # the same one again: fine
    with pytest.raises(SystemExit, match=r"holds runs from stage 1 .*seed0.*use another --out"):
        script.check_same_stage1(cache, tmp_path / "seed2" / "stage1", 360, tmp_path / "out")
    with pytest.raises(SystemExit, match=r"holds runs from .*seed0.*stage1 at step 360; it has 375 steps now"):
        script.check_same_stage1(cache, tmp_path / "seed0" / "stage1", 375, tmp_path / "out")  # trained further
