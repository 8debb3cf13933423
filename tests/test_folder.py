"""The generic folder dataset: a labels CSV, its protocols and its errors."""

import logging

import pytest
from helpers import write_video

from viewclr.config import DataConfig
from viewclr.data.registry import build_split, get_dataset
from viewclr.errors import DatasetError


@pytest.fixture
def root(tmp_path):
    for name in ("a", "b", "c", "d"):
        write_video(tmp_path / "videos" / f"{name}.avi", 6)
    return tmp_path


def write_csv(root, text):
    (root / "labels.csv").write_text(text)
    return root / "labels.csv"


def test_positional_rows_and_class_names(root):
    write_csv(root, "videos/a.avi,wave,front,1\nvideos/b.avi,jump,side,1\nvideos/c.avi,wave,side,2\n")
    spec = get_dataset("folder")
    samples = spec.scan(root)
    assert spec.classes == ("jump", "wave")
    assert [(s.name, s.label, s.view, s.subject) for s in samples] == [
        ("videos/a", 1, "front", 1),
        ("videos/b", 0, "side", 1),
        ("videos/c", 1, "side", 2),
    ]


def test_header_in_any_order_and_integer_labels(root):
    csv = write_csv(root, "label,path\n3,videos/a.avi\n0,videos/b.avi\n")
    spec = get_dataset("folder")
    samples = spec.scan(root, str(csv))
    assert [s.label for s in samples] == [3, 0] and len(spec.classes) == 4 and samples[0].view is None


def test_protocols(root):
    write_csv(root, "videos/a.avi,x,front,1\nvideos/b.avi,y,side,2\nvideos/c.avi,x,top,3\nvideos/d.avi,y,front,4\n")
    data = DataConfig(dataset="folder", root=str(root), protocol="cross_view", train_views=["front"])
    _, split = build_split(data)
    assert split.sizes() == {"train": 2, "test": {"side": 1, "top": 1}}
    data = DataConfig(dataset="folder", root=str(root), protocol="cross_subject", train_subjects=[1, 2])
    assert build_split(data)[1].sizes() == {"train": 2, "test": 2}
    assert build_split(DataConfig(dataset="folder", root=str(root), protocol="all"))[1].sizes() == {
        "train": 4,
        "test": {},
    }


def test_protocol_needs_its_column_and_setting(root):
    write_csv(root, "videos/a.avi,x\nvideos/b.avi,y\n")
    with pytest.raises(DatasetError, match="needs a view column"):
        build_split(DataConfig(dataset="folder", root=str(root), protocol="cross_view", train_views=["1"]))
    write_csv(root, "videos/a.avi,x,front,1\n")
    with pytest.raises(DatasetError, match="needs data.train_subjects"):
        build_split(DataConfig(dataset="folder", root=str(root), protocol="cross_subject"))


def test_missing_files_warned_and_left_out(root, caplog):
    write_csv(root, "videos/a.avi,x\nvideos/gone.avi,y\n")
    caplog.set_level(logging.WARNING)
    assert [s.name for s in get_dataset("folder").scan(root)] == ["videos/a"]
    assert "1 of 2 files listed" in caplog.text and "gone.avi" in caplog.text
    write_csv(root, "videos/gone.avi,y\n")
    with pytest.raises(DatasetError, match="none of the 1 files"):
        get_dataset("folder").scan(root)


def test_bad_csv(root):
    write_csv(root, "videos/a.avi,x\nvideos/b.avi,y,front,1,extra\n")
    with pytest.raises(DatasetError, match="labels.csv line 2"):
        get_dataset("folder").scan(root)
    write_csv(root, "path,label,colour\nvideos/a.avi,x,red\n")
    with pytest.raises(DatasetError, match="header must name"):
        get_dataset("folder").scan(root)
    with pytest.raises(DatasetError, match="does not exist"):
        get_dataset("folder").scan(root, str(root / "nope.csv"))


def test_labels_csv_defaults_to_root_labels_csv(root):
    from viewclr.config import load_config

    write_csv(root, "videos/a.avi,x\nvideos/b.avi,y\n")
    cfg = load_config(None, ["data.dataset=folder", f"data.root={root}", "data.protocol=all"])
    assert cfg.data.labels_csv is None and build_split(cfg.data)[1].sizes() == {"train": 2, "test": {}}
