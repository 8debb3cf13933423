"""Reports a researcher can trust at a glance: the spread is the sample standard deviation and says so, every seed
is shown, rows and files of different results never collide, and the words match what ran. Built on results
files written here (no training), so each takes milliseconds."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from viewclr.cli import main
from viewclr.config import load_config, presets
from viewclr.errors import ConfigError
from viewclr.eval.fusion import fuse
from viewclr.eval.report import report
from viewclr.eval.tables import cell

CVS = {"0": 0.5, "45": 0.25, "90": 0.125}


def evaluation(mode: str, groups: dict, **extra) -> dict:
    confusion = [[1, 0], [0, 1]]
    return {"mode": mode, "protocol": "cvs", "modality": "RGB", "classes": 2,
            "groups": {g: {"top1": v, "confusion": confusion} for g, v in groups.items()}, **extra}  # fmt: skip


def write(path: Path, value) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))
    return path


def table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


def test_a_cell_over_seeds_is_the_mean_and_the_sample_std():
    """9.4 and 14.1 printed ± 2.3 (numpy's population std); the sample std, ddof 1, is 3.3."""
    assert cell([0.094, 0.141]) == "11.8 ± 3.3"
    assert cell([0.5, 0.6, 0.7]) == f"60.0 ± {100 * np.std([0.5, 0.6, 0.7], ddof=1):.1f}" == "60.0 ± 10.0"
    assert cell([0.5]) == "50.0" and cell(None) == "–"
    assert cell([0.094, 0.141], seeds=True) == "11.8 ± 3.3 (9.4, 14.1)"  # compare's tables show every seed


def test_two_tests_of_one_encoder_are_two_rows_and_two_sets_of_confusion_matrices(tmp_path):
    """1 and 10 crops once gave identical rows, and one run's confusion matrices overwrote the other's."""
    one = write(tmp_path / "one" / "eval" / "test" / "results.json", evaluation("test", CVS, crops=1, windows=1))
    ten = write(tmp_path / "ten" / "eval" / "test" / "results.json", evaluation("test", CVS, crops=10, windows=None))
    text = report([one.parent, ten.parent], tmp_path / "r.md").read_text()
    rows = [line for line in table_lines(text) if "test, " in line]
    assert len(rows) == 2 and rows[0] != rows[1]
    assert "| one/eval/test | test, 1 crops × 1 windows |" in rows[0]
    assert "| ten/eval/test | test, 10 crops × all windows |" in rows[1]
    assert len(list((tmp_path / "r_files").glob("confusion_*.png"))) == 6  # 2 runs × 3 views, none overwritten


def test_a_fused_result_keeps_its_protocol_and_both_inputs(tmp_path):
    """A cross-view fusion of two residual-input streams once showed protocol `all` and M = RGB."""
    names, labels = ["a", "b", "c", "d"], [0, 1, 0, 1]
    for stream in ("first", "second"):
        side = {"names": names, "labels": labels, "scores": torch.eye(2)[labels].tolist()}
        scores = {
            "kind": "probabilities",
            "modality": "RGB residual",
            "protocol": "cross_view",
            "groups": {"side": side},
        }
        torch.save(scores, tmp_path / f"{stream}.pt")
    result = fuse(tmp_path / "first.pt", tmp_path / "second.pt", 0.5, tmp_path / "fused")
    assert (result["protocol"], result["modality"]) == ("cross_view", "RGB residual + RGB residual")
    text = report([tmp_path / "fused"], tmp_path / "r.md").read_text()
    assert "Protocol `cross_view`:" in text and "| fused | fuse | RGB residual + RGB residual | 100.0 |" in text


def test_a_report_of_a_comparison_folder_names_each_result_and_draws_a_whole_table(tmp_path):
    """`viewclr report runs/cmp` once read compare's own results.json as a result: protocol `?`, a table with 4
    header cells and 3 separator cells, every row named 'cmp'."""
    cmp = tmp_path / "cmp"
    write(cmp / "results.json", {"seeds": [0, 1], "methods": ["infonce"], "table": {}})
    for seed in (0, 1):
        write(cmp / f"seed{seed}" / "infonce" / "probe" / "results.json", evaluation("probe", CVS))
    text = report([cmp], tmp_path / "r.md").read_text()
    assert "`?`" not in text and "Protocol `cvs`:" in text
    lines = table_lines(text)
    assert {line.count("|") for line in lines} == {7}  # 6 cells in the header, the separator and each row
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["cmp/seed0/infonce", "cmp/seed1/infonce"]


def test_curves_of_several_seeds_are_told_apart_and_say_each_name_once(tmp_path):
    """A comparison's runs (seed*/infonce/infonce) once made the legend 'infonce infonce infonce'."""
    from viewclr.eval.report import _curves, run_names

    for seed in (0, 1):
        write(tmp_path / f"seed{seed}" / "infonce" / "infonce" / "metrics.jsonl", {"step": 1, "loss/infonce": 2.0})
    runs = run_names([tmp_path / "seed0" / "infonce", tmp_path / "seed1" / "infonce"])
    assert list(runs) == ["seed0/infonce", "seed1/infonce"]
    labels = []
    import matplotlib.axes

    original = matplotlib.axes.Axes.plot
    try:
        matplotlib.axes.Axes.plot = lambda self, *a, **k: labels.append(k.get("label")) or original(self, *a, **k)
        _curves(runs, "loss/", "loss", tmp_path / "l.png", "loss")
    finally:
        matplotlib.axes.Axes.plot = original
    assert labels == ["seed0/infonce · infonce", "seed1/infonce · infonce"]


def test_per_view_bars_show_the_chance_level_and_every_seeds_point(tmp_path, monkeypatch):
    import matplotlib.figure

    from viewclr.studies.compare import per_view_bars

    per_seed = {seed: {m: {"probe": evaluation("probe", CVS, classes_present=4)} for m in ("infonce", "viewclr")}
                for seed in (0, 1, 2)}  # fmt: skip
    table = {m: {"probe": {g: [v, v + 0.1, v + 0.2] for g, v in CVS.items()}} for m in ("infonce", "viewclr")}
    drawn = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda self, *a, **k: drawn.append(self))
    per_view_bars(table, per_seed, ["infonce", "viewclr"], tmp_path / "p.png")
    axis = drawn[0].axes[0]
    chance = [line for line in axis.lines if set(line.get_ydata()) == {25.0}]
    points = [line for line in axis.lines if line.get_marker() == "o"]
    assert len(chance) == 1  # 100 / 4 classes
    assert sum(len(line.get_ydata()) for line in points) == 2 * 3 * 3  # methods × views × seeds
    assert "sample std over seeds 0, 1, 2" in drawn[0]._suptitle.get_text()


def test_config_list_gives_each_preset_a_whole_sentence(capsys):
    assert main(["config", "--list"]) == 0
    listed = dict(line.split(None, 1) for line in capsys.readouterr().out.strip().splitlines())
    assert set(listed) == set(presets())
    for name, text in listed.items():
        assert text.count("(") == text.count(")"), name  # never cut inside a parenthesis
        assert not re.search(r"\b(the|a|of|It is the)$", text), name  # nor after a word that needs another
    assert listed["synth_study"] == (
        "The reproduction study on the synthetic benchmark at CPU size (scripts/study.py, docs/results.md)."
    )


def test_a_single_value_for_a_list_setting_says_so():
    """`data.train_views=0` once ended in OmegaConf's 'AnyNode is not a ListConfig'."""
    with pytest.raises(
        ConfigError, match=r"config key 'data.train_views': needs a list, e.g. data.train_views=\[a,b\]"
    ):
        load_config(None, ["data.train_views=0"])


def test_the_documented_paths_are_where_the_documented_commands_write():
    """docs/usage.md once continued `runs/demo/viewclr/stage1` (the demo writes runs/demo/seed0/...) and a plain
    `pretrain --config synth_cpu` wrote into the demo's folder."""
    usage = (Path(__file__).parent.parent / "docs" / "usage.md").read_text()
    out_dir = load_config("synth_cpu").out_dir
    assert out_dir == "runs/synth_cpu"
    assert re.findall(r"^viewclr .*--from (\S+)", usage, re.M) == [f"{out_dir}/stage1"]
    assert f"W={out_dir}/stage2/final.pt" in usage


def test_a_log_file_gets_plain_lines_not_progress_bars(monkeypatch, tmp_path):
    """tqdm bars once filled redirected logs: without a terminal, --no-progress is implied."""
    import viewclr.engine.plan

    seen = {}
    monkeypatch.setattr(viewclr.engine.plan, "pretrain", lambda cfg, **kw: seen.update(kw) or {})
    assert main(["pretrain", f"out_dir={tmp_path}"]) == 0  # pytest's captured stderr is no terminal
    assert seen["progress"] is False


def test_tsne_without_scikit_learn_says_which_extra_to_install(monkeypatch, tmp_path):
    """scikit-learn (and scipy, ~195 MB) is the `tsne` extra: without it, the one command that needs it says so."""
    import sys

    from viewclr.errors import ViewCLRError
    from viewclr.eval.embed import tsne

    for name in ("sklearn", "sklearn.manifold"):  # as if never installed, also where another test imported it
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ViewCLRError, match=r"viewclr tsne needs scikit-learn: pip install 'viewclr\[tsne\]'"):
        tsne(load_config(None), tmp_path / "t.png")


def test_an_encoder_is_one_line_away_in_python_torch_hub_and_a_plain_export(tmp_path, capsys):
    """viewclr.load_encoder(path) builds the encoder its file records (no config); `viewclr export` writes it as a
    plain state dict that loads back at the width its stem implies; torch.hub's local entry point is the same."""
    import viewclr
    from viewclr.models.registry import build_backbone

    trained = build_backbone("s3d", 0.125)
    for value in trained.state_dict().values():
        if value.is_floating_point():
            value.normal_()
    record = {"backbone": "s3d", "width": 0.125, "input": "residual", "mean": [0.5] * 3, "std": [0.25] * 3}
    torch.save({"backbone": trained.state_dict(), "model": record}, tmp_path / "final.pt")
    encoder = viewclr.load_encoder(tmp_path / "final.pt")
    assert not encoder.training and encoder.record == record
    assert all(torch.equal(encoder.state_dict()[k], v) for k, v in trained.state_dict().items())
    assert main(["export", str(tmp_path / "final.pt"), "--out", str(tmp_path / "s3d.pth")]) == 0
    assert "input=residual" in capsys.readouterr().out
    plain = torch.load(tmp_path / "s3d.pth", weights_only=True)
    assert plain.keys() == trained.state_dict().keys() and all(k.startswith("features.") for k in plain)
    again = viewclr.load_encoder(tmp_path / "s3d.pth")
    assert again.record == {"backbone": "s3d", "width": 0.125}  # a plain file cannot say its input
    hub = torch.hub.load(str(Path(__file__).parent.parent), "encoder", path=str(tmp_path / "final.pt"), source="local")
    assert all(torch.equal(hub.state_dict()[k], v) for k, v in trained.state_dict().items())
