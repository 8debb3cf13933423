"""N-UCLA names, classes and cross-view protocols, checked against the published VPN lists."""

import pytest
from helpers import reference_lines, write_frame_folder

from viewclr.config import DataConfig
from viewclr.data import nucla
from viewclr.data.registry import get_dataset
from viewclr.errors import DatasetError


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    path = tmp_path_factory.mktemp("names") / "ctrgcn_samples.tsv"
    path.write_text("\n".join(reference_lines("nucla/ctrgcn_samples.tsv")) + "\n")
    return get_dataset("nucla").from_names(path)


def names_as_vpn(split_samples):
    return sorted(s.name.replace("_v", "_c") for s in split_samples)


def test_classes_and_labels(samples):
    assert len(nucla.CLASSES) == 10
    assert nucla.CLASSES[0] == "pick up with one hand" and nucla.CLASSES[-1] == "carry"
    assert len(samples) == 1484
    assert {s.label for s in samples} == set(range(10))
    s = nucla.parse_name("a11_s03_e02_c02")
    assert (s.label, s.view, s.subject, s.name) == (8, "2", 3, "a11_s03_e02_v02")


def test_labels_match_reference_tsv():
    rows = [line.split("\t") for line in reference_lines("nucla/ctrgcn_samples.tsv")[1:]]
    for name, _frames, label in rows:
        assert nucla.parse_name(name).label == int(label) - 1


def test_v12_3_equals_vpn_lists(samples):
    result = get_dataset("nucla").split(samples, "v12_3", DataConfig(dataset="nucla"))
    assert result.sizes() == {"train": 1019, "test": 463}
    assert result.left_out == ["2 videos left out: shorter than 2 frames (data.min_frames)"]  # a02_s09_e04 v2, v3
    assert names_as_vpn(result.train_samples()) == sorted(reference_lines("nucla/vpn_train_views12.txt"))
    assert names_as_vpn(result.test_samples()) == sorted(reference_lines("nucla/vpn_test_view3.txt"))


def test_other_cross_view_protocols_hold_out_one_view(samples):
    for protocol, test_view in (("v13_2", "2"), ("v23_1", "1")):
        result = get_dataset("nucla").split(samples, protocol, DataConfig(dataset="nucla"))
        assert {s.view for s in result.test_samples()} == {test_view}
        assert test_view not in {s.view for s in result.train_samples()}
        assert len(result.train_samples()) + len(result.test_samples()) == 1482  # all but two 1-frame clips


def test_min_frames_zero_keeps_single_frame_clips(samples):
    result = get_dataset("nucla").split(samples, "v12_3", DataConfig(dataset="nucla", min_frames=0))
    assert result.sizes() == {"train": 1020, "test": 464}
    assert result.left_out == []


def test_scan_frame_folders(tmp_path):
    base = tmp_path / "multiview_action"
    write_frame_folder(base / "view_1" / "a01_s01_e00", 12)
    write_frame_folder(base / "view_3" / "a12_s02_e01", 7)
    found = {s.name: s for s in get_dataset("nucla").scan(tmp_path)}
    assert set(found) == {"a01_s01_e00_v01", "a12_s02_e01_v03"}
    assert found["a01_s01_e00_v01"].num_frames == 12  # rgb frames only, the depth image is ignored
    assert found["a12_s02_e01_v03"].label == 9


def test_scan_errors(tmp_path):
    with pytest.raises(DatasetError, match="no N-UCLA samples"):
        get_dataset("nucla").scan(tmp_path)
    (tmp_path / "view_1" / "badname").mkdir(parents=True)
    with pytest.raises(DatasetError, match="badname: not an N-UCLA sample folder"):
        get_dataset("nucla").scan(tmp_path)


def test_unknown_action_rejected():
    with pytest.raises(DatasetError, match="a07 is not an N-UCLA action"):
        nucla.parse_name("a07_s01_e00_v01")
