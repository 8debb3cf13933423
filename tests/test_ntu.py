"""NTU RGB+D names, viewpoints and protocols, checked against the official counts and published lists."""

import pytest
from helpers import REFERENCE, reference_lines

from viewclr.config import DataConfig
from viewclr.data import ntu
from viewclr.data.registry import build_split, get_dataset
from viewclr.errors import ConfigError, DatasetError

NTU60_NAMES = REFERENCE / "ntu" / "ntu60_all_names.txt.gz"


@pytest.fixture(scope="module")
def ntu60_samples(tmp_path_factory):
    names = reference_lines("ntu/ntu60_all_names.txt")
    path = tmp_path_factory.mktemp("names") / "ntu60.txt"
    path.write_text("\n".join(names) + "\n")
    return get_dataset("ntu60").from_names(path)


@pytest.fixture(scope="module")
def ntu120_samples(tmp_path_factory):
    path = tmp_path_factory.mktemp("names") / "ntu120.txt"
    path.write_text("\n".join(reference_lines("ntu/ntu120_all_names.txt")) + "\n")
    return get_dataset("ntu120").from_names(path)


def split(spec_name, samples, protocol, **options):
    return get_dataset(spec_name).split(samples, protocol, DataConfig(dataset=spec_name, **options))


def test_parse_name_fields_and_suffixes():
    n = ntu.parse_name("S001C002P003R002A013_rgb.avi")
    assert (n.setup, n.camera, n.subject, n.replication, n.action) == (1, 2, 3, 2, 13)
    assert ntu.parse_name("S017C003P040R001A060").subject == 40
    assert ntu.canonical_name("S001C002P003R002A013_rgb.mp4") == "S001C002P003R002A013"


@pytest.mark.parametrize("bad", ["S01C002P003R002A013", "S001C004P003R002A013", "S001C002P003R003A013", "x.avi"])
def test_unparseable_names_raise(bad):
    with pytest.raises(DatasetError, match="NTU|impossible"):
        ntu.parse_name(bad)


@pytest.mark.parametrize(
    ("camera", "replication", "view"), [(1, 1, 45), (1, 2, 45), (2, 2, 0), (3, 1, 0), (2, 1, 90), (3, 2, 90)]
)
def test_viewpoint_mapping(camera, replication, view):
    assert ntu.view_of(1, camera, replication) == view
    assert ntu.view_of(18, camera, replication) is None  # cameras moved after S017


def test_class_names():
    assert len(ntu.CLASSES) == 120 and len(set(ntu.CLASSES)) == 120
    assert ntu.CLASSES[0] == "drink water" and ntu.CLASSES[59] == "walking apart from each other"
    assert ntu.CLASSES[119] == "finger-guessing game (playing rock-paper-scissors)"
    assert get_dataset("ntu60").classes == ntu.CLASSES[:60]


def test_missing_skeleton_lists_match_official():
    assert ntu.missing_skeletons(60) == set(reference_lines("ntu/ntu60_samples_with_missing_skeletons.txt")[2:])
    assert ntu.missing_skeletons(120) == set(reference_lines("ntu/ntu120_samples_with_missing_skeletons.txt")[2:])
    assert len(ntu.missing_skeletons(60)) == 302 and len(ntu.missing_skeletons(120)) == 535


def test_labels_views_subjects(ntu60_samples):
    assert len(ntu60_samples) == 56_880
    s = next(s for s in ntu60_samples if s.name == "S001C002P003R002A013")
    assert (s.label, s.view, s.subject, s.camera, s.setup) == (12, "0", 3, 2, 1)
    assert {s.view for s in ntu60_samples} == {"0", "45", "90"}
    assert {s.label for s in ntu60_samples} == set(range(60))


def test_ntu60_from_ntu120_names_keeps_setups_1_to_17(ntu120_samples, tmp_path):
    path = tmp_path / "all120.txt"
    path.write_text("\n".join(s.name for s in ntu120_samples))
    assert len(get_dataset("ntu60").from_names(path)) == 56_880


@pytest.mark.parametrize(("protocol", "train", "test"), [("cs", 40_320, 16_560), ("cv", 37_920, 18_960)])
def test_ntu60_official_sizes(ntu60_samples, protocol, train, test):
    assert split("ntu60", ntu60_samples, protocol).sizes() == {"train": train, "test": test}


@pytest.mark.parametrize(("protocol", "train", "test"), [("csub", 63_360, 51_120), ("cset", 54_720, 59_760)])
def test_ntu120_official_sizes(ntu120_samples, protocol, train, test):
    assert split("ntu120", ntu120_samples, protocol).sizes() == {"train": train, "test": test}


def test_exclude_missing_skeletons(ntu60_samples):
    sizes = split("ntu60", ntu60_samples, "cs", exclude_missing_skeletons=True).sizes()
    assert sizes["train"] + sizes["test"] == 56_880 - 302


@pytest.mark.parametrize("train_view", [0, 45, 90])
def test_cvs_equals_surreact_lists_name_for_name(ntu60_samples, train_view):
    result = split("ntu60", ntu60_samples, f"cvs{train_view}")
    assert result.sizes() == {
        "train": {str(train_view): 13_225},
        "test": {"0": 5_447, "45": 5_447, "90": 5_447},
    }
    # the published lists are ordered by how SURREACT iterated cameras; compare as sorted lists (no duplicates)
    train = sorted(s.name for s in result.train[str(train_view)])
    assert train == sorted(reference_lines(f"ntu/surreact_cvs_train{train_view}.txt"))
    for view in (0, 45, 90):
        test = sorted(s.name for s in result.test[str(view)])
        assert test == sorted(reference_lines(f"ntu/surreact_cvs_test{view}.txt"))


def test_every_protocol_says_what_it_left_out_and_why(ntu60_samples):
    # 56,880 names = 18,960 triplets; SURREACT's lists keep 13,225 + 5,447 of them
    assert split("ntu60", ntu60_samples, "cvs").left_out == [
        "286 triplets left out: on NTU's missing-skeleton list (302 samples of NTU RGB+D 60) "
        "(data.exclude_missing_skeletons)",
        "2 triplets left out: dropped by SURREACT's lists (S012C003P015R002A060, S013C003P019R002A027) "
        "(data.exclude_missing_skeletons)",
    ]
    kept = split("ntu60", ntu60_samples, "cvs", exclude_missing_skeletons=False)
    assert kept.sizes() == {"train": {"0": 13_440}, "test": {"0": 5_520, "45": 5_520, "90": 5_520}}
    assert kept.left_out == [] and 13_440 + 5_520 == 56_880 // 3
    cs = split("ntu60", ntu60_samples, "cs", exclude_missing_skeletons=True)
    assert cs.left_out == ["302 videos left out: on NTU's missing-skeleton list (302 samples of NTU RGB+D 60) "
                           "(data.exclude_missing_skeletons)"]  # fmt: skip
    assert split("ntu60", ntu60_samples, "cs").left_out == []  # the official full-set sizes: nothing left out


def test_a_foreign_ntu_named_set_is_told_what_cvs_leaves_out(tmp_path, caplog):
    """A user's own dataset in NTU layout, one of whose names happens to be on NTU's missing-skeleton list."""
    missing = ntu.missing_skeletons(60)
    hit = ntu.parse_name(
        next(m for m in sorted(missing) if ntu.parse_name(m).subject in ntu.CS_TRAIN_SUBJECTS and ntu.view_of(
            ntu.parse_name(m).setup, ntu.parse_name(m).camera, ntu.parse_name(m).replication) is not None)
    )  # fmt: skip

    def take(action: int, cameras=(1, 2, 3)) -> list[str]:
        return [f"S{hit.setup:03d}C{c:03d}P{hit.subject:03d}R{hit.replication:03d}A{action:03d}" for c in cameras]

    clean = next(a for a in range(1, 61) if a != hit.action and not set(take(a)) & missing)
    other = next(a for a in range(1, 61) if a not in (hit.action, clean))
    path = tmp_path / "names.txt"
    path.write_text("\n".join(take(hit.action) + take(clean) + take(other, cameras=(1,))) + "\n")
    with caplog.at_level("INFO"):
        _, result = build_split(DataConfig(dataset="ntu60", protocol="cvs"), names_file=path)
    lines = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert lines == [
        "ntu60 cvs: 1 triplet left out: not present at all three views (0°, 45°, 90°)",
        "ntu60 cvs: 1 triplet left out: on NTU's missing-skeleton list (302 samples of NTU RGB+D 60) "
        "(data.exclude_missing_skeletons)",
    ]
    assert len(result.train_samples()) == 1  # the clean take's 0° video
    everything = build_split(DataConfig(dataset="ntu60", protocol="cvs", exclude_missing_skeletons=False), path)[1]
    assert len(everything.train_samples()) == 2 and everything.left_out == [lines[0].removeprefix("ntu60 cvs: ")]


def test_cvs_is_cvs0(ntu60_samples):
    assert split("ntu60", ntu60_samples, "cvs").sizes() == split("ntu60", ntu60_samples, "cvs0").sizes()


def test_cvs_drops_short_triplets_when_frame_counts_known(ntu60_samples):
    from dataclasses import replace

    short = "S001C002P001R002A001"  # a CS-train sample at 0°: its whole triplet must go
    samples = [replace(s, num_frames=31 if s.name == short else 100) for s in ntu60_samples]
    result = split("ntu60", samples, "cvs")
    assert result.sizes()["train"] == {"0": 13_224}
    assert short not in {s.name for s in result.train["0"]}


def test_protocol_of_other_version_is_rejected(ntu60_samples):
    with pytest.raises(ConfigError, match="data.protocol.*not a protocol of ntu60"):
        split("ntu60", ntu60_samples, "csub")


def test_names_file_errors_name_file_and_line(tmp_path):
    path = tmp_path / "names.txt"
    path.write_text("S001C001P001R001A001\nnot_a_name\n")
    with pytest.raises(DatasetError, match=r"names.txt line 2: 'not_a_name'"):
        get_dataset("ntu60").from_names(path)
    with pytest.raises(DatasetError, match="does not exist"):
        get_dataset("ntu60").from_names(tmp_path / "missing.txt")
