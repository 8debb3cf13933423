"""Typed config: presets, dotted overrides, and errors that name the key before any work."""

import logging
from dataclasses import replace
from pathlib import Path

import pytest

import viewclr
from viewclr.cli import main
from viewclr.config import Config, load_config
from viewclr.errors import ConfigError, ViewCLRError

PRESETS = sorted((Path(viewclr.__file__).parent / "configs").glob("*.yaml"))  # shipped in the package


def test_defaults_are_the_papers():
    cfg = load_config()
    assert isinstance(cfg, Config)
    assert (cfg.data.frames, cfg.data.stride, cfg.augment.size, cfg.data.batch_size) == (32, 1, 128, 32)
    assert (cfg.optim.lr, cfg.optim.weight_decay) == (1e-3, 1e-5)
    assert cfg.augment.crop_scale == [0.2, 1.0] and cfg.augment.jitter == [0.4, 0.4, 0.4, 0.1]


def test_overrides_are_typed():
    cfg = load_config(None, ["optim.lr=3e-4", "data.frame_size=[112,112]", "data.protocol=cs", "data.pad=repeat"])
    assert cfg.optim.lr == pytest.approx(3e-4) and isinstance(cfg.optim.lr, float)
    assert cfg.data.frame_size == [112, 112] and cfg.data.protocol == "cs" and cfg.data.pad == "repeat"


def test_preset_then_override(tmp_path):
    preset = tmp_path / "x.yaml"
    preset.write_text("optim:\n  lr: 3e-4\ndata:\n  frames: 16\n")
    cfg = load_config(preset, ["data.frames=8"])
    assert cfg.optim.lr == pytest.approx(3e-4) and cfg.data.frames == 8


@pytest.mark.parametrize("preset", PRESETS, ids=[p.name for p in PRESETS])
def test_every_preset_loads(preset):
    assert isinstance(load_config(preset), Config)


@pytest.mark.parametrize(
    ("overrides", "key", "message"),
    [
        (["optim.lrr=1"], "optim.lrr", "did you mean 'optim.lr'"),
        (["optim.lr=abc"], "optim.lr", "could not be converted"),
        (["data.frames=1.5"], "data.frames", "could not be converted"),
        (["data.frames=0"], "data.frames", ">= 1"),
        (["augment.crop_scale=[0.5,0.2]"], "augment.crop_scale", "min <= max"),
        (["augment.blur_p=1.5"], "augment.blur_p", "probability"),
        (["data=5"], "data", "DataConfig"),
        (["model.width=0"], "model.width", "must be in (0, 8], got 0"),
        (["model.widht=0.5"], "model.widht", "did you mean 'model.width'"),
        (["model.low_dim=0"], "model.low_dim", ">= 1"),
        (["optim.schedule=step"], "optim.schedule", "expected one of ['constant', 'cosine']"),
        (["optim.warmup_epochs=-1"], "optim.warmup_epochs", ">= 0"),
        (["data.group_by=actor"], "data.group_by", "expected one of ['none', 'subject']"),
        (["model.input=flow"], "model.input", "expected one of ['rgb', 'residual']"),
        (["model.input=residual", "data.frames=1"], "model.input", "need data.frames >= 2"),
        (["method.stage2_optimizer=keep"], "method.stage2_optimizer", "expected one of ['carry', 'fresh']"),
        (["method.name=moco"], "method.name", "expected one of ['viewclr', 'infonce']"),
        (["method.w_rec=-1"], "method.w_rec", "must be >= 0"),
        (["train.threads=-2"], "train.threads", "must be >= 1 or null"),
        (["data.eval_max_windows=0"], "data.eval_max_windows", "must be >= 1 or null"),
        (["optim.lr=inf"], "optim.lr", "must be a finite number, got inf"),
        (["optim.lr=nan"], "optim.lr", "must be a finite number, got nan"),
        (["model.width=1e400"], "model.width", "must be a finite number, got inf"),  # once an OverflowError
        (["model.width=100"], "model.width", "must be in (0, 8], got 100"),
        (["method.tau=inf"], "method.tau", "must be a finite number, got inf"),
        (["optim.weight_decay=inf"], "optim.weight_decay", "must be a finite number, got inf"),
        (["train.loss_scale=nan"], "train.loss_scale", "must be a finite number, got nan"),
        (["augment.blur_sigma=[0.1,inf]"], "augment.blur_sigma", "must be a finite number, got [0.1, inf]"),
        (["data.root=${oc.env:VIEWCLR_SURELY_UNSET}"], "data.root", "cannot resolve its value"),
        (["data.root=${data.nope}"], "data.root", "Interpolation key 'data.nope' not found"),
        (["model.world=grid"], "model.world", "expected one of ['points', 'voxels']"),
        (["method.grl_schedule=linear"], "method.grl_schedule", "expected one of ['constant', 'dann']"),
    ],
)
def test_bad_overrides_name_the_key(overrides, key, message):
    with pytest.raises(ConfigError) as info:
        load_config(None, overrides)
    assert info.value.key == key and message in str(info.value)


@pytest.mark.parametrize(
    ("override", "key", "message"),
    [
        ("data.dataset=kinetics", "data.dataset", "unknown dataset 'kinetics'"),
        ("data.protocol=csub", "data.protocol", "not a protocol of ntu60"),
        ("model.backbone=resnet", "model.backbone", "unknown backbone 'resnet'"),
    ],
)
def test_registry_names_are_checked_where_they_are_built_and_stop_before_any_work(
    override, key, message, tmp_path, capsys
):
    """Config is a leaf: it does not know the registries. The names are checked where the dataset, its split and
    the backbone are built — still a config error naming the key (exit 2), before any training."""
    args = ["pretrain", "--no-progress", "data.root=" + str(tmp_path), f"out_dir={tmp_path / 'run'}", override]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"config key '{key}'" in err and message in err and not (tmp_path / "run").exists()


def test_bad_preset_names_the_key_and_file(tmp_path):
    preset = tmp_path / "bad.yaml"
    preset.write_text("optim:\n  momentum: 0.9\n")
    with pytest.raises(ConfigError, match=r"'optim.momentum': unknown key \(from .*bad.yaml\)"):
        load_config(preset)
    preset.write_text("data: [\n")
    with pytest.raises(ConfigError, match="bad.yaml line 2: not valid YAML"):
        load_config(preset)


def test_cli_exits_2_with_one_line(capsys):
    assert main(["config", "optim.lrr=3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "optim.lrr" in err
    assert main(["config", "--config", "missing.yaml"]) == 2
    assert main(["config", "notakeyvalue"]) == 2


def test_presets_resolve_by_name_from_any_folder(tmp_path, monkeypatch, capsys):
    assert len(PRESETS) == 9  # the paper's six and the three CPU ones
    monkeypatch.chdir(tmp_path)  # not the repository
    for spelling in ("synth_cpu", "synth_cpu.yaml", "configs/synth_cpu.yaml"):
        assert load_config(spelling).data.dataset == "synth"
    assert load_config("ntu60_cvs").data.protocol == "cvs"
    (tmp_path / "synth_cpu.yaml").write_text("data:\n  frames: 4\n")  # a file of one's own wins over a preset
    assert load_config("synth_cpu.yaml").data.frames == 4 and load_config("synth_cpu").data.frames == 16
    with pytest.raises(ConfigError, match="nope.yaml does not exist and is not a preset .*synth_cpu"):
        load_config("nope.yaml")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("elsewhere/synth_cpu.yaml")  # a path into another folder is a path, not a preset
    assert main(["config", "--list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed] == [p.stem for p in PRESETS]
    assert any(line.startswith("synth_cpu ") and "synthetic benchmark" in line for line in listed)


def test_cli_prints_resolved_yaml(capsys):
    assert main(["config", "optim.lr=3e-4", "data.frames=16"]) == 0
    out = capsys.readouterr().out
    assert "lr: 0.0003" in out and "frames: 16" in out


@pytest.mark.parametrize(
    "flags, row",
    [
        ([], "pretrains the paper's Table 1 row 'ViewCLR'"),
        (["method.use_l3d=false"], "pretrains the paper's Table 1 row 'ViewCLR − L3D'"),
        (["method.use_adv=false"], "pretrains the paper's Table 1 row 'ViewCLR − L_adv'"),
        (["method.use_adv=false", "method.use_l3d=false", "method.use_generator=false"],
         "pretrains the paper's Table 1 row 'ViewCLR − L_adv − L3D (no viewpoint generator)'"),
        (["method.name=infonce"], "pretrains the paper's Table 1 row 'InfoNCE'"),
        (["method.use_adv=false", "method.use_l3d=false"], "not a row of the paper's Table 1: method.use_l3d=false "
         "method.use_adv=false keep the viewpoint generator, trained by L_mix alone; the paper's 'ViewCLR − L_adv − "
         "L3D' also removes it (add method.use_generator=false)"),
    ],
)  # fmt: skip
def test_viewclr_config_says_which_table_1_row_the_settings_pretrain(flags, row, capsys):
    assert main(["config", *flags]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"# {row}"


def test_a_stage_2_that_is_no_table_1_row_is_said_so_before_any_work(tmp_path, caplog):
    """G trained by L_mix alone (use_l3d and use_adv off, the generator kept) is a variant, not the paper's
    'ViewCLR − L_adv − L3D': pretraining warns so before it reads any data (here there is none, so it then stops);
    the paper's row (the generator removed too) gets no warning."""
    from viewclr.engine.plan import pretrain

    where = [f"out_dir={tmp_path}", "data.dataset=synth", f"data.root={tmp_path / 'none'}"]
    for extra, warned in (([], True), (["method.use_generator=false"], False)):
        caplog.clear()
        cfg = load_config(None, [*where, "method.use_adv=false", "method.use_l3d=false", *extra])
        with caplog.at_level(logging.WARNING), pytest.raises(ViewCLRError, match="none"):
            pretrain(cfg, stage="2")
        assert ("stage 2 is not a row of the paper's Table 1" in caplog.text) == warned, extra


def test_l3d_with_one_video_per_batchnorm_sub_batch_stops_before_any_work(tmp_path, capsys):
    """L3D standardises its codes over each BatchNorm sub-batch: data.batch_size=2 in method.bn_splits=2 leaves one
    video in each, so pretrain and compare stop with exit 2 naming data.batch_size before writing anything; without
    L3D (or with one sub-batch) the same batch is accepted by the check."""
    from viewclr.engine.plan import check_stage2

    small = ["data.batch_size=2", "method.bn_splits=2", "data.dataset=synth", f"data.root={tmp_path / 'none'}"]
    for argv in (["pretrain", f"out_dir={tmp_path / 'p'}", *small],
                 ["compare", "--out", str(tmp_path / "c"), *small]):  # fmt: skip
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "config key 'data.batch_size': L3D standardises its codes over each BatchNorm sub-batch" in err
        assert "gives 1" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "p").exists() and not (tmp_path / "c").exists()
    check_stage2(load_config(None, [*small, "method.use_l3d=false"]))
    check_stage2(load_config(None, [*small, "method.bn_splits=1"]))


PAPER_PRESETS = ["ntu60_cs", "ntu60_cv", "ntu60_cvs", "ntu120_csub", "ntu120_cset", "nucla_v12_3"]


@pytest.mark.parametrize("preset", PAPER_PRESETS)
def test_the_paper_presets_finetune_as_appendix_1_says(preset):
    """'similar optimization configuration as in the pre-training stage for 500 epochs ... ten crops ... and
    overlapping moving windows': Adam at pretraining's learning rate and weight decay for encoder and head alike,
    500 epochs, ten crops, every window."""
    e, o = load_config(preset).eval, load_config(preset).optim
    assert (e.finetune_epochs, e.backbone_lr_scale, e.crops, e.windows) == (500, 1.0, 10, None)
    assert (e.lr, e.finetune_weight_decay) == (o.lr, o.weight_decay) == (1e-3, 1e-5)


@pytest.mark.parametrize("preset", ["synth_cpu", "synth_study", "synth_nucla"])
def test_the_cpu_presets_finetune_shorter_and_say_why(preset):
    e = load_config(preset).eval
    assert (e.finetune_epochs, e.backbone_lr_scale, e.finetune_weight_decay) == (10, 0.1, 0.0)
    text = (Path(viewclr.__file__).parent / "configs" / f"{preset}.yaml").read_text()
    assert "Appendix 1's 500 epochs" in text


@pytest.mark.parametrize("preset", PAPER_PRESETS)
def test_the_paper_presets_have_the_pose_rows_published_settings(preset):
    """Every paper preset runs the pose rows (Tables 1, 4-6): SkeletonCLR's queue, momentum and τ, the AGCN joint
    stream's 50 epochs, the public preparation's 300 frames, NTU's two bodies and N-UCLA's one actor, a named cache
    of its own dataset, held-out training subjects for the fusion weight."""
    p = load_config(preset).pose
    assert (p.queue_size, p.momentum, p.tau, p.supervised_epochs, p.frames) == (32768, 0.999, 0.07, 50, 300)
    assert p.bodies == (1 if preset.startswith("nucla") else 2) and p.normalise == "none"
    assert p.cache == f"data/{preset.split('_')[0]}_skeletons" and p.val_subjects >= 2


def test_the_synthetic_nucla_preset_evaluates_synth_cpus_encoders_as_synth_cpu_does():
    """synth_nucla is synth_cpu's evaluation on the N-UCLA layout: the same clips, augmentation, encoder, evaluation
    and skeletons (what `compare --config synth_cpu --eval-on synth_nucla` needs to mean the paper's N-UCLA
    protocol), its own dataset and protocol, and synth_cpu's ViewCLR as the encoder it evaluates alone."""
    here, there = load_config("synth_cpu"), load_config("synth_nucla")
    assert (there.data.dataset, there.data.protocol) == ("nucla", "v12_3")
    for key in ("frames", "stride", "short_side", "batch_size"):
        assert getattr(there.data, key) == getattr(here.data, key), key
    assert (there.augment, there.model) == (here.augment, here.model)
    assert there.eval == replace(here.eval, checkpoint=here.out_dir + "/stage2/final.pt")
    for key in ("frames", "bodies", "normalise", "supervised_epochs", "supervised_steps", "agcn_width"):
        assert getattr(there.pose, key) == getattr(here.pose, key), key
